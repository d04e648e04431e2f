"""The planted `wall_clock_lease` is the only wall-clock lease: the correct agent's read path and the
Raft core never read time.time() (a read is confirmed by a ReadIndex round, never by a lease), and
the planted branch is marked as the other plants are."""

from __future__ import annotations

import ast
from pathlib import Path

from swarmnode import plant as plant_mod

NODE = Path(__file__).resolve().parents[2] / "node_image" / "swarmnode"


# manager.py methods that only timestamp the journal or logs (the disk-full bookkeeping): wall-clock
# time there decides nothing about reads or leadership
BOOKKEEPING = {"_storage_failed", "_storage_recovered"}


def _wall_clock_calls(path: Path) -> list[tuple[int, bool]]:
    """(line, inside an `if "wall_clock_lease" in ...` branch or condition) of each time.time()
    outside the bookkeeping methods."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in BOOKKEEPING:
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    skipped.add(sub.lineno)
    planted: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "wall_clock_lease" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    planted.add(sub.lineno)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "time.time" and node.lineno not in skipped:
            out.append((node.lineno, node.lineno in planted))
    return out


def test_plant_wall_clock_lease_is_the_only_wall_clock_in_the_read_path():
    calls = _wall_clock_calls(NODE / "agent" / "manager.py")
    assert calls and all(planted for _line, planted in calls), calls
    for core in sorted((NODE / "raft").glob("*.py")):
        assert _wall_clock_calls(core) == [], core


def test_plant_wall_clock_lease_is_listed_for_the_agent_layer():
    layer, desc = plant_mod.PLANT_LAYERS["wall_clock_lease"]
    assert layer == "agent" and "wall clock" in desc
    assert plant_mod.parse("wall_clock_lease") == frozenset({"wall_clock_lease"})
