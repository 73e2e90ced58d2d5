"""Hostile input against the log (issue 12 items 7 and 8): segment sizes that would roll a
segment per batch are refused as Kafka 4.x refuses them, and ListOffsets by timestamp in a
batch that inflates to tens of megabytes neither inflates it nor grows the broker's memory."""
import ctypes
import ctypes.util
import re
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic)

from conftest import Broker
from kafka_wire import _varint, cstr, crc32c, flexible_call, produce_v7, uvarint

INVALID_CONFIG = 40
MIN_SEGMENT_BYTES = 1 << 20


def _admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def _create(b, name, config):
    a = _admin(b)  # kept alive until the result arrives
    fs = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config)])
    fs[name].result(15)


def _kafka_error(fut):
    with pytest.raises(KafkaException) as e:
        fut.result(15)
    return e.value.args[0]


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_segment_bytes_below_one_mib_refused(broker):
    """CreateTopics, AlterConfigs and IncrementalAlterConfigs answer INVALID_CONFIG for
    segment.bytes below 1 MiB with Kafka's ConfigDef message; 1 MiB itself is accepted."""
    a = _admin(broker)
    for value in ("14", str(MIN_SEGMENT_BYTES - 1)):
        fs = a.create_topics([NewTopic("tiny-seg", num_partitions=1, replication_factor=1,
                                       config={"segment.bytes": value})])
        err = _kafka_error(fs["tiny-seg"])
        assert err.code() == INVALID_CONFIG, err
        assert err.str() == ("Invalid value %s for configuration segment.bytes: Value must be at "
                             "least %d" % (value, MIN_SEGMENT_BYTES)), err.str()
    md = a.list_topics(timeout=10)
    assert "tiny-seg" not in md.topics

    _create(broker, "seg-ok", {"segment.bytes": str(MIN_SEGMENT_BYTES)})
    res = ConfigResource(ConfigResource.Type.TOPIC, "seg-ok")
    # IncrementalAlterConfigs
    inc = ConfigResource(ConfigResource.Type.TOPIC, "seg-ok", incremental_configs=[
        ConfigEntry("segment.bytes", "14", incremental_operation=AlterConfigOpType.SET)])
    err = _kafka_error(a.incremental_alter_configs([inc])[inc])
    assert err.code() == INVALID_CONFIG, err
    assert "Value must be at least 1048576" in err.str(), err.str()
    # AlterConfigs (the legacy whole-set request)
    legacy = ConfigResource(ConfigResource.Type.TOPIC, "seg-ok", set_config={"segment.bytes": "14"})
    err = _kafka_error(a.alter_configs([legacy])[legacy])
    assert err.code() == INVALID_CONFIG, err
    assert "Value must be at least 1048576" in err.str(), err.str()
    # Nothing changed: the topic keeps its 1 MiB segments.
    cfg = a.describe_configs([res])[res].result(15)
    assert cfg["segment.bytes"].value == str(MIN_SEGMENT_BYTES)


def test_log_segment_bytes_below_one_mib_refused_at_start(tmp_path):
    b = Broker(str(tmp_path / "data"), overrides={"log.segment.bytes": "14"})
    with pytest.raises(RuntimeError) as e:
        b.start()
    assert ("Invalid value 14 for configuration log.segment.bytes: Value must be at least 1048576"
            in str(e.value)), str(e.value)
    b.stop()
    ok = Broker(str(tmp_path / "data2"), overrides={"log.segment.bytes": str(MIN_SEGMENT_BYTES)})
    ok.start()
    assert ok.stop() == 0


# ---- item 8: ListOffsets by timestamp in a batch that inflates to tens of megabytes ----

def _zstd_compress(data):
    lib = ctypes.CDLL(ctypes.util.find_library("zstd") or "libzstd.so.1")
    lib.ZSTD_compressBound.restype = ctypes.c_size_t
    lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
    lib.ZSTD_compress.restype = ctypes.c_size_t
    lib.ZSTD_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                  ctypes.c_size_t, ctypes.c_int]
    lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
    cap = lib.ZSTD_compressBound(len(data))
    out = ctypes.create_string_buffer(cap)
    n = lib.ZSTD_compress(out, cap, data, len(data), 3)
    assert not lib.ZSTD_isError(n)
    return out.raw[:n]


def _zstd_batch(values, ts0, ts_step):
    """A valid magic-2 zstd batch: record i has offset delta i, timestamp ts0 + i * ts_step."""
    recs = bytearray()
    for i, v in enumerate(values):
        body = (b"\x00" + _varint(i * ts_step) + _varint(i) + _varint(-1) + _varint(len(v)) + v
                + _varint(0))
        recs += _varint(len(body)) + body
    payload = _zstd_compress(bytes(recs))
    n = len(values)
    after_crc = struct.pack(">hiqqqhii", 4, n - 1, ts0, ts0 + (n - 1) * ts_step, -1, -1, -1, n) + payload
    after_len = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def _list_offsets(b, topic, ts):
    """ListOffsets v7 for partition 0: (error, timestamp, offset)."""
    body = (struct.pack(">ib", -1, 0) + uvarint(2) + cstr(topic) + uvarint(2)
            + struct.pack(">iiq", 0, -1, ts) + uvarint(0) + uvarint(0) + uvarint(0))
    r = flexible_call(b.bootstrap, 2, 7, body)
    r.take(">i")
    assert r.uvarint() == 2 and r.cstr() == topic and r.uvarint() == 2
    assert r.take(">i") == 0
    return r.take(">h"), r.take(">q"), r.take(">q")


def _peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))


def _reset_peak_rss(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def test_list_offsets_in_a_batch_inflating_to_48_mb(broker):
    """8 records of 6 MB of zeros in one zstd batch of a few KB: a lookup of the last record
    streams through 42 MB without holding it (the broker's peak memory moves by a few MB; it
    used to inflate the whole batch), and every lookup answers the first record at or after
    its timestamp, as Kafka does."""
    _create(broker, "bomb", {})
    ts0, step, n = 1700000000000, 10, 8
    batch = _zstd_batch([bytes(6 << 20)] * n, ts0, step)
    assert len(batch) < 64 << 10
    assert produce_v7(broker.bootstrap, "bomb", 0, batch) == (0, 0)
    pid = broker.proc.pid
    _reset_peak_rss(pid)
    before = _peak_rss_kb(pid)
    t = time.monotonic()
    last = ts0 + (n - 1) * step
    assert _list_offsets(broker, "bomb", last - 5) == (0, last, n - 1)
    assert _list_offsets(broker, "bomb", -3) == (0, last, n - 1)
    elapsed = time.monotonic() - t
    # Measured over two lookups only: under ASan every freed window waits in the quarantine.
    grew_mb = (_peak_rss_kb(pid) - before) / 1024
    print("peak RSS grew by %.1f MB over 2 lookups in %.3f s" % (grew_mb, elapsed))
    assert grew_mb < 24, grew_mb
    for i in range(n):
        assert _list_offsets(broker, "bomb", ts0 + i * step - 5) == (0, ts0 + i * step, i)
        assert _list_offsets(broker, "bomb", ts0 + i * step) == (0, ts0 + i * step, i)
    assert _list_offsets(broker, "bomb", last + 1) == (0, -1, -1)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_offsets_for_times_every_codec(broker, codec):
    """librdkafka's batches (raw snappy among them) answer the same through the streamed lookup."""
    topic = "times-" + codec
    _create(broker, topic, {})
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                  "linger.ms": 50})
    ts0 = 1600000000000
    for i in range(200):
        p.produce(topic, value=(b"%d-" % i) * 700, partition=0, timestamp=ts0 + 3 * i)
    assert p.flush(15) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-" + codec})
    for i in range(0, 200, 7):
        r = c.offsets_for_times([TopicPartition(topic, 0, ts0 + 3 * i - 1)], timeout=10)
        assert r[0].offset == i, (i, r[0].offset)
    r = c.offsets_for_times([TopicPartition(topic, 0, ts0 + 3 * 200)], timeout=10)
    assert r[0].offset == -1
    c.close()
