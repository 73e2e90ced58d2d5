/* log_test_util: helpers shared by the storage unit tests — temp dirs, batch building,
 * reading slices back, and copying files. Header-only so each test stays one binary. */
#ifndef GREGOR_TESTS_LOG_TEST_UTIL_H
#define GREGOR_TESTS_LOG_TEST_UTIL_H

#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/logging.h"
#include "log/batch.h"
#include "log/log.h"

static int tu_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static inline void tu_rmrf(const char *path) { nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static inline char *tu_tmpdir(void)
{
    char tmpl[] = "/tmp/gregor-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (d == NULL)
        abort();
    return strdup(d);
}

/* The directory of partition <topic>-0 under dir (malloc'ed). */
static inline char *tu_partition_dir(const char *dir, const char *topic)
{
    size_t n = strlen(dir) + strlen(topic) + 16;
    char *p = malloc(n);
    if (p == NULL)
        abort();
    snprintf(p, n, "%s/%s-0", dir, topic);
    return p;
}

/* A fixture's partition log closed (when open), its temporary directory removed and the two
 * paths (tu_tmpdir, tu_partition_dir) freed. */
static inline void tu_log_teardown(struct plog *log, char *dir, char *pdir)
{
    if (log != NULL)
        plog_close(log);
    tu_rmrf(dir);
    free(dir);
    free(pdir);
}

/* A batch of n records "v<i>" padded to value_size bytes, timestamps ts, ts+1, ... */
static inline uint8_t *tu_batch(int n, int value_size, int64_t ts, int codec, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, 64u << 20);
    char *v = malloc((size_t)value_size + 16);
    for (int i = 0; i < n; i++) {
        memset(v, 'x', (size_t)value_size);
        int k = snprintf(v, (size_t)value_size + 16, "v%d", i);
        if (k < value_size)
            v[k] = 'x';
        int vl = value_size > k ? value_size : k;
        if (batch_builder_add(&b, ts + i, NULL, -1, v, vl, NULL, 0) != 0)
            abort();
    }
    free(v);
    uint8_t *out;
    if (batch_builder_finish(&b, codec, &out, len) != 0)
        abort();
    batch_builder_free(&b);
    return out;
}

static inline void tu_config(struct log_config *cfg)
{
    log_config_defaults(cfg);
    cfg->segment_bytes = 4096;
    cfg->index_interval_bytes = 256;
    cfg->segment_index_bytes = 4096;
    cfg->retention_ms = -1;
    cfg->file_delete_delay_ms = 0;
}

/* Appends n batches of `per` records; returns the last offset assigned. */
static inline int64_t tu_append_n(struct plog *log, int n, int per, int value_size, int64_t ts0)
{
    int64_t last = -1;
    for (int i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = tu_batch(per, value_size, ts0 + (int64_t)i * per, BATCH_COMPRESSION_NONE, &len);
        struct log_append_info info;
        int rc = plog_append(log, b, len, ts0, &info);
        free(b);
        if (rc != 0)
            return -1000 - rc;
        last = info.last_offset;
    }
    return last;
}

/* Reads the slice into memory (caller frees); closes the fd. */
static inline uint8_t *tu_slice_bytes(struct log_slice *s)
{
    uint8_t *buf = malloc(s->len + 1);
    if (s->len > 0 && pread(s->fd, buf, s->len, s->position) != (ssize_t)s->len)
        abort();
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    return buf;
}

/* Walks every record from offset `from` to the end; returns how many, checking each offset is
 * the previous + 1 (-1 on a gap or a corrupt batch). */
static inline int64_t tu_count_records(struct plog *log, int64_t from)
{
    int64_t next = from, count = 0;
    while (next < plog_end_offset(log)) {
        struct log_slice s;
        if (plog_read(log, next, 1 << 20, plog_end_offset(log), &s) != 0 || s.len == 0)
            return -1;
        uint8_t *buf = tu_slice_bytes(&s);
        size_t pos = 0;
        while (pos + BATCH_HEADER_SIZE <= s.len) {
            struct batch_header h;
            batch_header_decode(buf + pos, &h);
            struct batch_record_iter it;
            if (batch_records_open(&it, buf + pos, s.len - pos, 1u << 26) != 0) {
                free(buf);
                return -1;
            }
            struct batch_record r;
            int k;
            while ((k = batch_records_next(&it, &r)) == 1) {
                if (r.offset < next)
                    continue;
                if (r.offset != next) {
                    batch_records_close(&it);
                    free(buf);
                    return -1;
                }
                next++;
                count++;
            }
            batch_records_close(&it);
            if (k < 0) {
                free(buf);
                return -1;
            }
            pos += (size_t)batch_total_size(&h);
        }
        free(buf);
    }
    return count;
}

static inline int64_t tu_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static inline char *tu_seg_path(const char *dir, int64_t base, const char *suffix)
{
    char *p = malloc(4200);
    snprintf(p, 4200, "%s/%020" PRId64 "%s", dir, base, suffix);
    return p;
}

#endif
