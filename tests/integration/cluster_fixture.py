"""N gregor brokers on a real 3-node ZooKeeper ensemble (tests/cluster/zk_ensemble.py), for the
cluster tests under real clients and faults (test_cluster_clients.py, test_cluster_faults.py).

`ensemble` is module-scoped (it takes a few seconds to start); each test runs its own brokers in
its own chroot through `Cluster`, and `ensure_running()` restarts any ZooKeeper node an earlier
test left down. Every wait is bounded. `sanitizer_reports()` reads each broker's log for an
ASan/UBSan/LSan report: a test fails on one even when everything else passed.
"""
import json
import os
import signal
import sys
import time

import pytest
from conftest import Broker
from zk_fixture import ZkReader, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
from zk_ensemble import ZkEnsemble  # noqa: E402,F401 (the tests take it from here)

LEADER_NOT_AVAILABLE = 5
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory):
    """A 3-node ensemble for a test module (import this name into it); the brokers get all
    three servers, each test its own chroot."""
    ens = ZkEnsemble.on_free_ports(str(tmp_path_factory.mktemp("zk")))
    ens.start()
    try:
        yield ens
    finally:
        ens.stop()


def ensure_running(ens, timeout=60):
    """Starts every node that is down and waits until all serve with one leader."""
    for n in ens.nodes:
        if n.pid() is None:
            n.start()
    ens.wait_serving(timeout=timeout)


class Cluster:
    def __init__(self, tmp_path, ens, chroot, ids=(1, 2, 3), session_ms=6000):
        self.ens = ens
        self.chroot = chroot
        self.session_ms = session_ms
        self.brokers = {}
        for i in ids:
            self.brokers[i] = Broker(str(tmp_path / ("data%d" % i)), overrides={
                "broker.id": i, "zookeeper.connect": ens.connect + chroot,
                "zookeeper.session.timeout.ms": session_ms})

    def __getitem__(self, broker_id):
        return self.brokers[broker_id]

    @property
    def ids(self):
        return sorted(self.brokers)

    def start(self):
        for b in self.brokers.values():
            b.start()
        self.wait_all_listed(self.ids, 30)
        return self

    def stop(self):
        for b in self.brokers.values():
            try:
                if b.proc is not None:
                    b.proc.send_signal(signal.SIGCONT)  # a paused broker must be able to exit
                b.stop()
            except Exception:
                pass

    def bootstrap(self, *ids):
        return ",".join(self.brokers[i].bootstrap for i in ids)

    # ------------------------------------------------------------------ ZooKeeper, read directly

    def zk(self):
        """A ZkReader on the first node that accepts a session."""
        last = None
        for n in self.ens.nodes:
            try:
                return ZkReader(n.connect, timeout_ms=6000)
            except OSError as e:
                last = e
        raise OSError("no ZooKeeper node answers: %s" % last)

    def zk_get(self, path):
        r = self.zk()
        try:
            return r.get(self.chroot + path)
        finally:
            r.close()

    def zk_json(self, path):
        return json.loads(self.zk_get(path)[0])

    def registrations(self):
        """{broker id: ephemeral owner session of /brokers/ids/<id>}."""
        r = self.zk()
        try:
            out = {}
            for c in r.children(self.chroot + "/brokers/ids"):
                out[int(c)] = r.get(self.chroot + "/brokers/ids/" + c)[1]["ephemeral_owner"]
            return out
        finally:
            r.close()

    def controller(self):
        return self.zk_json("/controller")["brokerid"]

    def state(self, topic, p):
        return self.zk_json("/brokers/topics/%s/partitions/%d/state" % (topic, p))

    # ------------------------------------------------------------------ what the brokers answer

    def metadata(self, broker_id, timeout=10):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.brokers[broker_id].bootstrap}).list_topics(
            timeout=timeout)

    def wait_all_listed(self, ids, timeout, asked=None):
        """Waits until every broker in `asked` (default: ids) lists exactly ids and the same live
        controller; returns the controller id."""
        def agree():
            ctl = set()
            for i in asked or ids:
                md = self.metadata(i)
                if sorted(md.brokers) != sorted(ids):
                    return None
                ctl.add(md.controller_id)
            return ctl.pop() if len(ctl) == 1 and next(iter(ctl)) in ids else None
        return wait_until(agree, timeout, interval=0.2, what="brokers %s listed with one controller" % ids)

    def leaders(self, broker_id, topic):
        """{partition: (leader, leader error code or 0)} in broker_id's Metadata, or None."""
        t = self.metadata(broker_id).topics.get(topic)
        if t is None or t.error is not None:
            return None
        return {p: (pm.leader, pm.error.code() if pm.error is not None else 0)
                for p, pm in t.partitions.items()}

    def wait_leaders(self, topic, nparts, timeout=20, asked=None):
        """Waits until every asked broker shows a live leader for each of nparts partitions and all
        agree; returns {partition: leader}."""
        def all_led():
            seen = None
            for i in asked or self.ids:
                ls = self.leaders(i, topic)
                if ls is None or len(ls) != nparts or any(l < 0 or e for l, e in ls.values()):
                    return None
                cur = {p: l for p, (l, _) in ls.items()}
                if seen is not None and cur != seen:
                    return None
                seen = cur
            return seen
        return wait_until(all_led, timeout, interval=0.2, what="leaders of %s on every broker" % topic)

    def create_topic(self, via, name, partitions, rf=1, timeout=30):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.brokers[via].bootstrap})
        fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf)],
                                 request_timeout=20)
        return fs[name].result(timeout=timeout)

    def sanitizer_reports(self):
        out = []
        for i, b in self.brokers.items():
            try:
                with open(b.log_path, "rb") as f:
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            for mark in SANITIZER_MARKS:
                k = text.find(mark)
                if k >= 0:
                    out.append("broker %d: %s" % (i, text[max(0, k - 200):k + 3000]))
                    break
        return out

    def log_count(self, broker_id, needle):
        with open(self.brokers[broker_id].log_path, "rb") as f:
            return f.read().decode(errors="replace").count(needle)


class AckedLog:
    """What producers were told: the acked (partition, offset, value) per topic, for the checker."""

    def __init__(self):
        self.acked = {}  # topic -> set of (partition, offset, value)
        self.errors = []

    def callback(self, topic):
        def cb(err, msg):
            if err is not None:
                self.errors.append(err)
            else:
                self.acked.setdefault(topic, set()).add((msg.partition(), msg.offset(), msg.value()))
        return cb


def read_all(bootstrap, topic, partitions, timeout=60):
    """Every record of the given partitions from offset 0 to the end offset at the start of the
    read, with confluent_kafka's consumer (assign, no group): a list of (partition, offset, value)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-unused",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = {}
        for p in partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
            ends[p] = hi
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        left = {p for p in partitions if ends[p] > 0}
        deadline = time.time() + timeout
        while left:
            if time.time() > deadline:
                raise AssertionError("reading %s timed out, partitions left %s (ends %s)"
                                     % (topic, left, ends))
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append((m.partition(), m.offset(), m.value()))
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
        return out
    finally:
        c.close()


def check_read_back(bootstrap, topic, acked, partitions, unsure=()):
    """The acked (partition, offset, value) of the given partitions equal what a consumer from the
    beginning reads there, exactly once each; returns the number checked. `unsure` holds values
    whose produce failed on the client (a timeout may still have stored them, as with Kafka):
    each may be read at most once."""
    acked_here = {a for a in acked if a[0] in partitions}
    got = read_all(bootstrap, topic, partitions)
    values = [g[2] for g in got]
    assert len(values) == len(set(values)), "a record read twice (every value is unique)"
    got_set = set(got)
    missing = acked_here - got_set
    assert not missing, "%d acked records not read back, e.g. %s" % (len(missing), sorted(missing)[:5])
    extra = {g for g in got_set - acked_here if g[2] not in set(unsure)}
    assert not extra, "%d records read that no producer was told about, e.g. %s" % (
        len(extra), sorted(extra)[:5])
    return len(acked_here)
