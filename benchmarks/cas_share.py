"""The share of compare-and-set that succeeded, from run directories; prints one JSON object.

    python3 benchmarks/cas_share.py RUN_DIR [RUN_DIR ...] [--phase steady]

For each run directory: the cas operations invoked in the phase (run.json `phases`, by invocation
time, as the availability checker assigns them; `--phase all`: every cas) that completed definitely
(`ok`, or `fail`: refused on a value mismatch or another definite error), and `cas_share_ok` = ok /
completed. `info` cas
(outcome unknown) are counted apart and left out of the share. Also the run's `values` setting from
plan.json (`unique` when the plan has none: a plan written before the setting). The total pools
every run's counts. Reads only the run directories (history.jsonl, run.json, plan.json).
Must not import: click, docker.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.history import HistoryError, pair_ops, read_history  # noqa: E402

KINDS = ("ok", "refused", "fail", "info")


def _window(run: dict, phase: str) -> tuple[float, float] | None:
    if phase == "all":
        return float("-inf"), float("inf")
    for p in run.get("phases") or []:
        if isinstance(p, dict) and p.get("name") == phase and isinstance(p.get("start"), (int, float)):
            end = p.get("end")
            return float(p["start"]), float(end) if isinstance(end, (int, float)) else float("inf")
    return None


def _share(counts: dict) -> float | None:
    done = counts["ok"] + counts["refused"] + counts["fail"]
    return round(counts["ok"] / done, 4) if done else None


def measure(run_dir: Path, phase: str) -> dict:
    """Counts of cas by outcome in `phase` of one run, and the share ok among those completed."""
    run = json.loads((run_dir / "run.json").read_text())
    plan_path = run_dir / "plan.json"
    plan = json.loads(plan_path.read_text()) if plan_path.exists() else {}
    out = {"run_dir": str(run_dir), "experiment": plan.get("experiment"), "seed": plan.get("seed"),
           "values": (plan.get("workload") or {}).get("values", "unique"), "phase": phase}
    window = _window(run, phase)
    if window is None:
        return {**out, "error": f"run.json has no phase {phase!r}"}
    counts = dict.fromkeys(KINDS, 0)
    for op in pair_ops(read_history(run_dir / "history.jsonl")):
        if op.f != "cas" or op.invoke_ts is None or not window[0] <= op.invoke_ts < window[1]:
            continue
        counts["refused" if op.refused else op.type] += 1
    span = round(window[1] - window[0], 3) if phase != "all" else None
    return {**out, "phase_s": span, "cas": counts, "cas_share_ok": _share(counts)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--phase", default="steady", help="run.json phase to count (default: steady; all: the "
                                                      "whole history)")
    args = ap.parse_args(argv)
    runs = []
    for d in args.run_dirs:
        try:
            runs.append(measure(d, args.phase))
        except (OSError, ValueError, HistoryError) as exc:
            runs.append({"run_dir": str(d), "error": f"{type(exc).__name__}: {exc}"})
    total = dict.fromkeys(KINDS, 0)
    for r in runs:
        for k in KINDS:
            total[k] += (r.get("cas") or {}).get(k, 0)
    print(json.dumps({"phase": args.phase, "runs": runs, "total": total, "cas_share_ok": _share(total)}))
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
