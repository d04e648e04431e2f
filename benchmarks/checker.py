"""Benchmark of the linearizability checker; prints one JSON object (never passes or fails on time).

Owns: timing the checker on ../shared/histories/jepsen-etcd (102 histories with known verdicts) and
on generated 100,000-operation histories (seeded simulated register, 20 clients, 100 keys), valid and
with one injected stale read. Must not import: click, rich, docker.

Keys: reference_total_s / reference_worst_s (verdict and, for invalid ones, the counterexample, as
the checker returns them), reference_verdict_only_total_s (search alone), reference_correct (of 102),
big_valid_s (pairing + checking; generation excluded), big_valid_peak_mb (tracemalloc peak of a second,
traced pass), big_invalid_s (time to the first counterexample, `stop_at_first`); the same for a
history whose values come from 1..3, as `workload.values: 3` draws them (about 27 % of cas succeed,
so the search meets many matching cas and equal states): small_values_cas_ok_share,
small_values_valid_s, small_values_peak_mb. (No invalid variant: the stale-read injection relies on
unique values, and with 3 values the injected read is usually explainable by an equal write.)
cas_heavy_10k_s: one register, 10,000 operations by 20 concurrent processes, half of them cas with
values 1..3 (`gen.cas_heavy`, about a third of the cas succeed: cas_heavy_cas_ok_share), checked
(pairing + checking); cas_heavy_invalid_s: the same history with the first read after event 400
returning a value nothing writes (`gen.corrupt_read`), verdict and counterexample.
Each `*_s` is wall time; `*_cpu_s` (process CPU time) is printed beside the main ones because this
machine is often shared.

Run: python benchmarks/checker.py [--seed N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaos.checkers import wgl  # noqa: E402
from chaos.checkers.gen import cas_heavy, corrupt_read, inject_stale_read, simulate  # noqa: E402
from chaos.checkers.linearizable import check_ops  # noqa: E402
from chaos.history import pair_ops, read_jepsen_log  # noqa: E402

HISTORIES = REPO.parent / "shared" / "histories" / "jepsen-etcd"


def reference() -> dict:
    lines = (HISTORIES / "VERDICTS").read_text().splitlines()
    expected = dict(line.split() for line in lines if line.strip() and not line.startswith("#"))
    parsed = {name: pair_ops(read_jepsen_log(HISTORIES / name)) for name in sorted(expected)}
    total = worst = search_total = cpu = 0.0
    worst_name = None
    correct = 0
    for name, ops in parsed.items():
        t, c = time.perf_counter(), time.process_time()
        kr = wgl.check_key("k", ops, timeout_s=60)
        dt = time.perf_counter() - t
        cpu += time.process_time() - c
        t = time.perf_counter()
        wgl.search(ops)
        search_total += time.perf_counter() - t
        total += dt
        if dt > worst:
            worst, worst_name = dt, name
        correct += kr.outcome == expected[name]
    return {"reference_total_s": round(total, 4), "reference_total_cpu_s": round(cpu, 4),
            "reference_worst_s": round(worst, 4),
            "reference_worst_file": worst_name, "reference_verdict_only_total_s": round(search_total, 4),
            "reference_correct": correct, "reference_count": len(expected)}


def big(seed: int) -> dict:
    events = simulate(seed=seed, clients=20, keys=100, ops=100_000)
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    out = check_ops(pair_ops(events))
    valid_s, valid_cpu = time.perf_counter() - t, time.process_time() - c
    tracemalloc.start()
    check_ops(pair_ops(events))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bad, info = inject_stale_read(events, seed=seed)
    gc.collect()
    t = time.perf_counter()
    out_bad = check_ops(pair_ops(bad), stop_at_first=True)
    invalid_s = time.perf_counter() - t
    return {"big_ops": 100_000, "big_valid_verdict": out.verdict.value, "big_valid_s": round(valid_s, 3),
            "big_valid_cpu_s": round(valid_cpu, 3),
            "big_valid_peak_mb": round(peak / 2**20, 1), "big_invalid_verdict": out_bad.verdict.value,
            "big_invalid_s": round(invalid_s, 3),
            "big_invalid_counterexample_ops": out_bad.evidence["failed_keys"][0]["counterexample_ops"]
            if out_bad.evidence.get("failed_keys") else None, "big_invalid_injected": info}


def small_values(seed: int, values: int = 3) -> dict:
    events = simulate(seed=seed, clients=20, keys=100, ops=100_000, values=values)
    ops = pair_ops(events)
    cas = [o for o in ops if o.f == "cas" and o.type in ("ok", "fail")]
    gc.collect()
    t = time.perf_counter()
    out = check_ops(ops)
    valid_s = time.perf_counter() - t
    tracemalloc.start()
    check_ops(pair_ops(events))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"small_values": values, "small_values_cas_ok_share": round(sum(o.type == "ok" for o in cas) / len(cas), 3),
            "small_values_valid_verdict": out.verdict.value, "small_values_valid_s": round(valid_s, 3),
            "small_values_peak_mb": round(peak / 2**20, 1)}


def cas_heavy_case(seed: int) -> dict:
    events = cas_heavy(seed)
    ops = pair_ops(events)
    cas = [o for o in ops if o.f == "cas" and o.type in ("ok", "fail")]
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    out = check_ops(pair_ops(events))
    valid_s, valid_cpu = time.perf_counter() - t, time.process_time() - c
    bad, info = corrupt_read(events, after=400)
    gc.collect()
    t = time.perf_counter()
    out_bad = check_ops(pair_ops(bad))
    invalid_s = time.perf_counter() - t
    failed = out_bad.evidence.get("failed_keys") or [{}]
    return {"cas_heavy_ops": len(ops), "cas_heavy_processes": len({o.process for o in ops}),
            "cas_heavy_cas_share": round(len([o for o in ops if o.f == "cas"]) / len(ops), 3),
            "cas_heavy_cas_ok_share": round(sum(o.type == "ok" for o in cas) / len(cas), 3),
            "cas_heavy_verdict": out.verdict.value, "cas_heavy_states": out.evidence.get("stats", {}).get("states"),
            "cas_heavy_10k_s": round(valid_s, 3), "cas_heavy_10k_cpu_s": round(valid_cpu, 3),
            "cas_heavy_invalid_verdict": out_bad.verdict.value, "cas_heavy_invalid_s": round(invalid_s, 3),
            "cas_heavy_invalid_counterexample_ops": failed[0].get("counterexample_ops"),
            "cas_heavy_invalid_injected": info}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result = {"seed": args.seed, "python": sys.version.split()[0]}
    if (HISTORIES / "VERDICTS").exists():
        result.update(reference())
    else:
        result["reference_error"] = f"{HISTORIES} not found"
    result.update(big(args.seed))
    result.update(small_values(args.seed))
    result.update(cas_heavy_case(args.seed))
    result["load"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
