"""The agent's Swarm semantics on real containers from the built image, every link through Toxiproxy
(issue 4's proof, container tier): a leader is elected; a service's replicas run on workers; a
SIGKILLed worker is marked DOWN and its tasks are replaced elsewhere (never moved); a SIGKILLed
leader is replaced and every acknowledged write stays readable; the old leader, restarted from its
volume, catches up to the same store.
"""

from __future__ import annotations

import time

import pytest
import requests

from chaos.env import nodeops
from chaos.env.spec import ClusterSpec
from chaos.env.up import bring_up

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SEED = 5


def wait_for(pred, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except (requests.RequestException, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (seed {SEED}); last: {last!r}")


def _get(url: str) -> dict:
    resp = requests.get(url, timeout=5)
    resp.raise_for_status()
    return resp.json()


def _leader(c, managers) -> str | None:
    sts = [c.status(m) for m in managers]
    leaders = {s.get("leader") for s in sts if s}
    if len(leaders) == 1 and None not in leaders and all(sts):
        leader = leaders.pop()
        return leader if leader in managers else None
    return None


def _running(c, leader, service="web") -> dict:
    tasks = _get(c.api_url(leader) + "/store").get("tasks", {})
    return {t: v for t, v in tasks.items() if v["service"] == service and v["state"] == "running"}


def test_agent_containers_worker_kill_leader_kill_restart(docker_client, node_image, cluster_name):
    spec = ClusterSpec(name=cluster_name, managers=3, workers=3, seed=SEED,
                       agent_env=(("CHAOS_DISPATCHER_HEARTBEAT_MS", "300"), ("CHAOS_DISPATCHER_GRACE", "3")))
    c = bring_up(docker_client, spec, node_image, 120).cluster
    leader = wait_for(lambda: _leader(c, c.managers), 30, "a leader")

    resp = requests.post(c.api_url(leader) + "/services", json={"name": "web", "replicas": 3}, timeout=10)
    assert resp.status_code == 200, resp.text
    tasks = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(_running(c, leader)), 30, "3 running tasks")
    by_worker: dict[str, list[str]] = {}
    for tid, t in tasks.items():
        by_worker.setdefault(t["worker"], []).append(tid)

    acked = {}
    for i in range(15):  # through the client proxies, some via followers (forwarded to the leader)
        node = c.managers[i % 3]
        resp = requests.put(c.client_url(node) + f"/kv/k{i}", json={"value": 1000 + i}, timeout=10)
        assert resp.status_code == 200 and resp.json()["ok"], resp.text
        acked[f"k{i}"] = 1000 + i

    victim = max(sorted(by_worker), key=lambda w: len(by_worker[w]))
    nodeops.kill(c, victim)
    wait_for(lambda: _get(c.api_url(leader) + "/store")["nodes"].get(victim, {}).get("state") == "down",
             30, f"{victim} marked down")
    live = wait_for(lambda: (lambda r: r if len(r) == 3 and all(v["worker"] != victim for v in r.values())
                             else None)(_running(c, leader)), 60, "tasks replaced on live workers")
    assert not set(live) & set(by_worker[victim]), "replacements are new tasks"
    store_tasks = _get(c.api_url(leader) + "/store")["tasks"]
    for tid in by_worker[victim]:
        assert store_tasks[tid]["worker"] == victim, "an assigned task never moves"

    leader = wait_for(lambda: _leader(c, c.managers), 30, "the current leader")
    before = c.status(leader)
    nodeops.kill(c, leader)
    rest = [m for m in c.managers if m != leader]
    new_leader = wait_for(lambda: _leader(c, rest), 30, "a new leader")
    assert new_leader != leader
    for key, value in acked.items():
        body = wait_for(lambda: _get(c.client_url(new_leader) + f"/kv/{key}"), 20, f"read {key}")
        assert body["value"] == value, (key, body)

    nodeops.start(c, leader)
    st = wait_for(lambda: c.status(leader), 30, "the restarted manager answering")
    assert st["boot"] == 2, "the node restarted from its volume"
    assert st["last_log_index"] >= before["commit_index"], "the log was reloaded from disk"

    def caught_up():
        a, b = c.status(leader), c.status(new_leader)
        return a and b and a["applied_index"] == b["applied_index"] and a["store_digest"] == b["store_digest"]

    wait_for(caught_up, 60, "the restarted manager caught up")
