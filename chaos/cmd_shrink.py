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


COMMANDS = [export]
