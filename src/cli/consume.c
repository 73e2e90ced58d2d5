/* consume: `gregor consume`, the kafka-console-consumer.sh work-alike — subscribe (or assign one
 * partition), print records with Kafka's DefaultMessageFormatter layout, count them at exit. */
#include "cli/cli.h"
#include "cli/args.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long one poll blocks; also bounds how late we notice a signal or --timeout-ms. */
#define CONSUME_POLL_MS 100

static struct cli_opt consume_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "REQUIRED: The server(s) to connect to.", 0, 0, 0},
    {"topic", CLI_OPT_VALUE, "<String: topic>", "The topic to consume on.", 0, 0, 0},
    {"include", CLI_OPT_VALUE, "<String: Java regex (String)>",
     "Regular expression specifying list of topics to include for consumption.", 0, 0, 0},
    {"whitelist", CLI_OPT_VALUE, "<String: Java regex (String)>", "DEPRECATED, use --include.", 0, 0, 0},
    {"group", CLI_OPT_VALUE, "<String: consumer group id>",
     "The consumer group id of the consumer.", 0, 0, 0},
    {"from-beginning", CLI_OPT_FLAG, NULL,
     "If the consumer does not already have an established offset to consume from, start with "
     "the earliest message present in the log rather than the latest message.", 0, 0, 0},
    {"partition", CLI_OPT_VALUE, "<Integer: partition>",
     "The partition to consume from. Consumption starts from the end of the partition unless "
     "'--offset' is specified.", 0, 0, 0},
    {"offset", CLI_OPT_VALUE, "<String: consume offset>",
     "The offset to consume from (a non-negative number), or 'earliest' which means from "
     "beginning, or 'latest' which means from end (default: latest)", 0, 0, 0},
    {"max-messages", CLI_OPT_VALUE, "<Integer: num_messages>",
     "The maximum number of messages to consume before exiting.", 0, 0, 0},
    {"timeout-ms", CLI_OPT_VALUE, "<Integer: timeout_ms>",
     "If specified, exit if no message is available for consumption for the specified interval.", 0, 0, 0},
    {"property", CLI_OPT_LIST, "<String: prop>",
     "Formatter properties: print.timestamp, print.key, print.offset, print.partition, "
     "print.headers, print.value, key.separator, line.separator, headers.separator, null.literal", 0, 0, 0},
    {"formatter-config", CLI_OPT_VALUE, "<String: config file>", "Formatter properties file.", 0, 0, 0},
    {"consumer-property", CLI_OPT_LIST, "<String: consumer_prop>",
     "A mechanism to pass user-defined properties in the form key=value to the consumer.", 0, 0, 0},
    {"consumer.config", CLI_OPT_VALUE, "<String: config file>", "Consumer config properties file.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: config file>", "Consumer config properties file.", 0, 0, 0},
    {"isolation-level", CLI_OPT_VALUE, "<String>", "read_committed or read_uncommitted", 0, 0, 0},
    {"skip-message-on-error", CLI_OPT_FLAG, NULL, "Accepted for compatibility.", 0, 0, 0},
    {"formatter", CLI_OPT_VALUE, "<String: class>",
     "Only the default formatter (kafka.tools.DefaultMessageFormatter) is supported.", 0, 0, 0},
    {"key-deserializer", CLI_OPT_VALUE, "<String>", "Accepted; keys are printed as bytes.", 0, 0, 0},
    {"value-deserializer", CLI_OPT_VALUE, "<String>", "Accepted; values are printed as bytes.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd consume_cmd = {
    "kafka-console-consumer.sh",
    "This tool helps to read data from Kafka topics and outputs it to standard output.", consume_opts,
};

/* Kafka's DefaultMessageFormatter properties. */
struct record_format {
    int print_timestamp, print_key, print_offset, print_partition, print_headers, print_value;
    const char *key_separator, *line_separator, *headers_separator, *null_literal;
};

static int truthy(const char *v)
{
    return strcmp(v, "true") == 0 || strcmp(v, "TRUE") == 0 || strcmp(v, "True") == 0;
}

static int set_format_property(struct record_format *f, const char *key, const char *value)
{
    if (strcmp(key, "print.timestamp") == 0) f->print_timestamp = truthy(value);
    else if (strcmp(key, "print.key") == 0) f->print_key = truthy(value);
    else if (strcmp(key, "print.offset") == 0) f->print_offset = truthy(value);
    else if (strcmp(key, "print.partition") == 0) f->print_partition = truthy(value);
    else if (strcmp(key, "print.headers") == 0) f->print_headers = truthy(value);
    else if (strcmp(key, "print.value") == 0) f->print_value = truthy(value);
    else if (strcmp(key, "key.separator") == 0) f->key_separator = value;
    else if (strcmp(key, "line.separator") == 0) f->line_separator = value;
    else if (strcmp(key, "headers.separator") == 0) f->headers_separator = value;
    else if (strcmp(key, "null.literal") == 0) f->null_literal = value;
    else fprintf(stderr, "Note: ignoring unknown formatter property %s\n", key);
    return 0;
}

static int record_format_init(struct record_format *f, struct cli_cmd *cmd)
{
    *f = (struct record_format){0, 0, 0, 0, 0, 1, "\t", "\n", ",", "null"};
    struct cli_opt *o = cli_opt_get(cmd, "property");
    for (int i = 0; i < o->count; i++) {
        const char *eq = strchr(o->values[i], '=');
        if (!eq)
            return cli_usage_error(cmd, "Invalid property '%s': expected key=value", o->values[i]);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - o->values[i]), o->values[i]);
        set_format_property(f, key, eq + 1);
    }
    return 0;
}

static void print_bytes_or_null(const struct record_format *f, const void *data, size_t len)
{
    if (data)
        fwrite(data, 1, len, stdout);
    else
        fputs(f->null_literal, stdout);
}

static void print_headers(const struct record_format *f, const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(msg, &hdrs) || rd_kafka_header_cnt(hdrs) == 0) {
        fputs("NO_HEADERS", stdout);
        return;
    }
    const char *name;
    const void *value;
    size_t size;
    for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &value, &size); i++) {
        if (i)
            fputs(f->headers_separator, stdout);
        printf("%s:", name);
        print_bytes_or_null(f, value, size);
    }
}

static void print_record(const struct record_format *f, const rd_kafka_message_t *msg)
{
    if (f->print_timestamp) {
        rd_kafka_timestamp_type_t type;
        int64_t ts = rd_kafka_message_timestamp(msg, &type);
        if (type == RD_KAFKA_TIMESTAMP_CREATE_TIME)
            printf("CreateTime:%lld", (long long)ts);
        else if (type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME)
            printf("LogAppendTime:%lld", (long long)ts);
        else
            fputs("NO_TIMESTAMP", stdout);
        fputs(f->key_separator, stdout);
    }
    if (f->print_partition)
        printf("Partition:%d%s", (int)msg->partition, f->key_separator);
    if (f->print_offset)
        printf("Offset:%lld%s", (long long)msg->offset, f->key_separator);
    if (f->print_headers) {
        print_headers(f, msg);
        fputs(f->key_separator, stdout);
    }
    if (f->print_key) {
        print_bytes_or_null(f, msg->key, msg->key_len);
        if (f->print_value)
            fputs(f->key_separator, stdout);
    }
    if (f->print_value)
        print_bytes_or_null(f, msg->payload, msg->len);
    fputs(f->line_separator, stdout);
}

/* Build the consumer config: group, offset reset, commit policy, user properties. */
static rd_kafka_conf_t *consume_conf(struct cli_cmd *cmd, const char *bootstrap)
{
    rd_kafka_conf_t *conf = cli_conf_new(bootstrap);
    if (!conf)
        return NULL;
    char group[64];
    const char *group_id = cli_value(cmd, "group");
    int generated = group_id == NULL;
    if (generated) {
        /* Like Kafka: a throwaway group that commits nothing, so it leaves no state behind. */
        srand((unsigned)time(NULL) ^ (unsigned)getpid());
        snprintf(group, sizeof group, "console-consumer-%d", rand() % 100000);
        group_id = group;
    }
    int bad = cli_conf_set(conf, "group.id", group_id) ||
              cli_conf_set(conf, "auto.offset.reset",
                           cli_has(cmd, "from-beginning") ? "earliest" : "latest") ||
              cli_conf_set(conf, "enable.auto.commit", generated ? "false" : "true") ||
              cli_conf_set(conf, "allow.auto.create.topics", "true") ||
              (cli_value(cmd, "isolation-level") &&
               cli_conf_set(conf, "isolation.level", cli_value(cmd, "isolation-level"))) ||
              cli_conf_apply_options(conf, cmd, "consumer.config", NULL) ||
              cli_conf_apply_options(conf, cmd, "command-config", "consumer-property");
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* Subscribe to the topic/pattern, or assign the one --partition at --offset. */
static int consume_start(rd_kafka_t *rk, struct cli_cmd *cmd, const char *topic,
                         const char *pattern)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    const char *p = cli_value(cmd, "partition");
    if (p) {
        long long partition, offset = RD_KAFKA_OFFSET_END;
        const char *o = cli_value(cmd, "offset");
        if (cli_parse_long(p, 0, INT32_MAX, &partition) != 0) {
            rd_kafka_topic_partition_list_destroy(list);
            return cli_usage_error(cmd, "Invalid --partition '%s'", p);
        }
        if (!o && cli_has(cmd, "from-beginning"))
            offset = RD_KAFKA_OFFSET_BEGINNING;
        else if (o && strcmp(o, "earliest") == 0)
            offset = RD_KAFKA_OFFSET_BEGINNING;
        else if (o && strcmp(o, "latest") == 0)
            offset = RD_KAFKA_OFFSET_END;
        else if (o && cli_parse_long(o, 0, INT64_MAX, &offset) != 0) {
            rd_kafka_topic_partition_list_destroy(list);
            return cli_usage_error(cmd, "The provided offset value '%s' is incorrect. Valid "
                                   "values are 'earliest', 'latest', or a non-negative long.", o);
        }
        rd_kafka_topic_partition_list_add(list, topic, (int32_t)partition)->offset = offset;
        err = rd_kafka_assign(rk, list);
    } else {
        char regex[1024];
        if (pattern)
            snprintf(regex, sizeof regex, "^%s", pattern);
        rd_kafka_topic_partition_list_add(list, pattern ? regex : topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        fprintf(stderr, "Cannot start consuming: %s\n", rd_kafka_err2str(err));
        return 1;
    }
    return 0;
}

static int validate(struct cli_cmd *cmd, const char *topic, const char *pattern)
{
    if (!!topic + !!pattern != 1)
        return cli_usage_error(cmd, "Exactly one of --include/--topic is required.");
    if (cli_has(cmd, "partition") && !topic)
        return cli_usage_error(cmd, "The topic is required when partition is specified.");
    if (cli_has(cmd, "offset") && !cli_has(cmd, "partition"))
        return cli_usage_error(cmd, "The partition is required when offset is specified.");
    if (cli_has(cmd, "from-beginning") && cli_has(cmd, "offset"))
        return cli_usage_error(cmd, "Options from-beginning and offset cannot be specified together.");
    const char *formatter = cli_value(cmd, "formatter");
    if (formatter && !strstr(formatter, "DefaultMessageFormatter"))
        return cli_usage_error(cmd, "Formatter %s is not supported by gregor", formatter);
    return 0;
}

static int consume_loop(rd_kafka_t *rk, const struct record_format *fmt, long long max_messages,
                        long long timeout_ms, long long *processed)
{
    int interactive = isatty(STDOUT_FILENO), rc = 0;
    long long last_activity = cli_now_ms();
    while (!cli_stop_requested && (max_messages < 0 || *processed < max_messages)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, CONSUME_POLL_MS);
        if (!msg) {
            fflush(stdout);
            if (timeout_ms >= 0 && cli_now_ms() - last_activity >= timeout_ms)
                break; /* Kafka's TimeoutException: ends the run normally */
            continue;
        }
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "WARN %s\n", rd_kafka_message_errstr(msg));
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                rc = 1;
            rd_kafka_message_destroy(msg);
            if (rc)
                break;
            continue;
        }
        print_record(fmt, msg);
        if (interactive)
            fflush(stdout);
        (*processed)++;
        last_activity = cli_now_ms();
        rd_kafka_message_destroy(msg);
    }
    fflush(stdout);
    return rc;
}

static int consume_run(struct cli_cmd *cmd)
{
    const char *topic = cli_value(cmd, "topic");
    const char *pattern = cli_value(cmd, "include");
    if (!pattern)
        pattern = cli_value(cmd, "whitelist");
    if (validate(cmd, topic, pattern) != 0)
        return 1;
    long long max_messages = -1, timeout_ms = -1;
    const char *m = cli_value(cmd, "max-messages"), *t = cli_value(cmd, "timeout-ms");
    if (m && cli_parse_long(m, 0, INT64_MAX, &max_messages) != 0)
        return cli_usage_error(cmd, "Invalid --max-messages '%s'", m);
    if (t && cli_parse_long(t, 0, INT64_MAX, &timeout_ms) != 0)
        return cli_usage_error(cmd, "Invalid --timeout-ms '%s'", t);
    struct record_format fmt;
    if (record_format_init(&fmt, cmd) != 0)
        return 1;
    const char *bootstrap = cli_bootstrap(cmd);
    if (!bootstrap)
        return 1;
    rd_kafka_conf_t *conf = consume_conf(cmd, bootstrap);
    if (!conf)
        return 1;
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "Cannot create consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    cli_install_stop_signals();
    long long processed = 0;
    int rc = consume_start(rk, cmd, topic, pattern);
    if (rc == 0)
        rc = consume_loop(rk, &fmt, max_messages, timeout_ms, &processed);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr, "Processed a total of %lld messages\n", processed);
    return rc;
}

int cli_consume(int argc, char **argv)
{
    int parsed = cli_args_parse(&consume_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : consume_run(&consume_cmd);
    cli_args_free(&consume_cmd);
    return rc;
}
