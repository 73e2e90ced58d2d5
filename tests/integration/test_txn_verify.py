"""KIP-890 part 1 (issue 18): a partition leader verifies with the transaction coordinator that a
partition is in the producer's ongoing transaction before a transactional batch starts a
transaction there, so a batch for a partition never added (or added to a transaction that has
ended) cannot open a hanging transaction that holds the last stable offset forever.
Raw wire: Produce v7 with a transactional id, AddPartitionsToTxn v3-v5 (v4+ the batched broker
form with VerifyOnly), EndTxn v5; on a 3-broker ZooKeeper cluster the leader asks a coordinator
on another broker over the network."""
import os
import signal
import struct
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import cstr, flexible_call, record_batch, uvarint  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from txn_util import (add_partitions_v3, call, consume, find_coordinator, init_transactional,  # noqa: E402
                      make_topic, read_partition_errors, txn_batch, write_markers_v1)
from txn_util import produce_v7 as produce  # noqa: E402

NONE, NOT_ENOUGH_REPLICAS, INVALID_TXN_STATE = 0, 19, 48
INVALID_PRODUCER_ID_MAPPING, OPERATION_NOT_ATTEMPTED, PRODUCER_FENCED = 49, 55, 90
UNKNOWN_TOPIC_OR_PARTITION, TRANSACTION_ABORTABLE = 3, 120


def produce_flexible(bootstrap, version, topic, partition, batch, txn_id):
    """Produce v9-12 (flexible) of one batch with a transactional id, acks=all: its error."""
    body = cstr(txn_id) + struct.pack(">hi", -1, 15000) + uvarint(2) + cstr(topic)
    body += uvarint(2) + struct.pack(">i", partition) + uvarint(len(batch) + 1) + batch
    body += b"\x00" + b"\x00" + b"\x00"
    r = flexible_call(bootstrap, 0, version, body)
    assert r.uvarint() == 2 and r.cstr() == topic and r.uvarint() == 2
    assert r.take(">i") == partition
    return r.take(">h")


def add_partitions_v4(bootstrap, version, transactions):
    """AddPartitionsToTxn v4/v5 of [(id, pid, epoch, verify_only, {topic: [partitions]})]:
    (top-level error, {id: {(topic, partition): error}})."""
    body = uvarint(len(transactions) + 1)
    for txn_id, pid, epoch, verify_only, topics in transactions:
        body += cstr(txn_id) + struct.pack(">qhb", pid, epoch, 1 if verify_only else 0)
        body += uvarint(len(topics) + 1)
        for name, parts in topics.items():
            body += cstr(name) + uvarint(len(parts) + 1)
            body += b"".join(struct.pack(">i", p) for p in parts) + b"\x00"
        body += b"\x00"
    r = flexible_call(bootstrap, 24, version, body + b"\x00")
    r.take(">i")
    top = r.take(">h")
    out = {}
    for _ in range(r.uvarint() - 1):
        txn_id = r.cstr()
        errs = out.setdefault(txn_id, {})
        read_partition_errors(r, errs)
        r.tags()
    return top, out


def end_txn(bootstrap, txn_id, pid, epoch, commit, version=3):
    """EndTxn v3+: (error,) and for v5 also the producer id and epoch answered."""
    body = cstr(txn_id) + struct.pack(">qhb", pid, epoch, 1 if commit else 0) + b"\x00"
    r = flexible_call(bootstrap, 26, version, body)
    r.take(">i")
    err = r.take(">h")
    if version >= 5:
        return err, r.take(">q"), r.take(">h")
    return (err,)


def write_marker(bootstrap, pid, epoch, commit, topic, partition, coordinator_epoch=0):
    """WriteTxnMarkers v1 of one marker for one partition: its error code."""
    errs = write_markers_v1(bootstrap, [(pid, epoch, commit, coordinator_epoch)], topic, partition)
    assert len(errs) == 1
    return errs[0]


def list_offset(bootstrap, topic, isolation, partition=0):
    """ListOffsets v2 latest: the high watermark (0) or the last stable offset (1)."""
    name = topic.encode()
    body = struct.pack(">ib", -1, isolation) + struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iiq", 1, partition, -1)
    resp = call(bootstrap, 2, 2, body)
    off = 4 + 4 + 2 + len(name) + 4
    _, err, _, offset = struct.unpack(">ihqq", resp[off:off + 22])
    assert err == 0
    return offset


def read_committed(bootstrap, topic, expect, partitions=1, timeout=20):
    return sorted(consume(bootstrap, topic, "read_committed", expect, timeout, partitions))


def test_produce_to_a_partition_not_in_the_transaction_is_refused(broker):
    """The hanging transaction KIP-890 prevents: a transactional batch for a partition the
    producer never added. Before, it was appended and held the last stable offset (the
    coordinator never sends its marker) so read_committed readers stopped there."""
    b = broker.bootstrap
    make_topic(b, "tv-hang")
    err, pid, epoch = init_transactional(b, "app-hang")
    assert err == NONE
    err, _ = produce(b, "tv-hang", 0, txn_batch(pid, epoch, 0, [b"hanging"]), "app-hang")
    assert err == INVALID_TXN_STATE
    # Produce v11+ (clients that know it) gets the coordinator's TRANSACTION_ABORTABLE
    batch = txn_batch(pid, epoch, 0, [b"hanging"])
    assert produce_flexible(b, 10, "tv-hang", 0, batch, "app-hang") == INVALID_TXN_STATE
    assert produce_flexible(b, 11, "tv-hang", 0, batch, "app-hang") == TRANSACTION_ABORTABLE
    # nothing appended, the last stable offset not held
    assert list_offset(b, "tv-hang", 0) == 0
    assert list_offset(b, "tv-hang", 1) == 0
    # records after it reach read_committed readers
    p = Producer({"bootstrap.servers": b})
    p.produce("tv-hang", b"plain")
    assert p.flush(15) == 0
    assert read_committed(b, "tv-hang", 1) == [b"plain"]
    assert list_offset(b, "tv-hang", 1) == 1
    # added to the transaction, the same batch goes in and commits
    assert add_partitions_v3(b, "app-hang", pid, epoch, {"tv-hang": [0]}) == {("tv-hang", 0): NONE}
    err, base = produce(b, "tv-hang", 0, txn_batch(pid, epoch, 0, [b"added"]), "app-hang")
    assert (err, base) == (NONE, 1)
    assert end_txn(b, "app-hang", pid, epoch, True) == (NONE,)
    assert read_committed(b, "tv-hang", 2) == [b"added", b"plain"]
    # the transaction ended: a late batch of it (as a retry after the commit) is refused again
    err, _ = produce(b, "tv-hang", 0, txn_batch(pid, epoch, 1, [b"late"]), "app-hang")
    assert err == INVALID_TXN_STATE
    end = list_offset(b, "tv-hang", 0)
    assert list_offset(b, "tv-hang", 1) == end


def test_verification_off_appends_as_before(broker_factory):
    """transaction.partition.verification.enable=false: no question, the batch goes in (and
    holds the last stable offset, as Kafka without KIP-890)."""
    broker = broker_factory(**{"transaction.partition.verification.enable": "false"})
    broker.start()
    b = broker.bootstrap
    make_topic(b, "tv-off")
    err, pid, epoch = init_transactional(b, "app-off")
    assert err == NONE
    assert produce(b, "tv-off", 0, txn_batch(pid, epoch, 0, [b"x"]), "app-off") == (NONE, 0)
    assert list_offset(b, "tv-off", 0) == 1 and list_offset(b, "tv-off", 1) == 0


def test_add_partitions_v4_verify_only(broker):
    b = broker.bootstrap
    make_topic(b, "tv-ver", partitions=3)
    err, pid, epoch = init_transactional(b, "app-ver")
    assert err == NONE
    assert add_partitions_v3(b, "app-ver", pid, epoch, {"tv-ver": [0]}) == {("tv-ver", 0): NONE}
    ask = {"tv-ver": [0, 1]}
    # v4: a partition not in the transaction is INVALID_TXN_STATE (v4 predates
    # TRANSACTION_ABORTABLE), v5 TRANSACTION_ABORTABLE
    assert add_partitions_v4(b, 4, [("app-ver", pid, epoch, True, ask)]) == (
        NONE, {"app-ver": {("tv-ver", 0): NONE, ("tv-ver", 1): INVALID_TXN_STATE}})
    assert add_partitions_v4(b, 5, [("app-ver", pid, epoch, True, ask)]) == (
        NONE, {"app-ver": {("tv-ver", 0): NONE, ("tv-ver", 1): TRANSACTION_ABORTABLE}})
    # the producer's checks come first, for every partition
    assert add_partitions_v4(b, 5, [("app-ver", pid, epoch + 1, True, ask)]) == (
        NONE, {"app-ver": {("tv-ver", 0): PRODUCER_FENCED, ("tv-ver", 1): PRODUCER_FENCED}})
    assert add_partitions_v4(b, 5, [("app-ver", pid + 1000, epoch, True, ask)])[1]["app-ver"] == {
        ("tv-ver", 0): INVALID_PRODUCER_ID_MAPPING, ("tv-ver", 1): INVALID_PRODUCER_ID_MAPPING}
    # a batch of two transactions: VerifyOnly=false adds (as v3), unknown partitions are refused
    # whole, each transaction answered on its own
    err, pid2, epoch2 = init_transactional(b, "app-ver2")
    assert err == NONE
    top, res = add_partitions_v4(b, 5, [
        ("app-ver2", pid2, epoch2, False, {"tv-ver": [2]}),
        ("app-ver", pid, epoch, False, {"tv-ver": [1, 7]})])
    assert top == NONE
    assert res == {"app-ver2": {("tv-ver", 2): NONE},
                   "app-ver": {("tv-ver", 1): OPERATION_NOT_ATTEMPTED,
                               ("tv-ver", 7): UNKNOWN_TOPIC_OR_PARTITION}}
    assert add_partitions_v4(b, 4, [("app-ver2", pid2, epoch2, True, {"tv-ver": [2, 0]})]) == (
        NONE, {"app-ver2": {("tv-ver", 2): NONE, ("tv-ver", 0): INVALID_TXN_STATE}})
    # EndTxn v5 answers the transaction's producer id and epoch (transaction.version 1: no bump)
    assert end_txn(b, "app-ver2", pid2, epoch2, True, version=5) == (NONE, pid2, epoch2)
    assert end_txn(b, "app-ver2", pid2, epoch2 + 1, True, version=5) == (PRODUCER_FENCED, -1, -1)
    # after the end nothing is in the transaction any more
    assert add_partitions_v4(b, 5, [("app-ver2", pid2, epoch2, True, {"tv-ver": [2]})]) == (
        NONE, {"app-ver2": {("tv-ver", 2): TRANSACTION_ABORTABLE}})


# ---- a cluster: the coordinator on another broker ----

def test_verification_asks_a_remote_coordinator(tmp_path):
    from cluster_fixture import ZkEnsemble
    from zk_fixture import start_brokers, zookeeper_available, wait_until
    if not zookeeper_available():
        pytest.fail("Debian's zookeeper package is not installed: make test-deps", pytrace=False)
    ens = ZkEnsemble.on_free_ports(str(tmp_path / "zk"))
    ens.start()
    brokers = []
    try:
        brokers = start_brokers(tmp_path, ens.connect + "/kip890", (1, 2, 3),
                                {"zookeeper.session.timeout.ms": 3000,
                                 "transaction.state.log.num.partitions": 3,
                                 "transaction.state.log.replication.factor": 1,
                                 "transaction.state.log.min.isr": 1})
        by_id = dict(zip((1, 2, 3), brokers))
        boot = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": boot})
        for f in admin.create_topics([NewTopic("ctv", num_partitions=3,
                                               replica_assignment=[[1], [2], [3]])]).values():
            f.result(20)
        _, coord = find_coordinator(brokers, "remote-app", 1)
        cb = by_id[coord].bootstrap
        leader = next(i for i in (1, 2, 3) if i != coord)
        part = leader - 1            # partition i is led by broker i + 1
        lb = by_id[leader].bootstrap
        deadline = time.time() + 30
        while True:
            err, pid, epoch = init_transactional(cb, "remote-app")
            if err == NONE or time.time() > deadline:
                break
            time.sleep(0.3)
        assert err == NONE
        wait_until(lambda: produce(lb, "ctv", part, record_batch([b"warm"]), None)[0] == NONE, 20)
        # the leader holds no coordinator for the id: only the remote one knows the partition
        # is not in the transaction
        err, _ = produce(lb, "ctv", part, txn_batch(pid, epoch, 0, [b"hanging"]), "remote-app")
        assert err == INVALID_TXN_STATE
        assert list_offset(lb, "ctv", 1, partition=part) == list_offset(lb, "ctv", 0, partition=part)
        assert add_partitions_v3(cb, "remote-app", pid, epoch, {"ctv": [part]}) == {("ctv", part): NONE}
        # The guard: a marker of the producer lands on the leader between its question and the
        # coordinator's answer (the coordinator stopped meanwhile); the answer says "in the
        # transaction", but the append is refused, as the marker may have ended that
        # transaction. Before the guard the batch went in after the marker: a hanging one.
        result = {}
        by_id[coord].proc.send_signal(signal.SIGSTOP)
        try:
            t = threading.Thread(target=lambda: result.update(r=produce(
                lb, "ctv", part, txn_batch(pid, epoch, 0, [b"raced"]), "remote-app")))
            t.start()
            time.sleep(0.5)
            assert t.is_alive()      # waiting for the coordinator's answer
            assert write_marker(lb, pid, epoch, False, "ctv", part) == NONE
        finally:
            by_id[coord].proc.send_signal(signal.SIGCONT)
        t.join(20)
        assert result["r"][0] == INVALID_TXN_STATE
        # asked again, the guard is new: the batch goes in
        assert produce(lb, "ctv", part, txn_batch(pid, epoch, 0, [b"added"]), "remote-app")[0] == NONE
        assert end_txn(cb, "remote-app", pid, epoch, True) == (NONE,)
        got = read_committed(boot, "ctv", 2, partitions=3, timeout=30)
        assert got == [b"added", b"warm"]
        # the same through a client: a transaction over the three partitions commits
        p = Producer({"bootstrap.servers": boot, "transactional.id": "remote-app-2",
                      "message.timeout.ms": 30000})
        p.init_transactions(60)
        p.begin_transaction()
        for i in range(3):
            p.produce("ctv", b"c%d" % i, partition=i)
        p.commit_transaction(60)
        got = read_committed(boot, "ctv", 5, partitions=3, timeout=30)
        assert got == [b"added", b"c0", b"c1", b"c2", b"warm"]
    finally:
        for b in brokers:
            b.stop()
        ens.stop()
