"""Brokers on a real ZooKeeper (issue 15, membership and controller): every broker lists every
live broker and the one controller; kill -9 of the controller elects another within the session
timeout plus a little; a broker that dies leaves Metadata and comes back on restart; a second
broker with the same broker.id, an unreachable ZooKeeper and a cluster id that does not match
meta.properties are refused at startup with Kafka's errors; the znodes are Kafka's (read with
Debian's zkCli). Each test uses its own chroot on one ZooKeeper server."""
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from conftest import Broker, free_port
from zk_fixture import ZkReader, ZooKeeperServer, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

# A suite that cannot run is a failure, never a skip (make test-deps installs the package).
if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 3000


def make_broker(tmp_path, zk, chroot, broker_id, name=None, **overrides):
    o = {"broker.id": broker_id, "zookeeper.connect": zk.connect + chroot,
         "zookeeper.session.timeout.ms": SESSION_MS}
    o.update(overrides)
    return Broker(str(tmp_path / (name or "data%d" % broker_id)), overrides=o)


def _read_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("connection closed")
        out += chunk
    return out


def metadata_raw(port, version):
    """Metadata v0..v8 (not flexible) by hand, all topics: ([(id, host, port)], controller or
    None for v0)."""
    topics = struct.pack(">i", 0 if version == 0 else -1)
    body = topics + (b"\1" if version >= 4 else b"") + (b"\0\0" if version >= 8 else b"")
    hdr = struct.pack(">hhih", 3, version, 7, 4) + b"test"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        (n,) = struct.unpack(">i", _read_exact(s, 4))
        d = _read_exact(s, n)
    o = 4 + (4 if version >= 3 else 0)  # correlation id, throttle
    (nb,) = struct.unpack_from(">i", d, o)
    o += 4
    brokers = []
    for _ in range(nb):
        node, hl = struct.unpack_from(">ih", d, o)
        o += 6
        host = d[o:o + hl].decode()
        o += hl
        (p,) = struct.unpack_from(">i", d, o)
        o += 4
        if version >= 1:
            (rl,) = struct.unpack_from(">h", d, o)
            o += 2 + max(rl, 0)
        brokers.append((node, host, p))
    controller = None
    if version >= 2:
        (cl,) = struct.unpack_from(">h", d, o)
        o += 2 + max(cl, 0)
    if version >= 1:
        (controller,) = struct.unpack_from(">i", d, o)
    return sorted(brokers), controller


def admin_view(b):
    """(sorted broker ids, {id: (host, port)}, controller id) as librdkafka's Metadata sees them."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    nodes = {i: (x.host, x.port) for i, x in md.brokers.items()}
    return sorted(nodes), nodes, md.controller_id


def all_agree(brokers, expect_ids):
    """The controller id every broker reports when each lists exactly expect_ids (with their
    real ports) and they agree on one controller among them; else None."""
    ports = {b.overrides["broker.id"]: b.port for b in brokers}
    controllers = set()
    for b in brokers:
        ids, nodes, controller = admin_view(b)
        if ids != sorted(expect_ids):
            return None
        if any(nodes[i][1] != ports[i] for i in ids if i in ports):
            return None
        controllers.add(controller)
    if len(controllers) != 1:
        return None
    c = controllers.pop()
    return c if c in expect_ids else None


def zk_json(zk, path):
    r = ZkReader(zk.connect)
    try:
        data, stat = r.get(path)
        return json.loads(data), stat
    finally:
        r.close()


def zk_children(zk, path):
    r = ZkReader(zk.connect)
    try:
        return sorted(int(x) for x in r.children(path))
    finally:
        r.close()


def test_three_brokers_agree_and_controller_fails_over(tmp_path, zookeeper):
    chroot = "/membership"
    brokers = [make_broker(tmp_path, zookeeper, chroot, i) for i in (1, 2, 3)]
    try:
        for b in brokers:
            b.start()
        controller = wait_until(lambda: all_agree(brokers, [1, 2, 3]), 15,
                                what="all three brokers listed with one controller")
        zc, zstat = zk_json(zookeeper, chroot + "/controller")
        assert zc["brokerid"] == controller
        epoch_before = int(ZkReader(zookeeper.connect).get(chroot + "/controller_epoch")[0])
        assert epoch_before >= 1
        assert zk_children(zookeeper, chroot + "/brokers/ids") == [1, 2, 3]
        # Every Metadata version lists them, with the controller from v1 on.
        for version in (0, 1, 4, 8):
            for b in brokers:
                listed, ctl = metadata_raw(b.port, version)
                assert [x[0] for x in listed] == [1, 2, 3], (version, listed)
                assert sorted(x[2] for x in listed) == sorted(x.port for x in brokers)
                assert ctl == (None if version == 0 else controller)
        # DescribeCluster too.
        from confluent_kafka.admin import AdminClient
        for b in brokers:
            admin = AdminClient({"bootstrap.servers": b.bootstrap})  # alive until the result
            dc = admin.describe_cluster().result(10)
            assert sorted(n.id for n in dc.nodes) == [1, 2, 3]
            assert dc.controller.id == controller

        # kill -9 the controller: its session ends after the timeout, another broker wins.
        dead = next(b for b in brokers if b.overrides["broker.id"] == controller)
        survivors = [b for b in brokers if b is not dead]
        t0 = time.time()
        dead.kill9()
        alive_ids = sorted(b.overrides["broker.id"] for b in survivors)
        new_controller = wait_until(lambda: all_agree(survivors, alive_ids),
                                    SESSION_MS / 1000 + 5, interval=0.2,
                                    what="a new controller among the survivors")
        failover_s = time.time() - t0
        print("controller %d killed: broker %d controller after %.2f s (session %d ms)"
              % (controller, new_controller, failover_s, SESSION_MS))
        assert new_controller != controller
        assert zk_children(zookeeper, chroot + "/brokers/ids") == alive_ids
        assert zk_json(zookeeper, chroot + "/controller")[0]["brokerid"] == new_controller
        epoch_after = int(ZkReader(zookeeper.connect).get(chroot + "/controller_epoch")[0])
        assert epoch_after == epoch_before + 1

        # Restarted, it registers again and every broker lists it; the controller stays.
        dead.start()
        assert wait_until(lambda: all_agree(brokers, [1, 2, 3]), 15,
                          what="the restarted broker listed again") == new_controller
        assert zk_children(zookeeper, chroot + "/brokers/ids") == [1, 2, 3]
    finally:
        for b in brokers:
            alive = b.alive()
            rc = b.stop()
            if alive:
                assert rc == 0, b.log()


def test_clean_shutdown_leaves_at_once(tmp_path, zookeeper):
    """SIGTERM closes the session: the registration and /controller go without waiting for the
    session timeout, and the other broker takes over."""
    chroot = "/shutdown"
    a = make_broker(tmp_path, zookeeper, chroot, 1, **{"zookeeper.session.timeout.ms": 30000})
    b = make_broker(tmp_path, zookeeper, chroot, 2, **{"zookeeper.session.timeout.ms": 30000})
    try:
        a.start()
        b.start()
        controller = wait_until(lambda: all_agree([a, b], [1, 2]), 15, what="two brokers")
        first, other = (a, b) if controller == 1 else (b, a)
        assert first.stop() == 0
        t0 = time.time()
        assert wait_until(lambda: all_agree([other], [other.overrides["broker.id"]]), 5,
                          what="the other broker alone, and controller") == \
            other.overrides["broker.id"]
        assert time.time() - t0 < 5  # far below the 30 s session
    finally:
        a.stop()
        b.stop()


def run_refused(broker, timeout=60):
    """Runs a broker that must refuse to start: (exit code, its output)."""
    p = subprocess.run(broker.args(), capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    assert "ERROR: AddressSanitizer" not in out and "ERROR: LeakSanitizer" not in out, out
    assert "runtime error" not in out, out
    return p.returncode, out


def test_same_broker_id_refused(tmp_path, zookeeper):
    chroot = "/dupid"
    first = make_broker(tmp_path, zookeeper, chroot, 5)
    second = make_broker(tmp_path, zookeeper, chroot, 5, name="second")
    try:
        first.start()
        owner = zk_json(zookeeper, chroot + "/brokers/ids/5")[1]["ephemeral_owner"]
        rc, out = run_refused(second)
        assert rc == 1, out
        assert "Error while creating ephemeral at /brokers/ids/5, node already exists" in out, out
        assert "NodeExists" in out
        # The first keeps its registration (same session) and still serves.
        assert zk_json(zookeeper, chroot + "/brokers/ids/5")[1]["ephemeral_owner"] == owner
        assert first.alive()
        assert admin_view(first)[0] == [5]
    finally:
        first.stop()


def test_unreachable_zookeeper_fails_startup_clearly(tmp_path):
    """Kafka's behaviour: the client retries until zookeeper.connection.timeout.ms, then the
    broker stops with ZooKeeperClientTimeoutException (an error exit, not a crash)."""
    dead_port = free_port()
    b = Broker(str(tmp_path / "data"), overrides={
        "zookeeper.connect": "127.0.0.1:%d" % dead_port,
        "zookeeper.connection.timeout.ms": 2000})
    t0 = time.time()
    rc, out = run_refused(b)
    took = time.time() - t0
    assert rc == 1, out
    assert "Timed out waiting for connection while in state: CONNECTING" in out, out
    assert "127.0.0.1:%d" % dead_port in out
    assert 2.0 <= took < 20, took


def test_cluster_id_mismatch_refused(tmp_path, zookeeper):
    """A log dir of one cluster (meta.properties) does not join another (/cluster/id): Kafka's
    InconsistentClusterIdException."""
    a = make_broker(tmp_path, zookeeper, "/cid-a", 1)
    try:
        a.start()
        first_id = zk_json(zookeeper, "/cid-a/cluster/id")[0]["id"]
    finally:
        assert a.stop() == 0
    # Another cluster with its own id: the same data dir is refused.
    other = ZkReader(zookeeper.connect)
    other.create("/cid-b")
    other.create("/cid-b/cluster")
    other.create("/cid-b/cluster/id", b'{"version":"1","id":"AAAAAAAAAAAAAAAAAAAAAA"}')
    other.close()
    moved = make_broker(tmp_path, zookeeper, "/cid-b", 1)  # data1 again
    rc, out = run_refused(moved)
    assert rc == 1, out
    assert "doesn't match stored clusterId" in out and "InconsistentClusterIdException" in out, out
    assert first_id in out and "AAAAAAAAAAAAAAAAAAAAAA" in out
    r = ZkReader(zookeeper.connect)
    assert r.children("/cid-b/brokers/ids") == []  # it never registered
    r.close()


# The keys Kafka 3.9 (ZooKeeper mode) writes: BrokerIdZNode v5, ControllerZNode v1,
# ClusterIdZNode; /controller_epoch holds the bare number.
KAFKA_BROKER_KEYS = {"features", "listener_security_protocol_map", "endpoints", "jmx_port",
                     "port", "host", "version", "timestamp"}
KAFKA_CONTROLLER_KEYS = {"version", "brokerid", "timestamp"}
KAFKA_CLUSTER_ID_KEYS = {"version", "id"}


def _zkcli_json(zk, path):
    out = zk.zkcli("get", path)
    lines = [line for line in out.splitlines() if line.startswith("{") or line.isdigit()]
    assert lines, out
    print("zkCli get %s -> %s" % (path, lines[0]))
    return json.loads(lines[0])


def test_znodes_as_kafka_writes_them(tmp_path, zookeeper):
    chroot = "/layout"
    b = make_broker(tmp_path, zookeeper, chroot, 3)
    try:
        b.start()
        wait_until(lambda: all_agree([b], [3]), 10, what="the broker is controller")
        reg = _zkcli_json(zookeeper, chroot + "/brokers/ids/3")
        assert set(reg) == KAFKA_BROKER_KEYS
        assert reg["version"] == 5 and reg["jmx_port"] == -1 and reg["features"] == {}
        assert reg["endpoints"] == ["PLAINTEXT://127.0.0.1:%d" % b.port]
        assert reg["listener_security_protocol_map"] == {"PLAINTEXT": "PLAINTEXT"}
        assert (reg["host"], reg["port"]) == ("127.0.0.1", b.port)
        assert isinstance(reg["timestamp"], str) and abs(int(reg["timestamp"]) / 1000 - time.time()) < 60
        ctl = _zkcli_json(zookeeper, chroot + "/controller")
        assert set(ctl) == KAFKA_CONTROLLER_KEYS
        assert ctl["version"] == 1 and ctl["brokerid"] == 3 and isinstance(ctl["timestamp"], str)
        cid = _zkcli_json(zookeeper, chroot + "/cluster/id")
        assert set(cid) == KAFKA_CLUSTER_ID_KEYS and cid["version"] == "1"
        with open(os.path.join(b.data_dir, "meta.properties")) as f:
            assert "cluster.id=%s\n" % cid["id"] in f.read()
        assert _zkcli_json(zookeeper, chroot + "/controller_epoch") >= 1
        r = ZkReader(zookeeper.connect)
        for p in ("/brokers/topics", "/config/topics", "/admin/delete_topics", "/brokers/seqid",
                  "/config/changes", "/isr_change_notification"):
            assert r.exists(chroot + p), p  # Kafka's persistent paths
        assert r.get(chroot + "/brokers/ids/3")[1]["ephemeral_owner"] != 0
        assert r.get(chroot + "/controller_epoch")[1]["ephemeral_owner"] == 0
        r.close()
    finally:
        b.stop()


def test_paused_past_its_session_registers_again(tmp_path, zookeeper):
    """SIGSTOP past the session timeout: ZooKeeper expires the session (the broker leaves
    everyone's Metadata); on SIGCONT the broker starts a new session and registers again."""
    import signal
    chroot = "/expiry"
    brokers = [make_broker(tmp_path, zookeeper, chroot, i) for i in (1, 2)]
    try:
        for b in brokers:
            b.start()
        wait_until(lambda: all_agree(brokers, [1, 2]), 15, what="two brokers")
        paused, other = brokers[1], brokers[0]
        owner = zk_json(zookeeper, chroot + "/brokers/ids/2")[1]["ephemeral_owner"]
        paused.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: zk_children(zookeeper, chroot + "/brokers/ids") == [1],
                       SESSION_MS / 1000 + 5, what="the paused broker's session expired")
            assert wait_until(lambda: all_agree([other], [1]), 5, what="broker 1 alone") == 1
        finally:
            paused.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: zk_children(zookeeper, chroot + "/brokers/ids") == [1, 2], 15,
                   what="broker 2 registered again")
        assert zk_json(zookeeper, chroot + "/brokers/ids/2")[1]["ephemeral_owner"] != owner
        assert wait_until(lambda: all_agree(brokers, [1, 2]), 10, what="both listed again") == 1
        assert "re-registers" in paused.log()
    finally:
        for b in brokers:
            alive = b.alive()
            rc = b.stop()
            if alive:
                assert rc == 0, b.log()


def test_zookeeper_restart_ridden_out(tmp_path):
    """ZooKeeper goes away under two running brokers and comes back on the same data: the
    brokers keep serving meanwhile (no crash, no exit) and are both registered again, with one
    controller, once it is back."""
    zk = ZooKeeperServer()
    zk.start()
    chroot = "/ride"
    brokers = [make_broker(tmp_path, zk, chroot, i) for i in (1, 2)]
    try:
        for b in brokers:
            b.start()
        wait_until(lambda: all_agree(brokers, [1, 2]), 15, what="two brokers")
        zk.stop(remove=False)
        time.sleep(SESSION_MS / 1000 + 1)  # past the session timeout without ZooKeeper
        for b in brokers:
            assert b.alive(), b.log()
            assert admin_view(b)[0]  # still answers Metadata
        zk.start()
        wait_until(lambda: zk_children(zk, chroot + "/brokers/ids") == [1, 2], 20,
                   what="both registered after ZooKeeper's return")
        wait_until(lambda: all_agree(brokers, [1, 2]), 15, what="one controller again")
    finally:
        for b in brokers:
            alive = b.alive()
            rc = b.stop()
            if alive:
                assert rc == 0, b.log()
        zk.stop()


def test_negative_broker_id_refused(tmp_path, zookeeper):
    """broker.id -1 (Kafka's "generate one") is refused with a clear error, not registered as
    /brokers/ids/-1."""
    b = make_broker(tmp_path, zookeeper, "/negid", -1)
    rc, out = run_refused(b)
    assert rc == 1, out
    assert "needs broker.id (or node.id) >= 0" in out, out
    assert not ZkReader(zookeeper.connect).exists("/negid/brokers/ids/-1")
