/* OffsetForLeaderEpoch (23): the partition's epoch cache answers (on this single node every
 * partition lives in leader epoch 0, so the end offset of epoch 0 is the log end; later epochs
 * are unknown). */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

static void epoch_end(struct topic *t, const struct offset_for_leader_epoch_request_offset_for_leader_partition *pin,
                      struct offset_for_leader_epoch_response_epoch_end_offset *po)
{
    po->partition = pin->partition;
    po->leader_epoch = -1;
    po->end_offset = -1;
    if (t == NULL || pin->partition < 0 || pin->partition >= t->npartitions) {
        po->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    struct partition *p = t->partitions[pin->partition];
    po->error_code = (int16_t)partition_check_leader_epoch(p, pin->current_leader_epoch);
    if (po->error_code == KERR_NONE)
        partition_epoch_end_offset(p, pin->leader_epoch, &po->leader_epoch, &po->end_offset);
}

enum request_status handle_offset_for_leader_epoch(struct broker *b, struct request *r)
{
    struct offset_for_leader_epoch_request *req = r->body;
    struct offset_for_leader_epoch_response *resp = r->resp;
    /* KafkaApis: a follower (ReplicaId >= 0, v3+) needs CLUSTER_ACTION, a client DESCRIBE on
     * the topic; denied partitions answer TOPIC_AUTHORIZATION_FAILED. */
    bool follower = r->api_version >= 3 && req->replica_id >= 0;
    bool cluster_action = follower && authorize(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER,
                                                ACL_CLUSTER_NAME, true);
    FANOUT(r, b, req, resp, topics, topic, partitions, partitions, {
        if (follower ? cluster_action
                     : authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, ti->topic.ptr,
                                      ti->topic.len)) {
            epoch_end(t, &ti->partitions[j], &to->partitions[j]);
        } else {
            epoch_end(NULL, &ti->partitions[j], &to->partitions[j]);
            to->partitions[j].error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
        }
    });
    return REQUEST_DONE;
}
