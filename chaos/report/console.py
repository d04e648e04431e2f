"""Console helpers for the runner: the verdict table and the closing summary lines.

Owns: `verdict_table` (a rich Table, one line of evidence per check) and `summary_lines` (run
directory, report path, operations by outcome, replay command). A cas refused on a value mismatch
is named `refused` (a served answer), never counted among the failures. Data from the run is never interpreted as rich markup:
cells are `rich.text.Text` objects, so `[red]` in a summary prints as itself.

Must not import: docker, requests, matplotlib, the runner.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from chaos.report import evidence as evi
from chaos.report.html import REPORT_NAME
from chaos.report.load import load

STYLES = {"VALID": "green", "INVALID": "bold red", "UNKNOWN": "yellow", "SKIPPED": "dim"}


def verdict_table(results_json: dict) -> Table:
    """Checks of a results.json object: check, verdict, time, and one line (summary + evidence)."""
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("check")
    table.add_column("verdict")
    table.add_column("time", justify="right")
    table.add_column("evidence", overflow="fold")
    checks = results_json.get("checks") if isinstance(results_json, dict) else None
    for c in checks if isinstance(checks, list) else []:
        if not isinstance(c, dict):
            continue
        v = evi.verdict_of(c)
        d = c.get("duration_s")
        table.add_row(Text(str(c.get("name", "?"))), Text(v, style=STYLES.get(v, "")),
                      Text(f"{d:.2f}s" if isinstance(d, (int, float)) else ""), Text(evi.brief(c)))
        for ex in evi.split_expectations(c) or []:
            ev = "VALID" if ex.observed else "UNKNOWN"
            table.add_row(Text(f"  expect {ex.name}"), Text(ev, style=STYLES[ev]), Text(""),
                          Text(("observed: " if ex.observed else "never observed: ") + ex.detail))
    return table


def operations_line(counts) -> str | None:
    """`operations: 3,109 ok, 319 refused (cas value mismatch: served), 0 fail, 23 info` from run.json
    `history_counts` (its `fail` counts history lines, refused cas included); None without counts.
    A run recorded before `refused` was counted says its fail may include refused cas."""
    if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in ("ok", "fail", "info")):
        return None
    refused = counts.get("refused")
    if not isinstance(refused, int):
        return (f"operations: {counts['ok']:,} ok, {counts['fail']:,} fail (refused cas not counted apart "
                f"in this run), {counts['info']:,} info")
    return (f"operations: {counts['ok']:,} ok, {refused:,} refused (cas value mismatch: served), "
            f"{counts['fail'] - refused:,} fail, {counts['info']:,} info")


def summary_lines(run_dir: str | Path) -> list[str]:
    """What to print after a run: where its files are and how to replay it (plain strings)."""
    view = load(run_dir, timeline=False)
    out = [f"run directory: {view.path}"]
    report = view.path / REPORT_NAME
    out.append(f"report: {report}" if report.exists() else f"report: not written (chaos report {view.path})")
    junit = view.path / "junit.xml"
    if junit.exists():
        out.append(f"junit: {junit}")
    if view.plant:
        out.append(f"PLANTED BUG(S): {', '.join(view.plant)} -- this run is NOT a real result")
    if view.run.get("control") is True:
        out.append("CONTROL RUN: the faults were planned and logged as `sham`, never applied -- a test of the experiment, not a result")
    if view.partial:
        out.append(f"PARTIAL RUN: {view.run.get('partial_reason') or 'no reason recorded'}")
    ops = operations_line(view.run.get("history_counts"))
    if ops:
        out.append(ops)
    replay = view.run.get("replay")
    out.append(f"replay: {replay}" if replay else "replay: (no replay command in run.json)")
    out += [f"note: {n}" for n in view.notes]
    return out
