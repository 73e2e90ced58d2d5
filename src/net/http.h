/* http: a small HTTP/1.1 server on the event loop, for the console, /metrics and /health
 * (gregor.http.listener). Knows nothing of Kafka: each complete request goes up through a
 * callback, and the answer comes back through http_respond, now or later (one request per
 * connection at a time; keep-alive; pipelined requests wait). Bounded: request line and
 * headers HTTP_HEAD_MAX bytes, at most HTTP_HEADERS_MAX headers, a body of at most
 * http_limits.max_body bytes (Content-Length only: a chunked request body is refused with 411),
 * connections at most http_limits.max_connections, an idle or slow connection closed after
 * http_limits.idle_ms. Bad input gets 400/413/431/501 and the connection closed; never a crash. */
#ifndef GREGOR_NET_HTTP_H
#define GREGOR_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct http_server;

#define HTTP_HEAD_MAX 16384
#define HTTP_HEADERS_MAX 64
/* No further request of a connection goes up (and it is not read) while more than this many
 * bytes of its answers wait to be sent. */
#define HTTP_OUT_MAX (1u << 20)

struct http_limits {
    size_t max_body;        /* bytes of a request body (default 1 MiB) */
    int max_connections;    /* open connections (default 256) */
    int64_t idle_ms;        /* idle keep-alive / unfinished request timeout (default 60000) */
};

struct http_header {
    const char *name;       /* as sent; compare case-insensitively */
    const char *value;      /* leading and trailing blanks removed */
};

/* A request that is up. Every string is NUL-terminated and lives until http_respond. */
struct http_req {
    const char *method;     /* "GET", "POST", "DELETE", ... */
    const char *target;     /* as sent: "/api/topics?x=1" */
    const char *path;       /* the target's path, %XX-decoded: "/api/topics" ("%00" refused) */
    const char *query;      /* the raw query after '?', "" when none */
    const struct http_header *headers;
    int nheaders;
    const uint8_t *body;    /* body_len bytes (a NUL follows them) */
    size_t body_len;
    const char *peer;       /* "host:port" */
    uint64_t conn_id;
};

/* Called with each complete request. The callee answers with http_respond, now or later
 * (then req stays valid until that call, even if the client went away meanwhile). */
typedef void (*http_handler_fn)(void *ctx, struct http_req *req);

struct http_server *http_create(struct loop *l, const struct http_limits *lim,
                                http_handler_fn fn, void *ctx);
/* Listens on host:port (port 0: any; http_port tells). 0, or -1 with errno. */
int http_listen(struct http_server *s, const char *host, int port);
int http_port(const struct http_server *s);
/* Serves an already connected, non-blocking stream socket (a socketpair end in tests) as if
 * accepted. 0, or -1 with errno (fd closed; EMFILE: max_connections open, told with a 503). */
int http_adopt(struct http_server *s, int fd, const char *peer);
int http_connection_count(const struct http_server *s);
/* Closes the listener and every connection (requests still up are dropped: their req is
 * freed, so nobody may answer them after this). */
void http_destroy(struct http_server *s);

/* Answers req and frees it: status (200, 404, ...), a Content-Type (NULL: none), extra
 * header lines each ending in "\r\n" (NULL: none), and the body (copied). Content-Length,
 * Date-less, Connection handled here; HEAD gets no body. */
void http_respond(struct http_req *req, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len);
/* The value of a header (case-insensitive name), or NULL. */
const char *http_header(const struct http_req *req, const char *name);
/* The query parameter name, %XX- and '+'-decoded into buf (NUL-terminated), or NULL when
 * absent or longer than cap - 1. */
const char *http_query(const struct http_req *req, const char *name, char *buf, size_t cap);
/* The request parser, without sockets (for fuzzing): looks at buf[0..len) and returns 1 with
 * *out a complete request (free it with http_req_free; its peer is "") and *used the bytes it
 * took; 0 when more bytes are needed (*used: the whole request's size once the head is read,
 * else 0); or -status (400, 411, 413, 414, 431, 501, 505, 503 out of memory) for bad input. */
int http_parse(const uint8_t *buf, size_t len, size_t max_body, struct http_req **out,
               size_t *used);
void http_req_free(struct http_req *req);
/* Whether the client went away (an answer to it is dropped). */
bool http_req_gone(const struct http_req *req);

#endif
