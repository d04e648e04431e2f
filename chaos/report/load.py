"""Tolerant reading of a run directory for reports (docs/contracts.md section 5).

Owns: `RunView`, everything a report shows, read once from the run directory. Unlike the checkers'
`RunDir` (strict: a damaged part is a Gap that makes a check UNKNOWN; a damaged run.json refuses the
whole directory), a report must still be written when a file is missing, truncated or damaged: each
problem becomes a line in `RunView.notes`, shown in every report, and the rest of the run is shown as
far as it can be read. Only a missing or unreadable run directory
raises (`chaos.errors.RunDirError`), with the same messages as `RunDir`.

Must not import: docker, requests, click, matplotlib, the runner. Reads files only.
"""

from __future__ import annotations

import gc
import json
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from chaos import history as hist
from chaos.errors import RunDirError

class ClientOp(NamedTuple):
    """One client operation as the report draws it (a light `chaos.history.Op`: tuples are cheap to
    build, which matters at 100,000 operations). `type` is the completion type; an invocation never
    completed is `info` with `complete_ts` None."""

    type: str
    invoke_ts: float | None
    complete_ts: float | None
    error: str | None
    process: Any
    f: str
    invoke_index: int

    @property
    def latency_s(self) -> float | None:
        if self.invoke_ts is None or self.complete_ts is None:
            return None
        return self.complete_ts - self.invoke_ts

    @property
    def refused(self) -> bool:
        """A cas refused on a value mismatch: served, named "refused" (never "fail") in reports."""
        return hist.refused(self.type, self.error)


NOT_JUDGED = "NOT JUDGED"  # verdict shown when results.json is missing or damaged
MAX_TEXT_BYTES = 512 * 1024  # experiment.yaml / plan.json shown verbatim up to this size


@dataclass
class RunView:
    path: Path
    run: dict = field(default_factory=dict)
    plan: Any = None
    plan_text: str | None = None
    experiment_text: str | None = None
    results: dict | None = None
    ops: list[ClientOp] = field(default_factory=list)
    index_ts: dict[int, float] = field(default_factory=dict)  # history event index -> ts
    faults: list[dict] = field(default_factory=list)
    status: list[dict] = field(default_factory=list)
    journals: dict[str, list[dict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read, shown in every report

    # -- identity --
    @property
    def experiment(self) -> str:
        for source in (self.run, self.plan if isinstance(self.plan, dict) else {}):
            name = source.get("experiment")
            if isinstance(name, str) and name:
                return name
        return self.path.name

    @property
    def seed(self) -> Any:
        if "seed" in self.run:
            return self.run["seed"]
        return self.plan.get("seed") if isinstance(self.plan, dict) else None

    @property
    def verdict(self) -> str:
        v = (self.results or {}).get("verdict")
        return v if isinstance(v, str) else NOT_JUDGED

    @property
    def checks(self) -> list[dict]:
        checks = (self.results or {}).get("checks")
        return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []

    @property
    def record_problems(self) -> list[str]:
        """What the checkers found missing or damaged in the record (results.json record_problems)."""
        probs = (self.results or {}).get("record_problems")
        if not isinstance(probs, list):
            return []
        return [str(p.get("message") or p) if isinstance(p, dict) else str(p) for p in probs]

    @property
    def plant(self) -> list[str]:
        p = self.run.get("plant")
        if isinstance(p, list):
            return [x if isinstance(x, str) else json.dumps(x) for x in p]
        if not p:
            return []
        return [p if isinstance(p, str) else json.dumps(p, default=str)]  # odd, but never silent

    @property
    def partial(self) -> bool:
        return bool(self.run.get("partial"))

    @property
    def outcome(self) -> str | None:
        o = self.run.get("outcome")
        return o if isinstance(o, str) else None

    @property
    def harness_problem(self) -> str | None:
        """Why the harness could not judge this run, or None: an error/interrupted outcome, or no
        readable results.json."""
        if self.outcome in ("error", "interrupted"):
            reason = self.run.get("error") or self.run.get("partial_reason") or "no reason recorded"
            return f"run {self.outcome}: {reason}"
        if self.outcome == "running":  # run.json was never rewritten at the end
            return ("the run never finished (run.json still says outcome running: the harness was killed "
                    "or is still running)")
        if self.results is None:
            return "results.json is missing or unreadable: the run was not judged"
        if not self.checks:
            return "results.json holds no checks: nothing was judged"
        return None

    @property
    def duration_s(self) -> float | None:
        d = self.run.get("duration_s")
        if isinstance(d, (int, float)):
            return float(d)
        s, e = self.run.get("started"), self.run.get("ended")
        if isinstance(s, (int, float)) and isinstance(e, (int, float)):
            return float(e) - float(s)
        return None

    def t0(self) -> float:
        """The time origin of plots and report times: where the cluster came up and the run proper
        began, i.e. the first run.json phase start; else the first history or status record; else
        run.json `started`; else the first timestamp seen. Not the command's start: on a first run
        most of the time before the cluster is up is the image build, which no plot has data for."""
        starts = [float(p["start"]) for p in self.run.get("phases") or []
                  if isinstance(p, dict) and is_num(p.get("start"))]
        if starts:
            return min(starts)
        cands = [op.invoke_ts for op in self.ops[:1] if op.invoke_ts is not None]
        cands += [float(r["ts"]) for r in self.status[:1] if is_num(r.get("ts"))]
        if cands:
            return min(cands)
        s = self.run.get("started")
        if is_num(s):
            return float(s)
        cands = [f["ts"] for f in self.faults[:1] if is_num(f.get("ts"))]
        cands += [evs[0]["ts"] for evs in self.journals.values() if evs and is_num(evs[0].get("ts"))]
        return min(cands) if cands else 0.0

    def t_end(self) -> float:
        """The end of plots: the latest of run.json `ended` and the last timestamps recorded."""
        ts = [float(e) for e in (self.run.get("ended"),) if is_num(e)]
        ts += [op.complete_ts or op.invoke_ts for op in self.ops[-200:] if (op.complete_ts or op.invoke_ts)]
        ts += [f["ts"] for f in self.faults if is_num(f.get("ts"))]
        ts += [evs[-1]["ts"] for evs in self.journals.values() if evs and is_num(evs[-1].get("ts"))]
        return max(ts) if ts else self.t0() + 1.0

    def node_roles(self) -> dict[str, str]:
        """node -> "manager" | "worker" | "node": run.json nodes, else journals (Raft events = manager)."""
        nodes = self.run.get("nodes")
        out: dict[str, str] = {}
        if isinstance(nodes, dict):
            for n, info in nodes.items():
                role = info.get("role") if isinstance(info, dict) else info
                out[str(n)] = role if role in ("manager", "worker") else "node"
        raft = {"term", "vote", "role", "append", "commit", "apply"}
        for n, evs in self.journals.items():
            if n not in out:
                out[n] = "manager" if any(e.get("type") in raft for e in evs) else "worker"
        for s in self.status:
            n = s.get("node")
            if isinstance(n, str) and n not in out:
                st = s.get("status")
                out[n] = "manager" if isinstance(st, dict) and "term" in st else "node"
        return dict(sorted(out.items(), key=lambda kv: ({"manager": 0, "worker": 1}.get(kv[1], 2), kv[0])))


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _read_text(path: Path, notes: list[str], limit: int = MAX_TEXT_BYTES) -> str | None:
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        notes.append(f"{path.name}: unreadable ({exc.strerror})")
        return None
    text = data[:limit].decode("utf-8", errors="replace")
    if len(data) > limit:
        notes.append(f"{path.name}: {len(data)} bytes, shown truncated to {limit}")
        text += "\n… (truncated)"
    return text


def _read_json(path: Path, notes: list[str], want: type | None = None) -> Any:
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        notes.append(f"{path.name}: unreadable ({exc.strerror})")
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{path.name}: damaged, not JSON ({exc})")
        return None
    if want is not None and not isinstance(obj, want):
        notes.append(f"{path.name}: expected a JSON {want.__name__}, got {type(obj).__name__}; ignored")
        return None
    return obj


def _read_jsonl(path: Path, notes: list[str], label: str) -> list[dict]:
    """Objects of a JSON-lines file; lines that are not JSON objects are skipped with one note."""
    out: list[dict] = []
    bad: list[int] = []
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    bad.append(lineno)
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
                else:
                    bad.append(lineno)
    except OSError as exc:
        notes.append(f"{label}: unreadable ({exc.strerror})")
        return out
    if bad:
        notes.append(f"{label}: {len(bad)} damaged line(s) skipped (first: line {bad[0]})")
    return out


def _parse_lines(lines: list[str]) -> list:
    """JSON values of non-blank lines, fast path: one decode of the whole file as a JSON array
    (a per-line decode costs about twice as much on 100,000-operation histories)."""
    try:
        return json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        return [None] * len(lines)  # some line is damaged: the caller decodes line by line


_INVOKE_INDEX = operator.itemgetter(6)  # ClientOp.invoke_index


def _pair(events: list[dict], notes: list[str]) -> list[ClientOp]:
    """Pair invocations with completions by process (events carry an int `index` and a float or None
    `ts`, as `_read_history` leaves them), Jepsen's rule as in `chaos.history.pair_ops` (an invoke
    never completed is info), but tolerant: where that function raises on a broken
    history, this keeps going and notes it (an invoke while one is pending closes the earlier one
    as info; a completion with nothing pending is dropped), so one bad line costs one point."""
    pending: dict[Any, dict] = {}
    ops: list[ClientOp] = []
    problems: list[str] = []
    for ev in events:
        proc = ev["process"]
        if not isinstance(proc, (int, str)):
            proc = json.dumps(proc, sort_keys=True, default=str)  # hashable, still one per process
        if ev["type"] == "invoke":
            prev = pending.get(proc)
            if prev is not None:
                problems.append(f"#{ev['index']}: process {proc} invoked while #{prev['index']} was pending")
                ops.append(ClientOp("info", prev["ts"], None, None, proc, prev["f"], prev["index"]))
            pending[proc] = ev
            continue
        inv = pending.pop(proc, None)
        if inv is None:
            problems.append(f"#{ev['index']}: {ev['type']} from process {proc} with no pending invoke")
            continue
        ops.append(ClientOp(ev["type"], inv["ts"], ev["ts"], ev.get("error"), proc, inv["f"], inv["index"]))
    for inv in pending.values():
        ops.append(ClientOp("info", inv["ts"], None, None, inv["process"], inv["f"], inv["index"]))
    if problems:
        notes.append(f"history.jsonl: {len(problems)} operation(s) not paired as the contract says "
                     f"(first: {problems[0]})")
    ops.sort(key=_INVOKE_INDEX)
    return ops


def _read_history(path: Path, notes: list[str], want_index_ts: bool) -> tuple[list[ClientOp], dict[int, float]]:
    if not path.exists():
        notes.append("history.jsonl: missing (no client operations to show)")
        return [], {}
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            numbered = [(n, line) for n, line in enumerate(fh, 1) if line.strip()]
    except OSError as exc:
        notes.append(f"history.jsonl: unreadable ({exc.strerror})")
        return [], {}
    values = _parse_lines([line for _, line in numbered])
    events: list[dict] = []
    bad: list[str] = []
    position = 0
    for (lineno, line), obj in zip(numbered, values):
        try:
            if obj is None:
                obj = json.loads(line)
            ev = hist.validate_event(obj, f"history.jsonl:{lineno}")
        except json.JSONDecodeError:
            bad.append(f"line {lineno}: not JSON")
            continue
        except hist.HistoryError as exc:
            bad.append(str(exc))
            continue
        if type(ev.get("index")) is not int:  # noqa: E721 -- bool is no index either
            ev["index"] = position
        t = ev.get("ts")
        if type(t) is not float and not (type(t) is int):  # noqa: E721 -- normalised once, read as is later
            ev["ts"] = float(t) if is_num(t) else None
        position += 1
        events.append(ev)
    if bad:
        notes.append(f"history.jsonl: {len(bad)} damaged line(s) skipped (first: {bad[0]})")
    index_ts = {ev["index"]: ev["ts"] for ev in events if ev["ts"] is not None} if want_index_ts else {}
    ops = _pair(events, notes)
    return ops, index_ts


# Journal events a report draws; the rest (append, commit, apply: most of a journal) is skipped by a
# cheap text match before JSON decoding, which keeps million-line journals fast to read.
DRAWN_EVENTS = ("boot", "term", "role", "member")
_DRAWN = re.compile(r'"type"\s*:\s*"(?:' + "|".join(DRAWN_EVENTS) + r')"')


def _lines_not_ending_an_object(text: str) -> int:
    """Non-blank lines that do not end with "}" (truncated or garbage), counted with str.count
    (a regex over a 50 MB journal costs seconds)."""
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    blank = text.count("\n\n") + (1 if text.startswith("\n") else 0)
    ended = text.count("}\n") + text.count("}\r\n") + (1 if text.rstrip("\r").endswith("}") and not text.endswith("\n") else 0)
    return max(0, lines - blank - ended)


def _read_journals(d: Path, notes: list[str]) -> dict[str, list[dict]]:
    """node -> the DRAWN_EVENTS of its journal (events/<node>.jsonl), in seq order. Lines of other
    types are found by a text match and never decoded (a journal is mostly append/commit/apply)."""
    out: dict[str, list[dict]] = {}
    if not d.is_dir():
        return out
    for p in sorted(d.glob("*.jsonl")):
        label = f"events/{p.name}"
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            notes.append(f"{label}: unreadable ({exc.strerror})")
            out[p.stem] = []
            continue
        evs: list[dict] = []
        bad = _lines_not_ending_an_object(text)
        last_start = -1
        for m in _DRAWN.finditer(text):
            start = text.rfind("\n", 0, m.start()) + 1
            if start == last_start:
                continue
            last_start = start
            end = text.find("\n", m.end())
            line = text[start:] if end < 0 else text[start:end]
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                if line.rstrip().endswith("}"):
                    bad += 1  # else already counted
                continue
            if isinstance(obj, dict) and obj.get("type") in DRAWN_EVENTS:
                obj.setdefault("node", p.stem)
                evs.append(obj)
        if bad:
            notes.append(f"{label}: {bad} damaged line(s) skipped")
        evs.sort(key=lambda e: e.get("seq", 0) if is_num(e.get("seq")) else 0)
        out[p.stem] = evs
    return out


RUN_FILES = {"run.json", "results.json", "plan.json", "history.jsonl", "events", "final"}


def _check_dir(path: Path) -> Path:
    """The directory itself must be usable (the same rules and messages as the checkers' `RunDir`,
    which however also refuses a damaged run.json: a report shows the rest, with a note)."""
    if not path.exists():
        raise RunDirError(f"run directory {path} does not exist",
                          hint="pass the directory a `chaos run` wrote (it holds run.json)")
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory")
    try:
        names = {p.name for p in path.iterdir()}
    except OSError as exc:
        raise RunDirError(f"cannot read run directory {path}: {exc.strerror}") from None
    if not names & RUN_FILES:
        raise RunDirError(f"{path} does not look like a run directory (none of {', '.join(sorted(RUN_FILES))})")
    return path


def load(run_dir: str | Path, *, timeline: bool = True) -> RunView:
    """Read everything a report shows. `timeline=False` reads only run.json, plan.json,
    experiment.yaml and results.json (what JUnit and the console need), not the history, faults,
    status polls or journals. Raises RunDirError only for a missing or unreadable directory."""
    path = _check_dir(Path(run_dir))
    v = RunView(path=path)
    notes = v.notes
    run = _read_json(path / "run.json", notes, dict)
    if run is None and not (path / "run.json").exists():
        notes.append("run.json: missing (no seed, phases or configuration to show)")
    v.run = run or {}
    v.plan_text = _read_text(path / "plan.json", notes)
    v.plan = _read_json(path / "plan.json", notes)
    v.experiment_text = _read_text(path / "experiment.yaml", notes)
    results = _read_json(path / "results.json", notes, dict)
    if results is not None and not isinstance(results.get("checks"), list):
        notes.append("results.json: no list of checks; ignored")
        results = None
    if results is None and not (path / "results.json").exists():
        notes.append("results.json: missing (the run was not judged)")
    v.results = results
    cex = any(c.get("checker") == "linearizable" and c.get("verdict") == "INVALID" for c in v.checks)
    if not timeline:
        return v
    gc_was_enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of small objects, no cycles: collections would only cost
    try:
        v.ops, v.index_ts = _read_history(path / "history.jsonl", notes, want_index_ts=cex)
    finally:
        if gc_was_enabled:
            gc.enable()
    if (path / "faults.jsonl").exists():
        v.faults = [f for f in _read_jsonl(path / "faults.jsonl", notes, "faults.jsonl") if is_num(f.get("ts"))]
    if (path / "status.jsonl").exists():
        v.status = [s for s in _read_jsonl(path / "status.jsonl", notes, "status.jsonl") if is_num(s.get("ts"))]
    v.journals = _read_journals(path / "events", notes)
    return v
