/* cleaner: log compaction of one partition log, as Kafka's LogCleaner — which section of a log
 * is cleanable and how dirty it is, the bounded offset map, the rewrite of segment groups into
 * <base>.log.cleaned, the swap, and the cleaner-offset-checkpoint file of a log dir. */
#ifndef GREGOR_LOG_CLEANER_H
#define GREGOR_LOG_CLEANER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"

/* The per-topic compaction settings (Kafka's topic configs of the same names). */
struct cleaner_config {
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio, 0.5 */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms, 0 */
    int64_t max_compaction_lag_ms;    /* max.compaction.lag.ms, INT64_MAX */
    int64_t delete_retention_ms;      /* delete.retention.ms, 86400000 */
};
void cleaner_config_defaults(struct cleaner_config *cc);

/* log.cleaner.dedupe.buffer.size (134217728) / log.cleaner.threads and
 * log.cleaner.io.buffer.load.factor (0.9): the defaults the broker divides. */
#define CLEANER_DEDUPE_BUFFER_DEFAULT ((size_t)134217728)
#define CLEANER_LOAD_FACTOR_DEFAULT 0.9
/* log.cleaner.io.buffer.size (524288): the read window; a larger batch grows it up to
 * max(max.message.bytes, CLEANER_IO_BUFFER_MAX) for that batch, as Kafka's growBuffers. */
#define CLEANER_IO_BUFFER_DEFAULT ((size_t)524288)
#define CLEANER_IO_BUFFER_MAX ((size_t)64 << 20)

/* ---- which logs need cleaning (LogCleanerManager.cleanableOffsets / cleanableRatio) ---- */

struct cleaner_dirty {
    int64_t first_dirty_offset;       /* the checkpoint, or the log start when it is not usable */
    int64_t first_uncleanable_offset; /* a segment base: min(active base, the segment holding the
                                       * high watermark, the first segment younger than
                                       * min.compaction.lag.ms) */
    int64_t clean_bytes;              /* bytes of the segments below the first dirty offset */
    int64_t cleanable_bytes;          /* bytes of the segments in [first dirty, first uncleanable) */
    double dirty_ratio;               /* cleanable / (clean + cleanable); 0 when both are 0 */
    bool compaction_due;              /* max.compaction.lag.ms passed for the first dirty segment */
    bool needs_cleaning;              /* ratio > min.cleanable.dirty.ratio, or due with bytes */
};

/* Looks at log now (under its lock, no I/O): checkpoint is the cleaner's first dirty offset
 * (-1 when unknown), high_watermark bounds what may be cleaned (Kafka cleans below the last
 * stable offset). The caller picks the log with the highest dirty_ratio among those that need
 * cleaning (LogCleanerManager.grabFilthiestCompactedLog). */
void cleaner_examine(struct plog *log, int64_t checkpoint, int64_t high_watermark,
                     const struct cleaner_config *cc, int64_t now_ms, struct cleaner_dirty *out);

/* ---- the offset map (SkimpyOffsetMap): bounded memory, keys hashed ---- */

struct cleaner_map;
/* A map over bytes of memory (one per cleaner thread: dedupe buffer / threads), filled up to
 * load_factor of its slots. Each slot is a 16-byte SipHash-2-4-128 of the key under a random
 * per-map key (so keys cannot be crafted to collide) plus its latest offset. NULL when bytes
 * hold fewer than 2 usable slots or out of memory. */
struct cleaner_map *cleaner_map_create(size_t bytes, double load_factor);
void cleaner_map_free(struct cleaner_map *m);
void cleaner_map_clear(struct cleaner_map *m);
/* Puts key -> offset (replacing the key's offset). False when the map is full (nothing put). */
bool cleaner_map_put(struct cleaner_map *m, const void *key, size_t len, int64_t offset);
/* The key's latest offset, -1 when absent. */
int64_t cleaner_map_get(const struct cleaner_map *m, const void *key, size_t len);
int64_t cleaner_map_size(const struct cleaner_map *m);
int64_t cleaner_map_capacity(const struct cleaner_map *m); /* slots * load factor */
int64_t cleaner_map_latest_offset(const struct cleaner_map *m); /* -1 when nothing mapped */

/* ---- cleaning ---- */

/* An idempotent or transactional producer still known to the partition's producer state, and
 * the last offset of its last data batch: that batch is kept (empty if need be) so its sequence
 * and epoch survive (Kafka's lastRecordsOfActiveProducers). */
struct cleaner_producer {
    int64_t producer_id;
    int64_t last_data_offset;
};

struct cleaner_job {
    struct cleaner_map *map;          /* borrowed; cleared at the start */
    int64_t now_ms;                   /* the time the clean starts (delete horizons) */
    const struct cleaner_producer *producers; /* borrowed, nproducers of them */
    int nproducers;
    size_t io_buffer_bytes;           /* read window (0: CLEANER_IO_BUFFER_DEFAULT) */
    /* log.cleaner.io.max.bytes.per.second: called with the bytes read or written since the last
     * call; it may sleep (the cleaner runs on its own thread). NULL: unthrottled. */
    void (*throttle)(void *arg, int64_t bytes);
    void *throttle_arg;
    const atomic_bool *stop;          /* when it becomes true the clean aborts (shutdown); NULL */
};

struct cleaner_result {
    int64_t next_dirty_offset;  /* the new checkpoint: the map's last offset + 1 */
    bool aborted;               /* the log changed under the clean (truncation, retention,
                                 * DeleteRecords) or stop was set: nothing swapped past that */
    int groups;                 /* segment groups swapped in */
    int64_t bytes_read;         /* read by the rewrite, each cleaned segment once: Kafka's
                                 * bytesRead ("MB of log processed", "Start size") */
    int64_t map_bytes_read;     /* read to build the offset map (Kafka's mapBytesRead) */
    int64_t map_ms;             /* time spent building the map (Kafka's elapsedIndexSecs) */
    int64_t bytes_written;
    int64_t records_read, records_kept;
    int64_t keyless_dropped;    /* records without a key (Kafka counts them invalid) */
    int64_t tombstones_dropped;
    int64_t lock_held_max_us;   /* the longest time the log's lock was held for a swap */
    bool map_full;              /* the map filled: only a prefix of the dirty section was cleaned */
};

/* Cleans log from d (cleaner_examine's answer, taken just before): builds the map over
 * [first dirty, first uncleanable) — stopping where it fills —, then rewrites every segment
 * group below the map's end into <base>.log.cleaned (+ .index.cleaned, .timeindex.cleaned)
 * and swaps each in under the log's lock (.cleaned -> .swap, old -> .deleted, .swap -> live).
 * Runs on the caller's thread against a live log: appends, reads, retention and truncation go
 * on meanwhile; a reader's slice keeps reading the old file. One clean per log at a time.
 * Returns KERR_NONE (also when aborted: see out->aborted), KERR_CORRUPT_MESSAGE (a batch that
 * does not read back: the log should be marked uncleanable, as Kafka does) or
 * KERR_KAFKA_STORAGE_ERROR (an I/O error; when it struck mid-swap the log must be reopened:
 * plog_open completes or undoes the swap). */
int cleaner_clean(struct plog *log, const struct cleaner_dirty *d, const struct cleaner_config *cc,
                  const struct cleaner_job *job, struct cleaner_result *out);

/* ---- cleaner-offset-checkpoint (one per log dir, Kafka's format) ---- */

#define CLEANER_CHECKPOINT_FILE "cleaner-offset-checkpoint"
#define CLEANER_CHECKPOINT_MAX_BYTES (64u << 20)

struct cleaner_checkpoint_entry {
    char topic[256];
    int32_t partition;
    int64_t offset;
};

/* Parses "0\n<count>\n<topic> <partition> <offset>\n..." (len bytes, not NUL-terminated) into
 * a malloc'ed array (*out, caller frees; NULL when empty). 0, or -1 with *why on a bad file. */
int cleaner_checkpoint_parse(const char *text, size_t len, struct cleaner_checkpoint_entry **out,
                             int *n, const char **why);
/* Reads <logdir>/cleaner-offset-checkpoint: a missing file is empty; a corrupt one is logged
 * and empty (every log is then cleaned from its start, as Kafka). 0, or -1 on an I/O error. */
int cleaner_checkpoint_read(const char *logdir, struct cleaner_checkpoint_entry **out, int *n);
/* The file's text for n entries (*out malloc'ed, caller frees). 0 or -1 (ENOMEM). */
int cleaner_checkpoint_format(const struct cleaner_checkpoint_entry *e, int n, char **out,
                              size_t *len);
/* Writes it atomically (tmp, fsync, rename, fsync of the directory). 0 or -1 (errno). */
int cleaner_checkpoint_write(const char *logdir, const struct cleaner_checkpoint_entry *e, int n);
/* The entry's offset, -1 when the partition is not listed. */
int64_t cleaner_checkpoint_get(const struct cleaner_checkpoint_entry *e, int n, const char *topic,
                               int32_t partition);

#endif
