/* DescribeProducers (61): the idempotent producers this broker tracks per partition. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

enum request_status handle_describe_producers(struct broker *b, struct request *r)
{
    struct describe_producers_request *req = r->body;
    struct describe_producers_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->topics, n);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = n;
    for (int32_t i = 0; i < n; i++) {
        struct describe_producers_request_topic_request *in = &req->topics[i];
        struct describe_producers_response_topic_response *out = &resp->topics[i];
        out->name = in->name.ptr ? in->name : kstr_of("");
        struct topic *t = topic_find_name(b, in->name);
        int32_t np = in->n_partition_indexes > 0 ? in->n_partition_indexes : 0;
        RESP_ARRAY(r, out->partitions, np);
        if (out->partitions == NULL)
            return REQUEST_CLOSE;
        out->n_partitions = np;
        for (int32_t j = 0; j < np; j++) {
            int32_t idx = in->partition_indexes[j];
            struct describe_producers_response_partition_response *po = &out->partitions[j];
            po->partition_index = idx;
            po->error_message = kstr_null();
            if (t == NULL || idx < 0 || idx >= t->npartitions) {
                po->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            struct partition *p = t->partitions[idx];
            RESP_ARRAY(r, po->active_producers, p->producers.count);
            if (po->active_producers == NULL)
                return REQUEST_CLOSE;
            int k = 0;
            for (struct producer_entry *e = p->producers.head; e && k < p->producers.count; e = e->next, k++) {
                struct describe_producers_response_producer_state *s = &po->active_producers[k];
                s->producer_id = e->producer_id;
                s->producer_epoch = e->epoch;
                s->last_sequence = e->n > 0 ? e->batches[e->n - 1].last_seq : -1;
                s->last_timestamp = e->last_timestamp;
                s->coordinator_epoch = -1;
                s->current_txn_start_offset = -1;
            }
            po->n_active_producers = k;
        }
    }
    return REQUEST_DONE;
}
