/* conn: TCP listeners and client connections — framing (int32 size + bytes), bounded input,
 * ordered output of memory bytes and file ranges (sendfile). Knows nothing of Kafka's APIs:
 * each complete frame goes up through a callback; the answer comes back through conn_send. */
#ifndef GREGOR_NET_CONN_H
#define GREGOR_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/loop.h"

struct conn;
struct net;

/* A file range spliced into a response at byte `at` of the memory part. */
struct net_file_range {
    int fd;       /* owned by the connection once sent: closed after use */
    off_t offset;
    size_t len;
    size_t at;
};

/* Called with a complete frame (without its 4-byte size). The callee owns frame (free()).
 * The connection handles one request at a time: no further frame comes up until conn_send
 * or conn_done_no_reply answers this one. */
typedef void (*net_frame_fn)(void *ctx, struct conn *c, uint8_t *frame, size_t len);
/* Called once when a connection goes away, so the upper layer can drop what refers to it. */
typedef void (*net_close_fn)(void *ctx, struct conn *c);

struct net_limits {
    size_t max_frame_bytes;    /* socket.request.max.bytes */
    size_t max_output_bytes;   /* stop reading while more than this is queued to send */
    int max_connections;
};

struct net *net_create(struct loop *l, const struct net_limits *lim, net_frame_fn on_frame,
                       net_close_fn on_close, void *ctx);
/* Listens on host:port (host "" or "0.0.0.0" = any). Returns 0 or -1 with errno. */
int net_listen(struct net *n, const char *host, int port);
/* Stops accepting new connections (shutdown begins). */
void net_stop_listening(struct net *n);
/* Closes every connection and frees n. */
void net_destroy(struct net *n);
int net_connection_count(const struct net *n);

/* Queues a response: buf (malloc'ed, owned from now on) of len bytes with file ranges spliced
 * in (the array is copied; the fds are owned from now on). Then lets the next frame up. */
void conn_send(struct conn *c, uint8_t *buf, size_t len, const struct net_file_range *files,
               size_t nfiles);
/* At most this many replies of one connection may be deferred at once. */
#define CONN_MAX_DEFERRED 8
struct conn_reply;
/* The request that is up will be answered later, out of the upper layer's order: its reply
 * keeps its place in the output (nothing queued after it goes out before it) and the next
 * frame may come up meanwhile. Returns that place, or NULL when the connection is closed or
 * already owes CONN_MAX_DEFERRED replies (then the request stays up; answer with conn_send).
 * Only for requests whose effects are complete, e.g. an append waiting for its fsync. */
struct conn_reply *conn_defer(struct conn *c);
/* Fills a deferred place. The connection stays allocated until every deferred place is
 * filled, even if it closed meanwhile (then the reply is dropped). buf NULL drops the reply
 * and closes the connection, since the client would wait for it forever. */
void conn_send_deferred(struct conn *c, struct conn_reply *slot, uint8_t *buf, size_t len,
                        const struct net_file_range *files, size_t nfiles);
/* The request needs no reply (acks=0): let the next frame up. */
void conn_done_no_reply(struct conn *c);
/* Closes now (queued output is dropped), with a log line saying why when why != NULL. */
void conn_close(struct conn *c, const char *why);
uint64_t conn_id(const struct conn *c);
const char *conn_peer(const struct conn *c);
/* Upper-layer data hung off the connection (e.g. its in-flight request). */
void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);

#endif
