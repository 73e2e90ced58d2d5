/* OffsetCommit (8; v0 refused per partition, as Kafka 3.9 without ZooKeeper): checks topics exist, then the coordinator validates the member/generation
 * and persists the offsets to __consumer_offsets. */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/coordinator.h"
#include "proto/messages.h"

/* The partition count of a topic: ZooKeeper's in a cluster (the coordinator commits offsets
 * of topics that other brokers lead and that are not open here), else the local one; -1 when
 * there is no such topic. */
static int32_t topic_partitions(struct broker *b, struct kstr name)
{
    if (b->cluster != NULL) {
        char n[CLUSTER_TOPIC_NAME_MAX];
        if (name.ptr == NULL || name.len <= 0 || name.len >= (int32_t)sizeof(n) ||
            kstr_has_nul(name))
            return -1;
        memcpy(n, name.ptr, (size_t)name.len);
        n[name.len] = '\0';
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, n);
        return ct != NULL && ct->read ? ct->npartitions : -1;
    }
    struct topic *t = topic_find_name(b, name);
    return t != NULL ? t->npartitions : -1;
}

/* A write the ISR did not get (group_store_await_isr). */
static void commit_set_error(struct request *r, int16_t error)
{
    struct offset_commit_response *resp = r->resp;
    GH_SET_UNANSWERED_PARTITIONS(resp, error);
}

enum request_status handle_offset_commit(struct broker *b, struct request *r)
{
    struct offset_commit_request *req = r->body;
    struct offset_commit_response *resp = r->resp;
    int32_t nt = req->n_topics > 0 ? req->n_topics : 0;
    int total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->topics[i].n_partitions > 0 ? req->topics[i].n_partitions : 0;
    struct gc_commit_partition *parts = request_alloc(r, sizeof(*parts) * ((size_t)total + 1));
    if (parts == NULL)
        return REQUEST_CLOSE;
    int16_t coordinator = group_store_check(b, req->group_id.ptr);
    /* KafkaApis: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED), then
     * READ on each topic (TOPIC_AUTHORIZATION_FAILED for its partitions). */
    if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len))
        coordinator = KERR_GROUP_AUTHORIZATION_FAILED;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        struct offset_commit_request_offset_commit_request_topic *rt = &req->topics[i];
        int32_t nparts = topic_partitions(b, rt->name);
        int32_t np = rt->n_partitions > 0 ? rt->n_partitions : 0;
        bool topic_denied = coordinator != KERR_GROUP_AUTHORIZATION_FAILED &&
                            !authorize_kstr(b, r, ACL_OP_READ, ACL_RES_TOPIC, rt->name.ptr,
                                            rt->name.len);
        for (int32_t j = 0; j < np; j++) {
            struct offset_commit_request_offset_commit_request_partition *rp = &rt->partitions[j];
            struct gc_commit_partition *p = &parts[k++];
            p->topic = rt->name.ptr ? rt->name.ptr : "";
            p->partition = rp->partition_index;
            p->offset = rp->committed_offset;
            p->leader_epoch = r->api_version >= 6 ? rp->committed_leader_epoch : -1;
            p->metadata = rp->committed_metadata.ptr; /* bytes: NULs included */
            p->metadata_len = rp->committed_metadata.len;
            if (coordinator == KERR_GROUP_AUTHORIZATION_FAILED)
                p->error = KERR_GROUP_AUTHORIZATION_FAILED;
            else if (topic_denied)
                p->error = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (kstr_has_nul(req->group_id))
                p->error = KERR_INVALID_GROUP_ID; /* would read as another group's id */
            else if (rp->partition_index < 0 || rp->partition_index >= nparts)
                p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (coordinator != KERR_NONE)
                p->error = coordinator;
        }
    }
    /* v0 commits went to ZooKeeper; Kafka 3.9 in KRaft mode (no ZooKeeper, as here) refused
     * them: every partition UNSUPPORTED_VERSION (requireZkOrThrow). */
    bool zookeeper_only = r->api_version == 0;
    if (zookeeper_only) {
        for (int i = 0; i < total; i++)
            parts[i].error = KERR_UNSUPPORTED_VERSION;
        LOG_LIMITED(LOG_LEVEL_INFO, "KafkaApis", "OffsetCommit v0 of group %.*s refused: version 0 "
                    "commits were stored in ZooKeeper, which this broker has not (client %s)",
                    req->group_id.len > 0 ? req->group_id.len : 0,
                    req->group_id.ptr ? req->group_id.ptr : "",
                    r->client_id.ptr ? r->client_id.ptr : "");
    }
    if (coordinator == KERR_NONE && !kstr_has_nul(req->group_id) && !zookeeper_only) {
        struct gc_commit_args a = {
            .group_id = req->group_id.ptr,
            .generation = req->generation_id_or_member_epoch,
            .member_id = req->member_id.ptr ? req->member_id.ptr : "",
            .instance_id = r->api_version >= 7 ? req->group_instance_id.ptr : NULL,
            .retention_ms = r->api_version <= 4 ? req->retention_time_ms : -1,
            .version = r->api_version,
        };
        gc_offset_commit(b->groups, &a, parts, total);
    }
    k = 0;
    FANOUT(r, b, req, resp, topics, name, partitions, partitions, {
        to->partitions[j].partition_index = parts[k].partition;
        to->partitions[j].error_code = parts[k].error;
        k++;
    });
    bool written = false;
    for (int i = 0; i < total && !written; i++)
        written = parts[i].error == KERR_NONE && coordinator == KERR_NONE && !zookeeper_only;
    return written && group_store_await_isr(b, r, req->group_id.ptr, commit_set_error)
               ? REQUEST_PENDING
               : REQUEST_DONE;
}
