"""What a cluster is, as data: node ids, the agent environment of each node, container settings.

Owns: `ClusterSpec` (validated, frozen), the per-node CHAOS_* environment of docs/contracts.md
section 2 (CHAOS_PEERS from `Topology.peers_for`), per-node seeds derived from the cluster seed, and
the container hardening settings. Pure: no Docker calls, no clock, no module-level random.
Must not import: docker, click, chaos.cli.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from chaos.env.labels import valid_cluster_name
from chaos.errors import UsageError
from chaos.topology import Topology

AGENT_PEER_PORT = 7000
AGENT_API_PORT = 8080
TOXIPROXY_API_PORT = 8474
TOXIPROXY_BASE_PORT = 20000
OFFICIAL_TOXIPROXY = "ghcr.io/shopify/toxiproxy:2.12.0"
MAX_MANAGERS = 9
# Links per Toxiproxy shard. A proxied link holds up to three descriptors in its server (listener and
# both ends of one connection) and the engine caps a container at 20,000 open files (it refused a
# container's request for more), so 5,000 links (15,000 descriptors) leave room for the clients'
# connections. 3 managers + 100 workers (10,609 links) therefore get 3 shards; up to 3 + 67, one.
LINKS_PER_SHARD = 5000
DISK_FAULT_DATA_MB = 64   # data volume size of a cluster whose plan has a disk-full fault
MAX_WORKERS = 200  # bounded: each node adds ~2 x (nodes) proxies; 200 workers = ~41,000 proxies
MAX_SPARES = 8     # spare ids per role (each adds 2 x (nodes) link proxies that wait for a joiner)
SPEC_LABEL = "chaos.spec"   # on every node and Toxiproxy container: the spec as JSON (ClusterSpec.label)

# Agent settings exposed as `chaos up` options: option name -> (env var, help). Values are validated
# again by the agent (swarmnode/agent/config.py), which exits 2 with one line on a bad value.
AGENT_OPTIONS: dict[str, tuple[str, str]] = {
    "tick_ms": ("CHAOS_TICK_MS", "agent core tick, ms (agent default 10)"),
    "heartbeat_ms": ("CHAOS_HEARTBEAT_MS", "Raft leader heartbeat, ms (agent default 50)"),
    "election_timeout_min_ms": ("CHAOS_ELECTION_TIMEOUT_MIN_MS", "Raft election timeout lower bound, ms"),
    "election_timeout_max_ms": ("CHAOS_ELECTION_TIMEOUT_MAX_MS", "Raft election timeout upper bound, ms"),
    "dispatcher_heartbeat_ms": ("CHAOS_DISPATCHER_HEARTBEAT_MS", "worker -> leader heartbeat, ms"),
    "dispatcher_grace": ("CHAOS_DISPATCHER_GRACE", "missed heartbeats before a worker is DOWN"),
    "gossip_probe_interval_ms": ("CHAOS_GOSSIP_PROBE_INTERVAL_MS", "SWIM protocol period, ms"),
}
# A cluster of more than LARGE_CLUSTER_NODES nodes gets LARGE_TIMING for every setting the user did
# not set. With the agents' small-cluster defaults (probe timeout 200 ms, elections after 300-600 ms,
# a worker DOWN after 3 missed 1 s heartbeats), 3 + 100 on 2 cores never became ready: scheduling
# delays of hundreds of ms made acks late, false suspicions and DOWNs fed gossip and Raft writes,
# and the cluster stayed in that storm (each node saw 5 suspicions and 3 deaths per second, minutes
# after start; load 300-400). Every shipped experiment is far below the threshold.
LARGE_CLUSTER_NODES = 40
LARGE_TIMING: dict[str, str] = {
    "CHAOS_GOSSIP_PROBE_INTERVAL_MS": "1000",
    "CHAOS_GOSSIP_PROBE_TIMEOUT_MS": "500",
    "CHAOS_ELECTION_TIMEOUT_MIN_MS": "1000",
    "CHAOS_ELECTION_TIMEOUT_MAX_MS": "2000",
    "CHAOS_DISPATCHER_GRACE": "6",
}
_TIMING_PAIRS = ({"CHAOS_GOSSIP_PROBE_INTERVAL_MS", "CHAOS_GOSSIP_PROBE_TIMEOUT_MS"},
                 {"CHAOS_ELECTION_TIMEOUT_MIN_MS", "CHAOS_ELECTION_TIMEOUT_MAX_MS", "CHAOS_HEARTBEAT_MS"})
_ENV_KEY = re.compile(r"^CHAOS_[A-Z0-9_]+$")
_RESERVED_ENV = {"CHAOS_NODE_ID", "CHAOS_ROLE", "CHAOS_MANAGERS", "CHAOS_PEERS", "CHAOS_PEER_PORT",
                 "CHAOS_API_PORT", "CHAOS_DATA_DIR", "CHAOS_SEED", "CHAOS_JOIN_TOKEN"}


@dataclass(frozen=True)
class Limits:
    """Container resource limits (per container). Memory is a cap, not a reservation."""

    manager_mem: str = "384m"
    worker_mem: str = "192m"
    toxiproxy_mem: str = "2g"
    node_pids: int = 256        # the worker runs its tasks as subprocesses
    toxiproxy_pids: int = 2048  # the official server is Go: threads count as pids
    # Relative CPU weight under contention (Docker's default is 1024). Every byte between nodes
    # crosses the Toxiproxy container and the managers' elections run on timers, so on a small host
    # with many workers these two must not be starved by the workers' gossip: without the weights,
    # 3 managers + 50 workers on 2 cores lost their leader to CPU starvation.
    manager_cpu_shares: int = 2048
    worker_cpu_shares: int = 512
    toxiproxy_cpu_shares: int = 4096
    read_only: bool = True
    # The workers together weigh what WORKER_SHARE_BUDGET workers at worker_cpu_shares would: with
    # more workers each gets less (never below the engine's minimum of 2). A fixed per-worker weight
    # let 100 workers' start-up and gossip outweigh the managers and Toxiproxy together (about 4:1)
    # on 2 cores: the leader lost its term to starvation, every link slowed, and false suspicions fed
    # more gossip (3 + 100 never became ready beside a neighbour). Clusters of up to
    # WORKER_SHARE_BUDGET workers keep exactly the old weights.
    worker_share_budget: int = 8

    def worker_shares(self, workers: int) -> int:
        """CPU shares of one worker container in a cluster of `workers` workers."""
        if workers <= self.worker_share_budget:
            return self.worker_cpu_shares
        return max(2, self.worker_cpu_shares * self.worker_share_budget // workers)


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    managers: int = 3
    workers: int = 5
    seed: int = 0
    agent_env: tuple[tuple[str, str], ...] = ()
    limits: Limits = field(default_factory=Limits)
    toxiproxy_shards: int | None = None   # None: as many as LINKS_PER_SHARD requires
    faketime: bool = False   # preload libfaketime into every node (an experiment with a `clock` fault)
    # Each node's data volume as a tmpfs of this many MB (a `disk-full` fault fills it; chaos/env/up.py
    # keeps the volumes mounted through a holder container so a killed node keeps its data). None: an
    # ordinary volume, uncapped.
    data_mb: int | None = None
    # Spare ids (`chaos node add`, the `membership` fault's `add` and `replace`): ids m{managers+1}..
    # and w{workers+1}.. whose link proxies, addresses and peer entries exist from the start but whose
    # containers do not. The link model is fixed when the cluster starts (every node's CHAOS_PEERS and
    # every proxy's port come from the one topology), so a node that joins later must have been given
    # its place then: it joins under a NEW id, never under one that was ever in use.
    spare_managers: int = 0
    spare_workers: int = 0
    # Proxy ports numbered per Toxiproxy shard (chaos/topology.py). False only for a sharded cluster
    # brought up by an older chaos, whose label does not say: its ports were numbered cluster-wide.
    ports_per_shard: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not valid_cluster_name(self.name):
            problems.append(f"cluster name {self.name!r} must match [a-z][a-z0-9-]{{0,30}}")
        if not 1 <= self.managers <= MAX_MANAGERS or self.managers % 2 == 0:
            problems.append(f"--managers must be odd and between 1 and {MAX_MANAGERS} (got {self.managers})")
        if not 0 <= self.workers <= MAX_WORKERS:
            problems.append(f"--workers must be between 0 and {MAX_WORKERS} (got {self.workers})")
        for key, _value in self.agent_env:
            if not _ENV_KEY.match(key) or key in _RESERVED_ENV:
                problems.append(f"agent setting {key} is not allowed (CHAOS_* only; ids, peers, ports "
                                "and seed are set by chaos)")
        n = len(self.all_ids)
        if self.toxiproxy_shards is not None and not 1 <= self.toxiproxy_shards <= max(1, n):
            problems.append(f"--toxiproxy-shards must be between 1 and the node count {n} "
                            f"(got {self.toxiproxy_shards})")
        for what, n in (("spare managers", self.spare_managers), ("spare workers", self.spare_workers)):
            if not 0 <= n <= MAX_SPARES:
                problems.append(f"{what} must be between 0 and {MAX_SPARES} (got {n})")
        if self.workers + self.spare_workers > MAX_WORKERS:
            problems.append(f"workers and spare workers together must be at most {MAX_WORKERS}")
        if self.data_mb is not None and not 8 <= self.data_mb <= 4096:
            problems.append(f"the data volume size must be between 8 and 4096 MB (got {self.data_mb})")
        if problems:
            raise UsageError("; ".join(problems), hint="see `chaos up --help`")

    @property
    def manager_ids(self) -> list[str]:
        return [f"m{i}" for i in range(1, self.managers + 1)]

    @property
    def worker_ids(self) -> list[str]:
        return [f"w{i}" for i in range(1, self.workers + 1)]

    @property
    def node_ids(self) -> list[str]:
        """The nodes started with the cluster (not the spares)."""
        return self.manager_ids + self.worker_ids

    @property
    def spare_manager_ids(self) -> list[str]:
        return [f"m{i}" for i in range(self.managers + 1, self.managers + self.spare_managers + 1)]

    @property
    def spare_worker_ids(self) -> list[str]:
        return [f"w{i}" for i in range(self.workers + 1, self.workers + self.spare_workers + 1)]

    @property
    def spare_ids(self) -> list[str]:
        return self.spare_manager_ids + self.spare_worker_ids

    @property
    def all_ids(self) -> list[str]:
        """Every id of the topology, in its order: managers then spare managers, workers then spare
        workers (without spares: `node_ids`, so a cluster without spares has the ports it always had)."""
        return self.manager_ids + self.spare_manager_ids + self.worker_ids + self.spare_worker_ids

    @property
    def shards(self) -> int:
        """Toxiproxy servers for this cluster (see LINKS_PER_SHARD)."""
        if self.toxiproxy_shards is not None:
            return self.toxiproxy_shards
        n = len(self.all_ids)
        links = n * n   # n client links + n(n-1) peer links
        return max(1, min(n, -(-links // LINKS_PER_SHARD)))

    def topology(self) -> Topology:
        return Topology(self.manager_ids + self.spare_manager_ids, self.worker_ids + self.spare_worker_ids,
                        TOXIPROXY_BASE_PORT, peer_port=AGENT_PEER_PORT, api_port=AGENT_API_PORT,
                        shards=self.shards, shared_port_space=not self.ports_per_shard)

    def check_agent_env(self) -> None:
        """Load the agent configuration the first manager and the first worker would get, with the
        agent's own loader: a setting the agents would refuse (a probe timeout at or above the probe
        interval, an out-of-range number) is a usage error before any container is created, not 103
        agents exiting 2 after it."""
        from swarmnode.agent.config import ConfigError, load

        topology = self.topology()
        for node in (self.manager_ids[:1] + self.worker_ids[:1]):
            try:
                load(self.node_env(node, topology))
            except ConfigError as exc:
                raise UsageError(f"the agents would refuse this setting: {exc}",
                                 hint="see `chaos up --help` and docs/contracts.md section 2") from None

    def kind(self, node: str) -> str:
        return "manager" if node in self.manager_ids or node in self.spare_manager_ids else "worker"

    def label(self) -> str:
        """The spec as the JSON stored in the SPEC_LABEL of every container of the cluster, from which
        `from_label` rebuilds it (`chaos node add` starts a spare from it, `Cluster.topology()` reads
        the link table from it). Limits are not stored: always the defaults."""
        return json.dumps({"managers": self.managers, "workers": self.workers, "seed": self.seed,
                           "agent_env": [list(kv) for kv in self.agent_env], "shards": self.shards,
                           "faketime": self.faketime, "data_mb": self.data_mb,
                           "spare_managers": self.spare_managers, "spare_workers": self.spare_workers,
                           **({"ports": "shard"} if self.ports_per_shard else {})},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_label(cls, name: str, text: str) -> "ClusterSpec":
        """Inverse of `label` (ValueError when the label is not one)."""
        try:
            d = json.loads(text)
            return cls(name=name, managers=int(d["managers"]), workers=int(d["workers"]), seed=int(d["seed"]),
                       agent_env=tuple((str(k), str(v)) for k, v in d["agent_env"]),
                       toxiproxy_shards=int(d["shards"]), faketime=bool(d["faketime"]),
                       data_mb=None if d["data_mb"] is None else int(d["data_mb"]),
                       spare_managers=int(d["spare_managers"]), spare_workers=int(d["spare_workers"]),
                       ports_per_shard=d.get("ports") == "shard")   # absent: an older chaos, cluster-wide
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            raise ValueError(f"not a cluster spec label: {text[:100]!r} ({exc})") from None

    def node_seed(self, node: str) -> int:
        """Seed of one node, derived from the cluster seed (stable across processes: sha256)."""
        digest = hashlib.sha256(f"{self.seed}:{node}".encode()).digest()
        return int.from_bytes(digest[:6], "big")

    def scaled_timing(self) -> dict[str, str]:
        """The LARGE_TIMING settings this cluster gets (none below LARGE_CLUSTER_NODES nodes; never
        one the user set)."""
        if self.managers + self.workers <= LARGE_CLUSTER_NODES:
            return {}
        mine = {k for k, _ in self.agent_env}
        out = {}
        for k, v in LARGE_TIMING.items():
            # a pair is taken whole or not at all: a user's probe interval of 300 ms with our 500 ms
            # timeout, or their maximum election timeout below our minimum, would contradict
            group = {k} | next((g for g in _TIMING_PAIRS if k in g), set())
            if not group & mine:
                out[k] = v
        return out

    def node_env(self, node: str, topology: Topology, join_token: str | None = None) -> dict[str, str]:
        """The CHAOS_* environment of one node (docs/contracts.md section 2). CHAOS_MANAGERS is the
        bootstrap voter set (the managers started with the cluster) for every node, spares included;
        a spare manager joins with `join_token` (CHAOS_JOIN_TOKEN) instead of bootstrapping."""
        env = {**self.scaled_timing(), **dict(self.agent_env)}
        env.update({
            "CHAOS_NODE_ID": node,
            "CHAOS_ROLE": self.kind(node),
            "CHAOS_MANAGERS": ",".join(self.manager_ids),
            "CHAOS_PEERS": json.dumps(topology.peers_for(node, "toxiproxy"), sort_keys=True,
                                      separators=(",", ":")),
            "CHAOS_PEER_PORT": str(AGENT_PEER_PORT),
            "CHAOS_API_PORT": str(AGENT_API_PORT),
            "CHAOS_DATA_DIR": "/data",
            "CHAOS_SEED": str(self.node_seed(node)),
        })
        if join_token is not None:
            env["CHAOS_JOIN_TOKEN"] = join_token
        if self.faketime:
            from chaos.clock import faketime_env
            env.update(faketime_env())
        return env


def agent_env_from_options(values: dict[str, int | None], extra: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """Turn `chaos up` agent options (+ repeated `--agent-env KEY=VALUE`) into sorted env pairs."""
    env: dict[str, str] = {}
    for option, value in values.items():
        if value is not None:
            env[AGENT_OPTIONS[option][0]] = str(value)
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--agent-env {item!r} is not KEY=VALUE", hint="e.g. --agent-env CHAOS_FSYNC=0")
        env[key.strip()] = value
    return tuple(sorted(env.items()))
