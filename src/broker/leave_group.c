/* LeaveGroup (13): one member (v0-2) or a batch of members by id / instance id (v3+). */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "proto/messages.h"

enum request_status handle_leave_group(struct broker *b, struct request *r)
{
    struct leave_group_request *req = r->body;
    struct leave_group_response *resp = r->resp;
    if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len)) {
        resp->error_code = KERR_GROUP_AUTHORIZATION_FAILED; /* KafkaApis: READ on the group */
        return REQUEST_DONE;
    }
    resp->error_code = group_store_check(b, req->group_id.ptr);
    if (resp->error_code != KERR_NONE) {
        return REQUEST_DONE;
    }
    if (kstr_has_nul(req->group_id)) {
        resp->error_code = KERR_INVALID_GROUP_ID;
        return REQUEST_DONE;
    }
    bool batched = r->api_version >= 3;
    int n = batched ? (req->n_members > 0 ? req->n_members : 0) : 1;
    struct gc_leave_member *lm = request_alloc(r, sizeof(*lm) * ((size_t)n + 1));
    if (lm == NULL)
        return REQUEST_CLOSE;
    if (!batched) {
        lm[0].member_id = req->member_id.ptr ? req->member_id.ptr : "";
    } else {
        for (int i = 0; i < n; i++) {
            lm[i].member_id = req->members[i].member_id.ptr ? req->members[i].member_id.ptr : "";
            lm[i].instance_id = req->members[i].group_instance_id.ptr;
        }
    }
    int16_t top = gc_leave(b->groups, req->group_id.ptr, lm, n);
    resp->error_code = top;
    if (!batched) {
        if (top == KERR_NONE)
            resp->error_code = lm[0].error;
        return REQUEST_DONE;
    }
    if (top != KERR_NONE)
        return REQUEST_DONE;
    RESP_ARRAY(r, resp->members, n);
    if (resp->members == NULL)
        return REQUEST_CLOSE;
    resp->n_members = n;
    for (int i = 0; i < n; i++) {
        resp->members[i].member_id = req->members[i].member_id.ptr ? req->members[i].member_id
                                                                   : kstr_of("");
        resp->members[i].group_instance_id = req->members[i].group_instance_id;
        resp->members[i].error_code = lm[i].error;
    }
    return REQUEST_DONE;
}
