"""Real clients on a cluster (issue 15): a 3-node ZooKeeper ensemble, 3 brokers, a 12-partition
RF-1 topic whose leaders are spread over the three. The Java client, librdkafka
(confluent_kafka), franz-go and kafka-python each produce a known set of records bootstrapped
from one broker and read them all back bootstrapped from another (assign, no group): exactly the
acked records, once each, in per-partition order. Finally one reader checks the whole topic holds
exactly what the four were told."""
import os
import shutil
import subprocess
import time

import pytest

from cluster_fixture import Cluster, ZkEnsemble, ensure_running, read_all
from conftest import ROOT, run_client_check
from zk_fixture import zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

TOPIC = "spread12"
PARTITIONS = 12
COUNT = 1200  # per client: 100 a partition
JAVA_DIR = os.path.join(ROOT, "tests", "java")
JAR = os.path.join(JAVA_DIR, "target", "gregor-client-check.jar")
GO_DIR = os.path.join(ROOT, "tests", "go")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    ens = ZkEnsemble.on_free_ports(str(tmp_path_factory.mktemp("zk")))
    ens.start()
    yield ens
    ens.stop()


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """The Java checker's jar and the franz-go checker, built once."""
    java, mvn, go = shutil.which("java"), shutil.which("mvn"), shutil.which("go")
    assert java and mvn and go, "java, mvn and go are required (make test-deps installs them)"
    p = subprocess.run([mvn, "-q", "-B", "-f", os.path.join(JAVA_DIR, "pom.xml"), "package",
                        "-DskipTests"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and os.path.exists(JAR), p.stdout[-4000:] + p.stderr[-4000:]
    exe = str(tmp_path_factory.mktemp("franz") / "franz-check")
    p = subprocess.run([go, "build", "-o", exe, "."], cwd=GO_DIR, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    return {"java": java, "franz": exe}


def confluent_roundtrip(cluster, produce_from, consume_from, prefix, count):
    """librdkafka: idempotent producer to explicit partitions; returns the acked set after
    checking a reader from another broker sees exactly it, in order."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    acked, errors = [], []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset(), msg.value()))
    prod = Producer({"bootstrap.servers": cluster.bootstrap(produce_from), "linger.ms": 5,
                     "enable.idempotence": True})
    for i in range(count):
        prod.produce(TOPIC, value=b"%s-value-%d" % (prefix.encode(), i), key=b"k%d" % i,
                     partition=i % PARTITIONS, on_delivery=cb)
    assert prod.flush(60) == 0 and not errors, errors[:3]
    assert len(acked) == count
    c = Consumer({"bootstrap.servers": cluster.bootstrap(consume_from), "group.id": "unused",
                  "enable.auto.commit": False})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=20)[1]
                for p in range(PARTITIONS)}
        c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        got, nxt = [], {p: 0 for p in range(PARTITIONS)}
        left = {p for p, e in ends.items() if e > 0}
        deadline = time.time() + 60
        while left:
            assert time.time() < deadline, "librdkafka reader timed out; left %s" % left
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            assert m.offset() == nxt[m.partition()], "partition %d out of order" % m.partition()
            nxt[m.partition()] = m.offset() + 1
            if nxt[m.partition()] >= ends[m.partition()]:
                left.discard(m.partition())
            if m.value().startswith(prefix.encode() + b"-value-"):
                got.append((m.partition(), m.offset(), m.value()))
    finally:
        c.close()
    assert len(got) == len(set(got)) and set(got) == set(acked)
    return set(acked)


def kafka_python_roundtrip(cluster, produce_from, consume_from, prefix, count):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    prod = KafkaProducer(bootstrap_servers=cluster.bootstrap(produce_from), linger_ms=5,
                         retries=5, request_timeout_ms=20000)
    futures = [prod.send(TOPIC, value=b"%s-value-%d" % (prefix.encode(), i), partition=i % PARTITIONS)
               for i in range(count)]
    prod.flush(60)
    acked = set()
    for i, f in enumerate(futures):
        md = f.get(timeout=30)
        assert md.partition == i % PARTITIONS
        acked.add((md.partition, md.offset, b"%s-value-%d" % (prefix.encode(), i)))
    prod.close(10)
    cons = KafkaConsumer(bootstrap_servers=cluster.bootstrap(consume_from), enable_auto_commit=False,
                         group_id=None, consumer_timeout_ms=1000)
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        cons.assign(tps)
        ends = cons.end_offsets(tps)
        cons.seek_to_beginning(*tps)
        got, nxt = [], {p: 0 for p in range(PARTITIONS)}
        left = {tp.partition for tp in tps if ends[tp] > 0}
        deadline = time.time() + 60
        while left:
            assert time.time() < deadline, "kafka-python reader timed out; left %s" % left
            for tp, msgs in cons.poll(timeout_ms=500).items():
                for m in msgs:
                    assert m.offset == nxt[m.partition], "partition %d out of order" % m.partition
                    nxt[m.partition] = m.offset + 1
                    if nxt[m.partition] >= ends[tp]:
                        left.discard(m.partition)
                    if m.value.startswith(prefix.encode() + b"-value-"):
                        got.append((m.partition, m.offset, m.value))
    finally:
        cons.close()
    assert len(got) == len(set(got)) and set(got) == acked
    return acked


def test_four_clients_produce_and_consume_across_three_brokers(tmp_path, ensemble, tools):
    ensure_running(ensemble)
    cluster = Cluster(tmp_path, ensemble, "/clients").start()
    try:
        cluster.create_topic(2, TOPIC, PARTITIONS)
        leaders = cluster.wait_leaders(TOPIC, PARTITIONS)
        # Spread: round robin over three brokers gives each four of the twelve.
        assert sorted(leaders) == list(range(PARTITIONS))
        per_broker = {i: sorted(p for p, l in leaders.items() if l == i) for i in cluster.ids}
        assert all(len(ps) == 4 for ps in per_broker.values()), per_broker
        # The controller's states agree with Metadata.
        for p in range(PARTITIONS):
            st = cluster.state(TOPIC, p)
            assert st["leader"] == leaders[p] and st["isr"] == [leaders[p]]

        results = {}
        r = run_client_check([tools["java"], "-jar", JAR, "cluster-roundtrip", cluster.bootstrap(1),
                              "topic=" + TOPIC, "consume=" + cluster.bootstrap(2),
                              "count=%d" % COUNT, "prefix=java"], cluster[1], "cluster-roundtrip",
                             "GregorClientCheck", timeout=200)
        assert r["produced"] == r["consumed"] == str(COUNT) and r["partitions"] == str(PARTITIONS)
        assert [int(x) for x in r["per_partition"].split(",")] == [COUNT // PARTITIONS] * PARTITIONS
        results["java"] = COUNT

        results["librdkafka"] = len(confluent_roundtrip(cluster, 2, 3, "rdkafka", COUNT))

        # kafka-python (no snappy codec installed) before franz-go, whose batches are snappy.
        results["kafka-python"] = len(kafka_python_roundtrip(cluster, 1, 3, "kpy", COUNT))
        r = run_client_check([tools["franz"], cluster.bootstrap(3), "cluster-roundtrip", str(COUNT),
                              TOPIC, cluster.bootstrap(1), "franz"], cluster[3], "cluster-roundtrip",
                             "franz-check", timeout=200)
        assert r["produced"] == r["consumed"] == str(COUNT) and r["partitions"] == str(PARTITIONS)
        assert int(r["others"]) == 3 * COUNT  # the other three clients' records
        results["franz"] = COUNT

        assert results == {k: COUNT for k in ("java", "librdkafka", "franz", "kafka-python")}

        # The whole topic, read by one more consumer from the third bootstrap: exactly the 4 x
        # COUNT records, 100 per partition from each client, with dense offsets.

        got = read_all(cluster.bootstrap(3), TOPIC, range(PARTITIONS))
        assert len(got) == 4 * COUNT
        for p in range(PARTITIONS):
            offs = sorted(o for q, o, _ in got if q == p)
            assert offs == list(range(4 * COUNT // PARTITIONS)), p
        # Every partition's data lives on its leader only (RF 1).
        for i, b in cluster.brokers.items():
            dirs = sorted(int(d.rsplit("-", 1)[1]) for d in os.listdir(b.data_dir)
                          if d.startswith(TOPIC + "-"))
            assert set(per_broker[i]) <= set(dirs)
        assert all(b.alive() for b in cluster.brokers.values())
        assert cluster.sanitizer_reports() == []
    finally:
        cluster.stop()
    assert cluster.sanitizer_reports() == []
