#!/bin/sh
# zookeeper-server-stop.sh: stops ZooKeeper servers as Kafka's script does, by signalling
# (SIGNAL, default TERM) every Java process running QuorumPeerMain; exit 1 when none runs.
#   zookeeper-server-stop.sh [zookeeper.properties]
# With a properties file (gregor's addition) only the server started with that file is
# stopped, so one machine can run several (tests, an ensemble) without stopping the others.
signal=${SIGNAL:-TERM}
[ $# -le 1 ] || { echo "USAGE: $0 [zookeeper.properties]" >&2; exit 1; }
config=""
if [ $# -eq 1 ]; then
    [ -f "$1" ] || { echo "zookeeper-server-stop.sh: config file $1 not found" >&2; exit 1; }
    config="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
fi
pids=$(ps -ww -eo pid=,args= | awk -v cfg="$config" '
    $2 ~ /(^|\/)java$/ && / org\.apache\.zookeeper\.server\.quorum\.QuorumPeerMain / {
        if (cfg == "" || $NF == cfg) print $1
    }')
if [ -z "$pids" ]; then
    echo "No zookeeper server to stop"
    exit 1
fi
kill -s "$signal" $pids
