#!/bin/bash
# bench/storage/run.sh: gregor's storage benchmarks (issue 3). Not timed tests: numbers for
# docs/bench/storage.md, each next to what the disk itself does in the same run.
#
#   1. the disk: sequential write MB/s (buffered + one fdatasync, and O_DIRECT) and fdatasync
#      latency for 4 KiB and 64 KiB appends
#   2. the plog layer directly (plog_bench.c linked with build/libgregor.a): append MB/s with no
#      flush and with a flush every 1 / 8 / 64 batches (group commit of that size); read by offset
#   3. the broker (build/gregor) with `gregor perf producer`: acks=1, acks=all with the fdatasync
#      group commit (the default), acks=all with gregor.acks.all.fsync=false; `gregor perf consumer`
#   4. recovery: ~SIZE_MB of unflushed data (acks=1), kill -9, time restart to first answer,
#      with the page cache warm and cold (sync + drop_caches, root only); plog-level recovery too
#   5. open time of a log dir with PARTS partitions (clean stop, start-to-ready; and after kill -9)
#
# env: BENCH_DIR (default /tmp/gregor-bench-storage; removed at the end), SIZE_MB (1024),
#      RECORDS (1000000, 1000-byte records for the broker runs), PARTS (10000), GREGOR
#      (build/gregor), OUT (results file, default $BENCH_DIR/../gregor-bench-storage.jsonl),
#      SECTIONS (default "disk plog broker recovery partitions": which of the five to run)
# Bounded: every step has a timeout; disk use peaks at about 2 x SIZE_MB + PARTS x 20 KiB.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/gregor-bench-storage}
SIZE_MB=${SIZE_MB:-1024}
RECORDS=${RECORDS:-1000000}
PARTS=${PARTS:-10000}
SECTIONS=${SECTIONS:-disk plog broker recovery partitions}
GREGOR=${GREGOR:-$ROOT/build/gregor}
OUT=${OUT:-$(dirname "$BENCH_DIR")/gregor-bench-storage.jsonl}
TOOLS=$BENCH_DIR/tools
PORT=${PORT:-$((30000 + RANDOM % 20000))}
B=127.0.0.1:$PORT
BROKER_PID=

say() { echo "$*" >&2; }
emit() { echo "$*" | tee -a "$OUT"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
note() { emit "{\"note\":\"$1\",\"loadavg\":\"$(load)\"}"; }

cleanup() {
    [ -n "$BROKER_PID" ] && kill -KILL "$BROKER_PID" 2>/dev/null
    rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

mkdir -p "$BENCH_DIR" "$TOOLS"
: >"$OUT"
[ -x "$GREGOR" ] && [ -f "$ROOT/build/libgregor.a" ] || { say "build first: make"; exit 1; }
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
CC=${CC:-cc}
CF="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra"
$CC $CF -I"$ROOT/src" "$ROOT/bench/storage/plog_bench.c" "$ROOT/build/libgregor.a" \
    -lz -lzstd -llz4 -lsnappy -lpthread -lm -o "$TOOLS/plog_bench" || exit 1
$CC $CF "$ROOT/bench/storage/disk_bench.c" -o "$TOOLS/disk_bench" || exit 1
$CC $CF "$ROOT/bench/storage/ready.c" -o "$TOOLS/ready" || exit 1

# ---- machine
emit "{\"date\":\"$(date -u +%FT%TZ)\",\"host\":\"$(uname -srm)\",\"cpu\":\"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\",\"nproc\":$(nproc),\"mem_gb\":$(free -g | awk '/^Mem/{print $2}'),\"fs\":\"$(findmnt -no FSTYPE,SOURCE -T "$BENCH_DIR" | head -1)\",\"gregor\":\"$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo +dirty)\",\"loadavg\":\"$(load)\",\"ulimit_n\":$(ulimit -n)}"

# ---- broker helpers
broker_state() { sed -n 's/^State:\s*\(.\).*/\1/p' /proc/"$1"/status 2>/dev/null; }
broker_gone() { local s; s=$(broker_state "$1"); [ -z "$s" ] || [ "$s" = Z ]; }
start_broker() { # DATA_DIR [k=v ...]  -> sets BROKER_PID and READY_MS (call it without $(...))
    local data=$1; shift
    READY_MS=null
    if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$PORT))!=0)"; then
        say "port $PORT is still answering: another broker is up"; return 1
    fi
    local args=(serve --override "listeners=PLAINTEXT://$B" --override "log.dirs=$data"
                --override log.flush.offset.checkpoint.interval.ms=3600000)
    for kv in "$@"; do args+=(--override "$kv"); done
    local r
    : >"$BENCH_DIR/broker.log"
    r=$(READY_LOG=$BENCH_DIR/broker.log timeout 900 "$TOOLS/ready" "$PORT" 600 -- "$GREGOR" "${args[@]}") ||
        { say "broker did not start:"; tail -20 "$BENCH_DIR/broker.log" >&2; return 1; }
    BROKER_PID=$(echo "$r" | sed 's/.*"pid":\([0-9]*\).*/\1/')
    READY_MS=$(echo "$r" | sed 's/.*"ready_ms":\([0-9.]*\).*/\1/')
}
stop_broker() { # SIGTERM, wait; prints stop ms
    local t0 t1 i=0
    t0=$(date +%s%N)
    kill -TERM "$BROKER_PID"
    while ! broker_gone "$BROKER_PID" && [ $i -lt 6000 ]; do sleep 0.01; i=$((i + 1)); done
    t1=$(date +%s%N)
    broker_gone "$BROKER_PID" || { say "broker ignored SIGTERM"; kill -KILL "$BROKER_PID"; }
    BROKER_PID=
    echo $(((t1 - t0) / 1000000))
}
kill9_broker() {
    kill -KILL "$BROKER_PID"
    while ! broker_gone "$BROKER_PID"; do sleep 0.01; done
    BROKER_PID=
}
per_gib() { awk -v ms="$1" -v b="$2" 'BEGIN{printf "%.3f", ms / 1000 / (b / 1073741824)}'; }
perf_line() { # parses kafka-producer-perf-test's summary line into JSON fields
    sed -n 's/^\([0-9]*\) records sent, \([0-9.]*\) records\/sec (\([0-9.]*\) MB\/sec), \([0-9.]*\) ms avg latency, \([0-9.]*\) ms max latency, \([0-9]*\) ms 50th, \([0-9]*\) ms 95th, \([0-9]*\) ms 99th.*/"records":\1,"records_per_s":\2,"MBps":\3,"lat_ms_avg":\4,"lat_ms_max":\5,"lat_ms_p50":\6,"lat_ms_p99":\8/p' | tail -1
}
create_topic() { timeout 60 "$GREGOR" topics --bootstrap-server "$B" --create --topic "$1" --partitions "${2:-1}" >/dev/null; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }

# ---- 1. the disk
if want disk; then
say "== disk"
emit "$(timeout 300 "$TOOLS/disk_bench" seqwrite "$BENCH_DIR" "$SIZE_MB")"
emit "$(timeout 300 "$TOOLS/disk_bench" seqdirect "$BENCH_DIR" "$SIZE_MB")"
emit "$(timeout 300 "$TOOLS/disk_bench" fsync "$BENCH_DIR" 2000 4096)"
emit "$(timeout 300 "$TOOLS/disk_bench" fsync "$BENCH_DIR" 1000 65536)"
note "after disk"

fi
# ---- 2. plog directly
if want plog; then
say "== plog append / read"
for every in 0 1 8 64; do
    rm -rf "$BENCH_DIR/plog"
    emit "$(timeout 300 "$TOOLS/plog_bench" append "$BENCH_DIR/plog" "$SIZE_MB" 16 "$every")"
done
emit "$(timeout 300 "$TOOLS/plog_bench" read "$BENCH_DIR/plog" 20000)"
rm -rf "$BENCH_DIR/plog"
note "after plog"

fi
# ---- 3. the broker: append and read
if want broker; then
say "== broker perf"
run_perf() { # LABEL ACKS [broker overrides...]
    local label=$1 acks=$2; shift 2
    rm -rf "$BENCH_DIR/data"
    start_broker "$BENCH_DIR/data" "$@" || return
    create_topic perf 1
    local line
    line=$(timeout 600 "$GREGOR" perf producer --topic perf --num-records "$RECORDS" --record-size 1000 \
        --throughput -1 --producer-props "bootstrap.servers=$B" "acks=$acks" linger.ms=5 2>/dev/null | perf_line)
    emit "{\"mode\":\"broker_produce\",\"config\":\"$label\",$line,\"loadavg\":\"$(load)\"}"
    if [ "$label" = acks1 ]; then
        local c
        c=$(timeout 600 "$GREGOR" perf consumer --bootstrap-server "$B" --topic perf --messages "$RECORDS" \
            --timeout 20000 2>/dev/null | tail -1)
        # start, end, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
        emit "$(echo "$c" | awk -F', ' '{printf "{\"mode\":\"broker_consume\",\"MB\":%s,\"fetch_ms\":%s,\"fetch_MBps\":%s,\"fetch_records_per_s\":%s}", $3, $8, $9, $10}')"
    fi
    stop_broker >/dev/null
}
run_perf acks1 1
run_perf acksall_fsync all
run_perf acksall_nofsync all gregor.acks.all.fsync=false
rm -rf "$BENCH_DIR/data"
note "after broker perf"

fi
# ---- 4. recovery per GB of unflushed data
if want recovery; then
say "== recovery"
rm -rf "$BENCH_DIR/plog"
emit "$(timeout 300 "$TOOLS/plog_bench" crash "$BENCH_DIR/plog" "$SIZE_MB")"
emit "$(timeout 300 "$TOOLS/plog_bench" recover "$BENCH_DIR/plog" | sed 's/"mode":"recover"/"mode":"plog_recover_warm"/')"
rm -rf "$BENCH_DIR/plog"

rm -rf "$BENCH_DIR/data"
start_broker "$BENCH_DIR/data" || exit 1
create_topic rec 4
N=$((SIZE_MB * 1048576 / 1000))
timeout 600 "$GREGOR" perf producer --topic rec --num-records "$N" --record-size 1000 --throughput -1 \
    --producer-props "bootstrap.servers=$B" acks=1 linger.ms=5 >/dev/null 2>&1
kill9_broker
bytes=$(find "$BENCH_DIR/data" -name '*.log' -printf '%s\n' | awk '{s += $1} END {print s}')
# The kill left a log dir with no clean-shutdown marker and recovery points at 0: every byte is
# scanned (CRC over every batch). Warm: the data is still in the page cache.
cp -a "$BENCH_DIR/data" "$BENCH_DIR/data.crashed"   # the same crash, again, for the cold run
start_broker "$BENCH_DIR/data" || exit 1
truncated=$(grep -c "Truncated" "$BENCH_DIR/broker.log")
scanned=$(grep -c "Recover\|recover" "$BENCH_DIR/broker.log")
emit "{\"mode\":\"broker_recover_warm\",\"log_bytes\":$bytes,\"ready_ms\":$READY_MS,\"s_per_GiB\":$(per_gib "$READY_MS" "$bytes"),\"truncation_lines\":$truncated,\"recovery_log_lines\":$scanned,\"loadavg\":\"$(load)\"}"
stop_broker >/dev/null
start_broker "$BENCH_DIR/data" || exit 1
emit "{\"mode\":\"broker_open_clean_after\",\"log_bytes\":$bytes,\"ready_ms\":$READY_MS}"
stop_broker >/dev/null
rm -rf "$BENCH_DIR/data"; mv "$BENCH_DIR/data.crashed" "$BENCH_DIR/data"
if drop_caches; then
    start_broker "$BENCH_DIR/data" || exit 1
    emit "{\"mode\":\"broker_recover_cold\",\"log_bytes\":$bytes,\"ready_ms\":$READY_MS,\"s_per_GiB\":$(per_gib "$READY_MS" "$bytes"),\"loadavg\":\"$(load)\"}"
    stop_broker >/dev/null
else
    note "no cold-cache recovery run: cannot write /proc/sys/vm/drop_caches"
fi
rm -rf "$BENCH_DIR/data"
note "after recovery"

fi
# ---- 5. a log dir with PARTS partitions
if want partitions; then
say "== $PARTS partitions"
# An idle partition holds one fd (its .log; index files are reopened on demand), but every
# segment briefly holds 3 while it is opened or written: ask for room, live with the hard limit.
need_fds=$((PARTS + 1000))
if [ "$(ulimit -Sn)" -lt "$need_fds" ]; then ulimit -Sn "$need_fds" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"; fi
emit "{\"note\":\"fd limit for the partitions run\",\"ulimit_n\":$(ulimit -n),\"wanted\":$need_fds}"
open_run() { # NPARTS
    local np=$1 per=100 topics
    topics=$(((np + per - 1) / per))
    rm -rf "$BENCH_DIR/data"
    # (Before the fix in src/broker/server.c the event loop's fd table was max.connections + 1024
    # and a broker with more than ~3.7k partitions could not even restart: PART_OPTS held
    # max.connections=<fd limit> as a workaround. Now the defaults are measured.)
    PART_OPTS=()
    start_broker "$BENCH_DIR/data" "${PART_OPTS[@]}" || return 1
    local t0; t0=$(date +%s%N)
    # one record in every partition: python + confluent-kafka if present, else empty partitions
    if ! timeout 300 python3 - "$B" "$topics" "$per" <<'PY' 2>>"$BENCH_DIR/create.log"
import sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
b, topics, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a = AdminClient({"bootstrap.servers": b})
for f in a.create_topics([NewTopic("p%03d" % t, per, 1) for t in range(topics)],
                         operation_timeout=60).values():
    f.result(120)
p = Producer({"bootstrap.servers": b, "linger.ms": 20, "message.timeout.ms": 60000})
for t in range(topics):
    for i in range(per):
        p.produce("p%03d" % t, value=b"x" * 100, partition=i)
    p.poll(0)
assert p.flush(120) == 0
PY
    then
        say "creating $np partitions failed:"; tail -5 "$BENCH_DIR/create.log" >&2; tail -5 "$BENCH_DIR/broker.log" >&2
        emit "{\"mode\":\"open_partitions\",\"partitions\":$np,\"error\":\"create/produce failed (see report)\",\"broker_alive\":$(broker_gone "$BROKER_PID" && echo false || echo true),\"ulimit_n\":$(ulimit -n)}"
        [ -n "$BROKER_PID" ] && kill9_broker
        return 1
    fi
    local create_ms=$((($(date +%s%N) - t0) / 1000000))
    local stop_ms; stop_ms=$(stop_broker)
    start_broker "$BENCH_DIR/data" "${PART_OPTS[@]}" || { emit "{\"mode\":\"open_partitions\",\"partitions\":$np,\"error\":\"restart failed\"}"; return 1; }
    local clean_ms=$READY_MS
    kill9_broker
    start_broker "$BENCH_DIR/data" "${PART_OPTS[@]}" || { emit "{\"mode\":\"open_partitions\",\"partitions\":$np,\"error\":\"restart after kill -9 failed\"}"; return 1; }
    local unclean_ms=$READY_MS
    stop_broker >/dev/null
    local cold_ms=null
    if drop_caches && start_broker "$BENCH_DIR/data" "${PART_OPTS[@]}"; then cold_ms=$READY_MS; stop_broker >/dev/null; fi
    emit "{\"mode\":\"open_partitions\",\"partitions\":$np,\"create_and_fill_ms\":$create_ms,\"stop_ms\":$stop_ms,\"clean_open_ready_ms\":$clean_ms,\"clean_open_cold_cache_ready_ms\":$cold_ms,\"after_kill9_ready_ms\":$unclean_ms,\"dir_MB\":$(du -sm "$BENCH_DIR/data" | cut -f1),\"loadavg\":\"$(load)\"}"
    rm -rf "$BENCH_DIR/data"
}
if [ "$(ulimit -n)" -ge "$need_fds" ]; then
    open_run "$PARTS"
else
    # Not enough fds for PARTS partitions (and no permission to raise the hard limit): measure
    # the largest multiple of 1000 that fits, and record what PARTS does.
    fit=$((($(ulimit -n) - 1000) / 1000 * 1000))
    emit "{\"note\":\"hard fd limit $(ulimit -Hn) < $need_fds: running $fit partitions, then $PARTS to see the failure mode\"}"
    open_run "$fit"
    open_run "$PARTS"
fi
fi
note "done"
say "results in $OUT"
