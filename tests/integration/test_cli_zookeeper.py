"""The tutorial's `kafka-topics.sh --zookeeper localhost:2181` through a real ZooKeeper (issue
15): the tools read the live brokers from /brokers/ids (with the chroot of the connect string)
and talk to them, as Kafka 3.x's tools found the cluster from ZooKeeper. No broker registered
and an unreachable ZooKeeper are errors (exit 1) within a bounded time. $GREGOR_BOOTSTRAP is
removed from the tools' environment: it would override the lookup."""
import os
import subprocess
import time
import uuid

import pytest

from conftest import Broker, free_port
from zk_fixture import ZkReader, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

# A suite that cannot run is a failure, never a skip (make test-deps installs the package).
if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GREGOR_BIN = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))


def tool(script, *args, timeout=90, **env_extra):
    env = dict(os.environ, GREGOR_BIN=GREGOR_BIN)
    env.pop("GREGOR_BOOTSTRAP", None)
    env.update(env_extra)
    start = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "bin", script)] + list(args), capture_output=True,
                       text=True, timeout=timeout, env=env)
    return r, time.monotonic() - start


def chroot():
    return "/cli-" + uuid.uuid4().hex[:8]


@pytest.fixture
def registered_broker(tmp_path, zookeeper):
    root = chroot()
    b = Broker(str(tmp_path / "data"), overrides={"broker.id": 0,
                                                   "zookeeper.connect": zookeeper.connect + root,
                                                   "zookeeper.session.timeout.ms": 6000})
    b.start()
    try:
        yield b, zookeeper.connect + root
    finally:
        b.stop()


def broker_topics(b):
    from confluent_kafka.admin import AdminClient
    return set(AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics)


def test_tutorial_create_and_list_through_zookeeper(registered_broker):
    b, zk = registered_broker
    topic = "test-" + uuid.uuid4().hex[:6]
    # Exactly the tutorial's shape, with the ZooKeeper the broker registered in.
    r, _ = tool("kafka-topics.sh", "--create", "--zookeeper", zk, "--replication-factor", "1",
                "--partitions", "1", "--topic", topic)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("Created topic %s." % topic), r.stdout
    assert "GREGOR_BOOTSTRAP" not in r.stderr
    assert topic in broker_topics(b)

    r, _ = tool("kafka-topics.sh", "--list", "--zookeeper", zk)
    assert r.returncode == 0, r.stdout + r.stderr
    assert topic in r.stdout.split()

    r, _ = tool("kafka-topics.sh", "--describe", "--zookeeper", zk, "--topic", topic)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Topic: %s" % topic in r.stdout and "PartitionCount: 1" in r.stdout, r.stdout


def test_other_chroot_without_brokers_is_an_error(registered_broker, zookeeper):
    """A broker is registered, but in another chroot: the tool must not find it (the chroot is
    honoured) and says so, like Kafka's old tools, with exit 1."""
    b, _ = registered_broker
    empty = chroot()
    r, elapsed = tool("kafka-topics.sh", "--list", "--zookeeper", zookeeper.connect + empty)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "No brokers found in ZK" in r.stderr, r.stderr
    assert elapsed < 20

    # /brokers/ids present but empty (every broker gone): the same error.
    zr = ZkReader(zookeeper.connect)
    try:
        for p in (empty, empty + "/brokers", empty + "/brokers/ids"):
            zr.create(p)
    finally:
        zr.close()
    topic = "t-" + uuid.uuid4().hex[:6]
    r, _ = tool("kafka-topics.sh", "--create", "--zookeeper", zookeeper.connect + empty,
                "--replication-factor", "1", "--partitions", "1", "--topic", topic)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "No brokers found in ZK" in r.stderr, r.stderr
    assert topic not in broker_topics(b)


def test_unreachable_zookeeper_is_an_error_after_the_timeout():
    port = free_port()  # nothing listens there
    r, elapsed = tool("kafka-topics.sh", "--list", "--zookeeper", "127.0.0.1:%d" % port,
                      GREGOR_ZK_CONNECT_TIMEOUT_MS="2000")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Timed out waiting for connection while in state: CONNECTING" in r.stderr, r.stderr
    assert 2.0 <= elapsed < 15, elapsed


def test_configs_and_consumer_groups_accept_zookeeper(registered_broker):
    """Kafka 3.x's kafka-configs took --zookeeper too (and kafka-consumer-groups in the old
    tutorials): both find the broker the same way."""
    b, zk = registered_broker
    topic = "cfg-" + uuid.uuid4().hex[:6]
    r, _ = tool("kafka-topics.sh", "--create", "--zookeeper", zk, "--replication-factor", "1",
                "--partitions", "1", "--topic", topic)
    assert r.returncode == 0, r.stdout + r.stderr
    r, _ = tool("kafka-configs.sh", "--zookeeper", zk, "--alter", "--entity-type", "topics",
                "--entity-name", topic, "--add-config", "retention.ms=123456")
    assert r.returncode == 0, r.stdout + r.stderr
    r, _ = tool("kafka-configs.sh", "--zookeeper", zk, "--describe", "--entity-type", "topics",
                "--entity-name", topic)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "retention.ms=123456" in r.stdout, r.stdout
    r, _ = tool("kafka-consumer-groups.sh", "--zookeeper", zk, "--list")
    assert r.returncode == 0, r.stdout + r.stderr
    r, _ = tool("kafka-consumer-groups.sh", "--zookeeper", zk.rsplit("/", 1)[0] + "/none-here",
                "--list")
    assert r.returncode == 1 and "No brokers found in ZK" in r.stderr, r.stdout + r.stderr
