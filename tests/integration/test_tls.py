"""TLS listeners (issue 19): listeners=PLAINTEXT://...,SSL://... with Kafka's ssl.* keys.

A CA, server and client certificates are made here with the openssl CLI (an expired client
certificate and one from another CA too). Real clients produce and consume over SSL; mutual
TLS checks the principal taken from the client certificate; broken and hostile peers are
refused while the broker keeps serving the others.
"""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time
import uuid

import pytest

from conftest import Broker, GREGOR, api_versions_ok, free_port
from test_franz_go import franz_check, run_check as franz_run_check  # noqa: F401 (a fixture)
from test_java_client import client_jar, run_check  # noqa: F401 (a fixture)

OPENSSL = "openssl"
with open(GREGOR, "rb") as _f:
    ASAN = b"__asan_init" in _f.read()


def sh(*args, cwd):
    p = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(args), p.stdout, p.stderr)
    return p.stdout


def make_ca(d, name):
    sh(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "3",
       "-subj", "/CN=%s" % name, cwd=d)


def make_cert(d, ca, name, subj, days=3, san=None, key_pass=None):
    """name.key (encrypted with key_pass when given) and name.pem signed by ca."""
    sh(OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", name + ".plain.key", "-out", name + ".csr", "-subj", subj, cwd=d)
    ext = []
    if san:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        ext = ["-extfile", name + ".ext"]
    sh(OPENSSL, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
       "-CAcreateserial", "-out", name + ".pem", "-days", str(days), *ext, cwd=d)
    if key_pass:
        sh(OPENSSL, "pkcs8", "-topk8", "-in", name + ".plain.key", "-out", name + ".key",
           "-passout", "pass:" + key_pass, cwd=d)
    else:
        os.rename(os.path.join(d, name + ".plain.key"), os.path.join(d, name + ".key"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "/CN=localhost", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "ca", "serverenc", "/CN=localhost", san="IP:127.0.0.1,DNS:localhost",
              key_pass="keypw")
    make_cert(d, "ca", "alice", "/O=corp/OU=eng/CN=alice")
    make_cert(d, "ca", "expired", "/O=corp/OU=eng/CN=old", days=-1)
    make_cert(d, "otherca", "mallory", "/O=evil/CN=mallory")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    # KIP-651: one PEM file with the key and the certificate chain.
    with open(p("server.keystore.pem"), "w") as f:
        f.write(open(p("server.key")).read() + open(p("server.pem")).read() + open(p("ca.pem")).read())
    with open(p("serverenc.keystore.pem"), "w") as f:
        f.write(open(p("serverenc.key")).read() + open(p("serverenc.pem")).read())
    sh(OPENSSL, "pkcs12", "-export", "-inkey", "server.key", "-in", "server.pem", "-certfile", "ca.pem",
       "-out", "server.p12", "-passout", "pass:storepw", cwd=d)
    sh(OPENSSL, "pkcs12", "-export", "-nokeys", "-in", "ca.pem", "-out", "trust.p12",
       "-passout", "pass:trustpw", cwd=d)
    return p


def pem_keystore(pki):
    return {"ssl.keystore.type": "PEM", "ssl.keystore.location": pki("server.keystore.pem")}


def start_tls_broker(tmp_path, ssl_overrides, name="data", extra=None):
    port, ssl_port = free_port(), free_port()
    o = {"listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (port, ssl_port)}
    o.update(ssl_overrides)
    o.update(extra or {})
    b = Broker(str(tmp_path / name), port=port, overrides=o)
    b.ssl_port = ssl_port
    b.start()
    return b


@pytest.fixture
def stop_after():
    made = []
    yield made.append
    for b in made:
        alive = b.alive()
        rc = b.stop()
        assert alive, "broker died during the test:\n" + b.log()
        assert rc == 0, "broker exited %s on SIGTERM:\n%s" % (rc, b.log())


def api_versions_frame(corr=7):
    body = struct.pack(">hhih", 18, 0, corr, 4) + b"test"
    return struct.pack(">i", len(body)) + body


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(got), n))
        got += chunk
    return got


def client_ctx(pki, cert=None, ca="ca"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki(ca + ".pem"))
    if cert:
        ctx.load_cert_chain(pki(cert + ".pem"), pki(cert + ".key"))
    return ctx


def tls_api_versions(port, ctx, timeout=5):
    """Sends ApiVersions v0 over TLS; returns its correlation id, or raises."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        # Without it Nagle holds the request behind the client's Finished until a delayed ACK.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(api_versions_frame(41))
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            body = recv_exact(s, size)
            return struct.unpack(">i", body[:4])[0]


def open_fds(b):
    return len(os.listdir("/proc/%d/fd" % b.proc.pid))


def settled_fds(b):
    """The broker's fd count once connections a client just closed are closed on its side too."""
    last = open_fds(b)
    for _ in range(30):
        time.sleep(0.2)
        now = open_fds(b)
        if now == last:
            return now
        last = now
    return last


def rdkafka_conf(b, pki, **extra):
    conf = {"bootstrap.servers": "127.0.0.1:%d" % b.ssl_port, "security.protocol": "SSL",
            "ssl.ca.location": pki("ca.pem"), "ssl.endpoint.identification.algorithm": "https"}
    conf.update(extra)
    return conf


def rdkafka_round_trip(b, pki, n=300, **extra):
    from confluent_kafka import Consumer, Producer
    topic = "tls-" + uuid.uuid4().hex[:8]
    p = Producer(rdkafka_conf(b, pki, **extra))
    sent = [("k%d" % i, ("v%d-" % i) * (1 + i % 50)) for i in range(n)]
    errors = []
    for k, v in sent:
        p.produce(topic, key=k, value=v, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors
    md = p.list_topics(timeout=10)
    c = Consumer(rdkafka_conf(b, pki, **{"group.id": "g-" + topic, "auto.offset.reset": "earliest",
                                         **extra}))
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.key().decode(), m.value().decode()))
    c.close()
    assert got == sent
    return md


def test_librdkafka_produce_consume_over_ssl(tmp_path, pki, stop_after):
    b = start_tls_broker(tmp_path, pem_keystore(pki))
    stop_after(b)
    md = rdkafka_round_trip(b, pki)
    # Metadata answers the listener the request came in on, as Kafka does.
    assert [(x.host, x.port) for x in md.brokers.values()] == [("127.0.0.1", b.ssl_port)]
    from confluent_kafka.admin import AdminClient
    plain = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert [(x.host, x.port) for x in plain.brokers.values()] == [("127.0.0.1", b.port)]


def test_named_listeners_and_advertised_per_listener(tmp_path, pki, stop_after):
    port, ssl_port = free_port(), free_port()
    o = {"listeners": "CLIENT://127.0.0.1:%d,SECURE://127.0.0.1:%d" % (port, ssl_port),
         "listener.security.protocol.map": "CLIENT:PLAINTEXT,SECURE:SSL",
         "advertised.listeners": "CLIENT://127.0.0.1:%d,SECURE://localhost:%d" % (port, ssl_port),
         "listener.name.secure.ssl.keystore.type": "PEM",
         "listener.name.secure.ssl.keystore.location": pki("server.keystore.pem")}
    b = Broker(str(tmp_path / "data"), port=port, overrides=o)
    b.ssl_port = ssl_port
    b.start()
    stop_after(b)
    md = rdkafka_round_trip(b, pki, n=20)
    assert [(x.host, x.port) for x in md.brokers.values()] == [("localhost", ssl_port)]
    from confluent_kafka.admin import AdminClient
    plain = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert [(x.host, x.port) for x in plain.brokers.values()] == [("127.0.0.1", port)]


def kafka_python_round_trip(b, pki, cert=None, n=50):
    from kafka import KafkaConsumer, KafkaProducer
    topic = "kp-" + uuid.uuid4().hex[:8]
    ssl_opts = {"security_protocol": "SSL", "ssl_cafile": pki("ca.pem"), "ssl_check_hostname": True}
    if cert:
        ssl_opts.update(ssl_certfile=pki(cert + ".pem"), ssl_keyfile=pki(cert + ".key"))
    boot = "localhost:%d" % b.ssl_port
    p = KafkaProducer(bootstrap_servers=boot, **ssl_opts)
    for i in range(n):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i)
    p.flush(30)
    p.close()
    c = KafkaConsumer(topic, bootstrap_servers=boot, auto_offset_reset="earliest",
                      consumer_timeout_ms=15000, **ssl_opts)
    got = []
    for m in c:
        got.append((m.key, m.value))
        if len(got) == n:
            break
    c.close()
    assert got == [(b"k%d" % i, b"v%d" % i) for i in range(n)]


def inline_pem(path):
    """A PEM file as one line, as server.properties holds ssl.keystore.key and friends."""
    return " ".join(open(path).read().split("\n")).strip()


KEYSTORES = {
    "pem-file": lambda pki: pem_keystore(pki),
    "pem-file-encrypted-key": lambda pki: {
        "ssl.keystore.type": "PEM", "ssl.keystore.location": pki("serverenc.keystore.pem"),
        "ssl.key.password": "keypw"},
    "pem-inline": lambda pki: {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": inline_pem(pki("server.pem")),
        "ssl.keystore.key": inline_pem(pki("server.key"))},
    "pkcs12": lambda pki: {
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": pki("server.p12"),
        "ssl.keystore.password": "storepw", "ssl.key.password": "storepw"},
}


@pytest.mark.parametrize("store", sorted(KEYSTORES))
def test_kafka_python_over_ssl_with_each_keystore(tmp_path, pki, stop_after, store):
    b = start_tls_broker(tmp_path, KEYSTORES[store](pki))
    stop_after(b)
    kafka_python_round_trip(b, pki)


@pytest.mark.parametrize("trust", ["pem-file", "pem-inline", "pkcs12"])
def test_mutual_tls_principal_from_client_certificate(tmp_path, pki, stop_after, monkeypatch, trust):
    monkeypatch.setenv("GREGOR_LOG_LEVEL", "DEBUG")
    o = pem_keystore(pki)
    o["ssl.client.auth"] = "required"
    if trust == "pem-file":
        o.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": pki("ca.pem")})
    elif trust == "pem-inline":
        o.update({"ssl.truststore.type": "PEM", "ssl.truststore.certificates": inline_pem(pki("ca.pem"))})
    else:
        o.update({"ssl.truststore.type": "PKCS12", "ssl.truststore.location": pki("trust.p12"),
                  "ssl.truststore.password": "trustpw"})
    b = start_tls_broker(tmp_path, o)
    stop_after(b)
    kafka_python_round_trip(b, pki, cert="alice", n=10)
    assert tls_api_versions(b.ssl_port, client_ctx(pki, "alice")) == 41
    # Kafka's default principal builder: User: and the subject as X500Principal.getName().
    deadline = time.time() + 5
    while "principal User:CN=alice,OU=eng,O=corp" not in b.log() and time.time() < deadline:
        time.sleep(0.1)
    assert "principal User:CN=alice,OU=eng,O=corp" in b.log()
    # Refused: no certificate, an expired one, one from a CA the broker does not trust.
    for cert in (None, "expired", "mallory"):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            tls_api_versions(b.ssl_port, client_ctx(pki, cert))
    assert "certificate has expired" in b.log()
    assert tls_api_versions(b.ssl_port, client_ctx(pki, "alice")) == 41


def test_client_auth_requested_and_mapping_rules(tmp_path, pki, stop_after, monkeypatch):
    monkeypatch.setenv("GREGOR_LOG_LEVEL", "DEBUG")
    o = pem_keystore(pki)
    o.update({"ssl.client.auth": "requested", "ssl.truststore.type": "PEM",
              "ssl.truststore.location": pki("ca.pem"),
              "ssl.principal.mapping.rules": "RULE:^CN=([a-z]+),OU=eng,O=corp$/$1@ENG/U,DEFAULT"})
    b = start_tls_broker(tmp_path, o)
    stop_after(b)
    assert tls_api_versions(b.ssl_port, client_ctx(pki, "alice")) == 41
    assert tls_api_versions(b.ssl_port, client_ctx(pki)) == 41  # requested: none is fine
    log = b.log()
    assert "principal User:ALICE@ENG" in log and "principal User:ANONYMOUS" in log


def start_should_fail(tmp_path, overrides):
    port, ssl_port = free_port(), free_port()
    o = {"listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (port, ssl_port)}
    o.update(overrides)
    b = Broker(str(tmp_path / ("bad-" + uuid.uuid4().hex[:6])), port=port, overrides=o)
    try:
        p = subprocess.run(b.args(), capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired as e:
        pytest.fail("the broker started: %s" % (e.stdout or b"")[-2000:])
    return p.returncode, p.stdout + p.stderr


BAD_CONFIGS = [
    ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "/nonexistent/ks.pem"}, "ssl.keystore.location"),
    ({"ssl.keystore.type": "PEM", "listener.name.ssl.ssl.keystore.location": "/nonexistent/ks.pem"},
     "listener.name.ssl.ssl.keystore.location"),
    ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "{ca.pem}"}, "ssl.keystore.location"),
    ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "{serverenc.keystore.pem}",
      "ssl.key.password": "wrong"}, "ssl.keystore.location"),
    ({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": "{server.p12}",
      "ssl.keystore.password": "wrong"}, "ssl.keystore.location"),
    ({"ssl.keystore.type": "JKS", "ssl.keystore.location": "{server.p12}"}, "ssl.keystore.type"),
    ({}, "ssl.keystore.location"),
    ({"ssl.client.auth": "always"}, "ssl.client.auth"),
    ({"ssl.client.auth": "required"}, "ssl.client.auth"),
    ({"ssl.enabled.protocols": "TLSv1.2,SSLv3"}, "ssl.enabled.protocols"),
    ({"ssl.cipher.suites": "TLS_NOT_A_SUITE"}, "ssl.cipher.suites"),
    ({"ssl.principal.mapping.rules": "RULE:nope"}, "ssl.principal.mapping.rules"),
]


@pytest.mark.parametrize("i", range(len(BAD_CONFIGS)))
def test_bad_tls_config_is_a_startup_error_naming_the_key(tmp_path, pki, i):
    bad, key = BAD_CONFIGS[i]
    o = dict(pem_keystore(pki)) if "ssl.keystore.location" not in str(bad) and bad else {}
    if bad and "ssl.keystore.type" not in bad and not o:
        o = pem_keystore(pki)
    for k, v in bad.items():
        o[k] = pki(v[1:-1]) if v.startswith("{") else v
    rc, out = start_should_fail(tmp_path, o)
    assert rc != 0, out
    assert "configuration %s" % key in out, out
    assert "AddressSanitizer" not in out and "runtime error" not in out, out


def test_listener_config_errors(tmp_path):
    port = free_port()
    cases = [
        ({"listeners": "PLAINTEXT://127.0.0.1:%d,FOO://127.0.0.1:%d" % (port, free_port())},
         "No security protocol defined for listener FOO"),
        ({"listeners": "PLAINTEXT://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d" % (port, free_port())},
         "Each listener must have a different name"),
        ({"listeners": "PLAINTEXT://127.0.0.1:%d" % port,
          "advertised.listeners": "SSL://localhost:%d" % port},
         "advertised.listeners listener names must be equal to or a subset"),
    ]
    for o, msg in cases:
        b = Broker(str(tmp_path / ("l" + uuid.uuid4().hex[:6])), port=port, overrides=o)
        p = subprocess.run(b.args(), capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and msg in p.stdout + p.stderr, p.stdout + p.stderr


def closed_by_peer(s, timeout):
    """True when the broker closes s (EOF or reset) within timeout seconds."""
    s.settimeout(timeout)
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def rss_kb(b):
    for line in open("/proc/%d/status" % b.proc.pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_plaintext_to_tls_port_and_tls_to_plaintext_port_are_refused(tmp_path, pki, stop_after):
    b = start_tls_broker(tmp_path, pem_keystore(pki))
    stop_after(b)
    # Kafka bytes to the TLS port: not a ClientHello, the handshake fails and the socket closes.
    with socket.create_connection(("127.0.0.1", b.ssl_port)) as s:
        s.sendall(api_versions_frame())
        assert closed_by_peer(s, 5)
    # A TLS handshake to the plaintext port: its record header reads as a frame far too big.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_api_versions(b.port, client_ctx(pki), timeout=5)
    assert "Failed authentication with 127.0.0.1" in b.log()
    assert api_versions_ok(b.port)
    assert tls_api_versions(b.ssl_port, client_ctx(pki)) == 41


def test_unfinished_handshakes_are_closed_and_nothing_grows(tmp_path, pki, stop_after):
    b = start_tls_broker(tmp_path, pem_keystore(pki),
                         extra={"gregor.request.read.timeout.ms": "1500"})
    stop_after(b)
    assert tls_api_versions(b.ssl_port, client_ctx(pki)) == 41
    base_fds = settled_fds(b)
    # A client that connects and says nothing, and one that stops inside its ClientHello.
    silent = socket.create_connection(("127.0.0.1", b.ssl_port))
    partial = socket.create_connection(("127.0.0.1", b.ssl_port))
    partial.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]))
    # Others are served meanwhile.
    assert tls_api_versions(b.ssl_port, client_ctx(pki)) == 41
    assert closed_by_peer(silent, 8) and closed_by_peer(partial, 8)
    silent.close()
    partial.close()
    assert "TLS handshake still incomplete after" in b.log()

    def hostile_round(n):
        for i in range(n):
            with socket.create_connection(("127.0.0.1", b.ssl_port)) as s:  # garbage
                s.sendall(b"\x00" * 64)
                closed_by_peer(s, 5)
            cert = ("expired", "mallory", None)[i % 3]  # untrusted or no client certs are fine
            try:
                tls_api_versions(b.ssl_port, client_ctx(pki, cert))
            except (ssl.SSLError, ConnectionError, OSError):
                pass
            with socket.create_connection(("127.0.0.1", b.ssl_port)) as raw:  # hangs up mid-way
                ctx = client_ctx(pki)
                s = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
                s.setblocking(False)
                try:
                    s.do_handshake()
                except ssl.SSLWantReadError:
                    pass
    hostile_round(60)
    rss_before = rss_kb(b)
    hostile_round(240)
    assert tls_api_versions(b.ssl_port, client_ctx(pki)) == 41
    deadline = time.time() + 10
    while open_fds(b) > base_fds and time.time() < deadline:
        time.sleep(0.1)
    assert open_fds(b) == base_fds
    grown = rss_kb(b) - rss_before
    if not ASAN:  # ASan's quarantine keeps freed memory; LeakSanitizer checks at its exit instead
        assert grown < 2048, "RSS grew %d KB over 240 rounds of hostile connections" % grown


def test_mutual_tls_required_refuses_others_while_serving(tmp_path, pki, stop_after):
    o = pem_keystore(pki)
    o.update({"ssl.client.auth": "required", "ssl.truststore.type": "PEM",
              "ssl.truststore.location": pki("ca.pem")})
    b = start_tls_broker(tmp_path, o)
    stop_after(b)
    alice = {"ssl.certificate.location": pki("alice.pem"), "ssl.key.location": pki("alice.key")}
    rdkafka_round_trip(b, pki, n=50, **alice)
    from confluent_kafka.admin import AdminClient
    base = settled_fds(b)
    # librdkafka with an expired certificate or none: refused, while alice is served.
    for extra in ({"ssl.certificate.location": pki("expired.pem"), "ssl.key.location": pki("expired.key")}, {}):
        bad = AdminClient(rdkafka_conf(b, pki, **extra))
        with pytest.raises(Exception):
            bad.list_topics(timeout=3)
        del bad
        assert tls_api_versions(b.ssl_port, client_ctx(pki, "alice")) == 41
    deadline = time.time() + 10
    while open_fds(b) > base and time.time() < deadline:
        time.sleep(0.1)
    assert open_fds(b) == base


def test_java_client_over_mutual_tls(tmp_path, pki, stop_after, monkeypatch, client_jar):
    monkeypatch.setenv("GREGOR_LOG_LEVEL", "DEBUG")
    o = pem_keystore(pki)
    o.update({"ssl.client.auth": "required", "ssl.truststore.type": "PEM",
              "ssl.truststore.location": pki("ca.pem")})
    b = start_tls_broker(tmp_path, o)
    stop_after(b)
    # Kafka's own PEM forms on the client side too (KIP-651): one file with key and chain.
    ks = str(tmp_path / "alice.keystore.pem")
    with open(ks, "w") as f:
        f.write(open(pki("alice.key")).read() + open(pki("alice.pem")).read())
    conf = str(tmp_path / "client.properties")
    with open(conf, "w") as f:
        f.write("security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n"
                "ssl.keystore.type=PEM\nssl.keystore.location=%s\n" % (pki("ca.pem"), ks))
    tls = Broker.__new__(Broker)
    tls.__dict__.update(b.__dict__)
    tls.port = b.ssl_port  # bootstrap through the SSL listener
    r = run_check(client_jar, tls, "produce-idempotent", "count=2000", "partitions=2",
                  "client.config=" + conf)
    assert r["produced"] == "2000" and r["consumed"] == "2000"
    assert "principal User:CN=alice,OU=eng,O=corp" in b.log()


def test_cluster_broker_needs_a_plaintext_listener(tmp_path, pki):
    """Without inter.broker.listener.name or security.inter.broker.protocol, brokers reach each
    other on PLAINTEXT (Kafka's default): with only SSL listeners the broker refuses to start
    with Kafka's message (test_interbroker_security.py runs SSL-only clusters that set it)."""
    port = free_port()
    o = {"listeners": "SSL://127.0.0.1:%d" % port, "zookeeper.connect": "127.0.0.1:1",
         "broker.id": "1"}
    o.update(pem_keystore(pki))
    b = Broker(str(tmp_path / "zk"), port=port, overrides=o)
    p = subprocess.run(b.args(), capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert ("inter.broker.listener.name must be a listener name defined in advertised.listeners. "
            "The valid options based on currently configured listeners are SSL") in p.stdout + p.stderr


def mtls_broker(tmp_path, pki, monkeypatch):
    monkeypatch.setenv("GREGOR_LOG_LEVEL", "DEBUG")
    o = pem_keystore(pki)
    o.update({"ssl.client.auth": "required", "ssl.truststore.type": "PEM",
              "ssl.truststore.location": pki("ca.pem")})
    return start_tls_broker(tmp_path, o)


def test_kcat_over_mutual_tls(tmp_path, pki, stop_after, monkeypatch):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat is required"
    b = mtls_broker(tmp_path, pki, monkeypatch)
    stop_after(b)
    tls = ["-b", "127.0.0.1:%d" % b.ssl_port, "-X", "security.protocol=SSL",
           "-X", "ssl.ca.location=" + pki("ca.pem"),
           "-X", "ssl.certificate.location=" + pki("alice.pem"),
           "-X", "ssl.key.location=" + pki("alice.key")]
    lines = "\n".join("key%d:value %d" % (i, i) for i in range(500)) + "\n"
    p = subprocess.run([kcat, *tls, "-P", "-t", "kc", "-K:", "-p", "0"], input=lines,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    c = subprocess.run([kcat, *tls, "-C", "-t", "kc", "-p", "0", "-o", "beginning", "-e",
                        "-f", "%k=%s@%o\n"], capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    assert c.stdout.splitlines() == ["key%d=value %d@%d" % (i, i, i) for i in range(500)]
    assert "principal User:CN=alice,OU=eng,O=corp" in b.log()


def test_franz_go_over_mutual_tls(tmp_path, pki, stop_after, monkeypatch, franz_check):
    b = mtls_broker(tmp_path, pki, monkeypatch)
    stop_after(b)
    monkeypatch.setenv("GREGOR_TLS_CA", pki("ca.pem"))
    monkeypatch.setenv("GREGOR_TLS_CERT", pki("alice.pem"))
    monkeypatch.setenv("GREGOR_TLS_KEY", pki("alice.key"))
    tls = Broker.__new__(Broker)
    tls.__dict__.update(b.__dict__)
    tls.port = b.ssl_port
    r = franz_run_check(franz_check, tls, "produce-consume", "1000")
    assert r["produced"] == "1000" and r["consumed"] == "1000"
    assert "principal User:CN=alice,OU=eng,O=corp" in b.log()


def test_unknown_ssl_key_is_warned_about(tmp_path, pki, stop_after):
    o = pem_keystore(pki)
    o.update({"ssl.keystore.locaton": "/typo", "listener.name.ssl.ssl.clent.auth": "required"})
    b = start_tls_broker(tmp_path, o)
    stop_after(b)
    log = b.log()
    assert "The configuration 'ssl.keystore.locaton' was supplied but isn't a known config." in log
    assert "The configuration 'listener.name.ssl.ssl.clent.auth' was supplied but isn't a known config." in log
    assert "'ssl.keystore.location' was supplied" not in log
    assert tls_api_versions(b.ssl_port, client_ctx(pki)) == 41


def tls_session_info(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(api_versions_frame(41))
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            recv_exact(s, size)
            return s.version(), s.cipher()[0]


def test_enabled_protocols_and_cipher_suites(tmp_path, pki, stop_after):
    o = pem_keystore(pki)
    o.update({"ssl.enabled.protocols": "TLSv1.2",
              "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"})
    b = start_tls_broker(tmp_path, o)
    stop_after(b)
    assert tls_session_info(b.ssl_port, client_ctx(pki)) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    only13 = client_ctx(pki)
    only13.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_session_info(b.ssl_port, only13)
    other_suite = client_ctx(pki)
    other_suite.maximum_version = ssl.TLSVersion.TLSv1_2
    other_suite.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_session_info(b.ssl_port, other_suite)
    b2 = start_tls_broker(tmp_path, dict(pem_keystore(pki), **{
        "ssl.enabled.protocols": "TLSv1.3", "ssl.cipher.suites": "TLS_CHACHA20_POLY1305_SHA256"}),
        name="data2")
    stop_after(b2)
    assert tls_session_info(b2.ssl_port, client_ctx(pki)) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
    only12 = client_ctx(pki)
    only12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_session_info(b2.ssl_port, only12)
