/* topic_ids: topic ids for kafka-topics --describe. librdkafka 2.0 (Debian's) does not expose
 * them, so one Metadata v12 request is sent with gregor's own generated codec over a blocking
 * socket. Any failure leaves the ids zero, as Kafka prints for a topic without an id. */
#include "cli/topic_ids.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/util.h"
#include "proto/kbuf.h"
#include "proto/messages.h"

#define METADATA_VERSION 12

static int connect_first(const char *bootstrap)
{
    char host[256];
    snprintf(host, sizeof(host), "%s", bootstrap);
    char *comma = strchr(host, ',');
    if (comma)
        *comma = '\0';
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 10};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int io_all(int fd, uint8_t *p, size_t n, bool writing)
{
    while (n > 0) {
        ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int cli_topic_ids(const char *bootstrap, const char *const *names, int n, uint8_t (*ids)[16])
{
    memset(ids, 0, (size_t)n * 16);
    int fd = connect_first(bootstrap);
    if (fd < 0)
        return -1;
    struct arena a;
    arena_init(&a, 64u << 20);
    int rc = -1;
    struct kwriter w;
    kw_init(&w, 16u << 20);
    struct metadata_request req;
    memset(&req, 0, sizeof(req));
    req.topics = arena_alloc(&a, sizeof(*req.topics) * (size_t)(n + 1));
    uint8_t *buf = NULL;
    if (req.topics == NULL)
        goto out;
    req.n_topics = n;
    for (int i = 0; i < n; i++) {
        req.topics[i].name.ptr = (char *)names[i];
        req.topics[i].name.len = (int32_t)strlen(names[i]);
    }
    size_t at = kw_reserve_i32(&w);
    kw_i16(&w, 3);
    kw_i16(&w, METADATA_VERSION);
    kw_i32(&w, 1);
    kw_str(&w, false, "gregor-cli", 10);
    kw_empty_tags(&w);
    metadata_request_encode(&w, METADATA_VERSION, &req);
    kw_patch_i32(&w, at, (int32_t)(w.len - 4));
    uint8_t size_be[4];
    if (w.err || io_all(fd, w.buf, w.len, true) < 0 || io_all(fd, size_be, 4, false) < 0)
        goto out;
    uint32_t size = be32_get(size_be);
    if (size < 5 || size > (64u << 20) || (buf = malloc(size)) == NULL || io_all(fd, buf, size, false) < 0)
        goto out;
    struct kreader r;
    kr_init(&r, buf, size, &a);
    kr_i32(&r);          /* correlation id */
    kr_skip_tags(&r);    /* response header v1 */
    struct metadata_response resp;
    if (metadata_response_decode(&r, METADATA_VERSION, &resp) != 0)
        goto out;
    for (int32_t i = 0; i < resp.n_topics; i++)
        for (int k = 0; k < n; k++)
            if (resp.topics[i].name.ptr && strcmp(resp.topics[i].name.ptr, names[k]) == 0)
                memcpy(ids[k], resp.topics[i].topic_id.b, 16);
    rc = 0;
out:
    free(buf);
    kw_free(&w);
    arena_reset(&a);
    close(fd);
    return rc;
}
