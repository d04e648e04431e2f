"""The swarm backend on a one-node swarm (issue 15): a 3 + 5 cluster comes up on an attachable
overlay network, node faults act on the node's container through its host's engine and stay in
effect (a killed node stays dead until restarted, and comes back with its volume), the shipped
isolation and kill experiments reach the same verdicts as on the local backend (VALID, as
tests/docker/test_run_docker.py asserts for the local run), and `down` leaves nothing: no container,
overlay network, volume or service, and the swarm state as it was.

The engine is put in swarm mode when it is not (`docker swarm init --advertise-addr 127.0.0.1`, the
session fixture `swarm_mode` in conftest.py) and taken out at the end of the session, with the
docker_gwbridge network the init made; skipped, with the engine's answer, only when the engine
refuses swarm mode. A local-backend cluster (bridge network, published loopback ports) must
keep working meanwhile: one is brought up while the engine is in swarm mode.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from chaos.env import cleanup
from chaos.env import labels as L
from chaos.env import nodeops
from chaos.env.cluster import find_cluster
from chaos.env.swarm import BACKEND_LABEL, HOST_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STATE_WAIT_S = 30.0


@pytest.fixture(scope="module")
def swarm(swarm_mode):
    return swarm_mode


def _ours(client, name: str) -> dict[str, list[str]]:
    sel = L.selector(cluster=name)
    return {"containers": [c.name for c in client.containers.list(all=True, filters=sel)],
            "networks": [n.name for n in client.networks.list(filters=sel)],
            "volumes": [v.name for v in client.volumes.list(filters=sel)],
            "services": [s.name for s in client.services.list(filters=sel)]}


def _await(cond, what: str, timeout_s: float = STATE_WAIT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.2)


def test_swarm_up_3x5_node_faults_stay_and_down_leaves_nothing(swarm, node_image, chaos_cmd, cluster_name):
    proc = chaos_cmd("up", "--backend", "swarm", "--name", cluster_name, "--managers", "3", "--workers", "5",
                     "--image", node_image, "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["backend"] == "swarm"
    assert {n["host"] for n in summary["nodes"].values()} == {"local"}
    assert len(summary["nodes"]) == 8
    # one attachable overlay network, created on the manager, carrying the inventory
    nets = swarm.networks.list(filters=L.selector(cluster=cluster_name))
    assert len(nets) == 1 and nets[0].attrs["Driver"] == "overlay" and nets[0].attrs["Attachable"]
    assert nets[0].attrs["Labels"][BACKEND_LABEL] == "swarm"
    # plain containers on it, each labelled with its host; nothing published but on the harness host's
    # loopback; no Swarm service
    for c in swarm.containers.list(filters=L.selector(cluster=cluster_name)):
        assert c.labels[HOST_LABEL] == "local"
        for binds in (c.attrs["NetworkSettings"]["Ports"] or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in binds or [])
    assert swarm.services.list(filters=L.selector(cluster=cluster_name)) == []

    cluster = find_cluster(swarm, cluster_name)
    assert cluster.backend == "swarm" and cluster.host_of("w2") == "local"
    volume_before = [m["Name"] for m in cluster.container("w2").attrs["Mounts"]]
    # kill: the container stays dead -- long enough for the leader to declare w2 DOWN (a Swarm
    # service would have replaced it by then) -- until the nemesis restarts it
    nodeops.kill(cluster, "w2")

    def w2_down():
        st = cluster.status(cluster.managers[0]) or {}
        leader = st.get("leader")
        lst = cluster.status(leader) if leader else None
        return lst and (lst.get("workers") or {}).get("w2") == "down"
    _await(w2_down, "the leader marks the killed w2 down")
    cluster.container("w2").reload()
    assert cluster.container("w2").status == "exited"
    nodeops.start(cluster, "w2", op="restart")
    assert [m["Name"] for m in cluster.container("w2").attrs["Mounts"]] == volume_before
    _await(lambda: (cluster.status("w2") or {}).get("node") == "w2", "w2 answers again after restart")
    # pause / unpause act on the container on its host
    nodeops.pause(cluster, "w3")
    assert cluster.status("w3", timeout_s=0.5) is None
    nodeops.unpause(cluster, "w3")
    _await(lambda: cluster.status("w3") is not None, "w3 answers after unpause")

    down = chaos_cmd("down", "--name", cluster_name)
    assert down.returncode == 0, down.stderr
    assert _ours(swarm, cluster_name) == {"containers": [], "networks": [], "volumes": [], "services": []}


def test_local_backend_still_works_while_the_engine_is_in_swarm_mode(swarm, node_image, chaos_cmd, cluster_name):
    proc = chaos_cmd("up", "--name", cluster_name, "--managers", "1", "--workers", "1", "--image", node_image,
                     "--json", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["backend"] == "local"
    nets = swarm.networks.list(filters=L.selector(cluster=cluster_name))
    assert [n.attrs["Driver"] for n in nets] == ["bridge"]
    assert chaos_cmd("down", "--name", cluster_name).returncode == 0


@pytest.mark.parametrize("experiment", ["leader-isolated", "leader-killed"])
def test_swarm_experiment_has_the_local_verdict(swarm, node_image, chaos_cmd, tmp_path, experiment):
    name = f"ts{experiment.split('-')[1][:4]}"
    try:
        proc = chaos_cmd("run", str(ROOT / "experiments" / f"{experiment}.yaml"), "--seed", "11", "--backend",
                         "swarm", "--name", name, "--out", str(tmp_path), timeout=400)
        left = _ours(swarm, name)
    finally:
        cleanup.remove_objects(swarm, cluster=name)
    (run_dir,) = list(tmp_path.iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    verdicts = {c["name"]: c["verdict"] for c in results["checks"]}
    assert proc.returncode == 0, (verdicts, proc.stderr[-3000:])
    assert set(verdicts.values()) == {"VALID"}
    run = json.loads((run_dir / "run.json").read_text())
    assert run["backend"] == "swarm" and run["hosts"] == [{"name": "local", "engine": "local"}]
    assert all(v["host"] == "local" for v in run["nodes"].values())
    assert ">host</th>" in (run_dir / "report.html").read_text()
    assert left == {"containers": [], "networks": [], "volumes": [], "services": []}


def test_image_copy_streams_save_to_load_and_checks_the_id(docker_client, node_image):
    """The registry-free copy of `up --backend swarm` (save on one engine, load on another, by id).
    Here both ends are this engine, reached through two clients; the new tag exists only if the load
    and tag went through."""
    from chaos.env.engine import connect
    from chaos.env.swarm import copy_image, ensure_image

    image_id = docker_client.images.get(node_image).id
    tag = f"chaos-copytest:{os.urandom(4).hex()}"
    other = connect(timeout_s=300)
    try:
        assert copy_image(docker_client, other, image_id, tag) == "copied"
        assert other.images.get(tag).id == image_id
        assert ensure_image(docker_client, other, tag) == "present"
    finally:
        docker_client.images.remove(tag, noprune=True)
        other.close()
