"""Big partition changes (issue 12 item 6): CreatePartitions and auto-creation open partitions a
bounded slice of time per loop turn, as CreateTopics does, so other clients are answered
meanwhile; the new partitions show only once all exist; changes that cannot fit the open files
limit are refused up front. Raw-wire requests, so the test sees each answer's timing."""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import _recv  # noqa: E402
from test_hostile_names import call, create_topics, metadata, produce, s16  # noqa: E402

UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
INVALID_PARTITIONS = 37
INVALID_REQUEST = 42
POLICY_VIOLATION = 44
REASSIGNMENT_IN_PROGRESS = 60


def create_partitions(broker, counts, timeout=300, validate_only=False):
    """CreatePartitions v1 for [(name, count)]: [(name, error, message)]."""
    body = struct.pack(">i", len(counts))
    for name, count in counts:
        body += s16(name) + struct.pack(">ii", count, -1)  # null assignments
    body += struct.pack(">ib", 30000, 1 if validate_only else 0)
    r = call(broker, 37, 1, body, timeout=timeout)
    r.take(">i")
    return [(r.s16(), r.take(">h"), r.s16()) for _ in range(r.take(">i"))]


def delete_topics(broker, names):
    """DeleteTopics v1: {name: error}."""
    body = struct.pack(">i", len(names)) + b"".join(s16(n) for n in names)
    r = call(broker, 20, 1, body + struct.pack(">i", 30000))
    r.take(">i")
    return {r.s16(): r.take(">h") for _ in range(r.take(">i"))}


def partition_dirs(broker, name):
    prefix = name.decode() + "-"
    return sorted(int(d[len(prefix):]) for d in os.listdir(broker.data_dir)
                  if d.startswith(prefix) and d[len(prefix):].isdigit())


def in_background(fn, *args):
    """Runs fn(*args) in a thread: (thread, result dict with "value" and "done_at")."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except (OSError, AssertionError, struct.error) as e:
            out["error"] = e
        out["done_at"] = time.monotonic()
    th = threading.Thread(target=run)
    th.start()
    return th, out


def ping_while(broker, th, extra=None):
    """ApiVersions on one connection every 20 ms while th runs (and at least once): a list of
    (time answered, latency). extra(sock, corr) may send one more request per round."""
    seen = []
    with socket.create_connection(("127.0.0.1", broker.port), timeout=60) as s:
        corr = 0
        while th.is_alive() or not seen:
            corr += 1
            hdr = struct.pack(">hhih", 18, 0, corr, 4) + b"test"
            t0 = time.monotonic()
            s.sendall(struct.pack(">i", len(hdr)) + hdr)
            data = _recv(s, struct.unpack(">i", _recv(s, 4))[0])
            t1 = time.monotonic()
            assert struct.unpack(">ih", data[:6]) == (corr, 0)
            seen.append((t1, t1 - t0))
            if extra is not None:
                extra()
            time.sleep(0.02)
    th.join()
    return seen


def wait_for_dirs(broker, name, more_than, timeout=60):
    deadline = time.monotonic() + timeout
    while len(partition_dirs(broker, name)) <= more_than:
        assert time.monotonic() < deadline, "no new partition dir of %s" % name
        time.sleep(0.01)


def test_big_create_partitions_keeps_serving_others(broker):
    """Growing a topic to 5,000 partitions takes seconds: other clients are answered meanwhile,
    the topic keeps showing its old partitions until all new ones exist, and the request is
    answered once they do."""
    assert create_topics(broker, b"grow", 1) == (0, None)
    counts = []  # partitions Metadata showed during the change
    th, out = in_background(create_partitions, broker, [(b"grow", 5000)])
    t0 = time.monotonic()
    seen = ping_while(broker, th, lambda: counts.append(
        metadata(broker, [b"grow"], auto_create=False)[b"grow"]))
    assert out.get("value") == [(b"grow", 0, None)], out
    took = out["done_at"] - t0
    during = [lat for at, lat in seen if at < out["done_at"]]
    assert took > 0.5, took  # long enough that answers during it mean something
    assert len(during) >= 5, (len(during), took)
    assert max(during) < 1.0, max(during)
    # Never a half-grown topic: the old count until all 5,000 exist.
    assert all(c in ((0, 1), (0, 5000)) for c in counts), sorted(set(counts))
    assert counts[0] == (0, 1), counts[:3]
    assert metadata(broker, [b"grow"], auto_create=False)[b"grow"] == (0, 5000)
    assert produce(broker, b"grow", 4999, [b"last"]) == (0, 0)
    assert partition_dirs(broker, b"grow") == list(range(5000))
    # Saved: a restart finds the 5,000 partitions.
    broker.restart()
    assert metadata(broker, [b"grow"], auto_create=False)[b"grow"] == (0, 5000)


def test_create_partitions_that_cannot_fit_the_fd_limit_is_refused_up_front(broker):
    """With 512 descriptors, 2,000 more partitions cannot be open at once: refused before any is
    made (POLICY_VIOLATION), not after running out of descriptors halfway."""
    import resource
    assert create_topics(broker, b"small", 1) == (0, None)
    resource.prlimit(broker.proc.pid, resource.RLIMIT_NOFILE, (512, 512))
    [(name, err, msg)] = create_partitions(broker, [(b"small", 2000)])
    assert (name, err) == (b"small", POLICY_VIOLATION), (err, msg)
    assert b"file descriptors" in msg and b"ulimit -n" in msg, msg
    assert partition_dirs(broker, b"small") == [0]
    assert metadata(broker, [b"small"], auto_create=False)[b"small"] == (0, 1)
    assert create_partitions(broker, [(b"small", 100)]) == [(b"small", 0, None)]
    assert metadata(broker, [b"small"], auto_create=False)[b"small"] == (0, 100)


def test_second_create_partitions_during_a_change(broker):
    """A topic mid-change answers as Kafka's controller, which applies partition changes one
    after the other: no more than the count being reached is INVALID_PARTITIONS; more is
    REASSIGNMENT_IN_PROGRESS (Kafka's answer while a topic's partitions are changing); the
    same topic twice in one request is INVALID_REQUEST."""
    assert create_topics(broker, b"busy", 1) == (0, None)
    th, out = in_background(create_partitions, broker, [(b"busy", 5000)])
    wait_for_dirs(broker, b"busy", 1)
    [(_, err, msg)] = create_partitions(broker, [(b"busy", 5000)])
    assert err == INVALID_PARTITIONS and b"already has 5000" in msg, (err, msg)
    [(_, err, msg)] = create_partitions(broker, [(b"busy", 3)])
    assert err == INVALID_PARTITIONS and b"would not be an increase" in msg, (err, msg)
    [(_, err, msg)] = create_partitions(broker, [(b"busy", 6000)])
    assert err == REASSIGNMENT_IN_PROGRESS, (err, msg)
    assert th.is_alive()  # all of that while the first change was still going on
    th.join()
    assert out.get("value") == [(b"busy", 0, None)], out
    assert metadata(broker, [b"busy"], auto_create=False)[b"busy"] == (0, 5000)
    assert create_partitions(broker, [(b"busy", 5001), (b"busy", 5002)]) == [
        (b"busy", INVALID_REQUEST, b"Duplicate topic name.")]
    assert create_partitions(broker, [(b"busy", 6000)], validate_only=True) == [(b"busy", 0, None)]
    assert metadata(broker, [b"busy"], auto_create=False)[b"busy"] == (0, 5000)


def test_delete_topics_during_a_change(broker):
    """DeleteTopics on a topic whose partitions are being added deletes it, as Kafka (which
    would have applied the change first): the change is dropped, its new partition dirs too, and
    the CreatePartitions is answered."""
    assert create_topics(broker, b"gone", 2) == (0, None)
    th, out = in_background(create_partitions, broker, [(b"gone", 5000)])
    wait_for_dirs(broker, b"gone", 2)
    assert delete_topics(broker, [b"gone"]) == {b"gone": 0}
    th.join()
    assert out.get("value") == [(b"gone", 0, None)], out
    # DeleteTopics is answered once committed; the dirs go over the next loop turns.
    deadline = time.monotonic() + 60
    while partition_dirs(broker, b"gone") != []:
        assert time.monotonic() < deadline, partition_dirs(broker, b"gone")[:5]
        time.sleep(0.01)
    assert metadata(broker, [b"gone"], auto_create=False)[b"gone"][0] == UNKNOWN_TOPIC_OR_PARTITION
    assert create_topics(broker, b"gone", 3) == (0, None)
    assert metadata(broker, [b"gone"], auto_create=False)[b"gone"] == (0, 3)


def test_shutdown_during_a_big_create_partitions_keeps_the_old_partitions(broker):
    assert create_topics(broker, b"half", 2) == (0, None)
    assert produce(broker, b"half", 1, [b"kept"]) == (0, 0)
    th, out = in_background(create_partitions, broker, [(b"half", 5000)])
    wait_for_dirs(broker, b"half", 2)
    assert broker.stop() == 0
    th.join()
    assert partition_dirs(broker, b"half") == [0, 1]
    broker.start()
    assert metadata(broker, [b"half"], auto_create=False)[b"half"] == (0, 2)
    assert produce(broker, b"half", 1, [b"more"]) == (0, 1)


def test_auto_creation_of_a_big_topic_keeps_serving_others(broker_factory):
    """num.partitions may be large (Kafka sets no maximum): Metadata auto-creating a topic
    answers LEADER_NOT_AVAILABLE while its partitions are opened over later loop turns, other
    clients are answered meanwhile, and the topic appears whole."""
    b = broker_factory(**{"num.partitions": 5000}).start()
    t0 = time.monotonic()
    first = metadata(b, [b"auto"])[b"auto"]
    first_took = time.monotonic() - t0
    assert first[0] == LEADER_NOT_AVAILABLE, first
    assert first_took < 1.0, first_took
    counts = []

    def until_whole():
        while True:
            m = metadata(b, [b"auto"])[b"auto"]
            counts.append(m)
            if m[0] == 0:
                return m
            time.sleep(0.05)
    th, out = in_background(until_whole)
    seen = ping_while(b, th)
    assert out.get("value") == (0, 5000), out
    assert len(seen) >= 5, len(seen)
    assert max(lat for _, lat in seen) < 1.0, max(lat for _, lat in seen)
    assert all(c in ((LEADER_NOT_AVAILABLE, 0), (0, 5000)) for c in counts), set(counts)
    assert produce(b, b"auto", 4999, [b"last"]) == (0, 0)
    b.stop()


def test_shutdown_during_a_big_auto_creation_leaves_no_half_topic(broker_factory):
    b = broker_factory(**{"num.partitions": 5000}).start()
    assert metadata(b, [b"auto"])[b"auto"][0] == LEADER_NOT_AVAILABLE
    wait_for_dirs(b, b"auto", 0)
    assert b.stop() == 0  # under ASan, also: nothing of the creation leaked
    assert partition_dirs(b, b"auto") == []
    b.start()
    assert metadata(b, None) == {}
    b.stop()
