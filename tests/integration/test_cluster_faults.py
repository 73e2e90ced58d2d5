"""Faults on a cluster (issue 15): a 3-node ZooKeeper ensemble and 3 gregor brokers, a short
ZooKeeper session (5 s). kill -9 of the controller, kill -9 of a broker and its restart, kill -9
and restart of a ZooKeeper follower and then of the ZooKeeper leader, SIGSTOP of a broker past its
session, and every ZooKeeper node gone under a running producer, shorter and longer than the
session. After each, every acknowledged record of the partitions that are up is read back (the
acked (partition, offset, value) set equals what a consumer from offset 0 reads), and no broker's
log holds an ASan/UBSan report. Times measured are printed as "MEASURED ..." (pytest -s)."""
import os
import signal
import socket
import struct
import threading
import time

import pytest

from cluster_fixture import (LEADER_NOT_AVAILABLE, AckedLog, Cluster, ZkEnsemble,
                             check_read_back, ensure_running)
from kafka_wire import frame, read_frame, s16
from zk_fixture import wait_until, zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 5000
SESSION_S = SESSION_MS / 1000.0
# Past the session: ZooKeeper's expiry runs on tick boundaries (1 s ticks here), then the
# watches fire and the controller writes; measured well under 2 s of slack on a loaded machine.
FAILOVER_BOUND_S = SESSION_S + 5.0


def measured(what, seconds):
    print("MEASURED %s: %.2f s" % (what, seconds))


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    ens = ZkEnsemble.on_free_ports(str(tmp_path_factory.mktemp("zk")))
    ens.start()
    yield ens
    ens.stop()


@pytest.fixture
def cluster(request, tmp_path, ensemble):
    ensure_running(ensemble)
    c = Cluster(tmp_path, ensemble, "/" + request.node.name.replace("test_", "")[:40],
                session_ms=SESSION_MS)
    c.start()
    yield c
    c.stop()
    reports = c.sanitizer_reports()
    assert reports == [], "\n".join(reports)


def produce(cluster, via, topic, partitions, count, log, prefix):
    """count records to the given partitions round robin through broker `via`; waits for every
    delivery report (bounded)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap(via), "linger.ms": 5,
                  "message.timeout.ms": 30000})
    cb = log.callback(topic)
    for i in range(count):
        p.produce(topic, value=b"%s-%d" % (prefix.encode(), i), partition=partitions[i % len(partitions)],
                  on_delivery=cb)
        p.poll(0)
    left = p.flush(40)
    assert left == 0, "%d records without a delivery report" % left


def offline_partitions(cluster, asked, topic, victim_parts):
    """True when every asked broker answers LEADER_NOT_AVAILABLE / leader -1 for victim_parts and
    a live leader for the others."""
    for i in asked:
        ls = cluster.leaders(i, topic)
        if ls is None:
            return False
        for p, (leader, err) in ls.items():
            if p in victim_parts and (leader != -1 or err != LEADER_NOT_AVAILABLE):
                return False
            if p not in victim_parts and (leader < 0 or err):
                return False
    return True


def test_controller_kill9_another_takes_over_and_topics_still_work(cluster):
    ctl = cluster.wait_all_listed(cluster.ids, 20)
    epoch = int(cluster.zk_get("/controller_epoch")[0])
    survivors = [i for i in cluster.ids if i != ctl]
    t0 = time.monotonic()
    cluster[ctl].kill9()
    new_ctl = cluster.wait_all_listed(survivors, FAILOVER_BOUND_S + 5, asked=survivors)
    elapsed = time.monotonic() - t0
    measured("controller kill -9 to a new controller agreed by both survivors", elapsed)
    assert new_ctl in survivors
    assert elapsed < FAILOVER_BOUND_S, elapsed
    assert cluster.controller() == new_ctl
    assert int(cluster.zk_get("/controller_epoch")[0]) == epoch + 1
    # The new controller assigns and elects: a topic created through either survivor works.
    cluster.create_topic(survivors[1], "after-failover", 6)
    leaders = cluster.wait_leaders("after-failover", 6, asked=survivors)
    assert set(leaders.values()) == set(survivors)
    for p in range(6):
        assert cluster.state("after-failover", p)["controller_epoch"] == epoch + 1
    log = AckedLog()
    produce(cluster, survivors[0], "after-failover", list(range(6)), 600, log, "af")
    assert log.errors == []
    assert check_read_back(cluster.bootstrap(survivors[1]), "after-failover",
                           log.acked["after-failover"], range(6)) == 600


def test_broker_kill9_partitions_offline_others_served_restart_serves_all(cluster):
    ctl = cluster.wait_all_listed(cluster.ids, 20)
    cluster.create_topic(1, "k9", 6)
    leaders = cluster.wait_leaders("k9", 6)
    victim = next(i for i in cluster.ids if i != ctl)  # the controller's own kill is above
    others = [i for i in cluster.ids if i != victim]
    victim_parts = sorted(p for p, l in leaders.items() if l == victim)
    other_parts = sorted(set(range(6)) - set(victim_parts))
    assert len(victim_parts) == 2
    log = AckedLog()
    produce(cluster, others[0], "k9", list(range(6)), 600, log, "before")
    assert log.errors == []

    t0 = time.monotonic()
    cluster[victim].kill9()
    # While ZooKeeper still holds its session, produce to the other leaders keeps working.
    produce(cluster, others[1], "k9", other_parts, 200, log, "during")
    assert log.errors == []
    wait_until(lambda: offline_partitions(cluster, others, "k9", set(victim_parts)),
               FAILOVER_BOUND_S + 5, interval=0.2, what="the dead broker's partitions offline")
    measured("broker kill -9 to its partitions LEADER_NOT_AVAILABLE on both survivors",
             time.monotonic() - t0)
    for p in victim_parts:
        st = cluster.state("k9", p)
        assert st["leader"] == -1 and st["leader_epoch"] == 1 and st["isr"] == [victim]
    produce(cluster, others[0], "k9", other_parts, 200, log, "offline")
    assert log.errors == []

    # Its registration is gone (the partitions went offline for that), so it starts again.
    assert victim not in cluster.registrations()
    t1 = time.monotonic()
    cluster[victim].start()
    leaders_after = cluster.wait_leaders("k9", 6, timeout=30)
    measured("broker restart to every partition led again", time.monotonic() - t1)
    assert leaders_after == leaders
    for p in victim_parts:
        assert cluster.state("k9", p)["leader_epoch"] == 2
    produce(cluster, victim, "k9", list(range(6)), 120, log, "after")
    assert log.errors == []
    n = check_read_back(cluster.bootstrap(others[1]), "k9", log.acked["k9"], range(6))
    assert n == 600 + 200 + 200 + 120


def test_zookeeper_follower_then_leader_killed_brokers_ride_it_out(cluster, ensemble):
    ctl = cluster.wait_all_listed(cluster.ids, 20)
    regs = cluster.registrations()
    assert sorted(regs) == cluster.ids
    cluster.create_topic(2, "ride", 6)
    cluster.wait_leaders("ride", 6)
    log = AckedLog()
    produce(cluster, 1, "ride", list(range(6)), 300, log, "a")

    zk_leader = ensemble.leader()
    follower = next(n.id for n in ensemble.nodes if n.id != zk_leader)
    ensemble.node(follower).stop(kill=True)
    produce(cluster, 2, "ride", list(range(6)), 300, log, "b")  # a quorum of two serves
    ensemble.node(follower).start()
    ensemble.wait_serving(timeout=60)

    zk_leader = ensemble.leader()
    t0 = time.monotonic()
    ensemble.node(zk_leader).stop(kill=True)
    rest = [n.id for n in ensemble.nodes if n.id != zk_leader]
    ensemble.wait_serving(rest, timeout=30, exclude_leader=zk_leader)
    measured("ZooKeeper leader kill -9 to a new ZooKeeper leader", time.monotonic() - t0)
    produce(cluster, 3, "ride", list(range(6)), 300, log, "c")
    ensemble.node(zk_leader).start()
    ensemble.wait_serving(timeout=60)
    # Every outage was shorter than the session: the same sessions own the same registrations,
    # the controller did not move, nobody re-registered.
    time.sleep(1.0)
    assert cluster.registrations() == regs
    assert cluster.controller() == ctl
    assert cluster.wait_all_listed(cluster.ids, 20) == ctl
    for i in cluster.ids:
        assert cluster.log_count(i, "session expired") == 0, cluster[i].log()
    cluster.create_topic(3, "ride-after", 3)
    cluster.wait_leaders("ride-after", 3)
    produce(cluster, 1, "ride-after", [0, 1, 2], 90, log, "d")
    assert log.errors == []
    assert check_read_back(cluster.bootstrap(2), "ride", log.acked["ride"], range(6)) == 900
    assert check_read_back(cluster.bootstrap(3), "ride-after", log.acked["ride-after"], range(3)) == 90
    assert all(b.alive() for b in cluster.brokers.values())


def queue_creates(broker, prefix, sockets=8, per_socket=16):
    """Requests written to a paused broker that each need a ZooKeeper write: CreateTopics v2 and
    Metadata v4 auto-creating a topic, alternating. Resumed, the broker issues those writes on a
    session it does not know is gone yet, so their failures arrive with the expiry (a batch zk.c
    once dispatched after freeing its operations; and completions the client library drops
    when the expired handle is closed too early, leaving a CreateTopics unanswered)."""
    out = []
    for s in range(sockets):
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        for r in range(per_socket):
            name = "%s-%d-%d" % (prefix, s, r)
            if r % 2 == 0:
                body = struct.pack(">i", 1) + s16(name) + struct.pack(">ihii", 1, 1, 0, 0)
                body += struct.pack(">ib", 10000, 0)
                sock.sendall(frame(19, 2, r, body))
            else:
                sock.sendall(frame(3, 4, r, struct.pack(">i", 1) + s16(name) + b"\1"))
        out.append(sock)
    return out


def test_sigstop_past_session_fenced_and_reregisters(cluster):
    """Paused past its session three times (a GC storm): each time the others drop it and its
    partitions go offline; resumed, it learns its session expired, registers with a new one and
    leads again, the leader epoch two higher (offline, then back)."""
    ctl = cluster.wait_all_listed(cluster.ids, 20)
    cluster.create_topic(1, "paused", 6)
    leaders = cluster.wait_leaders("paused", 6)
    victim = next(i for i in cluster.ids if i != ctl)
    others = [i for i in cluster.ids if i != victim]
    victim_parts = sorted(p for p, l in leaders.items() if l == victim)
    log = AckedLog()
    produce(cluster, others[0], "paused", list(range(6)), 600, log, "before")
    assert log.errors == []
    expected = 600
    for rnd in range(1, 4):
        old_owner = cluster.registrations()[victim]
        t0 = time.monotonic()
        os.kill(cluster[victim].proc.pid, signal.SIGSTOP)
        try:
            cluster.wait_all_listed(others, FAILOVER_BOUND_S + 5, asked=others)
            wait_until(lambda: offline_partitions(cluster, others, "paused", set(victim_parts)), 15,
                       interval=0.2, what="the paused broker's partitions offline")
            measured("SIGSTOP to the paused broker's partitions offline (round %d)" % rnd,
                     time.monotonic() - t0)
            for p in victim_parts:
                st = cluster.state("paused", p)
                assert st["leader"] == -1 and st["leader_epoch"] == 2 * rnd - 1
            produce(cluster, others[1], "paused", [p for p in range(6) if p not in victim_parts],
                    100, log, "stopped%d" % rnd)
            assert log.errors == []
            expected += 100
            waiting = queue_creates(cluster[victim], "auto%d" % rnd)
        finally:
            os.kill(cluster[victim].proc.pid, signal.SIGCONT)
        t1 = time.monotonic()
        owner = wait_until(lambda: cluster.registrations().get(victim), 30, interval=0.2,
                           what="the resumed broker registered again")
        measured("SIGCONT to the re-registration (round %d)" % rnd, time.monotonic() - t1)
        # Every request that waited on the paused broker is answered (created, or an error):
        # none hangs on a ZooKeeper completion lost with the expired session.
        for sock in waiting:
            sock.settimeout(20)
            try:
                assert [read_frame(sock)[0] for _ in range(16)] == list(range(16))
            finally:
                sock.close()
        assert owner != old_owner  # a new session: the old one was expired and fenced
        assert cluster.wait_leaders("paused", 6, timeout=30) == leaders
        measured("SIGCONT to its partitions led again on every broker (round %d)" % rnd,
                 time.monotonic() - t1)
        for p in victim_parts:
            st = cluster.state("paused", p)
            assert st["leader"] == victim and st["leader_epoch"] == 2 * rnd
        assert cluster.log_count(victim, "re-registers") == rnd
        produce(cluster, victim, "paused", list(range(6)), 60, log, "after%d" % rnd)
        assert log.errors == []
        expected += 60
        assert check_read_back(cluster.bootstrap(others[0]), "paused", log.acked["paused"],
                               range(6)) == expected
        assert cluster[victim].alive()
        assert cluster.sanitizer_reports() == []


class BoundedProducer(threading.Thread):
    """Produces to explicit partitions through one broker until told to stop (at most `limit`
    records), a record every few ms, keeping what the client was told."""

    def __init__(self, cluster, via, topic, partitions, limit=4000):
        super().__init__(daemon=True)
        self.cluster, self.via, self.topic, self.partitions = cluster, via, topic, partitions
        self.limit = limit
        self.log = AckedLog()
        self.sent = 0
        self.stop_flag = threading.Event()

    def run(self):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.cluster.bootstrap(self.via), "linger.ms": 2,
                      "message.timeout.ms": 30000})
        cb = self.log.callback(self.topic)
        while not self.stop_flag.is_set() and self.sent < self.limit:
            p.produce(self.topic, value=b"load-%d" % self.sent,
                      partition=self.partitions[self.sent % len(self.partitions)], on_delivery=cb)
            self.sent += 1
            p.poll(0.004)
        self.left = p.flush(40)

    def acked_count(self):
        return len(self.log.acked.get(self.topic, ()))


def zookeeper_gone(cluster, ensemble, outage_s):
    """Every ZooKeeper node killed for outage_s under a running producer, then back; returns the
    producer (stopped, flushed)."""
    cluster.create_topic(1, "load", 6)
    cluster.wait_leaders("load", 6)
    prod = BoundedProducer(cluster, 2, "load", list(range(6)))
    prod.start()
    wait_until(lambda: prod.acked_count() >= 100, 20, what="the producer running")
    for n in ensemble.nodes:
        n.stop(kill=True)
    down_at = prod.acked_count()
    time.sleep(outage_s)
    # The brokers keep their last metadata and lead on: produce went on while ZooKeeper was gone.
    assert prod.acked_count() > down_at + 50, (down_at, prod.acked_count())
    assert all(b.alive() for b in cluster.brokers.values())
    for i in cluster.ids:
        assert cluster.leaders(i, "load") is not None  # Metadata still answers
    t0 = time.monotonic()
    for n in ensemble.nodes:
        n.start()
    ensemble.wait_serving(timeout=60)
    measured("ZooKeeper ensemble restart to serving", time.monotonic() - t0)
    prod.stop_flag.set()
    prod.join(60)
    assert not prod.is_alive() and prod.left == 0
    assert prod.log.errors == [], prod.log.errors[:3]
    return prod


def after_zookeeper_returns(cluster, prod, name):
    t0 = time.monotonic()
    ctl = cluster.wait_all_listed(cluster.ids, 30)
    assert sorted(cluster.registrations()) == cluster.ids
    assert cluster.controller() == ctl
    measured("ZooKeeper back to all three registered with one controller (%s)" % name,
             time.monotonic() - t0)
    cluster.create_topic(3, name, 3)
    cluster.wait_leaders(name, 3, timeout=30)
    log = AckedLog()
    produce(cluster, 1, name, [0, 1, 2], 90, log, "z")
    assert log.errors == []
    assert check_read_back(cluster.bootstrap(2), name, log.acked[name], range(3)) == 90
    assert check_read_back(cluster.bootstrap(3), "load", prod.log.acked["load"], range(6)) == \
        prod.acked_count()
    assert all(b.alive() for b in cluster.brokers.values())


def test_zookeeper_gone_under_load_shorter_than_session(cluster, ensemble):
    cluster.wait_all_listed(cluster.ids, 20)
    regs = cluster.registrations()
    prod = zookeeper_gone(cluster, ensemble, SESSION_S / 2)
    after_zookeeper_returns(cluster, prod, "zk-back-short")
    assert cluster.registrations() == regs  # the sessions lived through it


def test_zookeeper_gone_longer_than_session(cluster, ensemble):
    """ZooKeeper restores its sessions from its log and restarts their timeouts when a quorum
    is back, so a broker that reconnects in time keeps its session even after an outage longer
    than it (as Kafka's brokers do); one that does not learns it expired and registers again.
    Either way every broker is registered and one controller agreed when ZooKeeper returns."""
    cluster.wait_all_listed(cluster.ids, 20)
    regs = cluster.registrations()
    prod = zookeeper_gone(cluster, ensemble, SESSION_S + 3)
    after_zookeeper_returns(cluster, prod, "zk-back-long")
    now = cluster.registrations()
    for i in cluster.ids:
        kept = now[i] == regs[i]
        assert kept or cluster.log_count(i, "re-registers") >= 1, i
        print("MEASURED broker %d after a %.0f s outage: %s" % (
            i, SESSION_S + 3, "kept its session" if kept else "re-registered"))


def test_zookeeper_back_controller_paused_through_it_reregisters(cluster, ensemble):
    """ZooKeeper gone while the controller is paused and kept paused past the session after
    ZooKeeper returns: the restored session of the controller expires, the other two elect a
    controller among them; resumed, the old controller learns its session expired, registers
    again with a new one and follows the new controller."""
    ctl = cluster.wait_all_listed(cluster.ids, 20)
    others = [i for i in cluster.ids if i != ctl]
    regs = cluster.registrations()
    epoch = int(cluster.zk_get("/controller_epoch")[0])
    for n in ensemble.nodes:
        n.stop(kill=True)
    os.kill(cluster[ctl].proc.pid, signal.SIGSTOP)
    try:
        time.sleep(2.0)
        for n in ensemble.nodes:
            n.start()
        ensemble.wait_serving(timeout=60)
        t0 = time.monotonic()
        new_ctl = cluster.wait_all_listed(others, FAILOVER_BOUND_S + 10, asked=others)
        measured("ZooKeeper serving to a controller among the running brokers (old one paused)",
                 time.monotonic() - t0)
        assert new_ctl in others
        assert int(cluster.zk_get("/controller_epoch")[0]) == epoch + 1
    finally:
        os.kill(cluster[ctl].proc.pid, signal.SIGCONT)
    t1 = time.monotonic()
    owner = wait_until(lambda: cluster.registrations().get(ctl), 30, interval=0.2,
                       what="the old controller registered again")
    measured("SIGCONT to the old controller's re-registration", time.monotonic() - t1)
    assert owner != regs[ctl]
    assert cluster.log_count(ctl, "re-registers") == 1
    assert cluster.wait_all_listed(cluster.ids, 20) == new_ctl
    for i in others:
        assert cluster.registrations()[i] == regs[i]  # they kept their sessions
    cluster.create_topic(ctl, "after-zk-pause", 3)
    cluster.wait_leaders("after-zk-pause", 3)
    log = AckedLog()
    produce(cluster, ctl, "after-zk-pause", [0, 1, 2], 90, log, "p")
    assert log.errors == []
    assert check_read_back(cluster.bootstrap(others[0]), "after-zk-pause",
                           log.acked["after-zk-pause"], range(3)) == 90
