/* Unit tests for src/cluster/znode.c: Kafka's znode values written byte for byte as Kafka 3.x
 * writes them, read back, read as Kafka (and other writers: spaces, any key order) write them,
 * and malformed ones refused without reading past their length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/znode.h"

#define S(x) x, strlen(x)

static void test_broker_json_round_trip(void **state)
{
    (void)state;
    char json[1024], host[256];
    int32_t port = 0;
    int n = znode_broker_json(json, sizeof(json), "PLAINTEXT", "10.0.0.7", 19092, NULL,
                              1700000000123LL);
    assert_true(n > 0 && (size_t)n == strlen(json));
    assert_string_equal(json, "{\"features\":{},\"listener_security_protocol_map\":{\"PLAINTEXT\":"
                              "\"PLAINTEXT\"},\"endpoints\":[\"PLAINTEXT://10.0.0.7:19092\"],"
                              "\"jmx_port\":-1,\"port\":19092,\"host\":\"10.0.0.7\",\"version\":5,"
                              "\"timestamp\":\"1700000000123\"}");
    assert_int_equal(znode_broker_parse(json, (size_t)n, "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.0.0.7");
    assert_int_equal(port, 19092);
    char tiny[16];
    assert_int_equal(znode_broker_json(tiny, sizeof(tiny), "PLAINTEXT", "h", 1, NULL, 0), -1);
    char rack[64];
    assert_int_equal(znode_broker_rack(json, (size_t)n, rack, sizeof(rack)), 0); /* none */
}

/* Several listeners, as Kafka 3.9 writes them: the map and endpoints in listeners order,
 * host/port the PLAINTEXT endpoint's (null/-1 without one); a reader takes any listener's. */
static void test_broker_json_endpoints(void **state)
{
    (void)state;
    char json[1024], host[256];
    int32_t port = 0;
    struct znode_endpoint eps[] = {{"INTERNAL", "SASL_SSL", "10.0.0.7", 9094},
                                   {"PLAINTEXT", "PLAINTEXT", "h", 9092},
                                   {"V6", "SSL", "::1", 9095}};
    int n = znode_broker_json_endpoints(json, sizeof(json), eps, 3, NULL, 5);
    assert_true(n > 0 && (size_t)n == strlen(json));
    assert_string_equal(json, "{\"features\":{},\"listener_security_protocol_map\":{\"INTERNAL\":"
                              "\"SASL_SSL\",\"PLAINTEXT\":\"PLAINTEXT\",\"V6\":\"SSL\"},"
                              "\"endpoints\":[\"INTERNAL://10.0.0.7:9094\",\"PLAINTEXT://h:9092\","
                              "\"V6://[::1]:9095\"],\"jmx_port\":-1,\"port\":9092,\"host\":\"h\","
                              "\"version\":5,\"timestamp\":\"5\"}");
    assert_int_equal(znode_broker_parse(json, (size_t)n, "INTERNAL", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.0.0.7");
    assert_int_equal(port, 9094);
    assert_int_equal(znode_broker_parse(json, (size_t)n, "V6", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    n = znode_broker_json_endpoints(json, sizeof(json), eps, 1, NULL, 5);
    assert_non_null(strstr(json, "\"port\":-1,\"host\":null,"));
}

/* broker.rack: Kafka's BrokerIdZNode carries "rack" only when the broker has one (version 3+),
 * as a JSON string (escaped); readers take it back unescaped, "rack":null as none. */
static void test_broker_json_rack(void **state)
{
    (void)state;
    char json[1024], rack[64];
    int n = znode_broker_json(json, sizeof(json), "PLAINTEXT", "h", 9092, "us-east-1\"a\"", 7);
    assert_true(n > 0 && (size_t)n == strlen(json));
    assert_non_null(strstr(json, "\"rack\":\"us-east-1\\\"a\\\"\""));
    assert_int_equal(znode_broker_rack(json, (size_t)n, rack, sizeof(rack)), 1);
    assert_string_equal(rack, "us-east-1\"a\"");
    n = znode_broker_json(json, sizeof(json), "PLAINTEXT", "h", 9092, "", 7);
    assert_null(strstr(json, "rack")); /* an empty broker.rack is none */
    const char *kafka = "{\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\"},"
                        "\"endpoints\":[\"PLAINTEXT://b1:9092\"],\"rack\":\"dc1\",\"jmx_port\":-1,"
                        "\"features\":{},\"host\":\"b1\",\"timestamp\":\"1\",\"port\":9092,"
                        "\"version\":5}";
    assert_int_equal(znode_broker_rack(S(kafka), rack, sizeof(rack)), 1);
    assert_string_equal(rack, "dc1");
    assert_int_equal(znode_broker_rack(S("{\"rack\":null,\"port\":1}"), rack, sizeof(rack)), 0);
    assert_int_equal(znode_broker_rack(S("{\"rack\":7}"), rack, sizeof(rack)), -1);
    char tiny[3];
    assert_int_equal(znode_broker_rack(S(kafka), tiny, sizeof(tiny)), -1); /* bounded */
    assert_int_equal(znode_broker_rack(kafka, 60, rack, sizeof(rack)), -1); /* truncated */
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
    assert_int_equal(znode_broker_parse(S(kafka), "INTERNAL", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.1.1.1");
    assert_int_equal(port, 9093);
    assert_int_equal(znode_broker_parse(S(kafka), "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "b1.example");
    assert_int_equal(port, 9092);
    /* An IPv6 endpoint, and one with only host/port (version 1), spaced out. */
    assert_int_equal(znode_broker_parse(S("{\"endpoints\":[\"PLAINTEXT://[::1]:9092\"]}"),
                                        "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(znode_broker_parse(S("{ \"host\" : \"old\" ,\n \"port\" : 9092, \"version\":1 }"),
                                        "PLAINTEXT", host, sizeof(host), &port), 0);
    assert_string_equal(host, "old");
    /* Nothing usable: refused, not guessed. */
    assert_int_equal(znode_broker_parse(S("{\"endpoints\":[\"SSL://h:1\"],\"host\":null,"
                                          "\"port\":-1}"), "PLAINTEXT", host, sizeof(host), &port),
                     -1);
    assert_int_equal(znode_broker_parse(S("{\"endpoints\":[\"PLAINTEXT://h:99999\"]}"),
                                        "PLAINTEXT", host, sizeof(host), &port), -1);
    /* A key's name inside another member's value is not that key. */
    assert_int_equal(znode_broker_parse(S("{\"x\":\"\\\"host\\\":\\\"evil\\\"\",\"port\":1}"),
                                        "PLAINTEXT", host, sizeof(host), &port), -1);
}

static void test_controller_and_cluster_id(void **state)
{
    (void)state;
    char out[128], id[64];
    int n = znode_controller_json(out, sizeof(out), 2, 1700000000000LL);
    assert_string_equal(out, "{\"version\":1,\"brokerid\":2,\"timestamp\":\"1700000000000\"}");
    int32_t b = -1;
    assert_int_equal(znode_controller_parse(out, (size_t)n, &b), 0);
    assert_int_equal(b, 2);
    assert_int_equal(znode_controller_parse(S("{\"brokerid\":\"x\"}"), &b), -1);
    assert_int_equal(znode_controller_parse(S("{\"brokerid\":-3}"), &b), -1);
    n = znode_cluster_id_json(out, sizeof(out), "q1Sh-9_ISia_zwGINzRvyQ");
    assert_string_equal(out, "{\"version\":\"1\",\"id\":\"q1Sh-9_ISia_zwGINzRvyQ\"}");
    assert_int_equal(znode_cluster_id_parse(out, (size_t)n, id, sizeof(id)), 0);
    assert_string_equal(id, "q1Sh-9_ISia_zwGINzRvyQ");
    assert_int_equal(znode_cluster_id_parse(S("{\"id\":\"\"}"), id, sizeof(id)), -1);
    /* Truncated: the length bounds the reading, not a NUL. */
    assert_int_equal(znode_cluster_id_parse(out, 12, id, sizeof(id)), -1);
}

struct seen {
    int calls;
    int32_t rep[8][8];
    int nrep[8];
};

static void on_part(void *arg, int32_t p, const int32_t *replicas, int n)
{
    struct seen *s = arg;
    s->calls++;
    if (p < 8 && n <= 8) {
        memcpy(s->rep[p], replicas, sizeof(int32_t) * (size_t)n);
        s->nrep[p] = n;
    }
}

static void test_topic_json(void **state)
{
    (void)state;
    uint8_t id[16], back[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 17);
    int32_t a[4] = {1, 2, 2, 3};
    char out[512];
    int n = znode_topic_json(out, sizeof(out), id, 2, NULL, a, 2);
    assert_true(n > 0);
    assert_string_equal(out, "{\"partitions\":{\"0\":[1,2],\"1\":[2,3]},\"topic_id\":"
                             "\"ABEiM0RVZneImaq7zN3u_w\",\"adding_replicas\":{},"
                             "\"removing_replicas\":{},\"version\":3}");
    struct seen s = {0};
    assert_int_equal(znode_topic_parse(out, (size_t)n, 100, back, on_part, &s), 2);
    assert_memory_equal(back, id, 16);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.nrep[1], 2);
    assert_int_equal(s.rep[1][0], 2);
    assert_int_equal(s.rep[1][1], 3);
    assert_int_equal(znode_topic_json(out, 40, id, 2, NULL, a, 2), -1); /* bounded */
    /* Variable replica counts (after a reassignment), with a stride. */
    int32_t v[6] = {1, 0, 0, 2, 3, 4};
    int32_t k[2] = {1, 3};
    n = znode_topic_json(out, sizeof(out), id, 2, k, v, 3);
    assert_true(strstr(out, "{\"0\":[1],\"1\":[2,3,4]}") != NULL);

    /* As Kafka 2.x wrote it (version 2, no topic id), in another order, spaced, with a
     * reassignment in flight (nested objects skipped). */
    const char *old = "{ \"version\" : 2, \"adding_replicas\":{\"1\":[4]},"
                      "\"partitions\" : { \"1\" : [ 2 , 4 ] , \"0\" : [1] } }";
    memset(&s, 0, sizeof(s));
    assert_int_equal(znode_topic_parse(S(old), 100, back, on_part, &s), 2);
    const uint8_t zero[16] = {0};
    assert_memory_equal(back, zero, 16);
    assert_int_equal(s.nrep[0], 1);
    assert_int_equal(s.nrep[1], 2);
    assert_int_equal(s.rep[1][1], 4);
    /* Counting only. */
    assert_int_equal(znode_topic_parse(S(old), 100, back, NULL, NULL), 2);

    /* Refused: a gap, a duplicate, more than max, none, not numbers, unbalanced, a bad id. */
    const char *bad[] = {
        "{\"partitions\":{\"0\":[1],\"2\":[1]}}",
        "{\"partitions\":{\"0\":[1],\"0\":[2]}}",
        "{\"partitions\":{}}",
        "{\"partitions\":{\"a\":[1]}}",
        "{\"partitions\":{\"0\":[x]}}",
        "{\"partitions\":{\"0\":[1]",
        "{\"partitions\":{\"0\":[1]}},",
        "{\"partitions\":[1]}",
        "{\"topic_id\":\"short\",\"partitions\":{\"0\":[1]}}",
        "{\"partitions\":{\"0\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
        "25,26,27,28,29,30,31,32,33]}}",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(znode_topic_parse(S(bad[i]), 100, back, NULL, NULL), -1);
    assert_int_equal(znode_topic_parse(S("{\"partitions\":{\"0\":[1],\"1\":[2]}}"), 1, back, NULL,
                                       NULL), -1);
}

/* A reassignment in the TopicZNode (KIP-455) and /admin/reassign_partitions. */
struct legacy_seen {
    int calls;
    char topic[64];
    int32_t partition, n, rep[8];
};

static void on_legacy(void *arg, const char *topic, int32_t partition, const int32_t *replicas,
                      int n)
{
    struct legacy_seen *s = arg;
    s->calls++;
    snprintf(s->topic, sizeof(s->topic), "%s", topic);
    s->partition = partition;
    s->n = n;
    memcpy(s->rep, replicas, sizeof(int32_t) * (size_t)(n < 8 ? n : 8));
}

static void test_topic_reassignment_json(void **state)
{
    (void)state;
    uint8_t id[16] = {0}, back[16];
    /* partition 0 moving from {1,2,3} to {2,3,4}; partition 1 not moving (stride 4) */
    int32_t counts[2] = {4, 2}, reps[8] = {2, 3, 4, 1, 5, 6, 0, 0};
    int32_t nadd[2] = {1, 0}, add[8] = {4}, nrem[2] = {1, 0}, rem[8] = {1};
    char out[512];
    int n = znode_topic_json_full(out, sizeof(out), id, 2, counts, reps, 4, nadd, add, nrem, rem);
    assert_true(n > 0);
    assert_string_equal(out, "{\"partitions\":{\"0\":[2,3,4,1],\"1\":[5,6]},\"topic_id\":"
                             "\"AAAAAAAAAAAAAAAAAAAAAA\",\"adding_replicas\":{\"0\":[4]},"
                             "\"removing_replicas\":{\"0\":[1]},\"version\":3}");
    assert_int_equal(znode_topic_parse(out, (size_t)n, 100, back, NULL, NULL), 2);
    struct seen s = {0};
    assert_int_equal(znode_topic_reassign_parse(out, (size_t)n, "adding_replicas", 2, on_part,
                                                &s), 1);
    assert_int_equal(s.nrep[0], 1);
    assert_int_equal(s.rep[0][0], 4);
    memset(&s, 0, sizeof(s));
    assert_int_equal(znode_topic_reassign_parse(out, (size_t)n, "removing_replicas", 2, on_part,
                                                &s), 1);
    assert_int_equal(s.rep[0][0], 1);
    /* absent (before version 2): none; a partition out of range or not a list: refused */
    assert_int_equal(znode_topic_reassign_parse(S("{\"partitions\":{\"0\":[1]}}"),
                                                "adding_replicas", 1, NULL, NULL), 0);
    assert_int_equal(znode_topic_reassign_parse(S("{\"adding_replicas\":{\"3\":[1]}}"),
                                                "adding_replicas", 1, NULL, NULL), -1);
    assert_int_equal(znode_topic_reassign_parse(S("{\"adding_replicas\":{\"0\":1}}"),
                                                "adding_replicas", 1, NULL, NULL), -1);
    assert_int_equal(znode_topic_reassign_parse(S("{\"adding_replicas\":[]}"),
                                                "adding_replicas", 1, NULL, NULL), -1);

    /* /admin/reassign_partitions as kafka-reassign-partitions.sh --zookeeper wrote it */
    const char *legacy = "{\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,"
                         "\"replicas\":[2,3],\"log_dirs\":[\"any\",\"any\"]},"
                         "{\"topic\":\"u\",\"partition\":7,\"replicas\":[4]}]}";
    struct legacy_seen ls = {0};
    assert_int_equal(znode_reassign_parse(S(legacy), on_legacy, &ls), 2);
    assert_int_equal(ls.calls, 2);
    assert_string_equal(ls.topic, "u");
    assert_int_equal(ls.partition, 7);
    assert_int_equal(ls.n, 1);
    assert_int_equal(ls.rep[0], 4);
    assert_int_equal(znode_reassign_parse(S("{\"version\":1,\"partitions\":[]}"), NULL, NULL), 0);
    const char *bad[] = {
        "{\"version\":1}",
        "{\"partitions\":[{\"topic\":\"t\",\"partition\":0}]}",
        "{\"partitions\":[{\"topic\":\"t\",\"partition\":-1,\"replicas\":[1]}]}",
        "{\"partitions\":[{\"partition\":0,\"replicas\":[1]}]}",
        "{\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[1]},]}",
        "{\"partitions\":[1]}",
        "{\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(znode_reassign_parse(S(bad[i]), NULL, NULL), -1);
}

static void test_state_json(void **state)
{
    (void)state;
    char out[256];
    struct znode_state st = {.controller_epoch = 7, .leader = 3, .leader_epoch = 2, .nisr = 1,
                             .isr = {3}};
    int n = znode_state_json(out, sizeof(out), &st);
    assert_string_equal(out, "{\"controller_epoch\":7,\"leader\":3,\"version\":1,"
                             "\"leader_epoch\":2,\"isr\":[3]}");
    struct znode_state back;
    assert_int_equal(znode_state_parse(out, (size_t)n, &back), 0);
    assert_int_equal(back.leader, 3);
    assert_int_equal(back.leader_epoch, 2);
    assert_int_equal(back.controller_epoch, 7);
    assert_int_equal(back.nisr, 1);
    /* An offline partition as Kafka writes it, and an ISR of three. */
    assert_int_equal(znode_state_parse(S("{\"controller_epoch\":1,\"leader\":-1,\"version\":1,"
                                         "\"leader_epoch\":4,\"isr\":[2]}"), &back), 0);
    assert_int_equal(back.leader, -1);
    assert_int_equal(znode_state_parse(S("{\"isr\":[1, 2,3],\"leader\":1,\"leader_epoch\":0,"
                                         "\"controller_epoch\":1}"), &back), 0);
    assert_int_equal(back.nisr, 3);
    assert_int_equal(back.isr[2], 3);
    const char *bad[] = {
        "{\"controller_epoch\":1,\"leader\":-2,\"leader_epoch\":0,\"isr\":[]}",
        "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":0}",
        "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":99999999999,\"isr\":[1]}",
        "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":0,\"isr\":[1,]}",
        "{\"controller_epoch\":1,\"leader\":\"1x\",\"leader_epoch\":0,\"isr\":[1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(znode_state_parse(S(bad[i]), &back), -1);
}

static void test_scanner_bounds(void **state)
{
    (void)state;
    const char *vs, *ve;
    /* Nesting past the bound is refused; within it, skipped. */
    char deep[256];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":");
    for (int i = 0; i < ZNODE_DEPTH_MAX + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < ZNODE_DEPTH_MAX + 1; i++)
        deep[n++] = ']';
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, ",\"b\":1}");
    assert_int_equal(znode_member(deep, n, "b", &vs, &ve), -1);
    assert_int_equal(znode_member(S("{\"a\":[[{\"x\":\"]}\"}]],\"b\":12}"), "b", &vs, &ve), 0);
    assert_int_equal(ve - vs, 2);
    /* Mismatched brackets, an escaped quote, a missing colon. */
    assert_int_equal(znode_member(S("{\"a\":[},\"b\":1}"), "b", &vs, &ve), -1);
    assert_int_equal(znode_member(S("{\"a\":\"x\\\"y\",\"b\":1}"), "b", &vs, &ve), 0);
    assert_int_equal(znode_member(S("{\"b\" 1}"), "b", &vs, &ve), -1);
    int64_t v;
    assert_int_equal(znode_int(S("{\"b\":\"123\"}"), "b", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(znode_int(S("{\"b\":12a}"), "b", &v), -1);
    uint8_t id[16] = {0}, back[16];
    char s[23];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(255 - i);
    znode_uuid_str(id, s);
    assert_int_equal(znode_uuid_parse(s, strlen(s), back), 0);
    assert_memory_equal(id, back, 16);
    assert_int_equal(znode_uuid_parse("AAAAAAAAAAAAAAAAAAAA*A", 22, back), -1);
}

struct kvs {
    int n;
    char key[8][ZNODE_CONFIG_KEY_MAX];
    char value[8][ZNODE_CONFIG_VALUE_MAX];
};

static void collect(void *arg, const char *key, const char *value)
{
    struct kvs *k = arg;
    assert_true(k->n < 8);
    snprintf(k->key[k->n], sizeof(k->key[0]), "%s", key);
    snprintf(k->value[k->n], sizeof(k->value[0]), "%s", value);
    k->n++;
}

static void test_config_json(void **state)
{
    (void)state;
    char json[1024];
    /* Kafka's ConfigEntityZNode, as zkCli shows a topic created with two configs. */
    const char *keys[] = {"retention.ms", "segment.bytes"}, *values[] = {"86400000", "1048576"};
    int n = znode_config_json(json, sizeof(json), keys, values, 2);
    assert_true(n > 0 && (size_t)n == strlen(json));
    assert_string_equal(json, "{\"version\":1,\"config\":{\"retention.ms\":\"86400000\","
                              "\"segment.bytes\":\"1048576\"}}");
    assert_int_equal(znode_config_json(json, sizeof(json), NULL, NULL, 0), 25);
    assert_string_equal(json, "{\"version\":1,\"config\":{}}");
    /* Quotes, backslashes, control characters escaped as Jackson does; UTF-8 as is. */
    const char *k2[] = {"a\"b", "c"}, *v2[] = {"x\\y\n\t\x01", "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"};
    n = znode_config_json(json, sizeof(json), k2, v2, 2);
    assert_string_equal(json, "{\"version\":1,\"config\":{\"a\\\"b\":\"x\\\\y\\n\\t\\u0001\","
                              "\"c\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}}");
    struct kvs got = {0};
    assert_int_equal(znode_config_parse(json, (size_t)n, collect, &got), 2);
    assert_string_equal(got.key[0], "a\"b");
    assert_string_equal(got.value[0], "x\\y\n\t\x01");
    assert_string_equal(got.value[1], v2[1]);
    char tiny[30];
    assert_int_equal(znode_config_json(tiny, sizeof(tiny), k2, v2, 2), -1);
}

static void test_config_parse_as_others_write_it(void **state)
{
    (void)state;
    struct kvs got = {0};
    /* Kafka 3.9's bytes, and with \u escapes (non-ASCII and a surrogate pair), \/ and spaces. */
    assert_int_equal(znode_config_parse(S("{\"version\":1,\"config\":{\"max.message.bytes\":\"2000\"}}"),
                                        collect, &got), 1);
    assert_string_equal(got.key[0], "max.message.bytes");
    assert_string_equal(got.value[0], "2000");
    got.n = 0;
    assert_int_equal(znode_config_parse(S(" { \"config\" : { \"k\" : \"caf\\u00e9 \\ud83d\\ude00 a\\/b\" } , "
                                          "\"version\" : 1 } "), collect, &got), 1);
    assert_string_equal(got.value[0], "caf\xc3\xa9 \xf0\x9f\x98\x80 a/b");
    assert_int_equal(znode_config_parse(S("{\"config\":{}}"), NULL, NULL), 0);
    /* Malformed: refused whole. */
    static const char *const bad[] = {
        "{\"version\":1}",                              /* no config */
        "{\"version\":1,\"config\":[]}",                /* not an object */
        "{\"config\":{\"k\":1}}",                       /* a number value */
        "{\"config\":{\"k\":null}}",
        "{\"config\":{\"k\":\"a\\u0000b\"}}",           /* NUL */
        "{\"config\":{\"k\":\"\\ud83d\"}}",             /* lone high surrogate */
        "{\"config\":{\"k\":\"\\ude00\"}}",             /* lone low surrogate */
        "{\"config\":{\"k\":\"\\x\"}}",                 /* unknown escape */
        "{\"config\":{\"k\":\"\\u12G4\"}}",
        "{\"config\":{\"k\":\"a\nb\"}}",                /* raw control character */
        "{\"config\":{\"k\":\"v\",}}",                  /* trailing comma */
        "{\"config\":{\"k\":\"v\"}",                    /* truncated */
        "{\"config\":{\"k\":\"v\"}}x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        got.n = 0;
        if (znode_config_parse(bad[i], strlen(bad[i]), collect, &got) != -1)
            fail_msg("accepted: %s", bad[i]);
    }
    /* A value one byte over the bound. */
    char big[ZNODE_CONFIG_VALUE_MAX + 64];
    int n = snprintf(big, sizeof(big), "{\"config\":{\"k\":\"");
    memset(big + n, 'v', ZNODE_CONFIG_VALUE_MAX);
    n += ZNODE_CONFIG_VALUE_MAX;
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\"}}");
    assert_int_equal(znode_config_parse(big, (size_t)n, NULL, NULL), -1);
}

/* The read-modify-write both quotas and SCRAM credentials do on /config/users/<u>: other keys
 * kept in place, set in place, new at the end, removed, empty dropped or kept, bounds. */
static void test_config_edit(void **state)
{
    (void)state;
    const char *cur = "{\"version\":1,\"config\":{\"SCRAM-SHA-256\":\"s\",\"producer_byte_rate\":\"1\"}}";
    const char *keys[] = {"producer_byte_rate", "SCRAM-SHA-512", "SCRAM-SHA-256"};
    const char *vals[] = {"2", "t", NULL};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(znode_config_edit(S(cur), keys, vals, 3, true, &out, &len), 0);
    assert_string_equal(out, "{\"version\":1,\"config\":{\"producer_byte_rate\":\"2\","
                             "\"SCRAM-SHA-512\":\"t\"}}");
    assert_int_equal(len, strlen(out));
    free(out);
    /* Nothing yet: the keys set, in order. */
    assert_int_equal(znode_config_edit(NULL, 0, keys, vals, 2, true, &out, &len), 0);
    assert_string_equal(out, "{\"version\":1,\"config\":{\"producer_byte_rate\":\"2\","
                             "\"SCRAM-SHA-512\":\"t\"}}");
    free(out);
    /* The last key removed: dropped (NULL) or written empty. */
    const char *one = "{\"version\":1,\"config\":{\"SCRAM-SHA-256\":\"s\"}}";
    assert_int_equal(znode_config_edit(S(one), &keys[2], &vals[2], 1, true, &out, &len), 0);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(znode_config_edit(S(one), &keys[2], &vals[2], 1, false, &out, &len), 0);
    assert_string_equal(out, "{\"version\":1,\"config\":{}}");
    free(out);
    /* Data that does not parse (empty included) is refused. */
    assert_int_equal(znode_config_edit("", 0, keys, vals, 1, true, &out, &len), -1);
    assert_int_equal(znode_config_edit(S("{\"config\":[]}"), keys, vals, 1, true, &out, &len), -1);
    /* ZNODE_CONFIG_KEYS_KEPT keys: one more is refused, a change in place is not. */
    size_t cap = 64 + (size_t)ZNODE_CONFIG_KEYS_KEPT * 16;
    char *full = malloc(cap);
    assert_non_null(full);
    char names[ZNODE_CONFIG_KEYS_KEPT][16];
    const char *fk[ZNODE_CONFIG_KEYS_KEPT], *fv[ZNODE_CONFIG_KEYS_KEPT];
    for (int i = 0; i < ZNODE_CONFIG_KEYS_KEPT; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        fk[i] = names[i];
        fv[i] = "v";
    }
    int n = znode_config_json(full, cap, fk, fv, ZNODE_CONFIG_KEYS_KEPT);
    assert_true(n > 0);
    assert_int_equal(znode_config_edit(full, (size_t)n, keys, vals, 1, true, &out, &len), -1);
    const char *k0 = "k0", *v0 = "w";
    assert_int_equal(znode_config_edit(full, (size_t)n, &k0, &v0, 1, true, &out, &len), 0);
    assert_non_null(strstr(out, "\"k0\":\"w\""));
    free(out);
    free(full);
}

static void test_config_change(void **state)
{
    (void)state;
    char json[256], type[64], name[256];
    int n = znode_config_change_json(json, sizeof(json), "topics", "orders");
    assert_string_equal(json, "{\"version\":2,\"entity_path\":\"topics/orders\"}");
    assert_int_equal(znode_config_change_parse(json, (size_t)n, type, sizeof(type), name,
                                               sizeof(name)), 0);
    assert_string_equal(type, "topics");
    assert_string_equal(name, "orders");
    assert_int_equal(znode_config_change_parse(S("{\"version\":2,\"entity_path\":\"brokers/<default>\"}"),
                                               type, sizeof(type), name, sizeof(name)), 0);
    assert_string_equal(type, "brokers");
    assert_string_equal(name, "<default>");
    assert_int_equal(znode_config_change_parse(S("{\"version\":1,\"entity_type\":\"topics\",\"entity_name\":\"t\"}"),
                                               type, sizeof(type), name, sizeof(name)), 0);
    assert_string_equal(name, "t");
    assert_int_equal(znode_config_change_parse(S("{\"version\":2,\"entity_path\":\"users/u/clients/c\"}"),
                                               type, sizeof(type), name, sizeof(name)), 0);
    assert_string_equal(type, "users");
    assert_string_equal(name, "u/clients/c");
    static const char *const bad[] = {
        "{\"version\":3,\"entity_path\":\"topics/t\"}", "{\"version\":2,\"entity_path\":\"topics\"}",
        "{\"version\":2,\"entity_path\":\"/t\"}", "{\"version\":2,\"entity_path\":\"topics/\"}",
        "{\"version\":2,\"entity_path\":7}", "{\"entity_path\":\"topics/t\"}",
        "{\"version\":1,\"entity_type\":\"topics\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (znode_config_change_parse(bad[i], strlen(bad[i]), type, sizeof(type), name,
                                      sizeof(name)) != -1)
            fail_msg("accepted: %s", bad[i]);
}

/* /latest_producer_id_block as Kafka 3.9's ProducerIdBlockZNode writes it, read back, read
 * with spaces and another key order, and refused when an end is not a decimal string, the
 * block is empty or backwards, or the broker is missing. */
static void test_producer_id_block(void **state)
{
    (void)state;
    char json[256];
    int n = znode_producer_id_block_json(json, sizeof(json), 2, 3000, 3999);
    assert_true(n > 0 && (size_t)n == strlen(json));
    assert_string_equal(json, "{\"version\":1,\"broker\":2,\"block_start\":\"3000\","
                              "\"block_end\":\"3999\"}");
    int32_t broker = -1;
    int64_t start = -1, end = -1;
    assert_int_equal(znode_producer_id_block_parse(json, (size_t)n, &broker, &start, &end), 0);
    assert_int_equal(broker, 2);
    assert_int_equal(start, 3000);
    assert_int_equal(end, 3999);
    assert_int_equal(znode_producer_id_block_parse(S("{ \"block_end\" : \"9223372036854775807\", "
                     "\"broker\": 0, \"block_start\":\"9223372036854774808\", \"version\":1 }"),
                     &broker, &start, &end), 0);
    assert_int_equal(broker, 0);
    assert_true(start == 9223372036854774808LL && end == INT64_MAX);
    static const char *const bad[] = {
        "",
        "{}",
        "{\"version\":1,\"broker\":1,\"block_start\":0,\"block_end\":\"999\"}",
        "{\"version\":1,\"broker\":1,\"block_start\":\"0\",\"block_end\":999}",
        "{\"version\":1,\"broker\":1,\"block_start\":\"\",\"block_end\":\"999\"}",
        "{\"version\":1,\"broker\":1,\"block_start\":\"1000\",\"block_end\":\"999\"}",
        "{\"version\":1,\"broker\":1,\"block_start\":\"-5\",\"block_end\":\"999\"}",
        "{\"version\":1,\"broker\":1,\"block_start\":\"0\",\"block_end\":\"9223372036854775808\"}",
        "{\"version\":1,\"broker\":-1,\"block_start\":\"0\",\"block_end\":\"999\"}",
        "{\"version\":1,\"block_start\":\"0\",\"block_end\":\"999\"}",
        "{\"version\":1,\"broker\":1,\"block_start\":\"0\",\"block_end\":\"999\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(znode_producer_id_block_parse(S(bad[i]), &broker, &start, &end), -1);
    /* Bounded by the length given: the same text cut short is refused. */
    assert_int_equal(znode_producer_id_block_parse(json, (size_t)n - 1, &broker, &start, &end), -1);
}

struct acl_seen {
    int n;
    char text[4][256];
};

static void acl_collect(void *arg, const char *principal, const char *permission,
                        const char *operation, const char *host)
{
    struct acl_seen *a = arg;
    if (a->n < 4)
        snprintf(a->text[a->n], sizeof(a->text[0]), "%s|%s|%s|%s", principal, permission,
                 operation, host);
    a->n++;
}

/* Kafka's ResourceZNode and ExtendedAclChangeEvent, and its Sanitizer. */
static void test_acl_znodes(void **state)
{
    (void)state;
    char json[512];
    struct znode_acl acls[2] = {{"User:alice", "Allow", "Read", "*"},
                                {"User:b\"ob", "Deny", "IdempotentWrite", "10.0.0.1"}};
    int n = znode_acl_json(json, sizeof(json), acls, 2);
    assert_string_equal(json, "{\"version\":1,\"acls\":[{\"principal\":\"User:alice\","
                        "\"permissionType\":\"Allow\",\"operation\":\"Read\",\"host\":\"*\"},"
                        "{\"principal\":\"User:b\\\"ob\",\"permissionType\":\"Deny\","
                        "\"operation\":\"IdempotentWrite\",\"host\":\"10.0.0.1\"}]}");
    struct acl_seen seen = {0};
    assert_int_equal(znode_acl_parse(json, (size_t)n, acl_collect, &seen), 2);
    assert_string_equal(seen.text[0], "User:alice|Allow|Read|*");
    assert_string_equal(seen.text[1], "User:b\"ob|Deny|IdempotentWrite|10.0.0.1");
    /* as Jackson writes it (key order and spaces free), and refused when malformed */
    seen.n = 0;
    assert_int_equal(znode_acl_parse(S("{ \"acls\" : [ { \"host\":\"*\", \"operation\":\"Write\", "
                                       "\"permissionType\":\"Allow\", \"principal\":\"User:c\" } ], "
                                       "\"version\" : 1 }"), acl_collect, &seen), 1);
    assert_string_equal(seen.text[0], "User:c|Allow|Write|*");
    assert_int_equal(znode_acl_parse(S("{\"version\":1,\"acls\":[]}"), NULL, NULL), 0);
    assert_int_equal(znode_acl_parse(S("{\"version\":2,\"acls\":[]}"), NULL, NULL), -1);
    assert_int_equal(znode_acl_parse(S("{\"version\":1,\"acls\":[{\"principal\":\"User:a\"}]}"),
                                     NULL, NULL), -1);
    assert_int_equal(znode_acl_parse(S("{\"version\":1,\"acls\":[{\"principal\":\"User:a\","
                                       "\"permissionType\":\"Allow\",\"operation\":\"Read\","
                                       "\"host\":\"*\"},]}"), NULL, NULL), -1);
    char type[32], name[64], pattern[32];
    n = znode_acl_change_json(json, sizeof(json), "TOPIC", "pre-", "PREFIXED");
    assert_string_equal(json, "{\"version\":1,\"resourceType\":\"TOPIC\",\"name\":\"pre-\","
                        "\"patternType\":\"PREFIXED\"}");
    assert_int_equal(znode_acl_change_parse(json, (size_t)n, type, sizeof(type), name,
                                            sizeof(name), pattern, sizeof(pattern)), 0);
    assert_string_equal(type, "TOPIC");
    assert_string_equal(name, "pre-");
    assert_string_equal(pattern, "PREFIXED");
    char out[64], back[64];
    assert_int_equal(znode_sanitize("a b*c/é.-_", out, sizeof(out)), 0);
    assert_string_equal(out, "a%20b%2Ac%2F%C3%A9.-_");
    assert_int_equal(znode_desanitize(out, back, sizeof(back)), 0);
    assert_string_equal(back, "a b*c/é.-_");
    assert_int_equal(znode_desanitize("bad%2", back, sizeof(back)), -1);
    assert_int_equal(znode_desanitize("nul%00", back, sizeof(back)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_json_round_trip),
        cmocka_unit_test(test_broker_json_endpoints),
        cmocka_unit_test(test_broker_json_as_kafka_writes_it),
        cmocka_unit_test(test_broker_json_rack),
        cmocka_unit_test(test_controller_and_cluster_id),
        cmocka_unit_test(test_topic_json),
        cmocka_unit_test(test_state_json),
        cmocka_unit_test(test_scanner_bounds),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_config_parse_as_others_write_it),
        cmocka_unit_test(test_config_change),
        cmocka_unit_test(test_config_edit),
        cmocka_unit_test(test_producer_id_block),
        cmocka_unit_test(test_topic_reassignment_json),
        cmocka_unit_test(test_acl_znodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
