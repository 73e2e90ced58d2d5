"""Helpers shared by the consumer-group integration tests: topics, keyed produce with kcat,
and bounded waiting."""
import subprocess
import time
import uuid

from kafka.admin import KafkaAdminClient, NewTopic

KCAT = "kcat"


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def create_topic(broker, name, partitions):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce(broker, topic, values):
    """Produces values (str) keyed by themselves, so they spread over the partitions."""
    data = "".join("%s:%s\n" % (v, v) for v in values).encode()
    subprocess.run([KCAT, "-P", "-b", broker.bootstrap, "-t", topic, "-K:"], input=data,
                   check=True, timeout=30)


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
