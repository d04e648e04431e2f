"""Reports of a run directory: JUnit XML, the HTML report with PNG plots, console helpers.

Each reporter reads only the run directory (docs/contracts.md section 5); none talks to Docker, so
`chaos report` works on any stored run. Reporters format results; they never judge (checkers do).

API for the runner (imported lazily, so JUnit does not pull in matplotlib):
  write_junit(run_dirs, path) -> Path            junit.py
  write_error_junit(path, experiment, message, properties) -> Path
  write_report(run_dir) -> Path                  html.py (report.html + plot-*.png in run_dir)
  verdict_table(results_json) -> rich Table      console.py
  summary_lines(run_dir) -> list[str]

Rooms: load.py (tolerant reading, notes on damaged files), evidence.py (readable evidence),
timeline.py (what the pictures show, as data), plots.py (drawing), html.py, junit.py, console.py,
synthetic.py (generated run directories for tests and benchmarks).

Must not import: docker, requests, the runner.
"""

from __future__ import annotations

import importlib

_API = {"write_junit": "junit", "write_error_junit": "junit", "write_report": "html",
        "verdict_table": "console", "summary_lines": "console"}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"chaos.report.{_API[name]}"), name)
    raise AttributeError(f"module 'chaos.report' has no attribute {name!r}")
