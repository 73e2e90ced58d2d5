"""Topics across a cluster of brokers on a real ZooKeeper (issue 15, second step): CreateTopics
through any broker writes Kafka's /brokers/topics/<t> with replicas assigned round robin from a
random start over the live brokers (AdminUtils.assignReplicasToBrokers, rack-unaware), the
controller writes each partition's state fenced by its epoch, every broker's Metadata lists
every topic with ZooKeeper's leaders, replicas and ISR, and a Produce / Fetch / ListOffsets for
a partition another broker leads answers NOT_LEADER_OR_FOLLOWER (clients refresh Metadata and
retry on their own). Each test uses its own chroot on one ZooKeeper server."""
import json
import socket
import struct
import uuid
import base64

import pytest

from kafka_wire import _request, produce_v7, record_batch
from zk_fixture import ZkReader, start_brokers, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 3000
NOT_LEADER_OR_FOLLOWER = 6


def start_cluster(tmp_path, zk, chroot, ids=(1, 2, 3), extra=None):
    # One controlled-shutdown attempt: a broker stopping with nowhere to move its partitions
    # (ISR of itself) stops after it instead of Kafka's 3 attempts 5 s apart (failover
    # tests in test_replication_failover.py keep Kafka's defaults).
    return start_brokers(tmp_path, zk.connect + chroot, ids,
                         dict({"zookeeper.session.timeout.ms": SESSION_MS,
                               "controlled.shutdown.max.retries": 1}, **(extra or {})))


def stop_all(brokers):
    for b in brokers:
        try:
            b.stop()
        except Exception:
            pass


def zk_get(zk, path):
    r = ZkReader(zk.connect)
    try:
        return r.get(path)
    finally:
        r.close()


def zk_json(zk, path):
    return json.loads(zk_get(zk, path)[0])


def create(b, name, partitions, rf):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=rf)], request_timeout=20)
    return fs[name].result(timeout=30)


def leaders_seen(b, name):
    """{partition: (leader, replicas, isr)} in b's Metadata, or None while a leader is missing."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return None
    out = {}
    for p, pm in t.partitions.items():
        if pm.leader < 0 or pm.error is not None:
            return None
        out[p] = (pm.leader, list(pm.replicas), list(pm.isrs))
    return out


def expected_kafka_assignment(ids, nparts, rf, start, shift):
    """Kafka's AdminUtils.assignReplicasToBrokersRackUnaware, for comparison."""
    n = len(ids)
    out = {}
    for p in range(nparts):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start) % n
        reps = [ids[first]]
        for j in range(rf - 1):
            reps.append(ids[(first + 1 + (shift + j) % (n - 1)) % n])
        out[p] = reps
    return out


def test_create_through_any_broker_assigns_and_every_broker_lists_leaders(tmp_path, zookeeper):
    chroot = "/topics1"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[1], "orders", 6, 1)
        znode = zk_json(zookeeper, chroot + "/brokers/topics/orders")
        assert znode["version"] == 3
        assert set(znode) == {"version", "partitions", "topic_id", "adding_replicas",
                              "removing_replicas"}
        assert znode["adding_replicas"] == {} and znode["removing_replicas"] == {}
        parts = {int(p): r for p, r in znode["partitions"].items()}
        assert sorted(parts) == list(range(6))
        ids = [1, 2, 3]
        firsts = [parts[p][0] for p in range(6)]
        start = ids.index(firsts[0])
        # round robin over the sorted live brokers from a random start
        assert parts == expected_kafka_assignment(ids, 6, 1, start, 0)
        topic_id = znode["topic_id"]
        assert len(topic_id) == 22
        epoch = int(zk_get(zookeeper, chroot + "/controller_epoch")[0])

        def states():
            try:
                return {p: zk_json(zookeeper, chroot + "/brokers/topics/orders/partitions/%d/state"
                                   % p) for p in range(6)}
            except Exception:
                return None
        st = wait_until(states, 15, what="the controller wrote every partition's state")
        for p in range(6):
            assert st[p] == {"controller_epoch": epoch, "leader": parts[p][0], "version": 1,
                             "leader_epoch": 0, "isr": [parts[p][0]]}
        # Every broker's Metadata lists the topic with ZooKeeper's leaders, replicas and ISR.
        for b in brokers:
            seen = wait_until(lambda: leaders_seen(b, "orders"), 15,
                              what="broker %s lists the leaders" % b.overrides["broker.id"])
            assert seen == {p: (parts[p][0], parts[p], [parts[p][0]]) for p in range(6)}
        # The topic id in Metadata is ZooKeeper's (Kafka's Uuid string: URL-safe base64).
        from confluent_kafka.admin import AdminClient
        md = AdminClient({"bootstrap.servers": brokers[2].bootstrap}).list_topics(timeout=10)
        assert "orders" in md.topics
        # Created again through another broker: TOPIC_ALREADY_EXISTS.
        from confluent_kafka import KafkaException
        with pytest.raises(KafkaException) as ei:
            create(brokers[0], "orders", 6, 1)
        assert ei.value.args[0].code() == 36  # TOPIC_ALREADY_EXISTS
        raw = base64.urlsafe_b64decode(topic_id + "==")
        assert len(raw) == 16
        assert uuid.UUID(bytes=raw) != uuid.UUID(int=0)
    finally:
        stop_all(brokers)


def test_replication_factor_against_live_brokers(tmp_path, zookeeper):
    chroot = "/topics2"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        from confluent_kafka import KafkaException
        with pytest.raises(KafkaException) as ei:
            create(brokers[0], "toowide", 3, 4)
        err = ei.value.args[0]
        assert err.code() == 38  # INVALID_REPLICATION_FACTOR
        assert "Replication factor: 4 larger than available brokers: 3." in err.str()
        # RF 2 is accepted in the assignment (only the preferred leader hosts data for now).
        create(brokers[2], "wide", 7, 2)
        znode = zk_json(zookeeper, chroot + "/brokers/topics/wide")
        parts = {int(p): r for p, r in znode["partitions"].items()}
        ids = [1, 2, 3]
        start = ids.index(parts[0][0])
        shift = (ids.index(parts[0][1]) - start - 1) % 3
        assert parts == expected_kafka_assignment(ids, 7, 2, start, shift)
        for b in brokers:
            seen = wait_until(lambda: leaders_seen(b, "wide"), 15, what="leaders of wide")
            assert {p: s[0] for p, s in seen.items()} == {p: parts[p][0] for p in range(7)}
            assert {p: s[1] for p, s in seen.items()} == parts
    finally:
        stop_all(brokers)


def list_offsets_v1(b, topic, partition):
    name = topic.encode()
    body = struct.pack(">ii", -1, 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">iiq", 1, partition, -1)
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        resp = _request(s, 2, 1, 3, body)
    off = 4
    (nlen,) = struct.unpack(">h", resp[off:off + 2])
    off += 2 + nlen + 4
    _, err, _, offset = struct.unpack(">ihqq", resp[off:off + 22])
    return err, offset


def fetch_v4(b, topic, partition):
    name = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 1, 1 << 20, 0) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iiqi", 1, partition, 0, 1 << 20)
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        resp = _request(s, 1, 4, 4, body)
    off = 4 + 4  # throttle, topics count
    (nlen,) = struct.unpack(">h", resp[off:off + 2])
    off += 2 + nlen + 4
    _, err, hw = struct.unpack(">ihq", resp[off:off + 14])
    return err, hw


def test_not_leader_on_other_brokers_and_clients_follow_leaders(tmp_path, zookeeper):
    chroot = "/topics3"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "spread", 6, 1)
        seen = wait_until(lambda: all(leaders_seen(b, "spread") for b in brokers)
                          and leaders_seen(brokers[0], "spread"), 15, what="leaders")
        by_id = {b.overrides["broker.id"]: b for b in brokers}
        for p in range(6):
            leader = seen[p][0]
            for bid, b in by_id.items():
                err, _ = produce_v7(b.bootstrap, "spread", p, record_batch([b"raw-%d" % p]))
                if bid == leader:
                    assert err == 0
                else:
                    assert err == NOT_LEADER_OR_FOLLOWER, (p, bid, leader)
                lo_err, lo = list_offsets_v1(b, "spread", p)
                f_err, hw = fetch_v4(b, "spread", p)
                if bid == leader:
                    assert (lo_err, lo) == (0, 1) and (f_err, hw) == (0, 1)
                else:
                    assert lo_err == NOT_LEADER_OR_FOLLOWER and f_err == NOT_LEADER_OR_FOLLOWER
        # A real client produces to and consumes from the 6 partitions over 3 brokers, through
        # one bootstrap broker: every record is read back exactly once.
        from confluent_kafka import Consumer, Producer
        prod = Producer({"bootstrap.servers": brokers[1].bootstrap, "linger.ms": 5})
        sent = set()
        for i in range(600):
            v = "rec-%d" % i
            prod.produce("spread", value=v.encode(), partition=i % 6)
            sent.add(v)
        assert prod.flush(30) == 0
        cons = Consumer({"bootstrap.servers": brokers[2].bootstrap, "group.id": "g-spread",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
        cons.subscribe(["spread"])
        got = []
        import time
        deadline = time.time() + 60
        while len(got) < 606 and time.time() < deadline:
            m = cons.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.value().decode())
        time.sleep(1.0)
        m = cons.poll(0.5)
        while m is not None:
            if not m.error():
                got.append(m.value().decode())
            m = cons.poll(0.5)
        cons.close()
        raw = [g for g in got if g.startswith("raw-")]
        recs = [g for g in got if g.startswith("rec-")]
        assert sorted(raw) == sorted("raw-%d" % p for p in range(6))
        assert len(recs) == len(sent) and set(recs) == sent
    finally:
        stop_all(brokers)


def test_dead_leader_goes_offline_and_leads_again_on_restart(tmp_path, zookeeper):
    """RF=1 as Kafka: the controller sets a dead leader's partitions to leader -1 (ISR keeps
    its last member), the leader epoch going up; restarted, the broker leads them again at the
    next epoch, with its data, and clients produce and consume there."""
    chroot = "/topics4"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "fail", 6, 1)
        seen = wait_until(lambda: all(leaders_seen(b, "fail") for b in brokers)
                          and leaders_seen(brokers[0], "fail"), 15, what="leaders")
        victim = brokers[1]
        vid = victim.overrides["broker.id"]
        led = sorted(p for p in range(6) if seen[p][0] == vid)
        assert led  # round robin over 3 brokers: 2 of the 6 partitions
        for p in led:
            assert produce_v7(victim.bootstrap, "fail", p, record_batch([b"before-%d" % p]))[0] == 0
        state = "/brokers/topics/fail/partitions/%d/state"
        victim.stop()

        def offline():
            sts = {p: zk_json(zookeeper, chroot + state % p) for p in led}
            return sts if all(s["leader"] == -1 for s in sts.values()) else None
        sts = wait_until(offline, 15, what="the dead leader's partitions offline")
        for p in led:
            assert sts[p]["leader_epoch"] == 1 and sts[p]["isr"] == [vid]
        for p in set(range(6)) - set(led):  # the others are untouched
            assert zk_json(zookeeper, chroot + state % p)["leader_epoch"] == 0
        from confluent_kafka.admin import AdminClient
        for b in (brokers[0], brokers[2]):
            def no_leader():
                md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
                t = md.topics["fail"]
                return all(t.partitions[p].leader == -1 and t.partitions[p].error is not None
                           and t.partitions[p].error.code() == 5 for p in led)
            wait_until(no_leader, 15, what="LEADER_NOT_AVAILABLE for the dead leader's partitions")
        victim.start()

        def back():
            sts = {p: zk_json(zookeeper, chroot + state % p) for p in led}
            return sts if all(s["leader"] == vid for s in sts.values()) else None
        sts = wait_until(back, 20, what="the restarted broker leads its partitions again")
        for p in led:
            assert sts[p]["leader_epoch"] == 2 and sts[p]["isr"] == [vid]
        for b in brokers:
            wait_until(lambda: (leaders_seen(b, "fail") or {}).get(led[0], (None,))[0] == vid,
                       15, what="Metadata shows the leader back")
        from confluent_kafka import Consumer, Producer
        prod = Producer({"bootstrap.servers": brokers[0].bootstrap})
        for p in led:
            prod.produce("fail", value=b"after-%d" % p, partition=p)
        assert prod.flush(30) == 0
        cons = Consumer({"bootstrap.servers": brokers[2].bootstrap, "group.id": "g-fail",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
        from confluent_kafka import TopicPartition
        cons.assign([TopicPartition("fail", p, 0) for p in led])
        got = []
        import time
        deadline = time.time() + 30
        while len(got) < 2 * len(led) and time.time() < deadline:
            m = cons.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        cons.close()
        assert sorted(got) == sorted([b"before-%d" % p for p in led] + [b"after-%d" % p for p in led])
    finally:
        stop_all(brokers)


def test_delete_topic_through_admin_delete_topics(tmp_path, zookeeper):
    """DeleteTopics writes /admin/delete_topics/<t>; the controller deletes the topic's znodes
    (states, partitions, the topic) and then that request node; every broker drops the topic
    from Metadata and deletes its logs; the name can be created again, empty."""
    import os
    chroot = "/topics5"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "doomed", 6, 1)
        seen = wait_until(lambda: all(leaders_seen(b, "doomed") for b in brokers)
                          and leaders_seen(brokers[0], "doomed"), 15, what="leaders")
        by_id = {b.overrides["broker.id"]: b for b in brokers}
        for p in range(6):
            assert produce_v7(by_id[seen[p][0]].bootstrap, "doomed", p,
                              record_batch([b"x"]))[0] == 0

        def local_dirs(b):
            return sorted(d for d in os.listdir(b.data_dir) if d.startswith("doomed-"))
        for b in brokers:
            assert local_dirs(b)  # each leads two of the six partitions
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": brokers[2].bootstrap})
        admin.delete_topics(["doomed"], request_timeout=20)["doomed"].result(timeout=30)
        r = ZkReader(zookeeper.connect)
        try:
            wait_until(lambda: not r.exists(chroot + "/brokers/topics/doomed")
                       and not r.exists(chroot + "/admin/delete_topics/doomed"), 15,
                       what="the controller deleted the topic's znodes")
        finally:
            r.close()
        for b in brokers:
            def gone():
                md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
                return "doomed" not in md.topics
            wait_until(gone, 15, what="Metadata without the topic")
            wait_until(lambda: local_dirs(b) == [], 15, what="the logs deleted")
        # Deleting it again: UNKNOWN_TOPIC_OR_PARTITION, as Kafka.
        from confluent_kafka import KafkaException
        with pytest.raises(KafkaException) as ei:
            admin.delete_topics(["doomed"], request_timeout=20)["doomed"].result(timeout=30)
        assert ei.value.args[0].code() == 3
        create(brokers[1], "doomed", 3, 1)
        seen = wait_until(lambda: leaders_seen(brokers[0], "doomed"), 15, what="recreated")
        assert sorted(seen) == [0, 1, 2]
        for p in range(3):
            err, offset = list_offsets_v1(by_id[seen[p][0]], "doomed", p)
            assert (err, offset) == (0, 0)
    finally:
        stop_all(brokers)
