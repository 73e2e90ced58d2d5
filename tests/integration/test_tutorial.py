"""The Kafka quickstart tutorial our users follow, command by command through bin/, against
gregor started the way the tutorial starts Kafka (kafka-server-start.sh config/server.properties)."""
import os
import re
import signal
import subprocess
import sys
import time

from conftest import ROOT, api_versions_ok, free_port
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
from zk_ensemble import server_mode, write_standalone_properties  # noqa: E402

BIN = os.path.join(ROOT, "bin")


def run(script, *args, stdin=None, env=None, timeout=60):
    return subprocess.run([os.path.join(BIN, script)] + list(args), input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


def start_zookeeper(tmp_path):
    """The tutorial's first command, bin/zookeeper-server-start.sh config/zookeeper.properties,
    with the shipped file's clientPort and dataDir moved to a free port and a temp dir."""
    zk_port = free_port()
    props = write_standalone_properties(tmp_path, zk_port)
    zk_log = open(tmp_path / "zookeeper.log", "w")
    proc = subprocess.Popen([os.path.join(BIN, "zookeeper-server-start.sh"), props],
                            stdout=zk_log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while server_mode(zk_port) is None:
        assert proc.poll() is None and time.time() < deadline, open(tmp_path / "zookeeper.log").read()
        time.sleep(0.1)
    return zk_port, props, proc


def stop_zookeeper(props, proc):
    subprocess.run([os.path.join(BIN, "zookeeper-server-stop.sh"), props], capture_output=True,
                   timeout=60)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_tutorial_end_to_end(tmp_path):
    """As written: ZooKeeper first, then the broker with config/server.properties (which holds
    zookeeper.connect, as Kafka 3.x's does), then the tools' --zookeeper: no environment
    variable tells them where the broker is."""
    zk_port, zk_props, zk = start_zookeeper(tmp_path)
    port = free_port()
    bootstrap = "localhost:%d" % port
    zookeeper = "localhost:%d" % zk_port
    data = str(tmp_path / "kafka-logs")
    env = dict(os.environ)
    env.pop("GREGOR_BOOTSTRAP", None)
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([os.path.join(BIN, "kafka-server-start.sh"),
                               os.path.join(ROOT, "config", "server.properties"),
                               "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                               "--override", "advertised.listeners=PLAINTEXT://localhost:%d" % port,
                               "--override", "zookeeper.connect=%s" % zookeeper,
                               "--override", "log.dirs=%s" % data],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        # Bounded; generous for a loaded CI machine (ZooKeeper's JVM shares its 2 cores).
        deadline = time.time() + 40
        while not api_versions_ok(port) and time.time() < deadline:
            assert server.poll() is None, open(tmp_path / "server.log").read()
            time.sleep(0.05)
        text = open(tmp_path / "server.log").read()
        assert re.search(r"INFO \[KafkaServer id=0\] started \(kafka\.server\.KafkaServer\)",
                         text), "not started within 40 s; the log:\n" + text

        r = run("kafka-topics.sh", "--create", "--zookeeper", zookeeper, "--replication-factor",
                "1", "--partitions", "1", "--topic", "test", env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Created topic test.\n"

        r = run("kafka-topics.sh", "--list", "--zookeeper", zookeeper, env=env)
        assert r.returncode == 0 and r.stdout.split() == ["test"]

        r = run("kafka-console-producer.sh", "--broker-list", bootstrap, "--topic", "test",
                stdin="Hello\nWorld\n", env=env)
        assert r.returncode == 0, r.stderr

        seg = os.path.join(data, "test-0")
        assert sorted(f for f in os.listdir(seg) if f.startswith("0000")) == [
            "00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex"]

        r = run("kafka-run-class.sh", "kafka.tools.DumpLogSegments", "--deep-iteration",
                "--print-data-log", "--files", os.path.join(seg, "00000000000000000000.log"), env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Dumping %s\n" % os.path.join(seg, "00000000000000000000.log"))
        records = re.findall(r"offset: (\d+) .*payload: (\w+)", r.stdout)
        assert records == [("0", "Hello"), ("1", "World")]

        r = run("kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", "test",
                "--from-beginning", "--group", "tutorial", "--max-messages", "2", env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Hello\nWorld\n"

        run("kafka-console-producer.sh", "--broker-list", bootstrap, "--topic", "test",
            stdin="Again\n", env=env)
        r = run("kafka-consumer-groups.sh", "--bootstrap-server", bootstrap, "--describe",
                "--group", "tutorial", env=env)
        assert r.returncode == 0, r.stderr
        row = [line.split() for line in r.stdout.splitlines() if line.startswith("tutorial ")]
        # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
        assert row and row[0][:6] == ["tutorial", "test", "0", "2", "3", "1"], r.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(20)
        log.close()
        stop_zookeeper(zk_props, zk)
    assert rc == 0, open(tmp_path / "server.log").read()
