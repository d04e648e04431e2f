"""Consequence checks of the Raft simulator (swarmnode/sim/raft_checks.py): each one fires when a
deliberately wrong core (a RaftNode subclass defined here, not one of the planted BUGS) produces
the consequence it guards against, and stays silent on the correct core. The wrong cores also lie
in no journal event, or break a rule the event checker has no name for: detection must come from
what the node holds, sends and applies.

Also: every run ends in a verdict (a hit event bound is a reported failure with its replay).
"""
import dataclasses
import importlib.util
import os

import pytest

from swarmnode.raft import LEADER, NotLeader, RaftNode, ReadState
from swarmnode.sim.raft_sim import HARD_FAULTS, HUNT_PROFILE, run_seed

HUNT = dict(duration_ms=20_000, fault_gap_ms_min=200, fault_gap_ms_max=1_500, fault_len_ms_max=1_500)
MAX_SEEDS = 30
CONSEQUENCE_KINDS = {"committed-entry-lost", "committed-divergence", "term-regressed", "vote-forgotten",
                     "double-vote", "log-regressed", "applied-divergence", "stale-read-state",
                     "commit-without-majority", "two-leaders", "leader-missing-committed",
                     "commit-beyond-log", "applied-beyond-commit", "ready-contract", "tick-promise",
                     "stale-term-sent", "applied-uncommitted", "committed-prefix-differs", "log-chain-broken",
                     "stale-read"}   # the simulator's read check reads the node's applied index, not the journal


def hunt(factory, kind, max_seeds=MAX_SEEDS, **kw):
    """First seed of the hunting profile where `kind` is reported (all violations are kept)."""
    for seed in range(max_seeds):
        r = run_seed(seed, node_factory=factory, stop_on_violation=False, **HUNT, **kw)
        if kind in r["violation_kinds"]:     # every kind reported, not only the first five violations
            return seed, r
    pytest.fail(f"{kind} not reported for {factory.__name__} within {max_seeds} seeds")


def kinds_of(r):
    return set(r["violation_kinds"])


# ---- deliberately wrong cores ----------------------------------------------------------------------

class DropsTailOnHeartbeat(RaftNode):
    """Wrong: a follower drops its last entry on every third empty AppendEntries, committed or not,
    without a journal event (§5.3: entries are only removed when they conflict)."""
    _n = 0

    def _on_append(self, m):
        super()._on_append(m)
        DropsTailOnHeartbeat._n += 1
        if not m.entries and self.log.entries and DropsTailOnHeartbeat._n % 3 == 0:
            self.log.truncate_from(self.log.last_index)
            self._stable_next = min(self._stable_next, self.log.last_index + 1)
            self._commit = min(self._commit, self.log.last_index)
            self._applied = min(self._applied, self._commit)


class AcceptsWithoutPrevCheck(RaftNode):
    """Wrong: a follower appends after any prev entry, skipping the §5.3 consistency check."""

    def _reject_append(self, m, prev_index):
        log = self.log
        if prev_index > log.last_index or prev_index < log.snap_index:
            return super()._reject_append(m, prev_index)
        log.truncate_from(prev_index + 1)
        self._stable_next = min(self._stable_next, prev_index + 1)
        for e in m.entries:
            self._append_entry(e.term, e.command)
        c = min(m.leader_commit, log.last_index)
        if c > self._commit:
            self._set_commit(c)
        from swarmnode.raft import AppendResponse
        self._send(AppendResponse(self._term, self.id, m.src, True, log.last_index, 0, 0, m.seq))


class TermGoesBackOnRestart(RaftNode):
    """Wrong: reloads its term one lower than stored (a mis-read hard state)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        if self._term > 0:
            self._term -= 1
            self._vote = None


class ForgetsVoteOnDisk(RaftNode):
    """Wrong: persists its term but never its vote (without any planted switch)."""

    def _hard_state(self):
        hs = super()._hard_state()
        return type(hs)(hs.term, None, hs.commit)


class RevotesInTerm(RaftNode):
    """Wrong: forgets whom it voted for whenever another candidate of the same term asks (§5.2:
    at most one vote per term)."""

    def _on_vote_request(self, m):
        if not m.pre_vote and m.term == self._term and self._role != LEADER:
            self._vote = None
            self._leader_id = None
        super()._on_vote_request(m)


class LosesLastEntryOnRestart(RaftNode):
    """Wrong: the last log entry is lost at every restart (a torn write taken as none)."""

    def __init__(self, node_id, voters, storage, *a, **kw):
        loaded = storage.load()
        if loaded.entries:
            storage._log = storage._log[:-1]
        super().__init__(node_id, voters, storage, *a, **kw)


class SkipsAnApplyOnRestart(RaftNode):
    """Wrong: after a restart, re-applies from one past the snapshot (skips an entry)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        if self._commit > self._applied + 1:
            self._applied += 1


class ReadsWithoutQuorum(RaftNode):
    """Wrong: ReadIndex answered from the leader's own commit index with no heartbeat round
    (thesis §6.4 requires confirming leadership first)."""

    def read_index(self, ctx):
        if self._role != LEADER:
            raise NotLeader(self._leader_id)
        self._read_states.append(ReadState(ctx, self._commit))


WRONG = [
    (DropsTailOnHeartbeat, "committed-entry-lost"),
    (AcceptsWithoutPrevCheck, "committed-divergence"),
    (TermGoesBackOnRestart, "term-regressed"),
    (ForgetsVoteOnDisk, "vote-forgotten"),
    (RevotesInTerm, "double-vote"),
    (LosesLastEntryOnRestart, "log-regressed"),
    (SkipsAnApplyOnRestart, "applied-divergence"),
    (ReadsWithoutQuorum, "stale-read-state"),
]


@pytest.mark.parametrize("factory,kind", WRONG, ids=[k for _, k in WRONG])
def test_consequence_check_fires_on_wrong_core(factory, kind):
    seed, r = hunt(factory, kind)
    print(f"{factory.__name__}: {kind} at seed {seed}")
    assert "node_factory=" + factory.__name__ in r["replay"]


def test_consequence_checks_silent_on_correct_core():
    for seed in range(12):
        r = run_seed(seed, stop_on_violation=False, **HUNT)
        assert r["violations"] == [] and r["liveness_ok"] is True, (seed, r["violations"][:3], r["replay"])


def test_committed_entry_lost_is_seen_without_any_journal_event():
    """DropsTailOnHeartbeat journals nothing about its truncation: the event checker's
    committed-truncated cannot see it; the consequence check does."""
    _, r = hunt(DropsTailOnHeartbeat, "committed-entry-lost")
    assert "committed-truncated" not in kinds_of(r)


class SilentDropsTail(DropsTailOnHeartbeat):
    """DropsTailOnHeartbeat whose journal is empty: the event checker sees nothing at all."""

    def ready(self):
        rd = super().ready()
        return None if rd is None else dataclasses.replace(rd, events=())


def test_consequence_checks_need_no_journal_events():
    """With every journal event suppressed, only the consequence checks can report, and they do."""
    seed, r = hunt(SilentDropsTail, "committed-entry-lost")
    assert kinds_of(r) <= CONSEQUENCE_KINDS, kinds_of(r)


# ---- every run ends in a verdict -----------------------------------------------------------------

def test_event_bound_is_a_reported_failure_with_replay():
    r = run_seed(3, max_events=2_000, **HUNT)
    assert r["bound_exceeded"] and "2000 events" in r["bound_exceeded"]
    assert [v["kind"] for v in r["violations"]] == ["bound-exceeded"]
    assert "--max-events 2000" in r["replay"]


def test_benchmark_counts_bound_exceeded_instead_of_crashing(capsys):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "raft_sim_safety.py")
    spec = importlib.util.spec_from_file_location("raft_sim_safety", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--seeds", "3", "--workers", "1", "--profile", "hunt", "--seconds", "5",
                   "--max-events", "300"])
    import json
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["bound_exceeded"] == 3 and out["seeds"] == 3
    for k in ("spurious_elections", "elections_per_fault", "paths", "violations", "liveness_failures"):
        assert k in out


def test_hard_fault_kinds_are_in_the_default_profile():
    from swarmnode.sim.raft_sim import SimParams
    assert set(HARD_FAULTS) <= set(SimParams(seed=0).faults)


# ---- efficiency and liveness as measured outcomes --------------------------------------------------

class NoTimerResetOnAppend(RaftNode):
    """Wrong only in efficiency: a follower does not restart its election timer when it hears
    from the leader (§5.2), so it campaigns on a healthy network. PreVote and the leader lease keep
    it safe, and the cluster stays live: only the election counts show it."""

    def _accept_leader(self, m):
        elapsed = self._election_elapsed
        ok = super()._accept_leader(m)
        self._election_elapsed = elapsed
        return ok


def test_efficiency_bound_catches_a_core_that_only_elects_more_often():
    r = run_seed(0, node_factory=NoTimerResetOnAppend, duration_ms=30_000)
    e = r["efficiency"]
    assert r["violation_count"] == 0 and r["liveness_ok"] is True     # safe and live ...
    assert not r["efficiency_ok"], e                                   # ... and still reported
    assert e["spurious_campaigns"] + e["spurious_term_increases"] > 0
    assert e["elections_per_fault"] > 3


@pytest.mark.parametrize("seed", range(4))
def test_efficiency_of_the_correct_core_is_within_bounds(seed):
    r = run_seed(seed, duration_ms=30_000)
    e = r["efficiency"]
    assert r["efficiency_ok"], (e, r["replay"])
    assert e["spurious_elections"] == e["spurious_term_increases"] == 0
    assert e["faults"] > 0 and e["elections"] >= 1


# ---- the hard paths run -----------------------------------------------------------------------------

def test_hunting_profile_drives_every_hard_path():
    """Each hard path of the protocol runs at least once in 15 seeds of the hunting profile; the
    per-100-seed rates are in benchmarks/raft_sim_safety.py's `paths_per_100_seeds`."""
    total: dict = {}
    for seed in range(15):
        r = run_seed(seed, **HUNT_PROFILE)     # with the stale_tail fault (issue 26's paths)
        assert r["violation_count"] == 0, r["violations"][:2]
        for k, v in r["paths"].items():
            total[k] = total.get(k, 0) + v
    missing = [k for k, v in total.items() if v == 0]
    assert not missing, (missing, total)


# ---- the rules' consequences read from node state ------------------------------------------------------

class CommitsOnMinority(RaftNode):
    """Wrong: the leader counts one replica too few as a majority (§5.3)."""

    def _maybe_commit(self):
        matches = sorted([self.log.last_index] + [self._progress[p].match for p in self.peers], reverse=True)
        n = matches[max(0, self.quorum - 2)]
        if n > self._commit and self.log.term(n) == self._term:
            self._set_commit(n)


class WinsOneVoteShort(RaftNode):
    """Wrong: a candidate wins with one vote less than a majority (§5.2)."""

    def _on_vote_response(self, m):
        super()._on_vote_response(m)
        if self._role == "candidate" and not m.pre_vote:
            if sum(1 for v in self._votes.values() if v) >= self.quorum - 1:
                self.become_leader()


class VotesWithoutLogCheck(RaftNode):
    """Wrong: grants votes without the §5.4.1 up-to-date check (no planted switch used)."""

    def _log_ok(self, m):
        return True


class CommitsPastItsLog(RaftNode):
    """Wrong: a follower takes the leader's commit index even past the entries it has (§5.3:
    commitIndex = min(leaderCommit, index of last new entry))."""

    def _on_append(self, m):
        super()._on_append(m)
        if self._role == "follower" and m.leader_commit > self._commit and m.entries:
            self._commit = m.leader_commit


class AppliesPastCommit(RaftNode):
    """Wrong: a follower applies its whole log, not only its committed prefix."""

    def _apply_committed(self):
        if self._role == "follower" and self.log.last_index > self._commit:
            saved = self._commit
            self._commit = self.log.last_index
            try:
                return super()._apply_committed()
            finally:
                self._commit = saved
        return super()._apply_committed()


RULES = [
    (CommitsOnMinority, "commit-without-majority"),
    (WinsOneVoteShort, "two-leaders"),
    (VotesWithoutLogCheck, "leader-missing-committed"),
    (CommitsPastItsLog, "commit-beyond-log"),
    (AppliesPastCommit, "applied-beyond-commit"),
]


@pytest.mark.parametrize("factory,kind", RULES, ids=[k for _, k in RULES])
def test_rule_consequence_check_fires_on_wrong_core(factory, kind):
    seed, r = hunt(factory, kind)
    print(f"{factory.__name__}: {kind} at seed {seed}")


def test_raft_node_refuses_an_id_outside_its_voters():
    from swarmnode.raft import MemoryStorage
    with pytest.raises(ValueError):
        RaftNode("m9", ["m1", "m2", "m3"], MemoryStorage())
