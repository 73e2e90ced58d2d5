/* ListGroups (16): every group this coordinator knows, classic and consumer (KIP-848),
 * optionally filtered by state (v4+) and type (v5+), case-insensitive as Kafka. In a cluster
 * these are the groups of the partitions this broker leads (Kafka's answer per broker), with
 * COORDINATOR_LOAD_IN_PROGRESS while one of them is loading. */
#include <stdlib.h>
#include <strings.h>

#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "proto/messages.h"

static bool state_wanted(const struct list_groups_request *req, int16_t version, const char *state)
{
    if (version < 4 || req->n_states_filter <= 0)
        return true;
    for (int32_t i = 0; i < req->n_states_filter; i++)
        if (req->states_filter[i].ptr && strcasecmp(req->states_filter[i].ptr, state) == 0)
            return true;
    return false;
}

static bool type_wanted(const struct list_groups_request *req, int16_t version, const char *type)
{
    if (version < 5 || req->n_types_filter <= 0)
        return true;
    for (int32_t i = 0; i < req->n_types_filter; i++)
        if (req->types_filter[i].ptr && strcasecmp(req->types_filter[i].ptr, type) == 0)
            return true;
    return false;
}

enum request_status handle_list_groups(struct broker *b, struct request *r)
{
    struct list_groups_request *req = r->body;
    struct list_groups_response *resp = r->resp;
    if (b->groups == NULL) {
        resp->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        RESP_ARRAY(r, resp->groups, 0);
        return REQUEST_DONE;
    }
    struct gc_group_summary *list = NULL;
    int n = gc_list(b->groups, &list);
    RESP_ARRAY(r, resp->groups, n);
    if (resp->groups == NULL) {
        free(list);
        return REQUEST_CLOSE;
    }
    int k = 0;
    /* KafkaApis: DESCRIBE on the cluster lists every group, else those it may DESCRIBE. */
    bool every = authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, false);
    for (int i = 0; i < n; i++) {
        const char *state = list[i].state_name;
        if (!state_wanted(req, r->api_version, state) ||
            !type_wanted(req, r->api_version, list[i].type))
            continue;
        if (!every && !authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, list[i].group_id, false))
            continue;
        struct list_groups_response_listed_group *g = &resp->groups[k++];
        g->group_id = gh_str_nn(r, list[i].group_id);
        g->protocol_type = gh_str_nn(r, list[i].protocol_type);
        g->group_state = kstr_of(state);
        g->group_type = kstr_of(list[i].type);
    }
    resp->n_groups = k;
    resp->error_code = group_store_loading(b) ? KERR_COORDINATOR_LOAD_IN_PROGRESS : KERR_NONE;
    free(list);
    return REQUEST_DONE;
}
