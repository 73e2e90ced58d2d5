/* groups: `gregor groups`, the kafka-consumer-groups.sh work-alike — list, describe (offsets
 * and lag per partition, or --state), reset offsets and delete consumer groups. */
#include "cli/cli.h"
#include "cli/args.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define GROUPS_ERROR "Error: Executing consumer group command failed due to"
/* Watermark look-ups per partition; bounded so a dead broker cannot stall describe forever. */
#define GROUPS_WATERMARK_TIMEOUT_MS 10000

static struct cli_opt groups_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "REQUIRED: The server(s) to connect to.", 0, 0, 0},
    {"zookeeper", CLI_OPT_VALUE, "<String: hosts>",
     "DEPRECATED, as in Kafka 3.x: the ZooKeeper connect string host:port[,host:port][/chroot]; "
     "the brokers registered there (/brokers/ids) are the servers to connect to.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: command config property file>",
     "Property file containing configs to be passed to Admin Client.", 0, 0, 0},
    {"list", CLI_OPT_FLAG, NULL, "List all consumer groups.", 0, 0, 0},
    {"describe", CLI_OPT_FLAG, NULL, "Describe consumer group and list offset lag.", 0, 0, 0},
    {"delete", CLI_OPT_FLAG, NULL, "Pass in groups to delete topic partition offsets and "
     "ownership information over the entire consumer group.", 0, 0, 0},
    {"reset-offsets", CLI_OPT_FLAG, NULL, "Reset offsets of consumer group.", 0, 0, 0},
    {"group", CLI_OPT_LIST, "<String: consumer group>", "The consumer group we wish to act on.", 0, 0, 0},
    {"all-groups", CLI_OPT_FLAG, NULL, "Apply to all consumer groups.", 0, 0, 0},
    {"topic", CLI_OPT_LIST, "<String: topic>",
     "The topic whose consumer group information should be reset (topic or topic:0,1).", 0, 0, 0},
    {"all-topics", CLI_OPT_FLAG, NULL, "Consider all topics assigned to a group in the "
     "`reset-offsets` process.", 0, 0, 0},
    {"to-earliest", CLI_OPT_FLAG, NULL, "Reset offsets to earliest offset.", 0, 0, 0},
    {"to-latest", CLI_OPT_FLAG, NULL, "Reset offsets to latest offset.", 0, 0, 0},
    {"to-current", CLI_OPT_FLAG, NULL, "Reset offsets to current offset.", 0, 0, 0},
    {"to-offset", CLI_OPT_VALUE, "<Long: offset>", "Reset offsets to a specific offset.", 0, 0, 0},
    {"shift-by", CLI_OPT_VALUE, "<Long: number-of-offsets>",
     "Reset offsets shifting current offset by 'n', where 'n' can be positive or negative.", 0, 0, 0},
    {"execute", CLI_OPT_FLAG, NULL, "Execute operation.", 0, 0, 0},
    {"dry-run", CLI_OPT_FLAG, NULL, "Only show results without executing changes on Consumer "
     "Groups.", 0, 0, 0},
    {"state", CLI_OPT_FLAG, NULL, "When specified with '--describe', includes the state of the "
     "group; with '--list', shows the state column.", 0, 0, 0},
    {"members", CLI_OPT_FLAG, NULL, "Describe members of the group.", 0, 0, 0},
    {"offsets", CLI_OPT_FLAG, NULL, "Describe the group and list all topic partitions in the "
     "group along with their offset lag (the default).", 0, 0, 0},
    {"timeout", CLI_OPT_VALUE, "<Long: timeout (ms)>", "Accepted for compatibility.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd groups_cmd = {
    "kafka-consumer-groups.sh",
    "This tool helps to list all consumer groups, describe a consumer group, delete consumer "
    "group info, or reset consumer group offsets.", groups_opts,
};

/* One line of describe / reset output. Strings borrow from the admin result events. */
struct group_row {
    const char *topic;
    int32_t partition;
    long long current; /* committed offset, -1 when none */
    long long low, high;
    const char *consumer_id, *host, *client_id;
};

struct group_rows {
    struct group_row *rows;
    size_t count, cap;
};

static struct group_row *rows_find_or_add(struct group_rows *r, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->rows[i].partition == partition && strcmp(r->rows[i].topic, topic) == 0)
            return &r->rows[i];
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct group_row *grown = realloc(r->rows, cap * sizeof *grown);
        if (!grown)
            return NULL;
        r->rows = grown;
        r->cap = cap;
    }
    struct group_row *row = &r->rows[r->count++];
    *row = (struct group_row){topic, partition, -1, -1, -1, "-", "-", "-"};
    return row;
}

static int row_compare(const void *a, const void *b)
{
    const struct group_row *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* DescribeConsumerGroups for one group; the event (owning the description) goes to *ev. */
static const rd_kafka_ConsumerGroupDescription_t *describe_group(rd_kafka_t *rk, const char *group,
                                                                 rd_kafka_event_t **ev)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options =
        cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    const char *groups[1] = {group};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, options, q);
    *ev = cli_admin_wait(q, GROUPS_ERROR);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    if (!*ev)
        return NULL;
    size_t n;
    const rd_kafka_ConsumerGroupDescription_t **descs =
        rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(*ev), &n);
    const rd_kafka_error_t *err = n ? rd_kafka_ConsumerGroupDescription_error(descs[0]) : NULL;
    if (n == 0 || err) {
        printf("\n%s %s\n", GROUPS_ERROR, err ? rd_kafka_error_string(err) : "an empty response");
        rd_kafka_event_destroy(*ev);
        *ev = NULL;
        return NULL;
    }
    return descs[0];
}

/* The group's committed offsets (all partitions); the event owns the list. */
static const rd_kafka_topic_partition_list_t *committed_offsets(rd_kafka_t *rk, const char *group,
                                                                rd_kafka_event_t **ev)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options =
        cli_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, options, q);
    *ev = cli_admin_wait(q, GROUPS_ERROR);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    if (!*ev)
        return NULL;
    size_t n;
    const rd_kafka_group_result_t **res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(*ev), &n);
    if (n == 0 || rd_kafka_group_result_error(res[0])) {
        printf("\n%s %s\n", GROUPS_ERROR, n ? rd_kafka_error_string(rd_kafka_group_result_error(res[0]))
                                             : "an empty response");
        rd_kafka_event_destroy(*ev);
        *ev = NULL;
        return NULL;
    }
    return rd_kafka_group_result_partitions(res[0]);
}

static int fill_watermarks(rd_kafka_t *rk, struct group_rows *r)
{
    for (size_t i = 0; i < r->count; i++) {
        int64_t low, high;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, r->rows[i].topic, r->rows[i].partition, &low, &high, GROUPS_WATERMARK_TIMEOUT_MS);
        if (err) {
            fprintf(stderr, "Cannot get offsets of %s-%d: %s\n", r->rows[i].topic,
                    (int)r->rows[i].partition, rd_kafka_err2str(err));
            continue;
        }
        r->rows[i].low = low;
        r->rows[i].high = high;
    }
    return 0;
}

static int width_of(const struct group_rows *r, size_t offset, int minimum)
{
    int w = minimum;
    for (size_t i = 0; i < r->count; i++) {
        const char *s = *(const char *const *)((const char *)&r->rows[i] + offset);
        if ((int)strlen(s) > w)
            w = (int)strlen(s);
    }
    return w;
}

static void print_offset_or_dash(long long v, int width)
{
    if (v >= 0)
        printf("%-*lld ", width, v);
    else
        printf("%-*s ", width, "-");
}

static void print_offsets_table(const char *group, const struct group_rows *r)
{
    int gw = (int)strlen(group) > 15 ? (int)strlen(group) : 15;
    int tw = width_of(r, offsetof(struct group_row, topic), 15);
    int cw = width_of(r, offsetof(struct group_row, consumer_id), 15);
    int hw = width_of(r, offsetof(struct group_row, host), 15);
    printf("%-*s %-*s %-10s %-15s %-15s %-15s %-*s %-*s %s\n", gw, "GROUP", tw, "TOPIC",
           "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", cw, "CONSUMER-ID", hw, "HOST",
           "CLIENT-ID");
    for (size_t i = 0; i < r->count; i++) {
        const struct group_row *row = &r->rows[i];
        printf("%-*s %-*s %-10d ", gw, group, tw, row->topic, (int)row->partition);
        print_offset_or_dash(row->current, 15);
        print_offset_or_dash(row->high, 15);
        print_offset_or_dash(row->current >= 0 && row->high >= 0 ? row->high - row->current : -1, 15);
        printf("%-*s %-*s %s\n", cw, row->consumer_id, hw, row->host, row->client_id);
    }
}

/* Rows from members' assignments and committed offsets. */
static int collect_rows(const rd_kafka_ConsumerGroupDescription_t *desc,
                        const rd_kafka_topic_partition_list_t *committed, struct group_rows *r)
{
    size_t members = rd_kafka_ConsumerGroupDescription_member_count(desc);
    for (size_t m = 0; m < members; m++) {
        const rd_kafka_MemberDescription_t *member = rd_kafka_ConsumerGroupDescription_member(desc, m);
        const rd_kafka_topic_partition_list_t *assigned =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(member));
        for (int i = 0; assigned && i < assigned->cnt; i++) {
            struct group_row *row = rows_find_or_add(r, assigned->elems[i].topic,
                                                     assigned->elems[i].partition);
            if (!row)
                return -1;
            row->consumer_id = rd_kafka_MemberDescription_consumer_id(member);
            row->host = rd_kafka_MemberDescription_host(member);
            row->client_id = rd_kafka_MemberDescription_client_id(member);
        }
    }
    for (int i = 0; committed && i < committed->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &committed->elems[i];
        if (tp->err || tp->offset < 0)
            continue;
        struct group_row *row = rows_find_or_add(r, tp->topic, tp->partition);
        if (!row)
            return -1;
        row->current = tp->offset;
    }
    qsort(r->rows, r->count, sizeof *r->rows, row_compare);
    return 0;
}

static void print_state(const char *group, const rd_kafka_ConsumerGroupDescription_t *desc)
{
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(desc);
    char coordinator[300] = "-";
    if (coord)
        snprintf(coordinator, sizeof coordinator, "%s:%d (%d)", rd_kafka_Node_host(coord),
                 (int)rd_kafka_Node_port(coord), rd_kafka_Node_id(coord));
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(desc);
    int gw = (int)strlen(group) > 15 ? (int)strlen(group) : 15;
    int cw = (int)strlen(coordinator) > 25 ? (int)strlen(coordinator) : 25;
    printf("%-*s %-*s %-20s %-20s %s\n", gw, "GROUP", cw, "COORDINATOR (ID)",
           "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS");
    printf("%-*s %-*s %-20s %-20s %zu\n", gw, group, cw, coordinator,
           assignor && *assignor ? assignor : "",
           rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(desc)),
           rd_kafka_ConsumerGroupDescription_member_count(desc));
}

static int describe_one(rd_kafka_t *rk, struct cli_cmd *cmd, const char *group)
{
    rd_kafka_event_t *dev = NULL, *oev = NULL;
    const rd_kafka_ConsumerGroupDescription_t *desc = describe_group(rk, group, &dev);
    if (!desc)
        return 1;
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(desc);
    int rc = 0;
    printf("\n");
    if (state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD) {
        printf("%s Group %s not found.\n", GROUPS_ERROR, group);
        rc = 1;
    } else if (cli_has(cmd, "state")) {
        print_state(group, desc);
    } else {
        if (state == RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY)
            printf("Consumer group '%s' has no active members.\n\n", group);
        else if (state == RD_KAFKA_CONSUMER_GROUP_STATE_PREPARING_REBALANCE ||
                 state == RD_KAFKA_CONSUMER_GROUP_STATE_COMPLETING_REBALANCE)
            printf("Warning: Consumer group '%s' is rebalancing.\n\n", group);
        const rd_kafka_topic_partition_list_t *committed = committed_offsets(rk, group, &oev);
        struct group_rows rows = {0};
        if (!oev || collect_rows(desc, committed, &rows) != 0)
            rc = 1;
        else {
            fill_watermarks(rk, &rows);
            print_offsets_table(group, &rows);
        }
        free(rows.rows);
    }
    if (oev)
        rd_kafka_event_destroy(oev);
    rd_kafka_event_destroy(dev);
    return rc;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* All group ids, sorted; *ev owns the strings. With --state, prints the listing itself. */
static const char **list_groups(rd_kafka_t *rk, size_t *count, rd_kafka_event_t **ev)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_ListConsumerGroups(rk, options, q);
    *ev = cli_admin_wait(q, GROUPS_ERROR);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    if (!*ev)
        return NULL;
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(*ev);
    size_t n, nerr;
    const rd_kafka_ConsumerGroupListing_t **listing = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    const rd_kafka_error_t **errors = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    for (size_t i = 0; i < nerr; i++)
        fprintf(stderr, "WARN %s\n", rd_kafka_error_string(errors[i]));
    const char **ids = calloc(n + 1, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = rd_kafka_ConsumerGroupListing_group_id(listing[i]);
    if (ids)
        qsort(ids, n, sizeof *ids, compare_strings);
    *count = n;
    return ids;
}

static int groups_list(rd_kafka_t *rk, struct cli_cmd *cmd)
{
    rd_kafka_event_t *ev;
    size_t n;
    const char **ids = list_groups(rk, &n, &ev);
    if (!ids) {
        if (ev)
            rd_kafka_event_destroy(ev);
        return 1;
    }
    if (cli_has(cmd, "state")) {
        const rd_kafka_ConsumerGroupListing_t **listing =
            rd_kafka_ListConsumerGroups_result_valid(rd_kafka_event_ListConsumerGroups_result(ev), &n);
        int w = 15;
        for (size_t i = 0; i < n; i++)
            if ((int)strlen(ids[i]) > w)
                w = (int)strlen(ids[i]);
        printf("%-*s %s\n", w, "GROUP", "STATE");
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                if (strcmp(ids[i], rd_kafka_ConsumerGroupListing_group_id(listing[j])) == 0)
                    printf("%-*s %s\n", w, ids[i], rd_kafka_consumer_group_state_name(
                                                       rd_kafka_ConsumerGroupListing_state(listing[j])));
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", ids[i]);
    }
    free(ids);
    rd_kafka_event_destroy(ev);
    return 0;
}

static int groups_delete(rd_kafka_t *rk, struct cli_opt *groups)
{
    rd_kafka_DeleteGroup_t **del = calloc((size_t)groups->count, sizeof *del);
    if (!del)
        return 1;
    for (int i = 0; i < groups->count; i++)
        del[i] = rd_kafka_DeleteGroup_new(groups->values[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_DeleteGroups(rk, del, (size_t)groups->count, options, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, GROUPS_ERROR);
    int rc = 1;
    if (ev) {
        size_t n;
        const rd_kafka_group_result_t **res =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
        int failed = 0;
        for (size_t i = 0; i < n; i++)
            failed += rd_kafka_group_result_error(res[i]) != NULL;
        if (failed) {
            printf("\nError: Deletion of some consumer groups failed:\n");
            for (size_t i = 0; i < n; i++)
                if (rd_kafka_group_result_error(res[i]))
                    printf("* Group '%s' could not be deleted due to: %s\n",
                           rd_kafka_group_result_name(res[i]),
                           rd_kafka_error_string(rd_kafka_group_result_error(res[i])));
        }
        if ((size_t)failed < n) {
            printf("Deletion of requested consumer groups (");
            int first = 1;
            for (size_t i = 0; i < n; i++)
                if (!rd_kafka_group_result_error(res[i])) {
                    printf("%s'%s'", first ? "" : ", ", rd_kafka_group_result_name(res[i]));
                    first = 0;
                }
            printf(") was successful.\n");
        }
        rc = failed ? 1 : 0;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteGroup_destroy_array(del, (size_t)groups->count);
    free(del);
    return rc;
}

/* Add the partitions named by one --topic value ("t" or "t:0,2") to rows. */
static int reset_add_topic(rd_kafka_t *rk, struct cli_cmd *cmd, const char *spec,
                           struct group_rows *rows, const rd_kafka_metadata_t **mds, int *nmd)
{
    char topic[512];
    const char *colon = strchr(spec, ':');
    snprintf(topic, sizeof topic, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    /* Keep the metadata alive: rows borrow its topic names. */
    const rd_kafka_metadata_t *md = cli_metadata(rk, NULL, CLI_ADMIN_TIMEOUT_MS);
    if (!md)
        return -1;
    mds[(*nmd)++] = md;
    const rd_kafka_metadata_topic_t *t = NULL;
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
            t = &md->topics[i];
    if (!t) {
        printf("\n%s Topic '%s' does not exist.\n", GROUPS_ERROR, topic);
        return -1;
    }
    if (!colon) {
        for (int p = 0; p < t->partition_cnt; p++)
            if (!rows_find_or_add(rows, t->topic, t->partitions[p].id))
                return -1;
        return 0;
    }
    char list[512];
    snprintf(list, sizeof list, "%s", colon + 1);
    for (char *save, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long p;
        if (cli_parse_long(tok, 0, t->partition_cnt - 1, &p) != 0) {
            cli_usage_error(cmd, "Invalid partition '%s' for topic %s", tok, topic);
            return -1;
        }
        if (!rows_find_or_add(rows, t->topic, (int32_t)p))
            return -1;
    }
    return 0;
}

/* The reset target for one row per the chosen --to-* option; clamped into [low, high]. */
static long long reset_target(struct cli_cmd *cmd, const struct group_row *row)
{
    long long target;
    if (cli_has(cmd, "to-earliest"))
        target = row->low;
    else if (cli_has(cmd, "to-latest"))
        target = row->high;
    else if (cli_has(cmd, "to-current"))
        target = row->current >= 0 ? row->current : row->high;
    else if (cli_value(cmd, "to-offset"))
        target = strtoll(cli_value(cmd, "to-offset"), NULL, 10);
    else
        target = (row->current >= 0 ? row->current : row->high) +
                 strtoll(cli_value(cmd, "shift-by"), NULL, 10);
    if (target < row->low) {
        fprintf(stderr, "WARN: New offset (%lld) is lower than earliest offset for topic partition "
                "%s-%d. Value will be set to %lld\n", target, row->topic, (int)row->partition, row->low);
        target = row->low;
    } else if (target > row->high) {
        fprintf(stderr, "WARN: New offset (%lld) is higher than latest offset for topic partition "
                "%s-%d. Value will be set to %lld\n", target, row->topic, (int)row->partition, row->high);
        target = row->high;
    }
    return target;
}

static int reset_execute(rd_kafka_t *rk, const char *group, rd_kafka_topic_partition_list_t *offsets)
{
    rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(group, offsets);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options =
        cli_admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
    rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, options, q);
    rd_kafka_event_t *ev = cli_admin_wait(q, GROUPS_ERROR);
    int rc = 1;
    if (ev) {
        size_t n;
        const rd_kafka_group_result_t **res = rd_kafka_AlterConsumerGroupOffsets_result_groups(
            rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_topic_partition_list_t *parts = n ? rd_kafka_group_result_partitions(res[0]) : NULL;
        rc = n && !rd_kafka_group_result_error(res[0]) ? 0 : 1;
        if (n && rd_kafka_group_result_error(res[0]))
            printf("\n%s %s\n", GROUPS_ERROR, rd_kafka_error_string(rd_kafka_group_result_error(res[0])));
        for (int i = 0; parts && i < parts->cnt; i++)
            if (parts->elems[i].err) {
                printf("\n%s %s-%d: %s\n", GROUPS_ERROR, parts->elems[i].topic,
                       (int)parts->elems[i].partition, rd_kafka_err2str(parts->elems[i].err));
                rc = 1;
            }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(q);
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    return rc;
}

static int reset_validate(struct cli_cmd *cmd)
{
    int targets = cli_has(cmd, "to-earliest") + cli_has(cmd, "to-latest") +
                  cli_has(cmd, "to-current") + cli_has(cmd, "to-offset") + cli_has(cmd, "shift-by");
    if (targets != 1)
        return cli_usage_error(cmd, "Option \"[reset-offsets]\" takes exactly one of these options: "
                               "[to-earliest], [to-latest], [to-current], [to-offset], [shift-by]");
    long long v;
    if (cli_value(cmd, "to-offset") && cli_parse_long(cli_value(cmd, "to-offset"), 0, INT64_MAX, &v))
        return cli_usage_error(cmd, "Invalid --to-offset '%s'", cli_value(cmd, "to-offset"));
    if (cli_value(cmd, "shift-by") &&
        cli_parse_long(cli_value(cmd, "shift-by"), -INT64_MAX / 2, INT64_MAX / 2, &v))
        return cli_usage_error(cmd, "Invalid --shift-by '%s'", cli_value(cmd, "shift-by"));
    if (!cli_has(cmd, "topic") && !cli_has(cmd, "all-topics"))
        return cli_usage_error(cmd, "Option \"[reset-offsets]\" takes one of these options: "
                               "[all-topics], [topic]");
    if (cli_has(cmd, "execute") && cli_has(cmd, "dry-run"))
        return cli_usage_error(cmd, "Option \"[reset-offsets]\" only accepts one of [execute, dry-run]");
    return 0;
}

static int groups_reset(rd_kafka_t *rk, struct cli_cmd *cmd, const char *group)
{
    if (reset_validate(cmd) != 0)
        return 1;
    if (!cli_has(cmd, "execute") && !cli_has(cmd, "dry-run"))
        printf("WARN: No action will be performed as the --execute option is missing. You should "
               "add the --dry-run option explicitly if you are scripting this command.\n");
    rd_kafka_event_t *dev = NULL, *oev = NULL;
    const rd_kafka_ConsumerGroupDescription_t *desc = describe_group(rk, group, &dev);
    if (!desc)
        return 1;
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(desc);
    if (state != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY && state != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD) {
        printf("\n%s Assignments can only be reset if the group '%s' is inactive, but the current "
               "state is %s.\n", GROUPS_ERROR, group, rd_kafka_consumer_group_state_name(state));
        rd_kafka_event_destroy(dev);
        return 1;
    }
    const rd_kafka_topic_partition_list_t *committed = committed_offsets(rk, group, &oev);
    struct group_rows rows = {0};
    struct cli_opt *topics = cli_opt_get(cmd, "topic");
    const rd_kafka_metadata_t *mds[64];
    int nmd = 0, rc = oev ? 0 : 1;
    if (topics->count > 64)
        rc = cli_usage_error(cmd, "At most 64 --topic options");
    for (int i = 0; rc == 0 && i < topics->count; i++)
        if (reset_add_topic(rk, cmd, topics->values[i], &rows, mds, &nmd) != 0)
            rc = 1;
    for (int i = 0; rc == 0 && committed && i < committed->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &committed->elems[i];
        struct group_row *row = NULL;
        for (size_t r = 0; r < rows.count; r++)
            if (rows.rows[r].partition == tp->partition && strcmp(rows.rows[r].topic, tp->topic) == 0)
                row = &rows.rows[r];
        if (!row && cli_has(cmd, "all-topics") && tp->offset >= 0)
            row = rows_find_or_add(&rows, tp->topic, tp->partition);
        if (row && !tp->err)
            row->current = tp->offset;
    }
    if (rc == 0) {
        qsort(rows.rows, rows.count, sizeof *rows.rows, row_compare);
        fill_watermarks(rk, &rows);
        rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new((int)rows.count);
        printf("\n%-30s %-30s %-10s %-15s\n", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
        for (size_t i = 0; i < rows.count; i++) {
            long long target = reset_target(cmd, &rows.rows[i]);
            rd_kafka_topic_partition_list_add(offsets, rows.rows[i].topic, rows.rows[i].partition)->offset = target;
            printf("%-30s %-30s %-10d %-15lld\n", group, rows.rows[i].topic,
                   (int)rows.rows[i].partition, target);
        }
        if (cli_has(cmd, "execute") && rows.count > 0)
            rc = reset_execute(rk, group, offsets);
        rd_kafka_topic_partition_list_destroy(offsets);
    }
    for (int i = 0; i < nmd; i++)
        rd_kafka_metadata_destroy(mds[i]);
    free(rows.rows);
    if (oev)
        rd_kafka_event_destroy(oev);
    rd_kafka_event_destroy(dev);
    return rc;
}

static int groups_for_each(rd_kafka_t *rk, struct cli_cmd *cmd,
                           int (*fn)(rd_kafka_t *, struct cli_cmd *, const char *))
{
    struct cli_opt *groups = cli_opt_get(cmd, "group");
    int rc = 0;
    if (cli_has(cmd, "all-groups")) {
        rd_kafka_event_t *ev;
        size_t n;
        const char **ids = list_groups(rk, &n, &ev);
        if (!ids) {
            if (ev)
                rd_kafka_event_destroy(ev);
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            rc |= fn(rk, cmd, ids[i]);
        free(ids);
        rd_kafka_event_destroy(ev);
        return rc;
    }
    for (int i = 0; i < groups->count; i++)
        rc |= fn(rk, cmd, groups->values[i]);
    return rc;
}

static int groups_run(struct cli_cmd *cmd)
{
    int actions = cli_has(cmd, "list") + cli_has(cmd, "describe") + cli_has(cmd, "delete") +
                  cli_has(cmd, "reset-offsets");
    if (actions != 1)
        return cli_usage_error(cmd, "Command must include exactly one action: --list, --describe, "
                               "--delete, --reset-offsets");
    if (!cli_has(cmd, "list") && !cli_has(cmd, "group") && !cli_has(cmd, "all-groups"))
        return cli_usage_error(cmd, "Option [%s] takes one of these options: [all-groups], [group]",
                               cli_has(cmd, "describe") ? "describe"
                               : cli_has(cmd, "delete") ? "delete" : "reset-offsets");
    rd_kafka_t *rk = cli_admin_connect(cmd);
    if (!rk)
        return 1;
    int rc;
    if (cli_has(cmd, "list"))
        rc = groups_list(rk, cmd);
    else if (cli_has(cmd, "describe"))
        rc = groups_for_each(rk, cmd, describe_one);
    else if (cli_has(cmd, "reset-offsets"))
        rc = groups_for_each(rk, cmd, groups_reset);
    else
        rc = groups_delete(rk, cli_opt_get(cmd, "group"));
    rd_kafka_destroy(rk);
    return rc;
}

int cli_groups(int argc, char **argv)
{
    int parsed = cli_args_parse(&groups_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : groups_run(&groups_cmd);
    cli_args_free(&groups_cmd);
    fflush(stdout);
    return rc;
}
