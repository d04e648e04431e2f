"""Benchmark: failover and recovery on real containers through Toxiproxy, 3 managers + 5 workers
(issue 13). Prints one JSON object, never pass/fail on time.

Keys (each over --trials trials, measured from the run directory alone). Every clock starts when
the fault was put in place: the faults.jsonl start record's `applied_ts` (run clock, before the
fault was verified) when present, else the older source (a kill: the engine's FinishedAt; a
partition: the Toxiproxy acknowledgement `details.done_ts`; last the record's `ts`, written after
verification, which starts the clock late). `figures.<name>.t0_sources` says which, per trial.
- leader_kill_p50_ms / _p99_ms: SIGKILL of the leader to the completion of the first ok write
  (write / cas / delete) invoked after it: a new leader's first committed write seen by a client;
- leader_isolate_p50_ms / _p99_ms: the same from a black-hole isolation of the leader;
- worker_kill_restore_p50_s / _p99_s: SIGKILL of a worker to every replica running again on other
  workers (the nemesis's `until: replicas-restored`, polled every 200 ms); only a worker that held a
  task counts (the managers' journals say which): one an earlier trial restarted comes back empty,
  since Swarm does not rebalance, and its kill restores nothing (`killed_worker_held_no_task`);
- dead_marked_all_p50_s: SIGKILL of that worker to the last live member's journal marking it dead;
- majority_restart_first_write_p50_s / _p99_s: two of three managers SIGKILLed together and restarted
  together 2 s later: from the restart (the earlier StartedAt: the moment a majority can exist again)
  to the completion of the first ok write invoked after it.
- figures: each of the above in full: n, p50, p99, max, `p99_is_max` (with fewer than 100 trials the
  p99 is the largest trial: 20 trials give no p99 of their own), every kept trial with its clock
  source, and `excluded`: trials left out by reason -- `not_whole_at_start` (a node the previous
  trial restarted was not answering 1 s before it began: each trial must start from a whole
  cluster), `no_write_after` (no ok write invoked after the fault), `restore_not_met_within_trial`
  (replicas not restored before the until's 12 s bound), `not_marked_dead_by_every_member`,
  `no_start_or_stop_record`, `target_already_down_by_another_trial` (a late trial fired while an
  earlier one still held its node down: no failover of its own).
- errors: a part whose run failed (e.g. a cluster not ready on a loaded machine) is named here with
  its error; its figures are empty and the other parts still run.
The result is also written to benchmarks/results/ (benchmarks/_result.py: commit, dirty, load
before/after, UTC times) unless --no-save.

    python3 benchmarks/failover.py [--trials 20] [--quick] [--only majority] [--keep DIR] [--no-save]
    python3 benchmarks/failover.py --from DIR    # measure the run directories `--keep DIR` kept
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _result import Recorder  # noqa: E402
from chaos.experiment.loader import load_file  # noqa: E402
from chaos.runner import RunOptions, Runner  # noqa: E402

WRITES = ("write", "cas", "delete")
RESTARTS = ("restart", "start", "unpause")


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
        raise RunFailed(f"run failed: {outcome.error.message}")
    return outcome.run_dir


class RunFailed(Exception):
    """A benchmark run ended in a harness error: its part is reported under `errors`."""


def faults_by_id(run_dir: Path) -> dict[str, dict]:
    """fault id -> {action: record}, for the scheduled faults (the trials): the final heal's record
    is no trial."""
    out: dict[str, dict] = {}
    for r in jsonl(run_dir / "faults.jsonl"):
        if r.get("kind") == "heal":
            continue
        out.setdefault(r["fault"], {})[r["action"]] = r
    return out


# why a trial is left out of a figure (each figure reports its counts under `excluded`)
NOT_WHOLE = "not_whole_at_start"
NO_WRITE = "no_write_after"
NOT_RESTORED = "restore_not_met_within_trial"
NOT_MARKED = "not_marked_dead_by_every_member"
NO_RECORD = "no_start_or_stop_record"
SHARED = "target_already_down_by_another_trial"
NO_TASK = "killed_worker_held_no_task"
TERMINAL_TASK_STATES = ("complete", "failed", "shutdown", "orphaned")


def fault_t0(start: dict, node: str | None = None) -> tuple[float, str]:
    """When a fault was put in place, and which field said so: the start record's top-level
    `applied_ts` (run clock, before verification) when present; otherwise, as before it existed, a
    kill's engine time (`details.nodes[node].effective_ts`), a partition's server acknowledgement
    (`details.done_ts`, the same moment `applied_ts` takes for a partition), and last the record's
    `ts` (written after the fault was verified: late by the verification)."""
    if isinstance(start.get("applied_ts"), (int, float)):
        return float(start["applied_ts"]), "applied_ts"
    details = start.get("details") or {}
    if node is not None:
        eff = ((details.get("nodes") or {}).get(node) or {}).get("effective_ts")
        if isinstance(eff, (int, float)):
            return float(eff), "details.nodes.effective_ts"
    elif isinstance(details.get("done_ts"), (int, float)):
        return float(details["done_ts"]), "details.done_ts"
    return float(start["ts"]), "ts"


class Figure:
    """One measured quantity over trials: each kept trial's value and the source of its clock
    start, and the count of trials left out by reason."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.sources: list[str] = []
        self.excluded: dict[str, int] = {}

    def keep(self, value: float, source: str) -> None:
        self.values.append(value)
        self.sources.append(source)

    def exclude(self, reason: str) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + 1

    def summary(self, unit: str, digits: int) -> dict:
        """n, p50, p99 and max in `unit`; with fewer than 100 trials the p99 IS the maximum
        (`p99_is_max`); the clock source per trial, in trial order; the exclusions."""
        def r(x):
            return None if x is None else round(x, digits)
        n = len(self.values)
        return {"n": n, f"p50_{unit}": r(q(self.values, 0.5)), f"p99_{unit}": r(q(self.values, 0.99)),
                f"max_{unit}": r(max(self.values)) if n else None, "p99_is_max": n < 100,
                "t0_sources": self.sources, f"trials_{unit}": [r(v) for v in self.values],
                "excluded": dict(sorted(self.excluded.items()))}


def healthy_at(run_dir: Path, settle_s: float = 1.0):
    """A trial counts only if every node the previous fault took down answered again at least
    settle_s before it began (on a loaded machine a restart can take longer than the spacing, and
    then a kill finds no majority: that measures the schedule, not failover)."""
    back = []
    for f in faults_by_id(run_dir).values():
        for n in ((f.get("stop") or {}).get("details", {}).get("nodes") or {}).values():
            if isinstance(n, dict) and n.get("op") in RESTARTS:
                # a restart that never answered (answering_ts null) leaves the cluster short for good
                back.append((n.get("requested_ts") or 0, n.get("answering_ts") or float("inf")))

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


def leader_faults(out: Path, kind: str, trials: int, seed: int) -> Figure:
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
    return measure_leader(run(text, out, seed), kind)


def measure_leader(d: Path, kind: str) -> Figure:
    """Per trial: from the fault in place (fault_t0) to the completion of the first ok write
    invoked after it, in ms."""
    ops = paired(d)
    fig = Figure()
    healthy = healthy_at(d)
    for f in faults_by_id(d).values():
        if "start" not in f:
            fig.exclude(NO_RECORD)
            continue
        node = f["start"]["targets"][0] if kind == "kill" else None
        if node is not None and ((f["start"].get("details") or {}).get("nodes") or {}).get(node, {}).get("shared"):
            fig.exclude(SHARED)  # fired while an earlier trial still held the node down: no kill of its own
            continue
        t0, source = fault_t0(f["start"], node)
        if not healthy(t0):
            fig.exclude(NOT_WHOLE)
            continue
        t1 = first_write_after(ops, t0)
        if t1 is None:
            fig.exclude(NO_WRITE)
        else:
            fig.keep((t1 - t0) * 1000, source)
    return fig


def worker_kills(out: Path, trials: int, seed: int) -> tuple[Figure, Figure]:
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
    return measure_worker(run(text, out, seed))


def measure_worker(d: Path, mark_within_s: float = 30.0) -> tuple[Figure, Figure]:
    """(restore, dead): per trial, from the kill in place to the nemesis's `until: replicas-restored`
    being met, and to the last live member's journal marking the killed worker dead (within
    mark_within_s of the trial's stop), in s."""
    journals = {p.stem: jsonl(p) for p in (d / "events").glob("*.jsonl")}
    restore, dead = Figure(), Figure()
    for f in faults_by_id(d).values():
        if "start" not in f or "stop" not in f:
            restore.exclude(NO_RECORD)
            dead.exclude(NO_RECORD)
            continue
        (node,) = f["start"]["targets"]
        t0, source = fault_t0(f["start"], node)
        until = f["stop"]["details"].get("until") or {}
        if not tasks_held(journals, node, t0):
            # Swarm does not rebalance: a worker restarted by an earlier trial comes back empty, and
            # killing it leaves every replica running, so `replicas-restored` holds at once (0.2 s):
            # no failover happened, nothing to time
            restore.exclude(NO_TASK)
        elif until.get("met"):
            restore.keep(until["met_ts"] - t0, source)
        else:
            restore.exclude(NOT_RESTORED)
        marks = _dead_marks(journals, node, t0, f["stop"]["ts"] + mark_within_s)
        if marks:
            dead.keep(max(marks) - t0, source)
        else:
            dead.exclude(NOT_MARKED)
    return restore, dead


def tasks_held(journals: dict[str, list[dict]], node: str, t0: float) -> list[str]:
    """The tasks the managers' journals show on `node` in a live state just before t0: per task, its
    latest `task` event before t0 (the worker named by its latest event that names one)."""
    state: dict[str, tuple[float, str]] = {}
    worker: dict[str, tuple[float, str]] = {}
    for name, evs in journals.items():
        if not name.startswith("m"):
            continue
        for e in evs:
            if e.get("type") != "task" or not isinstance(e.get("ts"), (int, float)) or e["ts"] >= t0:
                continue
            tid = e.get("task")
            if e.get("state") and (tid not in state or e["ts"] >= state[tid][0]):
                state[tid] = (e["ts"], e["state"])
            if e.get("worker") and (tid not in worker or e["ts"] >= worker[tid][0]):
                worker[tid] = (e["ts"], e["worker"])
    return sorted(t for t, (_ts, st) in state.items()
                  if st not in TERMINAL_TASK_STATES and worker.get(t, (0, None))[1] == node)


def _dead_marks(journals: dict[str, list[dict]], node: str, t0: float, t_end: float) -> list[float] | None:
    """Each other member's first journal mark of `node` dead in [t0, t_end]; None if one has none."""
    marks = []
    for other, evs in journals.items():
        if other == node:
            continue
        ts = [e["ts"] for e in evs if e.get("type") == "member" and e.get("member") == node
              and e.get("state") == "dead" and t0 <= e["ts"] <= t_end]
        if not ts:
            return None
        marks.append(min(ts))
    return marks


def majority_restart(out: Path, trials: int, seed: int) -> Figure:
    text = f"""version: 1
name: bench-majority
cluster: {{managers: 3, workers: 5}}
workload: {{clients: 6, rate: 200, keys: 4, mix: {{read: 1, write: 3, cas: 0, delete: 0}}}}
schedule:
  - {{name: m, at: 3s, for: 2s, fault: kill, target: {{role: managers, count: 2}}, repeat: {{every: 10s, count: {trials}}}}}
recovery: {{window: 1s, converge: 30s}}
checks: [raft-safety]
"""
    return measure_majority(run(text, out, seed))


def measure_majority(d: Path) -> Figure:
    """Per trial: from the restart (the earlier engine StartedAt of the two: the moment a majority
    can exist again) to the completion of the first ok write invoked after it, in s. The clock
    starts at the stop (the restart), so `applied_ts` of the start does not apply; the source is
    `details.nodes.effective_ts` of the stop record."""
    ops = paired(d)
    fig = Figure()
    healthy = healthy_at(d)
    for f in faults_by_id(d).values():
        if "stop" not in f or "start" not in f:
            fig.exclude(NO_RECORD)
            continue
        if not healthy(fault_t0(f["start"])[0]):
            fig.exclude(NOT_WHOLE)
            continue
        nodes = f["stop"]["details"].get("nodes") or {}
        starts = [n.get("effective_ts") for n in nodes.values() if isinstance(n, dict) and n.get("effective_ts")]
        if not starts:
            fig.exclude(NO_RECORD)
            continue
        t0 = min(starts)
        t1 = first_write_after(ops, t0)
        if t1 is None:
            fig.exclude(NO_WRITE)
        else:
            fig.keep(t1 - t0, "stop.details.nodes.effective_ts")
    return fig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="5 trials each")
    ap.add_argument("--only", choices=["kill", "isolate", "worker", "majority"], action="append",
                    help="run only these parts (repeatable); the others' keys are null")
    ap.add_argument("--keep", type=Path, help="keep the run directories under this directory")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    ap.add_argument("--from", dest="from_dir", type=Path,
                    help="measure the run directories an earlier `--keep DIR` kept (no Docker): "
                         "bench-kill-*, bench-isolate-*, bench-worker-*, bench-majority-*")
    args = ap.parse_args()
    parts = set(args.only or ["kill", "isolate", "worker", "majority"])
    n = 5 if args.quick else args.trials
    rec = Recorder("failover-quick" if args.quick else "failover")
    t0 = time.monotonic()
    if args.from_dir is not None:
        out = remeasure(args.from_dir, parts)
        out["seconds"] = round(time.monotonic() - t0, 1)
        if not args.no_save:
            out["saved"] = str(rec.save(out).relative_to(ROOT))
        print(json.dumps(rec.finish(out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.keep:
            tmp = args.keep
            tmp.mkdir(parents=True, exist_ok=True)
        errors: dict[str, str] = {}

        def part(name, fn, empty):
            if name not in parts:
                return empty
            try:
                return fn()
            except RunFailed as exc:
                errors[name] = str(exc)
                print(f"# {name}: {exc}", file=sys.stderr, flush=True)
                return empty
        kill = part("kill", lambda: leader_faults(tmp, "kill", n, 1), Figure())
        iso = part("isolate", lambda: leader_faults(tmp, "isolate", n, 2), Figure())
        restore, dead = part("worker", lambda: worker_kills(tmp, n, 3), (Figure(), Figure()))
        maj = part("majority", lambda: majority_restart(tmp, n, 4), Figure())
    out = report(n, kill, iso, restore, dead, maj)
    out["errors"] = errors
    out["commit"] = rec.meta["commit"]  # the code that ran: HEAD when it began
    out["seconds"] = round(time.monotonic() - t0, 1)
    if not args.no_save:
        out["saved"] = str(rec.save(out).relative_to(ROOT))
    print(json.dumps(rec.finish(out)))


def remeasure(root: Path, parts: set[str]) -> dict:
    """The report of run directories kept by an earlier run (`--keep`), measured by this code."""
    def one(prefix: str) -> Path | None:
        found = sorted(p for p in root.glob(f"bench-{prefix}-*") if p.is_dir())
        return found[-1] if found else None
    dirs = {name: one(name) for name in ("kill", "isolate", "worker", "majority") if name in parts}
    kill = measure_leader(dirs["kill"], "kill") if dirs.get("kill") else Figure()
    iso = measure_leader(dirs["isolate"], "isolate") if dirs.get("isolate") else Figure()
    restore, dead = measure_worker(dirs["worker"]) if dirs.get("worker") else (Figure(), Figure())
    maj = measure_majority(dirs["majority"]) if dirs.get("majority") else Figure()
    n = max(len(faults_by_id(d)) for d in dirs.values() if d) if any(dirs.values()) else 0
    out = report(n, kill, iso, restore, dead, maj)
    out["measured_from"] = {k: str(v) if v else None for k, v in dirs.items()}
    out["errors"] = {k: "no run directory" for k, v in dirs.items() if v is None}
    return out


def report(n: int, kill: Figure, iso: Figure, restore: Figure, dead: Figure, maj: Figure) -> dict:
    """The published keys (unchanged names) and, under `figures`, each figure in full: its n, p50,
    p99 and max, `p99_is_max`, each trial's value and clock source, and its exclusions by reason."""
    figs = {"leader_kill": kill.summary("ms", 1), "leader_isolate": iso.summary("ms", 1),
            "worker_kill_restore": restore.summary("s", 3), "dead_marked_all": dead.summary("s", 3),
            "majority_restart_first_write": maj.summary("s", 3)}
    k, i, r, d, m = (figs[x] for x in ("leader_kill", "leader_isolate", "worker_kill_restore",
                                       "dead_marked_all", "majority_restart_first_write"))
    return {
        "trials": n,
        "leader_kill_n": k["n"], "leader_kill_p50_ms": k["p50_ms"], "leader_kill_p99_ms": k["p99_ms"],
        "leader_isolate_n": i["n"], "leader_isolate_p50_ms": i["p50_ms"], "leader_isolate_p99_ms": i["p99_ms"],
        "worker_kill_restore_n": r["n"], "worker_kill_restore_bound_s": 12,
        "worker_kill_restore_p50_s": r["p50_s"], "worker_kill_restore_p99_s": r["p99_s"],
        "dead_marked_all_n": d["n"], "dead_marked_all_p50_s": d["p50_s"],
        "majority_restart_n": m["n"], "majority_restart_first_write_p50_s": m["p50_s"],
        "majority_restart_first_write_p99_s": m["p99_s"],
        "p99_is_max": all(f["p99_is_max"] for f in figs.values()),
        "note": "p99 over fewer than 100 trials is the largest trial (p99_is_max); clocks start at the "
                "start record's applied_ts when present (t0_sources per trial)",
        "figures": figs,
    }


if __name__ == "__main__":
    main()
