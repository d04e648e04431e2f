"""Issue 26: the simulator reaches the log states where commit and snapshot bugs hide (a follower
holding a stale tail of an older term beyond the entries a message carries, at a commit update or a
snapshot install), and judges them where the damage shows.

- the two reviewed mutations (tests/raft/wrong_cores.py) are caught by the hunting profile: before
  the stale_tail fault, 0 of 300 hunting seeds caught either (benchmarks/results/stale_tail_before_*);
- each new check (applied-uncommitted, committed-prefix-differs, log-chain-broken) fires on a
  deliberately wrong node state, and stays silent on the correct core;
- an exception inside a simulated node (a storage error, an assertion in advance()) or in the
  simulator itself is a verdict with the seed and the trace, never an exception out of run_seed.
"""
import types

import pytest

from swarmnode.raft import RaftNode, Snapshot, Store, chain_hash
from swarmnode.raft.log import RaftLog
from swarmnode.raft.messages import Entry
from swarmnode.sim import raft_sim
from swarmnode.sim.raft_checks import ConsequenceChecker, stale_tail
from swarmnode.sim.raft_sim import HUNT_PROFILE, run_seed

from .wrong_cores import CommitsPastLastNew, SnapshotKeepsStaleTail

STALE_PATHS = ("commit_ahead_of_entries", "stale_tail_at_commit_update", "stale_tail_at_snapshot_install",
               "stale_tail_at_snapshot_install_conflict")


def first_seed_reporting(factory, kind, max_seeds):
    """The run stops after the step of its first violation: every check of that step reports."""
    for seed in range(max_seeds):
        r = run_seed(seed, node_factory=factory, **HUNT_PROFILE)
        if kind in r["violation_kinds"]:
            return seed, r
    pytest.fail(f"{kind} not reported for {factory.__name__} within {max_seeds} hunting seeds")


# ---- the reviewed mutations, caught ----------------------------------------------------------------

def test_commit_past_last_new_is_caught_where_it_applies():
    seed, r = first_seed_reporting(CommitsPastLastNew, "committed-prefix-differs", 20)
    assert r["paths"]["stale_tail_at_commit_update"] > 0


def test_snapshot_keeping_a_stale_tail_is_caught():
    seed, r = first_seed_reporting(SnapshotKeepsStaleTail, "log-chain-broken", 12)
    assert r["paths"]["stale_tail_at_snapshot_install_conflict"] > 0


def test_correct_core_reaches_the_stale_tail_states_cleanly():
    reached = {p: 0 for p in STALE_PATHS}
    for seed in range(8):
        r = run_seed(seed, **HUNT_PROFILE)
        assert r["violation_count"] == 0 and r["liveness_ok"] is True, (seed, r["violations"][:2], r["replay"])
        for p in STALE_PATHS:
            reached[p] += r["paths"][p] > 0
        assert all(v >= 1 for v in r["path_tails"].get("stale_tail_at_commit_update", [1]))
    assert all(v >= 1 for v in reached.values()), reached


@pytest.mark.slow
def test_hunt_profile_reaches_each_stale_tail_path_in_20_of_100_seeds():
    seeds = {p: 0 for p in STALE_PATHS}
    for seed in range(100):
        r = run_seed(seed, **HUNT_PROFILE)
        for p in STALE_PATHS:
            seeds[p] += r["paths"][p] > 0
    assert all(v >= 20 for v in seeds.values()), seeds


def test_default_profile_has_no_stale_tail_fault():
    assert "stale_tail" not in raft_sim.SimParams(seed=0).faults
    assert "stale_tail" in HUNT_PROFILE["faults"]
    assert "--faults" in run_seed(1, **dict(HUNT_PROFILE, duration_ms=2_000))["replay"]


# ---- the stale-tail measure ------------------------------------------------------------------------

def chain(terms, start=1, prev="", tag=0):
    out, h = [], prev
    for k, t in enumerate(terms):
        cmd = {"op": "kv.put", "key": "k", "value": (start + k) * 10 + tag}
        h = chain_hash(h, t, cmd)
        out.append(Entry(start + k, t, cmd, h))
    return out


def log_of(entries, snap=Snapshot(0, 0, "", {})):
    return RaftLog(snap, entries)


def test_stale_tail_measures_the_entries_beyond_agreement():
    agreed = chain([1, 1, 1])
    follower = log_of(agreed + chain([2] * 5, start=4, prev=agreed[-1].hash))
    leader = log_of(agreed + chain([3, 3], start=4, prev=agreed[-1].hash, tag=1))
    assert stale_tail(follower, leader) == (5, 4)
    assert stale_tail(log_of(agreed), leader) == (0, None)
    longer = log_of(agreed + chain([3] * 4, start=4, prev=agreed[-1].hash, tag=1))
    assert stale_tail(log_of(longer.entries[:5]), longer) == (0, None)


# ---- each new check fires on a wrong node state ---------------------------------------------------

def fake_node(log, commit, applied, role="follower", term=3):
    sm = Store()
    sm.applied_index = applied
    return types.SimpleNamespace(log=log, commit_index=commit, sm=sm, role=role, term=term, vote=None)


def checker_with_leader(leader_log, commit):
    reports = []
    c = ConsequenceChecker(["m1", "m2", "m3"], lambda kind, node, detail: reports.append((kind, node, detail)))
    c.nodes_fn = lambda: ()
    c.after_step("m1", fake_node(leader_log, commit, commit, role="leader"))
    return c, reports


def test_applied_uncommitted_fires_on_an_apply_past_every_leader_commit():
    agreed = chain([1, 1, 1])
    c, reports = checker_with_leader(log_of(agreed + chain([3], start=4, prev=agreed[-1].hash, tag=1)), 3)
    stale = log_of(agreed + chain([2, 2], start=4, prev=agreed[-1].hash))
    c.after_step("m2", fake_node(stale, 3, 3))
    assert not reports
    c.after_step("m2", fake_node(stale, 3, 5))
    assert "applied-uncommitted" in [k for k, _, _ in reports], reports


def test_applied_uncommitted_fires_on_an_apply_of_another_entry():
    agreed = chain([1, 1])
    c, reports = checker_with_leader(log_of(agreed + chain([3, 3], start=3, prev=agreed[-1].hash, tag=1)), 4)
    other = log_of(agreed + chain([2, 2], start=3, prev=agreed[-1].hash))
    c.after_step("m3", fake_node(other, 2, 4))
    assert "applied-uncommitted" in [k for k, _, _ in reports]


def test_committed_prefix_differs_fires_on_a_commit_past_every_leader():
    agreed = chain([1, 1, 1])
    c, reports = checker_with_leader(log_of(agreed), 3)
    stale = log_of(agreed + chain([2, 2, 2], start=4, prev=agreed[-1].hash))
    c.after_step("m2", fake_node(stale, 5, 3))
    assert [k for k, _, _ in reports] == ["committed-prefix-differs"], reports


def test_committed_prefix_differs_fires_on_another_entry_below_commit():
    agreed = chain([1])
    c, reports = checker_with_leader(log_of(agreed + chain([3, 3], start=2, prev=agreed[-1].hash, tag=1)), 3)
    other = log_of(agreed + chain([2, 2], start=2, prev=agreed[-1].hash))
    c.after_step("m2", fake_node(other, 3, 1))
    assert "committed-prefix-differs" in [k for k, _, _ in reports], reports


def test_log_chain_broken_fires_on_a_tail_kept_behind_a_snapshot():
    agreed = chain([1, 1])
    lead = agreed + chain([3, 3], start=3, prev=agreed[-1].hash, tag=1)
    stale = chain([2, 2, 2, 2], start=3, prev=agreed[-1].hash)
    c, reports = checker_with_leader(log_of(lead), 4)
    snap = Snapshot(4, 3, lead[-1].hash, {})
    c.after_step("m2", fake_node(log_of([e for e in stale if e.index > 4], snap), 4, 4))
    assert [k for k, _, _ in reports] == ["log-chain-broken"], reports
    good = chain([3], start=5, prev=lead[-1].hash)
    c.after_step("m3", fake_node(log_of(good, snap), 4, 4))
    assert len(reports) == 1


# ---- exceptions inside a node or the simulator are verdicts -----------------------------------------

class ReadyWithAGap(RaftNode):
    """Wrong: once its log is long enough, hands storage entries that skip one (a gap)."""

    def ready(self):
        rd = super().ready()
        if rd is not None and len(rd.entries) >= 2 and self.log.last_index > 20:
            rd = type(rd)(rd.hard_state, rd.entries[1:], *[getattr(rd, f) for f in (
                "snapshot", "messages", "committed_entries", "results", "read_states", "dropped_reads", "events")])
        return rd


class AssertsInAdvance(RaftNode):
    def advance(self, rd):
        super().advance(rd)
        assert self.applied_index < 30, "applied too far (deliberate)"


@pytest.mark.parametrize("factory, text", [(ReadyWithAGap, "StorageError"), (AssertsInAdvance, "AssertionError")])
def test_node_exception_is_a_verdict_with_the_trace(factory, text):
    r = run_seed(3, node_factory=factory, **HUNT_PROFILE)
    v = [x for x in r["violations"] if x["kind"] == "core-exception"]
    assert v and text in v[0]["detail"] and ".py" in v[0]["detail"], v      # the error and its frames
    assert "--seed 3" in r["replay"]


def test_simulator_exception_is_a_verdict(monkeypatch):
    def boom(self):
        raise KeyError("deliberate")
    monkeypatch.setattr(raft_sim.RaftSim, "_live_probe", boom)
    r = run_seed(2, duration_ms=3_000)
    assert r["violation_kinds"] == ["sim-exception"] and "KeyError" in r["violations"][0]["detail"]
    assert "--seed 2" in r["replay"]
