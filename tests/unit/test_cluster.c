/* Unit tests for the cluster layer's pure parts: zookeeper.connect parsing (hosts, chroot),
 * Kafka's /brokers/ids/<id> JSON written and read back (and a Kafka-written one read), and the
 * zookeeper.* broker keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "cluster/zk.h"

static void test_connect_string(void **state)
{
    (void)state;
    char hosts[256], chroot[256];
    assert_int_equal(zk_connect_string_parse("h1:2181,h2:2182/kafka/prod", hosts, sizeof(hosts),
                                             chroot, sizeof(chroot)), 0);
    assert_string_equal(hosts, "h1:2181,h2:2182");
    assert_string_equal(chroot, "/kafka/prod");
    assert_int_equal(zk_connect_string_parse("localhost:2181", hosts, sizeof(hosts), chroot,
                                             sizeof(chroot)), 0);
    assert_string_equal(hosts, "localhost:2181");
    assert_string_equal(chroot, "");
    /* A trailing slash, or "/" alone, is no chroot of its own. */
    assert_int_equal(zk_connect_string_parse("h:1/kafka/", hosts, sizeof(hosts), chroot,
                                             sizeof(chroot)), 0);
    assert_string_equal(chroot, "/kafka");
    assert_int_equal(zk_connect_string_parse("h:1/", hosts, sizeof(hosts), chroot,
                                             sizeof(chroot)), 0);
    assert_string_equal(chroot, "");
    assert_int_equal(zk_connect_string_parse("/kafka", hosts, sizeof(hosts), chroot,
                                             sizeof(chroot)), -1);
    assert_int_equal(zk_connect_string_parse("h:1/a//b", hosts, sizeof(hosts), chroot,
                                             sizeof(chroot)), -1);
    char small[4];
    assert_int_equal(zk_connect_string_parse("host:2181", small, sizeof(small), chroot,
                                             sizeof(chroot)), -1);
}

static void test_broker_json_round_trip(void **state)
{
    (void)state;
    char json[1024], host[256];
    int32_t port = 0;
    int n = cluster_broker_json(json, sizeof(json), "PLAINTEXT", "10.0.0.7", 19092, 1700000000123LL);
    assert_true(n > 0 && (size_t)n == strlen(json));
    assert_non_null(strstr(json, "\"version\":5"));
    assert_non_null(strstr(json, "\"timestamp\":\"1700000000123\""));
    assert_non_null(strstr(json, "\"endpoints\":[\"PLAINTEXT://10.0.0.7:19092\"]"));
    assert_int_equal(cluster_broker_parse(json, "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.0.0.7");
    assert_int_equal(port, 19092);
    char tiny[16];
    assert_int_equal(cluster_broker_json(tiny, sizeof(tiny), "PLAINTEXT", "h", 1, 0), -1);
}

static void test_broker_json_as_kafka_writes_it(void **state)
{
    (void)state;
    char host[256];
    int32_t port = 0;
    /* Kafka with two listeners: the one asked for wins over host/port. */
    const char *kafka = "{\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\","
                        "\"INTERNAL\":\"PLAINTEXT\"},\"endpoints\":[\"INTERNAL://10.1.1.1:9093\","
                        "\"PLAINTEXT://b1.example:9092\"],\"jmx_port\":9999,\"features\":{},"
                        "\"host\":\"b1.example\",\"timestamp\":\"1543300074836\",\"port\":9092,"
                        "\"version\":5}";
    assert_int_equal(cluster_broker_parse(kafka, "INTERNAL", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.1.1.1");
    assert_int_equal(port, 9093);
    assert_int_equal(cluster_broker_parse(kafka, "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "b1.example");
    assert_int_equal(port, 9092);
    /* An IPv6 endpoint, and one with only host/port (version 1). */
    assert_int_equal(cluster_broker_parse("{\"endpoints\":[\"PLAINTEXT://[::1]:9092\"]}",
                                          "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(cluster_broker_parse("{\"host\":\"old\",\"port\":9092,\"version\":1}",
                                          "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "old");
    /* Nothing usable: refused, not guessed. */
    assert_int_equal(cluster_broker_parse("{\"endpoints\":[\"SSL://h:1\"],\"host\":null,"
                                          "\"port\":-1}", "PLAINTEXT", host, sizeof(host), &port),
                     -1);
}

static void test_zookeeper_keys(void **state)
{
    (void)state;
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    assert_string_equal(c.zookeeper_connect, "");
    assert_int_equal(c.zookeeper_session_timeout_ms, 18000);
    assert_int_equal(c.zookeeper_connection_timeout_ms, -1);
    assert_int_equal(broker_config_set(&c, "zookeeper.connect", "a:1,b:2/kafka", err, sizeof(err)), 0);
    assert_string_equal(c.zookeeper_connect, "a:1,b:2/kafka");
    assert_int_equal(broker_config_set(&c, "zookeeper.session.timeout.ms", "6000", err, sizeof(err)), 0);
    assert_int_equal(c.zookeeper_session_timeout_ms, 6000);
    assert_int_equal(broker_config_set(&c, "zookeeper.connection.timeout.ms", "2500", err, sizeof(err)), 0);
    assert_int_equal(c.zookeeper_connection_timeout_ms, 2500);
    assert_int_equal(broker_config_set(&c, "zookeeper.session.timeout.ms", "0", err, sizeof(err)), -1);
    assert_int_equal(broker_config_set(&c, "zookeeper.connect", "/only-a-chroot", err, sizeof(err)), -1);
    assert_string_equal(c.zookeeper_connect, "a:1,b:2/kafka");
}

/* Kafka's own example in AdminUtils (5 brokers, 10 partitions, RF 3, start index and shift 0). */
static void test_assignment_as_kafka(void **state)
{
    (void)state;
    int32_t ids[5] = {0, 1, 2, 3, 4};
    int32_t a[10 * 3];
    cluster_assign_replicas(ids, 5, 10, 3, 0, 0, a);
    static const int32_t want[10][3] = {
        {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
        {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2},
    };
    for (int p = 0; p < 10; p++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(a[p * 3 + j], want[p][j]);
    /* RF 1 from a start index: round robin over the (sorted) ids */
    int32_t sparse[3] = {1, 5, 9};
    int32_t b[6];
    cluster_assign_replicas(sparse, 3, 6, 1, 2, 1, b);
    static const int32_t want_b[6] = {9, 1, 5, 9, 1, 5};
    for (int p = 0; p < 6; p++)
        assert_int_equal(b[p], want_b[p]);
}

static void test_topic_and_state_json(void **state)
{
    (void)state;
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 17);
    int32_t a[4] = {1, 2, 2, 3};
    char out[512];
    int n = cluster_topic_json(out, sizeof(out), id, 2, 2, a);
    assert_true(n > 0);
    assert_string_equal(out, "{\"partitions\":{\"0\":[1,2],\"1\":[2,3]},\"topic_id\":"
                             "\"ABEiM0RVZneImaq7zN3u_w\",\"adding_replicas\":{},"
                             "\"removing_replicas\":{},\"version\":3}");
    assert_int_equal(cluster_topic_json(out, 40, id, 2, 2, a), -1); /* bounded */
    int32_t isr[1] = {3};
    n = cluster_state_json(out, sizeof(out), 7, 3, 2, isr, 1);
    assert_true(n > 0);
    assert_string_equal(out, "{\"controller_epoch\":7,\"leader\":3,\"version\":1,"
                             "\"leader_epoch\":2,\"isr\":[3]}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_string),
        cmocka_unit_test(test_broker_json_round_trip),
        cmocka_unit_test(test_broker_json_as_kafka_writes_it),
        cmocka_unit_test(test_zookeeper_keys),
        cmocka_unit_test(test_assignment_as_kafka),
        cmocka_unit_test(test_topic_and_state_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
