"""The in-memory Raft log: a snapshot base plus the entries after it, with chain hashes.

Owns: RaftLog (term/hash lookup, slicing, append, truncate, compaction, reset to a snapshot).
Must not import asyncio, socket, time, module-level random or `chaos`.
"""
from __future__ import annotations

from .membership import CONFIG_OP, Membership, from_command
from .messages import Entry, Snapshot, chain_hash


class RaftLog:
    """entries[i].index == snap_index + 1 + i. Index 0 has term 0 and hash "".

    Also tracks the configuration entries (membership.py): `confs` lists (index, Membership) of the
    configuration entries after the snapshot, `snap_conf` the configuration in force at the
    snapshot index (None: no configuration entry so far, the bootstrap voters apply)."""

    __slots__ = ("snap_index", "snap_term", "snap_hash", "entries", "confs", "snap_conf")

    def __init__(self, snapshot: Snapshot, entries):
        self.snap_index = snapshot.index
        self.snap_term = snapshot.term
        self.snap_hash = snapshot.hash
        self.entries = list(entries)
        self.snap_conf = Membership.from_dict(snapshot.config) if snapshot.config is not None else None
        self.confs = [(e.index, from_command(e.command)) for e in self.entries
                      if e.command.get("op") == CONFIG_OP]

    def conf_at(self, index: int):
        """The configuration in force at `index` (the latest configuration entry at or below it,
        else the snapshot's), or None when there is none (bootstrap). Below the snapshot index the
        answer is the snapshot's configuration (older ones are compacted away)."""
        for i, c in reversed(self.confs):
            if i <= index:
                return c
        return self.snap_conf

    @property
    def last_conf(self):
        """The latest configuration in the log (committed or not), or None (bootstrap)."""
        return self.confs[-1][1] if self.confs else self.snap_conf

    @property
    def last_conf_index(self) -> int:
        """Index of the latest configuration entry (the snapshot index if it is compacted, 0 if
        there is none)."""
        if self.confs:
            return self.confs[-1][0]
        return self.snap_index if self.snap_conf is not None else 0

    @property
    def last_index(self) -> int:
        return self.snap_index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snap_term

    def term(self, index: int):
        """Term at index, or None when the index is compacted away or beyond the end."""
        if index == self.snap_index:
            return self.snap_term
        pos = index - self.snap_index - 1
        if pos < 0 or pos >= len(self.entries):
            return None
        return self.entries[pos].term

    def hash(self, index: int):
        if index == self.snap_index:
            return self.snap_hash
        pos = index - self.snap_index - 1
        if pos < 0 or pos >= len(self.entries):
            return None
        return self.entries[pos].hash

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.snap_index - 1]

    def slice(self, lo: int, hi: int) -> list:
        """Entries with lo <= index < hi (lo must be above the snapshot index)."""
        base = self.snap_index + 1
        return self.entries[lo - base:hi - base]

    def append(self, term: int, command: dict) -> Entry:
        e = Entry(self.last_index + 1, term, command, chain_hash(self.hash(self.last_index), term, command))
        self.entries.append(e)
        if command.get("op") == CONFIG_OP:
            self.confs.append((e.index, from_command(command)))
        return e

    def truncate_from(self, index: int) -> None:
        del self.entries[index - self.snap_index - 1:]
        while self.confs and self.confs[-1][0] >= index:
            self.confs.pop()       # a truncated configuration is rolled back

    def first_index_of_term(self, index: int) -> int:
        """First index of the run of entries with the same term as `index` (bounded by the base)."""
        t = self.term(index)
        i = index
        while i - 1 > self.snap_index and self.term(i - 1) == t:
            i -= 1
        return i

    def last_index_of_term(self, term: int):
        """Last index whose entry has `term`, or None (used by the leader's fast back-off)."""
        for e in reversed(self.entries):
            if e.term == term:
                return e.index
            if e.term < term:
                return None
        return None

    def compact(self, index: int) -> None:
        """Drop entries up to and including index (which must be in the log)."""
        self.snap_term = self.term(index)
        self.snap_hash = self.hash(index)
        self.snap_conf = self.conf_at(index)
        self.confs = [(i, c) for i, c in self.confs if i > index]
        del self.entries[:index - self.snap_index]
        self.snap_index = index

    def reset(self, snapshot: Snapshot) -> None:
        self.snap_index, self.snap_term, self.snap_hash = snapshot.index, snapshot.term, snapshot.hash
        self.entries = []
        self.snap_conf = Membership.from_dict(snapshot.config) if snapshot.config is not None else None
        self.confs = []
