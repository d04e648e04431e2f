"""Docker integration of membership (issue 23): `chaos node promote|demote|rm` against a real
cluster (3 managers, 2 workers, every link through Toxiproxy), and `chaos status` showing the
configuration. A promoted worker needs no new link: every pair of nodes has its proxies already."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SEED = 2323


@pytest.fixture(scope="module")
def cluster_m(docker_client, node_image, request):
    name = f"tm{secrets.token_hex(3)}"
    request.addfinalizer(lambda: cleanup.remove_objects(docker_client, cluster=name))
    proc = subprocess.run([sys.executable, "-m", "chaos.cli", "up", "--name", name, "--managers", "3",
                           "--workers", "2", "--seed", str(SEED), "--image", node_image, "--timeout", "150",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"seed {SEED}: {proc.stderr[-3000:]}"
    return name


def _status(chaos_cmd, name) -> dict:
    proc = chaos_cmd("status", "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_membership_cli_demote_promote_worker_rm_leader(cluster_m, chaos_cmd):
    name = cluster_m
    doc = _status(chaos_cmd, name)
    assert doc["config"]["voters"] == ["m1", "m2", "m3"]
    leader = next(n for n, v in doc["nodes"].items() if (v["status"] or {}).get("role") == "leader")
    f = next(m for m in ("m1", "m2", "m3") if m != leader)
    p = chaos_cmd("node", "rm", f, "--name", name)
    assert p.returncode == 5 and "is-voter" in p.stderr, p.stderr          # refused: demote first
    p = chaos_cmd("node", "demote", f, "--name", name)
    assert p.returncode == 0, p.stderr
    assert _status(chaos_cmd, name)["nodes"][f]["raft"] == "learner"
    p = chaos_cmd("node", "promote", f, "--name", name)
    assert p.returncode == 0, p.stderr
    p = chaos_cmd("node", "promote", "w1", "--name", name, "--wait", "60")
    assert p.returncode == 0, p.stderr
    doc = _status(chaos_cmd, name)
    assert doc["config"]["voters"] == sorted(["m1", "m2", "m3", "w1"]), doc["config"]
    assert doc["nodes"]["w1"]["status"]["kind"] == "manager"
    p = chaos_cmd("node", "rm", leader, "--force", "--name", name, "--wait", "60")
    assert p.returncode == 0, p.stderr
    doc = _status(chaos_cmd, name)
    assert leader not in doc["config"]["voters"] and len(doc["config"]["voters"]) == 3
    assert doc["config"]["source"] != leader
    table = chaos_cmd("status", "--name", name)
    assert table.returncode == 0 and "configuration" in table.stdout and "learners -" in table.stdout
    p = chaos_cmd("node", "demote", "nosuch", "--name", name)
    assert p.returncode == 2
