#!/usr/bin/env python3
"""Transaction numbers (issue 18): gregor beside Apache Kafka 4.1.1 in one run, on the same
workload, one system at a time (gregor, kafka, gregor, kafka, ...), each a single node on a
fresh data dir.

Per system and run:
  warm-up    --warmup-seconds of the 100-records case, unmeasured (the JVM's JIT; gregor too).
  throughput one client process (confluent_kafka 2.16.2, librdkafka 2.16.0; its CPU time is
             recorded): a transactional producer (acks=all, idempotent, linger.ms 5, no
             compression) writes transactions of --small (100) and then --large (10,000)
             records of --size (1000) incompressible bytes, round robin over the 3 partitions of
             topic `txn`, each transaction begin -> produce -> commit, back to back, for
             --seconds each; records/s and MB/s = records of the committed transactions / time
             from the first begin to the last commit's return; transactions per second and the
             commit_transaction call's p50/p99 (the flush of the last records, then EndTxn)
             beside it; the client's CPU seconds and the broker's.
             Why Python: a C driver on the system's librdkafka 2.0.2 (tried on 2026-12-07) spent
             as much client CPU per record (6.3 us at 10,000 per transaction, 22 us at 100)
             as this one (5.8 and 7.6 us): the cost is librdkafka's, not Python's, and 2.0.2
             also held each new producer's first transaction ~1 s waiting for a metadata
             refresh.
  latency    --latency-count (500, after 20 unmeasured) transactions of one --size record on
             topic `lat` (1 partition), one at a time (confluent_kafka, librdkafka): produce,
             commit; a read_committed consumer (its own thread, `lat` from offset 0,
             fetch.wait.max.ms 500, librdkafka's default) reports when it has the record.
             End-to-end = consumer has it - produce call, p50/p99/max; the commit_transaction
             call's time beside it.

usage: python3 bench/txn.py [--runs 3] [--seconds 8] [--small 100] [--large 10000] [--size 1000]
       [--latency-count 500] [--warmup-seconds 3] [--systems gregor,kafka] [--out bench/results]
       [--table RESULT_JSON] [--plot RESULT_JSON PNG]
Writes bench/results/<stamp>-txn.json, the PNG beside it (gnuplot) and prints the Markdown table.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import benchlib
from benchlib import HARNESS, HERE, HISTOGRAM_STYLE, Gregor, cpu_seconds
from benchlib import Kafka as KafkaNode

PARTITIONS = 3


class Kafka(KafkaNode):
    def __init__(self, base):
        # once more on a new port when the JVM exits during startup (seen once on the shared
        # machine, cause unknown: its log went with the temporary dir); the output printed
        super().__init__(base, start_attempts=2)




def client_cpu():
    """This process's CPU seconds (the Python thread and librdkafka's threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def create_topics(bootstrap):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic("txn", PARTITIONS, 1), NewTopic("lat", 1, 1)]).values():
        f.result(60)


def ms_quantiles(samples):
    """p50/p99/max in ms of samples in seconds."""
    if not samples:
        return {"n": 0}
    s = sorted(samples)

    def q(x):
        return round(s[min(len(s) - 1, int(x * len(s)))] * 1000, 2)
    return {"n": len(s), "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": round(s[-1] * 1000, 2)}


def transactional_producer(bootstrap, txn_id):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                  "compression.type": "none", "transaction.timeout.ms": 60000})
    p.init_transactions(60)
    return p


def throughput(p, per_txn, size, seconds, pid):
    """Back-to-back transactions of per_txn records for about `seconds`. No delivery callback
    per record (it cost the Python thread a call per record): a record that fails makes
    commit_transaction raise."""
    values = [os.urandom(size) for _ in range(16)]
    commits = []
    txns = records = 0
    cpu0, bcpu0 = client_cpu(), cpu_seconds(pid)
    t0 = time.monotonic()
    while txns == 0 or time.monotonic() - t0 < seconds:
        p.begin_transaction()
        for i in range(per_txn):
            while True:
                try:
                    p.produce("txn", value=values[i & 15], partition=i % PARTITIONS)
                    break
                except BufferError:
                    p.poll(0.01)
            if i % 1000 == 999:
                p.poll(0)
        c0 = time.monotonic()
        p.commit_transaction(120)
        commits.append(time.monotonic() - c0)
        txns += 1
        records += per_txn
    wall = time.monotonic() - t0
    cpu1, bcpu1 = client_cpu(), cpu_seconds(pid)
    return {"per_txn": per_txn, "txns": txns, "records": records, "wall_s": round(wall, 3),
            "records_per_s": round(records / wall),
            "mb_per_s": round(records * size / 1e6 / wall, 1),
            "txns_per_s": round(txns / wall, 1), "commit": ms_quantiles(commits),
            "client_cpu_s": round(cpu1 - cpu0, 2),
            "broker_cpu_s": round(bcpu1 - bcpu0, 2) if bcpu0 is not None else None}


def latency(bootstrap, p, size, count, warmup):
    """count (+ warmup) one-record transactions, one at a time; the time until a read_committed
    consumer has each."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-bench-lat",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "fetch.wait.max.ms": 500})
    c.assign([TopicPartition("lat", 0, 0)])   # `lat` is fresh and only this writes to it
    seen = {}
    stop = threading.Event()
    cond = threading.Condition()

    def consume():
        while not stop.is_set():
            m = c.poll(0.1)
            if m is None or m.error() is not None:
                continue
            t = time.monotonic()
            with cond:
                seen[int(m.key())] = t
                cond.notify_all()
    th = threading.Thread(target=consume, daemon=True)
    th.start()
    value = os.urandom(size)
    e2e, commits = [], []
    try:
        for i in range(-warmup - 1, count):
            sent = time.monotonic()
            p.begin_transaction()
            p.produce("lat", key=b"%d" % i, value=value, partition=0)
            p.commit_transaction(60)
            committed = time.monotonic()
            with cond:
                if not cond.wait_for(lambda: i in seen, 30):
                    raise RuntimeError("read_committed consumer did not see record %d in 30 s" % i)
            if i >= 0:
                e2e.append(seen[i] - sent)
                commits.append(committed - sent)
    finally:
        stop.set()
        th.join(5)
        c.close()
    return {"e2e": ms_quantiles(e2e), "commit": ms_quantiles(commits)}


def one(system_cls, args, base):
    b = system_cls(base)
    b.start()
    try:
        create_topics(b.bootstrap)
        p = transactional_producer(b.bootstrap, "txn-bench")
        pid = b.pid()
        throughput(p, args.small, args.size, args.warmup_seconds, pid)
        small = throughput(p, args.small, args.size, args.seconds, pid)
        large = throughput(p, args.large, args.size, args.seconds, pid)
        lat = latency(b.bootstrap, p, args.size, args.latency_count, 20)
        p.flush(30)
        return {"system": b.name, "small": small, "large": large, "latency": lat,
                "loadavg_end": os.getloadavg()[0]}
    finally:
        rc = b.stop()
        if rc != 0:
            print("%s stopped with %s" % (b.name, rc), file=sys.stderr)


def spread(vals, r):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    m = statistics.median(vals)
    if len(vals) == 1:
        return str(round(m, r))
    return "%s (%s-%s)" % (round(m, r), round(min(vals), r), round(max(vals), r))


def get(r, path):
    for k in path.split("."):
        r = r.get(k) if isinstance(r, dict) else None
    return r


ROWS = [  # label, path in a run, digits, higher is better
    ("records/s, %(small)d per transaction", "small.records_per_s", 0, True),
    ("MB/s, %(small)d per transaction", "small.mb_per_s", 1, True),
    ("transactions/s, %(small)d per transaction", "small.txns_per_s", 1, True),
    ("commit_transaction p50 ms, %(small)d per transaction", "small.commit.p50_ms", 2, False),
    ("commit_transaction p99 ms, %(small)d per transaction", "small.commit.p99_ms", 2, False),
    ("broker CPU s / client CPU s, %(small)d per transaction", None, 0, None),
    ("records/s, %(large)d per transaction", "large.records_per_s", 0, True),
    ("MB/s, %(large)d per transaction", "large.mb_per_s", 1, True),
    ("commit_transaction p50 ms, %(large)d per transaction", "large.commit.p50_ms", 1, False),
    ("broker CPU s / client CPU s, %(large)d per transaction", None, 0, None),
    ("read_committed end-to-end p50 ms", "latency.e2e.p50_ms", 2, False),
    ("read_committed end-to-end p99 ms", "latency.e2e.p99_ms", 2, False),
    ("read_committed end-to-end max ms", "latency.e2e.max_ms", 2, False),
    ("commit_transaction p50 ms, 1-record transactions", "latency.commit.p50_ms", 2, False),
    ("commit_transaction p99 ms, 1-record transactions", "latency.commit.p99_ms", 2, False),
]


def table(result):
    systems = result["systems"]
    by = {s: [r for r in result["runs"] if r["system"] == s] for s in systems}
    a = result["args"]
    ratio = "gregor / kafka (medians)" if systems == ["gregor", "kafka"] else None
    out = ["| %d runs, median (min-max) | %s |%s" % (a["runs"], " | ".join(systems),
                                                    " %s |" % ratio if ratio else ""),
           "| --- |" + " --- |" * (len(systems) + (1 if ratio else 0))]
    for label, path, digits, _ in ROWS:
        label = label % a
        if path is None:
            case = "small" if ("%d per" % a["small"]) in label else "large"
            cells = ["%s / %s" % (spread([get(r, case + ".broker_cpu_s") for r in by[s]], 2),
                                  spread([get(r, case + ".client_cpu_s") for r in by[s]], 2))
                     for s in systems]
            out.append("| %s | %s |%s" % (label, " | ".join(cells), " |" if ratio else ""))
            continue
        cells = [spread([get(r, path) for r in by[s]], digits) for s in systems]
        row = "| %s | %s |" % (label, " | ".join(cells))
        if ratio:
            g = [get(r, path) for r in by["gregor"]]
            k = [get(r, path) for r in by["kafka"]]
            if g and k and statistics.median(k):
                row += " %.2f |" % (statistics.median(g) / statistics.median(k))
            else:
                row += " - |"
        out.append(row)
    return "\n".join(out)


def plot(result, path):
    """One PNG, two panels: records/s by transaction size, read_committed latency (medians)."""
    if shutil.which("gnuplot") is None:
        print("txn.py: gnuplot not installed, no plot", file=sys.stderr)
        return False
    systems = result["systems"]
    names = {"gregor": "gregor", "kafka": "Kafka 4.1.1"}
    by = {s: [r for r in result["runs"] if r["system"] == s] for s in systems}

    def med(s, p):
        vals = [get(r, p) for r in by[s] if get(r, p) is not None]
        return "%.3f" % statistics.median(vals) if vals else "NaN"
    a = result["args"]
    with tempfile.TemporaryDirectory() as tmp:
        tp, lat = os.path.join(tmp, "tp.dat"), os.path.join(tmp, "lat.dat")
        with open(tp, "w") as f:
            for s in systems:
                f.write('"%s" %s %s\n' % (names.get(s, s), med(s, "small.mb_per_s"),
                                          med(s, "large.mb_per_s")))
        with open(lat, "w") as f:
            for s in systems:
                f.write('"%s" %s %s %s\n' % (names.get(s, s), med(s, "latency.e2e.p50_ms"),
                                             med(s, "latency.e2e.p99_ms"),
                                             med(s, "latency.commit.p50_ms")))
        script = """set terminal pngcairo size 1100,460 font ",10" noenhanced
set output "%(out)s"
set multiplot layout 1,2 title "Transactions, 1 KB records, single node, librdkafka (medians of %(runs)d runs)"
%(style)sset ylabel "MB/s of committed records"
plot "%(tp)s" using 2:xtic(1) title "%(small)d records / transaction" lc rgb "#9b30d9", "" using 3 title "%(large)d records / transaction" lc rgb "#2ca58d"
set ylabel "ms"
plot "%(lat)s" using 2:xtic(1) title "read_committed e2e p50" lc rgb "#9b30d9", "" using 3 title "e2e p99" lc rgb "#d95f02", "" using 4 title "commit_transaction p50 (1 record)" lc rgb "#2ca58d"
unset multiplot
""" % {"out": path, "tp": tp, "lat": lat, "runs": a["runs"], "small": a["small"],
               "large": a["large"], "style": HISTOGRAM_STYLE}
        p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if p.returncode != 0:
            print("gnuplot failed: %s" % p.stderr, file=sys.stderr)
            return False
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=10000)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--latency-count", type=int, default=500)
    ap.add_argument("--warmup-seconds", type=float, default=3)
    ap.add_argument("--systems", default="gregor,kafka")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--table")
    ap.add_argument("--plot", nargs=2, metavar=("RESULT_JSON", "PNG"))
    args = ap.parse_args()
    if args.table:
        print(table(json.load(open(args.table))))
        return
    if args.plot:
        plot(json.load(open(args.plot[0])), args.plot[1])
        return
    systems = args.systems.split(",")
    classes = {"gregor": Gregor, "kafka": Kafka}
    if "kafka" in systems:
        subprocess.run([HARNESS, "fetch"], check=True, timeout=1800)
    result, path = benchlib.run_systems("txn", args, classes, systems, one)
    png = path[:-len(".json")] + ".png"
    if plot(result, png):
        print(png)
    print(table(result))


if __name__ == "__main__":
    main()
