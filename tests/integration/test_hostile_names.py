"""Hostile names (issue 12 items 10, 11): internal topics refuse client writes, and names are
length-counted bytes, so an embedded NUL never aliases another topic or group. Raw-wire
requests: no client sends such names."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import Reader as Resp, _recv, record_batch, s16  # noqa: E402

INVALID_TOPIC_EXCEPTION = 17
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_GROUP_ID = 24
INVALID_REQUEST = 42


# ---- a few non-flexible requests, built by hand --------------------------------------------

def call(broker, api, version, body, corr=7, timeout=30):
    with socket.create_connection(("127.0.0.1", broker.port), timeout=timeout) as s:
        hdr = struct.pack(">hhih", api, version, corr, 4) + b"test"
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    assert struct.unpack(">i", data[:4])[0] == corr
    return Resp(data[4:])


def create_topics(broker, name, partitions=1, timeout=30):
    """CreateTopics v2 for one topic: (error, message)."""
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">ib", 30000, 0)
    r = call(broker, 19, 2, body, timeout=timeout)
    r.take(">i")
    assert r.take(">i") == 1
    assert r.s16() == name
    return r.take(">h"), r.s16()


def metadata(broker, names, auto_create=True):
    """Metadata v4: {name: (error, npartitions)} for the named topics, or every topic (None)."""
    if names is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(names)) + b"".join(s16(n) for n in names)
    body += struct.pack(">b", 1 if auto_create else 0)
    r = call(broker, 3, 4, body)
    r.take(">i")
    for _ in range(r.take(">i")):
        r.take(">i"), r.s16(), r.take(">i"), r.s16()
    r.s16(), r.take(">i")
    out = {}
    for _ in range(r.take(">i")):
        err, name, _internal = r.take(">h"), r.s16(), r.take(">b")
        n = r.take(">i")
        for _ in range(n):
            r.take(">h"), r.take(">i"), r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i")
        out[name] = (err, n)
    return out


def produce(broker, name, partition, values):
    """Produce v7, acks=1: (error, base_offset)."""
    batch = record_batch(values)
    body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">i", 1) + s16(name)
    body += struct.pack(">iii", 1, partition, len(batch)) + batch
    r = call(broker, 0, 7, body)
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    _, err, base = r.take(">i"), r.take(">h"), r.take(">q")
    return err, base


def log_end(broker, name, partition=0):
    """ListOffsets v1 latest: (error, offset)."""
    body = struct.pack(">ii", -1, 1) + s16(name) + struct.pack(">iiq", 1, partition, -1)
    r = call(broker, 2, 1, body)
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    _, err, _ts, off = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q")
    return err, off


def fetch(broker, name, partition=0):
    """Fetch v4 from offset 0: (error, record bytes)."""
    body = struct.pack(">iiiib", -1, 0, 0, 1 << 20, 0) + struct.pack(">i", 1) + s16(name)
    body += struct.pack(">iiqi", 1, partition, 0, 1 << 20)
    r = call(broker, 1, 4, body)
    r.take(">i")
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    _, err, _hw, _lso = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q")
    n = r.take(">i")
    for _ in range(max(n, 0)):
        r.take(">q"), r.take(">q")
    size = r.take(">i")
    return err, r.d[r.o:r.o + max(size, 0)]


def fetch_in_session(broker, name, partition=0):
    """Fetch v7 opening a session (epoch 0): (error, record bytes) of the one partition."""
    body = struct.pack(">iiiibii", -1, 0, 0, 1 << 20, 0, 0, 0) + struct.pack(">i", 1) + s16(name)
    body += struct.pack(">iiqqi", 1, partition, 0, -1, 1 << 20) + struct.pack(">i", 0)
    r = call(broker, 1, 7, body)
    r.take(">i"), r.take(">h"), r.take(">i")
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    _, err, _hw, _lso, _start = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q"), r.take(">q")
    n = r.take(">i")
    for _ in range(max(n, 0)):
        r.take(">q"), r.take(">q")
    size = r.take(">i")
    return err, r.d[r.o:r.o + max(size, 0)]


def heartbeat(broker, group):
    """Heartbeat v0 of an unknown member: the error."""
    r = call(broker, 12, 0, s16(group) + struct.pack(">i", 1) + s16(b"m"))
    return r.take(">h")


def delete_topics(broker, name):
    """DeleteTopics v1: the error."""
    r = call(broker, 20, 1, struct.pack(">i", 1) + s16(name) + struct.pack(">i", 30000))
    r.take(">i")
    assert r.take(">i") == 1 and r.s16() == name
    return r.take(">h")


def delete_records(broker, name, partition, offset):
    """DeleteRecords v0: (error, low watermark)."""
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">iiq", 1, partition, offset)
    r = call(broker, 21, 0, body + struct.pack(">i", 30000))
    r.take(">i")
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    _, low, err = r.take(">i"), r.take(">q"), r.take(">h")
    return err, low


def offset_commit(broker, group, name, offset):
    """OffsetCommit v2 as a simple (generation -1) commit: the partition's error."""
    body = s16(group) + struct.pack(">i", -1) + s16(b"") + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + s16(name) + struct.pack(">iiq", 1, 0, offset) + s16(b"")
    r = call(broker, 8, 2, body)
    assert r.take(">i") == 1 and r.s16() == name and r.take(">i") == 1
    r.take(">i")
    return r.take(">h")


def offset_fetch(broker, group, name):
    """OffsetFetch v3 for partition 0: (top-level error, partition error, offset); a group-level
    error has no topics (as Kafka answers it from v2)."""
    body = s16(group) + struct.pack(">i", 1) + s16(name) + struct.pack(">ii", 1, 0)
    r = call(broker, 9, 3, body)
    r.take(">i")
    if r.take(">i") == 0:
        return r.take(">h"), None, None
    assert r.s16() == name and r.take(">i") == 1
    _, off, _meta, perr = r.take(">i"), r.take(">q"), r.s16(), r.take(">h")
    return r.take(">h"), perr, off


# ---- item 10: internal topics ---------------------------------------------------------------

def test_internal_topics_refuse_client_writes(broker):
    """Produce to __consumer_offsets (a forged commit would be loaded after a restart) answers
    INVALID_TOPIC_EXCEPTION as Kafka's ReplicaManager does; DeleteRecords and DeleteTopics of it
    are refused too, and nothing reaches its log."""
    assert create_topics(broker, b"t10")[0] == 0
    assert offset_commit(broker, b"g10", b"t10", 5) == 0  # the coordinator makes the topic
    md = metadata(broker, [b"__consumer_offsets"], auto_create=False)
    assert md[b"__consumer_offsets"][0] == 0
    before = [log_end(broker, b"__consumer_offsets", p) for p in range(4)]
    for p in range(4):
        err, base = produce(broker, b"__consumer_offsets", p, [b"forged"])
        assert (err, base) == (INVALID_TOPIC_EXCEPTION, -1)
    assert [log_end(broker, b"__consumer_offsets", p) for p in range(4)] == before
    assert delete_records(broker, b"__consumer_offsets", 0, -1) == (INVALID_TOPIC_EXCEPTION, -1)
    assert delete_topics(broker, b"__consumer_offsets") == INVALID_TOPIC_EXCEPTION
    assert [log_end(broker, b"__consumer_offsets", p) for p in range(4)] == before
    broker.restart()
    assert offset_fetch(broker, b"g10", b"t10") == (0, 0, 5)


def test_internal_topic_names_cannot_be_created_by_clients(broker):
    """Before the coordinator made it, a client may not create __consumer_offsets (with its own
    partition count and 7-day retention it would lose commits) nor __transaction_state, by
    CreateTopics or by Metadata auto-creation."""
    for name in (b"__consumer_offsets", b"__transaction_state", b"__cluster_metadata"):
        err, msg = create_topics(broker, name, 3)
        assert err == INVALID_REQUEST, (name, err, msg)
        assert msg == b"Creation of internal topic %s is prohibited." % name
        md = metadata(broker, [name], auto_create=True)
        assert md[name][0] != 0, md
    assert metadata(broker, None) == {}
    # The coordinator still makes its topic with offsets.topic.num.partitions.
    assert create_topics(broker, b"t10")[0] == 0
    assert offset_commit(broker, b"g10", b"t10", 1) == 0
    assert metadata(broker, [b"__consumer_offsets"], auto_create=False)[b"__consumer_offsets"] == (0, 4)


# ---- item 11: names are length-counted bytes ------------------------------------------------

def test_topic_name_with_nul_never_aliases(broker):
    assert create_topics(broker, b"a", 1)[0] == 0
    assert produce(broker, b"a", 0, [b"x"]) == (0, 0)
    evil = b"a\x00b"
    err, msg = create_topics(broker, evil, 1)
    assert err == INVALID_TOPIC_EXCEPTION, (err, msg)
    assert msg is not None and b"contains one or more characters other than" in msg
    assert metadata(broker, [evil])[evil][0] == INVALID_TOPIC_EXCEPTION
    # Kafka answers a topic it does not have with UNKNOWN_TOPIC_OR_PARTITION; a NUL name
    # can never be one, and it must not reach "a".
    assert produce(broker, evil, 0, [b"y"]) == (UNKNOWN_TOPIC_OR_PARTITION, -1)
    assert log_end(broker, evil) == (UNKNOWN_TOPIC_OR_PARTITION, -1)
    assert fetch(broker, evil) == (UNKNOWN_TOPIC_OR_PARTITION, b"")
    assert fetch_in_session(broker, evil) == (UNKNOWN_TOPIC_OR_PARTITION, b"")
    assert len(fetch_in_session(broker, b"a")[1]) > 0
    assert delete_records(broker, evil, 0, -1)[0] == UNKNOWN_TOPIC_OR_PARTITION
    assert offset_commit(broker, b"g11", evil, 9) == UNKNOWN_TOPIC_OR_PARTITION
    assert offset_commit(broker, b"g11", b"a", 1) == 0
    assert offset_fetch(broker, b"g11", evil) == (0, 0, -1)
    assert delete_topics(broker, evil) == UNKNOWN_TOPIC_OR_PARTITION
    # "a" is untouched: one record, still there, its commit intact.
    assert log_end(broker, b"a") == (0, 1)
    assert fetch(broker, b"a")[0] == 0 and len(fetch(broker, b"a")[1]) > 0
    assert offset_fetch(broker, b"g11", b"a") == (0, 0, 1)
    assert set(metadata(broker, None)) == {b"a", b"__consumer_offsets"}


def test_group_id_with_nul_is_refused(broker):
    assert create_topics(broker, b"a", 1)[0] == 0
    assert offset_commit(broker, b"g", b"a", 3) == 0
    assert offset_commit(broker, b"g\x00x", b"a", 99) == INVALID_GROUP_ID
    assert offset_fetch(broker, b"g\x00x", b"a") == (INVALID_GROUP_ID, None, None)
    assert offset_fetch(broker, b"g", b"a") == (0, 0, 3)
    assert heartbeat(broker, b"g\x00x") == INVALID_GROUP_ID
    assert heartbeat(broker, b"g") != INVALID_GROUP_ID


def test_invalid_names_refused_everywhere_they_create(broker):
    for name in (b"", b".", b"..", b"x" * 250, b"sp ace", b"sl/ash", b"\xc3\xa9"):
        err, _ = create_topics(broker, name, 1)
        assert err == INVALID_TOPIC_EXCEPTION, name
        if name:
            assert metadata(broker, [name])[name][0] == INVALID_TOPIC_EXCEPTION, name
    assert metadata(broker, None) == {}


def test_topic_names_colliding_after_dot_underscore_are_refused(broker):
    assert create_topics(broker, b"c.d", 1)[0] == 0
    err, msg = create_topics(broker, b"c_d", 1)
    assert (err, msg) == (INVALID_TOPIC_EXCEPTION, b"Topic 'c_d' collides with existing topic: c.d")
    assert create_topics(broker, b"c.d", 1)[0] == 36  # TOPIC_ALREADY_EXISTS wins, as in Kafka
    assert metadata(broker, [b"c_d"])[b"c_d"][0] != 0  # nor by auto-creation
    assert set(metadata(broker, None)) == {b"c.d"}
    assert create_topics(broker, b"cxd", 1)[0] == 0  # only '.' and '_' collide


# ---- item 6: a big CreateTopics neither holds the loop nor exhausts descriptors -------------

def test_big_create_topics_keeps_serving_others(broker):
    """5,000 partitions take seconds to create: other clients are answered meanwhile (the
    topic is not shown before all its partitions exist), and the creator gets its answer once
    they all do."""
    import threading
    import time
    result = {}

    def creator():
        t0 = time.monotonic()
        result["create"] = create_topics(broker, b"big", 5000, timeout=300)
        result["done_at"] = time.monotonic()
        result["took"] = result["done_at"] - t0

    th = threading.Thread(target=creator)
    th.start()
    seen = []  # (time answered, latency, error of "big" in Metadata)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as s:
        corr = 0
        while th.is_alive() or not seen:
            corr += 1
            body = struct.pack(">i", 1) + s16(b"big") + struct.pack(">b", 0)
            hdr = struct.pack(">hhih", 3, 4, corr, 4) + b"test"
            t0 = time.monotonic()
            s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
            data = _recv(s, struct.unpack(">i", _recv(s, 4))[0])
            t1 = time.monotonic()
            r = Resp(data[4:])
            r.take(">i")
            for _ in range(r.take(">i")):
                r.take(">i"), r.s16(), r.take(">i"), r.s16()
            r.s16(), r.take(">i")
            assert r.take(">i") == 1
            err, name = r.take(">h"), r.s16()
            assert name == b"big"
            seen.append((t1, t1 - t0, err))
            time.sleep(0.02)
    th.join()
    assert result["create"] == (0, None), result
    during = [x for x in seen if x[0] < result["done_at"]]
    assert result["took"] > 0.5, result  # long enough that answers during it mean something
    assert len(during) >= 5, (len(during), result)
    # Never a half-made topic: not ready (LEADER_NOT_AVAILABLE / unknown) until it is whole.
    assert all(err in (3, 5) for _, _, err in during[:-1]), during
    assert max(lat for _, lat, _ in during) < 1.0, max(lat for _, lat, _ in during)
    assert metadata(broker, [b"big"], auto_create=False)[b"big"] == (0, 5000)
    assert produce(broker, b"big", 4999, [b"last"]) == (0, 0)


def test_create_topics_that_cannot_fit_the_fd_limit_is_refused_up_front(broker):
    """With 512 descriptors, 2,000 partitions cannot be open at once: refused before anything
    is made (POLICY_VIOLATION, Kafka's answer to an operation too large), not after running
    out of descriptors halfway; a topic that fits is still created."""
    import resource
    resource.prlimit(broker.proc.pid, resource.RLIMIT_NOFILE, (512, 512))
    err, msg = create_topics(broker, b"huge", 2000)
    assert err == 44, (err, msg)  # POLICY_VIOLATION
    assert b"file descriptors" in msg and b"ulimit -n" in msg, msg
    assert not any(d.startswith("huge-") for d in os.listdir(broker.data_dir))
    assert metadata(broker, [b"huge"], auto_create=False)[b"huge"][0] == UNKNOWN_TOPIC_OR_PARTITION
    assert create_topics(broker, b"fits", 100) == (0, None)
    assert metadata(broker, [b"fits"], auto_create=False)[b"fits"] == (0, 100)


def test_shutdown_during_a_big_create_topics_leaves_no_half_topic(broker):
    import threading
    import time
    th = threading.Thread(target=lambda: _ignore_errors(create_topics, broker, b"half", 5000))
    th.start()
    time.sleep(0.5)
    assert broker.stop() == 0
    th.join()
    assert not any(d.startswith("half-") for d in os.listdir(broker.data_dir))
    broker.start()
    assert metadata(broker, None) == {}


def _ignore_errors(fn, *args):
    try:
        fn(*args)
    except (OSError, AssertionError, struct.error):
        pass
