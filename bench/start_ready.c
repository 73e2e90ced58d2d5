/* start_ready: time from exec of a broker to its first successful ApiVersions answer on PORT.
 * Forks, execs the command, and from the parent tries connect + ApiVersions v0 every 1 ms.
 * The broker is left running; its pid is printed so the caller can measure RSS and stop it.
 *
 * usage: start_ready PORT TIMEOUT_S -- COMMAND [ARGS...]
 * prints: {"ready_ms":..., "pid":...}
 */
#define _GNU_SOURCE
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

/* One ApiVersions v0 round trip; 1 when an answer with error_code 0 came back. */
static int api_versions_ok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return 0;
    int ok = 0;
    /* size, api_key 18, api_version 0, correlation_id 7, client_id "probe" */
    static const unsigned char req[] = {0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 7,
                                        0, 5, 'p', 'r', 'o', 'b', 'e'};
    unsigned char resp[10];
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, sizeof req) == (ssize_t)sizeof req) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        size_t got = 0;
        while (got < sizeof resp && poll(&p, 1, 1000) == 1) {
            ssize_t n = read(fd, resp + got, sizeof resp - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        /* size(4) correlation_id(4) error_code(2) */
        ok = got == sizeof resp && resp[7] == 7 && resp[8] == 0 && resp[9] == 0;
    }
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--")) {
        fprintf(stderr, "usage: start_ready PORT TIMEOUT_S -- COMMAND [ARGS...]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double timeout_ms = atof(argv[2]) * 1e3;
    double start = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        /* START_READY_LOG: where the broker's stdout and stderr go (default /dev/null). */
        const char *log = getenv("START_READY_LOG");
        int devnull = open("/dev/null", O_RDWR);
        int out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(devnull, 0);
        dup2(out < 0 ? devnull : out, 1);
        dup2(out < 0 ? devnull : out, 2);
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    while (now_ms() - start < timeout_ms) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "start_ready: %s exited before it was ready\n", argv[4]);
            return 1;
        }
        if (api_versions_ok(port)) {
            printf("{\"ready_ms\":%.1f,\"pid\":%d}\n", now_ms() - start, (int)pid);
            return 0;
        }
        usleep(1000);
    }
    fprintf(stderr, "start_ready: no ApiVersions answer on port %d within %.0f s\n", port,
            timeout_ms / 1e3);
    kill(pid, SIGTERM);
    return 1;
}
