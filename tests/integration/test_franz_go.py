"""franz-go (tests/go/check.go): its default idempotent producer with zstd batches, a consumer
group from the start with manual commits, and its admin client (kadm).

The check program is built once per session with `go build` (modules from the Go module proxy,
pinned by tests/go/go.sum; CI downloads them beforehand). Skipped only when `go` is missing; a
failing build fails the tests.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import GREGOR, ROOT, run_client_check

GO_DIR = os.path.join(ROOT, "tests", "go")
GO = shutil.which("go")


@pytest.fixture(scope="session")
def franz_check(tmp_path_factory):
    if not GO:
        pytest.fail("go is required for the franz-go tests (make test-deps installs it)")
    exe = str(tmp_path_factory.mktemp("franz") / "franz-check")
    p = subprocess.run([GO, "build", "-o", exe, "."], cwd=GO_DIR, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, "go build in tests/go failed:\n%s\n%s" % (p.stdout[-4000:], p.stderr[-4000:])
    return exe


def run_check(exe, broker, mode, *args, timeout=200):
    return run_client_check([exe, broker.bootstrap, mode, *args], broker, mode, "franz-check",
                            timeout=timeout)


def test_franz_go_idempotent_zstd_produce_and_group_consume(franz_check, broker):
    r = run_check(franz_check, broker, "produce-consume", "3000")
    assert r["produced"] == "3000" and r["consumed"] == "3000" and r["partitions"] == "3"
    assert [int(x) for x in r["per_partition"].split(",")] == [1000, 1000, 1000]
    # Stored as franz-go sent them: zstd-compressed v2 batches of its idempotent producer.
    batches = []
    for d in glob.glob(os.path.join(broker.data_dir, "go-pc-*")):
        for seg in glob.glob(os.path.join(d, "*.log")):
            p = subprocess.run([GREGOR, "dump-log", "--files", seg], capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            batches += re.findall(r"producerId: (-?\d+) producerEpoch: (-?\d+).*?magic: (\d+) "
                                  r"compresscodec: (\w+)", p.stdout)
    assert batches, "no batches dumped"
    assert {(m, c) for _, _, m, c in batches} == {("2", "zstd")}
    assert all(int(pid) >= 0 for pid, _, _, _ in batches), batches[:3]


def test_franz_go_admin(franz_check, broker):
    r = run_check(franz_check, broker, "admin")
    assert r["created"] == "2" and r["deleted"] == "2" and r["partitions_after"] == "4"
    assert r["group_state"] == "Stable"
    assert int(r["remaining"]) == int(r["listed"]) - 2
