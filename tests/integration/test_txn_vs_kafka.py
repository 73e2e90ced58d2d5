"""Transactions side by side with Apache Kafka 4.x (issue 18): the same deterministic scenario
runs against gregor and against a single-node Kafka 4.1.1 (tests/kafka_harness/kafka.sh, its own
port and state dir), one after the other, and what each broker made of it is compared:

- a transactional producer (confluent_kafka) writes five transactions over 3 partitions, three
  committed and two aborted, each with send_offsets_to_transaction to a group; a plain producer's
  records are interleaved inside and between the transactions; every step is flushed before the
  next, so each partition receives the same appends in the same order on both brokers;
- while the fourth transaction is open: ListOffsets read_committed (the LSO) and
  read_uncommitted (the high watermark) of each partition, and the read_committed view (which
  stops at the open transaction);
- at the end: the read_committed view and the read_uncommitted view (offset, key, value of each
  record, per partition in order: the offsets show where each control batch took its offset),
  ListOffsets both ways, and the group's committed offsets (only the committed transactions');
- the segments: Kafka's DumpLogSegments over both log dirs (batches, control records, the
  .txnindex files' aborted transactions).

After each EndTxn the scenario waits until no partition has an open transaction: Kafka answers
EndTxn before it writes the markers (gregor, on one node, has them written by then), so without
the wait a plain record sent next lands on the other side of the marker on the two brokers.

The jars are part of the test: without java/mvn or the jars it fails, never skips."""
import glob
import os
import re
import time

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

import kafka_node
from conftest import Broker

TOPIC = "txcmp"
INPUT = "txcmp-in"        # the topic the group's offsets name (never read: only committed)
GROUP = "txcmp-group"
PARTITIONS = 3

# The scenario, step by step. ("txn", partition, key) writes a record in the open transaction,
# ("plain", partition, key) one from the non-transactional producer, ("offsets", {p: offset})
# sends the group's offsets of INPUT to the transaction, "begin"/"commit"/"abort" end it, and
# "snapshot" records LSO, HW and the read_committed view while a transaction is open. Every
# step is flushed before the next one.
SCENARIO = [
    ("plain", 0, "n0"),
    "begin",
    ("txn", 0, "a1"), ("txn", 0, "a2"), ("txn", 1, "a3"),
    ("plain", 0, "n1"),
    ("txn", 2, "a4"), ("txn", 0, "a5"),
    ("offsets", {0: 10}),
    "commit",
    "begin",
    ("txn", 0, "b1"), ("txn", 1, "b2"), ("txn", 1, "b3"),
    ("plain", 1, "n2"),
    ("txn", 2, "b4"),
    ("offsets", {0: 20, 1: 5}),
    "abort",
    ("plain", 2, "n3"),
    "begin",
    ("txn", 1, "c1"), ("txn", 2, "c2"), ("txn", 2, "c3"),
    ("plain", 0, "n4"),
    ("offsets", {1: 7, 2: 3}),
    "commit",
    "begin",
    ("txn", 0, "d1"), ("txn", 2, "d2"),
    ("plain", 0, "n5"), ("plain", 1, "n6"),
    ("offsets", {2: 30}),
    "snapshot",
    "abort",
    "begin",
    ("txn", 1, "e1"), ("txn", 0, "e2"),
    ("offsets", {0: 12}),
    "commit",
    ("plain", 1, "n7"),
]


class KafkaNode(kafka_node.KafkaNode):
    """Kafka 4.1.1, single node (KRaft), from the repo's harness."""

    def dump(self, files, flags=("--deep-iteration",)):
        """kafka.tools.DumpLogSegments over files (the broker need not run)."""
        r = self.dump_segments(files, flags)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout


BATCH_VOLATILE = [(re.compile(r"position: \d+"), "position: X"),
                  (re.compile(r"CreateTime: \d+"), "CreateTime: T"),
                  (re.compile(r"crc: \d+"), "crc: C")]
PRODUCER_ID = re.compile(r"producerId: (-?\d+)")


def dumped_partitions(kafka, data_dir):
    """{partition: (batch lines, transaction index lines)} of TOPIC in a log dir, as Kafka's
    DumpLogSegments prints them (the log with each control record's line, and the .txnindex
    files), without what differs between two brokers for the same batches: file positions,
    wall-clock times, CRCs, and the producer ids' values (a single-node gregor seeds its counter
    from the clock, Kafka's controller hands out blocks from 0): each id is named by its order
    of appearance, so the same producer still has to own the same batches."""
    out = {}
    pids = {"-1": "-1"}

    def pid_name(m):
        return "producerId: " + pids.setdefault(m.group(1), "P%d" % len(pids))
    for p in range(PARTITIONS):
        part = os.path.join(data_dir, "%s-%d" % (TOPIC, p))
        logs = sorted(glob.glob(os.path.join(part, "*.log")))
        batches = []
        for line in kafka.dump(logs).splitlines():
            if line.startswith("baseOffset: ") or "endTxnMarker" in line:
                for pattern, repl in BATCH_VOLATILE:
                    line = pattern.sub(repl, line)
                batches.append(PRODUCER_ID.sub(pid_name, line))
        txnindex = sorted(glob.glob(os.path.join(part, "*.txnindex")))
        aborted = [PRODUCER_ID.sub(pid_name, line)
                   for line in (kafka.dump(txnindex, ()) if txnindex else "").splitlines()
                   if not line.startswith("Dumping ")]
        out[p] = (batches, aborted)
    return out


def list_offsets(admin, isolation):
    """{partition: latest offset} of TOPIC through ListOffsets at the given isolation level:
    the LSO for read_committed, the high watermark for read_uncommitted."""
    req = {TopicPartition(TOPIC, p): OffsetSpec.latest() for p in range(PARTITIONS)}
    fs = admin.list_offsets(req, isolation_level=isolation, request_timeout=30)
    return {tp.partition: f.result(30).offset for tp, f in fs.items()}


def read_view(bootstrap, isolation):
    """Every record of TOPIC from the start up to the end the consumer is allowed to see (the
    LSO for read_committed): {partition: [(offset, key, value)]}. Done when each partition
    reported its end (enable.partition.eof)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txcmp-reader-%d" % time.time_ns(),
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": True, "check.crcs": True})
    try:
        c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        out = {p: [] for p in range(PARTITIONS)}
        at_end = set()
        deadline = time.time() + 60
        while len(at_end) < PARTITIONS:
            assert time.time() < deadline, "%s reader reached the end of only %s: %s" % (
                isolation, sorted(at_end), out)
            for m in c.consume(100, 0.5):
                if m.error() is not None:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    at_end.add(m.partition())
                    continue
                out[m.partition()].append((m.offset(), m.key(), m.value()))
        return out
    finally:
        c.close()


def committed_offsets(bootstrap):
    """The group's committed offsets of INPUT: {partition: offset}, -1001 (none) when absent."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(INPUT, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def wait_stable(admin):
    """Until no partition of TOPIC has an open transaction (LSO == high watermark). Kafka
    answers EndTxn once PrepareCommit/PrepareAbort is in its transaction log and writes the
    markers afterwards, so a plain record sent right after the answer can land before or after
    the marker; the scenario waits for the markers so that every partition gets the same appends
    in the same order on every run."""
    deadline = time.time() + 30
    while True:
        lso = list_offsets(admin, IsolationLevel.READ_COMMITTED)
        hw = list_offsets(admin, IsolationLevel.READ_UNCOMMITTED)
        if lso == hw:
            return
        assert time.time() < deadline, "still open 30 s after EndTxn: LSO %s, HW %s" % (lso, hw)
        time.sleep(0.02)


def run_scenario(bootstrap, txn_id):
    """Plays SCENARIO against one broker; returns what the broker shows of it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1),
                                  NewTopic(INPUT, PARTITIONS, 1)]).values():
        f.result(60)
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)

    txn = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                    "transaction.timeout.ms": 60000, "linger.ms": 0})
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                      "enable.idempotence": False})
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                      "enable.auto.commit": False})
    txn.init_transactions(30)
    snapshot = None
    for step in SCENARIO:
        if step == "begin":
            txn.begin_transaction()
        elif step in ("commit", "abort"):
            if step == "commit":
                txn.commit_transaction(30)
            else:
                txn.abort_transaction(30)
            wait_stable(admin)
        elif step == "snapshot":
            snapshot = {"lso": list_offsets(admin, IsolationLevel.READ_COMMITTED),
                        "hw": list_offsets(admin, IsolationLevel.READ_UNCOMMITTED),
                        "read_committed": read_view(bootstrap, "read_committed")}
        elif step[0] == "offsets":
            txn.send_offsets_to_transaction(
                [TopicPartition(INPUT, p, o) for p, o in step[1].items()],
                group.consumer_group_metadata(), 30)
        else:
            kind, partition, key = step
            p = txn if kind == "txn" else plain
            p.produce(TOPIC, key=key.encode(), value=("%s-value-%s" % (kind, key)).encode(),
                      partition=partition, on_delivery=report)
            assert p.flush(30) == 0, "%s record %s not delivered" % (kind, key)
        assert errors == [], errors
    group.close()
    return {"during": snapshot,
            "lso": list_offsets(admin, IsolationLevel.READ_COMMITTED),
            "hw": list_offsets(admin, IsolationLevel.READ_UNCOMMITTED),
            "read_committed": read_view(bootstrap, "read_committed"),
            "read_uncommitted": read_view(bootstrap, "read_uncommitted"),
            "group": committed_offsets(bootstrap)}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """{"gregor": result, "kafka": result} of the scenario, each on a fresh single node."""
    base = tmp_path_factory.mktemp("txcmp")
    results = {}
    kafka = KafkaNode(str(base / "kafka")).start()
    try:
        results["kafka"] = run_scenario(kafka.bootstrap, "txcmp-kafka")
    finally:
        kafka.stop()
    results["kafka"]["dump"] = dumped_partitions(kafka, str(base / "kafka" / "data"))
    os.makedirs(str(base / "gregor"))
    gregor = Broker(str(base / "gregor" / "data")).start(timeout=60)
    try:
        results["gregor"] = run_scenario(gregor.bootstrap, "txcmp-gregor")
        alive = gregor.alive()
    finally:
        rc = gregor.stop()
    assert alive and rc == 0, "gregor exited %s:\n%s" % (rc, gregor.log())
    results["gregor"]["dump"] = dumped_partitions(kafka, gregor.data_dir)
    return results


def keys(view):
    return {p: [r[1] for r in recs] for p, recs in view.items()}


def expected_from_scenario():
    """What SCENARIO means, worked out from it: the keys a read_committed reader sees per
    partition (each partition's appends in order, a transactional one kept once its transaction
    committed) and the group's offsets (the committed transactions' offsets, later ones over
    earlier ones)."""
    log = {p: [] for p in range(PARTITIONS)}    # [(key, transaction number or None)]
    committed, offsets, pending_offsets, n = set(), {}, {}, 0
    for step in SCENARIO:
        if step == "begin":
            n += 1
            pending_offsets = {}
        elif step == "commit":
            committed.add(n)
            offsets.update(pending_offsets)
        elif step == "abort" or step == "snapshot":
            pass
        elif step[0] == "offsets":
            pending_offsets.update(step[1])
        else:
            log[step[1]].append((step[2].encode(), n if step[0] == "txn" else None))
    view = {p: [k for k, t in recs if t is None or t in committed] for p, recs in log.items()}
    return view, offsets


def test_committed_views_match(both):
    k, g = both["kafka"], both["gregor"]
    # Kafka's own answer is what the scenario means: the plain records and the committed
    # transactions' only, each partition in append order.
    assert keys(k["read_committed"]) == expected_from_scenario()[0]
    assert g["read_committed"] == k["read_committed"]


def test_uncommitted_views_and_offsets_match(both):
    k, g = both["kafka"], both["gregor"]
    # Every record at the same offset on both: each control batch took one offset on both.
    assert g["read_uncommitted"] == k["read_uncommitted"]
    for p, recs in k["read_uncommitted"].items():
        gaps = sum(b - a - 1 for (a, _, _), (b, _, _) in zip(recs, recs[1:]))
        assert gaps > 0, "partition %d: no control batch between Kafka's records" % p


def test_list_offsets_match(both):
    k, g = both["kafka"], both["gregor"]
    assert g["hw"] == k["hw"]
    assert g["lso"] == k["lso"]
    # Nothing open at the end: the LSO is the high watermark, past the last commit marker.
    assert k["lso"] == k["hw"]
    for p, recs in k["read_uncommitted"].items():
        assert k["hw"][p] > recs[-1][0]


def test_open_transaction_matches(both):
    k, g = both["kafka"]["during"], both["gregor"]["during"]
    assert g["hw"] == k["hw"]
    assert g["lso"] == k["lso"]
    # The fourth transaction holds partitions 0 and 2 open; partition 1 is stable.
    assert k["lso"][1] == k["hw"][1]
    assert k["lso"][0] < k["hw"][0] and k["lso"][2] < k["hw"][2]
    assert g["read_committed"] == k["read_committed"]
    # read_committed stops at the LSO: nothing at or past it.
    for p, recs in k["read_committed"].items():
        assert all(o < k["lso"][p] for o, _, _ in recs)


def test_group_offsets_match(both):
    k, g = both["kafka"]["group"], both["gregor"]["group"]
    assert k == expected_from_scenario()[1]
    assert g == k


def test_segments_match(both):
    """Kafka's DumpLogSegments over each broker's partitions: the same batches (offsets, counts,
    producer ids and epochs, sequences, transactional and control flags, COMMIT/ABORT markers
    and their coordinator epochs) and the same aborted transactions in the .txnindex files."""
    k, g = both["kafka"]["dump"], both["gregor"]["dump"]
    for p in range(PARTITIONS):
        kb, ka = k[p]
        assert any("endTxnMarker: COMMIT" in line for line in kb), kb
        assert g[p][0] == kb, "partition %d batches differ" % p
        assert g[p][1] == ka, "partition %d aborted transactions differ" % p
    assert any(k[p][1] for p in range(PARTITIONS)), "no aborted transaction in Kafka's indexes"
