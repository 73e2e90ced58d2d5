/* test_replica_fetcher: a partition's fetcher is Kafka's AbstractFetcherManager.getFetcherId,
 * abs(31 * topic.hashCode() + partition) % num.replica.fetchers with Java's String.hashCode
 * ("hello".hashCode() is 99162322; 31 times it wraps to -1220935314 in Java's int). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/replica_fetcher.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetcher_id_as_kafka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
