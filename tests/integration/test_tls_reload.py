"""Certificate reload without restart (issue 19, KIP-226) and the kTLS check.

listener.name.<l>.ssl.keystore.* / .truststore.* are per-broker dynamic configs: an alter
loads and checks the new key store (Kafka's SslFactory: it must load; the subject DN and SANs
must stay unless ssl.allow.dn.changes / ssl.allow.san.changes), then new connections get the
new certificate while open ones keep going. Altering to the same path reloads a file changed on
disk. The values persist as the other dynamic broker configs; DescribeConfigs hides passwords.
"""
import os
import shutil
import socket
import ssl
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource)

from conftest import ROOT
from test_dynamic_broker_configs import _incremental_raw
from test_tls import make_ca, make_cert, sh, start_tls_broker, stop_after  # noqa: F401
from test_tls import OPENSSL, api_versions_frame, rdkafka_round_trip, recv_exact

INVALID_REQUEST = 42
SET = AlterConfigOpType.SET
KS = "listener.name.ssl.ssl.keystore.location"


@pytest.fixture(scope="module")
def rpki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("rpki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "alice", "/CN=alice")
    make_cert(d, "otherca", "bob", "/CN=bob")
    san = "IP:127.0.0.1,DNS:localhost"
    for name, subj, s in (("one", "/CN=localhost", san), ("two", "/CN=localhost", san),
                          ("three", "/CN=localhost", san), ("other", "/CN=other", san),
                          ("nosan", "/CN=localhost", "DNS:localhost")):
        make_cert(d, "ca", name, subj, san=s)
        with open(os.path.join(d, name + ".keystore.pem"), "w") as f:
            f.write(open(os.path.join(d, name + ".key")).read() +
                    open(os.path.join(d, name + ".pem")).read())
    sh(OPENSSL, "pkcs12", "-export", "-inkey", "two.key", "-in", "two.pem", "-out", "two.p12",
       "-passout", "pass:storepw", cwd=d)
    with open(os.path.join(d, "broken.keystore.pem"), "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    return lambda n: os.path.join(d, n)  # noqa: E731


def der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


def served_cert(b, pki, client=None):
    """The DER certificate a new TLS connection to b's SSL listener is given (presenting the
    client certificate named, if any)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki("ca.pem"))
    if client:
        ctx.load_cert_chain(pki(client + ".pem"), pki(client + ".key"))
    with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            cert = s.getpeercert(binary_form=True)
            s.sendall(api_versions_frame(41))  # TLS 1.3: a refused client learns it on reading
            assert recv_exact(s, 4)
            return cert


def start(tmp_path, pki, keystore, name="data", extra=None):
    return start_tls_broker(tmp_path, {"ssl.keystore.type": "PEM",
                                       "ssl.keystore.location": keystore}, name=name, extra=extra)


def alter(b, broker_id="0", **kv):
    """IncrementalAlterConfigs SET on broker_id (k__with__dots=value): the result, or raises."""
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource(ConfigResource.Type.BROKER, broker_id, incremental_configs=[
        ConfigEntry(k.replace("__", "."), v, incremental_operation=SET) for k, v in kv.items()])
    return a.incremental_alter_configs([res])[res].result(20)


def alter_ok(b, **kv):
    alter(b, **kv)


def alter_refused(b, **kv):
    with pytest.raises(KafkaException) as e:
        alter(b, **kv)
    err = e.value.args[0]
    assert err.code() == INVALID_REQUEST, err
    return err.str()


def ks(path):
    return {KS.replace(".", "__"): path}


def describe(b):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource(ConfigResource.Type.BROKER, "0")
    return a.describe_configs([res])[res].result(15)


def test_new_connections_get_the_new_certificate_while_a_consumer_keeps_fetching(
        tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    assert served_cert(b, rpki) == der(rpki("one.pem"))
    topic = "reload-" + uuid.uuid4().hex[:8]
    p = Producer({"bootstrap.servers": b.bootstrap})
    conf = {"bootstrap.servers": "127.0.0.1:%d" % b.ssl_port, "security.protocol": "SSL",
            "ssl.ca.location": rpki("ca.pem"), "group.id": "g-" + topic,
            "auto.offset.reset": "earliest"}
    for i in range(100):
        p.produce(topic, value=b"before-%d" % i)
    p.flush(10)
    c = Consumer(conf)
    c.subscribe([topic])
    errors = []

    def consume(n):
        got = []
        deadline = time.time() + 30
        while len(got) < n and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None:
                errors.append(m.error())
            elif m is not None:
                got.append(m.value())
        return got

    assert len(consume(100)) == 100
    alter_ok(b, **ks(rpki("two.keystore.pem")))
    assert served_cert(b, rpki) == der(rpki("two.pem"))
    for i in range(100):
        p.produce(topic, value=b"after-%d" % i)
    p.flush(10)
    assert consume(100) == [b"after-%d" % i for i in range(100)]
    assert not errors, errors
    c.close()
    # PKCS12 with its password: the password is sensitive, described without its value.
    alter_ok(b, listener__name__ssl__ssl__keystore__type="PKCS12",
             **ks(rpki("two.p12")), listener__name__ssl__ssl__keystore__password="storepw")
    assert served_cert(b, rpki) == der(rpki("two.pem"))
    got = describe(b)
    assert got[KS].value == rpki("two.p12")
    assert got[KS].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    pw = got["listener.name.ssl.ssl.keystore.password"]
    assert pw.is_sensitive and pw.value is None
    assert "SSL context reloaded (new connections get it" in b.log()


def test_same_path_reloads_the_file_changed_on_disk(tmp_path, rpki, stop_after):
    path = str(tmp_path / "live.keystore.pem")
    shutil.copy(rpki("one.keystore.pem"), path)
    b = start(tmp_path, rpki, path)
    stop_after(b)
    shutil.copy(rpki("two.keystore.pem"), path)
    assert served_cert(b, rpki) == der(rpki("one.pem"))  # read once: no alter, no reload
    alter_ok(b, log__retention__ms="7200000")  # another key: the listener is left alone
    assert served_cert(b, rpki) == der(rpki("one.pem"))
    alter_ok(b, **ks(path))  # the path the static config names
    assert served_cert(b, rpki) == der(rpki("two.pem"))
    time.sleep(0.01)
    shutil.copy(rpki("three.keystore.pem"), path)
    alter_ok(b, **ks(path))  # the same dynamic value again
    assert served_cert(b, rpki) == der(rpki("three.pem"))


def test_another_dn_or_fewer_sans_refused_unless_allowed(tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    msg = alter_refused(b, **ks(rpki("other.keystore.pem")))
    assert msg.startswith("Validation of dynamic config update of SSLFactory failed: ")
    assert "Keystore DistinguishedName does not match:" in msg and "DN=CN=other" in msg, msg
    msg = alter_refused(b, **ks(rpki("nosan.keystore.pem")))
    assert "Keystore SubjectAltNames do not match:" in msg, msg
    assert served_cert(b, rpki) == der(rpki("one.pem"))
    assert KS not in describe(b)
    b2 = start(tmp_path, rpki, rpki("one.keystore.pem"), name="allowing",
               extra={"listener.name.ssl.ssl.allow.dn.changes": "true",
                      "ssl.allow.san.changes": "true"})
    stop_after(b2)
    alter_ok(b2, **ks(rpki("other.keystore.pem")))
    assert served_cert(b2, rpki) == der(rpki("other.pem"))
    alter_ok(b2, **ks(rpki("nosan.keystore.pem")))
    assert served_cert(b2, rpki) == der(rpki("nosan.pem"))


def test_broken_keystore_refused_and_the_old_one_keeps_serving(tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    for bad in (rpki("broken.keystore.pem"), str(tmp_path / "missing.pem")):
        msg = alter_refused(b, **ks(bad))
        assert msg.startswith("Validation of dynamic config update of SSLFactory failed: "), msg
        assert KS in msg, msg
    assert served_cert(b, rpki) == der(rpki("one.pem"))
    assert KS not in describe(b)
    rdkafka_round_trip(b, rpki, n=50)


def test_truststore_reload_and_no_truststore_added(tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"), extra={
        "ssl.client.auth": "required", "ssl.truststore.type": "PEM",
        "ssl.truststore.location": rpki("ca.pem")})
    stop_after(b)
    served_cert(b, rpki, client="alice")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        served_cert(b, rpki, client="bob")
    alter_ok(b, listener__name__ssl__ssl__truststore__location=rpki("otherca.pem"))
    served_cert(b, rpki, client="bob")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        served_cert(b, rpki, client="alice")
    plain = start(tmp_path, rpki, rpki("one.keystore.pem"), name="notrust")
    stop_after(plain)
    msg = alter_refused(plain, listener__name__ssl__ssl__truststore__type="PEM",
                        listener__name__ssl__ssl__truststore__location=rpki("ca.pem"))
    assert msg == ("Validation of dynamic config update of SSLFactory failed: "
                   "org.apache.kafka.common.config.ConfigException: Cannot add SSL truststore to "
                   "an existing listener for which no truststore was configured."), msg


def test_per_listener_and_per_broker_only(tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    msg = alter_refused(b, ssl__keystore__location=rpki("two.keystore.pem"))
    assert msg == ("These security configs can be dynamically updated only per-listener using "
                   "the listener prefix: Set(ssl.keystore.location)"), msg
    code, msg = _incremental_raw(b, "", [(KS, 0, rpki("two.keystore.pem"))])
    assert code == INVALID_REQUEST
    assert msg == ("Cannot update these configs at default cluster level, broker id must be "
                   "specified: Set(%s)" % KS), msg
    assert served_cert(b, rpki) == der(rpki("one.pem"))


def test_reloaded_certificate_persists_across_restart(tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    alter_ok(b, **ks(rpki("two.keystore.pem")))
    assert b.stop() == 0
    b.start()
    stop_after(b)
    assert served_cert(b, rpki) == der(rpki("two.pem"))
    assert describe(b)[KS].value == rpki("two.keystore.pem")


def test_kafka_configs_sh_alters_the_listener_keystore(tmp_path, rpki, stop_after):
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tests", "kafka_harness"))
    from kafka_zk import kafka_classpath, run_tool
    if shutil.which("mvn") is None:
        pytest.fail("java and maven are needed: make test-deps installs them", pytrace=False)
    cp = kafka_classpath()
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    tool = "kafka.admin.ConfigCommand"
    rc, out, err = run_tool(cp, tool, "--bootstrap-server", b.bootstrap, "--entity-type",
                            "brokers", "--entity-name", "0", "--alter", "--add-config",
                            "%s=%s" % (KS, rpki("two.keystore.pem")))
    assert rc == 0, out + err
    assert "Completed updating config for broker 0." in out, out + err
    assert served_cert(b, rpki) == der(rpki("two.pem"))
    rc, out, err = run_tool(cp, tool, "--bootstrap-server", b.bootstrap, "--entity-type",
                            "brokers", "--entity-default", "--alter", "--add-config",
                            "%s=%s" % (KS, rpki("three.keystore.pem")))
    assert rc != 0
    assert "Cannot update these configs at default cluster level, broker id must be specified" \
        in out + err, out + err
    rc, out, err = run_tool(cp, tool, "--bootstrap-server", b.bootstrap, "--entity-type",
                            "brokers", "--entity-name", "0", "--describe")
    assert rc == 0, out + err
    assert "%s=%s sensitive=false" % (KS, rpki("two.keystore.pem")) in out, out
    assert served_cert(b, rpki) == der(rpki("two.pem"))


def test_ktls_path_is_logged_and_tls_fetch_works(tmp_path, rpki, stop_after):
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
        kernel_tls = "tls" in f.read().split()
    log = b.log()
    if kernel_tls:
        assert "Listener SSL: kTLS available" in log, log
    else:  # this machine: CONFIG_TLS unset, Fetch copies through SSL_write
        assert "Listener SSL: kTLS unavailable (the kernel offers no tls ULP" in log, log
        assert "Fetch copies file ranges through SSL_write" in log, log
    assert log.count("kTLS") == 1  # once per listener
    rdkafka_round_trip(b, rpki, n=200)


def test_cluster_keeps_the_listener_keystore_in_zookeeper(tmp_path, rpki):
    """On ZooKeeper the per-broker value lives in /config/brokers/<id>; the broker applies it
    when the change notification comes, and again after a restart."""
    import json
    from conftest import Broker, free_port
    from test_cluster_topics import stop_all, zk_get
    from zk_fixture import ZooKeeperServer, wait_until, zookeeper_available
    if not zookeeper_available():
        pytest.fail("Debian's zookeeper package is needed: make test-deps installs it",
                    pytrace=False)
    z = ZooKeeperServer()
    z.start()
    brokers = []
    try:
        port, ssl_port = free_port(), free_port()
        b = Broker(str(tmp_path / "data1"), port=port, overrides={
            "broker.id": 1, "zookeeper.connect": z.connect + "/tlsreload",
            "listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (port, ssl_port),
            "ssl.keystore.type": "PEM", "ssl.keystore.location": rpki("one.keystore.pem"),
            "controlled.shutdown.max.retries": 1})
        b.ssl_port = ssl_port
        brokers.append(b.start())
        wait_until(lambda: AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(
            timeout=10).controller_id == 1, 20, what="the broker is the controller")
        assert served_cert(b, rpki) == der(rpki("one.pem"))
        alter_ok(b, broker_id="1", **ks(rpki("two.keystore.pem")))
        assert json.loads(zk_get(z, "/tlsreload/config/brokers/1")[0]) == \
            {"version": 1, "config": {KS: rpki("two.keystore.pem")}}
        wait_until(lambda: served_cert(b, rpki) == der(rpki("two.pem")), 10,
                   what="the new certificate served")
        msg = alter_refused(b, broker_id="1", **ks(rpki("other.keystore.pem")))
        assert "Keystore DistinguishedName does not match:" in msg, msg
        b.stop()
        b.start()
        assert served_cert(b, rpki) == der(rpki("two.pem"))
    finally:
        stop_all(brokers)
        z.stop()


def test_ktls_fallback_inside_the_sendfile_op(tmp_path, rpki, stop_after, monkeypatch):
    """A kTLS listener's sendfile op copies one record through SSL_write for a connection the
    kernel did not take; GREGOR_TLS_SENDFILE_OP=1 installs the op without kTLS so that branch
    runs here: a consumer reads back every record, of many sizes, byte for byte."""
    monkeypatch.setenv("GREGOR_TLS_SENDFILE_OP", "1")
    b = start(tmp_path, rpki, rpki("one.keystore.pem"))
    stop_after(b)
    assert "in the transport's sendfile (GREGOR_TLS_SENDFILE_OP=1)" in b.log() or \
        "kTLS available" in b.log()
    rdkafka_round_trip(b, rpki, n=400)
