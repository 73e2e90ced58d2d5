#!/bin/sh
# kafka-server-start.sh: starts the gregor broker the way Kafka's script starts Kafka:
#   kafka-server-start.sh [-daemon] server.properties [--override property=value]*
here=$(cd "$(dirname "$0")" && pwd)
gregor=${GREGOR_BIN:-$here/../build/gregor}
usage() { echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2; exit 1; }
[ -x "$gregor" ] || { echo "kafka-server-start.sh: gregor binary not found at $gregor (run make, or set GREGOR_BIN)" >&2; exit 1; }
daemon=0
if [ "${1:-}" = "-daemon" ]; then daemon=1; shift; fi
[ $# -ge 1 ] || usage
config=$1; shift
[ -f "$config" ] || { echo "kafka-server-start.sh: config file $config not found" >&2; exit 1; }
# Only --override pairs may follow the config file, as with Kafka.
n=$#
while [ $n -gt 0 ]; do
    case "$1" in
        --override) [ $# -ge 2 ] || usage; set -- "$@" --override "$2"; shift 2; n=$((n - 2)) ;;
        --override=*) set -- "$@" --override "${1#--override=}"; shift; n=$((n - 1)) ;;
        *) usage ;;
    esac
done
if [ $daemon -eq 1 ]; then
    logdir=${LOG_DIR:-$here/../logs}
    mkdir -p "$logdir"
    nohup "$gregor" serve --config "$config" "$@" >>"$logdir/gregor.out" 2>&1 </dev/null &
    exit 0
fi
exec "$gregor" serve --config "$config" "$@"
