"""The chaos checker on made-up histories and segment bytes: each failure it exists to catch
(an acked record lost, moved, duplicated, a read that vanished, replicas that diverge or miss
records below the high watermark) is caught, and a clean history passes."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def batch_bytes(base, values, epoch=0, crc=None, compression=0):
    """One magic-2 batch as Kafka writes it (the CRC field given, or a stand-in)."""
    records = b""
    for i, v in enumerate(values):
        body = (b"\0" + zigzag(0) + zigzag(i) + zigzag(-1) + zigzag(len(v)) + v + zigzag(0))
        records += zigzag(len(body)) + body
    tail = struct.pack(">hiqqqhii", compression, len(values) - 1, 0, 0, -1, -1, -1,
                       len(values)) + records
    crc = crc if crc is not None else (hash((base, tuple(values), epoch)) & 0xFFFFFFFF)
    body = struct.pack(">ibI", epoch, 2, crc) + tail
    return struct.pack(">qi", base, len(body)) + body


def test_parse_log_reads_offsets_epochs_and_values():
    data = batch_bytes(0, [b"a", b"b"], epoch=3) + batch_bytes(2, [b"c"], epoch=4)
    got = checker.parse_log(data + b"\0" * 30)  # a partial tail ends the parse
    assert [(b.base_offset, b.last_offset, b.epoch) for b in got] == [(0, 1, 3), (2, 2, 4)]
    assert got[0].records == [(0, b"a"), (1, b"b")]
    assert got[1].records == [(2, b"c")]
    assert checker.log_end(got) == 3


def test_parse_log_leaves_compressed_records_undecoded():
    got = checker.parse_log(batch_bytes(5, [b"x"], compression=1))
    assert got[0].base_offset == 5 and got[0].records is None


def test_compare_replicas_finds_divergence_and_missing_below_the_high_watermark():
    same = checker.parse_log(batch_bytes(0, [b"a", b"b"], crc=1))
    other = checker.parse_log(batch_bytes(0, [b"a", b"X"], crc=2))
    longer = same + checker.parse_log(batch_bytes(2, [b"c"], crc=3))
    div, miss = checker.compare_replicas({1: same, 2: same, 3: same}, 2)
    assert div == [] and miss == []
    div, miss = checker.compare_replicas({1: same, 2: other}, 2)
    assert [o for o, _ in div] == [0, 1]
    div, miss = checker.compare_replicas({1: longer, 2: same}, 3)
    assert div == [] and miss == [(2, 2)]
    # Above the high watermark replicas may differ (an uncommitted tail).
    div, miss = checker.compare_replicas({1: longer, 2: same}, 2)
    assert div == [] and miss == []


def history():
    acked = [(0, 0, b"v0"), (0, 1, b"v1"), (1, 0, b"v2")]
    final = {0: {0: b"v0", 1: b"v1"}, 1: {0: b"v2"}}
    observed = [(0, 0, b"v0"), (1, 0, b"v2")]
    log = checker.parse_log(batch_bytes(0, [b"v0", b"v1"], crc=7))
    replicas = {0: {1: log, 2: log, 3: log}, 1: {}}
    return acked, final, observed, replicas, {0: 2, 1: 1}


def test_clean_history_passes():
    r = checker.check(*history())
    assert (r.acked, r.ok) == (3, 3)
    assert not checker.failed(r), r


def test_lost_acked_record_fails():
    acked, final, observed, replicas, hw = history()
    del final[0][1]
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.lost == 1 and checker.failed(r)


def test_acked_record_at_another_offset_fails():
    acked, final, observed, replicas, hw = history()
    final[0] = {0: b"v0", 2: b"v1"}
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.misplaced == 1 and r.lost == 0 and checker.failed(r)


def test_duplicate_fails():
    acked, final, observed, replicas, hw = history()
    final[1][1] = b"v1"
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.duplicated == 1 and checker.failed(r)


def test_read_that_vanished_fails():
    acked, final, observed, replicas, hw = history()
    observed.append((1, 1, b"unacked-but-read"))
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.vanished == 1 and r.lost == 0 and checker.failed(r)


def test_divergent_replica_fails():
    acked, final, observed, replicas, hw = history()
    replicas[0][3] = checker.parse_log(batch_bytes(0, [b"v0", b"zz"], crc=8))
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.divergent == 2 and checker.failed(r)


def test_ack_without_offset_is_checked_by_value():
    # librdkafka acks a retried idempotent batch that the leader already had
    # (DUPLICATE_SEQUENCE_NUMBER) without its offset: confluent_kafka's offset() is None then.
    acked, final, observed, replicas, hw = history()
    acked.append((1, None, b"v1"))  # v1 is held (at 0/1)
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.ok == 4 and r.unknown_offset == 1 and not checker.failed(r), r
    acked.append((1, None, b"never-written"))
    r = checker.check(acked, final, observed, replicas, hw)
    assert r.lost == 1 and checker.failed(r)
