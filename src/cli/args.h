/* args: what every gregor client subcommand shares — Kafka-style option parsing and help,
 * bootstrap resolution (--bootstrap-server/--broker-list/--zookeeper), librdkafka setup. */
#ifndef GREGOR_CLI_ARGS_H
#define GREGOR_CLI_ARGS_H

#include <stdarg.h>
#include <stdio.h>
#include <librdkafka/rdkafka.h>

/* How long an admin request may take before we give up (Kafka's tools wait 30-60 s). */
#define CLI_ADMIN_TIMEOUT_MS 30000

enum cli_opt_kind {
    CLI_OPT_FLAG,  /* --from-beginning */
    CLI_OPT_VALUE, /* --topic T; the last one given wins */
    CLI_OPT_LIST,  /* --config k=v, repeatable; all kept in order */
};

struct cli_opt {
    const char *name;     /* without the leading "--" */
    enum cli_opt_kind kind;
    const char *arg_help; /* e.g. "<String: topic>", shown in --help; NULL for flags */
    const char *help;
    /* Filled by cli_args_parse. Strings borrow argv. */
    int count;            /* times given */
    const char *value;    /* last value given */
    const char **values;  /* CLI_OPT_LIST: every value, owned by the command (cli_args_free) */
};

struct cli_cmd {
    const char *prog;     /* "kafka-topics.sh", used in messages */
    const char *summary;  /* first line of --help */
    struct cli_opt *opts; /* terminated by an entry with name == NULL */
};

/* Parse argv against cmd->opts. argv[0] may be the subcommand name (skipped when it does not
 * start with '-'). Returns 0 when parsed, CLI_ARGS_HELP when --help was printed (exit 0), or
 * CLI_ARGS_ERROR after printing the error and usage on stderr (exit 1). */
#define CLI_ARGS_HELP 1
#define CLI_ARGS_ERROR 2
int cli_args_parse(struct cli_cmd *cmd, int argc, char **argv);
void cli_args_free(struct cli_cmd *cmd);
/* Exit code for a cli_args_parse result other than 0. */
int cli_args_exit_code(int parse_result);

struct cli_opt *cli_opt_get(struct cli_cmd *cmd, const char *name);
int cli_has(struct cli_cmd *cmd, const char *name);
const char *cli_value(struct cli_cmd *cmd, const char *name); /* NULL when absent */

void cli_usage(const struct cli_cmd *cmd, FILE *out);
/* Print "MESSAGE" and the usage on stderr, like Kafka's CommandLineUtils.printUsageAndExit;
 * returns 1 (the exit code). */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Strict integer parse of the whole string within [min, max]; 0 on success, -1 otherwise. */
int cli_parse_long(const char *text, long long min, long long max, long long *out);

/* The broker list from --bootstrap-server or --broker-list, else from --zookeeper as Kafka
 * 3.x's tools used it: the live brokers registered in that ZooKeeper (cli_zk_bootstrap).
 * $GREGOR_BOOTSTRAP, when set, overrides --zookeeper's lookup (with a notice on stderr).
 * Prints why and returns NULL when there is none (a usage error when no option was given). */
const char *cli_bootstrap(struct cli_cmd *cmd);

/* A librdkafka config for bootstrap with gregor's CLI defaults. */
rd_kafka_conf_t *cli_conf_new(const char *bootstrap);
/* Apply "key=value" (Java client property names; Java-only ones are skipped with a notice).
 * Returns 0, or -1 after printing why. */
int cli_conf_set_kv(rd_kafka_conf_t *conf, const char *key_value);
int cli_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value);
/* Apply every "key=value" line of a Java .properties file (# and ! comments). */
int cli_conf_load_file(rd_kafka_conf_t *conf, const char *path);
/* Apply the file named by option file_opt (if given) then each k=v of list option kv_opt. */
int cli_conf_apply_options(rd_kafka_conf_t *conf, struct cli_cmd *cmd,
                           const char *file_opt, const char *kv_opt);

/* An admin (producer-type) client; consumes conf. Prints why and returns NULL on failure. */
rd_kafka_t *cli_admin_new(rd_kafka_conf_t *conf);
/* The admin tools' client: the command's bootstrap servers (cli_bootstrap), its --command-config
 * properties, cli_admin_new. NULL after saying why. */
rd_kafka_t *cli_admin_connect(struct cli_cmd *cmd);
/* Wait on q for the result of one admin request; NULL (with a message) on timeout. The event
 * is the caller's to destroy. On a request-level error prints "PREFIX: error" and returns NULL
 * after destroying the event. */
rd_kafka_event_t *cli_admin_wait(rd_kafka_queue_t *q, const char *prefix);
/* Admin options with our request timeout for the given API; the caller destroys them. */
rd_kafka_AdminOptions_t *cli_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op);

/* Metadata for one topic (or all when topic is NULL); NULL with a message on failure. */
const rd_kafka_metadata_t *cli_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* Milliseconds on a monotonic clock. */
long long cli_now_ms(void);

/* Set by SIGINT/SIGTERM once cli_install_stop_signals ran; long loops poll it. */
extern volatile int cli_stop_requested;
void cli_install_stop_signals(void);

#endif
