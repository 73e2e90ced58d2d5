/* test_log_batch: CRC-32C (hardware and table paths), varints, the batch builder and the
 * record iterator over every codec, and client-batch validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "common/crc32c.h"
#include "common/errors.h"
#include "common/util.h"

static void test_crc32c_vectors(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    uint8_t zeros[32] = {0};
    assert_int_equal(crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    uint8_t ones[32];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(crc32c(0, ones, 32), 0x62A8AB43u);
    /* Long inputs take the three-chain path (blocks of 8192 and 256 bytes): it agrees with the
     * table path around every block boundary. */
    size_t big_n = 3 * 8192 * 3 + 3 * 256 * 2 + 100;
    uint8_t *big = malloc(big_n + 8);
    for (size_t i = 0; i < big_n + 8; i++)
        big[i] = (uint8_t)(i * 131 + (i >> 9));
    size_t lens[] = {767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 768,
                     6 * 8192 + 3 * 256 + 5, big_n};
    for (size_t off = 0; off < 3; off++)
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            assert_int_equal(crc32c(0, big + off, lens[i]), crc32c_sw(0, big + off, lens[i]));
            assert_int_equal(crc32c(crc32c(0, big + off, 100), big + off + 100, lens[i] - 100),
                             crc32c_sw(0, big + off, lens[i]));
        }
    free(big);
    /* Hardware and table paths agree at every length and alignment, and chain. */
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof(buf); n += 37) {
            uint32_t a = crc32c(0, buf + off, n), b = crc32c_sw(0, buf + off, n);
            assert_int_equal(a, b);
            size_t half = n / 3;
            assert_int_equal(crc32c(crc32c(0, buf + off, half), buf + off + half, n - half), a);
        }
}

static void test_varints(void **state)
{
    (void)state;
    int64_t vals[] = {0, 1, -1, 63, -64, 64, 300, -300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < ARRAY_LEN(vals); i++) {
        uint8_t b[10];
        size_t n = batch_varlong_put(b, vals[i]);
        const uint8_t *p = b;
        int64_t v;
        assert_int_equal(batch_varlong_get(&p, b + n, &v), 0);
        assert_int_equal(v, vals[i]);
        assert_ptr_equal(p, b + n);
        p = b;
        assert_int_equal(batch_varlong_get(&p, b + n - 1, &v), -1); /* truncated */
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX) {
            int32_t w;
            p = b;
            assert_int_equal(batch_varint_get(&p, b + n, &w), 0);
            assert_int_equal(w, vals[i]);
        }
    }
    uint8_t bad[11];
    memset(bad, 0xff, sizeof(bad));
    const uint8_t *p = bad;
    int64_t v;
    assert_int_equal(batch_varlong_get(&p, bad + sizeof(bad), &v), -1);
    int32_t w;
    p = bad;
    assert_int_equal(batch_varint_get(&p, bad + sizeof(bad), &w), -1);
}

static void roundtrip(int codec)
{
    struct batch_builder b;
    batch_builder_init(&b, 1 << 20);
    struct batch_kv_header hdrs[2] = {{"h1", "x", 1}, {"h2", NULL, -1}};
    assert_int_equal(batch_builder_add(&b, 100, "k0", 2, "hello", 5, hdrs, 2), 0);
    assert_int_equal(batch_builder_add(&b, 105, NULL, -1, NULL, -1, NULL, 0), 0);
    char big[3000];
    memset(big, 'z', sizeof(big));
    assert_int_equal(batch_builder_add(&b, 99, "", 0, big, (int32_t)sizeof(big), NULL, 0), 0);
    uint8_t *batch;
    size_t len;
    assert_int_equal(batch_builder_finish(&b, codec, &batch, &len), 0);
    batch_builder_free(&b);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), 0);
    struct batch_header h;
    batch_header_decode(batch, &h);
    assert_int_equal(h.records_count, 3);
    assert_int_equal(h.last_offset_delta, 2);
    assert_int_equal(h.base_timestamp, 100);
    assert_int_equal(h.max_timestamp, 105);
    assert_int_equal(h.attributes & 7, codec);
    assert_int_equal(h.partition_leader_epoch, -1);
    batch_assign(batch, len, 500, 0, false, 0);
    struct batch_record_iter it;
    struct batch_record r;
    assert_int_equal(batch_records_open(&it, batch, len, 1 << 20), 0);
    assert_int_equal(batch_records_next(&it, &r), 1);
    assert_int_equal(r.offset, 500);
    assert_int_equal(r.timestamp, 100);
    assert_int_equal(r.key_len, 2);
    assert_memory_equal(r.key, "k0", 2);
    assert_int_equal(r.value_len, 5);
    assert_memory_equal(r.value, "hello", 5);
    assert_int_equal(r.header_count, 2);
    const uint8_t *hp = r.headers, *k, *v;
    int32_t kl, vl;
    assert_int_equal(batch_record_header_next(&hp, r.headers + r.headers_len, &k, &kl, &v, &vl), 1);
    assert_int_equal(kl, 2);
    assert_memory_equal(k, "h1", 2);
    assert_int_equal(vl, 1);
    assert_int_equal(batch_record_header_next(&hp, r.headers + r.headers_len, &k, &kl, &v, &vl), 1);
    assert_int_equal(vl, -1);
    assert_int_equal(batch_record_header_next(&hp, r.headers + r.headers_len, &k, &kl, &v, &vl), 0);
    assert_int_equal(batch_records_next(&it, &r), 1);
    assert_int_equal(r.offset, 501);
    assert_int_equal(r.key_len, -1);
    assert_int_equal(r.value_len, -1);
    assert_int_equal(r.timestamp, 105);
    assert_int_equal(batch_records_next(&it, &r), 1);
    assert_int_equal(r.offset, 502);
    assert_int_equal(r.key_len, 0);
    assert_int_equal(r.value_len, 3000);
    assert_int_equal(r.timestamp, 99);
    assert_int_equal(batch_records_next(&it, &r), 0);
    batch_records_close(&it);
    /* A decompression bound smaller than the records is refused, not overrun. */
    if (codec != BATCH_COMPRESSION_NONE) {
        assert_int_equal(batch_records_open(&it, batch, len, 100), KERR_CORRUPT_MESSAGE);
        /* A truncated compressed payload is corrupt, never a crash. */
        uint8_t *cut = malloc(len);
        memcpy(cut, batch, len);
        size_t cl = len - 10;
        be32_put(cut + 8, (uint32_t)(cl - 12));
        if (batch_records_open(&it, cut, cl, 1 << 20) == 0) {
            int k2;
            while ((k2 = batch_records_next(&it, &r)) == 1)
                ;
            assert_true(k2 < 0);
            batch_records_close(&it);
        }
        free(cut);
    }
    free(batch);
}

static void test_roundtrip_none(void **state) { (void)state; roundtrip(BATCH_COMPRESSION_NONE); }
static void test_roundtrip_gzip(void **state) { (void)state; roundtrip(BATCH_COMPRESSION_GZIP); }
static void test_roundtrip_snappy(void **state) { (void)state; roundtrip(BATCH_COMPRESSION_SNAPPY); }
static void test_roundtrip_lz4(void **state) { (void)state; roundtrip(BATCH_COMPRESSION_LZ4); }
static void test_roundtrip_zstd(void **state) { (void)state; roundtrip(BATCH_COMPRESSION_ZSTD); }

static void test_sequences(void **state)
{
    (void)state;
    struct batch_builder b;
    batch_builder_init(&b, 1 << 20);
    b.producer_id = 42;
    b.producer_epoch = 1;
    b.base_sequence = INT32_MAX - 1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(batch_builder_add(&b, i, NULL, -1, "v", 1, NULL, 0), 0);
    uint8_t *batch;
    size_t len;
    assert_int_equal(batch_builder_finish(&b, 0, &batch, &len), 0);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), 0);
    struct batch_record_iter it;
    struct batch_record r;
    assert_int_equal(batch_records_open(&it, batch, len, 1 << 20), 0);
    int32_t want[3] = {INT32_MAX - 1, INT32_MAX, 0}; /* wraps as Kafka's incrementSequence */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(batch_records_next(&it, &r), 1);
        assert_int_equal(r.sequence, want[i]);
    }
    batch_records_close(&it);
    free(batch);
    batch_builder_free(&b);
}

static void test_corrupt_records_rejected(void **state)
{
    (void)state;
    size_t len;
    uint8_t *batch = tu_batch(3, 10, 1, BATCH_COMPRESSION_NONE, &len);
    /* Every single-byte change in the records area either still parses or is refused. */
    for (size_t at = BATCH_HEADER_SIZE; at < len; at++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *c = malloc(len);
            memcpy(c, batch, len);
            c[at] ^= (uint8_t)(1 << bit);
            struct batch_record_iter it;
            struct batch_record r;
            assert_int_equal(batch_records_open(&it, c, len, 1 << 20), 0);
            int k, n = 0;
            while ((k = batch_records_next(&it, &r)) == 1) {
                assert_true(r.key_len >= -1 && r.value_len >= -1);
                n++;
            }
            assert_true(k <= 0);
            assert_true(n <= 3);
            batch_records_close(&it);
            /* The CRC always catches it on the append path. */
            assert_int_equal(batch_validate_client(c, len, 1 << 20), KERR_CORRUPT_MESSAGE);
            free(c);
        }
    }
    free(batch);
}

static void test_validate_short_inputs(void **state)
{
    (void)state;
    uint8_t z[80] = {0};
    for (size_t n = 0; n < sizeof(z); n++)
        assert_int_not_equal(batch_validate_client(z, n, 1 << 20), 0);
    z[16] = 2;
    for (size_t n = 0; n < sizeof(z); n++)
        assert_int_not_equal(batch_validate_client(z, n, 1 << 20), 0);
    z[16] = 0;
    assert_int_equal(batch_validate_client(z, 40, 1 << 20), KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    z[16] = 7;
    assert_int_equal(batch_validate_client(z, 40, 1 << 20), KERR_CORRUPT_MESSAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_varints),
        cmocka_unit_test(test_roundtrip_none),
        cmocka_unit_test(test_roundtrip_gzip),
        cmocka_unit_test(test_roundtrip_snappy),
        cmocka_unit_test(test_roundtrip_lz4),
        cmocka_unit_test(test_roundtrip_zstd),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_corrupt_records_rejected),
        cmocka_unit_test(test_validate_short_inputs),
    };
    return cmocka_run_group_tests_name("log_batch", tests, NULL, NULL);
}
