"""Benchmark of the reporters; prints one JSON object (never passes or fails on time).

Generates a synthetic 100,000-operation run directory (chaos.report.synthetic: 3 managers + 5
workers with journals, two faults with intended and in-effect times, status polls) in a temp dir,
then measures:

  report_100k_s         `chaos report RUN_DIR` end to end in a fresh interpreter (imports included),
                        best of --repeat runs (wall clock)
  report_100k_cpu_s     CPU time (user + system) of that best run: what the wall clock would be on an
                        idle core, less disturbed by other load on a shared machine
  report_100k_mb        size of report.html (plots embedded)
  report_100k_pngs_mb   the PNG files written beside it
  report_100k_inproc_s  write_report() in an interpreter that already imported matplotlib (best of
                        --repeat)
  load_s, plots_s       its parts: reading the run directory; drawing every plot (best of --repeat)
  junit_s               write_junit() for that run directory (the history is not read)
  ops, generate_s       the history size and the generation time (not part of the above)

Run: python benchmarks/report.py [--ops 100000] [--repeat 3] [--keep DIR]
Must not import: docker, requests.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaos.report import load, plots, synthetic  # noqa: E402
from chaos.report.html import write_report  # noqa: E402
from chaos.report.junit import write_junit  # noqa: E402


def _best(n: int, fn) -> float:
    times = []
    for _ in range(max(1, n)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(min(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="write the run directory here and keep it")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="chaos-report-bench-"))
    try:
        run = tmp / "run"
        if run.exists():
            shutil.rmtree(run)
        t = time.perf_counter()
        synthetic.make_run(run, ops=args.ops)
        out = {"ops": args.ops, "generate_s": round(time.perf_counter() - t, 3)}
        cmd = [sys.executable, "-c", "import sys; from chaos.cli import main; sys.exit(main(sys.argv[1:]))",
               "report", str(run)]
        best = None
        for _ in range(args.repeat):
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
            dt = time.perf_counter() - t
            ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru2.ru_utime - ru.ru_utime) + (ru2.ru_stime - ru.ru_stime)
            if best is None or dt < best[0]:
                best = (dt, cpu)
        out["report_100k_s"] = round(best[0], 3)
        out["report_100k_cpu_s"] = round(best[1], 3)
        out["report_100k_mb"] = round((run / "report.html").stat().st_size / 1e6, 3)
        out["report_100k_pngs_mb"] = round(sum(p.stat().st_size for p in run.glob("plot-*.png")) / 1e6, 3)
        out["report_100k_inproc_s"] = _best(args.repeat, lambda: write_report(run))
        out["load_s"] = _best(args.repeat, lambda: load.load(run))
        view = load.load(run)
        out["plots_s"] = _best(args.repeat, lambda: plots.render_all(view))
        t = time.perf_counter()
        write_junit([run], tmp / "junit.xml")
        out["junit_s"] = round(time.perf_counter() - t, 3)
        print(json.dumps(out))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
