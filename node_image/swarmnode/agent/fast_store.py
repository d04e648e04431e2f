"""A drop-in ``Store`` whose ``digest()`` gives the same value as the Raft store's, much faster.

Why: the Raft core journals ``store_digest`` after EVERY applied entry. ``Store.digest()`` sums a
hash of every kv pair (O(store)); this subclass keeps that sum up to date as the map changes (O(1)
per write), so a digest costs one sha256 over the small sections.

Safety net (a digest mismatch would read as a State Machine Safety violation): the value is defined
as exactly ``Store.digest()``'s; the first ``VERIFY_FIRST`` digests and then every
``VERIFY_EVERY``-th are cross-checked against the slow path, and on any mismatch the node logs an
error, counts it (``mismatches``) and uses the slow path for good. tests/agent checks equality over
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
VERIFY_EVERY = 1000
_SECTIONS = ("applied_index", "kv", "nodes", "services", "sessions", "tasks")


class _KvDict(dict):
    """A dict that keeps the sum of its pairs' `kv_pair_hash` as it changes."""

    def __init__(self, items=None) -> None:
        super().__init__()
        self._h: dict = {}
        self.acc = 0
        for k, v in (items or {}).items():
            self[k] = v

    def __setitem__(self, key, value) -> None:
        h = kv_pair_hash(key, value)
        self.acc = (self.acc - self._h.get(key, 0) + h) % KV_HASH_MOD
        self._h[key] = h
        dict.__setitem__(self, key, value)

    def __delitem__(self, key) -> None:
        dict.__delitem__(self, key)
        self.acc = (self.acc - self._h.pop(key)) % KV_HASH_MOD

    def pop(self, key, *default):
        if dict.__contains__(self, key):
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def setdefault(self, key, default=None):
        if not dict.__contains__(self, key):
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args, **kw) -> None:
        for k, v in dict(*args, **kw).items():
            self[k] = v

    def clear(self) -> None:
        dict.clear(self)
        self._h.clear()
        self.acc = 0

    def popitem(self):
        raise NotImplementedError("popitem is not used by the store")

    def __ior__(self, other):
        self.update(other)
        return self

    def __deepcopy__(self, memo):
        return copy.deepcopy(dict(self), memo)  # snapshots hold plain dicts

    def __copy__(self):
        return dict(self)


class FastStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.kv = _KvDict()
        self.digests = 0
        self.mismatches = 0
        self._slow = False

    def restore(self, data: dict) -> None:
        super().restore(data)
        self.kv = _KvDict(self.kv)

    def _fast_digest(self) -> str:
        return self._digest_with(self.kv.acc)

    def digest(self) -> str:
        if self._slow:
            return super().digest()
        self.digests += 1
        fast = self._fast_digest()
        if self.digests <= VERIFY_FIRST or self.digests % VERIFY_EVERY == 0:
            slow = super().digest()
            if slow != fast or tuple(sorted(self.state())) != _SECTIONS:
                self.mismatches += 1
                self._slow = True
                log.error("fast store digest differs from Store.digest() (%s != %s); using the "
                          "slow digest from now on", fast, slow)
                return slow
        return fast
