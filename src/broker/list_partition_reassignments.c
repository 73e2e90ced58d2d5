/* list_partition_reassignments: ListPartitionReassignments (46) on the controller, as Kafka
 * 3.9's ZooKeeper-mode KafkaController.processListPartitionReassignments: the partitions
 * asked (all, when null) that are being reassigned, with their full replica set, adding and
 * removing replicas as the TopicZNodes hold them. */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "proto/messages.h"

typedef struct list_partition_reassignments_response_ongoing_partition_reassignment ongoing_t;
typedef struct list_partition_reassignments_response_ongoing_topic_reassignment ongoing_topic_t;

static int ongoing_fill(struct request *r, const struct cluster_partition *cp, int32_t p,
                        ongoing_t *out)
{
    out->partition_index = p;
    RESP_ARRAY(r, out->replicas, cp->nreplicas);
    RESP_ARRAY(r, out->adding_replicas, cp->nadding);
    RESP_ARRAY(r, out->removing_replicas, cp->nremoving);
    if (out->replicas == NULL || out->adding_replicas == NULL || out->removing_replicas == NULL)
        return -1;
    memcpy(out->replicas, cp->replicas, sizeof(int32_t) * (size_t)cp->nreplicas);
    memcpy(out->adding_replicas, cp->adding, sizeof(int32_t) * (size_t)cp->nadding);
    memcpy(out->removing_replicas, cp->removing, sizeof(int32_t) * (size_t)cp->nremoving);
    out->n_replicas = cp->nreplicas;
    out->n_adding_replicas = cp->nadding;
    out->n_removing_replicas = cp->nremoving;
    return 0;
}

/* One topic's ongoing reassignments: the partitions listed (all when parts is NULL). 0, or -1
 * when the request's memory bound is reached. */
static int topic_fill(struct request *r, const struct cluster_topic *t, const int32_t *parts,
                      int32_t nparts, ongoing_topic_t *out)
{
    int32_t n = parts != NULL ? nparts : t->npartitions;
    RESP_ARRAY(r, out->partitions, n);
    if (out->partitions == NULL)
        return -1;
    out->name = kstr_of(request_strdup(r, t->name));
    out->n_partitions = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t p = parts != NULL ? parts[k] : k;
        bool seen = false;
        for (int32_t j = 0; parts != NULL && j < k && !seen; j++)
            seen = parts[j] == p; /* Kafka lists a set of partitions */
        if (seen || p < 0 || p >= t->npartitions || !cluster_reassigning(&t->parts[p]))
            continue;
        if (ongoing_fill(r, &t->parts[p], p, &out->partitions[out->n_partitions++]) != 0)
            return -1;
    }
    return 0;
}

enum request_status handle_list_partition_reassignments(struct broker *b, struct request *r)
{
    struct list_partition_reassignments_request *req = r->body;
    struct list_partition_reassignments_response *resp = r->resp;
    if (!authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED; /* KafkaApis: DESCRIBE on it */
        resp->error_message = kstr_null();
        return REQUEST_DONE;
    }
    if (b->cluster == NULL || !cluster_is_controller(b->cluster)) {
        resp->error_code = KERR_NOT_CONTROLLER;
        resp->error_message = kstr_of("This is not the correct controller for this cluster.");
        return REQUEST_DONE;
    }
    struct cluster_topic *const *ts;
    int nt = cluster_topics(b->cluster, &ts);
    int32_t max = req->n_topics >= 0 ? req->n_topics : nt;
    RESP_ARRAY(r, resp->topics, max);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = 0;
    for (int32_t i = 0; i < max; i++) {
        const struct cluster_topic *t = NULL;
        const int32_t *parts = NULL;
        int32_t nparts = 0;
        if (req->n_topics >= 0) {
            const struct list_partition_reassignments_request_list_partition_reassignments_topics
                *in = &req->topics[i];
            char name[CLUSTER_TOPIC_NAME_MAX];
            if (in->name.len <= 0 || in->name.len >= CLUSTER_TOPIC_NAME_MAX)
                continue;
            memcpy(name, in->name.ptr, (size_t)in->name.len);
            name[in->name.len] = '\0';
            t = cluster_topic_find(b->cluster, name);
            parts = in->partition_indexes;
            nparts = in->n_partition_indexes > 0 ? in->n_partition_indexes : 0;
            bool again = false; /* a topic named twice answers once */
            for (int32_t j = 0; t != NULL && j < resp->n_topics && !again; j++)
                again = strcmp(resp->topics[j].name.ptr, t->name) == 0;
            if (again)
                continue;
        } else {
            t = cluster_topic_visible(ts[i]) ? ts[i] : NULL;
        }
        if (t == NULL)
            continue;
        ongoing_topic_t *out = &resp->topics[resp->n_topics];
        if (topic_fill(r, t, parts, nparts, out) != 0)
            return REQUEST_CLOSE;
        if (out->n_partitions > 0)
            resp->n_topics++;
    }
    return REQUEST_DONE;
}
