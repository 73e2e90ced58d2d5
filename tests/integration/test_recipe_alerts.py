"""The recipe-alert example (examples/recipe-alerts) end to end: three kafka-python stages on gregor,
pinned to api_version=(0, 10) as the tutorial pins them.

Runs the example's own run.sh against a fresh broker, then reads both topics back to check that
every page was published exactly once and parsed into the expected JSON.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

import kafka  # noqa: F401
import bs4  # noqa: F401
from kafka import KafkaConsumer, TopicPartition  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "recipe-alerts")
PAGES = os.path.join(EXAMPLE, "pages")
RUN_TIMEOUT = 300


def recipe_pages():
    """The raw HTML of every recipe page, as the producer publishes it (stripped)."""
    out = []
    for name in sorted(os.listdir(PAGES)):
        if name.endswith(".html") and name != "index.html":
            with open(os.path.join(PAGES, name), encoding="utf-8") as f:
                out.append(f.read().strip())
    return out


def expected_alerts():
    with open(os.path.join(EXAMPLE, "expected-alerts.txt"), encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line]


def run_pipeline(bootstrap):
    # Own process group, so a hung stage is killed with run.sh rather than left behind.
    proc = subprocess.Popen([os.path.join(EXAMPLE, "run.sh"), bootstrap], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", start_new_session=True,
                            env=dict(os.environ, PYTHON=sys.executable))
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("run.sh did not finish within %ds\nstdout:\n%s\nstderr:\n%s" % (RUN_TIMEOUT, out, err))
    return proc.returncode, out, err


def read_topic(bootstrap, topic):
    """Every message of `topic` from offset 0, read with the example's client settings."""
    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False, api_version=(0, 10),
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        partitions = consumer.partitions_for_topic(topic)
        assert partitions, "no partitions for topic %s" % topic
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        return list(consumer)
    finally:
        consumer.close()


def test_example_pins_the_tutorials_api_version():
    """The example's clients are the tutorial's as written: every KafkaProducer/KafkaConsumer
    pins api_version=(0, 10) (Produce v2, Fetch v2, ListOffsets v0 with magic-1 message sets)."""
    for name in ("producer-raw-recipes.py", "producer_consumer_parse_recipes.py", "consumer-notification.py"):
        with open(os.path.join(EXAMPLE, name), encoding="utf-8") as f:
            src = f.read()
        clients = src.count("KafkaProducer(") + src.count("KafkaConsumer(")
        assert clients > 0 and src.count("api_version=(0, 10)") == clients, name


def test_recipe_alert_pipeline(broker):
    rc, out, err = run_pipeline(broker.bootstrap)
    report = "run.sh exited %d\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)
    assert rc == 0, report
    # A fresh broker: each alert exactly once, in publication order, and nothing else alerted.
    assert [line for line in out.splitlines() if line.startswith("Alert: ")] == expected_alerts(), report
    pages = recipe_pages()
    assert out.count("Processing..") == len(pages), report

    raw = read_topic(broker.bootstrap, "raw_recipes")
    assert len(raw) == len(pages), "raw_recipes holds %d messages for %d pages" % (len(raw), len(pages))
    assert all(m.key == b"raw" for m in raw)
    assert sorted(m.value.decode("utf-8") for m in raw) == sorted(pages)
    assert sorted((m.partition, m.offset) for m in raw) == [(raw[0].partition, i) for i in range(len(pages))]

    parsed = read_topic(broker.bootstrap, "parsed_recipes")
    assert len(parsed) == len(pages), "parsed_recipes holds %d messages for %d pages" % (len(parsed), len(pages))
    assert all(m.key == b"parsed" for m in parsed)
    recipes = [json.loads(m.value.decode("utf-8")) for m in parsed]
    for r in recipes:
        assert set(r) == {"title", "submitter", "description", "calories", "ingredients"}, r
        assert r["title"] and r["submitter"] and r["description"] and r["ingredients"], r
    above = ["Alert: %s calories count is %d" % (r["title"], r["calories"]) for r in recipes if r["calories"] > 200]
    assert above == expected_alerts()


def test_run_sh_says_what_to_install(tmp_path):
    """On a machine without kafka-python/bs4, run.sh names what to install instead of dying in a
    traceback halfway (it died with `ModuleNotFoundError: No module named 'bs4'`)."""
    import venv
    bare = tmp_path / "bare"
    venv.create(str(bare), with_pip=False)
    r = subprocess.run([os.path.join(EXAMPLE, "run.sh"), "127.0.0.1:1"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHON=str(bare / "bin" / "python")))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    assert "make test-deps" in r.stderr and "beautifulsoup4" in r.stderr and "kafka-python" in r.stderr
    assert "==" not in r.stdout  # no stage ran
