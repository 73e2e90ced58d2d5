#!/usr/bin/env bash
# run.sh: gregor vs Apache Kafka vs librdkafka's mock cluster vs the machine's physical limits,
# all driven by the same load generator (gregor perf, on librdkafka) in one run.
#
# usage: bench/run.sh quick|full     (bench/run-quick.sh and bench/run-full.sh call this)
# env:   BENCH_OUT    scratch dir for binaries, data dirs and logs (default /tmp/gregor-bench)
#        BENCH_SYSTEMS  which brokers to load (default "gregor kafka mock")
#        BENCH_PHASES   "main" (throughput, consume, e2e, footprint), "scale" (10k partitions
#                       and 5k open connections, gregor and Kafka) or both (default "main scale")
#        BENCH_ENQUEUE_BATCH  records the load generator hands librdkafka per call in the produce
#                             cells (gregor perf --enqueue-batch; default 1000); the headline 1 KB
#                             cells also run with 1, one producev per record as Kafka's tool does
#        BENCH_QUIET_BUSY  % of one core that other processes may use before a measurement
#                          starts; above it we wait (quick: up to ~3 s, full: ~30 s), record what
#                          we saw, and repeat a noisy produce run once, keeping both rows (default 25)
# output: bench/results/<date>-<mode>.json (one object: machine, limits, runs) plus plots in
#         docs/bench/ and a perf profile of gregor in bench/results/<date>-<mode>-profile.txt
set -euo pipefail

MODE=${1:-quick}
case "$MODE" in quick|full) ;; *) echo "usage: $0 quick|full" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_OUT=${BENCH_OUT:-/tmp/gregor-bench}
SYSTEMS=${BENCH_SYSTEMS:-gregor kafka mock}
QUIET_BUSY=${BENCH_QUIET_BUSY:-25}
GREGOR=$ROOT/build/gregor
BIN=$BENCH_OUT/bin
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
RESULTS_DIR=$ROOT/bench/results
JSONL=$BENCH_OUT/$STAMP-$MODE.jsonl
RESULT=$RESULTS_DIR/$STAMP-$MODE.json
PROFILE=$RESULTS_DIR/$STAMP-$MODE-profile.txt
KAFKA_SH=$ROOT/tests/kafka_harness/kafka.sh
# What bin/kafka-server-start.sh and kafka-run-class.sh set when KAFKA_HEAP_OPTS and
# KAFKA_JVM_PERFORMANCE_OPTS are unset (the harness's own default is a smaller -Xmx512m).
KAFKA_JVM_OPTS="-Xmx1G -Xms1G -server -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"

if [ "$MODE" = quick ]; then
    SIZES="100 1024 10240"; ACKS="1 all"; PARTS="1 16"; PRODUCERS="1"
    BYTES_PER_RUN=$((300 * 1024 * 1024)); E2E_SECS=8; E2E_LOADS="50"; E2E_FIXED="20000"; E2E_REPS=3; READY_REPS_GREGOR=3
    READY_REPS_KAFKA=1; LIMIT_SECS=1; DISK_MIB=1024; FSYNC_COUNT=2000; QUIET_TRIES=1
    SCALE_TOPICS=100; SCALE_PARTS=100; SCALE_CREATE_BOUND=150; SCALE_PRODUCE_SECS=5
    SCALE_CONNS=5000; SCALE_PROBE_SECS=4; SCALE_STOP_BOUND=60; SCALE_START_BOUND=120
    SCALE_QUEUE=20000
else
    SIZES="100 1024 10240"; ACKS="0 1 all"; PARTS="1 16 256"; PRODUCERS="1 4"
    BYTES_PER_RUN=$((1024 * 1024 * 1024)); E2E_SECS=20; E2E_LOADS="25 50 75"; E2E_FIXED="10000 50000"; E2E_REPS=3; READY_REPS_GREGOR=5
    READY_REPS_KAFKA=3; LIMIT_SECS=3; DISK_MIB=4096; FSYNC_COUNT=10000; QUIET_TRIES=10
    SCALE_TOPICS=100; SCALE_PARTS=100; SCALE_CREATE_BOUND=600; SCALE_PRODUCE_SECS=15
    SCALE_CONNS=5000; SCALE_PROBE_SECS=10; SCALE_STOP_BOUND=300; SCALE_START_BOUND=600
    SCALE_QUEUE=100000
fi
E2E_PROBE_RATE=2000000; E2E_PROBE_SECS=2
ENQ=${BENCH_ENQUEUE_BATCH:-1000}
PHASES=${BENCH_PHASES:-main scale}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- noise: other engineers' tests share these 2 cores -----------------------------------------

# Percent of one core used by everything on the machine over the next second (we are idle then).
busy_pct() {
    read -r _ a b c d e f g h _ </proc/stat; t1=$((a+b+c+d+e+f+g+h)); i1=$((d+e))
    sleep 1
    read -r _ a b c d e f g h _ </proc/stat; t2=$((a+b+c+d+e+f+g+h)); i2=$((d+e))
    echo $(( (100 * ncpu * ((t2-t1) - (i2-i1))) / ((t2-t1) > 0 ? (t2-t1) : 1) ))
}
ncpu=$(nproc)

# The same page-cache state before every produce and latency run, whichever broker ran before:
# writes into page-cache memory that was recently freed run at ~5 GB/s on this VM, into memory
# the guest has not touched since boot at ~0.4 GB/s (bench/limits disk, BENCHMARKS.md), so a
# run's speed otherwise depends on how much the runs before it left cached. Root only;
# BENCH_DROP_CACHES=0 turns it off (then every row records page_cache_dropped=false).
settle_page_cache() {
    export DROPPED=false
    [ "${BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ] || return 0
    sync && echo 1 >/proc/sys/vm/drop_caches && DROPPED=true
}

# Wait (bounded) for the machine to go quiet; leaves NOISE_BUSY and NOISE_LOAD for the record.
wait_quiet() {
    local tries=0
    NOISE_BUSY=$(busy_pct)
    while [ "$NOISE_BUSY" -gt "$QUIET_BUSY" ] && [ $tries -lt "$QUIET_TRIES" ]; do
        sleep 2; tries=$((tries + 1)); NOISE_BUSY=$(busy_pct)
    done
    NOISE_LOAD=$(cut -d' ' -f1 /proc/loadavg)
}

# --- helpers ------------------------------------------------------------------------------------

free_port() {  # a port with nothing listening on it nor on the next one (Kafka's controller)
    python3 - <<'PY'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    ok = True
    for q in (p, p + 1):
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        t.close()
    if ok and p < 65000:
        print(p); break
PY
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# CPU ticks (utime + stime) a process has used so far; 0 when there is none to measure.
cpu_ticks() { [ "${1:-0}" != 0 ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

emit() { echo "$1" >>"$JSONL"; }  # one JSON object per line; assembled at the end

build_tools() {
    mkdir -p "$BIN"
    make -C "$ROOT" -s all >&2 || die "make failed"
    for p in limits mock_cluster e2e_latency start_ready conns; do
        cc -std=c11 -O2 -Wall -Wextra -Werror -o "$BIN/$p" "$ROOT/bench/$p.c" \
            -lrdkafka -lpthread -lm || die "cannot build bench/$p.c"
    done
}

machine_json() {
    local disk_dev model
    disk_dev=$(df --output=source "$BENCH_OUT" | tail -1)
    model=$(lsblk -ndo MODEL,ROTA,SIZE "$disk_dev" 2>/dev/null | tr -s ' ' || true)
    python3 - "$disk_dev" "$model" <<'PY'
import json, os, platform, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
mem = sh("awk '/MemTotal/ {print $2}' /proc/meminfo")
print(json.dumps({"type": "machine", "nproc": os.cpu_count(), "cpu": cpu,
    "mem_kib": int(mem or 0), "kernel": platform.release(), "disk_device": sys.argv[1],
    "disk_model_rota_size": sys.argv[2] or "virtual disk (lsblk reports no model)",
    "fs": sh("df -T " + os.environ.get("BENCH_OUT", "/tmp") + " | awk 'NR==2 {print $2}'"),
    "librdkafka": sh("pkg-config --modversion rdkafka"),
    "java": sh("java -version 2>&1 | head -1"),
    "gregor_commit": sh("git -C " + os.environ["ROOT"] + " rev-parse --short HEAD"),
    "gregor_dirty": sh("git -C " + os.environ["ROOT"] + " status --porcelain -- src | wc -l")}))
PY
}

# --- physical limits ----------------------------------------------------------------------------

run_limits() {
    log "physical limits"
    local s
    for s in 100 1024 10240 65536 1048576; do
        wait_quiet
        emit "$("$BIN/limits" tcp "$s" "$LIMIT_SECS" | sed "s/}\$/,\"busy_pct\":$NOISE_BUSY,\"load1\":$NOISE_LOAD}/")"
    done
    wait_quiet
    emit "$("$BIN/limits" memcpy "$LIMIT_SECS" | sed "s/}\$/,\"busy_pct\":$NOISE_BUSY,\"load1\":$NOISE_LOAD}/")"
    mkdir -p "$BENCH_OUT/disk"
    wait_quiet
    emit "$("$BIN/limits" disk "$BENCH_OUT/disk" "$DISK_MIB" | sed "s/}\$/,\"busy_pct\":$NOISE_BUSY,\"load1\":$NOISE_LOAD}/")"
    for s in 1024 65536; do
        wait_quiet
        emit "$("$BIN/limits" fsync "$BENCH_OUT/disk" "$FSYNC_COUNT" "$s" | sed "s/}\$/,\"busy_pct\":$NOISE_BUSY,\"load1\":$NOISE_LOAD}/")"
    done
}

# --- brokers ------------------------------------------------------------------------------------
# Each start_* sets BOOT (host:port) and BPID (the broker's pid; 0 for none we can measure).

start_gregor() {  # start_gregor [keep]: keep = start on the data dir of the last run
    local port data
    data=$BENCH_OUT/gregor-data
    if [ "${1:-}" = keep ]; then port=${GREGOR_PORT:?}; else
        port=$(free_port); rm -rf "$data"; mkdir -p "$data"; fi
    GREGOR_PORT=$port
    local out
    out=$(START_READY_LOG=$BENCH_OUT/gregor.log "$BIN/start_ready" "$port" "${START_BOUND:-30}" -- \
        "$GREGOR" serve --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$data") \
        || { start_failed "gregor did not start (log: $BENCH_OUT/gregor.log)"; return 1; }
    BOOT=127.0.0.1:$port; BPID=$(json_field "$out" pid); READY_MS=$(json_field "$out" ready_ms)
}
# The main phase cannot go on without its broker; the scale phase records the failure instead.
start_failed() { if [ -n "${SOFT_START:-}" ]; then log "$*"; else die "$*"; fi; }
stop_gregor() { kill -TERM "$BPID" 2>/dev/null || true; wait_gone "$BPID"; }

wait_gone() { local i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null || true; }

# Kafka: kafka.sh formats the storage and writes server.properties; the timed start is a second
# start of the same java command on that formatted dir, so the JVM start is measured, not the
# storage tool.
kafka_env() { export KAFKA_PORT=$1 KAFKA_STATE=${KAFKA_STATE_DIR:-$BENCH_OUT/kafka} KAFKA_HEAP="$KAFKA_JVM_OPTS"; }
start_kafka() {
    local port out
    if [ -z "${KAFKA_PREPARED:-}" ]; then
        port=$(free_port); kafka_env "$port"
        "$KAFKA_SH" start >&2 || die "kafka.sh start failed"
        "$KAFKA_SH" stop >&2
        KAFKA_CP=$("$KAFKA_SH" classpath); KAFKA_PREPARED=$port
    fi
    port=$KAFKA_PREPARED; kafka_env "$port"
    # shellcheck disable=SC2086  # KAFKA_JVM_OPTS is a list of words
    out=$(START_READY_LOG=$KAFKA_STATE/stdout.log "$BIN/start_ready" "$port" "${START_BOUND:-120}" -- java \
        $KAFKA_JVM_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$KAFKA_STATE/log4j2.properties" -cp "$KAFKA_CP" \
        kafka.Kafka "$KAFKA_STATE/server.properties") \
        || { start_failed "kafka did not start within ${START_BOUND:-120} s ($KAFKA_STATE)"; return 1; }
    BOOT=127.0.0.1:$port; BPID=$(json_field "$out" pid); READY_MS=$(json_field "$out" ready_ms)
    echo "$BPID" >"$KAFKA_STATE/kafka.pid"
}
stop_kafka() { kafka_env "$KAFKA_PREPARED"; "$KAFKA_SH" stop >&2 || true; wait_gone "$BPID"; }

# The mock cluster keeps every record in memory, so it is restarted for each scenario with the
# one topic the scenario needs.
start_mock() {  # start_mock TOPIC:PARTITIONS
    local fifo=$BENCH_OUT/mock.out
    "$BIN/mock_cluster" "$@" >"$fifo" 2>"$BENCH_OUT/mock.log" &
    BPID=$!
    local i=0
    while ! grep -q '^bootstrap' "$fifo" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    BOOT=$(awk '/^bootstrap/ {print $2}' "$fifo")
    [ -n "$BOOT" ] || die "mock cluster did not start"
}
stop_mock() { kill -TERM "$BPID" 2>/dev/null || true; wait "$BPID" 2>/dev/null || true; }

# Each produce run leaves up to 1 GiB behind: the full matrix would fill the disk with ~50 GB
# per broker, so the topic of the run before is deleted when the next one starts (Kafka then
# removes its files after file.delete.delay.ms).
drop_last_topic() {  # drop_last_topic SYSTEM
    [ "$1" != mock ] && [ -n "${DROP_TOPIC:-}" ] && "$GREGOR" topics --bootstrap-server "$BOOT" \
        --delete --topic "$DROP_TOPIC" >/dev/null 2>&1 || true
    DROP_TOPIC=
}

# measured_topic SYSTEM TOPIC PARTITIONS: the fresh topic a measurement runs on - the previous
# one deleted, the page cache settled, the machine quiet.
measured_topic() {
    drop_last_topic "$1"
    create_topic "$1" "$2" "$3"
    DROP_TOPIC=$2
    settle_page_cache
    wait_quiet
}

create_topic() {  # create_topic SYSTEM TOPIC PARTITIONS
    if [ "$1" = mock ]; then stop_mock; start_mock "$2:$3"; return; fi
    "$GREGOR" topics --bootstrap-server "$BOOT" --create --topic "$2" --partitions "$3" \
        --replication-factor 1 >/dev/null || die "$1: cannot create topic $2"
}

# --- scenarios ----------------------------------------------------------------------------------

# produce SYSTEM SIZE ACKS PARTITIONS PRODUCERS [ENQUEUE]: a perf producer run (or N in
# parallel) handing the client ENQUEUE records per call (default $ENQ); when other processes
# were busy before it, a second run on a fresh topic (both rows are kept).
produce() {
    ATTEMPT=1
    produce_once "$@"
    if [ "$NOISE_BUSY" -gt "$QUIET_BUSY" ]; then ATTEMPT=2; produce_once "$@"; fi
}
produce_once() {
    local sys=$1 size=$2 acks=$3 parts=$4 nprod=$5 enq=${6:-$ENQ}
    local topic="p-$size-$acks-$parts-$nprod-$RANDOM" records=$((BYTES_PER_RUN / size))
    [ "$records" -gt 5000000 ] && records=5000000
    records=$((records / nprod))
    measured_topic "$sys" "$topic" "$parts"
    local cmd="gregor perf producer --topic $topic --num-records $records --record-size $size --throughput -1 --enqueue-batch $enq --producer-props bootstrap.servers=$BOOT acks=$acks"
    local i outs=() t0 t1 c0 c1
    c0=$(cpu_ticks "$BPID")
    t0=$(date +%s.%N)
    for i in $(seq 1 "$nprod"); do
        # bash's `time` reports the client's own CPU seconds (user sys) into perf.N.cpu
        ( TIMEFORMAT='%3U %3S'; time "$GREGOR" perf producer --topic "$topic" \
            --num-records "$records" --record-size "$size" --throughput -1 \
            --enqueue-batch "$enq" --producer-props "bootstrap.servers=$BOOT" "acks=$acks" \
            >"$BENCH_OUT/perf.$i.out" 2>"$BENCH_OUT/perf.$i.err" ) 2>"$BENCH_OUT/perf.$i.cpu" &
        outs+=($!)
    done
    local rc=0
    for i in "${outs[@]}"; do wait "$i" || rc=1; done
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$BPID")
    local rss=0; [ "$BPID" != 0 ] && rss=$(rss_kb "$BPID")
    python3 - "$sys" "$size" "$acks" "$parts" "$nprod" "$records" "$t0" "$t1" "$rc" "$rss" \
        "$NOISE_BUSY" "$NOISE_LOAD" "$cmd" "$BENCH_OUT" "$ATTEMPT" "$((c1 - c0))" "$CLK_TCK" "$enq" \
        <<'PY' >>"$JSONL"
import json, re, sys
sys_, size, acks, parts, nprod, records, t0, t1, rc, rss, busy, load, cmd, out, att, ticks, hz, enq \
    = sys.argv[1:]
rate = mb = 0.0; lat = {}
client_cpu = 0.0
for i in range(1, int(nprod) + 1):
    try:
        client_cpu += sum(float(x) for x in open(f"{out}/perf.{i}.cpu").read().split()[-2:])
    except (OSError, ValueError):
        pass
gb = int(records) * int(nprod) * int(size) / 1e9
cpu = {"broker_cpu_s": round(int(ticks) / int(hz), 2), "client_cpu_s": round(client_cpu, 2),
       "broker_cpu_s_per_GB": round(int(ticks) / int(hz) / gb, 3),
       "client_cpu_s_per_GB": round(client_cpu / gb, 3)}
for i in range(1, int(nprod) + 1):
    line = open(f"{out}/perf.{i}.out").read()
    m = re.search(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg "
                  r"latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, "
                  r"(\d+) ms 99.9th", line)
    if not m:
        continue
    rate += float(m[2]); mb += float(m[3])
    if i == 1:
        lat = {"ack_avg_ms": float(m[4]), "ack_p50_ms": int(m[6]), "ack_p99_ms": int(m[8]),
               "ack_p999_ms": int(m[9]), "ack_max_ms": float(m[5])}
        u = re.search(r"latency.us: ([\d.]+) avg, (\d+) max, (\d+) 50th, (\d+) 95th, (\d+) 99th, "
                      r"(\d+) 99.9th", line)
        if u:
            lat.update({"ack_avg_us": float(u[1]), "ack_p50_us": int(u[3]),
                        "ack_p99_us": int(u[5]), "ack_p999_us": int(u[6]), "ack_max_us": int(u[2])})
print(json.dumps({"type": "produce", "system": sys_, "record_size": int(size), "acks": acks,
    "partitions": int(parts), "producers": int(nprod), "records_per_producer": int(records),
    "enqueue_batch": int(enq),
    "attempt": int(att), "wall_s": round(float(t1) - float(t0), 3),
    "page_cache_dropped": __import__("os").environ.get("DROPPED") == "true",
    "records_per_s": round(rate, 1), "MBps": round(mb, 2), **lat, **cpu, "ok": rc == "0",
    "broker_rss_kib": int(rss), "busy_pct_before": int(busy), "load1_before": float(load),
    "command": cmd}))
PY
    [ "$rc" = 0 ] || log "$sys produce $size/$acks/$parts/$nprod FAILED: $(tail -2 "$BENCH_OUT"/perf.1.err)"
    LAST_TOPIC=$topic; LAST_RECORDS=$((records * nprod))
    tail -1 "$JSONL" | cut -c1-200 >&2
}

# consume SYSTEM: a 1 KB acks=1 single-partition topic just written (so in page cache), read back.
consume() {
    local sys=$1 rep
    produce "$sys" 1024 1 1 1
    for rep in 1 2; do
        wait_quiet
        local cmd="gregor perf consumer --bootstrap-server $BOOT --topic $LAST_TOPIC --messages $LAST_RECORDS --timeout 20000"
        local out rc=0 c0 c1
        c0=$(cpu_ticks "$BPID")
        ( TIMEFORMAT='%3U %3S'; time "$GREGOR" perf consumer --bootstrap-server "$BOOT" \
            --topic "$LAST_TOPIC" --messages "$LAST_RECORDS" --timeout 20000 \
            >"$BENCH_OUT/consume.out" 2>"$BENCH_OUT/consume.err" ) 2>"$BENCH_OUT/consume.cpu" || rc=1
        c1=$(cpu_ticks "$BPID")
        out=$(tail -1 "$BENCH_OUT/consume.out")
        python3 - "$sys" "$out" "$rc" "$NOISE_BUSY" "$NOISE_LOAD" "$cmd" "$rep" "$((c1 - c0))" \
            "$CLK_TCK" "$BENCH_OUT/consume.cpu" <<'PY' >>"$JSONL"
import json, sys
sys_, line, rc, busy, load, cmd, rep, ticks, hz, cpuf = sys.argv[1:]
f = [x.strip() for x in line.split(",")]
ok = rc == "0" and len(f) == 10
try:
    client_cpu = sum(float(x) for x in open(cpuf).read().split()[-2:])
except (OSError, ValueError):
    client_cpu = 0.0
gb = float(f[2]) * 1048576 / 1e9 if ok else 0
cpu = {"broker_cpu_s": round(int(ticks) / int(hz), 2), "client_cpu_s": round(client_cpu, 2),
       "broker_cpu_s_per_GB": round(int(ticks) / int(hz) / gb, 3) if gb else 0,
       "client_cpu_s_per_GB": round(client_cpu / gb, 3) if gb else 0}
print(json.dumps({"type": "consume", "system": sys_, "record_size": 1024, "rep": int(rep),
    "MB": float(f[2]) if ok else 0, "MBps_total": float(f[3]) if ok else 0,
    "records": int(f[4]) if ok else 0, "rebalance_ms": int(f[6]) if ok else 0,
    "fetch_ms": int(f[7]) if ok else 0, "MBps": float(f[8]) if ok else 0,
    "records_per_s": float(f[9]) if ok else 0, **cpu, "ok": ok, "busy_pct_before": int(busy),
    "load1_before": float(load), "command": cmd}))
PY
        tail -1 "$JSONL" | cut -c1-200 >&2
    done
}

# e2e SYSTEM TAG RATE: end-to-end latency of 1 KB records at a fixed offered rate. TAG names the
# rate: "<pct>pct-own-max", "50pct-kafka-max" or "fixed".
e2e() {
    local sys=$1 pct=$2 rate=$3 rep reps=1
    # The 50 % points decide a target and vary a lot from run to run on this VM (page-cache
    # state, see BENCHMARKS.md): E2E_REPS runs each, summarize.py quotes the median p99.
    case $pct in 50pct-*) reps=$E2E_REPS ;; esac
    for rep in $(seq 1 "$reps"); do e2e_once "$sys" "$pct" "$rate" "$rep"; done
    # The plotted distribution is the median run's.
    rep=$(python3 - "$JSONL" "$sys" "$pct" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
rs = sorted((r for r in rs if r.get("type") == "e2e" and r["system"] == sys.argv[2]
             and r["tag"] == sys.argv[3] and r.get("p99_us")), key=lambda r: r["p99_us"])
print(rs[len(rs) // 2]["rep"] if rs else 1)
PY
)
    local q=$BENCH_OUT/e2e-$sys-$pct-r$rep.quantiles
    [ -f "$q" ] && cp "$q" "$RESULTS_DIR/$STAMP-$MODE-e2e-$sys-$pct.quantiles"
}
e2e_once() {
    local sys=$1 pct=$2 rate=$3 rep=$4 topic="e2e-$2-$RANDOM"
    measured_topic "$sys" "$topic" 1
    local q=$BENCH_OUT/e2e-$sys-$pct-r$rep.quantiles out rc=0
    out=$(E2E_QUANTILES=$q "$BIN/e2e_latency" "$BOOT" "$topic" "$rate" "$E2E_SECS" 1024 \
        2>"$BENCH_OUT/e2e.err") || rc=1
    [ -n "$out" ] || out='{}'
    python3 - "$sys" "$pct" "$out" "$rc" "$NOISE_BUSY" "$NOISE_LOAD" \
        "bench/e2e_latency $BOOT $topic $rate $E2E_SECS 1024" "$rep" <<'PY' >>"$JSONL"
import json, sys
sys_, pct, out, rc, busy, load, cmd, rep = sys.argv[1:]
print(json.dumps({"type": "e2e", "system": sys_, "tag": pct, "rep": int(rep),
    "page_cache_dropped": __import__("os").environ.get("DROPPED") == "true", **json.loads(out),
    "ok": rc == "0", "busy_pct_before": int(busy), "load1_before": float(load), "command": cmd}))
PY
    tail -1 "$JSONL" | cut -c1-200 >&2
}

# The measured max for 1 KB acks=1, 1 partition, 1 producer: the e2e rates are fractions of it.
# e2e_max SYSTEM: offers E2E_PROBE_RATE records/s (more than any broker here delivers) for
# E2E_PROBE_SECS through bench/e2e_latency - the same 4 M records for every broker - and prints
# the rate at which they came out of the consumer (all of them delivered).
e2e_max() {
    local sys=$1 topic="e2e-max-$RANDOM" out
    measured_topic "$sys" "$topic" 1
    out=$("$BIN/e2e_latency" "$BOOT" "$topic" "$E2E_PROBE_RATE" "$E2E_PROBE_SECS" 1024 \
        2>"$BENCH_OUT/e2e.err") || true
    [ -n "$out" ] || out='{}'
    python3 - "$sys" "$out" "bench/e2e_latency $BOOT $topic $E2E_PROBE_RATE $E2E_PROBE_SECS 1024" \
        <<'PY' >>"$JSONL"
import json, sys
d = json.loads(sys.argv[2])
print(json.dumps({"type": "e2e_max", "system": sys.argv[1], "offered": d.get("rate", 0),
    "delivered_rate": d.get("delivered_rate", 0), "received": d.get("received", 0),
    "sent": d.get("sent", 0), "command": sys.argv[3]}))
PY
    tail -1 "$JSONL" | cut -c1-200 >&2
    python3 -c "import json,sys; print(int(json.loads(sys.argv[1]).get('delivered_rate', 0)))" "$out"
}

max_rate() {
    python3 - "$JSONL" "$1" <<'PY'
import json, sys
best = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == "produce" and r["system"] == sys.argv[2] and r["record_size"] == 1024 \
            and r["acks"] == "1" and r["partitions"] == 1 and r["producers"] == 1:
        best = max(best, r["records_per_s"])
print(int(best))
PY
}

profile_gregor() {  # perf record of gregor while it takes 1 KB acks=1 and acks=all produce load
    command -v perf >/dev/null || { echo "perf not installed" >"$PROFILE"; return; }
    local acks topic
    : >"$PROFILE"
    for acks in 1 all; do
        topic=prof-$acks-$RANDOM
        create_topic gregor "$topic" 1
        perf record -F 1999 -g -o "$BENCH_OUT/perf-$acks.data" -p "$BPID" 2>/dev/null &
        local ppid=$!
        sleep 0.5
        "$GREGOR" perf producer --topic "$topic" --num-records 300000 --record-size 1024 \
            --throughput -1 --enqueue-batch "$ENQ" --producer-props "bootstrap.servers=$BOOT" "acks=$acks" \
            >>"$PROFILE.perfline" 2>/dev/null || true
        kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
        {
            echo "=== gregor, 1 KB records, acks=$acks, 300000 records (--enqueue-batch $ENQ): perf report --no-children (self time)"
            tail -1 "$PROFILE.perfline"
            perf report -i "$BENCH_OUT/perf-$acks.data" --stdio --no-children --sort symbol \
                -g none --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
            echo "=== by DSO"
            perf report -i "$BENCH_OUT/perf-$acks.data" --stdio --no-children --sort dso -g none \
                2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
            echo
        } >>"$PROFILE"
    done
    rm -f "$PROFILE.perfline"
}

# --- scale: 5k open connections, 10k partitions (gregor and Kafka) -------------------------------

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# probe SYS TAG: another client's latency while the broker holds what it holds now - e2e
# (produce -> fetch, bench/e2e_latency) and produce -> ack (gregor perf), both 1 KB at 1000/s
# on a fresh 1-partition topic.
probe() {
    local sys=$1 tag=$2 topic="probe-$2-$RANDOM" e2e ack rc=0
    create_topic "$sys" "$topic" 1
    wait_quiet
    e2e=$(timeout $((SCALE_PROBE_SECS + 60)) "$BIN/e2e_latency" "$BOOT" "$topic" 1000 \
        "$SCALE_PROBE_SECS" 1024 2>>"$BENCH_OUT/probe.err") || rc=1
    ack=$(timeout $((SCALE_PROBE_SECS + 60)) "$GREGOR" perf producer --topic "$topic" \
        --duration-sec "$SCALE_PROBE_SECS" --record-size 1024 --throughput 1000 \
        --producer-props "bootstrap.servers=$BOOT" acks=1 linger.ms=0 2>>"$BENCH_OUT/probe.err" \
        | grep '^latency.us' || true)
    [ -n "$e2e" ] || e2e='{}'
    python3 - "$sys" "$tag" "$e2e" "$ack" "$rc" "$NOISE_BUSY" "$NOISE_LOAD" "$(rss_kb "$BPID")" \
        "$(fd_count "$BPID")" "bench/e2e_latency $BOOT $topic 1000 $SCALE_PROBE_SECS 1024; gregor perf producer --topic $topic --duration-sec $SCALE_PROBE_SECS --record-size 1024 --throughput 1000 --producer-props bootstrap.servers=$BOOT acks=1 linger.ms=0" <<'PY' >>"$JSONL"
import json, re, sys
sys_, tag, e2e, ack, rc, busy, load, rss, fds, cmd = sys.argv[1:]
r = {"type": "probe", "system": sys_, "tag": tag, "e2e": json.loads(e2e), "ok": rc == "0",
     "broker_rss_kib": int(rss), "broker_fds": int(fds), "busy_pct_before": int(busy),
     "load1_before": float(load), "command": cmd}
m = re.search(r"([\d.]+) avg, (\d+) max, (\d+) 50th, (\d+) 95th, (\d+) 99th, (\d+) 99.9th", ack)
if m:
    r["ack_us"] = {"avg": float(m[1]), "max": int(m[2]), "p50": int(m[3]), "p99": int(m[5]),
                   "p999": int(m[6])}
print(json.dumps(r))
PY
    tail -1 "$JSONL" | cut -c1-240 >&2
}

# scale_conns SYS: SCALE_CONNS idle connections (each after an ApiVersions exchange) held by
# bench/conns; broker RSS/fds and a probe with and without them.
scale_conns() {
    local sys=$1 cpid out i=0
    probe "$sys" no-conns
    local rss0; rss0=$(rss_kb "$BPID")
    wait_quiet
    "$BIN/conns" 127.0.0.1 "${BOOT##*:}" "$SCALE_CONNS" >"$BENCH_OUT/conns.out" 2>"$BENCH_OUT/conns.err" &
    cpid=$!
    while [ ! -s "$BENCH_OUT/conns.out" ] && [ $i -lt 1200 ] && kill -0 "$cpid" 2>/dev/null; do
        sleep 0.1; i=$((i + 1)); done
    sleep 1
    local rss1 fds1; rss1=$(rss_kb "$BPID"); fds1=$(fd_count "$BPID")
    probe "$sys" "${SCALE_CONNS}-conns"
    kill -TERM "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true
    python3 - "$sys" "$BENCH_OUT/conns.out" "$rss0" "$rss1" "$fds1" "$(rss_kb "$BPID")" \
        "$SCALE_CONNS" "$NOISE_BUSY" "$NOISE_LOAD" "bench/conns 127.0.0.1 ${BOOT##*:} $SCALE_CONNS" <<'PY' >>"$JSONL"
import json, sys
sys_, path, rss0, rss1, fds1, rss2, want, busy, load, cmd = sys.argv[1:]
lines = [json.loads(l) for l in open(path) if l.strip()]
r = {"type": "conns", "system": sys_, "wanted": int(want), **(lines[0] if lines else {}),
     **(lines[1] if len(lines) > 1 else {}), "rss_before_kib": int(rss0),
     "rss_held_kib": int(rss1), "fds_held": int(fds1), "rss_after_close_kib": int(rss2),
     "busy_pct_before": int(busy), "load1_before": float(load), "command": cmd}
print(json.dumps(r))
PY
    tail -1 "$JSONL" >&2
}

# scale_partitions SYS: SCALE_TOPICS x SCALE_PARTS partitions (bounded in time), RSS and fds;
# produce 1 KB records across all of them; clean stop; start-to-ready on that dir; idle RSS.
scale_partitions() {
    local sys=$1 i t0 created=0 ntopics=0 err="" topics="" timed_out=false
    wait_quiet
    local busy=$NOISE_BUSY load=$NOISE_LOAD
    t0=$(date +%s.%N)
    for i in $(seq -w 0 $((SCALE_TOPICS - 1))); do
        if [ "$(echo "$(date +%s.%N) - $t0 > $SCALE_CREATE_BOUND" | bc)" = 1 ]; then
            timed_out=true; break; fi
        if ! "$GREGOR" topics --bootstrap-server "$BOOT" --create --topic "tp-$i" \
                --partitions "$SCALE_PARTS" --replication-factor 1 >/dev/null 2>"$BENCH_OUT/scale.err"; then
            err=$(tr '\n' ' ' <"$BENCH_OUT/scale.err" | tr -d '"\\' | cut -c1-300); break
        fi
        created=$((created + SCALE_PARTS)); ntopics=$((ntopics + 1)); topics="$topics${topics:+,}tp-$i"
    done
    local api_s; api_s=$(echo "$(date +%s.%N) - $t0" | bc)
    # Kafka answers CreateTopics once the controller committed the records; the broker makes
    # the logs afterwards. Count as created when every partition's directory exists (bounded).
    local dir=$BENCH_OUT/gregor-data have=0
    [ "$sys" = kafka ] && dir=$KAFKA_STATE/data
    while :; do
        have=$(find "$dir" -mindepth 1 -maxdepth 1 -name 'tp-*' 2>/dev/null | wc -l)
        [ "$have" -ge "$created" ] && break
        [ "$(echo "$(date +%s.%N) - $t0 > $SCALE_CREATE_BOUND" | bc)" = 1 ] && { timed_out=true; break; }
        sleep 0.2
    done
    local create_s; create_s=$(echo "$(date +%s.%N) - $t0" | bc)
    sleep 2
    emit "{\"type\":\"partitions_created\",\"system\":\"$sys\",\"wanted\":$((SCALE_TOPICS * SCALE_PARTS)),\"created\":$created,\"topics\":$ntopics,\"create_s\":$create_s,\"create_api_s\":$api_s,\"log_dirs\":$have,\"timed_out\":$timed_out,\"error\":\"$err\",\"rss_kib\":$(rss_kb "$BPID"),\"fds\":$(fd_count "$BPID"),\"fd_limit\":$(awk '/Max open files/ {print $4}' "/proc/$BPID/limits"),\"busy_pct_before\":$busy,\"load1_before\":$load,\"command\":\"gregor topics --bootstrap-server $BOOT --create --topic tp-NN --partitions $SCALE_PARTS (NN = 00..$((SCALE_TOPICS - 1)), one after another, bound $SCALE_CREATE_BOUND s)\"}"
    tail -1 "$JSONL" >&2
    [ "$ntopics" -gt 0 ] || return 0
    # Across all of them: null keys, and no sticky partitioning, so each record picks a random
    # partition of the topic, and the topics take turns. At most SCALE_QUEUE records wait in
    # the producer, so the flush after the timed part stays short on a slow broker. The
    # broker's CPU seconds for the run are recorded too: one librdkafka producer spreading
    # over 10k partitions can be the bottleneck itself.
    wait_quiet
    local line rc=0 cpu0 cpu1
    cpu0=$(cpu_ticks "$BPID")
    line=$(timeout $((SCALE_PRODUCE_SECS + 150)) "$GREGOR" perf producer --topic "$topics" \
        --duration-sec "$SCALE_PRODUCE_SECS" --num-records 3000000 --record-size 1024 --throughput -1 \
        --producer-props "bootstrap.servers=$BOOT" acks=1 sticky.partitioning.linger.ms=0 \
        "queue.buffering.max.messages=$SCALE_QUEUE" 2>"$BENCH_OUT/scale-produce.err" | tail -2 | tr '\n' ' ') || rc=1
    cpu1=$(cpu_ticks "$BPID")
    python3 - "$sys" "$created" "$line" "$rc" "$NOISE_BUSY" "$NOISE_LOAD" "$(rss_kb "$BPID")" \
        "$(( (cpu1 - cpu0) * 1000 / $(getconf CLK_TCK) ))" \
        "gregor perf producer --topic tp-00,...,tp-$(printf %02d $((ntopics - 1))) --duration-sec $SCALE_PRODUCE_SECS --num-records 3000000 --record-size 1024 --throughput -1 --producer-props bootstrap.servers=$BOOT acks=1 sticky.partitioning.linger.ms=0 queue.buffering.max.messages=$SCALE_QUEUE" <<'PY' >>"$JSONL"
import json, re, sys
sys_, parts, line, rc, busy, load, rss, cpu_ms, cmd = sys.argv[1:]
m = re.search(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", line)
u = re.search(r"latency.us: ([\d.]+) avg, (\d+) max, (\d+) 50th, (\d+) 95th, (\d+) 99th", line)
print(json.dumps({"type": "partitions_produce", "system": sys_, "partitions": int(parts),
    "records": int(m[1]) if m else 0, "records_per_s": float(m[2]) if m else 0,
    "MBps": float(m[3]) if m else 0, "broker_cpu_ms": int(cpu_ms),
    "wall_s": round(int(m[1]) / float(m[2]), 2) if m and float(m[2]) else None, "ack_p50_us": int(u[3]) if u else None,
    "ack_p99_us": int(u[5]) if u else None, "ok": rc == "0" and bool(m),
    "broker_rss_kib": int(rss), "busy_pct_before": int(busy), "load1_before": float(load),
    "command": cmd}))
PY
    tail -1 "$JSONL" >&2
    # Clean stop (SIGTERM), bounded; then a timed start on the same dir.
    local s0 stop_ms clean=true j=0
    s0=$(date +%s%N)
    kill -TERM "$BPID" 2>/dev/null || true
    while kill -0 "$BPID" 2>/dev/null && [ $j -lt $((SCALE_STOP_BOUND * 100)) ]; do sleep 0.01; j=$((j + 1)); done
    stop_ms=$(( ($(date +%s%N) - s0) / 1000000 ))
    if kill -0 "$BPID" 2>/dev/null; then clean=false; kill -KILL "$BPID" 2>/dev/null || true; wait_gone "$BPID"; fi
    sleep 1
    wait_quiet
    local ready_ms=null rss_ready=0 rss_idle=0 hwm=0 fds=0 up=false
    if START_BOUND=$SCALE_START_BOUND SOFT_START=1 "start_$sys" keep; then
        up=true; ready_ms=$READY_MS; rss_ready=$(rss_kb "$BPID")
        sleep 5; rss_idle=$(rss_kb "$BPID"); hwm=$(hwm_kb "$BPID"); fds=$(fd_count "$BPID")
    fi
    emit "{\"type\":\"partitions_restart\",\"system\":\"$sys\",\"partitions\":$created,\"stop_ms\":$stop_ms,\"stopped_by_sigterm\":$clean,\"stop_bound_s\":$SCALE_STOP_BOUND,\"started\":$up,\"ready_ms\":$ready_ms,\"start_bound_s\":$SCALE_START_BOUND,\"rss_at_ready_kib\":$rss_ready,\"rss_idle_kib\":$rss_idle,\"hwm_kib\":$hwm,\"fds\":$fds,\"busy_pct_before\":$NOISE_BUSY,\"load1_before\":$NOISE_LOAD}"
    tail -1 "$JSONL" >&2
    # Its clean stop was measured above; this one only ends the run.
    if $up; then kill -KILL "$BPID" 2>/dev/null || true; wait_gone "$BPID"; fi
    return 0
}

run_scale() {
    local sys=$1
    log "== scale: $sys"
    if [ "$sys" = kafka ]; then
        # A fresh, formatted Kafka of its own (the main phase's topics would load on restart).
        KAFKA_STATE_DIR=$BENCH_OUT/kafka-scale; KAFKA_PREPARED=""
        start_kafka
    else
        start_gregor
    fi
    scale_conns "$sys"
    scale_partitions "$sys"
    rm -rf "$BENCH_OUT/gregor-data" "$BENCH_OUT/kafka-scale/data" 2>/dev/null || true
}

# --- one system, all scenarios ------------------------------------------------------------------

run_system() {
    local sys=$1 size acks parts nprod rep
    log "== $sys"
    if [ "$sys" != mock ]; then
        # Start-to-ready: repeated starts on the same dir; the last one stays up for the load.
        for rep in $(seq 1 "$(eval echo \$READY_REPS_${sys^^})"); do
            [ "$rep" -gt 1 ] && { "stop_$sys"; sleep 1; }
            wait_quiet
            "start_$sys"
            emit "{\"type\":\"ready\",\"system\":\"$sys\",\"rep\":$rep,\"ready_ms\":$READY_MS,\"rss_at_ready_kib\":$(rss_kb "$BPID"),\"busy_pct_before\":$NOISE_BUSY,\"load1_before\":$NOISE_LOAD}"
            tail -1 "$JSONL" >&2
        done
        sleep 5   # idle: let a JVM finish its start-up work before we call it idle
        emit "{\"type\":\"rss\",\"system\":\"$sys\",\"when\":\"idle_5s_after_ready\",\"rss_kib\":$(rss_kb "$BPID"),\"hwm_kib\":$(hwm_kb "$BPID")}"
    else
        start_mock "warmup:1"
    fi
    for nprod in $PRODUCERS; do for parts in $PARTS; do for acks in $ACKS; do for size in $SIZES; do
        produce "$sys" "$size" "$acks" "$parts" "$nprod"
    done; done; done; done
    # The headline cells again with one producev call per record (Kafka's tool's pattern), so
    # the client's share of the 2 cores shows in the ratios.
    if [ "$ENQ" != 1 ]; then
        for acks in 1 all; do produce "$sys" 1024 "$acks" 1 1 1; done
    fi
    local max pct rate
    max=$(max_rate "$sys")
    # The mock cluster keeps only the last 5 MiB of each partition (librdkafka's rdkafka_mock.c),
    # so a consumer from the beginning starts out of range: its consume and latency runs are
    # skipped.
    if [ "$sys" != mock ]; then
        consume "$sys"
        # The latency loads are fractions of what the latency pipeline itself (a linger.ms=0
        # producer and a consumer in one process) delivers at most on this broker: the perf
        # producer's max is more than that client can offer.
        max=$(e2e_max "$sys")
        for pct in $E2E_LOADS; do e2e "$sys" "${pct}pct-e2e-max" $((max * pct / 100)); done
        # Same absolute rates for everyone: half of Kafka's e2e max (when Kafka ran first), and
        # light fixed rates that the 2-core machine sustains with room to spare.
        if [ "$sys" != kafka ] && [ -n "${KAFKA_MAX:-}" ] && [ "$KAFKA_MAX" -gt 0 ]; then
            e2e "$sys" 50pct-kafka-max $((KAFKA_MAX / 2))
        fi
        for rate in $E2E_FIXED; do e2e "$sys" "fixed-$rate" "$rate"; done
    fi
    [ "$sys" = kafka ] && KAFKA_MAX=$max
    if [ "$sys" != mock ]; then
        emit "{\"type\":\"rss\",\"system\":\"$sys\",\"when\":\"after_load\",\"rss_kib\":$(rss_kb "$BPID"),\"hwm_kib\":$(hwm_kb "$BPID")}"
        [ "$sys" = gregor ] && profile_gregor
    fi
    DROP_TOPIC=
    "stop_$sys"
}

cleanup() {
    [ -n "${KAFKA_PREPARED:-}" ] && { kafka_env "$KAFKA_PREPARED"; "$KAFKA_SH" stop >/dev/null 2>&1 || true; }
    [ -n "${BPID:-}" ] && [ "${BPID}" != 0 ] && kill -TERM "$BPID" 2>/dev/null || true
}
trap cleanup EXIT

# --- main ---------------------------------------------------------------------------------------

export ROOT BENCH_OUT
# 5k client connections plus 10k partitions' files: take the whole open-files limit we may
# (brokers and bench/conns inherit it; gregor raises its own to the hard limit anyway).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$BENCH_OUT" "$RESULTS_DIR" "$ROOT/docs/bench"
: >"$JSONL"
START=$(date +%s)
build_tools
emit "$(machine_json)"
emit "{\"type\":\"run\",\"phases\":\"$PHASES\",\"nofile_limit\":\"$(ulimit -Sn)/$(ulimit -Hn)\",\"mode\":\"$MODE\",\"date_utc\":\"$STAMP\",\"systems\":\"$SYSTEMS\",\"kafka_jvm_opts\":\"$KAFKA_JVM_OPTS\",\"kafka_version\":\"${KAFKA_VERSION:-4.1.1}\",\"enqueue_batch\":$ENQ,\"load_at_start\":\"$(cat /proc/loadavg)\"}"
case " $PHASES " in *" main "*) run_limits ;; esac
# Kafka first so the others can also be measured at Kafka's 50% rate.
case " $PHASES " in *" main "*)
    for s in kafka gregor mock; do case " $SYSTEMS " in *" $s "*) run_system "$s" ;; esac; done ;;
esac
# The mock cluster has no storage and no real connection handling worth measuring here.
case " $PHASES " in *" scale "*)
    for s in gregor kafka; do case " $SYSTEMS " in *" $s "*) run_scale "$s" ;; esac; done ;;
esac
emit "{\"type\":\"run_end\",\"seconds\":$(( $(date +%s) - START )),\"load_at_end\":\"$(cat /proc/loadavg)\"}"
python3 - "$JSONL" "$RESULT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
PY
case " $PHASES " in *" main "*)
    "$ROOT/bench/plot.sh" "$RESULT" "$ROOT/docs/bench" >&2 || log "plotting failed" ;; esac
log "done in $(( $(date +%s) - START )) s: $RESULT"
