/* topics: `gregor topics`, the kafka-topics.sh work-alike — create, list, describe, alter
 * (partition count) and delete topics through the librdkafka admin API. */
#include "cli/cli.h"
#include "cli/args.h"
#include "cli/topic_ids.h"
#include "log/logdir.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS_ERROR "Error while executing topic command"

static struct cli_opt topics_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "REQUIRED: The Kafka server to connect to.", 0, 0, 0},
    {"zookeeper", CLI_OPT_VALUE, "<String: hosts>",
     "DEPRECATED, as in Kafka 3.x: the ZooKeeper connect string host:port[,host:port][/chroot]; "
     "the brokers registered there (/brokers/ids) are the servers to connect to.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: command config property file>",
     "Property file containing configs to be passed to Admin Client.", 0, 0, 0},
    {"create", CLI_OPT_FLAG, NULL, "Create a new topic.", 0, 0, 0},
    {"list", CLI_OPT_FLAG, NULL, "List all available topics.", 0, 0, 0},
    {"describe", CLI_OPT_FLAG, NULL, "List details for the given topics.", 0, 0, 0},
    {"alter", CLI_OPT_FLAG, NULL, "Alter the number of partitions.", 0, 0, 0},
    {"delete", CLI_OPT_FLAG, NULL, "Delete a topic.", 0, 0, 0},
    {"topic", CLI_OPT_VALUE, "<String: topic>",
     "The topic to create, alter, describe or delete. It also accepts a regular expression, "
     "except for --create option.", 0, 0, 0},
    {"partitions", CLI_OPT_VALUE, "<Integer: # of partitions>",
     "The number of partitions for the topic being created or altered.", 0, 0, 0},
    {"replication-factor", CLI_OPT_VALUE, "<Integer: replication factor>",
     "The replication factor for each partition in the topic being created.", 0, 0, 0},
    {"config", CLI_OPT_LIST, "<String: name=value>",
     "A topic configuration override for the topic being created.", 0, 0, 0},
    {"if-not-exists", CLI_OPT_FLAG, NULL,
     "If set when creating topics, the action will only execute if the topic does not already "
     "exist.", 0, 0, 0},
    {"if-exists", CLI_OPT_FLAG, NULL,
     "If set when altering or deleting or describing topics, the action will only execute if "
     "the topic exists.", 0, 0, 0},
    {"exclude-internal", CLI_OPT_FLAG, NULL,
     "Exclude internal topics when running list or describe command.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd topics_cmd = {
    "kafka-topics.sh", "Create, delete, describe, or change a topic.", topics_opts,
};

static int is_internal_topic(const char *name)
{
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0 ||
           strcmp(name, "__share_group_state") == 0 || strcmp(name, "__cluster_metadata") == 0;
}

/* Kafka matches --topic as a Java regex over the whole name; POSIX ERE is close enough for
 * the names and patterns people use (a plain name matches itself either way). */
struct topic_filter {
    const char *text;
    int use_regex;
    regex_t regex;
};

static int filter_init(struct topic_filter *f, const char *text)
{
    f->text = text;
    f->use_regex = 0;
    if (!text)
        return 0;
    size_t len = strlen(text) + 8;
    char *anchored = malloc(len);
    if (!anchored)
        return -1;
    snprintf(anchored, len, "^(%s)$", text);
    f->use_regex = regcomp(&f->regex, anchored, REG_EXTENDED | REG_NOSUB) == 0;
    free(anchored);
    return 0;
}

static int filter_match(const struct topic_filter *f, const char *name)
{
    if (!f->text)
        return 1;
    if (strcmp(f->text, name) == 0)
        return 1;
    return f->use_regex && regexec(&f->regex, name, 0, NULL, 0) == 0;
}

static void filter_free(struct topic_filter *f)
{
    if (f->use_regex)
        regfree(&f->regex);
}

static int compare_names(const void *a, const void *b)
{
    const rd_kafka_metadata_topic_t *const *x = a, *const *y = b;
    return strcmp((*x)->topic, (*y)->topic);
}

/* The topics of md that pass the filter, sorted by name; *count set; caller frees the array. */
static const rd_kafka_metadata_topic_t **select_topics(const rd_kafka_metadata_t *md,
                                                      struct topic_filter *filter,
                                                      int exclude_internal, int *count)
{
    const rd_kafka_metadata_topic_t **out = calloc((size_t)md->topic_cnt + 1, sizeof *out);
    int n = 0;
    for (int i = 0; out && i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        if (exclude_internal && is_internal_topic(t->topic))
            continue;
        if (filter_match(filter, t->topic))
            out[n++] = t;
    }
    if (out)
        qsort(out, (size_t)n, sizeof *out, compare_names);
    *count = n;
    return out;
}

static int topics_create(rd_kafka_t *rk, struct cli_cmd *cmd, const char *topic)
{
    long long partitions = -1, replication = -1;
    const char *p = cli_value(cmd, "partitions"), *r = cli_value(cmd, "replication-factor");
    if (p && cli_parse_long(p, 1, 1000000, &partitions) != 0)
        return cli_usage_error(cmd, "Invalid --partitions '%s': must be a positive integer", p);
    if (r && cli_parse_long(r, 1, 32767, &replication) != 0)
        return cli_usage_error(cmd, "Invalid --replication-factor '%s'", r);
    if (strchr(topic, '.') || strchr(topic, '_'))
        printf("WARNING: Due to limitations in metric names, topics with a period ('.') or "
               "underscore ('_') could collide. To avoid issues it is best to use either, but "
               "not both.\n");

    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, (int)partitions, (int)replication,
                                                    errstr, sizeof errstr);
    if (!nt) {
        printf("%s : %s\n", TOPICS_ERROR, errstr);
        return 1;
    }
    struct cli_opt *configs = cli_opt_get(cmd, "config");
    for (int i = 0; i < configs->count; i++) {
        char kv[1024];
        snprintf(kv, sizeof kv, "%s", configs->values[i]);
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            rd_kafka_NewTopic_destroy(nt);
            return cli_usage_error(cmd, "Invalid topic config: all configs to be added must be "
                                   "in the format \"key=val\", got '%s'", kv);
        }
        *eq = '\0';
        rd_kafka_NewTopic_set_config(nt, kv, eq + 1);
    }

    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, options, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, TOPICS_ERROR " ");
    int rc = 1;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(res[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!err) {
            printf("Created topic %s.\n", topic);
            rc = 0;
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && cli_has(cmd, "if-not-exists")) {
            rc = 0;
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            printf("%s : Topic '%s' already exists.\n", TOPICS_ERROR, topic);
        } else {
            const char *msg = rd_kafka_topic_result_error_string(res[0]);
            printf("%s : %s\n", TOPICS_ERROR, msg && *msg ? msg : rd_kafka_err2str(err));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int topics_list(const rd_kafka_metadata_t *md, struct cli_cmd *cmd,
                       struct topic_filter *filter)
{
    int n;
    const rd_kafka_metadata_topic_t **topics =
        select_topics(md, filter, cli_has(cmd, "exclude-internal"), &n);
    if (!topics)
        return 1;
    /* Kafka's TopicCommand prints the names joined by newlines with println: one empty line
     * when there are none. */
    if (n == 0)
        putchar('\n');
    for (int i = 0; i < n; i++)
        printf("%s\n", topics[i]->topic);
    free(topics);
    return 0;
}

/* "k=v,k=v" of the topic's non-default configs, in the broker's order, into buf. */
static void describe_configs(rd_kafka_t *rk, const char *topic, char *buf, size_t size)
{
    buf[0] = '\0';
    rd_kafka_ConfigResource_t *resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(rk, &resource, 1, options, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, TOPICS_ERROR " ");
    if (ev) {
        size_t nres, nentries, used = 0;
        const rd_kafka_ConfigResource_t **res = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &nres);
        const rd_kafka_ConfigEntry_t **entries =
            nres && !rd_kafka_ConfigResource_error(res[0])
                ? rd_kafka_ConfigResource_configs(res[0], &nentries) : NULL;
        for (size_t i = 0; entries && i < nentries; i++) {
            if (rd_kafka_ConfigEntry_is_default(entries[i]))
                continue;
            const char *value = rd_kafka_ConfigEntry_value(entries[i]);
            int w = snprintf(buf + used, size - used, "%s%s=%s", used ? "," : "",
                             rd_kafka_ConfigEntry_name(entries[i]),
                             rd_kafka_ConfigEntry_is_sensitive(entries[i]) ? "<sensitive>"
                                                                           : (value ? value : "null"));
            if (w < 0 || (size_t)w >= size - used)
                break;
            used += (size_t)w;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(resource);
}

static void print_ids(const int32_t *ids, int count)
{
    for (int i = 0; i < count; i++)
        printf("%s%d", i ? "," : "", (int)ids[i]);
}

static int topics_describe(rd_kafka_t *rk, const rd_kafka_metadata_t *md, struct cli_cmd *cmd,
                           struct topic_filter *filter)
{
    int n;
    const rd_kafka_metadata_topic_t **topics =
        select_topics(md, filter, cli_has(cmd, "exclude-internal"), &n);
    if (!topics)
        return 1;
    if (n == 0 && filter->text && !cli_has(cmd, "if-exists")) {
        printf("%s : Topic '%s' does not exist as expected\n", TOPICS_ERROR, filter->text);
        free(topics);
        return 1;
    }
    static char configs[65536];
    const char **names = calloc((size_t)n + 1, sizeof(*names));
    uint8_t (*ids)[16] = calloc((size_t)n + 1, 16);
    if (names == NULL || ids == NULL) {
        free(names);
        free(ids);
        free(topics);
        return 1;
    }
    for (int i = 0; i < n; i++)
        names[i] = topics[i]->topic;
    cli_topic_ids(cli_bootstrap(cmd), names, n, ids);
    for (int i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *t = topics[i];
        describe_configs(rk, t->topic, configs, sizeof configs);
        int replication = t->partition_cnt > 0 ? t->partitions[0].replica_cnt : 0;
        char id[23];
        uuid_to_base64url(ids[i], id);
        printf("Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
               t->topic, id, t->partition_cnt, replication, configs);
        for (int p = 0; p < t->partition_cnt; p++) {
            const rd_kafka_metadata_partition_t *part = &t->partitions[p];
            printf("\tTopic: %s\tPartition: %d\tLeader: ", t->topic, (int)part->id);
            if (part->leader >= 0)
                printf("%d", (int)part->leader);
            else
                printf("none");
            printf("\tReplicas: ");
            print_ids(part->replicas, part->replica_cnt);
            printf("\tIsr: ");
            print_ids(part->isrs, part->isr_cnt);
            printf("\tElr: \tLastKnownElr: \n");
        }
    }
    free(names);
    free(ids);
    free(topics);
    return 0;
}

static int topics_delete(rd_kafka_t *rk, const rd_kafka_metadata_t *md, struct cli_cmd *cmd,
                         struct topic_filter *filter)
{
    int n;
    const rd_kafka_metadata_topic_t **topics = select_topics(md, filter, 1, &n);
    if (!topics)
        return 1;
    if (n == 0) {
        free(topics);
        if (cli_has(cmd, "if-exists"))
            return 0;
        printf("%s : Topic '%s' does not exist as expected\n", TOPICS_ERROR, filter->text);
        return 1;
    }
    rd_kafka_DeleteTopic_t **del = calloc((size_t)n, sizeof *del);
    for (int i = 0; del && i < n; i++)
        del[i] = rd_kafka_DeleteTopic_new(topics[i]->topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    int rc = 1;
    if (del) {
        rd_kafka_DeleteTopics(rk, del, (size_t)n, options, q);
        rd_kafka_event_t *ev = cli_admin_wait(q, TOPICS_ERROR " ");
        if (ev) {
            size_t nres;
            const rd_kafka_topic_result_t **res =
                rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &nres);
            rc = 0;
            for (size_t i = 0; i < nres; i++)
                if (rd_kafka_topic_result_error(res[i])) {
                    const char *msg = rd_kafka_topic_result_error_string(res[i]);
                    printf("%s : %s\n", TOPICS_ERROR, msg && *msg ? msg
                           : rd_kafka_err2str(rd_kafka_topic_result_error(res[i])));
                    rc = 1;
                }
            rd_kafka_event_destroy(ev);
        }
        for (int i = 0; i < n; i++)
            rd_kafka_DeleteTopic_destroy(del[i]);
    }
    free(del);
    free(topics);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    return rc;
}

static int topics_alter(rd_kafka_t *rk, const rd_kafka_metadata_t *md, struct cli_cmd *cmd,
                        struct topic_filter *filter)
{
    const char *p = cli_value(cmd, "partitions");
    long long partitions;
    if (!p)
        return cli_usage_error(cmd, "Option \"[alter]\" needs \"[partitions]\" (gregor can only "
                               "alter the partition count; use kafka-configs.sh for configs)");
    if (cli_parse_long(p, 1, 1000000, &partitions) != 0)
        return cli_usage_error(cmd, "Invalid --partitions '%s'", p);
    int n;
    const rd_kafka_metadata_topic_t **topics = select_topics(md, filter, 1, &n);
    if (!topics)
        return 1;
    if (n == 0) {
        free(topics);
        if (cli_has(cmd, "if-exists"))
            return 0;
        printf("%s : Topic '%s' does not exist as expected\n", TOPICS_ERROR, filter->text);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char errstr[256];
        rd_kafka_NewPartitions_t *np =
            rd_kafka_NewPartitions_new(topics[i]->topic, (size_t)partitions, errstr, sizeof errstr);
        rd_kafka_CreatePartitions(rk, &np, 1, options, q);
        rd_kafka_event_t *ev = cli_admin_wait(q, TOPICS_ERROR " ");
        if (!ev) {
            rc = 1;
        } else {
            size_t nres;
            const rd_kafka_topic_result_t **res = rd_kafka_CreatePartitions_result_topics(
                rd_kafka_event_CreatePartitions_result(ev), &nres);
            if (nres && rd_kafka_topic_result_error(res[0])) {
                const char *msg = rd_kafka_topic_result_error_string(res[0]);
                printf("%s : %s\n", TOPICS_ERROR, msg && *msg ? msg
                       : rd_kafka_err2str(rd_kafka_topic_result_error(res[0])));
                rc = 1;
            }
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_NewPartitions_destroy(np);
    }
    free(topics);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    return rc;
}

static int count_actions(struct cli_cmd *cmd)
{
    return cli_has(cmd, "create") + cli_has(cmd, "list") + cli_has(cmd, "describe") +
           cli_has(cmd, "alter") + cli_has(cmd, "delete");
}

static int topics_run(struct cli_cmd *cmd)
{
    if (count_actions(cmd) != 1)
        return cli_usage_error(cmd, "Command must include exactly one action: --list, "
                               "--describe, --create, --alter or --delete");
    const char *topic = cli_value(cmd, "topic");
    if (!topic && (cli_has(cmd, "create") || cli_has(cmd, "alter") || cli_has(cmd, "delete")))
        return cli_usage_error(cmd, "Missing required argument \"[topic]\"");
    rd_kafka_t *rk = cli_admin_connect(cmd);
    if (!rk)
        return 1;
    int rc = 1;
    if (cli_has(cmd, "create")) {
        rc = topics_create(rk, cmd, topic);
    } else {
        /* Always ask for every topic: asking for one by name can auto-create it. */
        const rd_kafka_metadata_t *md = cli_metadata(rk, NULL, CLI_ADMIN_TIMEOUT_MS);
        struct topic_filter filter;
        if (md && filter_init(&filter, topic) == 0) {
            if (cli_has(cmd, "list"))
                rc = topics_list(md, cmd, &filter);
            else if (cli_has(cmd, "describe"))
                rc = topics_describe(rk, md, cmd, &filter);
            else if (cli_has(cmd, "delete"))
                rc = topics_delete(rk, md, cmd, &filter);
            else
                rc = topics_alter(rk, md, cmd, &filter);
            filter_free(&filter);
        }
        if (md)
            rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return rc;
}

int cli_topics(int argc, char **argv)
{
    int parsed = cli_args_parse(&topics_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : topics_run(&topics_cmd);
    cli_args_free(&topics_cmd);
    fflush(stdout);
    return rc;
}
