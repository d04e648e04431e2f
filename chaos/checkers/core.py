"""Verdicts, the checker registry, check specs and `run_checks`.

Owns: `Verdict` and its composition (INVALID > UNKNOWN > VALID, STYLE.md item 16), `Outcome` (what a
checker returns), `CheckResult` / `Results` (what `results.json` holds), typed checker parameters,
parsing of check specs (`NAME[:k=v,...]` strings or plan.json objects), time and memory budgets, and
the default check set.

Must not import: click, rich (reporting is separate from judging), docker, `swarmnode` runtime parts.
Checker modules register themselves here; this module imports them lazily in `registry()`.

Budgets: every check has `timeout_s` and `memory_mb` parameters. In the main thread the time budget
is enforced with a real-time interval timer (SIGALRM raises inside the checker); elsewhere it is
checked when the checker returns. The memory budget caps the process address space (RLIMIT_AS) at its
current size plus `memory_mb` while the checker runs, so an allocation beyond it raises MemoryError.
Both give UNKNOWN with the reason. A checker that raises anything else gives UNKNOWN with a one-line
reason; its traceback is saved to a file whose path the evidence keeps (`traceback_file`).

Incomplete records (STYLE.md item 16, chaos/checkers/rundir.py): after a checker returns, the gaps of
the parts it read (a missing journal, a damaged line, a cut-off last line) are applied to its outcome.
VALID becomes UNKNOWN; INVALID becomes UNKNOWN too unless the checker set `Outcome.holds_on_partial`
(its violation is a fact in the records it did read, which no missing record can explain away: a
linearizability failure in a prefix of the history, a Raft violation in the journals present).
The system is never called wrong because the harness's record is missing.
"""

from __future__ import annotations

import copy
import enum
import json
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from chaos.errors import UsageError

if TYPE_CHECKING:
    from chaos.checkers.rundir import Gap, RunDir


class Verdict(str, enum.Enum):
    VALID = "VALID"
    INVALID = "INVALID"
    UNKNOWN = "UNKNOWN"

    @staticmethod
    def combine(verdicts) -> "Verdict":
        """INVALID beats UNKNOWN beats VALID. Nothing to combine is UNKNOWN, never VALID."""
        vs = list(verdicts)
        if not vs:
            return Verdict.UNKNOWN
        if Verdict.INVALID in vs:
            return Verdict.INVALID
        if Verdict.UNKNOWN in vs:
            return Verdict.UNKNOWN
        return Verdict.VALID


@dataclass
class Outcome:
    """What a checker function returns. `evidence` must be JSON-serializable."""

    verdict: Verdict
    summary: str
    evidence: Any = field(default_factory=dict)
    # INVALID stays INVALID on an incomplete record (module docstring): set only by checkers whose
    # violations are facts of the records present (a prefix of a file, a subset of the nodes).
    holds_on_partial: bool = False

    @classmethod
    def nothing(cls, what: str) -> "Outcome":
        return cls(Verdict.UNKNOWN, f"nothing to check: {what}", {})


@dataclass
class CheckResult:
    name: str
    checker: str
    verdict: Verdict
    summary: str
    evidence: Any
    params: dict
    duration_s: float

    def to_json(self) -> dict:
        return {"name": self.name, "checker": self.checker, "verdict": self.verdict.value,
                "summary": self.summary, "evidence": self.evidence, "params": self.params,
                "duration_s": round(self.duration_s, 6)}


@dataclass
class Results:
    verdict: Verdict
    checks: list[CheckResult]
    record_problems: list["Gap"] = field(default_factory=list)  # every gap in the run directory

    def to_json(self) -> dict:
        return {"verdict": self.verdict.value, "checks": [c.to_json() for c in self.checks],
                "record_problems": [g.to_json() for g in self.record_problems]}

    @property
    def exit_code(self) -> int:
        from chaos import errors
        return {Verdict.VALID: errors.EXIT_OK, Verdict.INVALID: errors.EXIT_INVALID,
                Verdict.UNKNOWN: errors.EXIT_INCONCLUSIVE}[self.verdict]


# --- parameters -------------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """A typed checker parameter. kind: int, float, str, bool, list (of str), or optional float
    (`float?`: None disables the threshold). A number is finite and within [lo, hi] (every numeric
    parameter is a duration, a count, a size or a share: none is negative)."""

    name: str
    kind: str
    default: Any
    doc: str
    check: Callable[[Any], Any] | None = None  # returns a list of bad items (empty/None when fine)
    lo: float = 0.0
    hi: float | None = None

    def parse(self, raw: Any, where: str) -> Any:
        try:
            value = self._parse(raw)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"{where}: parameter {self.name!r} expects {self.kind}, got {raw!r}",
                             hint=f"{self.name}: {self.doc}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value or value in (float("inf"), float("-inf")):
                raise UsageError(f"{where}: parameter {self.name!r} must be a finite number, got {raw!r}",
                                 hint=f"{self.name}: {self.doc}")
            if value < self.lo or (self.hi is not None and value > self.hi):
                bound = f"at least {self.lo:g}" if self.hi is None else f"in [{self.lo:g}, {self.hi:g}]"
                raise UsageError(f"{where}: parameter {self.name!r} must be {bound}, got {value!r}",
                                 hint=f"{self.name}: {self.doc}")
        bad = self.check(value) if self.check else None
        if bad:
            raise UsageError(f"{where}: parameter {self.name!r}: not allowed: {', '.join(map(str, bad))}",
                             hint=f"{self.name}: {self.doc}")
        return value

    def _parse(self, raw: Any) -> Any:
        k = self.kind
        if k.endswith("?"):
            if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null", "off")):
                return None
            k = k[:-1]
        if k == "int":
            if isinstance(raw, bool) or isinstance(raw, float):
                raise TypeError
            return int(raw)
        if k == "float":
            if isinstance(raw, bool):
                raise TypeError
            v = float(raw)
            if v != v:
                raise ValueError
            return v
        if k == "bool":
            if isinstance(raw, bool):
                return raw
            s = str(raw).lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError
        if k == "list":
            if isinstance(raw, str):
                return [x for x in raw.split("+") if x]
            if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
                return list(raw)
            raise TypeError
        if k == "str":
            if not isinstance(raw, str):
                raise TypeError
            return raw
        raise AssertionError(f"unknown param kind {self.kind}")


COMMON_PARAMS = (
    Param("timeout_s", "float", 60.0, "time budget for this check in seconds; over it -> UNKNOWN", lo=0.01),
    Param("memory_mb", "int", 2048, "extra address space allowed while the check runs; over it -> UNKNOWN",
          lo=1),
)


@dataclass(frozen=True)
class CheckerDef:
    name: str
    fn: Callable[..., Outcome]
    params: dict[str, Param]
    doc: str
    default: bool


_REGISTRY: dict[str, CheckerDef] = {}
_CHECKER_MODULES = ("linearizable", "raft_safety", "durability", "convergence", "availability",
                    "expectations", "swarm_liveness", "redundancy")


def register(name: str, params: tuple[Param, ...] = (), default: bool = False):
    """Decorator: `fn(run: RunDir, **params) -> Outcome` becomes the checker `name`."""

    def deco(fn):
        allp = {p.name: p for p in (*params, *COMMON_PARAMS)}
        _REGISTRY[name] = CheckerDef(name, fn, allp, (fn.__doc__ or "").strip(), default)
        return fn

    return deco


def registry() -> dict[str, CheckerDef]:
    import importlib
    for mod in _CHECKER_MODULES:
        importlib.import_module(f"chaos.checkers.{mod}")
    return dict(_REGISTRY)


DEFAULT_ORDER = ("linearizable", "raft-safety", "durability", "convergence", "availability", "recovery")


def default_checks() -> list[str]:
    """The default set, used when neither the command line nor plan.json names checks: safety
    first (DEFAULT_ORDER), then any other checker registered with default=True, by name."""
    reg = registry()
    names = [n for n in DEFAULT_ORDER if n in reg and reg[n].default]
    return names + sorted(n for n, d in reg.items() if d.default and n not in names)


# --- specs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSpec:
    name: str       # label in results (defaults to the checker name)
    checker: str
    params: dict    # fully resolved, defaults filled in


def parse_spec(spec: Any, where: str = "check") -> CheckSpec:
    """Parse `NAME[:k=v,...]` or `{"checker": NAME, "name"?: LABEL, "params"?: {...}}`.

    Unknown checkers and bad or unknown parameters raise UsageError naming what is allowed.
    """
    reg = registry()
    if isinstance(spec, CheckSpec):
        return spec
    if isinstance(spec, str):
        name, _, rest = spec.partition(":")
        name = name.strip()
        raw: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            k, eq, v = part.partition("=")
            if not eq or not k.strip():
                raise UsageError(f"{where}: {spec!r}: expected k=v, got {part!r}",
                                 hint="syntax: NAME[:k=v,...]; list values are joined with '+'")
            raw[k.strip()] = v.strip()
        label = name
    elif isinstance(spec, dict):
        name = spec.get("checker") or spec.get("name")
        if not isinstance(name, str):
            raise UsageError(f"{where}: a check object needs a 'checker' name, got {spec!r}")
        label = spec.get("name", name)
        raw = spec.get("params") or {}
        if not isinstance(raw, dict):
            raise UsageError(f"{where}: 'params' must be an object, got {raw!r}")
        extra = set(spec) - {"checker", "name", "params"}
        if extra:
            raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(extra))} in check {label!r}")
    else:
        raise UsageError(f"{where}: a check must be a string or an object, got {spec!r}")
    if name not in reg:
        raise UsageError(f"{where}: unknown checker {name!r}",
                         hint="known checkers: " + ", ".join(sorted(reg)))
    cdef = reg[name]
    params = {p.name: copy.deepcopy(p.default) for p in cdef.params.values()}
    for k, v in raw.items():
        if k not in cdef.params:
            raise UsageError(f"{where}: checker {name!r} has no parameter {k!r}",
                             hint="parameters: " + ", ".join(sorted(cdef.params)))
        params[k] = cdef.params[k].parse(v, f"{where} {name}")
    return CheckSpec(label, name, params)


# --- running ----------------------------------------------------------------------------------


class BudgetExceeded(Exception):
    pass


def _vm_size_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _run_budgeted(fn: Callable[[], Outcome], timeout_s: float, memory_mb: int) -> Outcome:
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    old_handler = None
    old_limit = None
    try:
        import resource
        vm = _vm_size_bytes()
        if vm is not None:
            old_limit = resource.getrlimit(resource.RLIMIT_AS)
            cap = vm + memory_mb * 1024 * 1024
            if old_limit[1] == resource.RLIM_INFINITY or cap < old_limit[1]:
                resource.setrlimit(resource.RLIMIT_AS, (cap, old_limit[1]))
            else:
                old_limit = None
    except (ImportError, ValueError, OSError):
        old_limit = None
    old_timer = (0.0, 0.0)
    started = time.monotonic()
    if main:
        def on_alarm(signum, frame):
            raise BudgetExceeded(f"over time budget ({timeout_s:g} s)")
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        old_timer = signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return fn()
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            if old_timer[0] > 0:  # someone else's alarm (e.g. pytest-timeout): give back what is left
                left = max(0.001, old_timer[0] - (time.monotonic() - started))
                signal.setitimer(signal.ITIMER_REAL, left, old_timer[1])
        if old_limit is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, old_limit)


def _save_traceback(label: str) -> str:
    """Write the current exception's traceback to a temporary file; return its path."""
    import tempfile
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)[:40]
    fd, path = tempfile.mkstemp(prefix=f"chaos-check-{safe}-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(traceback.format_exc())
    return path


def apply_gaps(out: Outcome, gaps: list["Gap"]) -> Outcome:
    """The outcome of a check that read parts of the record with gaps (module docstring)."""
    if not gaps:
        return out
    first = gaps[0].message + (f" (and {len(gaps) - 1} more record problem(s))" if len(gaps) > 1 else "")
    evidence = out.evidence if isinstance(out.evidence, dict) else {"result": out.evidence}
    evidence = {**evidence, "record_gaps": [g.to_json() for g in gaps[:50]], "record_gap_count": len(gaps)}
    if out.verdict == Verdict.INVALID and out.holds_on_partial:
        return Outcome(Verdict.INVALID, f"{out.summary} (record incomplete: {first})", evidence, True)
    if out.verdict == Verdict.INVALID:
        return Outcome(Verdict.UNKNOWN, f"incomplete record: {first}; not judged INVALID, the missing part "
                                        f"may explain it: {out.summary}", evidence)
    if out.verdict == Verdict.VALID:
        return Outcome(Verdict.UNKNOWN, f"incomplete record: {first}; the rest: {out.summary}", evidence)
    return Outcome(Verdict.UNKNOWN, f"incomplete record: {first}; {out.summary}", evidence)


def run_check(run: "RunDir", spec: CheckSpec) -> CheckResult:
    cdef = registry()[spec.checker]
    own = {k: v for k, v in spec.params.items() if k not in ("timeout_s", "memory_mb")}
    run.touched = set()
    t0 = time.monotonic()
    try:
        out = _run_budgeted(lambda: cdef.fn(run, **own), spec.params["timeout_s"], spec.params["memory_mb"])
        if not isinstance(out, Outcome):
            raise TypeError(f"checker {spec.checker} returned {type(out).__name__}, not Outcome")
        json.dumps(out.evidence)  # evidence must be storable
    except BudgetExceeded as exc:
        out = Outcome(Verdict.UNKNOWN, str(exc), {"budget": "time", "timeout_s": spec.params["timeout_s"]})
    except MemoryError:
        out = Outcome(Verdict.UNKNOWN, f"over memory budget ({spec.params['memory_mb']} MB)",
                      {"budget": "memory", "memory_mb": spec.params["memory_mb"]})
    except Exception as exc:  # a crashing checker is no verdict, never a pass; the traceback goes to a file
        path = _save_traceback(spec.name)
        out = Outcome(Verdict.UNKNOWN, f"checker raised {type(exc).__name__}: {exc} (a bug in chaos; "
                                       f"traceback in {path})", {"traceback_file": path})
    dt = time.monotonic() - t0
    if out.verdict == Verdict.VALID and dt > spec.params["timeout_s"]:
        out = Outcome(Verdict.UNKNOWN, f"over time budget ({dt:.1f} s > {spec.params['timeout_s']:g} s)",
                      {"budget": "time", "result_within_budget_would_be": out.summary})
    out = apply_gaps(out, run.gaps_for(run.touched))
    return CheckResult(spec.name, spec.checker, out.verdict, out.summary, out.evidence, dict(spec.params), dt)


def specs_for(run: "RunDir", specs: list | None) -> list[CheckSpec]:
    """Explicit specs, else plan.json `checks`, else the default set."""
    if specs:
        return [parse_spec(s, "--check") for s in specs]
    plan = run.plan()
    if isinstance(plan, dict) and plan.get("checks"):
        checks = plan["checks"]
        if not isinstance(checks, list):
            raise UsageError("plan.json: 'checks' must be a list")
        return [parse_spec(s, f"plan.json checks[{i}]") for i, s in enumerate(checks)]
    return [parse_spec(n, "default") for n in default_checks()]


def run_checks(run_dir: str | Path, specs: list | None = None, write: bool = True,
               out: str = "results.json") -> Results:
    """Judge a run directory; write the results as `out` (default `results.json`) into it, unless `write` is False."""
    from chaos.checkers.rundir import RunDir
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    resolved = specs_for(run, specs)
    labels = [s.name for s in resolved]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise UsageError(f"duplicate check name(s): {', '.join(dup)}",
                         hint="give repeated checkers distinct names in plan.json")
    checks = [run_check(run, s) for s in resolved]
    results = Results(Verdict.combine(c.verdict for c in checks), checks, run.load_all())
    if write:
        tmp = run.path / (out + ".tmp")
        try:
            tmp.write_text(json.dumps(results.to_json(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, run.path / out)
        except OSError as exc:
            from chaos.errors import RunDirError
            raise RunDirError(f"cannot write {run.path / out}: {exc.strerror}",
                              hint="judge without writing: chaos check RUN_DIR --no-write") from None
    return results
