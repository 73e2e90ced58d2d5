#!/usr/bin/env python3
"""Replication numbers (issue 16): RF-3 acks=all produce on a 3-broker gregor cluster and a
3-broker Apache Kafka 3.9 cluster in ZooKeeper mode, in one run, on one 3-node ZooKeeper
ensemble (each cluster under its own chroot), with the brokers and the ensemble of
bench/cluster.py (tests/kafka_harness/kafka_zk.py for Kafka). Per cluster:

  throughput  a topic of --partitions partitions, replication factor 3, min.insync.replicas=2
              (a topic config given in CreateTopics, read back with DescribeConfigs), every
              ISR full; an unmeasured warm-up of N/4 records (the JVM's JIT), then
              `gregor perf producer --num-records N --record-size 1024 --throughput
              -1 --producer-props bootstrap.servers=<all three> acks=all` (librdkafka, the same
              client for every system): MB/s, records/s, and the send-to-ack latency of each
              record (timed by its delivery report: p50/p99/max; at full speed these are
              mostly the client's own queue). Each broker's CPU seconds (utime+stime of
              /proc/PID/stat) over the perf run, and its VmRSS right after it.
  latency     the same producer at a fixed --rate records/s for --rate-seconds (10) s
              (`--throughput RATE`; its 5-s progress lines kept in the result), after an
              unmeasured 5 s at that rate (the JVM's small-request paths), a
              load every system carries: the send-to-ack latency of replication itself.
  unavail     --kills times: a 3-partition RF-3 topic (min.insync.replicas=2), every ISR full; an
              acks=all producer (confluent_kafka, linger.ms=0) sends one 1 KiB record every 10 ms
              to a partition whose leader is not the controller; kill -9 of that leader; the
              window is the time from the kill to the first delivery report without error of a
              record handed to the client after the kill (records sent before it could still be
              acked by the dead leader's last bytes): what a librdkafka application sees
              (while its leader's connection is down librdkafka re-queries the leader once a
              second, so this is the decision rounded up to that tick). Beside it, the broker's side alone: from
              the kill on, a raw Produce v7 acks=-1 (one record) to the leader the state znode
              names, one attempt every 20 ms, until one answers without error ("raw"). Also:
              when the partition's state znode changed (the controller's decision) and when a
              survivor's Metadata names a new leader (both polled every 50 ms). The killed
              broker is started again, listed by all three, and the ISR refilled before the
              next kill.

Systems: gregor (release build, defaults: gregor.acks.all.fsync=true, acks=all answered after the
leader's fdatasync), gregor-nofsync (gregor.acks.all.fsync=false: acks=all answered once the ISR
has the batch, as Kafka does; throughput only, the kill does not depend on it), kafka (3.9.1, the
JVM options of kafka-server-start.sh; Kafka never fsyncs on produce). Runs interleave the systems
(gregor, kafka, gregor-nofsync, gregor, kafka, ...). zookeeper.session.timeout.ms=6000 on both, as
in bench/cluster.py: a kill -9 is noticed when ZooKeeper expires the session.

usage: python3 bench/replication.py [--runs 3] [--records 200000] [--partitions 6] [--kills 3]
       [--rate 5000] [--rate-seconds 10]
       [--systems gregor,kafka,gregor-nofsync] [--out bench/results]
       [--plot docs/bench/replication.png] [--plot-only RESULT_JSON] [--table RESULT_JSON]
Writes bench/results/<stamp>-replication.json and, with gnuplot installed, the PNG.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cluster  # noqa: E402  (puts tests/integration, kafka_harness and cluster on sys.path)
from cluster import (GREGOR, HISTOGRAM_STYLE, IDS, ROOT, SESSION_MS, Run, git_commit,  # noqa: E402
                     gnuplot, median, rss_kib, run_once, save_result, wait_for)
from cluster_wire import metadata_v12  # noqa: E402
from kafka_wire import produce_v7, record_batch  # noqa: E402
from zk_ensemble import ZkEnsemble  # noqa: E402

RECORD_SIZE = 1024
MIN_INSYNC = 2
AVAIL_PARTITIONS = 3
PRODUCE_INTERVAL_S = 0.01
WINDOW_TIMEOUT_S = 90
PERF_TIMEOUT_S = 600
SETTLE_SECONDS = 5  # an unmeasured run at --rate before the measured one
WARMUP_DIVISOR = 4  # an unmeasured perf run of records / 4 first, on every system
SYSTEM_OVERRIDES = {
    "gregor": {},
    "gregor-nofsync": {"gregor.acks.all.fsync": "false"},
    "kafka": {},
}
LATENCY_RE = re.compile(r"latency\.us: ([\d.]+) avg, (\d+) max, (\d+) 50th, (\d+) 95th, (\d+) 99th, "
                        r"(\d+) 99\.9th, (\d+) samples\.")
SUMMARY_RE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def parse_perf(stdout):
    """The numbers of `gregor perf producer`'s last two lines (latencies in ms)."""
    lat = LATENCY_RE.search(stdout)
    summ = SUMMARY_RE.search(stdout.strip().splitlines()[-1])
    if lat is None or summ is None:
        raise ValueError("no latency.us / summary line in perf output: %r" % stdout[-500:])
    avg, mx, p50, p95, p99, p999, samples = lat.groups()
    return {"records": int(summ.group(1)), "records_per_s": float(summ.group(2)),
            "mb_per_s": float(summ.group(3)), "lat_avg_ms": float(avg) / 1000,
            "lat_max_ms": int(mx) / 1000, "lat_p50_ms": int(p50) / 1000,
            "lat_p95_ms": int(p95) / 1000, "lat_p99_ms": int(p99) / 1000,
            "lat_p999_ms": int(p999) / 1000, "lat_samples": int(samples)}


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_ack_after(reports, t_kill):
    """reports: (sent_t, acked_t, error) of one partition's records. The seconds from t_kill to
    the first report without error of a record sent at or after t_kill, or None."""
    acks = [acked for sent, acked, err in reports if err is None and sent >= t_kill]
    return min(acks) - t_kill if acks else None


def state(run, topic, p):
    data, stat = run.znode("/brokers/topics/%s/partitions/%d/state" % (topic, p))
    return json.loads(data), stat["version"]


def wait_full_isr(run, topic, partitions, what):
    def full():
        return all(len(state(run, topic, p)[0]["isr"]) == 3 for p in range(partitions))
    return wait_for(full, "%s: %s ISR of 3" % (run.system, what))[1]


def create_topic(run, admin_cls, new_topic_cls, name, partitions):
    """CreateTopics through confluent_kafka's AdminClient with min.insync.replicas as a topic
    config (retried until one succeeds, as in cluster.py); returns the config read back."""
    from confluent_kafka.admin import ConfigResource

    def create():
        admin = admin_cls({"bootstrap.servers": run.bootstrap()})
        fut = admin.create_topics([new_topic_cls(name, partitions, 3, config={
            "min.insync.replicas": str(MIN_INSYNC)})], operation_timeout=10)[name]
        try:
            fut.result(30)
        except Exception as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
        return True
    wait_for(create, "%s: create %s" % (run.system, name), interval=0.5)
    wait_for(lambda: all(state(run, name, p)[0]["leader"] >= 0 for p in range(partitions)),
             "%s: %s leaders" % (run.system, name))

    def described():
        admin = admin_cls({"bootstrap.servers": run.bootstrap()})
        res = ConfigResource("topic", name)
        cfg = admin.describe_configs([res])[res].result(30)
        return cfg["min.insync.replicas"].value
    value, _ = wait_for(described, "%s: describe %s" % (run.system, name), interval=0.5)
    return value


def measure_throughput(run, records, partitions, rate, rate_seconds, admin_cls, new_topic_cls,
                       log):
    res = {}
    res["min_insync_replicas"] = create_topic(run, admin_cls, new_topic_cls, "repl", partitions)
    res["isr_full_s"] = wait_full_isr(run, "repl", partitions, "repl")

    def perf(n, rate=-1):
        p = subprocess.run([GREGOR, "perf", "producer", "--topic", "repl", "--num-records",
                            str(n), "--record-size", str(RECORD_SIZE), "--throughput", str(rate),
                            "--producer-props", "bootstrap.servers=" + run.bootstrap(),
                            "acks=all"], capture_output=True, text=True, timeout=PERF_TIMEOUT_S)
        if p.returncode != 0 or "ERROR" in p.stderr:
            raise RuntimeError("perf producer failed (%d): %s %s"
                               % (p.returncode, p.stdout[-1000:], p.stderr[-1000:]))
        return p
    warmup = records // WARMUP_DIVISOR
    if warmup:  # the same for every system; it is there for the JVM's JIT
        res["warmup"] = parse_perf(perf(warmup).stdout)
    pids = {i: b.pid() for i, b in run.brokers.items()}
    cpu0 = {i: cpu_seconds(pid) for i, pid in pids.items()}
    t0 = time.monotonic()
    p = perf(records)
    res["perf_wall_s"] = time.monotonic() - t0
    res.update(parse_perf(p.stdout))
    if res["records"] != records:
        raise RuntimeError("perf producer acked %d of %d records" % (res["records"], records))
    res["perf_summary"] = p.stdout.strip().splitlines()[-1]
    res["cpu_s"] = {i: round(cpu_seconds(pid) - cpu0[i], 2) for i, pid in pids.items()}
    res["rss_kib"] = {i: rss_kib(pid) for i, pid in pids.items()}
    log("%s: %d x 1 KiB acks=all: %.1f MB/s, %.0f records/s, p50 %.1f p99 %.1f max %.1f ms; "
        "CPU s %s; RSS KiB %s" % (run.system, records, res["mb_per_s"], res["records_per_s"],
                                  res["lat_p50_ms"], res["lat_p99_ms"], res["lat_max_ms"],
                                  res["cpu_s"], res["rss_kib"]))
    if rate:
        # A settling run at the rate first, unmeasured: a JVM fresh from the full-speed run
        # (large batches) answered its first seconds of small batches 0.3-2 s late in trials
        # (JIT of the small-request paths), and settled to ~10 ms within 5-10 s.
        res["fixed_settle"] = parse_perf(perf(rate * SETTLE_SECONDS, rate).stdout)
        n = rate * rate_seconds
        p = perf(n, rate)
        fixed = parse_perf(p.stdout)
        fixed["windows"] = [l for l in p.stderr.splitlines() if "records sent" in l][:50]
        if fixed["records"] != n:
            raise RuntimeError("perf producer at %d/s acked %d of %d" % (rate, fixed["records"], n))
        res["fixed"] = fixed
        log("%s: %d x 1 KiB acks=all at %d records/s: p50 %.1f p99 %.1f max %.1f ms"
            % (run.system, n, rate, fixed["lat_p50_ms"], fixed["lat_p99_ms"],
               fixed["lat_max_ms"]))
    return res


def one_kill(run, producer_cls, log):
    """One kill -9 of a partition leader under an acks=all producer; the killed broker is
    started again before returning."""
    wait_full_isr(run, "avail", AVAIL_PARTITIONS, "avail")
    ctl = run.controller()
    states = {p: state(run, "avail", p) for p in range(AVAIL_PARTITIONS)}
    cands = [p for p, (s, _) in states.items() if s["leader"] != ctl]
    target = cands[0] if cands else 0  # every leader on the controller: kill it anyway
    victim, version = states[target][0]["leader"], states[target][1]
    out = {"partition": target, "victim": victim, "victim_was_controller": victim == ctl}

    reports = []  # (sent, acked, error) of the target partition's records
    producer = producer_cls({"bootstrap.servers": run.bootstrap(), "acks": "all",
                             "linger.ms": 0, "message.timeout.ms": WINDOW_TIMEOUT_S * 1000,
                             "log_level": 0})  # its connection-refused lines: expected here
    payload = b"x" * RECORD_SIZE

    def sender(sent):
        def on_delivery(err, msg):
            reports.append((sent, time.monotonic(), None if err is None else str(err)))
        return on_delivery
    probe = {}

    def raw_probe():
        """The broker's side, without a client's backoffs: Produce v7 acks=-1 to the leader the
        state znode names, one attempt every 20 ms, until one answers without error."""
        batch = record_batch([payload])
        while time.monotonic() - t_kill < WINDOW_TIMEOUT_S:
            try:
                leader = state(run, "avail", target)[0]["leader"]
                if leader not in (-1, victim):
                    err, _ = produce_v7(run.brokers[leader].bootstrap, "avail", target, batch,
                                        acks=-1)
                    if err == 0:
                        probe["s"] = time.monotonic() - t_kill
                        return
                    probe.setdefault("answers", []).append(err)
            except Exception:  # refused, reset, ZooKeeper busy: try again
                pass
            time.sleep(0.02)
    prober = threading.Thread(target=raw_probe, daemon=True)
    survivor = next(b for i, b in run.brokers.items() if i not in (victim, ctl))
    t_kill = t_decided = t_metadata = None
    t0 = next_look = time.monotonic()
    next_send = t0
    while True:
        now = time.monotonic()
        producer.produce("avail", payload, partition=target, on_delivery=sender(now))
        next_send = max(next_send + PRODUCE_INTERVAL_S, now)
        while now < next_send:  # reports are served (and timed) as they arrive
            producer.poll(next_send - now)
            now = time.monotonic()
        if t_kill is None:
            warm = [r for r in reports if r[2] is None]
            if now - t0 >= 1.0 and warm:
                t_kill = time.monotonic()
                run.brokers[victim].kill9()
                prober.start()
            elif now - t0 > 30:
                raise RuntimeError("%s: no ack on avail-%d before the kill" % (run.system, target))
            continue
        if (t_decided is None or t_metadata is None) and now >= next_look:
            next_look = now + 0.05  # the state znode and a survivor's Metadata, every ~50 ms
            try:
                if t_decided is None and state(run, "avail", target)[1] > version:
                    t_decided = time.monotonic()
                if t_metadata is None:
                    md = metadata_v12(survivor.bootstrap, ["avail"])
                    if md["topics"]["avail"]["partitions"][target]["leader"] not in (-1, victim):
                        t_metadata = time.monotonic()
            except Exception:  # ZooKeeper or the broker busy: look again
                pass
        window = first_ack_after(reports, t_kill)
        if (window is not None and t_decided is not None and t_metadata is not None
                and not prober.is_alive()):
            break
        if now - t_kill > WINDOW_TIMEOUT_S:
            raise RuntimeError("%s: no acks=all ack on avail-%d within %d s of the kill"
                               % (run.system, target, WINDOW_TIMEOUT_S))
    producer.flush(WINDOW_TIMEOUT_S)
    out["window_s"] = window
    out["decision_s"] = t_decided - t_kill
    out["metadata_s"] = t_metadata - t_kill
    out["raw_window_s"] = probe.get("s")
    out["raw_errors"] = sorted(set(probe.get("answers", [])))
    out["new_leader"] = state(run, "avail", target)[0]["leader"]
    out["errors"] = sum(1 for r in reports if r[2] is not None)
    out["records"] = len(reports)
    if out["new_leader"] in (victim, -1):
        raise RuntimeError("%s: avail-%d acked with the leader %d in its state"
                           % (run.system, target, out["new_leader"]))
    log("%s: leader %d of avail-%d killed%s: decision %.2f s, in Metadata %.2f s, first "
        "acks=all ack %.2f s, raw Produce acks=-1 %s s (new leader %d, %d delivery errors, raw "
        "errors %s)"
        % (run.system, victim, target, " (it was the controller)" if out["victim_was_controller"]
           else "", out["decision_s"], out["metadata_s"], window, out["raw_window_s"],
           out["new_leader"],
           out["errors"], out["raw_errors"]))
    run.brokers[victim].start()
    wait_for(run.all_listed, "%s: killed broker back" % run.system)
    return out


def measure(run, args, kills, log):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    res = {"system": run.system, "overrides": SYSTEM_OVERRIDES[run.system]}
    for b in run.brokers.values():
        b.start()
    _, res["start_s"] = wait_for(run.all_listed, "%s: three brokers listed" % run.system)
    log("%s: cluster up in %.2f s" % (run.system, res["start_s"]))
    res.update(measure_throughput(run, args.records, args.partitions, args.rate,
                                  args.rate_seconds, AdminClient, NewTopic, log))
    res["kills"] = []
    if kills:
        create_topic(run, AdminClient, NewTopic, "avail", AVAIL_PARTITIONS)
        for _ in range(kills):
            res["kills"].append(one_kill(run, Producer, log))
    return res


def summarize(rows):
    """Per system: medians over the runs (CPU: the three brokers summed per run; RSS: over runs
    and brokers, MiB); the unavailability windows pooled over every kill of every run."""
    out = {}
    for system in [s for s in SYSTEM_OVERRIDES if any(r["system"] == s for r in rows)]:
        rs = [r for r in rows if r["system"] == system and "error" not in r]
        if not rs:
            continue
        s = {k: median([r[k] for r in rs]) for k in
             ("mb_per_s", "records_per_s", "lat_p50_ms", "lat_p99_ms", "lat_max_ms",
              "start_s")}
        fixed = [r["fixed"] for r in rs if "fixed" in r]
        for k in ("lat_p50_ms", "lat_p99_ms", "lat_max_ms"):
            s["fixed_" + k] = median([f[k] for f in fixed]) if fixed else None
        s["cpu_s_brokers"] = median([sum(r["cpu_s"].values()) for r in rs])
        s["cpu_s_per_gib"] = median([sum(r["cpu_s"].values()) / (r["records"] * RECORD_SIZE
                                                                  / 2 ** 30) for r in rs])
        s["rss_mib"] = round(median([v for r in rs for v in r["rss_kib"].values()]) / 1024, 1)
        windows = [k["window_s"] for r in rs for k in r["kills"]]
        if windows:
            s["window_median_s"] = median(windows)
            s["window_max_s"] = max(windows)
            s["window_min_s"] = min(windows)
            s["decision_median_s"] = median([k["decision_s"] for r in rs for k in r["kills"]])
            s["metadata_median_s"] = median([k["metadata_s"] for r in rs for k in r["kills"]])
            raw = [k["raw_window_s"] for r in rs for k in r["kills"]]
            s["raw_window_median_s"] = median(raw)
            s["raw_window_max_s"] = max((x for x in raw if x is not None), default=None)
            s["kills"] = len(windows)
        s["runs"] = len(rs)
        out[system] = s
    return out


def table(result):
    """The BENCHMARKS.md table of a result: median (min-max) over the runs, the unavailability
    windows over every kill; the ratios are gregor / Kafka."""
    rows = [r for r in result["rows"] if "error" not in r]
    systems = [s for s in SYSTEM_OVERRIDES if any(r["system"] == s for r in rows)]

    def vals(system, get):
        out = []
        for r in rows:
            if r["system"] != system:
                continue
            v = get(r)
            out.extend(v if isinstance(v, list) else [v])
        return [v for v in out if v is not None]

    def cell(xs, fmt):
        if not xs:
            return "-"
        if len(xs) == 1:
            return fmt % xs[0]
        return (fmt + " (" + fmt + "-" + fmt + ")") % (median(xs), min(xs), max(xs))
    rate = result.get("rate")
    lines = [
        ("MB/s, %d x 1 KiB at full speed" % result["records"], "%.1f",
         lambda r: r["mb_per_s"]),
        ("records/s", "%.0f", lambda r: r["records_per_s"]),
        ("latency p50, ms (full speed)", "%.0f", lambda r: r["lat_p50_ms"]),
        ("latency p99, ms (full speed)", "%.0f", lambda r: r["lat_p99_ms"]),
        ("latency max, ms (full speed)", "%.0f", lambda r: r["lat_max_ms"]),
        ("latency p50, ms at %s records/s" % rate, "%.1f",
         lambda r: r.get("fixed", {}).get("lat_p50_ms")),
        ("latency p99, ms at %s records/s" % rate, "%.1f",
         lambda r: r.get("fixed", {}).get("lat_p99_ms")),
        ("latency max, ms at %s records/s" % rate, "%.1f",
         lambda r: r.get("fixed", {}).get("lat_max_ms")),
        ("broker CPU s for the full-speed records (3 brokers)", "%.2f",
         lambda r: sum(r["cpu_s"].values())),
        ("RSS per broker after them, MiB", "%.1f",
         lambda r: [v / 1024 for v in r["rss_kib"].values()]),
        ("kill -9 of a leader -> state znode changed, s", "%.2f",
         lambda r: [k["decision_s"] for k in r["kills"]]),
        ("kill -9 -> raw Produce acks=-1 ok on the new leader, s", "%.2f",
         lambda r: [k["raw_window_s"] for k in r["kills"]]),
        ("kill -9 -> first acks=all ack (librdkafka), s", "%.2f",
         lambda r: [k["window_s"] for k in r["kills"]]),
        ("... max over the kills, s", "%.2f",
         lambda r: [max(k["window_s"] for k in r["kills"])] if r["kills"] else None),
    ]
    names = {"gregor": "gregor, fsync (default)", "gregor-nofsync": "gregor, no fsync",
             "kafka": "Kafka 3.9.1"}
    gregors = [s for s in ("gregor", "gregor-nofsync") if s in systems]
    nruns = len({r["run"] for r in rows})
    head = ["| %d run%s, median (min-max) | " % (nruns, "" if nruns == 1 else "s") +
            " | ".join(names[s] for s in systems) +
            "".join(" | %s / Kafka" % names[g].split(",")[0] + ("" if g == "gregor" else
                                                                  " (no fsync)")
                    for g in gregors if "kafka" in systems) + " |"]
    head.append("|" + " --- |" * (1 + len(systems) + (len(gregors) if "kafka" in systems
                                                      else 0)))
    for label, fmt, get in lines:
        cells = [cell(vals(s, get), fmt) for s in systems]
        ratios = []
        if "kafka" in systems:
            k = vals("kafka", get)
            for g in gregors:
                gv = vals(g, get)
                ratio = "%.2g" % (median(gv) / median(k)) if gv and k and median(k) else None
                ratios.append("-" if ratio is None else
                              ratio + ("x" if "." in ratio or "e" in ratio else ".0x"))
        head.append("| %s | %s |" % (label, " | ".join(cells + ratios)))
    return "\n".join(head)


def plot(summary, path, rate):
    """One PNG, three panels: MB/s, latency p50/p99, unavailability median/max (per system)."""
    if shutil.which("gnuplot") is None:
        print("replication.py: gnuplot not installed, no plot", file=sys.stderr)
        return False
    systems = [s for s in SYSTEM_OVERRIDES if s in summary]
    names = {"gregor": "gregor fsync", "gregor-nofsync": "gregor no fsync",
             "kafka": "Kafka 3.9.1"}

    def fmt(v):
        return "NaN" if v is None else "%.3f" % v
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, keys in (("tp", ["mb_per_s"]), ("lat", ["lat_p99_ms", "fixed_lat_p50_ms",
                                                     "fixed_lat_p99_ms"]),
                           ("win", ["raw_window_median_s", "window_median_s",
                                    "window_max_s"])):
            files[name] = os.path.join(tmp, name + ".dat")
            with open(files[name], "w") as f:
                for s in systems:
                    if all(summary[s].get(k) is None for k in keys):
                        continue  # gregor no fsync has no kills
                    f.write('"%s" %s\n' % (names[s], " ".join(fmt(summary[s].get(k))
                                                              for k in keys)))
        script = """set terminal pngcairo size 1350,480 font ",10"
set output "%(out)s"
set multiplot layout 1,3 title "RF 3, min.insync.replicas 2, acks=all, 1 KiB records, 3 brokers on a 3-node ZooKeeper (medians)"
%(style)sset xtics font ",9"
set ylabel "MB/s (gregor perf producer)"
plot "%(tp)s" using 2:xtic(1) title "throughput" lc rgb "#9b30d9"
set ylabel "send-to-ack latency, ms (log scale)"
set logscale y
set yrange [1:*]
plot "%(lat)s" using 2:xtic(1) title "p99 full speed" lc rgb "#9b30d9", "" using 3 title "p50 at %(rate)s/s" lc rgb "#2ca58d", "" using 4 title "p99 at %(rate)s/s" lc rgb "#d95f02"
unset logscale y
set yrange [0:*]
set ylabel "kill -9 of a leader -> first acks=all ack, s"
plot "%(win)s" using 2:xtic(1) title "raw Produce, median" lc rgb "#9b30d9", "" using 3 title "librdkafka, median" lc rgb "#2ca58d", "" using 4 title "librdkafka, max" lc rgb "#d95f02"
unset multiplot
""" % {"out": path, "tp": files["tp"], "lat": files["lat"], "win": files["win"],
               "rate": rate, "style": HISTOGRAM_STYLE}
        return gnuplot(script)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rate", type=int, default=5000,
                    help="records/s of the fixed-rate latency run (0: none)")
    ap.add_argument("--rate-seconds", type=int, default=10)
    ap.add_argument("--kills", type=int, default=3, help="kills per run of gregor and kafka")
    ap.add_argument("--systems", default="gregor,kafka,gregor-nofsync")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--plot", default=os.path.join(ROOT, "docs", "bench", "replication.png"))
    ap.add_argument("--table", metavar="RESULT_JSON",
                    help="only print the BENCHMARKS.md table of an earlier result file")
    ap.add_argument("--plot-only", metavar="RESULT_JSON",
                    help="only draw the plot of an earlier result file")
    a = ap.parse_args()
    if a.table:
        with open(a.table) as f:
            print(table(json.load(f)))
        return 0
    if a.plot_only:
        with open(a.plot_only) as f:
            result = json.load(f)
        return 0 if plot(result["summary"], a.plot, result["rate"]) else 1
    systems = a.systems.split(",")
    unknown = [s for s in systems if s not in SYSTEM_OVERRIDES]
    if unknown:
        sys.exit("replication.py: unknown system(s) %s (%s)" % (unknown, ",".join(SYSTEM_OVERRIDES)))
    if not os.access(GREGOR, os.X_OK):
        sys.exit("replication.py: %s not found (make)" % GREGOR)
    classpath = cluster.kafka_classpath() if "kafka" in systems else None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = time.strftime("%Y-%m-%dT%H%MZ", time.gmtime())
    base = tempfile.mkdtemp(prefix="gregor-bench-replication-")
    t_begin = time.monotonic()

    def log(msg):
        print("[%6.1f s] %s" % (time.monotonic() - t_begin, msg), flush=True)

    commit = git_commit()
    load0 = os.getloadavg()
    ens = ZkEnsemble.on_free_ports(os.path.join(base, "zk"))
    ens.start()
    log("ZooKeeper ensemble %s, leader node %s; load average %.2f %.2f %.2f"
        % ((ens.connect, ens.leader()) + load0))
    rows = []
    try:
        for n in range(a.runs):
            for system in systems:  # interleaved, so drift of the machine hits every system
                run = Run(system, ens, "/bench-repl-%s-%d" % (system, n),
                          os.path.join(base, "run%d-%s" % (n, system)), classpath,
                          dict(SYSTEM_OVERRIDES[system]))
                kills = a.kills if system in ("gregor", "kafka") else 0
                try:
                    rows.append(run_once(run, system, n, log,
                                         lambda: measure(run, a, kills, log)))
                finally:
                    shutil.rmtree(os.path.join(base, "run%d-%s" % (n, system)),
                                  ignore_errors=True)
    finally:
        ens.stop()
        shutil.rmtree(base, ignore_errors=True)
    summary = summarize(rows)
    result = {
        "stamp": stamp, "command": "python3 bench/replication.py " + " ".join(sys.argv[1:]),
        "gregor_commit": commit,
        "kafka_version": "3.9.1", "kafka_jvm_opts": cluster.SHIPPED_JVM_OPTS,
        "zookeeper_session_timeout_ms": SESSION_MS, "records": a.records,
        "partitions": a.partitions, "kills_per_run": a.kills, "rate": a.rate,
        "rate_seconds": a.rate_seconds, "record_size": RECORD_SIZE,
        "min_insync_replicas": MIN_INSYNC, "brokers": list(IDS),
        "machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname()),
                    "loadavg_start": load0, "loadavg_end": os.getloadavg()},
        "elapsed_s": round(time.monotonic() - t_begin, 1), "rows": rows, "summary": summary,
    }
    path = save_result(a.out, stamp, "replication", result)
    print(table(result))
    print("wrote %s" % path)
    if a.plot and plot(summary, a.plot, a.rate):
        print("wrote %s" % a.plot)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
