"""Connection to the Docker engine, with engine failures turned into typed errors.

Owns: creating the Docker SDK client (from DOCKER_HOST etc.), the reachability check, and the
mapping of docker SDK exceptions to `chaos.errors.EnvironmentError_`.
Must not import: click, rich, chaos.cli (errors are raised, never printed, here).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

import docker
import docker.errors
import requests

from chaos.errors import EnvironmentError_

DEFAULT_TIMEOUT_S = 60
POOL_SIZE = 32   # HTTP connections kept to the engine: above the thread pools that call it (8; more if overridden)
_ENGINE_HINT = ("start the Docker engine or point DOCKER_HOST at one (`chaos doctor` checks it); "
                "the current user must be allowed to use it")


def connect(timeout_s: int = DEFAULT_TIMEOUT_S) -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST), checked with a ping."""
    try:
        client = docker.from_env(timeout=timeout_s, max_pool_size=POOL_SIZE)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise EnvironmentError_(f"Docker engine unreachable at {where}: {_short(exc)}",
                                hint=_ENGINE_HINT) from exc
    return client


@contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Turn docker SDK / transport exceptions raised while `doing` into EnvironmentError_."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise EnvironmentError_(f"Docker engine refused to {doing}: {_short(exc)}",
                                hint="see `chaos doctor`; the engine's log may say more") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EnvironmentError_(f"Docker engine failed while trying to {doing}: {_short(exc)}",
                                hint=_ENGINE_HINT) from exc
    except Exception as exc:
        if not _is_ssh_error(exc):
            raise
        raise EnvironmentError_(f"ssh to a Docker engine failed while trying to {doing}: "
                                f"{exc.__class__.__name__}: {_short(exc)}",
                                hint="check the host is reachable with ssh and its sshd's MaxSessions") from exc


def _is_ssh_error(exc: BaseException) -> bool:
    """paramiko's errors (ssh:// engines of the swarm backend), without importing paramiko here."""
    return any(c.__module__.startswith("paramiko") for c in type(exc).__mro__)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    text = " ".join(str(text).split())
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:  # a connection failure: the errno text is the useful part of urllib3's long message
        return errno.group(0)
    return text if len(text) <= limit else text[: limit - 3] + "..."
