"""What the benches that put gregor beside Apache Kafka share (bench/txn.py, bench/compaction.py,
bench/cluster.py): free ports, a single-node gregor and a single-node Kafka from
tests/kafka_harness/kafka.sh, a process's CPU seconds, and the gnuplot style of their charts."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GREGOR = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
HARNESS = os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh")

# The gnuplot settings the benches' bar charts share (clustered bars, grid, key on top).
HISTOGRAM_STYLE = """set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key outside top center horizontal
"""


def free_port_pair():
    """A free port P with P+1 free too (the harness puts Kafka's controller on P+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def cpu_seconds(pid):
    """User + system CPU seconds of process pid, None when it is gone."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


class Gregor:
    """One gregor broker on a fresh data dir under base; `overrides` (k=v strings, a list the
    caller may still fill before start) go to --override."""
    name = "gregor"

    def __init__(self, base, overrides=()):
        self.port = free_port_pair()
        self.data_dir = os.path.join(base, "data")
        self.log_path = os.path.join(base, "gregor.log")
        self.overrides = overrides
        self.extra_listeners = ""  # ",SSL://127.0.0.1:P,..." (bench/tls.py)
        self.proc = None

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        args = [GREGOR, "serve", "--override",
                "listeners=PLAINTEXT://127.0.0.1:%d%s" % (self.port, self.extra_listeners),
                "--override", "log.dirs=" + self.data_dir]
        for kv in self.overrides:
            args += ["--override", kv]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not port_open(self.port):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("gregor did not start: see " + self.log_path)
            time.sleep(0.1)

    def pid(self):
        return self.proc.pid

    def log_text(self):
        return open(self.log_path, errors="replace").read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self.log.close()
        return rc

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port


class Kafka:
    """Kafka 4.x single node (tests/kafka_harness/kafka.sh) with its state under base/kafka;
    `overrides` (k=v strings) go to KAFKA_OVERRIDES; start tries `start_attempts` times, each
    on new ports."""
    name = "kafka"

    def __init__(self, base, overrides=(), start_attempts=1):
        self.port = free_port_pair()
        self.state = os.path.join(base, "kafka")
        self.data_dir = os.path.join(self.state, "data")
        self.env = dict(os.environ, KAFKA_PORT=str(self.port), KAFKA_STATE=self.state,
                        KAFKA_START_TIMEOUT="120")
        if overrides:
            self.env["KAFKA_OVERRIDES"] = "\n".join(overrides)
        self.start_attempts = start_attempts

    def start(self):
        for attempt in range(self.start_attempts):
            r = subprocess.run([HARNESS, "start"], env=self.env, capture_output=True, text=True,
                               timeout=600)
            if r.returncode == 0:
                return
            if self.start_attempts > 1:
                print("kafka.sh start failed (attempt %d): %s" % (
                    attempt + 1, (r.stdout + r.stderr)[-3000:]), file=sys.stderr)
                self.port = free_port_pair()
                self.env["KAFKA_PORT"] = str(self.port)
        raise RuntimeError("kafka.sh start: " + (r.stdout + r.stderr)[-1500:])

    def pid(self):
        return int(open(os.path.join(self.state, "kafka.pid")).read())

    def log_text(self):
        return open(os.path.join(self.state, "kafka.log"), errors="replace").read()

    def stop(self):
        r = subprocess.run([HARNESS, "stop"], env=self.env, capture_output=True, text=True,
                           timeout=180)
        return r.returncode

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port


def run_systems(name, args, classes, systems, one):
    """args.runs rounds of one(classes[s], args, base) per system s, one system at a time, each
    on a fresh temporary base dir; every result printed as a JSON line. Written with the run's
    commit and load averages to args.out/<stamp>-<name>.json: (result, its path)."""
    result = {"args": vars(args), "systems": systems, "runs": [],
              "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
              "loadavg_start": os.getloadavg()[0],
              "started": time.strftime("%Y-%m-%dT%H%MZ", time.gmtime())}
    for run in range(args.runs):
        for s in systems:
            with tempfile.TemporaryDirectory(prefix="%s-bench-" % name) as base:
                r = one(classes[s], args, base)
            r["run"] = run
            print(json.dumps(r), flush=True)
            result["runs"].append(r)
    result["loadavg_end"] = os.getloadavg()[0]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "%s-%s.json" % (result["started"], name))
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(path)
    return result, path
