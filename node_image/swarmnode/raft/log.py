"""The in-memory Raft log: a snapshot base plus the entries after it, with chain hashes.

Owns: RaftLog (term/hash lookup, slicing, append, truncate, compaction, reset to a snapshot).
Must not import asyncio, socket, time, module-level random or `chaos`.
"""
from __future__ import annotations

from .messages import Entry, Snapshot, chain_hash


class RaftLog:
    """entries[i].index == snap_index + 1 + i. Index 0 has term 0 and hash ""."""

    __slots__ = ("snap_index", "snap_term", "snap_hash", "entries")

    def __init__(self, snapshot: Snapshot, entries):
        self.snap_index = snapshot.index
        self.snap_term = snapshot.term
        self.snap_hash = snapshot.hash
        self.entries = list(entries)

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
        return e

    def truncate_from(self, index: int) -> None:
        del self.entries[index - self.snap_index - 1:]

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
        del self.entries[:index - self.snap_index]
        self.snap_index = index

    def reset(self, snapshot: Snapshot) -> None:
        self.snap_index, self.snap_term, self.snap_hash = snapshot.index, snapshot.term, snapshot.hash
        self.entries = []
