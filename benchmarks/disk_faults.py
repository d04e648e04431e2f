"""The disk-fault experiments (issue 22) end to end: each shipped file on the correct agent over
--seeds seeds (must be VALID, exit 0), once under `--control` (must be inconclusive, exit 3), and
against the planted bug meant for it over --plant-seeds seeds (caught: a check INVALID, exit 1).
Prints one JSON object; `--save` writes it under benchmarks/results/ with the commit and load.

    python3 benchmarks/disk_faults.py [--seeds 5] [--plant-seeds 4] [--jobs 1] [--only power-loss-managers]

Output: runs [{experiment, kind: correct|control|planted, bug, seed, exit, verdicts, seconds,
run_dir, caught_by?}], summary {experiment: {correct_valid, correct_runs, control_exit, planted_caught,
planted_runs}}, load (uptime before/after, 1-minute load sampled every 10 s: median, max).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _result import Recorder  # noqa: E402
from bugfinding import judge_planted, run_once, uptime  # noqa: E402

EXPERIMENTS = {"power-loss-managers": "ack_before_fsync", "disk-full-leader": "enospc_corrupts_log",
               "worker-wiped": "stale_worker_identity"}


def control_once(exp: str, seed: int, out: Path) -> dict:
    cmd = ["nice", "-n", "10", sys.executable, "-m", "chaos.cli", "run", str(ROOT / "experiments" / f"{exp}.yaml"),
           "--seed", str(seed), "--out", str(out), "--control"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    results = {}
    if dirs and (dirs[-1] / "results.json").exists():
        results = json.loads((dirs[-1] / "results.json").read_text())
    return {"exit": proc.returncode, "run_dir": str(dirs[-1]) if dirs else None, "results": results,
            "verdicts": {c["name"]: c["verdict"] for c in results.get("checks", [])},
            "seconds": round(time.monotonic() - t0, 1),
            "error": proc.stderr.strip().splitlines()[-1] if proc.returncode == 4 and proc.stderr.strip() else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--plant-seeds", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--only", action="append", choices=sorted(EXPERIMENTS))
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--no-planted", action="store_true")
    ap.add_argument("--no-correct", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args(argv)
    exps = args.only or list(EXPERIMENTS)
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="disk-faults-"))
    specs = []
    for exp in exps:
        if not args.no_correct:
            specs += [{"experiment": exp, "kind": "correct", "bug": None, "seed": s}
                      for s in range(args.first_seed, args.first_seed + args.seeds)]
        if not args.no_control:
            specs.append({"experiment": exp, "kind": "control", "bug": None, "seed": args.first_seed})
        if not args.no_planted:
            specs += [{"experiment": exp, "kind": "planted", "bug": EXPERIMENTS[exp], "seed": s}
                      for s in range(args.first_seed, args.first_seed + args.plant_seeds)]
    for i, sp in enumerate(specs, 1):
        sp["dir"] = out_root / f"{i:03d}-{sp['kind']}-{sp['experiment']}-s{sp['seed']}"
        sp["dir"].mkdir(parents=True)
    rec = Recorder("disk-faults")
    before = uptime()
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(10):
            samples.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    lock, done = threading.Lock(), [0]

    def execute(sp: dict) -> dict:
        r = control_once(sp["experiment"], sp["seed"], sp["dir"]) if sp["kind"] == "control" else \
            run_once(sp["experiment"], sp["seed"], sp["bug"], sp["dir"])
        row = {k: sp[k] for k in ("experiment", "kind", "bug", "seed")}
        row.update(exit=r["exit"], verdicts=r["verdicts"], seconds=r["seconds"], run_dir=r["run_dir"],
                   error=r.get("error"))
        if sp["kind"] == "planted":
            row["caught_by"] = judge_planted(r["results"], None)
        with lock:
            done[0] += 1
            print(f"# [{done[0]}/{len(specs)}] {sp['kind']} {sp['bug'] or ''} {sp['experiment']} seed {sp['seed']}: "
                  f"exit {r['exit']} {r['seconds']} s {row.get('caught_by', '')}", file=sys.stderr, flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(execute, specs))
    stop.set()
    summary = {}
    for exp in exps:
        mine = [r for r in rows if r["experiment"] == exp]
        cor = [r for r in mine if r["kind"] == "correct"]
        pl = [r for r in mine if r["kind"] == "planted"]
        ctl = [r for r in mine if r["kind"] == "control"]
        summary[exp] = {"correct_runs": len(cor), "correct_valid": sum(r["exit"] == 0 for r in cor),
                        "control_exits": [r["exit"] for r in ctl], "planted_bug": EXPERIMENTS[exp],
                        "planted_runs": len(pl), "planted_caught": sum(bool(r["caught_by"]) and r["exit"] == 1 for r in pl)}
    payload = {"summary": summary, "runs": rows, "load": {"before": before, "after": uptime(),
               "load_1m_median": round(statistics.median(samples), 2) if samples else None,
               "load_1m_max": round(max(samples), 2) if samples else None}, "jobs": args.jobs,
               "out": str(out_root)}
    print(json.dumps(payload, indent=1))
    if args.save:
        print(rec.save(payload), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
