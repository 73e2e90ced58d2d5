/* server: the broker process — opens storage, listens, turns frames into requests for the API
 * handlers and their responses into bytes, group-commits acks=all appends once per loop turn,
 * runs the periodic tasks (retention, flush.ms, checkpoints) and stops cleanly on SIGTERM. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "broker/authorizer.h"
#include "broker/broker.h"
#include "broker/conn_quota.h"
#include "broker/console_api.h"
#include "broker/console.h"
#include "broker/group_store.h"
#include "broker/txn_store.h"
#include "broker/txn_verify.h"
#include "broker/handlers.h"
#include "broker/iowork.h"
#include "broker/log_cleaner.h"
#include "broker/producer_ids.h"
#include "broker/quota.h"
#include "broker/replica_manager.h"
#include "broker/sasl.h"
#include "broker/syncer.h"
#include "cluster/cluster.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/logdir.h"
#include "net/conn.h"
#include "net/loop.h"
#include "net/tls.h"
#include "proto/header.h"
#include "proto/messages.h"

static char server_who[64];

/* Memory a request may take beyond its frame: decoded structs and the response. */
#define REQUEST_ARENA_EXTRA (64u << 20)
#define RESPONSE_MAX_BYTES ((size_t)1 << 30)

void *request_alloc(struct request *r, size_t n)
{
    return arena_alloc(&r->arena, n);
}

char *request_strdup(struct request *r, const char *s)
{
    return arena_strndup(&r->arena, s, strlen(s));
}

bool request_defer(struct request *r)
{
    if (r->conn == NULL || r->reply != NULL)
        return r->reply != NULL;
    if (r->throttle_ms > 0)
        return false; /* throttled: no next request before the answer and its mute */
    r->reply = conn_defer(r->conn);
    if (r->reply == NULL)
        return false;
    conn_set_data(r->conn, NULL); /* no longer the connection's current request */
    return true;
}

void request_free(struct request *r)
{
    if (r->reply != NULL) {
        /* Freed unanswered: the client would wait for this reply forever. */
        struct conn_reply *slot = r->reply;
        r->reply = NULL;
        conn_send_deferred(r->conn, slot, NULL, 0, NULL, 0);
    } else if (r->conn != NULL && conn_data(r->conn) == r)
        conn_set_data(r->conn, NULL);
    if (r->timer_id)
        loop_timer_cancel(r->broker->loop, r->timer_id);
    arena_reset(&r->arena);
    free(r->frame);
    free(r);
}

const char *request_loggable(struct kstr s, char *out, size_t out_size)
{
    GREGOR_ASSERT(out_size >= 4);
    size_t n = 0;
    out[0] = '\0';
    if (s.ptr == NULL || s.len < 0)
        return out;
    for (int32_t i = 0; i < s.len && n + 1 < out_size; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if ((size_t)s.len >= out_size && n >= 3)
        memcpy(out + n - 3, "...", 3);
    out[n] = '\0';
    return out;
}

/* Errors that mean the request was refused (malformed, invalid, over a limit or against a
 * policy) or failed on the server, as opposed to a state clients handle themselves (retriable,
 * not the coordinator, rebalancing, unknown topic): those a client reports as "see the broker
 * log". */
static bool error_is_refusal(int code)
{
    switch (code) {
    case KERR_UNKNOWN_SERVER_ERROR:
    case KERR_CORRUPT_MESSAGE:
    case KERR_INVALID_FETCH_SIZE:
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_OFFSET_METADATA_TOO_LARGE:
    case KERR_INVALID_TOPIC_EXCEPTION:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_INVALID_REQUIRED_ACKS:
    case KERR_INCONSISTENT_GROUP_PROTOCOL:
    case KERR_INVALID_GROUP_ID:
    case KERR_INVALID_SESSION_TIMEOUT:
    case KERR_INVALID_COMMIT_OFFSET_SIZE:
    case KERR_INVALID_TIMESTAMP:
    case KERR_UNSUPPORTED_VERSION:
    case KERR_INVALID_PARTITIONS:
    case KERR_INVALID_REPLICATION_FACTOR:
    case KERR_INVALID_REPLICA_ASSIGNMENT:
    case KERR_INVALID_CONFIG:
    case KERR_INVALID_REQUEST:
    case KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case KERR_POLICY_VIOLATION:
    case KERR_KAFKA_STORAGE_ERROR:
    case KERR_UNSUPPORTED_COMPRESSION_TYPE:
    case KERR_GROUP_MAX_SIZE_REACHED:
    case KERR_INVALID_RECORD:
        return true;
    default:
        return false;
    }
}

struct refusals {
    int16_t api_key;
    int count;
    struct proto_error_site first;
};

static bool refusal_seen(void *ctx, const struct proto_error_site *site)
{
    struct refusals *rf = ctx;
    /* ApiVersions' UNSUPPORTED_VERSION is the version handshake (KIP-511), not a refusal. */
    const struct api_entry *api = broker_api_find(rf->api_key);
    bool handshake = api != NULL && api->newer_version != NULL && site->code == KERR_UNSUPPORTED_VERSION;
    if (error_is_refusal(site->code) && !handshake && rf->count++ == 0)
        rf->first = *site;
    return false; /* count them all: the walk is bounded by the response itself */
}

/* One INFO line per answered request that carries a refusal: who sent it, what, the first
 * refused resource with its error and message, and how many there were (rate-limited: a client
 * can repeat refused requests at will). */
static void log_refusals(const struct request *r)
{
    struct refusals rf = {.api_key = r->api_key, .count = 0};
    if (r->resp == NULL || logging_level() > LOG_LEVEL_INFO)
        return;
    proto_response_errors(r->api_key, r->resp_version, r->resp, refusal_seen, &rf);
    if (rf.count == 0)
        return;
    char client[128], resource[300], message[600], more[48] = "";
    request_loggable(r->client_id, client, sizeof(client));
    request_loggable(rf.first.resource, resource, sizeof(resource));
    request_loggable(rf.first.message, message, sizeof(message));
    if (rf.first.partition >= 0) {
        size_t n = strlen(resource);
        snprintf(resource + n, sizeof(resource) - n, "%s%d", n > 0 ? "-" : "partition ",
                 rf.first.partition);
    }
    if (rf.count > 1)
        snprintf(more, sizeof(more), " (%d refused in this request)", rf.count);
    LOG_LIMITED(LOG_LEVEL_INFO, "KafkaApis",
                "Refused %s v%d (correlation id %d) from client %s at %s: %s%s%s%s%s%s",
                r->api->name, r->api_version, r->correlation_id, client,
                r->conn != NULL ? conn_peer(r->conn) : "(gone)", kerr_name(rf.first.code),
                resource[0] ? " for " : "", resource, message[0] ? ": " : "", message, more);
}

void request_finish(struct request *r)
{
    struct conn *c = r->conn;
    log_refusals(r);
    metrics_request_done(r->broker, r, true);
    if (c == NULL) {
        request_free(r);
        return;
    }
    struct kwriter w;
    kw_init(&w, RESPONSE_MAX_BYTES);
    size_t at = kw_reserve_i32(&w);
    kw_i32(&w, r->correlation_id);
    /* Flexible responses carry header v1, except ApiVersions which is always v0 (KIP-511). */
    if (r->flexible && !r->api->response_header_v0)
        kw_empty_tags(&w);
    /* KIP-219 (RequestHandlerHelper.sendResponseMaybeThrottle): every response that has a
     * throttle_time_ms carries the client's throttle, the larger of its request and byte-rate
     * quotas' (a handler's own value stays when larger). Sent at once, whatever the version:
     * the mute below is the throttle, as Kafka 2.0+ does for old clients too. */
    int32_t *throttle = r->resp != NULL
                            ? proto_response_throttle(r->api_key, r->resp_version, r->resp)
                            : NULL;
    if (throttle != NULL && *throttle < r->throttle_ms)
        *throttle = r->throttle_ms;
    r->api->encode(&w, r->resp_version, r->resp);
    if (w.err) {
        LOG_ERROR(server_who, "cannot encode %s v%d response (%zu bytes so far)", r->api->name,
                  r->resp_version, kw_size(&w));
        kw_free(&w);
        /* A deferred reply keeps its connection: request_free drops it. */
        if (r->reply == NULL) {
            conn_set_data(c, NULL);
            r->conn = NULL;
        }
        conn_close(c, "response could not be encoded");
        request_free(r);
        return;
    }
    kw_patch_i32(&w, at, (int32_t)(kw_size(&w) - 4));
    struct net_file_range ranges[64];
    struct net_file_range *rg = ranges;
    if (w.nfiles > sizeof(ranges) / sizeof(ranges[0])) {
        rg = malloc(w.nfiles * sizeof(*rg));
        GREGOR_ASSERT(rg != NULL);
    }
    for (size_t i = 0; i < w.nfiles; i++) {
        rg[i].fd = w.files[i].fd;
        rg[i].offset = w.files[i].offset;
        rg[i].len = w.files[i].len;
        rg[i].at = w.files[i].at;
    }
    size_t nfiles = w.nfiles;
    uint8_t *buf = w.buf;
    size_t len = w.len;
    w.buf = NULL;
    w.nfiles = 0; /* the fds now belong to the connection */
    kw_free(&w);
    struct conn_reply *slot = r->reply;
    r->reply = NULL;
    if (slot == NULL)
        conn_set_data(c, NULL);
    r->conn = NULL;
    int32_t throttle_ms = r->throttle_ms;
    request_free(r);
    if (slot != NULL)
        conn_send_deferred(c, slot, buf, len, rg, nfiles);
    else
        conn_send(c, buf, len, rg, nfiles);
    /* KIP-219: the answer goes at once, carrying the throttle time; the connection is not
     * read until it has passed. */
    if (throttle_ms > 0)
        conn_mute_for(c, throttle_ms);
    if (rg != ranges)
        free(rg);
}

int32_t request_quota_record(struct request *r, int key, double value)
{
    struct broker *b = r->broker;
    if (b->quotas == NULL || r->conn == NULL || quotas_count(b->quotas) == 0)
        return 0;
    struct conn_session *s = conn_session(r->conn);
    /* The user of a quota is the principal's name (User:alice -> alice). */
    const char *user = strchr(s->principal, ':') != NULL ? strchr(s->principal, ':') + 1
                                                         : s->principal;
    int32_t t = quota_record(b->quotas, key, user, s->client_id ? s->client_id : "", value,
                             mono_ms());
    if (t > r->throttle_ms)
        r->throttle_ms = t;
    return t;
}

void request_quota_unrecord(struct request *r, int key, double value)
{
    struct broker *b = r->broker;
    if (b->quotas == NULL || r->conn == NULL || quotas_count(b->quotas) == 0)
        return;
    struct conn_session *s = conn_session(r->conn);
    const char *user = strchr(s->principal, ':') != NULL ? strchr(s->principal, ':') + 1
                                                         : s->principal;
    quota_unrecord(b->quotas, key, user, s->client_id ? s->client_id : "", value, mono_ms());
}

double request_quota_window_max(struct request *r, int key)
{
    struct broker *b = r->broker;
    if (b->quotas == NULL || r->conn == NULL || quotas_count(b->quotas) == 0)
        return -1;
    struct conn_session *s = conn_session(r->conn);
    const char *user = strchr(s->principal, ':') != NULL ? strchr(s->principal, ':') + 1
                                                         : s->principal;
    return quota_window_max(b->quotas, key, user, s->client_id ? s->client_id : "");
}

/* Requests not counted against request_percentage here: those Kafka exempts, the cluster
 * actions it answers with sendResponseExemptThrottle (a follower's fetch is marked by its
 * handler) and the SASL exchange (its authenticator runs it before KafkaApis), and those
 * whose handler recorded it already (a fetch, to answer empty when throttled). */
static bool request_quota_exempt(const struct request *r)
{
    switch (r->api_key) {
    case PROTO_API_CONTROLLED_SHUTDOWN:
    case PROTO_API_WRITE_TXN_MARKERS:
    case PROTO_API_SASL_HANDSHAKE:
    case PROTO_API_SASL_AUTHENTICATE:
        return true;
    default:
        return r->request_quota_done;
    }
}

static void close_for(struct request *r, const char *why)
{
    struct conn *c = r->conn;
    r->conn = NULL;
    conn_set_data(c, NULL);
    request_free(r);
    conn_close(c, why);
}

/* Closes the connection of a request refused without an answer (as Kafka does for what it
 * cannot parse or serve). conn_close's line, rate-limited, is the one log line: the peer, then
 * the client id, the error (NULL when Kafka has none for it) and the reason. */
static void refuse_and_close(struct request *r, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse_and_close(struct request *r, const char *error, const char *fmt, ...)
{
    char client[128], reason[512], why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(why, sizeof(why), "refused request (correlation id %d) from client %s: %s%s%s",
             r->correlation_id, request_loggable(r->client_id, client, sizeof(client)),
             error ? error : "", error ? ": " : "", reason);
    close_for(r, why);
}

static void on_frame(void *ctx, struct conn *c, uint8_t *frame, size_t len)
{
    struct broker *b = ctx;
    struct request *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        free(frame);
        conn_close(c, "out of memory for a request");
        return;
    }
    r->broker = b;
    r->conn = c;
    r->frame = frame;
    r->frame_len = len;
    r->start_us = mono_us();
    arena_init(&r->arena, REQUEST_ARENA_EXTRA + 4 * len);
    conn_set_data(c, r);
    if (sasl_raw_token(b, r)) /* after SaslHandshake v0 a frame is a SASL token */
        return;

    struct kreader kr;
    kr_init(&kr, frame, len, &r->arena);
    struct request_header h;
    bool flexible = false;
    int hrc = proto_request_header_decode(&kr, proto_is_flexible, &h, &flexible);
    r->api_key = h.api_key;
    r->api_version = h.api_version;
    r->correlation_id = h.correlation_id;
    r->client_id = h.client_id;
    conn_session_set_client_id(conn_session(c), hrc == 0 ? h.client_id.ptr : NULL,
                               h.client_id.len);
    r->api = broker_api_find(r->api_key);
    if (r->api == NULL) {
        refuse_and_close(r, "INVALID_REQUEST", "unknown API key %d (version %d)", r->api_key,
                         r->api_version);
        return;
    }
    /* An ApiVersions of a version we do not know is answered whatever its header's tags
     * hold: that answer is how clients learn our range (KIP-511). */
    if (r->api->newer_version != NULL && r->api_version > r->api->max_version) {
        r->api->newer_version(b, r);
        request_finish(r);
        return;
    }
    if (hrc != 0) {
        refuse_and_close(r, "INVALID_REQUEST", "truncated %s request header", r->api->name);
        return;
    }
    char sasl_why[160];
    const char *unauthenticated = sasl_request_refusal(b, c, r->api_key, sasl_why,
                                                       sizeof(sasl_why));
    if (unauthenticated != NULL) { /* Kafka closes such a connection without an answer */
        refuse_and_close(r, "ILLEGAL_SASL_STATE", "%s", unauthenticated);
        return;
    }
    const struct proto_api *pa = proto_api_find(r->api_key);
    if (r->api_version < r->api->min_version || r->api_version > r->api->max_version ||
        pa == NULL || r->api_version < pa->min_version) {
        /* The range served: the narrower of the advertised range and the codec's. */
        int min = pa != NULL && pa->min_version > r->api->min_version ? pa->min_version
                                                                       : r->api->min_version;
        refuse_and_close(r, "UNSUPPORTED_VERSION", "unsupported version %d of %s (supported %d-%d)",
                         r->api_version, r->api->name, min, r->api->max_version);
        return;
    }
    r->flexible = flexible;
    r->resp_version = r->api_version;
    r->body = arena_alloc(&r->arena, r->api->request_size);
    r->resp = arena_alloc(&r->arena, r->api->response_size);
    if (r->body == NULL || r->resp == NULL) {
        refuse_and_close(r, NULL, "%s v%d request too large for its memory bound", r->api->name,
                         r->api_version);
        return;
    }
    if (!kr_ok(&kr) || r->api->decode(&kr, r->api_version, r->body) != 0 || !kr_ok(&kr)) {
        refuse_and_close(r, "INVALID_REQUEST", "cannot parse %s v%d request at byte %zu of %zu: %s",
                         r->api->name, r->api_version, kr.off, kr.len, kr.what ? kr.what : "?");
        return;
    }
    LOG_DEBUG(server_who, "%s v%d corr=%d from %s", r->api->name, r->api_version,
              r->correlation_id, conn_peer(c));
    enum request_status st = r->api->handler(b, r);
    /* request_percentage (ClientRequestQuotaManager): the loop-thread time of the request
     * from its frame to its handler's return, as Kafka counts its io and network threads'
     * time (percent of one thread: 1 ms is 0.1 percent-second). A pending request counts its
     * handler's step, its throttle sent with its answer; its later steps are not counted
     * (they run for many requests at once: group commits, wake-ups). */
    if (!request_quota_exempt(r))
        request_quota_record(r, QUOTA_REQUEST_PERCENTAGE,
                             (double)(mono_us() - r->start_us) * 1e-4);
    request_continue(r, st);
}

void request_continue(struct request *r, enum request_status st)
{
    struct conn *c = r->conn;
    switch (st) {
    case REQUEST_DONE:
        request_finish(r);
        break;
    case REQUEST_PENDING:
        break;
    case REQUEST_NO_REPLY: {
        metrics_request_done(r->broker, r, false);
        int32_t throttle_ms = r->throttle_ms;
        r->conn = NULL;
        if (c != NULL)
            conn_set_data(c, NULL);
        request_free(r);
        if (c != NULL)
            conn_done_no_reply(c);
        if (c != NULL && throttle_ms > 0)
            conn_mute_for(c, throttle_ms); /* acks=0 is throttled without an answer */
        break;
    }
    case REQUEST_CLOSE:
        if (c == NULL) {
            request_free(r);
            break;
        }
        /* Handlers close when the response does not fit the request's memory bound. */
        refuse_and_close(r, NULL, "%s v%d: its response does not fit the request's memory bound",
                         r->api->name, r->api_version);
        break;
    }
}

static void on_close(void *ctx, struct conn *c)
{
    (void)ctx;
    struct request *r = conn_data(c);
    if (r != NULL) {
        r->conn = NULL; /* still pending somewhere: answered into the void, then freed */
        conn_set_data(c, NULL);
    }
}

struct broker_timer {
    struct broker *b;
    broker_timer_fn fn;
    void *arg;
};

static void broker_timer_fire(struct loop *l, void *arg)
{
    (void)l;
    struct broker_timer t = *(struct broker_timer *)arg;
    free(arg);
    t.fn(t.b, t.arg);
}

uint64_t broker_timer_add(struct broker *b, int64_t when_mono_ms, broker_timer_fn fn, void *arg)
{
    struct broker_timer *t = malloc(sizeof(*t));
    if (t == NULL)
        return 0;
    *t = (struct broker_timer){b, fn, arg};
    uint64_t id = loop_timer_add(b->loop, when_mono_ms, broker_timer_fire, t);
    if (id == 0)
        free(t);
    return id;
}

void broker_timer_cancel(struct broker *b, uint64_t id)
{
    void *arg = loop_timer_cancel_arg(b->loop, id);
    free(arg);
}

void broker_mark_dirty(struct broker *b, struct partition *p)
{
    b->appended = true;
    p->active_recently = true;
    if (p->dirty)
        return;
    if (b->ndirty == b->capdirty) {
        int cap = b->capdirty ? b->capdirty * 2 : 64;
        struct partition **d = realloc(b->dirty, (size_t)cap * sizeof(*d));
        GREGOR_ASSERT(d != NULL);
        b->dirty = d;
        b->capdirty = cap;
    }
    p->dirty = true;
    b->dirty[b->ndirty++] = p;
}

/* Group commit. Every acks=all request appended while no sync runs joins the next one; the
 * syncer thread does one fdatasync per dirty partition for all of them while this thread goes
 * on reading and appending (a deferred request lets its connection's next one in). */
static void commit_collect(struct broker *b)
{
    if (b->capcommit < b->ndirty) {
        int cap = b->ndirty < 64 ? 64 : b->ndirty * 2;
        struct partition **pp = realloc(b->commit_parts, (size_t)cap * sizeof(*pp));
        GREGOR_ASSERT(pp != NULL);
        b->commit_parts = pp;
        int *rp = realloc(b->commit_results, (size_t)cap * sizeof(*rp));
        GREGOR_ASSERT(rp != NULL);
        b->commit_results = rp;
        b->capcommit = cap;
    }
    int64_t now = now_ms();
    bool durable_waiters = waiters_parked(&b->waiters, WAITER_ON_DURABLE) > 0;
    int n = 0;
    for (int i = 0; i < b->ndirty; i++) {
        struct partition *p = b->dirty[i];
        p->dirty = false;
        if (!durable_waiters && !partition_flush_due(p, now))
            continue; /* acks=0/1 only: Kafka's page-cache policy, flush.* decide */
        p->commit_end = partition_log_end(p);
        b->commit_parts[n] = p;
        b->commit_results[n] = KERR_NONE;
        n++;
    }
    b->ndirty = 0;
    b->ncommit = n;
}

/* The batch is synced: record each partition's outcome (its durable point moved, or the
 * failure up to commit_end) and re-check the durable waiters (answered by waiters_fire). */
static void commit_settle(struct broker *b)
{
    int64_t now = now_ms();
    metrics_commit_settled(b);
    for (int i = 0; i < b->ncommit; i++) {
        struct partition *p = b->commit_parts[i];
        p->flush_failed = b->commit_results[i] != KERR_NONE;
        p->last_flush_ms = now;
        if (p->flush_failed)
            LOG_LIMITED(LOG_LEVEL_ERROR, "Log",
                        "fdatasync of %s-%d failed: acks=all producers get KAFKA_STORAGE_ERROR",
                        p->topic->name, p->index);
    }
    b->ncommit = 0;
    waiters_wake(&b->waiters, WAITER_ON_DURABLE);
}

static void commit_done(void *arg)
{
    struct broker *b = arg;
    commit_settle(b);
    waiters_fire(&b->waiters);
}

/* The collected batch synced on this thread (no sync thread, or draining). */
static void commit_sync_here(struct broker *b)
{
    for (int i = 0; i < b->ncommit; i++)
        b->commit_results[i] = partition_flush(b->commit_parts[i]);
}

static void commit_start(struct broker *b)
{
    if (b->syncer != NULL && syncer_busy(b->syncer))
        return;
    if (b->ndirty == 0)
        return;
    commit_collect(b);
    metrics_commit_started(b);
    if (b->ncommit > 0 && b->syncer != NULL) {
        syncer_submit(b->syncer, b->commit_parts, b->commit_results, b->ncommit);
        return;
    }
    commit_sync_here(b);
    commit_done(b);
}

void broker_commit_drain(struct broker *b)
{
    if (b->syncer != NULL && syncer_busy(b->syncer)) {
        syncer_wait(b->syncer);
        commit_settle(b);
    }
    if (b->ndirty > 0) {
        commit_collect(b);
        commit_sync_here(b);
        commit_settle(b);
    }
    /* Everything appended is synced (or failed): no durable waiter is left pointing at a
     * partition; the met ones are answered in before_sleep, outside whatever handler called. */
    GREGOR_ASSERT(waiters_parked(&b->waiters, WAITER_ON_DURABLE) == 0);
    if (waiters_ready(&b->waiters) > 0)
        loop_wake_soon(b->loop);
}

static void before_sleep(struct loop *l, void *arg)
{
    struct broker *b = arg;
    waiters_fire(&b->waiters);
    /* Answering requests can let pipelined frames in that append again: settle a few
     * rounds, then make sure the loop does not sleep on work that is still owed. */
    for (int round = 0; round < 8; round++) {
        commit_start(b);
        if (!b->appended)
            break;
        b->appended = false;
        waiters_wake(&b->waiters, WAITER_ON_APPEND);
        waiters_fire(&b->waiters);
    }
    bool sync_busy = b->syncer != NULL && syncer_busy(b->syncer);
    bool owed_sync = waiters_parked(&b->waiters, WAITER_ON_DURABLE) > 0 && b->ndirty > 0 && !sync_busy;
    if (owed_sync || b->appended || waiters_ready(&b->waiters) > 0)
        loop_wake_soon(l);
}

/* Periodic storage work: the loop decides and updates the logs' in-memory state; the I/O
 * worker does the disk part (closes, unlinks, fdatasyncs). A job owns what it is handed. */
struct retention_job {
    struct plog_trash **trash;
    int n;
};

static void retention_job_dispose(void *arg)
{
    struct retention_job *j = arg;
    for (int i = 0; i < j->n; i++)
        partition_trash_dispose(j->trash[i]);
}

static void retention_job_free(void *arg)
{
    struct retention_job *j = arg;
    free(j->trash);
    free(j);
}

static void periodic_retention(struct loop *l, void *arg)
{
    struct broker *b = arg;
    int64_t now = now_ms();
    int cap = 0;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        cap += t->npartitions;
    struct retention_job *j = calloc(1, sizeof(*j));
    if (j != NULL)
        j->trash = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*j->trash));
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        for (int32_t i = 0; i < t->npartitions; i++) {
            partition_maybe_roll(t->partitions[i], now);
            struct plog_trash *trash;
            partition_retention_detach(t->partitions[i], now, &trash);
            if (trash == NULL)
                continue;
            if (j != NULL && j->trash != NULL && j->n < cap)
                j->trash[j->n++] = trash;
            else
                partition_trash_dispose(trash); /* no memory for the job: here, as before */
        }
    if (j != NULL && j->n > 0 &&
        (b->syncer == NULL || iowork_submit(syncer_iowork(b->syncer), IOWORK_RETENTION,
                                            retention_job_dispose, retention_job_free, j, false) < 0)) {
        retention_job_dispose(j); /* worker queue full (or none): the files go here */
        retention_job_free(j);
    } else if (j != NULL && j->n == 0) {
        retention_job_free(j);
    }
    loop_timer_add(l, mono_ms() + b->cfg.log_retention_check_interval_ms, periodic_retention, b);
}

/* The logs flush.ms says are due, and those rolled since their last flush (Kafka flushes
 * the old segments after a roll), flushed on the worker. The logs live until
 * broker_commit_drain, which waits for the worker (syncer_busy counts this job). */
struct flush_job {
    struct partition **parts;
    int n;
};

static void flush_job_run(void *arg)
{
    struct flush_job *j = arg;
    for (int i = 0; i < j->n; i++)
        partition_flush(j->parts[i]);
}

static void flush_job_free(void *arg)
{
    struct flush_job *j = arg;
    free(j->parts);
    free(j);
}

static void periodic_flush(struct loop *l, void *arg)
{
    struct broker *b = arg;
    int64_t now = now_ms();
    struct iowork *w = b->syncer != NULL ? syncer_iowork(b->syncer) : NULL;
    /* One flush pass at a time: a pass still queued covers these logs too. */
    if (w == NULL || iowork_inflight(w, IOWORK_FLUSH) == 0) {
        int cap = 0;
        for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
            cap += t->npartitions;
        struct flush_job *j = calloc(1, sizeof(*j));
        if (j != NULL)
            j->parts = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*j->parts));
        for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
            for (int32_t i = 0; i < t->npartitions; i++) {
                struct partition *p = t->partitions[i];
                if (!partition_flush_due(p, now) && !partition_roll_flush_due(p))
                    continue;
                if (j != NULL && j->parts != NULL && j->n < cap)
                    j->parts[j->n++] = p;
                else
                    partition_flush(p);
            }
        if (j != NULL && j->n > 0 &&
            (w == NULL || iowork_submit(w, IOWORK_FLUSH, flush_job_run, flush_job_free, j, false) < 0)) {
            flush_job_run(j);
            flush_job_free(j);
        } else if (j != NULL && j->n == 0) {
            flush_job_free(j);
        }
    }
    loop_timer_add(l, mono_ms() + b->cfg.log_flush_scheduler_interval_ms, periodic_flush, b);
}

/* Partitions nobody wrote to for a sweep give back their index descriptors. */
#define IDLE_FD_SWEEP_MS 10000
static void periodic_idle_fds(struct loop *l, void *arg)
{
    struct broker *b = arg;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        for (int32_t i = 0; i < t->npartitions; i++) {
            struct partition *p = t->partitions[i];
            if (!p->active_recently)
                partition_release_fds(p);
            p->active_recently = false;
        }
    loop_timer_add(l, mono_ms() + IDLE_FD_SWEEP_MS, periodic_idle_fds, b);
}

static void periodic_checkpoint(struct loop *l, void *arg)
{
    struct broker *b = arg;
    topics_checkpoint(b);
    loop_timer_add(l, mono_ms() + b->cfg.offset_checkpoint_interval_ms, periodic_checkpoint, b);
}

static void controlled_shutdown_done(struct broker *b)
{
    b->stopping = true;
    loop_stop(b->loop);
}

static void on_signal(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)events;
    struct broker *b = arg;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return;
    LOG_INFO(server_who, "shutting down (signal %u)", si.ssi_signo);
    /* On a cluster the leaderships move away first (Kafka's controlled shutdown), while this
     * broker still serves and follows the moves; a second signal stops at once. */
    if (b->cluster != NULL && b->cfg.controlled_shutdown_enable && b->shutdown_ctl == NULL &&
        cluster_is_registered(b->cluster)) {
        b->shutdown_ctl = controlled_shutdown_start(b, controlled_shutdown_done);
        if (b->shutdown_ctl != NULL)
            return;
    }
    b->stopping = true;
    loop_stop(l);
}

/* Each segment holds three descriptors and each client one: take the whole hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            LOG_WARN(server_who, "cannot raise the open-files limit: %s", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        LOG_INFO(server_who, "open-files limit %llu", (unsigned long long)rl.rlim_cur);
}

/* Request frames (up to ~1 MiB from batching producers) and their arenas are allocated and
 * freed per request, and an acks=all connection holds up to CONN_MAX_DEFERRED of them at
 * once. glibc's defaults hand such memory back to the kernel after every burst and then
 * fault fresh zeroed pages in again (0.2 CPU-s per GB at acks=all here): keep frames below
 * 16 MiB on the heap and up to 64 MiB of freed heap for the next requests. RSS after load
 * stays at the peak in use (BENCHMARKS.md), within that bound. */
#define SERVER_MMAP_THRESHOLD_BYTES (16 * 1024 * 1024)
#define SERVER_TRIM_THRESHOLD_BYTES (64 * 1024 * 1024)
static void keep_request_memory(void)
{
    if (mallopt(M_MMAP_THRESHOLD, SERVER_MMAP_THRESHOLD_BYTES) != 1 ||
        mallopt(M_TRIM_THRESHOLD, SERVER_TRIM_THRESHOLD_BYTES) != 1)
        LOG_INFO(server_who, "the allocator keeps its own request-memory policy (mallopt "
                 "refused; e.g. under AddressSanitizer)");
}

#define QUEUED_MAX_REQUEST_BYTES_DEFAULT ((int64_t)256 << 20)

/* max.connections.per.ip.overrides ("host:count,..."; checked by config.c). */
static int set_ip_limits(struct broker *b)
{
    char tmp[sizeof(b->cfg.max_connections_per_ip_overrides)];
    snprintf(tmp, sizeof(tmp), "%s", b->cfg.max_connections_per_ip_overrides);
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *colon = strrchr(tok, ':');
        *colon = '\0';
        if (net_set_ip_limit(b->net, tok, atoi(colon + 1)) != 0) {
            LOG_ERROR(server_who, "max.connections.per.ip.overrides: cannot resolve host %s", tok);
            return -1;
        }
    }
    return 0;
}

/* ZooKeeper's topics or leaders changed: open the partitions this broker leads, then take or
 * let go of the group coordinators of __consumer_offsets' partitions. */
static void cluster_changed(void *arg)
{
    struct broker *b = arg;
    broker_cluster_sync(b);
    group_store_cluster_sync(b);
    txn_store_cluster_sync(b);
}

/* Connects to ZooKeeper and reads (or creates) /cluster/id, which the log dirs' meta.properties
 * must match (logdir_open refuses another cluster's dir, Kafka's InconsistentClusterIdException).
 * Kafka's startup fails when ZooKeeper is not reached within zookeeper.connection.timeout.ms;
 * so does this one (the client retried every server meanwhile). */
static int cluster_join(struct broker *b)
{
    if (b->cfg.node_id < 0) {
        /* Kafka would generate one from /brokers/seqid (broker.id.generation.enable). */
        LOG_ERROR(server_who, "broker.id %d: a broker on ZooKeeper needs broker.id (or node.id) "
                  ">= 0; gregor does not generate broker ids", b->cfg.node_id);
        return -1;
    }
    const struct broker_listener *ib = &b->cfg.listeners[b->cfg.inter_broker_listener];
    struct cluster_config cc = {
        .zookeeper_connect = b->cfg.zookeeper_connect,
        .session_timeout_ms = b->cfg.zookeeper_session_timeout_ms,
        .connection_timeout_ms = b->cfg.zookeeper_connection_timeout_ms > 0
                                     ? b->cfg.zookeeper_connection_timeout_ms
                                     : b->cfg.zookeeper_session_timeout_ms,
        .broker_id = b->cfg.node_id,
        .listener_name = ib->name,
        .host = b->cfg.advertised_host,
        .port = b->cfg.advertised_port,
        .rack = b->cfg.broker_rack,
        .on_change = cluster_changed, /* the replica manager (leaders, followers), the coordinators */
        .on_topic_gone = broker_cluster_topic_gone,
        .change_arg = b,
        .unclean_leader_election_enable = b->cfg.unclean_leader_election_enable,
        .auto_leader_rebalance_enable = b->cfg.auto_leader_rebalance_enable,
        .leader_imbalance_check_interval_s = (int32_t)(b->cfg.leader_imbalance_check_interval_s > INT32_MAX / 1000 ? INT32_MAX / 1000 : b->cfg.leader_imbalance_check_interval_s),
        .leader_imbalance_per_broker_percentage = b->cfg.leader_imbalance_per_broker_percentage,
    };
    /* Every listener is registered (Kafka's advertised listeners); peers reach this broker on
     * the inter-broker one's endpoint. */
    for (int i = 0; i < b->cfg.n_listeners && i < CLUSTER_ENDPOINTS_MAX; i++) {
        const struct broker_listener *l = &b->cfg.listeners[i];
        struct cluster_endpoint *e = &cc.endpoints[cc.n_endpoints++];
        snprintf(e->name, sizeof(e->name), "%s", l->name);
        snprintf(e->protocol, sizeof(e->protocol), "%s", l->security_protocol);
        snprintf(e->host, sizeof(e->host), "%s", l->advertised_host);
        e->port = l->advertised_port;
    }
    b->cluster = cluster_create(b->loop, &cc);
    if (b->cluster == NULL)
        return -1;
    char id[64];
    if (cluster_await_id(b->cluster, id, sizeof(id)) != 0)
        return -1;
    if (b->cfg.cluster_id[0] != '\0' && strcmp(b->cfg.cluster_id, id) != 0) {
        LOG_ERROR(server_who,
                  "InconsistentClusterIdException: The Cluster ID %s doesn't match stored "
                  "clusterId %s in server.properties. The broker is trying to join the wrong "
                  "cluster. Configured zookeeper.connect may be wrong.",
                  id, b->cfg.cluster_id);
        return -1;
    }
    snprintf(b->cfg.cluster_id, sizeof(b->cfg.cluster_id), "%s", id);
    return 0;
}

static int open_storage(struct broker *b)
{
    for (int i = 0; i < b->cfg.n_log_dirs; i++) {
        if (logdir_open(b->cfg.log_dirs[i], b->cfg.node_id,
                        b->cfg.cluster_id[0] ? b->cfg.cluster_id : (i > 0 ? b->cluster_id : NULL),
                        &b->dirs[i]) != 0) {
            if (b->cluster != NULL)
                LOG_ERROR(server_who,
                          "InconsistentClusterIdException when the Cluster ID %s (ZooKeeper's "
                          "/cluster/id) differs from meta.properties' in %s: the broker is "
                          "trying to join the wrong cluster. Configured zookeeper.connect may "
                          "be wrong.",
                          b->cfg.cluster_id, b->cfg.log_dirs[i]);
            return -1;
        }
        b->ndirs = i + 1;
        if (i == 0)
            snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", logdir_cluster_id(b->dirs[0]));
    }
    /* Before the topics: those without overrides follow the dynamic log.* defaults. */
    if (dynamic_configs_load(b) != 0)
        return -1;
    if (authorizer_open(b) != 0) /* the ACL file lives in the first log dir */
        return -1;
    b->quotas = quotas_create(b->cfg.quota_window_num, b->cfg.quota_window_size_seconds);
    if (b->quotas == NULL)
        return -1;
    quotas_set_mutation_window(b->quotas, b->cfg.controller_quota_window_num,
                               b->cfg.controller_quota_window_size_seconds);
    char quotas_path[1200];
    snprintf(quotas_path, sizeof(quotas_path), "%s/%s", logdir_path(b->dirs[0]), QUOTAS_FILE);
    if (b->cluster != NULL) /* the client quotas live in ZooKeeper's /config */
        quotas_cluster_attach(b);
    else if (quotas_load(b->quotas, quotas_path) != 0) /* the client quotas too */
        return -1;
    int64_t t0 = mono_ms();
    if (topics_load(b) != 0)
        return -1;
    LOG_INFO("LogManager", "Loaded %d topics from %d log dirs in %lld ms", b->ntopics, b->ndirs,
             (long long)(mono_ms() - t0));
    return 0;
}

static void listeners_free(struct broker *b);

static void shutdown_broker(struct broker *b)
{
    controlled_shutdown_free(b->shutdown_ctl);
    b->shutdown_ctl = NULL;
    net_stop_listening(b->net);
    b->accepting = false;
    console_stop(b); /* requests of the console still up are dropped with it */
    /* The session's end deletes this broker's registration (and /controller if it held it):
     * the others see it leave at once, not after the session timeout. */
    cluster_destroy(b->cluster);
    b->cluster = NULL;
    producer_ids_close(b); /* its claim's completion cannot come any more */
    /* The fetchers stop before the logs they append to close. */
    replica_manager_destroy(b->replicas);
    b->replicas = NULL;
    /* The cleaner threads stop before the logs they clean close. */
    log_cleaner_stop(b);
    /* Finish what is in flight: parked fetches answer now, acks=all waits for this flush. */
    waiters_fire(&b->waiters);
    waiters_expire(&b->waiters, WAITER_ON_APPEND);
    /* Work still in progress (appends made in slices, topic creations): finished or
     * dropped, then synced. */
    for (int i = 0; i < broker_apis_count; i++)
        if (broker_apis[i].shutdown != NULL)
            broker_apis[i].shutdown(b);
    broker_commit_drain(b);
    waiters_fire(&b->waiters);
    syncer_stop(b->syncer);
    b->syncer = NULL;
    if (b->groups)
        group_coordinator_destroy(b->groups);
    txn_store_destroy(b->txns);
    b->txns = NULL;
    txn_verify_destroy(b->txn_verify); /* after the client: answers of asks only free them */
    b->txn_verify = NULL;
    net_destroy(b->net);
    listeners_free(b);
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        for (int32_t i = 0; i < t->npartitions; i++)
            partition_flush(t->partitions[i]);
    topics_checkpoint(b);
    topics_close_all(b);
    for (int i = 0; i < b->ndirs; i++)
        logdir_close(b->dirs[i], true);
    free(b->dirty);
    quotas_free(b->quotas);
    b->quotas = NULL;
    console_api_free(b);
    free(b->commit_parts);
    free(b->commit_results);
}

struct broker_listener_arg {
    const struct broker_config *cfg;
    const char *listener;
};

static const char *listener_prop(void *arg, const char *key, const char **key_used)
{
    const struct broker_listener_arg *a = arg;
    return broker_security_prop(a->cfg, a->listener, key, key_used);
}

/* cfg.listeners from listeners= and its companions, each with its transport: an SSL one gets
 * its TLS context now, so a bad key or certificate stops the start with the key named. */
static int listeners_setup(struct broker *b)
{
    char err[1024];
    if (broker_config_listeners(&b->cfg, err, sizeof(err)) != 0) {
        LOG_ERROR(server_who, "%s", err);
        return -1;
    }
    b->listener_info = calloc(BROKER_MAX_LISTENERS, sizeof(*b->listener_info));
    if (b->listener_info == NULL)
        return -1;
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        const struct broker_listener *l = &b->cfg.listeners[i];
        struct net_listener_info *li = &b->listener_info[i];
        li->name = l->name;
        li->security_protocol = l->security_protocol;
        li->transport = &transport_plain;
        if (strcmp(l->security_protocol, "SSL") != 0 &&
            strcmp(l->security_protocol, "SASL_SSL") != 0)
            continue;
        struct broker_listener_arg arg = {&b->cfg, l->name};
        b->tls[i] = tls_server_create(l->name, listener_prop, &arg, err, sizeof(err));
        if (b->tls[i] == NULL) {
            LOG_ERROR(server_who, "listener %s: %s", l->name, err);
            return -1;
        }
        li->transport = tls_server_transport(b->tls[i]);
    }
    if (sasl_setup(b, err, sizeof(err)) != 0) {
        LOG_ERROR(server_who, "%s", err);
        return -1;
    }
    /* The client side of the inter-broker listener: its ssl.* keys for TLS to the others,
     * its SASL mechanism and login. One node reaches no other broker: only checked there when
     * the inter-broker keys are set. */
    if (b->cfg.zookeeper_connect[0] == '\0' && b->cfg.inter_broker_listener_spec[0] == '\0' &&
        b->cfg.inter_broker_protocol_spec[0] == '\0')
        return 0;
    const struct broker_listener *ib = &b->cfg.listeners[b->cfg.inter_broker_listener];
    if (strcmp(ib->security_protocol, "SSL") == 0 ||
        strcmp(ib->security_protocol, "SASL_SSL") == 0) {
        struct broker_listener_arg arg = {&b->cfg, ib->name};
        b->tls_client = tls_client_create(ib->name, listener_prop, &arg, err, sizeof(err));
        if (b->tls_client == NULL) {
            LOG_ERROR(server_who, "inter-broker listener %s: %s", ib->name, err);
            return -1;
        }
    }
    if (sasl_client_setup(b, err, sizeof(err)) != 0) {
        LOG_ERROR(server_who, "%s", err);
        return -1;
    }
    return 0;
}

static void listeners_free(struct broker *b)
{
    sasl_client_teardown(b);
    tls_server_free(b->tls_client);
    b->tls_client = NULL;
    sasl_teardown(b);
    for (int i = 0; i < BROKER_MAX_LISTENERS; i++) {
        tls_server_free(b->tls[i]);
        b->tls[i] = NULL;
    }
    free(b->listener_info);
    b->listener_info = NULL;
}

void broker_advertised_for(const struct broker *b, struct conn *c, const char **host, int *port)
{
    int at = 0;
    const struct net_listener_info *li = c != NULL ? conn_session(c)->listener : NULL;
    for (int i = 0; li != NULL && b->listener_info != NULL && i < b->cfg.n_listeners; i++)
        if (li == &b->listener_info[i])
            at = i;
    if (b->cfg.n_listeners == 0) {
        *host = b->cfg.advertised_host;
        *port = b->cfg.advertised_port;
        return;
    }
    *host = b->cfg.listeners[at].advertised_host;
    *port = b->cfg.listeners[at].advertised_port;
}

void broker_peer_endpoint(struct request *r, const struct cluster_broker *cb, const char **host,
                          int32_t *port)
{
    *host = cb->host;
    *port = cb->port;
    const struct net_listener_info *li = r->conn != NULL ? conn_session(r->conn)->listener : NULL;
    char h[CLUSTER_HOST_MAX];
    int32_t p;
    if (li == NULL || li->name == NULL ||
        cluster_broker_endpoint(cb, li->name, h, sizeof(h), &p) != 0)
        return;
    char *copy = request_alloc(r, strlen(h) + 1);
    if (copy == NULL)
        return;
    memcpy(copy, h, strlen(h) + 1);
    *host = copy;
    *port = p;
}

struct broker *broker_open(const struct broker_config *cfg)
{
    struct broker *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->cfg = *cfg;
    b->started_ms = now_ms();
    b->open_us = mono_us();
    snprintf(server_who, sizeof(server_who), "KafkaServer id=%d", cfg->node_id);
    if (listeners_setup(b) != 0) {
        listeners_free(b);
        free(b);
        return NULL;
    }

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    keep_request_memory();
    /* The loop's table is indexed by fd number, and partition segments hold fds too (3 each):
     * size it to the process's fd limit so no socket (or listener) can fall outside it. */
    int max_fds = b->cfg.max_connections + 1024;
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        nofile.rlim_cur > (rlim_t)max_fds)
        max_fds = nofile.rlim_cur > (rlim_t)(1 << 22) ? 1 << 22 : (int)nofile.rlim_cur;
    b->loop = loop_create(max_fds);
    if (b->loop == NULL) {
        LOG_ERROR(server_who, "cannot set up the event loop: %s", strerror(errno));
        listeners_free(b);
        free(b);
        return NULL;
    }
    waiters_init(&b->waiters, b->loop);
    /* The HTTP listener first: /health/live answers and /health/ready says 503 while the
     * broker joins the cluster, loads its logs and registers (the loop turns meanwhile). */
    if (console_start(b) != 0) {
        listeners_free(b);
        loop_destroy(b->loop);
        free(b);
        return NULL;
    }
    /* On ZooKeeper, the cluster's id comes first (Kafka's order): the log dirs must agree. */
    if (b->cfg.zookeeper_connect[0] != '\0' && cluster_join(b) != 0) {
        console_stop(b);
        listeners_free(b);
        cluster_destroy(b->cluster);
        loop_destroy(b->loop);
        free(b);
        return NULL;
    }
    sasl_cluster_attach(b); /* the users' SCRAM credentials live in ZooKeeper */
    if (open_storage(b) != 0) {
        /* The cause is logged (a log dir, a config file, ZooKeeper's /config/brokers). */
        LOG_ERROR(server_who, "cannot open the log dirs and their configs; exiting");
        topics_close_all(b);
        for (int i = 0; i < b->ndirs; i++)
            logdir_close(b->dirs[i], false);
        console_stop(b);
        listeners_free(b);
        cluster_destroy(b->cluster);
        loop_destroy(b->loop);
        free(b);
        return NULL;
    }
    /* Before the listener: no InitProducerId is answered without it (on ZooKeeper, the first
     * block is claimed now, as Kafka's ZkProducerIdManager does at its creation). */
    if (producer_ids_open(b) != 0)
        return NULL;
    /* queued.max.request.bytes: Kafka's default -1 leaves request memory unbounded; here it
     * means QUEUED_MAX_REQUEST_BYTES_DEFAULT, or socket.request.max.bytes when larger. */
    int64_t queued = b->cfg.queued_max_request_bytes;
    if (queued < 0)
        queued = b->cfg.socket_request_max_bytes > QUEUED_MAX_REQUEST_BYTES_DEFAULT
                     ? b->cfg.socket_request_max_bytes
                     : QUEUED_MAX_REQUEST_BYTES_DEFAULT;
    struct net_limits lim = {
        .max_frame_bytes = (size_t)b->cfg.socket_request_max_bytes,
        .max_output_bytes = 64u << 20,
        .max_connections = b->cfg.max_connections,
        .max_connections_per_ip = b->cfg.max_connections_per_ip,
        .max_idle_ms = b->cfg.connections_max_idle_ms,
        .frame_timeout_ms = b->cfg.request_read_timeout_ms,
        .max_reading_bytes = (size_t)queued,
        .reclaim_idle_ms = NET_RECLAIM_IDLE_MS,
    };
    b->net = b->loop != NULL ? net_create(b->loop, &lim, on_frame, on_close, b) : NULL;
    if (b->loop == NULL || b->net == NULL) {
        LOG_ERROR(server_who, "cannot set up the event loop: %s", strerror(errno));
        return NULL;
    }
    net_set_admit(b->net, broker_conn_admit, b); /* KIP-612's connection rates */
    if (set_ip_limits(b) != 0)
        return NULL;
    b->groups = group_coordinator_create(b);
    /* After the group coordinator: a transaction left prepared writes its markers at load,
     * __consumer_offsets' among them. */
    b->txns = txn_store_create(b);
    if (b->txns == NULL) {
        LOG_ERROR(server_who, "cannot create the transaction coordinator");
        return NULL;
    }
    b->txn_verify = txn_verify_create(b);
    if (b->txn_verify == NULL) {
        LOG_ERROR(server_who, "cannot create the transaction verification");
        return NULL;
    }
    /* Bound now (the registration names a port that is ours), accepting once started: as
     * Kafka, no request is answered by a broker that is still registering. */
    net_accept_hold(b->net, true);
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        const struct broker_listener *l = &b->cfg.listeners[i];
        if (net_listen_with(b->net, l->host, l->port, &b->listener_info[i]) != 0) {
            LOG_ERROR(server_who, "cannot listen on %s://%s:%d: %s", l->name, l->host, l->port,
                      strerror(errno));
            return NULL;
        }
    }
    loop_set_before_sleep(b->loop, before_sleep, b);
    b->syncer = syncer_start(b->loop, commit_done, b);
    if (b->syncer == NULL)
        LOG_WARN(server_who, "no sync thread (%s): group commits fsync on the loop thread",
                 strerror(errno));
    loop_timer_add(b->loop, mono_ms() + b->cfg.log_retention_check_interval_ms, periodic_retention, b);
    loop_timer_add(b->loop, mono_ms() + b->cfg.log_flush_scheduler_interval_ms, periodic_flush, b);
    loop_timer_add(b->loop, mono_ms() + b->cfg.offset_checkpoint_interval_ms, periodic_checkpoint, b);
    loop_timer_add(b->loop, mono_ms() + IDLE_FD_SWEEP_MS, periodic_idle_fds, b);
    if (log_cleaner_start(b) != 0)
        LOG_ERROR(server_who, "the log cleaner did not start: compacted topics are not cleaned");
    /* The replica manager before the registration: the cluster's view arrives with it. */
    if (b->cluster != NULL && (b->replicas = replica_manager_create(b)) == NULL)
        return NULL;
    /* Registered once it can serve, as Kafka registers after its socket server is up. */
    if (b->cluster != NULL && cluster_await_registration(b->cluster) != 0) {
        LOG_ERROR(server_who, "cannot register in ZooKeeper; exiting");
        cluster_destroy(b->cluster);
        b->cluster = NULL;
        return NULL;
    }
    /* The ACLs and the users' credentials before the first request (Kafka's authorizer and
     * credential cache load before the socket server serves). */
    if (b->cluster != NULL && cluster_await_security(b->cluster) != 0) {
        LOG_ERROR(server_who, "cannot load the ACLs and user configs from ZooKeeper; exiting");
        cluster_destroy(b->cluster);
        b->cluster = NULL;
        return NULL;
    }
    net_accept_hold(b->net, false);
    b->accepting = true;
    LOG_INFO(server_who, "Awaiting socket connections on %s:%d (advertised %s:%d), cluster id %s",
             b->cfg.listener_host, b->cfg.listener_port, b->cfg.advertised_host,
             b->cfg.advertised_port, b->cluster_id);
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        const struct broker_listener *l = &b->cfg.listeners[i];
        if (l->port == b->cfg.listener_port && strcmp(l->host, b->cfg.listener_host) == 0)
            continue; /* the line above */
        LOG_INFO(server_who, "Awaiting socket connections on %s://%s:%d (%s, advertised %s:%d)",
                 l->name, l->host, l->port, l->security_protocol, l->advertised_host,
                 l->advertised_port);
    }
    LOG_INFO(server_who, "Startup took %.1f ms", (double)(mono_us() - b->open_us) / 1000.0);
    LOG_INFO(server_who, "started (kafka.server.KafkaServer)");
    return b;
}

struct loop *broker_loop(struct broker *b) { return b->loop; }
struct net *broker_net(struct broker *b) { return b->net; }

void broker_close(struct broker *b)
{
    shutdown_broker(b);
    loop_destroy(b->loop);
    LOG_INFO(server_who, "shut down completed (kafka.server.KafkaServer)");
    free(b);
}

int broker_serve(struct broker_config *cfg)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        LOG_ERROR("KafkaServer", "cannot take SIGTERM/SIGINT through a signalfd: %s",
                  strerror(errno));
        return 1;
    }
    struct broker *b = broker_open(cfg);
    if (b == NULL) {
        close(sfd);
        return 1;
    }
    loop_set(b->loop, sfd, LOOP_READ, on_signal, b);
    loop_run(b->loop);
    loop_del(b->loop, sfd);
    close(sfd);
    broker_close(b);
    return 0;
}
