"""The `swarm-liveness` checker: the leader marks a silent worker DOWN, and a DOWN worker's tasks are
orphaned and replaced, each within a bound derived from the cluster's settings.

Owns two Swarm contracts, each a part with its own verdict in the evidence (`parts`):

  down     A worker that is certainly silent toward the leader L (the harness killed, stopped or
           paused it, or cut its link to L: faults.jsonl, from the fault's `start` line to its
           `intend-stop` line) is marked DOWN through Raft (a `worker` event with state `down` in L's
           journal, which L writes when it applies the entry) by
               s0 + heartbeat x grace + slack_s,   s0 = max(silence start, L's election),
           provided that L's store knew the worker READY at s0. A DOWN by then is VALID; none by then,
           while the worker stayed silent, L stayed leader and nothing disturbed the managers, is
           INVALID ("never marked" or "marked N s late").
  replace  While a worker is DOWN in the leader's store (from its `down` event to its next `ready`),
           each task the leader's store had live (new / assigned / running) on it at r0 = max(DOWN,
           L's election) ends (orphaned, or another terminal state) and, when the final store still
           wants its slot and another worker was READY, a live task for the same service and slot
           exists on another worker, by r0 + replace_bound_s. Otherwise, while the worker stayed
           DOWN and L leader, INVALID.

Soundness (never INVALID on a correct cluster):
  * Silence is only what the harness certainly did: node faults (kill/stop/pause) on the worker,
    `isolate` of the worker, `one-way` partitions from the worker to L. Latency, bandwidth, flaky
    links and `groups`/`shape` partitions never count as silence (they may let heartbeats through).
  * The bound starts when a leader exists that could hear the worker: L's `role: leader` event; a
    new leader's grace starts at its election (the dispatcher restarts its clock then). A tenure ends
    at L's next role or boot event, where another manager became leader in a higher term, or where
    L's journal ends.
  * An obligation whose window overlaps a disturbance of the managers is not judged: a node fault on
    a manager, a link fault on a manager's links, a partition cutting a link between two managers or
    of unknown shape (`groups`/`shape`), or a fault that errored.
  * A worker back before the deadline (the silence ended, or it is READY again) is not judged.
  * `slack_s` (default 10 s) is the allowance for committing the DOWN entry and for a busy machine
    (the team's 2-core machine runs several clusters at once, load averages of 20-30 were seen; a
    correct leader marks a killed worker DOWN about 2-3 s after the kill). `replace_bound_s` (default
    10 s) likewise; the orchestrator runs every 100 ms. Both stay well inside the shipped faults'
    holds (worker-crash 30 s, worker-cut-from-managers 20 s), so a bug that never acts is still seen.
    Journal and harness clocks are one host's; on several hosts (swarm backend) clock skew adds to
    the slack: raise it there.
  * Gaps: a missing or damaged journal/final/faults record never makes this check VALID (core.py).
    An INVALID stands on a partial record (`holds_on_partial`): it rests only on L's own journal up
    to the deadline (which lies before the journal's last event), and on fault lines written before
    the silence's `intend-stop` line, which a cut-short faults.jsonl still holds.

  rejoin   A worker the harness brought back (a node fault on it -- kill, stop, power-loss, wipe:
           back at the first `boot` event of its own journal after the fault started; or the heal
           of a partition that isolated it: its intend-stop) that is DOWN in leader L's store at b0 = max(back,
           L's election) is READY again in L's store (a `worker` event `ready` in L's journal) by
           b0 + rejoin_bound_s; else, while L stayed leader, the worker was not silenced again and
           nothing disturbed the managers, INVALID. Not a default
           requirement: `require: [down, replace, rejoin]` makes a run without such a case UNKNOWN.

A part with no judged obligation says "nothing to check"; it makes the check UNKNOWN when it is named
in `require` (default down+replace), and is listed as not applicable otherwise. Settings come from
plan.json `cluster.agent_env` (CHAOS_DISPATCHER_HEARTBEAT_MS, CHAOS_DISPATCHER_GRACE), else the
agent's defaults (swarmnode.agent.config), unless the check's parameters set them.
Must not import: click, rich, docker, swarmnode runtime parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chaos.checkers.core import Outcome, Param, Verdict, register

PARTS = ("down", "replace", "rejoin")
NODE_FAULTS = ("kill", "stop", "pause", "power-loss", "wipe")
LIVE = ("new", "assigned", "running")
TERMINAL = ("complete", "failed", "shutdown", "orphaned")
INF = math.inf
MAX_LISTED = 20


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    why: str


@dataclass(frozen=True)
class Tenure:
    leader: str
    term: int
    start: float
    end: float
    ended_by: str


# --- settings ---------------------------------------------------------------------------------


def _agent_default(field: str) -> int:
    from swarmnode.agent.config import AgentConfig  # pure module: the agent's documented defaults
    return AgentConfig.__dataclass_fields__[field].default


def settings(run, heartbeat_ms: float | None, grace: int | None) -> dict:
    """Dispatcher heartbeat (ms) and grace (heartbeats): parameters, else plan.json, else defaults."""
    plan = _plan(run)
    env = (plan.get("cluster") or {}).get("agent_env") if plan else None
    out = {"known": isinstance(env, dict) or (heartbeat_ms is not None and grace is not None)}
    env = env if isinstance(env, dict) else {}
    for key, given, var, field in (("heartbeat_ms", heartbeat_ms, "CHAOS_DISPATCHER_HEARTBEAT_MS",
                                    "dispatcher_heartbeat_ms"),
                                   ("grace", grace, "CHAOS_DISPATCHER_GRACE", "dispatcher_grace")):
        if given is not None:
            out[key], out[f"{key}_from"] = given, "check parameter"
        elif str(env.get(var, "")).strip().isdigit():
            out[key], out[f"{key}_from"] = int(str(env[var]).strip()), f"plan.json {var}"
        else:
            out[key], out[f"{key}_from"] = _agent_default(field), "agent default"
    out["limit_s"] = out["heartbeat_ms"] * out["grace"] / 1000.0
    return out


def _plan(run) -> dict:
    """plan.json as an object; {} when it is absent or damaged (then the settings are not known)."""
    from chaos.errors import RunDirError
    try:
        plan = run.plan()
    except RunDirError:
        return {}
    return plan if isinstance(plan, dict) else {}


# --- what the harness did (faults.jsonl) ------------------------------------------------------


def _flat(targets: Any) -> list[str]:
    out: list[str] = []
    for t in targets or []:
        out.extend(x for x in (t if isinstance(t, list) else [t]) if isinstance(x, str))
    return out


def _by_fault(rows: list[dict]) -> tuple[dict[str, dict[str, dict]], float | None]:
    """fault id -> {action: its first row}; and the final heal's time."""
    out: dict[str, dict[str, dict]] = {}
    heal = None
    for r in rows:
        if r.get("action") == "heal":
            heal = r["ts"] if heal is None else heal
            continue
        out.setdefault(str(r.get("fault")), {}).setdefault(r["action"], r)
    return out, heal


def _selector(acts: dict[str, dict], spec: dict | None) -> dict:
    sel = ((acts.get("intend-start") or {}).get("details") or {}).get("selector")
    return sel if isinstance(sel, dict) else (spec or {})


def _partition_pairs(kind: str, sel: dict, targets: Any, nodes: list[str]) -> set[tuple[str, str]] | None:
    """Directed links certainly cut by a partition fault; None when its shape is not known here."""
    if "isolate" in sel:
        alone = set(_flat(targets))
        return {(a, b) for a in nodes for b in nodes if a != b and (a in alone or b in alone)}
    if "one-way" in sel and isinstance(targets, list) and len(targets) == 2:
        src, dst = _flat([targets[0]]), _flat([targets[1]])
        return {(s, d) for s in src for d in dst if s != d}
    return None


def fault_effects(run, managers: list[str], workers: list[str]) -> tuple[dict, list[Span], list[str]]:
    """(silences {(worker, manager): [Span]}, disturbances of the managers [Span], notes)."""
    acts_by_fault, heal = _by_fault(run.faults)
    specs = {f.get("id"): f.get("spec") for f in _plan(run).get("faults") or [] if isinstance(f, dict)}
    nodes = sorted(set(managers) | set(workers))
    silences: dict[tuple[str, str], list[Span]] = {}
    disturb: list[Span] = []
    notes: list[str] = []
    for fid, acts in sorted(acts_by_fault.items()):
        first = acts.get("intend-start") or acts.get("start") or acts.get("error") or {}
        kind = first.get("kind", "")
        targets = first.get("targets")
        d_start = first.get("ts", INF)
        d_end = (acts.get("stop") or {}).get("ts", heal if heal is not None else INF)
        if "start" not in acts:
            if "error" in acts:
                disturb.append(Span(d_start, d_end, f"{fid} ({kind}: error, effect unknown)"))
            continue
        s_start = acts["start"]["ts"]
        s_end = (acts.get("intend-stop") or {}).get("ts", heal)
        cut = _cut_of(kind, _selector(acts, specs.get(fid)), targets, nodes, managers)
        if cut is None:
            disturb.append(Span(d_start, d_end, f"{fid} ({kind})"))
            continue
        if any(a in managers and b in managers for a, b in cut) or (
                kind not in NODE_FAULTS and kind != "partition" and set(_flat(targets)) & set(managers)):
            disturb.append(Span(d_start, d_end, f"{fid} ({kind} on managers)"))
        if s_end is None:
            notes.append(f"{fid}: no intend-stop or heal line; its silence is not used")
            continue
        for w, m in sorted(cut):
            if w in workers and m in managers:
                silences.setdefault((w, m), []).append(Span(s_start, s_end, fid))
    return {k: merge(v) for k, v in silences.items()}, disturb, notes


def _cut_of(kind: str, sel: dict, targets: Any, nodes: list[str], managers: list[str]):
    """Directed links a fault certainly silences ({} for link toxics); None: unknown shape."""
    if kind in NODE_FAULTS:   # a node down hears nobody and is heard by nobody
        down = set(_flat(targets))
        return {(n, x) for n in down for x in managers if x != n}
    if kind == "partition":
        return _partition_pairs(kind, sel, targets, nodes)
    return set()


def merge(spans: list[Span]) -> list[Span]:
    """Overlapping or touching spans as one (a fault starting before another's intend-stop)."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if s.end <= s.start:
            continue
        if out and s.start <= out[-1].end:
            last = out[-1]
            out[-1] = Span(last.start, max(last.end, s.end), f"{last.why}+{s.why}")
        else:
            out.append(s)
    return out


def disturbed(disturb: list[Span], a: float, b: float) -> Span | None:
    return next((d for d in disturb if d.start < b and d.end > a), None)


# --- what the leader did (its journal) --------------------------------------------------------


def tenures(journals: dict[str, list[dict]]) -> list[Tenure]:
    """Each manager's spells as leader, from its own journal: a `role: leader` event to its next role
    or boot event, or to its journal's last event."""
    out = []
    for m, evs in sorted(journals.items()):
        timed = [e for e in evs if isinstance(e.get("ts"), (int, float))]
        if not timed:
            continue
        open_: tuple[int, float] | None = None
        for e in timed:
            if e.get("type") not in ("role", "boot"):
                continue
            if open_ is not None:
                out.append(Tenure(m, open_[0], open_[1], e["ts"], f"{e['type']} {e.get('role', '')}".strip()))
                open_ = None
            if e.get("type") == "role" and e.get("role") == "leader":
                open_ = (e.get("term", 0), e["ts"])
        if open_ is not None:
            out.append(Tenure(m, open_[0], open_[1], timed[-1]["ts"], "journal ends"))
    return [_cut_by_successor(t, out) for t in out]


def _cut_by_successor(t: Tenure, all_: list[Tenure]) -> Tenure:
    """A tenure also ends where another manager became leader in a higher term: a deposed leader may
    journal its step-down only later (it cannot commit meanwhile)."""
    nxt = min((o for o in all_ if o.leader != t.leader and o.term > t.term and t.start < o.start < t.end),
              key=lambda o: o.start, default=None)
    if nxt is None:
        return t
    return Tenure(t.leader, t.term, t.start, nxt.start, f"{nxt.leader} leader in term {nxt.term}")


def worker_events(evs: list[dict]) -> list[dict]:
    return [e for e in evs if e.get("type") == "worker" and isinstance(e.get("ts"), (int, float))]


def state_at(wevs: list[dict], worker: str, t: float) -> str | None:
    st = None
    for e in wevs:
        if e["ts"] > t:
            break
        if e.get("worker") == worker:
            st = e.get("state")
    return st


def first_event(wevs: list[dict], worker: str, state: str, after: float) -> float | None:
    return next((e["ts"] for e in wevs if e["ts"] > after and e.get("worker") == worker
                 and e.get("state") == state), None)


def _part(verdict: Verdict, summary: str, **evidence) -> dict:
    return {"verdict": verdict.value, "summary": summary, **evidence}


def _num(t: float) -> float | None:
    """A time for the evidence (strict JSON has no infinity: an open end is null)."""
    return t if math.isfinite(t) else None


def _rel(run, t: float) -> str:
    t0 = run.run.get("started")
    return f"t+{t - t0:.2f}s" if isinstance(t0, (int, float)) and math.isfinite(t) else f"{t:.3f}"


# --- down: a silent worker is marked DOWN -----------------------------------------------------


def judge_down(run, t: Tenure, wevs: list[dict], worker: str, sp: Span, limit: float, slack: float,
               disturb: list[Span]) -> dict | None:
    """One obligation: `worker` silent toward leader t.leader over `sp`. None when they do not meet."""
    s0 = max(sp.start, t.start)
    if s0 >= min(sp.end, t.end):
        return None
    deadline = s0 + limit + slack
    ob = {"worker": worker, "leader": t.leader, "term": t.term, "silenced_by": sp.why,
          "silent_from_ts": sp.start, "silent_until_ts": sp.end, "bound_from_ts": s0, "deadline_ts": deadline}
    st = state_at(wevs, worker, s0)
    if st is None:
        return {**ob, "verdict": "skipped", "why": f"{worker} not registered in {t.leader}'s store at {_rel(run, s0)}"}
    if st == "down":
        return {**ob, "verdict": "VALID", "why": f"already DOWN in {t.leader}'s store at {_rel(run, s0)}"}
    td = first_event(wevs, worker, "down", s0)
    ob["marked_down_ts"] = td
    if td is not None and td <= deadline:
        return {**ob, "verdict": "VALID", "after_silence_s": round(td - sp.start, 3),
                "why": f"marked DOWN {td - sp.start:.2f} s after it went silent (bound "
                       f"{deadline - sp.start:.2f} s)"}
    not_judged = _why_not(run, t, sp.end, "the worker was heard again", deadline, disturb, s0)
    if not_judged:
        return {**ob, "verdict": "skipped", "why": not_judged}
    late = f"marked DOWN only at {_rel(run, td)}, {td - deadline:.2f} s late" if td is not None else \
        f"never marked DOWN while {t.leader} led (to {_rel(run, t.end)}, {t.ended_by})"
    ob["leader_journal"] = {"state_at_deadline": state_at(wevs, worker, deadline),
                            "state_at_tenure_end": state_at(wevs, worker, t.end),
                            "worker_events": [[e["ts"], e.get("state")] for e in wevs
                                              if e.get("worker") == worker][-MAX_LISTED:]}
    return {**ob, "verdict": "INVALID",
            "why": f"{worker} silent toward leader {t.leader} (term {t.term}) from {_rel(run, sp.start)} "
                   f"({sp.why}) and READY in its store at {_rel(run, s0)}: due DOWN by {_rel(run, deadline)} "
                   f"(heartbeat x grace {limit:g} s + slack {slack:g} s), {late}"}


def _why_not(run, t: Tenure, back: float, back_what: str, deadline: float, disturb: list[Span],
             start: float) -> str | None:
    """Why an unmet obligation is not judged (None: it is judged)."""
    if back < deadline:
        return f"{back_what} at {_rel(run, back)}, before the deadline {_rel(run, deadline)}"
    if t.end < deadline:
        return f"{t.leader} stopped leading ({t.ended_by}) at {_rel(run, t.end)}, before the deadline"
    d = disturbed(disturb, start, deadline)
    if d is not None:
        return f"the managers were disturbed by {d.why} during the window"
    return None


def down_part(run, journals, tens: list[Tenure], silences: dict, disturb: list[Span], cfg: dict,
              slack: float) -> dict:
    obs = []
    for t in tens:
        wevs = worker_events(journals.get(t.leader, []))
        for (w, m), spans in sorted(silences.items()):
            if m == t.leader:
                obs += [o for o in (judge_down(run, t, wevs, w, sp, cfg["limit_s"], slack, disturb)
                                    for sp in spans) if o is not None]
    return _summarise(obs, "silent worker(s) marked DOWN in time",
                      "no worker silent toward a leader long enough to judge")


# --- rejoin: a worker back from a fault is READY again ----------------------------------------


def returns(run, workers: list[str]) -> list[tuple[str, float, str]]:
    """(worker, back_ts, fault) for every fault that silenced a worker and has a `stop` line: after a
    node fault, back when the worker's agent started again (the first `boot` event of its own journal
    after the fault's start: it can heartbeat from then on); after a partition, its intend-stop."""
    acts_by_fault, _heal = _by_fault(run.faults)
    wj = run.journals_of(workers)
    specs = {f.get("id"): f.get("spec") for f in _plan(run).get("faults") or [] if isinstance(f, dict)}
    out = []
    for fid, acts in sorted(acts_by_fault.items()):
        if "start" not in acts or "stop" not in acts or acts["stop"].get("aborted"):
            continue
        kind, targets = acts["start"].get("kind", ""), acts["start"].get("targets")
        if kind in NODE_FAULTS and kind != "pause":
            for n in _flat(targets):
                boot = next((e["ts"] for e in wj.get(n) or [] if e.get("type") == "boot"
                             and isinstance(e.get("ts"), (int, float)) and e["ts"] > acts["start"]["ts"]), None)
                if n in workers and boot is not None:
                    out.append((n, boot, fid))
        elif kind == "partition" and "isolate" in _selector(acts, specs.get(fid)):
            back = (acts.get("intend-stop") or acts["stop"])["ts"]
            out += [(n, back, fid) for n in _flat(targets) if n in workers]
    return out


def judge_rejoin(run, t: Tenure, wevs: list[dict], worker: str, back: float, fid: str, bound: float,
                 silences: dict, disturb: list[Span]) -> dict | None:
    b0 = max(back, t.start)   # a leader elected after the worker was back owes it from its election
    if b0 >= t.end:
        return None
    deadline = b0 + bound
    ob = {"worker": worker, "leader": t.leader, "term": t.term, "back_by": fid, "back_ts": back,
          "bound_from_ts": b0, "deadline_ts": deadline}
    if state_at(wevs, worker, b0) != "down":
        return None   # not DOWN in this leader's store: nothing to re-register
    ready = first_event(wevs, worker, "ready", b0)
    ob["ready_ts"] = ready
    if ready is not None and ready <= deadline:
        return {**ob, "verdict": "VALID", "why": f"READY again {ready - back:.2f} s after it was back"}
    again = min((sp.start for (w, _m), spans in silences.items() if w == worker for sp in spans
                 if back < sp.start < deadline), default=INF)
    not_judged = _why_not(run, t, again, "the worker was silenced again", deadline, disturb, back)
    if not_judged:
        return {**ob, "verdict": "skipped", "why": not_judged}
    late = f"READY only at {_rel(run, ready)}, {ready - deadline:.2f} s late" if ready is not None else \
        f"never READY again while {t.leader} led (to {_rel(run, t.end)}, {t.ended_by})"
    return {**ob, "verdict": "INVALID",
            "why": f"{worker} back at {_rel(run, back)} after {fid} and DOWN in leader {t.leader}'s store "
                   f"(term {t.term}): due READY by {_rel(run, deadline)} (bound {bound:g} s), {late}"}


def rejoin_part(run, journals, tens: list[Tenure], workers: list[str], silences: dict, disturb: list[Span],
                bound: float) -> dict:
    obs = []
    backs = returns(run, workers)
    for t in tens:
        wevs = worker_events(journals.get(t.leader, []))
        for w, back, fid in backs:
            o = judge_rejoin(run, t, wevs, w, back, fid, bound, silences, disturb)
            if o is not None:
                obs.append(o)
    return _summarise(obs, "worker(s) back from a fault READY again in time",
                      "no worker came back DOWN under a leader")


# --- replace: a DOWN worker's tasks end and are replaced --------------------------------------


def down_spells(wevs: list[dict], worker: str) -> list[tuple[float, float]]:
    """(DOWN applied, READY again or inf) spells of `worker` in one manager's store."""
    out, since = [], None
    for e in wevs:
        if e.get("worker") != worker:
            continue
        if e.get("state") == "down" and since is None:
            since = e["ts"]
        elif e.get("state") == "ready" and since is not None:
            out.append((since, e["ts"]))
            since = None
    if since is not None:
        out.append((since, INF))
    return out


def task_states_at(tevs: list[dict], t: float) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for e in tevs:
        if e["ts"] > t:
            break
        latest[e.get("task")] = e
    return latest


def replaced_at(tevs: list[dict], svc: Any, slot: Any, worker: str, r0: float) -> float | None:
    """First time from r0 on at which a task of (svc, slot) is live on a worker other than `worker`."""
    def live_elsewhere(latest):
        return any(e.get("service") == svc and e.get("slot") == slot and e.get("worker") != worker
                   and e.get("state") in LIVE for e in latest.values())
    latest = task_states_at(tevs, r0)
    if live_elsewhere(latest):
        return r0
    for e in tevs:
        if e["ts"] <= r0:
            continue
        latest[e.get("task")] = e
        if live_elsewhere(latest):
            return e["ts"]
    return None


def judge_task(run, t: Tenure, ctx: dict, tid: str, ev: dict, spell: tuple[float, float], r0: float) -> dict:
    w, bound, tevs, wevs = ctx["worker"], ctx["bound"], ctx["tevs"], ctx["wevs"]
    deadline = r0 + bound
    svc, slot = ev.get("service"), ev.get("slot")
    ob = {"worker": w, "leader": t.leader, "term": t.term, "task": tid, "service": svc, "slot": slot,
          "down_ts": spell[0], "bound_from_ts": r0, "deadline_ts": deadline}
    ended = next((e["ts"] for e in tevs if e["ts"] > r0 and e.get("task") == tid
                  and e.get("state") in TERMINAL), None)
    desired = ctx["replicas"].get(svc) if ctx["replicas"] is not None else None
    others = [x for x in ctx["workers"] if x != w and state_at(wevs, x, r0) == "ready"
              and (first_event(wevs, x, "down", r0) or INF) > deadline]
    need = isinstance(desired, int) and isinstance(slot, int) and slot < desired and bool(others)
    repl = replaced_at(tevs, svc, slot, w, r0) if need else None
    ob.update(ended_ts=ended, replacement_needed=need, replaced_ts=repl, ready_elsewhere=others,
              desired_replicas=desired)
    if ended is not None and ended <= deadline and (not need or (repl is not None and repl <= deadline)):
        return {**ob, "verdict": "VALID", "why": f"{tid} ended {ended - r0:.2f} s after {w} was DOWN"
                + (f", replaced {repl - r0:.2f} s after" if need else " (no replacement due)")}
    not_judged = _why_not(run, t, spell[1], f"{w} READY again", deadline, ctx["disturb"], r0)
    if not_judged:
        return {**ob, "verdict": "skipped", "why": not_judged}
    missing = []
    if ended is None or ended > deadline:
        missing.append("still live (not orphaned)" if ended is None else f"ended only {ended - deadline:.2f} s late")
    if need and (repl is None or repl > deadline):
        missing.append("no replacement on " + "/".join(others) if repl is None
                       else f"replaced only {repl - deadline:.2f} s late")
    return {**ob, "verdict": "INVALID",
            "why": f"{w} DOWN in leader {t.leader}'s store (term {t.term}) from {_rel(run, spell[0])}; its task "
                   f"{tid} ({svc} slot {slot}) by {_rel(run, deadline)} (bound {bound:g} s): "
                   + "; ".join(missing)}


def replace_part(run, journals, tens: list[Tenure], workers: list[str], disturb: list[Span],
                 replicas: dict | None, bound: float) -> dict:
    obs = []
    for t in tens:
        evs = journals.get(t.leader, [])
        wevs = worker_events(evs)
        tevs = [e for e in evs if e.get("type") == "task" and isinstance(e.get("ts"), (int, float))]
        for w in workers:
            ctx = {"worker": w, "bound": bound, "tevs": tevs, "wevs": wevs, "replicas": replicas,
                   "workers": workers, "disturb": disturb}
            for spell in down_spells(wevs, w):
                r0 = max(spell[0], t.start)
                if r0 >= min(spell[1], t.end):
                    continue
                live = {tid: e for tid, e in task_states_at(tevs, r0).items()
                        if e.get("worker") == w and e.get("state") in LIVE}
                obs += [judge_task(run, t, ctx, tid, e, spell, r0) for tid, e in sorted(live.items())]
    return _summarise(obs, "task(s) of DOWN workers ended and replaced in time",
                      "no DOWN worker with live tasks under a leader")


def final_replicas(run, managers: list[str]) -> dict | None:
    for m in managers:
        st = (run.finals_of([m]).get(m) or {}).get("store")
        if isinstance(st, dict) and isinstance(st.get("services"), dict):
            return {n: (s or {}).get("replicas") for n, s in st["services"].items() if isinstance(s, dict)}
    return None


def _summarise(obs: list[dict], ok_what: str, none_what: str) -> dict:
    judged = [o for o in obs if o["verdict"] != "skipped"]
    skipped = [o for o in obs if o["verdict"] == "skipped"]
    bad = [o for o in judged if o["verdict"] == "INVALID"]
    ev = {"judged": judged[:MAX_LISTED], "not_judged": skipped[:MAX_LISTED], "judged_n": len(judged),
          "not_judged_n": len(skipped)}
    if bad:
        return _part(Verdict.INVALID, f"{len(bad)} violation(s); first: {bad[0]['why']}", **ev)
    if not judged:
        first = f" ({skipped[0]['why']})" if skipped else ""
        return _part(Verdict.UNKNOWN, f"nothing to check: {none_what}{first}", **ev)
    return _part(Verdict.VALID, f"{len(judged)} {ok_what}", **ev)


# --- the check --------------------------------------------------------------------------------


@register("swarm-liveness", params=(
    Param("heartbeat_ms", "float?", None, "worker heartbeat period in ms (default: plan.json "
          "CHAOS_DISPATCHER_HEARTBEAT_MS, else the agent's default)"),
    Param("grace", "float?", None, "missed heartbeats before DOWN (default: plan.json CHAOS_DISPATCHER_GRACE, "
          "else the agent's default)"),
    Param("slack_s", "float", 10.0, "allowance on top of heartbeat x grace for committing the DOWN and for a "
          "busy machine (s)"),
    Param("replace_bound_s", "float", 10.0, "a DOWN worker's live tasks end and are replaced within this (s)"),
    Param("rejoin_bound_s", "float", 20.0, "a worker back from a fault (its agent started), DOWN in the "
          "leader's store, is READY again within this (s; its start-up and first heartbeats included: "
          "seconds on a starved machine)"),
    Param("require", "list", ["down", "replace"],
          "parts that must have a judged case (others without one are skipped); '+'-joined on the command line",
          check=lambda v: [x for x in v if x not in PARTS]),
))
def swarm_liveness(run, heartbeat_ms, grace, slack_s, replace_bound_s, rejoin_bound_s, require) -> Outcome:
    """The leader marks a silent worker DOWN, and a DOWN worker's tasks are replaced, within bounds."""
    cfg = settings(run, heartbeat_ms, grace)
    managers, workers = run.managers(), run.workers()
    journals = run.journals_of(managers)
    silences, disturb, notes = fault_effects(run, managers, workers)
    tens = tenures(journals)
    parts = {"down": down_part(run, journals, tens, silences, disturb, cfg, slack_s),
             "replace": replace_part(run, journals, tens, workers, disturb,
                                     final_replicas(run, managers), replace_bound_s),
             "rejoin": rejoin_part(run, journals, tens, workers, silences, disturb, rejoin_bound_s)}
    evidence = {"settings": {**cfg, "slack_s": slack_s, "replace_bound_s": replace_bound_s,
                             "rejoin_bound_s": rejoin_bound_s},
                "required": list(require), "parts": parts,
                "leaders": [{"leader": t.leader, "term": t.term, "from_ts": t.start, "to_ts": t.end,
                             "ended_by": t.ended_by} for t in tens][:MAX_LISTED],
                "silences": {f"{w}->{m}": [[s.start, s.end, s.why] for s in v] for (w, m), v in silences.items()},
                "disturbances": [[_num(d.start), _num(d.end), d.why] for d in disturb][:MAX_LISTED],
                "notes": notes}
    nothing = [n for n, p in parts.items() if p["summary"].startswith("nothing to check")]
    if len(nothing) == len(parts):
        return Outcome(Verdict.UNKNOWN, "nothing to check: " + "; ".join(
            f"{n}: {parts[n]['summary'].removeprefix('nothing to check: ')}" for n in nothing), evidence)
    missing = [n for n in nothing if n in require]
    v = Verdict.combine([Verdict(parts[n]["verdict"]) for n in parts if n not in nothing]
                        + [Verdict.UNKNOWN] * len(missing))
    evidence["not_applicable"] = [n for n in nothing if n not in require]
    shown = [n for n in parts if parts[n]["verdict"] == v.value and (n not in nothing or n in missing)]
    summary = "; ".join(f"{n}: {parts[n]['summary']}" for n in shown)
    if v == Verdict.VALID and evidence["not_applicable"]:
        summary += f" ({', '.join(evidence['not_applicable'])}: nothing to check)"
    if v == Verdict.INVALID and not cfg["known"]:
        return Outcome(Verdict.UNKNOWN, "not judged INVALID: the dispatcher settings are not on record (no "
                       "usable plan.json cluster.agent_env; give heartbeat_ms and grace): " + summary, evidence)
    # INVALID rests on the leader's own journal up to the deadline and on the fault lines before the
    # silence's end: no missing record explains it away (module docstring)
    return Outcome(v, summary, evidence, holds_on_partial=True)
