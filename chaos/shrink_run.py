"""`chaos shrink` on real clusters: each candidate of the search (chaos/shrink.py) is a normal run
directory RUN_DIR/shrink/cNNN-tK (confirmation runs: confirm-K), run by chaos.runner with the
original seed, one cluster at a time, removed after each run (also on Ctrl-C: the runner's own
teardown). Writes RUN_DIR/shrink/shrink.jsonl (one line per candidate: what changed, each try's
verdict and run directory, kept or dropped and why; then the confirmation runs), minimal.yaml
(the smallest scenario that failed, as an experiment file, also after Ctrl-C), summary.json and
console.log (what the runs said).

Exit codes (`exit_code`): 0 a smaller scenario was found and failed again in at least one
confirmation run; 3 nothing smaller failed within the budget, or the smaller one never failed in
the confirmation runs (minimal.yaml is written either way, with its rate); 4 the search stopped on
harness errors with nothing smaller; 130 interrupted (minimal.yaml holds the smallest so far).
Must not import: click.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chaos.errors import (EXIT_ENVIRONMENT, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED, EXIT_OK, RunDirError,
                          UsageError)
from chaos.experiment import plan as plan_mod
from chaos.experiment.export import RunFacts, dump, header_lines, load_run_dir, plan_to_doc, verify
from chaos.shrink import DEFAULT_OVERHEAD_S, Estimator, Progress, Result, Shrinker, Try, fault_names, timeline_s


def target_check(facts: RunFacts, check: str | None) -> str:
    """The check to keep failing: `check` (a check's name or checker), else the first INVALID one."""
    if not (facts.run_dir / "results.json").is_file():
        raise RunDirError(f"{facts.run_dir / 'results.json'}: missing; the run was not judged",
                          hint="`chaos check RUN_DIR` judges it")
    invalid = [c for c in facts.checks if c.get("verdict") == "INVALID"]
    if check is None:
        if not invalid:
            verdicts = ", ".join(f"{c.get('name')} {c.get('verdict')}" for c in facts.checks) or "no checks"
            raise UsageError(f"{facts.run_dir}: no check is INVALID ({verdicts}): nothing to shrink",
                             hint="shrink a run that failed a check (exit code 1)")
        return str(invalid[0].get("name"))
    hit = [c for c in facts.checks if check in (c.get("name"), c.get("checker"))]
    if not hit:
        raise UsageError(f"--check {check}: no such check in this run",
                         hint="its checks: " + ", ".join(str(c.get("name")) for c in facts.checks))
    if hit[0].get("verdict") != "INVALID":
        raise UsageError(f"--check {check}: it was {hit[0].get('verdict')} in this run, not INVALID: nothing to shrink")
    return str(hit[0].get("name"))


def violation_time_s(facts: RunFacts, check: str) -> float | None:
    """When the target check's violation was first visible, in seconds after the workload started:
    from the `ts` fields of its evidence. Evidence grouped as objects with an `events` list (one per
    violation, as raft-safety gives) counts each group at its last event (a violation is seen when
    its last event happened), the earliest group wins; otherwise the earliest `ts`; without any, the
    linearizable counterexamples' history references (`_counterexample_ts`). None without either."""
    hit = next((c for c in facts.checks if c.get("name") == check), None)
    try:
        run = json.loads((facts.run_dir / "run.json").read_text(encoding="utf-8"))
        t0 = float(run["phases"][0]["start"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    groups: list[float] = []
    loose: list[float] = []

    def stamps(obj) -> list[float]:
        out = []
        if isinstance(obj, dict):
            if isinstance(obj.get("ts"), (int, float)) and not isinstance(obj.get("ts"), bool):
                out.append(float(obj["ts"]))
            for v in obj.values():
                out += stamps(v)
        elif isinstance(obj, list):
            for v in obj:
                out += stamps(v)
        return out

    def walk(obj) -> None:
        if isinstance(obj, dict):
            if isinstance(obj.get("events"), list):
                ts = stamps(obj["events"])
                if ts:
                    groups.append(max(ts))
                return
            if isinstance(obj.get("ts"), (int, float)) and not isinstance(obj.get("ts"), bool):
                loose.append(float(obj["ts"]))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk((hit or {}).get("evidence"))
    found = [t for t in (groups or loose) if t >= t0]
    if not found:
        found = [t for t in _counterexample_ts(facts.run_dir, (hit or {}).get("evidence")) if t >= t0]
    return round(min(found) - t0, 3) if found else None


_HISTORY_REF = re.compile(r"\[#(\d+)\.\.(?:#(\d+)|…)\]")


def _counterexample_ts(run_dir: Path, evidence) -> list[float]:
    """Evidence without timestamps but with counterexamples (linearizable: one per failing key, each
    line an operation `[#invoke..#completion]` in history.jsonl, `…` when it never completed): each
    counterexample is complete at its latest referenced history entry (a completion, or the invoke
    of an operation that never completed); the time of that entry, one per counterexample."""
    keys = (evidence or {}).get("failed_keys") if isinstance(evidence, dict) else None
    wanted: list[int] = []
    for fk in keys if isinstance(keys, list) else []:
        refs = [int(b or a) for line in (fk.get("counterexample") or []) if isinstance(line, str)
                for a, b in _HISTORY_REF.findall(line)]
        if refs:
            wanted.append(max(refs))
    if not wanted:
        return []
    ts: dict[int, float] = {}
    need = set(wanted)
    try:
        with open(run_dir / "history.jsonl", encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("index") in need and isinstance(rec.get("ts"), (int, float)):
                    ts[rec["index"]] = float(rec["ts"])
                    if len(ts) == len(need):
                        break
    except OSError:
        return []
    return [ts[i] for i in wanted if i in ts]


def _original_overhead(facts: RunFacts) -> float:
    try:
        run = json.loads((facts.run_dir / "run.json").read_text(encoding="utf-8"))
        took = float(run["duration_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_OVERHEAD_S
    return max(20.0, took - timeline_s(facts.plan))


class ClusterRunner:
    """run(doc, label) -> Try: the candidate run end to end as `chaos run` would, quietly."""

    def __init__(self, facts: RunFacts, check: str, out: Path, console_log: Path):
        self.facts, self.check, self.out, self.console_log = facts, check, out, console_log

    def _say(self, text: str) -> None:
        with open(self.console_log, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    def __call__(self, doc: dict, label: str) -> Try:
        from chaos.env.progress import NullProgress
        from chaos.experiment.loader import Loaded, load_text
        from chaos.runner import RunOptions, Runner

        text = dump(doc, [f"shrink candidate {label} of {self.facts.run_dir}"])
        path = self.out / f"{label}.yaml"
        path.write_text(text, encoding="utf-8")
        exp, problems = load_text(text, str(path))
        if exp is None:  # the search validates first; this is a bug of ours, recorded as an error
            return Try(False, "ERROR", 0.0, None, "; ".join(str(p) for p in problems[:2]))
        loaded = Loaded(exp, path, text, hashlib.sha256(text.encode()).hexdigest(), ())
        seed = self.facts.seed
        opts = RunOptions(seed=seed, out_dir=self.out, command=f"chaos shrink {shlex.quote(str(self.facts.run_dir))}",
                          plan=plan_mod.expand(exp, seed), say=self._say, progress=NullProgress(), live=None)
        runner = Runner(loaded, opts)
        runner.run_dir = self.out / label  # a normal run directory, named after the candidate
        self._say(f"{label}: run directory {runner.run_dir}")
        t0 = time.monotonic()
        try:
            outcome = runner.execute()
        except KeyboardInterrupt:
            return Try(False, "INTERRUPTED", time.monotonic() - t0, str(runner.run_dir))
        except Exception as exc:  # noqa: BLE001 -- a bug below: one candidate's error, not a lost search
            self._say(f"{label}: internal error: {type(exc).__name__}: {exc}")
            return Try(False, "ERROR", time.monotonic() - t0, str(runner.run_dir), f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - t0
        if outcome.results is None:
            why = outcome.error.message if outcome.error is not None else "no results"
            self._say(f"{label}: harness error: {why}")
            return Try(False, "ERROR", seconds, str(runner.run_dir), why)
        hit = next((c for c in outcome.results.checks if c.name == self.check), None)
        verdict = hit.verdict.value if hit is not None else "MISSING"
        self._say(f"{label}: {self.check} {verdict} ({outcome.results.verdict.value} overall) in {seconds:.0f} s")
        return Try(verdict == "INVALID", verdict, seconds, str(runner.run_dir),
                   (hit.summary or "")[:200] if hit is not None else "the check did not run")


class ProgressLine:
    """One status line on stderr: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.width = 0

    def __call__(self, p: Progress) -> None:
        left = f"{p.time_left_s / 60:.0f}m" if p.time_left_s >= 60 else f"{p.time_left_s:.0f}s"
        line = (f"shrink: {p.candidates} candidates, {p.runs} runs | now {p.size.faults} faults, "
                f"{p.size.timeline_s:.0f} s | {left} left | {p.doing}")
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width)[:200])
            self.width = min(200, len(line))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Shrunk:
    result: Result
    check: str
    minimal: Path
    summary: dict
    exit_code: int


def exit_code(result: Result) -> int:
    if result.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if result.smaller and result.confirm_failed > 0:
        return EXIT_OK
    if result.stopped == "errors" and not result.smaller:
        return EXIT_ENVIRONMENT
    return EXIT_INCONCLUSIVE


def shrink_run_dir(run_dir: Path, *, tries: int, budget_s: float, check: str | None,
                   run: Callable[[dict, str], Try] | None = None, progress=None) -> Shrunk:
    """The whole `chaos shrink`: search, confirm, write minimal.yaml, shrink.jsonl, summary.json.
    `run` replaces the cluster runner (tests)."""
    facts = load_run_dir(run_dir)
    target = target_check(facts, check)
    try:
        run_json = json.loads((facts.run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run_json = {}
    if isinstance(run_json, dict) and run_json.get("control") is True:
        raise UsageError(f"{run_dir}: a control run (no fault was applied): nothing to shrink")
    try:
        doc = plan_to_doc(facts.plan, facts)
        verify(dump(doc), facts.plan)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise RunDirError(f"{facts.run_dir / 'plan.json'}: cannot be shrunk: {exc}") from None
    out = facts.run_dir / "shrink"
    if out.exists():
        raise UsageError(f"{out}: exists (an earlier shrink); move it away to shrink again")
    out.mkdir()
    log_path = out / "shrink.jsonl"
    line = progress if progress is not None else ProgressLine()

    def log(rec: dict) -> None:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, default=str) + "\n")

    log({"start": time.time(), "run_dir": str(facts.run_dir), "check": target, "seed": facts.seed, "tries": tries,
         "budget_s": budget_s, "faults": len(fault_names(doc)), "violation_seen_s": violation_time_s(facts, target)})
    runner = run if run is not None else ClusterRunner(facts, target, out, out / "console.log")
    shrinker = Shrinker(doc, facts.seed, runner, tries=tries, budget_s=budget_s,
                        estimator=Estimator(_original_overhead(facts)), log=log, progress=line,
                        hint_s=violation_time_s(facts, target))
    from chaos.env.up import sigterm_as_interrupt

    with sigterm_as_interrupt():  # SIGTERM too keeps the smallest scenario so far
        result = shrinker.search()
        if result.stopped != "interrupted":
            shrinker.confirm()
    if hasattr(line, "end"):
        line.end()
    minimal = out / "minimal.yaml"
    summary = _summary(facts, target, result, minimal, tries)
    header = header_lines(facts, "Shrunk by `chaos shrink`") + [
        f"`chaos shrink` kept the check `{target}` failing: {summary['faults_before']} -> {summary['faults_after']} "
        f"faults, {summary['duration_before_s']:g} s -> {summary['duration_after_s']:g} s of timeline;",
        f"it failed in {result.confirm_failed} of {result.confirm_runs} confirmation runs"
        + (" (interrupted: not confirmed)" if result.stopped == "interrupted" else "")
        + f". Run it: chaos run shrink/minimal.yaml --seed {facts.seed}"]
    minimal.write_text(dump(result.best, header), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log({"end": time.time(), **summary})
    return Shrunk(result, target, minimal, summary, exit_code(result))


def _summary(facts: RunFacts, check: str, r: Result, minimal: Path, tries: int) -> dict:
    return {"run_dir": str(facts.run_dir), "check": check, "seed": facts.seed, "tries": tries,
            "faults_before": r.original_size.faults, "faults_after": r.best_size.faults,
            "faults_kept": fault_names(r.best),
            "duration_before_s": round(r.original_size.timeline_s, 3), "duration_after_s": round(r.best_size.timeline_s, 3),
            "cluster_before": {k: r.original["cluster"].get(k) for k in ("managers", "workers")},
            "cluster_after": {k: r.best["cluster"].get(k) for k in ("managers", "workers")},
            "workload_before": {k: r.original["workload"].get(k) for k in ("rate", "keys")},
            "workload_after": {k: r.best["workload"].get(k) for k in ("rate", "keys")},
            "candidates": r.candidates, "runs": r.runs, "kept": r.kept, "stopped": r.stopped,
            "shrink_minutes": round(r.elapsed_s / 60, 2), "confirm_runs": r.confirm_runs,
            "confirm_failed": r.confirm_failed, "repro_rate": r.repro_rate, "smaller": r.smaller,
            "minimal": str(minimal), "exit_code": exit_code(r)}


def render(s: Shrunk) -> list[str]:
    """The one-screen summary."""
    m = s.summary
    cb, ca, wb, wa = m["cluster_before"], m["cluster_after"], m["workload_before"], m["workload_after"]
    rate = (f"{m['confirm_failed']} of {m['confirm_runs']} confirmation runs failed ({m['repro_rate']:.0%})"
            if m["confirm_runs"] else "not confirmed (no confirmation run)")
    verdict = {EXIT_OK: "a smaller scenario fails the same check",
               EXIT_INCONCLUSIVE: "nothing smaller was confirmed to fail" if not m["smaller"] or not m["confirm_failed"]
               else "inconclusive",
               EXIT_ENVIRONMENT: "stopped on harness errors",
               EXIT_INTERRUPTED: "interrupted: the smallest failing scenario so far is kept"}[m["exit_code"]]
    return [f"shrink of {m['run_dir']}: check {m['check']} (seed {m['seed']}): {verdict}",
            f"  faults     {m['faults_before']} -> {m['faults_after']}"
            + (f"  ({', '.join(m['faults_kept'])})" if 0 < len(m["faults_kept"]) <= 6 else ""),
            f"  timeline   {m['duration_before_s']:g} s -> {m['duration_after_s']:g} s (schedule + recovery window)",
            f"  cluster    {cb['managers']} managers + {cb['workers']} workers -> "
            f"{ca['managers']} + {ca['workers']}",
            f"  workload   {wb['rate']} ops/s, {wb['keys']} keys -> {wa['rate']} ops/s, {wa['keys']} keys",
            f"  search     {m['candidates']} candidates, {m['runs']} runs, {m['shrink_minutes']:g} min "
            f"(ended: {m['stopped']}); kept: {len(m['kept'])} change(s)",
            f"  reproduced {rate}",
            f"  minimal    {m['minimal']}",
            f"  run it     chaos run {shlex.quote(m['minimal'])} --seed {m['seed']}",
            f"  log        {Path(m['minimal']).parent / 'shrink.jsonl'}"]
