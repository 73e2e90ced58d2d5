/* produce: `gregor produce`, the kafka-console-producer.sh work-alike — one record per stdin
 * line (optionally "key<sep>value" and headers), sent through librdkafka, flushed at EOF. */
#include "cli/cli.h"
#include "cli/args.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

/* A line longer than this is refused instead of growing the buffer without bound. */
#define PRODUCE_MAX_LINE (64 * 1024 * 1024)
#define PRODUCE_MAX_HEADERS 64

static struct cli_opt produce_opts[] = {
    {"bootstrap-server", CLI_OPT_VALUE, "<String: server to connect to>",
     "REQUIRED unless --broker-list(deprecated) is specified. The server(s) to connect to.", 0, 0, 0},
    {"broker-list", CLI_OPT_VALUE, "<String: broker-list>",
     "DEPRECATED, use --bootstrap-server instead.", 0, 0, 0},
    {"topic", CLI_OPT_VALUE, "<String: topic>", "REQUIRED: The topic id to produce messages to.", 0, 0, 0},
    {"property", CLI_OPT_LIST, "<String: prop>",
     "Reader properties: parse.key, key.separator, ignore.error, null.marker, parse.headers, "
     "headers.delimiter, headers.separator, headers.key.separator.", 0, 0, 0},
    {"reader-property", CLI_OPT_LIST, "<String: reader_prop>", "Same as --property.", 0, 0, 0},
    {"producer-property", CLI_OPT_LIST, "<String: producer_prop>",
     "A mechanism to pass user-defined properties in the form key=value to the producer.", 0, 0, 0},
    {"producer.config", CLI_OPT_VALUE, "<String: config file>", "Producer config properties file.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: config file>", "Producer config properties file.", 0, 0, 0},
    {"request-required-acks", CLI_OPT_VALUE, "<String: request required acks>",
     "The required acks of the producer requests (default: -1)", 0, 0, 0},
    {"compression-codec", CLI_OPT_VALUE, "<String: compression-codec>",
     "none, gzip, snappy, lz4, or zstd.", 0, 0, 0},
    {"sync", CLI_OPT_FLAG, NULL, "If set message send requests to the brokers are synchronously, "
     "one at a time as they arrive.", 0, 0, 0},
    {"batch-size", CLI_OPT_VALUE, "<Integer: size>", "Number of messages to send in a single batch.", 0, 0, 0},
    {"timeout", CLI_OPT_VALUE, "<Long: timeout_ms>",
     "linger.ms: how long a partial batch waits (default: 1000)", 0, 0, 0},
    {"message-send-max-retries", CLI_OPT_VALUE, "<Integer>", "retries (default: 2147483647)", 0, 0, 0},
    {"retry-backoff-ms", CLI_OPT_VALUE, "<Long>", "retry.backoff.ms (default: 100)", 0, 0, 0},
    {"request-timeout-ms", CLI_OPT_VALUE, "<Integer>", "request.timeout.ms (default: 1500)", 0, 0, 0},
    {"max-block-ms", CLI_OPT_VALUE, "<Long>", "Accepted for compatibility; ignored.", 0, 0, 0},
    {"max-memory-bytes", CLI_OPT_VALUE, "<Long>", "Accepted for compatibility; ignored.", 0, 0, 0},
    {"max-partition-memory-bytes", CLI_OPT_VALUE, "<Integer>", "batch.size", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd produce_cmd = {
    "kafka-console-producer.sh",
    "This tool helps to read data from standard input and publish it to Kafka.", produce_opts,
};

/* How lines become records (Kafka's LineMessageReader properties). */
struct line_format {
    int parse_key;
    const char *key_separator;
    int ignore_error;
    const char *null_marker;
    int parse_headers;
    const char *headers_delimiter;
    const char *headers_separator;
    const char *headers_key_separator;
};

struct produce_state {
    const char *topic;
    long long sent;
    long long failed;
};

static int parse_bool(const char *v)
{
    return v && (strcmp(v, "true") == 0 || strcmp(v, "TRUE") == 0 || strcmp(v, "True") == 0);
}

static int line_format_init(struct line_format *fmt, struct cli_cmd *cmd)
{
    *fmt = (struct line_format){0, "\t", 0, NULL, 0, "\t", ",", ":"};
    const char *names[] = {"property", "reader-property"};
    for (int n = 0; n < 2; n++) {
        struct cli_opt *o = cli_opt_get(cmd, names[n]);
        for (int i = 0; i < o->count; i++) {
            const char *kv = o->values[i], *eq = strchr(kv, '=');
            if (!eq)
                return cli_usage_error(cmd, "Invalid property '%s': expected key=value", kv);
            size_t klen = (size_t)(eq - kv);
            const char *v = eq + 1;
#define KEY_IS(k) (klen == strlen(k) && strncmp(kv, k, klen) == 0)
            if (KEY_IS("parse.key"))
                fmt->parse_key = parse_bool(v);
            else if (KEY_IS("key.separator"))
                fmt->key_separator = v;
            else if (KEY_IS("ignore.error"))
                fmt->ignore_error = parse_bool(v);
            else if (KEY_IS("null.marker"))
                fmt->null_marker = v;
            else if (KEY_IS("parse.headers"))
                fmt->parse_headers = parse_bool(v);
            else if (KEY_IS("headers.delimiter"))
                fmt->headers_delimiter = v;
            else if (KEY_IS("headers.separator"))
                fmt->headers_separator = v;
            else if (KEY_IS("headers.key.separator"))
                fmt->headers_key_separator = v;
            else
                fprintf(stderr, "Note: ignoring unknown reader property %.*s\n", (int)klen, kv);
#undef KEY_IS
        }
    }
    if (!*fmt->key_separator || !*fmt->headers_delimiter || !*fmt->headers_separator ||
        !*fmt->headers_key_separator)
        return cli_usage_error(cmd, "Separators must not be empty");
    return 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct produce_state *st = opaque;
    if (!msg->err) {
        st->sent++;
        return;
    }
    st->failed++;
    fprintf(stderr, "ERROR Error when sending message to topic %s with key: %s, value: %zu bytes "
            "with error: %s\n", st->topic, msg->key ? "present" : "null", msg->len,
            rd_kafka_err2str(msg->err));
}

static int is_null(const struct line_format *fmt, const char *s)
{
    return fmt->null_marker && strcmp(fmt->null_marker, s) == 0;
}

/* Split "h1:v1,h2:v2" into headers; returns -1 on a malformed header. */
static int parse_headers(const struct line_format *fmt, char *text, rd_kafka_headers_t *hdrs)
{
    size_t sep_len = strlen(fmt->headers_separator);
    size_t ksep_len = strlen(fmt->headers_key_separator);
    char *p = text;
    while (p) {
        char *next = strstr(p, fmt->headers_separator);
        if (next) {
            *next = '\0';
            next += sep_len;
        }
        char *ksep = strstr(p, fmt->headers_key_separator);
        if (!ksep)
            return -1;
        *ksep = '\0';
        const char *value = ksep + ksep_len;
        if (is_null(fmt, value))
            rd_kafka_header_add(hdrs, p, -1, NULL, 0);
        else
            rd_kafka_header_add(hdrs, p, -1, value, (ssize_t)strlen(value));
        p = next;
    }
    return 0;
}

/* Send one line. Returns 0, 1 for a line the reader rejects, -1 when producing failed. */
static int produce_line(rd_kafka_t *rk, const struct line_format *fmt, const char *topic,
                        char *line, long long lineno)
{
    char *key = NULL, *value = line;
    rd_kafka_headers_t *hdrs = NULL;
    if (fmt->parse_headers) {
        char *delim = strstr(line, fmt->headers_delimiter);
        if (!delim) {
            fprintf(stderr, "No headers delimiter found on line number %lld: '%s'\n", lineno, line);
            return 1;
        }
        *delim = '\0';
        value = delim + strlen(fmt->headers_delimiter);
        hdrs = rd_kafka_headers_new(8);
        if (parse_headers(fmt, line, hdrs) != 0) {
            fprintf(stderr, "No header key separator found in pair on line number %lld\n", lineno);
            rd_kafka_headers_destroy(hdrs);
            return 1;
        }
    }
    if (fmt->parse_key) {
        char *sep = strstr(value, fmt->key_separator);
        if (!sep) {
            fprintf(stderr, "No key separator found on line number %lld: '%s'\n", lineno, value);
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            return 1;
        }
        *sep = '\0';
        key = value;
        value = sep + strlen(fmt->key_separator);
        if (is_null(fmt, key))
            key = NULL;
    }
    if (is_null(fmt, value))
        value = NULL;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE(value, value ? strlen(value) : 0),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err)
            return 0; /* headers now belong to the message */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !cli_stop_requested) {
            rd_kafka_poll(rk, 100); /* back-pressure: let deliveries drain */
            continue;
        }
        fprintf(stderr, "ERROR Error when sending message to topic %s: %s\n", topic,
                rd_kafka_err2str(err));
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        return -1;
    }
}

/* Map the console producer's own flags onto librdkafka properties. */
static int apply_flags(rd_kafka_conf_t *conf, struct cli_cmd *cmd)
{
    static const struct { const char *flag, *property; } map[] = {
        {"request-required-acks", "acks"}, {"compression-codec", "compression.type"},
        {"timeout", "linger.ms"}, {"message-send-max-retries", "retries"},
        {"retry-backoff-ms", "retry.backoff.ms"}, {"request-timeout-ms", "request.timeout.ms"},
        {"max-partition-memory-bytes", "batch.size"}, {"batch-size", "batch.num.messages"},
    };
    /* Kafka's console producer defaults. */
    if (cli_conf_set(conf, "acks", "-1") != 0 || cli_conf_set(conf, "linger.ms", "1000") != 0 ||
        cli_conf_set(conf, "request.timeout.ms", "1500") != 0)
        return -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = cli_value(cmd, map[i].flag);
        if (v && cli_conf_set(conf, map[i].property, v) != 0)
            return -1;
    }
    if (cli_has(cmd, "compression-codec") && !*cli_value(cmd, "compression-codec"))
        cli_conf_set(conf, "compression.type", "gzip");
    if (cli_conf_apply_options(conf, cmd, "producer.config", NULL) != 0 ||
        cli_conf_apply_options(conf, cmd, "command-config", "producer-property") != 0)
        return -1;
    return 0;
}

static int produce_run(struct cli_cmd *cmd)
{
    const char *topic = cli_value(cmd, "topic");
    if (!topic)
        return cli_usage_error(cmd, "Missing required argument \"[topic]\"");
    const char *bootstrap = cli_bootstrap(cmd);
    if (!bootstrap)
        return 1;
    struct line_format fmt;
    if (line_format_init(&fmt, cmd) != 0)
        return 1;
    struct produce_state st = {topic, 0, 0};
    rd_kafka_conf_t *conf = cli_conf_new(bootstrap);
    if (!conf || apply_flags(conf, cmd) != 0) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "Cannot create producer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    cli_install_stop_signals();
    int interactive = isatty(STDIN_FILENO), sync = cli_has(cmd, "sync"), rc = 0;
    char *line = NULL;
    size_t cap = 0;
    long long lineno = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    time_t next_progress = t0.tv_sec + 5;
    for (;;) {
        if (!interactive && (lineno & 1023) == 0) {
            /* Long work from a file or pipe gets a progress line every 5 s on stderr. */
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec >= next_progress) {
                double secs = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
                fprintf(stderr, "%lld records read, %.0f records/sec, %d awaiting delivery\n",
                        lineno, lineno / secs, rd_kafka_outq_len(rk));
                next_progress = now.tv_sec + 5;
            }
        }
        if (interactive) {
            fputs(">", stdout);
            fflush(stdout);
        }
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0 || cli_stop_requested)
            break;
        lineno++;
        if (len > PRODUCE_MAX_LINE) {
            fprintf(stderr, "Line %lld is %zd bytes, over the %d byte limit; stopping\n", lineno,
                    len, PRODUCE_MAX_LINE);
            rc = 1;
            break;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        int r = produce_line(rk, &fmt, topic, line, lineno);
        if (r < 0 || (r > 0 && !fmt.ignore_error)) {
            rc = 1;
            break;
        }
        if (sync)
            rd_kafka_flush(rk, 60000);
        else
            rd_kafka_poll(rk, 0);
    }
    free(line);
    if (interactive && !cli_stop_requested)
        fputc('\n', stdout);
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
    if (err) {
        fprintf(stderr, "ERROR %d message(s) still undelivered at exit: %s\n",
                rd_kafka_outq_len(rk), rd_kafka_err2str(err));
        rc = 1;
    }
    if (st.failed)
        rc = 1;
    rd_kafka_destroy(rk);
    return rc;
}

int cli_produce(int argc, char **argv)
{
    int parsed = cli_args_parse(&produce_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : produce_run(&produce_cmd);
    cli_args_free(&produce_cmd);
    fflush(stdout);
    return rc;
}
