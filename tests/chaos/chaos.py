#!/usr/bin/env python3
"""Jepsen-style fault run (`make chaos`, `make chaos-kafka`; docs/CHAOS.md).

    chaos.py --system gregor --bin build/gregor --cycles 100 --seed 42
    chaos.py --system kafka --cycles 100 --seed 42          # Apache Kafka 3.9, ZooKeeper mode

A 3-node ZooKeeper ensemble and 3 brokers on 127.0.0.2-4 (cluster.py), an RF 3 topic of 6
partitions with min.insync.replicas 2 and unclean election off; idempotent acks=all producers and
consumers run throughout (workload.py) while the nemesis injects one fault per cycle on a seeded
schedule (nemesis.py). Then everything is healed, the cluster settles, and the checker
(checker.py) compares the acks and reads with a final read and every replica's segment files.
Prints the counts; exits 1 on any acked record lost or misplaced, duplicate, vanished read,
divergent or missing replica data, or a broker that exited on its own (a crash), 2 when the run itself could not be carried out.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker  # noqa: E402
from cluster import (CLIENT_LOG, PARTITIONS, REPLICATION, TOPIC, TOPIC_CONFIGS, Cluster, log,  # noqa: E402
                     log_clients_to)
import nemesis  # noqa: E402
from workload import Workload, final_read  # noqa: E402


def create_topic(bootstrap):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": CLIENT_LOG})
    fs = admin.create_topics([NewTopic(TOPIC, PARTITIONS, REPLICATION, config=TOPIC_CONFIGS)],
                             operation_timeout=30, request_timeout=40)
    fs[TOPIC].result(60)


def replica_logs(cluster):
    """{partition: {broker id: [Batch]}} from every broker's segment files."""
    out = {}
    for p in range(PARTITIONS):
        out[p] = {}
        for b in cluster.brokers:
            d = os.path.join(b.data_dir, "%s-%d" % (TOPIC, p))
            if os.path.isdir(d):
                out[p][b.id] = checker.read_partition_dir(d)
    return out


def wait_converged(cluster, timeout):
    """Waits (bounded) until every replica of every partition has the same log end."""
    deadline = time.monotonic() + timeout
    ends = {}
    while time.monotonic() < deadline:
        ends = {p: {b: checker.log_end(x) for b, x in r.items()}
                for p, r in replica_logs(cluster).items()}
        if all(len(e) == REPLICATION and len(set(e.values())) == 1 for e in ends.values()):
            return True, ends
        time.sleep(1.0)
    return False, ends


def save_history(run_dir, wl):
    """The acks (partition, offset, value), one a line, before anything is checked."""
    with open(os.path.join(run_dir, "acked.txt"), "w") as f:
        for p, o, v in wl.acked:
            f.write("%d %s %s\n" % (p, o, v.decode(errors="replace")))


def keep_evidence(cluster, dest):
    for b in cluster.brokers:
        # cp keeps the preallocated (sparse) index files sparse: 20 MiB each copied densely.
        p = subprocess.run(["cp", "-a", "--sparse=always", b.data_dir,
                            os.path.join(dest, "broker%d-data" % b.id)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            log("evidence of broker %d: %s" % (b.id, p.stderr.strip()))


def run(a):
    seed = a.seed if a.seed is not None else int(time.time() * 1000) % 1_000_000_007
    steps = nemesis.schedule(seed, a.cycles, a.faults)
    log("chaos: system %s, %d cycles, seed %d (CHAOS_SEED=%d replays this schedule)"
        % (a.system, a.cycles, seed, seed))
    for s in steps:
        log("  plan %(cycle)3d: %(kind)-15s partition %(partition)d hold %(hold).1fs "
            "quiet %(quiet).1fs" % s)
    run_dir = a.dir or tempfile.mkdtemp(prefix="gregor-chaos-")
    os.makedirs(run_dir, exist_ok=True)
    log_clients_to(os.path.join(run_dir, "clients.log"))
    nemesis.remove_stale_tables()
    cluster = Cluster(a.system, run_dir, gregor_bin=a.bin)
    nem = nemesis.Nemesis(cluster)
    unhealed = 0
    passed = False
    try:
        cluster.start()
        create_topic(cluster.bootstrap)
        # A system whose ISR never grows to the replicas (gregor before the leader's side of
        # replication) is not waited for after each cycle: only for live leaders.
        isr_tracked = nem.wait_healthy(30, full_isr=True)
        if not isr_tracked:
            log("topic %s: ISR not full 30 s after creation; not awaited after each cycle" % TOPIC)
        wl = Workload(cluster.bootstrap, producers=a.producers, rate=a.rate)
        wl.start()
        time.sleep(3)
        started = time.monotonic()
        for s in steps:
            nem.run(s)
            when = "after cycle %d (%s)" % (s["cycle"], s["kind"])
            if not nem.wait_healthy(60, when=when):
                unhealed += 1
                log("  not healthy 60 s after the heal (a partition without a live leader)")
            elif isr_tracked and not nem.wait_healthy(30, full_isr=True, when=when):
                log("  ISR not full 30 s after the heal")
            log("  %s" % wl.summary())
            time.sleep(s["quiet"])
        log("faults done in %.0fs; stopping the workload" % (time.monotonic() - started))
        wl.stop()
        log(wl.summary())
        nem.heal_all("after the workload")
        if not nem.wait_healthy(120, full_isr=isr_tracked, when="after the workload"):
            log("the cluster did not settle (live leaders%s) within 120 s"
                % (", full ISRs" if isr_tracked else ""))
        converged, ends = wait_converged(cluster, 60)
        log("replica log ends %s: %s" % ("equal" if converged else "DIFFER", ends))
        save_history(run_dir, wl)
        final, hws = final_read(cluster.bootstrap)
        replicas = replica_logs(cluster)
        try:
            result = checker.check(wl.acked, final, wl.observed, replicas, hws)
        except Exception:
            keep_evidence(cluster, run_dir)
            raise
        faults = sum(nem.injected.values())
        print("chaos result (%s, seed %d, %d cycles):" % (a.system, seed, a.cycles))
        print("  faults injected   %d  %s" % (faults, dict(sorted(nem.injected.items()))))
        print("  records sent      %d (delivery failed, indeterminate: %d; fatal producer "
              "errors: %d)" % (wl.sent, wl.failed, wl.fatal))
        print("  records acked     %d (held where acked: %d; of them acked without an offset, "
              "held once: %d)" % (result.acked, result.ok, result.unknown_offset))
        print("  lost              %d" % result.lost)
        print("  misplaced         %d" % result.misplaced)
        print("  duplicated        %d" % result.duplicated)
        print("  vanished reads    %d (of %d reads)" % (result.vanished, len(wl.observed)))
        print("  divergent         %d offsets; missing below HW %d" % (result.divergent,
                                                                       result.missing))
        print("  high watermarks   %s" % hws)
        print("  client errors     %s" % dict(sorted(wl.errors.items())))
        exits = nem.exits + [c for b in cluster.brokers for c in b.start_crashes]
        print("  unexpected exits  %d %s" % (len(exits), exits[:5]))
        print("  unhealed cycles   %d" % unhealed)
        for d in result.details:
            print("  - %s" % d)
        bad = checker.failed(result) or bool(exits)
        if bad:
            keep_evidence(cluster, run_dir)
            print("chaos: FAILED (seed %d); logs and replica data in %s" % (seed, run_dir))
        else:
            print("chaos: passed (seed %d)" % seed)
            passed = True
        return 1 if bad else 0
    finally:
        cluster.close()
        if passed and not a.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log("run directory kept: %s" % run_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--system", choices=["gregor", "kafka"], default="gregor")
    ap.add_argument("--bin", default=os.environ.get("GREGOR_BIN"),
                    help="the gregor binary (default $GREGOR_BIN)")
    ap.add_argument("--cycles", type=int, default=int(os.environ.get("CHAOS_CYCLES", "100")))
    ap.add_argument("--seed", type=int,
                    default=int(os.environ["CHAOS_SEED"]) if os.environ.get("CHAOS_SEED")
                    else None)
    ap.add_argument("--faults", type=lambda v: [k for k in v.split(",") if k],
                    help="only these kinds, comma-separated (default: all of %s)"
                    % ",".join(nemesis.FAULTS))
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--rate", type=int, default=100, help="records/s per producer")
    ap.add_argument("--dir", help="run directory (default: a new one under $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    a = ap.parse_args()
    if a.system == "gregor" and not (a.bin and os.access(a.bin, os.X_OK)):
        ap.error("--bin (or GREGOR_BIN) must name the gregor binary")
    if a.bin:
        a.bin = os.path.abspath(a.bin)
    for k in a.faults or []:
        if k not in nemesis.FAULTS:
            ap.error("unknown fault %r (known: %s)" % (k, ", ".join(nemesis.FAULTS)))
    if os.geteuid() != 0:
        ap.error("needs root: tmpfs mounts and nftables rules")

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run(a)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - the run could not be carried out
        log("chaos: the run failed: %s" % e)
        import traceback
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
