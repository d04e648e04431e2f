"""Summarise an interrupted `benchmarks/bugfinding.py --out DIR` job from what it left: its progress
log (stderr: one `# [k/N] BUG EXP seed S: exit E ...` line per finished run, in finishing order)
and the run directories under DIR (`NNN-BUG-EXP-sS/<run>/results.json`, `run.json`). Prints one
JSON object and saves it under benchmarks/results/ (`bugfinding-partial-...`) with this checkout's
commit and the load (benchmarks/_result.py); `--runs-commit` names the commit the runs were made at.

    python3 benchmarks/bugfinding_summarize.py --out DIR --log bugfinding.err --runs-commit 30b12b3

Counts only runs whose line is in the log (a run cut short by the interruption has none). Harness
errors (exit 4) are listed with the run's own account (run.json `error`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _result import ROOT, Recorder  # noqa: E402


LINE = re.compile(r"^# \[(\d+)/(\d+)\] (\S+) (\S+) seed (\d+): exit (\d+) ([\d.]+) s(?: caught by (.*))?$")


def _hits(text: str | None) -> list[str]:
    """`['raft-safety', 'linearizable']` or `nothing` -> the list of checks."""
    if not text or text.strip() == "nothing":
        return []
    return re.findall(r"'([^']+)'", text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the job's --out directory")
    ap.add_argument("--log", type=Path, required=True, help="the job's stderr")
    ap.add_argument("--runs-commit", default=None, help="the commit the runs were made at")
    ap.add_argument("--note", default="", help="why the job stopped, the load, ...")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    rec = Recorder("bugfinding-partial")
    finished, planned = [], 0
    for line in args.log.read_text().splitlines():
        m = LINE.match(line)
        if m:
            planned = int(m.group(2))
            finished.append({"bug": None if m.group(3) == "correct" else m.group(3), "exp": m.group(4),
                             "seed": int(m.group(5)), "exit": int(m.group(6)), "seconds": float(m.group(7)),
                             "caught_by": _hits(m.group(8))})
    table: dict = {}
    correct: dict = {}
    errors = []
    for r in finished:
        label = r["bug"] or "correct"
        dirs = sorted(args.out.glob(f"*-{label}-{r['exp']}-s{r['seed']}"))
        runs = sorted(p for d in dirs for p in d.iterdir() if p.is_dir())
        error = None
        if runs:
            run_json = runs[-1] / "run.json"
            if r["exit"] == 4 and run_json.exists():
                error = json.loads(run_json.read_text()).get("error")
        if r["exit"] == 4:
            errors.append({"bug": r["bug"], "experiment": r["exp"], "seed": r["seed"], "error": error})
        if r["bug"]:
            # the log's judgement, made when the run ended (a later `chaos check` of the directory
            # rewrites its results.json with the checks it was asked for)
            hits = r["caught_by"]
            cell = table.setdefault(r["bug"], {}).setdefault(
                r["exp"], {"caught": 0, "seeds": 0, "harness_errors": 0, "checks": {}})
            cell["seeds"] += 1
            cell["harness_errors"] += r["exit"] == 4
            if hits:
                cell["caught"] += 1
                for h in hits:
                    cell["checks"][h] = cell["checks"].get(h, 0) + 1
        else:
            e = correct.setdefault(r["exp"], {"runs": 0, "valid": 0, "exits": []})
            e["runs"] += 1
            e["valid"] += r["exit"] == 0
            e["exits"].append(r["exit"])
    judged = {b: {x: c for x, c in exps.items() if c["seeds"] > c["harness_errors"]} for b, exps in table.items()}
    payload = {
        "what": "an interrupted full bug-finding matrix (benchmarks/bugfinding.py --jobs 3), summarised from "
                "its log and run directories",
        "runs_commit": args.runs_commit, "note": args.note,
        "planned_runs": planned, "finished_runs": len(finished),
        "harness_errors": len(errors),
        "bugs_with_a_verdict": len([b for b, exps in judged.items() if exps]),
        "bugs_caught_every_judged_seed_of_some_experiment": sorted(
            b for b, exps in judged.items()
            if any(c["caught"] == c["seeds"] - c["harness_errors"] and c["caught"] > 0 for c in exps.values())),
        "table": table, "correct": correct, "errors": errors,
    }
    if not args.no_save:
        path = rec.save(payload)
        payload["saved"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    print(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
