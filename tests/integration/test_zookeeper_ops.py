"""ZooKeeper for real (issue 15): the tutorial's scripts and a 3-node ensemble, as real processes
(Debian's ZooKeeper 3.8 on a JVM) on 127.0.0.1 and free ports, never the default 2181.

Every process a test starts is stopped in a finally block (SIGKILL after a bounded SIGTERM); every
wait has a deadline.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "bin")
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
from zk_ensemble import (ZkEnsemble, four_letter_word, free_port, server_mode,  # noqa: E402
                         write_standalone_properties)

MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def read_properties(path):
    props = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                props[k.strip()] = v.strip()
    return props


def zk_pids_for(config):
    """Pids of QuorumPeerMain JVMs whose last argument is this properties file."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        args = [a for a in args if a]
        if MAIN_CLASS in args and args[-1] == config:
            pids.append(int(entry))
    return pids


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a for a in f.read().decode(errors="replace").split("\0") if a]


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("%s not within %ss" % (what, timeout))


def kill_all(config, procs=()):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    for pid in zk_pids_for(config):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for("ZooKeeper on %s gone" % config, lambda: not zk_pids_for(config), 10)


def zk_shell(connect, *command, timeout=60):
    r = subprocess.run([os.path.join(BIN, "zookeeper-shell.sh"), connect] + list(command),
                       capture_output=True, text=True, timeout=timeout)
    return r


def test_zookeeper_properties_as_kafka_ships_them():
    props = read_properties(os.path.join(ROOT, "config", "zookeeper.properties"))
    # Kafka 3.9's config/zookeeper.properties: these four keys and nothing else.
    assert props == {"dataDir": "/tmp/zookeeper", "clientPort": "2181", "maxClientCnxns": "0",
                     "admin.enableServer": "false"}


def test_standalone_start_foreground_answers_and_stop_script_stops_it(tmp_path):
    port = free_port()
    config = write_standalone_properties(tmp_path, port)
    out_path = tmp_path / "terminal.out"
    env = dict(os.environ)
    env.pop("KAFKA_HEAP_OPTS", None)
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([os.path.join(BIN, "zookeeper-server-start.sh"), config],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        mode = wait_for("standalone ZooKeeper on %d" % port, lambda: server_mode(port), 60)
        assert mode == "standalone"
        # The script execs the JVM in the foreground: the child is QuorumPeerMain itself, with
        # Kafka's default heap and our properties file.
        args = cmdline(proc.pid)
        assert MAIN_CLASS in args and args[-1] == config
        assert "-Xmx512M" in args and "-Xms512M" in args
        # Logs to the terminal, in Kafka's layout, as the tutorial shows.
        log = wait_for("binding line", lambda: (re.search(
            r"^\[\d{4}-\d\d-\d\d [\d:,]+\] INFO binding to port .*:%d \(org\.apache\.zookeeper\.server\.NIOServerCnxnFactory\)$" % port,
            out_path.read_text(errors="replace"), re.M)), 30)
        assert log
        # A client writes and reads a znode through the real server.
        r = zk_shell("127.0.0.1:%d" % port, "create", "/gregor-test", "hello-%d" % port)
        assert r.returncode == 0, r.stderr + r.stdout
        r = zk_shell("127.0.0.1:%d" % port, "get", "/gregor-test")
        assert r.returncode == 0 and ("hello-%d" % port) in r.stdout.splitlines(), r.stdout + r.stderr
        r = zk_shell("127.0.0.1:%d" % port, "get", "/no-such-node")
        assert r.returncode != 0
        # Only srvr is a whitelisted four-letter word in Kafka's properties (ZooKeeper's default).
        assert "not in the whitelist" in (four_letter_word(port, "ruok") or "")

        # A stop naming another properties file stops nothing.
        other = tmp_path / "other.properties"
        shutil.copy(config, other)
        r = subprocess.run([os.path.join(BIN, "zookeeper-server-stop.sh"), str(other)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "No zookeeper server to stop" in r.stdout
        assert proc.poll() is None
        # The stop script stops it; the foreground script returns.
        r = subprocess.run([os.path.join(BIN, "zookeeper-server-stop.sh"), config],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        proc.wait(timeout=30)
        assert server_mode(port) is None
        r = subprocess.run([os.path.join(BIN, "zookeeper-server-stop.sh"), config],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "No zookeeper server to stop" in r.stdout
    finally:
        kill_all(config, [proc])


def test_standalone_daemon_logs_to_log_dir_with_heap_from_env(tmp_path):
    port = free_port()
    config = write_standalone_properties(tmp_path, port)
    logdir = tmp_path / "logs"
    env = dict(os.environ, LOG_DIR=str(logdir), KAFKA_HEAP_OPTS="-Xmx160M -Xms32M")
    try:
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(BIN, "zookeeper-server-start.sh"), "-daemon", config],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - t0 < 10  # returns at once, the server runs on
        assert wait_for("daemon ZooKeeper on %d" % port, lambda: server_mode(port), 60) == "standalone"
        pids = zk_pids_for(config)
        assert len(pids) == 1
        args = cmdline(pids[0])
        assert "-Xmx160M" in args and "-Xms32M" in args and "-Xmx512M" not in args
        wait_for("zookeeper.out", lambda: "binding to port" in
                 (logdir / "zookeeper.out").read_text(errors="replace"), 30)
        r = subprocess.run([os.path.join(BIN, "zookeeper-server-stop.sh"), config],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0
        wait_for("daemon gone", lambda: not zk_pids_for(config), 30)
    finally:
        kill_all(config)


def test_start_script_says_what_to_install(tmp_path):
    config = write_standalone_properties(tmp_path, free_port())
    start = os.path.join(BIN, "zookeeper-server-start.sh")
    r = subprocess.run([start, config], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, JAVA_HOME=str(tmp_path / "no-jdk")))
    assert r.returncode == 1
    assert "Java not found at %s" % (tmp_path / "no-jdk" / "bin" / "java") in r.stderr
    assert "apt-get install" in r.stderr
    empty = tmp_path / "no-jars"
    empty.mkdir()
    r = subprocess.run([start, config], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, ZOOKEEPER_JAVA_DIR=str(empty)))
    assert r.returncode == 1
    assert "%s/zookeeper.jar not found" % empty in r.stderr
    assert "apt-get install zookeeper" in r.stderr
    r = subprocess.run([start], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "USAGE" in r.stderr
    r = subprocess.run([start, str(tmp_path / "missing.properties")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "not found" in r.stderr
    assert not zk_pids_for(config)


@pytest.fixture
def ensemble(tmp_path):
    ens = ZkEnsemble.on_free_ports(str(tmp_path / "zk"))
    try:
        yield ens
    finally:
        ens.stop()


def test_ensemble_replicates_elects_a_new_leader_and_takes_back_a_node(ensemble):
    leader = ensemble.start(timeout=90).leader()
    assert leader in (1, 2, 3)
    modes = ensemble.modes()
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    for n in ensemble.nodes:
        with open(os.path.join(n.data_dir, "myid")) as f:
            assert f.read().strip() == str(n.id)
        cfg = read_properties(n.config)
        assert cfg["autopurge.snapRetainCount"] == "3" and cfg["autopurge.purgeInterval"] == "1"
        for m in ensemble.nodes:
            assert cfg["server.%d" % m.id] == "127.0.0.1:%d:%d" % (m.peer_port, m.election_port)
        assert "-Xmx256M" in cmdline(n.pid())
        assert four_letter_word(n.client_port, "ruok") == "imok"
        assert "zk_server_state" in (four_letter_word(n.client_port, "mntr") or "")

    # Written through a follower, read through the other follower and the leader.
    followers = [i for i, m in modes.items() if m == "follower"]
    r = zk_shell(ensemble.node(followers[0]).connect, "create", "/written-before", "v1")
    assert r.returncode == 0, r.stdout + r.stderr
    for i in (followers[1], leader):
        r = zk_shell(ensemble.node(i).connect, "get", "/written-before")
        assert r.returncode == 0 and "v1" in r.stdout.splitlines(), r.stdout + r.stderr

    # kill -9 the leader: the other two elect one of themselves and still serve writes and reads.
    old = ensemble.node(leader)
    killed_at = time.monotonic()
    old.stop(kill=True)
    survivors = [i for i in (1, 2, 3) if i != leader]
    new_leader = ensemble.wait_serving(survivors, timeout=60, exclude_leader=leader)
    elected_in = time.monotonic() - killed_at
    assert new_leader in survivors
    assert server_mode(old.client_port) is None
    other = [i for i in survivors if i != new_leader][0]
    r = zk_shell(ensemble.node(other).connect, "create", "/written-during", "v2")
    assert r.returncode == 0, r.stdout + r.stderr
    r = zk_shell(ensemble.node(new_leader).connect, "get", "/written-during")
    assert r.returncode == 0 and "v2" in r.stdout.splitlines(), r.stdout + r.stderr

    # The old leader comes back, follows the new one and has what was written while it was down.
    old.start()
    assert ensemble.wait_serving(timeout=60) == new_leader
    assert old.mode() == "follower"
    r = zk_shell(old.connect, "get", "/written-during")
    assert r.returncode == 0 and "v2" in r.stdout.splitlines(), r.stdout + r.stderr
    print("new ZooKeeper leader %.1fs after kill -9 of the old one" % elected_in)


def test_ensemble_script_start_status_stop_node_and_stop(tmp_path):
    # Nine consecutive free ports for BASEPORT .. BASEPORT+8.
    def consecutive_free(base):
        socks = []
        try:
            for p in range(base, base + 9):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return True
        except OSError:
            return False
        finally:
            for s in socks:
                s.close()
    base = wait_for("nine free consecutive ports", lambda: next(
        (b for b in (free_port() for _ in range(20)) if b + 9 < 65536 and consecutive_free(b)), None), 10)
    script = os.path.join(BIN, "gregor-zk-ensemble.sh")
    d = str(tmp_path / "ens")
    ens = ZkEnsemble.on_base_port(d, base)  # the same layout, to check on and clean up
    try:
        r = subprocess.run([script, "start", d, str(base)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        connect = ",".join("127.0.0.1:%d" % (base + 3 * i) for i in range(3))
        assert "zookeeper.connect=%s" % connect in r.stdout
        # The script's nodes outlive it (their own session) and one of them leads.
        leader = ens.leader()
        assert leader is not None
        r = subprocess.run([script, "status", d, str(base)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and ("leader: node %d" % leader) in r.stdout, r.stdout
        r = subprocess.run([script, "stop-node", d, str(base), str(leader), "--kill"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert ens.node(leader).pid() is None
        wait_for("a new leader", lambda: ens.leader() not in (None, leader), 60)
        r = subprocess.run([script, "start-node", d, str(base), str(leader)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0 and "serves as follower" in r.stdout, r.stdout + r.stderr
        r = subprocess.run([script, "stop", d, str(base)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert all(n.pid() is None for n in ens.nodes)
        r = subprocess.run([script, "status", d, str(base)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "leader: none" in r.stdout
    finally:
        ens.stop()


def test_dependency_lists_zookeeper_for_tests_only_the_c_client_for_the_build():
    # tools/test-deps.sh installs the server (and its JRE) and the C client for the tests.
    r = subprocess.run(["bash", "-c", 'eval "$(sed -n "/^need=(/,/)/p" tools/test-deps.sh)"; '
                        'printf "%s\\n" "${need[@]}"'], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    test_deps = r.stdout.split()
    assert "zookeeper" in test_deps and "libzookeeper-mt-dev" in test_deps
    # `make run` installs DEB_DEPS: the C client's headers, never the server nor anything that
    # pulls in a JVM (make run serves one broker with no ZooKeeper).
    r = subprocess.run(["make", "-pn", "deps"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = next(l for l in r.stdout.splitlines() if l.startswith("DEB_DEPS = "))
    deb_deps = line.split("=", 1)[1].split()
    assert "libzookeeper-mt-dev" in deb_deps and "zookeeper" not in deb_deps
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + deb_deps,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    closure = {l.strip() for l in r.stdout.splitlines() if l and not l.startswith(" ")}
    assert "libzookeeper-mt2" in closure  # the closure was really computed
    jvm = sorted(p for p in closure if re.search(r"jre|jdk|java|^zookeeper$", p))
    assert jvm == [], "make run's DEB_DEPS would install %s" % jvm
