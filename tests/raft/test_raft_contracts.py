"""Checks of the Raft simulator that hold whatever the bug is, added for what mutation testing
showed the other checks could not see (benchmarks/mutation.py, benchmarks/MUTATION_NOTES.md):

  ready-contract      has_ready() and ready() agree (drivers that poll has_ready() rely on it)
  tick-promise        no tick before the one ticks_until_action() named does anything (drivers,
                      the simulator among them, skip those ticks)
  stale-term-sent     no message carries a term below the term its sender already held
  stale-read-state    a read never returns a state older than an index committed anywhere before
                      the read began (linearizability; stronger than "older than an acknowledged
                      write", which needs a client to have been told in time)
  efficiency          no entry is written to storage twice; no local snapshot before
                      snapshot_threshold entries (replication progressing without timer ticks is
                      tested in test_raft_paths.py)

Each check has a deliberately wrong core (a RaftNode subclass, none of the planted BUGS) that
violates it, and the check fires on it; the correct core stays silent (test_raft_consequences.py
and the 10,000-seed benchmark).
"""
import pytest

from swarmnode.raft import LEADER, AppendEntries, AppendResponse, RaftNode, ReadState
from swarmnode.sim.raft_sim import run_seed


HUNT = dict(duration_ms=20_000, fault_gap_ms_min=200, fault_gap_ms_max=1_500, fault_len_ms_max=1_500)


def first_seed_reporting(factory, kind, max_seeds=30, detail="", **kw):
    for seed in range(max_seeds):
        r = run_seed(seed, node_factory=factory, stop_on_violation=False, **{**HUNT, **kw})
        for v in r["violations"]:
            if v["kind"] == kind and detail in v["detail"]:
                return seed, r, v
    pytest.fail(f"{kind} ({detail!r}) not reported for {factory.__name__} within {max_seeds} seeds")


# ---- wrong cores ---------------------------------------------------------------------------------

class HasReadyForgetsMessages(RaftNode):
    """Wrong: has_ready() does not count queued messages, so a driver that polls it leaves
    heartbeats and votes unsent until something else happens."""

    def has_ready(self):
        msgs, self._msgs = self._msgs, []
        try:
            return super().has_ready()
        finally:
            self._msgs = msgs


class LeaderPromisesOnlyTheLeaseCheck(RaftNode):
    """Wrong: a leader's ticks_until_action() names only its check-quorum tick and forgets the
    heartbeat, so a driver that skips idle ticks sends heartbeats late."""

    def ticks_until_action(self):
        if self._role == LEADER:
            return max(1, self.config.election_timeout_min_ticks - self._election_elapsed)
        return super().ticks_until_action()


class CandidatePromisesOnlyTheTimeout(RaftNode):
    """Wrong: a (pre-)candidate's ticks_until_action() forgets the vote-request retries."""

    def ticks_until_action(self):
        if self._role != LEADER:
            return max(1, self._randomized_timeout - self._election_elapsed)
        return super().ticks_until_action()


class EchoesStaleTerm(RaftNode):
    """Wrong: answers an AppendEntries of a stale leader with the stale leader's own term, so the
    stale leader never learns of the newer term from it."""

    def step(self, m):
        if type(m) is AppendEntries and m.dst == self.id and m.term < self._term:
            self._send(AppendResponse(m.term, self.id, m.src, False, 0, 0, 0, 0))
            return
        super().step(m)


class ReadConfirmedByOnePeer(RaftNode):
    """Wrong: a ReadIndex is confirmed once any one follower acknowledged the heartbeat round
    (a majority only in a 3-node cluster)."""

    def _release_reads(self):
        if not self._pending_reads or self._role != LEADER:
            return super()._release_reads()
        keep = []
        own = self._committed_own_term()
        for r in self._pending_reads:
            if r.index is None and own:
                r.index = self._commit
            if r.index is not None and any(self._progress[p].acked_seq >= r.seq for p in self.peers):
                self._read_states.append(ReadState(r.ctx, r.index))
            else:
                keep.append(r)
        self._pending_reads = keep


class RewritesAppliedTail(RaftNode):
    """Wrong only in cost: after each apply it hands storage the entries from the applied index on
    again (already durable), doubling the writes."""

    def advance(self, rd):
        super().advance(rd)
        if rd.committed_entries and self._applied > self.log.snap_index:
            self._stable_next = min(self._stable_next, self._applied)


class CompactsAtHalfThreshold(RaftNode):
    """Wrong only in cost: takes a local snapshot every snapshot_threshold / 2 applied entries."""

    def _apply_committed(self):
        out = super()._apply_committed()
        if out[0] and self._pending_snapshot is None and \
                self._applied - self.log.snap_index >= max(1, self.config.snapshot_threshold // 2):
            self._take_snapshot()
        return out


# ---- each check fires on a wrong core -----------------------------------------------------------

@pytest.mark.parametrize("factory,kind", [
    (HasReadyForgetsMessages, "ready-contract"),
    (LeaderPromisesOnlyTheLeaseCheck, "tick-promise"),
    (CandidatePromisesOnlyTheTimeout, "tick-promise"),
    (EchoesStaleTerm, "stale-term-sent"),
], ids=lambda x: getattr(x, "__name__", x))
def test_contract_check_fires_on_wrong_core(factory, kind):
    seed, r, v = first_seed_reporting(factory, kind)
    assert "node_factory=" + factory.__name__ in r["replay"]


def test_read_older_than_a_commit_anywhere_is_stale():
    """A 5-node leader cut off with one follower keeps confirming reads while the majority side
    commits: the read returns a state older than an index committed before it began. No client
    needs to have seen that commit acknowledged for the check to fire."""
    seed, r, v = first_seed_reporting(ReadConfirmedByOnePeer, "stale-read-state", n_nodes=5,
                                      detail="was committed before the read began")
    assert "node_factory=ReadConfirmedByOnePeer" in r["replay"]


@pytest.mark.parametrize("factory,key", [
    (RewritesAppliedTail, "repersisted_entries"),
    (CompactsAtHalfThreshold, "early_compactions"),
], ids=lambda x: getattr(x, "__name__", x))
def test_efficiency_bound_fires_on_a_core_wrong_only_in_cost(factory, key):
    for seed in range(10):
        r = run_seed(seed, node_factory=factory, duration_ms=15_000)
        if r["efficiency"][key] > 0:
            assert r["violation_count"] == 0, r["violations"][:2]        # safe ...
            assert not r["efficiency_ok"] and any(p.startswith(key) for p in r["efficiency"]["problems"])
            return
    pytest.fail(f"{key} never counted for {factory.__name__}")


def test_correct_core_writes_each_entry_once_and_compacts_on_threshold():
    for seed in range(3):
        r = run_seed(seed, duration_ms=20_000)
        e = r["efficiency"]
        assert e["repersisted_entries"] == 0 and e["early_compactions"] == 0, (e, r["replay"])
