"""`chaos export` (a run's plan as a standalone experiment file) and `chaos shrink` (the smallest
scenario that still fails the same check).

Owns: the click commands (exported as `COMMANDS`) and their console output. The export itself is
chaos/experiment/export.py; the search is chaos/shrink.py (pure, driven by a `run(doc)` callable);
running candidates on real clusters is chaos/shrink_run.py.
Must not import: chaos.cli.
"""

from __future__ import annotations

from pathlib import Path

import click

from chaos.errors import EXIT_OK, UsageError


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the file here (default: print it)")
def export(run_dir: Path, out: Path | None) -> int:
    """Write a run's plan as a standalone experiment file: every random block's faults written out
    (a `drawn:` block), selectors as written (`leader`), the cluster, workload and checks as they
    ran, the seed and the original file's sha256 in a comment. Running it with that seed plans
    exactly what the run ran (checked before it is written).

    \b
    Example:
      chaos export runs/random-soak-20261207-011500-seed3 --out soak-seed3.yaml
      chaos run soak-seed3.yaml --seed 3
    """
    from chaos.experiment.export import export_run

    text, facts = export_run(run_dir)
    if out is None:
        click.echo(text, nl=False)
        return EXIT_OK
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc.strerror}") from None
    click.echo(f"{out}: {len(facts.plan['faults'])} faults; run it with: chaos run {out} --seed {facts.seed}",
               err=True)
    return EXIT_OK


def _budget(ctx, param, value) -> float:
    from chaos.experiment.schema import parse_duration
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter("the budget must be above 0")
    return seconds


@click.command("shrink")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--tries", type=click.IntRange(1, 20), default=3, show_default=True,
              help="runs per candidate: it counts as failing when one of them fails; the result is "
                   "confirmed by this many more")
@click.option("--budget", "budget_s", default="30m", show_default=True, callback=_budget,
              help="wall-clock budget of the whole shrink (500ms, 90s, 30m, 1h); no candidate is started "
                   "that would end after it")
@click.option("--check", "check", default=None, metavar="NAME",
              help="the check to keep failing (default: the first INVALID check of the run)")
def shrink(run_dir: Path, tries: int, budget_s: float, check: str | None) -> int:
    """Find the smallest scenario that still fails the same check as a failing run: fewer faults
    (delta debugging over the schedule), faults earlier and shorter, a smaller cluster, a lighter
    workload, shorter phases. Every candidate is a normal run directory under RUN_DIR/shrink/; the
    result is RUN_DIR/shrink/minimal.yaml, with the log shrink.jsonl.

    A candidate counts as failing when the check is INVALID in at least 1 of --tries runs; the
    result is run --tries more times and the reproduction rate printed. Ctrl-C keeps the smallest
    failing scenario found so far and removes every cluster it started.

    Exit code: 0 a smaller scenario failed again in a confirmation run; 3 nothing smaller was
    confirmed; 4 stopped on harness errors; 2 bad input (no INVALID check, not a run directory);
    130 interrupted.

    \b
    Example:
      chaos run experiments/random-soak.yaml --seed 3 --plant stale_read     # exit 1
      chaos shrink runs/random-soak-20261207-011500-seed3 --budget 30m
      cp runs/random-soak-20261207-011500-seed3/shrink/minimal.yaml experiments/regress-stale-read.yaml
    """
    from chaos.shrink_run import render, shrink_run_dir

    done = shrink_run_dir(run_dir, tries=tries, budget_s=budget_s, check=check)
    for line in render(done):
        click.echo(line)
    return done.exit_code


COMMANDS = [export, shrink]
