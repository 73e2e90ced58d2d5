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

struct broker_key_def {
    const char *name;
    enum config_type type;
    const char *default_value;          /* NULL: Kafka has none (shown as null) */
    int mode;
    int64_t to_ms;                      /* a synonym in hours/minutes: factor to the topic's ms */
    const struct topic_config_def *check_as; /* validated as this topic config (dynamic log keys) */
};

/* The catalog: every topic config, in name order. */
extern const struct topic_config_def config_catalog_topics[];
extern const int config_catalog_ntopics;
extern const struct broker_key_def config_catalog_broker[];
extern const int config_catalog_nbroker;

const struct topic_config_def *config_catalog_topic(const char *name);
const struct broker_key_def *config_catalog_broker_key(const char *name);

/* Checks value against def as Kafka's ConfigDef does. 0, or -1 with Kafka's message
 * ("Invalid value v for configuration k: ...") in msg; reported_name names the key in it. */
int config_catalog_check(const struct topic_config_def *def, const char *reported_name,
                         const char *value, char *msg, size_t msglen);
/* A topic config key and value as CreateTopics / AlterConfigs take them: KERR_NONE, or
 * KERR_INVALID_CONFIG with Kafka's message (unknown name, bad value, compaction refused). */
int config_catalog_topic_check(const char *name, const char *value, char *msg, size_t msglen);
/* Sets what an already checked value means for the log (implemented keys only). */
void config_catalog_topic_apply(struct log_config *cfg, const struct topic_config_def *def,
                                const char *value);

/* APPEND (append=true) or SUBTRACT of a comma list to a list value (Kafka's semantics:
 * appended items not already there, every subtracted item removed). -1 if out is too small. */
int config_catalog_list_op(const char *current, const char *operand, bool append, char *out,
                           size_t outlen);

#endif
