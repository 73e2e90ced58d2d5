"""The console's JSON API (issue 20, docs/CONSOLE.md) against a real broker with real clients:
records produced by confluent-kafka (keys, headers, a JSON value, a binary value, compressed
batches), a consumer group committed at a known offset then stopped, and the API's answers
checked against them — overview, topic, the message browser (beginning, end, offset,
timestamp, all partitions, filter, paging by cursor), groups and lag, reset (409 while a
member is up), from=timestamp and reset to a timestamp against a Kafka client's
offsets_for_times (CreateTime and LogAppendTime topics), produce (read back by a Kafka consumer), create and delete. A SASL broker with
ACLs: login required, wrong passwords refused, a denied topic hidden and 403. Hostile inputs
get 4xx and the broker lives (the ASan build catches the rest)."""
import base64
import http.client
import json
import time
import urllib.parse

import pytest

from conftest import Broker, free_port
from test_sasl import start_sasl_broker


def http_broker(tmp_path, extra=None, name="data"):
    hp = free_port()
    o = {"gregor.http.listener": "127.0.0.1:%d" % hp}
    o.update(extra or {})
    b = Broker(str(tmp_path / name), overrides=o)
    b.http_port = hp
    b.start()
    return b


class Api:
    def __init__(self, port, auth=None):
        self.port = port
        self.cookie = None
        self.auth = auth

    def call(self, method, path, body=None, raw=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        if self.cookie:
            h["Cookie"] = self.cookie
        if self.auth:
            h["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        sc = r.getheader("Set-Cookie")
        if sc and sc.startswith("gregor_session="):
            v = sc.split(";")[0]
            self.cookie = v if v != "gregor_session=" else None
        c.close()
        doc = json.loads(payload) if payload and r.getheader("Content-Type", "").startswith(
            "application/json") else payload
        return r.status, doc

    def get(self, path):
        return self.call("GET", path)

    def ok(self, method, path, body=None):
        st, doc = self.call(method, path, body)
        assert st in (200, 201), (st, doc)
        return doc


@pytest.fixture
def cbroker(tmp_path):
    b = http_broker(tmp_path)
    yield b
    alive = b.alive()
    rc = b.stop()
    assert alive, "broker died during the test:\n" + b.log()
    assert rc == 0, b.log()


def make_topic(b, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result()


def produce_all(b, topic, records, **conf):
    from confluent_kafka import Producer
    c = {"bootstrap.servers": b.bootstrap, "linger.ms": 5}
    c.update(conf)
    p = Producer(c)
    for r in records:
        p.produce(topic, **r)
    assert p.flush(20) == 0


def test_overview_topic_messages_and_paging(cbroker):
    b = cbroker
    api = Api(b.http_port)
    st, who = api.get("/api/whoami")
    assert st == 200 and who["user"] == "User:ANONYMOUS" and who["login_required"] is False
    make_topic(b, "orders", 3)
    t0 = int(time.time() * 1000)
    produce_all(b, "orders", [
        {"key": b"k-json", "value": json.dumps({"a": 1, "b": [1, 2]}).encode(), "partition": 0,
         "headers": [("h1", b"v1"), ("bin", b"\x00\xff")]},
        {"key": None, "value": b"\x00\x01\x02\xfe\xff", "partition": 0},
        {"key": b"plain", "value": "h\u00e9llo text".encode(), "partition": 0},
    ])
    # compressed batches, many records
    produce_all(b, "orders", [{"key": b"z%d" % i, "value": b"zstd-%05d" % i, "partition": 1}
                              for i in range(3000)], **{"compression.type": "zstd"})
    produce_all(b, "orders", [{"value": b"gz-%d" % i, "partition": 2} for i in range(20)],
                **{"compression.type": "gzip"})

    ov = api.ok("GET", "/api/overview")
    assert ov["brokers"][0]["controller"] is True and ov["brokers"][0]["self"] is True
    orders = [t for t in ov["topics"] if t["name"] == "orders"][0]
    assert orders["partitions"] == 3 and orders["size_bytes"] > 0 and orders["under_replicated"] == 0

    tp = api.ok("GET", "/api/topics/orders")
    hws = {p["partition"]: p["high_watermark"] for p in tp["partitions"]}
    assert hws == {0: 3, 1: 3000, 2: 20}
    assert all(p["log_start"] == 0 and p["size_bytes"] > 0 for p in tp["partitions"])
    assert any(c["name"] == "cleanup.policy" and c["value"] == "delete" for c in tp["configs"])

    m = api.ok("GET", "/api/topics/orders/messages?partition=0&from=beginning&limit=10")
    recs = m["records"]
    assert [r["offset"] for r in recs] == [0, 1, 2] and m["end"] is True
    assert recs[0]["key"] == "k-json" and recs[0]["value_format"] == "json"
    assert json.loads(recs[0]["value"]) == {"a": 1, "b": [1, 2]}
    assert recs[0]["headers"][0] == {"key": "h1", "value": "v1", "value_encoding": "utf8"}
    assert base64.b64decode(recs[0]["headers"][1]["value"]) == b"\x00\xff"
    assert recs[1]["key"] is None and recs[1]["value_format"] == "binary"
    assert base64.b64decode(recs[1]["value"]) == b"\x00\x01\x02\xfe\xff"
    assert recs[2]["value"] == "h\u00e9llo text" and recs[2]["value_format"] == "text"
    assert recs[0]["timestamp"] >= t0 - 1000

    # paging a compressed partition by cursor: every record once, in order
    seen, cursor, pages = [], None, 0
    while True:
        q = "partition=1&limit=500" + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")
        page = api.ok("GET", "/api/topics/orders/messages?" + q)
        seen += [r["offset"] for r in page["records"]]
        cursor = page["next_cursor"]
        pages += 1
        if page["end"]:
            break
        assert pages < 20
    assert seen == list(range(3000)) and pages == 6
    assert api.ok("GET", "/api/topics/orders/messages?partition=1&limit=5&cursor="
                  + urllib.parse.quote(cursor))["records"] == []

    end = api.ok("GET", "/api/topics/orders/messages?partition=1&from=end&limit=5")
    assert [r["offset"] for r in end["records"]] == [2995, 2996, 2997, 2998, 2999]
    assert end["records"][-1]["value"] == "zstd-02999"
    off = api.ok("GET", "/api/topics/orders/messages?partition=1&from=offset&offset=1234&limit=2")
    assert [r["value"] for r in off["records"]] == ["zstd-01234", "zstd-01235"]
    ts = api.ok("GET", "/api/topics/orders/messages?partition=0&from=timestamp&timestamp=%d&limit=5"
                % (t0 - 60000))
    assert ts["records"][0]["offset"] == 0
    future = api.ok("GET", "/api/topics/orders/messages?partition=0&from=timestamp&timestamp=%d"
                    % (t0 + 3600 * 1000))
    assert future["records"] == [] and future["end"] is True

    allp = api.ok("GET", "/api/topics/orders/messages?partition=all&limit=500")
    parts = {r["partition"] for r in allp["records"]}
    assert len(allp["records"]) == 500 and 0 in parts

    flt = api.ok("GET", "/api/topics/orders/messages?partition=1&limit=10&filter=zstd-0250")
    assert [r["value"] for r in flt["records"]] == ["zstd-%05d" % i for i in range(2500, 2510)]
    assert flt["scanned"] == 2510
    # a filter that matches nothing stops at the scan bound and says where
    none = api.ok("GET", "/api/topics/orders/messages?partition=all&limit=10&filter=nomatch")
    assert none["records"] == [] and none["scanned"] == 3023 and none["end"] is True


def test_hostile_inputs(cbroker):
    api = Api(cbroker.http_port)
    make_topic(cbroker, "t", 1)
    for q in ["limit=100000", "limit=0", "limit=-1", "limit=abc", "cursor=garbage",
              "cursor=0_", "cursor=-1_5", "cursor=0_-5", "from=sideways",
              "from=offset", "from=offset&offset=x", "from=timestamp&timestamp=-4",
              "from=timestamp&timestamp=99999999999999999999", "from=timestamp&timestamp=1e3",
              "from=offset&offset=99999999999999999999",
              "partition=9", "partition=-1", "partition=x", "filter=" + "a" * 400]:
        st, doc = api.get("/api/topics/t/messages?" + q)
        assert 400 <= st < 500, (q, st, doc)
        assert "error" in doc
    assert api.get("/api/topics/nope")[0] == 404
    assert api.get("/api/topics/nope/messages")[0] == 404
    assert api.get("/api/groups/nope")[0] == 404
    assert api.get("/api/nothing")[0] == 404
    for raw in [b"", b"{", b"[1,2]", b"nul", b"{\"name\": 5}", b"\xff\xfe", b"{\"a\":" * 5000,
                b"{\"name\": \"x\", \"partitions\": 99999999999999999999}"]:
        st, doc = api.call("POST", "/api/topics", raw=raw)
        assert 400 <= st < 500, (raw[:40], st, doc)
    st, _ = api.call("POST", "/api/topics", raw=b"{}", headers={"Content-Type": "text/plain"})
    assert st == 415
    for body in [{"key": 5}, {"value": []}, {"partition": -3}, {"partition": 7},
                 {"headers": [{"value": "x"}]}, {"headers": "x"}]:
        st, doc = api.call("POST", "/api/topics/t/produce", body)
        assert 400 <= st < 500, (body, st, doc)
    st, doc = api.call("POST", "/api/groups/g/reset", {"to": "yesterday"})
    assert st == 400
    assert api.ok("GET", "/api/overview")["topics"]


def test_groups_lag_reset_produce_create_delete(cbroker):
    from confluent_kafka import Consumer, TopicPartition
    b = cbroker
    api = Api(b.http_port)
    make_topic(b, "events", 2)
    produce_all(b, "events", [{"value": b"e%d" % i, "partition": i % 2} for i in range(100)])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "readers",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe(["events"])
    deadline = time.time() + 30
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    c.commit(offsets=[TopicPartition("events", 0, 10), TopicPartition("events", 1, 20)],
             asynchronous=False)
    g = api.ok("GET", "/api/groups/readers")
    assert g["state"] == "Stable" and len(g["members"]) == 1
    assigned = sorted(p for a in g["members"][0]["assignments"] for p in a["partitions"])
    assert assigned == [0, 1]
    offs = {(o["topic"], o["partition"]): (o["committed"], o["lag"]) for o in g["offsets"]}
    assert offs == {("events", 0): (10, 40), ("events", 1): (20, 30)} and g["total_lag"] == 70
    st, doc = api.call("POST", "/api/groups/readers/reset", {"topic": "events", "to": "earliest"})
    assert st == 409 and doc["error"] == "NON_EMPTY_GROUP"
    c.close()
    gl = api.ok("GET", "/api/groups")["groups"]
    mine = [x for x in gl if x["group_id"] == "readers"][0]
    assert mine["state"] == "Empty" and mine["members"] == 0 and mine["total_lag"] == 70

    r = api.ok("POST", "/api/groups/readers/reset", {"topic": "events", "to": "latest"})
    assert sorted((o["partition"], o["offset"]) for o in r["offsets"]) == [(0, 50), (1, 50)]
    assert api.ok("GET", "/api/groups/readers")["total_lag"] == 0
    r = api.ok("POST", "/api/groups/readers/reset", {"topic": None, "to": "earliest"})
    assert sorted((o["partition"], o["offset"]) for o in r["offsets"]) == [(0, 0), (1, 0)]
    # the Kafka client sees the reset
    c2 = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "readers"})
    got = c2.committed([TopicPartition("events", 0), TopicPartition("events", 1)], timeout=10)
    assert [tp.offset for tp in got] == [0, 0]
    c2.close()

    # produce through the API, read with a Kafka consumer
    p = api.ok("POST", "/api/topics/events/produce",
               {"partition": 1, "key": "ck", "value": "{\"x\": 1}",
                "headers": [{"key": "src", "value": "console"}, {"key": "n", "value": None}]})
    assert p == {"partition": 1, "offset": 50}
    c3 = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "check",
                   "auto.offset.reset": "earliest"})
    c3.assign([TopicPartition("events", 1, 50)])
    m = None
    deadline = time.time() + 20
    while m is None and time.time() < deadline:
        m = c3.poll(0.5)
    c3.close()
    assert m is not None and not m.error()
    assert (m.key(), m.value(), m.offset()) == (b"ck", b"{\"x\": 1}", 50)
    assert m.headers() == [("src", b"console"), ("n", None)]
    keyed = api.ok("POST", "/api/topics/events/produce", {"key": "same", "value": "v"})
    again = api.ok("POST", "/api/topics/events/produce", {"key": "same", "value": "v"})
    assert keyed["partition"] == again["partition"]

    # create and delete
    assert api.ok("POST", "/api/topics", {"name": "made", "partitions": 4,
                                          "configs": {"retention.ms": "3600000"}}) == {"name": "made"}
    st, doc = api.call("POST", "/api/topics", {"name": "made", "partitions": 1})
    assert st == 409 and doc["error"] == "TOPIC_ALREADY_EXISTS"
    st, doc = api.call("POST", "/api/topics", {"name": "bad", "configs": {"retention.ms": "x"}})
    assert st == 400 and doc["error"] == "INVALID_CONFIG"
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert len(md.topics["made"].partitions) == 4
    t = api.ok("GET", "/api/topics/made")
    assert [c for c in t["configs"] if c["name"] == "retention.ms"][0] == {
        "name": "retention.ms", "value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG",
        "sensitive": False}
    assert api.ok("DELETE", "/api/topics/made") == {"name": "made"}
    assert api.get("/api/topics/made")[0] == 404
    deadline = time.time() + 10
    while "made" in AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics:
        assert time.time() < deadline
        time.sleep(0.2)


@pytest.fixture
def sasl_broker(tmp_path):
    hp = free_port()
    b = start_sasl_broker(tmp_path, users=(("alice", "alice-secret"), ("carol", "carol-pw")),
                          extra={"gregor.http.listener": "127.0.0.1:%d" % hp,
                                 "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                                 "allow.everyone.if.no.acl.found": "true",
                                 "super.users": "User:alice"})
    b.http_port = hp
    yield b
    alive = b.alive()
    rc = b.stop()
    assert alive, "broker died during the test:\n" + b.log()
    assert rc == 0, b.log()


def test_login_and_acls(sasl_broker):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                       NewTopic, ResourcePatternType, ResourceType)
    b = sasl_broker
    a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % b.sasl_port,
                     "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
                     "sasl.username": "alice", "sasl.password": "alice-secret"})
    for f in a.create_topics([NewTopic("public", 1, 1), NewTopic("secret", 1, 1)]).values():
        f.result()
    deny = AclBinding(ResourceType.TOPIC, "secret", ResourcePatternType.LITERAL, "User:bob", "*",
                      AclOperation.ALL, AclPermissionType.DENY)
    deny_c = AclBinding(ResourceType.TOPIC, "secret", ResourcePatternType.LITERAL, "User:carol",
                        "*", AclOperation.ALL, AclPermissionType.DENY)
    for f in a.create_acls([deny, deny_c], request_timeout=10).values():
        f.result()

    anon = Api(b.http_port)
    st, who = anon.get("/api/whoami")
    assert st == 200 and who["user"] is None and who["login_required"] is True
    for path in ["/api/overview", "/api/topics/public", "/api/groups"]:
        st, doc = anon.get(path)
        assert st == 401, (path, st, doc)
    st, doc = anon.call("POST", "/api/login", {"username": "alice", "password": "wrong"})
    assert st == 401 and anon.cookie is None
    st, doc = anon.call("POST", "/api/login", {"username": "nobody", "password": "x"})
    assert st == 401

    # bob: a PLAIN JAAS user; carol: SCRAM credentials only
    bob = Api(b.http_port)
    assert bob.ok("POST", "/api/login", {"username": "bob", "password": "bob-secret"}) == {
        "user": "User:bob"}
    assert bob.cookie and len(bob.cookie.split("=")[1]) == 32
    assert bob.ok("GET", "/api/whoami")["user"] == "User:bob"
    names = {t["name"] for t in bob.ok("GET", "/api/overview")["topics"]}
    assert "public" in names and "secret" not in names
    assert bob.get("/api/topics/secret")[0] == 403
    assert bob.get("/api/topics/secret/messages")[0] == 403
    assert bob.call("POST", "/api/topics/secret/produce", {"value": "x"})[0] == 403
    assert bob.call("DELETE", "/api/topics/secret")[0] == 403
    assert bob.ok("POST", "/api/topics/public/produce", {"value": "hi"})["offset"] == 0
    assert bob.ok("GET", "/api/topics/public/messages")["records"][0]["value"] == "hi"
    bob.ok("POST", "/api/logout", {})
    assert bob.cookie is None
    assert bob.get("/api/overview")[0] == 401

    carol = Api(b.http_port)
    assert carol.ok("POST", "/api/login", {"username": "carol", "password": "carol-pw"})["user"] == \
        "User:carol"
    assert carol.get("/api/topics/secret")[0] == 403
    # HTTP Basic, without a session
    assert Api(b.http_port, auth="carol:carol-pw").get("/api/topics/public")[0] == 200
    assert Api(b.http_port, auth="carol:nope").get("/api/topics/public")[0] == 401
    assert Api(b.http_port, auth="alice:alice-secret").get("/api/topics/secret")[0] == 200
    st, doc = Api(b.http_port).call("GET", "/api/overview", headers={
        "Authorization": "Basic !!!notbase64", "Cookie": "gregor_session=" + "0" * 32})
    assert st == 401


def test_paging_stays_fast_on_a_million_records(cbroker):
    """A page costs the same wherever it starts: partition_read seeks by the offset index."""
    b = cbroker
    api = Api(b.http_port)
    make_topic(b, "big", 1)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                  "compression.type": "lz4", "queue.buffering.max.messages": 2000000})
    n = 1000000
    for i in range(n):
        p.produce("big", value=b"r%07d" % i, partition=0)
        if i % 100000 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    hw = api.ok("GET", "/api/topics/big")["partitions"][0]["high_watermark"]
    assert hw == n
    for q, first in [("from=end&limit=500", n - 500), ("from=offset&offset=654321&limit=500", 654321),
                     ("from=beginning&limit=500", 0), ("cursor=0_999000&limit=500", 999000)]:
        t = time.time()
        page = api.ok("GET", "/api/topics/big/messages?partition=0&" + q)
        took = time.time() - t
        assert page["records"][0]["offset"] == first and len(page["records"]) == 500
        assert page["records"][0]["value"] == "r%07d" % first
        assert took < 2.0, (q, took)


def test_kip848_group(cbroker):
    from confluent_kafka import Consumer, TopicPartition
    b = cbroker
    api = Api(b.http_port)
    make_topic(b, "k", 2)
    produce_all(b, "k", [{"value": b"x", "partition": i % 2} for i in range(10)])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "new-style",
                  "group.protocol": "consumer", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe(["k"])
    deadline = time.time() + 30
    while len(c.assignment()) < 2 and time.time() < deadline:
        c.poll(0.2)
    c.commit(offsets=[TopicPartition("k", 0, 2), TopicPartition("k", 1, 5)], asynchronous=False)
    g = api.ok("GET", "/api/groups/new-style")
    assert g["type"] == "consumer" and g["state"] == "Stable" and len(g["members"]) == 1
    assert sorted(p for a in g["members"][0]["assignments"] for p in a["partitions"]) == [0, 1]
    assert g["members"][0]["assignments"][0]["topic"] == "k"
    assert g["total_lag"] == 3
    st, doc = api.call("POST", "/api/groups/new-style/reset", {"to": "earliest"})
    assert st == 409
    c.close()
    deadline = time.time() + 30
    while api.ok("GET", "/api/groups/new-style")["members"] and time.time() < deadline:
        time.sleep(0.2)
    r = api.ok("POST", "/api/groups/new-style/reset", {"to": "earliest"})
    assert sorted((o["partition"], o["offset"]) for o in r["offsets"]) == [(0, 0), (1, 0)]


def kafka_offsets_for_times(b, topic, partitions, ts):
    """{partition: offset} as a Kafka client's ListOffsets by timestamp answers (-1: none)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ts-probe"})
    try:
        got = c.offsets_for_times([TopicPartition(topic, p, ts) for p in partitions], timeout=15)
        assert all(tp.error is None for tp in got), got
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def produce_timed(b, topic):
    """Records with explicit CreateTime timestamps in 2 partitions: partition 0 at t0 + 1000 i, one
    batch each; partition 1 at t0 + 1000 i + 700 in one batch, and one record out of order (an
    older timestamp after newer ones). Returns t0 (a whole second, a minute ago)."""
    from confluent_kafka import Producer
    t0 = (int(time.time()) - 60) * 1000
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
    for i in range(8):
        p.produce(topic, value=b"p0-%d" % i, partition=0, timestamp=t0 + 1000 * i)
        assert p.flush(20) == 0
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 200})
    for i in range(6):
        p.produce(topic, value=b"p1-%d" % i, partition=1, timestamp=t0 + 1000 * i + 700)
    p.produce(topic, value=b"p1-old", partition=1, timestamp=t0 + 100)
    p.produce(topic, value=b"p1-last", partition=1, timestamp=t0 + 9000)
    assert p.flush(20) == 0
    return t0


def test_browse_from_timestamp(cbroker):
    """from=timestamp starts each partition at ListOffsets' answer for the timestamp, as a Kafka
    client's offsets_for_times reads it; past the last record: nothing, end=true."""
    b = cbroker
    api = Api(b.http_port)
    make_topic(b, "timed", 2)
    t0 = produce_timed(b, "timed")
    msgs = "/api/topics/timed/messages?from=timestamp&limit=100&timestamp=%d&partition=%s"

    for ts in [t0 - 5000, t0, t0 + 2500, t0 + 3000, t0 + 5800, t0 + 7000]:
        want = kafka_offsets_for_times(b, "timed", [0, 1], ts)
        for p in (0, 1):
            page = api.ok("GET", msgs % (ts, p))
            if want[p] < 0:
                assert page["records"] == [] and page["end"] is True, (ts, p, page)
                continue
            first = page["records"][0]
            assert (first["partition"], first["offset"]) == (p, want[p]), (ts, p, want, first)
            assert first["timestamp"] >= ts and first["timestamp_type"] == "CreateTime"
            assert [r["offset"] for r in page["records"]] == list(range(want[p], 8))
        allp = api.ok("GET", msgs % (ts, "all"))
        firsts = {}
        for r in allp["records"]:
            firsts.setdefault(r["partition"], r["offset"])
        assert firsts == {p: o for p, o in want.items() if o >= 0}, (ts, want, firsts)
        assert allp["end"] is True

    # the case of the brief, spelled out: t0+2500 is p0's offset 3 (t0+3000), p1's offset 2 (t0+2700)
    assert kafka_offsets_for_times(b, "timed", [0, 1], t0 + 2500) == {0: 3, 1: 2}
    page = api.ok("GET", msgs % (t0 + 2500, 0))
    assert (page["records"][0]["value"], page["records"][0]["timestamp"]) == ("p0-3", t0 + 3000)
    page = api.ok("GET", msgs % (t0 + 2500, 1))
    assert (page["records"][0]["value"], page["records"][0]["timestamp"]) == ("p1-2", t0 + 2700)

    # past the last record of every partition: no records, the end, a cursor at the high watermarks
    assert kafka_offsets_for_times(b, "timed", [0, 1], t0 + 9001) == {0: -1, 1: -1}
    for p in ("0", "1", "all"):
        page = api.ok("GET", msgs % (t0 + 9001, p))
        assert page["records"] == [] and page["end"] is True, (p, page)
    cur = api.ok("GET", msgs % (t0 + 9001, "all"))["next_cursor"]
    assert sorted(cur.split(".")) == ["0_8", "1_8"]

    # records deleted below offset 2 of partition 0: a timestamp before them finds the log start
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.delete_records([TopicPartition("timed", 0, 2)], request_timeout=10).values():
        assert f.result().low_watermark == 2
    for ts in [t0 - 5000, t0 + 1000, t0 + 2500]:
        want = kafka_offsets_for_times(b, "timed", [0], ts)
        assert want == {0: max(2, (ts - t0 + 999) // 1000)}, (ts, want)
        assert api.ok("GET", msgs % (ts, 0))["records"][0]["offset"] == want[0]


def test_browse_from_timestamp_log_append_time(cbroker):
    """A LogAppendTime topic: the broker's append time replaces the producer's, and from=timestamp
    finds records by it (as offsets_for_times does)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    b = cbroker
    api = Api(b.http_port)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic("appended", 1, 1,
                                       config={"message.timestamp.type": "LogAppendTime"})]).values():
        f.result()
    long_ago = 1000000000000
    produce_all(b, "appended", [{"value": b"a%d" % i, "partition": 0, "timestamp": long_ago}
                                for i in range(3)])
    time.sleep(1.2)
    produce_all(b, "appended", [{"value": b"b%d" % i, "partition": 0, "timestamp": long_ago}
                                for i in range(3)])
    recs = api.ok("GET", "/api/topics/appended/messages?partition=0&limit=10")["records"]
    assert [r["value"] for r in recs] == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert all(r["timestamp_type"] == "LogAppendTime" and r["timestamp"] > long_ago for r in recs)
    ts = recs[2]["timestamp"] + 1
    assert recs[3]["timestamp"] >= ts
    want = kafka_offsets_for_times(b, "appended", [0], ts)
    assert want == {0: 3}
    page = api.ok("GET", "/api/topics/appended/messages?partition=0&from=timestamp&timestamp=%d" % ts)
    assert [r["value"] for r in page["records"]] == ["b0", "b1", "b2"]
    # the producer's own timestamp no longer finds anything before the append times
    page = api.ok("GET", "/api/topics/appended/messages?partition=0&from=timestamp&timestamp=%d"
                  % (long_ago + 1))
    assert page["records"][0]["offset"] == 0


def test_reset_to_timestamp(cbroker):
    """Reset of an empty group to a timestamp commits, for each partition, what offsets_for_times
    answers (the high watermark where no record is as late), as a Kafka consumer's committed()
    then reads."""
    from confluent_kafka import Consumer, TopicPartition
    b = cbroker
    api = Api(b.http_port)
    make_topic(b, "timed", 2)
    t0 = produce_timed(b, "timed")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "rewinders",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("timed", 0), TopicPartition("timed", 1)])
    c.commit(offsets=[TopicPartition("timed", 0, 8), TopicPartition("timed", 1, 8)],
             asynchronous=False)
    c.close()

    def committed():
        k = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "rewinders"})
        try:
            got = k.committed([TopicPartition("timed", 0), TopicPartition("timed", 1)], timeout=15)
            return {tp.partition: tp.offset for tp in got}
        finally:
            k.close()

    assert committed() == {0: 8, 1: 8}
    for ts, topic in [(t0 + 2500, "timed"), (t0 + 5800, None), (t0 - 1000, "timed")]:
        want = kafka_offsets_for_times(b, "timed", [0, 1], ts)
        r = api.ok("POST", "/api/groups/rewinders/reset", {"topic": topic, "to": "timestamp",
                                                           "timestamp": ts})
        got = {o["partition"]: o["offset"] for o in r["offsets"]}
        assert all("error" not in o for o in r["offsets"]), r
        assert got == want, (ts, got, want)
        assert committed() == want
    assert kafka_offsets_for_times(b, "timed", [0, 1], t0 + 2500) == {0: 3, 1: 2}
    # past every record: the high watermark (kafka-consumer-groups.sh --to-datetime does the same)
    r = api.ok("POST", "/api/groups/rewinders/reset", {"topic": "timed", "to": "timestamp",
                                                       "timestamp": t0 + 60000})
    assert sorted((o["partition"], o["offset"]) for o in r["offsets"]) == [(0, 8), (1, 8)]
    assert committed() == {0: 8, 1: 8}
    st, doc = api.call("POST", "/api/groups/rewinders/reset", {"to": "timestamp", "timestamp": -5})
    assert 400 <= st < 500, (st, doc)
