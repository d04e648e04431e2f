"""A drop-in ``Store`` whose ``digest()`` gives the same value as the Raft store's, much faster.

Why: the Raft core journals ``store_digest`` after EVERY applied entry. ``Store.digest()`` keeps
the kv part as a running sum of per-pair hashes (O(1) per write); this subclass is the agent's safety
net around that shortcut (a digest mismatch would read as a State Machine Safety violation): the
value is defined as ``Store.digest_recomputed()``'s (from scratch); the first ``VERIFY_FIRST`` digests
(only while kv + sessions hold at most ``VERIFY_FIRST_MAX_ITEMS`` pairs) and then every
``VERIFY_EVERY``-th are cross-checked against the slow path, and on any mismatch the node logs an
error, counts it (``mismatches``) and uses the slow path for good. The size bound: a cross-check is
O(store), and a node that starts from a large snapshot (a joiner installing 10,000 keys, a restart)
spent its first 50 digests recomputing it -- 3 CPU-s at 10,000 keys, seconds of a blocked event loop
on a busy machine (benchmarks/membership.py); the sums are rebuilt from scratch on a restore anyway. tests/agent checks equality over
random command sequences, so a change to ``Store.state()`` shows up there first.

Owns nothing but the digest shortcut; the commands and their semantics stay in swarmnode.raft.store
(not edited here). Must not import asyncio or ``chaos``.
"""

from __future__ import annotations

import copy
import logging

from swarmnode.raft.store import Store

log = logging.getLogger("swarmnode.fast_store")

VERIFY_FIRST = 50
VERIFY_FIRST_MAX_ITEMS = 1000
VERIFY_EVERY = 1000
_SECTIONS = ("applied_index", "kv", "nodes", "services", "sessions", "tasks")
_SCALARS = (str, int, float, bool, type(None))


class FastStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.digests = 0
        self.mismatches = 0
        self._slow = False

    def _fast_digest(self) -> str:
        return Store.digest(self)

    def digest(self) -> str:
        if self._slow:
            return self.digest_recomputed()
        self.digests += 1
        fast = self._fast_digest()
        early = self.digests <= VERIFY_FIRST and len(self.kv) + len(self.sessions) <= VERIFY_FIRST_MAX_ITEMS
        if early or self.digests % VERIFY_EVERY == 0:
            slow = self.digest_recomputed()
            if slow != fast or tuple(sorted(self.state())) != _SECTIONS:
                self.mismatches += 1
                self._slow = True
                log.error("fast store digest differs from Store.digest() (%s != %s); using the "
                          "slow digest from now on", fast, slow)
                return slow
        return fast

    def snapshot(self) -> dict:
        """Store.snapshot()'s value, cheaper: the kv map is copied one level deep when all its values
        are JSON scalars (immutable; the HTTP API admits nothing else), the rest deep-copied as
        there. A snapshot is taken on the event loop every CHAOS_SNAPSHOT_ENTRIES applies (once a
        second at 1,000 writes/s); the deep copy of 2,000 keys took 1-1.5 ms of
        CPU there, this copy 0.35 ms."""
        kv = self.kv
        if self.bugs or not all(type(v) in _SCALARS for v in kv.values()):
            return super().snapshot()
        rest = {k: v for k, v in self.state().items() if k != "kv"}
        out = copy.deepcopy(rest)
        out["kv"] = dict(kv)
        return out
