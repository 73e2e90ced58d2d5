#!/usr/bin/env python3
"""Soak (issue 12, "Done when"): the ASan+UBSan broker under many producers, consumers and group
members that join and leave, plus hostile raw connections, for SOAK_SECONDS; then SIGTERM, exit 0,
no sanitizer report, and every acknowledged record read back from offset 0.

Run: `make soak` (600 s) or `make soak SOAK_SECONDS=60` (CI). Options: --bin, --seconds, --seed.
One process, a fixed number of threads (2-core machine); every loop ends at the deadline and every
socket and client call has a timeout."""
import argparse
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from kafka_wire import frame as wire_frame, read_frame, record_batch, s16  # noqa: E402
TOPICS = {"soak-a": 6, "soak-b": 3}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# ---- the raw wire (the same encodings as tests/integration/test_hostile_wire.py) ----


def frame(api, version, corr, body):
    return wire_frame(api, version, corr, body, client_id=b"soak")


def subscription(topics):
    """ConsumerProtocolSubscription v0, so librdkafka leaders can assign to raw members."""
    out = struct.pack(">hi", 0, len(topics)) + b"".join(s16(t) for t in topics)
    return out + struct.pack(">i", -1)


def join_body(group, member, meta, rebalance_ms=10000):
    return (s16(group) + struct.pack(">ii", 10000, rebalance_ms) + s16(member) + s16(None) +
            s16("consumer") + struct.pack(">i", 1) + s16("range") +
            struct.pack(">i", len(meta)) + meta)


def parse_join(body):
    err, gen = struct.unpack(">hi", body[4:10])
    off, out = 10, []
    for _ in range(3):  # protocol, leader, member id
        n = struct.unpack(">h", body[off:off + 2])[0]
        out.append(body[off + 2:off + 2 + max(n, 0)].decode())
        off += 2 + max(n, 0)
    return err, gen, out[1], out[2]


def leave_body(group, member):
    return s16(group) + struct.pack(">i", 1) + s16(member) + s16(None)


def sync_body(group, gen, member, assignments):
    body = s16(group) + struct.pack(">i", gen) + s16(member) + s16(None)
    body += struct.pack(">i", len(assignments))
    for m, data in assignments:
        body += s16(m) + struct.pack(">i", len(data)) + data
    return body


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.deadline = 0.0
        self.stop = threading.Event()
        self.stats = Stats()
        self.acked = set()        # keys acknowledged with acks=all or acks=1
        self.acked0 = set()       # keys sent with acks=0 (not required back)
        self.idempotent_tags = set()
        self.lock = threading.Lock()
        self.failures = []
        self.port = None
        self.proc = None

    # ---- the broker ----
    def start_broker(self):
        self.dir = tempfile.mkdtemp(prefix="gregor-soak-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.log_path = os.path.join(self.dir, "broker.log")
        self.log_file = open(self.log_path, "wb")
        cmd = [self.args.bin, "serve",
               "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
               "--override", "log.dirs=%s" % os.path.join(self.dir, "data"),
               "--override", "group.initial.rebalance.delay.ms=0",
               "--override", "offsets.topic.num.partitions=4"]
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        t_end = time.time() + 30
        while time.time() < t_end:
            if self.proc.poll() is not None:
                raise SystemExit("broker exited %s at start:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(frame(18, 0, 1, b""))
                    read_frame(s)
                    break
            except OSError:
                time.sleep(0.1)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        fs = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1)
                                  for t, n in TOPICS.items()])
        for f in fs.values():
            f.result(30)

    def log_tail(self, n=6000):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-n:]

    def alive(self):
        return self.proc.poll() is None

    def running(self):
        return not self.stop.is_set() and time.time() < self.deadline

    def nap(self, lo, hi):
        self.stop.wait(self.rng.uniform(lo, hi))

    # ---- producers: idempotent or not, acks all/1/0, some compressed; re-created now and then ----
    PRODUCER_KINDS = [
        {"enable.idempotence": True},
        {"enable.idempotence": True, "compression.type": "zstd"},
        {"acks": "all"},
        {"acks": "1", "compression.type": "lz4"},
        {"acks": "1"},
        {"acks": "0"},
    ]

    def producer_thread(self, idx):
        rng = random.Random(self.args.seed * 1000 + idx)
        gen = 0
        while self.running():
            kind = dict(self.PRODUCER_KINDS[(idx + gen) % len(self.PRODUCER_KINDS)])
            tag = "p%d.%d" % (idx, gen)
            gen += 1
            acks = "all" if kind.get("enable.idempotence") else kind.get("acks")
            if kind.get("enable.idempotence"):
                self.idempotent_tags.add(tag)
            conf = {"bootstrap.servers": self.bootstrap, "linger.ms": rng.choice([0, 5, 20]),
                    "message.timeout.ms": 30000, "socket.timeout.ms": 20000}
            conf.update(kind)
            p = Producer(conf)
            self.stats.add("producers")

            def report(err, msg, acks=acks):
                key = msg.key().decode()
                if err is not None:
                    self.stats.add("produce_errors")
                elif acks == "0":
                    with self.lock:
                        self.acked0.add(key)
                else:
                    with self.lock:
                        self.acked.add(key)
            life = time.time() + rng.uniform(3, 15)
            seq = 0
            while self.running() and time.time() < life:
                for _ in range(rng.randint(1, 40)):
                    topic = rng.choice(list(TOPICS))
                    value = (b"%s:%d;" % (tag.encode(), seq)) * rng.randint(1, 60)
                    try:
                        p.produce(topic, key=("%s:%d" % (tag, seq)).encode(), value=value,
                                  on_delivery=report)
                        seq += 1
                    except BufferError:
                        p.poll(0.1)
                        break
                p.poll(0)
                self.stop.wait(1.0 / self.args.rate * 20)
            left = p.flush(20)
            if left:
                self.stats.add("produce_unflushed", left)
            self.stats.add("produced", seq)

    # ---- consumers: classic and KIP-848 groups, closed and re-created at random ----
    GROUPS = [("soak-classic-0", "classic"), ("soak-classic-1", "classic"),
              ("soak-848-0", "consumer"), ("soak-848-1", "consumer")]

    def consumer_thread(self, idx):
        rng = random.Random(self.args.seed * 2000 + idx)
        group, protocol = self.GROUPS[idx % len(self.GROUPS)]
        while self.running():
            conf = {"bootstrap.servers": self.bootstrap, "group.id": group,
                    "auto.offset.reset": "earliest", "enable.auto.commit": rng.random() < 0.5,
                    "socket.timeout.ms": 20000}
            if protocol == "consumer":
                conf["group.protocol"] = "consumer"
            else:
                conf["session.timeout.ms"] = 10000
                conf["heartbeat.interval.ms"] = 1000
            c = Consumer(conf)
            self.stats.add("joins_" + protocol)

            def on_assign(consumer, parts):
                self.stats.add("assigns_" + protocol)

            c.subscribe(list(TOPICS), on_assign=on_assign)
            life = time.time() + rng.uniform(0.5, 12)
            while self.running() and time.time() < life:
                msgs = c.consume(num_messages=500, timeout=0.2)
                self.stats.add("consumed", len(msgs))
                if msgs and not conf["enable.auto.commit"] and rng.random() < 0.3:
                    try:
                        c.commit(asynchronous=True)
                    except Exception:
                        pass
            c.close()
            self.stats.add("leaves_" + protocol)
            self.nap(0, 1)

    # ---- raw members: JoinGroup + LeaveGroup pipelined on one socket during a rebalance ----
    def raw_churn_thread(self, idx):
        rng = random.Random(self.args.seed * 3000 + idx)
        rounds = 0
        while self.running():
            rounds += 1
            try:
                if rounds % 2:
                    self.raw_join_leave_real_group(rng)
                else:
                    self.raw_join_leave_pair("soak-raw-%d" % idx)
            except (OSError, ConnectionError, struct.error) as e:
                self.stats.add("raw_errors")
                if not self.alive():
                    self.failures.append("broker died during raw churn: %r" % e)
                    self.stop.set()
            self.nap(0.2, 2)

    def connect(self, timeout=15):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def raw_join_leave_real_group(self, rng):
        """Into a group librdkafka consumers use: the join triggers a rebalance, the leave is in
        the same write, the members rejoin around it."""
        group = self.GROUPS[rng.randrange(2)][0]
        meta = subscription(list(TOPICS))
        with self.connect() as s:
            s.sendall(frame(11, 5, 1, join_body(group, "", meta)))
            _, body = read_frame(s)
            err, _, _, member = parse_join(body)
            if err != 79:
                self.stats.add("raw_unexpected")
                return
            s.sendall(frame(11, 5, 2, join_body(group, member, meta)) +
                      frame(13, 3, 3, leave_body(group, member)))
            self.stats.add("joins_raw")
            for _ in range(2):
                corr, body = read_frame(s)
                if corr == 3 and struct.unpack(">h", body[4:6])[0] == 0:
                    self.stats.add("leaves_raw")

    def raw_join_leave_pair(self, group):
        """tests/integration/test_hostile_wire.py's case: A stable, B joins and leaves in one
        write, A rejoins; A's sync of the generation B left."""
        meta = b"\x00\x01"
        with self.connect() as a, self.connect() as b:
            a.sendall(frame(11, 5, 1, join_body(group, "", meta)))
            err, _, _, ma = parse_join(read_frame(a)[1])
            a.sendall(frame(11, 5, 2, join_body(group, ma, meta)))
            err, gen, _, _ = parse_join(read_frame(a)[1])
            if err != 0:
                self.stats.add("raw_unexpected")
                return
            a.sendall(frame(14, 3, 3, sync_body(group, gen, ma, [(ma, b"x")])))
            read_frame(a)
            b.sendall(frame(11, 5, 1, join_body(group, "", meta)))
            _, _, _, mb = parse_join(read_frame(b)[1])
            b.sendall(frame(11, 5, 2, join_body(group, mb, meta)) +
                      frame(13, 3, 3, leave_body(group, mb)))
            self.stats.add("joins_raw")
            time.sleep(0.05)
            a.sendall(frame(11, 5, 4, join_body(group, ma, meta)))
            err, gen2, _, _ = parse_join(read_frame(a)[1])
            for _ in range(2):
                corr, body = read_frame(b)
                if corr == 3 and struct.unpack(">h", body[4:6])[0] == 0:
                    self.stats.add("leaves_raw")
            a.sendall(frame(14, 3, 5, sync_body(group, gen2, ma, [(ma, b"x")])))
            read_frame(a)
            a.sendall(frame(13, 3, 6, leave_body(group, ma)))
            read_frame(a)

    # ---- hostile connections ----
    def hostile_thread(self, idx):
        rng = random.Random(self.args.seed * 4000 + idx)
        acts = [self.hostile_burst_unread, self.hostile_garbage, self.hostile_drop_mid_frame,
                self.hostile_huge_size, self.hostile_acks0_burst]
        while self.running():
            act = rng.choice(acts)
            try:
                act(rng)
                self.stats.add("hostile_" + act.__name__[8:])
            except OSError:
                self.stats.add("hostile_refused")  # the broker closed on us: expected
            self.nap(0.05, 0.5)

    def hostile_burst_unread(self, rng):
        with self.connect(5) as s:
            s.sendall(b"".join(frame(18, 0, i, b"") for i in range(rng.randint(500, 3000))))
            time.sleep(rng.uniform(0, 0.3))

    def hostile_garbage(self, rng):
        with self.connect(5) as s:
            for _ in range(rng.randint(1, 20)):
                body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
                api = rng.choice([rng.randint(-5, 80), 0, 1, 3, 11, 13, 14, 68])
                s.sendall(frame(api, rng.randint(-2, 20), rng.randint(0, 1 << 30), body))
            s.settimeout(0.2)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass

    def hostile_drop_mid_frame(self, rng):
        with self.connect(5) as s:
            full = frame(0, 7, 1, bytes(rng.randint(100, 5000)))
            s.sendall(full[:rng.randint(1, len(full) - 1)])

    def hostile_huge_size(self, rng):
        with self.connect(5) as s:
            s.sendall(struct.pack(">i", rng.choice([-1, 0x7FFFFFFF, 200 << 20, 90 << 20])) +
                      bytes(rng.randint(0, 65536)))

    def hostile_acks0_burst(self, rng):
        """acks=0 Produce requests (no answer) in one write, then the connection is dropped;
        every few requests' record set lies about its size."""
        topic = b"soak-b"
        batch = record_batch([b"acks0-burst"])
        with self.connect(5) as s:
            out = []
            for i in range(rng.randint(10, 300)):
                body = struct.pack(">hhi", -1, 0, 10000) + struct.pack(">ih", 1, len(topic)) + topic
                size = len(batch) if rng.random() < 0.9 else rng.choice([-2, len(batch) + 7, 1 << 30])
                body += struct.pack(">iii", 1, i % TOPICS["soak-b"], size) + batch
                out.append(frame(0, 7, i, body))
            s.sendall(b"".join(out))

    # ---- end: stop, check, read back ----
    def read_back(self):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "soak-checker",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "auto.offset.reset": "earliest"})
        parts = [TopicPartition(t, p, 0) for t, n in TOPICS.items() for p in range(n)]
        high = {}
        for tp in parts:
            high[(tp.topic, tp.partition)] = c.get_watermark_offsets(tp, timeout=20)[1]
        c.assign(parts)
        keys = set()
        dup = set()
        done = {k for k, h in high.items() if h == 0}
        t_end = time.time() + 300
        while len(done) < len(high) and time.time() < t_end:
            for m in c.consume(num_messages=1000, timeout=1):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        if m.offset() >= high[(m.topic(), m.partition())]:
                            done.add((m.topic(), m.partition()))
                    continue
                if m.key() is None:
                    continue  # the hostile acks=0 bursts' records
                k = m.key().decode(errors="replace")
                if k in keys:
                    dup.add(k)
                keys.add(k)
        c.close()
        return keys, dup, sum(high.values()), len(done) == len(high)

    def run(self):
        self.start_broker()
        t0 = time.time()
        self.deadline = t0 + self.args.seconds
        threads = []
        spawn = [(self.producer_thread, self.args.producers), (self.consumer_thread, self.args.consumers),
                 (self.raw_churn_thread, 2), (self.hostile_thread, 2)]
        for fn, n in spawn:
            for i in range(n):
                t = threading.Thread(target=fn, args=(i,), name="%s-%d" % (fn.__name__, i), daemon=True)
                t.start()
                threads.append(t)
        next_report = t0 + 30
        while time.time() < self.deadline and not self.stop.is_set():
            time.sleep(0.5)
            if not self.alive():
                self.failures.append("broker exited %s during the soak" % self.proc.returncode)
                self.stop.set()
            if time.time() >= next_report:
                next_report += 30
                print("soak: %3.0f s %s" % (time.time() - t0, self.brief()), flush=True)
        self.stop.set()
        for t in threads:
            t.join(60)
            if t.is_alive():
                self.failures.append("thread %s did not stop within 60 s" % t.name)
        soak_s = time.time() - t0
        keys, dup, high, complete = (set(), set(), 0, False)
        if self.alive():
            keys, dup, high, complete = self.read_back()
        missing = self.acked - keys
        # Retries may write an acks=1/all record twice; an idempotent producer's never.
        idem_dups = [k for k in dup if k.split(":")[0] in self.idempotent_tags]
        if idem_dups:
            self.failures.append("%d records of idempotent producers read twice, e.g. %s" %
                                 (len(idem_dups), sorted(idem_dups)[:5]))
        rc = self.stop_broker()
        log = open(self.log_path, "rb").read().decode(errors="replace")
        reports = sum(log.count(m) for m in SANITIZER_MARKS)
        if rc != 0:
            self.failures.append("broker exited %s on SIGTERM" % rc)
        if reports:
            self.failures.append("%d sanitizer report line(s) in the broker log" % reports)
        if not complete:
            self.failures.append("read-back did not reach every partition's high watermark")
        if missing:
            self.failures.append("%d acknowledged records not read back, e.g. %s" %
                                 (len(missing), sorted(missing)[:5]))
        s = self.stats.c
        print("soak summary: %.0f s under load, broker %s" % (soak_s, self.args.bin))
        print("  records: produced %d, acked (acks=all/1) %d, acks=0 sent %d, read back %d "
              "(high watermarks sum %d), acked missing %d, keys read twice %d (idempotent %d)" %
              (s.get("produced", 0), len(self.acked), len(self.acked0), len(keys), high,
               len(missing), len(dup), len(idem_dups)))
        print("  acks=0 records read back: %d of %d" % (len(self.acked0 & keys), len(self.acked0)))
        print("  clients: producers %d, delivery errors %d, consumed %d" %
              (s.get("producers", 0), s.get("produce_errors", 0), s.get("consumed", 0)))
        print("  groups: members joined classic %d / consumer %d / raw %d, left classic %d / consumer %d"
              " / raw %d; assignments received classic %d / consumer %d"
              % (s.get("joins_classic", 0), s.get("joins_consumer", 0), s.get("joins_raw", 0),
                 s.get("leaves_classic", 0), s.get("leaves_consumer", 0), s.get("leaves_raw", 0),
                 s.get("assigns_classic", 0), s.get("assigns_consumer", 0)))
        print("  hostile: " + ", ".join("%s %d" % (k[8:], v) for k, v in sorted(s.items())
                                        if k.startswith("hostile_")) +
              "; raw errors %d, unexpected %d" % (s.get("raw_errors", 0), s.get("raw_unexpected", 0)))
        print("  broker: exit %s, sanitizer reports %d, log %s" % (rc, reports, self.log_path))
        if self.failures:
            for f in self.failures:
                print("SOAK FAILED: " + f)
            print(self.log_tail(4000) if reports or rc != 0 else "")
            return 1
        print("SOAK OK")
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return 0

    def brief(self):
        s = self.stats.c
        return "acked %d consumed %d joins %d/%d/%d leaves %d/%d/%d hostile %d" % (
            len(self.acked), s.get("consumed", 0), s.get("joins_classic", 0),
            s.get("joins_consumer", 0), s.get("joins_raw", 0), s.get("leaves_classic", 0),
            s.get("leaves_consumer", 0), s.get("leaves_raw", 0),
            sum(v for k, v in s.items() if k.startswith("hostile_")))

    def stop_broker(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "timeout (SIGKILL after 60 s)"
        self.log_file.close()
        return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-asan", "gregor"))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 1)))
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--consumers", type=int, default=6)
    ap.add_argument("--rate", type=float, default=400, help="records/s per producer (about)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and log")
    args = ap.parse_args()
    sys.exit(Soak(args).run())


if __name__ == "__main__":
    main()
