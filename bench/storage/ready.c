/* ready: starts a broker and measures the time from exec to its first ApiVersions answer.
 * Tries a connect + ApiVersions v0 every millisecond; leaves the broker running (its pid goes
 * to stdout with the time, so the caller can stop or kill it). The broker's output goes to
 * $READY_LOG (default /dev/null).
 *
 * usage: ready PORT TIMEOUT_S -- COMMAND [ARGS...]
 * prints: {"ready_ms":..., "pid":...}   (exit 1 if the broker exits or the timeout passes) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int answers(int port)
{
    static const unsigned char req[] = {0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 9,
                                        0, 5, 'r', 'e', 'a', 'd', 'y'};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
    if (fd < 0)
        return 0;
    unsigned char resp[10];
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, sizeof req) == (ssize_t)sizeof req) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        size_t got = 0;
        while (got < sizeof resp && poll(&p, 1, 2000) == 1) {
            ssize_t n = read(fd, resp + got, sizeof resp - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        ok = got == sizeof resp && resp[7] == 9 && resp[8] == 0 && resp[9] == 0;
    }
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: ready PORT TIMEOUT_S -- COMMAND [ARGS...]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double limit = atof(argv[2]) * 1e3, t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        setsid();
        const char *log = getenv("READY_LOG");
        int in = open("/dev/null", O_RDONLY);
        int out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    while (now_ms() - t0 < limit) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "ready: broker exited (status %d) before answering\n", st);
            return 1;
        }
        if (answers(port)) {
            printf("{\"ready_ms\":%.1f,\"pid\":%d}\n", now_ms() - t0, (int)pid);
            return 0;
        }
        usleep(1000);
    }
    fprintf(stderr, "ready: no answer within %.0f s; killing %d\n", limit / 1e3, (int)pid);
    kill(pid, SIGKILL);
    return 1;
}
