/* index: a segment's offset index (.index, 8-byte entries) and time index (.timeindex,
 * 12-byte entries) in Kafka's format (FORMATS.md §10.2/10.3): preallocated while the segment
 * is active, trimmed to the used size when it becomes inactive or is closed. */
#ifndef GREGOR_LOG_INDEX_H
#define GREGOR_LOG_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#define OFFSET_INDEX_ENTRY_SIZE 8
#define TIME_INDEX_ENTRY_SIZE 12

enum index_kind { INDEX_OFFSET, INDEX_TIME };

/* One index file. Entries are read with pread (inactive segments) or from mem (the active
 * segment keeps a copy, so fetches at the tail never read the file). */
struct index {
    enum index_kind kind;
    int fd;
    char *path;          /* owned */
    int64_t base_offset;
    int32_t entry_size;
    int32_t entries;
    int32_t max_entries; /* from segment.index.bytes */
    uint8_t *mem;        /* owned copy of the entries while active, else NULL */
    int32_t mem_cap;     /* entries mem can hold */
    int64_t file_len;    /* current length of the file */
    /* last entry, cached: relative offset and position/timestamp */
    int64_t last_offset;    /* absolute; base_offset when empty */
    int64_t last_value;     /* position (offset index) or timestamp (time index, -1 empty) */
};

struct index_offset_entry {
    int64_t offset;   /* absolute */
    int32_t position;
};
struct index_time_entry {
    int64_t timestamp;
    int64_t offset;   /* absolute */
};

/* Opens (creating when missing) path. Existing files count length / entry_size entries, as
 * Kafka does. *created tells whether the file was new. Returns 0 or -1 (errno). */
int index_open(struct index *ix, enum index_kind kind, const char *path, int64_t base_offset,
               int32_t max_index_bytes, bool *created);
int index_close(struct index *ix);
/* The index file's descriptor, reopened on demand (-1 with errno on failure). */
int index_fd(struct index *ix);
/* Closes the descriptor until it is needed again (entries stay valid). */
void index_release_fd(struct index *ix);

/* Makes the index active: file length = max entries (zero-filled), entries copied to mem. */
int index_make_active(struct index *ix);
/* Trims the file to entries * entry_size and drops the in-memory copy. */
int index_trim(struct index *ix);
/* Empties the index (file truncated to 0), keeping it active when it was. */
int index_reset(struct index *ix);

bool index_is_full(const struct index *ix);
/* Forgets the last entry (undo of an append whose batch write failed). */
void index_drop_last(struct index *ix);

/* Appends an entry; the caller guarantees ordering. 0 or -1 (errno; nothing counted). */
int index_offset_append(struct index *ix, int64_t offset, int32_t position);
/* Kafka's TimeIndex.maybeAppend: only when timestamp > last entry's timestamp. With force the
 * full check is skipped (the slot kept free for the final entry on roll/close). */
int index_time_maybe_append(struct index *ix, int64_t timestamp, int64_t offset, bool force);

/* Entry i (0-based). 0 or -1 on I/O error. */
int index_offset_entry(const struct index *ix, int32_t i, struct index_offset_entry *e);
int index_time_entry(const struct index *ix, int32_t i, struct index_time_entry *e);

/* Greatest entry with offset <= target; (base_offset, 0) when none. */
int index_offset_lookup(const struct index *ix, int64_t target, struct index_offset_entry *e);
/* Greatest entry with timestamp <= target; (-1, base_offset) when none. */
int index_time_lookup(const struct index *ix, int64_t target, struct index_time_entry *e);

/* Kafka's sanityCheck plus bounds: length multiple of the entry size, last offset >= base,
 * offsets within int32 of base, last position < log_size (offset index). 0 ok, -1 not. */
int index_sanity_check(const struct index *ix, int64_t log_size, const char **why);

#endif
