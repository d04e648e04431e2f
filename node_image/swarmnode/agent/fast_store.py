"""A drop-in ``Store`` whose ``digest()`` gives the same value as the Raft store's, much faster.

Why: the Raft core journals ``store_digest`` after EVERY applied entry. ``Store.digest()`` keeps
the kv part as a running sum of per-pair hashes (O(1) per write); this subclass is the agent's safety
net around that shortcut (a digest mismatch would read as a State Machine Safety violation): the
value is defined as ``Store.digest_recomputed()``'s (from scratch); the first ``VERIFY_FIRST`` digests
(only while kv + sessions hold at most ``VERIFY_FIRST_MAX_ITEMS`` pairs) are cross-checked against
the slow path at once, and on any mismatch the node logs an error, counts it (``mismatches``) and
uses the slow path for good. After those, every ``VERIFY_EVERY``-th digest starts an incremental
cross-check of the two running sums (kv, sessions) it used: the pairs of both maps at that moment
are frozen (a shallow copy: values are replaced on write, never changed in place) and re-hashed a
bounded slice per later digest, so the check completes within ``VERIFY_EVERY // 2`` digests; if a
recomputed sum differs from the running one recorded at the start, the same error, count and
fallback follow. (A from-scratch recomputation of 1,000 keys in one go cost ~3 ms on the event loop
once a second at 1,000 writes/s, a stall the write tail saw; the slice costs a few pair hashes per
apply, the same total.) The size bound: a cross-check is
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

from swarmnode.raft.store import KV_HASH_MOD, Store, kv_pair_hash

log = logging.getLogger("swarmnode.fast_store")

VERIFY_FIRST = 50
VERIFY_FIRST_MAX_ITEMS = 1000
VERIFY_EVERY = 1000
_SECTIONS = ("applied_index", "kv", "nodes", "services", "sessions", "tasks")
_SCALARS = (str, int, float, bool, type(None))


class _SumCheck:
    """One incremental cross-check: the pairs of kv and sessions frozen at its start, the running
    sums the fast digest used then, and the sums recomputed so far."""

    __slots__ = ("parts", "want", "got", "part", "pos")

    def __init__(self, kv_items: list, kv_acc: int, sess_items: list, sess_acc: int) -> None:
        self.parts = (kv_items, sess_items)
        self.want = (kv_acc, sess_acc)
        self.got = [0, 0]
        self.part = 0
        self.pos = 0

    def step(self, budget: int) -> bool:
        """Hash up to `budget` more pairs; True when every pair is summed."""
        while budget > 0 and self.part < 2:
            items = self.parts[self.part]
            hi = min(len(items), self.pos + budget)
            acc = self.got[self.part]
            for k, v in items[self.pos:hi]:
                acc += kv_pair_hash(k, v)
            self.got[self.part] = acc % KV_HASH_MOD
            budget -= hi - self.pos
            self.pos = hi
            if hi == len(items):
                self.part += 1
                self.pos = 0
        return self.part == 2

    def size(self) -> int:
        return len(self.parts[0]) + len(self.parts[1])


class FastStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.digests = 0
        self.mismatches = 0
        self.checks_done = 0    # incremental cross-checks completed (mismatch or not)
        self._slow = False
        self._check: _SumCheck | None = None
        self._check_budget = 1

    def _fast_digest(self) -> str:
        return Store.digest(self)

    def _fall_back(self, fast: str, slow: str) -> str:
        self.mismatches += 1
        self._slow = True
        self._check = None
        log.error("fast store digest differs from Store.digest() (%s != %s); using the "
                  "slow digest from now on", fast, slow)
        return slow

    def digest(self) -> str:
        if self._slow:
            return self.digest_recomputed()
        self.digests += 1
        fast = self._fast_digest()
        early = self.digests <= VERIFY_FIRST and len(self.kv) + len(self.sessions) <= VERIFY_FIRST_MAX_ITEMS
        if early:
            slow = self.digest_recomputed()
            if slow != fast or tuple(sorted(self.state())) != _SECTIONS:
                return self._fall_back(fast, slow)
            return fast
        if self._check is not None and self._check.step(self._check_budget):
            check, self._check = self._check, None
            self.checks_done += 1
            if tuple(check.got) != check.want:
                return self._fall_back(fast, self.digest_recomputed())
        if self.digests % VERIFY_EVERY == 0 and self._check is None:
            if tuple(sorted(self.state())) != _SECTIONS:
                return self._fall_back(fast, self.digest_recomputed())
            self.start_check()
        return fast

    def start_check(self) -> None:
        """Freeze the kv and sessions pairs with the running sums now; later digests re-hash them."""
        kv_acc, sess_acc = self._kv_sum.current(self.kv), self._sessions_sum.current(self.sessions)
        self._check = _SumCheck(list(self.kv.items()), kv_acc, list(self.sessions.items()), sess_acc)
        self._check_budget = max(4, -(-self._check.size() // max(1, VERIFY_EVERY // 2)))

    def finish_check(self) -> bool:
        """Run a started check to its end now (tests); False if it found a mismatch."""
        before = self.mismatches
        if self._check is not None:
            self._check_budget = self._check.size() + 1
            self.digest()
        return self.mismatches == before

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
