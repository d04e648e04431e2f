"""`chaos demo`: the built-in end-to-end run (chaos/demo.py) as a command.

Owns: the click command (exported as `COMMANDS`) and its console output. The exit code is the
verdict's (0 VALID, 1 INVALID, 3 UNKNOWN); errors are raised as chaos.errors exceptions.
Must not import: chaos.cli.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from rich.console import Console

from chaos.cmd_check import render
from chaos.demo import DemoRun, DemoSpec
from chaos.env.progress import RichProgress


@click.command("demo")
@click.option("--seed", type=int, default=None, help="seed for every random choice (printed; default: random)")
@click.option("--managers", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option("--workers", type=click.IntRange(0, 50), default=3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="parent directory of the run directory")
@click.option("--fault-s", type=click.FloatRange(1, 600), default=8.0, show_default=True,
              help="how long the leader stays isolated")
@click.option("--name", default="demo", show_default=True, help="cluster name (runs under different names can overlap)")
@click.option("--keep", is_flag=True, help="leave the cluster up afterwards (remove with `chaos down --name NAME`)")
def demo(seed, managers, workers, out, fault_s, name, keep) -> int:
    """Run one real experiment end to end: isolate the leader, heal, judge.

    Brings up a cluster (building the node image if needed), creates a service, records a client
    workload through Toxiproxy, black-holes every link of the current leader (verified), heals
    (verified), waits for recovery, collects journals and final stores, runs the checkers, writes
    the run directory and tears the cluster down. Re-judge it later with `chaos check RUN_DIR`.

    \b
    Example:
      chaos demo --seed 7
      chaos demo --workers 5 --fault-s 15 --keep
    """
    if seed is None:
        seed = secrets.randbelow(2**31)
    if managers % 2 == 0:
        raise click.BadParameter("managers must be odd (a Raft group of 2k+1)", param_hint="--managers")
    spec = DemoSpec(seed=seed, managers=managers, workers=workers, fault_s=fault_s, name=name, keep=keep)
    progress = RichProgress()
    try:
        run = DemoRun(spec, out, progress, say=lambda text: click.echo(text, err=True))
        results = run.run()
    finally:
        progress.close()
    render(results, Console(markup=False, emoji=False, highlight=False))
    click.echo(f"run directory: {run.run_dir}")
    click.echo(f"re-judge: chaos check {run.run_dir}")
    click.echo(f"seed: {seed} (again: chaos demo --seed {seed})")
    return results.exit_code


COMMANDS = [demo]
