/* args: Kafka-style option parsing and help for the client subcommands, plus the librdkafka
 * setup (bootstrap, properties, admin request plumbing) they all share. */
#include "cli/args.h"
#include "cli/zk_bootstrap.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile int cli_stop_requested;

static struct cli_opt *find_opt(struct cli_cmd *cmd, const char *name, size_t name_len)
{
    for (struct cli_opt *o = cmd->opts; o->name; o++)
        if (strlen(o->name) == name_len && strncmp(o->name, name, name_len) == 0)
            return o;
    return NULL;
}

struct cli_opt *cli_opt_get(struct cli_cmd *cmd, const char *name)
{
    return find_opt(cmd, name, strlen(name));
}

int cli_has(struct cli_cmd *cmd, const char *name)
{
    struct cli_opt *o = cli_opt_get(cmd, name);
    return o && o->count > 0;
}

const char *cli_value(struct cli_cmd *cmd, const char *name)
{
    struct cli_opt *o = cli_opt_get(cmd, name);
    return o && o->count > 0 ? o->value : NULL;
}

/* Kafka's help is joptsimple's two-column table; we print the same shape. */
void cli_usage(const struct cli_cmd *cmd, FILE *out)
{
    fprintf(out, "%s\n", cmd->summary);
    fprintf(out, "%-40s %s\n%-40s %s\n", "Option", "Description", "------", "-----------");
    for (const struct cli_opt *o = cmd->opts; o->name; o++) {
        char left[128];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg_help ? " " : "",
                 o->arg_help ? o->arg_help : "");
        if (strlen(left) > 40)
            fprintf(out, "%s\n%-40s %s\n", left, "", o->help);
        else
            fprintf(out, "%-40s %s\n", left, o->help);
    }
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_usage(cmd, stderr);
    return 1;
}

static int record_value(struct cli_opt *o, const char *value)
{
    o->value = value;
    if (o->kind != CLI_OPT_LIST)
        return 0;
    const char **grown = realloc(o->values, (size_t)(o->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    o->values = grown;
    o->values[o->count] = value;
    return 0;
}

int cli_args_parse(struct cli_cmd *cmd, int argc, char **argv)
{
    int i = 0;
    if (argc > 0 && argv[0][0] != '-')
        i = 1; /* the subcommand name */
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_usage(cmd, stdout);
            return CLI_ARGS_HELP;
        }
        if (strncmp(arg, "--", 2) != 0) {
            cli_usage_error(cmd, "Found non-option argument '%s'; every argument must follow an "
                            "option such as --topic", arg);
            return CLI_ARGS_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        struct cli_opt *o = find_opt(cmd, name, name_len);
        if (!o) {
            cli_usage_error(cmd, "%.*s is not a recognized option", (int)name_len, name);
            return CLI_ARGS_ERROR;
        }
        const char *value = NULL;
        if (o->kind != CLI_OPT_FLAG) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                cli_usage_error(cmd, "Option %s requires an argument", o->name);
                return CLI_ARGS_ERROR;
            }
        } else if (eq) {
            cli_usage_error(cmd, "Option %s does not take an argument", o->name);
            return CLI_ARGS_ERROR;
        }
        if (record_value(o, value) != 0) {
            fprintf(stderr, "%s: out of memory\n", cmd->prog);
            return CLI_ARGS_ERROR;
        }
        o->count++;
    }
    return 0;
}

void cli_args_free(struct cli_cmd *cmd)
{
    for (struct cli_opt *o = cmd->opts; o->name; o++) {
        free(o->values);
        o->values = NULL;
    }
}

int cli_args_exit_code(int parse_result)
{
    return parse_result == CLI_ARGS_HELP ? 0 : 1;
}

int cli_parse_long(const char *text, long long min, long long max, long long *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The brokers --zookeeper resolved to, "" until then: one command runs per process, and its
 * tools ask cli_bootstrap more than once (the admin client, then topic ids), so ZooKeeper is
 * asked once. */
static char zk_servers[CLI_ZK_SERVERS_MAX];

const char *cli_bootstrap(struct cli_cmd *cmd)
{
    const char *servers = cli_value(cmd, "bootstrap-server");
    if (!servers)
        servers = cli_value(cmd, "broker-list");
    if (servers)
        return servers;
    const char *zookeeper = cli_value(cmd, "zookeeper");
    if (zookeeper) {
        if (zk_servers[0])
            return zk_servers; /* resolved once per command */
        /* An explicit override, kept for scripts that point old --zookeeper commands at one
         * broker: said on stderr so nobody mistakes it for ZooKeeper's answer. */
        const char *env = getenv("GREGOR_BOOTSTRAP");
        if (env && *env) {
            snprintf(zk_servers, sizeof(zk_servers), "%s", env);
            fprintf(stderr, "Note: GREGOR_BOOTSTRAP is set; --zookeeper %s is treated as "
                    "--bootstrap-server %s\n", zookeeper, zk_servers);
            return zk_servers;
        }
        if (cli_zk_bootstrap(zookeeper, zk_servers, sizeof(zk_servers)) != 0) {
            zk_servers[0] = '\0';
            return NULL;
        }
        return zk_servers;
    }
    cli_usage_error(cmd, "Missing required argument \"[bootstrap-server]\"");
    return NULL;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    fprintf(stderr, "[librdkafka %s] %s\n", fac, buf);
}

rd_kafka_conf_t *cli_conf_new(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (cli_conf_set(conf, "bootstrap.servers", bootstrap) != 0 ||
        cli_conf_set(conf, "client.id", "gregor-cli") != 0 ||
        /* Only errors reach the user; a refused connection is reported once per broker. */
        cli_conf_set(conf, "log_level", "3") != 0 ||
        cli_conf_set(conf, "log.connection.close", "false") != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

/* Java client properties that have no librdkafka meaning: serializers are fixed (bytes), and
 * the memory/blocking knobs belong to the JVM producer. */
static const char *const java_only_properties[] = {
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    "buffer.memory", "max.block.ms", "max.in.flight.requests.per.connection.java",
    "metadata.max.idle.ms", "exclude.internal.topics", "default.api.timeout.ms",
    "key.deserializer.encoding", "value.deserializer.encoding", NULL,
};

int cli_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    for (const char *const *p = java_only_properties; *p; p++)
        if (strcmp(*p, key) == 0) {
            fprintf(stderr, "Note: ignoring Java-client property %s=%s\n", key, value);
            return 0;
        }
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "Invalid client property %s=%s: %s\n", key, value, errstr);
        return -1;
    }
    return 0;
}

int cli_conf_set_kv(rd_kafka_conf_t *conf, const char *key_value)
{
    const char *eq = strchr(key_value, '=');
    if (!eq || eq == key_value) {
        fprintf(stderr, "Invalid property '%s': expected key=value\n", key_value);
        return -1;
    }
    char key[256];
    size_t key_len = (size_t)(eq - key_value);
    if (key_len >= sizeof key) {
        fprintf(stderr, "Invalid property '%s': key too long\n", key_value);
        return -1;
    }
    memcpy(key, key_value, key_len);
    key[key_len] = '\0';
    return cli_conf_set(conf, key, eq + 1);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int cli_conf_load_file(rd_kafka_conf_t *conf, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "Cannot read properties file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *sep = strpbrk(s, "=:");
        if (!sep) {
            fprintf(stderr, "%s:%d: expected key=value\n", path, lineno);
            rc = -1;
            break;
        }
        *sep = '\0';
        rc = cli_conf_set(conf, trim(s), trim(sep + 1));
    }
    fclose(f);
    return rc;
}

int cli_conf_apply_options(rd_kafka_conf_t *conf, struct cli_cmd *cmd,
                           const char *file_opt, const char *kv_opt)
{
    if (file_opt && cli_value(cmd, file_opt) &&
        cli_conf_load_file(conf, cli_value(cmd, file_opt)) != 0)
        return -1;
    struct cli_opt *o = kv_opt ? cli_opt_get(cmd, kv_opt) : NULL;
    for (int i = 0; o && i < o->count; i++)
        if (cli_conf_set_kv(conf, o->values[i]) != 0)
            return -1;
    return 0;
}

rd_kafka_t *cli_admin_new(rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "Cannot create Kafka client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

rd_kafka_t *cli_admin_connect(struct cli_cmd *cmd)
{
    const char *bootstrap = cli_bootstrap(cmd);
    if (!bootstrap)
        return NULL;
    rd_kafka_conf_t *conf = cli_conf_new(bootstrap);
    if (!conf || cli_conf_apply_options(conf, cmd, "command-config", NULL) != 0) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return cli_admin_new(conf);
}

rd_kafka_AdminOptions_t *cli_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, op);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(options, CLI_ADMIN_TIMEOUT_MS, errstr, sizeof errstr);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
        rd_kafka_AdminOptions_set_operation_timeout(options, CLI_ADMIN_TIMEOUT_MS, errstr,
                                                    sizeof errstr);
    return options;
}

rd_kafka_event_t *cli_admin_wait(rd_kafka_queue_t *q, const char *prefix)
{
    /* The request timeout fires inside librdkafka; the extra margin only guards a lost event. */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, CLI_ADMIN_TIMEOUT_MS + 5000);
    if (!ev) {
        fprintf(stdout, "%s: Timed out waiting for a response from the broker.\n", prefix);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stdout, "%s: %s\n", prefix, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

const rd_kafka_metadata_t *cli_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = topic ? rd_kafka_topic_new(rk, topic, NULL) : NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, rkt == NULL, rkt, &md, timeout_ms);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (err) {
        fprintf(stderr, "Failed to fetch metadata: %s\n", rd_kafka_err2str(err));
        return NULL;
    }
    return md;
}

long long cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_install_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
