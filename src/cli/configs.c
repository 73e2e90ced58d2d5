/* configs: `gregor configs`, the kafka-configs.sh work-alike for topic and broker configs —
 * describe (dynamic or --all) and alter (--add-config / --delete-config). */
#include "cli/cli.h"
#include "cli/args.h"

#include <stdlib.h>
#include <string.h>

/* librdkafka 2.0 has only the non-incremental AlterConfigs, which replaces the whole dynamic
 * set; we read the current dynamic configs first and send the merged set. This bounds it. */
#define CONFIGS_MAX_ENTRIES 512

static struct cli_opt configs_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "The Kafka server to connect to.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: command config property file>",
     "Property file containing configs to be passed to Admin Client.", 0, 0, 0},
    {"describe", CLI_OPT_FLAG, NULL, "List configs for the given entity.", 0, 0, 0},
    {"alter", CLI_OPT_FLAG, NULL, "Alter the configuration for the entity.", 0, 0, 0},
    {"entity-type", CLI_OPT_VALUE, "<String>", "Type of entity (topics/brokers)", 0, 0, 0},
    {"entity-name", CLI_OPT_VALUE, "<String>", "Name of entity (topic name/broker id)", 0, 0, 0},
    {"entity-default", CLI_OPT_FLAG, NULL, "Default entity name for brokers.", 0, 0, 0},
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
    if (!e->name && (cli_has(cmd, "alter") || e->type == RD_KAFKA_RESOURCE_BROKER))
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

static int configs_run(struct cli_cmd *cmd)
{
    if (cli_has(cmd, "describe") + cli_has(cmd, "alter") != 1)
        return cli_usage_error(cmd, "Command must include exactly one action: --describe, --alter");
    struct entity e;
    if (resolve_entity(cmd, &e) != 0)
        return 1;
    const char *bootstrap = cli_bootstrap(cmd);
    if (!bootstrap)
        return 1;
    rd_kafka_conf_t *conf = cli_conf_new(bootstrap);
    if (!conf || cli_conf_apply_options(conf, cmd, "command-config", NULL) != 0) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = cli_admin_new(conf);
    if (!rk)
        return 1;
    int rc;
    if (cli_has(cmd, "alter"))
        rc = configs_alter(rk, cmd, &e);
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
    int rc = parsed ? cli_args_exit_code(parsed) : configs_run(&configs_cmd);
    cli_args_free(&configs_cmd);
    fflush(stdout);
    return rc;
}
