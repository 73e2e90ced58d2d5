/* config_catalog: Kafka 4.x's topic configs (LogConfig) and the broker keys behind them
 * (ServerTopicConfigSynonyms), with Kafka's validators and messages; one table for every
 * handler that takes or shows a topic config. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/config_catalog.h"
#include "common/errors.h"

static const char *const cleanup_policies[] = {"compact", "delete", NULL};
static const char *const compression_types[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip",
                                                "producer", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};

#define I32 INT32_MAX
#define I64 INT64_MAX
#define S(...) {__VA_ARGS__}

/* In name order. Defaults are Kafka 4.x's (KIP-1030: message.timestamp.after.max.ms is one
 * hour); segment.bytes keeps Kafka 4.x's 1 MiB minimum. */
const struct topic_config_def config_catalog_topics[] = {
    {"cleanup.policy", CONFIG_TYPE_LIST, "delete", CHECK_LIST_OF, 0, 0, cleanup_policies,
     S("log.cleanup.policy"), true},
    {"compression.gzip.level", CONFIG_TYPE_INT, "-1", CHECK_GZIP_LEVEL, 1, 9, NULL,
     S("compression.gzip.level"), false},
    {"compression.lz4.level", CONFIG_TYPE_INT, "9", CHECK_RANGE, 1, 17, NULL,
     S("compression.lz4.level"), false},
    {"compression.type", CONFIG_TYPE_STRING, "producer", CHECK_ONE_OF, 0, 0, compression_types,
     S("compression.type"), false},
    {"compression.zstd.level", CONFIG_TYPE_INT, "3", CHECK_RANGE, -131072, 22, NULL,
     S("compression.zstd.level"), false},
    {"delete.retention.ms", CONFIG_TYPE_LONG, "86400000", CHECK_RANGE, 0, I64, NULL,
     S("log.cleaner.delete.retention.ms"), false},
    {"file.delete.delay.ms", CONFIG_TYPE_LONG, "60000", CHECK_RANGE, 0, I64, NULL,
     S("log.segment.delete.delay.ms"), true},
    {"flush.messages", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 1, I64, NULL,
     S("log.flush.interval.messages"), true},
    {"flush.ms", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 0, I64, NULL,
     S("log.flush.interval.ms", "log.flush.scheduler.interval.ms"), true},
    {"follower.replication.throttled.replicas", CONFIG_TYPE_LIST, "", CHECK_THROTTLED, 0, 0,
     NULL, S(NULL), false},
    {"index.interval.bytes", CONFIG_TYPE_INT, "4096", CHECK_RANGE, 0, I32, NULL,
     S("log.index.interval.bytes"), true},
    {"leader.replication.throttled.replicas", CONFIG_TYPE_LIST, "", CHECK_THROTTLED, 0, 0, NULL,
     S(NULL), false},
    {"local.retention.bytes", CONFIG_TYPE_LONG, "-2", CHECK_RANGE, -2, I64, NULL,
     S("log.local.retention.bytes"), false},
    {"local.retention.ms", CONFIG_TYPE_LONG, "-2", CHECK_RANGE, -2, I64, NULL,
     S("log.local.retention.ms"), false},
    {"max.compaction.lag.ms", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 1, I64, NULL,
     S("log.cleaner.max.compaction.lag.ms"), false},
    {"max.message.bytes", CONFIG_TYPE_INT, "1048588", CHECK_RANGE, 0, I32, NULL,
     S("message.max.bytes"), true},
    {"message.downconversion.enable", CONFIG_TYPE_BOOLEAN, "true", CHECK_NONE, 0, 0, NULL,
     S("log.message.downconversion.enable"), false},
    {"message.timestamp.after.max.ms", CONFIG_TYPE_LONG, "3600000", CHECK_RANGE, 0, I64, NULL,
     S("log.message.timestamp.after.max.ms"), false},
    {"message.timestamp.before.max.ms", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 0,
     I64, NULL, S("log.message.timestamp.before.max.ms"), false},
    {"message.timestamp.type", CONFIG_TYPE_STRING, "CreateTime", CHECK_ONE_OF, 0, 0,
     timestamp_types, S("log.message.timestamp.type"), true},
    {"min.cleanable.dirty.ratio", CONFIG_TYPE_DOUBLE, "0.5", CHECK_RANGE, 0, 1, NULL,
     S("log.cleaner.min.cleanable.ratio"), false},
    {"min.compaction.lag.ms", CONFIG_TYPE_LONG, "0", CHECK_RANGE, 0, I64, NULL,
     S("log.cleaner.min.compaction.lag.ms"), false},
    {"min.insync.replicas", CONFIG_TYPE_INT, "1", CHECK_RANGE, 1, I32, NULL,
     S("min.insync.replicas"), false},
    {"preallocate", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL, S("log.preallocate"),
     false},
    {"remote.log.copy.disable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL, S(NULL),
     false},
    {"remote.log.delete.on.disable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL,
     S(NULL), false},
    {"remote.storage.enable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL, S(NULL),
     false},
    {"retention.bytes", CONFIG_TYPE_LONG, "-1", CHECK_NONE, 0, 0, NULL,
     S("log.retention.bytes"), true},
    {"retention.ms", CONFIG_TYPE_LONG, "604800000", CHECK_RANGE, -1, I64, NULL,
     S("log.retention.ms", "log.retention.minutes", "log.retention.hours"), true},
    {"segment.bytes", CONFIG_TYPE_INT, "1073741824", CHECK_RANGE, 1048576, I32, NULL,
     S("log.segment.bytes"), true},
    {"segment.index.bytes", CONFIG_TYPE_INT, "10485760", CHECK_RANGE, 4, I32, NULL,
     S("log.index.size.max.bytes"), true},
    {"segment.jitter.ms", CONFIG_TYPE_LONG, "0", CHECK_RANGE, 0, I64, NULL,
     S("log.roll.jitter.ms", "log.roll.jitter.hours"), false},
    {"segment.ms", CONFIG_TYPE_LONG, "604800000", CHECK_RANGE, 1, I64, NULL,
     S("log.roll.ms", "log.roll.hours"), true},
    {"unclean.leader.election.enable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL,
     S("unclean.leader.election.enable"), false},
};
const int config_catalog_ntopics = sizeof(config_catalog_topics) / sizeof(config_catalog_topics[0]);

#define T(i) (&config_catalog_topics[i])
#define RO BROKER_KEY_READ_ONLY
#define DYN BROKER_KEY_DYNAMIC

/* Broker keys: the topic configs' synonyms (the first of each is dynamic in Kafka, checked as
 * the topic config), then the other keys gregor reads. check_as is filled by index below. */
const struct broker_key_def config_catalog_broker[] = {
    {"compression.gzip.level", CONFIG_TYPE_INT, "-1", DYN, 1, T(1)},
    {"compression.lz4.level", CONFIG_TYPE_INT, "9", DYN, 1, T(2)},
    {"compression.type", CONFIG_TYPE_STRING, "producer", DYN, 1, T(3)},
    {"compression.zstd.level", CONFIG_TYPE_INT, "3", DYN, 1, T(4)},
    {"log.cleaner.delete.retention.ms", CONFIG_TYPE_LONG, "86400000", DYN, 1, T(5)},
    {"log.cleaner.max.compaction.lag.ms", CONFIG_TYPE_LONG, "9223372036854775807", DYN, 1, T(14)},
    {"log.cleaner.min.cleanable.ratio", CONFIG_TYPE_DOUBLE, "0.5", DYN, 1, T(20)},
    {"log.cleaner.min.compaction.lag.ms", CONFIG_TYPE_LONG, "0", DYN, 1, T(21)},
    {"log.cleanup.policy", CONFIG_TYPE_LIST, "delete", DYN, 1, T(0)},
    {"log.flush.interval.messages", CONFIG_TYPE_LONG, "9223372036854775807", DYN, 1, T(7)},
    {"log.flush.interval.ms", CONFIG_TYPE_LONG, NULL, DYN, 1, T(8)},
    {"log.flush.scheduler.interval.ms", CONFIG_TYPE_LONG, "1000", RO, 1, NULL},
    {"log.index.interval.bytes", CONFIG_TYPE_INT, "4096", DYN, 1, T(10)},
    {"log.index.size.max.bytes", CONFIG_TYPE_INT, "10485760", DYN, 1, T(30)},
    {"log.local.retention.bytes", CONFIG_TYPE_LONG, "-2", DYN, 1, T(12)},
    {"log.local.retention.ms", CONFIG_TYPE_LONG, "-2", DYN, 1, T(13)},
    {"log.message.downconversion.enable", CONFIG_TYPE_BOOLEAN, "true", DYN, 1, T(16)},
    {"log.message.timestamp.after.max.ms", CONFIG_TYPE_LONG, "3600000", DYN, 1, T(17)},
    {"log.message.timestamp.before.max.ms", CONFIG_TYPE_LONG, "9223372036854775807", DYN, 1, T(18)},
    {"log.message.timestamp.type", CONFIG_TYPE_STRING, "CreateTime", DYN, 1, T(19)},
    {"log.preallocate", CONFIG_TYPE_BOOLEAN, "false", DYN, 1, T(23)},
    {"log.retention.bytes", CONFIG_TYPE_LONG, "-1", DYN, 1, T(27)},
    {"log.retention.hours", CONFIG_TYPE_INT, "168", RO, 3600000, NULL},
    {"log.retention.minutes", CONFIG_TYPE_INT, NULL, RO, 60000, NULL},
    {"log.retention.ms", CONFIG_TYPE_LONG, NULL, DYN, 1, T(28)},
    {"log.roll.hours", CONFIG_TYPE_INT, "168", RO, 3600000, NULL},
    {"log.roll.jitter.hours", CONFIG_TYPE_INT, "0", RO, 3600000, NULL},
    {"log.roll.jitter.ms", CONFIG_TYPE_LONG, NULL, DYN, 1, T(31)},
    {"log.roll.ms", CONFIG_TYPE_LONG, NULL, DYN, 1, T(32)},
    {"log.segment.bytes", CONFIG_TYPE_INT, "1073741824", DYN, 1, T(29)},
    {"log.segment.delete.delay.ms", CONFIG_TYPE_LONG, "60000", DYN, 1, T(6)},
    {"message.max.bytes", CONFIG_TYPE_INT, "1048588", DYN, 1, T(15)},
    {"min.insync.replicas", CONFIG_TYPE_INT, "1", DYN, 1, T(22)},
    {"unclean.leader.election.enable", CONFIG_TYPE_BOOLEAN, "false", DYN, 1, T(33)},
    /* Connection limits (SocketServer's reconfigurable configs). */
    {"max.connections", CONFIG_TYPE_INT, "10000", DYN, 1, NULL},
    {"max.connections.per.ip", CONFIG_TYPE_INT, "2147483647", DYN, 1, NULL},
    {"max.connections.per.ip.overrides", CONFIG_TYPE_STRING, "", RO, 1, NULL},
    /* Thread pools Kafka resizes at runtime: one loop thread here, accepted with no effect. */
    {"background.threads", CONFIG_TYPE_INT, "10", DYN, 1, NULL},
    {"num.io.threads", CONFIG_TYPE_INT, "8", DYN, 1, NULL},
    {"num.network.threads", CONFIG_TYPE_INT, "3", DYN, 1, NULL},
    {"num.recovery.threads.per.data.dir", CONFIG_TYPE_INT, "2", DYN, 1, NULL},
    {"num.replica.fetchers", CONFIG_TYPE_INT, "1", DYN, 1, NULL},
    /* The log cleaner's reconfigurable keys (Kafka's LogCleaner): stored and reported; no
     * compaction yet, so no effect (docs/CONFIG.md). */
    {"log.cleaner.backoff.ms", CONFIG_TYPE_LONG, "15000", DYN, 1, NULL},
    {"log.cleaner.dedupe.buffer.size", CONFIG_TYPE_LONG, "134217728", DYN, 1, NULL},
    {"log.cleaner.io.buffer.load.factor", CONFIG_TYPE_DOUBLE, "0.9", DYN, 1, NULL},
    {"log.cleaner.io.buffer.size", CONFIG_TYPE_INT, "524288", DYN, 1, NULL},
    {"log.cleaner.io.max.bytes.per.second", CONFIG_TYPE_DOUBLE, "1.7976931348623157E308", DYN, 1, NULL},
    {"log.cleaner.threads", CONFIG_TYPE_INT, "1", DYN, 1, NULL},
    /* Read-only: fixed when the broker starts. */
    {"advertised.listeners", CONFIG_TYPE_STRING, NULL, RO, 1, NULL},
    {"auto.create.topics.enable", CONFIG_TYPE_BOOLEAN, "true", RO, 1, NULL},
    {"broker.id", CONFIG_TYPE_INT, "-1", RO, 1, NULL},
    {"connections.max.idle.ms", CONFIG_TYPE_LONG, "600000", RO, 1, NULL},
    {"default.replication.factor", CONFIG_TYPE_INT, "1", RO, 1, NULL},
    {"delete.topic.enable", CONFIG_TYPE_BOOLEAN, "true", RO, 1, NULL},
    {"fetch.max.bytes", CONFIG_TYPE_INT, "57671680", RO, 1, NULL},
    {"gregor.acks.all.fsync", CONFIG_TYPE_BOOLEAN, "true", RO, 1, NULL},
    {"group.consumer.heartbeat.interval.ms", CONFIG_TYPE_INT, "5000", RO, 1, NULL},
    {"group.consumer.max.size", CONFIG_TYPE_INT, "2147483647", RO, 1, NULL},
    {"group.consumer.migration.policy", CONFIG_TYPE_STRING, "bidirectional", RO, 1, NULL},
    {"group.consumer.session.timeout.ms", CONFIG_TYPE_INT, "45000", RO, 1, NULL},
    {"group.initial.rebalance.delay.ms", CONFIG_TYPE_INT, "3000", RO, 1, NULL},
    {"group.max.session.timeout.ms", CONFIG_TYPE_INT, "1800000", RO, 1, NULL},
    {"group.max.size", CONFIG_TYPE_INT, "2147483647", RO, 1, NULL},
    {"group.min.session.timeout.ms", CONFIG_TYPE_INT, "6000", RO, 1, NULL},
    {"listeners", CONFIG_TYPE_STRING, "PLAINTEXT://:9092", RO, 1, NULL},
    {"log.dir", CONFIG_TYPE_STRING, "/tmp/kafka-logs", RO, 1, NULL},
    {"log.dirs", CONFIG_TYPE_STRING, NULL, RO, 1, NULL},
    {"log.flush.offset.checkpoint.interval.ms", CONFIG_TYPE_INT, "60000", RO, 1, NULL},
    {"log.retention.check.interval.ms", CONFIG_TYPE_LONG, "300000", RO, 1, NULL},
    {"node.id", CONFIG_TYPE_INT, "-1", RO, 1, NULL},
    {"num.partitions", CONFIG_TYPE_INT, "1", RO, 1, NULL},
    {"offset.metadata.max.bytes", CONFIG_TYPE_INT, "4096", RO, 1, NULL},
    {"offsets.retention.minutes", CONFIG_TYPE_INT, "10080", RO, 1, NULL},
    {"offsets.topic.num.partitions", CONFIG_TYPE_INT, "50", RO, 1, NULL},
    {"offsets.topic.replication.factor", CONFIG_TYPE_SHORT, "3", RO, 1, NULL},
    {"queued.max.request.bytes", CONFIG_TYPE_LONG, "-1", RO, 1, NULL},
    {"socket.request.max.bytes", CONFIG_TYPE_INT, "104857600", RO, 1, NULL},
};
const int config_catalog_nbroker = sizeof(config_catalog_broker) / sizeof(config_catalog_broker[0]);

const struct topic_config_def *config_catalog_topic(const char *name)
{
    for (int i = 0; i < config_catalog_ntopics; i++)
        if (strcmp(config_catalog_topics[i].name, name) == 0)
            return &config_catalog_topics[i];
    return NULL;
}

const struct broker_key_def *config_catalog_broker_key(const char *name)
{
    for (int i = 0; i < config_catalog_nbroker; i++)
        if (strcmp(config_catalog_broker[i].name, name) == 0)
            return &config_catalog_broker[i];
    return NULL;
}

/* Java's parse of a trimmed number: whole string, in range of the type. */
static bool parse_integer(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi || v[0] == ' ')
        return false;
    *out = x;
    return true;
}

static const char *type_word(enum config_type t)
{
    switch (t) {
    case CONFIG_TYPE_INT: return "INT";
    case CONFIG_TYPE_SHORT: return "SHORT";
    case CONFIG_TYPE_LONG: return "LONG";
    case CONFIG_TYPE_DOUBLE: return "DOUBLE";
    default: return "STRING";
    }
}

static bool one_of(const char *const *list, const char *s, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(*list, s, len) == 0)
            return true;
    return false;
}

static void join(const char *const *list, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; list[i] && o < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? ", " : "", list[i]);
}

/* ThrottledReplicaListValidator: "*", or items of digits:digits (empty items allowed). */
static bool throttled_ok(const char *v)
{
    const char *p = v;
    while (*p == ' ')
        p++;
    if (strcmp(p, "*") == 0)
        return true;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *a = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p != a) {
            if (*p++ != ':')
                return false;
            const char *bb = p;
            while (*p >= '0' && *p <= '9')
                p++;
            if (p == bb)
                return false;
        }
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

int config_catalog_check(const struct topic_config_def *def, const char *name, const char *value,
                         char *msg, size_t msglen)
{
    char why[300] = "";
    int64_t x = 0;
    double d = 0;
    switch (def->type) {
    case CONFIG_TYPE_BOOLEAN:
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            snprintf(why, sizeof(why), "Expected value to be either true or false");
        break;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_SHORT:
    case CONFIG_TYPE_LONG: {
        int64_t lo = def->type == CONFIG_TYPE_LONG ? INT64_MIN : def->type == CONFIG_TYPE_INT ? INT32_MIN : INT16_MIN;
        int64_t hi = def->type == CONFIG_TYPE_LONG ? INT64_MAX : def->type == CONFIG_TYPE_INT ? INT32_MAX : INT16_MAX;
        if (!parse_integer(value, lo, hi, &x))
            snprintf(why, sizeof(why), "Not a number of type %s", type_word(def->type));
        break;
    }
    case CONFIG_TYPE_DOUBLE: {
        char *end;
        d = strtod(value, &end);
        if (end == value || *end != '\0' || isnan(d))
            snprintf(why, sizeof(why), "Not a number of type DOUBLE");
        break;
    }
    default:
        break;
    }
    if (why[0] == '\0') {
        switch (def->check) {
        case CHECK_RANGE:
            if (def->type == CONFIG_TYPE_DOUBLE ? d < (double)def->min : x < def->min)
                snprintf(why, sizeof(why), "Value must be at least %" PRId64, def->min);
            else if (def->type == CONFIG_TYPE_DOUBLE ? d > (double)def->max : x > def->max)
                snprintf(why, sizeof(why), "Value must be no more than %" PRId64, def->max);
            break;
        case CHECK_GZIP_LEVEL:
            if (x > def->max || (x < def->min && x != -1))
                snprintf(why, sizeof(why), "Value must be between %" PRId64 " and %" PRId64
                         " or equal to -1", def->min, def->max);
            break;
        case CHECK_ONE_OF:
            if (!one_of(def->one_of, value, strlen(value))) {
                char all[128];
                join(def->one_of, all, sizeof(all));
                snprintf(why, sizeof(why), "String must be one of: %s", all);
            }
            break;
        case CHECK_LIST_OF:
            for (const char *p = value; *p != '\0';) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                const char *s = p;
                while (len > 0 && *s == ' ')
                    s++, len--;
                while (len > 0 && s[len - 1] == ' ')
                    len--;
                if (len > 0 && !one_of(def->one_of, s, len)) {
                    char all[128];
                    join(def->one_of, all, sizeof(all));
                    snprintf(why, sizeof(why), "String must be one of: %s", all);
                    break;
                }
                p = comma ? comma + 1 : p + strlen(p);
            }
            break;
        case CHECK_THROTTLED:
            if (!throttled_ok(value))
                snprintf(why, sizeof(why), "%s must be the literal '*' or a list of replicas in "
                         "the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                         def->name);
            break;
        case CHECK_NONE:
            break;
        }
    }
    if (why[0] == '\0')
        return 0;
    snprintf(msg, msglen, "Invalid value %s for configuration %s: %s", value, name, why);
    return -1;
}

/* Whether a cleanup.policy list names compact (gregor has no log compaction yet). */
static bool names_compact(const char *v)
{
    return strstr(v, "compact") != NULL;
}

int config_catalog_topic_check(const char *name, const char *value, char *msg, size_t msglen)
{
    const struct topic_config_def *def = config_catalog_topic(name);
    if (def == NULL) {
        snprintf(msg, msglen, "Unknown topic config name: %s", name);
        return KERR_INVALID_CONFIG;
    }
    if (config_catalog_check(def, name, value, msg, msglen) != 0)
        return KERR_INVALID_CONFIG;
    if (strcmp(name, "cleanup.policy") == 0 && names_compact(value)) {
        snprintf(msg, msglen, "cleanup.policy=%s is not supported yet: gregor has no log "
                 "compaction; only cleanup.policy=delete is accepted", value);
        return KERR_INVALID_CONFIG;
    }
    return KERR_NONE;
}

void config_catalog_topic_apply(struct log_config *cfg, const struct topic_config_def *def,
                                const char *value)
{
    if (!def->implemented)
        return;
    int64_t x = strtoll(value, NULL, 10);
    const char *n = def->name;
    if (strcmp(n, "retention.ms") == 0)
        cfg->retention_ms = x;
    else if (strcmp(n, "retention.bytes") == 0)
        cfg->retention_bytes = x;
    else if (strcmp(n, "segment.bytes") == 0)
        cfg->segment_bytes = x;
    else if (strcmp(n, "segment.ms") == 0)
        cfg->segment_ms = x;
    else if (strcmp(n, "max.message.bytes") == 0)
        cfg->max_message_bytes = (int32_t)x;
    else if (strcmp(n, "index.interval.bytes") == 0)
        cfg->index_interval_bytes = (int32_t)x;
    else if (strcmp(n, "segment.index.bytes") == 0)
        cfg->segment_index_bytes = (int32_t)x;
    else if (strcmp(n, "flush.messages") == 0)
        cfg->flush_messages = x;
    else if (strcmp(n, "flush.ms") == 0)
        cfg->flush_ms = x;
    else if (strcmp(n, "file.delete.delay.ms") == 0)
        cfg->file_delete_delay_ms = x;
    else if (strcmp(n, "message.timestamp.type") == 0)
        cfg->timestamp_type = strcmp(value, "LogAppendTime") == 0 ? LOG_TS_LOG_APPEND_TIME
                                                                  : LOG_TS_CREATE_TIME;
    else if (strcmp(n, "cleanup.policy") == 0 && strstr(value, "delete") == NULL) {
        /* Without delete nothing is removed for age or size (Kafka's LogConfig.delete). */
        cfg->retention_ms = -1;
        cfg->retention_bytes = -1;
    }
}

int config_catalog_list_op(const char *current, const char *operand, bool append, char *out,
                           size_t outlen)
{
    /* Items are compared whole; Kafka splits on ',' without trimming. */
    char items[64][128];
    int n = 0;
    char tmp[2048];
    snprintf(tmp, sizeof(tmp), "%s", current ? current : "");
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok && n < 64;
         tok = strtok_r(NULL, ",", &save))
        snprintf(items[n++], sizeof(items[0]), "%s", tok);
    char ops[2048];
    snprintf(ops, sizeof(ops), "%s", operand);
    for (char *save = NULL, *tok = strtok_r(ops, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int at = -1;
        for (int i = 0; i < n && at < 0; i++)
            if (strcmp(items[i], tok) == 0)
                at = i;
        if (append && at < 0) {
            if (n == 64)
                return -1;
            snprintf(items[n++], sizeof(items[0]), "%s", tok);
        } else if (!append) {
            for (int i = n - 1; i >= 0; i--)
                if (strcmp(items[i], tok) == 0) {
                    memmove(items[i], items[i + 1], (size_t)(n - i - 1) * sizeof(items[0]));
                    n--;
                }
        }
    }
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + o, outlen - o, "%s%s", i ? "," : "", items[i]);
        if (w < 0 || (size_t)w >= outlen - o)
            return -1;
        o += (size_t)w;
    }
    return 0;
}
