"""Deliberately wrong Raft cores for the stale-tail states (issue 26): each is one small, classic
change a real implementation has shipped, written as a RaftNode subclass (not a planted BUG), so a
test or `benchmarks/raft_sim_safety.py --core tests.raft.wrong_cores:NAME` can run it.

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

