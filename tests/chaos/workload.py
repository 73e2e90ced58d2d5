"""The chaos workload: idempotent acks=all producers writing unique values and consumers reading
every partition continuously, each recording what it was told; bounded in records and time.

Producers: confluent_kafka with enable.idempotence=true (so acks=all, retries, at most 5 in
flight), each value `w<producer>-<generation>-<seq>` unique over the run; partition chosen by the
sequence, so every partition is written. A delivery report without error is an ack: (partition,
offset, value) goes into `acked`. A failed delivery is indeterminate (the record may or may not
be in the log) and only counted. A fatal idempotence error replaces the producer (a new
generation, a new producer id).

Consumers: assign() every partition from the beginning (no group: no coordinator in the way),
each record handed out goes into `observed` as (partition, offset, value).
"""
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cluster import CLIENT_LOG, PARTITIONS, TOPIC, log

RATE_PER_PRODUCER = 100  # records/s


class Workload:
    def __init__(self, bootstrap, producers=3, consumers=2, max_records=2_000_000,
                 rate=RATE_PER_PRODUCER):
        self.bootstrap = bootstrap
        self.n_producers = producers
        self.n_consumers = consumers
        self.max_records = max_records
        self.rate = rate
        self.lock = threading.Lock()
        self.acked = []
        self.observed = []
        self.sent = 0
        self.failed = 0
        self.fatal = 0
        self.errors = {}
        self.stop_producing = threading.Event()
        self.stop_consuming = threading.Event()
        self.threads = []

    def start(self):
        for i in range(self.n_producers):
            t = threading.Thread(target=self._produce, args=(i,), daemon=True,
                                 name="producer-%d" % i)
            t.start()
            self.threads.append(t)
        for i in range(self.n_consumers):
            t = threading.Thread(target=self._consume, args=(i,), daemon=True,
                                 name="consumer-%d" % i)
            t.start()
            self.threads.append(t)

    def _producer_config(self, fatal_flag):
        def on_error(err):
            if err.fatal():
                fatal_flag.set()
                with self.lock:
                    self.errors[str(err)] = self.errors.get(str(err), 0) + 1
        return {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
                "linger.ms": 5, "compression.type": "none", "message.timeout.ms": 60000,
                "request.timeout.ms": 10000, "retry.backoff.ms": 200,
                "topic.metadata.refresh.interval.ms": 2000, "error_cb": on_error,
                "logger": CLIENT_LOG}

    def _delivered(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed += 1
                key = err.name()
                self.errors[key] = self.errors.get(key, 0) + 1

    def _produce(self, index):
        generation = 0
        seq = 0
        interval = 1.0 / self.rate
        while not self.stop_producing.is_set():
            fatal = threading.Event()
            p = Producer(self._producer_config(fatal))
            next_at = time.monotonic()
            while not self.stop_producing.is_set() and not fatal.is_set():
                with self.lock:
                    if self.sent >= self.max_records:
                        break
                    self.sent += 1
                value = ("w%d-%d-%d" % (index, generation, seq)).encode()
                try:
                    p.produce(TOPIC, value=value, partition=seq % PARTITIONS,
                              on_delivery=self._delivered)
                    seq += 1
                except BufferError:
                    with self.lock:
                        self.sent -= 1
                    p.poll(0.1)
                    continue
                p.poll(0)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_at = time.monotonic()
            # Drain: every outstanding record gets its delivery report (acked or failed).
            left = p.flush(90)
            if left:
                p.purge()
                p.flush(5)
            if fatal.is_set():
                with self.lock:
                    self.fatal += 1
                log("producer %d generation %d: fatal error, a new producer takes over"
                    % (index, generation))
                generation += 1
                seq = 0
                continue
            break

    def _consume(self, index):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "chaos-reader-%d" % index,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "topic.metadata.refresh.interval.ms": 2000,
                      "enable.partition.eof": False, "logger": CLIENT_LOG})
        c.assign([TopicPartition(TOPIC, p, -2) for p in range(PARTITIONS)])  # -2: beginning
        try:
            while not self.stop_consuming.is_set():
                for m in c.consume(500, 0.5):
                    if m.error() is not None:
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            with self.lock:
                                key = "consumer " + m.error().name()
                                self.errors[key] = self.errors.get(key, 0) + 1
                        continue
                    with self.lock:
                        self.observed.append((m.partition(), m.offset(), m.value()))
        finally:
            c.close()

    def stop(self, consumer_grace=10.0):
        """Stops producing (each producer drains its outstanding records), lets the consumers
        read on for consumer_grace seconds, then stops them."""
        self.stop_producing.set()
        for t in self.threads:
            if t.name.startswith("producer"):
                t.join(120)
        time.sleep(consumer_grace)
        self.stop_consuming.set()
        for t in self.threads:
            t.join(30)

    def summary(self):
        with self.lock:
            return "sent %d, acked %d, failed %d, fatal %d, observed %d" % (
                self.sent, len(self.acked), self.failed, self.fatal, len(self.observed))


def final_read(bootstrap, timeout=120.0):
    """Every partition read from the beginning up to its high watermark (asked of the leader):
    ({partition: {offset: value}}, {partition: high watermark}). Raises when the read does not
    reach a high watermark in time."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-final",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True, "logger": CLIENT_LOG})
    try:
        hws = {}
        for p in range(PARTITIONS):
            _, hws[p] = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)
        out = {p: {} for p in range(PARTITIONS)}
        pending = set(p for p in range(PARTITIONS) if hws[p] > 0)
        c.assign([TopicPartition(TOPIC, p, -2) for p in pending])
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        if m.offset() >= hws[m.partition()]:
                            pending.discard(m.partition())
                    continue
                if m.offset() < hws[m.partition()]:
                    out[m.partition()][m.offset()] = m.value()
                if m.offset() + 1 >= hws[m.partition()]:
                    pending.discard(m.partition())
        if pending:
            raise RuntimeError("final read did not reach the high watermark of partitions %s "
                               "within %.0fs" % (sorted(pending), timeout))
        return out, hws
    finally:
        c.close()
