/* txn_produce: transactional produce throughput for bench/txn.py. One librdkafka transactional
 * producer runs back-to-back transactions (begin, N records round robin over the partitions,
 * commit) for a given time and prints one JSON line: transactions, records, wall time and the
 * commit_transaction calls' quantiles. C because the Python client used most of a core of the
 * 2-core machine at gregor's 10,000-record transactions (bench/txn.py's first run).
 *
 * usage: txn_produce BOOTSTRAP TOPIC PARTITIONS RECORDS_PER_TXN RECORD_SIZE SECONDS TXN_ID */
#define _POSIX_C_SOURCE 200809L
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_COMMITS 1000000 /* bound on the commit samples kept (one per transaction) */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int delivery_errors;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err && delivery_errors++ == 0)
        fprintf(stderr, "txn_produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
}

static void die_error(const char *what, rd_kafka_error_t *e)
{
    fprintf(stderr, "txn_produce: %s: %s\n", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC PARTITIONS RECORDS_PER_TXN RECORD_SIZE "
                        "SECONDS TXN_ID\n", argv[0]);
        return 2;
    }
    const char *topic = argv[2];
    int partitions = atoi(argv[3]);
    long per_txn = atol(argv[4]);
    size_t size = (size_t)atol(argv[5]);
    double seconds = atof(argv[6]);
    if (partitions < 1 || per_txn < 1 || size < 1 || size > (1 << 20) || seconds <= 0) {
        fprintf(stderr, "txn_produce: bad arguments\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[][2] = {{"bootstrap.servers", argv[1]}, {"transactional.id", argv[7]},
                              {"linger.ms", "5"}, {"compression.type", "none"},
                              {"transaction.timeout.ms", "60000"}};
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "txn_produce: %s\n", err);
            return 1;
        }
    /* TXN_PRODUCE_DEBUG: librdkafka debug contexts (e.g. eos,protocol), to stderr. */
    const char *debug = getenv("TXN_PRODUCE_DEBUG");
    if (debug && rd_kafka_conf_set(conf, "debug", debug, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "txn_produce: %s\n", err);
        return 1;
    }
    int trace = getenv("TXN_PRODUCE_TRACE") != NULL; /* each commit's ms to stderr */
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "txn_produce: %s\n", err);
        return 1;
    }
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 60000);
    if (e)
        die_error("init_transactions", e);
    /* The topic's metadata before the clock starts: librdkafka 2.0 otherwise holds the first
     * transaction's records ~1 s until its next metadata refresh (seen with debug=protocol). */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    if (rkt == NULL || rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "txn_produce: no metadata for %s\n", topic);
        return 1;
    }
    rd_kafka_metadata_destroy(md);
    /* Incompressible values, 16 of them in turn (as bench/txn.py's Python driver). */
    char *values = malloc(16 * size);
    double *commits = malloc(MAX_COMMITS * sizeof(double));
    if (values == NULL || commits == NULL)
        return 1;
    srand(1);
    for (size_t i = 0; i < 16 * size; i++)
        values[i] = (char)rand();
    long txns = 0, records = 0;
    double t0 = mono_s();
    while (txns == 0 || mono_s() - t0 < seconds) {
        if ((e = rd_kafka_begin_transaction(rk)))
            die_error("begin_transaction", e);
        for (long i = 0; i < per_txn; i++) {
            for (;;) {
                rd_kafka_resp_err_t r = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(i % partitions)),
                    RD_KAFKA_V_VALUE(values + (i & 15) * size, size), RD_KAFKA_V_END);
                if (r == RD_KAFKA_RESP_ERR_NO_ERROR)
                    break;
                if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    fprintf(stderr, "txn_produce: produce: %s\n", rd_kafka_err2str(r));
                    return 1;
                }
                rd_kafka_poll(rk, 10);
            }
            if (i % 1000 == 999)
                rd_kafka_poll(rk, 0);
        }
        double c0 = mono_s();
        if ((e = rd_kafka_commit_transaction(rk, 120000)))
            die_error("commit_transaction", e);
        if (txns < MAX_COMMITS)
            commits[txns] = mono_s() - c0;
        if (trace)
            fprintf(stderr, "commit %ld at %.3f s: %.2f ms\n", txns, c0 - t0, (mono_s() - c0) * 1000);
        txns++;
        records += per_txn;
    }
    double wall = mono_s() - t0;
    rd_kafka_poll(rk, 0);
    if (delivery_errors) {
        fprintf(stderr, "txn_produce: %d delivery errors\n", delivery_errors);
        return 1;
    }
    long n = txns < MAX_COMMITS ? txns : MAX_COMMITS;
    qsort(commits, (size_t)n, sizeof(double), cmp_double);
    printf("{\"txns\": %ld, \"records\": %ld, \"wall_s\": %.3f, \"commit\": {\"n\": %ld, "
           "\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}}\n",
           txns, records, wall, n, commits[n / 2] * 1000, commits[n * 99 / 100] * 1000,
           commits[n - 1] * 1000);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(values);
    free(commits);
    return 0;
}
