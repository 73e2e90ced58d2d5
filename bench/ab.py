#!/usr/bin/env python3
"""A/B of two broker binaries, alternating (the order flips each round), a fresh broker and data
dir per run, 1 partition: 1,000,000 x 1 KB records by `gregor perf producer` at acks=1 and acks=all,
then `gregor perf consumer` of them. Prints (produce MB/s, broker CPU-s of the produce, consume
fetch.MB.sec, broker CPU-s of the consume) per run. Usage: ab.py OLD_BIN NEW_BIN PERF_BIN [ROUNDS];
AB_EXTRA="--enqueue-batch 1000" adds producer options. Its broker start and alternation loop
serve bench/metrics_ab.py too."""
import os, re, shutil, socket, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def start(binary, perf, prefix, extra=()):
    """A broker in a fresh data dir, its topic t made (auto-creation), so the timed run appends
    only: (process, dir, port, log path, log file, "bootstrap.servers=...")."""
    d = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    log_path = os.path.join(d, "broker.log")
    log = open(log_path, "wb")
    p = subprocess.Popen([binary, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                          "--override", "log.dirs=%s/data" % d] + list(extra),
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.05)
    bs = "bootstrap.servers=127.0.0.1:%d" % port
    subprocess.run([perf, "perf", "producer", "--topic", "t", "--num-records", "10", "--record-size", "1024",
                    "--throughput", "-1", "--producer-props", bs, "acks=1"], capture_output=True, timeout=120)
    return p, d, port, log_path, log, bs

def alternate(rounds, arms, run, show):
    """Each round, acks=1 then acks=all, run(arg, acks) for each (name, arg) of arms, the order
    flipped every other round; show(round, acks, name, result) after each. -> {(acks, name): [results]}."""
    res = {}
    for rnd in range(rounds):
        for acks in ("1", "all"):
            for name, arg in arms if rnd % 2 == 0 else arms[::-1]:
                r = run(arg, acks)
                res.setdefault((acks, name), []).append(r)
                show(rnd, acks, name, r)
    return res

def run(binary, acks, perf, extra):
    p, d, port, _, log, bs = start(binary, perf, "gregor-ab-")
    c0 = cpu(p.pid)
    out = subprocess.run([perf, "perf", "producer", "--topic", "t", "--num-records", "1000000", "--record-size", "1024",
                          "--throughput", "-1"] + extra + ["--producer-props", bs, "acks=%s" % acks],
                         capture_output=True, text=True, timeout=600).stdout
    c1 = cpu(p.pid)
    m = re.search(r"\(([\d.]+) MB/sec\)", out)
    prod = float(m.group(1)) if m else None
    out = subprocess.run([perf, "perf", "consumer", "--bootstrap-server", "127.0.0.1:%d" % port, "--topic", "t",
                          "--messages", "1000000", "--timeout", "20000"], capture_output=True, text=True, timeout=600).stdout
    c2 = cpu(p.pid)
    lines = [l for l in out.strip().splitlines() if l.strip()]
    cons = None
    if len(lines) >= 2:
        hdr = [h.strip() for h in lines[-2].split(",")]
        val = [v.strip() for v in lines[-1].split(",")]
        if "fetch.MB.sec" in hdr:
            cons = float(val[hdr.index("fetch.MB.sec")])
    p.terminate(); p.wait(timeout=60)
    log.close()
    shutil.rmtree(d, ignore_errors=True)
    return prod, c1 - c0, cons, c2 - c1

def main():
    old, new, perf = sys.argv[1], sys.argv[2], sys.argv[3]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    extra = os.environ.get("AB_EXTRA", "").split()
    res = alternate(rounds, (("old", old), ("new", new)), lambda b, acks: run(b, acks, perf, extra),
                    lambda rnd, acks, name, r: print(rnd, acks, name, r, flush=True))
    for k, v in sorted(res.items()):
        print(k, v)

if __name__ == "__main__":
    main()
