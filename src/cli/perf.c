/* perf: `gregor perf producer|consumer`, the kafka-producer-perf-test.sh and
 * kafka-consumer-perf-test.sh work-alikes, with Kafka's summary lines so results compare. */
#include "cli/cli.h"
#include "cli/args.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Latency samples kept for percentiles; beyond this we sample every k-th record like Kafka. */
#define PERF_MAX_SAMPLES 500000
#define PERF_REPORT_INTERVAL_MS 5000
#define PERF_MAX_RECORD_SIZE (100 * 1024 * 1024)
#define PERF_MAX_ARGS 1024
/* Records taken per consumer poll: Kafka's max.poll.records default. */
#define PERF_POLL_RECORDS 500

static struct cli_opt perf_opts[] = {
    {"topic", CLI_OPT_VALUE, "<String: topic>", "REQUIRED: produce/consume messages to/from this "
     "topic; producer: a comma-separated list spreads records over the topics round-robin", 0, 0, 0},
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server>", "The server(s) to connect to "
     "(or bootstrap.servers in --producer-props).", 0, 0, 0},
    {"broker-list", CLI_OPT_VALUE, "<String: server>", "DEPRECATED, use --bootstrap-server.", 0, 0, 0},
    {"num-records", CLI_OPT_VALUE, "<Long>", "producer: number of messages to produce (with "
     "--duration-sec: at most this many)", 0, 0, 0},
    {"duration-sec", CLI_OPT_VALUE, "<Double: seconds>", "producer: produce for this long, then "
     "flush and report (--num-records becomes optional); consumer: stop after this long "
     "(--messages becomes optional)", 0, 0, 0},
    {"record-size", CLI_OPT_VALUE, "<Integer>", "producer: message size in bytes", 0, 0, 0},
    {"throughput", CLI_OPT_VALUE, "<Double>", "producer: throttle to about this many messages/sec; "
     "-1 to disable throttling", 0, 0, 0},
    {"producer-props", CLI_OPT_LIST, "<k=v ...>", "producer: client properties, e.g. acks=1 "
     "linger.ms=5 (any librdkafka or Java-client name; applied after --producer.config)", 0, 0, 0},
    {"producer.config", CLI_OPT_VALUE, "<String: file>", "producer: client properties file", 0, 0, 0},
    {"enqueue-batch", CLI_OPT_VALUE, "<Integer: records>", "producer (gregor only): hand records "
     "to the client this many at a time with rd_kafka_produce_batch, all sharing one uncopied "
     "payload, so the load generator spends less CPU per record (default 1: one producev call "
     "per record with a copied payload, as Kafka's tool sends one record per call; ignored with "
     "--throughput)", 0, 0, 0},
    {"print-metrics", CLI_OPT_FLAG, NULL, "Accepted for compatibility.", 0, 0, 0},
    {"messages", CLI_OPT_VALUE, "<Long>", "consumer: the number of messages to consume (optional with --duration-sec)", 0, 0, 0},
    {"group", CLI_OPT_VALUE, "<String>", "consumer: group id (default perf-consumer-RANDOM)", 0, 0, 0},
    {"timeout", CLI_OPT_VALUE, "<Long: ms>", "consumer: max time between returned records "
     "(default 10000)", 0, 0, 0},
    {"consumer.config", CLI_OPT_VALUE, "<String: file>", "consumer: client properties file", 0, 0, 0},
    {"consumer-props", CLI_OPT_LIST, "<k=v ...>", "consumer: client properties, e.g. "
     "fetch.max.bytes=52428800 (applied after --consumer.config and --command-config)", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: file>", "client properties file", 0, 0, 0},
    {"show-detailed-stats", CLI_OPT_FLAG, NULL, "consumer: print the stats of each "
     "--reporting-interval (as Kafka's tool: then no summary line)", 0, 0, 0},
    {"reporting-interval", CLI_OPT_VALUE, "<Long: interval_ms>", "consumer: interval of "
     "--show-detailed-stats (default: 5000)", 0, 0, 0},
    {"hide-header", CLI_OPT_FLAG, NULL, "consumer: skip the header line of the stats", 0, 0, 0},
    {"from-latest", CLI_OPT_FLAG, NULL, "consumer: without a committed offset, start at the "
     "end of the log instead of the beginning", 0, 0, 0},
    {"fetch-size", CLI_OPT_VALUE, "<Integer: size>", "consumer: max.partition.fetch.bytes "
     "(default: 1048576)", 0, 0, 0},
    {"socket-buffer-size", CLI_OPT_VALUE, "<Integer: size>", "consumer: the TCP receive buffer "
     "(socket.receive.buffer.bytes; default: the system's, where Kafka's tool sets 2097152)", 0,
     0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd perf_cmd = {
    "gregor perf", "usage: gregor perf producer|consumer [options]\n"
    "Measures produce or consume throughput and latency like kafka-producer-perf-test.sh / "
    "kafka-consumer-perf-test.sh.\n"
    "producer: the last stdout line is Kafka's summary (avg/max latency in ms with decimals,\n"
    "percentiles in whole ms as Kafka prints them); the line before it, \"latency.us: ...\",\n"
    "gives the same send-to-ack latencies in microseconds.", perf_opts,
};

struct perf_stats {
    long long start_ms, window_start_ms;
    long long count, bytes, errors;
    long long window_count, window_bytes;
    double latency_sum_us, window_latency_sum_us;
    long long max_latency_us, window_max_latency_us;
    /* Send-to-ack latency in us of every sampling-th record. When the buffer fills (a duration
     * run has no known record count) every other sample is dropped and sampling doubles, so the
     * samples stay evenly spread over the whole run. */
    long long *samples;
    long long sample_count, sampling, seen;
};

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void perf_window_report(struct perf_stats *st, long long now)
{
    double secs = (double)(now - st->window_start_ms) / 1000.0;
    if (secs <= 0 || st->window_count == 0)
        return;
    fprintf(stderr, "%lld records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, "
            "%.1f ms max latency.\n", st->window_count, st->window_count / secs,
            st->window_bytes / secs / (1024.0 * 1024.0),
            st->window_latency_sum_us / 1000.0 / (double)st->window_count,
            (double)st->window_max_latency_us / 1000.0);
    st->window_start_ms = now;
    st->window_count = st->window_bytes = 0;
    st->window_latency_sum_us = 0;
    st->window_max_latency_us = 0;
}

/* The send time rides in the message opaque, so each delivery knows its latency. */
static void perf_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct perf_stats *st = opaque;
    if (msg->err) {
        if (st->errors++ == 0)
            fprintf(stderr, "ERROR delivery failed: %s\n", rd_kafka_err2str(msg->err));
        return;
    }
    long long latency = now_us() - (long long)(intptr_t)msg->_private;
    if (st->seen++ % st->sampling == 0) {
        if (st->sample_count == PERF_MAX_SAMPLES) {
            for (long long i = 0; i < PERF_MAX_SAMPLES / 2; i++)
                st->samples[i] = st->samples[2 * i];
            st->sample_count = PERF_MAX_SAMPLES / 2;
            st->sampling *= 2;
        }
        if ((st->seen - 1) % st->sampling == 0)
            st->samples[st->sample_count++] = latency;
    }
    st->count++;
    st->bytes += (long long)msg->len;
    st->window_count++;
    st->window_bytes += (long long)msg->len;
    st->latency_sum_us += (double)latency;
    st->window_latency_sum_us += (double)latency;
    if (latency > st->max_latency_us)
        st->max_latency_us = latency;
    if (latency > st->window_max_latency_us)
        st->window_max_latency_us = latency;
}

static int ll_compare(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void perf_final_report(struct perf_stats *st)
{
    double secs = (double)(cli_now_ms() - st->start_ms) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    qsort(st->samples, (size_t)st->sample_count, sizeof *st->samples, ll_compare);
    long long pct[4] = {0, 0, 0, 0};
    const double at[4] = {0.5, 0.95, 0.99, 0.999};
    for (int i = 0; i < 4 && st->sample_count > 0; i++)
        pct[i] = st->samples[(long long)(at[i] * (double)st->sample_count)];
    double avg_us = st->count ? st->latency_sum_us / (double)st->count : 0.0;
    /* Microseconds first; then Kafka's line, which stays the last one (scripts take it). */
    printf("latency.us: %.1f avg, %lld max, %lld 50th, %lld 95th, %lld 99th, %lld 99.9th, "
           "%lld samples.\n", avg_us, st->max_latency_us, pct[0], pct[1], pct[2], pct[3],
           st->sample_count);
    /* Kafka prints avg/max as doubles and the percentiles as whole (truncated) ms. */
    printf("%lld records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max "
           "latency, %lld ms 50th, %lld ms 95th, %lld ms 99th, %lld ms 99.9th.\n", st->count,
           st->count / secs, st->bytes / secs / (1024.0 * 1024.0), avg_us / 1000.0,
           (double)st->max_latency_us / 1000.0, pct[0] / 1000, pct[1] / 1000, pct[2] / 1000,
           pct[3] / 1000);
}

static rd_kafka_t *perf_producer_new(struct cli_cmd *cmd, struct perf_stats *st)
{
    const char *bootstrap = cli_value(cmd, "bootstrap-server");
    if (!bootstrap)
        bootstrap = cli_value(cmd, "broker-list");
    /* bootstrap.servers in --producer-props, applied below, overrides this default. */
    rd_kafka_conf_t *base = cli_conf_new(bootstrap ? bootstrap : "localhost:9092");
    if (!base)
        return NULL;
    if (cli_conf_set(base, "queue.buffering.max.messages", "1000000") != 0 ||
        cli_conf_apply_options(base, cmd, "producer.config", "producer-props") != 0) {
        rd_kafka_conf_destroy(base);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(base, perf_on_delivery);
    rd_kafka_conf_set_opaque(base, st);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "Cannot create producer: %s\n", errstr);
        rd_kafka_conf_destroy(base);
    }
    return rk;
}

/* Parse --duration-sec (seconds, may be fractional) into ms; 0 when absent, -1 when invalid. */
static long long perf_duration_ms(struct cli_cmd *cmd)
{
    const char *v = cli_value(cmd, "duration-sec");
    if (!v)
        return 0;
    char *end;
    double secs = strtod(v, &end);
    if (end == v || *end || !(secs > 0) || secs > 1e9)
        return -1;
    long long ms = (long long)(secs * 1000.0);
    return ms > 0 ? ms : 1;
}

/* Split "a,b,c" in place; returns how many topics (at most max), 0 on an empty name. */
static int perf_split_topics(char *list, char **topics, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return -1;
        topics[n++] = t;
    }
    return n;
}

#define PERF_MAX_TOPICS 100000
#define PERF_MAX_ENQUEUE_BATCH 100000
#define PERF_MAX_ENQUEUE_BATCH_STR "100000"

/* The --enqueue-batch loop: up to `batch` records at a time go to one topic (the topics take
 * turns by batch) with rd_kafka_produce_batch, which takes the partition queue's lock once per
 * call instead of once per record; the payload is shared, not copied (librdkafka copies it
 * once, into the request). Records the client's queue refused are handed again, in order,
 * after a poll. Every record of a call carries the call's time, so latencies stay
 * send-to-ack. Returns how many records were handed over (a produce error other than a full
 * queue counts in st->errors and ends the loop). */
static long long perf_produce_batches(rd_kafka_t *rk, rd_kafka_topic_t **rkts, int n_topics,
                                      char *payload, size_t size, long long records, long long batch,
                                      long long deadline, struct perf_stats *st)
{
    rd_kafka_message_t *msgs = calloc((size_t)batch, sizeof *msgs);
    if (!msgs) {
        st->errors++;
        return 0;
    }
    long long sent = 0, turn = 0;
    while (sent < records && !cli_stop_requested) {
        int n = (int)(records - sent < batch ? records - sent : batch);
        void *at = (void *)(intptr_t)now_us();
        for (int i = 0; i < n; i++)
            msgs[i] = (rd_kafka_message_t){.payload = payload, .len = size, ._private = at};
        rd_kafka_topic_t *rkt = rkts[turn++ % n_topics];
        int left = n;
        while (left > 0) {
            int done = rd_kafka_produce_batch(rkt, RD_KAFKA_PARTITION_UA, 0, msgs, left);
            int kept = 0;
            for (int i = 0; done < left && i < left; i++) {
                if (msgs[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                    continue;
                if (msgs[i].err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    fprintf(stderr, "ERROR produce failed: %s\n", rd_kafka_err2str(msgs[i].err));
                    st->errors++;
                    free(msgs);
                    return sent + done;
                }
                msgs[kept] = msgs[i];
                msgs[kept++].err = RD_KAFKA_RESP_ERR_NO_ERROR;
            }
            sent += left - kept;
            left = kept;
            rd_kafka_poll(rk, left > 0 ? 10 : 0);
            if (cli_stop_requested)
                break;
        }
        long long now = cli_now_ms();
        if (now - st->window_start_ms >= PERF_REPORT_INTERVAL_MS)
            perf_window_report(st, now);
        if (now >= deadline)
            break;
    }
    free(msgs);
    return sent;
}

static int perf_producer(struct cli_cmd *cmd)
{
    const char *topic_arg = cli_value(cmd, "topic");
    long long records = INT64_MAX, size, duration_ms = perf_duration_ms(cmd);
    double throughput = -1;
    if (!topic_arg || (!cli_value(cmd, "num-records") && !duration_ms) || !cli_value(cmd, "record-size"))
        return cli_usage_error(cmd, "perf producer needs --topic, --num-records (or --duration-sec) "
                               "and --record-size");
    if (duration_ms < 0)
        return cli_usage_error(cmd, "Invalid --duration-sec");
    if ((cli_value(cmd, "num-records") &&
         cli_parse_long(cli_value(cmd, "num-records"), 1, INT64_MAX, &records) != 0) ||
        cli_parse_long(cli_value(cmd, "record-size"), 0, PERF_MAX_RECORD_SIZE, &size) != 0)
        return cli_usage_error(cmd, "Invalid --num-records or --record-size");
    if (cli_value(cmd, "throughput"))
        throughput = strtod(cli_value(cmd, "throughput"), NULL);
    long long enqueue_batch = 1;
    if (cli_value(cmd, "enqueue-batch") &&
        cli_parse_long(cli_value(cmd, "enqueue-batch"), 1, PERF_MAX_ENQUEUE_BATCH, &enqueue_batch) != 0)
        return cli_usage_error(cmd, "Invalid --enqueue-batch (1.." PERF_MAX_ENQUEUE_BATCH_STR ")");
    char *topic_list = strdup(topic_arg);
    char **topics = calloc(PERF_MAX_TOPICS, sizeof *topics);
    int n_topics = topic_list && topics ? perf_split_topics(topic_list, topics, PERF_MAX_TOPICS) : -1;
    if (n_topics <= 0) {
        free(topic_list);
        free(topics);
        return cli_usage_error(cmd, "Invalid --topic list");
    }
    struct perf_stats st = {0};
    st.sampling = duration_ms ? 1 : records / PERF_MAX_SAMPLES + 1;
    st.samples = calloc(PERF_MAX_SAMPLES, sizeof *st.samples);
    char *payload = malloc((size_t)size + 1);
    rd_kafka_t *rk = st.samples && payload ? perf_producer_new(cmd, &st) : NULL;
    if (!rk) {
        free(st.samples);
        free(payload);
        free(topic_list);
        free(topics);
        return 1;
    }
    /* One topic handle per topic, made once: producev would look each name up per record. */
    rd_kafka_topic_t **rkts = calloc((size_t)n_topics, sizeof *rkts);
    int handles_ok = rkts != NULL;
    for (int i = 0; rkts && i < n_topics; i++)
        if (!(rkts[i] = rd_kafka_topic_new(rk, topics[i], NULL))) {
            fprintf(stderr, "Cannot create topic handle %s: %s\n", topics[i],
                    rd_kafka_err2str(rd_kafka_last_error()));
            handles_ok = 0;
            break;
        }
    /* Kafka fills the payload with random uppercase letters. */
    for (long long i = 0; i < size; i++)
        payload[i] = (char)('A' + rand() % 26);
    cli_install_stop_signals();
    st.start_ms = st.window_start_ms = cli_now_ms();
    long long start_us = now_us();
    long long deadline = duration_ms ? st.start_ms + duration_ms : INT64_MAX;
    long long sent = 0;
    bool batched = enqueue_batch > 1 && throughput <= 0; /* a throttled run sends one by one */
    if (batched && handles_ok)
        sent = perf_produce_batches(rk, rkts, n_topics, payload, (size_t)size, records,
                                    enqueue_batch, deadline, &st);
    for (; handles_ok && !batched && sent < records && !cli_stop_requested; sent++) {
        rd_kafka_topic_t *rkt = rkts[sent % n_topics];
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_VALUE(payload, (size_t)size),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)now_us()), RD_KAFKA_V_END);
            if (!err)
                break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cli_stop_requested) {
                fprintf(stderr, "ERROR produce failed: %s\n", rd_kafka_err2str(err));
                st.errors++;
                break;
            }
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
        if (throughput > 0) {
            /* Wait for this record's slot in the schedule inside rd_kafka_poll, which returns
             * as soon as a delivery report is due, so acks are timed when they arrive and not
             * when the wait ends (a plain sleep would add up to one slot to every latency). */
            long long due_us = start_us + (long long)((double)(sent + 1) * 1e6 / throughput);
            if (duration_ms && due_us > start_us + duration_ms * 1000)
                due_us = start_us + duration_ms * 1000;
            for (long long now_u = now_us(); now_u < due_us && !cli_stop_requested; now_u = now_us())
                rd_kafka_poll(rk, (int)((due_us - now_u + 999) / 1000));
        }
        long long now = cli_now_ms();
        if (now - st.window_start_ms >= PERF_REPORT_INTERVAL_MS)
            perf_window_report(&st, now);
        if (now >= deadline) {
            sent++;
            break;
        }
    }
    rd_kafka_flush(rk, 120000);
    perf_final_report(&st);
    for (int i = 0; rkts && i < n_topics && rkts[i]; i++)
        rd_kafka_topic_destroy(rkts[i]);
    free(rkts);
    rd_kafka_destroy(rk);
    free(st.samples);
    free(payload);
    free(topic_list);
    free(topics);
    /* A duration run succeeds when everything it sent was acknowledged. */
    return st.errors || !handles_ok || st.count < (duration_ms ? sent : records) ? 1 : 0;
}

static void format_time(char *buf, size_t size, struct timespec *ts)
{
    struct tm tm;
    localtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, size - n, ":%03ld", ts->tv_nsec / 1000000);
}

/* Kafka's consumer stats: totals so far, then rates over the interval (and over its fetch
 * part, without the time spent joining the group). */
struct perf_interval {
    long long start_ms, join_ms, count, bytes;
};

/* One stats line: "PREFIX, " then the totals so far and the rates over iv..now. The summary
 * is the same line over one interval from the start, prefixed by start and end time. */
static void perf_stats_line(const char *prefix, const struct perf_interval *iv, long long now,
                            long long count, long long bytes)
{
    double mb = (double)(bytes - iv->bytes) / (1024.0 * 1024.0), n = (double)(count - iv->count);
    double secs = (double)(now - iv->start_ms) / 1000.0;
    long long fetch_ms = now - iv->start_ms - iv->join_ms;
    printf("%s, %.4f, %.4f, %lld, %.4f, %lld, %lld, %.4f, %.4f\n", prefix,
           (double)bytes / (1024.0 * 1024.0), secs > 0 ? mb / secs : 0.0, count,
           secs > 0 ? n / secs : 0.0, iv->join_ms, fetch_ms,
           fetch_ms > 0 ? mb * 1000.0 / (double)fetch_ms : 0.0,
           fetch_ms > 0 ? n * 1000.0 / (double)fetch_ms : 0.0);
}

static void perf_consumer_progress(struct perf_interval *iv, long long now, long long count,
                                   long long bytes)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    char t[64], prefix[72];
    format_time(t, sizeof t, &wall);
    snprintf(prefix, sizeof prefix, "%s, 0", t); /* Kafka's threadId column */
    perf_stats_line(prefix, iv, now, count, bytes);
    fflush(stdout);
    *iv = (struct perf_interval){.start_ms = now, .count = count, .bytes = bytes};
}

static int perf_consumer(struct cli_cmd *cmd)
{
    const char *topic = cli_value(cmd, "topic");
    long long messages = INT64_MAX, timeout_ms = 10000, duration_ms = perf_duration_ms(cmd);
    if (duration_ms < 0)
        return cli_usage_error(cmd, "Invalid --duration-sec");
    if (!topic || (!cli_value(cmd, "messages") && !duration_ms) ||
        (cli_value(cmd, "messages") &&
         cli_parse_long(cli_value(cmd, "messages"), 1, INT64_MAX, &messages) != 0))
        return cli_usage_error(cmd, "perf consumer needs --topic and --messages N (or --duration-sec)");
    if (cli_value(cmd, "timeout") && cli_parse_long(cli_value(cmd, "timeout"), 1, INT64_MAX, &timeout_ms))
        return cli_usage_error(cmd, "Invalid --timeout");
    long long interval_ms = PERF_REPORT_INTERVAL_MS, size;
    if (cli_value(cmd, "reporting-interval") &&
        cli_parse_long(cli_value(cmd, "reporting-interval"), 1, INT64_MAX, &interval_ms))
        return cli_usage_error(cmd, "Invalid --reporting-interval");
    if ((cli_value(cmd, "fetch-size") && cli_parse_long(cli_value(cmd, "fetch-size"), 1, INT32_MAX, &size)) ||
        (cli_value(cmd, "socket-buffer-size") &&
         cli_parse_long(cli_value(cmd, "socket-buffer-size"), 1, INT32_MAX, &size)))
        return cli_usage_error(cmd, "Invalid --fetch-size or --socket-buffer-size");
    bool detailed = cli_has(cmd, "show-detailed-stats"), header = !cli_has(cmd, "hide-header");
    const char *bootstrap = cli_bootstrap(cmd);
    if (!bootstrap)
        return 1;
    rd_kafka_conf_t *conf = cli_conf_new(bootstrap);
    char group[64];
    snprintf(group, sizeof group, "perf-consumer-%d", (int)(getpid() % 100000));
    if (!conf || cli_conf_set(conf, "group.id", cli_value(cmd, "group") ? cli_value(cmd, "group") : group) ||
        cli_conf_set(conf, "auto.offset.reset", cli_has(cmd, "from-latest") ? "latest" : "earliest") ||
        cli_conf_set(conf, "enable.auto.commit", "false") ||
        (cli_value(cmd, "fetch-size") &&
         cli_conf_set(conf, "max.partition.fetch.bytes", cli_value(cmd, "fetch-size"))) ||
        (cli_value(cmd, "socket-buffer-size") &&
         cli_conf_set(conf, "socket.receive.buffer.bytes", cli_value(cmd, "socket-buffer-size"))) ||
        cli_conf_apply_options(conf, cmd, "consumer.config", NULL) ||
        cli_conf_apply_options(conf, cmd, "command-config", "consumer-props")) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        return 1;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "Cannot create consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    cli_install_stop_signals();
    struct timespec start_wall, end_wall;
    clock_gettime(CLOCK_REALTIME, &start_wall);
    long long start = cli_now_ms(), last = start, first_record = -1, count = 0, bytes = 0;
    long long deadline = duration_ms ? start + duration_ms : INT64_MAX;
    struct perf_interval iv = {.start_ms = start};
    if (detailed && header)
        printf("time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
               "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n");
    /* Records come PERF_POLL_RECORDS at a time, as Kafka's tool gets them from poll()
     * (max.poll.records); the clock is read once per batch. */
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *batch[PERF_POLL_RECORDS];
    long long now = start;
    while (count < messages && !cli_stop_requested && now - last < timeout_ms && now < deadline) {
        long long want = messages - count < PERF_POLL_RECORDS ? messages - count : PERF_POLL_RECORDS;
        ssize_t n = rd_kafka_consume_batch_queue(queue, 100, batch, (size_t)want);
        now = cli_now_ms();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *msg = batch[i];
            if (!msg->err) {
                if (first_record < 0) {
                    first_record = now;
                    iv.join_ms = now - iv.start_ms; /* the group join: time to the first record */
                }
                count++;
                bytes += (long long)msg->len + (long long)msg->key_len;
                last = now;
            } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "WARN %s\n", rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
        }
        if (detailed && n > 0 && now - iv.start_ms >= interval_ms)
            perf_consumer_progress(&iv, now, count, bytes);
    }
    rd_kafka_queue_destroy(queue);
    clock_gettime(CLOCK_REALTIME, &end_wall);
    long long end = cli_now_ms();
    int short_of = duration_ms ? count == 0 || (messages != INT64_MAX && count < messages &&
                                                end < deadline)
                               : count < messages;
    if (short_of)
        fprintf(stderr, "WARNING: Exiting before consuming the expected number of messages: "
                "timeout (%lld ms) exceeded. You can use the --timeout option to increase the timeout.\n",
                timeout_ms);
    long long rebalance_ms = first_record >= 0 ? first_record - start : end - start;
    char s[64], e[64], span[132];
    format_time(s, sizeof s, &start_wall);
    format_time(e, sizeof e, &end_wall);
    snprintf(span, sizeof span, "%s, %s", s, e);
    if (header && !detailed)
        printf("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
               "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n");
    if (!detailed) /* Kafka's tool prints either the intervals or the summary */
        perf_stats_line(span, &(struct perf_interval){.start_ms = start, .join_ms = rebalance_ms},
                        end, count, bytes);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return short_of ? 1 : 0;
}

/* Kafka's --producer-props takes every following word up to the next option (and so does our
 * --consumer-props); rewrite it as one option per value so the shared parser can read it. */
static int expand_props(int argc, char **argv, char **out, int max)
{
    char *in_props = NULL;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--producer-props") == 0 || strcmp(argv[i], "--consumer-props") == 0) {
            in_props = argv[i];
            continue;
        }
        if (strncmp(argv[i], "--", 2) == 0)
            in_props = NULL;
        if (n + 2 > max)
            return -1;
        if (in_props)
            out[n++] = in_props;
        out[n++] = argv[i];
    }
    return n;
}

int cli_perf(int argc, char **argv)
{
    /* argv may start with "perf"; the mode word follows. */
    if (argc > 0 && strcmp(argv[0], "perf") == 0) {
        argc--;
        argv++;
    }
    if (argc < 1 || (strcmp(argv[0], "producer") != 0 && strcmp(argv[0], "consumer") != 0)) {
        if (argc >= 1 && strcmp(argv[0], "--help") == 0) {
            cli_usage(&perf_cmd, stdout);
            return 0;
        }
        return cli_usage_error(&perf_cmd, "perf needs a mode: producer or consumer");
    }
    int producer = strcmp(argv[0], "producer") == 0;
    static char *expanded[PERF_MAX_ARGS];
    int n = expand_props(argc - 1, argv + 1, expanded, PERF_MAX_ARGS);
    if (n < 0)
        return cli_usage_error(&perf_cmd, "Too many arguments");
    int parsed = cli_args_parse(&perf_cmd, n, expanded);
    int rc = parsed ? cli_args_exit_code(parsed)
                    : producer ? perf_producer(&perf_cmd) : perf_consumer(&perf_cmd);
    cli_args_free(&perf_cmd);
    fflush(stdout);
    return rc;
}
