"""The benchmark scripts are not a package: load them by path (benchmarks/ on sys.path for their
own `_result` import)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def failover():
    return load("failover")


@pytest.fixture(scope="session")
def underload():
    return load("underload")


@pytest.fixture(scope="session")
def result_mod():
    return load("_result")
