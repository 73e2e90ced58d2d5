"""The transaction coordinator's markers on a replicated partition (issue 18): Kafka appends a
WriteTxnMarkers marker with acks=-1, so a marker counts as written only once the partition's
ISR has it; until then the coordinator keeps the transaction in PrepareCommit and resends the
marker (to the partition's new leader when its leader died). Both paths: the coordinator's own
marker on a partition it leads, and WriteTxnMarkers to another leader."""
import signal
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from cluster_fixture import zookeeper  # noqa: F401 (a fixture)
from txn_util import (find_coordinator, open_transaction, read_values, start_txn_cluster,
                      txn_cluster_configs, txn_state)
from zk_fixture import wait_until, zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)


# The coordinator alone holds __transaction_state (its records are never the ones waiting), a
# stopped follower stays in the ISR (lag time 60 s) and keeps its ZooKeeper session.
CONFIGS = txn_cluster_configs(1, 1, 1, session_ms=30000, extra={
    "replica.lag.time.max.ms": 60000,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})


def test_commit_waits_for_the_markers_isr(tmp_path, zookeeper):
    """The follower of both data partitions SIGSTOPped (still in the ISR): the markers are
    written on the leaders but cannot replicate, so DescribeTransactions keeps saying
    PrepareCommit; once it resumes the transaction completes and read_committed sees it."""
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txm-", CONFIGS)
    stopped = None
    try:
        coord, c = find_coordinator(brokers, "held", 1)
        f, other = [i for i in (1, 2, 3) if i != c]
        boot = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": boot})
        # partition 0: led by the coordinator (its own marker), 1: by another broker
        # (WriteTxnMarkers); both followed by f
        for fut in admin.create_topics([NewTopic("hm", num_partitions=2, replica_assignment=[
                [c, f], [other, f]])]).values():
            fut.result(20)
        p = open_transaction(boot, "held", "hm", [(0, b"v-0"), (1, b"v-1")], 60, 30000)
        stopped = brokers[f - 1]
        stopped.proc.send_signal(signal.SIGSTOP)
        p.commit_transaction(60)   # answered once PrepareCommit is written
        deadline = time.time() + 4
        while time.time() < deadline:
            err, state = txn_state(coord, "held")
            assert err == 0 and state == "PrepareCommit", \
                "completed before the markers reached the ISR: %s" % state
            time.sleep(0.2)
        stopped.proc.send_signal(signal.SIGCONT)
        stopped = None
        wait_until(lambda: txn_state(coord, "held") == (0, "CompleteCommit"), 30,
                   what="the transaction completes once the follower has the markers")
        assert read_values(boot, "hm", "read_committed", 2, partitions=2) == [b"v-0", b"v-1"]
    finally:
        if stopped is not None:
            stopped.proc.send_signal(signal.SIGCONT)
        for b in brokers:
            b.stop()


def commit_with_leader_killed(brokers, txn_id, topic, after_commit_s):
    """A one-record transaction on `topic` (1 partition: a leader and a follower, neither the
    coordinator) committed with the follower stopped, the leader killed -9 after_commit_s later
    and the follower resumed: (the coordinator's Broker, bootstrap of the live brokers)."""
    coord, c = find_coordinator(brokers, txn_id, 1)
    leader, f = [i for i in (1, 2, 3) if i != c]
    boot = ",".join(b.bootstrap for b in brokers)
    admin = AdminClient({"bootstrap.servers": boot})
    for fut in admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[
            [leader, f]])]).values():
        fut.result(20)
    p = open_transaction(boot, txn_id, topic, [(0, b"v-0")], 60, 30000)
    stopped = brokers[f - 1]
    stopped.proc.send_signal(signal.SIGSTOP)
    try:
        # its fetch parked at the leader is answered (empty) within replica.fetch.wait.max.ms
        # and no other is sent: the marker cannot reach it, not even its socket's buffer
        time.sleep(1.5)
        p.commit_transaction(60)
        time.sleep(after_commit_s)   # the marker is in the leader's log, not in the follower's
        brokers[leader - 1].kill9()
    finally:
        stopped.proc.send_signal(signal.SIGCONT)
    return coord, ",".join(b.bootstrap for b in brokers if b is not brokers[leader - 1])


def test_marker_leader_killed_before_replication(tmp_path, zookeeper):
    """The data partition's follower stopped, the coordinator's WriteTxnMarkers appended on the
    leader, then the leader killed -9 and the follower resumed: the follower, now leader, never
    had the marker. The coordinator was not told it was written, so it resends it there and
    read_committed consumers are not stuck at the last stable offset."""
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txm-", CONFIGS)
    try:
        coord, alive = commit_with_leader_killed(brokers, "orphan", "hk", 1.5)
        wait_until(lambda: txn_state(coord, "orphan") == (0, "CompleteCommit"), 60,
                   what="the transaction completes on the new leader")
        assert read_values(alive, "hk", "read_committed", 1, timeout=30, partitions=1) == [b"v-0"]
    finally:
        for b in brokers:
            b.stop()


def test_failed_marker_round_is_resent_soon(tmp_path, zookeeper):
    """A round of markers that fails (its leader killed -9 before the follower had the marker)
    is resent soon, as Kafka's marker channel retries, not at the next timeout check (5 min
    here); the resend to the dead broker, whose connection cannot come back, fails once
    ZooKeeper no longer lists it (6 s session), not at the request timeout (30 s): the
    transaction completes on the new leader within 20 s."""
    cfg = dict(CONFIGS)
    cfg.update({"zookeeper.session.timeout.ms": 6000,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms": 300000})
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txm-", cfg)
    try:
        coord, alive = commit_with_leader_killed(brokers, "soon", "hs", 1)
        t0 = time.time()
        wait_until(lambda: txn_state(coord, "soon") == (0, "CompleteCommit"), 20,
                   what="the transaction completes on the new leader before the timeout check")
        assert time.time() - t0 < 20
        assert read_values(alive, "hs", "read_committed", 1, timeout=30, partitions=1) == [b"v-0"]
    finally:
        for b in brokers:
            b.stop()
