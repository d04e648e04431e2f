"""Bug-finding power: every planted bug against the shipped experiments meant to catch it, and the
correct agent against every shipped experiment, over several seeds. Prints one JSON object.

    python3 benchmarks/bugfinding.py --quick          # each bug vs its best experiment, 2 seeds;
                                                      # the correct agent once through the same files
    python3 benchmarks/bugfinding.py                  # each bug vs its experiments, 4 seeds; the
                                                      # correct agent vs every shipped file, 5 seeds
    python3 benchmarks/bugfinding.py --bugs stale_read --seeds 6
    python3 benchmarks/bugfinding.py --no-bugs --experiments membership-grow-under-latency --correct-seeds 4

A planted run is *caught* when a check is INVALID, or -- only for a bug whose catalogue entry names
a symptom expectation (none does today: the swarm-liveness check judges the DOWN and replacement
contracts INVALID) -- when the expectations check is UNKNOWN naming that expectation. A correct-agent run that is not VALID is a
*false alarm* (exit 1 or 3); a harness error (exit 4) is counted apart under `errors`. Each run is a
real `chaos run FILE --seed S [--plant BUG]` under `nice -n 10`; `--jobs N` runs N clusters side by
side (each run is independent: its own networks, proxies and ports), which also loads the machine
as a busy CI runner would. The JSON is saved under benchmarks/results/ with the commit and load
(`--save`, benchmarks/_result.py).

Output: bugs, caught (bugs caught by some experiment in at least half of the seeds), false_alarms,
errors, seconds, load (uptime before/after; the 1-minute load sampled every 10 s: load_1m_median,
load_1m_max), jobs, table {bug: {layer, experiment, caught, seeds,
checks}}, correct {experiment: {runs, valid, verdicts}}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "node_image"))

from swarmnode.plant import PLANT_LAYERS  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from _result import Recorder  # noqa: E402

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
    "wall_clock_lease": (("clock-skew-leader",), None),
    "dedup_lost_in_snapshot": (("rolling-restart", "slow-follower"), None),
    "task_state_backwards": (("worker-cut-from-managers",), None),
    "gossip_no_refute": (("leader-isolated", "worker-crash"), None),
    "gossip_no_pushpull": (("cluster-split-long", "leader-isolated", "worker-crash"), None),
    # swarm-liveness judges both INVALID (a silent worker never marked DOWN; a DOWN worker's tasks
    # neither orphaned nor replaced); before it, their only symptom was `until-met` never observed
    "dispatcher_never_down": (("worker-crash", "worker-cut-from-managers"), None),
    "orchestrator_no_replace": (("worker-crash",), None),
    # a power loss cuts each manager's log back to its last fsync (issue 22)
    "ack_before_fsync": (("power-loss-managers",), None),
    # a full disk, then a restart that reads back what the failed writes left (issue 22)
    "enospc_corrupts_log": (("disk-full-leader",), None),
    # swarm-liveness `rejoin`: the wiped worker (boot 1 again) is never READY (issue 22)
    "stale_worker_identity": (("worker-wiped",), None),
    # membership (issue 23): raft-safety `conf-change-rule` (the second of two changes issued at once
    # appended while the first is uncommitted) and `removed-leader` (the removed leader keeps
    # committing as leader once its removal committed). membership-grow-under-latency catches
    # conf_two_in_flight too, but only when both learners catch up together (1 of 4 seeds,
    # benchmarks/results/bugfinding-2026-12-07-94341386db.json)
    "conf_two_in_flight": (("membership-two-changes-at-once",), None),
    "removed_leader_keeps_leading": (("membership-shrink-remove-leader",), None),
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
    ap.add_argument("--experiments", default="",
                    help="comma-separated shipped files (stems) the correct agent runs (default: every one)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="keep run directories here (default: a temporary directory)")
    ap.add_argument("--jobs", type=int, default=1, help="clusters run side by side (default 1)")
    ap.add_argument("--save", action="store_true", help="also write the JSON under benchmarks/results/")
    args = ap.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 4)
    cseeds = args.correct_seeds or (1 if args.quick else 5)
    bugs = [] if args.no_bugs else ([b for b in args.bugs.split(",") if b] or list(CATALOGUE))
    unknown = [b for b in bugs if b not in CATALOGUE]
    if unknown:
        ap.error(f"unknown bugs {unknown}")
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    shipped = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    chosen = [e for e in args.experiments.split(",") if e]
    if [e for e in chosen if e not in shipped]:
        ap.error(f"unknown experiments {[e for e in chosen if e not in shipped]}; shipped: {shipped}")
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bugfinding-"))
    out_root.mkdir(parents=True, exist_ok=True)
    rec = Recorder("bugfinding" + ("-quick" if args.quick else ""))
    load_before = uptime()
    t0 = time.monotonic()

    # every run, planned first (bug runs, then the correct agent), then executed `--jobs` at a time
    specs: list[dict] = []
    for bug in bugs:
        exps, _symptom = CATALOGUE[bug]
        for exp in (exps[:1] if args.quick else exps):
            for seed in range(args.first_seed, args.first_seed + seeds):
                specs.append({"bug": bug, "exp": exp, "seed": seed})
    if not args.no_correct:
        targets = chosen or (sorted({CATALOGUE[b][0][0] for b in bugs}) if args.quick and bugs else shipped)
        for exp in targets:
            for seed in range(args.first_seed, args.first_seed + cseeds):
                specs.append({"bug": None, "exp": exp, "seed": seed})
    for i, sp in enumerate(specs, 1):
        sp["dir"] = out_root / f"{i:03d}-{sp['bug'] or 'correct'}-{sp['exp']}-s{sp['seed']}"
        sp["dir"].mkdir()

    samples: list[float] = []
    stop = threading.Event()

    def sample_load() -> None:
        while not stop.wait(10):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    done = [0]
    lock = threading.Lock()

    def execute(sp: dict) -> dict:
        r = run_once(sp["exp"], sp["seed"], sp["bug"], sp["dir"])
        with lock:
            done[0] += 1
            hits = judge_planted(r["results"], CATALOGUE[sp["bug"]][1]) if sp["bug"] else None
            print(f"# [{done[0]}/{len(specs)}] {sp['bug'] or 'correct'} {sp['exp']} seed {sp['seed']}: "
                  f"exit {r['exit']} {r['seconds']} s" + (f" caught by {hits or 'nothing'}" if sp["bug"] else ""),
                  file=sys.stderr, flush=True)
        return r

    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        outcomes = list(pool.map(execute, specs))
    except KeyboardInterrupt:
        # Ctrl-C reaches every `chaos run` child too (same process group): each removes its own
        # cluster. Queued runs are dropped; wait for the running ones to finish their cleanup.
        print(f"# interrupted after {done[0]} of {len(specs)} runs; waiting for the running ones to "
              f"remove their clusters (run directories under {out_root})", file=sys.stderr, flush=True)
        pool.shutdown(wait=True, cancel_futures=True)
        stop.set()
        return 130
    pool.shutdown(wait=True)
    stop.set()

    table: dict = {}
    errors: list = []
    correct: dict = {}
    false_alarms: list = []
    for sp, r in zip(specs, outcomes):
        bug, exp, seed = sp["bug"], sp["exp"], sp["seed"]
        if bug is not None:
            row = table.setdefault(bug, {"layer": PLANT_LAYERS[bug][0], "experiments": {}})
            cell = row["experiments"].setdefault(exp, {"caught": 0, "seeds": 0, "checks": {}, "exits": []})
            hits = judge_planted(r["results"], CATALOGUE[bug][1])
            cell["seeds"] += 1
            cell["exits"].append(r["exit"])
            if r["exit"] == 4:
                errors.append({"bug": bug, "experiment": exp, "seed": seed, "error": r["error"],
                               "run_dir": r["run_dir"]})
            if hits:
                cell["caught"] += 1
                for h in hits:
                    cell["checks"][h] = cell["checks"].get(h, 0) + 1
        else:
            entry = correct.setdefault(exp, {"runs": 0, "valid": 0, "verdicts": []})
            not_valid = {k: v for k, v in r["verdicts"].items() if v != "VALID"}
            entry["verdicts"].append({"seed": seed, "exit": r["exit"], "seconds": r["seconds"],
                                      "not_valid": not_valid})
            entry["runs"] += 1
            entry["valid"] += r["exit"] == 0
            if r["exit"] in (1, 3):
                false_alarms.append({"experiment": exp, "seed": seed, "run_dir": r["run_dir"],
                                     "checks": not_valid})
            elif r["exit"] != 0:
                errors.append({"bug": None, "experiment": exp, "seed": seed, "error": r["error"],
                               "run_dir": r["run_dir"]})
    for row in table.values():
        best = max(row["experiments"].items(), key=lambda kv: kv[1]["caught"])
        row["best"] = best[0]
        row["caught_in_half"] = best[1]["caught"] * 2 >= best[1]["seeds"] and best[1]["caught"] > 0
        row["caught_every_seed"] = best[1]["caught"] == best[1]["seeds"]

    ordered = sorted(samples)
    payload = {
        "mode": "quick" if args.quick else "full",
        "bugs": len(bugs),
        "caught": sum(1 for r in table.values() if r["caught_in_half"]),
        "caught_every_seed": sum(1 for r in table.values() if r.get("caught_every_seed")),
        "runs": len(specs),
        "correct_runs": sum(e["runs"] for e in correct.values()),
        "correct_valid": sum(e["valid"] for e in correct.values()),
        "false_alarms": len(false_alarms),
        "errors": errors,
        "seconds": round(time.monotonic() - t0, 1),
        "jobs": args.jobs,
        "seeds_per_bug": seeds, "correct_seeds": cseeds,
        "load": {"before": load_before, "after": uptime()},
        "load_1m_median": round(ordered[len(ordered) // 2], 2) if ordered else None,
        "load_1m_max": round(ordered[-1], 2) if ordered else None,
        "table": table,
        "correct": correct,
        "false_alarm_runs": false_alarms,
        "run_dirs": str(out_root),
    }
    if args.save:
        payload["saved"] = str(rec.save(payload).relative_to(ROOT))
    print(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
