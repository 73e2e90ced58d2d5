#!/usr/bin/env python3
"""Cluster numbers (issue 15): a 3-broker gregor cluster and a 3-broker Apache Kafka 3.9 cluster
in ZooKeeper mode, in the same run, on the same 3-node ZooKeeper ensemble (each run of each
system under its own chroot), measured the same way:

  start       process start of the three brokers (all at once) until every broker's Metadata
              lists all three and a controller
  rss_idle    VmRSS of each broker 5 s after that
  rss_loaded  VmRSS of each broker after `gregor perf producer` wrote N records of 1 KiB (acks=1)
              to a 12-partition topic (replication factor 1) and 5 s passed
  controller  kill -9 of the controller's process until /controller names another broker, and
              until a CreateTopics through the survivors (confluent_kafka's AdminClient, one
              attempt after another) succeeds
  leader      with the killed broker back (all three listed), a 12-partition topic with
              replication factor 3; kill -9 of a broker that is not the controller and leads
              partitions, until every partition it led has a changed state znode (the
              controller's decision), and until the first produce (acks=1, raw Produce v7 to
              the leader the state names, one attempt every 20 ms) to one of them succeeds.
              gregor cannot elect another leader until replication (issue 16): its decision is
              "offline" (leader -1) and its produce is recorded as null, "n/a until issue 16".

Both systems run with zookeeper.session.timeout.ms=6000 (the kills wait for ZooKeeper to expire
the session). Kafka: the JVM options of Kafka 3.9's kafka-server-start.sh (-Xmx1G -Xms1G, G1).
gregor: the release build (build/gregor), defaults.

usage: python3 bench/cluster.py [--runs 3] [--records 100000] [--systems gregor,kafka]
       [--out bench/results] [--plot docs/bench/cluster.png]
Writes bench/results/<stamp>-cluster.json and, with gnuplot installed, the PNG.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "kafka_harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

from benchlib import HISTOGRAM_STYLE  # noqa: E402
from cluster_wire import create_topics_v4, metadata_v12  # noqa: E402
from kafka_wire import produce_v7, record_batch  # noqa: E402
from kafka_zk import SHIPPED_JVM_OPTS, KafkaZkBroker, kafka_classpath  # noqa: E402
from zk_ensemble import ZkEnsemble, free_port  # noqa: E402
from zk_fixture import ZkError, ZkReader  # noqa: E402

GREGOR = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
IDS = (1, 2, 3)
SESSION_MS = 6000
PARTITIONS = 12
POLL_S = 0.02
STEP_TIMEOUT_S = 120
REQUEST_TIMED_OUT = 7
TOPIC_ALREADY_EXISTS = 36


class GregorBroker:
    """A gregor broker process (`gregor serve`) with the same interface as KafkaZkBroker."""

    def __init__(self, directory, broker_id, port, zk_connect, overrides=None):
        self.dir, self.id, self.port, self.zk_connect = directory, broker_id, port, zk_connect
        self.overrides = dict(overrides or {})  # more --override k=v, after the ones below
        self.proc = None
        os.makedirs(directory, exist_ok=True)

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        args = [GREGOR, "serve",
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % os.path.join(self.dir, "data"),
                "--override", "broker.id=%d" % self.id,
                "--override", "zookeeper.connect=%s" % self.zk_connect,
                "--override", "zookeeper.session.timeout.ms=%d" % SESSION_MS]
        for k, v in self.overrides.items():
            args += ["--override", "%s=%s" % (k, v)]
        with open(os.path.join(self.dir, "gregor.log"), "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.alive() else None

    def stop(self, timeout=30.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc

    def kill9(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log(self, tail=4000):
        try:
            with open(os.path.join(self.dir, "gregor.log"), "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def wait_for(pred, what, timeout=STEP_TIMEOUT_S, interval=POLL_S):
    """Polls pred() (exceptions count as not yet) until truthy; returns (value, seconds)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            v = pred()
            if v:
                return v, time.monotonic() - t0
        except Exception as e:  # a broker still starting or just killed: poll again
            last = e
        time.sleep(interval)
    raise RuntimeError("%s: not within %ds (last error: %r)" % (what, timeout, last))


class Run:
    """One system's cluster under one chroot of the ensemble."""

    def __init__(self, system, ensemble, chroot, base, classpath, overrides=None):
        """system: "gregor..." (any name starting so) or "kafka"; overrides: broker configs
        given to every broker of the run."""
        self.system, self.ens, self.chroot = system, ensemble, chroot
        self.zk_connect = ensemble.connect + chroot
        self.zk = ensemble.nodes[0].connect
        self.brokers = {}
        self.created_once = set()  # topics whose CreateTopics timed out (it may have worked)
        self.attempts = []  # (seconds, topic, broker, error) each time a broker's answer changes
        self.last_answer = {}
        self.t_attempts = time.monotonic()
        self.last_created = None
        self.first_created_at = None
        for i in IDS:
            d = os.path.join(base, "%s%d" % (system, i))
            if system.startswith("gregor"):
                self.brokers[i] = GregorBroker(d, i, free_port(), self.zk_connect, overrides)
            else:
                self.brokers[i] = KafkaZkBroker(d, i, free_port(), self.zk_connect,
                                                classpath=classpath, jvm_opts=SHIPPED_JVM_OPTS,
                                                session_timeout_ms=SESSION_MS,
                                                overrides=overrides)

    def live(self):
        return [b for b in self.brokers.values() if b.alive()]

    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.live())

    def znode(self, path):
        r = ZkReader(self.zk)
        try:
            return r.get(self.chroot + path)
        finally:
            r.close()

    def controller(self):
        try:
            return json.loads(self.znode("/controller")[0])["brokerid"]
        except ZkError:
            return None

    def all_listed(self, ids=IDS):
        ctl = set()
        for i in ids:
            md = metadata_v12(self.brokers[i].bootstrap, [])
            if sorted(md["brokers"]) != sorted(ids) or md["controller_id"] not in ids:
                return False
            ctl.add(md["controller_id"])
        return len(ctl) == 1

    def create_topic(self, name, partitions, rf, timeout_ms=5000):
        """CreateTopics v4 to each live broker in turn until one answers without error (a
        Kafka broker that is not the controller answers NOT_CONTROLLER); TOPIC_ALREADY_EXISTS
        after an attempt that timed out counts as done. Returns the answering broker's id."""
        for b in self.live():
            try:
                err, _ = create_topics_v4(b.bootstrap, name, partitions, rf, timeout_ms)
            except TimeoutError:
                self.created_once.add(name)
                continue
            except OSError:  # refused: a broker just killed
                continue
            if len(self.attempts) < 50 and self.last_answer.get(b.id) != err:
                self.last_answer[b.id] = err
                self.attempts.append((round(time.monotonic() - self.t_attempts, 3), name, b.id,
                                      err))
            if err == 0 or (err == TOPIC_ALREADY_EXISTS and name in self.created_once):
                self.last_created = name
                if self.first_created_at is None:
                    self.first_created_at = time.monotonic()
                return b.id
            if err == REQUEST_TIMED_OUT:
                self.created_once.add(name)
        return None

    def leaders(self, name, partitions=PARTITIONS):
        """{partition: leader} from the state znodes (every partition must have one)."""
        out = {}
        for p in range(partitions):
            out[p] = json.loads(self.znode("/brokers/topics/%s/partitions/%d/state"
                                           % (name, p))[0])["leader"]
        return out

    def stop(self):
        for b in self.brokers.values():
            b.stop()


def measure(run, records, log):
    res = {"system": run.system}
    t0 = time.monotonic()
    for b in run.brokers.values():
        b.start()
    wait_for(run.all_listed, "%s: three brokers listed" % run.system)
    res["start_s"] = time.monotonic() - t0
    log("%s: cluster up in %.2f s" % (run.system, res["start_s"]))
    time.sleep(5)
    res["rss_idle_kib"] = {i: rss_kib(b.pid()) for i, b in run.brokers.items()}

    wait_for(lambda: run.create_topic("load", PARTITIONS, 1), "create load")
    wait_for(lambda: all(l >= 0 for l in run.leaders("load").values()), "load leaders")
    p = subprocess.run([GREGOR, "perf", "producer", "--topic", "load", "--num-records",
                        str(records), "--record-size", "1024", "--throughput", "-1",
                        "--producer-props", "bootstrap.servers=" + run.bootstrap(), "acks=1"],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("perf producer failed: %s %s" % (p.stdout[-1000:], p.stderr[-1000:]))
    res["load_summary"] = p.stdout.strip().splitlines()[-1]
    time.sleep(5)
    res["rss_loaded_kib"] = {i: rss_kib(b.pid()) for i, b in run.brokers.items()}
    log("%s: RSS idle %s, loaded %s KiB" % (run.system, res["rss_idle_kib"],
                                            res["rss_loaded_kib"]))

    # The controller, killed. A thread watches /controller while the main thread tries
    # CreateTopics through the survivors from the kill on, each attempt a new topic name (an
    # attempt that timed out may have created its topic: it is not counted).
    old = run.controller()
    res["killed_controller"] = old
    found = {}

    def watch_controller():
        try:
            _, found["s"] = wait_for(lambda: run.controller() not in (None, old), "new controller")
        except Exception as e:
            found["error"] = str(e)
    t0 = run.t_attempts = time.monotonic()
    run.attempts, run.last_answer = [], {}
    run.brokers[old].kill9()
    watcher = threading.Thread(target=watch_controller)
    watcher.start()
    names = ("after-controller-%d" % n for n in range(100000))
    run.first_created_at = None

    def created_and_led():
        """A new topic answered without error whose partitions all got a live leader (each
        candidate gets 1 s; one assigned to the dead broker never does)."""
        name = next(names)
        if run.create_topic(name, 3, 1) is None:
            return None
        live = {b.id for b in run.live()}
        try:
            wait_for(lambda: all(l in live for l in run.leaders(name, 3).values()),
                     "leaders of " + name, timeout=1.0)
        except RuntimeError:
            return None
        return name
    created, _ = wait_for(created_and_led, "%s: CreateTopics after the controller died" % run.system)
    res["controller_create_led_s"] = time.monotonic() - t0
    res["controller_create_ok_s"] = run.first_created_at - t0
    watcher.join()
    if "error" in found:
        raise RuntimeError(found["error"])
    res["controller_new_znode_s"] = found["s"]
    res["controller_create_answers"] = [a for a in run.attempts if a[1].startswith("after-")]
    # The first topic answered without error: Kafka assigns from the answering broker's
    # metadata cache, gregor from its list of live registrations; either may still hold the
    # dead broker, whose partitions stay offline until it is back.
    first = next(a[1] for a in run.attempts if a[3] == 0 and a[1].startswith("after-"))
    assignment = json.loads(run.znode("/brokers/topics/" + first)[0])["partitions"]
    res["controller_first_create_on_killed"] = sum(old in reps for reps in assignment.values())
    timed_out = [a[1] for a in run.attempts if a[3] == REQUEST_TIMED_OUT]
    res["controller_timed_out_on_killed"] = [
        sum(old in reps for reps in json.loads(run.znode("/brokers/topics/" + t)[0])
            ["partitions"].values()) for t in timed_out]
    log("%s: controller %d killed: new controller %.2f s, CreateTopics ok %.2f s (%s, %d of 3 "
        "partitions on the killed broker), one with every leader live %.2f s (%s); answers %s"
        % (run.system, old, res["controller_new_znode_s"], res["controller_create_ok_s"], first,
           res["controller_first_create_on_killed"], res["controller_create_led_s"], created,
           res["controller_create_answers"]))
    run.brokers[old].start()
    _, res["restart_listed_s"] = wait_for(run.all_listed, "%s: killed broker back" % run.system)

    # A partition leader, killed (not the controller, so only the leader moves).
    wait_for(lambda: run.create_topic("failover", PARTITIONS, 3), "create failover")
    leaders, _ = wait_for(lambda: (lambda l: l if all(x >= 0 for x in l.values()) else None)(
        run.leaders("failover")), "failover leaders")

    def full_isr():  # every replica in sync before the kill, on both systems
        return all(len(json.loads(run.znode("/brokers/topics/failover/partitions/%d/state"
                                            % p)[0])["isr"]) == 3 for p in range(PARTITIONS))
    _, res["failover_full_isr_s"] = wait_for(full_isr, "%s: failover ISR of 3" % run.system)
    ctl = run.controller()
    victim = next(i for i in IDS if i != ctl and i in leaders.values())
    led = [p for p, l in leaders.items() if l == victim]
    versions = {p: run.znode("/brokers/topics/failover/partitions/%d/state" % p)[1]["version"]
                for p in led}
    res["killed_leader"], res["partitions_led"] = victim, len(led)
    batch = record_batch([b"x" * 1024])
    t0 = time.monotonic()
    run.brokers[victim].kill9()

    def decided():
        return all(run.znode("/brokers/topics/failover/partitions/%d/state" % p)[1]["version"]
                   > versions[p] for p in led)
    _, res["leader_decision_s"] = wait_for(decided, "%s: controller decision" % run.system)
    states = {p: json.loads(run.znode("/brokers/topics/failover/partitions/%d/state" % p)[0])
              for p in led}
    res["new_leaders"] = sorted({s["leader"] for s in states.values()})
    if all(s["leader"] == -1 for s in states.values()):
        res["leader_produce_ok_s"] = None
        res["leader_produce_note"] = "offline: no other replica in the ISR"
    else:
        target = next(p for p, s in states.items() if s["leader"] >= 0)

        def produced():
            s = json.loads(run.znode("/brokers/topics/failover/partitions/%d/state" % target)[0])
            if s["leader"] < 0 or s["leader"] == victim:
                return False
            err, _ = produce_v7(run.brokers[s["leader"]].bootstrap, "failover", target, batch,
                                acks=1)
            return err == 0
        wait_for(produced, "%s: produce on a new leader" % run.system)
        res["leader_produce_ok_s"] = time.monotonic() - t0
    log("%s: leader %d (%d partitions) killed: decision %.2f s (new leaders %s), produce %s"
        % (run.system, victim, len(led), res["leader_decision_s"], res["new_leaders"],
           res["leader_produce_ok_s"] if res["leader_produce_ok_s"] is not None
           else res["leader_produce_note"]))
    return res


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def summarize(rows):
    """Per system: the median of every metric over the runs (RSS: over runs and brokers, MiB)."""
    out = {}
    for system in sorted({r["system"] for r in rows}):
        rs = [r for r in rows if r["system"] == system and "error" not in r]
        if not rs:
            continue
        s = {k: median([r[k] for r in rs]) for k in
             ("start_s", "controller_new_znode_s", "controller_create_ok_s",
              "controller_create_led_s",
              "leader_decision_s", "leader_produce_ok_s")}
        for k in ("rss_idle_kib", "rss_loaded_kib"):
            vals = [v for r in rs for v in r[k].values()]
            s[k.replace("_kib", "_mib")] = round(median(vals) / 1024, 1)
        s["runs"] = len(rs)
        out[system] = s
    return out


def gnuplot(script):
    """Runs gnuplot on script: False, its error printed, when it failed."""
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if p.returncode != 0:
        print("gnuplot failed: %s" % p.stderr, file=sys.stderr)
        return False
    return True


def plot(summary, path):
    """One PNG: the times (left) and the RSS per broker (right), medians, gregor beside Kafka."""
    if shutil.which("gnuplot") is None:
        print("cluster.py: gnuplot not installed, no plot", file=sys.stderr)
        return False
    times = [("start_s", "cluster start"), ("controller_new_znode_s", "new controller"),
             ("controller_create_ok_s", "CreateTopics ok"),
             ("controller_create_led_s", "created, leaders live"),
             ("leader_decision_s", "leader kill: decision"),
             ("leader_produce_ok_s", "leader kill: produce")]
    rss = [("rss_idle_mib", "idle"), ("rss_loaded_mib", "after the records")]

    def table(f, keys, fmt):
        for k, label in keys:
            vals = [summary.get(s, {}).get(k) for s in ("gregor", "kafka")]
            f.write('"%s" %s\n' % (label, " ".join("NaN" if v is None else fmt % v
                                                   for v in vals)))
    with tempfile.TemporaryDirectory() as tmp:
        t_dat, r_dat = os.path.join(tmp, "times.dat"), os.path.join(tmp, "rss.dat")
        with open(t_dat, "w") as f:
            table(f, times, "%.3f")
        with open(r_dat, "w") as f:
            table(f, rss, "%.1f")
        na = len(times) - 1  # a system with no number for the produce after a leader kill
        na_label = "" if summary.get("gregor", {}).get(times[-1][0]) is not None else \
            'set label 1 "gregor: n/a (offline)" at %d-0.2,0.4 rotate by 90 font ",8"' % na
        script = """set terminal pngcairo size 1200,520 font ",10"
set output "%(out)s"
set multiplot layout 1,2 title "3 brokers on a 3-node ZooKeeper, gregor vs Kafka 3.9.1 in ZooKeeper mode (medians; session timeout 6 s)"
%(style)sset xtics rotate by -30 left
set bmargin 7
set ylabel "seconds after the process start / the kill -9"
%(na_label)s
plot "%(t)s" using 2:xtic(1) title "gregor" lc rgb "#9b30d9", "" using 3 title "Kafka 3.9.1" lc rgb "#2ca58d"
unset label 1
set size ratio 0
set ylabel "RSS per broker, MiB"
plot "%(r)s" using 2:xtic(1) title "gregor" lc rgb "#9b30d9", "" using 3 title "Kafka 3.9.1" lc rgb "#2ca58d"
unset multiplot
""" % {"out": path, "t": t_dat, "r": r_dat, "na_label": na_label, "style": HISTOGRAM_STYLE}
        return gnuplot(script)


def git_commit():
    """The short hash of the checkout's HEAD, for the result file."""
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()


def run_once(run, system, n, log, measure_run):
    """The row of run n of system: measure_run()'s, or its error when it raised; run stopped
    after either way."""
    try:
        r = measure_run()
    except Exception as e:
        r = {"system": system, "error": str(e)[:2000]}
        log("%s run %d failed: %s" % (system, n, e))
    finally:
        run.stop()
    r["run"] = n
    return r


def save_result(out_dir, stamp, bench, result):
    """Writes result to <out_dir>/<stamp>-<bench>.json and prints its summary; the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "%s-%s.json" % (stamp, bench))
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(json.dumps(result["summary"], indent=1, sort_keys=True))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--systems", default="gregor,kafka")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--plot", default=os.path.join(ROOT, "docs", "bench", "cluster.png"))
    ap.add_argument("--plot-only", metavar="RESULT_JSON",
                    help="only draw the plot of an earlier result file")
    a = ap.parse_args()
    if a.plot_only:
        with open(a.plot_only) as f:
            return 0 if plot(json.load(f)["summary"], a.plot) else 1
    systems = a.systems.split(",")
    if not os.access(GREGOR, os.X_OK):
        sys.exit("cluster.py: %s not found (make)" % GREGOR)
    classpath = kafka_classpath() if "kafka" in systems else None
    # SIGTERM (timeout, ^C's cousin) unwinds like an exception: every broker and ZooKeeper
    # node this run started is stopped in the finally blocks below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = time.strftime("%Y-%m-%dT%H%MZ", time.gmtime())
    base = tempfile.mkdtemp(prefix="gregor-bench-cluster-")
    t_begin = time.monotonic()

    def log(msg):
        print("[%6.1f s] %s" % (time.monotonic() - t_begin, msg), flush=True)

    ens = ZkEnsemble.on_free_ports(os.path.join(base, "zk"))
    ens.start()
    log("ZooKeeper ensemble %s, leader node %s" % (ens.connect, ens.leader()))
    rows = []
    try:
        for n in range(a.runs):
            for system in systems:  # interleaved, so drift of the machine hits both
                run = Run(system, ens, "/bench-%s-%d" % (system, n),
                          os.path.join(base, "run%d" % n), classpath)
                rows.append(run_once(run, system, n, log, lambda: measure(run, a.records, log)))
    finally:
        ens.stop()
        shutil.rmtree(base, ignore_errors=True)
    summary = summarize(rows)
    result = {
        "stamp": stamp, "command": "python3 bench/cluster.py " + " ".join(sys.argv[1:]),
        "gregor_commit": git_commit(),
        "kafka_version": "3.9.1", "kafka_jvm_opts": SHIPPED_JVM_OPTS,
        "zookeeper_session_timeout_ms": SESSION_MS, "records": a.records,
        "machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname())},
        "elapsed_s": round(time.monotonic() - t_begin, 1), "rows": rows, "summary": summary,
    }
    path = save_result(a.out, stamp, "cluster", result)
    print("wrote %s" % path)
    if a.plot and plot(summary, a.plot):
        print("wrote %s" % a.plot)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
