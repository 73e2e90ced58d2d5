"""Apache Kafka's own DumpLogSegments judges logs written by gregor's storage engine.

A small C program (kafka_dump_compat_writer.c, linked against build/libgregor.a) writes three
partition logs with plog: several segments, every codec, keys and headers, idempotent-producer
batches and a LogAppendTime topic. Kafka 4.0's kafka.tools.DumpLogSegments (jars fetched once
from Maven Central with `mvn dependency:copy-dependencies` into a cache dir) must verify the
indexes and time indexes without complaint and deep-iterate every batch; `gregor dump-log` must
print exactly the same lines. Skips only when Java or Maven (or the jars) are unavailable.
"""
import glob
import os
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREGOR = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
BUILD = os.path.dirname(GREGOR)
KAFKA_VERSION = os.environ.get("GREGOR_KAFKA_VERSION", "4.0.0")
CACHE = os.environ.get(
    "GREGOR_KAFKA_JARS",
    os.path.join(os.path.expanduser("~"), ".cache", "gregor", "kafka-%s-jars" % KAFKA_VERSION))

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gregor</groupId><artifactId>kafka-dump-compat</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>%s</version></dependency>
  </dependencies>
</project>
"""


def unavailable(why):
    # The Kafka jars are part of the test: not having them is a failure, never a skip.
    pytest.fail(why)


def kafka_classpath():
    if shutil.which("java") is None or shutil.which("mvn") is None:
        unavailable("java or mvn not installed")
    if not glob.glob(os.path.join(CACHE, "kafka_2.13-*.jar")):
        os.makedirs(CACHE, exist_ok=True)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "pom.xml"), "w") as f:
                f.write(POM % KAFKA_VERSION)
            r = subprocess.run(["mvn", "-q", "-B", "dependency:copy-dependencies",
                                "-DoutputDirectory=" + CACHE], cwd=d, capture_output=True,
                               text=True, timeout=900)
            if r.returncode != 0 or not glob.glob(os.path.join(CACHE, "kafka_2.13-*.jar")):
                unavailable("could not fetch Kafka %s jars with Maven: %s"
                            % (KAFKA_VERSION, (r.stdout + r.stderr)[-500:]))
    return os.path.join(CACHE, "*")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    lib = os.path.join(BUILD, "libgregor.a")
    assert os.path.exists(lib), "build/libgregor.a missing: run make first"
    out = tmp_path_factory.mktemp("compat")
    exe = str(out / "writer")
    cc = os.environ.get("CC", "cc")
    # The sanitizer build's library needs the sanitizer runtimes at link time.
    san = ["-fsanitize=address,undefined"] if "asan" in os.path.basename(BUILD) else []
    subprocess.run([cc] + san + ["-std=c11", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "src"),
                    os.path.join(ROOT, "tests", "integration", "kafka_dump_compat_writer.c"),
                    lib, "-lz", "-lzstd", "-llz4", "-lsnappy", "-lpthread", "-lm", "-o", exe],
                   check=True)
    logdir = out / "logs"
    logdir.mkdir()
    subprocess.run([exe, str(logdir)], check=True)
    files = sorted(glob.glob(str(logdir / "compat-*" / "*.log")) +
                   glob.glob(str(logdir / "compat-*" / "*.index")) +
                   glob.glob(str(logdir / "compat-*" / "*.timeindex")))
    assert len(files) >= 9
    return files


def kafka_dump(cp, flags, files):
    r = subprocess.run(["java", "-cp", cp, "kafka.tools.DumpLogSegments"] + flags +
                       ["--files", ",".join(files)], capture_output=True, text=True, timeout=300)
    err = "\n".join(l for l in r.stderr.splitlines() if not l.startswith("SLF4J"))
    return r.returncode, r.stdout, err


def gregor_dump(flags, files):
    r = subprocess.run([GREGOR, "dump-log"] + flags + ["--files", ",".join(files)],
                       capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr.strip()


@pytest.mark.parametrize("flags", [
    ["--verify-index-only"],
    ["--index-sanity-check"],
    ["--deep-iteration"],
    ["--deep-iteration", "--print-data-log"],
    [],
])
def test_kafka_accepts_and_gregor_prints_the_same(logs, flags):
    cp = kafka_classpath()
    rc, out, err = kafka_dump(cp, flags, logs)
    assert rc == 0, err
    # Kafka finds no index/time-index mismatch, no missing offset, no gap, no torn tail.
    assert err == "", err
    assert "invalid bytes" not in out
    assert "isvalid: false" not in out
    if "--deep-iteration" in flags:
        assert out.count("| offset: ") == 120 // 4 * 10 + 60 // 4 * 10 * 2
        assert "compresscodec: zstd" in out and "compresscodec: snappy" in out
        assert "LogAppendTime: 1700000099999" in out
        assert "producerId: 4242 producerEpoch: 3" in out
    if "--index-sanity-check" in flags:
        checked = out.count("passed sanity check.") + out.count(" is empty.")
        assert checked == len([f for f in logs if not f.endswith(".log")])
    grc, gout, gerr = gregor_dump(flags, logs)
    assert grc == 0, gerr
    assert gout.splitlines() == out.splitlines()
    assert gerr == err
