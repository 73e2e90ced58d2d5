"""Migration from Apache Kafka (issue 3, "compatible both ways"): real Kafka 4.x (the harness in
tests/kafka_harness/kafka.sh) writes a topic with 3 partitions, keyed records in every codec,
headers and explicit timestamps; Kafka is stopped cleanly; gregor is started with log.dirs set to
Kafka's own data directory and must serve every record with the same partition, offset, key,
value, headers and timestamp; then gregor takes more records on the same partitions, continuing
Kafka's offsets, and serves them too (also after a restart).

Skips only when java or mvn is missing (or, off CI, when the jars cannot be fetched). On CI (env
CI set) any of that fails the test instead.
"""
import os
import random
import shutil
import subprocess
import time

import pytest

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import two_free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS = os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TOPIC = "migrated"
NPARTS = 3


def unavailable(why):
    # The Kafka jars are part of the test: not having them is a failure, never a skip.
    pytest.fail(why)


def read_partition(bootstrap, topic, partition, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "mig-%d" % time.time_ns(),
                  "enable.auto.commit": False, "enable.partition.eof": True, "check.crcs": True})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        out = []
        if hi <= lo:
            return out, lo, hi
        c.assign([TopicPartition(topic, partition, lo)])
        deadline = time.time() + timeout
        while time.time() < deadline and (not out or out[-1].offset() + 1 < hi):
            for m in c.consume(5000, 1.0):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError("fetch error: %s" % m.error())
                out.append(m)
        return out, lo, hi
    finally:
        c.close()


def record_of(m):
    return (m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp())


@pytest.fixture
def kafka(tmp_path):
    if shutil.which("java") is None or shutil.which("mvn") is None:
        unavailable("java or mvn not installed")
    env = dict(os.environ)
    port = two_free_ports()
    env.update(KAFKA_PORT=str(port), KAFKA_STATE=str(tmp_path / "kafka"), KAFKA_START_TIMEOUT="120")
    f = subprocess.run([HARNESS, "fetch"], env=env, capture_output=True, text=True, timeout=1200)
    if f.returncode != 0:
        unavailable("could not fetch the Kafka jars: %s" % (f.stdout + f.stderr)[-800:])
    r = subprocess.run([HARNESS, "start"], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        log = ""
        try:
            with open(os.path.join(env["KAFKA_STATE"], "kafka.log")) as lf:
                log = lf.read()[-3000:]
        except OSError:
            pass
        subprocess.run([HARNESS, "stop"], env=env, capture_output=True, timeout=60)
        # jars and java are there: a harness that cannot start Kafka is a failure everywhere.
        pytest.fail("kafka.sh start failed: %s\n%s" % ((r.stdout + r.stderr)[-1500:], log))

    class K:
        bootstrap = "127.0.0.1:%d" % port
        state = env["KAFKA_STATE"]
        data_dir = os.path.join(env["KAFKA_STATE"], "data")

        @staticmethod
        def stop():
            s = subprocess.run([HARNESS, "stop"], env=env, capture_output=True, text=True, timeout=120)
            assert s.returncode == 0, s.stdout + s.stderr
            return s.stdout + s.stderr
    try:
        yield K
    finally:
        subprocess.run([HARNESS, "stop"], env=env, capture_output=True, timeout=120)


def produce_known(bootstrap, start_index, per_codec, offsets_out):
    """Produces per_codec keyed records per codec, each codec through its own producer (so its
    batches really are compressed with it); returns the expected records keyed by (partition,
    offset) from the delivery reports."""
    ts0 = 1_700_000_000_000
    expected = {}
    n = start_index
    rnd = random.Random(start_index)
    for codec in CODECS:
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "acks": "all",
                      "linger.ms": 20, "batch.num.messages": 100,
                      "partitioner": "murmur2_random"})
        errors = []

        def cb(err, m, hdrs, ts):
            if err is not None:
                errors.append(err)
                return
            # A delivery report carries partition and offset but not the headers: those come
            # from what was produced.
            expected[(m.partition(), m.offset())] = (
                m.partition(), m.offset(), m.key(), m.value(), hdrs,
                (confluent_kafka.TIMESTAMP_CREATE_TIME, ts))

        for _ in range(per_codec):
            key = b"key-%d" % n
            # Half text (compressible), half pseudo-random bytes (so the partitions outgrow a
            # 1 MiB segment, Kafka's minimum segment.bytes, whatever the codec).
            value = (b"%s value %d " % (codec.encode(), n)) * (1 + n % 7) + \
                rnd.randbytes(400 + n % 1200)
            hdrs = [("codec", codec.encode()), ("n", b"%d" % n)] if n % 3 else None
            p.produce(TOPIC, key=key, value=value, headers=hdrs, timestamp=ts0 + n,
                      on_delivery=lambda e, m, h=hdrs, t=ts0 + n: cb(e, m, h, t))
            n += 1
        assert p.flush(60) == 0
        assert not errors, errors
    offsets_out.update(expected)
    return n


def test_gregor_serves_kafka_log_dir(kafka, broker_factory):
    a = AdminClient({"bootstrap.servers": kafka.bootstrap})
    a.create_topics([NewTopic(TOPIC, num_partitions=NPARTS, replication_factor=1,
                              config={"segment.bytes": str(1 << 20)})])[TOPIC].result(60)
    expected = {}
    n = produce_known(kafka.bootstrap, 0, 1200, expected)
    # Kafka itself reads back what it acknowledged (so a difference later is gregor's).
    kafka_read = {}
    kafka_ends = {}
    for part in range(NPARTS):
        msgs, lo, hi = read_partition(kafka.bootstrap, TOPIC, part)
        kafka_ends[part] = hi
        for m in msgs:
            kafka_read[(part, m.offset())] = record_of(m)
    assert kafka_read == expected
    assert all(kafka_ends[p] > 0 for p in range(NPARTS))
    kafka.stop()

    segs = [f for f in os.listdir(os.path.join(kafka.data_dir, TOPIC + "-0")) if f.endswith(".log")]
    assert len(segs) > 1, "wanted several Kafka segments per partition: %s" % segs

    b = broker_factory()
    b.data_dir = kafka.data_dir
    b.start(timeout=60)
    listed = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics
    assert TOPIC in listed and "__cluster_metadata" not in listed, sorted(listed)
    got = {}
    for part in range(NPARTS):
        msgs, lo, hi = read_partition(b.bootstrap, TOPIC, part)
        assert (lo, hi) == (0, kafka_ends[part]), "partition %d: gregor [%d,%d) vs Kafka [0,%d)" \
            % (part, lo, hi, kafka_ends[part])
        for m in msgs:
            got[(part, m.offset())] = record_of(m)
    missing = sorted(set(expected) - set(got))
    assert not missing, "%d records not served, e.g. %s" % (len(missing), missing[:5])
    diff = [k for k in expected if got[k] != expected[k]]
    assert not diff, "record %s: gregor %r, Kafka %r" % (diff[0], got[diff[0]], expected[diff[0]])
    assert set(got) == set(expected)

    # gregor appends after Kafka's data, same offsets sequence, every codec again.
    more = {}
    produce_known(b.bootstrap, n, 300, more)
    for (part, off) in more:
        assert off >= kafka_ends[part]
    b.restart()
    allrec = dict(expected)
    allrec.update(more)
    got = {}
    for part in range(NPARTS):
        msgs, lo, hi = read_partition(b.bootstrap, TOPIC, part)
        assert [m.offset() for m in msgs] == list(range(0, hi))
        for m in msgs:
            got[(part, m.offset())] = record_of(m)
    assert got == allrec
    assert b.stop() == 0
