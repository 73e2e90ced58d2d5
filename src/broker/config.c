/* config: server.properties — Kafka's keys, defaults and value rules. Every key is a row of
 * config_catalog_broker (type, range, unit, field); this file parses values into the fields the
 * rows name, and the few keys with a form of their own (listeners, log.dirs, enums). Kafka keys
 * with no meaning on one node are accepted with a log line; anything else gets a warning that
 * names it. A bad value refuses to start. */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "cluster/zk.h"
#include "common/logging.h"
#include "common/util.h"

#define CONFIG_LINE_MAX (1 << 20) /* bytes in one server.properties line */

#define WHO "KafkaConfig"

void broker_config_defaults(struct broker_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listener_host, sizeof(c->listener_host), "127.0.0.1");
    c->listener_port = 9092;
    c->advertised_port = -1; /* = listener */
    snprintf(c->log_dirs[0], sizeof(c->log_dirs[0]), "data");
    c->n_log_dirs = 1;
    c->node_id = 0;
    c->num_partitions = 1;
    c->default_replication_factor = 1;
    c->auto_create_topics = true;
    c->delete_topic_enable = true;
    c->socket_request_max_bytes = 104857600;
    c->max_connections = 10000;
    c->max_connections_per_ip = INT_MAX;
    c->connections_max_idle_ms = 600000;
    c->queued_max_request_bytes = -1;
    c->request_read_timeout_ms = 30000;
    c->fetch_max_bytes = 57671680;
    c->quota_window_num = 11;
    c->quota_window_size_seconds = 1;
    c->max_connection_creation_rate = INT_MAX;
    c->controller_quota_window_num = 11;
    c->controller_quota_window_size_seconds = 1;
    log_config_defaults(&c->log);
    c->log_retention_check_interval_ms = 300000;
    c->log_flush_scheduler_interval_ms = 1000;
    c->offset_checkpoint_interval_ms = 60000;
    c->replica_lag_time_max_ms = 30000;
    c->replica_high_watermark_checkpoint_interval_ms = 5000;
    c->offsets_topic_num_partitions = 50;
    c->offsets_topic_segment_bytes = 104857600;
    c->offsets_topic_replication_factor = 3; /* Kafka's default; server.properties says 1 */
    c->offsets_retention_ms = 7LL * 24 * 3600 * 1000;
    c->transaction_state_log_num_partitions = 50;
    c->transaction_state_log_replication_factor = 3;
    c->transaction_state_log_min_isr = 2;
    c->transaction_max_timeout_ms = 900000;
    c->transaction_partition_verification_enable = true;
    c->transactional_id_expiration_ms = 604800000;
    c->transaction_abort_interval_ms = 10000;
    c->transaction_expire_interval_ms = 3600000;
    c->group_initial_rebalance_delay_ms = 3000;
    c->group_min_session_timeout_ms = 6000;
    c->group_max_session_timeout_ms = 1800000;
    c->group_max_size = INT_MAX;
    c->group_consumer_session_timeout_ms = 45000;
    c->group_consumer_heartbeat_interval_ms = 5000;
    c->group_consumer_max_size = INT_MAX;
    c->offset_metadata_max_bytes = 4096;
    c->acks_all_fsync = true;
    c->zookeeper_session_timeout_ms = 18000;
    c->zookeeper_connection_timeout_ms = -1;
    c->num_replica_fetchers = 1;
    c->leader_replication_throttled_rate = REPLICATION_QUOTA_NONE;
    c->follower_replication_throttled_rate = REPLICATION_QUOTA_NONE;
    c->replica_alter_log_dirs_io_max_bytes_per_second = REPLICATION_QUOTA_NONE;
    c->replica_fetch_wait_max_ms = 500;
    c->replica_fetch_min_bytes = 1;
    c->replica_fetch_max_bytes = 1048576;
    c->replica_fetch_response_max_bytes = 10485760;
    c->replica_fetch_backoff_ms = 1000;
    c->replica_socket_timeout_ms = 30000;
    c->controlled_shutdown_enable = true;
    c->controlled_shutdown_max_retries = 3;
    c->controlled_shutdown_retry_backoff_ms = 5000;
    c->unclean_leader_election_enable = false;
    c->auto_leader_rebalance_enable = true;
    c->leader_imbalance_check_interval_s = 300;
    c->leader_imbalance_per_broker_percentage = 10;
    c->log_cleaner.enable = true;
    c->log_cleaner.threads = 1;
    c->log_cleaner.dedupe_buffer_size = 134217728;
    c->log_cleaner.io_buffer_load_factor = 0.9;
    c->log_cleaner.io_buffer_size = 524288;
    c->log_cleaner.io_max_bytes_per_second = DBL_MAX;
    c->log_cleaner.backoff_ms = 15000;
}

static int parse_i64(const char *v, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(v, "false") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

/* "PLAINTEXT://host:port" (first listener only; host may be empty = all interfaces). */
static int parse_listener(const char *v, char *host, size_t hostlen, int *port)
{
    const char *p = strstr(v, "://");
    p = p ? p + 3 : v;
    char first[512];
    snprintf(first, sizeof(first), "%s", p);
    char *comma = strchr(first, ',');
    if (comma)
        *comma = '\0';
    char *colon = strrchr(first, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    int64_t pt;
    if (parse_i64(colon + 1, 0, 65535, &pt) < 0)
        return -1;
    char *h = first;
    if (h[0] == '[') { /* [::1] */
        h++;
        char *rb = strchr(h, ']');
        if (rb)
            *rb = '\0';
    }
    size_t hl = strlen(h);
    if (hl >= hostlen)
        return -1;
    memcpy(host, h, hl + 1);
    *port = (int)pt;
    return 0;
}

static int set_special(struct broker_config *c, const char *key, const char *v, char *err,
                       size_t errlen)
{
    if (strcmp(key, "listeners") == 0) {
        if (strlen(v) >= sizeof(c->listeners_spec) ||
            parse_listener(v, c->listener_host, sizeof(c->listener_host), &c->listener_port) < 0)
            goto bad;
        snprintf(c->listeners_spec, sizeof(c->listeners_spec), "%s", v);
        return 0;
    }
    if (strcmp(key, "advertised.listeners") == 0) {
        if (strlen(v) >= sizeof(c->advertised_spec) ||
            parse_listener(v, c->advertised_host, sizeof(c->advertised_host),
                           &c->advertised_port) < 0)
            goto bad;
        snprintf(c->advertised_spec, sizeof(c->advertised_spec), "%s", v);
        return 0;
    }
    if (strcmp(key, "listener.security.protocol.map") == 0) {
        if (strlen(v) >= sizeof(c->protocol_map_spec))
            goto bad;
        snprintf(c->protocol_map_spec, sizeof(c->protocol_map_spec), "%s", v);
        return 0;
    }
    if (strcmp(key, "log.dirs") == 0 || strcmp(key, "log.dir") == 0) {
        /* log.dirs wins over log.dir, as in Kafka. */
        if (strcmp(key, "log.dir") == 0 && c->log_dirs_explicit)
            return 0;
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s", v);
        int n = 0;
        for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*tok))
                tok++;
            if (*tok == '\0')
                continue;
            if (n == BROKER_MAX_LOG_DIRS)
                goto bad;
            snprintf(c->log_dirs[n++], sizeof(c->log_dirs[0]), "%s", tok);
        }
        if (n == 0)
            goto bad;
        c->n_log_dirs = n;
        if (strcmp(key, "log.dirs") == 0)
            c->log_dirs_explicit = true;
        return 0;
    }
    if (strcmp(key, "default.replication.factor") == 0 ||
        strcmp(key, "offsets.topic.replication.factor") == 0) {
        int64_t x;
        if (parse_i64(v, 1, 32767, &x) < 0)
            goto bad;
        if (strcmp(key, "default.replication.factor") == 0)
            c->default_replication_factor = (int16_t)x;
        else
            c->offsets_topic_replication_factor = (int16_t)x; /* used on ZooKeeper only: one
                                                                * node keeps one replica */
        return 0;
    }
    if (strcmp(key, "group.consumer.migration.policy") == 0) {
        /* Kafka's ConsumerGroupMigrationPolicy, case-insensitive; the order of the enum in
         * group/coordinator.h (0 = bidirectional, the default). */
        static const char *const policies[] = {"bidirectional", "upgrade", "downgrade", "disabled"};
        for (int i = 0; i < 4; i++)
            if (strcasecmp(v, policies[i]) == 0) {
                c->group_consumer_migration_policy = i;
                return 0;
            }
        goto bad;
    }
    if (strcmp(key, "log.cleaner.io.buffer.load.factor") == 0 ||
        strcmp(key, "log.cleaner.io.max.bytes.per.second") == 0) {
        /* Java's Double.parseDouble; no validator in Kafka's CleanerConfig. */
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end != '\0' || isnan(d))
            goto bad;
        if (strcmp(key, "log.cleaner.io.buffer.load.factor") == 0)
            c->log_cleaner.io_buffer_load_factor = d;
        else
            c->log_cleaner.io_max_bytes_per_second = d;
        return 0;
    }
    if (strcmp(key, "log.message.timestamp.type") == 0) {
        if (strcmp(v, "CreateTime") == 0)
            c->log.timestamp_type = LOG_TS_CREATE_TIME;
        else if (strcmp(v, "LogAppendTime") == 0)
            c->log.timestamp_type = LOG_TS_LOG_APPEND_TIME;
        else
            goto bad;
        return 0;
    }
    if (strcmp(key, "max.connections.per.ip.overrides") == 0) {
        /* Kafka's form: host:count pairs separated by commas (IPv6 hosts in brackets). */
        if (strlen(v) >= sizeof(c->max_connections_per_ip_overrides))
            goto bad;
        char tmp[sizeof(c->max_connections_per_ip_overrides)];
        snprintf(tmp, sizeof(tmp), "%s", v);
        for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            char *colon = strrchr(tok, ':');
            int64_t n;
            if (colon == NULL || colon == tok || parse_i64(colon + 1, 0, INT_MAX, &n) != 0)
                goto bad;
        }
        snprintf(c->max_connections_per_ip_overrides,
                 sizeof(c->max_connections_per_ip_overrides), "%s", v);
        return 0;
    }
    if (strcmp(key, "authorizer.class.name") == 0) {
        /* Kafka instantiates the class named; gregor has Kafka's two authorizers, which
         * decide alike (authorizer.c). Another name fails the start. */
        if (v[0] != '\0' && strcmp(v, "kafka.security.authorizer.AclAuthorizer") != 0 &&
            strcmp(v, "org.apache.kafka.metadata.authorizer.StandardAuthorizer") != 0) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: class not found "
                     "(kafka.security.authorizer.AclAuthorizer and "
                     "org.apache.kafka.metadata.authorizer.StandardAuthorizer are available)",
                     v, key);
            return -1;
        }
        snprintf(c->authorizer_class_name, sizeof(c->authorizer_class_name), "%s", v);
        return 0;
    }
    if (strcmp(key, "super.users") == 0) {
        if (strlen(v) >= sizeof(c->super_users))
            goto bad;
        snprintf(c->super_users, sizeof(c->super_users), "%s", v);
        return 0;
    }
    if (strcmp(key, "gregor.http.listener") == 0) {
        /* host:port, [v6]:port or :port; checked again (and bound) by console_start. */
        const char *colon = strrchr(v, ':');
        if (v[0] != '\0' && (strlen(v) >= sizeof(c->http_listener) || colon == NULL ||
                             colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
                             atoi(colon + 1) > 65535))
            goto bad;
        snprintf(c->http_listener, sizeof(c->http_listener), "%s", v);
        return 0;
    }
    if (strcmp(key, "broker.rack") == 0) {
        if (strlen(v) >= sizeof(c->broker_rack))
            goto bad;
        snprintf(c->broker_rack, sizeof(c->broker_rack), "%s", v);
        return 0;
    }
    if (strcmp(key, "replica.selector.class") == 0) {
        /* Kafka instantiates the class named; gregor has Kafka's two. Another name fails the
         * start, as Kafka's ClassNotFoundException does. */
        if (strcmp(v, "org.apache.kafka.common.replica.RackAwareReplicaSelector") == 0)
            c->replica_selector_rack_aware = true;
        else if (strcmp(v, "org.apache.kafka.common.replica.LeaderSelector") == 0 || v[0] == '\0')
            c->replica_selector_rack_aware = false;
        else {
            snprintf(err, errlen, "Invalid value %s for configuration %s: class not found "
                     "(org.apache.kafka.common.replica.RackAwareReplicaSelector and "
                     "org.apache.kafka.common.replica.LeaderSelector are available)", v, key);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "cluster.id") == 0) {
        snprintf(c->cluster_id, sizeof(c->cluster_id), "%s", v);
        return 0;
    }
    if (strcmp(key, "zookeeper.connect") == 0) {
        char hosts[1024], chroot[1024];
        if (v[0] != '\0' && (strlen(v) >= sizeof(c->zookeeper_connect) ||
                             zk_connect_string_parse(v, hosts, sizeof(hosts), chroot,
                                                     sizeof(chroot)) != 0))
            goto bad;
        snprintf(c->zookeeper_connect, sizeof(c->zookeeper_connect), "%s", v);
        return 0;
    }
bad:
    snprintf(err, errlen, "Invalid value %s for configuration %s", v, key);
    return -1;
}

/* Kafka's precedence: log.retention.ms over .minutes over .hours, log.roll.ms over .hours,
 * whatever order they are given in. Returns false when a finer key already set the value. */
static bool precedence_allows(struct broker_config *c, const char *key)
{
    static const struct { const char *key; int rank; bool roll; } ranks[] = {
        {"log.retention.hours", 1, false}, {"log.retention.minutes", 2, false},
        {"log.retention.ms", 3, false}, {"log.roll.hours", 1, true}, {"log.roll.ms", 2, true},
    };
    for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
        if (strcmp(ranks[i].key, key) != 0)
            continue;
        int *have = ranks[i].roll ? &c->roll_key_rank : &c->retention_key_rank;
        if (*have > ranks[i].rank)
            return false;
        *have = ranks[i].rank;
    }
    return true;
}

const char *broker_props_get(const struct broker_props *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0)
            return p->v[i].value;
    return NULL;
}

int broker_props_set(struct broker_props *p, const char *key, const char *value)
{
    if (strlen(key) >= sizeof(p->v[0].key) || strlen(value) >= sizeof(p->v[0].value))
        return -1;
    int at = -1;
    for (int i = 0; i < p->n && at < 0; i++)
        if (strcmp(p->v[i].key, key) == 0)
            at = i;
    if (at < 0) {
        if (p->n == BROKER_PROPS_MAX)
            return -1;
        at = p->n++;
    }
    snprintf(p->v[at].key, sizeof(p->v[at].key), "%s", key);
    snprintf(p->v[at].value, sizeof(p->v[at].value), "%s", value);
    return 0;
}

void broker_props_del(struct broker_props *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0) {
            p->v[i] = p->v[--p->n];
            return;
        }
}

/* A key DescribeConfigs shows is kept as given at startup, for DescribeConfigs and for the
 * topic configs that fall back to it; a value its topic config refuses stops the start. */
static int record_static(struct broker_config *c, const struct broker_key_def *def,
                         const char *value, char *err, size_t errlen)
{
    if (def->mode == BROKER_KEY_STARTUP)
        return 0;
    const struct topic_config_def *check_as = config_catalog_checked_as(def);
    if (check_as != NULL && config_catalog_check(check_as, def->name, value, err, errlen) != 0)
        return -1;
    if (broker_props_set(&c->static_props, def->name, value) != 0)
        LOG_WARN(WHO, "%s: value too long to show in DescribeConfigs (%zu bytes)", def->name,
                 strlen(value));
    return 0;
}

/* Sets def's field from value, as the catalog row says (type, range, unit). */
static int set_field(struct broker_config *c, const struct broker_key_def *def, const char *value,
                     char *err, size_t errlen)
{
    char *field = (char *)c + def->offset;
    int64_t x;
    switch (def->store) {
    case BROKER_STORE_SPECIAL:
        return set_special(c, def->name, value, err, errlen);
    case BROKER_STORE_NONE:
        if (def->topic == NULL)
            LOG_INFO(WHO, "%s=%s has no effect on a single-node gregor broker; accepted",
                     def->name, value);
        return 0;
    case BROKER_STORE_BOOL:
        if (parse_bool(value, (bool *)field) == 0)
            return 0;
        snprintf(err, errlen, "Invalid value %s for configuration %s", value, def->name);
        return -1;
    case BROKER_STORE_I32:
    case BROKER_STORE_I64:
        break;
    }
    GREGOR_ASSERT(def->offset + (def->store == BROKER_STORE_I32 ? sizeof(int32_t) : sizeof(int64_t))
                  <= sizeof(*c));
    if (parse_i64(value, def->min, def->max, &x) < 0) {
        if (parse_i64(value, INT64_MIN, INT64_MAX, &x) == 0 && x < def->min)
            /* Kafka's ConfigDef.Range wording */
            snprintf(err, errlen, "Invalid value %s for configuration %s: Value must be at least %" PRId64,
                     value, def->name, def->min);
        else
            snprintf(err, errlen, "Invalid value %s for configuration %s", value, def->name);
        return -1;
    }
    if (def->scale != 1 && x > 0)
        x *= def->scale;
    if (def->store == BROKER_STORE_I32)
        *(int32_t *)field = (int32_t)x;
    else
        *(int64_t *)field = x;
    return 0;
}

/* ---- listeners ---- */

static void trim(char **s)
{
    while (isspace((unsigned char)**s))
        (*s)++;
    size_t n = strlen(*s);
    while (n > 0 && isspace((unsigned char)(*s)[n - 1]))
        (*s)[--n] = '\0';
}

/* "NAME://host:port" (host empty: all interfaces; IPv6 in brackets). */
static int parse_endpoint(char *tok, char *name, size_t namelen, char *host, size_t hostlen,
                          int *port)
{
    trim(&tok);
    char *sep = strstr(tok, "://");
    if (sep == NULL || sep == tok || (size_t)(sep - tok) >= namelen)
        return -1;
    memcpy(name, tok, (size_t)(sep - tok));
    name[sep - tok] = '\0';
    for (char *p = name; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    char *h = sep + 3;
    char *colon = strrchr(h, ':');
    int64_t pt;
    if (colon == NULL || parse_i64(colon + 1, 0, 65535, &pt) < 0)
        return -1;
    *colon = '\0';
    if (h[0] == '[') {
        h++;
        char *rb = strchr(h, ']');
        if (rb == NULL)
            return -1;
        *rb = '\0';
    }
    if (strlen(h) >= hostlen)
        return -1;
    snprintf(host, hostlen, "%s", h);
    *port = (int)pt;
    return 0;
}

/* The protocol listener.security.protocol.map gives name (Kafka's default map names each
 * protocol after itself), or NULL. */
static const char *protocol_of(const char *map, const char *name, char *out, size_t len)
{
    static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
    if (map[0] == '\0') {
        for (size_t i = 0; i < 4; i++)
            if (strcmp(protocols[i], name) == 0)
                return snprintf(out, len, "%s", protocols[i]) < (int)len ? out : NULL;
        return NULL;
    }
    char tmp[sizeof(((struct broker_config *)0)->protocol_map_spec)];
    snprintf(tmp, sizeof(tmp), "%s", map);
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        char *k = tok, *v = colon + 1;
        trim(&k);
        trim(&v);
        if (strcasecmp(k, name) != 0)
            continue;
        for (size_t i = 0; i < 4; i++)
            if (strcasecmp(protocols[i], v) == 0)
                return snprintf(out, len, "%s", protocols[i]) < (int)len ? out : NULL;
        return NULL;
    }
    return NULL;
}

/* The listener other brokers reach, as Kafka's KafkaConfig picks and checks it:
 * inter.broker.listener.name, else the listener named after security.inter.broker.protocol
 * (PLAINTEXT when neither is set); one of the advertised listeners. */
static int inter_broker_listener(struct broker_config *c, char *err, size_t errlen)
{
    char name[64];
    if (c->inter_broker_listener_spec[0] != '\0' && c->inter_broker_protocol_spec[0] != '\0') {
        snprintf(err, errlen, "Only one of inter.broker.listener.name and "
                 "security.inter.broker.protocol should be set.");
        return -1;
    }
    if (c->inter_broker_protocol_spec[0] != '\0') {
        static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
        const char *p = NULL;
        for (size_t i = 0; i < 4; i++)
            if (strcasecmp(protocols[i], c->inter_broker_protocol_spec) == 0)
                p = protocols[i];
        if (p == NULL) {
            snprintf(err, errlen, "Invalid value %s for configuration "
                     "security.inter.broker.protocol: String must be one of: PLAINTEXT, SSL, "
                     "SASL_PLAINTEXT, SASL_SSL", c->inter_broker_protocol_spec);
            return -1;
        }
        snprintf(name, sizeof(name), "%s", p);
    } else {
        snprintf(name, sizeof(name), "%s",
                 c->inter_broker_listener_spec[0] != '\0' ? c->inter_broker_listener_spec
                                                           : "PLAINTEXT");
    }
    for (char *p = name; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    for (int i = 0; i < c->n_listeners; i++) {
        if (strcmp(c->listeners[i].name, name) == 0) {
            c->inter_broker_listener = i;
            return 0;
        }
    }
    if (c->inter_broker_listener_spec[0] == '\0' && c->inter_broker_protocol_spec[0] == '\0' &&
        c->zookeeper_connect[0] == '\0') {
        /* One node talks to no other broker: keep the first PLAINTEXT listener (else the first)
         * as the one named, rather than Kafka's refusal of a config it never uses. */
        c->inter_broker_listener = 0;
        for (int i = c->n_listeners - 1; i >= 0; i--)
            if (strcmp(c->listeners[i].security_protocol, "PLAINTEXT") == 0)
                c->inter_broker_listener = i;
        return 0;
    }
    size_t n = (size_t)snprintf(err, errlen, "requirement failed: inter.broker.listener.name "
                                "must be a listener name defined in advertised.listeners. The "
                                "valid options based on currently configured listeners are ");
    for (int i = 0; i < c->n_listeners && n < errlen; i++)
        n += (size_t)snprintf(err + n, errlen - n, "%s%s", i ? "," : "", c->listeners[i].name);
    return -1;
}

int broker_config_listeners(struct broker_config *c, char *err, size_t errlen)
{
    char spec[sizeof(c->listeners_spec)];
    if (c->listeners_spec[0] != '\0')
        snprintf(spec, sizeof(spec), "%s", c->listeners_spec);
    else /* gregor's default: PLAINTEXT on listener_host:listener_port */
        snprintf(spec, sizeof(spec), "PLAINTEXT://%s%s%s:%d",
                 strchr(c->listener_host, ':') ? "[" : "", c->listener_host,
                 strchr(c->listener_host, ':') ? "]" : "", c->listener_port);
    c->n_listeners = 0;
    for (char *save = NULL, *tok = strtok_r(spec, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (c->n_listeners == BROKER_MAX_LISTENERS) {
            snprintf(err, errlen, "Invalid value %s for configuration listeners: at most %d "
                     "listeners", c->listeners_spec, BROKER_MAX_LISTENERS);
            return -1;
        }
        struct broker_listener *l = &c->listeners[c->n_listeners];
        memset(l, 0, sizeof(*l));
        if (parse_endpoint(tok, l->name, sizeof(l->name), l->host, sizeof(l->host), &l->port) < 0) {
            snprintf(err, errlen, "Invalid value %s for configuration listeners: Unable to parse "
                     "%s to a broker endpoint", c->listeners_spec, tok);
            return -1;
        }
        if (protocol_of(c->protocol_map_spec, l->name, l->security_protocol,
                        sizeof(l->security_protocol)) == NULL) {
            snprintf(err, errlen, "Invalid value %s for configuration listeners: No security "
                     "protocol defined for listener %s (listener.security.protocol.map)",
                     c->listeners_spec, l->name);
            return -1;
        }
        for (int i = 0; i < c->n_listeners; i++) {
            if (strcmp(c->listeners[i].name, l->name) == 0) {
                snprintf(err, errlen, "Invalid value %s for configuration listeners: Each "
                         "listener must have a different name", c->listeners_spec);
                return -1;
            }
            if (c->listeners[i].port == l->port && l->port != 0) {
                snprintf(err, errlen, "Invalid value %s for configuration listeners: Each "
                         "listener must have a different port", c->listeners_spec);
                return -1;
            }
        }
        const char *h = l->host;
        snprintf(l->advertised_host, sizeof(l->advertised_host), "%s",
                 (h[0] == '\0' || strcmp(h, "0.0.0.0") == 0) ? "localhost" : h);
        l->advertised_port = l->port;
        c->n_listeners++;
    }
    if (c->n_listeners == 0) {
        snprintf(err, errlen, "Invalid value %s for configuration listeners: no listener",
                 c->listeners_spec);
        return -1;
    }
    if (c->advertised_spec[0] != '\0') {
        char adv[sizeof(c->advertised_spec)];
        snprintf(adv, sizeof(adv), "%s", c->advertised_spec);
        for (char *save = NULL, *tok = strtok_r(adv, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            char name[64], host[256];
            int port;
            if (parse_endpoint(tok, name, sizeof(name), host, sizeof(host), &port) < 0) {
                snprintf(err, errlen, "Invalid value %s for configuration advertised.listeners: "
                         "Unable to parse %s to a broker endpoint", c->advertised_spec, tok);
                return -1;
            }
            struct broker_listener *l = NULL;
            for (int i = 0; i < c->n_listeners && l == NULL; i++)
                if (strcmp(c->listeners[i].name, name) == 0)
                    l = &c->listeners[i];
            if (l == NULL) {
                snprintf(err, errlen, "Invalid value %s for configuration advertised.listeners: "
                         "advertised.listeners listener names must be equal to or a subset of "
                         "the ones defined in listeners. Found %s. The valid options based on "
                         "the current configuration are %s", c->advertised_spec, name,
                         c->listeners_spec);
                return -1;
            }
            snprintf(l->advertised_host, sizeof(l->advertised_host), "%s",
                     host[0] != '\0' ? host : "localhost");
            l->advertised_port = port;
        }
    }
    if (inter_broker_listener(c, err, errlen) != 0)
        return -1;
    /* The listener ZooKeeper's "host"/"port" and other brokers reach: the inter-broker one. */
    const struct broker_listener *first = &c->listeners[c->inter_broker_listener];
    memmove(c->listener_host, first->host, strlen(first->host) + 1); /* both 256 bytes */
    c->listener_port = first->port;
    memmove(c->advertised_host, first->advertised_host, strlen(first->advertised_host) + 1);
    c->advertised_port = first->advertised_port;
    return 0;
}

/* ---- ssl.* and listener.name.* ---- */

static bool security_key(const char *key)
{
    /* sasl.*, <mechanism>.sasl.jaas.config and the authentication keys are read by sasl.c. */
    return strncmp(key, "ssl.", 4) == 0 || strncmp(key, "listener.name.", 14) == 0 ||
           strncmp(key, "sasl.", 5) == 0 || strstr(key, ".sasl.jaas.config") != NULL ||
           strcmp(key, "connection.failed.authentication.delay.ms") == 0 ||
           strcmp(key, "connections.max.reauth.ms") == 0;
}

/* Kafka's broker ssl.* keys (SslConfigs): another one is stored, with Kafka's warning. */
static bool ssl_key_known(const char *key)
{
    static const char *const known[] = {
        "ssl.protocol", "ssl.provider", "ssl.cipher.suites", "ssl.enabled.protocols",
        "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
        "ssl.keystore.key", "ssl.keystore.certificate.chain", "ssl.truststore.type",
        "ssl.truststore.location", "ssl.truststore.password", "ssl.truststore.certificates",
        "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
        "ssl.endpoint.identification.algorithm", "ssl.secure.random.implementation",
        "ssl.client.auth", "ssl.principal.mapping.rules", "ssl.engine.factory.class",
        "ssl.allow.dn.changes", "ssl.allow.san.changes",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(known[i], key) == 0)
            return true;
    return false;
}

static int security_prop_set(struct broker_config *c, const char *key, const char *value,
                             char *err, size_t errlen)
{
    /* listener.name.<listener>.ssl.x names ssl.x for one listener (listener names hold no '.'). */
    const char *ssl_key = key;
    if (strncmp(key, "listener.name.", 14) == 0) {
        const char *dot = strchr(key + 14, '.');
        ssl_key = dot != NULL ? dot + 1 : "";
    }
    if (strncmp(ssl_key, "ssl.", 4) == 0 && !ssl_key_known(ssl_key))
        LOG_WARN(WHO, "The configuration '%s' was supplied but isn't a known config.", key);
    struct broker_security_props *p = &c->security;
    size_t kl = strlen(key), vl = strlen(value);
    if (p->used + kl + vl + 2 > sizeof(p->buf)) {
        snprintf(err, errlen, "Invalid value for configuration %s: the ssl.* and "
                 "listener.name.* keys take more than %d bytes in all", key,
                 BROKER_SECURITY_PROPS_BYTES);
        return -1;
    }
    memcpy(p->buf + p->used, key, kl + 1);
    memcpy(p->buf + p->used + kl + 1, value, vl + 1);
    p->used += kl + vl + 2;
    GREGOR_ASSERT(p->used <= sizeof(p->buf));
    return 0;
}

/* The value of key, and in *stored the key as stored (lives as long as c). */
static const char *security_prop_get(const struct broker_config *c, const char *key,
                                     const char **stored)
{
    const struct broker_security_props *p = &c->security;
    const char *found = NULL;
    for (size_t at = 0; at < p->used;) {
        const char *k = p->buf + at;
        const char *v = k + strlen(k) + 1;
        if (strcmp(k, key) == 0) {
            found = v; /* the last one given counts */
            *stored = k;
        }
        at = (size_t)(v + strlen(v) + 1 - p->buf);
    }
    return found;
}

const char *broker_security_prop(const struct broker_config *c, const char *listener,
                                 const char *key, const char **key_used)
{
    char prefixed[256], lower[64];
    size_t i = 0;
    for (; listener != NULL && listener[i] != '\0' && i + 1 < sizeof(lower); i++)
        lower[i] = (char)tolower((unsigned char)listener[i]);
    lower[i] = '\0';
    snprintf(prefixed, sizeof(prefixed), "listener.name.%s.%s", lower, key);
    const char *stored = NULL;
    const char *v = security_prop_get(c, prefixed, &stored);
    if (v == NULL) {
        stored = key;
        v = security_prop_get(c, key, &stored);
    }
    if (key_used != NULL)
        *key_used = stored;
    return v;
}

int broker_config_set(struct broker_config *c, const char *key, const char *value, char *err,
                      size_t errlen)
{
    if (security_key(key))
        return security_prop_set(c, key, value, err, errlen);
    if (strcmp(key, "inter.broker.listener.name") == 0 ||
        strcmp(key, "security.inter.broker.protocol") == 0) {
        bool name = key[0] == 'i';
        char *dst = name ? c->inter_broker_listener_spec : c->inter_broker_protocol_spec;
        size_t cap = name ? sizeof(c->inter_broker_listener_spec)
                          : sizeof(c->inter_broker_protocol_spec);
        if (strlen(value) >= cap) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: too long", value, key);
            return -1;
        }
        snprintf(dst, cap, "%s", value);
        return 0;
    }
    const struct broker_key_def *def = config_catalog_broker_key_any(key);
    if (def == NULL) {
        LOG_WARN(WHO, "The configuration '%s' was supplied but isn't a known config.", key);
        return 0;
    }
    if (record_static(c, def, value, err, errlen) != 0)
        return -1;
    const struct topic_config_def *check_as = config_catalog_checked_as(def);
    if (check_as != NULL && !check_as->implemented)
        return 0; /* stored for the topics that fall back to it; no typed field */
    int rank_before = c->retention_key_rank, roll_before = c->roll_key_rank;
    if (!precedence_allows(c, key)) {
        LOG_INFO(WHO, "%s=%s ignored: a finer-grained key already set this value", key, value);
        return 0;
    }
    int rc = set_field(c, def, value, err, errlen);
    if (rc != 0) {
        c->retention_key_rank = rank_before;
        c->roll_key_rank = roll_before;
    }
    return rc;
}

int broker_config_set_static(struct broker_config *c, const char *key, const char *value,
                             char *err, size_t errlen)
{
    const struct broker_key_def *def = config_catalog_broker_key_any(key);
    if (def != NULL && def->mode == BROKER_KEY_QUOTA) {
        /* Not a KafkaConfig key: Kafka's broker logs it and applies only the dynamic one. */
        LOG_WARN(WHO, "The configuration '%s' was supplied but isn't a known config.", key);
        return 0;
    }
    return broker_config_set(c, key, value, err, errlen);
}

int broker_config_load_file(struct broker_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* Whole lines of any length up to a bound: a fixed buffer cut a long line in two and
     * parsed its tail as a line of its own (a long comment's text could set a key). */
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)got > CONFIG_LINE_MAX) {
            snprintf(err, errlen, "%s:%d: line longer than %d bytes", path, lineno, CONFIG_LINE_MAX);
            rc = -1;
            break;
        }
        if (memchr(line, '\0', (size_t)got) != NULL) {
            snprintf(err, errlen, "%s:%d: a NUL byte", path, lineno);
            rc = -1;
            break;
        }
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '#' || *s == '!' || *s == '\0')
            continue;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            s[--n] = '\0';
        char *eq = strpbrk(s, "=:");
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected key=value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = s, *val = eq + 1;
        size_t kl = strlen(key);
        while (kl > 0 && isspace((unsigned char)key[kl - 1]))
            key[--kl] = '\0';
        while (isspace((unsigned char)*val))
            val++;
        if (broker_config_set_static(c, key, val, err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int broker_config_validate(const struct broker_config *c, char *err, size_t errlen)
{
    if (c->default_replication_factor > 1) {
        snprintf(err, errlen,
                 "default.replication.factor=%d but this is a single-node broker: only 1 replica "
                 "can exist (set default.replication.factor=1)",
                 c->default_replication_factor);
        return -1;
    }
    if (c->queued_max_request_bytes > 0 &&
        c->queued_max_request_bytes < c->socket_request_max_bytes) {
        snprintf(err, errlen, "queued.max.request.bytes (%lld) must be larger or equal to "
                 "socket.request.max.bytes (%lld)", (long long)c->queued_max_request_bytes,
                 (long long)c->socket_request_max_bytes);
        return -1;
    }
    if (c->replica_fetch_wait_max_ms > c->replica_socket_timeout_ms) {
        /* Kafka's KafkaConfig.validateValues */
        snprintf(err, errlen, "requirement failed: replica.socket.timeout.ms should always be at "
                 "least replica.fetch.wait.max.ms to prevent unnecessary socket timeouts");
        return -1;
    }
    if (c->log.max_message_bytes > c->socket_request_max_bytes) {
        snprintf(err, errlen, "message.max.bytes (%d) exceeds socket.request.max.bytes (%lld)",
                 c->log.max_message_bytes, (long long)c->socket_request_max_bytes);
        return -1;
    }
    return 0;
}
