"""The swarm backend as data: the host inventory, where each node and Toxiproxy shard goes, and the
control gateway's port table.

Owns: `Host`, `Inventory` (parsed and validated from a YAML/JSON file or a mapping, every problem
reported at once), `placement` (node -> host), `swarm_shards` (how many Toxiproxy servers, a multiple
of the host count), and `gateway_ports`. Pure: no Docker calls, no clock, no randomness.
Must not import: docker, click, chaos.cli.

Design (issue 15). "swarm" means Docker Swarm mode supplies the cross-host network -- an attachable
overlay network created on a manager -- and the membership the harness checks; the containers are
plain containers created through the engine of the host that runs them, not Swarm services. A Swarm
service replaces a task whose container exits (even with restart condition `none` the task is gone
for good and a new one would get a new container and, without a host-pinned named volume, new
state), so a `kill` would not stay killed until the nemesis restarts it, and `restart` could not
bring back the same container with its data volume. A plain container on an attachable overlay keeps
every node fault exactly as on the local backend: kill/stop/pause/restart act on that container on
its host's engine, and its volume lives on that host.

Placement is arithmetic on the node order (managers first, then workers, as in `ClusterSpec`):
node i runs on host i mod H. So managers land on distinct hosts while there are enough of them,
workers spread evenly (host counts differ by at most one), and because the Toxiproxy sharding of
`chaos.topology` puts every link of node i on shard i mod S, choosing S a multiple of H and shard k on
host k mod H puts each node's outgoing links on a shard of its own host: a cut is applied where the
traffic leaves. Shard 0 (which also carries the client links) is on host 0, the harness's host.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from chaos.errors import UsageError

LOCAL_ENGINE = "local"   # the engine the harness reaches from its environment (DOCKER_HOST or socket)
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_SSH_URL = re.compile(r"^ssh://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._-]+(?::\d{1,5})?$")
_UNIX_URL = re.compile(r"^unix:///[^\s]+$")
MAX_HOSTS = 64
GATEWAY_NODE = "gateway"          # container/alias of the control gateway (host 0)
GATEWAY_SHARD_BASE_PORT = 18900   # gateway listener for Toxiproxy shard k: 18900 + k
GATEWAY_NODE_BASE_PORT = 19000    # gateway listener for node i's API: 19000 + i
BACKENDS = ("local", "swarm")


@dataclass(frozen=True)
class Host:
    name: str
    engine: str   # "local", unix:///path or ssh://[user@]host[:port]

    def as_dict(self) -> dict:
        return {"name": self.name, "engine": self.engine}


@dataclass(frozen=True)
class Inventory:
    """The hosts of a swarm-backend cluster. hosts[0] is where the harness runs: its engine must be
    reachable as `local` (or a unix socket on this machine) and be a Swarm manager."""

    hosts: tuple[Host, ...]

    def __post_init__(self) -> None:
        problems = validate_hosts(self.hosts)
        if problems:
            raise UsageError("inventory: " + "; ".join(problems),
                             hint="hosts: [{name: h1, engine: local}, {name: h2, engine: ssh://user@host}]")

    @classmethod
    def single_local(cls) -> "Inventory":
        """The default inventory: one host, this machine's engine (a one-node swarm)."""
        return cls((Host("local", LOCAL_ENGINE),))

    @classmethod
    def from_data(cls, data: object) -> "Inventory":
        if not isinstance(data, Mapping) or not isinstance(data.get("hosts"), list):
            raise UsageError("inventory: expected a mapping with a list `hosts`",
                             hint="hosts: [{name: h1, engine: local}, {name: h2, engine: ssh://user@host}]")
        hosts, problems = [], []
        for i, item in enumerate(data["hosts"]):
            if not isinstance(item, Mapping) or set(item) - {"name", "engine"} or "name" not in item \
                    or "engine" not in item:
                problems.append(f"hosts[{i}]: expected exactly the keys name and engine")
                continue
            hosts.append(Host(str(item["name"]), str(item["engine"])))
        if problems:
            raise UsageError("inventory: " + "; ".join(problems))
        return cls(tuple(hosts))

    @classmethod
    def from_file(cls, path: str | Path) -> "Inventory":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"inventory {p}: cannot read it ({exc.strerror or exc})") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"inventory {p}: not YAML/JSON: {str(exc).splitlines()[0]}") from exc
        return cls.from_data(data)

    @classmethod
    def from_label(cls, text: str) -> "Inventory":
        """Inverse of `to_label` (the overlay network carries the inventory of its run)."""
        return cls.from_data({"hosts": json.loads(text)})

    def to_label(self) -> str:
        return json.dumps([h.as_dict() for h in self.hosts], separators=(",", ":"))

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


def validate_hosts(hosts: Sequence[Host]) -> list[str]:
    problems = []
    if not 1 <= len(hosts) <= MAX_HOSTS:
        problems.append(f"between 1 and {MAX_HOSTS} hosts are needed (got {len(hosts)})")
    seen = set()
    for h in hosts:
        if not _HOST_NAME.match(h.name):
            problems.append(f"host name {h.name!r} must match [a-z][a-z0-9-]{{0,30}}")
        if h.name in seen:
            problems.append(f"host name {h.name!r} appears twice")
        seen.add(h.name)
        if not (h.engine == LOCAL_ENGINE or _SSH_URL.match(h.engine) or _UNIX_URL.match(h.engine)):
            problems.append(f"host {h.name}: engine {h.engine!r} must be `local`, unix:///PATH or "
                            "ssh://[user@]host[:port]")
    if hosts and hosts[0].engine.startswith("ssh://"):
        problems.append(f"the first host ({hosts[0].name}) is where the harness runs and publishes its "
                        "loopback ports: its engine must be `local` or a unix socket, not ssh://")
    return problems


def placement(nodes: Sequence[str], hosts: Sequence[str]) -> dict[str, str]:
    """node -> host: node i (in cluster order, managers first) on host i mod H."""
    if not hosts:
        raise ValueError("no hosts")
    return {n: hosts[i % len(hosts)] for i, n in enumerate(nodes)}


def swarm_shards(needed: int, n_hosts: int, n_nodes: int) -> int:
    """Toxiproxy servers on the swarm backend: at least `needed` (the link budget), a multiple of the
    host count so that shard i mod S lives on host i mod H (see the module docstring), and never more
    than one per node (chaos.topology's bound): when H exceeds the node count, S = the node count
    (every node is then alone on its host and shard i = host i)."""
    if n_hosts >= n_nodes:
        return n_nodes
    per_host = -(-max(1, needed) // n_hosts)
    shards = per_host * n_hosts
    while shards > n_nodes:   # shards must stay <= nodes; fall back to fewer per host
        per_host -= 1
        shards = per_host * n_hosts
    return max(n_hosts, shards)


def shard_host(shard: int, hosts: Sequence[str]) -> str:
    return hosts[shard % len(hosts)]


def gateway_ports(nodes: Sequence[str], shards: int) -> dict[str, int]:
    """The control gateway's listen port of each target: node API ports and Toxiproxy shard APIs
    (keyed by the shard's container name: toxiproxy, toxiproxy2, ...)."""
    from chaos.topology import Topology

    ports = {n: GATEWAY_NODE_BASE_PORT + i for i, n in enumerate(nodes)}
    for k in range(shards):
        ports[Topology.shard_host(k)] = GATEWAY_SHARD_BASE_PORT + k
    return ports
