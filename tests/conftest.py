"""Shared test helpers for reference data that lives beside the clone, in ../shared (DESIGN.md, the
102 Jepsen etcd histories under ../shared/histories).

A test that needs ../shared asks for it through the `shared` fixture: without the file it skips,
unless CI is set (any value but "", 0, false, no; as tests/report/browser.py reads it): then it
fails, so CI can never pass without having run the reference checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def ci_is_set() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def shared_or_skip(rel: str, root: Path = SHARED) -> Path:
    """root/rel if it exists; else skip, or fail when CI is set."""
    path = root / rel
    if path.exists():
        return path
    if ci_is_set():
        pytest.fail(f"{path} is missing but CI is set: check out the shared references beside the clone "
                    f"(../shared)")
    pytest.skip(f"{path} not present (the shared references beside the clone); CI unset")


@pytest.fixture
def shared():
    """`shared("histories/jepsen-etcd")` -> the path, or skip / fail (CI) when it is missing."""
    return shared_or_skip
