"""JUnit XML from run directories: every produced file obeys the common JUnit schema
(tests/report/junit_schema.py) and junitparser reads it; checks map to pass / failure / error /
skipped as a CI gate needs; evidence is in the messages; properties carry what replays the run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest
import junit_xml

from chaos.report import synthetic
from chaos.report.junit import write_error_junit, write_junit
from . import junit_schema
from .runs import broken_run


def _cases(path: Path) -> dict[str, junitparser.TestCase]:
    xml = junitparser.JUnitXml.fromfile(str(path))
    return {c.name: c for s in xml for c in s}


def _kind(case: junitparser.TestCase) -> str:
    r = case.result
    return type(r[0]).__name__.lower() if r else "pass"


def _system_out(path: Path, i: int = 0) -> str:
    return ET.parse(path).getroot()[i].find("system-out").text


def _valid(path: Path) -> Path:
    problems = junit_schema.validate(path)
    assert problems == [], problems
    return path


def test_report_junit_schema_validator_rejects_what_it_should(tmp_path):
    # junit-xml's own output puts system-out before the testcases: the schema says after
    tc = junit_xml.TestCase("t", classname="c")
    raw = junit_xml.to_xml_report_string([junit_xml.TestSuite("s", [tc], stdout="out")])
    (tmp_path / "raw.xml").write_text(raw)
    assert any("out of order" in p for p in junit_schema.validate(tmp_path / "raw.xml"))
    (tmp_path / "counts.xml").write_text('<testsuites><testsuite name="s" tests="2" failures="1">'
                                         '<testcase name="a"/></testsuite></testsuites>')
    problems = junit_schema.validate(tmp_path / "counts.xml")
    assert any("tests=2" in p for p in problems) and any("failures=1" in p for p in problems)
    (tmp_path / "attr.xml").write_text('<testsuites><testsuite tests="1"><testcase classname="x">'
                                       '<skipped type="x"/><error/></testcase></testsuite></testsuites>')
    problems = junit_schema.validate(tmp_path / "attr.xml")
    assert any("'name'" in p for p in problems) and any("more than one" in p for p in problems)
    assert any("'type' not in the schema" in p for p in problems)


def test_report_junit_all_valid(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=200)
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    xml = junitparser.JUnitXml.fromfile(str(out))
    (suite,) = list(xml)
    assert suite.name == "leader-partition seed=7"
    cases = _cases(out)
    checks = json.loads((d / "results.json").read_text())["checks"]
    # one testcase per check, the expectations check split into one per expectation
    want = {f"leader-partition.{c['name']}" for c in checks if c["checker"] != "expectations"}
    want |= {"leader-partition.expectations.leader-changed", "leader-partition.expectations.fault-applied:partition"}
    assert set(cases) == want
    assert all(_kind(c) == "pass" for c in cases.values())
    assert {c.classname for c in cases.values()} == {"leader-partition"}
    assert cases["leader-partition.durability"].time == pytest.approx(0.03)
    props = {p.name: p.value for p in suite.properties()}
    assert props["seed"] == "7" and props["replay"] == "chaos run experiments/leader-partition.yaml --seed 7"
    for k in ("plan_sha256", "experiment_sha256", "image_id", "toxiproxy", "agent_version"):
        assert props[k], k
    assert "plant" not in props
    system_out = _system_out(out)
    assert str(d) in system_out and "linearizable" in system_out and "VALID" in system_out


def test_report_junit_invalid_carries_the_evidence(tmp_path):
    d = broken_run(tmp_path / "run")
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    cases = _cases(out)
    lin = cases["leader-partition.linearizable"].result[0]
    assert isinstance(lin, junitparser.Failure)
    # the operations that cannot be ordered: the stale read and the write it missed
    assert "cannot place [p104 ok read kx 1" in lin.message and "p102 ok write kx 2" in lin.message
    raft = cases["leader-partition.raft-safety"].result[0]
    assert isinstance(raft, junitparser.Failure) and "term 2: m2 and m3 both leader" in raft.message
    dur = cases["leader-partition.durability"].result[0]
    assert isinstance(dur, junitparser.Failure)
    assert "was acknowledged and never overwritten" in dur.message and "ok write" in dur.message
    assert "final/m1.json" in (dur.text or "")  # the body holds the evidence lines
    # an expectation never observed is inconclusive (error), the observed one passes
    never = cases["leader-partition.expectations.ops-failed-in-phase:steady"].result[0]
    assert isinstance(never, junitparser.Error) and "never observed" in never.message
    assert _kind(cases["leader-partition.expectations.leader-changed"]) == "pass"
    assert len(lin.message) < 1000


def test_report_junit_unknown_is_an_error_with_the_reason(tmp_path):
    results = synthetic.make_results("VALID")
    results["verdict"] = "UNKNOWN"
    results["checks"][0].update(verdict="UNKNOWN", summary="checker raised KeyError: 'term'",
                                evidence={"traceback": "Traceback...\nKeyError: 'term'\n"})
    d = synthetic.make_run(tmp_path / "run", ops=100, results=results)
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    err = _cases(out)["leader-partition.linearizable"].result[0]
    assert isinstance(err, junitparser.Error)
    assert "KeyError" in err.message and "inconclusive" in err.message
    assert "KeyError: 'term'" in (err.text or "")


def test_report_junit_skipped_only_when_the_check_says_so(tmp_path):
    results = synthetic.make_results("VALID")
    results["checks"][1].update(skipped=True, summary="skipped: the experiment has no workers")
    results["checks"][2].update(verdict="SKIPPED", summary="skipped by the experiment")
    d = synthetic.make_run(tmp_path / "run", ops=100, results=results)
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    cases = _cases(out)
    assert _kind(cases["leader-partition.raft-safety"]) == "skipped"
    assert _kind(cases["leader-partition.durability"]) == "skipped"
    assert sum(_kind(c) == "skipped" for c in cases.values()) == 2


@pytest.mark.parametrize("outcome", ["error", "interrupted"])
def test_report_junit_environment_error(tmp_path, outcome):
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={
        "outcome": outcome, "error": "toxiproxy unreachable at 127.0.0.1:8474", "partial": True,
        "partial_reason": "stopped in phase fault"})
    (d / "results.json").unlink()
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    cases = _cases(out)
    assert list(cases) == ["leader-partition.harness"]
    err = cases["leader-partition.harness"].result[0]
    assert isinstance(err, junitparser.Error)
    assert f"run {outcome}: toxiproxy unreachable at 127.0.0.1:8474" in err.message
    assert "PARTIAL RUN: stopped in phase fault" in _system_out(out)


def test_report_junit_results_missing_or_damaged(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50)
    (d / "results.json").write_text('{"verdict": "VALID", "checks": [')
    (d / "history.jsonl").write_text("garbage\x00\n")
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    err = _cases(out)["leader-partition.harness"].result[0]
    assert isinstance(err, junitparser.Error) and "results.json" in err.message


def test_report_junit_never_started(tmp_path):
    out = _valid(write_error_junit(tmp_path / "junit.xml", "leader-partition",
                                   "experiments/leader-partition.yaml:12:3: unknown fault kind 'explode'",
                                   {"seed": 7, "experiment_sha256": "e" * 64, "image": None}))
    xml = junitparser.JUnitXml.fromfile(str(out))
    (suite,) = list(xml)
    (case,) = list(suite)
    assert case.name == "leader-partition.harness" and isinstance(case.result[0], junitparser.Error)
    assert "unknown fault kind 'explode'" in case.result[0].message
    props = {p.name: p.value for p in suite.properties()}
    assert props == {"seed": "7", "experiment_sha256": "e" * 64}


def test_report_junit_repeat_one_suite_per_seed(tmp_path):
    dirs = [synthetic.make_run(tmp_path / f"s{seed}", ops=80, seed=seed,
                               verdict="INVALID" if seed == 2 else "VALID") for seed in (1, 2, 3)]
    out = _valid(write_junit(dirs, tmp_path / "junit.xml"))
    xml = junitparser.JUnitXml.fromfile(str(out))
    suites = list(xml)
    assert [s.name for s in suites] == [f"leader-partition seed={s}" for s in (1, 2, 3)]
    # the same check has the same name and classname in every run, so CI groups it
    names = [sorted(c.name for c in s) for s in suites]
    assert names[0] == names[1] == names[2]
    assert [s.failures for s in suites] == [0, 1, 0]
    assert xml.tests == sum(s.tests for s in suites) and xml.failures == 1


def test_report_junit_planted_bug_is_loud(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={"plant": ["stale-read", "skip-fsync"]})
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    suite = next(iter(junitparser.JUnitXml.fromfile(str(out))))
    assert "PLANTED BUG: stale-read, skip-fsync" in suite.name
    assert {p.name: p.value for p in suite.properties()}["plant"] == "stale-read,skip-fsync"
    assert "NOT a real result" in _system_out(out)


def test_report_junit_control_run_is_marked(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={"control": True})
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    suite = next(iter(junitparser.JUnitXml.fromfile(str(out))))
    assert "[CONTROL RUN: faults not applied]" in suite.name
    assert {p.name: p.value for p in suite.properties()}["control"] == "true"
    assert "CONTROL RUN" in _system_out(out)
    d2 = synthetic.make_run(tmp_path / "run2", ops=50, run_extra={"control": False})
    out2 = _valid(write_junit([d2], tmp_path / "junit2.xml"))
    suite2 = next(iter(junitparser.JUnitXml.fromfile(str(out2))))
    assert "CONTROL" not in suite2.name and "control" not in {p.name for p in suite2.properties()}


def test_report_junit_hostile_text_stays_well_formed(tmp_path):
    results = synthetic.make_results("INVALID")
    results["checks"][0]["summary"] = 'bad \x00\x07 "quotes" <tag> & ]]> end'
    d = synthetic.make_run(tmp_path / "run", ops=50, name="exp<&>\"", results=results)
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    fail = _cases(out)['exp<&>".linearizable'].result[0]
    assert '"quotes" <tag> & ]]> end' in fail.message


def test_report_junit_unusable_run_directory_still_reports(tmp_path):
    good = synthetic.make_run(tmp_path / "good", ops=50)
    out = _valid(write_junit([good, tmp_path / "gone"], tmp_path / "junit.xml"))
    xml = junitparser.JUnitXml.fromfile(str(out))
    assert [s.name for s in xml] == ["leader-partition seed=7", "gone (run directory unusable)"]
    err = _cases(out)["gone.harness"].result[0]
    assert isinstance(err, junitparser.Error) and "does not exist" in err.message


def test_report_junit_results_without_checks_is_not_a_pass(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50, results={"verdict": "VALID", "checks": []})
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    err = _cases(out)["leader-partition.harness"].result[0]
    assert isinstance(err, junitparser.Error) and "no checks" in err.message


def test_report_junit_run_that_never_finished(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={"outcome": "running", "partial": True})
    out = _valid(write_junit([d], tmp_path / "junit.xml"))
    err = _cases(out)["leader-partition.harness"].result[0]
    assert isinstance(err, junitparser.Error) and "never finished" in err.message
