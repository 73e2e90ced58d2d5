"""Broker-to-broker TLS and SASL (issue 19, inter.broker.listener.name): three gregor brokers on
a real ZooKeeper whose replica fetchers, controller requests and transaction markers go over
the inter-broker listener — SSL with mutual TLS (no plaintext listener at all), SASL_SSL with
PLAIN or SCRAM-SHA-512 next to a PLAINTEXT client listener; a broker with a wrong inter-broker
password stays out of the ISR and says why; the registration znode names every listener as
Kafka 3.9 writes it; Kafka's config errors for the inter-broker keys."""
import json
import os
import socket
import ssl
import struct
import time
import uuid

import pytest

from conftest import Broker, free_port
from test_sasl import scram_credential
from test_tls import make_ca, make_cert
from zk_fixture import ZkError, ZkReader, wait_until, zookeeper  # noqa: F401 (the fixture)
from zk_fixture import zookeeper_available

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

SESSION_MS = 4000
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="broker" password="%s" user_broker="broker-secret" user_alice="alice-secret";')
SCRAM_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
              'username="broker" password="%s";')


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ibpki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "/CN=localhost", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "ca", "noip", "/CN=elsewhere", san="DNS:elsewhere.example")
    make_cert(d, "otherca", "mallory", "/CN=localhost", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "ca", "client", "/CN=client")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    for n in ("server", "noip", "mallory"):
        with open(p(n + ".keystore.pem"), "w") as f:
            f.write(open(p(n + ".key")).read() + open(p(n + ".pem")).read())
    return p


class TlsBroker(Broker):
    """A broker whose readiness is checked over TLS on its first listener (no plaintext one)."""

    def __init__(self, data_dir, port, overrides, pki, tls_port):
        super().__init__(data_dir, port=port, overrides=overrides)
        self.pki = pki
        self.tls_port = tls_port

    def args(self):
        a = super().args()
        i = a.index("listeners=PLAINTEXT://127.0.0.1:%d" % self.port)
        a[i] = "listeners=" + self.overrides["listeners"]
        return a

    def ready(self):
        return tls_api_versions_ok(self.tls_port, self.pki)

    def start(self, timeout=20):
        return super().start(timeout)


def client_ctx(pki):
    ctx = ssl.create_default_context(cafile=pki("ca.pem"))
    ctx.load_cert_chain(pki("client.pem"), pki("client.key"))
    return ctx


def tls_api_versions_ok(port, pki):
    ctx = client_ctx(pki)
    ctx.check_hostname = False  # readiness only: some brokers here carry a refused certificate
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
                s.sendall(struct.pack(">i", len(body)) + body)
                return len(s.recv(4)) == 4
    except OSError:
        return False


def ssl_conf(pki):
    return {"security.protocol": "SSL", "ssl.ca.location": pki("ca.pem"),
            "ssl.certificate.location": pki("client.pem"), "ssl.key.location": pki("client.key")}


def tls_keys(pki, prefix="", keystore="server"):
    return {prefix + "ssl.keystore.type": "PEM",
            prefix + "ssl.keystore.location": pki(keystore + ".keystore.pem"),
            prefix + "ssl.truststore.type": "PEM", prefix + "ssl.truststore.location": pki("ca.pem")}


def wait_isr(conf, topic, nparts, want, timeout=60):
    from confluent_kafka.admin import AdminClient
    a = AdminClient(dict(conf))

    def ok():
        md = a.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None or len(md.partitions) != nparts:
            return False
        return all(sorted(p.isrs) == sorted(want) for p in md.partitions.values())
    wait_until(ok, timeout, interval=0.3, what="ISR %s for %s" % (want, topic))


def create_topic(conf, topic, nparts, assignment=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient(dict(conf))
    if assignment:
        nt = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment)
    else:
        nt = NewTopic(topic, num_partitions=nparts, replication_factor=3)
    for f in a.create_topics([nt], operation_timeout=30).values():
        f.result()


def produce(conf, topic, n):
    """acks=all; returns the (partition, offset, value) acknowledged."""
    import confluent_kafka
    acked = []

    def cb(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
    p = confluent_kafka.Producer(dict(conf, acks="all", **{"message.timeout.ms": 30000}))
    for i in range(n):
        p.produce(topic, value=b"v-%d" % i, key=b"k%d" % i, on_delivery=cb)
        p.poll(0)
    assert p.flush(60) == 0
    return acked


def read_all(conf, topic, nparts, expect, timeout=60):
    """Every record of topic's partitions up to expect records (from whoever leads)."""
    import confluent_kafka
    c = confluent_kafka.Consumer(dict(conf, **{"group.id": "g-" + uuid.uuid4().hex[:6],
                                               "auto.offset.reset": "earliest",
                                               "enable.auto.commit": False}))
    c.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(nparts)])
    got = set()
    deadline = time.time() + timeout
    while len(got) < expect and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.add((m.partition(), m.offset(), m.value()))
    c.close()
    return got


def leaders(conf, topic):
    from confluent_kafka.admin import AdminClient
    md = AdminClient(dict(conf)).list_topics(topic, timeout=10).topics[topic]
    return {p.id: p.leader for p in md.partitions.values()}


def stop_all(brokers):
    for b in brokers:
        if b.proc is not None:
            b.stop()


# ---- (a) SSL only, mutual TLS between brokers


def start_ssl_cluster(tmp_path, zookeeper, pki, chroot, per_broker=None):
    ports = {i: free_port() for i in (1, 2, 3)}
    brokers = {}
    for i in (1, 2, 3):
        o = {"broker.id": i, "zookeeper.connect": zookeeper.connect + chroot,
             "zookeeper.session.timeout.ms": SESSION_MS,
             "listeners": "SSL://127.0.0.1:%d" % ports[i],
             "security.inter.broker.protocol": "SSL", "ssl.client.auth": "required",
             "replica.lag.time.max.ms": 5000}
        o.update(tls_keys(pki))
        o.update((per_broker or {}).get(i, {}))
        brokers[i] = TlsBroker(str(tmp_path / ("data%d" % i)), free_port(), o, pki, ports[i])
        brokers[i].start()
    return ports, brokers


def test_ssl_only_cluster_with_mutual_tls_replicates_and_fails_over(tmp_path, zookeeper, pki):
    brokers = {}
    try:
        ports, brokers = start_ssl_cluster(tmp_path, zookeeper, pki, "/ib-ssl")
        conf = dict(ssl_conf(pki), **{"bootstrap.servers": ",".join(
            "localhost:%d" % ports[i] for i in (1, 2, 3))})
        topic = "ssl-rf3"
        create_topic(conf, topic, 3)
        wait_isr(conf, topic, 3, [1, 2, 3])
        acked = produce(conf, topic, 300)
        assert len(acked) == 300
        # Each replica holds every record: kill the leader of everything twice over, read all
        # from the one left each time (it was in the ISR, so it had every acked record).
        for round_ in range(2):
            lead = leaders(conf, topic)
            victim = lead[0]
            brokers[victim].kill9()
            alive = [i for i in (1, 2, 3) if brokers[i].proc is not None]
            c2 = dict(conf, **{"bootstrap.servers": ",".join("localhost:%d" % ports[i]
                                                              for i in alive)})
            wait_until(lambda: all(l in alive for l in leaders(c2, topic).values()), 40,
                       interval=0.3, what="new leaders among %s" % alive)
            got = read_all(c2, topic, 3, len(acked))
            assert set(acked) <= got, "round %d: %d of %d acked records served" % (
                round_, len(set(acked) & got), len(acked))
            for p, l in leaders(c2, topic).items():
                assert l in alive
    finally:
        stop_all(brokers.values())


@pytest.mark.parametrize("case", ["other-ca", "host-mismatch", "host-check-off"])
def test_bad_certificate_between_brokers(tmp_path, zookeeper, pki, case):
    """Broker 3's certificate is signed by a CA the others do not trust (it cannot join the
    ISR of broker 1's partition), or names another host (the others refuse it as a leader unless
    ssl.endpoint.identification.algorithm is empty)."""
    if case == "other-ca":
        per = {3: {"ssl.keystore.location": pki("mallory.keystore.pem")}}
        assignment, want = [[1, 2, 3]], [1, 2]
    else:
        per = {3: {"ssl.keystore.location": pki("noip.keystore.pem")}}
        assignment = [[3, 1, 2]]
        if case == "host-check-off":
            for i in (1, 2):
                per[i] = {"ssl.endpoint.identification.algorithm": ""}
            want = [1, 2, 3]
        else:
            want = [3]
    brokers = {}
    try:
        ports, brokers = start_ssl_cluster(tmp_path, zookeeper, pki, "/ib-cert-" + case, per)
        conf = dict(ssl_conf(pki), **{"bootstrap.servers": "localhost:%d" % ports[1],
                                      # the client itself must not refuse broker 3's name
                                      "ssl.endpoint.identification.algorithm": "none"})
        topic = "cert-" + case
        create_topic(conf, topic, 1, assignment=assignment)
        acked = produce(conf, topic, 50)
        assert len(acked) == 50
        wait_isr(conf, topic, 1, want, timeout=60)
        if want == [1, 2, 3]:
            time.sleep(8)  # longer than replica.lag.time.max.ms: still all in sync
            wait_isr(conf, topic, 1, want, timeout=5)
        logs = "".join(brokers[i].log() for i in (1, 2, 3))
        if case != "host-check-off":
            assert "SSL handshake failed" in logs, logs
            assert "certificate verify failed" in logs, logs
    finally:
        stop_all(brokers.values())


# ---- (b) SASL_SSL between brokers, PLAINTEXT for clients


def put_user_credential(connect, user, credential):
    r = ZkReader(connect.split("/", 1)[0])
    try:
        chroot = "/" + connect.split("/", 1)[1] if "/" in connect else ""
        parts = [p for p in chroot.split("/") if p] + ["config", "users"]
        for n in range(1, len(parts) + 1):
            try:
                r.create("/" + "/".join(parts[:n]))
            except ZkError:
                pass  # there already
        r.create("/" + "/".join(parts + [user]),
                 json.dumps({"version": 1, "config": {"SCRAM-SHA-512": credential}}).encode())
    finally:
        r.close()


def start_sasl_cluster(tmp_path, zookeeper, pki, chroot, mech, passwords, extra=None):
    ports = {i: (free_port(), free_port()) for i in (1, 2, 3)}
    # The inter-broker user's credential, made in ZooKeeper before the brokers start (as with
    # Kafka 3.9's kafka-configs.sh --zookeeper): a cluster's brokers read /config/users.
    put_user_credential(zookeeper.connect + chroot, "broker",
                        scram_credential("SCRAM-SHA-512", "broker-secret"))
    brokers = {}
    for i in (1, 2, 3):
        data = tmp_path / ("data%d" % i)
        data.mkdir(parents=True, exist_ok=True)
        o = {"broker.id": i, "zookeeper.connect": zookeeper.connect + chroot,
             "zookeeper.session.timeout.ms": SESSION_MS,
             "listeners": "PLAINTEXT://127.0.0.1:%d,INTERNAL://127.0.0.1:%d" % ports[i],
             "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
             "inter.broker.listener.name": "INTERNAL",
             "sasl.mechanism.inter.broker.protocol": mech,
             "listener.name.internal.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
             "listener.name.internal.plain.sasl.jaas.config": PLAIN_JAAS % passwords[i],
             "listener.name.internal.scram-sha-512.sasl.jaas.config": SCRAM_JAAS % passwords[i],
             "replica.lag.time.max.ms": 5000}
        o.update(tls_keys(pki, "listener.name.internal."))
        o.update(extra or {})
        b = Broker(str(data), port=ports[i][0], overrides=o)
        b.internal_port = ports[i][1]
        b.args_listeners = o["listeners"]
        brokers[i] = b
    for b in brokers.values():
        a = b.args

        def args(b=b, a=a):
            x = a()
            x[x.index("listeners=PLAINTEXT://127.0.0.1:%d" % b.port)] = "listeners=" + b.args_listeners
            return x
        b.args = args
        b.start()
    return brokers


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl_between_brokers_plaintext_clients(tmp_path, zookeeper, pki, mech):
    chroot = "/ib-sasl-" + mech.lower()
    brokers = start_sasl_cluster(tmp_path, zookeeper, pki, chroot, mech,
                                 {i: "broker-secret" for i in (1, 2, 3)})
    try:
        conf = {"bootstrap.servers": brokers[1].bootstrap}
        # Metadata on the PLAINTEXT listener names every broker's PLAINTEXT endpoint.
        from confluent_kafka.admin import AdminClient
        md = wait_until(lambda: (lambda m: m if len(m.brokers) == 3 else None)(
            AdminClient(conf).list_topics(timeout=10)), 30, what="three brokers")
        assert {b.id: b.port for b in md.brokers.values()} == {i: brokers[i].port for i in (1, 2, 3)}
        topic = "sasl-rf3"
        create_topic(conf, topic, 3)
        wait_isr(conf, topic, 3, [1, 2, 3])
        acked = produce(conf, topic, 200)
        assert len(acked) == 200
        wait_isr(conf, topic, 3, [1, 2, 3])
        assert set(acked) <= read_all(conf, topic, 3, 200)
        # Peers are reached on the SASL_SSL listener, never on the plaintext one.
        for i in (1, 2, 3):
            log = brokers[i].log()
            for j in (1, 2, 3):
                if j != i:
                    assert "Broker %d is live at 127.0.0.1:%d" % (j, brokers[j].internal_port) in log
                    assert "Broker %d is live at 127.0.0.1:%d" % (j, brokers[j].port) not in log
            assert "failed: " not in log.split("Registered broker")[-1] or mech in log
    finally:
        stop_all(brokers.values())


# ---- (c) a wrong inter-broker password


def test_wrong_interbroker_password_stays_out_of_isr_and_says_why(tmp_path, zookeeper, pki):
    brokers = start_sasl_cluster(tmp_path, zookeeper, pki, "/ib-wrong", "PLAIN",
                                 {1: "broker-secret", 2: "broker-secret", 3: "not-the-secret"})
    try:
        conf = {"bootstrap.servers": brokers[1].bootstrap}
        topic = "wrong-pw"
        create_topic(conf, topic, 2, assignment=[[1, 2, 3], [2, 1, 3]])
        acked = produce(conf, topic, 100)
        assert len(acked) == 100
        wait_isr(conf, topic, 2, [1, 2], timeout=60)
        assert set(acked) <= read_all(conf, topic, 2, 100)
        log3 = brokers[3].log()
        assert "SASL_AUTHENTICATION_FAILED" in log3, log3
        assert ("Connection to 127.0.0.1:%d on listener INTERNAL failed" % brokers[1].internal_port
                in log3 or "Connection to 127.0.0.1:%d on listener INTERNAL failed"
                % brokers[2].internal_port in log3), log3
        # Once per change of reason, not once per reconnect.
        assert log3.count("SASL_AUTHENTICATION_FAILED") <= 4, log3
        for i in (1, 2):
            assert brokers[i].proc.poll() is None
    finally:
        stop_all(brokers.values())


# ---- config errors, as Kafka's KafkaConfig


def start_fails(tmp_path, overrides):
    b = Broker(str(tmp_path / "bad"), overrides=overrides)
    a = b.args

    def args():
        x = a()
        if "listeners" in overrides:
            x[x.index("listeners=PLAINTEXT://127.0.0.1:%d" % b.port)] = "listeners=" + overrides["listeners"]
        return x
    b.args = args
    with pytest.raises(RuntimeError) as e:
        b.start(timeout=10)
        b.stop()
    return str(e.value)


def test_interbroker_config_errors(tmp_path, pki):
    p = free_port()
    out = start_fails(tmp_path, {"inter.broker.listener.name": "PLAINTEXT",
                                 "security.inter.broker.protocol": "PLAINTEXT"})
    assert "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set" in out
    out = start_fails(tmp_path, {"inter.broker.listener.name": "INTERNAL"})
    assert "inter.broker.listener.name must be a listener name defined in advertised.listeners" in out
    out = start_fails(tmp_path, {"security.inter.broker.protocol": "SSL"})
    assert "must be a listener name defined in advertised.listeners" in out
    sasl = {"listeners": "SASL_PLAINTEXT://127.0.0.1:%d" % p,
            "security.inter.broker.protocol": "SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS % "x"}
    out = start_fails(tmp_path, sasl)
    assert "sasl.mechanism.inter.broker.protocol=GSSAPI" in out
    out = start_fails(tmp_path, dict(sasl, **{"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-256"}))
    assert "sasl.mechanism.inter.broker.protocol must be included in sasl.enabled.mechanisms" in out


# ---- (d) the registration znode, against Kafka 3.9 in ZooKeeper mode


def test_registration_znode_matches_kafka_39(tmp_path, zookeeper):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kafka_harness"))
    from kafka_zk import KafkaZkBroker, kafka_classpath
    jaas = PLAIN_JAAS % "broker-secret"

    def layout(internal, plain):
        return {"listeners": "INTERNAL://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d" % (internal, plain),
                "advertised.listeners": "INTERNAL://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d"
                                        % (internal, plain),
                "listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name": "INTERNAL",
                "sasl.enabled.mechanisms": "PLAIN",
                "sasl.mechanism.inter.broker.protocol": "PLAIN",
                "listener.name.internal.plain.sasl.jaas.config": jaas}

    kp, ki = free_port(), free_port()
    kafka = KafkaZkBroker(str(tmp_path / "kafka"), 7, kp, zookeeper.connect + "/ib-kafka",
                          classpath=kafka_classpath(), overrides=layout(ki, kp))
    gp, gi = free_port(), free_port()
    o = layout(gi, gp)
    o.update({"broker.id": 7, "zookeeper.connect": zookeeper.connect + "/ib-gregor",
              "zookeeper.session.timeout.ms": SESSION_MS})
    gregor = Broker(str(tmp_path / "gregor" / "data"), port=gp, overrides=o)
    os.makedirs(str(tmp_path / "gregor"), exist_ok=True)
    a = gregor.args

    def args():
        x = a()
        x[x.index("listeners=PLAINTEXT://127.0.0.1:%d" % gp)] = "listeners=" + o["listeners"]
        return x
    gregor.args = args
    try:
        kafka.start()
        gregor.start()
        kafka.wait_started(120)
        zk = ZkReader(zookeeper.connect)
        try:
            k = json.loads(wait_until(lambda: zk.get("/ib-kafka/brokers/ids/7")[0], 30,
                                      what="Kafka's registration"))
            g = json.loads(wait_until(lambda: zk.get("/ib-gregor/brokers/ids/7")[0], 30,
                                      what="gregor's registration"))
        finally:
            zk.close()
        for reg, (i, p) in ((k, (ki, kp)), (g, (gi, gp))):
            reg.pop("timestamp")
            reg["endpoints"] = [e.replace(":%d" % i, ":INTERNAL_PORT").replace(":%d" % p, ":PORT")
                                for e in reg["endpoints"]]
            assert reg["port"] == p
            reg["port"] = "PORT"
        assert g == k, "gregor %s\nKafka  %s" % (g, k)
        assert g["listener_security_protocol_map"] == {"INTERNAL": "SASL_PLAINTEXT",
                                                       "PLAINTEXT": "PLAINTEXT"}
    finally:
        gregor.stop()
        kafka.stop()
