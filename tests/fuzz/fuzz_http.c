/* fuzz_http: the HTTP server's request parser (src/net/http.c) on arbitrary bytes, as any
 * client of gregor.http.listener could send them. First the pure parser, request after
 * request through the input as a pipelining client would send it: nothing may crash or read
 * past the input (ASan), a request taken uses at least one byte and no more than were given,
 * its strings hold what the bounds say, and a refusal is one of the statuses http.h names.
 * Then the same bytes through a real server on the loop over a socketpair, written in chunks
 * whose size the first byte picks: every answer must be well formed and the server must not
 * leak or touch freed memory (a request is answered now or one turn later, alternating). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "net/http.h"
#include "net/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_BODY 4096

static void check_req(const struct http_req *r)
{
    GREGOR_ASSERT(r->method[0] != '\0' && strlen(r->method) <= 16);
    GREGOR_ASSERT(r->target[0] == '/' && r->path[0] == '/');
    GREGOR_ASSERT(strlen(r->path) <= strlen(r->target));
    GREGOR_ASSERT(r->nheaders >= 0 && r->nheaders <= HTTP_HEADERS_MAX);
    for (int i = 0; i < r->nheaders; i++) {
        GREGOR_ASSERT(r->headers[i].name[0] != '\0');
        size_t vl = strlen(r->headers[i].value);
        GREGOR_ASSERT(vl == 0 || (r->headers[i].value[0] != ' ' && r->headers[i].value[vl - 1] != ' '));
        GREGOR_ASSERT(http_header(r, r->headers[i].name) != NULL);
    }
    GREGOR_ASSERT(r->body_len <= FUZZ_MAX_BODY && r->body[r->body_len] == '\0');
    char buf[64];
    static const char *const names[] = {"a", "partition", "from", "", "x y"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        const char *v = http_query(r, names[i], buf, sizeof(buf));
        GREGOR_ASSERT(v == NULL || (v == buf && strlen(v) < sizeof(buf)));
    }
}

static void parse_all(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (int n = 0; n < 1000 && off < size; n++) {
        struct http_req *r;
        size_t used;
        int rc = http_parse(data + off, size - off, FUZZ_MAX_BODY, &r, &used);
        if (rc == 1) {
            GREGOR_ASSERT(used > 0 && used <= size - off);
            check_req(r);
            http_req_free(r);
            off += used;
            continue;
        }
        GREGOR_ASSERT(r == NULL);
        if (rc == 0) {
            GREGOR_ASSERT(used == 0 || (used > size - off && used <= HTTP_HEAD_MAX + FUZZ_MAX_BODY));
        } else {
            int st = -rc;
            GREGOR_ASSERT(st == 400 || st == 411 || st == 413 || st == 414 || st == 431 ||
                          st == 501 || st == 505 || st == 503);
        }
        break;
    }
}

struct held {
    struct http_req *req;
    int answered;
};

static void on_request(void *ctx, struct http_req *req)
{
    struct held *h = ctx;
    check_req(req);
    if ((h->answered++ & 1) == 0 && h->req == NULL) {
        h->req = req; /* answered on a later turn */
        return;
    }
    http_respond(req, 200, "text/plain", NULL, req->path, strlen(req->path));
}

static void through_server(const uint8_t *data, size_t size)
{
    struct loop *l = loop_create(64);
    struct held h = {0};
    struct http_limits lim = {.max_body = FUZZ_MAX_BODY, .max_connections = 4, .idle_ms = 60000};
    struct http_server *s = http_create(l, &lim, on_request, &h);
    int sv[2];
    GREGOR_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    GREGOR_ASSERT(http_adopt(s, sv[1], "fuzz:1") == 0);
    size_t chunk = size > 0 ? (size_t)data[0] * 7 + 1 : 1;
    size_t off = 0;
    uint8_t out[65536];
    size_t outn = 0;
    bool eof = false;
    for (int turn = 0; turn < 400 && !eof; turn++) {
        if (off < size) {
            size_t n = size - off < chunk ? size - off : chunk;
            ssize_t w = send(sv[0], data + off, n, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = size;
        } else if (turn > 0 && h.req == NULL) {
            shutdown(sv[0], SHUT_WR); /* all sent: the server answers what it has, then closes */
        }
        loop_run_once(l, 0);
        if (h.req != NULL && (turn & 3) == 3) {
            http_respond(h.req, 204, NULL, "X-Late: 1\r\n", "", 0);
            h.req = NULL;
        }
        for (;;) {
            ssize_t r = recv(sv[0], out + outn, sizeof(out) - outn, 0);
            if (r == 0)
                eof = true;
            if (r <= 0)
                break;
            outn += (size_t)r;
            if (outn == sizeof(out)) {
                GREGOR_ASSERT(memcmp(out, "HTTP/1.1 ", 9) == 0);
                outn = 0; /* only the first answer's start is checked */
            }
        }
    }
    if (outn > 0)
        GREGOR_ASSERT(outn < 9 || memcmp(out, "HTTP/1.1 ", 9) == 0);
    close(sv[0]);
    http_destroy(s); /* frees a request still held */
    loop_destroy(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        logging_set_level(LOG_LEVEL_ERROR);
        quiet = true;
    }
    uint8_t *copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
    memcpy(copy, data, size);
    parse_all(copy, size);
    through_server(copy, size);
    free(copy);
    return 0;
}
