/* config_catalog: the one table of Kafka 4.x topic configs (type, default, validator, broker
 * synonyms, whether gregor implements the effect) and of the broker keys they fall back to.
 * CreateTopics, AlterConfigs, IncrementalAlterConfigs and DescribeConfigs all go through it. */
#ifndef GREGOR_BROKER_CONFIG_CATALOG_H
#define GREGOR_BROKER_CONFIG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"

/* DescribeConfigs' ConfigType codes (v3+). */
enum config_type {
    CONFIG_TYPE_BOOLEAN = 1,
    CONFIG_TYPE_STRING = 2,
    CONFIG_TYPE_INT = 3,
    CONFIG_TYPE_SHORT = 4,
    CONFIG_TYPE_LONG = 5,
    CONFIG_TYPE_DOUBLE = 6,
    CONFIG_TYPE_LIST = 7,
    CONFIG_TYPE_CLASS = 8,
    CONFIG_TYPE_PASSWORD = 9,
};

/* DescribeConfigs' ConfigSource codes. */
enum config_source {
    CONFIG_SOURCE_DYNAMIC_TOPIC = 1,
    CONFIG_SOURCE_DYNAMIC_BROKER = 2,
    CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER = 3,
    CONFIG_SOURCE_STATIC_BROKER = 4,
    CONFIG_SOURCE_DEFAULT = 5,
};

enum config_check {
    CHECK_NONE,
    CHECK_RANGE,           /* min..max (ConfigDef.Range) */
    CHECK_GZIP_LEVEL,      /* 1..9 or -1 */
    CHECK_ONE_OF,          /* ValidString.in(one_of) */
    CHECK_LIST_OF,         /* ValidList.in(one_of) */
    CHECK_THROTTLED,       /* "*" or partition:broker,... */
};

#define CONFIG_SYNONYMS_MAX 3

struct topic_config_def {
    const char *name;
    enum config_type type;
    const char *default_value;          /* Kafka's, as DescribeConfigs shows it */
    enum config_check check;
    int64_t min, max;                   /* CHECK_RANGE (double keys: whole bounds) */
    const char *const *one_of;          /* CHECK_ONE_OF / CHECK_LIST_OF, NULL-terminated */
    const char *synonyms[CONFIG_SYNONYMS_MAX]; /* broker keys it falls back to, in order */
    bool implemented;                   /* gregor applies its effect (else stored, reported) */
};

#define BROKER_KEY_READ_ONLY 0
#define BROKER_KEY_DYNAMIC 1            /* per broker and cluster-wide, as Kafka's */
#define BROKER_KEY_STARTUP 2            /* server.properties only: not in DescribeConfigs,
                                         * not alterable (gregor's own, or a Kafka key that has
                                         * no meaning here and is not described yet) */
#define BROKER_KEY_QUOTA 3              /* Kafka's DynamicConfig.Broker quota keys: set per
                                         * broker or cluster-wide only (server.properties does
                                         * not know them), described only when set, and then
                                         * read-only as Kafka 3.9 reports them */

/* Where server.properties / --override puts a broker key's value. */
enum broker_key_store {
    BROKER_STORE_NONE,      /* accepted, no field: no effect here, or only through its topic */
    BROKER_STORE_I32,       /* int32_t at offset in struct broker_config */
    BROKER_STORE_I64,       /* int64_t at offset */
    BROKER_STORE_BOOL,      /* bool at offset */
    BROKER_STORE_SPECIAL,   /* config.c's own parser (listeners, log.dirs, enums, ...) */
};

/* One row per broker key: everything parsing, validation, DescribeConfigs and the topic
 * defaults need to know about it. */
struct broker_key_def {
    const char *name;
    enum config_type type;              /* as DescribeConfigs reports it */
    const char *default_value;          /* Kafka's, as DescribeConfigs shows it; NULL: none */
    int mode;                           /* BROKER_KEY_READ_ONLY / _DYNAMIC / _STARTUP / _QUOTA */
    enum broker_key_store store;
    size_t offset;                      /* BROKER_STORE_I32/I64/BOOL: into struct broker_config */
    int64_t min, max;                   /* BROKER_STORE_I32/I64: accepted range, in the key's unit */
    int64_t scale;                      /* unit to the field's (hours -> ms); 1 for most */
    const struct topic_config_def *topic; /* the topic config it is a synonym of, or NULL */
};

/* The catalog: every topic config, in name order. */
extern const struct topic_config_def config_catalog_topics[];
extern const int config_catalog_ntopics;
extern const struct broker_key_def config_catalog_broker[];
extern const int config_catalog_nbroker;

const struct topic_config_def *config_catalog_topic(const char *name);
/* A key DescribeConfigs shows and AlterConfigs knows (NULL for BROKER_KEY_STARTUP ones). */
const struct broker_key_def *config_catalog_broker_key(const char *name);
/* Any key server.properties accepts with a meaning, BROKER_KEY_STARTUP ones included. */
const struct broker_key_def *config_catalog_broker_key_any(const char *name);
/* The topic config a broker key's values are checked as: its topic's, when it is that topic
 * config's first (dynamic) synonym; NULL for the others (log.retention.hours, ...). */
const struct topic_config_def *config_catalog_checked_as(const struct broker_key_def *def);
/* Whether gregor applies the key (a field of its own, or the topic config it stands for). */
bool config_catalog_broker_applied(const struct broker_key_def *def);

/* Checks value against def as Kafka's ConfigDef does. 0, or -1 with Kafka's message
 * ("Invalid value v for configuration k: ...") in msg; reported_name names the key in it. */
int config_catalog_check(const struct topic_config_def *def, const char *reported_name,
                         const char *value, char *msg, size_t msglen);
/* A topic config key and value as CreateTopics / AlterConfigs take them: KERR_NONE, or
 * KERR_INVALID_CONFIG with Kafka's message (unknown name, bad value, compaction refused). */
int config_catalog_topic_check(const char *name, const char *value, char *msg, size_t msglen);
/* KERR_INVALID_CONFIG: value is longer than a topic override keeps (struct topic_config_kv). */
int config_catalog_too_long(const char *name, const char *value, char *msg, size_t msglen);
/* Sets what an already checked value means for the log (implemented keys only). */
void config_catalog_topic_apply(struct log_config *cfg, const struct topic_config_def *def,
                                const char *value);

/* APPEND (append=true) or SUBTRACT of a comma list to a list value (Kafka's semantics:
 * appended items not already there, every subtracted item removed). -1 if out is too small. */
int config_catalog_list_op(const char *current, const char *operand, bool append, char *out,
                           size_t outlen);

#endif
