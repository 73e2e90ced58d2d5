/* Heartbeat (12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin. */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "proto/messages.h"

enum request_status handle_heartbeat(struct broker *b, struct request *r)
{
    struct heartbeat_request *req = r->body;
    struct heartbeat_response *resp = r->resp;
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
    resp->error_code = gc_heartbeat(b->groups, req->group_id.ptr, req->generation_id,
                                    req->member_id.ptr ? req->member_id.ptr : "",
                                    req->group_instance_id.ptr);
    return REQUEST_DONE;
}
