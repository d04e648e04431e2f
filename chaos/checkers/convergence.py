"""The `convergence` checker: after the final heal the cluster returns to one agreed state in bounds.

Owns the six liveness properties below, each with its own verdict in the evidence (`parts`); the
check's verdict composes them (INVALID > UNKNOWN > VALID). Times are seconds after run.json
`heal_ts`; a status poll (status.jsonl) "at t" means every node's latest poll at or before t.

  managers   the managers' final stores agree, and the status polls first show all managers agreeing
             (all answered, same applied index and digest) within `store_bound_s` (late: INVALID;
             never: INVALID; no polls after heal: UNKNOWN, the time cannot be judged). A manager
             whose final status records an error reports no state: INVALID; a missing final file
             (or one without the fields) is UNKNOWN. The final stores agree when every manager's
             final/<m>.json (store, else status) has the same (applied_index, store_digest), or,
             when they were read at different applied indexes (the cluster committed between the
             reads: chaos/settle.py), by this rule, with D_m(i) the digest of manager m at index i:
             its final read if i is its final index, else the last `apply`/`snapshot` event at i in
             its journal (the runner reads a journal after its node's final store):
               1. different: at each manager's final index, and at the index of run.json
                  `settle.agreed` (all managers seen equal in two consecutive concurrent rounds),
                  every known D_m(i) (and the settle digest) must be equal. Else INVALID.
               2. common index: with lo the lowest final index, every manager's D_m(lo) must be
                  known. Else UNKNOWN (nothing to compare them at).
               3. behind: every manager below the highest final index hi must have caught up: its
                  journal reaches hi, or `settle.agreed` saw every manager at an index <= its final
                  index. Else INVALID ("really behind", with each one's final index and journal top),
                  or UNKNOWN when that manager's journal is incomplete (the record may end early).
             Then the timing above is judged as when the final reads agree.
             With membership (issue 23) "the managers" are the voters and learners of the
             configuration the final leader reports (a removed manager is left out, a promoted
             worker counted): `config_members`; and `config` checks that every one of them ends
             with that same configuration, committed.
  members    the live set is the nodes whose final status answered. Within `members_bound_s`, every
             live node's member table marks every other live node `alive` and no non-live node
             `alive`, and this holds in the final statuses. If statuses carry an `endpoints` table,
             all live nodes' tables must be equal too. A live member still marked suspect/dead at
             the end is reported by name ("never converged").
  services   each service in the final manager store has `replicas` tasks in state running (from
             the store's tasks). Timing from task events: the last task event of the service must
             come within `services_bound_s` of heal.
  task-order per node journal and boot, each task's state only moves forward (a restarted manager
             re-applies its log and so re-emits a task's history from `new`; that is not a step back):
             new < assigned < running < {complete, failed, shutdown, orphaned} (terminal states are
             final). A step backwards is INVALID.
  no-double  at heal + `services_bound_s` and at the end of the journals, no (service, slot) and no
             task id is running on two workers (latest task event per task and worker).

A part with no data says "nothing to check"; it makes the check UNKNOWN when it is named in the
`require` parameter (default managers+members), and is skipped (listed as not applicable) otherwise.
When every part lacks data the check is UNKNOWN. Must not import: click, rich, docker.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Mapping

from chaos.checkers.core import Outcome, Param, Verdict, register

TASK_ORDER = {"new": 0, "assigned": 1, "running": 2, "complete": 3, "failed": 3, "shutdown": 3, "orphaned": 3}
TERMINAL = 3
PARTS = ("managers", "members", "services", "task-order", "no-double", "config")


def _part(verdict: Verdict, summary: str, **evidence) -> dict:
    return {"verdict": verdict.value, "summary": summary, **evidence}


def _polls_after(status: list[dict], heal: float) -> list[dict]:
    return sorted((s for s in status if isinstance(s.get("ts"), (int, float)) and s["ts"] >= heal),
                  key=lambda s: s["ts"])


def _first_time(polls: list[dict], nodes: list[str], pred) -> float | None:
    """First poll time at which pred(latest status per node) holds (only after every node answered)."""
    latest: dict[str, Any] = {}
    for p in polls:
        latest[p.get("node")] = p.get("status")
        if all(n in latest for n in nodes) and pred({n: latest[n] for n in nodes}):
            return p["ts"]
    return None


def _ok_status(s: Any) -> bool:
    return isinstance(s, dict) and "error" not in s


def removed_in_journals(run, managers: list[str]) -> set[str]:
    """The managers that some journal shows outside a configuration appended after the bootstrap one
    (a `config` event with index > 0 that does not list them): the evidence that they were removed."""
    out: set[str] = set()
    for evs in run.journals.values():
        for e in evs:
            if e.get("type") == "config" and isinstance(e.get("index"), int) and e["index"] > 0:
                members = set(e.get("voters") or ()) | set(e.get("learners") or ())
                out |= {m for m in managers if m not in members}
    return out


def config_members(statuses: Mapping[str, Any], fallback: list[str],
                   removed: Callable[[], set[str]] | None = None) -> list[str]:
    """The managers whose state must agree (issue 23): the voters and learners of the Raft
    configuration that the leader of the highest term reports (`config` in its status), when one
    does; else `fallback` (agents without membership). A removed manager is left out: it is not
    sent the log after its removal (Raft thesis §4.2.3), so it may never catch up. With `removed`
    (the checkers: `removed_in_journals`), a manager of `fallback` is left out only when the journals
    show its removal: a leader that merely reports a configuration without it (a bug) does not take
    a manager's evidence out of judgement. `removed` is called (the journals read) only when the
    configuration leaves some manager of `fallback` out; a missing journal then makes the check
    UNKNOWN, naming it, instead of judging a manager that may have been removed."""
    best = None
    for st in statuses.values():
        if _ok_status(st) and st.get("role") == "leader" and isinstance(st.get("config"), dict):
            if best is None or (st.get("term") or 0) > (best.get("term") or 0):
                best = st
    if best is None:
        return list(fallback)
    c = best["config"]
    members = set(c.get("voters") or ()) | set(c.get("learners") or ())
    if removed is not None and set(fallback) - members:
        members |= set(fallback) - set(removed())
    return sorted(members)


def _final_pairs(run, managers: list[str]) -> tuple[dict, list[str], dict]:
    """(manager -> (applied_index, digest) from its final store, else its final status; managers
    without a usable final file; the final view for evidence). A final status that records an error
    counts (as (None, None)): the manager was unreachable at the end."""
    finals = {m: run.finals.get(m) for m in managers}
    view = {}
    for m, f in finals.items():
        f = f or {}
        st = f.get("store") if isinstance(f.get("store"), dict) else {}
        status = f.get("status") if _ok_status(f.get("status")) else {}
        view[m] = (st.get("applied_index", status.get("applied_index")),
                   st.get("store_digest", status.get("store_digest")))
        answered_error = isinstance(f.get("status"), dict) and "error" in f["status"]
        if None in view[m] and not answered_error:
            finals[m] = None  # a final file without the fields: missing evidence, not a disagreement
    missing = sorted(m for m, f in finals.items() if f is None)
    view = {m: v for m, v in view.items() if finals[m] is not None}
    return view, missing, {m: {"applied_index": a, "store_digest": d} for m, (a, d) in view.items()}


def check_managers(run, heal: float | None, bound: float) -> dict:
    managers = config_members({n: (f or {}).get("status") for n, f in run.finals.items()}, run.managers(),
                              lambda: removed_in_journals(run, run.managers()))
    if not managers or not any(run.finals.get(m) for m in managers):
        return _part(Verdict.UNKNOWN, "nothing to check: no manager final state")
    view, missing, final_view = _final_pairs(run, managers)
    if not view:
        return _part(Verdict.UNKNOWN, "nothing to check: no manager final state with applied index and digest")
    if any(None in v for v in view.values()):
        return _part(Verdict.INVALID, "a manager reports no applied index / digest at the end (unreachable?)",
                     final=final_view)
    extra: dict = {}
    if len(set(view.values())) != 1:
        judged = compare_at_common_index(run, view)
        if judged["verdict"] != Verdict.VALID.value:
            return {**judged, "final": final_view}
        extra = {"common_index": judged["common_index"], "caught_up": judged["caught_up"]}
    if missing:
        return _part(Verdict.UNKNOWN, f"no final/<node>.json for manager(s) {', '.join(missing)}",
                     final=final_view, **extra)
    return _time_managers(run, managers, heal, bound, final_view, extra)


def check_config(run) -> dict:
    """Every member of the final leader's configuration ends with that configuration, committed."""
    finals = {n: (f or {}).get("status") for n, f in run.finals.items()}
    confs = {n: st["config"] for n, st in finals.items() if _ok_status(st) and isinstance(st.get("config"), dict)}
    if not confs:
        return _part(Verdict.UNKNOWN, "nothing to check: no final status reports a configuration")
    members = config_members(finals, [])
    if not members:
        return _part(Verdict.UNKNOWN, "no final leader reports a configuration", configs=confs)
    # voters and learners only: `index` is the entry's log index, or the snapshot's once the log was
    # compacted past it, which differs between nodes that snapshotted at different points
    key = lambda c: (tuple(c.get("voters") or ()), tuple(c.get("learners") or ()), None)  # noqa: E731
    want = key(next(st["config"] for st in finals.values() if _ok_status(st) and st.get("role") == "leader"
                    and st["config"] and sorted(set(key(st["config"])[0]) | set(key(st["config"])[1])) == members))
    differ = sorted(n for n in members if n not in confs or key(confs[n]) != want)
    uncommitted = sorted(n for n in members if n in confs and confs[n].get("committed") is not True)
    shown = {n: confs.get(n) for n in members}
    if differ or uncommitted:
        return _part(Verdict.INVALID, "configuration not converged: "
                     + "; ".join(x for x in (f"different or missing on {', '.join(differ)}" if differ else "",
                                            f"not committed on {', '.join(uncommitted)}" if uncommitted else "") if x),
                     configs=shown)
    return _part(Verdict.VALID, f"{len(members)} member(s) end with voters {list(want[0])}, learners "
                                f"{list(want[1])}, committed", configs=shown)


def _time_managers(run, managers: list[str], heal: float | None, bound: float, final_view: dict,
                   extra: dict) -> dict:
    """The final stores agree (at a common index): when did the status polls first show agreement?"""
    if heal is None:
        return _part(Verdict.UNKNOWN, "final stores agree but run.json has no heal_ts to time it", final=final_view,
                     **extra)
    polls = [p for p in _polls_after(run.status, heal) if p.get("node") in managers]
    if not polls:
        return _part(Verdict.UNKNOWN, "final stores agree but no status polls after heal to time it",
                     final=final_view, **extra)

    def agree(latest):
        if not all(_ok_status(s) for s in latest.values()):
            return False
        return len({(s.get("applied_index"), s.get("store_digest")) for s in latest.values()}) == 1

    t = _first_time(polls, managers, agree)
    if t is None:
        return _part(Verdict.INVALID, "status polls never showed the managers agreeing after heal "
                     "(final stores agree)", final=final_view, **extra)
    dt = t - heal
    v = Verdict.VALID if dt <= bound else Verdict.INVALID
    at = f" (final reads compared at common index {extra['common_index']})" if extra else ""
    return _part(v, f"managers agreed {dt:.2f} s after heal (bound {bound:g} s){at}", converged_after_s=round(dt, 3),
                 final=final_view, **extra)


# --- final stores read at different applied indexes -------------------------------------------


def _journal_digests(evs: list[dict]) -> dict[int, str]:
    """index -> store digest after it, from `apply` and `snapshot` events (the latest in journal order
    wins: a restarted manager re-applies its log, and its store now is the one last built)."""
    out: dict[int, str] = {}
    for e in evs:
        if e.get("type") in ("apply", "snapshot") and isinstance(e.get("store_digest"), str):
            out[e["index"]] = e["store_digest"]
    return out


def settle_agreement(run) -> tuple[int, str] | None:
    """run.json `settle.agreed` (chaos/settle.py): the (applied_index, digest) every manager showed
    in two consecutive concurrent rounds, or None (not recorded, never seen, or malformed)."""
    settle = run.run.get("settle")
    agreed = settle.get("agreed") if isinstance(settle, dict) else None
    if not isinstance(agreed, dict):
        return None
    a, d, rounds = agreed.get("applied_index"), agreed.get("store_digest"), agreed.get("rounds")
    if isinstance(a, bool) or not isinstance(a, int) or not isinstance(d, str) \
            or not (isinstance(rounds, list) and len(rounds) == 2):
        return None
    return a, d


def compare_at_common_index(run, view: dict[str, tuple[int, str]]) -> dict:
    """The rule for final stores read at different applied indexes (module docstring, `managers`)."""
    digests = {m: _journal_digests(evs) for m, evs in run.journals_of(sorted(view)).items()}
    for m, (a, d) in view.items():
        digests.setdefault(m, {})[a] = d   # the final read itself is a point of m's history
    settled = settle_agreement(run)
    points = sorted({a for a, _ in view.values()} | ({settled[0]} if settled else set()))
    for i in points:
        seen = {m: digests[m][i] for m in view if i in digests[m]}
        if settled and i == settled[0]:
            seen = {**seen, "settle rounds": settled[1]}
        if len(set(seen.values())) > 1:
            return _part(Verdict.INVALID, f"managers hold different stores at applied index {i}: "
                         + ", ".join(f"{m} {d[:16]}" for m, d in sorted(seen.items())), different_at=i,
                         digests_at=seen)
    lo, hi = min(a for a, _ in view.values()), max(a for a, _ in view.values())
    unknown = sorted(m for m in view if lo not in digests[m])
    if unknown:
        return _part(Verdict.UNKNOWN, f"final stores read at applied indexes {lo}..{hi} cannot be compared at "
                     f"{lo}: no apply event at {lo} in the journal of {', '.join(unknown)}", common_index=lo)
    caught_up, behind = {}, []
    for m, (a, _) in sorted(view.items()):
        if a == hi:
            continue
        top = max(digests[m])
        if top >= hi:
            caught_up[m] = f"its journal reaches index {top}"
        elif settled is not None and settled[0] <= a:
            caught_up[m] = f"the settle rounds saw every manager at index {settled[0]}"
        else:
            behind.append((m, a, top))
    if behind:
        return _behind(run, behind, hi, lo, caught_up, settled)
    return _part(Verdict.VALID, f"final stores agree at common index {lo}", common_index=lo, caught_up=caught_up)


def _behind(run, behind: list[tuple], hi: int, lo: int, caught_up: dict, settled: tuple | None) -> dict:
    gaps = [g.message for m, _, _ in behind for g in run.gaps_for([("journal", m)])]
    detail = "; ".join(f"{m} at {a} (journal to {top})" for m, a, top in behind)
    if gaps:
        return _part(Verdict.UNKNOWN, f"cannot tell whether {detail} caught up with index {hi}: its journal is "
                     f"incomplete ({gaps[0]})", common_index=lo, caught_up=caught_up)
    settle = ("the settle rounds never saw every manager agree" if settled is None else
              f"the settle rounds saw every manager at {settled[0]}, above its final index")
    return _part(Verdict.INVALID, f"manager(s) really behind: {detail}, others at {hi}; {settle}",
                 behind={m: a for m, a, _ in behind}, common_index=lo, caught_up=caught_up)


def _members_problems(latest: dict[str, dict], live: set[str], down: set[str] | None = None) -> list[str]:
    """Problems of member tables: a live node not alive, a down node alive. A node that is neither live
    nor known down (its final state is missing) is not judged either way."""
    problems = []
    for n in sorted(latest):
        s = latest[n]
        members = s.get("members") if isinstance(s, dict) else None
        if not isinstance(members, dict):
            problems.append(f"{n}: no member table")
            continue
        for m in sorted(live - {n}):
            state = (members.get(m) or {}).get("state") if isinstance(members.get(m), dict) else None
            if state != "alive":
                problems.append(f"{n} sees live {m} as {state or 'absent'}")
        for m, info in sorted(members.items()):
            if m not in live and (down is None or m in down) and m != n and isinstance(info, dict) \
                    and info.get("state") == "alive":
                problems.append(f"{n} sees non-live {m} as alive")
    eps = {n: s.get("endpoints") for n, s in latest.items() if isinstance(s, dict) and "endpoints" in s}
    if eps and len({repr(sorted(e.items())) if isinstance(e, dict) else repr(e) for e in eps.values()}) > 1:
        problems.append("endpoint tables differ: " + ", ".join(sorted(eps)))
    return problems


def members_settled(statuses: dict[str, Any]) -> bool:
    """Whether the member tables in one round of statuses would pass the `members` part now: the nodes
    that answered (with a member table) see each other alive, see no silent node alive, and hold equal
    endpoint tables. For harnesses that must take the final state only after convergence."""
    live = {n for n, s in statuses.items() if _ok_status(s) and isinstance(s.get("members"), dict)}
    down = {n for n, s in statuses.items() if not _ok_status(s)}
    return bool(live) and not _members_problems({n: statuses[n] for n in live}, live, down)


def check_members(run, heal: float | None, bound: float) -> dict:
    final_status = {n: f.get("status") for n, f in run.finals.items()}
    live = {n for n, s in final_status.items() if _ok_status(s) and isinstance(s.get("members"), dict)}
    if not live:
        return _part(Verdict.UNKNOWN, "nothing to check: no final status with a member table")
    # known down: the final status records that the node did not answer. A node without a final file
    # is neither (the record is missing; run_check makes the check UNKNOWN for it).
    down = {n for n, s in final_status.items() if isinstance(s, dict) and "error" in s}
    final_problems = _members_problems({n: final_status[n] for n in live}, live, down)
    if final_problems:
        return _part(Verdict.INVALID, f"member tables never converged: {final_problems[0]}",
                     live=sorted(live), final_problems=final_problems[:30])
    if heal is None:
        return _part(Verdict.UNKNOWN, "final member tables agree but no heal_ts to time it", live=sorted(live))
    polls = [p for p in _polls_after(run.status, heal) if p.get("node") in live]
    if not polls:
        return _part(Verdict.UNKNOWN, "final member tables agree but no status polls after heal to time it",
                     live=sorted(live))
    t = _first_time(polls, sorted(live), lambda latest: all(_ok_status(s) for s in latest.values())
                    and not _members_problems(latest, live, down))
    if t is None:
        return _part(Verdict.INVALID, "status polls never showed agreeing member tables after heal",
                     live=sorted(live))
    dt = t - heal
    v = Verdict.VALID if dt <= bound else Verdict.INVALID
    return _part(v, f"member tables agreed {dt:.2f} s after heal (bound {bound:g} s)", live=sorted(live),
                 converged_after_s=round(dt, 3))


def _as_items(x: Any, id_field: str) -> list[dict]:
    if isinstance(x, dict):
        return [dict(v, **{id_field: k}) if isinstance(v, dict) else {id_field: k, "value": v} for k, v in x.items()]
    if isinstance(x, list):
        return [v for v in x if isinstance(v, dict)]
    return []


def _task_events(run) -> list[dict]:
    out = []
    for node, evs in run.journals.items():
        out.extend(e for e in evs if e.get("type") == "task")
    return out


def check_services(run, heal: float | None, bound: float) -> dict:
    store = None
    for m in run.managers():
        st = (run.finals.get(m) or {}).get("store")
        if isinstance(st, dict) and "services" in st:
            store = st
            break
    if store is None:
        return _part(Verdict.UNKNOWN, "nothing to check: no final manager store with services")
    services = _as_items(store.get("services"), "name")
    if not services:
        return _part(Verdict.UNKNOWN, "nothing to check: no services in the final store")
    tasks = _as_items(store.get("tasks"), "task")
    running = defaultdict(int)
    for t in tasks:
        if t.get("state") == "running":
            running[t.get("service")] += 1
    short = {s["name"]: {"desired": s.get("replicas"), "running": running.get(s["name"], 0)}
             for s in services if running.get(s["name"], 0) != s.get("replicas")}
    if short:
        return _part(Verdict.INVALID, f"{len(short)} service(s) not at desired replicas: "
                     + ", ".join(f"{n} {v['running']}/{v['desired']}" for n, v in sorted(short.items())),
                     services=short)
    names = {s["name"] for s in services}
    evs = [e for e in _task_events(run) if e.get("service") in names and isinstance(e.get("ts"), (int, float))]
    if heal is None or not evs:
        return _part(Verdict.VALID, f"{len(services)} service(s) at desired replicas (timing not judged: "
                     f"{'no heal_ts' if heal is None else 'no task events'})")
    last = max(e["ts"] for e in evs)
    dt = max(0.0, last - heal)
    v = Verdict.VALID if dt <= bound else Verdict.INVALID
    return _part(v, f"{len(services)} service(s) at desired replicas; last task change {dt:.2f} s after heal "
                    f"(bound {bound:g} s)", settled_after_s=round(dt, 3))


def check_task_order(run) -> dict:
    evs_by_node = {n: [e for e in evs if e.get("type") == "task"] for n, evs in run.journals.items()}
    if not any(evs_by_node.values()):
        return _part(Verdict.UNKNOWN, "nothing to check: no task events")
    backwards = []
    for node, evs in sorted(evs_by_node.items()):
        last: dict = {}
        for e in evs:
            tid, st = (e.get("boot"), e.get("task")), e.get("state")
            rank = TASK_ORDER.get(st)
            if rank is None:
                backwards.append({"node": node, "task": tid[1], "detail": f"unknown task state {st!r}", "event": e})
                continue
            prev = last.get(tid)
            if prev is not None:
                prank = TASK_ORDER[prev.get("state")]
                if rank < prank or (prank == TERMINAL and prev.get("state") != st):
                    backwards.append({"node": node, "task": tid[1],
                                      "detail": f"{node}: task {tid[1]} went {prev.get('state')} -> {st}",
                                      "events": [prev, e]})
            last[tid] = e
    if backwards:
        return _part(Verdict.INVALID, f"{len(backwards)} backward task transition(s); first: "
                     f"{backwards[0]['detail']}", backwards=backwards[:20])
    n = sum(len(v) for v in evs_by_node.values())
    return _part(Verdict.VALID, f"{n} task event(s): states only moved forward")


def _running_at(evs: list[dict], t: float | None) -> dict:
    latest: dict = {}
    for e in evs:
        if t is not None and e.get("ts", 0) > t:
            continue
        latest[(e.get("task"), e.get("worker"))] = e
    return {k: e for k, e in latest.items() if e.get("state") == "running"}


def check_no_double(run, heal: float | None, bound: float) -> dict:
    evs = sorted(_task_events(run), key=lambda e: (e.get("ts", 0), e.get("seq", 0)))
    if not evs:
        return _part(Verdict.UNKNOWN, "nothing to check: no task events")
    points = [("end", None)]
    if heal is not None:
        points.insert(0, (f"heal+{bound:g}s", heal + bound))
    doubles = []
    for label, t in points:
        run_ = _running_at(evs, t)
        by_task, by_slot = defaultdict(set), defaultdict(set)
        for (tid, worker), e in run_.items():
            by_task[tid].add(worker)
            by_slot[(e.get("service"), e.get("slot"))].add(worker if tid is None else (tid, worker))
        for tid, ws in by_task.items():
            if len(ws) > 1:
                doubles.append(f"at {label}: task {tid} running on {', '.join(sorted(map(str, ws)))}")
        for slot, ws in by_slot.items():
            if len(ws) > 1:
                doubles.append(f"at {label}: service {slot[0]} slot {slot[1]} running {len(ws)} times: "
                               + ", ".join(sorted(map(str, ws))))
    if doubles:
        return _part(Verdict.INVALID, doubles[0], doubles=doubles[:20])
    return _part(Verdict.VALID, "no task or slot running twice at " + " and ".join(p for p, _ in points))


@register("convergence", default=True, params=(
    Param("store_bound_s", "float", 30.0, "managers agree on applied index + store digest within this (s after heal)"),
    Param("members_bound_s", "float", 30.0, "gossip member tables agree within this (s after heal)"),
    Param("services_bound_s", "float", 60.0, "services at desired replicas, no task twice, within this (s)"),
    Param("require", "list", ["managers", "members"],
          "parts that must have data (others without data are skipped); '+'-joined on the command line",
          check=lambda v: [x for x in v if x not in PARTS]),
))
def convergence(run, store_bound_s, members_bound_s, services_bound_s, require) -> Outcome:
    """After heal: managers, gossip members and services converge within bounds; task states move forward."""
    heal = run.heal_ts
    parts = {
        "managers": _with_gaps(run, lambda: check_managers(run, heal, store_bound_s), {"status"}),
        "members": _with_gaps(run, lambda: check_members(run, heal, members_bound_s), {"status"}),
        "services": _with_gaps(run, lambda: check_services(run, heal, services_bound_s), set()),
        "task-order": _with_gaps(run, lambda: check_task_order(run), set()),
        "no-double": _with_gaps(run, lambda: check_no_double(run, heal, services_bound_s), {"journal"}),
        "config": _with_gaps(run, lambda: check_config(run), set()),
    }
    evidence = {"heal_ts": heal, "required": list(require), "parts": parts}
    nothing = [n for n, p in parts.items() if p["summary"].startswith("nothing to check")]
    if len(nothing) == len(parts):
        return Outcome(Verdict.UNKNOWN, "nothing to check: no final states, polls or task events", evidence)
    missing = [n for n in nothing if n in require]
    judged = {n: p for n, p in parts.items() if n not in nothing}
    v = Verdict.combine([Verdict(p["verdict"]) for p in judged.values()]
                        + [Verdict.UNKNOWN] * len(missing))
    evidence["not_applicable"] = [n for n in nothing if n not in require]
    if v == Verdict.VALID:
        return Outcome(v, "; ".join(f"{n} ok" for n in judged)
                       + (f" ({', '.join(evidence['not_applicable'])}: no data)" if nothing else ""), evidence)
    bad = [f"{n}: {p['summary']}" for n, p in parts.items() if p["verdict"] == v.value
           and (n in judged or n in missing)]
    # each part's INVALID was already checked against the gaps of what it read (_with_gaps)
    return Outcome(v, "; ".join(bad), evidence, holds_on_partial=True)


def _with_gaps(run, judge, unsound_with: set[str]) -> dict:
    """Judge one part and apply the gaps of the record parts it read: VALID becomes UNKNOWN; INVALID
    too when a gap of a kind in `unsound_with` could explain it (status polls missing: "never agreed"
    may be the record's end; a journal missing: a task's stop may be in it, so "running twice" is not
    shown). Final-state disagreements, member tables, replica counts and backward task steps are facts
    of the records present and stay INVALID."""
    outer = run.touched
    run.touched = set()
    try:
        part = judge()
        gaps = run.gaps_for(run.touched)
    finally:
        run.touched = outer | run.touched
    if not gaps or part["summary"].startswith("nothing to check"):
        return part
    part = {**part, "record_gaps": [g.message for g in gaps[:10]]}
    if part["verdict"] == Verdict.VALID.value:
        part.update(verdict=Verdict.UNKNOWN.value, summary=f"{part['summary']} (record incomplete)")
    elif part["verdict"] == Verdict.INVALID.value:
        why = next((g for g in gaps if g.part[0] in unsound_with), None)
        if why is not None:
            part.update(verdict=Verdict.UNKNOWN.value,
                        summary=f"not judged INVALID ({why.message}): {part['summary']}")
    return part
