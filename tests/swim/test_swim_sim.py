"""Simulated properties of the SWIM core: completeness, accuracy, convergence, incarnations,
refutation -- each with a deliberately broken variant shown failing.

Seeds: SWIM_SEED=<n> replays one seed; failures print the seed and the replay command.
Must not import: chaos, asyncio, socket (simulation only).
"""

import os

import pytest

from swarmnode.sim.swim_sim import SwimSim, incarnation_regressions, unrefuted_suspicions
from swarmnode.swim import SwimConfig, SwimNode, pushpull_scaled_ms, suspicion_min_ms
from swarmnode.swim.core import ALIVE

SEEDS = [int(os.environ["SWIM_SEED"])] if os.environ.get("SWIM_SEED") else [1, 2, 3]
BROKEN_SEED = 1     # broken variants run on a pinned seed: they must fail deterministically
CFG = SwimConfig()


def why(sim, test):
    return f"seed={sim.seed}; replay: SWIM_SEED={sim.seed} pytest tests/swim/test_swim_sim.py -k {test}"


def detection_bound_ms(cfg, n):
    """Crash -> dead at every member: a few probe periods until someone probes it, the longest
    suspicion (no confirmations), and 20 gossip rounds to spread the verdict."""
    lo = suspicion_min_ms(n, cfg.probe_interval_ms, cfg.suspicion_mult)
    return 4 * cfg.probe_interval_ms + lo * cfg.suspicion_max_mult + 20 * cfg.gossip_interval_ms


def convergence_bound_ms(cfg, n):
    from swarmnode.swim import pushpull_scaled_ms
    return 3 * pushpull_scaled_ms(cfg.pushpull_interval_ms, n) + detection_bound_ms(cfg, n)


# --- broken variants ---------------------------------------------------------------------------

class NoRefutation(SwimNode):
    """Broken: never refutes a suspicion about itself (SWIM 4.2 removed)."""

    def _about_self(self, u):
        return


class NeverDeclaresDead(SwimNode):
    """Broken: suspicions never expire into dead."""

    def _suspicion_expired(self, mid):
        self._suspicions.pop(mid, None)


class AcceptsStaleAlive(SwimNode):
    """Broken: takes any alive rumour, even at an older incarnation."""

    def _apply_member(self, u):
        m = self._members.get(u.member)
        if u.state == ALIVE and m is not None and u.member != self.id and u.incarnation < m.incarnation:
            m.incarnation = u.incarnation
            m.state = ALIVE
            self._event(m.id, ALIVE, u.incarnation)
            return
        super()._apply_member(u)


# --- completeness ----------------------------------------------------------------------------------

def _crash_detected(seed, factory=SwimNode, n=20):
    sim = SwimSim(n=n, seed=seed, node_factory=factory)
    sim.run_for(2000)
    sim.crash("w7")
    return sim, sim.run_until(lambda: sim.marked_gone("w7"), detection_bound_ms(CFG, n))


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_completeness_crashed_member_marked_dead_by_all_within_bound(seed):
    sim, ok = _crash_detected(seed)
    assert ok, why(sim, "completeness_crashed")


def test_sim_completeness_broken_never_declaring_dead_fails():
    sim, ok = _crash_detected(BROKEN_SEED, NeverDeclaresDead)
    assert not ok


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_completeness_isolated_member_marked_dead_within_bound(seed):
    sim = SwimSim(n=20, seed=seed)
    sim.run_for(2000)
    sim.isolate("w3")
    others = [i for i in sim.ids if i != "w3"]
    ok = sim.run_until(lambda: sim.marked_gone("w3", by=others), detection_bound_ms(CFG, 20))
    assert ok, why(sim, "completeness_isolated")


# --- accuracy --------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_sim_accuracy_fault_free_never_suspects_or_kills(seed):
    sim = SwimSim(n=20, seed=seed, wire=True)
    sim.run_for(60_000)
    assert [e for e in sim.trace if e[3] in ("suspect", "dead")] == [], why(sim, "fault_free")
    assert sim.members_agree()


def _lossy(seed, factory=SwimNode, ms=120_000):
    sim = SwimSim(n=20, seed=seed, loss=0.10, node_factory=factory)
    sim.run_for(ms)
    return sim


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_accuracy_10pct_loss_no_member_marked_dead(seed):
    sim = _lossy(seed)
    assert sim.dead_marks() == [], why(sim, "10pct_loss")
    suspected = [e for e in sim.trace if e[3] == "suspect"]
    assert suspected, "the scenario should provoke suspicions, or it proves nothing"


def test_sim_accuracy_10pct_loss_broken_no_refutation_kills_live_members():
    sim = _lossy(BROKEN_SEED, NoRefutation)
    assert sim.dead_marks(), "without refutation, lossy suspicions turn into false deaths"


def _slow_member(seed, factory=SwimNode):
    sim = SwimSim(n=20, seed=seed, node_factory=factory)
    sim.run_for(3000)
    lo = suspicion_min_ms(20, CFG.probe_interval_ms, CFG.suspicion_mult)
    sim.pause("w5")
    sim.run_for(int(lo * 0.9))          # slow: paused for less than the minimum suspicion timeout
    sim.resume("w5")
    sim.run_for(20_000)
    return sim


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_accuracy_slow_member_below_min_suspicion_is_not_marked_dead(seed):
    sim = _slow_member(seed)
    assert sim.dead_marks() == [], why(sim, "slow_member")
    assert any(e[2] == "w5" and e[3] == "suspect" for e in sim.trace), "pause should cause suspicion"
    assert sim.members_agree()


def test_sim_accuracy_slow_member_broken_no_refutation_is_marked_dead():
    sim = _slow_member(BROKEN_SEED, NoRefutation)
    assert any(m == "w5" for (_t, _o, m, _i) in sim.dead_marks())


def _one_way_cut(seed, cfg):
    sim = SwimSim(n=10, seed=seed, config=cfg)
    sim.run_for(1000)
    sim.cut_link("w1", "w2")            # w1's pings never reach w2; w2's acks to w1 still could
    sim.cut_link("w2", "w1")
    sim.run_for(30_000)
    return sim


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_accuracy_swim_4_1_indirect_probes_mask_a_cut_link(seed):
    sim = _one_way_cut(seed, CFG)
    assert [e for e in sim.trace if e[3] in ("suspect", "dead")] == [], why(sim, "indirect_probes")


def test_sim_accuracy_broken_no_indirect_probes_suspects_across_a_cut_link():
    sim = _one_way_cut(BROKEN_SEED, CFG.replace(indirect_checks=0))
    assert [e for e in sim.trace if e[3] == "suspect" and e[2] in ("w1", "w2")]


# --- refutation and incarnations -------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_sim_reachable_suspect_refutes_before_min_suspicion_timeout(seed):
    sim = _lossy(seed, ms=60_000)
    # "in time": before the observer's suspicion could expire (its longest timeout)
    hi = suspicion_min_ms(20, CFG.probe_interval_ms, CFG.suspicion_mult) * CFG.suspicion_max_mult
    assert unrefuted_suspicions(sim.trace, hi, sim.now) == [], why(sim, "refutes")


def test_sim_refutation_checker_catches_broken_no_refutation():
    sim = _lossy(BROKEN_SEED, NoRefutation, ms=60_000)
    hi = suspicion_min_ms(20, CFG.probe_interval_ms, CFG.suspicion_mult) * CFG.suspicion_max_mult
    assert unrefuted_suspicions(sim.trace, hi, sim.now)


def _chaotic(seed, factory=SwimNode):
    sim = SwimSim(n=12, seed=seed, loss=0.05, node_factory=factory, delay_ms=(1, 30))
    sim.run_for(3000)
    sim.pause("w2")
    sim.partition(["w1", "w3", "w4"], [i for i in sim.ids if i not in ("w1", "w3", "w4")])
    sim.run_for(8000)
    sim.resume("w2")
    sim.crash("w9")
    sim.run_for(8000)
    sim.heal()
    sim.restart("w9")
    sim.run_for(30_000)
    return sim


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_incarnations_never_go_backwards(seed):
    sim = _chaotic(seed)
    assert incarnation_regressions(sim.trace, sim.restarts) == [], why(sim, "incarnations")
    assert sim.run_until(sim.members_agree, convergence_bound_ms(CFG, 12)), why(sim, "incarnations")


def _restart_after_refutation(seed, factory=SwimNode):
    """w3 refutes (incarnation >= 1), then restarts empty and joins announcing incarnation 0."""
    sim = SwimSim(n=8, seed=seed, node_factory=factory)
    sim.run_for(2000)
    sim.pause("w3")
    sim.run_for(2500)
    sim.resume("w3")
    sim.run_for(5000)
    assert sim.nodes["w3"].incarnation >= 1
    sim.crash("w3")
    sim.restart("w3")
    sim.run_for(20_000)
    return sim


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_incarnations_never_go_backwards_across_a_restart(seed):
    sim = _restart_after_refutation(seed)
    assert incarnation_regressions(sim.trace, sim.restarts) == [], why(sim, "across_a_restart")
    assert sim.members_agree() and sim.view("w1")["w3"][1] >= 2


def test_sim_incarnation_checker_catches_broken_stale_alive():
    sim = _restart_after_refutation(BROKEN_SEED, AcceptsStaleAlive)
    assert incarnation_regressions(sim.trace, sim.restarts)


def test_sim_incarnation_checker_table():
    trace = [(1, "a", "b", "alive", 2), (2, "a", "b", "alive", 1), (3, "c", "b", "alive", 0)]
    assert incarnation_regressions(trace) == [(2, "a", "b", 2, 1)]
    assert incarnation_regressions(trace, [(2, "a")]) == []


# --- convergence -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_sim_convergence_join_through_seeds(seed):
    sim = SwimSim(n=30, seed=seed, bootstrap=False, seeds=["w1", "w2"], wire=True)
    assert sim.run_until(sim.members_agree, 20_000), why(sim, "join_through_seeds")


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_convergence_endpoint_table_after_changes(seed):
    sim = SwimSim(n=20, seed=seed, loss=0.05)
    sim.run_for(1000)
    for i in ("w1", "w4", "w9"):
        sim.local(i, lambda nd, i=i: nd.set_endpoint(f"{i}/web.1", f"10.0.0.{i[1:]}:80"))
    assert sim.run_until(sim.endpoints_agree, 10_000), why(sim, "endpoint_table")
    sim.local("w4", lambda nd: nd.delete_endpoint("w4/web.1"))
    sim.local("w1", lambda nd: nd.set_endpoint("w1/web.1", "10.0.0.1:81"))
    sim.crash("w9")                     # its entries must disappear everywhere
    cond = lambda: sim.endpoints_agree() and set(sim.nodes["w2"].endpoints()) == {"w1/web.1"} \
        and sim.nodes["w2"].endpoints()["w1/web.1"].value == "10.0.0.1:81"
    assert sim.run_until(cond, convergence_bound_ms(CFG, 20)), why(sim, "endpoint_table")


def _partition_heal(seed, cfg):
    sim = SwimSim(n=10, seed=seed, config=cfg)
    sim.local("w2", lambda nd: nd.set_endpoint("w2/a", 1))
    sim.local("w8", lambda nd: nd.set_endpoint("w8/b", 2))
    sim.run_for(2000)
    a, b = sim.ids[:5], sim.ids[5:]
    sim.partition(a, b)
    assert sim.run_until(lambda: all(sim.marked_gone(x, by=a) for x in b) and
                         all(sim.marked_gone(x, by=b) for x in a), 30_000)
    sim.run_for(3000)                   # let probes in flight finish: no accidental contact
    sim.heal()
    ok = sim.run_until(lambda: sim.members_agree() and sim.endpoints_agree() and
                       len(sim.nodes["w1"].endpoints()) == 2, convergence_bound_ms(cfg, 10))
    return sim, ok


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_convergence_after_partition_heals(seed):
    sim, ok = _partition_heal(seed, CFG)
    assert ok, why(sim, "partition_heals")


def test_sim_convergence_broken_no_reconnect_stays_split_after_heal():
    _, ok = _partition_heal(BROKEN_SEED, CFG.replace(reconnect_interval_ms=0))
    assert not ok


def _rumour_under_loss(seed, cfg):
    """Spread one endpoint under 25% loss with few retransmits; count members that have it."""
    # few retransmits, one gossip target, long suspicions (keep false deaths out of it)
    cfg = cfg.replace(retransmit_mult=1, gossip_fanout=1, suspicion_mult=20)
    sim = SwimSim(n=40, seed=seed, config=cfg, loss=0.20)
    sim.run_for(1000)
    sim.local("w1", lambda nd: nd.set_endpoint("w1/x", 1))
    count = lambda: sum("w1/x" in nd.endpoints() for nd in sim.nodes.values())
    sim.run_until(lambda: count() == 40, 8 * pushpull_scaled_ms(CFG.pushpull_interval_ms, 40))
    return sim, count()


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_convergence_anti_entropy_informs_everyone_under_loss(seed):
    sim, informed = _rumour_under_loss(seed, CFG)
    assert informed == 40, why(sim, "anti_entropy")


def test_sim_convergence_broken_no_anti_entropy_leaves_members_uninformed():
    _, informed = _rumour_under_loss(BROKEN_SEED, CFG.replace(pushpull_interval_ms=0))
    assert informed < 40


# --- leave, restart, determinism, pause --------------------------------------------------------------

def test_sim_graceful_leave_is_seen_as_left_not_dead():
    sim = SwimSim(n=15, seed=SEEDS[0])
    sim.run_for(1000)
    sim.leave("w6")
    sim.run_for(2000)
    sim.stop_left("w6")
    assert sim.run_until(lambda: all(sim.view(i).get("w6", ("left",))[0] == "left" for i in sim.live()),
                         5000), why(sim, "graceful_leave")
    assert not [m for m in sim.dead_marks() if m[2] == "w6"]
    sim.run_for(CFG.reap_dead_ms + 60_000)
    assert all("w6" not in sim.view(i) for i in sim.live())         # reaped


def test_sim_restarted_member_rejoins_at_higher_incarnation():
    sim = SwimSim(n=10, seed=SEEDS[0])
    sim.run_for(1000)
    sim.crash("w4")
    assert sim.run_until(lambda: sim.marked_gone("w4"), detection_bound_ms(CFG, 10))
    sim.restart("w4")
    assert sim.run_until(sim.members_agree, convergence_bound_ms(CFG, 10)), why(sim, "restarted")
    assert sim.view("w1")["w4"][1] >= 1


def test_sim_same_seed_gives_same_trace():
    a = _chaotic(7)
    b = _chaotic(7)
    assert a.trace == b.trace and a.sent == b.sent
    assert _chaotic(8).trace != a.trace


def test_sim_paused_node_neither_sends_nor_processes():
    sim = SwimSim(n=5, seed=SEEDS[0])
    sim.run_for(1000)
    sim.pause("w2")
    sent, clock = sim.sent["w2"], sim.nodes["w2"].now_ms
    sim.run_for(3000)
    assert sim.sent["w2"] == sent and sim.nodes["w2"].now_ms == clock and sim.paused["w2"]
    sim.resume("w2")
    assert not sim.paused.get("w2") and sim.nodes["w2"].now_ms == sim.now
