/* disk_bench: what the disk under a directory can do, for comparison with gregor's numbers.
 *
 *   disk_bench seqwrite DIR MB      write(2) 1 MiB blocks to a new file, then one fdatasync:
 *                                   MB/s to the page cache and MB/s until durable
 *   disk_bench seqdirect DIR MB     the same with O_DIRECT (the device's own sequential speed)
 *   disk_bench fsync DIR N SIZE     N times: append SIZE bytes, fdatasync — the latency of one
 *                                   group-commit sync of SIZE bytes (mean, p50, p99, max)
 *
 * Files are removed afterwards. One JSON object per line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int seqwrite(const char *dir, long mb, int direct)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/disk_bench.seq", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0644);
    if (fd < 0)
        die("open");
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20))
        die("posix_memalign");
    for (int i = 0; i < (1 << 20); i++)
        ((unsigned char *)buf)[i] = (unsigned char)(i * 31 + 7);
    double t0 = now_s();
    for (long i = 0; i < mb; i++)
        if (write(fd, buf, 1 << 20) != (1 << 20))
            die("write");
    double written = now_s() - t0;
    if (fdatasync(fd))
        die("fdatasync");
    double durable = now_s() - t0;
    close(fd);
    unlink(path);
    free(buf);
    printf("{\"mode\":\"%s\",\"MB\":%ld,\"write_s\":%.3f,\"write_MBps\":%.0f,\"durable_s\":%.3f,"
           "\"durable_MBps\":%.0f}\n", direct ? "seqdirect" : "seqwrite", mb, written,
           (double)mb / written, durable, (double)mb / durable);
    return 0;
}

static int fsync_lat(const char *dir, long n, long size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/disk_bench.sync", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        die("open");
    char *buf = malloc((size_t)size);
    memset(buf, 'x', (size_t)size);
    double *lat = calloc((size_t)n, sizeof(double)), sum = 0;
    for (long i = 0; i < n; i++) {
        double s = now_s();
        if (write(fd, buf, (size_t)size) != size)
            die("write");
        if (fdatasync(fd))
            die("fdatasync");
        lat[i] = now_s() - s;
        sum += lat[i];
    }
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("{\"mode\":\"fsync\",\"n\":%ld,\"bytes_per_sync\":%ld,\"ms_mean\":%.3f,\"ms_p50\":%.3f,"
           "\"ms_p99\":%.3f,\"ms_max\":%.3f,\"syncs_per_s\":%.0f}\n", n, size, sum / (double)n * 1e3,
           lat[n / 2] * 1e3, lat[(long)((double)n * 0.99)] * 1e3, lat[n - 1] * 1e3, (double)n / sum);
    close(fd);
    unlink(path);
    free(buf);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "seqwrite") == 0)
        return seqwrite(argv[2], atol(argv[3]), 0);
    if (argc >= 4 && strcmp(argv[1], "seqdirect") == 0)
        return seqwrite(argv[2], atol(argv[3]), 1);
    if (argc >= 5 && strcmp(argv[1], "fsync") == 0)
        return fsync_lat(argv[2], atol(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: disk_bench seqwrite|seqdirect DIR MB | fsync DIR N SIZE\n");
    return 2;
}
