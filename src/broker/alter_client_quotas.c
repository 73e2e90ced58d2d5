/* AlterClientQuotas (API 49, KIP-546): sets and removes client quota keys of entities, as
 * Kafka 3.9's ZkAdminManager.alterClientQuotas checks them; ALTER_CONFIGS on the cluster. */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "broker/authorizer.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
#include "common/util.h"
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

/* ---- in a cluster: the entity's config znode (Kafka 3.9's ZkAdminManager) ---- */

/* Kafka's text of a value: LONG and INT keys as whole numbers, DOUBLE as Java's
 * Double.toString (shortest digits that read back; "12.5", "50.0", "1.0E7", "1.0E-4"). */
static void value_text(int key, double v, char *out, size_t outlen)
{
    if (key == QUOTA_PRODUCER_BYTE_RATE || key == QUOTA_CONSUMER_BYTE_RATE ||
        key == QUOTA_CONNECTION_CREATION_RATE) {
        snprintf(out, outlen, "%.0f", v);
        return;
    }
    double a = fabs(v);
    if (v == 0 || (a >= 1e-3 && a < 1e7)) {
        if (v == trunc(v)) {
            snprintf(out, outlen, "%.1f", v);
            return;
        }
        for (int p = 1; p <= 17; p++) {
            snprintf(out, outlen, "%.*g", p, v);
            if (strtod(out, NULL) == v)
                return;
        }
        return;
    }
    char m[40];
    for (int p = 0; p <= 16; p++) {
        snprintf(m, sizeof(m), "%.*e", p, v);
        if (strtod(m, NULL) == v)
            break;
    }
    char *e = strchr(m, 'e');
    GREGOR_ASSERT(e != NULL);
    int exp = atoi(e + 1);
    *e = '\0';
    snprintf(out, outlen, "%s%sE%d", m, strchr(m, '.') ? "" : ".0", exp);
}

/* One entry's change: the ops' keys and value texts (NULL: remove). */
struct zk_quota_change {
    struct request *r;
    struct zk_quota_req *q;
    int32_t entry;
    int n;
    const char **keys;
    const char **texts;
};

struct zk_quota_req {
    int left;
    bool started;
};

/* The entity's config map with the ops applied, every other key (SCRAM credentials) kept;
 * none left: NULL, the node goes (cluster.c keeps it, empty, when it has children; Kafka's
 * tryCleanQuotaNodes). Empty data reads as no map. */
static int zk_quota_modify(void *arg, const char *cur, size_t len, char **out, size_t *out_len)
{
    struct zk_quota_change *ch = arg;
    return znode_config_edit(cur != NULL && len > 0 ? cur : NULL, len, ch->keys, ch->texts, ch->n,
                             true, out, out_len);
}

static void zk_quota_written(void *arg, int kerr, const char *msg)
{
    struct zk_quota_change *ch = arg;
    struct request *r = ch->r;
    struct zk_quota_req *q = ch->q;
    if (kerr != KERR_NONE) {
        struct alter_client_quotas_response *resp = r->resp;
        resp->entries[ch->entry].error_code = (int16_t)kerr;
        const char *m = request_strdup(r, msg ? msg : "");
        resp->entries[ch->entry].error_message = (struct kstr){(char *)m,
                                                               m ? (int32_t)strlen(m) : 0};
    }
    GREGOR_ASSERT(q->left > 0);
    if (--q->left == 0 && q->started)
        request_finish(r);
}

/* The znode of an entity: /config/users/<u>, /config/users/<u>/clients/<c>,
 * /config/clients/<c> or /config/ips/<ip>, names sanitized as Kafka's Sanitizer (the
 * default entity is <default>). 0, or -1 when it does not fit. */
static int entity_path(const struct quota_entity_id *id, const char **type, char *name,
                       size_t namelen)
{
    char u[QUOTA_NAME_MAX * 3 + 1], c[QUOTA_NAME_MAX * 3 + 1];
    if (id->ip != NULL) {
        *type = "ips";
        int n = snprintf(name, namelen, "%s", id->ip == QUOTA_DEFAULT ? "<default>" : id->ip);
        return n < 0 || (size_t)n >= namelen ? -1 : 0;
    }
    if (id->user != NULL) {
        if (id->user == QUOTA_DEFAULT)
            snprintf(u, sizeof(u), "<default>");
        else if (znode_sanitize(id->user, u, sizeof(u)) != 0)
            return -1;
    }
    if (id->client_id != NULL) {
        if (id->client_id == QUOTA_DEFAULT)
            snprintf(c, sizeof(c), "<default>");
        else if (znode_sanitize(id->client_id, c, sizeof(c)) != 0)
            return -1;
    }
    int n;
    if (id->user != NULL && id->client_id != NULL) {
        *type = "users";
        n = snprintf(name, namelen, "%s/clients/%s", u, c);
    } else if (id->user != NULL) {
        *type = "users";
        n = snprintf(name, namelen, "%s", u);
    } else {
        *type = "clients";
        n = snprintf(name, namelen, "%s", c);
    }
    return n < 0 || (size_t)n >= namelen ? -1 : 0;
}

/* Submits entry i's ops (checked) as one read-modify-write of its znode. */
static void zk_quota_submit(struct broker *b, struct request *r, struct zk_quota_req *zq,
                            int32_t i, const struct quota_entity_id *id,
                            const struct alter_client_quotas_request_alter_client_quotas_entry *e,
                            const double *values, int *err, char *msg, size_t msglen)
{
    int32_t nops = e->n_ops > 0 ? e->n_ops : 0;
    struct zk_quota_change *ch = request_alloc(r, sizeof(*ch));
    const char **keys = request_alloc(r, sizeof(*keys) * ((size_t)nops + 1));
    const char **texts = request_alloc(r, sizeof(*texts) * ((size_t)nops + 1));
    char *name = request_alloc(r, QUOTA_NAME_MAX * 7 + 16);
    if (ch == NULL || keys == NULL || texts == NULL || name == NULL) {
        *err = KERR_UNKNOWN_SERVER_ERROR;
        snprintf(msg, msglen, "Out of memory");
        return;
    }
    const char *type;
    if (entity_path(id, &type, name, QUOTA_NAME_MAX * 7 + 16) != 0) {
        *err = KERR_INVALID_REQUEST;
        snprintf(msg, msglen, "The entity's name is too long for a ZooKeeper path");
        return;
    }
    for (int32_t j = 0; j < nops; j++) {
        keys[j] = e->ops[j].key.ptr ? e->ops[j].key.ptr : "";
        texts[j] = NULL;
        if (!e->ops[j].remove) {
            char buf[64];
            value_text(quota_key_find(keys[j]), values[j], buf, sizeof(buf));
            texts[j] = request_strdup(r, buf);
            if (texts[j] == NULL) {
                *err = KERR_UNKNOWN_SERVER_ERROR;
                snprintf(msg, msglen, "Out of memory");
                return;
            }
        }
    }
    *ch = (struct zk_quota_change){.r = r, .q = zq, .entry = i, .n = nops, .keys = keys,
                                   .texts = texts};
    zq->left++;
    *err = cluster_entity_update(b->cluster, type, name, zk_quota_modify, ch, zk_quota_written,
                                 ch, msg, msglen);
    if (*err != KERR_NONE)
        zq->left--;
}

/* ---- every broker's table follows the znodes ---- */

struct zk_quota_values {
    bool has[QUOTA_NKEYS];
    double value[QUOTA_NKEYS];
    const char *entity;
};

static void zk_quota_entry(void *arg, const char *key, const char *value)
{
    struct zk_quota_values *v = arg;
    int k = quota_key_find(key);
    if (k < 0)
        return; /* SCRAM credentials and keys gregor does not know */
    char *end;
    double d = strtod(value, &end);
    if (end == value || *end != '\0' || !isfinite(d)) {
        LOG_WARN(WHO, "Ignoring the invalid value %.64s of %s for %s", value, key, v->entity);
        return;
    }
    v->has[k] = true;
    v->value[k] = d;
}

/* Name of a path component: the default entity, or the desanitized name. */
static int name_part(const char *s, char *out, size_t outlen, const char **name)
{
    if (strcmp(s, "<default>") == 0) {
        *name = QUOTA_DEFAULT;
        return 0;
    }
    if (znode_desanitize(s, out, outlen) != 0 || out[0] == '\0')
        return -1;
    *name = out;
    return 0;
}

static void quotas_from_zk(void *arg, const char *entity_type, const char *entity_name,
                           const char *json, size_t len)
{
    struct broker *b = arg;
    if (b->quotas == NULL)
        return;
    char first[QUOTA_NAME_MAX * 3 + 1], u[QUOTA_NAME_MAX + 1], c[QUOTA_NAME_MAX + 1];
    struct quota_entity_id id = {NULL, NULL, NULL};
    const char *slash = strchr(entity_name, '/');
    size_t flen = slash ? (size_t)(slash - entity_name) : strlen(entity_name);
    if (flen >= sizeof(first))
        return;
    memcpy(first, entity_name, flen);
    first[flen] = '\0';
    int bad = 0;
    if (strcmp(entity_type, "users") == 0) {
        bad = name_part(first, u, sizeof(u), &id.user);
        if (slash != NULL) {
            if (strncmp(slash, "/clients/", 9) != 0 || strchr(slash + 9, '/') != NULL)
                bad = -1;
            else if (bad == 0)
                bad = name_part(slash + 9, c, sizeof(c), &id.client_id);
        }
    } else if (strcmp(entity_type, "clients") == 0 && slash == NULL) {
        bad = name_part(first, c, sizeof(c), &id.client_id);
    } else if (strcmp(entity_type, "ips") == 0 && slash == NULL) {
        id.ip = strcmp(first, "<default>") == 0 ? QUOTA_DEFAULT : entity_name;
    } else {
        return;
    }
    if (bad != 0) {
        LOG_WARN(WHO, "Ignoring the quotas of /config/%s/%s: not an entity name", entity_type,
                 entity_name);
        return;
    }
    char where[64];
    snprintf(where, sizeof(where), "%s/%.40s", entity_type, entity_name);
    struct zk_quota_values v = {.entity = where};
    if (json != NULL && len > 0 && znode_config_parse(json, len, zk_quota_entry, &v) < 0)
        return; /* logged by the cluster */
    for (int k = 0; k < QUOTA_NKEYS; k++) {
        int rc = v.has[k] ? quota_entity_set(b->quotas, &id, quota_key_name(k), v.value[k])
                          : quota_entity_remove(b->quotas, &id, quota_key_name(k));
        if (rc != 0)
            LOG_WARN(WHO, "The quota %s of /config/%s/%s is not kept (at most %d entities)",
                     quota_key_name(k), entity_type, entity_name, QUOTA_ENTITIES_MAX);
    }
}

void quotas_cluster_attach(struct broker *b)
{
    if (b->cluster != NULL) /* loaded at cluster_await_security, then each change */
        cluster_entity_config_subscribe(b->cluster, quotas_from_zk, b);
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
    struct zk_quota_req *zq = NULL;
    if (b->cluster != NULL) {
        zq = request_alloc(r, sizeof(*zq));
        if (zq == NULL)
            return REQUEST_CLOSE;
        *zq = (struct zk_quota_req){0};
    }
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
        if (err == KERR_NONE && !req->validate_only && zq != NULL) {
            /* written to ZooKeeper; the table follows (quotas_from_zk) */
            zk_quota_submit(b, r, zq, i, &id, e, values, &err, msg, sizeof(msg));
        } else if (err == KERR_NONE && !req->validate_only) {
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
    if (zq != NULL) {
        zq->started = true;
        return zq->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
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
