"""Client quotas (issue 19): AlterClientQuotas / DescribeClientQuotas on the raw wire (no installed
client has them) with Kafka's validation and strict / non-strict matching, their file surviving a
restart, and the enforcement of ClientQuotaManager: producer_byte_rate and consumer_byte_rate per
client id and per user (SASL PLAIN principal), throttle_time_ms in the answers and the connection
muted (not read) until the throttle has passed (KIP-219)."""
import socket
import struct
import time
import uuid

import pytest

from conftest import Broker
from kafka_wire import Reader, _recv, call, cstr, frame, record_batch, uvarint

INVALID_REQUEST, UNSUPPORTED_VERSION = 42, 35


def s16(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _alter(bootstrap, entries, validate_only, version):
    flex = version >= 1
    st = cstr if flex else s16
    arr = (lambda n: uvarint(n + 1)) if flex else (lambda n: struct.pack(">i", n))
    tag = uvarint(0) if flex else b""
    body = arr(len(entries))
    for entity, ops in entries:
        body += arr(len(entity))
        for t, n in entity:
            body += st(t) + st(n) + tag
        body += arr(len(ops))
        for k, v, rm in ops:
            body += st(k) + struct.pack(">d?", v, rm) + tag
        body += tag
    body += struct.pack(">?", validate_only) + tag
    r = call(bootstrap, 49, version, body, flexible=flex)
    assert r.take(">i") == 0  # throttle
    out = []
    rs = (lambda: r.cstr()) if flex else (lambda: (lambda b: None if b is None else b.decode())(r.s16()))
    ra = (lambda: r.uvarint() - 1) if flex else (lambda: r.take(">i"))
    for _ in range(ra()):
        code = r.take(">h")
        msg = rs()
        ent = []
        for _ in range(ra()):
            ent.append((rs(), rs()))
            if flex:
                r.tags()
        if flex:
            r.tags()
        out.append((code, msg, ent))
    return out


def describe(bootstrap, components, strict=False, version=1):
    """components: [(type, match_type, match)] -> (code, message, {entity: {key: value}} or None)."""
    flex = version >= 1
    st = cstr if flex else s16
    arr = (lambda n: uvarint(n + 1)) if flex else (lambda n: struct.pack(">i", n))
    tag = uvarint(0) if flex else b""
    body = arr(len(components))
    for t, mt, m in components:
        body += st(t) + struct.pack(">b", mt) + st(m) + tag
    body += struct.pack(">?", strict) + tag
    r = call(bootstrap, 48, version, body, flexible=flex)
    rs = (lambda: r.cstr()) if flex else (lambda: (lambda b: None if b is None else b.decode())(r.s16()))
    ra = (lambda: r.uvarint() - 1) if flex else (lambda: r.take(">i"))
    r.take(">i")
    code = r.take(">h")
    msg = rs()
    n = ra()
    if n < 0:
        return code, msg, None
    got = {}
    for _ in range(n):
        ent = []
        for _ in range(ra()):
            ent.append((rs(), rs()))
            if flex:
                r.tags()
        vals = {}
        for _ in range(ra()):
            k = rs()
            vals[k] = r.take(">d")
            if flex:
                r.tags()
        if flex:
            r.tags()
        got[tuple(sorted(ent))] = vals
    return code, msg, got


def ok(results):
    assert [(c, m) for c, m, _ in results] == [(0, None)] * len(results), results


@pytest.mark.parametrize("version", [0, 1])
def test_alter_and_describe_strict_and_not(broker, version):
    b = broker.bootstrap
    ok(_alter(b, [([("user", "alice")], [("producer_byte_rate", 1024, False)]),
                  ([("user", "alice"), ("client-id", "c1")], [("request_percentage", 50.5, False)]),
                  ([("client-id", None)], [("consumer_byte_rate", 2048, False)]),
                  ([("user", None)], [("producer_byte_rate", 4096, False),
                                      ("controller_mutation_rate", 3, False)]),
                  ([("ip", "10.1.2.3")], [("connection_creation_rate", 7, False)])],
              False, version))
    alice, alice_c1 = (("user", "alice"),), (("client-id", "c1"), ("user", "alice"))
    dflt_client, dflt_user, ip = (("client-id", None),), (("user", None),), (("ip", "10.1.2.3"),)
    # No filter, not strict: every entity (ip ones too, ZkAdminManager's allIps).
    code, msg, got = describe(b, [], version=version)
    assert (code, msg) == (0, "")  # Kafka 4.x: "" (3.9's ZooKeeper mode: null)
    assert got == {alice: {"producer_byte_rate": 1024.0},
                   alice_c1: {"request_percentage": 50.5},
                   dflt_client: {"consumer_byte_rate": 2048.0},
                   dflt_user: {"producer_byte_rate": 4096.0, "controller_mutation_rate": 3.0},
                   ip: {"connection_creation_rate": 7.0}}
    # ... and strict, none (each has a type the filter does not name).
    assert describe(b, [], True, version)[2] == {}
    # user=alice, not strict: alice alone and with any client id.
    assert set(describe(b, [("user", 0, "alice")], version=version)[2]) == {alice, alice_c1}
    # ... strict: only the entity of that user alone.
    assert describe(b, [("user", 0, "alice")], True, version)[2] == {
        alice: {"producer_byte_rate": 1024.0}}
    # The default user (match type 1), and any specified user (2) strictly.
    assert set(describe(b, [("user", 1, None)], True, version)[2]) == {dflt_user}
    assert set(describe(b, [("user", 2, None)], True, version)[2]) == {alice, dflt_user}
    assert set(describe(b, [("client-id", 1, None)], False, version)[2]) == {dflt_client}
    assert describe(b, [("ip", 2, None)], version=version)[2] == {
        ip: {"connection_creation_rate": 7.0}}
    # Removing the last key removes the entity; validate_only changes nothing.
    ok(_alter(b, [([("user", "alice")], [("producer_byte_rate", 0, True)])], False, version))
    ok(_alter(b, [([("user", "bob")], [("producer_byte_rate", 10, False)])], True, version))
    code, _, got = describe(b, [("user", 2, None)], True, version)
    assert set(got) == {dflt_user}


def test_alter_validation_errors(broker):
    b = broker.bootstrap
    cases = [
        ([], [("producer_byte_rate", 1, False)], INVALID_REQUEST, "Invalid empty client quota entity"),
        ([("group", "g")], [("producer_byte_rate", 1, False)], INVALID_REQUEST,
         "Unhandled client quota entity type: group"),
        ([("user", "")], [("producer_byte_rate", 1, False)], INVALID_REQUEST, "Empty user not supported"),
        ([("user", "a"), ("ip", "1.2.3.4")], [("connection_creation_rate", 1, False)], INVALID_REQUEST,
         "Invalid quota entity combination, IP entity should not be used with user/client ID entity."),
        ([("ip", "not an ip")], [("connection_creation_rate", 1, False)], INVALID_REQUEST,
         "not an ip is not a valid IP or resolvable host."),
        ([("user", "a")], [("connection_creation_rate", 1, False)], INVALID_REQUEST,
         "Invalid configuration key connection_creation_rate"),
        ([("ip", None)], [("producer_byte_rate", 1, False)], INVALID_REQUEST,
         "Invalid configuration key producer_byte_rate"),
        ([("client-id", "c")], [("no_such_key", 1, False)], INVALID_REQUEST,
         "Invalid configuration key no_such_key"),
        ([("client-id", "c")], [("producer_byte_rate", 1.5, False)], INVALID_REQUEST,
         "Configuration producer_byte_rate must be a LONG value"),
        ([("ip", None)], [("connection_creation_rate", 2.5, False)], INVALID_REQUEST,
         "Configuration connection_creation_rate must be a INT value"),
        # Kafka's (value + 1e-6).toInt truncates towards zero: a negative whole number fails too.
        ([("ip", None)], [("connection_creation_rate", -1, False)], INVALID_REQUEST,
         "Configuration connection_creation_rate must be a INT value"),
    ]
    got = _alter(b, [(e, o) for e, o, _, _ in cases], False, 1)
    assert [(c, m) for c, m, _ in got] == [(c, m) for _, _, c, m in cases]
    # The answer names each entry's entity as asked.
    assert got[3][2] == [("user", "a"), ("ip", "1.2.3.4")]
    # A refused entry changes nothing, not even its valid ops.
    got = _alter(b, [([("user", "u")], [("producer_byte_rate", 5, False),
                                        ("consumer_byte_rate", 0.25, False)])], False, 1)
    assert got[0][0] == INVALID_REQUEST
    assert describe(b, [])[2] == {}


def test_describe_validation_errors(broker):
    """A single node answers as Kafka 4.x (test_quotas_vs_kafka.py compares them)."""
    b = broker.bootstrap
    cases = [
        ([("user", 0, None)], INVALID_REQUEST,
         "Request specified MATCH_TYPE_EXACT, but set match string to null."),
        ([("user", 1, "x")], INVALID_REQUEST,
         "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."),
        ([("user", 2, "x")], INVALID_REQUEST,
         "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."),
        ([("user", 0, "a"), ("user", 1, None)], INVALID_REQUEST,
         "Entity type user cannot appear more than once in the filter."),
        ([("", 2, None)], INVALID_REQUEST, "Invalid empty entity type."),
        ([("group", 2, None)], UNSUPPORTED_VERSION, "Unsupported entity type group"),
        ([("user", 2, None), ("ip", 2, None)], INVALID_REQUEST,
         "Invalid entity filter component combination. IP filter component should not be used "
         "with user or clientId filter component."),
        ([("user", 5, None)], INVALID_REQUEST, "Unknown match type 5"),
    ]
    for comps, code, msg in cases:
        assert describe(b, comps) == (code, msg, None), comps


def test_quotas_survive_restart(broker):
    ok(_alter(broker.bootstrap, [([("user", "x y%<default>"), ("client-id", None)],
                                  [("consumer_byte_rate", 123456, False)]),
                                 ([("user", None)], [("request_percentage", 12.75, False)])],
              False, 1))
    before = describe(broker.bootstrap, [])
    broker.restart()
    after = describe(broker.bootstrap, [])
    assert after == before
    assert after[2] == {(("client-id", None), ("user", "x y%<default>")): {"consumer_byte_rate": 123456.0},
                        (("user", None),): {"request_percentage": 12.75}}


# ---- enforcement ----

# Kafka measures a rate over quota.window.num samples (11) and counts a young rate over at least
# num - 1 whole windows: a sender far faster than its quota gets (num - 1) x quota at once, then
# is held at the quota. With 3 samples the burst is 2 s of quota, so a few seconds show the
# held rate.
WINDOWS = {"quota.window.num": "3", "quota.window.size.seconds": "1"}


@pytest.fixture
def qbroker(broker_factory):
    return broker_factory(**WINDOWS).start()


def create_topic(bootstrap, topic):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def produce_frame(topic, batch, corr, client_id, acks=1):
    name = topic.encode()
    body = struct.pack(">hhi", -1, acks, 10000)
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(batch)) + batch
    return frame(0, 7, corr, body, client_id=client_id)


def read_produce(s):
    size = struct.unpack(">i", _recv(s, 4))[0]
    data = _recv(s, size)
    corr = struct.unpack(">i", data[:4])[0]
    throttle = struct.unpack(">i", data[-4:])[0]
    return corr, throttle, data


def raw_producer_run(bootstrap, topic, client_id, seconds, value_size=20000, per_batch=5):
    """Produces as fast as answers come back for seconds; returns [(sent_at, answered_at,
    throttle_ms, bytes)]."""
    host, port = bootstrap.split(":")
    batch = record_batch([b"x" * value_size] * per_batch)
    out = []
    with socket.create_connection((host, int(port)), timeout=30) as s:
        corr, end = 0, time.time() + seconds
        while time.time() < end:
            corr += 1
            f = produce_frame(topic, batch, corr, client_id)
            t0 = time.time()
            s.sendall(f)
            got, throttle, _ = read_produce(s)
            assert got == corr
            out.append((t0, time.time(), throttle, len(f) - 4))
    return out


def set_quota(bootstrap, entity, key, value):
    ok(_alter(bootstrap, [(entity, [(key, value, False)])], False, 1))


def test_producer_byte_rate_throttles_its_client_only(qbroker):
    broker = qbroker
    topic = "q-" + uuid.uuid4().hex[:8]
    create_topic(broker.bootstrap, topic)
    set_quota(broker.bootstrap, [("client-id", "slow")], "producer_byte_rate", 200000)
    slow = raw_producer_run(broker.bootstrap, topic, b"slow", 8)
    # The first 2 s of quota pass at once, then the client is held at the quota: measured
    # over the ~6 s after the burst's throttle.
    t_start = slow[0][0]
    late = [x for x in slow if x[0] - t_start >= 1.5]
    span = late[-1][1] - late[0][0]
    rate = sum(x[3] for x in late) / span
    assert 0.5 * 200000 <= rate <= 1.6 * 200000, (rate, len(late))
    throttled = [x for x in slow if x[2] > 0]
    assert throttled, "no answer carried throttle_time_ms"
    fast = raw_producer_run(broker.bootstrap, topic, b"fast", 2)
    assert all(x[2] == 0 for x in fast)
    assert sum(x[3] for x in fast) / 2 > 3 * 200000


def test_muted_connection_is_not_read_until_throttle_ends(qbroker):
    broker = qbroker
    topic = "q-" + uuid.uuid4().hex[:8]
    create_topic(broker.bootstrap, topic)
    # 1 byte/s: the first request is already far over the quota.
    set_quota(broker.bootstrap, [("client-id", "muted")], "producer_byte_rate", 1000)
    host, port = broker.bootstrap.split(":")
    batch = record_batch([b"y" * 20000])
    with socket.create_connection((host, int(port)), timeout=60) as s:
        t0 = time.time()
        s.sendall(produce_frame(topic, batch, 1, b"muted"))
        corr, throttle, _ = read_produce(s)
        first = time.time() - t0
        assert corr == 1 and throttle > 1000
        assert first < 1.0, "the throttled answer must come at once (KIP-219), took %.2fs" % first
        # A Metadata request (not under the produce quota) sent now is read only after the mute.
        s.sendall(frame(3, 1, 2, struct.pack(">i", 0), client_id=b"muted"))
        t1 = time.time()
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
        waited = time.time() - t1
        assert struct.unpack(">i", data[:4])[0] == 2
        assert waited >= throttle / 1000.0 - first - 0.2, (waited, throttle)
    # Another client is answered meanwhile.
    other = raw_producer_run(broker.bootstrap, topic, b"other", 0.5)
    assert other and all(x[2] == 0 for x in other)


def test_consumer_byte_rate_throttles_fetch(qbroker):
    broker = qbroker
    import confluent_kafka
    topic = "q-" + uuid.uuid4().hex[:8]
    create_topic(broker.bootstrap, topic)
    # Batches of ~20 KB: a fetch answers at least one whole batch (KIP-74).
    p = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5,
                                  "batch.size": 20000})
    total = 0
    for i in range(160):  # 1.6 MB
        p.produce(topic, b"z" * 10000)
        total += 10000
    assert p.flush(30) == 0
    set_quota(broker.bootstrap, [("client-id", "reader")], "consumer_byte_rate", 200000)

    def consume(client_id, limit_s):
        c = confluent_kafka.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": client_id,
                                      "client.id": client_id, "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False, "statistics.interval.ms": 500,
                                      "max.partition.fetch.bytes": 50000, "fetch.max.bytes": 1000000,
                                      "message.max.bytes": 1000000,
                                      "stats_cb": lambda j: stats.append(j)})
        stats = []
        c.subscribe([topic])
        got, t0, deadline = 0, None, time.time() + limit_s
        marks = []
        while got < total and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                t0 = t0 or time.time()
                got += len(m.value())
                marks.append((time.time(), got))
        c.close()
        return got, marks, stats

    got, marks, stats = consume("reader", 25)
    assert got == total
    # Over the whole read (the first 2 s of quota at once included): near the quota.
    rate = total / (marks[-1][0] - marks[0][0])
    assert 0.5 * 200000 <= rate <= 1.6 * 200000, rate
    import json
    throttles = [json.loads(j)["brokers"] for j in stats]
    assert any(b["throttle"]["max"] > 0 for br in throttles for b in br.values()
               if b.get("nodeid", -1) >= 0), "librdkafka saw no throttle_time_ms"
    got2, marks2, _ = consume("free", 20)
    assert got2 == total
    assert total / (marks2[-1][0] - marks2[0][0]) > 3 * 200000


def test_user_quota_applies_by_sasl_principal(tmp_path):
    from test_sasl import start_sasl_broker
    b = start_sasl_broker(tmp_path, mechanisms="PLAIN",
                          users=(("alice", "alice-secret"), ("bob", "bob-secret")))
    try:
        topic = "q-" + uuid.uuid4().hex[:8]
        create_topic(b.bootstrap, topic)
        set_quota(b.bootstrap, [("user", "alice")], "producer_byte_rate", 1000)
        import confluent_kafka

        def run(user):
            throttles = []
            p = confluent_kafka.Producer({
                "bootstrap.servers": "127.0.0.1:%d" % b.sasl_port, "client.id": "same",
                "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": user, "sasl.password": user + "-secret",
                "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
            for _ in range(30):
                p.produce(topic, b"w" * 20000)
                p.poll(0)
            assert p.flush(60) == 0
            p.poll(0.5)
            return throttles

        assert run("bob") == []
        assert any(t > 0 for t in run("alice"))
    finally:
        b.stop()


def metadata_round_trips(bootstrap, client_id, n):
    """n Metadata v1 requests on one connection, one at a time; returns the seconds taken."""
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        t0 = time.time()
        for corr in range(1, n + 1):
            s.sendall(frame(3, 1, corr, struct.pack(">i", 0), client_id=client_id))
            size = struct.unpack(">i", _recv(s, 4))[0]
            assert struct.unpack(">i", _recv(s, size)[:4])[0] == corr
        return time.time() - t0


def test_request_percentage_mutes_a_busy_client(qbroker):
    # 1e-7 percent of the loop thread: 2 ns of handler time over the 2 s window is over it.
    set_quota(qbroker.bootstrap, [("user", None), ("client-id", "busy")], "request_percentage", 1e-7)
    free = metadata_round_trips(qbroker.bootstrap, b"idle", 8)
    busy = metadata_round_trips(qbroker.bootstrap, b"busy", 8)
    # A request quota's throttle is at most one window (1 s here): muted at least once.
    assert busy >= 1.0 and busy > free + 0.9, (busy, free)


def throttled_requests(topic, group):
    """(api, version, body) of a Metadata, ListOffsets, OffsetCommit and DescribeGroups: each a
    version whose response starts with throttle_time_ms."""
    name, group = topic.encode(), group.encode()
    return [
        (3, 4, struct.pack(">ih", 1, len(name)) + name + struct.pack(">?", False)),  # Metadata
        (2, 2, struct.pack(">ib", -1, 0) + struct.pack(">ih", 1, len(name)) + name
         + struct.pack(">iiq", 1, 0, -1)),  # ListOffsets: latest of partition 0
        (8, 3, struct.pack(">h", len(group)) + group + struct.pack(">ih", -1, 0)
         + struct.pack(">q", -1) + struct.pack(">ih", 1, len(name)) + name
         + struct.pack(">iiqh", 1, 0, 0, -1)),  # OffsetCommit: simple commit of offset 0
        (15, 1, struct.pack(">ih", 1, len(group)) + group),  # DescribeGroups
    ]


def throttles_in_a_row(bootstrap, requests, client_id, rounds=2, limit_s=30):
    """Sends requests rounds times on one connection, each after the previous answer; returns
    [(api, throttle_ms, seconds since the previous answer, the previous answer's throttle)]."""
    host, port = bootstrap.split(":")
    seen = []
    with socket.create_connection((host, int(port)), timeout=30) as s:
        last_answer, last_throttle, deadline = None, 0, time.time() + limit_s
        for rnd in range(rounds):
            for corr, (api, version, body) in enumerate(requests, start=1 + rnd * 10):
                assert time.time() < deadline
                s.sendall(frame(api, version, corr, body, client_id=client_id))
                size = struct.unpack(">i", _recv(s, 4))[0]
                data = _recv(s, size)
                now = time.time()
                assert struct.unpack(">i", data[:4])[0] == corr
                throttle = struct.unpack(">i", data[4:8])[0]
                seen.append((api, throttle, None if last_answer is None else now - last_answer,
                             last_throttle))
                last_answer, last_throttle = now, throttle
    return seen


def test_request_quota_throttle_time_in_every_response(qbroker):
    """KIP-124/219 (RequestHandlerHelper.sendResponseMaybeThrottle): over request_percentage,
    every response that has a throttle_time_ms carries the throttle, not only Produce and Fetch,
    and the connection is muted that long: the next answer comes no sooner."""
    b = qbroker.bootstrap
    topic = "q-" + uuid.uuid4().hex[:8]
    create_topic(b, topic)
    set_quota(b, [("client-id", "busy")], "request_percentage", 1e-7)
    requests = throttled_requests(topic, "g-" + uuid.uuid4().hex[:8])
    seen = throttles_in_a_row(b, requests, b"busy")
    # 1e-7 percent: every request is over it; a request throttle is at most one window (1 s).
    assert all(0 < t <= 1000 for _, t, _, _ in seen), seen
    assert {a for a, _, _, _ in seen} == {3, 2, 8, 15}
    # Muted for the previous answer's throttle (counted from when it was received).
    assert all(gap >= prev / 1000.0 - 0.1 for _, _, gap, prev in seen[1:]), seen
    # Another client is not throttled.
    assert [t for _, t, _, _ in throttles_in_a_row(b, requests[:1], b"idle", rounds=1)] == [0]


def fetch_v4(s, topic, offset, corr, client_id, max_bytes=10 << 20):
    """One Fetch v4 of partition 0 on s: (throttle_ms, error, record bytes)."""
    name = topic.encode()
    body = struct.pack(">iiiib", -1, 100, 1, max_bytes, 0)
    body += struct.pack(">ih", 1, len(name)) + name + struct.pack(">iiqi", 1, 0, offset, max_bytes)
    s.sendall(frame(1, 4, corr, body, client_id=client_id))
    size = struct.unpack(">i", _recv(s, 4))[0]
    r = Reader(_recv(s, size))
    assert r.take(">i") == corr
    throttle = r.take(">i")
    if r.take(">i") == 0:
        return throttle, None, None  # a throttled answer: no partitions
    assert r.s16() == name
    assert r.take(">i") == 1
    r.take(">i")
    err = r.take(">h")
    r.take(">q")
    r.take(">q")
    n = r.take(">i")
    r.raw(max(n, 0) * 16)
    return throttle, err, r.raw(max(r.take(">i"), 0))


def test_consumer_fetch_capped_by_quota_window(qbroker):
    """KafkaApis.handleFetchRequest: a consumer's fetch asks at most what its consumer_byte_rate
    allows in one quota window with nothing recorded (getMaxValueInQuotaWindow: the rate x
    (quota.window.num - 1) x quota.window.size.seconds, 40000 bytes here); the first batch
    still goes whole (KIP-74). A client without a quota gets its whole max_bytes."""
    b = qbroker.bootstrap
    topic = "q-" + uuid.uuid4().hex[:8]
    create_topic(b, topic)
    host, port = b.split(":")
    batch = record_batch([b"v" * 1000] * 9)  # ~9 KB a batch
    with socket.create_connection((host, int(port)), timeout=30) as s:
        for corr in range(1, 41):  # ~360 KB
            s.sendall(produce_frame(topic, batch, corr, b"writer"))
            assert read_produce(s)[0] == corr
    set_quota(b, [("client-id", "capped")], "consumer_byte_rate", 20000)
    window_max = 20000 * (3 - 1) * 1
    with socket.create_connection((host, int(port)), timeout=30) as s:
        throttle, err, records = fetch_v4(s, topic, 0, 1, b"capped")
        assert err == 0
        assert len(batch) <= len(records) <= window_max, len(records)
        assert len(records) > window_max - len(batch), len(records)  # whole batches up to it
        # Within the quota: the capped answer is not throttled (the point of the cap).
        assert throttle == 0
    with socket.create_connection((host, int(port)), timeout=30) as s:
        throttle, err, records = fetch_v4(s, topic, 0, 1, b"free")
        assert (throttle, err) == (0, 0)
        assert len(records) == 40 * len(batch)
    # A first batch larger than the window is read (KIP-74) but over the quota at once: as in
    # Kafka, the answer is the throttled one, empty, its bytes taken back.
    big = record_batch([b"w" * 60000])
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(produce_frame(topic, big, 1, b"writer"))
        assert read_produce(s)[0] == 1
    set_quota(b, [("client-id", "capped2")], "consumer_byte_rate", 20000)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        throttle, err, records = fetch_v4(s, topic, 40 * 9, 1, b"capped2")
        assert throttle > 0 and records is None


# ---- Kafka 4.x's kafka-configs.sh (ConfigCommand from the Maven jars) ----

@pytest.fixture(scope="module")
def kafka_classpath():
    import os
    import subprocess
    from conftest import ROOT
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh"), "classpath"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr[-3000:]
    return p.stdout.strip()


def kafka_configs(bootstrap, classpath):
    """Kafka's kafka-configs.sh (ConfigCommand) against bootstrap: f(*args) -> (rc, out, err)."""
    import subprocess

    def run(*args):
        p = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                            "-cp", classpath, "kafka.admin.ConfigCommand",
                            "--bootstrap-server", bootstrap] + list(args),
                           capture_output=True, text=True, timeout=180)
        return p.returncode, p.stdout, p.stderr
    return run


def gregor_configs(bootstrap):
    """`gregor configs` against bootstrap: f(*args) -> (rc, out, err)."""
    import subprocess
    from conftest import GREGOR

    def run(*args):
        p = subprocess.run([GREGOR, "configs", "--bootstrap-server", bootstrap] + list(args),
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr
    return run


def test_kafka_configs_sh_users_clients_and_defaults(broker, kafka_classpath):
    kc = kafka_configs(broker.bootstrap, kafka_classpath)

    alice = ("--entity-type", "users", "--entity-name", "alice")
    assert kc("--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048", *alice) == (
        0, "Completed updating config for user alice.\n", "")
    assert kc("--alter", "--add-config", "request_percentage=12.5", *alice,
              "--entity-type", "clients", "--entity-default")[:2] == (
        0, "Completed updating config for user alice.\n")
    assert kc("--alter", "--add-config", "producer_byte_rate=1000", "--entity-type", "clients",
              "--entity-default")[:2] == (
        0, "Completed updating default config for clients in the cluster.\n")
    assert kc("--describe", *alice)[:2] == (
        0, "Quota configs for user-principal 'alice' are consumer_byte_rate=2048.0, "
           "producer_byte_rate=1024.0\n")
    assert kc("--describe", "--entity-type", "clients")[:2] == (
        0, "Quota configs for the default client-id are producer_byte_rate=1000.0\n")
    assert kc("--describe", *alice, "--entity-type", "clients")[:2] == (
        0, "Quota configs for user-principal 'alice', the default client-id are "
           "request_percentage=12.5\n")
    assert kc("--alter", "--delete-config", "producer_byte_rate", *alice)[0] == 0
    assert kc("--describe", *alice)[:2] == (
        0, "Quota configs for user-principal 'alice' are consumer_byte_rate=2048.0\n")
    # The admin client's describe agrees with the raw wire's.
    assert describe(broker.bootstrap, [("user", 0, "alice")], True)[2] == {
        (("user", "alice"),): {"consumer_byte_rate": 2048.0}}


def test_gregor_configs_prints_as_kafka_configs_sh(broker, kafka_classpath):
    """`gregor configs` (bin/kafka-configs.sh) for users and clients: each command run by both
    tools on the same broker prints the same (alters are idempotent, so running both is fine)."""
    kafka = kafka_configs(broker.bootstrap, kafka_classpath)
    gregor = gregor_configs(broker.bootstrap)

    commands = [
        ("--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=20000000",
         "--entity-type", "users", "--entity-name", "alice"),
        ("--alter", "--add-config", "request_percentage=0.0001", "--entity-type", "users",
         "--entity-default"),
        ("--alter", "--add-config", "producer_byte_rate=1000", "--entity-type", "clients",
         "--entity-default"),
        ("--alter", "--add-config", "consumer_byte_rate=4096", "--entity-type", "clients",
         "--entity-name", "c1"),
        ("--describe", "--entity-type", "users", "--entity-name", "alice"),
        ("--describe", "--entity-type", "users", "--entity-default"),
        ("--describe", "--entity-type", "clients", "--entity-name", "c1"),
        ("--describe", "--entity-type", "clients", "--entity-default"),
        ("--alter", "--delete-config", "producer_byte_rate", "--entity-type", "users",
         "--entity-name", "alice"),
        ("--describe", "--entity-type", "users", "--entity-name", "alice"),
    ]
    for c in commands:
        k = kafka(*c)
        g = gregor(*c)
        assert g[:2] == k[:2], (c, g, k)
    # The broker's refusal: exit code 1 and its message from both.
    bad = ("--alter", "--add-config", "producer_byte_rate=1.5", "--entity-type", "clients",
           "--entity-name", "c1")
    k, g = kafka(*bad), gregor(*bad)
    why = "Configuration producer_byte_rate must be a LONG value"
    assert k[0] == g[0] == 1 and why in k[2] and why in g[1] + g[2], (g, k)
    # Every named client (Kafka's order may differ for several lines: compare as sets).
    k = kafka("--describe", "--entity-type", "clients")
    g = gregor("--describe", "--entity-type", "clients")
    assert g[0] == k[0] == 0 and sorted(g[1].splitlines()) == sorted(k[1].splitlines()), (g, k)


def test_gregor_configs_scram_credentials_as_kafka_configs_sh(tmp_path, kafka_classpath):
    """SCRAM credentials with `gregor configs --entity-type users`: the salted password made
    client side as Kafka's admin client makes it (the user then logs in with it), describe and
    delete printing what Kafka's ConfigCommand prints."""
    import confluent_kafka
    from test_sasl import start_sasl_broker
    b = start_sasl_broker(tmp_path, mechanisms="SCRAM-SHA-256,SCRAM-SHA-512")
    try:
        kafka_run, gregor_run = kafka_configs(b.bootstrap, kafka_classpath), gregor_configs(b.bootstrap)

        def kafka(*args):
            return kafka_run(*args)[:2]

        def gregor(*args):
            return gregor_run(*args)[:2]

        bob = ("--entity-type", "users", "--entity-name", "bob")
        add = ("--alter", "--add-config",
               "SCRAM-SHA-256=[iterations=8192,password=bob-secret],producer_byte_rate=2048") + bob
        assert gregor(*add) == (0, "Completed updating config for user bob.\n")
        g, k = gregor("--describe", *bob), kafka("--describe", *bob)
        assert g == k, (g, k)
        assert g[1] == ("Quota configs for user-principal 'bob' are producer_byte_rate=2048.0\n"
                        "SCRAM credential configs for user-principal 'bob' are "
                        "SCRAM-SHA-256=iterations=8192\n")
        # bob logs in with the password gregor configs salted.
        p = confluent_kafka.Producer({
            "bootstrap.servers": "127.0.0.1:%d" % b.sasl_port, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "bob", "sasl.password": "bob-secret"})
        p.produce("scram-topic", b"v")
        assert p.flush(30) == 0
        assert gregor("--alter", "--delete-config", "SCRAM-SHA-256", *bob) == (
            0, "Completed updating config for user bob.\n")
        g, k = gregor("--describe", *bob), kafka("--describe", *bob)
        assert g == k == (0, "Quota configs for user-principal 'bob' are producer_byte_rate=2048.0\n")
    finally:
        b.stop()


def test_gregor_configs_user_and_client_pair_as_kafka_configs_sh(broker, kafka_classpath):
    """--entity-type users <name|--entity-default> --entity-type clients <name|--entity-default>:
    the user + client-id entities, printed as Kafka's ConfigCommand prints them."""
    kafka_run, gregor_run = kafka_configs(broker.bootstrap, kafka_classpath), gregor_configs(broker.bootstrap)

    def kafka(*args):
        return kafka_run(*args)[:2]

    def gregor(*args):
        return gregor_run(*args)[:2]

    pairs = [("--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
              "--entity-name", "c1"),
             ("--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
              "--entity-default"),
             ("--entity-type", "users", "--entity-default", "--entity-type", "clients",
              "--entity-default")]
    for i, pair in enumerate(pairs):
        add = ("--alter", "--add-config", "producer_byte_rate=%d" % (1000 + i)) + pair
        g, k = gregor(*add), kafka(*add)
        assert g == k and g[0] == 0, (pair, g, k)
    for pair in pairs:
        g, k = gregor("--describe", *pair), kafka("--describe", *pair)
        assert g == k and g[1], (pair, g, k)
    assert describe(broker.bootstrap, [("user", 1, None), ("client-id", 1, None)], True)[2] == {
        (("client-id", None), ("user", None)): {"producer_byte_rate": 1002.0}}
