#!/usr/bin/env python3
"""TLS and SASL_SSL numbers (issue 19): gregor beside Apache Kafka 4.1.1 in one run, with the
same certificates, one system at a time (gregor, kafka, gregor, kafka, ...), each a single node
on a fresh data dir with three client listeners: PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512).

The certificates are made at run time with the openssl CLI (an EC P-256 CA, a server certificate
for localhost / 127.0.0.1 signed by it; one PEM keystore file, key + chain, given to both
systems); the SCRAM-SHA-512 credential of user `bench` (4096 iterations) is written to gregor's
<log dir>/scram-credentials and given to Kafka's storage format (--add-scram, KIP-900).

Per system, run and security protocol (PLAINTEXT, SSL, SASL_SSL in that order):
  produce    one confluent_kafka (librdkafka) producer in this process, acks=all, no
             compression, librdkafka's defaults otherwise (linger.ms 5), --size (1000) byte
             incompressible records round robin over the 3 partitions of a fresh topic for
             --seconds (5, at most --max-records), then flush: records/s and MB/s = records /
             time from the first produce to the flush's return.
  consume    one consumer (same security settings) assigned the 3 partitions from offset 0
             reads the same records back (all of them, checked by count and bytes; bounded
             by 120 s): records/s and MB/s = records / time from assign to the last record.
  handshake  bench/tls_handshake.c: --hs-threads (8) blocking clients, for --hs-seconds (4)
             (at most 300,000 connections), each connection new: TCP connect, a full TLS 1.3
             handshake verified against the CA (no session resumption), for SASL_SSL the
             SCRAM-SHA-512 exchange, and one ApiVersions v0; connections completed per second
             and the p50/p99 time of one connection.
  CPU        the broker process's CPU seconds over each phase, and over the whole run.
Before the measured phases, unmeasured: --warmup-seconds (5) of produce over SSL, read back, and
--hs-warmup-seconds (10) of new connections over SSL and again over SASL_SSL (the JIT: in a
probe at 19:10 UTC Kafka's SSL rate climbed from 30/s in its first 5 s to 120/s after 15 s, its
CPU per connection fell from 17 ms to 5 ms; gregor gets the same warm-up).

usage: python3 bench/tls.py [--runs 3] [--seconds 5] [--max-records 1000000] [--size 1000]
       [--hs-threads 8] [--hs-seconds 4] [--warmup-seconds 5] [--hs-warmup-seconds 10]
       [--systems gregor,kafka]
       [--out bench/results] [--table RESULT_JSON] [--plot RESULT_JSON PNG]
Writes bench/results/<stamp>-tls.json, the PNG beside it (gnuplot) and prints the Markdown table.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import HARNESS, HERE, HISTOGRAM_STYLE, ROOT, cpu_seconds, free_port_pair
from benchlib import Gregor as GregorNode
from benchlib import Kafka as KafkaNode

PARTITIONS = 3
USER, PASSWORD = "bench", "bench-secret"
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_SSL"]
HS_MAX_CONNS = 300000


def sh(*args, cwd):
    p = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (" ".join(args), p.stdout, p.stderr))


def make_pki(d):
    """ca.pem and server.keystore.pem (key, certificate, CA) in d, with the openssl CLI."""
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca",
       cwd=d)
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    with open(p("server.keystore.pem"), "w") as f:
        f.write(open(p("server.key")).read() + open(p("server.pem")).read() +
                open(p("ca.pem")).read())
    return p("ca.pem"), p("server.keystore.pem")


def scram_credential(password, iterations=4096):
    """Kafka's stored form of a SCRAM-SHA-512 credential (ScramCredentialUtils)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return "salt=%s,stored_key=%s,server_key=%s,iterations=%d" % (
        b64(salt), b64(hashlib.sha512(client_key).digest()),
        b64(hmac.new(salted, b"Server Key", "sha512").digest()), iterations)


def security_overrides(keystore):
    return ["ssl.keystore.type=PEM", "ssl.keystore.location=" + keystore,
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + SCRAM_JAAS]


def two_ports():
    a = free_port_pair()
    while True:
        b = free_port_pair()
        if b not in (a, a + 1, a - 1):
            return a, b


class Gregor(GregorNode):
    def __init__(self, base, pki):
        super().__init__(base, overrides=security_overrides(pki[1]))
        self.ports = dict(zip(["SSL", "SASL_SSL"], two_ports()))
        self.ports["PLAINTEXT"] = self.port
        self.extra_listeners = ",SSL://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d" % (
            self.ports["SSL"], self.ports["SASL_SSL"])
        os.makedirs(self.data_dir)
        with open(os.path.join(self.data_dir, "scram-credentials"), "w") as f:
            f.write("SCRAM-SHA-512\t%s\t%s\n" % (USER, scram_credential(PASSWORD)))


class Kafka(KafkaNode):
    def __init__(self, base, pki):
        super().__init__(base, overrides=security_overrides(pki[1]), start_attempts=2)
        self.ports = dict(zip(["SSL", "SASL_SSL"], two_ports()))
        self.env["KAFKA_EXTRA_LISTENERS"] = "SSL://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d" % (
            self.ports["SSL"], self.ports["SASL_SSL"])
        self.env["KAFKA_ADD_SCRAM"] = "SCRAM-SHA-512=[name=%s,password=%s]" % (USER, PASSWORD)

    def start(self):
        super().start()
        self.ports["PLAINTEXT"] = self.port  # a second attempt moves the PLAINTEXT port


def client_conf(b, proto, ca):
    c = {"bootstrap.servers": "localhost:%d" % b.ports[proto], "security.protocol": proto}
    if proto != "PLAINTEXT":
        c["ssl.ca.location"] = ca
    if proto == "SASL_SSL":
        c.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER,
                  "sasl.password": PASSWORD})
    return c


def create_topics(b, names):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        f.result(60)


def produce(conf, topic, size, seconds, max_records, pid):
    from confluent_kafka import Producer
    p = Producer(dict(conf, **{"acks": "all", "compression.type": "none"}))
    values = [os.urandom(size) for _ in range(16)]
    # no delivery callback (a call per record would cost the Python thread): consume() reads
    # every record back, which checks that each one was written
    # connected and the topic's metadata known before the clock starts
    p.list_topics(topic, timeout=30)
    bcpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    n = 0
    while n < max_records and (n & 1023 or time.monotonic() - t0 < seconds):
        try:
            p.produce(topic, value=values[n & 15], partition=n % PARTITIONS)
            n += 1
        except BufferError:
            p.poll(0.005)
        if n & 1023 == 0:
            p.poll(0)
    left = p.flush(60)
    wall = time.monotonic() - t0
    bcpu1 = cpu_seconds(pid)
    if left:
        raise RuntimeError("%d records not delivered after a 60 s flush" % left)
    return {"records": n, "bytes": n * size, "wall_s": round(wall, 3),
            "records_per_s": round(n / wall), "mb_per_s": round(n * size / 1e6 / wall, 1),
            "broker_cpu_s": round(bcpu1 - bcpu0, 2),
            "broker_cpu_us_per_record": round((bcpu1 - bcpu0) * 1e6 / n, 2)}


def consume(conf, topic, records, size, pid):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer(dict(conf, **{"group.id": "tls-bench", "enable.auto.commit": False}))
    bcpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    c.assign([TopicPartition(topic, i, 0) for i in range(PARTITIONS)])
    n = nbytes = 0
    last = t0
    try:
        while n < records and time.monotonic() - t0 < 120:
            for m in c.consume(10000, 1.0):
                if m.error() is not None:
                    raise RuntimeError("consume: %s" % m.error())
                n += 1
                nbytes += len(m.value())
                last = time.monotonic()
    finally:
        c.close()
    bcpu1 = cpu_seconds(pid)
    if n != records or nbytes != records * size:
        raise RuntimeError("consumed %d records (%d bytes) of %d" % (n, nbytes, records))
    wall = last - t0
    return {"records": n, "wall_s": round(wall, 3), "records_per_s": round(n / wall),
            "mb_per_s": round(nbytes / 1e6 / wall, 1), "broker_cpu_s": round(bcpu1 - bcpu0, 2),
            "broker_cpu_us_per_record": round((bcpu1 - bcpu0) * 1e6 / n, 2)}


def handshakes(tool, b, proto, ca, threads, seconds, pid):
    args = [tool, "127.0.0.1", str(b.ports[proto]), proto.lower(), str(threads), str(seconds),
            str(HS_MAX_CONNS)]
    if proto != "PLAINTEXT":
        args.append(ca)
    if proto == "SASL_SSL":
        args += [USER, PASSWORD]
    bcpu0 = cpu_seconds(pid)
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    bcpu1 = cpu_seconds(pid)
    if r.returncode != 0:
        raise RuntimeError("tls_handshake: %s" % r.stderr)
    out = json.loads(r.stdout)
    out["broker_cpu_s"] = round(bcpu1 - bcpu0, 2)
    out["broker_cpu_us_per_conn"] = round((bcpu1 - bcpu0) * 1e6 / max(out["ok"], 1), 1)
    if out["ok"] == 0:
        raise RuntimeError("no handshake completed on %s: %s" % (proto, out["first_error"]))
    return out


def one(system_cls, args, base):
    b = system_cls(base, args.pki)
    b.start()
    try:
        pid = b.pid()
        cpu0 = cpu_seconds(pid)
        topics = ["warmup"] + ["tp-" + p.lower() for p in PROTOCOLS]
        create_topics(b, topics)
        w = produce(client_conf(b, "SSL", args.ca), "warmup", args.size, args.warmup_seconds,
                    args.max_records, pid)
        # read back too: the first consumer of group tls-bench must not pay for the group
        # coordinator's __consumer_offsets inside a measured phase (it cost ~2 s, 19:22 UTC)
        consume(client_conf(b, "SSL", args.ca), "warmup", w["records"], args.size, pid)
        for proto in ("SSL", "SASL_SSL"):
            handshakes(args.tool, b, proto, args.ca, args.hs_threads, args.hs_warmup_seconds, pid)
        res = {"system": b.name}
        for proto in PROTOCOLS:
            conf = client_conf(b, proto, args.ca)
            topic = "tp-" + proto.lower()
            pr = produce(conf, topic, args.size, args.seconds, args.max_records, pid)
            co = consume(conf, topic, pr["records"], args.size, pid)
            hs = handshakes(args.tool, b, proto, args.ca, args.hs_threads, args.hs_seconds, pid)
            res[proto] = {"produce": pr, "consume": co, "handshake": hs}
        res["broker_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
        res["loadavg_end"] = os.getloadavg()[0]
        return res
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


ROWS = [  # label, path in a protocol's result, digits
    ("produce records/s", "produce.records_per_s", 0),
    ("produce MB/s", "produce.mb_per_s", 1),
    ("broker CPU us per record, produce", "produce.broker_cpu_us_per_record", 2),
    ("consume records/s", "consume.records_per_s", 0),
    ("consume MB/s", "consume.mb_per_s", 1),
    ("broker CPU us per record, consume", "consume.broker_cpu_us_per_record", 2),
    ("new connections/s", "handshake.per_s", 0),
    ("connection p50 ms", "handshake.p50_ms", 2),
    ("connection p99 ms", "handshake.p99_ms", 2),
    ("broker CPU us per connection", "handshake.broker_cpu_us_per_conn", 0),
]


def table(result):
    systems = result["systems"]
    by = {s: [r for r in result["runs"] if r["system"] == s] for s in systems}
    a = result["args"]
    ratio = systems == ["gregor", "kafka"]
    out = ["| %d runs, median (min-max) | %s |%s" % (
        a["runs"], " | ".join(systems), " gregor / kafka (medians) |" if ratio else ""),
        "| --- |" + " --- |" * (len(systems) + (1 if ratio else 0))]
    rows = [(proto, label, proto + "." + path, d) for proto in PROTOCOLS
            for label, path, d in ROWS] + [("", "broker CPU s, whole run", "broker_cpu_s", 2)]
    for proto, label, path, digits in rows:
        cells = [spread([get(r, path) for r in by[s]], digits) for s in systems]
        row = "| %s%s | %s |" % (proto + " " if proto else "", label, " | ".join(cells))
        if ratio:
            g = [get(r, path) for r in by["gregor"] if get(r, path) is not None]
            k = [get(r, path) for r in by["kafka"] if get(r, path) is not None]
            row += " %.2f |" % (statistics.median(g) / statistics.median(k)) \
                if g and k and statistics.median(k) else " - |"
        out.append(row)
    return "\n".join(out)


def plot(result, path):
    """One PNG, three panels: produce MB/s, consume MB/s, new connections/s by protocol."""
    if shutil.which("gnuplot") is None:
        print("tls.py: gnuplot not installed, no plot", file=sys.stderr)
        return False
    systems = result["systems"]
    names = {"gregor": "gregor", "kafka": "Kafka 4.1.1"}
    colors = {"gregor": "#9b30d9", "kafka": "#2ca58d"}
    by = {s: [r for r in result["runs"] if r["system"] == s] for s in systems}

    def med(s, p):
        vals = [get(r, p) for r in by[s] if get(r, p) is not None]
        return "%.3f" % statistics.median(vals) if vals else "NaN"
    with tempfile.TemporaryDirectory() as tmp:
        panels = []
        for metric, ylabel in (("produce.mb_per_s", "produce MB/s (acks=all)"),
                               ("consume.mb_per_s", "consume MB/s"),
                               ("handshake.per_s", "new connections/s (log scale)")):
            dat = os.path.join(tmp, metric + ".dat")
            with open(dat, "w") as f:
                for proto in PROTOCOLS:
                    f.write('"%s" %s\n' % (proto, " ".join(med(s, proto + "." + metric)
                                                            for s in systems)))
            series = ", ".join('"%s" using %d%s title "%s" lc rgb "%s"' % (
                dat if i == 0 else "", i + 2, ":xtic(1)" if i == 0 else "", names.get(s, s),
                colors.get(s, "#d95f02")) for i, s in enumerate(systems))
            log = "set logscale y\nset yrange [1:*]\n" if metric == "handshake.per_s" else ""
            panels.append('%sset ylabel "%s"\nplot %s\n' % (log, ylabel, series))
        script = """set terminal pngcairo size 1400,460 font ",10" noenhanced
set output "%(out)s"
set multiplot layout 1,3 title "PLAINTEXT, SSL, SASL_SSL (SCRAM-SHA-512), 1 KB records, single node, same certificates (medians of %(runs)d runs)"
%(style)s%(panels)sunset multiplot
""" % {"out": path, "runs": result["args"]["runs"], "style": HISTOGRAM_STYLE,
            "panels": "".join(panels)}
        p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if p.returncode != 0:
            print("gnuplot failed: %s" % p.stderr, file=sys.stderr)
            return False
        return True


def build_tool(d):
    tool = os.path.join(d, "tls_handshake")
    subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", tool,
                    os.path.join(HERE, "tls_handshake.c"), "-lssl", "-lcrypto", "-lpthread"],
                   check=True, timeout=120)
    return tool


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--max-records", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--hs-threads", type=int, default=8)
    ap.add_argument("--hs-seconds", type=int, default=4)
    ap.add_argument("--warmup-seconds", type=float, default=5)
    ap.add_argument("--hs-warmup-seconds", type=int, default=10)
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
    with tempfile.TemporaryDirectory(prefix="tls-bench-pki-") as pki:
        args.tool = build_tool(pki)
        args.ca, keystore = make_pki(pki)
        args.pki = (args.ca, keystore)
        result, path = benchlib.run_systems("tls", args, classes, systems, one)
    png = path[:-len(".json")] + ".png"
    if plot(result, png):
        print(png)
    print(table(result))


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
