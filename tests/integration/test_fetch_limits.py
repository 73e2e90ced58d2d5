"""Fetch response size limits (issue 13 item 1, KIP-74): a response may exceed the request's
max_bytes only to carry the first record batch of the first partition that has data; every
later partition gets only whole batches that fit what is left (possibly nothing), and a
partition's max_bytes binds every partition but that first one."""
import os
import socket
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import Reader, _recv, produce_v7, record_batch, s16  # noqa: E402

import confluent_kafka
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

BIG = 600 * 1000  # one record of ~600 KB: two of them exceed a 1,000,000-byte fetch


def create_topic(b, name, partitions):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    fs[name].result(10)


def fetch_v4(broker, topic, parts, max_bytes):
    """Fetch v4 (no wait) of [(partition, fetch_offset, partition_max_bytes)]: the response
    size and [(partition, error, records bytes)] in response order."""
    body = struct.pack(">iiiib", -1, 0, 0, max_bytes, 0) + struct.pack(">i", 1) + s16(topic)
    body += struct.pack(">i", len(parts))
    for p, off, pmax in parts:
        body += struct.pack(">iqi", p, off, pmax)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as s:
        hdr = struct.pack(">hhih", 1, 4, 7, 4) + b"test"
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    r = Reader(data)
    assert r.take(">i") == 7
    r.take(">i")  # throttle
    out = []
    for _ in range(r.take(">i")):
        assert r.s16() == topic.encode()
        for _ in range(r.take(">i")):
            p, err, _hw, _lso = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q")
            for _ in range(max(r.take(">i"), 0)):
                r.take(">q"), r.take(">q")
            n = r.take(">i")
            out.append((p, err, r.raw(max(n, 0))))
    assert r.o == len(data)
    return size, out


def test_only_first_nonempty_partition_may_exceed_fetch_max_bytes(broker):
    topic = "fetch-limit-wire"
    create_topic(broker, topic, 4)
    batch = record_batch([b"x" * BIG])
    small = record_batch([b"s" * 100])
    for p in range(3):
        assert produce_v7(broker.bootstrap, topic, p, batch) == (0, 0)
    for _ in range(3):
        assert produce_v7(broker.bootstrap, topic, 3, small)[0] == 0
    n = len(batch)

    # Three partitions of one 600 KB batch each, 1,000,000 bytes: only the first has records.
    size, parts = fetch_v4(broker, topic, [(0, 0, 1 << 20), (1, 0, 1 << 20), (2, 0, 1 << 20)], 1000000)
    assert [(p, e) for p, e, _ in parts] == [(0, 0), (1, 0), (2, 0)]
    assert [len(rec) for _, _, rec in parts] == [n, 0, 0]
    assert parts[0][2][61:] == batch[61:]  # the records, past the 61-byte batch header
    assert size < 1000000 + 1000

    # Whatever partition comes first with data is the one served; empty ones before it do not
    # count (fetch_offset = log end: nothing to read).
    _, parts = fetch_v4(broker, topic, [(1, 1, 1 << 20), (2, 0, 1 << 20), (0, 0, 1 << 20)], 1000000)
    assert [(p, len(rec)) for p, _, rec in parts] == [(1, 0), (2, n), (0, 0)]

    # The first batch may exceed max_bytes itself (progress), nothing after it may.
    _, parts = fetch_v4(broker, topic, [(0, 0, 1 << 20), (3, 0, 1 << 20)], 1000)
    assert [(p, len(rec)) for p, _, rec in parts] == [(0, n), (3, 0)]

    # The first partition's batch may exceed its partition max_bytes; later partitions may not:
    # the small batches (~170 bytes each) of partition 3 are cut to what fits its 400 bytes.
    sb = len(small)
    _, parts = fetch_v4(broker, topic, [(0, 0, 1000), (3, 0, 2 * sb + sb // 2), (1, 0, 1000)], 1 << 24)
    assert [(p, len(rec)) for p, _, rec in parts] == [(0, n), (3, 2 * sb), (1, 0)]

    # A later partition's first batch that does not fit its partition max_bytes: nothing.
    _, parts = fetch_v4(broker, topic, [(3, 0, 1 << 20), (0, 0, 1000)], 1 << 24)
    assert [(p, len(rec)) for p, _, rec in parts] == [(3, 3 * sb), (0, 0)]

    # Room for both: both served, whole batches only.
    _, parts = fetch_v4(broker, topic, [(0, 0, 1 << 20), (1, 0, 1 << 20), (2, 0, 1 << 20)], 2 * n)
    assert [(p, len(rec)) for p, _, rec in parts] == [(0, n), (1, n), (2, 0)]


def test_librdkafka_consumes_large_records_over_several_partitions(broker):
    """librdkafka refuses a response larger than receive.message.max.bytes (at least
    fetch.max.bytes + 512) and reconnects: with every partition served its first batch, it
    never made progress."""
    topic = "fetch-limit-client"
    create_topic(broker, topic, 3)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    per_partition = 3
    for part in range(3):
        for i in range(per_partition):
            p.produce(topic, value=bytes([65 + part]) * BIG, key=b"%d-%d" % (part, i), partition=part)
            p.flush(30)
    assert p.flush(30) == 0
    errors = []
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "fetch-limit",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.max.bytes": 1000000, "max.partition.fetch.bytes": 1048576,
                  "receive.message.max.bytes": 1000512,  # the least librdkafka accepts
                  "error_cb": errors.append})
    c.subscribe([topic])
    got = {}
    deadline = time.time() + 20
    try:
        while len(got) < 3 * per_partition and time.time() < deadline:
            for m in c.consume(10, 1.0):
                if m.error() is not None:
                    continue
                assert len(m.value()) == BIG
                got[(m.partition(), m.offset())] = m.key()
    finally:
        c.close()
    assert len(got) == 3 * per_partition, "got %d of %d records:\n%s" % (
        len(got), 3 * per_partition, broker.log()[-3000:])
    assert errors == []  # e.g. "Invalid response size 1800x (0..1000512)", then a reconnect
    for part in range(3):
        assert [got[(part, o)] for o in range(per_partition)] == [b"%d-%d" % (part, i)
                                                                  for i in range(per_partition)]


def fetch_v7(broker, sock, topic, session_id, epoch, parts, max_bytes):
    """Fetch v7 on sock (a session lives on one broker, any connection): returns the session
    id and [(partition, records bytes)] in response order."""
    body = struct.pack(">iiiibii", -1, 0, 0, max_bytes, 0, session_id, epoch)
    body += struct.pack(">i", 1) + s16(topic) + struct.pack(">i", len(parts))
    for p, off in parts:
        body += struct.pack(">iqqi", p, off, -1, 1 << 20)
    body += struct.pack(">i", 0)  # forgotten topics
    hdr = struct.pack(">hhih", 1, 7, 9, 4) + b"test"
    sock.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
    data = _recv(sock, struct.unpack(">i", _recv(sock, 4))[0])
    r = Reader(data)
    assert r.take(">i") == 9
    r.take(">i")  # throttle
    assert r.take(">h") == 0
    sid = r.take(">i")
    out = []
    for _ in range(r.take(">i")):
        r.s16()
        for _ in range(r.take(">i")):
            p, _err, _hw, _lso, _ls = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q"), r.take(">q")
            for _ in range(max(r.take(">i"), 0)):
                r.take(">q"), r.take(">q")
            n = r.take(">i")
            out.append((p, len(r.raw(max(n, 0)))))
    return sid, out


def test_fetch_session_serves_the_other_partitions_next(broker):
    """With a response's bytes going to its first partitions only (KIP-74), a fetch session
    moves a partition that returned records to the end of its order, as Kafka's FetchSession
    does: the next incremental fetch serves the others instead of the same partition again."""
    topic = "fetch-session-rotation"
    create_topic(broker, topic, 3)
    big = b"x" * 600000
    for p in range(3):
        for _ in range(2):
            assert produce_v7(broker.bootstrap, topic, p, record_batch([big]))[0] == 0
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as s:
        sid, out = fetch_v7(broker, s, topic, 0, 0, [(0, 0), (1, 0), (2, 0)], 1000000)
        served = [p for p, n in out if n > 0]
        assert served == [0] and sid != 0
        # Incremental: p0 moved on by its one record; the others are unchanged in the session.
        _, out = fetch_v7(broker, s, topic, sid, 1, [(0, 1)], 1000000)
        served = [p for p, n in out if n > 0]
        assert served == [1], out
        _, out = fetch_v7(broker, s, topic, sid, 2, [(1, 1)], 1000000)
        assert [p for p, n in out if n > 0] == [2], out
