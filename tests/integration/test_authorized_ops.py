"""Authorized operations (KIP-430) as Kafka answers them without an authorizer: every operation the
resource type supports (Kafka's AclEntry.supportedOperations) when the client asks, the schema's
-2147483648 ("not requested") when it does not. kafka-python 2.3 decodes the bitfield into
ACLOperation values and crashed on -2147483648 (`31 is not a valid ACLOperation`); 3.x reads it as
None. Both run from cached virtualenvs, as test_kafka_python's 3.x does."""
import json
import os
import socket
import struct
import subprocess
import uuid
import venv

import pytest

from kafka_wire import Reader, cstr, flexible_call, frame, read_frame, s16, uvarint

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "clients", "kafka_python_admin_check.py")
NOT_REQUESTED = -2147483648

# org.apache.kafka.common.acl.AclOperation codes, and the operations each resource type supports.
ACL_CODES = {"READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7, "DESCRIBE": 8,
             "CLUSTER_ACTION": 9, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11,
             "IDEMPOTENT_WRITE": 12, "CREATE_TOKENS": 13, "DESCRIBE_TOKENS": 14}
TOPIC_OPS = {"READ", "WRITE", "CREATE", "DESCRIBE", "DELETE", "ALTER", "DESCRIBE_CONFIGS",
             "ALTER_CONFIGS"}
GROUP_OPS = {"READ", "DESCRIBE", "DELETE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
CLUSTER_OPS = {"CREATE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE",
               "ALTER", "DESCRIBE"}


def bitfield(ops):
    return sum(1 << ACL_CODES[op] for op in ops)


def kafka_python(version):
    """The python of a cached virtualenv with kafka-python==version."""
    root = os.path.join(os.path.expanduser("~"), ".cache", "gregor", "kafka-python-%s" % version)
    py = os.path.join(root, "bin", "python")
    if not os.path.exists(py):
        venv.create(root, with_pip=True)
        r = subprocess.run([py, "-m", "pip", "install", "-q", "kafka-python==%s" % version],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    return py


@pytest.mark.parametrize("version", ["2.3.3", "3.0.12"])
def test_kafka_python_admin_describe(broker, version):
    """describe_cluster, describe_topics, list_topics, describe groups and delete_records of
    kafka-python's admin client, which all ask for authorized operations."""
    r = subprocess.run([kafka_python(version), CHECK, broker.bootstrap, "ops", "ops-group"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:] + broker.log()
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["version"] == version
    assert set(out["cluster"] or ()) == CLUSTER_OPS, out
    assert {k: set(v or ()) for k, v in out["topics"].items()} == {"ops": TOPIC_OPS}, out
    assert "ops" in out["all_topics"], out
    assert {k: set(v or ()) for k, v in out["groups"].items()} == {"ops-group": GROUP_OPS}, out
    assert out["deleted_low_watermark"] == [4], out


# ---- the exact bitfields on the wire ----

def metadata(broker, version, topics, include_cluster, include_topics):
    """Metadata v9-v12 (flexible); topics are names or uuid.UUIDs. Returns
    ({name or id: (error, topic authorized operations)}, cluster authorized operations or None)."""
    body = uvarint(len(topics) + 1)
    for t in topics:
        if version >= 10:
            body += t.bytes if isinstance(t, uuid.UUID) else bytes(16)
        body += cstr(None if isinstance(t, uuid.UUID) else t) + uvarint(0)
    body += b"\x00"  # AllowAutoTopicCreation
    if version <= 10:
        body += bytes([include_cluster])
    body += bytes([include_topics]) + uvarint(0)
    r = flexible_call(broker.bootstrap, 3, version, body)
    r.take(">i")
    for _ in range(r.uvarint() - 1):
        r.take(">i"), r.cstr(), r.take(">i"), r.cstr(), r.tags()
    r.cstr(), r.take(">i")
    out = {}
    for _ in range(r.uvarint() - 1):
        err, name = r.take(">h"), r.cstr()
        tid = uuid.UUID(bytes=r.raw(16)) if version >= 10 else None
        r.take(">b")
        for _ in range(r.uvarint() - 1):
            r.take(">hiii")
            for _ in range(3):
                [r.take(">i") for _ in range(r.uvarint() - 1)]
            r.tags()
        out[name if name is not None else tid] = (err, r.take(">i"))
        r.tags()
    cluster = r.take(">i") if version <= 10 else None
    return out, cluster


def metadata_v8(broker, topic, include):
    """Metadata v8, the first version with the fields and the last before flexible encoding."""
    body = struct.pack(">i", 1) + s16(topic) + b"\x00" + bytes([include, include])
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame(3, 8, 5, body))
        corr, data = read_frame(s)
    assert corr == 5
    r = Reader(data)
    r.take(">i")
    for _ in range(r.take(">i")):
        r.take(">i"), r.s16(), r.take(">i"), r.s16()
    r.s16(), r.take(">i")
    assert r.take(">i") == 1
    err, _name, _internal = r.take(">h"), r.s16(), r.take(">b")
    for _ in range(r.take(">i")):
        r.take(">hiii")
        for _ in range(3):
            [r.take(">i") for _ in range(r.take(">i"))]
    return err, r.take(">i"), r.take(">i")


def create_topic(broker, name):
    body = uvarint(2) + cstr(name) + struct.pack(">ih", 1, 1) + uvarint(1) + uvarint(1)
    body += uvarint(0) + struct.pack(">ib", 10000, 0) + uvarint(0)
    r = flexible_call(broker.bootstrap, 19, 5, body)
    r.take(">i")
    assert r.uvarint() == 2 and r.cstr() == name
    assert r.take(">h") == 0


def test_wire_metadata(broker):
    create_topic(broker, "wire")
    for version in (9, 10, 12):
        topics, cluster = metadata(broker, version, ["wire", "absent"], True, True)
        # Kafka fills every topic it looked up by name, found or not (getTopicMetadata).
        assert topics == {"wire": (0, bitfield(TOPIC_OPS)),
                          "absent": (3, bitfield(TOPIC_OPS))}, (version, topics)
        assert cluster == (bitfield(CLUSTER_OPS) if version <= 10 else None), version
        topics, cluster = metadata(broker, version, ["wire"], False, False)
        assert topics == {"wire": (0, NOT_REQUESTED)}, (version, topics)
        assert cluster in (NOT_REQUESTED, None), (version, cluster)
    # An unknown topic id is answered apart from the lookup, without operations, as in Kafka.
    unknown = uuid.uuid4()
    topics, _ = metadata(broker, 12, [unknown], False, True)
    assert topics == {unknown: (100, NOT_REQUESTED)}, topics
    assert metadata_v8(broker, "wire", True) == (0, bitfield(TOPIC_OPS), bitfield(CLUSTER_OPS))
    assert metadata_v8(broker, "wire", False) == (0, NOT_REQUESTED, NOT_REQUESTED)


def describe_cluster(broker, include):
    r = flexible_call(broker.bootstrap, 60, 0, bytes([include]) + uvarint(0))
    r.take(">i")
    assert r.take(">h") == 0
    r.cstr(), r.cstr(), r.take(">i")
    for _ in range(r.uvarint() - 1):
        r.take(">i"), r.cstr(), r.take(">i"), r.cstr(), r.tags()
    return r.take(">i")


def test_wire_describe_cluster(broker):
    assert describe_cluster(broker, True) == bitfield(CLUSTER_OPS)
    assert describe_cluster(broker, False) == NOT_REQUESTED


def describe_groups(broker, version, group, include):
    r = flexible_call(broker.bootstrap, 15, version, uvarint(2) + cstr(group) + bytes([include]) +
                      uvarint(0))
    r.take(">i")
    assert r.uvarint() == 2
    err = r.take(">h")
    if version >= 6:
        r.cstr()
    assert r.cstr() == group
    r.cstr(), r.cstr(), r.cstr()
    for _ in range(r.uvarint() - 1):
        r.cstr(), r.cstr(), r.cstr(), r.cstr()
        r.raw(r.uvarint() - 1), r.raw(r.uvarint() - 1), r.tags()
    return err, r.take(">i")


def test_wire_describe_groups(broker):
    # Kafka sets the operations only on groups described without an error; v5 describes an
    # unknown group as Dead with no error, v6 answers GROUP_ID_NOT_FOUND (69).
    assert describe_groups(broker, 5, "nobody", True) == (0, bitfield(GROUP_OPS))
    assert describe_groups(broker, 5, "nobody", False) == (0, NOT_REQUESTED)
    assert describe_groups(broker, 6, "nobody", True) == (69, NOT_REQUESTED)


def consumer_group_describe(broker, group, include):
    r = flexible_call(broker.bootstrap, 69, 0, uvarint(2) + cstr(group) + bytes([include]) +
                      uvarint(0))
    r.take(">i")
    assert r.uvarint() == 2
    err, _msg, _gid, _state = r.take(">h"), r.cstr(), r.cstr(), r.cstr()
    r.take(">ii"), r.cstr()

    def assignment():
        for _ in range(r.uvarint() - 1):
            r.raw(16), r.cstr(), [r.take(">i") for _ in range(r.uvarint() - 1)], r.tags()
        r.tags()

    members = r.uvarint() - 1
    for _ in range(members):
        r.cstr(), r.cstr(), r.cstr(), r.take(">i"), r.cstr(), r.cstr()
        [r.cstr() for _ in range(r.uvarint() - 1)]
        r.cstr(), assignment(), assignment(), r.tags()
    return err, members, r.take(">i")


def test_wire_consumer_group_describe(broker):
    from test_kip848 import heartbeat
    create_topic(broker, "cg")
    hb = heartbeat(broker, "cg-group", str(uuid.uuid4()), 0, topics=["cg"], rebalance_timeout=30000)
    assert hb["error"] == 0, hb
    assert consumer_group_describe(broker, "cg-group", True) == (0, 1, bitfield(GROUP_OPS))
    assert consumer_group_describe(broker, "cg-group", False) == (0, 1, NOT_REQUESTED)
    assert consumer_group_describe(broker, "nobody", True) == (69, 0, NOT_REQUESTED)
