"""Transactions across a cluster of brokers on a real ZooKeeper (issue 18): __transaction_state
is a ZooKeeper topic created on the first FindCoordinator of a transactional id
(transaction.state.log.* configs), the coordinator is the leader of the id's partition, its
records wait for the ISR (acks=all), and the markers of partitions other brokers lead go to them
as WriteTxnMarkers. A confluent-kafka transactional producer writes to three partitions led by
three brokers: read_committed consumers see the committed transactions only."""
import signal
import struct
import time

import pytest
from kafka_wire import Reader, s16
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from cluster_fixture import zookeeper  # noqa: F401 (a fixture)
from txn_util import (call, find_coordinator, java_partition, read_values, start_txn_cluster,
                      txn_cluster_configs)
from zk_fixture import zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)


def test_transactions_across_three_leaders(tmp_path, zookeeper):
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txn-", txn_cluster_configs(3, 3, 2))
    try:
        boot = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": boot})
        for f in admin.create_topics([NewTopic("ctx", num_partitions=3, replica_assignment=[[1], [2], [3]])]).values():
            f.result(20)
        p = Producer({"bootstrap.servers": boot, "transactional.id": "cluster-app",
                      "message.timeout.ms": 30000})
        p.init_transactions(60)
        committed, aborted = [], []
        for round_, commit in ((0, True), (1, False), (2, True)):
            p.begin_transaction()
            for part in range(3):
                v = b"r%d-p%d" % (round_, part)
                p.produce("ctx", v, partition=part)
                (committed if commit else aborted).append(v)
            p.flush(30)
            if commit:
                p.commit_transaction(60)
            else:
                p.abort_transaction(60)
        assert read_values(boot, "ctx", "read_committed", len(committed)) == sorted(committed)
        assert read_values(boot, "ctx", "read_uncommitted", 9) == sorted(committed + aborted)
        # __transaction_state is a ZooKeeper topic at the configured replication factor
        md = admin.list_topics("__transaction_state", timeout=10)
        parts = md.topics["__transaction_state"].partitions
        assert len(parts) == 3 and all(len(pm.replicas) == 3 for pm in parts.values())
    finally:
        for b in brokers:
            b.stop()


def test_coordinator_killed_with_an_open_transaction(tmp_path, zookeeper):
    """kill -9 of the coordinator while a transaction is open: the new leader of the id's
    __transaction_state partition loads it from its replica, aborts it once its timeout passed
    (markers to the partitions' new leaders), and the partitions' last stable offsets move on."""
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txn-", txn_cluster_configs(3, 3, 2, extra={
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500}))
    try:
        boot = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": boot})
        for f in admin.create_topics([NewTopic("ctk", 3, 3)]).values():
            f.result(20)
        p = Producer({"bootstrap.servers": boot, "transactional.id": "doomed",
                      "transaction.timeout.ms": 5000, "message.timeout.ms": 5000})
        p.init_transactions(60)
        p.begin_transaction()
        for part in range(3):
            p.produce("ctk", b"open-%d" % part, partition=part)
        assert p.flush(30) == 0
        tp = admin.list_topics("__transaction_state", timeout=10).topics["__transaction_state"]
        coordinator = tp.partitions[java_partition("doomed", 3)].leader
        victim = [b for b in brokers if b.port == int(
            [x for x in admin.list_topics(timeout=10).brokers.values()
             if x.id == coordinator][0].port)][0]
        victim.kill9()
        alive = [b for b in brokers if b is not victim]
        boot = ",".join(b.bootstrap for b in alive)
        q = Producer({"bootstrap.servers": boot, "transactional.id": "survivor",
                      "message.timeout.ms": 30000})
        q.init_transactions(60)
        q.begin_transaction()
        for part in range(3):
            q.produce("ctk", b"later-%d" % part, partition=part)
        q.commit_transaction(60)
        want = sorted(b"later-%d" % i for i in range(3))
        assert read_values(boot, "ctk", "read_committed", 3, timeout=60) == want
        logs = "".join(b.log() for b in alive)
        assert "aborting transaction of transactional id doomed" in logs, logs[-4000:]
        del p
    finally:
        for b in brokers:
            b.stop()


def test_txn_offset_commit_waits_for_the_isr(tmp_path, zookeeper):
    """TxnOffsetCommit on a replicated __consumer_offsets is answered once the ISR has the
    offsets (Kafka appends them with acks=-1): with a follower of the group's partition stopped
    (SIGSTOP, still in the ISR) it is answered COORDINATOR_NOT_AVAILABLE after
    offsets.commit.timeout.ms (5 s), not at once. The coordinators know a partition they do not
    hold from ZooKeeper's view (AddPartitionsToTxn and TxnOffsetCommit of it are not
    UNKNOWN_TOPIC_OR_PARTITION)."""
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txn-", txn_cluster_configs(
        1, 3, 2, session_ms=30000, extra={"replica.lag.time.max.ms": 60000}))
    stopped = None
    try:
        boot = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": boot})
        group_coord, group_node = find_coordinator(brokers, "isr-group", 0)
        txn_coord, txn_node = find_coordinator(brokers, "isr-app", 1)
        # a partition neither coordinator holds: they know it from ZooKeeper's view only
        host = [i for i in (1, 2, 3) if i not in (group_node, txn_node)][0]
        for f in admin.create_topics([NewTopic("tin", num_partitions=1,
                                               replica_assignment=[[host]])]).values():
            f.result(20)
        deadline = time.time() + 30
        while True:   # the coordinator loads the partition it leads
            r = Reader(call(txn_coord.bootstrap, 22, 1, s16("isr-app") + struct.pack(">i", 60000)))
            r.take(">i")
            err, pid, epoch = r.take(">h"), r.take(">q"), r.take(">h")
            if err == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert err == 0
        r = Reader(call(txn_coord.bootstrap, 25, 1, s16("isr-app") + struct.pack(">qh", pid, epoch) +
                       s16("isr-group")))
        r.take(">i")
        assert r.take(">h") == 0
        # AddPartitionsToTxn v1 of tin-0 (on another broker): added, not UNKNOWN_TOPIC_OR_PARTITION
        r = Reader(call(txn_coord.bootstrap, 24, 1, s16("isr-app") + struct.pack(">qh", pid, epoch) +
                       struct.pack(">i", 1) + s16("tin") + struct.pack(">ii", 1, 0)))
        r.take(">i")
        assert r.take(">i") == 1 and r.s16() == b"tin" and r.take(">i") == 1
        assert r.take(">i") == 0 and r.take(">h") == 0
        followers = [b for b in brokers if b is not group_coord and b is not txn_coord]
        stopped = followers[0]
        stopped.proc.send_signal(signal.SIGSTOP)
        body = s16("isr-app") + s16("isr-group") + struct.pack(">qh", pid, epoch)
        body += struct.pack(">i", 1) + s16("tin") + struct.pack(">i", 1)
        body += struct.pack(">iqi", 0, 42, -1) + s16("")
        t0 = time.time()
        r = Reader(call(group_coord.bootstrap, 28, 2, body))
        took = time.time() - t0
        r.take(">i")
        assert r.take(">i") == 1 and r.s16() == b"tin"
        assert r.take(">i") == 1 and r.take(">i") == 0
        assert r.take(">h") == 15, "answered before the ISR had the offsets"   # COORDINATOR_NOT_AVAILABLE
        assert took >= 4.5, took
    finally:
        if stopped is not None:
            stopped.proc.send_signal(signal.SIGCONT)
        for b in brokers:
            b.stop()


def test_markers_follow_a_broker_to_its_new_address(tmp_path, zookeeper):
    """The coordinator keeps a connection per broker for its markers; a broker back at another
    port (its new registration) gets them there, so a transaction on its partition completes."""
    from conftest import free_port
    brokers = start_txn_cluster(tmp_path, zookeeper, "/txn-", txn_cluster_configs(1, 1, 1))
    try:
        _, txn_node = find_coordinator(brokers, "mover", 1)
        host = [i for i in (1, 2, 3) if i != txn_node][0]
        mover = brokers[host - 1]
        others = [b for b in brokers if b is not mover]
        admin = AdminClient({"bootstrap.servers": others[0].bootstrap})
        for f in admin.create_topics([NewTopic("cmv", num_partitions=1,
                                               replica_assignment=[[host]])]).values():
            f.result(20)

        def one_transaction(boot, value):
            p = Producer({"bootstrap.servers": boot, "transactional.id": "mover",
                          "message.timeout.ms": 30000})
            p.init_transactions(60)
            p.begin_transaction()
            p.produce("cmv", value, partition=0)
            p.commit_transaction(60)

        one_transaction(",".join(b.bootstrap for b in brokers), b"first")
        mover.stop()
        mover.port = free_port()
        mover.start()
        boot = ",".join(b.bootstrap for b in brokers)
        one_transaction(boot, b"second")
        assert read_values(boot, "cmv", "read_committed", 2, partitions=1) == [b"first", b"second"]
    finally:
        for b in brokers:
            b.stop()
