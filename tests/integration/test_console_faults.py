"""The console's produce under faults (docs/CONSOLE.md): POST /api/topics/<t>/produce answers 200
only once the record is where a Produce with acks=all waits for it (the group commit's fsync,
then, on a ZooKeeper cluster, the high watermark: every ISR member has it). Checked as "every
acknowledged record is read back afterwards" (acknowledged set within the read set, at the
offset the answer gave):
- one node, kill -9 at a random point while several threads produce, restart, read with
  confluent-kafka (a few seeds);
- 3 brokers on ZooKeeper, replication factor 3, min.insync.replicas=2: a follower SIGSTOPped and
  resumed while the leader's console produces, then the leader killed -9; the new leader has
  every acknowledged record. With 2 of the 3 replicas down, the console refuses (503
  NOT_ENOUGH_REPLICAS, or NOT_ENOUGH_REPLICAS_AFTER_APPEND / 504 for a record caught while the
  ISR shrinks) and never answers 200. A record still waiting when its broker stops is dropped
  unanswered (the connection closes; the ASan build checks the rest).
- one node, records one after another: each 200 came after its own group commit (/metrics'
  fsync count), which kill -9 (the page cache survives it) cannot show;
- a follower stopped but still in the ISR: 504 REQUEST_TIMED_OUT after the console's 30 s.
Every wait bounded."""
import http.client
import json
import random
import re
import signal
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import Broker, free_port
from test_metrics import http_port

RECORDS_MAX = 300        # records one run tries to produce
PRODUCE_SECONDS = 20     # and for at most this long


def call(port, method, path, body=None, timeout=45):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        return r.status, json.loads(payload) if payload else None
    finally:
        c.close()


class Producers:
    """threads POSTing records "<tag>-<thread>-<n>" to one partition (or any) until stopped,
    RECORDS_MAX in all or PRODUCE_SECONDS; acked: {value: (partition, offset)} of the 200s,
    answers: every status/error seen (a connection cut by a kill counts as no answer)."""

    def __init__(self, port, topic, tag, threads=4, partition=None, pace=0.0):
        self.port, self.topic, self.tag, self.partition = port, topic, tag, partition
        self.pace = pace  # seconds each thread sleeps between records
        self.acked, self.answers = {}, []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sent = 0
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, i):
        deadline = time.time() + PRODUCE_SECONDS
        n = 0
        while not self.stopping.is_set() and time.time() < deadline:
            with self.lock:
                if self.sent >= RECORDS_MAX:
                    return
                self.sent += 1
            if self.pace:
                time.sleep(self.pace)
            value = "%s-%d-%d" % (self.tag, i, n)
            n += 1
            try:
                st, doc = call(self.port, "POST", "/api/topics/%s/produce" % self.topic,
                               {"partition": self.partition, "key": None, "value": value})
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)  # the broker went away: no answer, not acknowledged
                continue
            with self.lock:
                self.answers.append((st, doc.get("error") if isinstance(doc, dict) else None))
                if st == 200:
                    self.acked[value] = (doc["partition"], doc["offset"])

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(PRODUCE_SECONDS + 60)
        assert not any(t.is_alive() for t in self.threads)


def read_all(bootstrap, topic, partitions, timeout=60):
    """{(partition, offset): value} of every record up to each partition's high watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-%d" % random.randrange(1 << 30),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in partitions}
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        got, last = {}, {p: -1 for p in partitions}
        deadline = time.time() + timeout
        while time.time() < deadline and any(last[p] < ends[p] - 1 for p in partitions):
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got[(m.partition(), m.offset())] = m.value().decode()
            last[m.partition()] = max(last[m.partition()], m.offset())
        assert all(last[p] >= ends[p] - 1 for p in partitions), (last, ends)
        return got, ends
    finally:
        c.close()


def high_watermark(bootstrap, topic, partition):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-hw"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        c.close()


def check_acked_read(acked, got):
    missing = {v: at for v, at in acked.items() if got.get(at) != v}
    assert not missing, "acknowledged but not read back (%d of %d): %s" % (
        len(missing), len(acked), sorted(missing.items())[:10])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill9_one_node(tmp_path, seed):
    rnd = random.Random(seed)
    hp = free_port()
    b = Broker(str(tmp_path / "data"), overrides={"gregor.http.listener": "127.0.0.1:%d" % hp})
    b.start()
    try:
        st, doc = call(hp, "POST", "/api/topics", {"name": "kf", "partitions": 3})
        assert st == 201, doc
        prods = Producers(hp, "kf", "s%d" % seed).start()
        # kill -9 at a random point while it produces: after a random count of answers
        target = rnd.randrange(10, RECORDS_MAX - 50)
        deadline = time.time() + PRODUCE_SECONDS
        while time.time() < deadline and len(prods.answers) < target:
            time.sleep(0.001)
        b.kill9()
        prods.stop()
        acked = dict(prods.acked)
        # cut while producing: some acknowledged, some never answered
        assert target <= len(acked) < RECORDS_MAX, (target, len(acked))
        assert all(st == 200 for st, _ in prods.answers), prods.answers[:20]
        b.start()
        got, ends = read_all(b.bootstrap, "kf", [0, 1, 2])
        check_acked_read(acked, got)
        assert len(got) >= len(acked)
        # after the restart the console takes records again, at the log's end
        st, doc = call(hp, "POST", "/api/topics/kf/produce", {"partition": 0, "value": "after"})
        assert st == 200 and doc["offset"] == ends[0], (st, doc, ends)
    finally:
        rc = b.stop()
        assert rc == 0, b.log()
        text = open(b.log_path, errors="replace").read()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert bad not in text, text[text.index(bad):][:3000]


def test_cluster_sigstop_kill9_and_min_isr(tmp_path):
    from zk_fixture import wait_until, zk_cluster
    with zk_cluster(tmp_path, "/faults",
                    overrides={"replica.lag.time.max.ms": 3000,
                               "zookeeper.session.timeout.ms": 4000,
                               "controlled.shutdown.enable": "false"}) as by_id:
        brokers = list(by_id.values())
        port = {i: http_port(b) for i, b in by_id.items()}

        def md(i):
            return AdminClient({"bootstrap.servers": by_id[i].bootstrap}).list_topics(timeout=10)
        controller = md(1).controller_id
        st, doc = call(port[controller], "POST", "/api/topics",
                       {"name": "cf", "partitions": 3, "replication_factor": 3,
                        "configs": {"min.insync.replicas": "2"}})
        assert st == 201, doc
        # a partition not led by the controller: killing its leader leaves the controller up
        parts = md(controller).topics["cf"].partitions
        part = next(p for p in sorted(parts) if parts[p].leader != controller)
        leader = parts[part].leader
        assert sorted(parts[part].isrs) == [1, 2, 3], parts[part]
        follower = next(i for i in by_id if i not in (leader, controller))

        # A follower stopped, then resumed, while the leader's console produces: records wait
        # for it until it leaves the ISR (replica.lag.time.max.ms), then go on with 2 of 3.
        prods = Producers(port[leader], "cf", "c", threads=2, partition=part, pace=0.1).start()
        time.sleep(1)
        by_id[follower].proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: sorted(md(controller).topics["cf"].partitions[part].isrs) ==
                       sorted([leader, controller]), 30, what="the stopped follower out of the ISR")
            n = len(prods.acked)
            wait_until(lambda: len(prods.acked) > n + 5, 20, what="acknowledged with 2 of 3 in the ISR")
        finally:
            by_id[follower].proc.send_signal(signal.SIGCONT)
        time.sleep(1)
        by_id[leader].kill9()
        prods.stop()
        acked = dict(prods.acked)
        assert len(acked) >= 10, prods.answers[:20]
        bad = [a for a in prods.answers if a[0] != 200 and a != (503, "NOT_LEADER_OR_FOLLOWER")]
        assert not bad, bad[:20]

        live = [i for i in by_id if i != leader]

        def new_leader():
            p = md(controller).topics["cf"].partitions[part]
            return p.leader if p.leader in live else None
        nl = wait_until(new_leader, 40, what="a new leader elected")
        # The new leader's high watermark moves past what the old one acknowledged once its
        # followers fetched from it (Kafka's rule): readable then.
        top = max(off for _, off in acked.values())
        wait_until(lambda: high_watermark(by_id[nl].bootstrap, "cf", part) > top, 30,
                   what="the new leader's high watermark past every acknowledged record")
        got, _ = read_all(by_id[nl].bootstrap, "cf", [part])
        check_acked_read(acked, got)

        # 2 of 3 replicas down (the old leader killed, the other one stopped), min.insync 2:
        # never 200; once the ISR shrank, 503 NOT_ENOUGH_REPLICAS before the append.
        other = next(i for i in live if i != nl)
        by_id[other].proc.send_signal(signal.SIGSTOP)
        try:
            seen = []

            def refused():
                st, doc = call(port[nl], "POST", "/api/topics/cf/produce",
                               {"partition": part, "value": "no"})
                seen.append((st, doc.get("error")))
                return (st, doc.get("error")) == (503, "NOT_ENOUGH_REPLICAS")
            wait_until(refused, 60, interval=0.3, what="503 NOT_ENOUGH_REPLICAS")
            allowed = {(503, "NOT_ENOUGH_REPLICAS"), (503, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"),
                       (504, "REQUEST_TIMED_OUT")}
            assert set(seen) <= allowed, seen
            for _ in range(3):
                assert refused()
        finally:
            by_id[other].proc.send_signal(signal.SIGCONT)

        # A record waiting for a stopped follower when its broker stops: dropped unanswered
        # (the connection closes), never answered after the listener freed the request.
        wait_until(lambda: sorted(md(nl).topics["cf"].partitions[part].isrs) == sorted(live), 60,
                   what="the resumed follower back in the ISR")
        by_id[other].proc.send_signal(signal.SIGSTOP)
        try:
            got = {}

            def produce():
                try:
                    got["answer"] = call(port[nl], "POST", "/api/topics/cf/produce",
                                         {"partition": part, "value": "pending"}, timeout=40)
                except (OSError, http.client.HTTPException) as e:
                    got["error"] = e
            th = threading.Thread(target=produce)
            th.start()
            time.sleep(0.5)
            assert th.is_alive(), got  # waits: the stopped follower is still in the ISR
            for i in live:
                assert by_id[i].proc.poll() is None or i == other, by_id[i].log()
            assert by_id[nl].stop() == 0, by_id[nl].log()
            th.join(40)
            assert not th.is_alive() and "error" in got, got
        finally:
            by_id[other].proc.send_signal(signal.SIGCONT)
        assert by_id[other].stop() == 0, by_id[other].log()
        for b in brokers:
            text = open(b.log_path, errors="replace").read()
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert bad not in text, text[text.index(bad):][:3000]


def flushes(hp):
    """The group commits so far: the count of /metrics' fsync histogram."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % hp, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^kafka_log_logflushstats_logflushrateandtimems_count(?:\{\})? (\d+)", text, re.M)
    assert m, text[-3000:]
    return int(m.group(1))


def test_one_node_synced_before_200(tmp_path):
    """kill -9 keeps the page cache, so the test above cannot see a 200 before the fsync: here
    each 200 of records produced one after another must have had its own group commit (acks=1
    records are left to the page cache, no commit at all)."""
    hp = free_port()
    b = Broker(str(tmp_path / "data"), overrides={"gregor.http.listener": "127.0.0.1:%d" % hp})
    b.start()
    try:
        st, doc = call(hp, "POST", "/api/topics", {"name": "sy", "partitions": 1})
        assert st == 201, doc
        before = flushes(hp)
        for k in range(20):
            st, doc = call(hp, "POST", "/api/topics/sy/produce", {"partition": 0, "value": "r%d" % k})
            assert st == 200 and doc == {"partition": 0, "offset": k}, (st, doc)
        assert flushes(hp) - before >= 20
    finally:
        assert b.stop() == 0, b.log()


def test_cluster_timeout_504(tmp_path):
    """A follower stopped but still in the ISR (replica.lag.time.max.ms and its ZooKeeper
    session both outlast the wait): the record waits for it and is answered 504
    REQUEST_TIMED_OUT after the console's 30 s, never 200; resumed, the console takes records
    again."""
    from zk_fixture import ZooKeeperServer, start_brokers, wait_until, zookeeper_available
    assert zookeeper_available(), "Debian's zookeeper package is missing: make test-deps"
    z = ZooKeeperServer(tick_ms=3000)  # sessions up to 20 ticks
    z.start()
    brokers = []
    try:
        brokers = start_brokers(tmp_path, z.connect + "/timeout", ids=(1, 2),
                                overrides={"gregor.http.listener": "127.0.0.1:0",
                                           "replica.lag.time.max.ms": 120000,
                                           "zookeeper.session.timeout.ms": 60000,
                                           "controlled.shutdown.enable": "false"})
        by_id = {i + 1: b for i, b in enumerate(brokers)}
        port = {i: http_port(b) for i, b in by_id.items()}
        st, doc = call(port[1], "POST", "/api/topics",
                       {"name": "to", "partitions": 2, "replication_factor": 2})
        assert st == 201, doc
        md = AdminClient({"bootstrap.servers": by_id[1].bootstrap}).list_topics(timeout=10)
        part = 0
        leader = md.topics["to"].partitions[part].leader
        follower = next(i for i in by_id if i != leader)
        wait_until(lambda: call(port[leader], "POST", "/api/topics/to/produce",
                                {"partition": part, "value": "first"})[0] == 200, 20,
                   what="a first record acknowledged")
        by_id[follower].proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.time()
            st, doc = call(port[leader], "POST", "/api/topics/to/produce",
                           {"partition": part, "value": "waits"}, timeout=60)
            took = time.time() - t0
            assert (st, doc["error"]) == (504, "REQUEST_TIMED_OUT"), (st, doc)
            assert 25 <= took <= 45, took
        finally:
            by_id[follower].proc.send_signal(signal.SIGCONT)
        st, doc = call(port[leader], "POST", "/api/topics/to/produce",
                       {"partition": part, "value": "after"})
        assert st == 200, (st, doc)
        for b in brokers:
            assert b.stop() == 0, b.log()
    finally:
        for b in brokers:
            try:
                b.stop()
            except Exception:
                pass
        z.stop()
