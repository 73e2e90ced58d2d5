/* IncrementalAlterConfigs (44): SET, DELETE, APPEND and SUBTRACT (list-valued configs only,
 * as Kafka) on a topic's overrides or on a broker's dynamic configs. */
#include <stdio.h>
#include <stdlib.h>

#include "broker/authorizer.h"
#include "broker/config_catalog.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "proto/messages.h"

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4
#define OP_SET 0
#define OP_DELETE 1
#define OP_APPEND 2
#define OP_SUBTRACT 3

#define MAX_OVERRIDES 64

/* Kafka's preprocess: no key twice, a value for every operation but DELETE. */
static int check_ops(const struct incremental_alter_configs_request_alter_configs_resource *in,
                     char *msg, size_t msglen)
{
    for (int32_t k = 0; k < in->n_configs; k++) {
        const struct incremental_alter_configs_request_alterable_config *c = &in->configs[k];
        if (c->name.ptr == NULL) {
            snprintf(msg, msglen, "Null config name");
            return KERR_INVALID_REQUEST;
        }
        for (int32_t j = 0; j < k; j++)
            if (strcmp(in->configs[j].name.ptr, c->name.ptr) == 0) {
                snprintf(msg, msglen, "Error due to duplicate config keys");
                return KERR_INVALID_REQUEST;
            }
        if (c->config_operation != OP_DELETE && c->value.ptr == NULL) {
            snprintf(msg, msglen, "Null value not supported for : %s", c->name.ptr);
            return KERR_INVALID_REQUEST;
        }
        if (c->config_operation < OP_SET || c->config_operation > OP_SUBTRACT) {
            snprintf(msg, msglen, "Unknown operations type %d", c->config_operation);
            return KERR_INVALID_REQUEST;
        }
    }
    return KERR_NONE;
}

/* The value an APPEND or SUBTRACT starts from: the override, else what the topic has now. */
static int list_op(struct broker *b, const struct topic_config_kv *have,
                   const struct incremental_alter_configs_request_alterable_config *c, char *out,
                   size_t outlen, char *msg, size_t msglen)
{
    const struct topic_config_def *def = config_catalog_topic(c->name.ptr);
    bool append = c->config_operation == OP_APPEND;
    if (def == NULL || def->type != CONFIG_TYPE_LIST) {
        snprintf(msg, msglen, "Can't %s to key %s because its type is not LIST.",
                 append ? "APPEND" : "SUBTRACT", c->name.ptr);
        return KERR_INVALID_CONFIG;
    }
    char current[BROKER_PROP_VALUE_MAX];
    if (have != NULL) {
        snprintf(current, sizeof(current), "%s", have->value);
    } else {
        int source;
        const char *syn;
        topic_config_default(b, def->name, current, sizeof(current), &source, &syn);
    }
    if (config_catalog_list_op(current, c->value.ptr, append, out, outlen) != 0) {
        snprintf(msg, msglen, "Value of %s too long", c->name.ptr);
        return KERR_INVALID_CONFIG;
    }
    return KERR_NONE;
}

/* The overrides now (have: ZooKeeper's on a cluster, else the topic's) with the operations. */
static int apply_ops(struct broker *b, const struct topic_config_kv *have, int nhave,
                     const struct incremental_alter_configs_request_alter_configs_resource *in,
                     struct topic_config_kv *kv, int *nkv, char *msg, size_t msglen)
{
    *nkv = 0;
    for (int i = 0; i < nhave && i < MAX_OVERRIDES; i++)
        kv[(*nkv)++] = have[i];
    for (int32_t k = 0; k < in->n_configs; k++) {
        const struct incremental_alter_configs_request_alterable_config *c = &in->configs[k];
        int at = -1;
        for (int i = 0; i < *nkv; i++)
            if (strcmp(kv[i].key, c->name.ptr) == 0)
                at = i;
        if (c->config_operation == OP_DELETE) {
            if (at >= 0)
                kv[at] = kv[--(*nkv)];
            continue;
        }
        char value[sizeof(kv[0].value)];
        if (c->config_operation == OP_SET) {
            if (strlen(c->value.ptr) >= sizeof(value))
                return config_catalog_too_long(c->name.ptr, c->value.ptr, msg, msglen);
            snprintf(value, sizeof(value), "%s", c->value.ptr);
        } else {
            int e = list_op(b, at >= 0 ? &kv[at] : NULL, c, value, sizeof(value), msg, msglen);
            if (e != KERR_NONE)
                return e;
        }
        int e = topic_config_check(c->name.ptr, value, msg, msglen);
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
        snprintf(kv[at].value, sizeof(kv[at].value), "%s", value);
    }
    return KERR_NONE;
}

static int alter_broker(struct broker *b, struct request *r, bool validate_only,
                        const struct incremental_alter_configs_request_alter_configs_resource *in,
                        struct config_answer *ans, char *msg, size_t msglen)
{
    int32_t nc = in->n_configs > 0 ? in->n_configs : 0;
    struct dynamic_config_op *ops = request_alloc(r, sizeof(*ops) * (size_t)(nc + 1));
    if (ops == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    for (int32_t k = 0; k < nc; k++) {
        ops[k].key = in->configs[k].name.ptr;
        ops[k].value = in->configs[k].value.ptr;
        ops[k].op = in->configs[k].config_operation;
    }
    return dynamic_configs_alter_answered(b, in->resource_name.ptr ? in->resource_name.ptr : "",
                                          ops, nc, false, validate_only, ans, msg, msglen);
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
    /* On a cluster the changes go to ZooKeeper: answered once written. */
    struct config_answers *all = request_alloc(r, sizeof(*all));
    struct config_answer *ans = request_alloc(r, sizeof(*ans) * (size_t)(n > 0 ? n : 1));
    if (all == NULL || ans == NULL)
        return REQUEST_CLOSE;
    *all = (struct config_answers){.r = r};
    for (int32_t i = 0; i < n; i++) {
        struct incremental_alter_configs_request_alter_configs_resource *in = &req->resources[i];
        struct incremental_alter_configs_response_alter_configs_resource_response *out = &resp->responses[i];
        out->resource_type = in->resource_type;
        out->resource_name = in->resource_name.ptr ? in->resource_name : kstr_of("");
        out->error_message = kstr_null();
        char msg[512] = "";
        int e = check_ops(in, msg, sizeof(msg));
        struct topic *t = NULL;
        struct topic_config_kv kv[MAX_OVERRIDES];
        int nkv = 0;
        ans[i] = (struct config_answer){all, &out->error_code, &out->error_message};
        const char *name = in->resource_name.ptr ? in->resource_name.ptr : "";
        const struct cluster_topic *ct =
            b->cluster != NULL ? cluster_topic_find(b->cluster, name) : NULL;
        if (e != KERR_NONE) {
            /* refused as a whole */
        } else if ((e = authorize_config_resource(b, r, in->resource_type, in->resource_name.ptr,
                                                  in->resource_name.len, ACL_OP_ALTER_CONFIGS)) !=
                   KERR_NONE) {
            /* KafkaApis: ALTER_CONFIGS on the topic or the cluster */
        } else if (in->resource_type == RESOURCE_BROKER) {
            e = alter_broker(b, r, req->validate_only, in, &ans[i], msg, sizeof(msg));
        } else if (in->resource_type != RESOURCE_TOPIC) {
            e = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "Unknown resource type %d", in->resource_type);
        } else if (ct != NULL && !ct->config_known) {
            /* Just listed: its overrides, the operations' base, are being read (a few ms). */
            e = KERR_REQUEST_TIMED_OUT;
            snprintf(msg, sizeof(msg), "The configs of topic %s are being read from ZooKeeper; "
                     "retry", name);
        } else if (ct != NULL) {
            /* On a cluster: from ZooKeeper's overrides, back to ZooKeeper */
            struct topic_config_kv *have = NULL;
            int nhave = 0;
            (void)topic_configs_parse(name, ct->config, (size_t)ct->config_len, &have, &nhave);
            e = apply_ops(b, have, nhave, in, kv, &nkv, msg, sizeof(msg));
            free(have);
            if (e == KERR_NONE && !req->validate_only)
                e = topic_configs_write(b, name, kv, nkv, &ans[i], msg, sizeof(msg));
        } else if ((t = topic_find_name(b, in->resource_name)) == NULL) {
            e = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (b->cluster != NULL) /* AdminZkClient.validateTopicConfig's words */
                snprintf(msg, sizeof(msg), "Topic '%s' does not exist.", name);
            else
                snprintf(msg, sizeof(msg), "Topic does not exist");
        } else {
            e = apply_ops(b, t->overrides, t->noverrides, in, kv, &nkv, msg, sizeof(msg));
            if (e == KERR_NONE && !req->validate_only)
                e = topic_set_overrides(b, t, kv, nkv);
        }
        out->error_code = (int16_t)e;
        if (e != KERR_NONE && msg[0])
            out->error_message = kstr_of(request_strdup(r, msg));
    }
    return (enum request_status)config_answers_pending(all);
}
