"""The Figure 8 scenario of the Raft paper (§5.4.2), scripted step by step on 5 nodes.

With the commit_old_term bug the leader of term 3 commits index 2 (an entry of term 1) by counting
replicas; then m5 wins term 4 without it and overwrites it: the checker sees a committed entry lost.
Without the bug the same schedule is safe. PreVote/CheckQuorum are off because the paper's scenario
does not need them, and one entry per message lets index 2 reach a majority before index 3.
"""
from swarmnode.raft import LEADER, AppendResponse, RaftConfig, VoteRequest, VoteResponse
from swarmnode.sim.raft_sim import SafetyChecker

from .harness import Cluster


def is_vote(m):
    return isinstance(m, (VoteRequest, VoteResponse))


def win(c, i, max_ticks=400):
    """Tick only node i and deliver only election traffic until i leads."""
    node = c.nodes[i]
    for _ in range(max_ticks):
        node.tick()
        c.pump(i)
        c.deliver(is_vote)
        if node.role == LEADER:
            return
    raise AssertionError(f"{i} did not win (term {node.term}, role {node.role})")


def crash_and_forget(c, i):
    c.crash(i)
    c.inflight = [m for m in c.inflight if m.src != i]


def run_figure8(bug):
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     pre_vote=False, check_quorum=False, max_entries_per_message=1).with_bug(bug)
    c = Cluster(5, config=cfg, seed=8)
    win(c, "m1")                                     # term 1, no-op at index 1
    c.deliver()
    c.tick(2, only=["m1"])
    assert all(c.nodes[i].commit_index == 1 for i in c.ids)
    # (a) m1 replicates index 2 (term 1) to m2 only, then crashes
    c.cut |= {("m1", x) for x in ("m3", "m4", "m5")}
    c.nodes["m1"].propose({"op": "kv.put", "key": "x", "value": 1})
    c.pump("m1")
    c.deliver()
    assert c.nodes["m2"].last_log_index == 2
    crash_and_forget(c, "m1")
    c.heal()
    # (b) m5 wins term 2 with m3, m4; its no-op (index 2, term 2) never leaves; it crashes
    c.cut |= {("m5", "m2"), ("m2", "m5")}
    win(c, "m5")
    assert c.nodes["m5"].term == 2 and c.nodes["m5"].log.term(2) == 2
    crash_and_forget(c, "m5")
    c.heal()
    # (c) m1 restarts, wins term 3 and sends index 2 to m3; stop once m3 acknowledges index 2
    c.start("m1", salt=7)
    win(c, "m1")
    assert c.nodes["m1"].term == 3
    c.cut |= {("m1", "m4"), ("m1", "m5")}
    c.nodes["m1"].tick()
    c.pump("m1")
    c.deliver_until(lambda m: isinstance(m, AppendResponse) and m.src == "m3" and m.match_index == 2)
    committed_old = c.nodes["m1"].commit_index >= 2
    crash_and_forget(c, "m1")
    c.heal()
    # (d) m5 restarts and wins term 4 with m3 and m4 (its last term 2 beats their term 1 entry)
    c.start("m5", salt=9)
    win(c, "m5")
    c.deliver()
    c.tick(4, only=["m5"])
    checker = SafetyChecker(c.ids)
    for node, ev in c.timeline:
        checker.on_events(node, [ev])
    return committed_old, checker.violations, c


def test_figure8_commit_old_term_bug_loses_a_committed_entry():
    committed_old, violations, c = run_figure8("commit_old_term")
    assert committed_old
    kinds = {v.kind for v in violations}
    assert "leader-completeness" in kinds, violations     # m5 leads term 4 without committed index 2
    assert c.nodes["m3"].log.term(2) == 2                 # the committed entry was overwritten


def test_figure8_correct_commit_rule_is_safe():
    committed_old, violations, c = run_figure8("none")
    assert not committed_old
    assert violations == []
    assert c.nodes["m5"].role == LEADER and c.nodes["m3"].log.term(2) == 2   # overwritten, never committed
