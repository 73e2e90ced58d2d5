"""kafka-transactions.sh through the gregor CLI (issue 18): bin/kafka-transactions.sh's list,
describe, describe-producers, find-hanging and abort against one gregor broker, each compared
line by line with Kafka 4.x's own TransactionsCommand (tests/kafka_harness/kafka.sh run on the
same broker state), a hanging transaction made with raw wire found and aborted so a
read_committed consumer reads past it, and the argument errors and exit codes of both tools."""
import os
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kafka_wire import TRANSACTIONAL, record_batch  # noqa: E402
from conftest import GREGOR, ROOT  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from txn_util import consume, init_pid, make_topic, open_transaction, produce_v7  # noqa: E402

WRAPPER = os.path.join(ROOT, "bin", "kafka-transactions.sh")
# KIP-890's verification would refuse the raw transactional batch that makes a hanging
# transaction; a broker without the key logs it as unknown and ignores it.
NO_VERIFY = {"transaction.partition.verification.enable": "false"}


@pytest.fixture(scope="module")
def kafka_classpath():
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "kafka_harness", "kafka.sh"), "classpath"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr[-3000:]
    return p.stdout.strip()


def gregor_tool(bootstrap, *args):
    env = dict(os.environ, GREGOR_BIN=GREGOR)
    cmd = ["sh", WRAPPER] + (["--bootstrap-server", bootstrap] if bootstrap else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def kafka_tool(cp, bootstrap, *args):
    cmd = ["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp,
           "org.apache.kafka.tools.TransactionsCommand"]
    cmd += (["--bootstrap-server", bootstrap] if bootstrap else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def table(stdout):
    """The table's lines split into cells as prettyPrintTable writes them (each cell padded,
    then a tab, the last one too)."""
    lines = stdout.splitlines()
    for line in lines:
        assert line.endswith("\t"), repr(line)
    return [line.split("\t")[:-1] for line in lines]


def masked(rows, columns):
    """rows with the named columns (values that move with the clock) blanked."""
    idx = [rows[0].index(c) for c in columns]
    return [[("*" if i in idx and r > 0 else cell) for i, cell in enumerate(row)]
            for r, row in enumerate(rows)]


def same_table(cp, bootstrap, args, clock_columns=()):
    g = gregor_tool(bootstrap, *args)
    k = kafka_tool(cp, bootstrap, *args)
    assert g.returncode == 0, (g.stdout, g.stderr)
    assert k.returncode == 0, (k.stdout, k.stderr[-3000:])
    gt, kt = table(g.stdout), table(k.stdout)
    assert len(gt) == len(kt), (g.stdout, k.stdout)
    if clock_columns:
        # the padding of a clock column follows its value: compare the values stripped
        gt = [[c.rstrip() for c in row] for row in masked(gt, clock_columns)]
        kt = [[c.rstrip() for c in row] for row in masked(kt, clock_columns)]
    assert gt == kt, (g.stdout, k.stdout)
    return table(g.stdout)


def broker_id(bootstrap):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return md.controller_id if md.controller_id >= 0 else list(md.brokers)[0]


def test_list_describe_and_producers_as_kafka_prints_them(broker, kafka_classpath):
    b, cp = broker.bootstrap, kafka_classpath
    make_topic(b, "cli-tx")
    make_topic(b, "cli-tx2", partitions=3)
    p = open_transaction(b, "cli-app", "cli-tx", [b"a", b"b"])
    for part in range(3):
        p.produce("cli-tx2", b"x", partition=part)
    assert p.flush(10) == 0

    rows = same_table(cp, b, ["list"])
    assert rows[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    assert [r[0].strip() for r in rows[1:]] == ["cli-app"] and rows[1][3].strip() == "Ongoing"

    rows = same_table(cp, b, ["describe", "--transactional-id", "cli-app"],
                      clock_columns=["TransactionDurationMs"])
    assert rows[1][1].strip() == "cli-app" and rows[1][4].strip() == "Ongoing"
    assert sorted(rows[1][8].strip().split(",")) == ["cli-tx-0", "cli-tx2-0", "cli-tx2-1", "cli-tx2-2"]

    rows = same_table(cp, b, ["describe-producers", "--topic", "cli-tx", "--partition", "0"])
    assert len(rows) == 2 and rows[1][5].strip() == "0", rows
    same_table(cp, b, ["describe-producers", "--topic", "cli-tx2", "--partition", "1",
                       "--broker-id", str(broker_id(b))])

    p.commit_transaction(15)
    rows = same_table(cp, b, ["describe", "--transactional-id", "cli-app"],
                      clock_columns=["TransactionDurationMs"])
    assert rows[1][4].strip() == "CompleteCommit"
    rows = same_table(cp, b, ["describe-producers", "--topic", "cli-tx", "--partition", "0"])
    assert rows[1][5].strip() == "None"
    same_table(cp, b, ["list", "--duration-filter", "3600000"])


def produce(bootstrap, topic, batch, transactional_id):
    """Produce v7 of one batch to partition 0: (error, base offset)."""
    return produce_v7(bootstrap, topic, 0, batch, transactional_id, timeout_ms=10000)


def read_committed(bootstrap, topic, expect, timeout=20):
    return consume(bootstrap, topic, "read_committed", expect, timeout)


def test_find_hanging_and_abort(broker_factory, kafka_classpath):
    brk = broker_factory(**NO_VERIFY)
    brk.start()
    b, cp = brk.bootstrap, kafka_classpath
    node = str(broker_id(b))
    make_topic(b, "cli-hang")
    # a transactional batch of a producer id no coordinator knows (an id the coordinator never
    # saw), its last write 20 minutes ago: hanging
    pid, epoch = init_pid(b)
    old = int(time.time() * 1000) - 20 * 60 * 1000
    err, start = produce(b, "cli-hang", record_batch([b"h1", b"h2"], producer_id=pid, epoch=epoch,
                                                     base_sequence=0, ts=old, attributes=TRANSACTIONAL),
                         "cli-ghost")
    assert err == 0
    # a live transaction on the same partition is not hanging
    live = open_transaction(b, "cli-live", "cli-hang", [b"l1"])
    p = Producer({"bootstrap.servers": b})
    p.produce("cli-hang", b"after")
    assert p.flush(10) == 0
    live.commit_transaction(15)
    # the hanging transaction holds the last stable offset: nothing past it is read
    assert read_committed(b, "cli-hang", 1, timeout=4) == []

    for scope in (["--broker-id", node], ["--topic", "cli-hang"],
                  ["--topic", "cli-hang", "--partition", "0"]):
        rows = same_table(cp, b, ["find-hanging"] + scope, clock_columns=["Duration(min)"])
        assert len(rows) == 2, rows
        assert [c.strip() for c in rows[1][:6]] == ["cli-hang", "0", str(pid), str(epoch), "-1", str(start)]
        assert rows[1][6].strip() == str(old) and int(rows[1][7]) >= 19
    # a timeout longer than its age: no candidate
    rows = same_table(cp, b, ["find-hanging", "--broker-id", node, "--max-transaction-timeout", "30"])
    assert len(rows) == 1

    wrong = ["abort", "--topic", "cli-hang", "--partition", "0", "--start-offset", str(start + 1)]
    r, k = gregor_tool(b, *wrong), kafka_tool(cp, b, *wrong)
    assert r.returncode == k.returncode == 1 and r.stdout == k.stdout == ""
    assert r.stderr.strip() == ("Could not find any open transactions starting at offset %d on "
                                "partition cli-hang-0" % (start + 1))
    assert stderr_message(r.stderr) == stderr_message(k.stderr), k.stderr
    r = gregor_tool(b, "abort", "--topic", "cli-hang", "--partition", "0", "--start-offset", str(start))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)

    assert len(same_table(cp, b, ["find-hanging", "--broker-id", node])) == 1
    rows = same_table(cp, b, ["describe-producers", "--topic", "cli-hang", "--partition", "0"])
    assert all(r[5].strip() == "None" for r in rows[1:]), rows
    # the LSO moved past the aborted transaction: the later records are read, not h1/h2
    assert sorted(read_committed(b, "cli-hang", 2)) == [b"after", b"l1"]

    # the older brokers' form: the producer named with its epoch; a coordinator epoch of -1
    # (DescribeProducers' answer for a producer that never saw a marker) is sent as 0
    pid2, epoch2 = init_pid(b)
    err, start2 = produce(b, "cli-hang", record_batch([b"h3"], producer_id=pid2, epoch=epoch2,
                                                      base_sequence=0, ts=old, attributes=TRANSACTIONAL),
                          "cli-ghost2")
    assert err == 0
    rows = same_table(cp, b, ["find-hanging", "--topic", "cli-hang"], clock_columns=["Duration(min)"])
    assert [(r[2].strip(), r[5].strip()) for r in rows[1:]] == [(str(pid2), str(start2))]
    r = gregor_tool(b, "abort", "--topic", "cli-hang", "--partition", "0", "--producer-id", str(pid2),
                    "--producer-epoch", str(epoch2), "--coordinator-epoch", "-1")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    assert len(same_table(cp, b, ["find-hanging", "--topic", "cli-hang"])) == 1
    p.produce("cli-hang", b"last")
    assert p.flush(10) == 0
    assert sorted(read_committed(b, "cli-hang", 3)) == [b"after", b"l1", b"last"]


def stderr_message(text):
    """The tool's own lines of stderr (Kafka's JVM may add logging set-up noise)."""
    return [line for line in text.splitlines()
            if line and not line.startswith(("\tat ", "[Fatal", "20")) and "log4j" not in line.lower()]


@pytest.mark.parametrize("args", [
    [],
    ["list", "--bogus"],
    ["describe"],
    ["abort", "--partition", "0"],
    ["abort", "--topic", "t", "--partition", "0"],
    ["abort", "--topic", "t", "--partition", "0", "--producer-id", "5"],
    ["abort", "--topic", "t", "--partition", "0", "--producer-id", "5", "--producer-epoch", "1"],
    ["find-hanging"],
    ["find-hanging", "--partition", "0"],
    ["describe", "--transactional-id", "no-such-id"],
    # the pattern needs ListTransactions v2; this broker serves up to v1
    ["list", "--transactional-id-pattern", "cli-.*"],
])
def test_errors_and_exit_codes_as_kafka(broker, kafka_classpath, args):
    g = gregor_tool(broker.bootstrap, *args)
    k = kafka_tool(kafka_classpath, broker.bootstrap, *args)
    assert g.returncode == k.returncode == 1, (g.returncode, k.returncode, k.stderr[-2000:])
    assert g.stdout == k.stdout == ""
    assert stderr_message(g.stderr) == stderr_message(k.stderr), (g.stderr, k.stderr)


@pytest.mark.parametrize("args", [
    ["bogus"],
    ["describe-producers", "--topic", "t", "--partition", "x"],
    ["forceTerminateTransaction"],
])
def test_errors_kafka_wraps_as_kafka(broker, kafka_classpath, args):
    """argparse4j justifies long messages to the terminal's width: the same words."""
    g = gregor_tool(broker.bootstrap, *args)
    k = kafka_tool(kafka_classpath, broker.bootstrap, *args)
    assert g.returncode == k.returncode == 1
    assert " ".join(stderr_message(g.stderr)).split() == " ".join(stderr_message(k.stderr)).split(), \
        (g.stderr, k.stderr)


def test_force_terminate_transaction_as_kafka(broker, kafka_classpath):
    """forceTerminateTransaction (Kafka 4.1's admin fenceProducers of one id) aborts the open
    transaction of a live producer: the same state afterwards with either tool."""
    b, cp = broker.bootstrap, kafka_classpath
    make_topic(b, "cli-ft")
    described = {}
    for who, tool in (("g", gregor_tool), ("k", lambda b, *a: kafka_tool(cp, b, *a))):
        txn_id = "cli-ft-" + who
        open_transaction(b, txn_id, "cli-ft", [b"ft-" + who.encode()])
        before = table(gregor_tool(b, "describe", "--transactional-id", txn_id).stdout)[1]
        r = tool(b, "forceTerminateTransaction", "--transactionalId", txn_id)
        assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr[-2000:])
        after = table(gregor_tool(b, "describe", "--transactional-id", txn_id).stdout)[1]
        # the fence aborts the transaction (CONCURRENT_TRANSACTIONS retried meanwhile), then
        # bumps the epoch of the now empty id
        assert before[4].strip() == "Ongoing" and after[2] == before[2]
        assert int(after[3]) > int(before[3])
        described[who] = [after[i].strip() for i in (3, 4, 5, 6, 8)]
        described[who][0] = int(described[who][0]) - int(before[3])  # the epoch's bump
    assert described["g"] == described["k"], described
    assert read_committed(b, "cli-ft", 1, timeout=4) == []
    r, k = (gregor_tool(b, "forceTerminateTransaction", "--transactionalId", "cli-ft-new"),
            kafka_tool(cp, b, "forceTerminateTransaction", "--transactionalId", "cli-ft-new2"))
    assert r.returncode == k.returncode == 0 and r.stdout == k.stdout == ""
    g_row = table(gregor_tool(b, "describe", "--transactional-id", "cli-ft-new").stdout)[1]
    k_row = table(gregor_tool(b, "describe", "--transactional-id", "cli-ft-new2").stdout)[1]
    assert [c.strip() for c in g_row[3:]] == [c.strip() for c in k_row[3:]], (g_row, k_row)


def test_missing_bootstrap_server(kafka_classpath):
    g = gregor_tool(None, "list")
    k = kafka_tool(kafka_classpath, None, "list")
    assert g.returncode == k.returncode == 1
    assert stderr_message(g.stderr) == stderr_message(k.stderr), (g.stderr, k.stderr)


def dump_lines(text):
    return [line for line in text.splitlines() if line.strip()]


def test_dump_log_of_committed_and_aborted_transactions_as_kafka(broker, kafka_classpath):
    """gregor dump-log prints a segment holding a committed and an aborted transaction (the
    transactional batches, the COMMIT and ABORT control batches and their records) and its
    .txnindex exactly as Kafka 4.x's kafka.tools.DumpLogSegments does."""
    b = broker.bootstrap
    make_topic(b, "cli-dump")
    p = open_transaction(b, "cli-dumper", "cli-dump", [b"c1", b"c2"])
    p.commit_transaction(15)
    p.begin_transaction()
    p.produce("cli-dump", key=b"k", value=b"a1")
    assert p.flush(10) == 0
    p.abort_transaction(15)
    plain = Producer({"bootstrap.servers": b})
    plain.produce("cli-dump", b"plain")
    assert plain.flush(10) == 0
    assert sorted(read_committed(b, "cli-dump", 3)) == [b"c1", b"c2", b"plain"]
    assert broker.stop() == 0
    try:
        part = os.path.join(broker.data_dir, "cli-dump-0")
        files = sorted(os.path.join(part, f) for f in os.listdir(part)
                       if f.endswith((".log", ".txnindex")))
        assert any(f.endswith(".txnindex") for f in files), files
        for f, flags in [(f, flags) for f in files
                         for flags in ([], ["--deep-iteration"], ["--deep-iteration", "--print-data-log"],
                                       ["--print-data-log", "--skip-record-metadata"])]:
            args = flags + ["--files", f]
            g = subprocess.run([GREGOR, "dump-log"] + args, capture_output=True, text=True, timeout=60)
            k = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                                "-cp", kafka_classpath, "kafka.tools.DumpLogSegments"] + args,
                               capture_output=True, text=True, timeout=180)
            assert k.returncode == 0, k.stderr[-3000:]
            assert g.returncode == 0, g.stderr
            assert dump_lines(g.stdout) == dump_lines(k.stdout), (f, g.stdout, k.stdout)
            if f.endswith(".log") and "--print-data-log" in flags and "--skip-record-metadata" not in flags:
                out = g.stdout
                assert "isTransactional: true isControl: true" in out
                assert "endTxnMarker: COMMIT coordinatorEpoch:" in out
                assert "endTxnMarker: ABORT coordinatorEpoch:" in out
                assert "payload: a1" in out
        # the coordinator's records of the same transactions, with Kafka's JSON of
        # TransactionLogKey/TransactionLogValue (--transaction-log-decoder implies the data)
        state = [os.path.join(broker.data_dir, d, f) for d in sorted(os.listdir(broker.data_dir))
                 if d.startswith("__transaction_state-")
                 for f in os.listdir(os.path.join(broker.data_dir, d)) if f.endswith(".log")]
        state = [f for f in state if os.path.getsize(f) > 0]
        assert state
        for f in state:
            for args in (["--transaction-log-decoder", "--files", f],
                         ["--transaction-log-decoder", "--skip-record-metadata", "--files", f]):
                g = subprocess.run([GREGOR, "dump-log"] + args, capture_output=True, text=True, timeout=60)
                k = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                                    "-cp", kafka_classpath, "kafka.tools.DumpLogSegments"] + args,
                                   capture_output=True, text=True, timeout=180)
                assert k.returncode == 0 and g.returncode == 0, (g.stderr, k.stderr[-3000:])
                assert dump_lines(g.stdout) == dump_lines(k.stdout), (f, g.stdout, k.stdout)
                assert '"transactionalId":"cli-dumper"' in g.stdout
    finally:
        broker.start()


def test_cluster_routing_as_kafka(tmp_path, kafka_classpath):
    """Three brokers on ZooKeeper, the tools given only broker 1: list asks every broker (the
    coordinators of several ids), describe finds each id's coordinator, describe-producers asks
    the leader or the --broker-id replica, and abort sends its markers to a partition's leader
    elsewhere — gregor's tables the same as Kafka's, the hanging transaction gone after."""
    from cluster_fixture import ZkEnsemble
    from zk_fixture import start_brokers
    cp = kafka_classpath
    ens = ZkEnsemble.on_free_ports(str(tmp_path / "zk"))
    ens.start()
    brokers = []
    try:
        overrides = dict(NO_VERIFY)
        overrides.update({"zookeeper.session.timeout.ms": 3000, "offsets.topic.num.partitions": 3,
                          "offsets.topic.replication.factor": 3,
                          "transaction.state.log.num.partitions": 3,
                          "transaction.state.log.replication.factor": 3,
                          "transaction.state.log.min.isr": 2})
        brokers = start_brokers(tmp_path, ens.connect + "/cli-tx", (1, 2, 3), overrides)
        boot = ",".join(x.bootstrap for x in brokers)
        b = brokers[0].bootstrap
        admin = AdminClient({"bootstrap.servers": boot})
        for f in admin.create_topics([NewTopic("cl-tx", num_partitions=3,
                                               replica_assignment=[[1, 2], [2, 3], [3, 1]])]).values():
            f.result(20)
        producers = []
        for i in range(6):
            p = Producer({"bootstrap.servers": boot, "transactional.id": "cl-app-%d" % i,
                          "message.timeout.ms": 30000})
            p.init_transactions(60)
            p.begin_transaction()
            p.produce("cl-tx", b"v%d" % i, partition=i % 3)
            assert p.flush(30) == 0
            producers.append(p)
        rows = same_table(cp, b, ["list"])
        assert sorted(r[0].strip() for r in rows[1:]) == ["cl-app-%d" % i for i in range(6)]
        assert len({r[1].strip() for r in rows[1:]}) > 1, rows  # more than one coordinator
        for i in range(6):
            same_table(cp, b, ["describe", "--transactional-id", "cl-app-%d" % i],
                       clock_columns=["TransactionDurationMs"])
        for part, replicas in enumerate([[1, 2], [2, 3], [3, 1]]):
            rows = same_table(cp, b, ["describe-producers", "--topic", "cl-tx", "--partition", str(part)])
            assert len(rows) == 3, rows
            for r in replicas:
                same_table(cp, b, ["describe-producers", "--topic", "cl-tx", "--partition", str(part),
                                   "--broker-id", str(r)])
        # a hanging transaction on partition 1, led by broker 2
        pid, epoch = init_pid(brokers[1].bootstrap)
        old = int(time.time() * 1000) - 20 * 60 * 1000
        batch = record_batch([b"h"], producer_id=pid, epoch=epoch, base_sequence=0, ts=old,
                             attributes=TRANSACTIONAL)
        err, start = produce_v7(brokers[1].bootstrap, "cl-tx", 1, batch, "cl-ghost", timeout_ms=10000)
        assert err == 0
        for scope in (["--broker-id", "2"], ["--broker-id", "3"], ["--topic", "cl-tx"]):
            rows = same_table(cp, b, ["find-hanging"] + scope, clock_columns=["Duration(min)"])
            assert [(r[1].strip(), r[2].strip()) for r in rows[1:]] == [("1", str(pid))], rows
        assert len(same_table(cp, b, ["find-hanging", "--broker-id", "1"])) == 1
        r = gregor_tool(b, "abort", "--topic", "cl-tx", "--partition", "1", "--start-offset", str(start))
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert len(same_table(cp, b, ["find-hanging", "--topic", "cl-tx"])) == 1
        for p in producers:
            p.commit_transaction(60)
    finally:
        for x in brokers:
            x.stop()
        ens.stop()


def keyed_batch(records, ts=1700000000000):
    """A magic-2 batch of (key, value) records, value None for a tombstone."""
    from kafka_wire import _varint, crc32c
    recs = b""
    for i, (k, v) in enumerate(records):
        body = b"\x00" + _varint(0) + _varint(i) + _varint(len(k)) + k
        body += (_varint(-1) if v is None else _varint(len(v)) + v) + _varint(0)
        recs += _varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(records) - 1, ts, ts, -1, -1, -1, len(records)) + recs
    after_len = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def test_dump_log_transaction_log_records_as_kafka(tmp_path, kafka_classpath):
    """--transaction-log-decoder on records the broker seldom writes: a tombstone (an expired
    transactional id), a v1 value with its tagged fields set, an id needing JSON escapes, and
    a key version Kafka does not know."""
    def key(txn_id, version=0):
        b = txn_id.encode()
        return struct.pack(">hh", version, len(b)) + b

    def value_v1(pid, prev, nxt, client_version):
        from kafka_wire import uvarint
        body = struct.pack(">hqhib", 1, pid, 3, 60000, 1)
        body += uvarint(2) + uvarint(2) + b"t" + uvarint(3) + struct.pack(">ii", 0, 2) + b"\x00"
        body += struct.pack(">qq", 1700000000001, 1700000000000)
        tags = [(0, struct.pack(">q", prev)), (1, struct.pack(">q", nxt)),
                (2, struct.pack(">h", client_version))]
        body += uvarint(len(tags)) + b"".join(uvarint(t) + uvarint(len(v)) + v for t, v in tags)
        return body

    part = tmp_path / "__transaction_state-0"
    part.mkdir()
    f = part / "00000000000000000000.log"
    batch = keyed_batch([(key("gone"), None),
                         (key('we"ird\\id\t'), value_v1(42, 41, 43, 2)),
                         (key("future", version=7), b"\x00\x07whatever")])
    f.write_bytes(batch)
    for args in (["--transaction-log-decoder", "--files", str(f)],
                 ["--transaction-log-decoder", "--skip-record-metadata", "--files", str(f)]):
        g = subprocess.run([GREGOR, "dump-log"] + args, capture_output=True, text=True, timeout=60)
        k = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                            "-cp", kafka_classpath, "kafka.tools.DumpLogSegments"] + args,
                           capture_output=True, text=True, timeout=180)
        assert dump_lines(g.stdout) == dump_lines(k.stdout), (g.stdout, g.stderr, k.stdout, k.stderr[-2000:])
        assert g.returncode == k.returncode
