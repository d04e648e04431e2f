"""Experiment commands: `validate`, `schema`, `plan`, `run`, `replay`, and `demo` (a thin alias that
runs the shipped leader-isolation experiment, so there is one code path).

Owns: the click commands (exported as `COMMANDS`) and their console output. Errors are raised as
chaos.errors exceptions; the exit code of `run` is the worst outcome over files and seeds.
Must not import: chaos.cli.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chaos.cli_backend import backend_options, load_inventory
from chaos.errors import EXIT_OK, EXIT_USAGE, RunDirError, UsageError
from chaos.experiment import plan as plan_mod
from chaos.experiment import schema as schema_mod
from chaos.experiment.loader import ExperimentError, Loaded, load_file, load_text

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
DEMO_FILE = "leader-isolated.yaml"


def _err_console() -> Console:
    return Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


def _out_console() -> Console:
    return Console(highlight=False, markup=False, emoji=False, soft_wrap=True)


def _print_problems(problems, console: Console) -> None:
    for p in problems:
        style = "red" if p.severity == "error" else "yellow"
        console.print(Text(str(p), style=style))


def _load(path: str) -> Loaded:
    try:
        loaded = load_file(path)
    except ExperimentError as exc:
        # every problem, then the one-line error; a lone error is that line alone (not twice)
        if len(exc.problems) > 1:
            _print_problems(exc.problems, _err_console())
        raise
    if loaded.warnings:
        _print_problems(loaded.warnings, _err_console())
    return loaded


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print every problem as JSON.")
def validate(files: tuple[Path, ...], as_json: bool) -> int:
    """Check experiment files: every problem at once, with file:line:column, YAML path and a hint.

    Exit 0 when every file is valid (warnings allowed), 2 otherwise.

    \b
    Example:
      chaos validate experiments/*.yaml
    """
    out: list[dict] = []
    bad = 0
    con = _out_console()
    for f in files:
        try:
            loaded = load_file(f)
            problems = list(loaded.warnings)
        except ExperimentError as exc:
            problems = exc.problems
            bad += 1
        except UsageError as exc:
            problems = []
            bad += 1
            out.append({"file": str(f), "line": None, "col": None, "path": "", "message": exc.message,
                        "hint": exc.hint, "severity": "error"})
            if not as_json:
                con.print(Text(f"{f}: error: {exc.message}", style="red"))
            continue
        out.extend(p.as_dict() for p in problems)
        if not as_json:
            _print_problems(problems, con)
            if not any(p.severity == "error" for p in problems):
                con.print(Text(f"{f}: ok", style="green"))
    if as_json:
        click.echo(json.dumps({"files": len(files), "invalid": bad, "problems": out}, indent=2))
    return EXIT_USAGE if bad else EXIT_OK


@click.command("schema")
def schema() -> int:
    """Print the experiment file format (version 1) as JSON Schema, for editors.

    \b
    Example:
      chaos schema > experiment.schema.json
    """
    click.echo(json.dumps(schema_mod.json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


@click.command("plan")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="seed (default: random, printed)")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as canonical JSON (what plan.json holds).")
def plan(file: Path, seed: int | None, as_json: bool) -> int:
    """Expand an experiment into its concrete timeline, without touching Docker.

    Same file and seed give the same plan, byte for byte.

    \b
    Example:
      chaos plan experiments/leader-isolated.yaml --seed 7
    """
    loaded = _load(str(file))
    seed = secrets.randbelow(2**31) if seed is None else seed
    p = plan_mod.expand(loaded.experiment, seed)
    if as_json:
        sys.stdout.write(plan_mod.canonical(p).decode())
    else:
        for line in plan_mod.render(p):
            click.echo(line)
    return EXIT_OK


def _run_one(loaded: Loaded, seed: int, out: Path, name: str | None, keep: bool, plan: dict | None = None,
             replay_of: str | None = None, plant: tuple[str, ...] = (), backend: str | None = None,
             inventory=None, control: bool = False):
    from chaos.env.progress import RichProgress
    from chaos.live import LiveDisplay
    from chaos.runner import RunOptions, Runner, command_line

    err = _err_console()
    p = plan if plan is not None else plan_mod.expand(loaded.experiment, seed)
    p = plan_mod.with_plant(p, list(plant))
    live = LiveDisplay(loaded.experiment.name, p["schedule_bound_s"] + p["recovery"]["window_s"])
    progress = RichProgress()
    opts = RunOptions(seed=seed, out_dir=out, cluster_name=name, keep=keep, command=command_line(), plan=p,
                      replay_of=replay_of, say=lambda s: err.print(Text(s)), progress=progress, live=live,
                      backend=backend, inventory=inventory, control=control)
    runner = Runner(loaded, opts)
    try:
        outcome = runner.execute()
    except KeyboardInterrupt:
        err.print(Text(f"run directory (partial): {runner.run_dir}"))
        raise
    _finish(outcome)
    return outcome


def _finish(outcome) -> None:
    from chaos.cmd_check import render

    con = _out_console()
    if outcome.results is not None:
        render(outcome.results, Console(highlight=False, emoji=False))
    elif outcome.error is not None:
        con.print(Text(f"harness error: {outcome.error.message}", style="red"))
        if outcome.error.hint:
            con.print(Text(f"hint: {outcome.error.hint}"))
    _reports(outcome)
    if outcome.run.get("control") is True:
        con.print(Text("CONTROL RUN: the faults were planned and logged as `sham`, never applied; a VALID verdict "
                       "here means the experiment's expectations can be met without any fault", style="yellow"))
    con.print(Text(f"run directory: {outcome.run_dir}"))
    con.print(Text(f"replay: {outcome.run.get('replay')}"))
    con.print(Text(f"seed: {outcome.run.get('seed')} (the seed fixes the plan and the harness's choices, not "
                   f"the cluster's timing: again: {outcome.run.get('again')})"))


def _reports(outcome) -> None:
    """JUnit and HTML from the run directory when the report package is present."""
    try:
        from chaos.report import html as html_mod
        from chaos.report import junit as junit_mod
    except ImportError:
        return
    try:
        junit_mod.write_junit([outcome.run_dir], outcome.run_dir / "junit.xml")
        path = html_mod.write_report(outcome.run_dir)
        _out_console().print(Text(f"report: {path}"))
        from chaos.report.console import operations_line  # ok / refused cas / fail / info
        ops = operations_line(outcome.run.get("history_counts"))
        if ops:
            _out_console().print(Text(ops))
    except Exception as exc:  # noqa: BLE001 -- a report failure must not hide the verdict
        _err_console().print(Text(f"warning: the report could not be written: {type(exc).__name__}: {exc}"))


def _summary(outcomes, out: Path) -> None:
    """With several runs: a table per run, the flake rate of each check, and summary.json in --out."""
    if len(outcomes) < 2:
        return
    rates: dict[str, list[int]] = {}
    for o in outcomes:
        for c in (o.results.checks if o.results is not None else []):
            rates.setdefault(c.name, [0, 0])
            rates[c.name][1] += 1
            if c.verdict.value != "VALID":
                rates[c.name][0] += 1
    summary = {"runs": [{"experiment": o.run.get("experiment"), "seed": o.run.get("seed"),
                         "verdict": o.results.verdict.value if o.results is not None else "ERROR",
                         "exit_code": o.exit_code, "duration_s": o.run.get("duration_s"),
                         "failing": [c.name for c in o.results.checks if c.verdict.value != "VALID"]
                         if o.results is not None else [], "run_dir": str(o.run_dir)} for o in outcomes],
               "flake_rate": {k: {"not_valid": v[0], "runs": v[1], "rate": round(v[0] / v[1], 3)}
                              for k, v in sorted(rates.items())}}
    path = out / f"summary-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    t = Table(title="runs", show_header=True, header_style="bold")
    for col in ("experiment", "seed", "verdict", "failing checks", "duration", "run directory"):
        t.add_column(col)
    for o in outcomes:
        if o.results is not None:
            verdict = o.results.verdict.value
            failing = ", ".join(c.name for c in o.results.checks if c.verdict.value != "VALID") or "-"
        else:
            verdict, failing = "ERROR", (o.error.message[:60] if o.error else "-")
        t.add_row(Text(str(o.run.get("experiment"))), Text(str(o.run.get("seed"))), Text(verdict), Text(failing),
                  Text(f"{o.run.get('duration_s') or 0:.0f}s"), Text(str(o.run_dir)))
    con = Console(highlight=False, emoji=False, soft_wrap=True)
    con.print(t)
    for check, r in summary["flake_rate"].items():
        con.print(Text(f"{check}: not VALID in {r['not_valid']} of {r['runs']} runs ({r['rate']:.0%})"))
    con.print(Text(f"summary: {path}"))


@click.command("run")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="seed of the first run (default: random, printed); --repeat uses seed, seed+1, ...")
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True, help="runs per file, one seed each")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="parent of the run directories")
@click.option("--name", default=None, help="cluster name (default: a fresh one per run, so runs never collide)")
@click.option("--keep-cluster", "keep", is_flag=True, help="leave the cluster up (remove: chaos down --name NAME)")
@click.option("--plant", "plant", multiple=True, metavar="BUG",
              help="start the agents with a planted bug (repeatable; see --list-plants): proves that "
                   "an experiment catches it; the run is marked planted everywhere")
@click.option("--list-plants", is_flag=True, help="list the bugs that can be planted, then exit")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write one JUnit file for every run here (one testsuite per run); written even when "
                   "nothing could start, so a CI gate never sees a missing report")
@click.option("--control", is_flag=True,
              help="control run: everything runs but the faults are only planned and logged as `sham`, never "
                   "applied; an experiment whose expectations are met anyway proves nothing (expect exit 3)")
@backend_options
def run(files, seed, repeat, out, name, keep, plant, list_plants, junit_path, control, backend, inventory) -> int:
    """Run experiment files end to end: validate, plan, cluster up, workload and faults, final heal,
    recovery, collect, judge, tear down. One run directory per file and seed.

    Exit code: the worst outcome (harness error 4, INVALID 1, inconclusive 3, else 0; 130 when
    interrupted, after the cluster is removed).

    \b
    Example:
      chaos run experiments/leader-isolated.yaml --seed 7
      chaos run experiments/*.yaml --repeat 3
      chaos run experiments/leader-killed.yaml --backend swarm --inventory hosts.yaml
      chaos run experiments/leader-isolated.yaml --seed 1 --control
    """
    try:
        return _run_files(files, seed, repeat, out, name, keep, plant, list_plants, junit_path, backend, inventory,
                          control=control)
    except UsageError as exc:
        if junit_path is not None:
            from chaos.report.junit import write_error_junit
            label = Path(files[0]).stem if files else "chaos-run"
            write_error_junit(junit_path, label, exc.message, {"files": " ".join(map(str, files))})
        raise


def _run_files(files, seed, repeat, out, name, keep, plant, list_plants, junit_path, backend=None,
               inventory_path=None, control: bool = False) -> int:
    from chaos.experiment.loader import plant_registry
    from chaos.runner import exit_code_of

    known = plant_registry()
    if list_plants:
        for bug, text in sorted(known.items()):
            click.echo(f"{bug:<28} {text}")
        return EXIT_OK
    for bug in plant:
        if bug not in known:
            raise UsageError(f"--plant {bug}: no such planted bug", hint="`chaos run --list-plants` lists them")
    if not files:
        raise UsageError("give at least one experiment file", hint="e.g. chaos run experiments/leader-isolated.yaml")
    loaded = [_load(str(f)) for f in files]  # every file is validated before anything starts
    swarm = backend == "swarm" or (backend is None and any(lf.experiment.cluster.backend == "swarm" for lf in loaded))
    inventory = load_inventory("swarm" if swarm else (backend or "local"), inventory_path)
    if name is not None and (len(loaded) > 1 or repeat > 1):
        raise UsageError("--name names one cluster; it cannot be used with several files or --repeat")
    seed = secrets.randbelow(2**31) if seed is None else seed
    outcomes = []
    try:
        for lf in loaded:
            for k in range(repeat):
                outcomes.append(_run_one(lf, seed + k, out, name, keep, plant=plant, backend=backend,
                                         inventory=inventory, control=control))
    finally:  # also when interrupted: the runs so far are reported
        if junit_path is not None and outcomes:
            from chaos.report.junit import write_junit
            write_junit([o.run_dir for o in outcomes], junit_path)
    _summary(outcomes, out)
    return exit_code_of(outcomes)


@click.command("replay")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True)
@click.option("--name", default=None, help="cluster name (default: a fresh one)")
@click.option("--keep-cluster", "keep", is_flag=True)
@backend_options
def replay(run_dir: Path, out: Path, name: str | None, keep: bool, backend, inventory) -> int:
    """Re-execute a stored run's plan (plan.json, not a re-expansion of its seed), so a failure can be
    reproduced after the experiment file or the code changed.

    \b
    Example:
      chaos replay runs/leader-isolated-20261130-010203-seed7
    """
    plan_path, exp_path = run_dir / "plan.json", run_dir / "experiment.yaml"
    for p in (plan_path, exp_path):
        if not p.is_file():
            raise RunDirError(f"{p}: missing; a run directory written by `chaos run` holds plan.json and "
                              f"experiment.yaml")
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        if not isinstance(plan, dict) or plan.get("plan_version") != plan_mod.PLAN_VERSION:
            raise ValueError("not a version-1 plan")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{plan_path}: unreadable plan ({exc})") from None
    text = exp_path.read_text(encoding="utf-8", errors="replace")
    exp, problems = load_text(text, str(exp_path))
    if exp is None:
        raise ExperimentError(problems)
    import hashlib
    loaded = Loaded(exp, exp_path, text, hashlib.sha256(text.encode()).hexdigest(), tuple(problems))
    swarm = backend == "swarm" or (backend is None and exp.cluster.backend == "swarm")
    inv = load_inventory("swarm" if swarm else (backend or "local"), inventory)
    outcome = _run_one(loaded, int(plan["seed"]), out, name, keep, plan=plan, replay_of=str(run_dir),
                       backend=backend, inventory=inv, control=_was_control(run_dir))
    return outcome.exit_code


def _was_control(run_dir: Path) -> bool:
    """A replay of a control run is a control run too (run.json `control`)."""
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("control") is True
    except (OSError, ValueError, AttributeError):
        return False


@click.command("demo")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="seed (default: random, printed)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True)
def demo(seed, out) -> int:
    """Run the shipped leader-isolation experiment (experiments/leader-isolated.yaml): an alias of
    `chaos run experiments/leader-isolated.yaml`.

    \b
    Example:
      chaos demo --seed 7
    """
    path = EXPERIMENTS_DIR / DEMO_FILE
    if not path.is_file():
        raise UsageError(f"{path}: the shipped experiment is missing", hint="run from a checkout of chaos")
    seed = secrets.randbelow(2**31) if seed is None else seed
    return _run_one(_load(str(path)), seed, out, None, False).exit_code


COMMANDS = [validate, schema, plan, run, replay, demo]
