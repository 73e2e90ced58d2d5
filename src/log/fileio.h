/* fileio: the one file-system seam of gregor's storage (as SQLite's os_unix.c). Every open,
 * read, write, sync, truncate, rename and unlink of log/ goes through here, so tests can make
 * the Nth call of a kind fail with a chosen errno or write short (as SQLite's test_syscall.c). */
#ifndef GREGOR_LOG_FILEIO_H
#define GREGOR_LOG_FILEIO_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

enum fio_call {
    FIO_OPEN,
    FIO_CLOSE,
    FIO_PREAD,
    FIO_PWRITE,
    FIO_WRITE,
    FIO_FDATASYNC,
    FIO_FSYNC,
    FIO_FTRUNCATE,
    FIO_RENAME,
    FIO_UNLINK,
    FIO_MKDIR,
    FIO_RMDIR,
    FIO_FSTAT,
    FIO_STAT,
    FIO_OPENDIR,
    FIO_LOCK,
    FIO_DUP,
    FIO_CALL_COUNT
};

/* Thin wrappers with the system calls' own contracts (-1 and errno on failure). */
int fio_open(const char *path, int flags, mode_t mode);
int fio_close(int fd);
ssize_t fio_pread(int fd, void *buf, size_t n, off_t off);
ssize_t fio_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t fio_write(int fd, const void *buf, size_t n);
int fio_fdatasync(int fd);
int fio_fsync(int fd);
int fio_ftruncate(int fd, off_t len);
int fio_rename(const char *from, const char *to);
int fio_unlink(const char *path);
int fio_mkdir(const char *path, mode_t mode);
int fio_rmdir(const char *path);
int fio_fstat(int fd, struct stat *st);
int fio_stat(const char *path, struct stat *st);
DIR *fio_opendir(const char *path); /* readdir/closedir are plain: they cannot lose data */
/* Exclusive, non-blocking lock of a whole file: an OFD lock, which conflicts with Java's
 * FileChannel.tryLock (fcntl) in other processes and with a second open in this one. */
int fio_lock(int fd);
int fio_dup(int fd);

/* Helpers on top of the wrappers. */
/* Reads up to n bytes at off, retrying short reads; returns bytes read (< n only at EOF) or -1. */
ssize_t fio_pread_full(int fd, void *buf, size_t n, off_t off);
/* Writes all n bytes at off, retrying short writes; 0 or -1 with errno. */
int fio_pwrite_full(int fd, const void *buf, size_t n, off_t off);
int fio_write_full(int fd, const void *buf, size_t n);
/* fsync of a directory, so creates/renames/unlinks in it are durable. */
int fio_fsync_dir(const char *dir);
/* Replaces path with data atomically: <path>.tmp, fsync, rename, fsync of the directory. */
int fio_write_file_atomic(const char *path, const void *data, size_t n);
/* Reads a whole small file (at most max bytes) into a malloc'ed NUL-terminated buffer. */
int fio_read_file(const char *path, size_t max, char **out, size_t *len);
/* Removes dir and every regular file directly inside it. */
int fio_remove_dir(const char *dir);

/* Fault injection for tests. The nth (1-based, counted from this call) call of kind `call`
 * fails with errno err; when short_len >= 0 a write call instead writes short_len bytes and
 * returns that count. With persist, every later call of that kind fails too, until
 * fio_fault_clear(). Global, not thread-aware: tests only. */
void fio_fault_set(enum fio_call call, int nth, int err, long short_len, bool persist);
void fio_fault_clear(void);
/* How many calls the current fault has failed (or shortened). */
int fio_fault_hits(void);
/* Calls of a kind since the process started. */
unsigned long fio_call_count(enum fio_call call);
/* Marks the calling thread as the I/O worker (or not); fio_call_count_off_worker counts the
 * calls of a kind made on every other thread (the event loop's), so tests can assert the
 * loop does no blocking disk work. */
void fio_thread_set_io_worker(bool worker);
unsigned long fio_call_count_off_worker(enum fio_call call);

#endif
