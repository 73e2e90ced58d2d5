/* conn: TCP listeners and client connections — framing (int32 size + bytes), bounded input,
 * ordered output of memory bytes and file ranges, through a transport (net/transport.h), and
 * each connection's session (who is on the other end). Knows nothing of Kafka's APIs: each
 * complete frame goes up through a callback; the answer comes back through conn_send. */
#ifndef GREGOR_NET_CONN_H
#define GREGOR_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "net/loop.h"
#include "net/transport.h"

struct conn;
struct net;

/* What a listener is: its name and security protocol as Kafka's listeners= and
 * listener.security.protocol.map name them, and the transport its connections use. */
struct net_listener_info {
    const char *name;              /* "PLAINTEXT" */
    const char *security_protocol; /* "PLAINTEXT" now; SSL, SASL_PLAINTEXT, SASL_SSL later */
    const struct transport_ops *transport;
};
/* The one listener gregor has today: plain TCP. */
extern const struct net_listener_info net_listener_plaintext;

/* Bounds of the session's strings. A client id is a Kafka STRING (int16 length); software
 * name and version longer than this are refused by conn_session_set_software. */
#define CONN_CLIENT_ID_MAX 32767
#define CONN_SOFTWARE_MAX 128
#define CONN_PRINCIPAL_MAX 256
#define CONN_PEER_MAX 64

/* Who is on the other end of a connection, apart from the request in flight: lives as long as
 * the connection. The upper layer reads the fields and changes them through the setters. */
struct conn_session {
    const struct net_listener_info *listener; /* borrowed: static, or outlives the net */
    char peer[CONN_PEER_MAX];          /* "host:port" for log lines */
    struct sockaddr_storage peer_addr; /* AF_UNSPEC for an adopted socket */
    char principal[CONN_PRINCIPAL_MAX];    /* "User:ANONYMOUS" until authentication */
    char *client_id;                   /* owned, NUL-terminated; "" until a header names one */
    size_t client_id_len;
    char software_name[CONN_SOFTWARE_MAX + 1];    /* ApiVersions v3+; "" until then */
    char software_version[CONN_SOFTWARE_MAX + 1];
    void *sasl;                        /* owned through sasl_free (called when c is freed) */
    void (*sasl_free)(void *sasl);
};

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
    int max_connections;       /* max.connections: a full table reclaims an idle connection */
    int max_connections_per_ip;    /* max.connections.per.ip (0 = none allowed) */
    int64_t max_idle_ms;       /* connections.max.idle.ms; <= 0: never closed for idleness */
    int64_t frame_timeout_ms;  /* a frame begun must be complete within this (0 = no limit) */
    size_t max_reading_bytes;  /* queued.max.request.bytes: frames too big for a connection's
                                * stage being read, over all connections (0 = no bound) */
    int64_t reclaim_idle_ms;   /* a full table closes the connection idle longest (nothing in
                                * flight, owed or half-read) if idle this long (0 = never) */
};

/* The broker's reclaim_idle_ms: idle sockets cannot lock everyone out for long. */
#define NET_RECLAIM_IDLE_MS 10000
/* accept(2) failing for lack of descriptors or memory pauses accepting, doubling from the
 * first to the last pause while it keeps failing. */
#define NET_ACCEPT_BACKOFF_MIN_MS 10
#define NET_ACCEPT_BACKOFF_MAX_MS 1000

struct net *net_create(struct loop *l, const struct net_limits *lim, net_frame_fn on_frame,
                       net_close_fn on_close, void *ctx);
/* max.connections.per.ip.overrides: connections allowed from host (an IP address or a name
 * resolved now). Returns 0, or -1 when host does not resolve. */
int net_set_ip_limit(struct net *n, const char *host, int max);
/* max.connections and max.connections.per.ip changed at runtime: new connections count
 * against them; the ones open stay. */
void net_set_connection_limits(struct net *n, int max_connections, int max_connections_per_ip);
/* KIP-612: the upper layer's word on a connection just accepted, before it is served.
 * close_after_ms > 0: not served, closed after that long (its address is over its connection
 * rate; Kafka's throttled sockets); pause_ms > 0: served, and the listener accepts nothing
 * more for that long (the listener is over its rate; Kafka's Acceptor waits). Bounded:
 * NET_THROTTLED_MAX sockets wait to be closed, more are closed at once. */
struct net_admit {
    int64_t close_after_ms;
    int64_t pause_ms;
};
typedef struct net_admit (*net_admit_fn)(void *ctx, const struct net_listener_info *li,
                                         const char *host, int64_t now_ms);
#define NET_THROTTLED_MAX 1024
/* fn NULL: every connection is served at once (the default). */
void net_set_admit(struct net *n, net_admit_fn fn, void *ctx);
/* Serves an already connected, non-blocking stream socket (a socketpair end in tests and
 * fuzzing) as if accepted; peer names it in log lines. 0, or -1 (fd closed). */
int net_adopt(struct net *n, int fd, const char *peer);
/* net_adopt for a connection of the given listener (its transport and session fields). */
int net_adopt_with(struct net *n, int fd, const char *peer, const struct net_listener_info *li);
/* Bytes of large frames being read now (for tests and metrics). */
size_t net_reading_bytes(const struct net *n);
/* Listens on host:port (host "" or "0.0.0.0" = any). Returns 0 or -1 with errno. */
int net_listen(struct net *n, const char *host, int port);
/* net_listen for the given listener (net_listen is net_listener_plaintext). */
int net_listen_with(struct net *n, const char *host, int port, const struct net_listener_info *li);
/* hold: the listeners stay bound and listening but accept nothing (connections wait in the
 * backlog), as Kafka binds its listeners at startup and processes requests once started;
 * false accepts again. Listeners made meanwhile are held too. */
void net_accept_hold(struct net *n, bool hold);
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
/* The next reply is the last: no further frame goes up, and the connection closes (with why
 * logged) once its output has drained. Called before that reply is sent (a SASL failure's
 * answer, sent and then closed as Kafka does). */
void conn_close_after_send(struct conn *c, const char *why);
/* The request needs no reply (acks=0): let the next frame up. */
void conn_done_no_reply(struct conn *c);
/* KIP-219's mute: for ms from now the connection is not read and no frame goes up (replies
 * still go out); then it goes on. A later call replaces the end. */
void conn_mute_for(struct conn *c, int64_t ms);
/* Closes now (queued output is dropped), with a log line saying why when why != NULL. */
void conn_close(struct conn *c, const char *why);
uint64_t conn_id(const struct conn *c);
const char *conn_peer(const struct conn *c);
/* The connection's session (never NULL while c is). */
struct conn_session *conn_session(struct conn *c);
/* The client id of the latest request header (id NULL or len <= 0: ""); copied only when it
 * changed. Out of memory or longer than CONN_CLIENT_ID_MAX: the old one stays (logged). */
void conn_session_set_client_id(struct conn_session *s, const char *id, int32_t len);
/* ApiVersions v3+'s ClientSoftwareName/Version, each cut at CONN_SOFTWARE_MAX bytes (they
 * name the software for log lines and metrics). */
void conn_session_set_software(struct conn_session *s, const char *name, size_t name_len,
                               const char *version, size_t version_len);
/* The authenticated principal ("User:alice"). 0, or -1 when too long (nothing changes). */
int conn_session_set_principal(struct conn_session *s, const char *principal);
/* Hangs SASL state off the session; free_fn(sasl) runs when it is replaced or the connection
 * is freed. */
void conn_session_set_sasl(struct conn_session *s, void *sasl, void (*free_fn)(void *sasl));
/* Upper-layer data hung off the connection (e.g. its in-flight request). */
void conn_set_data(struct conn *c, void *data);
void *conn_data(const struct conn *c);

#endif
