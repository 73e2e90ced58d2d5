/* segment: one log segment — the .log file of whole batches plus its .index and .timeindex.
 * Appends, lookups by offset and timestamp, recovery scans and the clean-open tail check. */
#ifndef GREGOR_LOG_SEGMENT_H
#define GREGOR_LOG_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "log/batch.h"
#include "log/index.h"

struct segment {
    int64_t base_offset;
    char *base_path;               /* owned: "<dir>/<%020d base>" without suffix */
    int log_fd;                    /* -1 while given back (inactive): segment_log_fd reopens */
    int64_t size;                  /* bytes of whole batches: readers never see past it */
    int64_t next_offset;           /* last offset + 1; base_offset when empty */
    int64_t max_timestamp;         /* largest batch max timestamp, -1 none */
    int64_t offset_of_max_timestamp;
    int64_t first_batch_timestamp; /* max timestamp of the first batch (segment.ms), -1 */
    int64_t created_ms;
    int64_t bytes_since_index;     /* Kafka's bytesSinceLastIndexEntry */
    int32_t index_interval_bytes;
    bool active;
    bool index_created;            /* a missing index file was created at open */
    bool time_index_created;
    bool index_suspect;            /* a lookup found an index entry not matching its batch */
    struct index oi;
    struct index ti;
};

/* Result of walking batches in a segment file. */
enum segment_scan_result {
    SEGMENT_SCAN_OK = 0,
    SEGMENT_SCAN_TORN = 1,     /* a batch runs past the end of the file */
    SEGMENT_SCAN_CORRUPT = 2,  /* bad length, magic, CRC or offsets */
    SEGMENT_SCAN_IO = 3,       /* read error */
};

/* File name of a segment file: "<dir>/<%020lld><suffix>". */
int segment_file_name(char *buf, size_t n, const char *dir, int64_t base, const char *suffix);

/* Creates a new, empty, active segment (files created/truncated, indexes preallocated). */
int segment_create(const char *dir, int64_t base, int32_t index_interval_bytes,
                   int32_t max_index_bytes, int64_t now_ms, struct segment **out);
/* Opens an existing segment's files without reading the data. size = .log length. */
int segment_open(const char *dir, int64_t base, int32_t index_interval_bytes,
                 int32_t max_index_bytes, int64_t now_ms, struct segment **out);
/* Closes the files; with clean the final time-index entry is added and indexes trimmed. */
int segment_close(struct segment *s, bool clean);

/* The .log descriptor, opened again on demand (-1 with errno when it cannot be). Inactive
 * segments give theirs back (segment_release_fds), so descriptors do not grow with the
 * number of segments; the log keeps a few recently used ones open. */
int segment_log_fd(struct segment *s);
/* Closes the index descriptors and, unless the segment is active, the .log's. Nothing read
 * from them is lost: the next use reopens by name. */
void segment_release_fds(struct segment *s);
bool segment_has_open_fds(const struct segment *s);

/* Clean-open check (no full scan): index sanity, then the batches after the last index entry
 * are walked with CRCs, the interval rule replayed and next_offset / max timestamp / first
 * batch timestamp derived. Returns 0 when consistent, 1 when the segment needs recovery, -1
 * on an I/O error. why says what was wrong. */
int segment_load(struct segment *s, const char **why);

/* Full scan: every batch checked (length, magic, CRC, offsets >= min_offset and in int32 range
 * of the base), indexes rebuilt with Kafka's interval rule, the file truncated after the last
 * valid batch. *truncated_bytes = bytes cut. 0, or -1 on I/O error. */
int segment_recover(struct segment *s, int64_t min_offset, int64_t *truncated_bytes,
                    const char **why);

/* Appends one already-validated batch (with its final offsets) at the end: one pwrite, then
 * the index entries. On error nothing is visible and the file is cut back. 0 or -1 (errno). */
int segment_append(struct segment *s, const uint8_t *batch, size_t len,
                   const struct batch_header *h);

/* The active segment becomes inactive: final time-index entry, indexes trimmed. */
int segment_make_inactive(struct segment *s);
/* Makes an opened segment the active one (indexes preallocated, entries kept in memory). */
int segment_make_active(struct segment *s);

/* Position of the first batch whose last offset >= offset (size when none). 0 or -1. */
int segment_find_position(struct segment *s, int64_t offset, int64_t *pos,
                          struct batch_header *first);
/* From pos: whole batches up to max_bytes (at least one), only batches with last offset
 * < end_offset. *len = bytes, *next_offset = the offset after the last of them. 0 or -1. */
int segment_read_len(struct segment *s, int64_t pos, int64_t max_bytes, int64_t end_offset,
                     int64_t *len, int64_t *next_offset);
/* First record with timestamp >= ts and offset >= min_offset: 1 found, 0 none, -1 error. */
int segment_find_timestamp(struct segment *s, int64_t ts, int64_t min_offset, int64_t *offset,
                           int64_t *found_ts);
/* Offset of the first record holding the segment's max timestamp. 1 found, 0 none, -1. */
int segment_find_max_timestamp(struct segment *s, int64_t *offset, int64_t *ts);

/* Cuts the segment to size bytes (whole batches), used after a failed append. */
int segment_truncate(struct segment *s, int64_t size);

/* Renames the files to <name>.deleted (Kafka's async delete) and closes them. */
int segment_rename_deleted(struct segment *s);

/* Reads a batch header at pos (must lie within size). 0 or -1. */
int segment_read_header(struct segment *s, int64_t pos, struct batch_header *h);

#endif
