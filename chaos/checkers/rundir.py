"""Read-only access to a run directory (docs/contracts.md section 5), loaded lazily and cached.

Owns: locating and parsing run.json, plan.json, history.jsonl, faults.jsonl, status.jsonl,
events/<node>.jsonl and final/<node>.json. Missing optional files read as None / empty; a missing or
unreadable run directory raises `chaos.errors.RunDirError`; a malformed line raises ValueError naming
the file and line (inside a checker that becomes UNKNOWN with the message).

Must not import: click, rich, docker, checker modules.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from chaos import history as hist
from chaos.errors import RunDirError


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not JSON ({exc.msg} at line {exc.lineno})") from None


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.parent.name}/{path.name}:{lineno}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path.parent.name}/{path.name}:{lineno}: expected an object")
            out.append(obj)
    return out


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise RunDirError(f"run directory {self.path} does not exist",
                              hint="pass the directory a `chaos run` wrote (it holds run.json)")
        if not self.path.is_dir():
            raise RunDirError(f"{self.path} is not a directory")
        try:
            names = {p.name for p in self.path.iterdir()}
        except OSError as exc:
            raise RunDirError(f"cannot read run directory {self.path}: {exc.strerror}") from None
        known = {"run.json", "plan.json", "history.jsonl", "events", "final", "faults.jsonl", "status.jsonl"}
        if not names & known:
            raise RunDirError(f"{self.path} does not look like a run directory (no run.json, history.jsonl, "
                              f"events/ or final/)")

    def file(self, name: str) -> Path:
        return self.path / name

    # -- top-level files --
    @cached_property
    def run(self) -> dict:
        p = self.file("run.json")
        return _read_json(p) if p.exists() else {}

    def plan(self) -> Any:
        p = self.file("plan.json")
        return _read_json(p) if p.exists() else None

    @property
    def heal_ts(self) -> float | None:
        v = self.run.get("heal_ts")
        return float(v) if isinstance(v, (int, float)) else None

    @property
    def phases(self) -> list[dict]:
        ph = self.run.get("phases") or []
        return [p for p in ph if isinstance(p, dict) and "name" in p]

    def has_history(self) -> bool:
        return self.file("history.jsonl").exists()

    @cached_property
    def history(self) -> list[dict]:
        p = self.file("history.jsonl")
        if not p.exists():
            return []
        return hist.read_history(p)

    @cached_property
    def ops(self) -> list[hist.Op]:
        return hist.pair_ops(self.history)

    @cached_property
    def faults(self) -> list[dict]:
        p = self.file("faults.jsonl")
        return _read_jsonl(p) if p.exists() else []

    @cached_property
    def status(self) -> list[dict]:
        p = self.file("status.jsonl")
        return _read_jsonl(p) if p.exists() else []

    @cached_property
    def journals(self) -> dict[str, list[dict]]:
        """node -> events in journal order (by seq; file order breaks ties)."""
        d = self.file("events")
        out: dict[str, list[dict]] = {}
        if not d.is_dir():
            return out
        for p in sorted(d.glob("*.jsonl")):
            evs = _read_jsonl(p)
            for i, ev in enumerate(evs):
                if "type" not in ev:
                    raise ValueError(f"events/{p.name}: event {i + 1} has no 'type'")
                ev.setdefault("node", p.stem)
            evs.sort(key=lambda e: (e.get("seq", 0)))
            out[p.stem] = evs
        return out

    @cached_property
    def finals(self) -> dict[str, dict]:
        d = self.file("final")
        out: dict[str, dict] = {}
        if not d.is_dir():
            return out
        for p in sorted(d.glob("*.json")):
            obj = _read_json(p)
            if not isinstance(obj, dict):
                raise ValueError(f"final/{p.name}: expected an object")
            out[p.stem] = obj
        return out

    def managers(self) -> list[str]:
        """Manager ids from run.json nodes, else final statuses, else nodes with Raft events."""
        nodes = self.run.get("nodes") or {}
        if isinstance(nodes, dict) and nodes:
            ms = [n for n, info in nodes.items()
                  if (isinstance(info, dict) and info.get("role") == "manager")
                  or (isinstance(info, str) and info == "manager")]
            if ms:
                return sorted(ms)
        ms = [n for n, f in self.finals.items()
              if isinstance(f.get("status"), dict) and f["status"].get("kind") == "manager"]
        if ms:
            return sorted(ms)
        raft = {"term", "vote", "append", "commit", "apply"}
        return sorted(n for n, evs in self.journals.items() if any(e.get("type") in raft for e in evs))

    def workers(self) -> list[str]:
        nodes = self.run.get("nodes") or {}
        if isinstance(nodes, dict) and nodes:
            ws = [n for n, info in nodes.items()
                  if (isinstance(info, dict) and info.get("role") == "worker")
                  or (isinstance(info, str) and info == "worker")]
            if ws:
                return sorted(ws)
        return sorted(n for n, f in self.finals.items()
                      if isinstance(f.get("status"), dict) and f["status"].get("kind") == "worker")
