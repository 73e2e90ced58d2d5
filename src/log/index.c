/* index: offset and time indexes. Writes go straight to the file with pwrite through the seam
 * (no mmap, so faults can be injected); the active segment keeps its entries in memory. */
#include "log/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "log/fileio.h"

static int32_t index_max_entries(int32_t max_index_bytes, int32_t entry_size)
{
    if (max_index_bytes < entry_size)
        max_index_bytes = entry_size; /* at least one entry, whatever the config says */
    return max_index_bytes / entry_size;
}

/* The file descriptor, opened again on demand: indexes give theirs back when idle
 * (index_release_fd), so a broker with many partitions holds about one fd per segment, as
 * Kafka does with its mmapped indexes. -1 with errno when it cannot be opened. */
int index_fd(struct index *ix)
{
    if (ix->fd < 0 && ix->path != NULL)
        ix->fd = fio_open(ix->path, O_RDWR, 0);
    return ix->fd;
}

void index_release_fd(struct index *ix)
{
    if (ix->fd >= 0)
        fio_close(ix->fd);
    ix->fd = -1;
}

/* Reads raw entry i into buf (entry_size bytes). */
static int index_read_raw(const struct index *ix, int32_t i, uint8_t *buf)
{
    if (i < 0 || i >= ix->entries)
        return -1;
    if (ix->mem != NULL && i < ix->mem_cap) {
        memcpy(buf, ix->mem + (size_t)i * (size_t)ix->entry_size, (size_t)ix->entry_size);
        return 0;
    }
    int fd = index_fd((struct index *)ix); /* a lazy open is not a logical change */
    if (fd < 0)
        return -1;
    ssize_t r = fio_pread_full(fd, buf, (size_t)ix->entry_size, (off_t)i * ix->entry_size);
    if (r != ix->entry_size) {
        if (r >= 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

int index_offset_entry(const struct index *ix, int32_t i, struct index_offset_entry *e)
{
    uint8_t b[OFFSET_INDEX_ENTRY_SIZE];
    if (index_read_raw(ix, i, b) < 0)
        return -1;
    e->offset = ix->base_offset + (int32_t)be32_get(b);
    e->position = (int32_t)be32_get(b + 4);
    return 0;
}

int index_time_entry(const struct index *ix, int32_t i, struct index_time_entry *e)
{
    uint8_t b[TIME_INDEX_ENTRY_SIZE];
    if (index_read_raw(ix, i, b) < 0)
        return -1;
    e->timestamp = (int64_t)be64_get(b);
    e->offset = ix->base_offset + (int32_t)be32_get(b + 8);
    return 0;
}

static int index_load_last(struct index *ix)
{
    ix->last_offset = ix->base_offset;
    ix->last_value = ix->kind == INDEX_OFFSET ? 0 : -1;
    if (ix->entries == 0)
        return 0;
    if (ix->kind == INDEX_OFFSET) {
        struct index_offset_entry e;
        if (index_offset_entry(ix, ix->entries - 1, &e) < 0)
            return -1;
        ix->last_offset = e.offset;
        ix->last_value = e.position;
    } else {
        struct index_time_entry e;
        if (index_time_entry(ix, ix->entries - 1, &e) < 0)
            return -1;
        ix->last_offset = e.offset;
        ix->last_value = e.timestamp;
    }
    return 0;
}

int index_open(struct index *ix, enum index_kind kind, const char *path, int64_t base_offset,
               int32_t max_index_bytes, bool *created)
{
    memset(ix, 0, sizeof(*ix));
    ix->fd = -1;
    ix->kind = kind;
    ix->base_offset = base_offset;
    ix->entry_size = kind == INDEX_OFFSET ? OFFSET_INDEX_ENTRY_SIZE : TIME_INDEX_ENTRY_SIZE;
    ix->max_entries = index_max_entries(max_index_bytes, ix->entry_size);
    ix->path = strdup(path);
    if (ix->path == NULL)
        return -1;
    int fd = fio_open(path, O_RDWR, 0);
    bool is_new = false;
    if (fd < 0 && errno == ENOENT) {
        fd = fio_open(path, O_RDWR | O_CREAT, 0644);
        is_new = true;
    }
    if (fd < 0) {
        int saved = errno;
        free(ix->path);
        ix->path = NULL;
        errno = saved;
        return -1;
    }
    ix->fd = fd;
    struct stat st;
    if (fio_fstat(fd, &st) < 0) {
        int saved = errno;
        index_close(ix);
        errno = saved;
        return -1;
    }
    ix->file_len = st.st_size;
    int64_t n = st.st_size / ix->entry_size;
    ix->entries = n > INT32_MAX ? INT32_MAX : (int32_t)n;
    if (created != NULL)
        *created = is_new;
    if (index_load_last(ix) < 0) {
        int saved = errno;
        index_close(ix);
        errno = saved;
        return -1;
    }
    return 0;
}

int index_close(struct index *ix)
{
    int rc = 0;
    if (ix->fd >= 0 && fio_close(ix->fd) < 0)
        rc = -1;
    ix->fd = -1;
    free(ix->mem);
    ix->mem = NULL;
    free(ix->path);
    ix->path = NULL;
    return rc;
}

int index_make_active(struct index *ix)
{
    if (ix->entries > ix->max_entries)
        ix->max_entries = ix->entries; /* an old, larger config: never lose entries */
    int64_t want = (int64_t)ix->max_entries * ix->entry_size;
    if (ix->file_len != want) {
        if (fio_ftruncate(index_fd(ix), (off_t)want) < 0)
            return -1;
        ix->file_len = want;
    }
    if (ix->mem == NULL) {
        int32_t cap = ix->entries < 64 ? 64 : ix->entries;
        ix->mem = malloc((size_t)cap * (size_t)ix->entry_size);
        if (ix->mem == NULL)
            return -1;
        ix->mem_cap = cap;
        size_t n = (size_t)ix->entries * (size_t)ix->entry_size;
        if (n > 0) {
            ssize_t r = fio_pread_full(index_fd(ix), ix->mem, n, 0);
            if (r != (ssize_t)n) {
                free(ix->mem);
                ix->mem = NULL;
                if (r >= 0)
                    errno = EIO;
                return -1;
            }
        }
    }
    return 0;
}

int index_trim(struct index *ix)
{
    int64_t want = (int64_t)ix->entries * ix->entry_size;
    if (ix->file_len != want) {
        if (fio_ftruncate(index_fd(ix), (off_t)want) < 0)
            return -1;
        ix->file_len = want;
    }
    free(ix->mem);
    ix->mem = NULL;
    ix->mem_cap = 0;
    return 0;
}

int index_reset(struct index *ix)
{
    bool active = ix->mem != NULL;
    if (fio_ftruncate(index_fd(ix), 0) < 0)
        return -1;
    ix->file_len = 0;
    ix->entries = 0;
    index_load_last(ix);
    if (active)
        return index_make_active(ix);
    return 0;
}

void index_drop_last(struct index *ix)
{
    GREGOR_ASSERT(ix->entries > 0);
    ix->entries--;
    if (index_load_last(ix) < 0) {
        ix->last_offset = ix->base_offset;
        ix->last_value = ix->kind == INDEX_OFFSET ? 0 : -1;
    }
}

bool index_is_full(const struct index *ix)
{
    /* Kafka keeps the time index's last slot for the entry forced on roll/close. */
    if (ix->kind == INDEX_TIME)
        return ix->entries >= ix->max_entries - 1;
    return ix->entries >= ix->max_entries;
}

static int index_append_raw(struct index *ix, const uint8_t *buf)
{
    if (ix->entries >= ix->max_entries) {
        errno = ENOSPC;
        return -1;
    }
    off_t off = (off_t)ix->entries * ix->entry_size;
    if (fio_pwrite_full(index_fd(ix), buf, (size_t)ix->entry_size, off) < 0)
        return -1;
    if (off + ix->entry_size > ix->file_len)
        ix->file_len = off + ix->entry_size;
    if (ix->mem != NULL) {
        if (ix->entries >= ix->mem_cap) {
            int32_t cap = ix->mem_cap * 2;
            if (cap > ix->max_entries)
                cap = ix->max_entries;
            uint8_t *np = realloc(ix->mem, (size_t)cap * (size_t)ix->entry_size);
            if (np == NULL)
                return -1;
            ix->mem = np;
            ix->mem_cap = cap;
        }
        memcpy(ix->mem + (size_t)ix->entries * (size_t)ix->entry_size, buf, (size_t)ix->entry_size);
    }
    ix->entries++;
    return 0;
}

int index_offset_append(struct index *ix, int64_t offset, int32_t position)
{
    GREGOR_ASSERT(ix->kind == INDEX_OFFSET);
    GREGOR_ASSERT(offset >= ix->base_offset && offset - ix->base_offset <= INT32_MAX);
    GREGOR_ASSERT(ix->entries == 0 || offset > ix->last_offset);
    uint8_t b[OFFSET_INDEX_ENTRY_SIZE];
    be32_put(b, (uint32_t)(offset - ix->base_offset));
    be32_put(b + 4, (uint32_t)position);
    if (index_append_raw(ix, b) < 0)
        return -1;
    ix->last_offset = offset;
    ix->last_value = position;
    return 0;
}

int index_time_maybe_append(struct index *ix, int64_t timestamp, int64_t offset, bool force)
{
    GREGOR_ASSERT(ix->kind == INDEX_TIME);
    /* last_value is -1 (NO_TIMESTAMP) when empty, so records without timestamps add nothing. */
    if (timestamp <= ix->last_value)
        return 0;
    if (!force && index_is_full(ix)) {
        errno = ENOSPC;
        return -1;
    }
    /* An offset below the last entry's would break the index's order; Kafka refuses too. */
    if (ix->entries > 0 && offset < ix->last_offset)
        return 0;
    GREGOR_ASSERT(offset >= ix->base_offset && offset - ix->base_offset <= INT32_MAX);
    uint8_t b[TIME_INDEX_ENTRY_SIZE];
    be64_put(b, (uint64_t)timestamp);
    be32_put(b + 8, (uint32_t)(offset - ix->base_offset));
    if (index_append_raw(ix, b) < 0)
        return -1;
    ix->last_offset = offset;
    ix->last_value = timestamp;
    return 0;
}

int index_offset_lookup(const struct index *ix, int64_t target, struct index_offset_entry *e)
{
    e->offset = ix->base_offset;
    e->position = 0;
    int32_t lo = 0, hi = ix->entries - 1;
    struct index_offset_entry m;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (index_offset_entry(ix, mid, &m) < 0)
            return -1;
        if (m.offset <= target) {
            *e = m;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return 0;
}

int index_time_lookup(const struct index *ix, int64_t target, struct index_time_entry *e)
{
    e->timestamp = -1;
    e->offset = ix->base_offset;
    int32_t lo = 0, hi = ix->entries - 1;
    struct index_time_entry m;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (index_time_entry(ix, mid, &m) < 0)
            return -1;
        if (m.timestamp <= target) {
            *e = m;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return 0;
}

int index_sanity_check(const struct index *ix, int64_t log_size, const char **why)
{
    *why = NULL;
    if (ix->file_len % ix->entry_size != 0) {
        *why = "length is not a multiple of the entry size";
        return -1;
    }
    if (ix->entries == 0)
        return 0;
    if (ix->last_offset < ix->base_offset) {
        *why = "last offset is below the base offset";
        return -1;
    }
    if (ix->kind == INDEX_OFFSET) {
        if (ix->last_value < 0 || (ix->last_value >= log_size && log_size > 0) ||
            (log_size == 0 && ix->entries > 0)) {
            *why = "last position is past the end of the log";
            return -1;
        }
        struct index_offset_entry first;
        if (index_offset_entry(ix, 0, &first) < 0 || first.offset > ix->last_offset ||
            first.position > ix->last_value) {
            *why = "entries are out of order";
            return -1;
        }
        /* The first batch of a segment never gets an entry, so position 0 is a zero-filled
         * (preallocated, never trimmed) slot; so is a repeated offset at the end. */
        if (first.position <= 0 || (ix->entries > 1 && ix->last_offset <= first.offset)) {
            *why = "zero-filled entries (index was not trimmed)";
            return -1;
        }
    } else {
        struct index_time_entry first;
        if (index_time_entry(ix, 0, &first) < 0 || ix->last_value < first.timestamp ||
            first.offset > ix->last_offset) {
            *why = "entries are out of order";
            return -1;
        }
        if (ix->entries > 1 && (ix->last_offset <= first.offset || ix->last_value <= first.timestamp)) {
            *why = "zero-filled entries (index was not trimmed)";
            return -1;
        }
    }
    return 0;
}
