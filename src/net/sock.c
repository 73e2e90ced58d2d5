/* sock: see sock.h. */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sock_listen(const char *host, int port, int backlog)
{
    if (port < 0 || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    bool v6 = host != NULL && strchr(host, ':') != NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t slen;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        slen = sizeof(*a);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
            errno = EINVAL;
            return -1;
        }
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        slen = sizeof(*a);
        if (host == NULL || host[0] == '\0' || strcmp(host, "0.0.0.0") == 0) {
            a->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (strcmp(host, "localhost") == 0) {
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
            errno = EINVAL;
            return -1;
        }
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int sock_peer_host(const struct sockaddr_storage *ss, char *host, size_t cap)
{
    snprintf(host, cap, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)cap);
        return ntohs(sin->sin_port);
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, (socklen_t)cap);
        return ntohs(sin6->sin6_port);
    }
    return 0;
}

enum sock_accept_failure sock_accept_failure(int err)
{
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
        return SOCK_ACCEPT_BACK_OFF;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
        return SOCK_ACCEPT_QUIET;
    return SOCK_ACCEPT_LOG;
}

int sock_backoff_next(int current_ms, int min_ms, int max_ms)
{
    if (current_ms <= 0)
        return min_ms;
    return current_ms > max_ms / 2 ? max_ms : current_ms * 2;
}
