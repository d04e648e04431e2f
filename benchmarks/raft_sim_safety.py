"""Benchmark: N seeded Raft simulations of 60 virtual seconds, a fault every 2-10 s.

Prints one JSON object: seeds, violations, liveness_failures, seconds (wall), cpu_seconds (summed
over workers: the load-independent cost), seeds_per_second, workers, failing (replay commands), totals. Never passes or fails on time; exits 1 only on a violation or
liveness failure. Usage: python benchmarks/raft_sim_safety.py --seeds 500 [--workers 2] [--first 0]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_image"))

from swarmnode.sim.raft_sim import run_seed  # noqa: E402


def _one(args):
    seed, bug, seconds = args
    c0 = time.process_time()
    r = run_seed(seed, bug, duration_ms=int(seconds * 1000))
    return (time.process_time() - c0, seed, r["violation_count"], r["liveness_ok"], r["replay"], r["nodes"],
            r["stats"]["events"], r["stats"]["crashes"], r["stats"]["partitions"],
            r["leaders_elected"], r["violations"][:1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=500)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--bug", default="none")
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args(argv)
    jobs = [(s, a.bug, a.seconds) for s in range(a.first, a.first + a.seeds)]
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
    out = {
        "seeds": len(rows), "violations": sum(r[1] for r in rows),
        "seeds_with_violations": len(bad_safety), "liveness_failures": len(bad_live),
        "seconds": round(secs, 2), "seeds_per_second": round(len(rows) / secs, 2),
        "cpu_seconds": round(cpu, 2), "cpu_seconds_per_seed": round(cpu / max(1, len(rows)), 3),
        "workers": a.workers, "virtual_seconds_per_seed": a.seconds, "bug": a.bug,
        "cluster_sizes": {str(n): sum(1 for r in rows if r[4] == n) for n in (3, 5)},
        "totals": {"events": sum(r[5] for r in rows), "crashes": sum(r[6] for r in rows),
                   "partitions": sum(r[7] for r in rows), "leaders_elected": sum(r[8] for r in rows)},
        "failing": [{"seed": r[0], "replay": r[3], "first": r[9]} for r in (bad_safety + bad_live)[:20]],
    }
    print(json.dumps(out, sort_keys=True))
    for r in (bad_safety + bad_live)[:20]:
        print("FAILED seed; replay: " + r[3], file=sys.stderr)
    return 1 if (bad_safety or bad_live) else 0


if __name__ == "__main__":
    sys.exit(main())
