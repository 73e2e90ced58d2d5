"""Issue 19's rate quotas: controller_mutation_rate (KIP-599) on CreateTopics, CreatePartitions
and DeleteTopics on the raw wire: a token bucket of controller.quota.window.num x size x quota
partitions; the strict versions (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+)
refuse a topic with THROTTLING_QUOTA_EXCEEDED while the bucket is in debt, older versions are
served and throttled. connection_creation_rate (KIP-612): an ip entity's quota closes an
address's connections over it unserved after the throttle time, the listener's
max.connection.creation.rate holds its accepting back; the broker serves the others meanwhile.
`gregor configs --entity-type ips` against Kafka's own kafka-configs.sh."""
import socket
import struct
import time
import uuid

import pytest

from kafka_wire import call, cstr, frame, read_frame, uvarint
from test_quotas import gregor_configs, kafka_classpath, kafka_configs, set_quota  # noqa: F401 (a fixture)
from zk_fixture import wait_until, zk, zookeeper_available  # noqa: F401 (zk)

THROTTLING_QUOTA_EXCEEDED = 89
# A burst of 1 window x 1 s x the quota: a quota of 2 lets 2 partitions through at once.
MUTATION = {"controller.quota.window.num": "1", "controller.quota.window.size.seconds": "1"}


@pytest.fixture
def mbroker(broker_factory):
    return broker_factory(**MUTATION).start()


def create_topics(bootstrap, version, topics, client_id=b"test", validate_only=False):
    """CreateTopics v5+ (flexible): topics [(name, partitions)] -> (throttle, {name: (code, msg)})."""
    assert version >= 5
    body = uvarint(len(topics) + 1)
    for name, parts in topics:
        body += cstr(name) + struct.pack(">ih", parts, 1) + uvarint(1) + uvarint(1) + uvarint(0)
    body += struct.pack(">i?", 30000, validate_only) + uvarint(0)
    r = call(bootstrap, 19, version, body, client_id=client_id)
    throttle = r.take(">i")
    out = {}
    for _ in range(r.uvarint() - 1):
        name = r.cstr()
        if version >= 7:
            r.raw(16)
        code = r.take(">h")
        msg = r.cstr()
        r.take(">ih")
        for _ in range(r.uvarint() - 1):  # configs (none asked), or null
            r.cstr(), r.cstr(), r.take(">?bb?"), r.tags()
        r.tags()
        out[name] = (code, msg)
    return throttle, out


def create_partitions(bootstrap, version, topic, count, client_id=b"test"):
    """CreatePartitions v2+ (flexible): -> (throttle, code, msg)."""
    body = uvarint(2) + cstr(topic) + struct.pack(">i", count) + uvarint(0) + uvarint(0)
    body += struct.pack(">i?", 30000, False) + uvarint(0)
    r = call(bootstrap, 37, version, body, client_id=client_id)
    throttle = r.take(">i")
    assert r.uvarint() == 2
    assert r.cstr() == topic
    code = r.take(">h")
    return throttle, code, r.cstr()


def delete_topics(bootstrap, version, names, client_id=b"test"):
    """DeleteTopics v4-5 (flexible, by name): -> (throttle, {name: (code, msg)})."""
    body = uvarint(len(names) + 1) + b"".join(cstr(n) for n in names)
    body += struct.pack(">i", 30000) + uvarint(0)
    r = call(bootstrap, 20, version, body, client_id=client_id)
    throttle = r.take(">i")
    out = {}
    for _ in range(r.uvarint() - 1):
        name = r.cstr()
        code = r.take(">h")
        msg = r.cstr() if version >= 5 else None
        r.tags()
        out[name] = (code, msg)
    return throttle, out


def test_create_topics_strict_refuses_over_the_quota(mbroker):
    set_quota(mbroker.bootstrap, [("client-id", "mut")], "controller_mutation_rate", 2)
    a, b = "m-" + uuid.uuid4().hex[:8], "m-" + uuid.uuid4().hex[:8]
    # The bucket holds 2: the first 10 partitions pass (strict checks before it records) and
    # leave it at -8, about 4 s of debt at 2 a second.
    t, res = create_topics(mbroker.bootstrap, 7, [(a, 10)], client_id=b"mut")
    assert res == {a: (0, None)} and t == 0, (t, res)
    t, res = create_topics(mbroker.bootstrap, 7, [(b, 10)], client_id=b"mut")
    assert res[b] == (THROTTLING_QUOTA_EXCEEDED, "The throttling quota has been exceeded."), res
    assert 3000 <= t <= 4100, t
    # Refused, so not made: validate_only and another client are not held by the quota.
    t, res = create_topics(mbroker.bootstrap, 7, [(b, 10)], client_id=b"other")
    assert res == {b: (0, None)} and t == 0, (t, res)


def test_create_topics_old_version_is_served_and_throttled(mbroker):
    set_quota(mbroker.bootstrap, [("client-id", "mut")], "controller_mutation_rate", 2)
    a, b = "m-" + uuid.uuid4().hex[:8], "m-" + uuid.uuid4().hex[:8]
    # v5 is permissive: recorded, then throttled by the debt it left (8 / 2 = 4 s).
    t, res = create_topics(mbroker.bootstrap, 5, [(a, 10)], client_id=b"mut")
    assert res == {a: (0, None)} and 3500 <= t <= 4100, (t, res)
    t, res = create_topics(mbroker.bootstrap, 5, [(b, 10)], client_id=b"mut")
    assert res == {b: (0, None)} and 7500 <= t <= 9100, (t, res)
    # Both topics exist: a strict request from the same client is now refused for its topic.
    t, res = create_topics(mbroker.bootstrap, 6, [("m-" + uuid.uuid4().hex[:8], 1)],
                           client_id=b"mut")
    assert list(res.values())[0][0] == THROTTLING_QUOTA_EXCEEDED and t > 7000, (t, res)


def test_validate_only_records_nothing(mbroker):
    set_quota(mbroker.bootstrap, [("client-id", "mut")], "controller_mutation_rate", 2)
    name = "m-" + uuid.uuid4().hex[:8]
    for _ in range(3):
        t, res = create_topics(mbroker.bootstrap, 7, [(name, 10)], client_id=b"mut",
                               validate_only=True)
        assert res == {name: (0, None)} and t == 0, (t, res)


def test_create_partitions_and_delete_topics_record_partitions(mbroker):
    bs = mbroker.bootstrap
    a = "m-" + uuid.uuid4().hex[:8]
    t, res = create_topics(bs, 7, [(a, 1)], client_id=b"admin")
    assert res == {a: (0, None)}
    set_quota(bs, [("client-id", "mut")], "controller_mutation_rate", 2)
    # 1 -> 9 partitions: 8 new ones (bucket 2 -> -6), allowed since the bucket was not in debt.
    t, code, msg = create_partitions(bs, 3, a, 9, client_id=b"mut")
    assert (code, t) == (0, 0), (t, code, msg)
    t, code, msg = create_partitions(bs, 3, a, 10, client_id=b"mut")
    assert code == THROTTLING_QUOTA_EXCEEDED and msg == "The throttling quota has been exceeded."
    assert 2000 <= t <= 3100, t
    # v2 is permissive: done, and throttled.
    t, code, msg = create_partitions(bs, 2, a, 10, client_id=b"mut")
    assert code == 0 and t >= 2000, (t, code, msg)
    # DeleteTopics v5 (strict) refuses while in debt; v4 deletes and throttles (10 more).
    t, res = delete_topics(bs, 5, [a], client_id=b"mut")
    assert res[a][0] == THROTTLING_QUOTA_EXCEEDED and t > 2000, (t, res)
    t, res = delete_topics(bs, 4, [a], client_id=b"mut")
    assert res[a][0] == 0 and t >= 7000, (t, res)


def test_debt_is_paid_back_at_the_quota(mbroker):
    """The bucket refills at the quota: 3 partitions over a bucket of 2 at 2 a second owe
    0.5 s; after it a strict request passes again."""
    bs = mbroker.bootstrap
    set_quota(bs, [("client-id", "mut")], "controller_mutation_rate", 2)
    t, res = create_topics(bs, 7, [("m-" + uuid.uuid4().hex[:8], 3)], client_id=b"mut")
    assert t == 0 and list(res.values())[0][0] == 0
    t, res = create_topics(bs, 7, [("m-" + uuid.uuid4().hex[:8], 1)], client_id=b"mut")
    assert list(res.values())[0][0] == THROTTLING_QUOTA_EXCEEDED and 0 < t <= 600, (t, res)
    time.sleep(t / 1000.0 + 0.2)
    t, res = create_topics(bs, 7, [("m-" + uuid.uuid4().hex[:8], 1)], client_id=b"mut")
    assert t == 0 and list(res.values())[0][0] == 0, (t, res)


# ---- `gregor configs --entity-type ips` as Kafka 4.x's kafka-configs.sh ----

def test_gregor_configs_ips_as_kafka_configs_sh(broker, kafka_classpath):
    """Each command run by both tools on the same broker prints the same (alters are
    idempotent); the refusals (a key other than connection_creation_rate, a name that is no
    address) exit 1 with Kafka's message."""
    kafka = kafka_configs(broker.bootstrap, kafka_classpath)
    gregor = gregor_configs(broker.bootstrap)

    ip = ("--entity-type", "ips", "--entity-name", "1.2.3.4")
    dflt = ("--entity-type", "ips", "--entity-default")
    commands = [
        ("--alter", "--add-config", "connection_creation_rate=10") + ip,
        ("--alter", "--add-config", "connection_creation_rate=20") + dflt,
        ("--describe",) + ip,
        ("--describe",) + dflt,
        ("--alter", "--delete-config", "connection_creation_rate") + dflt,
        ("--describe",) + dflt,
    ]
    for c in commands:
        k, g = kafka(*c), gregor(*c)
        assert g[:2] == k[:2] and k[0] == 0, (c, g, k)
    assert gregor("--describe", *ip)[1] == (
        "Quota configs for ip '1.2.3.4' are connection_creation_rate=10.0\n")
    k = kafka("--describe", "--entity-type", "ips")
    g = gregor("--describe", "--entity-type", "ips")
    assert g[0] == k[0] == 0 and sorted(g[1].splitlines()) == sorted(k[1].splitlines()), (g, k)
    for bad in [("--alter", "--add-config", "producer_byte_rate=10") + ip,
                ("--alter", "--add-config", "connection_creation_rate=10", "--entity-type", "ips",
                 "--entity-name", "not an ip")]:
        k, g = kafka(*bad), gregor(*bad)
        assert k[0] == g[0] == 1 and k[2].strip() and k[2] == g[2], (bad, g, k)


# ---- connection_creation_rate (KIP-612) ----

# Rates over 2 samples of 1 s: a new rate is counted over at least 1 s, so a quota of 5 lets
# about 5 connections through at once, then 5 a second.
RATE_WINDOWS = {"quota.window.num": "2", "quota.window.size.seconds": "1"}


def open_and_ask(port, src, corr):
    """A connection from address src sending ApiVersions v0 (not waiting for the answer)."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(frame(18, 0, corr, b""))
    return s


def answered(s, corr, deadline):
    """True with the ApiVersions answer, False when the broker closed the connection unserved."""
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        got, _ = read_frame(s)
        return got == corr
    except (ConnectionError, OSError):
        return False
    finally:
        s.close()


def test_ip_connection_creation_rate_closes_connections_over_it(broker_factory):
    b = broker_factory(**RATE_WINDOWS).start()
    set_quota(b.bootstrap, [("ip", "127.0.0.3")], "connection_creation_rate", 5)
    socks, t0 = [], time.time()
    for i in range(30):  # 30 connections over ~1.5 s from the throttled address
        socks.append((open_and_ask(b.port, "127.0.0.3", i), i))
        time.sleep(0.05)
    # Another address is served at once meanwhile.
    other_t = time.time()
    assert answered(open_and_ask(b.port, "127.0.0.1", 99), 99, time.time() + 5)
    assert time.time() - other_t < 1.0
    results = [answered(s, i, time.time() + 10) for s, i in socks]
    elapsed = time.time() - t0
    served = sum(results)
    # About 5 at once, then 5 a second over the ~1.5 s the connections were made.
    assert 4 <= served <= 5 * 1.6 + 5 + 2, (served, results)
    assert served < 30 and elapsed < 15, (served, elapsed)
    # The default ip's quota applies to an address without its own.
    set_quota(b.bootstrap, [("ip", None)], "connection_creation_rate", 2)
    socks = [(open_and_ask(b.port, "127.0.0.4", i), i) for i in range(10)]
    served = sum(answered(s, i, time.time() + 10) for s, i in socks)
    assert 1 <= served <= 4, served


def test_listener_max_connection_creation_rate_delays_accepting(broker_factory):
    b = broker_factory(**dict(RATE_WINDOWS, **{
        "listener.name.plaintext.max.connection.creation.rate": "5"})).start()
    time.sleep(2.5)  # the start-up's probes out of the rate
    first = open_and_ask(b.port, "127.0.0.1", 1000)
    assert answered(first, 1000, time.time() + 5)
    keep = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    keep.sendall(frame(18, 0, 2000, b""))
    assert read_frame(keep)[0] == 2000
    time.sleep(1.5)
    t0 = time.time()
    socks = [(open_and_ask(b.port, "127.0.0.1", i), i) for i in range(20)]
    # An open connection keeps being served while the listener holds new ones back.
    keep.sendall(frame(18, 0, 2001, b""))
    assert read_frame(keep)[0] == 2001 and time.time() - t0 < 1.0
    keep.close()
    times = []
    for s, i in socks:
        assert answered(s, i, t0 + 20), i  # all served: held back, not refused
        times.append(time.time() - t0)
    # A burst (the rate is measured over the samples still held, at least 1 s), then 5 a
    # second: the 20th is answered after ~2-3 s, not at once.
    assert sum(1 for t in times if t < 0.5) <= 10, str([round(t, 2) for t in times])
    assert 2.0 <= times[-1] <= 10, str([round(t, 2) for t in times])


# ---- on a cluster under ZooKeeper ----

@pytest.mark.skipif(not zookeeper_available(), reason="ZooKeeper is not installed")
def test_zk_mutation_quota_set_on_one_broker_applies_on_another(tmp_path, zk):
    """The quota goes to /config/clients/<c> through one broker; a CreateTopics sent to the
    other is refused by it once its bucket is in debt (each broker handling the request
    records, as gregor's handlers write ZooKeeper themselves)."""
    from conftest import Broker, free_port
    from test_quotas import describe
    brokers = []
    try:
        for bid in (1, 2):
            o = {"broker.id": bid, "zookeeper.connect": zk.connect}
            o.update(MUTATION)
            brokers.append(Broker(str(tmp_path / ("data%d" % bid)), port=free_port(),
                                  overrides=o).start())
        b1, b2 = brokers
        set_quota(b1.bootstrap, [("client-id", "mut")], "controller_mutation_rate", 2)
        wait_until(lambda: describe(b2.bootstrap, [("client-id", 0, "mut")], True)[2] ==
                   {(("client-id", "mut"),): {"controller_mutation_rate": 2.0}}, 20)
        a, b = "z-" + uuid.uuid4().hex[:8], "z-" + uuid.uuid4().hex[:8]
        t, res = create_topics(b2.bootstrap, 7, [(a, 10)], client_id=b"mut")
        assert res == {a: (0, None)} and t == 0, (t, res)
        t, res = create_topics(b2.bootstrap, 7, [(b, 10)], client_id=b"mut")
        assert res[b] == (THROTTLING_QUOTA_EXCEEDED, "The throttling quota has been exceeded.")
        assert 3000 <= t <= 4100, t
        # The refused topic was not written: the other broker makes it for another client.
        t, res = create_topics(b1.bootstrap, 7, [(b, 2)], client_id=b"other")
        assert res == {b: (0, None)}, res
    finally:
        for br in brokers:
            br.stop()


@pytest.mark.skipif(not zookeeper_available(), reason="ZooKeeper is not installed")
def test_zk_console_creates_and_deletes_charge_the_mutation_quota(tmp_path, zk):
    """On a cluster the console's create and delete (written to ZooKeeper, answered once the
    view agrees) are charged as on one node: refused while the bucket is in debt, nothing
    written; each change recorded."""
    from conftest import Broker, free_port
    hp = free_port()
    o = {"broker.id": 1, "zookeeper.connect": zk.connect,
         "gregor.http.listener": "127.0.0.1:%d" % hp}
    o.update(MUTATION)
    b = Broker(str(tmp_path / "data1"), port=free_port(), overrides=o).start()
    try:
        set_quota(b.bootstrap, [("client-id", "gregor-console")], "controller_mutation_rate", 2)
        a, c = "z-" + uuid.uuid4().hex[:8], "z-" + uuid.uuid4().hex[:8]
        st, _, doc = console_call(hp, "POST", "/api/topics",
                                  {"name": a, "partitions": 3, "replication_factor": 1})
        assert st == 201 and doc == {"name": a}, (st, doc)
        st, retry, doc = console_call(hp, "POST", "/api/topics", {"name": c, "partitions": 1})
        assert st == 429 and doc["error"] == "THROTTLING_QUOTA_EXCEEDED" and retry == "1", (st, doc)
        assert 0 < doc["throttle_time_ms"] <= 600, doc
        time.sleep(1.0)
        assert console_call(hp, "GET", "/api/topics/" + c)[0] == 404  # not written
        # Paid back: the delete passes and records 3 (the bucket ~1.x -> below zero) ...
        st, _, doc = console_call(hp, "DELETE", "/api/topics/" + a)
        assert st == 200 and doc == {"name": a}, (st, doc)
        # ... so the next create is refused.
        st, retry, doc = console_call(hp, "POST", "/api/topics", {"name": c, "partitions": 1})
        assert st == 429 and doc["error"] == "THROTTLING_QUOTA_EXCEEDED", (st, doc)
        assert b.alive(), b.log()
    finally:
        assert b.stop() == 0, b.log()


# ---- the console's creates and deletes (docs/CONSOLE.md) ----

def console_call(port, method, path, body=None, auth=None, cookie=None):
    """One console call -> (status, Retry-After header or None, JSON document or None), and
    the session cookie when one is set."""
    import base64
    import http.client
    import json
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    if cookie:
        h["Cookie"] = cookie
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    doc = json.loads(payload) if r.getheader("Content-Type", "").startswith(
        "application/json") else None
    out = (r.status, r.getheader("Retry-After"), doc)
    if r.getheader("Set-Cookie"):
        out += (r.getheader("Set-Cookie").split(";")[0],)
    c.close()
    return out


def test_console_creates_and_deletes_charge_the_mutation_quota(broker_factory):
    """The console's creates and deletes are charged as a strict CreateTopics / DeleteTopics
    of its principal with client id gregor-console: the same bucket a Kafka client of that id
    fills (here the client-id quota; the console's principal is User:ANONYMOUS), 429
    THROTTLING_QUOTA_EXCEEDED with Retry-After and nothing done while it is in debt."""
    from conftest import free_port
    hp = free_port()
    b = broker_factory(**dict(MUTATION, **{"gregor.http.listener": "127.0.0.1:%d" % hp})).start()
    bs = b.bootstrap
    set_quota(bs, [("client-id", "gregor-console")], "controller_mutation_rate", 2)
    a, c = "m-" + uuid.uuid4().hex[:8], "m-" + uuid.uuid4().hex[:8]
    # A Kafka CreateTopics of the console's client id: 3 partitions, the bucket 2 -> -1.
    t, res = create_topics(bs, 7, [(a, 3)], client_id=b"gregor-console")
    assert res == {a: (0, None)} and t == 0, (t, res)
    st, retry, doc = console_call(hp, "POST", "/api/topics", {"name": c, "partitions": 1})
    assert st == 429 and doc["error"] == "THROTTLING_QUOTA_EXCEEDED", (st, doc)
    assert doc["message"] == "The throttling quota has been exceeded."
    assert 0 < doc["throttle_time_ms"] <= 600 and retry == "1", (doc, retry)
    assert console_call(hp, "GET", "/api/topics/" + c)[0] == 404  # not made
    # Another client id has no quota: not held.
    t, res = create_topics(bs, 7, [("m-" + uuid.uuid4().hex[:8], 1)], client_id=b"other")
    assert t == 0 and list(res.values())[0][0] == 0, (t, res)
    time.sleep(doc["throttle_time_ms"] / 1000.0 + 0.2)
    # Paid back: the console's create passes (1 partition: the bucket ~0.4 -> ~-0.6) ...
    st, retry, doc = console_call(hp, "POST", "/api/topics", {"name": c, "partitions": 1})
    assert st == 201 and doc == {"name": c} and retry is None, (st, doc)
    # ... and its delete of the 3-partition topic is refused while in debt, then done.
    st, retry, doc = console_call(hp, "DELETE", "/api/topics/" + a)
    assert st == 429 and doc["error"] == "THROTTLING_QUOTA_EXCEEDED" and retry == "1", (st, doc)
    assert console_call(hp, "GET", "/api/topics/" + a)[0] == 200
    time.sleep(doc["throttle_time_ms"] / 1000.0 + 0.2)
    st, retry, doc = console_call(hp, "DELETE", "/api/topics/" + a)
    assert st == 200 and doc == {"name": a}, (st, doc)
    # The delete recorded its 3 partitions: a strict Kafka request of that id is refused now.
    t, res = create_topics(bs, 7, [("m-" + uuid.uuid4().hex[:8], 1)], client_id=b"gregor-console")
    assert list(res.values())[0][0] == THROTTLING_QUOTA_EXCEEDED and t > 500, (t, res)


def test_console_charges_the_logged_in_users_quota(tmp_path):
    """With a login, the user's quota applies (KIP-55: no quota of user alice and client id
    gregor-console, so alice's own): alice is held, bob (no quota) is not."""
    from conftest import free_port
    from test_sasl import start_sasl_broker
    hp = free_port()
    b = start_sasl_broker(tmp_path, users=(("alice", "alice-secret"),),
                          extra=dict(MUTATION, **{"gregor.http.listener": "127.0.0.1:%d" % hp}))
    try:
        set_quota(b.bootstrap, [("user", "alice")], "controller_mutation_rate", 2)
        st, _, doc, cookie = console_call(hp, "POST", "/api/login",
                                          {"username": "alice", "password": "alice-secret"})
        assert st == 200 and doc == {"user": "User:alice"}, (st, doc)
        a, c = "m-" + uuid.uuid4().hex[:8], "m-" + uuid.uuid4().hex[:8]
        st, _, doc = console_call(hp, "POST", "/api/topics", {"name": a, "partitions": 3},
                                  cookie=cookie)
        assert st == 201, (st, doc)
        st, retry, doc = console_call(hp, "POST", "/api/topics", {"name": c, "partitions": 1},
                                      cookie=cookie)
        assert st == 429 and doc["error"] == "THROTTLING_QUOTA_EXCEEDED" and retry == "1", (st, doc)
        # bob (a PLAIN JAAS user, HTTP Basic) has no quota.
        st, _, doc = console_call(hp, "POST", "/api/topics", {"name": c, "partitions": 1},
                                  auth="bob:bob-secret")
        assert st == 201, (st, doc)
        assert b.alive(), b.log()
    finally:
        assert b.stop() == 0, b.log()
