"""KIP-848 consumer groups (ConsumerGroupHeartbeat / ConsumerGroupDescribe) against a real gregor:
the Java client 4.x with group.protocol=consumer (uniform and range server assignors: balanced,
each record once, a member leaves and the other takes everything, a new member resumes at the
commits), and the wire protocol driven by hand: member epochs, revocation before reassignment,
the errors clients act on, static members, ListGroups v5 types, and a broker restart that keeps
the group (members carry on with their epochs)."""
import struct
import uuid

import pytest

from test_java_client import client_jar, run_check  # noqa: F401  (client_jar is a fixture)

import kafka
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from kafka_wire import cstr, flexible_call, uvarint  # noqa: E402

FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111
UNSUPPORTED_ASSIGNOR = 112
UNKNOWN_MEMBER_ID = 25
GROUP_ID_NOT_FOUND = 69
INVALID_REQUEST = 42


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_java_consumer_protocol(client_jar, broker, assignor):  # noqa: F811
    r = run_check(client_jar, broker, "group-consumer", "count=500", "assignor=" + assignor)
    assert r["assignor"] == assignor
    assert (r["c1"], r["c2"]) == ("3", "3")
    assert r["first"] == r["second"] == r["third"] == "500"
    assert r["described_members"] == "2" and r["described_partitions"] == "6"
    assert r["state"] == "Stable" and r["listed_type"] == "Consumer"


def test_java_classic_group_still_works_next_to_consumer_groups(client_jar, broker):  # noqa: F811
    run_check(client_jar, broker, "group-consumer", "count=100")
    r = run_check(client_jar, broker, "group", "count=200", "protocol=classic")
    assert r["first"] == "200" and r["second"] == "200"


# ---- the wire protocol by hand ----

def call(broker, api_key, version, body):
    return flexible_call(broker.bootstrap, api_key, version, body, corr=7)


def heartbeat(broker, group, member, epoch, topics=None, owned=None, instance=None,
              rebalance_timeout=-1, assignor=None, regex=None):
    """ConsumerGroupHeartbeat v1; owned is {topic_id: [partitions]} or None."""
    body = cstr(group) + cstr(member) + struct.pack(">i", epoch) + cstr(instance) + cstr(None)
    body += struct.pack(">i", rebalance_timeout)
    body += uvarint(0) if topics is None else uvarint(len(topics) + 1) + b"".join(cstr(t) for t in topics)
    body += cstr(regex) + cstr(assignor)
    if owned is None:
        body += uvarint(0)
    else:
        body += uvarint(len(owned) + 1)
        for tid, parts in owned.items():
            body += tid + uvarint(len(parts) + 1) + b"".join(struct.pack(">i", p) for p in parts) + uvarint(0)
    body += uvarint(0)
    r = call(broker, 68, 1, body)
    r.take(">i")
    out = {"error": r.take(">h"), "message": r.cstr(), "member": r.cstr(), "epoch": r.take(">i"),
           "interval": r.take(">i"), "assignment": None}
    if r.take(">b") >= 0:
        a = {}
        for _ in range(r.uvarint() - 1):
            tid = r.raw(16)
            a[tid] = sorted(r.take(">i") for _ in range(r.uvarint() - 1))
            r.tags()
        r.tags()
        out["assignment"] = a
    return out


def describe(broker, group):
    r = call(broker, 69, 0, uvarint(2) + cstr(group) + b"\x00" + uvarint(0))
    r.take(">i")
    assert r.uvarint() == 2
    g = {"error": r.take(">h"), "message": r.cstr(), "id": r.cstr(), "state": r.cstr(),
         "epoch": r.take(">i"), "assignment_epoch": r.take(">i"), "assignor": r.cstr(), "members": {}}

    def assignment():
        a = {}
        for _ in range(r.uvarint() - 1):
            r.raw(16)
            name = r.cstr()
            a[name] = sorted(r.take(">i") for _ in range(r.uvarint() - 1))
            r.tags()
        r.tags()
        return a

    for _ in range(r.uvarint() - 1):
        mid, inst, rack, epoch = r.cstr(), r.cstr(), r.cstr(), r.take(">i")
        client, host = r.cstr(), r.cstr()
        topics = [r.cstr() for _ in range(r.uvarint() - 1)]
        regex = r.cstr()
        g["members"][mid] = {"instance": inst, "epoch": epoch, "client": client, "topics": topics,
                             "regex": regex, "assigned": assignment(), "target": assignment()}
        r.tags()
    r.take(">i")
    return g


def list_groups_v5(broker, types):
    body = uvarint(1) + uvarint(len(types) + 1) + b"".join(cstr(t) for t in types) + uvarint(0)
    r = call(broker, 16, 5, body)
    r.take(">i")
    assert r.take(">h") == 0
    out = {}
    for _ in range(r.uvarint() - 1):
        gid, ptype, state, gtype = r.cstr(), r.cstr(), r.cstr(), r.cstr()
        r.tags()
        out[gid] = (ptype, state, gtype)
    return out


def create_topic(broker, name, partitions):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def flat(assignment):
    return {(tid, p) for tid, parts in (assignment or {}).items() for p in parts}


def test_wire_epochs_revocation_errors_and_restart(broker):
    topic = "k848-" + uuid.uuid4().hex[:8]
    create_topic(broker, topic, 4)
    group = "k848-group-" + uuid.uuid4().hex[:6]
    a, b = "member-a-" + uuid.uuid4().hex[:6], "member-b-" + uuid.uuid4().hex[:6]

    # Bad first heartbeats.
    assert heartbeat(broker, group, a, 0, topics=[topic], owned={})["error"] == INVALID_REQUEST  # no rebalance timeout
    assert heartbeat(broker, group, a, 0, rebalance_timeout=30000, owned={})["error"] == INVALID_REQUEST  # no subscription
    assert heartbeat(broker, group, "", 0, topics=[topic], rebalance_timeout=30000)["error"] == INVALID_REQUEST
    assert heartbeat(broker, group, a, 0, topics=[topic], rebalance_timeout=30000,
                     assignor="sticky")["error"] == UNSUPPORTED_ASSIGNOR
    assert heartbeat(broker, group, a, 3, owned={})["error"] == GROUP_ID_NOT_FOUND

    # A joins alone and gets all four partitions at epoch 1.
    ra = heartbeat(broker, group, a, 0, topics=[topic], rebalance_timeout=30000, owned={})
    assert ra["error"] == 0 and ra["epoch"] == 1 and ra["interval"] == 5000
    assert len(flat(ra["assignment"])) == 4
    tid = next(iter(ra["assignment"]))
    ra = heartbeat(broker, group, a, 1, owned={tid: [0, 1, 2, 3]})
    assert ra["error"] == 0 and ra["epoch"] == 1

    # B joins: its target is half, but A still owns everything, so B waits with nothing.
    rb = heartbeat(broker, group, b, 0, topics=[topic], rebalance_timeout=30000, owned={})
    assert rb["error"] == 0 and rb["epoch"] == 2 and flat(rb["assignment"]) == set()
    # A is asked to revoke (its epoch stays 1 until it has).
    ra = heartbeat(broker, group, a, 1)
    assert ra["error"] == 0 and ra["epoch"] == 1 and len(flat(ra["assignment"])) == 2
    kept = sorted(p for _, p in flat(ra["assignment"]))
    rb = heartbeat(broker, group, b, 2)
    assert rb["error"] == 0 and not flat(rb["assignment"])  # not given before A revoked
    # A reports that it revoked: it moves to epoch 2, and B then gets the rest.
    ra = heartbeat(broker, group, a, 1, owned={tid: kept})
    assert ra["error"] == 0 and ra["epoch"] == 2
    rb = heartbeat(broker, group, b, 2)
    assert rb["error"] == 0 and sorted(p for _, p in flat(rb["assignment"])) == sorted({0, 1, 2, 3} - set(kept))

    # Errors a member acts on.
    assert heartbeat(broker, group, a, 7)["error"] == FENCED_MEMBER_EPOCH
    assert heartbeat(broker, group, "nobody", 1)["error"] == UNKNOWN_MEMBER_ID

    d = describe(broker, group)
    assert d["error"] == 0 and d["state"] == "Stable" and d["epoch"] == 2 and d["assignor"] == "uniform"
    assert set(d["members"]) == {a, b}
    assert d["members"][a]["assigned"] == {topic: kept} and d["members"][a]["epoch"] == 2
    assert d["members"][b]["topics"] == [topic]
    assert describe(broker, "no-such-group")["error"] == GROUP_ID_NOT_FOUND
    assert list_groups_v5(broker, ["consumer"])[group] == ("consumer", "Stable", "consumer")
    assert group not in list_groups_v5(broker, ["classic"])

    # A broker restart keeps the group: members carry on with their epochs and partitions.
    broker.restart()
    ra = heartbeat(broker, group, a, 2)
    assert ra["error"] == 0 and ra["epoch"] == 2
    d = describe(broker, group)
    assert d["epoch"] == 2 and set(d["members"]) == {a, b}
    assert d["members"][a]["assigned"] == {topic: kept}

    # A leaves: B (after the epoch bump) gets everything.
    ra = heartbeat(broker, group, a, -1)
    assert ra["error"] == 0 and ra["epoch"] == -1
    rb = heartbeat(broker, group, b, 2)
    assert rb["error"] == 0 and rb["epoch"] == 3 and len(flat(rb["assignment"])) == 4


def test_wire_static_members_and_regex(broker):
    topic1, topic2 = "rx-a-" + uuid.uuid4().hex[:6], "rx-b-" + uuid.uuid4().hex[:6]
    create_topic(broker, topic1, 2)
    create_topic(broker, topic2, 2)
    group = "k848-static-" + uuid.uuid4().hex[:6]
    m1, m2 = uuid.uuid4().hex, uuid.uuid4().hex
    r = heartbeat(broker, group, m1, 0, regex="rx-(a|b)-.*", rebalance_timeout=30000, owned={},
                  instance="inst-1", assignor="range")
    assert r["error"] == 0 and len(flat(r["assignment"])) == 4  # both topics by regex
    held = flat(r["assignment"])
    # Another member with the same instance id while the first is active.
    r2 = heartbeat(broker, group, m2, 0, regex="rx-.*", rebalance_timeout=30000, owned={}, instance="inst-1")
    assert r2["error"] == UNRELEASED_INSTANCE_ID
    # Static leave (-2): the member keeps its place for the session timeout ...
    r = heartbeat(broker, group, m1, -2, instance="inst-1")
    assert r["error"] == 0 and r["epoch"] == -2
    # ... and the restarted instance (new member id) takes over its assignment.
    r2 = heartbeat(broker, group, m2, 0, regex="rx-(a|b)-.*", rebalance_timeout=30000, owned={},
                   instance="inst-1", assignor="range")
    assert r2["error"] == 0 and flat(r2["assignment"]) == held
    d = describe(broker, group)
    assert set(d["members"]) == {m2} and d["members"][m2]["instance"] == "inst-1"
    assert d["members"][m2]["regex"] == "rx-(a|b)-.*" and d["assignor"] == "range"
    # An invalid regex is refused.
    assert heartbeat(broker, group, uuid.uuid4().hex, 0, regex="(", rebalance_timeout=30000,
                     owned={})["error"] == 128


def offset_commit(broker, version, group, epoch, member, topic, partition, offset):
    """OffsetCommit v8/v9 (same layout): returns the partition's error."""
    body = (cstr(group) + struct.pack(">i", epoch) + cstr(member) + cstr(None)
            + uvarint(2) + cstr(topic) + uvarint(2) + struct.pack(">iqi", partition, offset, -1)
            + cstr(None) + uvarint(0) + uvarint(0) + uvarint(0))
    r = call(broker, 8, version, body)
    r.take(">i")
    assert r.uvarint() == 2 and r.cstr() == topic and r.uvarint() == 2
    assert r.take(">i") == partition
    return r.take(">h")


def offset_fetch_v9(broker, group, member, epoch, topic):
    """OffsetFetch v9 of one partition: (group error, offset or None)."""
    body = (uvarint(2) + cstr(group) + cstr(member) + struct.pack(">i", epoch)
            + uvarint(2) + cstr(topic) + uvarint(2) + struct.pack(">i", 0) + uvarint(0)
            + uvarint(0) + b"\x00" + uvarint(0))
    r = call(broker, 9, 9, body)
    r.take(">i")
    assert r.uvarint() == 2 and r.cstr() == group
    offset = None
    for _ in range(r.uvarint() - 1):
        r.cstr()
        for _ in range(r.uvarint() - 1):
            r.take(">i")
            offset = r.take(">q")
            r.take(">i")
            r.cstr()
            r.take(">h")
            r.tags()
        r.tags()
    return r.take(">h"), offset


def test_wire_offset_commit_and_fetch_v9(broker):
    """OffsetCommit/OffsetFetch v9 (KIP-848) as Kafka checks them: members of a consumer group
    commit with v9 at their epoch (v8: UNSUPPORTED_VERSION); a commit with an epoch to a group
    that does not exist is GROUP_ID_NOT_FOUND in v9 (ILLEGAL_GENERATION before); a fetch that
    names a member needs that member at that epoch."""
    topic = "k848o-" + uuid.uuid4().hex[:8]
    create_topic(broker, topic, 1)
    group = "k848o-group-" + uuid.uuid4().hex[:6]
    a = "member-a-" + uuid.uuid4().hex[:6]
    ra = heartbeat(broker, group, a, 0, topics=[topic], rebalance_timeout=30000, owned={})
    assert ra["error"] == 0 and ra["epoch"] == 1

    assert offset_commit(broker, 8, group, 1, a, topic, 0, 5) == 35  # UNSUPPORTED_VERSION
    assert offset_commit(broker, 9, group, 2, a, topic, 0, 5) == 113  # STALE_MEMBER_EPOCH
    assert offset_commit(broker, 9, group, 1, "stranger", topic, 0, 5) == 25  # UNKNOWN_MEMBER_ID
    assert offset_commit(broker, 9, group, 1, a, topic, 0, 42) == 0
    missing = "nobody-" + uuid.uuid4().hex[:6]
    assert offset_commit(broker, 9, missing, 1, "m", topic, 0, 1) == GROUP_ID_NOT_FOUND
    assert offset_commit(broker, 8, missing, 1, "m", topic, 0, 1) == 22  # ILLEGAL_GENERATION

    assert offset_fetch_v9(broker, group, a, 1, topic) == (0, 42)
    assert offset_fetch_v9(broker, group, None, -1, topic) == (0, 42)  # admin-style
    assert offset_fetch_v9(broker, group, a, 3, topic)[0] == 113
    assert offset_fetch_v9(broker, group, "stranger", 1, topic)[0] == 25
    assert offset_fetch_v9(broker, missing, "m", 1, topic) == (0, -1)


def describe_groups(broker, version, group):
    """DescribeGroups v5/v6 of one group: (error, message or '-', state, members)."""
    r = call(broker, 15, version, uvarint(2) + cstr(group) + b"\x00" + uvarint(0))
    r.take(">i")
    assert r.uvarint() == 2
    err = r.take(">h")
    msg = r.cstr() if version >= 6 else "-"
    assert r.cstr() == group
    state, _ptype, _pdata = r.cstr(), r.cstr(), r.cstr()
    return err, msg, state, r.uvarint() - 1


def test_wire_describe_groups_v6(broker):
    """DescribeGroups v6 (KIP-1043): a group that is not a classic one is GROUP_ID_NOT_FOUND with
    Kafka 4.1.1's messages (compared side by side); v5 says Dead with no error."""
    topic = "k848d-" + uuid.uuid4().hex[:8]
    create_topic(broker, topic, 1)
    cg = "k848d-cg-" + uuid.uuid4().hex[:6]
    assert heartbeat(broker, cg, "m-" + uuid.uuid4().hex[:6], 0, topics=[topic],
                     rebalance_timeout=30000, owned={})["error"] == 0
    simple = "k848d-simple-" + uuid.uuid4().hex[:6]
    assert offset_commit(broker, 9, simple, -1, "", topic, 0, 3) == 0
    missing = "k848d-missing-" + uuid.uuid4().hex[:6]
    assert describe_groups(broker, 5, missing) == (0, "-", "Dead", 0)
    assert describe_groups(broker, 5, cg) == (0, "-", "Dead", 0)
    assert describe_groups(broker, 5, simple) == (0, "-", "Empty", 0)
    assert describe_groups(broker, 6, missing) == (GROUP_ID_NOT_FOUND, "Group %s not found." % missing, "Dead", 0)
    assert describe_groups(broker, 6, cg) == (GROUP_ID_NOT_FOUND, "Group %s is not a classic group." % cg,
                                              "Dead", 0)
    assert describe_groups(broker, 6, simple) == (0, None, "Empty", 0)
