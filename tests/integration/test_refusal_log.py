"""Refused requests leave one INFO line in the broker log with the client id, the peer, the API
and version, the error and the reason (issue 13 item 8), rate-limited so that a client repeating
refused requests cannot flood the log."""
import socket
import struct
import threading
import time

import pytest

from kafka_wire import (Reader, cstr, frame, produce_v7, read_frame, record_batch, uvarint)

CLIENT = b"refusal-test"


def full_log(broker):
    with open(broker.log_path, "rb") as f:
        return f.read().decode(errors="replace")


def lines_with(broker, *parts):
    return [line for line in full_log(broker).splitlines() if all(p in line for p in parts)]


def create_topics_v5(name, corr, partitions=1, replication=1):
    """A flexible CreateTopics v5 frame (header v2) for one topic."""
    body = uvarint(2) + cstr(name) + struct.pack(">ih", partitions, replication)
    body += uvarint(1) + uvarint(1) + uvarint(0)  # no assignments, no configs, no tags
    body += struct.pack(">ib", 10000, 0) + uvarint(0)
    data = struct.pack(">hhih", 19, 5, corr, len(CLIENT)) + CLIENT + uvarint(0) + body
    return struct.pack(">i", len(data)) + data


def create_topics_v5_answer(data):
    """(error code, error message) of the one topic in a CreateTopics v5 response."""
    r = Reader(data)
    r.tags()
    r.take(">i")
    assert r.uvarint() == 2
    r.cstr()
    return r.take(">h"), r.cstr()


def test_answered_refusals_are_logged(broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    # An invalid topic name: the line carries the reason the response gave.
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        peer = "%s:%d" % s.getsockname()
        s.sendall(create_topics_v5("bad name", 41))
        corr, data = read_frame(s)
        assert corr == 41
        err, message = create_topics_v5_answer(data)
    assert err == 17 and message, (err, message)
    got = lines_with(broker, "Refused CreateTopics v5", "INVALID_TOPIC_EXCEPTION")
    assert len(got) == 1, full_log(broker)
    line = got[0]
    assert " INFO " in line
    assert "correlation id 41" in line and "client refusal-test" in line and peer in line, line
    assert "for bad name: " + message in line, line

    # A real client's refusal: the message it shows is the one in the log.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "client.id": "rf-admin"})
    fut = admin.create_topics([NewTopic("three-replicas", 1, 3)])["three-replicas"]
    with pytest.raises(Exception) as exc:
        fut.result(15)
    kerr = exc.value.args[0]
    del admin  # destroys the client: no reconnect attempts after the broker stops
    assert kerr.name() == "INVALID_REPLICATION_FACTOR", kerr
    got = lines_with(broker, "Refused CreateTopics", "client rf-admin", "INVALID_REPLICATION_FACTOR")
    assert len(got) == 1, full_log(broker)
    assert "for three-replicas: " + kerr.str() in got[0], (got[0], kerr.str())

    # A produce whose batch fails its CRC, on a topic that exists.
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(create_topics_v5("crc", 42))
        assert create_topics_v5_answer(read_frame(s)[1])[0] == 0
    batch = bytearray(record_batch([b"value"]))
    batch[-1] ^= 0xFF  # the CRC covers the records
    assert produce_v7(broker.bootstrap, "crc", 0, bytes(batch))[0] == 2  # CORRUPT_MESSAGE
    got = lines_with(broker, "Refused Produce v7", "CORRUPT_MESSAGE for crc-0", "client test")
    assert len(got) == 1, full_log(broker)
    assert got[0].endswith("CORRUPT_MESSAGE for crc-0"), got[0]  # Produce v7 has no message


def closed(sock):
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_refusals_that_close_the_connection_are_logged(broker):
    cases = [
        (frame(9999, 0, 51, b"", client_id=CLIENT), "INVALID_REQUEST: unknown API key 9999 (version 0)"),
        (frame(0, 14, 52, struct.pack(">hii", 1, 1000, 0), client_id=CLIENT),
         "UNSUPPORTED_VERSION: unsupported version 14 of Produce (supported 0-13)"),
        (frame(0, 7, 53, b"\x00\x01\x02", client_id=CLIENT), "INVALID_REQUEST: cannot parse Produce v7"),
    ]
    for data, reason in cases:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
            peer = "%s:%d" % s.getsockname()
            s.sendall(data)
            assert closed(s)
        corr = struct.unpack(">i", data[8:12])[0]
        deadline = time.time() + 5
        while not lines_with(broker, peer, reason) and time.time() < deadline:
            time.sleep(0.05)
        got = lines_with(broker, peer, reason)
        assert len(got) == 1, full_log(broker)
        assert " INFO " in got[0], got[0]
        assert "correlation id %d" % corr in got[0] and "client refusal-test" in got[0], got[0]
    # A client id cannot forge log lines: it is logged as printable ASCII.
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(frame(9999, 0, 54, b"", client_id=b"evil\n[2026] INFO forged\xff"))
        assert closed(s)
    time.sleep(0.2)
    assert lines_with(broker, "correlation id 54", "client evil?[2026] INFO forged?:"), full_log(broker)
    assert not any(line.startswith("[2026] INFO forged") for line in full_log(broker).splitlines())


def test_refusal_flood_is_rate_limited(broker):
    """10,000 refused requests pipelined on one connection: every one answered, a bounded number
    of log lines (LOG_LIMIT_BURST per LOG_LIMIT_WINDOW_MS window)."""
    n = 10000
    blob = b"".join(create_topics_v5("bad name %d" % i, i) for i in range(n))
    start = time.time()
    with socket.create_connection(("127.0.0.1", broker.port), timeout=60) as s:
        sender = threading.Thread(target=s.sendall, args=(blob,))
        sender.start()
        for i in range(n):
            corr, data = read_frame(s)
            assert corr == i
            assert create_topics_v5_answer(data)[0] == 17
        sender.join()
    elapsed = time.time() - start
    got = lines_with(broker, "Refused CreateTopics v5", "INVALID_TOPIC_EXCEPTION")
    windows = int(elapsed // 10) + 2
    print("%d refusals in %.2f s: %d log lines" % (n, elapsed, len(got)))
    assert 1 <= len(got) <= 10 * windows, (len(got), elapsed)
    assert "bad name 0" in got[0]
    assert len(full_log(broker).splitlines()) < 200  # nothing else floods either
