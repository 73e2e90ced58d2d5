/* transactions: `gregor transactions`, the kafka-transactions.sh (Kafka 4.x TransactionsCommand)
 * work-alike: list, describe, describe-producers, abort, find-hanging and forceTerminateTransaction
 * over cli/wire.h, since librdkafka has none of DescribeTransactions, ListTransactions,
 * DescribeProducers, an abort or a fence. */
#include "cli/cli.h"
#include "cli/args.h"
#include "cli/wire.h"

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/errors.h"
#include "common/java_hash.h"
#include "common/util.h"
#include "proto/messages.h"

#define PROG "kafka-transactions.sh"
#define METADATA_VERSION 1       /* leaders, replicas and the broker list; null = every topic */
#define FIND_COORDINATOR_VERSION 3 /* one key, with its key type */
#define LIST_TRANSACTIONS_VERSION 1 /* the duration filter */
#define WRITE_TXN_MARKERS_VERSION 1
#define INIT_PRODUCER_ID_VERSION 5
/* Kafka's admin fences with its request.timeout.ms (30 s by default) as the transaction timeout. */
#define FENCE_TRANSACTION_TIMEOUT_MS 30000
#define MAX_BATCH_PARTITIONS 500 /* partitions per DescribeProducers, as Kafka's find-hanging */
#define MAX_COLUMNS 9
#define MAX_ARGS 16

/* One option of a subcommand: argparse4j style, `--name value` or `--name=value`. */
enum txn_arg_type { ARG_STRING, ARG_INT, ARG_LONG, ARG_SHORT };
struct txn_arg {
    const char *name;       /* with the leading "--" */
    enum txn_arg_type type;
    int required;
    const char *value;      /* borrows argv; NULL when absent */
    long long number;       /* parsed value of the numeric types */
};

struct txn_command {
    const char *name;
    const char *usage;      /* the subcommand's usage line(s) after the program's options */
    struct txn_arg args[MAX_ARGS];
};

/* Everything one run uses; the arena holds the decoded responses until the end. */
struct txn_ctx {
    const char *bootstrap;
    struct arena arena;
    struct metadata_response *md; /* the cluster (and maybe topics) from the bootstrap server */
    long long now_ms;             /* wall clock, as Kafka's Time.SYSTEM */
};

struct table {
    const char *const *headers;
    int ncols, nrows, cap;
    char *(*rows)[MAX_COLUMNS];
};

static struct txn_command commands[] = {
    {"list", "list [-h]\n                             [--duration-filter DURATION_FILTER]\n"
             "                             [--transactional-id-pattern TRANSACTIONAL_ID_PATTERN]",
     {{"--duration-filter", ARG_LONG, 0, 0, 0}, {"--transactional-id-pattern", ARG_STRING, 0, 0, 0}}},
    {"describe", "describe [-h]\n                             --transactional-id TRANSACTIONAL_ID",
     {{"--transactional-id", ARG_STRING, 1, 0, 0}}},
    {"describe-producers", "\n                             describe-producers [-h]\n"
                           "                             [--broker-id BROKER_ID] --topic TOPIC\n"
                           "                             --partition PARTITION",
     {{"--broker-id", ARG_INT, 0, 0, 0}, {"--topic", ARG_STRING, 1, 0, 0},
      {"--partition", ARG_INT, 1, 0, 0}}},
    {"abort", "abort [-h]\n                             --topic TOPIC --partition PARTITION\n"
              "                             [--start-offset START_OFFSET]\n"
              "                             [--producer-id PRODUCER_ID]\n"
              "                             [--producer-epoch PRODUCER_EPOCH]\n"
              "                             [--coordinator-epoch COORDINATOR_EPOCH]",
     {{"--topic", ARG_STRING, 1, 0, 0}, {"--partition", ARG_INT, 1, 0, 0},
      {"--start-offset", ARG_LONG, 0, 0, 0}, {"--producer-id", ARG_LONG, 0, 0, 0},
      {"--producer-epoch", ARG_SHORT, 0, 0, 0}, {"--coordinator-epoch", ARG_INT, 0, 0, 0}}},
    {"find-hanging", "find-hanging [-h]\n                             [--broker-id BROKER_ID]\n"
                     "                             [--max-transaction-timeout MAX_TRANSACTION_TIMEOUT]\n"
                     "                             [--topic TOPIC] [--partition PARTITION]",
     {{"--broker-id", ARG_INT, 0, 0, 0}, {"--max-transaction-timeout", ARG_INT, 0, 0, 0},
      {"--topic", ARG_STRING, 0, 0, 0}, {"--partition", ARG_INT, 0, 0, 0}}},
    {"forceTerminateTransaction", "\n                             forceTerminateTransaction [-h]\n"
                                  "                             --transactionalId TRANSACTIONALID",
     {{"--transactionalId", ARG_STRING, 1, 0, 0}}},
};
#define N_COMMANDS ((int)(sizeof(commands) / sizeof(commands[0])))

static const char main_usage[] =
    "usage: " PROG " [-h] [-v] [--command-config FILE]\n"
    "                             --bootstrap-server host:port COMMAND ...\n";

static void print_help(void)
{
    printf("%s\nAnalyze the transactional state of producers in the cluster; detect and recover\n"
           "from hanging transactions.\n\n"
           "optional arguments:\n"
           "  -h, --help             show this help message and exit\n"
           "  -v, --version          show the version and exit\n"
           "  --command-config FILE  admin client properties (accepted, not read)\n"
           "  --bootstrap-server host:port\n"
           "                         the broker(s) to connect to, host:port[,host:port...]\n\n"
           "commands:\n  COMMAND\n"
           "    list                 list transactions\n"
           "    describe             describe the state of a transactional id\n"
           "    describe-producers   the active producers of a topic partition\n"
           "    abort                abort a hanging transaction\n"
           "    find-hanging         find hanging transactions\n"
           "    forceTerminateTransaction\n"
           "                         abort a transactional id's ongoing transaction (fences its\n"
           "                         producer)\n",
           main_usage);
}

/* argparse4j's error: the usage of the (sub)command, then "prog: error: message"; exit 1. */
static int parse_error(const struct txn_command *cmd, const char *fmt, const char *a, const char *b)
{
    if (cmd)
        fprintf(stderr, "usage: " PROG " --bootstrap-server host:port %s\n", cmd->usage);
    else
        fputs(main_usage, stderr);
    fprintf(stderr, PROG ": error: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

/* TransactionsCommand.printErrorAndExit: the message on stderr, exit 1. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static struct txn_arg *arg_find(struct txn_command *cmd, const char *name)
{
    for (int i = 0; i < MAX_ARGS && cmd->args[i].name; i++)
        if (strcmp(cmd->args[i].name, name) == 0)
            return &cmd->args[i];
    return NULL;
}

static int arg_set(struct txn_command *cmd, struct txn_arg *a, const char *value)
{
    static const char *const type_names[] = {"String", "Integer", "Long", "Short"};
    static const long long lo[] = {0, INT32_MIN, INT64_MIN, INT16_MIN};
    static const long long hi[] = {0, INT32_MAX, INT64_MAX, INT16_MAX};
    a->value = value;
    if (a->type != ARG_STRING && cli_parse_long(value, lo[a->type], hi[a->type], &a->number) != 0) {
        char what[128];
        snprintf(what, sizeof(what), "%s", type_names[a->type]);
        char msg[512];
        snprintf(msg, sizeof(msg), "argument %s: could not convert '%s' to %s (For input string: \"%s\")",
                 a->name, value, what, value);
        return parse_error(cmd, "%s%s", msg, "");
    }
    return 0;
}

/* Parses the subcommand's options from argv[i..]; 0, or the exit code after an error. */
static int parse_sub(struct txn_command *cmd, int argc, char **argv, int i)
{
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            printf("usage: " PROG " --bootstrap-server host:port %s\n", cmd->usage);
            return 1; /* as Kafka's: the help screen ends the parse with exit code 1 */
        }
        const char *eq = strchr(arg, '=');
        char name[64];
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        snprintf(name, sizeof(name), "%.*s", (int)len, arg);
        struct txn_arg *a = len < sizeof(name) ? arg_find(cmd, name) : NULL;
        if (a == NULL)
            return parse_error(cmd, "unrecognized arguments: '%s'%s", arg, "");
        if (eq == NULL && i + 1 >= argc)
            return parse_error(cmd, "argument %s: expected one argument%s", a->name, "");
        int rc = arg_set(cmd, a, eq ? eq + 1 : argv[++i]);
        if (rc != 0)
            return rc;
    }
    for (int k = 0; k < MAX_ARGS && cmd->args[k].name; k++)
        if (cmd->args[k].required && cmd->args[k].value == NULL)
            return parse_error(cmd, "argument %s is required%s", cmd->args[k].name, "");
    return 0;
}

static const char *arg_value(struct txn_command *cmd, const char *name)
{
    struct txn_arg *a = arg_find(cmd, name);
    GREGOR_ASSERT(a != NULL);
    return a->value;
}

static long long arg_number(struct txn_command *cmd, const char *name)
{
    struct txn_arg *a = arg_find(cmd, name);
    GREGOR_ASSERT(a != NULL && a->value != NULL && a->type != ARG_STRING);
    return a->number;
}

/* The run's memory: the arena's limit bounds it, and a CLI past it has nothing better to do than
 * say so and stop. */
static void *txn_alloc(struct arena *arena, size_t n)
{
    void *p = arena_alloc(arena, n);
    if (p == NULL) {
        fprintf(stderr, "Out of memory: the answers passed %u bytes\n", CLI_WIRE_ARENA_LIMIT);
        exit(1);
    }
    return p;
}

static char *txn_strndup(struct arena *arena, const char *s, size_t n)
{
    char *p = txn_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- output: ToolsUtils.prettyPrintTable, each cell padded to its column, then a tab */

static void table_add(struct table *t, struct arena *arena, char **cells)
{
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char *(*rows)[MAX_COLUMNS] = txn_alloc(arena, (size_t)cap * sizeof(*rows));
        if (t->nrows)
            memcpy(rows, t->rows, (size_t)t->nrows * sizeof(*rows));
        t->rows = rows;
        t->cap = cap;
    }
    for (int c = 0; c < t->ncols; c++)
        t->rows[t->nrows][c] = txn_strndup(arena, cells[c], strlen(cells[c]));
    t->nrows++;
}

static void table_print(const struct table *t)
{
    GREGOR_ASSERT(t->ncols <= MAX_COLUMNS);
    size_t width[MAX_COLUMNS];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = strlen(t->headers[c]);
        for (int r = 0; r < t->nrows; r++)
            if (strlen(t->rows[r][c]) > width[c])
                width[c] = strlen(t->rows[r][c]);
    }
    for (int r = -1; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            printf("%-*s\t", (int)width[c], r < 0 ? t->headers[c] : t->rows[r][c]);
        putchar('\n');
    }
}

/* ---- Java collection order: Kafka's tool prints HashMap/HashSet contents in bucket order */

/* HashMap's bucket of a hash for a table grown to hold n entries (16, doubled past 0.75). */
static uint32_t java_bucket(int32_t hash, size_t n)
{
    uint32_t cap = 16;
    while (n > (size_t)cap * 3 / 4)
        cap *= 2;
    uint32_t h = (uint32_t)hash;
    return (h ^ (h >> 16)) & (cap - 1);
}

static int32_t java_topic_partition_hash(const char *topic, size_t len, int32_t partition)
{
    uint32_t h = 31u + (uint32_t)partition;
    return (int32_t)(31u * h + (uint32_t)java_string_hash(topic, len));
}

static int32_t java_long_hash(int64_t v)
{
    uint64_t u = (uint64_t)v;
    return (int32_t)(uint32_t)(u ^ (u >> 32));
}

/* ---- the cluster */

static const char *error_message(int16_t code)
{
    switch (code) {
    case 3: return "This server does not host this topic-partition.";
    case 6: return "For requests intended only for the leader, this error indicates that the broker "
                   "is not the current leader. For requests intended for any replica, this error "
                   "indicates that the broker is not a replica of the topic partition.";
    case 14: return "The coordinator is loading and hence can't process requests.";
    case 15: return "The coordinator is not available.";
    case 16: return "This is not the correct coordinator.";
    case 35: return "The version of API is not supported.";
    case 47: return "Producer attempted to produce with an old epoch.";
    case 105: return "The transactionalId could not be found.";
    default: return kerr_name(code);
    }
}

static char *kstr_dup(struct txn_ctx *c, struct kstr s)
{
    return txn_strndup(&c->arena, s.ptr ? s.ptr : "", s.ptr ? (size_t)s.len : 0);
}

/* One request to one address; the connection lasts the call. */
static int call_addr(struct txn_ctx *c, const char *addr, int16_t key, int16_t version,
                     const void *req, void **out, char *err, size_t errlen)
{
    struct cli_wire w = {.fd = -1};
    int rc = cli_wire_connect(&w, addr, CLI_ADMIN_TIMEOUT_MS);
    if (rc == 0)
        rc = cli_wire_call(&w, key, version, req, &c->arena, out);
    if (rc != 0)
        snprintf(err, errlen, "%s", w.error);
    cli_wire_close(&w);
    return rc;
}

static int call_broker(struct txn_ctx *c, int32_t node, int16_t key, int16_t version,
                       const void *req, void **out, char *err, size_t errlen)
{
    for (int32_t i = 0; i < c->md->n_brokers; i++) {
        const struct metadata_response_metadata_response_broker *b = &c->md->brokers[i];
        if (b->node_id != node)
            continue;
        char addr[300];
        int colon = memchr(b->host.ptr, ':', (size_t)b->host.len) != NULL;
        snprintf(addr, sizeof(addr), colon ? "[%.*s]:%d" : "%.*s:%d", b->host.len, b->host.ptr, b->port);
        return call_addr(c, addr, key, version, req, out, err, errlen);
    }
    snprintf(err, errlen, "Broker %d is not in the cluster's metadata", node);
    return -1;
}

/* Metadata v1 from the bootstrap servers: every topic when topic is NULL. */
static int load_metadata(struct txn_ctx *c, const char *topic, char *err, size_t errlen)
{
    struct metadata_request req;
    metadata_request_set_defaults(&req);
    struct metadata_request_metadata_request_topic t;
    if (topic) {
        metadata_request_metadata_request_topic_set_defaults(&t);
        t.name = (struct kstr){(char *)topic, (int32_t)strlen(topic)};
        req.topics = &t;
        req.n_topics = 1;
    } else {
        req.topics = NULL;
        req.n_topics = -1;
    }
    void *out;
    if (call_addr(c, c->bootstrap, PROTO_API_METADATA, METADATA_VERSION, &req, &out, err, errlen) != 0)
        return -1;
    c->md = out;
    return 0;
}

static const struct metadata_response_metadata_response_partition *
md_partition(struct txn_ctx *c, const char *topic, int32_t partition, int16_t *error)
{
    *error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    for (int32_t i = 0; i < c->md->n_topics; i++) {
        const struct metadata_response_metadata_response_topic *t = &c->md->topics[i];
        if ((size_t)t->name.len != strlen(topic) || memcmp(t->name.ptr, topic, (size_t)t->name.len) != 0)
            continue;
        if (t->error_code != 0) {
            *error = t->error_code;
            return NULL;
        }
        for (int32_t k = 0; k < t->n_partitions; k++)
            if (t->partitions[k].partition_index == partition) {
                *error = t->partitions[k].error_code;
                return *error == 0 ? &t->partitions[k] : NULL;
            }
    }
    return NULL;
}

/* ---- describe-producers: the producer states of partitions on one broker */

struct tp {
    const char *topic;
    int32_t partition;
    int32_t broker;         /* where to ask */
    const struct describe_producers_response_partition_response *result; /* borrows the arena */
};

/* DescribeProducers for tps[0..n) (all for one broker), each result set; 0, or a Kafka error
 * code / -1 (err set) for the first partition that failed. */
static int describe_producers(struct txn_ctx *c, struct tp *tps, int n, char *err, size_t errlen)
{
    GREGOR_ASSERT(n > 0 && n <= MAX_BATCH_PARTITIONS);
    struct describe_producers_request req;
    describe_producers_request_set_defaults(&req);
    req.topics = txn_alloc(&c->arena, (size_t)n * sizeof(*req.topics));
    req.n_topics = n;
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(tps[i].broker == tps[0].broker);
        describe_producers_request_topic_request_set_defaults(&req.topics[i]);
        req.topics[i].name = (struct kstr){(char *)tps[i].topic, (int32_t)strlen(tps[i].topic)};
        req.topics[i].partition_indexes = &tps[i].partition;
        req.topics[i].n_partition_indexes = 1;
    }
    void *out;
    if (call_broker(c, tps[0].broker, PROTO_API_DESCRIBE_PRODUCERS, 0, &req, &out, err, errlen) != 0)
        return -1;
    struct describe_producers_response *resp = out;
    for (int32_t t = 0; t < resp->n_topics; t++)
        for (int32_t p = 0; p < resp->topics[t].n_partitions; p++) {
            const struct describe_producers_response_partition_response *pr = &resp->topics[t].partitions[p];
            for (int i = 0; i < n; i++)
                if (tps[i].partition == pr->partition_index &&
                    strlen(tps[i].topic) == (size_t)resp->topics[t].name.len &&
                    memcmp(tps[i].topic, resp->topics[t].name.ptr, (size_t)resp->topics[t].name.len) == 0)
                    tps[i].result = pr;
        }
    for (int i = 0; i < n; i++) {
        if (tps[i].result == NULL) {
            snprintf(err, errlen, "No result for partition %s-%d", tps[i].topic, tps[i].partition);
            return -1;
        }
        if (tps[i].result->error_code != 0)
            return tps[i].result->error_code;
    }
    return 0;
}

/* Where to ask about one partition: the given broker, else its leader. */
static int locate(struct txn_ctx *c, struct tp *tp, const char *broker_arg, long long broker_id,
                  char *err, size_t errlen)
{
    if (load_metadata(c, tp->topic, err, errlen) != 0)
        return -1;
    if (broker_arg) {
        tp->broker = (int32_t)broker_id;
        return 0;
    }
    int16_t code;
    const struct metadata_response_metadata_response_partition *p =
        md_partition(c, tp->topic, tp->partition, &code);
    if (p == NULL || p->leader_id < 0) {
        snprintf(err, errlen, "%s", error_message(p ? KERR_LEADER_NOT_AVAILABLE : code));
        return -1;
    }
    tp->broker = p->leader_id;
    return 0;
}

static void producer_row(const struct describe_producers_response_producer_state *s, char cells[6][32])
{
    snprintf(cells[0], 32, "%lld", (long long)s->producer_id);
    snprintf(cells[1], 32, "%d", s->producer_epoch);
    snprintf(cells[2], 32, "%d", s->coordinator_epoch < 0 ? -1 : s->coordinator_epoch);
    snprintf(cells[3], 32, "%d", s->last_sequence);
    snprintf(cells[4], 32, "%lld", (long long)s->last_timestamp);
    if (s->current_txn_start_offset >= 0)
        snprintf(cells[5], 32, "%lld", (long long)s->current_txn_start_offset);
    else
        snprintf(cells[5], 32, "None");
}

static int run_describe_producers(struct txn_ctx *c, struct txn_command *cmd)
{
    static const char *const headers[] = {"ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch",
                                          "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"};
    const char *broker_arg = arg_value(cmd, "--broker-id");
    long long broker_id = broker_arg ? arg_number(cmd, "--broker-id") : -1;
    struct tp tp = {arg_value(cmd, "--topic"), (int32_t)arg_number(cmd, "--partition"), -1, NULL};
    char err[600], where[64];
    if (broker_arg)
        snprintf(where, sizeof(where), "broker %lld", broker_id);
    else
        snprintf(where, sizeof(where), "leader");
    int rc = locate(c, &tp, broker_arg, broker_id, err, sizeof(err));
    if (rc == 0)
        rc = describe_producers(c, &tp, 1, err, sizeof(err));
    if (rc > 0)
        snprintf(err, sizeof(err), "%s", error_message((int16_t)rc));
    if (rc != 0)
        return fail("Failed to describe producers for partition %s-%d on %s: %s. Enable debug "
                    "logging for additional detail.", tp.topic, tp.partition, where, err);
    struct table t = {headers, 6, 0, 0, NULL};
    for (int32_t i = 0; i < tp.result->n_active_producers; i++) {
        char cells[6][32];
        producer_row(&tp.result->active_producers[i], cells);
        char *row[6] = {cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]};
        table_add(&t, &c->arena, row);
    }
    table_print(&t);
    return 0;
}

/* ---- describe */

/* FindCoordinator (TRANSACTION) for id at the bootstrap servers: its node and "host:port".
 * 0, a Kafka error code, or -1 (err set). */
static int find_txn_coordinator(struct txn_ctx *c, const char *id, char *addr, size_t addrlen,
                                int32_t *node, char *err, size_t errlen)
{
    struct find_coordinator_request fc;
    find_coordinator_request_set_defaults(&fc);
    fc.key = (struct kstr){(char *)id, (int32_t)strlen(id)};
    fc.key_type = 1; /* TRANSACTION */
    void *out;
    if (call_addr(c, c->bootstrap, PROTO_API_FIND_COORDINATOR, FIND_COORDINATOR_VERSION, &fc, &out,
                  err, errlen) != 0)
        return -1;
    const struct find_coordinator_response *fr = out;
    if (fr->error_code != 0)
        return fr->error_code;
    *node = fr->node_id;
    int colon = memchr(fr->host.ptr, ':', (size_t)fr->host.len) != NULL;
    snprintf(addr, addrlen, colon ? "[%.*s]:%d" : "%.*s:%d", fr->host.len, fr->host.ptr, fr->port);
    return 0;
}

/* DescribeTransactions for one id at its coordinator; 0, a Kafka error code, or -1 (err). */
static int describe_transaction_once(struct txn_ctx *c, const char *id, int32_t *coordinator,
                                     const struct describe_transactions_response_transaction_state **state,
                                     char *err, size_t errlen)
{
    char addr[300];
    int rc = find_txn_coordinator(c, id, addr, sizeof(addr), coordinator, err, errlen);
    if (rc != 0)
        return rc;
    void *out;
    struct describe_transactions_request req;
    describe_transactions_request_set_defaults(&req);
    struct kstr key = {(char *)id, (int32_t)strlen(id)};
    req.transactional_ids = &key;
    req.n_transactional_ids = 1;
    if (call_addr(c, addr, PROTO_API_DESCRIBE_TRANSACTIONS, 0, &req, &out, err, errlen) != 0)
        return -1;
    struct describe_transactions_response *resp = out;
    if (resp->n_transaction_states != 1) {
        snprintf(err, errlen, "DescribeTransactions answered %d states for one id",
                 resp->n_transaction_states);
        return -1;
    }
    *state = &resp->transaction_states[0];
    return (*state)->error_code;
}

static bool coordinator_retriable(int rc)
{
    return rc == KERR_COORDINATOR_LOAD_IN_PROGRESS || rc == KERR_COORDINATOR_NOT_AVAILABLE ||
           rc == KERR_NOT_COORDINATOR;
}

/* As Kafka's admin client: a coordinator loading or moving is asked again (FindCoordinator
 * first) every 100 ms until the admin timeout. */
static int describe_transaction(struct txn_ctx *c, const char *id, int32_t *coordinator,
                                const struct describe_transactions_response_transaction_state **state,
                                char *err, size_t errlen)
{
    long long deadline = cli_now_ms() + CLI_ADMIN_TIMEOUT_MS;
    for (;;) {
        int rc = describe_transaction_once(c, id, coordinator, state, err, errlen);
        if (!coordinator_retriable(rc))
            return rc;
        if (cli_now_ms() >= deadline) {
            snprintf(err, errlen, "Timed out waiting for a node assignment. Call: describeTransactions");
            return -1;
        }
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* The transaction's partitions "t-p,t-p" in the order of Kafka's HashSet of them. */
static char *partitions_joined(struct txn_ctx *c, const struct describe_transactions_response_transaction_state *s)
{
    size_t n = 0, bytes = 1;
    for (int32_t t = 0; t < s->n_topics; t++) {
        n += (size_t)s->topics[t].n_partitions;
        bytes += (size_t)s->topics[t].n_partitions * ((size_t)s->topics[t].topic.len + 13);
    }
    struct item { uint32_t bucket; size_t seq; const struct kstr *topic; int32_t partition; };
    struct item *items = txn_alloc(&c->arena, (n ? n : 1) * sizeof(*items));
    size_t k = 0;
    for (int32_t t = 0; t < s->n_topics; t++)
        for (int32_t p = 0; p < s->topics[t].n_partitions; p++, k++) {
            const struct kstr *name = &s->topics[t].topic;
            int32_t part = s->topics[t].partitions[p];
            items[k] = (struct item){java_bucket(java_topic_partition_hash(name->ptr, (size_t)name->len, part), n),
                                     k, name, part};
        }
    /* insertion sort: stable by bucket, the HashSet's iteration order */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && items[j - 1].bucket > items[j].bucket; j--) {
            struct item tmp = items[j];
            items[j] = items[j - 1];
            items[j - 1] = tmp;
        }
    char *out = txn_alloc(&c->arena, bytes), *p = out;
    *p = '\0';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%.*s-%d", i ? "," : "", items[i].topic->len, items[i].topic->ptr, items[i].partition);
    GREGOR_ASSERT((size_t)(p - out) < bytes);
    return out;
}

static int run_describe(struct txn_ctx *c, struct txn_command *cmd)
{
    static const char *const headers[] = {"CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch",
                                          "TransactionState", "TransactionTimeoutMs",
                                          "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                                          "TopicPartitions"};
    const char *id = arg_value(cmd, "--transactional-id");
    int32_t coordinator = -1;
    const struct describe_transactions_response_transaction_state *s = NULL;
    char err[600];
    int rc = describe_transaction(c, id, &coordinator, &s, err, sizeof(err));
    if (rc == KERR_TRANSACTIONAL_ID_NOT_FOUND)
        snprintf(err, sizeof(err), "DescribeTransactions request for transactionalId `%s` failed "
                 "because the ID could not be found", id);
    else if (rc > 0)
        snprintf(err, sizeof(err), "DescribeTransactions request for transactionalId `%s` failed "
                 "due to unexpected error", id);
    if (rc != 0)
        return fail("Failed to describe transaction state of transactional-id `%s`: %s. Enable "
                    "debug logging for additional detail.", id, err);
    char cells[8][32];
    snprintf(cells[0], 32, "%d", coordinator);
    snprintf(cells[1], 32, "%lld", (long long)s->producer_id);
    snprintf(cells[2], 32, "%d", s->producer_epoch);
    snprintf(cells[3], 32, "%d", s->transaction_timeout_ms);
    if (s->transaction_start_time_ms >= 0) {
        snprintf(cells[4], 32, "%lld", (long long)s->transaction_start_time_ms);
        snprintf(cells[5], 32, "%lld", c->now_ms - (long long)s->transaction_start_time_ms);
    } else {
        snprintf(cells[4], 32, "None");
        snprintf(cells[5], 32, "None");
    }
    char *row[9] = {cells[0], (char *)id, cells[1], cells[2], kstr_dup(c, s->transaction_state),
                    cells[3], cells[4], cells[5], partitions_joined(c, s)};
    struct table t = {headers, 9, 0, 0, NULL};
    table_add(&t, &c->arena, row);
    table_print(&t);
    return 0;
}

/* ---- list */

struct listing { int32_t broker; const struct list_transactions_response *resp; };

/* ListTransactions at every broker, in the order of Kafka's HashMap by broker id. n_out set. */
static int list_all(struct txn_ctx *c, const int64_t *pids, int32_t n_pids, long long duration,
                    struct listing **out, int32_t *n_out, char *err, size_t errlen)
{
    if (c->md == NULL && load_metadata(c, NULL, err, errlen) != 0)
        return -1;
    int32_t n = c->md->n_brokers;
    struct listing *l = txn_alloc(&c->arena, (size_t)(n ? n : 1) * sizeof(*l));
    for (int32_t i = 0; i < n; i++)
        l[i] = (struct listing){c->md->brokers[i].node_id, NULL};
    for (int32_t i = 1; i < n; i++) /* by bucket, then id: small ids ascend */
        for (int32_t j = i; j > 0; j--) {
            uint32_t a = java_bucket(l[j - 1].broker, (size_t)n), b = java_bucket(l[j].broker, (size_t)n);
            if (a < b || (a == b && l[j - 1].broker < l[j].broker))
                break;
            struct listing tmp = l[j];
            l[j] = l[j - 1];
            l[j - 1] = tmp;
        }
    for (int32_t i = 0; i < n; i++) {
        struct list_transactions_request req;
        list_transactions_request_set_defaults(&req);
        req.state_filters = NULL;
        req.n_state_filters = 0;
        req.producer_id_filters = (int64_t *)pids;
        req.n_producer_id_filters = n_pids;
        req.duration_filter = duration;
        void *resp;
        if (call_broker(c, l[i].broker, PROTO_API_LIST_TRANSACTIONS, LIST_TRANSACTIONS_VERSION, &req,
                        &resp, err, errlen) != 0)
            return -1;
        l[i].resp = resp;
        if (l[i].resp->error_code != 0) {
            snprintf(err, errlen, "ListTransactions request sent to broker %d failed: %s", l[i].broker,
                     error_message(l[i].resp->error_code));
            return l[i].resp->error_code;
        }
    }
    *out = l;
    *n_out = n;
    return 0;
}

/* The highest ListTransactions version the bootstrap broker serves (-1 when unknown). */
static int list_transactions_max_version(struct txn_ctx *c, char *err, size_t errlen)
{
    struct api_versions_request req;
    api_versions_request_set_defaults(&req);
    void *out;
    if (call_addr(c, c->bootstrap, PROTO_API_API_VERSIONS, 0, &req, &out, err, errlen) != 0)
        return -1;
    const struct api_versions_response *resp = out;
    for (int32_t i = 0; i < resp->n_api_keys; i++)
        if (resp->api_keys[i].api_key == PROTO_API_LIST_TRANSACTIONS)
            return resp->api_keys[i].max_version;
    return -1;
}

static int run_list(struct txn_ctx *c, struct txn_command *cmd)
{
    static const char *const headers[] = {"TransactionalId", "Coordinator", "ProducerId", "TransactionState"};
    const char *duration_arg = arg_value(cmd, "--duration-filter");
    const char *pattern = arg_value(cmd, "--transactional-id-pattern");
    regex_t re;
    if (pattern) {
        /* Kafka sends the pattern in ListTransactions v2 and refuses it for an older broker,
         * as this tool does; our codecs stop at v1, so against a broker serving v2 the filter
         * (the whole id must match) runs on this side. */
        size_t len = strlen(pattern) + 8;
        char *anchored = txn_alloc(&c->arena, len);
        snprintf(anchored, len, "^(%s)$", pattern);
        if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) != 0)
            return fail("Failed to list transactions: Invalid transactional id pattern %s. Enable debug "
                        "logging for additional detail.", pattern);
    }
    struct listing *l = NULL;
    int32_t n = 0;
    char err[600];
    int rc = 0;
    if (pattern && list_transactions_max_version(c, err, sizeof(err)) < 2) {
        snprintf(err, sizeof(err), "Transactional ID pattern filter can be set only when using API "
                 "version 2 or higher. If client is connected to an older broker, do not specify "
                 "the pattern filter.");
        rc = -1;
    }
    if (rc == 0)
        rc = list_all(c, NULL, 0, duration_arg ? arg_number(cmd, "--duration-filter") : -1, &l, &n,
                      err, sizeof(err));
    if (rc != 0) {
        if (pattern)
            regfree(&re);
        return fail("Failed to list transactions: %s. Enable debug logging for additional detail.", err);
    }
    struct table t = {headers, 4, 0, 0, NULL};
    for (int32_t i = 0; i < n; i++)
        for (int32_t k = 0; k < l[i].resp->n_transaction_states; k++) {
            const struct list_transactions_response_transaction_state *s = &l[i].resp->transaction_states[k];
            char *id = kstr_dup(c, s->transactional_id);
            if (pattern && regexec(&re, id, 0, NULL, 0) != 0)
                continue;
            char broker[16], pid[32];
            snprintf(broker, sizeof(broker), "%d", l[i].broker);
            snprintf(pid, sizeof(pid), "%lld", (long long)s->producer_id);
            char *row[4] = {id, broker, pid, kstr_dup(c, s->transaction_state)};
            table_add(&t, &c->arena, row);
        }
    if (pattern)
        regfree(&re);
    table_print(&t);
    return 0;
}

/* ---- abort */

static int run_abort(struct txn_ctx *c, struct txn_command *cmd)
{
    struct tp tp = {arg_value(cmd, "--topic"), (int32_t)arg_number(cmd, "--partition"), -1, NULL};
    const char *start_arg = arg_value(cmd, "--start-offset");
    const char *pid_arg = arg_value(cmd, "--producer-id");
    if (start_arg == NULL && pid_arg == NULL)
        return fail("The transaction to abort must be identified either with --start-offset (for "
                    "brokers on 3.0 or above) or with --producer-id, --producer-epoch, and "
                    "--coordinator-epoch (for older brokers)");
    long long pid, epoch, coordinator_epoch;
    char err[600];
    if (start_arg == NULL) {
        if (arg_value(cmd, "--producer-epoch") == NULL)
            return fail("Missing required argument --producer-epoch");
        if (arg_value(cmd, "--coordinator-epoch") == NULL)
            return fail("Missing required argument --coordinator-epoch");
        pid = arg_number(cmd, "--producer-id");
        epoch = arg_number(cmd, "--producer-epoch");
        coordinator_epoch = arg_number(cmd, "--coordinator-epoch");
        /* -1 (a producer that never saw a marker): 0 is at most any coordinator epoch */
        if (coordinator_epoch < 0)
            coordinator_epoch = 0;
        if (locate(c, &tp, NULL, -1, err, sizeof(err)) != 0)
            return fail("Failed to abort transaction on partition %s-%d: %s. Enable debug logging "
                        "for additional detail.", tp.topic, tp.partition, err);
    } else {
        long long start = arg_number(cmd, "--start-offset");
        int rc = locate(c, &tp, NULL, -1, err, sizeof(err));
        if (rc == 0)
            rc = describe_producers(c, &tp, 1, err, sizeof(err));
        if (rc > 0)
            snprintf(err, sizeof(err), "%s", error_message((int16_t)rc));
        if (rc != 0)
            return fail("Failed to validate producer state for partition %s-%d: %s. Enable debug "
                        "logging for additional detail.", tp.topic, tp.partition, err);
        const struct describe_producers_response_producer_state *found = NULL;
        for (int32_t i = 0; i < tp.result->n_active_producers && !found; i++)
            if (tp.result->active_producers[i].current_txn_start_offset >= 0 &&
                tp.result->active_producers[i].current_txn_start_offset == start)
                found = &tp.result->active_producers[i];
        if (found == NULL)
            return fail("Could not find any open transactions starting at offset %lld on partition "
                        "%s-%d", start, tp.topic, tp.partition);
        pid = found->producer_id;
        epoch = (int16_t)found->producer_epoch;
        coordinator_epoch = found->coordinator_epoch < 0 ? 0 : found->coordinator_epoch;
    }
    char spec[400];
    snprintf(spec, sizeof(spec), "AbortTransactionSpec(topicPartition=%s-%d, producerId=%lld, "
             "producerEpoch=%lld, coordinatorEpoch=%lld)", tp.topic, tp.partition, pid, epoch,
             coordinator_epoch);
    struct write_txn_markers_request req;
    write_txn_markers_request_set_defaults(&req);
    struct write_txn_markers_request_writable_txn_marker m;
    write_txn_markers_request_writable_txn_marker_set_defaults(&m);
    struct write_txn_markers_request_writable_txn_marker_topic mt;
    write_txn_markers_request_writable_txn_marker_topic_set_defaults(&mt);
    mt.name = (struct kstr){(char *)tp.topic, (int32_t)strlen(tp.topic)};
    mt.partition_indexes = &tp.partition;
    mt.n_partition_indexes = 1;
    m.producer_id = pid;
    m.producer_epoch = (int16_t)epoch;
    m.transaction_result = false; /* ABORT */
    m.topics = &mt;
    m.n_topics = 1;
    m.coordinator_epoch = (int32_t)coordinator_epoch;
    req.markers = &m;
    req.n_markers = 1;
    void *out;
    if (call_broker(c, tp.broker, PROTO_API_WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION, &req, &out,
                    err, sizeof(err)) != 0)
        return fail("Failed to abort transaction %s: %s. Enable debug logging for additional detail.",
                    spec, err);
    struct write_txn_markers_response *resp = out;
    if (resp->n_markers != 1 || resp->markers[0].n_topics != 1 ||
        resp->markers[0].topics[0].n_partitions != 1)
        return fail("Failed to abort transaction %s: WriteTxnMarkers response for %s did not hold "
                    "exactly the one partition asked. Enable debug logging for additional detail.",
                    spec, spec);
    int16_t code = resp->markers[0].topics[0].partitions[0].error_code;
    if (code == KERR_NONE)
        return 0;
    if (code == KERR_INVALID_PRODUCER_EPOCH)
        snprintf(err, sizeof(err), "WriteTxnMarkers request with %s failed due an invalid producer epoch", spec);
    else if (code == KERR_TRANSACTION_COORDINATOR_FENCED)
        snprintf(err, sizeof(err), "WriteTxnMarkers request with %s failed since the provided coordinator "
                 "epoch %lld has been fenced by the active coordinator", spec, coordinator_epoch);
    else
        snprintf(err, sizeof(err), "WriteTxnMarkers request with %s failed due to unexpected error: %s",
                 spec, error_message(code));
    return fail("Failed to abort transaction %s: %s. Enable debug logging for additional detail.", spec, err);
}

/* ---- find-hanging */

struct open_txn {
    const struct tp *tp;
    const struct describe_producers_response_producer_state *state;
    const char *transactional_id; /* NULL when no coordinator lists the producer */
    int hanging;
};

/* Partitions to search: the one given, the topic's, or every topic's; with --broker-id only
 * those with a replica on it. Each gets the broker to ask. */
static int collect_partitions(struct txn_ctx *c, const char *topic, const char *partition_arg,
                              long long partition, const char *broker_arg, long long broker_id,
                              struct tp **out, int *n_out, char *err, size_t errlen)
{
    if (load_metadata(c, topic, err, errlen) != 0)
        return -1;
    size_t cap = 1;
    for (int32_t i = 0; i < c->md->n_topics; i++)
        cap += (size_t)c->md->topics[i].n_partitions;
    struct tp *tps = txn_alloc(&c->arena, cap * sizeof(*tps));
    int n = 0;
    for (int32_t i = 0; i < c->md->n_topics; i++) {
        const struct metadata_response_metadata_response_topic *t = &c->md->topics[i];
        if (t->error_code != 0) {
            snprintf(err, errlen, "%s", error_message(t->error_code));
            return t->error_code;
        }
        for (int32_t k = 0; k < t->n_partitions; k++) {
            const struct metadata_response_metadata_response_partition *p = &t->partitions[k];
            if (partition_arg && p->partition_index != partition)
                continue;
            int replica = !broker_arg;
            for (int32_t r = 0; r < p->n_replica_nodes && !replica; r++)
                replica = p->replica_nodes[r] == broker_id;
            if (!replica)
                continue;
            GREGOR_ASSERT((size_t)n < cap);
            tps[n++] = (struct tp){kstr_dup(c, t->name), p->partition_index,
                                   broker_arg ? (int32_t)broker_id : p->leader_id, NULL};
        }
    }
    *out = tps;
    *n_out = n;
    return 0;
}

/* DescribeProducers for every partition, grouped by the broker asked, in batches. */
static int describe_all(struct txn_ctx *c, struct tp *tps, int n, char *err, size_t errlen)
{
    int *asked = txn_alloc(&c->arena, (size_t)(n ? n : 1) * sizeof(*asked));
    memset(asked, 0, (size_t)(n ? n : 1) * sizeof(*asked));
    struct tp *batch = txn_alloc(&c->arena, MAX_BATCH_PARTITIONS * sizeof(*batch));
    for (int i = 0; i < n; i++) {
        if (asked[i])
            continue;
        /* gather up to a batch of the partitions that go to tps[i].broker */
        int idx[MAX_BATCH_PARTITIONS], m = 0;
        for (int k = i; k < n && m < MAX_BATCH_PARTITIONS; k++)
            if (!asked[k] && tps[k].broker == tps[i].broker) {
                idx[m] = k;
                batch[m++] = tps[k];
                asked[k] = 1;
            }
        if (tps[i].broker < 0) {
            snprintf(err, errlen, "%s", error_message(KERR_LEADER_NOT_AVAILABLE));
            return KERR_LEADER_NOT_AVAILABLE;
        }
        int rc = describe_producers(c, batch, m, err, errlen);
        if (rc > 0)
            snprintf(err, errlen, "%s", error_message((int16_t)rc));
        if (rc != 0)
            return rc;
        for (int k = 0; k < m; k++)
            tps[idx[k]].result = batch[k].result;
    }
    return 0;
}

/* The open transactions whose last write is older than max_timeout_ms (Kafka's candidates);
 * *pids gets each producer id once. */
static size_t find_candidates(struct txn_ctx *c, const struct tp *tps, int n, long long max_timeout_ms,
                              struct open_txn **out, int64_t **pids, int32_t *n_pids)
{
    size_t n_open = 0;
    for (int i = 0; i < n; i++)
        n_open += (size_t)tps[i].result->n_active_producers;
    struct open_txn *open = txn_alloc(&c->arena, (n_open ? n_open : 1) * sizeof(*open));
    *pids = txn_alloc(&c->arena, (n_open ? n_open : 1) * sizeof(**pids));
    *n_pids = 0;
    size_t m = 0;
    for (int i = 0; i < n; i++)
        for (int32_t k = 0; k < tps[i].result->n_active_producers; k++) {
            const struct describe_producers_response_producer_state *s = &tps[i].result->active_producers[k];
            if (s->current_txn_start_offset < 0 || c->now_ms - s->last_timestamp <= max_timeout_ms)
                continue;
            GREGOR_ASSERT(m < n_open);
            open[m++] = (struct open_txn){&tps[i], s, NULL, 1};
            int seen = 0;
            for (int32_t p = 0; p < *n_pids && !seen; p++)
                seen = (*pids)[p] == s->producer_id;
            if (!seen)
                (*pids)[(*n_pids)++] = s->producer_id;
        }
    *out = open;
    return m;
}

/* Clears `hanging` of the candidates a coordinator still knows about: a producer listed under a
 * transactional id whose current transaction holds the partition. 0 or the exit code. */
static int mark_live(struct txn_ctx *c, struct open_txn *open, size_t m, const int64_t *pids,
                     int32_t n_pids)
{
    struct listing *l = NULL;
    int32_t nl = 0;
    char err[600];
    if (list_all(c, pids, n_pids, -1, &l, &nl, err, sizeof(err)) != 0)
        return fail("Failed to list transactions for %d producers: %s. Enable debug logging for "
                    "additional detail.", n_pids, err);
    for (size_t i = 0; i < m; i++)
        for (int32_t b = 0; b < nl; b++)
            for (int32_t k = 0; k < l[b].resp->n_transaction_states; k++)
                if (l[b].resp->transaction_states[k].producer_id == open[i].state->producer_id)
                    open[i].transactional_id = kstr_dup(c, l[b].resp->transaction_states[k].transactional_id);
    for (size_t i = 0; i < m; i++) {
        if (open[i].transactional_id == NULL)
            continue; /* no coordinator knows the producer: hanging */
        int32_t coordinator;
        const struct describe_transactions_response_transaction_state *s = NULL;
        int rc = describe_transaction(c, open[i].transactional_id, &coordinator, &s, err, sizeof(err));
        if (rc == KERR_TRANSACTIONAL_ID_NOT_FOUND)
            continue;
        if (rc > 0)
            snprintf(err, sizeof(err), "DescribeTransactions request for transactionalId `%s` "
                     "failed due to unexpected error", open[i].transactional_id);
        if (rc != 0)
            return fail("Failed to describe %d transactions: %s. Enable debug logging for "
                        "additional detail.", 1, err);
        const char *topic = open[i].tp->topic;
        for (int32_t t = 0; t < s->n_topics; t++)
            if ((size_t)s->topics[t].topic.len == strlen(topic) &&
                memcmp(s->topics[t].topic.ptr, topic, (size_t)s->topics[t].topic.len) == 0)
                for (int32_t p = 0; p < s->topics[t].n_partitions; p++)
                    if (s->topics[t].partitions[p] == open[i].tp->partition)
                        open[i].hanging = 0;
    }
    return 0;
}

static void print_hanging(struct txn_ctx *c, struct open_txn *open, size_t m, int32_t n_pids)
{
    static const char *const headers[] = {"Topic", "Partition", "ProducerId", "ProducerEpoch",
                                          "CoordinatorEpoch", "StartOffset", "LastTimestamp", "Duration(min)"};
    /* Kafka groups them in a HashMap by producer id: print in its bucket order */
    for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0 && java_bucket(java_long_hash(open[j - 1].state->producer_id), (size_t)n_pids) >
                                    java_bucket(java_long_hash(open[j].state->producer_id), (size_t)n_pids); j--) {
            struct open_txn tmp = open[j];
            open[j] = open[j - 1];
            open[j - 1] = tmp;
        }
    struct table t = {headers, 8, 0, 0, NULL};
    for (size_t i = 0; i < m; i++) {
        if (!open[i].hanging)
            continue;
        const struct describe_producers_response_producer_state *s = open[i].state;
        char cells[8][32];
        snprintf(cells[0], 32, "%d", open[i].tp->partition);
        snprintf(cells[1], 32, "%lld", (long long)s->producer_id);
        snprintf(cells[2], 32, "%d", s->producer_epoch);
        snprintf(cells[3], 32, "%d", s->coordinator_epoch < 0 ? -1 : s->coordinator_epoch);
        snprintf(cells[4], 32, "%lld", (long long)s->current_txn_start_offset);
        snprintf(cells[5], 32, "%lld", (long long)s->last_timestamp);
        snprintf(cells[6], 32, "%lld", (c->now_ms - (long long)s->last_timestamp) / 60000);
        char *row[8] = {(char *)open[i].tp->topic, cells[0], cells[1], cells[2], cells[3], cells[4],
                        cells[5], cells[6]};
        table_add(&t, &c->arena, row);
    }
    table_print(&t);
}

static int run_find_hanging(struct txn_ctx *c, struct txn_command *cmd)
{
    const char *broker_arg = arg_value(cmd, "--broker-id");
    const char *topic = arg_value(cmd, "--topic");
    const char *partition_arg = arg_value(cmd, "--partition");
    if (topic == NULL && broker_arg == NULL)
        return fail("The `find-hanging` command requires either --topic or --broker-id to limit "
                    "the scope of the search");
    if (partition_arg && topic == NULL)
        return fail("The --partition argument requires --topic to be provided");
    long long broker_id = broker_arg ? arg_number(cmd, "--broker-id") : -1;
    long long max_timeout_ms = 15LL * 60000;
    if (arg_value(cmd, "--max-transaction-timeout"))
        max_timeout_ms = arg_number(cmd, "--max-transaction-timeout") * 60000LL;
    char broker_text[32], err[600];
    if (broker_arg) /* Kafka prints the Optional<Integer> */
        snprintf(broker_text, sizeof(broker_text), "Optional[%lld]", broker_id);
    else
        snprintf(broker_text, sizeof(broker_text), "Optional.empty");

    struct tp *tps = NULL;
    int n = 0;
    int rc = collect_partitions(c, topic, partition_arg, partition_arg ? arg_number(cmd, "--partition") : 0,
                                broker_arg, broker_id, &tps, &n, err, sizeof(err));
    if (rc != 0)
        return fail("Failed to describe %d topics: %s. Enable debug logging for additional detail.",
                    topic ? 1 : (c->md ? c->md->n_topics : 0), err);
    if (describe_all(c, tps, n, err, sizeof(err)) != 0)
        return fail("Failed to describe producers for %d partitions on broker %s: %s. Enable debug "
                    "logging for additional detail.", n, broker_text, err);
    struct open_txn *open;
    int64_t *pids;
    int32_t n_pids;
    size_t m = find_candidates(c, tps, n, max_timeout_ms, &open, &pids, &n_pids);
    if (m > 0 && (rc = mark_live(c, open, m, pids, n_pids)) != 0)
        return rc;
    print_hanging(c, open, m, n_pids);
    return 0;
}

/* ---- forceTerminateTransaction: Kafka's admin fenceProducers of one transactional id */

/* FindCoordinator then InitProducerId with the id and no producer (-1/-1): the coordinator bumps
 * the epoch, which fences the producer and aborts its ongoing transaction. */
static int fence_once(struct txn_ctx *c, const char *id, char *err, size_t errlen)
{
    char addr[300];
    int32_t node;
    int rc = find_txn_coordinator(c, id, addr, sizeof(addr), &node, err, errlen);
    if (rc != 0)
        return rc;
    void *out;
    struct init_producer_id_request req;
    init_producer_id_request_set_defaults(&req);
    req.transactional_id = (struct kstr){(char *)id, (int32_t)strlen(id)};
    req.transaction_timeout_ms = FENCE_TRANSACTION_TIMEOUT_MS;
    req.producer_id = -1;
    req.producer_epoch = -1;
    if (call_addr(c, addr, PROTO_API_INIT_PRODUCER_ID, INIT_PRODUCER_ID_VERSION, &req, &out, err, errlen) != 0)
        return -1;
    return ((struct init_producer_id_response *)out)->error_code;
}

static int run_force_terminate(struct txn_ctx *c, struct txn_command *cmd)
{
    const char *id = arg_value(cmd, "--transactionalId");
    char err[600];
    long long deadline = cli_now_ms() + CLI_ADMIN_TIMEOUT_MS;
    int rc;
    /* as Kafka's handler: loading and concurrent transactions are retried, a moved
     * coordinator is looked up again */
    while ((rc = fence_once(c, id, err, sizeof(err))) == KERR_COORDINATOR_LOAD_IN_PROGRESS ||
           rc == KERR_CONCURRENT_TRANSACTIONS || coordinator_retriable(rc)) {
        if (cli_now_ms() >= deadline) {
            snprintf(err, sizeof(err), "Timed out waiting for a node assignment. Call: fenceProducer");
            rc = -1;
            break;
        }
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (rc == 0)
        return 0;
    if (rc == 31)
        snprintf(err, sizeof(err), "InitProducerId request for transactionalId `%s` failed due to "
                 "cluster authorization failure", id);
    else if (rc == KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        snprintf(err, sizeof(err), "InitProducerId request for transactionalId `%s` failed due to "
                 "transactional ID authorization failure", id);
    else if (rc > 0)
        snprintf(err, sizeof(err), "InitProducerId request for transactionalId `%s` failed due to "
                 "unexpected error", id);
    return fail("Failed to force terminate transactionalId `%s`: %s. Enable debug logging for "
                "additional detail.", id, err);
}

/* ---- the command */

static long long wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_transactions(int argc, char **argv)
{
    int i = (argc > 0 && argv[0][0] != '-') ? 1 : 0; /* argv[0]: the subcommand name */
    const char *bootstrap = NULL;
    struct txn_command *cmd = NULL;
    for (; i < argc && cmd == NULL; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help();
            return 1; /* as Kafka's */
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("gregor (kafka-transactions.sh work-alike)\n");
            return 0;
        }
        if (strcmp(a, "--bootstrap-server") == 0 || strcmp(a, "--command-config") == 0) {
            if (i + 1 >= argc)
                return parse_error(NULL, "argument %s: expected one argument%s", a, "");
            if (a[2] == 'b')
                bootstrap = argv[i + 1];
            i++;
            continue;
        }
        if (strncmp(a, "--bootstrap-server=", 19) == 0) {
            bootstrap = a + 19;
            continue;
        }
        if (strncmp(a, "--command-config=", 17) == 0)
            continue;
        if (a[0] == '-')
            return parse_error(NULL, "unrecognized arguments: '%s'%s", a, "");
        for (int k = 0; k < N_COMMANDS; k++)
            if (strcmp(commands[k].name, a) == 0)
                cmd = &commands[k];
        if (cmd == NULL)
            return parse_error(NULL, "invalid choice: '%s' (choose from 'list', 'describe', "
                               "'describe-producers', 'abort', 'find-hanging', 'forceTerminateTransaction')%s", a, "");
    }
    if (cmd == NULL)
        return parse_error(NULL, bootstrap ? "too few arguments%s%s" : "argument --bootstrap-server "
                           "is required%s%s", "", "");
    int rc = parse_sub(cmd, argc, argv, i);
    if (rc != 0)
        return rc;
    if (bootstrap == NULL)
        return parse_error(NULL, "argument --bootstrap-server is required%s%s", "", "");

    struct txn_ctx c = {.bootstrap = bootstrap, .md = NULL, .now_ms = wall_now_ms()};
    arena_init(&c.arena, CLI_WIRE_ARENA_LIMIT);
    if (strcmp(cmd->name, "list") == 0)
        rc = run_list(&c, cmd);
    else if (strcmp(cmd->name, "describe") == 0)
        rc = run_describe(&c, cmd);
    else if (strcmp(cmd->name, "describe-producers") == 0)
        rc = run_describe_producers(&c, cmd);
    else if (strcmp(cmd->name, "abort") == 0)
        rc = run_abort(&c, cmd);
    else if (strcmp(cmd->name, "find-hanging") == 0)
        rc = run_find_hanging(&c, cmd);
    else
        rc = run_force_terminate(&c, cmd);
    arena_reset(&c.arena);
    fflush(stdout);
    return rc;
}
