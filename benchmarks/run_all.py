"""Run every benchmark of the project and write their JSON objects into one file.

Each benchmark runs as its own process (one at a time: they measure time on a shared machine), its
JSON object is kept under its name with its wall time, exit code and the load average before and
after; a benchmark that fails or prints no JSON is recorded with its error, never dropped.

    python3 benchmarks/run_all.py [--quick] [--out benchmarks.json] [--only nemesis,report]

--quick passes each benchmark its own quick options (fewer trials, shorter runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (arguments, quick arguments). Order: pure and cheap first, then containers.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "raft_election": ([], ["--trials", "200"]),
    "raft_rejoin": ([], ["--trials", "200", "--contrast-trials", "50"]),
    "raft_sim_safety": (["--seeds", "1000"], ["--seeds", "200"]),
    "gossip": ([], ["--quick"]),
    "checker": ([], []),
    "proxy": ([], ["--pings", "5000", "--mib", "16", "--conns", "500", "--toxic-pings", "300"]),
    "report": ([], ["--repeat", "1"]),
    "agent": ([], ["--duration", "5"]),
    "cluster": ([], []),
    "nemesis": ([], ["--quick"]),
    "failover": ([], ["--quick"]),
    "bugfinding": ([], ["--quick"]),
    "mutation": ([], ["--quick"]),
}


def run_one(name: str, args: list[str], timeout_s: float) -> dict:
    path = HERE / f"{name}.py"
    if not path.exists():
        return {"error": f"{path.name} does not exist"}
    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    try:
        proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s", "args": args}
    rec: dict = {"args": args, "exit_code": proc.returncode, "wall_s": round(time.monotonic() - t0, 1),
                 "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if lines:
        try:
            rec["result"] = json.loads(lines[-1])
        except ValueError as exc:
            rec["error"] = f"last JSON line unreadable: {exc}"
    else:
        rec["error"] = "printed no JSON object"
        rec["stderr_tail"] = proc.stderr[-2000:]
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks.json")
    ap.add_argument("--only", default="", help="comma-separated names (default: all)")
    ap.add_argument("--timeout-s", type=float, default=3 * 3600)
    args = ap.parse_args()
    names = [n for n in BENCHMARKS if not args.only or n in args.only.split(",")]
    out: dict = {"quick": args.quick, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "cpus": os.cpu_count(), "benchmarks": {}}
    for name in names:
        full, quick = BENCHMARKS[name]
        print(f"== {name}", file=sys.stderr, flush=True)
        out["benchmarks"][name] = run_one(name, quick if args.quick else full, args.timeout_s)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")  # kept current as it goes
    out["ended"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"out": args.out, "failed": [n for n, r in out["benchmarks"].items() if "error" in r
                                                  or r.get("exit_code")]}))


if __name__ == "__main__":
    main()
