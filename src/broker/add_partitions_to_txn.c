/* AddPartitionsToTxn (24), v0-3: a producer's transaction takes in the partitions it is about
 * to write (txn_add_partitions); every partition gets the coordinator's one answer, as Kafka's. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "proto/messages.h"

/* Every partition of the response gets err. */
static void fill_all(struct request *r, int16_t err)
{
    struct add_partitions_to_txn_response *resp = r->resp;
    for (int32_t i = 0; i < resp->n_results_by_topic_v3_and_below; i++) {
        struct add_partitions_to_txn_response_add_partitions_to_txn_topic_result *to =
            &resp->results_by_topic_v3_and_below[i];
        for (int32_t j = 0; j < to->n_results_by_partition; j++)
            to->results_by_partition[j].partition_error_code = err;
    }
}

static void fill_add(struct request *r, const struct txn_result *res)
{
    /* PRODUCER_FENCED is v2+ (KIP-588). */
    fill_all(r, txn_client_error(res->error, r->api_version >= 2));
}

/* Kafka's KafkaApis: partitions no broker knows answer UNKNOWN_TOPIC_OR_PARTITION, the others
 * OPERATION_NOT_ATTEMPTED, and the coordinator is not asked. true when some were unknown. */
static bool unknown_partitions(struct broker *b, struct request *r)
{
    struct add_partitions_to_txn_request *req = r->body;
    struct add_partitions_to_txn_response *resp = r->resp;
    bool any = false;
    for (int32_t i = 0; i < resp->n_results_by_topic_v3_and_below; i++) {
        const char *topic = txn_id_of(r, req->v3_and_below_topics[i].name);
        struct add_partitions_to_txn_response_add_partitions_to_txn_topic_result *to =
            &resp->results_by_topic_v3_and_below[i];
        for (int32_t j = 0; j < to->n_results_by_partition; j++) {
            int32_t idx = to->results_by_partition[j].partition_index;
            bool known = topic != NULL && txn_store_partition_known(b, topic, idx);
            to->results_by_partition[j].partition_error_code =
                known ? KERR_OPERATION_NOT_ATTEMPTED : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            any |= !known;
        }
    }
    return any;
}

enum request_status handle_add_partitions_to_txn(struct broker *b, struct request *r)
{
    struct add_partitions_to_txn_request *req = r->body;
    struct add_partitions_to_txn_response *resp = r->resp;
    int32_t nt = req->n_v3_and_below_topics > 0 ? req->n_v3_and_below_topics : 0;
    RESP_ARRAY(r, resp->results_by_topic_v3_and_below, nt);
    if (resp->results_by_topic_v3_and_below == NULL)
        return REQUEST_CLOSE;
    resp->n_results_by_topic_v3_and_below = nt;
    int64_t total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->v3_and_below_topics[i].n_partitions > 0
                     ? req->v3_and_below_topics[i].n_partitions : 0;
    struct txn_partition *parts = request_alloc(r, sizeof(*parts) * ((size_t)total + 1));
    if (parts == NULL)
        return REQUEST_CLOSE;
    int n = 0;
    for (int32_t i = 0; i < nt; i++) {
        const struct add_partitions_to_txn_request_add_partitions_to_txn_topic *ti =
            &req->v3_and_below_topics[i];
        struct add_partitions_to_txn_response_add_partitions_to_txn_topic_result *to =
            &resp->results_by_topic_v3_and_below[i];
        to->name = ti->name.ptr ? ti->name : kstr_of("");
        int32_t np = ti->n_partitions > 0 ? ti->n_partitions : 0;
        RESP_ARRAY(r, to->results_by_partition, np);
        if (to->results_by_partition == NULL)
            return REQUEST_CLOSE;
        to->n_results_by_partition = np;
        const char *topic = txn_id_of(r, to->name);
        for (int32_t j = 0; j < np; j++) {
            to->results_by_partition[j].partition_index = ti->partitions[j];
            if (topic != NULL)
                parts[n++] = (struct txn_partition){topic, ti->partitions[j]};
        }
    }
    if (unknown_partitions(b, r))
        return REQUEST_DONE;
    struct txn_coordinator *tc = txn_store_coordinator(b);
    const char *id = txn_id_of(r, req->v3_and_below_transactional_id);
    if (tc == NULL || id == NULL) {
        fill_all(r, tc == NULL ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NOT_COORDINATOR);
        return REQUEST_DONE;
    }
    struct txn_wait *w = txn_wait_new(r, fill_add);
    if (w == NULL)
        return REQUEST_CLOSE;
    txn_add_partitions(tc, id, req->v3_and_below_producer_id, req->v3_and_below_producer_epoch,
                       parts, n, txn_wait_cb, w);
    return txn_wait_status(w);
}
