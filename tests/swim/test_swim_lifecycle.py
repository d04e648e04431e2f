"""Contracts of one SWIM node's lifecycle and timing, checked on what it sends and records:
joining and leaving, the end of a rumour's life, cluster-size scaled intervals (SwimConfig's
formulas against observed timings), the broadcast queue against a naive model, and the Lamport
clock of the endpoint table. Each check has a deliberately wrong core (a small subclass or a
patched formula, never a copy of a mutant) on which it fires.

A node is driven alone: ticked at its own `next_deadline_ms()`, its pings answered at once by the
targets (so nobody is suspected unless a test says so), every call's messages checked with
`swim_checks.rumours_beyond_view`.
Must not import: chaos, asyncio, socket.
"""
import random

import pytest

import swarmnode.swim.core as swim_core
from swarmnode.sim.swim_checks import leaver_violations, rumour_sends_over_limit, rumours_beyond_view
from swarmnode.swim import (Ack, EndpointUpdate, Gossip, MemberUpdate, Ping, PingReq, PushPull, SwimConfig,
                            SwimNode, pushpull_scaled_ms, retransmit_limit, suspicion_k, suspicion_min_ms,
                            suspicion_timeout_ms)
from swarmnode.swim.core import _BroadcastQueue

CFG = SwimConfig()
MAX_CALLS = 200_000          # bound on one driver run (hitting it fails the test, never silent)


class Driver:
    """Drives one node alone and keeps what it sent (t, msg), its events (t, event) and the
    findings of `rumours_beyond_view` for every call."""

    def __init__(self, node: SwimNode, answer=lambda target: True):
        self.node = node
        self.answer = answer
        self.sent: list = []
        self.events: list = []
        self.findings: list = []
        node.poll()

    def _call(self, fn):
        before = self.node.members()
        fn()
        out = self.node.poll()
        self.findings += rumours_beyond_view(self.node.id, before, self.node.members(), out.messages)
        t = self.node.now_ms
        self.sent += [(t, m) for m in out.messages]
        self.events += [(t, e) for e in out.events]
        return out

    def step(self, msg, t):
        return self._call(lambda: self.node.step(msg, t))

    def local(self, fn):
        return self._call(lambda: fn(self.node))

    def run_until(self, t_end: int, stop=lambda out: False):
        for _ in range(MAX_CALLS):
            d = self.node.next_deadline_ms()
            if d > t_end:
                self.node.tick(t_end)
                self._call(lambda: None)
                return
            out = self._call(lambda: self.node.tick(d))
            for m in out.messages:
                if isinstance(m, Ping) and self.answer(m.dst):
                    self.step(Ack(m.dst, m.src, (), m.seq), d)
            if stop(out):
                return
        pytest.fail(f"driver bound of {MAX_CALLS} calls hit before t={t_end}")

    def pings_to(self, target, since=0):
        return [t for t, m in self.sent if isinstance(m, Ping) and m.dst == target and t >= since]


def node(node_id="a", others=(), cfg=CFG, seed=0, seeds=(), factory=SwimNode):
    n = factory(node_id, cfg, random.Random(seed), list(seeds))
    n.assume_members(others)
    return n


def peers(k):
    return [f"p{i:03d}" for i in range(k)]


# --- joining: a member that joined is probed, and a joiner probes (SWIM 4.3 round-robin) ---------------

def round_robin_bound_ms(n, cfg=CFG):
    """SWIM 4.3: probe targets are taken round-robin from a list shuffled each round, and a new
    member is inserted at a random place of the current round: each live member is probed within
    two rounds of n - 1 probe periods."""
    return 2 * (n - 1) * cfg.probe_interval_ms


class NeverProbesLateJoiners(SwimNode):
    """Wrong: a member learned after start-up is remembered and gossiped about but never probed."""

    def _add_member(self, mid, state, incarnation):
        super()._add_member(mid, state, incarnation)
        if self._now > 0 and mid in self._live_pos:
            self._live_remove(mid)
            self._probe_order.remove(mid)


def joined_member_probe_findings(factory):
    """A member that joins the group is probed by an old member, and the joiner, once a seed
    answered its join, probes every member it learned; both within the round-robin bound."""
    found = []
    old = Driver(node("a", peers(7), factory=factory))
    old.run_until(3_000)
    old.step(Gossip("p000", "a", (MemberUpdate("alive", "x", 0, "x"),)), 3_000)
    old.run_until(3_000 + round_robin_bound_ms(9))
    if not old.pings_to("x", since=3_000):
        found.append("old member a never probed the newcomer x")
    joiner = Driver(factory("x", CFG, random.Random(1), ["a"], 0))
    joiner.local(lambda n: n.join())
    state = tuple(MemberUpdate("alive", m, 0, m) for m in ["a"] + peers(7))
    joiner.step(PushPull("a", "x", state, False, False), 100)
    if not joiner.node.joined:
        found.append("joiner not joined after the seed answered")
    joiner.run_until(100 + round_robin_bound_ms(9))
    found += [f"joiner x never probed {m}" for m in ["a"] + peers(7) if not joiner.pings_to(m)]
    return found + old.findings + joiner.findings


def test_swim_joined_member_is_probed_and_joiner_probes_within_round_robin_bound():
    assert joined_member_probe_findings(SwimNode) == []


def test_swim_join_probe_check_fires_on_a_core_that_never_probes_late_joiners():
    found = joined_member_probe_findings(NeverProbesLateJoiners)
    assert any("never probed the newcomer" in f for f in found)
    assert any("joiner x never probed" in f for f in found)


# --- gone members are not probed; a leaver stops probing and accusing --------------------------------

class ProbesEveryone(SwimNode):
    """Wrong: the probe round-robin runs over every known member, gone ones included."""

    def _next_probe_target(self):
        order = sorted(m for m in self._members if m != self.id)
        self._probe_idx = (self._probe_idx + 1) % len(order)
        return order[self._probe_idx]


def gone_member_probes(factory):
    """Times at which a node pinged a member after it saw it left or dead (SWIM: only live
    members are probed; a dead member is reached only by push-pull reconnects)."""
    d = Driver(node("a", peers(5), factory=factory))
    d.run_until(2_000)
    d.step(Gossip("p001", "a", (MemberUpdate("left", "p000", 0, "p000"),
                                MemberUpdate("dead", "p001", 0, "p002"))), 2_000)
    assert d.node.members()["p000"] == ("left", 0) and d.node.members()["p001"] == ("dead", 0)
    d.run_until(2_000 + 3 * round_robin_bound_ms(6))
    return d.pings_to("p000", since=2_001) + d.pings_to("p001", since=2_001) + d.findings


def test_swim_left_and_dead_members_are_not_probed():
    assert gone_member_probes(SwimNode) == []


def test_swim_gone_member_probe_check_fires_on_a_core_that_probes_everyone():
    assert gone_member_probes(ProbesEveryone)


class KeepsProbeOnLeave(SwimNode):
    """Wrong: a probe in flight when leave() is called runs to its end (indirect probes, a
    suspicion raised by a member that is leaving)."""

    def leave(self):
        p = self._probe
        super().leave()
        self._probe = p


def leave_with_probe_in_flight(factory):
    d = Driver(node("a", peers(5), factory=factory), answer=lambda target: False)
    d.run_until(10_000, stop=lambda out: any(isinstance(m, Ping) for m in out.messages))
    t_leave, n_sent, n_events = d.node.now_ms, len(d.sent), len(d.events)
    assert isinstance(d.sent[-1][1], Ping), "setup: a probe is in flight"
    d.local(lambda n: n.leave())
    d.run_until(t_leave + 20 * CFG.probe_interval_ms)
    after = [m for _, m in d.sent[n_sent:]]
    events = [e for _, e in d.events[n_events:]]
    left = MemberUpdate("left", "a", 0, "a")
    assert any(left in m.updates for m in after if not isinstance(m, PushPull)), "left is announced"
    return leaver_violations("a", after, events) + d.findings


def test_swim_leaver_stops_probing_and_accuses_no_one_even_with_a_probe_in_flight():
    """SwimNode.leave: "announce `left` ... and stop probing" -- including the probe under way."""
    assert leave_with_probe_in_flight(SwimNode) == []


def test_swim_leaver_check_fires_on_a_core_that_finishes_its_probe():
    found = leave_with_probe_in_flight(KeepsProbeOnLeave)
    assert any("PingReq" in f for f in found) and any(f.startswith("suspect") for f in found)


class ReannouncesOnEveryLeave(SwimNode):
    """Wrong: each call of leave() queues the `left` rumour afresh (its transmit count restarts)."""

    def leave(self):
        super().leave()
        self._enqueue_member(MemberUpdate("left", self.id, self._incarnation, self.id))


def left_rumour_excess(factory, n=10):
    """leave() called three times while the rumour spreads: a rumour is sent at most
    retransmit_limit(n) times per state change (SwimConfig.retransmit_mult), and a repeated
    leave() is no new state change."""
    d = Driver(node("a", peers(n - 1), factory=factory))
    d.run_until(1_000)
    t = d.node.now_ms
    for k in range(3):
        d.local(lambda nd: nd.leave())
        d.run_until(t + (k + 1) * CFG.gossip_interval_ms)
    d.run_until(t + 60 * CFG.gossip_interval_ms)
    assert d.node.queue_len() == 0
    limit = retransmit_limit(CFG.retransmit_mult, n)
    return rumour_sends_over_limit([m for _, m in d.sent], MemberUpdate("left", "a", 0, "a"), limit)


def test_swim_left_rumour_sent_within_retransmit_limit_however_often_leave_is_called():
    assert left_rumour_excess(SwimNode) == 0


def test_swim_retransmit_limit_check_fires_on_a_core_that_reannounces_on_each_leave():
    assert left_rumour_excess(ReannouncesOnEveryLeave) > 0


# --- a rumour dies with the sender's memory of its member (reaping) -----------------------------------

class ReapKeepsRumours(SwimNode):
    """Wrong: reaping forgets a member but leaves its pending rumour in the broadcast queue."""

    def _reap(self):
        pending = {k: u for bucket in self._queue._buckets for k, u in bucket.items() if k[0] == "m"}
        super()._reap()
        for k, u in pending.items():
            if k[1] not in self._members and k not in self._queue:
                self._queue.put(k, u)


def reaped_rumour_findings(factory):
    """Both other members are declared dead while nothing can be sent (no live member), so their
    dead rumours wait in the queue; after reap_dead_ms they are forgotten, and when a new member
    appears nothing about them may be sent any more."""
    d = Driver(node("a", ["b", "c"], factory=factory))
    d.step(Gossip("c", "a", (MemberUpdate("dead", "b", 0, "c"),)), 10)
    d.step(Gossip("b", "a", (MemberUpdate("dead", "c", 0, "b"),)), 20)
    assert d.node.queue_len() == 2, "setup: two dead rumours wait"
    d.run_until(CFG.reap_dead_ms + 2 * max(1_000, CFG.tombstone_ttl_ms // 8))
    assert "b" not in d.node.members() and "c" not in d.node.members(), "setup: reaped"
    t = d.node.now_ms
    d.step(Gossip("x", "a", (MemberUpdate("alive", "x", 0, "x"),)), t + 1)
    d.run_until(t + 20 * CFG.gossip_interval_ms)
    about_gone = [m for tt, m in d.sent if tt > t and any(getattr(u, "member", "") in ("b", "c") for u in m.updates)]
    return d.findings + [f"rumour about a reaped member in {m}" for m in about_gone]


def test_swim_reaped_members_are_no_longer_gossiped():
    assert reaped_rumour_findings(SwimNode) == []


def test_swim_rumour_lifetime_check_fires_on_a_core_that_keeps_reaped_rumours():
    found = reaped_rumour_findings(ReapKeepsRumours)
    assert any("does not know" in f for f in found)


# --- cluster-size scaled timings against SwimConfig's formulas (n counts the node itself) -------------

def pushpull_gaps(n, cfg=CFG):
    d = Driver(node("a", peers(n - 1), cfg=cfg))
    scaled = pushpull_scaled_ms(cfg.pushpull_interval_ms, n)
    d.run_until(4 * scaled + 1)
    times = [t for t, m in d.sent if isinstance(m, PushPull) and not m.join]
    assert len(times) >= 3 and d.findings == []
    return times[0], {b - a for a, b in zip(times, times[1:])}, scaled


@pytest.mark.parametrize("n", [2, 32, 33, 64, 65, 100])
def test_swim_pushpull_interval_scales_with_the_cluster_size(n):
    """SwimConfig.pushpull_interval_ms: "scaled up for n > 32 by ceil(log2(n) - log2(32)) + 1",
    n being the members the node knows alive, itself included (memberlist's estNumNodes)."""
    first, gaps, scaled = pushpull_gaps(n)
    assert first < scaled and gaps == {scaled}, (n, first, gaps, scaled)


def test_swim_pushpull_scaling_check_fires_when_the_node_does_not_count_itself(monkeypatch):
    real = swim_core.pushpull_scaled_ms
    monkeypatch.setattr(swim_core, "pushpull_scaled_ms", lambda iv, n: real(iv, n - 1))
    _, gaps, scaled = pushpull_gaps(33)
    assert gaps != {scaled}


def suspicion_timeout_observed(n):
    """A suspicion with no confirmation: ms from the accusation to the dead verdict."""
    d = Driver(node("a", peers(n - 1)))
    d.run_until(1_000)
    d.step(Gossip("p001", "a", (MemberUpdate("suspect", "p000", 0, "p001"),)), 1_000)
    d.run_until(60_000, stop=lambda out: any(e["member"] == "p000" and e["state"] == "dead" for e in out.events))
    dead = [t for t, e in d.events if e["member"] == "p000" and e["state"] == "dead"]
    assert dead and d.findings == []
    return dead[0] - 1_000


def lifeguard_timeout_ms(n, cfg=CFG):
    lo = suspicion_min_ms(n, cfg.probe_interval_ms, cfg.suspicion_mult)
    return suspicion_timeout_ms(0, suspicion_k(cfg.suspicion_confirmations_k, n), lo, lo * cfg.suspicion_max_mult)


@pytest.mark.parametrize("n", [3, 10, 11, 33, 101])
def test_swim_suspicion_timeout_follows_lifeguard_for_the_cluster_size(n):
    """Lifeguard IV-B (SwimConfig.suspicion_mult, suspicion_confirmations_k): with no
    confirmation the timeout is max = suspicion_max_mult * mult * max(1, log10(n)) * probe
    interval, k capped at n - 2; n counts the node itself."""
    assert suspicion_timeout_observed(n) == lifeguard_timeout_ms(n), n


def test_swim_suspicion_timeout_check_fires_when_the_node_does_not_count_itself(monkeypatch):
    real = swim_core.suspicion_min_ms
    monkeypatch.setattr(swim_core, "suspicion_min_ms", lambda n, iv, mult: real(n - 1, iv, mult))
    assert suspicion_timeout_observed(11) != lifeguard_timeout_ms(11)


# --- the broadcast queue against a naive model ------------------------------------------------------

class NaiveQueue:
    """The queue's contract said plainly: one rumour per key; take(cap, limit) picks the least
    sent first, within equal counts the one (re)filed longest ago, counts each pick as one send
    and drops a rumour at `limit` sends; drop_most_sent drops the oldest of the most sent."""

    def __init__(self):
        self.items = {}          # key -> [sends, filed stamp, update]
        self.stamp = 0

    def _file(self, key, sends, update):
        self.stamp += 1
        self.items[key] = [sends, self.stamp, update]

    def put(self, key, update):
        self._file(key, 0, update)

    def pop(self, key):
        self.items.pop(key, None)

    def drop_most_sent(self):
        if self.items:
            top = max(s for s, _, _ in self.items.values())
            self.items.pop(min((st, k) for k, (s, st, _) in self.items.items() if s == top)[1])

    def take(self, cap, limit):
        order = sorted(self.items, key=lambda k: self.items[k][:2])[:cap]
        out = []
        for k in order:
            sends, _, u = self.items.pop(k)
            out.append(u)
            if sends + 1 < limit:
                self._file(k, sends + 1, u)
        return tuple(out)


def queue_model_findings(factory, seeds=range(30), ops=300):
    found = []
    keys = [("m", f"k{i}") for i in range(6)] + [("e", f"k{i}") for i in range(3)]
    for seed in seeds:
        rng = random.Random(seed)
        q, model = factory(), NaiveQueue()
        for i in range(ops):
            r, k = rng.random(), rng.choice(keys)
            if r < 0.4:
                q.put(k, (k, i))
                model.put(k, (k, i))
            elif r < 0.5:
                q.pop(k)
                model.pop(k)
            elif r < 0.55:
                q.drop_most_sent()
                model.drop_most_sent()
            else:
                cap, limit = rng.randint(1, 4), rng.randint(1, 5)
                got, want = q.take(cap, limit), model.take(cap, limit)
                if got != want:
                    found.append(f"seed {seed} op {i}: take({cap}, {limit}) gave {got}, model {want}")
            if len(q) != len(model.items) or [k in q for k in keys] != [k in model.items for k in keys]:
                found.append(f"seed {seed} op {i}: len/contains differ from the model")
            if found:
                return found
    return found


def test_swim_broadcast_queue_matches_the_naive_model():
    """_BroadcastQueue (memberlist's TransmitLimitedQueue shape) against NaiveQueue over random
    operations: same picks, same length, same membership."""
    assert queue_model_findings(_BroadcastQueue) == []


class QueueForgetsSentKeys(_BroadcastQueue):
    """Wrong: a rumour counts as queued only until it was sent once."""

    def __contains__(self, key):
        return self._where.get(key) == 0


def test_swim_broadcast_queue_model_check_fires_on_a_wrong_queue():
    assert queue_model_findings(QueueForgetsSentKeys)


# --- the endpoint table's Lamport clock ---------------------------------------------------------------

class ForgetsRemoteVersions(SwimNode):
    """Wrong: the Lamport clock does not advance past versions received from peers."""

    def _apply_endpoint(self, u):
        before = self._lamport
        super()._apply_endpoint(u)
        self._lamport = min(self._lamport, max(before, *(e.version for e in self._endpoints.values()
                                                            if e.owner == self.id), 0))


def lamport_findings(factory, seeds=range(20), ops=80):
    """Lamport (and networkdb's table clock): a version this node assigns to a new local update
    is above every version it has received and every version it published (re-assertions of its
    entries included), and the version a node holds for a key never goes down."""
    found = []
    for seed in seeds:
        rng = random.Random(seed)
        n = node("a", ["b", "c"], factory=factory, seed=seed)
        seen, held = 0, {}
        for i in range(ops):
            r = rng.random()
            if r < 0.3:
                key = rng.choice(["a/x", "a/y", f"a/new{i}"])
                published = max([e.version for e in n.endpoint_entries().values() if e.owner == "a"] + [0])
                e = n.set_endpoint(key, i)
                if e.version <= max(seen, published):
                    found.append(f"seed {seed} op {i}: local version {e.version} not above {max(seen, published)}")
            elif r < 0.4:
                n.delete_endpoint(rng.choice(["a/x", "a/y"]))
            else:
                owner = rng.choice(["a", "b", "c"])
                key = rng.choice([f"{owner}/x", f"{owner}/y"])
                v = rng.randint(1, 3 * ops)
                u = EndpointUpdate(key, owner, v, None if owner == "a" else i, owner == "a")
                seen = max(seen, v)
                n.step(Gossip(rng.choice(["b", "c"]), "a", (u,)), i)
            for k, e in n.endpoint_entries().items():
                if e.version < held.get(k, 0):
                    found.append(f"seed {seed} op {i}: {k} went back from version {held[k]} to {e.version}")
                held[k] = e.version
            n.poll()
            if found:
                return found
    return found


def test_swim_endpoint_versions_follow_a_lamport_clock():
    assert lamport_findings(SwimNode) == []


def test_swim_lamport_check_fires_on_a_core_that_forgets_remote_versions():
    assert lamport_findings(ForgetsRemoteVersions)


def test_swim_leaver_left_alone_sends_no_probe():
    """A leaver that nobody asks to relay sends no Ping or PingReq at all (leaver_violations
    counts any; relaying for others is the one exception it documents)."""
    d = Driver(node("a", peers(3)))
    d.local(lambda n: n.leave())
    d.run_until(5_000)
    assert not [m for _, m in d.sent if isinstance(m, (Ping, PingReq))]


# --- a member that left and rejoined at the same incarnation is seen again --------------------------

class SilentToGoneProbers(SwimNode):
    """Wrong (the core before helper/sim3): a ping from a member held left or dead is acked
    without the verdict, so the member never learns it must refute."""

    def _verdict_on(self, src):
        return ()


T_REJOIN = 20_000


def rejoin_visible_at(factory):
    """w2 holds x left@0; x restarts at incarnation 0 and joins through a seed, p000, that forgot
    it (so nobody told it about its leave), then probes w2. SWIM 4.2: x must learn the verdict
    and refute, and w2 must see x alive again. Nobody probes, gossips to or reconnects to a left
    member, so x's own messages are the only way; anti-entropy is off here to isolate the ack
    (with it on, x's own push-pull also gets there, once it reaches someone). Only x and w2 run;
    messages to p000 are lost. Returns when w2 saw x alive again, or None."""
    cfg = CFG.replace(pushpull_interval_ms=0)
    d = Driver(node("w2", ["x", "p000", "p001"], cfg=cfg, factory=factory))
    d.step(Gossip("p000", "w2", (MemberUpdate("left", "x", 0, "x"),)), 10)
    d.run_until(T_REJOIN)                          # long ago: the left rumour was spread and done
    w2 = d.node
    assert w2.member_state("x") == ("left", 0) and w2.queue_len() == 0 and d.findings == []
    x = factory("x", cfg, random.Random(2), ["p000"], T_REJOIN)
    x.join()
    x.step(PushPull("p000", "x", (MemberUpdate("alive", "p000", 0, "p000"), MemberUpdate("alive", "w2", 0, "w2")),
                    False, False), T_REJOIN + 10)
    nodes = {"w2": w2, "x": x}
    t, end = T_REJOIN, T_REJOIN + 2 * round_robin_bound_ms(3, cfg)
    for _ in range(MAX_CALLS):
        t = min(n.next_deadline_ms() for n in nodes.values())
        if t > end:
            return None
        for n in nodes.values():
            n.tick(t)
        queue = [m for n in nodes.values() for m in n.poll().messages]
        for _ in range(1000):                      # bounded delivery between the two
            if not queue:
                break
            m = queue.pop(0)
            if m.dst in nodes:
                nodes[m.dst].step(m, t)
                queue += nodes[m.dst].poll().messages
        if w2.member_state("x")[0] == "alive":
            return t
    pytest.fail("driver bound hit")


def test_swim_member_that_rejoined_after_leaving_is_seen_again_once_it_probes():
    t = rejoin_visible_at(SwimNode)
    assert t is not None and t <= T_REJOIN + round_robin_bound_ms(3)


def test_swim_rejoin_check_fires_on_a_core_that_acks_gone_members_silently():
    assert rejoin_visible_at(SilentToGoneProbers) is None


# --- Lifeguard local health against a naive model (added after seed 5 was measured) ------------------

class RefuteKeepsHealth(SwimNode):
    """Wrong: being suspected (and refuting) does not count against our own health."""

    def _refute(self, incarnation, reassert):
        h = self._health
        super()._refute(incarnation, reassert)
        self._health = h


def health_findings(factory, seeds=range(6), events=40):
    """Lifeguard IV-A (local health awareness): the score, in [0, awareness_max - 1], goes down
    by one for each acked probe, up by one for a failed probe without relays, up by the missing
    nacks for one with relays, and up by one each time we refute a suspicion of ourselves. The
    node is driven only through messages; the model reads only what it sent."""
    found = []
    cap = CFG.awareness_max - 1
    for seed in seeds:
        rng = random.Random(seed)
        n = node("a", peers(6), factory=factory, seed=seed)
        n.poll()
        model, t, ping = 0, 0, None
        for i in range(events):
            ev = rng.choice(["accuse", "ok", "fail"])
            if ev == "accuse":
                n.step(Gossip("p000", "a", (MemberUpdate("suspect", "a", n.incarnation, "p000"),)), t)
                model = min(cap, model + 1)
                ping = ping or next((m for m in n.poll().messages if isinstance(m, Ping)), None)
            else:
                for _ in range(1000):                       # the next probe (one may be under way)
                    if ping is not None:
                        break
                    t = n.next_deadline_ms()
                    n.tick(t)
                    ping = next((m for m in n.poll().messages if isinstance(m, Ping)), None)
                if ping is None:
                    break                                   # nobody left to probe
                if ev == "ok":
                    n.step(Ack(ping.dst, "a", (), ping.seq), t)
                    model = max(0, model - 1)
                    ping = None
                    n.poll()
                else:
                    relays, ping = 0, None
                    for _ in range(1000):    # the probe fails in the tick that starts the next one
                        t = n.next_deadline_ms()
                        n.tick(t)
                        out = n.poll().messages
                        relays += sum(isinstance(m, PingReq) for m in out)
                        ping = next((m for m in out if isinstance(m, Ping)), None)
                        if ping is not None:
                            break
                    model = min(cap, model + (relays if relays else 1))
            if n.health != model:
                found.append(f"seed {seed} event {i} ({ev}): health {n.health}, Lifeguard model {model}")
                break
    return found


def test_swim_local_health_follows_lifeguard():
    assert health_findings(SwimNode) == []


def test_swim_local_health_check_fires_on_a_core_that_ignores_being_suspected():
    assert health_findings(RefuteKeepsHealth)


def test_swim_counters_start_at_zero():
    """Drivers read counters (agent/node.py restarts a join when join_gave_up grows), so a fresh
    node's counters are all zero."""
    assert set(node("a", peers(2)).counters.values()) == {0}
