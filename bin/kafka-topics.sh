#!/bin/sh
# kafka-topics.sh: Kafka-compatible wrapper; runs `gregor topics` with the same arguments.
here=$(cd "$(dirname "$0")" && pwd)
gregor=${GREGOR_BIN:-$here/../build/gregor}
[ -x "$gregor" ] || { echo "kafka-topics.sh: gregor binary not found at $gregor (run make, or set GREGOR_BIN)" >&2; exit 1; }
exec "$gregor" topics "$@"
