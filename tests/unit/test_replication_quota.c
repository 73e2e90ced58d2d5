/* test_replication_quota: the replication quota's rate is Kafka's SimpleRate over 11 samples
 * of 1 s (the bytes of the samples still in the window over the time since the oldest one
 * started, at least one window; a sample with no event for 11 s is dropped), exceeded only
 * above the bound; and the throttled-replicas lists as Kafka's parseThrottledPartitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/replication_quota.h"

static void test_rate_is_kafkas_simple_rate(void **state)
{
    (void)state;
    struct replication_quota q = {0};
    const int64_t t0 = 50000;
    /* One window at least: 1000 bytes right away are 1000 B/s, still after half a second. */
    replication_quota_record(&q, 1000, t0);
    assert_float_equal(replication_quota_rate(&q, t0), 1000.0, 1e-9);
    assert_float_equal(replication_quota_rate(&q, t0 + 500), 1000.0, 1e-9);
    /* Then over the time since the sample started. */
    assert_float_equal(replication_quota_rate(&q, t0 + 2000), 500.0, 1e-9);
    assert_float_equal(replication_quota_rate(&q, t0 + 10000), 100.0, 1e-9);
    /* 11 s without an event: the sample is gone. */
    assert_float_equal(replication_quota_rate(&q, t0 + 11000), 0.0, 1e-9);
}

static void test_samples_roll_over(void **state)
{
    (void)state;
    struct replication_quota q = {0};
    const int64_t t0 = 7000;
    /* 100 bytes at the start of each of 13 windows: 12 slots (11 samples + the overlapping
     * one) are reused in turn; at the last record the first window's slot holds it, and the
     * second's (its only event 11 s old) is dropped: 1100 bytes over 10 s. */
    for (int i = 0; i <= 12; i++)
        replication_quota_record(&q, 100, t0 + 1000 * i);
    assert_true(q.nsamples == REPLICATION_QUOTA_SAMPLES + 1);
    assert_float_equal(replication_quota_rate(&q, t0 + 12000), 110.0, 1e-9);
    /* Events inside one window stay in its sample. */
    struct replication_quota one = {0};
    for (int i = 0; i < 10; i++)
        replication_quota_record(&one, 10, t0 + 99 * i);
    assert_int_equal(one.nsamples, 1);
    assert_float_equal(replication_quota_rate(&one, t0 + 999), 100.0, 1e-9);
}

static void test_exceeded_above_the_bound_only(void **state)
{
    (void)state;
    struct replication_quota q = {0};
    replication_quota_record(&q, 1000, 0);
    assert_true(replication_quota_exceeded(&q, 999, 0));
    assert_false(replication_quota_exceeded(&q, 1000, 0)); /* Quota.acceptable: <= bound */
    assert_false(replication_quota_exceeded(&q, REPLICATION_QUOTA_NONE, 0));
    assert_true(replication_quota_exceeded(&q, 0, 0));
    /* Nothing recorded yet: nothing exceeded, even at a bound of 0. */
    struct replication_quota idle = {0};
    assert_false(replication_quota_exceeded(&idle, 0, 123));
}

static void test_throttled_replica_lists(void **state)
{
    (void)state;
    assert_true(replication_quota_listed("*", 7, 3));
    assert_true(replication_quota_listed(" * ", 0, 1));
    assert_true(replication_quota_listed("0:1,0:2,1:2,1:3", 1, 3));
    assert_true(replication_quota_listed("0:1,0:2,1:2,1:3", 0, 2));
    assert_false(replication_quota_listed("0:1,0:2,1:2,1:3", 0, 3));
    assert_false(replication_quota_listed("0:1,0:2,1:2,1:3", 2, 1));
    assert_true(replication_quota_listed(" 0:1 , 12:34 ", 12, 34));
    assert_false(replication_quota_listed("1:10", 1, 1));
    assert_false(replication_quota_listed("10:1", 1, 1));
    assert_false(replication_quota_listed("", 0, 0));
    assert_false(replication_quota_listed("*,0:1", 5, 5)); /* only "*" alone is every one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_is_kafkas_simple_rate),
        cmocka_unit_test(test_samples_roll_over),
        cmocka_unit_test(test_exceeded_above_the_bound_only),
        cmocka_unit_test(test_throttled_replica_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
