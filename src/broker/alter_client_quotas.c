/* AlterClientQuotas (API 49, KIP-546): sets and removes client quota keys of entities, as
 * Kafka 3.9's ZkAdminManager.alterClientQuotas checks them; ALTER_CONFIGS on the cluster. */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/quota.h"
#include "proto/messages.h"
#include "common/logging.h"
#include "log/logdir.h"

#define WHO "KafkaApis"

/* An entry's entity as quota.h names it (the request's names live in the request arena):
 * KERR_NONE, or KERR_INVALID_REQUEST with Kafka's message. */
static int entity_parse(const struct alter_client_quotas_request_alter_client_quotas_entry *e,
                        struct quota_entity_id *id, char *msg, size_t msglen)
{
    *id = (struct quota_entity_id){NULL, NULL, NULL};
    if (e->n_entity <= 0) {
        snprintf(msg, msglen, "Invalid empty client quota entity");
        return KERR_INVALID_REQUEST;
    }
    for (int32_t i = 0; i < e->n_entity; i++) {
        struct kstr type = e->entity[i].entity_type, name = e->entity[i].entity_name;
        const char *n = name.ptr == NULL ? QUOTA_DEFAULT : name.ptr;
        if (type.ptr != NULL && strcmp(type.ptr, "user") == 0)
            id->user = n;
        else if (type.ptr != NULL && strcmp(type.ptr, "client-id") == 0)
            id->client_id = n;
        else if (type.ptr != NULL && strcmp(type.ptr, "ip") == 0)
            id->ip = n;
        else {
            snprintf(msg, msglen, "Unhandled client quota entity type: %.200s",
                     type.ptr ? type.ptr : "null");
            return KERR_INVALID_REQUEST;
        }
        if (name.ptr != NULL && name.len == 0) {
            snprintf(msg, msglen, "Empty %s not supported", type.ptr);
            return KERR_INVALID_REQUEST;
        }
        if (name.ptr != NULL && (name.len > QUOTA_NAME_MAX || (int32_t)strlen(name.ptr) != name.len)) {
            snprintf(msg, msglen, "Invalid %s name: longer than %d bytes or holding a NUL",
                     type.ptr, QUOTA_NAME_MAX);
            return KERR_INVALID_REQUEST;
        }
    }
    if (id->ip != NULL && (id->user != NULL || id->client_id != NULL)) {
        snprintf(msg, msglen, "Invalid quota entity combination, IP entity should not be used "
                              "with user/client ID entity.");
        return KERR_INVALID_REQUEST;
    }
    if (id->ip != NULL && id->ip != QUOTA_DEFAULT) {
        /* Kafka also accepts a host name it can resolve; resolving would block the loop. */
        unsigned char addr[16];
        if (inet_pton(AF_INET, id->ip, addr) != 1 && inet_pton(AF_INET6, id->ip, addr) != 1) {
            snprintf(msg, msglen, "%.200s is not a valid IP or resolvable host.", id->ip);
            return KERR_INVALID_REQUEST;
        }
    }
    return KERR_NONE;
}

/* One op's key and value: KERR_NONE with the value to store in *out, or Kafka's error. */
static int op_check(const struct quota_entity_id *id,
                    const struct alter_client_quotas_request_alter_client_quotas_op *op,
                    bool validate_only, double *out, char *msg, size_t msglen)
{
    int k = op->key.ptr != NULL ? quota_key_find(op->key.ptr) : -1;
    bool ip = id->ip != NULL;
    bool allowed = k >= 0 && (ip ? k == QUOTA_CONNECTION_CREATION_RATE
                                 : k != QUOTA_CONNECTION_CREATION_RATE);
    if (op->remove) {
        *out = 0;
        return KERR_NONE; /* Kafka removes whatever key is named */
    }
    if (!allowed) {
        snprintf(msg, msglen, "Invalid configuration key %.200s", op->key.ptr ? op->key.ptr : "null");
        return KERR_INVALID_REQUEST;
    }
    double v = op->value;
    if (k == QUOTA_PRODUCER_BYTE_RATE || k == QUOTA_CONSUMER_BYTE_RATE ||
        k == QUOTA_CONNECTION_CREATION_RATE) {
        /* LONG and INT keys take a whole number (within 1e-6), as Kafka's epsilon check. */
        bool is_long = k != QUOTA_CONNECTION_CREATION_RATE;
        double lo = is_long ? -9223372036854775808.0 : -2147483648.0;
        double hi = is_long ? 9223372036854775807.0 : 2147483647.0;
        double whole = isfinite(v) ? trunc(v + 1e-6) : NAN;
        if (!isfinite(v) || whole < lo || whole > hi || fabs(whole - v) > 1e-6) {
            snprintf(msg, msglen, "Configuration %s must be a %s value", op->key.ptr,
                     is_long ? "LONG" : "INT");
            return KERR_INVALID_REQUEST;
        }
        v = whole;
        /* connection_creation_rate: ConfigDef's atLeast(0), checked when written. */
        if (!is_long && v < 0 && !validate_only) {
            snprintf(msg, msglen, "Invalid value %.0f for configuration %s: Value must be at "
                                  "least 0", v, op->key.ptr);
            return KERR_INVALID_CONFIG;
        }
    } else if (!isfinite(v)) {
        snprintf(msg, msglen, "Invalid value %g for configuration %s", v, op->key.ptr);
        return KERR_INVALID_CONFIG;
    }
    *out = v;
    return KERR_NONE;
}

enum request_status handle_alter_client_quotas(struct broker *b, struct request *r)
{
    struct alter_client_quotas_request *req = r->body;
    struct alter_client_quotas_response *resp = r->resp;
    alter_client_quotas_response_set_defaults(resp);
    int32_t n = req->n_entries > 0 ? req->n_entries : 0;
    RESP_ARRAY(r, resp->entries, n);
    if (resp->entries == NULL)
        return REQUEST_CLOSE;
    resp->n_entries = n;
    bool allowed = authorize(b, r, ACL_OP_ALTER_CONFIGS, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true);
    bool changed = false;
    for (int32_t i = 0; i < n; i++) {
        const struct alter_client_quotas_request_alter_client_quotas_entry *e = &req->entries[i];
        struct alter_client_quotas_response_alter_client_quotas_result *out = &resp->entries[i];
        alter_client_quotas_response_alter_client_quotas_result_set_defaults(out);
        int32_t ne = e->n_entity > 0 ? e->n_entity : 0;
        RESP_ARRAY(r, out->entity, ne);
        if (out->entity == NULL)
            return REQUEST_CLOSE;
        out->n_entity = ne;
        for (int32_t j = 0; j < ne; j++) {
            out->entity[j].entity_type = e->entity[j].entity_type;
            out->entity[j].entity_name = e->entity[j].entity_name;
        }
        char msg[512] = "";
        int err = KERR_NONE;
        struct quota_entity_id id;
        if (!allowed) {
            err = KERR_CLUSTER_AUTHORIZATION_FAILED;
            snprintf(msg, sizeof(msg), "Cluster authorization failed.");
        } else {
            err = entity_parse(e, &id, msg, sizeof(msg));
        }
        int32_t nops = e->n_ops > 0 ? e->n_ops : 0;
        double *values = request_alloc(r, sizeof(double) * ((size_t)nops + 1));
        if (values == NULL)
            return REQUEST_CLOSE;
        /* All ops are checked before any applies: an entry changes whole or not at all. */
        for (int32_t j = 0; j < nops && err == KERR_NONE; j++)
            err = op_check(&id, &e->ops[j], req->validate_only, &values[j], msg, sizeof(msg));
        if (err == KERR_NONE && !req->validate_only) {
            for (int32_t j = 0; j < nops; j++) {
                const char *key = e->ops[j].key.ptr ? e->ops[j].key.ptr : "";
                int rc = e->ops[j].remove || quota_key_find(key) < 0
                             ? (quota_key_find(key) < 0 ? 0 : quota_entity_remove(b->quotas, &id, key))
                             : quota_entity_set(b->quotas, &id, key, values[j]);
                if (rc != 0) {
                    err = KERR_POLICY_VIOLATION;
                    snprintf(msg, sizeof(msg), "Too many client quota entities (at most %d)",
                             QUOTA_ENTITIES_MAX);
                    break;
                }
                changed = true;
            }
        }
        if (err != KERR_NONE) {
            char who[128];
            LOG_INFO(WHO, "Error encountered while updating client quotas from %s: %s: %s",
                     request_loggable(r->client_id, who, sizeof(who)), kerr_name(err), msg);
            out->error_code = (int16_t)err;
            char *m = request_strdup(r, msg);
            if (m == NULL)
                return REQUEST_CLOSE;
            out->error_message = (struct kstr){m, (int32_t)strlen(m)};
        }
    }
    if (changed) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", logdir_path(b->dirs[0]), QUOTAS_FILE);
        if (quotas_save(b->quotas, path) != 0) {
            LOG_ERROR(WHO, "cannot write %s: the client quotas changed are kept in memory only",
                      path);
            for (int32_t i = 0; i < n; i++)
                if (resp->entries[i].error_code == KERR_NONE) {
                    resp->entries[i].error_code = KERR_KAFKA_STORAGE_ERROR;
                    resp->entries[i].error_message = kstr_null();
                }
        }
    }
    return REQUEST_DONE;
}
