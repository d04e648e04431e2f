"""Where a benchmark's JSON goes: `benchmarks/results/<bench>-<UTC date>-<short commit>.json`.

Owns the provenance every published figure carries (DESIGN.md section 2, `benchmarks/results/`):
the commit that produced it (and `dirty` when the tree had uncommitted changes, so the figure may
not belong to that commit), the 1-minute load average before and after (this machine is shared: a
figure without its load means little), and the UTC start and end. Standard library only; imports
nothing from `chaos`.

    rec = Recorder("underload")        # stamps commit, dirty, load_1m_before, started_utc
    ...                                # run the benchmark
    path = rec.save(payload)           # adds load_1m_after, ended_utc; writes; returns the path

A second result with the same bench, date and commit gets `-2`, `-3`, ... rather than overwriting
the first.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit() -> str | None:
    """`git rev-parse HEAD` of this tree, or None outside a git checkout."""
    return _git("rev-parse", "HEAD")


def dirty() -> bool | None:
    """True when tracked files have uncommitted changes (untracked files do not count: run
    directories and results themselves would otherwise always make it dirty); None without git."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_path(bench: str, day: str, short: str, results: Path = RESULTS) -> Path:
    """The first free `<bench>-<day>-<short>[-N].json` under `results`."""
    base = f"{bench}-{day}-{short}"
    path, n = results / f"{base}.json", 1
    while path.exists():
        n += 1
        path = results / f"{base}-{n}.json"
    return path


class Recorder:
    """Provenance of one benchmark run, stamped at construction; `save` finishes and writes it."""

    def __init__(self, bench: str, results: Path = RESULTS):
        self.bench = bench
        self.results = results
        self.meta = {"bench": bench, "commit": commit(), "dirty": dirty(),
                     "started_utc": utc_now(), "load_1m_before": load_1m()}

    def finish(self, payload: dict) -> dict:
        """`payload` with the provenance keys added (a payload key of the same name wins)."""
        return {**self.meta, "ended_utc": utc_now(), "load_1m_after": load_1m(), **payload}

    def save(self, payload: dict) -> Path:
        out = self.finish(payload)
        day = out["started_utc"][:10]
        short = (out["commit"] or "nogit")[:10]
        self.results.mkdir(parents=True, exist_ok=True)
        path = result_path(self.bench, day, short, self.results)
        path.write_text(json.dumps(out, indent=1) + "\n")
        return path
