"""The experiment commands at the CLI boundary: exit codes, one-line errors, every problem printed,
and a JUnit file even when nothing could start."""

from __future__ import annotations

import json
from pathlib import Path

from chaos import cli

ROOT = Path(__file__).resolve().parents[2]


def test_cli_validate_json_lists_every_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: t\nworkload: {clnts: 2, keys: 0}\n")
    assert cli.main(["validate", "--json", str(bad), str(ROOT / "experiments" / "leader-isolated.yaml")]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == 2 and out["invalid"] == 1
    assert {p["path"] for p in out["problems"]} == {"workload.clnts", "workload.keys"}
    assert all(p["line"] == 3 for p in out["problems"])


def test_cli_run_invalid_file_exits_2_prints_every_problem_and_writes_an_error_junit(tmp_path, capsys):
    junitparser = __import__("junitparser")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: t\nworkload: {clnts: 2, keys: 0}\n")
    junit = tmp_path / "j.xml"
    assert cli.main(["run", str(bad), "--junit", str(junit)]) == 2
    err = capsys.readouterr().err
    assert "workload.clnts" in err and "workload.keys" in err and "Traceback" not in err
    xml = junitparser.JUnitXml.fromfile(str(junit))
    cases = [c for suite in xml for c in suite]
    assert len(cases) == 1 and cases[0].name == "bad.harness"
    assert cases[0].result and cases[0].result[0].__class__.__name__ == "Error"


def test_cli_run_unknown_plant_and_missing_file(tmp_path, capsys):
    f = str(ROOT / "experiments" / "leader-isolated.yaml")
    assert cli.main(["run", f, "--plant", "no_such_bug"]) == 2
    assert "no such planted bug" in capsys.readouterr().err
    assert cli.main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["run"]) == 2


def test_cli_schema_prints_the_published_schema(capsys):
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((ROOT / "experiments" / "schema.json").read_text())


def test_cli_replay_refuses_a_directory_without_a_plan(tmp_path, capsys):
    assert cli.main(["replay", str(tmp_path)]) == 2
    assert "plan.json" in capsys.readouterr().err


def test_cli_run_empty_file_says_so_once(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert cli.main(["run", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("the file is empty") == 1 and "Traceback" not in err
