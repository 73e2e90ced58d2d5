"""Broker core with real clients: kcat, confluent-kafka (librdkafka), kafka-python."""
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create_topic(b, name, partitions=1, config=None):
    a = admin(b)  # kept alive until the result arrives
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                   config=config or {})])
    fs[name].result(10)


def consume_all(b, topic, expected, partitions=None, timeout=60):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "t-%s-%d" % (topic, time.time_ns()),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    if partitions is None:
        c.subscribe([topic])
    else:
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            assert m.error() is None, m.error()
            out.append(m)
    c.close()
    return out


def test_metadata_with_kcat(broker):
    assert KCAT, "kcat is required"
    create_topic(broker, "meta-test", 3)
    out = subprocess.run([KCAT, "-b", broker.bootstrap, "-L"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "1 brokers:" in out.stdout
    assert 'topic "meta-test" with 3 partitions' in out.stdout
    assert "broker 0 at 127.0.0.1:%d" % broker.port in out.stdout


def _metadata_call(b, version, topics):
    """Metadata v12/v13 by hand: returns (brokers, topics, top-level error or None, topic ids),
    with the whole response read (nothing may be left over)."""
    from kafka_wire import cstr, flexible_call, uvarint
    body = uvarint(len(topics) + 1)
    for t in topics:
        body += b"\0" * 16 + cstr(t) + uvarint(0)
    body += b"\0\0" + uvarint(0)  # AllowAutoTopicCreation, IncludeTopicAuthorizedOperations
    r = flexible_call(b.bootstrap, 3, version, body)
    assert r.take(">i") == 0  # ThrottleTimeMs
    brokers = []
    for _ in range(r.uvarint() - 1):
        node, host, port, rack = r.take(">i"), r.cstr(), r.take(">i"), r.cstr()
        r.tags()
        brokers.append((node, host, port, rack))
    r.cstr()  # ClusterId
    r.take(">i")  # ControllerId
    out, ids = {}, {}
    for _ in range(r.uvarint() - 1):
        err, name = r.take(">h"), r.cstr()
        ids[name] = r.raw(16)
        r.take(">b")  # IsInternal
        parts = []
        for _ in range(r.uvarint() - 1):
            perr, idx, leader, epoch = r.take(">h"), r.take(">i"), r.take(">i"), r.take(">i")
            for _ in range(3):  # replicas, ISR, offline
                for _ in range(r.uvarint() - 1):
                    r.take(">i")
            r.tags()
            parts.append((perr, idx, leader))
        r.take(">i")  # TopicAuthorizedOperations
        r.tags()
        out[name] = (err, sorted(parts, key=lambda p: p[1]))
    top = r.take(">h") if version >= 13 else None
    r.tags()
    assert r.o == len(r.d), "bytes left after the response"
    return brokers, out, top, ids


def test_metadata_v13_top_level_error_code(broker):
    """Kafka 4.x's Metadata v13 (KIP-1102) ends with a top-level ErrorCode; v12 has none."""
    create_topic(broker, "meta13", 2)
    for v in (12, 13):
        brokers, topics, top, _ids = _metadata_call(broker, v, ["meta13", "meta13-missing"])
        assert brokers == [(0, "127.0.0.1", broker.port, None)]
        assert topics["meta13"] == (0, [(0, 0, 0), (0, 1, 0)])
        assert topics["meta13-missing"][0] == 3  # UNKNOWN_TOPIC_OR_PARTITION
        assert top == (0 if v == 13 else None)


def test_kcat_produce_consume(broker):
    lines = "\n".join("key%d:value %d" % (i, i) for i in range(1000)) + "\n"
    p = subprocess.run([KCAT, "-b", broker.bootstrap, "-P", "-t", "kc", "-K:", "-p", "0"], input=lines,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    c = subprocess.run([KCAT, "-b", broker.bootstrap, "-C", "-t", "kc", "-p", "0", "-o", "beginning",
                        "-e", "-f", "%k=%s@%o\n"], capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    got = c.stdout.splitlines()
    assert got == ["key%d=value %d@%d" % (i, i, i) for i in range(1000)]


def test_100k_keyed_records_with_headers(broker):
    create_topic(broker, "big", 4)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "acks": "all"})
    n = 100_000
    ts0 = 1_700_000_000_000
    for i in range(n):
        p.produce("big", key=b"k%d" % i, value=b"v%d" % i, partition=i % 4,
                  headers=[("h", b"%d" % i), ("n", None)], timestamp=ts0 + i)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    msgs = consume_all(broker, "big", n, partitions=[0, 1, 2, 3])
    assert len(msgs) == n
    last = {}
    for m in msgs:
        i = int(m.key()[1:])
        assert m.partition() == i % 4
        assert m.value() == b"v%d" % i
        assert m.headers() == [("h", b"%d" % i), ("n", None)]
        assert m.timestamp() == (confluent_kafka.TIMESTAMP_CREATE_TIME, ts0 + i)
        assert m.offset() == i // 4
        assert last.get(m.partition(), -1) < i  # per-partition order
        last[m.partition()] = i


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs(broker, codec):
    topic = "codec-" + codec
    create_topic(broker, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 20})
    for i in range(500):
        p.produce(topic, key=b"k%d" % i, value=(b"payload-%d " % i) * 20)
    assert p.flush(30) == 0
    msgs = consume_all(broker, topic, 500, partitions=[0])
    assert [m.value() for m in msgs] == [(b"payload-%d " % i) * 20 for i in range(500)]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(broker, acks):
    topic = "acks-" + acks
    create_topic(broker, topic, 2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": acks, "enable.idempotence": False})
    for i in range(2000):
        p.produce(topic, value=b"m%d" % i, partition=i % 2)
    assert p.flush(30) == 0
    msgs = consume_all(broker, topic, 2000, partitions=[0, 1])
    assert sorted(m.value() for m in msgs) == sorted(b"m%d" % i for i in range(2000))


def test_idempotent_producer(broker):
    create_topic(broker, "idem", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(5000):
        p.produce("idem", value=b"%d" % i)
    assert p.flush(30) == 0
    msgs = consume_all(broker, "idem", 5000, partitions=[0])
    assert [int(m.value()) for m in msgs] == list(range(5000))


def test_data_survives_restart_and_kill9(broker):
    create_topic(broker, "durable", 2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(3000):
        p.produce("durable", value=b"%d" % i, partition=i % 2)
    assert p.flush(30) == 0
    broker.restart()
    assert len(consume_all(broker, "durable", 3000, partitions=[0, 1])) == 3000
    broker.kill9()
    broker.start()
    msgs = consume_all(broker, "durable", 3000, partitions=[0, 1])
    assert sorted(int(m.value()) for m in msgs) == list(range(3000))


def test_topic_admin_and_errors(broker):
    a = admin(broker)
    create_topic(broker, "adm", 2)
    with pytest.raises(Exception) as e:
        create_topic(broker, "adm", 2)
    assert "TOPIC_ALREADY_EXISTS" in str(e.value)
    with pytest.raises(Exception) as e:
        create_topic(broker, "x" * 250, 1)
    assert "val=17," in str(e.value)  # INVALID_TOPIC_EXCEPTION
    fs = a.create_topics([NewTopic("rf3", num_partitions=1, replication_factor=3)])
    with pytest.raises(Exception) as e:
        fs["rf3"].result(10)
    assert "INVALID_REPLICATION_FACTOR" in str(e.value)
    md = a.list_topics(timeout=10)
    assert "adm" in md.topics and len(md.topics["adm"].partitions) == 2
    from confluent_kafka.admin import NewPartitions
    a.create_partitions([NewPartitions("adm", 5)])["adm"].result(10)
    assert len(a.list_topics(timeout=10).topics["adm"].partitions) == 5
    a.delete_topics(["adm"])["adm"].result(10)
    assert "adm" not in a.list_topics(timeout=10).topics
    # The answer comes once the deletion is committed; the dirs are renamed and removed in
    # slices right after (a loaded machine may take a moment): bounded wait for them to go.
    deadline = time.time() + 15
    while any(d.startswith("adm-") for d in os.listdir(broker.data_dir)) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(d.startswith("adm-") for d in os.listdir(broker.data_dir))


def test_segment_files_in_kafka_layout(broker):
    create_topic(broker, "layout", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("layout", value=b"Hello")
    p.produce("layout", value=b"World")
    assert p.flush(10) == 0
    d = os.path.join(broker.data_dir, "layout-0")
    for ext in ("log", "index", "timeindex"):
        assert os.path.exists(os.path.join(d, "00000000000000000000." + ext))
    assert os.path.exists(os.path.join(broker.data_dir, "meta.properties"))
    with open(os.path.join(d, "leader-epoch-checkpoint")) as f:
        assert f.read() == "0\n1\n0 0\n"
    with open(os.path.join(d, "partition.metadata")) as f:
        assert f.read().startswith("version: 0\ntopic_id: ")
    broker.restart()  # clean stop: checkpoints written
    for name in ("recovery-point-offset-checkpoint", "log-start-offset-checkpoint",
                 "replication-offset-checkpoint"):
        with open(os.path.join(broker.data_dir, name)) as f:
            lines = f.read().splitlines()
        assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, (name, lines)
        if name != "log-start-offset-checkpoint":
            assert "layout 0 2" in lines[2:], (name, lines)


def test_list_offsets(broker):
    create_topic(broker, "lo", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        p.produce("lo", value=b"x", timestamp=1000 + i * 10)
    assert p.flush(10) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lo"})
    lo, hi = c.get_watermark_offsets(TopicPartition("lo", 0), timeout=10)
    assert (lo, hi) == (0, 10)
    r = c.offsets_for_times([TopicPartition("lo", 0, 1045)], timeout=10)
    assert r[0].offset == 5
    c.close()


def _frame(api_key, version, corr, body=b"", client=b"t"):
    hdr = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    data = hdr + body
    return struct.pack(">i", len(data)) + data


def _send_raw(port, data, read=True):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        try:
            return s.recv(65536)
        except OSError:
            return b""


def test_bad_input_battery(broker):
    bad = [
        b"\xff\xff\xff\xff",                              # negative length
        struct.pack(">i", 2**31 - 1) + b"xxxx",           # above socket.request.max.bytes
        struct.pack(">i", 3) + b"abc",                    # shorter than a header
        os.urandom(4096),                                 # garbage
        _frame(9999, 0, 1),                               # unknown API key
        _frame(3, 99, 2),                                 # unsupported Metadata version
        _frame(0, 7, 3, b"\x00\x01\x02"),                 # truncated Produce body
        _frame(3, 1, 4, struct.pack(">i", 2**30)),        # hostile array count
        struct.pack(">i", 100) + b"\x00\x12",             # frame cut short, then EOF
    ]
    # A connection opened before the battery must not notice it.
    bystander = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    for data in bad:
        _send_raw(broker.port, data)
    bystander.sendall(_frame(18, 0, 99))
    size, corr, err = struct.unpack(">iih", bystander.recv(10))
    assert corr == 99 and err == 0
    bystander.close()
    # ApiVersions with a version we do not know gets a v0 UNSUPPORTED_VERSION answer.
    resp = _send_raw(broker.port, _frame(18, 99, 7))
    size, corr, err = struct.unpack(">iih", resp[:10])
    assert corr == 7 and err == 35
    # And the broker still serves a real client.
    create_topic(broker, "after-bad", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("after-bad", value=b"ok")
    assert p.flush(10) == 0
    assert [m.value() for m in consume_all(broker, "after-bad", 1, partitions=[0])] == [b"ok"]


def test_kafka_python_producer_consumer(broker):
    import kafka
    prod = kafka.KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(100):
        prod.send("kp", key=b"k%d" % i, value=b"v%d" % i)
    prod.flush()
    prod.close()
    cons = kafka.KafkaConsumer("kp", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                               consumer_timeout_ms=5000)
    got = [(m.key, m.value) for m in cons]
    cons.close()
    assert got == [(b"k%d" % i, b"v%d" % i) for i in range(100)]


def test_fetch_long_poll_waits_without_busy_loop(broker):
    create_topic(broker, "lp", 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lp",
                  "fetch.wait.max.ms": 500, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("lp", 0, 0)])
    c.consume(1, 1.0)
    # While idle, the broker must be parked in epoll, not spinning: its CPU time stays small.
    with open("/proc/%d/stat" % broker.proc.pid) as f:
        before = sum(int(x) for x in f.read().split()[13:15])
    c.consume(1, 3.0)
    with open("/proc/%d/stat" % broker.proc.pid) as f:
        after = sum(int(x) for x in f.read().split()[13:15])
    c.close()
    assert after - before < 50, "broker used %d ticks while idle" % (after - before)


def test_embedded_config_starts_groups_at_once(tmp_path):
    """Without a config file, gregor starts with what Kafka's config/server.properties sets for
    a quick start (group.initial.rebalance.delay.ms=0); a config file without the key gets
    Kafka's built-in 3000 ms; --override wins over both. Read back with DescribeConfigs."""
    from confluent_kafka.admin import ConfigResource
    from conftest import Broker

    class Plain(Broker):
        def __init__(self, d, head):
            super().__init__(d)
            self.head = head

        def args(self):
            return super().args()[:2] + self.head(self) + [
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % self.data_dir]

    props = tmp_path / "server.properties"
    props.write_text("node.id=0\nnum.partitions=1\n")
    cases = [(lambda b: [], "0"),
             (lambda b: [str(props)], "3000"),
             (lambda b: ["--config", str(props)], "3000"),
             (lambda b: ["--override", "group.initial.rebalance.delay.ms=500"], "500")]
    for i, (head, want) in enumerate(cases):
        b = Plain(str(tmp_path / ("d%d" % i)), head).start()
        try:
            res = ConfigResource(ConfigResource.Type.BROKER, "0")
            a = admin(b)  # kept alive until the result arrives
            got = a.describe_configs([res])[res].result(10)
            assert got["group.initial.rebalance.delay.ms"].value == want, (i, b.args())
        finally:
            b.stop()


def test_list_offsets_v7_to_v10_special_timestamps(broker):
    """ListOffsets up to v10 answers as Kafka 4.1.1 did for the same requests (compared side by
    side): -4 (earliest local, v8+) is the log start, -5 (last tiered, v9+) is offset -1 with no
    error, both UNSUPPORTED_VERSION below their versions; v10 adds TimeoutMs to the request."""
    from kafka_wire import cstr, flexible_call, uvarint
    create_topic(broker, "lo-special", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        p.produce("lo-special", b"v%d" % i, partition=0, timestamp=1000 + i)
    assert p.flush(10) == 0

    def lo(version, ts):
        body = (struct.pack(">ib", -1, 0) + uvarint(2) + cstr("lo-special") + uvarint(2)
                + struct.pack(">iiq", 0, -1, ts) + uvarint(0) + uvarint(0))
        if version >= 10:
            body += struct.pack(">i", 5000)
        r = flexible_call(broker.bootstrap, 2, version, body + uvarint(0))
        r.take(">i")
        assert r.uvarint() == 2 and r.cstr() == "lo-special" and r.uvarint() == 2
        assert r.take(">i") == 0
        return r.take(">h"), r.take(">q"), r.take(">q"), r.take(">i")  # error, ts, offset, epoch

    unsupported = (35, -1, -1, -1)
    for v in (7, 8, 9, 10):
        assert lo(v, -1) == (0, -1, 10, 0)
        assert lo(v, -2) == (0, -1, 0, 0)
        assert lo(v, -3) == (0, 1009, 9, 0)
        assert lo(v, 1005) == (0, 1005, 5, 0)
        assert lo(v, -4) == ((0, -1, 0, 0) if v >= 8 else unsupported)
        assert lo(v, -5) == ((0, -1, -1, -1) if v >= 9 else unsupported)


def _topic_id(b, name):
    """The topic id Metadata v12 gives for name."""
    _brokers, topics, _top, ids = _metadata_call(b, 12, [name])
    assert topics[name][0] == 0
    return ids[name]


def test_fetch_by_topic_id_v13_to_v18(broker):
    """Fetch v13+ names topics by id (v15 moves ReplicaId into a tag, v18 adds a tagged
    HighWatermark that a consumer does not send and a single node ignores): records of a known id,
    UNKNOWN_TOPIC_ID for another, and a new fetch session - the same answers Kafka 4.1.1 gave
    to the same requests (compared side by side)."""
    from kafka_wire import cstr, flexible_call, uvarint
    create_topic(broker, "fetch-ids", 2)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        p.produce("fetch-ids", b"v%d" % i, partition=0)
    assert p.flush(10) == 0
    tid = _topic_id(broker, "fetch-ids")

    def fetch(version, topic_id, parts, epoch=-1):
        body = struct.pack(">i", -1) if version < 15 else b""
        body += struct.pack(">iiib", 100, 1, 1 << 20, 0) + struct.pack(">ii", 0, epoch)
        body += uvarint(2) + topic_id + uvarint(len(parts) + 1)
        for pi in parts:
            body += struct.pack(">iiqiqi", pi, -1, 0, -1, -1, 1 << 20)
            # v18: a follower's HighWatermark rides in tag 1 of the partition (KIP-1166).
            body += (uvarint(1) + uvarint(1) + uvarint(8) + struct.pack(">q", 3)) if version >= 18 else uvarint(0)
        body += uvarint(0) + uvarint(1) + cstr("") + uvarint(0)
        r = flexible_call(broker.bootstrap, 1, version, body)
        r.take(">i")
        err, session = r.take(">h"), r.take(">i")
        out = []
        for _ in range(r.uvarint() - 1):
            assert r.raw(16) == topic_id
            for _ in range(r.uvarint() - 1):
                pi, perr, hw, _lso, lstart = (r.take(">i"), r.take(">h"), r.take(">q"),
                                               r.take(">q"), r.take(">q"))
                for _ in range(r.uvarint() - 1):
                    r.take(">q"), r.take(">q")
                r.take(">i")
                n = r.uvarint() - 1
                r.raw(max(n, 0))
                r.tags()
                out.append((pi, perr, hw, lstart, n > 0))
            r.tags()
        return err, session != 0, out

    for v in (13, 15, 17, 18):
        assert fetch(v, tid, [0, 1]) == (0, False, [(0, 0, 5, 0, True), (1, 0, 0, 0, False)])
        assert fetch(v, b"\x01" * 16, [0]) == (0, False, [(0, 100, -1, -1, False)])  # UNKNOWN_TOPIC_ID
        assert fetch(v, tid, [0], epoch=0) == (0, True, [(0, 0, 5, 0, True)])


def test_produce_v11_to_v13_by_name_and_by_topic_id(broker):
    """Produce v13 names topics by id (KIP-516; v12 is v11 again): appends to a known id,
    UNKNOWN_TOPIC_OR_PARTITION for a partition it does not have, UNKNOWN_TOPIC_ID for an id no
    topic has (by name, before v13: UNKNOWN_TOPIC_OR_PARTITION) - the answers Kafka 4.1.1 gave
    to the same requests (compared side by side)."""
    from kafka_wire import cstr, flexible_call, record_batch, uvarint
    create_topic(broker, "produce-ids", 1)
    tid = _topic_id(broker, "produce-ids")

    def produce(version, known, partition=0):
        key = (tid if known else b"\x02" * 16) if version >= 13 else cstr("produce-ids" if known else "no-such")
        batch = record_batch([b"a", b"b"])
        body = (cstr(None) + struct.pack(">hi", 1, 5000) + uvarint(2) + key + uvarint(2)
                + struct.pack(">i", partition) + uvarint(len(batch) + 1) + batch
                + uvarint(0) + uvarint(0) + uvarint(0))
        r = flexible_call(broker.bootstrap, 0, version, body)
        assert r.uvarint() == 2
        assert (r.raw(16) if version >= 13 else cstr(r.cstr())) == key
        assert r.uvarint() == 2 and r.take(">i") == partition
        return r.take(">h"), r.take(">q")  # error, base offset

    for i, v in enumerate((11, 12, 13)):
        assert produce(v, True) == (0, 2 * i)
        assert produce(v, True, 5) == (3, -1)
        assert produce(v, False) == ((100 if v >= 13 else 3), -1)


def test_refused_version_names_the_range_served(broker):
    """Produce v14 is refused; the log names the range served (0-13 since Produce v0-2 are
    served again as Kafka 3.9 served them; issue 13 item 8)."""
    from kafka_wire import frame
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(frame(0, 14, 1, struct.pack(">hi", 1, 1000) + struct.pack(">i", 0)))
        s.settimeout(10)
        assert s.recv(1) == b""  # closed, as Kafka closes on an unsupported version
    assert "unsupported version 14 of Produce (supported 0-13)" in broker.log()


def test_new_log_dir_is_not_an_unclean_shutdown(broker):
    """A brand-new data dir has nothing to recover: it is logged as new (issue 13 item 8)."""
    log = broker.log()
    assert "Opened log dir" in log
    assert ", new)" in log and "unclean shutdown" not in log


def test_offset_for_leader_epoch_from_epoch_cache(broker):
    """OffsetForLeaderEpoch v4 answers from the partition's epoch cache as Kafka's
    LeaderEpochFileCache.endOffsetFor: the current epoch (0 on one node) ends at the log end, an
    undefined (-1) or unknown newer epoch is UNDEFINED (-1, -1), a current leader epoch newer
    than the partition's is UNKNOWN_LEADER_EPOCH; the leader-epoch-checkpoint file says so."""
    from kafka_wire import cstr, flexible_call, uvarint
    create_topic(broker, "ofle", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(7):
        p.produce("ofle", b"v%d" % i, partition=0)
    assert p.flush(10) == 0

    def ofle(epoch, current=-1):
        body = (struct.pack(">i", -1) + uvarint(2) + cstr("ofle") + uvarint(2)
                + struct.pack(">iii", 0, current, epoch) + uvarint(0) + uvarint(0) + uvarint(0))
        r = flexible_call(broker.bootstrap, 23, 4, body)
        r.take(">i")
        assert r.uvarint() == 2 and r.cstr() == "ofle" and r.uvarint() == 2
        err, part = r.take(">h"), r.take(">i")
        assert part == 0
        return err, r.take(">i"), r.take(">q")  # error, leader epoch, end offset

    assert ofle(0) == (0, 0, 7)
    assert ofle(0, current=0) == (0, 0, 7)
    assert ofle(-1) == (0, -1, -1)
    assert ofle(1) == (0, -1, -1)
    assert ofle(0, current=1) == (75, -1, -1)  # UNKNOWN_LEADER_EPOCH
    with open(os.path.join(broker.data_dir, "ofle-0", "leader-epoch-checkpoint")) as f:
        assert f.read() == "0\n1\n0 0\n"
