/* Unit tests for log/producer_state: sequence checks, the 5-batch window, epochs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/errors.h"
#include "log/producer_state.h"

static struct batch_header hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t count)
{
    struct batch_header h;
    memset(&h, 0, sizeof(h));
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.last_offset_delta = count - 1;
    h.records_count = count;
    return h;
}

static void test_sequence_rules(void **state)
{
    (void)state;
    struct producer_state ps = {0};
    int64_t dup = -1;
    struct batch_header h = hdr(7, 0, 0, 3);
    assert_int_equal(producer_state_check(&ps, &h, &dup), KERR_NONE); /* unknown producer */
    producer_state_record(&ps, &h, 100);
    assert_int_equal(producer_state_check(&ps, &h, &dup), KERR_DUPLICATE_SEQUENCE_NUMBER);
    assert_int_equal(dup, 100);
    struct batch_header next = hdr(7, 0, 3, 2);
    assert_int_equal(producer_state_check(&ps, &next, &dup), KERR_NONE);
    struct batch_header gap = hdr(7, 0, 4, 1);
    assert_int_equal(producer_state_check(&ps, &gap, &dup), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    struct batch_header old_epoch = hdr(7, -1, 3, 1);
    old_epoch.producer_epoch = -1;
    assert_int_equal(producer_state_check(&ps, &old_epoch, &dup), KERR_INVALID_PRODUCER_EPOCH);
    struct batch_header bump = hdr(7, 1, 0, 1);
    assert_int_equal(producer_state_check(&ps, &bump, &dup), KERR_NONE);
    struct batch_header bump_bad = hdr(7, 1, 5, 1);
    assert_int_equal(producer_state_check(&ps, &bump_bad, &dup), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    producer_state_free(&ps);
}

static void test_window_of_five(void **state)
{
    (void)state;
    struct producer_state ps = {0};
    int64_t dup;
    for (int i = 0; i < 7; i++) {
        struct batch_header h = hdr(1, 0, i * 2, 2);
        assert_int_equal(producer_state_check(&ps, &h, &dup), KERR_NONE);
        producer_state_record(&ps, &h, 10 * i);
    }
    /* Batches 2..6 are remembered, 0 and 1 have left the window. */
    struct batch_header b2 = hdr(1, 0, 4, 2);
    assert_int_equal(producer_state_check(&ps, &b2, &dup), KERR_DUPLICATE_SEQUENCE_NUMBER);
    assert_int_equal(dup, 20);
    struct batch_header b1 = hdr(1, 0, 2, 2);
    assert_int_equal(producer_state_check(&ps, &b1, &dup), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(ps.count, 1);
    assert_true(ps.changed);
    producer_state_free(&ps);
}

static void test_sequence_wraps(void **state)
{
    (void)state;
    struct producer_state ps = {0};
    int64_t dup;
    struct batch_header h = hdr(3, 0, INT32_MAX, 1);
    producer_state_record(&ps, &h, 0);
    struct batch_header next = hdr(3, 0, 0, 1);
    assert_int_equal(producer_state_check(&ps, &next, &dup), KERR_NONE);
    producer_state_free(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_rules),
        cmocka_unit_test(test_window_of_five),
        cmocka_unit_test(test_sequence_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
