"""Quorum arithmetic, pulled out of the core so it can be table-tested (STYLE item 4).

Owns: majority size, the majority-replicated index, vote tallies. Pure functions on plain values.
Must not import asyncio, socket, time, module-level random or `chaos`.
"""
from __future__ import annotations

WON, LOST, PENDING = "won", "lost", "pending"


def majority(n_voters: int) -> int:
    """Smallest number of voters that is more than half of n_voters (n >= 1)."""
    if n_voters < 1:
        raise ValueError("need at least one voter")
    return n_voters // 2 + 1


def committed_index(match_indexes) -> int:
    """Largest index replicated on a majority: the majority(n)-th largest of the match indexes
    (Raft paper §5.3/§5.4; the caller still applies the current-term rule of §5.4.2)."""
    m = sorted(match_indexes, reverse=True)
    return m[majority(len(m)) - 1]


def vote_result(n_voters: int, granted: int, rejected: int) -> str:
    """WON once granted reaches a majority, LOST once a majority can no longer be reached."""
    q = majority(n_voters)
    if granted >= q:
        return WON
    if n_voters - rejected < q:
        return LOST
    return PENDING
