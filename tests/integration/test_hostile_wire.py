"""Hostile pipelining on the wire (issue 12, crashes 1 and 2): many requests in one write that
the client does not read, and a member's JoinGroup + LeaveGroup sent together while the group
rebalances. Each ran the next buffered request inside the code that was replying: a stack
overflow per frame in the first case, a use-after-free in the coordinator's member loop in the
second. The broker fixture fails the test if the broker died; CI runs these on the ASan build."""
import os
import socket
import subprocess
import struct
import time

from kafka_wire import frame, read_frame, record_batch, s16


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


# ---- connections and memory (issue 12, items 5, 13 and 14) ----

def api_versions_answered(b, timeout=5):
    try:
        with socket.create_connection(("127.0.0.1", b.port), timeout=timeout) as s:
            s.sendall(frame(18, 0, 7, b""))
            corr, _ = read_frame(s)
            return corr == 7
    except OSError:
        return False


def closed_by_broker(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_accept_without_descriptors_backs_off(broker):
    """With its descriptors used up, accept(2) fails with EMFILE: the broker must not spin on
    the listener nor log every failure, and must accept again once descriptors are back."""
    pid = broker.proc.pid
    old = subprocess.run(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings",
                          "--output=SOFT,HARD"], check=True, capture_output=True, text=True)
    soft, hard = old.stdout.split()
    nfds = len(os.listdir("/proc/%d/fd" % pid))
    subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:%s" % (nfds + 4, hard)], check=True)
    log_before = len(broker.log().splitlines())
    socks = []
    try:
        for _ in range(30):
            socks.append(socket.create_connection(("127.0.0.1", broker.port), timeout=5))
        time.sleep(0.3)
        cpu0 = cpu_seconds(pid)
        time.sleep(2.0)
        burned = cpu_seconds(pid) - cpu0
        assert burned < 0.5, "broker burned %.2f CPU-s in 2 s while out of descriptors" % burned
        log = broker.log()
        assert "Too many open files" in log
        assert len(log.splitlines()) - log_before < 60, log[-3000:]
    finally:
        for s in socks:
            s.close()
        subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%s:%s" % (soft, hard)], check=True)
    deadline = time.time() + 10
    while time.time() < deadline and not api_versions_answered(broker, 1):
        time.sleep(0.1)
    assert api_versions_answered(broker)


def test_idle_and_trickling_connections_are_closed(broker_factory):
    b = broker_factory(**{"connections.max.idle.ms": "1000",
                          "gregor.request.read.timeout.ms": "600"}).start()
    try:
        with connect(b) as idle, connect(b) as slow:
            slow.sendall(struct.pack(">i", 256))  # a 256-byte request follows, a byte at a time
            t0 = time.time()
            for _ in range(10):  # a byte every 150 ms keeps it from being idle, never done
                try:
                    slow.sendall(b"\x00")
                except OSError:
                    break
                time.sleep(0.15)
            assert closed_by_broker(slow, 3)
            assert time.time() - t0 < 3
            assert closed_by_broker(idle, 3)
        assert "connections.max.idle.ms 1000" in b.log()
        assert "gregor.request.read.timeout.ms 600" in b.log()
        assert api_versions_answered(b)
    finally:
        b.stop()


def test_connections_per_ip_and_a_full_table(broker_factory):
    """max.connections.per.ip refuses the address's extra connections; a table full of idle
    sockets still lets a newcomer in once they have been idle 10 s (the broker's reclaim)."""
    b = broker_factory(**{"max.connections.per.ip": "4", "max.connections": "12",
                          "max.connections.per.ip.overrides": "127.0.0.2:20"}).start()
    try:
        mine = [connect(b) for _ in range(4)]
        extra = connect(b)
        assert closed_by_broker(extra, 3)
        extra.close()
        for s in mine:
            assert not closed_by_broker(s, 0.05)
        for s in mine:
            s.close()
        # 127.0.0.2 may hold 20 (the override), the table 12: it fills the table.
        idle = []
        for _ in range(12):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", b.port))
            idle.append(s)
        time.sleep(0.5)
        assert not api_versions_answered(b, 2)
        time.sleep(10.5)
        assert api_versions_answered(b)
        for s in idle:
            s.close()
        assert "max.connections.per.ip 4" in b.log()
        assert "max.connections (12) reached" in b.log()
    finally:
        b.stop()


def test_frames_being_read_are_bounded_in_memory(broker_factory):
    """Eight connections each declare a 10 MB frame and stall at 9 MB: with
    queued.max.request.bytes=20 MB the broker holds about two of them, not eight."""
    b = broker_factory(**{"socket.request.max.bytes": str(10 << 20),
                          "queued.max.request.bytes": str(20 << 20)}).start()
    try:
        pid = b.proc.pid
        base = rss_kib(pid)
        socks = []
        chunk = b"\x00" * (1 << 20)
        for _ in range(8):
            s = connect(b)
            s.setblocking(False)
            s.send(struct.pack(">i", 10 << 20))
            socks.append([s, 9 << 20])
        deadline = time.time() + 10
        while time.time() < deadline and any(left > 0 for _, left in socks):
            progressed = False
            for entry in socks:
                s, left = entry
                if left <= 0:
                    continue
                try:
                    n = s.send(chunk[:min(left, len(chunk))])
                    entry[1] -= n
                    progressed = True
                except BlockingIOError:
                    pass
            if not progressed:
                time.sleep(0.05)
        time.sleep(0.5)
        grew = (rss_kib(pid) - base) / 1024
        assert grew < 40, "broker RSS grew %.0f MiB reading 8 x 9 MiB" % grew
        assert sum(1 for _, left in socks if left <= 0) < 8  # some are held back, unread
        for s, _ in socks:
            s.close()
        assert api_versions_answered(b)
    finally:
        b.stop()


# ---- one request's work is sliced: a produce over many partitions of heavy batches ----

def gzip_batch(value, count=1):
    """A valid gzip batch of count records holding value (zeros inflate ~1000:1)."""
    import zlib
    from kafka_wire import _varint, crc32c
    recs = b""
    for i in range(count):
        body = b"\x00" + _varint(0) + _varint(i) + _varint(-1) + _varint(len(value)) + value + _varint(0)
        recs += _varint(len(body)) + body
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
    payload = c.compress(recs) + c.flush()
    ts = 1700000000000
    after_crc = struct.pack(">hiqqqhii", 1, count - 1, ts, ts, -1, -1, -1, count) + payload
    after_len = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


class Pinger:
    """ApiVersions every 5 ms on its own connection; the times answers came back."""

    def __init__(self, b):
        import threading
        self.s = connect(b)
        self.times = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        corr = 0
        while not self.stop:
            corr += 1
            self.s.sendall(frame(18, 0, corr, b""))
            c, _ = read_frame(self.s)
            assert c == corr
            self.times.append(time.monotonic())
            time.sleep(0.005)

    def close(self):
        self.stop = True
        self.t.join(10)
        self.s.close()

    def during(self, t0, t1):
        return sum(1 for t in self.times if t0 < t < t1)

    def longest_wait(self, t0, t1):
        """The longest time without an answer between t0 and t1."""
        ts = [t0] + [t for t in self.times if t0 < t < t1] + [t1]
        return max(b - a for a, b in zip(ts, ts[1:]))


def produce_many(b, topic, nparts, batch, acks, corr=1):
    name = topic.encode()
    body = struct.pack(">hhi", -1, acks, 30000) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">i", nparts)
    for p in range(nparts):
        body += struct.pack(">ii", p, len(batch)) + batch
    return frame(0, 7, corr, body)


def produce_errors(resp):
    off = 4
    nlen = struct.unpack_from(">h", resp, off)[0]
    off += 2 + nlen
    n = struct.unpack_from(">i", resp, off)[0]
    off += 4
    errs = []
    for _ in range(n):
        _, err = struct.unpack_from(">ih", resp, off)
        errs.append(err)
        off += 4 + 2 + 8 + 8 + 8
    return errs


def test_heavy_produce_is_sliced_and_others_are_served(broker):
    """One Produce over 48 partitions, each a gzip batch inflating to 32 MiB that is validated
    record by record: the loop yields between partitions, so another connection's requests
    keep being answered while it appends (they all waited for the whole request before)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("heavy", num_partitions=48, replication_factor=1)])["heavy"].result(30)
    batch = gzip_batch(b"\x00" * (32 << 20))
    p = Pinger(broker)
    try:
        time.sleep(0.2)
        with connect(broker) as s:
            t0 = time.monotonic()
            s.sendall(produce_many(broker, "heavy", 48, batch, -1))
            corr, resp = read_frame(s)
            t1 = time.monotonic()
        assert corr == 1 and produce_errors(resp) == [0] * 48
        answered, gap = p.during(t0, t1), p.longest_wait(t0, t1)
    finally:
        p.close()
    print("produce %.3f s, %d answers meanwhile, longest wait %.3f s" % (t1 - t0, answered, gap))
    assert gap < (t1 - t0) / 3, "%d ApiVersions answered during a %.2f s produce, one waited " \
        "%.2f s" % (answered, t1 - t0, gap)


def test_topic_deleted_while_a_produce_appends_in_slices(broker):
    """DeleteTopics between two slices of an acks=all produce to the same topic: the produce's
    sync must not touch the deleted partitions (ASan checks), and the broker goes on."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    batch = gzip_batch(b"\x00" * (32 << 20))
    for rnd in range(3):
        name = "doomed%d" % rnd
        a.create_topics([NewTopic(name, num_partitions=16, replication_factor=1)])[name].result(30)
        with connect(broker) as s, connect(broker) as d:
            s.sendall(produce_many(broker, name, 16, batch, -1))
            time.sleep(0.05)
            n = name.encode()
            d.sendall(frame(20, 1, 9, struct.pack(">ih", 1, len(n)) + n + struct.pack(">i", 30000)))
            corr, resp = read_frame(s)
            assert corr == 1 and len(produce_errors(resp)) == 16
            corr, _ = read_frame(d)
            assert corr == 9
        assert broker.alive()
    assert api_versions_answered(broker)
