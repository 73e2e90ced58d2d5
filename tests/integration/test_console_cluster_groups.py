"""The console's groups on a 3-broker ZooKeeper cluster (issue 20, docs/CONSOLE.md "On a
cluster"): every broker's console lists every group of the cluster, whichever broker coordinates
it, with members and lag as the coordinators and the partitions' leaders tell (checked against
what confluent-kafka's admin client reads); a group's page asked of a broker that does not
coordinate it shows its members, assignments and per-partition lag; a reset through such a
broker commits at the coordinator (read back with the admin client); a stopped broker makes the
list answer within the timeout and name it, never hang. Every wait bounded."""
import http.client
import signal
import threading
import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from playwright import sync_api as playwright_api
from playwright.sync_api import expect

from test_console_cluster import call
from test_console_web import CHROMIUM, CHROMIUM_ARGS, Watch
from test_metrics import http_port

TOPIC = "console-groups"
PARTS = 3
PER_PART = 40


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def committed(a, group):
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    return {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions}


def coordinator(a, group):
    return a.describe_consumer_groups([group])[group].result(timeout=20).coordinator.id


def commit_offsets(bootstrap, group, offsets):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                 asynchronous=False)
    finally:
        c.close()


def test_console_groups_across_cluster(tmp_path):
    from zk_fixture import wait_until, zk_cluster
    active = None
    with zk_cluster(tmp_path, "/console-groups",
                    overrides={"offsets.topic.num.partitions": 6,
                               "offsets.topic.replication.factor": 3,
                               "controlled.shutdown.enable": "false"}) as by_id:
        brokers = list(by_id.values())
        port = {i: http_port(b) for i, b in by_id.items()}
        a = admin(by_id[1])
        a.create_topics([NewTopic(TOPIC, PARTS, 3)])[TOPIC].result(timeout=30)
        p = Producer({"bootstrap.servers": by_id[1].bootstrap, "acks": "all"})
        for k in range(PARTS * PER_PART):
            p.produce(TOPIC, value=b"r%d" % k, partition=k % PARTS)
        assert p.flush(30) == 0

        # Groups with known commits, on whichever coordinators their ids hash to.
        groups = {}
        for n in range(8):
            g = "cg-%d" % n
            offs = {q: (n * 3 + q) % PER_PART for q in range(PARTS)}
            commit_offsets(by_id[1].bootstrap, g, offs)
            groups[g] = offs
        coord = {g: coordinator(a, g) for g in groups}
        assert len(set(coord.values())) >= 2, coord  # the test means several coordinators

        # One live group (classic protocol) with a member holding every partition.
        active = Consumer({"bootstrap.servers": by_id[1].bootstrap, "group.id": "cg-live",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False})
        active.subscribe([TOPIC])
        deadline = time.time() + 30
        while not active.assignment() and time.time() < deadline:
            active.poll(0.2)
        assert len(active.assignment()) == PARTS

        # And a KIP-848 consumer group (group.protocol=consumer), described by
        # ConsumerGroupDescribe at its coordinator.
        active848 = Consumer({"bootstrap.servers": by_id[1].bootstrap, "group.id": "cg-848",
                              "group.protocol": "consumer", "auto.offset.reset": "earliest",
                              "enable.auto.commit": False})
        active848.subscribe([TOPIC])
        deadline = time.time() + 30
        while len(active848.assignment()) < PARTS and time.time() < deadline:
            active848.poll(0.2)
        assert len(active848.assignment()) == PARTS

        def expected_lag(offs):
            return sum(PER_PART - o for o in offs.values())

        # Every broker's console lists them all, lag from the leaders' high watermarks.
        for i in by_id:
            st, doc = call(port[i], "GET", "/api/groups")
            assert st == 200, doc
            assert doc["unavailable_brokers"] == [], doc
            got = {x["group_id"]: x for x in doc["groups"]}
            for g, offs in groups.items():
                assert g in got, (i, g, sorted(got))
                assert got[g]["total_lag"] == expected_lag(offs), (i, g, got[g])
                assert got[g]["coordinator"] == coord[g], (i, g, got[g])
                assert got[g]["state"] == "Empty" and got[g]["members"] == 0, got[g]
            assert got["cg-live"]["state"] == "Stable" and got["cg-live"]["members"] == 1, got
            assert got["cg-848"]["type"] == "consumer" and got["cg-848"]["members"] == 1, got
            # The overview counts the same groups, wherever they are coordinated.
            st, ov = call(port[i], "GET", "/api/overview")
            assert st == 200 and ov["groups"] == len(groups) + 2, (i, ov["groups"])

        # The page (headless Debian chromium): every group on one broker's groups page.
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                w = Watch(page)
                page.goto("http://127.0.0.1:%d/#/groups" % port[2])
                expect(page.locator("tr[data-group]")).to_have_count(len(groups) + 2, timeout=15000)
                expect(page.locator("#unavailable")).to_have_count(0)
                w.check("groups page")
            finally:
                browser.close()

        # A group's page from a broker that does not coordinate it.
        g = "cg-5"
        other = next(i for i in by_id if i != coord[g])
        st, doc = call(port[other], "GET", "/api/groups/" + g)
        assert st == 200, doc
        assert doc["coordinator"] == coord[g] and doc["type"] == "classic", doc
        rows = {(r["topic"], r["partition"]): r for r in doc["offsets"]}
        assert set(rows) == {(TOPIC, q) for q in range(PARTS)}, rows
        for q in range(PARTS):
            r = rows[(TOPIC, q)]
            assert r["committed"] == groups[g][q], r
            assert r["high_watermark"] == PER_PART and r["lag"] == PER_PART - groups[g][q], r
        assert doc["total_lag"] == expected_lag(groups[g])
        live_coord = coordinator(a, "cg-live")
        st, doc = call(port[next(i for i in by_id if i != live_coord)], "GET", "/api/groups/cg-live")
        assert st == 200 and doc["state"] == "Stable", doc
        assert len(doc["members"]) == 1, doc
        assigned = doc["members"][0]["assignments"]
        assert assigned == [{"topic": TOPIC, "partitions": list(range(PARTS))}], assigned
        c848 = coordinator(a, "cg-848")
        st, doc = call(port[next(i for i in by_id if i != c848)], "GET", "/api/groups/cg-848")
        assert st == 200 and doc["type"] == "consumer" and doc["state"] == "Stable", doc
        assert doc["coordinator"] == c848, doc
        assert [m["assignments"] for m in doc["members"]] == \
            [[{"topic": TOPIC, "partitions": list(range(PARTS))}]], doc
        active848.close()
        st, doc = call(port[other], "GET", "/api/groups/no-such-group")
        assert st == 404 and doc["error"] == "GROUP_ID_NOT_FOUND", (st, doc)

        # Reset through a non-coordinator: committed at the coordinator.
        st, doc = call(port[other], "POST", "/api/groups/%s/reset" % g,
                       {"topic": None, "to": "earliest"})
        assert st == 200, doc
        assert sorted((r["partition"], r["offset"]) for r in doc["offsets"]) == \
            [(q, 0) for q in range(PARTS)], doc
        assert committed(a, g) == {(TOPIC, q): 0 for q in range(PARTS)}
        st, doc = call(port[other], "POST", "/api/groups/%s/reset" % g,
                       {"topic": TOPIC, "to": "latest"})
        assert st == 200, doc
        assert committed(a, g) == {(TOPIC, q): PER_PART for q in range(PARTS)}
        st, doc = call(port[other], "POST", "/api/groups/cg-live/reset",
                       {"topic": None, "to": "earliest"})
        assert st == 409 and doc["error"] == "NON_EMPTY_GROUP", (st, doc)

        # A broker stopped: the list still answers, in bounded time, naming it.
        victim = next(i for i in by_id if i != 1)
        asker = next(i for i in by_id if i != victim)
        by_id[victim].proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.time()
            st, doc = call(port[asker], "GET", "/api/groups", timeout=40)
            took = time.time() - t0
            assert st == 200, doc
            assert victim in doc["unavailable_brokers"], doc
            assert took < 30, took
            listed = {x["group_id"] for x in doc["groups"]}
            assert {x for x in groups if coord[x] != victim} <= listed, (listed, coord)
        finally:
            by_id[victim].proc.send_signal(signal.SIGCONT)
        # (Its ZooKeeper session may have expired meanwhile: back once registered again.)
        wait_until(lambda: len(call(port[asker], "GET", "/api/overview")[1]["brokers"]) == 3 and
                   set(groups) <= {x["group_id"] for x in call(port[asker], "GET", "/api/groups")[1]
                                   ["groups"]}, 60, what="every broker answering again")
        active.close()
        active = None

        # The asker stops while its gather waits for the stopped broker: the call is dropped
        # (the connection closes, nobody answers a freed request) and the exit is clean.
        by_id[victim].proc.send_signal(signal.SIGSTOP)
        try:
            got = {}

            def ask():
                try:
                    got["answer"] = call(port[asker], "GET", "/api/groups", timeout=40)
                except (OSError, http.client.HTTPException) as e:
                    got["error"] = e
            th = threading.Thread(target=ask)
            th.start()
            time.sleep(1.5)
            assert th.is_alive(), got
            assert by_id[asker].stop() == 0, by_id[asker].log()
            th.join(40)
            assert not th.is_alive() and "error" in got, got
        finally:
            by_id[victim].proc.send_signal(signal.SIGCONT)
