/* OffsetDelete (47): removes committed offsets of a group for partitions its members are not
 * subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). */
#include "broker/authorizer.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "proto/messages.h"

enum request_status handle_offset_delete(struct broker *b, struct request *r)
{
    struct offset_delete_request *req = r->body;
    struct offset_delete_response *resp = r->resp;
    int32_t nt = req->n_topics > 0 ? req->n_topics : 0;
    int total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->topics[i].n_partitions > 0 ? req->topics[i].n_partitions : 0;
    struct gc_commit_partition *parts = request_alloc(r, sizeof(*parts) * ((size_t)total + 1));
    RESP_ARRAY(r, resp->topics, 0);
    if (parts == NULL || resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->error_code = group_store_check(b, req->group_id.ptr);
    /* KafkaApis: DELETE on the group, then READ on each topic. */
    if (!authorize_kstr(b, r, ACL_OP_DELETE, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len))
        resp->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
    if (resp->error_code != KERR_NONE) {
        return REQUEST_DONE;
    }
    if (kstr_has_nul(req->group_id)) {
        resp->error_code = KERR_INVALID_GROUP_ID;
        return REQUEST_DONE;
    }
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        struct offset_delete_request_offset_delete_request_topic *rt = &req->topics[i];
        struct topic *t = topic_find_name(b, rt->name);
        int32_t np = rt->n_partitions > 0 ? rt->n_partitions : 0;
        for (int32_t j = 0; j < np; j++) {
            struct gc_commit_partition *p = &parts[k++];
            p->topic = rt->name.ptr ? rt->name.ptr : "";
            p->partition = rt->partitions[j].partition_index;
            p->offset = -1;
            if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_TOPIC, rt->name.ptr, rt->name.len))
                p->error = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (t == NULL || p->partition < 0 || p->partition >= t->npartitions)
                p->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    }
    resp->error_code = gc_offset_delete(b->groups, req->group_id.ptr, parts, total);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    k = 0;
    FANOUT(r, b, req, resp, topics, name, partitions, partitions, {
        to->partitions[j].partition_index = parts[k].partition;
        to->partitions[j].error_code = parts[k].error;
        k++;
    });
    return REQUEST_DONE;
}
