"""Proof runs of the clock and cpu experiments (issue 22): the correct agent VALID over seeds, the
planted wall_clock_lease INVALID, and each file inconclusive (exit 3) under --control. Runs one
cluster at a time and prints one JSON object (saved under benchmarks/results/ with --save), never
pass/fail on time.

    python3 benchmarks/fault_kinds_proof.py [--seeds 5] [--plant-seeds 4] [--save] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from _result import Recorder  # noqa: E402

CORRECT = ("clock-skew-leader", "cpu-starved-leader")
PLANTED = {"wall_clock_lease": "clock-skew-leader"}


def one(name: str, seed: int, out: Path, plant: str | None = None, control: bool = False) -> dict:
    before = set(out.iterdir())
    argv = [sys.executable, "-m", "chaos.cli", "run", str(ROOT / "experiments" / f"{name}.yaml"), "--seed", str(seed),
            "--out", str(out), "--name", f"proof{seed}"]
    argv += ["--plant", plant] if plant else []
    argv += ["--control"] if control else []
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
    new = sorted(set(out.iterdir()) - before)
    verdicts, effects, error = {}, {}, None
    if new:
        try:
            res = json.loads((new[-1] / "results.json").read_text())
            verdicts = {c["name"]: c["verdict"] for c in res.get("checks", [])}
        except (OSError, ValueError):
            pass
        try:
            for line in (new[-1] / "faults.jsonl").read_text().splitlines():
                row = json.loads(line)
                if row.get("effect") is not None:
                    effects[row["fault"]] = bool(row["effect"].get("effective"))
        except (OSError, ValueError):
            pass
        try:
            error = json.loads((new[-1] / "run.json").read_text()).get("error")
        except (OSError, ValueError):
            pass
    return {"experiment": name, "seed": seed, "plant": plant, "control": control, "exit": proc.returncode,
            "verdicts": verdicts, "effective": effects, "error": error, "seconds": round(time.monotonic() - t0, 1),
            "run_dir": str(new[-1]) if new else None,
            "load_1m": round(__import__("os").getloadavg()[0], 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--plant-seeds", type=int, default=4)
    ap.add_argument("--only", choices=["correct", "plant", "control"], default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="proof-"))
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder("fault-kinds-proof")
    runs = []
    plan = []
    if args.only in (None, "plant"):
        plan += [(exp, s, bug, False) for bug, exp in PLANTED.items() for s in range(1, args.plant_seeds + 1)]
    if args.only in (None, "control"):
        plan += [(exp, 1, None, True) for exp in CORRECT]
    if args.only in (None, "correct"):
        plan += [(exp, s, None, False) for exp in CORRECT for s in range(1, args.seeds + 1)]
    for exp, seed, plant, control in plan:
        r = one(exp, seed, out, plant, control)
        runs.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    summary = {}
    for exp in CORRECT:
        mine = [r for r in runs if r["experiment"] == exp and not r["plant"] and not r["control"]]
        ctl = [r for r in runs if r["experiment"] == exp and r["control"]]
        summary[exp] = {"correct_valid": sum(r["exit"] == 0 for r in mine), "correct_runs": len(mine),
                        "control_exits": [r["exit"] for r in ctl]}
    for bug, exp in PLANTED.items():
        mine = [r for r in runs if r["plant"] == bug]
        summary[bug] = {"experiment": exp, "invalid": sum(r["exit"] == 1 for r in mine), "runs": len(mine)}
    payload = {"summary": summary, "runs": runs}
    if args.save:
        payload["saved"] = str(rec.save(dict(payload)))
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
