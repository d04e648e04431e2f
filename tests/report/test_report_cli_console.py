"""`chaos report RUN_DIR` at the CLI boundary (exit codes, one-line errors) and the console helpers
the runner prints with (rich table without markup injection, summary lines)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rich.console import Console

from chaos import cli, errors
from chaos.report import synthetic
from chaos.report.console import operations_line, summary_lines, verdict_table


def test_report_cli_writes_and_prints_the_path(tmp_path, capsys):
    d = synthetic.make_run(tmp_path / "run", ops=200)
    assert cli.main(["report", str(d)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(d / "report.html") and (d / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize("setup, fragment", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "does not look like a run directory"),
    (lambda p: (p / "file").write_text("x") and p / "file", "is not a directory"),
    (None, "missing argument RUN_DIR"),
])
def test_report_cli_unusable_run_directory_exits_2_with_one_line(tmp_path, capsys, setup, fragment):
    args = ["report"] + ([str(setup(tmp_path))] if setup else [])
    assert cli.main(args) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err.splitlines()[0]
    assert "Traceback" not in err


def test_report_cli_report_cannot_be_written(tmp_path, capsys):
    d = synthetic.make_run(tmp_path / "run", ops=50)
    (d / "report.html").mkdir()  # (works as root too, unlike a read-only directory)
    assert cli.main(["report", str(d)]) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the report into") and "Traceback" not in err


def test_report_cli_help_has_an_example(capsys):
    assert cli.main(["report", "--help"]) == 0
    assert "chaos report runs/" in capsys.readouterr().out.split("Example:")[1]


def _render(table) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_report_console_table_never_reads_data_as_markup():
    results = synthetic.make_results("INVALID")
    results["checks"][0]["summary"] = "value [bold red]x[/] and [link=http://e]y[/link]"
    results["checks"][0]["name"] = "[green]fake[/green]"
    text = _render(verdict_table(results))
    assert "value [bold red]x[/] and [link=http://e]y[/link]" in text
    assert "[green]fake[/green]" in text
    assert "expect leader-changed" in text and "INVALID" in text


def test_report_console_table_one_evidence_line_per_check():
    results = {"verdict": "INVALID", "checks": [{
        "name": "raft-safety", "checker": "raft-safety", "verdict": "INVALID", "summary": "violated: election-safety",
        "evidence": {"violations": {"election-safety": [{"detail": "term 4: m1 and m2 both leader"}]}},
        "duration_s": 0.5}]}
    text = _render(verdict_table(results))
    row = next(line for line in text.splitlines() if "raft-safety" in line)
    assert "violated: election-safety — election-safety: term 4: m1 and m2 both leader" in row
    assert _render(verdict_table({"garbage": 1})).count("\n") <= 4  # header only, no crash


def test_report_console_summary_lines(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={"plant": ["stale-read"]})
    lines = summary_lines(d)
    assert lines[0] == f"run directory: {d}"
    assert lines[1].startswith("report: not written")
    assert "PLANTED BUG(S): stale-read -- this run is NOT a real result" in lines
    assert lines[-1] == "replay: chaos run experiments/leader-partition.yaml --seed 7"
    (d / "report.html").write_text("x")
    assert summary_lines(d)[1] == f"report: {d / 'report.html'}"


def test_report_console_names_refused_cas_apart_from_failures(tmp_path):
    """run.json history_counts `fail` counts history lines (refused cas included): the console
    shows the refused apart and only the rest as fail."""
    counts = {"invoke": 130, "ok": 100, "fail": 26, "info": 4, "refused": 24}
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={"history_counts": counts})
    line = next(x for x in summary_lines(d) if x.startswith("operations:"))
    assert line == "operations: 100 ok, 24 refused (cas value mismatch: served), 2 fail, 4 info"
    old = {k: v for k, v in counts.items() if k != "refused"}
    assert "not counted apart" in operations_line(old) and operations_line(None) is None


def test_report_console_summary_marks_a_control_run(tmp_path):
    d = synthetic.make_run(tmp_path / "run", ops=50, run_extra={"control": True})
    assert any(line.startswith("CONTROL RUN: the faults were planned and logged as `sham`") for line in summary_lines(d))
    d2 = synthetic.make_run(tmp_path / "run2", ops=50)
    assert not any("CONTROL" in line for line in summary_lines(d2))


def test_report_package_imports_nothing_that_talks_to_docker():
    """DESIGN.md section 2: reports read only the run directory, so they work on any stored run."""
    code = ("import sys\n"
            "import chaos.report.html, chaos.report.junit, chaos.report.console, chaos.report.synthetic\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'requests', 'click')\n"
            "             or m in ('chaos.runner', 'chaos.nemesis') or m.startswith('chaos.env')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
