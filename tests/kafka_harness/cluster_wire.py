"""Metadata v12 by hand, for comparing gregor and Kafka brokers field by field (no client hides
a field or retries): used by tests/integration/test_cluster_vs_kafka.py and bench/cluster.py.
Needs tests/integration on sys.path (kafka_wire's flexible encodings)."""
from kafka_wire import cstr, flexible_call, uvarint


def metadata_v12(bootstrap, topics=None):
    """{"brokers": {id: (host, port)}, "cluster_id", "controller_id", "topics": {name: {...}}}."""
    if topics is None:
        body = uvarint(0)  # null: every topic
    else:
        body = uvarint(len(topics) + 1)
        for t in topics:
            body += b"\0" * 16 + cstr(t) + uvarint(0)  # topic id (zero), name, tags
    body += b"\0\0" + uvarint(0)  # no auto-creation, no authorized operations, tags
    r = flexible_call(bootstrap, 3, 12, body)
    r.take(">i")  # throttle
    brokers = {}
    for _ in range(r.uvarint() - 1):
        node = r.take(">i")
        host = r.cstr()
        port = r.take(">i")
        r.cstr()  # rack
        r.tags()
        brokers[node] = (host, port)
    cluster_id = r.cstr()
    controller = r.take(">i")
    out_topics = {}
    for _ in range(r.uvarint() - 1):
        err = r.take(">h")
        name = r.cstr()
        topic_id = r.raw(16)
        internal = r.take(">?")
        parts = {}
        for _ in range(r.uvarint() - 1):
            perr = r.take(">h")
            index = r.take(">i")
            leader = r.take(">i")
            epoch = r.take(">i")
            lists = []
            for _ in range(3):  # replicas, isr, offline replicas
                lists.append([r.take(">i") for _ in range(r.uvarint() - 1)])
            r.tags()
            parts[index] = {"error": perr, "leader": leader, "leader_epoch": epoch,
                            "replicas": lists[0], "isr": lists[1], "offline": lists[2]}
        r.take(">i")  # authorized operations
        r.tags()
        out_topics[name] = {"error": err, "topic_id": topic_id, "internal": internal,
                            "partitions": parts}
    return {"brokers": brokers, "cluster_id": cluster_id, "controller_id": controller,
            "topics": out_topics}


def create_topics_v4(bootstrap, name, partitions, replication_factor, timeout_ms=5000):
    """One CreateTopics v4 (non-flexible) for one topic: (error code, error message)."""
    import socket
    import struct
    from kafka_wire import _request, s16
    body = (struct.pack(">i", 1) + s16(name) + struct.pack(">ihii", partitions,
                                                           replication_factor, 0, 0)
            + struct.pack(">i?", timeout_ms, False))
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_ms / 1000 + 5) as s:
        resp = _request(s, 19, 4, 1, body)
    # throttle, [name, error_code, error_message]
    (n,) = struct.unpack_from(">h", resp, 8)
    off = 10 + n
    (err,) = struct.unpack_from(">h", resp, off)
    (ml,) = struct.unpack_from(">h", resp, off + 2)
    msg = resp[off + 4:off + 4 + ml].decode() if ml >= 0 else None
    return err, msg
