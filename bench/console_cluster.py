#!/usr/bin/env python3
"""The console on a 3-broker ZooKeeper cluster (issue 20): what the cluster-wide views cost.

A fresh ZooKeeper (Debian's) and 3 gregor brokers (build/gregor, -O2) with
gregor.http.listener=127.0.0.1:0; TOPICS topics of PARTS partitions, replication factor 3,
made with confluent-kafka's AdminClient; RECORDS records spread over the first topic; GROUPS
consumer groups, each committing an offset on every partition of the first topic. Then, RUNS
times on each broker, plain HTTP from Python (a new connection per request, wall time to the
last byte): /api/overview, /api/groups, /api/groups/<a group>, /api/topics/<first topic>,
/api/topics/<first topic>/messages?partition=all&from=beginning&limit=50. Every answer is
checked (200; the groups list has every group; no broker listed unavailable). Each such call
is a gather of Kafka requests to the brokers (docs/CONSOLE.md "On a cluster").
Prints a JSON result on stdout and the table on stderr.

usage: python3 bench/console_cluster.py [--bin build/gregor] [--topics 10] [--partitions 100]
       [--groups 200] [--records 10000] [--runs 5]
Needs: the venv with confluent-kafka (make test-deps), Debian's zookeeper.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def get(port, path):
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    ms = (time.perf_counter() - t0) * 1000
    assert r.status == 200, (path, r.status, body[:300])
    return ms, json.loads(body), len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "gregor"))
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    assert 1 <= args.topics <= 100 and 1 <= args.partitions <= 1000
    assert 1 <= args.groups <= 5000 and 1 <= args.runs <= 50 and 0 <= args.records <= 10**6
    os.environ["GREGOR_BIN"] = os.path.abspath(args.bin)
    from zk_fixture import ZooKeeperServer, start_brokers, stop_quietly, wait_until

    from pathlib import Path
    tmp = Path(tempfile.mkdtemp(prefix="gregor-console-cluster-"))
    z = ZooKeeperServer()
    z.start()
    brokers = []
    try:
        brokers = start_brokers(tmp, z.connect + "/bench",
                                overrides={"gregor.http.listener": "127.0.0.1:0"}, timeout=60)
        from test_metrics import http_port
        ports = {i + 1: http_port(b) for i, b in enumerate(brokers)}
        a = AdminClient({"bootstrap.servers": brokers[0].bootstrap})
        names = ["cc-%03d" % t for t in range(args.topics)]
        t0 = time.time()
        for n in names:
            a.create_topics([NewTopic(n, args.partitions, 3)])[n].result(timeout=60)
        log("topics made in %.1f s" % (time.time() - t0))
        first = names[0]
        p = Producer({"bootstrap.servers": brokers[0].bootstrap, "acks": "all",
                      "linger.ms": 5})
        for k in range(args.records):
            p.produce(first, value=json.dumps({"n": k}).encode(), partition=k % args.partitions)
            if k % 1000 == 999:
                p.poll(0)
        assert p.flush(60) == 0
        t0 = time.time()
        for g in range(args.groups):
            c = Consumer({"bootstrap.servers": brokers[0].bootstrap, "group.id": "cg-%04d" % g,
                          "enable.auto.commit": False})
            c.commit(offsets=[TopicPartition(first, q, g % 7) for q in range(args.partitions)],
                     asynchronous=False)
            c.close()
        log("groups committed in %.1f s" % (time.time() - t0))
        wait_until(lambda: len(get(ports[1], "/api/groups")[1]["groups"]) == args.groups, 60,
                   what="every group listed")

        paths = {"overview": "/api/overview", "groups": "/api/groups",
                 "group": "/api/groups/cg-0000", "topic": "/api/topics/" + first,
                 "messages": "/api/topics/%s/messages?partition=all&from=beginning&limit=50" % first}
        result = {"topics": args.topics, "partitions": args.partitions, "groups": args.groups,
                  "records": args.records, "runs": args.runs, "calls": {}}
        for name, path in paths.items():
            times, size = [], 0
            for _ in range(args.runs):
                for i, port in ports.items():
                    ms, doc, size = get(port, path)
                    if name == "groups":
                        assert len(doc["groups"]) == args.groups, len(doc["groups"])
                    assert doc.get("unavailable_brokers", []) == [], doc.get("unavailable_brokers")
                    times.append(ms)
            result["calls"][name] = {"path": path, "median_ms": round(statistics.median(times), 1),
                                     "max_ms": round(max(times), 1), "bytes": size}
            log("%-9s median %7.1f ms  max %7.1f ms  %8d B   %s" % (
                name, statistics.median(times), max(times), size, path))
        print(json.dumps(result, indent=1))
    finally:
        stop_quietly(brokers, z)


if __name__ == "__main__":
    main()
