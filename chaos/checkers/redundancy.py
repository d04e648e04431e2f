"""The `redundancy` checker (issue 23): how long the cluster ran with fewer voters than configured.

Owns `redundancy_intervals()` (pure, table-tested) and the checker. From status.jsonl it rebuilds,
at every status row, each manager's latest status (fresh: answered within `stale_s`), and measures:

  below_target_s   time the configuration in force (as the leader of the highest term reports it in
                   `config.voters`) listed fewer voters than the cluster was started with (run.json
                   managers), e.g. between a removal and the replacement becoming a voter;
  degraded_s       time fewer voters were healthy than the configuration lists: a voter is healthy
                   when its fresh status follows the leader's term as leader or follower and has
                   applied to within `lag_entries` of the leader's commit index (a dead, cut off or
                   lagging voter is not); a learner never counts;
  no_leader_s      time no fresh status showed a leader with a configuration (not counted above).

VALID with the numbers as evidence, unless a bound is given (`max_below_target_s`,
`max_degraded_s`) and exceeded: INVALID. UNKNOWN when no status showed a configuration (agents
without membership report none). Must not import: click, rich, docker.
"""

from __future__ import annotations

from chaos.checkers.core import Outcome, Param, Verdict, register

MAX_INTERVALS = 20
ROUND_S = 0.5   # status rows this close together are one poll round (judged together)


def _leader(latest: dict, now: float, stale_s: float):
    best = None
    for n, (ts, st) in latest.items():
        if now - ts > stale_s or not isinstance(st, dict) or st.get("role") != "leader":
            continue
        if not isinstance(st.get("config"), dict):
            continue
        if best is None or (st.get("term") or 0) > (best[1].get("term") or 0):
            best = (n, st)
    return best


def _rounds(rows: list[dict], window_s: float = ROUND_S):
    """Consecutive rows of one poll round (within window_s of its first row, each node once)."""
    batch: list[dict] = []
    for r in rows:
        if batch and (r["ts"] - batch[0]["ts"] > window_s or any(b["node"] == r["node"] for b in batch)):
            yield batch
            batch = []
        batch.append(r)
    if batch:
        yield batch


def redundancy_intervals(rows: list[dict], target: int, lag_entries: int = 100, stale_s: float = 3.0) -> dict:
    """rows: status.jsonl rows {"ts", "node", "status"} (any order). Returns the totals and the
    first intervals of each kind: {"below_target_s", "degraded_s", "no_leader_s", "intervals": [...],
    "min_voters", "samples"}."""
    rows = sorted((r for r in rows if isinstance(r.get("ts"), (int, float))), key=lambda r: r["ts"])
    latest: dict[str, tuple[float, dict | None]] = {}
    totals = {"below_target": 0.0, "degraded": 0.0, "no_leader": 0.0}
    intervals: list[dict] = []
    open_: dict[str, float] = {}
    prev_ts, prev_state = None, None
    min_voters, samples = None, 0
    for batch in _rounds(rows):
        now = batch[-1]["ts"]
        if prev_ts is not None and prev_state is not None:
            for k in prev_state:
                totals[k] += now - prev_ts
        for r in batch:
            st = r.get("status")
            latest[r["node"]] = (r["ts"], st if isinstance(st, dict) and "error" not in st else None)
        lead = _leader(latest, now, stale_s)
        state = set()
        if lead is None:
            state.add("no_leader")
        else:
            samples += 1
            _ln, lst = lead
            voters = list(lst["config"].get("voters") or [])
            min_voters = len(voters) if min_voters is None else min(min_voters, len(voters))
            if len(voters) < target:
                state.add("below_target")
            healthy = 0
            for v in voters:
                ts, vs = latest.get(v, (None, None))
                if ts is None or now - ts > stale_s or not isinstance(vs, dict):
                    continue
                if vs.get("term") == lst.get("term") and vs.get("role") in ("leader", "follower") and \
                        (vs.get("applied_index") or 0) >= (lst.get("commit_index") or 0) - lag_entries:
                    healthy += 1
            if healthy < len(voters):
                state.add("degraded")
        for k in ("below_target", "degraded", "no_leader"):
            if k in state and k not in open_:
                open_[k] = now
            elif k not in state and k in open_:
                if len(intervals) < MAX_INTERVALS:
                    intervals.append({"kind": k, "from": open_[k], "to": now, "s": round(now - open_[k], 3)})
                del open_[k]
        prev_ts, prev_state = now, state
    for k, start in sorted(open_.items()):
        if len(intervals) < MAX_INTERVALS:
            intervals.append({"kind": k, "from": start, "to": prev_ts, "s": round(prev_ts - start, 3), "open": True})
    return {"below_target_s": round(totals["below_target"], 3), "degraded_s": round(totals["degraded"], 3),
            "no_leader_s": round(totals["no_leader"], 3), "intervals": intervals, "min_voters": min_voters,
            "samples": samples}


@register("redundancy", params=(
    Param("max_below_target_s", "float?", None, "INVALID when the configuration listed fewer voters than "
                                                "the cluster started with for longer than this (s)"),
    Param("max_degraded_s", "float?", None, "INVALID when fewer voters were healthy than configured for "
                                            "longer than this (s)"),
    Param("lag_entries", "int", 100, "a voter more than this many entries behind the leader's commit "
                                     "index is not healthy"),
))
def redundancy(run, max_below_target_s, max_degraded_s, lag_entries) -> Outcome:
    """How long the cluster ran with fewer voters than configured (issue 23)."""
    target = len(run.started_managers())   # a manager that joined during the run does not raise it
    rows = run.status
    if not rows:
        return Outcome.nothing("no status.jsonl rows")
    out = redundancy_intervals(rows, target, lag_entries=lag_entries)
    out["target_voters"] = target
    if out["samples"] == 0:
        return Outcome(Verdict.UNKNOWN, "no status showed a leader with a configuration (an agent without "
                                        "membership?)", out)
    summary = (f"{out['below_target_s']:.1f} s with fewer than {target} voters configured, "
               f"{out['degraded_s']:.1f} s with fewer healthy voters than configured "
               f"(fewest configured: {out['min_voters']})")
    over = []
    if max_below_target_s is not None and out["below_target_s"] > max_below_target_s:
        over.append(f"below target {out['below_target_s']:.1f} s > {max_below_target_s:g} s")
    if max_degraded_s is not None and out["degraded_s"] > max_degraded_s:
        over.append(f"degraded {out['degraded_s']:.1f} s > {max_degraded_s:g} s")
    if over:
        return Outcome(Verdict.INVALID, "; ".join(over) + f" ({summary})", out)
    return Outcome(Verdict.VALID, summary, out)
