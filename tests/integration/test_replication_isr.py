"""The ISR and elections from it (issue 16), on 3 gregor brokers and a real ZooKeeper.

A new replicated topic's ISR: Kafka's controller writes a new partition's first state with
every live replica in the ISR
(initializeLeaderAndIsrForPartitions: a new partition is empty on all of them), so an RF 3
topic's ISR is full as soon as CreateTopics is answered; gregor wrote ISR [leader] and waited
for each follower's first fetch (0.6-1.5 s here), which a kill of the leader in that window
turned into an offline partition.

unclean.leader.election.enable as the controller reads it at the election: the topic's
override, else the dynamic broker configs (the cluster default), else the static one."""
import json
import os
import subprocess
import time

import pytest

from conftest import ROOT
from zk_fixture import ZkReader, start_brokers, wait_until, zookeeper_available
from zk_fixture import zookeeper  # noqa: F401 (the module's ZooKeeper fixture)

if not zookeeper_available():
    pytest.fail("Debian's zookeeper package (java + jars) is not installed: make test-deps "
                "installs it", pytrace=False)

CHROOT = "/replication-isr"
PARTITIONS = 12
TRIES = 3
# The old code's best of 3 tries was 0.61 s on an idle machine (1.5 s typical); the ISR is in
# the very first state znode now, read here within a few ms.
ISR_FULL_BOUND_S = 0.5


def test_new_rf3_topic_isr_full_from_its_first_state(tmp_path, zookeeper):
    from confluent_kafka.admin import AdminClient, NewTopic
    brokers = start_brokers(tmp_path, zookeeper.connect + CHROOT)
    r = ZkReader(zookeeper.connect)
    try:
        def states(name):
            return [(json.loads(d), stat) for d, stat in
                    (r.get("%s/brokers/topics/%s/partitions/%d/state" % (CHROOT, name, p))
                     for p in range(PARTITIONS))]
        took = []
        for k in range(TRIES):
            name = "isr-%d" % k
            admin = AdminClient({"bootstrap.servers": brokers[k % 3].bootstrap})
            admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=3)],
                                request_timeout=20)[name].result(timeout=30)
            answered = time.monotonic()
            wait_until(lambda: all(len(st["isr"]) == 3 for st, _ in states(name)), 20,
                       interval=0.01, what="the ISR of every partition of %s full" % name)
            took.append(time.monotonic() - answered)
            assignment = json.loads(r.get("%s/brokers/topics/%s" % (CHROOT, name))[0])["partitions"]
            for p, (st, stat) in enumerate(states(name)):
                # The controller's first write (version 0, epoch 0): the assignment's replicas
                # all in sync, the first of them leading.
                assert stat["version"] == 0 and st["leader_epoch"] == 0, (p, st, stat)
                assert st["isr"] == assignment[str(p)] and st["leader"] == st["isr"][0], (p, st)
        print("ISR of %d partitions full after CreateTopics' answer: %s s"
              % (PARTITIONS, ", ".join("%.3f" % s for s in took)))
        assert min(took) < ISR_FULL_BOUND_S, took
    finally:
        r.close()
        for b in brokers:
            try:
                b.stop()
            except Exception:
                pass


def kafka_configs(b, *args):
    r = subprocess.run([os.path.join(ROOT, "bin", "kafka-configs.sh"), "--bootstrap-server",
                        b.bootstrap] + list(args), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_unclean_election_follows_the_dynamic_cluster_default(tmp_path, zookeeper):
    """The leader of an RF 3 topic dies while its followers lag (out of the ISR), unclean
    election off: offline. The cluster default (kafka-configs --entity-default, written to
    /config/brokers/<default>) set to true while the topic's own override says false: still
    offline (the topic's wins, as Kafka's LogConfig); the override deleted: the controller
    elects a lagging survivor at once, no restart. gregor's controller took the broker value
    from its startup config only, so the partition stayed offline until a restart."""
    from test_replication_failover import (FAST_STOP, by_id, create_topic,
                                           lag_followers_then_kill_leader, metadata, start,
                                           state_of, wait_unclean_leader)
    chroot = "/isr-unclean"
    brokers = start(tmp_path, zookeeper, chroot, dict(FAST_STOP, **{"replica.lag.time.max.ms": 1000}))
    try:
        create_topic(brokers[0], "ud", 1, {"unclean.leader.election.enable": "false"})
        ids = by_id(brokers)
        lid = wait_until(lambda: state_of(zookeeper, chroot, "ud", 0)[0]["leader"] + 1, 15,
                         what="a leader") - 1
        replicas = sorted(ids)
        survivors, off, _ = lag_followers_then_kill_leader(zookeeper, chroot, "ud", ids, lid,
                                                           replicas)
        kafka_configs(survivors[0], "--entity-type", "brokers", "--entity-default", "--alter",
                      "--add-config", "unclean.leader.election.enable=true")
        time.sleep(2.0)  # the notification read by every broker (well under a second here)
        assert state_of(zookeeper, chroot, "ud", 0)[0] == off  # the topic's false wins
        assert metadata(survivors[0], "ud")[0][0] == -1
        kafka_configs(survivors[0], "--entity-type", "topics", "--entity-name", "ud", "--alter",
                      "--delete-config", "unclean.leader.election.enable")
        t0 = time.time()
        wait_unclean_leader(zookeeper, chroot, "ud", survivors, off,
                            "an unclean election by the cluster default", interval=0.05)
        print("unclean election %.2f s after the topic's override was deleted (cluster default "
              "true)" % (time.time() - t0))
    finally:
        for b in brokers:
            try:
                b.stop()
            except Exception:
                pass
