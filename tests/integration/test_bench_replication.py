"""bench/replication.py (issue 16's numbers) end to end on gregor alone, small: it must start a
3-broker cluster on a 3-node ensemble, produce a fixed count of acks=all records to an RF-3 topic
with min.insync.replicas=2, kill -9 a partition leader under an acks=all producer and time the
window, and write a result whose numbers hang together. Kafka's side runs in the benchmark itself
(too slow for the suite); this keeps the script from rotting between benchmark runs."""
import json
import os
import subprocess
import sys

import pytest

from zk_fixture import zookeeper_available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "replication.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))

# A suite that cannot run is a failure, never a skip (make test-deps installs java).
if not zookeeper_available():
    raise RuntimeError("ZooKeeper's jars or java missing: make test-deps")


def test_first_ack_after_counts_only_records_sent_after_the_kill():
    import replication
    t_kill = 100.0
    # An ack read after the kill for a record sent before it (the dead leader's last bytes), a
    # failed delivery, then the first real one.
    reports = [(99.0, 100.5, None), (100.2, 100.3, "timed out"), (100.4, 103.0, None),
               (100.1, 104.0, None)]
    assert replication.first_ack_after(reports, t_kill) == pytest.approx(103.0 - t_kill)
    assert replication.first_ack_after(reports[:2], t_kill) is None


def test_replication_bench_on_gregor(tmp_path):
    records, kills, rate = 3000, 1, 400
    env = dict(os.environ)
    env.setdefault("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
    p = subprocess.run([sys.executable, SCRIPT, "--runs", "1", "--systems", "gregor,gregor-nofsync",
                        "--records", str(records), "--partitions", "3", "--kills", str(kills),
                        "--rate", str(rate),
                        "--out", str(tmp_path), "--plot", str(tmp_path / "r.png")],
                       capture_output=True, text=True, timeout=240, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    [path] = [f for f in os.listdir(tmp_path) if f.endswith("-replication.json")]
    with open(tmp_path / path) as f:
        result = json.load(f)
    rows = {r["system"]: r for r in result["rows"]}
    assert set(rows) == {"gregor", "gregor-nofsync"}
    assert rows["gregor-nofsync"]["overrides"] == {"gregor.acks.all.fsync": "false"}
    for r in rows.values():
        assert r["records"] == records
        assert r["min_insync_replicas"] == "2"
        assert r["records_per_s"] > 0 and r["mb_per_s"] > 0
        assert 0 < r["lat_p50_ms"] <= r["lat_p99_ms"] <= r["lat_max_ms"]
        fixed = r["fixed"]  # 10 s at the fixed rate, after 5 s unmeasured
        assert fixed["records"] == rate * 10
        assert 0 < fixed["lat_p50_ms"] <= fixed["lat_p99_ms"] <= fixed["lat_max_ms"]
        assert set(r["cpu_s"]) == set(r["rss_kib"]) == {"1", "2", "3"}
        assert all(v > 0 for v in r["rss_kib"].values())
    assert rows["gregor-nofsync"]["kills"] == []
    [k] = rows["gregor"]["kills"]
    assert k["new_leader"] not in (-1, k["victim"])
    # The window cannot close before the controller decided (the znode is polled every 50 ms,
    # the acks are read every 10 ms) and is bounded by the script's own timeout.
    assert k["decision_s"] - 0.1 <= k["window_s"] < 90
    assert k["decision_s"] - 0.1 <= k["raw_window_s"] < 90
    s = result["summary"]["gregor"]
    assert s["kills"] == kills and s["window_max_s"] == k["window_s"]
    assert (tmp_path / "r.png").stat().st_size > 0
