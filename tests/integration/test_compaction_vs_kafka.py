"""Compaction side by side with Apache Kafka 4.x (issue 17): the same keyed workload (overwrites,
tombstones, every codec, idempotent and plain producers, headers) goes to a compacted topic on
gregor and on a single-node Kafka started by tests/kafka_harness/kafka.sh, both set to clean
quickly; every record carries the same explicit timestamp on both (so segment rolls, batches
and time indexes can match). Once both cleaner-offset-checkpoint files pass the workload, a
consumer from the beginning must see the same live records (offset, key, value, headers,
timestamp) on both, and after delete.retention.ms and a second clean no tombstone on either.

Then the segments both ways: Kafka's DumpLogSegments (--deep-iteration --print-data-log) reads
gregor's cleaned segments without complaint and shows the records the consumer saw, and
`gregor dump-log` prints the same lines for them; Kafka's cleaned partition directory copied into
a gregor log dir is served by gregor with Kafka's records, and `gregor dump-log` prints what
DumpLogSegments prints for Kafka's own segments. Kafka's index checks pass on gregor's cleaned
indexes, and batch by batch (offsets, counts, sequences, empty producer batches, delete
horizons, codecs) and index by index (offset index offsets, time index entries) the two
cleaners left the same segments.

The jars are part of the test: without java/mvn or the jars it fails, never skips."""
import glob
import os
import random
import re
import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_node
from conftest import GREGOR, Broker

TOPIC = "kcompare"
SEGMENT = 1048576            # Kafka 4.x's smallest segment.bytes
SEGMENT_MS = 1500            # a marker timestamped this much later rolls the segment
RETENTION_MS = 3000          # delete.retention.ms: tombstones live this long after a clean
KEYS = 300
PER_CODEC = 900              # records per codec phase: ~4 MB in all, several segments
CODECS = [("none", False), ("gzip", True), ("snappy", False), ("lz4", True), ("zstd", True)]
TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(SEGMENT),
                "segment.ms": str(SEGMENT_MS), "min.cleanable.dirty.ratio": "0.01",
                "delete.retention.ms": str(RETENTION_MS), "min.compaction.lag.ms": "0"}


def workload(seed, n_per_codec):
    """[(codec, idempotent, [(key, value or None, headers)])]: keys from a fixed set, values of
    printable words (DumpLogSegments prints them as text), one record in ten a tombstone."""
    rnd = random.Random(seed)
    # Words, so every codec shrinks every batch: librdkafka sends a batch uncompressed when
    # its codec does not make it smaller (random letters under lz4 sit right at that edge, and
    # the batch then differs between the two brokers by a timestamp delta).
    words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"golf", b"hotel",
             b"india", b"juliett", b"kilo", b"lima", b"mike", b"november", b"oscar", b"papa"]
    phases = []
    for codec, idem in CODECS:
        recs = []
        for i in range(n_per_codec):
            key = b"k%04d" % rnd.randrange(KEYS)
            if rnd.random() < 0.1:
                value = None
            else:
                value = b" ".join([codec.encode()] + [rnd.choice(words) for _ in range(rnd.randrange(30, 300))])
            hdrs = [("i", b"%d" % i)] if i % 4 == 0 else None
            recs.append((key, value, hdrs))
        phases.append((codec, idem, recs))
    return phases


def produce(bootstrap, phases, first_offset, ts_base):
    """Each phase through its own producer (so its batches carry its codec), one after the
    other; every delivery must succeed at the next offset (the same offsets on both brokers).
    The record at offset o has timestamp ts_base + o: the same batches, segment rolls and time
    indexes on both brokers."""
    offset = first_offset
    for codec, idem, recs in phases:
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "acks": "all",
                      "enable.idempotence": idem, "linger.ms": 500, "batch.num.messages": 50,
                      "max.in.flight.requests.per.connection": 5 if idem else 1})
        got = []
        for i, (k, v, h) in enumerate(recs):
            p.produce(TOPIC, key=k, value=v, headers=h, partition=0,
                      timestamp=ts_base + offset + i,
                      on_delivery=lambda e, m: got.append((e, m.offset())))
            p.poll(0)
        assert p.flush(60) == 0
        assert [e for e, _ in got if e is not None] == []
        assert [o for _, o in got] == list(range(offset, offset + len(recs))), codec
        offset += len(recs)
    return offset


def read_view(bootstrap):
    """Every record from the start to the end: [(offset, key, value, headers, timestamp)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kcompare-%d" % time.time_ns(),
                  "enable.auto.commit": False, "check.crcs": True})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=15)
        c.assign([TopicPartition(TOPIC, 0, 0)])
        out = []
        deadline = time.time() + 60
        while (not out or out[-1][0] < hi - 1) and time.time() < deadline:
            for m in c.consume(1000, 1.0):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
        assert out and out[-1][0] == hi - 1, "read %d records up to %s, end %d" % (
            len(out), out[-1][0] if out else None, hi)
        return lo, out
    finally:
        c.close()


def checkpoint(data_dir):
    """This topic's offset in the log dir's cleaner-offset-checkpoint (0 when absent)."""
    path = os.path.join(data_dir, "cleaner-offset-checkpoint")
    try:
        lines = open(path).read().split("\n")
    except OSError:
        return 0
    for line in lines[2:2 + int(lines[1])]:
        t, p, o = line.split(" ")
        if t == TOPIC and p == "0":
            return int(o)
    return 0


def wait_until(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def expected_view(records, horizon_passed):
    """Compaction's answer from the produced records [(offset, key, value, headers, ts)], the last
    of them alone in the active segment (never cleaned, so not in the offset map either): the
    latest record of each key at its offset, a tombstone only while its horizon has not passed,
    then the last record."""
    latest = {}
    for r in records[:-1]:
        latest[r[1]] = r
    out = sorted(latest.values())
    if horizon_passed:
        out = [r for r in out if r[2] is not None]
    return out + records[-1:]


class KafkaNode(kafka_node.KafkaNode):
    """Kafka 4.x, single node, from the repo's harness, with a quick cleaner."""

    def __init__(self, state):
        super().__init__(state, {"log.cleaner.backoff.ms": 200,
                                 "log.cleaner.dedupe.buffer.size": 33554432})

    def dump(self, files, flags=("--deep-iteration", "--print-data-log")):
        """kafka.tools.DumpLogSegments over files."""
        r = self.dump_segments(files, flags)
        err = "\n".join(line for line in r.stderr.splitlines() if not line.startswith("SLF4J"))
        return r.returncode, r.stdout, err


def gregor_dump(files, flags=("--deep-iteration", "--print-data-log")):
    r = subprocess.run([GREGOR, "dump-log"] + list(flags) + ["--files", ",".join(files)],
                       capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr.strip()


RECORD_LINE = re.compile(r"^\| offset: (\d+) .* key: (\S+) payload: ?(.*)$")


def dumped_records(out):
    """(offset, key, payload) of every record line of a deep-iteration dump, in file order."""
    got = []
    for line in out.splitlines():
        m = RECORD_LINE.match(line)
        if m:
            got.append((int(m.group(1)), m.group(2).encode(), m.group(3).encode()))
    return got


GAP_LINE = re.compile(r"^(Non-consecutive offsets in \S+|  \d+ is followed by \d+)$")


def complaints(err):
    """DumpLogSegments' stderr without its list of offset gaps (every cleaned log has them)."""
    return [line for line in err.splitlines() if not GAP_LINE.match(line)]


BATCH_VOLATILE = [(re.compile(r"producerId: -?\d+"), "producerId: P"),
                  (re.compile(r"position: \d+"), "position: X"),
                  (re.compile(r"CreateTime: \d+"), "CreateTime: T"),
                  (re.compile(r"size: \d+"), "size: S"),
                  (re.compile(r"crc: \d+"), "crc: C"),
                  (re.compile(r"OptionalLong\[\d+\]"), "OptionalLong[H]")]


def batch_shapes(out):
    """The batch lines of a dump without what differs between two brokers for the same records
    (producer ids, wall-clock times, compressed sizes and so positions and CRCs): base and last
    offset, record count, sequences, epoch, flags, whether a delete horizon is set, codec."""
    shapes = []
    for line in out.splitlines():
        if line.startswith("baseOffset: "):
            for pattern, repl in BATCH_VOLATILE:
                line = pattern.sub(repl, line)
            shapes.append(line)
    return shapes


def segment_files(part_dir):
    return sorted(glob.glob(os.path.join(part_dir, "*.log")))


def index_files(part_dir):
    """The indexes of the inactive (cleaned) segments: an active segment's are preallocated
    while its broker runs (Kafka's own too), so no tool reads them as a closed index."""
    active = os.path.basename(segment_files(part_dir)[-1])[:-len(".log")]
    return sorted(f for f in glob.glob(os.path.join(part_dir, "*.index")) +
                  glob.glob(os.path.join(part_dir, "*.timeindex"))
                  if not os.path.basename(f).startswith(active + "."))


def index_entries(out):
    """A plain dump of index files: {file name: entries}; offset index entries as offsets only
    (positions follow the compressed sizes, which differ), time index entries whole."""
    got, cur = {}, None
    for line in out.splitlines():
        if line.startswith("Dumping "):
            cur = os.path.basename(line.split(" ", 1)[1])
            got[cur] = []
        elif line.startswith("offset: ") and cur is not None:
            got[cur].append(line.split(" position: ")[0])
        elif line.startswith("timestamp: ") and cur is not None:
            got[cur].append(line)
    return got


@pytest.fixture(scope="module")
def compacted(tmp_path_factory):
    """Both brokers after the workload, one clean, delete.retention.ms and a second clean."""
    base = tmp_path_factory.mktemp("kcompare")
    kafka = KafkaNode(str(base / "kafka")).start()
    gregor = Broker(str(base / "gregor"), overrides={"log.cleaner.backoff.ms": "200"}).start(timeout=60)
    try:
        brokers = {"gregor": (gregor.bootstrap, gregor.data_dir),
                   "kafka": (kafka.bootstrap, kafka.data_dir)}
        for bootstrap, _ in brokers.values():
            admin = AdminClient({"bootstrap.servers": bootstrap})
            admin.create_topics([NewTopic(TOPIC, 1, 1, config=TOPIC_CONFIG)])[TOPIC].result(60)
        phases = workload(17, PER_CODEC)
        # A minute ago, so every timestamp (markers included) stays within Kafka's bounds.
        ts_base = int(time.time() * 1000) - 60000
        produced = []
        o = 0
        for _, _, recs in phases:
            for k, v, h in recs:
                produced.append((o, k, v, h, ts_base + o))
                o += 1
        ends = {}
        for name, (bootstrap, _) in brokers.items():
            ends[name] = produce(bootstrap, phases, 0, ts_base)
        # A marker stamped 3 x segment.ms later rolls a segment on each (the roll compares
        # record timestamps): the workload is all cleanable, the marker alone is active.
        ts_base += 3 * SEGMENT_MS
        marker = [("none", False, [(b"end", b"1", None)])]
        for name, (bootstrap, _) in brokers.items():
            assert produce(bootstrap, marker, ends[name], ts_base) == ends[name] + 1
        produced.append((ends["gregor"], b"end", b"1", None, ts_base + ends["gregor"]))
        for name, (_, data_dir) in brokers.items():
            wait_until(lambda: checkpoint(data_dir) >= ends[name], 120,
                       "%s's cleaner-offset-checkpoint to pass offset %d" % (name, ends[name]))
        first = {name: read_view(b) for name, (b, _) in brokers.items()}
        # Past the horizon, new dirty data (overwrites, then a marker in a new segment) makes
        # both clean again, and that clean drops the tombstones.
        time.sleep(RETENTION_MS / 1000 + 1)
        more = workload(18, 40)[:1]
        more = [(c, i, [(k, v if v is not None else b"again", h) for k, v, h in recs])
                for c, i, recs in more]
        o = ends["gregor"] + 1
        for k, v, h in more[0][2]:
            produced.append((o, k, v, h, ts_base + o))
            o += 1
        for name, (bootstrap, _) in brokers.items():
            ends[name] = produce(bootstrap, more, ends[name] + 1, ts_base)
        ts_base += 3 * SEGMENT_MS
        marker = [("none", False, [(b"end", b"2", None)])]
        for name, (bootstrap, _) in brokers.items():
            produce(bootstrap, marker, ends[name], ts_base)
        produced.append((o, b"end", b"2", None, ts_base + o))
        for name, (_, data_dir) in brokers.items():
            wait_until(lambda: checkpoint(data_dir) >= ends[name], 120,
                       "%s's second clean past offset %d" % (name, ends[name]))
        second = {name: read_view(b) for name, (b, _) in brokers.items()}

        class State:
            pass
        s = State()
        s.kafka, s.gregor, s.first, s.second, s.produced = kafka, gregor, first, second, produced
        s.gregor_dump_out = None
        s.gregor_index_entries = None
        yield s
    finally:
        rc = gregor.stop()
        kafka.stop()
    assert rc == 0, "gregor exited %s:\n%s" % (rc, gregor.log())


def test_same_view_after_cleaning(compacted):
    first, second, produced = compacted.first, compacted.second, compacted.produced
    # The first clean: the same live records on both, at the same offsets, and Kafka's answer.
    live = {name: [r for r in view if r[2] is not None] for name, (_, view) in first.items()}
    want_first = expected_view(produced[:len(produced) - 41], horizon_passed=True)
    assert live["kafka"] == want_first, "Kafka disagrees with the expected view"
    assert live["gregor"] == live["kafka"]
    # Each key once on each (tombstones may still be there, at most one per key).
    for name, (lo, view) in first.items():
        keys = [r[1] for r in view]
        assert len(keys) == len(set(keys)), name
        assert lo == 0
    # After delete.retention.ms and the second clean: no tombstone on either, same records.
    want = expected_view(produced, horizon_passed=True)
    assert second["kafka"][1] == want, "Kafka disagrees with the expected view"
    assert second["gregor"][1] == second["kafka"][1]
    assert not any(r[2] is None for r in second["gregor"][1])


def test_kafka_dump_reads_gregor_segments(compacted, tmp_path):
    part = os.path.join(compacted.gregor.data_dir, TOPIC + "-0")
    # A copy: a clean of the (now quiet) log cannot swap files under the tools.
    copy = tmp_path / "gregor-segments"
    shutil.copytree(part, copy)
    files = segment_files(str(copy))
    assert len(files) >= 2, files
    rc, out, err = compacted.kafka.dump(files)
    assert rc == 0 and complaints(err) == [], err
    assert "is followed by" in err
    assert "isvalid: false" not in out and "invalid bytes" not in out
    shown = dumped_records(out)
    view = compacted.second["gregor"][1]
    assert shown == [r[:3] for r in view]
    grc, gout, gerr = gregor_dump(files)
    assert grc == 0, gerr
    assert gout.splitlines() == out.splitlines()
    assert gerr.splitlines() == err.splitlines()
    compacted.gregor_dump_out = (sorted(os.path.basename(f) for f in files), out)
    # The cleaned segments' indexes pass Kafka's checks.
    indexes = index_files(str(copy))
    for flags in (["--verify-index-only"], ["--index-sanity-check"]):
        rc, out, err = compacted.kafka.dump(indexes, flags)
        assert rc == 0 and err == "", err
        checked = out.count("passed sanity check.") + out.count(" is empty.")
        if flags == ["--index-sanity-check"]:
            assert checked == len(indexes), out
    grc, gout, gerr = gregor_dump(indexes, [])
    assert grc == 0, gerr
    compacted.gregor_index_entries = index_entries(gout)


def test_gregor_serves_kafka_cleaned_segments(compacted, tmp_path):
    kafka = compacted.kafka
    assert kafka.stop() == 0
    src = os.path.join(kafka.data_dir, TOPIC + "-0")
    files = segment_files(src)
    rc, out, err = kafka.dump(files)
    assert rc == 0 and complaints(err) == [], err
    assert "is followed by" in err
    assert dumped_records(out) == [r[:3] for r in compacted.second["kafka"][1]]
    grc, gout, gerr = gregor_dump(files)
    assert grc == 0, gerr
    assert gout.splitlines() == out.splitlines()
    assert gerr.splitlines() == err.splitlines()
    # Batch by batch the two cleaners left the same thing (the producer batches are 50 records
    # each on both): the same segments, batches at the same offsets with the same counts, empty
    # batches kept for the same producers, delete horizons on the same batches.
    assert compacted.gregor_dump_out is not None, "test_kafka_dump_reads_gregor_segments failed"
    gregor_files, gregor_out = compacted.gregor_dump_out
    assert gregor_files == sorted(os.path.basename(f) for f in files)
    assert batch_shapes(gregor_out) == batch_shapes(out)
    assert any(" count: 0 " in line for line in batch_shapes(out))
    # The indexes the two cleaners wrote: the same offset index offsets, the same time index.
    grc, kout, gerr = gregor_dump(index_files(src), [])
    assert grc == 0, gerr
    kafka_index = index_entries(kout)
    assert compacted.gregor_index_entries == kafka_index
    assert any(kafka_index.values())
    # Kafka's cleaned partition directory in a fresh gregor log dir.
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(src, data / (TOPIC + "-0"))
    b = Broker(str(data)).start(timeout=60)
    try:
        lo, view = read_view(b.bootstrap)
        assert lo == 0
        assert view == compacted.second["kafka"][1]
    finally:
        rc = b.stop()
    assert rc == 0, b.log()
