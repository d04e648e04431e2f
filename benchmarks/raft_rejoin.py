"""Benchmark: does a partitioned follower that rejoins disturb a healthy leader?

Each trial (simulated): 3 or 5 managers (alternating), 10 ms ticks, elections 150-300 ms,
heartbeats 50 ms, latency 1-5 ms, a light client write load. Elect a leader, isolate one follower
for a random 1-5 s (two-way cut), heal, watch 3 s more. Counts leader changes (any new leader term)
between the cut and the end. With PreVote + CheckQuorum the target is 0 over all trials; the same
trials without them are run as a contrast (the disruption those features prevent).
Prints one JSON object. Usage: python benchmarks/raft_rejoin.py [--trials 1000] [--contrast-trials 200]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_image"))

from swarmnode.raft import RaftConfig  # noqa: E402
from swarmnode.sim.net import LinkSpec, isolate  # noqa: E402
from swarmnode.sim.raft_sim import RaftSim, SimParams  # noqa: E402

NEVER = 10 ** 12


def trial(seed: int, n: int, cfg: RaftConfig):
    sim = RaftSim(SimParams(seed=seed, n_nodes=n, tick_ms=10, clients=1, client_gap_ms_mean=100,
                            config=cfg, link=LinkSpec(1.0, 5.0), duration_ms=NEVER,
                            fault_gap_ms_min=NEVER, fault_gap_ms_max=NEVER))
    if not sim.run_until(lambda: len(sim.leaders()) == 1, 20_000):
        return None
    sim.run_until(lambda: False, sim.sched.now_ms + 1_000)
    ls = sim.leaders()
    if len(ls) != 1:
        return None
    leader = ls[0]
    terms_before = set(sim.checker.leaders)
    rng = sim.fault_rng
    victim = rng.choice([i for i in sim.ids if i != leader])
    sim.net.set_partition(isolate(victim, sim.ids))
    sim.run_until(lambda: False, sim.sched.now_ms + rng.uniform(1_000, 5_000))
    lag = sim.nodes[leader].last_log_index - sim.nodes[victim].last_log_index
    sim.net.heal()
    sim.run_until(lambda: False, sim.sched.now_ms + 3_000)
    new_terms = [t for t in sim.checker.leaders if t not in terms_before]
    caught_up = sim.nodes[victim].applied_index >= sim.nodes[leader].commit_index - 5 if sim.leaders() else False
    return len(new_terms), lag, caught_up, len(sim.checker.violations)


def run(trials: int, cfg: RaftConfig, seed: int) -> dict:
    changes, lags, caught, viol, failed, disrupted = 0, [], 0, 0, 0, 0
    for k in range(trials):
        r = trial(seed * 7_919 + k, 3 if k % 2 == 0 else 5, cfg)
        if r is None:
            failed += 1
            continue
        changes += r[0]
        disrupted += 1 if r[0] else 0
        lags.append(r[1])
        caught += 1 if r[2] else 0
        viol += r[3]
    return {"trials": trials, "completed": trials - failed, "leader_changes": changes,
            "trials_with_leader_change": disrupted, "follower_caught_up": caught,
            "mean_entries_behind_at_heal": round(sum(lags) / max(1, len(lags)), 1),
            "safety_violations": viol}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--contrast-trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    cfg = RaftConfig(election_timeout_min_ticks=15, election_timeout_max_ticks=31, heartbeat_ticks=5)
    t0 = time.monotonic()
    out = {"prevote_checkquorum": run(a.trials, cfg, a.seed)}
    if a.contrast_trials:
        out["without_prevote_checkquorum"] = run(
            a.contrast_trials, dataclasses.replace(cfg, pre_vote=False, check_quorum=False), a.seed)
    out["seconds"] = round(time.monotonic() - t0, 2)
    out["leader_changes"] = out["prevote_checkquorum"]["leader_changes"]
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
