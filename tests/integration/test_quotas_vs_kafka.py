"""DescribeClientQuotas side by side with Apache Kafka 4.x (single node, KRaft) on the raw wire:
the same filters, good and bad, get the same error code, the same error_message (null or text)
and the same entries from both (issue 19)."""
import pytest

from kafka_node import KafkaNode
from zk_fixture import wait_until
from test_quotas import _alter, describe

EXACT, DEFAULT, SPECIFIED = 0, 1, 2

FILTERS = [
    ([], False),
    ([], True),
    ([("user", EXACT, "alice")], False),
    ([("user", DEFAULT, None)], True),
    ([("user", SPECIFIED, None), ("client-id", SPECIFIED, None)], True),
    ([("ip", SPECIFIED, None)], False),
    ([("user", EXACT, "nobody")], True),
    # refused
    ([("user", EXACT, None)], False),
    ([("user", DEFAULT, "alice")], False),
    ([("client-id", SPECIFIED, "c1")], False),
    ([("user", 7, None)], False),
    ([("", EXACT, "x")], False),
    ([("custom", EXACT, "x")], False),
    ([("user", EXACT, "a"), ("user", EXACT, "b")], False),
    ([("client-id", EXACT, "a"), ("client-id", DEFAULT, None)], False),
    ([("ip", EXACT, "10.0.0.1"), ("ip", EXACT, "10.0.0.2")], False),
    ([("user", EXACT, "alice"), ("ip", EXACT, "10.0.0.1")], False),
    ([("ip", SPECIFIED, None), ("client-id", DEFAULT, None)], True),
    # which check comes first
    ([("", 7, None)], False),
    ([("custom", 7, None)], False),
    ([("custom", EXACT, None)], False),
    ([("", EXACT, None)], False),
    ([("user", EXACT, "a"), ("user", 7, None)], False),
    ([("user", EXACT, "a"), ("user", EXACT, None)], False),
    ([("user", EXACT, None), ("custom", EXACT, "x")], False),
    ([("custom", EXACT, "x"), ("user", EXACT, None)], False),
    ([("user", 7, None), ("custom", EXACT, "x")], False),
    ([("custom", EXACT, "x"), ("custom", EXACT, "y")], False),
    ([("ip", EXACT, "1.2.3.4"), ("user", EXACT, None)], False),
]

ENTITIES = [([("user", "alice")], [("producer_byte_rate", 1024, False)]),
            ([("user", "alice"), ("client-id", "c1")], [("request_percentage", 50.5, False)]),
            ([("user", None)], [("consumer_byte_rate", 2048, False)]),
            ([("ip", "10.1.2.3")], [("connection_creation_rate", 7, False)])]


@pytest.mark.parametrize("version", [0, 1])
def test_describe_client_quotas_answers_as_kafka(tmp_path, broker, version):
    kafka = KafkaNode(str(tmp_path / "kafka")).start()
    try:
        for b in (broker.bootstrap, kafka.bootstrap):
            assert [c for c, _, _ in _alter(b, ENTITIES, False, 1)] == [0] * len(ENTITIES)
            # Kafka applies the change once its metadata log has it
            wait_until(lambda: len(describe(b, [], False, 1)[2] or {}) == len(ENTITIES), 30,
                       what="the quotas described")
        differ = []
        for components, strict in FILTERS:
            ours = describe(broker.bootstrap, components, strict, version)
            theirs = describe(kafka.bootstrap, components, strict, version)
            if ours != theirs:
                differ.append((components, strict, ours, theirs))
        assert differ == [], "\n".join(repr(d) for d in differ)
    finally:
        kafka.stop()
