"""bench/tls.py (issue 19's TLS and SASL_SSL numbers) end to end on gregor alone, small: it must
make the certificates, start gregor with PLAINTEXT, SSL and SASL_SSL listeners, produce and read
back the same records on each, open new connections with bench/tls_handshake.c, and write a
result whose numbers hang together. Kafka's side runs in the benchmark itself (too slow for the
suite); this keeps the script from rotting between benchmark runs. The handshake tool must also
be refused what a broker refuses (a wrong SCRAM password, a certificate from another CA), so its
rate counts real authentications."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "tls.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))


def bench_env():
    env = dict(os.environ)
    env.setdefault("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
    return env


def test_tls_bench_on_gregor(tmp_path):
    p = subprocess.run([sys.executable, SCRIPT, "--runs", "1", "--systems", "gregor",
                        "--seconds", "1", "--max-records", "20000", "--hs-threads", "2",
                        "--hs-seconds", "1", "--warmup-seconds", "0.5", "--hs-warmup-seconds", "1",
                        "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=240, env=bench_env())
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    [path] = [f for f in os.listdir(tmp_path) if f.endswith("-tls.json")]
    with open(tmp_path / path) as f:
        result = json.load(f)
    [run] = result["runs"]
    assert run["system"] == "gregor"
    for proto, mode in (("PLAINTEXT", "plaintext"), ("SSL", "ssl"), ("SASL_SSL", "sasl_ssl")):
        r = run[proto]
        assert 0 < r["produce"]["records"] <= 20000
        assert r["consume"]["records"] == r["produce"]["records"]
        for phase in ("produce", "consume"):
            assert r[phase]["records_per_s"] > 0 and r[phase]["mb_per_s"] > 0
            assert r[phase]["broker_cpu_s"] >= 0
        hs = r["handshake"]
        assert hs["mode"] == mode and hs["threads"] == 2
        assert hs["ok"] > 0 and hs["failed"] == 0, hs
        assert 0 < hs["p50_ms"] <= hs["p99_ms"] <= hs["max_ms"]
    assert run["broker_cpu_s"] > 0
    assert "| SASL_SSL new connections/s |" in p.stdout


def test_handshake_tool_is_refused_a_wrong_password_and_a_foreign_ca(tmp_path):
    import tls
    pki = tmp_path / "pki"
    other = tmp_path / "other"
    pki.mkdir()
    other.mkdir()
    ca, keystore = tls.make_pki(str(pki))
    other_ca, _ = tls.make_pki(str(other))
    tool = tls.build_tool(str(tmp_path))
    os.environ.setdefault("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
    b = tls.Gregor(str(tmp_path / "g"), (ca, keystore))
    b.start()
    try:
        def run(proto, cafile, password):
            r = subprocess.run([tool, "127.0.0.1", str(b.ports[proto]), proto.lower(), "2", "1",
                                "20", cafile, tls.USER, password],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)
        good = run("SASL_SSL", ca, tls.PASSWORD)
        assert good["ok"] == 20 and good["failed"] == 0, good
        wrong = run("SASL_SSL", ca, "not-" + tls.PASSWORD)
        assert wrong["ok"] == 0 and wrong["failed"] == 20, wrong
        assert wrong["first_error"].startswith("SaslAuthenticate (client-final): error 58"), wrong
        foreign = run("SSL", other_ca, tls.PASSWORD)
        assert foreign["ok"] == 0 and foreign["failed"] == 20, foreign
        assert foreign["first_error"].startswith("TLS handshake"), foreign
        assert b.proc.poll() is None, b.log_text()
    finally:
        assert b.stop() == 0, b.log_text()
