#!/usr/bin/env python3
"""OffsetCommit loop through confluent-kafka (Python over librdkafka), to compare with the C
driver (group_bench commit): same handle settings, synchronous commit of PARTITIONS offsets.

usage: commit_py.py BOOTSTRAP TOPIC PARTITIONS SECONDS   -> one JSON line
"""
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, parts, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = Consumer({"bootstrap.servers": bootstrap, "enable.auto.commit": False,
              "group.id": "bench-commit-py-%d-%d" % (parts, time.time()),
              "partition.assignment.strategy": "range"})
c.commit(offsets=[TopicPartition(topic, p, 0) for p in range(parts)], asynchronous=False)
n, t0 = 0, time.monotonic()
t = t0
while t - t0 < secs:
    c.commit(offsets=[TopicPartition(topic, p, n + 1) for p in range(parts)], asynchronous=False)
    n += 1
    t = time.monotonic()
c.close()
el = t - t0
print(json.dumps({"bench": "offset_commit_python", "partitions": parts, "commits": n,
                  "seconds": round(el, 3), "commits_per_s": round(n / el, 1),
                  "offsets_per_s": round(n * parts / el, 1)}))
