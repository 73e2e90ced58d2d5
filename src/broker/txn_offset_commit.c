/* TxnOffsetCommit (28): a transactional producer's consumed offsets for a group, written to the
 * group's partition of __consumer_offsets in its transaction and made the group's by the
 * transaction's COMMIT marker (group_store_txn_offsets). */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_store.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "common/util.h"
#include "group/coordinator.h"
#include "proto/messages.h"

/* A write the ISR did not get (group_store_await_isr). */
static void txn_commit_set_error(struct request *r, int16_t error)
{
    struct txn_offset_commit_response *resp = r->resp;
    GH_SET_UNANSWERED_PARTITIONS(resp, error);
}

/* v3+ names the producer's group member (KIP-447): checked as Kafka's
 * GroupCoordinator.handleTxnCommitOffsets does once the group is this broker's; v0-2 name
 * none. */
static int16_t member_check(struct broker *b, struct request *r,
                            const struct txn_offset_commit_request *req, const char *group)
{
    if (r->api_version < 3)
        return KERR_NONE;
    const char *member = txn_id_of(r, req->member_id);
    const char *instance = txn_id_of(r, req->group_instance_id);
    /* NULL for an id holding a NUL (no member has it) or out of request memory. */
    if ((member == NULL && req->member_id.ptr != NULL && req->member_id.len > 0) ||
        (instance == NULL && req->group_instance_id.ptr != NULL))
        return KERR_UNKNOWN_MEMBER_ID;
    return gc_txn_offset_commit_validate(b->groups, group, req->generation_id, member, instance);
}

enum request_status handle_txn_offset_commit(struct broker *b, struct request *r)
{
    struct txn_offset_commit_request *req = r->body;
    struct txn_offset_commit_response *resp = r->resp;
    int32_t nt = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->topics, nt);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = nt;
    int total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->topics[i].n_partitions > 0 ? req->topics[i].n_partitions : 0;
    struct gc_commit_partition *parts = request_alloc(r, sizeof(*parts) * ((size_t)total + 1));
    if (parts == NULL)
        return REQUEST_CLOSE;
    int n = 0;
    /* KafkaApis: WRITE on the transactional id and READ on the group refuse every partition;
     * READ on each topic its own. */
    int16_t denied = !authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID,
                                     req->transactional_id.ptr, req->transactional_id.len)
                         ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                     : !authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr,
                                       req->group_id.len)
                         ? KERR_GROUP_AUTHORIZATION_FAILED
                         : KERR_NONE;
    for (int32_t i = 0; i < nt; i++) {
        const struct txn_offset_commit_request_txn_offset_commit_request_topic *ti = &req->topics[i];
        struct txn_offset_commit_response_txn_offset_commit_response_topic *to = &resp->topics[i];
        to->name = ti->name.ptr ? ti->name : kstr_of("");
        int32_t np = ti->n_partitions > 0 ? ti->n_partitions : 0;
        RESP_ARRAY(r, to->partitions, np);
        if (to->partitions == NULL)
            return REQUEST_CLOSE;
        to->n_partitions = np;
        const char *topic = txn_id_of(r, to->name);
        bool topic_denied = denied == KERR_NONE &&
                            !authorize_kstr(b, r, ACL_OP_READ, ACL_RES_TOPIC, ti->name.ptr,
                                            ti->name.len);
        for (int32_t j = 0; j < np; j++) {
            const struct txn_offset_commit_request_txn_offset_commit_request_partition *pi =
                &ti->partitions[j];
            to->partitions[j].partition_index = pi->partition_index;
            bool known = topic != NULL &&
                         txn_store_partition_known(b, topic, pi->partition_index);
            parts[n++] = (struct gc_commit_partition){
                .topic = topic != NULL ? topic : "",
                .partition = pi->partition_index,
                .offset = pi->committed_offset,
                .leader_epoch = r->api_version >= 2 ? pi->committed_leader_epoch : -1,
                .metadata = pi->committed_metadata.ptr,
                .metadata_len = pi->committed_metadata.ptr ? pi->committed_metadata.len : 0,
                .error = topic_denied ? KERR_TOPIC_AUTHORIZATION_FAILED
                         : known      ? KERR_NONE
                                      : KERR_UNKNOWN_TOPIC_OR_PARTITION,
            };
        }
    }
    const char *group = txn_id_of(r, req->group_id);
    int16_t err = denied != KERR_NONE ? denied
                  : group == NULL   ? KERR_INVALID_GROUP_ID
                                    : group_store_check(b, group);
    if (err == KERR_NONE)
        err = member_check(b, r, req, group);
    if (err == KERR_NONE)
        err = group_store_txn_offsets(b, group, req->producer_id, req->producer_epoch, parts, n);
    int k = 0;
    bool written = false;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < resp->topics[i].n_partitions; j++, k++) {
            resp->topics[i].partitions[j].error_code = err != KERR_NONE ? err : parts[k].error;
            written |= resp->topics[i].partitions[j].error_code == KERR_NONE;
        }
    GREGOR_ASSERT(k == n);
    /* Kafka appends them with acks=-1: answered once the ISR has them. */
    return written && group_store_await_isr(b, r, group, txn_commit_set_error) ? REQUEST_PENDING
                                                                               : REQUEST_DONE;
}
