"""Consumers fetching from followers (KIP-392, issue 16) on a real ZooKeeper with three gregor
brokers on racks a, b and c and replica.selector.class=RackAwareReplicaSelector: broker.rack is
registered in /brokers/ids/<id> and reported by Metadata and DescribeCluster; the leader answers
a Fetch v11+ whose rack_id is a follower's rack with preferred_read_replica = that follower and
no records; a follower serves a consumer's Fetch v11+ up to its own high watermark (nothing past
it, OFFSET_OUT_OF_RANGE past its log end, its leader epoch checked), and refuses one below v11;
librdkafka and the Java client with client.rack set read a whole topic from the follower of
their rack."""
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

from conftest import Broker
from kafka_wire import Reader, _request, produce_v7, record_batch, s16
from test_java_client import JAVA, client_jar  # noqa: F401 (the jar fixture)
from zk_fixture import ZkReader, wait_until, zookeeper, zookeeper_available  # noqa: F401 (the fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

CHROOT = "/follower-fetch"
IDS = (1, 2, 3)
RACKS = {1: "a", 2: "b", 3: "c"}
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
NONE = 0
OFFSET_OUT_OF_RANGE = 1
NOT_LEADER_OR_FOLLOWER = 6
UNKNOWN_LEADER_EPOCH = 75


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, zookeeper):
    """Brokers 1..3 on racks a..c, DEBUG lines on (the follower's serving line is DEBUG)."""
    base = tmp_path_factory.mktemp("follower-fetch")
    old = os.environ.get("GREGOR_LOG_LEVEL")
    os.environ["GREGOR_LOG_LEVEL"] = "DEBUG"
    brokers = {}
    try:
        for i in IDS:
            ov = {"broker.id": i, "zookeeper.connect": zookeeper.connect + CHROOT,
                  "zookeeper.session.timeout.ms": 6000, "broker.rack": RACKS[i],
                  "replica.selector.class": RACK_AWARE,
                  "replica.lag.time.max.ms": 60000, "replica.fetch.wait.max.ms": 200}
            brokers[i] = Broker(str(base / ("data%d" % i)), overrides=ov)
            brokers[i].start()
    finally:
        if old is None:
            del os.environ["GREGOR_LOG_LEVEL"]
        else:
            os.environ["GREGOR_LOG_LEVEL"] = old
    from confluent_kafka.admin import AdminClient

    def all_listed():
        for b in brokers.values():
            md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
            if sorted(md.brokers) != list(IDS) or md.controller_id not in IDS:
                return False
        return True
    try:
        wait_until(all_listed, 30, what="every broker lists the others and a controller")
        yield brokers
    finally:
        for b in brokers.values():
            if b.proc is not None:
                os.kill(b.proc.pid, signal.SIGCONT)
            try:
                b.stop()
            except Exception:
                pass


def full_log(b):
    with open(b.log_path, "rb") as f:
        return f.read().decode(errors="replace")


def zk_json(zk, path):
    r = ZkReader(zk.connect)
    try:
        return json.loads(r.get(CHROOT + path)[0])
    finally:
        r.close()


def state(zk, topic):
    return zk_json(zk, "/brokers/topics/%s/partitions/0/state" % topic)


def create_rf3(cluster, zk, topic):
    """One partition on all three brokers; once the ISR is all three and the leader took a
    warm-up record with acks=all: (its state, its high watermark = the warm-up records)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": cluster[1].bootstrap})
    admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(30)
    wait_until(lambda: sorted(state(zk, topic)["isr"]) == list(IDS), 30,
               what="ISR of %s is all three brokers" % topic)
    st = state(zk, topic)
    leader = cluster[st["leader"]]
    wait_until(lambda: produce_v7(leader.bootstrap, topic, 0, record_batch([b"w"]), acks=-1)[0]
               == NONE, 20, what="the leader of %s takes acks=all" % topic)
    return st, fetch(leader, topic, 0)[1]


def fetch(b, topic, offset, version=11, rack="", leader_epoch=-1, max_wait=0):
    """A consumer's Fetch (replica id -1, sessionless) of partition 0 at v4..11 (not flexible):
    (error, high watermark, preferred read replica (-1 before v11), record offsets)."""
    name = topic.encode()
    body = struct.pack(">iii", -1, max_wait, 1) + struct.pack(">ib", 1 << 20, 0)
    if version >= 7:
        body += struct.pack(">ii", 0, -1)
    body += struct.pack(">ih", 1, len(name)) + name + struct.pack(">i", 1)
    body += struct.pack(">i", 0)
    if version >= 9:
        body += struct.pack(">i", leader_epoch)
    body += struct.pack(">q", offset)
    if version >= 5:
        body += struct.pack(">q", -1)
    body += struct.pack(">i", 1 << 20)
    if version >= 7:
        body += struct.pack(">i", 0)
    if version >= 11:
        body += s16(rack)
    host, port = b.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=max_wait / 1000 + 10) as s:
        resp = _request(s, 1, version, 7, body)
    r = Reader(resp)
    r.take(">i")
    if version >= 7:
        assert r.take(">h") == NONE
        r.take(">i")
    assert r.take(">i") == 1
    assert r.s16() == name
    assert r.take(">i") == 1
    assert r.take(">i") == 0
    err, hw = r.take(">h"), r.take(">q")
    r.take(">q")  # last stable offset
    if version >= 5:
        r.take(">q")  # log start
    naborted = r.take(">i")
    r.o += 16 * max(naborted, 0)
    preferred = r.take(">i") if version >= 11 else -1
    n = r.take(">i")
    records = r.raw(n) if n > 0 else b""
    offsets, o = [], 0
    while o + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, o)
        last_delta = struct.unpack_from(">i", records, o + 23)[0]
        offsets += range(base, base + last_delta + 1)
        o += 12 + length
    return err, hw, preferred, offsets


def test_rack_registered_and_reported(cluster, zookeeper):
    """/brokers/ids/<id> carries "rack" as Kafka's BrokerIdZNode; Metadata (kafka-python reads
    its rack field) and DescribeCluster (confluent_kafka) report every broker's rack."""
    for i in IDS:
        reg = zk_json(zookeeper, "/brokers/ids/%d" % i)
        assert reg["rack"] == RACKS[i], reg
        assert reg["version"] == 5
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=cluster[2].bootstrap)
    try:
        described = admin.describe_cluster()
        assert {b["node_id"]: b["rack"] for b in described["brokers"]} == RACKS
    finally:
        admin.close()
    from confluent_kafka.admin import AdminClient
    ca = AdminClient({"bootstrap.servers": cluster[3].bootstrap})
    nodes = ca.describe_cluster(request_timeout=10).result(20).nodes
    assert {n.id: n.rack for n in nodes} == RACKS
    from kafka import KafkaConsumer
    c = KafkaConsumer(bootstrap_servers=cluster[1].bootstrap)
    try:
        c.topics()  # a Metadata round trip
        assert {b.nodeId: b.rack for b in c._client.cluster.brokers()} == RACKS
    finally:
        c.close()


def test_leader_names_the_follower_of_the_clients_rack(cluster, zookeeper):
    """RackAwareReplicaSelector on the leader: a rack_id that is an ISR follower's gets that
    follower as preferred_read_replica, no records, answered at once (a long poll is not
    waited); the leader's own rack, an empty or unknown rack and Fetch below v11 are served
    by the leader as before."""
    st, base = create_rf3(cluster, zookeeper, "ff-preferred")
    leader_id = st["leader"]
    leader = cluster[leader_id]
    followers = [i for i in IDS if i != leader_id]
    err, _ = produce_v7(leader.bootstrap, "ff-preferred", 0,
                        record_batch([b"r%d" % i for i in range(5)]), acks=-1)
    assert err == NONE
    for f in followers:
        t0 = time.monotonic()
        err, hw, preferred, offsets = fetch(leader, "ff-preferred", 0, rack=RACKS[f],
                                            max_wait=5000)
        assert time.monotonic() - t0 < 3
        assert (err, preferred, offsets) == (NONE, f, [])
        assert hw == base + 5
    for rack in (RACKS[leader_id], "", "zz"):
        err, hw, preferred, offsets = fetch(leader, "ff-preferred", 0, rack=rack)
        assert (err, preferred) == (NONE, -1)
        assert offsets == list(range(base + 5))
    err, _, preferred, offsets = fetch(leader, "ff-preferred", 0, version=10)
    assert (err, preferred, offsets) == (NONE, -1, list(range(base + 5)))
    assert "returned preferred replica" in full_log(leader)


def test_follower_serves_up_to_its_high_watermark(cluster, zookeeper):
    """A follower answers a consumer's Fetch v11 from its own log up to its high watermark
    (learnt from its leader's fetch responses): with one follower stopped, acks=1 records reach
    the running follower's log but not the high watermark, so it serves nothing past the high
    watermark (no error, as Kafka's read below the log end), OFFSET_OUT_OF_RANGE past its log
    end; once the stopped follower is back they are served. A newer leader epoch than its own
    is UNKNOWN_LEADER_EPOCH; Fetch v10 (no client metadata) is NOT_LEADER_OR_FOLLOWER."""
    topic = "ff-follower"
    st, b0 = create_rf3(cluster, zookeeper, topic)
    leader_id, epoch = st["leader"], st["leader_epoch"]
    leader = cluster[leader_id]
    running, stopped = [cluster[i] for i in IDS if i != leader_id]
    err, _ = produce_v7(leader.bootstrap, topic, 0, record_batch([b"a", b"b"]), acks=-1)
    assert err == NONE  # offsets b0, b0 + 1: high watermark b0 + 2 on every replica
    hw0 = b0 + 2
    wait_until(lambda: fetch(running, topic, 0)[1] == hw0, 10,
               what="the follower learns high watermark %d" % hw0)
    assert fetch(running, topic, 0) == (NONE, hw0, -1, list(range(hw0)))
    os.kill(stopped.proc.pid, signal.SIGSTOP)
    try:
        err, _ = produce_v7(leader.bootstrap, topic, 0,
                            record_batch([b"c", b"d", b"e"]), acks=1)
        assert err == NONE  # hw0..hw0 + 2, past the high watermark while `stopped` is stopped
        end = hw0 + 3
        wait_until(lambda: fetch(running, topic, end)[0] == NONE, 10,
                   what="the running follower's log reaches offset %d" % end)
        assert fetch(running, topic, 0) == (NONE, hw0, -1, list(range(hw0)))
        assert fetch(running, topic, hw0 + 1) == (NONE, hw0, -1, [])
        assert fetch(running, topic, end + 1)[0] == OFFSET_OUT_OF_RANGE
        assert fetch(running, topic, 0, leader_epoch=epoch + 1)[0] == UNKNOWN_LEADER_EPOCH
        assert fetch(running, topic, 0, leader_epoch=epoch)[3] == list(range(hw0))
        assert fetch(running, topic, 0, version=10)[0] == NOT_LEADER_OR_FOLLOWER
    finally:
        os.kill(stopped.proc.pid, signal.SIGCONT)
    wait_until(lambda: fetch(running, topic, 0)[1] == end, 15,
               what="the follower's high watermark passes the acks=1 records")
    assert fetch(running, topic, hw0)[3] == list(range(hw0, end))
    # A long poll on the follower is answered when its high watermark moves, not at its
    # deadline: parked first, then a record is produced.
    result = []
    poll = threading.Thread(target=lambda: result.append(fetch(running, topic, end,
                                                               max_wait=8000)))
    t0 = time.monotonic()
    poll.start()
    time.sleep(0.5)
    err, _ = produce_v7(leader.bootstrap, topic, 0, record_batch([b"f"]), acks=1)
    assert err == NONE
    poll.join(15)
    assert time.monotonic() - t0 < 5
    assert result and result[0][0] == NONE and result[0][3] == [end]


def test_consumer_with_client_rack_reads_from_the_follower(cluster, zookeeper):
    """librdkafka with client.rack = a follower's rack: told by the leader to fetch from that
    follower, it reads every record from it (the follower logs each consumer fetch it serves;
    the client's statistics name the broker it fetches from)."""
    from confluent_kafka import Consumer, Producer
    topic = "ff-consume"
    st, base = create_rf3(cluster, zookeeper, topic)
    leader_id = st["leader"]
    follower_id = [i for i in IDS if i != leader_id][0]
    follower = cluster[follower_id]
    p = Producer({"bootstrap.servers": cluster[leader_id].bootstrap, "acks": "all"})
    for i in range(300):
        p.produce(topic, b"v%d" % i)
    assert p.flush(30) == 0
    before = full_log(follower).count("served by follower")
    stats = []
    c = Consumer({"bootstrap.servers": cluster[leader_id].bootstrap, "group.id": "ff-g",
                  "client.rack": RACKS[follower_id], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "statistics.interval.ms": 500,
                  "stats_cb": stats.append})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 60
    try:
        while len(got) < base + 300 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        # A statistics round after the reads, naming the broker fetched from.
        n = len(stats)
        t_end = time.time() + 10
        while len(stats) <= n and time.time() < t_end:
            c.poll(0.2)  # statistics are delivered from poll
        assert len(stats) > n
    finally:
        c.close()
    assert sorted(got) == sorted([b"w"] * base + [b"v%d" % i for i in range(300)])
    part = json.loads(stats[-1])["topics"][topic]["partitions"]["0"]
    assert part["leader"] == leader_id
    assert part["broker"] == follower_id
    served = full_log(follower).count("served by follower %d" % follower_id)
    assert served > before


def test_java_consumer_with_client_rack_reads_from_the_follower(cluster, zookeeper, client_jar):
    """The Java client (kafka-clients 4.x) with client.rack = a follower's rack reads every
    record, from that follower (its fetches, naming the rack, are in the follower's log)."""
    from confluent_kafka import Producer
    from conftest import run_client_check
    topic = "ff-java"
    st, base = create_rf3(cluster, zookeeper, topic)
    leader_id = st["leader"]
    follower_id = [i for i in IDS if i != leader_id][-1]
    p = Producer({"bootstrap.servers": cluster[leader_id].bootstrap, "acks": "all"})
    for i in range(100):
        p.produce(topic, b"j%d" % i)
    assert p.flush(30) == 0
    r = run_client_check([JAVA, "-jar", client_jar, "rack-consume", cluster[leader_id].bootstrap,
                          "topic=" + topic, "rack=" + RACKS[follower_id],
                          "count=%d" % (base + 100)], cluster[leader_id], "rack-consume",
                         "GregorClientCheck", timeout=240)
    assert r["consumed"] == str(base + 100)
    served = "Fetch of %s-0 at offset" % topic
    lines = [line for line in full_log(cluster[follower_id]).splitlines() if served in line]
    assert lines and all("(rack '%s') served by follower %d" % (RACKS[follower_id], follower_id)
                         in line for line in lines)
