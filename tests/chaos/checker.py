"""The chaos run's checker: what the workload was told and saw, against what the cluster holds.

Pure functions over plain data (no broker, no client), so tests/chaos/test_checker.py drives them
with made-up histories and logs. Two sources of truth are read after the cluster healed:
  - each replica's segment files (Kafka's on-disk format v2, the same bytes on gregor and Kafka):
    parse_log() -> [Batch], compared across replicas below the high watermark;
  - a final read through a client of every partition up to its high watermark: {offset: value}.
"""
import os
import struct
from collections import Counter, namedtuple

# base_offset .. last_offset, the partition leader epoch the leader stamped, the CRC of the batch
# (over attributes..records, so two replicas with the same CRC hold the same records), and the
# records (offset, value) when the batch is uncompressed (None otherwise).
Batch = namedtuple("Batch", "base_offset last_offset epoch crc records")

BATCH_HEADER = 61  # base offset .. records count, magic 2
COMPRESSION_MASK = 0x07


def _varint(buf, pos):
    """A zig-zag varint (Kafka's record fields): (value, next position)."""
    shift = result = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint at %d" % pos)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def _records(buf, base_offset, count):
    """[(offset, value bytes or None)] of an uncompressed batch's records section."""
    out, pos = [], 0
    for _ in range(count):
        length, pos = _varint(buf, pos)
        end = pos + length
        if length < 0 or end > len(buf):
            raise ValueError("record of %d bytes past the batch" % length)
        pos += 1  # attributes
        _, pos = _varint(buf, pos)  # timestamp delta
        delta, pos = _varint(buf, pos)
        klen, pos = _varint(buf, pos)
        pos += max(klen, 0)
        vlen, pos = _varint(buf, pos)
        value = bytes(buf[pos:pos + vlen]) if vlen >= 0 else None
        out.append((base_offset + delta, value))
        pos = end
    return out


def parse_log(data):
    """The batches of one segment file's bytes, in file order. A partial batch at the end (a
    write cut short, or preallocated zeros) ends the parse."""
    out, off = [], 0
    while off + BATCH_HEADER <= len(data):
        base, length, epoch, magic, crc, attrs, delta = struct.unpack(
            ">qiibIhi", data[off:off + 27])
        end = off + 12 + length
        if length < BATCH_HEADER - 12 or end > len(data) or magic != 2:
            break
        (count,) = struct.unpack(">i", data[off + 57:off + 61])
        records = None
        if attrs & COMPRESSION_MASK == 0:
            try:
                records = _records(data[off + 61:end], base, count)
            except ValueError:
                records = None
        out.append(Batch(base, base + delta, epoch, crc, records))
        off = end
    return out


def read_partition_dir(path):
    """Every batch of a partition directory's segment files, in offset order."""
    out = []
    try:
        names = sorted(n for n in os.listdir(path) if n.endswith(".log"))
    except OSError:
        return out
    for n in names:
        with open(os.path.join(path, n), "rb") as f:
            out.extend(parse_log(f.read()))
    return out


def log_end(batches):
    return batches[-1].last_offset + 1 if batches else 0


def compare_replicas(replicas, high_watermark):
    """replicas: {broker id: [Batch]} of one partition. Below the high watermark every replica
    must hold the same batches at the same offsets. Returns (divergent, missing): divergent lists
    (offset, {broker: (base, last, epoch, crc) or None}) where two replicas hold different
    batches covering one offset; missing lists (broker, offset) where a replica lacks an offset
    below the high watermark that another holds (it ends before it, or a hole)."""
    covering = {}
    for b, batches in replicas.items():
        m = {}
        for x in batches:
            if x.base_offset >= high_watermark:
                continue
            for o in range(x.base_offset, min(x.last_offset, high_watermark - 1) + 1):
                m[o] = (x.base_offset, x.last_offset, x.epoch, x.crc)
        covering[b] = m
    offsets = set()
    for m in covering.values():
        offsets.update(m)
    divergent, missing = [], []
    for o in sorted(offsets):
        seen = {b: m.get(o) for b, m in covering.items()}
        present = set(v for v in seen.values() if v is not None)
        if len(present) > 1:
            divergent.append((o, seen))
        for b, v in seen.items():
            if v is None:
                missing.append((b, o))
    return divergent, missing


Result = namedtuple("Result", "acked ok unknown_offset lost misplaced duplicated vanished "
                              "divergent missing details")


def check(acked, final, observed, replicas, high_watermarks, detail_limit=20):
    """acked: [(partition, offset or None when the ack named none, value)] the producers were
    told were written;
    final: {partition: {offset: value}} read through a client up to each high watermark;
    observed: [(partition, offset, value)] every record a consumer was handed during the run;
    replicas: {partition: {broker: [Batch]}}; high_watermarks: {partition: hw}.

    lost: acked and nowhere in the final read; misplaced: acked at one offset, found at another;
    duplicated: a value held at more than one offset (each extra copy counts);
    vanished: a consumer saw it, and it is not at that offset now;
    divergent / missing: compare_replicas over every partition."""
    details = []

    def note(kind, what):
        if len(details) < detail_limit:
            details.append("%s: %s" % (kind, what))

    where = {}
    copies = Counter()
    for p, records in final.items():
        for o, v in records.items():
            copies[v] += 1
            where.setdefault(v, (p, o))
    duplicated = 0
    for v, n in copies.items():
        if n > 1 and v is not None:
            duplicated += n - 1
            note("duplicated", "%r held %d times" % (v, n))
    ok = lost = misplaced = unknown_offset = 0
    for p, o, v in acked:
        if o is None or o < 0:
            # Acked without its offset (librdkafka's answer to DUPLICATE_SEQUENCE_NUMBER on a
            # retried idempotent batch the leader already had): held once anywhere is right.
            unknown_offset += 1
            if v in where:
                ok += 1
            else:
                lost += 1
                note("lost", "%r acked (offset unknown) on partition %d, held nowhere" % (v, p))
        elif final.get(p, {}).get(o) == v:
            ok += 1
        elif v in where:
            misplaced += 1
            note("misplaced", "%r acked at %d/%d, found at %d/%d" % ((v, p, o) + where[v]))
        else:
            lost += 1
            note("lost", "%r acked at %d/%d, now %r there" % (v, p, o, final.get(p, {}).get(o)))
    vanished = 0
    for p, o, v in set(observed):
        if final.get(p, {}).get(o) != v:
            vanished += 1
            note("vanished", "%r read at %d/%d, now %r there" % (v, p, o, final.get(p, {}).get(o)))
    divergent = missing = 0
    for p, by_broker in sorted(replicas.items()):
        d, m = compare_replicas(by_broker, high_watermarks.get(p, 0))
        divergent += len(d)
        missing += len(m)
        for o, seen in d[:3]:
            note("divergent", "partition %d offset %d: %s" % (p, o, seen))
        for b, o in m[:3]:
            note("missing", "partition %d offset %d absent on broker %d" % (p, o, b))
    return Result(len(acked), ok, unknown_offset, lost, misplaced, duplicated, vanished,
                  divergent, missing, details)


def failed(result):
    return bool(result.lost or result.misplaced or result.duplicated or result.vanished
                or result.divergent or result.missing)
