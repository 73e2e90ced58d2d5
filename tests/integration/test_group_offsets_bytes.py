"""Commit metadata is length-counted bytes (issue 13 item 3): an embedded NUL does not cut it, an
empty string stays empty, null reads back as "" (Kafka stores a null commit as NO_METADATA), in
memory, in __consumer_offsets after a restart, and in every OffsetFetch form (v1, the v8+
group-batched flexible form); offset.metadata.max.bytes counts bytes. Raw-wire requests, so the
exact bytes sent and answered are visible."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import Reader, _recv, flexible_call, s16, uvarint  # noqa: E402

OFFSET_METADATA_TOO_LARGE = 12
TOPIC = b"md-bytes"
# partition -> metadata committed -> metadata Kafka answers
CASES = {0: (b"Hello\x00world!", b"Hello\x00world!"), 1: (b"", b""), 2: (None, b""),
         3: (b"\x00", b"\x00")}


def call(broker, api, version, body, corr=7):
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as s:
        hdr = struct.pack(">hhih", api, version, corr, 4) + b"test"
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    assert struct.unpack(">i", data[:4])[0] == corr
    return Reader(data[4:])


def create_topic(broker, partitions):
    body = struct.pack(">i", 1) + s16(TOPIC) + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">ib", 30000, 0)
    r = call(broker, 19, 2, body)
    r.take(">i")
    assert r.take(">i") == 1 and r.s16() == TOPIC
    assert r.take(">h") == 0


def commit_v2(broker, group, parts):
    """OffsetCommit v2, a simple commit of {partition: (offset, metadata)}: {partition: error}."""
    body = s16(group) + struct.pack(">i", -1) + s16(b"") + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + s16(TOPIC) + struct.pack(">i", len(parts))
    for p, (off, md) in parts.items():
        body += struct.pack(">iq", p, off) + s16(md)
    r = call(broker, 8, 2, body)
    assert r.take(">i") == 1 and r.s16() == TOPIC
    return dict((r.take(">i"), r.take(">h")) for _ in range(r.take(">i")))


def cbytes(b):
    """COMPACT_NULLABLE_STRING from bytes (any byte, NUL included)."""
    return uvarint(0) if b is None else uvarint(len(b) + 1) + b


def read_cbytes(r):
    n = r.uvarint()
    return None if n == 0 else r.raw(n - 1)


def commit_v8(broker, group, parts):
    """OffsetCommit v8 (flexible): {partition: error}."""
    body = cbytes(group) + struct.pack(">i", -1) + cbytes(b"") + cbytes(None)
    body += uvarint(2) + cbytes(TOPIC) + uvarint(len(parts) + 1)
    for p, (off, md) in parts.items():
        body += struct.pack(">iqi", p, off, -1) + cbytes(md) + uvarint(0)
    body += uvarint(0) + uvarint(0)
    r = flexible_call(broker.bootstrap, 8, 8, body)
    r.take(">i")
    assert r.uvarint() == 2 and read_cbytes(r) == TOPIC
    out = {}
    for _ in range(r.uvarint() - 1):
        p, err = r.take(">i"), r.take(">h")
        r.tags()
        out[p] = err
    return out


def fetch_v1(broker, group, partitions):
    """OffsetFetch v1: {partition: (offset, metadata bytes or None, error)}."""
    body = s16(group) + struct.pack(">i", 1) + s16(TOPIC) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">i", p) for p in partitions)
    r = call(broker, 9, 1, body)
    assert r.take(">i") == 1 and r.s16() == TOPIC
    out = {}
    for _ in range(r.take(">i")):
        p, off, md, err = r.take(">i"), r.take(">q"), r.s16(), r.take(">h")
        out[p] = (off, md, err)
    return out


def fetch_v8(broker, group, partitions):
    """OffsetFetch v8 (group-batched, flexible) for one group: same shape as fetch_v1."""
    body = uvarint(2) + cbytes(group) + uvarint(2) + cbytes(TOPIC) + uvarint(len(partitions) + 1)
    body += b"".join(struct.pack(">i", p) for p in partitions) + uvarint(0) + uvarint(0)
    body += struct.pack(">b", 0) + uvarint(0)
    r = flexible_call(broker.bootstrap, 9, 8, body)
    r.take(">i")
    assert r.uvarint() == 2 and read_cbytes(r) == group
    assert r.uvarint() == 2 and read_cbytes(r) == TOPIC
    out = {}
    for _ in range(r.uvarint() - 1):
        p, off, _epoch = r.take(">i"), r.take(">q"), r.take(">i")
        md, err = read_cbytes(r), r.take(">h")
        r.tags()
        out[p] = (off, md, err)
    r.tags()
    assert r.take(">h") == 0
    return out


def expected():
    return {p: (100 + p, want, 0) for p, (_, want) in CASES.items()}


def test_commit_metadata_is_bytes_and_survives_restart(broker_factory):
    b = broker_factory().start()
    create_topic(b, len(CASES))
    parts = {p: (100 + p, md) for p, (md, _) in CASES.items()}
    assert commit_v2(b, b"g-v2", parts) == {p: 0 for p in CASES}
    assert commit_v8(b, b"g-v8", parts) == {p: 0 for p in CASES}
    for _ in range(2):
        for g in (b"g-v2", b"g-v8"):
            assert fetch_v1(b, g, sorted(CASES)) == expected(), g
            assert fetch_v8(b, g, sorted(CASES)) == expected(), g
        # Reloaded from __consumer_offsets: the same bytes.
        b.restart()


def test_metadata_limit_counts_bytes(broker_factory):
    b = broker_factory(**{"offset.metadata.max.bytes": 5}).start()
    create_topic(b, 2)
    # 6 bytes (2 before the first NUL): too large. 5 bytes: accepted, and read back whole.
    assert commit_v2(b, b"g", {0: (7, b"ab\x00cd\x00"), 1: (8, b"ab\x00cd")}) == {
        0: OFFSET_METADATA_TOO_LARGE, 1: 0}
    assert fetch_v1(b, b"g", [0, 1]) == {0: (-1, b"", 0), 1: (8, b"ab\x00cd", 0)}


def test_librdkafka_empty_metadata_stays_empty(broker):
    """librdkafka sends a string with its NUL ("" as one NUL byte) and gives the bytes back: an
    empty string read back as None when the broker cut it at the NUL."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("rk-md", 3, 1)]).values():
        f.result(30)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "rk-md",
                  "enable.auto.commit": False})
    try:
        sent = {0: "Hello", 1: "", 2: None}
        tps = [TopicPartition("rk-md", p, 10 + p, metadata=md) if md is not None
               else TopicPartition("rk-md", p, 10 + p) for p, md in sent.items()]
        assert all(t.error is None for t in c.commit(offsets=tps, asynchronous=False))
        got = c.committed([TopicPartition("rk-md", p) for p in sent], timeout=30)
        # A null commit is stored as "" (Kafka), which librdkafka shows as None.
        assert {t.partition: (t.offset, t.metadata) for t in got} == {
            0: (10, "Hello"), 1: (11, ""), 2: (12, None)}
    finally:
        c.close()
