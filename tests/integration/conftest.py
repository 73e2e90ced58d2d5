"""Fixtures that run a real gregor broker process for integration tests.

`broker` gives a fresh broker on a free loopback port with its own data dir; it can be
stopped, killed with SIGKILL and restarted on the same data. Tests drive it with real clients.
"""
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREGOR = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_free_ports():
    """A port P with P+1 free too (Kafka's harnesses put its controller on P+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def cleaner_checkpoint(broker):
    """The broker's log dir cleaner-offset-checkpoint (Kafka's format):
    {(topic, partition): offset}, {} before the cleaner wrote one."""
    path = os.path.join(broker.data_dir, "cleaner-offset-checkpoint")
    if not os.path.exists(path):
        return {}
    lines = open(path).read().split("\n")
    got = {}
    for line in lines[2:2 + int(lines[1])]:
        t, p, o = line.split(" ")
        got[(t, int(p))] = int(o)
    return got


def api_versions_ok(port, timeout=0.5):
    """True when the port answers an ApiVersions v0 request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
            s.sendall(struct.pack(">i", len(body)) + body)
            hdr = s.recv(4)
            return len(hdr) == 4
    except OSError:
        return False


class Broker:
    def __init__(self, data_dir, port=None, overrides=None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.overrides = dict(overrides or {})
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data_dir), "broker-%d.log" % self.port)
        self.log_file = None

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def args(self):
        a = [GREGOR, "serve",
             "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
             "--override", "log.dirs=%s" % self.data_dir,
             "--override", "group.initial.rebalance.delay.ms=0",
             "--override", "offsets.topic.num.partitions=4"]
        for k, v in self.overrides.items():
            a += ["--override", "%s=%s" % (k, v)]
        return a

    def ready(self):
        """Whether the broker answers ApiVersions (start polls this; a subclass may check otherwise)."""
        return api_versions_ok(self.port)

    def start(self, timeout=15):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if self.ready():
                return self
            time.sleep(0.05)
        raise RuntimeError("broker did not answer within %ss:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self, timeout=20):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log_file.close()
        return rc

    def kill9(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.log_file.close()

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def run_client_check(cmd, broker, mode, name, timeout=200, cwd=None):
    """Runs a client check program (Java, kafkajs, franz-go) that prints one "OK <mode> k=v ..."
    line on success; returns its k=v pairs. A failure shows the program's output and the
    broker's log."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "%s %s exited %s\nstdout:\n%s\nstderr:\n%s\nbroker log:\n%s" % (
        name, mode, p.returncode, p.stdout[-4000:], p.stderr[-8000:], broker.log())
    ok = [line for line in p.stdout.splitlines() if line.startswith("OK " + mode)]
    assert len(ok) == 1, p.stdout
    return dict(re.findall(r"(\w+)=(\S+)", ok[0]))


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path / "data"))
    b.start()
    yield b
    alive = b.alive()
    rc = b.stop()
    # A broker that crashed during the test fails it, whatever the test itself saw.
    assert alive, "broker died during the test:\n" + b.log()
    assert rc == 0, "broker exited %s on SIGTERM:\n%s" % (rc, b.log())


@pytest.fixture
def broker_factory(tmp_path):
    made = []

    def make(**overrides):
        b = Broker(str(tmp_path / ("data%d" % len(made))), overrides=overrides)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()
