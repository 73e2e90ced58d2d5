/* test_txn_log: __transaction_state record bytes against Kafka's TransactionLog schemas (key v0,
 * value v0 and flexible v1, built here byte by byte from the schema), decode round trips, every
 * truncation refused, the records Kafka 4.1.1 wrote read and written back byte for byte, and the
 * transactional id -> partition mapping of Kafka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "txn/txn_log.h"
#include "txn_kafka_records.h"

#define BE64(v) (uint8_t)((uint64_t)(v) >> 56), (uint8_t)((uint64_t)(v) >> 48), \
    (uint8_t)((uint64_t)(v) >> 40), (uint8_t)((uint64_t)(v) >> 32), (uint8_t)((uint64_t)(v) >> 24), \
    (uint8_t)((uint64_t)(v) >> 16), (uint8_t)((uint64_t)(v) >> 8), (uint8_t)(v)
#define BE32(v) (uint8_t)((uint32_t)(v) >> 24), (uint8_t)((uint32_t)(v) >> 16), \
    (uint8_t)((uint32_t)(v) >> 8), (uint8_t)(v)
#define BE16(v) (uint8_t)((uint16_t)(v) >> 8), (uint8_t)(v)

#define LAST_UPDATE 1700000000123LL
#define START 1699999999000LL

static const int32_t parts_t[] = {0, 2};
static const int32_t parts_u[] = {7};
static const struct txn_log_topic two_topics[] = {{"t", parts_t, 2}, {"uu", parts_u, 1}};

static struct txn_log_value ongoing_value(void)
{
    return (struct txn_log_value){
        .producer_id = 1000, .prev_producer_id = -1, .next_producer_id = -1,
        .producer_epoch = 5, .timeout_ms = 60000, .status = TXN_ONGOING,
        .topics = two_topics, .n_topics = 2,
        .last_update_ms = LAST_UPDATE, .start_ms = START,
    };
}

static void assert_buf(const struct txn_buf *b, const uint8_t *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->p, want, n);
}

static void test_key_bytes(void **state)
{
    (void)state;
    struct txn_buf b;
    assert_int_equal(txn_log_encode_key(&b, "txn-1"), KERR_NONE);
    const uint8_t want[] = {0, 0, 0, 5, 't', 'x', 'n', '-', '1'};
    assert_buf(&b, want, sizeof(want));
    struct arena a;
    arena_init(&a, 1 << 16);
    const char *id = NULL;
    assert_int_equal(txn_log_decode_key(b.p, b.len, &a, &id), 0);
    assert_string_equal(id, "txn-1");
    /* a key version this broker does not know is skipped, not an error */
    const uint8_t v1[] = {0, 1, 0, 1, 'x'};
    assert_int_equal(txn_log_decode_key(v1, sizeof(v1), &a, &id), 1);
    const uint8_t nul[] = {0, 0, 0, 3, 'a', 0, 'b'};
    assert_int_equal(txn_log_decode_key(nul, sizeof(nul), &a, &id), -1);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(txn_log_decode_key(b.p, n, &a, &id), -1);
    arena_reset(&a);
    free(b.p);
}

/* TransactionLogValue v0: int64, int16, int32, int8, nullable array of (string, []int32), two
 * int64s — classic encodings throughout. */
static void test_value_v0_bytes(void **state)
{
    (void)state;
    struct txn_log_value v = ongoing_value();
    struct txn_buf b;
    assert_int_equal(txn_log_encode_value(&b, 0, &v), KERR_NONE);
    const uint8_t want[] = {
        BE16(0), BE64(1000), BE16(5), BE32(60000), 1,
        BE32(2), BE16(1), 't', BE32(2), BE32(0), BE32(2), BE16(2), 'u', 'u', BE32(1), BE32(7),
        BE64(LAST_UPDATE), BE64(START),
    };
    assert_buf(&b, want, sizeof(want));
    free(b.p);

    /* Empty: Kafka writes the partitions as null */
    v.status = TXN_EMPTY;
    v.n_topics = -1;
    v.start_ms = -1;
    assert_int_equal(txn_log_encode_value(&b, 0, &v), KERR_NONE);
    const uint8_t empty[] = {
        BE16(0), BE64(1000), BE16(5), BE32(60000), 0, BE32(-1), BE64(LAST_UPDATE), BE64(-1),
    };
    assert_buf(&b, empty, sizeof(empty));
    free(b.p);
}

/* v1: compact strings and arrays, a tag section after each partitions entry and at the end with
 * only the fields off their defaults (PreviousProducerId tag 0, ClientTransactionVersion tag 2). */
static void test_value_v1_bytes(void **state)
{
    (void)state;
    struct txn_log_value v = ongoing_value();
    v.prev_producer_id = 999;
    v.client_txn_version = 2;
    struct txn_buf b;
    assert_int_equal(txn_log_encode_value(&b, 1, &v), KERR_NONE);
    const uint8_t want[] = {
        BE16(1), BE64(1000), BE16(5), BE32(60000), 1,
        3, 2, 't', 3, BE32(0), BE32(2), 0, 3, 'u', 'u', 2, BE32(7), 0,
        BE64(LAST_UPDATE), BE64(START),
        2, 0, 8, BE64(999), 2, 2, BE16(2),
    };
    assert_buf(&b, want, sizeof(want));
    free(b.p);

    /* all tags at their defaults: an empty tag section */
    v = ongoing_value();
    v.n_topics = 0;
    assert_int_equal(txn_log_encode_value(&b, 1, &v), KERR_NONE);
    const uint8_t bare[] = {
        BE16(1), BE64(1000), BE16(5), BE32(60000), 1, 1, BE64(LAST_UPDATE), BE64(START), 0,
    };
    assert_buf(&b, bare, sizeof(bare));
    free(b.p);
    assert_int_not_equal(txn_log_encode_value(&b, 2, &v), KERR_NONE);
}

static void assert_same_value(const struct txn_log_value *a, const struct txn_log_value *b)
{
    assert_int_equal(a->producer_id, b->producer_id);
    assert_int_equal(a->prev_producer_id, b->prev_producer_id);
    assert_int_equal(a->next_producer_id, b->next_producer_id);
    assert_int_equal(a->producer_epoch, b->producer_epoch);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->last_update_ms, b->last_update_ms);
    assert_int_equal(a->start_ms, b->start_ms);
    assert_int_equal(a->client_txn_version, b->client_txn_version);
    assert_int_equal(a->n_topics, b->n_topics);
    for (int32_t i = 0; i < a->n_topics; i++) {
        assert_string_equal(a->topics[i].topic, b->topics[i].topic);
        assert_int_equal(a->topics[i].n_partitions, b->topics[i].n_partitions);
        for (int32_t j = 0; j < a->topics[i].n_partitions; j++)
            assert_int_equal(a->topics[i].partitions[j], b->topics[i].partitions[j]);
    }
}

static void test_value_round_trip_and_truncation(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a, 1 << 20);
    for (int16_t version = 0; version <= 1; version++) {
        for (int status = TXN_EMPTY; status <= TXN_COMPLETE_ABORT; status++) {
            struct txn_log_value v = ongoing_value();
            v.status = (int8_t)status;
            if (status == TXN_EMPTY)
                v.n_topics = -1;
            if (version == 1) {
                v.prev_producer_id = 7;
                v.next_producer_id = 8;
                v.client_txn_version = 1;
            }
            struct txn_buf b;
            assert_int_equal(txn_log_encode_value(&b, version, &v), KERR_NONE);
            struct txn_log_value back;
            assert_int_equal(txn_log_decode_value(b.p, b.len, &a, &back), 0);
            assert_same_value(&v, &back);
            for (size_t n = 0; n < b.len; n++)
                assert_int_equal(txn_log_decode_value(b.p, n, &a, &back), -1);
            free(b.p);
            arena_reset(&a);
        }
    }
}

static void test_value_refusals(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a, 1 << 16);
    struct txn_log_value out;
    const uint8_t bad_status[] = {BE16(0), BE64(1), BE16(0), BE32(1000), 8, BE32(-1), BE64(0),
                                  BE64(-1)};
    assert_int_equal(txn_log_decode_value(bad_status, sizeof(bad_status), &a, &out), -1);
    const uint8_t bad_version[] = {BE16(2), BE64(1), BE16(0), BE32(1000), 0, BE32(-1), BE64(0),
                                   BE64(-1)};
    assert_int_equal(txn_log_decode_value(bad_version, sizeof(bad_version), &a, &out), -1);
    /* a known tag with the wrong size */
    const uint8_t bad_tag[] = {BE16(1), BE64(1), BE16(0), BE32(1000), 0, 0, BE64(0), BE64(-1),
                               1, 0, 4, BE32(9)};
    assert_int_equal(txn_log_decode_value(bad_tag, sizeof(bad_tag), &a, &out), -1);
    /* an unknown tag is skipped, as Kafka's readers do */
    const uint8_t unknown_tag[] = {BE16(1), BE64(1), BE16(0), BE32(1000), 0, 0, BE64(0),
                                   BE64(-1), 1, 9, 2, 0xAB, 0xCD};
    assert_int_equal(txn_log_decode_value(unknown_tag, sizeof(unknown_tag), &a, &out), 0);
    assert_int_equal(out.n_topics, -1);
    /* an array count larger than the bytes left */
    const uint8_t huge[] = {BE16(0), BE64(1), BE16(0), BE32(1000), 1, BE32(0x7fffffff)};
    assert_int_equal(txn_log_decode_value(huge, sizeof(huge), &a, &out), -1);
    arena_reset(&a);
}

/* What Kafka 4.1.1 wrote (txn_kafka_records.h): every record decodes to the scenario's states and
 * epochs, and encodes back to exactly Kafka's bytes. */
static void test_kafka_records_decode_and_reencode(void **state)
{
    (void)state;
    static const int8_t status[] = {0, 1, 2, 4, 0, 1, 3, 5, 1, 3, 5, 0};
    static const int16_t epoch[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2};
    assert_int_equal(KAFKA_TXN_RECORD_COUNT, 12);
    struct arena a;
    arena_init(&a, 1 << 20);
    for (int i = 0; i < KAFKA_TXN_RECORD_COUNT; i++) {
        uint8_t key[256], value[256];
        int kn = kafka_txn_unhex(KAFKA_TXN_RECORDS[i].key_hex, key);
        int vn = kafka_txn_unhex(KAFKA_TXN_RECORDS[i].value_hex, value);
        const char *id = NULL;
        assert_int_equal(txn_log_decode_key(key, (size_t)kn, &a, &id), 0);
        assert_string_equal(id, i < 4 ? "cap-txn" : "cap-txn2");
        struct txn_log_value v;
        assert_int_equal(txn_log_decode_value(value, (size_t)vn, &a, &v), 0);
        assert_int_equal(v.status, status[i]);
        assert_int_equal(v.producer_epoch, epoch[i]);
        assert_int_equal(v.producer_id, i < 4 ? 0 : 1);
        assert_int_equal(v.timeout_ms, 60000);
        assert_int_equal(v.prev_producer_id, -1);
        assert_int_equal(v.next_producer_id, -1);
        /* Kafka 4's own aborts (the fence) are written as transaction version 2 */
        assert_int_equal(v.client_txn_version, i >= 9 ? 2 : 0);
        if (v.status == TXN_EMPTY) {
            assert_int_equal(v.n_topics, -1);
            assert_int_equal(v.start_ms, -1);
        } else if (v.status == TXN_COMPLETE_COMMIT || v.status == TXN_COMPLETE_ABORT) {
            assert_int_equal(v.n_topics, 0);
        } else {
            assert_int_equal(v.n_topics, 1);
            assert_string_equal(v.topics[0].topic, "cap");
            assert_int_equal(v.topics[0].n_partitions, 1);
            assert_int_equal(v.topics[0].partitions[0], 0);
        }
        struct txn_buf k, b;
        assert_int_equal(txn_log_encode_key(&k, id), KERR_NONE);
        assert_buf(&k, key, (size_t)kn);
        assert_int_equal(txn_log_encode_value(&b, 1, &v), KERR_NONE);
        assert_buf(&b, value, (size_t)vn);
        free(k.p);
        free(b.p);
        arena_reset(&a);
    }
}

/* Values of Java's String.hashCode, abs, % 50 (Kafka's partitionFor). */
static void test_partition_for(void **state)
{
    (void)state;
    assert_int_equal(txn_partition_for("my-txn", 50), 45);      /* hash -1061187895 */
    assert_int_equal(txn_partition_for("txn-1", 50), 10);       /* hash 110810510 */
    assert_int_equal(txn_partition_for("transactional-id-42", 50), 4);
    assert_int_equal(txn_partition_for("polygenelubricants", 50), 0); /* abs(MIN_VALUE) = 0 */
    assert_int_equal(txn_partition_for("hello", 50), 22);
    assert_int_equal(txn_partition_for("hello", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_bytes),
        cmocka_unit_test(test_value_v0_bytes),
        cmocka_unit_test(test_value_v1_bytes),
        cmocka_unit_test(test_value_round_trip_and_truncation),
        cmocka_unit_test(test_value_refusals),
        cmocka_unit_test(test_kafka_records_decode_and_reencode),
        cmocka_unit_test(test_partition_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
