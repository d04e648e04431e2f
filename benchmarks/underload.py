"""Verdicts under load: the correct agent against shipped experiments while CPU burners compete for
the machine, as on a busy CI runner (issue 21, section 5). Prints one JSON object; also writes it to
benchmarks/results/ (benchmarks/_result.py) unless --no-save.

    python3 benchmarks/underload.py                                   # 6 files x 3 seeds, 2 burners
    python3 benchmarks/underload.py --files leader-isolated,worker-crash --seeds 1 --burners 4

Every run is a real `chaos run FILE --seed S --out DIR` in a subprocess at normal priority, one at a
time. Beside them, for their whole length, N processes spin `while True: pass` at normal priority:
started before the first run and killed after the last, always (also on Ctrl-C or SIGTERM, which
first lets the current run remove its own cluster).

The correct agent must give exit 0 every time, so any other exit is a finding:
- `false_alarms`: runs that exited 1 or 3 (a check INVALID or UNKNOWN / an expectation never
  observed), each with its file, seed, exit and every check that was not VALID with its summary;
- `harness_errors`: runs that exited 4, each with the cause from run.json `error` / `error_hint`
  (stderr's last line when run.json has none).
Goal: both empty. Also `runs`, `load_1m_median` (the 1-minute load average sampled every 5 s during
the runs: the machine is shared, so it is usually above the burners alone), `seconds`, `commit`, and
`table` (one row per run).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _result import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = ("leader-isolated", "leader-killed", "leader-paused", "majority-killed", "worker-crash",
         "random-soak")
RUN_TIMEOUT_S = 900
"""One run's bound; past it the run is interrupted (SIGINT, so it removes its cluster) and counted
as a harness error."""
CLEANUP_GRACE_S = 120
"""How long an interrupted run may take to remove its cluster before it is killed."""
SAMPLE_EVERY_S = 5.0


# -- load: burners and the sampler ------------------------------------------------------------------


def start_burners(n: int) -> list[subprocess.Popen]:
    """N child pythons spinning at normal priority, in their own process group each (a Ctrl-C
    reaches us, and we stop them: they must never outlive the benchmark)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(n)]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for p in burners:
        if p.poll() is None:
            p.kill()
    for p in burners:
        p.wait()


class LoadSampler:
    """The 1-minute load average every `every_s` seconds on a daemon thread, until `stop()`."""

    def __init__(self, every_s: float = SAMPLE_EVERY_S):
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self._stop.wait(self.every_s):
                return

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def median(self) -> float | None:
        return round(statistics.median(self.samples), 2) if self.samples else None


# -- one run ----------------------------------------------------------------------------------------


def _wait_or_interrupt(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for `proc`; on timeout or our own interruption, SIGINT it (its runner removes its
    cluster on SIGINT), give it CLEANUP_GRACE_S, then kill it. True when it ended by itself."""
    try:
        proc.wait(timeout=timeout_s)
        return True
    except subprocess.TimeoutExpired:
        _interrupt(proc)
        return False
    except BaseException:
        _interrupt(proc)
        raise


def _interrupt(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=CLEANUP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_once(exp: str, seed: int, out: Path, timeout_s: float = RUN_TIMEOUT_S) -> dict:
    """One `chaos run` at normal priority; the row for the table."""
    cmd = [sys.executable, "-m", "chaos.cli", "run", str(ROOT / "experiments" / f"{exp}.yaml"),
           "--seed", str(seed), "--out", str(out)]
    t0 = time.monotonic()
    err_path = out / "stderr.txt"
    with open(err_path, "w") as err:
        # its own session: a terminal Ctrl-C reaches only us, and we pass it on (_interrupt)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
                                start_new_session=True)
        ended = _wait_or_interrupt(proc, timeout_s)
    row = {"file": exp, "seed": seed, "exit": proc.returncode if ended else 4,
           "seconds": round(time.monotonic() - t0, 1)}
    row.update(read_run(out, err_path.read_text(errors="replace")))
    if not ended:
        row["error"] = f"benchmark timeout: no exit after {timeout_s:g} s (interrupted)"
    return row


def read_run(out: Path, stderr: str) -> dict:
    """What the run directory says: its path, each check that was not VALID (name -> verdict and
    summary), and the harness's own account of an error (run.json `error`, `error_hint`)."""
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    if not dirs:
        return {"run_dir": None, "not_valid": {}, "error": _last_line(stderr), "error_hint": None}
    d = dirs[-1]
    results = _json(d / "results.json")
    run = _json(d / "run.json")
    not_valid = {c.get("name"): {"verdict": c.get("verdict"), "summary": c.get("summary")}
                 for c in results.get("checks", []) if c.get("verdict") != "VALID"}
    return {"run_dir": str(d), "not_valid": not_valid,
            "error": run.get("error") or (None if results else _last_line(stderr)),
            "error_hint": run.get("error_hint")}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _last_line(text: str) -> str | None:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else None


# -- the table and its summary ----------------------------------------------------------------------


def summarise(table: list[dict]) -> dict:
    """false_alarms (exit 1 or 3) and harness_errors (exit 4, or any other non-zero exit)."""
    alarms = [{k: r[k] for k in ("file", "seed", "exit", "not_valid", "run_dir")}
              for r in table if r["exit"] in (1, 3)]
    errors = [{k: r[k] for k in ("file", "seed", "exit", "error", "error_hint", "run_dir")}
              for r in table if r["exit"] not in (0, 1, 3)]
    return {"runs": len(table), "valid": sum(r["exit"] == 0 for r in table),
            "false_alarms": alarms, "harness_errors": errors}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default=",".join(FILES), help="comma-separated shipped experiment names")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per file (default 3)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--burners", type=int, default=2, help="CPU-burning processes beside the runs (default 2)")
    ap.add_argument("--out", default=None, help="keep run directories here (default: a temporary directory)")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    args = ap.parse_args(argv)
    files = [f for f in args.files.split(",") if f]
    missing = [f for f in files if not (ROOT / "experiments" / f"{f}.yaml").exists()]
    if missing or args.seeds < 1 or args.burners < 0:
        ap.error(f"unknown experiment files {missing}" if missing else "--seeds >= 1, --burners >= 0")
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="underload-"))
    out_root.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_sigterm)
    rec = Recorder("underload")
    table: list[dict] = []
    t0 = time.monotonic()
    burners = start_burners(args.burners)
    sampler = LoadSampler().start()
    interrupted = False
    try:
        for exp in files:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                d = out_root / f"{len(table) + 1:03d}-{exp}-s{seed}"
                d.mkdir()
                table.append(run_once(exp, seed, d))
                r = table[-1]
                print(f"# {exp} seed {seed}: exit {r['exit']} {r['seconds']} s load {os.getloadavg()[0]:.1f}"
                      f" {r['error'] or ''}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop_burners(burners)
        sampler.stop()
    payload = {**summarise(table), "interrupted": interrupted, "burners": args.burners,
               "load_1m_median": sampler.median(), "load_1m_samples": len(sampler.samples),
               "seconds": round(time.monotonic() - t0, 1), "commit": rec.meta["commit"],
               "files": files, "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
               "run_dirs": str(out_root), "table": table}
    if not args.no_save:
        payload["saved"] = str(rec.save(payload).relative_to(ROOT))
    print(json.dumps(rec.finish(payload), indent=1))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
