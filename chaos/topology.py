"""Which directed links exist in a cluster, and the Toxiproxy proxy name and port of each.

Owns: the link table of DESIGN.md section 5 and the link rule of docs/contracts.md section 2: proxy
`A-B` carries exactly A's traffic to B. Every ordered pair of distinct nodes talks (manager<->manager
for Raft, worker->manager and manager->worker for the dispatcher, worker<->worker for gossip), and the
harness's client traffic reaches every node's HTTP API through a proxy `client-<node>`.

Pure: no I/O, no clock, no randomness. Must not import requests, docker, toxiproxy or chaos.toxi.

Sharding: a Docker engine caps a container's open files (20,000 here, and a container cannot raise
it), and one proxied link holds three descriptors (its listener and both ends of a connection), so
one Toxiproxy server cannot carry 3 managers + 100 workers (10,609 links). With `shards` > 1 the
links are spread over several servers: every link of one source node lives on the shard
`shard_of_node(src)` (node index modulo shards), client links on shard 0. A proxy is named the same
whatever the shard count; it is addressed as (its shard's server, its port).

Port assignment is deterministic and per shard: each Toxiproxy server is its own container with
its own port space, so a port only has to be unique within its shard. The links are ordered client
links first (in node order), then peer links in node order (managers as given, then workers as
given; for each source every destination in that order); the i-th link of a shard, in that order,
listens on `base_port + i`. With one shard this is the i-th link of the whole table, as it always
was. The port range bounds the links of ONE shard (65535 - base_port + 1, 45,536 from 20000), not
the whole table: the ceiling on a cluster's size is set by links per shard (descriptors) and how
many shards a host runs, not by the port range. Changing the node lists or the shard count changes
the ports; a given topology always gets the same ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple

CLIENT = "client"
"""Pseudo node id of the harness's clients. Client links are `(CLIENT, node)`; no node may use it."""

NODE_ID_RE = re.compile(r"[a-z][a-z0-9]*\Z")
MAX_PORT = 65535


class Link(NamedTuple):
    """A directed link: `src` sends to `dst` on connections that `src` dials."""

    src: str
    dst: str

    @property
    def name(self) -> str:
        """The Toxiproxy proxy name of this link (`src-dst`)."""
        return f"{self.src}-{self.dst}"

    @property
    def is_client(self) -> bool:
        return self.src == CLIENT


@dataclass(frozen=True)
class Endpoint:
    """Where a node's listeners are, as seen from the Toxiproxy server (upstream side)."""

    host: str
    peer_port: int = 7000
    api_port: int = 8080


def parse_proxy_name(name: str) -> Link:
    """Inverse of `Link.name`. Node ids contain no '-', so the split is unambiguous."""
    src, sep, dst = name.partition("-")
    if not sep or not NODE_ID_RE.match(src) or not NODE_ID_RE.match(dst):
        raise ValueError(f"not a link proxy name: {name!r}")
    return Link(src, dst)


class Topology:
    """The link table of one cluster. Immutable after construction.

    `endpoints` overrides where a node's peer and API listeners are (default: host = node id, peer
    port `peer_port`, API port `api_port`, i.e. the Docker network names of docs/contracts.md). Tests
    on loopback pass `Endpoint("127.0.0.1", port, port)` per node. `shared_port_space`: number the
    ports over the whole table, not per shard, for shard servers that listen on one address.
    """

    def __init__(
        self,
        managers: list[str],
        workers: list[str],
        base_port: int = 20000,
        *,
        peer_port: int = 7000,
        api_port: int = 8080,
        endpoints: Mapping[str, Endpoint] | None = None,
        shards: int = 1,
        shared_port_space: bool = False,
    ):
        self.managers: tuple[str, ...] = tuple(managers)
        self.workers: tuple[str, ...] = tuple(workers)
        self.nodes: tuple[str, ...] = self.managers + self.workers
        _check_ids(self.nodes)
        if not self.managers:
            raise ValueError("a topology needs at least one manager")
        for port_name, port in (("base_port", base_port), ("peer_port", peer_port), ("api_port", api_port)):
            if not 1 <= port <= MAX_PORT:
                raise ValueError(f"{port_name} {port} is outside 1..{MAX_PORT}")
        self.base_port = base_port
        if not isinstance(shards, int) or not 1 <= shards <= len(self.nodes):
            raise ValueError(f"shards must be an integer in 1..{len(self.nodes)} (one per node at most)")
        self.shards = shards
        self._node_index = {n: i for i, n in enumerate(self.nodes)}
        endpoints = dict(endpoints or {})
        unknown = sorted(set(endpoints) - set(self.nodes))
        if unknown:
            raise ValueError(f"endpoints given for unknown nodes: {', '.join(unknown)}")
        self.endpoints: dict[str, Endpoint] = {
            n: endpoints.get(n, Endpoint(n, peer_port, api_port)) for n in self.nodes
        }
        links = [Link(CLIENT, n) for n in self.nodes]
        links += [Link(a, b) for a in self.nodes for b in self.nodes if a != b]
        self.links: tuple[Link, ...] = tuple(links)
        self._index: dict[Link, int] = {link: i for i, link in enumerate(links)}
        # the link's position within its shard: its port is base_port + that (shared_port_space:
        # within the whole table, for shards that share one address, e.g. processes on a loopback)
        self.shared_port_space = shared_port_space
        per_shard = [0] * shards
        self._port: dict[Link, int] = {}
        for link in links:
            k = 0 if shared_port_space else self.shard_of_node(link.src)
            self._port[link] = base_port + per_shard[k]
            per_shard[k] += 1
        self.links_per_shard: tuple[int, ...] = tuple(per_shard)
        last = base_port + max(per_shard) - 1
        if last > MAX_PORT:
            worst = per_shard.index(max(per_shard))
            raise ValueError(
                f"{max(per_shard)} links on shard {worst} from base_port {base_port} would need ports up to "
                f"{last} > {MAX_PORT} (ports are per shard: more shards spread the links)"
            )

    @classmethod
    def named(cls, n_managers: int, n_workers: int, base_port: int = 20000, **kwargs) -> "Topology":
        """The conventional ids of docs/contracts.md: managers m1..mN, workers w1..wN."""
        return cls([f"m{i}" for i in range(1, n_managers + 1)],
                   [f"w{i}" for i in range(1, n_workers + 1)], base_port, **kwargs)

    # -- queries ---------------------------------------------------------------------------------

    @property
    def peer_links(self) -> tuple[Link, ...]:
        return self.links[len(self.nodes):]

    @property
    def client_links(self) -> tuple[Link, ...]:
        return self.links[: len(self.nodes)]

    def has_link(self, src: str, dst: str) -> bool:
        return Link(src, dst) in self._index

    def link(self, src: str, dst: str) -> Link:
        link = Link(src, dst)
        if link not in self._index:
            raise KeyError(f"no link {src}->{dst} in this topology")
        return link

    def proxy_name(self, src: str, dst: str) -> str:
        return self.link(src, dst).name

    def listen_port(self, src: str, dst: str) -> int:
        return self._port[self.link(src, dst)]

    def upstream(self, src: str, dst: str) -> str:
        ep = self.endpoints[self.link(src, dst).dst]
        port = ep.api_port if src == CLIENT else ep.peer_port
        return f"{ep.host}:{port}"

    def shard_of_node(self, node: str) -> int:
        """The shard holding every link whose source is `node` (the client's links: shard 0)."""
        if node == CLIENT:
            return 0
        return self._node_index[node] % self.shards

    def shard_of(self, link: Link | tuple[str, str] | str) -> int:
        """The shard of one link, given as a Link, a (src, dst) pair or a proxy name."""
        link = parse_proxy_name(link) if isinstance(link, str) else Link(*link)
        return self.shard_of_node(self.link(link.src, link.dst).src)

    @staticmethod
    def shard_host(shard: int, toxiproxy_host: str = "toxiproxy") -> str:
        """Host name of a shard's server: `toxiproxy`, `toxiproxy2`, `toxiproxy3`..."""
        return toxiproxy_host if shard == 0 else f"{toxiproxy_host}{shard + 1}"

    def peers_for(self, node: str, toxiproxy_host: str = "toxiproxy") -> dict[str, str]:
        """The CHAOS_PEERS value of `node`: each peer -> the proxy address of the link node->peer
        (on the shard that holds `node`'s links)."""
        if node not in self.endpoints:
            raise KeyError(f"unknown node {node!r}")
        host = self.shard_host(self.shard_of_node(node), toxiproxy_host)
        return {p: f"{host}:{self.listen_port(node, p)}" for p in self.nodes if p != node}

    def client_ports(self) -> dict[str, int]:
        """node -> listen port of the proxy `client-<node>` (the harness's way to that node's API)."""
        return {n: self.listen_port(CLIENT, n) for n in self.nodes}

    def proxy_specs(self, listen_host: str = "0.0.0.0", shard: int | None = None) -> list[dict]:
        """Items for Toxiproxy's `/populate`: one enabled proxy per link (of `shard` only, when
        given), in link order (port order within each shard)."""
        return [
            {
                "name": link.name,
                "listen": f"{listen_host}:{self._port[link]}",
                "upstream": self.upstream(link.src, link.dst),
                "enabled": True,
            }
            for link in self.links
            if shard is None or self.shard_of_node(link.src) == shard
        ]

    def resolve(self, links: Iterable[Link | tuple[str, str] | str]) -> list[Link]:
        """Normalise links given as Link, (src, dst) pairs or proxy names; sorted, de-duplicated.

        An unknown link is the caller's bug: KeyError naming it.
        """
        out: set[Link] = set()
        for item in links:
            link = parse_proxy_name(item) if isinstance(item, str) else Link(*item)
            self.link(link.src, link.dst)
            out.add(link)
        return sorted(out, key=self._index.__getitem__)

    def __repr__(self) -> str:
        return (
            f"Topology(managers={list(self.managers)}, workers={list(self.workers)}, "
            f"base_port={self.base_port}, links={len(self.links)}, shards={self.shards}"
            + (", shared_port_space=True" if self.shared_port_space else "") + ")"
        )


def _check_ids(nodes: tuple[str, ...]) -> None:
    bad = [n for n in nodes if not isinstance(n, str) or not NODE_ID_RE.match(n)]
    if bad:
        raise ValueError(f"node ids must match [a-z][a-z0-9]*: {bad}")
    if CLIENT in nodes:
        raise ValueError(f"{CLIENT!r} is reserved for the harness's client links")
    seen: set[str] = set()
    dups = sorted({n for n in nodes if n in seen or seen.add(n)})
    if dups:
        raise ValueError(f"duplicate node ids: {dups}")
