/* DeleteRecords (21): moves each partition's log start offset forward (-1 = to the end). */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

enum request_status handle_delete_records(struct broker *b, struct request *r)
{
    struct delete_records_request *req = r->body;
    struct delete_records_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->topics, n);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = n;
    for (int32_t i = 0; i < n; i++) {
        struct delete_records_request_delete_records_topic *in = &req->topics[i];
        struct delete_records_response_delete_records_topic_result *out = &resp->topics[i];
        out->name = in->name.ptr ? in->name : kstr_of("");
        struct topic *t = topic_find_name(b, in->name);
        int32_t np = in->n_partitions > 0 ? in->n_partitions : 0;
        RESP_ARRAY(r, out->partitions, np);
        if (out->partitions == NULL)
            return REQUEST_CLOSE;
        out->n_partitions = np;
        for (int32_t j = 0; j < np; j++) {
            struct delete_records_request_delete_records_partition *pin = &in->partitions[j];
            struct delete_records_response_delete_records_partition_result *pout = &out->partitions[j];
            pout->partition_index = pin->partition_index;
            pout->low_watermark = -1;
            if (t != NULL && t->internal) {
                pout->error_code = KERR_INVALID_TOPIC_EXCEPTION; /* Kafka: never on internal topics */
                continue;
            }
            if (t == NULL || pin->partition_index < 0 || pin->partition_index >= t->npartitions) {
                pout->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            int64_t start = -1;
            int e = partition_delete_records(t->partitions[pin->partition_index], pin->offset, &start);
            pout->error_code = (int16_t)e;
            pout->low_watermark = e == KERR_NONE ? start : -1;
        }
    }
    return REQUEST_DONE;
}
