"""The Raft core against the paper, section by section (Ongaro & Ousterhout 2014; thesis 2014)."""
import random

import pytest

from swarmnode.raft import (CANDIDATE, FOLLOWER, LEADER, PRECANDIDATE, AppendEntries, AppendResponse,
                            Busy, Entry, HardState, MemoryStorage, NotLeader, RaftConfig, RaftNode,
                            VoteRequest, VoteResponse, chain_hash)

from .harness import CFG, Cluster


def put(k, v, **kw):
    return dict({"op": "kv.put", "key": k, "value": v}, **kw)


def make_log(terms):
    out, h = [], ""
    for i, t in enumerate(terms, 1):
        cmd = {"op": "kv.put", "key": "k", "value": i}
        h = chain_hash(h, t, cmd)
        out.append(Entry(i, t, cmd, h))
    return out


def node_with(terms, term, node_id="m1", voters=("m1", "m2", "m3"), config=CFG, vote=None):
    st = MemoryStorage()
    st.persist(HardState(term, vote, 0), make_log(terms), None)
    st.sync()
    return RaftNode(node_id, voters, st, config, random.Random(1)), st


def drain(node):
    msgs = []
    while (rd := node.ready()) is not None:
        msgs.extend(rd.messages)
        node.advance(rd)
    return msgs


# §5.2 leader election ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_election_elects_exactly_one_leader(seed):
    c = Cluster(3, seed=seed)
    leader = c.elect()
    assert c.leaders() == [leader]
    assert all(c.nodes[i].term == c.nodes[leader].term for i in c.ids)


def test_election_single_node_cluster_leads_and_commits_alone():
    st = MemoryStorage()
    n = RaftNode("m1", ["m1"], st, CFG, random.Random(0))
    for _ in range(CFG.election_timeout_max_ticks):
        n.tick()
    assert n.role == LEADER
    idx = n.propose(put("a", 1))
    rd = n.ready()
    assert n.commit_index == idx and any(r.index == idx for r in rd.results)


def test_vote_granted_at_most_once_per_term():
    # §5.2: each server votes for at most one candidate in a given term
    n, _ = node_with([1], 1, node_id="m3", config=RaftConfig(pre_vote=False, check_quorum=False))
    n.step(VoteRequest(2, "m1", "m3", False, 1, 1))
    n.step(VoteRequest(2, "m2", "m3", False, 1, 1))
    votes = [m for m in drain(n) if isinstance(m, VoteResponse)]
    assert [(m.dst, m.granted) for m in votes] == [("m1", True), ("m2", False)]


def test_vote_rejected_when_candidate_log_is_behind():
    # §5.4.1: a vote goes only to a candidate whose log is at least as up to date
    cfg = RaftConfig(pre_vote=False, check_quorum=False)
    n, _ = node_with([1, 2], 2, node_id="m3", config=cfg)
    n.step(VoteRequest(3, "m1", "m3", False, 5, 1))    # longer log, older last term
    n.step(VoteRequest(4, "m2", "m3", False, 2, 2))    # same last term and index
    got = [(m.dst, m.granted) for m in drain(n) if isinstance(m, VoteResponse)]
    assert got == [("m1", False), ("m2", True)]


def test_vote_persisted_in_the_same_ready_as_the_reply():
    # Figure 2 "Persistent state ... updated on stable storage before responding to RPCs"
    n, _ = node_with([1], 1, node_id="m3", config=RaftConfig(pre_vote=False, check_quorum=False))
    n.step(VoteRequest(2, "m1", "m3", False, 1, 1))
    rd = n.ready()
    assert any(isinstance(m, VoteResponse) and m.granted for m in rd.messages)
    assert rd.hard_state == HardState(2, "m1", 0)
    assert {"type": "vote", "term": 2, "candidate": "m1"} in rd.events


def test_vote_not_persisted_bug_leaves_vote_out_of_hard_state():
    cfg = RaftConfig(pre_vote=False, check_quorum=False).with_bug("vote_not_persisted")
    n, _ = node_with([1], 1, node_id="m3", config=cfg)
    n.step(VoteRequest(2, "m1", "m3", False, 1, 1))
    rd = n.ready()
    assert any(isinstance(m, VoteResponse) and m.granted for m in rd.messages)
    assert rd.hard_state.vote is None


def test_prevote_isolated_node_does_not_raise_its_term():
    # thesis §9.6: a partitioned server's pre-votes fail, so its term stays put
    c = Cluster(3, seed=1)
    leader = c.elect()
    follower = next(i for i in c.ids if i != leader)
    term = c.nodes[leader].term
    c.isolate(follower)
    c.tick(100)
    assert c.nodes[follower].term == term and c.nodes[follower].role == PRECANDIDATE
    c.heal()
    c.tick(30)
    assert c.leaders() == [leader] and c.nodes[leader].term == term


def test_without_prevote_rejoining_node_deposes_the_leader():
    # the broken variant of the test above: PreVote and CheckQuorum off
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     pre_vote=False, check_quorum=False)
    c = Cluster(3, config=cfg, seed=1)
    leader = c.elect()
    follower = next(i for i in c.ids if i != leader)
    term = c.nodes[leader].term
    c.isolate(follower)
    c.tick(100)
    assert c.nodes[follower].term > term + 3
    c.heal()
    c.tick(5)
    assert c.nodes[leader].term > term     # the old leader saw the higher term and stepped down


def test_check_quorum_leader_steps_down_when_isolated():
    # thesis §6.2: a leader that cannot reach a majority within an election timeout steps down
    c = Cluster(3, seed=2)
    leader = c.elect()
    c.isolate(leader)
    c.tick(CFG.election_timeout_min_ticks * 2 + 1, only=[leader])
    assert c.nodes[leader].role == FOLLOWER


def test_leader_lease_ignores_disruptive_vote_request():
    # thesis §4.2.3 / §9.6: a server that heard from a leader recently ignores RequestVote
    c = Cluster(3, seed=3)
    leader = c.elect()
    f = next(i for i in c.ids if i != leader)
    t = c.nodes[f].term
    c.nodes[f].step(VoteRequest(t + 5, next(i for i in c.ids if i not in (leader, f)), f, False, 99, 99))
    assert c.nodes[f].term == t and c.nodes[f].leader_id == leader


# §5.3 log replication ----------------------------------------------------------------------------

def test_leader_appends_noop_on_election():
    # §8: a new leader commits a blank no-op entry at the start of its term
    c = Cluster(3, seed=0)
    leader = c.elect()
    n = c.nodes[leader]
    assert n.log.entry(n.last_log_index).command == {"op": "noop"}
    assert n.log.term(n.commit_index) == n.term


def test_replication_commits_and_applies_everywhere():
    c = Cluster(5, seed=4)
    leader = c.elect()
    idx = [c.nodes[leader].propose(put("a", i)) for i in range(10)]
    c.tick(4)
    digests = {c.nodes[i].sm.digest() for i in c.ids}
    assert len(digests) == 1 and all(c.nodes[i].applied_index >= idx[-1] for i in c.ids)
    assert c.nodes["m1"].sm.kv == {"a": 9}


def test_follower_truncates_conflicting_uncommitted_suffix():
    # §5.3: if an existing entry conflicts with a new one, delete it and all that follow
    f, _ = node_with([1, 1, 2, 2], 3, node_id="m2")
    ae = AppendEntries(3, "m1", "m2", 2, 1, tuple(make_log([1, 1, 3])[2:]), 0, 1)
    f.step(ae)
    drain(f)
    assert [f.log.term(i) for i in (1, 2, 3)] == [1, 1, 3] and f.last_log_index == 3


def test_fast_backoff_skips_a_whole_conflicting_term():
    # §5.3 (the optimisation after Figure 7): one round trip per conflicting term, not per entry
    f, _ = node_with([1] + [2] * 30, 2, node_id="m2")
    leader_log = make_log([1] + [3] * 40)
    rejections = 0
    prev = 41
    for _ in range(10):
        entries = tuple(leader_log[prev:prev + 64])
        f.step(AppendEntries(4, "m1", "m2", prev, leader_log[prev - 1].term, entries, 0, 1))
        resp = [m for m in drain(f) if isinstance(m, AppendResponse)][-1]
        if resp.success:
            break
        rejections += 1
        # the leader's rule: last index of hint_term in its log, else hint_index
        has = [e.index for e in leader_log if e.term == resp.hint_term]
        prev = (has[-1] + 1 if has else resp.hint_index) - 1
    assert resp.success and rejections == 2
    assert f.last_log_index == 41 and f.log.term(41) == 3


def test_commit_rule_figure8_old_term_not_committed_by_counting():
    # §5.4.2 / Figure 8: a leader never commits an entry of an earlier term by counting replicas
    for bug, want in (("none", 0), ("commit_old_term", 2)):
        n, _ = node_with([1, 2], 3, config=RaftConfig(pre_vote=False).with_bug(bug))
        n.tick()
        for _ in range(40):
            n.tick()
            if n.role == CANDIDATE:
                break
        n.step(VoteResponse(n.term, "m2", "m1", False, True))
        assert n.role == LEADER and n.last_log_index == 3            # no-op of term 4 at index 3
        drain(n)
        n.step(AppendResponse(n.term, "m2", "m1", True, 2, 0, 0, 0))  # m2 holds index 2 only
        drain(n)
        assert n.commit_index == want, bug
        n.step(AppendResponse(n.term, "m2", "m1", True, 3, 0, 0, 0))
        drain(n)
        assert n.commit_index == 3                                   # commits 1..3 via the no-op


# §7 snapshots ---------------------------------------------------------------------------------------

def test_snapshot_installs_on_a_lagging_follower():
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     snapshot_threshold=5)
    c = Cluster(3, config=cfg, seed=5)
    leader = c.elect()
    lag = next(i for i in c.ids if i != leader)
    c.isolate(lag)
    for i in range(20):
        c.nodes[leader].propose(put("k", i))
        c.tick(1, only=[x for x in c.ids if x != lag])
    assert c.nodes[leader].log.snap_index > c.nodes[lag].last_log_index
    c.heal()
    c.tick(20)
    assert c.nodes[lag].sm.digest() == c.nodes[leader].sm.digest()
    assert any(e["type"] == "snapshot" for e in c.events[lag])


# crash and restart -------------------------------------------------------------------------------

def test_restart_recovers_term_vote_log_and_state():
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     snapshot_threshold=4)
    c = Cluster(3, config=cfg, seed=6)
    leader = c.elect()
    for i in range(7):
        c.nodes[leader].propose(put("x", i))
    c.tick(3)
    f = next(i for i in c.ids if i != leader)
    before = (c.nodes[f].term, c.nodes[f].vote, c.nodes[f].last_log_index, c.nodes[f].sm.digest())
    c.crash(f)
    c.start(f, salt=1)
    n = c.nodes[f]
    assert (n.term, n.vote, n.last_log_index, n.sm.digest()) == before


# client requests ---------------------------------------------------------------------------------

def test_propose_on_follower_raises_not_leader_with_hint():
    c = Cluster(3, seed=0)
    leader = c.elect()
    f = next(i for i in c.ids if i != leader)
    with pytest.raises(NotLeader) as e:
        c.nodes[f].propose(put("a", 1))
    assert e.value.leader_hint == leader


def test_propose_bounded_by_uncommitted_entries():
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     max_uncommitted_entries=5)
    c = Cluster(3, config=cfg, seed=0)
    leader = c.elect()
    c.isolate(leader)
    with pytest.raises(Busy):
        for i in range(10):
            c.nodes[leader].propose(put("a", i))


def test_retried_write_applies_once_through_raft():
    c = Cluster(3, seed=0)
    leader = c.elect()
    cmd = {"op": "kv.cas", "key": "a", "expected": None, "value": 1, "client_id": "c1", "seq": 1}
    i1 = c.nodes[leader].propose(dict(cmd))
    i2 = c.nodes[leader].propose(dict(cmd))
    c.tick(3)
    res = {r.index: r.result for r in c.results[leader]}
    assert res[i1] == {"ok": True} and res[i2] == {"ok": True, "duplicate": True}


# linearizable reads: ReadIndex (thesis §6.4) ----------------------------------------------------------

def test_read_index_waits_for_a_heartbeat_quorum():
    c = Cluster(3, seed=0)
    leader = c.elect()
    n = c.nodes[leader]
    c.nodes[leader].read_index("r1")
    c.pump(leader)
    assert c.read_states[leader] == []          # not before a majority confirmed leadership
    c.deliver()
    assert [(r.ctx, r.index) for r in c.read_states[leader]] == [("r1", n.commit_index)]


def test_read_index_on_isolated_leader_is_never_confirmed():
    c = Cluster(3, seed=0)
    leader = c.elect()
    c.isolate(leader)
    c.nodes[leader].read_index("r1")
    c.tick(CFG.election_timeout_min_ticks * 2 + 1, only=[leader])
    assert c.read_states[leader] == []
    assert any("r1" in rd.dropped_reads for rd in c.readies[leader])    # failed on step-down


def test_read_index_stale_read_bug_answers_without_confirmation():
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20,
                     heartbeat_ticks=2).with_bug("stale_read")
    c = Cluster(3, config=cfg, seed=0)
    leader = c.elect()
    c.isolate(leader)
    c.nodes[leader].read_index("r1")
    c.pump(leader)
    assert [r.ctx for r in c.read_states[leader]] == ["r1"]


def test_read_index_waits_for_the_leaders_first_commit():
    # thesis §6.4 step 1: the leader's commit index is only current once its no-op is committed
    n, _ = node_with([1, 2], 3, config=RaftConfig(pre_vote=False))
    for _ in range(40):
        n.tick()
        if n.role == CANDIDATE:
            break
    n.step(VoteResponse(n.term, "m2", "m1", False, True))
    drain(n)
    n.read_index("r")
    seq = [m for m in drain(n) if isinstance(m, AppendEntries)][-1].seq
    n.step(AppendResponse(n.term, "m2", "m1", True, 2, 0, 0, seq))
    rd = n.ready()
    assert rd is None or not rd.read_states          # confirmed, but the no-op is not committed yet
    if rd:
        n.advance(rd)
    n.step(AppendResponse(n.term, "m2", "m1", True, 3, 0, 0, seq))
    rd = n.ready()
    assert [(r.ctx, r.index) for r in rd.read_states] == [("r", 3)]


def test_ready_must_be_advanced_before_the_next():
    c = Cluster(1)
    n = c.nodes["m1"]
    for _ in range(30):
        n.tick()
    rd = n.ready()
    assert rd is not None
    with pytest.raises(RuntimeError):
        n.ready()
    n.advance(rd)


def test_pipelining_bounded_by_max_inflight_messages():
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     max_inflight_messages=3)
    c = Cluster(3, config=cfg, seed=0)
    leader = c.elect()
    n = c.nodes[leader]
    f = next(i for i in c.ids if i != leader)
    c.cut.add((f, leader))                     # the follower's answers are lost
    c.inflight.clear()
    for i in range(10):
        n.propose(put("a", i))
        c.pump(leader)
    sent = [m for m in c.inflight if isinstance(m, AppendEntries) and m.dst == f and m.entries]
    assert len(sent) == 3 and n.counters["inflight_bound_hits"] >= 7


def test_restart_journals_the_recovered_commit_before_reapplying():
    """A node killed during an fsync keeps its commit record (the OS has it) but loses the journal
    lines of that Ready. Restarted, it re-applies up to the recovered commit index; the journal must
    say that commit index first, or the raft-safety checker sees applies past the journaled commit
    (seen once in CI). Pinned on a single-node cluster with a real restart from the same storage."""
    from chaos.checkers.raft_safety import check_journals

    st = MemoryStorage()
    n = RaftNode("m1", ["m1"], st, CFG, random.Random(0))
    for _ in range(CFG.election_timeout_max_ticks):
        n.tick()
    journal: list = []
    seq = iter(range(1, 10_000))

    def drive(node, boot, keep=True):
        rd = node.ready()
        if rd is None:
            return False
        st.persist(rd.hard_state, rd.entries, rd.snapshot)
        st.sync()
        # the journal lines are written after the fsync: a kill in between loses them. In a
        # 3-node cluster the entry's append was journaled by an earlier Ready and the kill takes
        # the commit and apply lines (the CI case); one node does both in one Ready, so keep=False
        # drops just those.
        lost = () if keep else ("commit", "apply")
        journal.extend(dict(e, node="m1", boot=boot, seq=next(seq)) for e in rd.events if e["type"] not in lost)
        node.advance(rd)
        return True

    journal.append({"node": "m1", "boot": 1, "seq": next(seq), "type": "boot"})
    while drive(n, 1):
        pass
    for i in range(3):
        n.propose(put(f"k{i}", i))
        drive(n, 1)
    n.propose(put("lost", 9))
    assert drive(n, 1, keep=False)   # durable in storage, missing from the journal: the kill
    recovered_commit = st.load().hard_state.commit
    assert recovered_commit == n.commit_index

    journal.append({"node": "m1", "boot": 2, "seq": next(seq), "type": "boot"})
    n2 = RaftNode("m1", ["m1"], st, CFG, random.Random(1))
    first = n2.ready()
    kinds = [(e["type"], e.get("index")) for e in first.events if e["type"] in ("commit", "apply")]
    assert kinds[0] == ("commit", recovered_commit)
    journal.extend(dict(e, node="m1", boot=2, seq=next(seq)) for e in first.events)
    n2.advance(first)
    assert check_journals({"m1": journal}).verdict == "VALID"
    without = [e for e in journal if not e.get("recovered")]
    assert check_journals({"m1": without}).verdict == "INVALID"


def test_restart_journals_the_recovered_log_so_a_lost_append_line_is_no_gap():
    """The random-soak experiment found it on containers: a node SIGKILLed after an entry's fsync but
    before its journal line restarted, appended the next entry, and raft-safety saw "append at index
    i+1 with no entry at i" (log-matching) on a correct node. Restarted, the core journals the log it
    recovered (`recovered: true`); pinned on a single node restarted from the same storage."""
    from chaos.checkers.raft_safety import check_journals

    st = MemoryStorage()
    n = RaftNode("m1", ["m1"], st, CFG, random.Random(0))
    for _ in range(CFG.election_timeout_max_ticks):
        n.tick()
    journal: list = []
    seq = iter(range(1, 10_000))

    def drive(node, boot, lose=()):
        rd = node.ready()
        if rd is None:
            return False
        st.persist(rd.hard_state, rd.entries, rd.snapshot)
        st.sync()
        journal.extend(dict(e, node="m1", boot=boot, seq=next(seq)) for e in rd.events if e["type"] not in lose)
        node.advance(rd)
        return True

    journal.append({"node": "m1", "boot": 1, "seq": next(seq), "type": "boot"})
    while drive(n, 1):
        pass
    for i in range(3):
        n.propose(put(f"k{i}", i))
        drive(n, 1)
    n.propose(put("lost", 9))
    assert drive(n, 1, lose=("append", "commit", "apply"))   # the kill: durable, never journaled
    journal.append({"node": "m1", "boot": 2, "seq": next(seq), "type": "boot"})
    n2 = RaftNode("m1", ["m1"], st, CFG, random.Random(1))
    for _ in range(CFG.election_timeout_max_ticks * 2):
        n2.tick()
        drive(n2, 2)
    n2.propose(put("after", 1))
    while drive(n2, 2):
        pass
    assert any(e.get("recovered") and e["type"] == "append" for e in journal)
    assert check_journals({"m1": journal}).verdict == "VALID"
    without = [e for e in journal if not (e.get("recovered") and e["type"] == "append")]
    out = check_journals({"m1": without})
    assert out.verdict == "INVALID" and "log-matching" in out.summary


def test_deferred_proposals_go_out_together_in_one_append_per_peer():
    """Group commit (the agent's driver): proposals with send=False are appended but not sent;
    send_appends() sends them all in one AppendEntries per peer, and they commit everywhere."""
    c = Cluster(3, seed=2)
    leader = c.elect()
    n = c.nodes[leader]
    c.deliver()
    c.inflight.clear()
    idx = [n.propose(put(f"k{i}", i), send=False) for i in range(5)]
    c.pump(leader)
    assert not [m for m in c.inflight if isinstance(m, AppendEntries) and m.entries]
    n.send_appends()
    c.pump(leader)
    sent = [m for m in c.inflight if isinstance(m, AppendEntries) and m.entries]
    assert sorted(m.dst for m in sent) == sorted(i for i in c.ids if i != leader)
    assert all([e.index for e in m.entries] == idx for m in sent)
    c.deliver()
    assert n.applied_index >= idx[-1]
    c.tick(4)                  # the followers learn the commit index from the next append
    assert all(c.nodes[i].applied_index >= idx[-1] for i in c.ids)
    assert {c.nodes[i].sm.kv.get("k4") for i in c.ids} == {4}


def test_send_appends_on_a_follower_sends_nothing():
    c = Cluster(3, seed=2)
    leader = c.elect()
    c.deliver()
    f = next(i for i in c.ids if i != leader)
    c.inflight.clear()
    c.nodes[f].send_appends()
    c.pump(f)
    assert not any(isinstance(m, AppendEntries) for m in c.inflight)
