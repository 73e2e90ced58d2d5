/* group_bench: consumer-group benchmarks on librdkafka, the same driver for any broker.
 *
 *   group_bench commit BOOTSTRAP TOPIC PARTITIONS SECONDS
 *       One consumer handle (group.id set, nothing subscribed, so commits are "simple" commits
 *       with generation -1 into an Empty group) commits an offset for each of PARTITIONS
 *       partitions, synchronously (rd_kafka_commit(..., async=0)), in a loop for SECONDS; each
 *       commit carries new offsets. Prints one JSON line: commits/s and partition-offsets/s.
 *       At most one OffsetCommit is in flight: this measures round trips, not a pipeline.
 *
 *   group_bench stabilise BOOTSTRAP TOPIC MEMBERS TIMEOUT_S HEARTBEAT_MS
 *       MEMBERS consumer handles in this process subscribe to TOPIC in one new group (eager
 *       "range" assignor, classic protocol). The clock starts just before the first subscribe;
 *       the group is stable when every member holds a non-empty assignment and the assignments
 *       cover the topic's partitions exactly once (so all come from one generation). Prints one
 *       JSON line with the time, and the number of rebalance callbacks seen. Every handle is
 *       polled round-robin with a zero timeout from this one thread.
 */
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "group_bench: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die(k, err);
}

static rd_kafka_t *consumer(const char *bootstrap, const char *group, const char *hb_ms,
                            void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                              rd_kafka_topic_partition_list_t *, void *),
                            void *opaque) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", group);
    set(conf, "enable.auto.commit", "false");
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "partition.assignment.strategy", "range");
    set(conf, "log_level", "3");
    if (hb_ms) set(conf, "heartbeat.interval.ms", hb_ms);
    if (rebalance) rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    if (opaque) rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new", err);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int bench_commit(const char *bootstrap, const char *topic, int parts, double secs) {
    char group[128];
    snprintf(group, sizeof group, "bench-commit-%d-%ld", parts, (long)time(NULL));
    rd_kafka_t *rk = consumer(bootstrap, group, NULL, NULL, NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(l, topic, p);

    /* Warm up: coordinator lookup and connection, not measured. */
    for (int p = 0; p < parts; p++) l->elems[p].offset = 0;
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
    if (e) die("warm-up commit", rd_kafka_err2str(e));

    long n = 0, errors = 0;
    double t0 = now_s(), t = t0, lat_max = 0;
    while (t - t0 < secs) {
        for (int p = 0; p < parts; p++) l->elems[p].offset = n + 1;
        double s = now_s();
        e = rd_kafka_commit(rk, l, 0);
        t = now_s();
        if (t - s > lat_max) lat_max = t - s;
        if (e) errors++;
        for (int p = 0; p < parts && !e; p++)
            if (l->elems[p].err) { errors++; break; }
        n++;
    }
    double el = t - t0;
    printf("{\"bench\":\"offset_commit\",\"partitions\":%d,\"commits\":%ld,\"errors\":%ld,"
           "\"seconds\":%.3f,\"commits_per_s\":%.1f,\"offsets_per_s\":%.1f,"
           "\"mean_ms\":%.3f,\"max_ms\":%.3f}\n",
           parts, n, errors, el, n / el, n * (double)parts / el, 1000 * el / n, 1000 * lat_max);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return errors ? 1 : 0;
}

struct member {
    int assigned;          /* partitions in the current assignment */
    int *owned;            /* per partition: 1 when this member holds it */
    int nparts;
    long rebalances;
};

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct member *m = opaque;
    m->rebalances++;
    memset(m->owned, 0, sizeof(int) * m->nparts);
    m->assigned = 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].partition < m->nparts) m->owned[parts->elems[i].partition] = 1;
        m->assigned = parts->cnt;
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static int partition_count(rd_kafka_t *rk, const char *topic) {
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    if (e) die("metadata", rd_kafka_err2str(e));
    int n = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n;
}

static int bench_stabilise(const char *bootstrap, const char *topic, int members, double timeout,
                           const char *hb_ms) {
    char group[128];
    snprintf(group, sizeof group, "bench-stab-%d-%ld-%d", members, (long)time(NULL), getpid());
    struct member *m = calloc(members, sizeof *m);
    rd_kafka_t **rk = calloc(members, sizeof *rk);
    for (int i = 0; i < members; i++)
        rk[i] = consumer(bootstrap, group, hb_ms, on_rebalance, &m[i]);
    int nparts = partition_count(rk[0], topic);
    if (nparts < members) die("topic has fewer partitions than members", topic);
    for (int i = 0; i < members; i++) {
        m[i].nparts = nparts;
        m[i].owned = calloc(nparts, sizeof(int));
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);

    double t0 = now_s(), first_assign = -1, stable = -1;
    for (int i = 0; i < members; i++) {
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk[i], sub);
        if (e) die("subscribe", rd_kafka_err2str(e));
    }
    double subscribed = now_s() - t0;
    int *cover = calloc(nparts, sizeof(int));
    while (now_s() - t0 < timeout) {
        for (int i = 0; i < members; i++) {
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk[i], 0);
            if (msg) rd_kafka_message_destroy(msg);
        }
        int all = 1, any = 0;
        memset(cover, 0, sizeof(int) * nparts);
        for (int i = 0; i < members; i++) {
            if (m[i].assigned > 0) any = 1; else all = 0;
            for (int p = 0; p < nparts; p++) cover[p] += m[i].owned[p];
        }
        if (any && first_assign < 0) first_assign = now_s() - t0;
        if (all) {
            int exact = 1;
            for (int p = 0; p < nparts; p++) if (cover[p] != 1) { exact = 0; break; }
            if (exact) { stable = now_s() - t0; break; }
        }
        usleep(1000);
    }
    long rebalances = 0;
    for (int i = 0; i < members; i++) rebalances += m[i].rebalances;
    printf("{\"bench\":\"stabilise\",\"members\":%d,\"partitions\":%d,\"heartbeat_ms\":%s,"
           "\"subscribe_s\":%.3f,\"first_assignment_s\":%.3f,\"stable_s\":%.3f,"
           "\"rebalance_callbacks\":%ld}\n",
           members, nparts, hb_ms ? hb_ms : "null", subscribed, first_assign, stable, rebalances);
    fflush(stdout);
    /* Leave quickly: destroy without closing is a kill, and the broker would keep 100 dead
     * members for a session timeout; close them (leave group) in parallel via unsubscribe. */
    for (int i = 0; i < members; i++) rd_kafka_unsubscribe(rk[i]);
    for (int i = 0; i < members; i++) {
        rd_kafka_consumer_close(rk[i]);
        rd_kafka_destroy(rk[i]);
        free(m[i].owned);
    }
    rd_kafka_topic_partition_list_destroy(sub);
    free(cover);
    free(m);
    free(rk);
    return stable < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 6 && !strcmp(argv[1], "commit"))
        return bench_commit(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
    if (argc >= 7 && !strcmp(argv[1], "stabilise"))
        return bench_stabilise(argv[2], argv[3], atoi(argv[4]), atof(argv[5]), argv[6]);
    fprintf(stderr, "usage: group_bench commit BOOTSTRAP TOPIC PARTITIONS SECONDS\n"
                    "       group_bench stabilise BOOTSTRAP TOPIC MEMBERS TIMEOUT_S HEARTBEAT_MS\n");
    return 2;
}
