"""Shared helpers of the transaction tests (issue 18): raw-wire transactional requests
(InitProducerId, Produce v7, AddPartitionsToTxn v3, FindCoordinator, DescribeTransactions),
confluent-kafka transactional producers and isolation-level readers, and the brokers and
configs of the cluster transaction tests."""
import socket
import struct
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_wire import TRANSACTIONAL, Reader, _request, cstr, flexible_call, record_batch, s16, uvarint
from zk_fixture import start_brokers


def start_txn_cluster(tmp_path, zk, chroot_prefix, configs, ids=(1, 2, 3)):
    """Brokers `ids` on their own chroot of the ensemble zk."""
    chroot = chroot_prefix + uuid.uuid4().hex[:8]
    return start_brokers(tmp_path, zk.connect + chroot, ids, configs)


def make_topic(bootstrap, name, partitions=1, timeout=20, **kw):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1, **kw)]).values():
        f.result(timeout)


def txn_producer(bootstrap, txn_id, message_timeout_ms=20000, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id,
            "message.timeout.ms": message_timeout_ms}
    conf.update(extra)
    return Producer(conf)


def open_transaction(bootstrap, txn_id, topic, records, init_timeout=15, message_timeout_ms=20000):
    """A transactional producer with a transaction open holding `records`: values, or
    (partition, value) pairs; all flushed."""
    p = txn_producer(bootstrap, txn_id, message_timeout_ms)
    p.init_transactions(init_timeout)
    p.begin_transaction()
    for rec in records:
        if isinstance(rec, tuple):
            p.produce(topic, rec[1], partition=rec[0])
        else:
            p.produce(topic, rec)
    assert p.flush(30) == 0
    return p


def consume(bootstrap, topic, isolation, expect, timeout=20, partitions=None, settle=0.0):
    """The values a fresh consumer with isolation.level reads from the start, in the order read,
    once it has `expect` of them (or the timeout passed), then `settle` seconds more (nothing
    more must come). partitions=None subscribes (a group); a count assigns partitions 0..n-1."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "r-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation})
    if partitions is None:
        c.subscribe([topic])
    else:
        c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
    got = []
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and len(got) < expect:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        end = time.time() + settle
        while time.time() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
    finally:
        c.close()
    return got


def read_values(bootstrap, topic, isolation, expect, timeout=30, partitions=3):
    """The values of the topic's partitions read from the start with isolation.level (assigned:
    no group coordinator involved), once `expect` came or the timeout passed, sorted."""
    return sorted(consume(bootstrap, topic, isolation, expect, timeout, partitions, settle=1.5))


def call(bootstrap, api, version, body, timeout=20):
    """One non-flexible request on its own connection: the response body."""
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        return _request(s, api, version, 7, body)


def init_transactional(bootstrap, txn_id):
    """InitProducerId v4 (txn_id None: an idempotent producer id): (error, pid, epoch)."""
    r = flexible_call(bootstrap, 22, 4, cstr(txn_id) + struct.pack(">iqh", 60000, -1, -1) + b"\x00")
    r.take(">i")
    return r.take(">h"), r.take(">q"), r.take(">h")


def init_pid(bootstrap):
    """InitProducerId v4 without a transactional id: (producer id, epoch)."""
    err, pid, epoch = init_transactional(bootstrap, None)
    assert err == 0
    return pid, epoch


def produce_v7(bootstrap, topic, partition, batch, txn_id, timeout_ms=15000):
    """Produce v7 of one batch, acks=all, with a transactional id or None: (error, base offset)."""
    name = topic.encode()
    body = s16(txn_id) + struct.pack(">hi", -1, timeout_ms)
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, partition, len(batch)) + batch
    resp = call(bootstrap, 0, 7, body)
    off = 4 + 2 + len(name) + 4
    _, err, base = struct.unpack(">ihq", resp[off:off + 14])
    return err, base


def txn_batch(pid, epoch, seq, values):
    return record_batch(values, producer_id=pid, epoch=epoch, base_sequence=seq,
                        attributes=TRANSACTIONAL)


def read_partition_errors(r, errs):
    """The topics' partition results of an AddPartitionsToTxn v3+ response into errs:
    {(topic, partition): error}."""
    for _ in range(r.uvarint() - 1):
        name = r.cstr()
        for _ in range(r.uvarint() - 1):
            index = r.take(">i")
            errs[(name, index)] = r.take(">h")
            r.tags()
        r.tags()
    return errs


def write_markers_v1(bootstrap, markers, topic, partition):
    """WriteTxnMarkers v1 of [(pid, epoch, commit, coordinator epoch)], each for one partition:
    the error code of each."""
    body = uvarint(len(markers) + 1)
    for pid, epoch, commit, coordinator_epoch in markers:
        body += struct.pack(">qh?", pid, epoch, commit)
        body += uvarint(2) + cstr(topic) + uvarint(2) + struct.pack(">i", partition) + b"\x00"
        body += struct.pack(">i", coordinator_epoch) + b"\x00"
    r = flexible_call(bootstrap, 27, 1, body + b"\x00")
    errs = []
    for _ in range(r.uvarint() - 1):
        r.take(">q")
        for _ in range(r.uvarint() - 1):
            assert r.cstr() == topic
            for _ in range(r.uvarint() - 1):
                assert r.take(">i") == partition
                errs.append(r.take(">h"))
                r.tags()
            r.tags()
        r.tags()
    return errs


def add_partitions_v3(bootstrap, txn_id, pid, epoch, topics):
    """AddPartitionsToTxn v3 of {topic: [partitions]}: {(topic, partition): error}."""
    body = cstr(txn_id) + struct.pack(">qh", pid, epoch) + uvarint(len(topics) + 1)
    for name, parts in topics.items():
        body += cstr(name) + uvarint(len(parts) + 1)
        body += b"".join(struct.pack(">i", p) for p in parts) + b"\x00"
    r = flexible_call(bootstrap, 24, 3, body + b"\x00")
    r.take(">i")
    return read_partition_errors(r, {})


def find_coordinator(brokers, key, key_type, timeout=30):
    """FindCoordinator v1 until it names a live broker: (that Broker, its id)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = Reader(call(brokers[0].bootstrap, 10, 1, s16(key) + struct.pack(">b", key_type),
                        timeout=30))
        r.take(">i")
        err = r.take(">h")
        r.s16()
        node = r.take(">i")
        r.s16()
        port = r.take(">i")
        if err == 0:
            return [b for b in brokers if b.port == port][0], node
        time.sleep(0.2)
    raise AssertionError("no coordinator for %s" % key)


def java_partition(s, n):
    """Kafka's partitionFor: abs(javaStringHashCode(s)) % n."""
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return abs(h) % n if h != -(1 << 31) else 0


def txn_state(broker, txn_id):
    """DescribeTransactions v0 of one id at its coordinator: (error, state)."""
    r = flexible_call(broker.bootstrap, 65, 0, uvarint(2) + cstr(txn_id) + b"\x00")
    r.take(">i")
    assert r.uvarint() == 2
    err = r.take(">h")
    r.cstr()
    state = r.cstr()
    return err, state.decode() if isinstance(state, bytes) else state


def txn_cluster_configs(partitions, replication, min_isr, session_ms=3000, extra=None):
    """Broker configs of a cluster whose __consumer_offsets and __transaction_state have
    `partitions` partitions at `replication`, plus `extra`."""
    configs = {"zookeeper.session.timeout.ms": session_ms,
               "offsets.topic.num.partitions": partitions,
               "offsets.topic.replication.factor": replication,
               "transaction.state.log.num.partitions": partitions,
               "transaction.state.log.replication.factor": replication,
               "transaction.state.log.min.isr": min_isr}
    configs.update(extra or {})
    return configs
