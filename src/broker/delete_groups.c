/* DeleteGroups (42): removes empty groups and their committed offsets (tombstones in
 * __consumer_offsets); NON_EMPTY_GROUP while members remain. */
#include "broker/authorizer.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "proto/messages.h"

enum request_status handle_delete_groups(struct broker *b, struct request *r)
{
    struct delete_groups_request *req = r->body;
    struct delete_groups_response *resp = r->resp;
    int32_t n = req->n_groups_names > 0 ? req->n_groups_names : 0;
    RESP_ARRAY(r, resp->results, n);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    resp->n_results = n;
    for (int32_t i = 0; i < n; i++) {
        const struct kstr *id = &req->groups_names[i];
        resp->results[i].group_id = id->ptr ? *id : kstr_of("");
        int16_t e = group_store_check(b, id->ptr);
        if (!authorize_kstr(b, r, ACL_OP_DELETE, ACL_RES_GROUP, id->ptr, id->len))
            resp->results[i].error_code = KERR_GROUP_AUTHORIZATION_FAILED; /* DELETE on it */
        else if (e != KERR_NONE)
            resp->results[i].error_code = e;
        else if (kstr_has_nul(*id))
            resp->results[i].error_code = KERR_INVALID_GROUP_ID;
        else
            resp->results[i].error_code = gc_delete_group(b->groups, id->ptr);
    }
    return REQUEST_DONE;
}
