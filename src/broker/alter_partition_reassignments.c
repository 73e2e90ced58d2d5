/* alter_partition_reassignments: AlterPartitionReassignments (45) on the controller, as Kafka
 * 3.9's ZooKeeper-mode KafkaApis + KafkaController.processApiPartitionReassignment: each
 * partition is checked and started (or cancelled, Replicas null) by cluster_reassign; the
 * answer comes once the starts are written to ZooKeeper and read back. */
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "proto/messages.h"

/* Kafka's ApiError(error) carries the error's default message when it has none. */
static const char *default_message(int e)
{
    switch (e) {
    case KERR_NOT_CONTROLLER:
        return "This is not the correct controller for this cluster.";
    case CLUSTER_ERR_NO_REASSIGNMENT_IN_PROGRESS:
        return "No partition reassignment is in progress.";
    case KERR_REQUEST_TIMED_OUT:
        return "The request timed out.";
    default:
        return NULL;
    }
}

static void reassignments_written(void *arg, int kerr, const char *msg)
{
    (void)msg;
    struct request *r = arg;
    struct alter_partition_reassignments_response *resp = r->resp;
    /* Started but not read back by the deadline (or the controller moved meanwhile). */
    for (int32_t i = 0; kerr != KERR_NONE && i < resp->n_responses; i++)
        for (int32_t k = 0; k < resp->responses[i].n_partitions; k++) {
            struct alter_partition_reassignments_response_reassignable_partition_response *pr =
                &resp->responses[i].partitions[k];
            if (pr->error_code == KERR_NONE) {
                pr->error_code = (int16_t)kerr;
                pr->error_message = kstr_of(default_message(kerr));
            }
        }
    request_finish(r);
}

enum request_status handle_alter_partition_reassignments(struct broker *b, struct request *r)
{
    struct alter_partition_reassignments_request *req = r->body;
    struct alter_partition_reassignments_response *resp = r->resp;
    if (!authorize(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED; /* KafkaApis: ALTER on the cluster */
        return REQUEST_DONE;
    }
    if (b->cluster == NULL || !cluster_is_controller(b->cluster)) {
        /* One node has no controller; another broker answers as Kafka's inactive one. */
        resp->error_code = KERR_NOT_CONTROLLER;
        resp->error_message = kstr_of(default_message(KERR_NOT_CONTROLLER));
        return REQUEST_DONE;
    }
    int32_t nt = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->responses, nt);
    if (resp->responses == NULL)
        return REQUEST_CLOSE;
    resp->n_responses = nt;
    bool started = false;
    for (int32_t i = 0; i < nt; i++) {
        const struct alter_partition_reassignments_request_reassignable_topic *in = &req->topics[i];
        struct alter_partition_reassignments_response_reassignable_topic_response *out =
            &resp->responses[i];
        int32_t np = in->n_partitions > 0 ? in->n_partitions : 0;
        int32_t len = in->name.len > 0 ? in->name.len : 0;
        char *topic = request_alloc(r, (size_t)len + 1);
        RESP_ARRAY(r, out->partitions, np);
        if (topic == NULL || out->partitions == NULL)
            return REQUEST_CLOSE;
        memcpy(topic, in->name.ptr, (size_t)len);
        topic[len] = '\0';
        out->name = in->name.ptr ? in->name : kstr_of("");
        out->n_partitions = np;
        for (int32_t k = 0; k < np; k++) {
            const struct alter_partition_reassignments_request_reassignable_partition *p =
                &in->partitions[k];
            char msg[1024];
            static const int32_t no_replicas[1] = {-1}; /* an empty list, not a cancel */
            const int32_t *replicas = p->n_replicas < 0 ? NULL
                                      : p->n_replicas == 0 ? no_replicas
                                                            : p->replicas;
            int e = cluster_reassign(b->cluster, topic, p->partition_index, replicas,
                                     p->n_replicas >= 0 ? p->n_replicas : 0, msg, sizeof(msg));
            out->partitions[k].partition_index = p->partition_index;
            out->partitions[k].error_code = (int16_t)e;
            out->partitions[k].error_message =
                msg[0] ? kstr_of(request_strdup(r, msg)) : kstr_of(default_message(e));
            started |= e == KERR_NONE;
        }
    }
    if (started && cluster_await_reassignments(b->cluster, req->timeout_ms, reassignments_written,
                                               r))
        return REQUEST_PENDING;
    return REQUEST_DONE;
}
