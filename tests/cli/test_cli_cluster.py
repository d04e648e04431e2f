"""The cluster commands at the CLI boundary, without a working engine: help texts, usage errors,
a missing engine (exit 4, one line + hint, no traceback), shell completion.

Drives `chaos.cli.main` (the real error boundary) in-process, and the console entry point in a
subprocess where the environment (DOCKER_HOST, _CHAOS_COMPLETE) matters.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from chaos import cli, errors

COMMANDS = [["up"], ["status"], ["logs"], ["down"], ["cleanup"], ["doctor"], ["image"], ["image", "build"]]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaos.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_cli_help_every_cluster_command_has_an_example(command, capsys):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "chaos " + command[0] in out.split("Example:")[1]


@pytest.mark.parametrize("args, fragment", [
    (["up", "--managers", "2"], "--managers must be odd"),
    (["up", "--managers", "11"], "11"),
    (["up", "--name", "Not Valid"], "cluster name"),
    (["up", "--agent-env", "CHAOS_FSYNC"], "KEY=VALUE"),
    (["up", "--agent-env", "CHAOS_PEERS={}"], "not allowed"),
    (["up", "--tick-ms", "0"], "0"),
    (["logs"], "NODE"),
    (["up", "--no-such-option"], "no-such-option"),
])
def test_cli_usage_errors_exit_2_with_one_line(args, fragment, capsys):
    assert cli.main(args) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [["doctor"], ["status"], ["down"], ["cleanup", "--all"],
                                     ["logs", "m1"], ["up", "--workers", "1"], ["image", "build"]],
                         ids=lambda c: " ".join(c))
def test_cli_missing_engine_exits_4_with_hint(command):
    proc = _run(*command, env={"DOCKER_HOST": f"tcp://127.0.0.1:{_closed_port()}"})
    assert proc.returncode == errors.EXIT_ENVIRONMENT, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith(("error:", "hint:"))]
    assert lines[0].startswith("error:") and lines[1].startswith("hint:")


def test_cli_doctor_missing_engine_says_what_failed_and_what_to_do():
    proc = _run("doctor", env={"DOCKER_HOST": f"tcp://127.0.0.1:{_closed_port()}"})
    assert proc.returncode == errors.EXIT_ENVIRONMENT
    assert "[FAIL] engine" in proc.stdout and "Connection refused" in proc.stdout
    assert "fix: start the Docker engine" in proc.stdout
    assert "error: doctor found 1 problem(s): engine" in proc.stderr


def test_cli_doctor_json_lists_checks_even_without_engine():
    import json

    proc = _run("doctor", "--json", env={"DOCKER_HOST": f"tcp://127.0.0.1:{_closed_port()}"})
    checks = json.loads(proc.stdout)
    assert {"name": "engine", "status": "fail"}.items() <= checks[0].items()
    assert {c["name"] for c in checks} >= {"engine", "bootstrap tool", "ports"}


def test_cli_shell_completion_bash_source_and_subcommands():
    src = _run(env={"_CHAOS_COMPLETE": "bash_source"})
    assert src.returncode == 0 and "_chaos_completion" in src.stdout
    words = _run(env={"_CHAOS_COMPLETE": "bash_complete", "COMP_WORDS": "chaos cl", "COMP_CWORD": "1"})
    assert "cleanup" in words.stdout
    opts = _run(env={"_CHAOS_COMPLETE": "bash_complete", "COMP_WORDS": "chaos up --wor", "COMP_CWORD": "2"})
    assert "--workers" in opts.stdout


def test_cli_internal_error_is_one_line_exit_4_and_traceback_saved(monkeypatch, capsys):
    """A bug below the CLI (here: `chaos down` raising a plain ValueError) is not a traceback on the
    terminal: one line, a hint naming the file that keeps the traceback, exit 4."""
    import chaos.cmd_cluster as cmd

    def broken(*_a, **_k):
        raise ValueError("a topology needs at least one manager")

    monkeypatch.setattr(cmd, "connect", broken)
    rc = cli.main(["down", "--name", "x"])
    err = capsys.readouterr().err
    assert rc == errors.EXIT_ENVIRONMENT
    assert "Traceback" not in err
    assert "internal error: ValueError: a topology needs at least one manager" in err
    path = err.split("the traceback is in ")[1].strip()
    with open(path) as f:
        assert "Traceback" in f.read()
    os.unlink(path)
