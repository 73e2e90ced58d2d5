#!/bin/sh
# kafka-acls.sh: Kafka-compatible wrapper; runs `gregor acls` with the same arguments.
here=$(cd "$(dirname "$0")" && pwd)
gregor=${GREGOR_BIN:-$here/../build/gregor}
[ -x "$gregor" ] || { echo "kafka-acls.sh: gregor binary not found at $gregor (run make, or set GREGOR_BIN)" >&2; exit 1; }
exec "$gregor" acls "$@"
