/* e2e_latency: end-to-end latency (produce call -> record handed to a consumer) at a fixed
 * offered rate, in microseconds. `gregor perf producer` only reports produce->ack latency in
 * whole milliseconds, so this fills the gap; it uses the same librdkafka as gregor perf.
 *
 * usage: e2e_latency BOOTSTRAP TOPIC RATE SECONDS SIZE [producer k=v ...]
 * The topic must exist (partition 0 is read from the beginning). The first second is warm-up
 * and not counted. Prints one JSON line.
 */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct run {
    const char *bootstrap, *topic;
    long long expected, received, count, errors;
    long long warm_until_ns;
    long long start_ns, last_recv_ns;
    double *lat_us;
    volatile int done;
};

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "e2e_latency: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

static void *consume(void *arg)
{
    struct run *r = arg;
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    set(c, "bootstrap.servers", r->bootstrap);
    set(c, "group.id", "e2e-latency");
    set(c, "enable.auto.commit", "false");
    set(c, "fetch.wait.max.ms", "100");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "e2e_latency: consumer: %s\n", err);
        exit(1);
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    long long idle_since = now_ns();
    while (!(r->done && (r->received >= r->expected || now_ns() - idle_since > 5000000000LL))) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (!m)
            continue;
        long long t = now_ns();
        if (!m->err && m->len >= sizeof(long long)) {
            long long sent;
            memcpy(&sent, m->payload, sizeof sent);
            r->received++;
            r->last_recv_ns = t;
            idle_since = t;
            if (sent >= r->warm_until_ns && r->count < MAX_SAMPLES)
                r->lat_us[r->count++] = (double)(t - sent) / 1000.0;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        ((struct run *)opaque)->errors++;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: e2e_latency BOOTSTRAP TOPIC RATE SECONDS SIZE [k=v ...]\n");
        return 2;
    }
    struct run r = {.bootstrap = argv[1], .topic = argv[2]};
    double rate = atof(argv[3]), secs = atof(argv[4]);
    size_t size = (size_t)atol(argv[5]);
    if (size < sizeof(long long))
        size = sizeof(long long);
    r.lat_us = malloc(sizeof(double) * MAX_SAMPLES);
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    set(c, "bootstrap.servers", r.bootstrap);
    set(c, "linger.ms", "0");
    set(c, "acks", "1");
    set(c, "queue.buffering.max.messages", "1000000");
    for (int i = 6; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        set(c, argv[i], eq + 1);
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, &r);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!p) {
        fprintf(stderr, "e2e_latency: producer: %s\n", err);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, consume, &r);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p, r.topic, NULL);
    char *payload = calloc(1, size);
    memset(payload, 'A', size);
    long long total = (long long)(rate * secs);
    r.expected = total;
    long long start = now_ns();
    r.start_ns = start;
    r.warm_until_ns = start + 1000000000LL;
    /* Send every record whose slot has come, then sleep a little: no busy-wait, which would
     * take a core from the broker on a 2-core machine. */
    for (long long i = 0; i < total;) {
        long long n = now_ns();
        for (; i < total; i++) {
            long long due = start + (long long)((double)i * 1e9 / rate);
            if (due > n)
                break;
            /* Stamp the scheduled time, not the send time, so a stall counts against the
             * broker instead of silently lowering the offered rate (coordinated omission). */
            memcpy(payload, &due, sizeof due);
            while (rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, payload, size, NULL, 0,
                                    NULL) == -1)
                rd_kafka_poll(p, 1);
        }
        rd_kafka_poll(p, 0);
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    double offered_s = (double)(now_ns() - start) / 1e9;
    rd_kafka_flush(p, 30000);
    r.done = 1;
    pthread_join(t, NULL);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(p);
    qsort(r.lat_us, (size_t)r.count, sizeof(double), cmp);
    double p50 = 0, p99 = 0, p999 = 0, max = 0;
    if (r.count) {
        p50 = r.lat_us[r.count / 2];
        p99 = r.lat_us[(long long)(r.count * 0.99)];
        p999 = r.lat_us[(long long)(r.count * 0.999)];
        max = r.lat_us[r.count - 1];
    }
    printf("{\"rate\":%.0f,\"achieved_rate\":%.0f,\"size\":%zu,\"sent\":%lld,\"received\":%lld,"
           "\"errors\":%lld,\"samples\":%lld,\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,"
           "\"max_us\":%.0f,\"delivered_rate\":%.0f}\n", rate, total / offered_s, size, total,
           r.received, r.errors, r.count, p50, p99, p999, max,
           r.last_recv_ns > r.start_ns ? r.received / ((r.last_recv_ns - r.start_ns) / 1e9) : 0.0);
    /* E2E_QUANTILES=FILE: the distribution as 1000 quantiles, for plotting. */
    const char *qfile = getenv("E2E_QUANTILES");
    FILE *q = qfile && r.count ? fopen(qfile, "w") : NULL;
    for (int i = 0; q && i < 1000; i++) {
        double f = 1.0 - pow(10.0, -4.0 * i / 999.0); /* dense toward the tail: 0 .. 0.9999 */
        fprintf(q, "%.6f %.1f\n", f, r.lat_us[(long long)(f * (double)(r.count - 1))]);
    }
    if (q)
        fclose(q);
    free(payload);
    free(r.lat_us);
    return r.received < total ? 1 : 0;
}
