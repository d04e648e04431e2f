"""Raft wire messages, log entries and snapshots: frozen dataclasses validated on construction.

Owns: the message types, their JSON form (to_dict / from_dict), the entry chain hash.
Must not import asyncio, socket, time, module-level random or `chaos`.

Message type names and numbers are APPEND-ONLY: never renumber or reuse one; add new ones at the end.
A dict from a peer that makes no sense raises MessageError (the receiver logs, counts and drops it);
constructing a bad message from our own code raises the same error, which is then our bug.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

# Append-only registry of wire type names -> numbers (numbers are documentation; the JSON uses names).
MESSAGE_TYPES = {
    "vote_req": 1,
    "vote_resp": 2,
    "append": 3,
    "append_resp": 4,
    "snapshot": 5,
}


class MessageError(ValueError):
    """A message or entry that violates the wire format."""


# json.dumps with these options would build a new encoder on every call (hashes are computed per
# entry and per write on every node): one shared, stateless encoder gives the same bytes
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _c_canonical():
    """The C encoder JSONEncoder.encode builds on every call, built once (same options, same
    bytes; no circular-reference bookkeeping: see _canonical_str). None without the C module."""
    make = getattr(json.encoder, "c_make_encoder", None)
    esc = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if make is None or esc is None:
        return None
    try:
        return make(None, _CANONICAL.default, esc, None, ":", ",", True, False, True)
    except TypeError:       # another signature: keep the plain encoder
        return None


_C_CANONICAL = _c_canonical()


def _canonical_str(obj) -> str:
    enc = _C_CANONICAL
    if enc is not None:
        try:
            return "".join(enc(obj, 0))
        except RecursionError:
            pass            # a circular object: the plain encoder raises its ValueError
    return _CANONICAL.encode(obj)


def canonical_json(obj) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, ASCII only. Used for hashes and digests."""
    return _canonical_str(obj).encode()


def chain_hash(prev_hash: str, term: int, command: dict) -> str:
    """Chain hash of an entry (docs/contracts.md section 4).

    First 16 hex characters of sha256(prev_hash + ":" + str(term) + ":" + canonical_json(command)).
    The hash before index 1 is "". Equal hashes at an index mean equal logs up to that index.
    """
    return hashlib.sha256(f"{prev_hash}:{term}:{_canonical_str(command)}".encode()).hexdigest()[:16]


def _int(name: str, v, minimum: int = 0) -> None:
    if type(v) is not int or v < minimum:
        raise MessageError(f"{name} must be an int >= {minimum}, got {v!r}")


def _str(name: str, v) -> None:
    if type(v) is not str or not v:
        raise MessageError(f"{name} must be a non-empty string, got {v!r}")


def _bool(name: str, v) -> None:
    if type(v) is not bool:
        raise MessageError(f"{name} must be a bool, got {v!r}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. `hash` is the chain hash computed by the node that holds it (never trusted
    from the wire: a receiver recomputes it from its own log)."""
    index: int
    term: int
    command: dict
    hash: str = field(default="", compare=False)

    def __post_init__(self):
        i, t = self.index, self.term
        if type(i) is not int or i < 1 or type(t) is not int or t < 1:
            _int("entry.index", i, 1)
            _int("entry.term", t, 1)
        if type(self.command) is not dict or type(self.command.get("op")) is not str:
            raise MessageError(f"entry.command must be a dict with a string 'op', got {self.command!r}")

    def to_dict(self) -> dict:
        return {"index": self.index, "term": self.term, "command": self.command}

    @classmethod
    def from_dict(cls, d: dict) -> "Entry":
        try:
            return cls(d["index"], d["term"], d["command"])
        except (KeyError, TypeError) as e:
            raise MessageError(f"bad entry {d!r}: {e}") from None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A store snapshot as of `index` (whose entry had `term` and chain hash `hash`). `config` is
    the cluster configuration in force at `index` ({"voters": [...], "learners": [...]}, see
    membership.py), or None when no configuration entry preceded it (the bootstrap voters)."""
    index: int
    term: int
    hash: str
    data: dict
    config: dict | None = None

    def __post_init__(self):
        _int("snapshot.index", self.index, 0)
        _int("snapshot.term", self.term, 0)
        if type(self.hash) is not str or type(self.data) is not dict:
            raise MessageError("snapshot.hash must be a str and snapshot.data a dict")
        if self.config is not None:
            c = self.config
            if type(c) is not dict or any(type(c.get(k, [])) is not list or
                                          any(type(x) is not str or not x for x in c.get(k, []))
                                          for k in ("voters", "learners")):
                raise MessageError(f"snapshot.config must be a dict of voter and learner id lists, got {c!r}")

    def to_dict(self) -> dict:
        d = {"index": self.index, "term": self.term, "hash": self.hash, "data": self.data}
        if self.config is not None:
            d["config"] = self.config
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Snapshot":
        try:
            return cls(d["index"], d["term"], d["hash"], d["data"], d.get("config"))
        except (KeyError, TypeError) as e:
            raise MessageError(f"bad snapshot: {e}") from None


@dataclass(frozen=True, slots=True)
class Message:
    """Common header: `term` of the sender, `src` and `dst` node ids."""
    term: int
    src: str
    dst: str

    TYPE = ""

    def _check_header(self):
        if type(self.term) is not int or self.term < 0 or type(self.src) is not str or not self.src \
                or type(self.dst) is not str or not self.dst:
            _int("term", self.term)
            _str("src", self.src)
            _str("dst", self.dst)

    def __post_init__(self):
        self._check_header()

    def to_dict(self) -> dict:
        d = {"type": self.TYPE}
        for name in self.__slots__:
            d[name] = getattr(self, name)
        for name in Message.__slots__:
            d[name] = getattr(self, name)
        return d


@dataclass(frozen=True, slots=True)
class VoteRequest(Message):
    """RequestVote (§5.2) or, with pre_vote, a PreVote probe (thesis §9.6) for term `term`."""
    pre_vote: bool
    last_log_index: int
    last_log_term: int
    TYPE = "vote_req"

    def __post_init__(self):
        self._check_header()
        li, lt = self.last_log_index, self.last_log_term
        if type(self.pre_vote) is not bool or type(li) is not int or li < 0 or type(lt) is not int or lt < 0:
            _bool("pre_vote", self.pre_vote)
            _int("last_log_index", li)
            _int("last_log_term", lt)


@dataclass(frozen=True, slots=True)
class VoteResponse(Message):
    """Answer to a VoteRequest; a granted pre-vote carries the requested term."""
    pre_vote: bool
    granted: bool
    TYPE = "vote_resp"

    def __post_init__(self):
        self._check_header()
        if type(self.pre_vote) is not bool or type(self.granted) is not bool:
            _bool("pre_vote", self.pre_vote)
            _bool("granted", self.granted)


@dataclass(frozen=True, slots=True)
class AppendEntries(Message):
    """AppendEntries (§5.3); empty `entries` is a heartbeat. `seq` is the leader's heartbeat
    sequence number, echoed by the follower, used to confirm leadership for ReadIndex."""
    prev_log_index: int
    prev_log_term: int
    entries: tuple
    leader_commit: int
    seq: int
    TYPE = "append"

    def __post_init__(self):
        self._check_header()
        pi, pt, lc, sq = self.prev_log_index, self.prev_log_term, self.leader_commit, self.seq
        if type(pi) is not int or pi < 0 or type(pt) is not int or pt < 0 or type(lc) is not int or lc < 0 \
                or type(sq) is not int or sq < 0:
            _int("prev_log_index", pi)
            _int("prev_log_term", pt)
            _int("leader_commit", lc)
            _int("seq", sq)
        entries = self.entries
        if type(entries) is not tuple:
            raise MessageError("entries must be a tuple")
        if entries:
            expect = pi + 1
            for e in entries:
                if type(e) is not Entry or e.index != expect:
                    raise MessageError(f"entries must be consecutive Entry objects from {pi + 1}")
                expect += 1

    def to_dict(self) -> dict:
        d = Message.to_dict(self)
        d["entries"] = [e.to_dict() for e in self.entries]
        return d


@dataclass(frozen=True, slots=True)
class AppendResponse(Message):
    """Answer to AppendEntries or InstallSnapshot. On success `match_index` is the last index known
    to match the leader. On rejection `hint_index`/`hint_term` drive fast back-off (§5.3, the
    optimisation described after Figure 7): hint_term is the follower's term at the conflicting
    index (0 when its log is too short) and hint_index the first index of that term (or its last
    index + 1)."""
    success: bool
    match_index: int
    hint_index: int
    hint_term: int
    seq: int
    TYPE = "append_resp"

    def __post_init__(self):
        self._check_header()
        mi, hi, ht, sq = self.match_index, self.hint_index, self.hint_term, self.seq
        if type(self.success) is not bool or type(mi) is not int or mi < 0 or type(hi) is not int or hi < 0 \
                or type(ht) is not int or ht < 0 or type(sq) is not int or sq < 0:
            _bool("success", self.success)
            _int("match_index", mi)
            _int("hint_index", hi)
            _int("hint_term", ht)
            _int("seq", sq)


@dataclass(frozen=True, slots=True)
class InstallSnapshot(Message):
    """InstallSnapshot (§7), whole snapshot in one message (the store is small)."""
    snapshot: Snapshot
    seq: int
    TYPE = "snapshot"

    def __post_init__(self):
        self._check_header()
        _int("seq", self.seq)
        if type(self.snapshot) is not Snapshot:
            raise MessageError("snapshot must be a Snapshot")

    def to_dict(self) -> dict:
        d = Message.to_dict(self)
        d["snapshot"] = self.snapshot.to_dict()
        return d


_CLASSES = {c.TYPE: c for c in (VoteRequest, VoteResponse, AppendEntries, AppendResponse, InstallSnapshot)}
assert set(_CLASSES) == set(MESSAGE_TYPES)


def message_from_dict(d: dict) -> Message:
    """Parse a wire dict; raise MessageError for anything malformed (the peer's error)."""
    if type(d) is not dict:
        raise MessageError("message must be a JSON object")
    cls = _CLASSES.get(d.get("type"))
    if cls is None:
        raise MessageError(f"unknown message type {d.get('type')!r}")
    kwargs = {}
    try:
        for name in ("term", "src", "dst") + tuple(cls.__slots__):
            kwargs[name] = d[name]
        if cls is AppendEntries:
            if type(kwargs["entries"]) is not list:
                raise MessageError("entries must be a list")
            kwargs["entries"] = tuple(Entry.from_dict(e) for e in kwargs["entries"])
        elif cls is InstallSnapshot:
            kwargs["snapshot"] = Snapshot.from_dict(kwargs["snapshot"])
    except KeyError as e:
        raise MessageError(f"{cls.TYPE}: missing field {e}") from None
    except TypeError as e:
        raise MessageError(f"{cls.TYPE}: {e}") from None
    return cls(**kwargs)


for _c in _CLASSES.values():
    _c.from_dict = staticmethod(message_from_dict)
