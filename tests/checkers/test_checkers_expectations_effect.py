"""Anti-vacuity that cannot be fooled: `ops-failed-in-phase` counts only operations that failed for
want of the cluster (a refused compare-and-set is a served answer), and `fault-effective` asks for
evidence that the fault took effect, which a `sham` (control run) or a start without effect never is."""

from __future__ import annotations

import pytest

from chaos.checkers import Verdict, run_checks

from .builder import T0, RunBuilder, healthy_cluster


def _judge(b, spec):
    return run_checks(b.write(), [spec]).checks[0]


def _phase_run(tmp_path, ops) -> RunBuilder:
    """A healthy run whose history in the fault window (T0+10 .. heal) is exactly `ops`:
    (f, value, type, error) tuples, one per process."""
    b = healthy_cluster(tmp_path / "run")
    heal = b.run["heal_ts"]
    b.events[:] = [e for e in b.events if not (T0 + 10 <= e["ts"] < heal)]
    for i, (f, value, typ, error) in enumerate(ops):
        p = 10 + i
        b.invoke(p, f, "k9", value, ts=T0 + 10.5 + i * 0.01)
        b.complete(p, typ, value, ts=T0 + 10.6 + i * 0.01, error=error)
    b.events.sort(key=lambda e: e["ts"])
    for i, e in enumerate(b.events):  # indexes give the real-time order
        e["index"] = i
    return b


def test_expectations_refused_cas_in_phase_is_never_a_failure(tmp_path):
    # the review's leader-isolated case: 134 refused CAS, not one operation failed or timed out
    b = _phase_run(tmp_path, [("cas", [1, 2], "fail", "cas-mismatch")] * 134)
    for exp in ("ops-failed-in-phase:fault", "ops-failed-in-phase:f1"):
        c = _judge(b, f"expectations:expect={exp}")
        assert c.verdict == Verdict.UNKNOWN, c.summary
        assert c.evidence["never_observed"] == [exp]
        assert "134 served refusal" in c.evidence["expectations"][exp]["detail"]


@pytest.mark.parametrize("typ, error", [
    ("fail", "exists"), ("fail", "not-found"), ("fail", "bad-request"),
    ("info", "cas-mismatch (an earlier attempt may have applied)"), ("info", "stale-seq"),
])
def test_expectations_other_served_refusals_never_count(tmp_path, typ, error):
    c = _judge(_phase_run(tmp_path, [("cas", [1, 2], typ, error)]), "expectations:expect=ops-failed-in-phase:fault")
    assert c.verdict == Verdict.UNKNOWN, c.summary


@pytest.mark.parametrize("typ, error", [
    ("info", "ReadTimeout"), ("info", "ConnectionError"), ("info", None), ("fail", "not-leader"),
    ("fail", "no-leader"), ("fail", "unavailable"), ("info", "timeout"),
])
def test_expectations_one_failure_for_want_of_the_cluster_is_observed(tmp_path, typ, error):
    ops = [("cas", [1, 2], "fail", "cas-mismatch")] * 5 + [("write", 7, typ, error)]
    c = _judge(_phase_run(tmp_path, ops), "expectations:expect=ops-failed-in-phase:fault")
    assert c.verdict == Verdict.VALID, c.summary


def test_expectations_an_unfinished_operation_is_no_evidence(tmp_path):
    b = _phase_run(tmp_path, [])
    b.invoke(50, "write", "k9", 5, ts=T0 + 11)  # the history ends without its completion
    b.events.sort(key=lambda e: e["ts"])
    for i, e in enumerate(b.events):
        e["index"] = i
    c = _judge(b, "expectations:expect=ops-failed-in-phase:fault")
    assert c.verdict == Verdict.UNKNOWN, c.summary


# -- fault-effective ---------------------------------------------------------------------------


def _faults(b, rows):
    b.faults[:] = [{"ts": T0 + 10 + i, "kind": "partition", "targets": ["m1"], "details": {}, **r}
                   for i, r in enumerate(rows)]
    return b


YES = {"effective": True, "why": "3 link(s) of the cut did not carry a probe"}
NO = {"effective": False, "why": "no link of this cut was probed as cut"}


@pytest.mark.parametrize("rows, name, observed", [
    ([{"fault": "cut", "action": "start", "effect": YES}, {"fault": "cut", "action": "stop"}], "cut", True),
    # started but no effect seen: the fault proves nothing
    ([{"fault": "cut", "action": "start", "effect": NO}, {"fault": "cut", "action": "stop"}], "cut", False),
    # started, no evidence recorded at all (an older run): not observed
    ([{"fault": "cut", "action": "start"}, {"fault": "cut", "action": "stop"}], "cut", False),
    # node and link faults carry their effect on the stop record
    ([{"fault": "k", "action": "start"}, {"fault": "k", "action": "stop", "effect": YES}], "k", True),
    # a control run: sham rows only, with the targets they would have had
    ([{"fault": "cut", "action": "sham", "details": {"would": "start"}},
      {"fault": "cut", "action": "sham", "details": {"would": "stop"}}], "cut", False),
    # a sham row that (wrongly) carries an effect still never counts
    ([{"fault": "cut", "action": "sham", "effect": YES}], "cut", False),
    # repeats and random blocks: any occurrence
    ([{"fault": "p.1", "action": "start", "effect": NO}, {"fault": "p.2", "action": "start", "effect": YES}], "p", True),
    ([{"fault": "r1-1", "action": "start", "effect": NO}, {"fault": "r1-2", "action": "stop", "effect": YES}], "r1", True),
    # another fault's effect is not this one's
    ([{"fault": "cut", "action": "start", "effect": NO}, {"fault": "cut-in", "action": "start", "effect": YES}],
     "cut", False),
])
def test_expectations_fault_effective(tmp_path, rows, name, observed):
    c = _judge(_faults(healthy_cluster(tmp_path / "run"), rows), f"expectations:expect=fault-effective:{name}")
    assert c.evidence["expectations"][f"fault-effective:{name}"]["observed"] is observed, c.summary
    assert c.verdict == (Verdict.VALID if observed else Verdict.UNKNOWN)


def test_expectations_fault_effective_says_why_not(tmp_path):
    b = _faults(healthy_cluster(tmp_path / "run"), [{"fault": "cut", "action": "sham"}])
    c = _judge(b, "expectations:expect=fault-effective:cut")
    assert "sham" in c.evidence["expectations"]["fault-effective:cut"]["detail"]
    b = _faults(b, [{"fault": "cut", "action": "start", "effect": NO}])
    c = _judge(b, "expectations:expect=fault-effective:cut")
    assert NO["why"] in c.evidence["expectations"]["fault-effective:cut"]["detail"]


def test_expectations_sham_rows_never_meet_fault_expectations(tmp_path):
    """Under a control run, every fault-bound expectation stays unobserved."""
    b = healthy_cluster(tmp_path / "run")
    b.faults[:] = [{"ts": T0 + 10, "fault": "f1", "action": "sham", "kind": "kill", "targets": ["m1"],
                    "details": {"would": "start"}},
                   {"ts": T0 + 20, "fault": "f1", "action": "sham", "kind": "kill", "targets": ["m1"],
                    "details": {"would": "stop", "until": {"condition": "new-leader", "met": True}}}]
    exps = ["fault-applied:kill", "fault-effective:f1", "until-met:f1", "ops-failed-in-phase:f1", "ops-ok-in-phase:f1"]
    c = _judge(b, "expectations:expect=" + "+".join(exps))
    assert c.verdict == Verdict.UNKNOWN and c.evidence["never_observed"] == exps


def _with_attempts(b: RunBuilder, attempts: int) -> RunBuilder:
    for e in b.events:
        if e["type"] != "invoke" and T0 + 10 <= e["ts"] < b.run["heal_ts"]:
            e["attempts"] = attempts
    return b


def test_expectations_disturbed_counts_an_operation_that_needed_a_second_attempt(tmp_path):
    """A leader killed or a minority cut off while clients retry elsewhere: nothing failed, but
    operations of the phase needed a second attempt -- the fault's visible effect on clients."""
    ops = [("write", 7, "ok", None), ("cas", [1, 2], "fail", "cas-mismatch")]
    b = _with_attempts(_phase_run(tmp_path, ops), 2)
    assert _judge(b, "expectations:expect=ops-failed-in-phase:fault").verdict == Verdict.UNKNOWN
    c = _judge(b, "expectations:expect=ops-disturbed-in-phase:fault")
    assert c.verdict == Verdict.VALID, c.summary
    assert "2 more needed a second attempt" in c.evidence["expectations"]["ops-disturbed-in-phase:fault"]["detail"]


def test_expectations_disturbed_is_never_observed_without_retries_or_failures(tmp_path):
    """The deliberately undisturbed run: every operation served at its first attempt (attempts 1, or
    the field absent as in older histories), refused cas included: UNKNOWN."""
    ops = [("write", 7, "ok", None), ("cas", [1, 2], "fail", "cas-mismatch")] * 20
    for b in (_phase_run(tmp_path, ops), _with_attempts(_phase_run(tmp_path / "b", ops), 1)):
        c = _judge(b, "expectations:expect=ops-disturbed-in-phase:fault")
        assert c.verdict == Verdict.UNKNOWN, c.summary
        assert c.evidence["never_observed"] == ["ops-disturbed-in-phase:fault"]


def test_expectations_disturbed_outside_the_phase_does_not_count(tmp_path):
    b = _phase_run(tmp_path, [("write", 7, "ok", None)] * 5)  # the fault's window: first attempts only
    for e in b.events:
        if e["type"] != "invoke" and e["ts"] < T0 + 10:
            e["attempts"] = 3  # retried before the fault's window only
    c = _judge(b, "expectations:expect=ops-disturbed-in-phase:fault")
    assert c.verdict == Verdict.UNKNOWN, c.summary
