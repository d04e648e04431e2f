"""Run any benchmark script and keep its JSON with provenance under benchmarks/results/.

Most scripts in benchmarks/ print one JSON object and write nothing. A figure is publishable only
with the commit that produced it and the machine's load (benchmarks/_result.py), so this wrapper
runs the script as a child process, samples the 1-minute load every 5 s while it runs, and saves
`{<provenance>, "script", "argv", "exit", "seconds", "load_1m_median", "load_1m_max", "result"}`
to `benchmarks/results/<script>-<UTC date>-<short commit>.json`. It prints the saved path and the
result. Scripts that already save their own JSON (failover, underload, control, bugfinding
--save) do not need it.

    python3 benchmarks/record.py checker.py
    python3 benchmarks/record.py report.py -- --repeat 3
    python3 benchmarks/record.py nemesis.py -- --quick

Exit status: the script's own (0 when it printed its JSON); 2 when the script is not in
benchmarks/ or printed no JSON object on its last stdout lines (the JSON is then not saved, and
stderr's tail is shown).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _result import ROOT, Recorder  # noqa: E402


def last_json_object(stdout: str) -> dict | None:
    """The JSON object a benchmark printed: the whole stdout, else the last line that parses."""
    text = stdout.strip()
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else None
    except ValueError:
        pass
    # some scripts print progress lines first; their object is the last `{` at column 0 onward
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            try:
                value = json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
            return value if isinstance(value, dict) else None
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("script", help="a script in benchmarks/, e.g. checker.py")
    ap.add_argument("args", nargs="*", help="its arguments (after --)")
    args = ap.parse_args(argv)
    script = (HERE / args.script).resolve()
    if script.parent != HERE or not script.is_file() or script.suffix != ".py":
        print(f"record.py: {args.script}: not a script in benchmarks/", file=sys.stderr)
        return 2
    rec = Recorder(script.stem)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while True:
            samples.append(os.getloadavg()[0])
            if stop.wait(5):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), *args.args], capture_output=True, text=True,
                          cwd=ROOT)
    seconds = round(time.monotonic() - t0, 2)
    stop.set()
    sampler.join()
    result = last_json_object(proc.stdout)
    if result is None:
        print(f"record.py: {script.name} exited {proc.returncode} and printed no JSON object; not saved",
              file=sys.stderr)
        print("\n".join(proc.stderr.strip().splitlines()[-15:]), file=sys.stderr)
        return 2
    ordered = sorted(samples)
    path = rec.save({"script": f"benchmarks/{script.name}", "argv": args.args, "exit": proc.returncode,
                     "seconds": seconds, "load_1m_median": round(ordered[len(ordered) // 2], 2),
                     "load_1m_max": round(ordered[-1], 2), "result": result})
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"saved {shown}", file=sys.stderr)
    print(json.dumps(result, indent=1))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
