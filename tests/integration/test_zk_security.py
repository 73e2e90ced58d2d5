"""ACLs and SCRAM credentials on ZooKeeper (issue 19), as Kafka 3.9's ZooKeeper mode keeps them:
AclAuthorizer's /kafka-acl/<Type>/<name> and /kafka-acl-extended/prefixed/<Type>/<name> with
their change notifications, and ZkAdminManager's /config/users/<user> SCRAM credentials with
/config/changes. Brokers on a real ZooKeeper (zk_fixture); admin changes through one broker,
real clients (confluent-kafka) on another. Principals come from SASL PLAIN (alice, bob) on a
SASL_PLAINTEXT listener; the PLAINTEXT listener's User:ANONYMOUS is the super user."""
import json
import time
import uuid

import pytest

from conftest import Broker, free_port
from zk_fixture import ZkReader, kafka_beside, wait_until, zk, zookeeper_available  # noqa: F401 (zk)

pytestmark = pytest.mark.skipif(not zookeeper_available(), reason="ZooKeeper is not installed")

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret" user_bob="bob-secret";')
SCRAM_JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required;'
ACL_AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"


def start(tmp_path, connect, bid, authorizer=True):
    port, sasl_port = free_port(), free_port()
    o = {"broker.id": bid, "zookeeper.connect": connect,
         "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl_port),
         "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
         "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
         "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
         "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM_JAAS}
    if authorizer:
        o.update({"authorizer.class.name": ACL_AUTHORIZER, "super.users": "User:ANONYMOUS"})
    b = Broker(str(tmp_path / ("data%d" % bid)), port=port, overrides=o)
    b.sasl_port = sasl_port
    b.start()
    return b


def sasl_conf(b, user, password, mech="PLAIN"):
    return {"bootstrap.servers": "127.0.0.1:%d" % b.sasl_port, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mech, "sasl.username": user, "sasl.password": password}


def admin(b):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": b.bootstrap})


def visible_topics(b, user, password, mech="PLAIN"):
    from confluent_kafka.admin import AdminClient
    return set(AdminClient(sasl_conf(b, user, password, mech)).list_topics(timeout=10).topics)


def binding(name, principal, pattern="LITERAL", op="READ"):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    return AclBinding(ResourceType.TOPIC, name, getattr(ResourcePatternType, pattern), principal,
                      "*", getattr(AclOperation, op), AclPermissionType.ALLOW)


def acl_filter(name, pattern="LITERAL"):
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    return AclBindingFilter(ResourceType.TOPIC, name, getattr(ResourcePatternType, pattern), None,
                            None, AclOperation.ANY, AclPermissionType.ANY)


def create_topics(a, names):
    from confluent_kafka.admin import NewTopic
    for f in a.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(timeout=30)


def zk_json(connect, path):
    r = ZkReader(connect)
    try:
        data, _ = r.get(path)
        return json.loads(data)
    finally:
        r.close()


def zk_children(connect, path):
    r = ZkReader(connect)
    try:
        return r.children(path)
    finally:
        r.close()


def test_zk_acls_shared_by_brokers_prefixed_removed_and_reloaded(tmp_path, zk):
    b1 = start(tmp_path, zk.connect, 1)
    b2 = start(tmp_path, zk.connect, 2)
    try:
        wait_until(lambda: len(admin(b1).list_topics(timeout=10).brokers) == 2, 20,
                   what="both brokers registered")
        lit, pre = "lit-" + uuid.uuid4().hex[:6], "pre-" + uuid.uuid4().hex[:6]
        create_topics(admin(b1), [lit, pre])
        assert lit not in visible_topics(b2, "alice", "alice-secret")
        # Through broker 1: a LITERAL READ for alice, a PREFIXED one for bob.
        a1 = admin(b1)
        res = a1.create_acls([binding(lit, "User:alice"),
                                     binding("pre-", "User:bob", pattern="PREFIXED")])
        for f in res.values():
            f.result(timeout=15)
        # ZooKeeper holds them where and as Kafka 3.9's AclAuthorizer writes them.
        assert zk_json(zk.connect, "/kafka-acl/Topic/" + lit) == {
            "version": 1, "acls": [{"principal": "User:alice", "permissionType": "Allow",
                                    "operation": "Read", "host": "*"}]}
        assert zk_json(zk.connect, "/kafka-acl-extended/prefixed/Topic/pre-") == {
            "version": 1, "acls": [{"principal": "User:bob", "permissionType": "Allow",
                                    "operation": "Read", "host": "*"}]}
        r = ZkReader(zk.connect)
        lit_changes = [r.get("/kafka-acl-changes/" + c)[0] for c in r.children("/kafka-acl-changes")]
        ext_changes = [json.loads(r.get("/kafka-acl-extended-changes/" + c)[0])
                       for c in r.children("/kafka-acl-extended-changes")]
        r.close()
        assert ("TOPIC:" + lit).encode() in lit_changes
        assert {"version": 1, "resourceType": "TOPIC", "name": "pre-",
                "patternType": "PREFIXED"} in ext_changes
        # Broker 2 enforces them within a few seconds.
        wait_until(lambda: lit in visible_topics(b2, "alice", "alice-secret"), 10,
                   what="alice's ACL reaches broker 2")
        wait_until(lambda: pre in visible_topics(b2, "bob", "bob-secret"), 10,
                   what="bob's prefixed ACL reaches broker 2")
        assert lit not in visible_topics(b2, "bob", "bob-secret")
        # Broker 2 restarted loads them from ZooKeeper.
        b2.stop()
        b2.start()
        wait_until(lambda: lit in visible_topics(b2, "alice", "alice-secret"), 10,
                   what="alice's ACL after broker 2's restart")
        assert pre in visible_topics(b2, "bob", "bob-secret")
        # Removed through broker 2: the node goes, broker 1 lifts it.
        a2 = admin(b2)
        res = a2.delete_acls([acl_filter(lit), acl_filter("pre-", "PREFIXED")])
        for f in res.values():
            assert len(f.result(timeout=15)) == 1
        r = ZkReader(zk.connect)
        assert not r.exists("/kafka-acl/Topic/" + lit)
        assert not r.exists("/kafka-acl-extended/prefixed/Topic/pre-")
        r.close()
        wait_until(lambda: lit not in visible_topics(b1, "alice", "alice-secret"), 10,
                   what="alice's ACL lifted on broker 1")
        wait_until(lambda: pre not in visible_topics(b1, "bob", "bob-secret"), 10,
                   what="bob's ACL lifted on broker 1")
    finally:
        b1.stop()
        b2.stop()


def test_zk_acls_written_in_kafkas_form_are_honoured(tmp_path, zk):
    """An ACL a Kafka 3.9 broker's AclAuthorizer wrote (its znode and its notification, made
    here byte for byte in its form) is enforced by a running broker and by one starting."""
    b1 = start(tmp_path, zk.connect, 1)
    try:
        topic = "k-" + uuid.uuid4().hex[:6]
        create_topics(admin(b1), [topic])
        r = ZkReader(zk.connect)
        acl = {"version": 1, "acls": [{"principal": "User:alice", "permissionType": "Allow",
                                       "operation": "Describe", "host": "*"}]}
        for parent in ("/kafka-acl", "/kafka-acl/Topic", "/kafka-acl-changes"):
            if not r.exists(parent):  # Kafka's createAclPaths (as a Kafka broker made them)
                r.create(parent)
        r.create("/kafka-acl/Topic/" + topic, json.dumps(acl).encode())
        r.create("/kafka-acl-changes/acl_changes_%010d" % 999, ("TOPIC:" + topic).encode())
        r.close()
        wait_until(lambda: topic in visible_topics(b1, "alice", "alice-secret"), 10,
                   what="the ACL Kafka wrote reaches broker 1")
        b2 = start(tmp_path, zk.connect, 2)
        try:
            assert topic in visible_topics(b2, "alice", "alice-secret")
            assert topic not in visible_topics(b2, "bob", "bob-secret")
        finally:
            b2.stop()
    finally:
        b1.stop()


def scram_login(b, user, password):
    try:
        return visible_topics(b, user, password, mech="SCRAM-SHA-512") is not None
    except Exception:
        return False


def test_zk_scram_user_created_on_one_broker_logs_in_on_another(tmp_path, zk):
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    b1 = start(tmp_path, zk.connect, 1, authorizer=False)
    b2 = start(tmp_path, zk.connect, 2, authorizer=False)
    try:
        # A quota another tool wrote for carol stays when her credential is added.
        r = ZkReader(zk.connect)
        r.create("/config/users/carol", b'{"version":1,"config":{"producer_byte_rate":"1024"}}')
        r.close()
        assert not scram_login(b2, "carol", "carol-secret")
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
        a1 = admin(b1)
        f = a1.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("carol", info, b"carol-secret")])
        f["carol"].result(timeout=15)
        cfg = zk_json(zk.connect, "/config/users/carol")
        assert cfg["version"] == 1
        assert cfg["config"]["producer_byte_rate"] == "1024"
        fields = dict(kv.split("=", 1) for kv in cfg["config"]["SCRAM-SHA-512"].split(","))
        assert sorted(fields) == ["iterations", "salt", "server_key", "stored_key"]
        assert fields["iterations"] == "8192"
        changes = [zk_json(zk.connect, "/config/changes/" + c)
                   for c in zk_children(zk.connect, "/config/changes")]
        assert {"version": 2, "entity_path": "users/carol"} in changes
        wait_until(lambda: scram_login(b2, "carol", "carol-secret"), 10,
                   what="carol logs in at broker 2")
        assert scram_login(b1, "carol", "carol-secret")
        assert not scram_login(b2, "carol", "wrong")
        # Broker 2 restarted loads her credential.
        b2.stop()
        b2.start()
        assert scram_login(b2, "carol", "carol-secret")
        # Deleted: new logins are refused on both; the quota stays.
        a2 = admin(b2)
        f = a2.alter_user_scram_credentials(
            [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)])
        f["carol"].result(timeout=15)
        assert zk_json(zk.connect, "/config/users/carol") == {
            "version": 1, "config": {"producer_byte_rate": "1024"}}
        wait_until(lambda: not scram_login(b1, "carol", "carol-secret"), 10,
                   what="carol refused at broker 1")
        assert not scram_login(b2, "carol", "carol-secret")
    finally:
        b1.stop()
        b2.stop()


def security_znodes(connect, chroot):
    """What the ACL and SCRAM commands below left under a chroot, salts aside."""
    r = ZkReader(connect)
    get = lambda p: r.get(chroot + p)  # noqa: E731
    children = lambda p: r.children(chroot + p)  # noqa: E731
    try:
        out = {"lit": json.loads(get("/kafka-acl/Topic/t1")[0]),
               "pre": json.loads(get("/kafka-acl-extended/prefixed/Topic/p-")[0]),
               "acl_types": sorted(children("/kafka-acl")),
               "pre_types": sorted(children("/kafka-acl-extended/prefixed")),
               "lit_changes": sorted(get("/kafka-acl-changes/" + c)[0].decode()
                                     for c in children("/kafka-acl-changes")),
               "pre_changes": sorted(json.dumps(json.loads(get("/kafka-acl-extended-changes/" + c)[0]),
                                                sort_keys=True)
                                     for c in children("/kafka-acl-extended-changes"))}
        user = json.loads(get("/config/users/carol")[0])
        scram = dict(kv.split("=", 1) for kv in user["config"].pop("SCRAM-SHA-512").split(","))
        out["user"] = user
        out["scram_keys"] = sorted(scram)
        out["iterations"] = scram["iterations"]
        changes = [json.loads(get("/config/changes/" + c)[0]) for c in children("/config/changes")]
        out["user_changes"] = [c for c in changes if c.get("entity_path", "").startswith("users/")]
        return out
    finally:
        r.close()


def test_zk_security_side_by_side_with_kafka_39(tmp_path, zk):
    """kafka-acls.sh and kafka-configs.sh (Kafka 3.9's own classes) against a Kafka 3.9 broker
    (chroot /kafka) and a gregor broker (chroot /gregor) leave the same znodes; then gregor
    brokers started on Kafka's chroot honour what Kafka wrote."""
    kz, cp, kafka = kafka_beside(zk, tmp_path, {"authorizer.class.name": ACL_AUTHORIZER,
                                                 "super.users": "User:ANONYMOUS"})
    kafka.start()
    g = None
    try:
        kafka.wait_started(90)
        g = start(tmp_path, zk.connect + "/gregor", 1)
        for bootstrap in (kafka.bootstrap, g.bootstrap):
            for args in (["--add", "--allow-principal", "User:alice", "--operation", "Read",
                          "--topic", "t1"],
                         ["--add", "--allow-principal", "User:bob", "--operation", "Describe",
                          "--resource-pattern-type", "prefixed", "--topic", "p-"]):
                rc, out, err = kz.run_tool(cp, "kafka.admin.AclCommand", "--bootstrap-server",
                                           bootstrap, *args)
                assert rc == 0, (bootstrap, args, out, err)
            rc, out, err = kz.run_tool(cp, "kafka.admin.ConfigCommand", "--bootstrap-server",
                                       bootstrap, "--alter", "--add-config",
                                       "SCRAM-SHA-512=[iterations=8192,password=carol-secret]",
                                       "--entity-type", "users", "--entity-name", "carol")
            assert rc == 0, (bootstrap, out, err)
        theirs = security_znodes(zk.connect, "/kafka")
        ours = security_znodes(zk.connect, "/gregor")
        assert ours == theirs
        assert theirs["iterations"] == "8192"
        # A user's last credential deleted: Kafka 3.9 deletes her node and notifies.
        after = {}
        for root, bootstrap in (("/kafka", kafka.bootstrap), ("/gregor", g.bootstrap)):
            rc, out, err = kz.run_tool(cp, "kafka.admin.ConfigCommand", "--bootstrap-server",
                                       bootstrap, "--alter", "--delete-config", "SCRAM-SHA-512",
                                       "--entity-type", "users", "--entity-name", "carol")
            assert rc == 0, (bootstrap, out, err)
            r = ZkReader(zk.connect)
            try:
                changes = [json.loads(r.get(root + "/config/changes/" + c)[0])
                           for c in sorted(r.children(root + "/config/changes"))]
                node = root + "/config/users/carol"
                after[root] = (json.loads(r.get(node)[0]) if r.exists(node) else None,
                               [c for c in changes if c.get("entity_path") == "users/carol"])
            finally:
                r.close()
        assert after["/gregor"] == after["/kafka"], after
        assert after["/kafka"][0] is None and len(after["/kafka"][1]) == 2, after
        # carol again on Kafka, for the gregor brokers below
        rc, out, err = kz.run_tool(cp, "kafka.admin.ConfigCommand", "--bootstrap-server",
                                   kafka.bootstrap, "--alter", "--add-config",
                                   "SCRAM-SHA-512=[iterations=8192,password=carol-secret]",
                                   "--entity-type", "users", "--entity-name", "carol")
        assert rc == 0, (out, err)
        g.stop()
        g = None
    finally:
        if g is not None:
            g.stop()
        kafka.stop()
    # gregor brokers on Kafka's chroot (Kafka stopped: its broker id is free).
    (tmp_path / "on-kafka").mkdir()
    b1 = start(tmp_path / "on-kafka", zk.connect + "/kafka", 1)
    try:
        admin_b = admin(b1)
        create_topics(admin_b, ["t1", "p-x", "other"])
        assert "t1" in visible_topics(b1, "alice", "alice-secret")
        assert "t1" not in visible_topics(b1, "bob", "bob-secret")
        assert "p-x" in visible_topics(b1, "bob", "bob-secret")
        assert "other" not in visible_topics(b1, "bob", "bob-secret")
        assert scram_login(b1, "carol", "carol-secret")
        assert not scram_login(b1, "carol", "wrong")
    finally:
        b1.stop()


def test_zk_change_notifications_purged_after_expiry(tmp_path, zk, monkeypatch):
    """Kafka's ZkNodeChangeNotificationListener deletes the notifications older than
    changeExpirationMs (15 minutes) each time it processes a change, for the ACL changes (both
    stores) as for /config/changes; GREGOR_TEST_CHANGE_EXPIRY_MS (tests only) makes it 3 s."""
    from confluent_kafka.admin import ConfigResource
    monkeypatch.setenv("GREGOR_TEST_CHANGE_EXPIRY_MS", "3000")
    chroot = "/purge-" + uuid.uuid4().hex[:8]
    b = start(tmp_path, zk.connect + chroot, 1)
    paths = {"lit": chroot + "/kafka-acl-changes", "ext": chroot + "/kafka-acl-extended-changes",
             "cfg": chroot + "/config/changes"}

    def now():
        return {k: set(zk_children(zk.connect, p)) for k, p in paths.items()}

    def change(lit, ext, topic):
        for f in a.create_acls([binding(lit, "User:alice"),
                                binding(ext, "User:bob", pattern="PREFIXED")]).values():
            f.result(timeout=15)
        res = ConfigResource("topic", topic, set_config={"retention.ms": "3600000"})
        for f in a.alter_configs([res]).values():
            f.result(timeout=15)

    try:
        a = admin(b)
        create_topics(a, ["t1", "t2", "t3", "t4"])
        for i in (1, 2, 3):
            change("t%d" % i, "p%d-" % i, "t%d" % i)
        old = now()
        assert (len(old["lit"]), len(old["ext"]), len(old["cfg"])) == (3, 3, 3), old
        time.sleep(4)
        assert now() == old  # past the expiry, but no change processed since
        change("t4", "p4-", "t4")

        def purged():
            cur = now()
            return all(len(cur[k]) == 1 and not (cur[k] & old[k]) for k in cur) and cur
        cur = wait_until(purged, 15, what="the expired notifications purged")
        # The newest stays: it names what the last change did.
        # ... and the ACLs themselves are untouched.
        assert sorted(zk_children(zk.connect, chroot + "/kafka-acl/Topic")) == [
            "t1", "t2", "t3", "t4"]
        r = ZkReader(zk.connect)
        try:
            (lit,) = cur["lit"]
            assert r.get(paths["lit"] + "/" + lit)[0] == b"TOPIC:t4"
            (cfg,) = cur["cfg"]
            assert json.loads(r.get(paths["cfg"] + "/" + cfg)[0]) == {
                "version": 2, "entity_path": "topics/t4"}
        finally:
            r.close()
    finally:
        b.stop()
