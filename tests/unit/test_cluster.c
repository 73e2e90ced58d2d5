/* Unit tests for the cluster layer's pure parts: zookeeper.connect parsing (hosts, chroot),
 * the zookeeper.* broker keys and Kafka's replica assignment (the znodes' JSON: test_znode.c);
 * and that a startup wait whose loop thread blocks ends the process (a forked child). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "cluster/zk.h"
#include "common/util.h"
#include "net/loop.h"

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

/* CreatePartitions continues an assignment as Kafka's assignReplicasToBrokersRackUnaware with
 * startPartitionId and a fixed start index (also the first shift): the shift starts again at
 * the start index and grows at each multiple of the broker count from the first new partition
 * on, so the new partitions are not those a topic created with all of them would have had. */
static void test_assignment_continued(void **state)
{
    (void)state;
    int32_t ids[5] = {2, 4, 6, 8, 10};
    int32_t all[9 * 3], from0[9 * 3];
    cluster_assign_replicas(ids, 5, 9, 3, 2, 2, all);
    cluster_assign_replicas_from(ids, 5, 0, 9, 3, 2, 2, from0);
    assert_memory_equal(all, from0, sizeof(all));
    /* 7 -> 13, RF 3, start index 2 (worked by hand from Kafka's loop) */
    int32_t add[6 * 3];
    cluster_assign_replicas_from(ids, 5, 7, 6, 3, 2, 2, add);
    static const int32_t want[6][3] = {{10, 6, 8}, {2, 8, 10}, {4, 10, 2},
                                       {6, 4, 8}, {8, 6, 10}, {10, 8, 2}};
    for (int p = 0; p < 6; p++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(add[p * 3 + j], want[p][j]);
    /* 3 -> 6 over brokers 1..3 with partition 0 on broker 2 (start index 1), RF 2: partition 3
     * begins a new round, so the shift is already 2. */
    int32_t three[3] = {1, 2, 3}, add3[3 * 2];
    cluster_assign_replicas_from(three, 3, 3, 3, 2, 1, 1, add3);
    static const int32_t want3[3][2] = {{2, 3}, {3, 1}, {1, 2}};
    for (int p = 0; p < 3; p++)
        for (int j = 0; j < 2; j++)
            assert_int_equal(add3[p * 2 + j], want3[p][j]);
}

/* Rack-aware assignment (Kafka's assignReplicasToBrokersRackAware), on the example of Kafka's
 * AdminUtils documentation: brokers 0..5 on racks 1,3,3,2,2,1 alternate as 0,3,1,5,4,2; six
 * partitions RF 3 from start index 0 go round that list, the seventh shifts its followers. */
static void test_assignment_rack_aware(void **state)
{
    (void)state;
    int32_t ids[6] = {0, 1, 2, 3, 4, 5};
    const char *racks[6] = {"rack1", "rack3", "rack3", "rack2", "rack2", "rack1"};
    int32_t a[7 * 3];
    assert_int_equal(cluster_assign_replicas_racks(ids, racks, 6, 0, 7, 3, 0, 0, a), 0);
    static const int32_t want[7][3] = {{0, 3, 1}, {3, 1, 5}, {1, 5, 4}, {5, 4, 2},
                                       {4, 2, 0}, {2, 0, 3}, {0, 4, 2}};
    for (int p = 0; p < 7; p++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(a[p * 3 + j], want[p][j]);
    /* Two racks of two: every partition's two replicas on both racks, whatever the start and
     * shift (the rack-unaware order 1,2,3,4 puts some on one rack). */
    int32_t four[4] = {1, 2, 3, 4};
    const char *ab[4] = {"a", "a", "b", "b"};
    for (int start = 0; start < 4; start++)
        for (int shift = 0; shift < 4; shift++) {
            int32_t b[8 * 2];
            assert_int_equal(cluster_assign_replicas_racks(four, ab, 4, 0, 8, 2, start, shift, b), 0);
            for (int p = 0; p < 8; p++)
                assert_string_not_equal(ab[b[p * 2] - 1], ab[b[p * 2 + 1] - 1]);
        }
    /* Some brokers with a rack, some without: Kafka refuses ("Not all brokers have rack
     * information"). None with one: the rack-unaware assignment. */
    const char *partial[4] = {"a", NULL, "b", "b"};
    int32_t c[4 * 2], d[4 * 2];
    assert_int_equal(cluster_assign_replicas_racks(four, partial, 4, 0, 4, 2, 0, 0, c), -1);
    const char *none[4] = {NULL, "", NULL, NULL};
    assert_int_equal(cluster_assign_replicas_racks(four, none, 4, 0, 4, 2, 1, 2, c), 0);
    cluster_assign_replicas(four, 4, 4, 2, 1, 2, d);
    assert_memory_equal(c, d, sizeof(c));
    assert_int_equal(cluster_assign_replicas_racks(four, NULL, 4, 0, 4, 2, 1, 2, c), 0);
    assert_memory_equal(c, d, sizeof(c));
}

/* broker.rack (none by default) and replica.selector.class (Kafka's two selectors only). */
static void test_rack_keys(void **state)
{
    (void)state;
    struct broker_config c;
    char err[256];
    broker_config_defaults(&c);
    assert_string_equal(c.broker_rack, "");
    assert_false(c.replica_selector_rack_aware);
    assert_int_equal(broker_config_set(&c, "broker.rack", "eu-west-1b", err, sizeof(err)), 0);
    assert_string_equal(c.broker_rack, "eu-west-1b");
    assert_int_equal(broker_config_set(&c, "replica.selector.class",
                                       "org.apache.kafka.common.replica.RackAwareReplicaSelector",
                                       err, sizeof(err)), 0);
    assert_true(c.replica_selector_rack_aware);
    assert_int_equal(broker_config_set(&c, "replica.selector.class",
                                       "org.apache.kafka.common.replica.LeaderSelector", err,
                                       sizeof(err)), 0);
    assert_false(c.replica_selector_rack_aware);
    assert_int_equal(broker_config_set(&c, "replica.selector.class", "com.example.Mine", err,
                                       sizeof(err)), -1);
    assert_non_null(strstr(err, "com.example.Mine"));
}

/* A loop callback that never returns, as a blocked system call or lock would. */
static void block_forever(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    for (;;)
        pause(); /* the watchdog's SIGUSR2 (its stack dump) comes back here */
}

/* A child blocks its loop thread inside cluster_await_id's wait (ZooKeeper unreachable, so the
 * wait turns the loop): the watchdog must end it with exit 1 about the wait's cap (connection
 * + 2 sessions = 1.8 s) after the block, not leave it hanging. */
static void test_startup_wait_blocked_loop_exits(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct loop *l = loop_create(1024);
        struct cluster_config cc = {.zookeeper_connect = "127.0.0.1:1",
                                    .session_timeout_ms = 600,
                                    .connection_timeout_ms = 600,
                                    .broker_id = 0,
                                    .listener_name = "PLAINTEXT",
                                    .host = "localhost",
                                    .port = 9092};
        struct cluster *c = l != NULL ? cluster_create(l, &cc) : NULL;
        if (c == NULL)
            _exit(3);
        loop_timer_add(l, mono_ms() + 50, block_forever, NULL);
        char id[64];
        cluster_await_id(c, id, sizeof(id));
        _exit(2); /* the wait returned although its loop thread never came back */
    }
    int status = 0;
    int64_t t0 = mono_ms();
    pid_t got = 0;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && mono_ms() - t0 < 20000)
        usleep(20 * 1000);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child still hangs after %lld ms", (long long)(mono_ms() - t0));
    }
    int64_t took = mono_ms() - t0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(took >= 1800 && took < 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_string),
        cmocka_unit_test(test_zookeeper_keys),
        cmocka_unit_test(test_assignment_as_kafka),
        cmocka_unit_test(test_assignment_continued),
        cmocka_unit_test(test_assignment_rack_aware),
        cmocka_unit_test(test_rack_keys),
        cmocka_unit_test(test_startup_wait_blocked_loop_exits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
