"""The console's failed login (POST /api/login, HTTP Basic) is answered 401 only after
connection.failed.authentication.delay.ms, as a failed SASL login is; a right one at once; the
broker serves everything else meanwhile; a broker stopped while a failed login waits answers
it and exits cleanly (docs/CONSOLE.md)."""
import http.client
import threading
import time

from conftest import free_port
from test_quota_rates import console_call
from test_sasl import start_sasl_broker

DELAY_MS = 1500


def start(tmp_path, delay_ms):
    hp = free_port()
    b = start_sasl_broker(tmp_path, users=(("alice", "alice-secret"),),
                          extra={"gregor.http.listener": "127.0.0.1:%d" % hp,
                                 "connection.failed.authentication.delay.ms": str(delay_ms)})
    b.http_port = hp
    return b


def timed(port, method, path, body=None, auth=None):
    """-> (status, JSON document or None, seconds taken)."""
    t0 = time.monotonic()
    st, _, doc = console_call(port, method, path, body, auth=auth)[:3]
    return st, doc, time.monotonic() - t0


def test_failed_login_is_answered_after_the_delay(tmp_path):
    b = start(tmp_path, DELAY_MS)
    try:
        hp = b.http_port
        wrong = {"username": "alice", "password": "wrong"}
        st, doc, took = timed(hp, "POST", "/api/login", wrong)
        assert st == 401 and doc["error"] == "SASL_AUTHENTICATION_FAILED", (st, doc)
        assert took >= DELAY_MS / 1000.0, took
        st, doc, took = timed(hp, "GET", "/api/overview", auth="alice:nope")
        assert st == 401 and took >= DELAY_MS / 1000.0, (st, doc, took)
        st, doc, took = timed(hp, "POST", "/api/login", {"username": "alice",
                                                         "password": "alice-secret"})
        assert st == 200 and doc == {"user": "User:alice"} and took < 1.0, (st, doc, took)
        st, doc, took = timed(hp, "GET", "/api/overview", auth="alice:alice-secret")
        assert st == 200 and took < 1.0, (st, took)
        # Not logged in (no credentials sent) is no failed login: 401 at once.
        st, doc, took = timed(hp, "GET", "/api/overview")
        assert st == 401 and doc["error"] == "LOGIN_REQUIRED" and took < 1.0, (st, doc, took)

        # Four failed logins wait at once; meanwhile the broker answers others at once.
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            timed(hp, "POST", "/api/login", wrong))) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert timed(hp, "GET", "/health/live")[0] == 200
        st, doc, took = timed(hp, "GET", "/api/whoami", auth="alice:alice-secret")
        assert st == 200 and doc["user"] == "User:alice" and took < 1.0, (st, doc, took)
        assert time.monotonic() - t0 < DELAY_MS / 1000.0  # all of this while they waited
        assert not results
        for t in threads:
            t.join(10)
        assert [r[0] for r in results] == [401] * 4, results
        assert all(r[2] >= DELAY_MS / 1000.0 for r in results), results
        assert b.alive(), b.log()
    finally:
        assert b.stop() == 0, b.log()


def test_stop_while_a_failed_login_waits(tmp_path):
    """console_stop answers the waiting 401s before the HTTP server frees their requests: the
    broker (ASan build in CI) exits 0 at once, not after the 20 s delay."""
    b = start(tmp_path, 20000)
    got = []

    def wrong():
        try:
            got.append(timed(b.http_port, "POST", "/api/login",
                             {"username": "alice", "password": "wrong"})[0])
        except (OSError, http.client.HTTPException) as e:
            got.append(type(e).__name__)
    threads = [threading.Thread(target=wrong) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert not got
    t0 = time.monotonic()
    rc = b.stop()
    assert rc == 0, b.log()
    assert time.monotonic() - t0 < 10
    for t in threads:
        t.join(10)
    # Each was answered 401 at the stop, or its connection closed with the listener.
    assert len(got) == 3 and all(g in (401, "RemoteDisconnected", "ConnectionResetError")
                                 for g in got), got
