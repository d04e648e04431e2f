"""The linearizability checker on its hard case and against a naive search.

1. `gen.cas_heavy`: one register, 10,000 operations by 20 concurrent processes, half of them cas on
   values 1..3 (about a third succeed), 1 % timed out. Linearizable by construction, so VALID; a copy
   with one read changed to a value nothing writes is INVALID, with a counterexample that holds
   that read and fails on its own.
2. The search's reductions (a matching read lifted without alternatives, interchangeable info
   operations tried once, info operations tried only where something can observe their value,
   Zobrist-hashed memo) against `_naive`, a plain enumeration with none of them (Herlihy & Wing
   1990 §2: ok operations plus any subset of the info ones, in an order respecting real time and the
   register's sequential specification), on a few hundred seeded histories of 24 operations that are
   larger and more concurrent than the brute-force judge of test_checkers_linearizable_generated.py
   can take, half of them with one completion changed.
"""

from __future__ import annotations

import random
from functools import lru_cache

from chaos.checkers import Verdict, wgl
from chaos.checkers.gen import cas_heavy, corrupt_read, simulate
from chaos.checkers.linearizable import check_ops
from chaos.history import Op, pair_ops


def _max_overlap(ops: list[Op]) -> int:
    points = sorted([(o.invoke_index, 1) for o in ops] +
                    [(o.complete_index, -1) for o in ops if o.complete_index is not None])
    depth = best = 0
    for _, d in points:
        depth += d
        best = max(best, depth)
    return best


def test_linearizable_cas_heavy_history_is_valid():
    ops = pair_ops(cas_heavy(seed=1))
    cas = [o for o in ops if o.f == "cas" and o.type in ("ok", "fail")]
    assert len(ops) == 10_000 and len({o.process for o in ops}) == 20
    assert 0.25 <= sum(o.type == "ok" for o in cas) / len(cas) <= 0.45
    assert _max_overlap(ops) >= 15  # real concurrency, not a sequence
    out = check_ops(ops)
    assert out.verdict == Verdict.VALID, out.summary


def test_linearizable_cas_heavy_corrupted_read_is_invalid():
    events = cas_heavy(seed=1)
    bad, info = corrupt_read(events, after=400)
    out = check_ops(pair_ops(bad))
    assert out.verdict == Verdict.INVALID, out.summary
    failed = out.evidence["failed_keys"][0]
    cex = [o for o in pair_ops(bad) if o.complete_index == info["read_complete"]]
    assert cex[0].describe() in failed["counterexample"]
    assert failed["counterexample_ops"] < 200  # a witness to read, not the 400 operations before
    kr = wgl.check_key("k0", pair_ops(bad))
    for st in kr.initial_states:
        assert wgl.search(kr.counterexample_ops, init=st).outcome == wgl.NOT_LINEARIZABLE


def _naive(ops: list[Op]) -> str:
    """Enumerate orders: an operation may come next if every unlinearized ok operation that
    completed before its invocation is linearized; memo on (linearized set, state)."""
    ops = [o for o in ops if o.type != "fail" and not (o.f == "read" and o.type != "ok")]
    oks = frozenset(i for i, o in enumerate(ops) if o.type == "ok")

    def step(o: Op, state):
        if o.f == "read":
            return (True, state) if o.value == state else (False, None)
        if o.f == "write":
            return True, o.value
        if o.f == "cas":
            return (True, o.value[1]) if o.value[0] == state else (False, None)
        if o.type == "ok" and isinstance(o.result, bool) and o.result != (state is not None):
            return False, None
        return True, None

    @lru_cache(maxsize=None)
    def go(done: frozenset, state) -> bool:
        if oks <= done:
            return True
        for i, o in enumerate(ops):
            if i in done:
                continue
            if any(j not in done and ops[j].type == "ok" and ops[j].complete_index < o.invoke_index
                   for j in oks):
                continue
            ok, new = step(o, state)
            if ok and go(done | {i}, new):
                return True
        return False

    return wgl.LINEARIZABLE if go(frozenset(), None) else wgl.NOT_LINEARIZABLE


def _mutate(events: list[dict], rng: random.Random) -> list[dict]:
    done = [i for i, e in enumerate(events) if e["type"] == "ok" and e["f"] in ("read", "delete")]
    out = [dict(e) for e in events]
    if done:
        i = rng.choice(done)
        out[i]["value"] = (rng.choice([None, 1, 2, 3]) if out[i]["f"] == "read"
                           else not out[i]["value"])
    return out


def test_linearizable_search_agrees_with_naive_enumeration():
    tally = {wgl.LINEARIZABLE: 0, wgl.NOT_LINEARIZABLE: 0, "info": 0}
    for seed in range(300):
        rng = random.Random(seed)
        events = simulate(seed=seed, clients=5, keys=1, ops=24, values=3, p_info=0.15,
                          mix=(0.35, 0.25, 0.3, 0.1))
        if seed % 2:
            events = _mutate(events, rng)
        ops = pair_ops(events)
        want = _naive(ops)
        got = wgl.search(ops).outcome
        assert got == want, f"seed {seed}: search {got}, naive {want}: {events}"
        tally[want] += 1
        tally["info"] += any(o.type == "info" for o in ops)
    # both verdicts and info operations are really exercised
    assert min(tally.values()) >= 60, tally


def test_linearizable_naive_enumeration_rejects_a_stale_read():
    """The naive judge can say no: write 1, then write 2, then a read of 1, in sequence."""
    events = [{"index": 0, "process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
              {"index": 1, "process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
              {"index": 2, "process": 0, "type": "invoke", "f": "write", "key": "k", "value": 2},
              {"index": 3, "process": 0, "type": "ok", "f": "write", "key": "k", "value": 2},
              {"index": 4, "process": 1, "type": "invoke", "f": "read", "key": "k", "value": None},
              {"index": 5, "process": 1, "type": "ok", "f": "read", "key": "k", "value": 1}]
    assert _naive(pair_ops(events)) == wgl.NOT_LINEARIZABLE
    assert _naive(pair_ops(events[:4])) == wgl.LINEARIZABLE


def _events(spec) -> list[dict]:
    """spec: (process, type, f, value) in real-time order."""
    return [{"index": i, "process": p, "type": t, "f": f, "key": "k", "value": v}
            for i, (p, t, f, v) in enumerate(spec)]


def test_linearizable_info_operations_each_tried_after_another_fails():
    """Timed-out writes of 1 and of 2, a cas 1 -> 3 and a read of 2 overlapping, then a read of 3:
    only write 2, read 2, write 1, cas, read 3 works. Write 1 is tried first (invoked first, and
    the cas observes 1) and leads nowhere; the search must then try write 2."""
    spec = [(0, "invoke", "write", 1), (1, "invoke", "write", 2), (2, "invoke", "cas", [1, 3]),
            (3, "invoke", "read", None), (3, "ok", "read", 2), (2, "ok", "cas", [1, 3]),
            (4, "invoke", "read", None), (4, "ok", "read", 3)]
    ops = pair_ops(_events(spec))
    assert _naive(ops) == wgl.LINEARIZABLE
    assert wgl.search(ops).outcome == wgl.LINEARIZABLE
    # without the timed-out write of 2 it is not linearizable
    ops = pair_ops(_events([s for s in spec if s[0] != 1]))
    assert _naive(ops) == wgl.NOT_LINEARIZABLE
    assert wgl.search(ops).outcome == wgl.NOT_LINEARIZABLE


def test_linearizable_interchangeable_info_operations_each_happen_once():
    """Two timed-out writes of 1 make two classes' worth of effects only as one class with two
    members: read 1, write 2 (ok), read 1 needs both; with one of them it is not linearizable."""
    spec = [(0, "invoke", "write", 1), (1, "invoke", "write", 1), (2, "invoke", "read", None),
            (2, "ok", "read", 1), (3, "invoke", "write", 2), (3, "ok", "write", 2),
            (4, "invoke", "read", None), (4, "ok", "read", 1)]
    assert wgl.search(pair_ops(_events(spec))).outcome == wgl.LINEARIZABLE
    one = [s for s in spec if s[0] != 1]
    ops = pair_ops(_events(one))
    assert _naive(ops) == wgl.NOT_LINEARIZABLE
    assert wgl.search(ops).outcome == wgl.NOT_LINEARIZABLE
