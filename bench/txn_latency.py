#!/usr/bin/env python3
"""Transaction latency on a 3-broker gregor cluster (issue 18): a confluent-kafka transactional
producer runs N one-record transactions (begin, produce one record, commit) one after another
on a topic of replication factor 3 (min.insync.replicas 2), __transaction_state at replication
factor 3 (min.isr 2). Each transaction is timed from begin_transaction to the return of
commit_transaction (the EndTxn answer, after PrepareCommit reached the ISR); a first 20 are a
warm-up. Prints the median, p90, p99 and max in ms as one JSON line.

usage: GREGOR_BIN=build/gregor python3 bench/txn_latency.py [--count 200]
"""
import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
os.environ.setdefault("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from cluster_fixture import ZkEnsemble  # noqa: E402
from zk_fixture import start_brokers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="txn-latency-"))
    ens = ZkEnsemble.on_free_ports(str(tmp / "zk"))
    ens.start()
    brokers = []
    try:
        brokers = start_brokers(tmp, ens.connect + "/txl-" + uuid.uuid4().hex[:8], (1, 2, 3),
                                {"transaction.state.log.num.partitions": 3,
                                 "transaction.state.log.replication.factor": 3,
                                 "transaction.state.log.min.isr": 2})
        boot = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": boot})
        for f in admin.create_topics([NewTopic("txl", 1, 3, config={
                "min.insync.replicas": "2"})]).values():
            f.result(30)
        p = Producer({"bootstrap.servers": boot, "transactional.id": "txl",
                      "linger.ms": 0})
        p.init_transactions(60)
        times = []
        for i in range(args.count + 20):
            t0 = time.perf_counter()
            p.begin_transaction()
            p.produce("txl", b"x" * 100)
            p.commit_transaction(60)
            if i >= 20:
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()

        def pct(q):
            return round(times[min(len(times) - 1, int(q * len(times)))], 2)
        print(json.dumps({"count": len(times), "median_ms": pct(0.5), "p90_ms": pct(0.9),
                          "p99_ms": pct(0.99), "max_ms": round(times[-1], 2),
                          "bin": os.environ["GREGOR_BIN"]}))
    finally:
        for b in brokers:
            b.stop()
        ens.stop()


if __name__ == "__main__":
    main()
