"""Failover (issue 16, the controller's side), as Kafka 3.9's ZooKeeper-mode controller: on 3
gregor brokers and a real ZooKeeper, with RF 3 and min.insync.replicas 2, a leader killed with
kill -9 is replaced by the first live ISR replica in assignment order (leader epoch + 1, the dead
broker out of the ISR) and an idempotent acks=all producer rides it; a leader stopped with
SIGTERM moves its leaderships away first (ControlledShutdown), comes back as a follower and
leads again through the auto rebalance; with the only ISR member dead the partition stays
offline unless unclean.leader.election.enable lets a lagging replica lead; ElectLeaders
PREFERRED through kafka-leader-election.sh.

Every ISR here is the real one: the leader adds a follower once caught up and drops one that
has not fetched for replica.lag.time.max.ms (a follower made to lag is stopped with SIGSTOP);
no test writes a state znode."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from test_cluster_topics import SESSION_MS, stop_all
from test_replication_follower import replicas_match
from zk_fixture import ZkReader, start_brokers, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

# The bound on an election after a kill -9, past the session timeout: the controller's watch,
# one fenced multi and every broker's read of the new state (measured well under a second).
ELECTION_BOUND_S = 8
# Tests not about controlled shutdown: one attempt, so the last broker of stop_all (whose
# partitions have nowhere to go) does not wait 2 x 5 s as Kafka's defaults make it.
FAST_STOP = {"controlled.shutdown.max.retries": 1}


def start(tmp_path, zk, chroot, extra=None, ids=(1, 2, 3)):
    return start_brokers(tmp_path, zk.connect + chroot, ids,
                         dict({"zookeeper.session.timeout.ms": SESSION_MS}, **(extra or {})))


def by_id(brokers):
    return {b.overrides["broker.id"]: b for b in brokers}


def bootstrap(brokers):
    return ",".join(b.bootstrap for b in brokers)


def create_topic(b, name, partitions, configs=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3,
                                       config=configs or {})], request_timeout=20)
    fs[name].result(timeout=30)


def state_path(chroot, topic, p):
    return "%s/brokers/topics/%s/partitions/%d/state" % (chroot, topic, p)


def state_of(zk, chroot, topic, p):
    r = ZkReader(zk.connect)
    try:
        data, stat = r.get(state_path(chroot, topic, p))
    finally:
        r.close()
    return json.loads(data), stat["version"]


def wait_isr(zk, chroot, topic, p, members, timeout=30):
    """The state once the leader has written an ISR of exactly `members` (any order)."""
    return wait_until(lambda: (lambda s: s if sorted(s["isr"]) == sorted(members) else None)(
        state_of(zk, chroot, topic, p)[0]), timeout,
        what="the ISR of %s-%d is %s" % (topic, p, sorted(members)))


def metadata(b, topic):
    """{partition: (leader, replicas, isr, error)} in b's Metadata, {} when b lists no topic."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p: (pm.leader, list(pm.replicas), list(pm.isrs), pm.error)
            for p, pm in t.partitions.items()}


def seen_everywhere(brokers, topic, p, pred):
    for b in brokers:
        m = metadata(b, topic).get(p)
        if m is None or not pred(m):
            return False
    return True


class Producing:
    """One idempotent acks=all producer; acked[value] = offset, errors listed."""

    def __init__(self, servers):
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": servers, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 5, "message.timeout.ms": 60000,
                           "retry.backoff.ms": 100, "metadata.max.age.ms": 1000,
                           # ROLL_DEBUG=eos,msg: librdkafka's own account on stderr.
                           **({"debug": os.environ["ROLL_DEBUG"]}
                              if os.environ.get("ROLL_DEBUG") else {})})
        self.acked = {}
        self.acked_at = {}
        self.errors = []
        self.n = 0

    def _done(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked[msg.value()] = msg.offset()
            self.acked_at[msg.value()] = time.time()

    def send(self, topic, count, pace_s=0.0, stop=None):
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            self.p.produce(topic, partition=0, value=b"r%06d" % self.n, on_delivery=self._done)
            self.n += 1
            self.p.poll(0)
            if pace_s:
                time.sleep(pace_s)
        assert self.p.flush(90) == 0


def high_watermark(servers, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": servers, "group.id": "hw-%f" % time.time()})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def read_all(servers, topic):
    """{offset: value} of partition 0 from the start to its high watermark (bounded)."""
    from confluent_kafka import Consumer, TopicPartition
    end = high_watermark(servers, topic)
    c = Consumer({"bootstrap.servers": servers, "group.id": "check-%f" % time.time(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    out = {}
    deadline = time.time() + 60
    try:
        while len(out) < end and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            assert m.offset() not in out
            out[m.offset()] = m.value()
    finally:
        c.close()
    assert len(out) == end, "read %d of %d records" % (len(out), end)
    return out


def assert_acked_readable(servers, topic, acked):
    got = read_all(servers, topic)
    by_value = {}
    for off, v in got.items():
        by_value.setdefault(v, []).append(off)
    missing = [v for v in acked if v not in by_value]
    assert not missing, "acked records not readable: %s" % missing[:5]
    dup = {v: o for v, o in by_value.items() if len(o) > 1}
    assert not dup, "records stored twice: %s" % list(dup.items())[:5]
    # An offset of None: librdkafka acknowledged the record implicitly (a later batch of the
    # idempotent producer was accepted after this one's own request failed), without an offset;
    # it must then be stored once, anywhere.
    wrong = [(v, o, by_value[v]) for v, o in acked.items() if o is not None and by_value[v] != [o]]
    assert not wrong, "records not at the acked offset: %s" % wrong[:5]


def test_kill9_leader_the_first_live_isr_replica_leads_and_the_producer_rides_it(tmp_path,
                                                                                  zookeeper):
    chroot = "/fo1"
    brokers = start(tmp_path, zookeeper, chroot, FAST_STOP)
    try:
        create_topic(brokers[0], "fo", 1, {"min.insync.replicas": "2"})
        wait_until(lambda: seen_everywhere(brokers, "fo", 0, lambda m: m[0] > 0), 15,
                   what="a leader")
        ids = by_id(brokers)
        st, _ = state_of(zookeeper, chroot, "fo", 0)
        lid = st["leader"]
        replicas = metadata(brokers[0], "fo")[0][1]
        prod = Producing(bootstrap(brokers))
        prod.send("fo", 300)
        wait_until(lambda: replicas_match(brokers, "fo", 0, 300), 30, what="replicated")
        before = wait_isr(zookeeper, chroot, "fo", 0, replicas)
        survivors = [b for b in brokers if b is not ids[lid]]
        t0 = time.time()
        ids[lid].kill9()
        # The same producer goes on while the leader is dead: it must ride the failover.
        rider = threading.Thread(target=prod.send, args=("fo", 300, 0.005))
        rider.start()
        after = wait_until(lambda: (lambda s: s if s["leader"] not in (lid, -1) else None)(
            state_of(zookeeper, chroot, "fo", 0)[0]), SESSION_MS / 1000 + ELECTION_BOUND_S,
            what="a new leader from the ISR")
        elected_s = time.time() - t0
        rider.join(120)
        assert not rider.is_alive()
        want_leader = next(r for r in replicas if r != lid)  # first live ISR replica, in order
        assert after["leader"] == want_leader, (after, replicas)
        assert after["leader_epoch"] == before["leader_epoch"] + 1
        assert after["isr"] == [r for r in before["isr"] if r != lid]
        assert not prod.errors, prod.errors[:3]
        assert len(prod.acked) == 600
        wait_until(lambda: seen_everywhere(survivors, "fo", 0, lambda m: m[0] == want_leader),
                   10, what="both survivors name the new leader")
        assert_acked_readable(bootstrap(survivors), "fo", prod.acked)
        print("kill -9 of the leader: new leader in the state znode after %.2f s (session %d ms)"
              % (elected_s, SESSION_MS))
    finally:
        stop_all(brokers)


def test_sigterm_moves_leadership_first_and_auto_rebalance_brings_it_back(tmp_path, zookeeper):
    chroot = "/fo2"
    brokers = start(tmp_path, zookeeper, chroot, {"leader.imbalance.check.interval.seconds": 1})
    try:
        create_topic(brokers[0], "ro", 1, {"min.insync.replicas": "2"})
        wait_until(lambda: seen_everywhere(brokers, "ro", 0, lambda m: m[0] > 0), 15,
                   what="a leader")
        ids = by_id(brokers)
        replicas = metadata(brokers[0], "ro")[0][1]
        lid = replicas[0]
        assert state_of(zookeeper, chroot, "ro", 0)[0]["leader"] == lid  # the preferred leads
        prod = Producing(bootstrap(brokers))
        prod.send("ro", 200)
        wait_until(lambda: replicas_match(brokers, "ro", 0, 200), 30, what="replicated")
        before = wait_isr(zookeeper, chroot, "ro", 0, replicas)
        wait_until(lambda: seen_everywhere(brokers, "ro", 0, lambda m: len(m[2]) == 3), 10,
                   what="every broker sees the ISR of 3")
        others = [b for b in brokers if b is not ids[lid]]
        # Metadata polled on another broker all along, and records produced all along.
        stop = threading.Event()
        seen = []

        def poll():
            while not stop.is_set():
                m = metadata(others[0], "ro").get(0)
                seen.append(m[0] if m else None)
                if m is not None and m[3] is not None:
                    seen.append(("error", str(m[3])))
                time.sleep(0.02)
        poller = threading.Thread(target=poll)
        poller.start()
        rider = threading.Thread(target=prod.send, args=("ro", 100000, 0.005, stop))
        rider.start()
        time.sleep(0.5)
        t0 = time.time()
        rc = ids[lid].stop()
        stopped_s = time.time() - t0
        # The producer rides the move: keep it running until it has an ack from after the
        # stop (librdkafka finds the new leader on its next metadata refresh; bounded, since a
        # loaded machine can take seconds), and at least 1 s.
        deadline = time.time() + 30
        time.sleep(1.0)
        while time.time() < deadline and not any(
                at > t0 + stopped_s for at in list(prod.acked_at.values())):
            time.sleep(0.1)
        stop.set()
        rider.join(120)
        poller.join(30)
        assert rc == 0
        log = open(ids[lid].log_path, "rb").read().decode(errors="replace")
        assert "Controlled shutdown request returned successfully" in log, log[-3000:]
        after = state_of(zookeeper, chroot, "ro", 0)[0]
        assert after["leader"] == replicas[1], (after, replicas)  # the next ISR replica
        assert sorted(after["isr"]) == sorted(r for r in replicas if r != lid)
        # The move is one election (epoch + 1, the broker out of the ISR), and the broker
        # shutting down fetches no more (Kafka's controller sends it StopReplica), so the new
        # leader does not add it back before it exits (which would take it out again:
        # OfflineReplica, epoch + 1 once more).
        logs = "".join(open(b.log_path, "rb").read().decode(errors="replace") for b in brokers)
        assert ("Partition ro-0: leader %d -> %d, leader epoch %d, isr [%s] "
                "(ControlledShutdownPartitionLeaderElectionStrategy)" % (
                    lid, replicas[1], before["leader_epoch"] + 1,
                    ",".join(str(r) for r in before["isr"] if r != lid))) in logs
        readded = [ln for ln in open(ids[replicas[1]].log_path, "rb").read().decode(
            errors="replace").splitlines() if "[Partition ro-0] Expanding ISR to" in ln and
            str(lid) in ln.rsplit(" ", 1)[1].split(",")]
        assert not readded, readded
        assert after["leader_epoch"] == before["leader_epoch"] + 1, (before, after)
        assert not prod.errors, prod.errors[:3]
        bad = [s for s in seen if s is None or s == -1 or isinstance(s, tuple)]
        assert not bad, "a window without a leader in Metadata: %s" % bad[:5]
        assert seen and lid in seen and replicas[1] in seen
        # acks=all waits for the ISR: every record acknowledged, before, during and after the
        # move, is readable once at its acked offset.
        in_move = [v for v in prod.acked if t0 <= prod.acked_at[v] <= t0 + stopped_s]
        assert any(at > t0 + stopped_s for at in prod.acked_at.values())  # it rode the move
        assert_acked_readable(bootstrap(others), "ro", prod.acked)
        # Back as a follower; once the leader adds it to the ISR again the auto rebalance
        # (every second here) makes the preferred replica lead again.
        t1 = time.time()
        ids[lid].start()
        back = wait_until(lambda: (lambda s: s if s["leader"] == lid else None)(
            state_of(zookeeper, chroot, "ro", 0)[0]), 40, what="the preferred leads again")
        assert back["leader_epoch"] == after["leader_epoch"] + 1
        assert sorted(back["isr"]) == sorted(replicas)  # it was in the ISR to be elected
        print("SIGTERM of the leader: exited after %.2f s with leadership moved (%d records "
              "acked meanwhile, %d in all, none lost); the preferred replica led again %.2f s "
              "after its restart" % (stopped_s, len(in_move), len(prod.acked), time.time() - t1))
    finally:
        stop_all(brokers)


def lag_followers_then_kill_leader(zk, chroot, topic, ids, lid, replicas):
    """The leader of topic-0 (broker lid of ids) takes 20 records, replicated to all of
    replicas; then its followers are made to lag: stopped (for less than the ZooKeeper session)
    while it takes 10 more records, until it drops them from the ISR (a follower at the leader's
    end stays in it, as Kafka's); then it dies before they fetch again (a fetch answered while
    they were stopped may still bring them those records). Returns the survivors, the offline
    state the controller wrote (leader -1, ISR the dead leader) and the seconds from the stop
    to the ISR shrink."""
    from confluent_kafka import Producer
    prod = Producing(ids[lid].bootstrap)
    prod.send(topic, 20)
    wait_isr(zk, chroot, topic, 0, replicas)
    wait_until(lambda: replicas_match(list(ids.values()), topic, 0, 20), 30, what="replicated")
    survivors = [b for b in ids.values() if b is not ids[lid]]
    lone = Producer({"bootstrap.servers": ids[lid].bootstrap, "acks": 1, "linger.ms": 0})
    for b in survivors:
        os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        t_stop = time.time()
        for i in range(10):
            lone.produce(topic, partition=0, value=b"only-on-the-leader-%d" % i)
        assert lone.flush(2) == 0
        st = wait_isr(zk, chroot, topic, 0, [lid],
                      timeout=SESSION_MS / 1000 - 0.3 - (time.time() - t_stop))
        shrunk_s = time.time() - t_stop
        ids[lid].kill9()
    finally:
        for b in survivors:
            os.kill(b.proc.pid, signal.SIGCONT)
    off = wait_until(lambda: (lambda s: s if s["leader"] == -1 else None)(
        state_of(zk, chroot, topic, 0)[0]), SESSION_MS / 1000 + ELECTION_BOUND_S,
        what="offline")
    assert off["isr"] == [lid] and off["leader_epoch"] == st["leader_epoch"] + 1
    return survivors, off, shrunk_s


def wait_unclean_leader(zk, chroot, topic, survivors, off, what, interval=0.1):
    """The state once the controller elected a survivor of topic-0 uncleanly: the ISR written
    is that leader alone (the other survivor may have been added by it since, once caught up),
    one leader epoch after the offline state off."""
    on = wait_until(lambda: (lambda s: s if s["leader"] >= 0 else None)(
        state_of(zk, chroot, topic, 0)[0]), ELECTION_BOUND_S, interval=interval, what=what)
    assert on["leader"] in [b.overrides["broker.id"] for b in survivors]
    assert on["isr"][0] == on["leader"] and on["leader_epoch"] == off["leader_epoch"] + 1
    return on


def test_unclean_election_off_keeps_offline_on_elects_a_lagging_replica(tmp_path, zookeeper):
    chroot = "/fo3"
    brokers = start(tmp_path, zookeeper, chroot, dict(FAST_STOP, **{
        "replica.lag.time.max.ms": 1000}))
    try:
        create_topic(brokers[0], "uc", 1)
        wait_until(lambda: seen_everywhere(brokers, "uc", 0, lambda m: m[0] > 0), 15,
                   what="a leader")
        ids = by_id(brokers)
        lid = state_of(zookeeper, chroot, "uc", 0)[0]["leader"]
        replicas = metadata(brokers[0], "uc")[0][1]
        survivors, off, shrunk_s = lag_followers_then_kill_leader(zookeeper, chroot, "uc", ids,
                                                                   lid, replicas)
        time.sleep(1.0)
        assert state_of(zookeeper, chroot, "uc", 0)[0] == off  # no election without the ISR
        assert metadata(survivors[0], "uc")[0][0] == -1
        from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                           ConfigResource)
        admin = AdminClient({"bootstrap.servers": survivors[0].bootstrap})
        res = ConfigResource("topic", "uc", incremental_configs=[ConfigEntry(
            "unclean.leader.election.enable", "true",
            incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(timeout=30)
        on = wait_unclean_leader(zookeeper, chroot, "uc", survivors, off, "unclean election")
        logs = "".join(open(b.log_path, "rb").read().decode(errors="replace") for b in survivors)
        assert "Unclean leader election. Partition uc-0" in logs
        assert "There's potential data loss" in logs
        wait_until(lambda: seen_everywhere(survivors, "uc", 0, lambda m: m[0] == on["leader"]),
                   10, what="the survivors name the unclean leader")
        print("the leader dropped the stopped followers from the ISR %.2f s after they stopped "
              "(replica.lag.time.max.ms 1000)" % shrunk_s)
    finally:
        stop_all(brokers)


def leader_election_cli(b, *args):
    return subprocess.run([os.path.join(ROOT, "bin", "kafka-leader-election.sh"),
                           "--bootstrap-server", b.bootstrap] + list(args),
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, GREGOR_BIN=os.environ.get("GREGOR_BIN", "")
                                   or os.path.join(ROOT, "build", "gregor")))


def test_preferred_election_through_the_cli(tmp_path, zookeeper):
    chroot = "/fo4"
    brokers = start(tmp_path, zookeeper, chroot, dict(FAST_STOP, **{
        "auto.leader.rebalance.enable": "false"}))
    try:
        create_topic(brokers[0], "pe", 3)
        wait_until(lambda: all(seen_everywhere(brokers, "pe", p, lambda m: m[0] > 0)
                               for p in range(3)), 15, what="leaders")
        ids = by_id(brokers)
        md = metadata(brokers[0], "pe")
        for p in range(3):
            wait_isr(zookeeper, chroot, "pe", p, md[p][1])
        replicas = md[0][1]
        pref = replicas[0]
        ids[pref].kill9()
        wait_until(lambda: state_of(zookeeper, chroot, "pe", 0)[0]["leader"] == replicas[1],
                   SESSION_MS / 1000 + ELECTION_BOUND_S, what="the next ISR replica leads")
        ids[pref].start()
        wait_until(lambda: seen_everywhere(brokers, "pe", 0, lambda m: m[0] == replicas[1]), 15,
                   what="the restarted broker sees the new leader")
        st = wait_isr(zookeeper, chroot, "pe", 0, replicas)
        assert st["leader"] == replicas[1]
        time.sleep(1.5)  # no auto rebalance here
        assert state_of(zookeeper, chroot, "pe", 0)[0]["leader"] == replicas[1]
        out = leader_election_cli(brokers[1], "--election-type", "PREFERRED",
                                  "--all-topic-partitions")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout == ("Successfully completed leader election (PREFERRED) for "
                              "partitions pe-0\n"), out.stdout
        got = state_of(zookeeper, chroot, "pe", 0)[0]
        assert got["leader"] == pref and got["leader_epoch"] == st["leader_epoch"] + 1
        assert got["isr"] == st["isr"]
        out = leader_election_cli(brokers[2], "--election-type", "preferred", "--topic", "pe",
                                  "--partition", "0")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout == "Valid replica already elected for partitions pe-0\n", out.stdout
    finally:
        stop_all(brokers)


def test_controlled_shutdown_and_elect_leaders_refusals_raw_wire(tmp_path, zookeeper):
    """What a client cannot send: ControlledShutdown to a broker that is not the controller
    (NOT_CONTROLLER), with an older broker epoch (STALE_BROKER_EPOCH), for a broker not
    registered (BROKER_NOT_AVAILABLE); ElectLeaders on a broker that is not the controller
    (NOT_CONTROLLER per partition, as Kafka's ZooKeeper mode) and for an unknown partition."""
    import socket
    import struct
    from kafka_wire import _request, s16

    def controlled_shutdown(b, broker_id, epoch):
        with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
            body = _request(s, 7, 2, 5, struct.pack(">iq", broker_id, epoch))
        err, n = struct.unpack(">hi", body[:6])
        return err, n

    def elect(b, topic, partition):
        req = struct.pack(">bi", 0, 1) + s16(topic) + struct.pack(">ii", 1, partition) + \
            struct.pack(">i", 5000)
        with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
            body = _request(s, 43, 1, 6, req)
        throttle, top, n = struct.unpack(">ihi", body[:10])
        o = 10
        (tlen,) = struct.unpack(">h", body[o:o + 2])
        name = body[o + 2:o + 2 + tlen].decode()
        o += 2 + tlen
        np, pid, perr = struct.unpack(">iih", body[o:o + 10])
        return top, n, name, np, pid, perr

    chroot = "/fo5"
    brokers = start(tmp_path, zookeeper, chroot, FAST_STOP)
    try:
        create_topic(brokers[0], "rw", 1)
        wait_until(lambda: seen_everywhere(brokers, "rw", 0, lambda m: m[0] > 0), 15,
                   what="a leader")
        r = ZkReader(zookeeper.connect)
        try:
            ctl = json.loads(r.get(chroot + "/controller")[0])["brokerid"]
        finally:
            r.close()
        ids = by_id(brokers)
        other = next(b for i, b in ids.items() if i != ctl)
        other_id = other.overrides["broker.id"]
        assert controlled_shutdown(other, other_id, 10 ** 12) == (41, 0)  # NOT_CONTROLLER
        assert controlled_shutdown(ids[ctl], other_id, 0) == (77, 0)     # STALE_BROKER_EPOCH
        assert controlled_shutdown(ids[ctl], 99, 10 ** 12) == (8, 0)     # BROKER_NOT_AVAILABLE
        assert elect(other, "rw", 0) == (0, 1, "rw", 1, 0, 41)
        assert elect(ids[ctl], "rw", 7) == (0, 1, "rw", 1, 7, 3)
        lid = state_of(zookeeper, chroot, "rw", 0)[0]["leader"]
        replicas = metadata(brokers[0], "rw")[0][1]
        want = 84 if lid == replicas[0] else 80  # ELECTION_NOT_NEEDED / not in the ISR
        assert elect(ids[ctl], "rw", 0)[5] == want
        # The refused shutdowns changed nothing: every broker still serves, none is shutting down.
        assert state_of(zookeeper, chroot, "rw", 0)[0]["leader"] == lid
    finally:
        stop_all(brokers)


def test_rolling_restart_loses_no_availability(tmp_path, zookeeper):
    """Each broker in turn stopped with SIGTERM and started again while an idempotent acks=all
    producer keeps sending and Metadata is polled: no produce error, never a partition without
    a leader; each broker rejoins the ISR (the leader adds it once caught up) before the next."""
    chroot = "/fo6"
    # __consumer_offsets (made by the checks' consumers) at RF 1: its 50 partitions at RF 3
    # would only slow the brokers down (ASan); the test is about "roll".
    brokers = start(tmp_path, zookeeper, chroot, {"offsets.topic.replication.factor": 1})
    try:
        create_topic(brokers[0], "roll", 1, {"min.insync.replicas": "2"})
        wait_until(lambda: seen_everywhere(brokers, "roll", 0, lambda m: m[0] > 0), 15,
                   what="a leader")
        replicas = metadata(brokers[0], "roll")[0][1]
        prod = Producing(bootstrap(brokers))
        prod.send("roll", 100)
        wait_until(lambda: replicas_match(brokers, "roll", 0, 100), 30, what="replicated")
        wait_isr(zookeeper, chroot, "roll", 0, replicas)
        stop = threading.Event()
        seen = []
        cycling = []  # the broker being restarted: its own view while it starts is not polled

        def poll():
            while not stop.is_set():
                for b in brokers:
                    if b.proc is None or b in cycling:
                        continue
                    try:
                        m = metadata(b, "roll").get(0)
                    except Exception:
                        continue  # the broker polled is the one stopping
                    seen.append(m[0] if m else None)
                time.sleep(0.02)
        poller = threading.Thread(target=poll)
        poller.start()
        rider = threading.Thread(target=prod.send, args=("roll", 100000, 0.005, stop))
        rider.start()
        leaders = []
        try:
            for b in brokers:
                before = state_of(zookeeper, chroot, "roll", 0)[0]
                cycling.append(b)
                assert b.stop() == 0
                log = open(b.log_path, "rb").read().decode(errors="replace")
                assert "Controlled shutdown request returned successfully" in log, log[-2000:]
                b.start()
                st = wait_isr(zookeeper, chroot, "roll", 0, replicas)  # the leader added it
                cycling.remove(b)
                assert st["leader"] != b.overrides["broker.id"] or before["leader"] != st["leader"]
                leaders.append(st["leader"])
        finally:
            stop.set()
            rider.join(120)
            poller.join(30)
        assert not prod.errors, prod.errors[:3]
        bad = [s for s in seen if s is None or s == -1]
        assert not bad, "a window without a leader in Metadata: %s" % bad[:5]
        assert len(set(leaders)) >= 2  # leadership moved along the restarts
        assert len(prod.acked) > 100  # acked along the restarts too
        assert_acked_readable(bootstrap(brokers), "roll", prod.acked)
    finally:
        stop_all(brokers)


def controller_id(zk, chroot):
    r = ZkReader(zk.connect)
    try:
        return json.loads(r.get(chroot + "/controller")[0])["brokerid"]
    finally:
        r.close()


def metadata_leaders_raw(sock, topic, corr):
    """Metadata v1 for one topic on an open socket: [(partition, error, leader)]."""
    import struct
    from kafka_wire import _request, s16
    body = _request(sock, 3, 1, corr, struct.pack(">i", 1) + s16(topic))
    o = 0
    (nb,) = struct.unpack_from(">i", body, o)
    o += 4
    for _ in range(nb):
        o += 4
        (hl,) = struct.unpack_from(">h", body, o)
        o += 2 + hl + 4
        (rl,) = struct.unpack_from(">h", body, o)
        o += 2 + max(rl, 0)
    o += 4  # controller id
    (nt,) = struct.unpack_from(">i", body, o)
    o += 4
    out = []
    for _ in range(nt):
        terr, tl = struct.unpack_from(">hh", body, o)
        o += 4 + tl + 1
        (np_,) = struct.unpack_from(">i", body, o)
        o += 4
        for _ in range(np_):
            perr, idx, leader = struct.unpack_from(">hii", body, o)
            o += 10
            for _ in range(2):  # replicas, isr
                (n,) = struct.unpack_from(">i", body, o)
                o += 4 + 4 * n
            out.append((idx, perr, leader))
        if terr:
            out.append((-1, terr, -1))
    return out


def test_controlled_shutdown_never_shows_a_partition_without_leader_raw_wire(tmp_path,
                                                                             zookeeper):
    """Each broker in turn stopped with SIGTERM and started again (twice round) while every
    other broker is asked for Metadata as fast as it answers (raw wire, one connection each):
    a controlled shutdown moves each leadership before the broker leaves, so no broker may
    ever answer LEADER_NOT_AVAILABLE / leader -1 (a client sees the partition offline). The
    broker being restarted is asked only once the leaders have it back in every ISR."""
    import socket
    chroot = "/fo7"
    parts = 6
    brokers = start(tmp_path, zookeeper, chroot, {"offsets.topic.replication.factor": 1})
    try:
        create_topic(brokers[0], "nl", parts, {"min.insync.replicas": "2"})
        wait_until(lambda: all(m[0] > 0 and len(m[2]) == 3
                               for m in metadata(brokers[0], "nl").values()) and
                   len(metadata(brokers[0], "nl")) == parts, 20, what="leaders, ISR of 3")
        stop = threading.Event()
        cycling = set()
        bad, polls = [], [0]

        def poll(b):
            sock, corr = None, 0
            while not stop.is_set():
                if b in cycling or b.proc is None:
                    if sock is not None:
                        sock.close()
                        sock = None
                    time.sleep(0.005)
                    continue
                try:
                    if sock is None:
                        sock = socket.create_connection(("127.0.0.1", b.port), timeout=15)
                    corr += 1
                    got = metadata_leaders_raw(sock, "nl", corr)
                except (OSError, ConnectionError, AssertionError):
                    if sock is not None:
                        sock.close()
                    sock = None  # the broker polled is stopping
                    time.sleep(0.005)
                    continue
                if b in cycling:
                    continue  # it began to stop while asked
                polls[0] += 1
                bad.extend((b.overrides["broker.id"], p, e, l) for p, e, l in got
                           if e != 0 or l < 0)
            if sock is not None:
                sock.close()
        pollers = [threading.Thread(target=poll, args=(b,)) for b in brokers]
        for t in pollers:
            t.start()
        try:
            for _ in range(2):
                for b in brokers:
                    cycling.add(b)
                    # The others (but the controller) paused while b moves its leaderships
                    # and leaves: each reads the moves and b's departure at once when it goes
                    # on, as a broker does that is slow to follow ZooKeeper (a loaded host).
                    ctl = controller_id(zookeeper, chroot)
                    paused = [o for o in brokers if o is not b and o.overrides["broker.id"] != ctl]
                    for o in paused:
                        o.proc.send_signal(signal.SIGSTOP)
                    try:
                        assert b.stop() == 0
                    finally:
                        for o in paused:
                            o.proc.send_signal(signal.SIGCONT)
                    time.sleep(0.5)
                    b.start()
                    for p in range(parts):
                        wait_isr(zookeeper, chroot, "nl", p, [1, 2, 3], timeout=60)
                    cycling.discard(b)
                    time.sleep(0.3)
        finally:
            stop.set()
            for t in pollers:
                t.join(30)
        assert polls[0] > 100, polls[0]
        assert not bad, "(broker, partition, error, leader) without a leader: %s" % bad[:5]
    finally:
        stop_all(brokers)


def test_a_restarted_broker_takes_no_produce_before_it_knows_its_partitions_raw_wire(
        tmp_path, zookeeper):
    """A broker stopped with SIGTERM (its leaderships moved away) and started again is asked
    to append (acks=all, raw wire) as soon as it listens, before and after it reads the
    cluster's state: it leads none of its partitions, so every answer is an error
    (NOT_LEADER_OR_FOLLOWER, as Kafka's replica manager answers before a LeaderAndIsr). An
    append to its local log, answered at once, was acknowledged and then cut when the broker
    truncated to its leader's log: an acknowledged record lost (seen in test_replication_rolling
    as a fatal OUT_OF_ORDER_SEQUENCE of the producer's next batch on the new leader)."""
    from kafka_wire import produce_v7, record_batch
    chroot = "/fo8"
    brokers = start(tmp_path, zookeeper, chroot, {"offsets.topic.replication.factor": 1})
    try:
        create_topic(brokers[0], "rs", 1, {"min.insync.replicas": "2"})
        wait_until(lambda: seen_everywhere(brokers, "rs", 0, lambda m: m[0] > 0 and
                                           len(m[2]) == 3), 20, what="a leader, ISR of 3")
        ids = by_id(brokers)
        for _ in range(3):
            lid = state_of(zookeeper, chroot, "rs", 0)[0]["leader"]
            b = ids[lid]
            assert b.stop() == 0
            moved = state_of(zookeeper, chroot, "rs", 0)[0]
            assert moved["leader"] != lid, moved
            stop = threading.Event()
            answers = []

            def hammer():
                while not stop.is_set():
                    try:
                        answers.append(produce_v7(b.bootstrap, "rs", 0, record_batch([b"x"])))
                    except (OSError, ConnectionError, AssertionError, struct_error()):
                        time.sleep(0.001)
            th = threading.Thread(target=hammer)
            th.start()
            try:
                b.start()
                wait_isr(zookeeper, chroot, "rs", 0, [1, 2, 3])
                time.sleep(0.3)
            finally:
                stop.set()
                th.join(30)
            assert answers, "no answer from the restarted broker"
            taken = [a for a in answers if a[0] == 0]
            assert not taken, "%d of %d appends taken by a broker that leads nothing: %s" % (
                len(taken), len(answers), taken[:3])
            assert {a[0] for a in answers} <= {3, 6}, answers[:5]
    finally:
        stop_all(brokers)


def struct_error():
    import struct
    return struct.error
