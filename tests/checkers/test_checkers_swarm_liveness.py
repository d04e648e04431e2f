"""swarm-liveness: a silent worker is marked DOWN, and a DOWN worker's tasks are replaced, in bounds.

Synthetic runs after worker-crash: m1 leads term 1 from T0+1; w1..w3 READY at T0+2 and each runs
one task of `web` (3 replicas); the harness kills w2 at T0+10 (start line) and restarts it at T0+14
(intend-stop); m1 applies `worker w2 down` at T0+12.5, orphans web.1.1 and runs its replacement on
w1 at T0+12.6; w2 is READY again at T0+15. Bounds: heartbeat 1 s x grace 3 + slack 5 s (the tests
give slack_s=5 and replace_bound_s=5; the shipped defaults are 10 s each).
"""

from __future__ import annotations

import json

from chaos.checkers import Verdict, run_checks

from .builder import T0, RunBuilder

MANAGERS = ("m1", "m2", "m3")
WORKERS = ("w1", "w2", "w3")


def _all(b, type_, ts, **fields):
    for m in MANAGERS:
        b.j(m, type_, ts=ts + (0.01 if m != "m1" else 0), **fields)


def _task(b, ts, task, slot, worker, state):
    _all(b, "task", ts, task=task, service="web", slot=slot, worker=worker, state=state)


def crash_run(path, *, down_at=12.5, replace=True, back_at=14.0, ready_again=15.0, end=30.0) -> RunBuilder:
    b = RunBuilder(path)
    b.run.update(heal_ts=T0 + max(back_at, 14) + 0.5)
    b.plan = {"cluster": {"agent_env": {}}, "checks": ["swarm-liveness"]}
    for n in MANAGERS:
        b.node(n, "manager")
        b.j(n, "boot", ts=T0)
    for n in WORKERS:
        b.node(n, "worker")
        b.j(n, "boot", ts=T0)
    b.j("m1", "role", ts=T0 + 1, role="leader", term=1)
    for m in ("m2", "m3"):
        b.j(m, "role", ts=T0 + 1, role="follower", term=1)
    for w in WORKERS:
        _all(b, "worker", T0 + 2, worker=w, state="ready")
    for slot, w in enumerate(WORKERS):
        _task(b, T0 + 3, f"web.{slot}.1", slot, w, "assigned")
        _task(b, T0 + 3.1, f"web.{slot}.1", slot, w, "running")
    if down_at is not None:
        _all(b, "worker", T0 + down_at, worker="w2", state="down")
        if replace:
            _task(b, T0 + down_at + 0.1, "web.1.1", 1, "w2", "orphaned")
            _task(b, T0 + down_at + 0.1, "web.1.2", 1, "w1", "assigned")
            _task(b, T0 + down_at + 0.2, "web.1.2", 1, "w1", "running")
        if ready_again is not None:
            _all(b, "worker", T0 + ready_again, worker="w2", state="ready")
    _all(b, "commit", T0 + end, index=99)   # the journals go on until the end of the run
    b.faults += [
        {"ts": T0 + 9.9, "fault": "crash", "action": "intend-start", "kind": "kill", "targets": ["w2"],
         "details": {"selector": {"target": {"role": "workers", "count": 1}}}},
        {"ts": T0 + 10, "fault": "crash", "action": "start", "kind": "kill", "targets": ["w2"], "details": {}},
        {"ts": T0 + back_at, "fault": "crash", "action": "intend-stop", "kind": "kill", "targets": ["w2"],
         "details": {}},
        {"ts": T0 + back_at + 0.4, "fault": "crash", "action": "stop", "kind": "kill", "targets": ["w2"],
         "details": {}},
        {"ts": T0 + back_at + 0.5, "fault": "heal", "action": "heal", "kind": "heal", "targets": [], "details": {}},
    ]
    tasks = {"web.0.1": ("w1", 0), "web.1.2": ("w1", 1), "web.2.1": ("w3", 2)}
    store = {"applied_index": 99, "store_digest": "d", "kv": {}, "services": {"web": {"replicas": 3}},
             "nodes": {w: {"state": "ready", "role": "worker"} for w in WORKERS},
             "tasks": {t: {"service": "web", "slot": s, "worker": w, "state": "running"} for t, (w, s) in tasks.items()}}
    for m in MANAGERS:
        b.finals[m] = {"status": {"node": m, "kind": "manager"}, "store": json.loads(json.dumps(store))}
    for w in WORKERS:
        b.finals[w] = {"status": {"node": w, "kind": "worker"}}
    return b


BOUNDS = "slack_s=5,replace_bound_s=5"


def _judge(b, spec="swarm-liveness"):
    spec = spec + ("," if ":" in spec else ":") + BOUNDS if "slack_s" not in spec else spec
    return run_checks(b.write(), [spec]).checks[0]


def _part(c, name):
    return c.evidence["parts"][name]


def _drop(b, pred):
    for m in MANAGERS:
        b.journals[m] = [e for e in b.journals[m] if not pred(e)]


def test_swarm_liveness_correct_crash_valid(tmp_path):
    c = _judge(crash_run(tmp_path / "run"))
    assert c.verdict == Verdict.VALID, c.summary
    down = _part(c, "down")["judged"]
    assert [(o["worker"], o["leader"], o["verdict"]) for o in down] == [("w2", "m1", "VALID")]
    assert down[0]["after_silence_s"] == 2.5 and down[0]["deadline_ts"] == T0 + 18
    rep = _part(c, "replace")["judged"]
    assert [(o["task"], o["verdict"], o["replacement_needed"]) for o in rep] == [("web.1.1", "VALID", True)]


def test_swarm_liveness_never_marked_down_invalid(tmp_path):
    """dispatcher_never_down: w2 silent for 20 s, m1 leads throughout, no DOWN in any journal."""
    c = _judge(crash_run(tmp_path / "run", down_at=None, back_at=30, end=35))
    assert c.verdict == Verdict.INVALID
    bad = _part(c, "down")["judged"][0]
    assert bad["verdict"] == "INVALID" and bad["worker"] == "w2" and bad["leader"] == "m1"
    assert bad["silent_from_ts"] == T0 + 10 and bad["deadline_ts"] == T0 + 18 and bad["marked_down_ts"] is None
    assert "never marked DOWN" in c.summary and "crash" in c.summary
    assert bad["leader_journal"]["state_at_deadline"] == "ready"
    assert bad["leader_journal"]["worker_events"] == [[T0 + 2, "ready"]]


def test_swarm_liveness_marked_down_late_invalid(tmp_path):
    c = _judge(crash_run(tmp_path / "run", down_at=19.5, back_at=25, ready_again=26))
    assert c.verdict == Verdict.INVALID
    bad = _part(c, "down")["judged"][0]
    assert bad["verdict"] == "INVALID" and "1.50 s late" in bad["why"]
    # the same run with a slack that covers it is VALID
    assert _judge(crash_run(tmp_path / "run2", down_at=19.5, back_at=25, ready_again=26),
                  "swarm-liveness:slack_s=7").verdict == Verdict.VALID


def test_swarm_liveness_tasks_not_replaced_invalid(tmp_path):
    """orchestrator_no_replace: w2 DOWN from T0+12.5 until T0+26, web.1.1 never orphaned or replaced."""
    c = _judge(crash_run(tmp_path / "run", replace=False, back_at=25, ready_again=26))
    assert c.verdict == Verdict.INVALID
    assert _part(c, "down")["verdict"] == "VALID"
    bad = _part(c, "replace")["judged"][0]
    assert bad["verdict"] == "INVALID" and bad["task"] == "web.1.1" and bad["ended_ts"] is None
    assert "still live (not orphaned)" in bad["why"] and "no replacement on w1/w3" in bad["why"]


def test_swarm_liveness_orphaned_but_not_replaced_invalid(tmp_path):
    b = crash_run(tmp_path / "run", back_at=25, ready_again=26)
    _drop(b, lambda e: e.get("task") == "web.1.2")
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    assert "no replacement on w1/w3" in _part(c, "replace")["judged"][0]["why"]


def test_swarm_liveness_worker_back_before_bound_not_judged(tmp_path):
    """w2 back at T0+14 (before the T0+18 deadline) and never marked: nothing to judge, not INVALID."""
    c = _judge(crash_run(tmp_path / "run", down_at=None))
    assert c.verdict == Verdict.UNKNOWN
    assert _part(c, "down")["not_judged"][0]["why"].startswith("the worker was heard again")
    # not required: the part is not applicable, and the check says nothing to check as a whole
    assert "nothing to check" in c.summary


def test_swarm_liveness_replace_back_before_bound_not_judged(tmp_path):
    b = crash_run(tmp_path / "run", replace=False, back_at=13, ready_again=13.5)
    c = _judge(b, "swarm-liveness:require=down")
    assert _part(c, "replace")["verdict"] == "UNKNOWN" and "READY again" in _part(c, "replace")["not_judged"][0]["why"]
    # the DOWN itself was in time; replace is not required here, so it is listed as not applicable
    assert c.verdict == Verdict.VALID and c.evidence["not_applicable"] == ["replace", "rejoin"]
    assert _judge(b).verdict == Verdict.UNKNOWN   # required (the default): nothing judged is no pass


def test_swarm_liveness_new_leader_grace_starts_at_election(tmp_path):
    """m1 steps down at T0+15 (before its deadline): not judged; m2 leads from T0+15.5 and marks w2 at
    T0+20, within 15.5 + 8: VALID. Without that DOWN, m2's obligation is INVALID."""
    def run(path, mark):
        b = crash_run(path, down_at=None, back_at=30, end=35)
        b.j("m1", "role", ts=T0 + 15, role="follower", term=2)
        b.j("m2", "role", ts=T0 + 15.5, role="leader", term=2)
        for ev in (b.journals["m1"], b.journals["m2"]):
            ev.sort(key=lambda e: e["ts"])
            for i, e in enumerate(ev, 1):
                e["seq"] = i
        if mark:
            b.j("m2", "worker", ts=T0 + 20, worker="w2", state="down")
            for task, worker, state in (("web.1.1", "w2", "orphaned"), ("web.1.2", "w1", "assigned")):
                b.j("m2", "task", ts=T0 + 20.1, task=task, service="web", slot=1, worker=worker, state=state)
            b.journals["m2"].sort(key=lambda e: e["ts"])
            for i, e in enumerate(b.journals["m2"], 1):
                e["seq"] = i
        return b
    c = _judge(run(tmp_path / "a", True))
    assert c.verdict == Verdict.VALID, c.summary
    p = _part(c, "down")
    assert [(o["leader"], o["verdict"]) for o in p["judged"]] == [("m2", "VALID")]
    assert p["judged"][0]["bound_from_ts"] == T0 + 15.5
    assert "m1 stopped leading" in p["not_judged"][0]["why"]
    c = _judge(run(tmp_path / "b", False), "swarm-liveness:require=down")
    assert c.verdict == Verdict.INVALID and _part(c, "down")["judged"][0]["deadline_ts"] == T0 + 23.5


def test_swarm_liveness_manager_fault_in_window_not_judged(tmp_path):
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    b.faults[2:2] = [
        {"ts": T0 + 11, "fault": "lat", "action": "intend-start", "kind": "latency", "targets": ["m3"], "details": {}},
        {"ts": T0 + 11.1, "fault": "lat", "action": "start", "kind": "latency", "targets": ["m3"], "details": {}},
        {"ts": T0 + 12, "fault": "lat", "action": "intend-stop", "kind": "latency", "targets": ["m3"], "details": {}},
        {"ts": T0 + 12.1, "fault": "lat", "action": "stop", "kind": "latency", "targets": ["m3"], "details": {}}]
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN
    assert "disturbed by lat" in _part(c, "down")["not_judged"][0]["why"]


def test_swarm_liveness_one_way_cut_toward_managers_is_silence(tmp_path):
    """worker-cut-from-managers: w2 -> managers cut for 20 s is silence; managers -> w2 alone is not."""
    def run(path, frm, to):
        b = crash_run(path, down_at=None, back_at=30, end=35)
        for r in b.faults:
            if r["fault"] == "crash":
                r.update(kind="partition", targets=[frm, to], details={"selector": {"one-way": {}}})
        return b
    c = _judge(run(tmp_path / "a", ["w2"], list(MANAGERS)))
    assert c.verdict == Verdict.INVALID and _part(c, "down")["judged"][0]["silenced_by"] == "crash"
    c = _judge(run(tmp_path / "b", list(MANAGERS), ["w2"]))
    assert c.verdict == Verdict.UNKNOWN and "nothing to check" in c.summary


def test_swarm_liveness_latency_is_not_silence(tmp_path):
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    for r in b.faults:
        if r["fault"] == "crash":
            r["kind"] = "latency"
    assert _judge(b).verdict == Verdict.UNKNOWN


def test_swarm_liveness_settings_from_plan_and_params(tmp_path):
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    b.plan["cluster"]["agent_env"] = {"CHAOS_DISPATCHER_HEARTBEAT_MS": "500", "CHAOS_DISPATCHER_GRACE": "4"}
    c = _judge(b)
    s = c.evidence["settings"]
    assert (s["heartbeat_ms"], s["grace"], s["limit_s"]) == (500, 4, 2.0)
    assert _part(c, "down")["judged"][0]["deadline_ts"] == T0 + 17
    c = _judge(b, "swarm-liveness:heartbeat_ms=2000,grace=5")
    assert c.evidence["settings"]["limit_s"] == 10 and _part(c, "down")["judged"][0]["deadline_ts"] == T0 + 25


def test_swarm_liveness_no_worker_fault_nothing_to_check(tmp_path):
    b = crash_run(tmp_path / "run", down_at=None)
    b.faults = [r for r in b.faults if r["fault"] == "heal"]
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and c.summary.startswith("nothing to check")


def test_swarm_liveness_missing_leader_journal_unknown_not_invalid(tmp_path):
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    path = b.write()
    (path / "events" / "m1.jsonl").unlink()
    c = run_checks(path, ["swarm-liveness:" + BOUNDS]).checks[0]
    assert c.verdict == Verdict.UNKNOWN, c.summary


def test_swarm_liveness_damaged_faults_unknown_not_invalid(tmp_path):
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    path = b.write()
    with (path / "faults.jsonl").open("a") as fh:
        fh.write("not json\n{}\n")
    assert run_checks(path, ["swarm-liveness:" + BOUNDS]).checks[0].verdict == Verdict.UNKNOWN


def test_swarm_liveness_violation_holds_with_other_journal_missing(tmp_path):
    """The leader's own journal shows the violation; a follower's missing journal cannot explain it."""
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    path = b.write()
    (path / "events" / "m3.jsonl").unlink()
    c = run_checks(path, ["swarm-liveness:" + BOUNDS]).checks[0]
    assert c.verdict == Verdict.INVALID and c.evidence["record_gap_count"] == 1


def test_swarm_liveness_valid_with_gap_is_unknown(tmp_path):
    path = crash_run(tmp_path / "run").write()
    (path / "events" / "m2.jsonl").unlink()
    assert run_checks(path, ["swarm-liveness:" + BOUNDS]).checks[0].verdict == Verdict.UNKNOWN


def test_swarm_liveness_bad_parameter_is_usage_error(tmp_path):
    import pytest

    from chaos.errors import UsageError
    with pytest.raises(UsageError):
        run_checks(crash_run(tmp_path / "run").write(), ["swarm-liveness:require=down+bogus"])


def test_swarm_liveness_deposed_leader_without_step_down_not_judged(tmp_path):
    """m1 never journals its step-down, but m2 leads term 2 from T0+15.5 (before m1's deadline T0+18):
    m1's tenure ends there, so only m2's obligation (from T0+15.5) is judged."""
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    b.j("m2", "role", ts=T0 + 15.5, role="leader", term=2)
    b.journals["m2"].sort(key=lambda e: e["ts"])
    for i, e in enumerate(b.journals["m2"], 1):
        e["seq"] = i
    c = _judge(b)
    p = _part(c, "down")
    assert [(o["leader"], o["verdict"]) for o in p["judged"]] == [("m2", "INVALID")]
    assert "m2 leader in term 2" in p["not_judged"][0]["why"]


def test_swarm_liveness_settings_not_on_record_unknown(tmp_path):
    """Without plan.json the cluster may have run with a longer heartbeat: not INVALID on a guess."""
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    b.plan = None
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "settings are not on record" in c.summary
    assert _judge(b, "swarm-liveness:heartbeat_ms=1000,grace=3").verdict == Verdict.INVALID


def test_swarm_liveness_shipped_defaults(tmp_path):
    """Default slack 10 s: deadline 3 + 10 s after the silence; a DOWN 12 s in is in time, none is not."""
    c = run_checks(crash_run(tmp_path / "a", down_at=22, back_at=30, ready_again=31, end=35).write(),
                   ["swarm-liveness"]).checks[0]
    assert c.verdict == Verdict.VALID, c.summary
    assert _part(c, "down")["judged"][0]["deadline_ts"] == T0 + 23
    c = run_checks(crash_run(tmp_path / "b", down_at=None, back_at=30, end=35).write(), ["swarm-liveness"]).checks[0]
    assert c.verdict == Verdict.INVALID


def test_swarm_liveness_errored_fault_disturbs_and_evidence_is_strict_json(tmp_path):
    """A fault that errored (effect unknown) and never ended: nothing after it is judged; the open
    end is null in the evidence (strict JSON)."""
    b = crash_run(tmp_path / "run", down_at=None, back_at=30, end=35)
    b.faults = [r for r in b.faults if r["fault"] != "heal"]
    b.faults.insert(0, {"ts": T0 + 5, "fault": "bad", "action": "error", "kind": "partition", "targets": [],
                        "details": {"error": "could not verify"}})
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN
    assert "disturbed by bad" in _part(c, "down")["not_judged"][0]["why"]
    json.dumps(c.evidence, allow_nan=False)
    assert c.evidence["disturbances"][0][1] is None
