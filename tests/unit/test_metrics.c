/* test_metrics: the Prometheus text encoder of metrics.c — label values escaped as the format
 * requires, histograms with cumulative buckets in ms, _sum and _count, the output cap, and
 * /proc/self/stat's parser (a command name holding ") " and spaces). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "broker/metrics.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_samples_and_family),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_proc_stat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
