"""Transactions with the coordinator (issue 18, step 2): confluent-kafka transactional producers
against one gregor broker — commit and abort seen by read_committed and read_uncommitted
consumers, a second producer with the same transactional.id fencing the first, and a
transaction left open across a restart (SIGTERM, kill -9) timed out and aborted by the
reloaded coordinator. Raw wire for what the clients do not show: DescribeTransactions,
ListTransactions, AddPartitionsToTxn of an unknown partition, ApiVersions ranges."""
import os
import socket
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import _request, cstr, flexible_call, uvarint  # noqa: E402
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from txn_util import add_partitions_v3, consume, init_transactional, make_topic, txn_producer  # noqa: E402


def consume_all(bootstrap, topic, isolation, expect, timeout=20):
    """The values a fresh consumer (subscribed) reads from the start, once it has `expect` of
    them (or the timeout passed) and a second more: nothing more must come."""
    return consume(bootstrap, topic, isolation, expect, timeout, settle=1.0)


def test_commit_and_abort_seen_by_isolation_level(broker):
    b = broker.bootstrap
    make_topic(b, "tx-basic")
    p = txn_producer(b, "app-basic")
    p.init_transactions(15)
    p.begin_transaction()
    p.produce("tx-basic", b"c1")
    p.produce("tx-basic", b"c2")
    p.commit_transaction(15)
    p.begin_transaction()
    p.produce("tx-basic", b"a1")
    p.flush(10)
    p.abort_transaction(15)
    p.begin_transaction()
    p.produce("tx-basic", b"c3")
    p.commit_transaction(15)
    assert consume_all(b, "tx-basic", "read_committed", 3) == [b"c1", b"c2", b"c3"]
    assert consume_all(b, "tx-basic", "read_uncommitted", 4) == [b"c1", b"c2", b"a1", b"c3"]


def test_second_producer_fences_the_first(broker):
    b = broker.bootstrap
    make_topic(b, "tx-fence")
    p1 = txn_producer(b, "app-fence")
    p1.init_transactions(15)
    p1.begin_transaction()
    p1.produce("tx-fence", b"old")
    p1.flush(10)
    p2 = txn_producer(b, "app-fence")
    # the open transaction of p1 is aborted first (the coordinator answers
    # CONCURRENT_TRANSACTIONS meanwhile, which the client retries)
    p2.init_transactions(30)
    with pytest.raises(KafkaException) as exc:
        p1.produce("tx-fence", b"late")
        p1.commit_transaction(15)
    err = exc.value.args[0]
    assert err.fatal(), err
    assert err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                          KafkaError.INVALID_PRODUCER_EPOCH), err
    p2.begin_transaction()
    p2.produce("tx-fence", b"new")
    p2.commit_transaction(15)
    assert consume_all(b, "tx-fence", "read_committed", 1) == [b"new"]
    assert b"old" in consume_all(b, "tx-fence", "read_uncommitted", 2)


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_open_transaction_times_out_after_restart(broker_factory, how):
    broker = broker_factory(**{
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "300"})
    broker.start()
    b = broker.bootstrap
    make_topic(b, "tx-restart")
    p = txn_producer(b, "app-restart", **{"transaction.timeout.ms": 4000,
                                           "message.timeout.ms": 4000})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce("tx-restart", b"open")
    p.flush(10)
    if how == "kill9":
        broker.kill9()
        broker.start()
    else:
        assert broker.stop() == 0
        broker.start()
    assert "Finished loading transaction metadata" in broker.log()
    # the reloaded coordinator aborts the transaction once its 4 s have passed: the
    # partition's last stable offset moves on and a later commit becomes readable
    q = txn_producer(b, "app-restart-2")
    q.init_transactions(15)
    q.begin_transaction()
    q.produce("tx-restart", b"later")
    q.commit_transaction(15)
    assert consume_all(b, "tx-restart", "read_committed", 1, timeout=30) == [b"later"]
    state = describe(b, "app-restart")
    assert state["error"] == 0 and state["state"] == "CompleteAbort", state
    assert state["epoch"] >= 1, state   # the timeout bumped the epoch: the producer is fenced
    del p


# ---- raw wire ----

def describe(bootstrap, txn_id):
    """DescribeTransactions v0 of one id."""
    r = flexible_call(bootstrap, 65, 0, uvarint(2) + cstr(txn_id) + b"\x00")
    r.take(">i")
    assert r.uvarint() == 2
    out = {"error": r.take(">h"), "id": r.cstr(), "state": r.cstr(),
           "timeout": r.take(">i"), "start": r.take(">q"), "pid": r.take(">q"),
           "epoch": r.take(">h"), "topics": {}}
    for _ in range(r.uvarint() - 1):
        name = r.cstr()
        out["topics"][name] = [r.take(">i") for _ in range(r.uvarint() - 1)]
        r.tags()
    r.tags()
    return out


def list_transactions(bootstrap, states=(), pids=()):
    """ListTransactions v1: (error, unknown filters, [(id, pid, state)])."""
    body = uvarint(len(states) + 1) + b"".join(cstr(s) for s in states)
    body += uvarint(len(pids) + 1) + b"".join(struct.pack(">q", p) for p in pids)
    body += struct.pack(">q", -1) + b"\x00"
    r = flexible_call(bootstrap, 66, 1, body)
    r.take(">i")
    err = r.take(">h")
    unknown = [r.cstr() for _ in range(r.uvarint() - 1)]
    rows = []
    for _ in range(r.uvarint() - 1):
        rows.append((r.cstr(), r.take(">q"), r.cstr()))
        r.tags()
    return err, unknown, rows


def test_describe_and_list_transactions(broker):
    b = broker.bootstrap
    make_topic(b, "tx-desc", partitions=2)
    p = txn_producer(b, "app-desc")
    p.init_transactions(15)
    p.begin_transaction()
    p.produce("tx-desc", b"x", partition=1)
    p.produce("tx-desc", b"y", partition=0)
    p.flush(10)
    d = describe(b, "app-desc")
    assert d["error"] == 0 and d["state"] == "Ongoing", d
    assert d["topics"] == {"tx-desc": [0, 1]}, d
    assert d["start"] > 0 and d["pid"] >= 0
    err, unknown, rows = list_transactions(b, states=["Ongoing", "Nonsense"])
    assert err == 0 and unknown == ["Nonsense"]
    assert ("app-desc", d["pid"], "Ongoing") in rows
    p.commit_transaction(15)
    d2 = describe(b, "app-desc")
    assert d2["state"] == "CompleteCommit" and d2["topics"] == {} and d2["pid"] == d["pid"], d2
    assert list_transactions(b, states=["Ongoing"])[2] == []
    assert list_transactions(b, pids=[d["pid"]])[2] == [("app-desc", d["pid"], "CompleteCommit")]
    # only unknown states: nothing matches
    assert list_transactions(b, states=["Nonsense"])[2] == []
    assert describe(b, "no-such-id")["error"] == 105   # TRANSACTIONAL_ID_NOT_FOUND


def test_add_partitions_unknown_partition(broker):
    b = broker.bootstrap
    make_topic(b, "tx-add")
    err, pid, epoch = init_transactional(b, "app-add")
    assert err == 0 and pid >= 0 and epoch == 0
    # AddPartitionsToTxn v3: tx-add-0 exists, tx-add-5 and no-such-topic-0 do not
    errs = add_partitions_v3(b, "app-add", pid, epoch, {"tx-add": [0, 5], "no-such-topic": [0]})
    assert errs == {("tx-add", 0): 55, ("tx-add", 5): 3, ("no-such-topic", 0): 3}
    # nothing was added
    assert describe(b, "app-add")["topics"] == {}
    # a second InitProducerId of the id bumps its epoch
    assert init_transactional(b, "app-add") == (0, pid, 1)


def test_api_versions_advertise_transactions(broker):
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        resp = _request(s, 18, 0, 5, b"")
    err, n = struct.unpack_from(">hi", resp, 0)
    assert err == 0
    ranges = {}
    for i in range(n):
        k, lo, hi = struct.unpack_from(">hhh", resp, 6 + 6 * i)
        ranges[k] = (lo, hi)
    assert ranges[24] == (0, 5) and ranges[25] == (0, 4) and ranges[26] == (0, 5)
    assert ranges[65] == (0, 0) and ranges[66] == (0, 1)


def committed(bootstrap, group, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return [tp.offset for tp in c.committed([TopicPartition(topic, 0)], timeout=15)]
    finally:
        c.close()


def test_offsets_committed_with_the_transaction(broker):
    """send_offsets_to_transaction (AddOffsetsToTxn + TxnOffsetCommit): the group's offsets are
    the committed transaction's, an aborted transaction's never show, and both survive a
    restart (replayed from __consumer_offsets with their markers)."""
    b = broker.bootstrap
    make_topic(b, "tx-in")
    make_topic(b, "tx-out")
    plain = Producer({"bootstrap.servers": b})
    for i in range(10):
        plain.produce("tx-in", b"m%d" % i)
    plain.flush(10)
    group = "eos-group"
    c = Consumer({"bootstrap.servers": b, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.subscribe(["tx-in"])
    p = txn_producer(b, "app-eos")
    p.init_transactions(15)

    def process(count, commit):
        got = 0
        deadline = time.time() + 20
        while got < count and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            if got == 0:
                p.begin_transaction()
            p.produce("tx-out", m.value().upper())
            got += 1
        assert got == count
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 15)
        if commit:
            p.commit_transaction(15)
        else:
            p.abort_transaction(15)

    process(4, True)
    assert committed(b, group, "tx-in") == [4]
    process(3, False)          # read m4..m6, offsets 7 offered, then aborted
    assert committed(b, group, "tx-in") == [4]
    c.close()
    broker.restart()
    assert committed(b, group, "tx-in") == [4]
    assert consume_all(b, "tx-out", "read_committed", 4) == [b"M0", b"M1", b"M2", b"M3"]


def offset_fetch_v7(bootstrap, group, topic, require_stable):
    """OffsetFetch v7 of partition 0: (committed offset, error)."""
    body = cstr(group) + uvarint(2) + cstr(topic) + uvarint(2) + struct.pack(">i", 0) + b"\x00"
    body += struct.pack(">?", require_stable) + b"\x00"
    r = flexible_call(bootstrap, 9, 7, body)
    r.take(">i")
    assert r.uvarint() == 2 and r.cstr() == topic
    assert r.uvarint() == 2
    assert r.take(">i") == 0
    offset = r.take(">q")
    r.take(">i")
    r.cstr()
    return offset, r.take(">h")


def test_offset_fetch_require_stable(broker):
    """KIP-447: offsets an ongoing transaction holds answer UNSTABLE_OFFSET_COMMIT (88) to an
    OffsetFetch with require_stable, the last committed ones without it; after the commit both
    see the new offset."""
    b = broker.bootstrap
    make_topic(b, "tx-stable")
    group = "stable-group"
    c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("tx-stable", 0, 3)], asynchronous=False)
    p = txn_producer(b, "app-stable")
    p.init_transactions(15)
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition("tx-stable", 0, 7)],
                                  c.consumer_group_metadata(), 15)
    assert offset_fetch_v7(b, group, "tx-stable", True) == (-1, 88)
    assert offset_fetch_v7(b, group, "tx-stable", False) == (3, 0)
    p.commit_transaction(15)
    assert offset_fetch_v7(b, group, "tx-stable", True) == (7, 0)
    c.close()


def test_kafka_transactions_command(broker):
    """Kafka 4.x's own kafka-transactions.sh (TransactionsCommand: the Java admin client's
    listTransactions and describeTransactions) reads gregor's answers: the open transaction is
    listed as Ongoing and described with its producer and partition."""
    import subprocess
    from conftest import ROOT
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh"),
                        "classpath"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr[-3000:]
    cp = p.stdout.strip()
    b = broker.bootstrap
    make_topic(b, "tx-tools")
    prod = txn_producer(b, "app-tools")
    prod.init_transactions(15)
    prod.begin_transaction()
    prod.produce("tx-tools", b"x")
    assert prod.flush(10) == 0
    pid = describe(b, "app-tools")["pid"]

    def tool(*args):
        r = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                            "-Dlog4j.configuration=file:/dev/null", "-cp", cp,
                            "org.apache.kafka.tools.TransactionsCommand",
                            "--bootstrap-server", b] + list(args),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
        return [line.split() for line in r.stdout.splitlines() if line.strip()]

    rows = tool("list")
    assert ["app-tools", "0", str(pid), "Ongoing"] in rows, rows
    row = [r for r in tool("describe", "--transactional-id", "app-tools") if r[1:2] == ["app-tools"]]
    assert len(row) == 1 and row[0][:5] == ["0", "app-tools", str(pid), "0", "Ongoing"], row
    assert row[0][-1] == "tx-tools-0", row
    prod.commit_transaction(15)
    row = [r for r in tool("describe", "--transactional-id", "app-tools") if r[1:2] == ["app-tools"]]
    assert len(row) == 1 and row[0][4] == "CompleteCommit", row
