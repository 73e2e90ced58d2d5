#!/bin/sh
# kafka-run-class.sh: runs the few Kafka tool classes gregor implements natively.
#   kafka.tools.DumpLogSegments -> gregor dump-log
here=$(cd "$(dirname "$0")" && pwd)
gregor=${GREGOR_BIN:-$here/../build/gregor}
[ $# -ge 1 ] || { echo "USAGE: $0 [-daemon] [-name servicename] [-loggc] classname [opts]" >&2; exit 1; }
# Kafka's script takes these launcher flags before the class; they mean nothing to gregor.
while :; do
    case "$1" in
        -daemon|-loggc) shift ;;
        -name) shift 2 ;;
        *) break ;;
    esac
done
class=$1; shift
case "$class" in
    kafka.tools.DumpLogSegments|org.apache.kafka.tools.DumpLogSegments) sub=dump-log ;;
    kafka.admin.TopicCommand|org.apache.kafka.tools.TopicCommand) sub=topics ;;
    kafka.tools.ConsoleProducer|org.apache.kafka.tools.ConsoleProducer) sub=produce ;;
    kafka.tools.ConsoleConsumer|org.apache.kafka.tools.consumer.ConsoleConsumer) sub=consume ;;
    kafka.admin.ConsumerGroupCommand|org.apache.kafka.tools.consumer.group.ConsumerGroupCommand) sub=groups ;;
    kafka.admin.ConfigCommand) sub=configs ;;
    kafka.tools.GetOffsetShell|org.apache.kafka.tools.GetOffsetShell) sub=get-offsets ;;
    *) echo "kafka-run-class.sh: class $class is not available in gregor (supported: kafka.tools.DumpLogSegments, TopicCommand, ConsoleProducer, ConsoleConsumer, ConsumerGroupCommand, ConfigCommand, GetOffsetShell)" >&2
       exit 1 ;;
esac
[ -x "$gregor" ] || { echo "kafka-run-class.sh: gregor binary not found at $gregor (run make, or set GREGOR_BIN)" >&2; exit 1; }
exec "$gregor" $sub "$@"
