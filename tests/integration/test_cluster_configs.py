"""Configs across a cluster on a real ZooKeeper (issue 15), as Kafka 3.9 in ZooKeeper mode keeps
them: CreateTopics writes /config/topics/<t> before the topic's znode; AlterConfigs and
IncrementalAlterConfigs on a topic or a broker (by id or the <default>) through any broker write
/config/<type>/<name> and a sequential /config/changes/config_change_<n>; every broker watches
/config/changes, reads the entity again and applies it (the leader's log follows), so
DescribeConfigs answers the same on every broker. Requests go to one chosen broker on the raw
wire (clients pick a broker of their own for topic configs). 3 brokers on one ZooKeeper, each
test in its own chroot."""
import json
import os
import struct
import subprocess

import pytest

from kafka_wire import Reader, cstr, flexible_call, produce_v7, record_batch, uvarint
from test_cluster_topics import start_cluster, stop_all, zk_get
from zk_fixture import ZkReader, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREGOR = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))

TOPIC, BROKER = 2, 4
SRC_TOPIC, SRC_DYNAMIC_BROKER, SRC_DYNAMIC_DEFAULT = 1, 2, 3
UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE = 3, 10
NOT_LEADER_OR_FOLLOWER = 6
BOUND_S = 10  # a change reaches every broker within this (measured: well under a second)


class ZkWriter(ZkReader):
    """The fixture's jute client plus setData and sequential create: another writer (a person
    with zkCli, Kafka 3.9's own tools) changing a config by hand."""

    def set(self, path, data):
        self._call(5, self._string(path) + struct.pack(">i", len(data)) + data +
                   struct.pack(">i", -1), path)

    def create_sequential(self, prefix, data):
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + self._string("world") + \
            self._string("anyone")
        body = self._call(1, self._string(prefix) + struct.pack(">i", len(data)) + data + acl +
                          struct.pack(">i", 2), prefix)
        (n,) = struct.unpack(">i", body[:4])
        return body[4:4 + n].decode()


def zk_children(zk, path):
    r = ZkReader(zk.connect)
    try:
        return r.children(path)
    finally:
        r.close()


def describe(b, rtype, name, keys=None):
    """DescribeConfigs v4 to broker b alone: (error, {key: (value, source)})."""
    body = uvarint(2) + bytes([rtype]) + cstr(name)
    if keys is None:
        body += uvarint(0)
    else:
        body += uvarint(len(keys) + 1) + b"".join(cstr(k) for k in keys)
    body += uvarint(0) + b"\x00\x00" + uvarint(0)
    r = flexible_call(b.bootstrap, 32, 4, body)
    r.take(">i")
    assert r.uvarint() == 2
    err = r.take(">h")
    r.cstr()
    r.take(">b")
    r.cstr()
    out = {}
    for _ in range(max(r.uvarint() - 1, 0)):
        key, value = r.cstr(), r.cstr()
        r.take(">b")
        source = r.take(">b")
        r.take(">b")
        for _ in range(max(r.uvarint() - 1, 0)):
            r.cstr(), r.cstr(), r.take(">b"), r.tags()
        r.take(">b")
        r.cstr()
        r.tags()
        out[key] = (value, source)
    return err, out


def incremental(b, rtype, name, ops):
    """IncrementalAlterConfigs v1 to broker b alone: [(key, op, value)] -> (error, message)."""
    body = uvarint(2) + bytes([rtype]) + cstr(name) + uvarint(len(ops) + 1)
    for key, op, value in ops:
        body += cstr(key) + bytes([op]) + cstr(value) + uvarint(0)
    body += uvarint(0) + b"\x00" + uvarint(0)
    r = flexible_call(b.bootstrap, 44, 1, body)
    r.take(">i")
    assert r.uvarint() == 2
    return r.take(">h"), r.cstr()


def create_on(b, name, configs, assignment):
    """CreateTopics v4 (non-flexible) to broker b alone, with an explicit assignment."""
    n = name.encode()
    body = struct.pack(">i", 1) + struct.pack(">h", len(n)) + n + struct.pack(">ih", -1, -1)
    body += struct.pack(">i", len(assignment))
    for p, reps in enumerate(assignment):
        body += struct.pack(">ii", p, len(reps)) + b"".join(struct.pack(">i", x) for x in reps)
    body += struct.pack(">i", len(configs))
    for k, v in configs.items():
        kb, vb = k.encode(), v.encode()
        body += struct.pack(">h", len(kb)) + kb + struct.pack(">h", len(vb)) + vb
    body += struct.pack(">i?", 20000, False)
    import socket
    from kafka_wire import _request
    host, port = b.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        resp = _request(s, 19, 4, 7, body)
    r = Reader(resp)
    r.take(">i")  # throttle
    assert r.take(">i") == 1
    r.s16()
    err = r.take(">h")
    msg = r.s16()
    return err, msg


def changes(zk, chroot):
    """{child: json} of /config/changes."""
    out = {}
    for c in zk_children(zk, chroot + "/config/changes"):
        out[c] = json.loads(zk_get(zk, chroot + "/config/changes/" + c)[0])
    return out


def by_id(brokers):
    return {int(b.overrides["broker.id"]): b for b in brokers}


def leader_of(b, topic):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    t = md.topics.get(topic)
    return t.partitions[0].leader if t is not None and 0 in t.partitions else -1


def test_create_writes_config_znode_and_every_broker_describes_it(tmp_path, zookeeper):
    chroot = "/configs1"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    a, b, c = brokers
    try:
        cfg = {"retention.ms": "86400000", "max.message.bytes": "2000", "segment.bytes": "1048576"}
        assert create_on(a, "withcfg", cfg, [[3]]) == (0, None)
        raw = zk_get(zookeeper, chroot + "/config/topics/withcfg")[0]
        # Kafka's ConfigEntityZNode: compact JSON, version 1, every value a string.
        assert raw.startswith(b'{"version":1,"config":{') and b" " not in raw, raw
        assert json.loads(raw) == {"version": 1, "config": cfg}
        assert create_on(b, "nocfg", {}, [[1]]) == (0, None)
        assert zk_get(zookeeper, chroot + "/config/topics/nocfg")[0] == b'{"version":1,"config":{}}'
        # Creation writes no notification (Kafka's createTopicWithAssignment does not).
        assert changes(zookeeper, chroot) == {}
        for x in (b, c):  # c leads it, b holds none of its logs: both answer from ZooKeeper
            def shown(x=x):
                err, got = describe(x, TOPIC, "withcfg", list(cfg))
                return err == 0 and got == {k: (v, SRC_TOPIC) for k, v in cfg.items()} and got
            wait_until(shown, BOUND_S, what="broker's DescribeConfigs shows the configs")
        # The leader (broker 3) opened its log with them: a record over 2000 bytes is refused.
        wait_until(lambda: leader_of(a, "withcfg") == 3, BOUND_S, what="broker 3 leads")
        err, _ = produce_v7(c.bootstrap, "withcfg", 0, record_batch([b"x" * 3000]))
        assert err == MESSAGE_TOO_LARGE
        assert produce_v7(c.bootstrap, "withcfg", 0, record_batch([b"x" * 100]))[0] == 0
    finally:
        stop_all(brokers)


def test_alter_through_one_broker_reaches_the_leader_and_every_broker(tmp_path, zookeeper):
    chroot = "/configs2"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    ids = by_id(brokers)
    try:
        assert create_on(ids[1], "alt", {"max.message.bytes": "5000"}, [[3]]) == (0, None)
        # Broker 1's view can name broker 3 before broker 3 has taken the leadership itself
        # (NOT_LEADER_OR_FOLLOWER until then): wait for broker 3's own answer.
        wait_until(lambda: leader_of(ids[1], "alt") == 3, BOUND_S, what="broker 3 leads")
        def first_produce():
            err = produce_v7(ids[3].bootstrap, "alt", 0, record_batch([b"y" * 3000]))[0]
            return None if err == NOT_LEADER_OR_FOLLOWER else (err,)
        (err,) = wait_until(first_produce, BOUND_S, what="broker 3 taking the leadership")
        assert err == 0
        # Through broker 2, which neither leads nor created the topic.
        assert incremental(ids[2], TOPIC, "alt", [("max.message.bytes", 0, "1000"),
                                                   ("retention.ms", 0, "3600000")]) == (0, None)
        znode = json.loads(zk_get(zookeeper, chroot + "/config/topics/alt")[0])
        assert znode == {"version": 1, "config": {"max.message.bytes": "1000",
                                                  "retention.ms": "3600000"}}
        notes = changes(zookeeper, chroot)
        assert list(notes.values()) == [{"version": 2, "entity_path": "topics/alt"}], notes
        (name,) = notes
        assert name.startswith("config_change_") and len(name) == len("config_change_") + 10
        for x in brokers:
            def shown(x=x):
                err, got = describe(x, TOPIC, "alt", ["max.message.bytes", "retention.ms"])
                return err == 0 and got == {"max.message.bytes": ("1000", SRC_TOPIC),
                                            "retention.ms": ("3600000", SRC_TOPIC)}
            wait_until(shown, BOUND_S, what="broker %s shows the new value" % x.overrides["broker.id"])
        # The leader applied it from the notification: 3000 bytes are now too many there.
        wait_until(lambda: produce_v7(ids[3].bootstrap, "alt", 0,
                                      record_batch([b"y" * 3000]))[0] == MESSAGE_TOO_LARGE,
                   BOUND_S, what="the leader refuses a record over the new max.message.bytes")
        # DELETE through broker 1: back to the default on every broker.
        assert incremental(ids[1], TOPIC, "alt", [("max.message.bytes", 1, None)]) == (0, None)
        assert json.loads(zk_get(zookeeper, chroot + "/config/topics/alt")[0])["config"] == \
            {"retention.ms": "3600000"}
        assert len(changes(zookeeper, chroot)) == 2
        wait_until(lambda: produce_v7(ids[3].bootstrap, "alt", 0,
                                      record_batch([b"y" * 3000]))[0] == 0,
                   BOUND_S, what="the leader takes the default again")
        # A topic ZooKeeper does not have, and the catalog's validation, through any broker.
        err, msg = incremental(ids[2], TOPIC, "nosuch", [("retention.ms", 0, "1")])
        assert (err, msg) == (UNKNOWN_TOPIC_OR_PARTITION, "Topic 'nosuch' does not exist.")
        err, _ = incremental(ids[2], TOPIC, "alt", [("retention.ms", 0, "soon")])
        assert err == 40  # INVALID_CONFIG
        assert len(changes(zookeeper, chroot)) == 2
        # Legacy AlterConfigs (kafka-python) replaces the set, also through ZooKeeper.
        from kafka.admin import ConfigResource as KConfigResource, KafkaAdminClient
        ka = KafkaAdminClient(bootstrap_servers=ids[1].bootstrap)
        try:
            ka.alter_configs([KConfigResource("TOPIC", "alt", {"segment.bytes": "2097152"})])
        finally:
            ka.close()
        assert json.loads(zk_get(zookeeper, chroot + "/config/topics/alt")[0])["config"] == \
            {"segment.bytes": "2097152"}
        wait_until(lambda: describe(ids[3], TOPIC, "alt", ["segment.bytes", "retention.ms"])[1] ==
                   {"segment.bytes": ("2097152", SRC_TOPIC), "retention.ms": ("604800000", 5)},
                   BOUND_S, what="the legacy replacement on the leader")
    finally:
        stop_all(brokers)


def kafka_configs(b, *args):
    env = dict(os.environ, GREGOR_BIN=GREGOR)
    return subprocess.run([os.path.join(ROOT, "bin", "kafka-configs.sh"), "--bootstrap-server",
                           b.bootstrap] + list(args), capture_output=True, text=True, env=env,
                          timeout=60)


def test_broker_configs_by_id_and_default_live_in_zookeeper(tmp_path, zookeeper):
    chroot = "/configs3"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    ids = by_id(brokers)
    try:
        r = kafka_configs(ids[1], "--entity-type", "brokers", "--entity-name", "2", "--alter",
                          "--add-config", "log.retention.ms=7200000")
        assert r.returncode == 0 and r.stdout == "Completed updating config for broker 2.\n", \
            r.stdout + r.stderr
        assert json.loads(zk_get(zookeeper, chroot + "/config/brokers/2")[0]) == \
            {"version": 1, "config": {"log.retention.ms": "7200000"}}
        r = kafka_configs(ids[3], "--entity-type", "brokers", "--entity-default", "--alter",
                          "--add-config", "log.segment.bytes=2097152")
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(zk_get(zookeeper, chroot + "/config/brokers/<default>")[0]) == \
            {"version": 1, "config": {"log.segment.bytes": "2097152"}}
        assert sorted(n["entity_path"] for n in changes(zookeeper, chroot).values()) == \
            ["brokers/2", "brokers/<default>"]
        for i, x in ids.items():
            def shown(i=i, x=x):
                err, got = describe(x, BROKER, str(i), ["log.segment.bytes", "log.retention.ms"])
                want = {"log.segment.bytes": ("2097152", SRC_DYNAMIC_DEFAULT)}
                want["log.retention.ms"] = ("7200000", SRC_DYNAMIC_BROKER) if i == 2 else \
                    (None, 5)
                return err == 0 and got == want and got
            wait_until(shown, BOUND_S, what="broker %d shows the default and its own" % i)
            err, got = describe(x, BROKER, "", ["log.segment.bytes"])
            assert (err, got) == (0, {"log.segment.bytes": ("2097152", SRC_DYNAMIC_DEFAULT)})
        # ZooKeeper is the store: no local file, and a restarted broker reads them back.
        for i, x in ids.items():
            assert not os.path.exists(os.path.join(x.data_dir, "dynamic-broker-configs"))
        ids[2].stop()
        ids[2].start()
        err, got = describe(ids[2], BROKER, "2", ["log.segment.bytes", "log.retention.ms"])
        assert (err, got) == (0, {"log.segment.bytes": ("2097152", SRC_DYNAMIC_DEFAULT),
                                  "log.retention.ms": ("7200000", SRC_DYNAMIC_BROKER)})
    finally:
        stop_all(brokers)


def test_config_znode_written_by_hand_as_kafka_is_read(tmp_path, zookeeper):
    chroot = "/configs4"
    brokers = start_cluster(tmp_path, zookeeper, chroot)
    ids = by_id(brokers)
    w = ZkWriter(zookeeper.connect)
    try:
        assert create_on(ids[1], "byhand", {}, [[2]]) == (0, None)
        # Kafka 3.9's kafka-configs --zookeeper --alter: the entity's bytes, then the notice.
        w.set(chroot + "/config/topics/byhand", b'{"version":1,"config":{"retention.ms":"3600000"}}')
        w.create_sequential(chroot + "/config/changes/config_change_",
                            b'{"version":2,"entity_path":"topics/byhand"}')
        for x in brokers:
            wait_until(lambda x=x: describe(x, TOPIC, "byhand", ["retention.ms"])[1] ==
                       {"retention.ms": ("3600000", SRC_TOPIC)}, BOUND_S,
                       what="the hand-written config on every broker")
        # Another writer's escapes (\\u, spaces) are JSON too.
        w.set(chroot + "/config/topics/byhand",
              b' { "config" : { "retention.ms" : "\\u0037200000" } , "version" : 1 } ')
        w.create_sequential(chroot + "/config/changes/config_change_",
                            b'{"version":1,"entity_type":"topics","entity_name":"byhand"}')
        for x in brokers:
            wait_until(lambda x=x: describe(x, TOPIC, "byhand", ["retention.ms"])[1] ==
                       {"retention.ms": ("7200000", SRC_TOPIC)}, BOUND_S,
                       what="the escaped value on every broker")
        # A malformed value: logged and ignored, the last good one stays; nobody crashes.
        w.set(chroot + "/config/topics/byhand", b'{"version":1,"config":{"retention.ms":"1"')
        w.create_sequential(chroot + "/config/changes/config_change_",
                            b'{"version":2,"entity_path":"topics/byhand"}')
        w.create_sequential(chroot + "/config/changes/config_change_", b'{"version":2,"entity')
        wait_until(lambda: all("Ignoring the malformed config znode" in x.log() for x in brokers),
                   BOUND_S, what="every broker logs the malformed znode")
        for x in brokers:
            assert x.alive()
            assert describe(x, TOPIC, "byhand", ["retention.ms"])[1] == \
                {"retention.ms": ("7200000", SRC_TOPIC)}
            assert "Ignoring the malformed config change notification" in x.log()
        # Non-ASCII, quotes and backslashes survive the write and the read (an unknown key is
        # not applied, as the catalog refuses it, but the znode keeps the exact value).
        assert incremental(ids[3], TOPIC, "byhand", [("retention.ms", 0, "60000")]) == (0, None)
        raw = zk_get(zookeeper, chroot + "/config/topics/byhand")[0]
        assert raw == b'{"version":1,"config":{"retention.ms":"60000"}}'
        w.create(chroot + "/config/brokers/<default>",
                 '{"version":1,"config":{"log.retention.ms":"\\u0039000","caf\u00e9 \\"q\\\\":"x"}}'.encode())
        w.create_sequential(chroot + "/config/changes/config_change_",
                            b'{"version":2,"entity_path":"brokers/<default>"}')
        for i, x in ids.items():
            wait_until(lambda i=i, x=x: describe(x, BROKER, str(i), ["log.retention.ms"])[1] ==
                       {"log.retention.ms": ("9000", SRC_DYNAMIC_DEFAULT)}, BOUND_S,
                       what="the default read on broker %d" % i)
            assert "caf\u00e9 \"q\\ is not a dynamic broker config" in x.log()
            assert x.alive()
    finally:
        w.close()
        stop_all(brokers)
