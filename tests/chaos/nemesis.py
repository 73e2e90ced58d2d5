"""The chaos nemesis: faults on a seeded random schedule, each injected, held, healed.

schedule(seed, cycles) draws every cycle's fault (the first seven: each kind once, in a seeded
order, so a short run covers them all), partition, choice among candidates and
durations from random.Random(seed) alone, so the same seed replays the same schedule (the
targets are resolved against the cluster at run time: "the leader of partition 3" is whoever
leads it then). Faults:
  kill-leader      kill -9 of the leader of a partition, restarted after the hold
  kill-follower    kill -9 of a follower of a partition, restarted after the hold
  kill-controller  kill -9 of the controller, restarted after the hold
  pause            SIGSTOP of a broker past its ZooKeeper session, then SIGCONT
  partition        the leader of a partition cut off from the other brokers (nftables drops its
                   group's packets to their addresses and theirs to its address), then healed;
                   clients and ZooKeeper still reach it
  disk-full        a follower's log dir (its tmpfs) filled up, then freed (and the broker
                   restarted if it stopped over it)
  zk-kill          kill -9 of a ZooKeeper node, restarted after the hold
Every nft rule lives in one table named for this process; heal_all() and cleanup() remove it
(Cluster.close() calls cleanup), and a run finding tables of dead runs removes them first.
"""
import os
import random
import re
import signal
import subprocess
import time

from confluent_kafka.admin import AdminClient

from cluster import CLIENT_LOG, PARTITIONS, SESSION_TIMEOUT_MS, TOPIC, log

FAULTS = ["kill-leader", "kill-follower", "kill-controller", "pause", "partition", "disk-full",
          "zk-kill"]
TABLE_PREFIX = "gregor_chaos_"


def schedule(seed, cycles, kinds=None):
    """The plan of a run; kinds (default: every fault) narrows it, e.g. to replay one bug."""
    kinds = list(kinds or FAULTS)
    r = random.Random(seed)
    first = list(kinds)
    r.shuffle(first)  # the first cycles inject every kind once, in a seeded order
    out = []
    for i in range(cycles):
        kind = first[i] if i < len(first) else kinds[r.randrange(len(kinds))]
        hold = round(r.uniform(3.0, 8.0), 1)
        if kind == "pause":
            hold = round(SESSION_TIMEOUT_MS / 1000.0 + r.uniform(2.0, 5.0), 1)
        elif kind == "partition":  # often past replica.lag.time.max.ms: the ISR shrinks
            hold = round(r.uniform(4.0, 20.0), 1)
        out.append({"cycle": i + 1, "kind": kind, "partition": r.randrange(PARTITIONS),
                    "pick": r.random(), "hold": hold, "quiet": round(r.uniform(1.0, 3.0), 1)})
    return out


def nft(*args, check=True):
    p = subprocess.run(["nft"] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("nft %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def remove_stale_tables():
    """Deletes the tables of chaos runs whose process is gone."""
    p = nft("list", "tables", check=False)
    for m in re.finditer(r"table inet (%s(\d+))" % TABLE_PREFIX, p.stdout):
        if not os.path.exists("/proc/%s" % m.group(2)):
            nft("delete", "table", "inet", m.group(1), check=False)
            log("removed the stale nft table %s" % m.group(1))


class Nemesis:
    def __init__(self, cluster):
        self.cluster = cluster
        self.table = "%s%d" % (TABLE_PREFIX, os.getpid())
        self.table_made = False
        self.injected = {}
        self.exits = []  # unexpected broker exits: "cycle N: broker B exit status S"
        self.admin = None
        cluster.cleanups.append(self.cleanup)

    # -- what the cluster looks like now ---------------------------------------------------
    def metadata(self):
        if self.admin is None:
            self.admin = AdminClient({"bootstrap.servers": self.cluster.bootstrap,
                                      "logger": CLIENT_LOG})
        return self.admin.list_topics(TOPIC, timeout=5)

    def healthy(self, full_isr):
        """True when every broker runs and is listed, and every partition has a live leader
        (and, if full_isr, all its replicas in the ISR)."""
        if not all(b.alive() and not b.paused for b in self.cluster.brokers):
            return False
        try:
            md = self.metadata()
        except Exception:  # noqa: BLE001 - not yet
            return False
        if set(md.brokers) != {b.id for b in self.cluster.brokers}:
            return False
        t = md.topics.get(TOPIC)
        if t is None or t.error is not None or len(t.partitions) != PARTITIONS:
            return False
        for p in t.partitions.values():
            if p.leader < 0 or p.leader not in md.brokers:
                return False
            if full_isr and len(p.isrs) != len(p.replicas):
                return False
        return True

    def wait_healthy(self, timeout, full_isr=False, when=None):
        """Waits (bounded) for healthy(full_isr). With when, a broker that dies meanwhile is
        recorded as an unexpected exit (at `when`) and restarted, not waited for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy(full_isr):
                return True
            if when is not None and not all(b.alive() for b in self.cluster.brokers):
                self.heal_all(when)
            time.sleep(0.5)
        return False

    def _partition(self, p):
        try:
            return self.metadata().topics[TOPIC].partitions[p]
        except Exception:  # noqa: BLE001
            return None

    def _pick(self, candidates, pick):
        candidates = sorted(candidates)
        return candidates[int(pick * len(candidates)) % len(candidates)] if candidates else None

    def _target(self, step):
        kind, pick = step["kind"], step["pick"]
        ids = [b.id for b in self.cluster.brokers]
        if kind in ("kill-leader", "partition"):
            p = self._partition(step["partition"])
            if p is not None and p.leader in ids:
                return p.leader
        elif kind in ("kill-follower", "disk-full"):
            p = self._partition(step["partition"])
            if p is not None:
                followers = [r for r in p.replicas if r != p.leader and r in ids]
                if followers:
                    return self._pick(followers, pick)
        elif kind == "kill-controller":
            try:
                c = self.metadata().controller_id
                if c in ids:
                    return c
            except Exception:  # noqa: BLE001
                pass
        elif kind == "zk-kill":
            return self._pick([n.id for n in self.cluster.zk.nodes], pick)
        return self._pick(ids, pick)  # pause, or metadata unavailable

    # -- network partitions ------------------------------------------------------------------
    def isolate(self, broker_id):
        me = self.cluster.broker(broker_id)
        others = [b for b in self.cluster.brokers if b.id != broker_id]
        if not self.table_made:
            nft("add", "table", "inet", self.table)
            self.table_made = True
        nft("add", "chain", "inet", self.table, "out",
            "{ type filter hook output priority 0; policy accept; }")
        nft("add", "rule", "inet", self.table, "out", "meta", "skgid", str(me.gid), "ip",
            "daddr", "{ %s }" % ", ".join(b.host for b in others), "drop")
        nft("add", "rule", "inet", self.table, "out", "meta", "skgid",
            "{ %s }" % ", ".join(str(b.gid) for b in others), "ip", "daddr", me.host, "drop")

    def heal_network(self):
        if self.table_made:
            nft("delete", "table", "inet", self.table, check=False)
            self.table_made = False

    def cleanup(self):
        self.heal_network()
        if self.admin is not None:
            self.admin = None

    # -- one cycle ---------------------------------------------------------------------------
    def run(self, step):
        kind = step["kind"]
        self.heal_all("before cycle %d" % step["cycle"])  # what died since the last heal
        target = self._target(step)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        what = "zookeeper node %d" % target if kind == "zk-kill" else "broker %d" % target
        log("cycle %d: %s of %s (partition %d), hold %.1fs"
            % (step["cycle"], kind, what, step["partition"], step["hold"]))
        b = self.cluster.broker(target) if kind != "zk-kill" else None
        if kind in ("kill-leader", "kill-follower", "kill-controller"):
            b.kill9()
            time.sleep(step["hold"])
            attempts = b.start()
            log("  broker %d back (%d start attempts)" % (target, attempts))
        elif kind == "pause":
            b.pause()
            time.sleep(step["hold"])
            b.resume()
        elif kind == "partition":
            self.isolate(target)
            time.sleep(step["hold"])
            self.heal_network()
        elif kind == "disk-full":
            n = b.fill_disk()
            log("  broker %d disk filled (%d MiB more)" % (target, n >> 20))
            time.sleep(step["hold"])
            b.free_disk()
            if not b.alive():
                log("  broker %d stopped over the full disk: %s" % (target, self.exit_line(b)))
                b.kill9()
                b.start()
        elif kind == "zk-kill":
            node = self.cluster.zk.node(target)
            node.stop(kill=True)
            time.sleep(step["hold"])
            node.start()
            self.cluster.zk.wait_serving(timeout=60)
        # A broker that dies of the fault dies within a moment of its heal (SIGCONT, a restart).
        time.sleep(1.0)
        self.heal_all("cycle %d (%s)" % (step["cycle"], kind),
                      expected_exit=target if kind == "disk-full" else None)
        return target

    @staticmethod
    def exit_line(b):
        rc = b.proc.returncode if b.proc is not None else None
        if rc is not None and rc < 0:
            return "killed by %s" % signal.Signals(-rc).name
        return "exit status %s" % rc

    def heal_all(self, when, expected_exit=None):
        """Whatever a cycle left: network healed, brokers resumed, disks freed, every broker and
        ZooKeeper node running. A broker found dead that the nemesis did not expect to stop
        (only the target of a full disk may: Kafka halts on a failed log dir) is an unexpected
        exit: recorded in self.exits with `when`, its exit status and its log's tail."""
        self.heal_network()
        for b in self.cluster.brokers:
            b.resume()
            b.free_disk()
        for n in self.cluster.zk.nodes:
            if n.pid() is None:
                n.start()
        self.cluster.zk.wait_serving(timeout=60)
        for b in self.cluster.brokers:
            if not b.alive():
                if b.id != expected_exit:
                    self.exits.append("%s: broker %d %s" % (when, b.id, self.exit_line(b)))
                    log("  UNEXPECTED: broker %d exited (%s); its log ends:\n%s"
                        % (b.id, self.exit_line(b), b.log_tail(1500)))
                log("  broker %d is down (%s): restarting" % (b.id, self.exit_line(b)))
                b.kill9()
                b.start()
