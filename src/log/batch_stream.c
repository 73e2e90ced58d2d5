/* batch_stream: one batch's records as a byte stream decompressed through a 64 KiB window, so a
 * timestamp lookup in a batch that inflates to gigabytes holds kilobytes (issue 12 item 8).
 * Every allocation — windows and the codecs' own state — goes through one counted allocator. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createDCtx_advanced: the counted allocator */
#define LZ4F_STATIC_LINKING_ONLY /* LZ4F_createDecompressionContext_advanced, likewise */
#include "log/batch_stream.h"

#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/util.h"
#include "log/fileio.h"

struct batch_stream {
    struct batch_header h;
    int codec;
    int fd;                 /* borrowed */
    int64_t in_pos, in_end; /* the batch's record bytes (compressed or not) still in the file */
    uint8_t *in;            /* input window: in[in_off, in_len) not yet given to the codec */
    size_t in_off, in_len;
    uint8_t *out;           /* record bytes: out[out_off, out_len) not yet parsed */
    size_t out_off, out_len;
    uint8_t *chunk;         /* snappy: one whole decompressed chunk (out points into it) */
    uint8_t *chunk_in;      /* snappy: its compressed bytes */
    bool xerial;
    bool codec_done;        /* the codec has no more output */
    int64_t produced, max_bytes;
    int32_t remaining;      /* records left to read */
    int64_t skip;           /* the rest of the last record returned: skipped on the next call */
    z_stream zs;
    bool zs_ready;
    ZSTD_DCtx *zd;
    LZ4F_dctx *lz;
    size_t mem;             /* bytes allocated now */
};

/* ---- the counted allocator ---- */

static size_t high_water; /* a statistic for tests; a race only loses a maximum */

struct alloc_hdr {
    size_t n;
    max_align_t align;
};

static void *bs_alloc(void *opaque, size_t n)
{
    struct batch_stream *bs = opaque;
    struct alloc_hdr *a = malloc(sizeof(*a) + n);
    if (a == NULL)
        return NULL;
    a->n = n;
    bs->mem += n;
    if (bs->mem > high_water)
        high_water = bs->mem;
    return a + 1;
}

static void bs_free(void *opaque, void *p)
{
    struct batch_stream *bs = opaque;
    if (p == NULL)
        return;
    struct alloc_hdr *a = (struct alloc_hdr *)p - 1;
    GREGOR_ASSERT(bs->mem >= a->n);
    bs->mem -= a->n;
    free(a);
}

static void *bs_calloc(void *opaque, size_t n)
{
    void *p = bs_alloc(opaque, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size)
        return NULL;
    return bs_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) { bs_free(opaque, p); }

size_t batch_stream_memory_high_water(void) { return high_water; }

/* ---- input ---- */

/* Makes input available: 1 some, 0 none left, -1 I/O error. */
static int in_fill(struct batch_stream *bs)
{
    if (bs->in_off < bs->in_len)
        return 1;
    if (bs->in_pos >= bs->in_end)
        return 0;
    size_t want = BATCH_STREAM_WINDOW;
    if ((int64_t)want > bs->in_end - bs->in_pos)
        want = (size_t)(bs->in_end - bs->in_pos);
    ssize_t r = fio_pread_full(bs->fd, bs->in, want, (off_t)bs->in_pos);
    if (r != (ssize_t)want) {
        if (r >= 0)
            errno = EIO; /* the file is shorter than the batch that was checked */
        return -1;
    }
    bs->in_pos += (int64_t)want;
    bs->in_off = 0;
    bs->in_len = want;
    return 1;
}

/* ---- one window of output per codec: > 0 bytes produced, 0 end, -1 corrupt ---- */

static ssize_t fill_none(struct batch_stream *bs)
{
    if (bs->in_pos >= bs->in_end)
        return 0;
    size_t want = BATCH_STREAM_WINDOW;
    if ((int64_t)want > bs->in_end - bs->in_pos)
        want = (size_t)(bs->in_end - bs->in_pos);
    ssize_t r = fio_pread_full(bs->fd, bs->out, want, (off_t)bs->in_pos);
    if (r != (ssize_t)want)
        return -1;
    bs->in_pos += (int64_t)want;
    return (ssize_t)want;
}

static ssize_t fill_gzip(struct batch_stream *bs)
{
    bs->zs.next_out = bs->out;
    bs->zs.avail_out = BATCH_STREAM_WINDOW;
    while (bs->zs.avail_out == BATCH_STREAM_WINDOW && !bs->codec_done) {
        int r = in_fill(bs);
        if (r < 0)
            return -1;
        if (r == 0 && bs->zs.avail_in == 0)
            return -1; /* truncated stream */
        bs->zs.next_in = bs->in + bs->in_off;
        bs->zs.avail_in = (uInt)(bs->in_len - bs->in_off);
        int z = inflate(&bs->zs, Z_NO_FLUSH);
        bs->in_off = bs->in_len - bs->zs.avail_in;
        if (z == Z_STREAM_END) {
            /* Java's GZIPInputStream reads concatenated members. */
            if (bs->in_off == bs->in_len && bs->in_pos == bs->in_end)
                bs->codec_done = true;
            else if (inflateReset(&bs->zs) != Z_OK)
                return -1;
        } else if (z != Z_OK && !(z == Z_BUF_ERROR && bs->zs.avail_in == 0)) {
            return -1;
        }
    }
    return (ssize_t)(BATCH_STREAM_WINDOW - bs->zs.avail_out);
}

static ssize_t fill_zstd(struct batch_stream *bs)
{
    ZSTD_outBuffer zout = {bs->out, BATCH_STREAM_WINDOW, 0};
    while (zout.pos == 0 && !bs->codec_done) {
        int r = in_fill(bs);
        if (r < 0)
            return -1;
        ZSTD_inBuffer zin = {bs->in + bs->in_off, bs->in_len - bs->in_off, 0};
        size_t left = ZSTD_decompressStream(bs->zd, &zout, &zin);
        if (ZSTD_isError(left))
            return -1;
        bs->in_off += zin.pos;
        if (left == 0 && bs->in_off == bs->in_len && bs->in_pos == bs->in_end)
            bs->codec_done = true;
        else if (zout.pos == 0 && zin.pos == 0 && r == 0)
            return -1; /* no input left and no progress: truncated frame */
    }
    return (ssize_t)zout.pos;
}

static ssize_t fill_lz4(struct batch_stream *bs)
{
    size_t produced = 0;
    while (produced == 0 && !bs->codec_done) {
        int r = in_fill(bs);
        if (r < 0)
            return -1;
        size_t out_sz = BATCH_STREAM_WINDOW, in_sz = bs->in_len - bs->in_off;
        size_t hint = LZ4F_decompress(bs->lz, bs->out, &out_sz, r > 0 ? bs->in + bs->in_off : NULL,
                                      &in_sz, NULL);
        if (LZ4F_isError(hint))
            return -1;
        bs->in_off += in_sz;
        produced = out_sz;
        if (hint == 0)
            bs->codec_done = true; /* end of the frame */
        else if (out_sz == 0 && in_sz == 0 && r == 0)
            return -1; /* truncated frame */
    }
    return (ssize_t)produced;
}

/* Reads n bytes of the batch's record region into buf. */
static int read_exact(struct batch_stream *bs, void *buf, size_t n)
{
    if ((int64_t)n > bs->in_end - bs->in_pos)
        return -1;
    ssize_t r = fio_pread_full(bs->fd, buf, n, (off_t)bs->in_pos);
    if (r != (ssize_t)n)
        return -1;
    bs->in_pos += (int64_t)n;
    return 0;
}

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

/* Snappy decompresses whole chunks only: xerial chunks (usually 32 KiB) or one raw block,
 * each bounded by BATCH_STREAM_SNAPPY_CHUNK_MAX. The chunk buffer becomes the output. */
static ssize_t fill_snappy(struct batch_stream *bs)
{
    size_t n = 0;
    while (n == 0) { /* empty chunks are skipped; each costs input, so this ends */
        if (bs->in_pos >= bs->in_end)
            return 0;
        size_t clen = (size_t)(bs->in_end - bs->in_pos);
        if (bs->xerial) {
            uint8_t b[4];
            if (read_exact(bs, b, 4) < 0)
                return -1;
            clen = be32_get(b);
        }
        if (clen > BATCH_STREAM_SNAPPY_CHUNK_MAX || (int64_t)clen > bs->in_end - bs->in_pos)
            return -1;
        bs_free(bs, bs->chunk_in);
        bs_free(bs, bs->chunk);
        bs->chunk = NULL;
        bs->out = NULL;
        bs->chunk_in = bs_alloc(bs, clen ? clen : 1);
        if (bs->chunk_in == NULL || read_exact(bs, bs->chunk_in, clen) < 0)
            return -1;
        if (snappy_uncompressed_length((const char *)bs->chunk_in, clen, &n) != SNAPPY_OK ||
            n > BATCH_STREAM_SNAPPY_CHUNK_MAX)
            return -1;
        bs->chunk = bs_alloc(bs, n ? n : 1);
        if (bs->chunk == NULL ||
            snappy_uncompress((const char *)bs->chunk_in, clen, (char *)bs->chunk, &n) != SNAPPY_OK)
            return -1;
        bs->out = bs->chunk;
    }
    return (ssize_t)n;
}

/* Makes record bytes available: 0 ok, -1 none (end, corrupt, over budget or I/O). */
static int out_fill(struct batch_stream *bs)
{
    if (bs->out_off < bs->out_len)
        return 0;
    ssize_t n;
    switch (bs->codec) {
    case BATCH_COMPRESSION_NONE: n = fill_none(bs); break;
    case BATCH_COMPRESSION_GZIP: n = fill_gzip(bs); break;
    case BATCH_COMPRESSION_SNAPPY: n = fill_snappy(bs); break;
    case BATCH_COMPRESSION_LZ4: n = fill_lz4(bs); break;
    default: n = fill_zstd(bs); break;
    }
    if (n <= 0)
        return -1;
    bs->produced += n;
    if (bs->produced > bs->max_bytes)
        return -1;
    bs->out_off = 0;
    bs->out_len = (size_t)n;
    return 0;
}

/* ---- record parsing ---- */

static int get_byte(struct batch_stream *bs, uint8_t *b)
{
    if (out_fill(bs) < 0)
        return -1;
    *b = bs->out[bs->out_off++];
    return 0;
}

/* Zig-zag varint of at most max_bytes bytes; *used counts the bytes read. */
static int get_varlong(struct batch_stream *bs, int max_bytes, int64_t *v, int64_t *used)
{
    uint64_t x = 0;
    for (int i = 0; i < max_bytes; i++) {
        uint8_t b;
        if (get_byte(bs, &b) < 0)
            return -1;
        (*used)++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
            return 0;
        }
    }
    return -1;
}

static int skip_bytes(struct batch_stream *bs, int64_t n)
{
    while (n > 0) {
        if (out_fill(bs) < 0)
            return -1;
        size_t take = bs->out_len - bs->out_off;
        if ((int64_t)take > n)
            take = (size_t)n;
        bs->out_off += take;
        n -= (int64_t)take;
    }
    return 0;
}

int batch_stream_next(struct batch_stream *bs, int64_t *offset, int64_t *timestamp)
{
    if (bs->remaining <= 0)
        return 0;
    /* Key, value and headers of the previous record are skipped only now: a caller that stops
     * at a record never streams through its value. */
    if (skip_bytes(bs, bs->skip) < 0)
        return -1;
    bs->skip = 0;
    int64_t len, ts_delta, offset_delta, used = 0, hdr = 0;
    uint8_t attributes;
    if (get_varlong(bs, 5, &len, &hdr) < 0 || len < 3 || len > INT32_MAX)
        return -1;
    if (get_byte(bs, &attributes) < 0)
        return -1;
    used = 1;
    if (get_varlong(bs, 10, &ts_delta, &used) < 0 || get_varlong(bs, 5, &offset_delta, &used) < 0 ||
        used > len || offset_delta < INT32_MIN || offset_delta > INT32_MAX)
        return -1;
    bs->skip = len - used;
    *offset = (int64_t)((uint64_t)bs->h.base_offset + (uint64_t)offset_delta);
    if (bs->h.attributes & BATCH_ATTR_LOG_APPEND_TIME)
        *timestamp = bs->h.max_timestamp;
    else
        *timestamp = (int64_t)((uint64_t)bs->h.base_timestamp + (uint64_t)ts_delta);
    bs->remaining--;
    return 1;
}

/* ---- open / close ---- */

static int codec_init(struct batch_stream *bs)
{
    switch (bs->codec) {
    case BATCH_COMPRESSION_NONE:
        return 0;
    case BATCH_COMPRESSION_GZIP:
        bs->zs.zalloc = z_alloc;
        bs->zs.zfree = z_free;
        bs->zs.opaque = bs;
        if (inflateInit2(&bs->zs, 15 + 32) != Z_OK)
            return -1;
        bs->zs_ready = true;
        return 0;
    case BATCH_COMPRESSION_SNAPPY: {
        uint8_t head[16];
        if (bs->in_end - bs->in_pos >= 16) {
            ssize_t r = fio_pread_full(bs->fd, head, sizeof(head), (off_t)bs->in_pos);
            if (r != (ssize_t)sizeof(head))
                return -1;
            if (memcmp(head, xerial_magic, sizeof(xerial_magic)) == 0) {
                bs->xerial = true;
                bs->in_pos += 16;
            }
        }
        return 0;
    }
    case BATCH_COMPRESSION_LZ4: {
        LZ4F_CustomMem cm = {bs_alloc, bs_calloc, bs_free, bs};
        bs->lz = LZ4F_createDecompressionContext_advanced(cm, LZ4F_VERSION);
        return bs->lz == NULL ? -1 : 0;
    }
    case BATCH_COMPRESSION_ZSTD: {
        ZSTD_customMem cm = {bs_alloc, bs_free, bs};
        bs->zd = ZSTD_createDCtx_advanced(cm);
        if (bs->zd == NULL ||
            ZSTD_isError(ZSTD_DCtx_setParameter(bs->zd, ZSTD_d_windowLogMax,
                                                BATCH_STREAM_ZSTD_WINDOW_LOG_MAX)))
            return -1;
        return 0;
    }
    default:
        errno = ENOTSUP;
        return -1;
    }
}

int batch_stream_open(struct batch_stream **out, int fd, int64_t pos, const struct batch_header *h,
                      int64_t max_bytes)
{
    *out = NULL;
    GREGOR_ASSERT(h->length >= BATCH_MIN_LENGTH);
    struct batch_stream *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return -1;
    bs->h = *h;
    bs->codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    bs->fd = fd;
    bs->in_pos = pos + BATCH_HEADER_SIZE;
    bs->in_end = pos + batch_total_size(h);
    bs->max_bytes = max_bytes;
    bs->remaining = h->records_count;
    bs->mem = 0;
    if (bs->codec != BATCH_COMPRESSION_SNAPPY) {
        bs->in = bs_alloc(bs, BATCH_STREAM_WINDOW);
        bs->out = bs_alloc(bs, BATCH_STREAM_WINDOW);
    }
    if ((bs->codec != BATCH_COMPRESSION_SNAPPY && (bs->in == NULL || bs->out == NULL)) ||
        codec_init(bs) < 0) {
        int saved = errno;
        batch_stream_close(bs);
        errno = saved;
        return -1;
    }
    *out = bs;
    return 0;
}

void batch_stream_close(struct batch_stream *bs)
{
    if (bs == NULL)
        return;
    if (bs->zs_ready)
        inflateEnd(&bs->zs);
    if (bs->zd != NULL)
        ZSTD_freeDCtx(bs->zd);
    if (bs->lz != NULL)
        LZ4F_freeDecompressionContext(bs->lz);
    bs_free(bs, bs->chunk);
    bs_free(bs, bs->chunk_in);
    if (bs->codec != BATCH_COMPRESSION_SNAPPY)
        bs_free(bs, bs->out);
    bs_free(bs, bs->in);
    GREGOR_ASSERT(bs->mem == 0); /* every counted byte came back */
    free(bs);
}
