/* test_quota_rates: controller_mutation_rate's token bucket as Kafka's TokenBucket (starts
 * full at window num x size x quota, refilled at the quota, may go into debt, the throttle
 * time is the debt over the quota), and connection_creation_rate's ip resolution (the
 * address's own quota, else the default ip's) and rate (a refused connection not counted,
 * the throttle time at most one sample). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/quota.h"

static void test_mutation_token_bucket(void **state)
{
    (void)state;
    struct quotas *q = quotas_create(11, 1);
    assert_non_null(q);
    quotas_set_mutation_window(q, 2, 1);
    /* No quota: never throttled. */
    assert_int_equal(quota_mutation_record(q, "alice", "c", 1000, 5000), 0);
    struct quota_entity_id id = {.user = "alice"};
    assert_int_equal(quota_entity_set(q, &id, "controller_mutation_rate", 5), 0);
    const int64_t t0 = 100000;
    /* Burst 2 x 1 s x 5 = 10 tokens: 10 permits empty it, not over. */
    assert_int_equal(quota_mutation_check(q, "alice", "c", t0), 0);
    assert_int_equal(quota_mutation_record(q, "alice", "c", 10, t0), 0);
    /* 15 more: 15 in debt, 3 s at 5 a second. */
    assert_int_equal(quota_mutation_record(q, "alice", "c", 15, t0), 3000);
    assert_int_equal(quota_mutation_check(q, "alice", "c", t0 + 1000), 2000);
    assert_int_equal(quota_mutation_check(q, "alice", "c", t0 + 3000), 0);
    /* Refilled at most to the burst: after a long pause 10 pass, 11 owe 0.2 s. */
    assert_int_equal(quota_mutation_record(q, "alice", "c", 11, t0 + 60000), 200);
    /* Another user has no quota. */
    assert_int_equal(quota_mutation_check(q, "bob", "c", t0), 0);
    quotas_free(q);
}

static void test_ip_bound_and_connection_rate(void **state)
{
    (void)state;
    struct quotas *q = quotas_create(2, 1);
    assert_non_null(q);
    double bound = 0;
    assert_false(quota_ip_bound(q, "10.0.0.1", &bound));
    struct quota_entity_id dflt = {.ip = QUOTA_DEFAULT}, one = {.ip = "10.0.0.1"};
    assert_int_equal(quota_entity_set(q, &dflt, "connection_creation_rate", 2), 0);
    assert_int_equal(quota_entity_set(q, &one, "connection_creation_rate", 5), 0);
    assert_true(quota_ip_bound(q, "10.0.0.1", &bound));
    assert_float_equal(bound, 5, 1e-9);
    assert_true(quota_ip_bound(q, "10.0.0.2", &bound));
    assert_float_equal(bound, 2, 1e-9);
    /* Over at least one 1 s window: 5 at once pass, the 6th is refused (not counted). */
    const int64_t t0 = 20000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(quota_connection_record(q, "10.0.0.1", 5, t0, false), 0);
    int32_t t = quota_connection_record(q, "10.0.0.1", 5, t0, false);
    assert_true(t > 0 && t <= 1000);
    /* 0.3 s later the window is 1.3 s (the elapsed time plus the one whole window a young
     * rate is counted over): 6 / 1.3 s is within 5, a 7th is not ((7/1.3 - 5)/5 x 1.3 s). */
    assert_int_equal(quota_connection_record(q, "10.0.0.1", 5, t0 + 300, false), 0);
    assert_int_equal(quota_connection_record(q, "10.0.0.1", 5, t0 + 300, false), 100);
    /* Kept when over (a listener's rate): the throttle grows, bounded by one sample. */
    for (int i = 0; i < 50; i++)
        t = quota_connection_record(q, "listener L", 5, t0, true);
    assert_int_equal(t, 1000);
    quotas_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutation_token_bucket),
        cmocka_unit_test(test_ip_bound_and_connection_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
