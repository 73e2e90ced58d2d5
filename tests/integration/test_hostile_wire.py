"""Hostile pipelining on the wire (issue 12, crashes 1 and 2): many requests in one write that
the client does not read, and a member's JoinGroup + LeaveGroup sent together while the group
rebalances. Each ran the next buffered request inside the code that was replying: a stack
overflow per frame in the first case, a use-after-free in the coordinator's member loop in the
second. The broker fixture fails the test if the broker died; CI runs these on the ASan build."""
import socket
import struct
import time

from kafka_wire import _recv, record_batch


def s16(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def frame(api, version, corr, body):
    data = struct.pack(">hhih", api, version, corr, 4) + b"test" + body
    return struct.pack(">i", len(data)) + data


def read_frame(s):
    size = struct.unpack(">i", _recv(s, 4))[0]
    resp = _recv(s, size)
    return struct.unpack(">i", resp[:4])[0], resp[4:]


def connect(b):
    s = socket.create_connection(("127.0.0.1", b.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_pipelined_burst_never_read_until_sent(broker):
    """3,000 ApiVersions v0 (14 bytes each) in one write, read only afterwards."""
    n = 3000
    with connect(broker) as s:
        s.sendall(b"".join(frame(18, 0, i, b"") for i in range(n)))
        for i in range(n):
            corr, body = read_frame(s)
            assert corr == i
            assert struct.unpack(">h", body[:2])[0] == 0
    assert broker.alive()


def test_pipelined_acks0_burst(broker):
    """acks=0 produces get no reply; 3,000 of them in one write, then one that is answered."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("burst", num_partitions=1, replication_factor=1)])["burst"].result(10)
    batch = record_batch([b"x"])
    name = b"burst"

    def produce(corr, acks):
        body = struct.pack(">hhi", -1, acks, 10000) + struct.pack(">ih", 1, len(name)) + name
        body += struct.pack(">iii", 1, 0, len(batch)) + batch
        return frame(0, 7, corr, body)

    with connect(broker) as s:
        s.sendall(b"".join(produce(i, 0) for i in range(3000)) + produce(3000, -1))
        corr, resp = read_frame(s)
        assert corr == 3000
        off = 4 + 2 + len(name) + 4
        _, err, base = struct.unpack(">ihq", resp[off:off + 14])
        assert (err, base) == (0, 3000)


# JoinGroup v5 / SyncGroup v3 / LeaveGroup v3: the last non-flexible versions.
def join_body(group, member, protocol=b"\x00\x01"):
    return (s16(group) + struct.pack(">ii", 10000, 10000) + s16(member) + s16(None) +
            s16("consumer") + struct.pack(">i", 1) + s16("range") +
            struct.pack(">i", len(protocol)) + protocol)


def parse_join(body):
    off = 4
    err, gen = struct.unpack(">hi", body[off:off + 6])
    off += 6
    out = []
    for _ in range(3):  # protocol name, leader, member id
        n = struct.unpack(">h", body[off:off + 2])[0]
        out.append(body[off + 2:off + 2 + max(n, 0)].decode())
        off += 2 + max(n, 0)
    return err, gen, out[1], out[2]


def join(s, corr, group, member):
    s.sendall(frame(11, 5, corr, join_body(group, member)))
    c, body = read_frame(s)
    assert c == corr
    return parse_join(body)


def join_member(s, group):
    err, _, _, member = join(s, 1, group, "")
    assert err == 79  # MEMBER_ID_REQUIRED hands out the id
    return join(s, 2, group, member)


def sync(s, corr, group, gen, member, assignments):
    body = s16(group) + struct.pack(">i", gen) + s16(member) + s16(None)
    body += struct.pack(">i", len(assignments))
    for m, data in assignments:
        body += s16(m) + struct.pack(">i", len(data)) + data
    s.sendall(frame(14, 3, corr, body))
    c, resp = read_frame(s)
    assert c == corr
    return struct.unpack(">h", resp[4:6])[0]


def leave_body(group, member):
    return s16(group) + struct.pack(">i", 1) + s16(member) + s16(None)


def test_join_and_leave_in_one_write_during_rebalance(broker):
    """A is a stable member; B (with its member id) sends JoinGroup and LeaveGroup in one write,
    then A rejoins. Completing the join answers B; B's LeaveGroup must not run inside that."""
    group = "pipelined-leave"
    for rnd in range(5):
        with connect(broker) as a, connect(broker) as b:
            err, gen, leader, ma = join_member(a, group)
            assert err == 0 and leader == ma
            assert sync(a, 3, group, gen, ma, [(ma, b"assign")]) == 0
            err, _, _, mb = join(b, 1, group, "")
            assert err == 79
            b.sendall(frame(11, 5, 2, join_body(group, mb)) + frame(13, 3, 3, leave_body(group, mb)))
            time.sleep(0.1)  # B's join is parked until A rejoins
            err, gen2, leader, _ = join(a, 4, group, ma)
            assert err == 0 and gen2 > gen
            corr, body = read_frame(b)
            assert corr == 2 and parse_join(body)[0] == 0
            corr, body = read_frame(b)
            assert corr == 3 and struct.unpack(">h", body[4:6])[0] == 0
            # A, the leader, syncs the generation B left: a rebalance follows, not a crash.
            assert sync(a, 5, group, gen2, ma, [(ma, b"assign")]) in (0, 27)
        assert broker.alive(), "round %d" % rnd
