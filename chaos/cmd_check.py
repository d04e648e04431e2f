"""`chaos check RUN_DIR`: re-judge a stored run with the current checkers.

Owns: the `check` click command (exported as `COMMANDS`) and the readable rendering of `Results`.
Judging lives in `chaos.checkers`; this module only parses options, calls `run_checks` and formats.
Returns the exit code (0 all VALID, 1 any INVALID, 3 any UNKNOWN); errors are raised as
`chaos.errors` types for `chaos.cli` to turn into messages.

Must not import: docker, toxiproxy, `swarmnode`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chaos.checkers import Results, Verdict, registry, run_checks
from chaos.errors import UsageError

RECHECK_NAME = "results-recheck.json"

_STYLE = {Verdict.VALID: "green", Verdict.INVALID: "bold red", Verdict.UNKNOWN: "yellow"}
_EVIDENCE_LINES = 12


def _evidence_lines(check) -> list[str]:
    """A few readable lines of evidence for INVALID / UNKNOWN checks."""
    ev = check.evidence if isinstance(check.evidence, dict) else {}
    lines: list[str] = []
    for f in ev.get("failed_keys", [])[:3]:  # linearizable
        lines.append(f"key {f['key']}: {f['explanation']}:")
        lines.extend("  (before) " + x for x in f.get("context", [])[-4:])
        lines.extend("  " + x for x in f["counterexample"][-_EVIDENCE_LINES:])
    for rule, items in (ev.get("violations") or {}).items():  # raft-safety
        lines.extend(f"{rule}: {it['detail']}" for it in items[:3])
    for it in ev.get("lost", [])[:5]:  # durability
        lines.append(it["detail"])
    for name, part in (ev.get("parts") or {}).items():  # convergence
        if part.get("verdict") != "VALID":
            lines.append(f"{name}: {part['summary']}")
            lines.extend(f"  {p}" for p in part.get("final_problems", [])[:5])
    for m in ev.get("misses", [])[:5]:  # availability / recovery
        lines.append(m)
    for e in ev.get("never_observed", []):  # expectations
        lines.append(f"never observed: {e} ({ev['expectations'][e]['detail']})")
    if "traceback_file" in ev:  # a checker crashed: the traceback is in a file, never on the console
        lines.append(f"traceback saved in {ev['traceback_file']}")
    return lines[:40]


def render(results: Results, console: Console) -> None:
    """Print the verdict table and evidence. Data (names, summaries, evidence, file names) is never read
    as rich markup or emoji codes: every cell is a `Text` (`history.jsonl:100:` stays as written)."""
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("check")
    table.add_column("verdict")
    table.add_column("time", justify="right")
    table.add_column("summary", overflow="fold")
    for c in results.checks:
        table.add_row(Text(c.name), Text(c.verdict.value, style=_STYLE[c.verdict]), Text(f"{c.duration_s:.2f}s"),
                      Text(c.summary))
    console.print(table)
    for c in results.checks:
        if c.verdict != Verdict.VALID:
            lines = _evidence_lines(c)
            if lines:
                console.print(Text(f"{c.name}:", style=_STYLE[c.verdict]))
                for line in lines:
                    console.print(Text("  " + line))
    if results.record_problems:
        console.print(Text("record problems (the checks that read these parts are not VALID):", style="yellow"))
        for g in results.record_problems[:20]:
            console.print(Text(f"  {g.message}"))
        if len(results.record_problems) > 20:
            console.print(Text(f"  ... and {len(results.record_problems) - 20} more (results.json)"))
    console.print(Text("overall: ") + Text(results.verdict.value, style=_STYLE[results.verdict]))


def _list_checkers() -> str:
    out = []
    for name, d in sorted(registry().items()):
        out.append(f"{name}{' (default)' if d.default else ''}: {d.doc.splitlines()[0] if d.doc else ''}")
        for p in d.params.values():
            out.append(f"    {p.name} ({p.kind}, default {p.default!r}): {p.doc}")
    return "\n".join(out)


@click.command("check")
@click.argument("run_dir", required=False)
@click.option("--check", "checks", multiple=True, metavar="NAME[:k=v,...]",
              help="Run this check (repeatable). Default: plan.json `checks`, else the default set. "
                   "List values are '+'-joined.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json content instead of a table.")
@click.option("--no-write", is_flag=True, help="Do not write any results file into the run directory.")
@click.option("--replace", is_flag=True,
              help="Overwrite the run's own results.json. Without it an existing results.json (the verdict "
                   "recorded when the run ended, which `chaos report` shows) is kept and the new judgement "
                   "goes to results-recheck.json.")
@click.option("--list", "list_checkers", is_flag=True, help="List checkers and their parameters, then exit.")
def check(run_dir: str | None, checks: tuple[str, ...], as_json: bool, no_write: bool, replace: bool,
          list_checkers: bool) -> int:
    """Judge the run directory RUN_DIR with the checkers; write results.json, or
    results-recheck.json when the run already has its results.json (see --replace).

    \b
    Examples:
      chaos check runs/demo-20240101-120000-seed7
      chaos check runs/demo-20240101-120000-seed7 --check linearizable --check durability --json
      chaos check runs/demo-20240101-120000-seed7 --check 'expectations:expect=leader-changed+fault-applied:partition'

    \b
    Exit codes: 0 every check VALID, 1 a check INVALID, 3 a check UNKNOWN (also when a part the
    check needs is missing or damaged: named as FILE:LINE), 2 bad option, or a run directory that
    cannot be read at all (missing, no run.json/history/events/final, run.json not JSON).
    """
    if list_checkers:
        click.echo(_list_checkers())
        return 0
    if not run_dir:
        raise UsageError("missing argument RUN_DIR", hint="chaos check RUN_DIR [--check NAME[:k=v,...]]...")
    out = "results.json"
    if not replace and (Path(run_dir) / "results.json").exists():
        out = RECHECK_NAME
    results = run_checks(run_dir, list(checks) or None, write=not no_write, out=out)
    if as_json:
        click.echo(json.dumps(results.to_json(), indent=2))
    else:
        render(results, Console(soft_wrap=False, width=120, highlight=False, markup=False, emoji=False))
    if not no_write and out == RECHECK_NAME and not as_json:
        click.echo(f"kept the run's results.json; this judgement is in {Path(run_dir) / RECHECK_NAME}", err=True)
    return results.exit_code


COMMANDS = [check]
