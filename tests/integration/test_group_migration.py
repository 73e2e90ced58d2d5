"""Classic <-> consumer group migration (KIP-848 online upgrade and downgrade, issue 13 item 7)
with librdkafka (confluent_kafka): consumers of a classic group commit, close and come back with
group.protocol=consumer on the same group id and resume at their commits; a group with one
classic and one consumer-protocol member shares the partitions and reads every record once;
the last consumer-protocol member leaving turns the group back into a classic one; a broker
restart restores the converted group."""
import time

import pytest

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient  # noqa: E402

from group_helpers import create_topic, unique, wait_for  # noqa: E402

PARTITIONS = 4


class Member:
    """One confluent_kafka consumer in a group, classic or consumer protocol."""

    def __init__(self, broker, group, topic, protocol, instance=None, session_ms=10000):
        conf = {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "group.protocol": protocol,
        }
        if protocol == "classic":
            conf.update({"session.timeout.ms": session_ms, "heartbeat.interval.ms": 500,
                         "partition.assignment.strategy": "range"})
        if instance:
            conf["group.instance.id"] = instance
        self.assigned = []
        self.records = []
        self.commit_errors = []
        self.c = ck.Consumer(conf)
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer, parts):
        # Eager (classic range) revokes everything first; the consumer protocol is incremental.
        self.assigned = sorted(set(self.assigned) | {p.partition for p in parts})

    def _on_revoke(self, consumer, parts):
        gone = {p.partition for p in parts}
        self.assigned = [p for p in self.assigned if p not in gone]

    def poll(self):
        m = self.c.poll(0.05)
        if m is not None and m.error() is None:
            self.records.append((m.partition(), m.offset(), m.value().decode()))
            try:
                self.c.commit(message=m, asynchronous=False)
            except ck.KafkaException as e:
                # A commit racing a rebalance (ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS) fails
                # as it would against Kafka; the record may come again (at least once).
                self.commit_errors.append(e.args[0].code())

    def close(self):
        self.c.close()


def poll_all(members, seconds):
    end = time.time() + seconds
    while time.time() < end:
        for m in members:
            m.poll()


def produce(broker, topic, values_by_partition):
    p = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for part, values in values_by_partition.items():
        for v in values:
            p.produce(topic, value=v.encode(), partition=part)
    assert p.flush(10) == 0


def consume_until(members, n, timeout=60):
    def enough():
        poll_all(members, 0.2)
        return sum(len(m.records) for m in members) >= n
    wait_for(enough, timeout, "%d records consumed" % n)
    poll_all(members, 1.0)


def group_type(broker, group):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fut = admin.list_consumer_groups(request_timeout=10)
    for g in fut.result().valid:
        if g.group_id == group:
            return str(getattr(g, "type", "")).split(".")[-1].lower()
    return None


def batch(tag, n):
    return {p: ["%s-%d-%d" % (tag, p, i) for i in range(n)] for p in range(PARTITIONS)}


def test_empty_classic_group_upgrades_and_resumes_at_commits(broker):
    topic, group = unique("migrate-up"), unique("migrate-up-g")
    create_topic(broker, topic, PARTITIONS)
    produce(broker, topic, batch("a", 5))
    classic = [Member(broker, group, topic, "classic") for _ in range(2)]
    consume_until(classic, 5 * PARTITIONS)
    for m in classic:
        m.close()
    produce(broker, topic, batch("b", 5))
    consumers = [Member(broker, group, topic, "consumer") for _ in range(2)]
    consume_until(consumers, 5 * PARTITIONS)
    got = sorted(v for m in consumers for _, _, v in m.records)
    want = sorted(v for vs in batch("b", 5).values() for v in vs)
    assert got == want, broker.log()
    assert group_type(broker, group) == "consumer"
    for m in consumers:
        m.close()


def test_static_classic_members_restart_with_consumer_protocol(broker):
    """A rolling upgrade, then downgrade: static classic members (which do not leave on close) come back with
    group.protocol=consumer and the same group.instance.id. The group still has its classic
    members, so it is converted and each instance takes its old place at once, resuming at the
    commits; without migration they would wait for the old sessions (30 s) to expire."""
    topic, group = unique("migrate-static"), unique("migrate-static-g")
    create_topic(broker, topic, PARTITIONS)
    produce(broker, topic, batch("a", 5))
    classic = [Member(broker, group, topic, "classic", instance="inst-%d" % i,
                      session_ms=30000) for i in range(2)]
    consume_until(classic, 5 * PARTITIONS)
    for m in classic:
        m.close()
    produce(broker, topic, batch("b", 5))
    t0 = time.time()
    consumers = [Member(broker, group, topic, "consumer", instance="inst-%d" % i)
                 for i in range(2)]
    consume_until(consumers, 5 * PARTITIONS, timeout=20)
    assert time.time() - t0 < 20
    got = sorted(v for m in consumers for _, _, v in m.records)
    assert got == sorted(v for vs in batch("b", 5).values() for v in vs), broker.log()
    assert group_type(broker, group) == "consumer"
    for m in consumers:
        m.close()

    # And the rolling downgrade: the instances come back with the classic protocol; when the
    # last consumer-protocol instance is replaced the group is classic again.
    produce(broker, topic, batch("c", 3))
    classic = [Member(broker, group, topic, "classic", instance="inst-%d" % i,
                      session_ms=30000) for i in range(2)]
    # The second replacement bumps the group epoch past the first member's generation, so
    # its commits may fail until it rejoined: every record at least once.
    want = {v for vs in batch("c", 3).values() for v in vs}

    def all_c():
        poll_all(classic, 0.2)
        return {v for m in classic for _, _, v in m.records} == want
    wait_for(all_c, 30, "every record of batch c")
    assert group_type(broker, group) == "classic", broker.log()
    for m in classic:
        m.close()


def wait_split(members, timeout=60):
    """Every member holds partitions and together they hold each partition once."""
    def split():
        poll_all(members, 0.2)
        got = [m.assigned for m in members]
        flat = sorted(p for a in got for p in a)
        return got if all(got) and flat == list(range(PARTITIONS)) else None
    return wait_for(split, timeout, "the partitions split over %d members" % len(members))


def test_mixed_group_upgrade_then_downgrade(broker):
    topic, group = unique("migrate-mixed"), unique("migrate-mixed-g")
    create_topic(broker, topic, PARTITIONS)
    produce(broker, topic, batch("a", 5))
    # A classic group of two; one member is replaced by a consumer-protocol member while the
    # other stays: the group is converted with its classic member in it (online upgrade).
    classic = Member(broker, group, topic, "classic")
    leaving = Member(broker, group, topic, "classic")
    consume_until([classic, leaving], 5 * PARTITIONS)
    wait_split([classic, leaving])
    leaving.close()
    consumer = Member(broker, group, topic, "consumer")
    members = [classic, consumer]
    wait_split(members)
    assert group_type(broker, group) == "consumer", broker.log()
    seen = sum(len(m.records) for m in members)
    produce(broker, topic, batch("b", 5))
    consume_until(members, seen + 5 * PARTITIONS)
    wait_split(members)
    new = [(p, v) for m in members for p, _, v in m.records if v.startswith("b-")]
    # Every new record exactly once, read by the member owning its partition at the time.
    assert sorted(v for _, v in new) == sorted(v for vs in batch("b", 5).values() for v in vs)
    assert all(v.startswith("b-%d-" % p) for p, v in new)

    # A broker restart restores the converted group: both members carry on.
    broker.restart()
    produce(broker, topic, batch("c", 3))
    consume_until(members, sum(len(m.records) for m in members) + 3 * PARTITIONS, timeout=90)
    got_c = sorted(v for m in members for _, _, v in m.records if v.startswith("c-"))
    assert got_c == sorted(v for vs in batch("c", 3).values() for v in vs), broker.log()
    assert group_type(broker, group) == "consumer"

    # The consumer-protocol member leaves: only a classic member remains, the group becomes
    # classic again (online downgrade) and the classic member takes every partition.
    consumer.close()
    def all_to_classic():
        poll_all([classic], 0.2)
        return classic.assigned == list(range(PARTITIONS))
    wait_for(all_to_classic, 60, "the classic member to own every partition")
    assert group_type(broker, group) == "classic", broker.log()
    produce(broker, topic, batch("d", 2))
    consume_until([classic], len(classic.records) + 2 * PARTITIONS)
    got_d = sorted(v for _, _, v in classic.records if v.startswith("d-"))
    assert got_d == sorted(v for vs in batch("d", 2).values() for v in vs)
    classic.close()


@pytest.mark.parametrize("policy", ["disabled", "DOWNGRADE"])
def test_migration_policy_from_server_properties(broker_factory, policy):
    """group.consumer.migration.policy (Kafka's key, case-insensitive) read from the broker's
    config: without upgrade allowed, a consumer-protocol member cannot join a classic group that
    has members; the classic member keeps every partition and the group stays classic."""
    broker = broker_factory(**{"group.consumer.migration.policy": policy})
    broker.start()
    topic, group = unique("migrate-policy"), unique("migrate-policy-g")
    create_topic(broker, topic, PARTITIONS)
    produce(broker, topic, batch("a", 2))
    classic = Member(broker, group, topic, "classic")
    consume_until([classic], 2 * PARTITIONS)
    wait_split([classic])
    consumer = Member(broker, group, topic, "consumer")
    poll_all([classic, consumer], 8)
    assert consumer.assigned == [] and consumer.records == []
    assert classic.assigned == list(range(PARTITIONS))
    assert group_type(broker, group) == "classic", broker.log()
    consumer.close()
    classic.close()
