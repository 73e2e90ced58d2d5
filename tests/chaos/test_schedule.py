"""The nemesis's schedule: the same seed replays the same plan, the first cycles cover every
fault kind, the draws stay within their bounds."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nemesis  # noqa: E402
from cluster import PARTITIONS, SESSION_TIMEOUT_MS  # noqa: E402


def test_same_seed_same_schedule_other_seed_other_schedule():
    assert nemesis.schedule(42, 100) == nemesis.schedule(42, 100)
    assert nemesis.schedule(42, 100) != nemesis.schedule(43, 100)
    # A longer run starts with the shorter run's plan.
    assert nemesis.schedule(42, 100)[:7] == nemesis.schedule(42, 7)


def test_first_cycles_inject_every_kind_once():
    for seed in range(20):
        kinds = [s["kind"] for s in nemesis.schedule(seed, len(nemesis.FAULTS))]
        assert sorted(kinds) == sorted(nemesis.FAULTS), (seed, kinds)


def test_draws_within_bounds():
    steps = nemesis.schedule(7, 300)
    assert [s["cycle"] for s in steps] == list(range(1, 301))
    assert set(s["kind"] for s in steps) == set(nemesis.FAULTS)
    for s in steps:
        assert 0 <= s["partition"] < PARTITIONS and 0 <= s["pick"] < 1
        assert 1.0 <= s["quiet"] <= 3.0
        if s["kind"] == "pause":
            assert s["hold"] > SESSION_TIMEOUT_MS / 1000.0  # past the ZooKeeper session
        elif s["kind"] == "partition":
            assert 4.0 <= s["hold"] <= 20.0
        else:
            assert 3.0 <= s["hold"] <= 8.0


def test_narrowed_to_some_kinds():
    steps = nemesis.schedule(3, 50, ["pause", "zk-kill"])
    assert set(s["kind"] for s in steps) == {"pause", "zk-kill"}
    assert steps == nemesis.schedule(3, 50, ["pause", "zk-kill"])
