"""Receiver rules of the Raft RPCs, one small transcript each (in the style of etcd-io/raft's paper
tests): set up a node's log, term and commit index, deliver ONE message, assert the resulting log,
commit index, state machine and response. Each test pins one rule; a core that breaks the rule
fails it (the mutation runner, benchmarks/mutation.py, judges the cores with these tests).

AppendEntries (Raft paper, Figure 2, "Receiver implementation"; "All servers")
  ae_stale_term_rejected            1. reply false if term < currentTerm (and say the newer term)
  ae_newer_term_adopted             All servers: term T > currentTerm -> currentTerm = T, follower
  ae_candidate_steps_down           §5.2: a candidate that hears a leader of its term steps down
  ae_prev_missing_rejected          2. reply false if the log has no entry at prevLogIndex
                                    (hint: one past the last index, so the leader jumps back)
  ae_prev_term_mismatch_rejected    2. ... or its term there differs from prevLogTerm (hint: that
                                    term and its first index, §5.3 fast back-off); log unchanged
  ae_conflict_truncates_rest        3. an existing entry that conflicts with a new one: delete it
                                    AND ALL THAT FOLLOW (also the ones beyond the message)
  ae_matching_prefix_not_truncated  3. only a conflict truncates: an append whose entries the log
                                    already holds (a late or duplicated message) removes nothing
  ae_appends_new_entries            4. append any new entries not already in the log
  ae_commit_is_leader_commit        5. leaderCommit > commitIndex -> commitIndex = leaderCommit
                                    when that is below the last new entry (and apply up to it)
  ae_commit_capped_by_last_new      5. ... = min(leaderCommit, index of last NEW entry): never the
                                    last index of a log whose stale tail the message did not carry
  ae_commit_capped_by_prev          5. ... also for an empty append (heartbeat/probe): last new
                                    entry = prevLogIndex
  ae_commit_never_decreases         5. a smaller leaderCommit leaves commitIndex as it is
  ae_match_is_last_new_entry        reply success with match = last new entry, not the log's end
                                    (the leader must not count a stale tail as replicated)
  ae_below_commit_skips_prefix      entries at or below commitIndex are already committed: skipped,
                                    never compared or truncated (a compacted prefix has no terms)
InstallSnapshot (Raft paper, Figure 13; thesis §5.3 / Figure 5.3; §7 log compaction)
  is_stale_term_rejected            1. reply immediately if term < currentTerm
  is_newer_term_adopted             All servers: a newer term is adopted (the reply carries it)
  is_matching_entry_keeps_suffix    6. an entry with the snapshot's last index and term: retain the
                                    entries that follow it, commit = snapshot index, reply
  is_conflict_discards_whole_log    7. otherwise discard the ENTIRE log -- the stale tail beyond the
                                    snapshot's index too -- and 8. reset the state machine to it
  is_beyond_log_discards_log        7./8. a snapshot past the end of the log replaces it
  is_at_or_below_commit_ignored     a snapshot at or below commitIndex changes nothing (the state
                                    machine is never rolled back); reply with the commit index
  is_conflict_at_last_index_journals_no_empty_truncate  the journal's `truncate` event only when
                                    entries beyond the snapshot are removed (contracts section 4)
RequestVote (Figure 2) and PreVote (thesis §9.6)
  rv_stale_term_rejected            1. reply false if term < currentTerm (this core, like etcd/raft,
                                    does not answer an old-term vote at all; an old-term pre-vote is
                                    refused with our term)
  rv_grant_once_per_term            2. votedFor null or candidateId -> grant; another candidate in
                                    the same term is refused; the same one again is granted
  rv_log_behind_by_term_refused     2. §5.4.1 up to date: a lower last term is refused ...
  rv_log_behind_by_length_refused   ... so is an equal last term with a shorter log
  rv_higher_last_term_wins          ... a higher last term wins even with a shorter log
  rv_newer_term_adopted_when_refused  All servers: the newer term is adopted (vote cleared) even when
                                    the vote is refused for the log
  rv_vote_durable_before_reply      Figure 2: votedFor is persistent -- in the Ready of the reply
  rv_grant_restarts_the_election_timer_like_a_heartbeat  Figure 2 (Followers): granting a vote
                                    restarts the election timeout exactly as hearing the leader does
  pv_does_not_change_term_or_vote   PreVote: granting or refusing a pre-vote changes no term, no vote
  pv_refused_when_log_behind        PreVote: the log check applies to pre-votes too
  pv_refused_while_leader_heard     §9.6 / §6.2 lease: a node that hears a leader refuses
                                    (pre-)votes of a newer term until its election timeout
"""
import random

from swarmnode.raft import (FOLLOWER, AppendEntries, AppendResponse, Entry, HardState,
                            InstallSnapshot, MemoryStorage, RaftNode, Snapshot, Store, VoteRequest,
                            VoteResponse, chain_hash)

from .harness import CFG

VOTERS = ("m1", "m2", "m3")


def entries(terms, start=1, prev_hash="", tag=0):
    """Entries start.. with the given terms, chained from prev_hash; `tag` makes different commands."""
    out, h = [], prev_hash
    for k, t in enumerate(terms):
        i = start + k
        cmd = {"op": "kv.put", "key": f"k{i % 3}", "value": i * 10 + tag}
        h = chain_hash(h, t, cmd)
        out.append(Entry(i, t, cmd, h))
    return out


def node(terms, term, commit=0, vote=None, node_id="m2", log=None):
    """A follower with the given log (terms of entries 1..), term, vote and commit index, its
    committed prefix applied (its first Ready drained)."""
    st = MemoryStorage()
    st.persist(HardState(term, vote, commit), log if log is not None else entries(terms), None)
    st.sync()
    n = RaftNode(node_id, VOTERS, st, CFG, random.Random(1), Store())
    drain(n)
    return n


def drain(n):
    out, durable = [], []
    while (rd := n.ready()) is not None:
        out.extend(rd.messages)
        durable.append(rd.hard_state)
        n.advance(rd)
    n.durable = durable
    return out


def deliver(n, m):
    """Step one message; return the single response it caused (or None)."""
    n.step(m)
    out = drain(n)
    assert len(out) <= 1, out
    return out[0] if out else None


def terms_of(n):
    return [n.log.term(i) for i in range(n.log.snap_index + 1, n.log.last_index + 1)]


def ae(term, prev, prev_term, ents=(), commit=0, src="m1"):
    return AppendEntries(term, src, "m2", prev, prev_term, tuple(ents), commit, 1)


def store_after(log):
    s = Store()
    for e in log:
        s.apply(e.index, e.command)
    return s


# ---- AppendEntries -------------------------------------------------------------------------------

def test_ae_stale_term_rejected():
    n = node([1, 2], term=3)
    r = deliver(n, ae(2, 2, 2, entries([2, 2, 2])[2:], commit=2))
    assert isinstance(r, AppendResponse) and not r.success and r.term == 3
    assert terms_of(n) == [1, 2] and n.commit_index == 0 and n.leader_id is None


def test_ae_newer_term_adopted():
    n = node([1], term=1)
    r = deliver(n, ae(4, 1, 1))
    assert r.success and r.term == 4 and n.term == 4 and n.role == FOLLOWER and n.leader_id == "m1"


def test_ae_candidate_steps_down():
    n = node([1], term=1)
    n.become_candidate()          # term 2, voted for itself
    drain(n)
    r = deliver(n, ae(2, 1, 1, src="m3"))
    assert n.role == FOLLOWER and n.term == 2 and n.leader_id == "m3" and r.success


def test_ae_prev_missing_rejected():
    n = node([1, 1], term=2)
    r = deliver(n, ae(2, 5, 2, entries([1, 1, 2, 2, 2, 2])[5:]))
    assert not r.success and r.hint_index == 3 and r.hint_term == 0
    assert terms_of(n) == [1, 1]


def test_ae_prev_term_mismatch_rejected():
    n = node([1, 2, 2, 2], term=3)
    r = deliver(n, ae(3, 4, 3, entries([1, 3, 3, 3, 3], tag=1)[4:]))
    assert not r.success and r.hint_term == 2 and r.hint_index == 2
    assert terms_of(n) == [1, 2, 2, 2] and n.log.hash(4) == entries([1, 2, 2, 2])[3].hash


def test_ae_conflict_truncates_rest():
    n = node([1, 1, 2, 2, 2, 2], term=3)        # a deposed leader's term-2 tail 3..6
    lead = entries([1, 1]) + entries([3], start=3, prev_hash=entries([1, 1])[1].hash, tag=1)
    r = deliver(n, ae(3, 2, 1, lead[2:]))
    assert r.success and r.match_index == 3
    assert terms_of(n) == [1, 1, 3] and n.log.hash(3) == lead[2].hash


def test_ae_matching_prefix_not_truncated():
    log = entries([1, 1, 1, 1, 1])
    n = node(None, term=1, log=log)
    r = deliver(n, ae(1, 1, 1, log[1:3]))        # an older, shorter append of the same leader
    assert r.success and terms_of(n) == [1] * 5 and n.log.hash(5) == log[4].hash


def test_ae_appends_new_entries():
    log = entries([1, 1, 2, 2])
    n = node(None, term=2, log=log[:2])
    r = deliver(n, ae(2, 1, 1, log[1:4]))        # entry 2 already held, 3 and 4 new
    assert r.success and r.match_index == 4 and [n.log.hash(i) for i in (1, 2, 3, 4)] == [e.hash for e in log]


def test_ae_commit_is_leader_commit():
    log = entries([1, 1, 1, 1])
    n = node(None, term=1, log=log[:1])
    r = deliver(n, ae(1, 1, 1, log[1:4], commit=2))
    assert r.success and n.commit_index == 2 and n.applied_index == 2
    assert n.sm.digest() == store_after(log[:2]).digest()


def test_ae_commit_capped_by_last_new():
    # the follower agrees with the leader up to 3 and holds a stale term-2 tail 4..9; the append
    # carries entry 3 only while the leader's commit is 20: commit must stop at 3
    agreed = entries([1, 1, 1])
    stale = entries([2] * 6, start=4, prev_hash=agreed[-1].hash)
    n = node(None, term=3, log=agreed + stale)
    r = deliver(n, ae(3, 2, 1, agreed[2:3], commit=20))
    assert r.success and n.commit_index == 3 and n.applied_index == 3
    assert n.sm.digest() == store_after(agreed).digest()


def test_ae_commit_capped_by_prev():
    agreed = entries([1, 1, 1])
    stale = entries([2] * 4, start=4, prev_hash=agreed[-1].hash)
    n = node(None, term=3, log=agreed + stale)
    r = deliver(n, ae(3, 2, 1, (), commit=20))     # an empty probe at prev 2
    assert r.success and r.match_index == 2 and n.commit_index == 2 and n.applied_index == 2


def test_ae_commit_never_decreases():
    n = node([1, 1, 1, 1], term=1, commit=3)
    r = deliver(n, ae(1, 4, 1, (), commit=1))
    assert r.success and n.commit_index == 3 and n.applied_index == 3


def test_ae_match_is_last_new_entry():
    agreed = entries([1, 1, 1])
    stale = entries([2] * 5, start=4, prev_hash=agreed[-1].hash)
    n = node(None, term=3, log=agreed + stale)
    r = deliver(n, ae(3, 1, 1, agreed[1:2]))
    assert r.success and r.match_index == 2 and n.last_log_index == 8   # nothing conflicted yet


def test_ae_below_commit_skips_prefix():
    log = entries([1, 1, 1, 1, 1])
    n = node(None, term=1, log=log[:4], commit=3)
    other = entries([9, 9, 9], tag=5)      # nonsense at 1..2: below the commit index, never compared
    r = deliver(n, ae(1, 0, 0, other[:2] + [log[2], log[3], log[4]], commit=5))
    assert r.success and r.match_index == 5 and n.commit_index == 5
    assert [n.log.hash(i) for i in range(1, 6)] == [e.hash for e in log]


# ---- InstallSnapshot -----------------------------------------------------------------------------

def snapshot_of(log):
    last = log[-1]
    return Snapshot(last.index, last.term, last.hash, store_after(log).snapshot())


def test_is_stale_term_rejected():
    n = node([1, 2], term=3)
    lead = entries([1, 1, 1, 1], tag=1)
    r = deliver(n, InstallSnapshot(2, "m1", "m2", snapshot_of(lead), 1))
    assert not r.success and r.term == 3
    assert terms_of(n) == [1, 2] and n.log.snap_index == 0 and n.commit_index == 0


def test_is_newer_term_adopted():
    n = node([1, 1], term=1)
    lead = entries([1, 1, 2, 2])
    r = deliver(n, InstallSnapshot(4, "m1", "m2", snapshot_of(lead), 1))
    assert r.success and r.term == 4 and n.term == 4 and n.role == FOLLOWER and n.leader_id == "m1"


def test_is_matching_entry_keeps_suffix():
    log = entries([1, 1, 2, 2, 2])
    n = node(None, term=2, log=log)
    r = deliver(n, InstallSnapshot(2, "m1", "m2", snapshot_of(log[:3]), 1))
    assert r.success and r.match_index == 3 and n.commit_index == 3 and n.applied_index == 3
    assert n.last_log_index == 5 and n.log.hash(5) == log[4].hash


def test_is_conflict_discards_whole_log():
    # a deposed leader's stale term-2 tail 3..8; the snapshot's last entry (4, term 3) conflicts
    agreed = entries([1, 1])
    stale = entries([2] * 6, start=3, prev_hash=agreed[-1].hash)
    n = node(None, term=3, log=agreed + stale)
    lead = agreed + entries([3, 3], start=3, prev_hash=agreed[-1].hash, tag=1)
    s = snapshot_of(lead)
    r = deliver(n, InstallSnapshot(3, "m1", "m2", s, 1))
    assert r.success and r.match_index == 4
    assert n.log.snap_index == 4 and n.log.snap_hash == s.hash and n.last_log_index == 4 and not n.log.entries
    assert n.commit_index == 4 and n.applied_index == 4 and n.sm.digest() == store_after(lead).digest()


def test_is_beyond_log_discards_log():
    n = node([1, 1, 2], term=3)
    lead = entries([1, 1, 3, 3, 3, 3], tag=1)
    r = deliver(n, InstallSnapshot(3, "m1", "m2", snapshot_of(lead), 1))
    assert r.success and n.log.snap_index == 6 and not n.log.entries and n.commit_index == 6
    assert n.sm.digest() == store_after(lead).digest()


def test_is_at_or_below_commit_ignored():
    log = entries([1, 1, 1, 1, 1])
    n = node(None, term=1, log=log, commit=4)
    before = n.sm.digest()
    r = deliver(n, InstallSnapshot(1, "m1", "m2", snapshot_of(log[:3]), 1))
    assert r.success and r.match_index == 4 and n.commit_index == 4 and n.sm.digest() == before
    assert n.log.snap_index == 0 and n.last_log_index == 5


# ---- RequestVote and PreVote ---------------------------------------------------------------------

def rv(term, cand, last_index, last_term, pre=False):
    return VoteRequest(term, cand, "m2", pre, last_index, last_term)


def test_rv_stale_term_rejected():
    n = node([1, 1], term=3)
    assert deliver(n, rv(2, "m1", 9, 2)) is None           # a vote of an old term: no grant, no reply
    r = deliver(n, rv(2, "m1", 9, 2, pre=True))             # a pre-vote for an old term: refused
    assert isinstance(r, VoteResponse) and not r.granted and r.term == 3
    assert n.vote is None and n.term == 3


def test_rv_grant_once_per_term():
    n = node([1, 1], term=1)
    assert deliver(n, rv(2, "m1", 2, 1)).granted and n.vote == "m1" and n.term == 2
    assert not deliver(n, rv(2, "m3", 2, 1)).granted and n.vote == "m1"
    assert deliver(n, rv(2, "m1", 2, 1)).granted


def test_rv_log_behind_by_term_refused():
    n = node([1, 2], term=2)
    r = deliver(n, rv(3, "m1", 5, 1))
    assert not r.granted and n.vote is None


def test_rv_log_behind_by_length_refused():
    n = node([1, 2, 2], term=2)
    r = deliver(n, rv(3, "m1", 2, 2))
    assert not r.granted and n.vote is None


def test_rv_higher_last_term_wins():
    n = node([1, 1, 1, 1], term=2)
    r = deliver(n, rv(3, "m1", 2, 2))
    assert r.granted and n.vote == "m1"


def test_rv_newer_term_adopted_when_refused():
    n = node([1, 2, 2], term=2, vote="m2")
    r = deliver(n, rv(5, "m1", 1, 1))
    assert not r.granted and r.term == 5 and n.term == 5 and n.vote is None and n.role == FOLLOWER


def test_rv_vote_durable_before_reply():
    n = node([1], term=1)
    r = deliver(n, rv(2, "m3", 1, 1))
    assert r.granted and any(hs is not None and hs.term == 2 and hs.vote == "m3" for hs in n.durable)


def test_pv_does_not_change_term_or_vote():
    n = node([1, 1], term=2, vote="m3")
    granted = deliver(n, rv(3, "m1", 2, 1, pre=True))
    refused = deliver(n, rv(3, "m1", 1, 1, pre=True))
    assert granted.granted and granted.pre_vote and not refused.granted
    assert n.term == 2 and n.vote == "m3" and n.role == FOLLOWER


def test_pv_refused_when_log_behind():
    n = node([1, 2], term=2)
    r = deliver(n, rv(3, "m1", 3, 1, pre=True))
    assert not r.granted and r.pre_vote and n.term == 2


def test_pv_refused_while_leader_heard():
    n = node([1], term=2)
    deliver(n, ae(2, 1, 1))                      # hears the leader m1 now
    n.step(rv(3, "m3", 1, 1, pre=True))
    n.step(rv(3, "m3", 1, 1))
    out = drain(n)
    assert not any(isinstance(m, VoteResponse) and m.granted for m in out)
    assert n.term == 2 and n.vote is None and n.leader_id == "m1"



# ---- added after the seed-26 receiver sample (its survivors core.py:470 and :382) ----------------

def events_of(n, m):
    n.step(m)
    evs = []
    while (rd := n.ready()) is not None:
        evs.extend(rd.events)
        n.advance(rd)
    return evs


def test_is_conflict_at_last_index_journals_no_empty_truncate():
    # the journal (contracts section 4) says `truncate` only when entries are removed: a log that
    # ends exactly at the snapshot's (conflicting) last index has nothing beyond it to truncate
    n = node([1, 1, 2], term=3)
    lead = entries([1, 1, 3], tag=1)
    evs = events_of(n, InstallSnapshot(3, "m1", "m2", snapshot_of(lead), 1))
    assert [e["type"] for e in evs if e["type"] in ("truncate", "snapshot")] == ["snapshot"], evs
    n2 = node([1, 1, 2, 2], term=3)
    evs2 = events_of(n2, InstallSnapshot(3, "m1", "m2", snapshot_of(lead), 1))
    assert {"type": "truncate", "from_index": 4} in evs2


def ticks_until_campaign(n, limit=500):
    for k in range(1, limit):
        n.tick()
        drain(n)
        if n.role != FOLLOWER:
            return k
    return None


def test_rv_grant_restarts_the_election_timer_like_a_heartbeat():
    # Figure 2 (Followers): a follower that grants a vote restarts its election timeout, exactly as
    # when it hears the leader; two identical nodes, one granting, one hearing an append
    a, b = node([1], term=1), node([1], term=1)
    for _ in range(5):
        a.tick()
        b.tick()
    drain(a)
    drain(b)
    assert deliver(a, rv(2, "m3", 1, 1)).granted
    deliver(b, ae(2, 1, 1, src="m3"))
    assert ticks_until_campaign(a) == ticks_until_campaign(b) is not None
