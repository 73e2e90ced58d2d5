"""__transaction_state on one node is created on the first FindCoordinator of a transactional id
(issue 18), as Kafka creates its internal topic: answered COORDINATOR_NOT_AVAILABLE until the
topic exists, its partitions opened over many loop turns so that other clients are answered
meanwhile (500 partitions here: opened in one go they held the loop for about a second)."""
import socket
import struct
import threading
import time

from conftest import Broker
from kafka_wire import _request, s16

COORDINATOR_NOT_AVAILABLE = 15


def call(sock, api, version, body, corr=1):
    return _request(sock, api, version, corr, body)


def test_first_transactional_id_creates_the_topic_in_slices(tmp_path):
    b = Broker(str(tmp_path / "data"),
               overrides={"transaction.state.log.num.partitions": 500})
    b.start()
    try:
        host, port = b.bootstrap.split(":")
        pings, stop = [], threading.Event()

        def pinger():
            with socket.create_connection((host, int(port)), timeout=30) as s:
                while not stop.is_set():
                    t0 = time.monotonic()
                    call(s, 18, 0, b"")
                    pings.append(time.monotonic() - t0)
                    time.sleep(0.005)
        th = threading.Thread(target=pinger)
        th.start()
        time.sleep(0.3)
        answers = []
        with socket.create_connection((host, int(port)), timeout=60) as s:
            deadline = time.time() + 60
            while time.time() < deadline:
                r = call(s, 10, 1, s16("slices") + b"\x01")
                err = struct.unpack(">h", r[4:6])[0]
                answers.append(err)
                if err == 0:
                    break
                time.sleep(0.02)
            r = call(s, 22, 1, s16("slices") + struct.pack(">i", 60000))
            init_err = struct.unpack(">h", r[4:6])[0]
        time.sleep(0.2)
        stop.set()
        th.join()
        assert answers[0] == COORDINATOR_NOT_AVAILABLE, answers
        assert answers[-1] == 0 and set(answers[:-1]) == {COORDINATOR_NOT_AVAILABLE}, answers
        assert init_err == 0
        assert max(pings) < 0.3, "the loop stalled %.3f s" % max(pings)
        assert "Created __transaction_state with 500 partitions" in b.log()
    finally:
        b.stop()
