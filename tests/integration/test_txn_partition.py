"""Transactions, the partition side (issue 18), without a transaction coordinator: producer ids
from InitProducerId write transactional batches (Produce with a transactional id), the test
plays the coordinator with raw WriteTxnMarkers, and read_committed readers (raw Fetch v4,
ListOffsets v2, confluent-kafka consumers; kafka-python 2.0.2 has no read_committed and
returns control records to applications, dpkp/kafka-python#1853, fixed in 2.1) see the last stable offset and the
aborted transactions, across a clean restart and a kill -9."""
import glob
import os
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import TRANSACTIONAL, record_batch  # noqa: E402
from conftest import GREGOR  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from txn_util import call, consume, init_pid, produce_v7, txn_batch, write_markers_v1  # noqa: E402

TOPIC = "txp"


@pytest.fixture
def broker(broker_factory):
    """The partition layer on its own: these tests play the coordinator (producer ids without a
    transactional id, raw WriteTxnMarkers, no AddPartitionsToTxn), so the broker runs without
    KIP-890's verification, which would refuse their batches (test_txn_verify.py tests it)."""
    b = broker_factory(**{"transaction.partition.verification.enable": "false"})
    b.start()
    yield b
    assert b.alive(), "broker died during the test:\n" + b.log()


def produce(bootstrap, batch, transactional_id=None, partition=0):
    """Produce v7 of one batch to TOPIC: (error, base offset)."""
    return produce_v7(bootstrap, TOPIC, partition, batch, transactional_id, timeout_ms=10000)


def write_markers(bootstrap, markers, version=1):
    """WriteTxnMarkers of [(pid, epoch, commit, coordinator epoch)] for partition 0 of TOPIC:
    the error code of each."""
    name = TOPIC.encode()
    if version >= 1:
        return write_markers_v1(bootstrap, markers, TOPIC, 0)
    body = struct.pack(">i", len(markers))
    for pid, epoch, commit, cepoch in markers:
        body += struct.pack(">qh?", pid, epoch, commit)
        body += struct.pack(">ih", 1, len(name)) + name + struct.pack(">ii", 1, 0)
        body += struct.pack(">i", cepoch)
    resp = call(bootstrap, 27, 0, body)
    off, errs = 4, []
    for _ in range(struct.unpack(">i", resp[:4])[0]):
        off += 8
        for _ in range(struct.unpack(">i", resp[off:off + 4])[0]):
            off += 4
            n = struct.unpack(">h", resp[off:off + 2])[0]
            off += 2 + n
            for _ in range(struct.unpack(">i", resp[off:off + 4])[0]):
                off += 4
                errs.append(struct.unpack(">h", resp[off:off + 2])[0])
                off += 6
    return errs


def batches(records):
    """(base offset, last offset, attributes, producer id) of each whole batch."""
    out, off = [], 0
    while off + 61 <= len(records):
        base, length = struct.unpack(">qi", records[off:off + 12])
        if off + 12 + length > len(records):
            break
        attrs, delta = struct.unpack(">hi", records[off + 21:off + 27])
        pid = struct.unpack(">q", records[off + 43:off + 51])[0]
        out.append((base, base + delta, attrs, pid))
        off += 12 + length
    return out


def fetch(bootstrap, offset, isolation, max_bytes=1 << 20):
    """Fetch v4 of partition 0: (error, high watermark, LSO, aborted [(pid, first)] or None,
    batches)."""
    name = TOPIC.encode()
    body = struct.pack(">iiiib", -1, 0, 0, 1 << 20, isolation)
    body += struct.pack(">ih", 1, len(name)) + name + struct.pack(">iiqi", 1, 0, offset, max_bytes)
    resp = call(bootstrap, 1, 4, body)
    off = 4 + 4
    n = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + n + 4
    _, err, hw, lso = struct.unpack(">ihqq", resp[off:off + 22])
    off += 22
    na = struct.unpack(">i", resp[off:off + 4])[0]
    off += 4
    aborted = None
    if na >= 0:
        aborted = [struct.unpack(">qq", resp[off + 16 * i:off + 16 * i + 16]) for i in range(na)]
        off += 16 * na
    rlen = struct.unpack(">i", resp[off:off + 4])[0]
    records = resp[off + 4:off + 4 + max(rlen, 0)]
    return err, hw, lso, aborted, batches(records)


def latest(bootstrap, isolation, timestamp=-1):
    """ListOffsets v2 of partition 0: LATEST, or the first offset at timestamp or later."""
    name = TOPIC.encode()
    body = struct.pack(">ib", -1, isolation) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iiq", 1, 0, timestamp)
    resp = call(bootstrap, 2, 2, body)
    off = 4 + 4
    n = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + n + 4
    _, err, _, offset = struct.unpack(">ihqq", resp[off:off + 22])
    assert err == 0
    return offset


def consume_all(bootstrap, isolation, want):
    return consume(bootstrap, TOPIC, isolation, want, timeout=30, settle=2.0)


def txnindex_entries(data_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(data_dir, TOPIC + "-0", "*.txnindex"))):
        with open(path, "rb") as f:
            raw = f.read()
        assert len(raw) % 34 == 0, path
        out += [struct.unpack(">hqqqq", raw[i:i + 34]) for i in range(0, len(raw), 34)]
    return out


def setup_topic(bootstrap):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(10)


def test_commit_abort_lso_and_read_committed_readers(broker):
    b = broker.bootstrap
    setup_topic(b)
    pa, ea = init_pid(b)
    pb, eb = init_pid(b)
    assert produce(b, record_batch([b"c0"])) == (0, 0)
    assert produce(b, txn_batch(pa, ea, 0, [b"a1", b"a2"]), "tx-a") == (0, 1)
    assert produce(b, txn_batch(pb, eb, 0, [b"b1"]), "tx-b") == (0, 3)
    assert produce(b, record_batch([b"c1"])) == (0, 4)

    # The open transactions hold the LSO at 1: read_committed stops there.
    err, hw, lso, aborted, got = fetch(b, 0, 1)
    assert (err, hw, lso, aborted) == (0, 5, 1, [])
    assert [x[0] for x in got] == [0]
    assert fetch(b, 1, 1)[4] == []                  # at the LSO: nothing yet
    err, hw, lso, aborted, got = fetch(b, 0, 0)     # read_uncommitted sees everything
    assert (hw, lso, aborted) == (5, 1, None) and got[-1][1] == 4
    assert latest(b, 1) == 1 and latest(b, 0) == 5

    # The coordinator's markers: COMMIT a (v1), ABORT b (v0).
    assert write_markers(b, [(pa, ea, True, 3)]) == [0]
    assert fetch(b, 0, 1)[2] == 3                   # b's transaction still open
    assert write_markers(b, [(pb, eb, False, 3)], version=0) == [0]
    err, hw, lso, aborted, got = fetch(b, 0, 1)
    assert (err, hw, lso) == (0, 7, 7)
    assert aborted == [(pb, 3)]
    assert [(x[0], x[2]) for x in got if x[2] & 0x20] == [(5, 0x30), (6, 0x30)]  # markers
    assert fetch(b, 5, 1)[3] == [(pb, 3)]           # b's marker at 6 is past 5
    # Only the transactions overlapping the records read (Kafka bounds them by the read's end):
    # one batch from 1 (offsets 1-2) ends before b's transaction starts at 3.
    err, _, _, aborted, got = fetch(b, 1, 1, max_bytes=1)
    assert ([x[0] for x in got], aborted) == ([1], [])
    assert fetch(b, 3, 1, max_bytes=1)[3] == [(pb, 3)]
    assert fetch(b, 7, 1)[3] == []
    assert latest(b, 1) == 7

    # The .txnindex holds the abort in Kafka's format: version 0, pid, first, last, LSO.
    assert txnindex_entries(broker.data_dir) == [(0, pb, 3, 6, 7)]

    # DumpLogSegments' lines for the markers and the index (Kafka 4's formats).
    seg = os.path.join(broker.data_dir, TOPIC + "-0", "%020d" % 0)
    out = subprocess.run([GREGOR, "dump-log", "--deep-iteration", "--files", seg + ".log"],
                         capture_output=True, text=True, timeout=30).stdout
    assert "baseOffset: 1 lastOffset: 2 count: 2 baseSequence: 0 lastSequence: 1 producerId: %d" \
        " producerEpoch: %d partitionLeaderEpoch: 0 isTransactional: true isControl: false" % (pa, ea) in out
    assert "| offset: 5 CreateTime:" in out and "endTxnMarker: COMMIT coordinatorEpoch: 3" in out
    assert "baseOffset: 6 lastOffset: 6 count: 1 baseSequence: -1 lastSequence: -1 producerId: %d" \
        " producerEpoch: %d partitionLeaderEpoch: 0 isTransactional: true isControl: true" % (pb, eb) in out
    assert "endTxnMarker: ABORT coordinatorEpoch: 3" in out
    out = subprocess.run([GREGOR, "dump-log", "--files", seg + ".txnindex"],
                         capture_output=True, text=True, timeout=30).stdout
    assert ("version: 0 producerId: %d firstOffset: 3 lastOffset: 6 lastStableOffset: 7" % pb) in out

    # Clients filter the aborted records with the list.
    committed = [b"c0", b"a1", b"a2", b"c1"]
    assert consume_all(b, "read_committed", 4) == committed
    assert consume_all(b, "read_uncommitted", 5) == [b"c0", b"a1", b"a2", b"b1", b"c1"]


def test_marker_and_batch_refusals(broker):
    b = broker.bootstrap
    setup_topic(b)
    pid, epoch = init_pid(b)
    assert produce(b, txn_batch(pid, epoch + 1, 0, [b"x"]), "tx") == (0, 0)
    # INVALID_TXN_STATE: a non-transactional batch while the producer's transaction is open
    plain = record_batch([b"y"], producer_id=pid, epoch=epoch + 1, base_sequence=1)
    assert produce(b, plain, "tx")[0] == 48
    assert write_markers(b, [(pid, epoch, True, 0)]) == [47]  # INVALID_PRODUCER_EPOCH
    assert latest(b, 1) == 0
    assert write_markers(b, [(pid, epoch + 1, True, 5)]) == [0]
    assert latest(b, 1) == 2
    assert write_markers(b, [(pid, epoch + 1, True, 4)]) == [52]  # TRANSACTION_COORDINATOR_FENCED


def test_offset_for_timestamp_read_committed(broker):
    """Kafka's fetchOffsetForTimestamp: read_committed finds no offset at or past the LSO."""
    b = broker.bootstrap
    setup_topic(b)
    pid, epoch = init_pid(b)
    assert produce(b, record_batch([b"c"], ts=1000)) == (0, 0)
    txn = record_batch([b"t"], producer_id=pid, epoch=epoch, base_sequence=0, ts=2000,
                       attributes=TRANSACTIONAL)
    assert produce(b, txn, "tx") == (0, 1)
    assert latest(b, 1, 1500) == -1 and latest(b, 0, 1500) == 1
    assert latest(b, 1, 500) == 0
    assert write_markers(b, [(pid, epoch, True, 0)]) == [0]
    assert latest(b, 1, 1500) == 1


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_keeps_open_and_aborted_transactions(broker, how):
    b = broker.bootstrap
    setup_topic(b)
    pa, ea = init_pid(b)
    pb, eb = init_pid(b)
    assert produce(b, txn_batch(pa, ea, 0, [b"a1"]), "tx-a") == (0, 0)
    assert produce(b, txn_batch(pb, eb, 0, [b"b1", b"b2"]), "tx-b") == (0, 1)
    assert write_markers(b, [(pa, ea, False, 1)]) == [0]          # a aborted at 3
    assert produce(b, record_batch([b"c"])) == (0, 4)
    before = fetch(b, 0, 1)
    assert before[2] == 1 and before[3] == [(pa, 0)]
    if how == "kill9":
        broker.kill9()
        broker.start()
    else:
        broker.restart()
    after = fetch(b, 0, 1)
    assert after[:4] == before[:4]                                  # b still open at 1
    assert latest(b, 1) == 1
    assert write_markers(b, [(pb, eb, True, 1)]) == [0]
    err, hw, lso, aborted, _ = fetch(b, 0, 1)
    assert (hw, lso, aborted) == (6, 6, [(pa, 0)])
    assert txnindex_entries(broker.data_dir) == [(0, pa, 0, 3, 1)]
    assert consume_all(b, "read_committed", 3) == [b"b1", b"b2", b"c"]
