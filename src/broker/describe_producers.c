/* DescribeProducers (61): the idempotent producers this broker tracks per partition. */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

/* One partition's producers; -1 when out of request memory. */
static int describe_one(struct request *r, struct topic *t, int32_t idx,
                        struct describe_producers_response_partition_response *po)
{
    po->partition_index = idx;
    po->error_message = kstr_null();
    if (t == NULL || idx < 0 || idx >= t->npartitions) {
        po->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    struct partition *p = t->partitions[idx];
    RESP_ARRAY(r, po->active_producers, p->producers.count);
    if (po->active_producers == NULL)
        return -1;
    int k = 0;
    for (struct producer_entry *e = p->producers.head; e && k < p->producers.count; e = e->next, k++) {
        struct describe_producers_response_producer_state *s = &po->active_producers[k];
        s->producer_id = e->producer_id;
        s->producer_epoch = e->epoch;
        s->last_sequence = e->n > 0 ? e->batches[e->n - 1].last_seq : -1;
        s->last_timestamp = e->last_timestamp;
        s->coordinator_epoch = e->coordinator_epoch;
        s->current_txn_start_offset = e->txn_first_offset;
    }
    po->n_active_producers = k;
    return 0;
}

enum request_status handle_describe_producers(struct broker *b, struct request *r)
{
    struct describe_producers_request *req = r->body;
    struct describe_producers_response *resp = r->resp;
    FANOUT(r, b, req, resp, topics, name, partition_indexes, partitions, {
        /* KafkaApis: READ on the topic. */
        bool allowed = authorize_kstr(b, r, ACL_OP_READ, ACL_RES_TOPIC, ti->name.ptr, ti->name.len);
        if (describe_one(r, allowed ? t : NULL, ti->partition_indexes[j], &to->partitions[j]) != 0)
            return REQUEST_CLOSE;
        if (!allowed)
            to->partitions[j].error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
    });
    return REQUEST_DONE;
}
