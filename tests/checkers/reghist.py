"""Small register histories for checking the linearizability checker on the project's own data.

Owns: `generate(seed)`, a seeded history of at most 8 operations by 2-4 concurrent processes on one
register, linearizable by construction (each operation that takes effect does so at one instant
inside its interval; `info` operations take effect later or never; a cas whose expected value does
not match fails); `mutate(events, seed)`, the same history with one completion's value changed (often
not linearizable); and `brute_force`, an independent judge (Herlihy & Wing 1990 §2, by enumeration):
try every order of the operations consistent with real time -- an `ok` operation that completed
before another was invoked comes first -- with every choice of which `info` operations took effect,
against the register's sequential specification.

Independent of `chaos.checkers.wgl` and of `chaos.history.pair_ops` (events are paired here), so an
error in either shows as a disagreement. Must not import: chaos.checkers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

KEY = "k"
VALUES = (1, 2, 3)


@dataclass(frozen=True)
class BOp:
    """One operation for the brute-force judge. `type`: ok | info (an invoke never completed is info)."""

    f: str
    value: Any        # write: v; cas: (expected, new); read: the value read (ok); delete: None
    type: str
    invoke: int       # real-time position of the invocation
    complete: int | None   # position of the ok completion (None: info)
    existed: bool | None = None   # ok delete: whether the key existed


def pair(events: list[dict]) -> list[BOp]:
    """Pair invokes with completions by process (the next event of the same process)."""
    pending: dict[Any, dict] = {}
    ops: list[BOp] = []
    for ev in events:
        p = ev["process"]
        if ev["type"] == "invoke":
            assert p not in pending, ev
            pending[p] = ev
            continue
        inv = pending.pop(p)
        if ev["type"] == "fail":
            continue   # did not take effect
        if ev["type"] == "info":
            ops.append(_bop(inv, None, "info"))
        else:
            ops.append(_bop(inv, ev, "ok"))
    ops.extend(_bop(inv, None, "info") for inv in pending.values())
    return ops


def _bop(inv: dict, comp: dict | None, typ: str) -> BOp:
    f = inv["f"]
    value = inv["value"]
    existed = None
    if f == "read":
        value = comp["value"] if comp is not None else None
    elif f == "cas":
        value = tuple(value)
    elif f == "delete" and comp is not None and isinstance(comp.get("value"), bool):
        existed = comp["value"]
    return BOp(f, value, typ, inv["index"], None if comp is None else comp["index"], existed)


def _step(op: BOp, state: Any) -> tuple[bool, Any]:
    """The register's sequential specification: (accepted, next state)."""
    if op.f == "read":
        return op.value == state, state
    if op.f == "write":
        return True, op.value
    if op.f == "cas":
        return state == op.value[0], op.value[1]
    if op.existed is not None and op.existed != (state is not None):
        return False, state
    return True, None


def brute_force(ops: list[BOp], init: Any = None) -> bool:
    """True iff some order of the ok ops plus a subset of the info mutations respects real time and
    the specification. Info reads constrain nothing and are left out; an info cas that would not
    match is the same as one that never took effect."""
    cands = [o for o in ops if o.type == "ok" or o.f != "read"]
    oks = [i for i, o in enumerate(cands) if o.type == "ok"]
    # before[i]: ok ops that completed before cands[i] was invoked (they must come first)
    before = [frozenset(j for j in oks if cands[j].complete < o.invoke) for o in cands]
    n_ok = len(oks)

    def extend(placed: frozenset, state: Any, done_ok: int) -> bool:
        if done_ok == n_ok:
            return True   # the remaining info ops never took effect
        for i, o in enumerate(cands):
            if i in placed or not before[i] <= placed:
                continue
            accepted, nxt = _step(o, state)
            if accepted and extend(placed | {i}, nxt, done_ok + (o.type == "ok")):
                return True
        return False

    return extend(frozenset(), init, 0)


def generate(seed: int) -> list[dict]:
    """History events (docs/contracts.md section 5) of 1..8 operations, linearizable by construction."""
    rng = random.Random(seed)
    n = rng.randint(1, 8)
    procs = list(range(rng.randint(2, 4)))
    free_at = {p: rng.randint(0, 3) for p in procs}
    specs = []   # (process, f, value, invoke_t, complete_t or None, kind)
    for _ in range(n):
        p = rng.choice(procs)
        t_inv = free_at[p] + rng.randint(0, 3)
        t_end = t_inv + rng.randint(1, 12)          # long intervals: operations overlap
        f = rng.choice(("read", "read", "write", "write", "cas", "delete"))
        value = {"read": None, "write": rng.choice(VALUES), "delete": None,
                 "cas": [rng.choice((None,) + VALUES), rng.choice(VALUES)]}[f]
        r = rng.random()
        kind = "ok" if r < 0.7 else "info" if r < 0.9 else "pending"
        if kind == "ok":
            at = rng.uniform(t_inv, t_end)                  # the effect happens inside the interval
        elif rng.random() < 0.5:
            at = t_inv + rng.uniform(0, 20)                 # an info op may land late ...
        else:
            at = None                                       # ... or never
        specs.append([p, f, value, t_inv, t_end, kind, at])
        free_at[p] = t_end + 1
    last = {sp[0]: i for i, sp in enumerate(specs)}   # only a process's last op may stay unanswered
    # apply the effects in the order of their instants
    state: Any = None
    results: dict[int, tuple[str, Any]] = {}
    for i in sorted((i for i, s in enumerate(specs) if s[6] is not None), key=lambda i: specs[i][6]):
        p, f, value, _, _, kind, _ = specs[i]
        if f == "read":
            results[i] = ("ok", state)
        elif f == "write":
            state = value
            results[i] = ("ok", value)
        elif f == "cas":
            if state == value[0]:
                state = value[1]
                results[i] = ("ok", value)
            else:
                results[i] = ("fail", value)
        else:
            results[i] = ("ok", state is not None)
            state = None
    timeline = []   # (time, order, event)
    for i, (p, f, value, t_inv, t_end, kind, at) in enumerate(specs):
        if kind == "pending" and last[p] != i:
            kind = "info"   # a later op of the same process exists: this one was answered as info
        timeline.append((t_inv, 0, i, {"process": p, "type": "invoke", "f": f, "key": KEY, "value": value}))
        if kind == "pending":
            continue
        if kind == "info":
            comp = {"type": "info", "value": None if f == "read" else value}
        else:
            typ, res = results[i]
            if typ == "fail":
                comp = {"type": "fail", "value": value, "error": "cas-mismatch"}
            elif f == "delete":
                comp = {"type": "ok", "value": res if rng.random() < 0.7 else None}
            else:
                comp = {"type": "ok", "value": res}
        timeline.append((t_end, 1, i, {"process": p, "f": f, "key": KEY, **comp}))
    # same instant: completions after invocations would be a different real-time order; keep them apart
    timeline.sort(key=lambda x: (x[0], -x[1], x[2]))
    events = []
    for idx, (_, _, _, ev) in enumerate(timeline):
        events.append({"index": idx, **ev})
    return events


def mutate(events: list[dict], seed: int) -> list[dict] | None:
    """A copy with one ok read's value, or one ok delete's `existed`, changed (None if there is none)."""
    rng = random.Random(seed * 7919 + 1)
    spots = [i for i, e in enumerate(events) if e["type"] == "ok" and e["f"] in ("read", "delete")
             and not (e["f"] == "delete" and e["value"] is None)]
    if not spots:
        return None
    out = [dict(e) for e in events]
    i = rng.choice(spots)
    if out[i]["f"] == "read":
        out[i]["value"] = rng.choice([v for v in (None,) + VALUES if v != out[i]["value"]])
    else:
        out[i]["value"] = not out[i]["value"]
    return out
