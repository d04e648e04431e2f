"""SWIM consequence checks (swarmnode/sim/swim_checks.py): judged from views against what the
simulator knows (who runs, who can reach whom). Each check fires on a deliberately wrong core
and stays silent on the correct one over seeded chaos runs (partitions, one-way cuts, crashes and
restarts, pauses, lossy links, graceful leaves and rejoins, then a final heal).
Must not import: chaos, asyncio, socket (simulation only).
"""
import pytest

from swarmnode.sim.swim_checks import SwimMonitor, converge_bound_ms, run_checked
from swarmnode.sim.swim_sim import SwimSim
from swarmnode.swim import SwimConfig, SwimNode
from swarmnode.swim.core import ALIVE, DEAD, LEFT

MAX_SEEDS = 8


class IgnoresAliveAfterDead(SwimNode):
    """Wrong: once a member is dead or left here, no alive rumour brings it back, not even a newer
    incarnation (SWIM 4.2: a refutation at a higher incarnation overrides)."""

    def _apply_member(self, u):
        m = self._members.get(u.member)
        if u.state == ALIVE and m is not None and m.state in (DEAD, LEFT) and u.member != self.id:
            return
        super()._apply_member(u)


class ResurrectsAtSameIncarnation(SwimNode):
    """Wrong: an alive rumour at the incarnation a member died at revives it (stale state)."""

    def _apply_member(self, u):
        m = self._members.get(u.member)
        if (u.state == ALIVE and m is not None and m.state in (DEAD, LEFT) and u.member != self.id
                and u.incarnation == m.incarnation):
            self._transition(m, ALIVE, u.incarnation)
            return
        super()._apply_member(u)


class NoAntiEntropy(SwimNode):
    """Wrong: never reconnects to dead members and answers no push-pull (except joins), so a
    partition's verdicts are never undone by anti-entropy."""

    def _reconnect(self):
        pass

    def _on_push_pull(self, msg):
        if msg.reply and not msg.join:
            return
        super()._on_push_pull(msg)


def first_seed_with(factory, kind):
    for seed in range(MAX_SEEDS):
        r = run_checked(seed, node_factory=factory)
        if any(v["kind"] == kind for v in r["violations"]):
            return seed, r
    pytest.fail(f"{kind} not reported for {factory.__name__} within {MAX_SEEDS} seeds")


@pytest.mark.parametrize("factory,kind", [(IgnoresAliveAfterDead, "dead-while-reachable"),
                                          (ResurrectsAtSameIncarnation, "resurrected"),
                                          (NoAntiEntropy, "no-convergence")],
                         ids=["dead-while-reachable", "resurrected", "no-convergence"])
def test_swim_consequence_check_fires_on_wrong_core(factory, kind):
    seed, r = first_seed_with(factory, kind)
    assert factory.__name__ in r["replay"]
    print(f"{factory.__name__}: {kind} at seed {seed}: {[v for v in r['violations'] if v['kind'] == kind][0]}")


@pytest.mark.parametrize("seed", range(10))
def test_swim_consequence_checks_silent_on_correct_core(seed):
    r = run_checked(seed)
    assert r["violations"] == [], (r["violations"][:3], r["replay"])
    assert r["converged"] is not None and len(r["faults"]) >= 5


def test_swim_dead_while_reachable_counts_only_reachable_time():
    """A member cut off for longer than the bound is not reported while cut; after the heal the
    correct core brings it back within the bound."""
    cfg = SwimConfig.local()
    sim = SwimSim(n=6, seed=3, config=cfg)
    mon = SwimMonitor(sim, dead_bound_ms=converge_bound_ms(cfg, 6))
    tick = lambda: (mon.check(), False)[1]
    sim.run_until(tick, 2000, check_every_ms=100)
    sim.isolate("w2")
    sim.run_until(tick, 3 * converge_bound_ms(cfg, 6), check_every_ms=100)
    assert sim.marked_gone("w2", by=[i for i in sim.ids if i != "w2"])
    sim.heal()
    assert sim.run_until(lambda: (mon.check(), sim.members_agree())[1], converge_bound_ms(cfg, 6),
                         check_every_ms=100)
    assert mon.violations == []


def test_swim_event_bound_is_a_verdict():
    r = run_checked(1, max_events=5_000)
    assert r["bound_exceeded"] and [v["kind"] for v in r["violations"]] == ["bound-exceeded"]
