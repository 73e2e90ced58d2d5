"""kafka-python 2.0.2 (installed) and 3.x (in a cached venv) against gregor."""
import os
import subprocess
import sys
import venv

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "clients", "kafka_python_check.py")
KP3_VERSION = os.environ.get("GREGOR_KAFKA_PYTHON3", "3.0.12")
KP3_VENV = os.path.join(os.path.expanduser("~"), ".cache", "gregor", "kafka-python-%s" % KP3_VERSION)


def kp3_python():
    py = os.path.join(KP3_VENV, "bin", "python")
    if not os.path.exists(py):
        venv.create(KP3_VENV, with_pip=True)
        r = subprocess.run([py, "-m", "pip", "install", "-q", "kafka-python==%s" % KP3_VERSION],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    return py


def run_check(python, broker, topic):
    r = subprocess.run([python, CHECK, broker.bootstrap, topic], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return r.stdout


def test_kafka_python_2(broker):
    import kafka  # noqa: F401
    out = run_check(sys.executable, broker, "kp2")
    assert "kafka-python 2.0.2 ok" in out


def test_kafka_python_3(broker):
    out = run_check(kp3_python(), broker, "kp3")
    assert "kafka-python %s ok" % KP3_VERSION in out
