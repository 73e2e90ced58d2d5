"""Topic configs (issue 13 item 4): every Kafka 4.x topic config is accepted with Kafka's
validation and messages, shown by DescribeConfigs with its source and broker synonyms, and the
list-valued ones take IncrementalAlterConfigs APPEND and SUBTRACT."""
import os
import subprocess
import uuid

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic)

from conftest import GREGOR, ROOT, Broker

INVALID_CONFIG = 40

# Kafka 4.x's LogConfig (storage/.../LogConfig.java), plus message.downconversion.enable that
# Kafka 3.9 had and gregor keeps for the old clients it serves.
KAFKA_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.downconversion.enable",
    "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.type",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
    "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable",
    "retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms",
    "segment.ms", "unclean.leader.election.enable",
}

# A valid value other than the default for each config gregor did not know before.
NEW_VALUES = {
    "delete.retention.ms": "86400001", "segment.jitter.ms": "1000", "min.compaction.lag.ms": "5",
    "max.compaction.lag.ms": "100000", "message.timestamp.before.max.ms": "60000",
    "message.timestamp.after.max.ms": "120000", "min.cleanable.dirty.ratio": "0.25",
    "compression.gzip.level": "5", "compression.lz4.level": "12", "compression.zstd.level": "-5",
    "local.retention.ms": "1000", "local.retention.bytes": "2048", "remote.storage.enable": "false",
    "remote.log.copy.disable": "true", "remote.log.delete.on.disable": "true",
    "follower.replication.throttled.replicas": "0:0,1:0", "leader.replication.throttled.replicas": "*",
    "unclean.leader.election.enable": "true", "preallocate": "true", "compression.type": "zstd",
}


def _admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def _name(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def _create(a, name, config):
    a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                              config=config)])[name].result(15)


def _describe(a, name):
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    return a.describe_configs([res])[res].result(15)


def _error(fut):
    with pytest.raises(KafkaException) as e:
        fut.result(15)
    return e.value.args[0]


def _synonyms(entry):
    return [(s.source, s.name, s.value) for s in entry.synonyms.values()]


def test_every_kafka_topic_config_accepted_and_described(broker):
    a = _admin(broker)
    name = _name("catalog")
    _create(a, name, NEW_VALUES)
    got = _describe(a, name)
    assert set(got) == KAFKA_TOPIC_CONFIGS
    for key, value in NEW_VALUES.items():
        assert got[key].value == value, key
        assert got[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, key
    for key in KAFKA_TOPIC_CONFIGS - set(NEW_VALUES):
        assert got[key].source == ConfigSource.DEFAULT_CONFIG.value, key
        assert not got[key].is_read_only and not got[key].is_sensitive
    # Kafka's defaults (LogConfig / ServerLogConfigs of Kafka 4.x).
    assert got["delete.retention.ms"].value is not None
    fresh = _name("defaults")
    _create(a, fresh, {})
    d = _describe(a, fresh)
    assert d["delete.retention.ms"].value == "86400000"
    assert d["min.cleanable.dirty.ratio"].value == "0.5"
    assert d["max.compaction.lag.ms"].value == "9223372036854775807"
    assert d["local.retention.ms"].value == "-2"
    assert d["compression.zstd.level"].value == "3"
    assert d["compression.gzip.level"].value == "-1"
    assert d["leader.replication.throttled.replicas"].value == ""
    assert d["message.timestamp.after.max.ms"].value == "3600000"
    assert d["remote.storage.enable"].value == "false"


def test_kafka_topics_cli_config_delete_retention(broker):
    name = _name("cli")
    env = dict(os.environ, GREGOR_BIN=GREGOR)
    r = subprocess.run([os.path.join(ROOT, "bin", "kafka-topics.sh"), "--bootstrap-server",
                        broker.bootstrap, "--create", "--topic", name, "--config",
                        "delete.retention.ms=86400000", "--config", "segment.jitter.ms=10"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = _describe(_admin(broker), name)
    assert got["delete.retention.ms"].value == "86400000"
    assert got["delete.retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value


@pytest.mark.parametrize("key,value,message", [
    ("delete.retention.ms", "abc", "Not a number of type LONG"),
    ("delete.retention.ms", "-1", "Value must be at least 0"),
    ("segment.index.bytes", "99999999999", "Not a number of type INT"),
    ("min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"),
    ("min.cleanable.dirty.ratio", "x", "Not a number of type DOUBLE"),
    ("preallocate", "yes", "Expected value to be either true or false"),
    ("compression.type", "brotli",
     "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
    ("compression.gzip.level", "0", "Value must be between 1 and 9 or equal to -1"),
    ("compression.lz4.level", "18", "Value must be no more than 17"),
    ("max.compaction.lag.ms", "0", "Value must be at least 1"),
    ("message.timestamp.type", "Now", "String must be one of: CreateTime, LogAppendTime"),
    ("cleanup.policy", "delete,shred", "String must be one of: compact, delete"),
    ("local.retention.bytes", "-3", "Value must be at least -2"),
    ("leader.replication.throttled.replicas", "x:1",
     "leader.replication.throttled.replicas must be the literal '*' or a list of replicas in "
     "the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
])
def test_invalid_values_refused_as_kafka(broker, key, value, message):
    a = _admin(broker)
    name = _name("bad")
    fs = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                                   config={key: value})])
    err = _error(fs[name])
    assert err.code() == INVALID_CONFIG
    assert err.str() == "Invalid value %s for configuration %s: %s" % (value, key, message)
    # The same rule through IncrementalAlterConfigs on an existing topic.
    ok = _name("ok")
    _create(a, ok, {})
    res = ConfigResource(ConfigResource.Type.TOPIC, ok, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    err = _error(a.incremental_alter_configs([res])[res])
    assert err.code() == INVALID_CONFIG
    assert message in err.str()


def test_unknown_topic_config_refused(broker):
    a = _admin(broker)
    name = _name("unknown")
    fs = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                                   config={"retention.weeks": "2"})])
    err = _error(fs[name])
    assert err.code() == INVALID_CONFIG
    assert err.str() == "Unknown topic config name: retention.weeks"


def test_synonyms_follow_the_broker_keys(tmp_path):
    """retention.ms falls back to log.retention.ms > .minutes > .hours; the synonyms name the
    static key that set it and Kafka's default."""
    b = Broker(str(tmp_path / "data"), overrides={"log.retention.minutes": "600",
                                                  "compression.type": "lz4"}).start()
    try:
        a = _admin(b)
        name = _name("syn")
        _create(a, name, {"segment.ms": "3600000"})
        got = _describe(a, name)
        r = got["retention.ms"]
        assert r.value == "36000000"
        assert r.source == ConfigSource.STATIC_BROKER_CONFIG.value
        assert _synonyms(r) == [
            (ConfigSource.STATIC_BROKER_CONFIG.value, "log.retention.minutes", "600"),
            (ConfigSource.DEFAULT_CONFIG.value, "log.retention.hours", "168")]
        s = got["segment.ms"]
        assert s.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        assert _synonyms(s) == [
            (ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "segment.ms", "3600000"),
            (ConfigSource.DEFAULT_CONFIG.value, "log.roll.hours", "168")]
        c = got["compression.type"]
        assert (c.value, c.source) == ("lz4", ConfigSource.STATIC_BROKER_CONFIG.value)
        d = got["delete.retention.ms"]
        assert _synonyms(d) == [
            (ConfigSource.DEFAULT_CONFIG.value, "log.cleaner.delete.retention.ms", "86400000")]
    finally:
        b.stop()


def _incremental(a, name, *ops):
    res = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops])
    return a.incremental_alter_configs([res])[res]


def test_incremental_append_subtract_on_lists(broker):
    a = _admin(broker)
    name = _name("lists")
    _create(a, name, {})
    key = "leader.replication.throttled.replicas"
    _incremental(a, name, (key, "0:0", AlterConfigOpType.APPEND)).result(15)
    _incremental(a, name, (key, "1:0,0:0", AlterConfigOpType.APPEND)).result(15)
    assert _describe(a, name)[key].value == "0:0,1:0"
    _incremental(a, name, (key, "0:0", AlterConfigOpType.SUBTRACT)).result(15)
    assert _describe(a, name)[key].value == "1:0"
    # SUBTRACT from the default: cleanup.policy=delete minus delete is the empty list.
    _incremental(a, name, ("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)).result(15)
    got = _describe(a, name)["cleanup.policy"]
    assert (got.value, got.source) == ("", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    _incremental(a, name, ("cleanup.policy", "delete", AlterConfigOpType.APPEND)).result(15)
    assert _describe(a, name)["cleanup.policy"].value == "delete"
    # APPEND of compact gives delete,compact (log compaction, issue 17).
    _incremental(a, name, ("cleanup.policy", "compact", AlterConfigOpType.APPEND)).result(15)
    assert _describe(a, name)["cleanup.policy"].value == "delete,compact"
    _incremental(a, name, ("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)).result(15)
    err = _error(_incremental(a, name, ("retention.ms", "5", AlterConfigOpType.APPEND)))
    assert err.code() == INVALID_CONFIG
    assert err.str() == "Can't APPEND to key retention.ms because its type is not LIST."
    err = _error(_incremental(a, name, ("segment.ms", "5", AlterConfigOpType.SUBTRACT)))
    assert err.str() == "Can't SUBTRACT to key segment.ms because its type is not LIST."
    assert _describe(a, name)["cleanup.policy"].value == "delete"
