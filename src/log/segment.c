/* segment: one .log and its two indexes. Batches are walked through a 64 KiB read window so a
 * fetch or recovery over many small batches costs few reads; CRCs are computed streaming, so a
 * huge (or lying) batch length never makes us allocate it. */
#include "log/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "log/batch_stream.h"
#include "log/fileio.h"

#define SCAN_WINDOW 65536
/* Record bytes (after decompression) a timestamp lookup streams through in one batch; past
 * them it answers with the batch's first offset. Memory stays one window whatever this is;
 * this bounds the time: 64 MiB of a gzip bomb is ~30 ms of inflate (zstd zeros ~3 ms). */
#define SEGMENT_MAX_DECODE_BYTES ((int64_t)64 << 20)

/* ---- batch walking ---- */

struct scanner {
    int fd;
    int64_t end;   /* bytes of the file that may be read */
    uint8_t *win;
    int64_t win_off;
    size_t win_len;
};

static int scanner_init(struct scanner *sc, struct segment *s, int64_t end)
{
    sc->fd = segment_log_fd(s);
    if (sc->fd < 0)
        return -1;
    sc->end = end;
    sc->win = malloc(SCAN_WINDOW);
    sc->win_off = 0;
    sc->win_len = 0;
    return sc->win == NULL ? -1 : 0;
}

static void scanner_free(struct scanner *sc)
{
    free(sc->win);
    sc->win = NULL;
}

/* Makes [pos, pos+n) available (n <= SCAN_WINDOW): 0 ok, 1 past the end, -1 I/O error. */
static int scanner_bytes(struct scanner *sc, int64_t pos, size_t n, const uint8_t **out)
{
    GREGOR_ASSERT(n <= SCAN_WINDOW);
    if (pos < 0 || pos > sc->end || (int64_t)n > sc->end - pos)
        return 1;
    if (pos >= sc->win_off && pos + (int64_t)n <= sc->win_off + (int64_t)sc->win_len) {
        *out = sc->win + (pos - sc->win_off);
        return 0;
    }
    size_t want = SCAN_WINDOW;
    if ((int64_t)want > sc->end - pos)
        want = (size_t)(sc->end - pos);
    ssize_t r = fio_pread_full(sc->fd, sc->win, want, (off_t)pos);
    if (r < 0)
        return -1;
    sc->win_off = pos;
    sc->win_len = (size_t)r;
    if ((size_t)r < n)
        return 1;
    *out = sc->win;
    return 0;
}

/* Reads and checks the batch at pos: header shape always, CRC when check_crc. */
static enum segment_scan_result scan_batch(struct scanner *sc, int64_t pos, bool check_crc,
                                           struct batch_header *h, const char **why)
{
    const uint8_t *p;
    int r = scanner_bytes(sc, pos, BATCH_HEADER_SIZE, &p);
    if (r < 0) {
        *why = "read error";
        return SEGMENT_SCAN_IO;
    }
    if (r > 0) {
        *why = "partial batch header at the end of the file";
        return SEGMENT_SCAN_TORN;
    }
    batch_header_decode(p, h);
    if (h->length < BATCH_MIN_LENGTH) {
        *why = "batch length below the batch header size";
        return SEGMENT_SCAN_CORRUPT;
    }
    if (h->magic != BATCH_MAGIC_V2) {
        *why = "batch magic is not 2";
        return SEGMENT_SCAN_CORRUPT;
    }
    int64_t size = batch_total_size(h);
    if (size > sc->end - pos) {
        *why = "batch runs past the end of the file";
        return SEGMENT_SCAN_TORN;
    }
    if (h->last_offset_delta < 0 || h->records_count < 0) {
        *why = "negative lastOffsetDelta or recordsCount";
        return SEGMENT_SCAN_CORRUPT;
    }
    if (!check_crc)
        return SEGMENT_SCAN_OK;
    uint32_t crc = 0;
    int64_t off = pos + BATCH_CRC_START, left = size - BATCH_CRC_START;
    while (left > 0) {
        size_t n = left > SCAN_WINDOW ? SCAN_WINDOW : (size_t)left;
        r = scanner_bytes(sc, off, n, &p);
        if (r != 0) {
            *why = r < 0 ? "read error" : "batch runs past the end of the file";
            return r < 0 ? SEGMENT_SCAN_IO : SEGMENT_SCAN_TORN;
        }
        crc = crc32c(crc, p, n);
        off += (int64_t)n;
        left -= (int64_t)n;
    }
    if (crc != h->crc) {
        *why = "CRC mismatch";
        return SEGMENT_SCAN_CORRUPT;
    }
    return SEGMENT_SCAN_OK;
}

/* ---- open / create / close ---- */

int segment_file_name(char *buf, size_t n, const char *dir, int64_t base, const char *suffix)
{
    int r = snprintf(buf, n, "%s/%020" PRId64 "%s", dir, base, suffix);
    if (r < 0 || (size_t)r >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static struct segment *segment_alloc(const char *dir, int64_t base, int32_t interval, int64_t now)
{
    struct segment *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    char p[PATH_MAX];
    if (segment_file_name(p, sizeof(p), dir, base, "") < 0 || (s->base_path = strdup(p)) == NULL) {
        free(s);
        return NULL;
    }
    s->base_offset = base;
    s->log_fd = -1;
    s->oi.fd = -1;
    s->ti.fd = -1;
    s->next_offset = base;
    s->max_timestamp = -1;
    s->offset_of_max_timestamp = -1;
    s->first_batch_timestamp = -1;
    s->created_ms = now;
    s->index_interval_bytes = interval;
    return s;
}

static void segment_free(struct segment *s)
{
    if (s->log_fd >= 0)
        fio_close(s->log_fd);
    index_close(&s->oi);
    index_close(&s->ti);
    free(s->base_path);
    free(s);
}

int segment_log_fd(struct segment *s)
{
    if (s->log_fd < 0) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s.log", s->base_path);
        s->log_fd = fio_open(p, O_RDWR, 0);
    }
    return s->log_fd;
}

void segment_release_fds(struct segment *s)
{
    if (!s->active && s->log_fd >= 0) {
        fio_close(s->log_fd);
        s->log_fd = -1;
    }
    index_release_fd(&s->oi);
    index_release_fd(&s->ti);
}

bool segment_has_open_fds(const struct segment *s)
{
    return s->log_fd >= 0 || s->oi.fd >= 0 || s->ti.fd >= 0;
}

static int segment_open_files(struct segment *s, int32_t max_index_bytes, bool create)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s.log", s->base_path);
    s->log_fd = fio_open(p, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
    if (s->log_fd < 0)
        return -1;
    struct stat st;
    if (fio_fstat(s->log_fd, &st) < 0)
        return -1;
    s->size = st.st_size;
    if (create) {
        /* Stale index files of an earlier segment at this offset must not survive. */
        snprintf(p, sizeof(p), "%s.index", s->base_path);
        if (fio_unlink(p) < 0 && errno != ENOENT)
            return -1;
        snprintf(p, sizeof(p), "%s.timeindex", s->base_path);
        if (fio_unlink(p) < 0 && errno != ENOENT)
            return -1;
    }
    snprintf(p, sizeof(p), "%s.index", s->base_path);
    if (index_open(&s->oi, INDEX_OFFSET, p, s->base_offset, max_index_bytes, &s->index_created) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s.timeindex", s->base_path);
    if (index_open(&s->ti, INDEX_TIME, p, s->base_offset, max_index_bytes, &s->time_index_created) < 0)
        return -1;
    return 0;
}

int segment_create(const char *dir, int64_t base, int32_t index_interval_bytes,
                   int32_t max_index_bytes, int64_t now_ms, struct segment **out)
{
    *out = NULL;
    struct segment *s = segment_alloc(dir, base, index_interval_bytes, now_ms);
    if (s == NULL)
        return -1;
    if (segment_open_files(s, max_index_bytes, true) < 0 || segment_make_active(s) < 0) {
        int saved = errno;
        segment_free(s);
        errno = saved;
        return -1;
    }
    *out = s;
    return 0;
}

int segment_open(const char *dir, int64_t base, int32_t index_interval_bytes,
                 int32_t max_index_bytes, int64_t now_ms, struct segment **out)
{
    *out = NULL;
    struct segment *s = segment_alloc(dir, base, index_interval_bytes, now_ms);
    if (s == NULL)
        return -1;
    if (segment_open_files(s, max_index_bytes, false) < 0) {
        int saved = errno;
        segment_free(s);
        errno = saved;
        return -1;
    }
    *out = s;
    return 0;
}

int segment_make_active(struct segment *s)
{
    if (segment_log_fd(s) < 0 || index_make_active(&s->oi) < 0 || index_make_active(&s->ti) < 0)
        return -1;
    s->active = true;
    return 0;
}

int segment_make_inactive(struct segment *s)
{
    int rc = 0;
    if (s->max_timestamp >= 0 &&
        index_time_maybe_append(&s->ti, s->max_timestamp, s->offset_of_max_timestamp, true) < 0)
        rc = -1;
    if (index_trim(&s->oi) < 0 || index_trim(&s->ti) < 0)
        rc = -1;
    s->active = false;
    return rc;
}

int segment_close(struct segment *s, bool clean)
{
    int rc = 0;
    if (clean && segment_make_inactive(s) < 0)
        rc = -1;
    if (s->log_fd >= 0 && fio_close(s->log_fd) < 0)
        rc = -1;
    s->log_fd = -1;
    /* Both, even when the first fails: each frees its path and descriptor. */
    int oi_rc = index_close(&s->oi), ti_rc = index_close(&s->ti);
    if (oi_rc < 0 || ti_rc < 0)
        rc = -1;
    free(s->base_path);
    free(s);
    return rc;
}

int segment_rename_deleted(struct segment *s)
{
    static const char *suffixes[] = {".log", ".index", ".timeindex", ".txnindex"};
    int rc = 0;
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof(from), "%s%s", s->base_path, suffixes[i]);
        snprintf(to, sizeof(to), "%s%s.deleted", s->base_path, suffixes[i]);
        if (fio_rename(from, to) < 0 && errno != ENOENT)
            rc = -1;
    }
    return rc;
}

/* ---- load (clean) and recover (scan) ---- */

static void note_batch(struct segment *s, const struct batch_header *h)
{
    if (h->max_timestamp > s->max_timestamp) {
        s->max_timestamp = h->max_timestamp;
        s->offset_of_max_timestamp = batch_last_offset(h);
    }
}

int segment_load(struct segment *s, const char **why)
{
    *why = NULL;
    if (index_sanity_check(&s->oi, s->size, why) < 0 || index_sanity_check(&s->ti, s->size, why) < 0)
        return 1;
    if (s->size == 0) {
        if (s->oi.entries > 0 || s->ti.entries > 0) {
            *why = "index entries for an empty log";
            return 1;
        }
        return 0;
    }
    /* The time index's last entry is the segment's max timestamp up to the last index entry
     * (and, after a roll or clean close, of the whole segment). */
    s->max_timestamp = s->ti.last_value;
    s->offset_of_max_timestamp = s->ti.entries > 0 ? s->ti.last_offset : -1;
    int64_t start = s->oi.entries > 0 ? s->oi.last_value : 0;
    struct scanner sc;
    if (scanner_init(&sc, s, s->size) < 0)
        return -1;
    int rc = 0;
    int64_t pos = start, tail_max = -1;
    struct batch_header h;
    while (pos < s->size) {
        enum segment_scan_result r = scan_batch(&sc, pos, true, &h, why);
        if (r == SEGMENT_SCAN_IO) {
            rc = -1;
            break;
        }
        if (r != SEGMENT_SCAN_OK) {
            rc = 1;
            break;
        }
        if (pos == start && s->oi.entries > 0 && batch_last_offset(&h) != s->oi.last_offset) {
            *why = "last offset index entry does not match the batch at its position";
            rc = 1;
            break;
        }
        if (pos - start > s->index_interval_bytes) {
            *why = "offset index is missing entries";
            rc = 1;
            break;
        }
        if (h.base_offset < s->base_offset || batch_last_offset(&h) - s->base_offset > INT32_MAX ||
            (pos > start && h.base_offset < s->next_offset)) {
            *why = "batch offsets out of order";
            rc = 1;
            break;
        }
        if (h.max_timestamp > tail_max)
            tail_max = h.max_timestamp;
        note_batch(s, &h);
        s->next_offset = batch_last_offset(&h) + 1;
        pos += batch_total_size(&h);
    }
    if (rc == 0 && tail_max > s->ti.last_value) {
        *why = "time index is missing its last entry";
        rc = 1;
    }
    if (rc == 0 && s->ti.entries > 0 && s->ti.last_offset >= s->next_offset) {
        *why = "time index points past the end of the log";
        rc = 1;
    }
    if (rc == 0) {
        s->bytes_since_index = s->size - start;
        const char *w;
        if (scan_batch(&sc, 0, false, &h, &w) == SEGMENT_SCAN_OK)
            s->first_batch_timestamp = h.max_timestamp;
    }
    scanner_free(&sc);
    return rc;
}

int segment_recover(struct segment *s, int64_t min_offset, int64_t *truncated_bytes,
                    const char **why)
{
    *why = NULL;
    *truncated_bytes = 0;
    if (index_reset(&s->oi) < 0 || index_reset(&s->ti) < 0)
        return -1;
    struct scanner sc;
    if (scanner_init(&sc, s, s->size) < 0)
        return -1;
    s->next_offset = s->base_offset;
    s->max_timestamp = -1;
    s->offset_of_max_timestamp = -1;
    s->first_batch_timestamp = -1;
    int64_t valid = 0, last_entry = 0, expected = min_offset > s->base_offset ? min_offset : s->base_offset;
    int rc = 0;
    struct batch_header h;
    while (valid < s->size) {
        enum segment_scan_result r = scan_batch(&sc, valid, true, &h, why);
        if (r == SEGMENT_SCAN_IO) {
            rc = -1;
            break;
        }
        if (r != SEGMENT_SCAN_OK)
            break;
        if (h.base_offset < expected || batch_last_offset(&h) - s->base_offset > INT32_MAX) {
            *why = "batch offsets out of order or out of the segment's range";
            break;
        }
        note_batch(s, &h);
        if (valid - last_entry > s->index_interval_bytes && !index_is_full(&s->oi) &&
            !index_is_full(&s->ti)) {
            if (index_offset_append(&s->oi, batch_last_offset(&h), (int32_t)valid) < 0 ||
                index_time_maybe_append(&s->ti, s->max_timestamp, s->offset_of_max_timestamp, false) < 0) {
                rc = -1;
                break;
            }
            last_entry = valid;
        }
        if (valid == 0)
            s->first_batch_timestamp = h.max_timestamp;
        s->next_offset = batch_last_offset(&h) + 1;
        expected = s->next_offset;
        valid += batch_total_size(&h);
    }
    scanner_free(&sc);
    if (rc < 0)
        return -1;
    if (valid < s->size) {
        if (fio_ftruncate(segment_log_fd(s), (off_t)valid) < 0)
            return -1;
        *truncated_bytes = s->size - valid;
        s->size = valid;
    }
    s->bytes_since_index = valid - last_entry;
    return 0;
}

/* ---- append ---- */

int segment_append(struct segment *s, const uint8_t *batch, size_t len,
                   const struct batch_header *h)
{
    GREGOR_ASSERT(s->active);
    GREGOR_ASSERT(s->log_fd >= 0); /* the active segment never gives its .log back */
    int64_t pos = s->size;
    if (fio_pwrite_full(s->log_fd, batch, len, (off_t)pos) < 0) {
        int saved = errno;
        fio_ftruncate(s->log_fd, (off_t)pos); /* best effort: readers stop at s->size anyway */
        errno = saved;
        return -1;
    }
    int64_t old_max = s->max_timestamp, old_max_off = s->offset_of_max_timestamp;
    note_batch(s, h);
    if (s->bytes_since_index > s->index_interval_bytes) {
        int32_t ti_entries = s->ti.entries;
        if (index_offset_append(&s->oi, batch_last_offset(h), (int32_t)pos) < 0) {
            int saved = errno;
            s->max_timestamp = old_max;
            s->offset_of_max_timestamp = old_max_off;
            fio_ftruncate(s->log_fd, (off_t)pos);
            errno = saved;
            return -1;
        }
        if (index_time_maybe_append(&s->ti, s->max_timestamp, s->offset_of_max_timestamp, false) < 0) {
            int saved = errno;
            index_drop_last(&s->oi);
            if (s->ti.entries > ti_entries)
                index_drop_last(&s->ti);
            s->max_timestamp = old_max;
            s->offset_of_max_timestamp = old_max_off;
            fio_ftruncate(s->log_fd, (off_t)pos);
            errno = saved;
            return -1;
        }
        s->bytes_since_index = 0;
    }
    if (pos == 0)
        s->first_batch_timestamp = h->max_timestamp;
    s->bytes_since_index += (int64_t)len;
    s->size = pos + (int64_t)len;
    s->next_offset = batch_last_offset(h) + 1;
    return 0;
}

int segment_truncate(struct segment *s, int64_t size)
{
    if (fio_ftruncate(segment_log_fd(s), (off_t)size) < 0)
        return -1;
    s->size = size;
    return 0;
}

/* ---- reads ---- */

int segment_read_header(struct segment *s, int64_t pos, struct batch_header *h)
{
    uint8_t b[BATCH_HEADER_SIZE];
    if (pos < 0 || pos + BATCH_HEADER_SIZE > s->size) {
        errno = EINVAL;
        return -1;
    }
    int fd = segment_log_fd(s);
    if (fd < 0)
        return -1;
    ssize_t r = fio_pread_full(fd, b, sizeof(b), (off_t)pos);
    if (r != (ssize_t)sizeof(b)) {
        if (r >= 0)
            errno = EIO;
        return -1;
    }
    batch_header_decode(b, h);
    return 0;
}

/* Walks from pos to the first batch with last offset >= offset. 0 found or end, 1 the walk hit
 * something that is not a batch (a bad index entry sent us there), -1 I/O error. */
static int walk_to_offset(struct segment *s, struct scanner *sc, int64_t pos, int64_t offset,
                          int64_t expect_last, int64_t *out, struct batch_header *first)
{
    bool at_entry = expect_last >= 0;
    while (pos < s->size) {
        struct batch_header h;
        const char *why;
        enum segment_scan_result r = scan_batch(sc, pos, false, &h, &why);
        if (r == SEGMENT_SCAN_IO)
            return -1;
        if (r != SEGMENT_SCAN_OK)
            return 1;
        if (at_entry && batch_last_offset(&h) != expect_last)
            return 1;
        at_entry = false;
        if (batch_last_offset(&h) >= offset) {
            if (first != NULL)
                *first = h;
            break;
        }
        pos += batch_total_size(&h);
    }
    *out = pos;
    return 0;
}

int segment_find_position(struct segment *s, int64_t offset, int64_t *pos,
                          struct batch_header *first)
{
    struct index_offset_entry e;
    if (index_offset_lookup(&s->oi, offset, &e) < 0)
        return -1;
    struct scanner sc;
    if (scanner_init(&sc, s, s->size) < 0)
        return -1;
    int64_t expect = e.position > 0 ? e.offset : -1;
    int r = walk_to_offset(s, &sc, e.position, offset, expect, pos, first);
    if (r == 1 && e.position > 0) {
        /* The index entry does not point at its batch: answer from a scan of the whole
         * segment (the index is rebuilt at the next unclean open or by recovery). */
        s->index_suspect = true;
        r = walk_to_offset(s, &sc, 0, offset, -1, pos, first);
    }
    scanner_free(&sc);
    if (r != 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int segment_read_len(struct segment *s, int64_t pos, int64_t max_bytes, int64_t end_offset,
                     int64_t *len, int64_t *next_offset)
{
    struct scanner sc;
    if (scanner_init(&sc, s, s->size) < 0)
        return -1;
    int64_t n = 0;
    int rc = 0;
    while (pos + n < s->size) {
        struct batch_header h;
        const char *why;
        if (scan_batch(&sc, pos + n, false, &h, &why) != SEGMENT_SCAN_OK) {
            errno = EIO;
            rc = -1;
            break;
        }
        if (batch_last_offset(&h) >= end_offset)
            break;
        int64_t size = batch_total_size(&h);
        if (n > 0 && n + size > max_bytes)
            break;
        n += size;
        *next_offset = batch_last_offset(&h) + 1;
    }
    scanner_free(&sc);
    *len = n;
    return rc;
}

/* First record in the batch at pos with timestamp >= ts (exact: == ts) and offset >=
 * min_offset, streamed from the file (batch_stream: a batch inflating to gigabytes costs a
 * 64 KiB window). 1 found, 0 none; a batch whose records cannot be decoded within
 * SEGMENT_MAX_DECODE_BYTES answers with its own first eligible offset and max timestamp. */
static int batch_find_record(struct segment *s, int64_t pos, const struct batch_header *h,
                             int64_t ts, bool exact, int64_t min_offset, int64_t *offset,
                             int64_t *found_ts)
{
    struct batch_stream *bs = NULL;
    int fd = segment_log_fd(s);
    int k = -1;
    if (fd >= 0 && batch_total_size(h) <= s->size - pos &&
        batch_stream_open(&bs, fd, pos, h, SEGMENT_MAX_DECODE_BYTES) == 0) {
        int64_t off, rts;
        while ((k = batch_stream_next(bs, &off, &rts)) == 1) {
            if (off >= min_offset && (exact ? rts == ts : rts >= ts)) {
                *offset = off;
                *found_ts = rts;
                break;
            }
        }
        batch_stream_close(bs);
        if (k >= 0)
            return k;
    }
    *offset = h->base_offset > min_offset ? h->base_offset : min_offset;
    *found_ts = h->max_timestamp;
    return 1;
}

int segment_find_timestamp(struct segment *s, int64_t ts, int64_t min_offset, int64_t *offset,
                           int64_t *found_ts)
{
    struct index_time_entry te;
    if (index_time_lookup(&s->ti, ts, &te) < 0)
        return -1;
    int64_t pos;
    int64_t from = te.offset > min_offset ? te.offset : min_offset;
    if (segment_find_position(s, from, &pos, NULL) < 0)
        return -1;
    struct scanner sc;
    if (scanner_init(&sc, s, s->size) < 0)
        return -1;
    int rc = 0;
    while (pos < s->size) {
        struct batch_header h;
        const char *why;
        if (scan_batch(&sc, pos, false, &h, &why) != SEGMENT_SCAN_OK) {
            errno = EIO;
            rc = -1;
            break;
        }
        if (h.max_timestamp >= ts && batch_last_offset(&h) >= min_offset &&
            batch_find_record(s, pos, &h, ts, false, min_offset, offset, found_ts) == 1) {
            rc = 1;
            break;
        }
        pos += batch_total_size(&h);
    }
    scanner_free(&sc);
    return rc;
}

int segment_find_max_timestamp(struct segment *s, int64_t *offset, int64_t *ts)
{
    if (s->max_timestamp < 0)
        return 0;
    int64_t pos;
    struct batch_header h;
    if (segment_find_position(s, s->offset_of_max_timestamp, &pos, &h) < 0)
        return -1;
    if (pos >= s->size)
        return 0;
    int64_t found_ts;
    if (batch_find_record(s, pos, &h, s->max_timestamp, true, h.base_offset, offset, &found_ts) != 1)
        *offset = batch_last_offset(&h);
    *ts = s->max_timestamp;
    return 1;
}
