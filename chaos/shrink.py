"""The search of `chaos shrink`: from an experiment file (as a mapping, the form chaos export writes)
that failed a check, the smallest scenario that still fails that check.

Owns: candidate generation (with a hint of when the violation was first seen: first without the
faults that start after it, then only the faults in effect just before it; delta debugging over the
schedule's faults, latest chunk kept first, earliest removed first, big chunks first; then faults
moved earlier and a shorter recovery window, fewer managers and workers, shorter faults and gaps, a
shorter steady phase, a lower workload rate and fewer keys), acceptance (a candidate fails when the
target check is INVALID in at least 1 of `tries` runs, its tries stop at the first failure; it is
kept then, and every later candidate is built from it; a candidate whose faults are a subset of a
candidate's that passed, the rest the same, is not run), the budget
(no try of a candidate is started unless it and the final confirmation of the scenario kept would
still end within it, by the estimate below; a candidate whose later tries do not fit is dropped,
logged so, and the search ends), the log (one JSON line per candidate) and the
confirmation (`tries` more runs of the result: the reproduction rate; its first run is started even
when the estimate says it no longer fits, else nothing would be confirmed).

Runs are not deterministic (the cluster's own timing), so a candidate that passed `tries` times may
still fail sometimes: it is dropped anyway, and the log says it passed N of N.

Time estimate of one run (`Estimator`): its timeline (the plan's schedule bound, or the steady
phase, plus the recovery window) plus an overhead (cluster up, the settle wait, collection, checks,
teardown): the median of what the last RECENT_RUNS runs took beyond their timeline (the machine's
load changes during a shrink: a mean of every run let a 6-minute budget run over by 20 s; the
largest of the last 3 let one 112 s run at load 40 stop an 8-minute shrink after one candidate) (before any run: the
original run's own overhead, from its run.json, else `DEFAULT_OVERHEAD_S`).

Everything is driven by `run(doc, label) -> Try`: a real cluster run (chaos/shrink_run.py) or a fake
in the tests. Must not import: click, docker, requests, chaos.env, chaos.runner.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from chaos.experiment import plan as plan_mod
from chaos.experiment.export import dump, duration
from chaos.experiment.loader import load_text

DEFAULT_OVERHEAD_S = 60.0
MAX_CANDIDATES = 400          # bound on the search, whatever the budget
MAX_ERRORS_IN_A_ROW = 3       # harness errors (exit 4) one after the other stop the search
MIN_FOR_S = 0.5               # a fault is not shortened below this
MIN_WINDOW_S = 2.0            # nor the recovery window
MIN_STEADY_S = 1.0
MIN_RATE = 5.0
FIRST_AT_S = 3.0              # faults moved earlier start here at the soonest (the workload has written
                              # something by then; with 1 s, a planted deposed_leader_reads isolation
                              # moved to 1 s failed in 1 of 2 tries, its shortened form 0 of 1 confirmations)
WINDOW_S = 12.0               # with a hint: the faults in effect this long before the violation first
                              # (vote_not_persisted: the kill that lost the vote began ~8 s before it was seen)
RECENT_RUNS = 3               # the overhead estimate is the median of this many latest runs
EARLIER_FIRST_S = 30.0        # moving the faults earlier goes before the cluster pass when it saves this much
CUT_SLACK_S = 1.0             # with a hint: faults starting this long after the violation was first seen
                              # are dropped in the first candidate (they cannot have caused it; the slack
                              # covers the evidence's own timestamping)


@dataclass(frozen=True)
class Try:
    """One run of a candidate: did the target check come out INVALID?"""

    failed: bool
    verdict: str                 # the target check's verdict, or ERROR (harness), INTERRUPTED
    seconds: float
    run_dir: str | None = None
    detail: str = ""


RunFn = Callable[[dict, str], Try]


class OutOfBudget(Exception):
    pass


class TooManyErrors(Exception):
    pass


@dataclass
class Size:
    faults: int
    timeline_s: float
    nodes: int
    rate: float
    keys: int

    def as_dict(self) -> dict:
        return {"faults": self.faults, "timeline_s": round(self.timeline_s, 3), "nodes": self.nodes,
                "rate": self.rate, "keys": self.keys}


def plan_of(doc: dict, seed: int) -> tuple[dict | None, str]:
    """The plan of a candidate under `seed`, or (None, why it does not validate)."""
    exp, problems = load_text(dump(doc), "<candidate>")
    if exp is None:
        errors = [p for p in problems if p.severity == "error"]
        return None, "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in errors[:2])
    return plan_mod.expand(exp, seed), ""


def timeline_s(plan: dict) -> float:
    """How long a run of this plan lasts from the workload's start to the end of the recovery window."""
    bound = plan["schedule_bound_s"] if plan["faults"] else (plan.get("steady_s") or 0.0)
    return float(bound) + float(plan["recovery"]["window_s"])


def size_of(doc: dict, plan: dict) -> Size:
    c, w = doc["cluster"], doc["workload"]
    return Size(len(plan["faults"]), timeline_s(plan), c.get("managers", 3) + c.get("workers", 3),
                float(w.get("rate") or 0.0), int(w.get("keys", 3)))


class Estimator:
    """Seconds one run takes: timeline + overhead (the mean overhead of the runs seen so far)."""

    def __init__(self, overhead_s: float = DEFAULT_OVERHEAD_S):
        self.first = overhead_s
        self.seen: list[float] = []

    @property
    def overhead_s(self) -> float:
        if not self.seen:
            return self.first
        recent = sorted(self.seen[-RECENT_RUNS:])
        return recent[len(recent) // 2] if len(recent) % 2 else (recent[len(recent) // 2 - 1] + recent[len(recent) // 2]) / 2

    def observe(self, plan: dict, seconds: float) -> None:
        self.seen.append(max(0.0, seconds - timeline_s(plan)))

    def run_s(self, plan: dict) -> float:
        return timeline_s(plan) + self.overhead_s


# -- operations on the experiment mapping ---------------------------------------------------------


def fault_names(doc: dict) -> list[str]:
    """Every fault of the schedule (a drawn block's faults one by one), in schedule order."""
    out = []
    for item in doc.get("schedule") or []:
        if "drawn" in item:
            out += [f["name"] for f in item["drawn"]["faults"]]
        elif "random" not in item:
            out.append(item["name"])
    return out


def _faults(doc: dict) -> Iterable[dict]:
    for item in doc.get("schedule") or []:
        if "drawn" in item:
            yield from item["drawn"]["faults"]
        elif "random" not in item:
            yield item


def _of_names(target: Any) -> set[str]:
    if isinstance(target, list):
        return set().union(*(_of_names(t) for t in target)) if target else set()
    if isinstance(target, dict) and target.get("of"):
        return {target["of"]}
    return set()


def _depends_on(f: dict) -> set[str]:
    deps = {f["after"]} if f.get("after") else set()
    for key in ("target", "isolate", "among", "bridge", "peers"):
        deps |= _of_names(f.get(key))
    ow = f.get("one-way")
    if isinstance(ow, dict):
        deps |= _of_names(ow.get("from")) | _of_names(ow.get("to"))
    return deps


def without(doc: dict, drop: Iterable[str]) -> dict:
    """The mapping without these faults, without the faults that follow them (`after`) or target
    their nodes (`of`), without expectations about any of them, and without drawn blocks left empty."""
    drop = set(drop)
    while True:  # the closure over dependencies
        more = {f["name"] for f in _faults(doc) if f["name"] not in drop and _depends_on(f) & drop}
        if not more:
            break
        drop |= more
    out = copy.deepcopy(doc)
    schedule, gone = [], set(drop)
    for item in out.get("schedule") or []:
        if "drawn" in item:
            item["drawn"]["faults"] = [f for f in item["drawn"]["faults"] if f["name"] not in drop]
            if not item["drawn"]["faults"]:
                gone.add(item["drawn"]["name"])
                continue
        elif item.get("name") in drop:
            continue
        schedule.append(item)
    out["schedule"] = schedule
    if out.get("expect"):
        out["expect"] = [e for e in out["expect"] if str(e).partition(":")[2].strip() not in gone]
    return out


def _map_faults(doc: dict, fn: Callable[[dict], None]) -> dict:
    out = copy.deepcopy(doc)
    for f in _faults(out):
        fn(f)
    return out


def _seconds(v: Any) -> float:
    from chaos.experiment.schema import parse_duration
    return parse_duration(v)


def shortened(doc: dict) -> dict:
    """Every fault held half as long (`for`, or an `until`'s `max`), not below MIN_FOR_S."""
    def fn(f: dict) -> None:
        key = "for" if "for" in f else "max"
        if key in f:
            f[key] = duration(max(MIN_FOR_S, round(_seconds(f[key]) / 2, 3)))
    return _map_faults(doc, fn)


def moved_earlier(doc: dict) -> dict:
    """Faults with `at` moved earlier together, so the first starts at FIRST_AT_S."""
    ats = [_seconds(f["at"]) for f in _faults(doc) if "at" in f]
    if not ats or min(ats) <= FIRST_AT_S:
        return doc
    shift = min(ats) - FIRST_AT_S

    def fn(f: dict) -> None:
        if "at" in f:
            f["at"] = duration(round(_seconds(f["at"]) - shift, 3))
    return _map_faults(doc, fn)


def gaps_halved(doc: dict) -> dict:
    """The time between consecutive fault starts (`at`) halved, the first start kept."""
    ats = sorted({_seconds(f["at"]) for f in _faults(doc) if "at" in f})
    if len(ats) < 2:
        return doc
    new = {ats[0]: ats[0]}
    for prev, cur in zip(ats, ats[1:]):
        new[cur] = new[prev] + (cur - prev) / 2

    def fn(f: dict) -> None:
        if "at" in f:
            f["at"] = duration(round(new[_seconds(f["at"])], 3))
    return _map_faults(doc, fn)


def with_keys(doc: dict, section: str, **values) -> dict:
    out = copy.deepcopy(doc)
    out.setdefault(section, {}).update(values)
    return out


# -- the search ---------------------------------------------------------------------------------


@dataclass
class Progress:
    candidates: int
    runs: int
    size: Size
    time_left_s: float
    doing: str


@dataclass
class Result:
    original: dict
    best: dict
    original_size: Size
    best_size: Size
    candidates: int = 0
    runs: int = 0
    kept: list[str] = field(default_factory=list)
    confirm_runs: int = 0
    confirm_failed: int = 0
    stopped: str = "done"        # done | budget | interrupted | errors | max-candidates
    elapsed_s: float = 0.0

    @property
    def smaller(self) -> bool:
        return bool(self.kept)

    @property
    def repro_rate(self) -> float | None:
        return round(self.confirm_failed / self.confirm_runs, 3) if self.confirm_runs else None


class Shrinker:
    def __init__(self, doc: dict, seed: int, run: RunFn, *, tries: int = 3, budget_s: float = 1800.0,
                 clock: Callable[[], float] = time.monotonic, estimator: Estimator | None = None,
                 log: Callable[[dict], None] = lambda rec: None,
                 progress: Callable[[Progress], None] = lambda p: None, hint_s: float | None = None):
        if tries < 1:
            raise ValueError("tries must be at least 1")
        plan, why = plan_of(doc, seed)
        if plan is None:
            raise ValueError(f"the scenario to shrink does not validate: {why}")
        self.seed, self.run, self.tries, self.hint_s = seed, run, tries, hint_s
        self.clock, self.log, self.progress = clock, log, progress
        self.est = estimator or Estimator()
        self.start = clock()
        self.deadline = self.start + budget_s
        self.best, self.best_plan = copy.deepcopy(doc), plan
        self.result = Result(copy.deepcopy(doc), self.best, size_of(doc, plan), size_of(doc, plan))
        self.seen: set[str] = {_key(doc)}
        self.passed: list[tuple[frozenset, str]] = []  # (faults, the rest of the scenario) of candidates that passed
        self.errors_in_a_row = 0
        self.moved = False

    # -- acceptance --

    def time_left_s(self) -> float:
        return self.deadline - self.clock()

    def _say(self, doing: str) -> None:
        self.progress(Progress(self.result.candidates, self.result.runs, size_of(self.best, self.best_plan),
                               max(0.0, self.time_left_s()), doing))

    def test(self, doc: dict, change: str) -> bool:
        """Run a candidate up to `tries` times; keep it (and return True) when the target check is
        INVALID in one of them. Raises OutOfBudget before starting one that cannot finish."""
        key = _key(doc)
        if key in self.seen:
            return False
        self.seen.add(key)
        plan, why = plan_of(doc, self.seed)
        n = self.result.candidates + 1
        rec: dict[str, Any] = {"candidate": n, "change": change, "ts": time.time()}
        if plan is None:
            self.log({**rec, "kept": False, "verdict": "not-valid", "tries": [], "why": f"does not validate: {why}"})
            return False
        names, rest = _fault_items(doc), _rest_key(doc)
        bigger = next((p for p, r in self.passed if r == rest and names <= p), None)
        if bigger is not None:
            self.log({**rec, "kept": False, "verdict": "skipped", "tries": [], "size": size_of(doc, plan).as_dict(),
                      "why": f"not run: its faults are a subset of a candidate's that passed ({len(bigger)} faults, "
                             f"the rest the same): a subset is taken to pass too (delta debugging's assumption)"})
            return False
        if self.result.candidates >= MAX_CANDIDATES:
            raise OutOfBudget(f"{MAX_CANDIDATES} candidates tried (the bound of the search)")
        # A try is started only when it and the confirmation (of this candidate or of the best so
        # far) still fit: a candidate that fails stops at that try, so only a passing one needs all
        # its tries, and the last candidate may use what is left of the budget.
        confirm_s = self.tries * max(self.est.run_s(plan), self.est.run_s(self.best_plan))
        over = self.clock() + self.est.run_s(plan) + confirm_s - self.deadline
        if over > 0:
            self.log({**rec, "kept": False, "verdict": "not-run", "tries": [], "size": size_of(doc, plan).as_dict(),
                      "why": f"not started: a run of about {self.est.run_s(plan):.0f} s plus the "
                             f"confirmation would end {over:.0f} s after the budget"})
            raise OutOfBudget("the budget cannot fit another candidate and the confirmation")
        self.result.candidates = n
        tries = []
        failed = cut_short = False
        for k in range(self.tries):
            if k and self.clock() + self.est.run_s(plan) + confirm_s > self.deadline:
                cut_short = True
                break
            self._say(f"candidate {n} ({change}), try {k + 1}/{self.tries}")
            t = self.run(doc, f"c{n:03d}-t{k + 1}")
            self.result.runs += 1
            tries.append({"verdict": t.verdict, "failed": t.failed, "seconds": round(t.seconds, 1),
                          "run_dir": t.run_dir, **({"detail": t.detail} if t.detail else {})})
            if t.verdict == "INTERRUPTED":
                self.log({**rec, "kept": False, "verdict": "interrupted", "tries": tries,
                          "size": size_of(doc, plan).as_dict(), "why": "interrupted (Ctrl-C)"})
                raise KeyboardInterrupt
            if t.verdict == "ERROR":
                self.errors_in_a_row += 1
            else:
                self.errors_in_a_row = 0
                self.est.observe(plan, t.seconds)
            if t.failed:
                failed = True
                break
            if self.errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                break
        size = size_of(doc, plan).as_dict()
        if failed:
            why = f"the target check was INVALID in try {len(tries)} of {self.tries}: kept"
            self.best, self.best_plan = doc, plan
            self.result.best = doc
            self.result.best_size = size_of(doc, plan)
            self.result.kept.append(change)
        else:
            if not cut_short and all(t["verdict"] not in ("ERROR", "INTERRUPTED") for t in tries):
                self.passed.append((names, rest))  # an error, or fewer tries than asked, is no evidence
            verdicts = ", ".join(t["verdict"] for t in tries)
            why = f"the target check was not INVALID in {len(tries)} of {len(tries)} tries ({verdicts}): dropped"
            if cut_short:
                why += (f"; the other {self.tries - len(tries)} were not started: they and the confirmation "
                        f"would end after the budget")
        self.log({**rec, "kept": failed, "verdict": "fails" if failed else "passes", "tries": tries,
                  "size": size, "why": why})
        if self.errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
            raise TooManyErrors(f"{MAX_ERRORS_IN_A_ROW} runs in a row ended in a harness error")
        if cut_short:
            raise OutOfBudget("the budget cannot fit another try and the confirmation")
        return failed

    # -- passes --

    def _starts(self) -> dict[str, float]:
        """Fault name -> its planned start (s after the workload's start), for faults with an `at`."""
        return {f["id"]: f["start"]["at_s"] for f in self.best_plan["faults"] if "at_s" in f["start"]}

    def cut(self) -> None:
        """With a hint (when the violation was first seen, from the check's evidence): the faults that
        start after it cannot have caused it. The first candidate drops them all, which also ends the
        schedule (and every later run) where the violation was seen."""
        if self.hint_s is None:
            return
        late = [n for n, at in self._starts().items() if at > self.hint_s + CUT_SLACK_S]
        if late and len(late) < len(fault_names(self.best)):
            self.test(without(self.best, late), f"drop the {len(late)} fault(s) that start after the violation "
                                                 f"was first seen (t+{self.hint_s:.1f} s): they cannot have caused it")

    def window(self) -> None:
        """With a hint: then try only the faults in effect during the WINDOW_S before it. One candidate;
        a hit saves most of ddmin."""
        if self.hint_s is None:
            return
        lo, hi = self.hint_s - WINDOW_S, self.hint_s + CUT_SLACK_S
        plan = self.best_plan
        inside = [f["id"] for f in plan["faults"] if "at_s" in f["start"] and f["for_s"] is not None
                  and f["start"]["at_s"] < hi and f["start"]["at_s"] + f["for_s"] > lo]
        names = fault_names(self.best)
        if inside and len(inside) < len(names):
            self.test(without(self.best, set(names) - set(inside)),
                      f"keep the {len(inside)} fault(s) in effect in t+{max(0.0, lo):.0f}..{self.hint_s:.0f} s, "
                      f"before the violation was first seen")

    def ddmin(self) -> None:
        """Delta debugging (Zeller & Hildebrandt 2002) over the faults, big chunks first (halves, then
        quarters, ...): keep one chunk alone, the latest first (the faults nearest the violation);
        then remove one chunk, the earliest first (faults long healed); on a failure keep it and go
        on from there, else split finer. Candidates whose faults are a subset of a passed
        candidate's are not run (`test`). Ends 1-minimal (no single fault can be removed), then tries
        no fault at all."""
        items = fault_names(self.best)
        n = 2
        while len(items) >= 2:
            chunks = _split(items, n)
            for chunk in reversed(chunks):
                if self.test(without(self.best, set(items) - set(chunk)),
                             f"keep {_fmt(chunk)} of {len(items)} faults"):
                    items, n = fault_names(self.best), 2
                    break
            else:
                for chunk in chunks if n > 2 else []:
                    if self.test(without(self.best, chunk), f"remove {_fmt(chunk)}"):
                        items, n = fault_names(self.best), max(n - 1, 2)
                        break
                else:
                    if n >= len(items):
                        break
                    n = min(len(items), 2 * n)
        if len(items) == 1:
            self.test(without(self.best, items), f"remove {items[0]} (no fault at all)")

    def faults(self) -> None:
        """The faults pass: the cut at the violation, the window before it, then (when what is left
        starts late: a violation near the end of a soak) the faults moved earlier, so that every
        ddmin run is shorter, then ddmin."""
        self.cut()
        self.window()
        self.earlier_if_long()
        self.ddmin()

    def cluster(self) -> None:
        c = self.best["cluster"]
        for m in range(3, c.get("managers", 3), 2):
            if self.test(with_keys(self.best, "cluster", managers=m), f"{c['managers']} -> {m} managers"):
                break
        w = self.best["cluster"].get("workers", 3)
        for k in sorted({0, 1, w // 2} - {w}):
            if k < w and self.test(with_keys(self.best, "cluster", workers=k), f"{w} -> {k} workers"):
                break

    def earlier(self) -> None:
        """The faults moved earlier (once in a search)."""
        if not self.moved:
            self.moved = True
            self.test(moved_earlier(self.best), f"faults moved earlier (the first at {FIRST_AT_S:g} s)")

    def earlier_if_long(self) -> None:
        """Before the cluster pass when moving the faults earlier saves at least EARLIER_FIRST_S per run."""
        ats = [_seconds(f["at"]) for f in _faults(self.best) if "at" in f]
        if ats and min(ats) - FIRST_AT_S >= EARLIER_FIRST_S:
            self.earlier()

    def sooner(self) -> None:
        """What makes every later run shorter: the faults moved earlier, the recovery window halved."""
        self.earlier()
        for _ in range(3):
            r = self.best.get("recovery") or {}
            window = _seconds(r.get("window", 10.0))
            if window <= MIN_WINDOW_S or not self.test(
                    with_keys(self.best, "recovery", window=duration(max(MIN_WINDOW_S, round(window / 2, 3)))),
                    "recovery window halved"):
                break

    def timing(self) -> None:
        for _ in range(3):
            if not self.test(gaps_halved(self.best), "time between fault starts halved"):
                break
        for _ in range(4):
            if not self.test(shortened(self.best), "every fault held half as long"):
                break
        if not fault_names(self.best):  # no fault left: the steady phase is the whole run
            for _ in range(3):
                steady = _seconds(self.best.get("steady", 5.0))
                if steady <= MIN_STEADY_S or not self.test(
                        {**copy.deepcopy(self.best), "steady": duration(max(MIN_STEADY_S, round(steady / 2, 3)))},
                        "steady phase halved"):
                    break

    def workload(self) -> None:
        w = self.best["workload"]
        if w.get("rate") and w["rate"] > MIN_RATE:
            for _ in range(2):
                rate = self.best["workload"]["rate"]
                if rate <= MIN_RATE or not self.test(with_keys(self.best, "workload", rate=max(MIN_RATE, rate / 2)),
                                                     "workload rate halved"):
                    break
        keys = self.best["workload"].get("keys", 3)
        if keys > 1 and not self.test(with_keys(self.best, "workload", keys=1), f"{keys} -> 1 key") and keys > 3:
            self.test(with_keys(self.best, "workload", keys=keys // 2), f"{keys} -> {keys // 2} keys")

    def search(self) -> Result:
        """Every pass once, in this order: faults (the biggest cut, and it shortens the runs that
        follow), the faults moved earlier when that saves EARLIER_FIRST_S or more per run, cluster (fewer containers: bringing the cluster up is most of a short run's time,
        56-68 s of a 121 s candidate at load 40 with 3 managers and 3 workers), sooner (faults
        earlier, a shorter recovery window: shorter runs again), the rest of the timing, workload. Never raises for the
        budget, an interruption or harness errors: `stopped` says which ended it. (A second round
        re-tried the removals the first had refused, at `tries` runs each, and rarely kept one.)"""
        try:
            for step in (self.faults, self.earlier_if_long, self.cluster, self.sooner, self.timing, self.workload):
                step()
        except OutOfBudget as exc:
            self.result.stopped = "budget" if "candidates" not in str(exc) else "max-candidates"
        except TooManyErrors:
            self.result.stopped = "errors"
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        self.result.elapsed_s = self.clock() - self.start
        return self.result

    def confirm(self) -> Result:
        """`tries` more runs of the result, each started only when it fits in the budget."""
        r = self.result
        for k in range(self.tries):
            if self.clock() + self.est.run_s(self.best_plan) > self.deadline and r.confirm_runs:
                self.log({"confirm": k + 1, "verdict": "not-run", "why": "the budget is spent"})
                break
            self._say(f"confirming the result, run {k + 1}/{self.tries}")
            try:
                t = self.run(self.best, f"confirm-{k + 1}")
            except KeyboardInterrupt:
                t = Try(False, "INTERRUPTED", 0.0)
            if t.verdict == "INTERRUPTED":
                r.stopped = "interrupted"
                self.log({"confirm": k + 1, "verdict": "interrupted", "why": "interrupted (Ctrl-C)"})
                break
            r.confirm_runs += 1
            r.confirm_failed += int(t.failed)
            self.log({"confirm": k + 1, "verdict": t.verdict, "failed": t.failed, "seconds": round(t.seconds, 1),
                      "run_dir": t.run_dir, "ts": time.time()})
        r.elapsed_s = self.clock() - self.start
        return r


def _key(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, default=str)


def _fault_items(doc: dict) -> frozenset:
    """The faults as (name, its whole entry): a subset test that also tells a shortened fault apart."""
    return frozenset((f["name"], _key(f)) for f in _faults(doc))


def _rest_key(doc: dict) -> str:
    """Everything but the faults and the expectations (which follow the faults)."""
    return _key({k: v for k, v in doc.items() if k not in ("schedule", "expect")})


def _split(items: list, n: int) -> list[list]:
    size, rem = divmod(len(items), n)
    out, i = [], 0
    for k in range(n):
        j = i + size + (1 if k < rem else 0)
        if j > i:
            out.append(items[i:j])
        i = j
    return out


def _fmt(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} .. {names[-1]} ({len(names)})"
