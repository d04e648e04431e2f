"""Benchmark: SWIM/Lifeguard gossip in simulation at n = 10, 50, 200, 1000 (issue 3).

Owns nothing but measurement; imports swarmnode.swim and swarmnode.sim.swim_sim only.
Prints exactly one JSON object on stdout (progress goes to stderr); never passes or fails on time.

Per n (default settings, SwimConfig()):
  detect_first_ms_p50        crash -> first member marks it dead (virtual ms; also *_periods)
  detect_all_ms_p50 / _p99   crash -> every live member marks it dead
  rounds_p50 / rounds_p99    gossip rounds for a fresh endpoint rumour to reach ALL members, over
                             trials: ceil(time to reach the last member / gossip_interval_ms).
                             Members' gossip tickers have random phases and rumours also ride on
                             probes, so a rumour can take several hops within one round;
                             hops_p50 / hops_p99 give the longest infection chain (generations).
                             rounds_member_p99: p99 over (trial, member) of rounds to reach it
  false_positives            false "dead" marks of live members per member-hour: the worse of
                             (10% loss on every link) and (one slow member, paused again and again
                             for 0.8 x the minimum suspicion timeout); details in false_positives_detail
  uninformed                 members still missing an endpoint written at the start of the 10%-loss
                             run, after rumours AND at least two push-pull intervals
  msgs_per_member_s          messages sent per member per second, fault-free steady state
Fewer trials and shorter runs at large n (given per n as `trials`, `fp_sim_member_hours`).

    python3 benchmarks/gossip.py [--quick] [--seed N] [--sizes 10,50]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time

from swarmnode.sim.swim_sim import SwimSim
from swarmnode.swim import SwimConfig, pushpull_scaled_ms, suspicion_min_ms

PLAN = {  # n: (detection trials, loss-run virtual s, slow-run virtual s)
    10: (20, 900, 600),
    50: (20, 400, 300),
    200: (8, 200, 120),
    1000: (3, 130, 60),
}
QUICK = {10: (4, 120, 60), 50: (4, 80, 60), 200: (2, 60, 40), 1000: (1, 20, 15)}


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def _spread(sim: SwimSim, cfg: SwimConfig, rng: random.Random, key: str, bound_ms: int):
    """Publish `key` at a random member; per-member rounds until it has it (None: never)."""
    origin = sim.ids[rng.randrange(len(sim.ids))]
    t0 = sim.now
    hops = {origin: 0}

    def after_step(dst, msg):
        if dst not in hops and sim.nodes[dst].has_endpoint(key):
            hops[dst] = hops.get(msg.src, -1) + 1

    sim.after_step = after_step
    sim.local(origin, lambda nd: nd.set_endpoint(key, 1))
    learned = {origin: t0}
    waiting = [i for i in sim.live() if i != origin]

    def check():
        nonlocal waiting
        still = []
        for i in waiting:
            if sim.nodes[i].has_endpoint(key):
                learned[i] = sim.now
            else:
                still.append(i)
        waiting = still
        return not waiting

    sim.run_until(check, bound_ms, check_every_ms=max(1, cfg.gossip_interval_ms // 10))
    sim.after_step = None
    rounds = [math.ceil((t - t0) / cfg.gossip_interval_ms) for i, t in learned.items() if i != origin]
    return rounds, len(waiting), max(hops.values())


def detection_trials(n, trials, cfg, seed):
    first, alls, rounds_all, rounds_member, msgs_rate, hops_all = [], [], [], [], [], []
    not_detected = not_spread = 0
    for t in range(trials):
        rng = random.Random(f"bench:{seed}:{n}:{t}")
        sim = SwimSim(n=n, seed=seed * 1000 + t, config=cfg, max_trace=0)
        warm = 20_000 if (t == 0 and n <= 200) else 6_000
        sim.run_for(warm - 3000)
        m0, s0 = sum(sim.sent.values()), sim.now
        sim.run_for(3000 + rng.randrange(cfg.probe_interval_ms))
        if t == 0 or n <= 200:
            msgs_rate.append((sum(sim.sent.values()) - m0) / n / ((sim.now - s0) / 1000))
        rounds, missing, max_hops = _spread(sim, cfg, rng, f"bench/{t}", 60_000)
        if missing:
            not_spread += 1
        else:
            rounds_all.append(max(rounds))
            hops_all.append(max_hops)
        rounds_member.extend(rounds)
        victim = sim.ids[1 + rng.randrange(n - 1)]
        marked: dict[str, int] = {}

        def on_event(now, observer, ev, victim=victim):
            if ev["member"] == victim and ev["state"] in ("dead", "left"):
                marked.setdefault(observer, now)

        sim.listeners.append(on_event)
        sim.crash(victim)
        tc = sim.now
        if sim.run_until(lambda: len(marked) >= n - 1, 120_000):
            first.append(min(marked.values()) - tc)
            alls.append(max(marked.values()) - tc)
        else:
            not_detected += 1
        log(f"  n={n} trial {t}: first={first[-1] if first else None} all={alls[-1] if alls else None}"
            f" rounds={max(rounds) if rounds else None}")
    return dict(first=first, alls=alls, rounds_all=rounds_all, rounds_member=rounds_member, hops=hops_all,
                msgs=msgs_rate, not_detected=not_detected, not_spread=not_spread)


class Tally:
    """Counts journal events through a listener (the benchmark keeps no trace: memory at n=1000)."""

    def __init__(self, sim: SwimSim):
        self.dead = self.suspect = 0
        sim.listeners.append(self)

    def __call__(self, now, observer, ev):
        if ev["state"] == "dead":
            self.dead += 1
        elif ev["state"] == "suspect":
            self.suspect += 1


def loss_run(n, secs, cfg, seed):
    sim = SwimSim(n=n, seed=seed * 7919 + n, config=cfg, loss=0.10, max_trace=0)
    tally = Tally(sim)
    sim.run_for(1000)
    sim.local("w1", lambda nd: nd.set_endpoint("bench/loss", 1))
    rounds_phase = 40 * cfg.gossip_interval_ms
    sim.run_for(rounds_phase)
    after_rumours = sum(not nd.has_endpoint("bench/loss") for nd in sim.nodes.values())
    sim.run_for(max(secs * 1000 - rounds_phase, 2 * pushpull_scaled_ms(cfg.pushpull_interval_ms, n)
                    + cfg.probe_interval_ms))
    uninformed = sum(not nd.has_endpoint("bench/loss") for nd in sim.nodes.values())
    hours = n * sim.now / 3_600_000
    return dict(false_dead=tally.dead, member_hours=hours, uninformed=uninformed,
                uninformed_after_rumours=after_rumours, virtual_s=sim.now / 1000,
                suspicions=tally.suspect)


def slow_run(n, secs, cfg, seed):
    sim = SwimSim(n=n, seed=seed * 104729 + n, config=cfg, max_trace=0)
    tally = Tally(sim)
    lo = suspicion_min_ms(n, cfg.probe_interval_ms, cfg.suspicion_mult)
    pause = int(0.8 * lo)
    slow = sim.ids[-1]
    sim.run_for(2000)
    pauses = 0
    while sim.now < secs * 1000:
        sim.pause(slow)
        sim.run_for(pause)
        sim.resume(slow)
        pauses += 1
        sim.run_for(max(5000, 2 * lo))
    hours = n * sim.now / 3_600_000
    return dict(false_dead=tally.dead, member_hours=hours, pauses=pauses, pause_ms=pause,
                suspicions=tally.suspect, virtual_s=sim.now / 1000)


def bench_n(n, plan, cfg, seed):
    trials, loss_s, slow_s = plan
    t0 = time.time()
    d = detection_trials(n, trials, cfg, seed)
    lr = loss_run(n, loss_s, cfg, seed)
    log(f"  n={n} loss run: {lr}")
    sr = slow_run(n, slow_s, cfg, seed)
    log(f"  n={n} slow run: {sr}")
    p = cfg.probe_interval_ms
    fp_loss = lr["false_dead"] / lr["member_hours"]
    fp_slow = sr["false_dead"] / sr["member_hours"]
    r50, r99 = pct(d["first"], 50), pct(d["alls"], 50)
    out = {
        "trials": trials,
        "detect_first_ms_p50": r50,
        "detect_all_ms_p50": r99,
        "detect_all_ms_p99": pct(d["alls"], 99),
        "detect_first_periods_p50": None if r50 is None else round(r50 / p, 2),
        "detect_all_periods_p50": None if r99 is None else round(r99 / p, 2),
        "detect_all_periods_p99": None if not d["alls"] else round(pct(d["alls"], 99) / p, 2),
        "rounds_p50": pct(d["rounds_all"], 50),
        "rounds_p99": pct(d["rounds_all"], 99),
        "rounds_member_p99": pct(d["rounds_member"], 99),
        "hops_p50": pct(d["hops"], 50),
        "hops_p99": pct(d["hops"], 99),
        "false_positives": max(fp_loss, fp_slow),
        "false_positives_detail": {
            "loss_10pct_per_member_hour": fp_loss, "loss_10pct_false_dead": lr["false_dead"],
            "loss_10pct_suspect_events": lr["suspicions"], "loss_10pct_virtual_s": lr["virtual_s"],
            "slow_member_per_member_hour": fp_slow, "slow_member_false_dead": sr["false_dead"],
            "slow_member_pauses": sr["pauses"], "slow_member_pause_ms": sr["pause_ms"],
            "slow_member_suspect_events": sr["suspicions"], "slow_member_virtual_s": sr["virtual_s"],
        },
        "fp_sim_member_hours": round(lr["member_hours"] + sr["member_hours"], 2),
        "uninformed": lr["uninformed"],
        "uninformed_after_rumours_only": lr["uninformed_after_rumours"],
        "msgs_per_member_s": round(sum(d["msgs"]) / len(d["msgs"]), 2) if d["msgs"] else None,
        "not_detected_within_120s": d["not_detected"],
        "not_spread_within_60s": d["not_spread"],
        "wall_s": round(time.time() - t0, 1),
    }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials, shorter runs (smoke test)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default="10,50,200,1000")
    a = ap.parse_args()
    cfg = SwimConfig()
    plan = QUICK if a.quick else PLAN
    sizes = [int(x) for x in a.sizes.split(",")]
    log(f"gossip benchmark seed={a.seed} sizes={sizes} quick={a.quick}")
    results = {}
    for n in sizes:
        results[str(n)] = bench_n(n, plan.get(n, plan[min(plan, key=lambda k: abs(k - n))]), cfg, a.seed)
    res50 = results.get("50", {})
    res1000 = results.get("1000", {})
    out = {
        "benchmark": "gossip",
        "seed": a.seed,
        "quick": a.quick,
        "settings": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "time_unit": "virtual ms of the simulator (probe period = probe_interval_ms)",
        "network": "per-message delay uniform 1-5 ms, FIFO per directed link",
        "results": results,
        "targets": {
            "detect_all_ms_p50_n50_le_5000": (res50.get("detect_all_ms_p50") or 1e9) <= 5000,
            "rounds_p99_n1000_le_10": (res1000.get("rounds_p99") or 1e9) <= 10 if res1000 else None,
            "uninformed_all_zero": all(r["uninformed"] == 0 for r in results.values()),
            "false_positives_all_zero": all(r["false_positives"] == 0 for r in results.values()),
        },
    }
    print(json.dumps(out, indent=1, sort_keys=False))


if __name__ == "__main__":
    main()
