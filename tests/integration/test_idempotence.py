"""Idempotent produce: a retried batch (same producer id, epoch, sequences) is answered with
its first offset and not appended again — also after a broker restart and after kill -9."""
import pytest

import struct

from kafka_wire import cstr, flexible_call, produce_v7, record_batch

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def end_offset(b, topic):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "idem-wm"})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    return hi


@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_duplicate_batch_not_appended_twice(broker, how):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("idem", 1, 1)])["idem"].result(10)
    pid = 4242
    b1 = record_batch([b"a", b"b", b"c"], producer_id=pid, epoch=0, base_sequence=0)
    b2 = record_batch([b"d", b"e"], producer_id=pid, epoch=0, base_sequence=3)
    assert produce_v7(broker.bootstrap, "idem", 0, b1) == (0, 0)
    assert produce_v7(broker.bootstrap, "idem", 0, b2) == (0, 3)
    assert produce_v7(broker.bootstrap, "idem", 0, b1) == (0, 0)  # retry: same answer
    assert end_offset(broker, "idem") == 5
    if how == "restart":
        broker.restart()
    else:
        broker.kill9()
        broker.start()
    # The last batch's retry is still recognised after the restart.
    assert produce_v7(broker.bootstrap, "idem", 0, b2) == (0, 3)
    # So is an older one: after a crash the batches since the last snapshot are re-read; a
    # clean stop's snapshot holds the last 5 batches per producer (Kafka's holds the last one
    # and answers OUT_OF_ORDER_SEQUENCE, fatal to a producer whose retry meets a restarted
    # leader).
    assert produce_v7(broker.bootstrap, "idem", 0, b1) == (0, 0)
    assert end_offset(broker, "idem") == 5
    # A gap in the sequence is refused; the next one in order is appended.
    gap = record_batch([b"x"], producer_id=pid, epoch=0, base_sequence=9)
    assert produce_v7(broker.bootstrap, "idem", 0, gap)[0] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    nxt = record_batch([b"f"], producer_id=pid, epoch=0, base_sequence=5)
    assert produce_v7(broker.bootstrap, "idem", 0, nxt) == (0, 5)
    assert end_offset(broker, "idem") == 6


def test_batch_errors_as_kafka(broker_factory):
    b = broker_factory()
    b.start()
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic("errs", 1, 1, config={"max.message.bytes": "200"})])["errs"].result(10)
        good = record_batch([b"ok"])
        assert produce_v7(b.bootstrap, "errs", 0, good) == (0, 0)
        bad_crc = bytearray(record_batch([b"flip"]))
        bad_crc[-3] ^= 0xFF  # inside the record, covered by the CRC
        assert produce_v7(b.bootstrap, "errs", 0, bytes(bad_crc))[0] == 2  # CORRUPT_MESSAGE
        big = record_batch([b"x" * 300])
        assert produce_v7(b.bootstrap, "errs", 0, big)[0] == 10  # MESSAGE_TOO_LARGE
        assert produce_v7(b.bootstrap, "nope", 0, good)[0] == 3  # UNKNOWN_TOPIC_OR_PARTITION
        assert produce_v7(b.bootstrap, "errs", 7, good)[0] == 3
        assert end_offset(b, "errs") == 1  # nothing of the refused batches was appended
    finally:
        assert b.stop() == 0


def init_producer_id_v4(bootstrap, transactional_id=None, producer_id=-1, epoch=-1):
    """InitProducerId v4 (flexible; KIP-360's ProducerId and ProducerEpoch, v3+): (error,
    producer id, epoch)."""
    body = cstr(transactional_id) + struct.pack(">iqh", 60000, producer_id, epoch) + b"\x00"
    r = flexible_call(bootstrap, 22, 4, body)
    r.take(">i")  # throttle
    return r.take(">h"), r.take(">q"), r.take(">h")


def test_init_producer_id_without_transactional_id_always_a_new_id(broker):
    """As Kafka 3.9 (KafkaApis, TransactionCoordinator.handleInitProducerId): without a
    transactional id every InitProducerId gets a new producer id at epoch 0, also when it names
    an existing id and epoch (bumping an epoch is for a transactional id's owner); naming one
    of the two without the other is INVALID_REQUEST, as is an empty transactional id."""
    err, pid, epoch = init_producer_id_v4(broker.bootstrap)
    assert (err, epoch) == (0, 0) and pid >= 0
    err, pid2, epoch2 = init_producer_id_v4(broker.bootstrap, producer_id=pid, epoch=0)
    assert (err, epoch2) == (0, 0)
    assert pid2 not in (pid, -1)
    err, pid3, epoch3 = init_producer_id_v4(broker.bootstrap, producer_id=pid2, epoch=32766)
    assert (err, epoch3) == (0, 0) and pid3 not in (pid, pid2, -1)
    assert init_producer_id_v4(broker.bootstrap, producer_id=pid3, epoch=-1) == (42, -1, -1)
    assert init_producer_id_v4(broker.bootstrap, producer_id=-1, epoch=0) == (42, -1, -1)
    assert init_producer_id_v4(broker.bootstrap, transactional_id="") == (42, -1, -1)
