"""Drives a broker with whichever kafka-python is importable: produce (3.x: idempotent by
default), consume with a group and commit, then a second consumer resumes after the commit.
Usage: kafka_python_check.py BOOTSTRAP TOPIC. Exits non-zero with a message on a mismatch."""
import sys

import kafka
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
admin.close()

producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(300):
    producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % 3,
                  headers=[("i", b"%d" % i)])
producer.flush()
producer.close()


def consume(n):
    c = kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="kp-check",
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            consumer_timeout_ms=10000)
    got = []
    for m in c:
        got.append(m)
        if len(got) == n:
            break
    c.commit()
    c.close()
    return got


first = consume(150)
rest = consume(150)
seen = sorted(int(m.value[1:]) for m in first + rest)
if seen != list(range(300)):
    sys.exit("records read once each across the two consumers: expected 0..299, got %d records" % len(seen))
for m in first + rest:
    i = int(m.value[1:])
    if m.key != b"k%d" % i or m.partition != i % 3 or m.headers != [("i", b"%d" % i)]:
        sys.exit("record %d came back wrong: %r" % (i, m))
print("kafka-python %s ok: 300 records, group resumed after commit" % kafka.__version__)
