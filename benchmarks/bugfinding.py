"""Bug-finding power: every planted bug against the shipped experiments meant to catch it, and the
correct agent against every shipped experiment, over several seeds. Prints one JSON object.

    python3 benchmarks/bugfinding.py --quick          # each bug vs its best experiment, 2 seeds;
                                                      # the correct agent once through the same files
    python3 benchmarks/bugfinding.py                  # each bug vs its experiments, 4 seeds; the
                                                      # correct agent vs every shipped file, 5 seeds
    python3 benchmarks/bugfinding.py --bugs stale_read --seeds 6

A planted run is *caught* when a check is INVALID, or -- only for a bug whose catalogue entry names
a symptom expectation (none does today: the swarm-liveness check judges the DOWN and replacement
contracts INVALID) -- when the expectations check is UNKNOWN naming that expectation. A correct-agent run that is not VALID is a
*false alarm* (exit 1 or 3); a harness error (exit 4) is counted apart under `errors`. Each run is a
real `chaos run FILE --seed S [--plant BUG]` under `nice -n 10`, one cluster at a time.

Output: bugs, caught (bugs caught by some experiment in at least half of the seeds), false_alarms,
errors, seconds, load (uptime before/after), table {bug: {layer, experiment, caught, seeds,
checks}}, correct {experiment: {runs, valid, verdicts}}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "node_image"))

from swarmnode.plant import PLANT_LAYERS  # noqa: E402

# bug -> (experiments to run it against, best first; the expectation whose absence is the symptom,
# or None when only an INVALID check counts)
CATALOGUE: dict[str, tuple[tuple[str, ...], str | None]] = {
    "vote_not_persisted": (("leader-killed", "majority-killed", "rolling-restart"), None),
    "commit_old_term": (("managers-all-cut", "leader-killed-follower-lagging"), None),
    "vote_no_log_check": (("leader-killed-follower-lagging", "majority-killed"), None),
    "apply_past_commit": (("leader-isolated",), None),
    "stale_read": (("leader-wakes-cut-off", "leader-paused"), None),
    "deposed_leader_reads": (("leader-isolated", "leader-wakes-cut-off", "leader-paused"), None),
    "no_prevote": (("flapping-partitions",), None),
    "ack_before_commit": (("leader-isolated", "split-clients"), None),
    "dedup_lost_in_snapshot": (("rolling-restart", "slow-follower"), None),
    "task_state_backwards": (("worker-cut-from-managers",), None),
    "gossip_no_refute": (("leader-isolated", "worker-crash"), None),
    "gossip_no_pushpull": (("cluster-split-long", "leader-isolated", "worker-crash"), None),
    # swarm-liveness judges both INVALID (a silent worker never marked DOWN; a DOWN worker's tasks
    # neither orphaned nor replaced); before it, their only symptom was `until-met` never observed
    "dispatcher_never_down": (("worker-crash", "worker-cut-from-managers"), None),
    "orchestrator_no_replace": (("worker-crash",), None),
}


def judge_planted(results: dict, symptom: str | None) -> list[str]:
    """The checks that caught a planted run: every INVALID check, and the expectations check when
    it is UNKNOWN because the bug's symptom expectation (`symptom`, a prefix) was never observed."""
    hits = [c["name"] for c in results.get("checks", []) if c.get("verdict") == "INVALID"]
    if symptom:
        for c in results.get("checks", []):
            if c.get("checker") == "expectations" and c.get("verdict") == "UNKNOWN":
                missing = (c.get("evidence") or {}).get("never_observed") or []
                hits += [f"expectations:{m}" for m in missing if m.startswith(symptom)]
    return hits


def run_once(exp: str, seed: int, bug: str | None, out: Path) -> dict:
    """One `chaos run`; returns {exit, verdicts {check: verdict}, results, run_dir, seconds}."""
    cmd = ["nice", "-n", "10", sys.executable, "-m", "chaos.cli", "run",
           str(ROOT / "experiments" / f"{exp}.yaml"), "--seed", str(seed), "--out", str(out)]
    if bug:
        cmd += ["--plant", bug]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    results: dict = {}
    if dirs and (dirs[-1] / "results.json").exists():
        results = json.loads((dirs[-1] / "results.json").read_text())
    error = None
    if proc.returncode == 4:   # the harness's own account (run.json `error`), else stderr's last line
        run_json = dirs[-1] / "run.json" if dirs else None
        if run_json is not None and run_json.exists():
            error = json.loads(run_json.read_text()).get("error")
        if not error and proc.stderr.strip():
            error = proc.stderr.strip().splitlines()[-1]
    return {"exit": proc.returncode, "results": results, "run_dir": str(dirs[-1]) if dirs else None,
            "verdicts": {c["name"]: c["verdict"] for c in results.get("checks", [])},
            "seconds": round(time.monotonic() - t0, 1), "error": error}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="best experiment per bug, 2 seeds; correct agent once")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per planted bug and experiment (default 4; quick 2)")
    ap.add_argument("--correct-seeds", type=int, default=None, help="seeds per experiment for the correct agent (default 5; quick 1)")
    ap.add_argument("--bugs", default="", help="comma-separated subset of bugs")
    ap.add_argument("--no-correct", action="store_true", help="skip the correct-agent runs")
    ap.add_argument("--no-bugs", action="store_true", help="only the correct-agent runs (every shipped file)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="keep run directories here (default: a temporary directory)")
    args = ap.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 4)
    cseeds = args.correct_seeds or (1 if args.quick else 5)
    bugs = [] if args.no_bugs else ([b for b in args.bugs.split(",") if b] or list(CATALOGUE))
    unknown = [b for b in bugs if b not in CATALOGUE]
    if unknown:
        ap.error(f"unknown bugs {unknown}")
    shipped = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bugfinding-"))
    out_root.mkdir(parents=True, exist_ok=True)
    load_before = uptime()
    t0 = time.monotonic()
    table: dict = {}
    errors: list = []
    run_no = 0

    def fresh(label: str) -> Path:
        nonlocal run_no
        run_no += 1
        d = out_root / f"{run_no:03d}-{label}"
        d.mkdir()
        return d

    for bug in bugs:
        exps, symptom = CATALOGUE[bug]
        exps = exps[:1] if args.quick else exps
        row = {"layer": PLANT_LAYERS[bug][0], "experiments": {}}
        for exp in exps:
            caught, checks = 0, {}
            for seed in range(args.first_seed, args.first_seed + seeds):
                r = run_once(exp, seed, bug, fresh(f"{bug}-{exp}-s{seed}"))
                hits = judge_planted(r["results"], symptom)
                if r["exit"] == 4:
                    errors.append({"bug": bug, "experiment": exp, "seed": seed, "error": r["error"],
                                   "run_dir": r["run_dir"]})
                if hits:
                    caught += 1
                    for h in hits:
                        checks[h] = checks.get(h, 0) + 1
                print(f"# {bug} {exp} seed {seed}: exit {r['exit']} {r['seconds']} s caught by "
                      f"{hits or 'nothing'}", file=sys.stderr, flush=True)
            row["experiments"][exp] = {"caught": caught, "seeds": seeds, "checks": checks}
        best = max(row["experiments"].items(), key=lambda kv: kv[1]["caught"])
        row["best"] = best[0]
        row["caught_in_half"] = best[1]["caught"] * 2 >= best[1]["seeds"] and best[1]["caught"] > 0
        table[bug] = row

    correct: dict = {}
    false_alarms: list = []
    if not args.no_correct:
        targets = sorted({CATALOGUE[b][0][0] for b in bugs}) if args.quick and bugs else shipped
        for exp in targets:
            verdicts = []
            for seed in range(args.first_seed, args.first_seed + cseeds):
                r = run_once(exp, seed, None, fresh(f"correct-{exp}-s{seed}"))
                verdicts.append({"seed": seed, "exit": r["exit"],
                                 "not_valid": {k: v for k, v in r["verdicts"].items() if v != "VALID"}})
                if r["exit"] in (1, 3):
                    false_alarms.append({"experiment": exp, "seed": seed, "run_dir": r["run_dir"],
                                         "checks": verdicts[-1]["not_valid"]})
                elif r["exit"] != 0:
                    errors.append({"bug": None, "experiment": exp, "seed": seed, "error": r["error"],
                                   "run_dir": r["run_dir"]})
                print(f"# correct {exp} seed {seed}: exit {r['exit']} {r['seconds']} s",
                      file=sys.stderr, flush=True)
            correct[exp] = {"runs": len(verdicts), "valid": sum(v["exit"] == 0 for v in verdicts),
                            "verdicts": verdicts}

    print(json.dumps({
        "mode": "quick" if args.quick else "full",
        "bugs": len(bugs),
        "caught": sum(1 for r in table.values() if r["caught_in_half"]),
        "false_alarms": len(false_alarms),
        "errors": errors,
        "seconds": round(time.monotonic() - t0, 1),
        "seeds_per_bug": seeds, "correct_seeds": cseeds,
        "load": {"before": load_before, "after": uptime()},
        "table": table,
        "correct": correct,
        "false_alarm_runs": false_alarms,
        "run_dirs": str(out_root),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
