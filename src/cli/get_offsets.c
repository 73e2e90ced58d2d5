/* get_offsets: `gregor get-offsets`, the kafka-get-offsets.sh (GetOffsetShell) work-alike —
 * prints TOPIC:PARTITION:OFFSET for the latest (-1), earliest (-2) or a timestamp's offset. */
#include "cli/cli.h"
#include "cli/args.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define GET_OFFSETS_TIMEOUT_MS 10000

static struct cli_opt get_offsets_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: HOST1:PORT1,...,HOST3:PORT3>",
     "REQUIRED. The server(s) to connect to in the form HOST1:PORT1,HOST2:PORT2.", 0, 0, 0},
    {"broker-list", CLI_OPT_VALUE, "<String: HOST1:PORT1,...,HOST3:PORT3>",
     "DEPRECATED, use --bootstrap-server instead.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: config file>", "Property file for the client.", 0, 0, 0},
    {"topic", CLI_OPT_VALUE, "<String: topic>", "The topic to get the offsets for. It also "
     "accepts a regular expression. If not present, all authorized topics are queried.", 0, 0, 0},
    {"partitions", CLI_OPT_VALUE, "<String: partition ids>",
     "Comma separated list of partition ids. If not specified, all partitions.", 0, 0, 0},
    {"time", CLI_OPT_VALUE, "<String: <timestamp> / -1 or latest / -2 or earliest>",
     "timestamp of the offsets before that (default: latest)", 0, 0, 0},
    {"exclude-internal-topics", CLI_OPT_FLAG, NULL, "Exclude internal topics.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd get_offsets_cmd = {
    "kafka-get-offsets.sh", "An interactive shell for getting topic-partition offsets.",
    get_offsets_opts,
};

static int partition_selected(const char *list, int32_t partition)
{
    if (!list)
        return 1;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (atoi(tok) == partition)
            return 1;
    return 0;
}

static int topic_compare(const void *a, const void *b)
{
    const rd_kafka_metadata_topic_t *x = *(const rd_kafka_metadata_topic_t *const *)a;
    const rd_kafka_metadata_topic_t *y = *(const rd_kafka_metadata_topic_t *const *)b;
    return strcmp(x->topic, y->topic);
}

/* Offset for one partition at `when` (-1 latest, -2 earliest, else a timestamp). */
static int offset_at(rd_kafka_t *rk, const char *topic, int32_t partition, long long when,
                     long long *offset)
{
    int64_t low, high;
    if (when == -1 || when == -2) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, partition, &low,
                                                                   &high, GET_OFFSETS_TIMEOUT_MS);
        if (err) {
            fprintf(stderr, "Error getting offsets of %s-%d: %s\n", topic, (int)partition,
                    rd_kafka_err2str(err));
            return -1;
        }
        *offset = when == -1 ? high : low;
        return 0;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = when;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list, GET_OFFSETS_TIMEOUT_MS);
    if (!err)
        err = list->elems[0].err;
    *offset = list->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        fprintf(stderr, "Error getting offsets of %s-%d: %s\n", topic, (int)partition, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static int get_offsets_run(struct cli_cmd *cmd)
{
    long long when = -1;
    const char *t = cli_value(cmd, "time");
    if (t && strcmp(t, "latest") == 0)
        when = -1;
    else if (t && strcmp(t, "earliest") == 0)
        when = -2;
    else if (t && (cli_parse_long(t, -2, INT64_MAX, &when) != 0 || when == 0 - 3))
        return cli_usage_error(cmd, "Malformed time argument %s. Please use -1 or latest / -2 or "
                               "earliest / a positive timestamp", t);
    if (when < -2)
        return cli_usage_error(cmd, "Unsupported --time %lld", when);
    const char *pattern = cli_value(cmd, "topic");
    regex_t regex;
    int use_regex = 0;
    if (pattern) {
        char anchored[1100];
        snprintf(anchored, sizeof anchored, "^(%s)$", pattern);
        use_regex = regcomp(&regex, anchored, REG_EXTENDED | REG_NOSUB) == 0;
    }
    rd_kafka_t *rk = cli_admin_connect(cmd);
    const rd_kafka_metadata_t *md = rk ? cli_metadata(rk, NULL, CLI_ADMIN_TIMEOUT_MS) : NULL;
    int rc = md ? 0 : 1, matched = 0;
    const rd_kafka_metadata_topic_t **topics = md ? calloc((size_t)md->topic_cnt + 1, sizeof *topics) : NULL;
    int n = 0;
    for (int i = 0; topics && i < md->topic_cnt; i++) {
        const char *name = md->topics[i].topic;
        if (md->topics[i].err || (cli_has(cmd, "exclude-internal-topics") && name[0] == '_' && name[1] == '_'))
            continue;
        if (!pattern || strcmp(pattern, name) == 0 || (use_regex && regexec(&regex, name, 0, NULL, 0) == 0))
            topics[n++] = &md->topics[i];
    }
    if (topics)
        qsort(topics, (size_t)n, sizeof *topics, topic_compare);
    for (int i = 0; topics && i < n; i++)
        for (int p = 0; p < topics[i]->partition_cnt; p++) {
            int32_t id = topics[i]->partitions[p].id;
            long long offset;
            if (!partition_selected(cli_value(cmd, "partitions"), id))
                continue;
            matched++;
            if (offset_at(rk, topics[i]->topic, id, when, &offset) != 0)
                rc = 1;
            else if (offset >= 0)
                printf("%s:%d:%lld\n", topics[i]->topic, (int)id, offset);
            else
                printf("%s:%d:\n", topics[i]->topic, (int)id);
        }
    if (md && pattern && matched == 0) {
        fprintf(stderr, "Could not match any topic-partitions with the specified filters\n");
        rc = 1;
    }
    free(topics);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rk)
        rd_kafka_destroy(rk);
    if (use_regex)
        regfree(&regex);
    return rc;
}

int cli_get_offsets(int argc, char **argv)
{
    int parsed = cli_args_parse(&get_offsets_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : get_offsets_run(&get_offsets_cmd);
    cli_args_free(&get_offsets_cmd);
    fflush(stdout);
    return rc;
}
