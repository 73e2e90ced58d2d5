"""Log compaction (issue 17) end to end on a real broker: cleanup.policy=compact topics are
cleaned by the broker's cleaner threads (broker/log_cleaner.c over log/cleaner.c) as Kafka's
LogCleaner does: a consumer from the beginning sees the latest value of every live key in offset
order, tombstones go after delete.retention.ms, the partition shrinks on disk and the log dir's
cleaner-offset-checkpoint names it; keyless records are refused; policy changes, compact,delete
retention, a kill -9 in the middle of a clean, and __consumer_offsets compacted under the group
coordinator."""
import contextlib
import glob
import os
import re
import socket
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic)

from conftest import GREGOR, ROOT, Broker
from kafka_wire import _recv, _varint, crc32c

INVALID_RECORD = 87
INVALID_REQUEST = 42
SEGMENT = 1048576           # the smallest segment.bytes (Kafka 4.x)
VALUE = 1000                # bytes of a value: ~1100 records fill a segment
FAST = {"log.cleaner.backoff.ms": "200"}


@contextlib.contextmanager
def _running(data, port=None, **overrides):
    """A broker on data that must stop cleanly (exit 0: no sanitizer report either)."""
    b = Broker(data, port=port, overrides=overrides).start()
    try:
        yield b
    except BaseException:
        b.stop()
        raise
    rc = b.stop()
    assert rc == 0, "broker exited %s:\n%s" % (rc, b.log())


def _name(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def _admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def _create(b, name, configs, partitions=1):
    a = _admin(b)
    a.create_topics([NewTopic(name, partitions, 1, config=configs)])[name].result(15)


def _produce(b, topic, pairs, partition=0):
    """pairs: (key bytes, value bytes or None) in order; every delivery must succeed."""
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "acks": "all",
                  "enable.idempotence": False, "compression.type": "none"})
    errors = []
    for k, v in pairs:
        p.produce(topic, key=k, value=v, partition=partition,
                  on_delivery=lambda e, m: errors.append(e) if e else None)
        p.poll(0)
    assert p.flush(60) == 0
    assert errors == []


def _read_all(b, topic, partition=0):
    """Every record from the start up to the end offset: [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": _name("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    _, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    c.assign([TopicPartition(topic, partition, 0)])
    out = []
    deadline = time.time() + 60
    while (not out or out[-1][0] < high - 1) and time.time() < deadline and high > 0:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


def _expected(pairs):
    """The latest value of every key, None for a tombstone."""
    latest = {}
    for k, v in pairs:
        latest[k] = v
    return latest


def _check_compacted(records, latest, tombstones_gone):
    """records hold each key once, with its latest value, in offset order."""
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    seen = {}
    for _, k, v in records:
        assert k not in seen, "key %r more than once after cleaning" % k
        seen[k] = v
    live = {k: v for k, v in latest.items() if v is not None}
    for k, v in live.items():
        assert seen.get(k) == v, "key %r: %r, want its latest value" % (k, seen.get(k, b"<none>"))
    extra = set(seen) - set(live)
    if tombstones_gone:
        assert extra == set(), "tombstoned keys still there: %r" % sorted(extra)[:5]
    else:
        assert all(seen[k] is None and latest[k] is None for k in extra)


def _partition_dir(b, topic, partition=0):
    return os.path.join(b.data_dir, "%s-%d" % (topic, partition))


def _log_bytes(b, topic, partition=0):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(_partition_dir(b, topic, partition), "*.log")))


def _checkpoint(b):
    """The log dir's cleaner-offset-checkpoint: {(topic, partition): offset}."""
    path = os.path.join(b.data_dir, "cleaner-offset-checkpoint")
    if not os.path.exists(path):
        return {}
    lines = open(path).read().split("\n")
    assert lines[0] == "0"
    n = int(lines[1])
    got = {}
    for line in lines[2:2 + n]:
        t, p, o = line.split(" ")
        got[(t, int(p))] = int(o)
    return got


def _wait(cond, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def _value(tag, k):
    return (("%s-%s-" % (tag, k)).encode() + b"x" * VALUE)[:VALUE]


def _filler(tag, n=1200):
    """Unique keys enough to roll the segment before them (the active segment is never cleaned)."""
    return [(("%s%05d" % (tag, i)).encode(), _value(tag, i)) for i in range(n)]


def test_overwrites_and_tombstones_cleaned(tmp_path):
    with _running(str(tmp_path / "data"), **FAST) as b:
        topic = _name("compacted")
        _create(b, topic, {"cleanup.policy": "compact", "segment.bytes": str(SEGMENT),
                           "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "3000"})
        keys = [("k%03d" % i).encode() for i in range(200)]
        pairs = [(k, _value("r%d" % r, k.decode())) for r in range(6) for k in keys]
        pairs += [(k, None) for k in keys[:40]]           # tombstones
        overwritten = len(pairs)
        pairs += _filler("fa")
        _produce(b, topic, pairs)
        before = _log_bytes(b, topic)
        # (A clean may already have run on a prefix while the producer was writing.)
        cp = _wait(lambda: _checkpoint(b).get((topic, 0), 0) >= overwritten and
                   _checkpoint(b)[(topic, 0)], what="the cleaner-offset-checkpoint past the overwrites")
        _wait(lambda: _log_bytes(b, topic) < before * 0.6, what="the log to shrink")
        assert re.search(r"Log cleaner thread \d cleaned log %s-0 \(dirty section = \[\d+, %d\]\)"
                         % (topic, cp), b.log()), b.log()
        latest = _expected(pairs)
        _check_compacted(_read_all(b, topic), latest, tombstones_gone=False)
        # Past delete.retention.ms the next clean (new dirty data) drops the tombstones.
        time.sleep(3.5)
        more = _filler("fb")
        _produce(b, topic, more)
        _wait(lambda: _checkpoint(b).get((topic, 0), 0) > cp, what="a second clean")
        latest = _expected(pairs + more)
        records = _read_all(b, topic)
        _check_compacted(records, latest, tombstones_gone=True)
        assert not any(k in {x for x in keys[:40]} for _, k, _ in records)
        # The checkpoint is read back at start: a restart does not clean from the start again.
        cp2 = _checkpoint(b)[(topic, 0)]
        b.restart()
        assert _checkpoint(b)[(topic, 0)] == cp2
        _check_compacted(_read_all(b, topic), latest, tombstones_gone=True)


def _batch(records):
    """A magic-2 uncompressed batch: records are (key bytes or None, value bytes or None)."""
    ts = int(time.time() * 1000)
    body_all = b""
    for i, (k, v) in enumerate(records):
        kb = _varint(-1) if k is None else _varint(len(k)) + k
        vb = _varint(-1) if v is None else _varint(len(v)) + v
        body = b"\x00" + _varint(0) + _varint(i) + kb + vb + _varint(0)
        body_all += _varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(records) - 1, ts, ts, -1, -1, -1,
                            len(records)) + body_all
    after_len = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def _produce_v8(b, topic, batch):
    """(error, base_offset, [(batch_index, message)], error_message) of the one partition."""
    name = topic.encode()
    body = struct.pack(">hhi", -1, -1, 10000) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(batch)) + batch
    hdr = struct.pack(">hhih", 0, 8, 7, 4) + b"test"
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        resp = _recv(s, struct.unpack(">i", _recv(s, 4))[0])
    o = 4 + 4
    nlen = struct.unpack(">h", resp[o:o + 2])[0]
    o += 2 + nlen + 4 + 4
    err, base = struct.unpack(">hq", resp[o:o + 10])
    o += 10 + 16
    n = struct.unpack(">i", resp[o:o + 4])[0]
    o += 4
    rec_errors = []

    def nstr():
        nonlocal o
        ln = struct.unpack(">h", resp[o:o + 2])[0]
        o += 2
        if ln < 0:
            return None
        o += ln
        return resp[o - ln:o].decode()
    for _ in range(n):
        idx = struct.unpack(">i", resp[o:o + 4])[0]
        o += 4
        rec_errors.append((idx, nstr()))
    return err, base, rec_errors, nstr()


def test_keyless_produce_refused(broker):
    topic = _name("nokey")
    _create(broker, topic, {"cleanup.policy": "compact"})
    # A real client: the delivery fails with INVALID_RECORD, nothing is written.
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": False,
                  "retries": 0})
    errs = []
    p.produce(topic, value=b"no key", on_delivery=lambda e, m: errs.append(e))
    p.flush(15)
    assert len(errs) == 1 and errs[0] is not None and errs[0].code() == KafkaError.INVALID_RECORD
    # A compressed batch is read through: one keyless record among keyed ones fails all of it.
    # (The topic's metadata known first and a long linger, so that the three go in one batch
    # even on a loaded machine: a first record held back past linger.ms waiting for metadata
    # goes alone.)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": False,
                  "retries": 0, "compression.type": "lz4", "linger.ms": 1000})
    p.list_topics(topic, timeout=10)
    errs = []
    for k in (b"a", None, b"c"):
        p.produce(topic, key=k, value=b"v" * 100, on_delivery=lambda e, m: errs.append(e))
    p.flush(15)
    assert [e.code() if e else None for e in errs] == [KafkaError.INVALID_RECORD] * 3
    # Raw wire: a batch with one keyless record among keyed ones is refused whole, with Kafka's
    # record error and message.
    err, _, rec_errors, msg = _produce_v8(broker, topic, _batch([(b"a", b"1"), (None, b"2"), (b"c", b"3")]))
    each = "Compacted topic cannot accept message without key in topic partition %s-0." % topic
    assert err == INVALID_RECORD
    assert rec_errors == [(1, each)]
    assert msg == ("One or more records have been rejected due to 1 record errors in total, and "
                   "only showing the first three errors at most: [RecordError(batchIndex=1, "
                   "message='%s')]" % each)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": _name("g")})
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    # Keyed records and tombstones are taken; a delete-policy topic takes keyless ones.
    err, base, rec_errors, _ = _produce_v8(broker, topic, _batch([(b"a", b"1"), (b"b", None)]))
    assert (err, base, rec_errors) == (0, 0, [])
    plain = _name("plain")
    _create(broker, plain, {})
    assert _produce_v8(broker, plain, _batch([(None, b"x")]))[0] == 0
    c.close()


def _configs_cli(b, *args):
    env = dict(os.environ, GREGOR_BIN=GREGOR)
    return subprocess.run([os.path.join(ROOT, "bin", "kafka-configs.sh"), "--bootstrap-server",
                           b.bootstrap] + list(args), capture_output=True, text=True, env=env,
                          timeout=60)


def test_policy_change_to_compact_with_kafka_configs(tmp_path):
    with _running(str(tmp_path / "data"), **FAST) as b:
        topic = _name("policy")
        _create(b, topic, {"segment.bytes": str(SEGMENT)})
        keys = [("k%03d" % i).encode() for i in range(300)]
        pairs = [(k, _value("r%d" % r, k.decode())) for r in range(5) for k in keys] + _filler("fa")
        _produce(b, topic, pairs)
        time.sleep(1.5)  # several back-offs: a delete-policy topic is never cleaned
        assert (topic, 0) not in _checkpoint(b)
        assert len(_read_all(b, topic)) == len(pairs)
        r = _configs_cli(b, "--alter", "--entity-type", "topics", "--entity-name", topic,
                         "--add-config", "cleanup.policy=compact,min.cleanable.dirty.ratio=0.01")
        assert r.returncode == 0, r.stdout + r.stderr
        r = _configs_cli(b, "--describe", "--entity-type", "topics", "--entity-name", topic)
        assert "cleanup.policy=compact" in r.stdout, r.stdout
        _wait(lambda: _checkpoint(b).get((topic, 0)), what="the clean after the policy change")
        _check_compacted(_read_all(b, topic), _expected(pairs), tombstones_gone=True)


def _log_start(b, topic):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": _name("g")})
    low, _ = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    return low


def test_compact_delete_retention_and_compact_alone(tmp_path):
    with _running(str(tmp_path / "data"), **FAST, **{"log.retention.check.interval.ms": "300"}) as b:
        both, only = _name("cd"), _name("c")
        cfg = {"segment.bytes": str(SEGMENT), "retention.ms": "1000",
               "min.cleanable.dirty.ratio": "0.99"}  # retention, not cleaning, in this test
        _create(b, both, dict(cfg, **{"cleanup.policy": "compact,delete"}))
        _create(b, only, dict(cfg, **{"cleanup.policy": "compact"}))
        pairs = _filler("a", 2500)
        for t in (both, only):
            _produce(b, t, pairs)
        # compact,delete: old segments go by retention.ms; compact alone keeps them all.
        _wait(lambda: _log_start(b, both) > 0, what="retention on compact,delete")
        time.sleep(1.5)
        assert _log_start(b, only) == 0
        assert len(_read_all(b, only)) == len(pairs)


def test_kill9_during_cleaning_recovers(tmp_path):
    """Many keys in big segments, the cleaner throttled so one clean takes seconds; kill -9 in the
    middle of it; the restarted broker has a consistent log with every live key's latest value,
    and the next clean finishes it."""
    data = str(tmp_path / "data")
    b = Broker(data, overrides=dict(FAST, **{"log.cleaner.io.max.bytes.per.second": "3000000"})).start()
    topic = _name("crash")
    try:
        # Written as a delete-policy topic, then made compacted: one big clean of it all.
        _create(b, topic, {"segment.bytes": str(4 * SEGMENT), "min.cleanable.dirty.ratio": "0.01"})
        keys = [("key-%05d" % i).encode() for i in range(2000)]
        pairs = [(k, _value("r%d" % r, k.decode())) for r in range(8) for k in keys]
        pairs += [(k, None) for k in keys[:100]]
        pairs += _filler("f", 4400)
        _produce(b, topic, pairs)
        a = _admin(b)
        _incremental(a, ConfigResource.Type.TOPIC, topic,
                     ("cleanup.policy", "compact", AlterConfigOpType.SET)).result(15)
        # Killed between two swaps of the clean: some groups are in, the next is being written.
        _wait(lambda: len([ln for ln in b.log().splitlines() if "Swapped in cleaned" in ln and
                           "partition=%s-0," % topic in ln]) >= 2, what="two swaps of the clean")
        b.kill9()
        assert (topic, 0) not in _checkpoint(b), "the clean ended before the kill"
    except BaseException:
        b.stop()
        raise
    with _running(data, port=b.port, **FAST) as b:
        latest = _expected(pairs)
        records = _read_all(b, topic)
        offsets = [o for o, _, _ in records]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        last = {}
        for _, k, v in records:
            last[k] = v
        for k, v in latest.items():
            if v is not None:
                assert last.get(k) == v, k
        _wait(lambda: _checkpoint(b).get((topic, 0)), timeout=120, what="the clean after restart")
        _check_compacted(_read_all(b, topic), latest, tombstones_gone=False)
        assert not glob.glob(os.path.join(_partition_dir(b, topic), "*.cleaned"))


def test_consumer_offsets_compacted_and_reloaded(tmp_path):
    """__consumer_offsets is created compacted; many commits of a few partitions roll its
    segments, the cleaner shrinks it, and a restarted broker loads the same committed offsets."""
    with _running(str(tmp_path / "data"), **FAST, **{
            "offsets.topic.segment.bytes": str(SEGMENT), "offsets.topic.num.partitions": "1"}) as b:
        topic = _name("src")
        _create(b, topic, {}, partitions=3)
        group = _name("grp")
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        meta = "m" * 3000
        want = {}
        for i in range(1200):
            tps = [TopicPartition(topic, p, i * 10 + p, metadata=meta) for p in range(3)]
            c.commit(offsets=tps, asynchronous=False)
            for p in range(3):
                want[p] = i * 10 + p
        a = _admin(b)
        res = ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets")
        got = a.describe_configs([res])[res].result(15)
        assert got["cleanup.policy"].value == "compact"
        assert got["segment.bytes"].value == str(SEGMENT)
        before = _log_bytes(b, "__consumer_offsets")
        _wait(lambda: _checkpoint(b).get(("__consumer_offsets", 0)), what="__consumer_offsets cleaned")
        _wait(lambda: _log_bytes(b, "__consumer_offsets") < before / 2, what="it to shrink")
        c.close()
        b.restart()
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        assert {tp.partition: tp.offset for tp in committed} == want
        assert all(tp.metadata == meta for tp in committed)
        c.close()


def _describe(a, rtype, name):
    res = ConfigResource(rtype, name)
    return a.describe_configs([res])[res].result(15)


def _incremental(a, rtype, name, *ops):
    res = ConfigResource(rtype, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops])
    return a.incremental_alter_configs([res])[res]


def test_cleaner_configs(broker):
    a = _admin(broker)
    got = _describe(a, ConfigResource.Type.BROKER, "0")
    want = {"log.cleaner.enable": "true", "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": "134217728", "log.cleaner.backoff.ms": "15000",
            "log.cleaner.io.buffer.load.factor": "0.9", "log.cleaner.io.buffer.size": "524288",
            "log.cleaner.io.max.bytes.per.second": "1.7976931348623157E308",
            "log.cleaner.min.cleanable.ratio": "0.5", "log.cleaner.delete.retention.ms": "86400000",
            "log.cleanup.policy": "delete", "offsets.topic.segment.bytes": "104857600"}
    assert {k: got[k].value for k in want} == want
    assert got["log.cleaner.enable"].is_read_only
    assert not got["log.cleaner.threads"].is_read_only
    # Kafka's LogCleaner.validateReconfiguration.
    with pytest.raises(KafkaException) as e:
        _incremental(a, ConfigResource.Type.BROKER, "0",
                     ("log.cleaner.threads", "3", AlterConfigOpType.SET)).result(15)
    assert e.value.args[0].str() == ("Log cleaner threads cannot be increased to more than "
                                     "double the current value 1")
    with pytest.raises(KafkaException) as e:
        _incremental(a, ConfigResource.Type.BROKER, "0",
                     ("log.cleaner.threads", "0", AlterConfigOpType.SET)).result(15)
    assert e.value.args[0].str() == "Log cleaner threads should be at least 1"
    _incremental(a, ConfigResource.Type.BROKER, "0",
                 ("log.cleaner.threads", "2", AlterConfigOpType.SET),
                 ("log.cleanup.policy", "compact", AlterConfigOpType.SET)).result(15)
    assert "Starting the log cleaner" in broker.log()
    # A topic without an override follows log.cleanup.policy; APPEND/SUBTRACT on the list.
    topic = _name("follow")
    _create(broker, topic, {})
    assert _describe(a, ConfigResource.Type.TOPIC, topic)["cleanup.policy"].value == "compact"
    _incremental(a, ConfigResource.Type.TOPIC, topic,
                 ("cleanup.policy", "delete", AlterConfigOpType.APPEND)).result(15)
    assert _describe(a, ConfigResource.Type.TOPIC, topic)["cleanup.policy"].value == "compact,delete"
    _incremental(a, ConfigResource.Type.TOPIC, topic,
                 ("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)).result(15)
    assert _describe(a, ConfigResource.Type.TOPIC, topic)["cleanup.policy"].value == "delete"


def test_compacted_topic_on_three_brokers_each_replica_cleans(tmp_path):
    """RF 3 on a ZooKeeper cluster: every replica cleans its own log (each log dir's checkpoint
    names the partition) and after the leader's kill -9 the consumer reads the same compacted
    view from the new leader."""
    from zk_fixture import ZooKeeperServer, start_brokers, wait_until, zookeeper_available
    if not zookeeper_available():
        pytest.fail("Debian's zookeeper package is not installed: make test-deps installs it",
                    pytrace=False)
    zk = ZooKeeperServer()
    zk.start()
    brokers = []
    try:
        brokers = start_brokers(tmp_path, zk.connect + "/compact", (1, 2, 3), dict(FAST, **{
            "zookeeper.session.timeout.ms": 3000, "controlled.shutdown.max.retries": 1}))
        topic = _name("rf3")
        a = AdminClient({"bootstrap.servers": brokers[0].bootstrap})
        a.create_topics([NewTopic(topic, 1, 3, config={
            "cleanup.policy": "compact", "segment.bytes": str(SEGMENT),
            "min.cleanable.dirty.ratio": "0.01", "min.insync.replicas": "2"})])[topic].result(30)
        servers = ",".join(b.bootstrap for b in brokers)

        class All:
            bootstrap = servers
        keys = [("k%03d" % i).encode() for i in range(200)]
        pairs = [(k, _value("r%d" % r, k.decode())) for r in range(6) for k in keys]
        pairs += [(k, None) for k in keys[:40]]
        overwritten = len(pairs)
        pairs += _filler("fa")
        _produce(All, topic, pairs)
        for b in brokers:
            wait_until(lambda: _checkpoint(b).get((topic, 0), 0) >= overwritten, 60,
                       what="broker %s cleaning its replica" % b.overrides["broker.id"])
        latest = _expected(pairs)
        md = a.list_topics(topic, timeout=10).topics[topic].partitions[0]
        leader = next(b for b in brokers if b.overrides["broker.id"] == md.leader)
        _check_compacted(_read_all(leader, topic), latest, tombstones_gone=False)
        c = Consumer({"bootstrap.servers": leader.bootstrap, "group.id": _name("hw")})
        end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        c.close()
        assert end == len(pairs)
        leader.kill9()
        survivors = [b for b in brokers if b is not leader]
        s_admin = AdminClient({"bootstrap.servers": survivors[0].bootstrap})

        def new_leader():
            p = s_admin.list_topics(topic, timeout=10).topics[topic].partitions[0]
            return p.leader if p.leader not in (-1, md.leader) else None
        nid = wait_until(new_leader, 30, what="a new leader")
        nl = next(b for b in survivors if b.overrides["broker.id"] == nid)
        # A follower learns the high watermark in its next fetch response, up to
        # replica.fetch.wait.max.ms after the leader's moved (as in Kafka): killed sooner, the
        # new leader starts below the old one's and reaches it once the other survivor fetches.
        c = Consumer({"bootstrap.servers": nl.bootstrap, "group.id": _name("hw")})
        wait_until(lambda: c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] >= end,
                   30, what="the new leader's high watermark back at %d" % end)
        c.close()
        _check_compacted(_read_all(nl, topic), latest, tombstones_gone=False)
        for b in survivors:
            rc = b.stop()
            assert rc == 0, "broker exited %s:\n%s" % (rc, b.log())
    finally:
        for b in brokers:
            b.stop()
        zk.stop()
