"""TxnOffsetCommit v3+ names the producer's group member (KIP-447): generation id, member id
and group instance id, checked as Kafka's GroupCoordinator.handleTxnCommitOffsets does: a
member the group does not know is UNKNOWN_MEMBER_ID, another generation ILLEGAL_GENERATION, a
static instance held by another member id FENCED_INSTANCE_ID; a commit naming no member
(generation -1, empty member id, no instance id) is taken, as producers without a consumer
group send it, and so is one of generation -1 into an empty group. Raw wire: clients always send their own consumer's identity."""
import socket
import struct

from kafka_wire import Reader, _request, cstr, flexible_call, s16, uvarint

UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID = 25, 22, 82


def call(broker, api, version, body):
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        return Reader(_request(s, api, version, 7, body))


def join_static(broker, group, instance):
    """JoinGroup v5 of a static member (one member: it completes at once): (member id,
    generation)."""
    body = s16(group) + struct.pack(">ii", 30000, 30000) + s16("") + s16(instance)
    body += s16("consumer") + struct.pack(">i", 1) + s16("range") + struct.pack(">i", 0)
    r = call(broker, 11, 5, body)
    r.take(">i")
    assert r.take(">h") == 0
    generation = r.take(">i")
    r.s16()
    r.s16()
    return r.s16().decode(), generation


def txn_offset_commit_v3(broker, txn_id, group, pid, epoch, generation, member, instance):
    """TxnOffsetCommit v3 (flexible) of one offset: the partition's error."""
    body = cstr(txn_id) + cstr(group) + struct.pack(">qhi", pid, epoch, generation)
    body += cstr(member) + (uvarint(0) if instance is None else cstr(instance))
    body += uvarint(2) + cstr("tom") + uvarint(2)
    body += struct.pack(">iqi", 0, 5, -1) + cstr("") + b"\x00" + b"\x00" + b"\x00"
    r = flexible_call(broker.bootstrap, 28, 3, body)
    r.take(">i")
    assert r.uvarint() == 2 and r.cstr() in ("tom", b"tom")
    assert r.uvarint() == 2 and r.take(">i") == 0
    return r.take(">h")


def test_txn_offset_commit_checks_the_member(broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("tom", 1, 1)]).values():
        f.result(20)
    member, generation = join_static(broker, "tomg", "inst-1")
    assert generation >= 1
    r = call(broker, 22, 1, s16("tom-app") + struct.pack(">i", 60000))   # InitProducerId
    r.take(">i")
    assert r.take(">h") == 0
    pid, epoch = r.take(">q"), r.take(">h")
    for group in ("tomg", "tom-nogroup"):   # AddOffsetsToTxn v1
        r = call(broker, 25, 1, s16("tom-app") + struct.pack(">qh", pid, epoch) + s16(group))
        r.take(">i")
        assert r.take(">h") == 0

    def commit(group, gen, mid, inst):
        return txn_offset_commit_v3(broker, "tom-app", group, pid, epoch, gen, mid, inst)

    assert commit("tomg", generation, "nobody", None) == UNKNOWN_MEMBER_ID
    assert commit("tomg", generation + 1, member, None) == ILLEGAL_GENERATION
    assert commit("tomg", generation - 1, member, "inst-1") == ILLEGAL_GENERATION
    assert commit("tomg", generation, "someone-else", "inst-1") == FENCED_INSTANCE_ID
    assert commit("tomg", -1, member + "x", None) == UNKNOWN_MEMBER_ID
    # a group that has no member: a commit naming one is refused, one naming none taken
    assert commit("tom-nogroup", 0, "", None) == UNKNOWN_MEMBER_ID
    assert commit("tom-nogroup", -1, "", None) == 0
    # generation -1 into an empty group: taken whoever it names (Kafka's admin-tool case)
    assert commit("tom-nogroup", -1, "nobody", None) == 0
    # the member itself, dynamic or by its instance id, and a commit naming no member
    assert commit("tomg", generation, member, None) == 0
    assert commit("tomg", generation, member, "inst-1") == 0
    assert commit("tomg", -1, "", None) == 0
