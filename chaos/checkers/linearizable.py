"""The `linearizable` checker: history.jsonl against a register per key (P-compositionality).

Owns: splitting the history by key, running the WGL search (`chaos.checkers.wgl`) per key under a
per-key budget, composing per-key outcomes, and the evidence (counterexample lines per failing key).

Must not import: click, rich, docker.

Composition: INVALID if any key is not linearizable (the search may stop early: `stop_at_first`);
UNKNOWN if no key failed but a key hit its budget; VALID only if every key was proven linearizable.
No operations (or only failed ones) is UNKNOWN: nothing to check.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

from chaos.checkers import wgl
from chaos.checkers.core import Outcome, Param, Verdict, register
from chaos.history import Op

MAX_CEX_LINES = 200


def check_ops(ops: list[Op], *, key_timeout_s: float = 10.0, key_max_states: int = 1_000_000,
              counterexample_s: float = 2.0, stop_at_first: bool = False) -> Outcome:
    by_key: dict = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    judged = {k: v for k, v in by_key.items() if any(o.type == "ok" for o in v)}
    if not judged:
        return Outcome.nothing("no acknowledged (ok) operations in the history")
    failed, budget, stats = [], [], {"keys": len(judged), "ops": sum(len(v) for v in judged.values()),
                                     "states": 0, "slowest_key": None, "slowest_key_s": 0.0}
    t0 = time.perf_counter()
    for key in sorted(judged, key=lambda k: str(k)):
        kr = wgl.check_key(key, judged[key], timeout_s=key_timeout_s, max_states=key_max_states,
                           counterexample_s=counterexample_s)
        stats["states"] += kr.states
        if kr.elapsed_s > stats["slowest_key_s"]:
            stats["slowest_key"], stats["slowest_key_s"] = key, round(kr.elapsed_s, 4)
        if kr.outcome == wgl.NOT_LINEARIZABLE:
            cex = kr.counterexample
            start = ("the initial (absent) state" if kr.initial_states == [None] else
                     "any state the earlier operations can leave (" +
                     ", ".join("absent" if v is None else json.dumps(v) for v in kr.initial_states[:10]) +
                     ("…" if len(kr.initial_states) > 10 else "") + ")")
            failed.append({"key": key, "ops": kr.ops, "counterexample": cex[-MAX_CEX_LINES:],
                           "counterexample_ops": len(cex), "counterexample_minimal": kr.counterexample_minimal,
                           "initial_states": kr.initial_states,
                           "context": kr.context[-MAX_CEX_LINES:],
                           "explanation": f"starting from {start}, no order of these {len(cex)} operations "
                                          f"respects real time and the register model; the last one "
                                          f"({cex[-1] if cex else '?'}) cannot be placed"})
            if stop_at_first:
                break
        elif kr.outcome == wgl.BUDGET:
            budget.append({"key": key, "ops": kr.ops, "states": kr.states, "reason": kr.reason})
    stats["elapsed_s"] = round(time.perf_counter() - t0, 4)
    evidence = {"stats": stats, "failed_keys": failed, "budget_keys": budget}
    if failed:
        keys = ", ".join(str(f["key"]) for f in failed[:5])
        return Outcome(Verdict.INVALID, f"{len(failed)} key(s) not linearizable: {keys}", evidence)
    if budget:
        return Outcome(Verdict.UNKNOWN, f"{len(budget)} key(s) over the search budget "
                                        f"({budget[0]['reason']}); the others are linearizable", evidence)
    return Outcome(Verdict.VALID, f"{stats['keys']} key(s), {stats['ops']} operations: linearizable", evidence)


@register("linearizable", default=True, params=(
    Param("key_timeout_s", "float", 10.0, "search time budget per key (s); over it the key is UNKNOWN"),
    Param("key_max_states", "int", 1_000_000, "memo entries per key (about 100 B each); over it UNKNOWN"),
    Param("counterexample_s", "float", 2.0, "time to shrink a counterexample per failing key (s)"),
    Param("stop_at_first", "bool", False, "stop at the first key that is not linearizable"),
))
def linearizable(run, key_timeout_s, key_max_states, counterexample_s, stop_at_first) -> Outcome:
    """Key-value history is linearizable per key (register: read/write/cas/delete; absent = null)."""
    if not run.has_history():
        return Outcome.nothing("no history.jsonl")
    out = check_ops(run.ops, key_timeout_s=key_timeout_s, key_max_states=key_max_states,
                    counterexample_s=counterexample_s, stop_at_first=stop_at_first)
    # Linearizability is prefix-closed: a history cut short (ops in flight become info) that is not
    # linearizable was not linearizable in full either. (A history damaged mid-file is not read at all.)
    out.holds_on_partial = True
    return out
