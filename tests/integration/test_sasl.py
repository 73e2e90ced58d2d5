"""SASL on SASL_PLAINTEXT listeners (issue 19): SaslHandshake v0 (raw tokens) and v1 +
SaslAuthenticate, PLAIN and SCRAM-SHA-256/512 as Kafka's SaslServerAuthenticator answers them,
with real clients (kafka-python, the Java client, confluent-kafka) and raw-wire exchanges for
what clients will not send (a wrong proof, a repeated nonce, a request before authenticating,
a cut-short exchange). Credentials are written salted in the data dir as Kafka's ScramFormatter
makes them, computed here with hashlib."""
import base64
import hashlib
import hmac
import os
import socket
import struct
import time
import uuid

import pytest

from conftest import Broker, GREGOR, api_versions_ok, free_port

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret" user_bob="bob-secret";')
SCRAM_JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required;'
FAILED_512 = ("Authentication failed during authentication due to invalid credentials with SASL "
              "mechanism SCRAM-SHA-512")
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def scram_credential(mech, password, salt=None, iterations=4096):
    """Kafka's ZooKeeper form of a SCRAM credential (ScramCredentialUtils.credentialToString)."""
    h = HASHES[mech]
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac(h, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored = hashlib.new(h, client_key).digest()
    server = hmac.new(salted, b"Server Key", h).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return "salt=%s,stored_key=%s,server_key=%s,iterations=%d" % (b64(salt), b64(stored),
                                                                   b64(server), iterations)


def start_sasl_broker(tmp_path, mechanisms="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", extra=None,
                      users=(("alice", "alice-secret"),), name="data"):
    port, sasl_port = free_port(), free_port()
    data = tmp_path / name
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "scram-credentials", "w") as f:
        for user, pw in users:
            for mech in HASHES:
                f.write("%s\t%s\t%s\n" % (mech, user, scram_credential(mech, pw)))
    o = {"listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl_port),
         "sasl.enabled.mechanisms": mechanisms,
         "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
         "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
         "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM_JAAS}
    o.update(extra or {})
    b = Broker(str(data), port=port, overrides=o)
    b.sasl_port = sasl_port
    b.start()
    return b


@pytest.fixture
def broker(tmp_path):
    b = start_sasl_broker(tmp_path)
    yield b
    alive = b.alive()
    rc = b.stop()
    assert alive, "broker died during the test:\n" + b.log()
    assert rc == 0, "broker exited %s on SIGTERM:\n%s" % (rc, b.log())


# ---- raw wire ----

def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def call(s, api, version, corr, body, flexible=False):
    hdr = struct.pack(">hhih", api, version, corr, 4) + b"test" + (b"\x00" if flexible else b"")
    msg = hdr + body
    s.sendall(struct.pack(">i", len(msg)) + msg)
    n = struct.unpack(">i", recv_exact(s, 4))[0]
    resp = recv_exact(s, n)
    assert struct.unpack(">i", resp[:4])[0] == corr
    return resp[4:]


def s16(b):
    return struct.pack(">h", len(b)) + b


def handshake(s, mechanism, version=1):
    """SaslHandshake: (error_code, [mechanisms])."""
    r = call(s, 17, version, 1, s16(mechanism.encode()))
    err, n = struct.unpack(">hi", r[:6])
    at, mechs = 6, []
    for _ in range(n):
        ln = struct.unpack(">h", r[at:at + 2])[0]
        mechs.append(r[at + 2:at + 2 + ln].decode())
        at += 2 + ln
    return err, mechs


def authenticate(s, token, version=1, corr=2):
    """SaslAuthenticate v0/v1: (error_code, error_message, auth_bytes, session_lifetime_ms)."""
    r = call(s, 36, version, corr, struct.pack(">i", len(token)) + token)
    err = struct.unpack(">h", r[:2])[0]
    ln = struct.unpack(">h", r[2:4])[0]
    msg = r[4:4 + ln].decode() if ln >= 0 else None
    at = 4 + max(ln, 0)
    bl = struct.unpack(">i", r[at:at + 4])[0]
    data = r[at + 4:at + 4 + bl]
    life = struct.unpack(">q", r[at + 4 + bl:at + 12 + bl])[0] if version >= 1 else None
    return err, msg, data, life


def raw_token(s, token):
    s.sendall(struct.pack(">i", len(token)) + token)
    n = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, n)


class ScramClient:
    """RFC 5802 client side; repeat_client_nonce mimics librdkafka < 2.6.1."""

    def __init__(self, mech, user, password, repeat_client_nonce=False):
        self.h = HASHES[mech]
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.repeat = repeat_client_nonce

    def first(self):
        self.bare = "n=%s,r=%s" % (self.user, self.nonce)
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce)
        salted = hashlib.pbkdf2_hmac(self.h, self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        nonce = self.nonce if self.repeat else attrs["r"]
        without_proof = "c=biws,r=%s" % nonce
        auth = ",".join([self.bare, sf, without_proof]).encode()
        client_key = hmac.new(salted, b"Client Key", self.h).digest()
        stored = hashlib.new(self.h, client_key).digest()
        sig = hmac.new(stored, auth, self.h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", self.h).digest()
        self.expected_v = base64.b64encode(hmac.new(server_key, auth, self.h).digest()).decode()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()


def connect(b):
    s = socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10)
    return s


def metadata_ok(s, corr=9):
    """A Metadata v1 request for all topics answers (the connection is authenticated)."""
    r = call(s, 3, 1, corr, struct.pack(">i", -1))
    return len(r) > 4


def closed_without_answer(s, timeout=5):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_exchange_raw_wire_v1(broker, mech):
    with connect(broker) as s:
        assert handshake(s, mech) == (0, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
        c = ScramClient(mech, "alice", "alice-secret")
        err, msg, server_first, life = authenticate(s, c.first())
        assert (err, msg) == (0, "") and server_first.startswith(b"r=" + c.nonce.encode())
        assert b",s=" in server_first and server_first.endswith(b",i=4096")
        err, msg, server_final, life = authenticate(s, c.final(server_first), corr=3)
        assert (err, life) == (0, 0)
        assert server_final.decode() == "v=" + c.expected_v
        assert metadata_ok(s)


@pytest.mark.parametrize("case", ["wrong-password", "unknown-user", "repeated-nonce"])
def test_scram_refusals_are_delayed_and_close(broker, case):
    with connect(broker) as s:
        assert handshake(s, "SCRAM-SHA-512")[0] == 0
        user = "mallory" if case == "unknown-user" else "alice"
        pw = "wrong" if case == "wrong-password" else "alice-secret"
        c = ScramClient("SCRAM-SHA-512", user, pw, repeat_client_nonce=case == "repeated-nonce")
        t0 = time.time()
        if case == "unknown-user":
            err, msg, _, _ = authenticate(s, c.first())
        else:
            err, msg, sf, _ = authenticate(s, c.first())
            assert err == 0
            t0 = time.time()
            err, msg, _, _ = authenticate(s, c.final(sf), corr=3)
        took = time.time() - t0
        assert (err, msg) == (58, FAILED_512)
        assert took >= 0.09, "answered after %.3fs, before connection.failed.authentication.delay.ms" % took
        assert closed_without_answer(s)
    # the broker keeps serving others
    with connect(broker) as s:
        assert handshake(s, "SCRAM-SHA-512")[0] == 0
        c = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
        sf = authenticate(s, c.first())[2]
        assert authenticate(s, c.final(sf), corr=3)[0] == 0
        assert metadata_ok(s)
    assert api_versions_ok(broker.port)


def test_plain_raw_wire_and_authzid(broker):
    with connect(broker) as s:
        assert handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, b"alice\x00alice\x00alice-secret")[:3] == (0, "", b"")
        assert metadata_ok(s)
    with connect(broker) as s:
        assert handshake(s, "PLAIN")[0] == 0
        err, msg, _, _ = authenticate(s, b"bob\x00alice\x00alice-secret")
        assert (err, msg) == (58, "Authentication failed: Client requested an authorization id "
                                  "that is different from username")
        assert closed_without_answer(s)
    with connect(broker) as s:
        assert handshake(s, "PLAIN")[0] == 0
        err, msg, _, _ = authenticate(s, b"\x00alice\x00nope")
        assert (err, msg) == (58, "Authentication failed: Invalid username or password")
        assert closed_without_answer(s)


def test_handshake_v0_raw_tokens(broker):
    with connect(broker) as s:
        assert handshake(s, "SCRAM-SHA-256", version=0)[0] == 0
        c = ScramClient("SCRAM-SHA-256", "alice", "alice-secret")
        sf = raw_token(s, c.first())
        final = raw_token(s, c.final(sf))
        assert final.decode() == "v=" + c.expected_v
        assert metadata_ok(s)
    with connect(broker) as s:
        assert handshake(s, "PLAIN", version=0)[0] == 0
        assert raw_token(s, b"\x00alice\x00alice-secret") == b""
        assert metadata_ok(s)
    with connect(broker) as s:  # a wrong password on v0: no answer, closed
        assert handshake(s, "PLAIN", version=0)[0] == 0
        token = b"\x00alice\x00wrong!"
        s.sendall(struct.pack(">i", len(token)) + token)
        assert closed_without_answer(s)


def test_unsupported_mechanism_and_requests_before_authentication(broker):
    with connect(broker) as s:
        assert handshake(s, "GSSAPI") == (33, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
        assert closed_without_answer(s)
    with connect(broker) as s:  # ApiVersions is served before authentication
        r = call(s, 18, 0, 5, b"")
        assert struct.unpack(">h", r[:2])[0] == 0
        s.sendall(struct.pack(">i", 14) + struct.pack(">hhih", 3, 1, 6, 0) + struct.pack(">i", -1))
        assert closed_without_answer(s)  # Metadata before the handshake
    assert "Unexpected Kafka request of type METADATA during SASL handshake." in broker.log()
    with connect(broker) as s:  # Metadata between handshake and authentication
        assert handshake(s, "PLAIN")[0] == 0
        s.sendall(struct.pack(">i", 14) + struct.pack(">hhih", 3, 1, 6, 0) + struct.pack(">i", -1))
        assert closed_without_answer(s)
    with connect(broker) as s:  # authenticated with SaslAuthenticate v0 (no KIP-368):
        assert handshake(s, "PLAIN")[0] == 0  # a second handshake is ILLEGAL_SASL_STATE
        assert authenticate(s, b"\x00alice\x00alice-secret", version=0)[0] == 0
        assert handshake(s, "PLAIN") == (34, [])
        err, msg, _, _ = authenticate(s, b"x", corr=8)
        assert (err, msg) == (34, "SaslAuthenticate request received after successful authentication")
    # On the PLAINTEXT listener the SASL APIs answer ILLEGAL_SASL_STATE, as KafkaApis does.
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        assert handshake(s, "PLAIN") == (34, [])
        assert metadata_ok(s)


def test_cut_short_exchange_and_garbage_tokens(broker):
    with connect(broker) as s:
        assert handshake(s, "SCRAM-SHA-512")[0] == 0
        c = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
        assert authenticate(s, c.first())[0] == 0
    # dropped mid-exchange; then garbage messages each refused
    for token in [b"", b"x", b"n,,n=alice", b"y,,n=alice,r=abc", b"n,,n=al=ZZice,r=a",
                  b"n,,n=alice,r=abc,ext=1", b"n,,n=alice,r=abc,tokenauth=true", b"\xff" * 5000]:
        with connect(broker) as s:
            assert handshake(s, "SCRAM-SHA-512")[0] == 0
            err, msg, _, _ = authenticate(s, token)
            assert (err, msg) == (58, FAILED_512), token
            assert closed_without_answer(s)
    with connect(broker) as s:
        assert handshake(s, "SCRAM-SHA-512")[0] == 0
        c = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
        sf = authenticate(s, c.first())[2]
        err, msg, _, _ = authenticate(s, b"c=biws,r=" + sf[2:sf.index(b",")] + b",p=AAAA", corr=3)
        assert (err, msg) == (58, FAILED_512)
    assert broker.alive() and api_versions_ok(broker.port)


def test_missing_jaas_entry_is_a_startup_error(tmp_path):
    port, sasl_port = free_port(), free_port()
    b = Broker(str(tmp_path / "d"), port=port, overrides={
        "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl_port),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    with pytest.raises(RuntimeError) as e:
        b.start(timeout=10)
    assert ("Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS "
            "configuration") in str(e.value)
    # the unprefixed forms Kafka accepts
    b = Broker(str(tmp_path / "d2"), port=port, overrides={
        "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl_port),
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512", "plain.sasl.jaas.config": PLAIN_JAAS,
        "sasl.jaas.config": SCRAM_JAAS})
    b.sasl_port = sasl_port
    b.start()
    try:
        with connect(b) as s:
            assert handshake(s, "PLAIN")[0] == 0
            assert authenticate(s, b"\x00bob\x00bob-secret")[0] == 0
    finally:
        assert b.stop() == 0


# ---- clients ----

@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python(broker, mech):
    from kafka import KafkaConsumer, KafkaProducer
    topic = "kp-" + uuid.uuid4().hex[:8]
    conf = dict(bootstrap_servers="127.0.0.1:%d" % broker.sasl_port, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mech, sasl_plain_username="alice", sasl_plain_password="alice-secret")
    p = KafkaProducer(**conf)
    for i in range(20):
        p.send(topic, b"v%d" % i)
    p.flush(timeout=30)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **conf)
    got = [m.value for m in c]
    c.close()
    assert got == [b"v%d" % i for i in range(20)]


def test_kafka_python_wrong_password_fails(broker):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers="127.0.0.1:%d" % broker.sasl_port,
                      security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                      sasl_plain_username="alice", sasl_plain_password="nope",
                      api_version_auto_timeout_ms=5000, max_block_ms=5000)
    assert api_versions_ok(broker.port)


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_confluent_kafka(broker, mech):
    import confluent_kafka
    topic = "ck-" + uuid.uuid4().hex[:8]
    conf = {"bootstrap.servers": "127.0.0.1:%d" % broker.sasl_port,
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mech,
            "sasl.username": "alice", "sasl.password": "alice-secret"}
    p = confluent_kafka.Producer(conf)
    for i in range(50):
        p.produce(topic, b"v%d" % i)
    assert p.flush(30) == 0
    c = confluent_kafka.Consumer(dict(conf, **{"group.id": "g", "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got, deadline = [], time.time() + 30
    while len(got) < 50 and time.time() < deadline:
        m = c.poll(1)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert got == [b"v%d" % i for i in range(50)]


# ---- the Java client, and SASL_SSL ----

from test_java_client import client_jar, run_check  # noqa: E402,F401 (a fixture)
from test_tls import pki  # noqa: E402,F401 (a fixture)


def java_over_sasl(tmp_path, client_jar, b, port, mech, extra_conf=""):
    conf = str(tmp_path / ("client-%s.properties" % mech))
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mech == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    with open(conf, "w") as f:
        f.write("security.protocol=%s\nsasl.mechanism=%s\n"
                "sasl.jaas.config=%s required username=\"alice\" password=\"alice-secret\";\n%s"
                % ("SASL_SSL" if extra_conf else "SASL_PLAINTEXT", mech, module, extra_conf))
    via = Broker.__new__(Broker)
    via.__dict__.update(b.__dict__)
    via.port = port
    r = run_check(client_jar, via, "produce-idempotent", "count=500", "partitions=2",
                  "client.config=" + conf)
    assert r["produced"] == "500" and r["consumed"] == "500"


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_java_client(tmp_path, broker, client_jar, mech):
    java_over_sasl(tmp_path, client_jar, broker, broker.sasl_port, mech)


@pytest.fixture
def sasl_ssl_broker(tmp_path, pki):
    port, sasl_port = free_port(), free_port()
    data = tmp_path / "ssl-data"
    data.mkdir()
    with open(data / "scram-credentials", "w") as f:
        f.write("SCRAM-SHA-512\talice\t%s\n" % scram_credential("SCRAM-SHA-512", "alice-secret"))
    b = Broker(str(data), port=port, overrides={
        "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d" % (port, sasl_port),
        "ssl.keystore.type": "PEM", "ssl.keystore.location": pki("server.keystore.pem"),
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM_JAAS})
    b.sasl_port = sasl_port
    b.start()
    yield b
    assert b.alive(), b.log()
    assert b.stop() == 0


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl_clients(tmp_path, sasl_ssl_broker, pki, client_jar, mech):
    import confluent_kafka
    from kafka import KafkaConsumer, KafkaProducer
    b = sasl_ssl_broker
    topic = "ssl-" + uuid.uuid4().hex[:8]
    conf = {"bootstrap.servers": "localhost:%d" % b.sasl_port, "security.protocol": "SASL_SSL",
            "ssl.ca.location": pki("ca.pem"), "sasl.mechanism": mech, "sasl.username": "alice",
            "sasl.password": "alice-secret"}
    p = confluent_kafka.Producer(conf)
    for i in range(30):
        p.produce(topic, b"v%d" % i)
    assert p.flush(30) == 0
    kp = dict(bootstrap_servers="localhost:%d" % b.sasl_port, security_protocol="SASL_SSL",
              ssl_cafile=pki("ca.pem"), sasl_mechanism=mech, sasl_plain_username="alice",
              sasl_plain_password="alice-secret")
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **kp)
    got = [m.value for m in c]
    c.close()
    assert got == [b"v%d" % i for i in range(30)]
    java_over_sasl(tmp_path, client_jar, b, b.sasl_port, mech,
                   "ssl.truststore.type=PEM\nssl.truststore.location=%s\n" % pki("ca.pem"))
    bad = confluent_kafka.Producer(dict(conf, **{"sasl.password": "wrong"}))
    bad.produce(topic, b"x")
    assert bad.flush(5) == 1  # never delivered: authentication failed


# ---- franz-go ----

from test_franz_go import franz_check, run_check as franz_run_check  # noqa: E402,F401 (a fixture)


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_franz_go(broker, sasl_ssl_broker, pki, franz_check, monkeypatch, mech):
    monkeypatch.setenv("GREGOR_SASL_MECHANISM", mech)
    monkeypatch.setenv("GREGOR_SASL_USER", "alice")
    monkeypatch.setenv("GREGOR_SASL_PASSWORD", "alice-secret")
    for b, ca in ((broker, None), (sasl_ssl_broker, pki("ca.pem"))):
        if ca:
            monkeypatch.setenv("GREGOR_TLS_CA", ca)
        via = Broker.__new__(Broker)
        via.__dict__.update(b.__dict__)
        via.port = b.sasl_port
        r = franz_run_check(franz_check, via, "produce-consume", "500")
        assert r["produced"] == "500" and r["consumed"] == "500"


# ---- KIP-368 re-authentication ----

def scram_login(s, user, pw, corr=2):
    c = ScramClient("SCRAM-SHA-512", user, pw)
    assert handshake(s, "SCRAM-SHA-512")[0] == 0
    err, msg, sf, _ = authenticate(s, c.first(), corr=corr)
    assert err == 0, msg
    return authenticate(s, c.final(sf), corr=corr + 1)


def test_reauthentication(tmp_path, client_jar):
    b = start_sasl_broker(tmp_path, users=(("alice", "alice-secret"), ("bob", "bob-secret")),
                          extra={"connections.max.reauth.ms": "1500"})
    try:
        with connect(b) as s:  # re-authenticates on the same connection within its lifetime
            err, _, _, life = scram_login(s, "alice", "alice-secret")
            assert (err, life) == (0, 1500)
            for i in range(3):
                time.sleep(1.0)
                err, _, _, life = scram_login(s, "alice", "alice-secret", corr=10 + 2 * i)
                assert (err, life) == (0, 1500)
                assert metadata_ok(s, corr=30 + i)
        with connect(b) as s:  # past its lifetime without re-authenticating: closed
            assert scram_login(s, "alice", "alice-secret")[0] == 0
            assert metadata_ok(s)
            time.sleep(1.7)
            s.sendall(struct.pack(">i", 14) + struct.pack(">hhih", 3, 1, 6, 0) + struct.pack(">i", -1))
            assert closed_without_answer(s)
        with connect(b) as s:  # another principal may not take the connection over
            assert scram_login(s, "alice", "alice-secret")[0] == 0
            err, msg, _, _ = scram_login(s, "bob", "bob-secret", corr=5)
            assert (err, msg) == (58, "Cannot change principals during re-authentication from "
                                      "User:alice: User:bob")
            assert closed_without_answer(s)
        # The Java client re-authenticates by itself while it produces and consumes.
        java_over_sasl(tmp_path, client_jar, b, b.sasl_port, "SCRAM-SHA-512")
        assert b.alive()
    finally:
        assert b.stop() == 0


# ---- KIP-554: credentials managed over the wire ----

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kafka_harness", "kafka.sh")


def test_kafka_configs_alter_then_login(tmp_path, broker):
    """Kafka 4.x's own kafka-configs.sh adds a SCRAM-SHA-512 credential; the user logs in at
    once with it, and the salted form is what the data dir keeps."""
    env = dict(os.environ, KAFKA_STATE=str(tmp_path / "kafka-tool"))
    import subprocess
    r = subprocess.run([HARNESS, "run-class", "kafka.admin.ConfigCommand", "--bootstrap-server",
                        broker.bootstrap, "--alter", "--add-config",
                        "SCRAM-SHA-512=[iterations=8192,password=carol-secret]",
                        "--entity-type", "users", "--entity-name", "carol"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert "Completed updating config for user carol." in r.stdout, r.stdout + r.stderr
    with connect(broker) as s:
        err, _, final, _ = scram_login(s, "carol", "carol-secret")
        assert err == 0 and final.startswith(b"v=")
        assert metadata_ok(s)
    with connect(broker) as s:
        assert scram_login(s, "carol", "wrong")[0] == 58
    lines = [ln.split("\t") for ln in open(os.path.join(broker.data_dir, "scram-credentials"))]
    carol = [ln for ln in lines if ln[1] == "carol"]
    assert len(carol) == 1 and carol[0][0] == "SCRAM-SHA-512"
    assert carol[0][2].strip().endswith(",iterations=8192") and "carol-secret" not in carol[0][2]


def test_admin_client_describe_and_alter(broker):
    import confluent_kafka
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialDeletion, UserScramCredentialUpsertion)
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = a.describe_user_scram_credentials(["alice"])["alice"].result()
    infos = sorted((i.mechanism, i.iterations) for i in res.scram_credential_infos)
    assert infos == [(ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 4096)]
    with pytest.raises(confluent_kafka.KafkaException) as e:
        a.describe_user_scram_credentials(["nobody"])["nobody"].result()
    assert e.value.args[0].code() == confluent_kafka.KafkaError.RESOURCE_NOT_FOUND
    ups = UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 10000),
                                       b"dave-secret", b"0123456789abcdef")
    few = UserScramCredentialUpsertion("erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100),
                                       b"erin-secret")
    gone = UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_512)
    fs = a.alter_user_scram_credentials([ups, few, gone])
    fs["dave"].result()
    with pytest.raises(confluent_kafka.KafkaException) as e:
        fs["erin"].result()
    assert e.value.args[0].str() == "Too few iterations"
    with pytest.raises(confluent_kafka.KafkaException) as e:
        fs["nobody"].result()
    assert e.value.args[0].code() == confluent_kafka.KafkaError.RESOURCE_NOT_FOUND
    with connect(broker) as s:  # dave logs in with SCRAM-SHA-256 at 10000 iterations
        c = ScramClient("SCRAM-SHA-256", "dave", "dave-secret")
        assert handshake(s, "SCRAM-SHA-256")[0] == 0
        err, _, sf, _ = authenticate(s, c.first())
        assert err == 0 and sf.endswith(b",i=10000")
        assert authenticate(s, c.final(sf), corr=3)[0] == 0
    a.alter_user_scram_credentials([UserScramCredentialDeletion(
        "dave", ScramMechanism.SCRAM_SHA_256)])["dave"].result()
    with connect(broker) as s:
        assert handshake(s, "SCRAM-SHA-256")[0] == 0
        assert authenticate(s, ScramClient("SCRAM-SHA-256", "dave", "x").first())[0] == 58


def test_user_name_with_a_carriage_return_survives_a_restart(tmp_path):
    """AlterUserScramCredentials takes any name without a tab or newline; the scram-credentials
    file keeps it whole ("a\\rb" came back "a" after a restart: the reader cut lines at '\\r')."""
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    b = start_sasl_broker(tmp_path)
    try:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        up = UserScramCredentialUpsertion("car\rol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                          b"carol-secret", b"0123456789abcdef")
        a.alter_user_scram_credentials([up])["car\rol"].result()
        before = sorted(a.describe_user_scram_credentials().result())
        assert before == ["alice", "car\rol"]
        del a
        assert b.stop() == 0
        b.start()
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        assert sorted(a.describe_user_scram_credentials().result()) == before
        with connect(b) as s:  # and the credential is whole: carol logs in
            assert scram_login(s, "car\rol", "carol-secret")[0] == 0
    finally:
        b.stop()
