/* Unit tests for broker/config: Kafka keys, units, bad values, cross-key rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "broker/broker.h"
#include "broker/config_catalog.h"

static void test_defaults_and_keys(void **state)
{
    (void)state;
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    assert_int_equal(c.listener_port, 9092);
    assert_string_equal(c.listener_host, "127.0.0.1");
    assert_string_equal(c.log_dirs[0], "data");
    assert_int_equal(broker_config_set(&c, "listeners", "PLAINTEXT://:19092", err, sizeof(err)), 0);
    assert_int_equal(c.listener_port, 19092);
    assert_string_equal(c.listener_host, "");
    assert_int_equal(broker_config_set(&c, "log.retention.hours", "2", err, sizeof(err)), 0);
    assert_int_equal(c.log.retention_ms, 2 * 3600000LL);
    assert_int_equal(broker_config_set(&c, "log.dirs", "/a, /b", err, sizeof(err)), 0);
    assert_int_equal(c.n_log_dirs, 2);
    assert_string_equal(c.log_dirs[1], "/b");
    /* log.dir does not override an explicit log.dirs. */
    assert_int_equal(broker_config_set(&c, "log.dir", "/c", err, sizeof(err)), 0);
    assert_string_equal(c.log_dirs[0], "/a");
    /* Known-but-meaningless and unknown keys are accepted (with a log line). */
    assert_int_equal(broker_config_set(&c, "num.io.threads", "8", err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&c, "no.such.key", "1", err, sizeof(err)), 0);
}

static void test_finer_retention_key_wins(void **state)
{
    (void)state;
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    assert_int_equal(broker_config_set(&c, "log.retention.ms", "1234", err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&c, "log.retention.hours", "1", err, sizeof(err)), 0);
    assert_int_equal(c.log.retention_ms, 1234); /* ms wins even when given first */
    assert_int_equal(broker_config_set(&c, "log.roll.hours", "2", err, sizeof(err)), 0);
    assert_int_equal(c.log.segment_ms, 2 * 3600000LL);
    assert_int_equal(broker_config_set(&c, "log.roll.ms", "500", err, sizeof(err)), 0);
    assert_int_equal(c.log.segment_ms, 500);
}

static void test_bad_values_refused(void **state)
{
    (void)state;
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    assert_int_equal(broker_config_set(&c, "num.partitions", "zero", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "num.partitions"));
    assert_int_equal(broker_config_set(&c, "auto.create.topics.enable", "yes", err, sizeof(err)), -1);
    assert_int_equal(broker_config_set(&c, "listeners", "PLAINTEXT://nohost", err, sizeof(err)), -1);
    assert_int_equal(broker_config_set(&c, "default.replication.factor", "3", err, sizeof(err)), 0);
    assert_int_equal(broker_config_validate(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "replication"));
}

static void test_properties_file(void **state)
{
    (void)state;
    char path[] = "/tmp/gregor-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n! also a comment\n\nnode.id = 3\nlog.segment.bytes: 1048576\nmessage.max.bytes=2000\n");
    fclose(f);
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    assert_int_equal(broker_config_load_file(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.node_id, 3);
    assert_int_equal(c.log.segment_bytes, 1048576);
    assert_int_equal(c.log.max_message_bytes, 2000);
    remove(path);
}

/* Found writing fuzz_broker_configs: lines were read into an 8 KiB buffer, so a longer line
 * was cut in two and its tail parsed as a line of its own: the text of a long comment could
 * set a key (here num.partitions). Java's Properties reads lines of any length. */
static void test_properties_long_line_is_one_line(void **state)
{
    (void)state;
    char path[] = "/tmp/gregor-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# ", f);
    for (int i = 0; i < 8189; i++) /* "# " and these fill the old 8 KiB buffer */
        fputc('x', f);
    fputs("num.partitions=7\nmessage.max.bytes=2000\n", f);
    fclose(f);
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    int32_t before = c.num_partitions;
    assert_int_equal(broker_config_load_file(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.num_partitions, before);
    assert_int_equal(c.log.max_message_bytes, 2000);
    remove(path);
}

/* The dynamic configs file: values are %-encoded by the writer; a '%' not followed by two hex
 * digits, a %00 (which cut the value short) or a NUL byte (which ended the file there, the
 * lines after it lost) make the file malformed, as a line that is not "broker|default k=v". */
static void test_dynamic_configs_file_parse(void **state)
{
    (void)state;
    static struct broker_props broker, dflt;
    int bad;
    const char ok[] = "# header\nbroker log.retention.ms=3600000\n\ndefault sasl.x=a%20b%3Dc\n";
    assert_int_equal(dynamic_configs_parse(ok, sizeof(ok) - 1, &broker, &dflt, &bad), 0);
    assert_int_equal(broker.n, 1);
    assert_string_equal(broker_props_get(&broker, "log.retention.ms"), "3600000");
    assert_string_equal(broker_props_get(&dflt, "sasl.x"), "a b=c");
    const char *bad_files[] = {"broker a=1%002\n", "broker a=%zz\n", "broker a=%2\n",
                               "broker a=% 41\n", "nobody a=1\n", "broker a\n"};
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        assert_int_equal(dynamic_configs_parse(bad_files[i], strlen(bad_files[i]), &broker, &dflt, &bad), -1);
        assert_int_equal(bad, 1);
        assert_int_equal(broker.n + dflt.n, 0);
    }
    const char nul[] = "broker a=1\n\nbroker b=2\0\nbroker c=3\n";
    assert_int_equal(dynamic_configs_parse(nul, sizeof(nul) - 1, &broker, &dflt, &bad), -1);
    assert_int_equal(bad, 3);
}

/* The broker keys' one table (broker/config_catalog.c) walked whole, so it cannot drift from
 * the topic table, the parser or broker_config_defaults(). */
static bool differs_from_kafka(const char *name)
{
    /* Kafka's -1 means "unset" (a KRaft node must be given one); gregor runs as node 0. */
    return strcmp(name, "node.id") == 0 || strcmp(name, "broker.id") == 0;
}

static size_t field_size(const struct broker_key_def *def)
{
    return def->store == BROKER_STORE_I32 ? sizeof(int32_t)
           : def->store == BROKER_STORE_I64 ? sizeof(int64_t) : sizeof(bool);
}

static void test_catalog_one_table(void **state)
{
    (void)state;
    char err[256];
    for (int i = 0; i < config_catalog_nbroker; i++) {
        const struct broker_key_def *def = &config_catalog_broker[i];
        /* no key twice, and each one found by name */
        for (int j = 0; j < i; j++)
            if (strcmp(config_catalog_broker[j].name, def->name) == 0)
                fail_msg("broker key %s twice", def->name);
        assert_ptr_equal(config_catalog_broker_key_any(def->name), def);
        assert_true(def->scale >= 1);
        if (def->store == BROKER_STORE_I32 || def->store == BROKER_STORE_I64) {
            assert_true(def->min <= def->max);
            assert_true(def->offset + field_size(def) <= sizeof(struct broker_config));
        }
        /* a synonym's link resolves: the topic config lists the key among its synonyms */
        if (def->topic != NULL) {
            bool listed = false;
            for (int k = 0; k < CONFIG_SYNONYMS_MAX && def->topic->synonyms[k]; k++)
                listed = listed || strcmp(def->topic->synonyms[k], def->name) == 0;
            if (!listed)
                fail_msg("%s links to topic config %s, which does not list it", def->name,
                         def->topic->name);
        }
        if (def->default_value == NULL)
            continue;
        /* every key parses its own default (node.id: gregor requires a real node id) */
        struct broker_config fresh, set;
        broker_config_defaults(&fresh);
        broker_config_defaults(&set);
        int rc = broker_config_set(&set, def->name, def->default_value, err, sizeof(err));
        if (strcmp(def->name, "node.id") == 0) {
            assert_int_equal(rc, -1);
            continue;
        }
        if (rc != 0)
            fail_msg("%s does not parse its default %s: %s", def->name, def->default_value, err);
        /* and for a key gregor applies, Kafka's default is what broker_config_defaults() has */
        if (def->store == BROKER_STORE_I32 || def->store == BROKER_STORE_I64 ||
            def->store == BROKER_STORE_BOOL) {
            bool same = memcmp((char *)&fresh + def->offset, (char *)&set + def->offset,
                               field_size(def)) == 0;
            if (same == differs_from_kafka(def->name))
                fail_msg("%s: default %s and broker_config_defaults() %s", def->name,
                         def->default_value, same ? "agree (drop the exception)" : "differ");
        }
    }
    for (int i = 0; i < config_catalog_ntopics; i++) {
        const struct topic_config_def *t = &config_catalog_topics[i];
        for (int j = 0; j < i; j++)
            assert_string_not_equal(config_catalog_topics[j].name, t->name);
        assert_ptr_equal(config_catalog_topic(t->name), t);
        /* every synonym is a broker key that links back, the first one checked as the topic */
        for (int k = 0; k < CONFIG_SYNONYMS_MAX && t->synonyms[k] != NULL; k++) {
            const struct broker_key_def *def = config_catalog_broker_key(t->synonyms[k]);
            if (def == NULL || def->topic != t)
                fail_msg("%s's synonym %s does not link back", t->name, t->synonyms[k]);
            assert_ptr_equal(config_catalog_checked_as(def), k == 0 ? t : NULL);
            assert_true(config_catalog_broker_applied(def) || !t->implemented);
        }
    }
    /* Keys only server.properties takes are neither described nor alterable, still parsed. */
    assert_null(config_catalog_broker_key("gregor.request.read.timeout.ms"));
    struct broker_config c;
    broker_config_defaults(&c);
    assert_int_equal(broker_config_set(&c, "gregor.request.read.timeout.ms", "5", err, sizeof(err)), 0);
    assert_int_equal(c.request_read_timeout_ms, 5);
    assert_int_equal(broker_config_set(&c, "gregor.request.read.timeout.ms", "0", err, sizeof(err)), -1);
    assert_string_equal(err, "Invalid value 0 for configuration gregor.request.read.timeout.ms: "
                             "Value must be at least 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_keys),
        cmocka_unit_test(test_bad_values_refused),
        cmocka_unit_test(test_finer_retention_key_wins),
        cmocka_unit_test(test_properties_file),
        cmocka_unit_test(test_properties_long_line_is_one_line),
        cmocka_unit_test(test_dynamic_configs_file_parse),
        cmocka_unit_test(test_catalog_one_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
