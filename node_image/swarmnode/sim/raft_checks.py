"""Consequence checks for the Raft simulator: properties read from the nodes' actual state, the
messages they send and the state machine they apply to -- never from the core's own journal events,
so a bug that also corrupts (or forgets) its events is still caught by what it does.

Owns: ConsequenceChecker, SimStore (a Store that reports every apply/restore to the checker) and
PathCounter (how often the simulator drove the protocol's hard paths). Used by raft_sim only.
Must not import asyncio, socket, time, module-level random or `chaos`.

Checked (kind names as reported):
  committed-entry-lost  an entry at an index that was ever committed anywhere is removed or
                        replaced on a node that held it (in memory, after a restart, after a
                        snapshot install)
  committed-divergence  two nodes committed different entries at one index (each node's committed
                        prefix must agree with every other's)
  term-regressed        a node's term went down (in memory, or across a restart below a term it
                        had already sent)
  vote-forgotten        a node that voted (granted, or for itself) in term T holds another vote,
                        or none, while still in term T -- in memory or after a restart
  double-vote           a node granted its vote in one term to two candidates (from its messages)
  log-regressed         after a restart, a node's log is not the one it had made durable and
                        acted on (acknowledged, voted with) before the crash
  applied-divergence    a node's state machine reached, at some index, a state (digest) other
                        than the one history has there; or skipped an index
  stale-read-state      a read was served from a state older than a write acknowledged before the
                        read began, or older than an index committed anywhere before the read
                        began (a client may have been told of that commit: linearizability), or
                        from a state that is not on the one history
  stale-term-sent       a node sent a message with a term below the term it already held before
                        the step that produced it (every message carries the sender's current term,
                        a pre-vote its term + 1: a lower one is a lie about the sender's state)
  commit-without-majority  when an index is first committed anywhere, fewer than a majority of
                        nodes hold that entry (in memory or, for a crashed node, durably) -- the
                        definition of committed (§5.3), whatever counting the core did
  two-leaders           two nodes are leaders of the same term (§5.2), from node state
  leader-missing-committed  a node becomes leader without every entry committed so far (§5.4)
  commit-beyond-log     a node's commit index is past its last log index
  applied-beyond-commit a node's state machine holds an index past the node's commit index
  applied-uncommitted   after every step, the last entry a node's state machine applied (index and
                        term: its chain hash covers the prefix) is an entry a leader committed at
                        that index -- not past every index any leader committed, not another one
  committed-prefix-differs  a node's commit index is past every index a leader committed, or its log
                        holds, at its commit index (so, by the chain, anywhere below), an entry other
                        than the one a leader committed there
  log-chain-broken      a node's first entry after its snapshot base does not chain to that base
                        (a tail kept across a snapshot it does not follow: a log no leader sent)
Membership (configurations in the log, swarmnode/raft/membership.py). The configuration in force
at a node is the latest in its log (RaftLog.last_conf), else its snapshot's, else its bootstrap:
  commit-without-majority  (above) counts only the voters of the committing node's configuration
  election-without-majority a node becomes leader of term T while fewer than a majority of the
                        voters of its configuration granted it their vote in T (from the
                        VoteResponses they sent, and its own vote): learners do not vote
  quorum-no-overlap     an index is first committed while held by too few voters of the
                        configuration committed before it to intersect every majority of that one
                        (with one-server changes any majority of the new configuration does; two
                        changes in flight at once break it)
  removed-node-counted  a commit or an election falls short of a majority of the configuration in
                        force, and is made up only by nodes outside it (removed, or never added)
  removed-leader-leads  a node leads while its configuration, committed in its own log, does not
                        list it as a voter (it steps down once its removal commits, thesis §4.2.2)
  no-quorum-after-heal  (raft_sim) after the final heal nothing commits within the heal window
                        although a majority of the latest configuration's voters is up
Two membership rules are also checked directly (rule_checks, like the event checker's commit-rule),
from the leader's log and commit index right after the step that appended a configuration entry of
its term: `conf-change-rule` -- the previous configuration entry was still uncommitted (two changes
in flight), or the leader had not committed an entry of its term yet (the single-server change fix).
"Committed by a leader" is read from leaders' own commit index, recorded when a leader's Ready is
durable (before its messages leave) and after each of its steps; followers only learn commit indexes
from leaders, so a follower's commit or apply ahead of every leader is a follower's own invention.
All checks cost O(1) amortized per step (chain hashes make one comparison cover a prefix), and
after_step judges each state once: a node whose state (and per-node records) did not change since
an after_step that reported nothing is not judged again (ConsequenceChecker.quiet_key says what
that state is; `incremental = False` judges every step afresh, the reference the tests compare to).
"""
from __future__ import annotations

from swarmnode.raft import (AppendEntries, AppendResponse, InstallSnapshot, Store, VoteRequest,
                            VoteResponse, chain_hash)


class SimStore(Store):
    """The state machine the simulator hands each node: reports each apply and restore (with the
    digest reached) so that applied history is judged from the state machine itself."""

    def __init__(self, observer=None):
        super().__init__()
        self.observer = observer   # callable(kind, index, digest)
        self._just_applied = None  # (digest, its key): the digest computed for the observer

    def _key(self):
        return (self.applied_index, id(self.kv), id(self.sessions), self._kv_sum.acc, self._sessions_sum.acc,
                len(self.kv), len(self.sessions))

    def apply(self, index, command):
        out = super().apply(index, command)
        if self.observer is not None:
            d = super().digest()
            self._just_applied = (d, self._key())
            self.observer("apply", index, d)
        return out

    def digest(self):
        # the core journals the digest right after each apply: the first digest() after apply()
        # returns the one computed for the observer (if the store still has the same key)
        memo = self._just_applied
        if memo is not None:
            self._just_applied = None
            if memo[1] == self._key():
                return memo[0]
        return super().digest()

    def restore(self, data):
        super().restore(data)
        self._just_applied = None
        if self.observer is not None:
            self.observer("restore", self.applied_index, self.digest())


class ConsequenceChecker:
    """See the module docstring. `report(kind, node, detail)` records a violation."""

    incremental = True     # after_step skips a state it judged before (False: judge every step afresh)

    def __init__(self, ids, report):
        self.ids = list(ids)
        self._sink = report
        self.reports = 0                           # findings reported so far (every kind)
        # node -> what after_step read of it (and of its per-node records) the last time it judged
        # it and reported nothing: after_step run again on that same state is skipped (see quiet_key)
        self.quiet: dict = {}
        self.committed: dict = {}          # index -> chain hash, first seen committed anywhere
        self.max_committed = 0
        self.seen_commit = {i: 0 for i in ids}     # highest commit index recorded per node
        self.held = {i: 0 for i in ids}            # highest committed index the node has held
        self.max_term = {i: 0 for i in ids}        # in-memory term, last seen
        self.sent_term = {i: 0 for i in ids}       # highest term the node made visible
        self.voted: dict = {}                      # (node, term) -> candidate it made visible
        self.durable = {i: None for i in ids}      # (last_index, hash, snap_index, snap_hash)
        self.history: dict = {}                    # index -> state digest (the one history)
        self.sm_index = {i: 0 for i in ids}        # last index the node's state machine reached
        self.quorum = len(self.ids) // 2 + 1
        self.leaders: dict = {}                    # term -> node seen leading it
        self.was_leader = {i: (None, 0) for i in ids}   # (role, term) at the last check
        self.holds = None   # set by the simulator: holds(node, index, hash) -> bool (durable for crashed)
        self.read_commit: dict = {}                # read ctx -> highest index committed anywhere at its start
        self.leader_committed: dict = {}           # index -> chain hash, as a leader committed it
        self.leader_max = 0                        # highest index any leader committed
        self.applied_checked = {i: 0 for i in ids}     # last applied index judged per node
        self.chain_checked = {i: None for i in ids}    # (snap index, snap hash, first hash) judged
        self.reported: set = set()                 # (kind, node, index): report each finding once
        self.rule_checks = True                    # conf-change-rule (set by the simulator)
        self.conf_seen: dict = {}                  # node -> index of its latest configuration entry

    def add_node(self, i) -> None:
        """A node that joined during the run (membership)."""
        self.ids.append(i)
        for d, v in ((self.seen_commit, 0), (self.held, 0), (self.max_term, 0), (self.sent_term, 0),
                     (self.durable, None), (self.sm_index, 0), (self.was_leader, (None, 0)),
                     (self.applied_checked, 0), (self.chain_checked, None)):
            d[i] = v

    @staticmethod
    def _conf(node):
        """The configuration in force at the node: the latest in its log, else its bootstrap."""
        c = node.log.last_conf
        return c if c is not None else getattr(node, "bootstrap", None)

    def _short_quorum(self, kind, i, what, backers, conf) -> bool:
        """Report when `backers` (nodes that held the entry / granted the vote) include fewer than
        a majority of conf's voters; True when reported."""
        need = len(conf.voters) // 2 + 1
        inside = [j for j in backers if j in conf.voters]
        if len(inside) >= need:
            return False
        outside = [j for j in backers if j not in conf.members]
        if outside and len(inside) + len(outside) >= need:
            kind = "removed-node-counted"
        self.report(kind, i, f"{what}: {len(inside)} of the {len(conf.voters)} voters {list(conf.voters)} of "
                             f"the configuration in force ({sorted(inside)}); outside it: {sorted(outside)}")
        return True

    # ---- state machine (SimStore observer) ---------------------------------------------------
    def observer(self, i):
        def obs(kind, index, digest):
            if kind == "apply" and index != self.sm_index[i] + 1:
                self.report("applied-divergence", i, f"applied index {index} after {self.sm_index[i]}")
            self.sm_index[i] = index
            want = self.history.get(index)
            if want is None:
                self.history[index] = digest
            elif want != digest:
                self.report("applied-divergence", i, f"state at index {index} is {digest}, history has {want}")
        return obs

    def read_began(self, ctx) -> None:
        self.read_commit[ctx] = self.max_committed

    def on_read(self, i, node, floor, ctx=None) -> None:
        sm = node.sm
        a, d = sm.applied_index, sm.digest()
        committed = self.read_commit.pop(ctx, 0)
        if a < floor:
            self.report("stale-read-state", i, f"read served from state at index {a}; a write at {floor} "
                                               f"was acknowledged before the read began")
        elif a < committed:
            self.report("stale-read-state", i, f"read served from state at index {a}; index {committed} "
                                               f"was committed before the read began")
        elif a and self.history.get(a) not in (None, d):
            self.report("stale-read-state", i, f"read served from state {d} at {a}, not on the history")

    # ---- messages that leave (after persist + sync) ------------------------------------------
    def on_durable(self, i, node, messages, durable=None, low=None) -> None:
        """A Ready was persisted and synced and its messages are about to leave. A driver whose
        fsync ran while the node kept stepping (the simulator's fsync_ms) passes what the node's
        durable log (`durable`, as stored in self.durable) and its term before the step (`low`)
        were when the Ready was taken."""
        if node.role == "leader" or self.was_leader[i] == ("leader", node.term):
            # (a leader that stepped down in this step -- its removal committed, §4.2.2 -- still
            # committed as leader: no other node leads its term)
            self._record_leader_commit(node)
        if durable is None:
            lg = node.log
            si, ents = lg.snap_index, lg.entries    # (lg.last_index and lg.hash(it), inlined)
            durable = (si + len(ents), ents[-1].hash if ents else lg.snap_hash, si, lg.snap_hash)
        self.durable[i] = durable
        if low is None:
            low = self.max_term[i]     # the node's term before the step that produced these messages
        sent = self.sent_term
        for m in messages:
            t = type(m)
            mt = m.term
            if mt < low:
                self.report("stale-term-sent", i, f"{t.__name__} to {m.dst} carries term {m.term}; "
                                                  f"the sender already held term {low}")
            if t is AppendEntries or t is AppendResponse:
                if mt > sent[i]:
                    sent[i] = mt
                continue
            pre = (t is VoteRequest or t is VoteResponse) and m.pre_vote
            if mt > sent[i] and not pre:   # a pre-vote carries term + 1 (§9.6)
                sent[i] = mt
            if t is VoteResponse and m.granted and not m.pre_vote:
                self._record_vote(i, m.term, m.dst)
            elif t is VoteRequest and not m.pre_vote:
                self._record_vote(i, m.term, i)

    def _record_vote(self, i, term, cand) -> None:
        prev = self.voted.get((i, term))
        if prev is None:
            self.voted[(i, term)] = cand
        elif prev != cand:
            self.report("double-vote", i, f"term {term}: voted {prev}, then {cand}")

    def report(self, kind, node, detail) -> None:
        self.reports += 1
        self._sink(kind, node, detail)

    # ---- after every step of node i ----------------------------------------------------------
    def quiet_key(self, i, node, t) -> tuple:
        """Everything after_step reads that can change between two of its calls on node i: the
        node (a restart makes a new one), its term, vote, role, commit and applied index, its log
        (snapshot base and hash, length, last entry: the log only changes by appending,
        truncating a suffix, compacting or resetting, each of which moves one of these), its
        latest configuration index, and the per-node records other code writes: held[i] (raised
        by any node's commit) and the vote node i made visible in term t (on_durable). The rest
        is written only by after_step itself or fixed once written (committed[idx],
        leader_committed[idx], leaders[t], the `_once` keys, leader_max and the committed indexes,
        which only grow past what a repeat would look at)."""
        log = node.log
        ents = log.entries
        return (node, t, node.vote, node.role, node.commit_index, node.sm.applied_index, log.snap_index,
                log.snap_hash, len(ents), ents[-1] if ents else None, log.last_conf_index, self.held[i],
                self.voted.get((i, t)))

    def after_step(self, i, node) -> bool:
        """The checks after a step of node i. Incremental: when node i and its records are what
        they were at the previous call, which reported nothing, and that call left nothing a later
        commit elsewhere could change (settled_ok), the same checks would judge the same values
        again and report nothing: skipped. Each state is judged once. Returns whether node i is
        now in such a state (nothing reported, settled_ok holds)."""
        t = node.term
        # quiet_key(i, node, t), inline (after every step of every node)
        log = node.log
        ents, confs = log.entries, log.confs
        key = (node, t, node.vote, node.role, node.commit_index, node.sm.applied_index, log.snap_index,
               log.snap_hash, len(ents), ents[-1] if ents else None,
               confs[-1][0] if confs else log.snap_index if log.snap_conf is not None else 0,
               self.held[i], self.voted.get((i, t)))
        quiet = self.quiet
        if quiet.get(i) == key and self.incremental:
            return True
        n = self.reports
        self._after_step(i, node, t)
        if self.reports == n and self.settled_ok(i, node):
            quiet[i] = key[:11] + (self.held[i], key[12])
            return True
        quiet.pop(i, None)
        return False

    def _after_step(self, i, node, t) -> None:
        # Called after every step of every node: each check's common outcome (nothing to report)
        # is decided inline from locals; a possible finding goes to the check's own method, which
        # decides again and reports (same order of checks, same messages).
        mt = self.max_term
        if t < mt[i]:
            self.report("term-regressed", i, f"term {t} after {mt[i]}")
        mt[i] = t
        want = self.voted.get((i, t))
        if want is not None and node.vote != want:
            self._check_vote(i, node, "")
        # (log.hash(x) and log.last_index inlined: x == snap_index -> snap_hash; entries[x - snap_index - 1])
        log = node.log
        si, ents = log.snap_index, log.entries
        h = self.held[i]
        if h:
            if h < si:
                self._check_held(i, node, "")
            else:
                pos = h - si - 1
                got = log.snap_hash if pos < 0 else ents[pos].hash if pos < len(ents) else None
                if got != self.committed[h]:
                    self._check_held(i, node, "")
        c = node.commit_index
        if c > si + len(ents):
            self.report("commit-beyond-log", i, f"commit index {c} > last log index {node.log.last_index}")
        a = node.sm.applied_index
        if a > c:
            self.report("applied-beyond-commit", i, f"state machine at index {node.sm.applied_index} > commit {c}")
        if c > self.seen_commit[i]:
            self._record_commits(i, node, c)
        role = node.role
        was = self.was_leader[i]
        if (role == "leader" or (was[0] == "leader" and was[1] == t)) and c > self.leader_max:
            self._record_leader_commit(node)
        # _check_on_history
        if c:
            if c > self.leader_max:
                self._check_commit_on_history(i, node, c)
            else:
                want = self.leader_committed.get(c)
                if want is not None:
                    si, ents = log.snap_index, log.entries
                    pos = c - si - 1
                    got = (log.snap_hash if pos == -1 else None) if pos < 0 else \
                        ents[pos].hash if pos < len(ents) else None
                    if got is not None and got != want:
                        self._check_commit_on_history(i, node, c)
        a = node.sm.applied_index
        if a and a != self.applied_checked[i]:
            self.applied_checked[i] = a
            bad = self._off_history(node, a)
            if bad:
                self._once("applied-uncommitted", i, a, f"state machine applied up to {a}: {bad}")
        # _check_chain
        ents = log.entries
        if ents:
            ck = self.chain_checked[i]
            if ck is None or ck[2] != ents[0].hash or ck[0] != log.snap_index or ck[1] != log.snap_hash:
                self._check_chain(i, node)
        if was[0] != role or was[1] != t:
            self.was_leader[i] = (role, t)
            if role == "leader":
                self._new_leader(i, node, t)
        if self.rule_checks and log.last_conf_index != self.conf_seen.get(i, 0):
            self._check_conf_rule(i, node, t, c)
        if role == "leader":
            lg = node.log
            conf = lg.last_conf
            if conf is not None and i not in conf.voters and lg.last_conf_index <= c:
                self._once("removed-leader-leads", i, t, f"leads term {t} although its configuration "
                                                         f"{conf.to_dict()} (index {lg.last_conf_index}) "
                                                         f"is committed (commit {c}) without it as a voter")

    def settled_ok(self, i, node) -> bool:
        """Whether after_step, run again on node i while the node is unchanged, is sure to report
        nothing when it just reported nothing (the simulator then skips that repeat). Each of its
        checks reads node i's own state, facts about node i recorded from its own steps, or facts
        fixed once recorded (committed[idx], leader_committed[idx]; `_once` keys) -- except the
        snapshot-base comparison of _check_held while held[i] is below the snapshot index, which
        reads committed[snap_index], set later by any node."""
        h = self.held[i]
        return h == 0 or h >= node.log.snap_index

    def _check_conf_rule(self, i, node, t, c) -> None:
        lg = node.log
        k = lg.last_conf_index
        if k == self.conf_seen.get(i, 0):
            return
        self.conf_seen[i] = k
        if node.role != "leader" or not lg.confs or lg.term(k) != t:
            return
        prev = lg.confs[-2][0] if len(lg.confs) > 1 else 0
        if prev > c:
            self._once("conf-change-rule", i, k, f"leader of term {t} appended a configuration at {k} while "
                                                 f"the one at {prev} was uncommitted (commit {c})")
        elif lg.term(c) != t:
            self._once("conf-change-rule", i, k, f"leader of term {t} appended a configuration at {k} before "
                                                 f"committing an entry of its term (commit {c}, term {lg.term(c)})")

    # ---- the committed history as leaders committed it -------------------------------------------
    def _record_leader_commit(self, node) -> None:
        c = node.commit_index
        if c <= self.leader_max:
            return
        log = node.log
        for idx in range(self.leader_max + 1, c + 1):
            h = log.hash(idx)
            if h is not None:
                self.leader_committed[idx] = h
        self.leader_max = c

    def _once(self, kind, i, idx, detail) -> None:
        if (kind, i, idx) not in self.reported:
            self.reported.add((kind, i, idx))
            self.report(kind, i, detail)

    def _off_history(self, node, idx):
        """None if the node's entry at idx is the one a leader committed there (or cannot be told:
        compacted, or never seen committed by a leader), else a description."""
        if idx > self.leader_max:
            return f"index {idx} is past every index a leader committed ({self.leader_max})"
        got, want = node.log.hash(idx), self.leader_committed.get(idx)
        if got is None or want is None or got == want:
            return None
        return f"index {idx} holds {got}, a leader committed {want} there"

    def _check_commit_on_history(self, i, node, c) -> None:
        bad = self._off_history(node, c)
        if bad:
            self._once("committed-prefix-differs", i, c, f"commit index {c}: {bad}")

    def _check_on_history(self, i, node) -> None:
        c = node.commit_index
        if c:
            self._check_commit_on_history(i, node, c)
        a = node.sm.applied_index
        if a and a != self.applied_checked[i]:
            self.applied_checked[i] = a
            bad = self._off_history(node, a)
            if bad:
                self._once("applied-uncommitted", i, a, f"state machine applied up to {a}: {bad}")

    def _check_chain(self, i, node) -> None:
        lg = node.log
        if not lg.entries:
            return
        e = lg.entries[0]
        key = (lg.snap_index, lg.snap_hash, e.hash)
        if key == self.chain_checked[i]:
            return
        self.chain_checked[i] = key
        if chain_hash(lg.snap_hash, e.term, e.command) != e.hash:
            self._once("log-chain-broken", i, e.index, f"entry {e.index} (term {e.term}) does not follow the "
                                                       f"snapshot base {lg.snap_index} ({lg.snap_hash})")

    def _new_leader(self, i, node, t) -> None:
        other = self.leaders.setdefault(t, i)
        if other != i:
            self.report("two-leaders", i, f"{other} and {i} both lead term {t}")
        conf = self._conf(node)
        if conf is not None:
            granted = [j for j in self.ids if self.voted.get((j, t)) == i]
            if i not in granted and node.vote == i:
                granted.append(i)
            self._short_quorum("election-without-majority", i, f"elected leader of term {t} with votes from "
                                                               f"{sorted(granted)}", granted, conf)
        g = self.max_committed
        if g:
            log = node.log
            want = self.committed[g]
            if g >= log.snap_index:
                ok = log.hash(g) == want
            else:
                ok = self.committed.get(log.snap_index) in (None, log.snap_hash)
            if not ok:
                self.report("leader-missing-committed", i, f"leader of term {t} lacks committed index {g}")

    def _check_vote(self, i, node, when) -> None:
        want = self.voted.get((i, node.term))
        if want is not None and node.vote != want:
            self.report("vote-forgotten", i, f"{when}voted {want} in term {node.term}, now holds vote {node.vote}")

    def _record_commits(self, i, node, c) -> None:
        lg = self.committed
        log = node.log
        lo = max(self.seen_commit[i], log.snap_index - 1) + 1
        grew = False
        prev = self.max_committed
        for idx in range(lo, c + 1):
            h = log.hash(idx)
            if h is None:
                continue
            want = lg.get(idx)
            if want is None:
                lg[idx] = h
                if idx > self.max_committed:
                    self.max_committed = idx
                    grew = True
                # only an index above every commit seen before is committed HERE: one at or below
                # `prev` was committed with `prev` (a prefix), its hash unseen until now because the
                # node that committed it compacted it in the same step (membership seed 300: node
                # m4 committed 186-187 and snapshotted at 187; m6, learning the commit later under
                # a newer configuration, was judged against that one: a false removed-node-counted)
                if self.holds is not None and idx > prev:
                    self._commit_quorum(i, node, idx, h, prev)
            elif want != h:
                self.report("committed-divergence", i, f"index {idx} committed as {h}, elsewhere as {want}")
                break
        self.seen_commit[i] = c
        if grew:
            self._refresh_held()

    def _commit_quorum(self, i, node, idx, h, prev) -> None:
        """An index first committed anywhere (by node i): held by a majority of the voters of i's
        configuration, and by enough voters of the configuration committed before (at `prev`,
        the highest index committed until now) to meet every majority of it."""
        conf = self._conf(node)
        if conf is None:
            return
        holders = [j for j in self.ids if self.holds(j, idx, h)]
        if self._short_quorum("commit-without-majority", i, f"index {idx} committed while held by "
                                                             f"{sorted(holders)}", holders, conf):
            return
        cc = node.log.conf_at(prev) if prev else None
        if cc is None:
            cc = getattr(node, "bootstrap", None)
        if cc is None or cc.voters == conf.voters:
            return
        k = sum(1 for j in holders if j in cc.voters)
        n = len(cc.voters)
        if k < n - n // 2:
            self.report("quorum-no-overlap", i, f"index {idx} committed while held by {k} of the {n} voters "
                                                f"{list(cc.voters)} of the configuration committed before it "
                                                f"(holders {sorted(holders)}; configuration in force {list(conf.voters)}): "
                                                f"a majority of that one could elect a leader without it")

    def _refresh_held(self) -> None:
        for j, node in self.nodes_fn():
            if node is not None:
                self._update_held(j, node)

    def _matches(self, log, idx) -> bool:
        want = self.committed.get(idx)
        return want is not None and log.hash(idx) == want

    def _update_held(self, j, node) -> None:
        log = node.log
        hi = min(self.max_committed, log.last_index)
        lo = max(self.held[j], log.snap_index)
        if hi <= self.held[j]:
            return
        if self._matches(log, hi):
            self.held[j] = hi
            return
        # chain hashes: the matching indexes form a prefix; binary search its end
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._matches(log, mid):
                lo = mid
            else:
                hi = mid - 1
        if lo > self.held[j] and self._matches(log, lo):
            self.held[j] = lo

    def _check_held(self, i, node, when) -> None:
        h = self.held[i]
        if h == 0:
            return
        log = node.log
        want = self.committed[h]
        if h >= log.snap_index:
            got = log.hash(h)
            if got != want:
                self.report("committed-entry-lost", i, f"{when}index {h} was committed ({want}) and held here; "
                                                       f"now {'absent' if got is None else got} "
                                                       f"(log {log.snap_index}..{log.last_index})")
                self.held[i] = 0
        else:
            base = self.committed.get(log.snap_index)
            if base is not None and base != log.snap_hash:
                self.report("committed-entry-lost", i, f"{when}snapshot base {log.snap_index} is off the committed chain")
                self.held[i] = 0

    # ---- crash / restart ---------------------------------------------------------------------
    def on_restart(self, i, node) -> None:
        when = "after a restart: "
        if node.term < self.sent_term[i]:
            self.report("term-regressed", i, f"{when}term {node.term} < {self.sent_term[i]} it had sent")
        self.max_term[i] = node.term
        self._check_vote(i, node, when)
        d = self.durable[i]
        if d is not None and self.held[i] > d[0]:
            # held in memory only: its fsync had not completed (a driver with group commit, the
            # simulator's fsync_ms), so nothing was sent or acknowledged on it and a crash may lose it
            self.held[i] = d[0]
        self._check_held(i, node, when)
        log = node.log
        if d is not None:
            last, h, snap, snap_h = d
            if last >= log.snap_index:
                got = log.hash(last)
                if got != h:
                    self.report("log-regressed", i, f"{when}index {last} was {h} before the crash, now "
                                                    f"{'absent' if got is None else got}")
            elif self.committed.get(log.snap_index) not in (None, log.snap_hash):
                self.report("log-regressed", i, f"{when}snapshot {log.snap_index} is off the committed chain")
        self.durable[i] = (log.last_index, log.hash(log.last_index), log.snap_index, log.snap_hash)
        self.seen_commit[i] = min(self.seen_commit[i], node.commit_index)
        self.conf_seen[i] = node.log.last_conf_index
        self.sm_index[i] = node.sm.applied_index
        self._update_held(i, node)

    def nodes_fn(self):   # replaced by the simulator: yields (id, node or None)
        return ()


# ---- coverage of the protocol's hard paths --------------------------------------------------------

PATHS = ("conflict_truncation", "snapshot_install", "snapshot_install_divergent_tail",
         "stale_leader_message", "stale_vote_message", "fast_backoff_reject", "leader_stepdown_quorum",
         "leader_deposed_by_term", "crash_before_sync", "crash_before_send", "crash_mid_send",
         "restart_during_election", "snapshots_taken_or_installed", "reads_dropped", "slow_clock",
         "read_while_newer_term", "commit_ahead_of_entries", "stale_tail_at_commit_update",
         "stale_tail_at_snapshot_install", "stale_tail_at_snapshot_install_conflict")
# paths whose stale-tail length is recorded (result["path_tails"], at most TAILS_KEPT per run)
# membership runs only (the `membership` fault kind; swarmnode/sim/membership_driver.py)
MEMBERSHIP_PATHS = ("conf_change_add_learner", "conf_change_promote", "conf_change_demote", "conf_change_remove",
                    "membership_partitioned", "conf_rolled_back", "leader_removed_stepped_down",
                    "removed_node_running", "snapshot_with_config")
TAIL_PATHS = ("commit_ahead_of_entries", "stale_tail_at_commit_update", "stale_tail_at_snapshot_install",
              "stale_tail_at_snapshot_install_conflict")
TAILS_KEPT = 50


def stale_tail(f, lead, committed=None) -> tuple:
    """(length, first stale index) of follower log f's entries that are not on leader log `lead`
    (where the leader compacted them: not on the `committed` chain, index -> hash). Chain hashes:
    the agreeing indexes are a prefix. An entry beyond the leader's last index is stale (the leader
    of this term holds every entry of it). (0, None) when every entry f holds agrees (or is unknown:
    compacted by the leader and not known committed)."""
    fe = f.entries
    if not fe:                      # last_index <= snap_index
        return 0, None
    last = f.snap_index + len(fe)
    ls, le = lead.snap_index, lead.entries
    if last <= ls + len(le):        # same(last), inline: the common case (the tail agrees)
        if last >= ls:
            want = lead.snap_hash if last == ls else le[last - ls - 1].hash
        else:
            want = (committed or {}).get(last)
        if want is None or fe[-1].hash == want:
            return 0, None
    committed = committed or {}

    def same(i):
        if i > lead.last_index:
            return False           # beyond the leader's log: written in an older term, not on it
        want = lead.hash(i) if i >= lead.snap_index else committed.get(i)
        return want is None or f.hash(i) == want

    last, lo = f.last_index, f.snap_index
    if last <= lo or same(last):
        return 0, None
    if not same(lo):
        return last - lo, lo + 1
    hi = last - 1                  # largest agreeing index is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if same(mid):
            lo = mid
        else:
            hi = mid - 1
    return last - lo, lo + 1


class PathCounter:
    """Counts, per run, how often a hard path of the protocol ran: read from the messages delivered,
    the events and node state before and after each step (the core is not instrumented)."""

    def __init__(self, extra=()):
        self.counts = {p: 0 for p in PATHS + tuple(extra)}
        self.tails = {p: [] for p in TAIL_PATHS}
        self.committed = None      # index -> chain hash of committed entries (set by the simulator)

    def hit(self, path: str, n: int = 1) -> None:
        self.counts[path] += n

    def _tail(self, path: str, length: int) -> None:
        self.counts[path] += 1
        if len(self.tails[path]) < TAILS_KEPT:
            self.tails[path].append(length)

    def before_message(self, node, m, sender=None):
        t = type(m)
        if m.term < node.term:
            if t is AppendEntries or t is InstallSnapshot:
                self.counts["stale_leader_message"] += 1
            elif t is VoteRequest or t is VoteResponse:
                self.counts["stale_vote_message"] += 1
        if t is AppendResponse and not m.success and m.hint_index:
            self.counts["fast_backoff_reject"] += 1
        if t is not InstallSnapshot and t is not AppendEntries:
            return None
        lg = node.log
        stale = (0, None)
        if m.term >= node.term and sender is not None and sender.term == m.term and sender.role == "leader":
            stale = stale_tail(lg, sender.log, self.committed)
        if t is AppendEntries:
            last_new = m.prev_log_index + len(m.entries)
            if stale[0] and stale[1] > last_new and m.leader_commit > last_new and (m.entries or m.leader_commit):
                self._tail("commit_ahead_of_entries", stale[0])
            return (node.commit_index, stale, last_new)
        s = m.snapshot
        conflict = lg.term(s.index) not in (None, s.term)
        return lg.snap_index, lg.last_index > s.index and conflict, node.commit_index, stale, conflict

    def after_message(self, node, m, before) -> None:
        if before is None:
            return
        if type(m) is AppendEntries:
            commit, (tail, first), last_new = before
            if tail and first > last_new and node.commit_index > commit:
                self._tail("stale_tail_at_commit_update", tail)
            return
        snap, divergent, commit, (tail, _), conflict = before
        s = m.snapshot
        installed = node.log.snap_index == s.index and snap != s.index
        if installed:
            self.counts["snapshot_install"] += 1
            if divergent:
                self.counts["snapshot_install_divergent_tail"] += 1
        if tail and (installed or node.commit_index >= s.index > commit):
            self._tail("stale_tail_at_snapshot_install", tail)
            if conflict:
                self._tail("stale_tail_at_snapshot_install_conflict", tail)

    def on_role(self, old_role, old_term, node) -> None:
        if old_role == "leader" and node.role != "leader":
            self.counts["leader_deposed_by_term" if node.term > old_term else "leader_stepdown_quorum"] += 1

    def on_events(self, events) -> None:
        for ev in events:
            t = ev["type"]
            if t == "truncate":
                self.counts["conflict_truncation"] += 1
            elif t == "snapshot":
                self.counts["snapshots_taken_or_installed"] += 1
