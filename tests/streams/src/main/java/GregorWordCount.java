// A Kafka Streams word count (kafka-streams 4.x) for running against gregor.
//
//   java -jar target/gregor-streams-wordcount.jar BOOTSTRAP [key=value ...]
//
// The topology: lines from the input topic are split into words, re-keyed by word (groupBy: the
// repartition topic APP-counts-repartition), counted (count(): the state store "counts", RocksDB
// or in memory, with its changelog topic APP-counts-changelog) and every new count is written to
// the output topic (key: the word, value: its count as a Long, 8 bytes big-endian).
//
// Options: app=ID (application.id, default gregor-wordcount), input=T (default words-in),
// output=T (default word-counts), state=DIR (state.dir), store=rocksdb|memory (default rocksdb),
// guarantee=at_least_once|exactly_once_v2 (default at_least_once), commit_ms=N (default 500),
// cache_bytes=N (statestore.cache.max.bytes, default 0: every update reaches the changelog),
// threads=N (default 1), replication=N (replication.factor of the internal topics, default -1:
// the broker's default), group_protocol=classic|streams (default classic).
//
// Runs until SIGTERM (closes cleanly, exit 0) or until Streams fails (exit 2). It prints one
// line per state change, "STATE <old> -> <new>", and on failure "ERROR <class>: <message>" for
// the failure and each of its causes, so the test can tell what the broker refused.
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueBytesStoreSupplier;
import org.apache.kafka.streams.state.Stores;

public class GregorWordCount {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.out.println("usage: BOOTSTRAP [key=value ...]");
            System.exit(64);
        }
        Map<String, String> opt = new HashMap<>();
        for (String a : Arrays.copyOfRange(args, 1, args.length)) {
            int eq = a.indexOf('=');
            if (eq <= 0) {
                System.out.println("FAIL: option without '=': " + a);
                System.exit(64);
            }
            opt.put(a.substring(0, eq), a.substring(eq + 1));
        }
        String app = opt.getOrDefault("app", "gregor-wordcount");
        String input = opt.getOrDefault("input", "words-in");
        String output = opt.getOrDefault("output", "word-counts");
        String store = opt.getOrDefault("store", "rocksdb");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, opt.getOrDefault("guarantee", "at_least_once"));
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, opt.getOrDefault("commit_ms", "500"));
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, opt.getOrDefault("cache_bytes", "0"));
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, opt.getOrDefault("threads", "1"));
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, opt.getOrDefault("replication", "-1"));
        p.put(StreamsConfig.GROUP_PROTOCOL_CONFIG, opt.getOrDefault("group_protocol", "classic"));
        if (opt.containsKey("state"))
            p.put(StreamsConfig.STATE_DIR_CONFIG, opt.get("state"));
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        KeyValueBytesStoreSupplier supplier = store.equals("memory")
                ? Stores.inMemoryKeyValueStore("counts")
                : Stores.persistentKeyValueStore("counts");
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> lines = builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        KTable<String, Long> counts = lines
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((k, word) -> !word.isEmpty())
                .groupBy((k, word) -> word, Grouped.with("counts", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long>as(supplier)
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()));
        counts.toStream().to(output, Produced.with(Serdes.String(), Serdes.Long()));

        Topology topology = builder.build();
        KafkaStreams streams = new KafkaStreams(topology, p);
        CountDownLatch done = new CountDownLatch(1);
        AtomicInteger exit = new AtomicInteger(0);
        streams.setStateListener((now, old) -> {
            System.out.println("STATE " + old + " -> " + now);
            System.out.flush();
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING)
                done.countDown();
        });
        streams.setUncaughtExceptionHandler(e -> {
            for (Throwable t = e; t != null; t = t.getCause())
                System.out.println("ERROR " + t.getClass().getName() + ": " + t.getMessage());
            System.out.flush();
            exit.set(2);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close();
            done.countDown();
        }));
        System.out.println("TOPOLOGY " + topology.describe().toString().replace('\n', ' '));
        streams.start();
        done.await();
        streams.close();
        System.out.flush();
        System.exit(exit.get());
    }
}
