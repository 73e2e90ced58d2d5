/* leader_election: `gregor leader-election`, the kafka-leader-election.sh (Kafka 3.9's
 * LeaderElectionCommand) work-alike: ElectLeaders (PREFERRED or UNCLEAN) for every partition
 * or one, sent to the controller found through Metadata. librdkafka 2.0 has no ElectLeaders,
 * so it goes over cli/wire.h. */
#include "cli/cli.h"
#include "cli/args.h"
#include "cli/wire.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/arena.h"
#include "proto/messages.h"

#define ELECT_VERSION 2   /* flexible; Kafka 3.9 serves 0-2 */
#define METADATA_VERSION 1 /* the first with the controller id */

static struct cli_opt election_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: host:port>",
     "A hostname and port for the broker to connect to, in the form host:port. Multiple "
     "comma separated URLs can be given. REQUIRED.", 0, 0, 0},
    {"admin.config", CLI_OPT_VALUE, "<String: config file>",
     "Configuration properties files to pass to the admin client (not read here).", 0, 0, 0},
    {"all-topic-partitions", CLI_OPT_FLAG, NULL,
     "Perform election on all of the eligible topic partitions based on the type of election "
     "(see the --election-type flag). Not allowed if --topic or --path-to-json-file is "
     "specified.", 0, 0, 0},
    {"election-type", CLI_OPT_VALUE, "<[PREFERRED,UNCLEAN]: election type>",
     "Type of election to attempt. Possible values are \"preferred\" for preferred leader "
     "election or \"unclean\" for unclean leader election. REQUIRED.", 0, 0, 0},
    {"partition", CLI_OPT_VALUE, "<Integer: partition id>",
     "Partition id for which to perform an election. REQUIRED if --topic is specified.", 0, 0,
     0},
    {"topic", CLI_OPT_VALUE, "<String: topic name>",
     "Name of topic for which to perform an election. Not allowed if --path-to-json-file or "
     "--all-topic-partitions is specified.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd election_cmd = {
    "kafka-leader-election.sh",
    "This tool attempts to elect a new leader for a set of topic partitions. The type of "
    "elections supported are preferred replicas and unclean replicas.",
    election_opts,
};

/* Kafka's exception class names for the answers, as its tool prints them. */
static const char *error_class(int16_t code)
{
    switch (code) {
    case 3: return "org.apache.kafka.common.errors.UnknownTopicOrPartitionException";
    case 7: return "org.apache.kafka.common.errors.TimeoutException";
    case 41: return "org.apache.kafka.common.errors.NotControllerException";
    case 80: return "org.apache.kafka.common.errors.PreferredLeaderNotAvailableException";
    case 83: return "org.apache.kafka.common.errors.EligibleLeadersNotAvailableException";
    default: return "org.apache.kafka.common.errors.ApiException";
    }
}

/* Metadata v1 on the bootstrap connection: the controller's host and port. */
static int find_controller(struct cli_wire *w, struct arena *arena, char *host, size_t hostlen,
                           int *port)
{
    struct metadata_request req;
    metadata_request_set_defaults(&req);
    req.topics = NULL;
    req.n_topics = 0; /* v1: an empty list, no topics */
    void *out;
    if (cli_wire_call(w, PROTO_API_METADATA, METADATA_VERSION, &req, arena, &out) != 0)
        return -1;
    struct metadata_response *md = out;
    for (int32_t i = 0; i < md->n_brokers; i++)
        if (md->brokers[i].node_id == md->controller_id) {
            snprintf(host, hostlen, "%.*s", md->brokers[i].host.len, md->brokers[i].host.ptr);
            *port = md->brokers[i].port;
            return 0;
        }
    snprintf(w->error, sizeof(w->error), "no controller known (controller id %d)",
             md->controller_id);
    return -1;
}

static int report(const struct elect_leaders_response *resp, const char *type)
{
    if (resp->error_code != 0) {
        printf("Error completing leader election (%s): %s\n", type,
               error_class(resp->error_code));
        return 1;
    }
    char ok[8192] = "", noop[8192] = "";
    size_t okn = 0, noopn = 0;
    int failed = 0;
    for (int32_t i = 0; i < resp->n_replica_election_results; i++) {
        const struct elect_leaders_response_replica_election_result *t =
            &resp->replica_election_results[i];
        for (int32_t k = 0; k < t->n_partition_result; k++) {
            const struct elect_leaders_response_partition_result *p = &t->partition_result[k];
            char *buf = p->error_code == 0 ? ok : noop;
            size_t *n = p->error_code == 0 ? &okn : &noopn;
            if (p->error_code != 0 && p->error_code != 84) {
                failed++;
                continue;
            }
            if (*n < sizeof(ok) - 300)
                *n += (size_t)snprintf(buf + *n, sizeof(ok) - *n, "%s%.*s-%d", *n ? ", " : "",
                                       t->topic.len, t->topic.ptr, p->partition_id);
        }
    }
    if (okn > 0)
        printf("Successfully completed leader election (%s) for partitions %s\n", type, ok);
    if (noopn > 0)
        printf("Valid replica already elected for partitions %s\n", noop);
    for (int32_t i = 0; failed > 0 && i < resp->n_replica_election_results; i++) {
        const struct elect_leaders_response_replica_election_result *t =
            &resp->replica_election_results[i];
        for (int32_t k = 0; k < t->n_partition_result; k++) {
            const struct elect_leaders_response_partition_result *p = &t->partition_result[k];
            if (p->error_code == 0 || p->error_code == 84)
                continue;
            printf("Error completing leader election (%s) for partition: %.*s-%d: %s", type,
                   t->topic.len, t->topic.ptr, p->partition_id, error_class(p->error_code));
            if (p->error_message.ptr != NULL)
                printf(": %.*s", p->error_message.len, p->error_message.ptr);
            printf("\n");
        }
    }
    if (failed > 0)
        fprintf(stderr, "Error: %d replica(s) could not be elected\n", failed);
    return failed > 0;
}

static int election_run(struct cli_cmd *cmd)
{
    const char *bootstrap = cli_value(cmd, "bootstrap-server");
    const char *type = cli_value(cmd, "election-type");
    if (bootstrap == NULL)
        return cli_usage_error(cmd, "Missing required option(s): bootstrap-server");
    if (type == NULL)
        return cli_usage_error(cmd, "Missing required option(s): election-type");
    int8_t election;
    if (strcasecmp(type, "preferred") == 0)
        election = 0;
    else if (strcasecmp(type, "unclean") == 0)
        election = 1;
    else
        return cli_usage_error(cmd, "Unknown election type: %s", type);
    int all = cli_has(cmd, "all-topic-partitions"), topic = cli_has(cmd, "topic");
    if (all + topic != 1)
        return cli_usage_error(cmd, "One and only one of the following options is required: "
                               "all-topic-partitions, topic, path-to-json-file");
    long long partition = 0;
    if (topic && cli_value(cmd, "partition") == NULL)
        return cli_usage_error(cmd, "Missing required option(s): partition");
    if (topic && cli_parse_long(cli_value(cmd, "partition"), 0, INT32_MAX, &partition) != 0)
        return cli_usage_error(cmd, "Invalid partition: %s", cli_value(cmd, "partition"));

    struct arena arena;
    arena_init(&arena, CLI_WIRE_ARENA_LIMIT);
    struct cli_wire w = {.fd = -1};
    char host[256];
    int port = 0, rc = 1;
    const char *name = election == 0 ? "PREFERRED" : "UNCLEAN";
    if (cli_wire_connect(&w, bootstrap, CLI_ADMIN_TIMEOUT_MS) != 0 ||
        find_controller(&w, &arena, host, sizeof(host), &port) != 0) {
        printf("Error completing leader election (%s): %s\n", name, w.error);
        goto out;
    }
    cli_wire_close(&w);
    char addr[300];
    snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (cli_wire_connect(&w, addr, CLI_ADMIN_TIMEOUT_MS) != 0) {
        printf("Error completing leader election (%s): %s\n", name, w.error);
        goto out;
    }
    struct elect_leaders_request req;
    elect_leaders_request_set_defaults(&req);
    req.election_type = election;
    req.timeout_ms = CLI_ADMIN_TIMEOUT_MS;
    struct elect_leaders_request_topic_partitions tp;
    int32_t part = (int32_t)partition;
    if (topic) {
        elect_leaders_request_topic_partitions_set_defaults(&tp);
        const char *t = cli_value(cmd, "topic");
        tp.topic = (struct kstr){(char *)t, (int32_t)strlen(t)};
        tp.partitions = &part;
        tp.n_partitions = 1;
        req.topic_partitions = &tp;
        req.n_topic_partitions = 1;
    } else {
        req.topic_partitions = NULL;
        req.n_topic_partitions = -1; /* null: every partition */
    }
    void *out;
    if (cli_wire_call(&w, PROTO_API_ELECT_LEADERS, ELECT_VERSION, &req, &arena, &out) != 0) {
        printf("Error completing leader election (%s): %s\n", name, w.error);
        goto out;
    }
    rc = report(out, name);
out:
    cli_wire_close(&w);
    arena_reset(&arena);
    return rc;
}

int cli_leader_election(int argc, char **argv)
{
    int parsed = cli_args_parse(&election_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : election_run(&election_cmd);
    cli_args_free(&election_cmd);
    fflush(stdout);
    return rc;
}
