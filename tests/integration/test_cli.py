"""The client CLI (bin/kafka-*.sh wrappers over `gregor <subcommand>`) against a running broker.

Broker selection, first match wins:
  GREGOR_BOOTSTRAP=host:port      use that broker (the lead's fixture sets it)
  GREGOR_TEST_AGAINST_KAFKA=1     start real Apache Kafka via tests/kafka_harness/kafka.sh
  otherwise                       start `build/gregor serve` on a free port; skip if it does
                                  not answer ApiVersions within 10 s
The wrappers find the binary via GREGOR_BIN (default build/gregor).
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "bin")
GREGOR_BIN = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
HARNESS = os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_api_versions(host, port, timeout=1.0):
    """True when a Kafka ApiVersions v0 request gets a well-formed reply."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            client_id = b"gregor-test"
            body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
            s.sendall(struct.pack(">i", len(body)) + body)
            head = s.recv(4)
            if len(head) < 4:
                return False
            size = struct.unpack(">i", head)[0]
            data = b""
            while len(data) < size:
                chunk = s.recv(size - len(data))
                if not chunk:
                    return False
                data += chunk
            correlation, error = struct.unpack(">ih", data[:6])
            return correlation == 7 and error == 0
    except OSError:
        return False


@pytest.fixture(scope="module")
def bootstrap():
    if os.environ.get("GREGOR_BOOTSTRAP"):
        yield os.environ["GREGOR_BOOTSTRAP"]
        return
    port = free_port()
    if os.environ.get("GREGOR_TEST_AGAINST_KAFKA") == "1":
        state = tempfile.mkdtemp(prefix="gregor-kafka-")
        env = dict(os.environ, KAFKA_PORT=str(port), KAFKA_STATE=state)
        subprocess.run([HARNESS, "start"], env=env, check=True)
        try:
            yield "127.0.0.1:%d" % port
        finally:
            subprocess.run([HARNESS, "stop"], env=env)
            shutil.rmtree(state, ignore_errors=True)
        return
    assert os.access(GREGOR_BIN, os.X_OK), "%s is not built (run make)" % GREGOR_BIN
    logdir = tempfile.mkdtemp(prefix="gregor-cli-test-")
    log = open(os.path.join(logdir, "serve.log"), "w")
    proc = subprocess.Popen([GREGOR_BIN, "serve",
                             "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                             "--override", "log.dirs=%s" % os.path.join(logdir, "data")],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline and proc.poll() is None:
        if answers_api_versions("127.0.0.1", port):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        proc.wait()
        pytest.fail("`gregor serve` did not answer ApiVersions on port %d within 10 s (log: %s)"
                    % (port, log.name))
    try:
        yield "127.0.0.1:%d" % port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(logdir, ignore_errors=True)


def run(script, *args, stdin=None, bootstrap=None, timeout=60):
    """Run bin/<script> with args; returns CompletedProcess with text output."""
    env = dict(os.environ, GREGOR_BIN=GREGOR_BIN)
    if bootstrap:
        env["GREGOR_BOOTSTRAP"] = bootstrap  # where --zookeeper is mapped
    return subprocess.run([os.path.join(BIN, script)] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def topic_name(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def create(bs, topic, partitions=1):
    r = run("kafka-topics.sh", "--bootstrap-server", bs, "--create", "--topic", topic,
            "--partitions", str(partitions), "--replication-factor", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("Created topic %s." % topic)


def produce(bs, topic, lines, *extra):
    r = run("kafka-console-producer.sh", "--bootstrap-server", bs, "--topic", topic, *extra,
            stdin="".join(line + "\n" for line in lines))
    assert r.returncode == 0, r.stderr
    return r


def consume(bs, topic, *extra):
    return run("kafka-console-consumer.sh", "--bootstrap-server", bs, "--topic", topic,
               "--timeout-ms", "5000", *extra)


def test_tutorial_flow(bootstrap):
    """The tutorial, command for command (--zookeeper maps onto the broker under test)."""
    topic = topic_name("test")
    r = run("kafka-topics.sh", "--create", "--zookeeper", "localhost:2181", "--replication-factor",
            "1", "--partitions", "1", "--topic", topic, bootstrap=bootstrap)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "Created topic %s.\n" % topic
    assert "zookeeper" in r.stderr.lower()
    r = run("kafka-topics.sh", "--list", "--zookeeper", "localhost:2181", bootstrap=bootstrap)
    assert r.returncode == 0 and topic in r.stdout.split("\n")
    r = run("kafka-console-producer.sh", "--broker-list", bootstrap, "--topic", topic,
            stdin="Hello\nWorld\n")
    assert r.returncode == 0, r.stderr
    assert ">" not in r.stdout  # stdin is not a terminal: no prompt
    r = run("kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--from-beginning", "--max-messages", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello\nWorld\n"
    assert "Processed a total of 2 messages" in r.stderr


def test_describe_format(bootstrap):
    topic = topic_name()
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--create", "--topic", topic,
            "--partitions", "2", "--replication-factor", "1", "--config", "retention.ms=123456")
    assert r.returncode == 0, r.stdout
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.rstrip("\n").split("\n")
    assert re.match(r"^Topic: %s\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 2\tReplicationFactor: 1\t"
                    r"Configs: .*retention\.ms=123456" % topic, lines[0]), lines[0]
    assert "TopicId: AAAAAAAAAAAAAAAAAAAAAA" not in lines[0]  # the real id, not the zero one
    assert len(lines) == 3
    for p, line in enumerate(lines[1:]):
        assert re.match(r"^\tTopic: %s\tPartition: %d\tLeader: \d+\tReplicas: \d+\tIsr: \d+"
                        % (topic, p), line), line


def test_create_existing_and_if_not_exists(bootstrap):
    topic = topic_name()
    create(bootstrap, topic)
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
    assert r.returncode == 1
    assert "Topic '%s' already exists." % topic in r.stdout
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--create", "--topic", topic,
            "--if-not-exists")
    assert r.returncode == 0 and r.stdout == ""


def test_alter_and_delete(bootstrap):
    topic = topic_name()
    create(bootstrap, topic)
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--alter", "--topic", topic,
            "--partitions", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    assert "PartitionCount: 3" in r.stdout
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--alter", "--topic", topic,
            "--partitions", "2")
    assert r.returncode == 1 and "Error while executing topic command" in r.stdout
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--delete", "--topic", topic)
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.time() + 10
    while time.time() < deadline:
        r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--list")
        if topic not in r.stdout.split("\n"):
            break
        time.sleep(0.5)
    assert topic not in r.stdout.split("\n")
    r = run("kafka-topics.sh", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    assert r.returncode == 1
    assert "Topic '%s' does not exist as expected" % topic in r.stdout


def test_keys_and_print_properties(bootstrap):
    topic = topic_name()
    create(bootstrap, topic)
    produce(bootstrap, topic, ["k1:v1", "k2:v:2"], "--property", "parse.key=true",
            "--property", "key.separator=:", "--producer-property", "acks=1")
    r = consume(bootstrap, topic, "--from-beginning", "--property", "print.key=true",
                "--property", "print.offset=true", "--property", "print.partition=true")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Partition:0\tOffset:0\tk1\tv1\nPartition:0\tOffset:1\tk2\tv:2\n"
    assert "Processed a total of 2 messages" in r.stderr
    r = consume(bootstrap, topic, "--from-beginning", "--max-messages", "1", "--property",
                "print.timestamp=true", "--property", "print.key=true", "--property",
                "key.separator=|")
    assert re.match(r"^CreateTime:\d+\|k1\|v1\n$", r.stdout), r.stdout


def test_missing_key_separator_fails(bootstrap):
    topic = topic_name()
    create(bootstrap, topic)
    r = run("kafka-console-producer.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--property", "parse.key=true", "--property", "key.separator=:", stdin="nokey\n")
    assert r.returncode == 1
    assert "No key separator found on line number 1: 'nokey'" in r.stderr


def test_partition_and_offset(bootstrap):
    topic = topic_name()
    create(bootstrap, topic)
    produce(bootstrap, topic, ["m%d" % i for i in range(5)])
    r = consume(bootstrap, topic, "--partition", "0", "--offset", "3")
    assert r.returncode == 0 and r.stdout == "m3\nm4\n", r.stdout + r.stderr
    r = consume(bootstrap, topic, "--partition", "0", "--offset", "earliest", "--max-messages", "2")
    assert r.stdout == "m0\nm1\n"
    assert "Processed a total of 2 messages" in r.stderr


def test_consumer_groups(bootstrap):
    topic, group = topic_name(), topic_name("g")
    create(bootstrap, topic)
    produce(bootstrap, topic, ["a", "b", "c", "d"])
    r = consume(bootstrap, topic, "--group", group, "--from-beginning", "--max-messages", "4")
    assert r.stdout == "a\nb\nc\nd\n", r.stderr
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--list")
    assert group in r.stdout.split("\n")
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--describe",
            "--group", group)
    assert r.returncode == 0, r.stdout + r.stderr
    header = [l for l in r.stdout.split("\n") if l.startswith("GROUP")][0]
    assert header.split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET",
                              "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    row = [l for l in r.stdout.split("\n") if l.startswith(group)][0].split()
    assert row[:6] == [group, topic, "0", "4", "4", "0"]
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--reset-offsets",
            "--group", group, "--topic", topic, "--to-offset", "1", "--dry-run")
    assert r.returncode == 0 and re.search(r"%s\s+%s\s+0\s+1\s*\n" % (group, topic), r.stdout)
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--reset-offsets",
            "--group", group, "--topic", topic, "--to-earliest", "--execute")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--describe",
            "--group", group)
    row = [l for l in r.stdout.split("\n") if l.startswith(group)][0].split()
    assert row[3:6] == ["0", "4", "4"]
    r = consume(bootstrap, topic, "--group", group, "--max-messages", "4")
    assert r.stdout == "a\nb\nc\nd\n"
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--delete",
            "--group", group)
    assert r.returncode == 0, r.stdout
    assert "Deletion of requested consumer groups ('%s') was successful." % group in r.stdout
    r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--describe",
            "--group", group)
    assert r.returncode == 1


def test_configs(bootstrap):
    topic = topic_name()
    create(bootstrap, topic)
    r = run("kafka-configs.sh", "--bootstrap-server", bootstrap, "--entity-type", "topics",
            "--entity-name", topic, "--alter", "--add-config", "retention.ms=7777,segment.bytes=1048576")
    assert r.returncode == 0 and r.stdout == "Completed updating config for topic %s.\n" % topic
    r = run("kafka-configs.sh", "--bootstrap-server", bootstrap, "--entity-type", "topics",
            "--entity-name", topic, "--describe")
    assert r.stdout.startswith("Dynamic configs for topic %s are:\n" % topic)
    assert "  retention.ms=7777 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=7777" in r.stdout
    assert "segment.bytes=1048576" in r.stdout
    r = run("kafka-configs.sh", "--bootstrap-server", bootstrap, "--entity-type", "topics",
            "--entity-name", topic, "--alter", "--delete-config", "segment.bytes")
    assert r.returncode == 0
    r = run("kafka-configs.sh", "--bootstrap-server", bootstrap, "--entity-type", "topics",
            "--entity-name", topic, "--describe")
    assert "segment.bytes" not in r.stdout and "retention.ms=7777" in r.stdout


def test_get_offsets(bootstrap):
    topic = topic_name()
    create(bootstrap, topic, partitions=2)
    produce(bootstrap, topic, ["x", "y", "z"])
    r = run("kafka-get-offsets.sh", "--bootstrap-server", bootstrap, "--topic", topic)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert [l.rsplit(":", 2)[1] for l in lines] == ["0", "1"]
    assert sum(int(l.rsplit(":", 1)[1]) for l in lines) == 3
    r = run("kafka-get-offsets.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--time", "-2")
    assert r.stdout == "%s:0:0\n%s:1:0\n" % (topic, topic)


def test_producer_perf_summary(bootstrap):
    topic = topic_name("perf")
    create(bootstrap, topic)
    r = run("kafka-producer-perf-test.sh", "--topic", topic, "--num-records", "2000",
            "--record-size", "100", "--throughput", "-1", "--producer-props", "acks=1",
            "bootstrap.servers=%s" % bootstrap, "linger.ms=5")
    assert r.returncode == 0, r.stderr
    assert re.match(r"^2000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg "
                    r"latency, [\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, "
                    r"\d+ ms 99\.9th\.$", r.stdout.strip().split("\n")[-1]), r.stdout


def end_offsets(bs, topic):
    r = run("kafka-get-offsets.sh", "--bootstrap-server", bs, "--topic", topic)
    assert r.returncode == 0, r.stderr
    return [int(l.rsplit(":", 1)[1]) for l in r.stdout.split()]


def test_producer_perf_enqueue_batch(bootstrap):
    """--enqueue-batch hands records over with rd_kafka_produce_batch: every record arrives
    once, also when the client's queue (100 records here) refuses part of each batch of 1000
    and when the last batch is short; the topics of a list take turns by batch."""
    a, b = topic_name("perfb"), topic_name("perfb")
    create(bootstrap, a)
    create(bootstrap, b, partitions=2)
    r = run("kafka-producer-perf-test.sh", "--topic", "%s,%s" % (a, b), "--num-records", "4500",
            "--record-size", "64", "--throughput", "-1", "--enqueue-batch", "1000",
            "--producer-props", "acks=all", "bootstrap.servers=%s" % bootstrap,
            "queue.buffering.max.messages=100")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split("\n")[-1].startswith("4500 records sent, "), r.stdout
    assert sum(end_offsets(bootstrap, a)) == 2500  # batches 1, 3 and the short 5th
    assert sum(end_offsets(bootstrap, b)) == 2000
    r = run("kafka-producer-perf-test.sh", "--topic", a, "--num-records", "10",
            "--record-size", "1", "--enqueue-batch", "0", "--producer-props",
            "bootstrap.servers=%s" % bootstrap)
    assert r.returncode == 1 and "Invalid --enqueue-batch" in r.stderr


def test_consumer_perf_counts_every_record(bootstrap):
    topic = topic_name("perfc")
    create(bootstrap, topic, partitions=3)
    r = run("kafka-producer-perf-test.sh", "--topic", topic, "--num-records", "1234",
            "--record-size", "100", "--throughput", "-1", "--enqueue-batch", "500",
            "--producer-props", "bootstrap.servers=%s" % bootstrap)
    assert r.returncode == 0, r.stderr
    r = run("kafka-consumer-perf-test.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--messages", "1234", "--timeout", "20000")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.strip().split("\n")[-2:]
    assert header.startswith("start.time, end.time, data.consumed.in.MB, MB.sec, "
                             "data.consumed.in.nMsg")
    f = [x.strip() for x in row.split(",")]
    assert int(f[4]) == 1234 and abs(float(f[2]) - 1234 * 100 / 1048576) < 1e-3, row
    # Kafka's tool's other forms: rows per reporting interval (totals so far, then rates), no
    # header, a start at the end of the log.
    r = run("kafka-consumer-perf-test.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--messages", "1234", "--show-detailed-stats", "--reporting-interval", "1",
            "--fetch-size", "4096", "--socket-buffer-size", "65536", "--timeout", "20000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().split("\n")
    assert lines[0] == ("time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
                        "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    rows = [[x.strip() for x in line.split(",")] for line in lines[1:]]
    assert rows and all(len(x) == 10 and x[1] == "0" for x in rows), lines
    counts = [int(x[4]) for x in rows]
    assert counts == sorted(counts) and counts[-1] <= 1234, counts
    r = run("kafka-consumer-perf-test.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--messages", "1234", "--hide-header", "--timeout", "20000")
    assert r.returncode == 0 and len(r.stdout.strip().split("\n")) == 1, r.stdout
    assert int(r.stdout.split(",")[4]) == 1234, r.stdout
    r = run("kafka-consumer-perf-test.sh", "--bootstrap-server", bootstrap, "--topic", topic,
            "--messages", "1", "--from-latest", "--timeout", "1500")
    assert r.returncode == 1 and "timeout (1500 ms) exceeded" in r.stderr, r.stderr
    assert int(r.stdout.strip().split("\n")[-1].split(",")[4]) == 0, r.stdout


@pytest.mark.parametrize("script", ["kafka-topics.sh", "kafka-console-producer.sh",
                                    "kafka-console-consumer.sh", "kafka-consumer-groups.sh",
                                    "kafka-configs.sh", "kafka-get-offsets.sh"])
def test_help_and_unknown_option(script):
    assert os.access(GREGOR_BIN, os.X_OK), "%s is not built (run make)" % GREGOR_BIN
    r = run(script, "--help")
    assert r.returncode == 0 and "Option" in r.stdout and "--bootstrap-server" in r.stdout
    r = run(script, "--no-such-flag")
    assert r.returncode == 1
    assert "no-such-flag is not a recognized option" in r.stderr


def test_run_class_unknown():
    r = run("kafka-run-class.sh", "kafka.tools.NoSuchTool")
    assert r.returncode == 1 and "not available in gregor" in r.stderr
