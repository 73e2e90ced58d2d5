/* client: outbound Kafka connections on the event loop (see client.h): connect, ApiVersions
 * handshake, ordered requests with timeouts, reconnect back-off; completions are delivered
 * from a posted task, never inside the call that caused them. */
#include "net/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/transport.h"
#include "proto/kbuf.h"
#include "proto/messages.h"

#define CLIENT_WHO "NetworkClient"
#define CLIENT_STAGE_BYTES (64u * 1024)    /* input buffer kept between responses */
#define CLIENT_MAX_API_KEY 128             /* peer version table covers keys 0..127 */
#define CLIENT_READS_PER_WAKE 16           /* recv calls per readiness event (level-triggered) */
#define CLIENT_IOV_MAX 32
#define CLIENT_ARENA_BASE (64u * 1024 * 1024) /* decoded response: 64 MiB + 4x its frame */
#define CLIENT_SOFTWARE_NAME "gregor"
#define CLIENT_SOFTWARE_VERSION "0.1.0"
#define CLIENT_SASL_TOKEN_MAX 1024         /* a SASL token this client sends */
#define CLIENT_REASON_MAX 256

enum req_state {
    REQ_QUEUED,   /* not encoded: waits for the connection to be ready and for room */
    REQ_ENCODED,  /* frame built, out_off bytes of it written */
    REQ_INFLIGHT, /* written whole, its response is awaited */
    REQ_DONE,     /* on the client's completion list */
};

struct client_req {
    struct client_req *prev, *next;
    enum req_state state;
    bool internal;        /* the ApiVersions handshake: handled by the connection itself */
    bool no_response;     /* Produce acks=0 */
    bool raw;
    int16_t api_key, min_version, max_version, version;
    const void *body;     /* borrowed from the caller until the callback */
    client_response_fn fn;
    void *arg;
    int64_t deadline;     /* mono ms */
    int32_t corr;
    uint8_t *out;         /* the encoded frame (owned) */
    size_t out_len, out_off;
    /* The result, once REQ_DONE. */
    int error;
    const char *reason;
    uint8_t *frame;       /* the response frame (owned), without its size prefix */
    size_t frame_len, body_off;
    void *decoded;        /* in arena */
    struct arena arena;
    bool arena_used;
};

struct req_list {
    struct client_req *head, *tail;
    int count;
};

struct client_conn {
    struct client *cl;
    struct client_conn *prev, *next; /* in cl->conns */
    char host[64];
    int port;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int fd;
    struct transport tr;       /* over fd once connected (tr_open) */
    bool tr_open;
    enum client_conn_state state;
    struct req_list pending;   /* INFLIGHT*, then ENCODED*, then QUEUED*, oldest first */
    size_t queued_bytes;       /* unwritten bytes of ENCODED requests */
    int32_t next_corr;
    uint8_t *in;               /* input: the response being read (and what follows it) */
    size_t in_len, in_cap;
    uint64_t state_timer;      /* connect timeout or back-off */
    uint64_t deadline_timer;   /* the earliest request deadline */
    int64_t deadline_armed;
    uint32_t failures;         /* consecutive failed attempts (reset when ready) */
    int16_t av_version;        /* ApiVersions version of this attempt */
    bool av_retried;
    int16_t peer_min[CLIENT_MAX_API_KEY], peer_max[CLIENT_MAX_API_KEY]; /* -1: none */
    struct client_conn_stats stats;
    uint64_t read_timer;       /* bytes left inside the transport: read again soon */
    /* SASL: the token sent (borrowed by the request until written), the SCRAM exchange. */
    struct sasl_handshake_request sasl_hs;
    struct sasl_authenticate_request sasl_auth;
    uint8_t sasl_token[CLIENT_SASL_TOKEN_MAX];
    _Alignas(max_align_t) unsigned char sasl_state[CLIENT_SASL_STATE_BYTES];
    /* The reason of the last failed attempt: a new one is logged once (WARN), a repeat is
     * not, until the connection is ready again. */
    char last_failure[CLIENT_REASON_MAX];
    char why[CLIENT_REASON_MAX];
};

struct client {
    struct loop *loop;
    struct client_config cfg;
    char *client_id;
    uint64_t rng;
    struct client_conn *conns;
    struct req_list done;      /* completions waiting for the posted task */
    struct loop_task deliver_task;
    bool delivering;
    /* Rate limits of the lines a peer can repeat (closes, refusals, bad responses): per
     * client, not per call site, so clients on different loops share nothing. */
    struct log_limit close_lines, protocol_lines;
};

#define CLIENT_LOG_CLOSE(c, ...) \
    log_limited(&(c)->cl->close_lines, LOG_LEVEL_INFO, CLIENT_WHO, __VA_ARGS__)
#define CLIENT_LOG_PROTOCOL(c, ...) \
    log_limited(&(c)->cl->protocol_lines, LOG_LEVEL_WARN, CLIENT_WHO, __VA_ARGS__)

static void conn_on_io(struct loop *l, int fd, void *arg, unsigned events);
static void conn_start_connect(struct client_conn *c);
static void conn_fill_output(struct client_conn *c);
static void conn_write(struct client_conn *c);
static void conn_arm_deadline(struct client_conn *c);
static void conn_read(struct client_conn *c);

/* ---- lists */

static void list_append(struct req_list *l, struct client_req *r)
{
    r->prev = l->tail;
    r->next = NULL;
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->count++;
}

static void list_remove(struct req_list *l, struct client_req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    GREGOR_ASSERT(l->count > 0);
    l->count--;
}

/* ---- config, back-off */

void client_config_defaults(struct client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->client_id = "gregor";
    cfg->request_timeout_ms = 30000;
    cfg->connect_timeout_ms = 10000;
    cfg->reconnect_backoff_ms = 50;
    cfg->reconnect_backoff_max_ms = 1000;
    cfg->max_response_bytes = 100u * 1024 * 1024;
    cfg->max_pending = 1000;
    cfg->max_queued_bytes = 64u * 1024 * 1024;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: per-client state, so loops never share a generator. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t client_backoff_ms(int64_t base_ms, int64_t max_ms, uint32_t failures, uint64_t *rng)
{
    if (base_ms > max_ms)
        base_ms = max_ms;
    if (base_ms <= 0)
        return 0;
    if (max_ms <= base_ms)
        return base_ms;
    /* base * 2^failures, the exponent capped where it reaches max (Kafka's expMax). */
    double term = (double)base_ms;
    for (uint32_t i = 0; i < failures && term < (double)max_ms; i++)
        term *= 2.0;
    if (term > (double)max_ms)
        term = (double)max_ms;
    double unit = (double)(rng_next(rng) >> 11) / (double)(1ULL << 53); /* [0, 1) */
    double factor = 0.8 + 0.4 * unit;
    int64_t v = (int64_t)(term * factor);
    return v < max_ms ? v : max_ms;
}

/* ---- completion */

/* Moves r (already off its connection's list) to the client's completion list and posts the
 * delivery. Takes ownership of frame. */
static void req_complete(struct client *cl, struct client_req *r, int error, const char *reason)
{
    GREGOR_ASSERT(r->state != REQ_DONE);
    free(r->out);
    r->out = NULL;
    r->state = REQ_DONE;
    r->error = error;
    r->reason = error == KERR_NONE ? NULL : reason;
    if (r->internal) { /* the handshake belongs to its connection alone */
        free(r->frame);
        if (r->arena_used)
            arena_reset(&r->arena);
        free(r);
        return;
    }
    list_append(&cl->done, r);
    loop_post(cl->loop, &cl->deliver_task);
}

static void req_free(struct client_req *r)
{
    free(r->out);
    free(r->frame);
    if (r->arena_used)
        arena_reset(&r->arena);
    free(r);
}

/* The posted task: delivers the completions that were there when it began (later ones post
 * it again), so one turn is bounded by what was due at its start. */
static void client_deliver(struct loop *l, void *arg)
{
    (void)l;
    struct client *cl = arg;
    struct req_list batch = cl->done;
    cl->done = (struct req_list){0};
    cl->delivering = true;
    while (batch.head != NULL) {
        struct client_req *r = batch.head;
        list_remove(&batch, r);
        struct client_response resp = {
            .error = r->error,
            .reason = r->reason,
            .api_key = r->api_key,
            .api_version = r->version,
            .body = r->error == KERR_NONE ? r->decoded : NULL,
            .raw = r->error == KERR_NONE && r->frame != NULL ? r->frame + r->body_off : NULL,
            .raw_len = r->error == KERR_NONE && r->frame != NULL ? r->frame_len - r->body_off : 0,
        };
        r->fn(r->arg, &resp);
        req_free(r);
    }
    cl->delivering = false;
}

/* ---- response parsing */

int client_response_parse(uint8_t *frame, size_t len, int16_t api_key, int16_t version,
                          int32_t correlation_id, bool raw, struct arena *arena, void **body,
                          size_t *body_off, const char **reason)
{
    *body = NULL;
    *body_off = 0;
    struct kreader r;
    kr_init(&r, frame, len, arena);
    int32_t corr = kr_i32(&r);
    if (!kr_ok(&r)) {
        *reason = "response shorter than its header";
        return -1;
    }
    if (corr != correlation_id) {
        *reason = "correlation id of the response does not match the request";
        return -1;
    }
    /* Response header v1 (a tag block) where the request's version is flexible, except
     * ApiVersions, whose response header stays v0 so any client can read the answer. */
    if (api_key != PROTO_API_API_VERSIONS && proto_is_flexible(api_key, version))
        kr_skip_tags(&r);
    if (!kr_ok(&r)) {
        *reason = "malformed response header";
        return -1;
    }
    *body_off = r.off;
    if (raw)
        return 0;
    if (proto_response_decode(api_key, version, &r, body) < 0) {
        *body = NULL;
        *reason = r.err == KBUF_ERR_NOMEM ? "response too large to decode"
                                          : "malformed response body";
        return -1;
    }
    return 0;
}

/* ---- connection lifetime */

/* Why a transport read or write failed (static text): a TLS error (logged by the transport
 * with OpenSSL's reason) or the socket's. */
static const char *conn_io_failure(const struct client_conn *c, const char *plain)
{
    if (errno != EPROTO || !c->tr_open)
        return plain;
    if (c->tr.ops->handshaking != NULL && c->tr.ops->handshaking(&c->tr))
        return "SSL handshake failed";
    return "SSL error";
}

static void conn_cancel_timer(struct client_conn *c, uint64_t *id)
{
    if (*id != 0)
        loop_timer_cancel(c->cl->loop, *id);
    *id = 0;
}

static void conn_on_reconnect_timer(struct loop *l, void *arg)
{
    (void)l;
    struct client_conn *c = arg;
    c->state_timer = 0;
    conn_start_connect(c);
}

/* Closes the socket: requests written whole or in part complete with CLIENT_ERR_NETWORK (they
 * may have reached the peer), encoded ones not begun go back to the queue (encoded again, for
 * whatever the next peer supports); then waits the back-off and connects again. */
static void conn_close_socket(struct client_conn *c, const char *why, bool reconnect)
{
    if (c->fd >= 0) {
        loop_del(c->cl->loop, c->fd);
        if (c->tr_open)
            c->tr.ops->close(&c->tr); /* closes fd */
        else
            close(c->fd);
        c->tr_open = false;
        c->fd = -1;
        c->stats.disconnects++;
    }
    conn_cancel_timer(c, &c->state_timer);
    conn_cancel_timer(c, &c->read_timer);
    struct client_req *r = c->pending.head;
    while (r != NULL) {
        struct client_req *next = r->next;
        if (r->state == REQ_INFLIGHT || (r->state == REQ_ENCODED && r->out_off > 0)) {
            if (r->state == REQ_ENCODED) {
                GREGOR_ASSERT(c->queued_bytes >= r->out_len - r->out_off);
                c->queued_bytes -= r->out_len - r->out_off;
            }
            list_remove(&c->pending, r);
            req_complete(c->cl, r, CLIENT_ERR_NETWORK, why);
        } else if (r->state == REQ_ENCODED) {
            GREGOR_ASSERT(c->queued_bytes >= r->out_len);
            c->queued_bytes -= r->out_len;
            free(r->out);
            r->out = NULL;
            r->out_len = r->out_off = 0;
            r->state = REQ_QUEUED;
        }
        r = next;
    }
    GREGOR_ASSERT(c->queued_bytes == 0);
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    bool was_ready = c->state == CLIENT_CONN_READY;
    if (c->state != CLIENT_CONN_READY)
        c->failures++;
    else
        c->failures = 1; /* a ready connection lost: the first back-off again */
    c->state = CLIENT_CONN_BACKOFF;
    if (!reconnect)
        return;
    const char *detail = c->why[0] != '\0' ? c->why : why;
    if (!was_ready && strcmp(c->last_failure, detail) != 0) {
        /* Once per change of reason, with the peer: a wrong password or a refused certificate
         * says so without repeating every back-off. */
        LOG_WARN(CLIENT_WHO, "Connection to %s:%d%s%s failed: %s", c->host, c->port,
                 c->cl->cfg.listener_name != NULL && c->cl->cfg.listener_name[0] != '\0'
                     ? " on listener " : "",
                 c->cl->cfg.listener_name != NULL ? c->cl->cfg.listener_name : "", detail);
        snprintf(c->last_failure, sizeof(c->last_failure), "%s", detail);
    }
    c->why[0] = '\0';
    int64_t wait = client_backoff_ms(c->cl->cfg.reconnect_backoff_ms,
                                     c->cl->cfg.reconnect_backoff_max_ms, c->failures - 1,
                                     &c->cl->rng);
    c->stats.last_backoff_ms = wait;
    CLIENT_LOG_CLOSE(c, "connection to %s:%d closed (%s); reconnecting in %lld ms", c->host,
                     c->port, why, (long long)wait);
    c->state_timer = loop_timer_add(c->cl->loop, mono_ms() + wait, conn_on_reconnect_timer, c);
    conn_arm_deadline(c);
}

static void conn_on_connect_timeout(struct loop *l, void *arg)
{
    (void)l;
    struct client_conn *c = arg;
    c->state_timer = 0;
    conn_close_socket(c, "connection setup timed out", true);
}

/* ---- request deadlines */

static void conn_on_deadline(struct loop *l, void *arg);

/* One timer per connection at its earliest request deadline (moved only when a request
 * with an earlier one arrives, or when it fires). */
static void conn_arm_deadline(struct client_conn *c)
{
    int64_t earliest = INT64_MAX;
    for (struct client_req *r = c->pending.head; r != NULL; r = r->next)
        if (r->deadline < earliest)
            earliest = r->deadline;
    if (c->deadline_timer != 0 && c->deadline_armed <= earliest)
        return; /* fires early at worst, then re-arms */
    conn_cancel_timer(c, &c->deadline_timer);
    if (earliest == INT64_MAX)
        return;
    c->deadline_armed = earliest;
    c->deadline_timer = loop_timer_add(c->cl->loop, earliest, conn_on_deadline, c);
}

static void conn_on_deadline(struct loop *l, void *arg)
{
    (void)l;
    struct client_conn *c = arg;
    c->deadline_timer = 0;
    int64_t now = mono_ms();
    bool close_it = false;
    struct client_req *r = c->pending.head;
    while (r != NULL) {
        struct client_req *next = r->next;
        if (r->deadline <= now) {
            bool begun = r->state == REQ_INFLIGHT || (r->state == REQ_ENCODED && r->out_off > 0);
            if (!begun) { /* never reached the peer: fail it alone */
                if (r->state == REQ_ENCODED) {
                    GREGOR_ASSERT(c->queued_bytes >= r->out_len);
                    c->queued_bytes -= r->out_len;
                }
                list_remove(&c->pending, r);
                if (r->internal)
                    close_it = true;
                req_complete(c->cl, r, KERR_REQUEST_TIMED_OUT, "request timed out");
            } else {
                /* As Kafka's NetworkClient: a request in flight past its timeout closes the
                 * connection; the others written on it fail as disconnected. */
                if (r->state == REQ_ENCODED) {
                    GREGOR_ASSERT(c->queued_bytes >= r->out_len - r->out_off);
                    c->queued_bytes -= r->out_len - r->out_off;
                }
                list_remove(&c->pending, r);
                req_complete(c->cl, r, KERR_REQUEST_TIMED_OUT, "request timed out");
                close_it = true;
            }
        }
        r = next;
    }
    if (close_it) {
        CLIENT_LOG_PROTOCOL(c, "request to %s:%d timed out; closing the connection", c->host,
                            c->port);
        conn_close_socket(c, "request timed out", true);
    } else {
        conn_fill_output(c);
        conn_write(c);
    }
    conn_arm_deadline(c);
}

/* ---- encoding and writing */

static struct client_req *req_new(struct client_conn *c, int16_t key, int64_t timeout_ms)
{
    struct client_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->api_key = key;
    r->max_version = -1;
    r->deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : c->cl->cfg.request_timeout_ms);
    return r;
}

/* The version to send r with: the highest both sides and the caller allow, or -1. */
static int16_t conn_pick_version(const struct client_conn *c, const struct client_req *r)
{
    const struct proto_api *api = proto_api_find(r->api_key);
    if (api == NULL)
        return -1;
    int16_t lo = api->min_version, hi = api->max_version;
    if (r->internal) { /* ApiVersions: before the peer's table is known */
        hi = c->av_version;
    } else {
        if (r->api_key < 0 || r->api_key >= CLIENT_MAX_API_KEY || c->peer_max[r->api_key] < 0)
            return -1;
        if (c->peer_min[r->api_key] > lo)
            lo = c->peer_min[r->api_key];
        if (c->peer_max[r->api_key] < hi)
            hi = c->peer_max[r->api_key];
    }
    if (r->min_version > lo)
        lo = r->min_version;
    if (r->max_version >= 0 && r->max_version < hi)
        hi = r->max_version;
    return hi >= lo ? hi : -1;
}

/* Encodes r at its version with a fresh correlation id: [size][header][body]. */
static int conn_encode(struct client_conn *c, struct client_req *r)
{
    struct client *cl = c->cl;
    struct kwriter w;
    kw_init(&w, cl->cfg.max_queued_bytes);
    size_t at = kw_reserve_i32(&w);
    int32_t corr = c->next_corr;
    kw_i16(&w, r->api_key);
    kw_i16(&w, r->version);
    kw_i32(&w, corr);
    kw_str(&w, false, cl->client_id, (int32_t)strlen(cl->client_id));
    if (proto_is_flexible(r->api_key, r->version))
        kw_empty_tags(&w); /* request header v2 */
    proto_request_encode(r->api_key, r->version, &w, r->body);
    if (w.err != 0 || w.nfiles != 0) {
        kw_free(&w);
        return -1;
    }
    kw_patch_i32(&w, at, (int32_t)(w.len - 4));
    r->out = w.buf;
    r->out_len = w.len;
    r->out_off = 0;
    w.buf = NULL;
    kw_free(&w);
    /* Ids rise along the connection's list (mod 2^31), so the oldest in flight is the one
     * the next response must name. */
    GREGOR_ASSERT(r->prev == NULL || r->prev->state == REQ_QUEUED ||
                  ((((uint32_t)corr - (uint32_t)r->prev->corr) & 0x7fffffffu) - 1u) < 0x3fffffffu);
    r->corr = corr;
    c->next_corr = (int32_t)(((uint32_t)corr + 1) & 0x7fffffffu);
    return 0;
}

/* Encodes queued requests, oldest first, while the bytes waiting to be written stay under
 * max_queued_bytes; a request the peer cannot take completes with UNSUPPORTED_VERSION. */
static void conn_fill_output(struct client_conn *c)
{
    if (c->state != CLIENT_CONN_READY)
        return;
    struct client_req *r = c->pending.head;
    while (r != NULL && r->state != REQ_QUEUED)
        r = r->next;
    while (r != NULL && c->queued_bytes < c->cl->cfg.max_queued_bytes) {
        struct client_req *next = r->next;
        GREGOR_ASSERT(r->state == REQ_QUEUED);
        GREGOR_ASSERT(r->prev == NULL || r->prev->state != REQ_QUEUED);
        int16_t v = conn_pick_version(c, r);
        if (v < 0) {
            list_remove(&c->pending, r);
            req_complete(c->cl, r, KERR_UNSUPPORTED_VERSION,
                         "the peer supports no version of this API that gregor can send");
        } else {
            r->version = v;
            if (conn_encode(c, r) < 0) {
                list_remove(&c->pending, r);
                req_complete(c->cl, r, KERR_INVALID_REQUEST, "request could not be encoded");
            } else {
                r->state = REQ_ENCODED;
                c->queued_bytes += r->out_len;
            }
        }
        r = next;
    }
}

/* The request r was written whole. */
static void conn_written(struct client_conn *c, struct client_req *r)
{
    GREGOR_ASSERT(r->out_off == r->out_len);
    GREGOR_ASSERT(r->prev == NULL || r->prev->state == REQ_INFLIGHT);
    free(r->out);
    r->out = NULL;
    if (r->no_response) {
        list_remove(&c->pending, r);
        req_complete(c->cl, r, KERR_NONE, NULL);
        return;
    }
    r->state = REQ_INFLIGHT;
}

static void conn_update_interest(struct client_conn *c)
{
    if (c->fd < 0)
        return;
    unsigned ev = LOOP_READ;
    if (c->state == CLIENT_CONN_CONNECTING)
        ev = LOOP_WRITE;
    else if (c->queued_bytes > 0)
        ev |= LOOP_WRITE;
    if (c->tr_open && c->tr.ops->wants != NULL)
        ev |= c->tr.ops->wants(&c->tr);
    if (loop_set(c->cl->loop, c->fd, ev, conn_on_io, c) < 0)
        conn_close_socket(c, "cannot watch the socket", true);
}

/* Writes encoded requests in order with one sendmsg of up to CLIENT_IOV_MAX of them. */
static void conn_write(struct client_conn *c)
{
    while (c->fd >= 0 && c->queued_bytes > 0 && c->state >= CLIENT_CONN_HANDSHAKE) {
        struct iovec iov[CLIENT_IOV_MAX];
        int n = 0;
        size_t total = 0;
        struct client_req *first = NULL;
        for (struct client_req *r = c->pending.head; r != NULL && n < CLIENT_IOV_MAX; r = r->next) {
            if (r->state == REQ_INFLIGHT)
                continue;
            if (r->state != REQ_ENCODED)
                break;
            if (first == NULL)
                first = r;
            iov[n].iov_base = r->out + r->out_off;
            iov[n].iov_len = r->out_len - r->out_off;
            total += iov[n].iov_len;
            n++;
        }
        GREGOR_ASSERT(n > 0);
        ssize_t sent = c->tr.ops->writev(&c->tr, iov, n);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            conn_close_socket(c, conn_io_failure(c, "write failed"), true);
            return;
        }
        GREGOR_ASSERT((size_t)sent <= c->queued_bytes);
        c->queued_bytes -= (size_t)sent;
        size_t left = (size_t)sent;
        struct client_req *r = first;
        while (r != NULL && left > 0) {
            struct client_req *next = r->next;
            size_t part = r->out_len - r->out_off;
            size_t take = left < part ? left : part;
            r->out_off += take;
            left -= take;
            if (r->out_off == r->out_len)
                conn_written(c, r);
            r = next;
        }
        if ((size_t)sent < total && (size_t)sent < iov[0].iov_len)
            break; /* short write: the socket is full (TLS writes one piece a call) */
        conn_fill_output(c);
    }
    conn_update_interest(c);
}

/* ---- handshake */

/* Sends a request of the connection's own setup (ApiVersions, SASL) ahead of the queue. */
static void conn_send_internal(struct client_conn *c, int16_t key, int16_t version,
                               const void *body)
{
    struct client_req *r = req_new(c, key, c->cl->cfg.request_timeout_ms);
    if (r == NULL) {
        conn_close_socket(c, "out of memory", true);
        return;
    }
    r->internal = true;
    r->body = body;
    r->version = version;
    if (conn_encode(c, r) < 0) {
        free(r);
        conn_close_socket(c, "cannot encode a connection setup request", true);
        return;
    }
    /* The handshake goes first: anything encoded before it goes back to the queue. */
    GREGOR_ASSERT(c->queued_bytes == 0);
    r->state = REQ_ENCODED;
    r->prev = NULL;
    r->next = c->pending.head;
    if (c->pending.head != NULL)
        c->pending.head->prev = r;
    else
        c->pending.tail = r;
    c->pending.head = r;
    c->pending.count++;
    c->queued_bytes += r->out_len;
    c->state = CLIENT_CONN_HANDSHAKE;
    conn_arm_deadline(c);
    conn_write(c);
}

static void conn_send_handshake(struct client_conn *c)
{
    static const struct api_versions_request av = {
        .client_software_name = {(char *)CLIENT_SOFTWARE_NAME, sizeof(CLIENT_SOFTWARE_NAME) - 1},
        .client_software_version = {(char *)CLIENT_SOFTWARE_VERSION,
                                    sizeof(CLIENT_SOFTWARE_VERSION) - 1},
    };
    conn_send_internal(c, PROTO_API_API_VERSIONS, c->av_version, &av);
}

/* ---- SASL (after ApiVersions, before ready): SaslHandshake v1, then SaslAuthenticate
 * rounds with the mechanism's tokens, as Kafka's SaslClientAuthenticator. */

static void conn_sasl_start(struct client_conn *c)
{
    const char *m = c->cl->cfg.sasl_mechanism;
    int16_t lo, hi;
    if (!client_conn_peer_versions(c, PROTO_API_SASL_HANDSHAKE, &lo, &hi) || hi < 1 ||
        !client_conn_peer_versions(c, PROTO_API_SASL_AUTHENTICATE, &lo, &hi)) {
        conn_close_socket(c, "the peer has no SaslHandshake v1 and SaslAuthenticate", true);
        return;
    }
    c->sasl_hs.mechanism = (struct kstr){(char *)m, (int32_t)strlen(m)};
    conn_send_internal(c, PROTO_API_SASL_HANDSHAKE, 1, &c->sasl_hs);
}

/* Sends the mechanism's next token (in: the server's last one), or finishes: 1 sent, 0 the
 * exchange is complete, -1 the connection was closed. */
static int conn_sasl_step(struct client_conn *c, const uint8_t *in, size_t in_len)
{
    size_t out_len = 0;
    char err[CLIENT_REASON_MAX - 32] = "";
    int rc = c->cl->cfg.sasl_step(c->cl->cfg.sasl_arg, c->sasl_state, in, in_len, c->sasl_token,
                                  sizeof(c->sasl_token), &out_len, err, sizeof(err));
    if (rc < 0) {
        snprintf(c->why, sizeof(c->why), "SASL authentication failed: %s", err);
        conn_close_socket(c, "SASL authentication failed", true);
        return -1;
    }
    if (rc == 0)
        return 0;
    GREGOR_ASSERT(out_len <= sizeof(c->sasl_token));
    c->sasl_auth.auth_bytes = (struct kbytes){c->sasl_token, (int32_t)out_len};
    int16_t lo = 0, hi = 0;
    client_conn_peer_versions(c, PROTO_API_SASL_AUTHENTICATE, &lo, &hi);
    int16_t ours = proto_api_find(PROTO_API_SASL_AUTHENTICATE)->max_version;
    conn_send_internal(c, PROTO_API_SASL_AUTHENTICATE, hi < ours ? hi : ours, &c->sasl_auth);
    return c->fd >= 0 ? 1 : -1;
}

/* A SASL answer: 1 more is awaited, 0 authenticated, -1 the connection was closed. */
static int conn_sasl_answer(struct client_conn *c, struct client_req *r)
{
    struct kreader kr;
    kr_init(&kr, r->frame + r->body_off, r->frame_len - r->body_off, &r->arena);
    if (r->api_key == PROTO_API_SASL_HANDSHAKE) {
        struct sasl_handshake_response hs;
        if (sasl_handshake_response_decode(&kr, r->version, &hs) < 0) {
            conn_close_socket(c, "malformed SaslHandshake response", true);
            return -1;
        }
        if (hs.error_code != KERR_NONE) {
            snprintf(c->why, sizeof(c->why), "SaslHandshake: %s (mechanism %s)",
                     kerr_name(hs.error_code), c->cl->cfg.sasl_mechanism);
            conn_close_socket(c, "SASL handshake failed", true);
            return -1;
        }
        memset(c->sasl_state, 0, sizeof(c->sasl_state));
        return conn_sasl_step(c, NULL, 0) == 1 ? 1 : -1;
    }
    struct sasl_authenticate_response au;
    if (sasl_authenticate_response_decode(&kr, r->version, &au) < 0) {
        conn_close_socket(c, "malformed SaslAuthenticate response", true);
        return -1;
    }
    if (au.error_code != KERR_NONE) {
        snprintf(c->why, sizeof(c->why), "%s: %.*s", kerr_name(au.error_code),
                 au.error_message.ptr != NULL ? (int)au.error_message.len : 0,
                 au.error_message.ptr != NULL ? au.error_message.ptr : "");
        conn_close_socket(c, "SASL authentication failed", true);
        return -1;
    }
    return conn_sasl_step(c, au.auth_bytes.ptr,
                          au.auth_bytes.len > 0 ? (size_t)au.auth_bytes.len : 0);
}

/* The handshake's answer: 0 when the peer's table was taken, 1 when ApiVersions is sent
 * again at the version the peer named, -1 when the connection must close. */
static int conn_handshake_done(struct client_conn *c, struct client_req *r)
{
    struct kreader kr;
    kr_init(&kr, r->frame + r->body_off, r->frame_len - r->body_off, &r->arena);
    struct api_versions_response resp;
    int rc = api_versions_response_decode(&kr, r->version, &resp);
    if (rc < 0 || resp.error_code == KERR_UNSUPPORTED_VERSION) {
        /* A peer that does not know our version answers at v0 with its own range. */
        arena_reset(&r->arena);
        kr_init(&kr, r->frame + r->body_off, r->frame_len - r->body_off, &r->arena);
        if (api_versions_response_decode(&kr, 0, &resp) < 0)
            return -1;
        if (resp.error_code != KERR_UNSUPPORTED_VERSION || c->av_retried)
            return -1;
        for (int32_t i = 0; i < resp.n_api_keys; i++) {
            if (resp.api_keys[i].api_key == PROTO_API_API_VERSIONS &&
                resp.api_keys[i].max_version < c->av_version &&
                resp.api_keys[i].max_version >= 0) {
                c->av_version = resp.api_keys[i].max_version;
                c->av_retried = true;
                return 1;
            }
        }
        return -1;
    }
    if (resp.error_code != KERR_NONE)
        return -1;
    for (int k = 0; k < CLIENT_MAX_API_KEY; k++)
        c->peer_min[k] = c->peer_max[k] = -1;
    for (int32_t i = 0; i < resp.n_api_keys; i++) {
        const struct api_versions_response_api_version *v = &resp.api_keys[i];
        if (v->api_key >= 0 && v->api_key < CLIENT_MAX_API_KEY && v->min_version >= 0 &&
            v->max_version >= v->min_version) {
            c->peer_min[v->api_key] = v->min_version;
            c->peer_max[v->api_key] = v->max_version;
        }
    }
    return 0;
}

/* ---- reading */

/* A complete response frame for the oldest request in flight. Returns false when the
 * connection was closed. */
static bool conn_on_response(struct client_conn *c, const uint8_t *p, size_t len)
{
    struct client_req *r = c->pending.head;
    if (r == NULL || r->state != REQ_INFLIGHT) {
        CLIENT_LOG_PROTOCOL(c, "response from %s:%d with no request in flight (%zu bytes); closing",
                            c->host, c->port, len);
        conn_close_socket(c, "response with no request in flight", true);
        return false;
    }
    r->frame = malloc(len > 0 ? len : 1);
    if (r->frame == NULL) {
        conn_close_socket(c, "out of memory", true);
        return false;
    }
    memcpy(r->frame, p, len);
    r->frame_len = len;
    arena_init(&r->arena, CLIENT_ARENA_BASE + 4 * len);
    r->arena_used = true;
    const char *reason = NULL;
    bool raw = r->raw || r->internal;
    if (client_response_parse(r->frame, len, r->api_key, r->version, r->corr, raw, &r->arena,
                              &r->decoded, &r->body_off, &reason) < 0) {
        list_remove(&c->pending, r);
        CLIENT_LOG_PROTOCOL(c, "%s from %s:%d (api %d v%d, %zu bytes); closing", reason, c->host,
                            c->port, r->api_key, r->version, len);
        req_complete(c->cl, r, CLIENT_ERR_NETWORK, reason);
        conn_close_socket(c, reason, true);
        return false;
    }
    list_remove(&c->pending, r);
    if (!r->internal) {
        req_complete(c->cl, r, KERR_NONE, NULL);
        return true;
    }
    if (r->api_key != PROTO_API_API_VERSIONS) {
        int sr = conn_sasl_answer(c, r);
        req_complete(c->cl, r, KERR_NONE, NULL);
        if (sr != 0)
            return c->fd >= 0;
    } else {
        int rc = conn_handshake_done(c, r);
        req_complete(c->cl, r, KERR_NONE, NULL);
        if (rc < 0) {
            conn_close_socket(c, "ApiVersions handshake failed", true);
            return false;
        }
        if (rc == 1) {
            conn_send_handshake(c);
            return c->fd >= 0;
        }
        if (c->cl->cfg.sasl_mechanism != NULL && c->cl->cfg.sasl_step != NULL) {
            conn_sasl_start(c);
            return c->fd >= 0;
        }
    }
    c->last_failure[0] = '\0';
    c->state = CLIENT_CONN_READY;
    c->failures = 0;
    c->stats.handshakes++;
    conn_fill_output(c);
    conn_write(c);
    return c->fd >= 0;
}

/* The size prefix at the front of the input, when there is one: false (and the connection
 * closed, the oldest request failed) when it is below a correlation id or above
 * max_response_bytes. Peer input, so never an assertion. */
static bool conn_check_size(struct client_conn *c)
{
    if (c->in_len < 4)
        return true;
    uint32_t size = be32_get(c->in);
    if (size >= 4 && size <= c->cl->cfg.max_response_bytes)
        return true;
    const char *why = size < 4 ? "response shorter than a correlation id"
                               : "response larger than the maximum response size";
    CLIENT_LOG_PROTOCOL(c, "%s from %s:%d (%u bytes); closing", why, c->host, c->port, size);
    struct client_req *r = c->pending.head;
    if (r != NULL && r->state == REQ_INFLIGHT) {
        list_remove(&c->pending, r);
        req_complete(c->cl, r, CLIENT_ERR_NETWORK, why);
    }
    conn_close_socket(c, why, true);
    return false;
}

static void conn_on_read_timer(struct loop *l, void *arg)
{
    (void)l;
    struct client_conn *c = arg;
    c->read_timer = 0;
    conn_read(c);
}

/* Reads what the socket has (at most CLIENT_READS_PER_WAKE recv calls; level-triggered, the
 * loop comes back for the rest) and hands up each complete response. */
static void conn_read(struct client_conn *c)
{
    for (int reads = 0; reads < CLIENT_READS_PER_WAKE && c->fd >= 0; reads++) {
        /* Room for the whole frame being read (once its size is known), else the stage. */
        size_t want = CLIENT_STAGE_BYTES;
        if (c->in_len >= 4 && (size_t)be32_get(c->in) + 4 > want)
            want = (size_t)be32_get(c->in) + 4;
        if (c->in_cap < want) {
            uint8_t *n = realloc(c->in, want);
            if (n == NULL) {
                conn_close_socket(c, "out of memory", true);
                return;
            }
            c->in = n;
            c->in_cap = want;
        }
        GREGOR_ASSERT(c->in_cap > c->in_len);
        ssize_t got = c->tr.ops->read(&c->tr, c->in + c->in_len, c->in_cap - c->in_len);
        if (got == 0) {
            conn_close_socket(c, c->state == CLIENT_CONN_READY
                                     ? "the peer closed the connection"
                                     : conn_io_failure(c, "the peer closed the connection"),
                              true);
            return;
        }
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close_socket(c, conn_io_failure(c, "read failed"), true);
            else
                conn_update_interest(c); /* a TLS read may need to write first */
            return;
        }
        c->in_len += (size_t)got;
        /* Hand up every complete frame, then keep the rest at the front. */
        size_t off = 0;
        while (c->in_len - off >= 4) {
            uint32_t size = be32_get(c->in + off);
            if (size < 4 || size > c->cl->cfg.max_response_bytes || c->in_len - off - 4 < size)
                break;
            if (!conn_on_response(c, c->in + off + 4, size))
                return;
            off += 4 + (size_t)size;
        }
        if (off > 0) {
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
        }
        if (!conn_check_size(c))
            return;
        if (c->in_cap > CLIENT_STAGE_BYTES && c->in_len <= CLIENT_STAGE_BYTES &&
            (c->in_len < 4 || (size_t)be32_get(c->in) + 4 <= CLIENT_STAGE_BYTES)) {
            uint8_t *n = realloc(c->in, CLIENT_STAGE_BYTES); /* a big response's room back */
            if (n != NULL) {
                c->in = n;
                c->in_cap = CLIENT_STAGE_BYTES;
            }
        }
    }
    /* Decrypted bytes no socket readiness will announce: the next turn reads them. */
    if (c->fd >= 0 && c->tr_open && c->tr.ops->pending != NULL && c->tr.ops->pending(&c->tr) &&
        c->read_timer == 0)
        c->read_timer = loop_timer_add(c->cl->loop, mono_ms(), conn_on_read_timer, c);
}

/* ---- connecting */

static void conn_connected(struct client_conn *c)
{
    conn_cancel_timer(c, &c->state_timer);
    c->tr = (struct transport){
        .ops = c->cl->cfg.transport != NULL ? c->cl->cfg.transport : &transport_plain,
        .fd = c->fd,
    };
    if (c->tr.ops->open(&c->tr) != 0) {
        conn_close_socket(c, "cannot set up the transport", true);
        return;
    }
    c->tr_open = true;
    if (c->tr.ops->set_peer != NULL && c->tr.ops->set_peer(&c->tr, c->host) != 0) {
        conn_close_socket(c, "cannot set the peer's host name for its certificate check",
                          true);
        return;
    }
    c->av_retried = false;
    c->av_version = proto_api_find(PROTO_API_API_VERSIONS)->max_version;
    for (int k = 0; k < CLIENT_MAX_API_KEY; k++)
        c->peer_min[k] = c->peer_max[k] = -1;
    conn_send_handshake(c);
}

static void conn_on_io(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)fd;
    struct client_conn *c = arg;
    if (c->state == CLIENT_CONN_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err != 0) {
            CLIENT_LOG_CLOSE(c, "connect to %s:%d failed: %s", c->host, c->port, strerror(err));
            conn_close_socket(c, "connect failed", true);
            return;
        }
        if ((events & (LOOP_WRITE | LOOP_HUP)) == 0)
            return;
        conn_connected(c);
        return;
    }
    if (events & (LOOP_READ | LOOP_HUP)) {
        conn_read(c);
        if (c->fd < 0)
            return;
        if ((events & LOOP_HUP) && !(events & LOOP_READ)) {
            conn_close_socket(c, "the peer hung up", true);
            return;
        }
    }
    if (events & LOOP_WRITE)
        conn_write(c);
}

static void conn_start_connect(struct client_conn *c)
{
    GREGOR_ASSERT(c->fd < 0 && c->state == CLIENT_CONN_BACKOFF);
    c->stats.connect_attempts++;
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->state = CLIENT_CONN_CONNECTING;
        conn_close_socket(c, "socket failed", true);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = CLIENT_CONN_CONNECTING;
    c->next_corr = 0;
    int rc = connect(fd, (struct sockaddr *)&c->addr, c->addr_len);
    if (rc < 0 && errno != EINPROGRESS) {
        CLIENT_LOG_CLOSE(c, "connect to %s:%d failed: %s", c->host, c->port, strerror(errno));
        conn_close_socket(c, "connect failed", true);
        return;
    }
    c->state_timer = loop_timer_add(c->cl->loop, mono_ms() + c->cl->cfg.connect_timeout_ms,
                                    conn_on_connect_timeout, c);
    if (loop_set(c->cl->loop, fd, LOOP_WRITE, conn_on_io, c) < 0) {
        conn_close_socket(c, "cannot watch the socket", true);
        return;
    }
    /* Even a connect that succeeded at once is taken up from the loop (writable). */
}

/* ---- public */

struct client *client_create(struct loop *l, const struct client_config *cfg)
{
    struct client *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    cl->loop = l;
    cl->cfg = *cfg;
    cl->client_id = strdup(cfg->client_id != NULL ? cfg->client_id : "gregor");
    if (cl->client_id == NULL) {
        free(cl);
        return NULL;
    }
    cl->cfg.client_id = cl->client_id;
    cl->rng = cfg->jitter_seed != 0 ? cfg->jitter_seed
                                    : (uint64_t)mono_us() ^ 0x9E3779B97F4A7C15ULL;
    if (cl->rng == 0)
        cl->rng = 1;
    cl->deliver_task.fn = client_deliver;
    cl->deliver_task.arg = cl;
    return cl;
}

struct client_conn *client_connect(struct client *cl, const char *host, int port)
{
    if (port <= 0 || port > 65535 || host == NULL ||
        strlen(host) >= sizeof(((struct client_conn *)0)->host))
        return NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    const char *addr = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
    } else {
        LOG_WARN(CLIENT_WHO, "cannot connect to %s:%d: not a numeric address", host, port);
        return NULL;
    }
    struct client_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->cl = cl;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    c->addr = ss;
    c->addr_len = len;
    c->fd = -1;
    c->state = CLIENT_CONN_BACKOFF;
    for (int k = 0; k < CLIENT_MAX_API_KEY; k++)
        c->peer_min[k] = c->peer_max[k] = -1;
    c->next = cl->conns;
    if (cl->conns != NULL)
        cl->conns->prev = c;
    cl->conns = c;
    conn_start_connect(c);
    return c;
}

void client_conn_destroy(struct client_conn *c)
{
    if (c == NULL)
        return;
    struct client *cl = c->cl;
    conn_close_socket(c, "connection destroyed", false);
    conn_cancel_timer(c, &c->state_timer);
    conn_cancel_timer(c, &c->deadline_timer);
    while (c->pending.head != NULL) {
        struct client_req *r = c->pending.head;
        GREGOR_ASSERT(r->state == REQ_QUEUED);
        list_remove(&c->pending, r);
        req_complete(cl, r, CLIENT_ERR_NETWORK, "connection destroyed");
    }
    GREGOR_ASSERT(c->pending.count == 0 && c->queued_bytes == 0);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        cl->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

void client_destroy(struct client *cl)
{
    if (cl == NULL)
        return;
    GREGOR_ASSERT(!cl->delivering);
    while (cl->conns != NULL)
        client_conn_destroy(cl->conns);
    loop_unpost(cl->loop, &cl->deliver_task);
    client_deliver(cl->loop, cl);
    GREGOR_ASSERT(cl->done.count == 0);
    free(cl->client_id);
    free(cl);
}

int client_send(struct client_conn *c, const struct client_request *req, client_response_fn fn,
                void *arg)
{
    if (c == NULL || req == NULL || req->body == NULL || fn == NULL ||
        proto_request_codec(req->api_key) == NULL || c->pending.count >= c->cl->cfg.max_pending)
        return -1;
    struct client_req *r = req_new(c, req->api_key, req->timeout_ms);
    if (r == NULL)
        return -1;
    r->min_version = req->min_version;
    r->max_version = req->max_version;
    r->body = req->body;
    r->raw = req->raw;
    r->fn = fn;
    r->arg = arg;
    r->state = REQ_QUEUED;
    if (req->api_key == PROTO_API_PRODUCE && ((const struct produce_request *)req->body)->acks == 0)
        r->no_response = true;
    list_append(&c->pending, r);
    conn_arm_deadline(c);
    if (c->state == CLIENT_CONN_READY) {
        conn_fill_output(c);
        conn_write(c);
    }
    return 0;
}

void client_conn_stats(const struct client_conn *c, struct client_conn_stats *out)
{
    *out = c->stats;
    out->state = c->state;
    out->pending = c->pending.count;
    out->queued_bytes = c->queued_bytes;
}

bool client_conn_peer_versions(const struct client_conn *c, int16_t key, int16_t *min,
                               int16_t *max)
{
    if (key < 0 || key >= CLIENT_MAX_API_KEY || c->peer_max[key] < 0)
        return false;
    *min = c->peer_min[key];
    *max = c->peer_max[key];
    return true;
}
