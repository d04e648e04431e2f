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
import json
import re
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
    """A file too large or too deep to read, or a value that cannot be read; `at` is the (line,
    column) of the node when it has one."""

    def __init__(self, message: str, at: tuple[int, int] | None = None):
        super().__init__(message)
        self.at = at


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
            explicit: set = set()  # keys written here (a key merged in by `<<` may be overridden)
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
                    raise _TooBig("a mapping key must be a scalar (a name), not a list or mapping", pos(knode))
                if key in explicit:
                    dups.append((path + (key,), str(key), pos(knode)))
                explicit.add(key)
                out[key] = walk(vnode, path + (key,), depth + 1)
                marks[path + (key,)] = pos(knode)  # a key's position is where the key is written
            return out
        if isinstance(node, yaml.SequenceNode):
            return [walk(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        try:
            return loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # e.g. an integer with too many digits
            why = "a number too large to read" if "digits" in str(exc) else str(exc)
            raise _TooBig(f"a value cannot be read: {why}", pos(node)) from None

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
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: locate it
        line, col = _text_line_col(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        what = f"the character #x{code:04x}" if isinstance(code, int) else "a character"
        return None, {}, [Problem(file, line, col, "", f"not valid YAML: {what} is not allowed in YAML text",
                                  "remove it; inside double quotes it can be written as an escape"
                                  + (f" (\"\\x{code:02x}\")" if isinstance(code, int) and code < 256 else ""))]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        return None, {}, [Problem(file, mark.line + 1 if mark else None, mark.column + 1 if mark else None, "",
                                  f"not valid YAML: {exc}")]
    except _TooBig as exc:
        return None, {}, [Problem(file, *(exc.at or (None, None)), "", str(exc))]
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


def _text_line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


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


# Letters of other scripts that look like Latin ones (Cyrillic, Greek), and what they look like.
_LOOKALIKES = dict(zip(
    "аеорсухіјѕԁԛԝӏАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdqwlABEKMHOPCTXIJSaBeiKvopTuxABEZHIKMNOPTYX"))


def lookalike_ascii(text: str) -> str | None:
    """`text` with look-alike letters of other scripts replaced by the Latin ones they resemble, when
    it has any (None otherwise)."""
    import unicodedata
    if text.isascii():
        return None
    out = "".join(_LOOKALIKES.get(ch) or unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
                  or ch for ch in text)
    return out if out != text else None


def _lookalike_note(text: str) -> str:
    import unicodedata
    odd = [ch for ch in text if not ch.isascii()]
    return "it contains " + ", ".join(f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"
                                      for ch in dict.fromkeys(odd)) + ", not a plain Latin letter"


def _unknown_key(key: str, parent: type[BaseModel] | None) -> tuple[str, str | None]:
    """Message and hint for a key the model at that place does not take: a look-alike letter said
    so, a key of other fault kinds said which, else the nearest valid key (never the key itself)."""
    parent_keys = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else None
    models = S.fault_models()
    kind = next((k for k, m in models.items() if m is parent), None)
    msg = f"unknown key {key!r}" + (f" for a {kind} fault" if kind else "")
    plain = lookalike_ascii(key)
    if plain is not None:
        msg += f": {_lookalike_note(key)}"
        if plain in (parent_keys or _all_key_names()):
            return msg, f"retype it as {plain!r}"
    name = plain or key
    near = _nearest(name, parent_keys)
    near = None if near == key else near
    if kind is not None:  # a fault: a key (or its nearest) that other kinds take is named with them
        cand = near if near is not None and near not in parent_keys else name
        takers = [k for k, m in models.items() if any((f.alias or n) == cand for n, f in m.model_fields.items())]
        if takers and cand not in parent_keys:
            timing = {f.alias or n for n, f in S.FaultBase.model_fields.items()} | {"fault"}
            own = [k for k in parent_keys if k not in timing]
            return (msg,
                    f"{cand!r} is a key of {', '.join(takers)} faults; {kind} takes "
                    + (", ".join(own) if own else "no keys") + " besides the timing keys")
    return msg, (f"did you mean {near!r}?" if near else
                 "valid keys here: " + ", ".join(parent_keys) if parent_keys else None)


def _all_key_names() -> list[str]:
    global _KEYS
    if _KEYS is None:
        _KEYS = sorted({k for ks in _all_keys().values() for k in ks})
    return _KEYS


def _plain(msg: str) -> str:
    """A pydantic message without the names of our classes ('instance of ClusterConfig')."""
    msg = re.sub(r"a valid dictionary or instance of \w+", "a mapping of keys (key: value)", msg)
    msg = re.sub(r"a valid dictionary or object to extract fields from", "a mapping of keys (key: value)", msg)
    return re.sub(r"\binstance of [A-Z]\w+", "a mapping of keys (key: value)", msg)


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
    if "drawn" in node and S.DrawnBlock in cands:
        return S.DrawnBlock
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
            msg, hint = _unknown_key(str(key), parent)
        elif etype == "missing":
            msg = f"missing required key {loc[-1]!r}"
        elif etype == "union_tag_invalid" or etype == "union_tag_not_found":
            ctx = err.get("ctx") or {}
            tag = ctx.get("tag")
            msg = (f"unknown fault kind {tag!r}" if tag else "a schedule item needs `fault: KIND` or `random:`")
            kinds = list(S.fault_models())
            plain = lookalike_ascii(str(tag)) if tag else None
            if plain is not None:
                msg += f": {_lookalike_note(str(tag))}"
            near = difflib.get_close_matches(plain or str(tag), kinds, n=1) if tag else []
            hint = f"did you mean {near[0]!r}?" if near else "kinds: " + ", ".join(kinds)
        else:
            msg = _plain(err.get("msg", "invalid").removeprefix("Value error, "))
        key = (path, msg)
        if key in seen:
            continue
        seen.add(key)
        ln, col = pos if pos else (None, None)
        problems.append(Problem(file, ln, col, fmt_path(path), msg, hint))
    # Union errors are reported once per member; keep the most specific (deepest path) per item.
    return _prune_union_noise(problems)


def _under(path: str, parent: str) -> bool:
    """Whether YAML path `path` lies strictly inside `parent`."""
    return path.startswith(parent) and path[len(parent):][:1] in (".", "[") if parent else bool(path)


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
        if generic and any(_under(q.path, p.path) and not q.message.startswith("Input should be")
                           for q in problems):
            continue  # the value is the object form, wrong inside: say what is wrong there only
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


@dataclass(frozen=True)
class _Parts:
    """The parts of a file the whole-file rules read: those that are valid on their own (None, or
    None items in `schedule`, where they are not), so a file's rule problems come with its type
    problems, in one pass."""

    cluster: S.ClusterConfig | None
    workload: S.WorkloadConfig | None
    schedule: list
    checks: list | None
    expect: list


def _parts(data: dict) -> _Parts:
    """Validate the top-level parts of a file one by one (after the whole file failed to)."""
    from pydantic import TypeAdapter

    def one(model, value):
        try:
            return model.model_validate(value if value is not None else {})
        except (ValidationError, RecursionError):
            return None

    item = TypeAdapter(S.ScheduleItem)
    schedule = []
    for raw in data.get("schedule") if isinstance(data.get("schedule"), list) else []:
        try:
            schedule.append(item.validate_python(raw))
        except (ValidationError, RecursionError):
            schedule.append(None)
    checks = data.get("checks") if isinstance(data.get("checks"), list) else None
    expect = data.get("expect") if isinstance(data.get("expect"), list) else []
    return _Parts(one(S.ClusterConfig, data.get("cluster")), one(S.WorkloadConfig, data.get("workload")),
                  schedule, checks, expect)


def _semantic(exp: S.Experiment | _Parts, data: dict, marks: dict, file: str) -> list[Problem]:
    from chaos.checkers import core as checks_core
    from chaos.checkers.expectations import PARAMETERIZED, PHASE_EXPECTATIONS, SIMPLE

    out: list[Problem] = []

    def at(path: tuple, msg: str, hint: str | None = None, severity: str = "error") -> None:
        p, pos = _locate(marks, data, path)
        ln, col = pos if pos else (None, None)
        out.append(Problem(file, ln, col, fmt_path(p), msg, hint, severity))

    c = exp.cluster
    nodes = set(c.node_ids) if c is not None else set()
    if c is not None and c.managers % 2 == 0:
        at(("cluster", "managers"), f"{c.managers} managers tolerate {(c.managers - 1) // 2} failure(s), as "
           f"{c.managers - 1} would, and need a larger quorum", "use an odd number", severity="warning")
    if "schedule" not in data and isinstance(exp, S.Experiment):
        # a file cut after its header still validates; say that it runs no fault at all (not said
        # beside type errors: the file does not run anyway)
        at((), "no `schedule`: this experiment injects no fault, so the `recovery` check has nothing to "
           "judge (UNKNOWN)", "add a schedule; for a fault-free baseline write `schedule: []` and leave `recovery` out of `checks`",
           severity="warning")

    def check_target(target, path: tuple) -> None:
        for n in S.target_nodes_named(target) if c is not None else ():
            if n not in nodes:
                at(path, f"node {n!r} does not exist (this cluster has {', '.join(c.node_ids)})")
        want = S.fixed_count(target)
        if want is not None and c is not None and want > len(nodes):
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
            item_path = path + ((i,) if isinstance(target, list) else ())
            if isinstance(t, S.TargetSpec) and t.exclude is not None:
                check_target(t.exclude, item_path + ("exclude",))
            if c is None:
                continue  # the cluster is invalid: its nodes are unknown
            if isinstance(t, S.TargetSpec) and t.exclude is not None:
                left = _candidates_left(t, c)
                if left is not None and left[0] == 0:
                    at(item_path + ("exclude",), f"`exclude` removes every one of the {left[1]}: no node is left")
                elif left is not None and isinstance(t.count, int) and t.count > left[0]:
                    at(item_path + ("count",), f"count {t.count} is more than the {left[0]} {left[1]} "
                       "left after `exclude`")
                    continue
            if isinstance(t, S.TargetSpec) and isinstance(t.count, int):
                pool = {"leader": 1, "followers": c.managers - 1, "managers": c.managers,
                        "workers": c.workers, "all": len(nodes)}[t.role] if not t.nodes else len(t.nodes)
                if t.count > pool:
                    at(item_path + ("count",),
                       f"count {t.count} is more than the {pool} {t.nodes and 'listed nodes' or t.role} there are")
            if isinstance(t, str) and t == "workers" and c.workers == 0:
                at(path, "targets workers, but the cluster has none")

    if c is not None:
        out.extend(_agent_env_problems(c, data, marks, file))
    for i, bug in enumerate(c.plant if c is not None else ()):
        known = plant_registry()
        if bug not in known:
            near = difflib.get_close_matches(bug, sorted(known), n=1)
            at(("cluster", "plant", i), f"unknown planted bug {bug!r}",
               f"did you mean {near[0]!r}?" if near else "known: " + (", ".join(sorted(known)) or "none"))
    names: list[str] = []
    random_names: list[str] = []
    current: list[str] = []  # the schedule item being checked: `of` may not name itself
    with_until: set[str] = set()  # faults that have `until` (or may have: their item is invalid)
    if exp.workload is not None:
        check_target(exp.workload.nodes, ("workload", "nodes"))
    services = set()
    for i, svc in enumerate(exp.workload.services if exp.workload is not None else ()):
        if svc.create:
            services.add(svc.create)
        elif svc.scale not in services:
            at(("workload", "services", i, "scale"), f"service {svc.scale!r} is not created earlier in the list")
    def check_fault(item, base: tuple, name: str) -> None:
        if name in names:
            at(base + ("name",), f"fault name {name!r} is used twice")
        if item.after is not None and item.after != "previous" and item.after not in names:
            at(base + ("after",), f"`after: {item.after}` names no earlier fault",
               "earlier names: " + (", ".join(names) or "none") + "; or `previous`")
        if item.after == "previous" and base == ("schedule", 0):
            at(base + ("after",), "`after: previous` on the first schedule item")
        names.append(name)
        current[:] = [name]
        if item.until is not None:
            with_until.add(name)
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
            most = _most_nodes(item.among, c) if item.shape and c is not None else None
            need = SHAPE_MIN_NODES.get(item.shape or "", 0)
            if most is not None and most < need:
                at(base + ("shape",), f"shape {item.shape} needs at least {need} nodes, but `among` gives "
                   + (f"at most {most}" if most else "none"), "widen `among` (default: all)")
        if isinstance(item, S.DiskFullFault) and c.backend == "swarm":
            at(base + ("fault",), "disk-full needs the local backend (its size-capped data volumes are tmpfs "
               "volumes held by one container on this engine)", "use `backend: local`")
        if isinstance(item, S.WipeFault):
            for why in _wipe_target_problems(item.target, set(c.manager_ids)):
                at(base + ("target",), why, WIPE_HINT)
        if isinstance(item, S.MembershipFault) and item.action in ("add", "replace"):
            if c.backend == "swarm":
                at(base + ("action",), f"membership {item.action} needs the local backend (a node joins under a "
                   "spare id whose link proxies are made at start)", "use `backend: local`")
            if item.action == "replace":
                for t in (item.target if isinstance(item.target, list) else [item.target]):
                    if (isinstance(t, str) and (t in c.worker_ids or t == "workers")) or \
                            (isinstance(t, S.TargetSpec) and t.role == "workers" and not t.nodes):
                        at(base + ("target",), f"replace cannot target {t if isinstance(t, str) else 'workers'}: "
                           "only a manager is replaced", "a worker's disk is emptied with `fault: wipe`")
        if isinstance(item, (S.KillFault, S.StopFault, S.PauseFault, S.PowerLossFault, S.WipeFault)) \
                and item.until is not None:
            if item.until.condition == "target-lags":
                at(base + ("until",), "target-lags cannot hold for a node that is down; use it with link faults")
        if item.until is not None and item.until.condition == "worker-down":
            t = (getattr(item, "target", None) or getattr(item, "isolate", None)
                 or getattr(item, "one_way", None) or getattr(item, "groups", None))
            if t is None:
                at(base + ("until",), "worker-down needs the fault to target workers")

    for i, item in enumerate(exp.schedule):
        base = ("schedule", i)
        current[:] = []
        if item is None:  # invalid on its own (reported already): keep its name for the later rules
            raw = data["schedule"][i] if isinstance(data["schedule"][i], dict) else {}
            if isinstance(raw.get("random"), dict):
                name = raw["random"].get("name") if isinstance(raw["random"].get("name"), str) else None
                names.extend([name] if name else [])
                random_names.append(name or f"r{i + 1}")
                continue
            names.append(raw["name"] if isinstance(raw.get("name"), str) else f"f{i + 1}")
            with_until.add(names[-1])
            continue
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
        if isinstance(item, S.DrawnBlock):  # a random block written out: its faults are NAME-1, ...
            random_names.append(item.drawn.name)
            for k, f in enumerate(item.drawn.faults):
                check_fault(f, base + ("drawn", "faults", k), f.name or f"{item.drawn.name}-{k + 1}")
            continue
        check_fault(item, base, item.name or f"f{i + 1}")
    # checks
    if exp.checks is not None and not exp.checks:
        at(("checks",), "`checks: []` judges nothing, so every run would pass",
           "leave `checks` out for the default set, or name the checkers")
    if exp.checks is not None:
        labels: dict[str, int] = {}
        for i, chk in enumerate(exp.checks):
            spec = check_to_spec(chk)
            if spec is None:
                at(("checks", i), "a check is a checker name or {NAME: {param: value}} with one key",
                   "known checkers: " + ", ".join(sorted(checks_core.registry())))
                continue
            label = spec.get("name", spec.get("checker"))
            if isinstance(label, str) and label in labels:
                at(("checks", i), f"check {label!r} is listed twice (also checks[{labels[label]}])",
                   "give its parameters once: {" + label + ": {param: value}}")
            elif isinstance(label, str):
                labels[label] = i
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
            if name in PHASE_EXPECTATIONS and arg not in phases:
                at(("expect", i), f"no phase or fault named {arg!r}", "phases: " + ", ".join(sorted(phases)))
            if name == "until-met" and arg not in names:
                at(("expect", i), f"no fault named {arg!r}", "faults: " + ", ".join(sorted(names)))
            elif name == "until-met" and arg not in with_until:
                at(("expect", i), f"fault {arg!r} has no `until`, so until-met:{arg} can never be met",
                   f"give {arg} `until: CONDITION` and `max`, or expect fault-effective:{arg}")
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


def _candidates_left(t: S.TargetSpec, c: S.ClusterConfig) -> tuple[int, str] | None:
    """(how many candidates a target object surely keeps after its `exclude`, what they are), when
    that is known before the run (explicit nodes and the roles managers, workers, all; `leader` and
    `followers` as counts of managers); None when it depends on the run (`of`)."""
    if t.of is not None:
        return None
    what = "listed nodes" if t.nodes else t.role
    if t.nodes:
        pool = set(t.nodes)
    elif t.role in ("managers", "workers", "all"):
        pool = set({"managers": c.manager_ids, "workers": c.worker_ids, "all": c.node_ids}[t.role])
    else:
        return None  # leader / followers: which managers depends on the election
    elected = set()  # excluded managers whose identity depends on the election (leader, followers)
    for x in S.target_items(t.exclude):
        if isinstance(x, S.TargetSpec):
            if x.of is not None or x.exclude is not None or x.count != "all":
                continue  # not a fixed set: it may remove fewer
            if x.nodes:
                pool -= set(x.nodes)
                continue
            x = x.role
        if x in ("managers", "workers", "all"):
            pool -= set({"managers": c.manager_ids, "workers": c.worker_ids, "all": c.node_ids}[x])
        elif x in ("leader", "followers"):
            elected.add(x)
        else:
            pool.discard(x)
    left = len(pool)
    if set(c.manager_ids) <= pool:  # the leader and its followers are among the candidates
        left -= (1 if "leader" in elected else 0) + (c.managers - 1 if "followers" in elected else 0)
    return max(0, left), what


SHAPE_MIN_NODES = {"halves": 2, "majorities-ring": 3, "bridge": 3}


def _most_nodes(target: Any, c: S.ClusterConfig) -> int | None:
    """The most nodes a target can resolve to in this cluster (the sum over a list's items: their
    union is no larger), or None when that depends on the run."""
    total = 0
    sizes = {"leader": 1, "followers": c.managers - 1, "managers": c.managers, "workers": c.workers,
             "all": len(c.node_ids)}
    for t in S.target_items(target):
        if isinstance(t, str):
            total += sizes.get(t, 1)
            continue
        if t.of is not None:
            return None
        pool = len(set(t.nodes)) if t.nodes else sizes[t.role]
        if t.exclude is not None:
            left = _candidates_left(t, c)
            pool = left[0] if left is not None else pool
        count = {"all": pool, "one": min(1, pool), "minority": (pool - 1) // 2 if pool > 1 else 0,
                 "majority": pool // 2 + 1}.get(t.count, t.count) if not isinstance(t.count, int) else t.count
        total += min(count, pool)
    return min(total, len(c.node_ids))


def _agent_env_problems(c: S.ClusterConfig, data: dict, marks: dict, file: str) -> list[Problem]:
    """`cluster.agent` checked as the agent will read it (node_image/swarmnode/agent/config.py): an
    unknown CHAOS_* name, one chaos sets itself, one given twice, a bad value or a contradiction."""
    try:
        from swarmnode.agent import config as agent_config
    except ImportError:  # the agent package is not installed beside chaos: the agent checks at start
        return []
    out: list[Problem] = []

    def at(path: tuple, msg: str, hint: str | None = None) -> None:
        p, pos = _locate(marks, data, path)
        out.append(Problem(file, *(pos or (None, None)), fmt_path(p), msg, hint))

    env = c.agent.env
    typed = {var: key for key, var in _typed_agent_vars(c.agent)}
    known = set(agent_config.documented_variables())
    for var in env:
        if var in AGENT_ENV_BY_CHAOS:
            at(("cluster", "agent", "env", var), f"{var} is set by chaos itself", AGENT_ENV_BY_CHAOS[var])
        elif var in typed:
            at(("cluster", "agent", "env", var), f"{var} is also set by cluster.agent.{typed[var]}",
               "give it once")
        elif var not in known:
            near = difflib.get_close_matches(var, sorted(known - set(AGENT_ENV_BY_CHAOS)), n=1)
            at(("cluster", "agent", "env", var), f"the agent has no setting {var}",
               f"did you mean {near[0]!r}?" if near else "settings: docs/contracts.md section 2")
    named_badly = {p.path.rpartition(".")[2] for p in out}
    managers = c.manager_ids
    base = {"CHAOS_NODE_ID": managers[0], "CHAOS_ROLE": "manager", "CHAOS_MANAGERS": ",".join(managers),
            "CHAOS_PEERS": json.dumps({m: "127.0.0.1:7000" for m in managers[1:]})}
    full = c.agent.as_env()
    each_ok = True
    ints = {name: (lo, hi) for name, _field, lo, hi in getattr(agent_config, "_INTS", ())}
    for var, value in full.items():  # each value alone (parsed, not yet compared): every bad one
        if var in named_badly:
            continue
        try:
            if var in ints:
                agent_config._parse_int(var, value, *ints[var])
            else:
                agent_config.load({**base, var: value})
        except agent_config.ConfigError as exc:
            each_ok = False
            at(("cluster", "agent", "env", var) if var in env else ("cluster", "agent", typed.get(var, "")),
               str(exc))
    if each_ok and not out:  # then the contradictions between them
        try:
            agent_config.load({**base, **full})
        except agent_config.ConfigError as exc:
            var = next((v for v in re.findall(r"CHAOS_[A-Z0-9_]+", str(exc)) if v in full), None)
            where = (("cluster", "agent", "env", var) if var in env else ("cluster", "agent", typed.get(var, ""))
                     if var else ("cluster", "agent"))
            at(where, str(exc))
    return out


# CHAOS_* variables chaos sets for every node itself; giving them in cluster.agent.env is an error.
AGENT_ENV_BY_CHAOS = {
    **{v: "chaos sets ids, addresses, ports and data directory for every node" for v in (
        "CHAOS_NODE_ID", "CHAOS_ROLE", "CHAOS_MANAGERS", "CHAOS_PEERS", "CHAOS_SEEDS", "CHAOS_PEER_HOST",
        "CHAOS_PEER_PORT", "CHAOS_API_HOST", "CHAOS_API_PORT", "CHAOS_DATA_DIR")},
    "CHAOS_SEED": "each node's seed is derived from the run's seed (`chaos run --seed`)",
    "CHAOS_PLANT": "planted bugs go in cluster.plant, so that the run is marked planted",
    "CHAOS_JOIN_TOKEN": "a manager joins a running cluster with it (the leader hands it to a promoted "
                        "worker: `fault: membership`); on every node it would leave no manager to bootstrap",
}


def _typed_agent_vars(agent: S.AgentSettings) -> list[tuple[str, str]]:
    """(cluster.agent key, CHAOS_* variable) of the typed settings that are set."""
    out = []
    for key in agent.model_fields_set - {"env"}:
        for var in S.AgentSettings.model_validate({key: getattr(agent, key)}).as_env():
            out.append((key, var))
    return sorted(out)


WIPE_HINT = ("target workers only: `workers`, `{role: workers, count: 1}`, a worker id such as w1; a "
             "wiped manager would rejoin Raft as a voter with no log or vote: replace it the Swarm way "
             "instead (`fault: membership, action: replace`: removed, wiped, a fresh one joined under a new id)")


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
    # `x-` top-level keys (as in Compose files) hold YAML anchors for reuse: `x-pause: &pause {...}`
    # then `- {<<: *pause, at: 5s}`. Their aliases were expanded above; the keys themselves are ignored.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(S.EXTENSION_PREFIX))}
    if data.get("version") not in (None, 1) and data.get("version") != S.SCHEMA_VERSION:
        ln, col = marks.get(("version",), (None, None))
        return None, problems + [Problem(file, ln, col, "version",
                                         f"unsupported schema version {data.get('version')!r}",
                                         "this chaos reads version 1")]
    try:
        exp = S.Experiment.model_validate(data)
    except ValidationError as exc:
        # the whole-file rules too, on the parts that are valid on their own: every problem at once
        problems += _pydantic_problems(exc, data, marks, file)
        seen = {(p.path, p.message) for p in problems}
        problems += [p for p in _semantic(_parts(data), data, marks, file) if (p.path, p.message) not in seen]
        return None, _in_file_order(problems)
    except RecursionError:
        return None, problems + [Problem(file, None, None, "", "nested too deeply")]
    problems += _semantic(exp, data, marks, file)
    if any(p.severity == "error" for p in problems):
        return None, _in_file_order(problems)
    return exp, problems


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    """Problems by position in the file (stable: those at one place keep their order)."""
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


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
