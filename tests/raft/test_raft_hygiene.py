"""Module hygiene (docs/contracts.md section 1): the Raft core and the simulator import no I/O,
clock or `chaos`, use no module-level random functions, and every module has a docstring."""
import ast
import pathlib

import pytest

import swarmnode.raft
import swarmnode.sim

RAFT = sorted(pathlib.Path(swarmnode.raft.__file__).parent.glob("*.py"))
SIM = [pathlib.Path(swarmnode.sim.__file__).parent / n for n in ("__init__.py", "net.py", "raft_sim.py")]
FORBIDDEN = {"asyncio", "socket", "time", "chaos", "threading", "subprocess"}
RANDOM_FUNCS = {"random", "randint", "randrange", "choice", "shuffle", "uniform", "sample", "seed",
                "getrandbits", "expovariate"}


@pytest.mark.parametrize("path", RAFT + SIM, ids=lambda p: p.name)
def test_hygiene_no_forbidden_imports_or_global_random(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        else:
            names = set()
        assert not names & FORBIDDEN, f"{path.name} imports {names & FORBIDDEN}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "random":
            assert node.func.attr not in RANDOM_FUNCS, f"{path.name} calls random.{node.func.attr}"
