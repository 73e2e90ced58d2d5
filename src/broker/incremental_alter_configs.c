/* IncrementalAlterConfigs (44): SET/DELETE (APPEND/SUBTRACT refused: no list-valued topic
 * configs are honoured here) on a topic's overrides. */
#include <stdio.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

#define RESOURCE_TOPIC 2
#define OP_SET 0
#define OP_DELETE 1

#define MAX_OVERRIDES 64

static int apply_ops(struct broker *b, const struct topic *t,
                     const struct incremental_alter_configs_request_alter_configs_resource *in,
                     struct topic_config_kv *kv, int *nkv, char *msg, size_t msglen)
{
    *nkv = 0;
    for (int i = 0; i < t->noverrides && i < MAX_OVERRIDES; i++)
        kv[(*nkv)++] = t->overrides[i];
    for (int32_t k = 0; k < in->n_configs; k++) {
        const struct incremental_alter_configs_request_alterable_config *c = &in->configs[k];
        if (c->name.ptr == NULL) {
            snprintf(msg, msglen, "Null config name");
            return KERR_INVALID_CONFIG;
        }
        int at = -1;
        for (int i = 0; i < *nkv; i++)
            if (strcmp(kv[i].key, c->name.ptr) == 0)
                at = i;
        if (c->config_operation == OP_DELETE) {
            if (at >= 0)
                kv[at] = kv[--(*nkv)];
            continue;
        }
        if (c->config_operation != OP_SET) {
            snprintf(msg, msglen, "Config operation %d is not supported for %s", c->config_operation, c->name.ptr);
            return KERR_INVALID_CONFIG;
        }
        if (c->value.ptr == NULL) {
            snprintf(msg, msglen, "Null value for %s", c->name.ptr);
            return KERR_INVALID_CONFIG;
        }
        struct log_config scratch = b->cfg.log;
        int e = topic_config_apply(&scratch, c->name.ptr, c->value.ptr, msg, msglen);
        if (e != KERR_NONE)
            return e;
        if (at < 0) {
            if (*nkv == MAX_OVERRIDES) {
                snprintf(msg, msglen, "Too many config overrides");
                return KERR_INVALID_CONFIG;
            }
            at = (*nkv)++;
        }
        snprintf(kv[at].key, sizeof(kv[at].key), "%s", c->name.ptr);
        snprintf(kv[at].value, sizeof(kv[at].value), "%s", c->value.ptr);
    }
    return KERR_NONE;
}

enum request_status handle_incremental_alter_configs(struct broker *b, struct request *r)
{
    struct incremental_alter_configs_request *req = r->body;
    struct incremental_alter_configs_response *resp = r->resp;
    int32_t n = req->n_resources > 0 ? req->n_resources : 0;
    RESP_ARRAY(r, resp->responses, n);
    if (resp->responses == NULL)
        return REQUEST_CLOSE;
    resp->n_responses = n;
    for (int32_t i = 0; i < n; i++) {
        struct incremental_alter_configs_request_alter_configs_resource *in = &req->resources[i];
        struct incremental_alter_configs_response_alter_configs_resource_response *out = &resp->responses[i];
        out->resource_type = in->resource_type;
        out->resource_name = in->resource_name.ptr ? in->resource_name : kstr_of("");
        out->error_message = kstr_null();
        char msg[256] = "";
        int e = KERR_NONE;
        struct topic *t = NULL;
        struct topic_config_kv kv[MAX_OVERRIDES];
        int nkv = 0;
        if (in->resource_type != RESOURCE_TOPIC) {
            e = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "Only topic configs can be altered; broker configs come from server.properties");
        } else if ((t = topic_find_name(b, in->resource_name)) == NULL) {
            e = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(msg, sizeof(msg), "Topic does not exist");
        } else {
            e = apply_ops(b, t, in, kv, &nkv, msg, sizeof(msg));
        }
        if (e == KERR_NONE && !req->validate_only)
            e = topic_set_overrides(b, t, kv, nkv);
        out->error_code = (int16_t)e;
        if (e != KERR_NONE && msg[0])
            out->error_message = kstr_of(request_strdup(r, msg));
    }
    return REQUEST_DONE;
}
