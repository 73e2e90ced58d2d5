/* Heartbeat (12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin. */
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "group/group_handlers.h"
#include "proto/messages.h"

enum request_status handle_heartbeat(struct broker *b, struct request *r)
{
    struct heartbeat_request *req = r->body;
    struct heartbeat_response *resp = r->resp;
    if (b->groups == NULL) {
        resp->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        return REQUEST_DONE;
    }
    if (kstr_has_nul(req->group_id)) {
        resp->error_code = KERR_INVALID_GROUP_ID;
        return REQUEST_DONE;
    }
    if (kstr_has_nul(req->member_id) || kstr_has_nul(req->group_instance_id)) {
        resp->error_code = KERR_UNKNOWN_MEMBER_ID; /* no member has such an id */
        return REQUEST_DONE;
    }
    resp->error_code = gc_heartbeat(b->groups, req->group_id.ptr, req->generation_id,
                                    req->member_id.ptr ? req->member_id.ptr : "",
                                    req->group_instance_id.ptr);
    return REQUEST_DONE;
}
