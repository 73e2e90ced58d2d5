#!/usr/bin/env python3
"""Loop-stall probe (issue 12): how long one client's work keeps every other client waiting.

For each probe a fresh broker is started; a "pinger" (a separate process, so the probe's Python
work cannot delay it) sends ApiVersions v0 every 5 ms on its own connection and records each
round trip. The probe runs; we report its duration and the pinger's worst and p99 round trip
while it ran (a ping still unanswered when the probe ends counts with the time it has waited).
Each probe is cut off after --timeout seconds and reported as ">= timeout".

    bench/stall_probe.py --bin build/gregor                     # one binary, all probes
    bench/stall_probe.py --bin old=/path/gregor --bin new=build/gregor --probes join,kip848

Prints a Markdown table (one row per probe and binary). Probes:
  join        classic JoinGroup v5 storm: 1,500 members x 100 protocols (the MEMBER_ID_REQUIRED
              step pipelined on 4 sockets; the second join, which a broker parks until the
              rebalance completes, on one socket per member as a parked request holds its
              connection); group.initial.rebalance.delay.ms=3000 (Kafka's default), so the
              duration includes that delay. Every member lists p000..p099 in that order
  join-rotated  the same, but member i lists the 100 names starting at p(i mod 100): all are
              common, preferences differ (what makes protocol selection work hardest)
  kip848      2,000 members heartbeat (join, then one heartbeat at their epoch) into a group on an
              8,000-partition topic, ConsumerGroupHeartbeat v1 pipelined on 4 sockets
  create      CreateTopics of one 19,900-partition topic, one request
  create-5000 the same with 5,000 partitions (within the descriptor budget of a 20,000 limit)
  delete      DeleteTopics of a 5,000-partition topic (created in the setup), measured until 3 s
              after its answer (a broker may delete the files after answering)
  produce     one Produce (acks=1) over 48 partitions, each a gzip batch of one record of
              32 MiB of zeros (~32 KB on the wire) that validation inflates
  burst       3,000 ApiVersions v0 in one write on another socket, read after the write
  listoffsets 10 ListOffsets (by timestamp) pipelined at a zstd batch of 4 records whose values
              are 1 GiB of zeros each (4 GiB inflated, ~130 KB on the wire)
  listoffsets-valid  the same with 4 x 60 MiB (240 MiB inflated: accepted by produce)
  retention   1,000 segments of ~1 MB (one 1,000,000-byte record each, timestamped 2 h ago) in one
              partition; log.retention.ms=1 h, log.segment.delete.delay.ms=0, the first retention
              check 40 s after start: measured from the produce's end until every old segment's
              files are gone (then 1 s more), so the pass that deletes them all is inside
  txn-first   the first transactional id of a fresh broker: FindCoordinator v1 (key type 1) until
              it names a coordinator, then InitProducerId v1 until it answers NONE (what creates
              __transaction_state's 50 partitions), each retried every 20 ms
  emfile      soft RLIMIT_NOFILE lowered to the broker's open fds + 4 (prlimit), 50 connections
              opened beyond it, 5 s measured: broker CPU seconds and log growth
"""
import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from kafka_wire import _varint, crc32c, cstr, s16, uvarint  # noqa: E402

PROBES = ["join", "join-rotated", "kip848", "create", "create-5000", "delete", "burst",
          "produce", "listoffsets", "listoffsets-valid", "retention", "emfile", "txn-first"]


# ---- wire helpers ----

def frame(api, version, corr, body, flexible=False):
    data = struct.pack(">hhih", api, version, corr, 5) + b"stall" + (b"\x00" if flexible else b"")
    data += body
    return struct.pack(">i", len(data)) + data


class Deadline(Exception):
    pass


def recv_exact(s, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Deadline()
        s.settimeout(min(left, 1.0))
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            continue
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def read_frame(s, deadline):
    size = struct.unpack(">i", recv_exact(s, 4, deadline))[0]
    resp = recv_exact(s, size, deadline)
    return struct.unpack(">i", resp[:4])[0], resp[4:]


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def pipelined(port, frames, nsock, deadline):
    """Sends the frames spread over nsock sockets (one write each) and returns the response
    bodies in frame order (correlation id = index)."""
    socks = [connect(port) for _ in range(nsock)]
    try:
        share = [frames[i::nsock] for i in range(nsock)]
        writers = [threading.Thread(target=s.sendall, args=(b"".join(f),), daemon=True)
                   for s, f in zip(socks, share)]
        for w in writers:
            w.start()
        out = [None] * len(frames)
        errs = []

        def reader(s, n):
            try:
                for _ in range(n):
                    corr, body = read_frame(s, deadline)
                    out[corr] = body
            except Exception as e:  # noqa: BLE001 (reported as the probe's outcome)
                errs.append(e)
        readers = [threading.Thread(target=reader, args=(s, len(f)), daemon=True)
                   for s, f in zip(socks, share)]
        for r in readers:
            r.start()
        for r in readers:
            r.join(max(0, deadline - time.monotonic()) + 1)
        if errs:
            raise errs[0]
        if any(r.is_alive() for r in readers):
            raise Deadline()
        return out
    finally:
        for s in socks:
            s.close()


# ---- the pinger (its own process) ----

def pinger_main(port, interval):
    s = connect(port)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    corr = 0
    req = frame(18, 0, 0, b"")
    out = sys.stdout
    while not stop.is_set():
        t0 = time.monotonic()
        out.write("S %.6f\n" % t0)
        out.flush()
        s.sendall(req)
        size = struct.unpack(">i", recv_exact(s, 4, t0 + 3600))[0]
        recv_exact(s, size, t0 + 3600)
        t1 = time.monotonic()
        out.write("R %.6f %.6f\n" % (t0, t1 - t0))
        out.flush()
        corr += 1
        wait = t0 + interval - time.monotonic()
        if wait > 0:
            stop.wait(wait)


class Pinger:
    def __init__(self, port, interval):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--pinger",
                                      str(port), "--interval", str(interval)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.samples = []       # (send time, rtt)
        self.outstanding = None  # send time of the ping not answered yet
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            f = line.split()
            with self.lock:
                if f[0] == "S":
                    self.outstanding = float(f[1])
                else:
                    self.samples.append((float(f[1]), float(f[2])))
                    self.outstanding = None

    def window(self, t0, t1):
        """RTTs of pings sent in [t0, t1], plus the one still waiting at t1."""
        with self.lock:
            rtts = [r for ts, r in self.samples if t0 <= ts <= t1]
            if self.outstanding is not None and self.outstanding <= t1:
                rtts.append(t1 - self.outstanding)
        return rtts

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- the broker ----

class Broker:
    def __init__(self, binary, overrides=None):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="gregor-stall-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = os.path.join(self.dir, "broker.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
             "--override", "log.dirs=%s" % os.path.join(self.dir, "data"),
             "--override", "offsets.topic.num.partitions=4"] +
            [a for kv in (overrides or {"group.initial.rebalance.delay.ms": "0"}).items()
             for a in ("--override", "%s=%s" % kv)],
            stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited %s at start" % self.proc.returncode)
            try:
                with connect(self.port) as s:
                    s.sendall(frame(18, 0, 1, b""))
                    read_frame(s, time.monotonic() + 2)
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not answer")

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def state(self):
        rc = self.proc.poll()
        if rc is None:
            return None
        if rc < 0:
            return "broker died (%s)" % signal.Signals(-rc).name
        return "broker exited %d" % rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def create_topic_request(name, partitions, corr=0, timeout_ms=300000):
    """CreateTopics v4 (one topic, replication 1, no assignments or configs)."""
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">ib", timeout_ms, 0)
    return frame(19, 4, corr, body)


def create_topic_error(body):
    off = 4 + 4  # throttle, topic count
    n = struct.unpack(">h", body[off:off + 2])[0]
    return struct.unpack(">h", body[off + 2 + n:off + 4 + n])[0]


def create_topic(port, name, partitions, deadline):
    with connect(port) as s:
        s.sendall(create_topic_request(name, partitions))
        return create_topic_error(read_frame(s, deadline)[1])


# ---- probes: each returns a note; raises Deadline when cut off ----

def probe_join(b, deadline, members=1500, protocols=100, rotate=False):
    group = "storm"
    names = [s16("p%03d" % i) + struct.pack(">i", 4) + b"meta" for i in range(protocols)]

    def join(member, corr):
        k = corr % protocols if rotate else 0  # member corr prefers p(k), then p(k+1), ...
        body = s16(group) + struct.pack(">ii", 30000, 60000) + s16(member) + s16(None)
        body += s16("consumer") + struct.pack(">i", protocols) + b"".join(names[k:] + names[:k])
        return frame(11, 5, corr, body)

    first = pipelined(b.port, [join("", i) for i in range(members)], 4, deadline)
    ids = []
    for body in first:
        err = struct.unpack(">h", body[4:6])[0]
        off = 10
        for _ in range(2):  # protocol name, leader
            off += 2 + max(struct.unpack(">h", body[off:off + 2])[0], 0)
        n = struct.unpack(">h", body[off:off + 2])[0]
        ids.append((err, body[off + 2:off + 2 + n].decode()))
    if any(err != 79 for err, _ in ids):
        return "first join errors %s" % sorted({e for e, _ in ids})
    socks = [connect(b.port) for _ in range(members)]
    try:
        for i, (s, (_, mid)) in enumerate(zip(socks, ids)):
            s.sendall(join(mid, i))
        errs = {}
        for s in socks:
            _, body = read_frame(s, deadline)
            e = struct.unpack(">h", body[4:6])[0]
            errs[e] = errs.get(e, 0) + 1
    finally:
        for s in socks:
            s.close()
    return "joins answered: " + ", ".join("error %d x%d" % kv for kv in sorted(errs.items()))


def probe_join_rotated(b, deadline):
    return probe_join(b, deadline, rotate=True)


def probe_kip848_setup(b, deadline):
    err = create_topic(b.port, "big", 8000, deadline)
    return "setup CreateTopics big (8,000) error %d" % err


def probe_kip848(b, deadline, members=2000):
    group = "big-group"

    def hb(mid, epoch, topics, corr):
        body = cstr(group) + cstr(mid) + struct.pack(">i", epoch) + cstr(None) + cstr(None)
        body += struct.pack(">i", 60000)
        body += uvarint(0) if topics is None else uvarint(len(topics) + 1) + b"".join(cstr(t) for t in topics)
        body += cstr(None) + cstr(None) + uvarint(0) + uvarint(0)  # regex, assignor, owned, tags
        return frame(68, 1, corr, body, flexible=True)

    def parse(body):
        off = 1 + 4  # response header tags, throttle
        err = struct.unpack(">h", body[off:off + 2])[0]
        off += 2
        for _ in range(2):  # message, member id: compact nullable strings
            n = shift = 0
            while True:
                byte = body[off]
                off += 1
                n |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            off += max(n - 1, 0)
        return err, struct.unpack(">i", body[off:off + 4])[0]

    ids = ["member-%05d-%s" % (i, os.urandom(4).hex()) for i in range(members)]
    first = [parse(x) for x in pipelined(b.port, [hb(m, 0, ["big"], i) for i, m in enumerate(ids)],
                                         4, deadline)]
    second = [parse(x) for x in pipelined(b.port, [hb(m, e, None, i) for i, (m, (_, e))
                                                   in enumerate(zip(ids, first))], 4, deadline)]
    errs = sorted({e for e, _ in first + second})
    return "errors %s, last epoch %d" % (errs, max(e for _, e in second))


def probe_create(b, deadline):
    return "error %d" % create_topic(b.port, "wide", 19900, deadline)


def probe_txn_first(b, deadline):
    tries = 0
    with connect(b.port) as s:
        for api, body in ((10, s16("stall-txn") + b"\x01"),
                          (22, s16("stall-txn") + struct.pack(">i", 60000))):
            while True:
                tries += 1
                s.sendall(frame(api, 1, tries, body))
                _, resp = read_frame(s, deadline)
                err = struct.unpack(">h", resp[4:6])[0]
                if err == 0:
                    break
                if err not in (14, 15, 16, 51):   # COORDINATOR_{LOAD_IN_PROGRESS,NOT_AVAILABLE}, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS
                    return "api %d error %d" % (api, err)
                time.sleep(0.02)
    return "%d requests" % tries


def probe_burst(b, deadline, n=3000):
    with connect(b.port) as s:
        s.sendall(b"".join(frame(18, 0, i, b"") for i in range(n)))
        for i in range(n):
            corr, _ = read_frame(s, deadline)
            if corr != i:
                return "answer %d has correlation id %d" % (i, corr)
    return "%d answers in order" % n


BOMB_RECORDS = 4
BOMB_VALUE = (1 << 30) - 64   # listoffsets: 4 GiB inflated (produce refuses it past 256 MiB now)
VALID_VALUE = (60 << 20) - 64  # listoffsets-valid: 240 MiB inflated, under the produce cap


def bomb_records_zstd(value=BOMB_VALUE):
    """The records of the bomb, zstd-compressed by the zstd CLI as a stream (cached)."""
    path = os.path.join(tempfile.gettempdir(), "gregor-stall-bomb-%dx%d.zst" % (BOMB_RECORDS, value))
    if os.path.exists(path):
        return open(path, "rb").read()
    zeros = bytes(16 << 20)
    with open(path + ".tmp", "wb") as out:
        z = subprocess.Popen(["zstd", "-1", "-q", "-c"], stdin=subprocess.PIPE, stdout=out)
        for i in range(BOMB_RECORDS):
            body = b"\x00" + _varint(i) + _varint(i) + _varint(-1) + _varint(value)
            z.stdin.write(_varint(len(body) + value + 1) + body)
            left = value
            while left:
                n = min(left, len(zeros))
                z.stdin.write(memoryview(zeros)[:n])
                left -= n
            z.stdin.write(_varint(0))  # no headers
        z.stdin.close()
        if z.wait() != 0:
            raise RuntimeError("zstd failed")
    os.rename(path + ".tmp", path)
    return open(path, "rb").read()


def bomb_batch(ts, value=BOMB_VALUE):
    recs = bomb_records_zstd(value)
    after_crc = struct.pack(">hiqqqhii", 4, BOMB_RECORDS - 1, ts, ts + BOMB_RECORDS - 1, -1, -1, -1,
                            BOMB_RECORDS) + recs
    after_len = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def probe_listoffsets_setup(b, deadline, value=BOMB_VALUE):
    global BOMB_TS
    BOMB_TS = int(time.time() * 1000)
    batch = bomb_batch(BOMB_TS, value)
    err = create_topic(b.port, "bomb", 1, deadline)
    name = b"bomb"
    body = struct.pack(">hhi", -1, -1, 30000) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(batch)) + batch
    with connect(b.port) as s:
        s.sendall(frame(0, 7, 1, body))
        resp = read_frame(s, deadline)[1]
    off = 4 + 2 + len(name) + 4
    _, perr, base = struct.unpack(">ihq", resp[off:off + 14])
    return "setup: batch %d bytes on the wire, create error %d, produce error %d base %d" % (
        len(batch), err, perr, base)


def probe_listoffsets(b, deadline, n=10):
    name = b"bomb"
    target = BOMB_TS + 2  # inside the batch: answered by offset 2

    def req(corr):
        body = struct.pack(">i", -1) + struct.pack(">ih", 1, len(name)) + name
        body += struct.pack(">iiq", 1, 0, target)
        return frame(2, 1, corr, body)
    with connect(b.port) as s:
        s.sendall(b"".join(req(i) for i in range(n)))
        answers = set()
        for _ in range(n):
            _, body = read_frame(s, deadline)
            off = 4 + 2 + len(name) + 4
            answers.add(struct.unpack(">ihqq", body[off:off + 22])[1:])
    return "answers (error, timestamp - first, offset): %s (Kafka: (0, 2, 2))" % sorted(
        (e, t - BOMB_TS, o) for e, t, o in answers)


def probe_create_5000(b, deadline):
    return "error %d" % create_topic(b.port, "wide", 5000, deadline)


def probe_delete_setup(b, deadline):
    return "setup: create 5,000 partitions error %d" % create_topic(b.port, "doomed", 5000, deadline)


def probe_delete(b, deadline):
    name = b"doomed"
    body = struct.pack(">ih", 1, len(name)) + name + struct.pack(">i", 300000)
    with connect(b.port) as s:
        t0 = time.monotonic()
        s.sendall(frame(20, 1, 1, body))
        _, resp = read_frame(s, deadline)
        answered = time.monotonic() - t0
    time.sleep(3.0)  # the files may go in slices after the answer: keep measuring meanwhile
    off = 4 + 4 + 2 + len(name)
    return "error %d, answered after %.3f s (then 3 s more measured)" % (
        struct.unpack(">h", resp[off:off + 2])[0], answered)


def gzip_zero_batch(value_len):
    import zlib
    body = b"\x00" + _varint(0) + _varint(0) + _varint(-1) + _varint(value_len)
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
    recs = c.compress(_varint(len(body) + value_len + 1) + body)
    zeros = bytes(1 << 20)
    for _ in range(value_len >> 20):
        recs += c.compress(zeros)
    recs += c.compress(bytes(value_len & ((1 << 20) - 1))) + c.compress(_varint(0)) + c.flush()
    ts = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 1, 0, ts, ts, -1, -1, -1, 1) + recs
    after_len = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def probe_produce_setup(b, deadline):
    return "setup: create 48 partitions error %d" % create_topic(b.port, "heavy", 48, deadline)


def probe_produce(b, deadline, parts=48):
    batch = gzip_zero_batch(32 << 20)
    name = b"heavy"
    body = struct.pack(">hhi", -1, 1, 30000) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">i", parts)
    for p in range(parts):
        body += struct.pack(">ii", p, len(batch)) + batch
    with connect(b.port) as s:
        s.sendall(frame(0, 7, 1, body))
        _, resp = read_frame(s, deadline)
    off = 4 + 2 + len(name) + 4
    errs = [struct.unpack_from(">h", resp, off + i * 30 + 4)[0] for i in range(parts)]
    return "errors %s" % sorted(set(errs))


RETENTION_SEGMENTS = 1000


def probe_retention_setup(b, deadline):
    from kafka_wire import record_batch
    err = create_topic(b.port, "aged", 1, deadline)
    batch = record_batch([bytes(1000000)], ts=int(time.time() * 1000) - 2 * 3600 * 1000)
    name = b"aged"
    body = struct.pack(">hhi", -1, 1, 30000) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(batch)) + batch
    errs = set()
    with connect(b.port) as s:
        for i in range(RETENTION_SEGMENTS):
            s.sendall(frame(0, 7, i + 1, body))
            _, resp = read_frame(s, deadline)
            off = 4 + 2 + len(name) + 4 + 4
            errs.add(struct.unpack_from(">h", resp, off)[0])
    return "setup: create error %d, %d produces errors %s" % (err, RETENTION_SEGMENTS, sorted(errs))


def probe_retention(b, deadline):
    pdir = os.path.join(b.dir, "data", "aged-0")
    t0 = time.monotonic()
    while True:
        logs = [f for f in os.listdir(pdir) if f.endswith(".log") or f.endswith(".log.deleted")]
        if len(logs) <= 1:
            break
        if time.monotonic() > deadline:
            raise Deadline()
        time.sleep(0.05)
    gone = time.monotonic() - t0
    time.sleep(1.0)
    return "old segments gone %.1f s after the probe began (then 1 s more measured)" % gone


def probe_emfile(b, deadline, seconds=5.0, extra=50):
    pid = b.proc.pid
    out = subprocess.run(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings",
                          "--output=SOFT,HARD"], check=True, capture_output=True, text=True)
    soft, hard = out.stdout.split()
    nfds = len(os.listdir("/proc/%d/fd" % pid))
    subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:%s" % (nfds + 4, hard)], check=True)
    log0 = os.path.getsize(b.log_path)
    socks = []
    try:
        cpu0 = b.cpu_seconds()
        for _ in range(extra):
            socks.append(socket.create_connection(("127.0.0.1", b.port), timeout=5))
        end = min(time.monotonic() + seconds, deadline)
        while time.monotonic() < end and b.proc.poll() is None:
            time.sleep(0.1)
        cpu = b.cpu_seconds() - cpu0
        grew = os.path.getsize(b.log_path) - log0
    finally:
        for s in socks:
            s.close()
        if b.proc.poll() is None:
            subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%s:%s" % (soft, hard)], check=True)
    return "broker CPU %.2f s in %.0f s, log +%s" % (cpu, seconds, human(grew))


def human(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return "%.0f %s" % (n, unit) if unit == "B" else "%.1f %s" % (n, unit)
        n /= 1024.0


# The storm's group starts with Kafka's default initial delay (3 s, extended while members keep
# coming): with 0 the first generation completes with the few members that joined first, and
# the next waits 30 s for those (which do not rejoin here) to time out.
OVERRIDES = {"join": {"group.initial.rebalance.delay.ms": "3000"},
             "retention": {"group.initial.rebalance.delay.ms": "0", "log.segment.bytes": "1048576",
                           "log.retention.ms": "3600000", "log.segment.delete.delay.ms": "0",
                           "log.retention.check.interval.ms": "40000"},
             "join-rotated": {"group.initial.rebalance.delay.ms": "3000"}}
SETUP = {"kip848": probe_kip848_setup, "listoffsets": probe_listoffsets_setup,
         "listoffsets-valid": lambda b, d: probe_listoffsets_setup(b, d, VALID_VALUE),
         "delete": probe_delete_setup, "produce": probe_produce_setup,
         "retention": probe_retention_setup}
RUN = {"join": probe_join, "join-rotated": probe_join_rotated, "kip848": probe_kip848, "create": probe_create, "burst": probe_burst,
       "listoffsets": probe_listoffsets, "emfile": probe_emfile, "create-5000": probe_create_5000,
       "listoffsets-valid": probe_listoffsets, "delete": probe_delete, "produce": probe_produce,
       "retention": probe_retention, "txn-first": probe_txn_first}


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))] if v else float("nan")


def fmt_s(x):
    return "%.3f s" % x if x < 10 else "%.1f s" % x


def run_probe(label, binary, name, timeout, interval):
    b = Broker(binary, OVERRIDES.get(name))
    notes = []
    row = {"label": label, "probe": name}
    try:
        if name in SETUP:
            notes.append(SETUP[name](b, time.monotonic() + 600))
        pinger = Pinger(b.port, interval)
        time.sleep(0.5)
        t0 = time.monotonic()
        deadline = t0 + timeout
        cut = False
        try:
            notes.append(RUN[name](b, deadline))
        except Deadline:
            cut = True
        except (OSError, ConnectionError, struct.error, IndexError) as e:
            notes.append("probe failed: %s" % (e,))
        t1 = time.monotonic()
        time.sleep(0.05)
        rtts = pinger.window(t0, t1)
        dead = b.state()
        if dead:
            notes.append(dead)
        pinger.close()
        row.update(duration=(">= " if cut else "") + fmt_s(t1 - t0),
                   worst=(">= " if cut else "") + ("%.1f ms" % (max(rtts) * 1000) if rtts else "-"),
                   p99=("%.1f ms" % (pct(rtts, 99) * 1000)) if rtts else "-",
                   pings=len(rtts), note="; ".join(notes))
    finally:
        b.stop()
    return row


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--pinger":
        interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.005
        try:
            pinger_main(int(sys.argv[2]), interval)
        except (OSError, ConnectionError):
            pass
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True,
                    help="broker binary, or label=binary; repeat to compare")
    ap.add_argument("--probes", default=",".join(PROBES))
    ap.add_argument("--timeout", type=float, default=120.0, help="per probe, seconds")
    ap.add_argument("--interval", type=float, default=0.005, help="pinger period, seconds")
    args = ap.parse_args()
    bins = []
    for spec in args.bin:
        label, _, path = spec.rpartition("=")
        bins.append((label or path, os.path.abspath(path)))
    rows = []
    print("| probe | binary | probe duration | pinger worst RTT | pinger p99 RTT | pings | outcome |")
    print("|---|---|---|---|---|---|---|")
    for name in args.probes.split(","):
        for label, path in bins:
            r = run_probe(label, path, name, args.timeout, args.interval)
            rows.append(r)
            print("| %s | %s | %s | %s | %s | %d | %s |" % (name, label, r["duration"], r["worst"],
                                                          r["p99"], r["pings"], r["note"]), flush=True)


if __name__ == "__main__":
    main()
