"""Paths of the SWIM core that mutation testing (benchmarks/mutation.py) found unjudged by the
simulators and the other tests. Driven by hand, like test_swim_core.py.
Must not import: chaos or anything beyond swarmnode.swim.
"""
import random

from swarmnode.swim import Gossip, MemberUpdate, PushPull, SwimConfig, SwimNode

CFG = SwimConfig()


def make(node_id, others=(), cfg=CFG, seed=0, seeds=()):
    n = SwimNode(node_id, cfg, random.Random(seed), list(seeds))
    n.assume_members(others)
    n.poll()
    return n


def test_swim_join_tries_each_seed_join_max_attempts_times_then_gives_up():
    """join() retries the seeds every join_retry_ms, at most join_max_attempts rounds."""
    cfg = CFG.replace(join_max_attempts=4, join_retry_ms=100)
    n = SwimNode("w2", cfg, random.Random(0), ["w1"])
    n.join()
    joins = 0
    t = 0
    for _ in range(50):
        n.tick(t)
        joins += sum(1 for m in n.poll().messages if isinstance(m, PushPull) and m.join)
        t += 100
    assert joins == 4 and n.counters["join_gave_up"] == 1 and not n.joined


def test_swim_has_endpoint_false_for_unknown_and_deleted_keys():
    n = make("w1")
    n.set_endpoint("w1/a", 1)
    assert n.has_endpoint("w1/a") and not n.has_endpoint("w1/b")
    n.delete_endpoint("w1/a")
    assert not n.has_endpoint("w1/a")


def test_swim_assume_members_again_does_not_revive_a_dead_member():
    """Static bootstrap only adds members it does not know: a member known dead stays dead (SWIM
    4.2: only a newer incarnation brings it back)."""
    n = make("w1", ["w2", "w3"])
    n.step(Gossip("w3", "w1", (MemberUpdate("dead", "w2", 0, "w3"),)), 10)
    assert n.members()["w2"] == ("dead", 0)
    n.assume_members(["w2", "w3"])
    assert n.members()["w2"] == ("dead", 0)


def test_swim_endpoint_tombstone_is_dropped_after_its_ttl():
    """Bounded memory: a deleted endpoint's tombstone is kept tombstone_ttl_ms, then forgotten."""
    n = make("w1")
    n.set_endpoint("w1/a", 1)
    n.delete_endpoint("w1/a")
    assert "w1/a" in n.endpoint_entries()
    t = 0
    while t < CFG.tombstone_ttl_ms + 2 * max(1000, CFG.tombstone_ttl_ms // 8):
        t += 500
        n.tick(t)
        n.poll()
    assert "w1/a" not in n.endpoint_entries()


def test_swim_gone_members_and_tombstones_are_kept_for_their_whole_retention():
    """SwimConfig: dead members are forgotten reap_dead_ms after they died and a deleted endpoint
    is kept tombstone_ttl_ms "so the deletion" spreads -- not earlier, at any age of the node:
    forgetting early lets stale state bring a dead member or a deleted endpoint back. (The end of
    retention is tested above.)"""
    from swarmnode.swim import EndpointUpdate, Ping
    n = make("a")
    t0 = 3 * max(CFG.reap_dead_ms, CFG.tombstone_ttl_ms)     # a node that has run a while
    for t in range(0, t0 + 1, 5_000):
        n.tick(t)
        n.poll()
    n.assume_members(["b", "c"])
    n.step(Ping("b", "a", (EndpointUpdate("b/t", "b", 1, "x"),), 1), t0)
    n.set_endpoint("a/x", 1)
    n.delete_endpoint("a/x")
    n.step(Ping("c", "a", (MemberUpdate("dead", "b", 0, "c"),), 2), t0)
    assert n.members()["b"][0] == "dead"
    t = t0
    while t + 500 < t0 + CFG.reap_dead_ms:
        t += 500
        n.tick(t)
        n.poll()
        assert "b" in n.members(), t - t0
        if t < t0 + CFG.tombstone_ttl_ms:
            assert "a/x" in n.endpoint_entries(), t - t0
