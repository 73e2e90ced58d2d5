"""GET /metrics (issue 20): Prometheus' text format under Kafka's JMX-exporter names, with
counts that match what real clients did, and `promtool check metrics` (Debian's prometheus)
accepting the page."""
import glob
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

N = 500
COMMITTED = 123
# A group id that needs the text format's escaping (quote, backslash).
GROUP = 'metrics "g" \\ 1'


def http_port(broker, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"HTTP console on http://[^:]+:(\d+)/", broker.log())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise AssertionError("no HTTP console line in the log:\n" + broker.log())


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse(text):
    """{(name, frozenset(labels)): value} of every sample; HELP/TYPE lines checked in passing."""
    out = {}
    label = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)",?')
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"# (HELP|TYPE) \w+ ", line), line
            continue
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        assert m, "bad sample line: %r" % line
        labels = frozenset((k, unescape(v)) for k, v in label.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in out, "duplicate sample %r" % line
        out[key] = float(m.group(3))
    return out


def get(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def mbroker(broker_factory):
    b = broker_factory(**{"gregor.http.listener": "127.0.0.1:0"}).start()
    yield b
    assert b.alive(), "broker died during the test:\n" + b.log()


def test_metrics_counts_and_promtool(mbroker, tmp_path):
    port = http_port(mbroker)
    bs = mbroker.bootstrap
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic("mt", 2, 1)])["mt"].result(30)

    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 20})
    for i in range(N):
        p.produce("mt", value=b"v%05d" % i, key=b"k%d" % i, partition=0)
    assert p.flush(30) == 0

    c = Consumer({"bootstrap.servers": bs, "group.id": GROUP, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("mt", 0, 0)])
    got = 0
    deadline = time.time() + 30
    while got < N and time.time() < deadline:
        for m in c.consume(500, 1.0):
            assert m.error() is None, m.error()
            got += 1
    assert got == N
    c.commit(offsets=[TopicPartition("mt", 0, COMMITTED)], asynchronous=False)
    c.close()

    text = scrape(port)
    s = parse(text)
    assert get(s, "kafka_server_brokertopicmetrics_messagesin_total", topic="mt") == N
    assert get(s, "kafka_server_brokertopicmetrics_bytesin_total", topic="mt") > N * 6
    assert get(s, "kafka_server_brokertopicmetrics_bytesout_total", topic="mt") >= \
        get(s, "kafka_server_brokertopicmetrics_bytesin_total", topic="mt")
    assert get(s, "kafka_server_brokertopicmetrics_totalproducerequests_total", topic="mt") >= 1
    assert get(s, "kafka_server_brokertopicmetrics_totalfetchrequests_total", topic="mt") >= 1
    produce = get(s, "kafka_network_requestmetrics_requests_total", request="Produce")
    fetches = get(s, "kafka_network_requestmetrics_requests_total", request="FetchConsumer")
    assert produce >= 1 and fetches >= 1
    assert get(s, "kafka_server_brokertopicmetrics_totalproducerequests_total", topic="mt") == produce
    # Histograms: _count equals the counter, +Inf bucket equals _count.
    for req, n in (("Produce", produce), ("FetchConsumer", fetches)):
        assert get(s, "kafka_network_requestmetrics_totaltimems_count", request=req) == n
        assert get(s, "kafka_network_requestmetrics_totaltimems_bucket", request=req, le="+Inf") == n
        assert get(s, "kafka_network_requestmetrics_totaltimems_sum", request=req) > 0
    assert get(s, "kafka_network_requestmetrics_requests_total", request="OffsetCommit") >= 1
    # Lag: the high watermark (N) minus the committed offset, the group id escaped.
    assert get(s, "kafka_consumergroup_current_offset", consumergroup=GROUP, topic="mt",
               partition="0") == COMMITTED
    assert get(s, "kafka_consumergroup_lag", consumergroup=GROUP, topic="mt",
               partition="0") == N - COMMITTED
    # Log size: the partition's segment files.
    for part in (0, 1):
        files = glob.glob(os.path.join(mbroker.data_dir, "mt-%d" % part, "*.log"))
        assert files
        assert get(s, "kafka_log_log_size", topic="mt", partition=str(part)) == \
            sum(os.path.getsize(f) for f in files)
    # acks=all waited for the group commit's fsyncs.
    assert get(s, "kafka_log_logflushstats_logflushrateandtimems_count") >= 1
    assert get(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert get(s, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert get(s, "kafka_server_replicamanager_isrshrinks_total") == 0
    assert get(s, "kafka_server_socketservermetrics_connections") >= 1
    assert get(s, "process_open_fds") > 3
    assert get(s, "process_resident_memory_bytes") > 1 << 20
    assert get(s, "process_virtual_memory_bytes") >= get(s, "process_resident_memory_bytes")
    assert abs(get(s, "process_start_time_seconds") - time.time()) < 600
    assert get(s, "process_cpu_seconds_total") > 0

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (Debian package prometheus: tools/test-deps.sh)"
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    # Another scrape: counters only grow; the scrape itself is a request of no Kafka API.
    s2 = parse(scrape(port))
    assert get(s2, "kafka_server_brokertopicmetrics_messagesin_total", topic="mt") == N
    assert get(s2, "kafka_network_requestmetrics_requests_total", request="Produce") == produce


def test_metrics_method(mbroker):
    port = http_port(mbroker)
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_metrics_replication(tmp_path):
    """3 brokers on ZooKeeper, an RF 3 partition: followers' fetches show as FetchFollower and
    replication bytes; a follower stopped leaves the ISR (isrshrinks, under-replicated 1 on the
    leader), and rejoins once it runs again (isrexpands, under-replicated 0)."""
    from zk_fixture import wait_until, zk_cluster
    with zk_cluster(tmp_path, "/metrics", overrides={"replica.lag.time.max.ms": 3000}) as by_id:
        brokers = list(by_id.values())
        admin = AdminClient({"bootstrap.servers": brokers[0].bootstrap})
        admin.create_topics([NewTopic("rt", 1, 3)], request_timeout=20)["rt"].result(30)
        p = Producer({"bootstrap.servers": brokers[0].bootstrap, "acks": "all"})
        for i in range(100):
            p.produce("rt", value=b"r%d" % i, partition=0)
        assert p.flush(30) == 0
        md = admin.list_topics(timeout=10)
        leader = md.topics["rt"].partitions[0].leader
        followers = [i for i in by_id if i != leader and i != md.controller_id] or \
            [i for i in by_id if i != leader]
        victim = followers[0]

        def m(i):
            return parse(scrape(http_port(by_id[i])))
        lm = m(leader)
        assert get(lm, "kafka_server_brokertopicmetrics_messagesin_total", topic="rt") == 100
        assert get(lm, "kafka_network_requestmetrics_requests_total", request="FetchFollower") >= 2
        assert get(lm, "kafka_server_brokertopicmetrics_replicationbytesout_total") > 0
        assert get(lm, "kafka_server_replicamanager_underreplicatedpartitions") == 0
        wait_until(lambda: get(m(victim), "kafka_server_brokertopicmetrics_replicationbytesin_total")
                   >= get(lm, "kafka_server_brokertopicmetrics_bytesin_total", topic="rt"), 20,
                   what="the follower's replication bytes in")
        # The follower's copy counts as its log size too, and no messages in as leader.
        vm = m(victim)
        assert get(vm, "kafka_server_brokertopicmetrics_messagesin_total", topic="rt") == 0
        assert get(vm, "kafka_log_log_size", topic="rt", partition="0") == \
            get(lm, "kafka_log_log_size", topic="rt", partition="0")

        # Stopped (not killed: the controller would take a dead broker out of the ISR itself,
        # which Kafka's leader does not count), the follower stops fetching; its ZooKeeper
        # session (18 s) outlives replica.lag.time.max.ms, so the leader shrinks the ISR.
        by_id[victim].proc.send_signal(signal.SIGSTOP)
        try:
            # A follower at the log end stays in sync (Kafka's isCaughtUp): append past it.
            p1 = Producer({"bootstrap.servers": by_id[leader].bootstrap, "acks": "1"})
            p1.produce("rt", value=b"more", partition=0)
            assert p1.flush(30) == 0
            wait_until(lambda: get(m(leader), "kafka_server_replicamanager_underreplicatedpartitions")
                       == 1, 15, what="the partition under-replicated on its leader")
            assert get(m(leader), "kafka_server_replicamanager_isrshrinks_total") >= 1
        finally:
            by_id[victim].proc.send_signal(signal.SIGCONT)
        wait_until(lambda: get(m(leader), "kafka_server_replicamanager_underreplicatedpartitions")
                   == 0, 60, what="the follower back in the ISR")
        assert get(m(leader), "kafka_server_replicamanager_isrexpands_total") >= 1
        assert get(m(leader), "kafka_controller_kafkacontroller_offlinepartitionscount") == 0


def errors_of(s, request):
    """{error: count} of kafka_network_requestmetrics_errors_total for one API."""
    out = {}
    for (name, labels), v in s.items():
        d = dict(labels)
        if name == "kafka_network_requestmetrics_errors_total" and d["request"] == request:
            out[d["error"]] = v
    return out


def test_metrics_error_counts(broker_factory):
    """Kafka's ErrorsPerSec{request,error}: every error code of the answered responses, NONE
    included, per API. Admin requests with known answers give exact counts; a produce to one
    partition counts one NONE per Produce request."""
    b = broker_factory(**{"gregor.http.listener": "127.0.0.1:0",
                          "auto.create.topics.enable": "false"}).start()
    port = http_port(b)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("et", 1, 1)])["et"].result(30)
    s0 = parse(scrape(port))
    assert errors_of(s0, "CreateTopics") == {"NONE": 1}
    assert errors_of(s0, "DeleteTopics") == {}

    # One DeleteTopics naming two missing topics: two UNKNOWN_TOPIC_OR_PARTITION.
    fs = admin.delete_topics(["missing-a", "missing-b"], operation_timeout=10)
    for f in fs.values():
        with pytest.raises(Exception) as e:
            f.result(30)
        assert "UNKNOWN_TOPIC_OR_PART" in str(e.value), e.value
    # One CreateTopics: one new topic (NONE), one that exists (TOPIC_ALREADY_EXISTS).
    fs = admin.create_topics([NewTopic("et", 1, 1), NewTopic("et2", 1, 1)])
    fs["et2"].result(30)
    with pytest.raises(Exception) as e:
        fs["et"].result(30)
    assert "TOPIC_ALREADY_EXISTS" in str(e.value), e.value

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "1", "linger.ms": 0})
    for i in range(20):
        p.produce("et", value=b"e%d" % i, partition=0)
        p.flush(10)
    assert p.flush(30) == 0
    # A produce to a missing topic (auto-create off) is never sent: the client's Metadata
    # request for it is answered UNKNOWN_TOPIC_OR_PARTITION.
    p.produce("no-such-topic", value=b"x")
    p.poll(2)
    assert p.flush(5) > 0  # still undelivered: nobody can take it

    s = parse(scrape(port))
    assert errors_of(s, "DeleteTopics") == {"UNKNOWN_TOPIC_OR_PARTITION": 2}
    assert errors_of(s, "CreateTopics") == {"NONE": 2, "TOPIC_ALREADY_EXISTS": 1}
    produce = get(s, "kafka_network_requestmetrics_requests_total", request="Produce")
    assert produce >= 1
    assert errors_of(s, "Produce") == {"NONE": produce}
    assert errors_of(s, "Metadata").get("UNKNOWN_TOPIC_OR_PARTITION", 0) >= 1
    # ApiVersions has one code per answer: its NONE and UNSUPPORTED_VERSION sum to its requests.
    assert sum(errors_of(s, "ApiVersions").values()) == \
        get(s, "kafka_network_requestmetrics_requests_total", request="ApiVersions")
    # acks=0: no response is sent, so no error code is counted (Kafka counts those of the
    # responses it sends); the requests are.
    p0 = Producer({"bootstrap.servers": b.bootstrap, "acks": "0", "linger.ms": 0})
    for i in range(5):
        p0.produce("et", value=b"z%d" % i, partition=0)
        p0.flush(10)
    deadline = time.time() + 10
    while time.time() < deadline:
        s2 = parse(scrape(port))
        if get(s2, "kafka_network_requestmetrics_requests_total", request="Produce") > produce:
            break
        time.sleep(0.1)
    assert get(s2, "kafka_network_requestmetrics_requests_total", request="Produce") > produce
    assert errors_of(s2, "Produce") == {"NONE": produce}

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (Debian package prometheus: tools/test-deps.sh)"
    r = subprocess.run([promtool, "check", "metrics"], input=scrape(port), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b.alive(), b.log()


def test_metrics_scrape_over_turns_during_deletes(broker_factory):
    """A scrape of more partitions than one turn writes (METRICS_SCRAPE_CHUNK, 500) is built over
    several turns: whole and well-formed, while topics are deleted under it (a deleted topic is
    looked up by name each turn and skipped), and the broker's Kafka port answers meanwhile.
    Scrapes still in progress when the broker stops are dropped (exit 0 under ASan)."""
    import threading
    b = broker_factory(**{"gregor.http.listener": "127.0.0.1:0"}).start()
    port = http_port(b)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    names = ["dt-%02d" % i for i in range(12)]
    for n in names:
        admin.create_topics([NewTopic(n, 100, 1)])[n].result(60)
    # One topic that spans several turns of a scrape by itself: deleted while a scrape is
    # inside it, the rest of it is skipped.
    admin.create_topics([NewTopic("dt-big", 1500, 1)])["dt-big"].result(60)
    s = parse(scrape(port))
    assert get(s, "kafka_server_replicamanager_partitioncount") == 2700
    sizes = [k for k in s if k[0] == "kafka_log_log_size"]
    assert len(sizes) == 2700
    for n in names:
        assert get(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=n) == 0

    results, errors = [], []

    def scraper():
        try:
            while not done.is_set():
                results.append(parse(scrape(port)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    done = threading.Event()
    threads = [threading.Thread(target=scraper) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in ["dt-big"] + names[:8]:
            admin.delete_topics([n], operation_timeout=30)[n].result(30)
            admin.list_topics(timeout=10)  # the Kafka port answers during scrapes
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert len(results) >= 3
    for r in results:
        n = get(r, "kafka_server_replicamanager_partitioncount")
        assert 400 <= n <= 2700, n
        # Every partition counted has its size sample.
        assert len([k for k in r if k[0] == "kafka_log_log_size"]) == n
    s = parse(scrape(port))
    assert get(s, "kafka_server_replicamanager_partitioncount") == 400
    left = {dict(k[1])["topic"] for k in s if k[0] == "kafka_server_brokertopicmetrics_bytesin_total"}
    assert left == set(names[8:])

    # Scrapes in flight when the broker stops: dropped with the HTTP server, never answered
    # after their request is freed.
    inflight = [threading.Thread(target=_try_scrape, args=(port,)) for _ in range(6)]
    for t in inflight:
        t.start()
    time.sleep(0.05)
    assert b.stop() == 0, b.log()
    for t in inflight:
        t.join(30)
    assert "AddressSanitizer" not in b.log(), b.log()


def _try_scrape(port):
    try:
        scrape(port)
        return True
    except Exception:  # noqa: BLE001 - the broker stopped under it
        return False
