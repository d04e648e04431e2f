"""Benchmark: time from a leader crash to a new leader, over many simulated trials.

Deterministic simulation (swarmnode.sim.raft_sim) with 1 ms ticks, election timeouts 150-300 ms,
heartbeats every 50 ms, one-way latency uniform 1-5 ms, no loss, PreVote and CheckQuorum on.
Each trial: elect a leader, let it lead for a random 0.5-1.5 s, crash it, measure until another
node becomes leader. A trial counts as a split vote when the new leader's term is more than one
above the crashed leader's (at least one election round failed).
Prints one JSON object: per cluster size p50_ms, p99_ms, max_ms, split_vote_rate, trials.
Usage: python benchmarks/raft_election.py [--trials 1000] [--sizes 3,5] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_image"))

from swarmnode.raft import LEADER, RaftConfig  # noqa: E402
from swarmnode.sim.net import LinkSpec  # noqa: E402
from swarmnode.sim.raft_sim import RaftSim, SimParams  # noqa: E402

NEVER = 10 ** 12


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


def trial(seed: int, n: int, cfg: RaftConfig, link: LinkSpec, max_ms: float = 20_000):
    sim = RaftSim(SimParams(seed=seed, n_nodes=n, tick_ms=1, clients=0, config=cfg, link=link,
                            duration_ms=NEVER, fault_gap_ms_min=NEVER, fault_gap_ms_max=NEVER,
                            stop_on_violation=True))
    if not sim.run_until(lambda: len(sim.leaders()) == 1, max_ms):
        return None
    rng = sim.fault_rng
    sim.run_until(lambda: False, sim.sched.now_ms + rng.uniform(500, 1500))
    ls = sim.leaders()
    if len(ls) != 1:
        return None
    old = ls[0]
    old_term = sim.nodes[old].term
    t0 = sim.sched.now_ms
    sim.crash(old)

    def new_leader():
        return any(sim.nodes[i] is not None and sim.nodes[i].role == LEADER and sim.nodes[i].term > old_term
                   for i in sim.ids)
    if not sim.run_until(new_leader, t0 + max_ms):
        return None
    term = max(sim.nodes[i].term for i in sim.ids if sim.nodes[i] is not None and sim.nodes[i].role == LEADER)
    return sim.sched.now_ms - t0, term - old_term, len(sim.checker.violations)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--sizes", default="3,5")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--election-ms", default="150:300")
    ap.add_argument("--heartbeat-ms", type=int, default=50)
    a = ap.parse_args(argv)
    lo, hi = (int(x) for x in a.election_ms.split(":"))
    cfg = RaftConfig(election_timeout_min_ticks=lo, election_timeout_max_ticks=hi + 1,
                     heartbeat_ticks=a.heartbeat_ms).validate()
    link = LinkSpec(delay_ms_min=1.0, delay_ms_max=5.0)
    t_start = time.monotonic()
    out = {"election_timeout_ms": [lo, hi], "heartbeat_ms": a.heartbeat_ms, "one_way_latency_ms": [1, 5],
           "tick_ms": 1, "pre_vote": cfg.pre_vote, "check_quorum": cfg.check_quorum}
    for n in (int(x) for x in a.sizes.split(",")):
        times, rounds, failed, violations = [], [], 0, 0
        for k in range(a.trials):
            r = trial(a.seed * 1_000_003 + n * 10_007 + k, n, cfg, link)
            if r is None:
                failed += 1
                continue
            times.append(r[0])
            rounds.append(r[1])
            violations += r[2]
        out[f"n{n}"] = {
            "trials": a.trials, "completed": len(times), "no_leader_within_20s": failed,
            "p50_ms": round(quantile(times, 0.5), 1), "p90_ms": round(quantile(times, 0.9), 1),
            "p99_ms": round(quantile(times, 0.99), 1), "max_ms": round(max(times), 1),
            "min_ms": round(min(times), 1),
            "split_vote_rate": round(sum(1 for r in rounds if r > 1) / len(rounds), 4),
            "max_terms_used": max(rounds), "safety_violations": violations,
        }
    out["seconds"] = round(time.monotonic() - t_start, 2)
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
