"""The `chaos` command line: the one boundary where errors become messages and exit codes.

Owns: the click group, global options, error-to-exit-code mapping, registration of subcommands.
Subcommands live in `chaos/cmd_*.py` modules, each exporting click commands; they raise
`chaos.errors.ChaosError` subclasses and never call `sys.exit` themselves.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from chaos import errors

# Modules that contribute subcommands. Each must define `COMMANDS`, a list of click commands.
_COMMAND_MODULES = ("chaos.cmd_cluster", "chaos.cmd_check", "chaos.cmd_experiment", "chaos.cmd_report",
                    "chaos.cmd_shrink", "chaos.cmd_node")

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="chaos-swarm", prog_name="chaos")
def cli() -> None:
    """Chaos-test a Swarm-style cluster (Raft managers, SWIM workers, Toxiproxy on every link).

    \b
    Exit codes:
      0  every check VALID           3  inconclusive (UNKNOWN, or an expectation never seen)
      1  a check INVALID             4  environment or harness error (Docker, Toxiproxy, fault)
      2  bad command line or file    5  the cluster refused a `chaos node` operation
    130  interrupted (after cleanup)
    """


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet
                continue
            raise
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, map errors to one line + hint + exit code. Never a traceback.

    A command reports a verdict by returning an int exit code (None means 0).
    """
    try:
        result = cli.main(args=argv, prog_name="chaos", standalone_mode=False)
    except errors.ChaosError as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return errors.EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return errors.EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 -- a bug of ours: one line, the traceback kept in a file
        path = _save_traceback()
        click.secho(f"error: internal error: {exc.__class__.__name__}: {exc}", fg="red", err=True)
        click.echo(f"hint: this is a bug in chaos; the traceback is in {path}", err=True)
        return errors.EXIT_ENVIRONMENT
    return int(result or 0)


def _save_traceback() -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="chaos-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(traceback.format_exc())
    return path


if __name__ == "__main__":
    sys.exit(main())
