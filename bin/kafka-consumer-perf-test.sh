#!/bin/sh
# kafka-consumer-perf-test.sh: Kafka-compatible wrapper; runs `gregor perf consumer` with the same arguments.
here=$(cd "$(dirname "$0")" && pwd)
gregor=${GREGOR_BIN:-$here/../build/gregor}
[ -x "$gregor" ] || { echo "kafka-consumer-perf-test.sh: gregor binary not found at $gregor (run make, or set GREGOR_BIN)" >&2; exit 1; }
exec "$gregor" perf consumer "$@"
