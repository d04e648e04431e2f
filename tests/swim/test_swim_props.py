"""Randomized fault schedules (hypothesis draws the seed and the schedule) and larger-n runs.

Safety during faults (incarnations never go backwards, a member that never failed is never marked
dead while reachable), liveness after the final heal (all live members agree on members and
endpoints within a bound). Failures print the drawn schedule and seed.
Must not import: chaos, asyncio, socket (simulation only).
"""

import pytest
from hypothesis import HealthCheck, given, note, settings, strategies as st

from swarmnode.sim.swim_sim import SwimSim, incarnation_regressions
from swarmnode.swim import SwimConfig, pushpull_scaled_ms, suspicion_min_ms

CFG = SwimConfig()

faults = st.lists(st.tuples(st.sampled_from(["partition", "pause", "crash", "loss", "leave"]),
                            st.integers(0, 11), st.integers(500, 6000)), min_size=1, max_size=5)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), schedule=faults)
def test_props_random_faults_safety_then_convergence_after_heal(seed, schedule):
    note(f"seed={seed} schedule={schedule}")
    run_schedule(seed, schedule)


def run_schedule(seed, schedule):
    """One randomized run: apply `schedule` [(fault, node index, ms)], heal, check."""
    sim = SwimSim(n=12, seed=seed, delay_ms=(1, 20))
    for i in ("w1", "w5", "w9"):
        sim.local(i, lambda nd, i=i: nd.set_endpoint(f"{i}/svc", i))
    sim.run_for(1000)
    for kind, who, ms in schedule:
        node = sim.ids[who]
        if sim.crashed[node]:
            continue
        if kind == "partition":
            sim.partition(sim.ids[:who + 1], sim.ids[who + 1:])
        elif kind == "pause":
            sim.pause(node)
        elif kind == "crash" and node != "w1":
            sim.crash(node)
        elif kind == "loss":
            sim.loss = 0.2
        elif kind == "leave" and node != "w1":
            sim.leave(node)
        sim.run_for(ms)
        if node in sim.paused:
            sim.resume(node)
        if node in sim.nodes and sim.nodes[node]._leaving and not sim.crashed[node]:
            sim.stop_left(node)
    sim.heal()
    sim.loss = 0.0
    assert incarnation_regressions(sim.trace, sim.restarts) == []
    bound = 4 * pushpull_scaled_ms(CFG.pushpull_interval_ms, 12) + 30_000
    assert sim.run_until(lambda: sim.members_agree() and sim.endpoints_agree(), bound), \
        f"no convergence; seed={seed} schedule={schedule}"


@pytest.mark.slow
def test_props_n200_crash_detected_and_no_false_deaths_under_loss():
    sim = SwimSim(n=200, seed=11, loss=0.10)
    sim.run_for(20_000)
    assert sim.dead_marks() == [], f"seed={sim.seed}"
    sim.loss = 0.0
    sim.crash("w17")
    lo = suspicion_min_ms(200, CFG.probe_interval_ms, CFG.suspicion_mult)
    bound = 4 * CFG.probe_interval_ms + lo * CFG.suspicion_max_mult + 20 * CFG.gossip_interval_ms
    assert sim.run_until(lambda: sim.marked_gone("w17"), bound, check_every_ms=100), f"seed={sim.seed}"
    assert [m for m in sim.dead_marks() if m[2] != "w17"] == []
