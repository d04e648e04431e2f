"""The simulator's shortcuts (issue 25 section 6) change its cost, never its conclusions.

A node whose last _process found no Ready and reported nothing is `settled`; a later _catch_up with
no tick due skips _process for it (raft_sim.RaftSim._catch_up). These tests hold the simulator
against a naive driver that never skips (a deliberately simple second implementation, STYLE.md 4),
on the correct core and on wrong cores whose checks report again and again (stop_on_violation off),
and show that the comparison has teeth: a driver that skips whenever no tick is due, settled or not,
concludes differently. SimStore's digest memo is held against the digest recomputed from scratch.
"""
import importlib.util
import json
import os

import pytest

from swarmnode.sim import raft_sim
from swarmnode.sim.raft_checks import ConsequenceChecker, SimStore
from swarmnode.sim.raft_sim import HUNT_PROFILE, MEMBERSHIP_PROFILE, RaftSim, SimParams

from .test_raft_consequences import (CommitsPastItsLog, DropsTailOnHeartbeat, ForgetsVoteOnDisk,
                                     LosesLastEntryOnRestart, SilentDropsTail)
from .test_raft_contracts import HasReadyForgetsMessages, LeaderPromisesOnlyTheLeaseCheck
from .wrong_cores import CountsRemovedVoters, RemovedLeaderStays

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _NeverSettled(dict):
    """A `settled` map that never holds a node: every _catch_up runs _process (the driver as it was)."""

    def __setitem__(self, key, value):
        pass


class _SkipsWhenNoTickDue(RaftSim):
    """Deliberately wrong: skips _process whenever no tick is due, whether or not anything was
    asked of the node since (or its last round reported something)."""

    def _catch_up(self, i):
        self.settled[i] = self.nodes[i]
        super()._catch_up(i)


def _run(cls, seed, factory=None, **kw):
    DropsTailOnHeartbeat._n = 0      # its step counter is class-level: every run starts from 0
    p = dict(HUNT_PROFILE, trace_hash=True, stop_on_violation=False, max_events=200_000, **kw)
    if factory is not None:
        p["node_factory"] = factory
    sim = cls(SimParams(seed=seed, **p))
    if cls is _Naive:
        sim.settled = _NeverSettled()
    res = sim.run()
    res.pop("replay")
    return res


class _Naive(RaftSim):
    pass


@pytest.mark.parametrize("factory,seed", [
    (None, 0), (None, 1),
    (HasReadyForgetsMessages, 0),          # ready-contract, reported on each of its rounds
    (LeaderPromisesOnlyTheLeaseCheck, 0),  # tick-promise: promises reset by every _process
    (CommitsPastItsLog, 0),                # commit-beyond-log, reported after every step
    (SilentDropsTail, 1),                  # committed-entry-lost, no journal event
], ids=lambda x: getattr(x, "__name__", str(x)))
def test_sim_settled_skip_concludes_as_the_naive_driver(factory, seed):
    fast, naive = _run(RaftSim, seed, factory), _run(_Naive, seed, factory)
    assert fast == naive


def test_sim_settled_skip_comparison_catches_a_wrong_skip():
    """The comparison above can fail: skipping _process whenever no tick is due changes what a
    run with a wrong core reports (or the trace)."""
    differs = []
    for factory, seed in ((CommitsPastItsLog, 0), (HasReadyForgetsMessages, 0), (None, 0)):
        if _run(_SkipsWhenNoTickDue, seed, factory) != _run(_Naive, seed, factory):
            differs.append(getattr(factory, "__name__", "RaftNode"))
    assert differs, "a driver that skips unsettled nodes concluded exactly as the naive one"


def test_sim_store_digest_memo_equals_the_recomputed_digest():
    seen = []
    st = SimStore(lambda kind, index, digest: seen.append((kind, index, digest)))
    for k in range(1, 40):
        cmd = ({"op": "kv.put", "key": f"k{k % 5}", "value": k, "client_id": "c0", "seq": k} if k % 3
               else {"op": "kv.cas", "key": "k1", "expected": k - 1, "value": k})
        st.apply(k, cmd)
        assert st.digest() == st.digest_recomputed() == seen[-1][2]
        assert st.digest() == st.digest_recomputed()      # the memo is used once, then recomputed
    snap = st.snapshot()
    other = SimStore(lambda *a: seen.append(a))
    other.apply(1, {"op": "kv.put", "key": "x", "value": 1})
    other.restore(snap)
    assert other.digest() == st.digest() == other.digest_recomputed() == seen[-1][2]


def test_sim_same_trace_with_every_check_on_and_off_the_fast_paths():
    """The event checker's leader-completeness lookup is per term now: runs with rule checks on
    and off, and with and without consequence checks, keep one trace (checks only observe)."""
    a = raft_sim.run_seed(3, trace_hash=True, duration_ms=15_000)
    b = raft_sim.run_seed(3, trace_hash=True, duration_ms=15_000, consequence_checks=False, rule_checks=False)
    assert a["trace_crc"] == b["trace_crc"] and a["stats"] == b["stats"]


def test_benchmark_reports_seeds_per_s_and_seconds(capsys):
    spec = importlib.util.spec_from_file_location("raft_sim_safety", os.path.join(ROOT, "benchmarks", "raft_sim_safety.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--seeds", "2", "--workers", "1", "--seconds", "3"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["seeds"] == 2
    assert out["seconds"] > 0 and out["seeds_per_s"] > 0
    assert out["seeds_per_s"] == out["seeds_per_second"]


def test_has_ready_fast_path_honours_an_overridden_hard_state():
    """RaftNode.has_ready() compares the hard state field by field only for the plain core: a core
    that overrides _hard_state() (ForgetsVoteOnDisk persists no vote) must still see has_ready()
    agree with ready() -- the driver-contract check would report `ready-contract` otherwise (it did,
    with a fast path that ignored the override)."""
    from .test_raft_consequences import ForgetsVoteOnDisk
    r = _run(RaftSim, 0, ForgetsVoteOnDisk)
    assert "vote-forgotten" in r["violation_kinds"]
    assert not {"ready-contract", "tick-promise"} & set(r["violation_kinds"]), r["violation_kinds"]


# ---- incremental consequence checks: each state judged once ---------------------------------------

def _sloppy_after_step(self, i, node):
    """Deliberately wrong: treats a node as unchanged while its commit index is, ignoring its log,
    term, vote and the records other nodes' steps change."""
    key = (node, node.commit_index)
    if self.quiet.get(i) == key:
        return True
    n = self.reports
    self._after_step(i, node, node.term)
    if self.reports == n and self.settled_ok(i, node):
        self.quiet[i] = key
        return True
    self.quiet.pop(i, None)
    return False


def _run_checks(factory, seed, membership=False):
    kw = dict(MEMBERSHIP_PROFILE, trace_hash=True, stop_on_violation=False, max_events=200_000) if membership else {}
    return _run(RaftSim, seed, factory, **kw) if not membership else _run_membership(factory, seed, kw)


def _run_membership(factory, seed, kw):
    p = dict(kw)
    if factory is not None:
        p["node_factory"] = factory
    res = RaftSim(SimParams(seed=seed, **p)).run()
    res.pop("replay")
    return res


INCREMENTAL_CASES = [
    (None, 0, False), (None, 2, True),
    (CommitsPastItsLog, 0, False),       # commit-beyond-log, reported after every step
    (SilentDropsTail, 1, False),         # committed-entry-lost: the log changes, the commit does not
    (ForgetsVoteOnDisk, 0, False),       # vote-forgotten: the vote a node's messages made visible
    (LosesLastEntryOnRestart, 0, False),  # log-regressed, committed-entry-lost after a restart
    (HasReadyForgetsMessages, 0, False),
    (RemovedLeaderStays, 0, True),       # removed-leader-leads (once per term)
    (CountsRemovedVoters, 0, True),      # commit-without-majority, removed-node-counted
]


@pytest.mark.parametrize("factory,seed,membership", INCREMENTAL_CASES,
                         ids=lambda x: getattr(x, "__name__", str(x)))
def test_incremental_consequence_checks_conclude_as_judging_every_step(monkeypatch, factory, seed, membership):
    fast = _run_checks(factory, seed, membership)
    monkeypatch.setattr(ConsequenceChecker, "incremental", False)
    assert _run_checks(factory, seed, membership) == fast


def test_incremental_comparison_catches_a_wrong_skip(monkeypatch):
    """The comparison above can fail: a skip keyed on too little (the commit index) concludes
    differently from judging every step, on some wrong core of the list."""
    monkeypatch.setattr(ConsequenceChecker, "incremental", False)
    every = {c: _run_checks(*c) for c in INCREMENTAL_CASES[2:6]}
    monkeypatch.setattr(ConsequenceChecker, "incremental", True)
    monkeypatch.setattr(ConsequenceChecker, "after_step", _sloppy_after_step)
    differs = [c[0].__name__ for c in INCREMENTAL_CASES[2:6] if _run_checks(*c) != every[c]]
    assert differs, "a skip keyed on the commit index alone concluded exactly as judging every step"
