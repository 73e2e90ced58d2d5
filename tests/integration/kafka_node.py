"""A single-node Apache Kafka 4.x (KRaft) started by tests/kafka_harness/kafka.sh, for the tests
that compare gregor with Kafka on the same workload (transactions, compaction)."""
import os
import shutil
import subprocess

import pytest
from conftest import ROOT, two_free_ports

HARNESS = os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh")


class KafkaNode:
    """Kafka on a free port pair, its state under `state`; `overrides` are server.properties
    lines (KAFKA_OVERRIDES)."""

    def __init__(self, state, overrides=None):
        self.port = two_free_ports()
        self.env = dict(os.environ, KAFKA_PORT=str(self.port), KAFKA_STATE=state,
                        KAFKA_START_TIMEOUT="120")
        if overrides:
            self.env["KAFKA_OVERRIDES"] = "\n".join("%s=%s" % kv for kv in overrides.items())
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.data_dir = os.path.join(state, "data")

    def harness(self, *args, timeout=300):
        return subprocess.run([HARNESS] + list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self):
        if shutil.which("java") is None or shutil.which("mvn") is None:
            pytest.fail("java or mvn not installed")
        f = self.harness("fetch", timeout=1200)
        assert f.returncode == 0, "could not fetch the Kafka jars: " + (f.stdout + f.stderr)[-800:]
        r = self.harness("start")
        if r.returncode != 0:
            self.stop()
            pytest.fail("kafka.sh start failed: %s" % (r.stdout + r.stderr)[-1500:])
        return self

    def stop(self):
        return self.harness("stop", timeout=120).returncode

    def dump_segments(self, files, flags):
        """kafka.tools.DumpLogSegments over files (the broker need not run): the process."""
        return self.harness("run-class", "kafka.tools.DumpLogSegments", *flags,
                            "--files", ",".join(files))
