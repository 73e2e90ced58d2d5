"""Kafka Connect 4.2 in distributed mode (connect-runtime with the file source and sink connectors,
tests/connect) against gregor (issue 17): the worker creates its three internal topics compacted,
a FileStreamSource copies a file into a topic and a FileStreamSink copies the topic into another
file; the worker is stopped (SIGTERM: nothing re-read; kill -9: at-least-once, only the lines after
the last offset commit again), restarted, and resumes from the offsets it stored in gregor, also
after the broker's cleaner has compacted the offsets and config topics.

The worker's classpath (tests/connect/target/connect-libs) is copied by Maven once per session
(`make test-deps` does it beforehand). Skipped only when `java` or `mvn` is missing."""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import ROOT, Broker, cleaner_checkpoint, free_port
from zk_fixture import wait_until

CONNECT_DIR = os.path.join(ROOT, "tests", "connect")
LIBS = os.path.join(CONNECT_DIR, "target", "connect-libs")
JAVA = shutil.which("java")
MVN = shutil.which("mvn")

CONFIGS, OFFSETS, STATUS = "connect-configs", "connect-offsets", "connect-status"
SOURCE, SINK = "file-source", "file-sink"
LINES = 300            # lines appended per step (bounded: the sink waits for each one)


@pytest.fixture(scope="session")
def connect_libs():
    if not JAVA or not MVN:
        pytest.fail("java and mvn are required for Kafka Connect (missing: %s; make test-deps installs them)"
                    % ", ".join(n for n, p in (("java", JAVA), ("mvn", MVN)) if not p))
    p = subprocess.run([MVN, "-q", "-B", "-f", os.path.join(CONNECT_DIR, "pom.xml"), "package"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and os.path.exists(os.path.join(LIBS, "connect-runtime-4.2.0.jar")), \
        "mvn package of tests/connect failed (%s):\n%s\n%s" % (p.returncode, p.stdout[-6000:], p.stderr[-6000:])
    return LIBS


class ConnectWorker:
    """One ConnectDistributed process on a worker.properties of its own; REST on a free port."""

    def __init__(self, libs, workdir, bootstrap, flush_ms=1000, extra=None):
        self.libs = libs
        self.workdir = workdir
        self.port = free_port()
        self.props = {
            "bootstrap.servers": bootstrap,
            "group.id": "connect-cluster",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "config.storage.topic": CONFIGS,
            "offset.storage.topic": OFFSETS,
            "status.storage.topic": STATUS,
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.flush.interval.ms": str(flush_ms),
            "listeners": "http://127.0.0.1:%d" % self.port,
            "plugin.discovery": "service_load",
            # One worker restarting: its tasks are not held for a returning member (5 min by
            # default), and a sink consumer killed with -9 leaves its group within 10 s.
            "scheduled.rebalance.max.delay.ms": "1000",
            "consumer.session.timeout.ms": "10000",
        }
        self.props.update(extra or {})
        self.proc = None
        self.runs = 0
        self.log_path = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=120, ready=True):
        self.runs += 1
        props = os.path.join(self.workdir, "worker.properties")
        with open(props, "w") as f:
            f.writelines("%s=%s\n" % kv for kv in self.props.items())
        self.log_path = os.path.join(self.workdir, "worker-%d.log" % self.runs)
        cp = ":".join(sorted(os.path.join(self.libs, j) for j in os.listdir(self.libs) if j.endswith(".jar")))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([JAVA, "-Xmx512m", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                                          "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS", "-cp", cp,
                                          "org.apache.kafka.connect.cli.ConnectDistributed", props],
                                         stdout=log, stderr=subprocess.STDOUT)
        if not ready:
            return self
        # The REST server answers before the herder has joined its group and read the config
        # topic; GET /connectors only succeeds after both.
        self.wait(lambda: self.rest("GET", "/connectors") is not None, timeout, "its REST API")
        return self

    def wait(self, pred, timeout, what):
        """wait_until(pred), failing at once when the worker exits meanwhile."""
        def alive_and():
            if self.proc.poll() is not None:
                return "exited"
            return pred()
        got = wait_until(alive_and, timeout, interval=0.5, what="%s (worker log %s)" % (what, self.log_path))
        if got == "exited":
            raise AssertionError("Connect worker exited %s:\n%s" % (self.proc.returncode, self.log()))
        return got

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-6000:]

    def rest(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
            return json.loads(data) if data else {}

    def stop(self, timeout=60):
        """SIGTERM: Connect's shutdown hook stops the tasks and commits their offsets."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        assert "Kafka Connect stopped" in self.log(), self.log()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(30)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def _running(worker, name, timeout=90):
    def ok():
        try:
            s = worker.rest("GET", "/connectors/%s/status" % name)
        except urllib.error.HTTPError:
            return False
        return (s["connector"]["state"] == "RUNNING" and s["tasks"]
                and all(t["state"] == "RUNNING" for t in s["tasks"]))
    worker.wait(ok, timeout, "%s RUNNING" % name)


def _connectors(worker, source_file, sink_file, topic):
    worker.rest("POST", "/connectors", {"name": SOURCE, "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "file": source_file, "topic": topic, "tasks.max": "1"}})
    worker.rest("POST", "/connectors", {"name": SINK, "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": sink_file, "topics": topic, "tasks.max": "1"}})
    _running(worker, SOURCE)
    _running(worker, SINK)


class SourceFile:
    """The source file and the lines appended to it; line i ends at byte ends[i]."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.ends = []
        self.tag = uuid.uuid4().hex[:6]
        open(path, "w").close()

    def append(self, n):
        new = ["line-%s-%06d" % (self.tag, len(self.lines) + i) for i in range(n)]
        with open(self.path, "a") as f:
            for line in new:
                f.write(line + "\n")
                self.ends.append((self.ends[-1] if self.ends else 0) + len(line) + 1)
        self.lines += new

    def lines_before(self, position):
        """How many lines end at or before byte position (a FileStreamSource offset)."""
        assert position == 0 or position in self.ends, position
        return self.ends.index(position) + 1 if position else 0


def _sink_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


def _wait_sink(path, want, timeout=120):
    wait_until(lambda: _sink_lines(path) == want or len(_sink_lines(path)) > len(want), timeout,
               interval=0.3, what="the sink file's %d lines" % len(want))
    got = _sink_lines(path)
    assert got == want, _first_difference(got, want)


def _replays(got, want):
    """How many lines of got are replays, when got is want (lines unique) delivered in order
    with replays: after any line the sink may start again from an earlier line (at-least-once:
    its consumer resumed from the last committed offset, e.g. after its group coordinator died).
    None when got is not that: a line missing, out of order, or unknown."""
    index = {w: i for i, w in enumerate(want)}
    nxt, high, replays = 0, 0, 0
    for g in got:
        i = index.get(g)
        if i is None or i > nxt:
            return None
        if i < high:
            replays += 1
        nxt, high = i + 1, max(high, i + 1)
    return replays if nxt == len(want) else None


def _wait_sink_at_least_once(path, want, timeout=120):
    """The sink file holds every line of want, in order, with at most replays of earlier
    lines (the sink's consumer resuming from its committed offset after a failover)."""
    wait_until(lambda: _replays(_sink_lines(path), want) is not None, timeout, interval=0.3,
               what="the sink file's %d lines (replays allowed)" % len(want))
    return _replays(_sink_lines(path), want)


def _first_difference(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "line %d: %r != %r (got %d lines, want %d)" % (i, g, w, len(got), len(want))
    return "got %d lines, want %d" % (len(got), len(want))


def _consumer(b):
    return Consumer({"bootstrap.servers": b.bootstrap, "group.id": "reader-" + uuid.uuid4().hex[:8],
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def _read_topic(b, topic, timeout=60):
    """Every record of every partition, from the start to the end offsets seen at the call:
    {partition: [(offset, key, value)]}."""
    c = _consumer(b)
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in parts}
        want = {p: hi for p, (lo, hi) in ends.items() if hi > lo}
        c.assign([TopicPartition(topic, p, 0) for p in want])
        out = {p: [] for p in parts}
        deadline = time.time() + timeout
        while want and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out[m.partition()].append((m.offset(), m.key(), m.value()))
            if m.offset() >= want[m.partition()] - 1:
                want.pop(m.partition())
        assert not want, "partitions not read to their end: %r" % want
        return out
    finally:
        c.close()


def _topic_values(b, topic):
    return [v.decode() for _, _, v in _read_topic(b, topic)[0]]


def _source_position(b, src):
    """The FileStreamSource's committed position: the latest value of its key in the offsets
    topic (Connect's KafkaOffsetBackingStore reads it the same way at start), or 0."""
    key = json.dumps([SOURCE, {"filename": src.path}], separators=(",", ":")).encode()
    latest = None
    for records in _read_topic(b, OFFSETS).values():
        for _, k, v in records:
            if k == key:
                latest = v
    return json.loads(latest)["position"] if latest else 0


def _sink_committed(b, topic):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "connect-" + SINK, "enable.auto.commit": False})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=10)
        return max(tp.offset, 0)
    finally:
        c.close()


def _topic_configs(b, name):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    return {k: e.value for k, e in a.describe_configs([res])[res].result(15).items()}


@pytest.fixture
def setup(tmp_path, connect_libs):
    """A broker, a worker (not started) and the source/sink files; the broker must exit 0."""
    made = {}

    def make(flush_ms=1000, broker_overrides=None, worker_extra=None):
        b = Broker(str(tmp_path / "data"), overrides=broker_overrides).start()
        made["broker"] = b
        w = ConnectWorker(connect_libs, str(tmp_path), b.bootstrap, flush_ms, worker_extra)
        made["worker"] = w
        return b, w, SourceFile(str(tmp_path / "source.txt")), str(tmp_path / "sink.txt")
    yield make
    if "worker" in made:
        made["worker"].close()
    if "broker" in made:
        b = made["broker"]
        alive = b.alive()
        rc = b.stop()
        assert alive, "broker died during the test:\n" + b.log()
        assert rc == 0, "broker exited %s:\n%s" % (rc, b.log())


def test_connect_copies_a_file_and_resumes_after_sigterm(setup):
    b, w, src, sink = setup()
    topic = "lines-" + uuid.uuid4().hex[:6]
    w.start()
    # The worker created its three internal topics compacted (Connect refuses to run on an
    # internal topic that is not cleanup.policy=compact), with its default partition counts.
    for name, parts in ((CONFIGS, 1), (OFFSETS, 25), (STATUS, 5)):
        assert _topic_configs(b, name)["cleanup.policy"] == "compact", name
        assert len(_consumer(b).list_topics(name, timeout=10).topics[name].partitions) == parts, name
    _connectors(w, src.path, sink, topic)
    src.append(LINES)
    _wait_sink(sink, src.lines)

    w.stop()
    committed = src.lines_before(_source_position(b, src))
    assert committed == LINES, "a clean stop commits the source's last position"
    src.append(LINES)
    w.start()
    _running(w, SOURCE)
    _running(w, SINK)
    src.append(LINES)
    _wait_sink(sink, src.lines)
    # Nothing re-read: the topic holds every line once, in order.
    assert _topic_values(b, topic) == src.lines
    w.stop()


def test_connect_kill9_is_at_least_once(setup):
    b, w, src, sink = setup()
    topic = "lines-" + uuid.uuid4().hex[:6]
    w.start()
    _connectors(w, src.path, sink, topic)
    src.append(LINES)
    _wait_sink(sink, src.lines)
    w.stop()                                   # commits LINES lines (checked in the test above)

    # Offsets commit once a minute now: the lines copied in the second run stay uncommitted.
    w.props["offset.flush.interval.ms"] = "60000"
    w.start()
    _running(w, SOURCE)
    _running(w, SINK)
    src.append(LINES)
    _wait_sink(sink, src.lines)
    w.kill9()
    before_kill = _sink_lines(sink)
    position = _source_position(b, src)
    replay_from = src.lines_before(position)
    sink_from = _sink_committed(b, topic)
    assert LINES <= replay_from < 2 * LINES, \
        "the kill must leave uncommitted lines: committed through line %d of %d" % (replay_from, 2 * LINES)
    assert LINES <= sink_from <= 2 * LINES, sink_from

    src.append(LINES)
    w.props["offset.flush.interval.ms"] = "1000"
    w.start()
    _running(w, SOURCE)
    _running(w, SINK)
    # The source re-reads exactly from its last committed position: the topic holds every line,
    # and again only the uncommitted ones.
    want_topic = src.lines[:2 * LINES] + src.lines[replay_from:]
    wait_until(lambda: len(_topic_values(b, topic)) >= len(want_topic), 120, interval=0.5,
               what="the topic's %d records" % len(want_topic))
    got_topic = _topic_values(b, topic)
    assert got_topic == want_topic, _first_difference(got_topic, want_topic)
    # The sink re-delivers from its group's committed offset: the file is what it held at the
    # kill, then the topic again from that offset.
    _wait_sink(sink, before_kill + want_topic[sink_from:])
    assert set(_sink_lines(sink)) == set(src.lines)
    w.stop()


def _key_records(b, topic, key):
    """(partition, [offsets of key's records], records in the partition, its offset span)."""
    for p, records in _read_topic(b, topic).items():
        offsets = [o for o, k, _ in records if k == key]
        if offsets:
            return p, offsets, len(records), records[-1][0] + 1 - records[0][0]
    return None, [], 0, 0


def test_connect_resumes_from_compacted_offsets_and_configs(setup):
    # Segments of the offsets and config topics roll each second (segment.ms; segment.bytes
    # cannot go under 1 MiB) and are cleaned as soon as 1% is dirty, every 200 ms.
    topic_settings = {"segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01"}
    extra = {}
    for prefix in ("offset.storage.", "config.storage."):
        extra.update({prefix + k: v for k, v in topic_settings.items()})
    b, w, src, sink = setup(flush_ms=300, broker_overrides={"log.cleaner.backoff.ms": "200"},
                            worker_extra=extra)
    topic = "lines-" + uuid.uuid4().hex[:6]
    w.start()
    for name in (OFFSETS, CONFIGS):
        c = _topic_configs(b, name)
        assert (c["cleanup.policy"], c["segment.ms"], c["min.cleanable.dirty.ratio"]) == \
            ("compact", "1000", "0.01"), name
    _connectors(w, src.path, sink, topic)
    # A third connector made and deleted: its config records end in tombstones.
    w.rest("POST", "/connectors", {"name": "scratch", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": os.path.join(w.workdir, "scratch.txt"), "topics": topic, "tasks.max": "1"}})
    _running(w, "scratch")
    w.rest("DELETE", "/connectors/scratch")

    # Twelve commits of the source's position, each in a segment of its own; the source's
    # config rewritten four times (each a connector, task and commit record).
    commits = 12
    for i in range(commits):
        src.append(LINES // 10)
        _wait_sink(sink, src.lines)
        wait_until(lambda: _source_position(b, src) == src.ends[-1], 30, interval=0.2,
                   what="the source's position committed")
        if i % 3 == 0:
            w.rest("PUT", "/connectors/%s/config" % SOURCE, {
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "file": src.path, "topic": topic, "tasks.max": "1", "batch.size": str(1000 + i)})
            _running(w, SOURCE)
        time.sleep(1.1)
    last_batch_size = str(1000 + 3 * ((commits - 1) // 3))

    # The cleaner keeps the latest position only (the active segment is never cleaned: one more
    # at most), and the source connector's latest config; both partitions are checkpointed.
    offsets_key = json.dumps([SOURCE, {"filename": src.path}], separators=(",", ":")).encode()
    part, _, _, _ = wait_until(lambda: (lambda r: r if len(r[1]) <= 2 else None)(
        _key_records(b, OFFSETS, offsets_key)), 90, interval=0.5, what="the offsets topic cleaned")
    assert cleaner_checkpoint(b).get((OFFSETS, part), 0) > 0
    _, _, records, span = wait_until(lambda: (lambda r: r if len(r[1]) <= 2 else None)(
        _key_records(b, CONFIGS, b"connector-" + SOURCE.encode())), 90, interval=0.5,
        what="the config topic cleaned")
    assert records < span, "no offsets removed from the config topic"
    assert cleaner_checkpoint(b).get((CONFIGS, 0), 0) > 0
    scratch = [k for _, k, _ in _read_topic(b, CONFIGS)[0] if k and b"scratch" in k]
    assert scratch, "the deleted connector's tombstones stay until delete.retention.ms"

    # Restarted, the worker reads both compacted topics: the latest config, the deleted
    # connector still gone, and the source resumes at its latest position (nothing re-read).
    w.stop()
    src.append(LINES // 10)
    w.start()
    assert sorted(w.rest("GET", "/connectors")) == sorted([SOURCE, SINK])
    assert w.rest("GET", "/connectors/%s/config" % SOURCE)["batch.size"] == last_batch_size
    _running(w, SOURCE)
    _running(w, SINK)
    src.append(LINES // 10)
    _wait_sink(sink, src.lines)
    assert _topic_values(b, topic) == src.lines

    # Once more after a kill -9 and a further clean: the replay starts at the compacted
    # offsets topic's latest position.
    src.append(LINES // 10)
    _wait_sink(sink, src.lines)
    wait_until(lambda: _source_position(b, src) == src.ends[-1], 30, interval=0.2,
               what="the source's position committed")
    w.kill9()
    position = _source_position(b, src)
    replay_from = src.lines_before(position)
    sink_from = _sink_committed(b, topic)
    before_kill = _sink_lines(sink)
    written = len(src.lines)
    src.append(LINES // 10)
    w.start()
    _running(w, SOURCE)
    _running(w, SINK)
    want_topic = src.lines[:written] + src.lines[replay_from:]
    wait_until(lambda: len(_topic_values(b, topic)) >= len(want_topic), 120, interval=0.5,
               what="the topic's %d records" % len(want_topic))
    assert _topic_values(b, topic) == want_topic
    _wait_sink(sink, before_kill + want_topic[sink_from:])
    w.stop()


def test_connect_on_three_brokers_internal_topics_rf3(tmp_path, connect_libs):
    """A ZooKeeper cluster of 3 gregor brokers: the internal topics at RF 3; the leader of the
    offsets partition holding the source's position is killed -9 while lines flow, the worker
    goes on against the new leaders, and a restarted worker resumes from the same position."""
    from zk_fixture import ZooKeeperServer, start_brokers, zookeeper_available
    if not zookeeper_available():
        pytest.fail("Debian's zookeeper package is not installed: make test-deps installs it", pytrace=False)
    zk = ZooKeeperServer()
    zk.start()
    brokers, w = [], None
    try:
        brokers = start_brokers(tmp_path, zk.connect + "/connect", (1, 2, 3), {
            "zookeeper.session.timeout.ms": 3000, "controlled.shutdown.max.retries": 1,
            "offsets.topic.replication.factor": 3})

        class All:
            bootstrap = ",".join(b.bootstrap for b in brokers)
        extra = {k + ".replication.factor": "3" for k in ("config.storage", "offset.storage", "status.storage")}
        w = ConnectWorker(connect_libs, str(tmp_path), All.bootstrap, 500, extra)
        src, sink = SourceFile(str(tmp_path / "source.txt")), str(tmp_path / "sink.txt")
        topic = "lines-" + uuid.uuid4().hex[:6]
        from confluent_kafka.admin import NewTopic
        a = AdminClient({"bootstrap.servers": All.bootstrap})
        a.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
        w.start()
        for name in (CONFIGS, OFFSETS, STATUS):
            assert _topic_configs(All, name)["cleanup.policy"] == "compact", name
            parts = a.list_topics(name, timeout=10).topics[name].partitions.values()
            assert parts and all(sorted(p.replicas) == [1, 2, 3] for p in parts), name
        _connectors(w, src.path, sink, topic)
        src.append(LINES)
        _wait_sink(sink, src.lines)
        wait_until(lambda: _source_position(All, src) == src.ends[-1], 30, interval=0.2,
                   what="the source's position committed")

        key = json.dumps([SOURCE, {"filename": src.path}], separators=(",", ":")).encode()
        part = _key_records(All, OFFSETS, key)[0]
        leader_id = a.list_topics(OFFSETS, timeout=10).topics[OFFSETS].partitions[part].leader
        victim = next(b for b in brokers if b.overrides["broker.id"] == leader_id)
        victim.kill9()
        survivors = [b for b in brokers if b is not victim]

        class Survivors:
            bootstrap = ",".join(b.bootstrap for b in survivors)
        src.append(LINES)
        # The sink's group coordinator may have been on the killed broker too: its consumer
        # then resumes from its last committed offset and writes those lines again
        # (at-least-once, as on Kafka). The topic itself must hold each line once (below).
        _wait_sink_at_least_once(sink, src.lines, timeout=180)
        wait_until(lambda: _source_position(Survivors, src) == src.ends[-1], 60, interval=0.5,
                   what="the source's position committed on the new leader")
        victim.start()
        w.stop()
        src.append(LINES)
        w.start()
        _running(w, SOURCE)
        _running(w, SINK)
        _wait_sink_at_least_once(sink, src.lines, timeout=180)
        # Every line is in the topic, in order. Replays are allowed only as the at-least-once
        # source gives them: when the worker's group coordinator died with the broker, the
        # rebalance restarts the source task from its last committed position (the flush to the
        # offsets partition whose leader was killed had not succeeded yet), as on Kafka without
        # exactly.once.source.support.
        values = _topic_values(All, topic)
        assert _replays(values, src.lines) is not None, _first_difference(values, src.lines)
        w.stop()
        for b in brokers:
            rc = b.stop()
            assert rc == 0, "broker exited %s:\n%s" % (rc, b.log())
    finally:
        if w is not None:
            w.close()
        for b in brokers:
            b.stop()
        zk.stop()


def test_followers_add_partitions_while_a_fetch_is_in_flight(tmp_path):
    """Found by the test above (Connect's 25 offsets partitions, then a leader change): a
    follower's Fetch long-polls its leader (replica.fetch.wait.max.ms) while new partitions of
    that leader are added to its fetcher; the answer must still be matched to the partitions it
    was asked for (the fetcher's partition array grows and shifts meanwhile)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic
    from zk_fixture import ZooKeeperServer, start_brokers, zookeeper_available
    if not zookeeper_available():
        pytest.fail("Debian's zookeeper package is not installed: make test-deps installs it", pytrace=False)
    zk = ZooKeeperServer()
    zk.start()
    brokers = []
    try:
        brokers = start_brokers(tmp_path, zk.connect + "/fetcher", (1, 2, 3),
                                {"zookeeper.session.timeout.ms": 3000, "controlled.shutdown.max.retries": 1})
        servers = ",".join(b.bootstrap for b in brokers)
        a = AdminClient({"bootstrap.servers": servers})
        tag = uuid.uuid4().hex[:6]
        # "m-" first, idle: its followers' fetches wait at the leader. Then topics sorting
        # before and after it, each adding 16 partitions per leader to every follower.
        names = ["m-%s" % tag, "a-%s" % tag, "z-%s" % tag, "b-%s" % tag]
        parts = {names[0]: 3, names[1]: 48, names[2]: 48, names[3]: 48}

        def isr_full(name):
            md = a.list_topics(name, timeout=10).topics[name].partitions
            return len(md) == parts[name] and all(sorted(p.isrs) == [1, 2, 3] for p in md.values())
        for name in names:
            a.create_topics([NewTopic(name, parts[name], 3)])[name].result(30)
            wait_until(lambda: isr_full(name), 60, interval=0.2, what="%s fully replicated" % name)
            time.sleep(0.2)      # the followers' next fetches are in flight again
        p = Producer({"bootstrap.servers": servers, "acks": "all", "linger.ms": 5})
        errors = []
        for name in names:
            for i in range(parts[name]):
                p.produce(name, value=("%s/%d" % (name, i)).encode(), partition=i,
                          on_delivery=lambda e, m: errors.append(e) if e else None)
        assert p.flush(60) == 0 and errors == []
        # Every replica holds exactly its own partition's record.
        for b in brokers:
            assert b.alive(), "broker %s died:\n%s" % (b.overrides["broker.id"], b.log())
            for name in names:
                for i in range(parts[name]):
                    d = os.path.join(b.data_dir, "%s-%d" % (name, i))
                    wait_until(lambda: ("%s/%d" % (name, i)).encode() in
                               b"".join(open(os.path.join(d, f), "rb").read() for f in os.listdir(d) if f.endswith(".log")),
                               30, interval=0.2, what="%s-%d on broker %s" % (name, i, b.overrides["broker.id"]))
        for b in brokers:
            rc = b.stop()
            assert rc == 0, "broker exited %s:\n%s" % (rc, b.log())
    finally:
        for b in brokers:
            b.stop()
        zk.stop()


@pytest.mark.parametrize("policy", ["delete", "compact,delete"])
def test_connect_refuses_an_offsets_topic_not_compacted(setup, policy):
    """Connect reads each internal topic's cleanup.policy back (DescribeConfigs) and refuses to
    run on one that may delete its records: gregor must report the policy the topic has."""
    from confluent_kafka.admin import NewTopic
    b, w, _, _ = setup()
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(OFFSETS, 5, 1, config={"cleanup.policy": policy})])[OFFSETS].result(15)
    assert _topic_configs(b, OFFSETS)["cleanup.policy"] == policy
    w.start(ready=False)
    refusal = "Topic '%s' supplied via the 'offset.storage.topic' property is required to have " \
              "'cleanup.policy=compact'" % OFFSETS
    # Its herder thread stops on the refusal (the process exits some 30 s later).
    wait_until(lambda: refusal in open(w.log_path, errors="replace").read(), 120, interval=0.5,
               what="Connect's refusal of the offsets topic")
    assert "Uncaught exception in herder work thread, exiting" in open(w.log_path, errors="replace").read()
