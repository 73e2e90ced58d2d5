"""A confluent-kafka consume-transform-produce worker (test_eos_loops.py), run as its own process so
the test can kill it with SIGKILL at any point.

    eos_worker.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID SEED

Each batch of input records (at most BATCH) becomes one transaction: begin_transaction, the
transformed records (same key, value b"t:" + value) produced to OUTPUT, the consumer's positions
sent with send_offsets_to_transaction, commit_transaction. An abortable error aborts the
transaction and rewinds the consumer to its committed offsets, a retriable one on commit retries
the commit, as confluent-kafka's EOS example (examples/eos-transactions.py) does. A short random
pause inside each transaction (after the records were flushed) keeps transactions open long
enough that a kill often lands inside one. Prints "committed N total=T" after each commit and
"fatal ..." (exit 3) on an error the client calls fatal; runs until killed.
"""
import os
import random
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

BATCH = 30
MAX_PAUSE_S = 0.08


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def rewind(consumer):
    """Back to the group's committed offsets: the aborted transaction's records are read again."""
    assignment = consumer.assignment()
    if not assignment:
        return
    for tp in consumer.committed(assignment, timeout=30):
        if tp.offset < 0:
            tp.offset = -2   # OFFSET_BEGINNING: nothing committed yet
        consumer.seek(tp)


def commit(producer, consumer):
    """send_offsets_to_transaction + commit_transaction with the example's error handling:
    True when committed, False when the transaction was aborted (the consumer is rewound)."""
    while True:
        try:
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            return True
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                say("abort %s" % err)
                producer.abort_transaction(30)
                rewind(consumer)
                return False
            if err.retriable():
                say("retry %s" % err)
                continue
            raise


def main():
    bootstrap, input_topic, output_topic, group, txn_id, seed = sys.argv[1:7]
    rng = random.Random(int(seed))
    # metadata.recovery.strategy=none: librdkafka 2.16's default (rebootstrap) re-bootstraps when
    # the single broker is down, which decommissions the coordinator handles; after a broker
    # kill -9 and restart the producer then sent AddOffsetsToTxn but never the TxnOffsetCommit,
    # and send_offsets_to_transaction stayed stuck (past its own timeout against gregor,
    # timing out and retrying forever against Apache Kafka 3.9.1 in the same scenario, seed 1).
    # EOS_MRS=rebootstrap brings the default back.
    recovery = os.environ.get("EOS_MRS", "none")
    consumer_conf = {"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "isolation.level": "read_committed",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                     "metadata.recovery.strategy": recovery}
    producer_conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                     "transaction.timeout.ms": 10000, "message.timeout.ms": 10000,
                     "linger.ms": 2, "metadata.recovery.strategy": recovery}
    if os.environ.get("EOS_DEBUG"):   # librdkafka debug contexts, e.g. eos,protocol,cgrp
        consumer = Consumer(dict(consumer_conf, debug=os.environ["EOS_DEBUG"]))
        producer = Producer(dict(producer_conf, debug=os.environ["EOS_DEBUG"]))
    else:
        consumer, producer = Consumer(consumer_conf), Producer(producer_conf)
    producer.init_transactions(60)
    consumer.subscribe([input_topic])
    say("started")
    total = 0
    while True:
        msgs = [m for m in consumer.consume(BATCH, 0.5) if not m.error()]
        if not msgs:
            continue
        producer.begin_transaction()
        try:
            for m in msgs:
                producer.produce(output_topic, key=m.key(), value=b"t:" + m.value())
            producer.flush(30)
            time.sleep(rng.uniform(0, MAX_PAUSE_S))
        except KafkaException as e:
            if not e.args[0].txn_requires_abort():
                raise
            say("abort %s" % e.args[0])
            producer.abort_transaction(30)
            rewind(consumer)
            continue
        if commit(producer, consumer):
            total += len(msgs)
            say("committed %d total=%d" % (len(msgs), total))


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        say("fatal %s" % e.args[0])
        sys.exit(3)
