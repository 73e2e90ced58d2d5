"""Pre-0.11 protocol versions, served as Kafka 3.9 served them (issue 13, "The tutorial's code, as
written"): Produce v0-2 with magic 0/1 message sets converted to batches on append, Fetch v0-3
down-converted, ListOffsets v0, OffsetCommit/OffsetFetch v0-1; raw wire for each, then
kafka-python pinned to api_version=(0, 10) as the tutorial pins it."""
import socket
import struct
import sys
import time
import zlib

import pytest

from kafka_wire import Reader, _recv, s16

sys.path.insert(0, __import__("os").path.dirname(__file__))


# ---- legacy message sets, written here (CRC-32 from zlib) ----

def message(offset, magic, value, key=None, ts=None, attr=0):
    body = struct.pack(">bb", magic, attr)
    if magic == 1:
        body += struct.pack(">q", ts if ts is not None else int(time.time() * 1000))
    for f in (key, value):
        body += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    msg = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body
    return struct.pack(">qi", offset, len(msg)) + msg


def gzip_wrapper(offset, magic, inner, ts=None):
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    payload = z.compress(inner) + z.flush()
    return message(offset, magic, payload, ts=ts, attr=1)


def parse_set(data):
    """[(offset, magic, attributes, timestamp, key, value)], CRCs checked; a partial tail ends it."""
    out, pos = [], 0
    while len(data) - pos >= 12:
        offset, size = struct.unpack_from(">qi", data, pos)
        if size > len(data) - pos - 12:
            break
        m = data[pos + 12:pos + 12 + size]
        assert struct.unpack(">I", m[:4])[0] == zlib.crc32(m[4:]) & 0xFFFFFFFF
        magic, attr = m[4], m[5]
        r = Reader(m[6:])
        ts = r.take(">q") if magic == 1 else None
        kl = r.take(">i")
        key = r.raw(kl) if kl >= 0 else None
        vl = r.take(">i")
        value = r.raw(vl) if vl >= 0 else None
        out.append((offset, magic, attr, ts, key, value))
        pos += 12 + size
    return out


def call(broker, api, version, body, corr=7):
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        hdr = struct.pack(">hhih", api, version, corr, 4) + b"test"
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    r = Reader(data)
    assert r.take(">i") == corr
    return r


def create_topic(broker, name, partitions=1):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(15)


def produce(broker, version, topic, records, partition=0):
    """Produce v0-2 (acks=1): (error, base offset, log append time or None)."""
    body = struct.pack(">hi", 1, 10000) + struct.pack(">i", 1) + s16(topic)
    body += struct.pack(">iii", 1, partition, len(records)) + records
    r = call(broker, 0, version, body)
    assert r.take(">i") == 1
    assert r.s16() == topic.encode()
    assert r.take(">i") == 1
    assert r.take(">i") == partition
    err, base = r.take(">h"), r.take(">q")
    lat = r.take(">q") if version >= 2 else None
    if version >= 1:
        r.take(">i")  # throttle
    assert r.o == len(r.d)
    return err, base, lat


def fetch(broker, version, topic, offset, partition_max=1 << 20, max_bytes=None, partition=0):
    """Fetch v0-3 of one partition: (error, high watermark, record bytes)."""
    body = struct.pack(">iii", -1, 100, 0)
    if version >= 3:
        body += struct.pack(">i", max_bytes if max_bytes is not None else 1 << 20)
    body += struct.pack(">i", 1) + s16(topic) + struct.pack(">iiqi", 1, partition, offset, partition_max)
    r = call(broker, 1, version, body)
    if version >= 1:
        r.take(">i")
    assert r.take(">i") == 1 and r.s16() == topic.encode() and r.take(">i") == 1
    assert r.take(">i") == partition
    err, hw = r.take(">h"), r.take(">q")
    n = r.take(">i")
    data = r.raw(n)
    assert r.o == len(r.d)
    return err, hw, data


# ---- raw wire, one per old version ----

def test_api_versions_v0_lists_the_old_floors(broker):
    r = call(broker, 18, 0, b"")
    assert r.take(">h") == 0
    ranges = {}
    for _ in range(r.take(">i")):
        k, lo, hi = r.take(">h"), r.take(">h"), r.take(">h")
        ranges[k] = (lo, hi)
    # Kafka 3.9's floors: Produce 0, Fetch 0, ListOffsets 0, Metadata 0, OffsetCommit 0, OffsetFetch 0
    for key in (0, 1, 2, 3, 8, 9):
        assert ranges[key][0] == 0, (key, ranges[key])


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_legacy_then_fetch_every_old_version(broker, version):
    topic = "old-produce-v%d" % version
    create_topic(broker, topic)
    magic = 0 if version < 2 else 1
    ts = 1700000000000
    plain = message(0, magic, b"one", key=b"k1", ts=ts) + message(0, magic, b"two", ts=ts + 1)
    err, base, lat = produce(broker, version, topic, plain)
    assert (err, base) == (0, 0)
    assert lat == (-1 if version >= 2 else None)
    inner = b"".join(message(i if magic == 1 else 0, magic, b"z%d" % i, key=None if i == 1 else b"k",
                             ts=ts + 10 + i) for i in range(3))
    err, base, _ = produce(broker, version, topic, gzip_wrapper(2, magic, inner, ts=ts + 12))
    assert (err, base) == (0, 2)
    values = [b"one", b"two", b"z0", b"z1", b"z2"]
    for fv in (0, 1, 2, 3):
        err, hw, data = fetch(broker, fv, topic, 1)
        assert (err, hw) == (0, 5)
        msgs = parse_set(data)
        want_magic = 0 if fv <= 1 else 1
        assert msgs[0][:2] == (1, want_magic)  # records before the fetch offset are left out
        assert msgs[0][5] == b"two" and msgs[0][4] is None
        assert msgs[0][3] == (None if want_magic == 0 else (ts + 1 if magic == 1 else -1))
        # the gzip batch comes back as one gzip wrapper at its last offset
        off, m, attr, wts, key, payload = msgs[1]
        assert (off, m, attr & 7) == (4, want_magic, 1)
        inner_msgs = parse_set(zlib.decompress(payload, 31))
        assert [x[5] for x in inner_msgs] == values[2:]
        assert [x[0] for x in inner_msgs] == ([0, 1, 2] if want_magic == 1 else [2, 3, 4])
        assert inner_msgs[1][4] is None
    # and the converted batches read back with a current client (magic 2)
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-" + topic,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 5 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.offset(), m.value(), m.timestamp()[1]))
    c.close()
    assert [g[1] for g in got] == values
    assert [g[0] for g in got] == [0, 1, 2, 3, 4]
    assert got[0][2] == (ts if magic == 1 else -1)


def test_produce_legacy_refusals(broker):
    topic = "old-refusals"
    create_topic(broker, topic)
    bad = bytearray(message(0, 1, b"value", ts=1))
    bad[-1] ^= 1
    assert produce(broker, 2, topic, bytes(bad))[0] == 2  # CORRUPT_MESSAGE: CRC
    inner = message(5, 1, b"a", ts=1) + message(6, 1, b"b", ts=1)  # magic 1 inner offsets not 0..n-1
    assert produce(broker, 2, topic, gzip_wrapper(6, 1, inner, ts=1))[0] == 87  # INVALID_RECORD
    # Produce v3+ carries only magic 2 batches: a magic 1 set is INVALID_RECORD, as Kafka
    body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">i", 1) + s16(topic)
    rec = message(0, 1, b"v", ts=1)
    body += struct.pack(">iii", 1, 0, len(rec)) + rec
    r = call(broker, 0, 3, body)
    r.take(">i"), r.s16(), r.take(">i"), r.take(">i")
    assert r.take(">h") == 87
    # nothing was appended by any of them
    assert fetch(broker, 2, topic, 0)[1] == 0


def test_fetch_old_versions_limits(broker):
    topic = "old-limits"
    create_topic(broker, topic)
    big = b"x" * 3000
    assert produce(broker, 2, topic, message(0, 1, big, ts=1) + message(0, 1, big, ts=2))[0] == 0
    one = 12 + 22 + len(big)
    # v2: partition_max_bytes is a hard limit; a message over it comes back cut (the client
    # reports a message larger than its fetch size), as Kafka 3.x's down-conversion did
    err, _, data = fetch(broker, 2, topic, 0, partition_max=1000)
    assert err == 0 and len(data) == 1000 and parse_set(data) == []
    err, _, data = fetch(broker, 2, topic, 0, partition_max=one + 100)
    assert len(data) == one and len(parse_set(data)) == 1
    # v3: the first message whole past both limits (KIP-74)
    err, _, data = fetch(broker, 3, topic, 0, partition_max=1000, max_bytes=1000)
    assert len(data) == one and parse_set(data)[0][0] == 0
    err, _, data = fetch(broker, 3, topic, 0, partition_max=1 << 20, max_bytes=one + 10)
    assert len(parse_set(data)) == 1


def test_list_offsets_v0(broker):
    topic = "old-list-offsets"
    create_topic(broker, topic)
    for i in range(3):
        assert produce(broker, 2, topic, message(0, 1, b"v%d" % i, ts=1))[0] == 0

    def lo(ts, max_n):
        body = struct.pack(">i", -1) + struct.pack(">i", 1) + s16(topic)
        body += struct.pack(">iiqi", 1, 0, ts, max_n)
        r = call(broker, 2, 0, body)
        assert r.take(">i") == 1 and r.s16() == topic.encode() and r.take(">i") == 1
        assert r.take(">i") == 0
        err = r.take(">h")
        offs = [r.take(">q") for _ in range(r.take(">i"))]
        assert r.o == len(r.d)
        return err, offs

    assert lo(-1, 1) == (0, [3])
    assert lo(-1, 10) == (0, [3, 0])  # the log end, then each segment's base, newest first
    assert lo(-2, 10) == (0, [0])
    assert lo(-1, 0) == (0, [])


@pytest.mark.parametrize("version", [0, 1])
def test_offset_commit_and_fetch_v0_v1(broker, version):
    topic = "old-commit-v%d" % version
    create_topic(broker, topic)
    group = "old-group-v%d" % version
    body = s16(group)
    if version == 1:
        body += struct.pack(">i", -1) + s16("")
    body += struct.pack(">i", 1) + s16(topic) + struct.pack(">iiq", 1, 0, 42)
    if version == 1:
        body += struct.pack(">q", -1)  # commit timestamp: now
    body += s16("meta")
    r = call(broker, 8, version, body)
    assert r.take(">i") == 1 and r.s16() == topic.encode() and r.take(">i") == 1
    assert (r.take(">i"), r.take(">h")) == (0, 0)
    for fv in (0, 1):
        body = s16(group) + struct.pack(">i", 1) + s16(topic) + struct.pack(">ii", 1, 0)
        r = call(broker, 9, fv, body)
        assert r.take(">i") == 1 and r.s16() == topic.encode() and r.take(">i") == 1
        assert r.take(">i") == 0
        assert (r.take(">q"), r.s16(), r.take(">h")) == (42, b"meta", 0)
        assert r.o == len(r.d)


# ---- kafka-python pinned to (0, 10), as the tutorial pins it ----

def test_kafka_python_api_version_0_10(broker):
    kafka = pytest.importorskip("kafka")
    topic = "old-kafka-python"
    create_topic(broker, topic, partitions=2)
    for codec in (None, "gzip"):
        producer = kafka.KafkaProducer(bootstrap_servers=[broker.bootstrap], api_version=(0, 10),
                                       compression_type=codec, linger_ms=50, max_block_ms=10000,
                                       request_timeout_ms=10000, retries=0)
        futures = [producer.send(topic, key=b"k%d" % i, value=("%s-%d" % (codec or "plain", i)).encode())
                   for i in range(20)]
        producer.flush(20)
        offsets = [f.get(timeout=10).offset for f in futures]  # raises when the produce failed
        producer.close(timeout=5)
        assert min(offsets) >= 0
    # the tutorial's consumer: a group, earliest, a timeout to end the loop
    consumer = kafka.KafkaConsumer(topic, bootstrap_servers=[broker.bootstrap], api_version=(0, 10),
                                   group_id="tutorial-group", auto_offset_reset="earliest",
                                   consumer_timeout_ms=5000)
    got = [m.value for m in consumer]
    consumer.commit()
    consumer.close()
    assert sorted(got) == sorted([b"plain-%d" % i for i in range(20)] + [b"gzip-%d" % i for i in range(20)])
    # the group's commit holds: a second consumer of the group reads nothing more
    again = kafka.KafkaConsumer(topic, bootstrap_servers=[broker.bootstrap], api_version=(0, 10),
                                group_id="tutorial-group", auto_offset_reset="earliest",
                                consumer_timeout_ms=3000)
    assert [m.value for m in again] == []
    again.close()
