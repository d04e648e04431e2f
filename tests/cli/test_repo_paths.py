"""The tree names no path of one machine: a reader elsewhere (another clone, CI) must find what a
docstring or document points at. The shared references live beside the clone, as `../shared/...`
(issue 16 item 11: chaos/toxi.py named the spec by an absolute path on this project's machines)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MACHINE_ROOT = "/" + "work" + "/"   # split so that this file does not match itself


def test_repo_tracked_files_name_no_absolute_machine_path():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for rel in files:
        path = ROOT / rel
        if path.suffix not in (".py", ".md", ".toml", ".yml", ".yaml", ".txt", "") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{rel}:{n}" for n, line in enumerate(text.splitlines(), 1) if MACHINE_ROOT in line]
    assert offenders == [], offenders
