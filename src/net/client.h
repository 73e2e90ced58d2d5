/* client: outbound connections from this broker to other brokers (replica fetchers, the
 * controller, transaction markers), as Kafka's NetworkClient: non-blocking connect with a
 * timeout, the ApiVersions handshake, Kafka requests encoded with the generated encoders and
 * their responses decoded with the generated decoders, matched in order by correlation id,
 * per-request timeouts and reconnect back-off with exponential growth and jitter.
 *
 * A client belongs to one loop and is only touched from that loop's thread; it keeps no
 * process-wide state (its jitter comes from its own generator), so N loops can each have one. */
#ifndef GREGOR_NET_CLIENT_H
#define GREGOR_NET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/errors.h"
#include "net/loop.h"

struct client;
struct client_conn;

/* Kafka's NETWORK_EXCEPTION: what a request whose connection went away completes with
 * (Kafka's DisconnectException maps to it). */
#define CLIENT_ERR_NETWORK KERR_NETWORK_EXCEPTION

/* One step of a SASL client exchange: in is the server's last token (NULL at the start).
 * Writes the next token into out (at most cap bytes, *out_len) and returns 1 (send it), 0 when
 * the exchange is complete (the server's final token checked), -1 when it failed (err says
 * why). state is CLIENT_SASL_STATE_BYTES of per-connection scratch, zeroed at each attempt. */
#define CLIENT_SASL_STATE_BYTES 4096
typedef int (*client_sasl_step_fn)(void *arg, void *state, const uint8_t *in, size_t in_len,
                                   uint8_t *out, size_t cap, size_t *out_len, char *err,
                                   size_t errlen);

struct client_config {
    const char *client_id;            /* copied; the request header's client id */
    int64_t request_timeout_ms;       /* request.timeout.ms (30000): from client_send to answer */
    int64_t connect_timeout_ms;       /* socket.connection.setup.timeout.ms (10000) */
    int64_t reconnect_backoff_ms;     /* reconnect.backoff.ms (50) */
    int64_t reconnect_backoff_max_ms; /* reconnect.backoff.max.ms (1000) */
    size_t max_response_bytes;        /* a bigger response fails its request and closes (100 MiB) */
    int max_pending;                  /* requests queued or in flight per connection (1000) */
    size_t max_queued_bytes;          /* encoded bytes not yet written per connection (64 MiB);
                                       * also the largest request that can be sent */
    uint64_t jitter_seed;             /* seed of the back-off jitter (0: from the clock) */
    /* The security of inter.broker.listener.name (all borrowed for the client's life):
     * transport NULL is plain TCP (TLS: a client-side transport, tls_client_create);
     * sasl_mechanism NULL is no SASL, else the mechanism named in SaslHandshake v1 after
     * ApiVersions, then SaslAuthenticate with sasl_step's tokens, before the connection is
     * ready. */
    const struct transport_ops *transport;
    const char *sasl_mechanism;
    client_sasl_step_fn sasl_step;    /* the mechanism's client side (with sasl_mechanism) */
    void *sasl_arg;
    const char *listener_name;        /* for the log lines ("" or NULL: none) */
};
/* Kafka's client defaults (values above). */
void client_config_defaults(struct client_config *cfg);

struct client *client_create(struct loop *l, const struct client_config *cfg);
/* Destroys every connection: each pending request completes with CLIENT_ERR_NETWORK, and
 * every completion not yet delivered is delivered, inside this call. Not from a callback. */
void client_destroy(struct client *cl);

/* A connection to host:port (a numeric IPv4/IPv6 address or "localhost": a name lookup would
 * block the loop). It connects at once and reconnects after each failure or close for as long
 * as it exists. NULL when host is not an address. */
struct client_conn *client_connect(struct client *cl, const char *host, int port);
/* Closes and frees c; every request pending on it completes with CLIENT_ERR_NETWORK (the
 * callbacks run from the loop later, not inside this call). */
void client_conn_destroy(struct client_conn *c);

/* What a callback gets. error is a Kafka error code: KERR_NONE (body/raw valid),
 * KERR_REQUEST_TIMED_OUT, CLIENT_ERR_NETWORK (disconnected, malformed or oversized response),
 * KERR_UNSUPPORTED_VERSION (the peer has no version of the API both sides know). */
struct client_response {
    int error;
    const char *reason;     /* static text when error != KERR_NONE, else NULL */
    int16_t api_key, api_version;
    void *body;             /* decoded response (generated struct), NULL when raw or failed;
                             * valid during the callback only */
    const uint8_t *raw;     /* the response body after its header, valid during the callback */
    size_t raw_len;
};
typedef void (*client_response_fn)(void *arg, const struct client_response *resp);

struct client_request {
    int16_t api_key;
    int16_t min_version;    /* lowest acceptable version (0: any gregor can encode) */
    int16_t max_version;    /* highest (-1: the highest gregor can encode) */
    const void *body;       /* generated request struct: borrowed until the callback runs
                             * (encoded once the connection is ready, again after a reconnect) */
    bool raw;               /* hand the response body undecoded */
    int64_t timeout_ms;     /* 0: request_timeout_ms */
};

/* Queues a request. 0: fn(arg, ...) runs exactly once, from the loop, never inside this call.
 * -1: refused (unknown API, no body, max_pending reached); fn never runs. The version sent is
 * the highest that the request's range, gregor's codecs and the peer all allow. A Produce with
 * acks=0 completes with KERR_NONE and no body once written (no response comes). */
int client_send(struct client_conn *c, const struct client_request *req, client_response_fn fn,
                void *arg);

enum client_conn_state {
    CLIENT_CONN_BACKOFF,     /* waiting to reconnect */
    CLIENT_CONN_CONNECTING,  /* non-blocking connect in progress */
    CLIENT_CONN_HANDSHAKE,   /* ApiVersions sent */
    CLIENT_CONN_READY,
};
struct client_conn_stats {
    enum client_conn_state state;
    uint64_t connect_attempts;  /* connect(2) calls */
    uint64_t handshakes;        /* times the connection became ready */
    uint64_t disconnects;       /* closes after a connect attempt, whatever the cause */
    int64_t last_backoff_ms;    /* the back-off chosen at the last close */
    int pending;                /* requests queued or in flight */
    size_t queued_bytes;        /* encoded bytes not yet written */
};
void client_conn_stats(const struct client_conn *c, struct client_conn_stats *out);
/* The peer's version range of key from its ApiVersions answer: false when it has none or no
 * handshake completed. */
bool client_conn_peer_versions(const struct client_conn *c, int16_t key, int16_t *min,
                               int16_t *max);

/* Back-off after `failures` consecutive failed attempts (0 = the first): Kafka's
 * ExponentialBackoff (base * 2^failures, jitter +-20 %, never above the max). *rng is the
 * caller's generator state (non-zero). For tests. */
int64_t client_backoff_ms(int64_t base_ms, int64_t max_ms, uint32_t failures, uint64_t *rng);

/* The response-reading path on its own (for fuzzing and tests): checks frame (a response
 * without its size prefix) against the correlation id expected, skips the header (v1 when
 * the version is flexible, except ApiVersions' v0) and decodes the body into arena unless
 * raw. 0 with *body (NULL when raw) and *body_off, or -1 with *reason. */
int client_response_parse(uint8_t *frame, size_t len, int16_t api_key, int16_t version,
                          int32_t correlation_id, bool raw, struct arena *arena, void **body,
                          size_t *body_off, const char **reason);

#endif
