#!/bin/sh
# zookeeper-shell.sh: ZooKeeper's command-line client, as Kafka's script runs it:
#   zookeeper-shell.sh host:port[/chroot] [command args...]
# Without a command it is interactive; with one it runs it, prints the result and exits with its
# status (e.g. `zookeeper-shell.sh localhost:2181 get /brokers/ids/0`). Logs warnings to stderr.
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "USAGE: $0 zookeeper_host:port[/path] [args...]" >&2; exit 1; }
. "$here/zookeeper-env.sh"
server=$1; shift
log4j=${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:$here/../config/tools-log4j.properties}
# shellcheck disable=SC2086
exec "$ZK_JAVA" ${KAFKA_HEAP_OPTS:--Xmx256M} $log4j ${KAFKA_OPTS:-} -cp "$ZK_CLASSPATH" \
    org.apache.zookeeper.ZooKeeperMain -server "$server" "$@"
