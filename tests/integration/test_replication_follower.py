"""Followers fetch from their leader (issue 16, the follower's side): on a cluster of 3 gregor
brokers on a real ZooKeeper, every broker a partition's assignment names and that does not lead
it fetches the leader's batches with Kafka's Fetch (its replica id set) and appends them at the
leader's offsets, so every replica's segment files hold the same batches byte for byte; a
follower stopped and restarted catches up; one that comes back with a tail the leader does not
have truncates it through OffsetForLeaderEpoch (KIP-101/KIP-279) before fetching; followers
answer clients NOT_LEADER_OR_FOLLOWER; the fetchers' connections are num.replica.fetchers per
leader broker, partitions spread by Kafka's hash."""
import glob
import json
import os
import re
import struct
import subprocess

import pytest

from conftest import Broker
from kafka_wire import produce_v7, record_batch
from test_cluster_topics import (create, fetch_v4, leaders_seen, list_offsets_v1, start_cluster,
                                 stop_all, zk_json)
from zk_fixture import ZkReader, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

OFFSET_OUT_OF_RANGE = 1
NOT_LEADER_OR_FOLLOWER = 6
LAG_MS = 3000


def by_id(brokers):
    return {b.overrides["broker.id"]: b for b in brokers}


def log_bytes(b, topic, partition):
    """The partition's segment files in b's log dir, concatenated in offset order."""
    files = sorted(glob.glob(os.path.join(b.data_dir, "%s-%d" % (topic, partition), "*.log")))
    out = b""
    for f in files:
        with open(f, "rb") as fh:
            out += fh.read()
    return out


def batches(data):
    """[(base_offset, last_offset, partition_leader_epoch)] of a log's bytes."""
    out, off = [], 0
    while off + 61 <= len(data):
        base, length, epoch = struct.unpack(">qii", data[off:off + 16])
        (delta,) = struct.unpack(">i", data[off + 23:off + 27])
        out.append((base, base + delta, epoch))
        off += 12 + length
    assert off == len(data), "a torn batch at byte %d" % off
    return out


def replicas_match(brokers, topic, partition, want_records):
    """The leader's log ends at want_records and every broker holds the same bytes."""
    logs = [log_bytes(b, topic, partition) for b in brokers]
    bs = batches(logs[0]) if logs[0] else []
    if not bs or bs[-1][1] + 1 != want_records:
        return False
    return all(l == logs[0] for l in logs)


def produce_mixed(bootstrap, topic, per_producer):
    """Several producers, compressed and not, one idempotent; returns records sent by partition."""
    from confluent_kafka import Producer
    configs = [
        {"acks": "1", "compression.type": "none", "linger.ms": 2},
        {"acks": "1", "compression.type": "lz4", "linger.ms": 20, "batch.num.messages": 50},
        {"acks": "1", "compression.type": "gzip", "linger.ms": 20},
        {"enable.idempotence": True, "compression.type": "zstd", "linger.ms": 10},
    ]
    counts = {}
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            counts[msg.partition()] = counts.get(msg.partition(), 0) + 1

    for k, cfg in enumerate(configs):
        p = Producer(dict(cfg, **{"bootstrap.servers": bootstrap}))
        for i in range(per_producer):
            p.produce(topic, key=b"k%d" % (i % 17), value=b"p%d-%d-" % (k, i) + b"x" * (i % 200),
                      on_delivery=done)
            if i % 100 == 0:
                p.poll(0)
        assert p.flush(30) == 0
    assert not errors, errors[:3]
    return counts


def test_followers_hold_the_leaders_batches_byte_for_byte(tmp_path, zookeeper):
    brokers = start_cluster(tmp_path, zookeeper, "/follow1")
    try:
        create(brokers[0], "rep", 3, 3)
        seen = wait_until(lambda: all(leaders_seen(b, "rep") for b in brokers)
                          and leaders_seen(brokers[0], "rep"), 15, what="leaders")
        assert sorted(seen[p][0] for p in range(3)) == [1, 2, 3]  # assignments spread
        counts = produce_mixed(brokers[1].bootstrap, "rep", 400)
        assert sum(counts.values()) == 1600
        for p in range(3):
            wait_until(lambda: replicas_match(brokers, "rep", p, counts[p]), 30,
                       what="partition %d identical on every replica" % p)
            bs = batches(log_bytes(brokers[0], "rep", p))
            assert [b[0] for b in bs] == sorted(b[0] for b in bs)
        # Followers answer clients NOT_LEADER_OR_FOLLOWER; the leader answers.
        ids = by_id(brokers)
        for p in range(3):
            leader = seen[p][0]
            for bid, b in ids.items():
                err, _ = produce_v7(b.bootstrap, "rep", p, record_batch([b"raw"]), acks=1)
                f_err, _ = fetch_v4(b, "rep", p)
                lo_err, _ = list_offsets_v1(b, "rep", p)
                if bid == leader:
                    assert (err, f_err, lo_err) == (0, 0, 0)
                else:
                    assert (err, f_err, lo_err) == (NOT_LEADER_OR_FOLLOWER,) * 3, (p, bid)
        for p in range(3):
            wait_until(lambda: replicas_match(brokers, "rep", p, counts[p] + 1), 20,
                       what="the raw record replicated")
    finally:
        stop_all(brokers)


def test_follower_stopped_and_restarted_catches_up(tmp_path, zookeeper):
    # The idempotent producer's acks=all waits for the stopped follower until it leaves the ISR
    # (the leader's lag check: the controller does not take a dead follower out of the ISR).
    brokers = start_cluster(tmp_path, zookeeper, "/follow2",
                            extra={"replica.lag.time.max.ms": LAG_MS})
    try:
        create(brokers[0], "catch", 1, 3)
        seen = wait_until(lambda: leaders_seen(brokers[0], "catch"), 15, what="leader")
        ids = by_id(brokers)
        leader = ids[seen[0][0]]
        follower = next(b for b in brokers if b is not leader)
        first = produce_mixed(leader.bootstrap, "catch", 100)[0]
        wait_until(lambda: replicas_match(brokers, "catch", 0, first), 30, what="replicated")
        follower.stop()
        more = produce_mixed(leader.bootstrap, "catch", 300)[0]
        others = [b for b in brokers if b is not follower]
        wait_until(lambda: replicas_match(others, "catch", 0, first + more), 30,
                   what="the running follower has the new records")
        assert len(log_bytes(follower, "catch", 0)) < len(log_bytes(leader, "catch", 0))
        follower.start()
        wait_until(lambda: replicas_match(brokers, "catch", 0, first + more), 30,
                   what="the restarted follower caught up")
    finally:
        stop_all(brokers)


def test_divergent_tail_is_truncated_through_offset_for_leader_epoch(tmp_path, zookeeper):
    brokers = start_cluster(tmp_path, zookeeper, "/follow3")
    try:
        create(brokers[0], "div", 1, 3)
        seen = wait_until(lambda: leaders_seen(brokers[0], "div"), 15, what="leader")
        ids = by_id(brokers)
        lid = seen[0][0]
        leader = ids[lid]
        follower = next(b for b in brokers if b is not leader)
        rid, running = next((i, b) for i, b in ids.items() if b is not leader and b is not follower)
        for i in range(10):
            assert produce_v7(leader.bootstrap, "div", 0, record_batch([b"e0-%d" % i]), acks=1)[0] == 0
        wait_until(lambda: replicas_match(brokers, "div", 0, 10), 30, what="epoch 0 replicated")
        state = "/follow3/brokers/topics/div/partitions/0/state"
        wait_until(lambda: sorted(zk_json(zookeeper, state)["isr"]) == sorted(ids), 20,
                   what="both followers in the ISR")
        follower.stop()
        # The leader goes: the controller elects the running follower, the one live ISR member
        # (the stopped follower is still in the ISR, but not registered), in a newer epoch.
        leader.stop()
        wait_until(lambda: zk_json(zookeeper, state)["leader"] == rid, 20,
                   what="the running follower elected")
        new_epoch = zk_json(zookeeper, state)["leader_epoch"]
        assert new_epoch >= 1
        leader.start()  # it follows the new leader
        leader = running
        wait_until(lambda: produce_v7(leader.bootstrap, "div", 0, record_batch([b"e2-0"]),
                                      acks=1)[0] == 0, 20, what="the new leader serving")
        for i in range(1, 10):
            assert produce_v7(leader.bootstrap, "div", 0, record_batch([b"e2-%d" % i]), acks=1)[0] == 0
        # While the follower is down its log gets 5 batches of epoch 0 at offsets 10..14 that the
        # leader never had: the same log dir served alone (no ZooKeeper) takes them.
        alone = Broker(follower.data_dir, overrides={"broker.id": follower.overrides["broker.id"]})
        alone.start()
        try:
            for i in range(5):
                assert produce_v7(alone.bootstrap, "div", 0, record_batch([b"stale-%d" % i]),
                                  acks=1)[0] == 0
        finally:
            assert alone.stop() == 0
        tail = batches(log_bytes(follower, "div", 0))
        assert [b[0] for b in tail][-5:] == [10, 11, 12, 13, 14] and tail[-1][2] == 0
        assert [b[2] for b in batches(log_bytes(leader, "div", 0))][10:] == [new_epoch] * 10
        follower.start()
        wait_until(lambda: replicas_match(brokers, "div", 0, 20), 30,
                   what="the follower's divergent tail replaced by the leader's records")
        log = open(follower.log_path, "rb").read().decode(errors="replace")
        assert re.search(r"Truncating partition div-0 with TruncationState\(offset=10, "
                         r"completed=true\)", log), log[-3000:]
    finally:
        stop_all(brokers)


def test_leader_change_moves_the_followers(tmp_path, zookeeper):
    """The partition state written as a controller's election would write it (the ISR is the
    leader alone until the leader's side of issue 16, so the controller itself never moves a
    leader to a follower yet): the old leader follows the new one, the third replica moves its
    fetching there, and every replica ends with the same batches in both epochs."""
    brokers = start_cluster(tmp_path, zookeeper, "/follow6")
    try:
        create(brokers[0], "move", 1, 3)
        seen = wait_until(lambda: leaders_seen(brokers[0], "move"), 15, what="leader")
        ids = by_id(brokers)
        old_id = seen[0][0]
        new_id = next(i for i in sorted(ids) if i != old_id)
        for i in range(10):
            assert produce_v7(ids[old_id].bootstrap, "move", 0, record_batch([b"a%d" % i]),
                              acks=1)[0] == 0
        wait_until(lambda: replicas_match(brokers, "move", 0, 10), 30, what="replicated")
        path = "/follow6/brokers/topics/move/partitions/0/state"
        state = zk_json(zookeeper, path)
        new_state = dict(state, leader=new_id, leader_epoch=state["leader_epoch"] + 1,
                         isr=[new_id] + [i for i in sorted(ids) if i != new_id])
        r = ZkReader(zookeeper.connect)
        try:
            r.set(path, json.dumps(new_state, separators=(",", ":")).encode())
        finally:
            r.close()
        wait_until(lambda: all((leaders_seen(b, "move") or {}).get(0, (None,))[0] == new_id
                               for b in brokers), 20, what="every broker sees the new leader")
        wait_until(lambda: produce_v7(ids[new_id].bootstrap, "move", 0, record_batch([b"b0"]),
                                      acks=1)[0] == 0, 20, what="the new leader takes records")
        for i in range(1, 10):
            assert produce_v7(ids[new_id].bootstrap, "move", 0, record_batch([b"b%d" % i]),
                              acks=1)[0] == 0
        assert produce_v7(ids[old_id].bootstrap, "move", 0, record_batch([b"x"]),
                          acks=1)[0] == NOT_LEADER_OR_FOLLOWER
        wait_until(lambda: replicas_match(brokers, "move", 0, 20), 30,
                   what="every replica has both epochs' records")
        epochs = [b[2] for b in batches(log_bytes(ids[old_id], "move", 0))]
        assert epochs == [state["leader_epoch"]] * 10 + [state["leader_epoch"] + 1] * 10
        log = open(ids[old_id].log_path, "rb").read().decode(errors="replace")
        assert "leaderId=%d, fetcherId=0] Added partition move-0" % new_id in log
    finally:
        stop_all(brokers)


def delete_records_v0(b, topic, partition, offset):
    """DeleteRecords v0 through the wire: (error, low watermark)."""
    import socket
    from kafka_wire import _request
    name = topic.encode()
    body = struct.pack(">ih", 1, len(name)) + name + struct.pack(">iiqi", 1, partition, offset, 10000)
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        resp = _request(s, 21, 0, 7, body)
    off = 4 + 4
    (nlen,) = struct.unpack(">h", resp[off:off + 2])
    off += 2 + nlen + 4
    _, low, err = struct.unpack(">iqh", resp[off:off + 14])
    return err, low


def test_follower_behind_the_leaders_log_start_starts_over_there(tmp_path, zookeeper):
    # DeleteRecords moves the log start up to the high watermark at most (Kafka's
    # OFFSET_OUT_OF_RANGE past it), which the stopped follower holds until it leaves the ISR.
    brokers = start_cluster(tmp_path, zookeeper, "/follow5",
                            extra={"replica.lag.time.max.ms": LAG_MS})
    try:
        create(brokers[0], "gone", 1, 3)
        seen = wait_until(lambda: leaders_seen(brokers[0], "gone"), 15, what="leader")
        ids = by_id(brokers)
        leader = ids[seen[0][0]]
        follower = next(b for b in brokers if b is not leader)
        running = next(b for b in brokers if b is not leader and b is not follower)
        for i in range(10):
            assert produce_v7(leader.bootstrap, "gone", 0, record_batch([b"a%d" % i]), acks=1)[0] == 0
        wait_until(lambda: replicas_match(brokers, "gone", 0, 10), 30, what="replicated")
        follower.stop()
        # 10..14 in one batch, then the leader's log start moves inside it (DeleteRecords).
        batch = record_batch([b"b%d" % i for i in range(5)])
        assert produce_v7(leader.bootstrap, "gone", 0, batch, acks=1)[0] == 0
        assert produce_v7(leader.bootstrap, "gone", 0, record_batch([b"c"]), acks=1)[0] == 0
        assert delete_records_v0(leader, "gone", 0, 12) == (OFFSET_OUT_OF_RANGE, -1)
        state = "/follow5/brokers/topics/gone/partitions/0/state"
        wait_until(lambda: follower.overrides["broker.id"] not in zk_json(zookeeper, state)["isr"],
                   LAG_MS / 1000 + 10, what="the stopped follower leaves the ISR")
        wait_until(lambda: delete_records_v0(leader, "gone", 0, 12) == (0, 12), 10,
                   what="DeleteRecords once the high watermark passed 12")
        wait_until(lambda: replicas_match([leader, running], "gone", 0, 16), 30, what="replicated")
        wait_until(lambda: "Incremented log start offset to 12" in open(running.log_path, "rb")
                   .read().decode(errors="replace"), 10, what="the running follower's log start")
        follower.start()
        lead = log_bytes(leader, "gone", 0)
        starts, off = {}, 0
        while off < len(lead):
            base, length = struct.unpack(">qi", lead[off:off + 12])
            starts[base] = off
            off += 12 + length
        from_10 = lead[starts[10]:]
        wait_until(lambda: log_bytes(follower, "gone", 0) == from_10, 30,
                   what="the follower holds the leader's batches from 10 on, nothing before")
        log = open(follower.log_path, "rb").read().decode(errors="replace")
        assert "truncating fully (log 0..10) and starting at offset 12" in log, log[-3000:]
        assert "starting at offset 10" in log
    finally:
        stop_all(brokers)


def java_hash(s):
    h = 0
    for c in s:
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h


def fetcher_id(topic, partition, n):
    v = (31 * java_hash(topic) + partition) & 0xFFFFFFFF
    v = v - (1 << 32) if v >= 1 << 31 else v
    return (0 if v == -(1 << 31) else abs(v)) % n


def connections_to(pid, port):
    """Established TCP connections of process pid to 127.0.0.1:port."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return sum(1 for line in out.splitlines() if "pid=%d," % pid in line)


def set_num_replica_fetchers(b, node_id, n):
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
    res = ConfigResource(ConfigResource.Type.BROKER, str(node_id), incremental_configs=[
        ConfigEntry("num.replica.fetchers", str(n),
                    incremental_operation=AlterConfigOpType.SET)])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.incremental_alter_configs([res])[res].result(15)


def test_fetcher_connections_are_num_replica_fetchers_per_leader(tmp_path, zookeeper):
    brokers = start_cluster(tmp_path, zookeeper, "/follow4")
    try:
        create(brokers[0], "many", 12, 3)
        seen = wait_until(lambda: all(leaders_seen(b, "many") for b in brokers)
                          and leaders_seen(brokers[0], "many"), 20, what="leaders")
        ids = by_id(brokers)
        for p in range(12):
            assert produce_v7(ids[seen[p][0]].bootstrap, "many", p, record_batch([b"m%d" % p]),
                              acks=1)[0] == 0
        for p in range(12):
            wait_until(lambda: replicas_match(brokers, "many", p, 1), 30, what="replicated")

        def connections_as_kafka_hashes(n):
            for fid, fb in ids.items():
                for lid, lb in ids.items():
                    if lid == fid:
                        continue
                    want = {fetcher_id("many", p, n) for p in range(12) if seen[p][0] == lid}
                    if connections_to(fb.proc.pid, lb.port) != len(want):
                        return False
            return True
        wait_until(lambda: connections_as_kafka_hashes(1), 10, what="one connection per leader")
        # num.replica.fetchers is dynamic: 2 fetchers per leader, partitions spread by the hash.
        assert len({fetcher_id("many", p, 2) for p in range(12)}) == 2
        for bid, b in ids.items():
            set_num_replica_fetchers(b, bid, 2)
        wait_until(lambda: connections_as_kafka_hashes(2), 15, what="two connections per leader")
        for p in range(12):
            assert produce_v7(ids[seen[p][0]].bootstrap, "many", p, record_batch([b"n%d" % p]),
                              acks=1)[0] == 0
        for p in range(12):
            wait_until(lambda: replicas_match(brokers, "many", p, 2), 30, what="replicated again")
    finally:
        stop_all(brokers)


REPLICA_KEYS = {  # Kafka 3.9's defaults
    "num.replica.fetchers": "1",
    "replica.fetch.wait.max.ms": "500",
    "replica.fetch.min.bytes": "1",
    "replica.fetch.max.bytes": "1048576",
    "replica.fetch.response.max.bytes": "10485760",
    "replica.fetch.backoff.ms": "1000",
    "replica.socket.timeout.ms": "30000",
}


def broker_configs(b, node_id):
    from confluent_kafka.admin import AdminClient, ConfigResource
    res = ConfigResource(ConfigResource.Type.BROKER, str(node_id))
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    return admin.describe_configs([res])[res].result(15)


def test_replica_fetcher_keys_described_and_validated(tmp_path):
    b = Broker(str(tmp_path / "one"), overrides={"broker.id": 0})
    b.start()
    try:
        got = broker_configs(b, 0)
        for key, default in REPLICA_KEYS.items():
            assert key in got, key
            assert got[key].value == default and got[key].is_default, (key, got[key].value)
            assert got[key].is_read_only == (key != "num.replica.fetchers"), key
    finally:
        b.stop()
    b = Broker(str(tmp_path / "two"), overrides={"broker.id": 0, "replica.fetch.max.bytes": 2 << 20,
                                                  "replica.fetch.backoff.ms": 200})
    b.start()
    try:
        got = broker_configs(b, 0)
        assert got["replica.fetch.max.bytes"].value == str(2 << 20)
        assert not got["replica.fetch.max.bytes"].is_default
        assert got["replica.fetch.backoff.ms"].value == "200"
    finally:
        b.stop()
    for overrides, message in [
        ({"replica.fetch.max.bytes": -1}, "Invalid value -1 for configuration replica.fetch.max.bytes: "
                                          "Value must be at least 0"),
        ({"replica.fetch.backoff.ms": -5}, "Value must be at least 0"),
        ({"replica.fetch.response.max.bytes": -1}, "Value must be at least 0"),
        ({"replica.fetch.wait.max.ms": 40000}, "replica.socket.timeout.ms should always be at least "
                                               "replica.fetch.wait.max.ms"),
    ]:
        bad = Broker(str(tmp_path / "bad"), overrides=dict(overrides, **{"broker.id": 0}))
        with pytest.raises(RuntimeError) as e:
            bad.start()
        assert message in str(e.value), (overrides, str(e.value)[-500:])
