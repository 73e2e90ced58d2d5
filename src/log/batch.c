/* batch: everything gregor knows about one record batch's bytes. The append path touches only
 * the 61-byte header and the CRC; records are decoded only for tools, timestamp lookups and
 * tests, through a bounded iterator that decompresses gzip, xerial/raw snappy, lz4 and zstd. */
#include "log/batch.h"

#include <errno.h>
#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <zlib.h>
#include <zstd.h>

#include "common/crc32c.h"
#include "common/errors.h"
#include "common/util.h"

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

/* ---- decompression: one streaming reader per codec ---- */

/* Pulls a codec's output a window at a time, so a caller holds only what it asks for: the
 * record iterator collects everything into a bounded buffer, the produce validator looks at one
 * window and moves on. gzip, LZ4 frames and zstd stream; snappy (raw, or xerial-framed as
 * snappy-java writes it) has no streaming API, so each raw block is inflated whole into a
 * buffer no larger than block_max (a raw block holds at most ~22x its compressed bytes). */
struct inflater {
    int codec;
    const uint8_t *in;
    size_t in_len, in_pos;
    bool done;
    size_t block_max;
    z_stream zs;
    bool zs_live;
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
    ZSTD_inBuffer zin;
    bool xerial;
    uint8_t *block;  /* snappy: one inflated block, owned */
    size_t block_cap, block_len, block_pos;
};

enum { INFLATE_CORRUPT = -1, INFLATE_TOO_BIG = -2 };

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static int zstd_one_shot(struct inflater *f);

static int inflater_open(struct inflater *f, int codec, const uint8_t *in, size_t n,
                         size_t block_max)
{
    memset(f, 0, sizeof(*f));
    f->codec = codec;
    f->in = in;
    f->in_len = n;
    f->block_max = block_max;
    switch (codec) {
    case BATCH_COMPRESSION_GZIP:
        if (n > UINT_MAX || inflateInit2(&f->zs, 15 + 32) != Z_OK)
            return INFLATE_CORRUPT;
        f->zs_live = true;
        f->zs.next_in = (Bytef *)in;
        f->zs.avail_in = (uInt)n;
        return 0;
    case BATCH_COMPRESSION_SNAPPY:
        f->xerial = n >= 16 && memcmp(in, xerial_magic, 8) == 0;
        f->in_pos = f->xerial ? 16 : 0;
        return 0;
    case BATCH_COMPRESSION_LZ4:
        return LZ4F_isError(LZ4F_createDecompressionContext(&f->lz4, LZ4F_VERSION)) ? INFLATE_CORRUPT : 0;
    case BATCH_COMPRESSION_ZSTD:
        f->zstd = ZSTD_createDCtx();
        f->zin = (ZSTD_inBuffer){in, n, 0};
        if (f->zstd == NULL)
            return INFLATE_CORRUPT;
        return zstd_one_shot(f);
    default:
        return INFLATE_CORRUPT;
    }
}

static void inflater_close(struct inflater *f)
{
    if (f->zs_live)
        inflateEnd(&f->zs);
    if (f->lz4 != NULL)
        LZ4F_freeDecompressionContext(f->lz4);
    ZSTD_freeDCtx(f->zstd);
    free(f->block);
    memset(f, 0, sizeof(*f));
}

static ssize_t read_gzip(struct inflater *f, uint8_t *out, size_t cap)
{
    f->zs.next_out = out;
    f->zs.avail_out = (uInt)cap;
    for (;;) {
        if (f->done)
            return (ssize_t)(cap - f->zs.avail_out);
        int z = inflate(&f->zs, Z_NO_FLUSH);
        size_t produced = cap - f->zs.avail_out;
        if (z == Z_STREAM_END) {
            if (f->zs.avail_in == 0)
                f->done = true;
            else if (inflateReset(&f->zs) != Z_OK) /* Java's GZIPInputStream reads concatenated members */
                return INFLATE_CORRUPT;
        } else if (z != Z_OK) {
            /* Z_BUF_ERROR with input left cannot happen with room out: either way corrupt or truncated. */
            return produced > 0 ? (ssize_t)produced : INFLATE_CORRUPT;
        }
        if (produced > 0)
            return (ssize_t)produced;
    }
}

static ssize_t read_lz4(struct inflater *f, uint8_t *out, size_t cap)
{
    for (;;) {
        if (f->done)
            return 0;
        size_t out_sz = cap, in_sz = f->in_len - f->in_pos;
        size_t hint = LZ4F_decompress(f->lz4, out, &out_sz, f->in + f->in_pos, &in_sz, NULL);
        if (LZ4F_isError(hint))
            return INFLATE_CORRUPT;
        f->in_pos += in_sz;
        if (hint == 0)
            f->done = true; /* one frame, as Kafka's reader: bytes after it are not looked at */
        if (out_sz > 0)
            return (ssize_t)out_sz;
        if (!f->done && in_sz == 0)
            return INFLATE_CORRUPT; /* no progress: truncated frame */
    }
}

/* Serves the rest of an inflated block. */
static ssize_t read_block(struct inflater *f, uint8_t *out, size_t cap)
{
    size_t k = f->block_len - f->block_pos < cap ? f->block_len - f->block_pos : cap;
    memcpy(out, f->block + f->block_pos, k);
    f->block_pos += k;
    return (ssize_t)k;
}

/* One frame that declares a content size of at most ZSTD_ONE_SHOT_MAX (what clients write:
 * librdkafka compresses a whole batch at once) is inflated whole into a block: one pass with
 * no window copy, and no more memory than the streaming decoder's window would take. */
#define ZSTD_ONE_SHOT_MAX (4u << 20)

static int zstd_one_shot(struct inflater *f)
{
    unsigned long long size = ZSTD_getFrameContentSize(f->in, f->in_len);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR ||
        size > ZSTD_ONE_SHOT_MAX || size > f->block_max || size == 0 ||
        ZSTD_findFrameCompressedSize(f->in, f->in_len) != f->in_len)
        return 0; /* streamed */
    f->block = malloc((size_t)size);
    if (f->block == NULL)
        return INFLATE_TOO_BIG;
    size_t got = ZSTD_decompressDCtx(f->zstd, f->block, (size_t)size, f->in, f->in_len);
    if (ZSTD_isError(got) || got != size)
        return INFLATE_CORRUPT;
    f->block_cap = f->block_len = got;
    f->zin.pos = f->zin.size;
    f->done = true;
    return 0;
}

static ssize_t read_zstd(struct inflater *f, uint8_t *out, size_t cap)
{
    if (f->block != NULL)
        return read_block(f, out, cap);
    for (;;) {
        if (f->done)
            return 0;
        ZSTD_outBuffer zout = {out, cap, 0};
        size_t in_before = f->zin.pos;
        size_t last = ZSTD_decompressStream(f->zstd, &zout, &f->zin);
        if (ZSTD_isError(last))
            return INFLATE_CORRUPT;
        if (last == 0 && f->zin.pos == f->zin.size)
            f->done = true; /* a frame ended with the input; more input = another frame */
        if (zout.pos > 0)
            return (ssize_t)zout.pos;
        if (!f->done && f->zin.pos == in_before)
            return INFLATE_CORRUPT; /* no progress: truncated */
    }
}

/* Inflates the next raw snappy block (the whole input, or the next xerial chunk). */
static int snappy_next_block(struct inflater *f)
{
    const uint8_t *p = f->in + f->in_pos;
    size_t n = f->in_len - f->in_pos;
    if (f->xerial) {
        if (n < 4 || be32_get(p) > n - 4)
            return INFLATE_CORRUPT;
        n = be32_get(p);
        p += 4;
    }
    size_t out_len;
    if (snappy_uncompressed_length((const char *)p, n, &out_len) != SNAPPY_OK)
        return INFLATE_CORRUPT;
    if (out_len > f->block_max)
        return INFLATE_TOO_BIG;
    if (out_len > f->block_cap) {
        uint8_t *nb = realloc(f->block, out_len);
        if (nb == NULL)
            return INFLATE_TOO_BIG;
        f->block = nb;
        f->block_cap = out_len;
    }
    if (out_len > 0 && snappy_uncompress((const char *)p, n, (char *)f->block, &out_len) != SNAPPY_OK)
        return INFLATE_CORRUPT;
    f->block_len = out_len;
    f->block_pos = 0;
    f->in_pos = (size_t)(p + n - f->in);
    return 0;
}

/* 1 when the current block has bytes left (inflating the next one if needed), 0 at the end. */
static int snappy_fill(struct inflater *f)
{
    while (f->block_pos == f->block_len) {
        if (f->done || (f->in_pos == f->in_len && (f->xerial || f->in_len > 0))) {
            f->done = true;
            return 0;
        }
        int rc = snappy_next_block(f);
        if (rc < 0)
            return rc;
        if (!f->xerial)
            f->done = true; /* raw: the one block */
    }
    return 1;
}

static ssize_t read_snappy(struct inflater *f, uint8_t *out, size_t cap)
{
    int rc = snappy_fill(f);
    return rc <= 0 ? rc : read_block(f, out, cap);
}

/* Codecs inflated a block at a time (snappy, small zstd frames) lend the block instead. */
static bool inflater_lends(const struct inflater *f)
{
    return f->codec == BATCH_COMPRESSION_SNAPPY || f->block != NULL;
}

/* The rest of the current block, without a copy; valid until the next call. Same returns as
 * inflater_read. */
static ssize_t inflater_lend(struct inflater *f, const uint8_t **out)
{
    int rc = f->codec == BATCH_COMPRESSION_SNAPPY ? snappy_fill(f) : f->block_pos < f->block_len;
    if (rc <= 0)
        return rc;
    *out = f->block + f->block_pos;
    size_t k = f->block_len - f->block_pos;
    f->block_pos = f->block_len;
    return (ssize_t)k;
}

/* Up to cap bytes of output into out: > 0 bytes written, 0 at the clean end of the stream,
 * INFLATE_CORRUPT when the stream is corrupt or truncated, INFLATE_TOO_BIG past block_max. */
static ssize_t inflater_read(struct inflater *f, uint8_t *out, size_t cap)
{
    GREGOR_ASSERT(cap > 0 && cap <= UINT_MAX);
    switch (f->codec) {
    case BATCH_COMPRESSION_GZIP: return read_gzip(f, out, cap);
    case BATCH_COMPRESSION_SNAPPY: return read_snappy(f, out, cap);
    case BATCH_COMPRESSION_LZ4: return read_lz4(f, out, cap);
    case BATCH_COMPRESSION_ZSTD: return read_zstd(f, out, cap);
    default: return INFLATE_CORRUPT;
    }
}

/* ---- decompressing a whole batch, bounded by max (the record iterator) ---- */

struct growbuf {
    uint8_t *p;
    size_t len, cap, max;
};

/* Ensures some free room (up to want bytes) without passing max; -1 when the buffer is full. */
static int growbuf_room(struct growbuf *g, size_t want)
{
    if (g->cap > g->len)
        return 0;
    if (g->len >= g->max)
        return -1;
    size_t more = g->max - g->len < want ? g->max - g->len : want;
    size_t cap = g->cap ? g->cap : 4096;
    while (cap < g->len + more)
        cap *= 2;
    if (cap > g->max)
        cap = g->max;
    uint8_t *np = realloc(g->p, cap);
    if (np == NULL)
        return -1;
    g->p = np;
    g->cap = cap;
    return 0;
}

static int inflate_all(int codec, const uint8_t *in, size_t n, struct growbuf *g)
{
    struct inflater f;
    int rc = inflater_open(&f, codec, in, n, g->max) < 0 ? -1 : 0;
    while (rc == 0) {
        ssize_t k;
        if (growbuf_room(g, 65536) == 0) {
            size_t room = g->cap - g->len;
            k = inflater_read(&f, g->p + g->len, room < (1u << 20) ? room : (1u << 20));
        } else {
            uint8_t probe; /* full at max: fine only if the stream ends here */
            k = inflater_read(&f, &probe, 1);
            if (k > 0)
                k = INFLATE_TOO_BIG;
        }
        if (k < 0)
            rc = -1;
        else if (k == 0)
            break;
        else
            g->len += (size_t)k;
    }
    inflater_close(&f);
    return rc;
}

/* ---- record validation for Produce (Kafka's LogValidator) ---- */

/* The records of a batch as a byte stream: the batch's own bytes when uncompressed, else one
 * window of decompressed output at a time. Reading past the end fails; err says why. */
struct rstream {
    const uint8_t *pos, *end; /* unread bytes of the current window */
    const uint8_t *win;       /* start of the current window */
    uint64_t win_off;         /* stream offset of win */
    struct inflater *inf;     /* NULL when uncompressed */
    uint8_t *buf;             /* the window's storage (compressed only) */
    uint64_t inflated;
    int err;                  /* KERR_NONE until a codec error or the bound */
};

#define BATCH_VALIDATE_WINDOW (64u << 10)

static bool rs_fill(struct rstream *s)
{
    GREGOR_ASSERT(s->pos == s->end);
    if (s->inf == NULL || s->err != KERR_NONE)
        return false;
    s->win_off += (uint64_t)(s->end - s->win);
    const uint8_t *w = s->buf;
    ssize_t k = inflater_lends(s->inf) ? inflater_lend(s->inf, &w)
                                       : inflater_read(s->inf, s->buf, BATCH_VALIDATE_WINDOW);
    s->win = s->pos = s->end = w;
    if (k <= 0) {
        /* Kafka: a stream that cannot be decompressed is a KafkaException, UNKNOWN_SERVER_ERROR. */
        s->err = k == 0 ? KERR_NONE : k == INFLATE_TOO_BIG ? KERR_MESSAGE_TOO_LARGE
                                                             : KERR_UNKNOWN_SERVER_ERROR;
        return false;
    }
    s->inflated += (uint64_t)k;
    if (s->inflated > BATCH_INFLATE_MAX) {
        s->err = KERR_MESSAGE_TOO_LARGE;
        return false;
    }
    s->end = w + k;
    return true;
}

static inline uint64_t rs_tell(const struct rstream *s)
{
    return s->win_off + (uint64_t)(s->pos - s->win);
}

static inline bool rs_byte(struct rstream *s, uint8_t *b)
{
    if (s->pos == s->end && !rs_fill(s))
        return false;
    *b = *s->pos++;
    return true;
}

/* Zig-zag varints with batch_varint_get's limits (5 bytes, the top bits of the fifth clear). */
static bool rs_varint(struct rstream *s, int32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        uint8_t b;
        if (!rs_byte(s, &b) || (shift == 28 && (b & 0xf0)))
            return false;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
            return true;
        }
    }
    return false;
}

static bool rs_skip_varlong(struct rstream *s)
{
    for (int i = 0; i < 10; i++) {
        uint8_t b;
        if (!rs_byte(s, &b))
            return false;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static bool rs_skip(struct rstream *s, uint64_t n)
{
    while (n > 0) {
        if (s->pos == s->end && !rs_fill(s))
            return false;
        size_t have = (size_t)(s->end - s->pos);
        size_t k = n < have ? (size_t)n : have;
        s->pos += k;
        n -= k;
    }
    return true;
}

/* A length-prefixed field: -1 (null) or a length >= 0, then that many bytes. */
static bool rs_skip_bytes(struct rstream *s, bool nullable)
{
    int32_t n;
    if (!rs_varint(s, &n) || n < (nullable ? -1 : 0))
        return false;
    return n <= 0 || rs_skip(s, (uint64_t)n);
}

/* One record at index i: its length varint, then exactly that many bytes of attributes,
 * timestampDelta, offsetDelta == i, key, value and headers (DefaultRecord.readFrom). */
static bool rs_record(struct rstream *s, int32_t i)
{
    int32_t size, offset_delta, nheaders;
    uint8_t attributes;
    if (!rs_varint(s, &size) || size < 1)
        return false;
    uint64_t start = rs_tell(s);
    if (!rs_byte(s, &attributes) || !rs_skip_varlong(s) || !rs_varint(s, &offset_delta))
        return false;
    /* Kafka rewrites a compressed batch whose offsets are not 0..n-1 and stores an
     * uncompressed one as sent; gregor appends in place, so it refuses both. */
    if (offset_delta != i)
        return false;
    if (!rs_skip_bytes(s, true) || !rs_skip_bytes(s, true) || !rs_varint(s, &nheaders) || nheaders < 0)
        return false;
    for (int32_t h = 0; h < nheaders; h++) {
        if (!rs_skip_bytes(s, false) || !rs_skip_bytes(s, true) || rs_tell(s) - start > (uint64_t)size)
            return false;
    }
    return rs_tell(s) - start == (uint64_t)size;
}

/* Walks every record of a batch whose header and CRC were checked: recordsCount records,
 * then nothing left. Uncompressed: one pass over the bytes in place; compressed: streamed
 * through a 64 KiB window (snappy blocks and small zstd frames: walked in their block), at
 * most BATCH_INFLATE_MAX bytes in all. */
static int validate_records(const uint8_t *batch, size_t len, const struct batch_header *h)
{
    const uint8_t *recs = batch + BATCH_HEADER_SIZE;
    size_t recs_len = len - BATCH_HEADER_SIZE;
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    struct rstream s = {recs, recs + recs_len, recs, 0, NULL, NULL, 0, KERR_NONE};
    struct inflater f;
    if (codec != BATCH_COMPRESSION_NONE) {
        int rc = inflater_open(&f, codec, recs, recs_len, BATCH_INFLATE_MAX);
        s.inf = &f;
        s.pos = s.end = s.win = NULL;
        if (rc < 0)
            s.err = rc == INFLATE_TOO_BIG ? KERR_MESSAGE_TOO_LARGE : KERR_UNKNOWN_SERVER_ERROR;
        else if (!inflater_lends(&f) && (s.buf = malloc(BATCH_VALIDATE_WINDOW)) == NULL)
            s.err = KERR_UNKNOWN_SERVER_ERROR;
    }
    int rc = KERR_NONE;
    for (int32_t i = 0; i < h->records_count && rc == KERR_NONE; i++) {
        if (!rs_record(&s, i))
            rc = KERR_INVALID_RECORD;
    }
    /* "Incorrect declared batch size, records still remaining": bytes after the last one. */
    if (rc == KERR_NONE && (s.pos != s.end || rs_fill(&s)))
        rc = KERR_INVALID_RECORD;
    if (s.err != KERR_NONE)
        rc = s.err; /* the codec failed or the bound was hit: that, not the record it cut */
    if (s.inf != NULL)
        inflater_close(&f);
    free(s.buf);
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
    struct growbuf g = {NULL, 0, 0, max_decompressed};
    int rc = inflate_all(codec, recs, recs_len, &g);
    if (rc < 0) {
        free(g.p);
        return KERR_CORRUPT_MESSAGE;
    }
    it->owned = g.p;
    it->pos = g.p;
    it->end = g.p != NULL ? g.p + g.len : NULL; /* empty output: no buffer */
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
    p += batch_varlong_put(p, timestamp - b->base_timestamp);
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

static int compress_records(int codec, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
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
        memcpy(*out, xerial_magic, 8);
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
        if (compress_records(codec, b->buf + BATCH_HEADER_SIZE, b->len - BATCH_HEADER_SIZE, &z, &zlen) < 0) {
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
