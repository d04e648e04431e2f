"""`chaos report RUN_DIR`: rebuild a run's self-contained HTML report and its PNG plots.

Owns: the `report` click command (exported as `COMMANDS`). Building lives in `chaos.report`; this
module parses options, calls `write_report`, prints the path and optionally opens it. Errors are
raised as `chaos.errors` types for `chaos.cli` (an unreadable run directory: RunDirError, exit 2).

Must not import: docker, requests, the runner.
"""

from __future__ import annotations

import click

from chaos.errors import UsageError


@click.command("report")
@click.argument("run_dir", required=False)
@click.option("--open", "open_it", is_flag=True, help="Open the report in the default browser afterwards.")
def report(run_dir: str | None, open_it: bool) -> int:
    """Rebuild report.html (+ plot-*.png) in RUN_DIR from its files alone; print its path.

    \b
    Example:
      chaos report runs/leader-partition-7 --open
    Exit codes: 0 written, 2 missing or unreadable run directory.
    """
    if not run_dir:
        raise UsageError("missing argument RUN_DIR", hint="chaos report RUN_DIR [--open]")
    from chaos.report.html import write_report

    path = write_report(run_dir)
    click.echo(str(path))
    if open_it:
        click.launch(str(path))
    return 0


COMMANDS = [report]
