/* test_metrics: the Prometheus text encoder of metrics.c — label values escaped as the format
 * requires, histograms with cumulative buckets in ms, _sum and _count, the output cap, and
 * /proc/self/stat's parser (a command name holding ") " and spaces); and scrapes of a broker
 * run in-process, built over loop turns: a topic deleted between two of them, a scrape dropped
 * at broker_close, and the bound on scrapes at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "broker/broker.h"
#include "broker/metrics.h"
#include "common/util.h"
#include "log_test_util.h"
#include "net/http.h"
#include "net/loop.h"

static void test_escaping(void **state)
{
    (void)state;
    struct mtext t;
    mtext_init(&t, 1 << 20);
    const char v[] = "a\\b\"c\nd";
    mtext_escaped(&t, v, strlen(v));
    assert_false(t.over);
    assert_string_equal(t.buf, "a\\\\b\\\"c\\nd");
    mtext_free(&t);
}

static void test_samples_and_family(void **state)
{
    (void)state;
    struct mtext t;
    mtext_init(&t, 1 << 20);
    mtext_family(&t, "x_total", "counter", "Things.");
    mtext_sample_u64(&t, "x_total", "", 18446744073709551615ull);
    mtext_sample_u64(&t, "x_total", "topic=\"t\"", 3);
    assert_string_equal(t.buf, "# HELP x_total Things.\n# TYPE x_total counter\n"
                               "x_total 18446744073709551615\nx_total{topic=\"t\"} 3\n");
    mtext_free(&t);
}

static void test_histogram(void **state)
{
    (void)state;
    struct metrics_hist h = {0};
    metrics_hist_observe(&h, 50);       /* le 0.1 */
    metrics_hist_observe(&h, 100);      /* le 0.1: bounds are inclusive */
    metrics_hist_observe(&h, 101);      /* le 0.25 */
    metrics_hist_observe(&h, 3000);     /* le 5 */
    metrics_hist_observe(&h, 99000000); /* +Inf */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.bucket[0], 2);
    assert_int_equal(h.bucket[METRICS_HIST_BUCKETS - 1], 1);
    struct mtext t;
    mtext_init(&t, 1 << 20);
    mtext_histogram_ms(&t, "lat", "request=\"Produce\"", &h);
    assert_false(t.over);
    assert_non_null(strstr(t.buf, "lat_bucket{request=\"Produce\",le=\"0.1\"} 2\n"));
    assert_non_null(strstr(t.buf, "lat_bucket{request=\"Produce\",le=\"0.25\"} 3\n"));
    assert_non_null(strstr(t.buf, "lat_bucket{request=\"Produce\",le=\"2.5\"} 3\n"));
    assert_non_null(strstr(t.buf, "lat_bucket{request=\"Produce\",le=\"5\"} 4\n"));
    assert_non_null(strstr(t.buf, "lat_bucket{request=\"Produce\",le=\"10000\"} 4\n"));
    assert_non_null(strstr(t.buf, "lat_bucket{request=\"Produce\",le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(t.buf, "lat_sum{request=\"Produce\"} 99003.251\n"));
    assert_non_null(strstr(t.buf, "lat_count{request=\"Produce\"} 5\n"));
    /* Buckets never decrease. */
    unsigned long long prev = 0, v;
    int n = 0;
    for (const char *s = t.buf; (s = strstr(s, "} ")) != NULL && n < METRICS_HIST_BUCKETS; s += 2, n++) {
        assert_int_equal(sscanf(s + 2, "%llu", &v), 1);
        assert_true(v >= prev);
        prev = v;
    }
    assert_int_equal(n, METRICS_HIST_BUCKETS);
    mtext_free(&t);

    struct metrics_hist none = {0};
    mtext_init(&t, 1 << 20);
    mtext_histogram_ms(&t, "f", "", &none);
    assert_non_null(strstr(t.buf, "f_bucket{le=\"+Inf\"} 0\nf_sum 0.000\nf_count 0\n"));
    mtext_free(&t);
}

static void test_cap(void **state)
{
    (void)state;
    struct mtext t;
    mtext_init(&t, 64);
    for (int i = 0; i < 100; i++)
        mtext_sample_u64(&t, "a_metric_name", "", (uint64_t)i);
    assert_true(t.over);
    assert_true(t.len < 64);
    mtext_free(&t);
}

static void test_proc_stat(void **state)
{
    (void)state;
    const char line[] = "1234 (gre ) gor) S 1 1234 1234 0 -1 4194560 500 0 0 0 "
                        "77 33 0 0 20 0 3 0 123456 987654321 4321 18446744073709551615 1 1 0 0 0 "
                        "0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    struct proc_stat ps;
    assert_int_equal(metrics_proc_stat_parse(line, strlen(line), &ps), 0);
    assert_int_equal(ps.utime, 77);
    assert_int_equal(ps.stime, 33);
    assert_int_equal(ps.starttime, 123456);
    assert_int_equal(ps.vsize, 987654321);
    assert_int_equal(ps.rss, 4321);
    const char bad[] = "1234 (x) S 1 2";
    assert_int_equal(metrics_proc_stat_parse(bad, strlen(bad), &ps), -1);
    assert_int_equal(metrics_proc_stat_parse("no paren", 8, &ps), -1);
    const char junk[] = "1 (x) S 1 2 3 4 5 6 7 8 9 1x 2 3 4 5 6 7 8 9 0 1 2 3 4";
    assert_int_equal(metrics_proc_stat_parse(junk, strlen(junk), &ps), -1);
}

/* The number after "name " at a line's start in text, or -1. */
static long sample_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == ' ')
            return strtol(l + n + 1, NULL, 10);
    return -1;
}

static int count_prefix(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, n) == 0)
            c++;
    return c;
}

/* A topic of 1200 partitions takes several turns of a scrape (METRICS_SCRAPE_CHUNK a turn, the
 * topic's own samples counting one): deleted after the first, the scrape skips the rest of it
 * (looked up by name, never through a pointer kept across turns) and answers a whole page with
 * the 499 partitions written before. */
static void test_scrape_turns_topic_deleted_between(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct broker_config cfg;
    broker_config_defaults(&cfg);
    char err[512];
    assert_int_equal(broker_config_set(&cfg, "listeners", "PLAINTEXT://127.0.0.1:0", err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&cfg, "gregor.http.listener", "127.0.0.1:0", err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&cfg, "log.dirs", dir, err, sizeof(err)), 0);
    struct broker *b = broker_open(&cfg);
    assert_non_null(b);
    struct topic *t = NULL;
    char msg[256];
    assert_int_equal(topic_create(b, "big", 1200, NULL, 0, &t, msg, sizeof(msg)), 0);
    assert_non_null(topic_find(b, "big"));

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(b->http))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(write(fd, get, sizeof(get) - 1), (ssize_t)(sizeof(get) - 1));
    for (int i = 0; i < 500 && b->metrics.nscrapes == 0; i++)
        loop_run_once(broker_loop(b), 10);
    assert_int_equal(b->metrics.nscrapes, 1); /* one turn written, the rest posted */
    assert_int_equal(topic_delete(b, topic_find(b, "big")), 0);
    assert_null(topic_find(b, "big"));

    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    size_t cap = 4u << 20, len = 0;
    char *resp = malloc(cap);
    assert_non_null(resp);
    int64_t deadline = mono_ms() + 20000;
    for (;;) {
        assert_true(mono_ms() < deadline);
        loop_run_once(broker_loop(b), 10);
        ssize_t n = read(fd, resp + len, cap - 1 - len);
        if (n == 0)
            break; /* Connection: close: the whole answer is in */
        if (n > 0)
            len += (size_t)n;
        assert_true(len < cap - 1);
    }
    resp[len] = '\0';
    close(fd);
    assert_int_equal(b->metrics.nscrapes, 0);
    assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    assert_int_equal(sample_value(body, "kafka_server_replicamanager_partitioncount"),
                     METRICS_SCRAPE_CHUNK - 1);
    assert_int_equal(count_prefix(body, "kafka_log_log_size{topic=\"big\""), METRICS_SCRAPE_CHUNK - 1);
    assert_int_equal(sample_value(body, "kafka_server_brokertopicmetrics_messagesin_total{topic=\"big\"}"), 0);
    assert_true(sample_value(body, "process_open_fds") > 0);
    assert_non_null(strstr(body, "# TYPE kafka_log_log_size gauge"));
    free(resp);

    /* A scrape still in progress when the broker closes (console_stop): dropped with its
     * request, unanswered: the client sees the connection close without an answer. */
    assert_int_equal(topic_create(b, "big2", 1200, NULL, 0, &t, msg, sizeof(msg)), 0);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, get, sizeof(get) - 1), (ssize_t)(sizeof(get) - 1));
    for (int i = 0; i < 500 && b->metrics.nscrapes == 0; i++)
        loop_run_once(broker_loop(b), 10);
    assert_int_equal(b->metrics.nscrapes, 1);
    broker_close(b);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    assert_true(n <= 0);
    close(fd);
    tu_rmrf(dir);
    free(dir);
}

/* At most METRICS_SCRAPES_MAX scrapes are built at once: of one more sent at the same time,
 * one is answered 503 with Retry-After, the others whole. */
static void test_scrapes_bounded(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct broker_config cfg;
    broker_config_defaults(&cfg);
    char err[512];
    assert_int_equal(broker_config_set(&cfg, "listeners", "PLAINTEXT://127.0.0.1:0", err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&cfg, "gregor.http.listener", "127.0.0.1:0", err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&cfg, "log.dirs", dir, err, sizeof(err)), 0);
    struct broker *b = broker_open(&cfg);
    assert_non_null(b);
    struct topic *t = NULL;
    char msg[256];
    assert_int_equal(topic_create(b, "many", 1200, NULL, 0, &t, msg, sizeof(msg)), 0);
    enum { N = METRICS_SCRAPES_MAX + 1 };
    int fds[N];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(b->http))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(write(fds[i], get, sizeof(get) - 1), (ssize_t)(sizeof(get) - 1));
        assert_int_equal(fcntl(fds[i], F_SETFL, O_NONBLOCK), 0);
    }
    size_t cap = 4u << 20;
    char *resp[N];
    size_t len[N] = {0};
    bool done[N] = {false};
    int ndone = 0, peak = 0;
    for (int i = 0; i < N; i++) {
        resp[i] = malloc(cap);
        assert_non_null(resp[i]);
    }
    int64_t deadline = mono_ms() + 20000;
    while (ndone < N) {
        assert_true(mono_ms() < deadline);
        loop_run_once(broker_loop(b), 10);
        if (b->metrics.nscrapes > peak)
            peak = b->metrics.nscrapes;
        for (int i = 0; i < N; i++) {
            if (done[i])
                continue;
            ssize_t n = read(fds[i], resp[i] + len[i], cap - 1 - len[i]);
            if (n == 0) {
                done[i] = true;
                ndone++;
                resp[i][len[i]] = '\0';
            } else if (n > 0) {
                len[i] += (size_t)n;
                assert_true(len[i] < cap - 1);
            }
        }
    }
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        if (strncmp(resp[i], "HTTP/1.1 200", 12) == 0 &&
            strstr(resp[i], "kafka_server_replicamanager_partitioncount 1200\n") != NULL)
            ok++;
        else if (strncmp(resp[i], "HTTP/1.1 503", 12) == 0 && strstr(resp[i], "Retry-After: 1\r\n"))
            busy++;
        close(fds[i]);
        free(resp[i]);
    }
    assert_int_equal(peak, METRICS_SCRAPES_MAX);
    assert_int_equal(ok, METRICS_SCRAPES_MAX);
    assert_int_equal(busy, 1);
    assert_int_equal(b->metrics.nscrapes, 0);
    broker_close(b);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_samples_and_family),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_proc_stat),
        cmocka_unit_test(test_scrape_turns_topic_deleted_between),
        cmocka_unit_test(test_scrapes_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
