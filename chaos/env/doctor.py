"""`chaos doctor`: can this machine run a cluster, and which path does each piece take?

Owns: the checks (engine reachable + version; image build path: configured base / reused bootstrap /
python:3.11-slim local or pullable / mmdebstrap or debootstrap; the node image; the Toxiproxy choice;
free loopback ports; leftovers of earlier runs; sch_netem for packet-level faults), each with what to do about a problem. Returns data;
the CLI prints it. Never starts containers or pulls images (a registry look-up only) -- except
`run_swarm_checks`, which starts one short-lived container per host to read its free memory and
descriptors.
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
from chaos.env.netem import CLOSEST, netem_state
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
        checks.append(netem_check())
        return checks
    checks.append(_engine_check(client))
    checks.extend(_image_checks(client, base_image))
    checks.append(_toxiproxy_check(client))
    checks.append(_ports_check(2 * 8 + 1))
    checks.append(_leftovers_check(client))
    checks.append(netem_check())
    return checks


def netem_check(root: str = "/") -> Check:
    """Packet-level faults (loss, duplication, reordering) would need sch_netem: say whether this
    machine's kernel has it (chaos.env.netem), and what comes closest without it. Never a failure:
    no fault kind of chaos needs it."""
    state, how = netem_state(root)
    remote = " (this host's kernel; DOCKER_HOST points elsewhere)" if os.environ.get("DOCKER_HOST", "").startswith(
        ("tcp://", "ssh://")) else ""
    head = "packet-level faults (loss, duplication, reordering) need sch_netem, which chaos does not use"
    if state in ("loaded", "builtin"):
        return Check("netem", OK, f"{head}; this machine has it ({how}){remote}", CLOSEST)
    if state == "module":
        return Check("netem", WARN, f"{head}; this machine has it as a module, not loaded ({how}){remote}",
                     "modprobe sch_netem needs root on the host; " + CLOSEST)
    if state == "absent":
        return Check("netem", WARN, f"{head}; this machine does NOT have it ({how}){remote}", CLOSEST)
    return Check("netem", WARN, f"{head}; whether this machine has it is unknown ({how}){remote}", CLOSEST)


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


# -- the swarm backend: one set of checks per inventory host -----------------------------------------

CLOCK_OFFSET_WARN_S = 0.5   # journals' timestamps are compared across nodes in the report
MIN_FREE_MEM_MIB = 1024
MIN_FREE_FDS = 50_000
_PROBE = ("import os;m=dict(l.split(':',1) for l in open('/proc/meminfo'));"
          "a,_,x=open('/proc/sys/fs/file-nr').read().split();"
          "print(int(m['MemAvailable'].split()[0])//1024,int(x)-int(a),os.cpu_count())")


def run_swarm_checks(inventory, node_image: str | None = None) -> list[Check]:
    """Per host: engine reachable, an active member of the manager's swarm, the node image present
    with the harness's image id, free memory and descriptors (read from /proc by one short-lived,
    labelled, auto-removed container from the node image: the engine API does not report them), and
    the clock offset from this machine (the engine's SystemTime against the request's midpoint)."""
    from chaos.env import swarm as S

    checks: list[Check] = []
    try:
        local = connect(timeout_s=DOCTOR_TIMEOUT_S)
    except EnvironmentError_ as exc:
        return [Check("engine", FAIL, exc.message, exc.hint or "")]
    node = image_mod.find_node_image(local) if node_image is None else _image_or_none(local, node_image)
    members: dict[str, str] = {}
    state, _nid, manager = S.swarm_node_id(local)
    first = inventory.hosts[0].name
    if state == "active" and manager:
        members = {n.id: (n.attrs.get("Status") or {}).get("State", "?") for n in local.nodes.list()}
        checks.append(Check("swarm manager", OK, f"{first}: manager of a swarm of {len(members)} node(s)"))
    else:
        checks.append(Check("swarm manager", FAIL, f"{first}: not a swarm manager (state {state})",
                            "`docker swarm init --advertise-addr ADDR` on it (README: running across several hosts)"))
    for h in inventory.hosts:
        try:
            client = S.connect_host(h, local, timeout_s=DOCTOR_TIMEOUT_S)
        except EnvironmentError_ as exc:
            checks.append(Check(f"{h.name}: engine", FAIL, exc.message, exc.hint or ""))
            continue
        checks.append(Check(f"{h.name}: engine", OK, f"{h.engine} answers (Docker {client.version().get('Version')})"))
        hs, hid, _ = S.swarm_node_id(client)
        if hs == "active" and members.get(hid) == "ready":
            checks.append(Check(f"{h.name}: swarm", OK, f"member {hid[:12]} (ready)"))
        else:
            where = members.get(hid, "not in the manager's swarm")
            checks.append(Check(f"{h.name}: swarm", FAIL, f"swarm state {hs}"
                                + (f", node {hid[:12]} is {where}" if hid else ""),
                                "`docker swarm join-token worker` on the manager prints the join command"))
        image_check = _host_image_check(h.name, client, node)
        checks.append(image_check)
        checks.append(_clock_check(h.name, client))
        if image_check.status == OK:
            checks.append(_resources_check(h.name, client, node.id))
        else:   # the probe runs from the node image: never pull, never guess
            checks.append(Check(f"{h.name}: resources", WARN, "not checked: the node image is not on this host yet",
                                "`chaos up --backend swarm` copies it; run doctor again after"))
        if client is not local:
            client.close()
    return checks


def _image_or_none(client, ref):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _host_image_check(host: str, client, node) -> Check:
    if node is None:
        return Check(f"{host}: image", WARN, "no node image on the harness's engine yet", "`chaos image build`")
    tag = next((t for t in node.tags if not t.endswith(":latest")), node.id)
    try:
        there = client.images.get(tag).id
    except docker.errors.ImageNotFound:
        there = None
    if there == node.id:
        return Check(f"{host}: image", OK, f"{tag} present ({node.short_id})")
    return Check(f"{host}: image", WARN, f"{tag} " + ("missing" if there is None else f"differs ({there[:19]})"),
                 "`chaos up --backend swarm` copies it (docker save/load through the engines, checked by id)")


def _clock_check(host: str, client) -> Check:
    import time as _time

    from chaos.env.nodeops import parse_docker_time

    t0 = _time.time()
    info = client.info()
    t1 = _time.time()
    remote = parse_docker_time(str(info.get("SystemTime", "")))
    if remote is None:
        return Check(f"{host}: clock", WARN, "the engine does not report its time")
    offset = remote - (t0 + t1) / 2
    status = OK if abs(offset) <= CLOCK_OFFSET_WARN_S + (t1 - t0) / 2 else WARN
    return Check(f"{host}: clock", status, f"offset {offset * 1000:+.0f} ms (+- {(t1 - t0) * 500:.0f} ms)",
                 "" if status == OK else "run NTP/chrony on every host: journals are compared by time")


def _resources_check(host: str, client, image_id: str) -> Check:
    from chaos.env import labels as L

    try:
        out = client.containers.run(image_id, ["-c", _PROBE], entrypoint=["python3"], remove=True,
                                    network_mode="none", user="10001", cap_drop=["ALL"],
                                    labels={L.TOOL_LABEL: L.TOOL_NAME, L.CLUSTER_LABEL: "doctor"},
                                    mem_limit="64m").decode().split()
        mem_mib, free_fds, cpus = (int(x) for x in out[:3])
    except (docker.errors.DockerException, ValueError) as exc:
        return Check(f"{host}: resources", WARN, f"could not read /proc on the host: {str(exc)[:160]}",
                     "`chaos up --backend swarm` copies the node image first")
    status = OK if mem_mib >= MIN_FREE_MEM_MIB and free_fds >= MIN_FREE_FDS else WARN
    return Check(f"{host}: resources", status, f"{cpus} CPUs, {mem_mib} MiB available, {free_fds} free descriptors "
                 "(a worker ~60 MiB; a node's links ~3 descriptors each on its host's shard)",
                 "" if status == OK else f"fewer nodes on this host (need >= {MIN_FREE_MEM_MIB} MiB, {MIN_FREE_FDS} fds)")


__all__ = ["Check", "run_checks", "run_swarm_checks", "failed", "OK", "WARN", "FAIL"]
