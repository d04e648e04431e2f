"""Clock, cpu and memory faults on real containers (one run of tests/docker/experiments/clock-cpu.yaml):
each asserted from faults.jsonl AND from what the node itself reported (its clock read back in the
status polls) or what the engine reported (the container's limits read back, then restored)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUN = Path(__file__).resolve().parent / "experiments" / "clock-cpu.yaml"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run(tmp_path_factory, docker_client, node_image, chaos_cmd):
    out = tmp_path_factory.mktemp("clock")
    name = f"k{os.getpid() % 10000}{int(time.time() * 1000) % 10000}"
    try:
        proc = chaos_cmd("run", str(RUN), "--seed", "2", "--name", name, "--out", str(out), timeout=600)
    finally:
        left = cleanup.remaining(docker_client, cluster=name)
        cleanup.remove_objects(docker_client, cluster=name)
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert left == 0
    faults: dict = {}
    for row in _jsonl(run_dir / "faults.jsonl"):
        faults.setdefault(row["fault"], {})[row["action"]] = row
    return run_dir, faults, _jsonl(run_dir / "status.jsonl")


def _near(skew: float, want: float) -> bool:
    """A status poll's `ts` is stamped when its answer was recorded, after the node read its clock:
    the skew it gives is early by up to the poll's latency (seconds at load 20)."""
    return want - 2.5 <= skew <= want + 0.5


def _skews(statuses, node, t0, t1):
    return [s["status"]["clock"]["wall"] - s["ts"] for s in statuses
            if s["node"] == node and t0 <= s["ts"] <= t1 and isinstance(s["status"].get("clock"), dict)]


def test_clock_docker_offset_moves_the_nodes_clock_and_comes_back(run):
    _, faults, statuses = run
    f = faults["skew"]
    assert f["start"]["targets"] == ["m1"]
    assert f["start"]["details"]["nodes"]["m1"]["spec"] == "-7 x1"
    eff = f["stop"]["effect"]
    assert eff["effective"] is True, eff
    assert eff["evidence"]["nodes"]["m1"]["moved_s"] == pytest.approx(-7.0, abs=0.5)
    t0, t1 = f["start"]["ts"], f["stop"]["intended_ts"]
    during = _skews(statuses, "m1", t0 + 0.2, t1 - 0.2)
    assert during and all(_near(s, -7.0) for s in during), during           # the node's own polls
    others = _skews(statuses, "m2", t0 + 0.2, t1 - 0.2)
    assert others and all(_near(s, 0.0) for s in others), others              # only m1 moved
    after = _skews(statuses, "m1", f["stop"]["ts"] + 0.5, f["stop"]["ts"] + 30)
    assert after and all(_near(s, 0.0) for s in after), after               # back to real time
    assert f["stop"]["details"]["nodes"]["m1"]["spec"] == "+0 x1"


def test_clock_docker_rate_is_read_back(run):
    _, faults, _ = run
    eff = faults["drift"]["stop"]["effect"]
    assert eff["effective"] is True, eff
    assert eff["evidence"]["nodes"]["m3"]["rate_seen"] == pytest.approx(2.0, abs=0.2)


def test_clock_docker_cpu_quota_set_and_restored(run):
    _, faults, _ = run
    f = faults["starve"]
    rec = f["start"]["details"]["nodes"]["m2"]
    assert rec["after"]["cpus"] == pytest.approx(0.05) and rec["after"]["cpu_quota"] == 5000
    back = f["stop"]["details"]["nodes"]["m2"]["after"]
    assert back["cpus"] == 0.0, back                                        # no quota again
    assert f["stop"]["effect"]["effective"] is True


def test_clock_docker_memory_limit_set_and_restored(run):
    _, faults, _ = run
    f = faults["squeeze"]
    rec = f["start"]["details"]["nodes"]["w1"]
    assert rec["after"]["memory"] == 150_000_000
    back = f["stop"]["details"]["nodes"]["w1"]
    assert back["after"]["memory"] == rec["before"]["memory"] > 150_000_000
    assert back["oom_killed"] is False and f["stop"]["effect"]["acted"] == "limit-in-force"
