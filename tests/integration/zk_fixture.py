"""A real standalone ZooKeeper for the cluster tests, and a small ZooKeeper client to read it.

ZooKeeperServer starts Debian's ZooKeeper (package `zookeeper`: java and its jars) on a free
loopback port with a temporary dataDir, a small tickTime (so short sessions are allowed) and a
bounded heap; start() waits (bounded) for "ruok" to answer "imok"; stop() ends it and removes the
dir. Tests that need it fail when java or the jars are missing (make test-deps installs them).

ZkReader speaks ZooKeeper's wire protocol (jute) just enough to read what brokers wrote: get
data (with the stat's version and ephemeral owner), list children, create or set a node
(ephemeral too), ping. It is no
client library: one request at a time, no watches, no reconnects.
"""
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import free_port

ZK_JAR = "/usr/share/java/zookeeper.jar"
ZK_CONF_DIR = "/etc/zookeeper/conf"  # log4j.properties of Debian's package
ZK_CLI = "/usr/share/zookeeper/bin/zkCli.sh"
SLF4J_SIMPLE = "/usr/share/java/slf4j-simple.jar"  # the server's log lines (else none)
JAVA = shutil.which("java") or "/usr/bin/java"


def zookeeper_available():
    return os.path.exists(ZK_JAR) and os.access(JAVA, os.X_OK)


def four_letter(port, cmd, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            return out.decode(errors="replace")
    except OSError:
        return ""


class ZooKeeperServer:
    def __init__(self, tick_ms=250, heap_mb=128):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="gregor-zk-")
        self.tick_ms = tick_ms
        self.heap_mb = heap_mb
        self.proc = None
        self.log_path = os.path.join(self.dir, "zookeeper.log")

    @property
    def connect(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=60):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            # Sessions from 2 ticks to 20 ticks (0.5 s .. 5 s by default) are accepted.
            f.write("tickTime=%d\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "maxClientCnxns=0\nadmin.enableServer=false\n"
                    "4lw.commands.whitelist=ruok,srvr,stat\nmaxSessionTimeout=60000\n"
                    % (self.tick_ms, data, self.port))
        cmd = [JAVA, "-Xmx%dm" % self.heap_mb, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Dzookeeper.root.logger=INFO,CONSOLE", "-Dzookeeper.console.threshold=INFO",
               "-cp", ":".join([ZK_CONF_DIR, ZK_JAR] + ([SLF4J_SIMPLE] if os.path.exists(SLF4J_SIMPLE) else [])),
               "org.apache.zookeeper.server.ZooKeeperServerMain", cfg]
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("zookeeper exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.log()))
            if four_letter(self.port, "ruok", 0.5).startswith("imok"):
                try:  # "imok" comes before sessions are served
                    ZkReader(self.connect, 2000).close()
                    return self
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("zookeeper did not answer within %ss:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, remove=True):
        """Ends the server; remove=False keeps its dataDir and port for start() again."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log_file.close()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def zkcli(self, *args, timeout=60):
        """Debian's zkCli.sh against this server: its stdout."""
        p = subprocess.run([ZK_CLI, "-server", self.connect] + list(args), capture_output=True,
                           text=True, timeout=timeout,
                           env=dict(os.environ, JVMFLAGS="-Xmx64m -XX:TieredStopAtLevel=1"))
        return p.stdout


class ZkError(Exception):
    def __init__(self, code, path):
        super().__init__("ZooKeeper error %d on %s" % (code, path))
        self.code = code


NO_NODE = -101
NODE_EXISTS = -110


class ZkReader:
    """One session, requests one at a time (jute framing: int32 length, then the record)."""

    def __init__(self, connect, timeout_ms=10000):
        host, port = connect.split(",")[0].rsplit(":", 1)  # an ensemble: its first server
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.xid = 0
        self._send(struct.pack(">iqiq", 0, 0, timeout_ms, 0) + struct.pack(">i", 16) + b"\0" * 16
                   + b"\0")
        body = self._recv()
        _, _, self.session_id = struct.unpack(">iiq", body[:16])

    def close(self):
        try:
            self.xid += 1
            self._send(struct.pack(">ii", self.xid, -11))
            self._recv()
        except OSError:
            pass
        self.sock.close()

    def _send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recvn(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise OSError("zookeeper closed the connection")
            out += chunk
        return out

    def _recv(self):
        (n,) = struct.unpack(">i", self._recvn(4))
        return self._recvn(n)

    @staticmethod
    def _string(s):
        b = s.encode()
        return struct.pack(">i", len(b)) + b

    def _call(self, op, payload, path):
        self.xid += 1
        self._send(struct.pack(">ii", self.xid, op) + payload)
        while True:
            body = self._recv()
            xid, _, err = struct.unpack(">iqi", body[:16])
            if xid == self.xid:
                break
        if err != 0:
            raise ZkError(err, path)
        return body[16:]

    def get(self, path):
        """(data bytes or None, {"version", "ephemeral_owner", "num_children"})."""
        body = self._call(4, self._string(path) + b"\0", path)
        (n,) = struct.unpack(">i", body[:4])
        data = body[4:4 + n] if n >= 0 else None
        st = body[4 + max(n, 0):]
        czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, dlen, nchildren, pzxid = \
            struct.unpack(">qqqqiiiqiiq", st[:68])
        return data, {"version": version, "ephemeral_owner": owner, "num_children": nchildren}

    def exists(self, path):
        try:
            self.get(path)
            return True
        except ZkError as e:
            if e.code == NO_NODE:
                return False
            raise

    def children(self, path):
        body = self._call(8, self._string(path) + b"\0", path)
        (count,) = struct.unpack(">i", body[:4])
        out, off = [], 4
        for _ in range(max(count, 0)):
            (n,) = struct.unpack(">i", body[off:off + 4])
            out.append(body[off + 4:off + 4 + n].decode())
            off += 4 + n
        return out

    def create(self, path, data=b"", ephemeral=False):
        """A node (ephemeral: this session's, gone when it closes or expires)."""
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + self._string("world") + \
            self._string("anyone")
        self._call(1, self._string(path) + struct.pack(">i", len(data)) + data + acl +
                   struct.pack(">i", 1 if ephemeral else 0), path)

    def set(self, path, data, version=-1):
        """Sets a node's data (at its version; -1: any): the new version."""
        body = self._call(5, self._string(path) + struct.pack(">i", len(data)) + data +
                          struct.pack(">i", version), path)
        return struct.unpack(">i", body[32:36])[0]

    def ping(self):
        """Keeps the session alive (xid -2, no body); the server answers with the same xid."""
        self._send(struct.pack(">ii", -2, 11))
        while struct.unpack(">i", self._recv()[:4])[0] != -2:
            pass


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """Polls pred() until truthy (returns its value) or raises after timeout seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
        except Exception as e:  # a broker restarting, a connection refused: poll again
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("%s not met within %ss (last: %r)" % (what, timeout, last))


def start_brokers(tmp_path, connect, ids=(1, 2, 3), overrides=None, timeout=20):
    """gregor brokers broker.id in ids on zookeeper.connect `connect` (with its chroot), each
    with its log dir tmp_path/data<id> and `overrides`; returns them once every one lists all
    of them and a controller (bounded)."""
    from conftest import Broker
    from confluent_kafka.admin import AdminClient
    brokers = []
    for i in ids:
        ov = dict(overrides or {})
        ov.update({"broker.id": i, "zookeeper.connect": connect})
        b = Broker(str(tmp_path / ("data%d" % i)), overrides=ov)
        brokers.append(b)
        b.start()

    def all_listed():
        for b in brokers:
            md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
            if sorted(md.brokers) != sorted(ids) or md.controller_id not in ids:
                return False
        return True
    wait_until(all_listed, timeout, what="every broker lists the others and a controller")
    return brokers


def _zookeeper_server():
    z = ZooKeeperServer()
    z.start()
    yield z
    z.stop()


# Fixtures to import into a test module: `zookeeper`, one ZooKeeperServer for the module; `zk`, a
# fresh one for each test.
zookeeper = pytest.fixture(_zookeeper_server, scope="module", name="zookeeper")
zk = pytest.fixture(_zookeeper_server, name="zk")


def kafka_harness():
    """tests/kafka_harness/kafka_zk (Apache Kafka in ZooKeeper mode), imported on first use."""
    import sys
    from conftest import ROOT
    sys.path.insert(0, os.path.join(ROOT, "tests", "kafka_harness"))
    import kafka_zk
    return kafka_zk


def kafka_beside(zk, tmp_path, overrides=None):
    """For a side-by-side test: Kafka 3.9's harness module, its classpath, and a Kafka broker
    (not started) on chroot /kafka of zk; chroots /kafka and /gregor are made. Skips the test
    when Kafka's jars cannot be had."""
    kz = kafka_harness()
    try:
        cp = kz.kafka_classpath()
    except Exception as e:  # no Maven cache and no way to fetch it
        pytest.skip("Kafka 3.9's jars: %s" % e)
    r = ZkReader(zk.connect)
    for chroot in ("/kafka", "/gregor"):
        r.create(chroot)
    r.close()
    kafka = kz.KafkaZkBroker(str(tmp_path / "kafka"), 1, free_port(), zk.connect + "/kafka",
                             classpath=cp, overrides=overrides)
    return kz, cp, kafka


def stop_checked(brokers):
    """Stops every broker, then asserts no sanitizer report is in any log (the ASan build)."""
    from cluster_fixture import SANITIZER_MARKS
    for b in brokers:
        b.stop()
    for b in brokers:
        with open(b.log_path, errors="replace") as f:
            text = f.read()
        for bad in SANITIZER_MARKS:
            assert bad not in text, text[text.index(bad):][:3000]


def stop_quietly(brokers, zk=None):
    """A finally's cleanup: every broker stopped whatever state it is in, then ZooKeeper."""
    for b in brokers:
        try:
            b.stop()
        except Exception:
            pass
    if zk is not None:
        zk.stop()


@contextlib.contextmanager
def zk_cluster(tmp_path, chroot, ids=(1, 2, 3), overrides=None, http=True):
    """A fresh ZooKeeper and gregor brokers `ids` under `chroot` (each with its console on a
    free port when http) for one test's with-block: yields {id: Broker}. When the block ends
    every broker is stopped and no sanitizer report may be in any log; when it raises, all is
    only cleaned up."""
    assert zookeeper_available(), "Debian's zookeeper package is missing: make test-deps"
    z = ZooKeeperServer()
    z.start()
    brokers = []
    try:
        ov = dict(overrides or {})
        if http:
            ov.setdefault("gregor.http.listener", "127.0.0.1:0")
        brokers = start_brokers(tmp_path, z.connect + chroot, ids=ids, overrides=ov)
        yield dict(zip(ids, brokers))
        stop_checked(brokers)
    finally:
        stop_quietly(brokers, z)
