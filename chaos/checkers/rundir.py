"""Read-only access to a run directory (docs/contracts.md section 5), loaded lazily and cached.

Owns: locating, parsing and validating run.json, plan.json, history.jsonl, faults.jsonl,
status.jsonl, events/<node>.jsonl and final/<node>.json, and the record of what is missing or
damaged in them (`Gap`s), per part, so that `run_check` can tell which checks saw an incomplete record.

Must not import: click, rich, docker, checker modules.

Damage rule (README "Exit codes"):
  * A directory that cannot be read at all -- missing, not a directory, none of run.json, history.jsonl,
    events/, final/, or a run.json that is not a JSON object -- raises `RunDirError` (exit 2).
    A plan.json that is not JSON raises `RunDirError` when the checks to run must come from it.
  * Anything else is judged as far as it can be. A part that is damaged is recorded as a `Gap` and
    read as absent: a JSON-lines file with a bad line anywhere but at its very end (not JSON, not an
    object, an unknown event type, a missing or mistyped field), a final/<node>.json that is not an
    object, a history whose invocations and completions do not pair up.
  * The one tolerated damage: the LAST line of an append-only JSON-lines file, without a final newline,
    that does not parse -- what a harness or node killed while appending leaves. The complete lines
    before it are used; the cut line is still recorded as a Gap (kind `truncated`), because the run's
    record ends early.
  * A node named in run.json `nodes` without events/<node>.jsonl or final/<node>.json is a Gap (kind
    `missing`): the harness collects every node's journal and final state, also of a node that was
    killed (its journal stays on its volume; an unreachable node's final file records the error).
A Gap never makes a check VALID and, unless the checker's INVALID provably holds on a partial record,
never INVALID either: `run_check` turns such verdicts into UNKNOWN with the Gap's one-line message.

Accessors record which parts each check read (`touched`); `gaps_for(touched)` gives the Gaps of those.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

from chaos import history as hist
from chaos.errors import RunDirError

JOURNAL_TYPES: dict[str, dict[str, type | tuple]] = {
    # type -> required fields and their types (docs/contracts.md section 4)
    "boot": {},
    "term": {"term": int},
    "vote": {"term": int, "candidate": str},
    "recovered": {"term": int, "commit": int},
    "role": {"role": str, "term": int},
    "append": {"index": int, "term": int, "hash": str},
    "truncate": {"from_index": int},
    "commit": {"index": int},
    "apply": {"index": int, "term": int, "hash": str},
    "snapshot": {"index": int, "term": int, "hash": str},
    "member": {"member": str, "state": str},
    "worker": {"worker": str, "state": str},
    "task": {"task": str, "state": str},
    "power-loss": {"dropped_bytes": int},
    "disk": {"state": str},
    # membership (issue 23): the configuration in force changed; a join refused; a worker promoted
    "config": {"index": int, "voters": list, "learners": list},
    "join": {"state": str},
    "promoted": {"role": str},
}
_NUMBER = (int, float)


@dataclass(frozen=True)
class Gap:
    """One missing or damaged part of the record. `file` is relative to the run directory."""

    part: tuple            # ("history",), ("journal", node), ("final", node), ("status",), ("faults",)
    file: str
    kind: str              # missing | damaged | truncated
    problem: str
    line: int | None = None

    @property
    def message(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.problem}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "kind": self.kind, "problem": self.problem,
                "message": self.message}


class _Damaged(Exception):
    def __init__(self, line: int | None, problem: str):
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool) and math.isfinite(v)


def _read_lines(path: Path) -> tuple[list[tuple[int, str]], tuple[int, str] | None]:
    """Non-blank lines with their numbers; and the last line if it lacks its newline."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Damaged(None, f"cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _Damaged(line, "not UTF-8 text") from None
    lines = text.split("\n")
    unterminated = None
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        unterminated = (len(lines), lines[-1])
    return [(n, s) for n, s in enumerate(lines, 1) if s.strip()], unterminated


def read_jsonl(path: Path, validate: Callable[[dict], str | None] | None = None
               ) -> tuple[list[tuple[int, dict]], _Damaged | None]:
    """Parse a JSON-lines file. Returns (line number, object) pairs and, when the last line was cut
    short (no newline, not JSON), that line's damage. Any other bad line raises `_Damaged`."""
    lines, unterminated = _read_lines(path)
    out: list[tuple[int, dict]] = []
    tail = None
    for lineno, line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if unterminated is not None and lineno == unterminated[0]:
                tail = _Damaged(lineno, f"last line cut short ({exc.msg}); ignored")
                break
            raise _Damaged(lineno, f"not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise _Damaged(lineno, f"expected a JSON object, got {type(obj).__name__}")
        problem = validate(obj) if validate else None
        if problem:
            raise _Damaged(lineno, problem)
        out.append((lineno, obj))
    return out, tail


def _read_json_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _Damaged(None, "not UTF-8 text") from None
    except OSError as exc:
        raise _Damaged(None, f"cannot read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Damaged(exc.lineno, f"not JSON ({exc.msg})") from None


def validate_journal_event(ev: dict) -> str | None:
    t = ev.get("type")
    if not isinstance(t, str):
        return "event has no 'type'" if t is None else f"'type' is {t!r}, not a string"
    fields = JOURNAL_TYPES.get(t)
    if fields is None:
        return f"unknown event type {t!r}"
    for name in ("seq", "boot"):
        if name in ev and not _is_int(ev[name]):
            return f"{t} event: {name!r} is {ev[name]!r}, not an integer"
    if "ts" in ev and not _is_number(ev["ts"]):
        return f"{t} event: 'ts' is {ev['ts']!r}, not a number"
    for name, kind in fields.items():
        v = ev.get(name)
        ok = _is_int(v) if kind is int else isinstance(v, kind)
        if not ok:
            return f"{t} event: {name!r} is {'missing' if name not in ev else repr(v)}, not {kind.__name__}"
    if t == "recovered" and ("vote" not in ev or not (ev["vote"] is None or isinstance(ev["vote"], str))):
        # raft-safety compares it with the journal's votes: a damaged one must not read as a lost vote
        return f"recovered event: 'vote' is {'missing' if 'vote' not in ev else repr(ev['vote'])}, not a node id or null"
    return None


def _validate_status(row: dict) -> str | None:
    if not isinstance(row.get("node"), str):
        return "status row has no 'node'"
    if not _is_number(row.get("ts")):
        return f"status row: 'ts' is {row.get('ts')!r}, not a number"
    return None


FAULT_ACTIONS = ("intend-start", "start", "intend-stop", "stop", "heal", "skipped", "error", "sham", "step")
"""faults.jsonl actions (docs/contracts.md section 5); `start`/`stop` are the in-effect lines; `sham`
is a fault of a control run (`chaos run --control`), planned and never applied; `step` is one step
of a membership add or replace (remove, wipe, join), written as it is done."""


def _validate_fault(row: dict) -> str | None:
    if row.get("action") not in FAULT_ACTIONS:
        return f"fault row: 'action' is {row.get('action')!r}, not one of {', '.join(FAULT_ACTIONS)}"
    if not _is_number(row.get("ts")):
        return f"fault row: 'ts' is {row.get('ts')!r}, not a number"
    return None


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
        if not names & {"run.json", "history.jsonl", "events", "final"}:
            raise RunDirError(f"{self.path} does not look like a run directory (no run.json, history.jsonl, "
                              f"events/ or final/)")
        self._gaps: list[Gap] = []
        self.touched: set[tuple] = set()
        self.run = self._load_run_json()

    def _load_run_json(self) -> dict:
        p = self.file("run.json")
        if not p.exists():
            return {}
        try:
            obj = _read_json_file(p)
        except _Damaged as exc:
            where = f"{p}" if exc.line is None else f"{p}:{exc.line}"
            raise RunDirError(f"{where}: {exc.problem}",
                              hint="run.json says which nodes and phases the run had; without it nothing "
                                   "can be judged") from None
        if not isinstance(obj, dict):
            raise RunDirError(f"{p}: expected a JSON object, got {type(obj).__name__}")
        return obj

    def file(self, name: str) -> Path:
        return self.path / name

    # -- gaps --
    def _gap(self, part: tuple, file: str, kind: str, problem: str, line: int | None = None) -> None:
        self._gaps.append(Gap(part, file, kind, problem, line))

    def _touch(self, *parts: tuple) -> None:
        self.touched.update(parts)

    @property
    def gaps(self) -> list[Gap]:
        """Every gap found so far (parts are loaded lazily; `load_all` loads them all)."""
        return list(self._gaps)

    def gaps_for(self, parts: Iterable[tuple]) -> list[Gap]:
        parts = set(parts)
        return [g for g in self._gaps if g.part in parts]

    def load_all(self) -> list[Gap]:
        """Read every part (so that `gaps` is complete); return the gaps."""
        _ = (self.history_ops, self.faults, self.status, self._journals, self._finals)
        return self.gaps

    def plan(self) -> Any:
        p = self.file("plan.json")
        if not p.exists():
            return None
        try:
            return _read_json_file(p)
        except _Damaged as exc:
            where = f"{p}" if exc.line is None else f"{p}:{exc.line}"
            raise RunDirError(f"{where}: {exc.problem}",
                              hint="plan.json says which checks to run; name them instead with --check") from None

    @property
    def heal_ts(self) -> float | None:
        v = self.run.get("heal_ts")
        return float(v) if _is_number(v) else None

    @property
    def phases(self) -> list[dict]:
        ph = self.run.get("phases") or []
        if not isinstance(ph, list):
            return []
        return [p for p in ph if isinstance(p, dict) and isinstance(p.get("name"), str)]

    def named_nodes(self) -> dict[str, str]:
        """node -> role ("manager", "worker", or "" when not given) from run.json `nodes`."""
        nodes = self.run.get("nodes")
        out: dict[str, str] = {}
        if isinstance(nodes, dict):
            for n, info in nodes.items():
                role = info.get("role") if isinstance(info, dict) else info
                out[str(n)] = role if isinstance(role, str) else ""
        return out

    # -- history --
    def has_history(self) -> bool:
        self._touch(("history",))
        return self.file("history.jsonl").exists()

    @cached_property
    def history_ops(self) -> tuple[list[dict], list[hist.Op]]:
        p = self.file("history.jsonl")
        if not p.exists():
            return [], []
        position = 0
        events = []

        def validate(ev: dict) -> str | None:
            try:
                hist.validate_event(ev, "event")
            except hist.HistoryError as exc:
                return str(exc).removeprefix("event: ")
            return None
        try:
            rows, tail = read_jsonl(p, validate)
        except _Damaged as exc:
            self._gap(("history",), "history.jsonl", "damaged", exc.problem + "; history not judged", exc.line)
            return [], []
        for _, ev in rows:
            if "index" not in ev:
                ev["index"] = position
            position += 1
            events.append(ev)
        if tail is not None:
            self._gap(("history",), "history.jsonl", "truncated", tail.problem, tail.line)
        try:
            ops = hist.pair_ops(events)
        except hist.HistoryError as exc:
            self._gap(("history",), "history.jsonl", "damaged", f"{exc}; history not judged")
            return [], []
        return events, ops

    @property
    def history(self) -> list[dict]:
        self._touch(("history",))
        return self.history_ops[0]

    @property
    def ops(self) -> list[hist.Op]:
        self._touch(("history",))
        return self.history_ops[1]

    # -- other JSON-lines files --
    def _rows(self, name: str, validate) -> list[dict]:
        p = self.file(name)
        if not p.exists():
            return []
        try:
            rows, tail = read_jsonl(p, validate)
        except _Damaged as exc:
            self._gap((name.removesuffix(".jsonl"),), name, "damaged", exc.problem + "; file not used", exc.line)
            return []
        if tail is not None:
            self._gap((name.removesuffix(".jsonl"),), name, "truncated", tail.problem, tail.line)
        return [r for _, r in rows]

    @cached_property
    def _faults(self) -> list[dict]:
        return self._rows("faults.jsonl", _validate_fault)

    @property
    def faults(self) -> list[dict]:
        self._touch(("faults",))
        return self._faults

    @cached_property
    def _status(self) -> list[dict]:
        return self._rows("status.jsonl", _validate_status)

    @property
    def status(self) -> list[dict]:
        self._touch(("status",))
        return self._status

    # -- journals --
    @cached_property
    def _journals(self) -> dict[str, list[dict]]:
        d = self.file("events")
        out: dict[str, list[dict]] = {}
        files = {p.stem: p for p in sorted(d.glob("*.jsonl"))} if d.is_dir() else {}
        for node in sorted(set(files) | set(self.named_nodes())):
            rel = f"events/{node}.jsonl"
            p = files.get(node)
            if p is None:
                self._gap(("journal", node), rel, "missing", f"no journal for {node}, which run.json names")
                continue
            try:
                rows, tail = read_jsonl(p, validate_journal_event)
            except _Damaged as exc:
                self._gap(("journal", node), rel, "damaged", exc.problem + f"; journal of {node} not used",
                          exc.line)
                continue
            if tail is not None:
                self._gap(("journal", node), rel, "truncated", tail.problem, tail.line)
            evs = [ev for _, ev in rows]
            for ev in evs:
                ev.setdefault("node", node)
            evs.sort(key=lambda e: e.get("seq", 0))
            out[node] = evs
        return out

    def _journal_nodes(self) -> list[str]:
        d = self.file("events")
        present = {p.stem for p in d.glob("*.jsonl")} if d.is_dir() else set()
        return sorted(present | set(self.named_nodes()))

    @property
    def journals(self) -> dict[str, list[dict]]:
        """node -> events in journal order (by seq; file order breaks ties), usable journals only."""
        self._touch(*(("journal", n) for n in self._journal_nodes()))
        return self._journals

    def journals_of(self, nodes: Iterable[str]) -> dict[str, list[dict]]:
        nodes = list(nodes)
        self._touch(*(("journal", n) for n in nodes))
        return {n: self._journals[n] for n in nodes if n in self._journals}

    # -- finals --
    @cached_property
    def _finals(self) -> dict[str, dict]:
        d = self.file("final")
        files = {p.stem: p for p in sorted(d.glob("*.json"))} if d.is_dir() else {}
        out: dict[str, dict] = {}
        for node in sorted(set(files) | set(self.named_nodes())):
            rel = f"final/{node}.json"
            p = files.get(node)
            if p is None:
                self._gap(("final", node), rel, "missing", f"no final state for {node}, which run.json names")
                continue
            try:
                obj = _read_json_file(p)
                if not isinstance(obj, dict):
                    raise _Damaged(None, f"expected a JSON object, got {type(obj).__name__}")
                for k in ("status", "store"):
                    if obj.get(k) is not None and not isinstance(obj[k], dict):
                        raise _Damaged(None, f"{k!r} is {type(obj[k]).__name__}, not an object")
            except _Damaged as exc:
                self._gap(("final", node), rel, "damaged", exc.problem + f"; final state of {node} not used",
                          exc.line)
                continue
            out[node] = obj
        return out

    def _final_nodes(self) -> list[str]:
        d = self.file("final")
        present = {p.stem for p in d.glob("*.json")} if d.is_dir() else set()
        return sorted(present | set(self.named_nodes()))

    @property
    def finals(self) -> dict[str, dict]:
        """node -> final state, usable files only."""
        self._touch(*(("final", n) for n in self._final_nodes()))
        return self._finals

    def finals_of(self, nodes: Iterable[str]) -> dict[str, dict]:
        nodes = list(nodes)
        self._touch(*(("final", n) for n in nodes))
        return {n: self._finals[n] for n in nodes if n in self._finals}

    # -- roles --
    def started_managers(self) -> list[str]:
        """The managers the cluster started with: `managers()` without those run.json marks `joined`
        (a node that joined during the run under a spare id, issue 23)."""
        nodes = self.run.get("nodes")
        joined = {str(n) for n, info in nodes.items() if isinstance(info, dict) and info.get("joined")} \
            if isinstance(nodes, dict) else set()
        return [m for m in self.managers() if m not in joined]

    def managers(self) -> list[str]:
        """Manager ids from run.json nodes (joined ones too), else final statuses, else nodes with
        Raft events."""
        ms = [n for n, role in self.named_nodes().items() if role == "manager"]
        if ms:
            return sorted(ms)
        ms = [n for n, f in self.finals.items()
              if isinstance(f.get("status"), dict) and f["status"].get("kind") == "manager"]
        if ms:
            return sorted(ms)
        raft = {"term", "vote", "append", "commit", "apply"}
        return sorted(n for n, evs in self.journals.items() if any(e.get("type") in raft for e in evs))

    def workers(self) -> list[str]:
        ws = [n for n, role in self.named_nodes().items() if role == "worker"]
        if ws:
            return sorted(ws)
        return sorted(n for n, f in self.finals.items()
                      if isinstance(f.get("status"), dict) and f["status"].get("kind") == "worker")
