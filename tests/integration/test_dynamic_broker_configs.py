"""Dynamic broker configs (issue 13 item 6): AlterConfigs / IncrementalAlterConfigs on a BROKER
resource (this broker's id, or "" for the cluster-wide default) change Kafka's dynamically
updatable keys, apply at once to topics without an override, survive a restart, and are
described with their sources; read-only keys and other broker ids are refused as Kafka does."""
import os
import subprocess
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic)

from conftest import GREGOR, ROOT, Broker
from kafka_wire import cstr, flexible_call, uvarint

INVALID_REQUEST = 42
DYN_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG.value
DYN_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value


def _admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def _configs(b, *args):
    env = dict(os.environ, GREGOR_BIN=GREGOR)
    return subprocess.run([os.path.join(ROOT, "bin", "kafka-configs.sh"), "--bootstrap-server",
                           b.bootstrap] + list(args), capture_output=True, text=True, env=env,
                          timeout=60)


def _describe(a, rtype, name):
    res = ConfigResource(rtype, name)
    return a.describe_configs([res])[res].result(15)


def _incremental(a, name, *ops):
    res = ConfigResource(ConfigResource.Type.BROKER, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops])
    return a.incremental_alter_configs([res])[res]


def _error(fut):
    with pytest.raises(KafkaException) as e:
        fut.result(15)
    return e.value.args[0]


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def _incremental_raw(b, name, ops):
    """IncrementalAlterConfigs v1 on BROKER resource name (clients refuse the empty name of the
    cluster-wide default): (error code, message)."""
    body = uvarint(2) + bytes([4]) + cstr(name) + uvarint(len(ops) + 1)
    for key, op, value in ops:
        body += cstr(key) + bytes([op]) + cstr(value) + uvarint(0)
    body += uvarint(0) + b"\x00" + uvarint(0)
    r = flexible_call(b.bootstrap, 44, 1, body)
    r.take(">i")
    assert r.uvarint() == 2
    return r.take(">h"), r.cstr()


def test_kafka_configs_brokers_alter_survives_restart(tmp_path):
    b = Broker(str(tmp_path / "data")).start()
    try:
        topic = "dyn-%s" % uuid.uuid4().hex[:8]
        a = _admin(b)
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
        r = _configs(b, "--entity-type", "brokers", "--entity-name", "0", "--alter",
                     "--add-config", "log.retention.ms=1000")
        assert r.returncode == 0 and r.stdout == "Completed updating config for broker 0.\n", r.stdout
        # The cluster-wide default (resource ""): librdkafka refuses the empty BROKER name, so raw.
        assert _incremental_raw(b, "", [("log.segment.bytes", 0, "2097152"),
                                        ("log.retention.ms", 0, "5000")]) == (0, None)
        r = _configs(b, "--entity-type", "brokers", "--entity-name", "0", "--describe")
        assert "log.retention.ms=1000" in r.stdout and "log.segment.bytes" not in r.stdout, r.stdout
    finally:
        b.stop()
    b.start()
    try:
        a = _admin(b)
        got = _describe(a, ConfigResource.Type.TOPIC, topic)
        assert (got["retention.ms"].value, got["retention.ms"].source) == ("1000", DYN_BROKER)
        assert (got["segment.bytes"].value, got["segment.bytes"].source) == ("2097152", DYN_DEFAULT)
        syn = [(s.source, s.name, s.value) for s in got["retention.ms"].synonyms.values()]
        # The client keys synonyms by name: the per-broker log.retention.ms entry comes first
        # and the cluster default's (same name) replaces it in the dict.
        assert syn == [(DYN_DEFAULT, "log.retention.ms", "5000"),
                       (ConfigSource.DEFAULT_CONFIG.value, "log.retention.hours", "168")]
        brk = _describe(a, ConfigResource.Type.BROKER, "0")
        assert (brk["log.retention.ms"].value, brk["log.retention.ms"].source) == ("1000", DYN_BROKER)
        assert not brk["log.retention.ms"].is_read_only and brk["log.dirs"].is_read_only
        # Deleting the per-broker value falls back to the cluster default.
        _incremental(a, "0", ("log.retention.ms", None, AlterConfigOpType.DELETE)).result(15)
        got = _describe(a, ConfigResource.Type.TOPIC, topic)
        assert (got["retention.ms"].value, got["retention.ms"].source) == ("5000", DYN_DEFAULT)
    finally:
        b.stop()


def test_message_max_bytes_applies_without_restart(broker):
    a = _admin(broker)
    topic = "dyn-mmb-%s" % uuid.uuid4().hex[:8]
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 100000})
    errors = []
    p.produce(topic, b"x" * 5000, on_delivery=lambda e, m: errors.append(e))
    p.flush(15)
    assert errors == [None]
    _incremental(a, "0", ("message.max.bytes", "2000", AlterConfigOpType.SET)).result(15)
    p.produce(topic, b"x" * 5000, on_delivery=lambda e, m: errors.append(e))
    p.flush(15)
    assert errors[1] is not None and errors[1].name() == "MSG_SIZE_TOO_LARGE", errors


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_read_only_and_other_brokers_refused(broker):
    a = _admin(broker)
    err = _error(_incremental(a, "0", ("log.dirs", "/tmp/x", AlterConfigOpType.SET)))
    assert err.code() == INVALID_REQUEST
    assert err.str() == "Cannot update these configs dynamically: Set(log.dirs)"
    err = _error(_incremental(a, "0", ("log.retention.ms", "abc", AlterConfigOpType.SET)))
    assert err.code() == INVALID_REQUEST
    assert err.str() == ("Invalid value abc for configuration log.retention.ms: "
                         "Not a number of type LONG")
    err = _error(_incremental(a, "0", ("log.retention.ms", "5", AlterConfigOpType.APPEND)))
    assert err.str() == "Config value append is not allowed for config key: log.retention.ms"
    res = ConfigResource(ConfigResource.Type.BROKER, "0", set_config={"num.partitions": "3"})
    err = _error(a.alter_configs([res])[res])
    assert err.code() == INVALID_REQUEST
    assert err.str() == "Cannot update these configs dynamically: Set(num.partitions)"
    assert _incremental_raw(broker, "7", [("log.retention.ms", 0, "5")]) == (
        INVALID_REQUEST, "Unexpected broker id, expected 0, but received 7")
    # Keys with no topic config behind them are checked against their type too (num.io.threads
    # took any string), and the log cleaner's reconfigurable keys are Kafka dynamic keys.
    err = _error(_incremental(a, "0", ("num.io.threads", "x", AlterConfigOpType.SET)))
    assert (err.code(), err.str()) == (
        INVALID_REQUEST, "Invalid value x for configuration num.io.threads: Not a number of type INT")
    _incremental(a, "0", ("log.cleaner.threads", "2", AlterConfigOpType.SET)).result(15)
    got = _describe(a, ConfigResource.Type.BROKER, "0")
    assert got["log.cleaner.threads"].value == "2"


def _default_lines(out):
    """The entries kafka-configs.sh --entity-default --describe printed: {key: line}."""
    lines = out.splitlines()
    assert lines and lines[0] == "Default configs for brokers in the cluster are:", out
    got = {}
    for line in lines[1:]:
        assert line.startswith("  ") and " sensitive=" in line, out
        got[line[2:].split("=", 1)[0]] = line[2:]
    return got


def test_kafka_configs_entity_default(tmp_path):
    """kafka-configs.sh --entity-type brokers --entity-default: alter, describe with Kafka's
    wording and synonyms, --delete-config, persisted across a restart (the CLI crashed inside
    librdkafka on the empty BROKER name)."""
    b = Broker(str(tmp_path / "data")).start()
    try:
        topic = "dyn-def-%s" % uuid.uuid4().hex[:8]
        a = _admin(b)
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
        r = _configs(b, "--entity-type", "brokers", "--entity-default", "--alter",
                     "--add-config", "log.retention.ms=5000,log.segment.bytes=2097152")
        assert (r.returncode, r.stdout) == (
            0, "Completed updating default config for brokers in the cluster.\n"), r
        got = _describe(a, ConfigResource.Type.TOPIC, topic)
        assert (got["retention.ms"].value, got["retention.ms"].source) == ("5000", DYN_DEFAULT)
        # The broker's own set is untouched: the default is a separate entity.
        r = _configs(b, "--entity-type", "brokers", "--entity-name", "0", "--describe")
        assert r.returncode == 0 and "log.retention.ms" not in r.stdout, r
    finally:
        assert b.stop() == 0, b.log()
    b.start()
    try:
        r = _configs(b, "--entity-type", "brokers", "--entity-default", "--describe")
        assert r.returncode == 0, r
        got = _default_lines(r.stdout)
        assert list(got) == ["log.retention.ms", "log.segment.bytes"], r.stdout
        # Kafka's line: the value, then the synonyms as SOURCE:name=value, most specific first:
        # those the broker reports for its own id, in that order (less the per-broker one).
        prefix = "log.retention.ms=5000 sensitive=false synonyms={"
        assert got["log.retention.ms"].startswith(prefix) and got["log.retention.ms"][-1] == "}"
        printed = got["log.retention.ms"][len(prefix):-1].split(", ")
        brk = _describe(_admin(b), ConfigResource.Type.BROKER, "0")
        known = ["%s:%s=%s" % (ConfigSource(s.source).name, s.name, s.value)
                 for s in brk["log.retention.ms"].synonyms.values()]
        assert printed[0] == "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=5000", r.stdout
        assert [s for s in known if s in printed] == printed, (printed, known)
        # ... every one of them but the per-broker ones (Kafka's synonyms for the default resource).
        assert printed == [s for s in known if not s.startswith("DYNAMIC_BROKER_CONFIG:")], \
            (printed, known)
        assert printed[-1] == "DEFAULT_CONFIG:log.retention.hours=168", printed
        assert got["log.segment.bytes"].startswith(
            "log.segment.bytes=2097152 sensitive=false synonyms={"
            "DYNAMIC_DEFAULT_BROKER_CONFIG:log.segment.bytes=2097152"), r.stdout

        r = _configs(b, "--entity-type", "brokers", "--entity-default", "--alter",
                     "--delete-config", "log.retention.ms")
        assert (r.returncode, r.stdout) == (
            0, "Completed updating default config for brokers in the cluster.\n"), r
        r = _configs(b, "--entity-type", "brokers", "--entity-default", "--describe")
        assert r.returncode == 0 and list(_default_lines(r.stdout)) == ["log.segment.bytes"], r
        got = _describe(_admin(b), ConfigResource.Type.TOPIC, topic)
        assert got["retention.ms"].source != DYN_DEFAULT and got["retention.ms"].value != "5000"
        # Deleting a key the default does not hold is refused before anything is sent, as Kafka.
        r = _configs(b, "--entity-type", "brokers", "--entity-default", "--alter",
                     "--delete-config", "log.retention.ms")
        assert r.returncode == 1 and "Invalid config(s): log.retention.ms" in r.stdout + r.stderr, r
        # The broker's refusals reach the user with Kafka's message.
        r = _configs(b, "--entity-type", "brokers", "--entity-default", "--alter",
                     "--add-config", "log.dirs=/tmp/x")
        assert r.returncode == 1 and (
            "Cannot update these configs dynamically: Set(log.dirs)" in r.stdout + r.stderr), r
        assert b.alive(), b.log()
    finally:
        assert b.stop() == 0, b.log()


def test_kafka_configs_describe_every_broker(broker):
    """--entity-type brokers --describe without a name: every broker, then the cluster default."""
    r = _configs(broker, "--entity-type", "brokers", "--entity-name", "0", "--alter",
                 "--add-config", "log.retention.ms=1000")
    assert r.returncode == 0, r
    r = _configs(broker, "--entity-type", "brokers", "--entity-default", "--alter",
                 "--add-config", "log.retention.ms=5000")
    assert r.returncode == 0, r
    r = _configs(broker, "--entity-type", "brokers", "--describe")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == "Dynamic configs for broker 0 are:", r.stdout
    default_at = lines.index("Default configs for brokers in the cluster are:")
    assert [l for l in lines[1:default_at] if l.startswith("  log.retention.ms=")] == [
        l for l in lines[1:default_at] if l.startswith("  log.retention.ms=1000 ")], r.stdout
    assert any(l.startswith("  log.retention.ms=1000 ") for l in lines[1:default_at]), r.stdout
    assert [l.split(" ")[2] for l in lines[default_at + 1:]] == ["log.retention.ms=5000"], r.stdout
