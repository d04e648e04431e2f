"""The `durability` checker: every acknowledged write is present after the final heal.

Owns: the rule below, applied to final/<node>.json manager stores (`store.kv`) and to final reads.

Rule, per key K. Mutations are write v (effect v), cas [e, n] (effect n) and delete (effect absent);
`fail` mutations are ignored. A mutation X is *known overwritten* when some `ok` mutation Y on K was
invoked after X completed (real-time order: Y took effect after X). `info` mutations may take effect
at any time after their invocation, or never, so they are never known overwritten and never overwrite.
The *allowed final values* of K are the effects of
  * every `ok` mutation not known overwritten,
  * every `info` mutation (it may have landed last), and
  * absent (the initial state) if K has no `ok` mutation.
A final value outside that set is a lost acknowledged mutation (or a value nobody wrote): INVALID,
with the acknowledged mutations that should have survived. Final values come from each reachable
manager's final store, and from *final reads*: `ok` reads of K invoked after every `ok` mutation of K
completed and after `heal_ts` (when known).

A final value that no recorded operation wrote on a key with no acknowledged mutation is not a loss
the record can show (nothing acknowledged was lost; the value may come from an operation the history
lacks): UNKNOWN, "the history cannot explain it", never INVALID. The same for an empty history next to
final stores that hold values: nothing to judge. A history without any acknowledged mutation is
UNKNOWN too (nothing acknowledged can have been lost): no data is never VALID.

Repeated values (the workload draws written values from 1..N, `workload.values`, so that cas can
match) cost power, never soundness. Sound: in a correct run the final value is the effect of the
mutation M linearized last; M is `ok` or `info`, and an `ok` M is not known overwritten (an `ok`
mutation invoked after M completed would be linearized after M), so M's effect is allowed. The rule
compares values only for equality, so an equal value written by another mutation only adds the same
value again; the argument never uses a value's identity (tests/checkers/
test_checkers_durability_repeated.py: no INVALID on 4,000 correct histories with 2 or 3 values).
Power: a lost write hides when the stale value that survived equals an allowed one (that test:
of planted stale final values, unique values catch all, 5 values 82 %, 3 values 65 %, 2 values
56 %). `workload.values: latest` (unique written values, cas expecting the latest value seen) keeps
full power and still exercises cas; `unique` too, at the price of a cas that almost never matches.

Must not import: click, rich, docker.
"""

from __future__ import annotations

import json
from collections import defaultdict

from chaos.checkers.core import Outcome, Param, Verdict, register
from chaos.history import Op

ABSENT = "<absent>"
MAX_LOST = 50


def _canon(v) -> str:
    return ABSENT if v is None else json.dumps(v, sort_keys=True)


def _effect(op: Op):
    if op.f == "write":
        return op.value
    if op.f == "cas":
        return op.value[1]
    return None  # delete


def allowed_finals(muts: list[Op]) -> tuple[dict[str, list[Op]], list[Op]]:
    """Allowed final values (canonical text -> the ops that explain it) and the surviving ok ops."""
    oks = [m for m in muts if m.type == "ok"]
    allowed: dict[str, list[Op]] = defaultdict(list)
    if not oks:
        allowed[ABSENT] = []
    survivors = []
    # X is known overwritten iff some ok Y has invoke_index > X.complete_index: compare with the
    # latest ok invocation.
    last_ok_invoke = max((m.invoke_index for m in oks), default=-1)
    for m in muts:
        if m.type == "ok" and m.complete_index is not None and last_ok_invoke > m.complete_index:
            continue
        allowed[_canon(_effect(m))].append(m)
        if m.type == "ok":
            survivors.append(m)
    return allowed, survivors


def check(ops: list[Op], stores: dict[str, dict], heal_ts: float | None, unreachable: list[str]) -> Outcome:
    muts_by_key: dict = defaultdict(list)
    reads_by_key: dict = defaultdict(list)
    for op in ops:
        if op.type == "fail":
            continue
        if op.f == "read":
            if op.type == "ok":
                reads_by_key[op.key].append(op)
        else:
            muts_by_key[op.key].append(op)
    acked = sum(1 for ms in muts_by_key.values() for m in ms if m.type == "ok")
    observations: dict = defaultdict(list)  # key -> [(source, value)]
    for node, kv in stores.items():
        for key in set(muts_by_key) | set(kv):
            observations[key].append((f"final/{node}.json", kv.get(key)))
    for key, reads in reads_by_key.items():
        last_ok_complete = max((m.complete_index for m in muts_by_key.get(key, []) if m.type == "ok"), default=-1)
        for r in reads:
            if r.invoke_index > last_ok_complete and (heal_ts is None or (r.invoke_ts or 0) >= heal_ts):
                observations[key].append((f"final read #{r.invoke_index} (p{r.process})", r.value))
    if not observations:
        return Outcome.nothing("no final stores and no final reads")
    if not ops:
        stored = sum(1 for obs in observations.values() for _, v in obs if v is not None)
        return Outcome.nothing(f"history.jsonl holds no operations, so it cannot explain the {stored} "
                               f"value(s) in the final stores")
    if not acked:
        return Outcome.nothing("the workload recorded no acknowledged write / cas / delete, so no write "
                               "can have been lost")
    lost, unexplained = [], []
    n_checked = 0
    written = {key: {_canon(_effect(m)) for m in ms} for key, ms in muts_by_key.items()}
    for key in sorted(observations, key=str):
        allowed, survivors = allowed_finals(muts_by_key.get(key, []))
        for source, value in observations[key]:
            n_checked += 1
            if _canon(value) in allowed:
                continue
            if not survivors and _canon(value) not in written.get(key, set()):
                unexplained.append({"key": key, "found": value, "source": source,
                                    "detail": f"{key}: {source} holds {_canon(value)}, which no recorded "
                                              f"operation wrote, and no acknowledged mutation of {key} "
                                              f"could have been lost"})
                continue
            lost.append({
                "key": key, "found": value, "source": source,
                "should_survive": [m.describe() for m in survivors][:10],
                "allowed_values": sorted(allowed)[:20],
                "detail": (f"{key}: {source} holds {_canon(value)}, but "
                           + (f"{survivors[-1].describe()} was acknowledged and never overwritten"
                              if survivors else "no operation wrote that value")),
            })
    evidence = {"keys": len(observations), "observations": n_checked, "acknowledged_mutations": acked,
                "stores": sorted(stores), "unreachable_managers": unreachable, "lost": lost[:MAX_LOST],
                "lost_count": len(lost), "unexplained": unexplained[:MAX_LOST],
                "unexplained_count": len(unexplained)}
    if lost:
        return Outcome(Verdict.INVALID, f"{len(lost)} final value(s) lose an acknowledged mutation; "
                                        f"first: {lost[0]['detail']}", evidence)
    if unexplained:
        return Outcome(Verdict.UNKNOWN, f"the history cannot explain {len(unexplained)} final value(s); first: "
                                        f"{unexplained[0]['detail']}", evidence)
    return Outcome(Verdict.VALID, f"{acked} acknowledged mutation(s) over {len(observations)} key(s): "
                                  f"{n_checked} final observation(s) all allowed", evidence)


@register("durability", default=True, params=(
    Param("require_all_managers", "bool", False,
          "a manager without a final store makes the check UNKNOWN (default: judge the reachable ones)"),
))
def durability(run, require_all_managers) -> Outcome:
    """Every acknowledged write/cas/delete is present after the final heal (final stores, final reads)."""
    stores: dict[str, dict] = {}
    unreachable = []
    managers = run.managers()
    if managers:   # membership (issue 23): a removed manager no longer gets the log; a promoted worker does
        from chaos.checkers.convergence import config_members, removed_in_journals
        managers = config_members({n: (f or {}).get("status") for n, f in run.finals.items()}, managers,
                                  lambda: removed_in_journals(run, managers))
    finals = run.finals_of(managers) if managers else run.finals
    for node, fin in finals.items():
        store = fin.get("store")
        if isinstance(store, dict) and isinstance(store.get("kv"), dict):
            stores[node] = store["kv"]
        elif node in managers:
            unreachable.append(node)
    for m in managers:
        if m not in finals:
            unreachable.append(m)
    if require_all_managers and unreachable:
        return Outcome(Verdict.UNKNOWN, f"no final store from manager(s) {', '.join(sorted(unreachable))}",
                       {"unreachable_managers": sorted(unreachable)})
    if not run.has_history():
        return Outcome.nothing("no history.jsonl")
    return check(run.ops, stores, run.heal_ts, sorted(unreachable))
