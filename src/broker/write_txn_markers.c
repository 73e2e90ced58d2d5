/* WriteTxnMarkers (27): the transaction coordinator's COMMIT or ABORT markers, written to each
 * partition named (partition_write_txn_marker), which ends the producer's transaction there.
 * As Kafka appends them with acks=-1, a partition led with replication is answered once its
 * ISR has the marker: a coordinator told earlier would complete a transaction whose marker a
 * new leader may lack (a hanging transaction, read_committed stuck at its LSO). */
#include <inttypes.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/group_store.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/replica.h"
#include "broker/txn_markers.h"
#include "broker/waiters.h"
#include "common/logging.h"
#include "common/util.h"
#include "proto/messages.h"

int txn_marker_append(struct broker *b, struct topic *t, int32_t partition, int64_t pid,
                      int16_t epoch, int32_t coordinator_epoch, bool commit,
                      struct txn_marker_replication *wait, bool *pending)
{
    GREGOR_ASSERT(partition >= 0 && partition < t->npartitions);
    *pending = false;
    struct partition *p = t->partitions[partition];
    if (p->repl.leading && p->repl.ncommitted < replica_min_insync(b, t))
        return KERR_NOT_ENOUGH_REPLICAS;
    struct log_append_info info;
    int e = partition_write_txn_marker(p, pid, epoch, coordinator_epoch, commit, now_ms(), &info);
    if (e != KERR_NONE)
        return e;
    broker_mark_dirty(b, p);
    /* The group offsets the transaction wrote there (TxnOffsetCommit) end with it. */
    if (strcmp(t->name, "__consumer_offsets") == 0)
        group_store_txn_marker(b, partition, pid, commit);
    int32_t leadership = partition_leadership(p);
    int64_t end = partition_log_end(p);
    if (leadership < 0 || partition_high_watermark(p) >= end)
        return KERR_NONE;
    *wait = (struct txn_marker_replication){.topic_id = t->id, .partition = partition,
                                            .leadership = leadership, .end = end};
    snprintf(wait->topic, sizeof(wait->topic), "%s", t->name);
    *pending = true;
    return KERR_NONE;
}

bool txn_marker_replicated(struct broker *b, const struct txn_marker_replication *wait,
                           int *error)
{
    struct topic *t = topic_find(b, wait->topic);
    if (t == NULL || memcmp(&t->id, &wait->topic_id, sizeof(t->id)) != 0 ||
        wait->partition >= t->npartitions) {
        *error = KERR_NOT_LEADER_OR_FOLLOWER;
        return true;
    }
    struct partition *p = t->partitions[wait->partition];
    if (!partition_acks_all_settled(p, wait->leadership, wait->end, error))
        return false;
    if (*error == KERR_NONE && p->repl.nisr < replica_min_insync(b, t))
        *error = KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    return true;
}

/* The request's markers waiting for their ISR: each one's place in the response. */
struct markers_wait {
    struct waiter w;
    int n;
    struct txn_marker_replication *parts;
    int16_t **errors;
};

/* One partition's marker: Kafka's per-partition errors; *pending when it waits for its ISR. */
static int write_one(struct broker *b, const struct write_txn_markers_request_writable_txn_marker *m,
                     struct kstr tname, int32_t idx, struct txn_marker_replication *wait,
                     bool *pending)
{
    *pending = false;
    struct topic *t = topic_find_name(b, tname);
    if (broker_leader_check(b, tname, idx) != KERR_NONE)
        return KERR_NOT_LEADER_OR_FOLLOWER;
    if (t == NULL || idx < 0 || idx >= t->npartitions)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    int e = txn_marker_append(b, t, idx, m->producer_id, m->producer_epoch,
                              m->coordinator_epoch, m->transaction_result, wait, pending);
    if (e != KERR_NONE)
        LOG_INFO("ReplicaManager", "WriteTxnMarkers %s for producer %" PRId64 " epoch %d to "
                 "%s-%d failed: %s", m->transaction_result ? "COMMIT" : "ABORT",
                 m->producer_id, m->producer_epoch, t->name, idx, kerr_name(e));
    return e;
}

/* The settled markers leave the list, their errors set; true once none is left. */
static bool markers_settle(struct broker *b, struct markers_wait *mw)
{
    int k = 0;
    for (int i = 0; i < mw->n; i++) {
        int e;
        if (!txn_marker_replicated(b, &mw->parts[i], &e)) {
            mw->parts[k] = mw->parts[i];
            mw->errors[k] = mw->errors[i];
            k++;
            continue;
        }
        *mw->errors[i] = (int16_t)e;
    }
    mw->n = k;
    return k == 0;
}

static bool markers_replicated(struct waiter *w, enum waiter_event ev)
{
    struct request *r = w->arg;
    struct markers_wait *mw = r->state;
    if (ev == WAITER_CHECK)
        return markers_settle(r->broker, mw);
    if (ev == WAITER_DEADLINE) {
        /* Kafka's DelayedProduce expiring: the markers not replicated in time. */
        markers_settle(r->broker, mw);
        for (int i = 0; i < mw->n; i++)
            *mw->errors[i] = KERR_REQUEST_TIMED_OUT;
        mw->n = 0;
    }
    GREGOR_ASSERT(mw->n == 0);
    r->state = NULL;
    request_finish(r);
    return true;
}

enum request_status handle_write_txn_markers(struct broker *b, struct request *r)
{
    struct write_txn_markers_request *req = r->body;
    struct write_txn_markers_response *resp = r->resp;
    int32_t nm = req->n_markers > 0 ? req->n_markers : 0;
    RESP_ARRAY(r, resp->markers, nm);
    if (resp->markers == NULL)
        return REQUEST_CLOSE;
    resp->n_markers = nm;
    size_t total = 0;
    for (int32_t i = 0; i < nm; i++)
        for (int32_t k = 0; k < req->markers[i].n_topics; k++)
            if (req->markers[i].topics[k].n_partition_indexes > 0)
                total += (size_t)req->markers[i].topics[k].n_partition_indexes;
    struct markers_wait *mw = request_alloc(r, sizeof(*mw));
    if (mw == NULL)
        return REQUEST_CLOSE;
    *mw = (struct markers_wait){0};
    mw->parts = request_alloc(r, sizeof(*mw->parts) * (total + 1));
    mw->errors = request_alloc(r, sizeof(*mw->errors) * (total + 1));
    if (mw->parts == NULL || mw->errors == NULL)
        return REQUEST_CLOSE;
    /* KafkaApis: a broker (CLUSTER_ACTION) writes markers, and so does a principal with ALTER
     * on the cluster (KIP-664: kafka-transactions.sh abort), asked first without logging its
     * denial. */
    bool allowed = authorize(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, false) ||
                   authorize(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true);
    for (int32_t i = 0; i < nm; i++) {
        const struct write_txn_markers_request_writable_txn_marker *m = &req->markers[i];
        struct write_txn_markers_response_writable_txn_marker_result *mo = &resp->markers[i];
        mo->producer_id = m->producer_id;
        int32_t nt = m->n_topics > 0 ? m->n_topics : 0;
        RESP_ARRAY(r, mo->topics, nt);
        if (mo->topics == NULL)
            return REQUEST_CLOSE;
        mo->n_topics = nt;
        for (int32_t k = 0; k < nt; k++) {
            const struct write_txn_markers_request_writable_txn_marker_topic *ti = &m->topics[k];
            struct write_txn_markers_response_writable_txn_marker_topic_result *to = &mo->topics[k];
            to->name = ti->name.ptr ? ti->name : kstr_of("");
            int32_t np = ti->n_partition_indexes > 0 ? ti->n_partition_indexes : 0;
            RESP_ARRAY(r, to->partitions, np);
            if (to->partitions == NULL)
                return REQUEST_CLOSE;
            to->n_partitions = np;
            for (int32_t j = 0; j < np; j++) {
                bool pending;
                GREGOR_ASSERT((size_t)mw->n < total);
                to->partitions[j].partition_index = ti->partition_indexes[j];
                if (!allowed) {
                    to->partitions[j].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
                    continue;
                }
                to->partitions[j].error_code =
                    (int16_t)write_one(b, m, to->name, ti->partition_indexes[j],
                                       &mw->parts[mw->n], &pending);
                if (pending)
                    mw->errors[mw->n++] = &to->partitions[j].error_code;
            }
        }
    }
    if (mw->n == 0 || markers_settle(b, mw))
        return REQUEST_DONE;
    if (b->stopping) {
        for (int i = 0; i < mw->n; i++)
            *mw->errors[i] = KERR_REQUEST_TIMED_OUT;
        return REQUEST_DONE;
    }
    r->state = mw;
    waiter_park(&b->waiters, &mw->w, WAITER_ON_APPEND,
                mono_ms() + TXN_MARKER_REPLICATION_TIMEOUT_MS, markers_replicated, r);
    /* Appended: the connection's next request (another transaction's markers) may come in
     * meanwhile, its reply after this one, as an acks=all produce. */
    request_defer(r);
    return REQUEST_PENDING;
}
