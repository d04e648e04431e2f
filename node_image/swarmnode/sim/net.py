"""Reusable simulation pieces: an event scheduler over virtual time, a seeded network with per-link
delay, loss, duplication and reordering, and partitions as data.

Owns: Scheduler, LinkSpec, Network and the pure partition-shape functions. Used by raft_sim (and
free for any other simulator). Must not import asyncio, socket, time, module-level random or `chaos`.

A partition is a value: a dict {node: frozenset of nodes it cannot hear}. One-way partitions are just
asymmetric values. Partitions are checked when a message is sent and again when it would be
delivered (a cut also drops what is in flight, like a black-hole toxic).
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass


class BoundExceeded(RuntimeError):
    """A simulation bound (events, queue length) was hit; reported, never silent."""


class Scheduler:
    """Min-heap of (time_ms, seq, kind, payload); virtual time jumps to the next event."""

    def __init__(self, max_queue: int = 1_000_000):
        self.now_ms = 0.0
        self._heap: list = []
        self._seq = 0
        self.max_queue = max_queue

    def at(self, time_ms: float, kind: str, payload=None) -> None:
        if len(self._heap) >= self.max_queue:
            raise BoundExceeded(f"event queue exceeded {self.max_queue} events")
        self._seq += 1
        heapq.heappush(self._heap, (max(time_ms, self.now_ms), self._seq, kind, payload))

    def after(self, delay_ms: float, kind: str, payload=None) -> None:
        self.at(self.now_ms + delay_ms, kind, payload)

    def pop(self):
        """Advance virtual time to the next event and return (kind, payload), or None if empty."""
        if not self._heap:
            return None
        t, _, kind, payload = heapq.heappop(self._heap)
        self.now_ms = t
        return kind, payload

    def pop_until(self, max_ms: float):
        """pop() if the next event is due at or before max_ms, else None (time does not move)."""
        heap = self._heap
        if not heap or heap[0][0] > max_ms:
            return None
        t, _, kind, payload = heapq.heappop(heap)
        self.now_ms = t
        return kind, payload

    def peek_time(self):
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(frozen=True)
class LinkSpec:
    """Behaviour of every directed link (per-link overrides go through Network.set_link).

    delay_ms_min / delay_ms_max: one-way latency, uniform in [min, max].
    loss: probability a message is dropped. dup: probability it is delivered twice.
    reorder: probability a message gets reorder_extra_ms_max of extra uniform delay, so it overtakes
    or is overtaken by others on the same link.
    """
    delay_ms_min: float = 1.0
    delay_ms_max: float = 5.0
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    reorder_extra_ms_max: float = 20.0

    def __post_init__(self):
        if not 0 <= self.delay_ms_min <= self.delay_ms_max:
            raise ValueError("need 0 <= delay_ms_min <= delay_ms_max")
        for p in (self.loss, self.dup, self.reorder):
            if not 0.0 <= p <= 1.0:
                raise ValueError("probabilities must be in [0, 1]")


class Network:
    """Seeded message network. send() returns the delivery times (0, 1 or 2 of them)."""

    def __init__(self, rng: random.Random, nodes, link: LinkSpec = LinkSpec()):
        self.rng = rng
        self.nodes = tuple(nodes)
        self.default = link
        self.links: dict = {}
        self.deaf: dict = {}
        self.stats = {"sent": 0, "lost": 0, "cut": 0, "dup": 0, "reordered": 0}

    def set_partition(self, deaf: dict) -> None:
        self.deaf = {n: frozenset(s) for n, s in deaf.items() if s}

    def heal(self) -> None:
        self.deaf = {}

    def set_link(self, src: str, dst: str, spec: LinkSpec | None) -> None:
        if spec is None:
            self.links.pop((src, dst), None)
        else:
            self.links[(src, dst)] = spec

    def can_hear(self, dst: str, src: str) -> bool:
        d = self.deaf.get(dst)
        return d is None or src not in d

    def send(self, now_ms: float, src: str, dst: str) -> list:
        self.stats["sent"] += 1
        d = self.deaf.get(dst)                    # can_hear(dst, src), inline
        if d is not None and src in d:
            self.stats["cut"] += 1
            return []
        links = self.links
        spec = links.get((src, dst), self.default) if links else self.default
        rng = self.rng
        if spec.loss and rng.random() < spec.loss:
            self.stats["lost"] += 1
            return []
        copies = 2 if spec.dup and rng.random() < spec.dup else 1
        if copies == 2:
            self.stats["dup"] += 1
        out = []
        for _ in range(copies):
            t = now_ms + rng.uniform(spec.delay_ms_min, spec.delay_ms_max)
            if spec.reorder and rng.random() < spec.reorder:
                t += rng.uniform(0, spec.reorder_extra_ms_max)
                self.stats["reordered"] += 1
            out.append(t)
        return out


# ---- partition shapes (pure functions returning {node: frozenset(cannot hear)}) -----------------

def split(groups, nodes) -> dict:
    """Nodes hear only members of their own group; nodes in no group form a 'rest' group."""
    groups = [list(g) for g in groups]
    placed = {n for g in groups for n in g}
    rest = [n for n in nodes if n not in placed]
    if rest:
        groups.append(rest)
    out = {}
    for g in groups:
        others = frozenset(n for n in nodes if n not in g)
        for n in g:
            out[n] = others
    return out


def isolate(node, nodes) -> dict:
    return split([[node]], nodes)


def one_way(deaf_nodes, from_nodes) -> dict:
    """Each of deaf_nodes cannot hear any of from_nodes; everything else flows."""
    return {d: frozenset(f for f in from_nodes if f != d) for d in deaf_nodes}


def bridge(nodes) -> dict:
    """Two halves that cannot hear each other, except through one bridge node heard by both."""
    nodes = list(nodes)
    mid = len(nodes) // 2
    a, b = nodes[:mid], nodes[mid + 1:]   # nodes[mid] is the bridge: it hears and is heard by all
    out = {n: frozenset(b) for n in a}
    out.update({n: frozenset(a) for n in b})
    return out


def majorities_ring(nodes) -> dict:
    """Each node hears itself and its ring neighbours (for 5 nodes: each sees a different majority)."""
    nodes = list(nodes)
    k = len(nodes)
    out = {}
    for i, n in enumerate(nodes):
        hear = {nodes[(i - 1) % k], n, nodes[(i + 1) % k]}
        out[n] = frozenset(m for m in nodes if m not in hear)
    return out


def merge(*partitions) -> dict:
    """Union of several partitions (a node is deaf to everything any of them cuts)."""
    out: dict = {}
    for p in partitions:
        for n, s in p.items():
            out[n] = out.get(n, frozenset()) | frozenset(s)
    return out


def random_partition(rng: random.Random, nodes) -> tuple:
    """A seeded random partition shape: returns (name, partition)."""
    nodes = list(nodes)
    kind = rng.choice(("isolate", "halves", "one_way", "bridge", "ring", "random_groups"))
    if kind == "isolate":
        return kind, isolate(rng.choice(nodes), nodes)
    if kind == "halves":
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        return kind, split([shuffled[:len(nodes) // 2]], nodes)
    if kind == "one_way":
        deaf = rng.sample(nodes, rng.randint(1, max(1, len(nodes) // 2)))
        src = [n for n in nodes if n not in deaf]
        return kind, one_way(deaf, rng.sample(src, rng.randint(1, len(src))))
    if kind == "bridge":
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        return kind, bridge(shuffled)
    if kind == "ring":
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        return kind, majorities_ring(shuffled)
    groups: dict = {}
    for n in nodes:
        groups.setdefault(rng.randrange(3), []).append(n)
    return kind, split([groups[k] for k in sorted(groups)], nodes)
