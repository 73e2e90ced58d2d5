"""The console on a 3-broker ZooKeeper cluster (issue 20, docs/CONSOLE.md): the overview lists
every live broker with the controller marked; a topic created through a non-controller
broker's console (POST /api/topics, written to ZooKeeper as CreateTopics does, answered once
that broker sees every partition's leader) is seen and produced to by confluent-kafka; a
stopped follower shows as under_replicated on its leader's console (the ISR from the cluster's
view, so on every live broker's); DELETE /api/topics/<t> removes it from every broker's
Metadata. A create still awaiting the cluster when its broker stops is dropped, not answered
after the console is gone (the ASan build checks the rest). Every wait bounded."""
import http.client
import json
import signal
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from test_metrics import http_port

TOPIC = "console-ct"


def call(port, method, path, body=None, timeout=45):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json"} if data is not None else {}
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, json.loads(payload) if payload else None


def topic_of(overview, name):
    return next((t for t in overview["topics"] if t["name"] == name), None)


def test_console_cluster(tmp_path):
    from zk_fixture import wait_until, zk_cluster
    with zk_cluster(tmp_path, "/console",
                    overrides={"replica.lag.time.max.ms": 3000,
                               # stops at once, the controller stopped or not
                               "controlled.shutdown.enable": "false"}) as by_id:
        brokers = list(by_id.values())
        port = {i: http_port(b) for i, b in by_id.items()}

        def md(i):
            return AdminClient({"bootstrap.servers": by_id[i].bootstrap}).list_topics(timeout=10)
        controller = md(1).controller_id
        assert controller in by_id

        # Overview on every broker: all three listed, the controller marked, itself marked.
        for i in by_id:
            st, ov = call(port[i], "GET", "/api/overview")
            assert st == 200, ov
            assert ov["controller_id"] == controller
            assert sorted(b["id"] for b in ov["brokers"]) == [1, 2, 3]
            assert [b["id"] for b in ov["brokers"] if b["controller"]] == [controller]
            assert [b["id"] for b in ov["brokers"] if b["self"]] == [i]
            assert all(b["port"] > 0 for b in ov["brokers"])

        via = next(i for i in by_id if i != controller)
        st, doc = call(port[via], "POST", "/api/topics",
                       {"name": TOPIC, "partitions": 3, "replication_factor": 3,
                        "configs": {"retention.ms": "3600000"}})
        assert st == 201, doc
        assert doc == {"name": TOPIC}
        # Answered once the broker asked sees every partition's leader: its Metadata has them.
        t = md(via).topics[TOPIC]
        assert t.error is None and len(t.partitions) == 3
        assert all(p.leader in by_id and sorted(p.replicas) == [1, 2, 3]
                   for p in t.partitions.values())
        # The configs went with it (ZooKeeper's /config/topics/<t>), read on another broker.
        other = next(i for i in by_id if i not in (via,))
        wait_until(lambda: TOPIC in md(other).topics and
                   len(md(other).topics[TOPIC].partitions) == 3, 20, what="the topic on every broker")
        # Twice: 409, as CreateTopics' TOPIC_ALREADY_EXISTS.
        st, doc = call(port[via], "POST", "/api/topics",
                       {"name": TOPIC, "partitions": 3, "replication_factor": 3})
        assert st == 409 and doc["error"] == "TOPIC_ALREADY_EXISTS", (st, doc)
        # More replicas than brokers: the cluster's check, now.
        st, doc = call(port[via], "POST", "/api/topics",
                       {"name": "too-many", "partitions": 1, "replication_factor": 4})
        assert st == 400 and doc["error"] == "INVALID_REPLICATION_FACTOR", (st, doc)

        p = Producer({"bootstrap.servers": by_id[via].bootstrap, "acks": "all"})
        for k in range(60):
            p.produce(TOPIC, value=b"v%d" % k, partition=k % 3)
        assert p.flush(30) == 0
        wait_until(lambda: all(topic_of(call(port[i], "GET", "/api/overview")[1], TOPIC) is not None
                               for i in by_id), 20, what="the topic in every broker's overview")
        for i in by_id:
            ot = topic_of(call(port[i], "GET", "/api/overview")[1], TOPIC)
            assert ot["partitions"] == 3 and ot["replication_factor"] == 3, ot
            assert ot["under_replicated"] == 0 and ot["offline"] == 0, ot

        # A follower stopped (not killed: its ZooKeeper session outlives replica.lag.time.max.ms)
        # leaves partition 0's ISR: under-replicated on its leader's console, and on every live
        # broker's once the controller has sent the new ISR.
        leader = md(via).topics[TOPIC].partitions[0].leader
        victim = next(i for i in by_id if i not in (leader, controller))
        by_id[victim].proc.send_signal(signal.SIGSTOP)
        try:
            p1 = Producer({"bootstrap.servers": by_id[leader].bootstrap, "acks": "1"})
            p1.produce(TOPIC, value=b"more", partition=0)
            assert p1.flush(30) == 0

            def under(i):
                return topic_of(call(port[i], "GET", "/api/overview")[1], TOPIC)["under_replicated"]
            wait_until(lambda: under(leader) >= 1, 20, what="under-replicated on the leader's console")
            for i in by_id:
                if i != victim:
                    wait_until(lambda: under(i) >= 1, 20,
                               what="under-replicated on broker %d's console" % i)
        finally:
            by_id[victim].proc.send_signal(signal.SIGCONT)
        wait_until(lambda: topic_of(call(port[leader], "GET", "/api/overview")[1],
                                    TOPIC)["under_replicated"] == 0, 60,
                   what="the follower back in the ISR")

        # Deleted through another non-controller broker's console: gone from every Metadata.
        via2 = next(i for i in by_id if i not in (controller, via))
        st, doc = call(port[via2], "DELETE", "/api/topics/" + TOPIC)
        assert st == 200 and doc == {"name": TOPIC}, (st, doc)
        assert TOPIC not in md(via2).topics
        wait_until(lambda: all(TOPIC not in md(i).topics for i in by_id), 30,
                   what="the topic gone from every broker's Metadata")
        wait_until(lambda: all(call(port[i], "GET", "/api/topics/" + TOPIC)[0] == 404 for i in by_id),
                   30, what="the topic gone from every console")
        st, doc = call(port[via], "DELETE", "/api/topics/" + TOPIC)
        assert st == 404, (st, doc)
        for b in brokers:
            assert b.proc.poll() is None, b.log()

        # The controller stopped, a create through another broker is written but never sees its
        # leaders; that broker stops meanwhile: the request is dropped (connection closed), the
        # pending op freed by the cluster's last callback, the exit clean.
        by_id[controller].proc.send_signal(signal.SIGSTOP)
        try:
            got = {}

            def create():
                try:
                    got["answer"] = call(port[via], "POST", "/api/topics",
                                         {"name": "pending-ct", "partitions": 1,
                                          "replication_factor": 3}, timeout=40)
                except (OSError, http.client.HTTPException) as e:
                    got["error"] = e
            th = threading.Thread(target=create)
            th.start()
            time.sleep(1.5)
            assert th.is_alive(), got
            assert by_id[via].stop() == 0, by_id[via].log()
            th.join(40)
            assert not th.is_alive() and "error" in got, got
        finally:
            by_id[controller].proc.send_signal(signal.SIGCONT)


# ---- the message browser and produce across the cluster (a broker that holds no replica) ----

BT = "console-rb"


def records_of(port, path):
    st, doc = call(port, "GET", path)
    assert st == 200, (path, st, doc)
    return doc


def browse_all(port, query, limit=7, pages=200):
    """Every record of a browse, page by page along next_cursor until end."""
    got, cursor = [], None
    for _ in range(pages):
        q = query + "&limit=%d" % limit + ("&cursor=" + cursor if cursor else "")
        doc = records_of(port, "/api/topics/%s/messages?%s" % (BT, q))
        assert doc["unavailable_partitions"] == [], doc
        got += doc["records"]
        cursor = doc["next_cursor"]
        if doc["end"]:
            return got
    raise AssertionError("no end after %d pages" % pages)


def consumed(bootstrap, parts):
    """Every record of parts (read_uncommitted, as the browser) by confluent-kafka."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "rb-check", "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted"})
    out = {}
    try:
        want = {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(BT, p), timeout=10)
            want[p] = (lo, hi)
        c.assign([TopicPartition(BT, p, want[p][0]) for p in parts])
        deadline = time.time() + 30
        while time.time() < deadline and any(
                hi > lo and (not out.get(p) or out[p][-1].offset() < hi - 1)
                for p, (lo, hi) in want.items()):
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out.setdefault(m.partition(), []).append(m)
    finally:
        c.close()
    return [(m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1],
             [(k, v) for k, v in (m.headers() or [])])
            for p in sorted(parts) for m in out.get(p, [])]


def as_tuples(records):
    import base64

    def b(v, enc):
        if v is None:
            return None
        return v.encode() if enc == "utf8" else base64.b64decode(v)
    return [(r["partition"], r["offset"], b(r["key"], r["key_encoding"]),
             b(r["value"], r["value_encoding"]), r["timestamp"],
             [(h["key"], b(h["value"], h["value_encoding"])) for h in r["headers"]])
            for r in records]


def test_console_cluster_browse_produce(tmp_path):
    """Broker 3 holds no replica of the topic (replicas on 1 and 2): its console's browser reads
    every partition from its leader (ListOffsets, Fetch) and shows exactly what confluent-kafka
    consumes (read_uncommitted: an aborted transaction's records too, its markers not), and what
    the leader's own console (the local reads) shows; beginning, end, offset, timestamp, filter,
    paging by cursor. A produce through broker 3 goes to the leader with acks=all (its offset,
    its errors). With a leader SIGSTOPped the page answers within the request timeout, its
    partitions named unavailable."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import NewTopic
    from zk_fixture import wait_until, zk_cluster
    with zk_cluster(tmp_path, "/console-rb",
                    overrides={"controlled.shutdown.enable": "false",
                               "replica.lag.time.max.ms": 3000,
                               "transaction.state.log.replication.factor": 1,
                               "transaction.state.log.min.isr": 1,
                               "offsets.topic.replication.factor": 1}) as by_id:
        brokers = list(by_id.values())
        port = {i: http_port(b) for i, b in by_id.items()}
        admin = AdminClient({"bootstrap.servers": by_id[1].bootstrap})
        fs = admin.create_topics([NewTopic(BT, num_partitions=3, replica_assignment=[[1, 2], [2, 1], [1, 2]],
                                           config={"max.message.bytes": "20000",
                                                   "min.insync.replicas": "2"})])
        fs[BT].result(30)
        wait_until(lambda: all(BT in AdminClient({"bootstrap.servers": b.bootstrap})
                               .list_topics(timeout=10).topics for b in brokers), 30,
                   what="the topic on every broker")
        wait_until(lambda: all(p.leader in (1, 2) for p in AdminClient(
            {"bootstrap.servers": by_id[3].bootstrap}).list_topics(timeout=10).topics[BT]
            .partitions.values()), 30, what="every partition's leader")

        base = int(time.time() * 1000) - 100000
        p = Producer({"bootstrap.servers": by_id[1].bootstrap, "acks": "all"})
        for k in range(40):
            p.produce(BT, key=b"k%d" % k, value=(b"needle-%d" % k) if k % 5 == 0 else b"v%d" % k,
                      partition=k % 3, timestamp=base + k * 1000,
                      headers=[("h", b"x%d" % k)] if k % 2 else None)
        p.produce(BT, key=None, value=bytes(range(256)), partition=1, timestamp=base + 50000)
        assert p.flush(30) == 0
        zp = Producer({"bootstrap.servers": by_id[2].bootstrap, "compression.type": "zstd",
                       "linger.ms": 50})
        for k in range(4):  # one compressed batch, inflated as a local read inflates it
            zp.produce(BT, key=b"z%d" % k, value=b"zstd %d " % k * 20, partition=1,
                       timestamp=base + 55000 + k)
        assert zp.flush(30) == 0
        tp = Producer({"bootstrap.servers": by_id[1].bootstrap, "transactional.id": "rb-tx"})
        tp.init_transactions(30)
        tp.begin_transaction()
        for k in range(3):
            tp.produce(BT, value=b"aborted-%d" % k, partition=2, timestamp=base + 60000 + k)
        tp.flush(30)
        tp.abort_transaction(30)
        p.produce(BT, value=b"after-abort", partition=2, timestamp=base + 70000)
        assert p.flush(30) == 0

        want = consumed(by_id[1].bootstrap, [0, 1, 2])
        assert len(want) == 41 + 4 + 3 + 1
        assert any(v == b"aborted-0" for (_, _, _, v, _, _) in want)
        # All at once on broker 3 (it reads nothing locally).
        doc = records_of(port[3], "/api/topics/%s/messages?partition=all&limit=500" % BT)
        assert doc["end"] is True and doc["unavailable_partitions"] == [], doc
        assert as_tuples(doc["records"]) == want
        assert doc["scanned"] == len(want)
        # Page by page along the cursor: the same, then nothing new.
        assert as_tuples(browse_all(port[3], "partition=all")) == want
        # Brokers 1 and 2 read what they lead here and the rest at the other: the same pages.
        for i in (1, 2):
            assert as_tuples(browse_all(port[i], "partition=all")) == want
            assert as_tuples(records_of(port[i], "/api/topics/%s/messages?limit=500" % BT)["records"]) == want
        # The leader's console (its partitions read locally) shows the same records.
        md = AdminClient({"bootstrap.servers": by_id[3].bootstrap}).list_topics(timeout=10)
        for part, pm in md.topics[BT].partitions.items():
            q = "/api/topics/%s/messages?partition=%d&limit=500" % (BT, part)
            there, here = records_of(port[pm.leader], q), records_of(port[3], q)
            assert here["records"] == there["records"] and here["end"] and there["end"]
            assert here["next_cursor"] == there["next_cursor"]
            other = next(i for i in (1, 2) if i != pm.leader)  # a follower: reads from the leader too
            assert records_of(port[other], q)["records"] == there["records"]
        # from=end: the last limit/3 of each partition, against the watermarks.
        doc = records_of(port[3], "/api/topics/%s/messages?partition=all&from=end&limit=6" % BT)
        from confluent_kafka import Consumer
        c = Consumer({"bootstrap.servers": by_id[2].bootstrap, "group.id": "rb-w"})
        hw = {q: c.get_watermark_offsets(TopicPartition(BT, q), timeout=10)[1] for q in range(3)}
        # from=timestamp: the first offset at or after it, as offsets_for_times.
        ts = base + 20500
        found = c.offsets_for_times([TopicPartition(BT, q, ts) for q in range(3)], timeout=10)
        c.close()
        # (partition 2 ends with the abort's marker and one record: the marker is skipped)
        assert [(r["partition"], r["offset"]) for r in doc["records"]] == \
            [(q, o) for (q, o, _, _, _, _) in want if o >= hw[q] - 2]
        doc = records_of(port[3], "/api/topics/%s/messages?partition=all&from=timestamp&timestamp=%d"
                         "&limit=1" % (BT, ts))
        firsts = {int(x.split("_")[0]): int(x.split("_")[1]) for x in doc["next_cursor"].split(".")}
        assert doc["records"][0]["offset"] == found[0].offset
        assert firsts[1] == found[1].offset and firsts[2] == found[2].offset, (firsts, found)
        # from=offset on one partition; a filter over all.
        doc = records_of(port[3], "/api/topics/%s/messages?partition=1&from=offset&offset=5&limit=2" % BT)
        assert [r["offset"] for r in doc["records"]] == [5, 6]
        doc = records_of(port[3], "/api/topics/%s/messages?filter=needle&limit=500" % BT)
        assert [(r["partition"], r["offset"]) for r in doc["records"]] == \
            [(q, o) for (q, o, _, v, _, _) in want if b"needle" in v]

        # Produce through broker 3: to the leader, acks=all; the offset is the record's.
        st, doc = call(port[3], "POST", "/api/topics/%s/produce" % BT,
                       {"partition": 0, "key": "pk", "value": "via-3", "headers": [{"key": "a", "value": "b"}]})
        assert st == 200 and doc == {"partition": 0, "offset": hw[0]}, (st, doc)
        got = [t for t in consumed(by_id[2].bootstrap, [0]) if t[1] == hw[0]]
        assert [(t[2], t[3], t[5]) for t in got] == [(b"pk", b"via-3", [("a", b"b")])]
        # Without a partition the key picks it as the Java producer does (murmur2).
        jp = Producer({"bootstrap.servers": by_id[1].bootstrap, "partitioner": "murmur2_random"})
        dest = {}
        jp.produce(BT, key=b"route-me", value=b"j", on_delivery=lambda e, m: dest.update(p=m.partition()))
        assert jp.flush(30) == 0
        st, doc = call(port[3], "POST", "/api/topics/%s/produce" % BT, {"key": "route-me", "value": "c"})
        assert st == 200 and doc["partition"] == dest["p"], (st, doc, dest)
        # The leader's max.message.bytes: its MESSAGE_TOO_LARGE, 413.
        st, doc = call(port[3], "POST", "/api/topics/%s/produce" % BT, {"partition": 1, "value": "x" * 30000})
        assert st == 413 and doc["error"] == "MESSAGE_TOO_LARGE", (st, doc)

        # A leader stopped: the page answers within the request timeout (10 s), its partitions
        # named unavailable, the others' records all there; a produce to it 503/504.
        victim = 1
        led = sorted(q for q, pm in md.topics[BT].partitions.items() if pm.leader == victim)
        assert led
        everything = as_tuples(records_of(port[3], "/api/topics/%s/messages?limit=500" % BT)["records"])
        by_id[victim].proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.time()
            doc = records_of(port[3], "/api/topics/%s/messages?limit=500" % BT)
            took = time.time() - t0
            assert took < 20, took
            assert doc["unavailable_partitions"] and set(doc["unavailable_partitions"]) <= set(led), (doc["unavailable_partitions"], led)
            assert doc["end"] is False
            assert as_tuples(doc["records"]) == [r for r in everything if r[0] not in doc["unavailable_partitions"]]
            t0 = time.time()
            st, doc = call(port[3], "POST", "/api/topics/%s/produce" % BT, {"partition": led[0], "value": "z"})
            assert st in (503, 504) and time.time() - t0 < 20, (st, doc)
            # A partition led by the live broker, its other replica stopped: once the ISR is
            # the leader alone, below min.insync.replicas 2, the leader's refusal.
            other = next(q for q, pm in md.topics[BT].partitions.items() if pm.leader != victim)

            def refused():
                st, doc = call(port[3], "POST", "/api/topics/%s/produce" % BT, {"partition": other, "value": "n"})
                assert st in (503, 504), (st, doc)
                return st == 503 and doc["error"] in ("NOT_ENOUGH_REPLICAS",
                                                      "NOT_ENOUGH_REPLICAS_AFTER_APPEND") and doc
            wait_until(refused, 40, what="NOT_ENOUGH_REPLICAS from the leader")
        finally:
            by_id[victim].proc.send_signal(signal.SIGCONT)
        for b in brokers:
            assert b.proc.poll() is None, b.log()


def _on_disk(tmp_path, broker_id, topic, partition):
    """The bytes of the partition's segment files (*.log) in broker broker_id's log dir."""
    d = tmp_path / ("data%d" % broker_id) / ("%s-%d" % (topic, partition))
    if not d.is_dir():
        return None
    return sum(f.stat().st_size for f in d.iterdir() if f.name.endswith(".log"))


def _log_dirs_tool(bootstrap, ids):
    """Kafka's own kafka-log-dirs (LogDirsCommand, the Java Admin client's describeLogDirs):
    {broker: {(topic, partition): size}}."""
    import os
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run(["sh", os.path.join(root, "tests", "kafka_harness", "kafka.sh"), "classpath"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr[-3000:]
    r = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp",
                        p.stdout.strip(), "org.apache.kafka.tools.LogDirsCommand", "--describe",
                        "--bootstrap-server", bootstrap,
                        "--broker-list", ",".join(str(i) for i in ids)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("{")))
    out = {}
    for b in doc["brokers"]:
        sizes = out.setdefault(b["broker"], {})
        for d in b["logDirs"]:
            assert d["error"] is None, d
            for part in d["partitions"]:
                t, _, p = part["partition"].rpartition("-")
                sizes[(t, int(p))] = part["size"]
    return out


def test_console_cluster_topics(tmp_path):
    """The overview and the topic page asked of a broker that holds no replica of the topic
    (and leads none of it) give the cluster's values: offsets as a Kafka client lists them,
    sizes as Kafka's kafka-log-dirs reads them (and as the segment files are on disk), configs
    from ZooKeeper; with a broker SIGSTOPped the pages still answer, within the remote timeout,
    its values null and its id in "unavailable"."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import NewTopic
    from zk_fixture import wait_until, zk_cluster
    with zk_cluster(tmp_path, "/console-rt",
                    overrides={"controlled.shutdown.enable": "false",
                               # the SIGSTOPped broker stays registered throughout
                               "zookeeper.session.timeout.ms": 30000}) as by_id:
        brokers = list(by_id.values())
        port = {i: http_port(b) for i, b in by_id.items()}
        admin = AdminClient({"bootstrap.servers": by_id[2].bootstrap})
        # Broker 1 holds nothing of either topic.
        wide, rep = "rt-wide", "rt-rep"
        fs = admin.create_topics([
            NewTopic(wide, num_partitions=3, replica_assignment=[[2], [3], [2]], config={"retention.ms": "3600000"}),
            NewTopic(rep, num_partitions=2, replica_assignment=[[2, 3], [3, 2]])])
        for f in fs.values():
            f.result(30)
        wait_until(lambda: all(t in AdminClient({"bootstrap.servers": by_id[i].bootstrap})
                               .list_topics(timeout=10).topics for i in by_id for t in (wide, rep)),
                   20, what="both topics on every broker")
        p = Producer({"bootstrap.servers": by_id[2].bootstrap, "acks": "all"})
        counts = {(wide, 0): 10, (wide, 1): 25, (wide, 2): 4, (rep, 0): 7, (rep, 1): 12}
        for (t, part), n in counts.items():
            for k in range(n):
                p.produce(t, value=b"x" * (10 + k), key=b"k%d" % k, partition=part)
        assert p.flush(30) == 0
        # A log start above 0 on partition 1 (led by broker 3).
        from confluent_kafka import TopicPartition as TP
        fut = admin.delete_records([TP(wide, 1, 5)])
        for f in fut.values():
            f.result(30)

        c = Consumer({"bootstrap.servers": by_id[2].bootstrap, "group.id": "rt-probe",
                      "isolation.level": "read_uncommitted"})
        try:
            marks = {(t, part): c.get_watermark_offsets(TopicPartition(t, part), timeout=10)
                     for (t, part) in counts}
        finally:
            c.close()
        assert marks[(wide, 1)] == (5, 25) and marks[(wide, 0)] == (0, 10), marks

        # Every replica's size on disk, stable (the followers of rt-rep caught up), and as
        # Kafka's own LogDirsCommand reads it over DescribeLogDirs from each broker.
        def disk():
            return {(bid, t, part): _on_disk(tmp_path, bid, t, part)
                    for bid in by_id for (t, part) in counts}
        wait_until(lambda: all(disk()[(3, rep, part)] == disk()[(2, rep, part)] for part in (0, 1)),
                   20, what="rt-rep's replicas alike")
        on_disk = disk()
        tool = _log_dirs_tool(by_id[1].bootstrap, sorted(by_id))
        for (bid, t, part), size in on_disk.items():
            assert tool[bid].get((t, part)) == size, (bid, t, part, size, tool[bid])
        assert all(t not in (wide, rep) for (t, _) in tool[1])

        # The topic page on broker 1: every partition with the leader's offsets and sizes.
        st, doc = call(port[1], "GET", "/api/topics/" + wide)
        assert st == 200, doc
        assert doc["unavailable_brokers"] == []
        assert [q["partition"] for q in doc["partitions"]] == [0, 1, 2]
        for q in doc["partitions"]:
            i = q["partition"]
            holder = [2, 3, 2][i]
            assert q["leader"] == holder and q["replicas"] == [holder] and q["isr"] == [holder], q
            assert (q["log_start"], q["high_watermark"]) == marks[(wide, i)], q
            assert q["log_end"] == q["high_watermark"], q
            assert q["size_bytes"] == on_disk[(holder, wide, i)], q
            assert q["replica_sizes"] == [{"broker": holder, "size_bytes": on_disk[(holder, wide, i)]}]
        assert doc["messages_in"] == sum(marks[(wide, i)][1] for i in range(3))
        cfg = {x["name"]: x for x in doc["configs"]}
        assert cfg["retention.ms"]["value"] == "3600000", cfg["retention.ms"]
        assert cfg["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
        assert cfg["cleanup.policy"]["source"] == "DEFAULT_CONFIG"
        assert doc["topic_id"] == doc["topic_id"].lower() and len(doc["topic_id"]) == 32
        st, doc = call(port[1], "GET", "/api/topics/" + rep)
        assert st == 200, doc
        for q in doc["partitions"]:
            i = q["partition"]
            assert sorted(r["broker"] for r in q["replica_sizes"]) == [2, 3]
            for r in q["replica_sizes"]:
                assert r["size_bytes"] == on_disk[(r["broker"], rep, i)], q

        # The overview on every broker (1 holds nothing): sizes summed over every replica on
        # disk, messages_in the sum of the high watermarks.
        for i in by_id:
            st, ov = call(port[i], "GET", "/api/overview")
            assert st == 200, ov
            assert ov["unavailable_brokers"] == []
            for t in (wide, rep):
                ot = topic_of(ov, t)
                assert ot is not None, (i, ov)
                np = 3 if t == wide else 2
                assert ot["partitions"] == np and ot["replication_factor"] == (1 if t == wide else 2)
                assert ot["size_bytes"] == sum(v for (bid, tt, _), v in on_disk.items()
                                               if tt == t and v is not None), (i, ot)
                assert ot["messages_in"] == sum(marks[(t, k)][1] for k in range(np)), (i, ot)
                assert ot["under_replicated"] == 0 and ot["offline"] == 0

        # The page (headless Chromium) on broker 1 shows every partition with the leaders'
        # values, and once broker 3 stops, says so.
        from playwright.sync_api import expect, sync_playwright
        from test_console_web import CHROMIUM, CHROMIUM_ARGS
        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page_errors = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto("http://127.0.0.1:%d/#/topics/%s" % (port[1], wide))
        expect(page.locator("tr[data-partition]")).to_have_count(3, timeout=30000)
        row1 = page.locator('tr[data-partition="1"] td')
        expect(row1.nth(4)).to_have_text("5")   # log start (the leader is broker 3)
        expect(row1.nth(5)).to_have_text("25")  # high watermark
        expect(page.locator("#unavailable")).to_have_count(0)

        # Broker 3 stopped: both pages answer within the remote timeout (10 s) plus slack,
        # broker 3 named unavailable, what only it could tell null, the rest right.
        by_id[3].proc.send_signal(signal.SIGSTOP)
        try:
            got = {}

            def ask(key, path):
                t0 = time.monotonic()
                got[key] = call(port[1], "GET", path, timeout=40) + (time.monotonic() - t0,)
            ths = [threading.Thread(target=ask, args=("ov", "/api/overview")),
                   threading.Thread(target=ask, args=("tp", "/api/topics/" + wide))]
            for th in ths:
                th.start()
            for th in ths:
                th.join(45)
            st, ov, took = got["ov"]
            assert st == 200 and took < 20, (st, took, ov)
            assert 3 in ov["unavailable_brokers"], ov
            ot = topic_of(ov, wide)
            assert ot["size_bytes"] is None and ot["messages_in"] is None, ot
            st, doc, took = got["tp"]
            assert st == 200 and took < 20, (st, took, doc)
            assert 3 in doc["unavailable_brokers"], doc
            q = {x["partition"]: x for x in doc["partitions"]}
            assert q[1]["high_watermark"] is None and q[1]["log_start"] is None, q[1]
            assert q[1]["size_bytes"] is None, q[1]
            for i in (0, 2):
                assert (q[i]["log_start"], q[i]["high_watermark"]) == marks[(wide, i)], q[i]
                assert q[i]["size_bytes"] == on_disk[(2, wide, i)], q[i]
            assert doc["messages_in"] is None
            expect(page.locator("#unavailable")).to_contain_text("broker 3", timeout=30000)
            expect(row1.nth(5)).to_have_text("–")
            expect(page.locator('tr[data-partition="0"] td').nth(5)).to_have_text("10")
            assert page_errors == [], page_errors
        finally:
            by_id[3].proc.send_signal(signal.SIGCONT)
            browser.close()
            pw.stop()
        wait_until(lambda: call(port[1], "GET", "/api/overview")[1]["unavailable_brokers"] == [], 30,
                   what="broker 3 answering again")
        for b in brokers:
            assert b.proc.poll() is None, b.log()
            b.stop()
        for b in brokers:
            with open(b.log_path, errors="replace") as f:
                text = f.read()
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert bad not in text, text[text.index(bad):][:3000]
