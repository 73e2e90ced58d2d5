/* InitProducerId (22): hands an idempotent producer its id and epoch (ids from producer_ids.c:
 * unique in a cluster). Transactional ids are refused until transactions exist. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/producer_ids.h"
#include "common/logging.h"
#include "proto/messages.h"

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
    /* Kafka refuses an empty transactional id; any other needs the transaction coordinator,
     * not here yet. */
    if (req->transactional_id.ptr != NULL) {
        if (req->transactional_id.len > 0) {
            /* The client shows INVALID_REQUEST's "sent to an incompatible broker. See the
             * broker logs": this line is what it finds there. */
            char id[256], client[128];
            LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis",
                        "InitProducerId for transactional.id %s from client %s refused with "
                        "INVALID_REQUEST: this broker does not support transactions yet; an "
                        "idempotent producer without transactional.id works (Kafka Streams: "
                        "processing.guarantee=at_least_once)",
                        request_loggable(req->transactional_id, id, sizeof(id)),
                        request_loggable(r->client_id, client, sizeof(client)));
        }
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
