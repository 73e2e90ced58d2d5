/* test_replica_fetcher: a partition's fetcher is Kafka's AbstractFetcherManager.getFetcherId,
 * abs(31 * topic.hashCode() + partition) % num.replica.fetchers with Java's String.hashCode
 * ("hello".hashCode() is 99162322; 31 times it wraps to -1220935314 in Java's int). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/replica_fetcher.h"
#include "common/errors.h"

static void test_fetcher_id_as_kafka(void **state)
{
    (void)state;
    /* abs(-1220935314 + p) % 7 = 4, 3, 2, 1, 0 for p = 0..4 */
    for (int32_t p = 0; p < 5; p++)
        assert_int_equal(replica_fetcher_id("hello", p, 7), 4 - p);
    assert_int_equal(replica_fetcher_id("hello", 0, 3), 1220935314 % 3);
    /* one fetcher, or none configured: fetcher 0 */
    assert_int_equal(replica_fetcher_id("hello", 5, 1), 0);
    assert_int_equal(replica_fetcher_id("anything", 9, 0), 0);
    /* an empty name hashes to 0: abs(p) % n */
    assert_int_equal(replica_fetcher_id("", 7, 4), 3);
    for (int n = 1; n <= 16; n++)
        for (int32_t p = 0; p < 100; p++) {
            int id = replica_fetcher_id("__consumer_offsets", p, n);
            assert_true(id >= 0 && id < n);
        }
}

/* A leader that has not read the partition's state yet (NOT_LEADER_OR_FOLLOWER, or
 * UNKNOWN_LEADER_EPOCH for the epoch the follower names) is asked again after 50 ms, ten times
 * at most, and only until it answered once in that epoch; anything else waits the back-off. */
static void test_retry_soon_while_the_leader_is_behind(void **state)
{
    (void)state;
    const int backoff = 1000;
    const int behind[] = {KERR_NOT_LEADER_OR_FOLLOWER, KERR_UNKNOWN_LEADER_EPOCH};
    for (int k = 0; k < 2; k++) {
        for (int n = 0; n < REPLICA_FETCHER_QUICK_RETRIES; n++)
            assert_int_equal(replica_fetcher_retry_ms(behind[k], false, n, backoff),
                             REPLICA_FETCHER_QUICK_RETRY_MS);
        assert_int_equal(replica_fetcher_retry_ms(behind[k], false, REPLICA_FETCHER_QUICK_RETRIES,
                                                  backoff), backoff);
        assert_int_equal(replica_fetcher_retry_ms(behind[k], true, 0, backoff), backoff);
    }
    const int others[] = {KERR_FENCED_LEADER_EPOCH, KERR_UNKNOWN_TOPIC_OR_PARTITION,
                          KERR_UNKNOWN_TOPIC_ID, KERR_KAFKA_STORAGE_ERROR};
    for (int k = 0; k < 4; k++)
        assert_int_equal(replica_fetcher_retry_ms(others[k], false, 0, backoff), backoff);
    /* A back-off already shorter is kept. */
    assert_int_equal(replica_fetcher_retry_ms(KERR_NOT_LEADER_OR_FOLLOWER, false, 0, 20), 20);
    assert_int_equal(replica_fetcher_retry_ms(KERR_NOT_LEADER_OR_FOLLOWER, false, 0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetcher_id_as_kafka),
        cmocka_unit_test(test_retry_soon_while_the_leader_is_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
