"""The experiment file format, version 1, as typed and frozen pydantic models.

Owns: every key of an experiment file, its type, unit, default and bounds (experiments/README.md is
the prose reference for the same keys), the cross-field rules (a node name must exist, `until` needs
`max`, a repeat interval must exceed the fault's length, ...) and the JSON Schema export.
Parsing of YAML with line:column positions lives in chaos/experiment/loader.py; expansion of random
choices into a concrete timeline in chaos/experiment/plan.py.

Durations are written `500ms`, `5s`, `2m`, `1h` or as a number of seconds; they are stored as float
seconds. Every duration is bounded (0 .. 24 h): an unbounded wait is a spec error, never a hang.
Must not import: click, docker, requests, chaos.env.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      WithJsonSchema, create_model, field_validator, model_validator)
from pydantic_core import PydanticUndefined

SCHEMA_VERSION = 1
EXTENSION_PREFIX = "x-"  # top-level keys starting with it are ignored: they hold YAML anchors for reuse
MAX_DURATION_S = 24 * 3600.0
MAX_MANAGERS = 9
MAX_WORKERS = 200

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_PATTERN = r"^\d+(\.\d+)?(ms|s|m|h)?$"


def parse_duration(value: Any) -> float:
    """'500ms' / '5s' / '2m' / '1h' / a number of seconds -> float seconds in [0, 24 h]."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 5s, 500ms, 2m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DUR.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a duration (write 500ms, 5s, 2m or 1h)")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError("a duration is a number of seconds or a string like 5s, 500ms, 2m")
    if seconds != seconds or seconds < 0:
        raise ValueError("a duration must not be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most 24h (got {seconds:g} s)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_DURATION_S},
               {"type": "string", "pattern": DURATION_PATTERN}],
     "description": "seconds, or a string such as 500ms, 5s, 2m, 1h"})]


def parse_signed_duration(value: Any) -> float:
    """A duration with an optional sign ('-3s', '+500ms', -2.5): float seconds in [-24 h, 24 h]."""
    if isinstance(value, str) and value.strip()[:1] in ("-", "+"):
        text = value.strip()
        seconds = parse_duration(text[1:])
        return -seconds if text[0] == "-" else seconds
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value)
    return parse_duration(value)


SIGNED_DURATION_PATTERN = r"^[+-]?\d+(\.\d+)?(ms|s|m|h)?$"
SignedDuration = Annotated[float, BeforeValidator(parse_signed_duration), WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": -MAX_DURATION_S, "maximum": MAX_DURATION_S},
               {"type": "string", "pattern": SIGNED_DURATION_PATTERN}],
     "description": "seconds, or a string such as -3s, +500ms, 2m (a sign is allowed)"})]


def _range_pair(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return [parse_duration(v) for v in value]
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        d = parse_duration(value)
        return [d, d]
    raise ValueError("expected [min, max] (two durations) or one duration")


DurationRange = Annotated[tuple[float, float], BeforeValidator(_range_pair), WithJsonSchema(
    {"anyOf": [{"type": "array", "minItems": 2, "maxItems": 2,
                "items": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}]}},
               {"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
     "description": "[min, max] durations (a value is drawn uniformly with the seed), or one duration"})]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- cluster ------------------------------------------------------------------------------------


class AgentSettings(Strict):
    """Agent settings passed to every node as CHAOS_* variables (docs/contracts.md section 2)."""

    election_timeout_ms: tuple[int, int] | None = Field(
        None, description="Raft election timeout range [min, max] in ms (agent default [300, 600])")
    heartbeat_ms: int | None = Field(None, ge=1, le=60_000, description="Raft leader heartbeat, ms (agent default 50)")
    tick_ms: int | None = Field(None, ge=1, le=1000, description="agent core tick, ms (agent default 10)")
    snapshot_entries: int | None = Field(None, ge=1, le=10_000_000,
                                         description="applied entries between snapshots (agent default 1000)")
    max_entries_per_message: int | None = Field(
        None, ge=1, le=100_000, description="log entries in one Raft AppendEntries (agent default 64); "
                                            "lower makes catch-up take many separately acknowledged steps")
    dispatcher_heartbeat_ms: int | None = Field(None, ge=10, le=60_000,
                                                description="worker -> leader heartbeat, ms (agent default 1000)")
    dispatcher_grace: int | None = Field(None, ge=1, le=100,
                                         description="missed heartbeats before a worker is DOWN (agent default 3)")
    gossip_probe_interval_ms: int | None = Field(None, ge=10, le=60_000,
                                                 description="SWIM protocol period, ms (agent default 500)")
    env: dict[str, str] = Field(default_factory=dict,
                                description="further CHAOS_* variables for every agent (docs/contracts.md section "
                                            "2), checked as the agent reads them: unknown names, variables chaos "
                                            "sets itself, bad values and contradictions are errors")

    @field_validator("election_timeout_ms")
    @classmethod
    def _election(cls, v):
        if v is not None and not (1 <= v[0] < v[1] <= 600_000):
            raise ValueError("election_timeout_ms must be [min, max] with 1 <= min < max")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v):
        bad = [k for k in v if not re.match(r"^CHAOS_[A-Z0-9_]+$", k)]
        if bad:
            raise ValueError(f"agent env keys must be CHAOS_* names: {', '.join(bad)}")
        return v

    def as_env(self) -> dict[str, str]:
        out = dict(self.env)
        if self.election_timeout_ms:
            out["CHAOS_ELECTION_TIMEOUT_MIN_MS"] = str(self.election_timeout_ms[0])
            out["CHAOS_ELECTION_TIMEOUT_MAX_MS"] = str(self.election_timeout_ms[1])
        for key, var in (("heartbeat_ms", "CHAOS_HEARTBEAT_MS"), ("tick_ms", "CHAOS_TICK_MS"),
                         ("snapshot_entries", "CHAOS_SNAPSHOT_ENTRIES"),
                         ("max_entries_per_message", "CHAOS_MAX_ENTRIES_PER_MESSAGE"),
                         ("dispatcher_heartbeat_ms", "CHAOS_DISPATCHER_HEARTBEAT_MS"),
                         ("dispatcher_grace", "CHAOS_DISPATCHER_GRACE"),
                         ("gossip_probe_interval_ms", "CHAOS_GOSSIP_PROBE_INTERVAL_MS")):
            value = getattr(self, key)
            if value is not None:
                out[var] = str(value)
        return out


class ClusterConfig(Strict):
    managers: int = Field(3, ge=1, le=MAX_MANAGERS, description="Raft managers (odd; an even count is a warning)")
    workers: int = Field(3, ge=0, le=MAX_WORKERS, description="gossip workers")
    agent: AgentSettings = Field(default_factory=AgentSettings)
    toxiproxy: Literal["auto", "official", "compatible"] = Field(
        "auto", description="which Toxiproxy server: the official image when present (auto), or the compatible one")
    toxiproxy_shards: int | None = Field(None, ge=1, le=64,
                                         description="Toxiproxy servers (default: one per 5,000 links)")
    backend: Literal["local", "swarm"] = Field(
        "local", description="where the containers run: local (one engine, a bridge network) or swarm (an "
                             "attachable overlay network over the hosts of `chaos run --inventory`, default "
                             "this engine alone; README: running across several hosts). Every fault means "
                             "the same on both")
    ready_timeout: Duration = Field(120.0, description="how long `up` may take to become ready")
    plant: list[str] = Field(default_factory=list,
                             description="planted bugs (names from `chaos run --help`): the agents start "
                                         "deliberately wrong; the run is marked planted everywhere. Never "
                                         "for a real result")

    @property
    def manager_ids(self) -> list[str]:
        return [f"m{i}" for i in range(1, self.managers + 1)]

    @property
    def worker_ids(self) -> list[str]:
        return [f"w{i}" for i in range(1, self.workers + 1)]

    @property
    def node_ids(self) -> list[str]:
        return self.manager_ids + self.worker_ids


# -- targets ------------------------------------------------------------------------------------

ROLES = ("leader", "followers", "managers", "workers", "all")
COUNTS = ("one", "minority", "majority", "all")


class TargetSpec(Strict):
    """Nodes chosen at the moment a fault fires: `role` narrows the candidates, `count` says how many,
    `pick` how (random draws use the fault's seed, so a replay with the same cluster state picks the
    same nodes)."""

    role: Literal["leader", "followers", "managers", "workers", "all"] = Field(
        "all", description="candidate nodes: the current leader, its followers, managers, workers, all")
    nodes: list[str] | None = Field(None, description="explicit candidate nodes instead of a role")
    count: int | Literal["one", "minority", "majority", "all"] = Field(
        "all", description="how many of the candidates: a number, one, minority, majority (of the candidates), all")
    pick: Literal["random", "first"] = Field("random", description="random (seeded) or the first in id order")
    of: str | None = Field(None, description="the nodes an earlier fault (its name) chose when it last "
                                             "fired, instead of a role: `{of: pause-leader}` follows the "
                                             "old leader after a new one was elected")
    exclude: Target | None = Field(
        None, description="never these nodes (any target, resolved at the same moment, with the same "
                          "seed): `{role: managers, exclude: {of: cut-two}}` is every manager except the "
                          "ones cut-two chose; `{role: all, exclude: [leader, w1]}`. Applied before "
                          "`count` and `pick`")

    @model_validator(mode="after")
    def _of_alone(self):
        if self.of is not None and (self.nodes is not None or "role" in self.model_fields_set):
            raise ValueError("`of` chooses the candidates itself: give it without `role` or `nodes`")
        return self

    @field_validator("count")
    @classmethod
    def _count(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("count must be at least 1")
        return v


Target = Union[str, TargetSpec, list[Union[str, TargetSpec]]]
TARGET_DOC = ("a role (leader, followers, managers, workers, all), a node id (m1, w3), an object "
              "{role, count, pick, nodes, of, exclude}, or a list of these (their union)")
TargetSpec.model_rebuild()


def target_items(target: Any) -> list:
    """The items of a target (a list is the union of its items)."""
    return target if isinstance(target, list) else [target]


def target_nodes_named(target: Any) -> list[str]:
    """Node ids named explicitly in a target (for checking that they exist; not those of its
    `exclude`, which is a target of its own)."""
    items = target if isinstance(target, list) else [target]
    out = []
    for t in items:
        if isinstance(t, str) and t not in ROLES:
            out.append(t)
        elif isinstance(t, TargetSpec) and t.nodes:
            out.extend(t.nodes)
    return out


def fixed_count(target: Any) -> int | None:
    """How many nodes a target asks for when that is a fixed number (for 'more targets than nodes')."""
    items = target if isinstance(target, list) else [target]
    total = 0
    for t in items:
        if isinstance(t, TargetSpec) and t.of is not None:
            return None
        if isinstance(t, TargetSpec) and isinstance(t.count, int):
            total += t.count
        elif isinstance(t, str) and t not in ROLES:
            total += 1
        else:
            return None
    return total


# -- timing -------------------------------------------------------------------------------------

UNTIL_SIMPLE = ("new-leader", "worker-down", "replicas-restored", "target-lags")


class Until(Strict):
    """Hold a fault until a condition on the agents' status holds (checked every 200 ms)."""

    condition: Literal["new-leader", "term-reached", "target-lags", "worker-down", "replicas-restored"] = Field(
        description="new-leader: a manager leads in a term above the one when the fault began; "
                    "term-reached: some manager's term >= `term`; target-lags: a target's applied index "
                    "is `entries` or more behind the leader's commit index; worker-down: the leader has "
                    "committed every targeted worker as down; replicas-restored: every service runs its "
                    "desired replicas on live workers")
    term: int | None = Field(None, ge=1, description="for term-reached")
    entries: int | None = Field(None, ge=1, description="for target-lags")

    @model_validator(mode="after")
    def _args(self):
        if self.condition == "term-reached" and self.term is None:
            raise ValueError("until term-reached needs `term`")
        if self.condition == "target-lags" and self.entries is None:
            raise ValueError("until target-lags needs `entries`")
        return self


def _until(value: Any) -> Any:
    if isinstance(value, str):
        return {"condition": value}
    return value


UntilField = Annotated[Until, BeforeValidator(_until), WithJsonSchema({"anyOf": [
    {"type": "string", "enum": ["new-leader", "target-lags", "worker-down", "replicas-restored"],
     "description": "a condition without arguments"},
    Until.model_json_schema()]})]


class Repeat(Strict):
    every: Duration = Field(description="start-to-start interval of the repetitions")
    count: int = Field(ge=1, le=10_000, description="how many times in all (1 = no repetition)")


class FaultBase(Strict):
    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                             description="id in faults.jsonl, phases and expectations (default f1, f2, ...)")
    at: Duration | None = Field(None, description="start, from the moment the workload starts")
    after: str | None = Field(None, description="start when this earlier fault (its name, or `previous`) has ended")
    delay: Duration = Field(0.0, description="with `after`: wait this long after that fault ended")
    for_: Duration | None = Field(None, alias="for", description="how long the fault holds")
    until: UntilField | None = Field(None, description="hold until this condition holds (needs `max`)")
    max: Duration | None = Field(None, description="the bound of an `until`: the fault ends then at the latest")
    repeat: Repeat | None = Field(None, description="repeat the fault: {every, count}")

    @model_validator(mode="after")
    def _timing(self):
        if (self.at is None) == (self.after is None):
            raise ValueError("give exactly one of `at` and `after`")
        if self.at is None and self.delay and self.after is None:
            raise ValueError("`delay` goes with `after`")
        if self.until is None and self.for_ is None:
            raise ValueError("give `for` (how long the fault holds) or `until` with `max`")
        if self.until is not None and self.max is None:
            raise ValueError("`until` needs `max`, its bound")
        if self.until is not None and self.for_ is not None:
            raise ValueError("give `for` or `until`, not both")
        if self.max is not None and self.until is None:
            raise ValueError("`max` goes with `until`")
        if self.repeat and self.repeat.count > 1:
            length = self.for_ if self.for_ is not None else self.max
            if self.repeat.every <= length:
                raise ValueError(f"repeat.every ({self.repeat.every:g} s) must exceed the fault's length "
                                 f"({length:g} s)")
        return self

    @property
    def length_s(self) -> float:
        """The planned length (for `until`, its bound)."""
        return self.for_ if self.for_ is not None else float(self.max or 0.0)


# -- fault kinds --------------------------------------------------------------------------------


class OneWay(Strict):
    from_: Target = Field(alias="from", description="senders: " + TARGET_DOC)
    to: Target = Field(description="receivers, who stop hearing the senders: " + TARGET_DOC)


class PartitionFault(FaultBase):
    fault: Literal["partition"]
    isolate: Target | None = Field(None, description="cut these nodes off from every other node")
    groups: list[list[str]] | None = Field(None, description="explicit groups of node ids; nodes in different groups cannot talk")
    rest: Literal["own", "isolated"] | int = Field(
        "own", description="with `groups`: unlisted nodes form their own group (own), are each alone "
                           "(isolated), or join listed group N")
    shape: Literal["halves", "majorities-ring", "bridge"] | None = Field(
        None, description="halves: a random minority | majority split; majorities-ring: every node sees "
                          "a majority, no two the same; bridge: two halves joined by one node")
    among: Target = Field("all", description="with `shape`: the nodes the shape is drawn over")
    bridge: Target | None = Field(None, description="with shape bridge: the bridge node (default: drawn)")
    one_way: OneWay | None = Field(None, alias="one-way", description="receivers stop hearing senders; the reverse works")
    mode: Literal["blackhole", "refuse"] = Field(
        "blackhole", description="blackhole: connections hang, data dropped; refuse: proxies disabled")

    @model_validator(mode="after")
    def _one_shape(self):
        given = [k for k in ("isolate", "groups", "shape", "one_way") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a partition needs exactly one of isolate, groups, shape, one-way"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.bridge is not None and self.shape != "bridge":
            raise ValueError("`bridge` goes with shape: bridge")
        return self


class LinkFaultBase(FaultBase):
    target: Target = Field(description="the links of these nodes: " + TARGET_DOC)
    peers: Target = Field("all", description="only the links between the targets and these nodes")
    direction: Literal["both", "in", "out"] = Field(
        "both", description="out: links from the targets; in: links to them; both")


class LatencyFault(LinkFaultBase):
    fault: Literal["latency"]
    ms: int = Field(ge=0, le=600_000, description="added delay per chunk, ms")
    jitter_ms: int = Field(0, ge=0, le=600_000, description="± random jitter, ms")


class BandwidthFault(LinkFaultBase):
    fault: Literal["bandwidth"]
    kb_s: int = Field(ge=1, le=10_000_000, description="KB/s per connection (1 KB = 1000 bytes)")


class ResetFault(LinkFaultBase):
    fault: Literal["reset"]
    timeout_ms: int = Field(0, ge=0, le=600_000, description="reset the connection this long after data arrives")


class StallFault(LinkFaultBase):
    fault: Literal["stall"]
    ms: int = Field(ge=1, le=600_000, description="bytes are held this long, then delivered in order")


class SliceFault(LinkFaultBase):
    fault: Literal["slice"]
    avg: int = Field(ge=1, le=1_000_000, description="average piece size, bytes")
    var: int = Field(0, ge=0, le=1_000_000, description="piece size variation, bytes (below avg)")
    delay_us: int = Field(0, ge=0, le=10_000_000, description="delay between pieces, µs")

    @model_validator(mode="after")
    def _var(self):
        if self.var >= self.avg:
            raise ValueError("slice `var` must be below `avg`")
        return self


class SlowCloseFault(LinkFaultBase):
    fault: Literal["slow-close"]
    ms: int = Field(ge=0, le=600_000, description="a close is forwarded this long later")


class LimitFault(LinkFaultBase):
    fault: Literal["limit"]
    bytes: int = Field(ge=0, le=1_000_000_000, description="bytes per connection before it is closed")


# flaky kind -> the attributes of its Toxiproxy toxic: name -> (required, lowest value)
FLAKY_ATTRIBUTES: dict[str, dict[str, tuple[bool, int]]] = {
    "cut": {"timeout": (False, 0)},
    "latency": {"latency": (True, 0), "jitter": (False, 0)},
    "stall": {"latency": (True, 1), "jitter": (False, 0)},
    "bandwidth": {"rate": (True, 1)},
    "reset": {"timeout": (False, 0)},
    "slice": {"average_size": (True, 1), "size_variation": (False, 0), "delay": (False, 0)},
    "slow_close": {"delay": (True, 0)},
    "limit": {"bytes": (True, 0)},
}


class FlakyFault(LinkFaultBase):
    fault: Literal["flaky"]
    toxicity: float = Field(gt=0.0, lt=1.0, description="share of connections affected (drawn per connection)")
    kind: Literal["cut", "latency", "reset", "bandwidth", "slice", "stall", "slow_close", "limit"] = Field(
        "cut", description="what happens to an affected connection")
    params: dict[str, int] = Field(default_factory=dict,
                                   description="toxic attributes for `kind`, as Toxiproxy names them: cut: "
                                               "timeout (ms); latency, stall: latency (ms, required), jitter "
                                               "(ms); bandwidth: rate (KB/s, required); reset: timeout (ms); "
                                               "slice: average_size (bytes, required), size_variation "
                                               "(bytes, below average_size), delay (µs); slow_close: delay "
                                               "(ms, required); limit: bytes (required)")

    @model_validator(mode="after")
    def _toxic_attributes(self):
        attrs = FLAKY_ATTRIBUTES[self.kind]
        problems = []
        for key, value in self.params.items():
            if key not in attrs:
                problems.append(f"the {self.kind} toxic has no attribute {key!r} (it takes "
                                + (", ".join(attrs) or "none") + ")")
            elif value < attrs[key][1]:
                problems.append(f"params.{key} must be at least {attrs[key][1]} (got {value})")
        missing = [k for k, (required, _lo) in attrs.items() if required and k not in self.params]
        if missing:
            problems.append(f"flaky {self.kind} needs params " + ", ".join(missing))
        if self.kind == "slice" and self.params.get("size_variation", 0) >= self.params.get("average_size", 1):
            problems.append("params.size_variation must be below average_size")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class NodeFaultBase(FaultBase):
    target: Target = Field(description="the nodes: " + TARGET_DOC)


class KillFault(NodeFaultBase):
    fault: Literal["kill"] = Field(description="SIGKILL; restarted (same data volume) when the fault ends")


class StopFault(NodeFaultBase):
    fault: Literal["stop"] = Field(description="SIGTERM (graceful), started again when the fault ends")
    grace: Duration = Field(10.0, description="SIGKILL after this long if the node has not exited")


class PauseFault(NodeFaultBase):
    fault: Literal["pause"] = Field(description="freeze every process (cgroup freezer); unpaused when the fault ends")


class Strobe(Strict):
    every: Duration = Field(description="time between two jumps (at least 200ms)")
    jump: SignedDuration = Field(description="each jump: the clock flips between `offset` and `offset + jump`, "
                                             "starting at `offset + jump` when the fault begins")

    @model_validator(mode="after")
    def _sizes(self):
        if self.every < 0.2:
            raise ValueError("strobe `every` must be at least 200ms (each flip is one rewrite of the node's "
                             "clock control file)")
        if self.jump == 0:
            raise ValueError("strobe `jump` must not be 0")
        return self


class ClockFault(NodeFaultBase):
    fault: Literal["clock"] = Field(description="move the time every process of the nodes sees, wall and "
                                                "monotonic clocks alike (libfaketime, preloaded into clusters "
                                                "whose experiment has a clock fault); back to real time when "
                                                "the fault ends (a jump)")
    offset: SignedDuration = Field(0.0, description="jump the clocks by this much at the fault's start "
                                                    "(-3s: three seconds back)")
    rate: float | None = Field(None, gt=0.0, le=10.0, description="from the fault's start the clocks run this many "
                                                                  "times as fast as real time (1.5: fast, 0.5: "
                                                                  "slow); with `offset`, both")
    strobe: Strobe | None = Field(None, description="repeated jumps: {every: 2s, jump: 5s} flips the clocks "
                                                    "between offset + jump and offset every 2 s")

    @model_validator(mode="after")
    def _something(self):
        if self.strobe is not None and self.rate is not None:
            raise ValueError("give `strobe` or `rate`, not both")
        if self.offset == 0 and self.rate in (None, 1.0) and self.strobe is None:
            raise ValueError("a clock fault needs a non-zero `offset`, a `rate` other than 1, or a `strobe`")
        if abs(self.offset) > 24 * 3600:
            raise ValueError("`offset` must be within 24h either way")
        return self


_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_BYTE_UNIT = {None: 1, "B": 1, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "KiB": 1024, "MiB": 1024 ** 2,
              "GiB": 1024 ** 3}
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # the engine refuses a smaller memory limit


def parse_bytes(value: Any) -> int:
    """'64MB' / '512MiB' / '1GB' / a number of bytes -> int bytes."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string like 64MB, 512MiB, 1GB")
    if isinstance(value, (int, float)):
        n = float(value)
    elif isinstance(value, str) and (m := _BYTES.match(value)):
        n = float(m.group(1)) * _BYTE_UNIT[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a size (write 64MB, 512MiB, 1GB or a number of bytes)")
    if n < MIN_MEMORY_BYTES:
        raise ValueError(f"a memory limit must be at least 6MiB (the engine's minimum; got {int(n)} bytes)")
    if n > 1024 ** 4:
        raise ValueError("a memory limit must be at most 1TiB")
    return int(n)


ByteSize = Annotated[int, BeforeValidator(parse_bytes), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": MIN_MEMORY_BYTES},
               {"type": "string", "pattern": r"^\d+(\.\d+)?(B|KB|MB|GB|KiB|MiB|GiB)?$"}],
     "description": "bytes, or a string such as 64MB, 512MiB, 1GB"})]


class CpuFault(NodeFaultBase):
    fault: Literal["cpu"] = Field(description="limit the CPU time of the nodes' containers through the engine "
                                              "(CFS quota, no privileges); the previous limit is restored when "
                                              "the fault ends")
    cpus: float = Field(gt=0.0, le=64.0, description="CPU time per second the node may use: 0.05 = 5 % of one "
                                                     "core")

    @field_validator("cpus")
    @classmethod
    def _quota(cls, v):
        if v < 0.01:
            raise ValueError("cpus must be at least 0.01 (the engine's smallest quota is 1 ms per 100 ms)")
        return v


class MemoryFault(NodeFaultBase):
    fault: Literal["memory"] = Field(description="lower the memory limit of the nodes' containers through the "
                                                 "engine (no privileges; swap capped at the same limit); the "
                                                 "kernel may OOM-kill the agent, which is recorded (container "
                                                 "state OOMKilled) and the node started again when the fault ends")
    limit: ByteSize = Field(description="the memory limit: 64MB, 512MiB, 1GB or bytes (at least 6MiB). The "
                                        "engine refuses a limit below what the container uses when the fault "
                                        "fires (an agent at rest: about 35-60 MB); the run then stops with "
                                        "that usage named")


class PowerLossFault(NodeFaultBase):
    fault: Literal["power-loss"] = Field(
        description="a power cut: SIGKILL, and when the fault ends the node starts again with only what "
                    "it had fsynced (each log file cut back to its last fsync; docs/contracts.md)")


class WipeFault(NodeFaultBase):
    fault: Literal["wipe"] = Field(
        description="workers only: the node is stopped and its data volume emptied (all but its journal); "
                    "when the fault ends it starts as a fresh node that must rejoin the gossip network and "
                    "be given tasks. A manager is refused: it would come back as a voter without its log "
                    "(a lost manager is replaced with `fault: membership, action: replace`)")


class DiskFullFault(NodeFaultBase):
    fault: Literal["disk-full"] = Field(
        description="the nodes' data volumes refuse writes (ENOSPC) while it holds: a ballast file fills "
                    "each (verified: free space read back, a write probe refused), removed when the fault "
                    "ends. The node keeps running. A run with this fault gives every node a 64 MB tmpfs data "
                    "volume (local backend only)")


class MembershipFault(FaultBase):
    fault: Literal["membership"] = Field(
        description="a change of the managers' Raft configuration through the leader's API (Swarm's "
                    "`docker node promote/demote/rm`, `swarm join`, one server at a time), made when the fault "
                    "fires with its target resolved then (`target: leader` is the leader of that moment); the "
                    "change is waited for until committed (else the run stops, exit 4; except a target "
                    "chosen by role that the cluster answers `not-found`, e.g. a removed leader still "
                    "leading: the fault is recorded `skipped` and the checks judge the run) and is not "
                    "undone when the fault ends: `for` is only how long it is held before the next "
                    "`after` fires")
    action: Literal["promote", "demote", "remove", "add", "replace"] = Field(
        description="promote: a learner, or a READY worker (it turns into a manager, joins with the "
                    "cluster's token and becomes a voter once caught up); demote: a voter becomes a "
                    "learner; remove: out of the configuration (the id is retired for good); add: a new "
                    "node joins under a spare id (no `target`; `role`, default manager: with the cluster's "
                    "token, as a learner, then a voter); replace: a lost manager replaced the Swarm way -- "
                    "removed (forced), stopped, its data volume wiped (all but its journal), and a fresh "
                    "manager joined under a NEW spare id with the token, waited for until a voter. A run "
                    "reserves one spare id per node an add or replace may start (local backend only)")
    target: Target | None = Field(None, description="the node(s), changed one after the other (every action "
                                                    "but add): " + TARGET_DOC)
    role: Literal["manager", "worker"] | None = Field(None, description="add only: the new node's role "
                                                                        "(default manager)")
    force: bool = Field(True, description="remove: also a voter (the leader too) without demoting it first")

    @model_validator(mode="after")
    def _target_or_role(self):
        if self.action == "add":
            if self.target is not None:
                raise ValueError("`action: add` starts a new node under a spare id: it takes no `target` "
                                 "(give `role` instead)")
        else:
            if self.target is None:
                raise ValueError(f"`action: {self.action}` needs a `target`")
            if self.role is not None:
                raise ValueError("`role` goes with `action: add`")
        return self


LINK_KINDS = ("latency", "bandwidth", "reset", "stall", "slice", "slow-close", "limit", "flaky")
NODE_KINDS = ("kill", "stop", "pause", "power-loss", "wipe", "disk-full")
CLOCK_KINDS = ("clock",)
RESOURCE_KINDS = ("cpu", "memory")
MEMBERSHIP_KINDS = ("membership",)   # never drawn by a random block
FAULT_KINDS = ("partition",) + LINK_KINDS + NODE_KINDS + CLOCK_KINDS + RESOURCE_KINDS + MEMBERSHIP_KINDS

Fault = Annotated[Union[PartitionFault, LatencyFault, BandwidthFault, ResetFault, StallFault, SliceFault,
                        SlowCloseFault, LimitFault, FlakyFault, KillFault, StopFault, PauseFault,
                        PowerLossFault, WipeFault, DiskFullFault, ClockFault, CpuFault, MemoryFault,
                        MembershipFault],
                  Field(discriminator="fault")]


# Parameters of the faults a `random:` block draws, per kind, unless its `params` say otherwise:
# chosen to be visible but survivable. A kind's parameters are the keys of its own fault (the
# models of `Fault`) except timing, `fault` and the links' selectors (RANDOM_NOT_PARAMS; a partition
# has none: it isolates the drawn target in the block's `mode`), so a new kind gets its `params`
# entry, validation and documentation from its model and this table.
RANDOM_DEFAULTS: dict[str, dict[str, Any]] = {
    "partition": {"mode": "blackhole"},
    "latency": {"ms": 200, "jitter_ms": 50},
    "bandwidth": {"kb_s": 5},
    "reset": {"timeout_ms": 0},
    "stall": {"ms": 2000},
    "slice": {"avg": 16, "var": 8, "delay_us": 200},
    "slow-close": {"ms": 1000},
    "limit": {"bytes": 2000},
    "flaky": {"toxicity": 0.5, "kind": "cut"},
    "kill": {}, "stop": {}, "pause": {},
    "clock": {"offset": -2.0},
    "cpu": {"cpus": 0.1},
    "memory": {"limit": 128 * 1000 ** 2},
    "power-loss": {}, "wipe": {}, "disk-full": {},
    "membership": {"action": "demote"},   # never drawn (not in a random block's `kinds`)
}
RANDOM_NOT_PARAMS = ("fault", "target", "peers", "direction")


def fault_models() -> dict[str, type[FaultBase]]:
    """Fault kind -> its model, in the order of the `Fault` union."""
    union = typing.get_args(Fault)[0]
    return {typing.get_args(m.model_fields["fault"].annotation)[0]: m for m in typing.get_args(union)}


def _random_params_model() -> type[BaseModel]:
    """`random.params`: one optional object per fault kind that has parameters, its keys those of the
    kind's own fault with the random default as default."""
    kinds: dict[str, Any] = {}
    for kind, model in fault_models().items():
        if kind in ("partition",) + MEMBERSHIP_KINDS:
            continue  # a partition isolates the drawn target in the block's `mode`; membership: never drawn
        fields: dict[str, Any] = {}
        for name, f in model.model_fields.items():
            if name in FaultBase.model_fields or name in RANDOM_NOT_PARAMS:
                continue
            default = RANDOM_DEFAULTS.get(kind, {}).get(f.alias or name, PydanticUndefined)
            if default is PydanticUndefined and not f.is_required():
                default = f.get_default(call_default_factory=True)
            ann = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
            fields[name] = (ann, Field(default, alias=f.alias, description=f.description))
        if fields:
            sub = create_model(f"{kind.title().replace('-', '')}Params", __base__=Strict, **fields)
            sub.__doc__ = f"parameters of the `{kind}` faults a random block draws"
            kinds[kind.replace("-", "_")] = (sub | None, Field(None, alias=kind, description=sub.__doc__))
    model = create_model("RandomParams", __base__=Strict, **kinds)
    model.__doc__ = "per fault kind, the parameters its drawn faults get (the defaults below otherwise)"
    return model


RandomParams = _random_params_model()


class RandomSpace(Strict):
    """Faults drawn with the seed from a declared space; expanded into concrete faults by `chaos plan`."""

    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="prefix of the drawn faults' ids")
    from_: Duration = Field(alias="from", description="the earliest start")
    to: Duration = Field(description="no fault starts at or after this, and each ends by it")
    kinds: list[Literal["partition", "latency", "bandwidth", "reset", "stall", "slice", "slow-close",
                        "limit", "flaky", "kill", "stop", "pause", "power-loss", "wipe", "disk-full",
                        "clock", "cpu", "memory"]] = Field(min_length=1)
    targets: list[Union[str, TargetSpec]] = Field(["leader", "followers"], min_length=1,
                                                  description="targets to draw from: " + TARGET_DOC)
    duration: DurationRange = Field(description="each fault's length, drawn in [min, max]")
    gap: DurationRange = Field((1.0, 3.0), description="pause between the faults of one lane, drawn in [min, max]")
    concurrency: int = Field(1, ge=1, le=8, description="lanes of faults that may overlap")
    mode: Literal["blackhole", "refuse"] = Field("blackhole", description="partition mode")
    params: RandomParams = Field(default_factory=RandomParams,
                                 description="parameters of the drawn faults per kind, e.g. `{latency: {ms: "
                                             "50}, stall: {ms: 500}}`; see `random: params` below for every "
                                             "kind's keys and defaults")

    def kind_params(self, kind: str) -> dict[str, Any]:
        """The parameters a drawn fault of `kind` gets: the defaults, then what `params` sets."""
        given = getattr(self.params, kind.replace("-", "_"), None)
        chosen = given.model_dump(by_alias=True, mode="json", include=given.model_fields_set) if given else {}
        return {**RANDOM_DEFAULTS.get(kind, {}), **chosen}

    @model_validator(mode="after")
    def _params(self):
        models = fault_models()
        for kind in sorted(models):
            if getattr(self.params, kind.replace("-", "_"), None) is None:
                continue
            if kind not in self.kinds:
                raise ValueError(f"`params` sets {kind}, which `kinds` does not draw")
            probe = {"fault": kind, "at": 0, "for": 1, "target": "all", **self.kind_params(kind)}
            try:  # the kind's own cross-field rules (slice: var below avg, ...)
                models[kind].model_validate(probe)
            except ValidationError as exc:
                msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors(include_url=False))
                raise ValueError(f"params.{kind}: {msg}") from None
        return self

    @model_validator(mode="after")
    def _window(self):
        if self.to <= self.from_:
            raise ValueError("`to` must be after `from`")
        if self.duration[0] > self.duration[1] or self.gap[0] > self.gap[1]:
            raise ValueError("ranges are [min, max] with min <= max")
        if self.duration[1] <= 0:
            raise ValueError("duration must be above 0")
        if self.duration[0] > self.to - self.from_:
            raise ValueError("the shortest duration does not fit between `from` and `to`")
        return self


class RandomBlock(Strict):
    random: RandomSpace


class DrawnFaults(Strict):
    """The faults a random block drew, written out (`chaos export`, `chaos shrink`): each a concrete
    fault with `at` and `for`; their ids are NAME-1, NAME-2, ... unless named, and an expectation on
    NAME (fault-effective: NAME) covers them, as it covers a random block's faults."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                      description="the random block's name (its faults' id prefix; r1 for the first block)")
    faults: list[Fault] = Field(default_factory=list, max_length=10_000,
                                description="the drawn faults, in order; each has `at` and `for` (no `after`, "
                                            "`until` or `repeat`). Only the keys written are in the plan, as "
                                            "for a random block's faults")

    @model_validator(mode="after")
    def _concrete(self):
        for k, f in enumerate(self.faults):
            if f.at is None or f.for_ is None or f.repeat is not None or f.until is not None:
                raise ValueError(f"drawn fault {k + 1}: a drawn fault has `at` and `for`, "
                                 "and no `after`, `until` or `repeat`")
        return self


class DrawnBlock(Strict):
    drawn: DrawnFaults


def _schedule_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "random" if "random" in value else "drawn" if "drawn" in value else "fault-item"
    if isinstance(value, RandomBlock):
        return "random"
    return "drawn" if isinstance(value, DrawnBlock) else "fault-item"


ScheduleItem = Annotated[Union[Annotated[RandomBlock, Tag("random")], Annotated[DrawnBlock, Tag("drawn")],
                               Annotated[Fault, Tag("fault-item")]],
                         Discriminator(_schedule_kind)]


# -- workload -----------------------------------------------------------------------------------


class Mix(Strict):
    read: int = Field(4, ge=0, le=1000, description="relative weight of reads")
    write: int = Field(3, ge=0, le=1000, description="relative weight of writes")
    cas: int = Field(2, ge=0, le=1000, description="relative weight of compare-and-set")
    delete: int = Field(1, ge=0, le=1000, description="relative weight of deletes")

    @model_validator(mode="after")
    def _some(self):
        if self.read + self.write + self.cas + self.delete == 0:
            raise ValueError("the mix needs at least one positive weight")
        return self

    def pairs(self) -> list[tuple[str, int]]:
        return [(f, w) for f, w in (("read", self.read), ("write", self.write), ("cas", self.cas),
                                    ("delete", self.delete)) if w > 0]


class ServiceOp(Strict):
    create: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,31}$", description="create this service")
    scale: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,31}$", description="scale this service")
    replicas: int = Field(ge=0, le=10_000, description="desired replicas")
    at: Duration = Field(0.0, description="when, from the moment the workload starts")

    @model_validator(mode="after")
    def _one(self):
        if (self.create is None) == (self.scale is None):
            raise ValueError("a service operation is exactly one of `create: NAME` or `scale: NAME`")
        return self


class WorkloadConfig(Strict):
    clients: int = Field(4, ge=0, le=256, description="client threads (each a Jepsen process)")
    rate: float | None = Field(100.0, gt=0, le=100_000,
                               description="target ops/s over all clients, open loop: each operation has an "
                                           "intended start and its latency counts from it. Without "
                                           "max_in_flight a client has one operation in flight, so the "
                                           "achieved rate is at most clients / latency; with it the rate "
                                           "holds under latency. Slots more than 1 s behind are skipped "
                                           "(run.json workload.skipped_slots). null with closed: true for a "
                                           "closed loop")
    max_in_flight: int | None = Field(
        None, ge=1, le=1024,
        description="open loop with a pool: operations are handed to idle processes, and new processes are "
                    "added while fewer than this many operations are in flight, so `rate` is offered even "
                    "when latency is high (a process whose operation ended info is retired, as Jepsen does). "
                    "Slots at the bound are skipped (run.json workload.skipped_in_flight). To hold the rate "
                    "under latency L, give at least rate x L; a fault that makes operations time out then "
                    "keeps up to this many operations pending, and every info operation widens the "
                    "linearizability search. Default: none, one operation in flight per client")
    closed: bool = Field(False, description="closed loop: each client issues its next operation when the last ended")
    think: Duration = Field(0.02, description="closed loop: pause between a client's operations")
    keys: int = Field(3, ge=1, le=100_000, description="key space k0..k(N-1)")
    key_concurrency: int | None = Field(
        None, ge=1, le=256, description="at most this many operations in flight per key (default: no bound "
                                        "beyond the clients); bounds the checker's search")
    mix: Mix = Field(default_factory=Mix)
    values: Annotated[int, Field(ge=2, le=1_000_000)] | Literal["unique", "latest"] = Field(
        "latest", description="what writes write and cas compares. `latest`: every written value is new in "
                              "the run and half the cas (seeded coin) expect the latest value an ok completion "
                              "showed on the key, the rest an older value, so cas matches (leader-isolated: "
                              "about 30 %; fewer when many clients contend for few keys) and every write stays "
                              "distinguishable. N: every written value and both cas operands drawn from 1..N "
                              "(seeded), as Jepsen does (default mix and 3 values: about 25 % of cas succeed), "
                              "but a stale read or a lost write can hide behind an equal value (with 3, "
                              "leader-wakes-cut-off no longer caught the planted stale_read). `unique`: new "
                              "values and a cas that almost never matches (plans without the key replay this)")
    op_timeout: Duration = Field(1.5, description="client-side time budget of one operation, all its attempts "
                                                  "together (after it: info)")
    retry: bool = Field(True, description="within op_timeout, an attempt that failed over (connection refused, "
                                          "no leader, not the leader, leader lost, busy) is tried again at the "
                                          "named leader or the next node, as a Raft client does; a write that "
                                          "may have applied is retried only with sessions")
    sessions: bool = Field(True, description="writes carry client_id/seq (one session per process), so the "
                                             "store applies a retried write once (Raft thesis 6.3)")
    nodes: Target = Field("managers", description="the nodes clients talk to, through their client proxies: "
                                                  + TARGET_DOC)
    services: list[ServiceOp] = Field(default_factory=list, description="service operations through the leader")

    @model_validator(mode="after")
    def _loop(self):
        if self.closed and "rate" in self.model_fields_set and self.rate is not None:
            raise ValueError("give `rate` (open loop) or `closed: true`, not both")
        if not self.closed and self.rate is None:
            raise ValueError("`rate: null` needs `closed: true`")
        if self.closed and self.max_in_flight is not None:
            raise ValueError("`max_in_flight` is for the open loop; a closed loop has `clients` in flight")
        if self.max_in_flight is not None and self.max_in_flight < self.clients:
            raise ValueError(f"max_in_flight ({self.max_in_flight}) is below clients ({self.clients}): "
                             "every client process may have an operation in flight")
        if self.op_timeout <= 0:
            raise ValueError("op_timeout must be above 0")
        return self


# -- recovery, checks, expectations -------------------------------------------------------------


class Recovery(Strict):
    window: Duration = Field(10.0, description="after the final heal, the workload keeps running this long")
    converge: Duration = Field(30.0, description="then wait at most this long for the managers to agree and "
                                                 "the gossip member and endpoint tables to match before the "
                                                 "final state is collected")


CheckItem = Union[str, dict[str, Any]]
ExpectItem = Union[str, dict[str, str]]


class Experiment(Strict):
    version: Literal[1] = Field(description="schema version; this is version 1")
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="experiment name (run directories, JUnit)")
    description: str = Field("", max_length=4000, description="the question the experiment asks")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    steady: Duration = Field(5.0, description="length of the steady phase when the schedule is empty")
    schedule: list[ScheduleItem] = Field(default_factory=list, max_length=1000)
    recovery: Recovery = Field(default_factory=Recovery)
    checks: list[CheckItem] | None = Field(
        None, description="checker names (see `chaos check --list`) or {name: {param: value}}; default: "
                          "linearizable, raft-safety, durability, convergence, availability, recovery")
    expect: list[ExpectItem] = Field(default_factory=list,
                                     description="events that must be observed at least once, else the run is "
                                                 "inconclusive: leader-changed, node-restarted, member-suspected, "
                                                 "member-dead, ops-failed-in-phase:P, ops-disturbed-in-phase:P (failed, or "
                                                 "needed a second attempt), ops-ok-in-phase:P, "
                                                 "fault-applied:KIND, fault-effective:F, until-met:F (P: steady, faults, recovery or a "
                                                 "fault's name; fault-effective: F took effect, not only started "
                                                 "(probes saw the cut, the node went silent or rebooted, the link "
                                                 "delayed or dropped probes); until-met: F has `until` and its "
                                                 "condition became true)")


def json_schema() -> dict:
    """The published JSON Schema of version 1 (experiments/schema.json is generated from this)."""
    schema = Experiment.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://chaos-swarm.invalid/experiment-v1.schema.json"
    schema["title"] = "chaos experiment (version 1)"
    schema["patternProperties"] = {"^" + EXTENSION_PREFIX: {
        "description": "ignored: a place for YAML anchors to reuse (`x-pause: &pause {...}`, then "
                       "`- {<<: *pause, at: 5s}`)"}}
    return schema
