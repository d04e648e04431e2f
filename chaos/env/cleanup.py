"""Removal of this tool's Docker objects by label: one run, one cluster, or everything (`--all`).

Owns: `remove_objects`, used by `chaos down`, `chaos cleanup`, the teardown of an interrupted `up`,
and the removal of a killed run's leftovers. Only objects labelled `chaos.tool=chaos` (and matching
the cluster/run asked for) are touched; the label is checked again on the client side before each
removal. Order: containers, then networks, then volumes (each needs the previous gone); within
each kind the removals run concurrently, at most MAX_PARALLEL at a time.
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import docker
import requests
import docker.errors

from chaos.env import labels as L
from chaos.env.engine import engine_errors
from chaos.errors import EnvironmentError_

# Concurrent removals per engine. Removing a running container is mostly the engine killing it and
# tearing down its network sandbox; on this 2-core machine (3 + 30, load ~30, one sample each) a
# teardown took 13.5 s with 4 at a time, 10.3 s with 8, 8.2 s with 16. Kept at 8: a network left with
# a stale endpoint (engine state only a restart clears) was seen under load, and more concurrent
# sandbox teardowns in the engine is not a bet worth 2 s. CHAOS_REMOVE_PARALLEL overrides it.
MAX_PARALLEL = 8
# Pauses in flight at once. Before removing anything, every running node is frozen (`docker pause`,
# the freezer cgroup: no signal, no exit handling, no network work), so no agent keeps running
# (and suspecting the departed) while the engine removes the others about one at a time. Killing
# them all at once stopped them as fast, but 100 concurrent exits twice left the engine with a
# stale endpoint count on the network (only an engine restart clears it); pausing 24 took 0.36 s
# here. CHAOS_PAUSE_PARALLEL overrides it.
PAUSE_PARALLEL = 64


def pause_parallel() -> int:
    try:
        return max(1, int(os.environ.get("CHAOS_PAUSE_PARALLEL", "") or PAUSE_PARALLEL))
    except ValueError:
        return PAUSE_PARALLEL


def remove_parallel() -> int:
    try:
        return max(1, int(os.environ.get("CHAOS_REMOVE_PARALLEL", "") or MAX_PARALLEL))
    except ValueError:
        return MAX_PARALLEL


RETRY_S = 15.0  # a network or volume can stay "in use" for a moment after its containers are removed


@dataclass
class Removed:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.networks) + len(self.volumes)

    def as_dict(self) -> dict:
        return {"containers": self.containers, "networks": self.networks, "volumes": self.volumes,
                "failed": self.failed}


def _labels(obj) -> dict:
    attrs = obj.attrs or {}
    return attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}


def _matches(obj, cluster: str | None, run_id: str | None) -> bool:
    lab = _labels(obj)
    if not L.is_ours(lab, cluster):
        return False
    return run_id is None or lab.get(L.RUN_LABEL) == run_id


def remove_objects(client: docker.DockerClient, cluster: str | None = None, run_id: str | None = None) -> Removed:
    """Remove containers, networks and volumes of this tool matching cluster/run (None = any).

    Swarm-backend runs (an overlay network on this engine, the swarm manager, labelled with the
    run's inventory) are swept on every other host first -- containers and volumes; the overlay
    network is removed here, last, and kept when a host could not be swept, so that its inventory is
    still there for the next `chaos cleanup`."""
    removed = Removed()
    keep_networks = _sweep_remote_hosts(client, cluster, run_id, removed)
    _remove_on(client, cluster, run_id, removed, networks=not keep_networks)
    return removed


def _sweep_remote_hosts(client, cluster: str | None, run_id: str | None, removed: Removed) -> bool:
    """Remove this tool's containers and volumes of the matching swarm runs on their other hosts.
    Returns True when some host could not be reached or swept."""
    from chaos.env import swarm as S
    from chaos.env.hosts import LOCAL_ENGINE

    failed = False
    for (name, rid), inventory in sorted(S.run_inventories(client, cluster, run_id).items()):
        seen: set[str] = set()
        for host in inventory.hosts:
            if host.engine == LOCAL_ENGINE or host.engine in seen:
                continue
            seen.add(host.engine)
            try:
                remote = S.connect_host(host, client)
            except EnvironmentError_ as exc:
                removed.failed.append(f"host {host.name}: {exc.message}")
                failed = True
                continue
            before = len(removed.failed)
            mine = Removed()
            try:
                _remove_on(remote, name, rid, mine, networks=False,
                           parallel=S.parallel_for(host.engine, remove_parallel()),
                           pauses=S.parallel_for(host.engine, pause_parallel()))
            except EnvironmentError_ as exc:
                mine.failed.append(exc.message)
            except Exception as exc:  # noqa: BLE001 -- e.g. paramiko's: reported; the network is kept
                mine.failed.append(f"{exc.__class__.__name__}: {exc}")
            finally:
                remote.close()
            removed.containers.extend(x for x in mine.containers if x not in removed.containers)
            removed.volumes.extend(x for x in mine.volumes if x not in removed.volumes)
            removed.failed.extend(f"host {host.name}: {f}" for f in mine.failed)
            failed = failed or len(removed.failed) > before
    return failed


def _remove_on(client: docker.DockerClient, cluster: str | None, run_id: str | None, into: Removed,
               networks: bool = True, parallel: int | None = None, pauses: int | None = None) -> None:
    """One engine's pass; failures still present after it are appended to `into.failed`.
    `parallel`/`pauses`: removals/pauses in flight at once (an engine over ssh takes only as many
    as its sshd's sessions allow, chaos.env.swarm.parallel_for)."""
    parallel = parallel or remove_parallel()
    pauses = pauses or pause_parallel()
    removed = Removed()
    filters = L.selector(cluster=cluster, run_id=run_id)

    def sweep_containers() -> None:
        with engine_errors("list containers"):
            # sparse: no per-container inspect, so a container vanishing meanwhile is not an error
            containers = [c for c in client.containers.list(all=True, filters=filters, sparse=True)
                          if _matches(c, cluster, run_id)]
        # Freeze every agent first (PAUSE_PARALLEL at once), then remove (force: kill + remove,
        # `parallel` at a time): removing one container at a time left the rest running, and
        # each departure set the survivors suspecting, re-registering and electing (3 + 100 took
        # 104 s to remove at load 150). A failed or timed-out pause is no error here; the removal
        # below is what must succeed.
        running = [c for c in containers if _state(c) == "running"]
        if running:
            with ThreadPoolExecutor(max_workers=min(pauses, len(running))) as pool:
                list(pool.map(pause_container, running))
        # The engine takes longest over a container with many published ports (each mapping is
        # unwound on its own: the first Toxiproxy shard, with a port per client link, took 6 s of
        # a 3 + 100 teardown's 23 s, alone at the end). Removed first, that time overlaps the rest.
        containers.sort(key=lambda c: -len(c.attrs.get("Ports") or ()))
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(rm_container, containers))

    def pause_container(c) -> None:
        # Only an optimisation: whatever a pause meets (NotFound, not running, being removed, an
        # engine answering late under load 250, an ssh session refused), the removal below is what
        # must succeed or be reported.
        try:
            c.pause()
        except Exception:  # noqa: BLE001
            pass

    def rm_container(c) -> None:
        name = (c.attrs.get("Names") or [c.id[:12]])[0].lstrip("/")
        try:
            c.remove(force=True, v=False)
            if name not in removed.containers:
                removed.containers.append(name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" in str(exc.explanation or exc):
                if name not in removed.containers:
                    removed.containers.append(name)  # someone else (a concurrent teardown) removes it
                return
            removed.failed.append(f"container {name}: {exc.explanation or exc}")
        except requests.RequestException as exc:   # a timeout: the next pass lists it again
            removed.failed.append(f"container {name}: {exc.__class__.__name__}: {exc}")

    for _ in range(3):   # again if a late-created container showed up meanwhile (see _retry_remove)
        removed.failed.clear()   # what still fails in the last pass is what is reported
        _remove_pass(client, filters, cluster, run_id, removed, sweep_containers, networks, parallel)
        with engine_errors("list containers"):
            late = [c for c in client.containers.list(all=True, filters=filters, sparse=True)
                    if _matches(c, cluster, run_id)]
        if not late:
            break
    for mine, theirs in ((removed.containers, into.containers), (removed.networks, into.networks),
                         (removed.volumes, into.volumes), (removed.failed, into.failed)):
        theirs.extend(x for x in mine if x not in theirs)


def _state(c) -> str | None:
    """A sparse listing's container state (a word there, a mapping after an inspect)."""
    state = c.attrs.get("State")
    if isinstance(state, dict):
        state = state.get("Status")
    return state



def _remove_pass(client, filters, cluster, run_id, removed: Removed, sweep_containers, networks: bool = True,
                 parallel: int = MAX_PARALLEL) -> None:
    sweep_containers()
    with engine_errors("list networks"):
        nets = [n for n in client.networks.list(filters=filters) if _matches(n, cluster, run_id)] if networks else []
    _each(parallel, nets, lambda n: _retry_remove(n.remove, f"network {n.name}", n.name, removed.networks,
                                                  removed, sweep_containers))
    _await_gone(client, [n for n in nets if n.name in removed.networks], removed)
    with engine_errors("list volumes"):
        volumes = [v for v in client.volumes.list(filters=filters) if _matches(v, cluster, run_id)]
    _each(parallel, volumes, lambda v: _retry_remove(lambda: v.remove(force=True), f"volume {v.name}", v.name,
                                                     removed.volumes, removed, sweep_containers))


def _each(parallel: int, items: list, fn) -> None:
    """fn(item) for every item, at most `parallel` at once; the first exception is raised after all ran."""
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=min(parallel, len(items))) as pool:
        for fut in [pool.submit(fn, item) for item in items]:
            fut.result()


def _await_gone(client, nets: list, removed: Removed) -> None:
    """An overlay network's removal is asynchronous in swarm mode: the engine accepts it and the
    network stays listed for a few seconds (its load-balancer endpoint goes last). `down` returns
    when what it removed is gone, so a `remaining()` right after it is 0; bounded by RETRY_S."""
    deadline = time.monotonic() + RETRY_S
    for n in nets:
        while True:
            with engine_errors("list networks"):
                if not client.networks.list(filters={"id": n.id}):
                    break
            if time.monotonic() >= deadline:
                removed.failed.append(f"network {n.name}: still listed {RETRY_S:.0f} s after its removal")
                break
            time.sleep(0.2)


def _retry_remove(remove, what: str, name: str, into: list, removed: Removed, sweep=None) -> None:
    """A network or volume can stay in use for a moment after its containers go (a concurrent
    removal, the engine's own cleanup), or be held by a container that appeared after the listing:
    a create request of a SIGKILLed `up` that the engine finished after its client died. Each retry
    first sweeps such containers (`sweep`); after RETRY_S it is reported as failed."""
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            remove()
            into.append(name)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if time.monotonic() >= deadline:
                removed.failed.append(f"{what}: {exc.explanation or exc}")
                return
            if sweep is not None:
                sweep()
            time.sleep(0.2)


def raise_if_failed(removed: Removed, what: str) -> None:
    if removed.failed:
        hint = "retry `chaos cleanup`; the engine's log may say why"
        if any("has active endpoints" in f for f in removed.failed):
            # seen once under load 40: a network left with an endpoint no container holds (the
            # engine's own state; neither `docker network rm` nor `disconnect -f` removes it)
            hint = ("a network the engine still counts endpoints on: if `docker network inspect` lists no "
                    "container, that endpoint is stale engine state -- restarting the Docker engine clears "
                    "it; then retry `chaos cleanup`")
        raise EnvironmentError_(f"{what}: could not remove {len(removed.failed)} object(s): "
                                + "; ".join(removed.failed[:5]), hint=hint)


def remaining(client: docker.DockerClient, cluster: str | None = None) -> int:
    """How many labelled objects of this tool (for cluster, or all) still exist."""
    filters = L.selector(cluster=cluster)
    with engine_errors("list objects"):
        return (len(client.containers.list(all=True, filters=filters, sparse=True))
                + len(client.networks.list(filters=filters))
                + len(client.volumes.list(filters=filters)))
