/* replica_fetcher: see replica_fetcher.h. A partition is truncating (its log may hold a tail
 * the leader does not have: OffsetForLeaderEpoch first) or fetching; either may be delayed
 * (replica.fetch.backoff.ms after an error). Partitions are kept sorted by (topic, partition)
 * so that requests group them by topic and answers find them by binary search. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/log_cleaner.h"
#include "broker/replica_fetcher.h"
#include "broker/replication_quota.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "net/client.h"
#include "partition/partition_follow.h"
#include "proto/messages.h"

/* Memory for one request and its encoded form (a Fetch names every partition once). */
#define FETCHER_ARENA_MAX (64u << 20)

struct fetch_part {
    char topic[TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t partition;
    int32_t leader_epoch;
    bool truncating;           /* OffsetForLeaderEpoch before the next fetch */
    bool marked;               /* the replica manager's sweep */
    bool in_flight;            /* in the request in flight */
    int64_t delayed_until;     /* mono ms; not requested before */
    int64_t sent_offset;       /* the fetch offset sent (the log end then) */
    bool answered;             /* a Fetch answered without error in this leader epoch */
    int quick_retries;         /* replica_fetcher_retry_ms's, in this leader epoch */
    int64_t lag;               /* the leader's high watermark minus our log end after the last
                                * fetch that appended (or the first); -1: none yet */
    bool throttled;            /* left out of the next Fetch (KIP-73, fetcher_kick) */
};

enum call_kind { CALL_EPOCHS, CALL_FETCH };

/* A request in flight; outlives its fetcher (f = NULL) until the client answers it. */
struct fetcher_call {
    struct replica_fetcher *f;
    enum call_kind kind;
    struct arena arena;        /* the request body, borrowed by the client until the answer */
    void *body;
};

struct replica_fetcher {
    struct broker *b;
    struct client_conn *conn;
    int32_t leader_id;
    int fetcher_id;
    char host[256];
    int port;
    char who[96];
    struct fetch_part *parts;  /* sorted by (topic, partition) */
    int nparts, cap;
    struct fetcher_call *call; /* at most one in flight */
    uint64_t timer;            /* wakes the fetcher when a delay ends */
    int64_t timer_at;
};

static void fetcher_kick(struct replica_fetcher *f);

/* kerr_name, and the client's NETWORK_EXCEPTION (not in common/errors.h). */
static const char *err_name(int e)
{
    return e == CLIENT_ERR_NETWORK ? "NETWORK_EXCEPTION" : kerr_name(e);
}

int replica_fetcher_id(const char *topic, int32_t partition, int num_fetchers)
{
    if (num_fetchers <= 1)
        return 0;
    uint32_t h = 0; /* Java's String.hashCode (topic names are ASCII) */
    for (const unsigned char *s = (const unsigned char *)topic; *s; s++)
        h = 31u * h + *s;
    int32_t v = (int32_t)(31u * h + (uint32_t)partition);
    int64_t a = v == INT32_MIN ? 0 : (v < 0 ? -(int64_t)v : v); /* Kafka's Utils.abs */
    return (int)(a % num_fetchers);
}

/* ---- the partition table ---- */

static int part_cmp(const char *topic, int32_t partition, const struct fetch_part *fp)
{
    int c = strcmp(topic, fp->topic);
    if (c != 0)
        return c;
    return partition < fp->partition ? -1 : partition > fp->partition;
}

/* Index of (topic, partition), or -(insertion point) - 1. */
static int part_search(const struct replica_fetcher *f, const char *topic, int32_t partition)
{
    int lo = 0, hi = f->nparts - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = part_cmp(topic, partition, &f->parts[mid]);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -lo - 1;
}

static struct fetch_part *part_find(struct replica_fetcher *f, const char *topic, int32_t partition)
{
    int i = part_search(f, topic, partition);
    return i >= 0 ? &f->parts[i] : NULL;
}

/* The local replica of fp, or NULL when the topic is not (or no longer, or not yet) open here
 * with the cluster's id. */
static struct partition *part_local(struct replica_fetcher *f, const struct fetch_part *fp,
                                    struct topic **out)
{
    struct topic *t = topic_find(f->b, fp->topic);
    if (t == NULL || t->creating > 0 || fp->partition >= t->npartitions ||
        memcmp(t->id.b, fp->id, 16) != 0)
        return NULL;
    if (out != NULL)
        *out = t;
    return t->partitions[fp->partition];
}

static void part_delay(struct replica_fetcher *f, struct fetch_part *fp)
{
    fp->delayed_until = mono_ms() + f->b->cfg.replica_fetch_backoff_ms;
}

int replica_fetcher_retry_ms(int error, bool answered, int quick_retries, int backoff_ms)
{
    GREGOR_ASSERT(quick_retries >= 0 && quick_retries <= REPLICA_FETCHER_QUICK_RETRIES);
    bool leader_behind = error == KERR_NOT_LEADER_OR_FOLLOWER || error == KERR_UNKNOWN_LEADER_EPOCH;
    if (leader_behind && !answered && quick_retries < REPLICA_FETCHER_QUICK_RETRIES &&
        backoff_ms > REPLICA_FETCHER_QUICK_RETRY_MS)
        return REPLICA_FETCHER_QUICK_RETRY_MS;
    return backoff_ms;
}

/* After the leader's error answer for fp (see replica_fetcher_retry_ms); returns the wait. */
static int part_refused(struct replica_fetcher *f, struct fetch_part *fp, int error)
{
    int backoff = f->b->cfg.replica_fetch_backoff_ms;
    int ms = replica_fetcher_retry_ms(error, fp->answered, fp->quick_retries, backoff);
    if (ms < backoff)
        fp->quick_retries++;
    fp->delayed_until = mono_ms() + ms;
    return ms;
}

bool replica_fetcher_is(const struct replica_fetcher *f, int32_t leader_id, int fetcher_id,
                        const char *host, int port)
{
    return f->leader_id == leader_id && f->fetcher_id == fetcher_id && f->port == port &&
           strcmp(f->host, host) == 0;
}

void replica_fetcher_unmark_all(struct replica_fetcher *f)
{
    for (int i = 0; i < f->nparts; i++)
        f->parts[i].marked = false;
}

bool replica_fetcher_keep(struct replica_fetcher *f, const char *topic, const uint8_t id[16],
                          int32_t partition, int32_t leader_epoch)
{
    struct fetch_part *fp = part_find(f, topic, partition);
    if (fp == NULL || fp->leader_epoch != leader_epoch || memcmp(fp->id, id, 16) != 0)
        return false;
    fp->marked = true;
    return true;
}

void replica_fetcher_drop_unmarked(struct replica_fetcher *f)
{
    int kept = 0;
    for (int i = 0; i < f->nparts; i++) {
        if (f->parts[i].marked) {
            f->parts[kept++] = f->parts[i];
            continue;
        }
        LOG_INFO(f->who, "Removed partition %s-%d (leader epoch %d) from the fetcher",
                 f->parts[i].topic, f->parts[i].partition, f->parts[i].leader_epoch);
    }
    f->nparts = kept;
}

int replica_fetcher_add(struct replica_fetcher *f, const char *topic, const uint8_t id[16],
                        int32_t partition, int32_t leader_epoch)
{
    GREGOR_ASSERT(strlen(topic) <= TOPIC_NAME_MAX);
    int i = part_search(f, topic, partition);
    if (i < 0) {
        if (f->nparts == f->cap) {
            int cap = f->cap ? f->cap * 2 : 16;
            struct fetch_part *np = realloc(f->parts, (size_t)cap * sizeof(*np));
            if (np == NULL)
                return -1;
            f->parts = np;
            f->cap = cap;
        }
        i = -i - 1;
        memmove(&f->parts[i + 1], &f->parts[i], (size_t)(f->nparts - i) * sizeof(f->parts[0]));
        f->nparts++;
    }
    struct fetch_part *fp = &f->parts[i];
    memset(fp, 0, sizeof(*fp));
    snprintf(fp->topic, sizeof(fp->topic), "%s", topic);
    memcpy(fp->id, id, 16);
    fp->partition = partition;
    fp->leader_epoch = leader_epoch;
    fp->truncating = true;
    fp->marked = true;
    fp->lag = -1;
    LOG_INFO(f->who, "Added partition %s-%d to the fetcher of broker %d at %s:%d (leader epoch %d)",
             topic, partition, f->leader_id, f->host, f->port, leader_epoch);
    fetcher_kick(f);
    return 0;
}

int replica_fetcher_count(const struct replica_fetcher *f) { return f->nparts; }

/* ---- truncation (KIP-101, KIP-279) ---- */

/* Kafka's AbstractFetcherThread.getOffsetTruncationState for the leader's (epoch, end offset)
 * of the follower's latest epoch (or a Fetch's diverging epoch), then the truncation. Returns
 * true when the log now agrees with the leader's below its end; false when another round of
 * OffsetForLeaderEpoch must ask about an older epoch. */
static bool truncate_by_epoch(struct replica_fetcher *f, struct fetch_part *fp, struct partition *p,
                              int32_t leader_epoch, int64_t leader_end)
{
    int64_t end = partition_log_end(p), to;
    bool done = true;
    int32_t latest = partition_latest_epoch(p);
    if (leader_end < 0) {
        to = partition_high_watermark(p); /* the leader has no such epoch: Kafka's fallback */
    } else if (leader_epoch < 0) {
        to = leader_end < end ? leader_end : end;
    } else {
        int32_t own_epoch;
        int64_t own_end;
        partition_epoch_end_offset(p, leader_epoch, &own_epoch, &own_end);
        if (own_epoch < 0) {
            to = leader_end < end ? leader_end : end;
        } else if (own_epoch != leader_epoch) {
            to = own_end < end ? own_end : end; /* ask again about the epoch before */
            done = false;
        } else {
            to = own_end < leader_end ? own_end : leader_end;
            to = to < end ? to : end;
        }
    }
    if (to < partition_log_start(p)) {
        LOG_WARN(f->who, "Partition %s-%d: truncation offset %" PRId64 " is below the log start "
                 "%" PRId64 ": truncating to the log start", fp->topic, fp->partition, to,
                 partition_log_start(p));
        to = partition_log_start(p);
    }
    if (to < end)
        LOG_INFO(f->who, "Truncating partition %s-%d with TruncationState(offset=%" PRId64
                 ", completed=%s) due to leader epoch and offset EpochEndOffset(leaderEpoch=%d, "
                 "endOffset=%" PRId64 ")", fp->topic, fp->partition, to, done ? "true" : "false",
                 leader_epoch, leader_end);
    log_cleaner_truncated(f->b, p, to);
    int e = partition_truncate_to(p, to);
    if (e != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "Partition %s-%d: truncation to %" PRId64 " failed: %s",
                    fp->topic, fp->partition, to, kerr_name(e));
        part_delay(f, fp);
        return false;
    }
    GREGOR_ASSERT(partition_log_end(p) <= to || to >= end);
    if (!done && partition_latest_epoch(p) == latest)
        done = true; /* nothing older to ask about: the log agrees up to here */
    return done;
}

/* Kafka's truncateFullyAndStartAt: the log restarts empty at the leader's log start. */
static void restart_at(struct replica_fetcher *f, struct fetch_part *fp, struct topic *t,
                       struct partition *p, int64_t leader_start)
{
    LOG_INFO(f->who, "Partition %s-%d: truncating fully (log %" PRId64 "..%" PRId64 ") and "
             "starting at offset %" PRId64, fp->topic, fp->partition, partition_log_start(p),
             partition_log_end(p), leader_start);
    broker_commit_drain(f->b); /* no other thread is flushing the log while it is reopened */
    log_cleaner_abort(f->b, p, true); /* nor cleaning it */
    int e = partition_truncate_fully(p, t->name, &t->cfg, leader_start);
    if (e != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "Partition %s-%d: full truncation failed: %s",
                    fp->topic, fp->partition, kerr_name(e));
        part_delay(f, fp);
    }
}

/* ---- OffsetForLeaderEpoch ---- */

static struct fetcher_call *call_new(struct replica_fetcher *f, enum call_kind kind)
{
    struct fetcher_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->f = f;
    c->kind = kind;
    arena_init(&c->arena, FETCHER_ARENA_MAX);
    return c;
}

static void call_free(struct fetcher_call *c)
{
    arena_reset(&c->arena);
    free(c);
}

/* A topic name owned by the call, never borrowed from f->parts: the client encodes the body
 * once its connection is ready and the answer (by topic id, Fetch v13+) is matched against it
 * later, while replica_fetcher_add / _remove grow (realloc) and shift that array. */
static bool call_topic_name(struct fetcher_call *c, const char *topic, struct kstr *out)
{
    size_t n = strlen(topic);
    GREGOR_ASSERT(n <= TOPIC_NAME_MAX);
    char *copy = arena_strndup(&c->arena, topic, n);
    if (copy == NULL)
        return false;
    *out = (struct kstr){copy, (int32_t)n};
    return true;
}

static void on_response(void *arg, const struct client_response *resp);

/* Sends c's body; on a refusal every partition in it waits the back-off. */
static void call_send(struct replica_fetcher *f, struct fetcher_call *c, int16_t api_key)
{
    struct client_request req = {
        .api_key = api_key,
        .max_version = -1,
        .body = c->body,
        .timeout_ms = f->b->cfg.replica_socket_timeout_ms,
    };
    f->call = c;
    if (client_send(f->conn, &req, on_response, c) == 0)
        return;
    LOG_LIMITED(LOG_LEVEL_WARN, f->who, "cannot send a request to broker %d (queue full)",
                f->leader_id);
    f->call = NULL;
    for (int i = 0; i < f->nparts; i++)
        if (f->parts[i].in_flight) {
            f->parts[i].in_flight = false;
            part_delay(f, &f->parts[i]);
        }
    call_free(c);
}

/* The requests' topics: consecutive partitions of one topic make one entry. */
static int count_topics(struct replica_fetcher *f, bool truncating, int64_t now)
{
    int n = 0;
    const char *last = NULL;
    for (int i = 0; i < f->nparts; i++) {
        struct fetch_part *fp = &f->parts[i];
        if (fp->truncating != truncating || fp->delayed_until > now)
            continue;
        if (last == NULL || strcmp(last, fp->topic) != 0)
            n++;
        last = fp->topic;
    }
    return n;
}

static void send_epochs(struct replica_fetcher *f, int64_t now)
{
    int ntopics = count_topics(f, true, now);
    struct fetcher_call *c = call_new(f, CALL_EPOCHS);
    struct offset_for_leader_epoch_request *req = c ? arena_alloc(&c->arena, sizeof(*req)) : NULL;
    struct offset_for_leader_epoch_request_offset_for_leader_topic *ts =
        req ? arena_alloc(&c->arena, (size_t)ntopics * sizeof(*ts)) : NULL;
    struct offset_for_leader_epoch_request_offset_for_leader_partition *ps =
        ts ? arena_alloc(&c->arena, (size_t)f->nparts * sizeof(*ps)) : NULL;
    if (ps == NULL) {
        if (c != NULL)
            call_free(c);
        LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "out of memory building OffsetForLeaderEpoch");
        return;
    }
    offset_for_leader_epoch_request_set_defaults(req);
    req->replica_id = f->b->cfg.node_id;
    req->topics = ts;
    int nt = -1, np = 0;
    const char *last = NULL;
    for (int i = 0; i < f->nparts; i++) {
        struct fetch_part *fp = &f->parts[i];
        if (!fp->truncating || fp->delayed_until > now)
            continue;
        struct partition *p = part_local(f, fp, NULL);
        if (p == NULL) {
            part_delay(f, fp);
            continue;
        }
        int32_t latest = partition_latest_epoch(p);
        if (latest < 0) {
            /* No epochs known (Kafka's partitionsWithoutEpochs): the high watermark. */
            fp->truncating = !truncate_by_epoch(f, fp, p, -1, -1);
            continue;
        }
        if (last == NULL || strcmp(last, fp->topic) != 0) {
            struct kstr name;
            if (!call_topic_name(c, fp->topic, &name))
                break; /* the arena's bound: the rest asks next time */
            nt++;
            GREGOR_ASSERT(nt < ntopics);
            offset_for_leader_epoch_request_offset_for_leader_topic_set_defaults(&ts[nt]);
            ts[nt].topic = name;
            ts[nt].partitions = &ps[np];
        }
        last = fp->topic;
        offset_for_leader_epoch_request_offset_for_leader_partition_set_defaults(&ps[np]);
        ps[np].partition = fp->partition;
        ps[np].current_leader_epoch = fp->leader_epoch;
        ps[np].leader_epoch = latest;
        ts[nt].n_partitions++;
        np++;
        fp->in_flight = true;
    }
    req->n_topics = nt + 1;
    if (np == 0) {
        call_free(c);
        fetcher_kick(f); /* those without epochs may fetch now */
        return;
    }
    c->body = req;
    call_send(f, c, 23);
}

static void epochs_answered(struct replica_fetcher *f, const struct offset_for_leader_epoch_response *resp)
{
    for (int32_t i = 0; i < resp->n_topics; i++) {
        const struct offset_for_leader_epoch_response_offset_for_leader_topic_result *tr = &resp->topics[i];
        char name[TOPIC_NAME_MAX + 1];
        if (tr->topic.ptr == NULL || tr->topic.len <= 0 || tr->topic.len > TOPIC_NAME_MAX)
            continue;
        memcpy(name, tr->topic.ptr, (size_t)tr->topic.len);
        name[tr->topic.len] = '\0';
        for (int32_t j = 0; j < tr->n_partitions; j++) {
            const struct offset_for_leader_epoch_response_epoch_end_offset *po = &tr->partitions[j];
            struct fetch_part *fp = part_find(f, name, po->partition);
            if (fp == NULL || !fp->in_flight || !fp->truncating)
                continue;
            fp->in_flight = false;
            struct partition *p = part_local(f, fp, NULL);
            if (p == NULL) {
                part_delay(f, fp);
                continue;
            }
            if (po->error_code != KERR_NONE) {
                int ms = part_refused(f, fp, po->error_code);
                LOG_LIMITED(LOG_LEVEL_WARN, f->who, "OffsetForLeaderEpoch of %s-%d from broker %d: "
                            "%s; retrying in %d ms", fp->topic, fp->partition, f->leader_id,
                            kerr_name(po->error_code), ms);
                continue;
            }
            fp->truncating = !truncate_by_epoch(f, fp, p, po->leader_epoch, po->end_offset);
        }
    }
}

/* ---- Fetch ---- */

static void send_fetch(struct replica_fetcher *f, int64_t now)
{
    struct broker *b = f->b;
    int ntopics = count_topics(f, false, now);
    struct fetcher_call *c = call_new(f, CALL_FETCH);
    struct fetch_request *req = c ? arena_alloc(&c->arena, sizeof(*req)) : NULL;
    struct fetch_request_fetch_topic *ts = req ? arena_alloc(&c->arena, (size_t)ntopics * sizeof(*ts)) : NULL;
    struct fetch_request_fetch_partition *ps = ts ? arena_alloc(&c->arena, (size_t)f->nparts * sizeof(*ps)) : NULL;
    if (ps == NULL) {
        if (c != NULL)
            call_free(c);
        LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "out of memory building a Fetch");
        return;
    }
    fetch_request_set_defaults(req);
    req->replica_id = b->cfg.node_id;           /* v0-14 */
    req->replica_state.replica_id = b->cfg.node_id; /* v15+ (no broker epoch on ZooKeeper: -1) */
    req->replica_state.replica_epoch = -1;
    req->max_wait_ms = b->cfg.replica_fetch_wait_max_ms > 0 ? b->cfg.replica_fetch_wait_max_ms : 0;
    req->min_bytes = b->cfg.replica_fetch_min_bytes;
    req->max_bytes = b->cfg.replica_fetch_response_max_bytes;
    req->isolation_level = 0;
    req->session_id = 0;    /* a full fetch each time (no incremental session) */
    req->session_epoch = -1;
    req->topics = ts;
    int nt = -1, np = 0;
    const char *last = NULL;
    for (int i = 0; i < f->nparts; i++) {
        struct fetch_part *fp = &f->parts[i];
        if (fp->truncating || fp->delayed_until > now || fp->throttled)
            continue;
        struct partition *p = part_local(f, fp, NULL);
        if (p == NULL) {
            part_delay(f, fp);
            continue;
        }
        if (last == NULL || strcmp(last, fp->topic) != 0) {
            struct kstr name;
            if (!call_topic_name(c, fp->topic, &name))
                break; /* the arena's bound: the rest fetches next time */
            nt++;
            GREGOR_ASSERT(nt < ntopics);
            fetch_request_fetch_topic_set_defaults(&ts[nt]);
            ts[nt].topic = name;
            memcpy(ts[nt].topic_id.b, fp->id, 16);
            ts[nt].partitions = &ps[np];
        }
        last = fp->topic;
        fetch_request_fetch_partition_set_defaults(&ps[np]);
        ps[np].partition = fp->partition;
        ps[np].current_leader_epoch = fp->leader_epoch;
        ps[np].fetch_offset = partition_log_end(p);
        ps[np].last_fetched_epoch = partition_latest_epoch(p);
        ps[np].log_start_offset = partition_log_start(p);
        ps[np].partition_max_bytes = b->cfg.replica_fetch_max_bytes;
        ts[nt].n_partitions++;
        np++;
        fp->in_flight = true;
        fp->sent_offset = ps[np - 1].fetch_offset;
    }
    req->n_topics = nt + 1;
    if (np == 0) {
        call_free(c);
        fetcher_kick(f);
        return;
    }
    c->body = req;
    call_send(f, c, 1);
}

/* Appends the leader's batches as they are, from the log end on; stops at a partial last
 * batch (the leader cut it at the byte limit) or once *budget bytes were appended (the first
 * batch goes whatever its size). Returns the bytes appended or -1 on an error (logged). */
static int64_t append_batches(struct replica_fetcher *f, struct fetch_part *fp, struct topic *t,
                              struct partition *p, const uint8_t *data, size_t len, int64_t *budget)
{
    size_t off = 0;
    int64_t appended = 0;
    while (len - off >= BATCH_HEADER_SIZE && (appended == 0 || *budget > 0)) {
        struct batch_header h;
        batch_header_decode(data + off, &h);
        int64_t size = batch_total_size(&h);
        if (size < BATCH_HEADER_SIZE || h.magic != BATCH_MAGIC_V2) {
            LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "Partition %s-%d: the leader sent a batch at "
                        "offset %" PRId64 " that is not a v2 record batch (magic %d, size %" PRId64 ")",
                        fp->topic, fp->partition, h.base_offset, h.magic, size);
            return -1;
        }
        if ((uint64_t)size > len - off)
            break;
        int64_t end = partition_log_end(p);
        if (h.base_offset + h.last_offset_delta < end) { /* below the log end: already here */
            off += (size_t)size;
            continue;
        }
        if (h.base_offset < end && end == partition_log_start(p)) {
            /* An empty log that starts inside the leader's first batch (its log start moved
             * into the batch): as Kafka's UnexpectedAppendOffsetException handling, the log
             * restarts at the batch's base offset. */
            restart_at(f, fp, t, p, h.base_offset);
            if (partition_log_end(p) != h.base_offset)
                return -1;
            end = h.base_offset;
        }
        struct log_append_info info;
        int e = partition_append_as_follower(p, data + off, (size_t)size, &info);
        if (e != KERR_NONE) {
            LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "Partition %s-%d: appending the leader's batch at "
                        "offset %" PRId64 " (log end %" PRId64 ") failed: %s", fp->topic,
                        fp->partition, h.base_offset, end, kerr_name(e));
            return -1;
        }
        GREGOR_ASSERT(info.base_offset == h.base_offset && partition_log_end(p) > end);
        off += (size_t)size;
        appended += size;
        f->b->metrics.replication_bytes_in += (uint64_t)size; /* ReplicationBytesIn */
        *budget -= size;
    }
    return appended;
}

static void fetched_partition(struct replica_fetcher *f, struct fetch_part *fp,
                              const struct fetch_response_partition_data *pd, int64_t *budget)
{
    struct topic *t = NULL;
    struct partition *p = part_local(f, fp, &t);
    if (p == NULL) {
        part_delay(f, fp);
        return;
    }
    if (pd->error_code == KERR_OFFSET_OUT_OF_RANGE) {
        /* Kafka's handleOutOfRangeError: past the leader's end, truncate to it; below its
         * start, start over there. The leader's marks come with the error (-1 when not). */
        int64_t end = partition_log_end(p);
        if (pd->high_watermark >= 0 && pd->high_watermark < end) {
            LOG_INFO(f->who, "Partition %s-%d: fetch offset %" PRId64 " is past the leader's; "
                     "truncating to its high watermark %" PRId64, fp->topic, fp->partition, end,
                     pd->high_watermark);
            truncate_by_epoch(f, fp, p, -1, pd->high_watermark);
        } else if (pd->log_start_offset > end) {
            restart_at(f, fp, t, p, pd->log_start_offset);
        } else {
            part_delay(f, fp);
        }
        return;
    }
    if (pd->error_code != KERR_NONE) {
        /* NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_*:
         * the cluster view is about to change; until then, every back-off. */
        int ms = part_refused(f, fp, pd->error_code);
        LOG_LIMITED(LOG_LEVEL_WARN, f->who, "Fetch of %s-%d from broker %d: %s; retrying in %d ms",
                    fp->topic, fp->partition, f->leader_id, kerr_name(pd->error_code), ms);
        return;
    }
    fp->answered = true;
    if (pd->diverging_epoch.epoch >= 0 && pd->diverging_epoch.end_offset >= 0) {
        /* KIP-595's truncation on fetch: the leader says where our last epoch ends. */
        fp->truncating = !truncate_by_epoch(f, fp, p, pd->diverging_epoch.epoch,
                                            pd->diverging_epoch.end_offset);
        return;
    }
    if (partition_log_end(p) != fp->sent_offset)
        return; /* truncated meanwhile: this data is for another offset */
    int64_t n = 0;
    if (pd->records.ptr != NULL && pd->records.len > 0)
        n = append_batches(f, fp, t, p, pd->records.ptr, (size_t)pd->records.len, budget);
    if (n < 0) {
        part_delay(f, fp);
        return;
    }
    if (n > 0)
        broker_mark_dirty(f->b, p);
    /* Kafka's fetch state lag, moved by a fetch that appended (or the first): the replica is
     * in sync, never throttled, once it holds the leader's high watermark. */
    if (n > 0 || fp->lag < 0) {
        int64_t lag = pd->high_watermark - partition_log_end(p);
        fp->lag = lag > 0 ? lag : 0;
    }
    /* In sync or not, a throttled partition's bytes count (ReplicaFetcherThread). */
    if (pd->records.len > 0 && replication_quota_throttled(f->b, t, fp->partition, false))
        replication_quota_record(&f->b->quota_follower, pd->records.len, mono_ms());
    int64_t hw_before = partition_high_watermark(p);
    int e = partition_follow_leader_marks(p, pd->high_watermark, pd->log_start_offset);
    if (partition_high_watermark(p) != hw_before)
        f->b->appended = true; /* consumers parked on this follower (KIP-392) look again */
    if (e != KERR_NONE)
        LOG_LIMITED(LOG_LEVEL_WARN, f->who, "Partition %s-%d: following the leader's log start %"
                    PRId64 " failed: %s", fp->topic, fp->partition, pd->log_start_offset, kerr_name(e));
}

/* The topic's name in an answer: by name (v0-12) or by the id the request sent (v13+). */
static bool answer_topic_name(const struct fetch_request *req,
                              const struct fetch_response_fetchable_topic_response *tr,
                              char *name)
{
    if (tr->topic.ptr != NULL && tr->topic.len > 0) {
        if (tr->topic.len > TOPIC_NAME_MAX)
            return false;
        memcpy(name, tr->topic.ptr, (size_t)tr->topic.len);
        name[tr->topic.len] = '\0';
        return true;
    }
    for (int32_t i = 0; i < req->n_topics; i++)
        if (memcmp(req->topics[i].topic_id.b, tr->topic_id.b, 16) == 0) {
            memcpy(name, req->topics[i].topic.ptr, (size_t)req->topics[i].topic.len);
            name[req->topics[i].topic.len] = '\0';
            return true;
        }
    return false;
}

static void fetch_answered(struct replica_fetcher *f, const struct fetch_request *req,
                           const struct fetch_response *resp)
{
    if (resp->error_code != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_WARN, f->who, "Fetch from broker %d: %s", f->leader_id,
                    kerr_name(resp->error_code));
        return; /* the caller delays what was in flight */
    }
    int64_t budget = f->b->cfg.replica_fetch_response_max_bytes;
    for (int32_t i = 0; i < resp->n_responses; i++) {
        const struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        char name[TOPIC_NAME_MAX + 1];
        if (!answer_topic_name(req, tr, name))
            continue;
        for (int32_t j = 0; j < tr->n_partitions; j++) {
            struct fetch_part *fp = part_find(f, name, tr->partitions[j].partition_index);
            if (fp == NULL || !fp->in_flight || fp->truncating)
                continue;
            fp->in_flight = false;
            fetched_partition(f, fp, &tr->partitions[j], &budget);
        }
    }
}

static void on_response(void *arg, const struct client_response *resp)
{
    struct fetcher_call *c = arg;
    struct replica_fetcher *f = c->f;
    if (f == NULL) { /* the fetcher went meanwhile */
        call_free(c);
        return;
    }
    GREGOR_ASSERT(f->call == c);
    f->call = NULL;
    if (resp->error != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_WARN, f->who, "Error in response for fetch request to broker %d "
                    "at %s:%d: %s (%s)", f->leader_id, f->host, f->port, err_name(resp->error),
                    resp->reason ? resp->reason : "");
    } else if (c->kind == CALL_EPOCHS) {
        epochs_answered(f, resp->body);
    } else {
        fetch_answered(f, c->body, resp->body);
    }
    for (int i = 0; i < f->nparts; i++)
        if (f->parts[i].in_flight) { /* not answered: wait before asking again */
            f->parts[i].in_flight = false;
            part_delay(f, &f->parts[i]);
        }
    call_free(c);
    fetcher_kick(f);
}

/* ---- scheduling ---- */

/* RemoteLeaderEndPoint.shouldFollowerThrottle: a replica not in sync, listed in the topic's
 * follower.replication.throttled.replicas for this broker, while the follower quota is over. */
static bool fetch_throttled(struct replica_fetcher *f, const struct fetch_part *fp, int64_t now)
{
    struct topic *t = NULL;
    if (fp->lag == 0 || part_local(f, fp, &t) == NULL)
        return false;
    return replication_quota_throttled(f->b, t, fp->partition, false) &&
           replication_quota_over(f->b, false, now);
}

static void fetcher_timer(struct broker *b, void *arg)
{
    (void)b;
    struct replica_fetcher *f = arg;
    f->timer = 0;
    fetcher_kick(f);
}

/* Sends the next request when none is in flight: truncations first, then a Fetch; with every
 * partition delayed, a timer for the first to be ready. A broker in its controlled shutdown
 * fetches no more (Kafka's controller sends it StopReplica): else the leader a partition moved
 * to adds it back to the ISR before it exits, acks=all waits for it and its exit costs the
 * partition one more election. */
static void fetcher_kick(struct replica_fetcher *f)
{
    if (f->call != NULL || f->b->stopping || f->b->shutdown_ctl != NULL)
        return;
    int64_t now = mono_ms(), next = INT64_MAX;
    int ntrunc = 0, nfetch = 0, nthrottled = 0;
    for (int i = 0; i < f->nparts; i++) {
        struct fetch_part *fp = &f->parts[i];
        fp->throttled = false;
        if (fp->delayed_until > now) {
            next = fp->delayed_until < next ? fp->delayed_until : next;
            continue;
        }
        if (fp->truncating) {
            ntrunc++;
        } else if (fetch_throttled(f, fp, now)) {
            fp->throttled = true;
            nthrottled++;
        } else {
            nfetch++;
        }
    }
    if (ntrunc == 0 && nfetch == 0 && nthrottled > 0) {
        /* Kafka's fetcher with nothing to send waits replica.fetch.backoff.ms. */
        int64_t at = now + f->b->cfg.replica_fetch_backoff_ms;
        next = at < next ? at : next;
    }
    if (ntrunc > 0) {
        send_epochs(f, now);
        return;
    }
    if (nfetch > 0) {
        send_fetch(f, now);
        return;
    }
    if (next == INT64_MAX || (f->timer != 0 && f->timer_at <= next))
        return;
    if (f->timer != 0)
        broker_timer_cancel(f->b, f->timer);
    f->timer = broker_timer_add(f->b, next, fetcher_timer, f);
    f->timer_at = next;
}

/* ---- lifecycle ---- */

struct replica_fetcher *replica_fetcher_create(struct broker *b, struct client *cl,
                                               int32_t leader_id, int fetcher_id,
                                               const char *host, int port)
{
    struct replica_fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->b = b;
    f->leader_id = leader_id;
    f->fetcher_id = fetcher_id;
    snprintf(f->host, sizeof(f->host), "%s", host);
    f->port = port;
    snprintf(f->who, sizeof(f->who), "ReplicaFetcher replicaId=%d, leaderId=%d, fetcherId=%d",
             b->cfg.node_id, leader_id, fetcher_id);
    f->conn = client_connect(cl, host, port);
    if (f->conn == NULL) {
        LOG_LIMITED(LOG_LEVEL_ERROR, f->who, "cannot connect to broker %d at %s:%d (not a numeric "
                    "address or localhost)", leader_id, host, port);
        free(f);
        return NULL;
    }
    LOG_INFO(f->who, "Starting (leader broker %d at %s:%d)", leader_id, host, port);
    return f;
}

void replica_fetcher_destroy(struct replica_fetcher *f)
{
    if (f == NULL)
        return;
    LOG_INFO(f->who, "Shutting down (%d partitions)", f->nparts);
    if (f->timer != 0)
        broker_timer_cancel(f->b, f->timer);
    if (f->call != NULL)
        f->call->f = NULL; /* answered later into nothing */
    client_conn_destroy(f->conn);
    free(f->parts);
    free(f);
}
