/* plog: one partition's log — the ordered segments of a partition directory, offset
 * assignment, rolling, reads, timestamp lookups, retention, DeleteRecords, flushing and the
 * recovery that runs when the log is opened. One mutex per log guards all of it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "log/log.h"
#include "log/segment.h"
#include "log/txnindex.h"

/* Inactive segments whose files stay open after use, per log. Every other inactive segment
 * holds no descriptor (Kafka maps its indexes lazily); a read reopens what it needs. */
#define PLOG_OPEN_INACTIVE_MAX 4

struct pending_delete {
    char *base_path; /* owned: "<dir>/<base>" of files renamed to *.deleted */
    int64_t due_ms;
};

struct plog {
    pthread_mutex_t mu;
    char *dir;
    char tp[300];             /* "<topic>-<partition>" */
    char who[1400];           /* log-line context: "Log partition=t-0, dir=/data" */
    struct log_config cfg;
    struct segment **segs;    /* oldest first; the last one is active */
    int nsegs, segs_cap;
    int64_t log_start;
    int64_t flushed_offset;
    int64_t last_flush_ms;
    int32_t leader_epoch;     /* stamped on leader appends (partitionLeaderEpoch) */
    bool dir_dirty;           /* files created/renamed since the last directory fsync */
    int64_t rolled_at;        /* base of the newest segment rolled to (0 none): everything
                               * below it is owed a flush, as Kafka flushes on roll */
    struct pending_delete *pending;
    int npending, pending_cap;
    /* Inactive segments with open descriptors, most recently used first (borrowed from segs). */
    struct segment *open_inactive[PLOG_OPEN_INACTIVE_MAX];
    int nopen_inactive;
    uint64_t layout_epoch;    /* bumped whenever segments leave the log or are cut: a clean
                               * that started before aborts its swap */
};

void log_config_defaults(struct log_config *cfg)
{
    cfg->segment_bytes = 1073741824;
    cfg->segment_ms = 604800000;
    cfg->retention_ms = 604800000;
    cfg->retention_bytes = -1;
    cfg->index_interval_bytes = 4096;
    cfg->segment_index_bytes = 10485760;
    cfg->max_message_bytes = 1048588;
    cfg->flush_messages = INT64_MAX;
    cfg->flush_ms = INT64_MAX;
    cfg->timestamp_type = LOG_TS_CREATE_TIME;
    cfg->file_delete_delay_ms = 60000;
    cfg->compact = false;
    cfg->min_cleanable_dirty_ratio = 0.5;
    cfg->min_compaction_lag_ms = 0;
    cfg->max_compaction_lag_ms = INT64_MAX;
    cfg->delete_retention_ms = 86400000;
}

static struct segment *active_seg(const struct plog *log) { return log->segs[log->nsegs - 1]; }
static int64_t leo(const struct plog *log) { return active_seg(log)->next_offset; }

static void lock(const struct plog *log) { pthread_mutex_lock((pthread_mutex_t *)&log->mu); }
static void unlock(const struct plog *log) { pthread_mutex_unlock((pthread_mutex_t *)&log->mu); }

static int segs_push(struct plog *log, struct segment *s)
{
    if (log->nsegs == log->segs_cap) {
        int cap = log->segs_cap ? log->segs_cap * 2 : 8;
        struct segment **n = realloc(log->segs, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return -1;
        log->segs = n;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = s;
    return 0;
}

static void segs_remove_first(struct plog *log)
{
    log->layout_epoch++;
    memmove(log->segs, log->segs + 1, (size_t)(log->nsegs - 1) * sizeof(*log->segs));
    log->nsegs--;
}

/* ---- descriptors of inactive segments ---- */

static int open_inactive_find(const struct plog *log, const struct segment *s)
{
    for (int i = 0; i < log->nopen_inactive; i++)
        if (log->open_inactive[i] == s)
            return i;
    return -1;
}

/* s is about to be read: it moves to the front of the open set, and the least recently used
 * inactive segment beyond the bound gives its descriptors back. */
static void seg_use(struct plog *log, struct segment *s)
{
    if (s->active)
        return;
    int at = open_inactive_find(log, s);
    if (at < 0) {
        if (log->nopen_inactive == PLOG_OPEN_INACTIVE_MAX)
            segment_release_fds(log->open_inactive[--log->nopen_inactive]);
        at = log->nopen_inactive++;
    }
    memmove(log->open_inactive + 1, log->open_inactive, (size_t)at * sizeof(*log->open_inactive));
    log->open_inactive[0] = s;
    GREGOR_ASSERT(log->nopen_inactive <= PLOG_OPEN_INACTIVE_MAX);
}

/* s was used outside the open set (flush, load): give its descriptors back now. */
static void seg_done(struct plog *log, struct segment *s)
{
    if (!s->active && open_inactive_find(log, s) < 0)
        segment_release_fds(s);
}

/* s is going away: it leaves the open set. */
static void seg_forget(struct plog *log, struct segment *s)
{
    int at = open_inactive_find(log, s);
    if (at < 0)
        return;
    memmove(log->open_inactive + at, log->open_inactive + at + 1,
            (size_t)(log->nopen_inactive - at - 1) * sizeof(*log->open_inactive));
    log->nopen_inactive--;
}

/* ---- deleting segment files ---- */

static void unlink_deleted_files(const char *base_path)
{
    static const char *suffixes[] = {".log.deleted", ".index.deleted", ".timeindex.deleted",
                                     ".txnindex.deleted"};
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s%s", base_path, suffixes[i]);
        fio_unlink(p);
    }
}

/* Segments detached from a log (renamed to *.deleted and closed by plog_trash_dispose) and
 * base paths whose *.deleted files are due for removal. Owned by whoever holds it: nothing in
 * it points back into the log, so the log may go on, close or be deleted meanwhile. */
struct plog_trash {
    char who[1400];
    struct segment **segs;
    int nsegs, segs_cap;
    char **unlink;  /* owned base paths, removed after the renames */
    int nunlink, unlink_cap;
};

static int trash_grow(void **v, int *cap, int n, size_t size)
{
    if (n < *cap)
        return 0;
    int c = *cap ? *cap * 2 : 8;
    void *p = realloc(*v, (size_t)c * size);
    if (p == NULL)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

/* Hands base_path (owned) to the trash to unlink, or unlinks it now (no trash, or no memory). */
static void unlink_later(struct plog_trash *t, char *base_path)
{
    if (t != NULL && trash_grow((void **)&t->unlink, &t->unlink_cap, t->nunlink, sizeof(char *)) == 0) {
        t->unlink[t->nunlink++] = base_path;
        return;
    }
    unlink_deleted_files(base_path);
    free(base_path);
}

static void run_pending_deletes(struct plog *log, int64_t now, bool all, struct plog_trash *t)
{
    int kept = 0;
    for (int i = 0; i < log->npending; i++) {
        struct pending_delete *p = &log->pending[i];
        if (all || p->due_ms <= now)
            unlink_later(t, p->base_path);
        else
            log->pending[kept++] = *p;
    }
    log->npending = kept;
}

static void schedule_unlink(struct plog *log, char *base_path, int64_t now, struct plog_trash *t);

/* Renames a segment's files to *.deleted (removed after file.delete.delay.ms) and frees it;
 * with a trash, both the rename and the close are the trash's, done by plog_trash_dispose. */
static void delete_segment(struct plog *log, struct segment *s, int64_t now, struct plog_trash *t)
{
    seg_forget(log, s);
    char *base_path = strdup(s->base_path);
    log->dir_dirty = true;
    if (t != NULL && trash_grow((void **)&t->segs, &t->segs_cap, t->nsegs, sizeof(*t->segs)) == 0) {
        t->segs[t->nsegs++] = s;
    } else {
        if (segment_rename_deleted(s) < 0)
            LOG_WARN(log->who, "Could not rename segment %s to .deleted: %s", s->base_path,
                     strerror(errno));
        segment_close(s, false);
    }
    schedule_unlink(log, base_path, now, t);
}

/* The *.deleted files of base_path (owned) are removed after file.delete.delay.ms. */
static void schedule_unlink(struct plog *log, char *base_path, int64_t now, struct plog_trash *t)
{
    if (base_path == NULL)
        return;
    if (log->cfg.file_delete_delay_ms <= 0) {
        unlink_later(t, base_path);
        return;
    }
    if (log->npending == log->pending_cap) {
        int cap = log->pending_cap ? log->pending_cap * 2 : 8;
        struct pending_delete *n = realloc(log->pending, (size_t)cap * sizeof(*n));
        if (n == NULL) {
            unlink_later(t, base_path);
            return;
        }
        log->pending = n;
        log->pending_cap = cap;
    }
    log->pending[log->npending++] = (struct pending_delete){base_path, now + log->cfg.file_delete_delay_ms};
}

void plog_trash_dispose(struct plog_trash *t)
{
    if (t == NULL)
        return;
    /* Renames first: an unlink of this same trash may name one of these segments. */
    for (int i = 0; i < t->nsegs; i++) {
        struct segment *s = t->segs[i];
        if (segment_rename_deleted(s) < 0)
            LOG_WARN(t->who, "Could not rename segment %s to .deleted: %s", s->base_path,
                     strerror(errno));
        segment_close(s, false);
    }
    for (int i = 0; i < t->nunlink; i++) {
        unlink_deleted_files(t->unlink[i]);
        free(t->unlink[i]);
    }
    free(t->segs);
    free(t->unlink);
    free(t);
}

int plog_trash_segments(const struct plog_trash *t) { return t == NULL ? 0 : t->nsegs; }

/* ---- rolling ---- */

static int roll(struct plog *log, int64_t now)
{
    int64_t t0 = mono_ms();
    struct segment *old = active_seg(log), *s;
    int64_t base = old->next_offset;
    if (segment_create(log->dir, base, log->cfg.index_interval_bytes, log->cfg.segment_index_bytes,
                       now, &s) < 0) {
        LOG_ERROR(log->who, "Error while rolling log segment at offset %" PRId64 ": %s", base,
                  strerror(errno));
        return -1;
    }
    if (segs_push(log, s) < 0) {
        segment_close(s, false);
        return -1;
    }
    if (segment_make_inactive(old) < 0)
        LOG_WARN(log->who, "Could not trim the indexes of segment %s: %s (rebuilt at next open)",
                 old->base_path, strerror(errno));
    seg_use(log, old); /* readers at the tail still want it */
    log->dir_dirty = true;
    log->rolled_at = base;
    LOG_INFO(log->who, "Rolled new log segment at offset %" PRId64 " in %" PRId64 " ms.", base,
             mono_ms() - t0);
    return 0;
}

static bool should_roll(const struct plog *log, const struct segment *s, size_t len,
                        const struct batch_header *h, int64_t now)
{
    if (s->size == 0)
        return false;
    if (s->size > log->cfg.segment_bytes - (int64_t)len)
        return true;
    int64_t waited = s->first_batch_timestamp >= 0 ? h->max_timestamp - s->first_batch_timestamp
                                                   : now - s->created_ms;
    if (waited > log->cfg.segment_ms)
        return true;
    if (index_is_full(&s->oi) || index_is_full(&s->ti))
        return true;
    return s->next_offset + h->last_offset_delta - s->base_offset > INT32_MAX;
}

/* ---- open and recovery ---- */

static int parse_segment_name(const char *name, const char *suffix, int64_t *base)
{
    size_t n = strlen(name), sl = strlen(suffix);
    if (n != 20 + sl || strcmp(name + 20, suffix) != 0)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        if (v > (INT64_MAX - (name[i] - '0')) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- interrupted cleaner swaps (Kafka's LogLoader.removeTempFilesAndCollectSwapFiles) ---- */

#define SWAP_MAX 64 /* .log.swap files completed per open: one per group a crash interrupted */

/* The offset after the last whole batch of a .log.swap file (its base when none): the range
 * of old segments the swap replaces. A walk of batch headers, bounded by the file's size. */
static int swap_next_offset(const char *path, int64_t base, int64_t *next)
{
    *next = base;
    int fd = fio_open(path, O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fio_fstat(fd, &st) < 0) {
        if (fd >= 0)
            fio_close(fd);
        return -1;
    }
    int64_t pos = 0;
    uint8_t b[BATCH_HEADER_SIZE];
    while (pos + BATCH_HEADER_SIZE <= st.st_size) {
        if (fio_pread_full(fd, b, sizeof(b), (off_t)pos) != (ssize_t)sizeof(b)) {
            fio_close(fd);
            return -1;
        }
        struct batch_header h;
        batch_header_decode(b, &h);
        if (h.magic != BATCH_MAGIC_V2 || h.length < BATCH_MIN_LENGTH || h.last_offset_delta < 0 ||
            batch_total_size(&h) > st.st_size - pos)
            break; /* recovery of the live segment cuts what follows */
        *next = batch_last_offset(&h) + 1;
        pos += batch_total_size(&h);
    }
    fio_close(fd);
    return 0;
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), sl = strlen(suffix);
    return n > sl && strcmp(name + n - sl, suffix) == 0;
}

/* The base offset of a segment file name "<20 digits>.<kind>[.<tmp>]", -1 when not one. */
static int64_t file_base_offset(const char *name)
{
    if (strlen(name) < 21 || name[20] != '.')
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - (name[i] - '0')) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* Removes *.deleted and *.cleaned leftovers, then completes the swaps a crash interrupted: the
 * live files of the segments a .log.swap replaces (bases in [swap base, its next offset), and
 * always the swap's own base) are removed and every *.swap file takes its live name. A .swap
 * at or past the lowest .cleaned base belongs to a split that never finished and goes too. */
static int recover_swaps(struct plog *log)
{
    DIR *d = fio_opendir(log->dir);
    if (d == NULL)
        return -1;
    int64_t swap_base[SWAP_MAX], swap_end[SWAP_MAX], min_cleaned = INT64_MAX;
    int nswap = 0;
    bool any_swap = false;
    char p[PATH_MAX];
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        int64_t base = file_base_offset(name);
        if (has_suffix(name, ".deleted") || has_suffix(name, ".cleaned")) {
            if (has_suffix(name, ".cleaned") && base >= 0 && base < min_cleaned)
                min_cleaned = base;
            snprintf(p, sizeof(p), "%s/%s", log->dir, name);
            fio_unlink(p);
        } else if (has_suffix(name, ".swap")) {
            any_swap = true;
            if (base >= 0 && has_suffix(name, ".log.swap")) {
                if (nswap == SWAP_MAX) {
                    closedir(d);
                    LOG_ERROR(log->who, "More than %d .log.swap files in %s: not a cleaner's "
                              "interrupted swap; refusing to guess", SWAP_MAX, log->dir);
                    errno = EOVERFLOW;
                    return -1;
                }
                swap_base[nswap++] = base;
            }
        }
    }
    closedir(d);
    if (!any_swap)
        return 0;
    for (int i = 0; i < nswap; i++) {
        if (swap_base[i] >= min_cleaned) {
            swap_end[i] = swap_base[i]; /* dropped below */
            continue;
        }
        snprintf(p, sizeof(p), "%s/%020" PRId64 ".log.swap", log->dir, swap_base[i]);
        if (swap_next_offset(p, swap_base[i], &swap_end[i]) < 0) {
            LOG_ERROR(log->who, "Could not read %s: %s", p, strerror(errno));
            return -1;
        }
        if (swap_end[i] <= swap_base[i])
            swap_end[i] = swap_base[i] + 1;
        LOG_INFO(log->who, "Found log file %s from interrupted swap operation, which is recoverable "
                 "from .swap files by renaming.", p);
    }
    if ((d = fio_opendir(log->dir)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        int64_t base = file_base_offset(name);
        if (base < 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", log->dir, name);
        if (has_suffix(name, ".swap")) {
            if (base >= min_cleaned) {
                LOG_INFO(log->who, "Deleting invalid swap file %s (a .cleaned file at %" PRId64
                         " is older)", p, min_cleaned);
                fio_unlink(p);
            }
            continue;
        }
        if (!has_suffix(name, ".log") && !has_suffix(name, ".index") &&
            !has_suffix(name, ".timeindex") && !has_suffix(name, ".txnindex"))
            continue;
        for (int i = 0; i < nswap; i++) {
            if (base >= swap_base[i] && base < swap_end[i]) {
                LOG_INFO(log->who, "Deleting segment files %s that is compacted but has not been "
                         "deleted yet.", name);
                if (fio_unlink(p) < 0 && errno != ENOENT) {
                    closedir(d);
                    return -1;
                }
                break;
            }
        }
    }
    closedir(d);
    if ((d = fio_opendir(log->dir)) == NULL)
        return -1;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (!has_suffix(name, ".swap") || file_base_offset(name) < 0)
            continue;
        char to[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", log->dir, name);
        snprintf(to, sizeof(to), "%s/%.*s", log->dir, (int)(strlen(name) - 5), name);
        LOG_INFO(log->who, "Recovering file %s by renaming from .swap files.", name);
        if (fio_rename(p, to) < 0)
            rc = -1;
    }
    closedir(d);
    log->dir_dirty = true;
    return rc;
}

/* Lists segment base offsets (sorted); removes *.deleted / *.cleaned leftovers and index files
 * whose .log is gone, after completing interrupted swaps. */
static int list_segments(struct plog *log, int64_t **bases_out, int *n_out)
{
    if (recover_swaps(log) < 0)
        return -1;
    DIR *d = fio_opendir(log->dir);
    if (d == NULL)
        return -1;
    int64_t *bases = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        int64_t base;
        if ((len > 8 && strcmp(name + len - 8, ".deleted") == 0) ||
            (len > 8 && strcmp(name + len - 8, ".cleaned") == 0)) {
            snprintf(p, sizeof(p), "%s/%s", log->dir, name);
            fio_unlink(p);
            continue;
        }
        if (parse_segment_name(name, ".log", &base) == 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *nb = realloc(bases, (size_t)cap * sizeof(*nb));
                if (nb == NULL) {
                    free(bases);
                    closedir(d);
                    errno = ENOMEM;
                    return -1;
                }
                bases = nb;
            }
            bases[n++] = base;
        } else if (parse_segment_name(name, ".index", &base) == 0 ||
                   parse_segment_name(name, ".timeindex", &base) == 0) {
            char logp[PATH_MAX];
            struct stat st;
            segment_file_name(logp, sizeof(logp), log->dir, base, ".log");
            if (fio_stat(logp, &st) < 0 && errno == ENOENT) {
                snprintf(p, sizeof(p), "%s/%s", log->dir, name);
                LOG_INFO(log->who, "Deleting orphaned index file %s", p);
                fio_unlink(p);
            }
        }
    }
    closedir(d);
    if (n > 0)
        qsort(bases, (size_t)n, sizeof(*bases), cmp_i64);
    *bases_out = bases;
    *n_out = n;
    return 0;
}

/* Did this segment's last owner leave its indexes preallocated (no clean close)? */
static bool indexes_untrimmed(const struct segment *s)
{
    return (s->oi.file_len > 0 && s->oi.file_len == (int64_t)s->oi.max_entries * OFFSET_INDEX_ENTRY_SIZE) ||
           (s->ti.file_len > 0 && s->ti.file_len == (int64_t)s->ti.max_entries * TIME_INDEX_ENTRY_SIZE);
}

/* Scans a segment fully; logs what was cut. 0, or -1 on I/O error. */
static int recover_segment(struct plog *log, struct segment *s, int64_t min_offset, int64_t *truncated)
{
    const char *why;
    int64_t before = s->size;
    if (segment_recover(s, min_offset, truncated, &why) < 0) {
        LOG_ERROR(log->who, "Error while recovering segment %s.log: %s", s->base_path, strerror(errno));
        return -1;
    }
    if (*truncated > 0)
        LOG_WARN(log->who,
                 "Found invalid messages in log segment %s.log at byte offset %" PRId64 ": %s. "
                 "Truncated %" PRId64 " bytes (segment was %" PRId64 " bytes).",
                 s->base_path, s->size, why ? why : "invalid batch", *truncated, before);
    return 0;
}

static int load_segments(struct plog *log, int64_t recovery_point, bool *recovered)
{
    int64_t *bases;
    int n;
    *recovered = false;
    if (list_segments(log, &bases, &n) < 0) {
        LOG_ERROR(log->who, "Could not list %s: %s", log->dir, strerror(errno));
        return -1;
    }
    bool clean = recovery_point == PLOG_RECOVERY_POINT_CLEAN;
    int64_t rp = recovery_point < 0 ? 0 : recovery_point;
    int64_t now = now_ms();
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct segment *s;
        if (segment_open(log->dir, bases[i], log->cfg.index_interval_bytes,
                         log->cfg.segment_index_bytes, now, &s) < 0) {
            LOG_ERROR(log->who, "Could not open segment %020" PRId64 ": %s", bases[i], strerror(errno));
            rc = -1;
            break;
        }
        if (segs_push(log, s) < 0) {
            segment_close(s, false);
            rc = -1;
            break;
        }
        if (log->nsegs > 1) /* loading many segments must not hold them all open */
            segment_release_fds(log->segs[log->nsegs - 2]);
        bool last = i == n - 1;
        int64_t min_offset = log->nsegs > 1 ? log->segs[log->nsegs - 2]->next_offset : 0;
        bool in_recovery = !clean && (last || bases[i + 1] > rp);
        const char *why = NULL;
        int lr = 0;
        if (!in_recovery || last) {
            lr = segment_load(s, &why);
            if (lr < 0) {
                LOG_ERROR(log->who, "Error while loading segment %s.log: %s", s->base_path, strerror(errno));
                rc = -1;
                break;
            }
        }
        bool scan;
        if (!in_recovery)
            scan = lr != 0;
        else if (last)
            scan = lr != 0 || indexes_untrimmed(s) || s->next_offset > rp;
        else
            scan = true;
        if (!scan)
            continue;
        if (in_recovery)
            LOG_INFO(log->who, "Recovering unflushed segment %" PRId64 ". %d/%d recovered for %s.%s%s",
                     s->base_offset, i, n, log->tp, why ? " Check failed: " : "", why ? why : "");
        else
            LOG_WARN(log->who, "Found a corrupted segment %s.log or its indexes (%s), rebuilding index files...",
                     s->base_path, why ? why : "?");
        int64_t truncated;
        if (recover_segment(log, s, min_offset, &truncated) < 0) {
            rc = -1;
            break;
        }
        *recovered = true;
        if (in_recovery && truncated > 0 && !last) {
            /* Everything after a torn batch in the unflushed region is suspect (Kafka). */
            for (int j = i + 1; j < n; j++) {
                char p[PATH_MAX];
                LOG_WARN(log->who, "Deleting segment %020" PRId64 " since it follows a truncated segment", bases[j]);
                static const char *sfx[] = {".log", ".index", ".timeindex", ".txnindex"};
                for (size_t k = 0; k < ARRAY_LEN(sfx); k++) {
                    segment_file_name(p, sizeof(p), log->dir, bases[j], sfx[k]);
                    fio_unlink(p);
                }
            }
            log->dir_dirty = true;
            break;
        }
    }
    free(bases);
    if (rc < 0)
        return -1;
    /* Inactive segments must carry their final time-index entry and trimmed indexes. */
    for (int i = 0; i + 1 < log->nsegs; i++) {
        struct segment *s = log->segs[i];
        if (segment_make_inactive(s) < 0) {
            LOG_ERROR(log->who, "Could not trim indexes of %s: %s", s->base_path, strerror(errno));
            return -1;
        }
        segment_release_fds(s);
    }
    return 0;
}

static int open_locked(struct plog *log, int64_t recovery_point, int64_t log_start_offset)
{
    int64_t t0 = mono_ms(), now = now_ms();
    if (fio_mkdir(log->dir, 0755) < 0 && errno != EEXIST) {
        LOG_ERROR(log->who, "Could not create %s: %s", log->dir, strerror(errno));
        return -1;
    }
    bool recovered;
    if (load_segments(log, recovery_point, &recovered) < 0)
        return -1;
    int64_t start = log_start_offset < 0 ? 0 : log_start_offset;
    if (log->nsegs > 0 && log->segs[0]->base_offset > start)
        start = log->segs[0]->base_offset;
    if (log->nsegs > 0 && leo(log) < start) {
        LOG_WARN(log->who, "Log end offset %" PRId64 " is below the log start offset %" PRId64
                 "; deleting all segments and starting at %" PRId64, leo(log), start, start);
        while (log->nsegs > 0) {
            struct segment *s = log->segs[0];
            segs_remove_first(log);
            segment_rename_deleted(s);
            unlink_deleted_files(s->base_path);
            segment_close(s, false);
        }
    }
    if (log->nsegs == 0) {
        struct segment *s;
        if (segment_create(log->dir, start, log->cfg.index_interval_bytes, log->cfg.segment_index_bytes,
                           now, &s) < 0 || segs_push(log, s) < 0) {
            LOG_ERROR(log->who, "Could not create segment %020" PRId64 ": %s", start, strerror(errno));
            return -1;
        }
        log->dir_dirty = true;
    } else if (segment_make_active(active_seg(log)) < 0) {
        LOG_ERROR(log->who, "Could not open the active segment's indexes: %s", strerror(errno));
        return -1;
    }
    log->log_start = start;
    log->last_flush_ms = now;
    if (recovery_point == PLOG_RECOVERY_POINT_CLEAN || !recovered) {
        log->flushed_offset = leo(log);
    } else {
        /* What recovery kept may sit in the page cache only (a killed process): sync it now. */
        log->flushed_offset = recovery_point < 0 ? 0 : recovery_point;
        for (int i = 0; i < log->nsegs; i++) {
            struct segment *s = log->segs[i];
            int fd = segment_log_fd(s);
            if (fd < 0 || fio_fdatasync(fd) < 0) {
                LOG_ERROR(log->who, "fdatasync of %s.log failed after recovery: %s", s->base_path,
                          strerror(errno));
                return -1;
            }
            seg_done(log, s);
        }
        log->flushed_offset = leo(log);
    }
    if (log->dir_dirty && fio_fsync_dir(log->dir) == 0)
        log->dir_dirty = false;
    /* Files are reopened when first needed: an idle partition holds one fd, the active .log. */
    for (int i = 0; i < log->nsegs; i++)
        segment_release_fds(log->segs[i]);
    LOG_INFO(log->who,
             "Completed load of log with %d segments, local-log-start-offset %" PRId64
             " and log-end-offset %" PRId64 " in %" PRId64 " milliseconds",
             log->nsegs, log->log_start, leo(log), mono_ms() - t0);
    return 0;
}

static void free_log(struct plog *log)
{
    for (int i = 0; i < log->nsegs; i++)
        segment_close(log->segs[i], false);
    run_pending_deletes(log, 0, true, NULL);
    free(log->pending);
    free(log->segs);
    free(log->dir);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

int plog_open(const char *dir, const char *topic, int32_t partition, const struct log_config *cfg,
              int64_t recovery_point, int64_t log_start_offset, struct plog **out)
{
    *out = NULL;
    struct plog *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return KERR_KAFKA_STORAGE_ERROR;
    pthread_mutex_init(&log->mu, NULL);
    log->cfg = *cfg;
    log->dir = strdup(dir);
    if (log->dir == NULL) {
        free_log(log);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    /* Kafka names the log dir (the partition directory's parent) in its log lines. */
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), ".");
    snprintf(log->tp, sizeof(log->tp), "%.255s-%d", topic ? topic : "?", partition);
    snprintf(log->who, sizeof(log->who), "Log partition=%s, dir=%.900s", log->tp, parent);
    if (open_locked(log, recovery_point, log_start_offset) < 0) {
        free_log(log);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    /* A recovery that cut the tail also cuts the aborted transactions of markers it removed. */
    char tx[PATH_MAX];
    snprintf(tx, sizeof(tx), "%s.txnindex", active_seg(log)->base_path);
    if (txnindex_truncate(tx, leo(log)) < 0)
        LOG_WARN(log->who, "Could not truncate %s to %" PRId64 ": %s", tx, leo(log), strerror(errno));
    *out = log;
    return KERR_NONE;
}

/* ---- append ---- */

/* Writes one validated batch at the log end, rolling first when due. A leader's batch (assign)
 * gets its offsets, the leader epoch and for LogAppendTime the time; a follower's is written as
 * it came (its base offset is the log end). Under the lock. */
static int append_locked(struct plog *log, uint8_t *batch, size_t len, struct batch_header *h,
                         int64_t now, bool assign, struct log_append_info *info)
{
    bool lat = assign && log->cfg.timestamp_type == LOG_TS_LOG_APPEND_TIME;
    if (lat)
        h->max_timestamp = now;
    struct segment *s = active_seg(log);
    if (should_roll(log, s, len, h, now)) {
        if (roll(log, now) < 0)
            return KERR_KAFKA_STORAGE_ERROR;
        s = active_seg(log);
    }
    int64_t base = s->next_offset;
    if (assign) {
        batch_assign(batch, len, base, log->leader_epoch, lat, now);
        h->base_offset = base;
        h->partition_leader_epoch = log->leader_epoch;
    }
    GREGOR_ASSERT(h->base_offset == base); /* offsets only grow, without gaps */
    if (segment_append(s, batch, len, h) < 0) {
        LOG_ERROR(log->who, "Error while appending %zu bytes at offset %" PRId64 " to %s.log: %s",
                  len, base, s->base_path, strerror(errno));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (info != NULL) {
        info->base_offset = base;
        info->last_offset = batch_last_offset(h);
        info->log_append_time = lat ? now : -1;
        info->log_start_offset = log->log_start;
    }
    return KERR_NONE;
}

int plog_append(struct plog *log, uint8_t *batch, size_t len, int64_t now,
                struct log_append_info *info)
{
    lock(log);
    int rc = batch_validate_client(batch, len, log->cfg.max_message_bytes);
    if (rc == KERR_NONE) {
        struct batch_header h;
        batch_header_decode(batch, &h);
        rc = append_locked(log, batch, len, &h, now, true, info);
    }
    unlock(log);
    return rc;
}

static int find_segment(const struct plog *log, int64_t offset);

int plog_append_marker(struct plog *log, uint8_t *batch, size_t len, int64_t now,
                       struct log_append_info *info)
{
    if (len < BATCH_HEADER_SIZE)
        return KERR_CORRUPT_MESSAGE;
    struct batch_header h;
    batch_header_decode(batch, &h);
    GREGOR_ASSERT((h.attributes & BATCH_ATTR_CONTROL) && h.records_count == 1 &&
                  (uint64_t)batch_total_size(&h) == len);
    lock(log);
    int rc = append_locked(log, batch, len, &h, now, true, info);
    unlock(log);
    return rc;
}

static int txnindex_append_locked(struct plog *log, const struct txnindex_entry *e, bool sync)
{
    struct segment *s = log->segs[find_segment(log, e->last_offset)];
    char tx[PATH_MAX];
    snprintf(tx, sizeof(tx), "%s.txnindex", s->base_path);
    int rc = KERR_NONE;
    if (txnindex_append(tx, e, sync) < 0) {
        LOG_ERROR(log->who, "Error while appending the aborted transaction of producer %" PRId64
                  " (%" PRId64 "-%" PRId64 ") to %s: %s", e->producer_id, e->first_offset,
                  e->last_offset, tx, strerror(errno));
        rc = KERR_KAFKA_STORAGE_ERROR;
    }
    return rc;
}

int plog_txnindex_append(struct plog *log, const struct txnindex_entry *e)
{
    lock(log);
    int rc = txnindex_append_locked(log, e, false);
    unlock(log);
    return rc;
}

int plog_txnindex_ensure(struct plog *log, const struct txnindex_entry *e)
{
    lock(log);
    struct segment *s = log->segs[find_segment(log, e->last_offset)];
    char tx[PATH_MAX];
    snprintf(tx, sizeof(tx), "%s.txnindex", s->base_path);
    int rc = KERR_NONE;
    if (!txnindex_has(tx, e->last_offset)) {
        LOG_INFO(log->who, "Rebuilding the aborted transaction of producer %" PRId64 " (%" PRId64
                 "-%" PRId64 ") in %s", e->producer_id, e->first_offset, e->last_offset, tx);
        rc = txnindex_append_locked(log, e, true);
    }
    unlock(log);
    return rc;
}

int plog_collect_aborted(struct plog *log, int64_t fetch_offset, int64_t upper,
                         struct txnindex_entry *out, int max, int *n)
{
    *n = 0;
    lock(log);
    int rc = KERR_NONE;
    bool complete = false;
    /* A transaction overlapping [fetch_offset, upper) ends at or past fetch_offset, and its
     * entry is in the segment of its marker: the segment holding fetch_offset or a later one. */
    for (int i = find_segment(log, fetch_offset); i < log->nsegs && !complete && *n < max; i++) {
        char tx[PATH_MAX];
        snprintf(tx, sizeof(tx), "%s.txnindex", log->segs[i]->base_path);
        if (txnindex_collect(tx, fetch_offset, upper, out, max, n, &complete) < 0) {
            rc = KERR_KAFKA_STORAGE_ERROR;
            break;
        }
    }
    unlock(log);
    return rc;
}

void plog_set_leader_epoch(struct plog *log, int32_t epoch)
{
    lock(log);
    GREGOR_ASSERT(epoch >= log->leader_epoch);
    log->leader_epoch = epoch;
    unlock(log);
}

int plog_append_follower(struct plog *log, const uint8_t *batch, size_t len,
                         struct log_append_info *info)
{
    if (len < BATCH_HEADER_SIZE)
        return KERR_CORRUPT_MESSAGE;
    struct batch_header h;
    batch_header_decode(batch, &h);
    if (h.magic != BATCH_MAGIC_V2 || h.length < BATCH_MIN_LENGTH ||
        (uint64_t)batch_total_size(&h) != len || batch_compute_crc(batch, len) != h.crc)
        return KERR_CORRUPT_MESSAGE;
    if (h.last_offset_delta < 0)
        return KERR_INVALID_RECORD;
    lock(log);
    int rc = KERR_OFFSET_OUT_OF_RANGE; /* a gap or an overlap: the follower truncates first */
    if (h.base_offset == leo(log))
        rc = append_locked(log, (uint8_t *)batch, len, &h, now_ms(), false, info);
    unlock(log);
    return rc;
}

/* Drops the newest segment (all its offsets are being truncated away). */
static void drop_last_segment(struct plog *log, int64_t now)
{
    struct segment *s = active_seg(log);
    log->nsegs--;
    log->layout_epoch++;
    delete_segment(log, s, now, NULL); /* rare (a follower truncating): done here */
}

int plog_truncate_to(struct plog *log, int64_t offset)
{
    lock(log);
    if (offset >= leo(log)) {
        unlock(log);
        return KERR_NONE;
    }
    if (offset < log->log_start) {
        unlock(log);
        return KERR_OFFSET_OUT_OF_RANGE;
    }
    int64_t now = now_ms();
    int64_t t0 = mono_ms();
    log->layout_epoch++; /* a clean of these segments must not swap in what was cut */
    while (log->nsegs > 1 && active_seg(log)->base_offset >= offset)
        drop_last_segment(log, now);
    struct segment *s = active_seg(log);
    int rc = KERR_NONE;
    int64_t pos = 0, cut = 0;
    const char *why = NULL;
    if (!s->active && segment_make_active(s) < 0)
        rc = KERR_KAFKA_STORAGE_ERROR;
    seg_forget(log, s);
    /* The batch holding offset goes whole (Kafka's LogSegment.truncateTo); the indexes are
     * rebuilt by a scan of what is left (bounded by segment.bytes: this is replication's rare
     * path, never a produce's). */
    if (rc == KERR_NONE &&
        (segment_find_position(s, offset, &pos, NULL) < 0 || segment_truncate(s, pos) < 0 ||
         segment_recover(s, s->base_offset, &cut, &why) < 0))
        rc = KERR_KAFKA_STORAGE_ERROR;
    char tx[PATH_MAX];
    snprintf(tx, sizeof(tx), "%s.txnindex", s->base_path);
    if (rc == KERR_NONE && txnindex_truncate(tx, offset) < 0)
        rc = KERR_KAFKA_STORAGE_ERROR;
    if (rc != KERR_NONE)
        LOG_ERROR(log->who, "Error while truncating to offset %" PRId64 ": %s", offset, strerror(errno));
    if (log->flushed_offset > leo(log))
        log->flushed_offset = leo(log);
    log->dir_dirty = true;
    GREGOR_ASSERT(leo(log) <= offset || rc != KERR_NONE);
    LOG_INFO(log->who, "Truncated to offset %" PRId64 " (log end %" PRId64 ") in %" PRId64 " ms",
             offset, leo(log), mono_ms() - t0);
    unlock(log);
    return rc;
}

/* ---- reads ---- */

/* Index of the segment holding offset: the last one with base <= offset. */
static int find_segment(const struct plog *log, int64_t offset)
{
    int lo = 0, hi = log->nsegs - 1, found = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

int plog_read(struct plog *log, int64_t offset, int32_t max_bytes, int64_t end_offset,
              struct log_slice *out)
{
    out->fd = -1;
    out->position = 0;
    out->len = 0;
    out->next_offset = offset;
    lock(log);
    int64_t end = leo(log);
    if (offset < log->log_start || offset > end) {
        unlock(log);
        return KERR_OFFSET_OUT_OF_RANGE;
    }
    if (end_offset > end)
        end_offset = end;
    if (offset >= end_offset) {
        unlock(log);
        return KERR_NONE;
    }
    for (int i = find_segment(log, offset); i < log->nsegs; i++) {
        struct segment *s = log->segs[i];
        int64_t pos, len, next = offset;
        seg_use(log, s);
        if (segment_find_position(s, offset, &pos, NULL) < 0 ||
            segment_read_len(s, pos, max_bytes, end_offset, &len, &next) < 0) {
            LOG_ERROR(log->who, "Error while reading %s.log at offset %" PRId64 ": %s", s->base_path,
                      offset, strerror(errno));
            unlock(log);
            return KERR_KAFKA_STORAGE_ERROR;
        }
        if (s->index_suspect) {
            LOG_WARN(log->who, "Offset index of %s.log does not match the log; reads scan the segment "
                     "until the index is rebuilt", s->base_path);
            s->index_suspect = false;
        }
        if (pos >= s->size)
            continue; /* offset lies past this segment's batches: the next one has it */
        if (len > 0) {
            /* The dup is the caller's: it outlives this segment's own descriptor. */
            int fd = segment_log_fd(s);
            out->fd = fd >= 0 ? fio_dup(fd) : -1;
            if (out->fd < 0) {
                LOG_ERROR(log->who, "dup failed: %s", strerror(errno));
                unlock(log);
                return KERR_KAFKA_STORAGE_ERROR;
            }
            out->position = (off_t)pos;
            out->len = (size_t)len;
            out->next_offset = next;
            GREGOR_ASSERT(next > offset && next <= end_offset);
        }
        break;
    }
    unlock(log);
    return KERR_NONE;
}

int64_t plog_start_offset(const struct plog *log)
{
    lock(log);
    int64_t v = log->log_start;
    unlock(log);
    return v;
}

int64_t plog_end_offset(const struct plog *log)
{
    lock(log);
    int64_t v = leo(log);
    unlock(log);
    return v;
}

int64_t plog_flushed_offset(const struct plog *log)
{
    lock(log);
    int64_t v = log->flushed_offset;
    unlock(log);
    return v;
}

int64_t plog_size_bytes(const struct plog *log)
{
    lock(log);
    int64_t v = 0;
    for (int i = 0; i < log->nsegs; i++)
        v += log->segs[i]->size;
    unlock(log);
    return v;
}

int plog_segment_offsets(const struct plog *log, int64_t *out, int max)
{
    lock(log);
    int n = 0;
    const struct segment *last = log->nsegs > 0 ? log->segs[log->nsegs - 1] : NULL;
    if (last != NULL && last->next_offset > last->base_offset && n < max)
        out[n++] = last->next_offset;
    for (int i = log->nsegs - 1; i >= 0 && n < max; i--)
        out[n++] = log->segs[i]->base_offset > log->log_start ? log->segs[i]->base_offset
                                                              : log->log_start;
    unlock(log);
    return n;
}

int plog_segment_count(const struct plog *log)
{
    lock(log);
    int n = log->nsegs;
    unlock(log);
    return n;
}

int plog_offset_for_timestamp(struct plog *log, int64_t ts, int64_t *found_offset, int64_t *found_ts)
{
    *found_offset = -1;
    *found_ts = -1;
    lock(log);
    int rc = KERR_NONE;
    if (ts == -2) { /* EARLIEST */
        *found_offset = log->log_start;
    } else if (ts == -1) { /* LATEST */
        *found_offset = leo(log);
    } else if (ts == -3) { /* MAX_TIMESTAMP (KIP-734) */
        struct segment *best = NULL;
        for (int i = 0; i < log->nsegs; i++)
            if (log->segs[i]->max_timestamp >= 0 &&
                (best == NULL || log->segs[i]->max_timestamp > best->max_timestamp))
                best = log->segs[i];
        if (best != NULL)
            seg_use(log, best);
        if (best != NULL && segment_find_max_timestamp(best, found_offset, found_ts) < 0)
            rc = KERR_KAFKA_STORAGE_ERROR;
    } else if (ts >= 0) {
        for (int i = 0; i < log->nsegs; i++) {
            struct segment *s = log->segs[i];
            if (s->max_timestamp < ts || s->next_offset <= log->log_start)
                continue;
            seg_use(log, s);
            int r = segment_find_timestamp(s, ts, log->log_start, found_offset, found_ts);
            if (r < 0) {
                rc = KERR_KAFKA_STORAGE_ERROR;
                break;
            }
            if (r == 1)
                break;
        }
    }
    if (rc != KERR_NONE)
        LOG_ERROR(log->who, "Error while looking up timestamp %" PRId64 ": %s", ts, strerror(errno));
    unlock(log);
    return rc;
}

/* ---- flush ---- */

int plog_flush(struct plog *log)
{
    lock(log);
    int64_t target = leo(log);
    bool dir = log->dir_dirty;
    if (log->flushed_offset >= target && !dir) {
        unlock(log);
        return KERR_NONE;
    }
    /* Sync dups outside the lock, so appends go on while the disk works (group commit). */
    int fds[3 * 64], nfds = 0;
    for (int i = 0; i < log->nsegs; i++) {
        struct segment *s = log->segs[i];
        if (s->next_offset <= log->flushed_offset)
            continue;
        if (nfds + 3 > (int)ARRAY_LEN(fds)) {
            target = s->base_offset; /* more unflushed segments than one round: the rest next time */
            break;
        }
        int lfd = segment_log_fd(s);
        int fd = lfd >= 0 ? fio_dup(lfd) : -1;
        if (fd >= 0)
            fds[nfds++] = fd;
        else
            goto fail_locked;
        if (!s->active) {
            int oi = index_fd(&s->oi), ti = oi >= 0 ? index_fd(&s->ti) : -1;
            int a = oi >= 0 ? fio_dup(oi) : -1, b = a >= 0 && ti >= 0 ? fio_dup(ti) : -1;
            if (a >= 0)
                fds[nfds++] = a;
            if (b >= 0)
                fds[nfds++] = b;
            seg_done(log, s); /* the dups carry the sync; this segment's own fds go back */
            if (a < 0 || b < 0)
                goto fail_locked;
        }
    }
    log->dir_dirty = false;
    unlock(log);
    int err = 0;
    for (int i = 0; i < nfds; i++) {
        if (err == 0 && fio_fdatasync(fds[i]) < 0)
            err = errno;
        fio_close(fds[i]);
    }
    if (err == 0 && dir && fio_fsync_dir(log->dir) < 0)
        err = errno;
    lock(log);
    if (err != 0) {
        log->dir_dirty = log->dir_dirty || dir;
        LOG_ERROR(log->who, "Error while flushing log: %s", strerror(err));
        unlock(log);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (target > log->flushed_offset)
        log->flushed_offset = target;
    log->last_flush_ms = now_ms();
    unlock(log);
    return KERR_NONE;

fail_locked: {
        int saved = errno;
        for (int i = 0; i < nfds; i++)
            fio_close(fds[i]);
        LOG_ERROR(log->who, "Error while flushing log: %s", strerror(saved));
        unlock(log);
        return KERR_KAFKA_STORAGE_ERROR;
    }
}

bool plog_roll_flush_due(const struct plog *log)
{
    lock(log);
    bool due = log->rolled_at > log->flushed_offset;
    unlock(log);
    return due;
}

bool plog_flush_due(const struct plog *log, int64_t now)
{
    lock(log);
    int64_t unflushed = leo(log) - log->flushed_offset;
    bool due = unflushed > 0 &&
               (unflushed >= log->cfg.flush_messages || now - log->last_flush_ms >= log->cfg.flush_ms);
    unlock(log);
    return due;
}

/* ---- retention and DeleteRecords ---- */

static int64_t segment_largest_timestamp(const struct segment *s)
{
    if (s->max_timestamp >= 0)
        return s->max_timestamp;
    struct stat st;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s.log", s->base_path);
    if (fio_stat(p, &st) < 0) /* by name: an old segment holds no descriptor */
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Deletes oldest segments while one of the retention rules says so; only_start limits it to
 * segments wholly below the log start offset. Returns how many went. */
static int delete_old_segments(struct plog *log, int64_t now, bool only_start,
                               struct plog_trash *t)
{
    int deleted = 0;
    int64_t total = 0;
    for (int i = 0; i < log->nsegs; i++)
        total += log->segs[i]->size;
    while (log->nsegs > 0) {
        struct segment *s = log->segs[0];
        bool last = log->nsegs == 1;
        if (last && s->size == 0)
            break;
        int64_t upper = last ? leo(log) : log->segs[1]->base_offset;
        const char *reason = NULL;
        char buf[160];
        int64_t largest = segment_largest_timestamp(s);
        if (upper <= log->log_start) {
            snprintf(buf, sizeof(buf), "log start offset %" PRId64 " breach", log->log_start);
            reason = buf;
        } else if (!only_start && log->cfg.retention_ms >= 0 && largest >= 0 &&
                   now - largest > log->cfg.retention_ms) {
            snprintf(buf, sizeof(buf),
                     "log retention time %" PRId64 "ms breach based on the largest record timestamp in the segment",
                     log->cfg.retention_ms);
            reason = buf;
        } else if (!only_start && log->cfg.retention_bytes >= 0 &&
                   total - s->size >= log->cfg.retention_bytes) {
            snprintf(buf, sizeof(buf), "log retention size %" PRId64 " breach. Log size after deletion will be %" PRId64 ".",
                     log->cfg.retention_bytes, total - s->size);
            reason = buf;
        }
        if (reason == NULL)
            break;
        if (last && roll(log, now) < 0)
            break; /* always keep one segment: roll first, as Kafka does */
        LOG_INFO(log->who,
                 "Deleting segment LogSegment(baseOffset=%" PRId64 ", size=%" PRId64
                 ", largestRecordTimestamp=%" PRId64 ") due to %s",
                 s->base_offset, s->size, s->max_timestamp, reason);
        total -= s->size;
        segs_remove_first(log);
        delete_segment(log, s, now, t);
        deleted++;
        if (log->segs[0]->base_offset > log->log_start) {
            log->log_start = log->segs[0]->base_offset;
            LOG_INFO(log->who, "Incremented log start offset to %" PRId64 " due to SegmentDeletion",
                     log->log_start);
        }
    }
    return deleted;
}

int plog_retention_detach(struct plog *log, int64_t now, struct plog_trash **out)
{
    *out = NULL;
    struct plog_trash *t = calloc(1, sizeof(*t));
    lock(log);
    if (t != NULL)
        memcpy(t->who, log->who, sizeof(t->who));
    run_pending_deletes(log, now, false, t);
    int n = delete_old_segments(log, now, false, t);
    unlock(log);
    if (t != NULL && t->nsegs == 0 && t->nunlink == 0) {
        plog_trash_dispose(t);
        t = NULL;
    }
    *out = t;
    return n;
}

int plog_enforce_retention(struct plog *log, int64_t now)
{
    struct plog_trash *t;
    int n = plog_retention_detach(log, now, &t);
    plog_trash_dispose(t);
    return n;
}

int plog_delete_records(struct plog *log, int64_t offset, int64_t *new_start)
{
    lock(log);
    int64_t end = leo(log);
    if (offset == -1)
        offset = end; /* Kafka: -1 = the high watermark, which is the log end here */
    if (offset < 0 || offset > end) {
        unlock(log);
        return KERR_OFFSET_OUT_OF_RANGE;
    }
    if (offset > log->log_start) {
        log->log_start = offset;
        LOG_INFO(log->who, "Incremented log start offset to %" PRId64 " due to ClientRecordDeletion",
                 offset);
        delete_old_segments(log, now_ms(), true, NULL);
    }
    if (new_start != NULL)
        *new_start = log->log_start;
    unlock(log);
    return KERR_NONE;
}

int plog_maybe_roll(struct plog *log, int64_t now)
{
    lock(log);
    struct segment *s = active_seg(log);
    int rc = KERR_NONE;
    int64_t waited = s->first_batch_timestamp >= 0 ? now - s->first_batch_timestamp : now - s->created_ms;
    if (s->size > 0 && waited > log->cfg.segment_ms && roll(log, now) < 0)
        rc = KERR_KAFKA_STORAGE_ERROR;
    unlock(log);
    return rc;
}

void plog_set_config(struct plog *log, const struct log_config *cfg)
{
    lock(log);
    log->cfg = *cfg;
    for (int i = 0; i < log->nsegs; i++)
        log->segs[i]->index_interval_bytes = cfg->index_interval_bytes;
    unlock(log);
}

int plog_close(struct plog *log)
{
    int rc = plog_flush(log);
    lock(log);
    for (int i = 0; i < log->nsegs; i++) {
        struct segment *s = log->segs[i];
        bool was_active = s->active;
        if (was_active && segment_make_inactive(s) < 0)
            rc = KERR_KAFKA_STORAGE_ERROR;
        /* The final time-index entry and the trims must be durable for a scan-free open. */
        if (was_active && (fio_fdatasync(index_fd(&s->oi)) < 0 || fio_fdatasync(index_fd(&s->ti)) < 0))
            rc = KERR_KAFKA_STORAGE_ERROR;
        if (segment_close(s, false) < 0)
            rc = KERR_KAFKA_STORAGE_ERROR;
    }
    log->nsegs = 0;
    log->nopen_inactive = 0;
    if (rc != KERR_NONE)
        LOG_ERROR(log->who, "Error while closing log: %s", kerr_name(rc));
    unlock(log);
    free_log(log);
    return rc;
}

int plog_delete(struct plog *log)
{
    lock(log);
    for (int i = 0; i < log->nsegs; i++)
        segment_close(log->segs[i], false);
    log->nsegs = 0;
    log->nopen_inactive = 0;
    run_pending_deletes(log, 0, true, NULL);
    int rc = fio_remove_dir(log->dir) < 0 ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE;
    if (rc != KERR_NONE)
        LOG_ERROR(log->who, "Error while deleting %s: %s", log->dir, strerror(errno));
    else
        LOG_INFO(log->who, "Deleted log for partition in %s", log->dir);
    unlock(log);
    free_log(log);
    return rc;
}

int plog_retire(struct plog *log, const char *to)
{
    lock(log);
    for (int i = 0; i < log->nsegs; i++)
        segment_close(log->segs[i], false);
    log->nsegs = 0;
    log->nopen_inactive = 0;
    /* Segments waiting for file.delete.delay.ms go with the directory. */
    for (int i = 0; i < log->npending; i++)
        free(log->pending[i].base_path);
    log->npending = 0;
    int rc = KERR_NONE;
    if (fio_rename(log->dir, to) < 0) {
        LOG_ERROR(log->who, "Could not rename %s to %s for deletion: %s; deleting it in place",
                  log->dir, to, strerror(errno));
        rc = KERR_KAFKA_STORAGE_ERROR;
        if (fio_remove_dir(log->dir) < 0)
            LOG_ERROR(log->who, "Error while deleting %s: %s", log->dir, strerror(errno));
    }
    unlock(log);
    free_log(log);
    return rc;
}

void plog_release_fds(struct plog *log)
{
    lock(log);
    for (int i = 0; i < log->nsegs; i++)
        segment_release_fds(log->segs[i]);
    log->nopen_inactive = 0;
    unlock(log);
}

/* ---- the log cleaner's hooks ---- */

int plog_cleaner_view(struct plog *log, struct plog_cleaner_view *v)
{
    memset(v, 0, sizeof(*v));
    lock(log);
    int n = log->nsegs - 1; /* the active segment is never cleaned */
    v->dir = strdup(log->dir);
    v->segs = n > 0 ? calloc((size_t)n, sizeof(*v->segs)) : NULL;
    if (v->dir == NULL || (n > 0 && v->segs == NULL)) {
        unlock(log);
        plog_cleaner_view_free(v);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    memcpy(v->who, log->who, sizeof(v->who));
    v->cfg = log->cfg;
    v->log_start = log->log_start;
    v->active_base = active_seg(log)->base_offset;
    v->end_offset = leo(log);
    v->layout_epoch = log->layout_epoch;
    for (int i = 0; i < n; i++) {
        const struct segment *s = log->segs[i];
        GREGOR_ASSERT(!s->active);
        v->segs[i] = (struct plog_segment_info){
            .base_offset = s->base_offset,
            .next_offset = s->next_offset,
            .size = s->size,
            .max_timestamp = s->max_timestamp,
            .first_batch_timestamp = s->first_batch_timestamp,
            .offset_index_bytes = (int64_t)s->oi.entries * OFFSET_INDEX_ENTRY_SIZE,
            .time_index_bytes = (int64_t)s->ti.entries * TIME_INDEX_ENTRY_SIZE,
        };
    }
    v->nsegs = n;
    unlock(log);
    return KERR_NONE;
}

void plog_cleaner_view_free(struct plog_cleaner_view *v)
{
    free(v->dir);
    free(v->segs);
    v->dir = NULL;
    v->segs = NULL;
    v->nsegs = 0;
}

static const char *const segment_suffixes[] = {".log", ".index", ".timeindex"};

/* Renames <base><sfx><from> to <base><sfx><to> for the three files. Stops at the first error. */
static int rename_suffixes(const char *base_path, const char *from, const char *to)
{
    for (size_t i = 0; i < ARRAY_LEN(segment_suffixes); i++) {
        char a[PATH_MAX + 32], b[PATH_MAX + 32];
        snprintf(a, sizeof(a), "%s%s%s", base_path, segment_suffixes[i], from);
        snprintf(b, sizeof(b), "%s%s%s", base_path, segment_suffixes[i], to);
        if (fio_rename(a, b) < 0)
            return -1;
    }
    return 0;
}

static void unlink_suffixes(const char *base_path, const char *suffix)
{
    for (size_t i = 0; i < ARRAY_LEN(segment_suffixes); i++) {
        char a[PATH_MAX + 32];
        snprintf(a, sizeof(a), "%s%s%s", base_path, segment_suffixes[i], suffix);
        fio_unlink(a);
    }
}

/* Index of the segment whose base is base, -1 when none. */
static int segment_at_base(const struct plog *log, int64_t base)
{
    int i = find_segment(log, base);
    return log->nsegs > 0 && log->segs[i]->base_offset == base ? i : -1;
}

/* After the commit point: old segments to .deleted, .swap to live, the new segment in. */
/* The aborted transactions of the nold segments from at go to the first one's .txnindex, which
 * the cleaned segment (the same base) keeps: the others' files go. Kafka writes them into the
 * .cleaned segment's index instead (swapped with it): here a crash between the two steps
 * leaves an entry twice or in a file nothing reads, never one lost before the swap. */
static int merge_txnindexes(struct plog *log, int at, int nold)
{
    char first[PATH_MAX];
    snprintf(first, sizeof(first), "%s.txnindex", log->segs[at]->base_path);
    for (int k = at + 1; k < at + nold; k++) {
        char tx[PATH_MAX];
        snprintf(tx, sizeof(tx), "%s.txnindex", log->segs[k]->base_path);
        struct txnindex_entry *e;
        int n;
        if (txnindex_read(tx, &e, &n) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (!txnindex_has(first, e[i].last_offset) && txnindex_append(first, &e[i], true) < 0) {
                free(e);
                return -1;
            }
        free(e);
        if (fio_unlink(tx) < 0 && errno != ENOENT)
            return -1;
    }
    return 0;
}

static int swap_in_locked(struct plog *log, int at, int nold, const char *base_path, int64_t now)
{
    if (merge_txnindexes(log, at, nold) < 0) {
        LOG_ERROR(log->who, "Could not merge the .txnindex files of the segments cleaned from %s: %s",
                  log->segs[at]->base_path, strerror(errno));
        return -1;
    }
    for (int k = at; k < at + nold; k++) {
        struct segment *s = log->segs[k];
        if (rename_suffixes(s->base_path, "", ".deleted") < 0) {
            LOG_ERROR(log->who, "Could not rename segment %s to .deleted during a swap: %s",
                      s->base_path, strerror(errno));
            return -1;
        }
    }
    if (rename_suffixes(base_path, ".swap", "") < 0) {
        LOG_ERROR(log->who, "Could not rename %s.*.swap to the live names: %s", base_path,
                  strerror(errno));
        return -1;
    }
    struct segment *n;
    const char *why = NULL;
    int64_t base = log->segs[at]->base_offset, cut = 0;
    if (segment_open(log->dir, base, log->cfg.index_interval_bytes, log->cfg.segment_index_bytes,
                     now, &n) < 0) {
        LOG_ERROR(log->who, "Could not open the cleaned segment %s: %s", base_path, strerror(errno));
        return -1;
    }
    int lr = segment_load(n, &why);
    if (lr != 0 && (lr < 0 || segment_recover(n, base, &cut, &why) < 0 ||
                    segment_make_inactive(n) < 0)) {
        LOG_ERROR(log->who, "Could not load the cleaned segment %s: %s", base_path,
                  why ? why : strerror(errno));
        segment_close(n, false);
        return -1;
    }
    GREGOR_ASSERT(at + nold >= log->nsegs || n->next_offset <= log->segs[at + nold]->base_offset);
    for (int k = at; k < at + nold; k++) {
        struct segment *s = log->segs[k];
        seg_forget(log, s);
        schedule_unlink(log, strdup(s->base_path), now, NULL);
        segment_close(s, false);
    }
    segment_release_fds(n);
    log->segs[at] = n;
    memmove(log->segs + at + 1, log->segs + at + nold,
            (size_t)(log->nsegs - at - nold) * sizeof(*log->segs));
    log->nsegs -= nold - 1;
    return 0;
}

int plog_replace_segments(struct plog *log, uint64_t layout_epoch, int64_t first_base, int nold,
                          bool *aborted, int64_t *held_us)
{
    *aborted = false;
    char base_path[PATH_MAX];
    if (segment_file_name(base_path, sizeof(base_path), log->dir, first_base, "") < 0)
        return KERR_KAFKA_STORAGE_ERROR;
    int64_t now = now_ms();
    lock(log);
    int64_t t0 = mono_us();
    int at = segment_at_base(log, first_base);
    if (layout_epoch != log->layout_epoch || at < 0 || nold < 1 || at + nold >= log->nsegs) {
        *held_us = mono_us() - t0;
        unlock(log);
        LOG_INFO(log->who, "Cleaning of segments from %" PRId64 " aborted: the log changed meanwhile",
                 first_base);
        unlink_suffixes(base_path, ".cleaned");
        *aborted = true;
        return KERR_NONE;
    }
    for (int k = at; k < at + nold; k++)
        GREGOR_ASSERT(!log->segs[k]->active);
    /* The .log goes first: a .log.swap is what makes a crash complete the swap. */
    if (rename_suffixes(base_path, ".cleaned", ".swap") < 0 || fio_fsync_dir(log->dir) < 0) {
        int saved = errno;
        unlink_suffixes(base_path, ".swap");
        unlink_suffixes(base_path, ".cleaned");
        *held_us = mono_us() - t0;
        unlock(log);
        LOG_ERROR(log->who, "Could not rename the cleaned segment %s to .swap: %s", base_path,
                  strerror(saved));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    log->layout_epoch++;
    log->dir_dirty = true;
    int rc = swap_in_locked(log, at, nold, base_path, now);
    *held_us = mono_us() - t0;
    unlock(log);
    if (rc < 0) {
        LOG_ERROR(log->who, "Swap of the cleaned segment %s failed after its .swap was written; "
                  "the swap completes when the log is opened again", base_path);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    return KERR_NONE;
}
