"""Authorization (issue 19): Kafka's ACLs with authorizer.class.name set.

Brokers with an SSL listener and ssl.client.auth=required map each client certificate to
User:alice, User:bob or User:admin (super.users). ACLs are made through the admin API
(confluent_kafka's AdminClient create_acls / describe_acls / delete_acls), then real clients
meet them: alice may write topic t but not read it, bob reads t with group g, Metadata leaves
out what a principal may not describe, PREFIXED patterns, DENY over ALLOW,
allow.everyone.if.no.acl.found, and the ACLs survive a restart (the ACL file).
"""
import time
import uuid

import pytest

from conftest import Broker, free_port
from test_tls import make_ca, make_cert, pem_keystore

ACL_AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    import os
    d = str(tmp_path_factory.mktemp("aclpki"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "/CN=localhost", san="IP:127.0.0.1,DNS:localhost")
    for user in ("alice", "bob", "admin", "carol"):
        make_cert(d, "ca", user, "/O=corp/OU=eng/CN=%s" % user)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    with open(p("server.keystore.pem"), "w") as f:
        f.write(open(p("server.key")).read() + open(p("server.pem")).read() + open(p("ca.pem")).read())
    return p


def start_acl_broker(tmp_path, pki, name="data", authorizer=ACL_AUTHORIZER, extra=None):
    port, ssl_port = free_port(), free_port()
    o = {"listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (port, ssl_port),
         "ssl.client.auth": "required", "ssl.truststore.type": "PEM",
         "ssl.truststore.location": pki("ca.pem"),
         "ssl.principal.mapping.rules": "RULE:^CN=([a-z]+),.*$/$1/,DEFAULT",
         "super.users": "User:admin"}
    o.update(pem_keystore(pki))
    if authorizer:
        o["authorizer.class.name"] = authorizer
    o.update(extra or {})
    b = Broker(str(tmp_path / name), port=port, overrides=o)
    b.ssl_port = ssl_port
    b.start()
    return b


def conf(b, pki, user, **extra):
    c = {"bootstrap.servers": "127.0.0.1:%d" % b.ssl_port, "security.protocol": "SSL",
         "ssl.ca.location": pki("ca.pem"), "ssl.certificate.location": pki(user + ".pem"),
         "ssl.key.location": pki(user + ".key")}
    c.update(extra)
    return c


def admin(b, pki, user="admin"):
    from confluent_kafka.admin import AdminClient
    return AdminClient(conf(b, pki, user))


def binding(rtype, name, principal, op, perm="ALLOW", pattern="LITERAL"):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    return AclBinding(getattr(ResourceType, rtype), name, getattr(ResourcePatternType, pattern),
                      principal, "*", getattr(AclOperation, op), getattr(AclPermissionType, perm))


def create_acls(a, bindings):
    for f in a.create_acls(bindings, request_timeout=10).values():
        f.result()


def create_topic(a, name, partitions=1):
    from confluent_kafka.admin import NewTopic
    for f in a.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result()


def produce(b, pki, user, topic, n=5):
    """Produces n records as user: the delivery errors' codes (empty when all went)."""
    from confluent_kafka import Producer
    p = Producer(conf(b, pki, user, **{"message.timeout.ms": 5000, "retries": 0}))
    errors = []
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, on_delivery=lambda e, m: e and errors.append(e.code()))
    p.flush(10)
    return errors


def consume(b, pki, user, topic, group, n, timeout=15):
    """Reads up to n records as user in group: (values, error codes seen)."""
    from confluent_kafka import Consumer
    c = Consumer(conf(b, pki, user, **{"group.id": group, "auto.offset.reset": "earliest",
                                       "enable.auto.commit": False}))
    c.subscribe([topic])
    got, errs = [], []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline and not errs:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errs.append(m.error().code())
            continue
        got.append(m.value())
        c.commit(message=m, asynchronous=False)
    c.close()
    return got, errs


def test_acls_alice_writes_bob_reads_with_group_and_survive_restart(tmp_path, pki):
    from confluent_kafka import KafkaError
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        t = "t-" + uuid.uuid4().hex[:6]
        create_topic(a, t)
        create_acls(a, [binding("TOPIC", t, "User:alice", "WRITE"),
                        binding("TOPIC", t, "User:bob", "READ"),
                        binding("GROUP", "g", "User:bob", "READ")])
        assert produce(b, pki, "alice", t, n=5) == []
        # bob may not write it; alice may not read it.
        assert produce(b, pki, "bob", t, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        got, errs = consume(b, pki, "alice", t, "g", 5, timeout=8)
        assert got == [] and errs, (got, errs)
        assert errs[0] in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)
        # bob reads with group g, not with another group.
        got, errs = consume(b, pki, "bob", t, "g", 5)
        assert got == [b"v%d" % i for i in range(5)] and errs == []
        got, errs = consume(b, pki, "bob", t, "other", 5, timeout=8)
        assert got == [] and errs == [KafkaError.GROUP_AUTHORIZATION_FAILED]
        # The denials are logged as Kafka's authorizer logger words them (StandardAuthorizerData
        # .buildAuditMessage: "operation", the resource type as SecurityUtils.resourceTypeName,
        # the rule DefaultDeny when no ACL of the resource matches).
        log = open(b.log_path, errors="replace").read()
        assert ("Principal = User:bob is Denied operation = WRITE from host = 127.0.0.1 on "
                "resource = Topic:LITERAL:%s for request = Produce with resourceRefCount = 1 "
                "based on rule DefaultDeny\n" % t) in log
        # The ACLs are listed, survive a restart and still decide.
        from confluent_kafka.admin import AclBindingFilter, ResourcePatternType, ResourceType, \
            AclOperation, AclPermissionType
        any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                      AclOperation.ANY, AclPermissionType.ANY)
        before = sorted(str(x) for x in a.describe_acls(any_filter, request_timeout=10).result())
        assert len(before) == 3
        del a
        b.stop()
        b.start()
        a = admin(b, pki)
        after = sorted(str(x) for x in a.describe_acls(any_filter, request_timeout=10).result())
        assert after == before
        assert produce(b, pki, "bob", t, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        assert produce(b, pki, "alice", t, n=1) == []
        # DeleteAcls: alice's WRITE goes, and so does her right to write.
        bob_filter = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL,
                                      "User:alice", None, AclOperation.ANY, AclPermissionType.ANY)
        deleted = list(a.delete_acls([bob_filter], request_timeout=10).values())[0].result()
        assert [(d.principal, d.operation) for d in deleted] == [("User:alice", AclOperation.WRITE)]
        assert produce(b, pki, "alice", t, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    finally:
        b.stop()


def test_acls_metadata_hides_undescribable_topics_prefixed_and_deny(tmp_path, pki):
    from confluent_kafka import KafkaError
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        for t in ("pre-one", "pre-secret", "hidden"):
            create_topic(a, t)
        create_acls(a, [binding("TOPIC", "pre-", "User:alice", "WRITE", pattern="PREFIXED"),
                        binding("TOPIC", "pre-secret", "User:alice", "ALL", perm="DENY")])
        alice = admin(b, pki, "alice")
        md = alice.list_topics(timeout=10)
        assert sorted(md.topics) == ["pre-one"]  # WRITE implies DESCRIBE; DENY ALL wins
        assert sorted(a.list_topics(timeout=10).topics) == ["hidden", "pre-one", "pre-secret"]
        assert produce(b, pki, "alice", "pre-one", n=2) == []
        assert produce(b, pki, "alice", "pre-secret", n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        assert produce(b, pki, "alice", "hidden", n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        # A denial by a DENY ACL names it as StandardAcl.toString does (the producer's Metadata
        # asked for the topic by name, and was refused).
        log = open(b.log_path, errors="replace").read()
        assert ("Principal = User:alice is Denied operation = DESCRIBE from host = 127.0.0.1 on "
                "resource = Topic:LITERAL:pre-secret for request = Metadata with resourceRefCount = 1 "
                "based on rule MatchingAcl(acl=StandardAcl(resourceType=TOPIC, resourceName="
                "pre-secret, patternType=LITERAL, principal=User:alice, host=*, operation=ALL, "
                "permissionType=DENY))\n") in log
        # Only a principal with ALTER on the cluster changes ACLs.
        alice_admin = admin(b, pki, "alice")
        with pytest.raises(Exception) as e:
            create_acls(alice_admin, [binding("TOPIC", "hidden", "User:alice", "READ")])
        assert "CLUSTER_AUTHORIZATION_FAILED" in str(e.value) or "uthoriz" in str(e.value)
    finally:
        b.stop()


def test_acls_allow_everyone_if_no_acl_found(tmp_path, pki):
    from confluent_kafka import KafkaError
    b = start_acl_broker(tmp_path, pki, extra={"allow.everyone.if.no.acl.found": "true"})
    try:
        a = admin(b, pki)
        create_topic(a, "free")
        create_topic(a, "guarded")
        create_acls(a, [binding("TOPIC", "guarded", "User:bob", "WRITE")])
        assert produce(b, pki, "carol", "free", n=2) == []     # no ACL on it: everyone
        assert produce(b, pki, "carol", "guarded", n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        assert produce(b, pki, "bob", "guarded", n=1) == []
    finally:
        b.stop()


def test_acls_without_authorizer_security_disabled(tmp_path, pki):
    b = start_acl_broker(tmp_path, pki, authorizer=None)
    try:
        a = admin(b, pki, "carol")
        with pytest.raises(Exception) as e:
            create_acls(a, [binding("TOPIC", "x", "User:bob", "READ")])
        assert "SECURITY_DISABLED" in str(e.value) or "No Authorizer" in str(e.value)
        create_topic(a, "open")
        assert produce(b, pki, "carol", "open", n=1) == []
    finally:
        b.stop()


def test_acls_create_delete_topics_and_list_offsets(tmp_path, pki):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        carol = admin(b, pki, "carol")
        with pytest.raises(KafkaException) as e:
            create_topic(carol, "carol-one")
        assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert "carol-one" not in a.list_topics(timeout=10).topics
        # CREATE on a prefix lets her create under it (and, implied, nothing else).
        create_acls(a, [binding("TOPIC", "carol-", "User:carol", "CREATE", pattern="PREFIXED")])
        create_topic(carol, "carol-one")
        with pytest.raises(KafkaException) as e:
            create_topic(carol, "dave-one")
        assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # DeleteTopics needs DELETE on the topic.
        with pytest.raises(KafkaException) as e:
            for f in carol.delete_topics(["carol-one"]).values():
                f.result()
        assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert "carol-one" in a.list_topics(timeout=10).topics
        # Offsets need DESCRIBE: carol has none on carol-one (CREATE implies nothing), so
        # Metadata hides it from her (librdkafka then asks no ListOffsets).
        assert produce(b, pki, "admin", "carol-one", n=3) == []
        c = Consumer(conf(b, pki, "carol", **{"group.id": "x"}))
        with pytest.raises(KafkaException) as e:
            c.get_watermark_offsets(TopicPartition("carol-one", 0), timeout=5)
        assert e.value.args[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                          KafkaError._UNKNOWN_PARTITION)
        c.close()
        create_acls(a, [binding("TOPIC", "carol-one", "User:carol", "DELETE")])
        c = Consumer(conf(b, pki, "carol", **{"group.id": "x"}))
        assert c.get_watermark_offsets(TopicPartition("carol-one", 0), timeout=5) == (0, 3)  # DELETE implies DESCRIBE
        c.close()
        for f in carol.delete_topics(["carol-one"]).values():
            f.result()
    finally:
        b.stop()


def test_acls_groups_described_listed_and_idempotent_producers(tmp_path, pki):
    from confluent_kafka import KafkaError, Producer
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "t")
        create_acls(a, [binding("TOPIC", "t", "User:bob", "READ"),
                        binding("GROUP", "g", "User:bob", "READ"),
                        binding("TOPIC", "t", "User:alice", "WRITE"),
                        binding("TOPIC", "t", "User:carol", "DESCRIBE")])
        assert produce(b, pki, "admin", "t", n=2) == []
        for group in ("g", "h"):
            got, errs = consume(b, pki, "admin", "t", group, 2)
            assert len(got) == 2
        # bob lists only the group he may describe; admin (super user) lists both.
        listed = a.list_consumer_groups(request_timeout=10).result()
        assert sorted(g.group_id for g in listed.valid) == ["g", "h"]
        bob = admin(b, pki, "bob")
        listed = bob.list_consumer_groups(request_timeout=10).result()
        assert sorted(g.group_id for g in listed.valid) == ["g"]
        # DescribeGroups: GROUP_AUTHORIZATION_FAILED for a group he may not describe.
        fs = bob.describe_consumer_groups(["g", "h"], request_timeout=10)
        assert fs["g"].result().group_id == "g"
        with pytest.raises(Exception) as e:
            fs["h"].result()
        assert e.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        # Idempotent producers: alice (WRITE on a topic) gets a producer id, carol does not.
        assert produce(b, pki, "alice", "t", n=1) == []
        p = Producer(conf(b, pki, "alice", **{"enable.idempotence": True}))
        errors = []
        p.produce("t", b"x", on_delivery=lambda e, m: e and errors.append(e.code()))
        assert p.flush(10) == 0 and errors == []
        fatal = []
        p = Producer(conf(b, pki, "carol", **{"enable.idempotence": True,
                                               "error_cb": lambda e: fatal.append(e.code())}))
        deadline = time.time() + 10
        while KafkaError.CLUSTER_AUTHORIZATION_FAILED not in fatal and time.time() < deadline:
            try:
                p.produce("t", b"x")
                p.poll(0.2)
            except Exception as ex:  # the fatal error, raised once it is known
                fatal.append(ex.args[0].code())
        assert KafkaError.CLUSTER_AUTHORIZATION_FAILED in fatal, fatal
    finally:
        b.stop()


def test_acls_configs_partitions_and_delete_records(tmp_path, pki):
    from confluent_kafka import KafkaError, KafkaException, TopicPartition
    from confluent_kafka.admin import ConfigResource, NewPartitions, ResourceType
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "c")
        assert produce(b, pki, "admin", "c", n=4) == []
        # DESCRIBE only: she sees the topic (so librdkafka finds its leader) and no more.
        create_acls(a, [binding("TOPIC", "c", "User:carol", "DESCRIBE")])
        carol = admin(b, pki, "carol")

        def code(fut):
            with pytest.raises(KafkaException) as e:
                fut.result()
            return e.value.args[0].code()
        topic_res = ConfigResource(ResourceType.TOPIC, "c")
        broker_res = ConfigResource(ResourceType.BROKER, "0")
        assert code(carol.describe_configs([topic_res], request_timeout=10)[topic_res]) == \
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert code(carol.describe_configs([broker_res], request_timeout=10)[broker_res]) == \
            KafkaError.CLUSTER_AUTHORIZATION_FAILED
        assert code(carol.create_partitions([NewPartitions("c", 2)], request_timeout=10)["c"]) == \
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        fs = carol.delete_records([TopicPartition("c", 0, 2)], request_timeout=10)
        assert code(list(fs.values())[0]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # Granted: ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALTER grows it; DELETE trims it.
        create_acls(a, [binding("TOPIC", "c", "User:carol", "ALTER_CONFIGS"),
                        binding("TOPIC", "c", "User:carol", "ALTER"),
                        binding("TOPIC", "c", "User:carol", "DELETE")])
        cfg = carol.describe_configs([topic_res], request_timeout=10)[topic_res].result()
        assert "cleanup.policy" in cfg
        carol.create_partitions([NewPartitions("c", 2)], request_timeout=10)["c"].result()
        assert len(a.list_topics("c", timeout=10).topics["c"].partitions) == 2
        fs = carol.delete_records([TopicPartition("c", 0, 2)], request_timeout=10)
        assert list(fs.values())[0].result().low_watermark == 2
    finally:
        b.stop()


def kafka_acls(b, pki, tmp_path, *args):
    """Apache Kafka 4.x's own kafka-acls.sh (org.apache.kafka.tools.AclCommand) as admin."""
    import os
    import subprocess
    harness = os.path.join(os.path.dirname(__file__), "..", "kafka_harness", "kafka.sh")
    keystore = tmp_path / "admin.keystore.pem"
    keystore.write_text(open(pki("admin.key")).read() + open(pki("admin.pem")).read())
    props = tmp_path / "admin.properties"
    props.write_text("security.protocol=SSL\nssl.truststore.type=PEM\n"
                     "ssl.truststore.location=%s\nssl.keystore.type=PEM\n"
                     "ssl.keystore.location=%s\n" % (pki("ca.pem"), keystore))
    r = subprocess.run([harness, "run-class", "org.apache.kafka.tools.AclCommand",
                        "--bootstrap-server", "127.0.0.1:%d" % b.ssl_port,
                        "--command-config", str(props)] + list(args),
                       capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, KAFKA_STATE=str(tmp_path / "kafka-state")))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_acls_kafka_acls_sh_add_list_remove(tmp_path, pki):
    import shutil
    if shutil.which("java") is None:
        pytest.fail("java not installed")
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "kt")
        assert produce(b, pki, "admin", "kt", n=3) == []
        out = kafka_acls(b, pki, tmp_path, "--add", "--allow-principal", "User:bob",
                         "--operation", "Read", "--topic", "kt", "--group", "kg")
        assert "User:bob" in out
        out = kafka_acls(b, pki, tmp_path, "--list", "--topic", "kt")
        assert "principal=User:bob, host=*, operation=READ, permissionType=ALLOW" in out, out
        got, errs = consume(b, pki, "bob", "kt", "kg", 3)
        assert len(got) == 3 and errs == []
        kafka_acls(b, pki, tmp_path, "--remove", "--force", "--allow-principal", "User:bob",
                   "--operation", "Read", "--topic", "kt")
        out = kafka_acls(b, pki, tmp_path, "--list", "--topic", "kt")
        assert "User:bob" not in out, out
        from confluent_kafka import KafkaError
        got, errs = consume(b, pki, "bob", "kt", "kg2", 3, timeout=8)
        assert got == [] and errs, (got, errs)
    finally:
        b.stop()


def test_acls_transactions_and_delete_groups(tmp_path, pki):
    from confluent_kafka import KafkaError, KafkaException, Producer
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "tx-t")
        create_acls(a, [binding("TOPIC", "tx-t", "User:alice", "WRITE")])
        # No ACL on the transactional id: refused (FindCoordinator / InitProducerId).
        p = Producer(conf(b, pki, "alice", **{"transactional.id": "tx-a"}))
        with pytest.raises(KafkaException) as e:
            p.init_transactions(10)
        assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        # WRITE on it (implying DESCRIBE): a transaction commits.
        create_acls(a, [binding("TRANSACTIONAL_ID", "tx-a", "User:alice", "WRITE")])
        p = Producer(conf(b, pki, "alice", **{"transactional.id": "tx-a"}))
        p.init_transactions(10)
        p.begin_transaction()
        p.produce("tx-t", b"in-txn")
        p.commit_transaction(10)
        # DeleteGroups needs DELETE on the group: bob reads in g, may not delete it.
        create_acls(a, [binding("TOPIC", "tx-t", "User:bob", "READ"),
                        binding("GROUP", "g", "User:bob", "READ")])
        got, errs = consume(b, pki, "bob", "tx-t", "g", 1)
        assert got == [b"in-txn"]
        bob = admin(b, pki, "bob")
        with pytest.raises(KafkaException) as e:
            bob.delete_consumer_groups(["g"], request_timeout=10)["g"].result()
        assert e.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        create_acls(a, [binding("GROUP", "g", "User:bob", "DELETE")])
        bob.delete_consumer_groups(["g"], request_timeout=10)["g"].result()
        assert [g.group_id for g in a.list_consumer_groups(request_timeout=10).result().valid] == []
    finally:
        b.stop()


def test_acls_gregor_cli_add_list_remove(tmp_path, pki):
    """bin/kafka-acls.sh (gregor acls, on librdkafka) with kafka-acls.sh's common options."""
    import os
    import subprocess
    from conftest import GREGOR
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "ct")
        assert produce(b, pki, "admin", "ct", n=2) == []
        props = tmp_path / "cli.properties"
        props.write_text("security.protocol=SSL\nssl.ca.location=%s\nssl.certificate.location=%s\n"
                         "ssl.key.location=%s\n" % (pki("ca.pem"), pki("admin.pem"), pki("admin.key")))
        tool = os.path.join(os.path.dirname(__file__), "..", "..", "bin", "kafka-acls.sh")

        def acls(*args, ok=True):
            r = subprocess.run([tool, "--bootstrap-server", "127.0.0.1:%d" % b.ssl_port,
                                "--command-config", str(props)] + list(args),
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, GREGOR_BIN=GREGOR))
            assert (r.returncode == 0) == ok, r.stdout + r.stderr
            return r.stdout + r.stderr
        out = acls("--add", "--allow-principal", "User:bob", "--operation", "Read",
                   "--operation", "Describe", "--topic", "ct", "--group", "cg")
        assert "principal=User:bob, host=*, operation=READ, permissionType=ALLOW" in out, out
        acls("--add", "--deny-principal", "User:bob", "--operation", "Write",
             "--topic", "c", "--resource-pattern-type", "prefixed")
        out = acls("--list", "--topic", "ct")
        assert "ResourcePattern(resourceType=TOPIC, name=ct, patternType=LITERAL)" in out, out
        assert "operation=DESCRIBE" in out and "operation=READ" in out
        out = acls("--list")
        assert "name=c, patternType=PREFIXED" in out and "permissionType=DENY" in out, out
        got, errs = consume(b, pki, "bob", "ct", "cg", 2)
        assert len(got) == 2 and errs == []
        from confluent_kafka import KafkaError
        assert produce(b, pki, "bob", "ct", n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        acls("--remove", "--force", "--allow-principal", "User:bob", "--operation", "Read",
             "--topic", "ct")
        out = acls("--list", "--topic", "ct")
        assert "operation=READ" not in out and "operation=DESCRIBE" in out, out
        acls("--add", "--topic", "ct", ok=False)  # no principal: a usage error
    finally:
        b.stop()


def test_acls_kip848_consumer_group_needs_read_on_group(tmp_path, pki):
    from confluent_kafka import Consumer, KafkaError
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "k")
        assert produce(b, pki, "admin", "k", n=2) == []
        create_acls(a, [binding("TOPIC", "k", "User:bob", "READ")])

        def run(group):
            c = Consumer(conf(b, pki, "bob", **{"group.id": group, "group.protocol": "consumer",
                                                "auto.offset.reset": "earliest"}))
            c.subscribe(["k"])
            got, errs = [], []
            deadline = time.time() + 15
            while len(got) < 2 and not errs and time.time() < deadline:
                m = c.poll(0.5)
                if m is not None:
                    (errs.append(m.error().code()) if m.error() else got.append(m.value()))
            c.close()
            return got, errs
        got, errs = run("k848")
        assert got == [] and errs == [KafkaError.GROUP_AUTHORIZATION_FAILED], (got, errs)
        create_acls(a, [binding("GROUP", "k848", "User:bob", "READ")])
        got, errs = run("k848")
        assert len(got) == 2 and errs == [], (got, errs)
    finally:
        b.stop()


def tls_flexible_call(b, pki, user, api, version, body):
    """One flexible request (header v2) over mutual TLS as user: a Reader past the response
    header."""
    import socket
    import ssl
    import struct
    from kafka_wire import Reader, _recv, uvarint
    ctx = ssl.create_default_context(cafile=pki("ca.pem"))
    ctx.load_cert_chain(pki(user + ".pem"), pki(user + ".key"))
    hdr = struct.pack(">hhih", api, version, 7, 4) + b"test" + uvarint(0)
    with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            msg = hdr + body
            s.sendall(struct.pack(">i", len(msg)) + msg)
            data = _recv(s, struct.unpack(">i", _recv(s, 4))[0])
    r = Reader(data)
    assert r.take(">i") == 7
    r.tags()
    return r


def describe_scram_raw(b, pki, user):
    """DescribeUserScramCredentials v0 (all users) as user, raw: (error code, error message,
    number of results). librdkafka 2.16 crashes on this response's top-level error (a
    munmap_chunk abort in the client), so the denial is read off the wire."""
    from kafka_wire import uvarint
    r = tls_flexible_call(b, pki, user, 50, 0, uvarint(0) + uvarint(0))  # Users null
    r.take(">i")  # throttle
    code, message = r.take(">h"), r.cstr()
    return code, message, r.uvarint() - 1


def test_acls_scram_credentials_need_the_cluster(tmp_path, pki):
    """DescribeUserScramCredentials needs DESCRIBE on the cluster (a top-level
    CLUSTER_AUTHORIZATION_FAILED otherwise), AlterUserScramCredentials ALTER (each user's result
    CLUSTER_AUTHORIZATION_FAILED, nothing stored), as KafkaApis; the super user may do both."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    b = start_acl_broker(tmp_path, pki)
    try:
        up = UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                          b"dave-secret", b"salt-of-dave")
        carol = admin(b, pki, "carol")
        with pytest.raises(KafkaException) as e:
            carol.alter_user_scram_credentials([up], request_timeout=10)["dave"].result()
        assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
        assert describe_scram_raw(b, pki, "carol") == (31, "Cluster authorization failed.", 0)
        a = admin(b, pki)
        assert a.describe_user_scram_credentials(request_timeout=10).result() == {}
        a.alter_user_scram_credentials([up], request_timeout=10)["dave"].result()
        # Granted DESCRIBE on the cluster, carol sees dave's credential (and still may not alter).
        create_acls(a, [binding("BROKER", "kafka-cluster", "User:carol", "DESCRIBE")])
        got = carol.describe_user_scram_credentials(request_timeout=10).result()
        assert [c.mechanism for c in got["dave"].scram_credential_infos] == [ScramMechanism.SCRAM_SHA_512]
        with pytest.raises(KafkaException) as e:
            carol.alter_user_scram_credentials([up], request_timeout=10)["dave"].result()
        assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    finally:
        b.stop()


def test_acls_transactions_listed_described_and_added_as_kafka(tmp_path, pki):
    """AddPartitionsToTxn of a client needs WRITE on the topic (TOPIC_AUTHORIZATION_FAILED, the
    transaction abortable) besides WRITE on the id; DescribeTransactions needs DESCRIBE on the id
    (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); ListTransactions lists only the ids the principal
    may DESCRIBE; the brokers' batched form (v4) needs CLUSTER_ACTION."""
    import struct
    from confluent_kafka import KafkaException, Producer
    from kafka_wire import cstr, uvarint
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "tw")
        create_topic(a, "tu")
        create_acls(a, [binding("TRANSACTIONAL_ID", "alice-tx", "User:alice", "WRITE"),
                        binding("TOPIC", "tw", "User:alice", "WRITE"),
                        binding("TOPIC", "tu", "User:alice", "DESCRIBE")])  # may find it, not write
        p = Producer(conf(b, pki, "alice", **{"transactional.id": "alice-tx",
                                             "message.timeout.ms": 10000}))
        p.init_transactions(15)
        p.begin_transaction()
        p.produce("tw", value=b"ok")
        p.commit_transaction(15)
        p.begin_transaction()
        p.produce("tw", value=b"aborted")
        p.flush(15)  # tw in the transaction, so the abort below has one to end
        p.produce("tu", value=b"denied")
        with pytest.raises(KafkaException) as e:
            p.commit_transaction(15)
        assert e.value.args[0].txn_requires_abort(), e.value
        p.abort_transaction(15)
        # The denial came from AddPartitionsToTxn (the produce never went).
        assert "on resource = topic:literal:tu for request = addpartitionstotxn" in b.log().lower()

        def listed(user):
            r = tls_flexible_call(b, pki, user, 66, 0, uvarint(1) + uvarint(1) + uvarint(0))
            r.take(">i")
            assert r.take(">h") == 0
            for _ in range(r.uvarint() - 1):  # unknown state filters
                r.cstr()
            ids = []
            for _ in range(r.uvarint() - 1):
                ids.append(r.cstr())
                r.take(">q")
                r.cstr()
                r.tags()
            return ids

        def described(user):
            r = tls_flexible_call(b, pki, user, 65, 0, uvarint(2) + cstr("alice-tx") + uvarint(0))
            r.take(">i")
            assert r.uvarint() - 1 == 1
            return r.take(">h")
        assert listed("admin") == ["alice-tx"]
        assert listed("carol") == []
        # ListTransactions logs each id it leaves out, as KafkaApis' authorize does by default.
        assert ("Principal = User:carol is Denied operation = DESCRIBE from host = 127.0.0.1 on "
                "resource = TransactionalId:LITERAL:alice-tx for request = ListTransactions "
                "with resourceRefCount = 1 based on rule DefaultDeny\n") in b.log()
        assert described("carol") == 53
        assert ("Principal = User:carol is Denied operation = DESCRIBE from host = 127.0.0.1 on "
                "resource = TransactionalId:LITERAL:alice-tx for request = DescribeTransactions "
                "with resourceRefCount = 1 based on rule DefaultDeny\n") in b.log()
        assert described("admin") == 0
        create_acls(a, [binding("TRANSACTIONAL_ID", "alice-", "User:carol", "DESCRIBE", pattern="PREFIXED")])
        assert listed("carol") == ["alice-tx"]
        assert described("carol") == 0
        # v4 (a broker's verification) from a client principal without CLUSTER_ACTION.
        body = (uvarint(2) + cstr("alice-tx") + struct.pack(">qh", 1, 0) + b"\x01" + uvarint(1)
                + uvarint(0) + uvarint(0))
        r = tls_flexible_call(b, pki, "carol", 24, 4, body)
        r.take(">i")
        assert r.take(">h") == 31
    finally:
        b.stop()


def describe_txn_topics(b, pki, user, txn_id):
    """DescribeTransactions v0 of one id as user, raw: (error code, {topic: partitions})."""
    from kafka_wire import cstr, uvarint
    r = tls_flexible_call(b, pki, user, 65, 0, uvarint(2) + cstr(txn_id) + uvarint(0))
    r.take(">i")  # throttle
    assert r.uvarint() - 1 == 1
    code = r.take(">h")
    assert r.cstr() == txn_id
    r.cstr()  # state
    r.take(">i")
    r.take(">q")
    r.take(">q")
    r.take(">h")
    topics = {}
    for _ in range(r.uvarint() - 1):
        name = r.cstr()
        topics[name] = sorted(r.take(">i") for _ in range(r.uvarint() - 1))
        r.tags()
    r.tags()
    return code, topics


def test_acls_describe_transactions_shows_only_describable_topics(tmp_path, pki):
    """DescribeTransactions lists, of a described transaction's partitions, only those of topics
    the principal may DESCRIBE (KafkaApis.handleDescribeTransactionsRequest removes the others)."""
    from confluent_kafka import Producer
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "seen", partitions=2)
        create_topic(a, "secret")
        create_acls(a, [binding("TRANSACTIONAL_ID", "tx", "User:alice", "WRITE"),
                        binding("TOPIC", "seen", "User:alice", "WRITE"),
                        binding("TOPIC", "secret", "User:alice", "WRITE"),
                        binding("TRANSACTIONAL_ID", "tx", "User:carol", "DESCRIBE"),
                        binding("TOPIC", "seen", "User:carol", "DESCRIBE")])
        p = Producer(conf(b, pki, "alice", **{"transactional.id": "tx",
                                             "message.timeout.ms": 10000}))
        p.init_transactions(15)
        p.begin_transaction()
        for part in (0, 1):
            p.produce("seen", value=b"s", partition=part)
        p.produce("secret", value=b"x")
        p.flush(15)  # the three partitions are in the open transaction
        assert describe_txn_topics(b, pki, "admin", "tx") == (0, {"seen": [0, 1], "secret": [0]})
        assert describe_txn_topics(b, pki, "carol", "tx") == (0, {"seen": [0, 1]})
        assert ("Principal = User:carol is Denied operation = DESCRIBE from host = 127.0.0.1 on "
                "resource = Topic:LITERAL:secret for request = DescribeTransactions") in b.log()
        p.abort_transaction(15)
    finally:
        b.stop()


def test_acls_kip848_heartbeat_and_describe_need_describe_on_the_topics(tmp_path, pki):
    """Kafka 4 (KafkaApis.handleConsumerGroupHeartbeat / handleConsumerGroupDescribe,
    KAFKA-18813): a ConsumerGroupHeartbeat whose subscription names a topic the principal may not
    DESCRIBE answers TOPIC_AUTHORIZATION_FAILED (each denial logged), with only describable
    topics it joins; ConsumerGroupDescribe of a group assigning a topic the principal may not
    DESCRIBE answers only TOPIC_AUTHORIZATION_FAILED and Kafka's message."""
    import struct
    import uuid as uuidlib
    from kafka_wire import cstr, uvarint
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "k")
        create_topic(a, "secret")
        create_acls(a, [binding("TOPIC", "k", "User:bob", "READ"),
                        binding("GROUP", "g848", "User:bob", "READ")])

        def heartbeat(topics):
            member = uuidlib.uuid4().hex[:22]
            body = (cstr("g848") + cstr(member) + struct.pack(">i", 0) + uvarint(0) + uvarint(0)
                    + struct.pack(">i", 30000) + uvarint(len(topics) + 1)
                    + b"".join(cstr(t) for t in topics) + uvarint(0) + uvarint(1) + uvarint(0))
            r = tls_flexible_call(b, pki, "bob", 68, 0, body)
            r.take(">i")  # throttle
            return r.take(">h")
        assert heartbeat(["k", "secret"]) == 29
        assert ("Principal = User:bob is Denied operation = DESCRIBE from host = 127.0.0.1 on "
                "resource = Topic:LITERAL:secret for request = ConsumerGroupHeartbeat with "
                "resourceRefCount = 1 based on rule DefaultDeny\n") in b.log()
        assert heartbeat(["k"]) == 0

        # ConsumerGroupDescribe: carol may describe the group but not topic k it assigns.
        def describe(user):
            r = tls_flexible_call(b, pki, user, 69, 0, uvarint(2) + cstr("g848") + b"\x00" + uvarint(0))
            r.take(">i")  # throttle
            assert r.uvarint() - 1 == 1
            code, message = r.take(">h"), r.cstr()
            assert r.cstr() == "g848"
            state = r.cstr()
            return code, message, state
        create_acls(a, [binding("GROUP", "g848", "User:carol", "DESCRIBE")])
        assert describe("carol") == (29, "The group has described topic(s) that the client is not "
                                         "authorized to describe.", "")
        assert ("Principal = User:carol is Denied operation = DESCRIBE from host = 127.0.0.1 on "
                "resource = Topic:LITERAL:k for request = ConsumerGroupDescribe") in b.log()
        code, message, state = describe("admin")
        assert code == 0 and message is None and state != "", (code, message, state)
    finally:
        b.stop()


def test_acls_write_txn_markers_by_alter_on_the_cluster(tmp_path, pki):
    """WriteTxnMarkers needs CLUSTER_ACTION on the cluster or, first and without logging its
    denial, ALTER on it (KafkaApis.handleWriteTxnMarkersRequest; KIP-664, so that an admin's
    kafka-transactions.sh abort may end a hanging transaction)."""
    import struct
    from kafka_wire import cstr, uvarint
    b = start_acl_broker(tmp_path, pki)
    try:
        a = admin(b, pki)
        create_topic(a, "tm")

        def markers(user):
            body = (uvarint(2) + struct.pack(">qh", 4242, 0) + b"\x00" + uvarint(2) + cstr("tm")
                    + uvarint(2) + struct.pack(">i", 0) + uvarint(0) + struct.pack(">i", 0)
                    + uvarint(0) + uvarint(0))
            r = tls_flexible_call(b, pki, user, 27, 1, body)
            assert r.uvarint() - 1 == 1
            assert r.take(">q") == 4242
            assert r.uvarint() - 1 == 1
            assert r.cstr() == "tm"
            assert r.uvarint() - 1 == 1
            assert r.take(">i") == 0
            return r.take(">h")
        assert markers("carol") == 31  # CLUSTER_AUTHORIZATION_FAILED
        create_acls(a, [binding("BROKER", "kafka-cluster", "User:carol", "ALTER")])
        assert markers("carol") == 0
    finally:
        b.stop()
