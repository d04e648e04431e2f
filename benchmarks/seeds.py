"""One experiment over several seeds: `chaos run FILE --seed S` for each seed, one cluster at a time,
and each run's exit status and verdicts. Prints one JSON object (wrap it in benchmarks/record.py to
keep it with the commit and the load).

    python3 benchmarks/seeds.py experiments/membership-replace-manager.yaml --seeds 1 2 3
    python3 benchmarks/record.py seeds.py -- experiments/membership-replace-manager.yaml --seeds 1 2 3

Output: file, seeds, runs [{seed, exit, run_dir, verdicts {check: VALID|INVALID|UNKNOWN}, seconds,
load_1m_after}], exits {code: count}, all_valid (every run exited 0), commit, load_1m {before,
after}. Exit status 0 when every run exited 0, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def one_run(path: Path, seed: int, out: Path) -> dict:
    mine = out / f"seed{seed}"
    mine.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "chaos.cli", "run", str(path), "--seed", str(seed), "--out",
                           str(mine)], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    dirs = sorted(p for p in mine.iterdir() if p.is_dir())
    run_dir = dirs[-1] if dirs else None
    verdicts, error = {}, None
    if run_dir is not None and (run_dir / "results.json").exists():
        res = json.loads((run_dir / "results.json").read_text())
        verdicts = {c.get("checker"): c.get("verdict") for c in res.get("checks", [])}
    if run_dir is not None and (run_dir / "run.json").exists():
        error = json.loads((run_dir / "run.json").read_text()).get("error")
    return {"seed": seed, "exit": proc.returncode, "run_dir": str(run_dir) if run_dir else None,
            "verdicts": verdicts, "error": error, "seconds": round(time.monotonic() - t0, 1),
            "load_1m_after": load_1m(), "tail": None if proc.returncode == 0 else (proc.stderr or proc.stdout)[-400:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", type=Path, default=None, help="run directories (default: a temporary directory)")
    args = ap.parse_args(argv)
    if not args.file.is_file():
        print(f"error: no file {args.file}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="seeds-"))
    before = load_1m()
    runs = [one_run(args.file.resolve(), s, out) for s in args.seeds]
    exits: dict[str, int] = {}
    for r in runs:
        exits[str(r["exit"])] = exits.get(str(r["exit"]), 0) + 1
    doc = {"file": str(args.file), "seeds": args.seeds, "runs": runs, "exits": exits,
           "all_valid": all(r["exit"] == 0 for r in runs), "commit": commit(),
           "load_1m": {"before": before, "after": load_1m()}}
    print(json.dumps(doc, indent=2))
    return 0 if doc["all_valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
