#!/usr/bin/env python3
"""Compaction numbers (issue 17): gregor's log cleaner beside Apache Kafka 4.x's, in one run, on
the same workload, one system at a time (systems interleaved over the runs: gregor, kafka,
gregor, kafka, ...), each a single node on a fresh data dir.

Per system and run:
  dirty     topic `dirty` (1 partition, segment.bytes 16 MiB, cleanup.policy=delete with
            retention off, so nothing cleans it yet): --keys keys overwritten in turn until
            --dirty-mb MB are written (values --value-size bytes, incompressible, producer
            compression none, acks=1).
  quiet     a fixed-rate producer (a child process, confluent_kafka, --rate records/s of
            --rate-size bytes, linger.ms 5, acks=1) on topic `lat` (delete policy): after a
            --warmup-seconds warm-up (the JVM's JIT), --quiet-seconds of produce->ack latencies with nothing to clean.
  clean     `dirty` switched to cleanup.policy=compact (IncrementalAlterConfigs, on both); the
            cleaner (log.cleaner.backoff.ms 200 on both, every other log.cleaner.* key at its
            default: 1 thread, 128 MiB dedupe buffer, no I/O throttle) cleans every inactive
            segment; done when the log dir's cleaner-offset-checkpoint reaches the active
            segment's base. The latency producer keeps going: its records sent in that window
            are the "during cleaning" figures.
  MB/s      the inactive segments' bytes (dirty log, from the files) / (checkpoint seen - alter
            sent): wall time, including the pick-up (up to one backoff); and beside it each
            cleaner's own summary line ("N MB of log processed in S seconds (R MB/sec)", the
            same words on both), summed over its rounds.

usage: python3 bench/compaction.py [--runs 3] [--dirty-mb 500] [--keys 20000] [--value-size 1000]
       [--rate 1000] [--rate-size 512] [--quiet-seconds 8] [--warmup-seconds 5] [--systems gregor,kafka]
       [--gregor-override k=v ...]
       [--out bench/results] [--table RESULT_JSON]
Writes bench/results/<stamp>-compaction.json and prints the Markdown table of BENCHMARKS.md.
"""
import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import HARNESS, HERE, cpu_seconds

SEGMENT = 16 << 20
BACKOFF_MS = 200
GREGOR_OVERRIDES = []   # --gregor-override k=v (e.g. log.cleaner.io.max.bytes.per.second)


class Gregor(benchlib.Gregor):
    def __init__(self, base):
        super().__init__(base, ["log.cleaner.backoff.ms=%d" % BACKOFF_MS] + GREGOR_OVERRIDES)


class Kafka(benchlib.Kafka):
    def __init__(self, base):
        super().__init__(base, ["log.cleaner.backoff.ms=%d" % BACKOFF_MS])




def create_topics(bootstrap):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([
        NewTopic("dirty", 1, 1, config={"cleanup.policy": "delete", "retention.ms": "-1",
                                        "retention.bytes": "-1", "segment.bytes": str(SEGMENT),
                                        "min.cleanable.dirty.ratio": "0.5"}),
        NewTopic("lat", 1, 1, config={"cleanup.policy": "delete"})])
    for f in fs.values():
        f.result(60)


def set_compact(bootstrap):
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource)
    a = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, "dirty", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([res]).values():
        f.result(60)


def produce_dirty(bootstrap, dirty_mb, keys, value_size):
    from confluent_kafka import Producer
    rnd = random.Random(1)
    values = [rnd.randbytes(value_size) for _ in range(64)]
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 20,
                  "batch.size": 1 << 20, "compression.type": "none",
                  "queue.buffering.max.kbytes": 1 << 20})
    n = dirty_mb * 1000000 // value_size
    errors = []
    t0 = time.time()
    for i in range(n):
        while True:
            try:
                p.produce("dirty", key=b"key-%07d" % (i % keys), value=values[i % 64],
                          partition=0, on_delivery=lambda e, m: errors.append(e) if e else None)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(300) == 0 and not errors, errors[:3]
    return n, time.time() - t0


def latency_producer(bootstrap, topic, rate, size, out_path):
    """Child process: one record every 1/rate s until SIGTERM; writes [(send wall time, ack
    latency us)] as JSON."""
    from confluent_kafka import Producer
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5,
                  "compression.type": "none"})
    samples = []
    value = os.urandom(size)
    t0 = time.monotonic()
    wall0 = time.time()
    i = 0
    while not stop:
        due = t0 + i / rate
        now = time.monotonic()
        if now < due:
            p.poll(min(due - now, 0.01))
            continue
        sent = time.monotonic()

        def cb(err, msg, sent=sent):
            if err is None:
                samples.append((wall0 + (sent - t0), (time.monotonic() - sent) * 1e6))
        p.produce(topic, value=value, partition=0, on_delivery=cb)
        p.poll(0)
        i += 1
    p.flush(30)
    with open(out_path, "w") as f:
        json.dump(samples, f)


def quantiles(lat):
    if not lat:
        return {"n": 0}
    s = sorted(lat)

    def q(x):
        return round(s[min(len(s) - 1, int(x * len(s)))] / 1000.0, 2)
    return {"n": len(s), "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": round(s[-1] / 1000.0, 2)}


def checkpoint(data_dir, topic):
    try:
        lines = open(os.path.join(data_dir, "cleaner-offset-checkpoint")).read().split("\n")
        for line in lines[2:2 + int(lines[1])]:
            t, p, o = line.split(" ")
            if t == topic and p == "0":
                return int(o)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def segments(part_dir):
    """[(base offset, bytes)] of the live .log files."""
    out = []
    for f in os.listdir(part_dir):
        if f.endswith(".log"):
            out.append((int(f[:-4]), os.path.getsize(os.path.join(part_dir, f))))
    return sorted(out)


SUMMARY = re.compile(r"cleaned log dirty-0 \(dirty section = \[(\d+), (\d+)\]\)\s*"
                     r"([\d.]+) MB of log processed in ([\d.]+) seconds \(([\d.]+) MB/sec\)")


def one(system_cls, args, base):
    b = system_cls(base)
    b.start()
    try:
        create_topics(b.bootstrap)
        records, produce_s = produce_dirty(b.bootstrap, args.dirty_mb, args.keys, args.value_size)
        part = os.path.join(b.data_dir, "dirty-0")
        segs = segments(part)
        active_base = segs[-1][0]
        dirty_bytes = sum(sz for base_off, sz in segs[:-1])
        lat_out = os.path.join(base, "lat.json")
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--latency-child",
                                  b.bootstrap, str(args.rate), str(args.rate_size), lat_out])
        time.sleep(args.warmup_seconds)
        quiet_from = time.time()
        time.sleep(args.quiet_seconds)
        quiet_to = time.time()
        cpu0 = cpu_seconds(b.pid())
        t_alter = time.time()
        set_compact(b.bootstrap)
        deadline = t_alter + args.timeout
        while checkpoint(b.data_dir, "dirty") < active_base:
            if time.time() > deadline:
                raise RuntimeError("%s: no clean to %d within %ds" % (b.name, active_base,
                                                                      args.timeout))
            time.sleep(0.02)
        t_done = time.time()
        cpu1 = cpu_seconds(b.pid())
        time.sleep(1)
        child.send_signal(signal.SIGTERM)
        child.wait(60)
        samples = json.load(open(lat_out))
        quiet = [lat for t, lat in samples if quiet_from <= t < quiet_to]
        during = [lat for t, lat in samples if t_alter <= t < t_done]
        after_segs = segments(part)
        rounds = [m.groups() for m in SUMMARY.finditer(b.log_text())]
        own_mb = sum(float(r[2]) for r in rounds)
        own_s = sum(float(r[3]) for r in rounds)
        clean_s = t_done - t_alter
        return {
            "system": b.name, "records": records, "produce_s": round(produce_s, 2),
            "dirty_segments": len(segs) - 1, "dirty_bytes": dirty_bytes,
            "cleaned_bytes": sum(sz for base_off, sz in after_segs if base_off < active_base),
            "clean_wall_s": round(clean_s, 3),
            "wall_mb_per_s": round(dirty_bytes / 1e6 / clean_s, 1),
            "cleaner_rounds": len(rounds), "cleaner_mb": round(own_mb, 1),
            "cleaner_s": round(own_s, 2),
            "cleaner_mb_per_s": float(rounds[0][4]) if len(rounds) == 1 else
                                (round(own_mb / own_s, 1) if own_s > 0 else None),
            "broker_cpu_s_during_clean": round(cpu1 - cpu0, 2) if cpu0 is not None else None,
            "lat_quiet": quantiles(quiet), "lat_during_clean": quantiles(during),
            "loadavg_end": os.getloadavg()[0],
        }
    finally:
        rc = b.stop()
        if rc != 0:
            print("%s stopped with %s" % (b.name, rc), file=sys.stderr)


def med(rows, key, sub=None):
    vals = [(r[key][sub] if sub else r[key]) for r in rows]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    m = statistics.median(vals)
    r = 1 if m >= 10 else 2
    if len(vals) == 1:
        return str(round(m, r))
    return "%s (%s-%s)" % (round(m, r), round(min(vals), r), round(max(vals), r))


def table(result):
    systems = result["systems"]
    by = {s: [r for r in result["runs"] if r["system"] == s] for s in systems}
    rows = [("dirty log cleaned, MB (inactive segments)", lambda rs: med([dict(x=r["dirty_bytes"] / 1e6) for r in rs], "x")),
            ("after cleaning, MB", lambda rs: med([dict(x=r["cleaned_bytes"] / 1e6) for r in rs], "x")),
            ("alter -> checkpoint, s", lambda rs: med(rs, "clean_wall_s")),
            ("MB/s of dirty log, wall (incl. pick-up)", lambda rs: med(rs, "wall_mb_per_s")),
            ("MB/s, the cleaner's own summary", lambda rs: med(rs, "cleaner_mb_per_s")),
            ("broker CPU s over the clean", lambda rs: med(rs, "broker_cpu_s_during_clean")),
            ("produce p50 ms, nothing to clean", lambda rs: med(rs, "lat_quiet", "p50_ms")),
            ("produce p99 ms, nothing to clean", lambda rs: med(rs, "lat_quiet", "p99_ms")),
            ("produce p50 ms, while cleaning", lambda rs: med(rs, "lat_during_clean", "p50_ms")),
            ("produce p99 ms, while cleaning", lambda rs: med(rs, "lat_during_clean", "p99_ms")),
            ("produce max ms, while cleaning", lambda rs: med(rs, "lat_during_clean", "max_ms")),
            ("records acked while cleaning", lambda rs: med(rs, "lat_during_clean", "n"))]
    out = ["| %d runs, median (min-max) | %s |" % (result["args"]["runs"], " | ".join(systems)),
           "| --- |" + " --- |" * len(systems)]
    for label, f in rows:
        out.append("| %s | %s |" % (label, " | ".join(f(by[s]) for s in systems)))
    return "\n".join(out)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--latency-child":
        bootstrap, rate, size, out = sys.argv[2:6]
        latency_producer(bootstrap, "lat", float(rate), int(size), out)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dirty-mb", type=int, default=500)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--value-size", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--rate-size", type=int, default=512)
    ap.add_argument("--quiet-seconds", type=float, default=8)
    ap.add_argument("--warmup-seconds", type=float, default=5)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--systems", default="gregor,kafka")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--table")
    ap.add_argument("--gregor-override", action="append", default=[],
                    help="k=v for gregor serve (repeatable)")
    args = ap.parse_args()
    GREGOR_OVERRIDES.extend(args.gregor_override)
    if args.table:
        print(table(json.load(open(args.table))))
        return
    systems = args.systems.split(",")
    classes = {"gregor": Gregor, "kafka": Kafka}
    subprocess.run([HARNESS, "fetch"], check=True, timeout=1800)
    result, path = benchlib.run_systems("compaction", args, classes, systems, one)
    print(table(result))


if __name__ == "__main__":
    main()
