"""The README's main job, end to end on real containers: `chaos run experiments/leader-isolated.yaml`
brings a cluster up behind Toxiproxy, isolates the leader, heals, judges and tears down. Then the
same real run directory, deliberately corrupted, must be judged INVALID by `chaos check` — the
pipeline can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SEED = 11
EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "leader-isolated.yaml"


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, docker_client, node_image, chaos_cmd):
    out = tmp_path_factory.mktemp("runs")
    name = "tdemo"
    try:
        proc = chaos_cmd("run", str(EXPERIMENT), "--seed", str(SEED), "--name", name, "--out", str(out),
                         timeout=600)
    finally:
        left = cleanup.remaining(docker_client, cluster=name)
        cleanup.remove_objects(docker_client, cluster=name)
    runs = sorted(out.iterdir())
    assert len(runs) == 1, (proc.stdout, proc.stderr)
    return proc, runs[0], left


def test_run_leader_isolated_end_to_end_is_valid_and_leaves_nothing(demo_run):
    proc, run_dir, left = demo_run
    assert proc.returncode == 0, f"seed {SEED}\n{proc.stdout}\n{proc.stderr}"
    assert f"seed: {SEED}" in proc.stderr
    assert left == 0, "the run left Docker objects behind"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["verdict"] == "VALID"
    assert {c["checker"] for c in results["checks"]} >= {"linearizable", "raft-safety", "durability",
                                                          "convergence", "availability", "recovery",
                                                          "expectations"}
    run = json.loads((run_dir / "run.json").read_text())
    nodes = set(run["nodes"])
    assert nodes == {"m1", "m2", "m3", "w1", "w2", "w3"}
    assert {p.stem for p in (run_dir / "events").iterdir()} == nodes
    for n in nodes:   # every node's log is kept, and it says something (issue 16 item 7: all were empty)
        log = (run_dir / "logs" / f"{n}.log").read_text()
        assert f" {n} INFO node: starting {n} " in log, log[:2000]
        assert n.startswith("w") or f" {n} INFO raft: term " in log, log[:2000]
    history = _read_jsonl(run_dir / "history.jsonl")
    assert sum(1 for e in history if e["type"] == "ok") > 100
    faults = _read_jsonl(run_dir / "faults.jsonl")
    assert [f["action"] for f in faults] == ["intend-start", "start", "intend-stop", "stop", "heal"]
    start = faults[1]
    leader_before = faults[0]["details"]["leader"]
    assert start["targets"] == [leader_before]  # the selector resolved to the leader of that moment
    assert start["details"]["verified"]["checked_n"] == start["details"]["links_cut"] == 10
    assert faults[0]["ts"] <= start["intended_ts"] <= start["ts"]
    assert run["outcome"] == "completed" and run["partial"] is False
    assert run["plan_sha256"] and run["experiment_sha256"] and run["replay"].startswith("chaos replay ")
    assert [p["name"] for p in run["phases"]] == ["steady", "faults", "recovery"]
    # the agents' own view: a manager other than the isolated one led in a later term
    statuses = _read_jsonl(run_dir / "status.jsonl")
    t_in, t_out = start["ts"], faults[3]["ts"]
    during = [s["status"] for s in statuses if t_in <= s["ts"] <= t_out and s["status"].get("role") == "leader"]
    assert any(s["node"] != leader_before for s in during), "no other leader seen while the leader was cut off"


def test_run_dir_with_injected_stale_read_is_invalid(demo_run, tmp_path, chaos_cmd):
    """Take the real history, append a read that returns a value overwritten long before: the
    linearizability checker must say INVALID and `chaos check` exit 1."""
    _, run_dir, _ = demo_run
    history = _read_jsonl(run_dir / "history.jsonl")
    oks = [e for e in history if e["type"] == "ok" and e["f"] == "write"]
    by_key: dict[str, list[dict]] = {}
    for e in oks:
        by_key.setdefault(e["key"], []).append(e)
    key, writes = max(by_key.items(), key=lambda kv: len(kv[1]))
    assert len(writes) >= 2
    stale = writes[0]["value"]
    t = history[-1]["ts"] + 1.0
    n = history[-1]["index"]
    history += [
        {"index": n + 1, "process": 9999, "type": "invoke", "f": "read", "key": key, "value": None, "ts": t},
        {"index": n + 2, "process": 9999, "type": "ok", "f": "read", "key": key, "value": stale, "ts": t + 0.01},
    ]
    bad = tmp_path / "bad"
    bad.mkdir()
    for item in run_dir.iterdir():
        if item.is_file() and item.name not in ("history.jsonl", "results.json"):
            (bad / item.name).write_bytes(item.read_bytes())
    (bad / "events").symlink_to(run_dir / "events")
    (bad / "final").symlink_to(run_dir / "final")
    (bad / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history))
    proc = chaos_cmd("check", str(bad), "--check", "linearizable", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["verdict"] == "INVALID"


def test_run_writes_junit_and_report_from_its_run_directory(demo_run):
    """Issue 12: the shipped experiment's run directory holds a JUnit file CI systems parse (one
    testcase per check and expectation, named <experiment>.<check>) and a self-contained report."""
    import junitparser

    _, run_dir, _ = demo_run
    xml = junitparser.JUnitXml.fromfile(str(run_dir / "junit.xml"))
    cases = {c.name: c for suite in xml for c in suite}
    for check in ("linearizable", "raft-safety", "durability", "convergence", "availability", "recovery"):
        assert f"leader-isolated.{check}" in cases, sorted(cases)
        assert not cases[f"leader-isolated.{check}"].result, f"{check} is not a pass in JUnit"
    assert any(name.startswith("leader-isolated.expectations.") for name in cases)
    suite = next(iter(xml))
    props = {p.name: p.value for p in suite.properties()}
    assert props["seed"] == str(SEED) and props["replay"].startswith("chaos replay")
    html = (run_dir / "report.html").read_text()
    assert "<script src=" not in html and "leader-isolated" in html and "isolate-leader" in html
    assert (run_dir / "plot-timeline.png").stat().st_size > 1000
