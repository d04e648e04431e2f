"""faults.jsonl rows: every action the nemesis writes is a valid row for the checkers.

The nemesis writes intend-start / start / intend-stop / stop (and error, skipped, heal); a reader
that accepted only start and stop called every real run's faults.jsonl damaged, which made the
recovery and expectations checks UNKNOWN on a correct cluster (a false alarm found by
benchmarks/bugfinding.py).
"""

import json
import re
from pathlib import Path

import chaos.nemesis
from chaos.checkers import rundir
from chaos.checkers.expectations import expectations


def _written_actions() -> set[str]:
    src = Path(chaos.nemesis.__file__).read_text(encoding="utf-8")
    return set(re.findall(r'action="([a-z-]+)"', src))


def test_fault_actions_every_nemesis_action_is_a_valid_row():
    written = _written_actions()
    assert {"intend-start", "start", "intend-stop", "stop"} <= written
    for action in sorted(written):
        assert rundir._validate_fault({"action": action, "ts": 1.0}) is None, action


def test_fault_actions_unknown_action_is_damage():
    assert "oops" in rundir._validate_fault({"action": "oops", "ts": 1.0})


def test_fault_actions_run_with_intend_rows_is_judged(tmp_path):
    rows = [{"ts": 10.0, "fault": "f1", "action": "intend-start", "kind": "partition", "targets": ["m1"]},
            {"ts": 10.2, "fault": "f1", "action": "start", "kind": "partition", "targets": ["m1"],
             "intended_ts": 10.0},
            {"ts": 18.0, "fault": "f1", "action": "intend-stop", "kind": "partition", "targets": ["m1"]},
            {"ts": 18.1, "fault": "f1", "action": "stop", "kind": "partition", "targets": ["m1"]}]
    (tmp_path / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "run.json").write_text(json.dumps({"nodes": {"m1": {"role": "manager"}}, "heal_ts": 20.0}))
    run = rundir.RunDir(tmp_path)
    out = expectations(run, expect=["fault-applied:partition"])
    assert out.verdict.value == "VALID", out


def _run_with_stop(tmp_path, until: dict):
    rows = [{"ts": 10.0, "fault": "kill-worker", "action": "start", "kind": "kill", "targets": ["w1"]},
            {"ts": 30.0, "fault": "kill-worker", "action": "stop", "kind": "kill", "targets": ["w1"],
             "details": {"reason": "until", "until": until}}]
    (tmp_path / "faults.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "run.json").write_text(json.dumps({"nodes": {"w1": {"role": "worker"}}, "heal_ts": 31.0}))
    return rundir.RunDir(tmp_path)


def test_expect_until_met_observed_when_the_condition_became_true(tmp_path):
    run = _run_with_stop(tmp_path, {"condition": "replicas-restored", "met": True, "after_s": 4.2})
    out = expectations(run, expect=["until-met:kill-worker"])
    assert out.verdict.value == "VALID", out


def test_expect_until_met_inconclusive_when_max_ran_out(tmp_path):
    run = _run_with_stop(tmp_path, {"condition": "replicas-restored", "met": False, "max_s": 20,
                                    "detail": "web: 2/3 on live workers"})
    out = expectations(run, expect=["until-met:kill-worker"])
    detail = out.evidence["expectations"]["until-met:kill-worker"]["detail"]
    assert out.verdict.value == "UNKNOWN" and "not met within 20" in detail, out
