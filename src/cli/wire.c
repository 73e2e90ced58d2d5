/* wire: a blocking request/response client over one TCP connection — connect, send a framed
 * request, read the framed response — every step bounded by a deadline and a size limit. */
#include "cli/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/kbuf.h"
#include "proto/messages.h"

#define WIRE_CLIENT_ID "gregor-configs"

static void wire_error(struct cli_wire *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wire_error(struct cli_wire *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
}

static long long wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timed out, -1 error. */
static int wire_wait(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - wire_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Non-blocking connect to one resolved address, bounded by timeout_ms. */
static int wire_connect_addr(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno == EINPROGRESS && wire_wait(fd, POLLOUT, wire_now_ms() + timeout_ms) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
            return fd;
        errno = err ? err : errno;
    } else if (errno == EINPROGRESS) {
        errno = ETIMEDOUT;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Splits one "host:port" or "[v6]:port" (len bytes of text) into host and port. */
static int wire_split_hostport(const char *text, size_t len, char *host, size_t hostcap,
                               char *port, size_t portcap)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ':')
            colon = text + i;
    if (!colon || colon == text || (size_t)(text + len - colon - 1) == 0)
        return -1;
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    size_t plen = (size_t)(text + len - colon - 1);
    if (hlen == 0 || hlen >= hostcap || plen >= portcap)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    return 0;
}

int cli_wire_connect(struct cli_wire *w, const char *bootstrap, int timeout_ms)
{
    w->fd = -1;
    w->timeout_ms = timeout_ms;
    w->correlation_id = 0;
    w->error[0] = '\0';
    const char *p = bootstrap;
    while (*p) {
        size_t len = strcspn(p, ",");
        char host[256], port[16];
        if (len && wire_split_hostport(p, len, host, sizeof host, port, sizeof port) == 0) {
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
            int gai = getaddrinfo(host, port, &hints, &res);
            if (gai != 0)
                wire_error(w, "Could not resolve %s:%s: %s", host, port, gai_strerror(gai));
            for (struct addrinfo *ai = res; ai && w->fd < 0; ai = ai->ai_next) {
                w->fd = wire_connect_addr(ai, timeout_ms);
                if (w->fd < 0)
                    wire_error(w, "Connection to %s:%s failed: %s", host, port, strerror(errno));
            }
            if (res)
                freeaddrinfo(res);
            if (w->fd >= 0)
                return 0;
        } else if (len) {
            wire_error(w, "Invalid bootstrap server '%.*s': expected host:port", (int)len, p);
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (!w->error[0])
        wire_error(w, "No bootstrap server given");
    return -1;
}

void cli_wire_close(struct cli_wire *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

static int wire_send_all(struct cli_wire *w, const uint8_t *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t k = send(w->fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
            wire_error(w, "Sending the request failed: %s", strerror(errno));
            return -1;
        } else if (wire_wait(w->fd, POLLOUT, deadline) != 1) {
            wire_error(w, "Timed out after %d ms sending the request", w->timeout_ms);
            return -1;
        }
    }
    return 0;
}

static int wire_recv_all(struct cli_wire *w, uint8_t *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t k = recv(w->fd, p, n, 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k == 0) {
            wire_error(w, "The broker closed the connection before answering");
            return -1;
        } else if (errno != EAGAIN && errno != EINTR) {
            wire_error(w, "Reading the response failed: %s", strerror(errno));
            return -1;
        } else if (wire_wait(w->fd, POLLIN, deadline) != 1) {
            wire_error(w, "Timed out after %d ms waiting for the response", w->timeout_ms);
            return -1;
        }
    }
    return 0;
}

/* Frames the request: size, header (v2 when flexible, else v1), body. */
static int wire_encode(struct cli_wire *w, struct kwriter *kw, int16_t key, int16_t version,
                       const void *request, bool flexible)
{
    size_t at = kw_reserve_i32(kw);
    kw_i16(kw, key);
    kw_i16(kw, version);
    kw_i32(kw, w->correlation_id);
    kw_str(kw, false, WIRE_CLIENT_ID, (int32_t)strlen(WIRE_CLIENT_ID));
    if (flexible)
        kw_empty_tags(kw);
    if (proto_request_encode(key, version, kw, request) != 0) {
        wire_error(w, "Could not encode %s v%d (error %d)", proto_api_find(key)->name, version, kw->err);
        return -1;
    }
    GREGOR_ASSERT(kw->nfiles == 0 && kw->len >= at + 4);
    kw_patch_i32(kw, at, (int32_t)(kw->len - at - 4));
    return 0;
}

static int wire_decode(struct cli_wire *w, uint8_t *frame, size_t size, int16_t key,
                       int16_t version, bool flexible, struct arena *arena, void **response)
{
    struct kreader r;
    kr_init(&r, frame, size, arena);
    int32_t correlation_id = kr_i32(&r);
    if (flexible)
        kr_skip_tags(&r);
    if (kr_ok(&r) && correlation_id != w->correlation_id) {
        wire_error(w, "Response correlation id %d does not match the request's %d",
                   correlation_id, w->correlation_id);
        return -1;
    }
    if (kr_ok(&r))
        proto_response_decode(key, version, &r, response);
    if (!kr_ok(&r)) {
        wire_error(w, "Malformed %s v%d response: %s at byte %zu of %zu",
                   proto_api_find(key)->name, version, r.what ? r.what : "?", r.off, size);
        return -1;
    }
    return 0;
}

int cli_wire_call(struct cli_wire *w, int16_t key, int16_t version, const void *request,
                  struct arena *arena, void **response)
{
    GREGOR_ASSERT(w->fd >= 0);
    GREGOR_ASSERT(proto_api_find(key) != NULL);
    *response = NULL;
    bool flexible = proto_is_flexible(key, version);
    long long deadline = wire_now_ms() + w->timeout_ms;
    w->correlation_id++;
    struct kwriter kw;
    kw_init(&kw, CLI_WIRE_MAX_RESPONSE);
    int rc = wire_encode(w, &kw, key, version, request, flexible);
    if (rc == 0)
        rc = wire_send_all(w, kw.buf, kw.len, deadline);
    kw_free(&kw);
    uint8_t size_bytes[4];
    if (rc == 0)
        rc = wire_recv_all(w, size_bytes, sizeof size_bytes, deadline);
    uint8_t *frame = NULL;
    if (rc == 0) {
        uint32_t size = (uint32_t)size_bytes[0] << 24 | (uint32_t)size_bytes[1] << 16 |
                        (uint32_t)size_bytes[2] << 8 | size_bytes[3];
        if (size < 4 || size > CLI_WIRE_MAX_RESPONSE) {
            wire_error(w, "Invalid response size %u (4..%u)", size, CLI_WIRE_MAX_RESPONSE);
            rc = -1;
        } else if (!(frame = malloc(size))) {
            wire_error(w, "Out of memory for a %u-byte response", size);
            rc = -1;
        } else {
            rc = wire_recv_all(w, frame, size, deadline);
            if (rc == 0)
                rc = wire_decode(w, frame, size, key, version, flexible, arena, response);
        }
    }
    /* Decoded strings are copies in the arena; bytes fields would borrow the frame, and none of
     * the responses we ask for has one. */
    free(frame);
    if (rc != 0)
        cli_wire_close(w);
    return rc;
}
