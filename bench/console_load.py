#!/usr/bin/env python3
"""Console page load time on a 10k-partition broker (issue 20).

One fresh gregor broker with gregor.http.listener=127.0.0.1:0; TOPICS x PARTS partitions made
with a Kafka admin client (confluent-kafka), one CreateTopics per topic, in a bounded loop; a few
records produced into the first topic. Then, RUNS times each:
- in headless Debian chromium through Playwright (a fresh browser context per run, so a cold
  cache): the overview page until its topic table shows the last topic's row, the first topic's
  page until its last partition's row, the message browser (partition all, from beginning,
  limit 50) until its first record row. The time the page's own API answer finished (Playwright's
  "requestfinished" event for /api/...) is noted too, so page time = API + rendering;
- plain HTTP from Python (urllib, one connection per request): /api/overview, /api/topics/<t>,
  /api/topics/<t>/messages?..., /metrics: wall time to the last byte, and the answer's size.
The broker's VmRSS/VmHWM after the topics are made and again at the end.
Prints a JSON result on stdout (and the tables on stderr).

Usage: console_load.py [--bin build/gregor] [--topics 100] [--partitions 100] [--runs 5]
Needs: the venv with confluent-kafka and playwright, /usr/bin/chromium.
"""
import argparse, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def status(pid):
    got = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            got[k] = int(v.split()[0]) // 1024       # MiB
    got["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    return got


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def summary(xs):
    return {"runs": [round(x, 1) for x in xs], "median": round(statistics.median(xs), 1), "max": round(max(xs), 1)}


def http_get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200, (url, r.status)
        body = r.read()
    return (time.perf_counter() - t0) * 1000, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "gregor"))
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--records", type=int, default=1000)
    args = ap.parse_args()
    assert 1 <= args.topics <= 1000 and 1 <= args.partitions <= 1000 and 1 <= args.runs <= 50

    d = tempfile.mkdtemp(prefix="gregor-console-load-")
    port = free_port()
    log_path = os.path.join(d, "broker.log")
    logf = open(log_path, "wb")
    proc = subprocess.Popen([args.bin, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                             "--override", "log.dirs=%s/data" % d,
                             "--override", "gregor.http.listener=127.0.0.1:0"],
                            stdout=logf, stderr=subprocess.STDOUT)
    res = {"topics": args.topics, "partitions_per_topic": args.partitions, "runs": args.runs,
           "bin": args.bin, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        base = None
        for _ in range(300):                      # 15 s for the HTTP console line
            m = re.search(r"HTTP console on (http://[0-9.]+:\d+/)", open(log_path, errors="replace").read())
            if m:
                base = m.group(1)
                break
            assert proc.poll() is None, open(log_path, errors="replace").read()
            time.sleep(0.05)
        assert base, "no HTTP console line"
        bootstrap = "127.0.0.1:%d" % port

        # The partitions: one CreateTopics per topic, each waited for (bounded: 60 s each).
        admin = AdminClient({"bootstrap.servers": bootstrap})
        names = ["lt-%03d" % i for i in range(args.topics)]
        t0 = time.time()
        for n in names:
            for f in admin.create_topics([NewTopic(n, args.partitions, 1)]).values():
                f.result(60)
        res["create_s"] = round(time.time() - t0, 1)
        log("created %d x %d partitions in %.1f s" % (args.topics, args.partitions, res["create_s"]))

        # A few records in the first topic (spread over its partitions) and one in each other topic.
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        for i in range(args.records):
            p.produce(names[0], key=b"k%d" % i, value=json.dumps({"n": i, "pad": "x" * 100}).encode(),
                      partition=i % args.partitions)
        for n in names[1:]:
            p.produce(n, value=b"hello", partition=0)
        assert p.flush(60) == 0
        del p, admin                              # the clients close before the broker stops
        time.sleep(2)
        res["after_create"] = status(proc.pid)
        log("broker after create: %s" % res["after_create"])

        t = names[0]
        msgs = "api/topics/%s/messages?partition=all&from=beginning&limit=50" % t
        raw = {}
        for path in ("api/overview", "api/topics/" + t, msgs, "metrics"):
            ms, sizes = [], []
            for _ in range(args.runs):
                a, b = http_get(base + path)
                ms.append(a); sizes.append(b)
            raw[path] = dict(summary(ms), bytes=sizes[-1])
            log("%-70s median %7.1f ms, max %7.1f ms, %d bytes" % (path, raw[path]["median"], raw[path]["max"], sizes[-1]))
        res["http_ms"] = raw

        pages = {"overview": ("#/", 'tr[data-topic="%s"]' % names[-1], "/api/overview"),
                 "topic": ("#/topics/" + t, "tr[data-partition] >> nth=%d" % (args.partitions - 1), "/api/topics/" + t),
                 "messages": ("#/topics/%s/messages" % t, "tr.record >> nth=0", "/api/topics/%s/messages" % t)}
        res["page_ms"] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for name, (frag, sel, api_path) in pages.items():
                    total, api = [], []
                    for _ in range(args.runs):
                        ctx = browser.new_context()
                        page = ctx.new_page()
                        done = []
                        page.on("requestfinished", lambda r, ap=api_path, done=done:
                                done.append(time.perf_counter()) if r.url.split("?")[0].endswith(ap) else None)
                        t0 = time.perf_counter()
                        page.goto(base + frag)
                        page.locator(sel).wait_for(timeout=60000)
                        t1 = time.perf_counter()
                        total.append((t1 - t0) * 1000)
                        api.append(((done[0] if done else t1) - t0) * 1000)
                        ctx.close()
                    res["page_ms"][name] = {"to_rendered": summary(total), "to_api_answer": summary(api)}
                    log("page %-9s rendered median %7.1f ms (max %7.1f); its API answer done at median %7.1f ms" %
                        (name, statistics.median(total), max(total), statistics.median(api)))
            finally:
                browser.close()
        res["at_end"] = status(proc.pid)
        log("broker at end: %s" % res["at_end"])
        assert proc.poll() is None, "broker died"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill(); proc.wait()
        logf.close()
        shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
