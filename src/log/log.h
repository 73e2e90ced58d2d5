/* log: the public face of storage — partition logs in Apache Kafka's exact on-disk format,
 * and the log manager that owns the log dirs. Knows nothing of sockets or the protocol. */
#ifndef GREGOR_LOG_LOG_H
#define GREGOR_LOG_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/errors.h"

enum log_timestamp_type { LOG_TS_CREATE_TIME = 0, LOG_TS_LOG_APPEND_TIME = 1 };

/* Per-topic settings (Kafka's topic configs; defaults come from the broker's log.* keys). */
struct log_config {
    int64_t segment_bytes;        /* segment.bytes, default 1 GiB */
    int64_t segment_ms;           /* segment.ms, default 7 days */
    int64_t retention_ms;         /* retention.ms, -1 = forever, default 7 days */
    int64_t retention_bytes;      /* retention.bytes per partition, -1 = unlimited */
    int32_t index_interval_bytes; /* index.interval.bytes, 4096 */
    int32_t segment_index_bytes;  /* segment.index.bytes, 10485760 */
    int32_t max_message_bytes;    /* max.message.bytes, 1048588 */
    int64_t flush_messages;       /* flush.messages, INT64_MAX = never by count */
    int64_t flush_ms;             /* flush.ms, INT64_MAX = never by time */
    enum log_timestamp_type timestamp_type; /* message.timestamp.type */
    int64_t file_delete_delay_ms; /* file.delete.delay.ms, 60000 */
    /* cleanup.policy naming compact, and the cleaner's per-topic keys (log/cleaner.h's
     * struct cleaner_config, which the broker's cleaner threads take from here). */
    bool compact;                 /* false: cleanup.policy=delete */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio, 0.5 */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms, 0 */
    int64_t max_compaction_lag_ms;    /* max.compaction.lag.ms, INT64_MAX */
    int64_t delete_retention_ms;      /* delete.retention.ms, 86400000 */
};

void log_config_defaults(struct log_config *cfg);

/* What an append did. */
struct log_append_info {
    int64_t base_offset;      /* first offset assigned */
    int64_t last_offset;
    int64_t log_append_time;  /* -1 unless LogAppendTime */
    int64_t log_start_offset;
};

/* A range of a segment file to send: fd is a dup() owned by the caller (close it). len may be
 * 0 (nothing to read at that offset yet); then fd is -1 and there is nothing to close. */
struct log_slice {
    int fd;
    off_t position;
    size_t len;
    int64_t next_offset;  /* the offset after the slice's last batch (the read offset: none) */
};

struct plog; /* one partition's log: a directory of segments */

/* Opens (creating if missing) the partition directory dir, recovering an unclean tail
 * (segments past recovery_point are scanned; torn/corrupt tail truncated with a log line;
 * missing or bad indexes rebuilt). topic/partition are for log lines. */
int plog_open(const char *dir, const char *topic, int32_t partition, const struct log_config *cfg,
              int64_t recovery_point, int64_t log_start_offset, struct plog **out);
/* recovery_point semantics (docs/STORAGE.md): pass PLOG_RECOVERY_POINT_CLEAN when the log dir
 * was shut down cleanly (logdir_was_clean): nothing is scanned beyond index sanity checks and
 * a short tail walk. Otherwise pass the checkpointed recovery point (-1 = unknown: every
 * segment is recovered); segments holding offsets >= it are scanned, except a last segment
 * that was closed cleanly and ends at or below it. Errors: KERR_KAFKA_STORAGE_ERROR. */
#define PLOG_RECOVERY_POINT_CLEAN INT64_MAX

/* Appends one client record batch (magic 2) in place: validates (size vs max.message.bytes,
 * magic, CRC32C, lastOffsetDelta vs recordsCount, ...) and rewrites baseOffset,
 * partitionLeaderEpoch (and for LogAppendTime attributes/maxTimestamp + CRC) before writing.
 * Returns KERR_NONE or KERR_CORRUPT_MESSAGE / KERR_INVALID_RECORD / KERR_MESSAGE_TOO_LARGE /
 * KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT / KERR_KAFKA_STORAGE_ERROR. On any error nothing of the
 * batch is visible to readers (a short write is truncated away). */
int plog_append(struct plog *log, uint8_t *batch, size_t len, int64_t now_ms,
                struct log_append_info *info);

/* Appends a transaction marker (a control batch of one record the partition built, trusted):
 * offsets and leader epoch assigned as plog_append. */
int plog_append_marker(struct plog *log, uint8_t *batch, size_t len, int64_t now,
                       struct log_append_info *info);
/* Aborted transactions (log/txnindex.h): appends e to the .txnindex of the segment holding
 * its marker (e->last_offset), not synced (the producer snapshot's write syncs the files
 * first); _ensure appends it, synced, only when that file lacks it (the replay at open).
 * KERR_NONE or KERR_KAFKA_STORAGE_ERROR. */
struct txnindex_entry;
int plog_txnindex_append(struct plog *log, const struct txnindex_entry *e);
int plog_txnindex_ensure(struct plog *log, const struct txnindex_entry *e);
/* Kafka's collectAbortedTransactions: from the segment holding fetch_offset on, the aborted
 * transactions overlapping [fetch_offset, upper), at most max (*n of them), until an entry's
 * last stable offset reaches upper. */
int plog_collect_aborted(struct plog *log, int64_t fetch_offset, int64_t upper,
                         struct txnindex_entry *out, int max, int *n);

/* The leader epoch stamped on the batches plog_append writes from now on (never lower). */
void plog_set_leader_epoch(struct plog *log, int32_t epoch);
/* Appends a batch as a follower does: offsets and leader epoch as the leader wrote them (CRC
 * checked, nothing rewritten). Its base offset must be the log end: a gap or an overlap is
 * KERR_OFFSET_OUT_OF_RANGE and nothing is written. */
int plog_append_follower(struct plog *log, const uint8_t *batch, size_t len,
                         struct log_append_info *info);
/* Removes every batch at or past offset (the batch holding offset goes whole, as Kafka's
 * truncateTo): the log end becomes <= offset. OFFSET_OUT_OF_RANGE below the log start. */
int plog_truncate_to(struct plog *log, int64_t offset);

/* Reads from the batch containing offset, up to max_bytes (but at least one whole batch, KIP-74)
 * and never past end_offset (exclusive; pass plog_end_offset for "all"). Returns
 * KERR_OFFSET_OUT_OF_RANGE when offset < log start or > log end. */
int plog_read(struct plog *log, int64_t offset, int32_t max_bytes, int64_t end_offset,
              struct log_slice *out);

int64_t plog_start_offset(const struct plog *log);
int64_t plog_end_offset(const struct plog *log);   /* log end offset: next offset to assign */
int64_t plog_flushed_offset(const struct plog *log); /* everything below is fdatasync'ed */
int64_t plog_size_bytes(const struct plog *log);

/* ListOffsets by timestamp: first offset whose batch max timestamp >= ts; *found_offset = -1
 * when none. ts -3 (max timestamp) returns the offset and timestamp of the largest timestamp. */
int plog_offset_for_timestamp(struct plog *log, int64_t ts, int64_t *found_offset,
                              int64_t *found_ts);

/* fdatasync everything appended so far (group commit calls this once for many batches). */
int plog_flush(struct plog *log);
/* True when a roll since the last flush left whole segments unsynced: Kafka flushes the
 * segments below a new one after each roll (off the request path; here on the I/O worker by
 * the periodic flush pass). */
bool plog_roll_flush_due(const struct plog *log);
/* True when flush.messages / flush.ms say a flush is due now. */
bool plog_flush_due(const struct plog *log, int64_t now_ms);

/* Retention: deletes whole old segments by retention.ms / retention.bytes; returns how many.
 * plog_retention_detach + plog_trash_dispose at once. */
int plog_enforce_retention(struct plog *log, int64_t now_ms);
/* Retention split for the event loop. The detach (loop thread, under the log's lock) decides
 * by the same rules, takes the expired segments out of the log (log start moves, readers no
 * longer find them; a slice already handed out holds its own descriptor and stays readable),
 * and collects the *.deleted files whose file.delete.delay.ms has passed. *out (NULL when there
 * is nothing to do) is then the caller's: plog_trash_dispose, on any thread, renames the
 * segments' files to *.deleted, closes them and unlinks what is due, then frees it. The trash
 * points at nothing of the log. Returns how many segments were detached. */
struct plog_trash;
int plog_retention_detach(struct plog *log, int64_t now_ms, struct plog_trash **out);
void plog_trash_dispose(struct plog_trash *t);
int plog_trash_segments(const struct plog_trash *t);
/* DeleteRecords: moves the log start offset forward (OFFSET_OUT_OF_RANGE past the end). */
int plog_delete_records(struct plog *log, int64_t offset, int64_t *new_start);
/* Rolls the active segment if segment.ms has passed (called from the periodic task). */
int plog_maybe_roll(struct plog *log, int64_t now_ms);

void plog_set_config(struct plog *log, const struct log_config *cfg);
/* Closes the index files' descriptors until they are needed again (idle partitions). */
void plog_release_fds(struct plog *log);
int plog_segment_count(const struct plog *log);
/* ListOffsets v0's latest offsets, as Kafka's legacy fetchOffsetsBefore lists them: the log end
 * (when the active segment holds records), then each segment's base offset (at least the log
 * start), newest first; at most max of them. Returns how many. */
int plog_segment_offsets(const struct plog *log, int64_t *out, int max);
/* Clean close: flush, trim indexes to size. Frees log. */
int plog_close(struct plog *log);
/* Closes and removes the partition directory and all its files. */
int plog_delete(struct plog *log);
/* The first half of a deletion that the caller finishes later: closes the files without
 * flushing them and renames the partition directory to `to` (a "-delete" name nothing loads),
 * so the partition's own name is free at once; fio_remove_dir(to) removes the rest. When the
 * rename fails the directory is removed in place and the error returned. Frees log. */
int plog_retire(struct plog *log, const char *to);

/* ---- the log cleaner's hooks (src/log/cleaner.c) ---- */

/* One inactive segment as the cleaner sees it. */
struct plog_segment_info {
    int64_t base_offset;
    int64_t next_offset;           /* last offset + 1; base_offset when empty */
    int64_t size;                  /* bytes of the .log */
    int64_t max_timestamp;         /* -1 none */
    int64_t first_batch_timestamp; /* -1 none */
    int64_t offset_index_bytes;
    int64_t time_index_bytes;
};

/* A copy of the log's layout taken under its lock: everything malloc'ed is the view's. */
struct plog_cleaner_view {
    char *dir;                     /* owned */
    char who[1400];                /* log-line context */
    struct log_config cfg;
    int64_t log_start;
    int64_t active_base;           /* base offset of the active segment */
    int64_t end_offset;            /* the log end offset */
    uint64_t layout_epoch;         /* changes whenever segments leave the log or are cut */
    struct plog_segment_info *segs; /* owned: the inactive segments, oldest first */
    int nsegs;
};
int plog_cleaner_view(struct plog *log, struct plog_cleaner_view *v);
void plog_cleaner_view_free(struct plog_cleaner_view *v);

/* The swap of a clean: the nold segments from the one at first_base (all inactive, the layout
 * still at layout_epoch) are replaced by the segment whose files were written as
 * <dir>/<first_base>.{log,index,timeindex}.cleaned. Under the lock, in Kafka's order: the
 * .cleaned files become .swap (directory fsync'ed: from here a crash completes the swap), the
 * old segments' files become .deleted (removed after file.delete.delay.ms), the .swap files
 * take the live names, and the new segment replaces the old ones in the log. A layout that
 * changed meanwhile sets *aborted and removes the .cleaned files (KERR_NONE). An I/O error
 * before the commit point leaves the log as it was; after it the log must be reopened (the
 * open completes the swap). *held_us = time under the lock. KERR_NONE or
 * KERR_KAFKA_STORAGE_ERROR. */
int plog_replace_segments(struct plog *log, uint64_t layout_epoch, int64_t first_base, int nold,
                          bool *aborted, int64_t *held_us);

#endif
