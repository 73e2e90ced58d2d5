"""Client quotas on ZooKeeper (issue 19), where Kafka 3.9's ZooKeeper mode keeps them:
/config/users/<sanitized user>, /config/clients/<sanitized client id>,
/config/users/<u>/clients/<c> (<default> for the default entities) with a /config/changes
notification. AlterClientQuotas through one broker (raw wire, or Kafka's kafka-configs.sh), then
described and enforced by another; a restarted broker keeps them; SCRAM credentials in the same
user's config map survive quota changes and the other way round; the znodes equal Kafka 3.9's for
the same kafka-configs.sh commands."""
import json
import socket
import time
import uuid

import pytest

from conftest import Broker, free_port
from kafka_wire import record_batch
from test_quotas import (_alter, create_topic, describe, fetch_v4, ok, produce_frame, read_produce,
                         set_quota, throttled_requests, throttles_in_a_row)
from zk_fixture import ZkReader, kafka_beside, wait_until, zk, zookeeper_available  # noqa: F401 (zk)

pytestmark = pytest.mark.skipif(not zookeeper_available(), reason="ZooKeeper is not installed")

SCRAM_JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required;'
WINDOWS = {"quota.window.num": "3", "quota.window.size.seconds": "1"}


def start(tmp_path, connect, bid):
    port, sasl_port = free_port(), free_port()
    o = {"broker.id": bid, "zookeeper.connect": connect,
         "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl_port),
         "sasl.enabled.mechanisms": "SCRAM-SHA-512",
         "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM_JAAS}
    o.update(WINDOWS)
    b = Broker(str(tmp_path / ("data%d" % bid)), port=port, overrides=o)
    b.sasl_port = sasl_port
    b.start()
    return b


def zk_get(connect, path):
    r = ZkReader(connect)
    try:
        data, _ = r.get(path)
        return None if data is None else json.loads(data)
    except Exception:
        return None
    finally:
        r.close()


def zk_changes(connect, chroot=""):
    r = ZkReader(connect)
    try:
        return [json.loads(r.get(chroot + "/config/changes/" + c)[0])
                for c in r.children(chroot + "/config/changes")]
    finally:
        r.close()


def everything(bootstrap):
    code, msg, got = describe(bootstrap, [], False)
    assert code == 0, msg
    return got


def alter(bootstrap, entity, *ops):
    ok(_alter(bootstrap, [(entity, [(k, 0.0 if v is None else v, v is None) for k, v in ops])], False, 1))


def throttles_of(bootstrap, topic, client_id, seconds):
    host, port = bootstrap.split(":")
    batch = record_batch([b"x" * 20000] * 5)
    out = []
    with socket.create_connection((host, int(port)), timeout=30) as s:
        corr, end = 0, time.time() + seconds
        while time.time() < end:
            corr += 1
            s.sendall(produce_frame(topic, batch, corr, client_id))
            got, throttle, data = read_produce(s)
            assert got == corr
            out.append(throttle)
    return out


def create_topic_on(b, topic, broker_id):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[broker_id]])])[topic].result(30)


EXPECTED = {
    (("user", "alice"),): {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0},
    (("client-id", "slow"),): {"producer_byte_rate": 100000.0},
    (("client-id", "c/1 x"),): {"request_percentage": 12.5},
    (("client-id", "c1"), ("user", "alice")): {"producer_byte_rate": 4096.0},
    (("client-id", None), ("user", "alice")): {"request_percentage": 50.0},
    (("user", None),): {"consumer_byte_rate": 1e7},
    (("client-id", None), ("user", None)): {"producer_byte_rate": 5000.0},
    (("client-id", None),): {"producer_byte_rate": 9000.0},
    (("ip", "10.1.2.3"),): {"connection_creation_rate": 5.0},
}


def test_zk_quotas_set_on_one_broker_followed_by_another_and_after_restart(tmp_path, zk):
    b1 = start(tmp_path, zk.connect, 1)
    b2 = start(tmp_path, zk.connect, 2)
    try:
        alter(b1.bootstrap, [("user", "alice")], ("producer_byte_rate", 1024),
              ("consumer_byte_rate", 2048))
        alter(b1.bootstrap, [("client-id", "slow")], ("producer_byte_rate", 100000))
        alter(b1.bootstrap, [("client-id", "c/1 x")], ("request_percentage", 12.5))
        alter(b1.bootstrap, [("user", "alice"), ("client-id", "c1")], ("producer_byte_rate", 4096))
        alter(b1.bootstrap, [("user", "alice"), ("client-id", None)], ("request_percentage", 50))
        alter(b1.bootstrap, [("user", None)], ("consumer_byte_rate", 1e7))
        alter(b1.bootstrap, [("user", None), ("client-id", None)], ("producer_byte_rate", 5000))
        alter(b1.bootstrap, [("client-id", None)], ("producer_byte_rate", 9000))
        alter(b1.bootstrap, [("ip", "10.1.2.3")], ("connection_creation_rate", 5))
        # Kafka's znodes (values as ZkAdminManager writes them), answered after the write.
        assert zk_get(zk.connect, "/config/users/alice") == {
            "version": 1, "config": {"producer_byte_rate": "1024", "consumer_byte_rate": "2048"}}
        assert zk_get(zk.connect, "/config/clients/c%2F1%20x") == {
            "version": 1, "config": {"request_percentage": "12.5"}}
        assert zk_get(zk.connect, "/config/users/alice/clients/c1") == {
            "version": 1, "config": {"producer_byte_rate": "4096"}}
        assert zk_get(zk.connect, "/config/users/alice/clients/<default>") == {
            "version": 1, "config": {"request_percentage": "50.0"}}
        assert zk_get(zk.connect, "/config/users/<default>") == {
            "version": 1, "config": {"consumer_byte_rate": "10000000"}}
        assert zk_get(zk.connect, "/config/users/<default>/clients/<default>") == {
            "version": 1, "config": {"producer_byte_rate": "5000"}}
        assert zk_get(zk.connect, "/config/clients/<default>") == {
            "version": 1, "config": {"producer_byte_rate": "9000"}}
        assert zk_get(zk.connect, "/config/ips/10.1.2.3") == {
            "version": 1, "config": {"connection_creation_rate": "5"}}
        paths = {c["entity_path"] for c in zk_changes(zk.connect)}
        assert {"users/alice", "clients/slow", "clients/c%2F1%20x", "users/alice/clients/c1",
                "users/alice/clients/<default>", "users/<default>",
                "users/<default>/clients/<default>", "clients/<default>"} <= paths
        # The local file is not used in a cluster.
        assert not (tmp_path / "data1" / "client-quotas").exists()
        assert everything(b1.bootstrap) == EXPECTED
        wait_until(lambda: everything(b2.bootstrap) == EXPECTED, 15,
                   what="broker 2 describes the quotas set through broker 1")
        # Enforced by broker 2: client "slow" over 100 kB/s is throttled, "fast" is not.
        topic = "zq-" + uuid.uuid4().hex[:8]
        create_topic_on(b1, topic, 2)
        slow = throttles_of(b2.bootstrap, topic, b"slow", 4)
        assert any(t > 0 for t in slow), slow
        # A removal on broker 1 is followed on broker 2 (the other key stays).
        alter(b1.bootstrap, [("user", "alice")], ("producer_byte_rate", None))
        assert zk_get(zk.connect, "/config/users/alice") == {
            "version": 1, "config": {"consumer_byte_rate": "2048"}}
        expected = dict(EXPECTED)
        expected[(("user", "alice"),)] = {"consumer_byte_rate": 2048.0}
        wait_until(lambda: everything(b2.bootstrap) == expected, 15,
                   what="broker 2 drops alice's producer_byte_rate")
        # Broker 2 restarted reads every entity, the nested users/<u>/clients/<c> too.
        b2.stop()
        b2.start()
        assert everything(b2.bootstrap) == expected
        # Every key of an entity removed: it describes nothing anywhere.
        alter(b2.bootstrap, [("client-id", "slow")], ("producer_byte_rate", None))
        del expected[(("client-id", "slow"),)]
        assert everything(b2.bootstrap) == expected
        wait_until(lambda: everything(b1.bootstrap) == expected, 15,
                   what="broker 1 drops client slow")
    finally:
        b1.stop()
        b2.stop()


def scram_login(b, user, password):
    from confluent_kafka.admin import AdminClient
    try:
        AdminClient({"bootstrap.servers": "127.0.0.1:%d" % b.sasl_port,
                     "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                     "sasl.username": user, "sasl.password": password}).list_topics(timeout=10)
        return True
    except Exception:
        return False


def test_zk_quota_and_scram_credential_of_one_user_keep_each_other(tmp_path, zk):
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    b1 = start(tmp_path, zk.connect, 1)
    b2 = start(tmp_path, zk.connect, 2)
    try:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
        a = AdminClient({"bootstrap.servers": b1.bootstrap})
        a.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("carol", info, b"carol-secret")])["carol"].result(15)
        alter(b2.bootstrap, [("user", "carol")], ("producer_byte_rate", 3000))
        cfg = zk_get(zk.connect, "/config/users/carol")["config"]
        assert sorted(cfg) == ["SCRAM-SHA-512", "producer_byte_rate"]
        assert cfg["producer_byte_rate"] == "3000"
        wait_until(lambda: scram_login(b1, "carol", "carol-secret"), 10, what="login at 1")
        assert scram_login(b2, "carol", "carol-secret")
        # The credential changed: the quota stays, on both brokers.
        a.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("carol", info, b"new-secret")])["carol"].result(15)
        cfg = zk_get(zk.connect, "/config/users/carol")["config"]
        assert cfg["producer_byte_rate"] == "3000" and "SCRAM-SHA-512" in cfg
        want = {(("user", "carol"),): {"producer_byte_rate": 3000.0}}
        for b in (b1, b2):
            wait_until(lambda: everything(b.bootstrap) == want, 10, what="quota kept")
        # The quota removed: the credential stays.
        alter(b1.bootstrap, [("user", "carol")], ("producer_byte_rate", None))
        assert sorted(zk_get(zk.connect, "/config/users/carol")["config"]) == ["SCRAM-SHA-512"]
        for b in (b1, b2):
            wait_until(lambda: everything(b.bootstrap) == {}, 10, what="quota removed")
        wait_until(lambda: scram_login(b2, "carol", "new-secret"), 10, what="login at 2")
        assert scram_login(b1, "carol", "new-secret")
        assert not scram_login(b1, "carol", "carol-secret")
    finally:
        b1.stop()
        b2.stop()


COMMANDS = [
    ["--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048",
     "--entity-type", "users", "--entity-name", "alice"],
    ["--add-config", "request_percentage=12.5", "--entity-type", "users", "--entity-name", "alice",
     "--entity-type", "clients", "--entity-name", "c/1 x"],
    ["--add-config", "request_percentage=50", "--entity-type", "users", "--entity-default",
     "--entity-type", "clients", "--entity-default"],
    ["--add-config", "consumer_byte_rate=10000000", "--entity-type", "users", "--entity-default"],
    ["--add-config", "producer_byte_rate=9000,request_percentage=0.5",
     "--entity-type", "clients", "--entity-default"],
    ["--add-config", "producer_byte_rate=77", "--entity-type", "clients", "--entity-name", "c*+"],
    ["--delete-config", "consumer_byte_rate", "--entity-type", "users", "--entity-name", "alice"],
    ["--delete-config", "producer_byte_rate", "--entity-type", "clients", "--entity-name", "c*+"],
    # users/bob exists only for its clients: both go with the last key (tryCleanQuotaNodes);
    # users/<default> keeps its config, only its clients node goes.
    ["--add-config", "producer_byte_rate=1", "--entity-type", "users", "--entity-name", "bob",
     "--entity-type", "clients", "--entity-name", "c2"],
    ["--delete-config", "producer_byte_rate", "--entity-type", "users", "--entity-name", "bob",
     "--entity-type", "clients", "--entity-name", "c2"],
    ["--add-config", "producer_byte_rate=2", "--entity-type", "users", "--entity-default",
     "--entity-type", "clients", "--entity-name", "c3"],
    ["--delete-config", "producer_byte_rate", "--entity-type", "users", "--entity-default",
     "--entity-type", "clients", "--entity-name", "c3"],
    # a user with clients keeps an empty config node
    ["--add-config", "producer_byte_rate=3", "--entity-type", "users", "--entity-name", "dave"],
    ["--add-config", "producer_byte_rate=4", "--entity-type", "users", "--entity-name", "dave",
     "--entity-type", "clients", "--entity-name", "c4"],
    ["--delete-config", "producer_byte_rate", "--entity-type", "users", "--entity-name", "dave"],
]


def quota_znodes(connect, chroot):
    r = ZkReader(connect)
    out = {}
    try:
        out["users"] = sorted(r.children(chroot + "/config/users"))
        out["clients"] = sorted(r.children(chroot + "/config/clients"))
        for t in ("users", "clients"):
            for n in r.children(chroot + "/config/" + t):
                p = "/config/%s/%s" % (t, n)
                data = r.get(chroot + p)[0]
                out[p] = json.loads(data) if data else None
                if t == "users":
                    out[p + "/"] = sorted(r.children(chroot + p))
                    cs = r.children(chroot + p + "/clients") if "clients" in out[p + "/"] else []
                    for c in cs:
                        out[p + "/clients/" + c] = json.loads(r.get(chroot + p + "/clients/" + c)[0])
        changes = [json.loads(r.get(chroot + "/config/changes/" + c)[0])
                   for c in sorted(r.children(chroot + "/config/changes"))]
        out["changes"] = [c for c in changes
                          if c.get("entity_path", "").split("/")[0] in ("users", "clients")]
        return out
    finally:
        r.close()


def test_zk_quota_znodes_side_by_side_with_kafka_39(tmp_path, zk):
    """kafka-configs.sh (Kafka 3.9's ConfigCommand) against a Kafka 3.9 broker (chroot /kafka)
    and a gregor broker (chroot /gregor) leaves the same znodes and notifications."""
    kz, cp, kafka = kafka_beside(zk, tmp_path)
    kafka.start()
    g = None
    try:
        kafka.wait_started(90)
        g = start(tmp_path, zk.connect + "/gregor", 1)
        for bootstrap in (kafka.bootstrap, g.bootstrap):
            for args in COMMANDS:
                rc, out, err = kz.run_tool(cp, "kafka.admin.ConfigCommand", "--bootstrap-server",
                                           bootstrap, "--alter", *args)
                assert rc == 0, (bootstrap, args, out, err)
        theirs = quota_znodes(zk.connect, "/kafka")
        ours = quota_znodes(zk.connect, "/gregor")
        assert ours == theirs
        assert theirs["/config/users/<default>"]["config"] == {"consumer_byte_rate": "10000000"}
        # gregor restarted on Kafka's znodes describes what Kafka describes.
        want = everything(kafka.bootstrap)
        assert want
        g.stop()
        g = None
        kafka.stop()
        (tmp_path / "on-kafka").mkdir()
        g = start(tmp_path / "on-kafka", zk.connect + "/kafka", 1)
        assert everything(g.bootstrap) == want
    finally:
        if g is not None:
            g.stop()
        kafka.stop()


def quota_observations(bootstrap):
    """What a request quota and a consumer_byte_rate do on the wire: the throttle of each
    answer in a row of Metadata/ListOffsets/OffsetCommit/DescribeGroups over
    request_percentage, and the record bytes of a capped consumer's first fetch."""
    topic = "q-" + uuid.uuid4().hex[:8]
    create_topic(bootstrap, topic)
    host, port = bootstrap.split(":")
    batch = record_batch([b"v" * 1000] * 9)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        for corr in range(1, 41):
            s.sendall(produce_frame(topic, batch, corr, b"writer"))
            assert read_produce(s)[0] == corr
    set_quota(bootstrap, [("client-id", "capped")], "consumer_byte_rate", 20000)
    set_quota(bootstrap, [("client-id", "busy")], "request_percentage", 1e-7)
    requests = throttled_requests(topic, "g-" + uuid.uuid4().hex[:8])
    # Kafka applies a quota when its config-change notification comes back (the later one
    # applied: the earlier too).
    assert wait_until(lambda: throttles_in_a_row(bootstrap, requests[:1], b"busy", 1)[0][1] > 0,
                      30)
    time.sleep(1.2)  # past the probe's mute
    seen = throttles_in_a_row(bootstrap, requests, b"busy", rounds=1)
    # Kafka cuts the log at the cap, a partial last batch included, so that its whole response
    # is a little over the window and answered throttled and empty until the measured window
    # widens past num - 1 windows: fetched again after the mute (bounded).
    for attempt in range(5):
        with socket.create_connection((host, int(port)), timeout=30) as s:
            throttle, err, records = fetch_v4(s, topic, 0, 1, b"capped")
        if records is not None:
            break
        time.sleep(throttle / 1000.0 + 1.0)
    return seen, (err, None if records is None else len(records)), len(batch)


def test_quota_throttles_and_fetch_cap_side_by_side_with_kafka_39(tmp_path, zk):
    """The same wire scenario against Kafka 3.9 and gregor: a request quota's throttle in each
    response (at most one 1 s window) and the connection muted that long; a capped consumer's
    fetch cut to whole batches within consumer_byte_rate x (quota.window.num - 1) x 1 s."""
    kz, cp, kafka = kafka_beside(zk, tmp_path, dict(WINDOWS))
    kafka.start()
    g = None
    try:
        kafka.wait_started(90)
        g = start(tmp_path, zk.connect + "/gregor", 1)
        theirs = quota_observations(kafka.bootstrap)
        ours = quota_observations(g.bootstrap)
        for seen, fetched, batch_len in (theirs, ours):
            assert [a for a, _, _, _ in seen] == [3, 2, 8, 15]
            assert all(0 < t <= 1000 for _, t, _, _ in seen), seen
            assert all(gap >= prev / 1000.0 - 0.1 for _, _, gap, prev in seen[1:]), seen
            # Cut at the window's 40000 bytes: gregor at the last whole batch, Kafka within it.
            assert fetched[0] == 0 and 40000 - batch_len < fetched[1] <= 40000, fetched
    finally:
        if g is not None:
            g.stop()
        kafka.stop()
