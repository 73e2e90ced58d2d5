"""Replication throttles (KIP-73), as Kafka 3.9's ReplicationQuotaManager: the broker configs
leader/follower.replication.throttled.rate (dynamic, per broker or cluster-wide) and the topic
configs leader/follower.replication.throttled.replicas ("partition:broker,..." or "*").

Three gregor brokers on one ZooKeeper: a partition on brokers 1 and 2 holding 20 MB is moved to
1, 2, 3 by kafka-reassign-partitions.sh --execute --throttle 1000000; broker 3's copy grows at
about 1 MB/s (measured from its segment files over several seconds, with a generous bound),
--list shows the move in progress meanwhile, and once the broker rates are deleted the copy
completes and equals the leader's. The rate keys in DescribeConfigs and their refusals."""
import glob
import os
import subprocess
import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic)

from conftest import GREGOR, ROOT
from kafka_wire import cstr, flexible_call, uvarint
from zk_fixture import ZooKeeperServer, start_brokers, wait_until, zookeeper_available

if not zookeeper_available():
    pytest.fail("java and Debian's zookeeper package are needed: make test-deps installs them",
                pytrace=False)

TOOL = os.path.join(ROOT, "bin", "kafka-reassign-partitions.sh")
IDS = (1, 2, 3)
RATE = 1000000           # bytes/s
DATA = 20 * 1000 * 1000  # bytes in the partition
INVALID_CONFIG = 40
INVALID_REQUEST = 42
RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")


@pytest.fixture(scope="module")
def zookeeper():
    zk = ZooKeeperServer(tick_ms=500)
    zk.start()
    yield zk
    zk.stop()


@pytest.fixture
def cluster(zookeeper, tmp_path, request):
    """Three brokers of their own (a chroot per test): a quota's rate is measured over the
    last 11 s, so one test's copies do not count in the next one's."""
    brokers = []
    try:
        brokers = start_brokers(tmp_path, zookeeper.connect + "/" +
                                request.node.name.replace("[", "-").rstrip("]"), ids=IDS)
        yield brokers
    finally:
        for b in brokers:
            b.stop()


def bootstrap(brokers):
    return ",".join(b.bootstrap for b in brokers)


def tool(brokers, *args):
    p = subprocess.run([TOOL, "--bootstrap-server", bootstrap(brokers)] + list(args),
                       capture_output=True, text=True, timeout=90,
                       env=dict(os.environ, GREGOR_BIN=GREGOR))
    return p.returncode, p.stdout, p.stderr


def segment_bytes(broker, topic, partition):
    return sum(os.path.getsize(f) for f in
               glob.glob(os.path.join(broker.data_dir, "%s-%d" % (topic, partition), "*.log")))


def segments(broker, topic, partition):
    out = {}
    for f in sorted(glob.glob(os.path.join(broker.data_dir, "%s-%d" % (topic, partition), "*.log"))):
        with open(f, "rb") as fh:
            out[os.path.basename(f)] = fh.read()
    return out


def describe(admin, rtype, name):
    res = ConfigResource(rtype, name)
    return admin.describe_configs([res])[res].result(30)


def alter_broker(admin, broker_id, *ops):
    res = ConfigResource(ConfigResource.Type.BROKER, str(broker_id), incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops])
    return admin.incremental_alter_configs([res])[res]


def alter_default(broker, key, op, value):
    """IncrementalAlterConfigs v1 of the cluster-wide default (BROKER ""; clients refuse the
    empty name): (error code, message)."""
    body = uvarint(2) + bytes([4]) + cstr("") + uvarint(2)
    body += cstr(key) + bytes([op]) + cstr(value) + uvarint(0)
    body += uvarint(0) + b"\x00" + uvarint(0)
    r = flexible_call(broker.bootstrap, 44, 1, body)
    r.take(">i")
    assert r.uvarint() == 2
    return r.take(">h"), r.cstr()


def alter_topic(admin, topic, **configs):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET)
        for k, v in configs.items()])
    admin.incremental_alter_configs([res])[res].result(30)


@pytest.mark.parametrize("side", ["tool", "leader", "follower"])
def test_reassignment_catch_up_held_to_the_throttle_then_completes(cluster, tmp_path, side):
    """side "tool": the throttles kafka-reassign-partitions.sh --throttle sets (both sides);
    "leader": only the leader's (broker 1: its rate and leader.replication.throttled.replicas
    0:1), "follower": only the new replica's (broker 3: 0:3), each holding the copy alone."""
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster)})
    topic = "thr-" + side
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2]])])[topic].result(60)
    wait_until(lambda: admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader == 1,
               30, what="leader 1")
    p = Producer({"bootstrap.servers": bootstrap(cluster), "linger.ms": 20, "acks": "all",
                  "compression.type": "none"})
    value = os.urandom(10000)
    for _ in range(DATA // len(value)):
        p.produce(topic, value, partition=0)
        p.poll(0)
    assert p.flush(60) == 0
    by_id = {int(b.overrides["broker.id"]): b for b in cluster}
    full = segment_bytes(by_id[1], topic, 0)
    assert full >= DATA
    wait_until(lambda: segment_bytes(by_id[2], topic, 0) == full, 60, what="broker 2 caught up")

    move = tmp_path / "move.json"
    move.write_text('{"version":1,"partitions":[{"topic":"%s","partition":0,"replicas":[1,2,3]}]}'
                    % topic)
    if side == "tool":
        rc, out, err = tool(cluster, "--execute", "--reassignment-json-file", str(move),
                            "--throttle", str(RATE))
        print(out, err)
        assert rc == 0, out + err
        assert "The inter-broker throttle limit was set to %d B/s\n" % RATE in out
        # The tool's throttles: the sources lead-throttled, the new replica follow-throttled,
        # the rate on every broker involved, shown by DescribeConfigs as Kafka 3.9 shows it.
        got = describe(admin, ConfigResource.Type.TOPIC, topic)
        assert got["leader.replication.throttled.replicas"].value == "0:1,0:2"
        assert got["follower.replication.throttled.replicas"].value == "0:3"
        for i in IDS:
            rates = describe(admin, ConfigResource.Type.BROKER, str(i))
            for key in RATE_KEYS:
                assert rates[key].value == str(RATE), (i, key)
                assert rates[key].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
                assert rates[key].is_read_only  # Kafka 3.9 reports them so
    else:
        # One side only; the other's list names the replica too, with no rate set there.
        alter_topic(admin, topic, leader_replication_throttled_replicas="0:1",
                    follower_replication_throttled_replicas="0:3")
        key, where = (RATE_KEYS[0], 1) if side == "leader" else (RATE_KEYS[1], 3)
        alter_broker(admin, where, (key, str(RATE), AlterConfigOpType.SET)).result(30)
        wait_until(lambda: describe(admin, ConfigResource.Type.BROKER, str(where))[key].value ==
                   str(RATE), 30, what="broker %d's rate" % where)
        time.sleep(1)  # and the topic's, read from its change notification
        rc, out, err = tool(cluster, "--execute", "--reassignment-json-file", str(move))
        assert rc == 0, out + err
    started = time.time()

    # Broker 3's copy over several seconds once it started: about RATE (SimpleRate over a
    # growing window, one 1 MiB fetch at a time), far below the unthrottled copy (hundreds of
    # MB/s here). The bound is generous: twice the rate plus one fetch.
    wait_until(lambda: segment_bytes(by_id[3], topic, 0) > 0, 30, what="broker 3 copying")
    t0, b0 = time.time(), segment_bytes(by_id[3], topic, 0)
    samples = [(t0, b0)]
    while time.time() - t0 < 6:
        time.sleep(0.25)
        samples.append((time.time(), segment_bytes(by_id[3], topic, 0)))
    t1, b1 = samples[-1]
    rate = (b1 - b0) / (t1 - t0)
    print("copied %d bytes in %.2f s: %.0f B/s (limit %d)" % (b1 - b0, t1 - t0, rate, RATE))
    assert b1 > b0, "the throttled copy made no progress"
    assert b1 - b0 <= 2 * RATE * (t1 - t0) + (1 << 20), samples
    assert b1 < full, "the copy finished despite the throttle"

    rc, out, _ = tool(cluster, "--list")
    assert rc == 0 and "%s-0: replicas: 1,2,3. adding: 3." % topic in out, out
    md = admin.list_topics(topic, timeout=10).topics[topic].partitions[0]
    assert sorted(md.replicas) == [1, 2, 3] and 3 not in md.isrs

    # The rates deleted on every broker: the move completes.
    for i in IDS:
        alter_broker(admin, i, *[(k, None, AlterConfigOpType.DELETE) for k in RATE_KEYS]).result(30)
    unthrottled = time.time()
    wait_until(lambda: tool(cluster, "--list")[1] == "No partition reassignments found.\n", 60,
               what="the move completed")
    print("completed %.1f s after the rates were deleted (%.1f s after the start)"
          % (time.time() - unthrottled, time.time() - started))
    wait_until(lambda: segments(by_id[3], topic, 0) == segments(by_id[1], topic, 0), 30,
               what="broker 3's segments equal the leader's")
    md = admin.list_topics(topic, timeout=10).topics[topic].partitions[0]
    assert sorted(md.isrs) == [1, 2, 3]
    for i in IDS:
        rates = describe(admin, ConfigResource.Type.BROKER, str(i))
        assert not any(k in rates for k in RATE_KEYS), (i, rates)
    # --verify clears the topic throttles.
    rc, out, _ = tool(cluster, "--verify", "--reassignment-json-file", str(move))
    assert rc == 0 and "Reassignment of partition %s-0 is completed." % topic in out, out
    got = describe(admin, ConfigResource.Type.TOPIC, topic)
    assert got["leader.replication.throttled.replicas"].value == ""
    assert got["follower.replication.throttled.replicas"].value == ""


def test_rate_keys_checked_and_cluster_wide(cluster):
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster)})
    for value, why in (("-1", "Value must be at least 0"), ("fast", "Not a number of type LONG")):
        with pytest.raises(KafkaException) as e:
            alter_broker(admin, 2, ("leader.replication.throttled.rate", value,
                                    AlterConfigOpType.SET)).result(30)
        err = e.value.args[0]
        assert (err.code(), err.str()) == (
            INVALID_REQUEST, "Invalid value %s for configuration leader.replication.throttled.rate: "
            "%s" % (value, why))
    # Unset, the keys are not described (no KafkaConfig default: Kafka lists them only when set).
    assert not any(k in describe(admin, ConfigResource.Type.BROKER, "2") for k in RATE_KEYS)
    # The cluster-wide default: every broker shows (and applies) it, its own value first.
    assert alter_default(cluster[0], "follower.replication.throttled.rate", 0, "5000")[0] == 0
    alter_broker(admin, 2, ("follower.replication.throttled.rate", "7000",
                            AlterConfigOpType.SET)).result(30)
    try:
        def shown():
            return {i: describe(admin, ConfigResource.Type.BROKER, str(i)).get(
                "follower.replication.throttled.rate") for i in IDS}
        got = wait_until(lambda: all(shown().values()) and shown(), 30, what="default read")
        assert {i: (e.value, e.source) for i, e in got.items()} == {
            1: ("5000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
            2: ("7000", ConfigSource.DYNAMIC_BROKER_CONFIG.value),
            3: ("5000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)}
    finally:
        alter_broker(admin, 2, ("follower.replication.throttled.rate", None,
                                AlterConfigOpType.DELETE)).result(30)
        assert alter_default(cluster[0], "follower.replication.throttled.rate", 1, None)[0] == 0


def test_throttled_replicas_too_long_refused_not_cut(cluster):
    """A list longer than a topic override keeps (255 bytes) is refused whole: cut, it would
    throttle other replicas ("...,85:1" cut to "...,85:"; "12:34" to "12:3")."""
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster)})
    topic = "thr-long"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(60)
    fits = ",".join("%d:1" % p for p in range(50))
    assert len(fits) < 256
    alter_topic(admin, topic, leader_replication_throttled_replicas=fits)
    long_list = ",".join("%d:1" % p for p in range(100))
    assert len(long_list) > 256
    for op in ("incremental", "alter"):
        with pytest.raises(KafkaException) as e:
            if op == "incremental":
                alter_topic(admin, topic, leader_replication_throttled_replicas=long_list)
            else:
                res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={
                    "leader.replication.throttled.replicas": long_list})
                admin.alter_configs([res])[res].result(30)
        err = e.value.args[0]
        assert err.code() == INVALID_CONFIG, (op, err)
        assert "leader.replication.throttled.replicas" in err.str() and \
            "at most 255 bytes (this one has %d)" % len(long_list) in err.str(), (op, err.str())
    got = describe(admin, ConfigResource.Type.TOPIC, topic)
    assert got["leader.replication.throttled.replicas"].value == fits
