/* OffsetForLeaderEpoch (23): the partition's epoch cache answers (on this single node every
 * partition lives in leader epoch 0, so the end offset of epoch 0 is the log end; later epochs
 * are unknown). */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

enum request_status handle_offset_for_leader_epoch(struct broker *b, struct request *r)
{
    struct offset_for_leader_epoch_request *req = r->body;
    struct offset_for_leader_epoch_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->topics, n);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = n;
    for (int32_t i = 0; i < n; i++) {
        struct offset_for_leader_epoch_request_offset_for_leader_topic *in = &req->topics[i];
        struct offset_for_leader_epoch_response_offset_for_leader_topic_result *out = &resp->topics[i];
        out->topic = in->topic.ptr ? in->topic : kstr_of("");
        struct topic *t = topic_find_name(b, in->topic);
        int32_t np = in->n_partitions > 0 ? in->n_partitions : 0;
        RESP_ARRAY(r, out->partitions, np);
        if (out->partitions == NULL)
            return REQUEST_CLOSE;
        out->n_partitions = np;
        for (int32_t j = 0; j < np; j++) {
            struct offset_for_leader_epoch_request_offset_for_leader_partition *pin = &in->partitions[j];
            struct offset_for_leader_epoch_response_epoch_end_offset *po = &out->partitions[j];
            po->partition = pin->partition;
            po->leader_epoch = -1;
            po->end_offset = -1;
            if (t == NULL || pin->partition < 0 || pin->partition >= t->npartitions) {
                po->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                struct partition *p = t->partitions[pin->partition];
                po->error_code = (int16_t)partition_check_leader_epoch(p, pin->current_leader_epoch);
                if (po->error_code == KERR_NONE)
                    partition_epoch_end_offset(p, pin->leader_epoch, &po->leader_epoch, &po->end_offset);
            }
        }
    }
    return REQUEST_DONE;
}
