"""Consumer groups against a real gregor: kcat (librdkafka) group members share a topic's
partitions and each record is consumed once; kafka-python 2.0.2 commits and a restarted
consumer continues after the commit; committed offsets and groups survive a broker restart;
admin group APIs (list/describe/delete, committed offsets) through confluent-kafka."""
import os
import re
import signal
import subprocess
import time

import pytest

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

from group_helpers import KCAT, create_topic, produce, unique, wait_for  # noqa: E402

class KcatMember:
    """One `kcat -G` group member writing 'partition offset value' lines to a file."""

    def __init__(self, broker, group, topic, tmp_path, name):
        self.out_path = str(tmp_path / ("%s.out" % name))
        self.err_path = str(tmp_path / ("%s.err" % name))
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [KCAT, "-b", broker.bootstrap, "-G", group, topic, "-o", "beginning",
             "-f", "%p %o %s\\n", "-u",
             "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
             "-X", "auto.commit.interval.ms=500"],
            stdout=self.out, stderr=self.err)

    def lines(self):
        with open(self.out_path, "rb") as f:
            return [ln.split() for ln in f.read().decode().splitlines() if ln.strip()]

    def values(self):
        return [ln[2] for ln in self.lines() if len(ln) == 3]

    def assigned(self):
        """Partitions of the latest 'assigned:' rebalance line (None before the first)."""
        with open(self.err_path, "rb") as f:
            text = f.read().decode(errors="replace")
        last = None
        for m in re.finditer(r"rebalanced \(memberid [^)]*\): (assigned|revoked): ?(.*)", text):
            if m.group(1) == "assigned":
                last = sorted(int(p) for p in re.findall(r"\[(\d+)\]", m.group(2)))
            else:
                last = None
        return last

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()


def wait_balanced(members, partitions, timeout=40):
    def balanced():
        got = [m.assigned() for m in members]
        if any(a is None or len(a) == 0 for a in got):
            return None
        flat = sorted(p for a in got for p in a)
        if flat != list(range(partitions)):
            return None
        sizes = [len(a) for a in got]
        return got if max(sizes) - min(sizes) <= 1 else None
    return wait_for(balanced, timeout, "a balanced assignment over %d members" % len(members))


@pytest.mark.parametrize("n_members", [2, 3])
def test_kcat_group_shares_partitions_and_rebalances(broker, tmp_path, n_members):
    topic, group = unique("grp-topic"), unique("kcat-group")
    create_topic(broker, topic, 6)
    members = [KcatMember(broker, group, topic, tmp_path, "m%d" % i) for i in range(n_members)]
    try:
        assignment = wait_balanced(members, 6)
        assert all(len(a) == 6 // n_members for a in assignment), assignment

        first = ["a%d" % i for i in range(300)]
        produce(broker, topic, first)
        wait_for(lambda: sum(len(m.values()) for m in members) >= len(first), 30,
                 "all records consumed")
        time.sleep(1)  # anything consumed twice would show up now
        seen = [v for m in members for v in m.values()]
        assert sorted(seen) == sorted(first), "each record exactly once across the members"
        for m, parts in zip(members, assignment):
            got_parts = {int(ln[0]) for ln in m.lines()}
            assert got_parts <= set(parts), "a member read a partition it was not assigned"
            assert m.values(), "every member got records"

        # One member leaves: the others take over all six partitions.
        leaver = members.pop()
        leaver.stop()
        wait_balanced(members, 6)
        before = [len(m.values()) for m in members]
        second = ["b%d" % i for i in range(120)]
        produce(broker, topic, second)
        wait_for(lambda: sum(len(m.values()) - b for m, b in zip(members, before)) >= len(second),
                 30, "records after the rebalance consumed")
        time.sleep(1)
        after = [v for m in members for v in m.values() if v.startswith("b")]
        assert sorted(after) == sorted(second), "each new record exactly once after the rebalance"
    finally:
        for m in members:
            m.stop()


def test_kafka_python_commit_then_restarted_consumer_continues(broker):
    topic, group = unique("kp-topic"), unique("kp-group")
    create_topic(broker, topic, 3)
    values = ["v%03d" % i for i in range(100)]
    produce(broker, topic, values)

    def consumer():
        return KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_poll_records=7, consumer_timeout_ms=15000,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)

    c1 = consumer()
    got1 = []
    deadline = time.time() + 30
    while len(got1) < 40 and time.time() < deadline:
        for recs in c1.poll(timeout_ms=500).values():
            got1 += [r.value.decode() for r in recs]
    assert len(got1) >= 40
    c1.commit()
    committed = {tp.partition: c1.committed(tp) for tp in c1.assignment()}
    assert sum(committed.values()) == len(got1), committed
    c1.close()

    c2 = consumer()
    got2 = []
    deadline = time.time() + 30
    while len(got1) + len(got2) < 100 and time.time() < deadline:
        for recs in c2.poll(timeout_ms=500).values():
            got2 += [r.value.decode() for r in recs]
    c2.commit()
    c2.close()
    assert not set(got1) & set(got2), "the restarted consumer re-read committed records"
    assert sorted(got1 + got2) == values


def test_committed_offsets_survive_broker_restart(broker):
    topic, group = unique("rs-topic"), unique("rs-group")
    create_topic(broker, topic, 4)
    produce(broker, topic, ["x%d" % i for i in range(40)])
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                      enable_auto_commit=False)
    offsets = {TopicPartition(topic, p): OffsetAndMetadata(p + 3, "meta-%d" % p)
               for p in range(4)}
    c.commit(offsets)
    # Later commits win over earlier ones after replay.
    c.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "again")})
    c.close()

    broker.restart()

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        got = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    want = {TopicPartition(topic, p): (p + 3, "meta-%d" % p) for p in range(1, 4)}
    want[TopicPartition(topic, 0)] = (7, "again")
    assert {tp: (om.offset, om.metadata) for tp, om in got.items()} == want

    # A consumer of the group starts exactly there.
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False)
    start = {p: (7 if p == 0 else p + 3) for p in range(4)}
    ends = c.end_offsets([TopicPartition(topic, p) for p in range(4)])
    expect = sum(max(0, ends[TopicPartition(topic, p)] - start[p]) for p in range(4))
    seen = {}
    deadline = time.time() + 20
    while sum(len(v) for v in seen.values()) < expect and time.time() < deadline:
        for tp, recs in c.poll(timeout_ms=500).items():
            seen.setdefault(tp.partition, []).extend(r.offset for r in recs)
    c.close()
    assert sum(len(v) for v in seen.values()) == expect
    for p, offs in seen.items():
        assert min(offs) == start[p], (p, offs)


def test_group_state_survives_restart_and_admin_apis(broker):
    import confluent_kafka as confluent
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient

    topic, group = unique("adm-topic"), unique("adm-group")
    create_topic(broker, topic, 2)
    produce(broker, topic, ["y%d" % i for i in range(10)])
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    n = 0
    deadline = time.time() + 30
    while n < 10 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            n += 1
    assert n == 10
    c.commit(asynchronous=False)

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert str(desc.state).endswith("STABLE")
    assert len(desc.members) == 1
    assert sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions) == [0, 1]

    # Deleting a group with members is refused.
    fut = admin.delete_consumer_groups([group])[group]
    with pytest.raises(Exception) as e:
        fut.result(timeout=10)
    assert "NON_EMPTY_GROUP" in str(e.value) or "not empty" in str(e.value).lower()
    c.close()

    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups().result(timeout=10)
    states = {g.group_id: str(g.state) for g in listed.valid}
    assert states.get(group, "").endswith("EMPTY"), states
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition as CTP
    req = [ConsumerGroupTopicPartitions(group, [CTP(topic, 0), CTP(topic, 1)])]
    res = admin.list_consumer_group_offsets(req)[group].result(timeout=10)
    total = sum(tp.offset for tp in res.topic_partitions)
    assert total == 10

    admin.delete_consumer_groups([group])[group].result(timeout=10)
    listed = admin.list_consumer_groups().result(timeout=10)
    assert group not in {g.group_id for g in listed.valid}
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups().result(timeout=10)
    assert group not in {g.group_id for g in listed.valid}, "deleted group came back"


# ---- raw wire checks for versions the installed clients do not send ----

import struct  # noqa: E402

from kafka_wire import cstr, flexible_call, uvarint  # noqa: E402


def test_find_coordinator_v4_batched_keys(broker):
    body = struct.pack(">b", 0) + uvarint(3) + cstr("g1") + cstr("g2") + uvarint(0)
    r = flexible_call(broker.bootstrap, 10, 4, body)
    r.take(">i")  # throttle
    n = r.uvarint() - 1
    assert n == 2
    got = []
    for _ in range(n):
        key, node, host, port = r.cstr(), r.take(">i"), r.cstr(), r.take(">i")
        err, _msg = r.take(">h"), r.cstr()
        r.tags()
        got.append((key, node, host, port, err))
    assert got == [("g1", 0, "127.0.0.1", broker.port, 0), ("g2", 0, "127.0.0.1", broker.port, 0)]


def test_list_groups_v4_state_filter_and_offset_fetch_v8(broker):
    topic = unique("wire-topic")
    create_topic(broker, topic, 1)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="wire-g",
                      enable_auto_commit=False)
    c.commit({TopicPartition(topic, 0): OffsetAndMetadata(5, "m")})
    c.close()

    def list_groups(states):
        body = uvarint(len(states) + 1) + b"".join(cstr(s) for s in states) + uvarint(0)
        r = flexible_call(broker.bootstrap, 16, 4, body)
        r.take(">i")
        assert r.take(">h") == 0
        out = {}
        for _ in range(r.uvarint() - 1):
            gid, ptype, state = r.cstr(), r.cstr(), r.cstr()
            r.tags()
            out[gid] = (ptype, state)
        return out

    assert list_groups([]).get("wire-g") == ("", "Empty")
    assert "wire-g" in list_groups(["empty"])
    assert "wire-g" not in list_groups(["Stable"])

    # OffsetFetch v8: two groups, one with all topics (null), one unknown.
    body = (uvarint(3) + cstr("wire-g") + uvarint(0) + uvarint(0)
            + cstr("nobody") + uvarint(2) + cstr(topic) + uvarint(2) + struct.pack(">i", 0)
            + uvarint(0) + uvarint(0) + struct.pack(">b", 0) + uvarint(0))
    r = flexible_call(broker.bootstrap, 9, 8, body)
    r.take(">i")
    groups = {}
    for _ in range(r.uvarint() - 1):
        gid = r.cstr()
        parts = []
        for _ in range(r.uvarint() - 1):
            name = r.cstr()
            for _ in range(r.uvarint() - 1):
                p, off, epoch, md, err = (r.take(">i"), r.take(">q"), r.take(">i"), r.cstr(),
                                          r.take(">h"))
                r.tags()
                parts.append((name, p, off, md, err))
            r.tags()
        groups[gid] = (parts, r.take(">h"))
        r.tags()
    assert groups["wire-g"] == ([(topic, 0, 5, "m", 0)], 0)
    assert groups["nobody"] == ([(topic, 0, -1, "", 0)], 0)


def java_partition(group, n):
    h = 0
    b = group.encode("utf-16-be")
    for i in range(0, len(b), 2):
        h = (31 * h + int.from_bytes(b[i:i + 2], "big")) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % n


def test_offsets_topic_stays_bounded_and_survives_restart(broker_factory):
    """12000 commit records over 201 live ones in 1 MiB segments of a compacted
    __consumer_offsets: the log cleaner keeps the latest commit of each partition and the
    partition shrinks on disk; offsets are the same after a restart."""
    broker = broker_factory(**{"offsets.topic.segment.bytes": "1048576",
                               "log.cleaner.backoff.ms": "200"}).start()
    topic, group = unique("many-topic"), unique("bounded-group")
    create_topic(broker, topic, 200)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                      enable_auto_commit=False)
    for round_ in range(61):
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(round_ * 1000 + p, "m" * 100)
                  for p in range(200)})
    part = TopicPartition("__consumer_offsets", java_partition(group, 4))
    end = c.end_offsets([part])[part]
    c.close()
    assert end >= 12200
    pdir = os.path.join(broker.data_dir, "__consumer_offsets-%d" % part.partition)

    def log_bytes():
        return sum(os.path.getsize(os.path.join(pdir, f)) for f in os.listdir(pdir)
                   if f.endswith(".log"))
    # 12200 records of ~230 bytes: under half of it stays once the rolled segments are cleaned.
    wait_for(lambda: log_bytes() < 12200 * 230 // 2, 30,
             "%s to be cleaned (%d bytes)" % (part, log_bytes()))
    broker.restart()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        got = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    assert {tp.partition: om.offset for tp, om in got.items()} == \
        {p: 60000 + p for p in range(200)}


def test_join_group_v9_reason_and_skip_assignment(broker):
    """JoinGroup v8 carries the client's reason (KIP-800), which the rebalance log line shows
    as Kafka's does; v9's response has SkipAssignment, false here: the leader assigns."""
    group = unique("wire-join")

    def join(member_id, corr):
        body = (cstr(group) + struct.pack(">ii", 10000, 10000) + cstr(member_id) + cstr(None)
                + cstr("consumer") + uvarint(2) + cstr("range") + uvarint(4) + b"abc" + uvarint(0)
                + cstr("starting up, v9 test") + uvarint(0))
        r = flexible_call(broker.bootstrap, 11, 9, body, corr=corr)
        r.take(">i")  # throttle
        err, gen = r.take(">h"), r.take(">i")
        ptype, pname, leader = r.cstr(), r.cstr(), r.cstr()
        skip, member = r.take(">b"), r.cstr()
        members = []
        for _ in range(r.uvarint() - 1):
            mid, _inst = r.cstr(), r.cstr()
            members.append((mid, r.raw(r.uvarint() - 1)))
            r.tags()
        r.tags()
        assert r.o == len(r.d)
        return err, gen, ptype, pname, leader, skip, member, members

    err, _gen, _pt, _pn, _leader, skip, member, _ = join("", 1)
    assert err == 79 and member  # MEMBER_ID_REQUIRED, with the id to use
    err, gen, ptype, pname, leader, skip, member2, members = join(member, 2)
    assert (err, ptype, pname, leader, skip, member2) == (0, "consumer", "range", member, 0, member)
    assert gen >= 1 and members == [(member, b"abc")]
    assert "client reason: starting up, v9 test" in broker.log()
