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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_keys),
        cmocka_unit_test(test_bad_values_refused),
        cmocka_unit_test(test_finer_retention_key_wins),
        cmocka_unit_test(test_properties_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
