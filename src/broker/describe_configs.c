/* DescribeConfigs (32): a topic's effective configs (overrides marked as such) and a broker's
 * static configs, with Kafka's config source and type codes. */
#include <inttypes.h>
#include <stdio.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4
#define SOURCE_DYNAMIC_TOPIC 1
#define SOURCE_STATIC_BROKER 4
#define SOURCE_DEFAULT 5
#define TYPE_BOOLEAN 1
#define TYPE_STRING 2
#define TYPE_INT 3
#define TYPE_LONG 5
#define TYPE_LIST 7

struct config_row {
    const char *name;
    char value[1100];
    int8_t type;
};

static int topic_rows(const struct topic *t, struct config_row *rows)
{
    const struct log_config *c = &t->cfg;
    int n = 0;
#define ROW(nm, ty, ...) do { rows[n].name = nm; rows[n].type = ty; \
        snprintf(rows[n].value, sizeof(rows[n].value), __VA_ARGS__); n++; } while (0)
    ROW("cleanup.policy", TYPE_LIST, "delete");
    ROW("compression.type", TYPE_STRING, "producer");
    ROW("file.delete.delay.ms", TYPE_LONG, "%" PRId64, c->file_delete_delay_ms);
    ROW("flush.messages", TYPE_LONG, "%" PRId64, c->flush_messages);
    ROW("flush.ms", TYPE_LONG, "%" PRId64, c->flush_ms);
    ROW("index.interval.bytes", TYPE_INT, "%d", c->index_interval_bytes);
    ROW("max.message.bytes", TYPE_INT, "%d", c->max_message_bytes);
    ROW("message.timestamp.type", TYPE_STRING, "%s",
        c->timestamp_type == LOG_TS_LOG_APPEND_TIME ? "LogAppendTime" : "CreateTime");
    ROW("min.insync.replicas", TYPE_INT, "1");
    ROW("retention.bytes", TYPE_LONG, "%" PRId64, c->retention_bytes);
    ROW("retention.ms", TYPE_LONG, "%" PRId64, c->retention_ms);
    ROW("segment.bytes", TYPE_INT, "%" PRId64, c->segment_bytes);
    ROW("segment.index.bytes", TYPE_INT, "%d", c->segment_index_bytes);
    ROW("segment.ms", TYPE_LONG, "%" PRId64, c->segment_ms);
    return n;
}

static int broker_rows(const struct broker *b, struct config_row *rows)
{
    const struct broker_config *c = &b->cfg;
    int n = 0;
    ROW("auto.create.topics.enable", TYPE_BOOLEAN, "%s", c->auto_create_topics ? "true" : "false");
    ROW("broker.id", TYPE_INT, "%d", c->node_id);
    ROW("default.replication.factor", TYPE_INT, "%d", c->default_replication_factor);
    ROW("delete.topic.enable", TYPE_BOOLEAN, "%s", c->delete_topic_enable ? "true" : "false");
    ROW("gregor.acks.all.fsync", TYPE_BOOLEAN, "%s", c->acks_all_fsync ? "true" : "false");
    ROW("group.initial.rebalance.delay.ms", TYPE_INT, "%d", c->group_initial_rebalance_delay_ms);
    ROW("log.dirs", TYPE_STRING, "%s", c->log_dirs[0]);
    ROW("log.retention.bytes", TYPE_LONG, "%" PRId64, c->log.retention_bytes);
    ROW("log.retention.ms", TYPE_LONG, "%" PRId64, c->log.retention_ms);
    ROW("log.segment.bytes", TYPE_INT, "%" PRId64, c->log.segment_bytes);
    ROW("message.max.bytes", TYPE_INT, "%d", c->log.max_message_bytes);
    ROW("node.id", TYPE_INT, "%d", c->node_id);
    ROW("num.partitions", TYPE_INT, "%d", c->num_partitions);
    ROW("offsets.topic.num.partitions", TYPE_INT, "%d", c->offsets_topic_num_partitions);
    return n;
#undef ROW
}

/* The broker key a topic config falls back to (Kafka's synonym chain). */
static const char *broker_synonym(const char *topic_key)
{
    static const char *const map[][2] = {
        {"retention.ms", "log.retention.ms"}, {"retention.bytes", "log.retention.bytes"},
        {"segment.bytes", "log.segment.bytes"}, {"segment.ms", "log.roll.ms"},
        {"max.message.bytes", "message.max.bytes"}, {"index.interval.bytes", "log.index.interval.bytes"},
        {"segment.index.bytes", "log.index.size.max.bytes"}, {"flush.messages", "log.flush.interval.messages"},
        {"flush.ms", "log.flush.interval.ms"}, {"cleanup.policy", "log.cleanup.policy"},
        {"message.timestamp.type", "log.message.timestamp.type"}, {"compression.type", "compression.type"},
        {"file.delete.delay.ms", "log.segment.delete.delay.ms"}, {"min.insync.replicas", "min.insync.replicas"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], topic_key) == 0)
            return map[i][1];
    return NULL;
}

/* Kafka's synonym chain for a topic config: its override (if any), then the broker-level
 * value it falls back to (default_value: the same row computed from the broker's log.*). */
static void add_synonyms(struct request *r, const struct config_row *row, const char *override,
                         const char *default_value,
                         struct describe_configs_response_describe_configs_resource_result *c)
{
    const char *bkey = broker_synonym(row->name);
    RESP_ARRAY(r, c->synonyms, 2);
    if (c->synonyms == NULL)
        return;
    int n = 0;
    if (override != NULL) {
        c->synonyms[n].name = kstr_of(row->name);
        c->synonyms[n].value = kstr_of(request_strdup(r, override));
        c->synonyms[n].source = SOURCE_DYNAMIC_TOPIC;
        n++;
    }
    if (bkey != NULL) {
        c->synonyms[n].name = kstr_of(bkey);
        c->synonyms[n].value = kstr_of(request_strdup(r, default_value));
        c->synonyms[n].source = SOURCE_DEFAULT;
        n++;
    }
    c->n_synonyms = n;
}

static bool wanted(const struct describe_configs_request_describe_configs_resource *res, const char *name)
{
    if (res->n_configuration_keys < 0)
        return true;
    for (int32_t i = 0; i < res->n_configuration_keys; i++)
        if (res->configuration_keys[i].ptr && strcmp(res->configuration_keys[i].ptr, name) == 0)
            return true;
    return false;
}

static const char *override_of(const struct topic *t, const char *name)
{
    for (int i = 0; i < t->noverrides; i++)
        if (strcmp(t->overrides[i].key, name) == 0)
            return t->overrides[i].value;
    return NULL;
}

static void describe_one(struct broker *b, struct request *r, bool include_synonyms,
                         const struct describe_configs_request_describe_configs_resource *res,
                         struct describe_configs_response_describe_configs_result *out)
{
    out->resource_type = res->resource_type;
    out->resource_name = res->resource_name.ptr ? res->resource_name : kstr_of("");
    out->error_message = kstr_null();
    struct config_row rows[32], defaults[32];
    int n;
    struct topic *t = NULL;
    if (res->resource_type == RESOURCE_TOPIC) {
        t = topic_find_name(b, res->resource_name);
        if (t == NULL) {
            out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            out->error_message = kstr_of("Topic does not exist");
            return;
        }
        n = topic_rows(t, rows);
        if (include_synonyms) {
            /* The same rows as the topic would have without overrides, in the same order. */
            struct topic plain = {.cfg = b->cfg.log};
            topic_rows(&plain, defaults);
        }
    } else if (res->resource_type == RESOURCE_BROKER) {
        n = broker_rows(b, rows);
    } else {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = kstr_of("Unsupported resource type");
        return;
    }
    RESP_ARRAY(r, out->configs, n);
    if (out->configs == NULL)
        return;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!wanted(res, rows[i].name))
            continue;
        struct describe_configs_response_describe_configs_resource_result *c = &out->configs[k++];
        const char *ov = t ? override_of(t, rows[i].name) : NULL;
        c->name = kstr_of(rows[i].name);
        c->value = kstr_of(request_strdup(r, ov ? ov : rows[i].value));
        c->read_only = t == NULL;
        c->config_source = t ? (ov ? SOURCE_DYNAMIC_TOPIC : SOURCE_DEFAULT) : SOURCE_STATIC_BROKER;
        c->is_sensitive = false;
        c->config_type = rows[i].type;
        c->documentation = kstr_null();
        c->n_synonyms = 0;
        if (t != NULL && include_synonyms)
            add_synonyms(r, &rows[i], ov, defaults[i].value, c);
    }
    out->n_configs = k;
}

enum request_status handle_describe_configs(struct broker *b, struct request *r)
{
    struct describe_configs_request *req = r->body;
    struct describe_configs_response *resp = r->resp;
    int32_t n = req->n_resources > 0 ? req->n_resources : 0;
    RESP_ARRAY(r, resp->results, n);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    resp->n_results = n;
    for (int32_t i = 0; i < n; i++)
        describe_one(b, r, req->include_synonyms,
                     &req->resources[i], &resp->results[i]);
    return REQUEST_DONE;
}
