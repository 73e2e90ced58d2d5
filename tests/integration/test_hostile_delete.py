"""Big topic deletions (issue 12): DeleteTopics of a topic with thousands of partitions must not
hold the loop. As Kafka (KRaft), the topic is gone from every lookup, and its name free, once
the deletion is committed, and the request is answered then; the partition dirs are renamed to
Kafka's `<topic>-<partition>.<uuid>-delete` and removed a bounded slice of time per loop turn.
A shutdown or a kill -9 in the middle never brings the topic back. Raw-wire requests, so the
test sees each answer's timing."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_hostile_create import in_background, partition_dirs, ping_while  # noqa: E402
from test_hostile_names import create_topics, fetch, log_end, metadata, produce  # noqa: E402
from test_hostile_create import delete_topics  # noqa: E402  (DeleteTopics v1: {name: error})

UNKNOWN_TOPIC_OR_PARTITION = 3
BIG = 5000


def dirs_being_deleted(broker):
    return [d for d in os.listdir(broker.data_dir) if d.endswith("-delete")]


def leftovers(broker, name):
    """Partition dirs of name, live or being deleted."""
    prefix = name.decode() + "-"
    return [d for d in os.listdir(broker.data_dir) if d.startswith(prefix)]


def wait_until(cond, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.01)


def big_topic(broker, name, partitions=BIG):
    """A topic with a record in its first and last partitions."""
    assert create_topics(broker, name, partitions, timeout=600) == (0, None)
    for p in (0, partitions - 1):
        assert produce(broker, name, p, [b"old"]) == (0, 0)


def test_big_delete_keeps_serving_others(broker):
    """Deleting a 5,000-partition topic: ApiVersions on another connection are answered
    meanwhile; Metadata stops showing the topic as soon as DeleteTopics is answered; the same
    name can be created at once (its partitions empty: nothing of the old topic is adopted);
    the old partition dirs all go."""
    big_topic(broker, b"huge")
    marks = {}

    def delete_then_wait_for_files():
        t0 = time.monotonic()
        errors = delete_topics(broker, [b"huge"])
        marks["answered"] = time.monotonic() - t0
        marks["metadata"] = metadata(broker, [b"huge"], auto_create=False)[b"huge"]
        marks["listed"] = b"huge" in metadata(broker, None)
        marks["log_end"] = log_end(broker, b"huge", BIG - 1)[0]
        marks["fetch"] = fetch(broker, b"huge", 0)[0]
        marks["recreate"] = create_topics(broker, b"huge", 3)
        marks["produce"] = produce(broker, b"huge", 0, [b"new"])
        marks["in_progress"] = len(dirs_being_deleted(broker)) + len(leftovers(broker, b"huge"))
        wait_until(lambda: not dirs_being_deleted(broker) and
                   partition_dirs(broker, b"huge") == [0, 1, 2], what="the old dirs to go")
        marks["files_gone"] = time.monotonic() - t0
        return errors
    th, out = in_background(delete_then_wait_for_files)
    t0 = time.monotonic()
    seen = ping_while(broker, th)
    assert out.get("value") == {b"huge": 0}, out
    took = out["done_at"] - t0
    longest = max(lat for _, lat in seen)
    print("delete of %d partitions: answered in %.3f s, files gone after %.3f s, %d ApiVersions "
          "answered meanwhile, longest wait %.3f s" % (BIG, marks["answered"],
                                                      marks["files_gone"], len(seen), longest))
    assert took > 0.5, took  # the file work took long enough that answers during it mean something
    assert len(seen) >= 5, (len(seen), took)
    assert longest < 0.5, longest
    # Kafka answers once the deletion is committed, before the files are gone.
    assert marks["in_progress"] > 3, marks
    assert marks["answered"] < took / 2, marks
    # Gone from every lookup at once; the name free at once; nothing old adopted.
    assert marks["metadata"][0] == UNKNOWN_TOPIC_OR_PARTITION, marks
    assert marks["listed"] is False, marks
    assert marks["log_end"] == UNKNOWN_TOPIC_OR_PARTITION, marks
    assert marks["fetch"] == UNKNOWN_TOPIC_OR_PARTITION, marks
    assert marks["recreate"] == (0, None), marks
    assert marks["produce"] == (0, 0), marks
    assert metadata(broker, [b"huge"], auto_create=False)[b"huge"] == (0, 3)
    assert partition_dirs(broker, b"huge") == [0, 1, 2]
    assert sorted(leftovers(broker, b"huge")) == ["huge-0", "huge-1", "huge-2"]
    assert produce(broker, b"huge", 2, [b"new"]) == (0, 0)
    # The recreated topic is what a restart finds.
    broker.restart()
    assert metadata(broker, [b"huge"], auto_create=False)[b"huge"] == (0, 3)
    assert log_end(broker, b"huge", 0) == (0, 1)


def test_many_topics_in_one_delete_keep_serving_others(broker):
    """One DeleteTopics naming many topics is committed at once and its files go in slices."""
    names = [b"many%d" % i for i in range(20)]
    for n in names:
        assert create_topics(broker, n, 250, timeout=600) == (0, None)
    th, out = in_background(lambda: (delete_topics(broker, names), wait_until(
        lambda: not dirs_being_deleted(broker) and not any(leftovers(broker, n) for n in names),
        what="the old dirs to go"))[0])
    t0 = time.monotonic()
    seen = ping_while(broker, th)
    longest = max(lat for _, lat in seen)
    print("delete of 20 x 250 partitions: files gone after %.3f s, longest wait %.3f s" % (
        out["done_at"] - t0, longest))
    assert out.get("value") == {n: 0 for n in names}, out
    assert longest < 0.5, longest
    assert metadata(broker, None) == {}
    assert all(not leftovers(broker, n) for n in names)


def test_shutdown_during_a_big_delete_leaves_no_half_topic(broker):
    big_topic(broker, b"half", 4000)
    assert delete_topics(broker, [b"half"]) == {b"half": 0}
    # Stopped while the files are still being removed.
    assert leftovers(broker, b"half"), "the deletion was over before the shutdown"
    assert broker.stop() == 0  # under ASan, also: nothing of the deletion leaked
    assert partition_dirs(broker, b"half") == []
    broker.start()
    assert b"half" not in metadata(broker, None)
    assert metadata(broker, [b"half"], auto_create=False)[b"half"][0] == UNKNOWN_TOPIC_OR_PARTITION
    wait_until(lambda: not leftovers(broker, b"half"), what="the -delete dirs to go after restart")
    assert create_topics(broker, b"half", 2) == (0, None)
    assert log_end(broker, b"half", 0) == (0, 0)


def test_kill_during_a_big_delete_does_not_bring_the_topic_back(broker):
    big_topic(broker, b"zombie", 4000)
    assert delete_topics(broker, [b"zombie"]) == {b"zombie": 0}
    assert partition_dirs(broker, b"zombie"), "the dirs were all renamed before the kill"
    broker.kill9()
    assert partition_dirs(broker, b"zombie"), "no dir left as it was: the kill came too late"
    broker.start()
    assert b"zombie" not in metadata(broker, None)
    assert metadata(broker, [b"zombie"], auto_create=False)[b"zombie"][0] == \
        UNKNOWN_TOPIC_OR_PARTITION
    assert partition_dirs(broker, b"zombie") == []
    wait_until(lambda: not leftovers(broker, b"zombie"), what="the -delete dirs to go")
    # Once more after a clean restart: still gone, and the name takes a fresh topic.
    broker.restart()
    assert b"zombie" not in metadata(broker, None)
    assert create_topics(broker, b"zombie", 2) == (0, None)
    assert log_end(broker, b"zombie", 0) == (0, 0)


def test_kill_after_recreating_a_deleted_name_keeps_the_new_topic(broker):
    """Deleted, created again at once under the same name, then kill -9 while the old one's
    files are still going: the new topic comes back as it was, the old one does not."""
    big_topic(broker, b"again", 4000)
    assert delete_topics(broker, [b"again"]) == {b"again": 0}
    assert create_topics(broker, b"again", 2) == (0, None)
    assert produce(broker, b"again", 0, [b"new"]) == (0, 0)
    assert produce(broker, b"again", 1, [b"new"]) == (0, 0)
    broker.kill9()
    broker.start()
    assert metadata(broker, [b"again"], auto_create=False)[b"again"] == (0, 2)
    assert log_end(broker, b"again", 0) == (0, 1)
    assert log_end(broker, b"again", 1) == (0, 1)
    wait_until(lambda: not dirs_being_deleted(broker), what="the -delete dirs to go")  # startup
    assert sorted(leftovers(broker, b"again")) == ["again-0", "again-1"]


def test_parked_fetch_and_produce_during_a_delete(broker):
    """A fetch long-polling a partition of the topic being deleted is answered (the topic
    unknown) and never reads a partition being freed (ASan); a produce to the deleted name
    right after is refused, not appended into the old partition."""
    import socket
    import struct
    from kafka_wire import Reader, frame, read_frame, s16
    big_topic(broker, b"parked", 2000)
    body = struct.pack(">iiiib", -1, 3000, 1 << 20, 1 << 20, 0) + struct.pack(">i", 1)
    body += s16(b"parked") + struct.pack(">iiqi", 1, 1999, 1, 1 << 20)  # waits past the record
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as s:
        s.sendall(frame(1, 4, 5, body))
        time.sleep(0.2)  # parked
        assert delete_topics(broker, [b"parked"]) == {b"parked": 0}
        assert produce(broker, b"parked", 1999, [b"late"])[0] == UNKNOWN_TOPIC_OR_PARTITION
        corr, resp = read_frame(s)
    assert corr == 5
    r = Reader(resp)
    r.take(">i")
    assert r.take(">i") == 1 and r.s16() == b"parked" and r.take(">i") == 1
    assert (r.take(">i"), r.take(">h")) == (1999, UNKNOWN_TOPIC_OR_PARTITION)
    wait_until(lambda: not leftovers(broker, b"parked"), what="the old dirs to go")
