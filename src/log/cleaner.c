/* cleaner: Kafka's log compaction for one partition log — the dirty-ratio check, the bounded
 * offset map, the rewrite of segment groups into .cleaned files and their swap, and the
 * cleaner-offset-checkpoint file. Runs on a cleaner thread; the log's lock is taken only to
 * copy its layout and for the instant of each swap (plog_cleaner_view, plog_replace_segments). */
#include "log/cleaner.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/crc32c.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "log/index.h"

void cleaner_config_defaults(struct cleaner_config *cc)
{
    cc->min_cleanable_dirty_ratio = 0.5;
    cc->min_compaction_lag_ms = 0;
    cc->max_compaction_lag_ms = INT64_MAX;
    cc->delete_retention_ms = 86400000;
}

/* ---- which section is cleanable ---- */

/* The section of v that may be cleaned, as LogCleanerManager.cleanableOffsets: first dirty from
 * the checkpoint (the log start when it is below it or past the log end), first uncleanable
 * the base of the first segment not wholly below min(active base, high watermark, the first
 * segment younger than min.compaction.lag.ms). */
static void cleanable_section(const struct plog_cleaner_view *v, int64_t checkpoint,
                              int64_t high_watermark, const struct cleaner_config *cc,
                              int64_t now, int64_t *first_dirty, int64_t *first_uncleanable)
{
    int64_t dirty = checkpoint;
    if (dirty < v->log_start || dirty > v->end_offset)
        dirty = v->log_start;
    int64_t bound = v->active_base;
    if (high_watermark >= 0 && high_watermark < bound)
        bound = high_watermark;
    int64_t uncleanable = v->active_base;
    for (int i = 0; i < v->nsegs; i++) {
        const struct plog_segment_info *s = &v->segs[i];
        if (s->next_offset <= dirty)
            continue;
        bool young = cc->min_compaction_lag_ms > 0 && s->max_timestamp > now - cc->min_compaction_lag_ms;
        if (s->next_offset > bound || young) {
            uncleanable = s->base_offset; /* whole segments only */
            break;
        }
    }
    if (uncleanable < dirty)
        uncleanable = dirty;
    *first_dirty = dirty;
    *first_uncleanable = uncleanable;
}

static void examine_view(const struct plog_cleaner_view *v, int64_t checkpoint,
                         int64_t high_watermark, const struct cleaner_config *cc, int64_t now,
                         struct cleaner_dirty *out)
{
    memset(out, 0, sizeof(*out));
    cleanable_section(v, checkpoint, high_watermark, cc, now, &out->first_dirty_offset,
                      &out->first_uncleanable_offset);
    const struct plog_segment_info *first_dirty_seg = NULL;
    for (int i = 0; i < v->nsegs; i++) {
        const struct plog_segment_info *s = &v->segs[i];
        if (s->next_offset <= out->first_dirty_offset) {
            out->clean_bytes += s->size;
        } else if (s->base_offset < out->first_uncleanable_offset) {
            out->cleanable_bytes += s->size;
            if (first_dirty_seg == NULL)
                first_dirty_seg = s;
        }
    }
    int64_t total = out->clean_bytes + out->cleanable_bytes;
    out->dirty_ratio = total > 0 ? (double)out->cleanable_bytes / (double)total : 0.0;
    out->compaction_due = cc->max_compaction_lag_ms < INT64_MAX && first_dirty_seg != NULL &&
                          first_dirty_seg->first_batch_timestamp >= 0 &&
                          now - first_dirty_seg->first_batch_timestamp > cc->max_compaction_lag_ms;
    out->needs_cleaning = out->cleanable_bytes > 0 &&
                          (out->dirty_ratio > cc->min_cleanable_dirty_ratio || out->compaction_due);
}

void cleaner_examine(struct plog *log, int64_t checkpoint, int64_t high_watermark,
                     const struct cleaner_config *cc, int64_t now, struct cleaner_dirty *out)
{
    struct plog_cleaner_view v;
    memset(out, 0, sizeof(*out));
    if (plog_cleaner_view(log, &v) != KERR_NONE)
        return;
    examine_view(&v, checkpoint, high_watermark, cc, now, out);
    plog_cleaner_view_free(&v);
}

/* ---- the offset map ---- */

#define MAP_HASH_BYTES 16

struct map_slot {
    uint8_t hash[MAP_HASH_BYTES];
    int64_t offset; /* -1: empty */
};

struct cleaner_map {
    struct map_slot *slots;
    int64_t nslots;
    int64_t max_entries; /* nslots * load factor */
    int64_t entries;
    int64_t latest_offset;
    uint64_t k0, k1;     /* SipHash key */
};

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                             \
    do {                                                                     \
        v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);         \
        v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                              \
        v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                              \
        v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);         \
    } while (0)

static uint64_t le64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* SipHash-2-4 with 128-bit output (Aumasson & Bernstein). */
static void siphash128(uint64_t k0, uint64_t k1, const uint8_t *in, size_t n, uint8_t out[16])
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    v1 ^= 0xee;
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le64_get(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = 0; i < n % 8; i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    uint64_t h0 = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    uint64_t h1 = v0 ^ v1 ^ v2 ^ v3;
    be64_put(out, h0);
    be64_put(out + 8, h1);
}

struct cleaner_map *cleaner_map_create(size_t bytes, double load_factor)
{
    int64_t nslots = (int64_t)(bytes / sizeof(struct map_slot));
    int64_t max_entries = (int64_t)((double)nslots * load_factor);
    if (max_entries >= nslots)
        max_entries = nslots - 1; /* a free slot always ends a probe */
    if (nslots < 2 || max_entries < 1)
        return NULL;
    struct cleaner_map *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->slots = malloc((size_t)nslots * sizeof(*m->slots));
    uint64_t key[2];
    if (m->slots == NULL || getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        free(m->slots);
        free(m);
        return NULL;
    }
    m->k0 = key[0];
    m->k1 = key[1];
    m->nslots = nslots;
    m->max_entries = max_entries;
    cleaner_map_clear(m);
    return m;
}

void cleaner_map_free(struct cleaner_map *m)
{
    if (m == NULL)
        return;
    free(m->slots);
    free(m);
}

void cleaner_map_clear(struct cleaner_map *m)
{
    memset(m->slots, 0xff, (size_t)m->nslots * sizeof(*m->slots)); /* offset -1 everywhere */
    m->entries = 0;
    m->latest_offset = -1;
}

/* The slot holding hash, or the free slot where it would go (linear probing: the map is never
 * full, so a probe always ends). */
static struct map_slot *map_find(const struct cleaner_map *m, const uint8_t hash[MAP_HASH_BYTES])
{
    uint64_t start = be64_get(hash) % (uint64_t)m->nslots;
    for (int64_t i = 0; i < m->nslots; i++) {
        struct map_slot *s = &m->slots[(start + (uint64_t)i) % (uint64_t)m->nslots];
        if (s->offset < 0 || memcmp(s->hash, hash, MAP_HASH_BYTES) == 0)
            return s;
    }
    GREGOR_ASSERT(!"offset map without a free slot");
    return NULL;
}

bool cleaner_map_put(struct cleaner_map *m, const void *key, size_t len, int64_t offset)
{
    GREGOR_ASSERT(offset >= 0);
    uint8_t h[MAP_HASH_BYTES];
    siphash128(m->k0, m->k1, key, len, h);
    struct map_slot *s = map_find(m, h);
    if (s->offset < 0) {
        if (m->entries >= m->max_entries)
            return false;
        memcpy(s->hash, h, MAP_HASH_BYTES);
        m->entries++;
    }
    s->offset = offset;
    if (offset > m->latest_offset)
        m->latest_offset = offset;
    return true;
}

int64_t cleaner_map_get(const struct cleaner_map *m, const void *key, size_t len)
{
    uint8_t h[MAP_HASH_BYTES];
    siphash128(m->k0, m->k1, key, len, h);
    return map_find(m, h)->offset;
}

int64_t cleaner_map_size(const struct cleaner_map *m) { return m->entries; }
int64_t cleaner_map_capacity(const struct cleaner_map *m) { return m->max_entries; }
int64_t cleaner_map_latest_offset(const struct cleaner_map *m) { return m->latest_offset; }

/* ---- reading a segment's batches ---- */

/* Whole batches of one .log through a read window, on the cleaner's own descriptor (the log's
 * descriptors belong to the loop thread). */
struct seg_reader {
    int fd;
    int64_t size;    /* bytes to read: the segment's size when the view was taken */
    int64_t pos;     /* next batch */
    uint8_t *buf;
    size_t cap, max_cap;
    int64_t buf_off;
    size_t buf_len;
    int64_t *bytes_read; /* the pass's counter of batch bytes in the result (map or rewrite):
                          * borrowed */
};

struct clean_ctx {
    struct plog *log;
    const struct plog_cleaner_view *v;
    const struct cleaner_config *cc;
    const struct cleaner_job *job;
    struct cleaner_map *map;
    struct cleaner_result *res;
    int64_t first_uncleanable;
    uint8_t *rebuild;  /* scratch for rebuilt records, grown as needed */
    size_t rebuild_cap;
    struct batch_record *kept;
    size_t kept_cap;
};

static void throttle(const struct clean_ctx *c, int64_t bytes)
{
    if (c->job->throttle != NULL && bytes > 0)
        c->job->throttle(c->job->throttle_arg, bytes);
}

static bool stopping(const struct clean_ctx *c)
{
    return c->job->stop != NULL && atomic_load(c->job->stop);
}

static int reader_open(struct seg_reader *r, const struct clean_ctx *c, int64_t base, int64_t size,
                       int64_t *bytes_read)
{
    memset(r, 0, sizeof(*r));
    r->bytes_read = bytes_read;
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/%020" PRId64 ".log", c->v->dir, base);
    r->fd = fio_open(p, O_RDONLY, 0);
    if (r->fd < 0)
        return -1;
    r->size = size;
    r->cap = c->job->io_buffer_bytes > 0 ? c->job->io_buffer_bytes : CLEANER_IO_BUFFER_DEFAULT;
    if (r->cap < BATCH_HEADER_SIZE)
        r->cap = BATCH_HEADER_SIZE;
    r->max_cap = CLEANER_IO_BUFFER_MAX;
    if ((size_t)c->v->cfg.max_message_bytes + BATCH_LOG_OVERHEAD > r->max_cap)
        r->max_cap = (size_t)c->v->cfg.max_message_bytes + BATCH_LOG_OVERHEAD;
    if (r->cap > r->max_cap)
        r->cap = r->max_cap;
    r->buf = malloc(r->cap);
    if (r->buf == NULL) {
        fio_close(r->fd);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void reader_close(struct seg_reader *r)
{
    if (r->fd >= 0)
        fio_close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* Makes [pos, pos+n) available in the window: 0, or -1 (I/O error, or a short file: EIO). */
static int reader_window(struct seg_reader *r, const struct clean_ctx *c, int64_t pos, size_t n,
                         const uint8_t **out)
{
    if (pos >= r->buf_off && pos + (int64_t)n <= r->buf_off + (int64_t)r->buf_len) {
        *out = r->buf + (pos - r->buf_off);
        return 0;
    }
    if (n > r->cap) {
        uint8_t *nb = realloc(r->buf, n);
        if (nb == NULL) {
            errno = ENOMEM;
            return -1;
        }
        r->buf = nb;
        r->cap = n;
    }
    size_t want = r->cap;
    if ((int64_t)want > r->size - pos)
        want = (size_t)(r->size - pos);
    ssize_t got = fio_pread_full(r->fd, r->buf, want, (off_t)pos);
    if (got < 0)
        return -1;
    throttle(c, got);
    r->buf_off = pos;
    r->buf_len = (size_t)got;
    if ((size_t)got < n) {
        errno = EIO; /* the file is shorter than the segment was: it changed under us */
        return -1;
    }
    *out = r->buf;
    return 0;
}

/* The next whole batch: 1 (b, h set; valid until the next call), 0 at the end, -1 I/O error,
 * -2 a batch that does not read back (length, magic or CRC). */
static int reader_next(struct seg_reader *r, const struct clean_ctx *c, const uint8_t **b,
                       struct batch_header *h)
{
    if (r->pos + BATCH_HEADER_SIZE > r->size)
        return 0;
    const uint8_t *p;
    if (reader_window(r, c, r->pos, BATCH_HEADER_SIZE, &p) < 0)
        return -1;
    batch_header_decode(p, h);
    int64_t size = batch_total_size(h);
    if (h->magic != BATCH_MAGIC_V2 || h->length < BATCH_MIN_LENGTH || h->last_offset_delta < 0 ||
        h->records_count < 0 || size > r->size - r->pos || (size_t)size > r->max_cap)
        return -2;
    if (reader_window(r, c, r->pos, (size_t)size, &p) < 0)
        return -1;
    if (batch_compute_crc(p, (size_t)size) != h->crc)
        return -2;
    *b = p;
    r->pos += size;
    *r->bytes_read += size; /* each batch once, however the windows cut it (Kafka's bytesRead) */
    return 1;
}

/* ---- building the map ---- */

/* Maps the keyed records of one segment at or past start; false when the map filled (the map's
 * latest offset then ends the section cleaned this round). Control batches and transactional
 * batches map nothing (issue 18 brings Kafka's aborted-transaction handling: until then a
 * transactional record never makes an older one go), but move the latest offset. */
static int map_segment(struct clean_ctx *c, const struct plog_segment_info *s, int64_t start,
                       bool *full)
{
    struct seg_reader r;
    if (reader_open(&r, c, s->base_offset, s->size, &c->res->map_bytes_read) < 0)
        return -1;
    const uint8_t *b;
    struct batch_header h;
    int k = 0, rc = 0;
    while (!*full && (k = reader_next(&r, c, &b, &h)) == 1) {
        bool skip = (h.attributes & (BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL)) != 0 ||
                    batch_last_offset(&h) < start;
        if (!skip) {
            struct batch_record_iter it;
            int e = batch_records_open(&it, b, (size_t)batch_total_size(&h), BATCH_INFLATE_MAX);
            if (e != KERR_NONE) {
                rc = -2;
                break;
            }
            struct batch_record rec;
            int n;
            while ((n = batch_records_next(&it, &rec)) == 1) {
                if (rec.key_len < 0 || rec.offset < start)
                    continue;
                if (!cleaner_map_put(c->map, rec.key, (size_t)rec.key_len, rec.offset)) {
                    *full = true;
                    break;
                }
            }
            batch_records_close(&it);
            if (n < 0) {
                rc = -2;
                break;
            }
        }
        if (!*full && batch_last_offset(&h) >= start && batch_last_offset(&h) > c->map->latest_offset)
            c->map->latest_offset = batch_last_offset(&h);
        if (stopping(c))
            break;
    }
    if (rc == 0 && !*full && !stopping(c) && k < 0)
        rc = k;
    int saved = errno;
    reader_close(&r);
    errno = saved;
    return rc;
}

/* ---- writing the cleaned segment ---- */

struct cleaned_writer {
    char base_path[PATH_MAX];
    int64_t base;
    int fd;
    int64_t size;           /* bytes appended (buffered included) */
    int64_t written;        /* bytes on disk */
    uint8_t *wbuf;
    size_t wlen, wcap;
    struct index oi, ti;
    bool oi_open, ti_open;
    int32_t interval;
    int64_t bytes_since_index;
    int64_t max_timestamp, offset_of_max_timestamp;
};

static void cleaned_unlink(const char *base_path)
{
    static const char *sfx[] = {".log.cleaned", ".index.cleaned", ".timeindex.cleaned"};
    for (size_t i = 0; i < ARRAY_LEN(sfx); i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof(p), "%s%s", base_path, sfx[i]);
        fio_unlink(p);
    }
}

static void writer_discard(struct cleaned_writer *w)
{
    if (w->fd >= 0)
        fio_close(w->fd);
    w->fd = -1;
    if (w->oi_open)
        index_close(&w->oi);
    if (w->ti_open)
        index_close(&w->ti);
    w->oi_open = w->ti_open = false;
    free(w->wbuf);
    w->wbuf = NULL;
    cleaned_unlink(w->base_path);
}

static int writer_open(struct cleaned_writer *w, const struct clean_ctx *c, int64_t base)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->base = base;
    w->interval = c->v->cfg.index_interval_bytes;
    w->max_timestamp = -1;
    w->offset_of_max_timestamp = -1;
    if (snprintf(w->base_path, sizeof(w->base_path), "%s/%020" PRId64, c->v->dir, base) >=
        (int)sizeof(w->base_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    cleaned_unlink(w->base_path); /* an earlier round's leftovers */
    char p[PATH_MAX + 32];
    w->wcap = CLEANER_IO_BUFFER_DEFAULT;
    w->wbuf = malloc(w->wcap);
    snprintf(p, sizeof(p), "%s.log.cleaned", w->base_path);
    if (w->wbuf == NULL || (w->fd = fio_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0)
        goto fail;
    snprintf(p, sizeof(p), "%s.index.cleaned", w->base_path);
    if (index_open(&w->oi, INDEX_OFFSET, p, base, c->v->cfg.segment_index_bytes, NULL) < 0)
        goto fail;
    w->oi_open = true;
    snprintf(p, sizeof(p), "%s.timeindex.cleaned", w->base_path);
    if (index_open(&w->ti, INDEX_TIME, p, base, c->v->cfg.segment_index_bytes, NULL) < 0)
        goto fail;
    w->ti_open = true;
    if (index_make_active(&w->oi) < 0 || index_make_active(&w->ti) < 0)
        goto fail;
    return 0;
fail: {
        int saved = errno ? errno : ENOMEM;
        writer_discard(w);
        errno = saved;
        return -1;
    }
}

static int writer_flush(struct cleaned_writer *w, const struct clean_ctx *c)
{
    if (w->wlen == 0)
        return 0;
    if (fio_pwrite_full(w->fd, w->wbuf, w->wlen, (off_t)w->written) < 0)
        return -1;
    throttle(c, (int64_t)w->wlen);
    c->res->bytes_written += (int64_t)w->wlen;
    w->written += (int64_t)w->wlen;
    w->wlen = 0;
    return 0;
}

/* Appends one batch with the index rules of segment_append (an entry once more than
 * index.interval.bytes went by; the time index when the max timestamp grew). */
static int writer_append(struct cleaned_writer *w, const struct clean_ctx *c, const uint8_t *b,
                         size_t len)
{
    struct batch_header h;
    batch_header_decode(b, &h);
    GREGOR_ASSERT(h.base_offset >= w->base && batch_last_offset(&h) - w->base <= INT32_MAX);
    int64_t pos = w->size;
    if (h.max_timestamp > w->max_timestamp) {
        w->max_timestamp = h.max_timestamp;
        w->offset_of_max_timestamp = batch_last_offset(&h);
    }
    if (w->bytes_since_index > w->interval && !index_is_full(&w->oi) && !index_is_full(&w->ti)) {
        if (index_offset_append(&w->oi, batch_last_offset(&h), (int32_t)pos) < 0 ||
            index_time_maybe_append(&w->ti, w->max_timestamp, w->offset_of_max_timestamp, false) < 0)
            return -1;
        w->bytes_since_index = 0;
    }
    if (w->wlen + len > w->wcap && writer_flush(w, c) < 0)
        return -1;
    if (len > w->wcap) {
        if (fio_pwrite_full(w->fd, b, len, (off_t)w->written) < 0)
            return -1;
        throttle(c, (int64_t)len);
        c->res->bytes_written += (int64_t)len;
        w->written += (int64_t)len;
    } else {
        memcpy(w->wbuf + w->wlen, b, len);
        w->wlen += len;
    }
    w->bytes_since_index += (int64_t)len;
    w->size += (int64_t)len;
    return 0;
}

/* Flushes, adds the final time-index entry, trims the indexes and syncs all three files. */
static int writer_finish(struct cleaned_writer *w, const struct clean_ctx *c)
{
    if (writer_flush(w, c) < 0)
        return -1;
    if (w->max_timestamp >= 0 &&
        index_time_maybe_append(&w->ti, w->max_timestamp, w->offset_of_max_timestamp, true) < 0)
        return -1;
    if (index_trim(&w->oi) < 0 || index_trim(&w->ti) < 0)
        return -1;
    if (fio_fdatasync(w->fd) < 0 || fio_fdatasync(index_fd(&w->oi)) < 0 ||
        fio_fdatasync(index_fd(&w->ti)) < 0)
        return -1;
    int rc = 0;
    if (fio_close(w->fd) < 0)
        rc = -1;
    w->fd = -1;
    /* Both, even when the first fails: each frees its path and descriptor. */
    int oi_rc = index_close(&w->oi), ti_rc = index_close(&w->ti);
    if (oi_rc < 0 || ti_rc < 0)
        rc = -1;
    w->oi_open = w->ti_open = false;
    free(w->wbuf);
    w->wbuf = NULL;
    return rc;
}

/* ---- filtering one batch (Kafka's MemoryRecords.filterTo with the cleaner's filter) ---- */

static int64_t producer_last_offset(const struct cleaner_job *job, int64_t pid)
{
    for (int i = 0; i < job->nproducers; i++)
        if (job->producers[i].producer_id == pid)
            return job->producers[i].last_data_offset;
    return -1;
}

/* Kafka's Cleaner.shouldRetainRecord: past the map's end everything stays; a keyless record
 * goes; a keyed one stays when it is the key's latest and either has a value or its batch's
 * delete horizon has not passed. */
static bool retain_record(struct clean_ctx *c, const struct batch_record *r, int64_t horizon)
{
    if (r->offset > c->map->latest_offset)
        return true;
    if (r->key_len < 0) {
        c->res->keyless_dropped++;
        return false;
    }
    if (r->offset < cleaner_map_get(c->map, r->key, (size_t)r->key_len))
        return false;
    if (r->value_len >= 0 || horizon < 0 || c->job->now_ms < horizon)
        return true;
    c->res->tombstones_dropped++;
    return false;
}

static int ensure_cap(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* Writes the 61-byte header for records of payload_len bytes at out and its CRC. */
static void put_header(uint8_t *out, const struct batch_header *orig, int16_t attributes,
                       int64_t base_ts, int64_t max_ts, int32_t count, size_t payload_len)
{
    be64_put(out, (uint64_t)orig->base_offset);
    be32_put(out + 8, (uint32_t)(BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD + payload_len));
    be32_put(out + 12, (uint32_t)orig->partition_leader_epoch);
    out[16] = BATCH_MAGIC_V2;
    be16_put(out + 21, (uint16_t)attributes);
    be32_put(out + 23, (uint32_t)orig->last_offset_delta); /* kept: the producer's last sequence */
    be64_put(out + 27, (uint64_t)base_ts);
    be64_put(out + 35, (uint64_t)max_ts);
    be64_put(out + 43, (uint64_t)orig->producer_id);
    be16_put(out + 51, (uint16_t)orig->producer_epoch);
    be32_put(out + 53, (uint32_t)orig->base_sequence);
    be32_put(out + 57, (uint32_t)count);
    be32_put(out + 17, batch_compute_crc(out, BATCH_HEADER_SIZE + payload_len));
}

/* Encodes the kept records (offset and timestamp deltas against the new base) into c->rebuild
 * after a header's room; *raw_len = records bytes. */
static int encode_records(struct clean_ctx *c, const struct batch_header *orig, size_t nkept,
                          int64_t base_ts, size_t *raw_len)
{
    size_t len = BATCH_HEADER_SIZE;
    for (size_t i = 0; i < nkept; i++) {
        const struct batch_record *r = &c->kept[i];
        size_t key = (size_t)(r->key_len > 0 ? r->key_len : 0);
        size_t value = (size_t)(r->value_len > 0 ? r->value_len : 0);
        /* length(5) attributes(1) timestampDelta(10) offsetDelta(5) key(5+) value(5+) headers(5+) */
        if (ensure_cap(&c->rebuild, &c->rebuild_cap, len + 36 + key + value + r->headers_len) < 0) {
            errno = ENOMEM;
            return -1;
        }
        uint8_t *body = c->rebuild + len + 5, *o = body;
        *o++ = 0; /* record attributes: unused in v2 */
        o += batch_varlong_put(o, (int64_t)((uint64_t)r->timestamp - (uint64_t)base_ts)); /* wraps, as Java */
        o += batch_varint_put(o, (int32_t)(r->offset - orig->base_offset));
        o += batch_varint_put(o, r->key_len);
        if (key > 0)
            memcpy(o, r->key, key);
        o += key;
        o += batch_varint_put(o, r->value_len);
        if (value > 0)
            memcpy(o, r->value, value);
        o += value;
        o += batch_varint_put(o, r->header_count);
        if (r->headers_len > 0)
            memcpy(o, r->headers, r->headers_len);
        o += r->headers_len;
        size_t body_len = (size_t)(o - body);
        uint8_t lv[5];
        size_t ln = batch_varint_put(lv, (int32_t)body_len);
        memmove(c->rebuild + len + ln, body, body_len);
        memcpy(c->rebuild + len, lv, ln);
        len += ln + body_len;
    }
    *raw_len = len - BATCH_HEADER_SIZE;
    return 0;
}

/* A batch of the kept records with the original's base offset, last offset delta, producer
 * fields and codec, recompressed; the delete horizon (when >= 0) as base timestamp (KIP-534). */
static int rebuild_batch(struct clean_ctx *c, const struct batch_header *orig, size_t nkept,
                         int64_t horizon, struct cleaned_writer *w)
{
    bool lat = (orig->attributes & BATCH_ATTR_LOG_APPEND_TIME) != 0;
    int64_t max_ts = -1;
    for (size_t i = 0; i < nkept; i++)
        if (c->kept[i].timestamp > max_ts)
            max_ts = c->kept[i].timestamp;
    if (lat)
        max_ts = orig->max_timestamp;
    int64_t base_ts = horizon >= 0 ? horizon : c->kept[0].timestamp;
    size_t raw_len;
    if (encode_records(c, orig, nkept, base_ts, &raw_len) < 0)
        return -1;
    int codec = orig->attributes & BATCH_ATTR_COMPRESSION_MASK;
    int16_t attrs = (int16_t)(orig->attributes & ~BATCH_ATTR_DELETE_HORIZON);
    if (horizon >= 0)
        attrs |= BATCH_ATTR_DELETE_HORIZON;
    int rc = 0;
    if (codec == BATCH_COMPRESSION_NONE) {
        put_header(c->rebuild, orig, attrs, base_ts, max_ts, (int32_t)nkept, raw_len);
        rc = writer_append(w, c, c->rebuild, BATCH_HEADER_SIZE + raw_len);
    } else {
        uint8_t *z = NULL, *out = NULL;
        size_t zlen = 0;
        if (batch_compress(codec, c->rebuild + BATCH_HEADER_SIZE, raw_len, &z, &zlen) < 0 ||
            (out = malloc(BATCH_HEADER_SIZE + zlen)) == NULL) {
            free(z);
            errno = ENOMEM;
            return -1;
        }
        memcpy(out + BATCH_HEADER_SIZE, z, zlen);
        put_header(out, orig, attrs, base_ts, max_ts, (int32_t)nkept, zlen);
        rc = writer_append(w, c, out, BATCH_HEADER_SIZE + zlen);
        free(z);
        free(out);
    }
    return rc;
}

/* Filters one batch into w: 0, -1 I/O error (errno), -2 a batch whose records do not read. */
static int clean_batch(struct clean_ctx *c, const uint8_t *b, const struct batch_header *h,
                       struct cleaned_writer *w)
{
    size_t len = (size_t)batch_total_size(h);
    c->res->records_read += h->records_count;
    if (h->attributes & BATCH_ATTR_CONTROL) { /* markers: issue 18 */
        c->res->records_kept += h->records_count;
        return writer_append(w, c, b, len);
    }
    bool has_horizon = (h->attributes & BATCH_ATTR_DELETE_HORIZON) != 0;
    int64_t horizon = has_horizon ? h->base_timestamp : -1;
    struct batch_record_iter it;
    if (batch_records_open(&it, b, len, BATCH_INFLATE_MAX) != KERR_NONE)
        return -2;
    size_t nkept = 0;
    bool tombstones = false;
    struct batch_record r;
    int k;
    while ((k = batch_records_next(&it, &r)) == 1) {
        if (!retain_record(c, &r, horizon))
            continue;
        if (nkept == c->kept_cap) {
            size_t cap = c->kept_cap ? c->kept_cap * 2 : 64;
            struct batch_record *n = realloc(c->kept, cap * sizeof(*n));
            if (n == NULL) {
                batch_records_close(&it);
                errno = ENOMEM;
                return -1;
            }
            c->kept = n;
            c->kept_cap = cap;
        }
        c->kept[nkept++] = r;
        tombstones = tombstones || r.value_len < 0;
    }
    if (k < 0) {
        batch_records_close(&it);
        return -2;
    }
    c->res->records_kept += (int64_t)nkept;
    int rc = 0;
    bool set_horizon = tombstones && !has_horizon;
    if (nkept == (size_t)h->records_count && nkept > 0 && !set_horizon) {
        rc = writer_append(w, c, b, len); /* untouched: the original bytes */
    } else if (nkept > 0) {
        int64_t new_horizon = c->cc->delete_retention_ms > INT64_MAX - c->job->now_ms
                                  ? INT64_MAX
                                  : c->job->now_ms + c->cc->delete_retention_ms;
        rc = rebuild_batch(c, h, nkept, set_horizon ? new_horizon : horizon, w);
    } else {
        bool last_of_producer = h->producer_id >= 0 &&
                                producer_last_offset(c->job, h->producer_id) == batch_last_offset(h);
        bool last_of_round = batch_last_offset(h) + 1 == c->first_uncleanable;
        if (last_of_producer || last_of_round) { /* Kafka's RETAIN_EMPTY */
            uint8_t hdr[BATCH_HEADER_SIZE];
            int16_t attrs = (int16_t)(h->attributes & (BATCH_ATTR_LOG_APPEND_TIME |
                                                       BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL));
            put_header(hdr, h, attrs, h->max_timestamp, h->max_timestamp, 0, 0);
            rc = writer_append(w, c, hdr, sizeof(hdr));
        }
    }
    batch_records_close(&it);
    return rc;
}

/* ---- one group of segments ---- */

/* Kafka's groupSegmentsBySize: from segs[from], as many segments as keep the log bytes within
 * segment.bytes, each index within segment.index.bytes and the offsets within int32 of the
 * group's base. Returns how many. */
static int group_size(const struct plog_cleaner_view *v, int from, int upto)
{
    const struct plog_segment_info *g = &v->segs[from];
    int64_t log_bytes = g->size, oi = g->offset_index_bytes, ti = g->time_index_bytes;
    int n = 1;
    while (from + n < upto) {
        const struct plog_segment_info *s = &v->segs[from + n];
        if (log_bytes + s->size > v->cfg.segment_bytes ||
            oi + s->offset_index_bytes > v->cfg.segment_index_bytes ||
            ti + s->time_index_bytes > v->cfg.segment_index_bytes ||
            (s->size > 0 && s->next_offset - 1 - g->base_offset > INT32_MAX))
            break;
        log_bytes += s->size;
        oi += s->offset_index_bytes;
        ti += s->time_index_bytes;
        n++;
    }
    return n;
}

/* Cleans segs[from, from+n) into one .cleaned segment and swaps it in. 0, 1 aborted, -1 I/O
 * error, -2 corrupt batch, -3 the swap failed past its commit point. */
static int clean_group(struct clean_ctx *c, int from, int n, uint64_t *epoch)
{
    const struct plog_segment_info *segs = c->v->segs;
    struct cleaned_writer w;
    if (writer_open(&w, c, segs[from].base_offset) < 0)
        return errno == ENOENT ? 1 : -1;
    int rc = 0;
    for (int i = from; i < from + n && rc == 0; i++) {
        struct seg_reader r;
        if (reader_open(&r, c, segs[i].base_offset, segs[i].size, &c->res->bytes_read) < 0) {
            rc = errno == ENOENT ? 1 : -1; /* retention took it meanwhile */
            break;
        }
        const uint8_t *b;
        struct batch_header h;
        int k;
        while ((k = reader_next(&r, c, &b, &h)) == 1) {
            if ((rc = clean_batch(c, b, &h, &w)) != 0)
                break;
            if (stopping(c)) {
                rc = 1;
                break;
            }
        }
        if (rc == 0 && k < 0)
            rc = k;
        int saved = errno;
        reader_close(&r);
        errno = saved;
    }
    if (rc == 0 && writer_finish(&w, c) < 0)
        rc = -1;
    if (rc != 0) {
        int saved = errno;
        writer_discard(&w);
        errno = saved;
        return rc;
    }
    bool aborted;
    int64_t held = 0;
    int e = plog_replace_segments(c->log, *epoch, segs[from].base_offset, n, &aborted, &held);
    if (held > c->res->lock_held_max_us)
        c->res->lock_held_max_us = held;
    if (e != KERR_NONE)
        return -3;
    if (aborted)
        return 1;
    (*epoch)++; /* the swap's own change of the layout */
    c->res->groups++;
    LOG_INFO(c->v->who, "Swapped in cleaned segment %020" PRId64 " (%" PRId64 " bytes) for %d "
             "segment(s) in %" PRId64 " us under the log lock", segs[from].base_offset, w.size, n, held);
    return 0;
}

/* ---- the clean ---- */

/* Builds the map from first_dirty over the segments below first_uncleanable. 0, or as
 * clean_group. *full when the map filled. */
static int build_map(struct clean_ctx *c, int64_t first_dirty, bool *full)
{
    *full = false;
    for (int i = 0; i < c->v->nsegs && !*full; i++) {
        const struct plog_segment_info *s = &c->v->segs[i];
        if (s->next_offset <= first_dirty)
            continue;
        if (s->base_offset >= c->first_uncleanable)
            break;
        int rc = map_segment(c, s, first_dirty, full);
        if (rc != 0)
            return rc == -1 && errno == ENOENT ? 1 : rc;
        if (stopping(c))
            return 1;
    }
    return 0;
}

int cleaner_clean(struct plog *log, const struct cleaner_dirty *d, const struct cleaner_config *cc,
                  const struct cleaner_job *job, struct cleaner_result *out)
{
    memset(out, 0, sizeof(*out));
    out->next_dirty_offset = d->first_dirty_offset;
    struct plog_cleaner_view v;
    if (plog_cleaner_view(log, &v) != KERR_NONE)
        return KERR_KAFKA_STORAGE_ERROR;
    struct clean_ctx c = {.log = log, .v = &v, .cc = cc, .job = job, .map = job->map, .res = out};
    /* The layout may have moved since the examine: never past what it said, nor the active segment. */
    c.first_uncleanable = d->first_uncleanable_offset < v.active_base ? d->first_uncleanable_offset
                                                                        : v.active_base;
    int64_t first_dirty = d->first_dirty_offset < v.log_start ? v.log_start : d->first_dirty_offset;
    cleaner_map_clear(c.map);
    int64_t t0 = mono_ms();
    LOG_INFO(v.who, "Beginning cleaning of log (dirty section [%" PRId64 ", %" PRId64 "))",
             first_dirty, c.first_uncleanable);
    bool full = false;
    /* rc: 0 done, 1 aborted (stop, or the log changed), 2 nothing to clean, < 0 errors. */
    int rc = first_dirty < c.first_uncleanable ? build_map(&c, first_dirty, &full) : 2;
    out->map_ms = mono_ms() - t0;
    out->map_full = full;
    int64_t end = c.map->latest_offset + 1;
    if (rc == 0 && end <= first_dirty)
        rc = 2;
    if (rc == 0) {
        LOG_INFO(v.who, "Offset map for log built: %" PRId64 " keys up to offset %" PRId64 "%s",
                 cleaner_map_size(c.map), end - 1, full ? " (map full: a prefix is cleaned)" : "");
        int upto = 0;
        while (upto < v.nsegs && v.segs[upto].base_offset < end)
            upto++;
        uint64_t epoch = v.layout_epoch;
        for (int from = 0; from < upto && rc == 0;) {
            int n = group_size(&v, from, upto);
            rc = clean_group(&c, from, n, &epoch);
            from += n;
        }
        if (rc == 0) {
            out->next_dirty_offset = end;
            if (fio_fsync_dir(v.dir) < 0)
                rc = -1;
        }
    }
    out->aborted = rc == 1;
    int kerr = KERR_NONE;
    if (rc == -1 || rc == -3) {
        LOG_ERROR(v.who, "Error while cleaning log: %s", strerror(errno));
        kerr = KERR_KAFKA_STORAGE_ERROR;
    } else if (rc == -2) {
        LOG_ERROR(v.who, "Log cleaning stopped: a batch does not read back (corrupt)");
        kerr = KERR_CORRUPT_MESSAGE;
    } else if (out->aborted) {
        LOG_INFO(v.who, "Cleaning of log aborted (the log changed or the cleaner stops)");
    } else if (rc == 0) {
        LOG_INFO(v.who, "Log cleaned: %" PRId64 " bytes mapped, %" PRId64 " read, %" PRId64
                 " written, %" PRId64
                 " of %" PRId64 " records kept, %d group(s), in %" PRId64 " ms; next dirty offset %"
                 PRId64, out->map_bytes_read, out->bytes_read, out->bytes_written, out->records_kept, out->records_read,
                 out->groups, mono_ms() - t0, out->next_dirty_offset);
    }
    free(c.rebuild);
    free(c.kept);
    plog_cleaner_view_free(&v);
    return kerr;
}

/* ---- cleaner-offset-checkpoint ---- */

/* Takes the next line of [*p, end) (without its '\n'); false at the end. */
static bool next_line(const char **p, const char *end, const char **line, size_t *len)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
    *p = nl != NULL ? nl + 1 : end;
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    return true;
}

/* A decimal int64 of exactly [s, s+n), optional leading '-'. */
static bool parse_decimal(const char *s, size_t n, int64_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* Splits a line into at most 4 space-separated fields; returns how many (4 = too many). */
static int split_fields(const char *line, size_t len, const char *f[4], size_t fl[4])
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        if (n == 4)
            return 4;
        size_t j = i;
        while (j < len && line[j] != ' ')
            j++;
        f[n] = line + i;
        fl[n] = j - i;
        n++;
        i = j;
    }
    return n;
}

int cleaner_checkpoint_parse(const char *text, size_t len, struct cleaner_checkpoint_entry **out,
                             int *n, const char **why)
{
    *out = NULL;
    *n = 0;
    *why = NULL;
    const char *p = text, *end = text + len, *line;
    size_t ll;
    int64_t version, count;
    if (!next_line(&p, end, &line, &ll) || !parse_decimal(line, ll, &version) || version != 0) {
        *why = "unsupported version";
        return -1;
    }
    /* Each entry takes at least 6 bytes ("t 0 0\n"): a larger count is a lie. */
    if (!next_line(&p, end, &line, &ll) || !parse_decimal(line, ll, &count) || count < 0 ||
        count > (int64_t)(len / 6) || count > INT32_MAX) {
        *why = "bad entry count";
        return -1;
    }
    struct cleaner_checkpoint_entry *e = count > 0 ? calloc((size_t)count, sizeof(*e)) : NULL;
    if (count > 0 && e == NULL) {
        *why = "out of memory";
        return -1;
    }
    int got = 0;
    while (next_line(&p, end, &line, &ll)) {
        const char *f[4];
        size_t fl[4];
        int nf = split_fields(line, ll, f, fl);
        if (nf == 0)
            continue;
        int64_t part, off;
        if (nf != 3 || fl[0] >= sizeof(e[0].topic) || memchr(f[0], '\0', fl[0]) != NULL ||
            !parse_decimal(f[1], fl[1], &part) || part < 0 || part > INT32_MAX ||
            !parse_decimal(f[2], fl[2], &off)) {
            *why = "malformed entry";
            break;
        }
        if (got >= count) {
            *why = "more entries than the count says";
            break;
        }
        memcpy(e[got].topic, f[0], fl[0]);
        e[got].topic[fl[0]] = '\0';
        e[got].partition = (int32_t)part;
        e[got].offset = off;
        got++;
    }
    if (*why == NULL && got != count)
        *why = "fewer entries than the count says";
    if (*why != NULL) {
        free(e);
        return -1;
    }
    *out = e;
    *n = got;
    return 0;
}

static int checkpoint_path(const char *logdir, char *p, size_t n)
{
    if (snprintf(p, n, "%s/%s", logdir, CLEANER_CHECKPOINT_FILE) >= (int)n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int cleaner_checkpoint_read(const char *logdir, struct cleaner_checkpoint_entry **out, int *n)
{
    *out = NULL;
    *n = 0;
    char p[PATH_MAX], *text;
    size_t len;
    if (checkpoint_path(logdir, p, sizeof(p)) < 0)
        return -1;
    if (fio_read_file(p, CLEANER_CHECKPOINT_MAX_BYTES, &text, &len) < 0)
        return errno == ENOENT ? 0 : -1;
    const char *why;
    if (cleaner_checkpoint_parse(text, len, out, n, &why) < 0)
        LOG_WARN("LogCleaner", "Ignoring corrupt checkpoint file %s: %s", p, why);
    free(text);
    return 0;
}

int cleaner_checkpoint_format(const struct cleaner_checkpoint_entry *e, int n, char **out,
                              size_t *len)
{
    size_t cap = 32;
    for (int i = 0; i < n; i++)
        cap += strnlen(e[i].topic, sizeof(e[i].topic)) + 40;
    char *buf = malloc(cap);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t l = (size_t)snprintf(buf, cap, "0\n%d\n", n);
    for (int i = 0; i < n; i++)
        l += (size_t)snprintf(buf + l, cap - l, "%.255s %d %" PRId64 "\n", e[i].topic,
                              e[i].partition, e[i].offset);
    GREGOR_ASSERT(l < cap);
    *out = buf;
    *len = l;
    return 0;
}

int cleaner_checkpoint_write(const char *logdir, const struct cleaner_checkpoint_entry *e, int n)
{
    char *buf, p[PATH_MAX];
    size_t len;
    int rc = -1;
    if (cleaner_checkpoint_format(e, n, &buf, &len) == 0) {
        rc = checkpoint_path(logdir, p, sizeof(p)) < 0 ? -1 : fio_write_file_atomic(p, buf, len);
        free(buf);
    }
    if (rc < 0)
        LOG_ERROR("LogCleaner", "Error while writing %s/%s: %s", logdir, CLEANER_CHECKPOINT_FILE,
                  strerror(errno));
    return rc;
}

int64_t cleaner_checkpoint_get(const struct cleaner_checkpoint_entry *e, int n, const char *topic,
                               int32_t partition)
{
    for (int i = 0; i < n; i++)
        if (e[i].partition == partition && strcmp(e[i].topic, topic) == 0)
            return e[i].offset;
    return -1;
}
