/* AlterConfigs (33): replaces a topic's whole set of overrides, or a broker's dynamic configs
 * (resource "" for the cluster-wide default), the legacy, non-incremental semantics. */
#include <stdio.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "cluster/cluster.h"
#include "broker/kutil.h"
#include "proto/messages.h"

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4

static int alter_broker(struct broker *b, struct request *r, bool validate_only,
                        const struct alter_configs_request_alter_configs_resource *in,
                        struct config_answer *ans, char *msg, size_t msglen)
{
    int32_t nc = in->n_configs > 0 ? in->n_configs : 0;
    struct dynamic_config_op *ops = request_alloc(r, sizeof(*ops) * (size_t)(nc + 1));
    if (ops == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    for (int32_t k = 0; k < nc; k++) {
        if (in->configs[k].name.ptr == NULL) {
            snprintf(msg, msglen, "Null config name");
            return KERR_INVALID_REQUEST;
        }
        ops[k].key = in->configs[k].name.ptr;
        ops[k].value = in->configs[k].value.ptr;
        ops[k].op = 0;
    }
    return dynamic_configs_alter_answered(b, in->resource_name.ptr ? in->resource_name.ptr : "",
                                          ops, nc, true, validate_only, ans, msg, msglen);
}

enum request_status handle_alter_configs(struct broker *b, struct request *r)
{
    struct alter_configs_request *req = r->body;
    struct alter_configs_response *resp = r->resp;
    int32_t n = req->n_resources > 0 ? req->n_resources : 0;
    RESP_ARRAY(r, resp->responses, n);
    if (resp->responses == NULL)
        return REQUEST_CLOSE;
    resp->n_responses = n;
    /* On a cluster the changes go to ZooKeeper: answered once written. */
    struct config_answers *all = request_alloc(r, sizeof(*all));
    struct config_answer *ans = request_alloc(r, sizeof(*ans) * (size_t)(n > 0 ? n : 1));
    if (all == NULL || ans == NULL)
        return REQUEST_CLOSE;
    *all = (struct config_answers){.r = r};
    for (int32_t i = 0; i < n; i++) {
        struct alter_configs_request_alter_configs_resource *in = &req->resources[i];
        struct alter_configs_response_alter_configs_resource_response *out = &resp->responses[i];
        out->resource_type = in->resource_type;
        out->resource_name = in->resource_name.ptr ? in->resource_name : kstr_of("");
        out->error_message = kstr_null();
        char msg[512] = "";
        int e = KERR_NONE;
        struct topic *t = NULL;
        ans[i] = (struct config_answer){all, &out->error_code, &out->error_message};
        const char *name = in->resource_name.ptr ? in->resource_name.ptr : "";
        bool in_zk = b->cluster != NULL && cluster_topic_find(b->cluster, name) != NULL;
        int denied = authorize_config_resource(b, r, in->resource_type, in->resource_name.ptr,
                                               in->resource_name.len, ACL_OP_ALTER_CONFIGS);
        if (denied != KERR_NONE) {
            out->error_code = (int16_t)denied;
            continue;
        }
        if (in->resource_type == RESOURCE_BROKER) {
            e = alter_broker(b, r, req->validate_only, in, &ans[i], msg, sizeof(msg));
            out->error_code = (int16_t)e;
            if (msg[0] && e != KERR_NONE)
                out->error_message = kstr_of(request_strdup(r, msg));
            continue;
        }
        if (in->resource_type != RESOURCE_TOPIC) {
            e = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "Unknown resource type %d", in->resource_type);
        } else if (!in_zk && (t = topic_find_name(b, in->resource_name)) == NULL) {
            e = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (b->cluster != NULL) /* AdminZkClient.validateTopicConfig's words */
                snprintf(msg, sizeof(msg), "Topic '%s' does not exist.", name);
            else
                snprintf(msg, sizeof(msg), "Topic does not exist");
        }
        int32_t nc = in->n_configs > 0 ? in->n_configs : 0;
        struct topic_config_kv *kv = request_alloc(r, sizeof(*kv) * (size_t)(nc + 1));
        for (int32_t k = 0; e == KERR_NONE && k < nc; k++) {
            const char *key = in->configs[k].name.ptr, *val = in->configs[k].value.ptr;
            if (kv == NULL || key == NULL || val == NULL) {
                e = KERR_INVALID_CONFIG;
                snprintf(msg, sizeof(msg), "Null value not supported for topic configs: %s",
                         key ? key : "");
                break;
            }
            e = topic_config_check(key, val, msg, sizeof(msg));
            snprintf(kv[k].key, sizeof(kv[k].key), "%s", key);
            snprintf(kv[k].value, sizeof(kv[k].value), "%s", val);
        }
        if (e == KERR_NONE && !req->validate_only && in_zk)
            e = topic_configs_write(b, name, kv, nc, &ans[i], msg, sizeof(msg));
        else if (e == KERR_NONE && !req->validate_only)
            e = topic_set_overrides(b, t, kv, nc);
        out->error_code = (int16_t)e;
        if (msg[0] && e != KERR_NONE)
            out->error_message = kstr_of(request_strdup(r, msg));
    }
    return (enum request_status)config_answers_pending(all);
}
