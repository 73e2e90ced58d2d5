/* test_log_batch: CRC-32C (hardware and table paths), varints, the batch builder and the
 * record iterator over every codec, and client-batch validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <snappy-c.h>
#include <stdio.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include "log_test_util.h"
#include "common/crc32c.h"
#include "common/errors.h"
#include "common/util.h"
#include "log/batch_stream.h"
#include "log/inflate.h"

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

/* n records as one batch at base offset base, appended to log at *len. */
static void append_batch(uint8_t *log, size_t *len, int64_t base, int n)
{
    struct batch_builder b;
    batch_builder_init(&b, 1 << 20);
    for (int i = 0; i < n; i++)
        assert_int_equal(batch_builder_add(&b, i, NULL, -1, "v", 1, NULL, 0), 0);
    uint8_t *batch;
    size_t blen;
    assert_int_equal(batch_builder_finish(&b, 0, &batch, &blen), 0);
    batch_builder_free(&b);
    batch_assign(batch, blen, base, 0, false, 0);
    memcpy(log + *len, batch, blen);
    *len += blen;
    free(batch);
}

/* The walk a replay does over a read of a log: whole batches from an offset on, a torn last
 * batch (a read that stopped inside it) and a bad length ending it. */
static void test_batch_walk(void **state)
{
    (void)state;
    uint8_t log[4096];
    size_t len = 0;
    append_batch(log, &len, 0, 2);     /* offsets 0-1 */
    size_t second = len;
    append_batch(log, &len, 2, 3);     /* 2-4 */
    append_batch(log, &len, 5, 1);     /* 5 */
    size_t whole = len;
    append_batch(log, &len, 6, 2);     /* 6-7, torn below */
    struct batch_header h;
    const uint8_t *batch;
    int64_t firsts[3] = {0, 2, 5}, lasts[3] = {1, 4, 5};
    struct batch_walk w = {.buf = log, .len = len - 10};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(batch_walk_next(&w, 0, &h, &batch), 1);
        assert_int_equal(h.base_offset, firsts[i]);
        assert_int_equal(batch_last_offset(&h), lasts[i]);
        assert_int_equal(h.records_count, lasts[i] - firsts[i] + 1);
        assert_int_equal(batch_compute_crc(batch, (size_t)batch_total_size(&h)), h.crc);
    }
    assert_int_equal(batch_walk_next(&w, 0, &h, &batch), 0);
    assert_int_equal(batch_walk_next(&w, 0, &h, &batch), 0);
    /* from 3: the batch holding offset 3 (2-4) first */
    w = (struct batch_walk){.buf = log, .len = whole};
    assert_int_equal(batch_walk_next(&w, 3, &h, &batch), 1);
    assert_int_equal(h.base_offset, 2);
    assert_ptr_equal(batch, log + second);
    assert_int_equal(batch_walk_next(&w, 3, &h, &batch), 1);
    assert_int_equal(h.base_offset, 5);
    assert_int_equal(batch_walk_next(&w, 3, &h, &batch), 0);
    /* a batchLength below the smallest batch ends the walk */
    be32_put(log + second + 8, BATCH_MIN_LENGTH - 1);
    w = (struct batch_walk){.buf = log, .len = whole};
    assert_int_equal(batch_walk_next(&w, 0, &h, &batch), 1);
    assert_int_equal(batch_walk_next(&w, 0, &h, &batch), 0);
    /* shorter than a header: nothing */
    w = (struct batch_walk){.buf = log, .len = BATCH_HEADER_SIZE - 1};
    assert_int_equal(batch_walk_next(&w, 0, &h, &batch), 0);
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
    assert_int_equal(batch_validate_client(z, 40, 1 << 20), KERR_INVALID_RECORD);
    z[16] = 7;
    assert_int_equal(batch_validate_client(z, 40, 1 << 20), KERR_CORRUPT_MESSAGE);
}

/* ---- Produce validation of the records themselves (LogValidator), every codec ---- */

static const int all_codecs[] = {BATCH_COMPRESSION_NONE, BATCH_COMPRESSION_GZIP,
                                 BATCH_COMPRESSION_SNAPPY, BATCH_COMPRESSION_LZ4,
                                 BATCH_COMPRESSION_ZSTD};

/* A builder holding n records "value-<i>" (no headers, one with a key and header), left for
 * the caller to edit (records at buf + BATCH_HEADER_SIZE, count) before finish_edited. */
static void edited_start(struct batch_builder *b, int n)
{
    batch_builder_init(b, 1 << 20);
    struct batch_kv_header hdr = {"h", "hv", 2};
    for (int i = 0; i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof(v), "value-%d", i);
        assert_int_equal(batch_builder_add(b, 1000 + i, i == 1 ? "key" : NULL, 3, v, vl,
                                           i == 1 ? &hdr : NULL, i == 1 ? 1 : 0), 0);
    }
}

static uint8_t *edited_finish(struct batch_builder *b, int codec, size_t *len)
{
    uint8_t *batch;
    assert_int_equal(batch_builder_finish(b, codec, &batch, len), 0);
    batch_builder_free(b);
    return batch;
}

/* Offset of record i's offsetDelta varint in an uncompressed builder (small records:
 * length varint 1 byte, attributes 1, timestampDelta 1). */
static size_t offset_delta_at(const struct batch_builder *b, int i)
{
    const uint8_t *p = b->buf + BATCH_HEADER_SIZE, *end = b->buf + b->len;
    for (int k = 0; k < i; k++) {
        int32_t size;
        assert_int_equal(batch_varint_get(&p, end, &size), 0);
        p += size;
    }
    return (size_t)(p - b->buf) + 3;
}

static void refit_crc(uint8_t *batch, size_t len)
{
    be32_put(batch + 8, (uint32_t)(len - BATCH_LOG_OVERHEAD));
    be32_put(batch + 17, batch_compute_crc(batch, len));
}

static void test_validate_record_count(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(all_codecs); c++) {
        struct batch_builder b;
        size_t len;
        uint8_t *batch;
        /* recordsCount 1,000,000 (lastOffsetDelta 999,999) over one record: the header alone
         * is consistent, the records are not. */
        edited_start(&b, 1);
        b.count = 1000000;
        batch = edited_finish(&b, all_codecs[c], &len);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
        free(batch);
        /* Fewer declared than present: the rest is "records still remaining". */
        edited_start(&b, 3);
        b.count = 2;
        batch = edited_finish(&b, all_codecs[c], &len);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
        free(batch);
        /* The same batches unedited pass. */
        edited_start(&b, 3);
        batch = edited_finish(&b, all_codecs[c], &len);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_NONE);
        free(batch);
    }
}

static void test_validate_offset_deltas(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(all_codecs); c++) {
        int32_t bad_deltas[] = {0, 2, -1, 7}; /* record 1 repeats 0, skips, goes back, jumps */
        for (size_t d = 0; d < ARRAY_LEN(bad_deltas); d++) {
            struct batch_builder b;
            edited_start(&b, 3);
            uint8_t one[5];
            assert_int_equal(batch_varint_put(one, bad_deltas[d]), 1);
            b.buf[offset_delta_at(&b, 1)] = one[0]; /* varint(1) is one byte too */
            size_t len;
            uint8_t *batch = edited_finish(&b, all_codecs[c], &len);
            assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
            free(batch);
        }
    }
}

static void test_validate_garbage_records(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(all_codecs); c++) {
        /* Each edit breaks the structure while the CRC (computed after) stays valid. */
        for (int edit = 0; edit < 7; edit++) {
            struct batch_builder b;
            edited_start(&b, 3);
            uint8_t *r0 = b.buf + BATCH_HEADER_SIZE;
            size_t key_len_at = offset_delta_at(&b, 1) + 1;
            switch (edit) {
            case 0: memset(r0, 0xff, b.len - BATCH_HEADER_SIZE); break; /* varints too long */
            case 1: r0[0] += 2; break;                 /* length says more than the record */
            case 2: r0[0] -= 2; break;                 /* length says less */
            case 3: b.buf[key_len_at] = 0x05; break;   /* key length -3 */
            case 4: b.buf[key_len_at] = 0x7e; break;   /* key length 63: past the record */
            case 5: b.len -= 1; break;                 /* last record cut short */
            case 6: r0[0] = 0; break;                  /* a zero-length record */
            }
            size_t len;
            uint8_t *batch = edited_finish(&b, all_codecs[c], &len);
            assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
            free(batch);
        }
        /* A header with a negative key length, and a negative header count. */
        struct batch_builder b;
        edited_start(&b, 2);
        size_t hdr_count_at = b.len - 1 - 1 - 2 - 1 - 1; /* ... nheaders=1, klen, "h", vlen, "hv" */
        assert_int_equal(b.buf[hdr_count_at], 2);      /* varint(1) */
        b.buf[hdr_count_at + 1] = 0x01;                /* header key length -1 */
        size_t len;
        uint8_t *batch = edited_finish(&b, all_codecs[c], &len);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
        free(batch);
        edited_start(&b, 2);
        b.buf[hdr_count_at] = 0x01; /* -1 headers */
        batch = edited_finish(&b, all_codecs[c], &len);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
        free(batch);
    }
}

/* A compressed payload that does not decompress, with a valid CRC, is INVALID_RECORD (issue 12
 * item 9): non-retriable, so a client does not send the same bad bytes again. */
static void test_validate_corrupt_payloads(void **state)
{
    (void)state;
    for (size_t c = 1; c < ARRAY_LEN(all_codecs); c++) {
        int codec = all_codecs[c];
        for (int edit = 0; edit < 3; edit++) {
            struct batch_builder b;
            edited_start(&b, 20);
            size_t len;
            uint8_t *batch = edited_finish(&b, codec, &len);
            uint8_t *z = batch + BATCH_HEADER_SIZE;
            size_t zlen = len - BATCH_HEADER_SIZE;
            if (edit == 0) {
                /* the codec's magic / header */
                size_t at = codec == BATCH_COMPRESSION_SNAPPY ? 16 : 0; /* xerial chunk length */
                z[at] ^= 0x5a;
            } else if (edit == 1) {
                len -= zlen / 2; /* cut in the middle */
            } else {
                memset(z + zlen / 3, 0xa5, zlen / 3); /* garbage inside */
            }
            refit_crc(batch, len);
            int rc = batch_validate_client(batch, len, 1 << 20);
            /* (snappy has no checksum: its garbage may decode to garbage records, the same answer) */
            assert_int_equal(rc, KERR_INVALID_RECORD);
            free(batch);
        }
    }
}

/* Snappy as librdkafka, sarama and franz-go write it: one raw block, no xerial framing; and
 * gzip as several concatenated members (Java's GZIPInputStream reads them all). */
static void test_validate_raw_snappy_and_gzip_members(void **state)
{
    (void)state;
    struct batch_builder b;
    edited_start(&b, 5);
    size_t rlen = b.len - BATCH_HEADER_SIZE;
    size_t zcap = snappy_max_compressed_length(rlen), zlen = zcap;
    uint8_t *batch = malloc(BATCH_HEADER_SIZE + zcap);
    memcpy(batch, b.buf, BATCH_HEADER_SIZE);
    assert_int_equal(snappy_compress((const char *)b.buf + BATCH_HEADER_SIZE, rlen,
                                     (char *)batch + BATCH_HEADER_SIZE, &zlen), SNAPPY_OK);
    int32_t n = b.count;
    /* the header fields as batch_builder_finish writes them */
    uint8_t *ref;
    size_t ref_len;
    assert_int_equal(batch_builder_finish(&b, BATCH_COMPRESSION_NONE, &ref, &ref_len), 0);
    memcpy(batch, ref, BATCH_HEADER_SIZE);
    be16_put(batch + 21, BATCH_COMPRESSION_SNAPPY);
    size_t len = BATCH_HEADER_SIZE + zlen;
    refit_crc(batch, len);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_NONE);
    struct batch_record_iter it;
    struct batch_record r;
    assert_int_equal(batch_records_open(&it, batch, len, 1 << 20), 0);
    int k, seen = 0;
    while ((k = batch_records_next(&it, &r)) == 1)
        seen++;
    assert_int_equal(k, 0);
    assert_int_equal(seen, n);
    batch_records_close(&it);
    free(batch);

    /* gzip: records split over two members */
    size_t half = (ref_len - BATCH_HEADER_SIZE) / 2;
    uint8_t *gz = malloc(ref_len * 2 + 128);
    size_t glen = BATCH_HEADER_SIZE;
    memcpy(gz, ref, BATCH_HEADER_SIZE);
    const uint8_t *parts[2] = {ref + BATCH_HEADER_SIZE, ref + BATCH_HEADER_SIZE + half};
    size_t plen[2] = {half, ref_len - BATCH_HEADER_SIZE - half};
    for (int m = 0; m < 2; m++) {
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        zs.next_in = (Bytef *)parts[m];
        zs.avail_in = (uInt)plen[m];
        zs.next_out = gz + glen;
        zs.avail_out = (uInt)(ref_len * 2 + 128 - glen);
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        glen += zs.total_out;
        deflateEnd(&zs);
    }
    be16_put(gz + 21, BATCH_COMPRESSION_GZIP);
    refit_crc(gz, glen);
    assert_int_equal(batch_validate_client(gz, glen, 1 << 20), KERR_NONE);
    free(gz);
    free(ref);
}

/* Ends a zstd stream begun with ZSTD_e_continue (so its frame declares no content size) and
 * frees the context. */
static void zstd_finish(ZSTD_CCtx *cc, ZSTD_outBuffer *out, ZSTD_inBuffer *in)
{
    size_t left;
    do {
        left = ZSTD_compressStream2(cc, out, in, ZSTD_e_end);
        assert_false(ZSTD_isError(left));
    } while (left != 0);
    ZSTD_freeCCtx(cc);
}

/* A 16 KB zstd payload whose one record claims a 300 MB value of zeros: refused at
 * BATCH_INFLATE_MAX with MESSAGE_TOO_LARGE, in bounded memory. */
static void test_validate_inflate_bound(void **state)
{
    (void)state;
    struct batch_builder b;
    edited_start(&b, 1);
    size_t hlen;
    uint8_t *hdr = edited_finish(&b, BATCH_COMPRESSION_NONE, &hlen);
    const int32_t value_len = 300 << 20;
    uint8_t rec[32];
    size_t rl = 0;
    uint8_t body[16];
    size_t bl = 0;
    body[bl++] = 0;                               /* attributes */
    bl += batch_varlong_put(body + bl, 0);        /* timestampDelta */
    bl += batch_varint_put(body + bl, 0);         /* offsetDelta */
    bl += batch_varint_put(body + bl, -1);        /* null key */
    bl += batch_varint_put(body + bl, value_len); /* the value, then 0 headers */
    rl += batch_varint_put(rec, (int32_t)(bl + (size_t)value_len + 1));
    memcpy(rec + rl, body, bl);
    rl += bl;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t cap = 1 << 20;
    uint8_t *batch = malloc(BATCH_HEADER_SIZE + cap);
    memcpy(batch, hdr, BATCH_HEADER_SIZE);
    ZSTD_outBuffer out = {batch + BATCH_HEADER_SIZE, cap, 0};
    ZSTD_inBuffer in = {rec, rl, 0};
    assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_continue)));
    uint8_t *zeros = calloc(1, 1 << 20);
    for (int32_t left = value_len; left > 0; left -= 1 << 20) {
        in = (ZSTD_inBuffer){zeros, 1 << 20, 0};
        assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_continue)));
    }
    in = (ZSTD_inBuffer){"\0", 1, 0}; /* 0 headers */
    zstd_finish(cc, &out, &in);
    free(zeros);
    size_t len = BATCH_HEADER_SIZE + out.pos;
    be16_put(batch + 21, BATCH_COMPRESSION_ZSTD);
    refit_crc(batch, len);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_MESSAGE_TOO_LARGE);
    getrusage(RUSAGE_SELF, &after);
    /* the decoder's window and ours, not the 256 MB it inflated */
    assert_true(after.ru_maxrss - before.ru_maxrss < 64 * 1024);
    free(batch);
    free(hdr);
}

/* A zstd frame whose header asks for a window past 2^23 bytes (level 20+ without a declared
 * size) is refused on produce with MESSAGE_TOO_LARGE, as timestamp lookups refuse it: the
 * decoder would hold that window. 2^23 itself goes in. */
static void test_validate_zstd_window_limit(void **state)
{
    (void)state;
    /* Compressed with a 2^23 window, then the frame header says 2^27 or 2^28 (the decoder
     * refuses a window by its header, before allocating it; compressing with a real 2^28
     * window would take 256 MiB here). */
    for (int window_log = 27; window_log <= 28; window_log++) {
        struct batch_builder b;
        edited_start(&b, 20);
        size_t plain_len;
        uint8_t *plain = edited_finish(&b, BATCH_COMPRESSION_NONE, &plain_len);
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 23)));
        size_t cap = BATCH_HEADER_SIZE + ZSTD_compressBound(plain_len) + 64;
        uint8_t *batch = malloc(cap);
        memcpy(batch, plain, BATCH_HEADER_SIZE);
        ZSTD_outBuffer out = {batch + BATCH_HEADER_SIZE, cap - BATCH_HEADER_SIZE, 0};
        /* e_continue first: the frame declares no content size, so its window stays as set */
        ZSTD_inBuffer in = {plain + BATCH_HEADER_SIZE, plain_len - BATCH_HEADER_SIZE, 0};
        assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_continue)));
        zstd_finish(cc, &out, &in);
        size_t len = BATCH_HEADER_SIZE + out.pos;
        uint8_t *frame = batch + BATCH_HEADER_SIZE;
        assert_int_equal(frame[4] & 0x20, 0); /* no single segment: a window descriptor */
        frame[5] = (uint8_t)((window_log - 10) << 3);
        be16_put(batch + 21, BATCH_COMPRESSION_ZSTD);
        refit_crc(batch, len);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20),
                         window_log > INFLATE_ZSTD_WINDOW_LOG_MAX ? KERR_MESSAGE_TOO_LARGE : KERR_NONE);
        free(batch);
        free(plain);
    }
}

/* 40 records of incompressible 5 KB values (200 KB), the same each call, compressed with codec. */
static uint8_t *random_batch(int codec, size_t *len)
{
    uint8_t value[5000];
    uint32_t x = 12345;
    struct batch_builder b;
    batch_builder_init(&b, 1 << 20);
    for (int i = 0; i < 40; i++) {
        for (size_t k = 0; k < sizeof(value); k++)
            value[k] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
        assert_int_equal(batch_builder_add(&b, 5000 - 7 * i, "k", 1, value, 5000 - i, NULL, 0), 0);
    }
    return edited_finish(&b, codec, len);
}

/* The records of an uncompressed batch re-wrapped as snappy: one raw block (chunk 0), or
 * xerial chunks of chunk uncompressed bytes each. */
static uint8_t *snappy_wrap(const uint8_t *plain, size_t plain_len, size_t chunk, size_t *len)
{
    const uint8_t *recs = plain + BATCH_HEADER_SIZE;
    size_t n = plain_len - BATCH_HEADER_SIZE, step = chunk ? chunk : n;
    uint8_t *batch = malloc(BATCH_HEADER_SIZE + 16 + (n / step + 1) * (4 + snappy_max_compressed_length(step)));
    memcpy(batch, plain, BATCH_HEADER_SIZE);
    size_t at = BATCH_HEADER_SIZE;
    if (chunk) {
        memcpy(batch + at, INFLATE_XERIAL_MAGIC, 8);
        be32_put(batch + at + 8, 1);
        be32_put(batch + at + 12, 1);
        at += 16;
    }
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step, z = snappy_max_compressed_length(k);
        size_t head = chunk ? 4 : 0;
        assert_int_equal(snappy_compress((const char *)recs + off, k, (char *)batch + at + head, &z), SNAPPY_OK);
        if (chunk)
            be32_put(batch + at, (uint32_t)z);
        at += head + z;
    }
    be16_put(batch + 21, BATCH_COMPRESSION_SNAPPY);
    refit_crc(batch, at);
    *len = at;
    return batch;
}

/* A batch streamed from its file (timestamp lookups) reads the same records as the in-memory
 * iterator for every codec when its compressed bytes span several 64 KiB file windows: snappy
 * xerial chunks and their length fields straddle window boundaries (gathered), raw snappy is
 * one block; the reader holds its windows and one block, not the batch. */
static void test_stream_across_file_windows(void **state)
{
    (void)state;
    size_t plain_len;
    uint8_t *plain = random_batch(BATCH_COMPRESSION_NONE, &plain_len);
    for (int variant = 0; variant < 7; variant++) {
        size_t len;
        uint8_t *batch = variant < 5 ? random_batch(all_codecs[variant], &len)
                                     : snappy_wrap(plain, plain_len, variant == 5 ? 0 : 30001, &len);
        assert_true(len > 3 * INFLATE_WINDOW);
        assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_NONE);
        FILE *file = tmpfile();
        assert_non_null(file);
        assert_int_equal(fwrite(batch, 1, len, file), len);
        assert_int_equal(fflush(file), 0);
        struct batch_header h;
        batch_header_decode(batch, &h);
        struct batch_stream *bs;
        struct batch_record_iter it;
        struct batch_record r;
        int64_t off, ts;
        int n = 0, k;
        inflater_memory_high_water_reset();
        assert_int_equal(batch_stream_open(&bs, fileno(file), 0, &h, 64 << 20), 0);
        assert_int_equal(batch_records_open(&it, batch, len, 1 << 20), KERR_NONE);
        while ((k = batch_stream_next(bs, &off, &ts)) == 1) {
            assert_int_equal(batch_records_next(&it, &r), 1);
            assert_int_equal(off, r.offset);
            assert_int_equal(ts, r.timestamp);
            assert_int_equal(ts, 5000 - 7 * n);
            n++;
        }
        assert_int_equal(k, 0);
        assert_int_equal(n, 40);
        assert_int_equal(batch_records_next(&it, &r), 0);
        batch_records_close(&it);
        batch_stream_close(bs);
        print_message("variant %d: %zu bytes on disk, the stream held at most %zu bytes\n", variant, len,
                      inflater_memory_high_water());
        assert_true(inflater_memory_high_water() < (1u << 20));
        fclose(file);
        free(batch);
    }
    free(plain);
}

static void test_validate_header_as_kafka(void **state)
{
    (void)state;
    size_t len;
    uint8_t *batch = tu_batch(2, 10, 1, BATCH_COMPRESSION_NONE, &len);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_NONE);
    /* A client's baseOffset must be 0 (UnifiedLog.analyzeAndValidateRecords). */
    be64_put(batch, 5);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
    be64_put(batch, 0);
    /* Control batches come from coordinators only. */
    be16_put(batch + 21, BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL);
    refit_crc(batch, len);
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
    /* Produce v3+ takes magic 2 only (ProduceRequest.validateRecords). */
    batch[16] = 1;
    assert_int_equal(batch_validate_client(batch, len, 1 << 20), KERR_INVALID_RECORD);
    free(batch);
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
        cmocka_unit_test(test_batch_walk),
        cmocka_unit_test(test_corrupt_records_rejected),
        cmocka_unit_test(test_validate_short_inputs),
        cmocka_unit_test(test_validate_record_count),
        cmocka_unit_test(test_validate_offset_deltas),
        cmocka_unit_test(test_validate_garbage_records),
        cmocka_unit_test(test_validate_corrupt_payloads),
        cmocka_unit_test(test_validate_raw_snappy_and_gzip_members),
        cmocka_unit_test(test_validate_inflate_bound),
        cmocka_unit_test(test_validate_zstd_window_limit),
        cmocka_unit_test(test_stream_across_file_windows),
        cmocka_unit_test(test_validate_header_as_kafka),
    };
    return cmocka_run_group_tests_name("log_batch", tests, NULL, NULL);
}
