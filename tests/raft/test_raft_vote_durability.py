"""A vote must be durable before the reply leaves (Figure 2). Scripted on 3 nodes: m1 and m2 both
campaign in term 1; m3 votes for m1 and crashes; after a restart it is asked again by m2.

With the vote_not_persisted bug m3 forgets its vote and elects m2 as well: two leaders in term 1
and two votes from m3 in one term. With the vote persisted, m3 refuses m2.
"""
from swarmnode.raft import CANDIDATE, LEADER, RaftConfig, VoteRequest, VoteResponse
from swarmnode.sim.raft_sim import SafetyChecker

from .harness import Cluster


def tick_until(c, i, pred, max_ticks=200):
    for _ in range(max_ticks):
        c.nodes[i].tick()
        c.pump(i)
        if pred(c.nodes[i]):
            return
    raise AssertionError(f"{i}: condition not reached")


def run(bug):
    cfg = RaftConfig(election_timeout_min_ticks=10, election_timeout_max_ticks=20, heartbeat_ticks=2,
                     pre_vote=False, check_quorum=False).with_bug(bug)
    c = Cluster(3, config=cfg, seed=3)
    tick_until(c, "m1", lambda n: n.role == CANDIDATE)
    tick_until(c, "m2", lambda n: n.role == CANDIDATE)
    assert c.nodes["m1"].term == c.nodes["m2"].term == 1
    c.deliver(lambda m: m.src == "m1" and m.dst == "m3")          # m3 votes for m1
    c.deliver(lambda m: m.src == "m3" and m.dst == "m1")          # m1 wins term 1
    assert c.nodes["m1"].role == LEADER
    c.crash("m3")
    c.start("m3", salt=5)
    c.inflight = [m for m in c.inflight if m.src != "m1"]           # m1's heartbeats are late
    # m2 is still a candidate in term 1 and retries its unanswered request to m3
    tick_until(c, "m2", lambda n: any(isinstance(m, VoteRequest) and m.dst == "m3" for m in c.inflight))
    c.deliver(lambda m: isinstance(m, (VoteRequest, VoteResponse)) and {m.src, m.dst} == {"m2", "m3"})
    checker = SafetyChecker(c.ids)
    for node, ev in c.timeline:
        checker.on_events(node, [ev])
    return c, {v.kind for v in checker.violations}


def test_vote_not_persisted_bug_elects_two_leaders_in_one_term():
    c, kinds = run("vote_not_persisted")
    assert c.nodes["m1"].role == LEADER and c.nodes["m2"].role == LEADER
    assert c.nodes["m1"].term == c.nodes["m2"].term
    assert {"election-safety", "vote-once"} <= kinds


def test_persisted_vote_survives_restart_and_is_not_granted_twice():
    c, kinds = run("none")
    assert c.nodes["m3"].vote == "m1"
    assert c.nodes["m2"].role != LEADER and kinds == set()
