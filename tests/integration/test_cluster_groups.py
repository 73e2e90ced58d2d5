"""Group coordinators across a cluster of brokers on a real ZooKeeper (issue 15): in a cluster
__consumer_offsets is a ZooKeeper topic, created on the first FindCoordinator (Kafka's internal
topic auto-creation) with offsets.topic.num.partitions partitions at
offsets.topic.replication.factor; FindCoordinator on every broker names the leader of the
group's partition abs(javaStringHashCode(group)) % partitions; every group API on another broker
answers NOT_COORDINATOR; a broker that becomes the leader of an offsets partition loads its
groups (COORDINATOR_LOAD_IN_PROGRESS meanwhile) and one that stops leading lets them go. Each
test uses its own chroot on one 3-node ZooKeeper ensemble (tests/cluster/zk_ensemble.py)."""
import base64
import json
import socket
import struct
import threading
import time
import uuid

import pytest

from kafka_wire import Reader, _request, cstr, flexible_call, s16, uvarint
from cluster_fixture import zookeeper  # noqa: F401 (a fixture: 3 nodes, issue 15)
from zk_fixture import ZkReader, start_brokers, wait_until, zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 3000
OFFSETS_PARTITIONS = 6
NONE = 0
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16


def start_cluster(tmp_path, zk, chroot, ids=(1, 2, 3), offsets_rf=1):
    return start_brokers(tmp_path, zk.connect + chroot, ids,
                         {"zookeeper.session.timeout.ms": SESSION_MS,
                          "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
                          "offsets.topic.replication.factor": offsets_rf,
                          "group.initial.rebalance.delay.ms": 0})


def stop_all(brokers):
    for b in brokers:
        try:
            b.stop()
        except Exception:
            pass


def zk_json(zk, path):
    r = ZkReader(zk.connect)
    try:
        return json.loads(r.get(path)[0])
    finally:
        r.close()


def zk_exists(zk, path):
    r = ZkReader(zk.connect)
    try:
        return r.exists(path)
    finally:
        r.close()


def java_string_hash(s):
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def partition_for(group, n):
    """Kafka's GroupMetadataManager.partitionFor: Utils.abs(hashCode) % n."""
    h = java_string_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % n


def call(b, api, version, body):
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        return _request(s, api, version, 7, body)


def find_coordinator_v0(b, group):
    """(error, node_id, host, port)"""
    resp = call(b, 10, 0, s16(group))
    err, node = struct.unpack(">hi", resp[:6])
    hlen = struct.unpack(">h", resp[6:8])[0]
    host = resp[8:8 + hlen].decode()
    port = struct.unpack(">i", resp[8 + hlen:12 + hlen])[0]
    return err, node, host, port


def find_coordinator_v1(b, group):
    r = Reader(call(b, 10, 1, s16(group) + struct.pack(">b", 0)))
    r.take(">i")
    err = r.take(">h")
    r.s16()
    node = r.take(">i")
    host = r.s16().decode()
    return err, node, host, r.take(">i")


def find_coordinator_v4(b, groups):
    """{group: (error, node_id, host, port)} of one batched request (v4+)."""
    body = struct.pack(">b", 0) + uvarint(len(groups) + 1)
    body += b"".join(cstr(g) for g in groups) + uvarint(0)
    r = flexible_call(b.bootstrap, 10, 4, body)
    r.take(">i")
    out = {}
    for _ in range(r.uvarint() - 1):
        key = r.cstr()
        node = r.take(">i")
        host = r.cstr()
        port = r.take(">i")
        err = r.take(">h")
        r.cstr()
        r.tags()
        out[key] = (err, node, host, port)
    return out


def coordinator_in_zk(zk, chroot, group):
    p = partition_for(group, OFFSETS_PARTITIONS)
    state = zk_json(zk, chroot + "/brokers/topics/__consumer_offsets/partitions/%d/state" % p)
    return state["leader"]


def wait_coordinator(brokers, group, timeout=30):
    """Waits until every broker names one coordinator for group; returns its id."""
    def agreed():
        seen = set()
        for b in brokers:
            err, node, _, _ = find_coordinator_v0(b, group)
            if err != NONE:
                return None
            seen.add(node)
        return seen.pop() if len(seen) == 1 else None
    return wait_until(agreed, timeout, what="one coordinator for %s on every broker" % group)


def by_id(brokers, node):
    return next(b for b in brokers if int(b.overrides["broker.id"]) == node)


def test_find_coordinator_creates_the_topic_and_every_broker_names_the_leader(tmp_path, zookeeper):
    chroot = "/groups1"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        groups = ["g-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(8)]
        assert not zk_exists(zookeeper, chroot + "/brokers/topics/__consumer_offsets")
        # The first FindCoordinator creates the internal topic and answers
        # COORDINATOR_NOT_AVAILABLE, as Kafka's KafkaApis.getCoordinator does.
        err, node, host, port = find_coordinator_v0(brokers[1], groups[0])
        assert (err, node, port) == (COORDINATOR_NOT_AVAILABLE, -1, -1)
        wait_until(lambda: zk_exists(zookeeper, chroot + "/brokers/topics/__consumer_offsets"),
                   10, what="__consumer_offsets in ZooKeeper")
        znode = zk_json(zookeeper, chroot + "/brokers/topics/__consumer_offsets")
        assert sorted(int(p) for p in znode["partitions"]) == list(range(OFFSETS_PARTITIONS))
        assert all(len(r) == 1 for r in znode["partitions"].values())
        # Its leaders are spread over the brokers as any topic's.
        assert len({r[0] for r in znode["partitions"].values()}) == 3
        for g in groups:
            leader = wait_coordinator(brokers, g)
            assert leader == coordinator_in_zk(zookeeper, chroot, g)
            coord = by_id(brokers, leader)
            for b in brokers:
                assert find_coordinator_v0(b, g) == (NONE, leader, "127.0.0.1", coord.port)
                assert find_coordinator_v1(b, g) == (NONE, leader, "127.0.0.1", coord.port)
        # Batched keys (v4+): each group its own coordinator, the same from every broker.
        answers = [find_coordinator_v4(b, groups) for b in brokers]
        assert answers[0] == answers[1] == answers[2]
        for g in groups:
            leader = coordinator_in_zk(zookeeper, chroot, g)
            assert answers[0][g] == (NONE, leader, "127.0.0.1", by_id(brokers, leader).port)
        assert len({answers[0][g][1] for g in groups}) > 1
    finally:
        stop_all(brokers)


def test_offsets_replication_factor_over_live_brokers_is_not_available(tmp_path, zookeeper):
    chroot = "/groups2"
    brokers = start_cluster(tmp_path, zookeeper, chroot, ids=(1, 2), offsets_rf=3)
    try:
        for _ in range(3):
            for b in brokers:
                assert find_coordinator_v0(b, "g")[0] == COORDINATOR_NOT_AVAILABLE
            time.sleep(0.3)
        assert not zk_exists(zookeeper, chroot + "/brokers/topics/__consumer_offsets")
        log = open(brokers[0].log_path, "rb").read() + open(brokers[1].log_path, "rb").read()
        assert b"Replication factor: 3 larger than available brokers: 2." in log
    finally:
        stop_all(brokers)


# ---- raw-wire group APIs: the first error code of each response ----

def join_group_v0(b, group):
    body = s16(group) + struct.pack(">i", 10000) + s16("") + s16("consumer")
    body += struct.pack(">i", 1) + s16("range") + struct.pack(">i", 0)
    return struct.unpack(">h", call(b, 11, 0, body)[:2])[0]


def sync_group_v0(b, group):
    body = s16(group) + struct.pack(">i", 1) + s16("m") + struct.pack(">i", 0)
    return struct.unpack(">h", call(b, 14, 0, body)[:2])[0]


def heartbeat_v0(b, group):
    return struct.unpack(">h", call(b, 12, 0, s16(group) + struct.pack(">i", 1) + s16("m"))[:2])[0]


def leave_group_v0(b, group):
    return struct.unpack(">h", call(b, 13, 0, s16(group) + s16("m"))[:2])[0]


def offset_commit_v2(b, group, topic):
    body = s16(group) + struct.pack(">i", -1) + s16("") + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + s16(topic) + struct.pack(">i", 1)
    body += struct.pack(">iq", 0, 5) + s16("")
    r = Reader(call(b, 8, 2, body))
    assert r.take(">i") == 1
    r.s16()
    assert r.take(">i") == 1
    r.take(">i")
    return r.take(">h")


def offset_fetch_v3(b, group):
    """Top-level error (v2+), with no topics asked."""
    resp = call(b, 9, 3, s16(group) + struct.pack(">i", 0))
    return struct.unpack(">h", resp[-2:])[0]


def offset_fetch_v1(b, group, topic):
    """v1 carries the error in each partition."""
    body = s16(group) + struct.pack(">i", 1) + s16(topic) + struct.pack(">ii", 1, 0)
    r = Reader(call(b, 9, 1, body))
    assert r.take(">i") == 1
    r.s16()
    assert r.take(">i") == 1
    r.take(">i")
    offset = r.take(">q")
    r.s16()
    return r.take(">h"), offset


def describe_groups_v0(b, group):
    resp = call(b, 15, 0, struct.pack(">i", 1) + s16(group))
    return struct.unpack(">h", resp[4:6])[0]


def delete_groups_v0(b, group):
    r = Reader(call(b, 42, 0, struct.pack(">i", 1) + s16(group)))
    r.take(">i")
    assert r.take(">i") == 1
    r.s16()
    return r.take(">h")


def offset_delete_v0(b, group, topic):
    body = s16(group) + struct.pack(">i", 1) + s16(topic) + struct.pack(">ii", 1, 0)
    return struct.unpack(">h", call(b, 47, 0, body)[:2])[0]


def consumer_group_heartbeat_v0(b, group):
    body = cstr(group) + cstr("") + struct.pack(">i", 0) + cstr(None) + cstr(None)
    body += struct.pack(">i", 45000) + uvarint(2) + cstr("t") + cstr(None) + uvarint(0)
    body += uvarint(0)
    r = flexible_call(b.bootstrap, 68, 0, body)
    r.take(">i")
    return r.take(">h")


def consumer_group_describe_v0(b, group):
    body = uvarint(2) + cstr(group) + struct.pack(">b", 0) + uvarint(0)
    r = flexible_call(b.bootstrap, 69, 0, body)
    r.take(">i")
    assert r.uvarint() == 2
    return r.take(">h")


def list_groups_v0(b):
    """(error, [group ids])"""
    r = Reader(call(b, 16, 0, b""))
    err = r.take(">h")
    out = []
    for _ in range(r.take(">i")):
        out.append(r.s16().decode())
        r.s16()
    return err, out


def group_api_errors(b, group, topic, join=True):
    out = {"JoinGroup": join_group_v0(b, group)} if join else {}
    return dict(out, **{
        "SyncGroup": sync_group_v0(b, group),
        "Heartbeat": heartbeat_v0(b, group),
        "LeaveGroup": leave_group_v0(b, group),
        "OffsetCommit": offset_commit_v2(b, group, topic),
        "OffsetFetch": offset_fetch_v3(b, group),
        "OffsetFetch v1": offset_fetch_v1(b, group, topic)[0],
        "DescribeGroups": describe_groups_v0(b, group),
        "DeleteGroups": delete_groups_v0(b, group),
        "OffsetDelete": offset_delete_v0(b, group, topic),
        "ConsumerGroupHeartbeat": consumer_group_heartbeat_v0(b, group),
        "ConsumerGroupDescribe": consumer_group_describe_v0(b, group),
    })


def create(b, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                             request_timeout=20)
    fs[name].result(timeout=30)

    def led():
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        t = md.topics.get(name)
        return t is not None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values())
    wait_until(led, 20, what="every partition of %s led" % name)


def test_group_apis_on_other_brokers_answer_not_coordinator(tmp_path, zookeeper):
    chroot = "/groups3"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "events", 3)
        group = "raw-" + uuid.uuid4().hex[:8]
        leader = wait_coordinator(brokers, group)
        coord = by_id(brokers, leader)
        others = [b for b in brokers if b is not coord]
        for b in others:
            errors = group_api_errors(b, group, "events")
            assert errors == {k: NOT_COORDINATOR for k in errors}, errors
            assert list_groups_v0(b) == (NONE, [])
        # The coordinator itself serves them (each its own answer, never NOT_COORDINATOR).
        assert offset_commit_v2(coord, group, "events") == NONE
        assert offset_fetch_v1(coord, group, "events") == (NONE, 5)
        # ListGroups lists the groups of the broker's own partitions only.
        assert group in list_groups_v0(coord)[1]
        for b in others:
            assert list_groups_v0(b) == (NONE, [])
        errors = group_api_errors(coord, group, "events", join=False)
        assert NOT_COORDINATOR not in errors.values(), errors
        assert COORDINATOR_NOT_AVAILABLE not in errors.values(), errors
    finally:
        stop_all(brokers)


def produce_all(b, topic, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=str(i).encode())
    assert p.flush(30) == 0


def test_one_group_of_three_clients_each_bootstrapped_from_another_broker(tmp_path, zookeeper):
    from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions,
                                 TopicPartition)
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP

    chroot = "/groups4"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    consumers = []
    try:
        topic = "orders"
        create(brokers[0], topic, 12)
        total = 1200
        group = "mixed-" + uuid.uuid4().hex[:8]
        seen = [set(), set(), set()]
        stop = threading.Event()
        errors = []

        def run_confluent(i, b):
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                          "auto.offset.reset": "earliest", "enable.auto.commit": False,
                          "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
            consumers.append(c)
            c.subscribe([topic])
            try:
                while not stop.is_set():
                    m = c.poll(0.2)
                    if m is None or m.error():
                        continue
                    seen[i].add(int(m.value()))
                    c.commit(message=m, asynchronous=False)
            except Exception as e:  # reported by the main thread
                errors.append(e)
            finally:
                c.close()

        def run_kafka_python(i, b):
            c = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=group,
                              auto_offset_reset="earliest", enable_auto_commit=False,
                              session_timeout_ms=10000, heartbeat_interval_ms=500,
                              api_version_auto_timeout_ms=10000)
            try:
                while not stop.is_set():
                    polled = c.poll(timeout_ms=200)
                    for recs in polled.values():
                        for m in recs:
                            seen[i].add(int(m.value))
                    if polled:
                        c.commit()
            except Exception as e:
                errors.append(e)
            finally:
                c.close()

        threads = [threading.Thread(target=run_confluent, args=(0, brokers[0])),
                   threading.Thread(target=run_kafka_python, args=(1, brokers[1])),
                   threading.Thread(target=run_confluent, args=(2, brokers[2]))]
        for t in threads:
            t.start()
        admin = AdminClient({"bootstrap.servers": brokers[2].bootstrap})

        def one_stable_group():
            d = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
            if d.state != ConsumerGroupState.STABLE or len(d.members) != 3:
                return None
            return d
        try:
            d = wait_until(one_stable_group, 40, interval=0.5,
                           what="one Stable group of 3 members")
            # Produced once the three share the group, so each consumes its own partitions.
            produce_all(brokers[1], topic, total)
            wait_until(lambda: len(set().union(*seen)) == total, 40, interval=0.2,
                       what="every record consumed by the group")
            # Every partition assigned exactly once, in the one generation all three share.
            assigned = [tp.partition for m in d.members for tp in m.assignment.topic_partitions]
            assert sorted(assigned) == list(range(12))
            assert all(m.assignment.topic_partitions for m in d.members)
            assert all(seen), "each member consumed its partitions"
            assert sum(len(x) for x in seen) == total, "no partition consumed twice"
            d2 = one_stable_group()  # the same three members all along: no rebalance since
            assert d2 is not None
            assert sorted(m.member_id for m in d2.members) == sorted(m.member_id for m in d.members)
            leader = coordinator_in_zk(zookeeper, chroot, group)
            assert d.coordinator.id == leader
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not errors, errors

        # Offsets committed through the members, read back through another broker.
        def ends():
            c = Consumer({"bootstrap.servers": brokers[0].bootstrap, "group.id": "probe"})
            try:
                return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                        for p in range(12)}
            finally:
                c.close()
        end = ends()
        assert sum(end.values()) == total
        other = next(b for b in brokers if int(b.overrides["broker.id"]) != leader)
        other_admin = AdminClient({"bootstrap.servers": other.bootstrap})
        res = other_admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=10)[group].result()
        committed = {tp.partition: tp.offset for tp in res.topic_partitions}
        assert committed == end
        kc = KafkaConsumer(bootstrap_servers=other.bootstrap, group_id=group,
                           enable_auto_commit=False)
        try:
            assert {p: kc.committed(KTP(topic, p)) for p in range(12)} == end
        finally:
            kc.close()
    finally:
        stop_all(brokers)


def test_coordinator_stopped_is_not_available_and_restarted_loads_the_offsets(tmp_path,
                                                                           zookeeper):
    from confluent_kafka import Consumer, TopicPartition

    chroot = "/groups5"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "events", 3)
        group = "restart-" + uuid.uuid4().hex[:8]
        leader = wait_coordinator(brokers, group)
        coord = by_id(brokers, leader)
        others = [b for b in brokers if b is not coord]
        c = Consumer({"bootstrap.servers": others[0].bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        try:
            c.commit(offsets=[TopicPartition("events", p, 10 + p) for p in range(3)],
                     asynchronous=False)
        finally:
            c.close()
        assert offset_fetch_v1(coord, group, "events") == (NONE, 10)

        coord.stop()
        # RF 1: the partition goes offline (leader -1), so no coordinator, as Kafka answers.
        wait_until(lambda: all(find_coordinator_v0(b, group)[0] == COORDINATOR_NOT_AVAILABLE
                               for b in others), 20, what="COORDINATOR_NOT_AVAILABLE")
        assert coordinator_in_zk(zookeeper, chroot, group) == -1

        coord.start()
        assert wait_coordinator(brokers, group) == leader
        # Loaded from its log on election: the offsets are there again, through another broker.
        def fetched():
            err, off = offset_fetch_v1(coord, group, "events")
            assert err in (NONE, COORDINATOR_LOAD_IN_PROGRESS)
            return off if err == NONE else None
        assert wait_until(fetched, 20, what="the offsets loaded") == 10
        c = Consumer({"bootstrap.servers": others[1].bootstrap, "group.id": group})
        try:
            got = c.committed([TopicPartition("events", p) for p in range(3)], timeout=20)
        finally:
            c.close()
        assert {tp.partition: tp.offset for tp in got} == {p: 10 + p for p in range(3)}
        log = open(coord.log_path, "rb").read()
        assert b"Finished loading offsets and group metadata from __consumer_offsets-%d" % (
            partition_for(group, OFFSETS_PARTITIONS)) in log
    finally:
        stop_all(brokers)


def consumer_group_join_v0(b, group, topic):
    """A KIP-848 member joins subscribed to topic and heartbeats until it has an assignment:
    (error, {topic_id bytes: [partitions]})."""
    member, epoch = "", 0
    for _ in range(20):
        body = cstr(group) + cstr(member) + struct.pack(">i", epoch) + cstr(None) + cstr(None)
        body += struct.pack(">i", 45000) + uvarint(2) + cstr(topic) + cstr(None) + uvarint(0)
        body += uvarint(0)
        r = flexible_call(b.bootstrap, 68, 0, body)
        r.take(">i")
        err = r.take(">h")
        r.cstr()
        member = r.cstr() or member
        epoch = r.take(">i")
        r.take(">i")
        if err != NONE:
            return err, {}
        if r.take(">b") == 1:
            out = {}
            for _ in range(r.uvarint() - 1):
                tid = r.raw(16)
                out[tid] = [r.take(">i") for _ in range(r.uvarint() - 1)]
                r.tags()
            if out:
                return err, out
        time.sleep(0.2)
    return None, {}


def test_coordinator_serves_topics_other_brokers_lead(tmp_path, zookeeper):
    """The coordinator commits offsets of, and assigns, partitions it does not lead (topics not
    open on it): the topics are ZooKeeper's."""
    chroot = "/groups6"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "solo", 1)
        leader = zk_json(zookeeper, chroot + "/brokers/topics/solo/partitions/0/state")["leader"]
        topic_id = base64.urlsafe_b64decode(
            zk_json(zookeeper, chroot + "/brokers/topics/solo")["topic_id"] + "==")
        wait_coordinator(brokers, "probe")
        group = next(g for g in ("solo-%d" % i for i in range(100))
                     if coordinator_in_zk(zookeeper, chroot, g) != leader)
        coord = by_id(brokers, wait_coordinator(brokers, group))
        assert offset_commit_v2(coord, group, "solo") == NONE
        assert offset_fetch_v1(coord, group, "solo") == (NONE, 5)
        cg = group + "-848"
        while coordinator_in_zk(zookeeper, chroot, cg) == leader:
            cg += "x"
        cg_coord = by_id(brokers, wait_coordinator(brokers, cg))
        assert consumer_group_join_v0(cg_coord, cg, "solo") == (NONE, {topic_id: [0]})
    finally:
        stop_all(brokers)


def test_coordinator_killed_rf3_offsets_survive_and_the_consumer_goes_on(tmp_path, zookeeper):
    """offsets.topic.replication.factor=3 on 3 brokers: a confluent_kafka consumer commits as it
    reads; its coordinator's broker (the leader of the group's __consumer_offsets partition) is
    killed -9 right after a commit; the controller elects another replica of that partition,
    which loads the group; the consumer finds it, every offset committed is there, and it goes
    on from them: nothing committed is read again, nothing is skipped."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    chroot = "/groups-rf3"
    brokers = start_cluster(tmp_path, zookeeper, chroot, offsets_rf=3)
    try:
        admin = AdminClient({"bootstrap.servers": brokers[0].bootstrap})
        admin.create_topics([NewTopic("rf3", num_partitions=3, replication_factor=3)],
                            request_timeout=20)["rf3"].result(timeout=30)
        total = 600
        produce_all(brokers[0], "rf3", total)  # acks=all (librdkafka's default)
        group = "rf3-" + uuid.uuid4().hex[:8]
        leader = wait_coordinator(brokers, group)
        coord = by_id(brokers, leader)
        p = partition_for(group, OFFSETS_PARTITIONS)
        st = zk_json(zookeeper, chroot + "/brokers/topics/__consumer_offsets/partitions/%d/state" % p)
        assert sorted(st["isr"]) == [1, 2, 3], st
        c = Consumer({"bootstrap.servers": ",".join(b.bootstrap for b in brokers),
                      "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                      "heartbeat.interval.ms": 500, "topic.metadata.refresh.interval.ms": 1000})
        seen = []          # (partition, offset) in the order read
        committed = {}     # partition -> offset committed (the next to read)
        try:
            c.subscribe(["rf3"])
            deadline = time.time() + 60
            while len(seen) < total // 2 and time.time() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                seen.append((m.partition(), m.offset()))
                if len(seen) % 10 == 0:
                    got = c.commit(asynchronous=False)
                    for tp in got:
                        assert tp.error is None, tp
                        if tp.offset >= 0:  # -1001: nothing read from it yet
                            committed[tp.partition] = tp.offset
            assert len(seen) >= total // 2
            before = dict(committed)
            at_kill = len(seen)
            coord.kill9()
            t_kill = time.time()
            # The consumer goes on (it re-finds its coordinator after the session of the dead
            # broker expires and the controller elects another replica).
            deadline = time.time() + 90
            while len(seen) < total and time.time() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                seen.append((m.partition(), m.offset()))
                if len(seen) % 10 == 0 or len(seen) == total:
                    got = c.commit(asynchronous=False)
                    for tp in got:
                        assert tp.error is None, tp
                        if tp.offset >= 0:  # -1001: nothing read from it yet
                            committed[tp.partition] = tp.offset
            after_kill = seen[at_kill:]
            # Nothing committed before the kill read again, nothing skipped.
            again = [(q, o) for q, o in after_kill if o < before.get(q, 0)]
            assert again == [], again[:10]
            assert len(seen) == len(set(seen)) == total, (len(seen), len(set(seen)))
        finally:
            c.close()
        new_leader = coordinator_in_zk(zookeeper, chroot, group)
        assert new_leader not in (-1, leader)
        survivors = [b for b in brokers if b is not coord]
        assert wait_coordinator(survivors, group) == new_leader
        # The offsets as the new coordinator holds them, through a fresh consumer.
        c = Consumer({"bootstrap.servers": survivors[0].bootstrap, "group.id": group})
        try:
            got = c.committed([TopicPartition("rf3", q) for q in range(3)], timeout=20)
        finally:
            c.close()
        assert {tp.partition: tp.offset for tp in got} == committed
        assert sum(committed.values()) == total
        print("coordinator %d killed after %d of %d records; consumer done %.1f s later, "
              "coordinator %d" % (leader, at_kill, total, time.time() - t_kill, new_leader))
    finally:
        stop_all(brokers)


def test_offsets_rf3_waits_for_the_third_broker(tmp_path, zookeeper):
    """KIP-115, as Kafka 3.9 in ZooKeeper mode: offsets.topic.replication.factor is not capped
    by the live brokers; with 1 (then 2) of 3 brokers up every FindCoordinator answers
    COORDINATOR_NOT_AVAILABLE and no __consumer_offsets is created; once the third registers,
    the next FindCoordinator creates it with 3 replicas per partition, all in the ISR."""
    from conftest import Broker
    chroot = "/groups-kip115"
    first = start_cluster(tmp_path, zookeeper, chroot, ids=(1,), offsets_rf=3)
    brokers = list(first)
    try:
        for ids in ((1,), (1, 2)):
            if len(brokers) < len(ids):
                ov = dict(first[0].overrides, **{"broker.id": ids[-1]})
                b = Broker(str(tmp_path / ("data%d" % ids[-1])), overrides=ov)
                brokers.append(b)
                b.start()
                wait_until(lambda: all(find_coordinator_v0(x, "g")[0] == COORDINATOR_NOT_AVAILABLE
                                       for x in brokers), 20, what="both answer")
            for _ in range(3):
                for b in brokers:
                    assert find_coordinator_v0(b, "g")[0] == COORDINATOR_NOT_AVAILABLE
                time.sleep(0.3)
            assert not zk_exists(zookeeper, chroot + "/brokers/topics/__consumer_offsets")
            log = b"".join(open(b.log_path, "rb").read() for b in brokers)
            assert b"Replication factor: 3 larger than available brokers: %d." % len(ids) in log
        ov = dict(first[0].overrides, **{"broker.id": 3})
        third = Broker(str(tmp_path / "data3"), overrides=ov)
        brokers.append(third)
        third.start()
        leader = wait_coordinator(brokers, "g")
        assignment = zk_json(zookeeper, chroot + "/brokers/topics/__consumer_offsets")["partitions"]
        assert len(assignment) == OFFSETS_PARTITIONS
        assert all(sorted(r) == [1, 2, 3] for r in assignment.values()), assignment
        st = zk_json(zookeeper, chroot + "/brokers/topics/__consumer_offsets/partitions/%d/state"
                     % partition_for("g", OFFSETS_PARTITIONS))
        assert st["leader"] == leader and sorted(st["isr"]) == [1, 2, 3]
    finally:
        stop_all(brokers)


def test_commit_answered_once_the_isr_has_it(tmp_path, zookeeper):
    """Kafka's coordinator appends a commit with acks=-1: with both followers of the group's
    __consumer_offsets partition stopped (SIGSTOP, shorter than their session, so they stay in
    the ISR), an OffsetCommit is not answered; resumed, they fetch it and it is answered
    without error. gregor answered at the append, before any follower had the commit."""
    import os
    import signal
    chroot = "/groups-isr-commit"
    brokers = start_cluster(tmp_path, zookeeper, chroot, offsets_rf=3)
    try:
        create(brokers[0], "committed", 1)
        group = "isr-" + uuid.uuid4().hex[:8]
        coord = by_id(brokers, wait_coordinator(brokers, group))
        followers = [b for b in brokers if b is not coord]
        p = partition_for(group, OFFSETS_PARTITIONS)
        st = zk_json(zookeeper, chroot + "/brokers/topics/__consumer_offsets/partitions/%d/state" % p)
        assert sorted(st["isr"]) == [1, 2, 3], st
        assert offset_commit_v2(coord, group, "committed") == NONE  # the followers fetch it
        answer = {}

        def commit():
            answer["error"] = offset_commit_v2(coord, group, "committed")
            answer["at"] = time.monotonic()
        stop_s = 1.5  # well under SESSION_MS
        for b in followers:
            os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            t = threading.Thread(target=commit, daemon=True)
            t.start()
            t.join(stop_s)
            answered_while_stopped = dict(answer)
        finally:
            resumed = time.monotonic()
            for b in followers:
                os.kill(b.proc.pid, signal.SIGCONT)
        t.join(10)
        assert answered_while_stopped == {}, answered_while_stopped
        assert answer.get("error") == NONE and answer["at"] >= resumed, answer
        print("commit answered %.3f s after the followers resumed" % (answer["at"] - resumed))
    finally:
        stop_all(brokers)


def join_group_v0_member(b, group):
    """A JoinGroup v0 with a new member: (error, generation, member_id)."""
    body = s16(group) + struct.pack(">i", 10000) + s16("") + s16("consumer")
    body += struct.pack(">i", 1) + s16("range") + struct.pack(">i", 0)
    r = Reader(call(b, 11, 0, body))
    err = r.take(">h")
    generation = r.take(">i")
    r.s16()  # protocol
    r.s16()  # leader
    return err, generation, r.s16().decode()


def sync_group_v0_as_leader(b, group, generation, member):
    """The leader's SyncGroup v0 with one assignment for itself: (error, assignment)."""
    body = s16(group) + struct.pack(">i", generation) + s16(member)
    body += struct.pack(">i", 1) + s16(member) + struct.pack(">i", 4) + b"mine"
    r = Reader(call(b, 14, 0, body))
    err = r.take(">h")
    (n,) = struct.unpack(">i", r.take("4s"))
    return err, r.take("%ds" % n) if n > 0 else b""


def test_sync_group_answered_once_the_isr_has_the_group(tmp_path, zookeeper):
    """Kafka's storeGroup appends the group's record with acks=-1 before SyncGroup hands out
    assignments: with both followers of the group's __consumer_offsets partition stopped
    (inside their session, so still in the ISR), the leader's SyncGroup is not answered;
    resumed, it gets its assignment. gregor answered at the append: a kill -9 of the
    coordinator then lost the generation every member had been told."""
    import os
    import signal
    chroot = "/groups-isr-sync"
    brokers = start_cluster(tmp_path, zookeeper, chroot, offsets_rf=3)
    try:
        create(brokers[0], "synced", 1)
        group = "sync-" + uuid.uuid4().hex[:8]
        coord = by_id(brokers, wait_coordinator(brokers, group))
        followers = [b for b in brokers if b is not coord]
        # Replicated once: the followers fetch the partition (the first fetch of a new one
        # waits for the fetcher's request in flight).
        assert offset_commit_v2(coord, group, "synced") == NONE
        err, generation, member = join_group_v0_member(coord, group)
        assert err == NONE and generation == 1, (err, generation)
        answer = {}

        def sync():
            answer["result"] = sync_group_v0_as_leader(coord, group, generation, member)
            answer["at"] = time.monotonic()
        for b in followers:
            os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            t = threading.Thread(target=sync, daemon=True)
            t.start()
            t.join(1.5)  # well under SESSION_MS
            answered_while_stopped = dict(answer)
        finally:
            resumed = time.monotonic()
            for b in followers:
                os.kill(b.proc.pid, signal.SIGCONT)
        t.join(10)
        assert answered_while_stopped == {}, answered_while_stopped
        assert answer.get("result") == (NONE, b"mine") and answer["at"] >= resumed, answer
        print("SyncGroup answered %.3f s after the followers resumed" % (answer["at"] - resumed))
    finally:
        stop_all(brokers)
