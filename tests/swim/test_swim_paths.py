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
