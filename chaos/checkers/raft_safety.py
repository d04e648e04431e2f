"""The `raft-safety` checker: Raft's safety properties judged from the node journals.

Owns: replaying each node's journal (events/<node>.jsonl, docs/contracts.md section 4) into its log,
current term, commit and apply progress, and checking (Raft paper, Ongaro & Ousterhout 2014):

  election-safety      §5.2 / Fig. 3: at most one leader per term (role events).
  vote-once            §5.2: at most one granted vote per node per term, across restarts (vote events,
                       any boot). Re-granting to the same candidate is allowed (votedFor persists).
  persistent-state     Fig. 2: currentTerm and votedFor are on stable storage before the node acts on
                       them (the journal line follows the fsync). The state a restarted node reports
                       loading (`recovered` event) may not be behind its journal: not a lower term,
                       and in the term of its last granted vote, that same vote. Catches a lost vote
                       at the restart itself, before (or without) a second vote in that term.
  term-monotonic       Fig. 2 currentTerm is persistent: term, role and vote events never carry a term
                       lower than the node's highest `term` event so far, within and across boots.
  commit-monotonic     within one boot, commit indexes never decrease. Across boots commitIndex is
                       volatile (Fig. 2), so after a restart it may start lower; it must never go below
                       the last persisted snapshot index (a snapshot only holds committed entries).
                       With `commit_persisted=true` it may not decrease across boots either.
  commit-rule          §5.4.2: a leader advances its commit index only to an entry of its own term
                       (earlier entries are committed indirectly); a leader's commit event pointing at
                       an entry of an older term is the Fig. 8 bug.
  apply-committed      an applied index is never above the highest commit (or snapshot) index the
                       node has journaled so far (in any boot: a restarted node may re-apply up to a
                       commit index it persisted without journaling a new commit event), and applies
                       increase strictly within a boot.
  log-matching         §5.3: same index and term => same chain hash; same index and chain hash =>
                       same predecessor hash (hence the same prefix). An append must follow an entry
                       (or snapshot) at index-1 in the node's log: no holes.
  leader-completeness  §5.4: an entry known committed while its node was in term T (commit event,
                       entry taken from that node's log) is in the log, with the same hash, of every
                       leader of a term > T at the moment it became leader (or under its snapshot).
  state-machine-safety §5.4.3: every node applying (or snapshotting) index i applied the same chain
                       hash and reached the same store digest; an applied entry matches the hash in
                       the applying node's log.
  election-quorum      §4.1 of the Raft thesis (membership): a leader of term T was granted votes in
                       term T by a majority of the VOTERS of the configuration in force on it when it
                       became leader (its latest `config` event: a configuration is used as soon as
                       it is in the log). Votes from learners or removed nodes do not count, and its
                       own vote only when it is a voter. Judged only for nodes whose journals carry
                       `config` events (agents with membership), and only when every voter of that
                       configuration has a journal (a missing one could hold a vote: noted instead).
  removed-leader       §4.2.2: a leader whose configuration in force no longer lists it as a voter
                       (removed or demoted) steps down as soon as that change commits: a commit
                       event it journals as leader after its commit index already covered that
                       configuration entry is a violation (it kept leading).
  conf-change-rule     §4.1 (one server at a time) and the single-server change fix: a leader appends
                       a configuration entry of its term only once the previous configuration entry
                       is committed (never two changes in flight) and once it committed an entry of
                       its own term. Judged at the leader's `config` event for an entry of its term
                       (the agent journals one per configuration entry, right after its `append`)
                       against the commit index it journaled before it. A journal with only the
                       latest configuration of a Ready (older agents) hides two changes appended
                       together: a missed catch, never a false alarm.

No data is UNKNOWN, never VALID: journals without Raft events, or in which no node became leader or
no entry was committed (commit, apply or snapshot events): the rules would hold vacuously.

Logs are rebuilt from append / truncate / snapshot events; they persist across boots (the journal
is the node's durable history). An append over an existing entry with a different hash and no
truncate is treated as an implicit truncation and noted in the evidence (not a violation).

Must not import: click, rich, docker.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chaos.checkers.core import Outcome, Param, Verdict, register

MAX_PER_RULE = 20
RULES = ("election-safety", "vote-once", "persistent-state", "term-monotonic", "commit-monotonic", "commit-rule",
         "apply-committed", "log-matching", "leader-completeness", "state-machine-safety", "election-quorum",
         "removed-leader", "conf-change-rule")


def _ev(e: dict) -> dict:
    """A compact copy of an event for evidence."""
    return {k: e[k] for k in ("node", "seq", "boot", "ts", "type", "term", "index", "hash", "candidate",
                              "role", "from_index", "store_digest") if k in e}


class _Violations:
    def __init__(self) -> None:
        self.by_rule: dict[str, list] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, rule: str, detail: str, *events: dict) -> None:
        self.counts[rule] += 1
        if len(self.by_rule[rule]) < MAX_PER_RULE:
            self.by_rule[rule].append({"detail": detail, "events": [_ev(e) for e in events]})


class _Node:
    """Replay state of one node."""

    def __init__(self, name: str):
        self.name = name
        self.log: dict[int, tuple[int, str]] = {}   # index -> (term, hash)
        self.snap_index = 0
        self.snap_term = 0
        self.snap_hash = ""
        self.term = 0
        self.term_event: dict | None = None
        self.boot = None
        self.commit = 0           # this boot
        self.commit_event: dict | None = None
        self.max_commit_ever = 0
        self.applied = 0          # this boot
        self.apply_event: dict | None = None
        self.last_index = 0
        self.role = "follower"
        self.voters: tuple | None = None   # the configuration in force (latest `config` event)
        self.conf_index = 0
        self.conf_event: dict | None = None

    def entry_hash(self, index: int) -> str | None:
        if index == 0:
            return ""
        if index == self.snap_index:
            return self.snap_hash
        ent = self.log.get(index)
        return ent[1] if ent else None


def check_journals(journals: dict[str, list[dict]], commit_persisted: bool = False) -> Outcome:
    raft_types = {"term", "vote", "role", "append", "truncate", "commit", "apply", "snapshot"}
    nodes_with_raft = {n: evs for n, evs in journals.items() if any(e.get("type") in raft_types for e in evs)}
    if not nodes_with_raft:
        return Outcome.nothing("no Raft events in any journal")
    v = _Violations()
    notes: list[str] = []
    leaders: dict[int, list[dict]] = defaultdict(list)
    votes: dict[tuple[str, int], dict] = {}
    parent: dict[tuple[int, str], tuple[str, dict]] = {}
    term_hash: dict[tuple[int, int], tuple[str, dict]] = {}
    applied_at: dict[int, tuple[str, Any, dict]] = {}
    committed: dict[int, tuple[str, int, dict]] = {}     # index -> (hash, term known committed, event)
    leader_logs: list[tuple[int, dict, dict, int, str, int]] = []  # term, log copy, event, snap idx/hash, last
    elections: list[tuple[int, str, tuple, dict]] = []   # term, leader, voters in force, role event
    counts = defaultdict(int)

    for name in sorted(nodes_with_raft):
        st = _Node(name)
        for e in nodes_with_raft[name]:
            t = e.get("type")
            counts[t] += 1
            boot = e.get("boot")
            if boot != st.boot:
                st.boot = boot
                st.commit = st.snap_index if not commit_persisted else st.max_commit_ever
                st.applied = 0
                st.commit_event = None
                st.apply_event = None
                st.role = "follower"
            term = e.get("term")
            if t == "recovered" and isinstance(term, int):
                if term < st.term:
                    v.add("persistent-state", f"{name} (boot {boot}) recovered term {term}, but its journal "
                                              f"reached term {st.term} before the restart", st.term_event or {}, e)
                else:
                    granted = votes.get((name, term))
                    if granted is not None and granted.get("candidate") != e.get("vote"):
                        v.add("persistent-state", f"{name} (boot {boot}) recovered vote {e.get('vote')!r} in "
                                                  f"term {term}, but it had granted its vote to "
                                                  f"{granted.get('candidate')!r} in that term (boot "
                                                  f"{granted.get('boot')})", granted, e)
            if t in ("term", "role", "vote") and isinstance(term, int):
                if term < st.term:
                    v.add("term-monotonic", f"{name}: {t} event with term {term} after term {st.term}",
                          st.term_event or {}, e)
                elif t == "term":
                    st.term, st.term_event = term, e
                elif term > st.term:   # role/vote in a term without its own term event
                    st.term, st.term_event = term, e
            if t == "config" and isinstance(e.get("voters"), list):
                if st.role == "leader":
                    _check_conf_change(v, st, e)
                st.voters = tuple(e["voters"])
                st.conf_index = e.get("index") if isinstance(e.get("index"), int) else 0
                st.conf_event = e
            if t == "role":
                st.role = e.get("role")
            if t == "role" and e.get("role") == "leader" and st.voters is not None:
                elections.append((term, name, st.voters, e))
            if t == "role" and e.get("role") == "leader":
                for other in leaders[term]:
                    if other.get("node") != name:
                        v.add("election-safety", f"term {term}: {other.get('node')} and {name} both leader",
                              other, e)
                        break
                leaders[term].append(e)
                leader_logs.append((term, dict(st.log), e, st.snap_index, st.snap_hash, st.last_index))
            elif t == "vote":
                k = (name, term)
                prev = votes.get(k)
                if prev is not None and prev.get("candidate") != e.get("candidate"):
                    v.add("vote-once", f"{name} voted for {prev.get('candidate')} (boot {prev.get('boot')}) and "
                                       f"{e.get('candidate')} (boot {boot}) in term {term}", prev, e)
                elif prev is None:
                    votes[k] = e
            elif t == "append":
                idx, h = e.get("index"), e.get("hash")
                old = st.log.get(idx)
                if old is not None and old[1] != h:
                    notes.append(f"{name} seq {e.get('seq')}: append at {idx} replaced hash {old[1]} "
                                 f"without a truncate")
                    for i in [i for i in st.log if i >= idx]:
                        del st.log[i]
                    st.last_index = idx - 1
                prev_hash = st.entry_hash(idx - 1)
                if prev_hash is None:
                    v.add("log-matching", f"{name}: append at index {idx} with no entry at {idx - 1} "
                                          f"(last index {st.last_index}, snapshot {st.snap_index})", e)
                else:
                    seen = parent.get((idx, h))
                    if seen is None:
                        parent[(idx, h)] = (prev_hash, e)
                    elif seen[0] != prev_hash:
                        v.add("log-matching", f"index {idx} hash {h}: predecessor {seen[0]!r} on "
                                              f"{seen[1].get('node')} but {prev_hash!r} on {name}", seen[1], e)
                th = term_hash.get((idx, term))
                if th is None:
                    term_hash[(idx, term)] = (h, e)
                elif th[0] != h:
                    v.add("log-matching", f"index {idx} term {term}: hash {th[0]} on {th[1].get('node')} "
                                          f"but {h} on {name}", th[1], e)
                st.log[idx] = (term, h)
                st.last_index = max(st.last_index, idx)
            elif t == "truncate":
                frm = e.get("from_index")
                if isinstance(frm, int):
                    for i in [i for i in st.log if i >= frm]:
                        del st.log[i]
                    st.last_index = min(st.last_index, frm - 1)
            elif t == "snapshot":
                idx, h = e.get("index"), e.get("hash")
                _check_smr(v, applied_at, name, e)
                st.snap_index, st.snap_term, st.snap_hash = idx, term, h
                for i in [i for i in st.log if i <= idx]:
                    del st.log[i]
                st.last_index = max(st.last_index, idx)
                st.commit = max(st.commit, idx)
                st.applied = max(st.applied, idx)
                _note_committed(v, committed, idx, h, st.term, e)
            elif t == "commit":
                idx = e.get("index")
                if st.role == "leader" and st.voters is not None and name not in st.voters \
                        and st.commit_event is not None and st.commit >= st.conf_index > 0:
                    v.add("removed-leader", f"{name} still leads (commit {idx}) after the configuration at "
                                            f"index {st.conf_index} without it as a voter committed "
                                            f"(commit {st.commit})", st.commit_event, e)
                if idx < st.commit:
                    why = "within boot" if st.commit_event is not None else "below the persisted floor after restart"
                    v.add("commit-monotonic", f"{name}: commit {idx} after {st.commit} ({why})",
                          *(x for x in (st.commit_event, e) if x))
                else:
                    ent = st.log.get(idx)
                    if st.role == "leader" and idx > st.commit and ent is not None and ent[0] != st.term:
                        v.add("commit-rule", f"{name}: leader of term {st.term} committed index {idx} "
                                             f"of term {ent[0]}", e)
                    for i in range(max(st.max_commit_ever, st.snap_index) + 1, idx + 1):
                        h = st.entry_hash(i)
                        if h is None:
                            v.add("log-matching", f"{name}: commit {idx} covers index {i} missing from its log", e)
                            break
                        _note_committed(v, committed, i, h, st.term, e)
                    st.commit, st.commit_event = idx, e
                    st.max_commit_ever = max(st.max_commit_ever, idx)
            elif t == "apply":
                idx, h = e.get("index"), e.get("hash")
                if idx > max(st.commit, st.max_commit_ever):
                    v.add("apply-committed", f"{name}: applied {idx} above commit index "
                                             f"{max(st.commit, st.max_commit_ever)}",
                          *(x for x in (st.commit_event, e) if x))
                if idx <= st.applied and st.apply_event is not None:
                    v.add("apply-committed", f"{name}: applied {idx} after {st.applied} in the same boot",
                          st.apply_event, e)
                mine = st.entry_hash(idx)
                if mine is not None and mine != h:
                    v.add("state-machine-safety", f"{name}: applied index {idx} hash {h} but its log has {mine}", e)
                _check_smr(v, applied_at, name, e)
                _note_committed(v, committed, idx, h, st.term, e)
                st.applied, st.apply_event = max(st.applied, idx), e

    # Leader completeness: entries committed in term T present in every leader log of a term > T.
    for lterm, log, lev, snap_idx, snap_hash, _last in leader_logs:
        missing = 0
        for idx, (h, cterm, cev) in committed.items():
            if cterm >= lterm:
                continue
            if idx < snap_idx:
                continue
            have = snap_hash if idx == snap_idx else (log.get(idx) or (None, None))[1]
            if have != h:
                missing += 1
                if missing <= 3:
                    v.add("leader-completeness",
                          f"{lev.get('node')} became leader of term {lterm} without committed entry {idx} "
                          f"(hash {h}, committed by term {cterm}); its log has {have!r}", cev, lev)
    _check_election_quorums(v, notes, elections, votes, set(journals))
    evidence = {
        "violations": {r: v.by_rule[r] for r in RULES if v.by_rule.get(r)},
        "violation_counts": {r: v.counts[r] for r in RULES if v.counts.get(r)},
        "nodes": sorted(nodes_with_raft),
        "event_counts": dict(sorted(counts.items())),
        "terms_with_leader": len(leaders),
        "committed_entries": len(committed),
        "notes": notes[:MAX_PER_RULE],
    }
    if v.counts:
        rules = ", ".join(f"{r} ({v.counts[r]})" for r in RULES if v.counts.get(r))
        first = next(v.by_rule[r][0]["detail"] for r in RULES if v.by_rule.get(r))
        return Outcome(Verdict.INVALID, f"violated: {rules}; first: {first}", evidence)
    if not leaders or not committed:
        missing = "no node became leader" if not leaders else "no entry was committed"
        return Outcome(Verdict.UNKNOWN, f"nothing to check: {missing} in the journals, so most safety rules "
                                        "had nothing to judge", evidence)
    return Outcome(Verdict.VALID, f"{len(nodes_with_raft)} node(s), {len(leaders)} term(s) with a leader, "
                                  f"{len(committed)} committed entries: all safety rules hold", evidence)


def _check_conf_change(v: _Violations, st: _Node, e: dict) -> None:
    """conf-change-rule (see the module docstring), at a leader's `config` event `e`, before the
    replay makes it the configuration in force."""
    idx = e.get("index")
    ent = st.log.get(idx) if isinstance(idx, int) else None
    if ent is None or ent[0] != st.term or idx <= st.conf_index:
        return   # not an entry this leader appended in its term (a load, a rollback, a snapshot)
    commit_term = st.snap_term if st.commit == st.snap_index else (st.log.get(st.commit) or (None,))[0]
    if st.conf_index > st.commit:
        v.add("conf-change-rule", f"{st.name}: leader of term {st.term} appended a configuration at {idx} while "
                                  f"the one at {st.conf_index} was uncommitted (commit {st.commit}): two "
                                  f"changes in flight", *(x for x in (st.conf_event, st.commit_event, e) if x))
    elif commit_term != st.term:
        v.add("conf-change-rule", f"{st.name}: leader of term {st.term} appended a configuration at {idx} before "
                                  f"committing an entry of its term (commit {st.commit}, term {commit_term})",
              *(x for x in (st.commit_event, e) if x))


def _check_election_quorums(v: _Violations, notes: list, elections: list, votes: dict, have: set) -> None:
    """election-quorum (see the module docstring)."""
    by_term: dict[int, dict[str, dict]] = defaultdict(dict)
    for (voter, term), e in votes.items():
        by_term[term][voter] = e
    for term, leader, voters, lev in elections:
        granted = {n for n, e in by_term.get(term, {}).items() if e.get("candidate") == leader}
        counted = sorted(granted & set(voters))
        if 2 * len(counted) > len(voters):
            continue
        absent = sorted(set(voters) - have)
        if absent:
            notes.append(f"election-quorum not judged for {leader} in term {term}: no journal of voter(s) "
                         f"{', '.join(absent)}")
            continue
        others = sorted(granted - set(voters))
        v.add("election-quorum", f"{leader} became leader of term {term} with votes from {counted or 'nobody'} of "
                                 f"the voters {list(voters)} in force on it (a majority needs "
                                 f"{len(voters) // 2 + 1})" + (f"; votes from non-voters {others} do not count"
                                                               if others else ""),
              lev, *[by_term[term][n] for n in sorted(granted)][:4])


def _check_smr(v: _Violations, applied_at: dict, name: str, e: dict) -> None:
    idx, h, d = e.get("index"), e.get("hash"), e.get("store_digest")
    prev = applied_at.get(idx)
    if prev is None:
        applied_at[idx] = (h, d, e)
        return
    ph, pd, pe = prev
    if ph != h:
        v.add("state-machine-safety", f"index {idx}: {pe.get('node')} applied hash {ph}, {name} applied {h}", pe, e)
    elif d is not None and pd is not None and pd != d:
        v.add("state-machine-safety", f"index {idx}: store digest {pd} on {pe.get('node')} but {d} on {name}",
              pe, e)


def _note_committed(v: _Violations, committed: dict, idx: int, h: str, term: int, e: dict) -> None:
    prev = committed.get(idx)
    if prev is not None and prev[0] != h:
        v.add("state-machine-safety", f"index {idx}: committed as {prev[0]} on {prev[2].get('node')} "
                                      f"and as {h} on {e.get('node')}", prev[2], e)
        return
    if prev is None or term < prev[1]:
        committed[idx] = (h, term, e)


@register("raft-safety", default=True, params=(
    Param("commit_persisted", "bool", False,
          "the node persists its commit index, so commit may not decrease across restarts either"),
))
def raft_safety(run, commit_persisted) -> Outcome:
    """Raft safety from the journals: election safety, votes, monotonic terms/commits, log matching,
    leader completeness, state machine safety."""
    named = [n for n, role in run.named_nodes().items() if role == "manager"]
    if named:   # a worker promoted to manager (issue 23) journals Raft events too
        loaded = run._journals   # looked at without marking a worker's missing journal as read
        named += [n for n, evs in sorted(loaded.items())
                  if n not in named and any(e.get("type") == "promoted" for e in evs)]
    journals = run.journals_of(named) if named else run.journals
    if not journals:
        return Outcome.nothing("no events/<node>.jsonl journals")
    out = check_journals(journals, commit_persisted=commit_persisted)
    # A violation is a fact of the journals that were read: a missing journal or a cut-off tail cannot
    # explain it away (every rule flags events present, never the absence of one).
    out.holds_on_partial = True
    return out
