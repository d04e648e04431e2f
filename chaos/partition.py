"""Partition shapes as data: which directed links are cut.

Owns the pure partition arithmetic of DESIGN.md section 7 and STYLE.md item 14. A shape returns a
*cut set*: a frozenset of `(src, dst)` pairs meaning "dst cannot hear src" (the proxy `src-dst` is
cut). The equivalent per-node view, `deaf_map`, gives for each node the set of nodes it cannot hear;
`chaos.toxi.LinkController.apply_partition` accepts either form.

Randomness only through an injected `random.Random`; node lists are sorted before shuffling so a
seed gives the same shape whatever order the caller listed the nodes in. Pure: no I/O, no clock, no
module-level random. Must not import chaos.toxi, requests or docker.
"""

from __future__ import annotations

import random
from typing import Iterable, Mapping, Sequence


def _check_nodes(nodes: Sequence[str]) -> list[str]:
    nodes = list(nodes)
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"duplicate nodes in {nodes}")
    return nodes


def _cut_between(groups: Sequence[Sequence[str]]) -> frozenset[tuple[str, str]]:
    """Both directions of every pair of nodes in different groups."""
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    return frozenset(
        (a, b) for a in group_of for b in group_of if group_of[a] != group_of[b]
    )


def groups(
    nodes: Sequence[str],
    listed: Sequence[Sequence[str]],
    rest: str | int | None = "own",
) -> frozenset[tuple[str, str]]:
    """Split `nodes` into the `listed` groups; nodes in different groups cannot hear each other.

    `rest` says where the unlisted nodes go: "own" (together, as one more group), "isolated" (each
    alone), an int i (they join listed group i), or None (every node must be listed).
    """
    nodes = _check_nodes(nodes)
    known = set(nodes)
    seen: set[str] = set()
    parts: list[list[str]] = []
    for g in listed:
        g = list(g)
        for n in g:
            if n not in known:
                raise ValueError(f"group member {n!r} is not a node")
            if n in seen:
                raise ValueError(f"node {n!r} is in more than one group")
            seen.add(n)
        parts.append(g)
    unlisted = [n for n in nodes if n not in seen]
    if unlisted:
        if rest is None:
            raise ValueError(f"nodes in no group (and rest=None): {unlisted}")
        if rest == "own":
            parts.append(unlisted)
        elif rest == "isolated":
            parts.extend([n] for n in unlisted)
        elif isinstance(rest, int) and not isinstance(rest, bool):
            if not 0 <= rest < len(parts):
                raise ValueError(f"rest={rest} names no listed group (there are {len(parts)})")
            parts[rest] = parts[rest] + unlisted
        else:
            raise ValueError(f"rest must be 'own', 'isolated', a group index or None, not {rest!r}")
    return _cut_between(parts)


def isolate(nodes: Sequence[str], node: str) -> frozenset[tuple[str, str]]:
    """`node` can neither hear nor be heard by anyone; the others stay connected."""
    return groups(nodes, [[node]], rest="own")


def halves(nodes: Sequence[str], rng: random.Random) -> frozenset[tuple[str, str]]:
    """A random split into a minority of floor(n/2) nodes and a majority of the rest."""
    shuffled = sorted(_check_nodes(nodes))
    rng.shuffle(shuffled)
    k = len(shuffled) // 2
    return _cut_between([shuffled[:k], shuffled[k:]])


def majorities_ring(
    nodes: Sequence[str], rng: random.Random | None = None
) -> frozenset[tuple[str, str]]:
    """Every node sees a majority (itself included), and no two nodes see the same set (Jepsen's
    majorities-ring). Cuts are symmetric.

    Nodes sit on a ring (given order, or shuffled by `rng`); two nodes stay connected when their
    ring distance is at most k = ceil(floor(n/2) / 2), so each sees 2k+1 >= floor(n/2)+1 nodes.
    For n = 3 the ring would connect everyone, so the shape is the path a-b-c (only a<->c is cut):
    a sees {a,b}, c sees {b,c}, b sees all three. Fewer than 3 nodes: ValueError (impossible).
    """
    ring = list(_check_nodes(nodes))
    n = len(ring)
    if n < 3:
        raise ValueError(f"majorities_ring needs at least 3 nodes, got {n}")
    if rng is not None:
        ring = sorted(ring)
        rng.shuffle(ring)
    if n == 3:
        a, _, c = ring
        return frozenset({(a, c), (c, a)})
    k = -(-(n // 2) // 2)
    cut = set()
    for i, a in enumerate(ring):
        for j, b in enumerate(ring):
            d = abs(i - j)
            if i != j and min(d, n - d) > k:
                cut.add((a, b))
    return frozenset(cut)


def bridge(nodes: Sequence[str], rng: random.Random) -> frozenset[tuple[str, str]]:
    """Two halves that cannot hear each other, joined by one bridge node that hears and is heard by
    both. Needs at least 3 nodes. With 5 nodes: 2 | bridge | 2, so the bridge alone sees everyone.
    """
    shuffled = sorted(_check_nodes(nodes))
    if len(shuffled) < 3:
        raise ValueError(f"bridge needs at least 3 nodes, got {len(shuffled)}")
    rng.shuffle(shuffled)
    bridge_node, others = shuffled[0], shuffled[1:]
    k = len(others) // 2
    return _cut_between([others[:k], others[k:]]) - {
        (a, b) for a in shuffled for b in shuffled if bridge_node in (a, b)
    }


def one_way(src_nodes: Iterable[str], dst_nodes: Iterable[str]) -> frozenset[tuple[str, str]]:
    """Every node in `dst_nodes` stops hearing every node in `src_nodes`; the reverse still works."""
    src, dst = list(src_nodes), list(dst_nodes)
    both = sorted(set(src) & set(dst))
    if both:
        raise ValueError(f"one_way: nodes on both sides: {both}")
    return frozenset((a, b) for a in src for b in dst)


# -- conversions between the two views ----------------------------------------------------------


def deaf_map(nodes: Sequence[str], cut: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """node -> the nodes it cannot hear, for every node (empty set if it hears everyone)."""
    out: dict[str, set[str]] = {n: set() for n in nodes}
    for src, dst in cut:
        if src not in out or dst not in out:
            raise ValueError(f"cut link {src}->{dst} names an unknown node")
        out[dst].add(src)
    return {n: frozenset(s) for n, s in out.items()}


def cut_from_deaf_map(deaf: Mapping[str, Iterable[str]]) -> frozenset[tuple[str, str]]:
    """Inverse of `deaf_map`."""
    cut = set()
    for dst, srcs in deaf.items():
        for src in srcs:
            if src == dst:
                raise ValueError(f"node {dst!r} cannot be deaf to itself")
            cut.add((src, dst))
    return frozenset(cut)


def reachability(
    nodes: Sequence[str], cut: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], bool]:
    """The expected matrix: (src, dst) -> True when dst can hear src, for every ordered pair."""
    cut = frozenset(cut)
    return {(a, b): (a, b) not in cut for a in nodes for b in nodes if a != b}


def visible(nodes: Sequence[str], cut: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """node -> itself plus every node it is connected to in BOTH directions."""
    cut = frozenset(cut)
    return {
        a: frozenset([a] + [b for b in nodes if b != a and (a, b) not in cut and (b, a) not in cut])
        for a in nodes
    }
