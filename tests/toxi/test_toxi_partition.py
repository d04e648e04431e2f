"""chaos.partition: table tests, and properties over seeded random inputs checked against a
deliberately naive second implementation (STYLE.md item 4). Each property checker also has a
broken shape that it is shown to reject (STYLE.md item 13)."""

from __future__ import annotations

import random

import pytest

from chaos import partition as P

SEEDS = range(200)


def nodes_for(rng: random.Random, lo: int = 1, hi: int = 12) -> list[str]:
    n = rng.randint(lo, hi)
    names = [f"m{i}" for i in range(1, n + 1)]
    rng.shuffle(names)
    return names


# -- naive second implementations / property checkers --------------------------------------------


def naive_groups_cut(nodes, groups):
    """Loop over every ordered pair and look both nodes up by linear search."""
    out = set()
    for a in nodes:
        for b in nodes:
            if a == b:
                continue
            ga = [i for i, g in enumerate(groups) if a in g]
            gb = [i for i, g in enumerate(groups) if b in g]
            if ga != gb:
                out.add((a, b))
    return out


def components(nodes, cut):
    """Connected components of the graph of links cut in neither direction (BFS)."""
    left, comps = list(nodes), []
    while left:
        start = left.pop(0)
        comp, frontier = {start}, [start]
        while frontier:
            x = frontier.pop()
            for y in list(left):
                if (x, y) not in cut and (y, x) not in cut:
                    comp.add(y)
                    left.remove(y)
                    frontier.append(y)
        comps.append(comp)
    return comps


def clean_split_problems(nodes, cut):
    """A cut set that is a clean split: components are cliques and all cross links are cut."""
    problems = []
    comps = components(nodes, cut)
    for comp in comps:
        for a in comp:
            for b in comp:
                if a != b and (a, b) in cut:
                    problems.append(f"{a}->{b} cut inside a component")
    if set(cut) != naive_groups_cut(nodes, comps):
        problems.append("cross-component links not all cut")
    return problems


def ring_problems(nodes, cut):
    """Jepsen's majorities-ring: each node sees a majority, no two see the same set, cuts
    symmetric."""
    n = len(nodes)
    problems = []
    seen = {}
    for a in nodes:
        vis = frozenset([a] + [b for b in nodes if b != a and (a, b) not in cut and (b, a) not in cut])
        if len(vis) <= n // 2:
            problems.append(f"{a} sees only {sorted(vis)}")
        if vis in seen:
            problems.append(f"{a} and {seen[vis]} see the same set")
        seen[vis] = a
    for a, b in cut:
        if (b, a) not in cut:
            problems.append(f"asymmetric cut {a}->{b}")
    return problems


def bridge_problems(nodes, cut):
    problems = []
    full = [a for a in nodes if all((a, b) not in cut and (b, a) not in cut for b in nodes if b != a)]
    if len(full) != 1:
        return [f"expected exactly one bridge node, got {full}"]
    rest = [x for x in nodes if x != full[0]]
    comps = components(rest, {(a, b) for a, b in cut if full[0] not in (a, b)})
    if len(comps) != 2 or abs(len(comps[0]) - len(comps[1])) > 1:
        problems.append(f"sides are not two halves: {comps}")
    problems += clean_split_problems(rest, {(a, b) for a, b in cut})
    return problems


# -- tables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "listed,rest,expected_groups",
    [
        ([["a"], ["b"]], "own", [["a"], ["b"], ["c", "d"]]),
        ([["a"], ["b"]], "isolated", [["a"], ["b"], ["c"], ["d"]]),
        ([["a"], ["b"]], 1, [["a"], ["b", "c", "d"]]),
        ([["a", "b"], ["c", "d"]], None, [["a", "b"], ["c", "d"]]),
        ([["a", "b", "c", "d"]], "own", [["a", "b", "c", "d"]]),
    ],
)
def test_partition_groups_table(listed, rest, expected_groups):
    nodes = ["a", "b", "c", "d"]
    assert P.groups(nodes, listed, rest=rest) == naive_groups_cut(nodes, expected_groups)


@pytest.mark.parametrize(
    "listed,rest,message",
    [
        ([["a"], ["x"]], "own", "not a node"),
        ([["a"], ["a"]], "own", "more than one group"),
        ([["a"]], None, "in no group"),
        ([["a"]], 3, "names no listed group"),
        ([["a"]], "bogus", "rest must be"),
    ],
)
def test_partition_groups_rejects(listed, rest, message):
    with pytest.raises(ValueError, match=message):
        P.groups(["a", "b", "c"], listed, rest=rest)


def test_partition_isolate_table():
    assert P.isolate(["a", "b", "c"], "b") == {("a", "b"), ("b", "a"), ("c", "b"), ("b", "c")}
    assert P.deaf_map(["a", "b", "c"], P.isolate(["a", "b", "c"], "b")) == {
        "a": {"b"}, "b": {"a", "c"}, "c": {"b"}}


def test_partition_one_way_table():
    assert P.one_way(["a"], ["b", "c"]) == {("a", "b"), ("a", "c")}
    with pytest.raises(ValueError, match="both sides"):
        P.one_way(["a"], ["a", "b"])


@pytest.mark.parametrize(
    "n,expected",
    [
        (3, {("a", "c"), ("c", "a")}),
        (4, {("a", "c"), ("c", "a"), ("b", "d"), ("d", "b")}),
        (5, {("a", "c"), ("c", "a"), ("a", "d"), ("d", "a"), ("b", "d"), ("d", "b"),
             ("b", "e"), ("e", "b"), ("c", "e"), ("e", "c")}),
    ],
)
def test_partition_majorities_ring_table(n, expected):
    nodes = list("abcdefg")[:n]
    assert P.majorities_ring(nodes) == expected


def test_partition_majorities_ring_rejects_tiny():
    for n in (0, 1, 2):
        with pytest.raises(ValueError, match="at least 3"):
            P.majorities_ring([f"n{i}" for i in range(n)])


def test_partition_halves_and_bridge_table_seeded():
    nodes = ["m1", "m2", "m3", "m4", "m5"]
    cut = P.halves(nodes, random.Random(7))
    sizes = sorted(len(c) for c in components(nodes, cut))
    assert sizes == [2, 3]
    # same seed, different input order: same shape
    assert P.halves(list(reversed(nodes)), random.Random(7)) == cut
    b = P.bridge(nodes, random.Random(7))
    assert bridge_problems(nodes, b) == []


# -- properties over seeded random inputs ---------------------------------------------------------


def test_partition_groups_matches_naive_random():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = nodes_for(rng)
        k = rng.randint(1, len(nodes))
        listed = sorted(rng.sample(nodes, k))
        rng.shuffle(listed)
        parts, i = [], 0
        while i < len(listed):
            j = rng.randint(i + 1, len(listed))
            parts.append(listed[i:j])
            i = j
        rest_nodes = [n for n in nodes if n not in listed]
        got = P.groups(nodes, parts, rest="own")
        naive = naive_groups_cut(nodes, parts + ([rest_nodes] if rest_nodes else []))
        assert got == naive, f"seed={seed} nodes={nodes} parts={parts}"
        assert clean_split_problems(nodes, got) == [], f"seed={seed}"


def test_partition_halves_properties_random():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = nodes_for(rng, 2)
        cut = P.halves(nodes, random.Random(seed))
        comps = sorted(components(nodes, cut), key=len)
        assert [len(c) for c in comps] == [len(nodes) // 2, len(nodes) - len(nodes) // 2], f"seed={seed}"
        assert clean_split_problems(nodes, cut) == [], f"seed={seed}"


def test_partition_majorities_ring_properties_random():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = nodes_for(rng, 3, 15)
        cut = P.majorities_ring(nodes, rng=random.Random(seed))
        assert ring_problems(nodes, cut) == [], f"seed={seed} nodes={nodes}"
        assert P.majorities_ring(nodes, rng=random.Random(seed)) == cut, f"seed={seed}"


def test_partition_bridge_properties_random():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = nodes_for(rng, 3)
        cut = P.bridge(nodes, random.Random(seed))
        assert bridge_problems(nodes, cut) == [], f"seed={seed} nodes={nodes}"


def test_partition_deaf_map_roundtrip_random():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = nodes_for(rng, 2)
        cut = frozenset((a, b) for a in nodes for b in nodes if a != b and rng.random() < 0.3)
        deaf = P.deaf_map(nodes, cut)
        assert P.cut_from_deaf_map(deaf) == cut, f"seed={seed}"
        matrix = P.reachability(nodes, cut)
        for (a, b), ok in matrix.items():
            assert ok == (a not in deaf[b]), f"seed={seed} {a}->{b}"


# -- the checkers above can fail (deliberately broken shapes) -------------------------------------


def broken_ring_no_wraparound(nodes):
    """Window on a line instead of a ring: the ends see too little."""
    k = -(-(len(nodes) // 2) // 2)
    return frozenset((a, b) for i, a in enumerate(nodes) for j, b in enumerate(nodes)
                     if i != j and abs(i - j) > k)


def test_partition_ring_checker_rejects_broken_shapes():
    nodes = [f"n{i}" for i in range(7)]
    assert ring_problems(nodes, broken_ring_no_wraparound(nodes))
    assert ring_problems(nodes, P.halves(nodes, random.Random(1)))      # minority sees no majority
    assert any("asymmetric" in p for p in ring_problems(nodes, P.majorities_ring(nodes) | {("n0", "n1")}))
    assert any("same set" in p for p in ring_problems(nodes, frozenset()))


def test_partition_bridge_and_split_checkers_reject_broken_shapes():
    nodes = [f"n{i}" for i in range(6)]
    assert bridge_problems(nodes, P.halves(nodes, random.Random(3)))    # no bridge node
    assert bridge_problems(nodes, frozenset())                           # everyone is a "bridge"
    half = P.halves(nodes, random.Random(3))
    some = sorted(half)[0]
    assert clean_split_problems(nodes, half - {some})                    # one cross link left open
