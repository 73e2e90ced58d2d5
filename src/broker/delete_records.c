/* DeleteRecords (21): moves each partition's log start offset forward (-1 = to the high
 * watermark). */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

static int delete_one(struct topic *t, const struct delete_records_request_delete_records_partition *pin,
                      int64_t *low_watermark)
{
    *low_watermark = -1;
    if (t != NULL && t->internal)
        return KERR_INVALID_TOPIC_EXCEPTION; /* Kafka: never on internal topics */
    if (t == NULL || pin->partition_index < 0 || pin->partition_index >= t->npartitions)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    int64_t start = -1;
    int e = partition_delete_records(t->partitions[pin->partition_index], pin->offset, &start);
    if (e == KERR_NONE)
        *low_watermark = start;
    return e;
}

enum request_status handle_delete_records(struct broker *b, struct request *r)
{
    struct delete_records_request *req = r->body;
    struct delete_records_response *resp = r->resp;
    FANOUT(r, b, req, resp, topics, name, partitions, partitions, {
        to->partitions[j].partition_index = ti->partitions[j].partition_index;
        /* KafkaApis: DELETE on the topic. */
        to->partitions[j].error_code =
            authorize_kstr(b, r, ACL_OP_DELETE, ACL_RES_TOPIC, ti->name.ptr, ti->name.len)
                ? (int16_t)delete_one(t, &ti->partitions[j], &to->partitions[j].low_watermark)
                : KERR_TOPIC_AUTHORIZATION_FAILED;
    });
    return REQUEST_DONE;
}
