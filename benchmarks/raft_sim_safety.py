"""Benchmark: N seeded Raft simulations of 60 virtual seconds, a fault every 2-10 s.

Prints one JSON object: seeds, violations, liveness_failures, bound_exceeded (runs that hit an
event bound: counted as failures with their replay, never a crash of the sweep), efficiency
(spurious_elections while healthy with a stable leader, elections_per_fault, entries written to
storage twice and early local snapshots -- each bounded per run -- and efficiency_failures),
paths (how often each hard protocol path ran, total and per 100 seeds), seconds (wall), seeds_per_s
(seeds / seconds: issue 25's goal is 500 default seeds in <= 120 s on 2 cores, every check on;
seeds_per_second is the same figure under its older name), cpu_seconds (summed over workers: the
less load-dependent cost), workers, failing (replay commands), totals. Never passes or fails on time; exits 1 on a violation, a liveness or efficiency
failure or a hit bound. Usage: python benchmarks/raft_sim_safety.py --seeds 500 [--workers 2]
[--first 0] [--profile default|hunt|membership] [--core tests.raft.wrong_cores:CommitsPastLastNew] [--save]
[--fsync-ms 10 --client-gap-ms 10]

--fsync-ms F drives every node as the agent's group commit does (SimParams.fsync_ms: a Ready's fsync
completes up to F virtual ms later while the node keeps stepping; committed durable entries are
answered meanwhile by RaftNode.apply_durable); `writes_acked_during_fsync` counts the client writes
acknowledged by apply_durable -- during an fsync, or just before a Ready is taken (as the agent does):
with 3 or 5 voters that is every acknowledgement. --client-gap-ms 10 makes the clients busier.

--profile membership (issue 23) runs MEMBERSHIP_PROFILE (20 virtual seconds, every default fault
plus random membership changes: swarmnode/sim/membership_driver.py); the JSON then also has
`membership` (operations run, changes committed and refused, nodes added and retired, totals) and
the key `sim_seeds_<N>_violations` (N the seeds run: 10k for 10,000). --save also writes the JSON
under benchmarks/results/ (benchmarks/_result.py: commit, load before and after). `first` is the first
seed run (`--first`), so that chunked sweeps can be folded (benchmarks/membership.py --sim-json).

--core runs a RaftNode subclass (a deliberately wrong core from the tests) instead of RaftNode: the
number of seeds with a violation is then how often the simulator catches that core.
`paths_seeds_per_100` says in how many of 100 seeds each path ran at least once; `path_tails` gives,
for the stale-tail paths, the tail lengths seen (min, median, max).
"""
from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "node_image"))
sys.path.insert(0, ROOT)

from swarmnode.sim.raft_sim import HUNT_PROFILE, MEMBERSHIP_PROFILE, run_seed  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _result import Recorder  # noqa: E402

HUNT = {k: v for k, v in HUNT_PROFILE.items() if k != "duration_ms"}
MEMBERSHIP = {k: v for k, v in MEMBERSHIP_PROFILE.items() if k != "duration_ms"}
MEMBERSHIP_TOTALS = ("ops", "committed_changes", "refused", "abandoned", "added")


def load_core(spec: str):
    """'module:Class' -> the class (a RaftNode subclass), or None for ''."""
    if not spec:
        return None
    mod, _, name = spec.partition(":")
    return getattr(importlib.import_module(mod), name)


def _one(args):
    seed, bug, seconds, profile, max_events, core, fsync_ms, client_gap_ms = args
    c0 = time.process_time()
    kw = dict(HUNT) if profile == "hunt" else dict(MEMBERSHIP) if profile == "membership" else {}
    if fsync_ms:
        kw["fsync_ms"] = fsync_ms
    if client_gap_ms:
        kw["client_gap_ms_mean"] = client_gap_ms
    if core:
        kw["node_factory"] = load_core(core)
    if max_events:
        kw["max_events"] = max_events
    try:
        r = run_seed(seed, bug, duration_ms=int(seconds * 1000), **kw)
    except Exception as e:   # the simulator must end every run in a verdict; count it if not
        r = {"violation_count": 1, "liveness_ok": None, "replay": f"seed {seed} raised {e!r}", "nodes": 0,
             "stats": {"events": 0, "crashes": 0, "partitions": 0}, "leaders_elected": 0,
             "violations": [{"kind": "sim-exception", "detail": repr(e)}], "bound_exceeded": repr(e),
             "efficiency": {}, "efficiency_ok": True, "paths": {}}
    return (time.process_time() - c0, seed, r["violation_count"], r["liveness_ok"], r["replay"], r["nodes"],
            r["stats"]["events"], r["stats"]["crashes"], r["stats"]["partitions"],
            r["leaders_elected"], r["violations"][:1], r["bound_exceeded"], r["efficiency"],
            r["efficiency_ok"], r["paths"], r.get("path_tails", {}), r.get("membership"),
            r["stats"].get("writes_acked", 0), r["stats"].get("early_acks", 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=500)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--bug", default="none")
    ap.add_argument("--seconds", type=float, default=None, help="virtual seconds (60; 20 with --profile hunt)")
    ap.add_argument("--profile", default="default", choices=("default", "hunt", "membership"))
    ap.add_argument("--save", action="store_true", help="also write the JSON under benchmarks/results/")
    ap.add_argument("--max-events", type=int, default=0, help="override the per-run event bound")
    ap.add_argument("--core", default="", help="module:Class of a RaftNode subclass to run instead of RaftNode")
    ap.add_argument("--fsync-ms", type=float, default=0.0,
                    help="the group-commit driver: each Ready's fsync completes up to this many "
                         "virtual ms later while the node keeps stepping (0: the reference driver)")
    ap.add_argument("--client-gap-ms", type=float, default=0.0,
                    help="mean virtual ms between a client's operations (0: the profile's, 150)")
    a = ap.parse_args(argv)
    if a.seconds is None:
        a.seconds = {"hunt": 20.0, "membership": MEMBERSHIP_PROFILE["duration_ms"] / 1000}.get(a.profile, 60.0)
    try:
        load_core(a.core)
    except (ImportError, AttributeError, ValueError) as e:
        print(f"--core {a.core!r}: {e}", file=sys.stderr)
        return 2
    jobs = [(s, a.bug, a.seconds, a.profile, a.max_events, a.core, a.fsync_ms, a.client_gap_ms)
            for s in range(a.first, a.first + a.seeds)]
    rec = Recorder("raft_sim_safety" + ("" if a.profile == "default" else "-" + a.profile))
    t0 = time.monotonic()
    if a.workers > 1:
        with multiprocessing.get_context("fork").Pool(a.workers) as pool:
            rows = pool.map(_one, jobs, chunksize=4)
    else:
        rows = [_one(j) for j in jobs]
    secs = time.monotonic() - t0
    cpu = sum(r[0] for r in rows)
    rows = [r[1:] for r in rows]
    bad_safety = [r for r in rows if r[1]]
    bad_live = [r for r in rows if r[2] is False]
    bad_bound = [r for r in rows if r[10]]
    bad_eff = [r for r in rows if not r[12]]
    effs = [r[11] for r in rows if r[11]]
    path_totals: dict = {}
    for r in rows:
        for k, v in r[13].items():
            path_totals[k] = path_totals.get(k, 0) + v
    n = max(1, len(rows))
    seeds_hit = {k: sum(1 for r in rows if r[13].get(k)) for k in path_totals}
    tails: dict = {}
    for r in rows:
        for k, v in r[14].items():
            tails.setdefault(k, []).extend(v)
    out = {
        "seeds": len(rows), "first": a.first, "violations": sum(r[1] for r in rows),
        "seeds_with_violations": len(bad_safety), "liveness_failures": len(bad_live),
        "seconds": round(secs, 2), "seeds_per_s": round(len(rows) / secs, 2),
        "seeds_per_second": round(len(rows) / secs, 2),     # the older name of seeds_per_s, kept
        "cpu_seconds": round(cpu, 2), "cpu_seconds_per_seed": round(cpu / max(1, len(rows)), 3),
        "workers": a.workers, "virtual_seconds_per_seed": a.seconds, "bug": a.bug,
        "cluster_sizes": {str(n): sum(1 for r in rows if r[4] == n) for n in (3, 5)},
        "totals": {"events": sum(r[5] for r in rows), "crashes": sum(r[6] for r in rows),
                   "partitions": sum(r[7] for r in rows), "leaders_elected": sum(r[8] for r in rows)},
        "bound_exceeded": len(bad_bound),
        "spurious_elections": sum(e["spurious_elections"] + e["spurious_term_increases"] for e in effs),
        "elections_per_fault": round(sum(e["elections"] for e in effs) / max(1, sum(e["faults"] for e in effs)), 3),
        "elections_per_fault_max": max((e["elections_per_fault"] for e in effs), default=0),
        "efficiency_failures": len(bad_eff),
        "efficiency": {k: sum(e.get(k, 0) for e in effs) for k in
                       ("elections", "term_increases", "spurious_elections", "spurious_term_increases",
                        "spurious_campaigns", "faults", "repersisted_entries", "early_compactions")},
        "paths": path_totals,
        "paths_per_100_seeds": {k: round(100 * v / n, 1) for k, v in path_totals.items()},
        "paths_seeds_per_100": {k: round(100 * v / n, 1) for k, v in seeds_hit.items()},
        "path_tails": {k: {"min": min(v), "median": sorted(v)[len(v) // 2], "max": max(v), "n": len(v)}
                       for k, v in tails.items() if v},
        "core": a.core or "RaftNode",
        "profile": a.profile,
        "fsync_ms": a.fsync_ms, "client_gap_ms": a.client_gap_ms or None,
        "writes_acked": sum(r[16] for r in rows),
        "writes_acked_during_fsync": sum(r[17] for r in rows),   # by apply_durable (fsync_ms > 0)
        "failing": [{"seed": r[0], "replay": r[3], "first": r[9]} for r in (bad_safety + bad_live + bad_eff)[:20]],
    }
    if a.profile == "membership":
        ms = [r[15] for r in rows if r[15]]
        kinds: dict = {}
        for m in ms:
            for k, v in m["kinds"].items():
                kinds[k] = kinds.get(k, 0) + v
        out["membership"] = {k: sum(m[k] for m in ms) for k in MEMBERSHIP_TOTALS}
        out["membership"]["retired"] = sum(len(m["retired"]) for m in ms)
        out["membership"]["kinds"] = kinds
        n_key = "10k" if len(rows) == 10_000 else str(len(rows))
        out[f"sim_seeds_{n_key}_violations"] = out["seeds_with_violations"]
    if a.save:
        out["saved_to"] = str(rec.save(out))
    print(json.dumps(out, sort_keys=True))
    for r in (bad_safety + bad_live + bad_eff)[:20]:
        print("FAILED seed; replay: " + r[3], file=sys.stderr)
    return 1 if (bad_safety or bad_live or bad_bound or bad_eff) else 0


if __name__ == "__main__":
    sys.exit(main())
