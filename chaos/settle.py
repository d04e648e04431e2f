"""Taking a run's final state without racing the cluster.

Owns: `settle` (poll the cluster in quick concurrent rounds until the managers agree on applied
index and store digest in two consecutive rounds and the member tables have settled; return the
evidence, which the runner stores as run.json `settle`, docs/contracts.md section 5) and
`read_concurrently` (one round of per-node reads, in parallel, for the final statuses and stores).

Why: a cluster keeps committing after it has converged (task reconciliation, dispatcher updates).
Reading node after node between slow reads (journals, stores, logs) makes the managers' final applied
indexes differ although nothing is wrong. Agreement is therefore judged on what cannot race: one
round in which every manager's (applied_index, store_digest) is read at the same moment, seen twice
in a row (the cluster was not in the middle of a commit); and the convergence checker compares final
stores read at different indexes at their common index through the journals
(chaos/checkers/convergence.py). Used by chaos/runner.py and by the process-level end-to-end test.

Must not import: click, docker, chaos.checkers modules other than convergence's `members_settled`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from chaos.checkers.convergence import config_members, members_settled

INTERVAL_S = 0.3       # between two rounds
MAX_ROUNDS_KEPT = 20   # the evidence keeps the last rounds (the count says how many there were)
MAX_PARALLEL = 16


def _pair(status: Any) -> list | None:
    """A manager's [applied_index, store_digest] from one status, or None (no answer / no fields)."""
    if not isinstance(status, dict) or "error" in status:
        return None
    a, d = status.get("applied_index"), status.get("store_digest")
    if isinstance(a, bool) or not isinstance(a, int) or not isinstance(d, str):
        return None
    return [a, d]


def managers_agree(statuses: Mapping[str, Any], managers: list[str]) -> tuple[int, str] | None:
    """(applied_index, store_digest) when every manager answered with the same pair, else None."""
    managers = config_members(statuses, managers)   # a removed manager no longer gets the log
    pairs = [_pair(statuses.get(m)) for m in managers]
    if not managers or any(p is None for p in pairs) or len({tuple(p) for p in pairs}) != 1:
        return None
    return tuple(pairs[0])


def settle(poll: Callable[[], Mapping[str, Any]], managers: list[str], deadline: float,
           clock: Callable[[], float] = time.time, interval_s: float = INTERVAL_S,
           monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll (each `poll()` is one concurrent round of every node's status) until the managers agree on
    the same (applied_index, store_digest) in two consecutive rounds and the member tables of the
    last round are settled, or until `deadline` (a `monotonic` time). Returns the evidence:

      agreed          {"applied_index", "store_digest", "rounds": [i, i+1], "ts"} of the last two
                      consecutive agreeing rounds (even when the member tables never settled), or None
      members_settled whether the last round's member tables were settled
      reason          None when both held at the end, else why the wait ended without them
      rounds          the last MAX_ROUNDS_KEPT rounds: {"i", "start", "end", "managers": {m: [index,
                      digest] or null}, "agree": bool, "members_settled": bool}; rounds_total counts all
    """
    rounds: list[dict] = []
    agreed, n, prev, single = None, 0, None, False
    while True:
        start = clock()
        sts = poll()
        row = {"i": n, "start": round(start, 6), "end": round(clock(), 6),
               "managers": {m: _pair(sts.get(m)) for m in managers}}
        now_agree = managers_agree(sts, managers)
        row["agree"] = now_agree is not None
        single = single or row["agree"]
        row["members_settled"] = members_settled(dict(sts))
        rounds = (rounds + [row])[-MAX_ROUNDS_KEPT:]
        if now_agree is not None and prev == now_agree:
            agreed = {"applied_index": now_agree[0], "store_digest": now_agree[1], "rounds": [n - 1, n],
                      "ts": row["end"]}
            if row["members_settled"]:
                break
        prev, n = now_agree, n + 1
        if monotonic() + interval_s >= deadline:
            break
        sleep(interval_s)
    return {"agreed": agreed, "members_settled": rounds[-1]["members_settled"], "reason": _why_not(rounds, agreed, single),
            "rounds_total": rounds[-1]["i"] + 1, "rounds": rounds}


def _why_not(rounds: list[dict], agreed: dict | None, single: bool) -> str | None:
    last, why = rounds[-1], []
    if agreed is None and not single:
        shown = ", ".join(f"{m} " + (f"{p[0]}/{p[1][:12]}" if p else "no answer")
                          for m, p in sorted(last["managers"].items()))
        why.append(f"the managers never agreed within one round before the bound (last round: {shown})")
    elif agreed is None:
        why.append("the managers agreed within single rounds but never in two consecutive rounds before the "
                   "bound (the cluster was still committing)")
    elif agreed["rounds"][1] != last["i"]:
        why.append(f"the managers agreed in rounds {agreed['rounds'][0]}-{agreed['rounds'][1]}, then the "
                   "cluster committed again before the bound")
    if not last["members_settled"]:
        why.append("the member tables had not settled in the last round")
    return "; ".join(why) or None


def read_concurrently(read: Callable[[str], Any], nodes: list[str]) -> dict[str, Any]:
    """node -> read(node), all nodes in parallel (one round: the reads overlap in time instead of
    following each other between slow reads). `read` handles a node's own failures; anything it
    raises propagates."""
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(nodes))) as pool:
        futs = {n: pool.submit(read, n) for n in nodes}
        return {n: f.result() for n, f in futs.items()}
