/* txnindex: see txnindex.h. Files are small (one entry per aborted transaction whose marker
 * fell in the segment) and read whole, bounded by TXNINDEX_READ_MAX entries. */
#include "log/txnindex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "log/fileio.h"

void txnindex_encode(uint8_t out[TXNINDEX_ENTRY_SIZE], const struct txnindex_entry *e)
{
    be16_put(out, TXNINDEX_VERSION);
    be64_put(out + 2, (uint64_t)e->producer_id);
    be64_put(out + 10, (uint64_t)e->first_offset);
    be64_put(out + 18, (uint64_t)e->last_offset);
    be64_put(out + 26, (uint64_t)e->last_stable_offset);
}

int txnindex_decode(const uint8_t in[TXNINDEX_ENTRY_SIZE], struct txnindex_entry *e)
{
    if ((int16_t)be16_get(in) != TXNINDEX_VERSION)
        return -1;
    e->producer_id = (int64_t)be64_get(in + 2);
    e->first_offset = (int64_t)be64_get(in + 10);
    e->last_offset = (int64_t)be64_get(in + 18);
    e->last_stable_offset = (int64_t)be64_get(in + 26);
    return 0;
}

int txnindex_read(const char *path, struct txnindex_entry **out, int *n)
{
    *out = NULL;
    *n = 0;
    int fd = fio_open(path, O_RDONLY, 0);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fio_fstat(fd, &st) < 0) {
        fio_close(fd);
        return -1;
    }
    int64_t count = st.st_size / TXNINDEX_ENTRY_SIZE;
    if (count > TXNINDEX_READ_MAX) {
        LOG_WARN("TransactionIndex", "%s holds %lld entries: reading the first %d", path,
                 (long long)count, TXNINDEX_READ_MAX);
        count = TXNINDEX_READ_MAX;
    }
    if (count == 0) {
        fio_close(fd);
        return 0;
    }
    size_t bytes = (size_t)count * TXNINDEX_ENTRY_SIZE;
    uint8_t *raw = malloc(bytes);
    struct txnindex_entry *e = malloc((size_t)count * sizeof(*e));
    int rc = -1;
    if (raw != NULL && e != NULL && fio_pread_full(fd, raw, bytes, 0) == (ssize_t)bytes) {
        int k = 0;
        for (int64_t i = 0; i < count; i++)
            if (txnindex_decode(raw + i * TXNINDEX_ENTRY_SIZE, &e[k]) == 0)
                k++;
        *out = e;
        *n = k;
        e = NULL;
        rc = 0;
    }
    free(raw);
    free(e);
    fio_close(fd);
    return rc;
}

int txnindex_append(const char *path, const struct txnindex_entry *e, bool sync)
{
    GREGOR_ASSERT(e->first_offset <= e->last_offset);
    int fd = fio_open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = -1;
    if (fio_fstat(fd, &st) < 0)
        goto out;
    off_t end = st.st_size - st.st_size % TXNINDEX_ENTRY_SIZE; /* a torn entry is overwritten */
    if (end >= TXNINDEX_ENTRY_SIZE) {
        uint8_t last[TXNINDEX_ENTRY_SIZE];
        struct txnindex_entry prev;
        if (fio_pread_full(fd, last, sizeof(last), end - TXNINDEX_ENTRY_SIZE) != (ssize_t)sizeof(last))
            goto out;
        if (txnindex_decode(last, &prev) == 0 && prev.last_offset >= e->last_offset) {
            errno = EINVAL;
            goto out;
        }
    }
    uint8_t buf[TXNINDEX_ENTRY_SIZE];
    txnindex_encode(buf, e);
    if (fio_pwrite_full(fd, buf, sizeof(buf), end) == 0 &&
        (st.st_size == end + TXNINDEX_ENTRY_SIZE || fio_ftruncate(fd, end + TXNINDEX_ENTRY_SIZE) == 0) &&
        (!sync || fio_fdatasync(fd) == 0))
        rc = 0;
out:
    fio_close(fd);
    return rc;
}

int txnindex_truncate(const char *path, int64_t offset)
{
    struct txnindex_entry *e;
    int n;
    if (txnindex_read(path, &e, &n) < 0)
        return -1;
    int keep = 0;
    while (keep < n && e[keep].last_offset < offset)
        keep++;
    free(e);
    if (keep == n)
        return 0;
    int fd = fio_open(path, O_RDWR, 0);
    if (fd < 0)
        return -1;
    int rc = fio_ftruncate(fd, (off_t)keep * TXNINDEX_ENTRY_SIZE) == 0 && fio_fdatasync(fd) == 0 ? 0 : -1;
    fio_close(fd);
    return rc;
}

int txnindex_collect(const char *path, int64_t fetch_offset, int64_t upper,
                     struct txnindex_entry *out, int max, int *n, bool *complete)
{
    struct txnindex_entry *e;
    int count;
    *complete = false;
    if (txnindex_read(path, &e, &count) < 0)
        return -1;
    for (int i = 0; i < count && *n < max; i++) {
        if (e[i].last_offset >= fetch_offset && e[i].first_offset < upper)
            out[(*n)++] = e[i];
        if (e[i].last_stable_offset >= upper) {
            *complete = true;
            break;
        }
    }
    free(e);
    return 0;
}

int txnindex_sync_dir(const char *dir)
{
    DIR *d = fio_opendir(dir);
    if (d == NULL)
        return -1;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n <= 9 || strcmp(de->d_name + n - 9, ".txnindex") != 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = fio_open(path, O_RDONLY, 0);
        if (fd < 0) {
            if (errno != ENOENT) /* gone meanwhile (retention): nothing to keep */
                rc = -1;
            continue;
        }
        if (fio_fdatasync(fd) < 0)
            rc = -1;
        fio_close(fd);
    }
    closedir(d);
    return rc;
}

bool txnindex_has(const char *path, int64_t last_offset)
{
    struct txnindex_entry *e;
    int n;
    if (txnindex_read(path, &e, &n) < 0)
        return false;
    bool found = false;
    for (int i = 0; i < n && !found; i++)
        found = e[i].last_offset == last_offset;
    free(e);
    return found;
}
