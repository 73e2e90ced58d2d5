#!/usr/bin/env python3
"""Apache Kafka 3.9 brokers in ZooKeeper mode (the last release line with ZooKeeper), run from
Maven's jars, for side-by-side tests and benchmarks against a gregor cluster on the same
ZooKeeper. The jars come from kafka.sh (KAFKA_VERSION=3.9.1 kafka.sh classpath: fetched once
into ~/.cache/gregor-kafka/3.9.1).

Each broker: broker.id N, zookeeper.connect as given (with a chroot, so gregor and Kafka share one
ZooKeeper without meeting), one PLAINTEXT listener on 127.0.0.1, its own log dir, log4j 1.2
(reload4j) logging to DIR/server.log, a bounded heap. Every wait is bounded; stop() is SIGTERM and
SIGKILL after a timeout; kill9() is SIGKILL.

From Python:
    cp = kafka_classpath()                                  # fetches once, then cached
    b = KafkaZkBroker(dir, broker_id=1, port=p, zk_connect="127.0.0.1:2181/kafka")
    b.start(); b.wait_started(60); ... b.stop()
    run_tool(cp, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", ..., "--describe")
From the command line (a cluster by hand):
    kafka_zk.py start DIR ZK_CONNECT BROKER_ID PORT      start one broker, wait until it started
    kafka_zk.py stop DIR                                  stop the broker started in DIR
"""
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KAFKA_SH = os.path.join(HERE, "kafka.sh")
KAFKA_ZK_VERSION = os.environ.get("KAFKA_ZK_VERSION", "3.9.1")
# Small enough for three brokers and three ZooKeeper nodes on a 2-core, few-GiB test machine.
TEST_JVM_OPTS = ["-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                 "-XX:-UsePerfData"]
# What bin/kafka-server-start.sh of Kafka 3.9 runs with (KAFKA_HEAP_OPTS and
# KAFKA_JVM_PERFORMANCE_OPTS defaults), for the benchmark.
SHIPPED_JVM_OPTS = ["-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                    "-XX:MaxInlineLevel=15"]
STARTED_LINE = b"started (kafka.server.KafkaServer)"


def kafka_classpath(timeout=900):
    """The jars' class path (fetching them with Maven the first time)."""
    env = dict(os.environ, KAFKA_VERSION=KAFKA_ZK_VERSION)
    p = subprocess.run(["sh", KAFKA_SH, "classpath"], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if p.returncode != 0 or not p.stdout.strip():
        raise RuntimeError("kafka.sh classpath (Kafka %s) failed: %s" % (KAFKA_ZK_VERSION,
                                                                       p.stderr[-2000:]))
    return p.stdout.strip()


def _log4j_properties(path, log_file):
    with open(path, "w") as f:
        f.write("log4j.rootLogger=INFO, file\n"
                "log4j.appender.file=org.apache.log4j.FileAppender\n"
                "log4j.appender.file.File=%s\n"
                "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.file.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n"
                "log4j.logger.org.apache.zookeeper=WARN\n"
                "log4j.logger.kafka.request.logger=WARN\n" % log_file)


def run_tool(classpath, main_class, *args, timeout=120, jvm_opts=None):
    """A Kafka tool class (TopicCommand, ...) from the jars: (exit code, stdout, stderr)."""
    cmd = (["java"] + (jvm_opts or ["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
           + ["-Dlog4j.configuration=file:/dev/null", "-cp", classpath, main_class] + list(args))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def port_open(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class KafkaZkBroker:
    """One Kafka broker in ZooKeeper mode; dir holds server.properties, data/, server.log."""

    def __init__(self, directory, broker_id, port, zk_connect, classpath=None, jvm_opts=None,
                 session_timeout_ms=6000, overrides=None):
        self.dir = os.path.abspath(directory)
        self.id = broker_id
        self.port = port
        self.zk_connect = zk_connect
        self.classpath = classpath
        self.jvm_opts = list(jvm_opts or TEST_JVM_OPTS)
        self.session_timeout_ms = session_timeout_ms
        self.overrides = dict(overrides or {})
        self.proc = None
        self.config = os.path.join(self.dir, "server.properties")
        self.log_path = os.path.join(self.dir, "server.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def write_config(self):
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        props = {
            "broker.id": self.id,
            "zookeeper.connect": self.zk_connect,
            "zookeeper.session.timeout.ms": self.session_timeout_ms,
            "zookeeper.connection.timeout.ms": 30000,
            "listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "log.dirs": os.path.join(self.dir, "data"),
            "num.partitions": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.dedupe.buffer.size": 4194304,  # 128 MiB by default, too much for a 256 MiB heap
        }
        props.update(self.overrides)
        with open(self.config, "w") as f:
            f.write("# Kafka %s in ZooKeeper mode (tests/kafka_harness/kafka_zk.py)\n"
                    % KAFKA_ZK_VERSION)
            for k, v in props.items():
                f.write("%s=%s\n" % (k, v))
        _log4j_properties(os.path.join(self.dir, "log4j.properties"), self.log_path)

    def start(self):
        """Starts the JVM and returns at once (wait_started() waits)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("Kafka broker %d already runs (pid %d)" % (self.id, self.proc.pid))
        if self.classpath is None:
            self.classpath = kafka_classpath()
        self.write_config()
        cmd = (["java"] + self.jvm_opts +
               ["-Djava.awt.headless=true",
                "-Dlog4j.configuration=file:" + os.path.join(self.dir, "log4j.properties"),
                "-Dkafka.logs.dir=" + self.dir,
                "-cp", self.classpath, "kafka.Kafka", self.config])
        with open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "kafka.pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        return self

    def started(self):
        """True once the broker logged that it started and its port answers."""
        try:
            with open(self.log_path, "rb") as f:
                seen = STARTED_LINE in f.read()
        except OSError:
            seen = False
        return seen and port_open(self.port)

    def wait_started(self, timeout=90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("Kafka broker %d exited with %s:\n%s"
                                   % (self.id, self.proc.returncode, self.log()))
            if self.started():
                return self
            time.sleep(0.1)
        raise RuntimeError("Kafka broker %d did not start within %.0fs:\n%s"
                           % (self.id, timeout, self.log()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.alive() else None

    def log(self, tail=6000):
        out = []
        for p in (self.log_path, self.stdout_path):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode(errors="replace")[-tail:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self, timeout=30.0):
        """SIGTERM (a controlled shutdown), SIGKILL after timeout; returns the exit status."""
        if self.proc is None:
            return None
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

    def kill9(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _main(argv):
    if len(argv) >= 1 and argv[0] == "start" and len(argv) == 5:
        d, zk, bid, port = argv[1], argv[2], int(argv[3]), int(argv[4])
        b = KafkaZkBroker(d, bid, port, zk, jvm_opts=SHIPPED_JVM_OPTS)
        b.start()
        b.wait_started()
        print("Kafka %s broker %d up on %s (pid %d, dir %s)"
              % (KAFKA_ZK_VERSION, bid, b.bootstrap, b.proc.pid, b.dir))
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        try:
            with open(os.path.join(argv[1], "kafka.pid")) as f:
                pid = int(f.read())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"kafka.Kafka" not in f.read():
                    raise OSError("pid %d is no Kafka broker" % pid)
        except (OSError, ValueError) as e:
            print("kafka_zk.py: nothing to stop in %s (%s)" % (argv[1], e), file=sys.stderr)
            return 1
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGKILL)
        print("Kafka broker in %s stopped" % argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
