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
