"""The web console's page (web/, served by the broker itself) in headless Chromium, driven by
Playwright's Python package against the system's /usr/bin/chromium (never a downloaded browser).

One broker with gregor.http.listener on port 0; records produced and a group committed and
stopped with a real Kafka client (confluent-kafka); then every page is visited and must load with
no console error, page error or failed request; the message browser shows the produced record
(JSON pretty-printed, hex on demand); the stopped group's lag on its page equals high watermark
minus committed as the Kafka client reads them; a record produced from the page is read back by
the Kafka client; the topic delete and the offset reset go through their confirm dialog; at a
phone's width (390x844) no page is wider than the screen.

GREGOR_SCREENSHOTS=docs/ writes docs/console-<page>.png (the README shows them).
"""
import json
import os
import re
import threading
import time

import pytest

from conftest import Broker

from playwright import sync_api as playwright_api  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("GREGOR_SCREENSHOTS")
TOPIC, TRAFFIC, DOOMED, GROUP = "web-orders", "web-traffic", "web-doomed", "web-billing"
MARKER = "console-marker-7f3a"


def http_base(broker, timeout=15):
    """The console's URL from the broker's log line "HTTP console on http://host:port/"."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"HTTP console on (http://[0-9.]+:\d+/)", broker.log())
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError("no HTTP console line in the log:\n" + broker.log())


@pytest.fixture
def console_broker(tmp_path):
    b = Broker(str(tmp_path / "data"), overrides={"gregor.http.listener": "127.0.0.1:0"})
    b.start()
    yield b
    alive = b.alive()
    rc = b.stop()
    assert alive, "broker died during the test:\n" + b.log()
    assert rc == 0, "broker exited %s on SIGTERM:\n%s" % (rc, b.log())


def create_topics(bootstrap, specs):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(n, p, 1) for n, p in specs]).values():
        f.result(30)


def seed(bootstrap):
    """Records in TOPIC (one JSON value with MARKER and headers, text, binary), a group that
    consumed and committed all of them and stopped, then more records: the group's lag."""
    create_topics(bootstrap, [(TOPIC, 3), (TRAFFIC, 1), (DOOMED, 1)])
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    p.produce(TOPIC, key=b"order-1", partition=0,
              value=json.dumps({"id": 1, "note": MARKER, "items": [1, 2]}).encode(),
              headers=[("source", b"test"), ("trace", b"\x00\x01\xff")])
    for i in range(20):
        p.produce(TOPIC, key=b"k%d" % i, value=b"plain text value %d" % i, partition=i % 3)
    p.produce(TOPIC, value=bytes(range(0, 256, 7)), partition=1)
    p.flush(30)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([TOPIC])
    got, deadline = 0, time.time() + 30
    while got < 22 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got == 22
    c.commit(asynchronous=False)
    c.close()
    for i in range(7):
        p.produce(TOPIC, value=b"after the group stopped %d" % i, partition=i % 3)
    p.flush(30)


def expected_lag(bootstrap):
    """{partition: high watermark - committed} as the Kafka client reads them."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        committed = c.committed([TopicPartition(TOPIC, i) for i in range(3)], timeout=20)
        lag = {}
        for tp in committed:
            lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, tp.partition), timeout=20)
            lag[tp.partition] = hi - (tp.offset if tp.offset >= 0 else lo)
        return lag
    finally:
        c.close()


class Watch:
    """Console errors, page errors, failed requests and HTTP errors of one page."""

    def __init__(self, page):
        self.problems = []
        page.on("console", lambda m: m.type == "error" and self.problems.append("console: " + m.text))
        page.on("pageerror", lambda e: self.problems.append("pageerror: %s" % e))
        page.on("requestfailed", lambda r: self.problems.append("failed: %s %s" % (r.url, r.failure)))
        page.on("response", lambda r: r.status >= 400 and self.problems.append("HTTP %d %s" % (r.status, r.url)))

    def check(self, where, expected=()):
        """No problem but the expected ones (substrings), each seen."""
        left = [p for p in self.problems if not any(e in p for e in expected)]
        assert not left, "%s: %s" % (where, left)
        for e in expected:
            assert any(e in p for p in self.problems), "%s: %r not seen in %s" % (where, e, self.problems)
        self.problems.clear()


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, "console-%s.png" % name), full_page=True)


def traffic(bootstrap, stop):
    """A steady trickle into TRAFFIC, read back by a consumer, so the rate charts move."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "web-traffic-reader", "auto.offset.reset": "earliest"})
    c.subscribe([TRAFFIC])
    i = 0
    while not stop.is_set():
        for _ in range(20):
            p.produce(TRAFFIC, value=b"tick %d " % i + b"x" * (i % 200))
            i += 1
        p.poll(0)
        c.consume(100, 0)
        stop.wait(0.25)
    p.flush(10)
    c.close()


def test_console_pages(console_broker):
    bootstrap = console_broker.bootstrap
    base = http_base(console_broker)
    seed(bootstrap)
    lag = expected_lag(bootstrap)
    assert sum(lag.values()) == 7, lag
    stop = threading.Event()
    t = threading.Thread(target=traffic, args=(bootstrap, stop), daemon=True)
    t.start()
    try:
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                desktop(browser, base, bootstrap, lag)
                phone(browser, base)
            finally:
                browser.close()
    finally:
        stop.set()
        t.join(30)


def desktop(browser, base, bootstrap, lag):
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    page = ctx.new_page()
    w = Watch(page)

    # Overview: the broker, the topics with their partition counts, the localhost banner.
    page.goto(base + "#/")
    row = page.locator('tr[data-topic="%s"]' % TOPIC)
    row.wait_for(timeout=15000)
    assert row.locator("td").nth(1).inner_text() == "3"
    assert "bound to localhost" in page.locator("#banner").inner_text()
    assert page.locator("text=controller").count() >= 1
    page.wait_for_timeout(7000)          # three polls: the traffic rate shows
    rate = page.locator('tr[data-topic="%s"] td' % TRAFFIC).nth(4).inner_text()
    assert float(rate.rstrip("/s")) > 0, rate          # messages in, from successive samples
    w.check("overview")
    shot(page, "overview")

    # Topic page: partitions with their watermarks, configs, the rate chart.
    page.goto(base + "#/topics/" + TOPIC)
    page.locator("tr[data-partition]").nth(2).wait_for(timeout=15000)
    assert page.locator("tr[data-partition]").count() == 3
    page.locator("text=cleanup.policy").wait_for(timeout=15000)
    page.goto(base + "#/topics/" + TRAFFIC)
    page.locator("tr[data-partition]").first.wait_for(timeout=15000)
    page.wait_for_timeout(7000)
    assert page.locator("svg.chart path.line").count() >= 2
    w.check("topic")
    shot(page, "topic")

    # Message browser: the JSON record, pretty-printed; its headers; hex on demand.
    page.goto(base + "#/topics/%s/messages" % TOPIC)
    cell = page.locator("tr.record td.value", has_text=MARKER)
    cell.wait_for(timeout=15000)
    pre = cell.locator("pre")
    assert pre.get_attribute("data-format") == "json"
    assert json.loads(pre.inner_text())["note"] == MARKER
    assert '\n  "note"' in pre.inner_text()          # pretty: one key a line, indented
    rec = page.locator("tr.record", has=page.locator("td.value", has_text=MARKER))
    assert rec.get_attribute("data-partition") == "0" and rec.get_attribute("data-offset") == "0"
    headers = rec.locator(".headers").inner_text()
    assert "source: test" in headers and "trace: 00 01 ff" in headers, headers
    assert page.locator("tr.record").count() == 29      # 22 before the group stopped, 7 after
    shot(page, "messages")
    page.click('button[data-mode="hex"]')
    assert page.locator('tr.record td.value pre[data-format="hex"]').count() == 29
    page.click('button[data-mode="auto"]')
    # From an offset on one partition, with a filter.
    page.select_option("#browse select[name=partition]", "1")
    page.select_option("#browse select[name=from]", "offset")
    page.fill("#browse input[name=offset]", "2")
    page.fill("#browse input[name=filter]", "plain text")
    page.click("#browse button[type=submit]")
    # (Locator waits, never wait_for_function: its string predicate is an eval the page's CSP refuses.)
    expect(page.locator('tr.record:not([data-partition="1"])')).to_have_count(0, timeout=15000)
    page.locator("tr.record").first.wait_for(timeout=15000)
    assert all(int(r.get_attribute("data-offset")) >= 2 for r in page.locator("tr.record").all())
    texts = page.locator("tr.record td.value").all_inner_texts()
    assert texts and all("plain text" in x for x in texts), texts
    # Paging: 10 a page over every partition, the next page continues where the first stopped.
    page.select_option("#browse select[name=partition]", "all")
    page.select_option("#browse select[name=from]", "beginning")
    page.fill("#browse input[name=filter]", "")
    page.fill("#browse input[name=limit]", "10")
    page.click("#browse button[type=submit]")
    expect(page.locator("tr.record")).to_have_count(10, timeout=15000)
    page.click("#more")
    expect(page.locator("tr.record")).to_have_count(20, timeout=15000)
    seen = [(r.get_attribute("data-partition"), r.get_attribute("data-offset")) for r in page.locator("tr.record").all()]
    assert len(set(seen)) == 20, seen
    w.check("messages")

    # Groups, then the stopped group: its lag per partition and in total, as Kafka reads it.
    page.goto(base + "#/groups")
    page.locator('tr[data-group="%s"]' % GROUP).wait_for(timeout=15000)
    w.check("groups")
    shot(page, "groups")
    page.goto(base + "#/groups/" + GROUP)
    page.locator("td.lag").nth(2).wait_for(timeout=15000)
    page.wait_for_timeout(4000)          # a second sample for the lag chart
    shown = {int(page.locator("tr.offset").nth(i).get_attribute("data-partition")):
             int(page.locator("tr.offset").nth(i).locator("td.lag").get_attribute("data-lag"))
             for i in range(page.locator("tr.offset").count())}
    assert shown == lag, (shown, lag)
    assert page.locator("#total-lag").inner_text().replace(",", "") == str(sum(lag.values()))
    w.check("group")
    shot(page, "group")

    # Reset to latest behind its confirm: Cancel changes nothing, Confirm commits the ends.
    page.select_option("#reset select[name=to]", "latest")
    page.click("#reset button[type=submit]")
    page.click("#confirm button[value=cancel]")
    page.click("#reset button[type=submit]")
    page.click("#confirm-ok")
    page.locator("text=Reset 3 partition(s)").wait_for(timeout=15000)
    assert expected_lag(bootstrap) == {0: 0, 1: 0, 2: 0}
    w.check("reset")

    # Produce from the page; the Kafka client reads it back with its key, value and header.
    page.goto(base + "#/produce?topic=" + TOPIC)
    page.locator("#produce select[name=topic] option[value='%s']" % TOPIC).wait_for(state="attached", timeout=15000)
    page.fill("#produce input[name=partition]", "2")
    page.fill("#produce input[name=key]", "from-the-page")
    page.fill("#produce textarea[name=value]", '{"made": "in chromium"}')
    page.click("text=Add header")
    page.fill(".hdr-row .hk", "via")
    page.fill(".hdr-row .hv", "console")
    shot(page, "produce")
    page.click("#produce button[type=submit]")
    done = page.locator("#produced")
    done.wait_for(timeout=15000)
    off = int(re.search(r"offset (\d+)", done.inner_text()).group(1))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "web-check", "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, 2, off)])
    m = c.poll(15)
    c.close()
    assert m is not None and not m.error()
    assert (m.key(), m.value(), m.headers()) == (b"from-the-page", b'{"made": "in chromium"}', [("via", b"console")])
    w.check("produce")

    # Delete a topic behind its confirm.
    page.goto(base + "#/topics/" + DOOMED)
    page.locator("tr[data-partition]").first.wait_for(timeout=15000)
    page.click("#delete-topic")
    page.locator("#confirm-text", has_text=DOOMED).wait_for(timeout=5000)
    page.click("#confirm-ok")
    page.wait_for_url(re.compile(r"#/$"), timeout=15000)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.time() + 15
    while DOOMED in admin.list_topics(timeout=10).topics and time.time() < deadline:
        time.sleep(0.2)
    assert DOOMED not in admin.list_topics(timeout=10).topics
    w.check("delete")

    # The login page renders (no login is asked here: no SASL credentials configured).
    page.goto(base + "#/login")
    page.locator("#login").wait_for(timeout=5000)
    w.check("login")
    page.goto(base + "#/")
    page.locator('tr[data-topic="%s"]' % TOPIC).wait_for(timeout=15000)
    w.check("end")
    ctx.close()


def phone(browser, base):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    w = Watch(page)
    for route, ready in [("#/", 'tr[data-topic="%s"]' % TOPIC), ("#/topics/" + TOPIC, "tr[data-partition]"),
                         ("#/topics/%s/messages" % TOPIC, "tr.record"), ("#/groups", "tr[data-group]"),
                         ("#/groups/" + GROUP, "td.lag"), ("#/produce", "#produce"), ("#/login", "#login")]:
        page.goto(base + route)
        page.locator(ready).first.wait_for(timeout=15000)
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        assert width <= 390, "%s is %dpx wide at 390px" % (route, width)
        if route == "#/":
            assert not page.locator("#nav").is_visible()     # folded behind the menu button
            page.click("#menu")
            assert page.locator("#nav").is_visible()
            shot(page, "phone")
            page.click("#menu")
    w.check("phone")
    ctx.close()


def test_assets_cache_and_headers(console_broker):
    """Each asset has its type, a strong ETag (If-None-Match → 304), a CSP; an unknown path is
    the page."""
    import urllib.request
    import urllib.error
    base = http_base(console_broker)
    for name, ctype in [("", "text/html"), ("app.js", "text/javascript"), ("app.css", "text/css"),
                        ("favicon.svg", "image/svg+xml"), ("topics/x/anything", "text/html")]:
        with urllib.request.urlopen(base + name, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith(ctype), (name, r.headers)
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            etag = r.headers["ETag"]
            body = r.read()
        assert re.fullmatch(r'"[0-9a-f]{16}"', etag) and body
        req = urllib.request.Request(base + name, headers={"If-None-Match": 'W/"zz", ' + etag})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 304 and e.value.headers["ETag"] == etag
    with urllib.request.urlopen(base + "index.html", timeout=10) as r:
        page = r.read().decode()
    assert "<script" in page and 'src="app.js"' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script"
    assert "http://" not in page and "https://" not in page, "an outside URL in the page"


def test_console_login(tmp_path):
    """With SASL credentials the page asks for a login before anything else: no API call is made
    that would be told 401, a wrong password is refused, a SASL user gets in and out again."""
    from test_sasl import start_sasl_broker
    b = start_sasl_broker(tmp_path, extra={"gregor.http.listener": "127.0.0.1:0"})
    try:
        base = http_base(b)
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
                w = Watch(page)
                page.goto(base + "#/groups")
                page.locator("#login").wait_for(timeout=15000)
                assert page.evaluate("location.hash") == "#/login"
                assert page.locator("#banner").is_hidden()
                w.check("login page")
                shot(page, "login")
                page.fill("#login input[name=username]", "alice")
                page.fill("#login input[name=password]", "wrong")
                page.click("#login button[type=submit]")
                page.locator("text=Wrong user or password").wait_for(timeout=15000)
                w.check("wrong password", expected=["HTTP 401", "401"])
                page.fill("#login input[name=password]", "alice-secret")
                page.click("#login button[type=submit]")
                page.locator("h1", has_text="Overview").wait_for(timeout=15000)
                page.locator("td", has_text="controller").wait_for(timeout=15000)
                assert "User:alice" in page.locator("#who").inner_text()
                page.click("#who button")
                page.locator("#login").wait_for(timeout=15000)
                assert page.evaluate("fetch('/api/whoami').then(r => r.json()).then(j => j.user)") is None
                w.check("logged out")
            finally:
                browser.close()
    finally:
        alive = b.alive()
        rc = b.stop()
        assert alive and rc == 0, b.log()


TIMED, REWIND = "web-timed", "web-rewind"


def offsets_for_times(bootstrap, topic, partitions, ts):
    """{partition: offset} as the Kafka client's ListOffsets by timestamp answers (-1: none)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "web-ts-probe"})
    try:
        got = c.offsets_for_times([TopicPartition(topic, p, ts) for p in partitions], timeout=20)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in partitions], timeout=20)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def test_timestamp_browse_and_reset(console_broker):
    """The message browser "from timestamp" shows, first, the record ListOffsets by timestamp
    names; the group page's reset to a timestamp, through its confirm, commits what
    offsets_for_times answers. The page shows record times in UTC and reads its timestamp inputs
    as UTC too, whatever the browser's time zone (here +05:30): a time copied from the table
    finds its record."""
    bootstrap = console_broker.bootstrap
    base = http_base(console_broker)
    create_topics(bootstrap, [(TIMED, 2)])
    t0 = (int(time.time()) - 120) * 1000           # a whole second, two minutes ago
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(8):                              # partition 0: t0 + 1000 i + 500
        p.produce(TIMED, value=b"p0 at +%d.5s" % i, partition=0, timestamp=t0 + 1000 * i + 500)
        p.produce(TIMED, value=b"p1 at +%ds" % (2 * i), partition=1, timestamp=t0 + 2000 * i)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": REWIND, "enable.auto.commit": False})
    c.assign([TopicPartition(TIMED, 0), TopicPartition(TIMED, 1)])
    c.commit(offsets=[TopicPartition(TIMED, 0, 8), TopicPartition(TIMED, 1, 8)], asynchronous=False)
    c.close()
    ts = t0 + 3000
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000))
    want = offsets_for_times(bootstrap, TIMED, [0, 1], ts)
    assert want == {0: 3, 1: 2}, want               # p0: +3.5 s; p1: +4 s

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 860},
                                      timezone_id="Asia/Kolkata")
            page = ctx.new_page()
            w = Watch(page)
            page.goto(base + "#/topics/%s/messages" % TIMED)
            page.locator("tr.record").first.wait_for(timeout=15000)
            page.locator("#browse select[name=partition] option[value='0']").wait_for(
                state="attached", timeout=15000)
            page.select_option("#browse select[name=partition]", "0")
            page.select_option("#browse select[name=from]", "timestamp")
            page.fill("#browse input[name=timestamp]", when)
            page.click("#browse button[type=submit]")
            expect(page.locator("tr.record")).to_have_count(8 - want[0], timeout=15000)
            first = page.locator("tr.record").first
            assert (first.get_attribute("data-partition"), first.get_attribute("data-offset")) == \
                ("0", str(want[0]))
            assert "p0 at +3.5s" in first.locator("td.value").inner_text()
            shown = first.locator("td").nth(2).inner_text()
            assert shown == when.replace("T", " ") + ".500", (shown, when)
            # every partition: each starts at its own answer
            page.select_option("#browse select[name=partition]", "all")
            page.click("#browse button[type=submit]")
            expect(page.locator("tr.record")).to_have_count(16 - want[0] - want[1], timeout=15000)
            firsts = {}
            for r in page.locator("tr.record").all():
                firsts.setdefault(int(r.get_attribute("data-partition")), int(r.get_attribute("data-offset")))
            assert firsts == want, (firsts, want)
            w.check("browse from timestamp")

            page.goto(base + "#/groups/" + REWIND)
            page.locator("tr.offset").nth(1).wait_for(timeout=15000)
            page.locator("#reset button[type=submit]:not([disabled])").wait_for(timeout=15000)
            page.select_option("#reset select[name=to]", "timestamp")
            page.fill("#reset input[name=timestamp]", when)
            page.click("#reset button[type=submit]")
            page.locator("#confirm-text", has_text=when).wait_for(timeout=5000)
            page.click("#confirm button[value=cancel]")
            assert committed(bootstrap, REWIND, TIMED, [0, 1]) == {0: 8, 1: 8}
            page.click("#reset button[type=submit]")
            page.click("#confirm-ok")
            page.locator("text=Reset 2 partition(s)").wait_for(timeout=15000)
            assert committed(bootstrap, REWIND, TIMED, [0, 1]) == want
            w.check("reset to timestamp")
            ctx.close()
        finally:
            browser.close()
