"""Typed errors raised below the CLI, and the exit codes they map to.

Only `chaos.cli` turns these into messages and exit codes (STYLE.md item 18). Everything else raises.
Must not import click.
"""

from __future__ import annotations

# Exit codes (README "Exit codes"; DESIGN.md section 9).
EXIT_OK = 0            # every check VALID
EXIT_INVALID = 1       # a check INVALID: the system violated a property
EXIT_USAGE = 2         # invalid command line or experiment file
EXIT_INCONCLUSIVE = 3  # a check UNKNOWN, or an expectation never observed
EXIT_ENVIRONMENT = 4   # Docker / Toxiproxy unreachable, a fault could not be applied, harness error
EXIT_REFUSED = 5       # the cluster refused a membership operation (definite: nothing changed)
EXIT_INTERRUPTED = 130  # Ctrl-C (after cleanup)


class ChaosError(Exception):
    """Base class. `hint` is one line telling the user what to do about it."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ChaosError):
    """Bad command-line input or a bad experiment file."""

    exit_code = EXIT_USAGE


class EnvironmentError_(ChaosError):
    """Docker engine, image build, Toxiproxy or a node could not be used as needed."""

    exit_code = EXIT_ENVIRONMENT


class FaultError(EnvironmentError_):
    """A fault could not be applied or could not be verified to be in effect."""


class RunDirError(UsageError):
    """A run directory is missing or unreadable."""


class MembershipRefused(ChaosError):
    """The cluster refused a membership operation (`chaos node ...`): definitely not done. `code`:
    the cluster's error code (chaos.membership.REFUSALS)."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, hint: str | None = None, code: str | None = None):
        super().__init__(message, hint)
        self.code = code


class FaultRefused(FaultError):
    """A membership fault the cluster under test definitely refused for a reason of its own state
    (chaos.nemesis records the fault `skipped` with the answer and the run goes on: see there).
    `code`: the cluster's error code."""

    def __init__(self, message: str, hint: str | None = None, code: str | None = None):
        super().__init__(message, hint)
        self.code = code


class OutcomeUnknown(ChaosError):
    """An operation may or may not have taken effect (a timeout, a leader lost meanwhile)."""

    exit_code = EXIT_INCONCLUSIVE
