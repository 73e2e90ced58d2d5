/* Fetch (1): hands out log bytes by sendfile — each partition's records field is a file range
 * of a segment. Long-poll: a fetch with less than min_bytes waits (no busy polling) until an
 * append or max_wait_ms; it is re-run from its plan when woken. Incremental fetch sessions
 * (KIP-227, v7+): see fetch_session.c. */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "broker/fetch_session.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/kutil.h"
#include "broker/replica.h"
#include "cluster/cluster.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/convert.h"
#include "log/fileio.h"
#include "net/loop.h"
#include "log/txnindex.h"
#include "broker/authorizer.h"
#include "proto/messages.h"

/* The most aborted transactions one partition's read_committed answer lists (Kafka lists all
 * those overlapping the records read: a client reading past more sees the rest next fetch). */
#define FETCH_ABORTED_MAX 512

static uint8_t empty_records[1];

/* One partition this fetch covers: from the request (sessionless or a new session) or from
 * the session (incremental). Copied into the request arena, so a session that changes while
 * this request waits does not change it. */
struct fetch_item {
    struct kstr topic;               /* as the client named it (empty: by id only) */
    struct kuuid topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch;      /* a follower's (v12+), -1: none */
};

struct fetch_plan {
    struct fetch_item *items;
    int n;
    int32_t session_id;   /* 0 = sessionless */
    bool incremental;     /* answer only partitions with news */
    int16_t error;        /* top-level error (session not found / bad epoch) */
    int32_t replica_id;   /* >= 0: a follower's fetch (ReplicaId, ReplicaState v15+) */
    bool record;          /* this build records the follower's fetch (not a waiter's re-check) */
    struct waiter wait;   /* parked until enough bytes or max_wait_ms (WAITER_ON_APPEND) */
    bool out_of_memory;   /* a re-check could not build the response: answered empty */
    bool cluster_action;  /* a follower's fetch may (CLUSTER_ACTION on the cluster) */
    int64_t quota_max_bytes; /* a consumer's consumer_byte_rate x its quota window; -1: none */
};

static void release_files(struct fetch_response *resp)
{
    for (int32_t i = 0; i < resp->n_responses; i++)
        for (int32_t j = 0; j < resp->responses[i].n_partitions; j++) {
            struct krecords *rec = &resp->responses[i].partitions[j].records;
            if (rec->is_file) {
                close(rec->fd);
                rec->is_file = false;
            }
        }
}

static struct fetch_sessions *sessions(struct broker *b)
{
    if (b->fetch_sessions == NULL)
        b->fetch_sessions = calloc(1, sizeof(*b->fetch_sessions));
    return b->fetch_sessions;
}

static bool item_from_session(struct request *r, struct fetch_item *it, const struct fetch_session_part *p)
{
    char *name = request_alloc(r, (size_t)p->topic_len + 1);
    if (name != NULL)
        memcpy(name, p->topic, (size_t)p->topic_len);
    it->topic.ptr = name;
    it->topic.len = p->topic_len;
    it->topic_id = p->topic_id;
    it->partition = p->partition;
    it->fetch_offset = p->fetch_offset;
    it->max_bytes = p->max_bytes;
    it->current_leader_epoch = p->current_leader_epoch;
    it->last_fetched_epoch = p->last_fetched_epoch;
    return it->topic.ptr != NULL;
}

static struct kstr topic_key(struct broker *b, struct request *r, const struct fetch_request_fetch_topic *ft)
{
    if (r->api_version >= 13) {
        struct topic *t = topic_find_by_id(b, &ft->topic_id);
        const char *name = t ? t->name : broker_cluster_topic_by_id(b, &ft->topic_id);
        return kstr_of(name ? request_strdup(r, name) : "");
    }
    return ft->topic.ptr ? ft->topic : kstr_of("");
}

static bool same_name(struct kstr a, struct kstr b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* Turns the request into a plan, creating, updating or closing its fetch session. */
static struct fetch_plan *fetch_prepare(struct broker *b, struct request *r)
{
    struct fetch_request *req = r->body;
    struct fetch_plan *plan = request_alloc(r, sizeof(*plan));
    if (plan == NULL)
        return NULL;
    plan->replica_id = r->api_version >= 15 ? req->replica_state.replica_id : req->replica_id;
    plan->quota_max_bytes = -1;
    int total = 0;
    for (int32_t i = 0; i < req->n_topics; i++)
        total += req->topics[i].n_partitions > 0 ? req->topics[i].n_partitions : 0;
    bool use_sessions = r->api_version >= 7 && sessions(b) != NULL;
    struct fetch_session *s = NULL;
    if (use_sessions && req->session_epoch > 0) {
        s = fetch_session_find(b->fetch_sessions, req->session_id);
        if (s == NULL) {
            plan->error = KERR_FETCH_SESSION_ID_NOT_FOUND;
            return plan;
        }
        if (s->next_epoch != req->session_epoch) {
            plan->error = KERR_INVALID_FETCH_SESSION_EPOCH;
            return plan;
        }
        plan->incremental = true;
    } else if (use_sessions && req->session_id != 0) {
        fetch_session_remove(b->fetch_sessions, req->session_id);
    }
    if (use_sessions && req->session_epoch == 0)
        s = fetch_session_new(b->fetch_sessions, mono_ms());
    if (s != NULL) {
        for (int32_t i = 0; i < req->n_topics; i++) {
            struct fetch_request_fetch_topic *ft = &req->topics[i];
            struct kstr name = topic_key(b, r, ft);
            for (int32_t j = 0; j < ft->n_partitions; j++) {
                struct fetch_request_fetch_partition *fp = &ft->partitions[j];
                struct fetch_session_part *p = fetch_session_upsert(s, name, &ft->topic_id, fp->partition);
                if (p == NULL)
                    return NULL;
                p->fetch_offset = fp->fetch_offset;
                p->max_bytes = fp->partition_max_bytes;
                p->current_leader_epoch = fp->current_leader_epoch;
                p->last_fetched_epoch = fp->last_fetched_epoch;
            }
        }
        for (int32_t i = 0; i < req->n_forgotten_topics_data; i++) {
            struct fetch_request_forgotten_topic *ft = &req->forgotten_topics_data[i];
            struct kstr name = ft->topic.ptr ? ft->topic : kstr_of("");
            if (r->api_version >= 13) {
                struct topic *t = topic_find_by_id(b, &ft->topic_id);
                name = kstr_of(t ? t->name : "");
            }
            for (int32_t j = 0; j < ft->n_partitions; j++)
                fetch_session_forget(s, name, &ft->topic_id, ft->partitions[j]);
        }
        s->next_epoch = s->next_epoch >= INT32_MAX ? 1 : s->next_epoch + 1;
        s->last_used_ms = mono_ms();
        plan->session_id = s->id;
        plan->items = request_alloc(r, sizeof(*plan->items) * (size_t)(s->nparts + 1));
        if (plan->items == NULL)
            return NULL;
        for (int i = 0; i < s->nparts; i++)
            if (!item_from_session(r, &plan->items[plan->n++], &s->parts[i]))
                return NULL;
        return plan;
    }
    plan->items = request_alloc(r, sizeof(*plan->items) * (size_t)(total + 1));
    if (plan->items == NULL)
        return NULL;
    for (int32_t i = 0; i < req->n_topics; i++) {
        struct fetch_request_fetch_topic *ft = &req->topics[i];
        struct kstr name = topic_key(b, r, ft);
        for (int32_t j = 0; j < ft->n_partitions; j++) {
            struct fetch_item *it = &plan->items[plan->n++];
            it->topic = name;
            it->topic_id = ft->topic_id;
            it->partition = ft->partitions[j].partition;
            it->fetch_offset = ft->partitions[j].fetch_offset;
            it->max_bytes = ft->partitions[j].partition_max_bytes;
            it->current_leader_epoch = ft->partitions[j].current_leader_epoch;
            it->last_fetched_epoch = ft->partitions[j].last_fetched_epoch;
        }
    }
    return plan;
}

static void partition_defaults(struct fetch_response_partition_data *out, int32_t partition)
{
    memset(out, 0, sizeof(*out));
    out->partition_index = partition;
    out->high_watermark = -1;
    out->last_stable_offset = -1;
    out->log_start_offset = -1;
    out->preferred_read_replica = -1;
    out->n_aborted_transactions = -1;
    out->diverging_epoch.epoch = -1;
    out->diverging_epoch.end_offset = -1;
    out->current_leader.leader_id = -1;
    out->current_leader.leader_epoch = -1;
    out->snapshot_id.end_offset = -1;
    out->snapshot_id.epoch = -1;
    out->records.ptr = empty_records;
    out->records.len = 0;
}

static int64_t follower_prepare(struct broker *b, struct topic *t, struct partition *p,
                                const struct fetch_plan *plan, const struct fetch_item *it,
                                struct fetch_response_partition_data *out);
static bool replica_here(struct broker *b, struct kstr topic, int32_t partition);
static bool leader_throttles(struct broker *b, const struct topic *t, int32_t partition,
                             const struct partition *p, int32_t replica_id);
static int32_t preferred_read_replica(struct broker *b, const struct partition *p,
                                      struct kstr rack, int64_t fetch_offset);
/* How far a read goes: the high watermark (read_uncommitted), the last stable offset
 * (read_committed) or the log end (a follower). */
enum fetch_read_bound { FETCH_READ_HW, FETCH_READ_COMMITTED, FETCH_READ_LOG_END };
static int64_t read_partition(struct partition *p, const struct fetch_item *it,
                              enum fetch_read_bound bound, int64_t *budget, int64_t total,
                              struct fetch_response_partition_data *out, int64_t *read_end);

/* The aborted transactions a read_committed read of [fetch_offset, read_end) must filter
 * (Kafka's addAbortedTransactions, bounded by the end of the records read), at most
 * FETCH_ABORTED_MAX. -1 when out of request memory. */
static int aborted_transactions(struct request *r, struct partition *p, int64_t fetch_offset,
                                int64_t read_end, struct fetch_response_partition_data *out)
{
    struct txnindex_entry found[FETCH_ABORTED_MAX];
    int n = 0;
    GREGOR_ASSERT(read_end > fetch_offset && read_end <= out->last_stable_offset);
    int e = partition_collect_aborted(p, fetch_offset, read_end, found, FETCH_ABORTED_MAX, &n);
    if (e != KERR_NONE) {
        LOG_WARN("ReplicaManager", "cannot read the aborted transactions of %s: %s",
                 p->dir_path, kerr_name(e));
        return 0; /* the records go out; the client sees aborted ones as committed */
    }
    if (n == 0)
        return 0;
    out->aborted_transactions = request_alloc(r, sizeof(*out->aborted_transactions) * (size_t)n);
    if (out->aborted_transactions == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        out->aborted_transactions[i].producer_id = found[i].producer_id;
        out->aborted_transactions[i].first_offset = found[i].first_offset;
    }
    out->n_aborted_transactions = n;
    return 0;
}

/* Reads one partition; returns record bytes (0 when none), or -1 when it is answered at once:
 * a partition error, or a preferred read replica named (KIP-392).
 * KIP-74, as Kafka's ReplicaManager reads: until some partition of this response has records
 * (total == 0), the first batch is returned whatever its size, so that a batch larger than
 * max_bytes or partition_max_bytes still makes progress; after that, a partition gets only the
 * whole batches that fit both its partition_max_bytes and what is left of the response's
 * max_bytes, possibly nothing. */
static int64_t fetch_partition(struct broker *b, struct request *r, const struct fetch_item *it,
                               int64_t *budget, int64_t total, struct fetch_response_partition_data *out)
{
    partition_defaults(out, it->partition);
    const struct fetch_plan *plan = r->state;
    /* KIP-392: a consumer's Fetch v11+ (Kafka's client metadata) may read any replica here,
     * a follower's up to its high watermark; older ones and followers' read leaders only. */
    bool any_replica = plan->replica_id < 0 && r->api_version >= 11;
    bool following = false;
    /* KafkaApis: a follower needs CLUSTER_ACTION, a consumer READ on the topic; either
     * denied answers TOPIC_AUTHORIZATION_FAILED for the partition. */
    if (it->topic.len > 0 &&
        (plan->replica_id >= 0 ? !plan->cluster_action
                               : !authorize_kstr(b, r, ACL_OP_READ, ACL_RES_TOPIC,
                                                 it->topic.ptr, it->topic.len))) {
        out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
        return -1;
    }
    if (it->topic.len > 0 && broker_leader_check(b, it->topic, it->partition) != KERR_NONE) {
        if (!any_replica || !replica_here(b, it->topic, it->partition)) {
            out->error_code = KERR_NOT_LEADER_OR_FOLLOWER; /* the client refreshes Metadata */
            return -1;
        }
        following = true;
    }
    struct topic *t = it->topic.len > 0 ? topic_find_name(b, it->topic) : NULL;
    if (following && (t == NULL || it->partition >= t->npartitions)) {
        out->error_code = KERR_NOT_LEADER_OR_FOLLOWER; /* assigned here, not open yet */
        return -1;
    }
    if (t == NULL || it->partition < 0 || it->partition >= t->npartitions) {
        out->error_code = r->api_version >= 13 && t == NULL ? KERR_UNKNOWN_TOPIC_ID
                                                            : KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return -1;
    }
    struct partition *p = t->partitions[it->partition];
    int le = partition_check_leader_epoch(p, it->current_leader_epoch);
    if (le != KERR_NONE) {
        out->error_code = (int16_t)le;
        return -1;
    }
    if (plan->replica_id >= 0) {
        int64_t ready = follower_prepare(b, t, p, plan, it, out);
        if (ready > 0 && leader_throttles(b, t, it->partition, p, plan->replica_id))
            return 0; /* Kafka's checkFetchDataInfo: no records, no error */
        return ready <= 0 ? ready
                          : read_partition(p, it, FETCH_READ_LOG_END, budget, total, out, NULL);
    }
    struct fetch_request *req = r->body;
    int64_t hw = partition_high_watermark(p);
    out->high_watermark = hw;
    out->last_stable_offset = partition_last_stable_offset(p);
    out->log_start_offset = partition_log_start(p);
    if (any_replica && !following && b->cfg.replica_selector_rack_aware && p->repl.leading) {
        int32_t preferred = preferred_read_replica(b, p, req->rack_id, it->fetch_offset);
        if (preferred >= 0) {
            /* Kafka skips the read and answers at once: the client fetches from it next. */
            out->preferred_read_replica = preferred;
            if (plan->record)
                LOG_DEBUG("ReplicaManager", "Replica selector RackAwareReplicaSelector returned "
                          "preferred replica %d for %.*s-%d (client rack %.*s, offset %" PRId64 ")",
                          preferred, it->topic.len, it->topic.ptr, it->partition,
                          req->rack_id.len, req->rack_id.ptr, it->fetch_offset);
            return -1;
        }
    }
    if (following && plan->record)
        LOG_DEBUG("ReplicaManager", "Fetch of %.*s-%d at offset %" PRId64 " from a consumer "
                  "(rack '%.*s') served by follower %d up to its high watermark %" PRId64,
                  it->topic.len, it->topic.ptr, it->partition, it->fetch_offset,
                  req->rack_id.len > 0 ? req->rack_id.len : 0,
                  req->rack_id.len > 0 ? req->rack_id.ptr : "", b->cfg.node_id, hw);
    /* read_committed (v4+): up to the last stable offset, with the aborted transactions of
     * what is read, an empty list when none (Kafka's emptyFetchDataInfo with them). */
    bool committed = r->api_version >= 4 && req->isolation_level == 1;
    if (committed)
        out->n_aborted_transactions = 0;
    if (it->fetch_offset == hw)
        return 0;
    if (committed && it->fetch_offset >= out->last_stable_offset && it->fetch_offset <= hw)
        return 0;
    /* Up to the high watermark: a follower's is its leader's as of its last fetch. Past it
     * and up to the log end: nothing, no error; past the log end: OFFSET_OUT_OF_RANGE (Kafka's
     * LocalLog.read, on a leader or a follower alike). */
    int64_t read_end = it->fetch_offset;
    int64_t got = read_partition(p, it, committed ? FETCH_READ_COMMITTED : FETCH_READ_HW, budget,
                                 total, out, &read_end);
    if (committed && got > 0 && aborted_transactions(r, p, it->fetch_offset, read_end, out) < 0) {
        /* Out of request memory: no records rather than aborted ones shown as committed. */
        close(out->records.fd);
        out->records.is_file = false;
        out->records.fd = -1;
        out->records.ptr = empty_records;
        out->records.len = 0;
        *budget += got;
        return 0;
    }
    return got;
}

/* ReplicaManager.shouldLeaderThrottle (KIP-73): a follower not in the ISR, of a partition
 * listed for this broker in leader.replication.throttled.replicas, while the leader quota is
 * over. Its fetch gets no records (and waits as one with nothing to read). */
static bool leader_throttles(struct broker *b, const struct topic *t, int32_t partition,
                             const struct partition *p, int32_t replica_id)
{
    for (int i = 0; i < p->repl.ncommitted; i++)
        if (p->repl.committed[i] == replica_id)
            return false;
    return replication_quota_throttled(b, t, partition, true) &&
           replication_quota_over(b, true, mono_ms());
}

/* BrokerTopicMetrics of an answered fetch: a consumer's record bytes per topic (BytesOut), a
 * follower's in ReplicationBytesOut (Kafka's updateBytesOut), and the fetch requests that
 * named each topic. */
static void fetch_record_traffic(struct broker *b, struct request *r)
{
    const struct fetch_plan *plan = r->state;
    const struct fetch_response *resp = r->resp;
    for (int32_t i = 0; i < resp->n_responses; i++) {
        const struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        struct topic *t = r->api_version >= 13 ? topic_find_by_id(b, &tr->topic_id)
                                                : topic_find_name(b, tr->topic);
        if (t == NULL)
            continue;
        uint64_t bytes = 0;
        for (int32_t j = 0; j < tr->n_partitions; j++)
            if (tr->partitions[j].records.len > 0)
                bytes += (uint64_t)tr->partitions[j].records.len;
        t->counters.fetch_requests++;
        if (plan->replica_id >= 0)
            b->metrics.replication_bytes_out += bytes;
        else
            t->counters.bytes_out += bytes;
    }
}

/* KafkaApis.sizeOfThrottledPartitions: a follower's answer counts the records of its
 * throttled partitions, in sync or not, against the leader quota (the response's fixed
 * fields left out). */
static void fetch_record_throttled(struct broker *b, struct request *r)
{
    const struct fetch_plan *plan = r->state;
    const struct fetch_response *resp = r->resp;
    fetch_record_traffic(b, r);
    if (plan->replica_id < 0)
        return;
    int64_t bytes = 0;
    for (int32_t i = 0; i < resp->n_responses; i++) {
        const struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        struct topic *t = NULL;
        for (int32_t j = 0; j < tr->n_partitions; j++) {
            if (tr->partitions[j].records.len <= 0)
                continue;
            if (t == NULL && (t = topic_find_name(b, tr->topic)) == NULL)
                break;
            if (replication_quota_throttled(b, t, tr->partitions[j].partition_index, true))
                bytes += tr->partitions[j].records.len;
        }
    }
    if (bytes > 0)
        replication_quota_record(&b->quota_leader, bytes, mono_ms());
}

/* This broker holds an assigned replica of the partition (in the cluster's view, and open). */
static bool replica_here(struct broker *b, struct kstr topic, int32_t partition)
{
    if (b->cluster == NULL || topic.len <= 0 || topic.len >= CLUSTER_TOPIC_NAME_MAX)
        return false;
    char name[CLUSTER_TOPIC_NAME_MAX];
    memcpy(name, topic.ptr, (size_t)topic.len);
    name[topic.len] = '\0';
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, name);
    if (ct == NULL || !cluster_topic_visible(ct) || partition < 0 || partition >= ct->npartitions)
        return false;
    const struct cluster_partition *cp = &ct->parts[partition];
    for (int i = 0; i < cp->nreplicas; i++)
        if (cp->replicas[i] == b->cfg.node_id)
            return true;
    return false;
}

/* Kafka's findPreferredReadReplica with RackAwareReplicaSelector, on the leader: with a client
 * rack that is not the leader's, the committed-ISR follower on that rack (live, so its
 * endpoint is known) whose log end reached the fetch offset, the one with the greatest log end
 * (ties: caught up most recently); -1 for the leader itself. Followers' log starts are not
 * tracked here: they follow the leader's, which the fetch offset is checked against. */
static int32_t preferred_read_replica(struct broker *b, const struct partition *p,
                                      struct kstr rack, int64_t fetch_offset)
{
    if (rack.ptr == NULL || rack.len <= 0 || fetch_offset < partition_log_start(p))
        return -1;
    const struct cluster_broker *live;
    int n = cluster_brokers(b->cluster, &live);
    int32_t best = -1;
    int64_t best_end = -1, best_caught_up = 0;
    for (int i = 0; i < n; i++) {
        if ((int32_t)strlen(live[i].rack) != rack.len ||
            memcmp(live[i].rack, rack.ptr, (size_t)rack.len) != 0)
            continue;
        if (live[i].id == b->cfg.node_id)
            return -1; /* the leader is on the client's rack */
        const struct partition_follower *f = NULL;
        for (int k = 0; k < p->repl.nfollowers && f == NULL; k++)
            if (p->repl.followers[k].id == live[i].id)
                f = &p->repl.followers[k];
        bool in_isr = false;
        for (int k = 0; k < p->repl.ncommitted && !in_isr; k++)
            in_isr = p->repl.committed[k] == live[i].id;
        if (f == NULL || !in_isr || f->log_end < fetch_offset)
            continue;
        if (f->log_end > best_end ||
            (f->log_end == best_end && f->last_caught_up_ms > best_caught_up)) {
            best = f->id;
            best_end = f->log_end;
            best_caught_up = f->last_caught_up_ms;
        }
    }
    return best;
}

/* A follower's fetch (Kafka's Partition.fetchRecords from a follower): only an assigned
 * replica of a partition led here with replication; a last fetched epoch this leader's epoch
 * cache ends earlier gets the diverging epoch and no records (KIP-320), answered at once;
 * else its fetch offset is its log end, and it reads up to the log end, not the high
 * watermark. Returns as fetch_partition (-1 for a diverging epoch too: answered at once). */
static int64_t follower_prepare(struct broker *b, struct topic *t, struct partition *p,
                                const struct fetch_plan *plan, const struct fetch_item *it,
                                struct fetch_response_partition_data *out)
{
    if (!p->repl.leading || !partition_is_follower(p, plan->replica_id)) {
        /* Kafka's followerReplicaOrThrow: with a leader epoch the pair is not known yet. */
        out->error_code = it->current_leader_epoch >= 0 ? KERR_UNKNOWN_LEADER_EPOCH
                                                        : KERR_NOT_LEADER_OR_FOLLOWER;
        return -1;
    }
    out->high_watermark = partition_high_watermark(p);
    out->last_stable_offset = partition_last_stable_offset(p);
    out->log_start_offset = partition_log_start(p);
    bool diverged;
    int32_t epoch;
    int64_t end;
    int e = partition_diverging_epoch(p, it->last_fetched_epoch, it->fetch_offset, &diverged,
                                      &epoch, &end);
    if (e != KERR_NONE || diverged) {
        out->error_code = (int16_t)e;
        out->diverging_epoch.epoch = epoch;
        out->diverging_epoch.end_offset = end;
        return -1;
    }
    int64_t log_end = partition_log_end(p);
    if (it->fetch_offset < partition_log_start(p) || it->fetch_offset > log_end) {
        out->error_code = KERR_OFFSET_OUT_OF_RANGE;
        return -1;
    }
    if (plan->record) {
        e = replica_follower_fetch(b, t, p, plan->replica_id, it->fetch_offset,
                                   it->current_leader_epoch >= 0);
        if (e != KERR_NONE) {
            out->error_code = (int16_t)e;
            return -1;
        }
        out->high_watermark = partition_high_watermark(p);
    }
    return it->fetch_offset == log_end ? 0 : 1;
}

/* Reads the partition from it->fetch_offset: up to the high watermark, the last stable offset
 * (read_committed) or the log end (a follower); *read_end (when given) the offset after the
 * records read. Returns as fetch_partition. */
static int64_t read_partition(struct partition *p, const struct fetch_item *it,
                              enum fetch_read_bound bound, int64_t *budget, int64_t total,
                              struct fetch_response_partition_data *out, int64_t *read_end)
{
    int64_t want = it->max_bytes < *budget ? it->max_bytes : *budget;
    if (want <= 0 && total > 0)
        return 0;
    struct log_slice slice;
    int32_t limit = (int32_t)(want > 0 ? want : 1);
    int e = bound == FETCH_READ_LOG_END  ? partition_read_log(p, it->fetch_offset, limit, &slice)
            : bound == FETCH_READ_COMMITTED ? partition_read_committed(p, it->fetch_offset, limit, &slice)
                                            : partition_read(p, it->fetch_offset, limit, &slice);
    if (e != KERR_NONE) {
        out->error_code = (int16_t)e;
        return -1;
    }
    /* partition_read returns at least one batch: past the first partition with records, a first
     * batch larger than what is left is not this response's to carry. */
    bool over = total > 0 && (int64_t)slice.len > want;
    if (slice.len == 0 || over) {
        if (slice.fd >= 0)
            close(slice.fd);
        return 0;
    }
    GREGOR_ASSERT(total == 0 || (int64_t)slice.len <= *budget);
    out->records.is_file = true;
    out->records.fd = slice.fd;
    out->records.file_offset = slice.position;
    out->records.len = (int32_t)slice.len;
    out->records.ptr = NULL;
    if (read_end != NULL)
        *read_end = slice.next_offset;
    *budget -= (int64_t)slice.len;
    return (int64_t)slice.len;
}

/* The response's byte budget (KafkaApis.handleFetchRequest's fetchMaxBytes): the request's,
 * at most fetch.max.bytes and, for a consumer, at most what its consumer_byte_rate allows in
 * one quota window (ClientQuotaManager.getMaxValueInQuotaWindow): asking more would be sure
 * to be throttled. The first partition still gets one whole batch (KIP-74). */
static int64_t fetch_max_bytes(const struct broker *b, const struct request *r, int64_t max_bytes)
{
    const struct fetch_plan *plan = r->state;
    if (max_bytes > b->cfg.fetch_max_bytes)
        max_bytes = b->cfg.fetch_max_bytes;
    if (plan->quota_max_bytes >= 0 && max_bytes > plan->quota_max_bytes)
        max_bytes = plan->quota_max_bytes;
    return max_bytes;
}

/* Builds the response in r->resp from the plan; returns the number of record bytes it holds,
 * -1 when some partition has an error (errors are answered at once), -2 out of memory. */
static int64_t fetch_build(struct broker *b, struct request *r)
{
    struct fetch_request *req = r->body;
    struct fetch_plan *plan = r->state;
    struct fetch_response *resp = r->resp;
    memset(resp, 0, sizeof(*resp));
    resp->session_id = plan->session_id;
    resp->error_code = plan->error;
    if (plan->error != KERR_NONE) {
        resp->session_id = 0;
        return -1;
    }
    int64_t budget = fetch_max_bytes(b, r, req->max_bytes > 0 ? req->max_bytes : INT32_MAX);
    struct fetch_session *s = plan->incremental ? fetch_session_find(b->fetch_sessions, plan->session_id) : NULL;
    RESP_ARRAY(r, resp->responses, plan->n);
    if (resp->responses == NULL)
        return -2;
    int64_t total = 0;
    bool error = false;
    struct fetch_response_fetchable_topic_response *tr = NULL;
    for (int i = 0; i < plan->n; i++) {
        const struct fetch_item *it = &plan->items[i];
        struct fetch_response_partition_data pd;
        int64_t got = fetch_partition(b, r, it, &budget, total, &pd);
        if (plan->incremental) {
            /* Incremental: only partitions with records, errors or changed offsets. */
            struct fetch_session_part *sp = s ? fetch_session_lookup(s, it->topic, &it->topic_id, it->partition) : NULL;
            bool news = got != 0 || sp == NULL || sp->sent_hw != pd.high_watermark ||
                        sp->sent_start != pd.log_start_offset;
            if (!news)
                continue;
        }
        if (got < 0)
            error = true;
        else
            total += got;
        if (tr == NULL || !same_name(tr->topic, it->topic) ||
            (r->api_version >= 13 && memcmp(tr->topic_id.b, it->topic_id.b, 16) != 0)) {
            tr = &resp->responses[resp->n_responses++];
            tr->topic = it->topic;
            tr->topic_id = it->topic_id;
            int run = 0;
            for (int k = i; k < plan->n && same_name(plan->items[k].topic, it->topic); k++)
                run++;
            RESP_ARRAY(r, tr->partitions, run);
            if (tr->partitions == NULL) {
                if (pd.records.is_file)
                    close(pd.records.fd);
                return -2;
            }
        }
        tr->partitions[tr->n_partitions++] = pd;
    }
    return error ? -1 : total;
}

/* Fetch v0-3 (Kafka 3.9 served them, Kafka 4 does not): the clients read magic 0 (v0-1) or
 * magic 1 (v2-3) message sets, so the file ranges picked above are read and down-converted
 * once, when the response is final (a parked fetch re-plans without converting). Each
 * partition converts at most its partition_max_bytes and, at v3, what is left of the
 * response's max_bytes; the first partition with records at v3 gets at least one whole
 * message (KIP-74), at v0-2 a message over the limit is cut, as Kafka's hard limit did.
 * Memory: the range read (at most the limit, or one batch) plus the converted bytes. */
static int down_convert_partition(struct request *r, int8_t magic, int64_t fetch_offset,
                                  size_t limit, bool min_one, struct krecords *rec)
{
    uint8_t *src = malloc(rec->len > 0 ? (size_t)rec->len : 1);
    if (src == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    ssize_t got = fio_pread_full(rec->fd, src, (size_t)rec->len, rec->file_offset);
    close(rec->fd);
    rec->is_file = false;
    rec->ptr = empty_records;
    int32_t src_len = rec->len;
    rec->len = 0;
    if (got != (ssize_t)src_len) {
        free(src);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    struct convert_buf out = {0};
    int64_t next = fetch_offset;
    int e = convert_batches_to_legacy(src, (size_t)src_len, magic, fetch_offset, limit, min_one,
                                      &out, &next);
    free(src);
    if (e == KERR_NONE && out.len > 0) {
        uint8_t *copy = request_alloc(r, out.len);
        if (copy == NULL)
            e = KERR_UNKNOWN_SERVER_ERROR;
        else {
            memcpy(copy, out.data, out.len);
            rec->ptr = copy;
            rec->len = (int32_t)out.len;
        }
    }
    convert_buf_free(&out);
    return e;
}

static void fetch_down_convert(struct broker *b, struct request *r)
{
    struct fetch_request *req = r->body;
    struct fetch_plan *plan = r->state;
    struct fetch_response *resp = r->resp;
    int8_t magic = r->api_version <= 1 ? 0 : 1;
    int64_t budget = fetch_max_bytes(
        b, r, r->api_version >= 3 && req->max_bytes > 0 ? req->max_bytes : INT32_MAX);
    int64_t total = 0;
    int k = 0;
    for (int32_t i = 0; i < resp->n_responses; i++) {
        struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        for (int32_t j = 0; j < tr->n_partitions; j++, k++) {
            struct fetch_response_partition_data *pd = &tr->partitions[j];
            GREGOR_ASSERT(k < plan->n && plan->items[k].partition == pd->partition_index);
            if (!pd->records.is_file)
                continue;
            int64_t limit = plan->items[k].max_bytes < budget - total ? plan->items[k].max_bytes
                                                                      : budget - total;
            bool min_one = r->api_version >= 3 && total == 0;
            int e = down_convert_partition(r, magic, plan->items[k].fetch_offset,
                                           limit > 0 ? (size_t)limit : 0, min_one, &pd->records);
            if (e != KERR_NONE) {
                LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "Fetch v%d: down-converting %.*s-%d from offset %lld failed: %s",
                         r->api_version, tr->topic.len, tr->topic.ptr, pd->partition_index,
                         (long long)plan->items[k].fetch_offset, kerr_name(e));
                pd->error_code = (int16_t)e;
            }
            total += pd->records.len;
        }
    }
}

/* Remembers in the session what this response told the client. */
static void fetch_commit(struct broker *b, struct request *r)
{
    struct fetch_plan *plan = r->state;
    struct fetch_response *resp = r->resp;
    struct fetch_session *s = plan->session_id ? fetch_session_find(b->fetch_sessions, plan->session_id) : NULL;
    if (s == NULL)
        return;
    for (int32_t i = 0; i < resp->n_responses; i++) {
        struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        for (int32_t j = 0; j < tr->n_partitions; j++) {
            struct fetch_session_part *sp = fetch_session_lookup(s, tr->topic, &tr->topic_id,
                                                                 tr->partitions[j].partition_index);
            if (sp != NULL) {
                sp->sent_hw = tr->partitions[j].high_watermark;
                sp->sent_start = tr->partitions[j].log_start_offset;
                /* Now that a response may give its bytes to the first partitions only
                 * (KIP-74), those that were served go last next time. */
                if (tr->partitions[j].records.len > 0)
                    fetch_session_move_to_end(s, sp);
            }
        }
    }
}

static bool fetch_wake(struct waiter *w, enum waiter_event ev);

/* Client quotas (KafkaApis.handleFetchRequest): a consumer's response size against the
 * consumer_byte_rate that applies. Over it, the bytes are taken back and the answer is
 * FetchContext.getThrottledResponse's: no partitions, the throttle time, the session kept
 * (an incremental fetch's id, else none); the connection is muted that long (KIP-219).
 * Followers' fetches are not a client's. Returns true when throttled. */
static bool fetch_client_quota(struct broker *b, struct request *r, bool in_handler)
{
    (void)b;
    struct fetch_plan *plan = r->state;
    struct fetch_response *resp = r->resp;
    if (plan->replica_id >= 0 || resp->error_code != KERR_NONE)
        return false;
    int64_t size = 0;
    for (int32_t i = 0; i < resp->n_responses; i++)
        for (int32_t j = 0; j < resp->responses[i].n_partitions; j++)
            size += resp->responses[i].partitions[j].records.len > 0
                        ? resp->responses[i].partitions[j].records.len : 0;
    /* Answered from the handler: its request_percentage is recorded now, so that a request
     * throttle answers empty too (the larger throttle is sent); a parked fetch's was recorded
     * when its handler returned (server.c's on_frame). */
    int32_t tr = r->throttle_ms;
    if (in_handler) {
        tr = request_quota_record(r, QUOTA_REQUEST_PERCENTAGE,
                                  (double)(mono_us() - r->start_us) * 1e-4);
        r->request_quota_done = true;
    }
    int32_t t = request_quota_record(r, QUOTA_CONSUMER_BYTE_RATE, (double)size);
    if (t <= 0 && tr <= 0)
        return false;
    request_quota_unrecord(r, QUOTA_CONSUMER_BYTE_RATE, (double)size);
    release_files(resp);
    memset(resp, 0, sizeof(*resp));
    resp->throttle_time_ms = t > tr ? t : tr;
    resp->session_id = plan->incremental ? plan->session_id : 0;
    return true;
}

void fetch_shutdown(struct broker *b)
{
    /* After the cluster's session closed: the followers' ISR writes left in flight. */
    replica_shutdown(b);
    fetch_sessions_free(b->fetch_sessions);
    b->fetch_sessions = NULL;
}

enum request_status handle_fetch(struct broker *b, struct request *r)
{
    struct fetch_request *req = r->body;
    r->state = fetch_prepare(b, r);
    if (r->state == NULL)
        return REQUEST_CLOSE;
    struct fetch_plan *plan = r->state;
    plan->record = true;
    plan->cluster_action = plan->replica_id >= 0 &&
                           authorize(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER,
                                     ACL_CLUSTER_NAME, true);
    r->request_quota_done = plan->cluster_action;
    plan->quota_max_bytes = plan->replica_id < 0
                                ? (int64_t)request_quota_window_max(r, QUOTA_CONSUMER_BYTE_RATE)
                                : -1;
    /* fetchMinBytes: at most the budget, or a capped fetch would wait out max_wait_ms. */
    if (fetch_max_bytes(b, r, INT32_MAX) < req->min_bytes)
        req->min_bytes = (int32_t)fetch_max_bytes(b, r, INT32_MAX);
    int64_t got = fetch_build(b, r);
    if (got == -2)
        return REQUEST_CLOSE;
    if (got < 0 || got >= req->min_bytes || req->max_wait_ms <= 0 || b->stopping) {
        if (fetch_client_quota(b, r, true))
            return REQUEST_DONE;
        if (r->api_version <= 3)
            fetch_down_convert(b, r);
        fetch_commit(b, r);
        fetch_record_throttled(b, r);
        return REQUEST_DONE;
    }
    /* Not enough yet: park until an append (or a follower's fetch moving the high watermark)
     * or the deadline (replica.fetch.wait.max.ms is a follower's max_wait). */
    release_files(r->resp);
    plan->record = false;
    plan->wait = (struct waiter){0};
    plan->out_of_memory = false;
    waiter_park(&b->waiters, &plan->wait, WAITER_ON_APPEND, mono_ms() + req->max_wait_ms,
                fetch_wake, r);
    return REQUEST_PENDING;
}

/* Answers a fetch whose response is built (r->resp holds its files). */
static void fetch_answer(struct broker *b, struct request *r)
{
    if (fetch_client_quota(b, r, false)) {
        request_finish(r);
        return;
    }
    if (r->api_version <= 3)
        fetch_down_convert(b, r);
    fetch_commit(b, r);
    fetch_record_throttled(b, r);
    request_finish(r);
}

/* The parked fetch: re-built after appends (enough bytes: answered), or at its deadline with
 * what there is. A fetch whose client is gone is dropped at the next wake-up. */
static bool fetch_wake(struct waiter *w, enum waiter_event ev)
{
    struct request *r = w->arg;
    struct broker *b = r->broker;
    struct fetch_request *req = r->body;
    struct fetch_plan *plan = r->state;
    switch (ev) {
    case WAITER_CHECK: {
        if (r->conn == NULL)
            return true;
        int64_t got = fetch_build(b, r);
        if (got == -2) {
            release_files(r->resp);
            plan->out_of_memory = true;
            return true;
        }
        if (got < 0 || got >= req->min_bytes)
            return true; /* built: answered by WAITER_FIRE */
        release_files(r->resp);
        return false;
    }
    case WAITER_FIRE:
        if (r->conn == NULL) {
            release_files(r->resp);
            request_free(r); /* client gone: drop it now rather than at its deadline */
        } else if (plan->out_of_memory) {
            memset(r->resp, 0, sizeof(struct fetch_response));
            request_finish(r);
        } else {
            fetch_answer(b, r);
        }
        return true;
    case WAITER_DEADLINE:
        if (r->conn == NULL) {
            request_free(r);
            return true;
        }
        /* A follower still at the log end is caught up now (Kafka's read at completion). */
        plan->record = true;
        if (fetch_build(b, r) == -2) {
            release_files(r->resp);
            memset(r->resp, 0, sizeof(struct fetch_response));
            request_finish(r);
            return true;
        }
        fetch_answer(b, r);
        return true;
    }
    return true;
}
