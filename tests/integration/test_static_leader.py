"""Static membership (group.instance.id) with librdkafka: restarting the member that leads a
Stable group, with the same subscription, gives it its old partitions back without a rebalance,
as Kafka's coordinator does (issue 13, item 2). The other members see no revoke and no new
assignment, and the group stays at its generation."""
import re
import time

import pytest

import confluent_kafka as ck

from group_helpers import create_topic, unique, wait_for  # noqa: E402

PARTITIONS = 6


class Member:
    """One confluent_kafka static member; counts its rebalance callbacks."""

    def __init__(self, broker, group, topic, instance):
        self.assigned = None
        self.assigns = 0
        self.revokes = 0
        self.values = []
        self.c = ck.Consumer({
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "group.instance.id": instance,
            "session.timeout.ms": 30000,
            "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer, parts):
        self.assigns += 1
        self.assigned = sorted(p.partition for p in parts)

    def _on_revoke(self, consumer, parts):
        self.revokes += 1
        self.assigned = None

    def poll(self):
        m = self.c.poll(0.05)
        if m is not None and m.error() is None:
            self.values.append((m.partition(), m.value().decode()))

    def close(self):
        self.c.close()


def poll_all(members, seconds):
    end = time.time() + seconds
    while time.time() < end:
        for m in members:
            m.poll()


def wait_assigned(members, timeout=40):
    def covered():
        poll_all(members, 0.2)
        got = [m.assigned for m in members]
        if any(not a for a in got):
            return None
        flat = sorted(p for a in got for p in a)
        return got if flat == list(range(PARTITIONS)) else None
    return wait_for(covered, timeout, "every partition assigned to %d members" % len(members))


def generations(broker, group):
    return [int(g) for g in re.findall(
        r"Stabilized group %s generation (\d+)" % re.escape(group), broker.log())]


def test_static_leader_restart_keeps_group_stable(broker):
    topic, group = unique("static-leader"), unique("static-leader-g")
    create_topic(broker, topic, PARTITIONS)
    # The first member alone forms the group: it is the leader, and stays the leader while it
    # rejoins the rebalances that the others cause.
    leader = Member(broker, group, topic, "inst-leader")
    wait_assigned([leader])
    others = [Member(broker, group, topic, "inst-%d" % i) for i in range(2)]
    members = [leader] + others
    wait_assigned(members)
    poll_all(members, 2.0)  # settle: every member heartbeats in the final generation
    before = [m.assigned for m in members]
    assert all(before), before
    gen_before = generations(broker, group)[-1]
    rebalances_before = broker.log().count("Preparing to rebalance group %s " % group)
    counts = [(m.assigns, m.revokes) for m in others]

    # librdkafka's static members do not send LeaveGroup on close: the instance comes back
    # within its session with no member id, as after a process restart.
    leader.close()
    leader = Member(broker, group, topic, "inst-leader")
    members = [leader] + others
    wait_for(lambda: (poll_all(members, 0.2), leader.assigned)[1], 30,
             "the restarted leader's assignment")
    assert leader.assigned == before[0]
    poll_all(members, 4.0)  # a rebalance, if one was started, reaches the others by now

    assert [(m.assigns, m.revokes) for m in others] == counts, (
        "the other members were rebalanced:\n" + broker.log())
    assert [m.assigned for m in others] == before[1:]
    assert broker.log().count("Preparing to rebalance group %s " % group) == rebalances_before, (
        broker.log())
    assert generations(broker, group)[-1] == gen_before
    assert "static member rejoined with new metadata" not in broker.log()

    # Every member still consumes its partitions: one record per partition, each read once by
    # the member that owns it.
    p = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for part in range(PARTITIONS):
        p.produce(topic, value=("v%d" % part).encode(), partition=part)
    assert p.flush(10) == 0

    def all_read():
        poll_all(members, 0.2)
        return sum(len(m.values) for m in members) >= PARTITIONS
    wait_for(all_read, 30, "every record consumed")
    poll_all(members, 0.5)
    for m, parts in zip(members, before):
        assert sorted(part for part, _ in m.values) == parts
        assert all(v == "v%d" % part for part, v in m.values)
    for m in members:
        m.close()
