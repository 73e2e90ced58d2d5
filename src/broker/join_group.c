/* JoinGroup (11): decodes the member's protocols and hands the join to the group coordinator,
 * which answers now (errors, MEMBER_ID_REQUIRED, a rejoin of the current generation) or when
 * the rebalance completes. */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "proto/messages.h"

static void join_done(void *arg, const struct gc_join_result *res)
{
    struct gh_wait *w = arg;
    struct request *r = w->r;
    struct join_group_response *resp = r->resp;
    bool v7 = r->api_version >= 7;
    resp->error_code = res->error;
    resp->generation_id = res->generation;
    resp->protocol_type = v7 ? gh_str(r, res->protocol_type) : gh_str_nn(r, res->protocol_type);
    resp->protocol_name = v7 ? gh_str(r, res->protocol_name) : gh_str_nn(r, res->protocol_name);
    resp->leader = gh_str_nn(r, res->leader);
    resp->member_id = gh_str_nn(r, res->member_id);
    resp->skip_assignment = res->skip_assignment;
    if (res->n_members > 0) {
        RESP_ARRAY(r, resp->members, res->n_members);
        if (resp->members == NULL) {
            resp->error_code = KERR_UNKNOWN_SERVER_ERROR;
        } else {
            resp->n_members = res->n_members;
            for (int i = 0; i < res->n_members; i++) {
                const struct gc_member_info *m = &res->members[i];
                resp->members[i].member_id = gh_str_nn(r, m->member_id);
                resp->members[i].group_instance_id = gh_str(r, m->instance_id);
                resp->members[i].metadata = gh_bytes(r, m->metadata, m->metadata_len);
            }
        }
    }
    gh_wait_complete(w);
}

enum request_status handle_join_group(struct broker *b, struct request *r)
{
    struct join_group_request *req = r->body;
    struct join_group_response *resp = r->resp;
    resp->generation_id = -1;
    resp->protocol_type = r->api_version >= 7 ? kstr_null() : kstr_of("");
    resp->protocol_name = r->api_version >= 7 ? kstr_null() : kstr_of("");
    resp->leader = kstr_of("");
    resp->member_id = req->member_id.ptr ? req->member_id : kstr_of("");
    if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len)) {
        resp->error_code = KERR_GROUP_AUTHORIZATION_FAILED; /* KafkaApis: READ on the group */
        return REQUEST_DONE;
    }
    resp->error_code = group_store_check(b, req->group_id.ptr);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    resp->error_code = gh_ids_error(req->group_id, req->member_id, req->group_instance_id);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    int n = req->n_protocols > 0 ? req->n_protocols : 0;
    struct gc_protocol *protocols = request_alloc(r, sizeof(*protocols) * ((size_t)n + 1));
    struct gh_wait *w = request_alloc(r, sizeof(*w));
    if (protocols == NULL || w == NULL)
        return REQUEST_CLOSE;
    for (int i = 0; i < n; i++) {
        protocols[i].name = req->protocols[i].name.ptr ? req->protocols[i].name.ptr : "";
        protocols[i].metadata = req->protocols[i].metadata.ptr;
        protocols[i].metadata_len = req->protocols[i].metadata.len;
    }
    struct gc_join_args a = {
        .version = r->api_version,
        .group_id = req->group_id.ptr,
        .member_id = req->member_id.ptr ? req->member_id.ptr : "",
        .instance_id = req->group_instance_id.ptr,
        .client_id = r->client_id.ptr ? r->client_id.ptr : "",
        .client_host = gh_client_host(r),
        .session_timeout_ms = req->session_timeout_ms,
        .rebalance_timeout_ms =
            r->api_version >= 1 ? req->rebalance_timeout_ms : req->session_timeout_ms,
        .protocol_type = req->protocol_type.ptr,
        .protocols = protocols,
        .n_protocols = n,
        .reason = r->api_version >= 8 ? req->reason.ptr : NULL,
    };
    w->r = r;
    w->in_handler = true;
    gc_join(b->groups, &a, join_done, w);
    w->in_handler = false;
    return w->done ? REQUEST_DONE : REQUEST_PENDING;
}
