"""Partition reassignment (issue 16, KIP-455), as Kafka 3.9's ZooKeeper-mode controller does it:
AlterPartitionReassignments (45) and ListPartitionReassignments (46) on the controller (raw wire:
no installed Python client sends them), on 4 gregor brokers and a real ZooKeeper. A move of
{1,2,3} to {2,3,4} shows in List and Metadata while broker 4 is held (SIGSTOP), then completes:
the data is readable, broker 4's log holds the same bytes as the others, broker 1's partition
directory is gone. RF 1 -> 3; a cancel restores the original replicas; Kafka's errors and
messages; /admin/reassign_partitions; a controller kill -9 mid-way (the next controller resumes
from the TopicZNode); an idempotent acks=all producer across the leader's move loses nothing."""
import json
import os
import signal
import struct
import sys
import time

import pytest

from cluster_fixture import SANITIZER_MARKS
from conftest import ROOT
from kafka_wire import cstr, flexible_call, uvarint
from test_cluster_topics import stop_all
from test_replication_failover import Producing, assert_acked_readable, metadata, read_all
from test_replication_follower import log_bytes, replicas_match
from zk_fixture import ZkReader, start_brokers, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 6000
FAST_STOP = {"controlled.shutdown.max.retries": 1, "zookeeper.session.timeout.ms": SESSION_MS}
INVALID_REPLICA_ASSIGNMENT = 39
NOT_CONTROLLER = 41
UNKNOWN_TOPIC_OR_PARTITION = 3
NO_REASSIGNMENT_IN_PROGRESS = 85


# ---- the two APIs on the wire (v0, flexible) ----

def alter(b, moves, timeout_ms=30000):
    """moves: {(topic, partition): [replicas] or None (cancel)}. Returns (error, message,
    {(topic, partition): (error, message)})."""
    by_topic = {}
    for (t, p), reps in moves.items():
        by_topic.setdefault(t, []).append((p, reps))
    body = struct.pack(">i", timeout_ms) + uvarint(len(by_topic) + 1)
    for t, parts in by_topic.items():
        body += cstr(t) + uvarint(len(parts) + 1)
        for p, reps in parts:
            body += struct.pack(">i", p)
            if reps is None:
                body += uvarint(0)
            else:
                body += uvarint(len(reps) + 1) + b"".join(struct.pack(">i", x) for x in reps)
            body += uvarint(0)
        body += uvarint(0)
    body += uvarint(0)
    r = flexible_call(b.bootstrap, 45, 0, body)
    r.take(">i")
    err, msg = r.take(">h"), r.cstr()
    out = {}
    for _ in range(r.uvarint() - 1):
        t = r.cstr()
        for _ in range(r.uvarint() - 1):
            p, e, m = r.take(">i"), r.take(">h"), r.cstr()
            r.tags()
            out[(t, p)] = (e, m)
        r.tags()
    return err, msg, out


def int_array(r):
    return [r.take(">i") for _ in range(r.uvarint() - 1)]


def list_reassignments(b, topics=None):
    """(error, {(topic, partition): (replicas, adding, removing)}); topics: {name: [parts]}."""
    body = struct.pack(">i", 30000)
    if topics is None:
        body += uvarint(0)
    else:
        body += uvarint(len(topics) + 1)
        for t, parts in topics.items():
            body += cstr(t) + uvarint(len(parts) + 1)
            body += b"".join(struct.pack(">i", p) for p in parts) + uvarint(0)
    body += uvarint(0)
    r = flexible_call(b.bootstrap, 46, 0, body)
    r.take(">i")
    err, _ = r.take(">h"), r.cstr()
    out = {}
    for _ in range(r.uvarint() - 1):
        t = r.cstr()
        for _ in range(r.uvarint() - 1):
            p = r.take(">i")
            out[(t, p)] = (int_array(r), int_array(r), int_array(r))
            r.tags()
        r.tags()
    return err, out


# ---- the cluster ----

class Four:
    def __init__(self, zk, chroot, brokers):
        self.zk, self.chroot, self.brokers = zk, chroot, brokers
        self.by_id = {b.overrides["broker.id"]: b for b in brokers}

    def zk_json(self, path):
        r = ZkReader(self.zk.connect)
        try:
            return json.loads(r.get(self.chroot + path)[0])
        finally:
            r.close()

    def zk_exists(self, path):
        r = ZkReader(self.zk.connect)
        try:
            return r.exists(self.chroot + path)
        finally:
            r.close()

    def controller(self):
        return self.by_id[self.zk_json("/controller")["brokerid"]]

    def others(self):
        c = self.controller()
        return [b for b in self.brokers if b is not c and b.proc is not None]

    def create(self, name, assignment):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.brokers[0].bootstrap})
        fs = admin.create_topics([NewTopic(name, len(assignment), replica_assignment=assignment)],
                                 request_timeout=20)
        fs[name].result(timeout=30)
        for p, reps in enumerate(assignment):
            self.wait_isr(name, p, reps)

    def state(self, topic, p):
        return self.zk_json("/brokers/topics/%s/partitions/%d/state" % (topic, p))

    def wait_isr(self, topic, p, members, timeout=40):
        wait_until(lambda: sorted(self.state(topic, p)["isr"]) == sorted(members), timeout,
                   what="the ISR of %s-%d is %s" % (topic, p, sorted(members)))

    def assignment(self, topic):
        return self.zk_json("/brokers/topics/%s" % topic)

    def wait_done(self, topic, p, replicas, timeout=60):
        """The TopicZNode lists exactly replicas for p, with no reassignment left."""
        def done():
            a = self.assignment(topic)
            return (a["partitions"][str(p)] == replicas and not a.get("adding_replicas") and
                    not a.get("removing_replicas"))
        wait_until(done, timeout, what="%s-%d reassigned to %s" % (topic, p, replicas))

    def produce(self, topic, n):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": ",".join(b.bootstrap for b in self.brokers),
                      "acks": "all"})
        for i in range(n):
            p.produce(topic, partition=0, value=b"v%05d" % i)
        assert p.flush(60) == 0


def cluster(tmp_path, zk, chroot):
    brokers = start_brokers(tmp_path, zk.connect + chroot, (1, 2, 3, 4), FAST_STOP)
    return Four(zk, chroot, brokers)


@pytest.fixture(scope="module")
def four(zookeeper, tmp_path_factory):
    c = cluster(tmp_path_factory.mktemp("reassign"), zookeeper, "/reassign")
    yield c
    stop_all(c.brokers)
    assert_no_sanitizer_report(c.brokers)


def assert_no_sanitizer_report(brokers):
    for b in brokers:
        with open(b.log_path, "rb") as f:
            text = f.read().decode(errors="replace")
        for mark in SANITIZER_MARKS:
            assert mark not in text, "broker %s: %s" % (b.overrides["broker.id"], mark)


def sigstop(b):
    os.kill(b.proc.pid, signal.SIGSTOP)


def sigcont(b):
    os.kill(b.proc.pid, signal.SIGCONT)


def test_move_shows_in_list_and_metadata_then_completes(four):
    """{1,2,3} -> {2,3,4} with records: while broker 4 is stopped, List and Metadata show the
    full set (target first) with adding [4] and removing [1]; once it runs, the move completes,
    every record is readable, broker 4's log is byte for byte the others' and broker 1's
    partition directory is gone."""
    b = four.by_id
    four.create("moved", [[1, 2, 3]])
    four.produce("moved", 300)
    ctl = four.controller()
    sigstop(b[4])
    try:
        err, msg, res = alter(ctl, {("moved", 0): [2, 3, 4]})
        assert (err, msg) == (0, None)
        assert res == {("moved", 0): (0, None)}
        err, listed = list_reassignments(ctl)
        assert err == 0
        assert listed == {("moved", 0): ([2, 3, 4, 1], [4], [1])}
        assert list_reassignments(ctl, {"moved": [0, 1]})[1] == listed
        assert list_reassignments(ctl, {"other": [0]})[1] == {}
        a = four.assignment("moved")
        assert a["adding_replicas"] == {"0": [4]} and a["removing_replicas"] == {"0": [1]}
        wait_until(lambda: metadata(b[2], "moved").get(0, (0, []))[1] == [2, 3, 4, 1], 10,
                   what="Metadata shows the full replica set")
        time.sleep(1.0)  # broker 4 cannot catch up while stopped: still under way
        assert list_reassignments(ctl)[1] == listed
        # Kafka's ZkAdminManager refuses to add partitions meanwhile
        from confluent_kafka import KafkaError
        from confluent_kafka.admin import AdminClient, NewPartitions
        admin = AdminClient({"bootstrap.servers": b[3].bootstrap})
        fs = admin.create_partitions([NewPartitions("moved", 2)], request_timeout=20)
        with pytest.raises(Exception) as e:
            fs["moved"].result(timeout=30)
        assert e.value.args[0].code() == KafkaError.REASSIGNMENT_IN_PROGRESS
        assert "A partition reassignment is in progress for the topic 'moved'." in str(e.value)
    finally:
        sigcont(b[4])
    four.wait_done("moved", 0, [2, 3, 4])
    assert list_reassignments(ctl)[1] == {}
    st = four.state("moved", 0)
    assert st["leader"] in (2, 3, 4)
    wait_until(lambda: sorted(four.state("moved", 0)["isr"]) == [2, 3, 4], 30,
               what="broker 1 out of the ISR")
    wait_until(lambda: replicas_match([b[2], b[3], b[4]], "moved", 0, 300), 30,
               what="broker 4's log is the others'")
    got = read_all(b[2].bootstrap, "moved")
    assert [got[o] for o in sorted(got)] == [b"v%05d" % i for i in range(300)]
    wait_until(lambda: not os.path.exists(os.path.join(b[1].data_dir, "moved-0")), 30,
               what="broker 1's partition directory deleted")
    assert log_bytes(b[1], "moved", 0) == b""


def test_expand_rf1_to_rf3(four):
    four.create("grown", [[1]])
    four.produce("grown", 50)
    ctl = four.controller()
    assert alter(ctl, {("grown", 0): [1, 2, 3]})[2] == {("grown", 0): (0, None)}
    four.wait_done("grown", 0, [1, 2, 3])
    four.wait_isr("grown", 0, [1, 2, 3])
    b = four.by_id
    wait_until(lambda: replicas_match([b[1], b[2], b[3]], "grown", 0, 50), 30,
               what="the new replicas hold every record")


def test_cancel_restores_original_replicas(four):
    b = four.by_id
    four.create("cancelled", [[1, 2, 3]])
    four.produce("cancelled", 20)
    ctl = four.controller()
    sigstop(b[4])
    try:
        assert alter(ctl, {("cancelled", 0): [2, 3, 4]})[2] == {("cancelled", 0): (0, None)}
        assert list_reassignments(ctl)[1] == {("cancelled", 0): ([2, 3, 4, 1], [4], [1])}
        assert alter(ctl, {("cancelled", 0): None})[2] == {("cancelled", 0): (0, None)}
        assert list_reassignments(ctl)[1] == {}
        # Kafka's reassignTo(originReplicas): the original set, in the order the full set
        # listed it (replicas minus the adding ones)
        four.wait_done("cancelled", 0, [2, 3, 1], timeout=10)
    finally:
        sigcont(b[4])
    assert alter(ctl, {("cancelled", 0): None})[2] == {
        ("cancelled", 0): (NO_REASSIGNMENT_IN_PROGRESS, "No partition reassignment is in progress.")}
    four.wait_isr("cancelled", 0, [1, 2, 3])
    assert 4 not in four.state("cancelled", 0)["isr"]
    wait_until(lambda: not os.path.exists(os.path.join(b[4].data_dir, "cancelled-0")), 30,
               what="broker 4's started replica deleted")


def test_errors_as_kafka(four):
    four.create("checked", [[1, 2, 3]])
    ctl = four.controller()
    _, _, res = alter(ctl, {("checked", 0): [1, 2, 9]})
    assert res[("checked", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                   "Replica assignment has brokers that are not alive. Replica "
                                   "list: ArrayBuffer(9), live broker list: Set(1, 2, 3, 4)")
    _, _, res = alter(ctl, {("checked", 0): [1, 1, 2]})
    assert res[("checked", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                   "Duplicate replica ids in partition reassignment replica "
                                   "list: ArrayBuffer(1, 1, 2)")
    _, _, res = alter(ctl, {("checked", 0): []})
    assert res[("checked", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                   "Empty replica list specified in partition reassignment.")
    _, _, res = alter(ctl, {("checked", 0): [1, -2]})
    assert res[("checked", 0)] == (INVALID_REPLICA_ASSIGNMENT,
                                   "Invalid broker id in replica list: ArrayBuffer(1, -2)")
    _, _, res = alter(ctl, {("checked", 5): [1, 2], ("nosuch", 0): [1, 2]})
    assert res == {("checked", 5): (UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."),
                   ("nosuch", 0): (UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")}
    assert alter(ctl, {("nosuch", 0): None})[2] == {
        ("nosuch", 0): (NO_REASSIGNMENT_IN_PROGRESS, "No partition reassignment is in progress.")}
    other = four.others()[0]
    err, msg, res = alter(other, {("checked", 0): [2, 3, 4]})
    assert (err, msg, res) == (NOT_CONTROLLER,
                               "This is not the correct controller for this cluster.", {})
    assert list_reassignments(other) == (NOT_CONTROLLER, {})
    assert four.assignment("checked")["partitions"]["0"] == [1, 2, 3]  # nothing was changed


def test_legacy_admin_reassign_partitions_znode(four):
    four.create("legacy", [[1, 2]])
    four.produce("legacy", 10)
    r = ZkReader(four.zk.connect)
    try:
        r.create(four.chroot + "/admin/reassign_partitions", json.dumps(
            {"version": 1, "partitions": [{"topic": "legacy", "partition": 0,
                                           "replicas": [3, 4]}]}).encode())
    finally:
        r.close()
    four.wait_done("legacy", 0, [3, 4])
    wait_until(lambda: not four.zk_exists("/admin/reassign_partitions"), 30,
               what="/admin/reassign_partitions deleted once done")
    b = four.by_id
    wait_until(lambda: replicas_match([b[3], b[4]], "legacy", 0, 10), 30,
               what="the new replicas hold every record")


def test_kafka_reassign_partitions_tool(four, tmp_path):
    """Kafka 3.9.1's own kafka-reassign-partitions (its Java AdminClient, which sends the
    requests to the controller Metadata names) against a broker that is not the controller."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "kafka_harness"))
    from kafka_zk import kafka_classpath, run_tool
    tool = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
    cp = kafka_classpath()
    four.create("javamoved", [[1, 2]])
    four.produce("javamoved", 30)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "javamoved", "partition": 0, "replicas": [3, 4]}]}))
    via = four.others()[0].bootstrap
    rc, out, err = run_tool(cp, tool, "--bootstrap-server", via, "--reassignment-json-file",
                            str(plan), "--execute")
    assert rc == 0, out + err
    assert "Successfully started partition reassignment for javamoved-0" in out, out
    four.wait_done("javamoved", 0, [3, 4])

    def verified():
        rc, out, err = run_tool(cp, tool, "--bootstrap-server", via,
                                "--reassignment-json-file", str(plan), "--verify")
        return rc == 0 and "Reassignment of partition javamoved-0 is completed." in out
    wait_until(verified, 60, interval=1.0, what="--verify reports it completed")
    rc, out, err = run_tool(cp, tool, "--bootstrap-server", via, "--list")
    assert rc == 0 and "No partition reassignments found." in out, out + err


def test_idempotent_producer_rides_the_leader_move(four):
    import threading
    b = four.by_id
    four.create("riding", [[1, 2, 3]])
    assert four.state("riding", 0)["leader"] == 1
    prod = Producing(",".join(x.bootstrap for x in four.brokers))
    stop = threading.Event()
    th = threading.Thread(target=prod.send, args=("riding", 100000, 0.002, stop))
    th.start()
    try:
        wait_until(lambda: len(prod.acked) >= 200, 30, what="records acked before the move")
        before = len(prod.acked)
        assert alter(four.controller(), {("riding", 0): [4, 2, 3]})[2] == {("riding", 0): (0, None)}
        four.wait_done("riding", 0, [4, 2, 3])
        assert four.state("riding", 0)["leader"] in (2, 3, 4)
        wait_until(lambda: len(prod.acked) >= before + 200, 60, what="records acked after it")
    finally:
        stop.set()
        th.join(120)
    assert not prod.errors, prod.errors[:5]
    assert_acked_readable(b[2].bootstrap, "riding", prod.acked)


def test_reassignment_survives_controller_kill(zookeeper, tmp_path):
    """The new replica held (SIGSTOP), the controller killed with -9 after writing the start:
    the next controller reads adding/removing from the TopicZNode and completes it."""
    c = cluster(tmp_path, zookeeper, "/reassign-failover")
    try:
        ctl = c.controller()
        cid = ctl.overrides["broker.id"]
        others = sorted(b.overrides["broker.id"] for b in c.brokers if b is not ctl)
        o1, o2, o3 = others
        c.create("survives", [[cid, o1, o2]])
        c.produce("survives", 100)
        new = c.by_id[o3]
        sigstop(new)
        try:
            assert alter(ctl, {("survives", 0): [o1, o2, o3]})[2] == {("survives", 0): (0, None)}
            assert c.assignment("survives")["adding_replicas"] == {"0": [o3]}
            ctl.kill9()
        finally:
            sigcont(new)
        wait_until(lambda: c.zk_exists("/controller") and c.controller() is not ctl, 30,
                   what="a new controller")
        c.wait_done("survives", 0, [o1, o2, o3], timeout=60)
        c.wait_isr("survives", 0, [o1, o2, o3])
        b = c.by_id
        wait_until(lambda: replicas_match([b[o1], b[o2], b[o3]], "survives", 0, 100), 30,
                   what="the new replica holds every record")
        assert list_reassignments(c.controller())[1] == {}
    finally:
        stop_all(c.brokers)
    assert_no_sanitizer_report(c.brokers)
