"""`chaos doctor`: can this machine run a cluster, and which path does each piece take?

Owns: the checks (engine reachable + version; image build path: configured base / reused bootstrap /
python:3.11-slim local or pullable / mmdebstrap or debootstrap; the node image; the Toxiproxy choice;
free loopback ports; leftovers of earlier runs), each with what to do about a problem. Returns data;
the CLI prints it. Never starts containers or pulls images (a registry look-up only).
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
import docker.errors

from chaos import image as image_mod
from chaos.env.cluster import list_clusters
from chaos.env.engine import connect
from chaos.env.spec import OFFICIAL_TOXIPROXY
from chaos.errors import EnvironmentError_

OK, WARN, FAIL = "ok", "warn", "fail"
DOCTOR_TIMEOUT_S = 10


@dataclass(frozen=True)
class Check:
    name: str
    status: str   # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def run_checks(base_image: str | None = None) -> list[Check]:
    checks: list[Check] = []
    try:
        client = connect(timeout_s=DOCTOR_TIMEOUT_S)
    except EnvironmentError_ as exc:
        checks.append(Check("engine", FAIL, exc.message, exc.hint or ""))
        checks.append(_bootstrap_tool_check())
        checks.append(_ports_check(17))
        return checks
    checks.append(_engine_check(client))
    checks.extend(_image_checks(client, base_image))
    checks.append(_toxiproxy_check(client))
    checks.append(_ports_check(2 * 8 + 1))
    checks.append(_leftovers_check(client))
    return checks


def _engine_check(client: docker.DockerClient) -> Check:
    v = client.version()
    info = client.info()
    detail = (f"Docker {v.get('Version')} (API {v.get('ApiVersion')}), storage {info.get('Driver')}, "
              f"{info.get('NCPU')} CPUs, {int(info.get('MemTotal', 0)) / 2**30:.1f} GiB")
    return Check("engine", OK, detail)


def _bootstrap_tool_check() -> Check:
    tool = image_mod.bootstrap_tool()
    if tool:
        return Check("bootstrap tool", OK, f"{tool} on PATH (base path 4: Debian rootfs + docker import)")
    return Check("bootstrap tool", WARN, "neither mmdebstrap nor debootstrap on PATH",
                 "apt-get install mmdebstrap (needed only when no base image is local or pullable)")


def _registry_reachable(client: docker.DockerClient, ref: str) -> tuple[bool, str]:
    try:
        client.images.get_registry_data(ref)
        return True, "registry reachable"
    except docker.errors.DockerException as exc:
        text = " ".join(str(getattr(exc, "explanation", None) or exc).split())
        return False, text[:120]


def _image_checks(client: docker.DockerClient, base_image: str | None) -> list[Check]:
    out = []
    configured = base_image or os.environ.get(image_mod.BASE_ENV)
    local = {ref: _has(client, ref) for ref in (image_mod.BOOTSTRAP_REF, image_mod.PULL_REF)}
    if configured:
        if _has(client, configured):
            path = Check("image path", OK, f"configured base {configured} is on the engine (path 1)")
        else:
            path = Check("image path", FAIL, f"configured base {configured} is not on the engine",
                         f"load it, or unset --base-image/{image_mod.BASE_ENV}")
    elif local[image_mod.BOOTSTRAP_REF]:
        path = Check("image path", OK, f"{image_mod.BOOTSTRAP_REF} is on the engine (bootstrapped earlier; reused)")
    elif local[image_mod.PULL_REF]:
        path = Check("image path", OK, f"{image_mod.PULL_REF} is on the engine (path 3; aiohttp wheels via pip download)")
    else:
        pullable, why = _registry_reachable(client, image_mod.PULL_REF)
        tool = image_mod.bootstrap_tool()
        if pullable:
            path = Check("image path", OK, f"{image_mod.PULL_REF} can be pulled (path 3)")
        elif tool:
            path = Check("image path", OK, f"cannot pull ({why}); will bootstrap with {tool} (path 4, ~20 s)")
        else:
            path = Check("image path", FAIL, f"no local base, cannot pull ({why}), no mmdebstrap/debootstrap",
                         "apt-get install mmdebstrap, or pass --base-image IMAGE with python3 + aiohttp")
    out.append(path)
    out.append(_bootstrap_tool_check())
    node = image_mod.find_node_image(client)
    if node is None:
        out.append(Check("node image", WARN, "no chaos-node image yet",
                         "`chaos image build` (or let `chaos up` build it)"))
    else:
        tags = ", ".join(t for t in node.tags if not t.endswith(":latest")) or node.short_id
        out.append(Check("node image", OK, f"{tags} (base {node.labels.get(image_mod.BASE_LABEL, '?')}, "
                                           f"path {node.labels.get(image_mod.PATH_LABEL, '?')})"))
    return out


def _has(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def _toxiproxy_check(client: docker.DockerClient) -> Check:
    if _has(client, OFFICIAL_TOXIPROXY):
        return Check("toxiproxy", OK, f"official image {OFFICIAL_TOXIPROXY} is on the engine")
    server = Path(image_mod.node_image_dir()) / "swarmnode" / "toxiproxy" / "__main__.py"
    if server.is_file():
        return Check("toxiproxy", OK, f"{OFFICIAL_TOXIPROXY} not local: compatible server from the node image")
    return Check("toxiproxy", FAIL, "no official image and no compatible server in this checkout",
                 f"load {OFFICIAL_TOXIPROXY} (docker load), or update the checkout")


def _ports_check(needed: int) -> Check:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
    except OSError as exc:
        return Check("ports", FAIL, f"cannot bind a loopback port: {exc}", "check the host's network setup")
    room = high - low + 1
    status = OK if room >= needed * 4 else WARN
    return Check("ports", status, f"published ports are random 127.0.0.1 ports from {low}-{high} "
                                  f"({room} available; a 3x5 cluster needs {needed})",
                 "" if status == OK else "widen net.ipv4.ip_local_port_range")


def _leftovers_check(client: docker.DockerClient) -> Check:
    clusters = list_clusters(client)
    if not clusters:
        return Check("leftovers", OK, "no clusters of this tool on the engine")
    names = ", ".join(f"{n} (run {','.join(sorted(r))})" for n, r in sorted(clusters.items()))
    return Check("leftovers", WARN if any(len(r) > 1 for r in clusters.values()) else OK,
                 f"clusters on the engine: {names}",
                 "`chaos down --name NAME` or `chaos cleanup --all` removes them")


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


__all__ = ["Check", "run_checks", "failed", "OK", "WARN", "FAIL"]
