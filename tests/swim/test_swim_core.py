"""Unit scenarios for the SWIM core, driven by hand (no simulator). Each cites the rule it checks:
SWIM = Das et al. 2002, Lifeguard = Dadgar et al. 2018.
Must not import: chaos or anything beyond swarmnode.swim.
"""

import random

import pytest

from swarmnode.swim import (Ack, EndpointUpdate, Gossip, MemberUpdate, Nack, Ping, PingReq, PushPull,
                            SwimConfig, SwimNode, retransmit_limit, suspicion_min_ms,
                            suspicion_timeout_ms)

CFG = SwimConfig()


def make(node_id, others=(), cfg=CFG, seed=0):
    n = SwimNode(node_id, cfg, random.Random(seed), [])
    n.assume_members(others)
    n.poll()
    return n


def msgs(node, cls=None):
    out = node.poll().messages
    return [m for m in out if cls is None or isinstance(m, cls)]


def test_core_ping_is_answered_with_ack_of_same_seq():
    b = make("b", ["a"])
    b.step(Ping("a", "b", (), 41), 10)
    (ack,) = msgs(b)
    assert isinstance(ack, Ack) and ack.dst == "a" and ack.seq == 41


def test_core_probe_acked_keeps_member_alive_and_no_suspicion():
    a = make("a", ["b"])
    a.tick(a.next_deadline_ms())
    (ping,) = msgs(a, Ping)
    a.step(Ack("b", "a", (), ping.seq), a.now_ms + 5)
    a.tick(a.now_ms + CFG.probe_interval_ms)
    assert a.members()["b"] == ("alive", 0)
    assert a.counters["suspicions_started"] == 0


def test_core_swim_4_2_suspected_member_refutes_with_higher_incarnation():
    b = make("b", ["a", "c"])
    b.step(Ping("a", "b", (MemberUpdate("suspect", "b", 0, "a"),), 1), 5)
    out = b.poll()
    assert b.incarnation == 1
    assert {"type": "member", "member": "b", "state": "alive", "incarnation": 1} in out.events
    ack = [m for m in out.messages if isinstance(m, Ack)][0]
    assert MemberUpdate("alive", "b", 1, "b") in ack.updates     # refutation rides on the ack
    a = make("a", ["b", "c"])
    a.step(Ping("c", "a", (MemberUpdate("suspect", "b", 0, "c"),), 1), 1)
    assert a.members()["b"] == ("suspect", 0)
    a.step(ack, 6)
    assert a.members()["b"] == ("alive", 1)


def test_core_swim_4_2_stale_incarnations_are_ignored():
    a = make("a", ["b", "c"])
    a.step(Ping("c", "a", (MemberUpdate("alive", "b", 2, "b"),), 1), 1)
    assert a.members()["b"] == ("alive", 2)
    a.step(Ping("c", "a", (MemberUpdate("suspect", "b", 1, "c"), MemberUpdate("dead", "b", 1, "c"),
                           MemberUpdate("alive", "b", 1, "b")), 2), 2)
    assert a.members()["b"] == ("alive", 2)
    # an alive at the same incarnation does not clear a suspicion; a higher one does
    a.step(Ping("c", "a", (MemberUpdate("suspect", "b", 2, "c"),), 3), 3)
    a.step(Ping("c", "a", (MemberUpdate("alive", "b", 2, "b"),), 4), 4)
    assert a.members()["b"] == ("suspect", 2)
    # dead beats suspect at the same incarnation; only a higher alive brings it back
    a.step(Ping("c", "a", (MemberUpdate("dead", "b", 2, "c"),), 5), 5)
    assert a.members()["b"] == ("dead", 2)
    a.step(Ping("c", "a", (MemberUpdate("alive", "b", 2, "b"),), 6), 6)
    assert a.members()["b"] == ("dead", 2)
    a.step(Ping("c", "a", (MemberUpdate("alive", "b", 3, "b"),), 7), 7)
    assert a.members()["b"] == ("alive", 3)


def test_core_rumours_about_unknown_members_do_not_create_them_unless_alive():
    a = make("a", ["c"])
    a.step(Ping("c", "a", (MemberUpdate("dead", "x", 0, "c"), MemberUpdate("suspect", "y", 0, "c")), 1))
    assert "x" not in a.members() and "y" not in a.members()
    a.step(Ping("c", "a", (MemberUpdate("alive", "z", 4, "z"),), 2))
    assert a.members()["z"] == ("alive", 4)


def test_core_lifeguard_suspicion_timeout_shrinks_with_independent_confirmations():
    ids = [f"n{i}" for i in range(10)]
    a = make("a", ids)
    n = 11
    lo = suspicion_min_ms(n, CFG.probe_interval_ms, CFG.suspicion_mult)
    hi = lo * CFG.suspicion_max_mult
    k = CFG.suspicion_confirmations_k
    a.step(Ping("n1", "a", (MemberUpdate("suspect", "n9", 0, "n1"),), 1), 1000)
    s = a._suspicions["n9"]
    assert s.deadline_ms == 1000 + hi
    a.step(Ping("n1", "a", (MemberUpdate("suspect", "n9", 0, "n1"),), 2), 1100)  # same accuser again
    assert s.deadline_ms == 1000 + hi
    a.step(Ping("n2", "a", (MemberUpdate("suspect", "n9", 0, "n2"),), 3), 1200)
    assert s.deadline_ms == 1000 + suspicion_timeout_ms(1, k, lo, hi) < 1000 + hi
    a.step(Ping("n3", "a", (MemberUpdate("suspect", "n9", 0, "n3"),), 4), 1300)
    assert s.deadline_ms == 1000 + lo
    a.tick(1000 + lo - 1)
    assert a.members()["n9"] == ("suspect", 0)
    a.tick(1000 + lo)
    assert a.members()["n9"] == ("dead", 0)


def _failed_probe(a, nacks):
    a.tick(a.next_deadline_ms())
    (ping,) = msgs(a, Ping)
    a.tick(ping.seq and a.now_ms + CFG.probe_timeout_ms)
    reqs = msgs(a, PingReq)
    assert len(reqs) == CFG.indirect_checks and all(r.target == ping.dst for r in reqs)
    for r in reqs[:nacks]:
        a.step(Nack(r.dst, "a", (), r.seq), a.now_ms + 10)
    start = a.now_ms
    a.tick(a.next_deadline_ms())
    return ping.dst, start


def test_core_lifeguard_missing_nacks_raise_local_health_and_slow_probing():
    a = make("a", ["b", "c", "d", "e"])
    target, _ = _failed_probe(a, nacks=0)
    assert a.health == CFG.indirect_checks          # every expected nack missed: we may be the problem
    assert a.members()[target][0] == "suspect"
    t0 = a.now_ms
    a.tick(a.next_deadline_ms())
    msgs(a)
    assert a._probe is not None
    assert a._probe.end_ms - a._probe.start_ms == CFG.probe_interval_ms * (a.health + 1)
    assert a.now_ms >= t0
    # the direct probe's timeout is scaled as well (Lifeguard IV-A): no ping-req before it
    scaled = min(CFG.probe_timeout_ms * (a.health + 1), CFG.probe_interval_ms * (a.health + 1) - 1)
    assert a._probe.direct_deadline_ms - a._probe.start_ms == scaled > CFG.probe_timeout_ms
    a.tick(a._probe.start_ms + CFG.probe_timeout_ms)
    assert msgs(a, PingReq) == []
    a.tick(a._probe.direct_deadline_ms)
    assert len(msgs(a, PingReq)) == CFG.indirect_checks


def test_core_lifeguard_nacks_blame_the_target_not_ourselves():
    a = make("a", ["b", "c", "d", "e"])
    target, _ = _failed_probe(a, nacks=CFG.indirect_checks)
    assert a.health == 0
    assert a.members()[target][0] == "suspect"


def test_core_swim_4_1_ping_req_relays_the_ack_or_sends_a_nack():
    r = make("r", ["a", "t"])
    r.step(PingReq("a", "r", (), 77, "t"), 100)
    (ping,) = msgs(r, Ping)
    assert ping.dst == "t"
    r.step(Ack("t", "r", (), ping.seq), 120)
    (relayed,) = msgs(r, Ack)
    assert relayed.dst == "a" and relayed.seq == 77
    r.step(PingReq("a", "r", (), 78, "t"), 200)
    msgs(r)
    r.tick(200 + CFG.probe_timeout_ms)
    (nack,) = msgs(r, Nack)
    assert nack.dst == "a" and nack.seq == 78


def test_core_relays_are_bounded_and_refusals_counted():
    r = make("r", ["a", "t"], cfg=CFG.replace(max_relays=2))
    for s in range(5):
        r.step(PingReq("a", "r", (), s, "t"), 1)
    assert len(msgs(r, Ping)) == 2 and r.counters["relays_refused"] == 3


def test_core_lifeguard_buddy_system_ping_to_suspect_carries_the_suspicion():
    a = make("a", ["b", "c"])
    a.step(Gossip("c", "a", (MemberUpdate("suspect", "b", 0, "c"),)), 2)
    pings = []
    for _ in range(20):                      # bounded: the round-robin reaches b within 2 probes
        a.tick(a.next_deadline_ms())
        pings += [m for m in msgs(a, Ping) if m.dst == "b"]
        if pings:
            break
    assert pings and pings[0].updates[0] == MemberUpdate("suspect", "b", 0, "a")


def test_core_leave_announces_left_stops_probing_and_is_not_refuted():
    a = make("a", ["b", "c"])
    a.leave()
    out = a.poll()
    assert {"type": "member", "member": "a", "state": "left", "incarnation": 0} in out.events
    a.tick(10_000)
    sent = msgs(a)
    assert not [m for m in sent if isinstance(m, (Ping, PushPull))]
    assert any(MemberUpdate("left", "a", 0, "a") in m.updates for m in sent)
    a.step(Ping("b", "a", (MemberUpdate("dead", "a", 0, "b"),), 1), 10_001)
    assert a.members()["a"] == ("left", 0)
    b = make("b", ["a", "c"])
    b.step(sent[0], 10_002)
    assert b.members()["a"] == ("left", 0)


def test_core_retransmit_limit_bounds_how_often_a_rumour_is_sent():
    ids = [f"n{i}" for i in range(20)]
    a = make("a", ids)
    a.step(Ping("n1", "a", (MemberUpdate("alive", "x", 1, "x"),), 1), 1)
    sends = 0
    for t in range(2, 200):
        a.step(Ping("n1", "a", (), t), t)
        sends += sum(MemberUpdate("alive", "x", 1, "x") in m.updates for m in msgs(a))
    assert sends == retransmit_limit(CFG.retransmit_mult, 22)


def test_core_endpoint_versions_and_tombstones_merge_to_the_greatest():
    a = make("a", ["b"])
    a.step(Ping("b", "a", (EndpointUpdate("k", "b", 3, "v3"),), 1), 1)
    a.step(Ping("b", "a", (EndpointUpdate("k", "b", 2, "v2"),), 2), 2)
    assert a.endpoints()["k"].value == "v3"
    a.step(Ping("b", "a", (EndpointUpdate("k", "b", 3, None, True),), 3), 3)
    assert "k" not in a.endpoints() and a.endpoint_entries()["k"].deleted
    a.step(Ping("b", "a", (EndpointUpdate("k", "b", 4, "v4"),), 4), 4)
    assert a.endpoints()["k"].value == "v4"
    e = a.set_endpoint("mine", 1)
    assert e.version > 4                           # Lamport: above every version seen
    assert a.delete_endpoint("mine") and not a.delete_endpoint("mine")


def test_core_owner_reasserts_its_endpoint_when_others_tombstoned_it():
    a = make("a", ["b"])
    e = a.set_endpoint("a/t1", "10.0.0.1:80")
    msgs(a)
    a.step(Ping("b", "a", (EndpointUpdate("a/t1", "a", e.version + 1, None, True),), 1), 1)
    got = a.endpoints()["a/t1"]
    assert got.value == "10.0.0.1:80" and got.version == e.version + 2


def test_core_dead_member_endpoints_are_tombstoned_and_reaped_later():
    cfg = CFG
    a = make("a", ["b", "c"], cfg=cfg)
    a.step(Ping("b", "a", (EndpointUpdate("b/t", "b", 1, "x"),), 1), 1)
    a.step(Ping("c", "a", (MemberUpdate("dead", "b", 0, "c"),), 2), 2)
    assert "b/t" not in a.endpoints()
    a.tick(2 + cfg.reap_dead_ms + cfg.reap_dead_ms // 4)
    assert "b" not in a.members() and "b/t" not in a.endpoint_entries()


def test_core_misaddressed_messages_are_counted_and_dropped():
    a = make("a", ["b"])
    a.step(Ping("b", "zz", (), 1), 1)
    assert a.counters["misaddressed"] == 1 and not msgs(a)


def test_core_restarted_member_bumps_above_its_remembered_incarnation():
    a = SwimNode("a", CFG, random.Random(1), ["s"])
    a.join()
    a.tick(0)
    a.poll()
    a.step(PushPull("s", "a", (MemberUpdate("alive", "s", 0, "s"), MemberUpdate("alive", "a", 4, "a")),
                    False, False), 5)
    assert a.joined and a.incarnation == 5


def test_core_join_retries_are_bounded_and_counted():
    a = SwimNode("a", CFG.replace(join_max_attempts=3), random.Random(1), ["s"])
    a.join()
    for t in range(0, 10_000, 100):
        a.tick(t)
    joins = [m for m in a.poll().messages if isinstance(m, PushPull) and m.join]
    assert len(joins) == 3 and a.counters["join_gave_up"] == 1 and not a.joined


def test_core_rejects_module_random_and_bad_config():
    with pytest.raises(TypeError):
        SwimNode("a", CFG, random, [])
    with pytest.raises(ValueError):
        SwimNode("a", SwimConfig(probe_timeout_ms=900), random.Random(0), [])


def test_core_broadcast_queue_is_bounded_least_sent_first_and_counted():
    a = make("a", ["b"], cfg=CFG.replace(max_queue=5, max_piggyback=3))
    for i in range(8):
        a.step(Ping("b", "a", (MemberUpdate("alive", f"x{i}", 1, f"x{i}"),), i), i)
    assert a.queue_len() == 5 and a.counters["queue_dropped"] == 3
    first = msgs(a)[-1].updates            # every ack took the least-sent rumours first
    assert len(first) == 3


def test_core_late_tick_still_gives_relays_the_indirect_window():
    a = make("a", ["b", "c", "d", "e"])
    a.tick(a.next_deadline_ms())
    (ping,) = msgs(a, Ping)
    late = a.now_ms + 10 * CFG.probe_interval_ms        # we were paused: our own fault
    a.tick(late)
    reqs = msgs(a, PingReq)
    assert reqs and a.members()[ping.dst] == ("alive", 0)
    a.step(Ack(reqs[0].dst, "a", (), ping.seq), late + 5)   # a relay's answer arrives in time
    assert a.members()[ping.dst] == ("alive", 0) and a._probe is None
