"""TLS listeners (issue 19): listeners=PLAINTEXT://...,SSL://... with Kafka's ssl.* keys.

A CA, server and client certificates are made here with the openssl CLI (an expired client
certificate and one from another CA too). Real clients produce and consume over SSL; mutual
TLS checks the principal taken from the client certificate; broken and hostile peers are
refused while the broker keeps serving the others.
"""
import os
import socket
import ssl
import struct
import subprocess
import time
import uuid

import pytest

from conftest import Broker, GREGOR, api_versions_ok, free_port

OPENSSL = "openssl"


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
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(api_versions_frame(41))
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            body = recv_exact(s, size)
            return struct.unpack(">i", body[:4])[0]


def open_fds(b):
    return len(os.listdir("/proc/%d/fd" % b.proc.pid))


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
