/* dynamic_configs: broker configs changed at runtime (AlterConfigs / IncrementalAlterConfigs
 * on a BROKER resource), their file in the first log dir, and how a topic config resolves
 * through its broker synonyms: per-broker > cluster default > static > Kafka's default. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/log_cleaner.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/fileio.h"
#include "log/logdir.h"
#include "net/conn.h"
#include "net/tls.h"

#define WHO "DynamicBrokerConfig"
#define DYNAMIC_CONFIGS_FILE "dynamic-broker-configs"
#define DYNAMIC_CONFIGS_FILE_MAX (256 * 1024)

const char *broker_key_value(const struct broker *b, const char *key, int *source)
{
    const char *v;
    if ((v = broker_props_get(&b->dyn_broker, key)) != NULL) {
        *source = CONFIG_SOURCE_DYNAMIC_BROKER;
        return v;
    }
    if ((v = broker_props_get(&b->dyn_default, key)) != NULL) {
        *source = CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER;
        return v;
    }
    if ((v = broker_props_get(&b->cfg.static_props, key)) != NULL) {
        *source = CONFIG_SOURCE_STATIC_BROKER;
        return v;
    }
    *source = CONFIG_SOURCE_DEFAULT;
    return NULL;
}

void topic_config_default(const struct broker *b, const char *key, char *out, size_t outlen,
                          int *source, const char **synonym)
{
    const struct topic_config_def *def = config_catalog_topic(key);
    GREGOR_ASSERT(def != NULL);
    *synonym = NULL;
    for (int i = 0; i < CONFIG_SYNONYMS_MAX && def->synonyms[i] != NULL; i++) {
        const char *v = broker_key_value(b, def->synonyms[i], source);
        if (v == NULL)
            continue;
        const struct broker_key_def *bk = config_catalog_broker_key(def->synonyms[i]);
        *synonym = def->synonyms[i];
        if (bk != NULL && bk->scale > 1) /* hours or minutes: Kafka's -1 stays -1 */
            snprintf(out, outlen, "%lld", atoll(v) < 0 ? atoll(v) : atoll(v) * (long long)bk->scale);
        else
            snprintf(out, outlen, "%s", v);
        return;
    }
    *source = CONFIG_SOURCE_DEFAULT;
    snprintf(out, outlen, "%s", def->default_value);
}

static const char *override_value(const struct topic *t, const char *key)
{
    for (int i = 0; t != NULL && i < t->noverrides; i++)
        if (strcmp(t->overrides[i].key, key) == 0)
            return t->overrides[i].value;
    return NULL;
}

/* The log config for t's overrides (t NULL: none) over the broker's resolved defaults. The
 * cleanup policy goes last: without delete it turns retention off. */
static void effective(const struct broker *b, const struct topic *t, struct log_config *out)
{
    log_config_defaults(out);
    const struct topic_config_def *cleanup = NULL;
    char cleanup_value[BROKER_PROP_VALUE_MAX] = "";
    for (int i = 0; i < config_catalog_ntopics; i++) {
        const struct topic_config_def *def = &config_catalog_topics[i];
        if (!def->implemented)
            continue;
        char v[BROKER_PROP_VALUE_MAX];
        const char *ov = override_value(t, def->name);
        int source;
        const char *syn;
        if (ov != NULL && config_catalog_topic_check(def->name, ov, v, sizeof(v)) == KERR_NONE)
            snprintf(v, sizeof(v), "%s", ov);
        else
            topic_config_default(b, def->name, v, sizeof(v), &source, &syn);
        if (strcmp(def->name, "cleanup.policy") == 0) {
            cleanup = def;
            snprintf(cleanup_value, sizeof(cleanup_value), "%s", v);
            continue;
        }
        config_catalog_topic_apply(out, def, v);
    }
    if (cleanup != NULL)
        config_catalog_topic_apply(out, cleanup, cleanup_value);
}

void broker_log_defaults(const struct broker *b, struct log_config *out)
{
    effective(b, NULL, out);
}

void topic_effective_config(const struct broker *b, const struct topic *t, struct log_config *out)
{
    effective(b, t, out);
}

/* ---- the file: "broker <key>=<value>" or "default <key>=<value>", values %-encoded ---- */

static void encode(const char *v, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *v && o + 4 < outlen; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch <= 0x20 || ch >= 0x7f || ch == '%')
            o += (size_t)snprintf(out + o, outlen - o, "%%%02X", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
}

static void file_path(const struct broker *b, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", logdir_path(b->dirs[0]), DYNAMIC_CONFIGS_FILE);
}

static int save(const struct broker *b, const struct broker_props *dyn_broker,
                const struct broker_props *dyn_default)
{
    size_t cap = DYNAMIC_CONFIGS_FILE_MAX, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    n += (size_t)snprintf(buf, cap, "# gregor dynamic broker configs v1: broker|default key=value (%%-encoded)\n");
    const struct broker_props *tables[2] = {dyn_broker, dyn_default};
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < tables[t]->n; i++) {
            char v[BROKER_PROP_VALUE_MAX * 3 + 1];
            encode(tables[t]->v[i].value, v, sizeof(v));
            n += (size_t)snprintf(buf + n, cap - n, "%s %s=%s\n", t == 0 ? "broker" : "default",
                                  tables[t]->v[i].key, v);
            GREGOR_ASSERT(n < cap);
        }
    char path[1200];
    file_path(b, path, sizeof(path));
    int rc = fio_write_file_atomic(path, buf, n);
    free(buf);
    return rc;
}

/* ---- listener SSL configs (KIP-226): listener.name.<l>.ssl.keystore.* and .truststore.* ---- */

/* The ssl.* key a listener.name.<l>.ssl.* key names, else NULL. */
static const char *listener_ssl_base(const char *key)
{
    if (strncmp(key, "listener.name.", 14) != 0)
        return NULL;
    const char *dot = strchr(key + 14, '.');
    return dot != NULL && dot > key + 14 && strncmp(dot + 1, "ssl.", 4) == 0 ? dot + 1 : NULL;
}

bool dynamic_config_listener_key(const char *key)
{
    const char *base = listener_ssl_base(key);
    return base != NULL && tls_key_reconfigurable(base);
}

/* Kafka's PASSWORD keys among them: DescribeConfigs answers them sensitive, without value. */
bool dynamic_config_sensitive(const char *key)
{
    const char *base = listener_ssl_base(key);
    if (base == NULL)
        base = key;
    size_t n = strlen(base);
    return (n > 9 && strcmp(base + n - 9, ".password") == 0) || strcmp(base, "ssl.keystore.key") == 0 ||
           strcmp(base, "ssl.keystore.certificate.chain") == 0 ||
           strcmp(base, "ssl.truststore.certificates") == 0;
}

struct listener_arg {
    const struct broker_config *cfg;
    const char *listener;
};

static const char *listener_get(void *arg, const char *key, const char **key_used)
{
    const struct listener_arg *a = arg;
    return broker_security_prop(a->cfg, a->listener, key, key_used);
}

/* Each TLS listener's context against the keys of c: rebuilt where what it is built from
 * changed (a value, or a store file's modification time), checked as Kafka's SslFactory
 * checks a new key store (check), installed for new connections (commit). KERR_NONE, or
 * INVALID_REQUEST with Kafka's message. The build is file I/O and parsing on the loop: a rare
 * admin action, timed in the log. */
#define ALL_LISTENERS (~0u)

/* The listeners (bit i: b->cfg.listeners[i]) whose listener.name.<l>.ssl.* keys ops name:
 * Kafka reconfigures a listener's SSL only when its own keys are in the request (an unrelated
 * alter leaves a changed store file alone). */
static unsigned listeners_named(const struct broker *b, const struct dynamic_config_op *ops, int nops)
{
    unsigned mask = 0;
    for (int k = 0; k < nops; k++) {
        if (listener_ssl_base(ops[k].key) == NULL)
            continue;
        const char *name = ops[k].key + 14;
        size_t len = (size_t)(strchr(name, '.') - name);
        for (int i = 0; i < b->cfg.n_listeners && i < BROKER_MAX_LISTENERS; i++)
            if (strlen(b->cfg.listeners[i].name) == len &&
                strncasecmp(b->cfg.listeners[i].name, name, len) == 0)
                mask |= 1u << i;
    }
    return mask;
}

static int listeners_reconfigure(struct broker *b, const struct broker_config *c, unsigned which,
                                 bool check, bool commit, char *msg, size_t msglen)
{
    for (int i = 0; i < b->cfg.n_listeners && i < BROKER_MAX_LISTENERS; i++) {
        if (b->tls[i] == NULL || !(which & (1u << i)))
            continue;
        struct listener_arg arg = {c, b->cfg.listeners[i].name};
        int64_t t0 = mono_us();
        int rc = tls_server_reload(b->tls[i], listener_get, &arg, check, commit, msg, msglen);
        if (rc < 0)
            return KERR_INVALID_REQUEST;
        if (rc > 0)
            LOG_INFO(WHO, "Listener %s: SSL context %s in %.1f ms", b->cfg.listeners[i].name,
                     commit ? "reloaded (new connections get it; those open keep theirs)"
                            : "loaded and checked", (double)(mono_us() - t0) / 1000.0);
    }
    return KERR_NONE;
}

/* Recomputes the broker's config from static + cluster default + per-broker and applies what
 * changes without restart: the log defaults of every topic without an override, the
 * connection limits, the number of replica fetchers and the replication throttle rates. */
static void apply(struct broker *b, unsigned listeners, bool check_listeners)
{
    struct broker_config *c = malloc(sizeof(*c));
    GREGOR_ASSERT(c != NULL);
    *c = b->static_cfg;
    const struct broker_props *tables[2] = {&b->dyn_default, &b->dyn_broker};
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < tables[t]->n; i++) {
            char err[512];
            if (broker_config_set(c, tables[t]->v[i].key, tables[t]->v[i].value, err, sizeof(err)) != 0)
                LOG_WARN(WHO, "dynamic %s=%s not applied: %s", tables[t]->v[i].key,
                         tables[t]->v[i].value, err);
        }
    b->cfg.max_connections = c->max_connections;
    b->cfg.max_connections_per_ip = c->max_connections_per_ip;
    bool fetchers_changed = b->cfg.num_replica_fetchers != c->num_replica_fetchers;
    b->cfg.num_replica_fetchers = c->num_replica_fetchers;
    b->cfg.log_cleaner = c->log_cleaner;
    /* Kafka's BrokerConfigHandler: this broker's value, else the cluster default's, else
     * none; the rates now measured stay (ReplicationQuotaManager.updateQuota). */
    b->cfg.leader_replication_throttled_rate = c->leader_replication_throttled_rate;
    b->cfg.follower_replication_throttled_rate = c->follower_replication_throttled_rate;
    /* The static ssl.* keys come first, byte for byte as before: what points into them holds. */
    GREGOR_ASSERT(c->security.used >= b->static_cfg.security.used);
    b->cfg.security = c->security;
    char err[1024];
    if (listeners_reconfigure(b, &b->cfg, listeners, check_listeners, true, err, sizeof(err)) !=
        KERR_NONE)
        LOG_WARN(WHO, "listener SSL configs not applied (the old ones keep serving): %s", err);
    free(c);
    broker_log_defaults(b, &b->cfg.log);
    if (b->net != NULL)
        net_set_connection_limits(b->net, b->cfg.max_connections, b->cfg.max_connections_per_ip);
    topics_refresh_configs(b);
    if (fetchers_changed)
        broker_cluster_sync(b); /* the followed partitions move to their new fetchers */
    log_cleaner_reconfigure(b);
}

int dynamic_configs_parse(const char *bytes, size_t len, struct broker_props *broker,
                          struct broker_props *dflt, int *bad_line)
{
    broker->n = 0;
    dflt->n = 0;
    *bad_line = 0;
    /* A NUL byte would end the text early: the lines after it silently gone. */
    const char *nul = memchr(bytes, '\0', len);
    if (nul != NULL) {
        *bad_line = 1;
        for (const char *c = bytes; c < nul; c++)
            *bad_line += *c == '\n';
        return -1;
    }
    char *text = malloc(len + 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, bytes, len);
    text[len] = '\0';
    int lineno = 0, rc = 0;
    for (char *line = text, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *sp = strchr(line, ' '), *eq = sp ? strchr(sp, '=') : NULL;
        if (sp == NULL || eq == NULL) {
            rc = -1;
            break;
        }
        *sp = '\0';
        *eq = '\0';
        struct broker_props *p = strcmp(line, "broker") == 0 ? broker
                               : strcmp(line, "default") == 0 ? dflt : NULL;
        if (p == NULL || pct_decode_inplace(eq + 1) < 0 || broker_props_set(p, sp + 1, eq + 1) != 0) {
            rc = -1;
            break;
        }
    }
    free(text);
    if (rc != 0) {
        *bad_line = lineno;
        broker->n = 0;
        dflt->n = 0;
    }
    return rc;
}

int dynamic_configs_load(struct broker *b)
{
    b->static_cfg = b->cfg;
    if (b->cluster != NULL) {
        /* ZooKeeper is the store, as Kafka's: /config/brokers/<default> and /<id>. */
        if (cluster_await_broker_configs(b->cluster) != 0)
            return -1;
        char path[1200];
        file_path(b, path, sizeof(path));
        if (access(path, F_OK) == 0)
            LOG_WARN(WHO, "%s is not read on a cluster: ZooKeeper holds the dynamic broker "
                     "configs (/config/brokers)", path);
        dynamic_configs_cluster_sync(b);
        LOG_INFO(WHO, "Loaded %d per-broker and %d cluster-default dynamic configs from "
                 "ZooKeeper", b->dyn_broker.n, b->dyn_default.n);
        broker_log_defaults(b, &b->cfg.log);
        return 0;
    }
    char path[1200];
    file_path(b, path, sizeof(path));
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, DYNAMIC_CONFIGS_FILE_MAX, &text, &len) != 0) {
        if (errno == ENOENT) {
            broker_log_defaults(b, &b->cfg.log);
            return 0;
        }
        LOG_ERROR(WHO, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int bad_line;
    int rc = dynamic_configs_parse(text, len, &b->dyn_broker, &b->dyn_default, &bad_line);
    if (rc != 0)
        LOG_ERROR(WHO, "%s:%d: malformed line", path, bad_line);
    free(text);
    if (rc == 0) {
        LOG_INFO(WHO, "Loaded %d per-broker and %d cluster-default dynamic configs from %s",
                 b->dyn_broker.n, b->dyn_default.n, path);
        apply(b, ALL_LISTENERS, false); /* at start the stored key store is used as it is, as Kafka's */
    }
    return rc;
}

/* ---- AlterConfigs / IncrementalAlterConfigs on a BROKER resource ---- */

static int check_resource(const struct broker *b, const char *name, char *msg, size_t msglen)
{
    if (name[0] == '\0')
        return KERR_NONE;
    char *end;
    errno = 0;
    long id = strtol(name, &end, 10);
    if (errno != 0 || end == name || *end != '\0' || id < INT32_MIN || id > INT32_MAX) {
        snprintf(msg, msglen, "Node id must be an integer, but it is: %s", name);
        return KERR_INVALID_REQUEST;
    }
    if (id != b->cfg.node_id) {
        snprintf(msg, msglen, "Unexpected broker id, expected %d, but received %s", b->cfg.node_id,
                 name);
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

static int apply_op(const struct dynamic_config_op *op, struct broker_props *p, bool is_default,
                    char *msg, size_t msglen)
{
    const struct broker_key_def *def = config_catalog_broker_key(op->key);
    /* Kafka's DynamicBrokerConfig.validateConfigs on listener SSL keys. */
    if (strncmp(op->key, "ssl.", 4) == 0 && tls_key_reconfigurable(op->key)) {
        snprintf(msg, msglen, "These security configs can be dynamically updated only "
                 "per-listener using the listener prefix: Set(%s)", op->key);
        return KERR_INVALID_REQUEST;
    }
    bool listener_key = dynamic_config_listener_key(op->key);
    if (listener_ssl_base(op->key) != NULL && !listener_key) {
        snprintf(msg, msglen, "Cannot update these configs dynamically: Set(%s)", op->key);
        return KERR_INVALID_REQUEST;
    }
    if (listener_key && is_default) {
        snprintf(msg, msglen, "Cannot update these configs at default cluster level, broker id "
                 "must be specified: Set(%s)", op->key);
        return KERR_INVALID_REQUEST;
    }
    if (op->op == 1) {
        broker_props_del(p, op->key);
        return KERR_NONE;
    }
    if (listener_key && op->op != 0) {
        snprintf(msg, msglen, "Config value %s is not allowed for config key: %s",
                 op->op == 2 ? "append" : "subtract", op->key);
        return KERR_INVALID_CONFIG;
    }
    if (def == NULL && !listener_key) {
        snprintf(msg, msglen, "Unknown broker config name: %s (gregor updates only the broker "
                 "configs it has)", op->key);
        return KERR_INVALID_CONFIG;
    }
    char value[BROKER_PROP_VALUE_MAX];
    if (op->op == 2 || op->op == 3) {
        GREGOR_ASSERT(def != NULL);
        if (def->type != CONFIG_TYPE_LIST) {
            snprintf(msg, msglen, "Config value %s is not allowed for config key: %s",
                     op->op == 2 ? "append" : "subtract", op->key);
            return KERR_INVALID_CONFIG;
        }
        const char *cur = broker_props_get(p, op->key);
        if (config_catalog_list_op(cur ? cur : def->default_value, op->value, op->op == 2, value,
                                   sizeof(value)) != 0) {
            snprintf(msg, msglen, "Value of %s too long", op->key);
            return KERR_INVALID_CONFIG;
        }
    } else if (op->op == 0) {
        snprintf(value, sizeof(value), "%s", op->value);
    } else {
        snprintf(msg, msglen, "Unknown operations type %d", op->op);
        return KERR_INVALID_REQUEST;
    }
    if (broker_props_set(p, op->key, value) != 0) {
        snprintf(msg, msglen, "Value of %s too long (at most %d bytes)", op->key,
                 BROKER_PROP_VALUE_MAX - 1);
        return KERR_INVALID_CONFIG;
    }
    return KERR_NONE;
}

/* Kafka's DynamicBrokerConfig.validateConfigs: read-only keys named together, then each value
 * (ConfigException -> INVALID_REQUEST, as Kafka answers it). */
static int validate(struct broker *b, const struct broker_props *p, bool is_default,
                    unsigned listeners, char *msg, size_t msglen)
{
    char ro[400] = "";
    size_t o = 0;
    for (int i = 0; i < p->n; i++) {
        const struct broker_key_def *def = config_catalog_broker_key(p->v[i].key);
        GREGOR_ASSERT(def != NULL || dynamic_config_listener_key(p->v[i].key));
        if (def == NULL)
            continue;
        if (def->mode == BROKER_KEY_READ_ONLY && o < sizeof(ro))
            o += (size_t)snprintf(ro + o, sizeof(ro) - o, "%s%s", o ? ", " : "", p->v[i].key);
    }
    if (ro[0] != '\0') {
        snprintf(msg, msglen, "Cannot update these configs dynamically: Set(%s)", ro);
        return KERR_INVALID_REQUEST;
    }
    struct broker_config *scratch = malloc(sizeof(*scratch));
    GREGOR_ASSERT(scratch != NULL);
    *scratch = b->static_cfg;
    int e = KERR_NONE;
    for (int i = 0; i < p->n && e == KERR_NONE; i++) {
        const struct broker_key_def *def = config_catalog_broker_key(p->v[i].key);
        if (def == NULL) { /* a listener SSL key: checked by building its context below */
            if (broker_config_set(scratch, p->v[i].key, p->v[i].value, msg, msglen) != 0)
                e = KERR_INVALID_REQUEST;
            continue;
        }
        /* A key of its own (no topic config behind it) is checked against its type. */
        const struct topic_config_def typed = {.name = def->name, .type = def->type,
                                               .check = CHECK_NONE};
        const struct topic_config_def *check_as = config_catalog_checked_as(def);
        if (config_catalog_check(check_as != NULL ? check_as : &typed, def->name, p->v[i].value,
                                 msg, msglen) != 0)
            e = KERR_INVALID_REQUEST;
        else if (broker_config_set(scratch, def->name, p->v[i].value, msg, msglen) != 0)
            e = KERR_INVALID_REQUEST;
        else if (strcmp(def->name, "log.cleaner.threads") == 0 &&
                 log_cleaner_validate_threads(b, scratch->log_cleaner.threads, msg, msglen) != 0)
            e = KERR_INVALID_REQUEST;
    }
    /* A new key store is loaded and checked before it is stored (Kafka's validateReconfiguration):
     * the per-broker keys over the static ones, as apply() will combine them. */
    if (e == KERR_NONE && !is_default)
        e = listeners_reconfigure(b, scratch, listeners, true, false, msg, msglen);
    free(scratch);
    return e;
}

static int cluster_write_broker(struct broker *b, const char *resource,
                                const struct broker_props *next, struct config_answer *ans,
                                char *msg, size_t msglen);

int dynamic_configs_alter(struct broker *b, const char *resource, const struct dynamic_config_op *ops,
                          int nops, bool replace, bool validate_only, char *msg, size_t msglen)
{
    return dynamic_configs_alter_answered(b, resource, ops, nops, replace, validate_only, NULL,
                                          msg, msglen);
}

int dynamic_configs_alter_answered(struct broker *b, const char *resource,
                                   const struct dynamic_config_op *ops, int nops, bool replace,
                                   bool validate_only, struct config_answer *ans, char *msg,
                                   size_t msglen)
{
    int e = check_resource(b, resource, msg, msglen);
    if (e != KERR_NONE)
        return e;
    for (int i = 0; i < nops; i++) {
        for (int j = 0; j < i; j++)
            if (strcmp(ops[i].key, ops[j].key) == 0) {
                snprintf(msg, msglen, "Error due to duplicate config keys");
                return KERR_INVALID_REQUEST;
            }
        if (ops[i].op != 1 && ops[i].value == NULL) {
            snprintf(msg, msglen, "Null value not supported for : %s", ops[i].key);
            return KERR_INVALID_REQUEST;
        }
    }
    bool is_default = resource[0] == '\0';
    struct broker_props *cur = is_default ? &b->dyn_default : &b->dyn_broker;
    struct broker_props *next = malloc(sizeof(*next));
    GREGOR_ASSERT(next != NULL);
    if (replace)
        next->n = 0;
    else
        *next = *cur;
    for (int i = 0; i < nops && e == KERR_NONE; i++)
        e = apply_op(&ops[i], next, is_default, msg, msglen);
    if (e == KERR_NONE)
        e = validate(b, next, is_default, listeners_named(b, ops, nops), msg, msglen);
    if (e == KERR_NONE && !validate_only && b->cluster != NULL) {
        GREGOR_ASSERT(ans != NULL);
        e = cluster_write_broker(b, resource, next, ans, msg, msglen);
    } else if (e == KERR_NONE && !validate_only) {
        if (save(b, is_default ? &b->dyn_broker : next, is_default ? next : &b->dyn_default) != 0) {
            snprintf(msg, msglen, "cannot write the dynamic broker configs: %s", strerror(errno));
            e = KERR_KAFKA_STORAGE_ERROR;
        } else {
            *cur = *next;
            LOG_INFO(WHO, "%s dynamic configs updated (%d keys)",
                     is_default ? "Cluster-default" : "Per-broker", cur->n);
            apply(b, listeners_named(b, ops, nops), true);
        }
    }
    free(next);
    return e;
}

/* ---- a cluster on ZooKeeper: the configs live there (docs/CLUSTER.md) ---- */

/* A ConfigEntityZNode value for n pairs (malloc'd). */
static char *configs_json(const char *const *keys, const char *const *values, int n,
                          size_t *len)
{
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += 6 * (strlen(keys[i]) + strlen(values[i])) + 8; /* \u00XX: 6 per byte at most */
    char *out = malloc(cap);
    GREGOR_ASSERT(out != NULL);
    int k = znode_config_json(out, cap, keys, values, n);
    GREGOR_ASSERT(k > 0);
    *len = (size_t)k;
    return out;
}

char *topic_configs_json(const struct topic_config_kv *kv, int n, size_t *len)
{
    const char **keys = calloc((size_t)(n > 0 ? n : 1), sizeof(*keys));
    const char **values = calloc((size_t)(n > 0 ? n : 1), sizeof(*values));
    GREGOR_ASSERT(keys != NULL && values != NULL);
    for (int i = 0; i < n; i++) {
        keys[i] = kv[i].key;
        values[i] = kv[i].value;
    }
    char *out = configs_json(keys, values, n, len);
    free(keys);
    free(values);
    return out;
}

struct kv_collect {
    const char *who;
    struct topic_config_kv *kv;
    int n, cap;
};

static void kv_collect(void *arg, const char *key, const char *value)
{
    struct kv_collect *c = arg;
    char msg[512];
    if (strlen(key) >= sizeof(c->kv[0].key) || strlen(value) >= sizeof(c->kv[0].value)) {
        LOG_WARN(WHO, "%s: config %.64s longer than gregor keeps: ignored", c->who, key);
        return;
    }
    if (topic_config_check(key, value, msg, sizeof(msg)) != KERR_NONE) {
        LOG_WARN(WHO, "%s: config %s=%s ignored: %s", c->who, key, value, msg);
        return;
    }
    int at = c->n;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->kv[i].key, key) == 0)
            at = i; /* repeated in the object: the last one counts, as Jackson reads it */
    if (at == c->n) {
        if (c->n == c->cap) {
            int cap = c->cap ? c->cap * 2 : 8;
            struct topic_config_kv *nk = realloc(c->kv, sizeof(*nk) * (size_t)cap);
            GREGOR_ASSERT(nk != NULL);
            c->kv = nk;
            c->cap = cap;
        }
        c->n++;
    }
    snprintf(c->kv[at].key, sizeof(c->kv[at].key), "%s", key);
    snprintf(c->kv[at].value, sizeof(c->kv[at].value), "%s", value);
}

int topic_configs_parse(const char *who, const char *json, size_t len,
                        struct topic_config_kv **kv, int *n)
{
    struct kv_collect c = {.who = who};
    if (json != NULL && znode_config_parse(json, len, kv_collect, &c) < 0) {
        free(c.kv);
        *kv = NULL;
        *n = 0;
        return -1;
    }
    *kv = c.kv;
    *n = c.n;
    return 0;
}

static bool same_overrides(const struct topic *t, const struct topic_config_kv *kv, int n)
{
    if (t->noverrides != n)
        return false;
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < t->noverrides && !found; j++)
            found = strcmp(t->overrides[j].key, kv[i].key) == 0 &&
                    strcmp(t->overrides[j].value, kv[i].value) == 0;
        if (!found)
            return false;
    }
    return true;
}

struct props_collect {
    const char *who;
    struct broker_props *p;
};

static void props_collect(void *arg, const char *key, const char *value)
{
    struct props_collect *c = arg;
    const struct broker_key_def *def = config_catalog_broker_key(key);
    if (!dynamic_config_listener_key(key) &&
        (def == NULL || (def->mode != BROKER_KEY_DYNAMIC && def->mode != BROKER_KEY_QUOTA))) {
        LOG_WARN(WHO, "%s: %.64s is not a dynamic broker config gregor has: ignored", c->who,
                 key);
        return;
    }
    if (broker_props_set(c->p, key, value) != 0)
        LOG_WARN(WHO, "%s: %s's value is longer than gregor keeps (%d bytes): ignored", c->who,
                 key, BROKER_PROP_VALUE_MAX - 1);
}

/* /config/brokers/<x> into p: keys gregor cannot change at runtime are logged and left out
 * (Kafka ignores invalid dynamic configs it reads from ZooKeeper likewise). */
static void props_from_json(const char *who, const char *json, size_t len,
                            struct broker_props *p)
{
    p->n = 0;
    struct props_collect c = {.who = who, .p = p};
    if (json != NULL && znode_config_parse(json, len, props_collect, &c) < 0)
        p->n = 0; /* the cluster keeps only well-formed values: not reached */
}

void dynamic_configs_cluster_sync(struct broker *b)
{
    if (b->cluster == NULL)
        return;
    uint64_t gen = cluster_config_gen(b->cluster);
    if (gen == b->cluster_configs_applied)
        return;
    bool broker_changed = false;
    for (int k = 0; k < 2; k++) {
        size_t len;
        uint64_t bgen;
        const char *json = cluster_broker_config(b->cluster, k == 0, &len, &bgen);
        if (bgen == b->cluster_broker_gen[k])
            continue;
        b->cluster_broker_gen[k] = bgen;
        props_from_json(k == 0 ? "/config/brokers/<default>" : "/config/brokers/<id>", json, len,
                        k == 0 ? &b->dyn_default : &b->dyn_broker);
        broker_changed = true;
    }
    if (broker_changed) {
        LOG_INFO(WHO, "Dynamic broker configs from ZooKeeper: %d per-broker, %d cluster-default",
                 b->dyn_broker.n, b->dyn_default.n);
        /* Which listener keys the change named is not known here: each listener is rebuilt
         * if what it is built from changed. */
        apply(b, ALL_LISTENERS, b->cluster_configs_applied != 0);
    }
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, t->name);
        if (ct == NULL || !ct->config_known || ct->config_gen <= b->cluster_configs_applied)
            continue;
        struct topic_config_kv *kv;
        int n;
        if (topic_configs_parse(t->name, ct->config, (size_t)ct->config_len, &kv, &n) == 0 &&
            !same_overrides(t, kv, n)) {
            LOG_INFO(WHO, "Topic %s: %d config overrides from ZooKeeper", t->name, n);
            if (topic_set_overrides(b, t, kv, n) != KERR_NONE)
                LOG_LIMITED(LOG_LEVEL_WARN, WHO, "cannot persist the configs of topic %s",
                            t->name);
        }
        free(kv);
    }
    b->cluster_configs_applied = gen;
}

/* ---- answering requests whose change went to ZooKeeper ---- */

void config_answer_done(void *arg, int kerr, const char *msg)
{
    struct config_answer *a = arg;
    struct config_answers *all = a->all;
    GREGOR_ASSERT(all->left > 0);
    if (kerr != KERR_NONE) {
        *a->error_code = (int16_t)kerr;
        *a->error_message = kstr_of(request_strdup(all->r, msg));
    }
    if (--all->left == 0 && all->started)
        request_finish(all->r);
}

int config_answers_pending(struct config_answers *all)
{
    all->started = true;
    return all->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
}

int topic_configs_write(struct broker *b, const char *topic, const struct topic_config_kv *kv,
                        int n, struct config_answer *ans, char *msg, size_t msglen)
{
    size_t len;
    char *json = topic_configs_json(kv, n, &len);
    int e = cluster_config_write(b->cluster, "topics", topic, json, len, config_answer_done, ans,
                                 msg, msglen);
    free(json);
    if (e == KERR_NONE)
        ans->all->left++;
    return e;
}

static int cluster_write_broker(struct broker *b, const char *resource,
                                const struct broker_props *next, struct config_answer *ans,
                                char *msg, size_t msglen)
{
    const char *keys[BROKER_PROPS_MAX], *values[BROKER_PROPS_MAX];
    GREGOR_ASSERT(next->n <= BROKER_PROPS_MAX);
    for (int i = 0; i < next->n; i++) {
        keys[i] = next->v[i].key;
        values[i] = next->v[i].value;
    }
    size_t len;
    char *json = configs_json(keys, values, next->n, &len);
    int e = cluster_config_write(b->cluster, "brokers", resource[0] ? resource : "<default>",
                                 json, len, config_answer_done, ans, msg, msglen);
    free(json);
    if (e == KERR_NONE)
        ans->all->left++;
    return e;
}
