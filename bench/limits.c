/* limits: the physical ceilings a broker on this machine cannot beat, measured in the same run as
 * the brokers: loopback TCP into a trivial sink, memcpy bandwidth, sequential disk writes and
 * fdatasync latency. Prints one JSON object per measurement on stdout.
 *
 * usage: limits tcp WRITE_SIZE SECONDS
 *        limits memcpy SECONDS
 *        limits disk DIR MIB          sequential 1 MiB writes + one fdatasync, then unlinks
 *        limits fsync DIR COUNT SIZE  append SIZE bytes then fdatasync, COUNT times; percentiles
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* The sink: read and discard, like a broker that does no work at all. */
static void *tcp_sink(void *arg)
{
    int fd = *(int *)arg;
    static char buf[1 << 20];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
    }
    close(fd);
    return NULL;
}

static int tcp(size_t size, double secs)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &alen))
        die("listen");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a))
        die("connect");
    int s = accept(ls, NULL, NULL);
    if (s < 0)
        die("accept");
    pthread_t t;
    pthread_create(&t, NULL, tcp_sink, &s);
    char *buf = malloc(size);
    memset(buf, 'A', size);
    double start = now_s(), end;
    long long bytes = 0, writes = 0;
    do {
        size_t off = 0;
        while (off < size) {
            ssize_t n = write(c, buf + off, size - off);
            if (n < 0)
                die("write");
            off += (size_t)n;
        }
        bytes += (long long)size;
        writes++;
        end = now_s();
    } while (end - start < secs);
    close(c);
    pthread_join(t, NULL);
    printf("{\"limit\":\"tcp_loopback\",\"write_size\":%zu,\"seconds\":%.3f,\"MBps\":%.1f,"
           "\"writes_per_s\":%.0f}\n", size, end - start, bytes / (end - start) / 1048576.0,
           writes / (end - start));
    free(buf);
    close(ls);
    return 0;
}

static int mem_copy(double secs)
{
    size_t size = 64 << 20; /* well past the last-level cache */
    char *a = malloc(size), *b = malloc(size);
    memset(a, 1, size);
    memset(b, 2, size);
    double start = now_s(), end;
    long long bytes = 0;
    do {
        memcpy(b, a, size);
        a[bytes % size]++; /* keep the copy from being optimised away */
        bytes += (long long)size;
        end = now_s();
    } while (end - start < secs);
    printf("{\"limit\":\"memcpy\",\"block_bytes\":%zu,\"MBps\":%.1f,\"check\":%d}\n", size,
           bytes / (end - start) / 1048576.0, b[12345]);
    free(a);
    free(b);
    return 0;
}

static int disk(const char *dir, long mib)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/limits-seq.%d", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die(path);
    size_t block = 1 << 20;
    char *buf = malloc(block);
    memset(buf, 'A', block);
    double start = now_s();
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, block) != (ssize_t)block)
            die("write");
    double written = now_s();
    if (fdatasync(fd))
        die("fdatasync");
    double synced = now_s();
    close(fd);
    unlink(path);
    printf("{\"limit\":\"disk_seq_write\",\"MiB\":%ld,\"page_cache_MBps\":%.1f,"
           "\"durable_MBps\":%.1f,\"final_sync_s\":%.3f}\n", mib, mib / (written - start),
           mib / (synced - start), synced - written);
    free(buf);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fsync_latency(const char *dir, int count, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/limits-sync.%d", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0)
        die(path);
    char *buf = malloc(size);
    memset(buf, 'B', size);
    double *lat = malloc(sizeof *lat * (size_t)count);
    double start = now_s();
    for (int i = 0; i < count; i++) {
        if (write(fd, buf, size) != (ssize_t)size)
            die("write");
        double t0 = now_s();
        if (fdatasync(fd))
            die("fdatasync");
        lat[i] = (now_s() - t0) * 1e6;
    }
    double total = now_s() - start;
    close(fd);
    unlink(path);
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    printf("{\"limit\":\"fdatasync\",\"append_bytes\":%zu,\"count\":%d,\"syncs_per_s\":%.0f,"
           "\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"max_us\":%.0f}\n", size, count,
           count / total, lat[count / 2], lat[(int)(count * 0.99)], lat[(int)(count * 0.999)],
           lat[count - 1]);
    free(lat);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "tcp"))
        return tcp((size_t)atol(argv[2]), atof(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "memcpy"))
        return mem_copy(atof(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "disk"))
        return disk(argv[2], atol(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "fsync"))
        return fsync_latency(argv[2], atoi(argv[3]), (size_t)atol(argv[4]));
    fprintf(stderr, "usage: limits tcp SIZE SECS | memcpy SECS | disk DIR MIB | "
                    "fsync DIR COUNT SIZE\n");
    return 2;
}
