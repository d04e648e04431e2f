"""Control runs: every shipped experiment under `chaos run FILE --control` (the faults are planned and
logged as `sham`, never applied). None may come out VALID: an experiment whose expectations are met
without its faults proves nothing about them. Prints one JSON object.

    python3 benchmarks/control.py                       # every experiments/*.yaml, seed 1
    python3 benchmarks/control.py --files leader-killed,split-clients --seed 3
    python3 benchmarks/control.py --ready-timeout 480   # a loaded shared engine: each file is run from
                                                        # a copy that differs only in cluster.ready_timeout

Each run is a real `chaos run FILE --seed S --control` under `nice -n 10`, one cluster at a time.
Output: files, valid_under_control (must be 0), inconclusive (exit 3), errors (exit 4 or no
results), seconds, commit, load_1m {before, after} (the machine is shared: read timings with it),
and per file {exit, verdict, never_observed (the expectations the control run did not observe),
observed (those it did, anyway: each one an expectation the workload meets without a fault),
seconds, run_dir}. The exit status is 1 when some file was VALID under --control, else 0.
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


def expectations_of(results: dict) -> tuple[list[str], list[str]]:
    """(never observed, observed) expectations of a results.json object."""
    for c in results.get("checks", []):
        if c.get("checker") == "expectations":
            exps = (c.get("evidence") or {}).get("expectations") or {}
            never = [e for e, r in exps.items() if not (r or {}).get("observed")]
            seen = [e for e, r in exps.items() if (r or {}).get("observed")]
            return never, seen
    return [], []


def experiment_file(exp: str, out: Path, ready_timeout_s: float | None) -> Path:
    """The shipped file, or (ready_timeout_s given) a copy in `out` that differs only in
    cluster.ready_timeout: a loaded shared engine can take longer than the default to bring a
    cluster up, which says nothing about the experiment."""
    path = ROOT / "experiments" / f"{exp}.yaml"
    if ready_timeout_s is None:
        return path
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("cluster", {})["ready_timeout"] = f"{ready_timeout_s:g}s"
    copy = out / f"{exp}.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy


def run_control(exp: str, seed: int, out: Path, ready_timeout_s: float | None = None) -> dict:
    """One `chaos run --control` of experiments/EXP.yaml into its own directory under `out`."""
    mine = out / exp
    mine.mkdir(parents=True, exist_ok=True)
    cmd = ["nice", "-n", "10", sys.executable, "-m", "chaos.cli", "run",
           str(experiment_file(exp, out, ready_timeout_s)), "--seed", str(seed), "--out", str(mine), "--control"]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
        code, tail = proc.returncode, (proc.stderr or proc.stdout)[-400:]
    except subprocess.TimeoutExpired:
        code, tail = None, "timed out after 1200 s"
    dirs = sorted(p for p in mine.iterdir() if p.is_dir())
    results: dict = {}
    if dirs and (dirs[-1] / "results.json").is_file():
        results = json.loads((dirs[-1] / "results.json").read_text(encoding="utf-8"))
    never, seen = expectations_of(results)
    row = {"exit": code, "verdict": results.get("verdict"), "never_observed": never, "observed": seen,
           "seconds": round(time.monotonic() - t0, 1), "run_dir": str(dirs[-1]) if dirs else None}
    if code not in (0, 1, 3):
        row["error"] = tail
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", default=None, help="comma-separated experiment names (default: every shipped file)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="parent of the run directories (default: a temp dir)")
    ap.add_argument("--ready-timeout", type=float, default=None, metavar="S",
                    help="run a copy of each file with cluster.ready_timeout S (a loaded shared engine)")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/control-*.json")
    args = ap.parse_args(argv)
    shipped = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    files = shipped if not args.files else [f.strip().removesuffix(".yaml") for f in args.files.split(",") if f.strip()]
    unknown = [f for f in files if f not in shipped]
    if unknown:
        print(f"error: no shipped experiment {', '.join(unknown)} (known: {', '.join(shipped)})", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="chaos-control-"))
    rec = None
    if not args.no_save:  # provenance stamped now: the code that runs is HEAD at the start
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _result import Recorder
        rec = Recorder("control")
    before, t0 = load_1m(), time.monotonic()
    per_file = {}
    for exp in files:
        per_file[exp] = run_control(exp, args.seed, out, args.ready_timeout)
        print(f"{exp}: exit {per_file[exp]['exit']} ({per_file[exp]['seconds']} s)", file=sys.stderr)
    report = {
        "files": len(files),
        "valid_under_control": sum(1 for r in per_file.values() if r["exit"] == 0),
        "inconclusive": sum(1 for r in per_file.values() if r["exit"] == 3),
        "invalid": sum(1 for r in per_file.values() if r["exit"] == 1),
        "errors": sum(1 for r in per_file.values() if r["exit"] not in (0, 1, 3)),
        "seconds": round(time.monotonic() - t0, 1),
        "seed": args.seed,
        "ready_timeout_s": args.ready_timeout,
        "commit": commit(),
        "load_1m": {"before": before, "after": load_1m()},
        "out": str(out),
        "per_file": per_file,
    }
    if rec is not None:
        report["saved_to"] = str(rec.save(report))
    print(json.dumps(report, indent=2))
    return 1 if report["valid_under_control"] else 0


if __name__ == "__main__":
    sys.exit(main())
