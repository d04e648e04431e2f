"""The swarm backend's Docker side: one client per inventory host, the Swarm membership check, the
attachable overlay network, copying the node image to hosts that lack it, and finding a swarm run's
inventory again from its overlay network.

Owns: `HostClients` (host name -> DockerClient, the harness's own engine reused for `local`),
`check_swarm`, `overlay_create`, `ensure_image`, `run_inventories`. The design choice (plain
containers on an attachable overlay network, not Swarm services) and the placement arithmetic are
explained in chaos/env/hosts.py. chaos never initialises, joins or leaves a swarm: the user (or the
test that needs one) does, so `down`/`cleanup` never change swarm membership.
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import docker
import docker.errors
import requests

from chaos.env import labels as L
from chaos.env.engine import _short, engine_errors
from chaos.env.hosts import LOCAL_ENGINE, Host, Inventory
from chaos.errors import EnvironmentError_

BACKEND_LABEL = "chaos.backend"
INVENTORY_LABEL = "chaos.inventory"
HOST_LABEL = "chaos.host"
REMOTE_TIMEOUT_S = 60
# Docker API calls in flight at once to one ssh:// engine. The SDK's paramiko transport opens one SSH
# session channel (running `docker system dial-stdio` there) per HTTP connection, over one SSH
# connection, and OpenSSH's sshd refuses more than MaxSessions (default 10) channels on one
# connection ("no more sessions" in its log; "open failed: Connect failed" here). The SDK keys its
# connection pools by request URL and keeps up to `num_pools` of them (9 by default for ssh), each
# holding idle sessions, so a `chaos run` touching a dozen URLs ran out of sessions. With one pool
# (`num_pools=1`: an evicted pool closes its sessions) of at most SSH_PARALLEL connections and at most
# SSH_PARALLEL calls in flight (every concurrent caller in chaos bounds itself), at most
# 2 x SSH_PARALLEL = 8 sessions are open at once.
SSH_PARALLEL = 4
IMAGE_CHUNK = 2 * 1024 * 1024


def connect_host(host: Host, local: docker.DockerClient, timeout_s: int = REMOTE_TIMEOUT_S) -> docker.DockerClient:
    """A client for one host's engine, checked with a ping. `local` is reused for engine `local`."""
    if host.engine == LOCAL_ENGINE:
        return local
    try:
        # use_ssh_client=False: the SDK's paramiko transport, which reads ~/.ssh/config (IdentityFile,
        # Port, User) and ~/.ssh/known_hosts (unknown host keys are rejected, never accepted blindly).
        client = docker.DockerClient(base_url=host.engine, timeout=timeout_s, use_ssh_client=False,
                                     max_pool_size=SSH_PARALLEL, num_pools=1)
        client.ping()
    except ImportError as exc:   # docker.transport.sshconn needs paramiko
        raise EnvironmentError_(f"host {host.name}: ssh:// engines need paramiko ({exc})",
                                hint="pip install 'docker[ssh]'") from exc
    except (docker.errors.DockerException, requests.RequestException, OSError, Exception) as exc:
        raise EnvironmentError_(f"host {host.name}: engine {host.engine} unreachable: {_short(exc)}",
                                hint="check `ssh` to that host works without a password prompt, its host "
                                     "key is in ~/.ssh/known_hosts, and its user may use Docker") from exc
    return client


def parallel_for(engine: str, default: int) -> int:
    """How many Docker API calls chaos may have in flight to this engine at once."""
    return min(default, SSH_PARALLEL) if engine.startswith("ssh://") else default


@dataclass
class HostClients:
    inventory: Inventory
    clients: dict[str, docker.DockerClient]

    @classmethod
    def connect(cls, inventory: Inventory, local: docker.DockerClient) -> "HostClients":
        clients: dict[str, docker.DockerClient] = {}
        by_url: dict[str, docker.DockerClient] = {}
        for h in inventory.hosts:
            if h.engine not in by_url:
                by_url[h.engine] = connect_host(h, local)
            clients[h.name] = by_url[h.engine]
        return cls(inventory, clients)

    @property
    def local(self) -> docker.DockerClient:
        return self.clients[self.inventory.hosts[0].name]

    def __getitem__(self, host: str) -> docker.DockerClient:
        return self.clients[host]

    def slots(self, default: int) -> dict[str, "threading.BoundedSemaphore"]:
        """host -> a semaphore bounding concurrent API calls to its engine (shared by hosts that
        name the same engine)."""
        by_engine: dict[str, threading.BoundedSemaphore] = {}
        out = {}
        for h in self.inventory.hosts:
            if h.engine not in by_engine:
                by_engine[h.engine] = threading.BoundedSemaphore(parallel_for(h.engine, default))
            out[h.name] = by_engine[h.engine]
        return out


def swarm_node_id(client: docker.DockerClient) -> tuple[str, str, bool]:
    """(LocalNodeState, NodeID, ControlAvailable) of an engine."""
    with engine_errors("read the engine's swarm state"):
        sw = client.info().get("Swarm") or {}
    return sw.get("LocalNodeState", "inactive"), sw.get("NodeID", ""), bool(sw.get("ControlAvailable"))


def check_swarm(hosts: HostClients) -> dict[str, str]:
    """Every host's engine is an active member of the swarm whose manager is hosts[0]. Returns host ->
    swarm node id. Raises EnvironmentError_ naming every host that is not."""
    state, _node, manager = swarm_node_id(hosts.local)
    first = hosts.inventory.hosts[0].name
    if state != "active" or not manager:
        raise EnvironmentError_(
            f"the engine of host {first} is not a Swarm manager (swarm state: {state})",
            hint="run `docker swarm init --advertise-addr ADDR` there, and `docker swarm join` on every other "
                 "host (README: running across several hosts)")
    with engine_errors("list the swarm's nodes"):
        members = {n.id: (n.attrs.get("Status") or {}).get("State") for n in hosts.local.nodes.list()}
    out, problems = {}, []
    for h in hosts.inventory.hosts:
        st, node, _ = swarm_node_id(hosts[h.name])
        if st != "active" or node not in members:
            problems.append(f"{h.name} (swarm state {st})")
        elif members[node] != "ready":
            problems.append(f"{h.name} (swarm node {node[:12]} is {members[node]})")
        else:
            out[h.name] = node
    if problems:
        raise EnvironmentError_("hosts not ready in the manager's swarm: " + ", ".join(problems),
                                hint="`docker swarm join` them (`docker swarm join-token worker` on the manager "
                                     "prints the command); `docker node ls` shows their state")
    return out


def overlay_create(hosts: HostClients, name: str, labels: dict[str, str]) -> None:
    """The cluster's attachable overlay network, created on the manager (hosts[0])."""
    with engine_errors("create the cluster's overlay network"):
        hosts.local.networks.create(name, driver="overlay", attachable=True, check_duplicate=True,
                                    labels={**labels, BACKEND_LABEL: "swarm",
                                            INVENTORY_LABEL: hosts.inventory.to_label()})


def ensure_image(source: docker.DockerClient, target: docker.DockerClient, tag: str) -> str:
    """Make `tag` present on `target` with the same image id as on `source` (no registry: the image
    is streamed with save/load through the two engines' APIs). Returns what was done."""
    with engine_errors(f"inspect image {tag}"):
        want = source.images.get(tag).id
    try:
        if target.images.get(tag).id == want:
            return "present"
    except docker.errors.ImageNotFound:
        pass
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EnvironmentError_(f"cannot inspect image {tag} on a host: {_short(exc)}") from exc
    return copy_image(source, target, want, tag)


def copy_image(source: docker.DockerClient, target: docker.DockerClient, image_id: str, tag: str) -> str:
    """Stream image `image_id` from `source` to `target` (`docker save | docker load` through the two
    engines' APIs, never through a file or a registry), tag it `tag` there, and check the id."""
    repo, _, version = tag.rpartition(":")
    with engine_errors(f"copy image {tag} (save on the harness's engine, load on the host)"):
        target.api.load_image(source.api.get_image(image_id, chunk_size=IMAGE_CHUNK))
        target.api.tag(image_id, repo, version)
        got = target.images.get(tag).id
    if got != image_id:
        raise EnvironmentError_(f"image {tag} copied but its id on the host is {got[:19]}, not {image_id[:19]}",
                                hint="remove the stale image on that host and retry")
    return "copied"


def run_inventories(local: docker.DockerClient, cluster: str | None = None,
                    run_id: str | None = None) -> dict[tuple[str, str], Inventory]:
    """(cluster, run id) -> inventory, for every swarm-backend run whose overlay network is on the
    manager `local`."""
    filters = L.selector(cluster=cluster, run_id=run_id)
    filters["label"].append(f"{BACKEND_LABEL}=swarm")
    out = {}
    with engine_errors("list overlay networks"):
        nets = local.networks.list(filters=filters)
    for n in nets:
        lab = (n.attrs or {}).get("Labels") or {}
        if not L.is_ours(lab, cluster) or INVENTORY_LABEL not in lab:
            continue
        try:
            out[(lab.get(L.CLUSTER_LABEL, ""), lab.get(L.RUN_LABEL, ""))] = Inventory.from_label(lab[INVENTORY_LABEL])
        except Exception:   # a label we cannot read: nothing to sweep remotely, the local pass still runs
            continue
    return out
