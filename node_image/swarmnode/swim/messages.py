"""SWIM wire format: rumours and messages as frozen, validated dataclasses with a JSON mapping.

Owns: `MemberUpdate`, `EndpointUpdate` (rumours), the message classes, `decode()` and `WireError`.
Must not import: asyncio, socket, time, random, `chaos`, or other swarmnode packages.

Wire form: `msg.to_dict()` is a JSON-ready dict with a "type" key; `decode(d)` (or
`Message.from_dict(d)`) rebuilds it and raises `WireError` (a ValueError) for anything malformed:
that is the peer's error -- the driver counts it and drops the frame. Constructing a message with
bad fields from our own code raises the same error, loudly.

MESSAGE_TYPES and the update kinds are APPEND-ONLY: never rename or reuse a type name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

# Append-only. Never rename or remove an entry: peers of another version may still send it.
MESSAGE_TYPES = ("ping", "ack", "ping_req", "nack", "gossip", "push_pull")
MEMBER_STATES = ("alive", "suspect", "dead", "left")   # append-only
SCALARS = (str, int, float, bool, type(None))
MAX_UPDATES = 100_000   # bound on rumours / state entries accepted in one message


class WireError(ValueError):
    """A message or rumour that does not make sense."""


def _check_id(name: str, v: Any) -> None:
    if not isinstance(v, str) or not v or len(v) > 256:
        raise WireError(f"{name} must be a non-empty string of at most 256 chars, got {v!r}")


def _check_nat(name: str, v: Any) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise WireError(f"{name} must be a non-negative integer, got {v!r}")


@dataclass(frozen=True)
class MemberUpdate:
    """A rumour about a member: its state at an incarnation. `origin` is who asserts it
    (for suspect/dead: the accuser; for alive/left: normally the member itself)."""

    state: str
    member: str
    incarnation: int
    origin: str

    def __post_init__(self) -> None:
        if self.state not in MEMBER_STATES:
            raise WireError(f"unknown member state {self.state!r}")
        _check_id("member", self.member)
        _check_nat("incarnation", self.incarnation)
        _check_id("origin", self.origin)

    def to_dict(self) -> dict:
        return {"k": "m", "state": self.state, "member": self.member,
                "incarnation": self.incarnation, "origin": self.origin}


@dataclass(frozen=True)
class EndpointUpdate:
    """A versioned entry of the endpoint table. `deleted` marks a tombstone. Entries are ordered by
    (version, owner, deleted); the greater wins everywhere, so all replicas converge."""

    key: str
    owner: str
    version: int
    value: Any = None
    deleted: bool = False

    def __post_init__(self) -> None:
        _check_id("key", self.key)
        _check_id("owner", self.owner)
        _check_nat("version", self.version)
        if not isinstance(self.value, SCALARS):
            raise WireError(f"endpoint value must be a JSON scalar, got {type(self.value).__name__}")
        if not isinstance(self.deleted, bool):
            raise WireError("deleted must be a bool")

    def order(self) -> tuple:
        return (self.version, self.owner, self.deleted)

    def to_dict(self) -> dict:
        return {"k": "e", "key": self.key, "owner": self.owner, "version": self.version,
                "value": self.value, "deleted": self.deleted}


Update = MemberUpdate | EndpointUpdate


def update_from_dict(d: Any) -> Update:
    if not isinstance(d, dict):
        raise WireError("update must be an object")
    try:
        if d.get("k") == "m":
            return MemberUpdate(d["state"], d["member"], d["incarnation"], d["origin"])
        if d.get("k") == "e":
            return EndpointUpdate(d["key"], d["owner"], d["version"], d.get("value"),
                                  d.get("deleted", False))
    except KeyError as e:
        raise WireError(f"update lacks {e}") from None
    raise WireError(f"unknown update kind {d.get('k')!r}")


def _updates_from(v: Any, name: str = "updates") -> tuple:
    if not isinstance(v, list) or len(v) > MAX_UPDATES:
        raise WireError(f"{name} must be a list of at most {MAX_UPDATES}")
    return tuple(update_from_dict(u) for u in v)


def _check_updates(v: Any, name: str = "updates") -> None:
    if not isinstance(v, tuple):
        raise WireError(f"{name} must be a tuple")
    for u in v:
        if not isinstance(u, (MemberUpdate, EndpointUpdate)):
            raise WireError(f"{name} holds a {type(u).__name__}")


@dataclass(frozen=True)
class Message:
    """Base: every message names its sender `src` and addressee `dst` and carries rumours."""

    TYPE: ClassVar[str] = ""
    src: str
    dst: str
    updates: tuple = field(default=())

    def __post_init__(self) -> None:
        _check_id("src", self.src)
        _check_id("dst", self.dst)
        _check_updates(self.updates)

    def to_dict(self) -> dict:
        d = {"type": self.TYPE}
        for k, v in self.__dict__.items():
            d[k] = [u.to_dict() for u in v] if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Message":
        return decode(d)


@dataclass(frozen=True)
class Ping(Message):
    """Direct probe (SWIM 4.1). The addressee answers `Ack(seq)` to `src`."""

    TYPE: ClassVar[str] = "ping"
    seq: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nat("seq", self.seq)


@dataclass(frozen=True)
class Ack(Message):
    """Answer to a Ping, or a relayed answer to a PingReq (then `src` is the relay)."""

    TYPE: ClassVar[str] = "ack"
    seq: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nat("seq", self.seq)


@dataclass(frozen=True)
class PingReq(Message):
    """Ask `dst` to ping `target` for us and relay the ack (SWIM 4.1) or a Nack (Lifeguard)."""

    TYPE: ClassVar[str] = "ping_req"
    seq: int = 0
    target: str = "?"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nat("seq", self.seq)
        _check_id("target", self.target)


@dataclass(frozen=True)
class Nack(Message):
    """Relay's report that `target` did not answer in time (Lifeguard IV-A: proves the relay is
    reachable, so the requester blames the target rather than its own health)."""

    TYPE: ClassVar[str] = "nack"
    seq: int = 0


@dataclass(frozen=True)
class Gossip(Message):
    """Rumours only, pushed every gossip interval to a few random members."""

    TYPE: ClassVar[str] = "gossip"


@dataclass(frozen=True)
class PushPull(Message):
    """Anti-entropy: the sender's full member list and endpoint table (both as updates).
    `reply` asks the addressee to answer with its own state; `join` marks a join request."""

    TYPE: ClassVar[str] = "push_pull"
    reply: bool = False
    join: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.reply, bool) or not isinstance(self.join, bool):
            raise WireError("reply and join must be bools")


_CLASSES = {c.TYPE: c for c in (Ping, Ack, PingReq, Nack, Gossip, PushPull)}
assert tuple(_CLASSES) == MESSAGE_TYPES


def decode(d: Any) -> Message:
    """Rebuild a message from its `to_dict()` form; raise WireError on anything malformed."""
    if not isinstance(d, dict):
        raise WireError("message must be a JSON object")
    cls = _CLASSES.get(d.get("type"))
    if cls is None:
        raise WireError(f"unknown message type {d.get('type')!r}")
    kwargs = {}
    for name in cls.__dataclass_fields__:
        if name == "TYPE":
            continue
        if name in d:
            v = d[name]
            kwargs[name] = _updates_from(v) if name == "updates" else v
        elif name in ("src", "dst"):
            raise WireError(f"{cls.TYPE} lacks {name}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise WireError(str(e)) from None
