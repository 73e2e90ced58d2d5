#!/usr/bin/env python3
"""A ZooKeeper ensemble of N nodes (default 3) on one machine, on 127.0.0.1, for tests and for
trying a gregor cluster by hand. Each node runs Debian's ZooKeeper 3.8 through
bin/zookeeper-server-start.sh with its own directory:

    DIR/node<N>/zoo.cfg          server.1..N=127.0.0.1:<peer>:<election>, clientPort, autopurge on
    DIR/node<N>/data/myid        N
    DIR/node<N>/zookeeper.out    the node's log
    DIR/node<N>/zookeeper.pid    the JVM's pid (so another process can stop it)

Node N (1-based) of an ensemble on BASEPORT listens on BASEPORT+3(N-1) for clients and uses the
next two ports for the quorum (peer, election). Heap -Xmx256M per node; the four-letter words
srvr, stat, ruok and mntr are allowed, so a test asks a node whether it leads (`srvr`).

From the command line (bin/gregor-zk-ensemble.sh runs this):
    zk_ensemble.py start DIR BASEPORT [--size N]        lay out, start, wait for a leader
    zk_ensemble.py status DIR BASEPORT [--size N]       each node's pid and mode; exit 1 if no leader
    zk_ensemble.py stop DIR BASEPORT [--size N]         stop every node (SIGTERM, then SIGKILL)
    zk_ensemble.py stop-node DIR BASEPORT N [--kill]    stop (or kill -9) one node
    zk_ensemble.py start-node DIR BASEPORT N            start one node again, wait until it serves
From pytest: ZkEnsemble.on_free_ports(tmpdir).start() ... finally ensemble.stop().
Every wait is bounded; a node that does not stop after SIGTERM gets SIGKILL.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_SCRIPT = os.path.join(ROOT, "bin", "zookeeper-server-start.sh")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
FOUR_LETTER_WORDS = "srvr,stat,ruok,mntr"
NODE_HEAP = "-Xmx256M -Xms64M"
MAX_NODES = 9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter_word(port, word, timeout=1.0):
    """The answer of a ZooKeeper four-letter word (srvr, ruok, ...), or None if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode())
            chunks = []
            total = 0
            while total < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return None


def write_standalone_properties(directory, port):
    """config/zookeeper.properties with only clientPort and dataDir changed (a test's own, under
    directory); returns the new file's path."""
    src = os.path.join(ROOT, "config", "zookeeper.properties")
    out = []
    with open(src) as f:
        for line in f:
            if line.startswith("clientPort="):
                line = "clientPort=%d\n" % port
            elif line.startswith("dataDir="):
                line = "dataDir=%s\n" % os.path.join(str(directory), "zk-data")
            out.append(line)
    path = os.path.join(str(directory), "zookeeper.properties")
    with open(path, "w") as f:
        f.write("".join(out))
    return path


def server_mode(port, timeout=1.0):
    """'leader', 'follower', 'standalone' or 'observer' from `srvr`; None when it does not serve."""
    answer = four_letter_word(port, "srvr", timeout)
    if not answer:
        return None
    for line in answer.splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):].strip()
    return None  # "This ZooKeeper instance is not currently serving requests"


def _proc_alive(pid):
    """True when pid runs and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def _proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class ZkNode:
    def __init__(self, ensemble, node_id, client_port, peer_port, election_port):
        self.ensemble = ensemble
        self.id = node_id
        self.client_port = client_port
        self.peer_port = peer_port
        self.election_port = election_port
        self.dir = os.path.join(ensemble.dir, "node%d" % node_id)
        self.data_dir = os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(self.dir, "zookeeper.out")
        self.pid_path = os.path.join(self.dir, "zookeeper.pid")
        self.proc = None  # set when this Python process started the node

    @property
    def connect(self):
        return "127.0.0.1:%d" % self.client_port

    def pid(self):
        """The node's JVM pid when it runs (checked against its command line), else None."""
        if self.proc is not None:
            return self.proc.pid if self.proc.poll() is None else None
        try:
            with open(self.pid_path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        cmd = _proc_cmdline(pid)
        if _proc_alive(pid) and MAIN_CLASS.encode() in cmd and self.config.encode() in cmd:
            return pid
        return None

    def mode(self, timeout=1.0):
        return server_mode(self.client_port, timeout)

    def log(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

    def write_config(self, tick_ms):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write("%d\n" % self.id)
        lines = [
            "# ZooKeeper node %d of a %d-node ensemble on 127.0.0.1 (tests/cluster/zk_ensemble.py)"
            % (self.id, len(self.ensemble.nodes)),
            "tickTime=%d" % tick_ms,
            "initLimit=10",
            "syncLimit=5",
            "dataDir=%s" % self.data_dir,
            "clientPort=%d" % self.client_port,
            "clientPortAddress=127.0.0.1",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "autopurge.snapRetainCount=3",
            "autopurge.purgeInterval=1",
            "4lw.commands.whitelist=%s" % FOUR_LETTER_WORDS,
        ]
        for n in self.ensemble.nodes:
            lines.append("server.%d=127.0.0.1:%d:%d" % (n.id, n.peer_port, n.election_port))
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, detach=False):
        """Starts the JVM (bin/zookeeper-server-start.sh execs it, so the child is the JVM)."""
        if self.pid() is not None:
            raise RuntimeError("ZooKeeper node %d already runs (pid %d)" % (self.id, self.pid()))
        env = dict(os.environ)
        env["KAFKA_HEAP_OPTS"] = NODE_HEAP
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen([START_SCRIPT, self.config], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=detach)
        with open(self.pid_path, "w") as f:
            f.write("%d\n" % proc.pid)
        self.proc = proc

    def signal(self, sig):
        pid = self.pid()
        if pid is not None:
            os.kill(pid, sig)
        return pid

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=0.1)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if self.pid() is None:
                return True
            time.sleep(0.1)
        return False

    def stop(self, timeout=15.0, kill=False):
        """SIGKILL at once when kill, else SIGTERM and SIGKILL after timeout. Always reaps."""
        pid = self.signal(signal.SIGKILL if kill else signal.SIGTERM)
        if pid is not None and not self.wait_exit(timeout):
            self.signal(signal.SIGKILL)
            if not self.wait_exit(10.0):
                raise RuntimeError("ZooKeeper node %d (pid %d) did not exit on SIGKILL" % (self.id, pid))
        self.proc = None
        try:
            os.unlink(self.pid_path)
        except OSError:
            pass


class ZkEnsemble:
    def __init__(self, base_dir, ports, tick_ms=1000):
        """ports: one (client, peer, election) triple per node, node ids 1..len(ports)."""
        if not 1 <= len(ports) <= MAX_NODES:
            raise ValueError("an ensemble has 1..%d nodes, not %d" % (MAX_NODES, len(ports)))
        self.dir = os.path.abspath(base_dir)
        self.tick_ms = tick_ms
        self.nodes = [ZkNode(self, i + 1, *p) for i, p in enumerate(ports)]

    @classmethod
    def on_base_port(cls, base_dir, base_port, size=3, **kw):
        if base_port < 1024 or base_port + 3 * size > 65536:
            raise ValueError("base port %d leaves no room for %d nodes" % (base_port, size))
        return cls(base_dir, [(base_port + 3 * i, base_port + 3 * i + 1, base_port + 3 * i + 2)
                              for i in range(size)], **kw)

    @classmethod
    def on_free_ports(cls, base_dir, size=3, **kw):
        ports = set()
        while len(ports) < 3 * size:
            ports.add(free_port())
        p = sorted(ports)
        return cls(base_dir, [tuple(p[3 * i:3 * i + 3]) for i in range(size)], **kw)

    def node(self, node_id):
        return self.nodes[node_id - 1]

    @property
    def connect(self):
        """The connection string a broker takes as zookeeper.connect."""
        return ",".join(n.connect for n in self.nodes)

    def layout(self):
        for n in self.nodes:
            n.write_config(self.tick_ms)

    def start(self, timeout=90.0, detach=False):
        """Lays out and starts every node, then waits (bounded) until each serves and one leads."""
        self.layout()
        try:
            for n in self.nodes:
                n.start(detach=detach)
            self.wait_serving(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def modes(self, nodes=None):
        return {n.id: n.mode() for n in (nodes or self.nodes)}

    def leader(self):
        """The id of the node that says it leads, or None."""
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_serving(self, node_ids=None, timeout=60.0, exclude_leader=None):
        """Waits until the given nodes (default: all) serve as leader or follower with exactly one
        leader among them (other than exclude_leader); returns the leader's id."""
        nodes = [self.node(i) for i in node_ids] if node_ids else self.nodes
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            for n in nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    raise RuntimeError("ZooKeeper node %d exited with %s:\n%s"
                                       % (n.id, n.proc.returncode, n.log()))
            modes = self.modes(nodes)
            leaders = [i for i, m in modes.items() if m == "leader"]
            if (len(leaders) == 1 and leaders[0] != exclude_leader
                    and all(m in ("leader", "follower") for m in modes.values())):
                return leaders[0]
            time.sleep(0.2)
        raise RuntimeError("ZooKeeper nodes %s not serving with one leader within %.0fs: %s\n%s"
                           % ([n.id for n in nodes], timeout, modes,
                              "\n".join("--- node %d\n%s" % (n.id, n.log(2000)) for n in nodes)))

    def stop(self, timeout=15.0):
        """Stops every node: SIGTERM to all, then SIGKILL to any left after timeout."""
        for n in self.nodes:
            n.signal(signal.SIGTERM)
        errors = []
        for n in self.nodes:
            try:
                n.stop(timeout=timeout)
            except RuntimeError as e:
                errors.append(str(e))
        if errors:
            raise RuntimeError("; ".join(errors))


def _main(argv):
    ap = argparse.ArgumentParser(description="A ZooKeeper ensemble on 127.0.0.1 for tests.")
    ap.add_argument("command", choices=["start", "stop", "status", "stop-node", "start-node"])
    ap.add_argument("dir")
    ap.add_argument("base_port", type=int)
    ap.add_argument("node", type=int, nargs="?")
    ap.add_argument("--size", type=int, default=3)
    ap.add_argument("--kill", action="store_true", help="stop-node with SIGKILL")
    ap.add_argument("--timeout", type=float, default=90.0)
    a = ap.parse_args(argv)
    ens = ZkEnsemble.on_base_port(a.dir, a.base_port, a.size)
    if a.command in ("stop-node", "start-node"):
        if a.node is None or not 1 <= a.node <= a.size:
            ap.error("%s needs a node id 1..%d" % (a.command, a.size))
    elif a.node is not None:
        ap.error("%s takes no node id" % a.command)

    if a.command == "start":
        ens.start(timeout=a.timeout, detach=True)
        print("ZooKeeper ensemble up, leader node %s; zookeeper.connect=%s" % (ens.leader(), ens.connect))
    elif a.command == "stop":
        ens.stop()
        print("ZooKeeper ensemble in %s stopped" % ens.dir)
    elif a.command == "stop-node":
        ens.node(a.node).stop(kill=a.kill)
        print("ZooKeeper node %d stopped" % a.node)
    elif a.command == "start-node":
        n = ens.node(a.node)
        n.start(detach=True)
        deadline = time.monotonic() + a.timeout
        while n.mode() not in ("leader", "follower"):
            if n.proc.poll() is not None or time.monotonic() > deadline:
                print("ZooKeeper node %d does not serve:\n%s" % (a.node, n.log()), file=sys.stderr)
                n.stop()
                return 1
            time.sleep(0.2)
        print("ZooKeeper node %d serves as %s" % (a.node, n.mode()))
    else:
        for n in ens.nodes:
            print("node %d client %s peer %d election %d pid %s mode %s"
                  % (n.id, n.connect, n.peer_port, n.election_port, n.pid(), n.mode()))
        leader = ens.leader()
        print("leader: %s" % (("node %d" % leader) if leader else "none"))
        return 0 if leader else 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
