#!/usr/bin/env bash
# run.sh: gregor vs Apache Kafka vs librdkafka's mock cluster vs the machine's physical limits,
# all driven by the same load generator (gregor perf, on librdkafka) in one run.
#
# usage: bench/run.sh quick|full     (bench/run-quick.sh and bench/run-full.sh call this)
# env:   BENCH_OUT    scratch dir for binaries, data dirs and logs (default /tmp/gregor-bench)
#        BENCH_SYSTEMS  which brokers to load (default "gregor kafka mock")
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
    BYTES_PER_RUN=$((300 * 1024 * 1024)); E2E_SECS=8; E2E_LOADS="50"; E2E_FIXED="20000"; READY_REPS_GREGOR=3
    READY_REPS_KAFKA=1; LIMIT_SECS=1; DISK_MIB=1024; FSYNC_COUNT=2000; QUIET_TRIES=1
else
    SIZES="100 1024 10240"; ACKS="0 1 all"; PARTS="1 16 256"; PRODUCERS="1 4"
    BYTES_PER_RUN=$((1024 * 1024 * 1024)); E2E_SECS=20; E2E_LOADS="25 50 75"; E2E_FIXED="10000 50000"; READY_REPS_GREGOR=5
    READY_REPS_KAFKA=3; LIMIT_SECS=3; DISK_MIB=4096; FSYNC_COUNT=10000; QUIET_TRIES=10
fi

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
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

emit() { echo "$1" >>"$JSONL"; }  # one JSON object per line; assembled at the end

build_tools() {
    mkdir -p "$BIN"
    make -C "$ROOT" -s all >&2 || die "make failed"
    for p in limits mock_cluster e2e_latency start_ready; do
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

start_gregor() {
    local port data
    port=$(free_port); data=$BENCH_OUT/gregor-data
    rm -rf "$data"; mkdir -p "$data"
    local out
    out=$(START_READY_LOG=$BENCH_OUT/gregor.log "$BIN/start_ready" "$port" 30 -- "$GREGOR" serve \
        --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$data") \
        || die "gregor did not start (log: $BENCH_OUT/gregor.log)"
    BOOT=127.0.0.1:$port; BPID=$(json_field "$out" pid); READY_MS=$(json_field "$out" ready_ms)
}
stop_gregor() { kill -TERM "$BPID" 2>/dev/null || true; wait_gone "$BPID"; }

wait_gone() { local i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null || true; }

# Kafka: kafka.sh formats the storage and writes server.properties; the timed start is a second
# start of the same java command on that formatted dir, so the JVM start is measured, not the
# storage tool.
kafka_env() { export KAFKA_PORT=$1 KAFKA_STATE=$BENCH_OUT/kafka KAFKA_HEAP="$KAFKA_JVM_OPTS"; }
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
    out=$(START_READY_LOG=$KAFKA_STATE/stdout.log "$BIN/start_ready" "$port" 120 -- java \
        $KAFKA_JVM_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$KAFKA_STATE/log4j2.properties" -cp "$KAFKA_CP" \
        kafka.Kafka "$KAFKA_STATE/server.properties") || die "kafka did not start ($KAFKA_STATE)"
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

create_topic() {  # create_topic SYSTEM TOPIC PARTITIONS
    if [ "$1" = mock ]; then stop_mock; start_mock "$2:$3"; return; fi
    "$GREGOR" topics --bootstrap-server "$BOOT" --create --topic "$2" --partitions "$3" \
        --replication-factor 1 >/dev/null || die "$1: cannot create topic $2"
}

# --- scenarios ----------------------------------------------------------------------------------

# produce SYSTEM SIZE ACKS PARTITIONS PRODUCERS: a perf producer run (or N in parallel); when
# other processes were busy before it, a second run on a fresh topic (both rows are kept).
produce() {
    ATTEMPT=1
    produce_once "$@"
    if [ "$NOISE_BUSY" -gt "$QUIET_BUSY" ]; then ATTEMPT=2; produce_once "$@"; fi
}
produce_once() {
    local sys=$1 size=$2 acks=$3 parts=$4 nprod=$5
    local topic="p-$size-$acks-$parts-$nprod-$RANDOM" records=$((BYTES_PER_RUN / size))
    [ "$records" -gt 5000000 ] && records=5000000
    records=$((records / nprod))
    create_topic "$sys" "$topic" "$parts"
    wait_quiet
    local cmd="gregor perf producer --topic $topic --num-records $records --record-size $size --throughput -1 --producer-props bootstrap.servers=$BOOT acks=$acks"
    local i outs=() t0 t1
    t0=$(date +%s.%N)
    for i in $(seq 1 "$nprod"); do
        "$GREGOR" perf producer --topic "$topic" --num-records "$records" --record-size "$size" \
            --throughput -1 --producer-props "bootstrap.servers=$BOOT" "acks=$acks" \
            >"$BENCH_OUT/perf.$i.out" 2>"$BENCH_OUT/perf.$i.err" &
        outs+=($!)
    done
    local rc=0
    for i in "${outs[@]}"; do wait "$i" || rc=1; done
    t1=$(date +%s.%N)
    local rss=0; [ "$BPID" != 0 ] && rss=$(rss_kb "$BPID")
    python3 - "$sys" "$size" "$acks" "$parts" "$nprod" "$records" "$t0" "$t1" "$rc" "$rss" \
        "$NOISE_BUSY" "$NOISE_LOAD" "$cmd" "$BENCH_OUT" "$ATTEMPT" <<'PY' >>"$JSONL"
import json, re, sys
sys_, size, acks, parts, nprod, records, t0, t1, rc, rss, busy, load, cmd, out, att = sys.argv[1:]
rate = mb = 0.0; lat = {}
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
print(json.dumps({"type": "produce", "system": sys_, "record_size": int(size), "acks": acks,
    "partitions": int(parts), "producers": int(nprod), "records_per_producer": int(records),
    "attempt": int(att), "wall_s": round(float(t1) - float(t0), 3),
    "records_per_s": round(rate, 1), "MBps": round(mb, 2), **lat, "ok": rc == "0",
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
        local out rc=0
        out=$("$GREGOR" perf consumer --bootstrap-server "$BOOT" --topic "$LAST_TOPIC" \
            --messages "$LAST_RECORDS" --timeout 20000 2>"$BENCH_OUT/consume.err" | tail -1) || rc=1
        python3 - "$sys" "$out" "$rc" "$NOISE_BUSY" "$NOISE_LOAD" "$cmd" "$rep" <<'PY' >>"$JSONL"
import json, sys
sys_, line, rc, busy, load, cmd, rep = sys.argv[1:]
f = [x.strip() for x in line.split(",")]
ok = rc == "0" and len(f) == 10
print(json.dumps({"type": "consume", "system": sys_, "record_size": 1024, "rep": int(rep),
    "MB": float(f[2]) if ok else 0, "MBps_total": float(f[3]) if ok else 0,
    "records": int(f[4]) if ok else 0, "rebalance_ms": int(f[6]) if ok else 0,
    "fetch_ms": int(f[7]) if ok else 0, "MBps": float(f[8]) if ok else 0,
    "records_per_s": float(f[9]) if ok else 0, "ok": ok, "busy_pct_before": int(busy),
    "load1_before": float(load), "command": cmd}))
PY
        tail -1 "$JSONL" | cut -c1-200 >&2
    done
}

# e2e SYSTEM TAG RATE: end-to-end latency of 1 KB records at a fixed offered rate. TAG names the
# rate: "<pct>pct-own-max", "50pct-kafka-max" or "fixed".
e2e() {
    local sys=$1 pct=$2 rate=$3 topic="e2e-$2-$RANDOM"
    create_topic "$sys" "$topic" 1
    wait_quiet
    local q=$BENCH_OUT/e2e-$sys-$pct.quantiles out rc=0
    out=$(E2E_QUANTILES=$q "$BIN/e2e_latency" "$BOOT" "$topic" "$rate" "$E2E_SECS" 1024 \
        2>"$BENCH_OUT/e2e.err") || rc=1
    [ -n "$out" ] || out='{}'
    [ -f "$q" ] && cp "$q" "$RESULTS_DIR/$STAMP-$MODE-e2e-$sys-$pct.quantiles"
    python3 - "$sys" "$pct" "$out" "$rc" "$NOISE_BUSY" "$NOISE_LOAD" \
        "bench/e2e_latency $BOOT $topic $rate $E2E_SECS 1024" <<'PY' >>"$JSONL"
import json, sys
sys_, pct, out, rc, busy, load, cmd = sys.argv[1:]
print(json.dumps({"type": "e2e", "system": sys_, "tag": pct, **json.loads(out),
    "ok": rc == "0", "busy_pct_before": int(busy), "load1_before": float(load), "command": cmd}))
PY
    tail -1 "$JSONL" | cut -c1-200 >&2
}

# The measured max for 1 KB acks=1, 1 partition, 1 producer: the e2e rates are fractions of it.
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
            --throughput -1 --producer-props "bootstrap.servers=$BOOT" "acks=$acks" \
            >>"$PROFILE.perfline" 2>/dev/null || true
        kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
        {
            echo "=== gregor, 1 KB records, acks=$acks, 300000 records: perf report --no-children (self time)"
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
    local max pct rate
    max=$(max_rate "$sys")
    # The mock cluster never delivered to a consumer in another process (librdkafka 2.0.2):
    # its consume and latency runs would only burn time, so they are skipped.
    if [ "$sys" != mock ]; then
        consume "$sys"
        for pct in $E2E_LOADS; do e2e "$sys" "${pct}pct-own-max" $((max * pct / 100)); done
        # Same absolute rates for everyone: half of Kafka's max (when Kafka ran first), and a
        # light fixed rate that the 2-core machine sustains with room to spare.
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
    "stop_$sys"
}

cleanup() {
    [ -n "${KAFKA_PREPARED:-}" ] && { kafka_env "$KAFKA_PREPARED"; "$KAFKA_SH" stop >/dev/null 2>&1 || true; }
    [ -n "${BPID:-}" ] && [ "${BPID}" != 0 ] && kill -TERM "$BPID" 2>/dev/null || true
}
trap cleanup EXIT

# --- main ---------------------------------------------------------------------------------------

export ROOT BENCH_OUT
mkdir -p "$BENCH_OUT" "$RESULTS_DIR" "$ROOT/docs/bench"
: >"$JSONL"
START=$(date +%s)
build_tools
emit "$(machine_json)"
emit "{\"type\":\"run\",\"mode\":\"$MODE\",\"date_utc\":\"$STAMP\",\"systems\":\"$SYSTEMS\",\"kafka_jvm_opts\":\"$KAFKA_JVM_OPTS\",\"kafka_version\":\"${KAFKA_VERSION:-4.1.1}\",\"load_at_start\":\"$(cat /proc/loadavg)\"}"
run_limits
# Kafka first so the others can also be measured at Kafka's 50% rate.
for s in kafka gregor mock; do case " $SYSTEMS " in *" $s "*) run_system "$s" ;; esac; done
emit "{\"type\":\"run_end\",\"seconds\":$(( $(date +%s) - START )),\"load_at_end\":\"$(cat /proc/loadavg)\"}"
python3 - "$JSONL" "$RESULT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
PY
"$ROOT/bench/plot.sh" "$RESULT" "$ROOT/docs/bench" >&2 || log "plotting failed"
log "done in $(( $(date +%s) - START )) s: $RESULT"
