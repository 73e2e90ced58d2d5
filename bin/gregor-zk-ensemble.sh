#!/bin/sh
# gregor-zk-ensemble.sh: a 3-node ZooKeeper ensemble on this machine (127.0.0.1), for tests and
# for trying a cluster by hand; each node is bin/zookeeper-server-start.sh with its own zoo.cfg.
#   gregor-zk-ensemble.sh start|stop|status DIR BASEPORT [--size N]
#   gregor-zk-ensemble.sh stop-node|start-node DIR BASEPORT NODE [--kill]
# Node N listens for clients on BASEPORT+3(N-1) (quorum on the next two ports). See
# tests/cluster/zk_ensemble.py and docs/CLUSTER.md.
here=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-python3}" "$here/../tests/cluster/zk_ensemble.py" "$@"
