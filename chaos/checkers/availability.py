"""The `availability` and `recovery` checkers: client-visible service levels against thresholds.

availability: operations are assigned to run.json phases by invocation time (no phases: one phase
`all`, split at heal_ts into `before-heal` / `after-heal` when known). Per phase: counts of ok /
refused / fail / info, `served` (ok + refused) and the share served (`ok_share`), and latency
quantiles (p50/p95/p99, nearest-rank, over ok operations). A cas refused with error `cas-mismatch`
is a served, definite answer: it is named `refused`, never `fail`, and counts as served.
Judged phases: `phases` if given, else those starting at or after heal_ts. INVALID when a judged
phase has a served share below `min_ok_share` or a p99 above `max_p99_s`. No data is UNKNOWN, never
VALID: a judged phase in which the workload recorded no operation (or, with `max_p99_s`, no ok
operation to measure latency on).

recovery: (1) time to a new leader after each leader fault: a faults.jsonl `start` of a kind in
`leader_fault_kinds` whose targets include the leader at that moment (from journal role events, the
highest-term leader whose latest role event is `leader`); the time is until a role=leader event in
a higher term on any node. No new leader is INVALID only when the fault lasted longer than
`max_leader_s`; otherwise it is noted and not judged. (2) time from heal_ts to the completion of the
first ok write / cas / delete. INVALID above `max_heal_to_write_s`, or when writes were attempted after
heal and none succeeded. (1) without a leader fault is not applicable; (2) without data (no heal_ts,
no write / cas / delete invoked after heal, or no fault in effect before the heal: no faults.jsonl
`start` or `step`, so the heal ended nothing) is UNKNOWN, never VALID.

Must not import: click, rich, docker.
"""

from __future__ import annotations

import math
from collections import defaultdict

from chaos.checkers.core import Outcome, Param, Verdict, register
from chaos.history import Op


def quantile(sorted_vals: list[float], q: float) -> float | None:
    """Nearest-rank quantile of already sorted values (q in (0, 1])."""
    if not sorted_vals:
        return None
    rank = max(1, math.ceil(q * len(sorted_vals)))
    return sorted_vals[min(rank, len(sorted_vals)) - 1]


def phase_windows(run) -> list[tuple[str, float, float]]:
    phases = [(p["name"], float(p.get("start", -math.inf)), float(p.get("end", math.inf)))
              for p in run.phases if isinstance(p.get("start"), (int, float))]
    if phases:
        return phases
    heal = run.heal_ts
    if heal is None:
        return [("all", -math.inf, math.inf)]
    return [("before-heal", -math.inf, heal), ("after-heal", heal, math.inf)]


def phase_stats(ops: list[Op], windows) -> dict[str, dict]:
    grouped: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.invoke_ts is None:
            continue
        for name, start, end in windows:
            if start <= op.invoke_ts < end:
                grouped[name].append(op)
                break
    out = {}
    for name, _, _ in windows:
        g = grouped.get(name, [])
        lat = sorted(op.latency_s for op in g if op.type == "ok" and op.latency_s is not None)
        n = len(g)
        ok = sum(1 for op in g if op.type == "ok")
        refused = sum(1 for op in g if op.refused)
        out[name] = {"ops": n, "ok": ok, "refused": refused,
                     "fail": sum(1 for op in g if op.type == "fail") - refused,
                     "info": sum(1 for op in g if op.type == "info"), "served": ok + refused,
                     "ok_share": round((ok + refused) / n, 4) if n else None,
                     "p50_s": quantile(lat, 0.50), "p95_s": quantile(lat, 0.95), "p99_s": quantile(lat, 0.99)}
    return out


def _counts(s: dict) -> str:
    """`ok 90, refused 8, fail 0, info 2`: a phase's operations by how they ended."""
    return ", ".join(f"{k} {s[k]}" for k in ("ok", "refused", "fail", "info"))


@register("availability", default=True, params=(
    Param("min_ok_share", "float?", 0.5, "lowest share of served operations (ok, or cas refused on a value "
          "mismatch) in a judged phase (none: not judged); the default only asks that the cluster serves "
          "again after the heal", hi=1.0),
    Param("max_p99_s", "float?", None, "highest p99 latency of ok operations in a judged phase (s)"),
    Param("phases", "list", [], "phases to judge ('+'-joined); empty: the phases starting at/after heal"),
))
def availability(run, min_ok_share, max_p99_s, phases) -> Outcome:
    """Share of ok operations and latency quantiles per phase, against thresholds."""
    if not run.has_history() or not run.ops:
        return Outcome.nothing("no operations in history.jsonl")
    windows = phase_windows(run)
    stats = phase_stats(run.ops, windows)
    names = [w[0] for w in windows]
    if phases:
        unknown = [p for p in phases if p not in names]
        judged = [p for p in phases if p in names]
    else:
        unknown = []
        heal = run.heal_ts
        judged = [n for n, s, _ in windows if heal is not None and s >= heal] or (
            names if heal is None and len(names) == 1 else [])
    evidence = {"phases": stats, "judged": judged, "unknown_phases": unknown,
                "thresholds": {"min_ok_share": min_ok_share, "max_p99_s": max_p99_s}}
    misses = []
    for p in judged:
        s = stats[p]
        if not s["ops"]:
            continue
        if min_ok_share is not None and s["ok_share"] < min_ok_share:
            misses.append(f"{p}: served share {s['ok_share']:.3f} < {min_ok_share:g} ({_counts(s)})")
        if max_p99_s is not None and s["p99_s"] is not None and s["p99_s"] > max_p99_s:
            misses.append(f"{p}: p99 {s['p99_s']:.3f} s > {max_p99_s:g} s")
    evidence["misses"] = misses
    if misses:
        return Outcome(Verdict.INVALID, "; ".join(misses), evidence)
    if unknown:
        return Outcome(Verdict.UNKNOWN, f"no such phase(s): {', '.join(unknown)}", evidence)
    with_ops = [p for p in judged if stats[p]["ops"]]
    if not with_ops:
        return Outcome(Verdict.UNKNOWN, "nothing to check: " + (
            "no operations in the judged phases" if judged else "no phase at or after heal"), evidence)
    if min_ok_share is None and max_p99_s is None:
        return Outcome(Verdict.UNKNOWN, "no thresholds given: measured only", evidence)
    no_data = _unmeasured(judged, stats, max_p99_s)
    if no_data:
        return Outcome(Verdict.UNKNOWN, f"nothing to check in {no_data}", evidence)
    return Outcome(Verdict.VALID, "; ".join(f"{p}: served {stats[p]['ok_share']:.3f} ({_counts(stats[p])}), p99 "
                                            + (f"{stats[p]['p99_s']:.3f} s" if stats[p]['p99_s'] is not None else "-")
                                            for p in with_ops), evidence)


def _unmeasured(judged: list[str], stats: dict, max_p99_s: float | None) -> str | None:
    """No data: a judged phase in which the workload recorded no operation, or (with a p99 bound) no
    ok operation to measure latency on. Such a phase is not served well; it is not judged at all."""
    for p in judged:
        if not stats[p]["ops"]:
            return f"phase {p}: no operations recorded in it"
        if max_p99_s is not None and stats[p]["p99_s"] is None:
            return f"phase {p}: no ok operation to measure p99 on"
    return None


# --- recovery ---------------------------------------------------------------------------------


def _leader_events(run) -> list[dict]:
    evs = []
    for node, journal in run.journals.items():
        for e in journal:
            if e.get("type") == "role" and isinstance(e.get("ts"), (int, float)):
                evs.append(e)
    return sorted(evs, key=lambda e: e["ts"])


def leader_at(role_events: list[dict], ts: float) -> tuple[str | None, int]:
    latest: dict[str, dict] = {}
    for e in role_events:
        if e["ts"] > ts:
            break
        latest[e.get("node")] = e
    leaders = [(e.get("term", 0), n) for n, e in latest.items() if e.get("role") == "leader"]
    if not leaders:
        return None, 0
    term, node = max(leaders)
    return node, term


def _targets(f: dict) -> list[str]:
    t = f.get("targets")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        out = []
        for x in t:
            out.extend(x if isinstance(x, list) else [x])
        return [str(x) for x in out]
    if isinstance(t, dict):
        return [str(x) for v in t.values() for x in (v if isinstance(v, list) else [v])]
    return []


def leader_recoveries(run, kinds: list[str], bound: float) -> tuple[list[dict], list[str]]:
    roles = _leader_events(run)
    starts = [f for f in run.faults if f.get("action") == "start" and f.get("kind") in kinds]
    stops = {f.get("fault"): f.get("ts") for f in run.faults if f.get("action") == "stop"}
    measured, misses = [], []
    for f in sorted(starts, key=lambda f: f.get("ts", 0)):
        ts = f.get("ts")
        leader, term = leader_at(roles, ts)
        if leader is None or leader not in _targets(f):
            continue
        new = next((e for e in roles if e["ts"] > ts and e.get("role") == "leader" and e.get("term", 0) > term), None)
        rec = {"fault": f.get("fault"), "kind": f.get("kind"), "ts": ts, "old_leader": leader, "old_term": term}
        if new is not None:
            dt = new["ts"] - ts
            rec.update(new_leader=new.get("node"), new_term=new.get("term"), seconds=round(dt, 3))
            if dt > bound:
                misses.append(f"fault {f.get('fault')}: new leader after {dt:.2f} s > {bound:g} s")
        else:
            stop = stops.get(f.get("fault"))
            lasted = (stop - ts) if isinstance(stop, (int, float)) else math.inf
            rec["seconds"] = None
            if lasted > bound:
                misses.append(f"fault {f.get('fault')} on leader {leader}: no new leader "
                              f"(fault lasted {lasted:.1f} s > {bound:g} s)")
            else:
                rec["note"] = f"fault lasted {lasted:.1f} s <= bound: not judged"
        measured.append(rec)
    return measured, misses


def election_churn(run, kinds: list[str]) -> dict:
    """Leader elections (distinct terms in which some node journaled role=leader) that began at or
    after the first fault of `kinds` started, and the number of such fault starts."""
    starts = sorted(f["ts"] for f in run.faults if f.get("action") == "start" and f.get("kind") in kinds
                    and isinstance(f.get("ts"), (int, float)))
    if not starts:
        return {"faults": 0, "elections": 0, "terms": []}
    terms = sorted({e.get("term") for e in _leader_events(run)
                    if e.get("role") == "leader" and e["ts"] >= starts[0]}, key=lambda t: (t is None, t))
    return {"faults": len(starts), "elections": len(terms), "terms": terms[:50]}


ISOLATED_TERM_GRACE_S = 1.0


def isolated_term_bumps(run, grace_s: float = ISOLATED_TERM_GRACE_S) -> tuple[list[dict], int]:
    """(bumps, windows judged): every `term` event of a manager while a partition isolated it
    alone (an `isolate` selector that chose exactly that one node), from the cut applied + grace_s
    (a pre-vote granted just before the cut may still raise the term once) to the heal requested.
    With PreVote a node cut off from every other one never wins a pre-vote, so its term stays."""
    managers = set(run.managers())
    intends = {f.get("fault"): f for f in run.faults if f.get("action") == "intend-start"}
    stops = {f.get("fault"): f for f in run.faults if f.get("action") == "intend-stop"}
    ends = {f.get("fault"): f for f in run.faults if f.get("action") == "stop"}
    windows = []
    for f in run.faults:
        if f.get("action") != "start" or f.get("kind") != "partition":
            continue
        fid = f.get("fault")
        selector = ((intends.get(fid) or {}).get("details") or {}).get("selector") or {}
        targets = f.get("targets") or []
        if "isolate" not in selector or len(targets) != 1 or targets[0] not in managers:
            continue
        t0 = f.get("applied_ts") or f.get("ts")
        end = (stops.get(fid) or {}).get("ts") or (ends.get(fid) or {}).get("intended_ts")
        if not isinstance(t0, (int, float)) or not isinstance(end, (int, float)):
            continue
        windows.append((fid, targets[0], t0 + grace_s, end))
    bumps = []
    for fid, node, lo, hi in windows:
        for e in run.journals.get(node, []):
            if e.get("type") == "term" and isinstance(e.get("ts"), (int, float)) and lo <= e["ts"] <= hi:
                bumps.append({"fault": fid, "node": node, "term": e.get("term"),
                              "after_cut_s": round(e["ts"] - lo + grace_s, 3)})
    return bumps, len(windows)


@register("recovery", default=True, params=(
    Param("max_leader_s", "float", 10.0, "longest time from a leader fault to a new leader (s)"),
    Param("max_heal_to_write_s", "float", 10.0, "longest time from heal to the first ok write (s)"),
    Param("leader_fault_kinds", "list", ["partition", "isolate", "kill", "stop", "pause", "power-loss",
                                                 "disk-full"],
          "fault kinds that should depose a targeted leader ('+'-joined)"),
    Param("max_elections_per_fault", "float", 0.0,
          "at most this many leader elections (terms with a leader) from the first fault on, per "
          "fault of leader_fault_kinds (0: not judged). PreVote and CheckQuorum keep a fault on a "
          "follower from deposing the leader, so 1 allows one election per fault"),
    Param("isolated_term_stable", "bool", False,
          "a manager that a partition isolates alone never raises its term while cut off (PreVote: "
          "it cannot win a pre-vote), judged from 1 s after the cut to the heal"),
))
def recovery(run, max_leader_s, max_heal_to_write_s, leader_fault_kinds, max_elections_per_fault,
             isolated_term_stable=False) -> Outcome:
    """Time to a new leader after leader faults; time from heal to the first successful write;
    optionally, election churn per fault, and terms raised by isolated managers."""
    measured, misses = leader_recoveries(run, leader_fault_kinds, max_leader_s)
    churn = election_churn(run, leader_fault_kinds) if max_elections_per_fault > 0 else None
    prevote = None
    if isolated_term_stable:
        bumps, judged = isolated_term_bumps(run)
        prevote = {"windows": judged, "bumps": bumps[:20], "bumps_n": len(bumps)}
        if bumps:
            b = bumps[0]
            misses.append(f"{len(bumps)} term rise(s) by isolated managers (PreVote): {b['node']} reached "
                          f"term {b['term']} {b['after_cut_s']:.2f} s into {b['fault']}, cut off from "
                          "every other node")
    if churn is not None and churn["faults"]:
        bound = max_elections_per_fault * churn["faults"]
        if churn["elections"] > bound:
            misses.append(f"{churn['elections']} leader elections after the first fault > "
                          f"{max_elections_per_fault:g} x {churn['faults']} fault(s)")
    heal = run.heal_ts
    write_info: dict = {}
    # a heal with nothing before it is no recovery: the first write after it would be timed from a
    # moment where nothing was wrong (a file cut to its header ran fault-free and passed this way)
    disturbed = any(f.get("action") in ("start", "step") for f in run.faults)
    if heal is not None and run.has_history() and disturbed:
        muts = [op for op in run.ops if op.f != "read" and op.invoke_ts is not None]
        after = [op for op in muts if (op.complete_ts or op.invoke_ts) >= heal]
        oks = sorted((op.complete_ts for op in after if op.type == "ok" and op.complete_ts is not None))
        if oks:
            dt = max(0.0, oks[0] - heal)
            write_info = {"heal_to_first_write_s": round(dt, 3)}
            if dt > max_heal_to_write_s:
                misses.append(f"first ok write {dt:.2f} s after heal > {max_heal_to_write_s:g} s")
        elif after:
            write_info = {"heal_to_first_write_s": None, "attempts_after_heal": len(after)}
            misses.append(f"no write succeeded after heal ({len(after)} attempted)")
    evidence = {"leader_faults": measured, **write_info, "misses": misses,
                **({"churn": churn} if churn is not None else {}),
                **({"isolated_terms": prevote} if prevote is not None else {})}
    if misses:
        return Outcome(Verdict.INVALID, "; ".join(misses), evidence)
    judged = [m for m in measured if m.get("seconds") is not None]
    if "heal_to_first_write_s" not in write_info:
        why = ("run.json has no heal_ts" if heal is None else
               "no fault was in effect before the heal (faults.jsonl has no `start` or `step`)" if not disturbed
               else "the workload recorded no write after heal")
        return Outcome(Verdict.UNKNOWN, f"nothing to check: {why}, so the time from heal to the first write "
                                        "is not measured", evidence)
    if prevote is not None and not prevote["windows"]:
        return Outcome(Verdict.UNKNOWN, "nothing to check for isolated_term_stable: no partition isolated "
                                        "a single manager", evidence)
    parts = [f"new leader after {m['seconds']:.2f} s ({m['fault']})" for m in judged]
    if "heal_to_first_write_s" in write_info:
        parts.append(f"first write {write_info['heal_to_first_write_s']:.2f} s after heal")
    if prevote is not None:
        parts.append(f"no term raised in {prevote['windows']} isolation(s) of a manager")
    return Outcome(Verdict.VALID, "; ".join(parts), evidence)
