"""DescribeLogDirs (API 35, docs/CLUSTER.md) on one node over the wire: v1 (topics null) lists
the log dir with every partition and its size as the segment files are on disk; v1 with a
topic list only those partitions (one it does not hold left out); v3 without DESCRIBE on the
cluster CLUSTER_AUTHORIZATION_FAILED and no results, as Kafka. (Kafka's kafka-log-dirs reads
it across a cluster in test_console_cluster.py.)"""
import os
import socket
import struct

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_wire import _recv, frame, s16

TOPIC = "dld"


def _call(b, version, body, flexible=False):
    host, port = b.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        if flexible:  # request header v2: client id then no tagged fields
            data = struct.pack(">hhih", 35, version, 9, 4) + b"test" + b"\x00" + body
            s.sendall(struct.pack(">i", len(data)) + data)
        else:
            s.sendall(frame(35, version, 9, body))
        size = struct.unpack(">i", _recv(s, 4))[0]
        resp = _recv(s, size)
    assert struct.unpack(">i", resp[:4])[0] == 9
    return resp[5:] if flexible else resp[4:]  # v1 response header: its tag buffer (empty)


class _R:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.i)
        self.i += struct.calcsize(fmt)
        return v[0]

    def str(self):
        n = self.take(">h")
        s = self.b[self.i:self.i + n].decode()
        self.i += n
        return s


def _v1(b, topics=None):
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics))
        for t, parts in topics.items():
            body += s16(t) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
    r = _R(_call(b, 1, body))
    r.take(">i")  # throttle
    dirs = {}
    for _ in range(r.take(">i")):
        err, path = r.take(">h"), r.str()
        sizes = {}
        for _ in range(r.take(">i")):
            name = r.str()
            for _ in range(r.take(">i")):
                p, size, lag, future = r.take(">i"), r.take(">q"), r.take(">q"), r.take(">?")
                assert lag == 0 and not future
                sizes[(name, p)] = size
        dirs[path] = (err, sizes)
    assert r.i == len(r.b)
    return dirs


def _on_disk(b, p):
    d = os.path.join(b.data_dir, "%s-%d" % (TOPIC, p))
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


def test_describe_log_dirs(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, 3, 1)]).values():
        f.result(20)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for k in range(30):
        p.produce(TOPIC, value=b"v" * (k + 1), partition=k % 3)
    assert p.flush(20) == 0
    dirs = _v1(broker)
    assert list(dirs) == [os.path.realpath(broker.data_dir)] or list(dirs) == [broker.data_dir], dirs
    err, sizes = next(iter(dirs.values()))
    assert err == 0
    for i in range(3):
        assert sizes[(TOPIC, i)] == _on_disk(broker, i) > 0, sizes
    # A topic list: those partitions only (9 is not held, "nope" not a topic: left out).
    err, sizes = next(iter(_v1(broker, {TOPIC: [2, 9], "nope": [0]}).values()))
    assert err == 0 and sizes == {(TOPIC, 2): _on_disk(broker, 2)}, sizes


def test_describe_log_dirs_needs_cluster_describe(broker_factory):
    b = broker_factory(**{"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                          "super.users": "User:admin"})
    b.start()
    r = _R(_call(b, 3, b"\x00\x00", flexible=True))  # topics null, no tagged fields
    r.take(">i")  # throttle
    assert r.take(">h") == 31  # CLUSTER_AUTHORIZATION_FAILED (ANONYMOUS has no ACL)
    assert r.take(">B") == 1  # results: a compact array of 0
    assert b.alive()
