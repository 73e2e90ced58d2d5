/* WriteTxnMarkers (27): the transaction coordinator's COMMIT or ABORT markers, written to each
 * partition named (partition_write_txn_marker), which ends the producer's transaction there. */
#include <inttypes.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/group_store.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "common/logging.h"
#include "common/util.h"
#include "proto/messages.h"

/* One partition's marker: Kafka's per-partition errors. */
static int write_one(struct broker *b, const struct write_txn_markers_request_writable_txn_marker *m,
                     struct kstr tname, int32_t idx)
{
    struct topic *t = topic_find_name(b, tname);
    if (broker_leader_check(b, tname, idx) != KERR_NONE)
        return KERR_NOT_LEADER_OR_FOLLOWER;
    if (t == NULL || idx < 0 || idx >= t->npartitions)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    struct partition *p = t->partitions[idx];
    struct log_append_info info;
    int e = partition_write_txn_marker(p, m->producer_id, m->producer_epoch,
                                       m->coordinator_epoch, m->transaction_result, now_ms(),
                                       &info);
    if (e == KERR_NONE) {
        broker_mark_dirty(b, p);
        /* The group offsets the transaction wrote there (TxnOffsetCommit) end with it. */
        if (strcmp(t->name, "__consumer_offsets") == 0)
            group_store_txn_marker(b, idx, m->producer_id, m->transaction_result);
    } else
        LOG_INFO("ReplicaManager", "WriteTxnMarkers %s for producer %" PRId64 " epoch %d to "
                 "%s-%d failed: %s", m->transaction_result ? "COMMIT" : "ABORT",
                 m->producer_id, m->producer_epoch, t->name, idx, kerr_name(e));
    return e;
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
    /* KafkaApis: only a broker (CLUSTER_ACTION) writes markers. */
    bool allowed = authorize(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true);
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
                to->partitions[j].partition_index = ti->partition_indexes[j];
                to->partitions[j].error_code =
                    allowed ? (int16_t)write_one(b, m, to->name, ti->partition_indexes[j])
                            : KERR_CLUSTER_AUTHORIZATION_FAILED;
            }
        }
    }
    return REQUEST_DONE;
}
