"""benchmarks/openloop.py without a cluster: the per-stage summary built from managers' write
traces (swarmnode.agent.wtrace's format), on hand-made traces with known stage times."""

import json

from .conftest import load

MS = 1_000_000   # ns


def _write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_stages_line_up_leader_and_the_first_follower_to_ack(tmp_path):
    ol = load("openloop")
    t = 1000 * MS
    leader = []
    for idx in (5, 6):
        base = t + idx * 100 * MS
        leader += [("prop", idx, base + 1 * MS), ("persist", idx, base + 2 * MS), ("sync", idx, base + 4 * MS),
                   ("send", idx, base + 5 * MS), ("ackin", idx, base + 9 * MS), ("commit", idx, base + 9 * MS),
                   ("apply", idx, base + 11 * MS), ("in", idx, base), ("out", idx, base + 12 * MS)]
    # a collector pause inside the load window: 3 ms wall, 2 ms CPU; one before it is not counted
    leader += [("gc2", 1, t - 50 * MS, 0), ("gc2", -1, t - 40 * MS, 10 * MS),
               ("gc2", 1, t + 600 * MS, 0), ("gc2", -1, t + 603 * MS, 2 * MS)]
    fast, slow = [], []
    for idx in (5, 6):
        base = t + idx * 100 * MS
        fast += [("recv", idx, base + 6 * MS), ("persist", idx, base + 6 * MS), ("sync", idx, base + 7 * MS),
                 ("ack", idx, base + 8 * MS)]
        slow += [("recv", idx, base + 6 * MS), ("persist", idx, base + 7 * MS), ("sync", idx, base + 20 * MS),
                 ("ack", idx, base + 21 * MS)]
    _write(tmp_path / "m1.trace", leader)
    _write(tmp_path / "m2.trace", slow)
    _write(tmp_path / "m3.trace", fast)
    out = ol.stages(str(tmp_path), "m1", ["m2", "m3"])
    a = out["all"]
    assert out["writes_traced"] == 2
    assert a["handler_total"]["p50"] == 12.0 and a["handler_total"]["n"] == 2
    assert a["leader_fsync"]["p50"] == 2.0
    assert a["net_to_follower"]["p50"] == 1.0
    assert a["f_fsync"]["p50"] == 1.0          # m3's: its ack came first
    assert a["net_ack"]["p50"] == 1.0
    assert a["commit_to_apply"]["p50"] == 2.0
    assert out["gc"]["m1"]["gc2"] == {"n": 1, "wall_ms_total": 3.0, "wall_ms_max": 3.0,
                                      "cpu_ms_total": 2.0, "cpu_ms_max": 2.0}
    assert out["slowest_1pct_overlapping_leader_gc1_or_gc2"] == 1   # write 6 spans 600..612 ms


def test_loop_stalls_counted_per_callback_within_the_load_window(tmp_path):
    """wtrace's `stall` rows (CPU ns, wall ns, callback name): only those inside the load window
    count, bucketed at 1/2/5 ms and summed per callback."""
    ol = load("openloop")
    rows = [("stall", 3 * MS, 100 * MS, "ManagerRole._process_ready"),
            ("stall", int(1.5 * MS), 150 * MS, "ManagerRole._process_ready"),
            ("stall", 6 * MS, 160 * MS, "TcpTransport._on_inbound"),
            ("stall", 9 * MS, 900 * MS, "late"), ("in", 1, 120 * MS)]
    _write(tmp_path / "m1.trace", rows)
    out = ol.loop_stalls(str(tmp_path / "m1.trace"), (50 * MS, 500 * MS))
    assert (out["ge_1ms"], out["ge_2ms"], out["ge_5ms"]) == (3, 2, 1)
    assert out["by_callback"]["ManagerRole._process_ready"] == {"n": 2, "cpu_ms_total": 4.5, "cpu_ms_max": 3.0}
    assert list(out["by_callback"]) == ["TcpTransport._on_inbound", "ManagerRole._process_ready"]
    assert ol.loop_stalls(str(tmp_path / "absent.trace"), (0, 1))["ge_1ms"] == 0


def test_wtrace_records_a_slow_loop_callback(monkeypatch):
    import asyncio
    import time
    from swarmnode.agent import wtrace
    monkeypatch.setattr(wtrace, "_rows", [])
    monkeypatch.setattr(asyncio.events.Handle, "_run", asyncio.events.Handle._run)
    wtrace._watch_loop_callbacks()

    def busy():
        t0 = time.thread_time_ns()
        while time.thread_time_ns() - t0 < 3 * MS:
            pass

    async def main():
        asyncio.get_running_loop().call_soon(busy)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    asyncio.run(main())
    stalls = [r for r in wtrace._rows if r[0] == "stall"]
    assert [r[3] for r in stalls] == ["test_wtrace_records_a_slow_loop_callback.<locals>.busy"]
    assert stalls[0][1] >= 3 * MS


def test_loop_cost_runs_small_and_sees_the_background_snapshot(tmp_path):
    """benchmarks/loop_cost.py at a small size: the digest check never costs a call >= 1 ms of a
    from-scratch pass here, and with the background writer a snapshot adds no fsync on the caller
    (the group's own only) while its fsyncs happen on the writer thread."""
    lc = load("loop_cost")
    d = lc.digest_cost(keys=200, puts=2500)
    assert d["mismatches"] == 0 and d["calls"] == 2500 - 20
    s = lc.snapshot_cost(keys=50, entries=40, every=10, background=True)
    assert s["background"] and s["snapshots"] == 4
    assert s["snapshot_caller_fsyncs"] == [1, 1, 1, 1] and s["fsyncs"]["other"] >= 2 * 4
    s = lc.snapshot_cost(keys=50, entries=40, every=10, background=False)
    assert not s["background"] and all(n >= 3 for n in s["snapshot_caller_fsyncs"])
