"""Bringing a cluster up: network, volumes, Toxiproxy and its link proxies, managers, workers, ready.

Owns: `bring_up` (the creation sequence of DESIGN.md section 3), the Toxiproxy server choice
(official image if on the engine, else the node image running `python3 -m swarmnode.toxiproxy`),
container hardening, teardown of a half-created run on any exception or signal, and the handling of
a previous run of the same name (still up -> error; killed mid-`up` -> its leftovers are removed).
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import docker
import docker.errors
import docker.types

from chaos.env import cleanup
from chaos.env import hosts as H
from chaos.env import labels as L
from chaos.env import runs
from chaos.env import swarm as S
from chaos.env.cluster import Cluster, NodeHandle
from chaos.env.engine import engine_errors
from chaos.env.progress import NullProgress, Progress
from chaos.env.spec import (AGENT_API_PORT, LARGE_CLUSTER_NODES, OFFICIAL_TOXIPROXY, SPEC_LABEL, TOXIPROXY_API_PORT, ClusterSpec)
from chaos.errors import EnvironmentError_, UsageError
from chaos.toxi import LinkController, ToxiproxyAPI

READY_MARKER_LABEL = runs.READY_MARKER_LABEL
OWNER_LABEL = runs.OWNER_LABEL
# Container creations in flight at once (each: a volume, create, start, inspect). The engine does
# most of the work; on this 2-core machine more than about 8 at a time only queue inside it
# (benchmarks/README.md, cluster.py). CHAOS_CREATE_PARALLEL overrides it (for measuring).
CREATE_PARALLEL = 8


def create_parallel() -> int:
    try:
        return max(1, int(os.environ.get("CHAOS_CREATE_PARALLEL", "") or CREATE_PARALLEL))
    except ValueError:
        raise UsageError(f"CHAOS_CREATE_PARALLEL must be a positive integer, got "
                         f"{os.environ['CHAOS_CREATE_PARALLEL']!r}") from None
TOXIPROXY_READY_S = 30.0
PUBLISH_ENV = "CHAOS_PUBLISH_PORTS"


def host_reaches_network(client: docker.DockerClient, net_name: str) -> bool:
    """Whether this process can reach the containers of bridge network `net_name` at their own
    addresses: the network's gateway address is one of this host's (an engine on this Linux host;
    not Docker Desktop's VM, a rootless engine's namespace or a remote engine). Then nothing is
    published: every published port costs the engine a port mapping to set up and unwind (measured:
    about 40 ms to create and 30-50 ms to remove per port, serialized in the engine; a 3 + 100
    cluster published 209), and the harness's traffic skips the userland proxy. CHAOS_PUBLISH_PORTS=1
    publishes on 127.0.0.1 as before."""
    if os.environ.get(PUBLISH_ENV, "").strip() == "1":
        return False
    try:
        net = client.networks.get(net_name)
        cfg = ((net.attrs.get("IPAM") or {}).get("Config") or [{}])[0]
        gateway = cfg.get("Gateway")
        if not gateway and cfg.get("Subnet"):
            gateway = str(next(ipaddress.ip_network(cfg["Subnet"]).hosts()))
    except (docker.errors.DockerException, ValueError, StopIteration):
        return False
    if not gateway:
        return False
    try:
        with socket.socket(socket.AF_INET6 if ":" in gateway else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((gateway, 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class ToxiproxyChoice:
    image: str
    official: bool
    reason: str

    def entrypoint(self) -> list[str]:
        return ["/toxiproxy"] if self.official else ["python3", "-m", "swarmnode.toxiproxy"]

    def command(self, seed: int) -> list[str]:
        args = ["-host", "0.0.0.0", "-port", str(TOXIPROXY_API_PORT)]
        return args + ([] if self.official else ["-seed", str(seed)])


TOXIPROXY_MODES = ("auto", "official", "compatible")


def choose_toxiproxy(client: docker.DockerClient, node_image: str, mode: str = "auto") -> ToxiproxyChoice:
    """auto: the official image if the engine has it, else ours (no pull attempt: it can hang on
    engines without a registry). official: local or pulled, else an error. compatible: ours."""
    if mode not in TOXIPROXY_MODES:
        raise UsageError(f"--toxiproxy must be one of {', '.join(TOXIPROXY_MODES)}")
    if mode == "compatible":
        return ToxiproxyChoice(node_image, False, "compatible server (python3 -m swarmnode.toxiproxy), as asked")
    try_pull = mode == "official"
    with engine_errors("list images"):
        try:
            client.images.get(OFFICIAL_TOXIPROXY)
            return ToxiproxyChoice(OFFICIAL_TOXIPROXY, True, "official image found on the engine")
        except docker.errors.ImageNotFound:
            pass
    if try_pull:
        repo, _, tag = OFFICIAL_TOXIPROXY.rpartition(":")
        try:
            client.images.pull(repo, tag=tag)
            return ToxiproxyChoice(OFFICIAL_TOXIPROXY, True, "official image pulled")
        except docker.errors.DockerException as exc:
            raise EnvironmentError_(f"cannot pull {OFFICIAL_TOXIPROXY}: {str(exc)[:200]}",
                                    hint="`docker load` it, or use --toxiproxy auto/compatible") from exc
    return ToxiproxyChoice(node_image, False, "official image not available: compatible server "
                           "(python3 -m swarmnode.toxiproxy) from the node image")


def handle_previous(client: docker.DockerClient, name: str, progress: Progress) -> None:
    """A cluster of this name that is up or starting -> UsageError; leftovers of a run whose owner
    is gone (a killed `up`, a killed demo) -> removed."""
    for run in runs.list_runs(client, cluster=name):
        what = runs.verdict(run)
        if what in (runs.KEPT, runs.IN_USE):
            raise UsageError(f"cluster {name!r} is already up (run {run.run_id})",
                             hint=f"`chaos down --name {name}` first, or pick another --name")
        if what == runs.STARTING:
            raise UsageError(f"cluster {name!r} is being brought up by {run.owner} (run {run.run_id})",
                             hint=f"wait for it, or `chaos cleanup --name {name}` if that process is gone")
        progress.step(f"removing leftovers of an interrupted run {run.run_id} of cluster {name!r}")
        cleanup.raise_if_failed(cleanup.remove_objects(client, cluster=name, run_id=run.run_id), "leftovers")


class _Interrupted(KeyboardInterrupt):
    """SIGTERM during `up`, delivered like Ctrl-C so one teardown path handles both."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread (restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Teardown must finish: ignore SIGINT/SIGTERM while it runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _hardening(limits_mem: str, pids: int, read_only: bool, cpu_shares: int = 1024) -> dict:
    opts = {"user": "10001", "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
            "mem_limit": limits_mem, "pids_limit": pids, "init": True, "cpu_shares": cpu_shares,
            "restart_policy": {"Name": "no"}}
    if read_only:
        opts["read_only"] = True
        opts["tmpfs"] = {"/tmp": "rw,nosuid,nodev,size=32m,mode=1777"}
    return opts


@dataclass
class UpResult:
    cluster: Cluster
    toxiproxy: ToxiproxyChoice
    seconds_to_ready: float
    seconds_total: float
    proxies: int


def bring_up(client: docker.DockerClient, spec: ClusterSpec, node_image: str, ready_timeout_s: float,
             progress: Progress | None = None, toxiproxy: ToxiproxyChoice | str = "auto",
             detach: bool = False, backend: str = "local", inventory: H.Inventory | None = None) -> UpResult:
    """Create everything for `spec` and wait until ready. On any exception (including Ctrl-C and
    SIGTERM, which arrive as KeyboardInterrupt) everything of this run is removed before re-raising.

    detach: the cluster outlives this process (`chaos up`): its up-complete marker names no owner,
    so `chaos cleanup` without options leaves it. Otherwise (demo, tests) this process owns it, and
    once the process is gone the cluster counts as a leftover (chaos.env.runs).

    backend "swarm": the hosts of `inventory` (default: this engine alone, a one-node swarm) must be
    members of the swarm managed by its first host; see chaos/env/hosts.py for the design."""
    if backend not in H.BACKENDS:
        raise UsageError(f"backend must be one of {', '.join(H.BACKENDS)} (got {backend!r})")
    progress = progress or NullProgress()
    started = time.monotonic()
    spec.check_agent_env()
    handle_previous(client, spec.name, progress)
    run_id = L.new_run_id()
    if isinstance(toxiproxy, str):
        toxiproxy = choose_toxiproxy(client, node_image, toxiproxy)
    hosts = None
    if backend == "swarm" and spec.data_mb is not None:
        raise UsageError("size-capped data volumes (a `disk-full` fault) need the local backend",
                         hint="run the experiment without `--backend swarm`")
    if backend == "swarm" and spec.spare_ids:
        raise UsageError("spare ids (`chaos node add`, a `membership` fault's add or replace) need the local "
                         "backend", hint="run without `--backend swarm`, or with --spares 0")
    if backend == "swarm":
        hosts = _prepare_swarm(client, inventory or H.Inventory.single_local(), node_image, toxiproxy, progress)
        spec = dataclasses.replace(spec, toxiproxy_shards=_swarm_shard_count(spec, len(hosts.inventory.hosts)))
    progress.step(f"cluster {spec.name!r}, run {run_id}, seed {spec.seed}: {spec.managers} managers, "
                  f"{spec.workers} workers; Toxiproxy: {toxiproxy.reason}")
    if spec.scaled_timing():
        progress.step(f"more than {LARGE_CLUSTER_NODES} nodes: agent timing for a large cluster on one host ("
                      + ", ".join(f"{k.removeprefix('CHAOS_').lower()}={v}" for k, v in spec.scaled_timing().items())
                      + "; an option you set wins)")
    try:
        with sigterm_as_interrupt():
            if hosts is None:
                cluster, proxies = _create(client, spec, run_id, node_image, toxiproxy, progress)
            else:
                cluster, proxies = _create_swarm(hosts, spec, run_id, node_image, toxiproxy, progress)
            progress.step("waiting for a leader, registered workers and converged gossip")

            last_check = [0.0]

            def abort() -> str | None:  # inspecting every container is costly: every 2 s at most
                if time.monotonic() - last_check[0] < 2.0:
                    return None
                last_check[0] = time.monotonic()
                dead = cluster.exited_nodes()
                return f"container(s) exited: {', '.join(dead)}" if dead else None

            waited = cluster.wait_ready(ready_timeout_s, progress, abort=abort)
            with engine_errors("mark the cluster as up"):
                client.volumes.create(name=f"chaos-{spec.name}-{run_id}-up",
                                      labels={**L.object_labels(spec.name, run_id), READY_MARKER_LABEL: "1",
                                              **({} if detach else {OWNER_LABEL: runs.this_owner()})})
    except BaseException:
        with signals_ignored():
            progress.step(f"tearing down run {run_id}")
            cleanup.remove_objects(client, cluster=spec.name, run_id=run_id)
        raise
    return UpResult(cluster, toxiproxy, waited, time.monotonic() - started, proxies)


def _create(client: docker.DockerClient, spec: ClusterSpec, run_id: str, image: str,
            toxiproxy: ToxiproxyChoice, progress: Progress) -> tuple[Cluster, int]:
    topology = spec.topology()
    net_name = L.network_name(spec.name, run_id)
    progress.step(f"network {net_name}")
    with engine_errors("create the cluster network"):
        addresses = _create_network(client, net_name,
                                    {**L.object_labels(spec.name, run_id), OWNER_LABEL: runs.this_owner()})
    handles: dict[str, NodeHandle] = {}
    shards = topology.shards
    ips = _static_ips(addresses, address_order(spec))
    progress.step(f"Toxiproxy ({toxiproxy.image}) with {len(topology.links)} link proxies"
                  + (f" on {shards} servers" if shards > 1 else ""))
    lim = spec.limits
    publish = not host_reaches_network(client, net_name)
    if not publish:
        progress.detail("the harness reaches every container at its address on the network: no port published")
    client_ports = {f"{port}/tcp": ("127.0.0.1", None) for port in topology.client_ports().values()}

    def start_shard(shard: int):
        node = topology.shard_host(shard, L.TOXIPROXY_NODE)
        ports = {f"{TOXIPROXY_API_PORT}/tcp": ("127.0.0.1", None), **(client_ports if shard == 0 else {})}
        ports = ports if publish else {}
        with engine_errors(f"start the Toxiproxy container {node}"):
            tp = client.containers.run(
                toxiproxy.image, toxiproxy.command(spec.seed + shard), entrypoint=toxiproxy.entrypoint(),
                detach=True, name=L.container_name(spec.name, node), hostname=node,
                labels={**L.object_labels(spec.name, run_id, node, "toxiproxy"), SPEC_LABEL: spec.label()},
                network=net_name, ports=ports,
                networking_config={net_name: client.api.create_endpoint_config(aliases=[node],
                                                                               ipv4_address=ips.get(node))},
                **_hardening(lim.toxiproxy_mem, lim.toxiproxy_pids, lim.read_only, lim.toxiproxy_cpu_shares))
            tp.reload()
        return node, NodeHandle(node, "toxiproxy", tp)

    # the servers start concurrently (each takes about a second to answer)
    handles.update(_bounded(start_shard, range(shards), create_parallel()))
    cluster = Cluster(client, spec.name, run_id, handles)
    api = cluster.toxiproxy_api(timeout_s=30, topology=topology)
    try:
        api.wait_ready(deadline=TOXIPROXY_READY_S)
    except EnvironmentError_ as exc:
        states = []
        for node, h in handles.items():
            h.container.reload()
            states.append(f"{node} {h.container.status}")
        raise EnvironmentError_(f"Toxiproxy did not answer within {TOXIPROXY_READY_S:.0f} s "
                                f"({', '.join(states)}): {exc.message}",
                                hint=f"`chaos logs toxiproxy --name {spec.name}`") from exc
    LinkController(api, topology).create_proxies()
    progress.step(f"{spec.managers} managers and {spec.workers} workers from {image}")
    nodes = spec.node_ids

    def start(n: str):
        return n, _start_node(client, spec, run_id, image, net_name, n, topology, ip=ips.get(n), publish=publish)

    def started(i: int, got) -> None:
        handles[got[0]] = NodeHandle(got[0], spec.kind(got[0]), got[1])
        progress.detail(f"started {i}/{len(nodes)}")

    _bounded(start, nodes, create_parallel(), started)
    if spec.data_mb is not None:
        progress.step(f"data volumes: tmpfs of {spec.data_mb} MB each, held mounted by "
                      f"{L.container_name(spec.name, L.DISK_HOLDER)}")
        _start_disk_holder(client, spec, run_id, image)
    return cluster, len(topology.links)


def _bounded(fn, items, parallel: int, each=None) -> list:
    """[fn(item) for item in items], at most `parallel` at once; `each(i, result)` is called as the
    i-th result (in the order given) is taken. On an exception or Ctrl-C the calls in flight finish
    (bounded by the engine client's timeout) and the queued ones are dropped before it propagates,
    so the teardown that follows sees every object this run made."""
    items = list(items)
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items))))
    try:
        out = []
        for i, fut in enumerate([pool.submit(fn, item) for item in items], 1):
            out.append(fut.result())
            if each is not None:
                each(i, out[-1])
        return out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _create_network(client: docker.DockerClient, name: str, labels: dict) -> ipaddress.IPv4Network | None:
    """The cluster's bridge network, with its subnet fixed so containers get static addresses; the
    subnet as the engine chose it, or None (no static addresses) if the engine did not say.

    Why static: a killed container gives its address back, and two containers restarted in the
    other order swap addresses (seen: m2 and m3 swapped after a two-manager kill). A proxy that had
    resolved a peer's name then dials the other node, or an address nobody holds, where the connect
    hangs in SYN retransmission while the sender's frames wait behind it -- seconds without contact
    after a restart. With fixed addresses a restarted node is where it was. The engine's pool picks
    a free subnet for a probe network; the real one is created on that subnet (user-given
    addresses need a user-configured subnet)."""
    probe = client.networks.create(name, driver="bridge", check_duplicate=True, labels=labels)
    try:
        probe.reload()
        subnet = ((probe.attrs.get("IPAM") or {}).get("Config") or [{}])[0].get("Subnet")
    finally:
        probe.remove()
    try:
        net = ipaddress.ip_network(subnet) if subnet else None
    except ValueError:
        net = None
    if not isinstance(net, ipaddress.IPv4Network):
        client.networks.create(name, driver="bridge", check_duplicate=True, labels=labels)
        return None
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(net))])
    client.networks.create(name, driver="bridge", check_duplicate=True, labels=labels, ipam=ipam)
    return net


def address_order(spec: ClusterSpec) -> list[str]:
    """The names that get static addresses, in order: the Toxiproxy servers, the nodes, then the
    spares (last, so that spares never move a started node's address; a spare started later by
    `start_spare` gets the address kept for it)."""
    topology = spec.topology()
    return ([topology.shard_host(i, L.TOXIPROXY_NODE) for i in range(topology.shards)] + spec.node_ids
            + spec.spare_ids)


def _static_ips(net: ipaddress.IPv4Network | None, names: list[str]) -> dict[str, str]:
    """name -> address in `net`, in order after the gateway's (the first host address); {} when
    there is no subnet or it is too small."""
    if net is None or net.num_addresses < len(names) + 4:
        return {}
    base = int(net.network_address) + 2  # .0 network, .1 the bridge's gateway
    return {n: str(ipaddress.IPv4Address(base + i)) for i, n in enumerate(names)}


def _start_node(client: docker.DockerClient, spec: ClusterSpec, run_id: str, image: str, net_name: str,
                node: str, topology, host: str | None = None, publish: bool = True,
                ip: str | None = None, join_token: str | None = None) -> object:
    """One node's volume and container. `host` (swarm backend): labelled with its host; `publish`
    False: no port published; its API is reached at its own address (local backend, when the host
    reaches the network: `host_reaches_network`) or through the control gateway (a host other than
    the harness's, see `_create_swarm`). `join_token`: a spare manager joining the running
    cluster (CHAOS_JOIN_TOKEN)."""
    kind = spec.kind(node)
    lim = spec.limits
    labels = {**L.object_labels(spec.name, run_id, node, kind), SPEC_LABEL: spec.label()}
    if host is not None:
        labels[S.HOST_LABEL] = host
    with engine_errors(f"create the volume of {node}" + (f" on host {host}" if host else "")):
        volume = client.volumes.create(name=L.volume_name(spec.name, run_id, node), labels=labels,
                                       **_data_volume_opts(spec))
    with engine_errors(f"start {node}" + (f" on host {host}" if host else "")):
        c = client.containers.run(
            image, detach=True, name=L.container_name(spec.name, node), hostname=node,
            labels=labels, environment=spec.node_env(node, topology, join_token), network=net_name,
            networking_config={net_name: client.api.create_endpoint_config(aliases=[node], ipv4_address=ip)},
            ports={f"{AGENT_API_PORT}/tcp": ("127.0.0.1", None)} if publish else {},
            volumes={volume.name: {"bind": "/data", "mode": "rw"}},
            **_hardening(lim.manager_mem if kind == "manager" else lim.worker_mem, lim.node_pids, lim.read_only,
                        lim.manager_cpu_shares if kind == "manager" else lim.worker_shares(spec.workers)))
        c.reload()
    return c


def _data_volume_opts(spec: ClusterSpec) -> dict:
    """A size-capped data volume (spec.data_mb): a tmpfs the engine mounts for the container (no
    privilege in the container), owned by the node's user. Full means ENOSPC, as on a real disk."""
    if spec.data_mb is None:
        return {}
    return {"driver": "local", "driver_opts": {"type": "tmpfs", "device": "tmpfs",
                                               "o": f"size={spec.data_mb}m,uid=10001,gid=10001,mode=0750"}}


def _start_disk_holder(client: docker.DockerClient, spec: ClusterSpec, run_id: str, image: str) -> object:
    """With size-capped (tmpfs) data volumes: one idle container that mounts every node's volume at
    /v/<node>. The engine unmounts a tmpfs volume (losing its data) when no running container uses
    it; the holder keeps each mounted while its node is killed or stopped. It is also where a
    `disk-full` fault's ballast is written (chaos/env/nodeops.py), so the ballast's memory is charged
    to it, not to the node. Unprivileged, no network, labelled with the cluster and run (removed
    with them; no node label, so it is not taken for a node)."""
    lim = spec.limits
    for n in spec.spare_ids:   # a spare's volume exists from the start, so the holder keeps it too
        with engine_errors(f"create the volume of spare {n}"):
            client.volumes.create(name=L.volume_name(spec.name, run_id, n),
                                  labels=L.object_labels(spec.name, run_id, n, spec.kind(n)), **_data_volume_opts(spec))
    ids = spec.node_ids + spec.spare_ids
    vols = {L.volume_name(spec.name, run_id, n): {"bind": f"/v/{n}", "mode": "rw"} for n in ids}
    with engine_errors("start the data volume holder"):
        c = client.containers.run(
            image, ["infinity"], entrypoint=["sleep"], detach=True, name=L.container_name(spec.name, L.DISK_HOLDER),
            labels=L.object_labels(spec.name, run_id), network_mode="none", volumes=vols,
            **_hardening(f"{64 + spec.data_mb * len(ids)}m", 64, lim.read_only, 256))
        c.reload()
    return c


def start_spare(cluster: Cluster, node: str, join_token: str | None = None) -> NodeHandle:
    """Start the spare `node` of a running local-backend cluster (`chaos node add`, the `membership`
    fault's add and replace): its container is made exactly as `chaos up` made the others -- the
    spec read back from the cluster's SPEC_LABEL, the image, network and static address kept for
    it, its labels (so `chaos down` and `cleanup` remove it) -- with `join_token` for a manager.
    Its link proxies have existed since `up`. The handle is added to `cluster` (a new dict, so a
    thread iterating the old one is not disturbed) and returned. UsageError when `node` is not a
    spare of this cluster or already has a container."""
    spec = cluster.spec()
    if spec is None:
        raise UsageError(f"cluster {cluster.name!r} records no spec (brought up by an older chaos): it has no "
                         "spare ids", hint="bring it up again with this version (`chaos up --spares N`)")
    if cluster.backend != "local":
        raise UsageError("adding a node needs the local backend")
    if node not in spec.spare_ids:
        raise UsageError(f"{node!r} is not a spare id of cluster {cluster.name!r} (spares: "
                         f"{', '.join(spec.spare_ids) or 'none'})",
                         hint="a node can join only under an id reserved at `chaos up` (--spares, --spare-workers)")
    if node in cluster.handles:
        raise UsageError(f"{node} is in use in cluster {cluster.name!r} (container "
                         f"{L.container_name(cluster.name, node)}); a node joins under a NEW id",
                         hint="leave --id out to take the next free spare id")
    return _start_joiner(cluster, spec, node, join_token)


def restart_as_joiner(cluster: Cluster, node: str, join_token: str) -> NodeHandle:
    """Replace the stopped container of `node` by a new one under the SAME id, on the same data
    volume and address, started with `join_token`: a machine reinstalled and joined again under its
    old name. After a wipe the cluster must refuse it (identity-in-use while the id is in the
    configuration, identity-retired once removed: docs/contracts.md section 6), and the process exits
    with status 4. Used by the Docker tests to show that refusal; the Swarm way is a new id
    (`start_spare`). UsageError when `node` is running or the cluster records no spec."""
    spec = cluster.spec()
    if spec is None or cluster.backend != "local":
        raise UsageError(f"cluster {cluster.name!r} records no spec or is not on the local backend")
    old = cluster.container(node)
    with engine_errors(f"inspect {node}"):
        old.reload()
        if old.attrs["State"].get("Running"):
            raise UsageError(f"{node} is running: stop (and wipe) it first")
        old.remove()   # the container only: its data volume stays
    return _start_joiner(cluster, spec, node, join_token)


def _start_joiner(cluster: Cluster, spec: ClusterSpec, node: str, join_token: str | None) -> NodeHandle:
    """`node`'s container made as `up` makes every node's (`_start_node`: the image of a sibling, the
    cluster network, the address kept for it, its volume), joining with `join_token` (a manager)."""
    client = cluster.client
    sibling = next((cluster.handles[n].container for n in cluster.nodes if n != node), None)
    if sibling is None:
        raise UsageError(f"cluster {cluster.name!r} has no node container to copy the image from")
    image = (sibling.attrs.get("Config") or {}).get("Image") or sibling.image.id
    net_name = L.network_name(cluster.name, cluster.run_id)
    with engine_errors("inspect the cluster network"):
        net = client.networks.get(net_name)
        subnet = ((net.attrs.get("IPAM") or {}).get("Config") or [{}])[0].get("Subnet")
    try:
        addresses = ipaddress.ip_network(subnet) if subnet else None
    except ValueError:
        addresses = None
    ip = _static_ips(addresses if isinstance(addresses, ipaddress.IPv4Network) else None,
                     address_order(spec)).get(node)
    # published as its siblings were (HostConfig keeps the bindings of a stopped container too)
    publish = bool((sibling.attrs.get("HostConfig") or {}).get("PortBindings"))
    c = _start_node(client, spec, cluster.run_id, image, net_name, node, spec.topology(), ip=ip,
                    join_token=join_token if spec.kind(node) == "manager" else None, publish=publish)
    handle = NodeHandle(node, spec.kind(node), c)
    cluster.handles = {**cluster.handles, node: handle}
    return handle


# -- the swarm backend (design: chaos/env/hosts.py) ---------------------------------------------------


def _swarm_shard_count(spec: ClusterSpec, n_hosts: int) -> int:
    n = spec.managers + spec.workers
    shards = H.swarm_shards(spec.shards, n_hosts, n)
    if spec.toxiproxy_shards is not None and spec.toxiproxy_shards != shards:
        raise UsageError(f"--toxiproxy-shards {spec.toxiproxy_shards} does not fit {n_hosts} host(s): on the swarm "
                         "backend the shard count is a multiple of the host count (each node's links on a shard "
                         f"of its own host); {shards} here",
                         hint="leave --toxiproxy-shards out on the swarm backend")
    return shards


def _prepare_swarm(client: docker.DockerClient, inventory: H.Inventory, node_image: str,
                   toxiproxy: ToxiproxyChoice, progress: Progress) -> S.HostClients:
    """Connect every host, check it is in the manager's swarm, copy missing images (by id)."""
    progress.step(f"swarm backend: {len(inventory.hosts)} host(s): "
                  + ", ".join(f"{h.name} ({h.engine})" for h in inventory.hosts))
    hosts = S.HostClients.connect(inventory, client)
    S.check_swarm(hosts)
    done: set[int] = {id(client)}
    for h in inventory.hosts:
        target = hosts[h.name]
        if id(target) in done:
            continue
        done.add(id(target))
        for image in sorted({node_image, toxiproxy.image}):
            what = S.ensure_image(client, target, image)
            progress.step(f"image {image} on host {h.name}: {what}")
    return hosts


def _create_swarm(hosts: S.HostClients, spec: ClusterSpec, run_id: str, image: str,
                  toxiproxy: ToxiproxyChoice, progress: Progress) -> tuple[Cluster, int]:
    """As `_create`, across hosts: the attachable overlay network on the manager; Toxiproxy shard k
    on host k mod H (shard 0, with the client proxies, on host 0, the harness's host); node i on host
    i mod H, each created through its host's engine.

    How the harness reaches things. Client traffic: the client proxies of shard 0 are published on
    the harness host's 127.0.0.1, as on the local backend, so client traffic keeps its fault path
    (client -> shard 0 -> overlay -> node). Control plane (node status/probe/journal APIs and each
    shard's Toxiproxy API): on host 0, ports published on 127.0.0.1 as on the local backend; on any
    other host, through the control gateway -- a compatible Toxiproxy server on host 0 whose proxies
    never get toxics, forwarding one 127.0.0.1 port per remote target over the overlay network. A
    port published on another host's loopback is not reachable from the harness, and publishing on
    other addresses would expose the cluster; the gateway needs no ssh tunnel and no open port on any
    other host. It exists only when some target is on another host.
    """
    topology = spec.topology()
    names = hosts.inventory.names
    local = hosts.local
    first = names[0]
    net_name = L.network_name(spec.name, run_id)
    progress.step(f"overlay network {net_name} (attachable, on the swarm manager {first})")
    S.overlay_create(hosts, net_name, {**L.object_labels(spec.name, run_id), OWNER_LABEL: runs.this_owner()})
    lim = spec.limits
    handles: dict[str, NodeHandle] = {}
    where = H.placement(spec.node_ids, names)
    shard_names = [topology.shard_host(k, L.TOXIPROXY_NODE) for k in range(topology.shards)]
    for k, shard in enumerate(shard_names):
        where[shard] = H.shard_host(k, names)
    remote = {t: p for t, p in H.gateway_ports(spec.node_ids, topology.shards).items() if where[t] != first}

    def run(client, img, name, kind, host, entrypoint, command, ports, mem, pids, shares):
        labels = {**L.object_labels(spec.name, run_id, name, kind), S.HOST_LABEL: host}
        with engine_errors(f"start the {kind} container {name} on host {host}"):
            c = client.containers.run(
                img, command, entrypoint=entrypoint, detach=True, name=L.container_name(spec.name, name),
                hostname=name, labels=labels, network=net_name, ports=ports,
                networking_config={net_name: client.api.create_endpoint_config(aliases=[name])},
                **_hardening(mem, pids, lim.read_only, shares))
            c.reload()
        return NodeHandle(name, kind, c, host)

    progress.step(f"Toxiproxy ({toxiproxy.image}): {len(topology.links)} link proxies on {topology.shards} "
                  f"server(s) over {len(names)} host(s)"
                  + (f"; control gateway on {first} for {len(remote)} target(s) on other hosts" if remote else ""))
    api_port = {f"{TOXIPROXY_API_PORT}/tcp": ("127.0.0.1", None)}
    client_ports = {f"{port}/tcp": ("127.0.0.1", None) for port in topology.client_ports().values()}
    starts = {shard: (hosts[where[shard]], toxiproxy.image, shard, "toxiproxy", where[shard], toxiproxy.entrypoint(),
                      toxiproxy.command(spec.seed + k),
                      {**api_port, **(client_ports if k == 0 else {})} if where[shard] == first else {},
                      lim.toxiproxy_mem, lim.toxiproxy_pids, lim.toxiproxy_cpu_shares)
              for k, shard in enumerate(shard_names)}
    if remote:
        starts[H.GATEWAY_NODE] = (
            local, image, H.GATEWAY_NODE, "gateway", first, ["python3", "-m", "swarmnode.toxiproxy"],
            ["-host", "0.0.0.0", "-port", str(TOXIPROXY_API_PORT), "-seed", str(spec.seed)],
            {**api_port, **{f"{p}/tcp": ("127.0.0.1", None) for p in remote.values()}},
            lim.toxiproxy_mem, lim.toxiproxy_pids, lim.toxiproxy_cpu_shares)
    slots = hosts.slots(create_parallel())

    def run_bounded(args):
        with slots[args[4]]:
            return run(*args)

    pool = ThreadPoolExecutor(max_workers=create_parallel())
    try:   # the servers start in parallel: each takes about a second to answer
        futures = {name: pool.submit(run_bounded, args) for name, args in starts.items()}
        for name, fut in futures.items():
            handles[name] = fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    cluster = Cluster(local, spec.name, run_id, handles, hosts=hosts)
    if remote:
        gw = ToxiproxyAPI(cluster.gateway_api_url(), timeout_s=30)
        _wait_toxiproxy(gw, handles, spec.name)
        gw.populate([{"name": f"ctl-{target}", "listen": f"0.0.0.0:{port}",
                      "upstream": f"{target}:{TOXIPROXY_API_PORT if target in shard_names else AGENT_API_PORT}",
                      "enabled": True} for target, port in remote.items()])
    api = cluster.toxiproxy_api(timeout_s=30, topology=topology)
    _wait_toxiproxy(api, handles, spec.name)
    LinkController(api, topology).create_proxies()

    progress.step(f"{spec.managers} managers and {spec.workers} workers from {image}, placed over "
                  + ", ".join(f"{h}: {sum(1 for n in spec.node_ids if where[n] == h)}" for h in names))
    slots = hosts.slots(create_parallel())

    def start(n: str):
        with slots[where[n]]:
            return _start_node(hosts[where[n]], spec, run_id, image, net_name, n, topology, where[n], where[n] == first)

    pool = ThreadPoolExecutor(max_workers=create_parallel())
    try:
        futures = {n: pool.submit(start, n) for n in spec.node_ids}
        for i, (n, fut) in enumerate(futures.items(), 1):
            handles[n] = NodeHandle(n, spec.kind(n), fut.result(), where[n])
            progress.detail(f"started {i}/{len(futures)}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return cluster, len(topology.links)


def _wait_toxiproxy(api, handles: dict[str, NodeHandle], name: str) -> None:
    try:
        api.wait_ready(deadline=TOXIPROXY_READY_S)
    except EnvironmentError_ as exc:
        states = []
        for node, h in handles.items():
            h.container.reload()
            states.append(f"{node} {h.container.status}")
        raise EnvironmentError_(f"Toxiproxy did not answer within {TOXIPROXY_READY_S:.0f} s "
                                f"({', '.join(states)}): {exc.message}",
                                hint=f"`chaos logs toxiproxy --name {name}`") from exc
