/* conns: hold N idle client connections open on a broker, each after a completed ApiVersions v0
 * exchange, so the harness can measure the broker's RSS and another client's latency while
 * they are open.
 *
 * usage: conns HOST PORT N
 * Opens the connections one after another (connect, ApiVersions v0, wait for its answer with
 * error 0; 10 s timeout each), prints one JSON line {"opened":..,"failed":..,"open_s":..} and
 * then sleeps. On SIGTERM or SIGINT it sends one more ApiVersions on every connection at once,
 * waits up to 30 s for the answers, prints a second JSON line {"alive":..,"answered":..,
 * "burst_ms":..} (alive: connections the broker had not closed) and exits.
 * The caller must raise the open-files limit above N (ulimit -n).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* size, api_key 18, api_version 0, correlation_id 7, client_id "conns" */
static const unsigned char req[] = {0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 7,
                                    0, 5, 'c', 'o', 'n', 'n', 's'};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* Read one whole response on a blocking fd (timeout set on the socket); 1 when error_code 0. */
static int read_answer(int fd)
{
    unsigned char head[10];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t n = read(fd, head + got, sizeof head - got);
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    long size = ((long)head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3];
    long rest = size + 4 - (long)sizeof head;
    char buf[4096];
    while (rest > 0) {
        ssize_t n = read(fd, buf, rest > (long)sizeof buf ? sizeof buf : (size_t)rest);
        if (n <= 0)
            return 0;
        rest -= n;
    }
    return head[7] == 7 && head[8] == 0 && head[9] == 0;
}

static int open_one(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        write(fd, req, sizeof req) != (ssize_t)sizeof req || !read_answer(fd)) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: conns HOST PORT N\n");
        return 2;
    }
    int port = atoi(argv[2]), n = atoi(argv[3]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int *fds = calloc((size_t)n, sizeof *fds);
    if (!fds)
        return 1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    double t0 = now_ms();
    int opened = 0, failed = 0, first_errno = 0;
    for (int i = 0; i < n && !stop; i++) {
        errno = 0;
        int fd = open_one(argv[1], port);
        if (fd < 0) {
            if (!first_errno)
                first_errno = errno ? errno : EPROTO;
            failed++;
            continue;
        }
        fds[opened++] = fd;
    }
    printf("{\"opened\":%d,\"failed\":%d,\"first_error\":\"%s\",\"open_s\":%.3f}\n", opened,
           failed, first_errno ? strerror(first_errno) : "", (now_ms() - t0) / 1e3);
    fflush(stdout);
    while (!stop)
        pause();

    /* Which connections did the broker keep? Then one request on each, all at once. */
    int alive = 0, answered = 0;
    int ep = epoll_create1(0);
    for (int i = 0; i < opened; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
        char c;
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR) ||
                                    recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)) {
            close(fds[i]);
            fds[i] = -1;
            continue;
        }
        alive++;
    }
    double b0 = now_ms();
    int pending = 0;
    for (int i = 0; i < opened; i++) {
        if (fds[i] < 0)
            continue;
        if (write(fds[i], req, sizeof req) != (ssize_t)sizeof req)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        pending++;
    }
    struct epoll_event evs[256];
    while (pending > 0 && now_ms() - b0 < 30000) {
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int j = 0; j < k; j++) {
            /* Answers are small; the socket timeout bounds a partial one. */
            answered += read_answer(evs[j].data.fd);
            epoll_ctl(ep, EPOLL_CTL_DEL, evs[j].data.fd, NULL);
            pending--;
        }
    }
    printf("{\"alive\":%d,\"answered\":%d,\"burst_ms\":%.1f}\n", alive, answered, now_ms() - b0);
    fflush(stdout);
    return 0;
}
