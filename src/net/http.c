/* http: the HTTP/1.1 server of net/http.h. A connection reads into one buffer (at most
 * HTTP_HEAD_MAX bytes of head plus max_body bytes of body), hands one request up at a time and
 * reads nothing while it is up; pipelined requests already read wait in the buffer and go up
 * one by one from a posted task after each answer. Output is one buffer per connection, and
 * no further request goes up while more than HTTP_OUT_MAX bytes wait in it: a client that
 * does not read its answers stops being read. The request-head parser (http_parse) is a pure
 * function, so it is fuzzed without sockets. Loop thread only. */
#include "net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "net/loop.h"
#include "net/sock.h"

#define HTTP_WHO "HttpServer"
/* accept(2) out of descriptors or memory: pause accepting, doubling up to the last pause. */
#define HTTP_ACCEPT_BACKOFF_MIN_MS 10
#define HTTP_ACCEPT_BACKOFF_MAX_MS 1000
#define HTTP_READ_CHUNK 4096u

struct http_conn;

/* A request that is up: the public part first, then what its answer needs. One allocation,
 * the strings after the struct. */
struct http_req_int {
    struct http_req pub;
    struct http_server *srv;
    struct http_conn *conn;        /* NULL once the connection went away */
    struct http_req_int *orphan_prev, *orphan_next; /* in srv->orphans when conn is NULL */
    bool head;                     /* HEAD: no body in the answer */
    bool keep_alive;
    bool http10;
    struct http_header hdrs[HTTP_HEADERS_MAX];
    char data[];
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next;
    int fd;
    uint64_t id;
    char peer[64];
    uint8_t *in;                   /* in_len bytes read, not yet parsed */
    size_t in_len, in_cap;
    size_t scanned;                /* bytes of in searched for the head's end */
    bool continue_sent;            /* "100 Continue" went out for the request being read */
    struct http_req_int *up;       /* the request up, or NULL */
    uint8_t *out;                  /* out_len bytes to send from out_off */
    size_t out_len, out_off, out_cap;
    bool peer_eof;                 /* read returned 0: answer what was read, then close */
    bool closing;                  /* close once out drained (the last answer is queued) */
    unsigned interest;
    int64_t last_active_ms;        /* the last byte read or written */
    int64_t req_started_ms;        /* the first byte of an incomplete request; 0: none */
    struct loop_task pump;
};

struct http_server {
    struct loop *loop;
    struct http_limits lim;
    http_handler_fn fn;
    void *ctx;
    int listen_fd;
    int port;
    struct http_conn *conns;
    int nconns;
    struct http_req_int *orphans;
    uint64_t next_id;
    int accept_backoff_ms;
    uint64_t accept_timer;
    uint64_t sweep_timer;
};

static void conn_io(struct loop *l, int fd, void *arg, unsigned events);
static void conn_pump(struct loop *l, void *arg);
static void conn_free(struct http_conn *c);

/* ---- the parser ------------------------------------------------------------------------- */

static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static const char *const known_methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE",
                                            "OPTIONS", "PATCH", "TRACE", "CONNECT"};

/* Whether the comma-separated header value list holds token (case-insensitive). */
static bool list_has(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

/* The end of the head in buf[0..len): the index after its blank line, or 0. Lines end in
 * CRLF or a bare LF (RFC 9112 2.2 lets a server accept LF). */
static size_t head_end(const uint8_t *buf, size_t len, size_t from)
{
    for (size_t i = from; i < len; i++) {
        if (buf[i] != '\n' || i == 0)
            continue;
        if (buf[i - 1] == '\n')
            return i + 1;
        if (buf[i - 1] == '\r' && i >= 2 && buf[i - 2] == '\n')
            return i + 1;
    }
    return 0;
}

/* Whether the start of a request still incomplete is already wrong (a method of other bytes
 * or longer than 16, a target not starting with '/'), so garbage is refused at once rather
 * than waited on. Looks at the first bytes only: cheap on every read. */
static bool start_is_bad(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len && i < 64 && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    size_t m0 = i;
    while (i < len && i - m0 <= 16 && is_tchar(buf[i]))
        i++;
    if (i - m0 > 16)
        return true;
    if (i == len)
        return false;
    if (buf[i] != ' ')
        return true;
    return i + 1 < len && buf[i + 1] != '/';
}

int http_parse(const uint8_t *buf, size_t len, size_t max_body, struct http_req **out,
               size_t *used)
{
    *out = NULL;
    *used = 0;
    size_t hend = head_end(buf, len, 0);
    if (hend == 0) {
        if (start_is_bad(buf, len))
            return -400;
        if (len < HTTP_HEAD_MAX)
            return 0;
        return memchr(buf, '\n', HTTP_HEAD_MAX) == NULL ? -414 : -431;
    }
    if (hend > HTTP_HEAD_MAX)
        return memchr(buf, '\n', HTTP_HEAD_MAX) == NULL ? -414 : -431;
    /* The request line: method SP target SP version. */
    size_t i = 0;
    while (i < hend && (buf[i] == '\r' || buf[i] == '\n'))
        i++; /* RFC 9112 2.2: empty lines before a request are ignored */
    size_t m0 = i;
    while (i < hend && is_tchar(buf[i]))
        i++;
    size_t mlen = i - m0;
    if (mlen == 0 || mlen > 16 || buf[i] != ' ')
        return -400;
    size_t t0 = ++i;
    while (i < hend && buf[i] > 0x20 && buf[i] < 0x7f)
        i++;
    size_t tlen = i - t0;
    if (tlen == 0 || buf[i] != ' ')
        return -400;
    size_t v0 = ++i;
    while (i < hend && buf[i] != '\r' && buf[i] != '\n')
        i++;
    size_t vlen = i - v0;
    if (buf[i] == '\r') {
        if (buf[i + 1] != '\n')
            return -400;
        i++;
    }
    i++; /* past the LF */
    bool http10;
    if (vlen == 8 && memcmp(buf + v0, "HTTP/1.1", 8) == 0)
        http10 = false;
    else if (vlen == 8 && memcmp(buf + v0, "HTTP/1.0", 8) == 0)
        http10 = true;
    else if (vlen == 8 && memcmp(buf + v0, "HTTP/", 5) == 0 && buf[v0 + 5] >= '0' &&
             buf[v0 + 5] <= '9' && buf[v0 + 6] == '.' && buf[v0 + 7] >= '0' && buf[v0 + 7] <= '9')
        return -505;
    else
        return -400;
    if (buf[t0] != '/')
        return -400; /* origin-form only: no proxy's absolute-form, no "*" */
    bool known = false;
    for (size_t k = 0; k < ARRAY_LEN(known_methods); k++)
        if (strlen(known_methods[k]) == mlen && memcmp(buf + m0, known_methods[k], mlen) == 0)
            known = true;
    if (!known)
        return -501;

    /* The headers: first their lines, checked and counted. */
    struct {
        size_t n0, nlen, v0, vlen;
    } h[HTTP_HEADERS_MAX];
    int nh = 0;
    while (i < hend) {
        size_t l0 = i;
        while (i < hend && buf[i] != '\n')
            i++;
        size_t l1 = i; /* at the LF */
        i++;
        if (l1 > l0 && buf[l1 - 1] == '\r')
            l1--;
        if (l1 == l0)
            break; /* the blank line */
        if (nh == HTTP_HEADERS_MAX)
            return -431;
        size_t p = l0;
        while (p < l1 && is_tchar(buf[p]))
            p++;
        if (p == l0 || p >= l1 || buf[p] != ':')
            return -400; /* no name, a blank before the colon, or an obsolete folded line */
        h[nh].n0 = l0;
        h[nh].nlen = p - l0;
        p++;
        while (p < l1 && (buf[p] == ' ' || buf[p] == '\t'))
            p++;
        size_t e = l1;
        while (e > p && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
            e--;
        for (size_t q = p; q < e; q++)
            if ((buf[q] < 0x20 && buf[q] != '\t') || buf[q] == 0x7f)
                return -400;
        h[nh].v0 = p;
        h[nh].vlen = e - p;
        nh++;
    }
    GREGOR_ASSERT(i == hend);

    /* Framing: Content-Length only (one value, digits); a Transfer-Encoding is refused. */
    bool have_len = false, have_host = false;
    uint64_t clen = 0;
    for (int k = 0; k < nh; k++) {
        const char *n = (const char *)buf + h[k].n0;
        if (h[k].nlen == 17 && strncasecmp(n, "transfer-encoding", 17) == 0)
            return -411;
        if (h[k].nlen == 4 && strncasecmp(n, "host", 4) == 0) {
            if (have_host)
                return -400;
            have_host = true;
        }
        if (h[k].nlen == 14 && strncasecmp(n, "content-length", 14) == 0) {
            uint64_t v = 0;
            if (h[k].vlen == 0 || h[k].vlen > 19)
                return h[k].vlen > 19 ? -413 : -400;
            for (size_t q = 0; q < h[k].vlen; q++) {
                unsigned char ch = buf[h[k].v0 + q];
                if (ch < '0' || ch > '9')
                    return -400;
                v = v * 10 + (uint64_t)(ch - '0');
            }
            if (have_len && v != clen)
                return -400;
            have_len = true;
            clen = v;
        }
    }
    if (!http10 && !have_host)
        return -400; /* RFC 9112 3.2: a 1.1 request without Host */
    if (clen > max_body)
        return -413;
    size_t total = hend + (size_t)clen;
    if (len < total) {
        *used = total; /* what the whole request needs */
        return 0;
    }

    /* Complete: one allocation holding the strings. Each copy is at most the head (twice:
     * target and path) plus the body and a NUL each. */
    size_t strings = mlen + 1 + 2 * (tlen + 1) + 1 + (size_t)clen + 1;
    for (int k = 0; k < nh; k++)
        strings += h[k].nlen + 1 + h[k].vlen + 1;
    struct http_req_int *r = calloc(1, sizeof(*r) + strings);
    if (r == NULL)
        return -503;
    char *w = r->data;
#define COPY(dst, src, n)                                                                      \
    do {                                                                                       \
        memcpy(w, (src), (n));                                                                 \
        w[(n)] = '\0';                                                                         \
        (dst) = w;                                                                             \
        w += (n) + 1;                                                                          \
    } while (0)
    COPY(r->pub.method, buf + m0, mlen);
    COPY(r->pub.target, buf + t0, tlen);
    char *path = w;
    COPY(r->pub.path, buf + t0, tlen);
    char *q = strchr(path, '?');
    if (q != NULL) {
        *q = '\0';
        r->pub.query = r->pub.target + (q - path) + 1;
    } else {
        r->pub.query = "";
    }
    char *frag = strchr(path, '#');
    if (frag != NULL)
        *frag = '\0';
    if (pct_decode_inplace(path) < 0) {
        free(r);
        return -400;
    }
    for (int k = 0; k < nh; k++) {
        COPY(r->hdrs[k].name, buf + h[k].n0, h[k].nlen);
        COPY(r->hdrs[k].value, buf + h[k].v0, h[k].vlen);
    }
    uint8_t *body = (uint8_t *)w;
    memcpy(body, buf + hend, (size_t)clen);
    body[clen] = '\0';
    w += clen + 1;
    r->pub.peer = "";
#undef COPY
    GREGOR_ASSERT((size_t)(w - r->data) <= strings);
    r->pub.headers = r->hdrs;
    r->pub.nheaders = nh;
    r->pub.body = body;
    r->pub.body_len = (size_t)clen;
    r->head = strcmp(r->pub.method, "HEAD") == 0;
    r->http10 = http10;
    const char *conn_hdr = http_header(&r->pub, "connection");
    if (http10)
        r->keep_alive = conn_hdr != NULL && list_has(conn_hdr, "keep-alive");
    else
        r->keep_alive = conn_hdr == NULL || !list_has(conn_hdr, "close");
    *out = &r->pub;
    *used = total;
    return 1;
}

void http_req_free(struct http_req *req)
{
    free(req);
}

const char *http_header(const struct http_req *req, const char *name)
{
    for (int i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *http_query(const struct http_req *req, const char *name, char *buf, size_t cap)
{
    if (cap == 0)
        return NULL;
    size_t nl = strlen(name);
    const char *p = req->query;
    while (*p) {
        const char *e = strchr(p, '&');
        if (e == NULL)
            e = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *kend = eq != NULL ? eq : e;
        /* The name may be escaped too: decode it into buf first (bounded by cap). */
        size_t kl = (size_t)(kend - p);
        if (kl < cap) {
            memcpy(buf, p, kl);
            buf[kl] = '\0';
            for (char *s = buf; *s; s++)
                if (*s == '+')
                    *s = ' ';
            if (pct_decode_inplace(buf) >= 0 && strlen(buf) == nl && strcmp(buf, name) == 0) {
                const char *v = eq != NULL ? eq + 1 : e;
                size_t vl = (size_t)(e - v);
                if (vl >= cap)
                    return NULL;
                memcpy(buf, v, vl);
                buf[vl] = '\0';
                for (char *s = buf; *s; s++)
                    if (*s == '+')
                        *s = ' ';
                if (pct_decode_inplace(buf) < 0)
                    return NULL;
                return buf;
            }
        }
        p = *e ? e + 1 : e;
    }
    return NULL;
}

/* ---- answers ---------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

static void conn_want(struct http_conn *c);

/* Appends n bytes to c's output; false when out of memory. */
static bool out_append(struct http_conn *c, const void *p, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap < c->out_len + n)
                cap *= 2;
            uint8_t *nb = realloc(c->out, cap);
            if (nb == NULL)
                return false;
            c->out = nb;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return true;
}

/* Queues an answer on c. close: the connection ends after it. */
static void queue_answer(struct http_conn *c, int status, bool http10, bool head, bool close,
                         const char *content_type, const char *extra, const void *body,
                         size_t len)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (content_type != NULL)
        n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Content-Type: %.200s\r\n", content_type);
    n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Content-Length: %zu\r\n%s", len,
                  close ? "Connection: close\r\n" : http10 ? "Connection: keep-alive\r\n" : "");
    GREGOR_ASSERT(n > 0 && (size_t)n < sizeof(hdr));
    bool ok = out_append(c, hdr, (size_t)n) &&
              (extra == NULL || out_append(c, extra, strlen(extra))) && out_append(c, "\r\n", 2) &&
              (head || len == 0 || out_append(c, body, len));
    if (!ok) {
        LOG_LIMITED(LOG_LEVEL_WARN, HTTP_WHO, "no memory for an answer to %s; closing", c->peer);
        c->closing = true;
        c->out_len = c->out_off = 0; /* a half answer must not go out */
    }
    if (close)
        c->closing = true;
    c->last_active_ms = mono_ms();
}

/* Bad input: the status, a short text, and the connection closed once it is out. */
static void refuse(struct http_conn *c, int status)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
    LOG_LIMITED(LOG_LEVEL_INFO, HTTP_WHO, "refusing a request from %s: %d %s", c->peer, status,
                reason(status));
    queue_answer(c, status, false, false, true, "text/plain; charset=utf-8", NULL, body,
                 (size_t)n);
    c->in_len = 0;
    c->req_started_ms = 0;
}

static void orphan_unlink(struct http_req_int *r)
{
    struct http_server *s = r->srv;
    if (r->orphan_prev != NULL)
        r->orphan_prev->orphan_next = r->orphan_next;
    else if (s->orphans == r)
        s->orphans = r->orphan_next;
    if (r->orphan_next != NULL)
        r->orphan_next->orphan_prev = r->orphan_prev;
    r->orphan_prev = r->orphan_next = NULL;
}

void http_respond(struct http_req *req, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len)
{
    struct http_req_int *r = (struct http_req_int *)req;
    struct http_conn *c = r->conn;
    if (c == NULL) {
        orphan_unlink(r);
        free(r);
        return;
    }
    GREGOR_ASSERT(c->up == r);
    c->up = NULL;
    bool close = !r->keep_alive || c->peer_eof;
    queue_answer(c, status, r->http10, r->head, close, content_type, extra_headers, body, len);
    free(r);
    conn_want(c);
    loop_post(c->srv->loop, &c->pump); /* the next pipelined request, from the loop */
}

bool http_req_gone(const struct http_req *req)
{
    return ((const struct http_req_int *)req)->conn == NULL;
}

/* ---- connections ------------------------------------------------------------------------ */

/* The events c wants: read while nothing is up, it may still send more, and its output is
 * small; write while output waits. */
static void conn_want(struct http_conn *c)
{
    unsigned want = 0;
    if (c->up == NULL && !c->closing && !c->peer_eof && c->out_len - c->out_off <= HTTP_OUT_MAX)
        want |= LOOP_READ;
    if (c->out_len > c->out_off)
        want |= LOOP_WRITE;
    if (want != c->interest) {
        loop_set(c->srv->loop, c->fd, want, conn_io, c);
        c->interest = want;
    }
}

static void conn_close(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->up != NULL) {
        /* The handler answers it later: it waits among the orphans (freed by its answer or
         * by http_destroy). */
        struct http_req_int *r = c->up;
        r->conn = NULL;
        r->orphan_next = s->orphans;
        if (s->orphans != NULL)
            s->orphans->orphan_prev = r;
        s->orphans = r;
        c->up = NULL;
    }
    conn_free(c);
}

static void conn_free(struct http_conn *c)
{
    struct http_server *s = c->srv;
    GREGOR_ASSERT(c->up == NULL);
    loop_unpost(s->loop, &c->pump);
    loop_del(s->loop, c->fd);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    GREGOR_ASSERT(s->nconns >= 0);
    free(c->in);
    free(c->out);
    free(c);
}

/* Sends what it can; false when c was closed. */
static bool conn_flush(struct http_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            conn_close(c);
            return false;
        }
        c->out_off += (size_t)n;
        c->last_active_ms = mono_ms();
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > 64u * 1024u) { /* a big answer's buffer is not kept */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        if (c->closing || (c->peer_eof && c->up == NULL && c->in_len == 0)) {
            conn_close(c);
            return false;
        }
    }
    return true;
}

/* Whether the complete head at the start of buf carries "Expect: 100-continue". */
static bool expects_continue(const uint8_t *buf, size_t len)
{
    size_t hend = head_end(buf, len, 0);
    static const char name[] = "\nexpect:";
    for (size_t i = 0; i + sizeof(name) - 1 < hend; i++) {
        if (strncasecmp((const char *)buf + i, name, sizeof(name) - 1) != 0)
            continue;
        size_t p = i + sizeof(name) - 1;
        while (p < hend && (buf[p] == ' ' || buf[p] == '\t'))
            p++;
        return p + 12 <= hend && strncasecmp((const char *)buf + p, "100-continue", 12) == 0;
    }
    return false;
}

/* Hands up the next complete request in c's buffer, or answers bad input. */
static void conn_parse(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->up != NULL || c->closing || c->in_len == 0 ||
        c->out_len - c->out_off > HTTP_OUT_MAX)
        return;
    /* Cheap until the head is complete: search only the new bytes for its end. */
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    if (head_end(c->in, c->in_len, from) == 0 && c->in_len < HTTP_HEAD_MAX &&
        !start_is_bad(c->in, c->in_len)) {
        c->scanned = c->in_len;
        if (c->req_started_ms == 0)
            c->req_started_ms = mono_ms();
        if (c->peer_eof)
            c->closing = true, c->in_len = 0; /* a head cut short: nothing to answer */
        return;
    }
    struct http_req *req;
    size_t used;
    int rc = http_parse(c->in, c->in_len, s->lim.max_body, &req, &used);
    if (rc < 0) {
        refuse(c, -rc);
        return;
    }
    if (rc == 0) {
        /* The body is still coming: make room for it (bounded by the parse). */
        GREGOR_ASSERT(used > c->in_len && used <= HTTP_HEAD_MAX + s->lim.max_body);
        if (used > c->in_cap) {
            uint8_t *nb = realloc(c->in, used);
            if (nb == NULL) {
                refuse(c, 503);
                return;
            }
            c->in = nb;
            c->in_cap = used;
        }
        if (c->req_started_ms == 0)
            c->req_started_ms = mono_ms();
        if (c->peer_eof)
            c->closing = true, c->in_len = 0;
        else if (!c->continue_sent && expects_continue(c->in, c->in_len)) {
            /* RFC 9110 10.1.1: the client waits for this before it sends the body (curl does
             * for a body over 1 KiB). A 1.0 client never asks. */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (!out_append(c, cont, sizeof(cont) - 1))
                refuse(c, 503);
            c->continue_sent = true;
        }
        return;
    }
    c->continue_sent = false;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->scanned = 0;
    c->req_started_ms = c->in_len > 0 ? mono_ms() : 0;
    if (c->in_cap > 64u * 1024u && c->in_len <= HTTP_READ_CHUNK) { /* a big body's room */
        uint8_t *nb = realloc(c->in, HTTP_READ_CHUNK * 4);
        if (nb != NULL) {
            c->in = nb;
            c->in_cap = HTTP_READ_CHUNK * 4;
        }
    }
    struct http_req_int *r = (struct http_req_int *)req;
    r->srv = s;
    r->conn = c;
    r->pub.peer = c->peer;
    r->pub.conn_id = c->id;
    c->up = r;
    conn_want(c);
    s->fn(s->ctx, req); /* may answer at once (then c may be closed: touch nothing after) */
}

/* After a parse: send what waits, close what is finished, else wait for the right events.
 * (A handler never frees c: http_respond only queues and posts c's pump.) */
static void conn_after(struct http_conn *c)
{
    if (c->out_len > c->out_off && !conn_flush(c))
        return;
    if (c->up == NULL && c->out_len == c->out_off &&
        (c->closing || (c->peer_eof && c->in_len == 0))) {
        conn_close(c);
        return;
    }
    conn_want(c);
}

static void conn_pump(struct loop *l, void *arg)
{
    (void)l;
    struct http_conn *c = arg;
    if (c->out_len > c->out_off && !conn_flush(c))
        return;
    conn_parse(c);
    conn_after(c);
}

static void conn_read(struct http_conn *c)
{
    for (int turns = 0; turns < 16; turns++) {
        if (c->in_len == c->in_cap) {
            /* Grown here only while a head is being read, up to HTTP_HEAD_MAX; past that
             * conn_parse decides: a head to parse, exact room for its body, or a refusal.
             * (So pipelined requests are never read beyond one head or one body's room.) */
            if (c->in_cap >= HTTP_HEAD_MAX || head_end(c->in, c->in_len, 0) != 0)
                return;
            size_t cap = c->in_cap ? c->in_cap * 2 : HTTP_READ_CHUNK;
            if (cap > HTTP_HEAD_MAX)
                cap = HTTP_HEAD_MAX;
            uint8_t *nb = realloc(c->in, cap);
            if (nb == NULL) {
                refuse(c, 503);
                return;
            }
            c->in = nb;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->peer_eof = true, c->closing = true, c->in_len = 0;
            return;
        }
        if (n == 0) {
            c->peer_eof = true;
            return;
        }
        c->in_len += (size_t)n;
        c->last_active_ms = mono_ms();
        if (c->req_started_ms == 0)
            c->req_started_ms = c->last_active_ms;
        if ((size_t)n < HTTP_READ_CHUNK)
            return;
    }
}

static void conn_io(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)fd;
    struct http_conn *c = arg;
    if (events & LOOP_WRITE) {
        if (!conn_flush(c))
            return;
    }
    if (events & LOOP_HUP) {
        /* Both directions are gone (a reset, or a socketpair's peer closed): nobody reads an
         * answer, and the event would repeat every turn while a request is up. */
        conn_close(c);
        return;
    }
    if ((events & LOOP_READ) && c->up == NULL && !c->closing && !c->peer_eof)
        conn_read(c);
    conn_parse(c);
    conn_after(c);
}

static void accept_resume(struct loop *l, void *arg);
static void http_accept(struct loop *l, int lfd, void *arg, unsigned events);

static void accept_back_off(struct http_server *s, int err)
{
    s->accept_backoff_ms = sock_backoff_next(s->accept_backoff_ms, HTTP_ACCEPT_BACKOFF_MIN_MS,
                                             HTTP_ACCEPT_BACKOFF_MAX_MS);
    LOG_LIMITED(LOG_LEVEL_WARN, HTTP_WHO, "accept failed: %s (%d connections open); not "
                "accepting for %d ms", strerror(err), s->nconns, s->accept_backoff_ms);
    loop_set(s->loop, s->listen_fd, 0, http_accept, s);
    s->accept_timer = loop_timer_add(s->loop, mono_ms() + s->accept_backoff_ms, accept_resume, s);
}

static void accept_resume(struct loop *l, void *arg)
{
    struct http_server *s = arg;
    s->accept_timer = 0;
    if (s->listen_fd >= 0)
        loop_set(l, s->listen_fd, LOOP_READ, http_accept, s);
}

static void http_accept(struct loop *l, int lfd, void *arg, unsigned events)
{
    (void)l;
    (void)events;
    struct http_server *s = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            enum sock_accept_failure f = sock_accept_failure(e);
            if (f == SOCK_ACCEPT_BACK_OFF)
                accept_back_off(s, e);
            else if (f == SOCK_ACCEPT_LOG)
                LOG_LIMITED(LOG_LEVEL_WARN, HTTP_WHO, "accept failed: %s", strerror(e));
            return;
        }
        s->accept_backoff_ms = 0;
        char host[INET6_ADDRSTRLEN];
        int port = sock_peer_host(&ss, host, sizeof(host));
        char peer[64];
        snprintf(peer, sizeof(peer), "%s:%d", host, port);
        http_adopt(s, fd, peer); /* a full table: told so (best effort) and closed */
    }
}

int http_adopt(struct http_server *s, int fd, const char *peer)
{
    if (s->nconns >= s->lim.max_connections) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain"
                                   "\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
                                   "too many connections";
        ssize_t n = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
        LOG_LIMITED(LOG_LEVEL_WARN, HTTP_WHO, "refusing a connection from %s: %d connections "
                    "open (the most allowed)", peer, s->nconns);
        close(fd);
        errno = EMFILE;
        return -1;
    }
    struct http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on a socketpair */
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_id;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->last_active_ms = mono_ms();
    c->pump.fn = conn_pump;
    c->pump.arg = c;
    if (loop_set(s->loop, fd, LOOP_READ, conn_io, c) != 0) {
        int e = errno;
        close(fd);
        free(c);
        errno = e;
        return -1;
    }
    c->interest = LOOP_READ;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    return 0;
}

/* Closes connections idle past idle_ms (nothing up: a request being answered is not idle),
 * those trickling a request in for longer, and those whose client reads no answer. */
static void http_sweep(struct loop *l, void *arg)
{
    struct http_server *s = arg;
    int64_t now = mono_ms();
    struct http_conn *c = s->conns;
    while (c != NULL) {
        struct http_conn *next = c->next;
        if (c->up == NULL) {
            if (c->req_started_ms != 0 && now - c->req_started_ms > s->lim.idle_ms &&
                !c->closing) {
                LOG_LIMITED(LOG_LEVEL_INFO, HTTP_WHO, "%s: a request still incomplete after "
                            "%lld ms; closing", c->peer, (long long)(now - c->req_started_ms));
                refuse(c, 408);
                conn_want(c);
            } else if (now - c->last_active_ms > s->lim.idle_ms) {
                conn_close(c);
            }
        }
        c = next;
    }
    int64_t p = s->lim.idle_ms / 4;
    if (p > 1000)
        p = 1000;
    if (p < 10)
        p = 10;
    s->sweep_timer = loop_timer_add(l, now + p, http_sweep, s);
}

/* ---- the server ------------------------------------------------------------------------- */

struct http_server *http_create(struct loop *l, const struct http_limits *lim,
                                http_handler_fn fn, void *ctx)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->loop = l;
    s->lim.max_body = lim != NULL && lim->max_body > 0 ? lim->max_body : 1u << 20;
    s->lim.max_connections = lim != NULL && lim->max_connections > 0 ? lim->max_connections : 256;
    s->lim.idle_ms = lim != NULL && lim->idle_ms > 0 ? lim->idle_ms : 60000;
    s->fn = fn;
    s->ctx = ctx;
    s->listen_fd = -1;
    int64_t p = s->lim.idle_ms / 4;
    s->sweep_timer = loop_timer_add(l, mono_ms() + (p > 1000 ? 1000 : p < 10 ? 10 : p),
                                    http_sweep, s);
    return s;
}

int http_listen(struct http_server *s, const char *host, int port)
{
    if (s->listen_fd >= 0) {
        errno = EBUSY;
        return -1;
    }
    int fd = sock_listen(host, port, 128);
    if (fd < 0)
        return -1;
    if (loop_set(s->loop, fd, LOOP_READ, http_accept, s) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
        s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    return 0;
}

int http_port(const struct http_server *s)
{
    return s->port;
}

int http_connection_count(const struct http_server *s)
{
    return s->nconns;
}

void http_destroy(struct http_server *s)
{
    if (s == NULL)
        return;
    if (s->listen_fd >= 0) {
        loop_del(s->loop, s->listen_fd);
        close(s->listen_fd);
    }
    loop_timer_cancel(s->loop, s->accept_timer);
    loop_timer_cancel(s->loop, s->sweep_timer);
    while (s->conns != NULL) {
        struct http_conn *c = s->conns;
        if (c->up != NULL) {
            free(c->up);
            c->up = NULL;
        }
        conn_free(c);
    }
    while (s->orphans != NULL) {
        struct http_req_int *r = s->orphans;
        s->orphans = r->orphan_next;
        free(r);
    }
    free(s);
}
