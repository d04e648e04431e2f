"""Benchmark: failover and recovery on real containers through Toxiproxy, 3 managers + 5 workers
(issue 13). Prints one JSON object, never pass/fail on time.

Keys (each over --trials trials, measured from the run directory alone):
- leader_kill_p50_ms / _p99_ms: SIGKILL of the leader (the engine's FinishedAt) to the completion of
  the first ok write (write / cas / delete) invoked after it: a new leader's first committed write
  seen by a client;
- leader_isolate_p50_ms / _p99_ms: the same from a verified black-hole isolation of the leader;
- worker_kill_restore_p50_s / _p99_s: SIGKILL of a worker to every replica running again on other
  workers (the nemesis's `until: replicas-restored`, polled every 200 ms);
- dead_marked_all_p50_s: SIGKILL of that worker to the last live member's journal marking it dead;
- majority_restart_first_write_p50_s / _p99_s: two of three managers SIGKILLed together and restarted
  together 2 s later: from the restart (the earlier StartedAt: the moment a majority can exist again)
  to the completion of the first ok write invoked after it.
- excluded_not_whole: trials left out because a node the previous trial restarted was not answering
  1 s before they began (a loaded machine); each trial must start from a whole cluster.

    python3 benchmarks/failover.py [--trials 20] [--quick] [--only majority] [--keep DIR]
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

from chaos.experiment.loader import load_file  # noqa: E402
from chaos.runner import RunOptions, Runner  # noqa: E402

WRITES = ("write", "cas", "delete")


def q(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else None


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def run(text: str, out: Path, seed: int) -> Path:
    path = out / f"bench-{seed}-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    outcome = Runner(load_file(path), RunOptions(seed=seed, out_dir=out, say=lambda s: None)).execute()
    if outcome.error is not None:
        raise SystemExit(f"run failed: {outcome.error.message}")
    return outcome.run_dir


def faults_by_id(run_dir: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in jsonl(run_dir / "faults.jsonl"):
        out.setdefault(r["fault"], {})[r["action"]] = r
    return out


EXCLUDED: dict[str, int] = {}  # trials left out: the cluster was not whole when they began


def healthy_at(run_dir: Path, settle_s: float = 1.0):
    """A trial counts only if every node the previous fault took down answered again at least
    settle_s before it began (on a loaded machine a restart can take longer than the spacing, and
    then a kill finds no majority: that measures the schedule, not failover)."""
    back = []
    for f in faults_by_id(run_dir).values():
        for n in ((f.get("stop") or {}).get("details", {}).get("nodes") or {}).values():
            if isinstance(n, dict) and n.get("answering_ts"):
                back.append((n.get("requested_ts") or 0, n["answering_ts"]))

    def ok(t: float) -> bool:
        return all(ans + settle_s <= t for req, ans in back if req < t)
    return ok


def first_write_after(ops: list[tuple[float, float, str, str]], t: float) -> float | None:
    """Completion time of the first ok write invoked at or after t."""
    done = [end for start, end, f, typ in ops if start >= t and f in WRITES and typ == "ok"]
    return min(done) if done else None


def paired(run_dir: Path) -> list[tuple[float, float, str, str]]:
    inv, out = {}, []
    for e in jsonl(run_dir / "history.jsonl"):
        if e["type"] == "invoke":
            inv[e["process"]] = e
        elif e["process"] in inv:
            i = inv.pop(e["process"])
            out.append((i["ts"], e["ts"], e["f"], e["type"]))
    return out


def leader_faults(out: Path, kind: str, trials: int, seed: int) -> list[float]:
    spec = "fault: kill, target: leader" if kind == "kill" else "fault: partition, isolate: leader"
    text = f"""version: 1
name: bench-{kind}
cluster: {{managers: 3, workers: 5}}
workload: {{clients: 6, rate: 200, keys: 4, mix: {{read: 1, write: 3, cas: 0, delete: 0}}}}
schedule:
  - {{name: x, at: 3s, for: 2s, {spec}, repeat: {{every: 7s, count: {trials}}}}}
recovery: {{window: 1s, converge: 30s}}
checks: [raft-safety]
"""
    d = run(text, out, seed)
    ops = paired(d)
    res = []
    healthy = healthy_at(d)
    for f in faults_by_id(d).values():
        if "start" not in f:
            continue
        if not healthy(f["start"]["ts"]):
            EXCLUDED[f"leader_{kind}"] = EXCLUDED.get(f"leader_{kind}", 0) + 1
            continue
        if kind == "kill":
            (node,) = f["start"]["targets"]
            t0 = f["start"]["details"]["nodes"][node].get("effective_ts") or f["start"]["ts"]
        else:
            t0 = f["start"]["ts"]
        t1 = first_write_after(ops, t0)
        if t1 is not None:
            res.append((t1 - t0) * 1000)
    return res


def worker_kills(out: Path, trials: int, seed: int) -> tuple[list[float], list[float]]:
    text = f"""version: 1
name: bench-worker
cluster: {{managers: 3, workers: 5}}
workload:
  clients: 2
  rate: 20
  services: [{{create: web, replicas: 10, at: 0s}}]
schedule:
  - {{name: w, at: 4s, fault: kill, target: {{role: workers, count: 1}}, until: replicas-restored, max: 12s,
     repeat: {{every: 16s, count: {trials}}}}}
recovery: {{window: 1s, converge: 30s}}
checks: [raft-safety]
"""
    d = run(text, out, seed)
    journals = {p.stem: jsonl(p) for p in (d / "events").glob("*.jsonl")}
    restore, dead = [], []
    for f in faults_by_id(d).values():
        if "start" not in f or "stop" not in f:
            continue
        (node,) = f["start"]["targets"]
        t0 = f["start"]["details"]["nodes"][node].get("effective_ts") or f["start"]["ts"]
        until = f["stop"]["details"].get("until") or {}
        if until.get("met"):
            restore.append(until["met_ts"] - t0)
        t_end = f["stop"]["ts"]
        marks = []
        for other, evs in journals.items():
            if other == node:
                continue
            ts = [e["ts"] for e in evs if e.get("type") == "member" and e.get("member") == node
                  and e.get("state") == "dead" and t0 <= e["ts"] <= t_end + 30]
            if not ts:
                marks = None
                break
            marks.append(min(ts))
        if marks:
            dead.append(max(marks) - t0)
    return restore, dead


def majority_restart(out: Path, trials: int, seed: int) -> list[float]:
    text = f"""version: 1
name: bench-majority
cluster: {{managers: 3, workers: 5}}
workload: {{clients: 6, rate: 200, keys: 4, mix: {{read: 1, write: 3, cas: 0, delete: 0}}}}
schedule:
  - {{name: m, at: 3s, for: 2s, fault: kill, target: {{role: managers, count: 2}}, repeat: {{every: 10s, count: {trials}}}}}
recovery: {{window: 1s, converge: 30s}}
checks: [raft-safety]
"""
    d = run(text, out, seed)
    ops = paired(d)
    res = []
    healthy = healthy_at(d)
    for f in faults_by_id(d).values():
        if "stop" not in f:
            continue
        if "start" in f and not healthy(f["start"]["ts"]):
            EXCLUDED["majority_restart"] = EXCLUDED.get("majority_restart", 0) + 1
            continue
        nodes = f["stop"]["details"]["nodes"]
        starts = [n.get("effective_ts") for n in nodes.values() if isinstance(n, dict) and n.get("effective_ts")]
        if not starts:
            continue
        t0 = min(starts)
        t1 = first_write_after(ops, t0)
        if t1 is not None:
            res.append(t1 - t0)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="5 trials each")
    ap.add_argument("--only", choices=["kill", "isolate", "worker", "majority"], action="append",
                    help="run only these parts (repeatable); the others' keys are null")
    ap.add_argument("--keep", type=Path, help="keep the run directories under this directory")
    args = ap.parse_args()
    parts = set(args.only or ["kill", "isolate", "worker", "majority"])
    n = 5 if args.quick else args.trials
    out: dict = {"trials": n, "load_before": round(os.getloadavg()[0], 2)}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.keep:
            tmp = args.keep
            tmp.mkdir(parents=True, exist_ok=True)
        kill = leader_faults(tmp, "kill", n, 1) if "kill" in parts else []
        iso = leader_faults(tmp, "isolate", n, 2) if "isolate" in parts else []
        restore, dead = worker_kills(tmp, n, 3) if "worker" in parts else ([], [])
        maj = majority_restart(tmp, n, 4) if "majority" in parts else []

    def ms(v, p):
        x = q(v, p)
        return round(x, 1) if x is not None else None

    def s(v, p):
        x = q(v, p)
        return round(x, 3) if x is not None else None

    out.update({
        "leader_kill_n": len(kill), "leader_kill_p50_ms": ms(kill, 0.5), "leader_kill_p99_ms": ms(kill, 0.99),
        "leader_isolate_n": len(iso), "leader_isolate_p50_ms": ms(iso, 0.5), "leader_isolate_p99_ms": ms(iso, 0.99),
        "worker_kill_restore_n": len(restore), "worker_kill_restore_bound_s": 12, "worker_kill_restore_p50_s": s(restore, 0.5),
        "worker_kill_restore_p99_s": s(restore, 0.99),
        "dead_marked_all_n": len(dead), "dead_marked_all_p50_s": s(dead, 0.5),
        "majority_restart_n": len(maj), "majority_restart_first_write_p50_s": s(maj, 0.5),
        "majority_restart_first_write_p99_s": s(maj, 0.99),
        "excluded_not_whole": EXCLUDED,
        "seconds": round(time.monotonic() - t0, 1), "load_after": round(os.getloadavg()[0], 2),
    })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
