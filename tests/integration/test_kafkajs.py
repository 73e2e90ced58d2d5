"""kafkajs 2.2.4 (tests/js/check.js): gzip-compressed keyed produce with headers, a consumer
group from the beginning, admin create/list/delete topics, a transactional producer.

`npm ci` (or `npm install`) runs in tests/js once when node_modules is missing. Skipped only
when `node` or `npm` is missing.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import GREGOR, ROOT, run_client_check

JS_DIR = os.path.join(ROOT, "tests", "js")
NODE = shutil.which("node")
NPM = shutil.which("npm")


@pytest.fixture(scope="session")
def kafkajs():
    if not NODE or not NPM:
        pytest.fail("node and npm are required for the kafkajs tests (missing: %s; make test-deps installs them)"
                    % ", ".join(n for n, p in (("node", NODE), ("npm", NPM)) if not p))
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs")):
        cmd = "ci" if os.path.exists(os.path.join(JS_DIR, "package-lock.json")) else "install"
        p = subprocess.run([NPM, cmd, "--no-audit", "--no-fund"], cwd=JS_DIR,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, "npm %s in tests/js failed:\n%s\n%s" % (cmd, p.stdout[-4000:], p.stderr[-4000:])
    with open(os.path.join(JS_DIR, "node_modules", "kafkajs", "package.json")) as f:
        assert '"version": "2.2.4"' in f.read(), "tests/js/node_modules has another kafkajs than 2.2.4"
    return os.path.join(JS_DIR, "check.js")


def run_check(script, broker, mode, *args, timeout=200):
    return run_client_check([NODE, script, broker.bootstrap, mode, *args], broker, mode,
                            "check.js", timeout=timeout, cwd=JS_DIR)


def test_kafkajs_produce_gzip_and_group_consume(kafkajs, broker):
    r = run_check(kafkajs, broker, "produce-consume", "2000")
    assert r["produced"] == "2000" and r["consumed"] == "2000" and r["partitions"] == "3"
    assert [int(x) for x in r["per_partition"].split(",")] == [667, 667, 666]
    # The batches were stored as kafkajs sent them: gzip-compressed magic v2.
    codecs = set()
    for d in glob.glob(os.path.join(broker.data_dir, "js-pc-*")):
        for seg in glob.glob(os.path.join(d, "*.log")):
            p = subprocess.run([GREGOR, "dump-log", "--files", seg], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            codecs |= set(re.findall(r"magic: (\d+) compresscodec: (\w+)", p.stdout))
    assert codecs == {("2", "gzip")}


def test_kafkajs_admin(kafkajs, broker):
    r = run_check(kafkajs, broker, "admin")
    assert r["created"] == "2" and r["deleted"] == "2" and r["partitions_after"] == "4"
    assert int(r["remaining"]) == int(r["listed"]) - 2


def test_kafkajs_transactions(kafkajs, broker):
    """kafkajs' transactional producer: a committed transaction with the group's offset
    (sendOffsets), an aborted one; read_committed sees the committed records only."""
    r = run_check(kafkajs, broker, "transactions")
    assert r["committed"] == "5" and r["consumed"] == "5" and r["offset"] == "5"
