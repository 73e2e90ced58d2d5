"""The leader's side of replication (issue 16) on a real ZooKeeper with two real gregor brokers
and a third broker id, 3, whose registration (/brokers/ids/3, ephemeral) the test holds itself:
topics assigned [1, 3] are led by broker 1, and this test acts as follower 3 over the raw wire
(Fetch with replica id 3), so each of its fetches is a step the test chooses; the real broker 2
is assigned nothing here and fetches nothing. The high watermark is the least log end of the ISR: consumers see nothing past it, acks=all is
answered once the follower's fetch passed the batch, the follower joins the ISR (the partition's
state znode) once caught up and leaves it after replica.lag.time.max.ms without fetching,
min.insync.replicas=2 then refuses acks=all (NOT_ENOUGH_REPLICAS), a replica not assigned is
refused, a diverging last fetched epoch gets the leader's epoch end (KIP-320), and the high
watermark is checkpointed every replica.high.watermark.checkpoint.interval.ms."""
import json
import os
import re
import socket
import struct
import threading
import time

import pytest

from conftest import Broker
from kafka_wire import Reader, _request, cstr, produce_v7, record_batch, s16, uvarint, _recv
from zk_fixture import ZkReader, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 3000
LAG_MS = 8000
HW_CHECKPOINT_MS = 500
NONE = 0
OFFSET_OUT_OF_RANGE = 1
NOT_LEADER_OR_FOLLOWER = 6
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
UNKNOWN_LEADER_EPOCH = 75
CHROOT = "/replication-leader"
FOLLOWER = 3  # the broker id the test registers and plays


def broker_overrides(zk, i):
    return {"broker.id": i, "zookeeper.connect": zk.connect + CHROOT,
            "zookeeper.session.timeout.ms": SESSION_MS,
            "replica.lag.time.max.ms": LAG_MS,
            "replica.high.watermark.checkpoint.interval.ms": HW_CHECKPOINT_MS,
            "min.insync.replicas": 2}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, zookeeper):
    base = tmp_path_factory.mktemp("replication-leader")
    brokers = [Broker(str(base / ("data%d" % i)), overrides=broker_overrides(zookeeper, i))
               for i in (1, 2)]
    for b in brokers:
        b.start()
    from confluent_kafka.admin import AdminClient

    def both_listed():
        for b in brokers:
            md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
            if sorted(md.brokers) != [1, 2] or md.controller_id not in (1, 2):
                return False
        return True
    wait_until(both_listed, 20, what="both brokers list each other and a controller")
    fake = FakeRegistration(zookeeper)

    def all_listed():
        return all(sorted(AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
                          .brokers) == [1, 2, FOLLOWER] for b in brokers)
    try:
        wait_until(all_listed, 20, what="both brokers list broker %d" % FOLLOWER)
        yield brokers
    finally:
        fake.close()
        for b in brokers:
            try:
                b.stop()
            except Exception:
                pass


class FakeRegistration:
    """/brokers/ids/<FOLLOWER> held by this test's own ZooKeeper session (pinged every second
    by a thread): broker 2's registration JSON with the port of a socket nobody listens on."""

    def __init__(self, zk):
        from conftest import free_port
        r = ZkReader(zk.connect)
        try:
            reg = json.loads(r.get("%s/brokers/ids/2" % CHROOT)[0])
        finally:
            r.close()
        port = free_port()
        reg["port"] = port
        reg["endpoints"] = [re.sub(r":\d+$", ":%d" % port, e) for e in reg["endpoints"]]
        self.session = ZkReader(zk.connect, SESSION_MS)
        self.session.create("%s/brokers/ids/%d" % (CHROOT, FOLLOWER),
                            json.dumps(reg).encode(), ephemeral=True)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._keep_alive, daemon=True)
        self.thread.start()

    def _keep_alive(self):
        while not self.stopping.wait(1.0):
            self.session.ping()

    def close(self):
        self.stopping.set()
        self.thread.join(10)
        self.session.close()


def state(zk, topic, partition=0):
    r = ZkReader(zk.connect)
    try:
        data = r.get("%s/brokers/topics/%s/partitions/%d/state" % (CHROOT, topic, partition))[0]
    finally:
        r.close()
    return json.loads(data)


def create_on_1_and_3(cluster, zk, topic):
    """A topic with one partition assigned [1, FOLLOWER]: the controller makes broker 1 its
    leader with ISR [1, FOLLOWER] (every live replica of a new partition, as Kafka's); the
    follower never fetches, so after replica.lag.time.max.ms the leader shrinks it to [1];
    broker 1 serves it once it opened it."""
    # CreateTopics v4 with an explicit assignment (partition 0 on [1, FOLLOWER]).
    name = topic.encode()
    body = struct.pack(">ih", 1, len(name)) + name + struct.pack(">ih", -1, -1)
    body += struct.pack(">iiiii", 1, 0, 2, 1, FOLLOWER) + struct.pack(">i", 0)
    body += struct.pack(">ib", 20000, 0)
    host, port = cluster[0].bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        r = Reader(_request(s, 19, 4, 3, body))
    r.take(">i")
    assert r.take(">i") == 1 and r.s16() == name
    assert r.take(">h") == NONE, r.s16()
    wait_until(lambda: state(zk, topic)["leader"] == 1, 20, what="broker 1 leads " + topic)
    first = state(zk, topic)
    assert first["leader_epoch"] == 0 and first["isr"] in ([1, FOLLOWER], [1])
    wait_until(lambda: state(zk, topic)["isr"] == [1], LAG_MS / 1000 * 1.5 + 10,
               what="the silent follower out of the ISR of " + topic)

    def served():
        err, _ = produce_v7(cluster[0].bootstrap, topic, 0, record_batch([b"warm"]), acks=1)
        return err == NONE
    wait_until(served, 20, what="broker 1 serves " + topic)


def produce(b, topic, values, acks):
    return produce_v7(b.bootstrap, topic, 0, record_batch(values), acks=acks)


def batches(records):
    """[(base offset, last offset)] of the record batches in a records field."""
    out, o = [], 0
    while o + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, o)
        last_delta = struct.unpack_from(">i", records, o + 23)[0]
        out.append((base, base + last_delta))
        o += 12 + length
    return out


def fetch_v11(b, topic, offset, replica_id, leader_epoch=-1, max_wait=0, min_bytes=1):
    """Fetch v11 of partition 0 (sessionless): (error, high watermark, log start, offsets)."""
    name = topic.encode()
    body = struct.pack(">iiiibii", replica_id, max_wait, min_bytes, 1 << 20, 0, 0, -1)
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iiiqqi", 1, 0, leader_epoch, offset, -1, 1 << 20)
    body += struct.pack(">i", 0) + s16("")
    host, port = b.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=max_wait / 1000 + 10) as s:
        resp = _request(s, 1, 11, 7, body)
    r = Reader(resp)
    r.take(">i")
    assert r.take(">h") == NONE
    r.take(">i")
    assert r.take(">i") == 1
    assert r.s16() == name
    assert r.take(">i") == 1
    assert r.take(">i") == 0
    err, hw, _lso, start = r.take(">h"), r.take(">q"), r.take(">q"), r.take(">q")
    naborted = r.take(">i")
    r.o += 16 * max(naborted, 0)
    r.take(">i")
    n = r.take(">i")
    records = r.raw(n) if n > 0 else b""
    offsets = [o for base, last in batches(records) for o in range(base, last + 1)]
    return err, hw, start, offsets


def fetch_v12(b, topic, offset, replica_id, last_fetched_epoch, leader_epoch=-1):
    """Fetch v12 (flexible): (error, high watermark, diverging (epoch, end offset) or None,
    record bytes)."""
    body = struct.pack(">iiiibii", replica_id, 0, 1, 1 << 20, 0, 0, -1)
    body += uvarint(2) + cstr(topic) + uvarint(2)
    body += struct.pack(">iiqiqi", 0, leader_epoch, offset, last_fetched_epoch, -1, 1 << 20)
    body += uvarint(0) + uvarint(0)       # partition tags, topic tags
    body += uvarint(1) + cstr("") + uvarint(0)  # no forgotten topics, rack, request tags
    host, port = b.bootstrap.split(":")
    hdr = struct.pack(">hhih", 1, 12, 9, 4) + b"test" + uvarint(0)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(hdr + body)) + hdr + body)
        data = _recv(s, struct.unpack(">i", _recv(s, 4))[0])
    r = Reader(data)
    assert r.take(">i") == 9
    r.tags()
    r.take(">i")
    assert r.take(">h") == NONE
    r.take(">i")
    assert r.uvarint() == 2
    assert r.cstr() == topic
    assert r.uvarint() == 2
    assert r.take(">i") == 0
    err, hw, _lso, _start = r.take(">h"), r.take(">q"), r.take(">q"), r.take(">q")
    naborted = r.uvarint()
    r.o += 16 * max(naborted - 1, 0)
    r.take(">i")
    n = r.uvarint()
    records = r.raw(n - 1) if n > 0 else b""
    diverging = None
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag == 0:
            epoch, end = struct.unpack_from(">iq", r.d, r.o)
            diverging = (epoch, end)
        r.o += size
    return err, hw, diverging, records


def consumer_offsets(b, topic, offset):
    err, hw, _start, offsets = fetch_v11(b, topic, offset, -1)
    assert err == NONE
    return hw, offsets


def real_consumer_reads(b, topic, seconds=3.0):
    """librdkafka's consumer from offset 0 of partition 0 for a while: (offsets read, the high
    watermark it is told)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "hw-" + topic,
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got, deadline = [], time.time() + seconds
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.offset())
        return got, c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def test_follower_moves_hw_acks_all_isr_join_and_leave(cluster, zookeeper):
    leader = cluster[0]
    topic = "replicated"
    create_on_1_and_3(cluster, zookeeper, topic)   # offset 0: the warm-up record
    # min.insync.replicas=2 with ISR [1]: acks=all is refused before the append.
    assert produce(leader, topic, [b"refused"], -1)[0] == NOT_ENOUGH_REPLICAS
    for v in (b"a", b"b"):
        assert produce(leader, topic, [v], 1)[0] == NONE
    # ISR [1], and the follower never fetched: the high watermark is the leader's log end.
    hw, offsets = consumer_offsets(leader, topic, 0)
    assert (hw, offsets) == (3, [0, 1, 2])
    # The follower fetches everything, then from the log end: caught up, it joins the ISR.
    err, hw, _start, offsets = fetch_v11(leader, topic, 0, FOLLOWER)
    assert (err, offsets) == (NONE, [0, 1, 2])
    err, hw, _start, offsets = fetch_v11(leader, topic, 3, FOLLOWER)
    assert (err, hw, offsets) == (NONE, 3, [])
    wait_until(lambda: state(zookeeper, topic)["isr"] == [1, FOLLOWER], 10,
               what="the follower joins the ISR in ZooKeeper")
    st = state(zookeeper, topic)
    assert st["leader"] == 1 and st["leader_epoch"] == 0
    # Appended but not fetched by the follower: no consumer sees it. (From here the follower
    # is behind: what follows until its next fetch must take well under LAG_MS.)
    assert produce(leader, topic, [b"c", b"d"], 1) == (NONE, 3)
    assert consumer_offsets(leader, topic, 3) == (3, [])
    assert real_consumer_reads(leader, topic, 1.2) == ([0, 1, 2], 3)
    # The checkpoint says so too (written every HW_CHECKPOINT_MS).
    ckpt = os.path.join(leader.data_dir, "replication-offset-checkpoint")

    def checkpointed():
        with open(ckpt) as f:
            lines = f.read().split("\n")
        return lines[0] == "0" and "%s 0 3" % topic in lines[2:]
    wait_until(checkpointed, 10, what="replication-offset-checkpoint holds the high watermark 3")
    # acks=all is answered only once the follower's fetch passed its batch.
    answer = {}

    def acks_all():
        answer["r"] = produce(leader, topic, [b"e"], -1)
    th = threading.Thread(target=acks_all)
    th.start()
    time.sleep(1.0)
    assert "r" not in answer
    err, hw, _start, offsets = fetch_v11(leader, topic, 3, FOLLOWER)
    assert err == NONE and offsets[:2] == [3, 4] and hw == 3
    fetched_to = offsets[-1] + 1
    if fetched_to < 6:  # the acks=all batch came after this read: fetch it too
        err, hw, _start, offsets = fetch_v11(leader, topic, fetched_to, FOLLOWER, max_wait=2000)
        fetched_to = offsets[-1] + 1 if offsets else fetched_to
    assert fetched_to == 6
    time.sleep(0.5)
    assert "r" not in answer  # the follower holds 0..5, but its fetch offset says 5 so far
    err, hw, _start, offsets = fetch_v11(leader, topic, 6, FOLLOWER)
    last_fetch = time.time()  # the follower's last fetch: the lag counts from here
    assert (err, hw, offsets) == (NONE, 6, [])
    th.join(10)
    assert answer["r"] == (NONE, 5)
    assert consumer_offsets(leader, topic, 3) == (6, [3, 4, 5])
    assert real_consumer_reads(leader, topic, 1.2) == ([0, 1, 2, 3, 4, 5], 6)
    # A record the follower does not fetch: it is behind from now (a follower at the log end
    # is in sync however long ago it fetched, as Kafka's), held back by it until, after
    # replica.lag.time.max.ms, it leaves the ISR; then acks=all is refused again and acks=1
    # is visible at once.
    assert produce(leader, topic, [b"f"], 1) == (NONE, 6)
    assert consumer_offsets(leader, topic, 6) == (6, [])
    wait_until(lambda: state(zookeeper, topic)["isr"] == [1], LAG_MS / 1000 + 10,
               what="the follower leaves the ISR")
    assert time.time() - last_fetch >= LAG_MS / 1000 - 0.5
    wait_until(lambda: consumer_offsets(leader, topic, 6) == (7, [6]), 5,
               what="the high watermark passes the record once the follower left")
    assert produce(leader, topic, [b"refused"], -1)[0] == NOT_ENOUGH_REPLICAS
    assert produce(leader, topic, [b"g"], 1) == (NONE, 7)
    assert consumer_offsets(leader, topic, 7) == (8, [7])


def test_replica_not_assigned_is_refused(cluster, zookeeper):
    leader = cluster[0]
    topic = "replicated-refuse"
    create_on_1_and_3(cluster, zookeeper, topic)
    # Kafka's followerReplicaOrThrow: NOT_LEADER_OR_FOLLOWER, or with a leader epoch
    # UNKNOWN_LEADER_EPOCH; the leader itself is no follower either.
    assert fetch_v11(leader, topic, 0, 2)[0] == NOT_LEADER_OR_FOLLOWER
    assert fetch_v11(leader, topic, 0, 2, leader_epoch=0)[0] == UNKNOWN_LEADER_EPOCH
    assert fetch_v11(leader, topic, 0, 1)[0] == NOT_LEADER_OR_FOLLOWER
    # The assigned follower reads, and a fetch past the log end is out of range.
    err, _hw, _start, offsets = fetch_v11(leader, topic, 0, FOLLOWER, leader_epoch=0)
    assert (err, offsets) == (NONE, [0])
    assert fetch_v11(leader, topic, 5, FOLLOWER)[0] == OFFSET_OUT_OF_RANGE
    # Broker 2 does not lead it (nor follow it): NOT_LEADER_OR_FOLLOWER.
    assert fetch_v11(cluster[1], topic, 0, FOLLOWER)[0] == NOT_LEADER_OR_FOLLOWER


def produce_v7_timeout(b, topic, values, timeout_ms):
    """acks=all Produce v7 with the given timeout: (error, base offset)."""
    name = topic.encode()
    batch = record_batch(values)
    body = struct.pack(">hhi", -1, -1, timeout_ms)
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(batch)) + batch
    host, port = b.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_ms / 1000 + 10) as s:
        r = Reader(_request(s, 0, 7, 5, body))
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    assert r.take(">i") == 0
    return r.take(">h"), r.take(">q")


def test_isr_shrinking_under_a_waiting_acks_all(cluster, zookeeper):
    """An acks=all produce waits for a follower in the ISR that stops fetching: after
    replica.lag.time.max.ms it leaves, the high watermark passes the batch, and with
    min.insync.replicas=2 the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND (the record stays)."""
    leader = cluster[0]
    topic = "replicated-after"
    create_on_1_and_3(cluster, zookeeper, topic)
    assert fetch_v11(leader, topic, 0, FOLLOWER)[3] == [0]
    fetch_v11(leader, topic, 1, FOLLOWER)
    wait_until(lambda: state(zookeeper, topic)["isr"] == [1, FOLLOWER], 10, what="the follower joins")
    t0 = time.time()
    assert produce_v7_timeout(leader, topic, [b"late"], 60000) == (NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1)
    assert time.time() - t0 >= LAG_MS / 1000 - 1
    assert state(zookeeper, topic)["isr"] == [1]
    assert consumer_offsets(leader, topic, 1) == (2, [1])


def test_acks_all_waiting_when_leadership_moves(cluster, zookeeper):
    """An acks=all produce waits for follower 3 (in the ISR, not fetching); the partition's
    state then names 3 the leader in the next epoch (as an election writes it): broker 1 is a
    follower now and answers the waiting produce NOT_LEADER_OR_FOLLOWER at once, as Kafka's
    makeFollowers completes its delayed produces, not at the produce's timeout."""
    leader = cluster[0]
    topic = "replicated-moved"
    create_on_1_and_3(cluster, zookeeper, topic)
    assert fetch_v11(leader, topic, 0, FOLLOWER)[3] == [0]
    fetch_v11(leader, topic, 1, FOLLOWER)
    wait_until(lambda: state(zookeeper, topic)["isr"] == [1, FOLLOWER], 10, what="the follower joins")
    answer = {}

    def acks_all():
        answer["r"] = produce_v7_timeout(leader, topic, [b"moved"], 30000)
        answer["t"] = time.time()
    th = threading.Thread(target=acks_all)
    th.start()
    time.sleep(1.0)
    assert "r" not in answer
    path = "%s/brokers/topics/%s/partitions/0/state" % (CHROOT, topic)
    r = ZkReader(zookeeper.connect)
    try:
        data, stat = r.get(path)
        st = json.loads(data)
        st.update(leader=FOLLOWER, leader_epoch=st["leader_epoch"] + 1, isr=[FOLLOWER, 1])
        r.set(path, json.dumps(st, separators=(",", ":")).encode(), stat["version"])
    finally:
        r.close()
    t0 = time.time()
    th.join(40)
    assert answer["r"] == (NOT_LEADER_OR_FOLLOWER, -1)
    assert answer["t"] - t0 < 5, "answered %.1f s after the leader changed" % (answer["t"] - t0)
    assert produce(leader, topic, [b"x"], 1)[0] == NOT_LEADER_OR_FOLLOWER


def test_diverging_last_fetched_epoch(cluster, zookeeper):
    """Broker 1 leads in epoch 0, stops (the controller sets leader -1, epoch 1), comes back
    and is elected in epoch 2 from offset 2: a follower that says it last fetched epoch 1 has
    records this leader never had, and is told to truncate to epoch 0's end (KIP-320)."""
    leader = cluster[0]
    topic = "replicated-diverge"
    create_on_1_and_3(cluster, zookeeper, topic)
    assert produce(leader, topic, [b"x"], 1) == (NONE, 1)
    leader.stop()
    wait_until(lambda: state(zookeeper, topic)["leader"] == -1, 20, what="leader -1")
    leader.start()
    wait_until(lambda: state(zookeeper, topic)["leader"] == 1, 30, what="broker 1 elected again")
    assert state(zookeeper, topic)["leader_epoch"] == 2

    def served():
        return fetch_v12(leader, topic, 0, FOLLOWER, -1)[0] == NONE
    wait_until(served, 20, what="broker 1 serves epoch 2")
    # Epoch 2 started at 2 (the log end when broker 1 took over); epoch 0 ends there.
    assert produce(leader, topic, [b"y"], 1) == (NONE, 2)
    err, _hw, diverging, records = fetch_v12(leader, topic, 3, FOLLOWER, 1, leader_epoch=2)
    assert (err, diverging, records) == (NONE, (0, 2), b"")
    # The leader's own epochs read on: no divergence.
    err, _hw, diverging, records = fetch_v12(leader, topic, 2, FOLLOWER, 0, leader_epoch=2)
    assert (err, diverging) == (NONE, None) and len(records) > 0
    err, _hw, diverging, _records = fetch_v12(leader, topic, 3, FOLLOWER, 2, leader_epoch=2)
    assert (err, diverging) == (NONE, None)
    # An epoch newer than any this leader knows: OFFSET_OUT_OF_RANGE (Kafka's readRecords).
    assert fetch_v12(leader, topic, 3, FOLLOWER, 7, leader_epoch=2)[0] == OFFSET_OUT_OF_RANGE
