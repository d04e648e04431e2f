"""The search of `chaos shrink` (chaos/shrink.py) driven by FAKE runners, no Docker: it reaches the
minimal fault set, runs a dropped candidate exactly `tries` times, keeps a flaky failure only when
one of its tries fails, never starts a candidate the budget cannot fit, and logs every candidate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.experiment import plan as plan_mod
from chaos.experiment.export import plan_to_doc
from chaos.experiment.loader import load_file
from chaos.shrink import (Estimator, Shrinker, Try, fault_names, plan_of, shortened, timeline_s,
                          without)

ROOT = Path(__file__).resolve().parents[2]
SEED = 3


def soak_doc() -> dict:
    loaded = load_file(ROOT / "experiments" / "random-soak.yaml")
    return plan_to_doc(json.loads(plan_mod.canonical(plan_mod.expand(loaded.experiment, SEED))))


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeRunner:
    """fails(doc) says whether the bug shows; `every`: it shows only on every N-th run of a failing
    scenario (a flaky bug). Each run advances the fake clock by the run's timeline + overhead."""

    def __init__(self, fails, clock: Clock, every: int = 1, overhead_s: float = 40.0, interrupt_at: int | None = None):
        self.fails, self.clock, self.every, self.overhead_s = fails, clock, every, overhead_s
        self.labels: list[str] = []
        self.failing_runs = 0
        self.interrupt_at = interrupt_at

    def __call__(self, doc: dict, label: str) -> Try:
        self.labels.append(label)
        if self.interrupt_at is not None and len(self.labels) == self.interrupt_at:
            raise KeyboardInterrupt
        plan, why = plan_of(doc, SEED)
        assert plan is not None, why  # the search never runs a file that does not validate
        seconds = timeline_s(plan) + self.overhead_s
        self.clock.t += seconds
        failed = False
        if self.fails(set(fault_names(doc)), doc):
            self.failing_runs += 1
            failed = self.failing_runs % self.every == 0
        return Try(failed, "INVALID" if failed else "VALID", seconds, run_dir=f"/runs/{label}")


def _shrink(runner, clock, tries=3, budget_s=10 * 3600.0, doc=None):
    log: list[dict] = []
    s = Shrinker(doc or soak_doc(), SEED, runner, tries=tries, budget_s=budget_s, clock=clock,
                 estimator=Estimator(40.0), log=log.append)
    return s, s.search(), log


def test_shrink_search_reaches_the_two_faults_that_matter():
    doc = soak_doc()
    a, c = fault_names(doc)[2], fault_names(doc)[9]
    clock = Clock()
    runner = FakeRunner(lambda names, d: {a, c} <= names, clock)
    s, result, log = _shrink(runner, clock, doc=doc)
    assert fault_names(result.best) == [a, c]
    assert result.original_size.faults == len(fault_names(doc)) > 20 and result.best_size.faults == 2
    assert result.smaller and result.stopped == "done"
    # the rest shrank too: shorter faults, a short recovery window, lower rate, one key
    assert result.best["recovery"]["window"] == "2s" and result.best["workload"]["keys"] == 1
    assert result.best_size.timeline_s < result.original_size.timeline_s / 4
    # every kept candidate had the failure, every dropped one ran all its tries
    for rec in (r for r in log if "candidate" in r and r["tries"]):
        assert rec["kept"] == any(t["failed"] for t in rec["tries"])
        if not rec["kept"]:
            assert len(rec["tries"]) == 3 and "dropped" in rec["why"]
        assert {"candidate", "change", "verdict", "kept", "why", "size"} <= set(rec)
    assert plan_of(result.best, SEED)[0] is not None
    s.confirm()
    assert result.confirm_runs == 3 and result.repro_rate == 1.0


def test_shrink_search_keeps_a_flaky_failure_seen_in_one_of_three_tries():
    doc = soak_doc()
    a, c = fault_names(doc)[0], fault_names(doc)[5]
    clock = Clock()
    runner = FakeRunner(lambda names, d: {a, c} <= names, clock, every=3)  # fails 1 time in 3
    _, result, log = _shrink(runner, clock, tries=3, doc=doc)
    assert fault_names(result.best) == [a, c]
    kept_tries = [len(r["tries"]) for r in log if r.get("kept")]
    assert kept_tries and max(kept_tries) <= 3


def test_shrink_search_with_one_try_misses_the_flaky_failure_and_says_nothing_smaller():
    clock = Clock()
    runner = FakeRunner(lambda names, d: True, clock, every=3)
    _, result, log = _shrink(runner, clock, tries=1)
    # the first two runs pass (1 in 3), so only a lucky third candidate can be kept: never the
    # whole search's worth; with a failure every 3rd run and 1 try, at most a third are kept
    ran = [r for r in log if r.get("tries")]
    assert sum(r["kept"] for r in ran) <= len(ran) // 3 + 1
    assert all(len(r["tries"]) == 1 for r in ran)


def test_shrink_search_nothing_smaller_fails_keeps_the_original():
    doc = soak_doc()
    clock = Clock()
    runner = FakeRunner(lambda names, d: names == set(fault_names(doc)) and d == doc, clock)
    _, result, log = _shrink(runner, clock, doc=doc, budget_s=1000 * 3600.0)
    assert not result.smaller and result.best == doc and result.stopped == "done"
    assert all(not r["kept"] for r in log if "candidate" in r)


def test_shrink_search_respects_the_budget_and_logs_the_candidate_it_did_not_start():
    clock = Clock()
    runner = FakeRunner(lambda names, d: len(names) >= 30, clock)
    start = clock.t
    s, result, log = _shrink(runner, clock, budget_s=1800.0)
    assert result.stopped == "budget"
    last = log[-1]
    assert "budget" in last["why"] and not last["kept"]
    assert last["verdict"] == "not-run" or (last["verdict"] == "passes" and len(last["tries"]) < 3)
    s.confirm()
    assert clock.t - start <= 1800.0, "a run was started that the budget could not fit"
    assert result.confirm_runs == 3, "the budget kept room for the confirmation"
    assert all(any(t["failed"] for t in r["tries"]) for r in log if r.get("kept"))


def test_shrink_search_near_the_end_of_the_budget_a_candidate_runs_the_tries_that_fit():
    """A try is started when it and the confirmation fit, not only when all `tries` do: here the
    first candidate (the latest half alone) fails at once; the second (the latest quarter) passes
    its one try that fits, is dropped, is not remembered as passed, and the search ends."""
    doc = soak_doc()
    names = fault_names(doc)
    half = names[len(names) - len(names) // 2:]
    c1 = without(doc, set(names) - set(half))
    c2 = without(c1, set(half) - set(half[len(half) - len(half) // 2:]))
    t1, t2 = (timeline_s(plan_of(d, SEED)[0]) + 100.0 for d in (c1, c2))
    clock = Clock()
    runner = FakeRunner(lambda got, d: len(got) > len(half) // 2 and names[-1] in got, clock, overhead_s=100.0)
    log: list[dict] = []
    s = Shrinker(doc, SEED, runner, tries=3, budget_s=4 * t1 + 1.5 * t2, clock=clock, estimator=Estimator(100.0),
                 log=log.append)
    result = s.search()
    ran = [r for r in log if r.get("tries")]
    assert [len(r["tries"]) for r in ran] == [1, 1] and [r["kept"] for r in ran] == [True, False]
    assert "were not started" in ran[1]["why"] and "budget" in ran[1]["why"]
    assert result.stopped == "budget" and s.passed == []
    assert fault_names(result.best) == half
    s.confirm()
    assert result.confirm_runs == 3 and clock.t <= s.deadline


def test_shrink_search_interrupted_keeps_the_smallest_failing_scenario_so_far():
    doc = soak_doc()
    a = fault_names(doc)[-2]  # a late fault: the first candidate (the latest half alone) fails
    clock = Clock()
    runner = FakeRunner(lambda names, d: a in names, clock, interrupt_at=4)
    _, result, log = _shrink(runner, clock, doc=doc)
    assert result.stopped == "interrupted"
    assert a in fault_names(result.best) and len(fault_names(result.best)) < len(fault_names(doc))
    assert plan_of(result.best, SEED)[0] is not None


def test_shrink_search_stops_after_harness_errors_in_a_row():
    clock = Clock()

    def broken(doc, label):
        clock.t += 50
        return Try(False, "ERROR", 50.0, detail="docker unreachable")

    log: list[dict] = []
    s = Shrinker(soak_doc(), SEED, broken, tries=3, clock=clock, log=log.append)
    result = s.search()
    assert result.stopped == "errors" and result.runs == 3 and not result.smaller


def test_shrink_without_removes_dependents_and_their_expectations():
    loaded = load_file(ROOT / "experiments" / "leader-wakes-cut-off.yaml")
    doc = plan_to_doc(json.loads(plan_mod.canonical(plan_mod.expand(loaded.experiment, 1))))
    names = fault_names(doc)
    deps = {n for n in names if any(f.get("name") == n and (f.get("after") or "of" in json.dumps(f))
                                    for f in doc["schedule"])}
    assert deps, "this shipped file has a fault that depends on another"
    first = names[0]
    out = without(doc, {first})
    assert first not in fault_names(out)
    assert plan_of(out, 1)[0] is not None  # still valid: dependents and their expectations went too
    assert not any(first in str(e) for e in out.get("expect", []))


def test_shrink_shortened_halves_fault_durations_but_not_below_the_floor():
    doc = soak_doc()
    out = shortened(shortened(shortened(shortened(doc))))
    plan, _ = plan_of(out, SEED)
    assert all(f["for_s"] >= 0.5 for f in plan["faults"])
    assert plan["schedule_bound_s"] < plan_of(doc, SEED)[0]["schedule_bound_s"]


def test_shrink_refuses_tries_below_one_and_an_invalid_start():
    with pytest.raises(ValueError):
        Shrinker(soak_doc(), SEED, lambda d, label: None, tries=0)
    bad = soak_doc()
    bad["cluster"]["managers"] = 0
    with pytest.raises(ValueError, match="does not validate"):
        Shrinker(bad, SEED, lambda d, label: None)


def test_shrink_estimator_follows_the_slowest_recent_run():
    plan, _ = plan_of(soak_doc(), SEED)
    est = Estimator(30.0)
    assert est.run_s(plan) == timeline_s(plan) + 30.0  # before any run: the original run's overhead
    for overhead in (10.0, 50.0, 20.0, 25.0):
        est.observe(plan, timeline_s(plan) + overhead)
    assert est.overhead_s == 25.0  # the median of the last three (10 dropped out): one slow run does not rule
    est.observe(plan, timeline_s(plan) + 5.0)
    assert est.overhead_s == 20.0


def test_shrink_search_with_a_violation_hint_cuts_there_first_then_tries_the_faults_just_before_it():
    doc = soak_doc()
    plan, _ = plan_of(doc, SEED)
    need = plan["faults"][12]
    hint = need["start"]["at_s"] + need["for_s"] + 1.0  # seen a second after that fault ended
    runs = {}
    for hint_s in (None, hint):
        clock = Clock()
        runner = FakeRunner(lambda names, d: need["id"] in names, clock)
        log: list[dict] = []
        s = Shrinker(doc, SEED, runner, tries=3, budget_s=100 * 3600.0, clock=clock, estimator=Estimator(40.0),
                     log=log.append, hint_s=hint_s)
        result = s.search()
        assert fault_names(result.best) == [need["id"]]
        cands = [r for r in log if "candidate" in r]
        upto = next(i for i, r in enumerate(cands) if r["kept"] and r["size"]["faults"] == 1)
        runs[hint_s] = sum(len(r["tries"]) for r in cands[:upto + 1])  # runs until one fault was left
        if hint_s is not None:
            cut, window = [r for r in log if "candidate" in r][:2]
            assert cut["kept"] and "start after the violation" in cut["change"] and len(cut["tries"]) == 1
            late = {f["id"] for f in plan["faults"] if f["start"]["at_s"] > hint + 1.0}
            assert late and cut["size"]["faults"] == len(plan["faults"]) - len(late)
            assert cut["size"]["timeline_s"] < timeline_s(plan) / 2  # the schedule ends near the violation
            assert window["kept"] and "before the violation" in window["change"]
            assert window["size"]["faults"] <= 8
    assert runs[hint] < runs[None] / 2


def test_shrink_search_with_a_wrong_hint_still_reaches_the_minimal_set_and_reports_only_failures():
    """The hint says the violation was seen at 10 s, but the fault that matters starts at 60 s: the
    cut candidate passes (dropped), ddmin finds the fault anyway; nothing kept ever passed."""
    doc = soak_doc()
    plan, _ = plan_of(doc, SEED)
    need = next(f for f in plan["faults"] if f["start"]["at_s"] > 60.0)
    clock = Clock()
    runner = FakeRunner(lambda names, d: need["id"] in names, clock)
    log: list[dict] = []
    s = Shrinker(doc, SEED, runner, tries=3, budget_s=100 * 3600.0, clock=clock, estimator=Estimator(40.0),
                 log=log.append, hint_s=10.0)
    result = s.search()
    assert fault_names(result.best) == [need["id"]]
    first = next(r for r in log if "candidate" in r)
    assert not first["kept"] and len(first["tries"]) == 3
    assert all(any(t["failed"] for t in r["tries"]) for r in log if r.get("kept"))


def test_shrink_search_does_not_run_a_subset_of_faults_that_passed():
    doc = soak_doc()
    names = fault_names(doc)
    a, b = names[3], names[-3]  # both needed: every chunk alone passes
    clock = Clock()
    runner = FakeRunner(lambda got, d: {a, b} <= got, clock)
    s, result, log = _shrink(runner, clock, doc=doc)
    assert fault_names(result.best) == [a, b]
    skipped = [r for r in log if r.get("verdict") == "skipped"]
    assert skipped and all(r["tries"] == [] and "subset" in r["why"] for r in skipped)
    # no fault set that ran was a subset of one that had passed before it, with the rest the same
    ran = [r for r in log if r.get("tries")]
    assert len(ran) == result.candidates


def test_shrink_search_moves_late_faults_earlier_before_the_cluster_pass_and_only_once():
    doc = soak_doc()
    plan, _ = plan_of(doc, SEED)
    late = [f["id"] for f in plan["faults"] if f["start"]["at_s"] > 60.0][-1]
    clock = Clock()
    runner = FakeRunner(lambda names, d: late in names, clock)
    s, result, log = _shrink(runner, clock, doc=doc)
    assert fault_names(result.best) == [late]
    changes = [r["change"] for r in log if "candidate" in r]
    moved = [i for i, c in enumerate(changes) if "moved earlier" in c]
    workers = [i for i, c in enumerate(changes) if "workers" in c]
    assert len(moved) == 1 and workers and moved[0] < workers[0]
    assert plan_of(result.best, SEED)[0]["faults"][0]["start"]["at_s"] == 3.0


def test_shrink_search_a_late_violation_moves_the_window_earlier_before_ddmin():
    """The violation seen near the end of the soak: the window candidate keeps a few late faults;
    they are moved earlier before ddmin, so ddmin's runs are short."""
    doc = soak_doc()
    plan, _ = plan_of(doc, SEED)
    need = [f for f in plan["faults"] if f["start"]["at_s"] > 100.0][0]
    hint = need["start"]["at_s"] + need["for_s"] + 1.0
    clock = Clock()
    runner = FakeRunner(lambda names, d: need["id"] in names, clock)
    log: list[dict] = []
    s = Shrinker(doc, SEED, runner, tries=3, budget_s=100 * 3600.0, clock=clock, estimator=Estimator(40.0),
                 log=log.append, hint_s=hint)
    result = s.search()
    assert fault_names(result.best) == [need["id"]]
    changes = [r["change"] for r in log if "candidate" in r]
    moved = next(i for i, c in enumerate(changes) if "moved earlier" in c)
    assert "before the violation" in changes[moved - 1] and all("keep" not in c for c in changes[:moved - 1])
    assert all(r["size"]["timeline_s"] < 60 for r in log if "candidate" in r and r.get("tries")
               and changes.index(r["change"]) > moved)
