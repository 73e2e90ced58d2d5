"""The chaos harness's cluster: a 3-node ZooKeeper ensemble (tests/cluster/zk_ensemble.py, on
127.0.0.1) and 3 brokers, gregor or Apache Kafka 3.9 in ZooKeeper mode, broker N listening on
127.0.0.(N+1) with its log dir on its own small tmpfs (so a disk can be filled).

Each broker runs with its own group id (CHAOS_GID_BASE + N, uid stays root; apart per run): the nftables rules
of a network partition match a socket's group (`meta skgid`), which is how one process's
connections are told apart from another's when every one of them leaves from 127.0.0.1.

Everything this module starts or changes is undone by Cluster.close(), even after a failure:
SIGCONT to paused brokers, SIGKILL to brokers, ZooKeeper stopped, tmpfs unmounted, nft table
deleted (the nemesis owns the table; close() calls its cleanup).
"""
import logging
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
sys.path.insert(0, os.path.join(ROOT, "tests", "kafka_harness"))
from zk_ensemble import ZkEnsemble  # noqa: E402
import kafka_zk  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

TOPIC = "chaos"
PARTITIONS = 6
REPLICATION = 3
TOPIC_CONFIGS = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false",
                 "segment.bytes": str(4 << 20)}
# Group ids of this run's brokers: CHAOS_GID_BASE + N, apart from any other run's on the machine
# (the nft rules match them).
CHAOS_GID_BASE = 61000 + 4 * (os.getpid() % 1000)
SESSION_TIMEOUT_MS = 6000
DISK_MB = 192
# The same broker settings on both systems: a short ZooKeeper session (faults come and go within
# a cycle), a follower out of the ISR after 10 s instead of 30 s, no waiting for groups.
BROKER_SETTINGS = {
    "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
    "zookeeper.connection.timeout.ms": 30000,
    "replica.lag.time.max.ms": 10000,
    "offsets.topic.replication.factor": 3,
    "offsets.topic.num.partitions": 4,
    "group.initial.rebalance.delay.ms": 0,
    "unclean.leader.election.enable": "false",
}


# librdkafka's own log lines (every refused connection while a broker is down) go to the run
# directory's clients.log (log_clients_to), not to the terminal.
CLIENT_LOG = logging.getLogger("chaos.clients")
CLIENT_LOG.propagate = False


def log_clients_to(path):
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    CLIENT_LOG.addHandler(h)
    CLIENT_LOG.setLevel(logging.DEBUG)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port_on(hosts):
    """A port free on each of hosts (tried from the ephemeral range of the first)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts[1:]:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % hosts)


class Broker:
    """One broker process of either system. kill9/stop/start/pause/resume; its disk (a tmpfs)."""

    def __init__(self, system, node_id, directory, port, zk_connect, gregor_bin=None,
                 classpath=None):
        self.system = system
        self.id = node_id
        self.host = "127.0.0.%d" % (node_id + 1)
        self.port = port
        self.dir = directory
        self.disk = os.path.join(directory, "disk")
        self.data_dir = os.path.join(self.disk, "data")
        self.filler = os.path.join(self.disk, "filler")
        self.zk_connect = zk_connect
        self.gregor_bin = gregor_bin
        self.classpath = classpath
        self.gid = CHAOS_GID_BASE + node_id
        self.proc = None
        self.paused = False
        self.log_path = os.path.join(directory, "broker.log")
        self.mounted = False
        self.start_crashes = []  # "broker N killed by SIGSEGV while starting"

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def mount_disk(self):
        os.makedirs(self.disk, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % DISK_MB, "tmpfs",
                        self.disk], check=True)
        self.mounted = True
        os.makedirs(self.data_dir, exist_ok=True)

    def unmount_disk(self):
        if self.mounted:
            if subprocess.run(["umount", self.disk]).returncode != 0:
                subprocess.run(["umount", "-l", self.disk])
            self.mounted = False

    def _command(self):
        listener = "PLAINTEXT://%s:%d" % (self.host, self.port)
        if self.system == "gregor":
            settings = dict(BROKER_SETTINGS, **{
                "broker.id": self.id, "zookeeper.connect": self.zk_connect,
                "listeners": listener, "advertised.listeners": listener,
                "log.dirs": self.data_dir})
            cmd = [self.gregor_bin, "serve"]
            for k, v in settings.items():
                cmd += ["--override", "%s=%s" % (k, v)]
            return cmd
        k = kafka_zk.KafkaZkBroker(self.dir, self.id, self.port, self.zk_connect,
                                   classpath=self.classpath,
                                   session_timeout_ms=SESSION_TIMEOUT_MS,
                                   overrides=dict(BROKER_SETTINGS, **{
                                       "listeners": listener, "advertised.listeners": listener,
                                       "log.dirs": self.data_dir,
                                       "num.partitions": PARTITIONS}))
        k.write_config()
        self.log_path = k.log_path
        return (["java"] + kafka_zk.TEST_JVM_OPTS +
                ["-Djava.awt.headless=true",
                 "-Dlog4j.configuration=file:" + os.path.join(self.dir, "log4j.properties"),
                 "-Dkafka.logs.dir=" + self.dir, "-cp", self.classpath, "kafka.Kafka",
                 k.config])

    def _spawn(self):
        gid = self.gid

        def as_own_group():
            os.setgroups([])
            os.setgid(gid)
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        try:
            self.proc = subprocess.Popen(self._command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=as_own_group,
                                         start_new_session=True)
        finally:
            out.close()
        self.paused = False

    def _ready(self, admin):
        """Serving and registered: its port answers and its own Metadata lists it (a broker
        whose registration ZooKeeper refuses listens first and exits after)."""
        if not port_open(self.host, self.port):
            return False
        try:
            return self.id in admin.list_topics(timeout=2).brokers
        except Exception:  # noqa: BLE001 - not yet
            return False

    def _stays_up(self, grace=2.0):
        """A broker may list the old session's registration as its own before its registration
        is refused (NodeExists) and it exits: ready only if it still runs after grace."""
        end = time.monotonic() + grace
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return True

    def start(self, timeout=90.0):
        """Starts the broker and waits (bounded) until it serves. A broker restarted right after a
        kill -9 meets its own registration until ZooKeeper expires the old session, and both
        systems refuse to start then: it is started again every second until timeout."""
        deadline = time.monotonic() + timeout
        attempts = 0
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": CLIENT_LOG})
        while time.monotonic() < deadline:
            attempts += 1
            self._spawn()
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._ready(admin) and self._stays_up():
                    return attempts
                time.sleep(0.2)
            if self.proc.poll() is None:
                break
            if self.proc.returncode < 0:  # a crash while starting, not a refusal
                self.start_crashes.append("broker %d killed by %s while starting"
                                          % (self.id, signal.Signals(-self.proc.returncode).name))
                log("  UNEXPECTED: %s; its log ends:\n%s"
                    % (self.start_crashes[-1], self.log_tail(1500)))
            time.sleep(1.0)
        self.kill9()
        raise RuntimeError("%s broker %d did not start within %.0fs (%d attempts):\n%s"
                           % (self.system, self.id, timeout, attempts, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.alive() else None

    def kill9(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.paused = False

    def stop(self, timeout=30.0):
        if self.proc is None:
            return None
        if self.paused:
            self.resume()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def pause(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.proc is not None and self.paused:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused = False

    def fill_disk(self):
        """Writes the filler until the tmpfs is full (ENOSPC); returns the bytes written."""
        written = 0
        chunk = b"\0" * (1 << 20)
        try:
            with open(self.filler, "ab", buffering=0) as f:
                while written < (DISK_MB + 16) << 20:
                    written += f.write(chunk)
        except OSError:
            pass
        return written

    def free_disk(self):
        try:
            os.unlink(self.filler)
        except FileNotFoundError:
            pass

    def log_tail(self, n=3000):
        out = []
        for p in (self.log_path, os.path.join(self.dir, "stdout.log")):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode(errors="replace")[-n:])
            except OSError:
                pass
        return "\n".join(out)


class Cluster:
    def __init__(self, system, base_dir, gregor_bin=None):
        if system not in ("gregor", "kafka"):
            raise ValueError("system is gregor or kafka, not %r" % system)
        self.system = system
        self.dir = os.path.abspath(base_dir)
        self.gregor_bin = gregor_bin
        self.zk = ZkEnsemble.on_free_ports(os.path.join(self.dir, "zk"))
        self.brokers = []
        self.cleanups = []  # callables run by close(), last added first

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def broker(self, node_id):
        return self.brokers[node_id - 1]

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        classpath = kafka_zk.kafka_classpath() if self.system == "kafka" else None
        log("ZooKeeper ensemble starting in %s" % self.zk.dir)
        self.zk.start()
        hosts = ["127.0.0.%d" % (i + 1) for i in (1, 2, 3)]
        port = free_port_on(hosts)
        for i in (1, 2, 3):
            d = os.path.join(self.dir, "broker%d" % i)
            os.makedirs(d, exist_ok=True)
            b = Broker(self.system, i, d, port, self.zk.connect, gregor_bin=self.gregor_bin,
                       classpath=classpath)
            b.mount_disk()
            self.brokers.append(b)
        for b in self.brokers:
            b.start()
            log("%s broker %d serves on %s (pid %d, group %d)"
                % (self.system, b.id, b.bootstrap, b.pid(), b.gid))

    def close(self):
        """Undoes everything, whatever state the run left; errors are printed, not raised."""
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                log("cleanup %s: %s" % (fn, e))
        for b in self.brokers:
            try:
                b.resume()
                b.kill9()
            except Exception as e:  # noqa: BLE001
                log("broker %d: %s" % (b.id, e))
        try:
            self.zk.stop()
        except Exception as e:  # noqa: BLE001
            log("zookeeper stop: %s" % e)
        for b in self.brokers:
            b.free_disk()
            b.unmount_disk()
