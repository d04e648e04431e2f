"""Fixtures for the Docker integration tier: an engine client, the node image, unique cluster names.

Tests here are marked `docker`; they skip (with the reason) when no engine answers. The node image
is built once per session (a no-op when .ci/run already built it: the tag is a content hash).
Every cluster a test creates gets a unique name and is removed by label at the end, pass or fail.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from chaos.env import cleanup
from chaos.errors import EnvironmentError_


def pytest_collection_modifyitems(config, items):
    """`plant_full` tests (tests/docker/test_plant_docker.py: the planted bugs beyond the default
    subset) run only when the marker expression names them: `pytest -m plant_full ...`."""
    if "plant_full" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="plant_full: select with -m plant_full")
    for item in items:
        if "plant_full" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def docker_client():
    from chaos.env.engine import connect

    try:
        return connect(timeout_s=120)
    except EnvironmentError_ as exc:
        if os.environ.get("CI"):  # CI must run the Docker tier, never skip it silently
            pytest.fail(f"CI is set but no Docker engine answers: {exc.message}")
        pytest.skip(f"no Docker engine: {exc.message}")


@pytest.fixture(scope="session")
def node_image(docker_client) -> str:
    """The node image of this tree (built if missing), or CHAOS_TEST_IMAGE when set."""
    from chaos.image import build_node_image

    override = os.environ.get("CHAOS_TEST_IMAGE")
    if override:
        return override
    return build_node_image(docker_client).tag


@pytest.fixture
def cluster_name(docker_client):
    """A fresh cluster name; whatever carries it is removed after the test."""
    name = f"t{secrets.token_hex(3)}"
    yield name
    cleanup.remove_objects(docker_client, cluster=name)


def _chaos_cmd(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `chaos` entry point in a subprocess (the error boundary included)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "chaos.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def _chaos_popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chaos.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture(scope="session")
def chaos_cmd():
    return _chaos_cmd


@pytest.fixture(scope="session")
def chaos_popen():
    return _chaos_popen


@pytest.fixture(scope="session")
def swarm_mode(docker_client):
    """The engine in swarm mode (the swarm backend's tests, issue 15). Initialised here with
    `docker swarm init --advertise-addr 127.0.0.1` when the engine is not in a swarm, and then left
    at the end of the session, removing the docker_gwbridge network that the init created; skipped,
    with the engine's answer, only when the engine refuses swarm mode."""
    import docker.errors

    def state() -> str:
        return (docker_client.info().get("Swarm") or {}).get("LocalNodeState", "inactive")

    had_gwbridge = bool(docker_client.networks.list(names=["docker_gwbridge"]))
    joined = False
    if state() != "active":
        try:
            docker_client.swarm.init(advertise_addr="127.0.0.1")
            joined = True
        except docker.errors.APIError as exc:
            pytest.skip(f"the engine refuses swarm mode: {exc.explanation or exc}")
    yield docker_client
    if joined:
        docker_client.swarm.leave(force=True)
        assert state() == "inactive"
        if not had_gwbridge:
            # the engine lets go of the bridge's endpoints a moment after the leave: bounded retry,
            # then left with a warning (the engine's own network, no object of this project)
            import time
            import warnings
            deadline = time.monotonic() + 15
            for net in docker_client.networks.list(names=["docker_gwbridge"]):
                while net.name == "docker_gwbridge":
                    try:
                        net.remove()
                        break
                    except docker.errors.APIError as exc:
                        if time.monotonic() >= deadline:
                            warnings.warn(f"docker_gwbridge not removed after leaving the swarm: {exc}")
                            break
                        time.sleep(0.5)
