/* main: the gregor multi-call binary — `gregor serve` is the broker; the other subcommands
 * are client tools (on librdkafka) and offline tools. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "cli/cli.h"
#include "common/logging.h"

#define GREGOR_VERSION "0.1.0"

static void serve_usage(FILE *f)
{
    fprintf(f,
            "Usage: gregor serve [--config server.properties | server.properties] [--override key=value]...\n"
            "Starts the broker in the foreground. Without a config file it uses the embedded\n"
            "defaults: listeners=PLAINTEXT://127.0.0.1:9092, log.dirs=data and, as Kafka's\n"
            "config/server.properties, group.initial.rebalance.delay.ms=0.\n");
}

/* An argument that names a config file: --config (the path follows) or a bare path. */
static bool is_config_arg(const char *a)
{
    return strcmp(a, "--config") == 0 || (a[0] != '-' && strchr(a, '=') == NULL);
}

static int cmd_serve(int argc, char **argv)
{
    struct broker_config cfg;
    broker_config_defaults(&cfg);
    char err[512];
    /* No config file: the settings Kafka's own config/server.properties makes for a quick
     * start (a config file without the key gets Kafka's built-in 3000 ms, as in Kafka). */
    bool has_file = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--override") == 0)
            i++; /* its key=value is not a file */
        else if (is_config_arg(argv[i]))
            has_file = true;
    }
    if (!has_file)
        cfg.group_initial_rebalance_delay_ms = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            serve_usage(stdout);
            return 0;
        }
        if (is_config_arg(a)) {
            const char *path = a[0] != '-' ? a : (i + 1 < argc ? argv[++i] : NULL);
            if (path == NULL) {
                serve_usage(stderr);
                return 1;
            }
            if (broker_config_load_file(&cfg, path, err, sizeof(err)) != 0) {
                LOG_ERROR("KafkaServer", "%s", err);
                return 1;
            }
            continue;
        }
        if (strcmp(a, "--override") == 0) {
            if (i + 1 >= argc) {
                serve_usage(stderr);
                return 1;
            }
            char kv[4096];
            snprintf(kv, sizeof(kv), "%s", argv[++i]);
            char *eq = strchr(kv, '=');
            if (eq == NULL) {
                LOG_ERROR("KafkaServer", "--override expects key=value, got %s", kv);
                return 1;
            }
            *eq = '\0';
            if (broker_config_set_static(&cfg, kv, eq + 1, err, sizeof(err)) != 0) {
                LOG_ERROR("KafkaServer", "%s", err);
                return 1;
            }
            continue;
        }
        LOG_ERROR("KafkaServer", "unknown argument %s", a);
        serve_usage(stderr);
        return 1;
    }
    if (broker_config_validate(&cfg, err, sizeof(err)) != 0) {
        LOG_ERROR("KafkaServer", "%s", err);
        return 1;
    }
    return broker_serve(&cfg);
}

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct subcommand subcommands[] = {
    {"serve", cmd_serve, "run the broker (kafka-server-start.sh)"},
    {"topics", cli_topics, "create, list, describe, alter, delete topics (kafka-topics.sh)"},
    {"produce", cli_produce, "produce lines from stdin (kafka-console-producer.sh)"},
    {"consume", cli_consume, "consume to stdout (kafka-console-consumer.sh)"},
    {"groups", cli_groups, "list, describe, reset consumer groups (kafka-consumer-groups.sh)"},
    {"configs", cli_configs, "describe and alter topic configs (kafka-configs.sh)"},
    {"acls", cli_acls, "add, remove and list ACLs (kafka-acls.sh)"},
    {"get-offsets", cli_get_offsets, "earliest/latest offsets (kafka-get-offsets.sh)"},
    {"leader-election", cli_leader_election, "preferred or unclean leader elections (kafka-leader-election.sh)"},
    {"reassign-partitions", cli_reassign_partitions, "move partitions between brokers (kafka-reassign-partitions.sh)"},
    {"transactions", cli_transactions, "list, describe, abort hanging transactions (kafka-transactions.sh)"},
    {"dump-log", cli_dump_log, "print segment, index and timeindex files (DumpLogSegments)"},
    {"perf", cli_perf, "producer/consumer throughput and latency test"},
};

static void usage(FILE *f)
{
    fprintf(f, "gregor %s: a Kafka-compatible broker without the JVM\n\nUsage: gregor <command> [options]\n\n", GREGOR_VERSION);
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(f, "\nEach command takes --help.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("gregor %s\n", GREGOR_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "gregor: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 1;
}
