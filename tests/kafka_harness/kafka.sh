#!/bin/sh
# kafka.sh: a single-node Apache Kafka (KRaft broker+controller) for side-by-side tests and
# benchmarks against gregor. Fetches the jars from Maven Central once, into a cache dir.
#
# usage: kafka.sh start|stop|status|fetch|classpath|run-class CLASS [ARGS...]
# Kafka 3.9 in ZooKeeper mode (several brokers on a given zookeeper.connect): kafka_zk.py, which
# takes its jars from `KAFKA_VERSION=3.9.1 kafka.sh classpath`.
# env:   KAFKA_VERSION     (default 4.1.1; 3.x gets slf4j 1.7 + reload4j instead of log4j2)
#        KAFKA_PORT        (default 19092)  client listener on 127.0.0.1
#        KAFKA_CACHE       (default ~/.cache/gregor-kafka)  jars
#        KAFKA_STATE       (default /tmp/gregor-kafka-$KAFKA_PORT)  data, log, pid
#        KAFKA_HEAP        (default -Xmx512m)
#        KAFKA_START_TIMEOUT seconds to wait for the port (default 60)
#        KAFKA_OVERRIDES   extra server.properties lines, newline separated
#        KAFKA_EXTRA_LISTENERS more client listeners, NAME://127.0.0.1:PORT comma separated, each
#                          NAME also its security protocol (SSL, SASL_SSL, ...): their ssl.* and
#                          sasl.* keys go in KAFKA_OVERRIDES (bench/tls.py)
#        KAFKA_ADD_SCRAM   one SCRAM credential made at format time (KIP-900), e.g.
#                          SCRAM-SHA-512=[name=alice,password=alice-secret]
set -eu

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CACHE=${KAFKA_CACHE:-$HOME/.cache/gregor-kafka}
KAFKA_STATE=${KAFKA_STATE:-/tmp/gregor-kafka-$KAFKA_PORT}
KAFKA_HEAP=${KAFKA_HEAP:--Xmx512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
CONTROLLER_PORT=$((KAFKA_PORT + 1))
LIBDIR=$KAFKA_CACHE/$KAFKA_VERSION/libs
PIDFILE=$KAFKA_STATE/kafka.pid
LOGFILE=$KAFKA_STATE/kafka.log

die() { echo "kafka.sh: $*" >&2; exit 1; }

# Kafka 3.x logs through slf4j 1.7 and log4j 1.2 (reload4j); 4.x through slf4j 2 and log4j2.
logging_dependencies() {
    case "$KAFKA_VERSION" in
    3.*) cat <<DEPS
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
DEPS
    ;;
    *) cat <<DEPS
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.16</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
DEPS
    ;;
    esac
}

# The jars: kafka_2.13 (server, StorageTool), kafka-tools (the Java CLIs, for format diffs),
# and a log4j2 backend so the broker logs to a file instead of complaining on stderr (the log
# cleaner's summaries included: bench/compaction.py reads them).
fetch() {
    [ -f "$LIBDIR/.complete" ] && return 0
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    work=$KAFKA_CACHE/$KAFKA_VERSION/pom
    mkdir -p "$work" "$LIBDIR"
    cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gregor</groupId><artifactId>kafka-harness</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
$(logging_dependencies)
  </dependencies>
</project>
POM
    echo "kafka.sh: fetching Kafka $KAFKA_VERSION jars into $LIBDIR" >&2
    (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBDIR") >&2 || die "mvn dependency:copy-dependencies failed"
    ls "$LIBDIR"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after fetch"
    touch "$LIBDIR/.complete"
}

classpath() {
    fetch
    cp=""
    for j in "$LIBDIR"/*.jar; do cp="$cp${cp:+:}$j"; done
    echo "$cp"
}

log4j_config() {
    cat >"$KAFKA_STATE/log4j2.properties" <<L4J
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOGFILE
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.tools.name = org.apache.kafka
logger.tools.level = WARN
logger.cleaner.name = org.apache.kafka.storage.internals.log.LogCleaner
logger.cleaner.level = INFO
logger.cleanerthread.name = org.apache.kafka.storage.internals.log.LogCleaner\$CleanerThread
logger.cleanerthread.level = INFO
L4J
}

java_run() {
    java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_STATE/log4j2.properties" \
        -cp "$(classpath)" "$@"
}

port_open() {
    # bash's /dev/tcp is not in POSIX sh; python3 is on every machine we test on.
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1',$KAFKA_PORT)))" 2>/dev/null
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

start() {
    if pid=$(running_pid); then echo "kafka.sh: already running (pid $pid, port $KAFKA_PORT)"; return 0; fi
    port_open && die "port $KAFKA_PORT is already taken by another process"
    fetch
    rm -rf "$KAFKA_STATE"
    mkdir -p "$KAFKA_STATE/data"
    log4j_config
    extra=${KAFKA_EXTRA_LISTENERS:+,$KAFKA_EXTRA_LISTENERS}
    protomap=""
    for l in $(printf '%s' "${KAFKA_EXTRA_LISTENERS:-}" | tr ',' ' '); do
        protomap="$protomap,${l%%://*}:${l%%://*}"
    done
    cat >"$KAFKA_STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=0
controller.quorum.voters=0@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT$extra
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT$extra
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT$protomap
log.dirs=$KAFKA_STATE/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    [ -n "${KAFKA_OVERRIDES:-}" ] && printf '%s\n' "$KAFKA_OVERRIDES" >>"$KAFKA_STATE/server.properties"
    java_run kafka.tools.StorageTool format -t "$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null)" \
        -c "$KAFKA_STATE/server.properties" ${KAFKA_ADD_SCRAM:+--add-scram "$KAFKA_ADD_SCRAM"} >>"$LOGFILE" 2>&1 || { tail -20 "$LOGFILE" >&2; die "storage format failed"; }
    nohup java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_STATE/log4j2.properties" \
        -cp "$(classpath)" kafka.Kafka "$KAFKA_STATE/server.properties" \
        >>"$KAFKA_STATE/stdout.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    i=0
    while [ $i -lt $((KAFKA_START_TIMEOUT * 4)) ]; do
        if ! running_pid >/dev/null; then
            tail -30 "$LOGFILE" "$KAFKA_STATE/stdout.log" >&2 2>/dev/null || true
            die "kafka exited during startup (logs in $KAFKA_STATE)"
        fi
        # The port binds before the broker has caught up with the metadata log; wait for the
        # "started" line, but don't hang forever if a version logs it differently.
        if port_open && { grep -q "Kafka Server started" "$LOGFILE" 2>/dev/null || [ $i -gt 80 ]; }; then
            echo "kafka.sh: Kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT (pid $(cat "$PIDFILE"), state $KAFKA_STATE)"
            return 0
        fi
        sleep 0.25; i=$((i + 1))
    done
    stop
    die "kafka did not answer on port $KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (log: $LOGFILE)"
}

stop() {
    pid=$(running_pid) || { echo "kafka.sh: not running"; rm -f "$PIDFILE"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 80 ]; do sleep 0.25; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        echo "kafka.sh: pid $pid ignored SIGTERM for 20s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    echo "kafka.sh: stopped (pid $pid)"
}

status() {
    if pid=$(running_pid) && port_open; then
        echo "kafka.sh: running (pid $pid, 127.0.0.1:$KAFKA_PORT, state $KAFKA_STATE)"; return 0
    fi
    echo "kafka.sh: not running"; return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    fetch) fetch ;;
    classpath) classpath ;;
    run-class) shift; [ $# -ge 1 ] || die "run-class needs a class name"; mkdir -p "$KAFKA_STATE"
        [ -f "$KAFKA_STATE/log4j2.properties" ] || log4j_config
        java_run "$@" ;;
    *) echo "usage: $0 start|stop|status|fetch|classpath|run-class CLASS [ARGS...]" >&2; exit 2 ;;
esac
