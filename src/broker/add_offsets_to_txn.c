/* AddOffsetsToTxn (25): the group's partition of __consumer_offsets joins the producer's
 * transaction (txn_add_offsets), so that its end writes a marker there too. */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "group/coordinator.h"
#include "proto/messages.h"

static void fill_add_offsets(struct request *r, const struct txn_result *res)
{
    struct add_offsets_to_txn_response *resp = r->resp;
    /* PRODUCER_FENCED is v2+ (KIP-588). */
    resp->error_code = txn_client_error(res->error, r->api_version >= 2);
}

enum request_status handle_add_offsets_to_txn(struct broker *b, struct request *r)
{
    struct add_offsets_to_txn_request *req = r->body;
    struct add_offsets_to_txn_response *resp = r->resp;
    /* KafkaApis: WRITE on the transactional id, READ on the group. */
    if (!authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID, req->transactional_id.ptr,
                        req->transactional_id.len)) {
        resp->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return REQUEST_DONE;
    }
    if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len)) {
        resp->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        return REQUEST_DONE;
    }
    struct txn_coordinator *tc = txn_store_coordinator(b);
    const char *id = txn_id_of(r, req->transactional_id);
    const char *group = txn_id_of(r, req->group_id);
    if (tc == NULL || id == NULL) {
        resp->error_code = tc == NULL ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NOT_COORDINATOR;
        return REQUEST_DONE;
    }
    if (group == NULL) {
        resp->error_code = KERR_INVALID_GROUP_ID;
        return REQUEST_DONE;
    }
    struct txn_wait *w = txn_wait_new(r, fill_add_offsets);
    if (w == NULL)
        return REQUEST_CLOSE;
    int32_t partition = gc_partition_for(group, b->cfg.offsets_topic_num_partitions);
    txn_add_offsets(tc, id, req->producer_id, req->producer_epoch, partition, txn_wait_cb, w);
    return txn_wait_status(w);
}
