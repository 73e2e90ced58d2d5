/* Unit tests for net/http: requests through a socketpair (http_adopt) and a real loopback
 * listener, on the real loop. Parsing and its limits (head, headers, body, path escapes),
 * keep-alive and Connection: close, HTTP/1.0, HEAD, pipelined requests answered in order with
 * one up at a time, an answer given later, a client that goes away meanwhile (ASan checks the
 * frees), a client that reads nothing (it stops being read), the connection bound, idle and
 * trickled requests timing out, and http_query's decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "net/http.h"
#include "net/loop.h"

#define BIG_ANSWER (600u * 1024u)

struct fixture {
    struct loop *loop;
    struct http_server *srv;
    int calls;
    char paths[64][128];        /* the path of each request, in order */
    struct http_req *held;      /* a request answered later ("/hold") */
    char body_seen[4096];
    size_t body_len_seen;
    char *big;
};

static void on_request(void *ctx, struct http_req *req)
{
    struct fixture *f = ctx;
    if (f->calls < 64)
        snprintf(f->paths[f->calls], sizeof(f->paths[0]), "%s", req->path);
    f->calls++;
    if (strcmp(req->path, "/hold") == 0) {
        assert_null(f->held); /* one request of a connection up at a time */
        f->held = req;
        return;
    }
    if (strcmp(req->path, "/big") == 0) {
        http_respond(req, 200, "text/plain", NULL, f->big, BIG_ANSWER);
        return;
    }
    if (strcmp(req->path, "/body") == 0) {
        size_t n = req->body_len < sizeof(f->body_seen) ? req->body_len : sizeof(f->body_seen) - 1;
        memcpy(f->body_seen, req->body, n);
        f->body_len_seen = req->body_len;
        assert_int_equal(req->body[req->body_len], 0);
    }
    char out[256];
    int n = snprintf(out, sizeof(out), "%s|%s", req->path, req->query);
    http_respond(req, 200, "text/plain", "X-Test: 1\r\n", out, (size_t)n);
}

static struct fixture *setup(size_t max_body, int max_conns, int64_t idle_ms)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->loop = loop_create(1024);
    struct http_limits lim = {.max_body = max_body, .max_connections = max_conns,
                              .idle_ms = idle_ms};
    f->srv = http_create(f->loop, &lim, on_request, f);
    assert_non_null(f->srv);
    f->big = malloc(BIG_ANSWER);
    memset(f->big, 'b', BIG_ANSWER);
    return f;
}

static void teardown(struct fixture *f)
{
    http_destroy(f->srv);
    loop_destroy(f->loop);
    free(f->big);
    free(f);
}

/* A client socket served by f (the other end adopted). */
static int client(struct fixture *f)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(http_adopt(f->srv, sv[1], "test:1"), 0);
    return sv[0];
}

static void turns(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++)
        loop_run_once(f->loop, 5);
}

static void send_all(int fd, const char *s, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        assert_true(w > 0);
        off += (size_t)w;
    }
}
#define SEND(fd, lit) send_all(fd, lit, strlen(lit))

/* Reads what the server sent within about ms of loop turns into buf (NUL-terminated); *eof
 * tells whether the server closed. Returns the bytes read. */
static size_t drain(struct fixture *f, int fd, char *buf, size_t cap, int ms, bool *eof)
{
    size_t len = 0;
    *eof = false;
    int64_t end = mono_ms() + ms;
    while (mono_ms() < end) {
        loop_run_once(f->loop, 5);
        for (;;) {
            ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
            if (n > 0) {
                len += (size_t)n;
                if (len == cap - 1)
                    break;
                continue;
            }
            if (n == 0)
                *eof = true;
            break;
        }
        if (*eof || len == cap - 1)
            break;
    }
    buf[len] = '\0';
    return len;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_keep_alive_and_close(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    int fd = client(f);
    char buf[8192];
    bool eof;
    SEND(fd, "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 50, &eof);
    assert_false(eof);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Length: 6\r\n"));
    assert_non_null(strstr(buf, "X-Test: 1\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\n/a|x=1"));
    assert_null(strstr(buf, "Connection:"));
    /* Bare LF line ends are accepted; Connection: close ends it after the answer. */
    SEND(fd, "GET /b HTTP/1.1\nHost: h\nConnection: keep-alive, close\n\n");
    drain(f, fd, buf, sizeof(buf), 200, &eof);
    assert_true(eof);
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_non_null(strstr(buf, "/b|"));
    close(fd);
    /* HTTP/1.0 closes by default, keeps alive when asked. */
    fd = client(f);
    SEND(fd, "GET /c HTTP/1.0\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 200, &eof);
    assert_true(eof);
    assert_non_null(strstr(buf, "/c|"));
    close(fd);
    fd = client(f);
    SEND(fd, "GET /d HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 50, &eof);
    assert_false(eof);
    assert_non_null(strstr(buf, "Connection: keep-alive\r\n"));
    close(fd);
    turns(f, 3);
    assert_int_equal(http_connection_count(f->srv), 0);
    teardown(f);
}

static void test_head_has_no_body(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    int fd = client(f);
    char buf[8192];
    bool eof;
    SEND(fd, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 100, &eof);
    /* The HEAD answer names the body's length and sends none: the next answer follows. */
    const char *second = strstr(buf, "\r\n\r\nHTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_non_null(strstr(buf, "Content-Length: 3\r\n"));
    assert_int_equal(count(buf, "/h|"), 0);
    assert_non_null(strstr(second, "/g|"));
    close(fd);
    teardown(f);
}

static void test_pipelined_one_up_at_a_time(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    int fd = client(f);
    char buf[8192];
    bool eof;
    SEND(fd, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /3?q HTTP/1.1\r\nHost: h\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 50, &eof);
    assert_int_equal(f->calls, 1); /* the others wait for the first answer */
    assert_int_equal(buf[0], '\0');
    assert_non_null(f->held);
    assert_false(http_req_gone(f->held));
    http_respond(f->held, 202, NULL, NULL, "late", 4);
    f->held = NULL;
    drain(f, fd, buf, sizeof(buf), 100, &eof);
    assert_int_equal(f->calls, 3);
    assert_string_equal(f->paths[1], "/2");
    assert_string_equal(f->paths[2], "/3");
    const char *a = strstr(buf, "late"), *b = strstr(buf, "/2|"), *c = strstr(buf, "/3|q");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_non_null(strstr(buf, "HTTP/1.1 202 Accepted\r\n"));
    close(fd);
    teardown(f);
}

static void test_client_gone_while_up(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    int fd = client(f);
    SEND(fd, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    turns(f, 3);
    assert_non_null(f->held);
    close(fd);
    turns(f, 3);
    assert_int_equal(http_connection_count(f->srv), 0);
    assert_true(http_req_gone(f->held));
    assert_string_equal(f->held->path, "/hold"); /* still valid */
    http_respond(f->held, 200, NULL, NULL, "x", 1); /* dropped, freed */
    f->held = NULL;
    /* And one still up when the server goes: http_destroy frees it. */
    fd = client(f);
    SEND(fd, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    turns(f, 3);
    assert_non_null(f->held);
    close(fd);
    teardown(f);
}

static void test_body(void **state)
{
    (void)state;
    struct fixture *f = setup(100, 0, 0);
    int fd = client(f);
    char buf[8192];
    bool eof;
    SEND(fd, "POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello");
    drain(f, fd, buf, sizeof(buf), 30, &eof);
    assert_int_equal(f->calls, 0);
    SEND(fd, " world");
    drain(f, fd, buf, sizeof(buf), 50, &eof);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->body_len_seen, 11);
    assert_memory_equal(f->body_seen, "hello world", 11);
    /* Expect: 100-continue gets its interim answer before the body, then the real one. */
    SEND(fd, "POST /body HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 30, &eof);
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    SEND(fd, "abc");
    drain(f, fd, buf, sizeof(buf), 50, &eof);
    assert_int_equal(f->calls, 2);
    assert_int_equal(count(buf, "100 Continue"), 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_memory_equal(f->body_seen, "abc", 3);
    /* Over max_body: 413 and closed, without reading the body. */
    SEND(fd, "POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 200, &eof);
    assert_true(eof);
    assert_non_null(strstr(buf, "HTTP/1.1 413 "));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    close(fd);
    /* A chunked body: 411. */
    fd = client(f);
    SEND(fd, "POST /body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    drain(f, fd, buf, sizeof(buf), 200, &eof);
    assert_true(eof);
    assert_non_null(strstr(buf, "HTTP/1.1 411 "));
    close(fd);
    assert_int_equal(f->calls, 2);
    teardown(f);
}

/* One request's answer status through a fresh connection (and that the connection closed
 * after a refusal). */
static int status_of(struct fixture *f, const char *req, size_t len)
{
    int fd = client(f);
    send_all(fd, req, len);
    char buf[4096];
    bool eof;
    drain(f, fd, buf, sizeof(buf), 300, &eof);
    close(fd);
    int st = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &st) != 1)
        return -1;
    if (st >= 400)
        assert_true(eof);
    return st;
}
#define STATUS(f, lit) status_of(f, lit, strlen(lit))

static void test_bad_input(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    assert_int_equal(STATUS(f, "garbage\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET / HTTP/1.1\r\n\r\n"), 400);            /* no Host */
    assert_int_equal(STATUS(f, "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
    assert_int_equal(STATUS(f, "BREW / HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
    assert_int_equal(STATUS(f, "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                               "Content-Length: 2\r\n\r\nab"), 400);
    assert_int_equal(STATUS(f, "GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET /a%zzb HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(STATUS(f, "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(f->calls, 0);
    /* %XX in the path is decoded; the target and query stay as sent. */
    assert_int_equal(STATUS(f, "GET /x%2Fy%41?b=%41 HTTP/1.1\r\nHost: h\r\n\r\n"), 200);
    assert_string_equal(f->paths[0], "/x/yA");
    /* A head over HTTP_HEAD_MAX: 431, or 414 when the request line alone is. */
    char *big = malloc(HTTP_HEAD_MAX + 100);
    int n = snprintf(big, HTTP_HEAD_MAX + 100, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
    memset(big + n, 'a', HTTP_HEAD_MAX + 100 - (size_t)n);
    assert_int_equal(status_of(f, big, HTTP_HEAD_MAX + 100), 431);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', HTTP_HEAD_MAX + 95);
    assert_int_equal(status_of(f, big, HTTP_HEAD_MAX + 100), 414);
    free(big);
    /* More than HTTP_HEADERS_MAX headers: 431. */
    char many[4096];
    n = snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < HTTP_HEADERS_MAX; i++)
        n += snprintf(many + n, sizeof(many) - (size_t)n, "X%d: v\r\n", i);
    n += snprintf(many + n, sizeof(many) - (size_t)n, "\r\n");
    assert_int_equal(status_of(f, many, (size_t)n), 431);
    assert_int_equal(f->calls, 1);
    teardown(f);
}

static void test_parse_without_sockets(void **state)
{
    (void)state;
    struct http_req *r;
    size_t used;
    const char *s = "GET /p?a=1 HTTP/1.1\r\nHost: h\r\nX-A:  v v \r\n\r\nGET /next";
    assert_int_equal(http_parse((const uint8_t *)s, strlen(s), 10, &r, &used), 1);
    assert_int_equal(used, strlen(s) - strlen("GET /next"));
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->target, "/p?a=1");
    assert_string_equal(r->path, "/p");
    assert_string_equal(r->query, "a=1");
    assert_string_equal(http_header(r, "x-a"), "v v");
    assert_null(http_header(r, "x-b"));
    assert_int_equal(r->body_len, 0);
    http_req_free(r);
    /* Incomplete: 0, with the whole size once the head is there. */
    assert_int_equal(http_parse((const uint8_t *)"GET / HT", 8, 10, &r, &used), 0);
    assert_int_equal(used, 0);
    s = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab";
    assert_int_equal(http_parse((const uint8_t *)s, strlen(s), 10, &r, &used), 0);
    assert_int_equal(used, strlen(s) + 3);
    assert_int_equal(http_parse((const uint8_t *)s, strlen(s), 4, &r, &used), -413);
}

static void test_query(void **state)
{
    (void)state;
    struct http_req *r;
    size_t used;
    const char *s = "GET /q?a=1&b=x%20y+z&c&%61a=q&e=%zz&long=0123456789 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(http_parse((const uint8_t *)s, strlen(s), 0, &r, &used), 1);
    char buf[8];
    assert_string_equal(http_query(r, "a", buf, sizeof(buf)), "1");
    assert_string_equal(http_query(r, "b", buf, sizeof(buf)), "x y z");
    assert_string_equal(http_query(r, "c", buf, sizeof(buf)), "");
    assert_string_equal(http_query(r, "aa", buf, sizeof(buf)), "q");
    assert_null(http_query(r, "e", buf, sizeof(buf)));    /* a bad escape */
    assert_null(http_query(r, "long", buf, sizeof(buf))); /* longer than cap - 1 */
    assert_null(http_query(r, "d", buf, sizeof(buf)));
    assert_null(http_query(r, "", buf, sizeof(buf)));
    http_req_free(r);
}

/* A client that sends requests and reads no answer: once HTTP_OUT_MAX waits, no further
 * request goes up (and the connection is not read); reading lets them all through. */
static void test_slow_reader_is_not_read(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    int fd = client(f);
    char reqs[1024];
    size_t n = 0;
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(reqs + n, sizeof(reqs) - n, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    send_all(fd, reqs, n);
    turns(f, 20);
    int up = f->calls;
    assert_true(up >= 1 && up <= 4); /* 1 MiB of output + what the socket took, 600 KiB each */
    turns(f, 20);
    assert_int_equal(f->calls, up);
    size_t total = 0;
    char *buf = malloc(1 << 16);
    int64_t end = mono_ms() + 5000;
    while (total < 10 * BIG_ANSWER && mono_ms() < end) {
        loop_run_once(f->loop, 1);
        ssize_t r = recv(fd, buf, 1 << 16, 0);
        if (r > 0)
            total += (size_t)r;
    }
    free(buf);
    assert_int_equal(f->calls, 10);
    assert_true(total > 10 * BIG_ANSWER);
    close(fd);
    teardown(f);
}

/* Pipelined requests with bodies that together pass the body bound: each is within it, so
 * every one is answered (the connection is read one head or one body's room at a time). */
static void test_pipelined_bodies(void **state)
{
    (void)state;
    struct fixture *f = setup(100000, 0, 0);
    int fd = client(f);
    size_t body = 90000, one = 128 + body, total = 12 * one;
    char *reqs = malloc(total);
    size_t n = 0;
    for (int i = 0; i < 12; i++) {
        n += (size_t)snprintf(reqs + n, total - n, "POST /body HTTP/1.1\r\nHost: h\r\n"
                              "Content-Length: %zu\r\n\r\n", body);
        memset(reqs + n, 'a' + i, body);
        n += body;
    }
    size_t off = 0;
    char buf[8192];
    size_t got = 0;
    int64_t end = mono_ms() + 5000;
    while ((off < n || count(buf, "HTTP/1.1 200 OK") < 12) && mono_ms() < end) {
        if (off < n) {
            ssize_t w = send(fd, reqs + off, n - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
        }
        loop_run_once(f->loop, 1);
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r > 0)
            got += (size_t)r;
        buf[got] = '\0';
    }
    assert_int_equal(off, n);
    assert_int_equal(count(buf, "HTTP/1.1 200 OK"), 12);
    assert_int_equal(f->calls, 12);
    assert_int_equal(f->body_len_seen, body);
    assert_int_equal(f->body_seen[0], 'a' + 11);
    free(reqs);
    close(fd);
    teardown(f);
}

static void test_connection_bound(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 2, 0);
    int a = client(f), b = client(f);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    errno = 0;
    assert_int_equal(http_adopt(f->srv, sv[1], "test:3"), -1);
    assert_int_equal(errno, EMFILE);
    char buf[512];
    ssize_t r = recv(sv[0], buf, sizeof(buf) - 1, 0);
    assert_true(r > 0);
    buf[r] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 503 "));
    assert_int_equal(recv(sv[0], buf, sizeof(buf), 0), 0); /* closed */
    close(sv[0]);
    assert_int_equal(http_connection_count(f->srv), 2);
    close(a);
    turns(f, 3);
    assert_int_equal(http_connection_count(f->srv), 1);
    int c = client(f);
    close(b);
    close(c);
    teardown(f);
}

static void test_idle_and_trickle_time_out(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 100);
    int idle = client(f), slow = client(f);
    SEND(slow, "GET /");
    char buf[1024];
    bool eof = false;
    size_t got = 0;
    int64_t end = mono_ms() + 2000;
    while (!eof && mono_ms() < end) {
        SEND(slow, "a"); /* a byte every 20 ms: active, but the request never completes */
        got += drain(f, slow, buf + got, sizeof(buf) - got, 20, &eof);
    }
    assert_true(eof);
    assert_non_null(strstr(buf, "HTTP/1.1 408 "));
    drain(f, idle, buf, sizeof(buf), 300, &eof);
    assert_true(eof);
    assert_int_equal(http_connection_count(f->srv), 0);
    close(idle);
    close(slow);
    teardown(f);
}

static void test_loopback_listener(void **state)
{
    (void)state;
    struct fixture *f = setup(0, 0, 0);
    assert_int_equal(http_listen(f->srv, "127.0.0.1", 0), 0);
    assert_true(http_port(f->srv) > 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(f->srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    SEND(fd, "GET /over-tcp HTTP/1.1\r\nHost: h\r\n\r\n");
    char buf[1024];
    bool eof;
    drain(f, fd, buf, sizeof(buf), 100, &eof);
    assert_non_null(strstr(buf, "/over-tcp|"));
    close(fd);
    assert_int_equal(http_listen(f->srv, "not-an-address", 0), -1);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_and_close),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_pipelined_one_up_at_a_time),
        cmocka_unit_test(test_client_gone_while_up),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_parse_without_sockets),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_slow_reader_is_not_read),
        cmocka_unit_test(test_pipelined_bodies),
        cmocka_unit_test(test_connection_bound),
        cmocka_unit_test(test_idle_and_trickle_time_out),
        cmocka_unit_test(test_loopback_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
