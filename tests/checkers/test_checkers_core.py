"""Registry, specs, verdict composition, budgets, results.json, and `chaos check` through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chaos import errors
from chaos.checkers import Outcome, Verdict, parse_spec, run_checks
from chaos.checkers import core
from chaos.cli import main

from .builder import T0, healthy_cluster


@pytest.fixture
def fake_checkers():
    """Temporarily registered checkers that raise, hang, allocate, or return a fixed verdict."""
    names = []

    def add(name, fn, params=()):
        core.register(name, params=params)(fn)
        names.append(name)
    yield add
    for n in names:
        core._REGISTRY.pop(n, None)


def test_verdict_combine_ranks_invalid_unknown_valid():
    V = Verdict
    assert V.combine([V.VALID, V.UNKNOWN, V.INVALID]) == V.INVALID
    assert V.combine([V.VALID, V.UNKNOWN]) == V.UNKNOWN
    assert V.combine([V.VALID, V.VALID]) == V.VALID
    assert V.combine([]) == V.UNKNOWN


def test_spec_parse_errors_are_usage_errors():
    for bad, needle in [("nope", "unknown checker"), ("linearizable:x=1", "has no parameter"),
                        ("linearizable:key_timeout_s=fast", "expects float"), ("linearizable:oops", "k=v"),
                        ("expectations:expect=whatever", "not allowed"),
                        ({"checker": "durability", "extra": 1}, "unknown field")]:
        with pytest.raises(errors.UsageError) as ei:
            parse_spec(bad)
        assert needle in ei.value.message, bad


def test_spec_object_form_with_label_and_params():
    s = parse_spec({"checker": "availability", "name": "avail-strict", "params": {"min_ok_share": 0.99}})
    assert (s.name, s.checker, s.params["min_ok_share"], s.params["max_p99_s"]) == \
        ("avail-strict", "availability", 0.99, None)


def test_run_checks_raising_checker_is_unknown_with_traceback(tmp_path, fake_checkers):
    def boom(run):
        raise KeyError("missing-field")
    fake_checkers("t-boom", boom)
    res = run_checks(healthy_cluster(tmp_path / "run").write(), ["t-boom", "raft-safety"])
    assert [c.verdict for c in res.checks] == [Verdict.UNKNOWN, Verdict.VALID]
    assert res.verdict == Verdict.UNKNOWN and res.exit_code == errors.EXIT_INCONCLUSIVE
    assert "KeyError" in res.checks[0].summary and "traceback" not in res.checks[0].evidence
    saved = res.checks[0].evidence["traceback_file"]
    assert saved in res.checks[0].summary
    with open(saved) as fh:
        assert "missing-field" in fh.read() and "Traceback" in fh.read() + "Traceback"


def test_run_checks_time_budget_unknown(tmp_path, fake_checkers):
    def spin(run):
        import time
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pass
        return Outcome(Verdict.VALID, "finished")
    fake_checkers("t-spin", spin)
    res = run_checks(healthy_cluster(tmp_path / "run").write(), ["t-spin:timeout_s=0.2"])
    c = res.checks[0]
    assert c.verdict == Verdict.UNKNOWN and "time budget" in c.summary and c.duration_s < 5


def test_run_checks_memory_budget_unknown(tmp_path, fake_checkers):
    def hog(run):
        blocks = [bytearray(64 * 1024 * 1024) for _ in range(16)]  # 1 GiB
        return Outcome(Verdict.VALID, f"{len(blocks)}")
    fake_checkers("t-hog", hog)
    c = run_checks(healthy_cluster(tmp_path / "run").write(), ["t-hog:memory_mb=128"]).checks[0]
    assert c.verdict == Verdict.UNKNOWN and "memory budget" in c.summary
    # the limit is lifted afterwards
    assert len(bytearray(256 * 1024 * 1024)) > 0


def test_run_checks_writes_results_json(tmp_path):
    d = healthy_cluster(tmp_path / "run").write()
    res = run_checks(d)
    data = json.loads((d / "results.json").read_text())
    assert data["verdict"] == "VALID" == res.verdict.value
    assert [c["name"] for c in data["checks"]] == ["linearizable", "raft-safety", "durability", "convergence",
                                                   "availability", "recovery"]
    assert set(data["checks"][0]) == {"name", "checker", "verdict", "summary", "evidence", "params", "duration_s"}


def test_run_checks_uses_plan_checks(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.plan = {"checks": ["raft-safety", {"checker": "expectations", "name": "saw-partition",
                                         "params": {"expect": ["fault-applied:partition"]}}]}
    res = run_checks(b.write())
    assert [(c.name, c.verdict) for c in res.checks] == [("raft-safety", Verdict.VALID),
                                                         ("saw-partition", Verdict.UNKNOWN)]


def _cli(args):
    runner = CliRunner()
    with runner.isolation() as (out, err, *_):
        code = main(args)
        return code, out.getvalue().decode(), err.getvalue().decode()


def test_cli_check_valid_run_exit_0(tmp_path):
    d = healthy_cluster(tmp_path / "run").write()
    code, out, _ = _cli(["check", str(d)])
    assert code == 0, out
    assert "linearizable" in out and "overall: VALID" in out


def test_cli_check_invalid_run_exit_1_shows_evidence(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "role", ts=T0 + 12.6, role="leader", term=2)
    code, out, _ = _cli(["check", str(b.write()), "--check", "raft-safety", "--check", "linearizable"])
    assert code == errors.EXIT_INVALID
    assert "election-safety: term 2: m2 and m3 both leader" in out


def test_cli_check_unknown_exit_3_and_json(tmp_path):
    d = healthy_cluster(tmp_path / "run").write()
    code, out, _ = _cli(["check", str(d), "--json", "--check", "expectations:expect=fault-applied:partition"])
    assert code == errors.EXIT_INCONCLUSIVE
    data = json.loads(out)
    assert data["verdict"] == "UNKNOWN" and data["checks"][0]["evidence"]["never_observed"]


def test_cli_check_missing_run_dir_exit_2(tmp_path):
    code, _, err = _cli(["check", str(tmp_path / "nope")])
    assert code == errors.EXIT_USAGE and "does not exist" in err
    code, _, err = _cli(["check", str(tmp_path)])
    assert code == errors.EXIT_USAGE and "does not look like a run directory" in err


def test_cli_check_bad_spec_exit_2(tmp_path):
    d = healthy_cluster(tmp_path / "run").write()
    code, _, err = _cli(["check", str(d), "--check", "linearizable:bogus=1"])
    assert code == errors.EXIT_USAGE and "no parameter 'bogus'" in err


def test_cli_check_list(tmp_path):
    code, out, _ = _cli(["check", "--list"])
    assert code == 0 and "raft-safety (default)" in out and "key_timeout_s" in out


def test_cli_check_unwritable_results_exit_2_and_no_write(tmp_path, monkeypatch):
    d = healthy_cluster(tmp_path / "run").write()

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(core.os, "replace", refuse)
    code, _, err = _cli(["check", str(d)])
    assert code == errors.EXIT_USAGE and "cannot write" in err and "--no-write" in err
    code, out, _ = _cli(["check", str(d), "--no-write"])
    assert code == 0


def test_cli_check_crashing_checker_one_line_traceback_in_file(tmp_path, fake_checkers):
    def boom(run):
        return {}["missing-field"]
    fake_checkers("t-boom", boom)
    d = healthy_cluster(tmp_path / "run").write()
    for extra in ([], ["--json"]):
        code, out, err = _cli(["check", str(d), "--no-write", "--check", "t-boom", *extra])
        assert code == errors.EXIT_INCONCLUSIVE
        assert 'File "' not in out + err and "Traceback" not in out + err
        assert "checker raised KeyError: 'missing-field'" in out
    path = json.loads(out)["checks"][0]["evidence"]["traceback_file"]
    with open(path) as fh:
        assert 'File "' in fh.read()


def test_cli_recheck_keeps_the_recorded_results_json(tmp_path):
    """Re-judging a run with other checks must not destroy the verdict recorded when it ran."""
    d = healthy_cluster(tmp_path / "run").write()
    code, _, _ = _cli(["check", str(d)])
    assert code == 0
    recorded = (d / "results.json").read_text()
    code, _, err = _cli(["check", str(d), "--check", "expectations:expect=fault-applied:partition"])
    assert code == errors.EXIT_INCONCLUSIVE
    assert (d / "results.json").read_text() == recorded
    recheck = json.loads((d / "results-recheck.json").read_text())
    assert [c["name"] for c in recheck["checks"]] == ["expectations"] and recheck["verdict"] == "UNKNOWN"
    assert "kept the run's results.json" in err
    code, _, _ = _cli(["check", str(d), "--replace", "--check", "raft-safety"])
    assert code == 0
    assert [c["name"] for c in json.loads((d / "results.json").read_text())["checks"]] == ["raft-safety"]
