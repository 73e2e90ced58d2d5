/* fuzz_client_read: libFuzzer target for the outbound client's response-reading path
 * (net/client.c): framing, the ApiVersions handshake answer, correlation matching, response
 * headers and the generated decoders. The input is what the peer writes after the client's
 * ApiVersions request (correlation id 0), then end of stream; two Metadata requests (ids 1
 * and 2, one decoded, one raw) wait behind the handshake. Each must complete exactly once,
 * whatever the bytes, and nothing may leak or overrun (ASan). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "net/client.h"
#include "net/loop.h"
#include "proto/messages.h"

static struct loop *fuzz_loop;
static int fuzz_listener = -1;
static int fuzz_port;

static void fuzz_setup(void)
{
    logging_set_level(LOG_LEVEL_ERROR);
    fuzz_loop = loop_create(4096);
    GREGOR_ASSERT(fuzz_loop != NULL);
    fuzz_listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    GREGOR_ASSERT(bind(fuzz_listener, (struct sockaddr *)&a, sizeof(a)) == 0);
    GREGOR_ASSERT(listen(fuzz_listener, 64) == 0);
    socklen_t len = sizeof(a);
    getsockname(fuzz_listener, (struct sockaddr *)&a, &len);
    fuzz_port = ntohs(a.sin_port);
}

static void on_done(void *arg, const struct client_response *resp)
{
    int *calls = arg;
    (*calls)++;
    GREGOR_ASSERT(resp->error != 0 || resp->reason == NULL);
    GREGOR_ASSERT(resp->error == 0 || (resp->body == NULL && resp->raw == NULL));
}

/* Accepts the client's connection and reads its ApiVersions request. -1 when it never came. */
static int accept_and_read_handshake(void)
{
    int fd = -1;
    for (int i = 0; i < 1000 && fd < 0; i++) {
        loop_run_once(fuzz_loop, 0);
        fd = accept4(fuzz_listener, NULL, NULL, SOCK_NONBLOCK);
    }
    if (fd < 0)
        return -1;
    uint8_t buf[512];
    size_t have = 0;
    for (int i = 0; i < 1000; i++) {
        loop_run_once(fuzz_loop, 0);
        ssize_t got = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (got > 0)
            have += (size_t)got;
        if (have >= 4 && have >= 4 + be32_get(buf))
            return fd;
    }
    close(fd);
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_loop == NULL)
        fuzz_setup();
    struct client_config cfg;
    client_config_defaults(&cfg);
    cfg.max_response_bytes = 1 << 20;
    cfg.jitter_seed = 1;
    struct client *cl = client_create(fuzz_loop, &cfg);
    struct client_conn *c = client_connect(cl, "127.0.0.1", fuzz_port);
    GREGOR_ASSERT(c != NULL);
    struct metadata_request mr;
    metadata_request_set_defaults(&mr);
    int calls[2] = {0, 0};
    struct client_request decoded = {.api_key = PROTO_API_METADATA, .max_version = -1, .body = &mr};
    struct client_request raw = decoded;
    raw.raw = true;
    GREGOR_ASSERT(client_send(c, &decoded, on_done, &calls[0]) == 0);
    GREGOR_ASSERT(client_send(c, &raw, on_done, &calls[1]) == 0);
    int fd = accept_and_read_handshake();
    GREGOR_ASSERT(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t sent = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN && errno != EINTR)
            break; /* the client closed on what it read so far */
        if (sent > 0)
            off += (size_t)sent;
        loop_run_once(fuzz_loop, 0);
    }
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 2000 && (calls[0] == 0 || calls[1] == 0); i++) {
        loop_run_once(fuzz_loop, 0);
        struct client_conn_stats st;
        client_conn_stats(c, &st);
        if (st.state == CLIENT_CONN_BACKOFF)
            break; /* closed: what was written failed, what waits would wait for a reconnect */
        uint8_t sink[4096]; /* requests the client writes after the handshake */
        while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
    client_destroy(cl);
    GREGOR_ASSERT(calls[0] == 1 && calls[1] == 1);
    close(fd);
    for (int i = 0; i < 64; i++) { /* a reconnect that raced the destroy */
        int extra = accept4(fuzz_listener, NULL, NULL, SOCK_NONBLOCK);
        if (extra < 0)
            break;
        close(extra);
    }
    loop_run_once(fuzz_loop, 0); /* posted tasks of this client are gone: unposted at destroy */
    return 0;
}
