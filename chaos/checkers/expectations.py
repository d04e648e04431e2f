"""The `expectations` checker (anti-vacuity): named events must have been observed at least once.

A run whose faults had no visible effect proves nothing, so an expectation never observed is UNKNOWN
(inconclusive), never INVALID and never VALID. Expectations (the `expect` parameter, '+'-joined on
the command line, a list in plan.json):

  leader-changed               leaders in at least two terms (journal role events), or two leaders
                               seen by the status polls
  node-restarted               a journal event with boot > 1
  member-suspected             a journal `member` event with state suspect (member-dead: state dead)
  ops-failed-in-phase:<phase>  an operation invoked in that run.json phase, or while the fault of that
                               name was in effect (faults.jsonl start..stop), that failed for want of
                               the cluster: `info` (timeout, connection lost, no answer) or `fail` with
                               a cluster error (no-leader, not-leader, unavailable, timeout, busy,
                               lost). A served, definite refusal (cas-mismatch, exists, not-found,
                               bad-request, ...) is an answer, not a failure: it never counts, nor
                               does an operation the history left without a completion
  ops-disturbed-in-phase:<phase>  as ops-failed-in-phase, or an operation of that phase that needed
                               more than one attempt (a node could not serve it: no leader, not the
                               leader, unavailable, refused connection; the client tried again
                               elsewhere and may have succeeded). For faults whose effect a client
                               that retries can hide (a leader killed, a minority cut off)
  ops-ok-in-phase:<phase>      an ok operation invoked in that phase
  fault-applied:<kind>         a faults.jsonl `start` record of that kind
  fault-effective:<fault>      evidence that the fault of that name took effect, not only started
                               (chaos.fault_effect; an `effect` object with effective: true on its
                               faults.jsonl start or stop record): a partition's verification probes
                               showed its cut; a node fault's targets stopped answering, or booted
                               again; a link fault's probes were delayed / dropped by the toxic, or
                               carried through links listing it. A repeated fault `f` (`f.1`, `f.2`)
                               or a random block `r1` (`r1-1`, ...) is observed when any occurrence is.
                               `sham` records (a control run) never count
  until-met:<fault>            the `until` condition of the fault of that name became true before
                               its `max` (its faults.jsonl `stop` record's details.until.met): e.g.
                               a worker killed `until: replicas-restored` had its tasks replaced

Each expectation must be met by a fault's effect, never by an outcome the workload produces without
any fault: `chaos run --control` (faults logged as `sham`, never applied) must leave every shipped
experiment inconclusive.

Must not import: click, rich, docker.
"""

from __future__ import annotations

import re

from chaos.checkers.core import Outcome, Param, Verdict, register

SIMPLE = ("leader-changed", "node-restarted", "member-suspected", "member-dead")
PARAMETERIZED = ("ops-failed-in-phase", "ops-disturbed-in-phase", "ops-ok-in-phase", "fault-applied",
                 "fault-effective", "until-met")
PHASE_EXPECTATIONS = ("ops-failed-in-phase", "ops-disturbed-in-phase", "ops-ok-in-phase")

# error codes of a `fail` that mean the cluster could not serve the operation (node_image/swarmnode/agent
# manager.py and node.py; chaos/workload.py RETRY_CODES): anything else is a served, definite answer
CLUSTER_ERRORS = ("no-leader", "not-leader", "unavailable", "timeout", "busy", "lost")
# error codes of a served refusal: never a failure for want of the cluster, also when recorded as `info`
# (a refusal after a retried attempt that may have applied)
SERVED_REFUSALS = ("cas-mismatch", "exists", "not-found", "bad-request", "stale-seq")


def _bad_expectations(items: list[str]) -> list[str]:
    bad = []
    for it in items:
        name, sep, arg = it.partition(":")
        if name in SIMPLE and not sep:
            continue
        if name in PARAMETERIZED and arg:
            continue
        bad.append(it)
    return bad


def _observe(run, exp: str) -> tuple[bool, str]:
    name, _, arg = exp.partition(":")
    journals = run.journals
    if name == "leader-changed":
        terms = {(e.get("term"), e.get("node")) for evs in journals.values() for e in evs
                 if e.get("type") == "role" and e.get("role") == "leader"}
        if len(terms) >= 2:
            return True, f"leaders: {sorted(terms, key=str)[:5]}"
        seen = {s["status"].get("leader") for s in run.status
                if isinstance(s.get("status"), dict) and s["status"].get("leader")}
        return len(seen) >= 2, f"status polls saw leaders {sorted(seen)}"
    if name == "node-restarted":
        hit = next((e for evs in journals.values() for e in evs if (e.get("boot") or 1) > 1), None)
        return hit is not None, f"{hit.get('node')} boot {hit.get('boot')}" if hit else "no boot > 1"
    if name in ("member-suspected", "member-dead"):
        want = "suspect" if name == "member-suspected" else "dead"
        hit = next((e for evs in journals.values() for e in evs
                    if e.get("type") == "member" and e.get("state") == want), None)
        return hit is not None, (f"{hit.get('node')} marked {hit.get('member')} {want}" if hit
                                 else f"no member event with state {want}")
    if name in PHASE_EXPECTATIONS:
        ph = next((p for p in run.phases if p.get("name") == arg), None) or _fault_window(run, arg)
        if ph is None:
            return False, f"no phase or fault named {arg!r} in run.json / faults.jsonl"
        start, end = ph.get("start", float("-inf")), ph.get("end", float("inf"))
        start = float("-inf") if start is None else start
        end = float("inf") if end is None else end
        inside = [op for op in run.ops if op.invoke_ts is not None and start <= op.invoke_ts < end]
        if name == "ops-ok-in-phase":
            n = sum(1 for op in inside if op.type == "ok")
            return n > 0, f"{n} ok operation(s) in phase {arg}"
        failed, detail = _failed_for_want_of_cluster(inside, arg)
        if name == "ops-failed-in-phase":
            return failed, detail
        retried = [op for op in inside if op.attempts > 1 and not failed_for_want_of_cluster(op)]
        return failed or bool(retried), f"{detail}; {len(retried)} more needed a second attempt elsewhere"
    if name == "fault-applied":
        n = sum(1 for f in run.faults if f.get("action") == "start" and f.get("kind") == arg)
        return n > 0, f"{n} {arg} fault start(s)"
    if name == "fault-effective":
        return _effective(run, arg)
    if name == "until-met":
        stops = [f for f in run.faults if f.get("action") == "stop"
                 and (f.get("fault") == arg or str(f.get("fault", "")).startswith(arg + "."))]
        untils = [(f.get("details") or {}).get("until") for f in stops]
        untils = [u for u in untils if isinstance(u, dict)]
        if not untils:
            return False, f"no stop record of fault {arg!r} with an until condition"
        met = [u for u in untils if u.get("met") is True]
        if len(met) == len(untils):
            return True, f"{arg}: {met[0].get('condition')} met after {met[0].get('after_s')} s"
        u = next(u for u in untils if u.get("met") is not True)
        return False, f"{arg}: {u.get('condition')} not met within {u.get('max_s')} s ({u.get('detail')})"
    raise AssertionError(exp)


def _error_code(op) -> str:
    return str(op.error or "").split(" ", 1)[0]


def failed_for_want_of_cluster(op) -> bool:
    """An `info` (timeout, connection lost) that is not a served refusal, or a `fail` with a cluster
    error. An operation the history left without a completion is not evidence of anything."""
    if op.type == "info":
        return op.complete_index is not None and _error_code(op) not in SERVED_REFUSALS
    return op.type == "fail" and _error_code(op) in CLUSTER_ERRORS


def _failed_for_want_of_cluster(ops: list, phase: str) -> tuple[bool, str]:
    hits = [op for op in ops if failed_for_want_of_cluster(op)]
    refused = sum(1 for op in ops if op.type in ("fail", "info") and not failed_for_want_of_cluster(op))
    codes: dict[str, int] = {}
    for op in hits:
        codes[_error_code(op) or op.type] = codes.get(_error_code(op) or op.type, 0) + 1
    detail = (f"{len(hits)} operation(s) in phase {phase} failed for want of the cluster "
              f"({', '.join(f'{k} {v}' for k, v in sorted(codes.items())) or 'none'}); "
              f"{refused} served refusal(s) or unfinished operation(s) not counted")
    return bool(hits), detail


def _occurrences(rows: list, fault: str) -> list:
    """The rows of fault `fault`: itself, its repeats `fault.N`, the faults `fault-N` of a random block."""
    pat = re.compile(re.escape(fault) + r"(\.\d+|-\d+)?")
    return [r for r in rows if isinstance(r, dict) and pat.fullmatch(str(r.get("fault", "")))]


def _effective(run, fault: str) -> tuple[bool, str]:
    rows = [r for r in _occurrences(run.faults, fault) if r.get("action") in ("start", "stop")]
    starts = [r for r in rows if r.get("action") == "start"]
    if not starts:
        shams = [r for r in _occurrences(run.faults, fault) if r.get("action") == "sham"]
        why = "only sham records (a control run: never applied)" if shams else "no start record"
        return False, f"{fault}: {why}"
    effects = {}
    for r in rows:
        eff = r.get("effect")
        if isinstance(eff, dict):
            effects.setdefault(str(r.get("fault")), []).append(eff)
    good = sorted(f for f, es in effects.items() if any(e.get("effective") is True for e in es))
    if good:
        first = next(e for e in effects[good[0]] if e.get("effective") is True)
        return True, (f"{fault}: {len(good)} of {len(starts)} occurrence(s) took effect "
                      f"({good[0]}: {first.get('why')})")
    why = next((e.get("why") for es in effects.values() for e in es if e.get("why")), None)
    return False, f"{fault}: {len(starts)} start(s), no evidence it took effect ({why or 'no effect recorded'})"


def _fault_window(run, fault: str) -> dict | None:
    """A fault's window from faults.jsonl: from its first start (in effect) to its last stop; a
    repeated fault `f` also matches its occurrences `f.1`, `f.2`, ..."""
    rows = [r for r in run.faults if r.get("fault") == fault or str(r.get("fault", "")).startswith(fault + ".")]
    starts = [r["ts"] for r in rows if r.get("action") == "start" and isinstance(r.get("ts"), (int, float))]
    stops = [r["ts"] for r in rows if r.get("action") == "stop" and isinstance(r.get("ts"), (int, float))]
    if not starts:
        return None
    return {"name": fault, "start": min(starts), "end": max(stops) if stops else None}


@register("expectations", params=(
    Param("expect", "list", [], "events that must be observed at least once ('+'-joined): "
          + ", ".join(SIMPLE) + ", " + ", ".join(p + ":<arg>" for p in PARAMETERIZED),
          check=_bad_expectations),
))
def expectations(run, expect) -> Outcome:
    """Each named event was observed at least once; otherwise the run is inconclusive (UNKNOWN)."""
    if not expect:
        return Outcome.nothing("no expectations given (parameter expect)")
    results = {}
    for exp in expect:
        seen, detail = _observe(run, exp)
        results[exp] = {"observed": seen, "detail": detail}
    missing = [e for e, r in results.items() if not r["observed"]]
    evidence = {"expectations": results, "never_observed": missing}
    if missing:
        return Outcome(Verdict.UNKNOWN, f"never observed: {', '.join(missing)}", evidence)
    return Outcome(Verdict.VALID, f"all {len(expect)} expectation(s) observed", evidence)
