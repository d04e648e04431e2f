"""Benchmark: the nemesis and the workload on real containers (issue 11). Prints one JSON object,
never pass/fail on time.

Keys:
- isolate_apply_p50_ms / isolate_apply_p99_ms: from a fault's scheduled start to verified in effect,
  isolating the current leader of 3 managers + 5 workers, over --trials trials (faults.jsonl:
  `start`.ts - `intend-start`.planned_ts);
- heal_apply_p99_ms: the same for the end of each isolation (`stop`.ts - `intend-stop`.ts);
- fire_lateness_p99_ms: planned start to targets resolved (intend-start: the thread's lateness plus the
  status view it needed) over every fault of a --soak-s random schedule;
- plan_1h_random_s: `chaos plan` (in-process) of a one-hour random experiment;
- workload_rate_ratio, workload_p99_ms: achieved over requested ops/s at --rate ops/s for
  --workload-s on 3 + 5, with the p99 client latency of ok operations (from the intended start);
- clock_apply_p50_ms / clock_apply_p99_ms, cpu_apply_p50_ms / cpu_apply_p99_ms: the same for a clock
  fault (offset -1s on the leader: the control file rewritten, the node reading the new spec back)
  and a cpu fault (0.1 cpus on a follower: the engine's update, the limit read back), --trials each,
  and their undo (`clock_undo_p99_ms`, `cpu_undo_p99_ms`); `--only clock-cpu` runs only these;
- workload_rate_ratio_latency150 (goal >= 0.95 at --rate 300): the pooled open loop (max_in_flight
  = rate x 1 s) under 150 ms +- 50 ms on every manager-to-manager link, over the fault's span, with
  workload_latency150_check_s, the linearizable check's time on that history; `--only latency150`;
- halves_3x100_s (with --large, or --only halves): a halves partition of 3 managers + 100 workers applied
  and verified (the servers' listing on every cut link, probes of a seeded sample of 32), then
  halves_3x100_heal_s, the heal verified as a run verifies (probes of a reachable link escalate
  100 -> 3,200 ms within the deadline, chaos.runner VERIFY_PROBE_TIMEOUTS_MS).
- link_fault_870_apply_p50_ms / link_fault_870_apply_p99_ms (goal <= 500 ms), link_fault_870_remove_p50_ms /
  link_fault_870_remove_p99_ms (goal <= 500 ms): on 3 managers + 30 workers, a flaky cut (toxicity 0.5,
  both streams: 1,740 toxics) on all 870 worker-to-worker links applied and then removed, each including
  its verification (every toxic read back from the servers' listing), --trials times (`--only link-fault`,
  and in the full run); link_fault_split_p50_ms splits each into apply and verify.
- power_loss_apply_p50_ms / power_loss_apply_p99_ms: a `power-loss` of one manager (3 managers + 1
  worker), from its scheduled start to in effect (marker armed by an exec, SIGKILL, container state);
  power_loss_restart_p50_s / power_loss_restart_p99_s (goal <= 3 s): from the kill (the engine's
  FinishedAt) to the node answering its status again after a 0.2 s hold (restart, the agent's cut
  back to its synced lengths, its start-up), over --trials power losses; power_loss_dropped_bytes:
  what the cuts dropped in all (a correct agent acknowledges nothing unsynced: often 0).
- disk_full_apply_p50_ms / disk_full_apply_p99_ms (goal <= 250 ms): a `disk-full` of one manager
  (its 64 MB tmpfs data volume filled by a ballast from the holder container, verified by free space
  read back and a write probe refused), from its scheduled start to in effect; disk_full_free_p99_ms:
  the end, ballast removed and a write probe accepted (`stop`.ts - `intend-stop`.ts).

    python3 benchmarks/nemesis.py [--quick] [--large] [--trials 30] [--soak-s 300] [--workload-s 60]
    python3 benchmarks/nemesis.py --only power-loss|disk-full [--trials 20] [--save]
    python3 benchmarks/nemesis.py --only latency150 [--rate 300] [--workload-s 60] [--save]
    python3 benchmarks/nemesis.py --only soak [--soak-s 60] [--burners 2] [--save]
    python3 benchmarks/nemesis.py --only link-fault [--trials 20] [--save]
    flock LOCKFILE python3 benchmarks/nemesis.py --only halves [--save]   (3 + 100: one big cluster at a time)
    python3 benchmarks/nemesis.py --only halves --halves-workers 30        (3 + 30: halves_3x30_s, a proxy)

--burners N starts N CPU-burning processes at normal priority for the whole run (issue 25 section 5
asks for fire_lateness at load <= 1 and beside two burners); the JSON then has `burners`,
`load_median` and `load_max` (the 1-minute load sampled every 5 s) besides load_before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chaos.experiment import plan as plan_mod  # noqa: E402
from chaos.experiment.loader import load_file, load_text  # noqa: E402
from chaos.runner import RunOptions, Runner  # noqa: E402


def q(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else None


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "faults.jsonl").read_text().splitlines() if x.strip()]


def run(text: str, seed: int, out: Path, say) -> Path:
    path = out / f"exp-{seed}-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    runner = Runner(load_file(path), RunOptions(seed=seed, out_dir=out, say=say))
    outcome = runner.execute()
    if outcome.error is not None:
        raise SystemExit(f"run failed: {outcome.error.message}")
    return outcome.run_dir


def isolate(out: Path, trials: int, say) -> dict:
    text = f"""version: 1
name: bench-isolate
cluster: {{managers: 3, workers: 5}}
workload: {{clients: 2, rate: 20, keys: 2}}
schedule:
  - {{name: iso, at: 2s, for: 1s, fault: partition, isolate: leader, repeat: {{every: 3s, count: {trials}}}}}
recovery: {{window: 1s, converge: 20s}}
checks: [raft-safety]
"""
    d = run(text, 1, out, say)
    by = {}
    for r in rows(d):
        by.setdefault(r["fault"], {})[r["action"]] = r
    apply_ms = [(f["start"]["ts"] - f["intend-start"]["planned_ts"]) * 1000 for f in by.values() if "start" in f]
    heal_ms = [(f["stop"]["ts"] - f["intend-stop"]["ts"]) * 1000 for f in by.values() if "stop" in f and "intend-stop" in f]
    return {"isolate_trials": len(apply_ms), "isolate_apply_p50_ms": round(q(apply_ms, 0.5), 1),
            "isolate_apply_p99_ms": round(q(apply_ms, 0.99), 1), "heal_apply_p50_ms": round(q(heal_ms, 0.5), 1),
            "heal_apply_p99_ms": round(q(heal_ms, 0.99), 1)}


def clock_cpu(out: Path, trials: int, say) -> dict:
    text = f"""version: 1
name: bench-clock-cpu
cluster: {{managers: 3, workers: 1}}
workload: {{clients: 2, rate: 20, keys: 2}}
schedule:
  - {{name: clk, at: 2s, for: 1s, fault: clock, target: leader, offset: -1s, repeat: {{every: 3s, count: {trials}}}}}
  - {{name: cpu, at: 3.5s, for: 1s, fault: cpu, target: {{role: followers, count: one}}, cpus: 0.1,
     repeat: {{every: 3s, count: {trials}}}}}
recovery: {{window: 1s, converge: 20s}}
checks: [raft-safety]
"""
    d = run(text, 3, out, say)
    by: dict = {}
    for r in rows(d):
        by.setdefault(r["fault"], {})[r["action"]] = r
    res: dict = {}
    for kind in ("clock", "cpu"):
        fs = [f for f in by.values() if (f.get("start") or {}).get("kind") == kind]
        apply_ms = [(f["start"]["ts"] - f["intend-start"]["planned_ts"]) * 1000 for f in fs]
        undo_ms = [(f["stop"]["ts"] - f["intend-stop"]["ts"]) * 1000 for f in fs if "stop" in f and "intend-stop" in f]
        effective = sum(1 for f in fs if ((f.get("stop") or {}).get("effect") or {}).get("effective"))
        res.update({f"{kind}_trials": len(apply_ms), f"{kind}_effective": effective,
                    f"{kind}_apply_p50_ms": round(q(apply_ms, 0.5), 1) if apply_ms else None,
                    f"{kind}_apply_p99_ms": round(q(apply_ms, 0.99), 1) if apply_ms else None,
                    f"{kind}_undo_p99_ms": round(q(undo_ms, 0.99), 1) if undo_ms else None})
    return res


def soak(out: Path, seconds: float, say) -> dict:
    text = f"""version: 1
name: bench-soak
cluster: {{managers: 3, workers: 5}}
workload: {{clients: 2, rate: 20, keys: 2}}
schedule:
  - random: {{from: 2s, to: {seconds + 2:g}s, kinds: [partition, latency, pause, kill, bandwidth],
             targets: [leader, followers, {{role: workers, count: one}}], duration: [1s, 3s], gap: [0.5s, 2s],
             concurrency: 2}}
recovery: {{window: 2s, converge: 30s}}
checks: [raft-safety]
"""
    d = run(text, 2, out, say)
    # planned start -> targets resolved (intend-start): the thread's lateness plus the view it needed
    # minus the selector's wait (no leader during an election, an `of:` fault not yet fired), which is
    # the cluster's time, not the harness's: recorded apart as selector_wait
    starts = [r for r in rows(d) if r["action"] == "intend-start"]
    late = [(r["lateness_s"] + r.get("resolve_s", 0.0) - r.get("selector_wait_s", 0.0)) * 1000 for r in starts]
    wait = [r.get("selector_wait_s", 0.0) * 1000 for r in starts]
    return {"soak_faults": len(late), "fire_lateness_p50_ms": round(q(late, 0.5), 2),
            "fire_lateness_p99_ms": round(q(late, 0.99), 2), "selector_wait_p99_ms": round(q(wait, 0.99), 2),
            "selector_wait_max_ms": round(max(wait, default=0.0), 2),
            "selector_waited_faults": sum(1 for w in wait if w > 0.5)}


def power_loss(out: Path, trials: int, say) -> dict:
    text = f"""version: 1
name: bench-power-loss
cluster: {{managers: 3, workers: 1}}
workload: {{clients: 2, rate: 20, keys: 2}}
schedule:
  - {{name: pl, at: 2s, for: 0.2s, fault: power-loss, target: {{role: managers, count: one}},
     repeat: {{every: 5s, count: {trials}}}}}
recovery: {{window: 1s, converge: 20s}}
checks: [raft-safety]
"""
    d = run(text, 4, out, say)
    by: dict = {}
    for r in rows(d):
        by.setdefault(r["fault"], {})[r["action"]] = r
    apply_ms, restart_s, dropped, effective = [], [], 0, 0
    for f in by.values():
        if "start" not in f or "stop" not in f:
            continue
        apply_ms.append((f["start"]["ts"] - f["intend-start"]["planned_ts"]) * 1000)
        effective += bool((f["stop"].get("effect") or {}).get("effective"))
        for node, rec in (f["stop"]["details"].get("nodes") or {}).items():
            killed = f["start"]["details"]["nodes"][node]["effective_ts"]
            if rec.get("answering_ts") is not None:
                restart_s.append(rec["answering_ts"] - killed)
            dropped += ((rec.get("power_loss") or {}).get("dropped_bytes") or 0)
    return {"power_loss_trials": len(apply_ms), "power_loss_effective": effective,
            "power_loss_apply_p50_ms": round(q(apply_ms, 0.5), 1), "power_loss_apply_p99_ms": round(q(apply_ms, 0.99), 1),
            "power_loss_restart_p50_s": round(q(restart_s, 0.5), 3),
            "power_loss_restart_p99_s": round(q(restart_s, 0.99), 3),
            "power_loss_restart_goal_s": 3.0, "power_loss_dropped_bytes": dropped}


def disk_full(out: Path, trials: int, say) -> dict:
    text = f"""version: 1
name: bench-disk-full
cluster: {{managers: 3, workers: 1}}
workload: {{clients: 2, rate: 20, keys: 2}}
schedule:
  - {{name: df, at: 2s, for: 1s, fault: disk-full, target: {{role: managers, count: one}},
     repeat: {{every: 3s, count: {trials}}}}}
recovery: {{window: 1s, converge: 20s}}
checks: [raft-safety]
"""
    d = run(text, 5, out, say)
    by: dict = {}
    for r in rows(d):
        by.setdefault(r["fault"], {})[r["action"]] = r
    apply_ms = [(f["start"]["ts"] - f["intend-start"]["planned_ts"]) * 1000 for f in by.values() if "start" in f]
    free_ms = [(f["stop"]["ts"] - f["intend-stop"]["ts"]) * 1000 for f in by.values()
               if "stop" in f and "intend-stop" in f]
    effective = sum(bool((f.get("stop") or {}).get("effect", {}).get("effective")) for f in by.values())
    return {"disk_full_trials": len(apply_ms), "disk_full_effective": effective,
            "disk_full_apply_p50_ms": round(q(apply_ms, 0.5), 1), "disk_full_apply_p99_ms": round(q(apply_ms, 0.99), 1),
            "disk_full_apply_goal_ms": 250, "disk_full_free_p99_ms": round(q(free_ms, 0.99), 1)}


def plan_1h() -> dict:
    text = """version: 1
name: plan-1h
cluster: {managers: 5, workers: 20}
schedule:
  - random: {from: 0s, to: 1h, kinds: [partition, latency, bandwidth, reset, stall, pause, kill, stop, flaky],
             targets: [leader, followers, {role: workers, count: 3}, {role: managers, count: minority}],
             duration: [1s, 5s], gap: [0.5s, 2s], concurrency: 4}
"""
    t0 = time.perf_counter()
    exp, problems = load_text(text)
    assert exp is not None, problems
    p = plan_mod.expand(exp, 1)
    lines = plan_mod.render(p)
    plan_mod.canonical(p)
    return {"plan_1h_random_s": round(time.perf_counter() - t0, 3), "plan_1h_faults": len(p["faults"]),
            "plan_1h_lines": len(lines)}


def workload(out: Path, rate: float, seconds: float, say) -> dict:
    clients = max(4, int(rate // 20))
    text = f"""version: 1
name: bench-workload
cluster: {{managers: 3, workers: 5}}
workload: {{clients: {clients}, rate: {rate:g}, keys: 20}}
steady: {seconds:g}s
recovery: {{window: 0s, converge: 20s}}
checks: [raft-safety]
"""
    d = run(text, 3, out, say)
    run_json = json.loads((d / "run.json").read_text())
    steady = run_json["phases"][0]
    hist = [json.loads(x) for x in (d / "history.jsonl").read_text().splitlines()]
    inv = {}
    done = 0
    lat = []
    for e in hist:
        if e["type"] == "invoke":
            inv[e["process"]] = e
        elif e["process"] in inv:
            i = inv.pop(e["process"])
            if steady["start"] <= i["ts"] < steady["end"]:
                done += 1
                if e["type"] == "ok":
                    lat.append((e["ts"] - i.get("sched_ts", i["ts"])) * 1000)
    length = steady["end"] - steady["start"]
    return {"workload_requested_ops_s": rate, "workload_achieved_ops_s": round(done / length, 1),
            "workload_rate_ratio": round(done / length / rate, 3), "workload_p50_ms": round(q(lat, 0.5), 1),
            "workload_p99_ms": round(q(lat, 0.99), 1), "workload_clients": clients}


def workload_latency150(out: Path, rate: float, seconds: float, say, max_in_flight: int | None = None) -> dict:
    """The open loop under 150 ms +- 50 ms on every manager-to-manager link (issue 25 section 2):
    achieved / requested ops/s over the fault's span (invocations whose intended start lies in it),
    with the pool (`max_in_flight`, default rate x 1 s) and the linearizable check's time on the
    resulting history."""
    mif = max_in_flight or min(1024, max(8, int(rate)))
    text = f"""version: 1
name: bench-workload-latency150
cluster: {{managers: 3, workers: 2}}
workload: {{clients: 4, rate: {rate:g}, keys: 20, max_in_flight: {mif}}}
schedule:
  - {{name: slow, at: 0s, for: {seconds:g}s, fault: latency, target: managers, peers: managers, ms: 150, jitter_ms: 50}}
recovery: {{window: 2s, converge: 20s}}
checks: [linearizable, raft-safety]
"""
    d = run(text, 3, out, say)
    by = {r["action"]: r for r in rows(d) if r.get("fault") == "slow"}
    if "start" not in by or "intend-stop" not in by:
        raise SystemExit(f"latency fault not applied and ended as planned: {sorted(by)}")
    lo, hi = by["start"]["ts"] + 0.5, by["intend-stop"]["ts"] - 0.5  # the fault in effect, margins both ends
    hist = [json.loads(x) for x in (d / "history.jsonl").read_text().splitlines()]
    invokes = [e for e in hist if e["type"] == "invoke"]
    window = [e for e in invokes if lo <= e.get("sched_ts", e["ts"]) < hi]
    lat, inv = [], {}
    for e in hist:
        if e["type"] == "invoke":
            inv[e["process"]] = e
        elif e["process"] in inv:
            i = inv.pop(e["process"])
            if lo <= i.get("sched_ts", i["ts"]) < hi and e["type"] == "ok":
                lat.append((e["ts"] - i.get("sched_ts", i["ts"])) * 1000)
    results = json.loads((d / "results.json").read_text())
    lin = next(c for c in results["checks"] if c["name"] == "linearizable")
    wl = json.loads((d / "run.json").read_text()).get("workload", {})
    return {"workload_rate_ratio_latency150": round(len(window) / (hi - lo) / rate, 3),
            "workload_latency150_requested_ops_s": rate, "workload_latency150_window_s": round(hi - lo, 2),
            "workload_latency150_ok_p50_ms": round(q(lat, 0.5), 1), "workload_latency150_ok_p99_ms": round(q(lat, 0.99), 1),
            "workload_latency150_max_in_flight": mif, "workload_latency150_peak_in_flight": wl.get("peak_in_flight"),
            "workload_latency150_skipped_slots": wl.get("skipped_slots"),
            "workload_latency150_linearizable": lin["verdict"], "workload_latency150_check_s": lin.get("duration_s"),
            "workload_latency150_ops": sum(1 for e in hist if e["type"] == "invoke")}


def halves_large(say, workers: int = 100) -> dict:
    """3 + `workers` nodes (100: the lead's figure; fewer, e.g. 30, as a proxy on a shared machine):
    a halves partition through the LinkController, applied and verified. Keys halves_3x<workers>_*."""
    import random as _random

    from chaos import partition as partition_mod
    from chaos.env import cleanup
    from chaos.env.engine import connect
    from chaos.env.spec import ClusterSpec
    from chaos.env.up import bring_up
    from chaos.image import build_node_image
    from chaos.runner import VERIFY_DEADLINE_S, VERIFY_PROBE_MS, VERIFY_PROBE_TIMEOUTS_MS
    from chaos.toxi import LinkController

    client = connect()
    image = build_node_image(client).tag
    name = f"bench{os.getpid() % 10000}"
    try:
        up = bring_up(client, ClusterSpec(name=name, managers=3, workers=workers, seed=1), image, 600)
        cl = up.cluster
        # verified as a run verifies (chaos.runner._experiment): a reachable link's probe escalates
        # 100 -> 3,200 ms within the deadline. A fixed 200 ms failed the heal on 39 of 5,304 links
        # whose proxies had no toxic left: the agents were too busy re-converging to echo in time.
        links = LinkController(cl.toxiproxy_api(), cl.topology(), seed=1,
                               probe=lambda s, d, t=VERIFY_PROBE_MS: cl.probe(s, d, timeout_ms=t),
                               probe_timeouts_ms=VERIFY_PROBE_TIMEOUTS_MS, verify_deadline_s=VERIFY_DEADLINE_S)
        cut = partition_mod.halves(cl.nodes, _random.Random(1))
        t0 = time.perf_counter()
        links.apply_partition(cut)
        applied = time.perf_counter() - t0
        key = f"halves_3x{workers}"
        out = {f"{key}_s": round(applied, 2), f"{key}_links": len(cut)}
        print(json.dumps(out), file=sys.stderr, flush=True)  # kept even if the heal fails
        t1 = time.perf_counter()
        try:
            links.heal()
            out[f"{key}_heal_s"] = round(time.perf_counter() - t1, 2)
        except Exception as exc:  # noqa: BLE001 -- recorded: a failed heal verification is a result too
            out[f"{key}_heal_error"] = str(exc)[:300]
        return out
    finally:
        cleanup.remove_objects(client, cluster=name)


def link_fault_870(say, trials: int, workers: int = 30) -> dict:
    """3 + `workers` nodes: a flaky cut (toxicity 0.5, both streams) on every worker-to-worker link
    (870 for 30 workers) applied and removed `trials` times through the runner's link-fault path
    (chaos.runner.ClusterEffects: the toxic operations, batched per Toxiproxy server when it has the
    batch endpoint, then the servers' listing checked on every link). Times are from the call to the
    verified result; link_fault_split_p50_ms shows the apply / verify split."""
    from chaos.env import cleanup
    from chaos.env.engine import connect
    from chaos.env.spec import ClusterSpec
    from chaos.env.up import bring_up
    from chaos.image import build_node_image
    from chaos.runner import ClusterEffects
    from chaos.toxi import LinkController

    client = connect()
    image = build_node_image(client).tag
    name = f"bl{os.getpid() % 10000}"
    try:
        up = bring_up(client, ClusterSpec(name=name, managers=3, workers=workers, seed=1), image, 600)
        cl = up.cluster
        api = cl.toxiproxy_api()
        links = LinkController(api, cl.topology(), seed=1, probe=lambda s, d: cl.probe(s, d, timeout_ms=200))
        eff = ClusterEffects(cl, links, clock=time.time)
        ws = list(cl.workers)
        pairs = [(a, b) for a in ws for b in ws if a != b]
        params = {"toxicity": 0.5, "kind": "cut"}
        apply_ms, remove_ms = [], []
        parts: dict[str, list] = {"apply": [], "verify": [], "remove_apply": [], "remove_verify": [], "listing": []}
        for i in range(trials):
            t0 = time.perf_counter()
            rec = eff.add_link_fault("flaky-cut", pairs, params)
            apply_ms.append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            rem = eff.remove_link_fault("flaky-cut", pairs)
            remove_ms.append((time.perf_counter() - t1) * 1000)
            for key, r, k in (("apply", rec, "apply_ms"), ("verify", rec, "verify_ms"),
                              ("remove_apply", rem, "apply_ms"), ("remove_verify", rem, "verify_ms")):
                parts[key].append(r[k])
            t2 = time.perf_counter()
            api.proxies()   # one listing alone: the floor of a verification
            parts["listing"].append(round((time.perf_counter() - t2) * 1000, 1))
            say(f"link fault trial {i}: apply {apply_ms[-1]:.0f} ms, remove {remove_ms[-1]:.0f} ms")
        n = len(pairs)
        return {f"link_fault_{n}_apply_p50_ms": round(q(apply_ms, 0.5), 1),
                f"link_fault_{n}_apply_p99_ms": round(q(apply_ms, 0.99), 1),
                f"link_fault_{n}_remove_p50_ms": round(q(remove_ms, 0.5), 1),
                f"link_fault_{n}_remove_p99_ms": round(q(remove_ms, 0.99), 1),
                "link_fault_trials": trials, "link_fault_links": n, "link_fault_toxics": n * 2,
                "link_fault_batch": bool(getattr(api, "batch_supported", lambda: False)()),
                "link_fault_split_p50_ms": {k: round(q(v, 0.5), 1) for k, v in parts.items()}}
    finally:
        cleanup.remove_objects(client, cluster=name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 trials, 60 s soak, 20 s workload")
    ap.add_argument("--large", action="store_true", help="also the 3 + 100 halves partition")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--soak-s", type=float, default=300)
    ap.add_argument("--workload-s", type=float, default=60)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--only", choices=["clock-cpu", "power-loss", "disk-full", "latency150", "soak", "link-fault",
                                       "halves"], default=None,
                    help="run only this part")
    ap.add_argument("--burners", type=int, default=0,
                    help="CPU-burning processes at normal priority beside the whole run (issue 25 section 5: 2)")
    ap.add_argument("--halves-workers", type=int, default=100,
                    help="workers of the halves cluster (3 + N; default 100; e.g. 30 as a proxy on a shared machine)")
    ap.add_argument("--save", action="store_true", help="also write the JSON under benchmarks/results/")
    args = ap.parse_args()
    if not 2 <= args.halves_workers <= 100:
        ap.error("--halves-workers must be between 2 and 100")
    if args.quick:
        args.trials, args.soak_s, args.workload_s = 10, 60, 20
    say = (lambda s: print(s, file=sys.stderr)) if os.environ.get("VERBOSE") else (lambda s: None)
    if args.burners < 0:
        ap.error("--burners >= 0")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from underload import LoadSampler, start_burners, stop_burners

    out: dict = {"load_before": os.getloadavg()[0], "burners": args.burners}
    burners = start_burners(args.burners)
    sampler = LoadSampler(5.0).start()
    try:
        _main(args, out, say)
    finally:
        stop_burners(burners)
        sampler.stop()
    out["load_median"], out["load_max"] = sampler.median(), max(sampler.samples, default=None)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))
    if args.save:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _result import Recorder

        print(Recorder(f"nemesis-{args.only or 'all'}").save(out), file=sys.stderr)


def _main(args, out: dict, say) -> None:
    if args.only == "link-fault":
        out.update(link_fault_870(say, args.trials))
        return
    if args.only == "halves":   # 3 + 100: one such cluster at a time on a shared machine (flock)
        out.update(halves_large(say, args.halves_workers))
        return
    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            if args.only == "latency150":
                out.update(workload_latency150(Path(tmp), args.rate, args.workload_s, say))
            elif args.only == "soak":
                out.update(soak(Path(tmp), args.soak_s, say))
            else:
                part = {"power-loss": power_loss, "disk-full": disk_full, "clock-cpu": clock_cpu}[args.only]
                out.update(part(Path(tmp), args.trials, say))
        return
    out.update(plan_1h())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out.update(isolate(tmp, args.trials, say))
        out.update(clock_cpu(tmp, args.trials, say))
        out.update(workload(tmp, args.rate, args.workload_s, say))
        out.update(workload_latency150(tmp, args.rate, args.workload_s, say))
        out.update(soak(tmp, args.soak_s, say))
        out.update(power_loss(tmp, args.trials, say))
        out.update(disk_full(tmp, args.trials, say))
    out.update(link_fault_870(say, args.trials))
    if args.large:
        out.update(halves_large(say, args.halves_workers))


if __name__ == "__main__":
    main()
