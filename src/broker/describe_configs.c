/* DescribeConfigs (32): every topic config of the catalog with its value and source (override,
 * dynamic broker, cluster default, static, default) and Kafka's synonym chain; a broker's keys
 * likewise, or the cluster-wide dynamic defaults for resource "". */
#include <inttypes.h>
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

typedef struct describe_configs_response_describe_configs_resource_result config_out;
typedef struct describe_configs_response_describe_configs_synonym synonym_out;

static bool wanted(const struct describe_configs_request_describe_configs_resource *res, const char *name)
{
    if (res->n_configuration_keys < 0)
        return true;
    for (int32_t i = 0; i < res->n_configuration_keys; i++)
        if (res->configuration_keys[i].ptr && strcmp(res->configuration_keys[i].ptr, name) == 0)
            return true;
    return false;
}

static void add_synonym(struct request *r, config_out *c, int cap, const char *name,
                        const char *value, int source)
{
    if (c->synonyms == NULL || c->n_synonyms >= cap)
        return;
    synonym_out *s = &c->synonyms[c->n_synonyms++];
    s->name = kstr_of(name);
    s->value = value ? kstr_of(request_strdup(r, value)) : kstr_null();
    s->source = (int8_t)source;
}

/* Kafka's chain for broker keys: each key's per-broker, cluster-default and static entries,
 * in key order, then the default of the first key that has one. */
/* A broker key's synonyms, most specific first; the cluster-wide default's (per_broker false)
 * leave out this broker's own dynamic values, as Kafka's. */
static void broker_synonyms(const struct broker *b, struct request *r, config_out *c,
                            const char *const *keys, int nkeys, int cap, bool per_broker)
{
    static const int sources[] = {CONFIG_SOURCE_DYNAMIC_BROKER,
                                  CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER, CONFIG_SOURCE_STATIC_BROKER};
    for (int k = 0; k < nkeys; k++) {
        const struct broker_props *tables[3] = {&b->dyn_broker, &b->dyn_default, &b->cfg.static_props};
        for (int s = 0; s < 3; s++) {
            const char *v = broker_props_get(tables[s], keys[k]);
            if (v != NULL && (per_broker || sources[s] != CONFIG_SOURCE_DYNAMIC_BROKER))
                add_synonym(r, c, cap, keys[k], v, sources[s]);
        }
    }
    for (int k = 0; k < nkeys; k++) {
        const struct broker_key_def *def = config_catalog_broker_key(keys[k]);
        if (def != NULL && def->default_value != NULL) {
            add_synonym(r, c, cap, keys[k], def->default_value, CONFIG_SOURCE_DEFAULT);
            break;
        }
    }
}

#define SYNONYMS_CAP (1 + 3 * CONFIG_SYNONYMS_MAX + 1)

static int describe_topic(struct broker *b, struct request *r, bool include_synonyms,
                          const struct describe_configs_request_describe_configs_resource *res,
                          const struct topic_config_kv *overrides, int noverrides,
                          config_out *configs)
{
    int k = 0;
    for (int i = 0; i < config_catalog_ntopics; i++) {
        const struct topic_config_def *def = &config_catalog_topics[i];
        if (!wanted(res, def->name))
            continue;
        config_out *c = &configs[k++];
        const char *ov = NULL;
        for (int j = 0; j < noverrides && ov == NULL; j++)
            if (strcmp(overrides[j].key, def->name) == 0)
                ov = overrides[j].value;
        char value[BROKER_PROP_VALUE_MAX];
        int source = CONFIG_SOURCE_DYNAMIC_TOPIC;
        const char *syn;
        if (ov != NULL)
            snprintf(value, sizeof(value), "%s", ov);
        else
            topic_config_default(b, def->name, value, sizeof(value), &source, &syn);
        c->name = kstr_of(def->name);
        c->value = kstr_of(request_strdup(r, value));
        c->read_only = false;
        c->config_source = (int8_t)source;
        c->is_default = source == CONFIG_SOURCE_DEFAULT; /* v0 says only this */
        c->is_sensitive = false;
        c->config_type = (int8_t)def->type;
        c->documentation = kstr_null();
        c->n_synonyms = 0;
        if (!include_synonyms)
            continue;
        RESP_ARRAY(r, c->synonyms, SYNONYMS_CAP);
        if (ov != NULL)
            add_synonym(r, c, SYNONYMS_CAP, def->name, ov, CONFIG_SOURCE_DYNAMIC_TOPIC);
        int nkeys = 0;
        while (nkeys < CONFIG_SYNONYMS_MAX && def->synonyms[nkeys] != NULL)
            nkeys++;
        broker_synonyms(b, r, c, def->synonyms, nkeys, SYNONYMS_CAP, true);
    }
    return k;
}

/* The value of a key nobody set: what this broker runs with where it differs from Kafka's
 * default (its node id, log dirs, the embedded config's group delay), else the default. */
static const char *broker_unset_value(const struct broker *b, const struct broker_key_def *def,
                                      char *buf, size_t buflen)
{
    const struct broker_config *c = &b->cfg;
    const char *n = def->name;
    if (strcmp(n, "node.id") == 0 || strcmp(n, "broker.id") == 0)
        snprintf(buf, buflen, "%d", c->node_id);
    else if (strcmp(n, "log.dirs") == 0)
        snprintf(buf, buflen, "%s", c->log_dirs[0]);
    else if (strcmp(n, "group.initial.rebalance.delay.ms") == 0)
        snprintf(buf, buflen, "%d", c->group_initial_rebalance_delay_ms);
    else if (strcmp(n, "max.connections") == 0)
        snprintf(buf, buflen, "%d", c->max_connections);
    else if (strcmp(n, "offsets.topic.num.partitions") == 0)
        snprintf(buf, buflen, "%d", c->offsets_topic_num_partitions);
    else
        return def->default_value;
    return buf;
}

static int describe_broker(struct broker *b, struct request *r, bool include_synonyms,
                           const struct describe_configs_request_describe_configs_resource *res,
                           bool cluster_default, config_out *configs)
{
    int k = 0;
    for (int i = 0; i < config_catalog_nbroker; i++) {
        const struct broker_key_def *def = &config_catalog_broker[i];
        if (def->mode == BROKER_KEY_STARTUP || !wanted(res, def->name))
            continue;
        int source;
        const char *v;
        char buf[1100];
        if (cluster_default) {
            v = broker_props_get(&b->dyn_default, def->name);
            if (v == NULL)
                continue;
            source = CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER;
        } else {
            v = broker_key_value(b, def->name, &source);
            if (v == NULL && def->mode == BROKER_KEY_QUOTA)
                continue; /* Kafka lists them from its dynamic configs only */
            if (v == NULL)
                v = broker_unset_value(b, def, buf, sizeof(buf));
        }
        config_out *c = &configs[k++];
        c->name = kstr_of(def->name);
        c->value = v ? kstr_of(request_strdup(r, v)) : kstr_null();
        /* Kafka 3.9's readOnly is "not in DynamicBrokerConfig.AllDynamicConfigs": true for
         * the quota keys, though AlterConfigs takes them. */
        c->read_only = def->mode == BROKER_KEY_READ_ONLY || def->mode == BROKER_KEY_QUOTA;
        c->config_source = (int8_t)source;
        c->is_default = source == CONFIG_SOURCE_DEFAULT; /* v0 says only this */
        c->is_sensitive = false;
        c->config_type = (int8_t)def->type;
        c->documentation = kstr_null();
        c->n_synonyms = 0;
        if (!include_synonyms)
            continue;
        RESP_ARRAY(r, c->synonyms, SYNONYMS_CAP);
        /* log.retention.ms's chain is retention.ms's: its .minutes and .hours follow it. */
        const char *const *keys = &def->name;
        int nkeys = 1;
        if (config_catalog_checked_as(def) != NULL) {
            keys = def->topic->synonyms;
            for (nkeys = 0; nkeys < CONFIG_SYNONYMS_MAX && keys[nkeys] != NULL; nkeys++)
                ;
        }
        broker_synonyms(b, r, c, keys, nkeys, SYNONYMS_CAP, !cluster_default);
    }
    /* The dynamic listener SSL keys (listener.name.<l>.ssl.keystore.location, ...): Kafka's
     * PASSWORD ones sensitive, their value null. Per-broker only, so never in the default. */
    for (int i = 0; !cluster_default && i < b->dyn_broker.n; i++) {
        const struct broker_prop *p = &b->dyn_broker.v[i];
        if (!dynamic_config_listener_key(p->key) || !wanted(res, p->key))
            continue;
        bool sensitive = dynamic_config_sensitive(p->key);
        config_out *c = &configs[k++];
        c->name = kstr_of(p->key);
        c->value = sensitive ? kstr_null() : kstr_of(request_strdup(r, p->value));
        c->read_only = false;
        c->config_source = CONFIG_SOURCE_DYNAMIC_BROKER;
        c->is_default = false;
        c->is_sensitive = sensitive;
        c->config_type = (int8_t)(sensitive ? CONFIG_TYPE_PASSWORD : CONFIG_TYPE_STRING);
        c->documentation = kstr_null();
        c->n_synonyms = 0;
        if (!include_synonyms)
            continue;
        RESP_ARRAY(r, c->synonyms, 1);
        if (c->synonyms != NULL) {
            c->synonyms[0].name = c->name;
            c->synonyms[0].value = c->value;
            c->synonyms[0].source = CONFIG_SOURCE_DYNAMIC_BROKER;
            c->n_synonyms = 1;
        }
    }
    return k;
}

static void describe_one(struct broker *b, struct request *r, bool include_synonyms,
                         const struct describe_configs_request_describe_configs_resource *res,
                         struct describe_configs_response_describe_configs_result *out)
{
    out->resource_type = res->resource_type;
    out->resource_name = res->resource_name.ptr ? res->resource_name : kstr_of("");
    out->error_message = kstr_null();
    int cap = (config_catalog_ntopics > config_catalog_nbroker ? config_catalog_ntopics
                                                               : config_catalog_nbroker) +
              BROKER_PROPS_MAX; /* + the dynamic listener keys */
    int denied = authorize_config_resource(b, r, res->resource_type, res->resource_name.ptr,
                                           res->resource_name.len, ACL_OP_DESCRIBE_CONFIGS);
    if (denied != KERR_NONE) {
        out->error_code = (int16_t)denied;
        RESP_ARRAY(r, out->configs, 0);
        return;
    }
    if (res->resource_type == RESOURCE_TOPIC) {
        struct topic *t = topic_find_name(b, res->resource_name);
        /* On a cluster, ZooKeeper's /config/topics/<t> as this broker last read it (every
         * broker answers the same, whether it holds the topic's logs or not). */
        const struct cluster_topic *ct =
            b->cluster != NULL && res->resource_name.ptr != NULL
                ? cluster_topic_find(b->cluster, res->resource_name.ptr) : NULL;
        if (t == NULL && ct == NULL) {
            out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            out->error_message = kstr_of("Topic does not exist");
            return;
        }
        const struct topic_config_kv *ov = t != NULL ? t->overrides : NULL;
        int nov = t != NULL ? t->noverrides : 0;
        struct topic_config_kv *zk_ov = NULL;
        int nzk = 0;
        if (ct != NULL && ct->config_known &&
            topic_configs_parse(ct->name, ct->config, (size_t)ct->config_len, &zk_ov, &nzk) == 0) {
            struct topic_config_kv *copy = request_alloc(r, sizeof(*copy) * (size_t)(nzk + 1));
            if (copy != NULL && nzk > 0)
                memcpy(copy, zk_ov, sizeof(*copy) * (size_t)nzk);
            ov = copy;
            nov = copy != NULL ? nzk : 0;
        }
        free(zk_ov);
        RESP_ARRAY(r, out->configs, cap);
        if (out->configs != NULL)
            out->n_configs = describe_topic(b, r, include_synonyms, res, ov, nov, out->configs);
    } else if (res->resource_type == RESOURCE_BROKER) {
        bool cluster_default = res->resource_name.ptr == NULL || res->resource_name.len == 0;
        RESP_ARRAY(r, out->configs, cap);
        if (out->configs != NULL)
            out->n_configs = describe_broker(b, r, include_synonyms, res, cluster_default,
                                             out->configs);
    } else {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = kstr_of("Unsupported resource type");
    }
}

enum request_status handle_describe_configs(struct broker *b, struct request *r)
{
    struct describe_configs_request *req = r->body;
    struct describe_configs_response *resp = r->resp;
    int32_t n = req->n_resources > 0 ? req->n_resources : 0;
    RESP_ARRAY(r, resp->results, n);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    resp->n_results = n;
    for (int32_t i = 0; i < n; i++)
        describe_one(b, r, req->include_synonyms,
                     &req->resources[i], &resp->results[i]);
    return REQUEST_DONE;
}
