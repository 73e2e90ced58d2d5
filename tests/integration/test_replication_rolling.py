"""A rolling restart under an idempotent producer (issue 16: "clients ride the failover on their
own"; "the new leader has the producer state"): 3 gregor brokers on a real ZooKeeper, RF 3,
min.insync.replicas 2, each broker stopped with SIGTERM (controlled shutdown moves its
leaderships first) and started again in turn, four times round (ROLL_ROUNDS, over
ROLL_PARTITIONS partitions), while one idempotent acks=all confluent_kafka producer writes to
every partition all along (about 35 s). The producer must see no error at all (before the
fixes it met a fatal OUT_OF_ORDER_SEQUENCE in 6 runs of 6: records acknowledged by an old
leader after it lost leadership, and a restarted leader that knew only each producer's
newest batch), and every acknowledged
record is readable once, at the offset its ack named (or, acknowledged implicitly by
librdkafka without an offset, once somewhere)."""
import os
import threading
import time

import pytest

from test_cluster_topics import stop_all
from test_replication_failover import (bootstrap, create_topic, metadata, start, state_of,
                                       wait_isr)
from zk_fixture import wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

PARTITIONS = int(os.environ.get("ROLL_PARTITIONS", "8"))
ROUNDS = int(os.environ.get("ROLL_ROUNDS", "4"))


class Rider:
    """One idempotent acks=all producer over every partition until stopped; fatal errors and
    failed deliveries are listed, acked[(partition, value)] = offset."""

    def __init__(self, servers):
        from confluent_kafka import Producer
        self.errors = []
        self.p = Producer({"bootstrap.servers": servers, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 2, "message.timeout.ms": 60000,
                           "retry.backoff.ms": 50, "metadata.max.age.ms": 1000,
                           "error_cb": self._error,
                           # ROLL_DEBUG=eos,msg: librdkafka's own account on stderr.
                           **({"debug": os.environ["ROLL_DEBUG"]}
                              if os.environ.get("ROLL_DEBUG") else {})})
        self.acked = {}
        self.n = 0

    def _error(self, err):
        if err.fatal():
            self.errors.append(("fatal", str(err)))

    def _done(self, err, msg):
        if err is not None:
            self.errors.append(("delivery", str(err)))
        else:
            self.acked[(msg.partition(), msg.value())] = msg.offset()

    def run(self, topic, stop):
        from confluent_kafka import KafkaException
        try:
            while not stop.is_set() and not self.errors:
                for part in range(PARTITIONS):
                    self.p.produce(topic, partition=part, value=b"v%07d" % self.n,
                                   on_delivery=self._done)
                    self.n += 1
                self.p.poll(0)
                time.sleep(0.002)
        except KafkaException as e:  # fatal: produce() refuses; error_cb says why
            self.errors.append(("produce", str(e)))
            self.p.poll(1)
        self.p.flush(90)


def read_partition(servers, topic, part):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": servers, "group.id": "check-%f" % time.time(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        end = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)[1]
        c.assign([TopicPartition(topic, part, 0)])
        out = {}
        deadline = time.time() + 60
        while len(out) < end and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            assert m.offset() not in out
            out[m.offset()] = m.value()
        assert len(out) == end, "read %d of %d records of partition %d" % (len(out), end, part)
        return out
    finally:
        c.close()


def test_rolling_sigterm_restarts_under_an_idempotent_producer(tmp_path, zookeeper):
    chroot = "/roll"
    brokers = start(tmp_path, zookeeper, chroot, {"controlled.shutdown.max.retries": 3})
    try:
        create_topic(brokers[0], "roll", PARTITIONS, {"min.insync.replicas": "2"})
        wait_until(lambda: all(m[0] > 0 and len(m[2]) == 3
                               for m in metadata(brokers[0], "roll").values()) and
                   len(metadata(brokers[0], "roll")) == PARTITIONS, 20, what="leaders, ISR of 3")
        rider = Rider(bootstrap(brokers))
        stop = threading.Event()
        th = threading.Thread(target=rider.run, args=("roll", stop))
        th.start()
        restarts = 0
        try:
            time.sleep(1.0)
            for _ in range(ROUNDS):
                for b in brokers:
                    if rider.errors:
                        break
                    assert b.stop() == 0
                    time.sleep(0.3)
                    b.start()
                    restarts += 1
                    # Back in every ISR before the next one goes (a rolling restart's rule).
                    for part in range(PARTITIONS):
                        wait_isr(zookeeper, chroot, "roll", part, [1, 2, 3], timeout=60)
                    time.sleep(0.5)
        finally:
            stop.set()
            th.join(150)
        assert not th.is_alive()
        fatal = [e for e in rider.errors if e[0] == "fatal"]
        assert not rider.errors, (fatal or rider.errors)[:5]
        assert len(rider.acked) == rider.n
        servers = bootstrap(brokers)
        for part in range(PARTITIONS):
            got = read_partition(servers, "roll", part)
            by_value = {}
            for off, v in got.items():
                by_value.setdefault(v, []).append(off)
            acked = {v: o for (p, v), o in rider.acked.items() if p == part}
            # An offset of None: librdkafka acknowledged the record implicitly (a later batch
            # of the producer was accepted after its own request failed), without an offset.
            wrong = [(v, o, by_value.get(v)) for v, o in acked.items()
                     if len(by_value.get(v, [])) != 1 or o not in (None, by_value[v][0])]
            assert not wrong, "partition %d: acked records lost, moved or doubled: %s" % (
                part, wrong[:5])
        epochs = [state_of(zookeeper, chroot, "roll", p)[0]["leader_epoch"]
                  for p in range(PARTITIONS)]
        print("rolling restart: %d SIGTERM restarts, %d records acked, none lost; leader "
              "epochs now %s" % (restarts, len(rider.acked), epochs))
    finally:
        stop_all(brokers)
