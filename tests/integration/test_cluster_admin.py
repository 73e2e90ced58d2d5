"""Admin requests on a cluster of brokers on a real ZooKeeper (issue 15): CreatePartitions
through any broker (the TopicZNode rewritten as Kafka 3.9's AdminZkClient.addPartitions
does, its checks and messages), CreateTopics / CreatePartitions answered once the broker
asked sees a leader for every new partition and DeleteTopics once it no longer shows the
topic (Kafka's DelayedCreatePartitions / DelayedDeleteTopics, bounded by timeout_ms), and a
deletion that waits for a replica's broker to come back (Kafka's TopicDeletionManager), which
then deletes its logs too. 3 brokers on one ZooKeeper, each test in its own chroot."""
import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from kafka_wire import _request, produce_v7, record_batch, s16
from test_cluster_topics import create, leaders_seen, start_cluster, stop_all, zk_get, zk_json
from zk_fixture import ZkReader, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVALID_PARTITIONS = 37
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_REPLICATION_FACTOR = 38
REQUEST_TIMED_OUT = 7


def by_id(brokers):
    return {b.overrides["broker.id"]: b for b in brokers}


def controller_id(zk, chroot):
    return zk_json(zk, chroot + "/controller")["brokerid"]


def kafka_add_partitions(ids, p0_first, old_n, new_n, rf):
    """Kafka's AdminZkClient.createNewPartitionsAssignment without an explicit assignment:
    assignReplicasToBrokersRackUnaware with fixedStartIndex (also the shift) =
    max(0, index of the first broker id >= partition 0's first replica), from partition old_n."""
    n = len(ids)
    start = next((i for i, b in enumerate(ids) if b >= p0_first), 0)
    shift = start
    out = {}
    for p in range(old_n, new_n):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start) % n
        out[p] = [ids[first]] + [ids[(first + 1 + (shift + j) % (n - 1)) % n]
                                 for j in range(rf - 1)]
    return out


def topic_znode_bytes(parts, topic_id):
    """Kafka 3.9's TopicZNode.encode, partitions in id order."""
    body = ",".join('"%d":[%s]' % (p, ",".join(str(r) for r in parts[p])) for p in sorted(parts))
    return ('{"partitions":{%s},"topic_id":"%s","adding_replicas":{},"removing_replicas":{},'
            '"version":3}' % (body, topic_id)).encode()


# ---- raw wire ----

def call(b, api, version, body, timeout=30):
    with socket.create_connection(("127.0.0.1", b.port), timeout=timeout) as s:
        return _request(s, api, version, 7, body)


def i32_array(v):
    if v is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(v)) + b"".join(struct.pack(">i", x) for x in v)


def create_partitions_v1(b, topics, timeout_ms=20000, validate_only=False):
    """topics: [(name, count, assignments or None)]; returns {name: (error, message)}."""
    body = struct.pack(">i", len(topics))
    for name, count, assignments in topics:
        body += s16(name) + struct.pack(">i", count)
        if assignments is None:
            body += struct.pack(">i", -1)
        else:
            body += struct.pack(">i", len(assignments)) + b"".join(i32_array(a) for a in assignments)
    body += struct.pack(">ib", timeout_ms, 1 if validate_only else 0)
    resp = call(b, 37, 1, body)
    off = 4  # throttle
    (n,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    out = {}
    for _ in range(n):
        (nl,) = struct.unpack(">h", resp[off:off + 2])
        name = resp[off + 2:off + 2 + nl].decode()
        off += 2 + nl
        err, ml = struct.unpack(">hh", resp[off:off + 4])
        off += 4
        msg = None
        if ml >= 0:
            msg = resp[off:off + ml].decode()
            off += ml
        out[name] = (err, msg)
    return out


def create_topics_v4(sock, name, partitions, timeout_ms):
    """CreateTopics v4 on an open connection: (error, message)."""
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">ih", partitions, 1)
    body += struct.pack(">ii", 0, 0)  # no assignments, no configs
    body += struct.pack(">ib", timeout_ms, 0)
    resp = _request(sock, 19, 4, 11, body)
    off = 4 + 4
    (nl,) = struct.unpack(">h", resp[off:off + 2])
    off += 2 + nl
    err, ml = struct.unpack(">hh", resp[off:off + 4])
    msg = resp[off + 4:off + 4 + ml].decode() if ml >= 0 else None
    return err, msg


def delete_topics_v1(sock, name, timeout_ms):
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">i", timeout_ms)
    resp = _request(sock, 20, 1, 12, body)
    off = 4 + 4
    (nl,) = struct.unpack(">h", resp[off:off + 2])
    off += 2 + nl
    (err,) = struct.unpack(">h", resp[off:off + 2])
    return err


def metadata_v4(sock, name):
    """Metadata v4 for one topic, no auto-creation, on an open connection:
    (topic error, {p: (error, leader)})."""
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">b", 0)
    resp = _request(sock, 3, 4, 13, body)
    off = 4  # throttle
    (nb,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    for _ in range(nb):
        off += 4
        (hl,) = struct.unpack(">h", resp[off:off + 2])
        off += 2 + hl + 4
        (rl,) = struct.unpack(">h", resp[off:off + 2])
        off += 2 + (rl if rl > 0 else 0)
    (cl,) = struct.unpack(">h", resp[off:off + 2])  # cluster id
    off += 2 + (cl if cl > 0 else 0)
    off += 4  # controller id
    (nt,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    assert nt == 1
    err, nl = struct.unpack(">hh", resp[off:off + 4])
    off += 4 + nl + 1  # name, is_internal
    (np_,) = struct.unpack(">i", resp[off:off + 4])
    off += 4
    parts = {}
    for _ in range(np_):
        perr, p, leader = struct.unpack(">hii", resp[off:off + 10])
        off += 10
        for _ in range(2):  # replicas, isr
            (k,) = struct.unpack(">i", resp[off:off + 4])
            off += 4 + 4 * k
        parts[p] = (perr, leader)
    return err, parts


# ---- tests ----

def test_create_partitions_through_a_non_controller(tmp_path, zookeeper):
    """3 -> 6 through a broker that is not the controller: the znode rewritten as Kafka's
    (existing partitions and the topic id unchanged, the new ones continuing the assignment),
    the controller writes the new partitions' states, the broker asked shows their leaders
    when it answers, every broker then, and records go to and come from a new partition; then
    kafka-topics.sh --alter --partitions 8 through the repo's CLI."""
    chroot = "/admin1"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "grow", 3, 1)
        wait_until(lambda: all(leaders_seen(b, "grow") for b in brokers), 15, what="leaders")
        path = chroot + "/brokers/topics/grow"
        before = zk_json(zookeeper, path)
        old = {int(p): r for p, r in before["partitions"].items()}
        ctl = controller_id(zookeeper, chroot)
        asked = next(b for b in brokers if b.overrides["broker.id"] != ctl)
        # On the raw wire to that broker (librdkafka would send it to the controller).
        assert create_partitions_v1(asked, [("grow", 6, None)]) == {"grow": (0, None)}
        # Answered once the broker asked sees every new partition's leader.
        with socket.create_connection(("127.0.0.1", asked.port), timeout=10) as s:
            err, parts = metadata_v4(s, "grow")
        assert err == 0 and sorted(parts) == list(range(6))
        assert all(e == 0 and leader >= 0 for e, leader in parts.values()), parts
        raw, _ = zk_get(zookeeper, path)
        expected = dict(old)
        expected.update(kafka_add_partitions([1, 2, 3], old[0][0], 3, 6, 1))
        assert raw == topic_znode_bytes(expected, before["topic_id"])
        epoch = int(zk_get(zookeeper, chroot + "/controller_epoch")[0])
        for p in range(3, 6):
            st = zk_json(zookeeper, path + "/partitions/%d/state" % p)
            assert st == {"controller_epoch": epoch, "leader": expected[p][0], "version": 1,
                          "leader_epoch": 0, "isr": [expected[p][0]]}
        for b in brokers:
            seen = wait_until(lambda: leaders_seen(b, "grow"), 15, what="6 leaders everywhere")
            assert {p: s[0] for p, s in seen.items()} == {p: expected[p][0] for p in range(6)}
        from confluent_kafka import Consumer, Producer, TopicPartition
        prod = Producer({"bootstrap.servers": brokers[2].bootstrap})
        for i in range(10):
            prod.produce("grow", value=b"new-%d" % i, partition=5)
        assert prod.flush(30) == 0
        cons = Consumer({"bootstrap.servers": brokers[1].bootstrap, "group.id": "g-grow",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
        cons.assign([TopicPartition("grow", 5, 0)])
        got = []
        deadline = time.time() + 30
        while len(got) < 10 and time.time() < deadline:
            m = cons.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        cons.close()
        assert got == [b"new-%d" % i for i in range(10)]
        # The repo's kafka-topics.sh --alter on the cluster.
        env = dict(os.environ)
        r = subprocess.run([os.path.join(REPO, "bin", "kafka-topics.sh"), "--bootstrap-server",
                            asked.bootstrap, "--alter", "--topic", "grow", "--partitions", "8"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        after = zk_json(zookeeper, path)
        assert sorted(int(p) for p in after["partitions"]) == list(range(8))
        assert {p: after["partitions"][str(p)] for p in range(6)} == expected
    finally:
        stop_all(brokers)


def test_create_partitions_refusals_raw_wire(tmp_path, zookeeper):
    """Kafka's checks and messages, nothing written for a refusal or validate_only; an explicit
    assignment taken as given; a replication factor above the live brokers."""
    chroot = "/admin2"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "fixed", 3, 1)
        create(brokers[0], "wide", 2, 3)
        wait_until(lambda: leaders_seen(brokers[1], "fixed") and leaders_seen(brokers[1], "wide"),
                   15, what="leaders")
        path = chroot + "/brokers/topics/fixed"
        raw_before, _ = zk_get(zookeeper, path)
        b = brokers[1]
        cases = [
            (("fixed", 3, None), INVALID_PARTITIONS, "Topic already has 3 partitions."),
            (("fixed", 2, None), INVALID_PARTITIONS,
             "Topic currently has 3 partitions, which is higher than the requested 2."),
            (("fixed", 4, [[12]]), INVALID_REPLICA_ASSIGNMENT,
             "Unknown broker(s) in replica assignment: 12."),
            (("fixed", 6, [[1]]), INVALID_REPLICA_ASSIGNMENT,
             "Increasing the number of partitions by 3 but 1 assignments provided."),
            (("fixed", 4, []), INVALID_REPLICA_ASSIGNMENT,
             "Increasing the number of partitions by 1 but 0 assignments provided."),
            (("fixed", 4, [[1, 1]]), INVALID_REPLICA_ASSIGNMENT,
             "Duplicate brokers not allowed in replica assignment: 1, 1 for partition id 3."),
            (("fixed", 5, [[1], [1, 2]]), INVALID_REPLICA_ASSIGNMENT,
             "Inconsistent replication factor between partitions, partition 0 has 1 while "
             "partitions [4] have replication factors [2], respectively."),
            (("nope", 4, None), 3, "The topic 'nope' does not exist."),
        ]
        for (name, count, assignments), code, message in cases:
            got = create_partitions_v1(b, [(name, count, assignments)])
            assert got == {name: (code, message)}, (name, count, assignments)
        # validate_only: checked, answered without an error, nothing written.
        assert create_partitions_v1(b, [("fixed", 5, None)], validate_only=True) == \
            {"fixed": (0, None)}
        time.sleep(0.5)
        assert zk_get(zookeeper, path)[0] == raw_before
        # An explicit assignment is taken as given.
        assert create_partitions_v1(b, [("fixed", 5, [[3], [2]])]) == {"fixed": (0, None)}
        parts = zk_json(zookeeper, path)["partitions"]
        assert parts["3"] == [3] and parts["4"] == [2]
        # Two increases at once through two brokers: each reads the znode and sets it at the
        # version read; the second to write meets BadVersion, reads it again and checks against
        # what is there now (its increase applied on top, or refused as no longer one).
        import threading
        for round_ in range(3):
            name = "race-%d" % round_
            create(brokers[0], name, 2, 1)
            wait_until(lambda: leaders_seen(brokers[0], name) and leaders_seen(brokers[2], name),
                       15, what="leaders")
            got = {}

            def grow(b, count):
                got[count] = create_partitions_v1(b, [(name, count, None)])[name]
            ts = [threading.Thread(target=grow, args=(brokers[0], 4)),
                  threading.Thread(target=grow, args=(brokers[2], 5))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            assert got[5] == (0, None), got
            assert got[4] in ((0, None), (INVALID_PARTITIONS, "Topic currently has 5 partitions, "
                                          "which is higher than the requested 4.")), got
            znode = zk_json(zookeeper, chroot + "/brokers/topics/" + name)
            assert sorted(int(p) for p in znode["partitions"]) == list(range(5))
            assert all(len(r) == 1 and r[0] in (1, 2, 3) for r in znode["partitions"].values())
        # RF 3 with one broker gone: INVALID_REPLICATION_FACTOR, as Kafka's assignment.
        gone = brokers[2]
        gone.stop()
        wait_until(lambda: len(ZkChildren(zookeeper, chroot + "/brokers/ids")) == 2, 15,
                   what="the stopped broker unregistered")

        def refused():
            got = create_partitions_v1(brokers[0], [("wide", 3, None)])
            return got if got["wide"][0] == INVALID_REPLICATION_FACTOR else None
        got = wait_until(refused, 15, what="INVALID_REPLICATION_FACTOR")
        assert got == {"wide": (INVALID_REPLICATION_FACTOR,
                                "Replication factor: 3 larger than available brokers: 2.")}
    finally:
        stop_all(brokers)


def ZkChildren(zk, path):
    r = ZkReader(zk.connect)
    try:
        return r.children(path)
    finally:
        r.close()


def test_create_and_delete_answered_once_this_broker_sees_it(tmp_path, zookeeper):
    """CreateTopics is answered once the broker asked shows a leader for every partition
    (Metadata right after the answer, on the same broker: no LEADER_NOT_AVAILABLE), DeleteTopics
    once it no longer shows the topic; with no controller to elect leaders a creation or a
    partition increase is answered REQUEST_TIMED_OUT at timeout_ms (no message, as Kafka; the
    change goes on), and at once with timeout_ms 0 (answered once written)."""
    chroot = "/admin3"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        for round_ in range(6):
            b = brokers[round_ % 3]
            name = "quick-%d" % round_
            with socket.create_connection(("127.0.0.1", b.port), timeout=30) as s:
                assert create_topics_v4(s, name, 8, 20000) == (0, None)
                err, parts = metadata_v4(s, name)
                assert err == 0 and len(parts) == 8
                assert all(e == 0 and leader >= 0 for e, leader in parts.values()), parts
                assert delete_topics_v1(s, name, 20000) == 0
                err, _ = metadata_v4(s, name)
                assert err == 3, "the deleted topic still shown right after the answer"
        ctl = by_id(brokers)[controller_id(zookeeper, chroot)]
        other = next(b for b in brokers if b is not ctl)
        create(other, "grown-later", 2, 1)
        wait_until(lambda: leaders_seen(other, "grown-later"), 15, what="leaders")
        ctl.proc.send_signal(signal.SIGSTOP)  # no controller work for ~2 s (session: 3 s)
        try:
            with socket.create_connection(("127.0.0.1", other.port), timeout=30) as s:
                t0 = time.time()
                assert create_topics_v4(s, "slow", 2, 800) == (REQUEST_TIMED_OUT, None)
                took = time.time() - t0
                t0 = time.time()
                assert create_topics_v4(s, "unwaited", 2, 0) == (0, None)
                took0 = time.time() - t0
            t0 = time.time()
            assert create_partitions_v1(other, [("grown-later", 4, None)], timeout_ms=800) == \
                {"grown-later": (REQUEST_TIMED_OUT, None)}
            took_p = time.time() - t0
        finally:
            ctl.proc.send_signal(signal.SIGCONT)
        assert 0.7 <= took < 5 and 0.7 <= took_p < 5, (took, took_p)
        assert took0 < 0.7, took0
        wait_until(lambda: leaders_seen(other, "slow"), 15, what="the topic led once resumed")
        seen = wait_until(lambda: leaders_seen(other, "grown-later"), 15, what="grown, led")
        assert sorted(seen) == [0, 1, 2, 3]  # the change went on after the answer
    finally:
        for b in brokers:
            if b.proc is not None:
                b.proc.send_signal(signal.SIGCONT)
        stop_all(brokers)


def test_deletion_waits_for_an_offline_replica_then_its_logs_go(tmp_path, zookeeper):
    """A broker down while a topic with a partition on it is deleted: every live broker drops
    the topic from Metadata (DeleteTopics answers, as Kafka's brokers drop a topic queued for
    deletion) and deletes its logs, but the topic stays in /admin/delete_topics and
    /brokers/topics until that broker registers again; then the deletion completes and the
    restarted broker's logs of the topic are gone too."""
    chroot = "/admin4"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    try:
        create(brokers[0], "waits", 6, 1)
        seen = wait_until(lambda: leaders_seen(brokers[0], "waits"), 15, what="leaders")
        ids = by_id(brokers)
        for p in range(6):
            assert produce_v7(ids[seen[p][0]].bootstrap, "waits", p, record_batch([b"x"]))[0] == 0

        def local_dirs(b):
            return sorted(d for d in os.listdir(b.data_dir) if d.startswith("waits-"))
        ctl = controller_id(zookeeper, chroot)
        down = next(b for b in brokers if b.overrides["broker.id"] != ctl)
        live = [b for b in brokers if b is not down]
        assert local_dirs(down)
        down.stop()
        wait_until(lambda: len(ZkChildren(zookeeper, chroot + "/brokers/ids")) == 2, 15,
                   what="the stopped broker unregistered")
        with socket.create_connection(("127.0.0.1", live[0].port), timeout=30) as s:
            assert delete_topics_v1(s, "waits", 5000) == 0
            assert metadata_v4(s, "waits")[0] == 3
        for b in live:
            with socket.create_connection(("127.0.0.1", b.port), timeout=30) as s:
                wait_until(lambda: metadata_v4(s, "waits")[0] == 3, 15, what="dropped")
            wait_until(lambda: local_dirs(b) == [], 15, what="live brokers' logs deleted")
        # The deletion waits for the offline replica's broker.
        time.sleep(2.0)
        r = ZkReader(zookeeper.connect)
        try:
            assert r.exists(chroot + "/admin/delete_topics/waits")
            assert r.exists(chroot + "/brokers/topics/waits")
        finally:
            r.close()
        assert local_dirs(down)  # it is down: its logs are still there
        down.start()
        r = ZkReader(zookeeper.connect)
        try:
            wait_until(lambda: not r.exists(chroot + "/brokers/topics/waits")
                       and not r.exists(chroot + "/admin/delete_topics/waits"), 30,
                       what="the deletion completed once the broker was back")
        finally:
            r.close()
        wait_until(lambda: local_dirs(down) == [], 15, what="the restarted broker's logs deleted")
        with socket.create_connection(("127.0.0.1", down.port), timeout=30) as s:
            assert metadata_v4(s, "waits")[0] == 3
    finally:
        stop_all(brokers)
