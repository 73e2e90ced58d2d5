/* InitProducerId (22): hands an idempotent producer its id and epoch (ids from producer_ids.c:
 * unique in a cluster). Transactional ids are refused until transactions exist. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/producer_ids.h"
#include "proto/messages.h"

enum request_status handle_init_producer_id(struct broker *b, struct request *r)
{
    struct init_producer_id_request *req = r->body;
    struct init_producer_id_response *resp = r->resp;
    resp->producer_id = -1;
    resp->producer_epoch = -1;
    if (req->transactional_id.ptr != NULL && req->transactional_id.len > 0) {
        resp->error_code = KERR_INVALID_REQUEST; /* no transaction coordinator yet */
        return REQUEST_DONE;
    }
    if (req->producer_id >= 0 && req->producer_epoch >= 0) {
        /* KIP-360: an existing producer bumps its epoch. */
        resp->producer_id = req->producer_id;
        resp->producer_epoch = (int16_t)(req->producer_epoch + 1);
        if (resp->producer_epoch < 0)
            goto new_id; /* the epoch ran out: a new id */
        return REQUEST_DONE;
    }
new_id:;
    int64_t id;
    /* No block at hand (being taken from ZooKeeper): Kafka's answer, which clients retry. */
    int e = producer_ids_next(b, &id);
    if (e != KERR_NONE) {
        resp->producer_id = -1;
        resp->producer_epoch = -1;
        resp->error_code = (int16_t)e;
        return REQUEST_DONE;
    }
    resp->producer_id = id;
    resp->producer_epoch = 0;
    return REQUEST_DONE;
}
