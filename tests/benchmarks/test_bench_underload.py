"""benchmarks/underload.py and benchmarks/_result.py without Docker: how a run directory becomes a
row, which exits are false alarms and which harness errors, that the burners and an interrupted run
are always stopped, and the provenance every saved result carries."""

import json
import subprocess
import sys
import time


def test_underload_classifies_exits(underload):
    rows = [{"file": "a", "seed": 1, "exit": 0, "not_valid": {}, "run_dir": "d0", "error": None, "error_hint": None},
            {"file": "a", "seed": 2, "exit": 1, "not_valid": {"c": {"verdict": "INVALID", "summary": "s"}},
             "run_dir": "d1", "error": None, "error_hint": None},
            {"file": "b", "seed": 1, "exit": 3, "not_valid": {"e": {"verdict": "UNKNOWN", "summary": "u"}},
             "run_dir": "d2", "error": None, "error_hint": None},
            {"file": "b", "seed": 2, "exit": 4, "not_valid": {}, "run_dir": "d3",
             "error": "reachability not as intended", "error_hint": "h"}]
    s = underload.summarise(rows)
    assert s["runs"] == 4 and s["valid"] == 1
    assert [(a["file"], a["seed"], a["exit"]) for a in s["false_alarms"]] == [("a", 2, 1), ("b", 1, 3)]
    assert s["false_alarms"][0]["not_valid"] == {"c": {"verdict": "INVALID", "summary": "s"}}
    assert s["harness_errors"] == [{"file": "b", "seed": 2, "exit": 4, "error": "reachability not as intended",
                                    "error_hint": "h", "run_dir": "d3"}]


def test_underload_reads_checks_and_the_harness_error_from_the_run_dir(underload, tmp_path):
    d = tmp_path / "x" / "leader-isolated-1"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"checks": [
        {"name": "linearizable", "verdict": "VALID", "summary": "ok"},
        {"name": "convergence", "verdict": "INVALID", "summary": "managers end with different applied index"}]}))
    (d / "run.json").write_text(json.dumps({"error": "boom", "error_hint": "why"}))
    row = underload.read_run(tmp_path / "x", "")
    assert row["not_valid"] == {"convergence": {"verdict": "INVALID",
                                                "summary": "managers end with different applied index"}}
    assert (row["error"], row["error_hint"], row["run_dir"]) == ("boom", "why", str(d))
    empty = tmp_path / "y"
    empty.mkdir()
    assert underload.read_run(empty, "Traceback\nRuntimeError: no docker\n")["error"] == "RuntimeError: no docker"


def test_underload_burners_burn_and_are_stopped(underload):
    burners = underload.start_burners(2)
    try:
        assert all(p.poll() is None for p in burners)
    finally:
        underload.stop_burners(burners)
    assert all(p.returncode is not None for p in burners)


def test_underload_an_overdue_run_gets_sigint_first_so_it_can_clean_up(underload, tmp_path):
    """A run past its bound is interrupted with SIGINT (the runner removes its cluster on it), not
    killed outright: the child here records that it saw SIGINT and exits by itself."""
    mark = tmp_path / "saw-sigint"
    code = ("import signal, sys, time, pathlib\n"
            f"def h(*a): pathlib.Path({str(mark)!r}).write_text('1'); sys.exit(0)\n"
            "signal.signal(signal.SIGINT, h)\n"
            f"pathlib.Path({str(tmp_path / 'ready')!r}).write_text('1')\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # poll for the child's handler to be in place (a condition, bounded)
    assert underload._wait_or_interrupt(proc, 0.1) is False
    assert mark.exists() and proc.returncode == 0


def test_underload_load_sampler_median(underload):
    s = underload.LoadSampler(every_s=0.01).start()
    deadline = time.monotonic() + 10
    while len(s.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.stop()
    assert len(s.samples) >= 3 and s.median() is not None and s.median() >= 0


def test_result_path_never_overwrites(result_mod, tmp_path):
    p1 = result_mod.result_path("bench", "2026-12-06", "abc", tmp_path)
    assert p1.name == "bench-2026-12-06-abc.json"
    p1.write_text("{}")
    assert result_mod.result_path("bench", "2026-12-06", "abc", tmp_path).name == "bench-2026-12-06-abc-2.json"


def test_result_recorder_saves_provenance(result_mod, tmp_path):
    rec = result_mod.Recorder("demo", results=tmp_path)
    path = rec.save({"x": 1})
    data = json.loads(path.read_text())
    assert data["x"] == 1 and data["bench"] == "demo"
    assert set(data) >= {"commit", "dirty", "started_utc", "ended_utc", "load_1m_before", "load_1m_after"}
    assert path.name == f"demo-{data['started_utc'][:10]}-{(data['commit'] or 'nogit')[:10]}.json"
    assert data["started_utc"].endswith("Z") and data["ended_utc"] >= data["started_utc"]
