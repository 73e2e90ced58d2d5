#!/bin/sh
# run-full.sh: the full matrix (acks 0/1/all, 1/16/256 partitions, 1 and 4 producers, 1 GiB per
# run, e2e latency at 25/50/75% of max, repeated start-to-ready). About 30-40 minutes.
exec "$(dirname "$0")/run.sh" full "$@"
