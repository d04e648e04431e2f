"""Progress reporting for long operations (image build, cluster up, readiness wait).

Owns: the tiny `Progress` interface the environment calls, a silent implementation for tests and
library use, and a rich-based one for the terminal (stderr, so `--json` output stays clean).
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import sys
from typing import Protocol


class Progress(Protocol):
    def step(self, message: str) -> None:
        """A new phase started (shown and kept)."""

    def detail(self, message: str) -> None:
        """Transient detail of the current phase (shown while it lasts)."""

    def close(self) -> None:
        """Stop any live display."""


class NullProgress:
    """Records messages in memory; shows nothing."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def detail(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class RichProgress:
    """A spinner with the latest detail line; steps are printed as they start (stderr)."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.console import Console

        self._console = Console(stderr=True, highlight=False)
        self._quiet = quiet
        self._status = None
        self._last_step = ""

    def step(self, message: str) -> None:
        self._last_step = message
        if self._quiet:
            return
        self._console.print(f"[bold cyan]>[/] {message}")
        self._ensure_status().update(f"{message}")

    def detail(self, message: str) -> None:
        if self._quiet or not message:
            return
        line = " ".join(message.split())[:110]
        self._ensure_status().update(f"{self._last_step} [dim]{line}[/]")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _ensure_status(self):
        if self._status is None:
            if not self._console.is_terminal:
                return _NoStatus()
            self._status = self._console.status(self._last_step)
            self._status.start()
        return self._status


class _NoStatus:
    def update(self, *_args) -> None:
        pass


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
