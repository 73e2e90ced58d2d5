"""Idempotent producers across a failover (issue 16), on 3 gregor brokers and a real ZooKeeper,
raw wire so that the very same batch (producer id, epoch, sequence) is sent again on purpose:

- producer ids are unique in the cluster: each broker takes blocks of 1000 from
  /latest_producer_id_block with a versioned write, as Kafka 3.9's ZooKeeper mode
  (ProducerIdBlockZNode), the next block before the current one runs out; a restarted broker
  continues after the latest block; with no block at hand InitProducerId is answered
  COORDINATOR_LOAD_IN_PROGRESS, as Kafka answers it;
- a batch acknowledged with acks=all and sent again to the new leader after a kill -9 of the old
  one is answered with its original base offset and not stored twice; the next sequence appends;
- a batch that reached only the old leader and one follower (the other follower held with
  SIGSTOP, so the produce timed out) is truncated away when the held follower leads; once a
  replica that truncated it leads, the producer's retry of it is appended, not answered
  DUPLICATE from a sequence the log no longer holds (acked and lost)."""
import json
import os
import signal
import socket
import struct
import time

import pytest

from kafka_wire import _request, record_batch, s16
from test_cluster_topics import stop_all
from test_replication_failover import by_id, create_topic, metadata, state_of, wait_isr
from test_replication_follower import batches, log_bytes
from zk_fixture import ZkReader, start_brokers, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

NONE = 0
REQUEST_TIMED_OUT = 7
COORDINATOR_LOAD_IN_PROGRESS = 14
BLOCK = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
# Long enough that a follower held with SIGSTOP for a few seconds keeps its registration.
SESSION_MS = 6000
ELECTION_BOUND_S = 10
FETCH_WAIT_MS = 500  # replica.fetch.wait.max.ms (Kafka's default, said here)
FAST_STOP = {"controlled.shutdown.max.retries": 1, "zookeeper.session.timeout.ms": SESSION_MS,
             "replica.fetch.wait.max.ms": FETCH_WAIT_MS}


def connect(b):
    host, port = b.bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def init_producer_id(sock, corr=1):
    """InitProducerId v1 (no transactional id): (error, producer id, epoch)."""
    resp = _request(sock, 22, 1, corr, s16(None) + struct.pack(">i", 60000))
    _, err, pid, epoch = struct.unpack(">ihqh", resp[:16])
    return err, pid, epoch


def new_producer_id(sock, stats=None, timeout=20):
    """An id, retrying COORDINATOR_LOAD_IN_PROGRESS as Kafka's clients do (bounded)."""
    deadline = time.time() + timeout
    while True:
        err, pid, epoch = init_producer_id(sock)
        if err == NONE:
            assert pid >= 0 and epoch == 0
            return pid
        assert err == COORDINATOR_LOAD_IN_PROGRESS and pid == -1, (err, pid)
        if stats is not None:
            stats["load_in_progress"] = stats.get("load_in_progress", 0) + 1
        assert time.time() < deadline, "no producer id within %ss" % timeout
        time.sleep(0.05)


def produce(b, topic, batch, acks=-1, timeout_ms=10000):
    """Produce v7 of one batch to partition 0 of b: (error, base offset)."""
    name = topic.encode()
    body = struct.pack(">hhi", -1, acks, timeout_ms)
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(batch)) + batch
    with connect(b) as s:
        s.settimeout(timeout_ms / 1000 + 30)
        resp = _request(s, 0, 7, 1, body)
    off = 4
    (nlen,) = struct.unpack_from(">h", resp, off)
    off += 2 + nlen + 4
    _, err, base = struct.unpack_from(">ihq", resp, off)
    return err, base


def block_znode(zk, chroot):
    r = ZkReader(zk.connect)
    try:
        data, stat = r.get(chroot + "/latest_producer_id_block")
    finally:
        r.close()
    return (json.loads(data) if data else None), stat["version"]


def registered(zk, chroot, broker_id):
    r = ZkReader(zk.connect)
    try:
        return r.exists("%s/brokers/ids/%d" % (chroot, broker_id))
    finally:
        r.close()


def log_end(b, topic):
    bs = batches(log_bytes(b, topic, 0))
    return bs[-1][1] + 1 if bs else 0


def read_values(b, topic, end):
    """The values of partition 0 from offset 0 to end, read from b's segment files: [(offset,
    value)] (uncompressed batches of null-key records, as record_batch writes them)."""
    data = log_bytes(b, topic, 0)
    out, off = [], 0
    while off + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, off)
        (count,) = struct.unpack_from(">i", data, off + 57)
        p = off + 61
        for _ in range(count):
            ln, p = varint(data, p)
            rec_end = p + ln
            p += 1  # attributes
            _, p = varint(data, p)  # timestamp delta
            delta, p = varint(data, p)
            klen, p = varint(data, p)
            p += max(klen, 0)
            vlen, p = varint(data, p)
            out.append((base + delta, data[p:p + vlen]))
            p = rec_end
        off += 12 + length
    return [(o, v) for o, v in out if o < end]


def varint(data, p):
    shift, n = 0, 0
    while True:
        byte = data[p]
        p += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (n >> 1) ^ -(n & 1), p


def test_producer_ids_unique_in_the_cluster_from_zookeeper_blocks(tmp_path, zookeeper):
    chroot = "/pid1"
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1, 2, 3), FAST_STOP)
    try:
        ids = by_id(brokers)
        stats = {}
        handed = {1: [], 2: [], 3: []}
        socks = {i: connect(b) for i, b in ids.items()}
        try:
            for n in range(30):  # 30 producers, each through the next broker in turn
                i = 1 + n % 3
                handed[i].append(new_producer_id(socks[i], stats))
        finally:
            for s in socks.values():
                s.close()
        every = [p for i in handed for p in handed[i]]
        assert len(set(every)) == 30, handed
        # Each broker's ids come from one block of its own; the blocks are disjoint.
        blocks = {i: min(handed[i]) // BLOCK for i in handed}
        for i in handed:
            assert all(p // BLOCK == blocks[i] for p in handed[i]), handed
        assert len(set(blocks.values())) == 3, blocks
        assert all(0 <= k < 3 for k in blocks.values()), blocks  # the first three blocks
        # The znode holds the latest block, as Kafka 3.9 writes it.
        znode, _ = block_znode(zookeeper, chroot)
        assert znode["version"] == 1
        assert isinstance(znode["block_start"], str) and isinstance(znode["block_end"], str)
        start, end = int(znode["block_start"]), int(znode["block_end"])
        assert (start, end) == (2 * BLOCK, 3 * BLOCK - 1), znode
        assert blocks[znode["broker"]] == 2, (znode, blocks)
        assert max(every) <= end

        # One broker hands out a whole block and more: the next is taken before this one runs
        # out (the znode moves past 90 %), and the ids go on without a repeat.
        b1 = ids[1]
        crossing = {}
        with connect(b1) as s:
            more = [new_producer_id(s, crossing) for _ in range(BLOCK)]
        assert len(set(more + every)) == BLOCK + 30
        assert all(x > y for x, y in zip(more[1:], more)), "ids go up"
        znode, _ = block_znode(zookeeper, chroot)
        assert int(znode["block_start"]) == 3 * BLOCK and znode["broker"] == 1, znode
        assert more[-1] // BLOCK == 3, more[-3:]

        # A broker killed and started again continues after the latest block (once its old
        # session's registration is gone: Kafka refuses to register over it too).
        ids[2].kill9()
        wait_until(lambda: not registered(zookeeper, chroot, 2), SESSION_MS / 1000 + 10,
                   what="broker 2's registration expired")
        ids[2].start()
        with connect(ids[2]) as s:
            after = new_producer_id(s, stats)
        znode, _ = block_znode(zookeeper, chroot)
        assert (int(znode["block_start"]), znode["broker"]) == (4 * BLOCK, 2), znode
        assert after == 4 * BLOCK
        print("ids %s; COORDINATOR_LOAD_IN_PROGRESS answered %d times at start or restart, %d "
              "times while 1000 ids crossed into the next block"
              % ({i: (min(v), max(v)) for i, v in handed.items()},
                 stats.get("load_in_progress", 0), crossing.get("load_in_progress", 0)))
    finally:
        stop_all(brokers)


def test_no_block_at_hand_answers_coordinator_load_in_progress(tmp_path, zookeeper):
    """A znode no broker can take a block after (here: not a block) leaves InitProducerId
    answered COORDINATOR_LOAD_IN_PROGRESS; once it holds a block again (another writer's, as
    Kafka's after a migration), the next InitProducerId takes the block after it."""
    chroot = "/pid4"
    r = ZkReader(zookeeper.connect)
    try:
        r.create(chroot)
        r.create(chroot + "/latest_producer_id_block", b"not a block")
    finally:
        r.close()
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1,), FAST_STOP)
    try:
        with connect(brokers[0]) as s:
            for corr in range(3):
                assert init_producer_id(s, corr) == (COORDINATOR_LOAD_IN_PROGRESS, -1, -1)
                time.sleep(0.1)  # past the 50 ms back-off: each asks ZooKeeper again
            r = ZkReader(zookeeper.connect)
            try:
                r.set(chroot + "/latest_producer_id_block",
                      b'{"version":1,"broker":7,"block_start":"4000","block_end":"4999"}')
            finally:
                r.close()
            pid = new_producer_id(s)
        assert pid == 5 * BLOCK
        znode, _ = block_znode(zookeeper, chroot)
        assert znode == {"version": 1, "broker": 1, "block_start": "5000", "block_end": "5999"}
    finally:
        stop_all(brokers)


def wait_leader(zk, chroot, topic, not_in, timeout):
    return wait_until(lambda: (lambda s: s if s["leader"] not in not_in else None)(
        state_of(zk, chroot, topic, 0)[0]), timeout, what="a new leader of %s-0" % topic)


def test_retry_after_leader_kill9_answered_with_original_offset(tmp_path, zookeeper):
    chroot = "/pid2"
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1, 2, 3), FAST_STOP)
    try:
        ids = by_id(brokers)
        create_topic(brokers[0], "idem", 1, {"min.insync.replicas": "2"})
        replicas = wait_until(lambda: metadata(brokers[0], "idem").get(0, (0, []))[1], 15,
                              what="the assignment")
        st = wait_isr(zookeeper, chroot, "idem", 0, replicas)
        leader = ids[st["leader"]]
        with connect(leader) as s:
            pid = new_producer_id(s)
        first = record_batch([b"a%d" % i for i in range(5)], pid, 0, 0)
        assert produce(leader, "idem", first) == (NONE, 0)
        survivors = [b for b in brokers if b is not leader]
        wait_until(lambda: all(log_end(b, "idem") == 5 for b in survivors), 10,
                   what="the followers hold the batch")
        leader.kill9()
        st2 = wait_leader(zookeeper, chroot, "idem", (st["leader"], -1),
                          SESSION_MS / 1000 + ELECTION_BOUND_S)
        new = ids[st2["leader"]]
        wait_until(lambda: produce(new, "idem", first)[0] == NONE, 15,
                   what="the new leader takes produces")
        # Sent once more on purpose: the same answer, nothing appended.
        assert produce(new, "idem", first) == (NONE, 0)
        assert log_end(new, "idem") == 5
        nxt = record_batch([b"b%d" % i for i in range(3)], pid, 0, 5)
        assert produce(new, "idem", nxt) == (NONE, 5)
        wait_until(lambda: all(log_end(b, "idem") == 8 for b in survivors), 10,
                   what="both survivors hold 8 records")
        for b in survivors:
            values = [v for _, v in read_values(b, "idem", 8)]
            assert values == [b"a%d" % i for i in range(5)] + [b"b%d" % i for i in range(3)]
    finally:
        stop_all(brokers)


def test_retry_of_a_truncated_batch_is_appended_not_duplicate(tmp_path, zookeeper):
    chroot = "/pid3"
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1, 2, 3), FAST_STOP)
    held = None
    try:
        ids = by_id(brokers)
        create_topic(brokers[0], "trunc", 1, {"min.insync.replicas": "2"})
        replicas = wait_until(lambda: metadata(brokers[0], "trunc").get(0, (0, []))[1], 15,
                              what="the assignment")
        st = wait_isr(zookeeper, chroot, "trunc", 0, replicas)
        assert st["leader"] == replicas[0]
        r0, r1, r2 = (ids[r] for r in replicas)  # r0 leads; r1 leads after it (assignment order)
        with connect(r0) as s:
            pid = new_producer_id(s)
        committed = record_batch([b"c%d" % i for i in range(4)], pid, 0, 0)
        assert produce(r0, "trunc", committed) == (NONE, 0)
        wait_until(lambda: log_end(r1, "trunc") == 4 and log_end(r2, "trunc") == 4, 10,
                   what="all replicas hold the first batch")
        # r1 held: the next batch reaches r0 and r2 only, acks=all times out (r1 is in the ISR).
        # Its fetch parked at r0 is answered (empty) after replica.fetch.wait.max.ms first, so
        # no answer carrying the batch waits in its socket for when it runs again.
        os.kill(r1.proc.pid, signal.SIGSTOP)
        held = r1
        time.sleep(FETCH_WAIT_MS / 1000 * 3)
        lost = record_batch([b"x%d" % i for i in range(5)], pid, 0, 4)
        assert produce(r0, "trunc", lost, timeout_ms=1000)[0] == REQUEST_TIMED_OUT
        wait_until(lambda: log_end(r2, "trunc") == 9, 10, what="r2 fetched the batch")
        # r0 dies before r1 runs again: r1 never sees the batch, and leads (first live ISR
        # replica in assignment order); r0 and r2 truncate it when they follow r1.
        r0.kill9()
        os.kill(r1.proc.pid, signal.SIGCONT)
        held = None
        st2 = wait_leader(zookeeper, chroot, "trunc", (replicas[0], -1),
                          SESSION_MS / 1000 + ELECTION_BOUND_S)
        assert st2["leader"] == replicas[1], st2
        wait_until(lambda: log_end(r2, "trunc") == 4, 15, what="r2 truncated the batch")
        r0.start()
        wait_until(lambda: log_end(r0, "trunc") == 4, 20, what="r0 truncated the batch")
        wait_isr(zookeeper, chroot, "trunc", 0, replicas)
        # r1 leaves with a controlled shutdown: r0 (first in assignment order) leads, with the
        # producer state of a replica that truncated the batch.
        r1.stop()
        st3 = wait_leader(zookeeper, chroot, "trunc", (replicas[1], -1), ELECTION_BOUND_S)
        assert st3["leader"] == replicas[0], st3
        wait_until(lambda: produce(r0, "trunc", committed)[0] == NONE, 15,
                   what="r0 takes produces")
        # The producer's retry of the batch that timed out: stored now, at the log end.
        assert produce(r0, "trunc", lost) == (NONE, 4)
        assert log_end(r0, "trunc") == 9
        assert produce(r0, "trunc", lost) == (NONE, 4)  # and now it is a duplicate
        nxt = record_batch([b"y%d" % i for i in range(2)], pid, 0, 9)
        assert produce(r0, "trunc", nxt) == (NONE, 9)
        want = ([b"c%d" % i for i in range(4)] + [b"x%d" % i for i in range(5)]
                + [b"y%d" % i for i in range(2)])
        wait_until(lambda: log_end(r2, "trunc") == 11, 10, what="r2 holds 11 records")
        for b in (r0, r2):
            assert [v for _, v in read_values(b, "trunc", 11)] == want
    finally:
        if held is not None and held.proc is not None:
            os.kill(held.proc.pid, signal.SIGCONT)
        stop_all(brokers)


def test_duplicate_at_acks_all_waits_for_the_followers_as_the_original(tmp_path, zookeeper):
    """A batch written with acks=1 to the leader alone (both followers held with SIGSTOP), sent
    again with acks=all: a duplicate, not appended again, and answered as Kafka answers its
    duplicate LogAppendInfo, once the high watermark passes the original's offsets (here the
    request times out); answered at once, it would acknowledge records the next leader may
    not hold (an idempotent producer then meets a sequence gap there: a fatal
    OUT_OF_ORDER_SEQUENCE). Once the followers run again, the same retry is answered with the
    original offset."""
    chroot = "/pid4"
    brokers = start_brokers(tmp_path, zookeeper.connect + chroot, (1, 2, 3), FAST_STOP)
    held = []
    try:
        ids = by_id(brokers)
        create_topic(brokers[0], "dupw", 1, {"min.insync.replicas": "2"})
        replicas = wait_until(lambda: metadata(brokers[0], "dupw").get(0, (0, []))[1], 15,
                              what="the assignment")
        st = wait_isr(zookeeper, chroot, "dupw", 0, replicas)
        leader = ids[st["leader"]]
        followers = [b for b in brokers if b is not leader]
        with connect(leader) as s:
            pid = new_producer_id(s)
        first = record_batch([b"a%d" % i for i in range(3)], pid, 0, 0)
        assert produce(leader, "dupw", first) == (NONE, 0)
        wait_until(lambda: all(log_end(b, "dupw") == 3 for b in followers), 10,
                   what="the followers hold the first batch")
        for b in followers:
            os.kill(b.proc.pid, signal.SIGSTOP)
            held.append(b)
        time.sleep(FETCH_WAIT_MS / 1000 * 3)  # their parked fetches answered (empty) first
        second = record_batch([b"b%d" % i for i in range(4)], pid, 0, 3)
        assert produce(leader, "dupw", second, acks=1) == (NONE, 3)
        t0 = time.time()
        err, _ = produce(leader, "dupw", second, acks=-1, timeout_ms=1000)
        waited = time.time() - t0
        assert err == REQUEST_TIMED_OUT, (err, waited)
        assert waited >= 0.9, waited
        assert log_end(leader, "dupw") == 7  # not appended again
        for b in followers:
            os.kill(b.proc.pid, signal.SIGCONT)
        held = []
        assert produce(leader, "dupw", second, acks=-1) == (NONE, 3)
        assert log_end(leader, "dupw") == 7
        wait_until(lambda: all(log_end(b, "dupw") == 7 for b in followers), 10,
                   what="the followers hold the second batch")
    finally:
        for b in held:
            if b.proc is not None:
                os.kill(b.proc.pid, signal.SIGCONT)
        stop_all(brokers)
