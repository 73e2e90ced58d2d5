/* InitProducerId (22): hands an idempotent producer its id and epoch (ids from producer_ids.c:
 * unique in a cluster); a transactional id goes to the transaction coordinator (txn_store.c),
 * which fences the id's previous producer and answers once its record is written. */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/producer_ids.h"
#include "broker/txn_store.h"
#include "common/logging.h"
#include "proto/messages.h"

static void fill_init(struct request *r, const struct txn_result *res)
{
    struct init_producer_id_response *resp = r->resp;
    /* PRODUCER_FENCED is v4+ (KIP-588); older clients know INVALID_PRODUCER_EPOCH. */
    resp->error_code = txn_client_error(res->error, r->api_version >= 4);
    resp->producer_id = res->error == KERR_NONE ? res->producer_id : -1;
    resp->producer_epoch = res->error == KERR_NONE ? res->producer_epoch : -1;
}

static enum request_status init_transactional(struct broker *b, struct request *r)
{
    struct init_producer_id_request *req = r->body;
    struct init_producer_id_response *resp = r->resp;
    struct txn_coordinator *tc = txn_store_coordinator(b);
    if (tc == NULL) {
        resp->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        return REQUEST_DONE;
    }
    const char *id = txn_id_of(r, req->transactional_id);
    struct txn_wait *w = txn_wait_new(r, fill_init);
    if (w == NULL)
        return REQUEST_CLOSE;
    if (id == NULL) {
        resp->error_code = KERR_NOT_COORDINATOR; /* an id with a NUL: no partition holds it */
        return REQUEST_DONE;
    }
    struct txn_init_args a = {
        .transactional_id = id,
        .timeout_ms = req->transaction_timeout_ms,
        .producer_id = r->api_version >= 3 ? req->producer_id : -1,
        .producer_epoch = r->api_version >= 3 ? req->producer_epoch : -1,
    };
    txn_init_producer_id(tc, &a, txn_wait_cb, w);
    return txn_wait_status(w);
}

enum request_status handle_init_producer_id(struct broker *b, struct request *r)
{
    struct init_producer_id_request *req = r->body;
    struct init_producer_id_response *resp = r->resp;
    resp->producer_id = -1;
    resp->producer_epoch = -1;
    /* Kafka's KafkaApis: an existing producer (KIP-360, v3+) names both its id and its epoch,
     * or neither. */
    if ((req->producer_id == -1) != (req->producer_epoch == -1)) {
        resp->error_code = KERR_INVALID_REQUEST;
        return REQUEST_DONE;
    }
    /* KafkaApis: WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE
     * on the cluster or WRITE on some topic. */
    if (req->transactional_id.ptr != NULL && req->transactional_id.len > 0 &&
        !authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID, req->transactional_id.ptr,
                        req->transactional_id.len)) {
        resp->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return REQUEST_DONE;
    }
    if (req->transactional_id.ptr == NULL &&
        !authorize(b, r, ACL_OP_IDEMPOTENT_WRITE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, false) &&
        !authorize_any(b, r, ACL_OP_WRITE, ACL_RES_TOPIC)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        return REQUEST_DONE;
    }
    /* Kafka refuses an empty transactional id; any other is the coordinator's. */
    if (req->transactional_id.ptr != NULL) {
        if (req->transactional_id.len > 0)
            return init_transactional(b, r);
        resp->error_code = KERR_INVALID_REQUEST;
        return REQUEST_DONE;
    }
    /* No transactional id: always a new producer id at epoch 0, whatever id and epoch the
     * producer names (Kafka's TransactionCoordinator.handleInitProducerId); bumping the epoch
     * of an id is the transaction coordinator's, for the transactional id that owns it. */
    int64_t id;
    /* No block at hand (being taken from ZooKeeper): Kafka's answer, which clients retry. */
    int e = producer_ids_next(b, &id);
    if (e != KERR_NONE) {
        resp->error_code = (int16_t)e;
        return REQUEST_DONE;
    }
    resp->producer_id = id;
    resp->producer_epoch = 0;
    return REQUEST_DONE;
}
