"""benchmarks/control.py's pure parts: what it reads from results.json, and the ready-timeout copy
(which must differ from the shipped file in nothing else)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_control", ROOT / "benchmarks" / "control.py")
control = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(control)


def test_benchmark_control_reads_never_observed_and_observed():
    results = {"checks": [{"checker": "linearizable", "verdict": "VALID"},
                          {"checker": "expectations", "verdict": "UNKNOWN", "evidence": {"expectations": {
                              "fault-effective:cut": {"observed": False}, "leader-changed": {"observed": True}}}}]}
    assert control.expectations_of(results) == (["fault-effective:cut"], ["leader-changed"])
    assert control.expectations_of({"checks": []}) == ([], [])


def test_benchmark_control_ready_timeout_copy_changes_only_that(tmp_path):
    assert control.experiment_file("leader-killed", tmp_path, None) == ROOT / "experiments" / "leader-killed.yaml"
    copy = control.experiment_file("leader-killed", tmp_path, 480)
    shipped = yaml.safe_load((ROOT / "experiments" / "leader-killed.yaml").read_text())
    got = yaml.safe_load(copy.read_text())
    assert got["cluster"].pop("ready_timeout") == "480s"
    assert got == shipped
