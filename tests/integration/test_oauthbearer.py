"""SASL/OAUTHBEARER (issue 19; RFC 7628, KIP-255, KIP-768): signed JWTs checked against the keys
of a JWKS file as Kafka's OAuthBearerValidatorCallbackHandler checks them. Keys are made and
tokens signed here with the openssl CLI (RSA, EC P-256, RSA-PSS); confluent-kafka (oauth_cb) and
kafka-python (sasl_oauth_token_provider) produce and consume over SASL_PLAINTEXT and SASL_SSL;
raw-wire exchanges show the error challenge {"status":"invalid_token"} and the failed login for
tokens a client would not be given (expired, wrong audience or issuer, unknown kid, bad
signature, alg none / HS256, garbage)."""
import base64
import json
import os
import socket
import struct
import subprocess
import time
import uuid

import pytest

from conftest import Broker, free_port
from test_sasl import authenticate, handshake
from test_tls import make_ca, make_cert, pem_keystore

OPENSSL = "openssl"
JAAS = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"
HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
SECURED_HANDLER = ("org.apache.kafka.common.security.oauthbearer.secured."
                   "OAuthBearerValidatorCallbackHandler")  # the name before Kafka 3.4
AUDIENCE, ISSUER = "gregor-test", "https://issuer.test"


def sh(*args, cwd, data=None):
    p = subprocess.run(list(args), cwd=cwd, capture_output=True, input=data, timeout=60)
    assert p.returncode == 0, "%s failed: %s" % (" ".join(args), p.stderr)
    return p.stdout


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_len(d, at):
    n = d[at]
    if n < 0x80:
        return n, at + 1
    k = n & 0x7F
    return int.from_bytes(d[at + 1:at + 1 + k], "big"), at + 1 + k


def ecdsa_der_to_raw(d, size):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to JWS's r || s."""
    assert d[0] == 0x30
    _, at = der_len(d, 1)
    out = b""
    for _ in range(2):
        assert d[at] == 0x02
        n, at = der_len(d, at + 1)
        out += d[at:at + n].lstrip(b"\x00").rjust(size, b"\x00")
        at += n
    return out


class Keys:
    """An RSA key and an EC P-256 key made with openssl, their JWKs, and a token signer."""

    def __init__(self, d, tag):
        self.d = d
        self.rsa = os.path.join(d, "rsa-%s.pem" % tag)
        self.ec = os.path.join(d, "ec-%s.pem" % tag)
        sh(OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
           "-out", self.rsa, cwd=d)
        sh(OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-out", self.ec, cwd=d)
        mod = sh(OPENSSL, "rsa", "-in", self.rsa, "-noout", "-modulus", cwd=d).decode()
        n = bytes.fromhex(mod.strip().split("=", 1)[1])
        pub = sh(OPENSSL, "pkey", "-in", self.ec, "-pubout", "-outform", "DER", cwd=d)[-65:]
        assert pub[0] == 4
        self.rsa_kid, self.ec_kid = "rsa-" + tag, "ec-" + tag
        self.jwks = [
            {"kty": "RSA", "kid": self.rsa_kid, "use": "sig", "n": b64u(n), "e": b64u(b"\x01\x00\x01")},
            {"kty": "EC", "kid": self.ec_kid, "crv": "P-256", "x": b64u(pub[1:33]), "y": b64u(pub[33:])},
        ]

    def sign(self, claims, alg="RS256", kid=None, header=None):
        h = {"alg": alg, "typ": "JWT",
             "kid": kid or (self.ec_kid if alg.startswith("ES") else self.rsa_kid)}
        h.update(header or {})
        data = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        bits = alg[2:]
        if alg.startswith("ES"):
            der = sh(OPENSSL, "dgst", "-sha" + bits, "-sign", self.ec, cwd=self.d, data=data)
            sig = ecdsa_der_to_raw(der, 32)
        elif alg.startswith("PS"):
            sig = sh(OPENSSL, "dgst", "-sha" + bits, "-sigopt", "rsa_padding_mode:pss",
                     "-sigopt", "rsa_pss_saltlen:-1", "-sign", self.rsa, cwd=self.d, data=data)
        else:
            sig = sh(OPENSSL, "dgst", "-sha" + bits, "-sign", self.rsa, cwd=self.d, data=data)
        return data.decode() + "." + b64u(sig)


def claims(sub="alice", life=600, **extra):
    now = int(time.time())
    c = {"sub": sub, "iat": now, "exp": now + life, "aud": AUDIENCE, "iss": ISSUER,
         "scope": "kafka"}
    c.update(extra)
    return c


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("jwks"))
    return Keys(d, "one"), Keys(d, "two")


def write_jwks(path, key_list):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"keys": key_list}, f)
    os.rename(tmp, path)


def start_oauth_broker(tmp_path, keys, extra=None, name="data", ssl=None, handler=HANDLER):
    port, sasl_port = free_port(), free_port()
    jwks = str(tmp_path / (name + "-jwks.json"))
    write_jwks(jwks, keys[0].jwks)
    proto = "SASL_SSL" if ssl else "SASL_PLAINTEXT"
    ln = proto.lower()
    o = {"listeners": "PLAINTEXT://127.0.0.1:%d,%s://127.0.0.1:%d" % (port, proto, sasl_port),
         "sasl.enabled.mechanisms": "OAUTHBEARER",
         "listener.name.%s.oauthbearer.sasl.jaas.config" % ln: JAAS,
         "listener.name.%s.oauthbearer.sasl.server.callback.handler.class" % ln: handler,
         "sasl.oauthbearer.jwks.endpoint.url": "file://" + jwks,
         "sasl.oauthbearer.expected.audience": AUDIENCE,
         "sasl.oauthbearer.expected.issuer": ISSUER,
         "connection.failed.authentication.delay.ms": "50"}
    if ssl:
        o.update(pem_keystore(ssl))
    o.update(extra or {})
    b = Broker(str(tmp_path / name), port=port, overrides=o)
    b.sasl_port = sasl_port
    b.jwks = jwks
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


def client_first(token, authzid=""):
    return ("n,%s,\x01auth=Bearer %s\x01\x01" % ("a=" + authzid if authzid else "", token)).encode()


def raw_login(b, token, authzid=""):
    """Handshake v1 + SaslAuthenticate v1 with token: (error, message, bytes, lifetime) of the
    last SaslAuthenticate, after the \\x01 that answers an error challenge."""
    s = socket.create_connection(("127.0.0.1", b.sasl_port), timeout=10)
    try:
        err, mechs = handshake(s, "OAUTHBEARER")
        assert err == 0 and mechs == ["OAUTHBEARER"]
        first = authenticate(s, client_first(token, authzid))
        if first[0] != 0 or first[2] == b"":
            return first, None
        second = authenticate(s, b"\x01", corr=3)
        s.settimeout(5)
        closed = s.recv(1) == b""
        return first, (second, closed)
    finally:
        s.close()


def test_valid_tokens_rs_ps_es_authenticate_with_the_token_lifetime(tmp_path, keys, stop_after):
    b = start_oauth_broker(tmp_path, keys, extra={"connections.max.reauth.ms": "3600000"})
    stop_after(b)
    k = keys[0]
    for alg, extra in (("RS256", {}), ("RS384", {"scope": 7}), ("RS512", {"scope": ["a", "b"]}),
                       ("PS256", {"aud": ["x", AUDIENCE]}), ("ES256", {})):
        first, second = raw_login(b, k.sign(claims(life=600, **extra), alg=alg))
        assert second is None, (alg, first, second)
        err, msg, data, life = first
        assert (err, data) == (0, b""), (alg, first)
        # KIP-368: min(exp - now, connections.max.reauth.ms)
        assert 590000 <= life <= 600000, (alg, life)
    # the authorization id must be the token's principal
    first, _ = raw_login(b, k.sign(claims(sub="alice")), authzid="bob")
    assert first[0] == 58 and "different from the token's principal name" in first[1]


BAD = {
    "expired": lambda k: k.sign(claims(life=-120)),
    "not_yet_valid": lambda k: k.sign(claims(nbf=int(time.time()) + 600)),
    "no_exp": lambda k: k.sign({kk: v for kk, v in claims().items() if kk != "exp"}),
    "wrong_audience": lambda k: k.sign(claims(aud="someone-else")),
    "wrong_issuer": lambda k: k.sign(claims(iss="https://evil.test")),
    "unknown_kid": lambda k: k.sign(claims(), kid="nobody"),
    "bad_signature": lambda k: k.sign(claims())[:-6] + ("AAAAAA" if not k.sign(claims()).endswith("AAAAAA") else "BBBBBB"),
    "other_claims_same_signature": lambda k: (lambda t: t.split(".")[0] + "." + b64u(json.dumps(claims(sub="admin")).encode()) + "." + t.split(".")[2])(k.sign(claims())),
    "alg_none": lambda k: b64u(json.dumps({"alg": "none", "kid": k.rsa_kid}).encode()) + "." + b64u(json.dumps(claims()).encode()) + ".",
    "hs256_with_rsa_key_as_secret": lambda k: hs256(k),
    "es256_signed_claimed_rs256": lambda k: (lambda t: b64u(json.dumps({"alg": "RS256", "kid": k.ec_kid}).encode()) + "." + t.split(".", 1)[1])(k.sign(claims(), alg="ES256")),
    "empty_sub": lambda k: k.sign(claims(sub="  ")),
    "empty_scope": lambda k: k.sign(claims(scope=["kafka", " "])),
    "empty_aud_list": lambda k: k.sign(claims(aud=[])),
    "garbage": lambda k: "not-a-jwt",
    "garbage_sections": lambda k: "a.b.c",
}


def hs256(k):
    import hashlib
    import hmac
    h = b64u(json.dumps({"alg": "HS256", "kid": k.rsa_kid}).encode())
    p = b64u(json.dumps(claims()).encode())
    mac = hmac.new(json.dumps(k.jwks[0]).encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64u(mac)


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory, keys):
    b = start_oauth_broker(tmp_path_factory.mktemp("shared"), keys, handler=SECURED_HANDLER)
    yield b
    alive = b.alive()
    rc = b.stop()
    assert alive and rc == 0, b.log()


@pytest.mark.parametrize("case", sorted(BAD))
def test_refused_tokens_get_the_error_challenge_then_fail(shared_broker, keys, case):
    token = BAD[case](keys[0])
    first, second = raw_login(shared_broker, token)
    err, msg, data, _ = first
    assert err == 0 and data == b'{"status":"invalid_token"}', first
    (err2, msg2, data2, _), closed = second
    assert err2 == 58 and msg2 == '{"status":"invalid_token"}', second
    assert closed


def test_handshake_v0_raw_tokens(shared_broker, keys):
    """SaslHandshake v0: the client first message and the error challenge as raw frames."""
    def raw(s, tok):
        s.sendall(struct.pack(">i", len(tok)) + tok)
        hdr = s.recv(4)
        if len(hdr) < 4:
            return None
        n = struct.unpack(">i", hdr)[0]
        out = b""
        while len(out) < n:
            out += s.recv(n - len(out))
        return out
    s = socket.create_connection(("127.0.0.1", shared_broker.sasl_port), timeout=10)
    assert handshake(s, "OAUTHBEARER", version=0)[0] == 0
    assert raw(s, client_first(keys[0].sign(claims(), alg="ES256"))) == b""
    s.close()
    s = socket.create_connection(("127.0.0.1", shared_broker.sasl_port), timeout=10)
    assert handshake(s, "OAUTHBEARER", version=0)[0] == 0
    assert raw(s, client_first(keys[0].sign(claims(life=-600)))) == b'{"status":"invalid_token"}'
    assert raw(s, b"\x01") is None  # the failed login: closed unanswered
    s.close()


def test_malformed_client_first_message_fails(shared_broker):
    for bad in (b"", b"n,,\x01auth=Bearer\x01\x01", b"x,,\x01auth=Bearer a.b.c\x01\x01",
                b"n,,\x01auth=Basic abc\x01\x01", b"n,,\x01\x01", b"\x01"):
        s = socket.create_connection(("127.0.0.1", shared_broker.sasl_port), timeout=10)
        assert handshake(s, "OAUTHBEARER")[0] == 0
        err, msg, _, _ = authenticate(s, bad)
        assert err == 58 and "OAUTHBEARER" in msg, (bad, msg)
        s.close()


def test_jwks_rotation_is_picked_up_without_restart(tmp_path, keys, stop_after):
    b = start_oauth_broker(tmp_path, keys)
    stop_after(b)
    old, new = keys
    first, second = raw_login(b, old.sign(claims()))
    assert second is None and (first[0], first[2]) == (0, b""), first
    first, _ = raw_login(b, new.sign(claims()))
    assert first[2] == b'{"status":"invalid_token"}'
    write_jwks(b.jwks, new.jwks)  # rotated: a new kid, the old keys gone
    first, second = raw_login(b, new.sign(claims(), alg="ES256"))
    assert second is None and (first[0], first[2]) == (0, b""), first
    first, _ = raw_login(b, old.sign(claims()))
    assert first[2] == b'{"status":"invalid_token"}', "the removed key still verifies"


def rdkafka_conf(b, token_fn, ssl=None, **extra):
    c = {"bootstrap.servers": "127.0.0.1:%d" % b.sasl_port,
         "security.protocol": "SASL_SSL" if ssl else "SASL_PLAINTEXT",
         "sasl.mechanisms": "OAUTHBEARER",
         "oauth_cb": lambda cfg: (token_fn(), time.time() + 600)}
    if ssl:
        c["ssl.ca.location"] = ssl("ca.pem")
    c.update(extra)
    return c


def rdkafka_round_trip(b, token_fn, ssl=None, n=50):
    from confluent_kafka import Consumer, Producer
    topic = "oauth-" + uuid.uuid4().hex[:8]
    p = Producer(rdkafka_conf(b, token_fn, ssl))
    errors = []
    sent = [("k%d" % i, "v%d" % i) for i in range(n)]
    for kk, v in sent:
        p.produce(topic, key=kk, value=v, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors
    c = Consumer(rdkafka_conf(b, token_fn, ssl, **{"group.id": "g-" + topic,
                                                   "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got, deadline = [], time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.key().decode(), m.value().decode()))
    c.close()
    assert got == sent


def kafka_python_round_trip(b, token_fn, ssl=None, n=20):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.oauth.abstract import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self):
            return token_fn()

    common = {"bootstrap_servers": "127.0.0.1:%d" % b.sasl_port,
              "security_protocol": "SASL_SSL" if ssl else "SASL_PLAINTEXT",
              "sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": Provider()}
    if ssl:
        common.update(ssl_cafile=ssl("ca.pem"), ssl_check_hostname=False)
    topic = "kp-" + uuid.uuid4().hex[:8]
    p = KafkaProducer(**common)
    for i in range(n):
        p.send(topic, b"v%d" % i).get(timeout=30)
    p.close()
    c = KafkaConsumer(topic, group_id="g-" + topic, auto_offset_reset="earliest",
                      consumer_timeout_ms=10000, **common)
    got = [m.value for m in c]
    c.close()
    assert got == [b"v%d" % i for i in range(n)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "/CN=localhost", san="IP:127.0.0.1,DNS:localhost")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    with open(p("server.keystore.pem"), "w") as f:
        f.write(open(p("server.key")).read() + open(p("server.pem")).read() + open(p("ca.pem")).read())
    return p


@pytest.mark.parametrize("proto", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_confluent_kafka_and_kafka_python_produce_and_consume(tmp_path, keys, pki, stop_after,
                                                             proto):
    ssl = pki if proto == "SASL_SSL" else None
    b = start_oauth_broker(tmp_path, keys, ssl=ssl)
    stop_after(b)
    rdkafka_round_trip(b, lambda: keys[0].sign(claims(sub="alice")), ssl)
    kafka_python_round_trip(b, lambda: keys[0].sign(claims(sub="bob"), alg="ES256"), ssl)


def test_acls_apply_to_the_token_principal(tmp_path, keys, stop_after):
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)
    b = start_oauth_broker(tmp_path, keys, extra={
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:admin"})
    stop_after(b)
    topic = "acl-" + uuid.uuid4().hex[:8]

    def produce(user):
        p = Producer(rdkafka_conf(b, lambda: keys[0].sign(claims(sub=user)),
                                  **{"message.timeout.ms": 5000, "retries": 0}))
        errors = []
        p.produce(topic, value=b"v", on_delivery=lambda e, m: e and errors.append(e.code()))
        p.flush(10)
        return errors

    a = AdminClient(rdkafka_conf(b, lambda: keys[0].sign(claims(sub="admin"))))
    from confluent_kafka.admin import NewTopic
    for f in a.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result()
    assert produce("alice") == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    for f in a.create_acls([AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL,
                                       "User:alice", "*", AclOperation.WRITE,
                                       AclPermissionType.ALLOW)], request_timeout=10).values():
        f.result()
    assert produce("alice") == []
    assert produce("mallory") == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def start_should_fail(tmp_path, overrides):
    port, sasl_port = free_port(), free_port()
    o = {"listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl_port),
         "sasl.enabled.mechanisms": "OAUTHBEARER",
         "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": JAAS}
    o.update(overrides)
    b = Broker(str(tmp_path / ("bad-" + uuid.uuid4().hex[:6])), port=port, overrides=o)
    p = subprocess.run(b.args(), capture_output=True, text=True, timeout=15)
    return p.returncode, p.stdout + p.stderr


def test_unsupported_setups_are_refused_at_start(tmp_path, keys):
    handler = "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class"
    rc, out = start_should_fail(tmp_path, {})
    assert rc != 0 and "OAuthBearerUnsecuredValidatorCallbackHandler" in out, out
    rc, out = start_should_fail(tmp_path, {handler: HANDLER, "sasl.oauthbearer.jwks.endpoint.url":
                                           "https://idp.example/jwks"})
    assert rc != 0 and "only file: URLs" in out, out
    rc, out = start_should_fail(tmp_path, {handler: HANDLER, "sasl.oauthbearer.jwks.endpoint.url":
                                           "file:///nonexistent/jwks.json"})
    assert rc != 0 and "/nonexistent/jwks.json" in out, out


# ---- the Java client (kafka-clients 4.x): OAuthBearerLoginCallbackHandler reading the token
# from a file: token endpoint URL ----

from test_java_client import client_jar, run_check  # noqa: E402,F401 (a fixture)


def test_java_client_with_a_token_file(tmp_path, keys, client_jar, stop_after, monkeypatch):
    b = start_oauth_broker(tmp_path, keys)
    stop_after(b)
    token = str(tmp_path / "token.jwt")
    with open(token, "w") as f:
        f.write(keys[0].sign(claims(sub="alice", life=3600), alg="RS256"))
    conf = str(tmp_path / "client-oauth.properties")
    with open(conf, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
                "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer."
                "OAuthBearerLoginModule required ;\n"
                "sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer."
                "OAuthBearerLoginCallbackHandler\n"
                "sasl.oauthbearer.token.endpoint.url=file://%s\n" % token)
    # Kafka 4 reads a file: token URL only when the JVM allows it.
    monkeypatch.setenv("JAVA_TOOL_OPTIONS",
                       "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=file://%s" % token)
    via = Broker.__new__(Broker)
    via.__dict__.update(b.__dict__)
    via.port = b.sasl_port
    r = run_check(client_jar, via, "produce-idempotent", "count=200", "partitions=2",
                  "client.config=" + conf)
    assert r["produced"] == "200" and r["consumed"] == "200"
