"""The real Java client (kafka-clients 4.x, tests/java): idempotent producer, classic consumer
group, admin client, transactions.

The jar is built once per session with `mvn -q -f tests/java/pom.xml package` (CI builds it
beforehand, so this is a fast up-to-date check then). Skipped only when `java` or `mvn` is
missing; a failing build fails the tests.

group.protocol=consumer (KIP-848) is tested in test_kip848.py.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import GREGOR, ROOT, run_client_check

JAVA_DIR = os.path.join(ROOT, "tests", "java")
JAR = os.path.join(JAVA_DIR, "target", "gregor-client-check.jar")
JAVA = shutil.which("java")
MVN = shutil.which("mvn")


@pytest.fixture(scope="session")
def client_jar():
    if not JAVA or not MVN:
        pytest.fail("java and mvn are required for the Java client tests (missing: %s; make test-deps installs them)"
                    % ", ".join(n for n, p in (("java", JAVA), ("mvn", MVN)) if not p))
    p = subprocess.run([MVN, "-q", "-B", "-f", os.path.join(JAVA_DIR, "pom.xml"), "package", "-DskipTests"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and os.path.exists(JAR), \
        "mvn package of tests/java failed (%s):\n%s\n%s" % (p.returncode, p.stdout[-6000:], p.stderr[-6000:])
    return JAR


def run_check(jar, broker, mode, *opts, timeout=240):
    return run_client_check([JAVA, "-jar", jar, mode, broker.bootstrap, *opts], broker, mode,
                            "GregorClientCheck", timeout=timeout)


def dump_batches(broker, topic_glob):
    """Batch header lines of every partition of the topics matching topic_glob (gregor dump-log)."""
    lines = []
    for d in sorted(glob.glob(os.path.join(broker.data_dir, topic_glob))):
        for seg in sorted(glob.glob(os.path.join(d, "*.log"))):
            p = subprocess.run([GREGOR, "dump-log", "--files", seg], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            lines += [(os.path.basename(d), line) for line in p.stdout.splitlines() if line.startswith("baseOffset:")]
    return lines


def test_java_idempotent_producer_round_trip(client_jar, broker):
    r = run_check(client_jar, broker, "produce-idempotent", "count=5000", "partitions=4")
    assert r["produced"] == "5000" and r["consumed"] == "5000" and r["end_offsets"] == "5000"
    assert r["partitions"] == "4"
    per = [int(x) for x in r["per_partition"].split(",")]
    assert sum(per) == 5000 and sum(1 for x in per if x > 0) > 1
    # Default producer settings are idempotent: every stored batch carries a producer id and
    # the sequences of each partition are contiguous from 0.
    batches = dump_batches(broker, "java-idem-*")
    assert batches
    next_seq = {}
    for part, line in batches:
        f = dict(re.findall(r"(\w+): (\S+)", line))
        assert int(f["producerId"]) >= 0, line
        assert int(f["baseSequence"]) == next_seq.get(part, 0), (part, line)
        next_seq[part] = int(f["lastSequence"]) + 1
    assert sum(next_seq.values()) == 5000


def test_java_consumer_group_classic(client_jar, broker):
    r = run_check(client_jar, broker, "group", "count=1000", "protocol=classic")
    assert r == {"protocol": "classic", "first": "1000", "second": "1000", "partitions": "3"}


def test_java_admin_client(client_jar, broker):
    r = run_check(client_jar, broker, "admin")
    assert r["nodes"] == "1" and r["controller"] == "0"
    assert r["created"] == "2" and r["deleted"] == "2" and r["partitions_after"] == "5"
    assert int(r["listed"]) >= 2 and int(r["remaining"]) == int(r["listed"]) - 2
    assert int(r["topic_configs"]) > 0 and int(r["broker_configs"]) > 0


def test_java_transactions_commit_abort_and_fencing(client_jar, broker):
    """Issue 18: the Java producer commits a transaction and aborts one; a second producer with
    the same transactional.id fences the first (ProducerFencedException, nothing written); a
    read_committed consumer sees exactly the committed records, read_uncommitted the aborted
    ones too, and with no transaction open the last stable offsets equal the log ends."""
    r = run_check(client_jar, broker, "transactions", "count=200")
    assert r["committed"] == "400" and r["aborted"] == "200"
    assert r["read_committed"] == "400" and r["read_uncommitted"] == "600"
    assert r["fenced"] == "ProducerFencedException"
    assert r["end_offsets"] == str(600 + 9)
    lines = dump_batches(broker, "java-txn-*")
    control = [line for _, line in lines if "isControl: true" in line]
    assert len(control) == 9, control
