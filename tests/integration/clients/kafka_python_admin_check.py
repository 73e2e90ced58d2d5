"""Runs kafka-python's admin calls that ask for authorized operations against a broker and prints
what they returned as one JSON object (the test compares it with Kafka's answer). Usage:
kafka_python_admin_check.py BOOTSTRAP TOPIC GROUP. A client-side exception exits non-zero."""
import json
import sys

import kafka
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import TopicPartition

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])

producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(10):
    producer.send(topic, value=b"v%d" % i, partition=0)
producer.flush()
producer.close()

# A group with a committed offset, so there is one to describe.
consumer = kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               consumer_timeout_ms=10000)
for n, _ in enumerate(consumer, 1):
    if n == 10:
        break
consumer.commit()
consumer.close()

out = {"version": kafka.__version__}
out["cluster"] = admin.describe_cluster().get("authorized_operations")
out["topics"] = {t.get("name", t.get("topic")): t.get("authorized_operations")  # 2.x: "topic"
                 for t in admin.describe_topics([topic])}
out["all_topics"] = sorted(admin.list_topics())
describe_groups = getattr(admin, "describe_groups", None) or admin.describe_consumer_groups
groups = describe_groups([group])
if isinstance(groups, dict):
    out["groups"] = {g: d.get("authorized_operations") for g, d in groups.items()}
else:  # kafka-python 2.x: a list of GroupInformation tuples
    out["groups"] = {g.group: list(g.authorized_operations or []) for g in groups}
deleted = admin.delete_records({TopicPartition(topic, 0): 4})
out["deleted_low_watermark"] = [v["low_watermark"] for v in deleted.values()]
admin.close()
print(json.dumps(out, sort_keys=True))
