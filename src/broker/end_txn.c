/* EndTxn (26), v0-5: commits or aborts the producer's transaction (txn_end): answered once
 * PrepareCommit / PrepareAbort is written; the markers and the completion follow. */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "proto/messages.h"

/* v5 (KIP-890 part 2) answers the producer id and epoch the transaction ended with: as
 * transaction.version stays 1 here (no epoch bump per transaction), the ones it was asked with
 * (txn_end takes only the current ones); -1 / -1 with an error, as Kafka's. */
static void fill_end(struct request *r, const struct txn_result *res)
{
    struct end_txn_request *req = r->body;
    struct end_txn_response *resp = r->resp;
    /* PRODUCER_FENCED is v2+ (KIP-588). */
    resp->error_code = txn_client_error(res->error, r->api_version >= 2);
    bool ok = res->error == KERR_NONE;
    resp->producer_id = ok ? req->producer_id : -1;
    resp->producer_epoch = ok ? req->producer_epoch : -1;
}

enum request_status handle_end_txn(struct broker *b, struct request *r)
{
    struct end_txn_request *req = r->body;
    struct end_txn_response *resp = r->resp;
    resp->producer_id = -1;
    resp->producer_epoch = -1;
    if (!authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID, req->transactional_id.ptr,
                        req->transactional_id.len)) {
        resp->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* KafkaApis: WRITE */
        return REQUEST_DONE;
    }
    struct txn_coordinator *tc = txn_store_coordinator(b);
    const char *id = txn_id_of(r, req->transactional_id);
    if (tc == NULL || id == NULL) {
        resp->error_code = tc == NULL ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NOT_COORDINATOR;
        return REQUEST_DONE;
    }
    struct txn_wait *w = txn_wait_new(r, fill_end);
    if (w == NULL)
        return REQUEST_CLOSE;
    txn_end(tc, id, req->producer_id, req->producer_epoch, req->committed, txn_wait_cb, w);
    return txn_wait_status(w);
}
