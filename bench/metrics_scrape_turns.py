#!/usr/bin/env python3
"""How long a /metrics scrape holds the event loop, on a 10k-partition broker (issue 20).

One data dir with TOPICS x PARTS partitions (made by confluent-kafka's AdminClient, one
CreateTopics per topic, as bench/console_load.py does) is served by each broker binary given,
one after the other (each a fresh process on the same data dir). For each: a probe process
sends ApiVersions v0 over one plain socket, one at a time, and notes each round trip; the main
process scrapes /metrics SCRAPES times one after another. The probe's longest round trips while
scrapes run bound the longest loop turns from below (a probe that arrives as a turn starts
waits for all of it); the same probe without scrapes gives the idle baseline. Prints a JSON
result on stdout.

Usage: metrics_scrape_turns.py [--topics 100] [--partitions 100] [--scrapes 50] BIN [BIN ...]
"""
import argparse, json, os, re, shutil, socket, statistics, struct, subprocess, sys, tempfile
import multiprocessing, time, urllib.request

from confluent_kafka.admin import AdminClient, NewTopic


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def start(binary, d, port):
    logf = open(os.path.join(d, "broker-%d.log" % port), "wb")
    proc = subprocess.Popen([binary, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                             "--override", "log.dirs=%s/data" % d,
                             "--override", "gregor.http.listener=127.0.0.1:0"],
                            stdout=logf, stderr=subprocess.STDOUT)
    for _ in range(2400):                      # 120 s until ready
        m = re.search(r"HTTP console on (http://[0-9.]+:\d+/)", open(logf.name, errors="replace").read())
        if m:
            try:  # ready: the logs are loaded and the Kafka listener is up
                with urllib.request.urlopen(m.group(1) + "health/ready", timeout=5) as r:
                    if r.status == 200:
                        return proc, m.group(1)
            except OSError:
                pass
        assert proc.poll() is None, open(logf.name, errors="replace").read()
        time.sleep(0.05)
    raise AssertionError("no HTTP console line")


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        assert c, "connection closed"
        b += c
    return b


def probe(port, stop, q):
    """ApiVersions v0 round trips (ms) until stop is set, put on q at the end (a process of its
    own: a thread would share the interpreter lock with the scrapes' reads)."""
    out = []
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    corr = 0
    while not stop.is_set():
        corr += 1
        body = struct.pack(">hhih", 18, 0, corr, 5) + b"probe"
        t0 = time.perf_counter()
        s.sendall(struct.pack(">i", len(body)) + body)
        n = struct.unpack(">i", recv_exact(s, 4))[0]
        got = recv_exact(s, n)
        out.append((time.perf_counter() - t0) * 1000)
        assert struct.unpack(">i", got[:4])[0] == corr
        time.sleep(0.0005)
    s.close()
    q.put(out)


def measure(port, base, scrapes):
    res = {}
    for phase in ("idle", "scraping"):
        stop, q = multiprocessing.Event(), multiprocessing.Queue()
        th = multiprocessing.Process(target=probe, args=(port, stop, q))
        th.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        walls, size = [], 0
        if phase == "idle":
            time.sleep(3)
        else:
            for _ in range(scrapes):
                t1 = time.perf_counter()
                with urllib.request.urlopen(base + "metrics", timeout=60) as r:
                    assert r.status == 200
                    size = len(r.read())
                walls.append((time.perf_counter() - t1) * 1000)
        stop.set()
        lat = sorted(q.get(timeout=60))
        th.join(60)
        res[phase] = {"probes": len(lat), "max_ms": round(lat[-1], 2),
                      "p99_ms": round(lat[int(len(lat) * 0.99)], 2),
                      "over_5ms": sum(1 for x in lat if x > 5),
                      "median_ms": round(statistics.median(lat), 3),
                      "seconds": round(time.perf_counter() - t0, 1)}
        if walls:
            res[phase]["scrape_ms_median"] = round(statistics.median(walls), 1)
            res[phase]["scrape_bytes"] = size
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("bins", nargs="+")
    args = ap.parse_args()
    assert 1 <= args.topics <= 1000 and 1 <= args.partitions <= 1000 and 1 <= args.scrapes <= 1000
    d = tempfile.mkdtemp(prefix="gregor-scrape-turns-")
    out = {"topics": args.topics, "partitions_per_topic": args.partitions, "scrapes": args.scrapes,
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": []}
    try:
        for i, binary in enumerate(args.bins):
            port = free_port()
            proc, base = start(binary, d, port)
            try:
                if i == 0:
                    admin = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % port})
                    t0 = time.time()
                    for n in ["lt-%03d" % k for k in range(args.topics)]:
                        for f in admin.create_topics([NewTopic(n, args.partitions, 1)]).values():
                            f.result(60)
                    del admin
                    log("created %d x %d partitions in %.1f s" % (args.topics, args.partitions,
                                                                   time.time() - t0))
                    time.sleep(2)
                r = measure(port, base, args.scrapes)
                r["bin"] = binary
                out["runs"].append(r)
                log(json.dumps(r))
            finally:
                proc.terminate()
                proc.wait(60)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
