"""Loading an experiment file: YAML with positions -> `Experiment`, every problem reported at once.

Owns: the safe YAML reading (yaml's safe composer; no tags, bounded size, depth and node count, so an
alias bomb or deep nesting is an error, not a hang), the map from YAML path to line:column, the
conversion of pydantic's errors into `Problem`s (file:line:col, YAML path, message, hint: for an
unknown key the nearest valid one), and the rules that need the whole file (node names exist, a
target asks for no more nodes than there are, `after` names an earlier fault, checks and
expectations are known). Raises `ExperimentError` (exit 2) with every problem; returns the
experiment and its warnings otherwise.
Must not import: click, docker, requests, chaos.env.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from chaos.errors import UsageError
from chaos.experiment import schema as S

MAX_BYTES = 1_000_000
MAX_DEPTH = 40
MAX_NODES = 100_000


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    col: int | None
    path: str
    message: str
    hint: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}:{self.col}" if self.line else "")
        text = f"{where}: {self.severity}: {self.path + ': ' if self.path else ''}{self.message}"
        return text + (f" (hint: {self.hint})" if self.hint else "")

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col, "path": self.path,
                "message": self.message, "hint": self.hint, "severity": self.severity}


class ExperimentError(UsageError):
    """An experiment file that cannot be used; `problems` lists every error (and the warnings)."""

    def __init__(self, problems: list[Problem]):
        # a problem of the whole file (empty, too big, nested too deep) is located at its start
        problems = [p if p.line and p.col else replace(p, line=p.line or 1, col=p.col or 1) for p in problems]
        errors = [p for p in problems if p.severity == "error"]
        first = str(errors[0]) if errors else "invalid experiment"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more, hint="`chaos validate FILE` lists every problem")
        self.problems = problems


@dataclass(frozen=True)
class Loaded:
    experiment: S.Experiment
    path: Path
    text: str
    sha256: str
    warnings: tuple[Problem, ...]


# -- YAML with positions ------------------------------------------------------------------------


class _TooBig(Exception):
    pass


def _to_python(root: yaml.Node, loader: yaml.SafeLoader) -> tuple[Any, dict[tuple, tuple[int, int]],
                                                                    list[tuple[tuple, str, tuple[int, int]]]]:
    """Build plain Python values from a composed node tree; record each path's (line, col), and
    duplicate keys. Bounded in depth and in nodes visited (aliases are re-visited, so a bomb hits
    the bound)."""
    marks: dict[tuple, tuple[int, int]] = {}
    dups: list[tuple[tuple, str, tuple[int, int]]] = []
    count = [0]

    def pos(node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def walk(node, path: tuple, depth: int):
        count[0] += 1
        if count[0] > MAX_NODES:
            raise _TooBig(f"more than {MAX_NODES} YAML nodes (an alias bomb?)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
        marks.setdefault(path, pos(node))
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    merged = walk(vnode, path, depth + 1)
                    for m in merged if isinstance(merged, list) else [merged]:
                        if isinstance(m, dict):
                            for k, v in m.items():
                                out.setdefault(k, v)
                    continue
                key = walk(knode, path + ("<key>",), depth + 1)
                if isinstance(key, (list, dict)):
                    raise _TooBig(f"line {pos(knode)[0]}: a mapping key must be a scalar")
                if key in out:
                    dups.append((path + (key,), str(key), pos(knode)))
                out[key] = walk(vnode, path + (key,), depth + 1)
                marks[path + (key,)] = pos(knode)  # a key's position is where the key is written
            return out
        if isinstance(node, yaml.SequenceNode):
            return [walk(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    return walk(root, (), 0), marks, dups


def read_yaml(text: str, file: str) -> tuple[Any, dict, list[Problem]]:
    """Parse YAML text; returns (data, marks, problems). Problems are YAML-level errors."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader checks the characters here already
        root = loader.get_single_node()
        if root is None:
            return None, {}, [Problem(file, None, None, "", "the file is empty", "start with `version: 1`")]
        data, marks, dups = _to_python(root, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return None, {}, [Problem(file, mark.line + 1 if mark else None, mark.column + 1 if mark else None, "",
                                  f"not valid YAML: {msg}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(file, None, None, "", f"not valid YAML: {exc}")]
    except _TooBig as exc:
        return None, {}, [Problem(file, None, None, "", str(exc))]
    except RecursionError:
        return None, {}, [Problem(file, None, None, "", f"nested too deeply (more than {MAX_DEPTH} levels)")]
    except (ValueError, OverflowError) as exc:  # e.g. an integer with too many digits
        return None, {}, [Problem(file, None, None, "", f"a value cannot be read: {exc}")]
    finally:
        if loader is not None:
            loader.dispose()
    problems = [Problem(file, ln, col, fmt_path(path), f"duplicate key {key!r} (the later one would win)")
                for path, key, (ln, col) in dups]
    return data, marks, problems


def fmt_path(path: tuple) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _locate(marks: dict, data: Any, loc: tuple) -> tuple[tuple, tuple[int, int] | None]:
    """Map a pydantic error location to the YAML path (dropping union tags) and its position."""
    path: tuple = ()
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path += (part,)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path += (part,)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part.endswith("_") and part[:-1] in node:
            path += (part[:-1],)
            node = node[part[:-1]]
        # else: a union tag or a missing key: stay on the parent
    while path and path not in marks:
        path = path[:-1]
    return path, marks.get(path)


def _all_keys() -> dict[str, set[str]]:
    """Every key any model accepts (by alias), for 'did you mean' hints."""
    out: dict[str, set[str]] = {}
    seen: set[type] = set()

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for fname, f in model.model_fields.items():
            out.setdefault(model.__name__, set()).add(f.alias or fname)
            for sub in _models_in(f.annotation):
                visit(sub)

    visit(S.Experiment)
    return out


def _models_in(annotation) -> list[type[BaseModel]]:
    import typing
    found = []
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            found.append(a)
            continue
        stack.extend(typing.get_args(a))
    return found


_KEYS = None


def _nearest(key: str, parent_keys: list[str] | None) -> str | None:
    global _KEYS
    if _KEYS is None:
        _KEYS = sorted({k for ks in _all_keys().values() for k in ks})
    pool = parent_keys or _KEYS
    hit = difflib.get_close_matches(str(key), pool, n=1, cutoff=0.6)
    if not hit and parent_keys:
        hit = difflib.get_close_matches(str(key), _KEYS, n=1, cutoff=0.75)
    return hit[0] if hit else None


def _model_at(loc: tuple, data: Any) -> type[BaseModel] | None:
    """The model that owns the mapping at `loc` (best effort: follows fields, list items and the
    fault kind)."""
    cands: list[type[BaseModel]] = [S.Experiment]
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            model = _pick(cands, node)
            if model is None:
                return None
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            cands = _models_in(field.annotation)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return _pick(cands, node)


def _pick(cands: list[type[BaseModel]], node: Any) -> type[BaseModel] | None:
    import typing
    if not isinstance(node, dict) or not cands:
        return None
    if len(cands) == 1:
        return cands[0]
    if "random" in node and S.RandomBlock in cands:
        return S.RandomBlock
    kind = node.get("fault")
    for c in cands:
        f = c.model_fields.get("fault")
        if f is not None and kind in typing.get_args(f.annotation):
            return c
    return None


def _pydantic_problems(exc: ValidationError, data: Any, marks: dict, file: str) -> list[Problem]:
    problems = []
    seen = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc") or ())
        path, pos = _locate(marks, data, loc)
        etype = err.get("type", "")
        hint = None
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = _model_at(path[:-1] if path and path[-1] == key else path, data)
            parent_keys = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else None
            near = _nearest(str(key), parent_keys)
            msg = f"unknown key {key!r}"
            hint = f"did you mean {near!r}?" if near else (
                "valid keys here: " + ", ".join(parent_keys) if parent_keys else None)
        elif etype == "missing":
            msg = f"missing required key {loc[-1]!r}"
        elif etype == "union_tag_invalid" or etype == "union_tag_not_found":
            ctx = err.get("ctx") or {}
            tag = ctx.get("tag")
            msg = (f"unknown fault kind {tag!r}" if tag else "a schedule item needs `fault: KIND` or `random:`")
            near = difflib.get_close_matches(str(tag), S.FAULT_KINDS, n=1) if tag else []
            hint = f"did you mean {near[0]!r}?" if near else "kinds: " + ", ".join(S.FAULT_KINDS)
        else:
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
        key = (path, msg)
        if key in seen:
            continue
        seen.add(key)
        ln, col = pos if pos else (None, None)
        problems.append(Problem(file, ln, col, fmt_path(path), msg, hint))
    # Union errors are reported once per member; keep the most specific (deepest path) per item.
    return _prune_union_noise(problems)


def _prune_union_noise(problems: list[Problem]) -> list[Problem]:
    """A value that is none of a union's types yields one error per member; keep them, but drop the
    `Input should be a valid string` style messages when a deeper error exists at the same path."""
    by_path: dict[str, list[Problem]] = {}
    for p in problems:
        by_path.setdefault(p.path, []).append(p)
    out = []
    for p in problems:
        generic = p.message.startswith("Input should be a valid") or p.message.startswith("Input should be")
        deeper = any(q.path.startswith(p.path) and q.path != p.path for q in problems)
        if generic and (deeper or len(by_path[p.path]) > 1) and not all(
                q.message.startswith("Input should be") for q in by_path[p.path]):
            continue
        out.append(p)
    # Several "Input should be ..." at one path: merge into one line.
    merged, done = [], set()
    for p in out:
        same = [q for q in out if q.path == p.path and q.message.startswith("Input should be")]
        if p.message.startswith("Input should be") and len(same) > 1:
            if p.path in done:
                continue
            done.add(p.path)
            merged.append(Problem(p.file, p.line, p.col, p.path, "expected " + " or ".join(
                sorted({q.message.removeprefix("Input should be ").removeprefix("a valid ") for q in same}))))
        else:
            merged.append(p)
    return merged


# -- whole-file rules ---------------------------------------------------------------------------


def _semantic(exp: S.Experiment, data: dict, marks: dict, file: str) -> list[Problem]:
    from chaos.checkers import core as checks_core
    from chaos.checkers.expectations import PARAMETERIZED, SIMPLE

    out: list[Problem] = []

    def at(path: tuple, msg: str, hint: str | None = None, severity: str = "error") -> None:
        p, pos = _locate(marks, data, path)
        ln, col = pos if pos else (None, None)
        out.append(Problem(file, ln, col, fmt_path(p), msg, hint, severity))

    c = exp.cluster
    nodes = set(c.node_ids)
    if c.managers % 2 == 0:
        at(("cluster", "managers"), f"{c.managers} managers tolerate {(c.managers - 1) // 2} failure(s), as "
           f"{c.managers - 1} would, and need a larger quorum", "use an odd number", severity="warning")

    def check_target(target, path: tuple) -> None:
        for n in S.target_nodes_named(target):
            if n not in nodes:
                at(path, f"node {n!r} does not exist (this cluster has {', '.join(c.node_ids)})")
        want = S.fixed_count(target)
        if want is not None and want > len(nodes):
            at(path, f"asks for {want} nodes but the cluster has {len(nodes)}")
        items = target if isinstance(target, list) else [target]
        for i, t in enumerate(items):
            if isinstance(t, S.TargetSpec) and t.of is not None:
                earlier = [n for n in names if n not in current]
                if t.of not in earlier:
                    at(path + ((i,) if isinstance(target, list) else ()) + ("of",),
                       f"`of: {t.of}` names no earlier fault",
                       "earlier names: " + (", ".join(earlier) or "none"))
                continue
            if isinstance(t, S.TargetSpec) and isinstance(t.count, int):
                pool = {"leader": 1, "followers": c.managers - 1, "managers": c.managers,
                        "workers": c.workers, "all": len(nodes)}[t.role] if not t.nodes else len(t.nodes)
                if t.count > pool:
                    at(path + ((i,) if isinstance(target, list) else ()) + ("count",),
                       f"count {t.count} is more than the {pool} {t.nodes and 'listed nodes' or t.role} there are")
            if isinstance(t, str) and t == "workers" and c.workers == 0:
                at(path, "targets workers, but the cluster has none")

    for i, bug in enumerate(c.plant):
        known = plant_registry()
        if bug not in known:
            near = difflib.get_close_matches(bug, sorted(known), n=1)
            at(("cluster", "plant", i), f"unknown planted bug {bug!r}",
               f"did you mean {near[0]!r}?" if near else "known: " + (", ".join(sorted(known)) or "none"))
    names: list[str] = []
    random_names: list[str] = []
    current: list[str] = []  # the schedule item being checked: `of` may not name itself
    check_target(exp.workload.nodes, ("workload", "nodes"))
    services = set()
    for i, svc in enumerate(exp.workload.services):
        if svc.create:
            services.add(svc.create)
        elif svc.scale not in services:
            at(("workload", "services", i, "scale"), f"service {svc.scale!r} is not created earlier in the list")
    for i, item in enumerate(exp.schedule):
        base = ("schedule", i)
        current[:] = []
        if isinstance(item, S.RandomBlock):
            for j, t in enumerate(item.random.targets):
                check_target(t, base + ("random", "targets", j))
                if "wipe" in item.random.kinds:
                    for why in _wipe_target_problems(t, set(c.manager_ids)):
                        at(base + ("random", "targets", j), why + " (this block draws `wipe`)", WIPE_HINT)
            if item.random.name:
                names.append(item.random.name)
            random_names.append(item.random.name or f"r{i + 1}")  # its faults are NAME-1, NAME-2, ...
            continue
        name = item.name or f"f{i + 1}"
        if name in names:
            at(base + ("name",), f"fault name {name!r} is used twice")
        if item.after is not None and item.after != "previous" and item.after not in names:
            at(base + ("after",), f"`after: {item.after}` names no earlier fault",
               "earlier names: " + (", ".join(names) or "none") + "; or `previous`")
        if item.after == "previous" and i == 0:
            at(base + ("after",), "`after: previous` on the first schedule item")
        names.append(name)
        current[:] = [name]
        for key in ("target", "isolate", "among", "bridge"):
            t = getattr(item, key, None)
            if t is not None:
                check_target(t, base + (key,))
        if isinstance(item, S.PartitionFault):
            if item.groups is not None:
                flat = [n for g in item.groups for n in g]
                for n in flat:
                    if n not in nodes:
                        at(base + ("groups",), f"node {n!r} does not exist (this cluster has {', '.join(c.node_ids)})")
                if len(set(flat)) != len(flat):
                    at(base + ("groups",), "a node is in more than one group")
                if isinstance(item.rest, int) and not 0 <= item.rest < len(item.groups):
                    at(base + ("rest",), f"rest: {item.rest} names no group (there are {len(item.groups)})")
            if item.one_way is not None:
                check_target(item.one_way.from_, base + ("one-way", "from"))
                check_target(item.one_way.to, base + ("one-way", "to"))
            if item.shape in ("majorities-ring", "bridge") and len(nodes) < 3:
                at(base + ("shape",), f"{item.shape} needs at least 3 nodes")
        if isinstance(item, S.DiskFullFault) and c.backend == "swarm":
            at(base + ("fault",), "disk-full needs the local backend (its size-capped data volumes are tmpfs "
               "volumes held by one container on this engine)", "use `backend: local`")
        if isinstance(item, S.WipeFault):
            for why in _wipe_target_problems(item.target, set(c.manager_ids)):
                at(base + ("target",), why, WIPE_HINT)
        if isinstance(item, (S.KillFault, S.StopFault, S.PauseFault, S.PowerLossFault, S.WipeFault)) \
                and item.until is not None:
            if item.until.condition == "target-lags":
                at(base + ("until",), "target-lags cannot hold for a node that is down; use it with link faults")
        if item.until is not None and item.until.condition == "worker-down":
            t = (getattr(item, "target", None) or getattr(item, "isolate", None)
                 or getattr(item, "one_way", None) or getattr(item, "groups", None))
            if t is None:
                at(base + ("until",), "worker-down needs the fault to target workers")
    # checks
    if exp.checks is not None:
        for i, chk in enumerate(exp.checks):
            spec = check_to_spec(chk)
            if spec is None:
                at(("checks", i), "a check is a checker name or {NAME: {param: value}} with one key",
                   "known checkers: " + ", ".join(sorted(checks_core.registry())))
                continue
            try:
                checks_core.parse_spec(spec, "check")
            except UsageError as exc:
                msg = exc.message.removeprefix("check: ")
                near = None
                reg = checks_core.registry()
                if "unknown checker" in msg:
                    near = difflib.get_close_matches(spec["checker"], sorted(reg), n=1)
                elif "has no parameter" in msg and spec["checker"] in reg:
                    bad = next((k for k in spec["params"] if k not in reg[spec["checker"]].params), "")
                    near = difflib.get_close_matches(bad, sorted(reg[spec["checker"]].params), n=1)
                at(("checks", i), msg, f"did you mean {near[0]!r}?" if near else exc.hint)
    phases = {"steady", "faults", "recovery"} | set(names)
    for i, e in enumerate(exp.expect):
        text = expect_to_str(e)
        if text is None:
            at(("expect", i), "an expectation is NAME, NAME:ARG or {NAME: ARG} with one key")
            continue
        name, sep, arg = text.partition(":")
        if name in SIMPLE and not sep:
            pass
        elif name in PARAMETERIZED and arg:
            if name in ("ops-failed-in-phase", "ops-ok-in-phase") and arg not in phases:
                at(("expect", i), f"no phase or fault named {arg!r}", "phases: " + ", ".join(sorted(phases)))
            if name == "until-met" and arg not in names:
                at(("expect", i), f"no fault named {arg!r}", "faults: " + ", ".join(sorted(names)))
            if name == "fault-effective" and arg not in set(names) | set(random_names):
                at(("expect", i), f"no fault named {arg!r}",
                   "faults: " + (", ".join(sorted(set(names) | set(random_names))) or "none"))
            if name == "fault-applied" and arg not in S.FAULT_KINDS:
                at(("expect", i), f"no fault kind {arg!r}", "kinds: " + ", ".join(S.FAULT_KINDS))
        else:
            near = difflib.get_close_matches(name, SIMPLE + PARAMETERIZED, n=1)
            at(("expect", i), f"unknown expectation {text!r}",
               f"did you mean {near[0]!r}?" if near else "known: " + ", ".join(SIMPLE + PARAMETERIZED))
    return out


WIPE_HINT = ("target workers only: `workers`, `{role: workers, count: 1}`, a worker id such as w1; a "
             "wiped manager would rejoin Raft as a voter with no log or vote, which needs membership "
             "changes (not supported)")


def _wipe_target_problems(target, managers: set[str]) -> list[str]:
    """Why a `wipe` target may name a manager (empty: it names workers only)."""
    out = []
    for t in (target if isinstance(target, list) else [target]):
        if isinstance(t, str):
            if t in ("leader", "followers", "managers", "all"):
                out.append(f"wipe cannot target `{t}`: it names managers")
            elif t in managers:
                out.append(f"wipe cannot target {t}: it is a manager")
        elif isinstance(t, S.TargetSpec):
            if t.of is not None:
                out.append(f"wipe cannot target `of: {t.of}`: that fault's nodes may be managers")
            elif t.nodes:
                bad = [n for n in t.nodes if n in managers]
                if bad:
                    out.append(f"wipe cannot target {', '.join(bad)}: manager(s)")
            elif t.role != "workers":
                out.append(f"wipe cannot target role `{t.role}`: it names managers")
    return out


def plant_registry() -> dict[str, str]:
    """Planted bug name -> description (node_image/swarmnode/plant.py)."""
    try:
        from swarmnode.plant import PLANTS
    except ImportError:
        return {}
    return dict(PLANTS)


def check_to_spec(item: Any) -> dict | None:
    """A check item of the file -> a plan.json check spec {"checker", "params"}."""
    if isinstance(item, str):
        return {"checker": item, "params": {}}
    if isinstance(item, dict) and len(item) == 1:
        (name, params), = item.items()
        if params is None:
            params = {}
        if isinstance(name, str) and isinstance(params, dict):
            return {"checker": name, "params": dict(params)}
    if isinstance(item, dict) and "checker" in item:
        return dict(item)
    return None


def expect_to_str(item: Any) -> str | None:
    if isinstance(item, str):
        return item.replace(": ", ":").strip()
    if isinstance(item, dict) and len(item) == 1:
        (k, v), = item.items()
        if isinstance(k, str) and isinstance(v, (str, int)):
            return f"{k}:{v}"
    return None


# -- entry points -------------------------------------------------------------------------------


def load_text(text: str, file: str = "<text>") -> tuple[S.Experiment | None, list[Problem]]:
    """(experiment or None, problems). Never raises for bad input."""
    data, marks, problems = read_yaml(text, file)
    if problems and data is None:
        return None, problems
    if not isinstance(data, dict):
        return None, problems + [Problem(file, 1, 1, "", "an experiment file is a mapping of keys "
                                                          "(version, name, cluster, workload, schedule, ...)")]
    if data.get("version") not in (None, 1) and data.get("version") != S.SCHEMA_VERSION:
        ln, col = marks.get(("version",), (None, None))
        return None, problems + [Problem(file, ln, col, "version",
                                         f"unsupported schema version {data.get('version')!r}",
                                         "this chaos reads version 1")]
    try:
        exp = S.Experiment.model_validate(data)
    except ValidationError as exc:
        return None, problems + _pydantic_problems(exc, data, marks, file)
    except RecursionError:
        return None, problems + [Problem(file, None, None, "", "nested too deeply")]
    problems += _semantic(exp, data, marks, file)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return exp, problems


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of a byte offset."""
    return raw.count(b"\n", 0, offset) + 1, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def load_file(path: str | Path) -> Loaded:
    """Read and validate a file; raise ExperimentError with every problem, or UsageError when unreadable."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_BYTES else None
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file", hint="experiment files live in experiments/") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory, not an experiment file") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror}") from None
    if raw is None:
        raise ExperimentError([Problem(name, None, None, "", f"larger than {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise ExperimentError([Problem(name, line, col, "", f"not UTF-8 (byte {exc.start})")]) from None
    if "\x00" in text:
        line, col = _line_col(raw, raw.index(b"\x00"))
        raise ExperimentError([Problem(name, line, col, "", "contains NUL bytes (binary file?)")])
    exp, problems = load_text(text, name)
    if exp is None:
        raise ExperimentError(problems)
    return Loaded(exp, path, text, hashlib.sha256(raw).hexdigest(), tuple(problems))
