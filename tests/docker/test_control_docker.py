"""Control runs on real containers: `chaos run FILE --control` plans the faults, logs them as `sham`
and never applies them, so a shipped experiment must come out inconclusive (exit 3) with its fault
expectations named as never observed. A file VALID here would prove nothing about its faults.
(benchmarks/control.py runs every shipped file this way.)
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SEED = 1


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("experiment, faults", [
    ("leader-killed", ["kill-leader"]),   # a node fault
    ("split-clients", ["split"]),         # a partition
])
def test_control_run_of_a_shipped_file_is_inconclusive(tmp_path, docker_client, node_image, chaos_cmd,
                                                       experiment, faults):
    name = f"tctl{secrets.token_hex(2)}"
    try:
        proc = chaos_cmd("run", str(ROOT / "experiments" / f"{experiment}.yaml"), "--seed", str(SEED),
                         "--control", "--name", name, "--out", str(tmp_path), "--junit",
                         str(tmp_path / "junit.xml"), timeout=600)
    finally:
        left = cleanup.remaining(docker_client, cluster=name)
        cleanup.remove_objects(docker_client, cluster=name)
    assert left == 0, "the control run left Docker objects behind"
    assert proc.returncode == 3, f"{experiment} under --control: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "CONTROL RUN" in proc.stderr + proc.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["control"] is True and run["outcome"] == "completed"
    rows = _rows(run_dir / "faults.jsonl")
    assert {r["action"] for r in rows} == {"sham", "heal"}, "nothing may be applied in a control run"
    for fid in faults:
        shams = [r for r in rows if r["fault"] == fid]
        assert [r["details"]["would"] for r in shams] == ["start", "stop"] and shams[0]["targets"], shams
    results = json.loads((run_dir / "results.json").read_text())
    assert results["verdict"] == "UNKNOWN"
    exp = next(c for c in results["checks"] if c["checker"] == "expectations")
    never = exp["evidence"]["never_observed"]
    for fid in faults:
        assert f"fault-effective:{fid}" in never, never
        assert "sham" in exp["evidence"]["expectations"][f"fault-effective:{fid}"]["detail"]
    junit = (tmp_path / "junit.xml").read_text()
    assert "CONTROL RUN: faults not applied" in junit and 'name="control" value="true"' in junit
