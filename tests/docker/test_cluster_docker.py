"""Docker integration: a real cluster through the real `chaos` entry point.

One 3-manager / 5-worker cluster per module (bringing one up costs ~20 s on the shared 2-core
machine): `up` -> `status` shows one leader and every worker READY -> hardening and labels as
promised -> node operations record when they took effect -> a second cluster at the same time stays
separate -> `down` leaves nothing with the cluster's label.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.parse

import pytest

from chaos.env import cleanup
from chaos.env import labels as L
from chaos.env import nodeops
from chaos.env.cluster import require_cluster

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SEED = 4242
READY_TIMEOUT = "150"


def _wait(cond, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def cluster_a(docker_client, node_image, request):
    from chaos.env.cluster import find_cluster  # noqa: F401  (import check before the long wait)
    import secrets
    import subprocess
    import sys

    name = f"ta{secrets.token_hex(3)}"
    request.addfinalizer(lambda: cleanup.remove_objects(docker_client, cluster=name))
    proc = subprocess.run([sys.executable, "-m", "chaos.cli", "up", "--name", name, "--managers", "3",
                           "--workers", "5", "--seed", str(SEED), "--image", node_image,
                           "--timeout", READY_TIMEOUT, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"seed {SEED}: {proc.stderr[-3000:]}"
    return name, json.loads(proc.stdout)


def _subnet(docker_client, name):
    (net,) = docker_client.networks.list(filters=L.selector(cluster=name))
    net.reload()
    return ipaddress.ip_network(net.attrs["IPAM"]["Config"][0]["Subnet"])


def test_cluster_up_prints_seed_and_where_things_are(cluster_a, docker_client):
    name, summary = cluster_a
    assert summary["seed"] == SEED and summary["cluster"] == name
    assert set(summary["nodes"]) == {"m1", "m2", "m3", "w1", "w2", "w3", "w4", "w5"}
    # this machine's engine runs on this host: the harness reaches each container at its address on
    # the cluster network, and nothing is published (chaos.env.up.host_reaches_network)
    subnet = _subnet(docker_client, name)
    for info in summary["nodes"].values():
        for url in (info["api"], info["client"]):
            host = urllib.parse.urlsplit(url).hostname
            assert ipaddress.ip_address(host) in subnet, (url, subnet)
    # client links + every directed pair; no spare ids unless asked (`chaos up --spares N`)
    assert summary["spares"] == []
    assert summary["toxiproxy"]["proxies"] == 8 + 8 * 7


def test_cluster_status_shows_one_leader_and_all_workers(cluster_a, chaos_cmd, docker_client):
    name, _ = cluster_a
    proc = chaos_cmd("status", "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ready"], doc["not_ready"]
    managers = {n: v["status"] for n, v in doc["nodes"].items() if v["kind"] == "manager"}
    assert len(managers) == 3
    leaders = [n for n, st in managers.items() if st["role"] == "leader"]
    assert len(leaders) == 1
    assert {st["leader"] for st in managers.values()} == set(leaders)
    assert managers[leaders[0]]["workers"] == {f"w{i}": "ready" for i in range(1, 6)}
    assert doc["toxiproxy"]["proxies"] == 64 and doc["toxiproxy"]["active"] == []
    assert doc["spares"] == []
    cluster = require_cluster(docker_client, name)
    journal = cluster.journal(leaders[0])
    assert journal and journal[0]["type"] == "boot" and all(e["node"] == leaders[0] for e in journal)
    assert any(e["type"] == "role" and e["role"] == "leader" for e in journal)
    table = chaos_cmd("status", "--name", name)
    assert table.returncode == 0 and "leader" in table.stdout and "ready" in table.stdout


def test_cluster_probe_through_toxiproxy_links(cluster_a, docker_client):
    """The probe callable LinkController.verify uses: node->node via the agent's POST /probe, and
    client->node via the client proxy. Both dial fresh connections through Toxiproxy and write at
    once, retried within a deadline as verify does."""
    name, _ = cluster_a
    cluster = require_cluster(docker_client, name)
    _wait(lambda: cluster.probe("m1", "m2", timeout_ms=2000), 20, "probe m1->m2 through Toxiproxy")
    _wait(lambda: cluster.probe("w1", "m3", timeout_ms=2000), 20, "probe w1->m3 through Toxiproxy")
    _wait(lambda: cluster.probe("client", "w1", timeout_ms=2000), 20, "client -> w1 through Toxiproxy")


def test_cluster_containers_are_hardened_labelled_and_loopback_only(cluster_a, docker_client):
    name, _ = cluster_a
    containers = docker_client.containers.list(all=True, filters=L.selector(cluster=name))
    assert len(containers) == 9
    run_ids = {c.labels[L.RUN_LABEL] for c in containers}
    assert len(run_ids) == 1
    for c in containers:
        hc, cfg = c.attrs["HostConfig"], c.attrs["Config"]
        assert cfg["User"] == "10001"
        assert hc["CapDrop"] == ["ALL"] and "no-new-privileges" in hc["SecurityOpt"]
        assert hc["ReadonlyRootfs"] and hc["Init"] and hc["Memory"] > 0 and hc["PidsLimit"] > 0
        assert not hc.get("Privileged")
        # nothing published at all (the harness reaches the network); CHAOS_PUBLISH_PORTS=1 publishes
        # on 127.0.0.1 only: test_cluster_publish_ports_on_loopback_when_asked
        assert not hc.get("PortBindings"), hc.get("PortBindings")
        assert not any((c.attrs["NetworkSettings"]["Ports"] or {}).values())
        assert c.labels[L.TOOL_LABEL] == "chaos" and c.labels[L.CLUSTER_LABEL] == name
        assert c.labels[L.KIND_LABEL] in ("manager", "worker", "toxiproxy")
    shares = {c.labels[L.KIND_LABEL]: c.attrs["HostConfig"]["CpuShares"] for c in containers}
    assert shares["toxiproxy"] > shares["manager"] > shares["worker"], "workers must not starve managers"
    for v in docker_client.volumes.list(filters=L.selector(cluster=name)):
        assert v.attrs["Labels"][L.RUN_LABEL] in run_ids
    nets = docker_client.networks.list(filters=L.selector(cluster=name))
    assert len(nets) == 1


def test_cluster_node_operations_record_effect_times(cluster_a, docker_client):
    name, _ = cluster_a
    cluster = require_cluster(docker_client, name)
    before = cluster.status("w1")
    assert before is not None
    rec = nodeops.kill(cluster, "w1")
    assert rec.requested_ts <= rec.effective_ts + 0.05 and rec.detail["exit_code"] != 0
    assert cluster.status("w1", timeout_s=0.5) is None
    rec = nodeops.restart(cluster, "w1")
    assert rec.effective_ts >= rec.requested_ts - 0.05
    cluster.refresh()
    after = _wait(lambda: cluster.status("w1"), 60, "w1 to answer after restart")
    assert after["boot"] == before["boot"] + 1  # same data volume: the node knows it restarted

    rec = nodeops.pause(cluster, "w2")
    assert cluster.container("w2").attrs["State"]["Paused"]
    assert cluster.status("w2", timeout_s=0.5) is None
    rec2 = nodeops.unpause(cluster, "w2")
    assert rec2.effective_ts >= rec.effective_ts
    _wait(lambda: cluster.status("w2"), 30, "w2 to answer after unpause")

    rec = nodeops.stop(cluster, "w3", grace_s=5)
    assert rec.op == "stop" and not cluster.container("w3").attrs["State"]["Running"]
    nodeops.start(cluster, "w3")
    cluster.refresh()
    _wait(lambda: cluster.status("w3"), 60, "w3 to answer after start")
    # the cluster heals back to ready after all of that
    cluster.wait_ready(120)


def test_cluster_nodes_keep_their_addresses_across_restarts(cluster_a, docker_client):
    """Two nodes killed, then started in the other order, come back at their own addresses. (With
    engine-assigned addresses they swapped, and a proxy dialling a peer by name reached the other
    node or nobody; see chaos/env/up.py _create_network.)"""
    name, _ = cluster_a
    cluster = require_cluster(docker_client, name)

    def address(node):
        c = cluster.container(node)
        c.reload()
        return [n["IPAddress"] for n in c.attrs["NetworkSettings"]["Networks"].values()][0]

    before = {n: address(n) for n in ("w4", "w5")}
    assert before["w4"] != before["w5"] and all(before.values())
    nodeops.kill(cluster, "w4")
    nodeops.kill(cluster, "w5")
    nodeops.start(cluster, "w5")  # the other order: w5 would take the first free address
    nodeops.start(cluster, "w4")
    cluster.refresh()
    assert {n: address(n) for n in ("w4", "w5")} == before
    for n in ("w4", "w5"):
        _wait(lambda: cluster.status(n), 60, f"{n} to answer after restart")


def test_cluster_two_at_once_stay_separate(cluster_a, cluster_name, docker_client, chaos_cmd, node_image):
    """B is brought up with CHAOS_PUBLISH_PORTS=1 (the path of an engine the host cannot route to:
    Docker Desktop, rootless): its ports are published on 127.0.0.1 only and reached there, beside
    A, whose containers are reached at their addresses."""
    name_a, _ = cluster_a
    proc = chaos_cmd("up", "--name", cluster_name, "--managers", "1", "--workers", "2", "--seed", "7",
                     "--image", node_image, "--timeout", READY_TIMEOUT, "--json", timeout=300,
                     env={"CHAOS_PUBLISH_PORTS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    b = json.loads(proc.stdout)
    assert set(b["nodes"]) == {"m1", "w1", "w2"}
    for info in b["nodes"].values():
        assert info["api"].startswith("http://127.0.0.1:") and info["client"].startswith("http://127.0.0.1:")
    a_cluster = require_cluster(docker_client, name_a)
    b_cluster = require_cluster(docker_client, cluster_name)
    published = 0
    for node in b_cluster.nodes + b_cluster.toxiproxy_nodes:
        for bindings in (b_cluster.container(node).attrs["NetworkSettings"]["Ports"] or {}).values():
            for bind in bindings or []:
                assert bind["HostIp"] == "127.0.0.1", bind
                published += 1
    assert published == 3 + 1 + 3   # each node's API, the Toxiproxy API, a client link per node
    net_a = set(a_cluster.container("m1").attrs["NetworkSettings"]["Networks"])
    net_b = set(b_cluster.container("m1").attrs["NetworkSettings"]["Networks"])
    assert net_a.isdisjoint(net_b)
    # each cluster's m1 answers on its own port with its own view
    assert a_cluster.status("m1")["members"].keys() != b_cluster.status("m1")["members"].keys()
    # a name that is up cannot be brought up twice
    again = chaos_cmd("up", "--name", cluster_name, "--image", node_image)
    assert again.returncode == 2 and "already up" in again.stderr
    down = chaos_cmd("down", "--name", cluster_name)
    assert down.returncode == 0, down.stderr
    assert cleanup.remaining(docker_client, cluster_name) == 0
    assert a_cluster.wait_ready(60) >= 0  # A is untouched by B's down


def test_cluster_down_leaves_nothing(cluster_a, docker_client, chaos_cmd):
    name, _ = cluster_a
    proc = chaos_cmd("down", "--name", name)
    assert proc.returncode == 0, proc.stderr
    assert "removed cluster" in proc.stdout
    assert cleanup.remaining(docker_client, name) == 0
    again = chaos_cmd("status", "--name", name)
    assert again.returncode == 2 and "no cluster named" in again.stderr
