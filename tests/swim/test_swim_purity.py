"""The SWIM core stays pure (docs/contracts.md section 1): no asyncio, socket, time, chaos, other
swarmnode packages, and no module-level random functions -- checked on the source with ast.
Must not import anything from the packages it checks except by reading their files."""

import ast
import pathlib

import swarmnode.swim

FORBIDDEN = {"asyncio", "socket", "time", "chaos", "threading", "selectors", "os", "datetime"}
PKG = pathlib.Path(swarmnode.swim.__file__).parent


def impurities(source: str, name: str = "<src>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [] if node.level else [node.module or ""]
        else:
            mods = []
        for m in mods:
            top = m.split(".")[0]
            if top in FORBIDDEN or (top == "swarmnode" and not m.startswith("swarmnode.swim")):
                found.append(f"{name}: imports {m}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == "random" and node.attr != "Random":
            found.append(f"{name}: uses module-level random.{node.attr}")
    return found


def test_purity_swim_package_has_no_io_clock_or_global_random():
    files = sorted(PKG.glob("*.py"))
    assert len(files) >= 4
    assert [p for f in files for p in impurities(f.read_text(), f.name)] == []


def test_purity_checker_catches_broken_sources():
    assert impurities("import time\n")
    assert impurities("from asyncio import sleep\n")
    assert impurities("import random\nx = random.random()\n")
    assert impurities("from swarmnode.agent import node\n")
    assert impurities("import random\nr = random.Random(1)\n") == []
