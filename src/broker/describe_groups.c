/* DescribeGroups (15): state, protocol and members of each classic group. A group that is not
 * one (unknown, or a KIP-848 consumer group) is Dead with no members, and from v6 also
 * GROUP_ID_NOT_FOUND with Kafka 4.1's message (KIP-1043). */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "proto/messages.h"

static void describe_one(struct broker *b, struct request *r, const struct kstr *id,
                         struct describe_groups_response_described_group *out)
{
    out->group_id = id->ptr ? *id : kstr_of("");
    out->authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
    out->group_state = kstr_of("Dead");
    out->protocol_type = kstr_of("");
    out->protocol_data = kstr_of("");
    RESP_ARRAY(r, out->members, 0);
    out->error_code = group_store_check(b, id->ptr);
    if (out->error_code != KERR_NONE)
        return;
    if (id->ptr == NULL || kstr_has_nul(*id)) {
        out->error_code = KERR_INVALID_GROUP_ID;
        return;
    }
    struct gc_group_desc d;
    gc_describe(b->groups, id->ptr, &d);
    out->error_code = KERR_NONE;
    if (!d.found && r->api_version >= 6) {
        out->error_code = KERR_GROUP_ID_NOT_FOUND;
        char msg[512];
        snprintf(msg, sizeof(msg),
                 d.consumer ? "Group %s is not a classic group." : "Group %s not found.", id->ptr);
        out->error_message = gh_str(r, msg);
    }
    out->group_state = kstr_of(gc_state_name(d.state));
    out->protocol_type = gh_str_nn(r, d.protocol_type);
    out->protocol_data = gh_str_nn(r, d.protocol);
    if (d.n_members > 0) {
        RESP_ARRAY(r, out->members, d.n_members);
        if (out->members == NULL) {
            out->error_code = KERR_UNKNOWN_SERVER_ERROR;
        } else {
            out->n_members = d.n_members;
            for (int i = 0; i < d.n_members; i++) {
                struct describe_groups_response_described_group_member *m = &out->members[i];
                m->member_id = gh_str_nn(r, d.members[i].member_id);
                m->group_instance_id = gh_str(r, d.members[i].instance_id);
                m->client_id = gh_str_nn(r, d.members[i].client_id);
                m->client_host = gh_str_nn(r, d.members[i].client_host);
                m->member_metadata = gh_bytes(r, d.members[i].metadata, d.members[i].metadata_len);
                m->member_assignment =
                    gh_bytes(r, d.members[i].assignment, d.members[i].assignment_len);
            }
        }
    }
    gc_describe_free(&d);
}

enum request_status handle_describe_groups(struct broker *b, struct request *r)
{
    struct describe_groups_request *req = r->body;
    struct describe_groups_response *resp = r->resp;
    int32_t n = req->n_groups > 0 ? req->n_groups : 0;
    RESP_ARRAY(r, resp->groups, n);
    if (resp->groups == NULL)
        return REQUEST_CLOSE;
    resp->n_groups = n;
    bool ops = r->api_version >= 3 && req->include_authorized_operations;
    for (int32_t i = 0; i < n; i++) {
        describe_one(b, r, &req->groups[i], &resp->groups[i]);
        /* KafkaApis: DESCRIBE on the group, else only GROUP_AUTHORIZATION_FAILED. */
        if (!authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, req->groups[i].ptr,
                            req->groups[i].len)) {
            resp->groups[i].group_state = kstr_of("");
            resp->groups[i].n_members = 0;
            resp->groups[i].error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            continue;
        }
        /* As Kafka: only groups described without an error (a Dead group before v6 has none). */
        if (ops && resp->groups[i].error_code == KERR_NONE)
            resp->groups[i].authorized_operations =
                authorized_operations(b, r, ACL_RES_GROUP, resp->groups[i].group_id.ptr);
    }
    return REQUEST_DONE;
}
