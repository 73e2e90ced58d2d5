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
    from zk_fixture import ZooKeeperServer, start_brokers, wait_until, zookeeper_available
    assert zookeeper_available(), "Debian's zookeeper package is missing: make test-deps"
    z = ZooKeeperServer()
    z.start()
    brokers = []
    try:
        brokers = start_brokers(tmp_path, z.connect + "/console",
                                overrides={"gregor.http.listener": "127.0.0.1:0",
                                           "replica.lag.time.max.ms": 3000,
                                           # stops at once, the controller stopped or not
                                           "controlled.shutdown.enable": "false"})
        by_id = {i + 1: b for i, b in enumerate(brokers)}
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
        for b in brokers:
            b.stop()
        for b in brokers:
            with open(b.log_path, errors="replace") as f:
                text = f.read()
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert bad not in text, text[text.index(bad):][:3000]
    finally:
        for b in brokers:
            try:
                b.stop()
            except Exception:
                pass
        z.stop()
