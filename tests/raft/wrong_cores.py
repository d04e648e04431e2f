"""Deliberately wrong Raft cores for the stale-tail states (issue 26): each is one small, classic
change a real implementation has shipped, written as a RaftNode subclass (not a planted BUG), so a
test or `benchmarks/raft_sim_safety.py --core tests.raft.wrong_cores:NAME` can run it.
The membership cores (issue 23) follow at the end; tests/raft/test_raft_membership_sim.py runs them.

  CommitsPastLastNew      §5.3 / Fig. 2 AppendEntries rule 5: a follower sets
                          commitIndex = min(leaderCommit, index of last NEW entry). This core uses
                          its last log index instead, so a stale tail beyond the entries the message
                          carried is committed (and applied) although no leader committed it.
  SnapshotKeepsStaleTail  thesis §7 / Fig. 5.3 InstallSnapshot: when the log does not hold the
                          snapshot's last entry (index and term), the whole log is discarded. This
                          core keeps the entries after the snapshot's index, so a deposed leader's
                          stale tail survives behind a snapshot it does not chain to (harmless
                          only while a later append happens to truncate it).
"""
from swarmnode.raft import AppendResponse, RaftNode


class CommitsPastLastNew(RaftNode):
    """Wrong: commit = min(leader_commit, last log index) instead of the last new entry (the
    correct _on_append with that one expression changed)."""

    def _on_append(self, m):
        if not self._accept_leader(m):
            return
        if m.prev_log_index < self._commit:
            skip = self._commit - m.prev_log_index
            if skip >= len(m.entries):
                self._send(AppendResponse(self._term, self.id, m.src, True, self._commit, 0, 0, m.seq))
                return
            entries = m.entries[skip:]
            prev_index = self._commit
        else:
            entries, prev_index = m.entries, m.prev_log_index
            if self.log.term(prev_index) != m.prev_log_term:
                self._reject_append(m, prev_index)
                return
        log = self.log
        for e in entries:
            if e.index <= log.last_index:
                if log.term(e.index) == e.term:
                    continue
                self._events.append({"type": "truncate", "from_index": e.index})
                log.truncate_from(e.index)
                self._stable_next = min(self._stable_next, e.index)
            self._append_entry(e.term, e.command)
        last_new = prev_index + len(entries)
        new_commit = min(m.leader_commit, log.last_index)      # WRONG: last_new, not last_index
        if new_commit > self._commit:
            self._set_commit(new_commit)
        self._send(AppendResponse(self._term, self.id, m.src, True, last_new, 0, 0, m.seq))


class SnapshotKeepsStaleTail(RaftNode):
    """Wrong: InstallSnapshot over a conflicting log keeps the entries after the snapshot index."""

    def _on_snapshot(self, m):
        s, lg = m.snapshot, self.log
        conflict = s.index > self._commit and lg.term(s.index) not in (None, s.term)
        tail = [e for e in lg.entries if e.index > s.index] if conflict else []
        super()._on_snapshot(m)
        if tail and lg.snap_index == s.index and not lg.entries:
            lg.entries.extend(tail)          # the stale tail stays (and is persisted with the next Ready)



# ---- membership (issue 23): each wrong in one classic way about configurations ----------------------
# (benchmarks/raft_sim_safety.py --profile membership --core tests.raft.wrong_cores:NAME runs one)

class ConfigOnCommit(RaftNode):
    """Wrong (thesis §4.1: a server uses the latest configuration in its log, committed or not):
    uses a configuration only once it is committed, so a leader keeps counting the old voters for
    entries the new configuration must hold."""

    def _refresh_membership(self):
        log = self.log
        saved = log.confs
        log.confs = [(i, c) for i, c in saved if i <= self._commit]
        try:
            super()._refresh_membership()
        finally:
            log.confs = saved

    def _set_commit(self, index):
        super()._set_commit(index)
        self._refresh_membership()


class QuorumFromBootstrapSize(RaftNode):
    """Wrong: an election is won with a majority of the bootstrap configuration's size (3 or 5),
    whatever the configuration in force has grown to; votes are counted from its voters."""

    def _on_vote_response(self, m):
        from swarmnode.raft import quorum
        boot = len(self.bootstrap.voters) if self.bootstrap is not None else 3
        real = quorum.vote_result
        quorum.vote_result = lambda n, g, r: real(boot if n > boot else n, g, r)
        try:
            super()._on_vote_response(m)
        finally:
            quorum.vote_result = real


class CountsRemovedVoters(RaftNode):
    """Wrong: a leader keeps replicating to the voters a change removed and counts their acks, with
    the quorum size of the configuration in force (the removal never really takes effect)."""

    def _refresh_membership(self):
        ever = set(getattr(self, "_ever", ())) | set(self.voters)
        super()._refresh_membership()
        self._ever = ever | set(self.voters)
        if self._role == "leader":
            extra = tuple(p for p in sorted(self._ever) if p != self.id and p not in self.peers)
            self.peers = self.peers + extra
            from swarmnode.raft.core import _Progress
            for p in extra:
                self._progress.setdefault(p, _Progress(self.log.last_index + 1))

    def become_leader(self):
        super().become_leader()
        self._refresh_membership()

    def _maybe_commit(self):
        ever = sorted(set(self.voters) | set(getattr(self, "_ever", ())))
        matches = sorted((self.log.last_index if p == self.id else self._progress[p].match)
                         for p in ever if p == self.id or p in self._progress)
        matches.reverse()
        if len(matches) < self.quorum:
            return
        n = matches[self.quorum - 1]                       # WRONG: removed voters' acks count
        if n > self._commit and self.log.term(n) == self._term:
            self._set_commit(n)
            if self._removed_after_commit():
                self.become_follower(self._term, None)


class RemovedLeaderStays(RaftNode):
    """Wrong (thesis §4.2.2): a leader whose removal committed does not step down; it goes on
    leading a configuration it is not part of (counting only the others)."""

    def _removed_after_commit(self):
        return False


class ElectsFromBootstrap(RaftNode):
    """Wrong: votes count only from the bootstrap voters (the configuration given at start-up), so
    once replacements retired enough of them no election can be won (a joiner never wins one)."""

    def _on_vote_response(self, m):
        boot = self.bootstrap.voters if self.bootstrap is not None else ()
        if m.src not in boot:
            return
        super()._on_vote_response(m)

    def _campaign(self):
        if self.bootstrap is None and self.id in self.voters:
            self._reset_timers()
            return                                         # WRONG: a joiner never stands
        super()._campaign()



class TwoChangesAtOnce(RaftNode):
    """Wrong (thesis §4.1: one change at a time): a leader appends a configuration change while
    the previous one is still uncommitted (it keeps the own-term and catch-up rules)."""

    def propose_conf_change(self, action, node):
        from swarmnode.raft import NotLeader
        from swarmnode.raft.membership import ConfChangeError, change
        if self._role != "leader":
            raise NotLeader(self._leader_id)
        if not self._committed_own_term():
            raise ConfChangeError("the leader has not committed an entry of its term yet")
        new = change(self._membership, action, node)     # WRONG: no check for an uncommitted change
        if action == "promote":
            pr = self._progress.get(node)
            if pr is None or pr.match < self._commit:
                raise ConfChangeError(f"learner {node} has not caught up")
        e = self._append_local(new.command())
        self._broadcast_append()
        return e.index


class AnswersBeforeCommit(RaftNode):
    """Wrong (issue 25 section 3, group commit): while a Ready is outstanding, apply and answer
    every entry that is durable here, committed or not -- an early acknowledgement that forgot the
    commit index (apply_durable with its bound at the durable log only)."""

    def apply_durable(self):
        hi = self._stable_next - 1
        if hi <= self._applied:
            return ()
        return self._apply_committed(hi, snapshot=False)[1]


class SnapshotsUnderOutstandingReady(RaftNode):
    """Wrong (issue 25 section 3): apply_durable also takes the local snapshot its applies make
    due, while a Ready is outstanding. The snapshot moves the node's durable-log mark back to its
    own index and the outstanding Ready's advance() then moves it past that Ready's entries, which
    the snapshot's write replaced: the next Ready does not write them again, and a restart finds
    them gone although the node acknowledged them."""

    def apply_durable(self):
        hi = min(self._commit, self._stable_next - 1)
        if hi <= self._applied:
            return ()
        return self._apply_committed(hi, snapshot=True)[1]
