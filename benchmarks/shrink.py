"""From a failing soak to its smallest failing scenario (issue 24): for planted bugs that
experiments/random-soak.yaml catches, shrink the failing run and measure the result. Prints one JSON
object; also writes it to benchmarks/results/ (benchmarks/_result.py) unless --no-save.

    python3 benchmarks/shrink.py --bugs deposed_leader_reads,vote_not_persisted,apply_past_commit
    python3 benchmarks/shrink.py --bugs stale_read --seeds 1,2,3 --budget 20m --tries 3 --repro 5
    python3 benchmarks/shrink.py --bugs deposed_leader_reads --from-run runs/random-soak-...-seed2

Per bug, one at a time (one cluster at a time), every step a real `chaos` command in a subprocess:
1. `chaos run experiments/random-soak.yaml --seed S --plant BUG` for S in --seeds until one exits 1
   (a check INVALID); none: the bug is reported `not_caught` with each seed's exit. (`--from-run`
   starts from an existing failing run instead.)
2. `chaos shrink RUN_DIR --tries T --budget B`, timed: `shrink_minutes` (goal <= 30 with --tries 3),
   and from its summary.json `faults_before`, `faults_after` (goal <= 3), `duration_before_s`,
   `duration_after_s` (the timeline: schedule + recovery window), its own confirmation rate.
3. `chaos run minimal.yaml --seed S` --repro times (fresh clusters, the seed the shrink used):
   `repro_rate` = runs where the shrunk check was INVALID / runs (goal >= 0.6).
`goals_met` says, per bug, which goals held. Every run is interrupted with SIGINT past its bound
(so it removes its cluster) and counted as not reproduced.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _result import Recorder, load_1m  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "experiments" / "random-soak.yaml"
RUN_TIMEOUT_S = 900
CLEANUP_GRACE_S = 120


def chaos(*args: str, timeout_s: float) -> tuple[int, str, str, float]:
    """`python3 -m chaos.cli ARGS` -> (exit, stdout, stderr, seconds); SIGINT past the bound (the run
    removes its cluster), then SIGKILL after CLEANUP_GRACE_S."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "chaos.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=CLEANUP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        err += f"\n(benchmark: interrupted after {timeout_s:.0f} s)"
    return proc.returncode, out, err, round(time.monotonic() - t0, 1)


def _only_dir(parent: Path) -> Path | None:
    dirs = sorted(p for p in parent.iterdir() if p.is_dir())
    return dirs[-1] if dirs else None


def _check_verdict(run_dir: Path | None, check: str) -> str:
    try:
        res = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError, TypeError):
        return "ERROR"
    hit = [c for c in res.get("checks", []) if c.get("name") == check]
    return hit[0].get("verdict", "MISSING") if hit else "MISSING"


def find_failing(bug: str, seeds: list[int], work: Path) -> tuple[Path | None, list[dict]]:
    tried = []
    for seed in seeds:
        out = work / f"soak-{bug}-s{seed}"
        out.mkdir(parents=True)
        code, _, err, secs = chaos("run", str(SOAK), "--seed", str(seed), "--plant", bug, "--out", str(out),
                                   timeout_s=RUN_TIMEOUT_S)
        run_dir = _only_dir(out)
        failing = []
        if run_dir is not None and (run_dir / "results.json").is_file():
            res = json.loads((run_dir / "results.json").read_text())
            failing = [f"{c['name']} {c['verdict']}" for c in res.get("checks", []) if c.get("verdict") != "VALID"]
        tried.append({"seed": seed, "exit": code, "seconds": secs, "not_valid": failing, "run_dir": str(run_dir),
                      "load_1m": load_1m(), **({"stderr_tail": err[-300:]} if code not in (0, 1, 3) else {})})
        print(f"[shrink-bench] {bug} soak seed {seed}: exit {code} in {secs:.0f} s {failing}", file=sys.stderr)
        if code == 1:
            return run_dir, tried
    return None, tried


def from_run_facts(run_dir: Path) -> dict:
    """What the given failing run was, from its own files: seed, planted bugs, agent version, the
    checks not VALID, how long it took."""
    out: dict = {"from_run": str(run_dir)}
    try:
        run = json.loads((run_dir / "run.json").read_text())
        res = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError) as exc:
        return {**out, "error": f"unreadable: {exc}"}
    out.update({k: run.get(k) for k in ("seed", "plant", "agent_version", "image", "duration_s", "experiment", "command")})
    out["not_valid"] = [f"{c['name']} {c['verdict']}" for c in res.get("checks", []) if c.get("verdict") != "VALID"]
    return out


def shrink_one(bug: str, run_dir: Path, args, work: Path) -> dict:
    code, out, err, secs = chaos("shrink", str(run_dir), "--tries", str(args.tries), "--budget", args.budget,
                                 timeout_s=_seconds(args.budget) + RUN_TIMEOUT_S)
    print(out, file=sys.stderr)
    row: dict = {"shrink_exit": code, "shrink_minutes": round(secs / 60, 2), "load_1m_after_shrink": load_1m()}
    summary_path = run_dir / "shrink" / "summary.json"
    if not summary_path.is_file():
        row["error"] = err[-1000:]
        return row
    s = json.loads(summary_path.read_text())
    row.update({k: s[k] for k in ("check", "seed", "faults_before", "faults_after", "faults_kept",
                                  "duration_before_s", "duration_after_s", "cluster_before", "cluster_after",
                                  "workload_before", "workload_after", "candidates", "runs", "stopped",
                                  "confirm_runs", "confirm_failed")})
    row["shrink_confirm_rate"] = s["repro_rate"]
    row["minimal"] = s["minimal"]
    verdicts = []
    for k in range(args.repro):
        rout = work / f"repro-{bug}-{k + 1}"
        rout.mkdir(parents=True)
        rc, _, _, rsecs = chaos("run", s["minimal"], "--seed", str(s["seed"]), "--out", str(rout),
                                timeout_s=RUN_TIMEOUT_S)
        v = _check_verdict(_only_dir(rout), s["check"])
        verdicts.append({"exit": rc, "verdict": v, "seconds": rsecs, "load_1m": load_1m()})
        print(f"[shrink-bench] {bug} repro {k + 1}/{args.repro}: {s['check']} {v} (exit {rc}, {rsecs:.0f} s)",
              file=sys.stderr)
    row["repro_runs"] = verdicts
    row["repro_rate"] = round(sum(v["verdict"] == "INVALID" for v in verdicts) / len(verdicts), 3) if verdicts else None
    row["goals_met"] = {"faults_after<=3": s["faults_after"] <= 3,
                        "shrink_minutes<=30": row["shrink_minutes"] <= 30.0,
                        "repro_rate>=0.6": row["repro_rate"] is not None and row["repro_rate"] >= 0.6}
    return row


def _seconds(text: str) -> float:
    sys.path.insert(0, str(ROOT))
    from chaos.experiment.schema import parse_duration
    return parse_duration(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bugs", required=True, help="comma-separated planted bugs")
    ap.add_argument("--seeds", default="1,2,3,4", help="soak seeds to try per bug until one fails")
    ap.add_argument("--from-run", default=None, help="start from this failing run directory (one bug)")
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--budget", default="30m")
    ap.add_argument("--repro", type=int, default=5, help="fresh runs of minimal.yaml")
    ap.add_argument("--work", default=None, help="where run directories go (default: a new temp dir)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    rec = Recorder("shrink")
    work = Path(args.work or tempfile.mkdtemp(prefix="shrink-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bugs = [b for b in args.bugs.split(",") if b]
    rows = []
    t0 = time.monotonic()
    for bug in bugs:
        row: dict = {"bug": bug}
        if args.from_run:
            run_dir, tried = Path(args.from_run), [from_run_facts(Path(args.from_run))]
        else:
            run_dir, tried = find_failing(bug, [int(s) for s in args.seeds.split(",")], work)
        row["soak_runs"] = tried
        if run_dir is None:
            row["not_caught"] = True
        else:
            row["soak_run_dir"] = str(run_dir)
            row.update(shrink_one(bug, run_dir, args, work))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    payload = {"tries": args.tries, "budget": args.budget, "repro": args.repro, "work": str(work),
               "seconds": round(time.monotonic() - t0, 1), "bugs": rows,
               "goals": {"faults_after": "<= 3", "shrink_minutes": "<= 30 with --tries 3", "repro_rate": ">= 0.6"}}
    out = rec.finish(payload)
    if not args.no_save:
        out["saved"] = str(rec.save(payload))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
