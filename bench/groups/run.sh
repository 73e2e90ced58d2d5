#!/usr/bin/env bash
# bench/groups/run.sh: consumer-group benchmarks, gregor and Apache Kafka 4.x in one run.
#
#   1. OffsetCommit throughput: one client, synchronous commits of N partitions' offsets in a
#      loop (N = 1, 10, 100), by the C driver group_bench.c (librdkafka) and, for comparison,
#      by confluent-kafka from Python (commit_py.py).
#   2. Time for a group of 100 members to stabilise: 100 librdkafka consumers in one process
#      subscribe to a 128-partition topic; from the first subscribe until every member holds
#      an assignment and together they cover each partition once. Repeated REPS times.
#
# kafka-linger0 is Kafka again with group.coordinator.append.linger.ms=0 (default 5 in 4.x: the
# coordinator waits up to 5 ms to batch __consumer_offsets writes, which bounds a lone
# synchronous committer to ~170 commits/s).
# The stabilisation time is bounded below by the members' heartbeat.interval.ms (the first
# member learns of the rebalance that the others' joins started at its next heartbeat): 100 ms
# here, on both brokers, so the broker's share is visible; librdkafka's default is 3000.
# All brokers: group.initial.rebalance.delay.ms=0, offsets.topic.num.partitions=1 (the Kafka
# harness's settings, given to gregor with --override). Same clients, same settings.
#
# usage: bench/groups/run.sh        (about 2-3 minutes; env: GB_OUT scratch dir, GB_SYSTEMS,
#                                    GB_COMMIT_SECS, GB_REPS, GB_HEARTBEAT_MS)
# output: bench/results/<date>-groups.json (machine + one row per measurement) and a summary
#         table on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${GB_OUT:-/tmp/gregor-bench-groups}
SYSTEMS=${GB_SYSTEMS:-gregor kafka kafka-linger0}
COMMIT_SECS=${GB_COMMIT_SECS:-5}
REPS=${GB_REPS:-3}
HB_MS=${GB_HEARTBEAT_MS:-100}
MEMBERS=100
STAB_PARTS=128
GREGOR=$ROOT/build/gregor
KAFKA_SH=$ROOT/tests/kafka_harness/kafka.sh
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
RESULT=$ROOT/bench/results/$STAMP-groups.json
ROWS=$OUT/rows.jsonl

log() { printf '[groups %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Kafka also binds its controller listener on port+1: both must be free.
free_port_pair() {
    python3 - <<'PY'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
PY
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

mkdir -p "$OUT" "$ROOT/bench/results"
: >"$ROWS"
[ -x "$GREGOR" ] || die "build gregor first (make)"
cc -std=c11 -D_DEFAULT_SOURCE -O2 -Wall -Wextra -Werror -o "$OUT/group_bench" \
    "$ROOT/bench/groups/group_bench.c" -lrdkafka || die "cannot build group_bench.c"

GREGOR_PID=""
cleanup() {
    [ -n "$GREGOR_PID" ] && kill "$GREGOR_PID" 2>/dev/null && wait "$GREGOR_PID" 2>/dev/null || true
    if [ -n "${KAFKA_PORT:-}" ]; then "$KAFKA_SH" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

create_topics() {  # bootstrap
    python3 - "$1" "$STAB_PARTS" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
fs = a.create_topics([NewTopic("gb-commit", 100, 1), NewTopic("gb-stab", int(sys.argv[2]), 1)])
for f in fs.values():
    f.result(30)
PY
}

row() {  # system kind json-line
    python3 -c 'import json,sys; d=json.loads(sys.argv[3]); d["system"]=sys.argv[1]; d["driver"]=sys.argv[2]; d["loadavg"]=open("/proc/loadavg").read().split()[:3]; print(json.dumps(d))' \
        "$1" "$2" "$3" | tee -a "$ROWS" >&2
}

measure() {  # system bootstrap
    local sys=$1 bs=$2
    create_topics "$bs"
    # Warm-up, not recorded: connections, the coordinator's first writes, and the JVM's JIT
    # (without it Kafka's first series runs several times slower than its later ones).
    "$OUT/group_bench" commit "$bs" gb-commit 10 3 >/dev/null
    "$OUT/group_bench" stabilise "$bs" gb-stab "$MEMBERS" 90 "$HB_MS" >/dev/null || true
    for n in 1 10 100; do
        row "$sys" c "$("$OUT/group_bench" commit "$bs" gb-commit "$n" "$COMMIT_SECS")"
    done
    for n in 1 100; do
        row "$sys" python "$(python3 "$ROOT/bench/groups/commit_py.py" "$bs" gb-commit "$n" 3)"
    done
    for _ in $(seq "$REPS"); do
        row "$sys" c "$("$OUT/group_bench" stabilise "$bs" gb-stab "$MEMBERS" 90 "$HB_MS")"
        sleep 1
    done
}

log "load average before: $(loadavg)"
for sys in $SYSTEMS; do
    case $sys in
    gregor)
        port=$(free_port); rm -rf "$OUT/gregor-data"
        "$GREGOR" serve --override listeners=PLAINTEXT://127.0.0.1:$port \
            --override log.dirs="$OUT/gregor-data" \
            --override group.initial.rebalance.delay.ms=0 \
            --override offsets.topic.num.partitions=1 >"$OUT/gregor.log" 2>&1 &
        GREGOR_PID=$!
        for _ in $(seq 100); do
            python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
            sleep 0.1
        done
        log "gregor up on $port (pid $GREGOR_PID), load $(loadavg)"
        measure gregor "127.0.0.1:$port"
        kill "$GREGOR_PID"; wait "$GREGOR_PID" || true; GREGOR_PID=""
        ;;
    kafka|kafka-linger0)
        if [ "$sys" = kafka-linger0 ]; then export KAFKA_OVERRIDES=group.coordinator.append.linger.ms=0
        else unset KAFKA_OVERRIDES; fi
        export KAFKA_PORT=$(free_port_pair) KAFKA_STATE=$OUT/kafka-state
        # The harness writes group.initial.rebalance.delay.ms=0 and
        # offsets.topic.num.partitions=1 into server.properties; JVM as bin/kafka-server-start.sh.
        KAFKA_HEAP="-Xmx1G -Xms1G" "$KAFKA_SH" start >&2
        grep -q '^group.initial.rebalance.delay.ms=0$' "$KAFKA_STATE/server.properties" \
            || die "kafka harness no longer sets group.initial.rebalance.delay.ms=0"
        log "kafka up on $KAFKA_PORT, load $(loadavg)"
        measure "$sys" "127.0.0.1:$KAFKA_PORT"
        "$KAFKA_SH" stop >&2; unset KAFKA_PORT
        ;;
    *) die "unknown system $sys" ;;
    esac
done
log "load average after: $(loadavg)"

python3 - "$ROWS" "$RESULT" "$HB_MS" <<'PY'
import json, os, platform, subprocess, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
machine = {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(int(mem) / 2**20, 1),
           "kernel": platform.release(), "librdkafka": sh("pkg-config --modversion rdkafka"),
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "heartbeat_ms": int(sys.argv[3])}
json.dump({"machine": machine, "rows": rows}, open(sys.argv[2], "w"), indent=1)

def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None
print("machine: %(nproc)s x %(cpu)s, %(mem_gib)s GiB, librdkafka %(librdkafka)s, %(date_utc)s" % machine)
SYS = ("gregor", "kafka", "kafka-linger0")
print("\n| measurement | gregor | Kafka | Kafka linger 0 | gregor/Kafka | gregor/Kafka linger 0 |")
print("|---|---:|---:|---:|---:|---:|")
def line(name, key, pick, fmt):
    v = {s: pick([r for r in rows if r["system"] == s and key(r)]) for s in SYS}
    ratio = lambda k: "%.2f" % (v["gregor"] / v[k]) if v["gregor"] and v[k] else "-"
    print("| %s | %s | %s | %s | %s | %s |" % (name, *(fmt % v[s] if v[s] is not None else "-"
                                               for s in SYS), ratio("kafka"), ratio("kafka-linger0")))
for n in (1, 10, 100):
    line("OffsetCommit/s, %d partition(s), C driver" % n,
         lambda r, n=n: r["bench"] == "offset_commit" and r["partitions"] == n,
         lambda rs: rs[0]["commits_per_s"] if rs else None, "%.0f")
for n in (1, 100):
    line("OffsetCommit/s, %d partition(s), Python" % n,
         lambda r, n=n: r["bench"] == "offset_commit_python" and r["partitions"] == n,
         lambda rs: rs[0]["commits_per_s"] if rs else None, "%.0f")
stab = lambda r: r["bench"] == "stabilise" and r["stable_s"] >= 0
line("100 members stable, median s", stab, lambda rs: med([r["stable_s"] for r in rs]), "%.2f")
line("100 members stable, best s", stab, lambda rs: min([r["stable_s"] for r in rs]) if rs else None, "%.2f")
print("\nall runs: %s" % sys.argv[2])
PY
