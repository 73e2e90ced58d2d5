/* fileio: the file-system seam. Each wrapper first asks fio_fault_check() whether a test has
 * armed a fault for its kind of call; the check costs one relaxed atomic load when none is. */
#include "log/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The armed fault (tests only). */
static struct {
    atomic_int armed;
    enum fio_call call;
    unsigned long fire_at;  /* call count (of that kind) at which it fires */
    int err;
    long short_len;
    bool persist;
    int hits;
} fault;

static atomic_ulong call_counts[FIO_CALL_COUNT];
/* The same, counting only calls made on threads not marked as the I/O worker (tests assert
 * that the event loop makes no sync or unlink in steady state). */
static atomic_ulong off_worker_counts[FIO_CALL_COUNT];
static _Thread_local bool on_io_worker;

/* Returns 0 to go on with the real call, -1 (errno set) to fail it, or 1 when a write must
 * be shortened to *short_len bytes. */
static int fio_fault_check(enum fio_call call, long *short_len)
{
    unsigned long n = atomic_fetch_add_explicit(&call_counts[call], 1, memory_order_relaxed) + 1;
    if (!on_io_worker)
        atomic_fetch_add_explicit(&off_worker_counts[call], 1, memory_order_relaxed);
    if (!atomic_load_explicit(&fault.armed, memory_order_acquire) || fault.call != call)
        return 0;
    if (n < fault.fire_at || (n > fault.fire_at && !fault.persist))
        return 0;
    fault.hits++;
    if (n == fault.fire_at && fault.short_len >= 0 && short_len != NULL) {
        *short_len = fault.short_len;
        return 1;
    }
    errno = fault.err;
    return -1;
}

void fio_fault_set(enum fio_call call, int nth, int err, long short_len, bool persist)
{
    atomic_store(&fault.armed, 0);
    fault.call = call;
    fault.fire_at = atomic_load(&call_counts[call]) + (unsigned long)(nth < 1 ? 1 : nth);
    fault.err = err;
    fault.short_len = short_len;
    fault.persist = persist;
    fault.hits = 0;
    atomic_store(&fault.armed, 1);
}

void fio_fault_clear(void) { atomic_store(&fault.armed, 0); }
int fio_fault_hits(void) { return fault.hits; }
unsigned long fio_call_count(enum fio_call call) { return atomic_load(&call_counts[call]); }
void fio_thread_set_io_worker(bool worker) { on_io_worker = worker; }
unsigned long fio_call_count_off_worker(enum fio_call call)
{
    return atomic_load(&off_worker_counts[call]);
}

#define FIO_CHECK(kind)                         \
    do {                                        \
        if (fio_fault_check(kind, NULL) < 0)    \
            return -1;                          \
    } while (0)

int fio_open(const char *path, int flags, mode_t mode)
{
    FIO_CHECK(FIO_OPEN);
    return open(path, flags | O_CLOEXEC, mode);
}

int fio_close(int fd)
{
    FIO_CHECK(FIO_CLOSE);
    return close(fd);
}

ssize_t fio_pread(int fd, void *buf, size_t n, off_t off)
{
    FIO_CHECK(FIO_PREAD);
    return pread(fd, buf, n, off);
}

ssize_t fio_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    long short_len = -1;
    int r = fio_fault_check(FIO_PWRITE, &short_len);
    if (r < 0)
        return -1;
    if (r > 0 && (size_t)short_len < n)
        n = (size_t)short_len;
    return pwrite(fd, buf, n, off);
}

ssize_t fio_write(int fd, const void *buf, size_t n)
{
    long short_len = -1;
    int r = fio_fault_check(FIO_WRITE, &short_len);
    if (r < 0)
        return -1;
    if (r > 0 && (size_t)short_len < n)
        n = (size_t)short_len;
    return write(fd, buf, n);
}

int fio_fdatasync(int fd)
{
    FIO_CHECK(FIO_FDATASYNC);
    return fdatasync(fd);
}

int fio_fsync(int fd)
{
    FIO_CHECK(FIO_FSYNC);
    return fsync(fd);
}

int fio_ftruncate(int fd, off_t len)
{
    FIO_CHECK(FIO_FTRUNCATE);
    return ftruncate(fd, len);
}

int fio_rename(const char *from, const char *to)
{
    FIO_CHECK(FIO_RENAME);
    return rename(from, to);
}

int fio_unlink(const char *path)
{
    FIO_CHECK(FIO_UNLINK);
    return unlink(path);
}

int fio_mkdir(const char *path, mode_t mode)
{
    FIO_CHECK(FIO_MKDIR);
    return mkdir(path, mode);
}

int fio_rmdir(const char *path)
{
    FIO_CHECK(FIO_RMDIR);
    return rmdir(path);
}

int fio_fstat(int fd, struct stat *st)
{
    FIO_CHECK(FIO_FSTAT);
    return fstat(fd, st);
}

int fio_stat(const char *path, struct stat *st)
{
    FIO_CHECK(FIO_STAT);
    return stat(path, st);
}

DIR *fio_opendir(const char *path)
{
    if (fio_fault_check(FIO_OPENDIR, NULL) < 0)
        return NULL;
    return opendir(path);
}

int fio_lock(int fd)
{
    FIO_CHECK(FIO_LOCK);
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    return fcntl(fd, F_OFD_SETLK, &fl);
}

int fio_dup(int fd)
{
    FIO_CHECK(FIO_DUP);
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

ssize_t fio_pread_full(int fd, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = fio_pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int fio_pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = fio_pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

int fio_write_full(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = fio_write(fd, (const char *)buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

int fio_fsync_dir(const char *dir)
{
    int fd = fio_open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return -1;
    int r = fio_fsync(fd);
    int saved = errno;
    fio_close(fd);
    errno = saved;
    return r;
}

int fio_write_file_atomic(const char *path, const void *data, size_t n)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = fio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    if (fio_write_full(fd, data, n) < 0 || fio_fsync(fd) < 0) {
        int saved = errno;
        fio_close(fd);
        fio_unlink(tmp);
        errno = saved;
        return -1;
    }
    if (fio_close(fd) < 0 || fio_rename(tmp, path) < 0) {
        int saved = errno;
        fio_unlink(tmp);
        errno = saved;
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return fio_fsync_dir(dir);
}

int fio_read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    int fd = fio_open(path, O_RDONLY, 0);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fio_fstat(fd, &st) < 0) {
        int saved = errno;
        fio_close(fd);
        errno = saved;
        return -1;
    }
    if ((size_t)st.st_size > max) {
        fio_close(fd);
        errno = EFBIG;
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fio_close(fd);
        errno = ENOMEM;
        return -1;
    }
    ssize_t r = fio_pread_full(fd, buf, (size_t)st.st_size, 0);
    int saved = errno;
    fio_close(fd);
    if (r < 0) {
        free(buf);
        errno = saved;
        return -1;
    }
    buf[r] = '\0';
    *out = buf;
    if (len != NULL)
        *len = (size_t)r;
    return 0;
}

int fio_remove_dir(const char *dir)
{
    DIR *d = fio_opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
            continue;
        if (fio_unlink(p) < 0 && errno != ENOENT)
            rc = -1;
    }
    closedir(d);
    if (fio_rmdir(dir) < 0)
        rc = -1;
    return rc;
}
