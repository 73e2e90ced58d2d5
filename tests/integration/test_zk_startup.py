"""A broker's start on ZooKeeper when ZooKeeper stops answering at its registration, as a loaded
machine's ZooKeeper can: the broker started from the tutorial's config/server.properties must
register once ZooKeeper is back (as Kafka, which waits zookeeper.connection.timeout.ms from the
disconnection), or exit with a clear error after that timeout, never hang; and, as Kafka, it
answers no request before it has started (test_tutorial took an answered ApiVersions for a
started broker and read its log while it was still registering).

ZooKeeper is paused with SIGSTOP at a known point: a small proxy between the broker and ZooKeeper
forwards every byte and stops ZooKeeper the moment the broker's create of /brokers/ids/0 passes.
"""
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import GREGOR, ROOT, api_versions_ok, free_port
from zk_fixture import ZkReader, ZooKeeperServer, zookeeper_available

if not zookeeper_available():
    pytest.fail("ZooKeeper (Debian's zookeeper package and java) is needed: make test-deps",
                pytrace=False)

SESSION_MS = 6000
# Longer than the session: before, a step's bound was one session from its start, whatever
# the connection did; the margin also keeps the tests steady on a loaded machine.
CONNECTION_MS = 10000
REGISTRATION = b"/brokers/ids/0"


class PausingProxy:
    """127.0.0.1:port -> ZooKeeper; the first client bytes holding `trigger` SIGSTOP ZooKeeper
    (before they are forwarded) for pause_s seconds (None: until close). Bounded: one thread,
    ended by close()."""

    def __init__(self, zk, trigger, pause_s):
        self.zk, self.trigger, self.pause_s = zk, trigger, pause_s
        self.paused_at = None
        self.resumed_at = None
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _pause(self):
        os.kill(self.zk.proc.pid, signal.SIGSTOP)
        self.paused_at = time.time()

    def _resume(self):
        if self.paused_at is not None and self.resumed_at is None:
            os.kill(self.zk.proc.pid, signal.SIGCONT)
            self.resumed_at = time.time()

    def _run(self):
        peers = {}
        while not self.stop:
            if (self.paused_at is not None and self.pause_s is not None and
                    time.time() >= self.paused_at + self.pause_s):
                self._resume()
            for key, _ in self.sel.select(0.05):
                s = key.fileobj
                if s is self.lsock:
                    c, _ = self.lsock.accept()
                    try:
                        u = socket.create_connection(("127.0.0.1", self.zk.port), timeout=2)
                    except OSError:
                        c.close()
                        continue
                    peers[c], peers[u] = u, c
                    self.sel.register(c, selectors.EVENT_READ, "client")
                    self.sel.register(u, selectors.EVENT_READ, "server")
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                other = peers.get(s)
                if not data or other is None:
                    for x in (s, other):
                        if x is not None and x in peers:
                            self.sel.unregister(x)
                            peers.pop(x, None)
                            x.close()
                    continue
                if key.data == "client" and self.paused_at is None and self.trigger in data:
                    self._pause()
                try:
                    other.sendall(data)  # to a stopped ZooKeeper: its socket buffer takes it
                except OSError:
                    pass
        for s in list(peers):
            s.close()
        self.lsock.close()

    def close(self):
        self.stop = True
        self.thread.join(10)
        self._resume()


def start_broker(tmp_path, connect):
    """gregor on the tutorial's config/server.properties, as kafka-server-start.sh starts it."""
    port = free_port()
    log_path = tmp_path / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [GREGOR, "serve", os.path.join(ROOT, "config", "server.properties"),
         "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
         "--override", "zookeeper.connect=%s" % connect,
         "--override", "zookeeper.session.timeout.ms=%d" % SESSION_MS,
         "--override", "zookeeper.connection.timeout.ms=%d" % CONNECTION_MS,
         "--override", "log.dirs=%s" % (tmp_path / "kafka-logs")],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, port, log_path


def stop_broker(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def zk():
    server = ZooKeeperServer().start()
    yield server
    try:
        os.kill(server.proc.pid, signal.SIGCONT)
    except (OSError, AttributeError):
        pass
    server.stop()


def test_broker_registers_once_zookeeper_is_back(tmp_path, zk):
    """ZooKeeper stopped at the registration for longer than the session: the client loses the
    connection (2/3 of the session timeout), the session expires, and the broker must register
    on a new session once ZooKeeper answers again, within the connection timeout counted from
    the disconnection (before: it gave up a session timeout after its registration began)."""
    pause_s = SESSION_MS / 1000 + 2
    proxy = PausingProxy(zk, REGISTRATION, pause_s)
    proc, port, log_path = start_broker(tmp_path, "localhost:%d" % proxy.port)
    try:
        deadline = time.time() + pause_s + 20
        answered_while_registering = None
        while time.time() < deadline and proc.poll() is None:
            if "started (kafka.server.KafkaServer)" in log_path.read_text():
                break
            if (proxy.paused_at is not None and proxy.resumed_at is None and
                    answered_while_registering is None):
                # As Kafka: listening (the port is the registration's), answering nothing yet.
                answered_while_registering = api_versions_ok(port, timeout=1.0)
            time.sleep(0.1)
        text = log_path.read_text()
        assert answered_while_registering is False, text
        assert proxy.paused_at is not None, "ZooKeeper was never paused:\n" + text
        assert proxy.resumed_at is not None, text
        assert proc.poll() is None, "the broker exited (%s):\n%s" % (proc.returncode, text)
        assert "started (kafka.server.KafkaServer)" in text, "not started:\n" + text
        assert api_versions_ok(port)
        # Registered on a live session, with its own address.
        r = ZkReader(zk.connect)
        try:
            data, stat = r.get("/brokers/ids/0")
        finally:
            r.close()
        assert stat["ephemeral_owner"] != 0 and b'"port":%d' % port in data, data
        # Not silent meanwhile: the wait said what it waited for.
        assert "Waiting to register broker 0" in text, text
    finally:
        proxy.close()
        stop_broker(proc)


@pytest.mark.parametrize("trigger,step", [(REGISTRATION, "cannot register"),
                                          (b"/config/brokers/", "cannot open the log dirs")])
def test_broker_exits_clearly_when_zookeeper_stays_away(tmp_path, zk, trigger, step):
    """ZooKeeper stopped for good at the registration, or at the read of the dynamic broker
    configs: the broker exits 1 (no sanitizer report either: what it opened is closed) within
    the connection timeout after the disconnection, with Kafka's
    ZooKeeperClientTimeoutException."""
    proxy = PausingProxy(zk, trigger, None)
    proc, port, log_path = start_broker(tmp_path, "localhost:%d" % proxy.port)
    try:
        t0 = time.time()
        # Bound: disconnection (2/3 session) + connection timeout, plus slack for a loaded machine.
        rc = proc.wait((SESSION_MS + CONNECTION_MS) / 1000 + 20)
        took = time.time() - t0
        text = log_path.read_text()
        assert proxy.paused_at is not None, "ZooKeeper was never paused:\n" + text
        assert rc == 1, text
        assert "ZooKeeperClientTimeoutException" in text and step in text, text
        assert not re.search(r"==\d+==ERROR", text), text  # no sanitizer report
        assert "started (kafka.server.KafkaServer)" not in text
        # Not before ZooKeeper was given the connection timeout after the disconnection.
        assert took >= SESSION_MS / 1000 * (2 / 3) + CONNECTION_MS / 1000 - 1, (took, text)
    finally:
        proxy.close()
        stop_broker(proc)
