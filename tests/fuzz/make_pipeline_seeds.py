#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_pipeline: byte streams a client sends on one connection,
several requests pipelined in each (run from the repository root; the files are committed)."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from kafka_wire import frame as wire_frame, record_batch, s16  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "seeds", "fuzz_pipeline")


def frame(api, version, corr, body):
    return wire_frame(api, version, corr, body, client_id=b"fuzz")


def create_topics(name, partitions):
    # CreateTopics v1: [name, partitions, replication, [assignments], [configs]], timeout, validate
    t = s16(name) + struct.pack(">ihii", partitions, 1, 0, 0)
    return struct.pack(">i", 1) + t + struct.pack(">ib", 10000, 0)


def produce(topic, values, acks):
    batch = record_batch(values, ts=1700000000000)
    body = struct.pack(">hhi", -1, acks, 10000) + struct.pack(">i", 1) + s16(topic)
    return body + struct.pack(">iii", 1, 0, len(batch)) + batch


def fetch(topic, offset, wait_ms):
    # Fetch v4: replica, max_wait, min_bytes, max_bytes, isolation, [topic [partition offset max]]
    body = struct.pack(">iiiib", -1, wait_ms, 1, 1 << 20, 0) + struct.pack(">i", 1) + s16(topic)
    return body + struct.pack(">iiqi", 1, 0, offset, 1 << 20)


def metadata(topics):
    return struct.pack(">i", len(topics)) + b"".join(s16(t) for t in topics)


def join(group, member):
    meta = b"\x00\x01" + struct.pack(">i", 1) + s16("t") + struct.pack(">i", 0)
    return (s16(group) + struct.pack(">ii", 10000, 10000) + s16(member) + s16(None) +
            s16("consumer") + struct.pack(">i", 1) + s16("range") + struct.pack(">i", len(meta)) + meta)


def leave(group, member):
    return s16(group) + struct.pack(">i", 1) + s16(member) + s16(None)


def offset_commit(group, topic, offset):
    # OffsetCommit v2: group, generation, member, retention, [topic [partition offset metadata]]
    body = s16(group) + struct.pack(">i", -1) + s16("") + struct.pack(">q", -1)
    return body + struct.pack(">i", 1) + s16(topic) + struct.pack(">iiq", 1, 0, offset) + s16("m")


SEEDS = {
    "api_versions_x3": frame(18, 0, 1, b"") + frame(18, 1, 2, b"") + frame(18, 2, 3, b""),
    "create_produce_fetch": (frame(19, 1, 1, create_topics("t", 2)) +
                             frame(0, 7, 2, produce("t", [b"a", b"bb"], -1)) +
                             frame(0, 7, 3, produce("t", [b"c"], 0)) +
                             frame(0, 7, 4, produce("t", [b"d"], 1)) +
                             frame(1, 4, 5, fetch("t", 0, 0)) + frame(3, 1, 6, metadata(["t"]))),
    "parked_fetch_then_more": (frame(1, 4, 1, fetch("t", 99, 500)) + frame(18, 0, 2, b"") +
                               frame(3, 1, 3, metadata([]))),
    "join_leave": (frame(11, 5, 1, join("g", "")) + frame(11, 5, 2, join("g", "m")) +
                   frame(13, 3, 3, leave("g", "m"))),
    "commit_fetch_offsets": (frame(8, 2, 1, offset_commit("g2", "t", 5)) +
                             frame(9, 1, 2, s16("g2") + struct.pack(">i", 1) + s16("t") +
                                   struct.pack(">ii", 1, 0))),
    "cut_short": frame(18, 0, 1, b"") + frame(3, 1, 2, metadata(["t"]))[:9],
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(SEEDS), OUT))
