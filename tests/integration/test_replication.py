"""Replication end to end (issue 16): the leader's side and the followers together, on 3 gregor
brokers and a real ZooKeeper. An RF 3 topic with min.insync.replicas=2 takes an idempotent
acks=all producer (confluent_kafka): every acknowledged record is on all three replicas, at the
offset its acknowledgement named, and the three segment files are the same bytes; the ISR in
the partition's state znode is all three. A follower SIGSTOPped past replica.lag.time.max.ms
leaves the ISR (the leader writes it) and acks=all keeps being answered with two; with both
followers stopped the ISR is the leader alone and acks=all is refused NOT_ENOUGH_REPLICAS;
resumed (SIGCONT), they catch up, rejoin the ISR, and the three logs are equal again."""
import os
import signal
import struct
import time

import pytest

from conftest import Broker
from kafka_wire import produce_v7, record_batch
from test_cluster_topics import stop_all, zk_json
from test_replication_follower import batches, log_bytes
from zk_fixture import wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

IDS = (1, 2, 3)
CHROOT = "/replication"
TOPIC = "rf3"
LAG_MS = 2000        # replica.lag.time.max.ms
SESSION_MS = 30000   # well past the stops below: no broker's registration expires
NOT_ENOUGH_REPLICAS = 19


def uvarint(data, off):
    shift = value = 0
    while True:
        b = data[off]
        off += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, off


def varint(data, off):
    v, off = uvarint(data, off)
    return (v >> 1) ^ -(v & 1), off


def records_of(data):
    """{offset: value} of a log's uncompressed v2 batches."""
    out, off = {}, 0
    while off + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, off)
        attributes = struct.unpack_from(">h", data, off + 21)[0]
        assert attributes & 7 == 0, "compressed batch at %d" % base
        (count,) = struct.unpack_from(">i", data, off + 57)
        r, end = off + 61, off + 12 + length
        for _ in range(count):
            size, r = varint(data, r)
            nxt = r + size
            r += 1  # attributes
            _, r = varint(data, r)            # timestamp delta
            delta, r = varint(data, r)
            klen, r = varint(data, r)
            r += max(klen, 0)
            vlen, r = varint(data, r)
            out[base + delta] = data[r:r + vlen] if vlen >= 0 else None
            r = nxt
        assert r == end, "a batch's records do not end at its length (%d)" % base
        off = end
    assert off == len(data), "a torn batch at byte %d" % off
    return out


def isr(zk):
    return sorted(zk_json(zk, CHROOT + "/brokers/topics/%s/partitions/0/state" % TOPIC)["isr"])


def produce_all(producer, start, n):
    """n records through the idempotent acks=all producer: {offset: value} acknowledged."""
    acked, errors = {}, []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.offset()] = msg.value()
    for i in range(start, start + n):
        producer.produce(TOPIC, key=b"k%d" % (i % 13), value=b"v%d-" % i + b"x" * (i % 300),
                         partition=0, on_delivery=done)
        if i % 50 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]
    assert len(acked) == n
    return acked


def all_replicas_hold(brokers, acked):
    """Every broker's segment files are the same bytes, ending at the last acked offset, and
    hold every acknowledged record at its offset."""
    logs = [log_bytes(b, TOPIC, 0) for b in brokers]
    if not logs[0] or any(log != logs[0] for log in logs):
        return False
    if batches(logs[0])[-1][1] != max(acked):
        return False
    held = records_of(logs[0])
    return all(held.get(o) == v for o, v in acked.items())


def test_rf3_min_insync_2_acks_all_through_follower_stops(tmp_path, zookeeper):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    brokers = [Broker(str(tmp_path / ("data%d" % i)),
                      overrides={"broker.id": i, "zookeeper.connect": zookeeper.connect + CHROOT,
                                 "zookeeper.session.timeout.ms": SESSION_MS,
                                 "replica.lag.time.max.ms": LAG_MS}) for i in IDS]
    stopped = []
    producer = None
    try:
        for b in brokers:
            b.start()
        ids = {b.overrides["broker.id"]: b for b in brokers}
        bootstrap = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": bootstrap})

        def all_listed():
            return sorted(admin.list_topics(timeout=10).brokers) == list(IDS)
        wait_until(all_listed, 20, what="every broker registered")
        fs = admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])
        fs[TOPIC].result(30)
        wait_until(lambda: isr(zookeeper) == list(IDS), 30, what="ISR [1, 2, 3] in ZooKeeper")
        leader_id = zk_json(zookeeper, CHROOT + "/brokers/topics/%s/partitions/0/state"
                            % TOPIC)["leader"]
        leader = ids[leader_id]
        followers = [b for i, b in sorted(ids.items()) if i != leader_id]

        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                             "acks": "all", "linger.ms": 5})
        acked = produce_all(producer, 0, 1000)
        wait_until(lambda: all_replicas_hold(brokers, acked), 30,
                   what="every acked record on all three replicas, byte for byte")
        assert isr(zookeeper) == list(IDS)

        # One follower stopped: after replica.lag.time.max.ms it leaves the ISR and acks=all
        # is answered by the two left (min.insync.replicas=2).
        first = followers[0]
        t0 = time.time()
        os.kill(first.proc.pid, signal.SIGSTOP)
        stopped.append(first)
        acked.update(produce_all(producer, 1000, 500))
        two = sorted(i for i in IDS if ids[i] is not first)
        wait_until(lambda: isr(zookeeper) == two, LAG_MS / 1000 + 15,
                   what="the stopped follower leaves the ISR")
        assert time.time() - t0 >= LAG_MS / 1000 - 0.5
        acked.update(produce_all(producer, 1500, 500))
        wait_until(lambda: all_replicas_hold([leader, followers[1]], acked), 30,
                   what="the running follower has every acked record")

        # Both followers stopped: the ISR is the leader alone, acks=all is refused. A follower
        # at the leader's log end is in sync however long ago it fetched (Kafka's
        # isCaughtUp): one acks=1 record moves the log end, and the second leaves after the lag.
        second = followers[1]
        os.kill(second.proc.pid, signal.SIGSTOP)
        stopped.append(second)
        err, offset = produce_v7(leader.bootstrap, TOPIC, 0, record_batch([b"acks1"]), acks=1)
        assert (err, offset) == (0, max(acked) + 1)
        acked[offset] = b"acks1"
        wait_until(lambda: isr(zookeeper) == [leader_id], LAG_MS / 1000 + 15,
                   what="the ISR shrinks to the leader")
        err, _ = produce_v7(leader.bootstrap, TOPIC, 0, record_batch([b"refused"]), acks=-1)
        assert err == NOT_ENOUGH_REPLICAS
        assert batches(log_bytes(leader, TOPIC, 0))[-1][1] == max(acked)  # not appended

        # Resumed: both catch up and rejoin; acks=all works again on all three.
        for b in stopped:
            os.kill(b.proc.pid, signal.SIGCONT)
        stopped.clear()
        wait_until(lambda: isr(zookeeper) == list(IDS), 30, what="both followers rejoin")
        acked.update(produce_all(producer, 2000, 500))
        assert isr(zookeeper) == list(IDS)
        wait_until(lambda: all_replicas_hold(brokers, acked), 30,
                   what="all three replicas equal again with every acked record")
        assert len(acked) == 2501 and sorted(acked) == list(range(2501))
    finally:
        for b in stopped:
            os.kill(b.proc.pid, signal.SIGCONT)
        if producer is not None:
            producer.flush(5)
        stop_all(brokers)
