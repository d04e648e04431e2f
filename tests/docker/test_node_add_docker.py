"""Docker integration of joining (issue 23): `chaos node add --role manager` starts a new manager
in a running 3-manager cluster under a spare id (its link proxies made at `chaos up`), with the
cluster's join token; it joins as a learner and is a voter in a committed configuration, holds the
log, and `chaos down` removes it with the rest. A manager whose disk was wiped and that comes back
under its OLD id is refused by the cluster (identity-in-use while the id is a member; identity-retired
once removed) and its process exits 4; the Swarm way, a new id, is accepted."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time

import pytest

from chaos.env import cleanup

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SEED = 2424


@pytest.fixture(scope="module")
def cluster_n(docker_client, node_image, request):
    name = f"tn{secrets.token_hex(3)}"
    request.addfinalizer(lambda: cleanup.remove_objects(docker_client, cluster=name))
    proc = subprocess.run([sys.executable, "-m", "chaos.cli", "up", "--name", name, "--managers", "3",
                           "--workers", "1", "--spares", "2", "--spare-workers", "0", "--seed", str(SEED),
                           "--image", node_image, "--timeout", "150", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"seed {SEED}: {proc.stderr[-3000:]}"
    assert json.loads(proc.stdout)["spares"] == ["m4", "m5"]
    return name


def _status(chaos_cmd, name) -> dict:
    proc = chaos_cmd("status", "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _exit_status(container, timeout_s: float = 60.0) -> int | None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        container.reload()
        if not container.attrs["State"].get("Running") and container.attrs["State"].get("Status") == "exited":
            return container.attrs["State"].get("ExitCode")
        time.sleep(0.2)
    return None


def test_node_add_manager_joins_a_running_cluster_and_becomes_a_voter(cluster_n, chaos_cmd, docker_client):
    name = cluster_n
    assert _status(chaos_cmd, name)["config"]["voters"] == ["m1", "m2", "m3"]
    p = chaos_cmd("node", "add", "--cluster", name, "--role", "manager", "--json", "--wait", "120")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["node"] == "m4" and out["token"] == "given"
    assert "m4" in out["config"]["voters"] and out["config"]["committed"] is True
    doc = _status(chaos_cmd, name)
    assert doc["config"]["voters"] == ["m1", "m2", "m3", "m4"], doc["config"]
    assert doc["nodes"]["m4"]["kind"] == "manager" and doc["nodes"]["m4"]["raft"] == "voter"
    assert doc["spares"] == ["m5"]
    # it holds the log: its applied index reaches the leader's commit index
    from chaos.env.cluster import require_cluster
    cluster = require_cluster(docker_client, name)
    leader = next(n for n, v in doc["nodes"].items() if (v["status"] or {}).get("role") == "leader")
    commit = cluster.status(leader)["commit_index"]
    end = time.monotonic() + 30
    while (cluster.status("m4") or {}).get("applied_index", -1) < commit and time.monotonic() < end:
        time.sleep(0.2)
    assert cluster.status("m4")["applied_index"] >= commit
    journal = cluster.journal("m4")
    confs = [("m4" in e["voters"], "m4" in e.get("learners", [])) for e in journal if e["type"] == "config"]
    assert (False, True) in confs and confs[-1] == (True, False), confs   # a learner before a voter
    # labelled with the cluster: found by label like every node (chaos down removes it)
    labels = cluster.container("m4").labels
    assert labels["chaos.cluster"] == name and labels["chaos.node"] == "m4"
    # the id is taken now
    p = chaos_cmd("node", "add", "--cluster", name, "--role", "manager", "--id", "m4")
    assert p.returncode == 2 and "in use" in p.stderr, p.stderr


def test_a_wiped_manager_under_its_old_id_is_refused_and_a_new_id_is_not(cluster_n, chaos_cmd, docker_client):
    from chaos import membership
    from chaos.env import nodeops
    from chaos.env.cluster import require_cluster
    from chaos.env.up import restart_as_joiner

    name = cluster_n
    cluster = require_cluster(docker_client, name)
    doc = _status(chaos_cmd, name)
    leader = next(n for n, v in doc["nodes"].items() if (v["status"] or {}).get("role") == "leader")
    victim = next(m for m in ("m1", "m2", "m3") if m != leader)
    token = membership.join_token(membership.http_call, nodeops.api_urls(cluster))
    nodeops.wipe(cluster, victim)                        # its disk lost (all but the journal)
    restart_as_joiner(cluster, victim, token)            # same id, empty disk: it could vote twice
    assert _exit_status(cluster.container(victim)) == 4, cluster.logs(victim)[-2000:]
    assert "identity-in-use" in cluster.logs(victim)
    assert victim in _status(chaos_cmd, name)["config"]["voters"]   # still a member, never re-added
    # the Swarm way: remove it, then a fresh manager under a new id
    p = chaos_cmd("node", "rm", victim, "--force", "--name", name, "--wait", "60")
    assert p.returncode == 0, p.stderr
    p = chaos_cmd("node", "add", "--cluster", name, "--role", "manager", "--json", "--wait", "120")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["node"] == "m5"
    cfg = _status(chaos_cmd, name)["config"]
    assert "m5" in cfg["voters"] and victim not in cfg["voters"] + cfg["learners"], cfg
    # and the removed id stays retired, whatever its disk holds
    nodeops.wipe(cluster, victim)
    restart_as_joiner(cluster, victim, token)
    assert _exit_status(cluster.container(victim)) == 4, cluster.logs(victim)[-2000:]
    assert "identity-retired" in cluster.logs(victim)
    # no spare left: a clear error, nothing started
    p = chaos_cmd("node", "add", "--cluster", name, "--role", "manager")
    assert p.returncode == 2 and "no spare manager id left" in p.stderr, p.stderr
