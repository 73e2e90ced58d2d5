#!/usr/bin/env python3
"""The cost of /metrics on the produce path (issue 20): two broker binaries alternating (the
order flips each round), a fresh broker and data dir per run, 1 partition, RECORDS x 1 KB
records by `gregor perf producer` at acks=1 and acks=all. OLD runs as it is (no counters: the
commit before them); NEW runs with gregor.http.listener on and /metrics scraped every second
during the run. Prints each run's produce MB/s and the broker's CPU seconds, then the medians.
The broker start and the alternation loop are bench/ab.py's.
Usage: metrics_ab.py OLD_BIN NEW_BIN PERF_BIN [ROUNDS] [RECORDS]"""
import re, shutil, statistics, subprocess, sys, threading, time, urllib.request

from ab import alternate, cpu, start

OLD, NEW, PERF = sys.argv[1], sys.argv[2], sys.argv[3]
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
RECORDS = int(sys.argv[5]) if len(sys.argv) > 5 else 500000


def scraper(log_path, stop, count):
    port = None
    while port is None and not stop.is_set():
        m = re.search(r"HTTP console on http://[^:]+:(\d+)/", open(log_path, errors="replace").read())
        port = int(m.group(1)) if m else None
        time.sleep(0.05)
    while not stop.wait(1.0):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            assert r.status == 200
            r.read()
        count[0] += 1


def run(arm, acks):
    binary, metrics = arm
    extra = ["--override", "gregor.http.listener=127.0.0.1:0"] if metrics else []
    p, d, _, log_path, log, bs = start(binary, PERF, "gregor-mab-", extra)
    stop, scrapes = threading.Event(), [0]
    th = threading.Thread(target=scraper, args=(log_path, stop, scrapes), daemon=True) if metrics else None
    if th:
        th.start()
    c0 = cpu(p.pid)
    out = subprocess.run([PERF, "perf", "producer", "--topic", "t", "--num-records", str(RECORDS),
                          "--record-size", "1024", "--throughput", "-1", "--producer-props", bs,
                          "acks=%s" % acks], capture_output=True, text=True, timeout=600).stdout
    c1 = cpu(p.pid)
    if th:
        stop.set(); th.join(15)
    m = re.search(r"\(([\d.]+) MB/sec\)", out)
    p.terminate(); p.wait(timeout=60)
    log.close()
    shutil.rmtree(d, ignore_errors=True)
    return (float(m.group(1)) if m else None), c1 - c0, scrapes[0]


res = alternate(ROUNDS, (("off", (OLD, False)), ("on", (NEW, True))), run,
                lambda rnd, acks, name, r: print(
                    "round %d acks=%s metrics %-3s: %s MB/s, broker CPU %.2f s, %d scrapes" %
                    (rnd, acks, name, r[0], r[1], r[2]), flush=True))
for acks in ("1", "all"):
    for name in ("off", "on"):
        rs = res[(acks, name)]
        mbs = [r[0] for r in rs if r[0] is not None]
        print("acks=%s metrics %-3s: median %.1f MB/s (runs %s), median broker CPU %.2f s" %
              (acks, name, statistics.median(mbs) if mbs else 0.0, mbs,
               statistics.median(r[1] for r in rs)))
