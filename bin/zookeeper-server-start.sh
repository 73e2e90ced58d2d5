#!/bin/sh
# zookeeper-server-start.sh: starts a ZooKeeper server the way Kafka's script does:
#   zookeeper-server-start.sh [-daemon] zookeeper.properties
# In the foreground it logs to the terminal (config/log4j.properties); with -daemon it runs in
# the background and logs to $LOG_DIR/zookeeper.out (LOG_DIR defaults to logs/ here).
# The JVM: Debian's ZooKeeper 3.8 (apt-get install zookeeper), heap KAFKA_HEAP_OPTS (default
# -Xmx512M -Xms512M, as Kafka), KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS and KAFKA_OPTS honoured.
# A properties file listing server.N entries starts one member of an ensemble (dataDir/myid).
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "USAGE: $0 [-daemon] zookeeper.properties" >&2; exit 1; }
daemon=0
if [ "${1:-}" = "-daemon" ]; then daemon=1; shift; fi
[ $# -eq 1 ] || usage
[ -f "$1" ] || { echo "zookeeper-server-start.sh: config file $1 not found" >&2; exit 1; }
# An absolute path, so zookeeper-server-stop.sh can name this server by its file.
config="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
. "$here/zookeeper-env.sh"

heap=${KAFKA_HEAP_OPTS:--Xmx512M -Xms512M}
perf=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
log4j=${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:$here/../config/log4j.properties}
main=org.apache.zookeeper.server.quorum.QuorumPeerMain

if [ $daemon -eq 1 ]; then
    logdir=${LOG_DIR:-$here/../logs}
    mkdir -p "$logdir" || exit 1
    # shellcheck disable=SC2086  # the *_OPTS are word lists, as in Kafka's scripts
    nohup "$ZK_JAVA" $heap $perf $log4j ${KAFKA_OPTS:-} -cp "$ZK_CLASSPATH" $main "$config" \
        >>"$logdir/zookeeper.out" 2>&1 </dev/null &
    exit 0
fi
# shellcheck disable=SC2086
exec "$ZK_JAVA" $heap $perf $log4j ${KAFKA_OPTS:-} -cp "$ZK_CLASSPATH" $main "$config"
