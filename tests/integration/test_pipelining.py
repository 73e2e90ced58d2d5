"""acks=all produces that wait for their fsync let the connection's next requests in (as a
client with max.in.flight > 1 sends them); every reply must still come back in request order,
and a client that goes away while replies are owed must not hurt the broker."""
import socket
import struct
import time

import pytest

from kafka_wire import _recv, record_batch

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def create_topic(b, name, partitions=1):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(10)


def frame(api, version, corr, body):
    data = struct.pack(">hhih", api, version, corr, 4) + b"test" + body
    return struct.pack(">i", len(data)) + data


def produce_body(topic, partition, batch, acks=-1):
    name = topic.encode()
    body = struct.pack(">hhi", -1, acks, 10000)
    body += struct.pack(">ih", 1, len(name)) + name
    return body + struct.pack(">iii", 1, partition, len(batch)) + batch


def read_reply(s):
    size = struct.unpack(">i", _recv(s, 4))[0]
    resp = _recv(s, size)
    return struct.unpack(">i", resp[:4])[0], resp[4:]


def produce_result(resp):
    off = 4
    nlen = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + nlen + 4
    _, err, base = struct.unpack(">ihq", resp[off:off + 14])
    return err, base


def consume(b, topic, partition, n):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "pipe", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, 0)])
    got = []
    for _ in range(60):
        for m in c.consume(100, 0.5):
            assert m.error() is None, m.error()
            got.append(m.value())
        if len(got) >= n:
            break
    c.close()
    return got


def test_pipelined_acks_all_replies_in_order(broker):
    create_topic(broker, "pipe", 2)
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        # 20 requests in one write: acks=all produces to two partitions, an ApiVersions and an
        # acks=1 produce in between, all before reading a single reply.
        frames, kinds = b"", []
        for corr in range(1, 21):
            if corr % 7 == 0:
                frames += frame(18, 0, corr, b"")
                kinds.append("apiversions")
            else:
                acks = 1 if corr % 5 == 0 else -1
                part = corr % 2
                v = b"v%d" % corr
                frames += frame(0, 7, corr, produce_body("pipe", part, record_batch([v, v]), acks))
                kinds.append((part, v))
        s.sendall(frames)
        next_offset = {0: 0, 1: 0}
        for corr in range(1, 21):
            got_corr, resp = read_reply(s)
            assert got_corr == corr  # replies in request order
            kind = kinds[corr - 1]
            if kind == "apiversions":
                assert struct.unpack(">h", resp[:2])[0] == 0
                continue
            err, base = produce_result(resp)
            assert err == 0
            assert base == next_offset[kind[0]]  # appended in request order
            next_offset[kind[0]] += 2
    for part in (0, 1):
        values = consume(broker, "pipe", part, next_offset[part])
        want = [kinds[c - 1][1] for c in range(1, 21)
                if kinds[c - 1] != "apiversions" and kinds[c - 1][0] == part]
        assert values == [v for v in want for _ in range(2)]


def wait_end_offset_settled(b, topic, partition, quiet_s=1.0, bound_s=60):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "pipe"})
    last, since, deadline = None, time.time(), time.time() + bound_s
    while time.time() < deadline:
        end = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        if end != last:
            last, since = end, time.time()
        elif time.time() - since >= quiet_s:
            break
        time.sleep(0.1)
    c.close()
    assert time.time() < deadline, "the log end of %s-%d kept moving" % (topic, partition)


def test_client_gone_while_replies_owed(broker):
    create_topic(broker, "gone")
    host, port = broker.bootstrap.split(":")
    big = record_batch([b"x" * 100000] * 8)
    for _ in range(20):
        s = socket.create_connection((host, int(port)), timeout=20)
        s.sendall(b"".join(frame(0, 7, c, produce_body("gone", 0, big)) for c in range(1, 9)))
        # Close (with a reset) without reading: the broker owes up to 8 deferred replies.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    # Frames the broker had already received from those connections may still be appending
    # (connections are not ordered against each other, in Kafka either): wait until the log
    # end stops moving, so that the record below is the last one.
    wait_end_offset_settled(broker, "gone", 0)
    # The broker still serves, and every batch that was appended is intact and in order.
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(frame(0, 7, 1, produce_body("gone", 0, record_batch([b"last"]))))
        corr, resp = read_reply(s)
        err, base = produce_result(resp)
        assert (corr, err) == (1, 0)
    values = consume(broker, "gone", 0, base + 1)
    assert len(values) == base + 1 and values[-1] == b"last"
    assert all(v == b"x" * 100000 for v in values[:-1])
