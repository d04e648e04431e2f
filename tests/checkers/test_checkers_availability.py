"""availability / recovery / expectations: thresholds and anti-vacuity."""

from __future__ import annotations

import pytest

from chaos.checkers import Verdict, run_checks
from chaos.checkers.availability import quantile

from .builder import T0, healthy_cluster


def _judge(b, spec):
    return run_checks(b.write(), [spec]).checks[0]


@pytest.mark.parametrize("vals,q,want", [([], 0.5, None), ([1.0], 0.99, 1.0), ([1, 2, 3, 4], 0.5, 2),
                                         ([1, 2, 3, 4], 0.75, 3), (list(range(1, 101)), 0.99, 99),
                                         (list(range(1, 101)), 0.95, 95)])
def test_availability_quantile_nearest_rank(vals, q, want):
    assert quantile(vals, q) == want


def test_availability_healthy_valid_with_phase_stats(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"), "availability")
    assert c.verdict == Verdict.VALID, c.summary
    assert c.evidence["judged"] == ["recovery"]
    assert c.evidence["phases"]["fault"]["ok_share"] == 0.0


def test_availability_low_ok_share_after_heal_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for p in range(10, 14):
        b.op(p, "write", "k9", p, typ="info", result=p, ts=T0 + 25 + p * 0.1)
    c = _judge(b, "availability:min_ok_share=0.9")
    assert c.verdict == Verdict.INVALID and "recovery: served share" in c.summary
    c = _judge(b, "availability:phases=steady,min_ok_share=0.5")
    assert c.verdict == Verdict.VALID


def _refused_cas(b, n, at):
    """n cas operations the store refused on a value mismatch (served, definite), invoked from `at`."""
    for i in range(n):
        b.invoke(20 + i, "cas", "k1", [7, 8], ts=at + i * 0.1)
        b.complete(20 + i, "fail", ts=at + i * 0.1 + 0.005, error="cas-mismatch")


def test_availability_refused_cas_is_named_refused_and_counts_as_served(tmp_path):
    """A cas refused with cas-mismatch was served: counted under `refused` (never `fail`), as served,
    and the summary names it; a definite failure of another kind stays `fail`."""
    b = healthy_cluster(tmp_path / "run")
    _refused_cas(b, 6, T0 + 25)
    b.invoke(40, "write", "k1", 9, ts=T0 + 26)
    b.complete(40, "fail", ts=T0 + 26.01, error="no-leader")
    c = _judge(b, "availability:min_ok_share=0.8")
    rec = c.evidence["phases"]["recovery"]
    assert (rec["refused"], rec["fail"]) == (6, 1), rec
    assert rec["served"] == rec["ok"] + 6 and rec["ok_share"] == round(rec["served"] / rec["ops"], 4)
    assert c.verdict == Verdict.VALID, c.summary
    assert "refused 6, fail 1" in c.summary, c.summary


def test_availability_served_share_still_judged_with_refused_cas(tmp_path):
    """Refused cas count as served, but do not hide a phase that served too little."""
    b = healthy_cluster(tmp_path / "run")
    _refused_cas(b, 2, T0 + 25)
    for p in range(50, 70):
        b.op(p, "write", "k9", p, typ="info", result=p, ts=T0 + 25.5 + p * 0.01)
    c = _judge(b, "availability:min_ok_share=0.5")
    assert c.verdict == Verdict.INVALID and "recovery: served share" in c.summary, c.summary
    assert "refused 2" in c.summary


def test_availability_p99_threshold_invalid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"), "availability:max_p99_s=0.001")
    assert c.verdict == Verdict.INVALID and "p99" in c.summary


def test_availability_no_operations_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.events.clear()
    assert _judge(b, "availability").verdict == Verdict.UNKNOWN


def test_recovery_healthy_valid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"), "recovery")
    assert c.verdict == Verdict.VALID, c.summary
    lf = c.evidence["leader_faults"][0]
    assert (lf["old_leader"], lf["new_leader"], lf["seconds"]) == ("m1", "m2", 2.5)
    assert c.evidence["heal_to_first_write_s"] == pytest.approx(1.0, abs=0.01)


def test_recovery_slow_election_invalid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"), "recovery:max_leader_s=2")
    assert c.verdict == Verdict.INVALID and "new leader after 2.50 s > 2 s" in c.summary


def test_recovery_no_write_after_heal_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.events = [e for e in b.events if e["ts"] < T0 + 20]
    b.op(7, "write", "k5", 5, typ="info", result=5, ts=T0 + 22)
    c = _judge(b, "recovery")
    assert c.verdict == Verdict.INVALID and "no write succeeded after heal" in c.summary


def test_recovery_nothing_to_check_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.faults.clear()
    b.events.clear()
    assert _judge(b, "recovery").verdict == Verdict.UNKNOWN


def test_recovery_after_a_heal_that_ended_no_fault_unknown(tmp_path):
    """A file cut to its header ran fault-free: the final heal healed nothing, yet the first write
    after it was timed ("0.00 s after heal") and the check passed. Only the fault rows are gone here:
    heal_ts, the writes after it and the journals are those of the VALID run above."""
    b = healthy_cluster(tmp_path / "run")
    b.faults[:] = [f for f in b.faults if f.get("action") not in ("start", "step")]
    c = _judge(b, "recovery")
    assert c.verdict == Verdict.UNKNOWN, c.summary
    assert "no fault was in effect before the heal" in c.summary
    assert "heal_to_first_write_s" not in c.evidence


def test_expectations_observed_valid_and_missing_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    c = _judge(b, "expectations:expect=leader-changed+member-suspected+node-restarted"
                  "+fault-applied:kill+ops-failed-in-phase:fault")
    assert c.verdict == Verdict.VALID, c.summary
    c = _judge(b, "expectations:expect=leader-changed+fault-applied:partition+ops-failed-in-phase:recovery")
    assert c.verdict == Verdict.UNKNOWN
    assert c.evidence["never_observed"] == ["fault-applied:partition", "ops-failed-in-phase:recovery"]


def test_expectations_no_leader_change_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for evs in b.journals.values():
        evs[:] = [e for e in evs if not (e["type"] == "role" and e.get("term") == 2)]
    b.status.clear()
    c = _judge(b, "expectations:expect=leader-changed")
    assert c.verdict == Verdict.UNKNOWN and "leader-changed" in c.summary


def test_recovery_churn_one_election_per_fault_valid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"), "recovery:max_elections_per_fault=1")
    assert c.verdict == Verdict.VALID, c.summary
    assert c.evidence["churn"] == {"faults": 1, "elections": 1, "terms": [2]}


def test_recovery_churn_extra_elections_invalid(tmp_path):
    """A rejoining node without PreVote deposes the new leader: more elections than faults."""
    b = healthy_cluster(tmp_path / "run")
    b.j("m1", "role", ts=T0 + 21.0, role="leader", term=4)
    b.j("m3", "role", ts=T0 + 22.0, role="leader", term=5)
    c = _judge(b, "recovery:max_elections_per_fault=1")
    assert c.verdict == Verdict.INVALID and "3 leader elections after the first fault > 1 x 1" in c.summary
    assert _judge(b, "recovery").verdict == Verdict.VALID   # not judged unless asked for


def _isolate_follower(b, node="m3", at=T0 + 14.0, until=T0 + 17.0):
    """A flap: a partition isolates follower `node` alone from at to until (the faults.jsonl shape)."""
    b.faults += [
        {"ts": at - 0.1, "fault": "flap.1", "action": "intend-start", "kind": "partition", "targets": [node],
         "details": {"selector": {"isolate": {"role": "managers", "count": "one"}}, "leader": "m2", "term": 2}},
        {"ts": at + 0.5, "fault": "flap.1", "action": "start", "kind": "partition", "targets": [node],
         "applied_ts": at, "verified_ts": at + 0.5, "details": {}},
        {"ts": until, "fault": "flap.1", "action": "intend-stop", "kind": "partition", "targets": [node],
         "details": {"reason": "for"}},
        {"ts": until + 0.2, "fault": "flap.1", "action": "stop", "kind": "partition", "targets": [node],
         "intended_ts": until, "details": {}}]
    return b


def test_recovery_isolated_term_stable_catches_a_term_raised_without_prevote(tmp_path):
    """no_prevote at load 32 raised 22-38 terms on isolated managers over 8 flaps, yet only 3-4 terms
    had a leader, under max_elections_per_fault=1 x 8: VALID, the bug uncaught in 4 of 4 seeds. An
    isolated manager raising its term is the bug itself, whatever the elections did."""
    b = _isolate_follower(healthy_cluster(tmp_path / "run"))
    b.j("m3", "term", ts=T0 + 15.3, term=3)  # a candidate, cut off from every other node
    b.j("m3", "role", ts=T0 + 15.3, role="candidate", term=3)
    c = _judge(b, "recovery:isolated_term_stable=true")
    assert c.verdict == Verdict.INVALID, c.summary
    assert "m3 reached term 3 1.30 s into flap.1" in c.summary
    assert c.evidence["isolated_terms"]["bumps_n"] == 1
    assert _judge(b, "recovery:max_elections_per_fault=1").verdict == Verdict.VALID  # what missed it


def test_recovery_isolated_term_stable_valid_with_prevote_and_grace(tmp_path):
    b = _isolate_follower(healthy_cluster(tmp_path / "run"))
    b.j("m3", "term", ts=T0 + 14.4, term=3)  # a pre-vote granted before the cut: within the 1 s grace
    b.j("m3", "term", ts=T0 + 17.5, term=4)  # after the heal was requested
    c = _judge(b, "recovery:isolated_term_stable=true")
    assert c.verdict == Verdict.VALID, c.summary
    assert "no term raised in 1 isolation(s) of a manager" in c.summary


def test_recovery_isolated_term_stable_without_an_isolation_is_unknown(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"), "recovery:isolated_term_stable=true")
    assert c.verdict == Verdict.UNKNOWN and "no partition isolated a single manager" in c.summary


# --- no data is UNKNOWN, never VALID (issue 21 item 2) ---------------------------------------------


def test_availability_judged_phase_without_operations_unknown(tmp_path):
    """A judged phase in which the workload recorded nothing is not 'served well': UNKNOWN, even when
    another judged phase has operations."""
    b = healthy_cluster(tmp_path / "run")
    b.run["phases"].append({"name": "late", "start": T0 + 40, "end": T0 + 50})
    c = _judge(b, "availability")
    assert c.evidence["judged"] == ["recovery", "late"]
    assert c.verdict == Verdict.UNKNOWN and "phase late: no operations recorded in it" in c.summary, c.summary


def test_availability_p99_bound_without_ok_operations_unknown(tmp_path):
    """With only a latency bound, a judged phase without one ok operation has no latency to judge."""
    b = healthy_cluster(tmp_path / "run")
    b.events = [e for e in b.events if e["ts"] < T0 + 20]
    b.op(7, "write", "k5", 5, typ="info", result=5, ts=T0 + 22)
    c = _judge(b, "availability:min_ok_share=none,max_p99_s=1")
    assert c.verdict == Verdict.UNKNOWN and "no ok operation to measure p99" in c.summary, c.summary


def test_recovery_no_write_after_heal_is_unknown_not_valid(tmp_path):
    """The leader fault is measured, but the workload recorded no write after heal: the time from heal
    to the first write has no data, so the check is UNKNOWN (it was VALID on the leader part alone)."""
    b = healthy_cluster(tmp_path / "run")
    b.events = [e for e in b.events if e["ts"] < T0 + 20]
    c = _judge(b, "recovery")
    assert c.evidence["leader_faults"][0]["seconds"] == 2.5
    assert c.verdict == Verdict.UNKNOWN and "no write after heal" in c.summary, c.summary
    del b.run["heal_ts"]
    c = _judge(b, "recovery")
    assert c.verdict == Verdict.UNKNOWN and "no heal_ts" in c.summary, c.summary
