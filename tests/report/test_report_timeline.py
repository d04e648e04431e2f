"""What the report's pictures show, as data: fault bands (intended vs in effect), node role/term
lanes and leader changes, latency points (never dropping fail or info operations), availability per
phase (cross-checked against the availability checker's own counts)."""

from __future__ import annotations

import json

from chaos.checkers import availability
from chaos.checkers.rundir import RunDir
from chaos.report import load, plots, synthetic
from chaos.report import timeline as tl

T0 = synthetic.T0


def _rec(ts, action, fault="f1", kind="partition", targets=("m1",), **kw):
    return {"ts": T0 + ts, "fault": fault, "action": action, "kind": kind, "targets": list(targets),
            "details": {}, **kw}


def test_report_timeline_fault_band_intended_and_in_effect():
    (b,) = tl.fault_bands([_rec(20.3, "start", intended_ts=T0 + 20), _rec(20, "intend-start"),
                           _rec(40, "intend-stop"), _rec(40.2, "stop")])
    assert (b.intended_start, b.in_effect, b.intended_stop, b.stopped) == (T0 + 20, T0 + 20.3, T0 + 40, T0 + 40.2)
    parts = plots._band_parts(b, T0 + 60)
    assert [(p, round(x0 - T0, 3), round(x1 - T0, 3)) for x0, x1, p in parts] == [
        ("intended", 20.0, 20.3), ("effect", 20.3, 40.0), ("healing", 40.0, 40.2)]


def test_report_timeline_fault_band_old_style_and_never_healed():
    old, never = tl.fault_bands([_rec(5, "start"), _rec(9, "stop"),
                                 _rec(12, "start", fault="f2", kind="kill", intended_ts=T0 + 11.5)])
    assert old.intended_start is None and old.begin == T0 + 5 and old.stopped == T0 + 9
    assert [p for _, _, p in plots._band_parts(old, T0 + 60)] == ["effect"]
    assert never.intended_start == T0 + 11.5 and never.stopped is None
    assert plots._band_parts(never, T0 + 60)[-1] == (T0 + 12, T0 + 60, "effect")  # runs to the end


def test_report_timeline_fault_applied_twice_gives_two_bands():
    bands = tl.fault_bands([_rec(1, "intend-start"), _rec(1.1, "start"), _rec(2, "stop"),
                            _rec(5, "intend-start"), _rec(5.2, "start"), _rec(6, "stop")])
    assert [(b.begin - T0, b.stopped - T0) for b in bands] == [(1, 2), (5, 6)]


def test_report_timeline_partition_marks_the_side_cut_off():
    (b,) = tl.fault_bands([{**_rec(1, "start"), "targets": [["m2", "m3", "w1"], ["m1"]]}])
    assert b.where == "m2 m3 w1 | m1" and tl.band_targets(b) == {"m1"}
    (k,) = tl.fault_bands([_rec(1, "start", kind="kill", targets=("w1", "w2"))])
    assert tl.band_targets(k) == {"w1", "w2"} and k.label == "f1 kill → w1, w2"


def test_report_timeline_lanes_from_journals_show_leader_changes(tmp_path):
    view = load.load(synthetic.make_run(tmp_path / "r", ops=50))
    lanes = tl.node_lanes(view)
    assert [lane.node for lane in lanes] == ["m1", "m2", "m3", "w1", "w2", "w3", "w4", "w5"]
    assert {lane.source for lane in lanes[:3]} == {"journal"}
    assert [(round(ts - T0, 1), n, t) for ts, n, t in tl.leader_changes(lanes)] == [(0.6, "m1", 1), (21.7, "m2", 2)]
    m1 = lanes[0]
    # boot, term 1 (still booting), leader in term 1, precandidate while cut off, follower of term 2
    assert [(s.role, s.term) for s in m1.segments] == [("booting", None), ("booting", 1), ("leader", 1),
                                                       ("precandidate", 1), ("follower", 2)]
    w3 = next(lane for lane in lanes if lane.node == "w3")
    assert w3.source == "status" and any(s.role == "unreachable" for s in w3.segments)
    assert [m for _, m in w3.marks] == ["suspect (by w1)", "dead (by w1)", "restart (boot 2)", "alive (by w1)"]


def test_report_timeline_lanes_fall_back_to_status_polls(tmp_path):
    d = synthetic.make_run(tmp_path / "r", ops=50)
    for p in (d / "events").iterdir():
        p.unlink()
    lanes = tl.node_lanes(load.load(d))
    assert {lane.source for lane in lanes} == {"status"}
    changes = [(n, t) for _, n, t in tl.leader_changes(lanes)]
    assert changes == [("m1", 1), ("m2", 2)]


def test_report_timeline_latency_points_keep_every_fail_and_info(tmp_path):
    view = load.load(synthetic.make_run(tmp_path / "r", ops=5000))
    by_type = {t: sum(1 for o in view.ops if o.type == t) for t in ("ok", "fail", "info")}
    assert by_type["fail"] > 0 and by_type["info"] > 0
    pts = tl.latency_points(view, max_ok=500)
    assert len(pts.fail_x) + len(pts.refused_x) == by_type["fail"]
    assert len(pts.info_x) + len(pts.open_x) == by_type["info"]
    assert pts.ok_total == by_type["ok"] and 400 <= pts.ok_shown <= 600
    slowest = max(o.latency_s for o in view.ops if o.type == "ok")
    assert slowest in pts.ok_y  # the tail survives downsampling


def test_report_timeline_phase_stats_agree_with_the_availability_checker(tmp_path):
    d = synthetic.make_run(tmp_path / "r", ops=3000)
    mine = {s.name: s for s in tl.phase_stats(load.load(d))}
    run = RunDir(d)
    theirs = availability.phase_stats(run.ops, availability.phase_windows(run))
    assert set(mine) == set(theirs) == {"steady", "fault", "recovery"}
    for name, s in mine.items():
        assert (s.total, s.ok, s.info) == (theirs[name]["ops"], theirs[name]["ok"], theirs[name]["info"]), name
    assert mine["fault"].ok_share < 1.0 == mine["steady"].ok_share


def test_report_timeline_throughput_counts_every_operation(tmp_path):
    view = load.load(synthetic.make_run(tmp_path / "r", ops=2000))
    bin_s, counts = tl.throughput(view)
    assert bin_s in (0.25, 0.5, 1)
    assert sum(map(sum, counts.values())) == len(view.ops)
    assert sum(counts["fail"]) == sum(1 for o in view.ops if o.type == "fail")


def test_report_timeline_handles_empty_and_odd_records(tmp_path):
    d = synthetic.make_run(tmp_path / "r", ops=10)
    (d / "faults.jsonl").write_text(json.dumps({"ts": T0 + 1, "action": "stop", "kind": "kill"}) + "\n"
                                    + json.dumps({"ts": T0 + 2, "action": "start", "targets": [["a"], ["b", "c"]]}) + "\n")
    bands = tl.fault_bands(load.load(d).faults)
    assert len(bands) == 1 and bands[0].kind == "?" and tl.band_targets(bands[0]) == {"a"}


def test_report_load_pairs_as_the_history_module_does(tmp_path):
    from chaos import history as hist
    d = synthetic.make_run(tmp_path / "r", ops=3000)
    mine = load.load(d).ops
    theirs = hist.pair_ops(hist.read_history(d / "history.jsonl"))
    assert [(o.type, o.invoke_index, o.invoke_ts, o.complete_ts, o.error) for o in mine] == \
        [(o.type, o.invoke_index, o.invoke_ts, o.complete_ts, o.error) for o in theirs]


def test_report_load_survives_a_history_the_contract_forbids(tmp_path):
    d = synthetic.make_run(tmp_path / "r", ops=200)
    with (d / "history.jsonl").open("a") as fh:  # an orphan completion, then a double invoke
        for ev in ({"index": 10**6, "process": 77, "type": "ok", "f": "read", "key": "k1", "value": 1, "ts": T0 + 59},
                   {"index": 10**6 + 1, "process": 78, "type": "invoke", "f": "read", "key": "k1", "ts": T0 + 59},
                   {"index": 10**6 + 2, "process": 78, "type": "invoke", "f": "read", "key": "k1", "ts": T0 + 59.1}):
            fh.write(json.dumps(ev) + "\n")
    view = load.load(d)
    assert len(view.ops) == 202  # 200 + the two invokes (info); the orphan completion dropped
    assert any("2 operation(s) not paired as the contract says" in n for n in view.notes)


def test_report_timeline_manager_lane_shows_failed_polls(tmp_path):
    d = synthetic.make_run(tmp_path / "r", ops=50)
    rows = [json.loads(x) for x in (d / "status.jsonl").read_text().splitlines()]
    for r in rows:  # m3 killed from 10 s to 15 s: its journal just stops, its polls fail
        if r["node"] == "m3" and 10 <= r["ts"] - T0 < 15:
            r["status"] = {"error": "connection refused"}
    (d / "status.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    m3 = next(lane for lane in tl.node_lanes(load.load(d)) if lane.node == "m3")
    assert m3.source == "journal"
    assert [(round(a - T0, 2), round(b - T0, 2)) for a, b in m3.unreachable] == [(10.05, 15.05)]


def test_report_timeline_errors_skips_aborts_and_the_final_heal():
    bands = tl.fault_bands([
        _rec(1, "intend-start"), _rec(1.2, "error", targets=(), details={"error": "proxy m1->m2 not cut"}),
        _rec(2, "skipped", fault="f2", kind="kill", targets=(), details={"reason": "no leader within 10 s"}),
        _rec(3, "intend-start", fault="f3"), _rec(3.1, "start", fault="f3"),
        _rec(4, "stop", fault="f3", aborted=True, details={"reason": "harness error: x"}),
        _rec(5, "heal", fault="heal", kind="heal", targets=())])
    assert [(b.fault, b.outcome, b.reason) for b in bands] == [
        ("f1", "error", "proxy m1->m2 not cut"), ("f2", "skipped", "no leader within 10 s"),
        ("f3", "aborted", "harness error: x")]
    assert bands[0].groups == [["m1"]] and bands[0].at == T0 + 1.2 and bands[0].in_effect is None
    assert "(error: proxy m1->m2 not cut)" in bands[0].label


def test_report_timeline_member_marks_show_news_only(tmp_path):
    d = synthetic.make_run(tmp_path / "r", ops=50)
    with (d / "events" / "w2.jsonl").open("a") as fh:  # w2 sees w4 join (no news), then lose it and regain it
        for k, (t, state) in enumerate([(1, "alive"), (10, "suspect"), (12, "alive"), (13, "alive")]):
            fh.write(json.dumps({"node": "w2", "seq": 100 + k, "ts": T0 + t, "boot": 1, "type": "member",
                                 "member": "w4", "state": state}) + "\n")
    w4 = next(lane for lane in tl.node_lanes(load.load(d)) if lane.node == "w4")
    assert [(round(ts - T0), m) for ts, m in w4.marks] == [(10, "suspect (by w2)"), (12, "alive (by w2)")]
    assert {s.role for s in w4.segments} == {"up"}  # a worker's status has no Raft role


def test_report_timeline_cas_refused_is_served_not_failed(tmp_path):
    from .runs import append_history
    d = synthetic.make_run(tmp_path / "r", ops=100)
    append_history(d, [(200, "cas", "k1", [5, 6], "fail", [5, 6], 0, 10)])
    lines = (d / "history.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    lines[-1] = json.dumps({**last, "error": "cas-mismatch"})
    (d / "history.jsonl").write_text("\n".join(lines) + "\n")
    run = json.loads((d / "run.json").read_text())
    run["phases"][-1]["end"] = None  # the last phase runs on: the refused cas falls in it
    (d / "run.json").write_text(json.dumps(run))
    view = load.load(d)
    pts = tl.latency_points(view)
    assert len(pts.refused_x) == 1 and len(pts.fail_x) == sum(1 for o in view.ops if o.type == "fail") - 1
    _, counts = tl.throughput(view)
    assert sum(counts["refused"]) == 1  # named refused, never fail; and not hidden among the ok
    assert sum(counts["ok"]) == sum(1 for o in view.ops if o.type == "ok")
    assert sum(counts["fail"]) == sum(1 for o in view.ops if o.type == "fail") - 1
    last = tl.phase_stats(view)[-1]
    assert last.refused == 1 and last.served == last.ok + 1
    assert last.ok_share == (last.ok + 1) / last.total  # served, as the availability checker counts it
    png = plots.latency_plot(view, pts, *tl.throughput(view), tl.fault_bands(view.faults))
    assert png.png.startswith(b"\x89PNG") and "refused" in png.caption


def test_report_time_origin_is_the_first_phase_not_the_command_start(tmp_path):
    """Plots start where the cluster came up (first phase start), not at run.json `started`, which
    on a first run is minutes earlier (the image build, when nothing has data to draw)."""
    d = synthetic.make_run(tmp_path / "r", ops=200)
    run = json.loads((d / "run.json").read_text())
    first = min(p["start"] for p in run["phases"])
    run["started"] = first - 120.0  # two minutes of image build before the cluster came up
    (d / "run.json").write_text(json.dumps(run))
    view = load.load(d)
    assert view.t0() == first
    bin_s, counts = tl.throughput(view)
    assert counts["ok"][0] + counts["info"][0] + counts["fail"][0] + counts["refused"][0] > 0
    del run["phases"]
    (d / "run.json").write_text(json.dumps(run))
    view = load.load(d)
    first_record = min([view.ops[0].invoke_ts] + [s["ts"] for s in view.status[:1]])
    assert view.t0() == first_record > run["started"]
