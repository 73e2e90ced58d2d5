#!/bin/sh
# run-quick.sh: `make bench` - gregor vs Kafka vs librdkafka mock vs physical limits, the quick
# matrix (100 B/1 KB/10 KB, acks 1/all, 1/16 partitions, 1 producer), in well under 10 minutes.
exec "$(dirname "$0")/run.sh" quick "$@"
