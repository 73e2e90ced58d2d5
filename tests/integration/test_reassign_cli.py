"""kafka-reassign-partitions.sh (gregor reassign-partitions) beside Kafka 3.9.1's own
ReassignPartitionsCommand (run from Maven's jars, tests/kafka_harness/kafka_zk.py).

Without a broker: bad JSON files, bad options and bad broker lists give the same first line
(Kafka follows it with a Java stack trace, gregor does not) and the same exit code.

Against a cluster of three brokers on one ZooKeeper (the `target` fixture: Kafka 3.9.1 in
ZooKeeper mode, and gregor brokers, with replication throttles; the tests that need
AlterPartitionReassignments check that ApiVersions lists it): --generate, --list, --execute
(with --throttle), --verify, --cancel by both tools on the same cluster, each on its own topic of the
same layout; outputs compared after the topic name is normalized. --generate's proposal is random in Kafka (a random first
broker and shift): both tools' proposals are checked to be outputs of Kafka's algorithm."""
import concurrent.futures
import itertools
import json
import os
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from conftest import GREGOR, ROOT, free_port
from zk_fixture import ZooKeeperServer, start_brokers, wait_until, zookeeper_available

sys.path.insert(0, os.path.join(ROOT, "tests", "kafka_harness"))
from cluster_wire import metadata_v12  # noqa: E402
from kafka_zk import KafkaZkBroker, kafka_classpath, run_tool  # noqa: E402

if not zookeeper_available() or shutil.which("mvn") is None:
    pytest.fail("java, maven and Debian's zookeeper package are needed: make test-deps installs "
                "them", pytrace=False)

TOOL = os.path.join(ROOT, "bin", "kafka-reassign-partitions.sh")
# The tool's binary; GREGOR_BIN stays the brokers' (set both to try one build's tool against
# another build's brokers).
TOOL_BIN = os.environ.get("GREGOR_CLI_BIN", GREGOR)
KAFKA_CLASS = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
IDS = (1, 2, 3)
RACKS = {1: "r1", 2: "r2", 3: "r1"}  # the Kafka target's broker.rack (gregor has none)
NOWHERE = "127.0.0.1:1"  # a bootstrap that refuses: the checks before any request


@pytest.fixture(scope="module")
def classpath():
    return kafka_classpath()


def ours(*args, timeout=90):
    p = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, GREGOR_BIN=TOOL_BIN))
    return p.returncode, p.stdout, p.stderr


def kafkas(classpath, *args, timeout=120):
    return run_tool(classpath, KAFKA_CLASS, *args, timeout=timeout)


def java_free(stdout):
    """Kafka's stdout without the stack trace it prints after an "Error: " line (the lines
    of the exception's class and its frames)."""
    out = []
    for line in stdout.splitlines():
        if line.startswith("\tat ") or line.startswith("\t... ") or \
                line.startswith("Caused by: ") or line.startswith("org.apache.kafka.") or \
                line.startswith("com.fasterxml.") or line.startswith("java."):
            break
        out.append(line)
    return "\n".join(out).rstrip("\n")


# ---- without a broker ----

BAD_REASSIGNMENTS = {
    "not-json": "not json",
    "trailing-comma": '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],}]}',
    "unterminated": '{"version":1,"partitions":[',
    "missing-colon": '{"version" 1}',
    "array-root": "[1,2]",
    "no-topic": '{"version":1,"partitions":[{"partition":0,"replicas":[1]}]}',
    "no-replicas": '{"version":1,"partitions":[{"topic":"t","partition":0}]}',
    "version-2": '{"version":2,"partitions":[]}',
    "version-string": '{"version":"1","partitions":[]}',
    "empty-list": '{"version":1,"partitions":[]}',
    "no-partitions": '{"version":1}',
    "partition-string": '{"version":1,"partitions":[{"topic":"t","partition":"x","replicas":[1]}]}',
    "partition-float": '{"version":1,"partitions":[{"topic":"t","partition":1.5,"replicas":[1]}]}',
    "partition-long": '{"version":1,"partitions":[{"topic":"t","partition":4294967296,'
                      '"replicas":[1]}]}',
    "replicas-object": '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":{"a":1}}]}',
    "topic-number": '{"version":1,"partitions":[{"topic":7,"partition":0,"replicas":[1]}]}',
    "partitions-object": '{"version":1,"partitions":{"topic":"t"}}',
    "empty-replicas": '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}',
    "duplicate-replicas": '{"version":1,"partitions":[{"topic":"t","partition":0,'
                          '"replicas":[1,2,1,2,3]},{"topic":"u","partition":1,"replicas":[4,4]}]}',
    "duplicate-partitions": '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},'
                            '{"topic":"t","partition":0,"replicas":[2]},'
                            '{"topic":"a","partition":3,"replicas":[2]},'
                            '{"topic":"a","partition":3,"replicas":[2]}]}',
    "log-dirs-size": '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],'
                     '"log_dirs":["any"]}]}',
    "log-dirs-not-strings": '{"version":1,"partitions":[{"topic":"t","partition":0,'
                            '"replicas":[1],"log_dirs":[1]}]}',
}

BAD_TOPICS = {
    "not-json": "{nope",
    "array-root": '["a"]',
    "duplicates": '{"topics":[{"topic":"b"},{"topic":"a"},{"topic":"b"},{"topic":"a"}],'
                  '"version":1}',
    "no-topic-field": '{"topics":[{"name":"a"}],"version":1}',
    "version-3": '{"topics":[],"version":3}',
}

BAD_BROKER_LISTS = ["1,x", "1,1,2,2", "", "1,,2", "99999999999"]


def pure_cases(tmp):
    """(name, args) of every case without a broker."""
    cases = []
    for name, text in sorted(BAD_REASSIGNMENTS.items()):
        path = os.path.join(tmp, "r-%s.json" % name)
        with open(path, "w") as f:
            f.write(text + "\n")
        cases.append(("execute " + name, ["--bootstrap-server", NOWHERE, "--execute",
                                          "--reassignment-json-file", path]))
    for name, text in sorted(BAD_TOPICS.items()):
        path = os.path.join(tmp, "t-%s.json" % name)
        with open(path, "w") as f:
            f.write(text + "\n")
        cases.append(("generate " + name, ["--bootstrap-server", NOWHERE, "--generate",
                                           "--topics-to-move-json-file", path,
                                           "--broker-list", "1,2"]))
    empty = os.path.join(tmp, "empty.json")
    open(empty, "w").close()
    for name, path in (("empty file", empty), ("missing file", os.path.join(tmp, "none.json"))):
        cases.append(("execute " + name, ["--bootstrap-server", NOWHERE, "--execute",
                                          "--reassignment-json-file", path]))
        cases.append(("generate " + name, ["--bootstrap-server", NOWHERE, "--generate",
                                           "--topics-to-move-json-file", path,
                                           "--broker-list", "1,2"]))
    good = os.path.join(tmp, "t-good.json")
    with open(good, "w") as f:
        f.write('{"topics":[{"topic":"a"}],"version":1}')
    for bl in BAD_BROKER_LISTS:
        cases.append(("broker-list %r" % bl, ["--bootstrap-server", NOWHERE, "--generate",
                                              "--topics-to-move-json-file", good,
                                              "--broker-list", bl]))
    return cases


USAGE_CASES = {
    "no action": ["--bootstrap-server", NOWHERE],
    "two actions": ["--bootstrap-server", NOWHERE, "--list", "--verify"],
    "no bootstrap": ["--list"],
    "execute without file": ["--bootstrap-server", NOWHERE, "--execute"],
    "generate without broker list": ["--bootstrap-server", NOWHERE, "--generate",
                                     "--topics-to-move-json-file", "/dev/null"],
    "throttle with list": ["--bootstrap-server", NOWHERE, "--list", "--throttle", "5"],
    "broker-list with execute": ["--bootstrap-server", NOWHERE, "--execute",
                                 "--reassignment-json-file", "/dev/null", "--broker-list", "1"],
}


@pytest.fixture(scope="module")
def pure_results(classpath, tmp_path_factory):
    """Both tools on every broker-less case; Kafka's JVMs two at a time."""
    tmp = str(tmp_path_factory.mktemp("reassign-pure"))
    cases = pure_cases(tmp) + [("usage " + k, v) for k, v in sorted(USAGE_CASES.items())]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        theirs = dict(zip([c[0] for c in cases],
                          pool.map(lambda c: kafkas(classpath, *c[1]), cases)))
    return {name: (ours(*args), theirs[name]) for name, args in cases}


def test_bad_files_and_broker_lists_same_error_as_kafka(pure_results):
    diffs = []
    checked = 0
    for name, ((rc, out, err), (krc, kout, kerr)) in sorted(pure_results.items()):
        if name.startswith("usage "):
            continue
        checked += 1
        if (rc, out.rstrip("\n")) != (krc, java_free(kout)):
            diffs.append("%s:\n  gregor (%d) %r\n  kafka  (%d) %r" % (name, rc, out, krc,
                                                                       java_free(kout)))
    assert checked == len(BAD_REASSIGNMENTS) + len(BAD_TOPICS) + len(BAD_BROKER_LISTS) + 4
    assert not diffs, "\n".join(diffs)


def test_usage_errors_same_message_and_exit_code_as_kafka(pure_results):
    diffs = []
    for name in USAGE_CASES:
        (rc, out, err), (krc, kout, kerr) = pure_results["usage " + name]
        # Both print the reason, then the option table, on stderr; nothing on stdout.
        first, kfirst = err.splitlines()[0], kerr.splitlines()[0]
        if (rc, out, first) != (krc, kout, kfirst) or rc != 1:
            diffs.append("%s:\n  gregor (%d) %r %r\n  kafka  (%d) %r %r"
                         % (name, rc, out, first, krc, kout, kfirst))
    assert not diffs, "\n".join(diffs)


def test_log_dir_moves_refused_before_any_request(tmp_path):
    """gregor moves no replica between a broker's log directories: such a file is refused with
    a reason and exit code 1 before any request (the bootstrap does not even answer)."""
    path = tmp_path / "dirs.json"
    path.write_text('{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],'
                    '"log_dirs":["any","/data/b"]}]}')
    for action in ("--execute", "--verify", "--cancel"):
        rc, out, _ = ours("--bootstrap-server", NOWHERE, action, "--reassignment-json-file",
                          str(path))
        assert rc == 1, (action, out)
        assert out.startswith("Error: Moving replicas between log directories is not supported")
        assert "partition t-0, broker 2, log dir /data/b" in out


# ---- Kafka's assignment algorithm, for checking --generate's proposals ----

def replica_index(first, shift, k, n):
    return (first + 1 + (shift + k) % (n - 1)) % n


def kafka_assignments(broker_list, nparts, rf):
    """Every proposal AdminUtils.assignReplicasToBrokers (rack unaware) can make over this
    broker order, one per (start index, shift)."""
    n = len(broker_list)
    out = []
    for start in range(n):
        for shift0 in range(n):
            shift, res = shift0, {}
            for p in range(nparts):
                if p > 0 and p % n == 0:
                    shift += 1
                first = (p + start) % n
                res[p] = [broker_list[first]] + [broker_list[replica_index(first, shift, j, n)]
                                                 for j in range(rf - 1)]
            out.append(res)
    return out


def kafka_rack_assignments(racks, nparts, rf):
    """Every proposal of AdminUtils' rack-aware assignment for brokers {id: rack}: over the
    rack-alternated broker list (racks sorted, each rack's brokers sorted, one of each rack in
    turn), skipping a broker whose rack already has a replica while some rack has none, or
    which has one while some broker has none."""
    names = sorted(set(racks.values()))
    members = {r: sorted(b for b in racks if racks[b] == r) for r in names}
    arranged, taken, r = [], {x: 0 for x in names}, 0
    while len(arranged) < len(racks):
        if taken[names[r]] < len(members[names[r]]):
            arranged.append(members[names[r]][taken[names[r]]])
            taken[names[r]] += 1
        r = (r + 1) % len(names)
    n, nracks, out = len(arranged), len(names), []
    for start in range(n):
        for shift0 in range(n):
            shift, res = shift0, {}
            for p in range(nparts):
                if p > 0 and p % n == 0:
                    shift += 1
                first = (p + start) % n
                reps, k = [arranged[first]], 0
                while len(reps) < rf:
                    b = arranged[replica_index(first, shift * nracks, k, n)]
                    k += 1
                    used = {racks[x] for x in reps}
                    if (racks[b] not in used or len(used) == nracks) and \
                            (b not in reps or len(reps) == n):
                        reps.append(b)
                res[p] = reps
            out.append(res)
    return out


def is_kafka_proposal(proposal, brokers, nparts, rf, racks=None):
    if racks:
        return proposal in kafka_rack_assignments({b: racks[b] for b in brokers}, nparts, rf)
    return is_kafka_proposal_unaware(proposal, brokers, nparts, rf)


def is_kafka_proposal_unaware(proposal, brokers, nparts, rf):
    """proposal {partition: replicas} is one Kafka's algorithm makes for some order of the
    brokers (the order the cluster lists them in is not specified)."""
    for order in itertools.permutations(sorted(brokers)):
        if proposal in kafka_assignments(list(order), nparts, rf):
            return True
    return False


def test_kafka_algorithm_helper_matches_kafkas_documented_example():
    # AdminUtils' javadoc: 5 brokers, 10 partitions, 3 replicas, start 0 and shift 0.
    res = kafka_assignments([0, 1, 2, 3, 4], 10, 3)[0]
    assert res[0] == [0, 1, 2] and res[5] == [0, 2, 3] and res[4] == [4, 0, 1]
    # Its rack-aware example: 0 -> rack1, 1 -> rack3, 2 -> rack3, 3 -> rack2, 4 -> rack2,
    # 5 -> rack1 alternate as 0, 3, 1, 5, 4, 2; 6 partitions, 3 replicas, start 0, shift 0.
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    res = kafka_rack_assignments(racks, 7, 3)[0]
    assert [res[p] for p in range(6)] == [[0, 3, 1], [3, 1, 5], [1, 5, 4], [5, 4, 2],
                                          [4, 2, 0], [2, 0, 3]]
    assert res[6] == [0, 4, 2]


# ---- against a cluster ----

def api_versions(bootstrap):
    """ApiVersions v0: {api key: (min, max)}."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        body = struct.pack(">hhih", 18, 0, 7, 4) + b"test"
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        data = s.recv(size, socket.MSG_WAITALL)
    err, n = struct.unpack(">hi", data[4:10])
    assert err == 0
    return {k: (lo, hi) for k, lo, hi in struct.iter_unpack(">hhh", data[10:10 + 6 * n])}


class Target:
    def __init__(self, kind, brokers, classpath, racks):
        self.kind, self.brokers, self.classpath = kind, brokers, classpath
        self.racks = racks  # {broker id: rack} when the brokers have broker.rack

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def need_reassignment_apis(self):
        """The brokers list AlterPartitionReassignments (45) and ListPartitionReassignments
        (46) in ApiVersions."""
        served = api_versions(self.brokers[0].bootstrap)
        assert 45 in served and 46 in served, "%s brokers do not serve the reassignment APIs" \
            % self.kind

    def admin(self):
        """One client for the target's life (a future outlives no destroyed client)."""
        from confluent_kafka.admin import AdminClient
        if getattr(self, "_admin", None) is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create(self, topic, assignment):
        from confluent_kafka.admin import NewTopic
        fs = self.admin().create_topics([NewTopic(topic, num_partitions=len(assignment),
                                                   replica_assignment=assignment)])
        fs[topic].result(60)

        def leaders():
            """Every broker (each tool may ask another) has the leaders and full ISRs."""
            for b in self.brokers:
                t = metadata_v12(b.bootstrap, [topic])["topics"].get(topic)
                if t is None or t["error"] or len(t["partitions"]) != len(assignment) or \
                        any(p["leader"] < 0 or sorted(p["isr"]) != sorted(p["replicas"])
                            for p in t["partitions"].values()):
                    return False
            return True
        wait_until(leaders, 60, what="%s: leaders and full ISRs of %s" % (self.kind, topic))

    def fill(self, topic, partitions, nbytes):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20,
                      "compression.type": "none"})
        value = os.urandom(10000)
        for part in partitions:
            for _ in range(nbytes // len(value)):
                p.produce(topic, value, partition=part)
                p.poll(0)
        assert p.flush(60) == 0

    def replicas(self, topic):
        md = self.admin().list_topics(topic, timeout=10).topics[topic]
        return {p: list(md.partitions[p].replicas) for p in sorted(md.partitions)}

    def configs(self, kind, name):
        from confluent_kafka.admin import ConfigResource
        r = ConfigResource(kind, name)
        got = self.admin().describe_configs([r])[r].result(30)
        return {k: v.value for k, v in got.items() if "throttled" in k}


@pytest.fixture(scope="module", params=["kafka", "gregor"])
def target(request, classpath, tmp_path_factory):
    zk = ZooKeeperServer(tick_ms=500)
    zk.start()
    base = tmp_path_factory.mktemp("reassign-" + request.param)
    brokers = []
    try:
        if request.param == "kafka":
            brokers = [KafkaZkBroker(str(base / ("kafka%d" % i)), i, free_port(),
                                     zk.connect + "/kafka", classpath=classpath,
                                     overrides={"auto.create.topics.enable": "false",
                                                "broker.rack": RACKS[i]})
                       for i in IDS]
            for b in brokers:
                b.start()
            for b in brokers:
                b.wait_started(120)
        else:
            brokers = start_brokers(base, zk.connect + "/gregor", ids=IDS)
        t = Target(request.param, brokers, classpath,
                   RACKS if request.param == "kafka" else None)
        wait_until(lambda: sorted(t.admin().list_topics(timeout=10).brokers) == list(IDS), 60,
                   what="every broker registered")
        yield t
    finally:
        for b in brokers:
            b.stop()
        zk.stop()


def both(target, *args):
    """(ours, Kafka's): each (exit code, stdout, stderr), ours first."""
    return ours("--bootstrap-server", target.bootstrap, *args), \
        kafkas(target.classpath, "--bootstrap-server", target.bootstrap, *args)


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return str(path)


def reassignment(topic, moves):
    return {"version": 1, "partitions": [{"topic": topic, "partition": p, "replicas": r}
                                         for p, r in sorted(moves.items())]}


LAYOUT = {0: [1, 2], 1: [2, 3], 2: [3, 1]}


def test_generate_same_current_assignment_and_a_kafka_proposal(target, tmp_path):
    target.create("gen-a", [LAYOUT[p] for p in sorted(LAYOUT)])
    target.create("gen-b", [[1], [2], [3], [1]])
    topics = write(tmp_path, "topics.json", {"topics": [{"topic": "gen-b"}, {"topic": "gen-a"}],
                                             "version": 1})
    for broker_list, brokers, racks in (("1,2,3", [1, 2, 3], target.racks),
                                        ("3,1", [1, 3], target.racks),
                                        ("1,2,3", [1, 2, 3], None)):
        extra = [] if racks else ["--disable-rack-aware"]
        (rc, out, _), (krc, kout, _) = both(target, "--generate", "--topics-to-move-json-file",
                                            topics, "--broker-list", broker_list, *extra)
        assert (rc, krc) == (0, 0), (out, kout)
        lines, klines = out.splitlines(), kout.splitlines()
        print(out, kout, sep="\n")
        assert len(lines) == len(klines) == 5
        # Labels, blank line and the current assignment: the same bytes.
        assert lines[:4] == klines[:4]
        assert lines[0] == "Current partition replica assignment"
        current = json.loads(lines[1])
        assert [(p["topic"], p["partition"], p["replicas"]) for p in current["partitions"]] == \
            [("gen-a", p, LAYOUT[p]) for p in range(3)] + \
            [("gen-b", p, r) for p, r in enumerate([[1], [2], [3], [1]])]
        # The proposals: both Kafka's algorithm over the listed brokers, in Kafka's format.
        for text in (lines[4], klines[4]):
            proposed = json.loads(text)
            assert list(proposed) == ["version", "partitions"]
            by_topic = {}
            for p in proposed["partitions"]:
                assert list(p) == ["topic", "partition", "replicas", "log_dirs"]
                assert p["log_dirs"] == ["any"] * len(p["replicas"])
                by_topic.setdefault(p["topic"], {})[p["partition"]] = p["replicas"]
            assert is_kafka_proposal(by_topic["gen-a"], brokers, 3, 2, racks), text
            assert is_kafka_proposal(by_topic["gen-b"], brokers, 4, 1, racks), text


def test_generate_errors_same_as_kafka(target, tmp_path):
    unknown = write(tmp_path, "unknown.json", {"topics": [{"topic": "no-such-topic"}],
                                               "version": 1})
    (rc, out, _), (krc, kout, _) = both(target, "--generate", "--topics-to-move-json-file",
                                        unknown, "--broker-list", "1,2")
    assert rc == krc == 1
    assert out.rstrip("\n") == java_free(kout)
    assert "Topic no-such-topic not found." in out
    target.create("gen-rf3", [[1, 2, 3]])
    rf3 = write(tmp_path, "rf3.json", {"topics": [{"topic": "gen-rf3"}], "version": 1})
    (rc, out, _), (krc, kout, _) = both(target, "--generate", "--topics-to-move-json-file",
                                        rf3, "--broker-list", "1,2,7")
    assert rc == krc == 1
    assert out.rstrip("\n") == java_free(kout) == \
        "Error: Replication factor: 3 larger than available brokers: 2."


def normalized(text, mine, theirs):
    return text.replace(theirs, mine)


def test_execute_list_verify_cancel_same_as_kafka(target, tmp_path):
    """A throttled move that stays in progress (3 MB to copy at 1 B/s), then cancelled; then
    a move that completes. Ours on topic rx-a, Kafka's on rx-b, laid out alike."""
    target.need_reassignment_apis()
    for t in ("rx-a", "rx-b"):
        target.create(t, [LAYOUT[p] for p in sorted(LAYOUT)])
        target.fill(t, [0], 3 << 20)
    (rc, out, _), (krc, kout, _) = both(target, "--list")
    assert (rc, out) == (krc, kout) == (0, "No partition reassignments found.\n")

    moves = {0: [2, 3], 1: [2, 3]}
    mine = write(tmp_path, "mine.json", reassignment("rx-a", moves))
    theirs = write(tmp_path, "theirs.json", reassignment("rx-b", moves))
    rc, out, err = ours("--bootstrap-server", target.bootstrap, "--execute",
                        "--reassignment-json-file", mine, "--throttle", "1")
    # Read before Kafka's tool runs: with --additional it sets the throttles of every move in
    # progress again, ours included (from what is left of it).
    a = target.configs(2, "rx-a")
    krc, kout, _ = kafkas(target.classpath, "--bootstrap-server", target.bootstrap,
                          "--execute", "--reassignment-json-file", theirs, "--throttle", "1",
                          "--additional")
    print(out, err, kout, sep="\n")
    assert rc == krc == 0
    assert out == normalized(kout, "rx-a", "rx-b")
    assert out.endswith("Successfully started partition reassignments for rx-a-0,rx-a-1\n")
    assert "The inter-broker throttle limit was set to 1 B/s\n" in out
    # The throttles both set: the same values on the topics, the rate on every broker involved.
    b = target.configs(2, "rx-b")
    assert a == b, (a, b)
    assert a["leader.replication.throttled.replicas"] == "0:1,0:2,1:2,1:3"
    assert a["follower.replication.throttled.replicas"] == "0:3"
    for i in IDS:
        assert target.configs(4, str(i))["leader.replication.throttled.rate"] == "1"

    # A second --execute without --additional: refused, as Kafka refuses it.
    (rc, out, _), (krc, kout, _) = both(target, "--execute", "--reassignment-json-file", mine)
    assert rc == krc == 1
    assert out == kout and out.startswith("Cannot execute because there is an existing "
                                          "partition assignment.")

    (rc, out, _), (krc, kout, _) = both(target, "--list")
    print(out, kout, sep="\n")
    assert rc == krc == 0
    assert out == kout
    assert "rx-a-0: replicas: 2,3,1. adding: 3. removing: 1.\n" in out

    (rc, out, _), (krc, kout, _) = both(target, "--verify", "--reassignment-json-file", mine)
    assert rc == krc == 0
    assert out == kout
    assert "Reassignment of partition rx-a-0 is still in progress.\n" in out

    # Each cancels its own topic's move; --preserve-throttles so that ours clearing the broker
    # rates does not let Kafka's move finish before Kafka's tool cancels it.
    rc, out, _ = ours("--bootstrap-server", target.bootstrap, "--cancel",
                      "--reassignment-json-file", mine, "--preserve-throttles")
    krc, kout, _ = kafkas(target.classpath, "--bootstrap-server", target.bootstrap, "--cancel",
                          "--reassignment-json-file", theirs, "--preserve-throttles")
    print(out, kout, sep="\n")
    assert rc == krc == 0
    assert out == normalized(kout, "rx-a", "rx-b")
    assert out == ("Successfully cancelled partition reassignment for: rx-a-0\n"
                   "None of the specified partition moves are active.")
    # Back on the replicas the move started from (Kafka 3.9 keeps them in the order they had
    # during the move: [2, 1]).
    wait_until(lambda: sorted(target.replicas("rx-a")[0]) == [1, 2] and
               sorted(target.replicas("rx-b")[0]) == [1, 2], 60, what="both moves rolled back")
    rolled_back = ",".join(map(str, target.replicas("rx-a")[0]))

    (rc, out, _), (krc, kout, _) = both(target, "--verify", "--reassignment-json-file", mine)
    assert rc == krc == 0
    assert out == kout
    assert ("There is no active reassignment of partition rx-a-0, but replica set is %s "
            "rather than 2,3.\n" % rolled_back) in out
    # Nothing in progress: --verify removed the throttles (ours first, Kafka's found none).
    assert out.endswith("Clearing broker-level throttles on brokers 1,2,3\n"
                        "Clearing topic-level throttles on topic rx-a\n")
    assert not any(target.configs(2, "rx-a").values())
    assert all(target.configs(4, str(i)).get("leader.replication.throttled.rate") != "1"
               for i in IDS)


def test_execute_to_completion_verify_cancel_same_as_kafka(target, tmp_path):
    """A move that completes, verified and then (nothing left to) cancel by both tools. Ours on
    rc-a, Kafka's on rc-b."""
    target.need_reassignment_apis()
    for t in ("rc-a", "rc-b"):
        target.create(t, [LAYOUT[p] for p in sorted(LAYOUT)])
    done = {2: [1, 2]}
    mine = write(tmp_path, "mine.json", reassignment("rc-a", done))
    theirs = write(tmp_path, "theirs.json", reassignment("rc-b", done))
    rc, out, _ = ours("--bootstrap-server", target.bootstrap, "--execute",
                      "--reassignment-json-file", mine)
    krc, kout, _ = kafkas(target.classpath, "--bootstrap-server", target.bootstrap,
                          "--execute", "--reassignment-json-file", theirs, "--additional")
    print(out, kout, sep="\n")
    assert rc == krc == 0
    assert out == normalized(kout, "rc-a", "rc-b")
    assert out.endswith("Successfully started partition reassignment for rc-a-2\n")
    wait_until(lambda: target.replicas("rc-a")[2] == [1, 2] and
               target.replicas("rc-b")[2] == [1, 2], 60, what="both moves done")
    wait_until(lambda: ours("--bootstrap-server", target.bootstrap, "--list")[1] ==
               "No partition reassignments found.\n", 60, what="no reassignment listed")
    for action in ("--verify", "--cancel"):
        (rc, out, _), (krc, kout, _) = both(target, action, "--reassignment-json-file", mine)
        print(action, out, kout, sep="\n")
        # The last step clears the throttles of every broker and of the file's topics.
        assert (rc, out.rstrip("\n")) == (krc, java_free(kout).rstrip("\n"))
        head = ("Status of partition reassignment:\n"
                "Reassignment of partition rc-a-2 is completed.\n\n" if action == "--verify" else
                "None of the specified partition reassignments are active.\n"
                "None of the specified partition moves are active.")
        assert rc == 0 and out == head + ("Clearing broker-level throttles on brokers 1,2,3\n"
                                          "Clearing topic-level throttles on topic rc-a\n")


def test_execute_errors_same_as_kafka(target, tmp_path):
    target.need_reassignment_apis()
    target.create("rx-err", [[1, 2]])
    cases = {
        "unknown broker": reassignment("rx-err", {0: [1, 9]}),
        "unknown topic": reassignment("rx-none", {0: [1, 2]}),
        "unknown partition": {"version": 1, "partitions": [
            {"topic": "rx-err", "partition": 0, "replicas": [1, 2]},
            {"topic": "rx-err", "partition": 5, "replicas": [1, 2]}]},
    }
    for name, obj in cases.items():
        path = write(tmp_path, name.replace(" ", "-") + ".json", obj)
        (rc, out, _), (krc, kout, _) = both(target, "--execute", "--reassignment-json-file",
                                            path)
        print(name, out, kout, sep="\n")
        assert rc == krc == 1, name
        assert out.rstrip("\n") == java_free(kout), name
