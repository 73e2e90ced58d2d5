/* batch: everything gregor knows about one record batch's bytes. The append path checks the
 * 61-byte header, the CRC and walks the records (LogValidator); records are decoded for tools
 * and tests through a bounded iterator. Both decompress through log/inflate.c. */
#include "log/batch.h"

#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/crc32c.h"
#include "common/errors.h"
#include "common/util.h"
#include "log/inflate.h"

const char *batch_compression_name(int codec)
{
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    if (codec < 0 || codec >= (int)ARRAY_LEN(names))
        return "unknown";
    return names[codec];
}

void batch_header_decode(const uint8_t *p, struct batch_header *h)
{
    h->base_offset = (int64_t)be64_get(p);
    h->length = (int32_t)be32_get(p + 8);
    h->partition_leader_epoch = (int32_t)be32_get(p + 12);
    h->magic = (int8_t)p[16];
    h->crc = be32_get(p + 17);
    h->attributes = (int16_t)be16_get(p + 21);
    h->last_offset_delta = (int32_t)be32_get(p + 23);
    h->base_timestamp = (int64_t)be64_get(p + 27);
    h->max_timestamp = (int64_t)be64_get(p + 35);
    h->producer_id = (int64_t)be64_get(p + 43);
    h->producer_epoch = (int16_t)be16_get(p + 51);
    h->base_sequence = (int32_t)be32_get(p + 53);
    h->records_count = (int32_t)be32_get(p + 57);
}

uint32_t batch_compute_crc(const uint8_t *batch, size_t len)
{
    GREGOR_ASSERT(len >= BATCH_CRC_START);
    return crc32c(0, batch + BATCH_CRC_START, len - BATCH_CRC_START);
}

void batch_assign(uint8_t *batch, size_t len, int64_t base_offset, int32_t leader_epoch,
                  bool log_append_time, int64_t now_ms)
{
    GREGOR_ASSERT(len >= BATCH_HEADER_SIZE);
    be64_put(batch, (uint64_t)base_offset);
    be32_put(batch + 12, (uint32_t)leader_epoch);
    if (log_append_time) {
        uint16_t attrs = be16_get(batch + 21);
        be16_put(batch + 21, (uint16_t)(attrs | BATCH_ATTR_LOG_APPEND_TIME));
        be64_put(batch + 35, (uint64_t)now_ms);
        be32_put(batch + 17, batch_compute_crc(batch, len));
    }
}

/* ---- varints ---- */

int batch_varlong_get(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    uint64_t v = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 70; shift += 7) {
        if (q >= end)
            return -1;
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

int batch_varint_get(const uint8_t **p, const uint8_t *end, int32_t *out)
{
    uint32_t v = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 35; shift += 7) {
        if (q >= end)
            return -1;
        uint8_t b = *q++;
        if (shift == 28 && (b & 0xf0))
            return -1;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

size_t batch_varlong_put(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

size_t batch_varint_put(uint8_t *p, int32_t v) { return batch_varlong_put(p, v); }

/* ---- record validation for Produce (Kafka's LogValidator) ---- */

/* A length-prefixed field: -1 (null) or a length >= 0, then that many bytes. */
static bool skip_bytes_field(struct inflater *f, bool nullable)
{
    int32_t n;
    if (!inflater_varint(f, &n) || n < (nullable ? -1 : 0))
        return false;
    return n <= 0 || inflater_skip(f, (uint64_t)n);
}

/* One record at index i: its length varint, then exactly that many bytes of attributes,
 * timestampDelta, offsetDelta == i, key, value and headers (DefaultRecord.readFrom). */
static bool validate_record(struct inflater *f, int32_t i)
{
    int32_t size, offset_delta, nheaders;
    int64_t timestamp_delta;
    uint8_t attributes;
    if (!inflater_varint(f, &size) || size < 1)
        return false;
    uint64_t start = inflater_tell(f);
    if (!inflater_byte(f, &attributes) || !inflater_varlong(f, &timestamp_delta) ||
        !inflater_varint(f, &offset_delta))
        return false;
    /* Kafka rewrites a compressed batch whose offsets are not 0..n-1 and stores an
     * uncompressed one as sent; gregor appends in place, so it refuses both. */
    if (offset_delta != i)
        return false;
    if (!skip_bytes_field(f, true) || !skip_bytes_field(f, true) || !inflater_varint(f, &nheaders) ||
        nheaders < 0)
        return false;
    for (int32_t h = 0; h < nheaders; h++) {
        if (!skip_bytes_field(f, false) || !skip_bytes_field(f, true) ||
            inflater_tell(f) - start > (uint64_t)size)
            return false;
    }
    return inflater_tell(f) - start == (uint64_t)size;
}

/* Walks every record of a batch whose header and CRC were checked: recordsCount records,
 * then nothing left. Uncompressed: one pass over the bytes in place; compressed: streamed
 * through a 64 KiB window (snappy blocks and small zstd frames: walked in their block), at
 * most BATCH_INFLATE_MAX bytes in all. */
static int validate_records(const uint8_t *batch, size_t len, const struct batch_header *h)
{
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    struct inflater f;
    inflater_open_memory(&f, codec, batch + BATCH_HEADER_SIZE, len - BATCH_HEADER_SIZE,
                         codec == BATCH_COMPRESSION_NONE ? UINT64_MAX : BATCH_INFLATE_MAX,
                         BATCH_INFLATE_MAX);
    int rc = KERR_NONE;
    for (int32_t i = 0; i < h->records_count && rc == KERR_NONE; i++) {
        if (!validate_record(&f, i))
            rc = KERR_INVALID_RECORD;
    }
    /* "Incorrect declared batch size, records still remaining": bytes after the last one. */
    if (rc == KERR_NONE && !inflater_at_end(&f))
        rc = KERR_INVALID_RECORD;
    /* The codec failed or a bound was hit: that, not the record it cut. A payload that does
     * not decompress is INVALID_RECORD (non-retriable: the client must not resend it). */
    if (f.err == INFLATE_CORRUPT)
        rc = KERR_INVALID_RECORD;
    else if (f.err == INFLATE_TOO_BIG)
        rc = KERR_MESSAGE_TOO_LARGE;
    else if (f.err != INFLATE_OK)
        rc = KERR_UNKNOWN_SERVER_ERROR;
    inflater_close(&f);
    return rc;
}

int batch_validate_client(const uint8_t *batch, size_t len, int32_t max_message_bytes)
{
    /* Magic sits at byte 16 in every format: look at it before trusting anything else.
     * Produce v3+ carries magic 2 only (ProduceRequest.validateRecords: INVALID_RECORD). */
    if (len < BATCH_LOG_OVERHEAD + 5)
        return KERR_CORRUPT_MESSAGE;
    int8_t magic = (int8_t)batch[16];
    if (magic == 0 || magic == 1)
        return KERR_INVALID_RECORD;
    if (magic != BATCH_MAGIC_V2)
        return KERR_CORRUPT_MESSAGE;
    if (len < BATCH_HEADER_SIZE)
        return KERR_CORRUPT_MESSAGE;
    struct batch_header h;
    batch_header_decode(batch, &h);
    if (h.length < BATCH_MIN_LENGTH || (uint64_t)batch_total_size(&h) != len)
        return KERR_CORRUPT_MESSAGE;
    /* Then as UnifiedLog.analyzeAndValidateRecords, LogValidator.validateBatch and its records. */
    if (h.base_offset != 0)
        return KERR_INVALID_RECORD;
    if (max_message_bytes >= 0 && len > (size_t)max_message_bytes)
        return KERR_MESSAGE_TOO_LARGE;
    if (batch_compute_crc(batch, len) != h.crc)
        return KERR_CORRUPT_MESSAGE;
    if (h.last_offset_delta < 0 || (int64_t)h.last_offset_delta + 1 != h.records_count)
        return KERR_INVALID_RECORD;
    if (h.attributes & BATCH_ATTR_CONTROL)
        return KERR_INVALID_RECORD;
    if ((h.attributes & BATCH_ATTR_COMPRESSION_MASK) > BATCH_COMPRESSION_ZSTD)
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (h.producer_id >= 0 && h.base_sequence < 0)
        return KERR_INVALID_RECORD;
    return validate_records(batch, len, &h);
}

/* ---- record iteration ---- */

int batch_records_open(struct batch_record_iter *it, const uint8_t *batch, size_t len,
                       size_t max_decompressed)
{
    memset(it, 0, sizeof(*it));
    if (len < BATCH_HEADER_SIZE)
        return KERR_CORRUPT_MESSAGE;
    batch_header_decode(batch, &it->h);
    if (it->h.magic != BATCH_MAGIC_V2 || it->h.length < BATCH_MIN_LENGTH ||
        (uint64_t)batch_total_size(&it->h) > len || it->h.records_count < 0)
        return KERR_CORRUPT_MESSAGE;
    const uint8_t *recs = batch + BATCH_HEADER_SIZE;
    size_t recs_len = (size_t)batch_total_size(&it->h) - BATCH_HEADER_SIZE;
    int codec = it->h.attributes & BATCH_ATTR_COMPRESSION_MASK;
    it->remaining = it->h.records_count;
    if (codec == BATCH_COMPRESSION_NONE) {
        it->pos = recs;
        it->end = recs + recs_len;
        return KERR_NONE;
    }
    if (codec > BATCH_COMPRESSION_ZSTD)
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    /* Decompressed whole into a buffer grown up to max_decompressed. */
    struct inflater f;
    uint8_t *out = NULL;
    size_t out_len = 0, cap = 0;
    inflater_open_memory(&f, codec, recs, recs_len, max_decompressed, max_decompressed);
    while (f.err == INFLATE_OK && (f.pos < f.end || inflater_fill(&f))) {
        size_t k = (size_t)(f.end - f.pos); /* out_len + k <= max_decompressed: the inflater's bound */
        if (out_len + k > cap) {
            size_t ncap = cap ? cap : 4096;
            while (ncap < out_len + k)
                ncap *= 2;
            ncap = ncap < max_decompressed ? ncap : max_decompressed;
            uint8_t *np = realloc(out, ncap);
            if (np == NULL)
                break;
            out = np;
            cap = ncap;
        }
        memcpy(out + out_len, f.pos, k);
        out_len += k;
        f.pos = f.end;
    }
    bool ok = f.err == INFLATE_OK && f.pos == f.end;
    inflater_close(&f);
    if (!ok) {
        free(out);
        return KERR_CORRUPT_MESSAGE;
    }
    it->owned = out;
    it->pos = out;
    it->end = out != NULL ? out + out_len : NULL; /* empty output: no buffer */
    return KERR_NONE;
}

static int bytes_field(const uint8_t **p, const uint8_t *end, const uint8_t **out, int32_t *len)
{
    if (batch_varint_get(p, end, len) < 0 || *len < -1)
        return -1;
    if (*len == -1) {
        *out = NULL;
        return 0;
    }
    if ((size_t)(end - *p) < (size_t)*len)
        return -1;
    *out = *p;
    *p += *len;
    return 0;
}

int batch_record_header_next(const uint8_t **p, const uint8_t *end, const uint8_t **key,
                             int32_t *key_len, const uint8_t **value, int32_t *value_len)
{
    if (*p >= end)
        return 0;
    if (bytes_field(p, end, key, key_len) < 0 || *key_len < 0)
        return -1;
    if (bytes_field(p, end, value, value_len) < 0)
        return -1;
    return 1;
}

int batch_records_next(struct batch_record_iter *it, struct batch_record *r)
{
    if (it->remaining == 0)
        return it->pos == it->end ? 0 : KERR_CORRUPT_MESSAGE;
    const uint8_t *p = it->pos;
    int32_t size;
    if (batch_varint_get(&p, it->end, &size) < 0 || size < 0 || size > it->end - p)
        return -1;
    const uint8_t *rend = p + size;
    if (size < 1)
        return -1;
    p++; /* attributes, unused */
    int64_t ts_delta;
    int32_t offset_delta;
    if (batch_varlong_get(&p, rend, &ts_delta) < 0 || batch_varint_get(&p, rend, &offset_delta) < 0)
        return -1;
    memset(r, 0, sizeof(*r));
    r->size = size;
    if (bytes_field(&p, rend, &r->key, &r->key_len) < 0 ||
        bytes_field(&p, rend, &r->value, &r->value_len) < 0 ||
        batch_varint_get(&p, rend, &r->header_count) < 0 || r->header_count < 0)
        return -1;
    r->headers = p;
    for (int32_t i = 0; i < r->header_count; i++) {
        const uint8_t *k, *v;
        int32_t kl, vl;
        if (batch_record_header_next(&p, rend, &k, &kl, &v, &vl) != 1)
            return -1;
    }
    if (p != rend)
        return -1; /* Kafka: "Invalid record size" */
    r->headers_len = (size_t)(p - r->headers);
    r->offset = (int64_t)((uint64_t)it->h.base_offset + (uint64_t)(int64_t)offset_delta); /* wraps on garbage, never UB */
    if (it->h.attributes & BATCH_ATTR_LOG_APPEND_TIME)
        r->timestamp = it->h.max_timestamp;
    else
        r->timestamp = (int64_t)((uint64_t)it->h.base_timestamp + (uint64_t)ts_delta);
    if (it->h.base_sequence >= 0) {
        int64_t s = (int64_t)it->h.base_sequence + offset_delta;
        r->sequence = (int32_t)(s > INT32_MAX ? s - INT32_MAX - 1 : s);
    } else {
        r->sequence = -1;
    }
    it->pos = rend;
    it->remaining--;
    it->index++;
    return 1;
}

void batch_records_close(struct batch_record_iter *it)
{
    free(it->owned);
    it->owned = NULL;
}

/* ---- builder ---- */

void batch_builder_init(struct batch_builder *b, size_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    b->max_bytes = max_bytes;
    b->len = BATCH_HEADER_SIZE;
    b->base_timestamp = -1;
    b->max_timestamp = -1;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
}

static int builder_reserve(struct batch_builder *b, size_t more)
{
    if (more > b->max_bytes || b->len + more > b->max_bytes)
        return -1;
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *np = realloc(b->buf, cap);
    if (np == NULL)
        return -1;
    b->buf = np;
    b->cap = cap;
    return 0;
}

int batch_builder_add(struct batch_builder *b, int64_t timestamp, const void *key,
                      int32_t key_len, const void *value, int32_t value_len,
                      const struct batch_kv_header *headers, int nheaders)
{
    if (b->err)
        return b->err;
    if (key == NULL)
        key_len = -1;
    if (value == NULL)
        value_len = -1;
    if (b->count == 0)
        b->base_timestamp = timestamp;
    if (timestamp > b->max_timestamp)
        b->max_timestamp = timestamp;
    /* Body first in a scratch area sized for the worst case, then its length varint. */
    size_t body = 1 + 10 + 5 + 5 + (key_len > 0 ? (size_t)key_len : 0) + 5 +
                  (value_len > 0 ? (size_t)value_len : 0) + 5;
    for (int i = 0; i < nheaders; i++)
        body += 10 + strlen(headers[i].key) + (headers[i].value_len > 0 ? (size_t)headers[i].value_len : 0);
    if (builder_reserve(b, body + 5) < 0) {
        b->err = KERR_RECORD_LIST_TOO_LARGE;
        return b->err;
    }
    uint8_t *start = b->buf + b->len + 5;
    uint8_t *p = start;
    *p++ = 0;
    p += batch_varlong_put(p, (int64_t)((uint64_t)timestamp - (uint64_t)b->base_timestamp)); /* wraps, as Java */
    p += batch_varint_put(p, b->count);
    p += batch_varint_put(p, key_len);
    if (key_len > 0) {
        memcpy(p, key, (size_t)key_len);
        p += key_len;
    }
    p += batch_varint_put(p, value_len);
    if (value_len > 0) {
        memcpy(p, value, (size_t)value_len);
        p += value_len;
    }
    p += batch_varint_put(p, nheaders);
    for (int i = 0; i < nheaders; i++) {
        int32_t kl = (int32_t)strlen(headers[i].key);
        int32_t vl = headers[i].value == NULL ? -1 : headers[i].value_len;
        p += batch_varint_put(p, kl);
        memcpy(p, headers[i].key, (size_t)kl);
        p += kl;
        p += batch_varint_put(p, vl);
        if (vl > 0) {
            memcpy(p, headers[i].value, (size_t)vl);
            p += vl;
        }
    }
    size_t body_len = (size_t)(p - start);
    uint8_t lenbuf[5];
    size_t ln = batch_varint_put(lenbuf, (int32_t)body_len);
    memmove(b->buf + b->len + ln, start, body_len);
    memcpy(b->buf + b->len, lenbuf, ln);
    b->len += ln + body_len;
    b->count++;
    return KERR_NONE;
}

int batch_compress(int codec, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    switch (codec) {
    case BATCH_COMPRESSION_GZIP: {
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        size_t cap = deflateBound(&zs, (uLong)n) + 32;
        *out = malloc(cap);
        if (*out == NULL) {
            deflateEnd(&zs);
            return -1;
        }
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)n;
        zs.next_out = *out;
        zs.avail_out = (uInt)cap;
        int z = deflate(&zs, Z_FINISH);
        *out_len = cap - zs.avail_out;
        deflateEnd(&zs);
        return z == Z_STREAM_END ? 0 : -1;
    }
    case BATCH_COMPRESSION_SNAPPY: {
        /* xerial framing as snappy-java writes it: magic, version 1, compatible 1, chunks. */
        size_t max = snappy_max_compressed_length(n);
        *out = malloc(16 + 4 + max);
        if (*out == NULL)
            return -1;
        memcpy(*out, INFLATE_XERIAL_MAGIC, 8);
        be32_put(*out + 8, 1);
        be32_put(*out + 12, 1);
        size_t clen = max;
        if (snappy_compress((const char *)in, n, (char *)*out + 20, &clen) != SNAPPY_OK)
            return -1;
        be32_put(*out + 16, (uint32_t)clen);
        *out_len = 20 + clen;
        return 0;
    }
    case BATCH_COMPRESSION_LZ4: {
        LZ4F_preferences_t prefs;
        memset(&prefs, 0, sizeof(prefs));
        prefs.frameInfo.blockSizeID = LZ4F_max64KB;
        prefs.frameInfo.blockMode = LZ4F_blockIndependent;
        size_t cap = LZ4F_compressFrameBound(n, &prefs);
        *out = malloc(cap);
        if (*out == NULL)
            return -1;
        size_t r = LZ4F_compressFrame(*out, cap, in, n, &prefs);
        if (LZ4F_isError(r))
            return -1;
        *out_len = r;
        return 0;
    }
    case BATCH_COMPRESSION_ZSTD: {
        size_t cap = ZSTD_compressBound(n);
        *out = malloc(cap);
        if (*out == NULL)
            return -1;
        size_t r = ZSTD_compress(*out, cap, in, n, 3);
        if (ZSTD_isError(r))
            return -1;
        *out_len = r;
        return 0;
    }
    default:
        return -1;
    }
}

int batch_builder_finish(struct batch_builder *b, int codec, uint8_t **out, size_t *len)
{
    *out = NULL;
    if (b->err)
        return b->err;
    if (b->count == 0 || builder_reserve(b, 0) < 0)
        return KERR_INVALID_RECORD;
    uint8_t *batch;
    size_t total;
    if (codec == BATCH_COMPRESSION_NONE) {
        batch = b->buf;
        total = b->len;
        b->buf = NULL;
        b->cap = 0;
    } else {
        uint8_t *z;
        size_t zlen;
        if (batch_compress(codec, b->buf + BATCH_HEADER_SIZE, b->len - BATCH_HEADER_SIZE, &z, &zlen) < 0) {
            free(z);
            return KERR_UNSUPPORTED_COMPRESSION_TYPE;
        }
        total = BATCH_HEADER_SIZE + zlen;
        batch = malloc(total);
        if (batch == NULL) {
            free(z);
            return KERR_UNKNOWN_SERVER_ERROR;
        }
        memcpy(batch + BATCH_HEADER_SIZE, z, zlen);
        free(z);
    }
    be64_put(batch, 0);
    be32_put(batch + 8, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    be32_put(batch + 12, (uint32_t)-1);
    batch[16] = BATCH_MAGIC_V2;
    be16_put(batch + 21, (uint16_t)((b->attributes & ~BATCH_ATTR_COMPRESSION_MASK) | (codec & 7)));
    be32_put(batch + 23, (uint32_t)(b->count - 1));
    be64_put(batch + 27, (uint64_t)b->base_timestamp);
    be64_put(batch + 35, (uint64_t)b->max_timestamp);
    be64_put(batch + 43, (uint64_t)b->producer_id);
    be16_put(batch + 51, (uint16_t)b->producer_epoch);
    be32_put(batch + 53, (uint32_t)b->base_sequence);
    be32_put(batch + 57, (uint32_t)b->count);
    be32_put(batch + 17, batch_compute_crc(batch, total));
    *out = batch;
    *len = total;
    batch_builder_free(b);
    batch_builder_init(b, b->max_bytes);
    return KERR_NONE;
}

void batch_builder_free(struct batch_builder *b)
{
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
}
