#!/bin/sh
# kafka-producer-perf-test.sh: Kafka-compatible wrapper; runs `gregor perf producer` with the same arguments.
here=$(cd "$(dirname "$0")" && pwd)
gregor=${GREGOR_BIN:-$here/../build/gregor}
[ -x "$gregor" ] || { echo "kafka-producer-perf-test.sh: gregor binary not found at $gregor (run make, or set GREGOR_BIN)" >&2; exit 1; }
exec "$gregor" perf producer "$@"
