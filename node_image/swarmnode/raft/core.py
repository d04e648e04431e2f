"""The Raft core: a pure state machine (no I/O, no clock, no global randomness).

Owns: RaftNode (roles, elections with PreVote and CheckQuorum, replication with fast back-off,
the §5.4.2 commit rule, snapshots and InstallSnapshot, ReadIndex), Ready (its effects as data),
NotLeader / Busy. Must not import asyncio, socket, time, module-level random or `chaos`.

Inputs: tick(), step(message), propose(command), read_index(ctx). Outputs: ready() -> Ready.
Roles change only in become_follower / become_precandidate / become_candidate / become_leader.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from operator import attrgetter

from . import membership, quorum
from .config import RaftConfig
from .log import RaftLog
from .membership import ConfChangeError, Membership
from .messages import (AppendEntries, AppendResponse, Entry, InstallSnapshot, Message, MessageError,
                       Snapshot, VoteRequest, VoteResponse)
from .storage import HardState, Storage
from .store import Store

FOLLOWER, PRECANDIDATE, CANDIDATE, LEADER = "follower", "precandidate", "candidate", "leader"
PROBE, REPLICATE, SNAPSHOT = "probe", "replicate", "snapshot"


class NotLeader(Exception):
    """propose()/read_index() on a node that is not the leader; leader_hint may be None."""

    def __init__(self, leader_hint):
        super().__init__(f"not the leader (leader hint: {leader_hint})")
        self.leader_hint = leader_hint


class Busy(Exception):
    """A bound was hit (uncommitted entries or pending reads); retry later."""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A confirmed ReadIndex: serve the read `ctx` once applied_index >= index."""
    ctx: object
    index: int


@dataclass(frozen=True, slots=True)
class AppliedResult:
    """The result of applying the entry at `index`. A client whose proposal returned `index` while
    the node's term was T got its command applied iff this result has term == T."""
    index: int
    term: int
    command: dict
    result: dict


@dataclass(frozen=True)
class Ready:
    """Effects of the core since the last Ready, as data. The driver MUST, in this order:

    1. persist `hard_state` (if not None), `entries` and `snapshot` (if not None) with
       storage.persist(...), then storage.sync() -- durable before anything below leaves;
       and append `events` to the journal and flush it (events are unstamped dicts, contracts
       section 4: term, vote, role, append, truncate, commit, apply, snapshot, worker, task);
    2. send `messages`;
    3. release the effects of applying: `committed_entries` have ALREADY been applied to the state
       machine by the core when it built this Ready (the core's choice), their results are in
       `results`; answer clients from `results`, serve each of `read_states` once
       applied_index >= its index (it already is, unless the node restarted), and fail every ctx
       in `dropped_reads` (the node lost leadership before confirming it);
    4. call node.advance(ready) before asking for the next Ready.
    A crash anywhere before step 4 is safe: nothing leaves before it is durable.
    """
    hard_state: HardState | None
    entries: tuple
    snapshot: Snapshot | None
    messages: tuple
    committed_entries: tuple
    results: tuple
    read_states: tuple
    dropped_reads: tuple
    events: tuple


class _Progress:
    __slots__ = ("match", "next", "state", "active", "acked_seq", "probe_sent", "snap_elapsed", "inflight")

    def __init__(self, next_index: int):
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.active = True
        self.acked_seq = 0
        self.probe_sent = False
        self.snap_elapsed = 0
        self.inflight = 0


class _PendingRead:
    __slots__ = ("ctx", "index", "seq")

    def __init__(self, ctx, index, seq):
        self.ctx, self.index, self.seq = ctx, index, seq


class RaftNode:
    """One Raft participant. See the package docstring for the driver loop."""

    def __init__(self, node_id: str, voters, storage: Storage, config: RaftConfig | None = None,
                 rng: random.Random | None = None, state_machine: Store | None = None):
        """`voters`: the bootstrap configuration, used until the log or snapshot holds one. A node
        joining an existing cluster passes () (it waits for the leader to replicate the
        configuration that lists it; see membership.py)."""
        self.config = (config or RaftConfig()).validate()
        self.id = node_id
        self.bootstrap = Membership(tuple(sorted(set(voters)))) if voters else None
        if self.bootstrap is not None and node_id not in self.bootstrap.voters:
            raise ValueError(f"{node_id} is not among the voters {self.bootstrap.voters}")
        self._membership = None
        self.voters: tuple = ()
        self.learners: tuple = ()
        self.peers: tuple = ()
        self.quorum = 1
        self.storage = storage
        self.rng = rng if rng is not None else random.Random(0)
        self.sm = state_machine if state_machine is not None else Store()
        self._bugs = self.config.bugs
        loaded = storage.load()
        snap = loaded.snapshot
        self._snapshot = snap
        self.sm.restore(snap.data)
        self.log = RaftLog(snap, loaded.entries)
        hs = loaded.hard_state
        self._term, self._vote = hs.term, hs.vote
        self._commit = min(max(hs.commit, snap.index), self.log.last_index)
        self._applied = snap.index
        self._persisted_hs = hs
        self._stable_next = self.log.last_index + 1
        self._pending_snapshot: Snapshot | None = None
        self._msgs: list = []
        self._events: list = []
        self._read_states: list = []
        self._dropped_reads: list = []
        self._pending_reads: list = []
        self._unconfirmed_ctx: list = []
        self._role = None
        self._leader_id = None
        self._votes: dict = {}
        self._progress: dict = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = 0
        self._hb_seq = 0
        self._ready_out = False
        self.counters = {"dropped_messages": 0, "conflicting_leader": 0, "reads_dropped": 0,
                         "inflight_bound_hits": 0}
        self._refresh_membership()
        self.become_follower(self._term, None)
        # The persistent state as recovered (Fig. 2: currentTerm and votedFor survive a restart),
        # journaled so a checker can hold it against what the node did before: a vote or term the
        # journal shows, but storage lost, is a safety bug even when no second vote follows.
        self._events.append({"type": "recovered", "term": hs.term, "vote": hs.vote, "commit": hs.commit})
        # The log recovered from storage, journaled again (`recovered: true`). A process killed after
        # an entry's fsync but before its journal line leaves an entry the journal never showed, and
        # the next append then looked like a gap (log-matching) to the checker. Identical re-appends
        # are harmless to it; at most snapshot-interval entries per restart.
        for e in self.log.entries:
            self._events.append({"type": "append", "index": e.index, "term": e.term, "hash": e.hash,
                                 "recovered": True})
        if self._commit > snap.index:
            # The commit index recovered from storage, journaled before the applies it allows. A
            # process killed during an fsync leaves the commit record on disk (the OS has it) but
            # not the journal line written after the fsync; without this event a restarted node's
            # re-applies looked like applies past its commit index (apply-committed).
            self._events.append({"type": "commit", "index": self._commit, "recovered": True})

    # ---- properties ---------------------------------------------------------------------------
    # (read-only views of the private fields; attrgetter reads them without a Python call frame:
    # drivers and the simulator's checks read these after every step)
    role = property(attrgetter("_role"))
    term = property(attrgetter("_term"))
    vote = property(attrgetter("_vote"))
    leader_id = property(attrgetter("_leader_id"))
    commit_index = property(attrgetter("_commit"))
    applied_index = property(attrgetter("_applied"))
    last_log_index = property(lambda self: self.log.last_index)
    last_log_term = property(lambda self: self.log.last_term)

    def status(self) -> dict:
        return {"role": self._role, "term": self._term, "leader": self._leader_id,
                "commit_index": self._commit, "applied_index": self._applied,
                "last_log_index": self.log.last_index, "last_log_term": self.log.last_term,
                "store_digest": self.sm.digest(), "voters": list(self.voters),
                "learners": list(self.learners), "config_index": self.log.last_conf_index,
                "config_committed": self.log.last_conf_index <= self._commit,
                # a leader's view of each member's log (match index): how far a newcomer caught up
                **({"match": {p: pr.match for p, pr in sorted(self._progress.items())}}
                   if self._role == LEADER else {})}

    # ---- membership (thesis §4) -------------------------------------------------------------------
    @property
    def membership(self) -> Membership | None:
        """The configuration in force: the latest in the log (committed or not), else the
        snapshot's, else the bootstrap one (None for a joining node that has none yet)."""
        return self._membership

    def _refresh_membership(self) -> None:
        """Use the latest configuration in the log (called after every log change). On a leader,
        progress is kept for every member but itself (learners receive the log too)."""
        m = self.log.last_conf or self.bootstrap
        if m is self._membership:
            return
        self._membership = m
        self.voters = m.voters if m is not None else ()
        self.learners = m.learners if m is not None else ()
        self.peers = tuple(p for p in (m.members if m is not None else ()) if p != self.id)
        self.quorum = quorum.majority(len(self.voters)) if self.voters else 1
        if self._role == LEADER:
            nxt = self.log.last_index + 1
            for p in self.peers:
                if p not in self._progress:
                    self._progress[p] = _Progress(nxt)
            for p in [p for p in self._progress if p not in self.peers]:
                del self._progress[p]

    def _counts_self(self) -> bool:
        return self.id in self.voters

    def _may_campaign(self) -> bool:
        """A voter campaigns; so does a node that the latest, still uncommitted, configuration in
        its log leaves out but the previous one lists as a voter: it may be needed until that
        change commits (thesis §4.2.2), and it does not count its own vote. Learners, joiners and
        nodes whose removal they know committed never campaign."""
        if self.id in self.voters:
            return True
        lg = self.log
        k = lg.last_conf_index
        if not lg.confs or k <= self._commit:
            return False
        prev = lg.conf_at(k - 1) or self.bootstrap
        return prev is not None and self.id in prev.voters

    def propose_conf_change(self, action: str, node: str) -> int:
        """Append a one-server configuration change (membership.ACTIONS); returns its log index.

        Refused (ConfChangeError, nothing appended) while an earlier change is uncommitted (one at
        a time), before the leader committed an entry of its own term (the single-server change
        fix: a leader of a new term may hold an uncommitted change of an old one), and when
        promoting a learner whose log has not reached the leader's commit index (§4.2.1).
        NotLeader / Busy as propose()."""
        if self._role != LEADER:
            raise NotLeader(self._leader_id)
        if self.log.last_index - self._commit >= self.config.max_uncommitted_entries:
            raise Busy("too many uncommitted entries")
        bugs = self._bugs
        if self.log.last_conf_index > self._commit and "conf_two_in_flight" not in bugs:
            raise ConfChangeError("a configuration change is still uncommitted")
        if not self._committed_own_term() and "conf_before_own_commit" not in bugs:
            raise ConfChangeError("the leader has not committed an entry of its term yet")
        new = membership.change(self._membership, action, node)
        if action == "promote":
            pr = self._progress.get(node)
            if pr is None or pr.match < self._commit:
                raise ConfChangeError(f"learner {node} has not caught up "
                                      f"(match {pr.match if pr else 0} < commit {self._commit})")
        e = self._append_local(new.command())
        self._broadcast_append()
        return e.index

    def _removed_after_commit(self) -> bool:
        """A leader the committed configuration no longer lists as a voter steps down (§4.2.2)."""
        return (self._role == LEADER and not self._counts_self() and self.log.last_conf_index <= self._commit
                and "removed_leader_keeps_leading" not in self._bugs)

    # ---- role changes (the only place roles and timers switch) ---------------------------------
    def _reset_timers(self) -> None:
        c = self.config
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self.rng.randrange(c.election_timeout_min_ticks, c.election_timeout_max_ticks)

    def _set_term(self, term: int) -> None:
        assert term >= self._term, "terms never decrease"
        if term > self._term:
            self._term = term
            self._vote = None
            self._events.append({"type": "term", "term": term})

    def _emit_role(self, old_role, old_term) -> None:
        if (old_role, old_term) != (self._role, self._term):
            self._events.append({"type": "role", "role": self._role, "term": self._term})

    def _drop_reads(self) -> None:
        for r in self._pending_reads:
            self._dropped_reads.append(r.ctx)
        self.counters["reads_dropped"] += len(self._pending_reads)
        self._pending_reads = []

    def become_follower(self, term: int, leader) -> None:
        old = (self._role, self._term)
        self._set_term(term)
        if self._role == LEADER:
            self._drop_reads()
            self._progress = {}
        self._role = FOLLOWER
        self._leader_id = leader
        self._reset_timers()
        self._emit_role(*old)

    def become_precandidate(self) -> None:
        assert self._role != LEADER, "a leader never becomes a pre-candidate"
        old = (self._role, self._term)
        self._role = PRECANDIDATE
        self._leader_id = None
        self._votes = {self.id: True}
        self._reset_timers()
        self._emit_role(*old)

    def become_candidate(self) -> None:
        assert self._role != LEADER, "a leader never becomes a candidate"
        old = (self._role, self._term)
        self._set_term(self._term + 1)
        self._vote = self.id
        self._events.append({"type": "vote", "term": self._term, "candidate": self.id})
        self._role = CANDIDATE
        self._leader_id = None
        self._votes = {self.id: True}
        self._reset_timers()
        self._emit_role(*old)

    def become_leader(self) -> None:
        assert self._role == CANDIDATE, f"only a candidate becomes leader (was {self._role})"
        old = (self._role, self._term)
        self._role = LEADER
        self._leader_id = self.id
        self._reset_timers()
        nxt = self.log.last_index + 1
        self._progress = {p: _Progress(nxt) for p in self.peers}
        self._emit_role(*old)
        self._append_local({"op": "noop"})  # §8: commit an entry of the new term at once
        self._broadcast_append()

    # ---- inputs ---------------------------------------------------------------------------------
    def tick(self) -> None:
        if self._role == LEADER:
            self._tick_leader()
        else:
            self._election_elapsed += 1
            if self._election_elapsed >= self._randomized_timeout:
                self._campaign()
            elif self._role != FOLLOWER and self._election_elapsed % self.config.heartbeat_ticks == 0:
                self._resend_vote_requests()

    def _voter_peers(self):
        if "learner_votes" in self._bugs:
            return list(self.peers)      # planted: learners are asked, and counted
        return [p for p in self.voters if p != self.id]

    def _resend_vote_requests(self) -> None:
        """Figure 2: servers retry RPCs that got no answer (lost requests or replies)."""
        pre = self._role == PRECANDIDATE
        term = self._term + 1 if pre else self._term
        for p in self._voter_peers():
            if p not in self._votes:
                self._send(VoteRequest(term, self.id, p, pre, self.log.last_index, self.log.last_term))

    def ticks_until_action(self) -> int:
        """How many tick() calls from now until the next one that can do anything (>= 1).

        Drivers may skip idle ticks (the simulator does): calling tick() fewer times is wrong, but
        a driver may batch the idle ones as long as each tick still happens before any input that
        arrives after it."""
        if self._role == LEADER:
            return max(1, min(self.config.heartbeat_ticks - self._heartbeat_elapsed,
                              self.config.election_timeout_min_ticks - self._election_elapsed))
        left = self._randomized_timeout - self._election_elapsed
        if self._role != FOLLOWER:
            hb = self.config.heartbeat_ticks
            left = min(left, hb - self._election_elapsed % hb)
        return max(1, left)

    def _tick_leader(self) -> None:
        c = self.config
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= c.election_timeout_min_ticks:
            self._election_elapsed = 0
            if c.check_quorum:
                counts_self = self._counts_self() or "removed_leader_keeps_leading" in self._bugs
                active = int(counts_self) + sum(1 for p in self.voters
                                                if p != self.id and self._progress[p].active)
                if active < self.quorum:
                    self.become_follower(self._term, None)
                    return
                for p in self.peers:
                    self._progress[p].active = False
        if self._heartbeat_elapsed >= c.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._hb_seq += 1
            for p in self.peers:
                pr = self._progress[p]
                if pr.state == SNAPSHOT:
                    pr.snap_elapsed += c.heartbeat_ticks
                    if pr.snap_elapsed >= c.snapshot_resend_ticks:
                        self._send_snapshot(p)
                    else:
                        self._send_heartbeat(p)
                else:
                    if pr.state == REPLICATE:
                        pr.next = pr.match + 1  # retransmit whatever may have been lost
                        pr.inflight = 0
                    pr.probe_sent = False
                    self._send_append(p)

    def _campaign(self) -> None:
        if not self._may_campaign():
            # a learner, a removed node or a joiner without a configuration never campaigns; it
            # forgets the leader it no longer hears from (so it does not honour its lease)
            self._leader_id = None
            self._reset_timers()
            return
        if self.voters == (self.id,):
            self.become_candidate()
            self.become_leader()
            return
        if self.config.pre_vote:
            self.become_precandidate()
            term, pre = self._term + 1, True
        else:
            self.become_candidate()
            term, pre = self._term, False
        for p in self._voter_peers():
            self._send(VoteRequest(term, self.id, p, pre, self.log.last_index, self.log.last_term))

    def step(self, m: Message) -> None:
        """Handle one message from a peer. Nonsense from a peer is counted and dropped."""
        # any sender is heard, member or not (thesis §4.1: a server does not consult its
        # configuration to process a message; a removed server is kept from disrupting by PreVote
        # and the leader lease, and its votes and acks are not counted)
        if m.dst != self.id or m.src == self.id:
            self.counters["dropped_messages"] += 1
            return
        t = type(m)
        if m.term > self._term:
            if t is VoteRequest:
                c = self.config
                if c.check_quorum and self._leader_id is not None and \
                        self._election_elapsed < c.election_timeout_min_ticks:
                    return  # leader lease (thesis §6.2, §9.6): ignore a disruptive candidate
            if (t is VoteRequest and m.pre_vote) or (t is VoteResponse and m.pre_vote and m.granted):
                pass  # pre-votes never change terms
            elif t is AppendEntries or t is InstallSnapshot:
                self.become_follower(m.term, m.src)
            else:
                self.become_follower(m.term, None)
        elif m.term < self._term:
            if t is AppendEntries or t is InstallSnapshot:
                # tell a stale leader about the newer term so it steps down (needed with PreVote)
                self._send(AppendResponse(self._term, self.id, m.src, False, 0, 0, 0, 0))
            elif t is VoteRequest and m.pre_vote:
                self._send(VoteResponse(self._term, self.id, m.src, True, False))
            return
        if t is AppendEntries:
            self._on_append(m)
        elif t is AppendResponse:
            self._on_append_response(m)
        elif t is VoteRequest:
            self._on_vote_request(m)
        elif t is VoteResponse:
            self._on_vote_response(m)
        elif t is InstallSnapshot:
            self._on_snapshot(m)

    # ---- elections ------------------------------------------------------------------------------
    def _log_ok(self, m: VoteRequest) -> bool:
        if "vote_no_log_check" in self._bugs:
            return True
        # §5.4.1: the candidate's log is at least as up to date as ours
        return (m.last_log_term, m.last_log_index) >= (self.log.last_term, self.log.last_index)

    def _on_vote_request(self, m: VoteRequest) -> None:
        can_vote = (self._vote == m.src or (self._vote is None and self._leader_id is None)
                    or (m.pre_vote and m.term > self._term))
        if can_vote and self._log_ok(m):
            if m.pre_vote:
                self._send(VoteResponse(m.term, self.id, m.src, True, True))
            else:
                self._election_elapsed = 0
                if self._vote != m.src:
                    self._vote = m.src
                    self._events.append({"type": "vote", "term": self._term, "candidate": m.src})
                self._send(VoteResponse(self._term, self.id, m.src, False, True))
        else:
            self._send(VoteResponse(self._term, self.id, m.src, m.pre_vote, False))

    def _on_vote_response(self, m: VoteResponse) -> None:
        if m.pre_vote:
            if self._role != PRECANDIDATE or (m.granted and m.term != self._term + 1):
                return
        elif self._role != CANDIDATE:
            return
        if m.src not in self.voters and not ("learner_votes" in self._bugs and m.src in self.learners):
            return      # only the voters of the configuration in force count
        self._votes[m.src] = m.granted
        # its own vote counts only if it is a voter of the configuration in force (§4.2.2)
        counted = [v for p, v in self._votes.items() if p != self.id or self._counts_self()]
        granted = sum(1 for v in counted if v)
        res = quorum.vote_result(len(self.voters), granted, len(counted) - granted)
        if res == quorum.WON:
            if self._role == PRECANDIDATE:
                self.become_candidate()
                for p in self._voter_peers():
                    self._send(VoteRequest(self._term, self.id, p, False, self.log.last_index, self.log.last_term))
            else:
                self.become_leader()
        elif res == quorum.LOST:
            self.become_follower(self._term, None)

    # ---- replication: follower side ----------------------------------------------------------
    def _accept_leader(self, m: Message) -> bool:
        if self._role == LEADER:
            self.counters["conflicting_leader"] += 1  # two leaders in one term: never expected
            return False
        if self._role != FOLLOWER:
            self.become_follower(self._term, m.src)
        self._leader_id = m.src
        self._election_elapsed = 0
        return True

    def _on_append(self, m: AppendEntries) -> None:
        if not self._accept_leader(m):
            return
        if m.prev_log_index < self._commit:
            # already committed here (possibly compacted): skip the known prefix
            skip = self._commit - m.prev_log_index
            if skip >= len(m.entries):
                self._send(AppendResponse(self._term, self.id, m.src, True, self._commit, 0, 0, m.seq))
                return
            entries = m.entries[skip:]
            prev_index, prev_term = self._commit, self.log.term(self._commit)
        else:
            entries, prev_index, prev_term = m.entries, m.prev_log_index, m.prev_log_term
            if self.log.term(prev_index) != prev_term:
                self._reject_append(m, prev_index)
                return
        log = self.log
        for e in entries:
            if e.index <= log.last_index:
                if log.term(e.index) == e.term:
                    continue
                assert e.index > self._commit, "a committed entry is never truncated"
                self._events.append({"type": "truncate", "from_index": e.index})
                log.truncate_from(e.index)
                self._stable_next = min(self._stable_next, e.index)
            self._append_entry(e.term, e.command)
        self._refresh_membership()
        last_new = prev_index + len(entries)
        new_commit = min(m.leader_commit, last_new)
        if new_commit > self._commit:
            self._set_commit(new_commit)
        self._send(AppendResponse(self._term, self.id, m.src, True, last_new, 0, 0, m.seq))

    def _reject_append(self, m: AppendEntries, prev_index: int) -> None:
        if prev_index > self.log.last_index:
            hint_index, hint_term = self.log.last_index + 1, 0
        else:
            hint_term = self.log.term(prev_index)
            hint_index = self.log.first_index_of_term(prev_index)
        self._send(AppendResponse(self._term, self.id, m.src, False, 0, hint_index, hint_term, m.seq))

    def _on_snapshot(self, m: InstallSnapshot) -> None:
        if not self._accept_leader(m):
            return
        s = m.snapshot
        if s.index <= self._commit:
            self._send(AppendResponse(self._term, self.id, m.src, True, self._commit, 0, 0, m.seq))
            return
        if self.log.term(s.index) == s.term:
            self._set_commit(s.index)  # §7: our log already has it; keep what follows
        else:
            if self.log.last_index > s.index:
                self._events.append({"type": "truncate", "from_index": s.index + 1})
            self.log.reset(s)
            self._refresh_membership()
            self.sm.restore(s.data)
            self._snapshot = s
            self._pending_snapshot = s
            self._stable_next = s.index + 1
            self._applied = s.index
            self._commit = s.index
            self._events.append({"type": "snapshot", "index": s.index, "term": s.term, "hash": s.hash,
                                 "store_digest": self.sm.digest()})
            self._events.append({"type": "commit", "index": s.index})
        self._send(AppendResponse(self._term, self.id, m.src, True, s.index, 0, 0, m.seq))

    # ---- replication: leader side --------------------------------------------------------------
    def _append_entry(self, term: int, command: dict) -> Entry:
        e = self.log.append(term, command)
        self._events.append({"type": "append", "index": e.index, "term": e.term, "hash": e.hash})
        return e

    def _append_local(self, command: dict) -> Entry:
        e = self._append_entry(self._term, command)
        if membership.is_config(command):
            self._refresh_membership()     # in force as soon as it is in the log (§4.1)
        if self.voters == (self.id,) or not self.peers:
            self._maybe_commit()
        return e

    def _send(self, m: Message) -> None:
        self._msgs.append(m)

    def _send_heartbeat(self, p: str) -> None:
        self._send(AppendEntries(self._term, self.id, p, 0, 0, (), 0, self._hb_seq))

    def _send_snapshot(self, p: str) -> None:
        pr = self._progress[p]
        pr.state = SNAPSHOT
        pr.snap_elapsed = 0
        self._send(InstallSnapshot(self._term, self.id, p, self._snapshot, self._hb_seq))

    def _send_append(self, p: str) -> None:
        pr = self._progress[p]
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            self._send_snapshot(p)
            return
        hi = min(self.log.last_index, prev + self.config.max_entries_per_message)
        entries = tuple(self.log.slice(pr.next, hi + 1)) if hi > prev else ()
        self._send(AppendEntries(self._term, self.id, p, prev, prev_term, entries, self._commit, self._hb_seq))
        if pr.state == REPLICATE:
            pr.next = hi + 1
            if entries:
                pr.inflight += 1
        else:
            pr.probe_sent = True

    def _broadcast_append(self) -> None:
        for p in self.peers:
            pr = self._progress[p]
            if pr.state == REPLICATE and pr.next <= self.log.last_index:
                if pr.inflight < self.config.max_inflight_messages:
                    self._send_append(p)
                else:
                    self.counters["inflight_bound_hits"] += 1
            elif pr.state == PROBE and not pr.probe_sent:
                self._send_append(p)

    def _on_append_response(self, m: AppendResponse) -> None:
        if self._role != LEADER:
            return
        pr = self._progress.get(m.src)
        if pr is None:
            return      # not a member of the configuration in force (removed, or never added)
        pr.active = True
        if m.seq > pr.acked_seq:
            pr.acked_seq = m.seq
        if m.success:
            if pr.inflight:
                pr.inflight -= 1
            if m.match_index > pr.match:
                pr.match = m.match_index
                self._maybe_commit()
                if self._role != LEADER:
                    return
            if pr.next <= pr.match:
                pr.next = pr.match + 1
            if pr.state == SNAPSHOT and self.log.term(pr.match) is None:
                pass  # still behind our snapshot: wait for the InstallSnapshot answer
            elif pr.state != REPLICATE:
                pr.state = REPLICATE
                pr.probe_sent = False
            if pr.state == REPLICATE and pr.next <= self.log.last_index and \
                    pr.inflight < self.config.max_inflight_messages:
                self._send_append(m.src)
        else:
            if m.hint_index == 0:
                pass  # a stale-term answer (handled by the term check) carries no hint
            else:
                nxt = m.hint_index
                if m.hint_term > 0:
                    last = self.log.last_index_of_term(m.hint_term)
                    if last is not None:
                        nxt = last + 1
                pr.next = max(pr.match + 1, min(nxt, self.log.last_index + 1))
                pr.state = PROBE
                pr.probe_sent = False
                pr.inflight = 0
                self._send_append(m.src)
        self._release_reads()

    def _maybe_commit(self) -> None:
        # the voters of the configuration in force; a leader that is removing itself manages the
        # cluster without counting itself (§4.2.2)
        matches = [self._progress[p].match for p in self.voters if p != self.id]
        if self._counts_self() or "removed_leader_keeps_leading" in self._bugs:
            matches.append(self.log.last_index)
        if not matches:
            return
        n = quorum.committed_index(matches)
        if n > self._commit:
            # §5.4.2: only an entry of the current term is committed by counting replicas
            if self.log.term(n) == self._term or "commit_old_term" in self._bugs:
                self._set_commit(n)
                if self._removed_after_commit():
                    self.become_follower(self._term, None)

    def _set_commit(self, index: int) -> None:
        assert index >= self._commit
        self._commit = index
        self._events.append({"type": "commit", "index": index})
        if self._role == LEADER:
            self._release_reads()

    # ---- client requests --------------------------------------------------------------------
    def propose(self, command: dict, send: bool = True) -> int:
        """Append a client command; returns its log index (its term is self.term right now).
        Configuration entries go through propose_conf_change (MessageError here). With send=False
        the entry is not sent yet: the driver batches proposals and calls send_appends() once."""
        if self._role != LEADER:
            raise NotLeader(self._leader_id)
        if self.log.last_index - self._commit >= self.config.max_uncommitted_entries:
            raise Busy("too many uncommitted entries")
        Entry(1, 1, command)  # validates the command shape (raises MessageError)
        if membership.is_config(command):
            raise MessageError("configuration entries are proposed with propose_conf_change()")
        e = self._append_local(command)
        if send:
            self._broadcast_append()
        return e.index

    def send_appends(self) -> None:
        """Send the entries proposed with send=False (many entries in one AppendEntries per peer)."""
        if self._role == LEADER:
            self._broadcast_append()

    def _committed_own_term(self) -> bool:
        return self.log.term(self._commit) == self._term

    def read_index(self, ctx) -> None:
        """Start a linearizable read (ReadIndex, thesis §6.4). The answer comes as a ReadState in a
        later Ready (or in dropped_reads if leadership is lost first)."""
        if self._role != LEADER:
            raise NotLeader(self._leader_id)
        if "stale_read" in self._bugs:
            self._read_states.append(ReadState(ctx, self._commit))
            return
        if len(self._pending_reads) >= self.config.max_pending_reads:
            raise Busy("too many pending reads")
        if self.voters == (self.id,):
            if self._committed_own_term():
                self._read_states.append(ReadState(ctx, self._commit))
            else:
                self._pending_reads.append(_PendingRead(ctx, None, 0))
            return
        self._hb_seq += 1
        idx = self._commit if self._committed_own_term() else None
        self._pending_reads.append(_PendingRead(ctx, idx, self._hb_seq))
        for p in self.peers:
            if self._progress[p].state == SNAPSHOT:
                self._send_heartbeat(p)
            else:
                self._send(AppendEntries(self._term, self.id, p, 0, 0, (), 0, self._hb_seq))

    def _release_reads(self) -> None:
        if not self._pending_reads:
            return
        own = self._committed_own_term()
        keep = []
        for r in self._pending_reads:
            if r.index is None and own:
                r.index = self._commit
            acks = int(self._counts_self()) + sum(1 for p in self.voters
                                                  if p != self.id and self._progress[p].acked_seq >= r.seq)
            if r.index is not None and acks >= self.quorum and not keep:
                self._read_states.append(ReadState(r.ctx, r.index))
            else:
                keep.append(r)
        self._pending_reads = keep

    # ---- output ---------------------------------------------------------------------------------
    def apply_durable(self) -> tuple:
        """Apply the committed entries this node already holds durably and return their
        AppliedResults, while a Ready is outstanding (its fsync under way; the driver's group
        commit) or just before asking for the next Ready (whose fsync would otherwise delay
        them). Durable here means handed out in a Ready the driver has advanced: below
        `_stable_next`, so never an entry of the outstanding Ready, of a pending snapshot's tail,
        or one appended since. An entry that is committed (on a quorum, §5.3) and durable on this
        node may be acknowledged at once; waiting for the next fsync only delays the answer.
        The `apply` events (and any the state machine adds) join the events of the next Ready, in
        order after the `commit` event that allows them, so the journal still follows the fsync
        of the commit index (contracts section 4); only the results leave early. No snapshot is
        taken here: the next ready() takes it (a snapshot moves `_stable_next`, which the
        outstanding Ready's advance() relies on)."""
        hi = min(self._commit, self._stable_next - 1)
        if hi <= self._applied:
            return ()
        return self._apply_committed(hi, snapshot=False)[1]

    def _apply_committed(self, hi: int | None = None, snapshot: bool = True):
        if hi is None:
            hi = self._commit
            if "apply_past_commit" in self._bugs and self._role == FOLLOWER:
                hi = self.log.last_index
        if hi <= self._applied:
            if snapshot:
                self._maybe_snapshot()
            return (), ()
        entries = self.log.slice(self._applied + 1, hi + 1)
        results = []
        sm, ev = self.sm, self._events
        for e in entries:
            result, extra = sm.apply(e.index, e.command)
            self._applied = e.index
            ev.append({"type": "apply", "index": e.index, "term": e.term, "hash": e.hash,
                       "store_digest": sm.digest()})
            ev.extend(extra)
            results.append(AppliedResult(e.index, e.term, e.command, result))
        if snapshot:
            self._maybe_snapshot()
        return tuple(entries), tuple(results)

    def _maybe_snapshot(self) -> None:
        # (also when the entries were applied earlier, by apply_durable)
        if self._applied - self.log.snap_index >= self.config.snapshot_threshold and self._applied <= self._commit:
            self._take_snapshot()

    def _take_snapshot(self) -> None:
        i = self._applied
        conf = self.log.conf_at(i)
        s = Snapshot(i, self.log.term(i), self.log.hash(i), self.sm.snapshot(),
                     conf.to_dict() if conf is not None else None)
        self.log.compact(i)
        self._snapshot = s
        self._pending_snapshot = s
        self._stable_next = i + 1   # storage replaces its log with the snapshot: re-send the tail
        self._events.append({"type": "snapshot", "index": s.index, "term": s.term, "hash": s.hash,
                             "store_digest": self.sm.digest()})

    def _hard_state(self) -> HardState:
        vote = self._vote
        if "vote_not_persisted" in self._bugs:
            p = self._persisted_hs
            vote = p.vote if p.term == self._term else None
        return HardState(self._term, vote, self._commit)

    def has_ready(self) -> bool:
        lg = self.log      # (lg.snap_index + len(lg.entries) is lg.last_index without the property call)
        if (self._msgs or self._events or self._read_states or self._dropped_reads
                or self._commit > self._applied or self._stable_next <= lg.snap_index + len(lg.entries)
                or self._pending_snapshot is not None):
            return True
        if self._bugs or type(self)._hard_state is not RaftNode._hard_state:
            return (self._hard_state() != self._persisted_hs
                    or ("apply_past_commit" in self._bugs and self.log.last_index > self._applied))
        # the plain hard state, compared field by field (drivers ask once per step: no HardState built)
        p = self._persisted_hs
        return self._term != p.term or self._vote != p.vote or self._commit != p.commit

    def ready(self) -> Ready | None:
        """Collect the effects since the last Ready, or None when there are none."""
        if self._ready_out:
            raise RuntimeError("advance() the previous Ready first")
        lg, p = self.log, self._persisted_hs
        if not (self._msgs or self._events or self._read_states or self._dropped_reads
                or self._commit > self._applied or self._stable_next <= lg.snap_index + len(lg.entries)
                or self._pending_snapshot is not None or self._term != p.term
                or self._vote != p.vote or self._commit != p.commit):
            return None  # fast path: nothing happened (most ticks)
        committed, results = self._apply_committed()
        hs = self._hard_state()
        lo = max(self._stable_next, self.log.snap_index + 1)
        entries = tuple(self.log.slice(lo, self.log.last_index + 1)) if lo <= self.log.last_index else ()
        rd = Ready(hs if hs != self._persisted_hs else None, entries, self._pending_snapshot,
                   tuple(self._msgs), committed, results, tuple(self._read_states),
                   tuple(self._dropped_reads), tuple(self._events))
        if not (rd.hard_state or entries or rd.snapshot or rd.messages or committed or rd.read_states
                or rd.dropped_reads or rd.events):
            return None
        self._msgs, self._events, self._read_states, self._dropped_reads = [], [], [], []
        self._ready_out = True
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver has persisted, sent and applied `rd` (see Ready)."""
        if not self._ready_out:
            raise RuntimeError("advance() without an outstanding Ready")
        self._ready_out = False
        if rd.hard_state is not None:
            self._persisted_hs = rd.hard_state
        if rd.entries:
            nxt = rd.entries[-1].index + 1
            if self._stable_next < nxt and self.log.term(rd.entries[-1].index) == rd.entries[-1].term:
                self._stable_next = nxt
        if rd.snapshot is not None and self._pending_snapshot is rd.snapshot:
            self._pending_snapshot = None
