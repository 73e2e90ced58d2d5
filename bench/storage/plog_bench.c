/* plog_bench: gregor's storage layer (src/log, linked from build/libgregor.a) measured directly,
 * with no broker, network or client in the way.
 *
 *   plog_bench append DIR MB BATCH_KB SYNC_EVERY
 *       appends MB MiB of identical uncompressed batches (~BATCH_KB KiB, 1000-byte records) to a
 *       fresh partition log; SYNC_EVERY=0 never flushes (page cache only, like acks=1),
 *       SYNC_EVERY=N calls plog_flush (fdatasync) after every N batches (group commit covering N
 *       batches; N=1 is one sync per batch). Closes cleanly at the end (not timed).
 *   plog_bench read DIR LOOKUPS
 *       opens the log cleanly (timed), then LOOKUPS random offsets: plog_read(offset, 1 MiB) and
 *       a pread of the returned slice (from the page cache); then a sequential read of the whole
 *       log by offset, 1 MiB per call.
 *   plog_bench crash DIR MB
 *       appends MB MiB without any flush, then _exit(0)s without closing: the files are left as
 *       after a kill -9 (data in the page cache, indexes preallocated and untrimmed).
 *   plog_bench recover DIR
 *       times plog_open with recovery point -1 (every segment scanned, as after an unclean stop
 *       with no checkpoint) and then a clean open after a clean close.
 *
 * Prints one JSON object per line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/logging.h"
#include "log/batch.h"
#include "log/log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "plog_bench: %s failed (%d)\n", what, rc);
    exit(1);
}

static void config(struct log_config *cfg)
{
    log_config_defaults(cfg);
    cfg->retention_ms = -1;
    cfg->segment_ms = INT64_MAX / 4;
}

static uint8_t *make_batch(size_t batch_kb, size_t *len, int *records)
{
    struct batch_builder b;
    batch_builder_init(&b, 64u << 20);
    char value[1000];
    for (size_t i = 0; i < sizeof value; i++)
        value[i] = (char)('a' + (i * 7919) % 26);
    int n = (int)(batch_kb * 1024 / 1000);
    if (n < 1)
        n = 1;
    for (int r = 0; r < n; r++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", r);
        if (batch_builder_add(&b, 1700000000000LL + r, key, kl, value, sizeof value, NULL, 0) != 0)
            die("batch_builder_add", -1);
    }
    uint8_t *out;
    if (batch_builder_finish(&b, 0, &out, len) != 0)
        die("batch_builder_finish", -1);
    batch_builder_free(&b);
    *records = n;
    return out;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int do_append(const char *dir, double mb, size_t batch_kb, long sync_every, int crash)
{
    struct log_config cfg;
    config(&cfg);
    struct plog *log;
    int rc = plog_open(dir, "bench", 0, &cfg, -1, 0, &log);
    if (rc)
        die("plog_open", rc);
    size_t len;
    int records;
    uint8_t *batch = make_batch(batch_kb, &len, &records);
    long nbatches = (long)(mb * 1048576.0 / (double)len);
    double *sync_lat = sync_every > 0 ? calloc((size_t)(nbatches / sync_every + 2), sizeof(double)) : NULL;
    long nsync = 0;
    double t0 = now_s();
    for (long i = 0; i < nbatches; i++) {
        rc = plog_append(log, batch, len, 1700000000000LL, NULL);
        if (rc)
            die("plog_append", rc);
        if (sync_every > 0 && (i + 1) % sync_every == 0) {
            double s = now_s();
            rc = plog_flush(log);
            if (rc)
                die("plog_flush", rc);
            sync_lat[nsync++] = now_s() - s;
        }
    }
    if (sync_every > 0 && nbatches % sync_every) {
        double s = now_s();
        if ((rc = plog_flush(log)))
            die("plog_flush", rc);
        sync_lat[nsync++] = now_s() - s;
    }
    double el = now_s() - t0;
    if (crash) {
        printf("{\"mode\":\"crash\",\"bytes\":%.0f,\"batches\":%ld,\"seconds\":%.3f,\"end_offset\":%" PRId64 "}\n",
               (double)nbatches * (double)len, nbatches, el, plog_end_offset(log));
        fflush(stdout);
        _exit(0); /* no close, no flush: as a kill -9 leaves it */
    }
    double p50 = 0, p99 = 0, mean = 0;
    if (nsync > 0) {
        for (long i = 0; i < nsync; i++)
            mean += sync_lat[i];
        mean /= (double)nsync;
        qsort(sync_lat, (size_t)nsync, sizeof(double), cmp_double);
        p50 = sync_lat[nsync / 2];
        p99 = sync_lat[(long)((double)nsync * 0.99)];
    }
    printf("{\"mode\":\"append\",\"batch_bytes\":%zu,\"records_per_batch\":%d,\"batches\":%ld,"
           "\"sync_every\":%ld,\"seconds\":%.3f,\"MBps\":%.1f,\"records_per_s\":%.0f,"
           "\"syncs\":%ld,\"sync_ms_mean\":%.3f,\"sync_ms_p50\":%.3f,\"sync_ms_p99\":%.3f}\n",
           len, records, nbatches, sync_every, el, (double)nbatches * (double)len / 1048576.0 / el,
           (double)nbatches * records / el, nsync, mean * 1e3, p50 * 1e3, p99 * 1e3);
    free(sync_lat);
    free(batch);
    if ((rc = plog_close(log)))
        die("plog_close", rc);
    return 0;
}

static int do_read(const char *dir, long lookups)
{
    struct log_config cfg;
    config(&cfg);
    struct plog *log;
    double t0 = now_s();
    int rc = plog_open(dir, "bench", 0, &cfg, PLOG_RECOVERY_POINT_CLEAN, 0, &log);
    if (rc)
        die("plog_open", rc);
    double open_s = now_s() - t0;
    int64_t end = plog_end_offset(log);
    char *buf = malloc(1 << 20);
    srand(42);
    double lat_total = 0;
    double *lat = calloc((size_t)lookups, sizeof(double));
    size_t bytes = 0;
    t0 = now_s();
    for (long i = 0; i < lookups; i++) {
        int64_t off = (int64_t)(((uint64_t)rand() << 31 | (uint64_t)rand()) % (uint64_t)end);
        double s = now_s();
        struct log_slice sl;
        if ((rc = plog_read(log, off, 1 << 20, end, &sl)))
            die("plog_read", rc);
        if (sl.len > 0) {
            size_t want = sl.len < (1u << 20) ? sl.len : (1u << 20);
            if (pread(sl.fd, buf, want, sl.position) != (ssize_t)want)
                die("pread", -1);
            bytes += want;
            close(sl.fd);
        }
        lat[i] = now_s() - s;
        lat_total += lat[i];
    }
    double rand_s = now_s() - t0;
    qsort(lat, (size_t)lookups, sizeof(double), cmp_double);
    /* sequential: offset by offset through the whole log, 1 MiB per call */
    t0 = now_s();
    size_t seq_bytes = 0;
    int64_t off = plog_start_offset(log);
    while (off < end) {
        struct log_slice sl;
        if ((rc = plog_read(log, off, 1 << 20, end, &sl)))
            die("plog_read", rc);
        if (sl.len == 0)
            break;
        size_t done = 0;
        int64_t last = off;
        while (done < sl.len) {
            size_t want = sl.len - done < (1u << 20) ? sl.len - done : (1u << 20);
            ssize_t n = pread(sl.fd, buf, want, sl.position + (off_t)done);
            if (n <= 0)
                die("pread", -1);
            /* find the next offset: walk the batch headers in what was read */
            size_t p = 0;
            while (p + 61 <= (size_t)n) {
                struct batch_header h;
                batch_header_decode((const uint8_t *)buf + p, &h);
                last = batch_last_offset(&h);
                p += (size_t)batch_total_size(&h);
            }
            done += (size_t)n;
        }
        seq_bytes += sl.len;
        close(sl.fd);
        off = last + 1;
    }
    double seq_s = now_s() - t0;
    printf("{\"mode\":\"read\",\"log_bytes\":%" PRId64 ",\"clean_open_ms\":%.2f,\"lookups\":%ld,"
           "\"lookups_per_s\":%.0f,\"lookup_us_p50\":%.1f,\"lookup_us_p99\":%.1f,"
           "\"random_MBps\":%.0f,\"sequential_MBps\":%.0f}\n",
           plog_size_bytes(log), open_s * 1e3, lookups, (double)lookups / rand_s,
           lat[lookups / 2] * 1e6, lat[(long)((double)lookups * 0.99)] * 1e6,
           (double)bytes / 1048576.0 / rand_s, (double)seq_bytes / 1048576.0 / seq_s);
    free(lat);
    free(buf);
    plog_close(log);
    return 0;
}

static int do_recover(const char *dir)
{
    struct log_config cfg;
    config(&cfg);
    struct plog *log;
    double t0 = now_s();
    int rc = plog_open(dir, "bench", 0, &cfg, -1, 0, &log);
    if (rc)
        die("plog_open", rc);
    double rec_s = now_s() - t0;
    int64_t size = plog_size_bytes(log), end = plog_end_offset(log);
    int segs = plog_segment_count(log);
    if ((rc = plog_close(log)))
        die("plog_close", rc);
    t0 = now_s();
    if ((rc = plog_open(dir, "bench", 0, &cfg, PLOG_RECOVERY_POINT_CLEAN, 0, &log)))
        die("plog_open clean", rc);
    double clean_s = now_s() - t0;
    plog_close(log);
    printf("{\"mode\":\"recover\",\"log_bytes\":%" PRId64 ",\"segments\":%d,\"end_offset\":%" PRId64 ","
           "\"recovery_open_s\":%.3f,\"recovery_s_per_GiB\":%.3f,\"recovery_MBps\":%.0f,"
           "\"clean_open_ms\":%.2f}\n",
           size, segs, end, rec_s, rec_s / ((double)size / 1073741824.0),
           (double)size / 1048576.0 / rec_s, clean_s * 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    logging_set_level(LOG_LEVEL_WARN); /* recovery logs one INFO line per segment */
    if (argc >= 6 && strcmp(argv[1], "append") == 0)
        return do_append(argv[2], atof(argv[3]), (size_t)atol(argv[4]), atol(argv[5]), 0);
    if (argc >= 4 && strcmp(argv[1], "read") == 0)
        return do_read(argv[2], atol(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "crash") == 0)
        return do_append(argv[2], atof(argv[3]), 16, 0, 1);
    if (argc >= 3 && strcmp(argv[1], "recover") == 0)
        return do_recover(argv[2]);
    fprintf(stderr, "usage: plog_bench append DIR MB BATCH_KB SYNC_EVERY | read DIR LOOKUPS | "
                    "crash DIR MB | recover DIR\n");
    return 2;
}
