#!/bin/sh
# kafka-server-stop.sh: SIGTERM to the running `gregor serve` processes (like Kafka's script,
# which signals every kafka.Kafka JVM). Exit 1 when none is running.
pids=$(ps -eo pid=,args= | awk '$2 ~ /(^|\/)gregor$/ && $3 == "serve" { print $1 }')
if [ -z "$pids" ]; then
    echo "No gregor server to stop"
    exit 1
fi
kill -TERM $pids
