/* test_convert: magic 0/1 message sets to record batches (Produce v0-2) and back (Fetch v0-3).
 * Legacy bytes are written and read here by the test's own encoder and decoder (zlib's CRC-32),
 * not by the converter's, so a mistake in one is not mirrored in the other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/errors.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/convert.h"

/* ---- the test's own legacy encoder ---- */

struct set {
    uint8_t b[1 << 16];
    size_t n;
};

static void put32(struct set *s, uint32_t v)
{
    be32_put(s->b + s->n, v);
    s->n += 4;
}

static void put_bytes(struct set *s, const char *p, int32_t len)
{
    put32(s, (uint32_t)(p == NULL ? -1 : len));
    if (p != NULL && len > 0) {
        memcpy(s->b + s->n, p, (size_t)len);
        s->n += (size_t)len;
    }
}

/* One entry: offset, size, crc, magic, attributes, [timestamp], key, value. */
static void put_msg(struct set *s, int64_t offset, int magic, int attr, int64_t ts, const char *key,
                    const char *value, int32_t value_len)
{
    be64_put(s->b + s->n, (uint64_t)offset);
    size_t size_at = s->n + 8;
    s->n += 12;
    size_t crc_at = s->n;
    s->n += 4;
    s->b[s->n++] = (uint8_t)magic;
    s->b[s->n++] = (uint8_t)attr;
    if (magic == 1) {
        be64_put(s->b + s->n, (uint64_t)ts);
        s->n += 8;
    }
    put_bytes(s, key, key ? (int32_t)strlen(key) : -1);
    put_bytes(s, value, value_len);
    be32_put(s->b + size_at, (uint32_t)(s->n - crc_at));
    be32_put(s->b + crc_at, (uint32_t)crc32(0L, s->b + crc_at + 4, (uInt)(s->n - crc_at - 4)));
}

static size_t gzip_bytes(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    return len;
}

static size_t compress_with(int codec, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    if (codec == BATCH_COMPRESSION_GZIP)
        return gzip_bytes(in, n, out, cap);
    if (codec == BATCH_COMPRESSION_SNAPPY) { /* raw snappy, as some old clients sent */
        size_t len = cap;
        assert_int_equal(snappy_compress((const char *)in, n, (char *)out, &len), SNAPPY_OK);
        return len;
    }
    size_t r = LZ4F_compressFrame(out, cap, in, n, NULL);
    assert_false(LZ4F_isError(r));
    return r;
}

/* Wraps the entries of inner in one compressed message of codec. */
static void put_wrapper(struct set *s, int64_t offset, int magic, int codec, int64_t ts,
                        const struct set *inner)
{
    static uint8_t z[1 << 17];
    size_t zlen = compress_with(codec, inner->b, inner->n, z, sizeof(z));
    put_msg(s, offset, magic, codec, ts, NULL, (const char *)z, (int32_t)zlen);
}

/* ---- the test's own legacy decoder ---- */

struct msg {
    int64_t offset;
    int magic, attr;
    int64_t ts;
    int32_t key_len, value_len;
    const uint8_t *key, *value;
};

/* Parses up to max entries (CRCs checked); returns how many, or -1 when malformed. */
static int parse_set(const uint8_t *p, size_t n, struct msg *out, int max)
{
    int k = 0;
    size_t pos = 0;
    while (pos < n && k < max) {
        if (n - pos < 12)
            return -1;
        struct msg *m = &out[k++];
        m->offset = (int64_t)be64_get(p + pos);
        uint32_t size = be32_get(p + pos + 8);
        const uint8_t *q = p + pos + 12, *end = q + size;
        if (size > n - pos - 12 || be32_get(q) != (uint32_t)crc32(0L, q + 4, size - 4))
            return -1;
        m->magic = q[4];
        m->attr = q[5];
        q += 6;
        m->ts = -1;
        if (m->magic == 1) {
            m->ts = (int64_t)be64_get(q);
            q += 8;
        }
        m->key_len = (int32_t)be32_get(q);
        m->key = q + 4;
        q += 4 + (m->key_len > 0 ? m->key_len : 0);
        m->value_len = (int32_t)be32_get(q);
        m->value = q + 4;
        q += 4 + (m->value_len > 0 ? m->value_len : 0);
        if (q != end)
            return -1;
        pos += 12 + size;
    }
    return k;
}

static size_t gunzip_bytes(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t len = cap - zs.avail_out;
    inflateEnd(&zs);
    return len;
}

/* ---- helpers over batches ---- */

static int up(const struct set *s, uint8_t **batch, size_t *len)
{
    int32_t n = 0;
    return convert_legacy_to_batch(s->b, s->n, CONVERT_UP_MAX, batch, len, &n);
}

static int count_records(const uint8_t *batch, size_t len, struct batch_record *recs, int max)
{
    struct batch_record_iter it;
    assert_int_equal(batch_records_open(&it, batch, len, 1 << 20), KERR_NONE);
    int n = 0, rc;
    while ((rc = batch_records_next(&it, &recs[n < max ? n : max - 1])) == 1)
        n++;
    assert_int_equal(rc, 0);
    batch_records_close(&it);
    return n;
}

/* ---- up-conversion ---- */

static void test_up_magic0_plain_nulls(void **state)
{
    (void)state;
    struct set s = {.n = 0};
    put_msg(&s, 0, 0, 0, -1, "k1", "v1", 2);
    put_msg(&s, 0, 0, 0, -1, NULL, "v2", 2);     /* null key */
    put_msg(&s, 0, 0, 0, -1, "k3", NULL, -1);    /* null value (a tombstone) */
    put_msg(&s, 0, 0, 0, -1, "", "", 0);         /* empty, not null */
    uint8_t *batch;
    size_t len;
    assert_int_equal(up(&s, &batch, &len), KERR_NONE);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_NONE);
    struct batch_header h;
    batch_header_decode(batch, &h);
    assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, 0);
    assert_int_equal(h.producer_id, -1);
    assert_int_equal(h.max_timestamp, -1); /* magic 0 has no time: NO_TIMESTAMP */
    struct batch_record r[8];
    assert_int_equal(count_records(batch, len, r, 8), 4);
    assert_int_equal(r[0].key_len, 2);
    assert_memory_equal(r[0].value, "v1", 2);
    assert_int_equal(r[1].key_len, -1);
    assert_int_equal(r[2].value_len, -1);
    assert_int_equal(r[3].key_len, 0);
    assert_int_equal(r[3].value_len, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].offset, i);
        assert_int_equal(r[i].timestamp, -1);
    }
    free(batch);
}

static void test_up_magic1_timestamps(void **state)
{
    (void)state;
    struct set s = {.n = 0};
    put_msg(&s, 0, 1, 0, 1700000000000, "a", "1", 1);
    put_msg(&s, 1, 1, 0, 1700000000500, "b", "2", 1);
    put_msg(&s, 2, 1, 0, 1699999999000, "c", "3", 1);
    uint8_t *batch;
    size_t len;
    assert_int_equal(up(&s, &batch, &len), KERR_NONE);
    struct batch_header h;
    batch_header_decode(batch, &h);
    assert_int_equal(h.max_timestamp, 1700000000500);
    assert_int_equal(h.records_count, 3);
    struct batch_record r[4];
    assert_int_equal(count_records(batch, len, r, 4), 3);
    assert_int_equal(r[0].timestamp, 1700000000000);
    assert_int_equal(r[2].timestamp, 1699999999000);
    free(batch);
}

static void test_up_refusals(void **state)
{
    (void)state;
    uint8_t *batch;
    size_t len;
    struct set s = {.n = 0};
    put_msg(&s, 0, 1, 0, 5, "k", "value", 5);
    s.b[s.n - 1] ^= 1; /* a flipped bit in the value: CRC */
    assert_int_equal(up(&s, &batch, &len), KERR_CORRUPT_MESSAGE);
    assert_null(batch);

    s.n = 0;
    put_msg(&s, 0, 1, 0, 5, "k", "value", 5);
    size_t whole = s.n;
    s.n = whole - 3; /* truncated */
    assert_int_equal(up(&s, &batch, &len), KERR_CORRUPT_MESSAGE);
    s.n = whole;
    be32_put(s.b + 8, 13); /* below the magic 0 overhead */
    assert_int_equal(up(&s, &batch, &len), KERR_CORRUPT_MESSAGE);

    s.n = 0;
    put_msg(&s, 0, 1, 0, 5, "k", "v", 1);
    s.b[16] = 3; /* an unknown magic (CRC made again so only the magic is wrong) */
    be32_put(s.b + 12, (uint32_t)crc32(0L, s.b + 16, (uInt)(s.n - 16)));
    assert_int_equal(up(&s, &batch, &len), KERR_CORRUPT_MESSAGE);
}

static void test_up_compressed_wrappers(void **state)
{
    (void)state;
    int codecs[] = {BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_SNAPPY, BATCH_COMPRESSION_LZ4};
    for (size_t c = 0; c < 3; c++) {
        struct set inner = {.n = 0}, s = {.n = 0};
        for (int i = 0; i < 5; i++) {
            char v[32];
            snprintf(v, sizeof(v), "value-%d", i);
            put_msg(&inner, i, 1, 0, 1000 + i, i == 2 ? NULL : "key", v, (int32_t)strlen(v));
        }
        put_wrapper(&s, 4, 1, codecs[c], 1004, &inner);
        uint8_t *batch;
        size_t len;
        assert_int_equal(up(&s, &batch, &len), KERR_NONE);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_NONE);
        struct batch_header h;
        batch_header_decode(batch, &h);
        assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, codecs[c]);
        struct batch_record r[8];
        assert_int_equal(count_records(batch, len, r, 8), 5);
        assert_int_equal(r[2].key_len, -1);
        assert_int_equal(r[4].timestamp, 1004);
        assert_memory_equal(r[4].value, "value-4", 7);
        free(batch);
    }
    /* magic 0 inner offsets are absolute: any are taken */
    struct set inner = {.n = 0}, s = {.n = 0};
    put_msg(&inner, 40, 0, 0, -1, "a", "x", 1);
    put_msg(&inner, 41, 0, 0, -1, "b", "y", 1);
    put_wrapper(&s, 41, 0, BATCH_COMPRESSION_GZIP, -1, &inner);
    put_msg(&s, 0, 0, 0, -1, "c", "z", 1); /* then a plain message in the same set */
    uint8_t *batch;
    size_t len;
    assert_int_equal(up(&s, &batch, &len), KERR_NONE);
    struct batch_record r[4];
    assert_int_equal(count_records(batch, len, r, 4), 3);
    assert_int_equal(r[2].offset, 2);
    free(batch);
}

static void test_up_wrapper_refusals(void **state)
{
    (void)state;
    uint8_t *batch;
    size_t len;
    struct set inner = {.n = 0}, s = {.n = 0};
    /* magic 1 inner offsets must be 0..n-1 */
    put_msg(&inner, 5, 1, 0, 1, "a", "x", 1);
    put_msg(&inner, 6, 1, 0, 1, "b", "y", 1);
    put_wrapper(&s, 6, 1, BATCH_COMPRESSION_GZIP, 1, &inner);
    assert_int_equal(up(&s, &batch, &len), KERR_INVALID_RECORD);
    /* an inner message that is itself compressed */
    inner.n = s.n = 0;
    put_msg(&inner, 0, 1, BATCH_COMPRESSION_GZIP, 1, "a", "x", 1);
    put_wrapper(&s, 0, 1, BATCH_COMPRESSION_GZIP, 1, &inner);
    assert_int_equal(up(&s, &batch, &len), KERR_INVALID_RECORD);
    /* an inner magic unlike the wrapper's */
    inner.n = s.n = 0;
    put_msg(&inner, 0, 0, 0, -1, "a", "x", 1);
    put_wrapper(&s, 0, 1, BATCH_COMPRESSION_GZIP, 1, &inner);
    assert_int_equal(up(&s, &batch, &len), KERR_INVALID_RECORD);
    /* an inner CRC */
    inner.n = s.n = 0;
    put_msg(&inner, 0, 1, 0, 1, "a", "xyz", 3);
    inner.b[inner.n - 1] ^= 0x40;
    put_wrapper(&s, 0, 1, BATCH_COMPRESSION_GZIP, 1, &inner);
    assert_int_equal(up(&s, &batch, &len), KERR_CORRUPT_MESSAGE);
    /* zstd only came with magic 2 */
    s.n = 0;
    put_msg(&s, 0, 1, BATCH_COMPRESSION_ZSTD, 1, NULL, "junk", 4);
    assert_int_equal(up(&s, &batch, &len), KERR_UNSUPPORTED_COMPRESSION_TYPE);
    /* a payload that does not decompress */
    s.n = 0;
    put_msg(&s, 0, 1, BATCH_COMPRESSION_GZIP, 1, NULL, "not gzip at all", 15);
    assert_int_equal(up(&s, &batch, &len), KERR_CORRUPT_MESSAGE);
    /* past the bound once decompressed */
    static uint8_t zeros[1 << 16];
    struct set big = {.n = 0};
    for (int i = 0; i < 10; i++)
        put_msg(&big, i, 1, 0, 1, NULL, (const char *)zeros, 4000);
    s.n = 0;
    put_wrapper(&s, 9, 1, BATCH_COMPRESSION_GZIP, 1, &big);
    int32_t n;
    assert_int_equal(convert_legacy_to_batch(s.b, s.n, 20000, &batch, &len, &n),
                     KERR_MESSAGE_TOO_LARGE);
}

/* ---- down-conversion ---- */

/* A batch of n records ("key-i", "value-i" padded to vsize), record i at base + i. */
static uint8_t *make_batch(int64_t base, int n, int codec, int vsize, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, 1 << 22);
    char v[4096];
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "key-%d", i);
        memset(v, 'a' + i % 26, sizeof(v));
        int vl = snprintf(v, sizeof(v), "value-%d", i);
        v[vl] = 'a';
        struct batch_kv_header hd = {"h", "x", 1};
        assert_int_equal(batch_builder_add(&b, 5000 + i, i == 1 ? NULL : k, i == 1 ? -1 : (int32_t)strlen(k),
                                           v, vsize > vl ? vsize : vl, &hd, 1),
                         KERR_NONE);
    }
    uint8_t *out;
    assert_int_equal(batch_builder_finish(&b, codec, &out, len), KERR_NONE);
    batch_assign(out, *len, base, 0, false, 0);
    batch_builder_free(&b);
    return out;
}

static void test_down_plain_both_magics(void **state)
{
    (void)state;
    size_t len;
    uint8_t *batch = make_batch(10, 4, BATCH_COMPRESSION_NONE, 0, &len);
    for (int magic = 0; magic <= 1; magic++) {
        struct convert_buf out = {0};
        int64_t next;
        assert_int_equal(convert_batches_to_legacy(batch, len, (int8_t)magic, 11, 1 << 20, false,
                                                   &out, &next), KERR_NONE);
        struct msg m[8];
        assert_int_equal(parse_set(out.data, out.len, m, 8), 3); /* from offset 11 */
        assert_int_equal(next, 14);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(m[i].offset, 11 + i);
            assert_int_equal(m[i].magic, magic);
            assert_int_equal(m[i].attr, 0);
            assert_int_equal(m[i].ts, magic == 1 ? 5001 + i : -1);
        }
        assert_int_equal(m[0].key_len, -1); /* record 1 has a null key */
        assert_int_equal(m[1].key_len, 5);
        assert_memory_equal(m[1].key, "key-2", 5);
        assert_memory_equal(m[1].value, "value-2", 7);
        convert_buf_free(&out);
    }
    free(batch);
}

static void test_down_compressed_wrapper(void **state)
{
    (void)state;
    size_t len;
    uint8_t *batch = make_batch(100, 5, BATCH_COMPRESSION_GZIP, 0, &len);
    for (int magic = 0; magic <= 1; magic++) {
        struct convert_buf out = {0};
        int64_t next;
        assert_int_equal(convert_batches_to_legacy(batch, len, (int8_t)magic, 102, 1 << 20, false,
                                                   &out, &next), KERR_NONE);
        struct msg w[2];
        assert_int_equal(parse_set(out.data, out.len, w, 2), 1);
        assert_int_equal(w[0].offset, 104); /* the wrapper sits at its last record */
        assert_int_equal(w[0].attr & 7, BATCH_COMPRESSION_GZIP);
        assert_int_equal(w[0].key_len, -1);
        if (magic == 1)
            assert_int_equal(w[0].ts, 5004); /* the largest inner timestamp */
        static uint8_t plain[1 << 16];
        size_t n = gunzip_bytes(w[0].value, (size_t)w[0].value_len, plain, sizeof(plain));
        struct msg m[8];
        assert_int_equal(parse_set(plain, n, m, 8), 3);
        for (int i = 0; i < 3; i++) {
            /* magic 1: relative inner offsets; magic 0: absolute */
            assert_int_equal(m[i].offset, magic == 1 ? i : 102 + i);
            assert_int_equal(m[i].magic, magic);
        }
        assert_int_equal(next, 105);
        convert_buf_free(&out);
    }
    free(batch);
}

static void test_down_limits(void **state)
{
    (void)state;
    size_t len;
    uint8_t *batch = make_batch(0, 3, BATCH_COMPRESSION_NONE, 100, &len);
    size_t one = 12 + 22 + 5 + 100; /* magic 1, key "key-0", 100-byte value */
    struct convert_buf out = {0};
    int64_t next;
    /* whole messages while they fit */
    assert_int_equal(convert_batches_to_legacy(batch, len, 1, 0, one + 50, false, &out, &next), KERR_NONE);
    assert_int_equal(out.len, one);
    assert_int_equal(next, 1);
    convert_buf_free(&out);
    /* KIP-74 (v3): the first message whole even past the limit */
    assert_int_equal(convert_batches_to_legacy(batch, len, 1, 0, 10, true, &out, &next), KERR_NONE);
    assert_int_equal(out.len, one);
    convert_buf_free(&out);
    /* v0-2: cut at the limit, offset not moved */
    assert_int_equal(convert_batches_to_legacy(batch, len, 1, 0, 10, false, &out, &next), KERR_NONE);
    assert_int_equal(out.len, 10);
    assert_int_equal(next, 0);
    convert_buf_free(&out);
    /* a torn tail batch is left for the next fetch */
    assert_int_equal(convert_batches_to_legacy(batch, len - 1, 1, 0, 1 << 20, false, &out, &next), KERR_NONE);
    assert_int_equal(out.len, 0);
    convert_buf_free(&out);
    free(batch);
}

static void test_down_zstd_and_control(void **state)
{
    (void)state;
    size_t la, lb;
    uint8_t *a = make_batch(0, 2, BATCH_COMPRESSION_ZSTD, 0, &la);
    struct convert_buf out = {0};
    int64_t next;
    assert_int_equal(convert_batches_to_legacy(a, la, 1, 0, 1 << 20, false, &out, &next),
                     KERR_UNSUPPORTED_COMPRESSION_TYPE);
    convert_buf_free(&out);
    /* a control batch first: skipped */
    uint8_t *b = make_batch(0, 1, BATCH_COMPRESSION_NONE, 0, &lb);
    uint8_t *c = make_batch(1, 2, BATCH_COMPRESSION_NONE, 0, &la);
    be16_put(b + 21, BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL);
    uint8_t both[8192];
    memcpy(both, b, lb);
    memcpy(both + lb, c, la);
    assert_int_equal(convert_batches_to_legacy(both, lb + la, 1, 0, 1 << 20, false, &out, &next), KERR_NONE);
    struct msg m[4];
    assert_int_equal(parse_set(out.data, out.len, m, 4), 2);
    assert_int_equal(m[0].offset, 1);
    convert_buf_free(&out);
    free(a);
    free(b);
    free(c);
}

/* Up then down: what a v0-2 producer wrote is what a v0-3 consumer reads. */
static void test_round_trip(void **state)
{
    (void)state;
    struct set inner = {.n = 0}, s = {.n = 0};
    for (int i = 0; i < 3; i++)
        put_msg(&inner, i, 1, 0, 77 + i, "k", "abc", 3);
    put_wrapper(&s, 2, 1, BATCH_COMPRESSION_LZ4, 79, &inner);
    uint8_t *batch;
    size_t len;
    assert_int_equal(up(&s, &batch, &len), KERR_NONE);
    batch_assign(batch, len, 1000, 0, false, 0);
    struct convert_buf out = {0};
    int64_t next;
    assert_int_equal(convert_batches_to_legacy(batch, len, 1, 1000, 1 << 20, false, &out, &next), KERR_NONE);
    struct msg w[2];
    assert_int_equal(parse_set(out.data, out.len, w, 2), 1);
    assert_int_equal(w[0].offset, 1002);
    assert_int_equal(w[0].attr & 7, BATCH_COMPRESSION_LZ4);
    assert_int_equal(w[0].ts, 79);
    convert_buf_free(&out);
    free(batch);
}

/* Memory of a down-conversion is about its limit plus one batch, whatever the input size. */
static void test_down_memory_bounded(void **state)
{
    (void)state;
    size_t one_len;
    uint8_t *one = make_batch(0, 100, BATCH_COMPRESSION_NONE, 1000, &one_len);
    size_t n = 64, total = one_len * n;
    uint8_t *many = malloc(total);
    for (size_t i = 0; i < n; i++) {
        memcpy(many + i * one_len, one, one_len);
        batch_assign(many + i * one_len, one_len, (int64_t)(i * 100), 0, false, 0);
    }
    convert_memory_high_water_reset();
    struct convert_buf out = {0};
    int64_t next;
    size_t limit = 256 << 10;
    assert_int_equal(convert_batches_to_legacy(many, total, 1, 0, limit, true, &out, &next), KERR_NONE);
    assert_true(out.len <= limit);
    assert_true(out.len > limit - 2000);
    assert_true(convert_memory_high_water() <= 2 * limit + one_len);
    print_message("down-convert of %zu KB with a %zu KB limit: %zu KB out, %zu KB held at most\n",
                  total >> 10, limit >> 10, out.len >> 10, convert_memory_high_water() >> 10);
    convert_buf_free(&out);
    free(many);
    free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up_magic0_plain_nulls),
        cmocka_unit_test(test_up_magic1_timestamps),
        cmocka_unit_test(test_up_refusals),
        cmocka_unit_test(test_up_compressed_wrappers),
        cmocka_unit_test(test_up_wrapper_refusals),
        cmocka_unit_test(test_down_plain_both_magics),
        cmocka_unit_test(test_down_compressed_wrapper),
        cmocka_unit_test(test_down_limits),
        cmocka_unit_test(test_down_zstd_and_control),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_down_memory_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
