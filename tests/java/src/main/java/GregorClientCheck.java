// Drives a gregor broker with the real Java client (kafka-clients 4.x).
//
//   java -jar target/gregor-client-check.jar MODE BOOTSTRAP [key=value ...]
//   (client.config=FILE: client properties, e.g. security.protocol=SSL, for every client made)
//
// Modes:
//   produce-idempotent  default producer (idempotent, acks=all): keyed records with headers to a
//                       multi-partition topic, read back with assign + seekToBeginning; checks
//                       keys/values/headers/order per partition and the exact count.
//                       options: count=N (default 5000), partitions=P (default 4)
//   group               consumer group: consumer 1 subscribes, reads, commitSync, close; more
//                       records are produced; consumer 2 (same group) resumes at the commit.
//                       options: count=N per phase (default 1000), protocol=classic|consumer
//   group-consumer      KIP-848 (group.protocol=consumer): two consumers on a 6-partition topic
//                       get 3 partitions each, every record is consumed once; both commit, one
//                       leaves and the other takes all 6 and reads only what came after the
//                       commits; a third consumer resumes at the second one's commit. Checks
//                       describeConsumerGroups (ConsumerGroupDescribe) and listGroups (v5 types).
//                       options: count=N per phase (default 600), assignor=uniform|range
//   admin               createTopics, listTopics, describeTopics, describeConfigs,
//                       createPartitions, deleteTopics, describeCluster.
//   cluster-roundtrip   an existing multi-partition topic on a cluster: the default producer,
//                       bootstrapped from BOOTSTRAP, sends keyed records with headers to
//                       partition i % P; a consumer bootstrapped from another broker (assign,
//                       no group) reads every partition from the beginning to its end offset;
//                       the records with this run's prefix must be exactly the acked ones
//                       (partition, offset, key, value, headers), once each, in order.
//                       options: topic=T, consume=BOOTSTRAP2, count=N (default 1200), prefix=S
//   transactions        a transactional producer commits one transaction of N records over a
//                       3-partition topic and aborts one of N; a second producer with the same
//                       transactional.id fences it (its next transaction must fail with
//                       ProducerFencedException and write nothing) and commits N more. A
//                       read_committed consumer must see exactly the committed records, in
//                       offset order per partition; a read_uncommitted one the committed and the
//                       aborted ones; endOffsets under read_committed are the last stable offsets.
//                       options: count=N per transaction (default 200)
//
// Prints one summary line starting with "OK <mode>" and exits 0, or prints "FAIL: ..." and
// exits 1 on any mismatch or client error.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class GregorClientCheck {
    static final long TIMEOUT_S = 30;

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String msg) { super(msg); }
    }

    static void check(boolean cond, String fmt, Object... args) {
        if (!cond) throw new CheckFailed(String.format(fmt, args));
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }
    static String s(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

    public static void main(String[] argv) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
                System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
        if (argv.length < 2) {
            System.err.println("usage: GregorClientCheck produce-idempotent|group|group-consumer|admin BOOTSTRAP [key=value ...]");
            System.exit(2);
        }
        Map<String, String> opts = new HashMap<>();
        for (int i = 2; i < argv.length; i++) {
            int eq = argv[i].indexOf('=');
            if (eq < 0) { System.err.println("bad option " + argv[i]); System.exit(2); }
            opts.put(argv[i].substring(0, eq), argv[i].substring(eq + 1));
        }
        String bootstrap = argv[1];
        int rc = 0;
        try {
            if (opts.containsKey("client.config")) {
                // Settings every producer, consumer and admin client takes (security.protocol=SSL, ...).
                try (java.io.FileInputStream in = new java.io.FileInputStream(opts.get("client.config"))) {
                    CLIENT_EXTRA.load(in);
                }
            }
            switch (argv[0]) {
                case "produce-idempotent":
                    produceIdempotent(bootstrap, Integer.parseInt(opts.getOrDefault("count", "5000")),
                            Integer.parseInt(opts.getOrDefault("partitions", "4")));
                    break;
                case "group":
                    group(bootstrap, Integer.parseInt(opts.getOrDefault("count", "1000")),
                            opts.getOrDefault("protocol", "classic"));
                    break;
                case "group-consumer":
                    groupConsumer(bootstrap, Integer.parseInt(opts.getOrDefault("count", "600")),
                            opts.getOrDefault("assignor", "uniform"));
                    break;
                case "admin":
                    admin(bootstrap);
                    break;
                case "rack-consume":
                    rackConsume(bootstrap, opts.get("topic"), opts.get("rack"),
                            Integer.parseInt(opts.getOrDefault("count", "100")));
                    break;
                case "cluster-roundtrip":
                    clusterRoundtrip(bootstrap, opts.get("consume"), opts.get("topic"),
                            Integer.parseInt(opts.getOrDefault("count", "1200")),
                            opts.getOrDefault("prefix", "java"));
                    break;
                case "transactions":
                    transactions(bootstrap, Integer.parseInt(opts.getOrDefault("count", "200")));
                    break;
                default:
                    System.err.println("unknown mode " + argv[0]);
                    rc = 2;
            }
        } catch (Throwable t) {
            System.out.flush();
            System.err.println("FAIL: " + t);
            t.printStackTrace();
            rc = 1;
        }
        System.out.flush();
        System.err.flush();
        System.exit(rc);  // client threads must not keep the JVM alive
    }

    // ------------------------------------------------------------------------------- helpers

    /** client.config=FILE: properties added to every client made here. */
    static final Properties CLIENT_EXTRA = new Properties();

    static Admin newAdmin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.putAll(CLIENT_EXTRA);
        return Admin.create(p);
    }

    static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs) throws Exception {
        NewTopic t = new NewTopic(name, partitions, (short) 1);
        if (configs != null) t.configs(configs);
        admin.createTopics(List.of(t)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
    }

    static KafkaProducer<byte[], byte[]> newProducer(String bootstrap, Properties extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60000);
        p.putAll(CLIENT_EXTRA);
        if (extra != null) p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> newConsumer(String bootstrap, Properties extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.putAll(CLIENT_EXTRA);
        if (extra != null) p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    /** What was sent to one record: key, value, headers, and where the broker put it. */
    record Sent(String key, String value, List<String[]> headers, int partition, long offset) {}

    static Headers headersFor(int i) {
        RecordHeaders h = new RecordHeaders();
        h.add("seq", b(Integer.toString(i)));
        h.add("src", b("java"));
        h.add("nul", null);  // a header with a null value must survive the round trip
        return h;
    }

    static List<String[]> headerList(Iterable<Header> hs) {
        List<String[]> out = new ArrayList<>();
        for (Header h : hs) out.add(new String[] {h.key(), s(h.value())});
        return out;
    }

    static boolean sameHeaders(List<String[]> a, List<String[]> b) {
        if (a.size() != b.size()) return false;
        for (int i = 0; i < a.size(); i++) {
            if (!a.get(i)[0].equals(b.get(i)[0])) return false;
            String va = a.get(i)[1], vb = b.get(i)[1];
            if (va == null ? vb != null : !va.equals(vb)) return false;
        }
        return true;
    }

    static String fmtHeaders(List<String[]> hs) {
        StringBuilder sb = new StringBuilder("[");
        for (String[] h : hs) sb.append(h[0]).append('=').append(h[1]).append(' ');
        return sb.append(']').toString();
    }

    /** Sends count records (keys "prefix-k<i>") with the given producer; returns them with their placement. */
    static List<Sent> sendKeyed(KafkaProducer<byte[], byte[]> producer, String topic, String prefix, int count)
            throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>(count);
        List<Headers> hdrs = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            Headers h = headersFor(i);
            hdrs.add(h);
            futures.add(producer.send(new ProducerRecord<>(topic, null, b(prefix + "-k" + i),
                    b(prefix + "-value-" + i), h)));
        }
        producer.flush();
        List<Sent> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            RecordMetadata md = futures.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
            check(md.hasOffset(), "record %d: no offset in RecordMetadata", i);
            out.add(new Sent(prefix + "-k" + i, prefix + "-value-" + i, headerList(hdrs.get(i)),
                    md.partition(), md.offset()));
        }
        return out;
    }

    /** Groups sent records by partition, in offset order, and checks offsets are dense from 0/base. */
    /* Per partition in offset order; transactions leave gaps (their control records). */
    static Map<Integer, List<Sent>> byPartitionWithGaps(List<Sent> sent) {
        Map<Integer, List<Sent>> m = new HashMap<>();
        for (Sent s : sent) m.computeIfAbsent(s.partition(), k -> new ArrayList<>()).add(s);
        for (List<Sent> l : m.values()) l.sort((x, y) -> Long.compare(x.offset(), y.offset()));
        return m;
    }

    static Map<Integer, List<Sent>> byPartition(List<Sent> sent) {
        Map<Integer, List<Sent>> m = new HashMap<>();
        for (Sent s : sent) m.computeIfAbsent(s.partition(), k -> new ArrayList<>()).add(s);
        for (Map.Entry<Integer, List<Sent>> e : m.entrySet()) {
            List<Sent> l = e.getValue();
            l.sort((x, y) -> Long.compare(x.offset(), y.offset()));
            for (int i = 1; i < l.size(); i++)
                check(l.get(i).offset() == l.get(i - 1).offset() + 1,
                        "partition %d: produce offsets not contiguous: %d then %d", e.getKey(),
                        l.get(i - 1).offset(), l.get(i).offset());
        }
        return m;
    }

    static void compare(String what, Map<Integer, List<Sent>> expected,
                        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got) {
        for (Map.Entry<Integer, List<Sent>> e : expected.entrySet()) {
            int p = e.getKey();
            List<Sent> exp = e.getValue();
            List<ConsumerRecord<byte[], byte[]>> g = got.getOrDefault(p, List.of());
            check(g.size() == exp.size(), "%s partition %d: expected %d records, got %d", what, p, exp.size(), g.size());
            for (int i = 0; i < exp.size(); i++) {
                Sent s = exp.get(i);
                ConsumerRecord<byte[], byte[]> r = g.get(i);
                check(r.offset() == s.offset(), "%s partition %d #%d: offset %d, expected %d", what, p, i, r.offset(), s.offset());
                check(s.key().equals(s(r.key())), "%s partition %d offset %d: key %s, expected %s", what, p, r.offset(), s(r.key()), s.key());
                check(s.value().equals(s(r.value())), "%s partition %d offset %d: value %s, expected %s", what, p, r.offset(), s(r.value()), s.value());
                List<String[]> rh = headerList(r.headers());
                check(sameHeaders(s.headers(), rh), "%s partition %d offset %d: headers %s, expected %s", what, p,
                        r.offset(), fmtHeaders(rh), fmtHeaders(s.headers()));
            }
        }
        for (Integer p : got.keySet())
            check(expected.containsKey(p) || got.get(p).isEmpty(), "%s: unexpected records in partition %d", what, p);
    }

    /** Polls until `want` records arrived (or the deadline), then keeps polling briefly to catch extras. */
    static Map<Integer, List<ConsumerRecord<byte[], byte[]>>> pollRecords(KafkaConsumer<byte[], byte[]> c, int want,
                                                                            long timeoutMs) {
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
        int n = 0;
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (n < want && System.currentTimeMillis() < deadline) {
            ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(500));
            for (ConsumerRecord<byte[], byte[]> r : rs) {
                got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
                n++;
            }
        }
        check(n >= want, "timed out: consumed %d of %d records", n, want);
        // Anything beyond `want` is a duplicate or a stray record.
        ConsumerRecords<byte[], byte[]> extra = c.poll(Duration.ofMillis(1000));
        for (ConsumerRecord<byte[], byte[]> r : extra) {
            got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
            n++;
        }
        check(n == want, "consumed %d records, expected exactly %d", n, want);
        return got;
    }

    // ------------------------------------------------------------------------------- modes

    /** KIP-392: reads partition 0 of topic from the beginning with client.rack set (the
     * leader may send the consumer to a follower on that rack); exactly count records. */
    static void rackConsume(String bootstrap, String topic, String rack, int count) throws Exception {
        Properties extra = new Properties();
        extra.put(ConsumerConfig.CLIENT_RACK_CONFIG, rack);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = newConsumer(bootstrap, extra)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got = pollRecords(c, count, 60000);
            List<ConsumerRecord<byte[], byte[]>> rs = got.get(0);
            for (int i = 0; i < rs.size(); i++)
                check(rs.get(i).offset() == i, "record %d at offset %d", i, rs.get(i).offset());
            System.out.printf("OK rack-consume consumed=%d rack=%s%n", rs.size(), rack);
        }
    }

    static void produceIdempotent(String bootstrap, int count, int partitions) throws Exception {
        String topic = "java-idem-" + System.nanoTime();
        try (Admin admin = newAdmin(bootstrap)) {
            createTopic(admin, topic, partitions, null);
        }
        List<Sent> sent;
        // Default settings: in 4.x that means enable.idempotence=true, acks=all (InitProducerId + sequences).
        try (KafkaProducer<byte[], byte[]> producer = newProducer(bootstrap, null)) {
            sent = sendKeyed(producer, topic, "idem", count);
        }
        Map<Integer, List<Sent>> expected = byPartition(sent);
        check(expected.size() > 1, "all %d records went to %d partition(s); expected several", count, expected.size());
        for (Map.Entry<Integer, List<Sent>> e : expected.entrySet())
            check(e.getValue().get(0).offset() == 0, "partition %d: first offset %d, expected 0", e.getKey(),
                    e.getValue().get(0).offset());

        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got;
        long endSum = 0;
        try (KafkaConsumer<byte[], byte[]> c = newConsumer(bootstrap, null)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(TIMEOUT_S));
            Map<TopicPartition, Long> beg = c.beginningOffsets(tps, Duration.ofSeconds(TIMEOUT_S));
            for (TopicPartition tp : tps) {
                long exp = expected.getOrDefault(tp.partition(), List.of()).size();
                check(beg.get(tp) == 0, "%s: beginning offset %d, expected 0", tp, beg.get(tp));
                check(end.get(tp) == exp, "%s: end offset %d, expected %d", tp, end.get(tp), exp);
                endSum += end.get(tp);
            }
            got = pollRecords(c, count, 60000);
        }
        compare("produce-idempotent", expected, got);
        StringBuilder per = new StringBuilder();
        for (int p = 0; p < partitions; p++)
            per.append(p == 0 ? "" : ",").append(expected.getOrDefault(p, List.of()).size());
        System.out.printf("OK produce-idempotent produced=%d consumed=%d end_offsets=%d partitions=%d per_partition=%s%n",
                sent.size(), got.values().stream().mapToInt(List::size).sum(), endSum, partitions, per);
    }

    static List<Sent> sendTxn(KafkaProducer<byte[], byte[]> producer, String topic, String prefix, int count)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (int i = 0; i < count; i++)
            fs.add(producer.send(new ProducerRecord<>(topic, i % 3, b(prefix + "-" + i), b("v-" + prefix + "-" + i))));
        producer.flush();
        List<Sent> sent = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            RecordMetadata m = fs.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
            sent.add(new Sent(prefix + "-" + i, "v-" + prefix + "-" + i, List.of(), m.partition(), m.offset()));
        }
        return sent;
    }

    static Map<Integer, List<ConsumerRecord<byte[], byte[]>>> readAll(String bootstrap, String topic,
            String isolation, int want, Map<TopicPartition, Long> endOut) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < 3; p++) tps.add(new TopicPartition(topic, p));
        try (KafkaConsumer<byte[], byte[]> c = newConsumer(bootstrap, cp)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            endOut.putAll(c.endOffsets(tps, Duration.ofSeconds(TIMEOUT_S)));
            return pollRecords(c, want, 60000);
        }
    }

    static void transactions(String bootstrap, int count) throws Exception {
        String topic = "java-txn-" + System.nanoTime();
        String tid = "java-tid-" + System.nanoTime();
        try (Admin admin = newAdmin(bootstrap)) {
            createTopic(admin, topic, 3, null);
        }
        Properties tp = new Properties();
        tp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, tid);
        List<Sent> committed = new ArrayList<>();
        List<Sent> aborted;
        String fenced = "none";
        KafkaProducer<byte[], byte[]> zombie = newProducer(bootstrap, tp);
        try {
            zombie.initTransactions();
            zombie.beginTransaction();
            committed.addAll(sendTxn(zombie, topic, "c1", count));
            zombie.commitTransaction();
            zombie.beginTransaction();
            aborted = sendTxn(zombie, topic, "a", count);
            zombie.abortTransaction();
            try (KafkaProducer<byte[], byte[]> fresh = newProducer(bootstrap, tp)) {
                fresh.initTransactions();  // bumps the epoch: the first producer is now a zombie
                try {
                    zombie.beginTransaction();
                    zombie.send(new ProducerRecord<>(topic, 0, b("z-0"), b("zombie")));
                    zombie.commitTransaction();
                } catch (ProducerFencedException e) {
                    fenced = e.getClass().getSimpleName();
                } catch (org.apache.kafka.common.KafkaException e) {
                    Throwable c = e;
                    while (c != null && !(c instanceof ProducerFencedException)) c = c.getCause();
                    check(c != null, "zombie failed with %s, expected ProducerFencedException", e);
                    fenced = c.getClass().getSimpleName();
                }
                check(!fenced.equals("none"), "the zombie producer's transaction committed after it was fenced");
                fresh.beginTransaction();
                committed.addAll(sendTxn(fresh, topic, "c2", count));
                fresh.commitTransaction();
            }
        } finally {
            zombie.close(Duration.ZERO);
        }

        Map<TopicPartition, Long> lso = new HashMap<>();
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> rc =
                readAll(bootstrap, topic, "read_committed", committed.size(), lso);
        compare("transactions read_committed", byPartitionWithGaps(committed), rc);
        List<Sent> all = new ArrayList<>(committed);
        all.addAll(aborted);
        Map<TopicPartition, Long> hw = new HashMap<>();
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> ru =
                readAll(bootstrap, topic, "read_uncommitted", all.size(), hw);
        compare("transactions read_uncommitted", byPartitionWithGaps(all), ru);
        // Four transactions ended (c1 commit, a abort, c2 commit; the zombie's wrote nothing):
        // each left one control record per partition, so the log end is 3 past the data.
        long lsoSum = 0, hwSum = 0;
        for (Map.Entry<TopicPartition, Long> e : lso.entrySet()) {
            lsoSum += e.getValue();
            check(e.getValue().equals(hw.get(e.getKey())), "%s: read_committed end %d != high watermark %d with no open transaction",
                    e.getKey(), e.getValue(), hw.get(e.getKey()));
        }
        for (long v : hw.values()) hwSum += v;
        check(hwSum == all.size() + 3 * 3, "log end offsets sum %d, expected %d records + 9 control records", hwSum, all.size());
        System.out.printf("OK transactions committed=%d aborted=%d read_committed=%d read_uncommitted=%d fenced=%s end_offsets=%d%n",
                committed.size(), aborted.size(), rc.values().stream().mapToInt(List::size).sum(),
                ru.values().stream().mapToInt(List::size).sum(), fenced, hwSum);
    }

    static void clusterRoundtrip(String bootstrap, String consumeBootstrap, String topic, int count,
                                 String prefix) throws Exception {
        check(topic != null && consumeBootstrap != null, "cluster-roundtrip needs topic= and consume=");
        List<Sent> sent = new ArrayList<>(count);
        int partitions;
        try (KafkaProducer<byte[], byte[]> producer = newProducer(bootstrap, null)) {
            partitions = producer.partitionsFor(topic).size();
            check(partitions > 1, "%s: %d partition(s), expected several", topic, partitions);
            List<Future<RecordMetadata>> futures = new ArrayList<>(count);
            List<Headers> hdrs = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                Headers h = headersFor(i);
                hdrs.add(h);
                futures.add(producer.send(new ProducerRecord<>(topic, i % partitions, b(prefix + "-k" + i),
                        b(prefix + "-value-" + i), h)));
            }
            producer.flush();
            for (int i = 0; i < count; i++) {
                RecordMetadata md = futures.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
                check(md.hasOffset() && md.partition() == i % partitions, "record %d: partition %d offset %s", i,
                        md.partition(), md.hasOffset() ? md.offset() : "none");
                sent.add(new Sent(prefix + "-k" + i, prefix + "-value-" + i, headerList(hdrs.get(i)),
                        md.partition(), md.offset()));
            }
        }
        Map<Integer, List<Sent>> expected = byPartition(sent);
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
        int others = 0;
        try (KafkaConsumer<byte[], byte[]> c = newConsumer(consumeBootstrap, null)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(TIMEOUT_S));
            long deadline = System.currentTimeMillis() + 60000;
            Set<TopicPartition> left = new HashSet<>();
            for (TopicPartition tp : tps) if (end.get(tp) > 0) left.add(tp);
            while (!left.isEmpty()) {
                check(System.currentTimeMillis() < deadline, "timed out reading to the end offsets %s: left %s", end, left);
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    String v = s(r.value());
                    if (v != null && v.startsWith(prefix + "-value-"))
                        got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
                    else
                        others++;
                }
                left.removeIf(tp -> c.position(tp) >= end.get(tp));
            }
        }
        compare("cluster-roundtrip", expected, got);
        StringBuilder per = new StringBuilder();
        for (int p = 0; p < partitions; p++)
            per.append(p == 0 ? "" : ",").append(got.getOrDefault(p, List.of()).size());
        System.out.printf("OK cluster-roundtrip produced=%d consumed=%d others=%d partitions=%d per_partition=%s%n",
                sent.size(), got.values().stream().mapToInt(List::size).sum(), others, partitions, per);
    }

    static void group(String bootstrap, int count, String protocol) throws Exception {
        String topic = "java-group-" + System.nanoTime();
        String groupId = "java-group-" + System.nanoTime();
        int partitions = 3;
        try (Admin admin = newAdmin(bootstrap)) {
            createTopic(admin, topic, partitions, null);
        }
        Properties cp = new Properties();
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);

        try (KafkaProducer<byte[], byte[]> producer = newProducer(bootstrap, null)) {
            Map<Integer, List<Sent>> first = byPartition(sendKeyed(producer, topic, "one", count));

            int got1;
            Map<TopicPartition, OffsetAndMetadata> committed;
            try (KafkaConsumer<byte[], byte[]> c1 = newConsumer(bootstrap, cp)) {
                c1.subscribe(List.of(topic));
                Map<Integer, List<ConsumerRecord<byte[], byte[]>>> g = pollRecords(c1, count, 60000);
                compare("group consumer 1", first, g);
                got1 = g.values().stream().mapToInt(List::size).sum();
                Set<TopicPartition> assigned = c1.assignment();
                check(assigned.size() == partitions, "consumer 1 assigned %d partitions, expected %d: %s",
                        assigned.size(), partitions, assigned);
                c1.commitSync(Duration.ofSeconds(TIMEOUT_S));
                committed = c1.committed(assigned, Duration.ofSeconds(TIMEOUT_S));
                for (TopicPartition tp : assigned) {
                    long exp = first.getOrDefault(tp.partition(), List.of()).size();
                    OffsetAndMetadata om = committed.get(tp);
                    check(om != null && om.offset() == exp, "%s: committed %s, expected offset %d", tp, om, exp);
                }
            }  // close(): leaves the group

            Map<Integer, List<Sent>> second = byPartition(sendKeyed(producer, topic, "two", count));
            int got2;
            try (KafkaConsumer<byte[], byte[]> c2 = newConsumer(bootstrap, cp)) {
                c2.subscribe(List.of(topic));
                Map<Integer, List<ConsumerRecord<byte[], byte[]>>> g = pollRecords(c2, count, 60000);
                // Only the second batch: the first was committed by consumer 1.
                compare("group consumer 2", second, g);
                got2 = g.values().stream().mapToInt(List::size).sum();
                c2.commitSync(Duration.ofSeconds(TIMEOUT_S));
            }
            System.out.printf("OK group protocol=%s first=%d second=%d partitions=%d%n", protocol, got1, got2, partitions);
        }
    }

    /** Polls every consumer in turn into `got` until `done` holds or the deadline passes. */
    static void pollAll(List<KafkaConsumer<byte[], byte[]>> cs, Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got,
            java.util.function.BooleanSupplier done, long timeoutMs, String what) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!done.getAsBoolean() && System.currentTimeMillis() < deadline) {
            for (KafkaConsumer<byte[], byte[]> c : cs)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200)))
                    got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
        }
        check(done.getAsBoolean(), "%s: timed out", what);
    }

    static int total(Map<Integer, List<ConsumerRecord<byte[], byte[]>>> m) {
        return m.values().stream().mapToInt(List::size).sum();
    }

    static void merge(Map<Integer, List<ConsumerRecord<byte[], byte[]>>> into,
                      Map<Integer, List<ConsumerRecord<byte[], byte[]>>> from) {
        for (Map.Entry<Integer, List<ConsumerRecord<byte[], byte[]>>> e : from.entrySet())
            into.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).addAll(e.getValue());
        for (List<ConsumerRecord<byte[], byte[]>> l : into.values())
            l.sort((x, y) -> Long.compare(x.offset(), y.offset()));
    }

    static void groupConsumer(String bootstrap, int count, String assignor) throws Exception {
        String topic = "java-kip848-" + System.nanoTime();
        String groupId = "java-kip848-" + System.nanoTime();
        int partitions = 6;
        try (Admin admin = newAdmin(bootstrap)) {
            createTopic(admin, topic, partitions, null);
        }
        Properties cp = new Properties();
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        cp.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 50);
        String state;
        int describedMembers, describedPartitions;
        String listedType;
        try (KafkaProducer<byte[], byte[]> producer = newProducer(bootstrap, null);
             Admin admin = newAdmin(bootstrap)) {
            KafkaConsumer<byte[], byte[]> c1 = newConsumer(bootstrap, cp);
            KafkaConsumer<byte[], byte[]> c2 = newConsumer(bootstrap, cp);
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            // Phase 1: both members settle on 3 partitions each before anything is produced,
            // so no partition changes hands while records are read.
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> none = new HashMap<>();
            pollAll(List.of(c1, c2), none, () -> c1.assignment().size() == 3 && c2.assignment().size() == 3,
                    60000, "balanced assignment of 6 partitions to 2 consumers (c1=" + c1.assignment()
                    + " c2=" + c2.assignment() + ")");
            check(none.isEmpty(), "records before anything was produced: %s", none.keySet());
            Set<TopicPartition> a1 = new HashSet<>(c1.assignment()), a2 = new HashSet<>(c2.assignment());
            Set<TopicPartition> both = new HashSet<>(a1);
            both.retainAll(a2);
            check(both.isEmpty(), "partitions assigned twice: %s", both);
            Map<Integer, List<Sent>> first = byPartition(sendKeyed(producer, topic, "one", count));
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> g1 = new HashMap<>(), g2 = new HashMap<>();
            long deadline = System.currentTimeMillis() + 60000;
            while (total(g1) + total(g2) < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c1.poll(Duration.ofMillis(200)))
                    g1.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
                for (ConsumerRecord<byte[], byte[]> r : c2.poll(Duration.ofMillis(200)))
                    g2.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
            }
            for (Integer p : g1.keySet())
                check(a1.contains(new TopicPartition(topic, p)), "c1 read partition %d it does not own", p);
            for (Integer p : g2.keySet())
                check(a2.contains(new TopicPartition(topic, p)), "c2 read partition %d it does not own", p);
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> all = new HashMap<>();
            merge(all, g1);
            merge(all, g2);
            compare("group-consumer phase 1", first, all);
            check(total(g1) > 0 && total(g2) > 0, "one consumer read nothing: c1=%d c2=%d", total(g1), total(g2));
            c1.commitSync(Duration.ofSeconds(TIMEOUT_S));
            c2.commitSync(Duration.ofSeconds(TIMEOUT_S));

            // The admin view while both are in: ConsumerGroupDescribe and ListGroups v5.
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(groupId)).all()
                    .get(TIMEOUT_S, TimeUnit.SECONDS).get(groupId);
            describedMembers = d.members().size();
            describedPartitions = d.members().stream().mapToInt(m -> m.assignment().topicPartitions().size()).sum();
            check(d.type() == GroupType.CONSUMER, "describeConsumerGroups: type %s", d.type());
            check(assignor.equals(d.partitionAssignor()), "describeConsumerGroups: assignor %s", d.partitionAssignor());
            state = String.valueOf(d.groupState());
            listedType = admin.listGroups(ListGroupsOptions.forConsumerGroups().withTypes(Set.of(GroupType.CONSUMER)))
                    .all().get(TIMEOUT_S, TimeUnit.SECONDS).stream()
                    .filter(l -> l.groupId().equals(groupId)).map(l -> String.valueOf(l.type().orElse(null)))
                    .findFirst().orElse("missing");

            // Phase 2: c1 leaves; c2 gets all 6 and reads only the second batch.
            c1.close(Duration.ofSeconds(TIMEOUT_S));
            Map<Integer, List<Sent>> second = byPartition(sendKeyed(producer, topic, "two", count));
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> gb = new HashMap<>();
            pollAll(List.of(c2), gb, () -> c2.assignment().size() == partitions, 60000,
                    "c2 taking over all partitions");
            pollAll(List.of(c2), gb, () -> total(gb) >= count, 60000, "second batch");
            // anything more is a duplicate
            for (ConsumerRecord<byte[], byte[]> r : c2.poll(Duration.ofMillis(1000)))
                gb.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
            merge(gb, new HashMap<>());
            compare("group-consumer phase 2", second, gb);
            c2.commitSync(Duration.ofSeconds(TIMEOUT_S));
            c2.close(Duration.ofSeconds(TIMEOUT_S));

            // Phase 3: a new member resumes at the commits.
            Map<Integer, List<Sent>> third = byPartition(sendKeyed(producer, topic, "three", count));
            try (KafkaConsumer<byte[], byte[]> c3 = newConsumer(bootstrap, cp)) {
                c3.subscribe(List.of(topic));
                Map<Integer, List<ConsumerRecord<byte[], byte[]>>> g3 = pollRecords(c3, count, 60000);
                compare("group-consumer phase 3", third, g3);
                c3.commitSync(Duration.ofSeconds(TIMEOUT_S));
            }
            System.out.printf("OK group-consumer assignor=%s c1=%d c2=%d first=%d second=%d third=%d "
                    + "described_members=%d described_partitions=%d state=%s listed_type=%s%n", assignor,
                    a1.size(), a2.size(), total(all), total(gb), count, describedMembers, describedPartitions,
                    state, listedType);
        }
    }

    static void admin(String bootstrap) throws Exception {
        String suffix = Long.toString(System.nanoTime());
        String t1 = "java-admin-a-" + suffix, t2 = "java-admin-b-" + suffix;
        try (Admin admin = newAdmin(bootstrap)) {
            // describeCluster
            DescribeClusterResult dc = admin.describeCluster();
            Collection<Node> nodes = dc.nodes().get(TIMEOUT_S, TimeUnit.SECONDS);
            Node controller = dc.controller().get(TIMEOUT_S, TimeUnit.SECONDS);
            String clusterId = dc.clusterId().get(TIMEOUT_S, TimeUnit.SECONDS);
            check(nodes.size() == 1, "describeCluster: %d nodes, expected 1: %s", nodes.size(), nodes);
            Node self = nodes.iterator().next();
            check(bootstrap.equals(self.host() + ":" + self.port()), "describeCluster: node %s, expected %s", self, bootstrap);
            check(controller != null && controller.id() == self.id(), "describeCluster: controller %s, expected node %d",
                    controller, self.id());
            check(clusterId != null && !clusterId.isEmpty(), "describeCluster: empty cluster id");

            // createTopics (one with a config)
            admin.createTopics(List.of(
                    new NewTopic(t1, 2, (short) 1).configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete")),
                    new NewTopic(t2, 3, (short) 1))).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            // creating it again must fail with TopicExistsException
            try {
                admin.createTopics(List.of(new NewTopic(t2, 3, (short) 1))).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                check(false, "createTopics: second create of %s succeeded", t2);
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException,
                        "createTopics: second create gave %s, expected TopicExistsException", e.getCause());
            }

            // listTopics
            Set<String> names = admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS);
            check(names.contains(t1) && names.contains(t2), "listTopics: %s missing %s/%s", names, t1, t2);
            int listed = names.size();

            // describeTopics
            Map<String, TopicDescription> desc = admin.describeTopics(List.of(t1, t2)).allTopicNames()
                    .get(TIMEOUT_S, TimeUnit.SECONDS);
            check(desc.get(t1).partitions().size() == 2, "describeTopics %s: %d partitions, expected 2", t1,
                    desc.get(t1).partitions().size());
            check(desc.get(t2).partitions().size() == 3, "describeTopics %s: %d partitions, expected 3", t2,
                    desc.get(t2).partitions().size());
            for (TopicDescription td : desc.values()) {
                check(!td.isInternal(), "describeTopics %s: internal", td.name());
                for (TopicPartitionInfo pi : td.partitions()) {
                    check(pi.leader() != null && pi.leader().id() == self.id(), "describeTopics %s-%d: leader %s",
                            td.name(), pi.partition(), pi.leader());
                    check(pi.replicas().size() == 1 && pi.isr().size() == 1, "describeTopics %s-%d: replicas %s isr %s",
                            td.name(), pi.partition(), pi.replicas(), pi.isr());
                }
            }

            // describeConfigs (topic and broker)
            ConfigResource r1 = new ConfigResource(ConfigResource.Type.TOPIC, t1);
            ConfigResource rb = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(self.id()));
            Map<ConfigResource, Config> cfgs = admin.describeConfigs(List.of(r1, rb)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            ConfigEntry ret = cfgs.get(r1).get("retention.ms");
            check(ret != null && "3600000".equals(ret.value()), "describeConfigs %s: retention.ms = %s", t1, ret);
            check(ret.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                    "describeConfigs %s: retention.ms source %s, expected DYNAMIC_TOPIC_CONFIG", t1, ret.source());
            ConfigEntry cp = cfgs.get(r1).get("cleanup.policy");
            check(cp != null && "delete".equals(cp.value()), "describeConfigs %s: cleanup.policy = %s", t1, cp);
            int topicConfigs = cfgs.get(r1).entries().size();
            int brokerConfigs = cfgs.get(rb).entries().size();
            check(brokerConfigs > 0, "describeConfigs broker %d: no entries", self.id());

            // createPartitions: t2 3 -> 5
            admin.createPartitions(Map.of(t2, NewPartitions.increaseTo(5))).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            int after = -1;
            long deadline = System.currentTimeMillis() + 10000;
            while (System.currentTimeMillis() < deadline) {
                after = admin.describeTopics(List.of(t2)).allTopicNames().get(TIMEOUT_S, TimeUnit.SECONDS)
                        .get(t2).partitions().size();
                if (after == 5) break;
                Thread.sleep(200);
            }
            check(after == 5, "createPartitions %s: describeTopics shows %d partitions, expected 5", t2, after);
            // shrinking must be rejected
            try {
                admin.createPartitions(Map.of(t2, NewPartitions.increaseTo(2))).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                check(false, "createPartitions: shrinking %s to 2 succeeded", t2);
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidPartitionsException,
                        "createPartitions shrink gave %s, expected InvalidPartitionsException", e.getCause());
            }

            // deleteTopics
            admin.deleteTopics(List.of(t1, t2)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            Set<String> left = null;
            deadline = System.currentTimeMillis() + 10000;
            while (System.currentTimeMillis() < deadline) {
                left = new HashSet<>(admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS));
                if (!left.contains(t1) && !left.contains(t2)) break;
                Thread.sleep(200);
            }
            check(left != null && !left.contains(t1) && !left.contains(t2), "deleteTopics: still listed: %s", left);
            try {
                admin.describeTopics(List.of(t1)).allTopicNames().get(TIMEOUT_S, TimeUnit.SECONDS);
                check(false, "describeTopics of deleted %s succeeded", t1);
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException,
                        "describeTopics of deleted topic gave %s, expected UnknownTopicOrPartitionException", e.getCause());
            }

            System.out.printf("OK admin nodes=%d controller=%d created=2 listed=%d topic_configs=%d broker_configs=%d "
                    + "partitions_after=%d deleted=2 remaining=%d%n", nodes.size(), controller.id(), listed,
                    topicConfigs, brokerConfigs, after, left.size());
        }
    }
}
