/* configs: `gregor configs`, the kafka-configs.sh work-alike for topic and broker configs —
 * describe (dynamic or --all) and alter (--add-config / --delete-config). */
#include "cli/cli.h"
#include "cli/args.h"
#include "cli/wire.h"
#include "cli/configs_quotas.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "proto/messages.h"

/* librdkafka 2.0 has only the non-incremental AlterConfigs, which replaces the whole dynamic
 * set; we read the current dynamic configs first and send the merged set. This bounds it. */
#define CONFIGS_MAX_ENTRIES 512

static struct cli_opt configs_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "The Kafka server to connect to.", 0, 0, 0},
    {"zookeeper", CLI_OPT_VALUE, "<String: hosts>",
     "DEPRECATED, as in Kafka 3.x: the ZooKeeper connect string host:port[,host:port][/chroot]; "
     "the brokers registered there (/brokers/ids) are the servers to connect to.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: command config property file>",
     "Property file containing configs to be passed to Admin Client.", 0, 0, 0},
    {"describe", CLI_OPT_FLAG, NULL, "List configs for the given entity.", 0, 0, 0},
    {"alter", CLI_OPT_FLAG, NULL, "Alter the configuration for the entity.", 0, 0, 0},
    {"entity-type", CLI_OPT_VALUE, "<String>", "Type of entity (topics/brokers/users/clients/ips)", 0, 0, 0},
    {"entity-name", CLI_OPT_VALUE, "<String>", "Name of entity (topic name/broker id)", 0, 0, 0},
    {"entity-default", CLI_OPT_FLAG, NULL, "Default entity name for users, clients, ips and brokers.", 0, 0, 0},
    {"topic", CLI_OPT_VALUE, "<String: topic>", "The topic's name (same as --entity-type topics "
     "--entity-name <topic>).", 0, 0, 0},
    {"broker", CLI_OPT_VALUE, "<String: broker id>", "The broker's ID.", 0, 0, 0},
    {"add-config", CLI_OPT_VALUE, "<String>", "Key Value pairs of configs to add: k1=v1,k2=[v1,v2,v2],k3=v3", 0, 0, 0},
    {"delete-config", CLI_OPT_VALUE, "<String>", "config keys to remove 'k1,k2'", 0, 0, 0},
    {"all", CLI_OPT_FLAG, NULL, "List all configs for the given entity, including static "
     "configs and defaults.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd configs_cmd = {
    "kafka-configs.sh", "This tool helps to manipulate and describe entity config for a topic, "
    "client, user, broker or ip", configs_opts,
};

struct entity {
    rd_kafka_ResourceType_t type;
    const char *type_word; /* "topic" or "broker", as in Kafka's messages */
    const char *name;
};

/* DescribeConfigs for one resource; the event owns *entries. */
static rd_kafka_event_t *describe(rd_kafka_t *rk, const struct entity *e,
                                  const rd_kafka_ConfigEntry_t ***entries, size_t *count)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(e->type, e->name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(rk, &res, 1, options, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, "Error while executing config command");
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    if (!ev)
        return NULL;
    size_t n;
    const rd_kafka_ConfigResource_t **out =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    if (n == 0 || rd_kafka_ConfigResource_error(out[0])) {
        rd_kafka_resp_err_t err = n ? rd_kafka_ConfigResource_error(out[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            printf("The %s '%s' doesn't exist and doesn't have dynamic config.\n", e->type_word, e->name);
        else
            printf("Error while executing config command with args: %s\n",
                   n && rd_kafka_ConfigResource_error_string(out[0])
                       ? rd_kafka_ConfigResource_error_string(out[0]) : rd_kafka_err2str(err));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    *entries = rd_kafka_ConfigResource_configs(out[0], count);
    return ev;
}

static int is_dynamic_for(const struct entity *e, const rd_kafka_ConfigEntry_t *entry)
{
    rd_kafka_ConfigSource_t src = rd_kafka_ConfigEntry_source(entry);
    /* A broker's own dynamic configs, or the cluster-wide default's (entity ""): an alter of
     * one must not copy the other's into it. */
    if (e->type == RD_KAFKA_RESOURCE_TOPIC)
        return src == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG;
    return e->name[0] ? src == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG
                      : src == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG;
}

static void print_entry(const rd_kafka_ConfigEntry_t *entry)
{
    const char *value = rd_kafka_ConfigEntry_value(entry);
    int sensitive = rd_kafka_ConfigEntry_is_sensitive(entry);
    printf("  %s=%s sensitive=%s synonyms={", rd_kafka_ConfigEntry_name(entry),
           sensitive ? "null" : (value ? value : "null"), sensitive ? "true" : "false");
    size_t n;
    const rd_kafka_ConfigEntry_t **syn = rd_kafka_ConfigEntry_synonyms(entry, &n);
    for (size_t i = 0; i < n; i++) {
        const char *v = rd_kafka_ConfigEntry_value(syn[i]);
        printf("%s%s:%s=%s", i ? ", " : "", rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(syn[i])),
               rd_kafka_ConfigEntry_name(syn[i]), sensitive ? "null" : (v ? v : "null"));
    }
    printf("}\n");
}

static int configs_describe(rd_kafka_t *rk, struct cli_cmd *cmd, const struct entity *e)
{
    const rd_kafka_ConfigEntry_t **entries;
    size_t n;
    rd_kafka_event_t *ev = describe(rk, e, &entries, &n);
    if (!ev)
        return 1;
    int all = cli_has(cmd, "all");
    if (e->type == RD_KAFKA_RESOURCE_BROKER && !strcmp(e->name, ""))
        printf("Default configs for brokers in the cluster are:\n");
    else
        printf("%s configs for %s %s are:\n", all ? "All" : "Dynamic", e->type_word, e->name);
    for (size_t i = 0; i < n; i++)
        if (all || is_dynamic_for(e, entries[i]))
            print_entry(entries[i]);
    rd_kafka_event_destroy(ev);
    return 0;
}

/* Split "k1=v1,k2=[a,b],k3=v3" in place; brackets protect commas (Kafka's list syntax). */
static int split_add_config(char *text, char **keys, char **values, int max)
{
    int n = 0;
    char *p = text;
    while (*p) {
        if (n == max)
            return -1;
        char *eq = strchr(p, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        keys[n] = p;
        char *v = eq + 1, *end = v;
        if (*v == '[') {
            v++;
            end = strchr(v, ']');
            if (!end)
                return -1;
            *end++ = '\0';
        } else {
            while (*end && *end != ',')
                end++;
        }
        values[n++] = v;
        if (*end == ',')
            *end++ = '\0';
        else if (*end)
            return -1;
        p = end;
    }
    return n;
}

static int configs_alter(rd_kafka_t *rk, struct cli_cmd *cmd, const struct entity *e)
{
    static char *add_keys[CONFIGS_MAX_ENTRIES], *add_values[CONFIGS_MAX_ENTRIES];
    char add_buf[8192] = "", del_buf[8192] = "";
    int nadd = 0;
    if (cli_value(cmd, "add-config")) {
        snprintf(add_buf, sizeof add_buf, "%s", cli_value(cmd, "add-config"));
        nadd = split_add_config(add_buf, add_keys, add_values, CONFIGS_MAX_ENTRIES);
        if (nadd < 0)
            return cli_usage_error(cmd, "Invalid --add-config '%s': expected k1=v1,k2=[v1,v2],k3=v3",
                                   cli_value(cmd, "add-config"));
    }
    if (cli_value(cmd, "delete-config"))
        snprintf(del_buf, sizeof del_buf, ",%s,", cli_value(cmd, "delete-config"));
    if (!nadd && !del_buf[0])
        return cli_usage_error(cmd, "At least one of --add-config or --delete-config must be "
                               "specified with --alter");

    const rd_kafka_ConfigEntry_t **entries;
    size_t n;
    rd_kafka_event_t *ev = describe(rk, e, &entries, &n);
    if (!ev)
        return 1;
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(e->type, e->name);
    /* Keep the current dynamic configs that are neither deleted nor replaced. */
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_ConfigEntry_name(entries[i]);
        char needle[512];
        snprintf(needle, sizeof needle, ",%s,", name);
        int replaced = 0;
        for (int a = 0; a < nadd; a++)
            replaced |= strcmp(add_keys[a], name) == 0;
        if (is_dynamic_for(e, entries[i]) && !replaced && !strstr(del_buf, needle) &&
            !rd_kafka_ConfigEntry_is_sensitive(entries[i]))
            rd_kafka_ConfigResource_set_config(res, name, rd_kafka_ConfigEntry_value(entries[i]));
    }
    rd_kafka_event_destroy(ev);
    for (int a = 0; a < nadd; a++)
        rd_kafka_ConfigResource_set_config(res, add_keys[a], add_values[a]);

    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(rk, &res, 1, options, q);
    ev = cli_admin_wait(q, "Error while executing config command with args");
    int rc = 1;
    if (ev) {
        size_t nres;
        const rd_kafka_ConfigResource_t **out =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &nres);
        if (nres && rd_kafka_ConfigResource_error(out[0])) {
            const char *msg = rd_kafka_ConfigResource_error_string(out[0]);
            printf("Error while executing config command with args: %s\n",
                   msg ? msg : rd_kafka_err2str(rd_kafka_ConfigResource_error(out[0])));
        } else {
            printf("Completed updating config for %s %s.\n", e->type_word, e->name);
            rc = 0;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

/* The cluster-wide broker default (BROKER resource ""): librdkafka 2.0 crashes on the empty
 * name, so these go over our own connection — DescribeConfigs v4 and IncrementalAlterConfigs
 * v1 (SET / DELETE per key: no read-merge-write), as Kafka's ConfigCommand does. */
#define DEFAULT_DESCRIBE_VERSION 4
#define DEFAULT_ALTER_VERSION 1
#define RESOURCE_TYPE_BROKER 4
#define CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER 3
#define ALTER_OP_SET 0
#define ALTER_OP_DELETE 1

typedef struct describe_configs_response_describe_configs_resource_result default_entry;

/* Kafka's ConfigEntry.ConfigSource names, by wire value. */
static const char *config_source_name(int8_t source)
{
    static const char *const names[] = {
        "UNKNOWN", "DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG",
        "STATIC_BROKER_CONFIG", "DEFAULT_CONFIG", "DYNAMIC_BROKER_LOGGER_CONFIG",
        "DYNAMIC_CLIENT_METRICS_CONFIG", "DYNAMIC_GROUP_CONFIG",
    };
    return source >= 0 && source < (int8_t)(sizeof names / sizeof names[0]) ? names[source] : "UNKNOWN";
}

static const char *or_null(struct kstr s)
{
    return s.ptr ? s.ptr : "null";
}

/* The broker's message for a refused resource, or the error code's name when it sent none. */
static void print_broker_error(int16_t code, struct kstr message)
{
    printf("Error while executing config command with args: %s\n",
           message.ptr && message.len ? message.ptr : rd_kafka_err2str((rd_kafka_resp_err_t)code));
}

static int default_connect(struct cli_wire *w, const char *bootstrap)
{
    if (cli_wire_connect(w, bootstrap, CLI_ADMIN_TIMEOUT_MS) == 0)
        return 0;
    printf("Error while executing config command with args: %s\n", w->error);
    return -1;
}

/* DescribeConfigs of the default; the entries live in arena. NULL after printing why. */
static struct describe_configs_response_describe_configs_result *
default_describe(struct cli_wire *w, struct arena *arena, bool synonyms)
{
    struct describe_configs_request_describe_configs_resource res;
    describe_configs_request_describe_configs_resource_set_defaults(&res);
    res.resource_type = RESOURCE_TYPE_BROKER;
    res.resource_name = (struct kstr){"", 0};
    res.configuration_keys = NULL;
    res.n_configuration_keys = -1; /* null: every key */
    struct describe_configs_request req;
    describe_configs_request_set_defaults(&req);
    req.resources = &res;
    req.n_resources = 1;
    req.include_synonyms = synonyms;
    void *out;
    if (cli_wire_call(w, PROTO_API_DESCRIBE_CONFIGS, DEFAULT_DESCRIBE_VERSION, &req, arena, &out) != 0) {
        printf("Error while executing config command with args: %s\n", w->error);
        return NULL;
    }
    struct describe_configs_response *resp = out;
    if (resp->n_results != 1) {
        printf("Error while executing config command with args: DescribeConfigs answered %d "
               "resources for 1\n", resp->n_results);
        return NULL;
    }
    if (resp->results[0].error_code) {
        print_broker_error(resp->results[0].error_code, resp->results[0].error_message);
        return NULL;
    }
    return &resp->results[0];
}

static int entry_by_name(const void *a, const void *b)
{
    return strcmp(((const default_entry *)a)->name.ptr, ((const default_entry *)b)->name.ptr);
}

static int default_print(struct cli_cmd *cmd, struct cli_wire *w, struct arena *arena)
{
    struct describe_configs_response_describe_configs_result *r = default_describe(w, arena, true);
    if (!r)
        return 1;
    int all = cli_has(cmd, "all");
    /* Kafka's ConfigCommand lists them by name. */
    if (r->n_configs > 1)
        qsort(r->configs, (size_t)r->n_configs, sizeof r->configs[0], entry_by_name);
    printf("Default configs for brokers in the cluster are:\n");
    for (int32_t i = 0; i < r->n_configs; i++) {
        const default_entry *e = &r->configs[i];
        if (!all && e->config_source != CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER)
            continue;
        printf("  %s=%s sensitive=%s synonyms={", e->name.ptr,
               e->is_sensitive ? "null" : or_null(e->value), e->is_sensitive ? "true" : "false");
        for (int32_t s = 0; s < e->n_synonyms; s++)
            printf("%s%s:%s=%s", s ? ", " : "", config_source_name(e->synonyms[s].source),
                   e->synonyms[s].name.ptr, e->is_sensitive ? "null" : or_null(e->synonyms[s].value));
        printf("}\n");
    }
    return 0;
}

/* The keys of --delete-config ("k1,k2") that the default does not hold, as "k1,k2" in missing;
 * Kafka refuses the whole command then. Returns how many, or -1 after printing why. */
static int default_missing_deletes(struct cli_wire *w, struct arena *arena, char **del_keys,
                                   int ndel, char *missing, size_t cap)
{
    struct describe_configs_response_describe_configs_result *r = default_describe(w, arena, false);
    if (!r)
        return -1;
    int n = 0;
    size_t used = 0;
    missing[0] = '\0';
    for (int d = 0; d < ndel; d++) {
        int found = 0;
        for (int32_t i = 0; i < r->n_configs && !found; i++)
            found = r->configs[i].config_source == CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER &&
                    strcmp(r->configs[i].name.ptr, del_keys[d]) == 0;
        if (!found && used < cap) {
            int k = snprintf(missing + used, cap - used, "%s%s", n ? "," : "", del_keys[d]);
            used += k > 0 ? (size_t)k : 0;
            n++;
        }
    }
    return n;
}

static int default_alter(struct cli_wire *w, struct arena *arena, char **add_keys,
                         char **add_values, int nadd, char **del_keys, int ndel)
{
    char missing[1024];
    int nmissing = ndel ? default_missing_deletes(w, arena, del_keys, ndel, missing, sizeof missing) : 0;
    if (nmissing < 0)
        return 1;
    if (nmissing > 0) {
        printf("Error while executing config command with args: Invalid config(s): %s\n", missing);
        return 1;
    }
    struct incremental_alter_configs_request_alterable_config *ops =
        arena_alloc(arena, (size_t)(nadd + ndel) * sizeof *ops);
    if (!ops) {
        printf("Error while executing config command with args: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nadd + ndel; i++) {
        int add = i < nadd;
        const char *key = add ? add_keys[i] : del_keys[i - nadd];
        /* Kafka's tool sends DELETE with an empty value. */
        const char *value = add ? add_values[i] : "";
        incremental_alter_configs_request_alterable_config_set_defaults(&ops[i]);
        ops[i].name = (struct kstr){(char *)key, (int32_t)strlen(key)};
        ops[i].config_operation = add ? ALTER_OP_SET : ALTER_OP_DELETE;
        ops[i].value = (struct kstr){(char *)value, (int32_t)strlen(value)};
    }
    struct incremental_alter_configs_request_alter_configs_resource res;
    incremental_alter_configs_request_alter_configs_resource_set_defaults(&res);
    res.resource_type = RESOURCE_TYPE_BROKER;
    res.resource_name = (struct kstr){"", 0};
    res.configs = ops;
    res.n_configs = nadd + ndel;
    struct incremental_alter_configs_request req;
    incremental_alter_configs_request_set_defaults(&req);
    req.resources = &res;
    req.n_resources = 1;
    req.validate_only = false;
    void *out;
    if (cli_wire_call(w, PROTO_API_INCREMENTAL_ALTER_CONFIGS, DEFAULT_ALTER_VERSION, &req, arena,
                      &out) != 0) {
        printf("Error while executing config command with args: %s\n", w->error);
        return 1;
    }
    struct incremental_alter_configs_response *resp = out;
    if (resp->n_responses != 1) {
        printf("Error while executing config command with args: IncrementalAlterConfigs "
               "answered %d resources for 1\n", resp->n_responses);
        return 1;
    }
    if (resp->responses[0].error_code) {
        print_broker_error(resp->responses[0].error_code, resp->responses[0].error_message);
        return 1;
    }
    printf("Completed updating default config for brokers in the cluster.\n");
    return 0;
}

/* Split "k1,k2" in place (empty items skipped). */
static int split_delete_config(char *text, char **keys, int max)
{
    int n = 0;
    for (char *tok = strtok(text, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max)
            return -1;
        keys[n++] = tok;
    }
    return n;
}

/* --entity-type brokers --entity-default: --describe or --alter. */
static int configs_broker_default(struct cli_cmd *cmd, const char *bootstrap)
{
    static char *add_keys[CONFIGS_MAX_ENTRIES], *add_values[CONFIGS_MAX_ENTRIES];
    static char *del_keys[CONFIGS_MAX_ENTRIES];
    char add_buf[8192] = "", del_buf[8192] = "";
    int nadd = 0, ndel = 0;
    if (cli_has(cmd, "alter")) {
        if (cli_value(cmd, "add-config")) {
            snprintf(add_buf, sizeof add_buf, "%s", cli_value(cmd, "add-config"));
            nadd = split_add_config(add_buf, add_keys, add_values, CONFIGS_MAX_ENTRIES);
            if (nadd < 0)
                return cli_usage_error(cmd, "Invalid --add-config '%s': expected k1=v1,k2=[v1,v2],k3=v3",
                                       cli_value(cmd, "add-config"));
        }
        if (cli_value(cmd, "delete-config")) {
            snprintf(del_buf, sizeof del_buf, "%s", cli_value(cmd, "delete-config"));
            ndel = split_delete_config(del_buf, del_keys, CONFIGS_MAX_ENTRIES);
            if (ndel < 0)
                return cli_usage_error(cmd, "Too many keys in --delete-config (at most %d)",
                                       CONFIGS_MAX_ENTRIES);
        }
        if (!nadd && !ndel)
            return cli_usage_error(cmd, "At least one of --add-config or --delete-config must be "
                                   "specified with --alter");
    }
    struct cli_wire w;
    if (default_connect(&w, bootstrap) != 0)
        return 1;
    struct arena arena;
    arena_init(&arena, CLI_WIRE_ARENA_LIMIT);
    int rc = cli_has(cmd, "alter")
                 ? default_alter(&w, &arena, add_keys, add_values, nadd, del_keys, ndel)
                 : default_print(cmd, &w, &arena);
    arena_reset(&arena);
    cli_wire_close(&w);
    return rc;
}

static int resolve_entity(struct cli_cmd *cmd, struct entity *e)
{
    const char *type = cli_value(cmd, "entity-type");
    e->name = cli_value(cmd, "entity-name");
    if (cli_value(cmd, "topic")) {
        type = "topics";
        e->name = cli_value(cmd, "topic");
    } else if (cli_value(cmd, "broker")) {
        type = "brokers";
        e->name = cli_value(cmd, "broker");
    }
    if (!type)
        return cli_usage_error(cmd, "an entity-type must be specified with --alter and --describe");
    if (strcmp(type, "topics") == 0) {
        e->type = RD_KAFKA_RESOURCE_TOPIC;
        e->type_word = "topic";
    } else if (strcmp(type, "brokers") == 0) {
        e->type = RD_KAFKA_RESOURCE_BROKER;
        e->type_word = "broker";
        if (cli_has(cmd, "entity-default"))
            e->name = "";
    } else {
        return cli_usage_error(cmd, "gregor supports --entity-type topics and brokers, not '%s'", type);
    }
    if (!e->name && cli_has(cmd, "alter"))
        return cli_usage_error(cmd, "an entity name must be specified with --alter of %s", type);
    return 0;
}

/* Without a name, describe every topic like Kafka does. */
static int describe_all_topics(rd_kafka_t *rk, struct cli_cmd *cmd, struct entity *e)
{
    const rd_kafka_metadata_t *md = cli_metadata(rk, NULL, CLI_ADMIN_TIMEOUT_MS);
    if (!md)
        return 1;
    int rc = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        e->name = md->topics[i].topic;
        rc |= configs_describe(rk, cmd, e);
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Without a name, describe every broker and then the cluster default, like Kafka does. */
static int describe_all_brokers(rd_kafka_t *rk, struct cli_cmd *cmd, struct entity *e,
                                const char *bootstrap)
{
    const rd_kafka_metadata_t *md = cli_metadata(rk, NULL, CLI_ADMIN_TIMEOUT_MS);
    if (!md)
        return 1;
    int rc = 0;
    for (int i = 0; i < md->broker_cnt; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", (int)md->brokers[i].id);
        e->name = id;
        rc |= configs_describe(rk, cmd, e);
    }
    rd_kafka_metadata_destroy(md);
    e->name = NULL;
    return rc | configs_broker_default(cmd, bootstrap);
}

/* --entity-type users ... --entity-type clients ...: what each pair named (argv order, which
 * the option table does not keep). */
static struct {
    bool users_first;
    const char *user;
    bool user_dflt;
    struct configs_quota_client client;
} quota_pair;

static void scan_quota_pair(int argc, char **argv)
{
    int type_at[2], ntypes = 0;
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--entity-type") == 0 && ntypes < 2)
            type_at[ntypes++] = i;
    if (ntypes != 2 || strcmp(argv[type_at[0] + 1], "users") != 0 ||
        strcmp(argv[type_at[1] + 1], "clients") != 0)
        return;
    quota_pair.users_first = true;
    for (int i = type_at[0] + 2; i < argc; i++) {
        bool second = i > type_at[1];
        if (strcmp(argv[i], "--entity-default") == 0) {
            if (second)
                quota_pair.client.dflt = true;
            else
                quota_pair.user_dflt = true;
        } else if (strcmp(argv[i], "--entity-name") == 0 && i + 1 < argc) {
            if (second)
                quota_pair.client.name = argv[i + 1];
            else
                quota_pair.user = argv[i + 1];
        }
    }
}

static int configs_run(struct cli_cmd *cmd)
{
    if (cli_has(cmd, "describe") + cli_has(cmd, "alter") != 1)
        return cli_usage_error(cmd, "Command must include exactly one action: --describe, --alter");
    const char *quota_type = cli_value(cmd, "entity-type");
    if (quota_type && (strcmp(quota_type, "users") == 0 || strcmp(quota_type, "clients") == 0 ||
                       strcmp(quota_type, "ips") == 0)) {
        const char *bootstrap = cli_bootstrap(cmd);
        if (!bootstrap)
            return 1;
        static char add[8192], del[8192];
        snprintf(add, sizeof add, "%s", cli_value(cmd, "add-config") ? cli_value(cmd, "add-config") : "");
        snprintf(del, sizeof del, "%s", cli_value(cmd, "delete-config") ? cli_value(cmd, "delete-config") : "");
        bool dflt = cli_has(cmd, "entity-default");
        const char *name = dflt ? NULL : cli_value(cmd, "entity-name");
        struct configs_quota_client *client = NULL;
        if (quota_pair.users_first) {
            /* Kafka's "--entity-type users <name|default> --entity-type clients <...>". */
            quota_type = "users";
            name = quota_pair.user_dflt ? NULL : quota_pair.user;
            dflt = quota_pair.user_dflt;
            client = &quota_pair.client;
        }
        if (cli_has(cmd, "alter") && !name && !dflt)
            return cli_usage_error(cmd, "an entity name must be specified with --alter of %s", quota_type);
        return configs_quotas_run(bootstrap, CLI_ADMIN_TIMEOUT_MS, cli_has(cmd, "alter"), quota_type,
                                  name, dflt, client, add[0] ? add : NULL, del[0] ? del : NULL);
    }
    struct entity e;
    if (resolve_entity(cmd, &e) != 0)
        return 1;
    const char *bootstrap = cli_bootstrap(cmd);
    if (!bootstrap)
        return 1;
    if (e.type == RD_KAFKA_RESOURCE_BROKER && e.name && !e.name[0])
        return configs_broker_default(cmd, bootstrap);
    rd_kafka_t *rk = cli_admin_connect(cmd);
    if (!rk)
        return 1;
    int rc;
    if (cli_has(cmd, "alter"))
        rc = configs_alter(rk, cmd, &e);
    else if (!e.name && e.type == RD_KAFKA_RESOURCE_BROKER)
        rc = describe_all_brokers(rk, cmd, &e, bootstrap);
    else if (!e.name)
        rc = describe_all_topics(rk, cmd, &e);
    else
        rc = configs_describe(rk, cmd, &e);
    rd_kafka_destroy(rk);
    return rc;
}

int cli_configs(int argc, char **argv)
{
    int parsed = cli_args_parse(&configs_cmd, argc, argv);
    scan_quota_pair(argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : configs_run(&configs_cmd);
    cli_args_free(&configs_cmd);
    fflush(stdout);
    return rc;
}
