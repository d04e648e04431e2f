"""`chaos export` and `chaos shrink` on real clusters: a planted run fails, the shrink drops the fault
that does not matter, the result validates, fails again in its confirmation runs, is smaller, the
budget holds, and every cluster a candidate started is gone.

Cost: one run (~40 s) and a shrink with a 12-minute budget (on a quiet machine it ends well before:
runs take 17-40 s; at load 40 a run took up to 112 s and 8 minutes fitted one candidate).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from chaos.env import cleanup

ROOT = Path(__file__).resolve().parents[2]
EXP = ROOT / "tests" / "docker" / "experiments" / "shrink-two-faults.yaml"
BUDGET_MIN = 12
SHRINK_BOUND_S = BUDGET_MIN * 60 + 300  # the budget, plus a last run that overran it
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(SHRINK_BOUND_S + 900)]


def _shrink(chaos_popen, run_dir: Path) -> tuple[int, str, str]:
    """`chaos shrink` bounded by SHRINK_BOUND_S; past it SIGINT (it removes the cluster of the run in
    progress and writes minimal.yaml), never SIGKILL first: a killed shrink would leave a cluster."""
    proc = chaos_popen("shrink", str(run_dir), "--tries", "2", "--budget", f"{BUDGET_MIN}m")
    try:
        out, err = proc.communicate(timeout=SHRINK_BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=180)
        err += "\n(test: interrupted past its bound)"
    return proc.returncode, out, err


def test_shrink_docker_drops_the_irrelevant_fault_and_the_result_still_fails(tmp_path, docker_client, node_image,
                                                                                chaos_cmd, chaos_popen, cluster_name):
    proc = chaos_cmd("run", str(EXP), "--seed", "1", "--plant", "vote_not_persisted", "--name", cluster_name,
                     "--out", str(tmp_path), timeout=400)
    assert proc.returncode == 1, f"the planted run should fail raft-safety: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]

    exported = tmp_path / "exported.yaml"
    assert chaos_cmd("export", str(run_dir), "--out", str(exported)).returncode == 0
    plan = chaos_cmd("plan", str(exported), "--seed", "1", "--json")
    assert json.loads(plan.stdout) == json.loads((run_dir / "plan.json").read_text())

    code, stdout, stderr = _shrink(chaos_popen, run_dir)
    out = run_dir / "shrink"
    assert code == 0, f"{stdout[-2000:]}\n{stderr[-2000:]}\n" + (
        (out / "shrink.jsonl").read_text()[-3000:] if (out / "shrink.jsonl").exists() else "")
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["check"] == "raft-safety"
    assert (summary["faults_before"], summary["faults_after"]) == (2, 1)
    assert summary["faults_kept"] == ["kill-leader"]
    assert summary["duration_after_s"] < summary["duration_before_s"]
    assert summary["confirm_failed"] >= 1 and summary["repro_rate"] > 0
    assert summary["shrink_minutes"] <= BUDGET_MIN + 0.5, "the budget was not respected"
    assert "faults     2 -> 1" in stdout and "reproduced" in stdout

    assert chaos_cmd("validate", str(out / "minimal.yaml")).returncode == 0
    # every candidate is a normal run directory, judged, and its cluster is gone
    log = [json.loads(x) for x in (out / "shrink.jsonl").read_text().splitlines()]
    dirs = [t["run_dir"] for rec in log if "candidate" in rec for t in rec["tries"]]
    dirs += [rec["run_dir"] for rec in log if "confirm" in rec and rec.get("run_dir")]
    assert dirs
    for d in map(Path, dirs):
        assert d.parent == out and (d / "results.json").is_file() and (d / "experiment.yaml").is_file()
        name = json.loads((d / "run.json").read_text())["cluster_name"]
        assert cleanup.remaining(docker_client, cluster=name) == 0, f"{d}: cluster {name} left behind"
