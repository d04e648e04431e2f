"""Agent configuration: environment variables -> one frozen, validated ``AgentConfig``.

Owns the list of ``CHAOS_*`` variables (docs/contracts.md section 2), their meaning, unit, default
and trade-off, and their validation. A bad value raises ``ConfigError`` with one line naming the
variable; ``__main__`` turns that into exit status 2.

Must not import asyncio, aiohttp or ``chaos``: it is pure and table-tested.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Mapping

from swarmnode import plant as plant_mod

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NODE_ID_RE = re.compile(r"^[a-z][a-z0-9]{0,30}$")
JOIN_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


class ConfigError(ValueError):
    """A configuration value is missing, malformed or contradicts another one."""


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Everything the agent reads from its environment. Units are in the field names.

    Identity and wiring (no defaults unless stated):

    node_id: CHAOS_NODE_ID, ``[a-z][a-z0-9]{0,30}``.
    role: CHAOS_ROLE, ``manager`` or ``worker``.
    managers: CHAOS_MANAGERS, comma-separated manager ids (the Raft voter set); order is kept.
    peers: CHAOS_PEERS, JSON ``{peer_id: "host:port"}`` -- the address THIS node dials for each peer
        (the harness points it at the Toxiproxy proxy of the directed link self->peer).
    seeds: CHAOS_SEEDS, gossip seed ids; default all managers except self.
    peer_host / peer_port: CHAOS_PEER_HOST (default 0.0.0.0) / CHAOS_PEER_PORT (default 7000), where
        inter-node frames are accepted.
    api_host / api_port: CHAOS_API_HOST (default 0.0.0.0) / CHAOS_API_PORT (default 8080), HTTP API.
    data_dir: CHAOS_DATA_DIR (default /data): Raft state, journal, boot counter.
    seed: CHAOS_SEED (default 0): seeds every random choice of this node (election timeouts, gossip
        target order, backoff jitter).
    join_token: CHAOS_JOIN_TOKEN (default empty). Set on a manager that JOINS a running cluster (Swarm's
        `swarm join --token`) instead of bootstrapping with CHAOS_MANAGERS: it starts with no Raft
        configuration, asks the leader (through the managers in CHAOS_MANAGERS) to add it as a
        learner, and is promoted to voter once caught up. The leader refuses a wrong token, and an
        id that is or was in the configuration when this node's Raft state is empty (it could vote
        twice in a term); a refused node logs why and exits with status 4. A manager whose id is
        not in CHAOS_MANAGERS needs it. After a join the node's Raft state holds its configuration,
        so a restart with the same variables simply resumes.

    Timing (all in milliseconds unless the name says otherwise):

    tick_ms: CHAOS_TICK_MS, default 10. Wall time between core ticks; every core timeout is a whole
        number of ticks. Lower = finer timers and more CPU; higher = coarser timers (each timeout
        is rounded up to a tick). Workers (no Raft) tick when one of their timers is due (SWIM,
        heartbeat, task polling every 50 ms while they hold tasks), at most 250 ms apart.
    heartbeat_ms: CHAOS_HEARTBEAT_MS, default 50. Raft leader heartbeat interval. Lower detects a
        dead leader's absence no faster (that is the election timeout) but costs more frames; higher
        delays commit-index propagation to followers.
    election_timeout_min_ms / election_timeout_max_ms: CHAOS_ELECTION_TIMEOUT_MIN_MS /
        CHAOS_ELECTION_TIMEOUT_MAX_MS, defaults 300 / 600. Followers wait a random time in this range
        without hearing a leader before starting a (pre-)vote. Lower = faster failover but more
        spurious elections under latency toxics; the min must exceed 2 x heartbeat.
    dispatcher_heartbeat_ms: CHAOS_DISPATCHER_HEARTBEAT_MS, default 1000. Worker -> leader heartbeat
        period. Lower = faster DOWN detection, more traffic.
    dispatcher_grace: CHAOS_DISPATCHER_GRACE, default 3 (heartbeats). The leader marks a worker DOWN
        (through Raft) after grace x heartbeat without a heartbeat. Lower = faster task replacement,
        more false DOWNs under latency; SwarmKit uses 5 s x 3, we default to 1 s x 3.
    gossip_probe_interval_ms: CHAOS_GOSSIP_PROBE_INTERVAL_MS, default 500. SWIM protocol period.
        Lower = faster failure detection, more gossip frames.
    gossip_probe_timeout_ms: CHAOS_GOSSIP_PROBE_TIMEOUT_MS, default 200. Direct ping timeout before
        indirect probes; must be below the probe interval.
    request_timeout_ms: CHAOS_REQUEST_TIMEOUT_MS, default 2000. How long an HTTP client request may
        wait for commit / forwarding before it gets 504 timeout (definite=false). Lower = clients learn
        "unknown" sooner; higher = fewer indeterminate results during short faults.

    Transport bounds:

    send_queue_max: CHAOS_SEND_QUEUE_MAX, default 2048 frames per peer. Outbound frames waiting for a
        connection; when full the oldest is dropped and counted (``counters.dropped_frames``). Larger
        = more memory and staler frames after a partition heals; smaller = more loss.
    reconnect_min_ms / reconnect_max_ms: CHAOS_RECONNECT_MIN_MS / CHAOS_RECONNECT_MAX_MS, defaults
        50 / 1000. Capped exponential backoff (base 2, with seeded jitter up to +50 %) between dial
        attempts. Lower = faster recovery after heal, more connection churn against a dead peer.
    connect_timeout_ms: CHAOS_CONNECT_TIMEOUT_MS, default 1000. One dial attempt's bound.
    frame_stall_ms: CHAOS_FRAME_STALL_MS, default 5000. An inbound connection whose incomplete frame
        gets no byte for this long, or is older than this plus its size at 1 KiB/s, is dropped and
        counted as a bad frame (a black-holed stream, e.g. Toxiproxy's timeout toxic). Lower =
        faster recovery; higher = tolerates slower links. (Desynchronised streams are caught at
        once by the frame checks, not by this timer.)
    CHAOS_PROFILE_PATH (debugging: write a cProfile dump there at exit) and CHAOS_WRITE_TRACE
        (debugging: each write's stage timestamps, swarmnode.agent.wtrace) are not part of
        AgentConfig.

    Misc:

    fsync: CHAOS_FSYNC, default 1. 0 disables fsync of Raft state (benchmarks only: a killed node
        may then lose acknowledged writes).
    fsync_thread: CHAOS_FSYNC_THREAD, default 1. 1: a manager's Raft log fsync runs on a thread
        and the event loop keeps reading writes and messages meanwhile; they form the next group
        (one append, one fsync). 0: the fsync blocks the loop (a group is then what arrived in one
        loop iteration). Either way nothing leaves before it is durable. For measuring the two.
    apply_during_fsync: CHAOS_APPLY_DURING_FSYNC, default 1 (with fsync_thread). 1: while a group's
        fsync runs, entries that became committed and are already durable here are applied and
        their clients answered at once (RaftNode.apply_durable); their journal lines still follow
        the next fsync, which persists the commit index. 0: they wait for that fsync. For A/B.
    gc_freeze: CHAOS_GC_FREEZE, default 1. 1: once the node is up (imports, aiohttp app, cores
        built) the objects alive then are moved out of the cyclic garbage collector's reach
        (gc.freeze()), so its full collections scan only what came later; they were the open-loop
        write latency's longest pauses. 0: Python's collector untouched. For measuring the two.
    gc_threshold0: CHAOS_GC_THRESHOLD0, default 0. The collector's generation-0 threshold
        (allocations between young collections; Python's default 700); 0 leaves it as it is.
    snapshot_entries: CHAOS_SNAPSHOT_ENTRIES, default 1000. Applied entries between snapshots (passed
        to the Raft core if it supports compaction). Lower = smaller logs, more snapshot work. The
        in-memory log is most of a manager's growth under load: after 5 s of writes at 1,800/s,
        RSS grew 8 MB with 10000 and 2.5 MB with 1000 (benchmarks/agent.py).
    max_entries_per_message: CHAOS_MAX_ENTRIES_PER_MESSAGE, default 64. Log entries in one Raft
        AppendEntries. Lower: a follower catching up (or a new leader replicating an earlier
        term's tail) takes more round trips, each acknowledged on its own, which exercises the
        paths where a leader's match indexes stop short of its own last entry.
    task_command: CHAOS_TASK_COMMAND, default a tiny python3 loop that exits when its parent (the
        agent) dies. Command a worker runs per task (split on spaces); it must run until terminated
        (SIGTERM) and should exit when the agent dies, or a SIGKILLed agent leaves it behind.

    Operation:

    log_level: CHAOS_LOG_LEVEL, default INFO; one of DEBUG, INFO, WARNING, ERROR (any case). The
        agent logs to stderr (so `docker logs` / `chaos logs` show it), one line per record with a
        UTC timestamp. INFO: start-up configuration, role and term changes, elections and votes,
        leader changes, peer links connected and lost, snapshots, gossip member state changes,
        worker registration, task starts and ends, errors -- state changes only, never a line per
        message. DEBUG adds every log append, commit and apply (a line per entry: heavy).

    Test only:

    plant: CHAOS_PLANT, default empty (no bug). Comma-separated names of deliberate bugs from
        swarmnode.plant.PLANTS (the five Raft core switches and the agent's own fault points); an
        unknown name exits 2. Only for proving that experiments and checks catch real defects; a node
        started with one logs a warning at start-up.
    """

    node_id: str
    role: str
    managers: tuple[str, ...]
    peers: Mapping[str, tuple[str, int]]
    seeds: tuple[str, ...]
    peer_host: str = "0.0.0.0"
    peer_port: int = 7000
    api_host: str = "0.0.0.0"
    api_port: int = 8080
    data_dir: str = "/data"
    seed: int = 0
    join_token: str = ""
    tick_ms: int = 10
    heartbeat_ms: int = 50
    election_timeout_min_ms: int = 300
    election_timeout_max_ms: int = 600
    dispatcher_heartbeat_ms: int = 1000
    dispatcher_grace: int = 3
    gossip_probe_interval_ms: int = 500
    gossip_probe_timeout_ms: int = 200
    request_timeout_ms: int = 2000
    send_queue_max: int = 2048
    reconnect_min_ms: int = 50
    reconnect_max_ms: int = 1000
    connect_timeout_ms: int = 1000
    frame_stall_ms: int = 5000
    fsync: bool = True
    fsync_thread: bool = True
    apply_during_fsync: bool = True
    gc_freeze: bool = True
    gc_threshold0: int = 0
    snapshot_entries: int = 1000
    max_entries_per_message: int = 64
    log_level: str = "INFO"
    plant: frozenset = frozenset()
    task_command: tuple[str, ...] = ("python3", "-c", "import os, time\np = os.getppid()\n"
                                     "while os.getppid() == p:\n    time.sleep(0.5)\n")

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    def summary(self) -> str:
        """One line with every setting, for the start-up log (peers as id=host:port, sorted)."""
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "peers":
                v = ",".join(f"{k}={h}:{p}" for k, (h, p) in sorted(v.items()))
            elif isinstance(v, frozenset):
                v = ",".join(sorted(v)) or "-"
            elif isinstance(v, tuple):
                v = ",".join(v) if f.name != "task_command" else " ".join(v).replace("\n", "\\n")
            parts.append(f"{f.name}={v}")
        return " ".join(parts)

    def ticks(self, ms: int) -> int:
        """Milliseconds -> whole ticks, rounded up, at least 1."""
        return max(1, -(-ms // self.tick_ms))

    def validate(self) -> "AgentConfig":
        """Reject contradictions between fields; returns self."""
        if not NODE_ID_RE.match(self.node_id):
            raise ConfigError(f"CHAOS_NODE_ID={self.node_id!r}: must match [a-z][a-z0-9]{{0,30}}")
        if self.role not in ("manager", "worker"):
            raise ConfigError(f"CHAOS_ROLE={self.role!r}: must be 'manager' or 'worker'")
        if not self.managers:
            raise ConfigError("CHAOS_MANAGERS: at least one manager id is required")
        if len(set(self.managers)) != len(self.managers):
            raise ConfigError("CHAOS_MANAGERS: duplicate id")
        for m in self.managers:
            if not NODE_ID_RE.match(m):
                raise ConfigError(f"CHAOS_MANAGERS: bad id {m!r}")
        if self.is_manager and self.node_id not in self.managers and not self.join_token:
            raise ConfigError(f"CHAOS_MANAGERS: a manager's own id {self.node_id!r} must be listed "
                              "(or CHAOS_JOIN_TOKEN given, to join a running cluster)")
        if self.join_token and not self.is_manager:
            raise ConfigError("CHAOS_JOIN_TOKEN is for a joining manager (CHAOS_ROLE=manager)")
        if self.join_token and not JOIN_TOKEN_RE.match(self.join_token):
            raise ConfigError("CHAOS_JOIN_TOKEN: must be 8..128 characters of [A-Za-z0-9_-]")
        if not self.is_manager and self.node_id in self.managers:
            raise ConfigError(f"CHAOS_ROLE=worker but {self.node_id!r} is in CHAOS_MANAGERS")
        missing = [m for m in self.managers if m != self.node_id and m not in self.peers]
        if missing:
            raise ConfigError(f"CHAOS_PEERS: no address for manager(s) {','.join(missing)}")
        for s in self.seeds:
            if s != self.node_id and s not in self.peers:
                raise ConfigError(f"CHAOS_SEEDS: seed {s!r} has no address in CHAOS_PEERS")
        if self.election_timeout_min_ms <= 2 * self.heartbeat_ms:
            raise ConfigError("CHAOS_ELECTION_TIMEOUT_MIN_MS must exceed 2 x CHAOS_HEARTBEAT_MS")
        if self.election_timeout_max_ms <= self.election_timeout_min_ms:
            raise ConfigError("CHAOS_ELECTION_TIMEOUT_MAX_MS must exceed CHAOS_ELECTION_TIMEOUT_MIN_MS")
        if self.heartbeat_ms < self.tick_ms:
            raise ConfigError("CHAOS_HEARTBEAT_MS must be at least CHAOS_TICK_MS")
        if self.gossip_probe_timeout_ms >= self.gossip_probe_interval_ms:
            raise ConfigError("CHAOS_GOSSIP_PROBE_TIMEOUT_MS must be below CHAOS_GOSSIP_PROBE_INTERVAL_MS")
        if self.reconnect_max_ms < self.reconnect_min_ms:
            raise ConfigError("CHAOS_RECONNECT_MAX_MS must be at least CHAOS_RECONNECT_MIN_MS")
        if self.peer_port == self.api_port:
            raise ConfigError("CHAOS_PEER_PORT and CHAOS_API_PORT must differ")
        if not self.task_command:
            raise ConfigError("CHAOS_TASK_COMMAND must not be empty")
        return self


# (env var, field, parser, lower bound, upper bound) for integer settings.
_INTS: tuple[tuple[str, str, int, int], ...] = (
    ("CHAOS_PEER_PORT", "peer_port", 1, 65535),
    ("CHAOS_API_PORT", "api_port", 1, 65535),
    ("CHAOS_SEED", "seed", -(2**63), 2**63 - 1),
    ("CHAOS_TICK_MS", "tick_ms", 1, 1000),
    ("CHAOS_HEARTBEAT_MS", "heartbeat_ms", 1, 60_000),
    ("CHAOS_ELECTION_TIMEOUT_MIN_MS", "election_timeout_min_ms", 1, 600_000),
    ("CHAOS_ELECTION_TIMEOUT_MAX_MS", "election_timeout_max_ms", 1, 600_000),
    ("CHAOS_DISPATCHER_HEARTBEAT_MS", "dispatcher_heartbeat_ms", 10, 600_000),
    ("CHAOS_DISPATCHER_GRACE", "dispatcher_grace", 1, 1000),
    ("CHAOS_GOSSIP_PROBE_INTERVAL_MS", "gossip_probe_interval_ms", 10, 600_000),
    ("CHAOS_GOSSIP_PROBE_TIMEOUT_MS", "gossip_probe_timeout_ms", 1, 600_000),
    ("CHAOS_REQUEST_TIMEOUT_MS", "request_timeout_ms", 10, 600_000),
    ("CHAOS_SEND_QUEUE_MAX", "send_queue_max", 1, 1_000_000),
    ("CHAOS_RECONNECT_MIN_MS", "reconnect_min_ms", 1, 600_000),
    ("CHAOS_RECONNECT_MAX_MS", "reconnect_max_ms", 1, 600_000),
    ("CHAOS_CONNECT_TIMEOUT_MS", "connect_timeout_ms", 10, 600_000),
    ("CHAOS_FRAME_STALL_MS", "frame_stall_ms", 10, 600_000),
    ("CHAOS_SNAPSHOT_ENTRIES", "snapshot_entries", 10, 10_000_000),
    ("CHAOS_GC_THRESHOLD0", "gc_threshold0", 0, 10_000_000),
    ("CHAOS_MAX_ENTRIES_PER_MESSAGE", "max_entries_per_message", 1, 100_000),
)


def _parse_int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value}: must be in [{lo}, {hi}]")
    return value


def _parse_ids(name: str, raw: str) -> tuple[str, ...]:
    ids = tuple(p.strip() for p in raw.split(",") if p.strip())
    for i in ids:
        if not NODE_ID_RE.match(i):
            raise ConfigError(f"{name}: bad node id {i!r}")
    return ids


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` -> (host, port); raises ConfigError."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host:
        raise ConfigError(f"bad address {text!r}: want host:port")
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"bad address {text!r}: port not an integer") from None
    if not 1 <= p <= 65535:
        raise ConfigError(f"bad address {text!r}: port out of range")
    return host, p


def _parse_peers(raw: str) -> dict[str, tuple[str, int]]:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"CHAOS_PEERS: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ConfigError("CHAOS_PEERS: must be a JSON object {peer_id: 'host:port'}")
    out = {}
    for k in sorted(obj):
        if not NODE_ID_RE.match(k):
            raise ConfigError(f"CHAOS_PEERS: bad peer id {k!r}")
        try:
            out[k] = parse_address(obj[k])
        except ConfigError as exc:
            raise ConfigError(f"CHAOS_PEERS[{k}]: {exc}") from None
    return out


def load(env: Mapping[str, str]) -> AgentConfig:
    """Build and validate the configuration from an environment mapping."""
    def need(name: str) -> str:
        v = env.get(name)
        if v is None or not v.strip():
            raise ConfigError(f"{name}: required")
        return v.strip()

    node_id = need("CHAOS_NODE_ID")
    role = need("CHAOS_ROLE")
    managers = _parse_ids("CHAOS_MANAGERS", need("CHAOS_MANAGERS"))
    peers = _parse_peers(env.get("CHAOS_PEERS", "{}") or "{}")
    peers.pop(node_id, None)
    if env.get("CHAOS_SEEDS", "").strip():
        seeds = _parse_ids("CHAOS_SEEDS", env["CHAOS_SEEDS"])
    else:
        seeds = tuple(m for m in managers if m != node_id)
    kwargs: dict[str, object] = dict(node_id=node_id, role=role, managers=managers, peers=peers,
                                     seeds=seeds)
    for name, fld, lo, hi in _INTS:
        if env.get(name, "").strip():
            kwargs[fld] = _parse_int(name, env[name], lo, hi)
    for name, fld in (("CHAOS_PEER_HOST", "peer_host"), ("CHAOS_API_HOST", "api_host"),
                      ("CHAOS_DATA_DIR", "data_dir"), ("CHAOS_JOIN_TOKEN", "join_token")):
        if env.get(name, "").strip():
            kwargs[fld] = env[name].strip()
    if env.get("CHAOS_FSYNC", "").strip():
        raw = env["CHAOS_FSYNC"].strip().lower()
        if raw not in ("0", "1", "true", "false"):
            raise ConfigError(f"CHAOS_FSYNC={raw!r}: must be 0 or 1")
        kwargs["fsync"] = raw in ("1", "true")
    if env.get("CHAOS_FSYNC_THREAD", "").strip():
        raw = env["CHAOS_FSYNC_THREAD"].strip().lower()
        if raw not in ("0", "1", "true", "false"):
            raise ConfigError(f"CHAOS_FSYNC_THREAD={raw!r}: must be 0 or 1")
        kwargs["fsync_thread"] = raw in ("1", "true")
    if env.get("CHAOS_APPLY_DURING_FSYNC", "").strip():
        raw = env["CHAOS_APPLY_DURING_FSYNC"].strip().lower()
        if raw not in ("0", "1", "true", "false"):
            raise ConfigError(f"CHAOS_APPLY_DURING_FSYNC={raw!r}: must be 0 or 1")
        kwargs["apply_during_fsync"] = raw in ("1", "true")
    if env.get("CHAOS_GC_FREEZE", "").strip():
        raw = env["CHAOS_GC_FREEZE"].strip().lower()
        if raw not in ("0", "1", "true", "false"):
            raise ConfigError(f"CHAOS_GC_FREEZE={raw!r}: must be 0 or 1")
        kwargs["gc_freeze"] = raw in ("1", "true")
    if env.get("CHAOS_LOG_LEVEL", "").strip():
        level = env["CHAOS_LOG_LEVEL"].strip().upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"CHAOS_LOG_LEVEL={env['CHAOS_LOG_LEVEL']!r}: must be one of {', '.join(LOG_LEVELS)}")
        kwargs["log_level"] = level
    if env.get("CHAOS_PLANT", "").strip():
        try:
            kwargs["plant"] = plant_mod.parse(env["CHAOS_PLANT"])
        except plant_mod.PlantError as exc:
            raise ConfigError(f"CHAOS_PLANT: {exc}") from None
    if env.get("CHAOS_TASK_COMMAND", "").strip():
        kwargs["task_command"] = tuple(env["CHAOS_TASK_COMMAND"].split())
    return AgentConfig(**kwargs).validate()  # type: ignore[arg-type]


def documented_variables() -> list[str]:
    """Every CHAOS_* name the AgentConfig docstring documents (tests check it covers the parser)."""
    return sorted(set(re.findall(r"CHAOS_[A-Z_]+", AgentConfig.__doc__ or "")))
