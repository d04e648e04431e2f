"""benchmarks/failover.py's measurements on synthetic run directories: clocks start when the fault
was put in place (`applied_ts`), each trial says its clock source, excluded trials are counted by
reason, and a p99 over fewer than 100 trials is reported as the maximum it is."""

import json

T = 1_000_000.0  # run clock origin


def write_run(d, faults, ops, journals=None):
    d.mkdir(parents=True, exist_ok=True)
    (d / "faults.jsonl").write_text("".join(json.dumps(f) + "\n" for f in faults))
    lines = []
    for n, (proc, f, start, end, typ) in enumerate(ops):
        lines.append({"process": proc, "type": "invoke", "f": f, "ts": start, "index": 2 * n})
        lines.append({"process": proc, "type": typ, "f": f, "ts": end, "index": 2 * n + 1})
    lines.sort(key=lambda e: e["ts"])
    (d / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    (d / "events").mkdir(exist_ok=True)
    for node, evs in (journals or {}).items():
        (d / "events" / f"{node}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))
    return d


def start(fid, t, **extra):
    return {"fault": fid, "action": "start", "kind": "partition", "targets": ["m1"], "ts": t, **extra}


def test_failover_isolation_clock_starts_at_applied_ts_not_the_verified_record(failover, tmp_path):
    """The start record is written 0.7 s after the cut (verification); a write invoked 0.1 s after
    the cut and done 0.3 s after it is the failover: 300 ms, not 'the first write after ts'."""
    faults = [start("x.1", T + 10.7, applied_ts=T + 10.0, verified_ts=T + 10.7, details={"done_ts": T + 10.0})]
    heal = {"fault": "heal", "action": "heal", "kind": "heal", "targets": [], "ts": T + 20.0, "details": {}}
    ops = [(0, "write", T + 10.1, T + 10.3, "ok"), (1, "write", T + 10.8, T + 10.9, "ok")]
    fig = failover.measure_leader(write_run(tmp_path / "r", faults + [heal], ops), "isolate")
    assert len(fig.values) == 1 and abs(fig.values[0] - 300.0) < 1e-3
    assert fig.sources == ["applied_ts"]
    assert fig.excluded == {}  # the final heal is no trial (it was once counted as one without a start)


def test_failover_clock_source_falls_back_and_is_named(failover):
    assert failover.fault_t0({"ts": 5.0, "applied_ts": 3.0, "details": {"done_ts": 4.0}}) == (3.0, "applied_ts")
    assert failover.fault_t0({"ts": 5.0, "details": {"done_ts": 4.0}}) == (4.0, "details.done_ts")
    assert failover.fault_t0({"ts": 5.0, "details": {}}) == (5.0, "ts")
    kill = {"ts": 5.0, "details": {"nodes": {"m1": {"effective_ts": 4.5}}}}
    assert failover.fault_t0(kill, "m1") == (4.5, "details.nodes.effective_ts")
    assert failover.fault_t0({**kill, "applied_ts": 4.4}, "m1") == (4.4, "applied_ts")


def test_failover_excluded_trials_are_counted_by_reason(failover, tmp_path):
    faults = [
        start("x.1", T + 10.5, applied_ts=T + 10.0),          # kept: 300 ms
        start("x.2", T + 20.5, applied_ts=T + 20.0),          # no write afterwards at all
        # a restarted node answering only at T+29.5: trial 3 at T+30 began before it had settled 1 s
        {"fault": "k.1", "action": "stop", "kind": "kill", "targets": ["m2"], "ts": T + 29.5,
         "details": {"nodes": {"m2": {"op": "restart", "requested_ts": T + 25.0, "answering_ts": T + 29.5}}}},
        start("x.3", T + 30.5, applied_ts=T + 30.0),
    ]
    ops = [(0, "write", T + 10.1, T + 10.3, "ok"), (0, "read", T + 20.1, T + 20.2, "ok"),
           (1, "write", T + 20.1, T + 20.2, "fail")]
    fig = failover.measure_leader(write_run(tmp_path / "r", faults, ops), "isolate")
    assert [round(v) for v in fig.values] == [300]
    assert fig.excluded == {"no_write_after": 1, "not_whole_at_start": 1, "no_start_or_stop_record": 1}


def test_failover_summary_says_p99_of_20_trials_is_the_max(failover):
    fig = failover.Figure()
    for v in range(1, 21):
        fig.keep(float(v), "applied_ts")
    s = fig.summary("ms", 1)
    assert s["p99_ms"] == s["max_ms"] == 20.0 and s["p99_is_max"] is True
    assert s["p50_ms"] == 11.0 and s["n"] == 20 and s["t0_sources"] == ["applied_ts"] * 20
    big = failover.Figure()
    for v in range(1, 201):
        big.keep(float(v), "ts")
    assert big.summary("ms", 1)["p99_is_max"] is False and big.summary("ms", 1)["p99_ms"] < 200


def test_failover_worker_restore_not_met_is_excluded_not_measured(failover, tmp_path):
    def kill(fid, t, met):
        until = {"met": True, "met_ts": t + 3.0} if met else {"met": False}
        return [{"fault": fid, "action": "start", "kind": "kill", "targets": ["w1"], "ts": t + 0.2,
                 "applied_ts": t, "details": {"nodes": {"w1": {"effective_ts": t}}}},
                {"fault": fid, "action": "stop", "kind": "kill", "targets": ["w1"], "ts": t + 12,
                 "details": {"until": until, "nodes": {}}}]
    held = {"type": "task", "task": "web.0.1", "service": "web", "state": "running", "worker": "w1", "ts": T + 1}
    journals = {"m1": [held, {"type": "member", "member": "w1", "state": "dead", "ts": T + 12.0}],
                "m2": [{"type": "member", "member": "w1", "state": "dead", "ts": T + 12.5}]}
    d = write_run(tmp_path / "r", kill("w.1", T + 10, True) + kill("w.2", T + 30, False), [], journals)
    restore, dead = failover.measure_worker(d)
    assert restore.values == [3.0] and restore.excluded == {"restore_not_met_within_trial": 1}
    assert dead.values == [2.5] and dead.excluded == {"not_marked_dead_by_every_member": 1}


def test_failover_report_keeps_published_keys_and_adds_the_figures(failover):
    fig = failover.Figure()
    fig.keep(250.0, "applied_ts")
    fig.exclude("no_write_after")
    empty = failover.Figure()
    out = failover.report(1, empty, fig, empty, empty, empty)
    assert out["leader_isolate_p50_ms"] == 250.0 and out["leader_isolate_p99_ms"] == 250.0
    assert out["figures"]["leader_isolate"]["excluded"] == {"no_write_after": 1}
    assert out["figures"]["leader_isolate"]["max_ms"] == 250.0 and out["p99_is_max"] is True
    assert out["leader_kill_p50_ms"] is None and json.loads(json.dumps(out)) == out


def _kill(fid, t, node, **nodes_extra):
    return {"fault": fid, "action": "start", "kind": "kill", "targets": [node], "ts": t + 0.5,
            "details": {"nodes": {node: {"op": "kill", "node": node, "effective_ts": t, **nodes_extra}}}}


def test_failover_a_restart_that_never_answered_leaves_later_trials_not_whole(failover, tmp_path):
    """Seen at load 40: trial 1's restart of m3 never answered (answering_ts null), so trial 2
    killed m1 with only m2 left; that measured the schedule (11 s), not a failover. It must be
    excluded, not kept (the old check read only restarts that did answer)."""
    faults = [
        _kill("x.1", T + 10, "m3"),
        {"fault": "x.1", "action": "stop", "kind": "kill", "targets": ["m3"], "ts": T + 34.0,
         "details": {"nodes": {"m3": {"op": "restart", "node": "m3", "requested_ts": T + 12.5,
                                      "effective_ts": T + 14.0, "answering_ts": None}}}},
        _kill("x.2", T + 35, "m1"),
    ]
    ops = [(0, "write", T + 10.1, T + 10.6, "ok"), (0, "write", T + 35.1, T + 46.0, "ok")]
    fig = failover.measure_leader(write_run(tmp_path / "r", faults, ops), "kill")
    assert [round(v) for v in fig.values] == [600]
    assert fig.excluded == {"not_whole_at_start": 1}
    assert fig.sources == ["details.nodes.effective_ts"]


def test_failover_a_trial_that_found_its_node_already_down_is_not_a_trial(failover, tmp_path):
    """Late trials fired together on a node an earlier trial still held down (`shared`): they
    killed nothing, so they are excluded, not measured from their record's ts."""
    shared = {"fault": "x.3", "action": "start", "kind": "kill", "targets": ["m1"], "ts": T + 20.5,
              "details": {"nodes": {"m1": {"op": "kill", "shared": True, "already": "kill", "by": ["x.2"]}}}}
    faults = [_kill("x.2", T + 20, "m1"), shared]
    ops = [(0, "write", T + 20.1, T + 21.0, "ok"), (1, "write", T + 20.6, T + 21.0, "ok")]
    fig = failover.measure_leader(write_run(tmp_path / "r", faults, ops), "kill")
    assert [round(v) for v in fig.values] == [1000]
    assert fig.excluded == {"target_already_down_by_another_trial": 1}


def test_failover_a_killed_worker_that_held_no_task_is_no_restore_trial(failover, tmp_path):
    """Swarm does not rebalance, so a worker restarted by an earlier trial comes back empty; killing
    it leaves every replica running and `replicas-restored` is met at once (0.2 s, faster than any
    failover can be). Such a trial is excluded by name, never timed."""
    def kill(fid, t, met_after):
        return [{"fault": fid, "action": "start", "kind": "kill", "targets": ["w1"], "ts": t + 0.2,
                 "applied_ts": t, "details": {"nodes": {"w1": {"effective_ts": t}}}},
                {"fault": fid, "action": "stop", "kind": "kill", "targets": ["w1"], "ts": t + 12,
                 "details": {"until": {"met": True, "met_ts": t + met_after}, "nodes": {}}}]
    task = {"type": "task", "task": "web.0.1", "service": "web"}
    journals = {"m1": [{**task, "state": "assigned", "worker": "w1", "ts": T + 1},
                       {**task, "state": "running", "ts": T + 2},
                       # the first kill's failover: w1's task orphaned, replaced on w2
                       {**task, "state": "orphaned", "ts": T + 13},
                       {"type": "task", "task": "web.0.2", "service": "web", "state": "running",
                        "worker": "w2", "ts": T + 13.5}],
                "w2": [{**task, "state": "assigned", "worker": "w1", "ts": T + 40}]}  # not a manager
    d = write_run(tmp_path / "r", kill("w.1", T + 10, 3.0) + kill("w.2", T + 30, 0.2), [], journals)
    assert failover.tasks_held(journals, "w1", T + 10) == ["web.0.1"]
    assert failover.tasks_held(journals, "w1", T + 30) == []
    restore, _dead = failover.measure_worker(d)
    assert restore.values == [3.0]
    assert restore.excluded == {"killed_worker_held_no_task": 1}
