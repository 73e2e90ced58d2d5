/* inflate: one streaming reader per codec behind a byte reader. gzip, LZ4 frames and zstd
 * stream through a 64 KiB window; snappy (raw, or xerial-framed as snappy-java writes it) has
 * no streaming API, so each raw block is inflated whole into a block of at most block_max
 * bytes and lent, as is a zstd frame declaring at most 4 MiB (one pass, no window copy).
 * Input comes from memory or from a file a window at a time. Every allocation — windows,
 * blocks and the codecs' own state — goes through one counted allocator. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createDCtx_advanced: the counted allocator */
#define LZ4F_STATIC_LINKING_ONLY /* LZ4F_createDecompressionContext_advanced, likewise */
#include "log/inflate.h"

#include <errno.h>
#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"

struct inflate_state {
    int codec;
    uint64_t produced, max_out;
    size_t block_max;
    /* input: in[in_off, in_len) not yet consumed, then file_pos..file_end of fd */
    const uint8_t *in;
    size_t in_off, in_len;
    int fd; /* borrowed; -1 for input in memory */
    int64_t file_pos, file_end;
    uint8_t *in_window;            /* file input */
    uint8_t *window;               /* streaming codecs' output */
    uint8_t *block, *gather;       /* snappy / zstd block; snappy chunk gathered from the file */
    size_t block_cap, gather_cap;
    bool done, xerial, zstd_started;
    z_stream zs;
    bool zs_live;
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
    size_t mem; /* bytes allocated now */
};

/* ---- the counted allocator ---- */

/* A statistic for tests; readers on several threads (each log appends under its own lock)
 * may race on it, which only loses a maximum. */
static _Atomic size_t high_water;

struct alloc_hdr {
    size_t n;
    max_align_t align;
};

static void *mem_alloc(void *opaque, size_t n)
{
    struct inflate_state *s = opaque;
    if (n > SIZE_MAX - sizeof(struct alloc_hdr))
        return NULL;
    struct alloc_hdr *a = malloc(sizeof(*a) + n);
    if (a == NULL)
        return NULL;
    a->n = n;
    s->mem += n;
    if (s->mem > atomic_load_explicit(&high_water, memory_order_relaxed))
        atomic_store_explicit(&high_water, s->mem, memory_order_relaxed);
    return a + 1;
}

static void mem_free(void *opaque, void *p)
{
    struct inflate_state *s = opaque;
    if (p == NULL)
        return;
    struct alloc_hdr *a = (struct alloc_hdr *)p - 1;
    GREGOR_ASSERT(s->mem >= a->n);
    s->mem -= a->n;
    free(a);
}

static void *mem_calloc(void *opaque, size_t n)
{
    void *p = mem_alloc(opaque, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size)
        return NULL;
    return mem_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) { mem_free(opaque, p); }

size_t inflater_memory_high_water(void) { return atomic_load_explicit(&high_water, memory_order_relaxed); }
void inflater_memory_high_water_reset(void) { atomic_store_explicit(&high_water, 0, memory_order_relaxed); }

/* A buffer of at least n bytes (its contents are not kept); false when out of memory. */
static bool buf_reserve(struct inflate_state *s, uint8_t **buf, size_t *cap, size_t n)
{
    if (*cap >= n && *buf != NULL)
        return true;
    mem_free(s, *buf);
    *cap = 0;
    *buf = mem_alloc(s, n ? n : 1);
    if (*buf == NULL)
        return false;
    *cap = n;
    return true;
}

/* ---- input ---- */

static const uint8_t no_input[1];

/* Makes input available: 1 some, 0 none left, INFLATE_FAILED on a read error. */
static int in_fill(struct inflate_state *s)
{
    if (s->in_off < s->in_len)
        return 1;
    if (s->file_pos >= s->file_end)
        return 0;
    size_t want = INFLATE_WINDOW;
    if ((int64_t)want > s->file_end - s->file_pos)
        want = (size_t)(s->file_end - s->file_pos);
    if (s->in_window == NULL && (s->in_window = mem_alloc(s, INFLATE_WINDOW)) == NULL)
        return INFLATE_FAILED;
    ssize_t r = fio_pread_full(s->fd, s->in_window, want, (off_t)s->file_pos);
    if (r != (ssize_t)want) {
        if (r >= 0)
            errno = EIO; /* the file is shorter than the batch that was checked */
        return INFLATE_FAILED;
    }
    s->file_pos += (int64_t)want;
    s->in = s->in_window;
    s->in_off = 0;
    s->in_len = want;
    return 1;
}

static uint64_t in_left(const struct inflate_state *s)
{
    return (uint64_t)(s->in_len - s->in_off) + (uint64_t)(s->file_end - s->file_pos);
}

/* n contiguous input bytes at *p: in place when the current input holds them (always for
 * input in memory), else gathered from the file's windows into a buffer of at most
 * block_max bytes. */
static int in_take(struct inflate_state *s, size_t n, const uint8_t **p)
{
    int r = in_fill(s);
    if (r < 0)
        return r;
    if (s->in_len - s->in_off >= n) {
        *p = s->in + s->in_off;
        s->in_off += n;
        return 0;
    }
    if ((uint64_t)n > in_left(s))
        return INFLATE_CORRUPT;
    if (n > s->block_max || !buf_reserve(s, &s->gather, &s->gather_cap, n))
        return INFLATE_TOO_BIG;
    for (size_t got = 0; got < n;) {
        if ((r = in_fill(s)) <= 0)
            return r < 0 ? r : INFLATE_CORRUPT;
        size_t k = s->in_len - s->in_off < n - got ? s->in_len - s->in_off : n - got;
        memcpy(s->gather + got, s->in + s->in_off, k);
        s->in_off += k;
        got += k;
    }
    *p = s->gather;
    return 0;
}

/* ---- one piece of output per codec: > 0 bytes at *out, 0 at the clean end, < 0 error ---- */

static ssize_t read_none(struct inflate_state *s, const uint8_t **out)
{
    int r = in_fill(s);
    if (r <= 0)
        return r;
    *out = s->in + s->in_off;
    size_t k = s->in_len - s->in_off;
    s->in_off = s->in_len;
    return (ssize_t)k;
}

static ssize_t read_gzip(struct inflate_state *s, const uint8_t **out)
{
    s->zs.next_out = s->window;
    s->zs.avail_out = INFLATE_WINDOW;
    while (s->zs.avail_out == INFLATE_WINDOW && !s->done) {
        int r = in_fill(s);
        if (r <= 0)
            return r < 0 ? r : INFLATE_CORRUPT; /* truncated stream */
        size_t give = s->in_len - s->in_off < UINT_MAX ? s->in_len - s->in_off : UINT_MAX;
        s->zs.next_in = (Bytef *)(s->in + s->in_off);
        s->zs.avail_in = (uInt)give;
        int z = inflate(&s->zs, Z_NO_FLUSH);
        s->in_off += give - s->zs.avail_in;
        if (z == Z_STREAM_END) {
            if ((r = in_fill(s)) < 0)
                return r;
            if (r == 0)
                s->done = true;
            else if (inflateReset(&s->zs) != Z_OK) /* Java's GZIPInputStream reads concatenated members */
                return INFLATE_CORRUPT;
        } else if (z != Z_OK) {
            return INFLATE_CORRUPT; /* with input and room out, Z_BUF_ERROR cannot happen either */
        }
    }
    *out = s->window;
    return (ssize_t)(INFLATE_WINDOW - s->zs.avail_out);
}

static ssize_t read_lz4(struct inflate_state *s, const uint8_t **out)
{
    while (!s->done) {
        int r = in_fill(s);
        if (r < 0)
            return r;
        size_t out_sz = INFLATE_WINDOW, in_sz = s->in_len - s->in_off;
        size_t hint = LZ4F_decompress(s->lz4, s->window, &out_sz, s->in + s->in_off, &in_sz, NULL);
        if (LZ4F_isError(hint))
            return INFLATE_CORRUPT;
        s->in_off += in_sz;
        if (hint == 0)
            s->done = true; /* one frame, as Kafka's reader: bytes after it are not looked at */
        if (out_sz > 0) {
            *out = s->window;
            return (ssize_t)out_sz;
        }
        if (!s->done && in_sz == 0)
            return INFLATE_CORRUPT; /* no progress: truncated frame */
    }
    return 0;
}

/* One frame that declares a content size of at most ZSTD_ONE_SHOT_MAX (what clients write:
 * librdkafka compresses a whole batch at once) and lies whole in the input at hand is
 * inflated whole into the block: one pass with no window copy, and no more memory than the
 * streaming decoder's window would take. 0 when the frame is to be streamed. */
#define ZSTD_ONE_SHOT_MAX (4u << 20)

static ssize_t zstd_one_shot(struct inflate_state *s, const uint8_t **out)
{
    const uint8_t *in = s->in + s->in_off;
    size_t n = s->in_len - s->in_off;
    if (s->file_pos < s->file_end || n == 0)
        return 0;
    unsigned long long size = ZSTD_getFrameContentSize(in, n);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR ||
        size > ZSTD_ONE_SHOT_MAX || size > s->block_max || size == 0 ||
        ZSTD_findFrameCompressedSize(in, n) != n)
        return 0;
    if (!buf_reserve(s, &s->block, &s->block_cap, (size_t)size))
        return INFLATE_TOO_BIG;
    size_t got = ZSTD_decompressDCtx(s->zstd, s->block, (size_t)size, in, n);
    if (ZSTD_isError(got) || got != size)
        return INFLATE_CORRUPT;
    s->in_off = s->in_len;
    s->done = true;
    *out = s->block;
    return (ssize_t)got;
}

static ssize_t read_zstd(struct inflate_state *s, const uint8_t **out)
{
    if (!s->zstd_started) {
        s->zstd_started = true;
        int r = in_fill(s);
        ssize_t k = r < 0 ? r : zstd_one_shot(s, out);
        if (k != 0)
            return k;
        if ((s->window = mem_alloc(s, INFLATE_WINDOW)) == NULL)
            return INFLATE_FAILED;
    }
    while (!s->done) {
        int r = in_fill(s);
        if (r < 0)
            return r;
        ZSTD_outBuffer zout = {s->window, INFLATE_WINDOW, 0};
        ZSTD_inBuffer zin = {s->in + s->in_off, s->in_len - s->in_off, 0};
        size_t last = ZSTD_decompressStream(s->zstd, &zout, &zin);
        if (ZSTD_isError(last))
            return ZSTD_getErrorCode(last) == ZSTD_error_frameParameter_windowTooLarge
                       ? INFLATE_TOO_BIG : INFLATE_CORRUPT;
        s->in_off += zin.pos;
        if (last == 0 && in_left(s) == 0)
            s->done = true; /* a frame ended with the input; more input = another frame */
        if (zout.pos > 0) {
            *out = s->window;
            return (ssize_t)zout.pos;
        }
        if (!s->done && zin.pos == 0)
            return INFLATE_CORRUPT; /* no progress: truncated */
    }
    return 0;
}

/* The next raw snappy block (the whole input, or the next xerial chunk), inflated whole;
 * empty chunks are skipped (each costs input, so this ends). */
static ssize_t read_snappy(struct inflate_state *s, const uint8_t **out)
{
    size_t n = 0;
    while (n == 0) {
        if (s->done || (s->xerial && in_left(s) == 0)) {
            s->done = true;
            return 0;
        }
        size_t clen = (size_t)in_left(s); /* raw: the one block */
        const uint8_t *p;
        int r;
        if (s->xerial) {
            if ((r = in_take(s, 4, &p)) < 0)
                return r;
            clen = be32_get(p);
        } else {
            s->done = true;
        }
        if ((r = in_take(s, clen, &p)) < 0)
            return r;
        if (snappy_uncompressed_length((const char *)p, clen, &n) != SNAPPY_OK)
            return INFLATE_CORRUPT;
        if (n > s->block_max || !buf_reserve(s, &s->block, &s->block_cap, n))
            return INFLATE_TOO_BIG;
        if (n > 0 && snappy_uncompress((const char *)p, clen, (char *)s->block, &n) != SNAPPY_OK)
            return INFLATE_CORRUPT;
    }
    *out = s->block;
    return (ssize_t)n;
}

bool inflater_fill(struct inflater *f)
{
    GREGOR_ASSERT(f->pos == f->end);
    if (f->err != INFLATE_OK)
        return false;
    struct inflate_state *s = f->state;
    f->piece_offset += (uint64_t)(f->end - f->piece);
    f->piece = f->end;
    const uint8_t *p = NULL;
    ssize_t k;
    switch (s->codec) {
    case BATCH_COMPRESSION_NONE: k = read_none(s, &p); break;
    case BATCH_COMPRESSION_GZIP: k = read_gzip(s, &p); break;
    case BATCH_COMPRESSION_SNAPPY: k = read_snappy(s, &p); break;
    case BATCH_COMPRESSION_LZ4: k = read_lz4(s, &p); break;
    default: k = read_zstd(s, &p); break;
    }
    if (k <= 0) {
        f->err = (int)k;
        return false;
    }
    s->produced += (uint64_t)k;
    if (s->produced > s->max_out) {
        f->err = INFLATE_TOO_BIG;
        return false;
    }
    f->piece = f->pos = p;
    f->end = p + k;
    return true;
}

/* ---- the byte reader ---- */

bool inflater_varint(struct inflater *f, int32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        uint8_t b;
        if (!inflater_byte(f, &b) || (shift == 28 && (b & 0xf0)))
            return false;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
            return true;
        }
    }
    return false;
}

bool inflater_varlong(struct inflater *f, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (!inflater_byte(f, &b))
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return true;
        }
    }
    return false;
}

bool inflater_skip(struct inflater *f, uint64_t n)
{
    while (n > 0) {
        if (f->pos == f->end && !inflater_fill(f))
            return false;
        size_t have = (size_t)(f->end - f->pos);
        size_t k = n < have ? (size_t)n : have;
        f->pos += k;
        n -= k;
    }
    return true;
}

bool inflater_at_end(struct inflater *f)
{
    return f->pos == f->end && !inflater_fill(f) && f->err == INFLATE_OK;
}

/* ---- open / close ---- */

static int codec_init(struct inflate_state *s)
{
    switch (s->codec) {
    case BATCH_COMPRESSION_NONE:
        return INFLATE_OK;
    case BATCH_COMPRESSION_GZIP:
        s->zs.zalloc = z_alloc;
        s->zs.zfree = z_free;
        s->zs.opaque = s;
        if ((s->window = mem_alloc(s, INFLATE_WINDOW)) == NULL || inflateInit2(&s->zs, 15 + 32) != Z_OK)
            return INFLATE_FAILED;
        s->zs_live = true;
        return INFLATE_OK;
    case BATCH_COMPRESSION_SNAPPY: {
        int r = in_fill(s); /* the first window holds the 16-byte xerial header if there is one */
        if (r < 0)
            return r;
        s->xerial = s->in_len - s->in_off >= 16 &&
                    memcmp(s->in + s->in_off, INFLATE_XERIAL_MAGIC, 8) == 0;
        if (s->xerial)
            s->in_off += 16;
        return INFLATE_OK;
    }
    case BATCH_COMPRESSION_LZ4: {
        LZ4F_CustomMem cm = {mem_alloc, mem_calloc, mem_free, s};
        s->lz4 = LZ4F_createDecompressionContext_advanced(cm, LZ4F_VERSION);
        s->window = mem_alloc(s, INFLATE_WINDOW);
        return s->lz4 == NULL || s->window == NULL ? INFLATE_FAILED : INFLATE_OK;
    }
    default: {
        ZSTD_customMem cm = {mem_alloc, mem_free, s};
        s->zstd = ZSTD_createDCtx_advanced(cm);
        if (s->zstd == NULL ||
            ZSTD_isError(ZSTD_DCtx_setParameter(s->zstd, ZSTD_d_windowLogMax, INFLATE_ZSTD_WINDOW_LOG_MAX)))
            return INFLATE_FAILED;
        return INFLATE_OK;
    }
    }
}

static int open_common(struct inflater *f, int codec, uint64_t max_out, size_t block_max,
                       struct inflate_state *s)
{
    GREGOR_ASSERT(codec >= BATCH_COMPRESSION_NONE && codec <= BATCH_COMPRESSION_ZSTD);
    memset(f, 0, sizeof(*f));
    if (s == NULL) {
        f->err = INFLATE_FAILED;
        return f->err;
    }
    f->state = s;
    s->codec = codec;
    s->max_out = max_out;
    s->block_max = block_max;
    f->err = codec_init(s);
    return f->err;
}

int inflater_open_memory(struct inflater *f, int codec, const uint8_t *in, size_t len,
                         uint64_t max_out, size_t block_max)
{
    struct inflate_state *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->in = len > 0 ? in : no_input;
        s->in_len = len;
        s->fd = -1;
    }
    return open_common(f, codec, max_out, block_max, s);
}

int inflater_open_file(struct inflater *f, int codec, int fd, int64_t pos, int64_t len,
                       uint64_t max_out, size_t block_max)
{
    GREGOR_ASSERT(pos >= 0 && len >= 0);
    struct inflate_state *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->in = no_input;
        s->fd = fd;
        s->file_pos = pos;
        s->file_end = pos + len;
    }
    return open_common(f, codec, max_out, block_max, s);
}

void inflater_close(struct inflater *f)
{
    struct inflate_state *s = f->state;
    if (s != NULL) {
        if (s->zs_live)
            inflateEnd(&s->zs);
        if (s->lz4 != NULL)
            LZ4F_freeDecompressionContext(s->lz4);
        ZSTD_freeDCtx(s->zstd);
        mem_free(s, s->in_window);
        mem_free(s, s->window);
        mem_free(s, s->block);
        mem_free(s, s->gather);
        GREGOR_ASSERT(s->mem == 0); /* every counted byte came back */
        free(s);
    }
    memset(f, 0, sizeof(*f));
}
