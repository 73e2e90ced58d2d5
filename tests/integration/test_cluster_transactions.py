"""Transactions across a cluster of brokers on a real ZooKeeper (issue 18): __transaction_state
is a ZooKeeper topic created on the first FindCoordinator of a transactional id
(transaction.state.log.* configs), the coordinator is the leader of the id's partition, its
records wait for the ISR (acks=all), and the markers of partitions other brokers lead go to them
as WriteTxnMarkers. A confluent-kafka transactional producer writes to three partitions led by
three brokers: read_committed consumers see the committed transactions only."""
import time
import uuid

import pytest
from cluster_fixture import ZkEnsemble
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from zk_fixture import start_brokers, zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory):
    ens = ZkEnsemble.on_free_ports(str(tmp_path_factory.mktemp("zk")))
    ens.start()
    try:
        yield ens
    finally:
        ens.stop()


def read_values(bootstrap, topic, isolation, expect, timeout=30, partitions=3):
    """The values of the topic's partitions read from the start with isolation.level (assigned:
    no group coordinator involved), once `expect` came or the timeout passed, sorted."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "r-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
    got = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and len(got) < expect:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        end = time.time() + 1.5
        while time.time() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
    finally:
        c.close()
    return sorted(got)


def test_transactions_across_three_leaders(tmp_path, zookeeper):
    chroot = "/txn-" + uuid.uuid4().hex[:8]
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1, 2, 3),
                            {"zookeeper.session.timeout.ms": 3000,
                             "offsets.topic.num.partitions": 3,
                             "offsets.topic.replication.factor": 3,
                             "transaction.state.log.num.partitions": 3,
                             "transaction.state.log.replication.factor": 3,
                             "transaction.state.log.min.isr": 2})
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


def java_partition(s, n):
    """Kafka's partitionFor: abs(javaStringHashCode(s)) % n."""
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return abs(h) % n if h != -(1 << 31) else 0


def test_coordinator_killed_with_an_open_transaction(tmp_path, zookeeper):
    """kill -9 of the coordinator while a transaction is open: the new leader of the id's
    __transaction_state partition loads it from its replica, aborts it once its timeout passed
    (markers to the partitions' new leaders), and the partitions' last stable offsets move on."""
    chroot = "/txn-" + uuid.uuid4().hex[:8]
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1, 2, 3),
                            {"zookeeper.session.timeout.ms": 3000,
                             "offsets.topic.num.partitions": 3,
                             "offsets.topic.replication.factor": 3,
                             "transaction.state.log.num.partitions": 3,
                             "transaction.state.log.replication.factor": 3,
                             "transaction.state.log.min.isr": 2,
                             "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})
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
