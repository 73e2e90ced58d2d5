"""Bad data a client can send in a Produce request (issue 12, items 9 and 12), on the raw wire
since no client sends it on purpose: each batch is refused with Kafka's error code, the log end
offset does not move, and a consumer still reads the good records around it."""
import ctypes
import ctypes.util
import struct
import zlib

import pytest

from conftest import Broker
from kafka_wire import _request, _varint, crc32c

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
TRANSACTIONAL, CONTROL = 0x10, 0x20
CORRUPT_MESSAGE, INVALID_RECORD = 2, 87
TXN_ID_AUTH_FAILED = 53


# ---- the codecs, from the same C libraries the broker links ----

def _lib(name):
    return ctypes.CDLL(ctypes.util.find_library(name) or "lib%s.so.1" % name)


def compress(codec, data):
    if codec == NONE:
        return data
    if codec == GZIP:
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
        return c.compress(data) + c.flush()
    if codec == SNAPPY:  # one raw block, as librdkafka writes it
        lib = _lib("snappy")
        n = ctypes.c_size_t(lib.snappy_max_compressed_length(ctypes.c_size_t(len(data))))
        out = ctypes.create_string_buffer(n.value)
        assert lib.snappy_compress(data, ctypes.c_size_t(len(data)), out, ctypes.byref(n)) == 0
        return out.raw[:n.value]
    if codec == LZ4:
        lib = _lib("lz4")
        lib.LZ4F_compressFrameBound.restype = ctypes.c_size_t
        lib.LZ4F_compressFrame.restype = ctypes.c_size_t
        cap = lib.LZ4F_compressFrameBound(ctypes.c_size_t(len(data)), None)
        out = ctypes.create_string_buffer(cap)
        n = lib.LZ4F_compressFrame(out, ctypes.c_size_t(cap), data, ctypes.c_size_t(len(data)), None)
        assert n < cap
        return out.raw[:n]
    if codec == ZSTD:
        lib = _lib("zstd")
        lib.ZSTD_compressBound.restype = ctypes.c_size_t
        lib.ZSTD_compress.restype = ctypes.c_size_t
        cap = lib.ZSTD_compressBound(ctypes.c_size_t(len(data)))
        out = ctypes.create_string_buffer(cap)
        n = lib.ZSTD_compress(out, ctypes.c_size_t(cap), data, ctypes.c_size_t(len(data)), 3)
        assert n < cap
        return out.raw[:n]
    raise ValueError(codec)


# ---- batches with every field under the test's control ----

def records(values, deltas=None):
    out = b""
    for i, v in enumerate(values):
        d = i if deltas is None else deltas[i]
        body = b"\x00" + _varint(0) + _varint(d) + _varint(-1) + _varint(len(v)) + v + _varint(0)
        out += _varint(len(body)) + body
    return out


def batch(recs, count, codec=NONE, attrs=0, pid=-1, epoch=-1, seq=-1, base_offset=0, magic=2,
          payload=None):
    """A batch whose header says count records over recs (compressed with codec), or over
    payload as given; the CRC is always right."""
    ts = 1700000000000
    body = compress(codec, recs) if payload is None else payload
    after_crc = struct.pack(">hiqqqhii", attrs | codec, count - 1, ts, ts, pid, epoch, seq,
                            count) + body
    after_len = struct.pack(">ibI", -1, magic, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", base_offset, len(after_len)) + after_len


def produce(bootstrap, parts, acks=1):
    """One Produce v7 with null transactional id over parts = [(topic, partition, batch)];
    returns {(topic, partition): error_code}."""
    host, port = bootstrap.split(":")
    body = struct.pack(">hhi", -1, acks, 10000) + struct.pack(">i", len(parts))
    for topic, partition, b in parts:
        name = topic.encode()
        body += struct.pack(">h", len(name)) + name + struct.pack(">iii", 1, partition, len(b)) + b
    import socket
    with socket.create_connection((host, int(port)), timeout=30) as s:
        resp = _request(s, 0, 7, 1, body)
    out, off = {}, 4
    for _ in range(len(parts)):
        nlen = struct.unpack_from(">h", resp, off)[0]
        topic = resp[off + 2:off + 2 + nlen].decode()
        off += 2 + nlen
        (n,) = struct.unpack_from(">i", resp, off)
        off += 4
        for _ in range(n):
            partition, err = struct.unpack_from(">ih", resp, off)
            off += 4 + 2 + 8 + 8 + 8
            out[(topic, partition)] = err
    return out


# ---- one broker for the module, a fresh topic per case ----

@pytest.fixture(scope="module")
def hb(tmp_path_factory):
    b = Broker(str(tmp_path_factory.mktemp("hostile") / "data"))
    b.start()
    yield b
    alive = b.alive()
    rc = b.stop()
    assert alive, "broker died during the test:\n" + b.log()
    assert rc == 0, b.log()


def _topic(b, name, partitions=1):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(10)


def end_offset(b, topic, partition=0):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "hostile-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        c.close()


def consume_all(b, topic, n, partition=0):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "hostile-read",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, 0)])
    got = []
    try:
        for _ in range(100):
            for m in c.consume(n, timeout=0.5):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value()))
            if len(got) >= n:
                break
    finally:
        c.close()
    return got


GOOD = [b"good-0", b"good-1"]
AFTER = [b"after-0"]
VALUES = [b"v-%d" % i for i in range(20)]


def _cases():
    """name -> (bad batch, the error Kafka answers)."""
    cases = {
        # recordsCount 1,000,000 (lastOffsetDelta 999,999) over one record
        "count-1m-one-record": (batch(records([b"x"]), 1000000), INVALID_RECORD),
        "count-3-two-records": (batch(records([b"x", b"y"]), 3), INVALID_RECORD),
        "count-1-two-records": (batch(records([b"x", b"y"]), 1), INVALID_RECORD),
        "garbage-records": (batch(b"\xff" * 40, 2), INVALID_RECORD),
        "record-length-too-long": (batch(b"\x7e" + records([b"x"])[1:], 1), INVALID_RECORD),
        "control-batch": (batch(records([b"x"]), 1, attrs=CONTROL), INVALID_RECORD),
        "base-offset-not-0": (batch(records([b"x"]), 1, base_offset=42), INVALID_RECORD),
        "magic-1": (batch(records([b"x"]), 1, magic=1), INVALID_RECORD),
    }
    for codec, cname in ((NONE, "none"), (GZIP, "gzip"), (SNAPPY, "snappy"), (LZ4, "lz4"),
                         (ZSTD, "zstd")):
        cases["repeated-offset-deltas-" + cname] = (
            batch(records([b"a", b"b", b"c"], deltas=[0, 1, 1]), 3, codec), INVALID_RECORD)
        if codec == NONE:
            continue
        cases["count-1m-one-record-" + cname] = (
            batch(records([b"x"]), 1000000, codec), INVALID_RECORD)
        # The payload does not decompress (CRC valid): INVALID_RECORD, non-retriable, so the
        # client does not resend the same bad bytes (issue 12 item 9).
        z = bytearray(compress(codec, records(VALUES)))
        z[0] ^= 0x5A  # the codec's magic / header / raw snappy length
        cases["corrupt-" + cname] = (batch(b"", 20, codec, payload=bytes(z)), INVALID_RECORD)
        cut = compress(codec, records(VALUES))[:-12]
        cases["truncated-" + cname] = (batch(b"", 20, codec, payload=cut), INVALID_RECORD)
    return cases


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_batch_refused(hb, name):
    bad, want = CASES[name]
    topic = "bad-" + name
    _topic(hb, topic)
    assert produce(hb.bootstrap, [(topic, 0, batch(records(GOOD), 2))]) == {(topic, 0): 0}
    assert produce(hb.bootstrap, [(topic, 0, bad)]) == {(topic, 0): want}
    assert end_offset(hb, topic) == 2  # the log end offset did not move
    assert produce(hb.bootstrap, [(topic, 0, batch(records(AFTER), 1))]) == {(topic, 0): 0}
    assert consume_all(hb, topic, 3) == [(0, GOOD[0]), (1, GOOD[1]), (2, AFTER[0])]


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_good_compressed_batches_accepted(hb, codec):
    """The same libraries' output, well formed, still goes in and reads back."""
    topic = "good-%d" % codec
    _topic(hb, topic)
    assert produce(hb.bootstrap, [(topic, 0, batch(records(VALUES), 20, codec))]) == {(topic, 0): 0}
    assert consume_all(hb, topic, 20) == list(enumerate(VALUES))


@pytest.mark.parametrize("pid", [-1, 7])
def test_transactional_batch_without_transactional_id(hb, pid):
    """Kafka refuses the whole request (every partition, good ones too) with
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED when a transactional batch comes without a
    transactional id, whatever its producer id."""
    topic = "txn-%d" % (pid + 1)
    _topic(hb, topic, 2)
    txn = batch(records([b"t"]), 1, attrs=TRANSACTIONAL, pid=pid, epoch=0 if pid >= 0 else -1,
                seq=0 if pid >= 0 else -1)
    got = produce(hb.bootstrap, [(topic, 0, txn), (topic, 1, batch(records(GOOD), 2))])
    assert got == {(topic, 0): TXN_ID_AUTH_FAILED, (topic, 1): TXN_ID_AUTH_FAILED}
    assert end_offset(hb, topic, 0) == 0 and end_offset(hb, topic, 1) == 0


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_real_client_compressed_produce_accepted(hb, codec):
    """librdkafka's own batches of every codec pass the validator."""
    from confluent_kafka import Producer
    topic = "client-" + codec
    _topic(hb, topic)
    p = Producer({"bootstrap.servers": hb.bootstrap, "compression.type": codec, "linger.ms": 20})
    errors = []
    for i in range(500):
        p.produce(topic, b"record-%d-" % i + b"x" * (i % 300), key=b"k%d" % (i % 7),
                  headers=[("h", b"v")] if i % 3 == 0 else None,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert errors == []
    got = consume_all(hb, topic, 500)
    assert [v for _, v in got] == [b"record-%d-" % i + b"x" * (i % 300) for i in range(500)]
