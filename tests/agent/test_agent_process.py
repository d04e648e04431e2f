"""Process-level test: 3 managers + 3 workers as local processes on loopback, no proxy.

Proves, in one cluster lifetime (each step awaits its condition with a deadline, no fixed sleeps):
a leader is elected; a service's replicas run on workers; writes through followers and workers are
forwarded; scaling down stops a task; a killed worker is marked DOWN through Raft
and its tasks are replaced elsewhere (the old tasks stay on the dead worker, orphaned); a killed
leader is replaced; writes acknowledged before the leader kill are readable after it; a restarted
manager (same data dir) comes back with its log from disk and catches up to the same store digest.
"""

from __future__ import annotations

import os

import pytest

from swarmnode.agent.localcluster import (LocalCluster, call_until_ok, http, put_until_ok,
                                           wait_for)

pytestmark = [pytest.mark.process, pytest.mark.slow]

SEED = 7


@pytest.fixture(params=["10000", "10"], ids=["no-snapshot", "snapshot-every-10"])
def cluster(tmp_path, request):
    """With a snapshot every 10 entries, the restarted manager boots from a snapshot on disk."""
    c = LocalCluster(str(tmp_path), managers=3, workers=3, seed=SEED,
                     extra_env={"CHAOS_DISPATCHER_HEARTBEAT_MS": "300", "CHAOS_DISPATCHER_GRACE": "3",
                                "CHAOS_SNAPSHOT_ENTRIES": request.param})
    print(f"seed={SEED} workdir={tmp_path}")
    c.start_all()
    yield c
    c.stop_all()
    for n in c.ids:
        print(f"--- {n} log tail ---\n{c.log_tail(n)}")


def store_of(c: LocalCluster, node: str) -> dict:
    code, body = c.get(node, "/store")
    return body if code == 200 else {}


def running_tasks(c: LocalCluster, node: str, service: str) -> dict:
    tasks = store_of(c, node).get("tasks", {})
    return {t: v for t, v in tasks.items() if v["service"] == service and v["state"] == "running"}


def test_agent_cluster_survives_worker_and_leader_kill(cluster):
    c = cluster
    leader = wait_for(c.leader, 40, what="a leader")

    # a service's replicas run, on workers that really run them
    # (a retry after an indefinite error may find the service already created: 409 exists)
    code, body = call_until_ok("POST", [c.url(m, "/services") for m in c.manager_ids],
                               {"name": "web", "replicas": 3}, accept=(200, 409))
    assert code == 200 or body.get("error") == "exists", body
    tasks = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(running_tasks(c, leader, "web")),
                     20, what="3 running web tasks")
    by_worker = {}
    for tid, t in tasks.items():
        by_worker.setdefault(t["worker"], []).append(tid)
    for w, tids in by_worker.items():
        wait_for(lambda: set(tids) <= set(k for k, v in (c.status(w) or {}).get("tasks", {}).items()
                                          if v == "running"), 10, what=f"{w} running {tids}")

    # acknowledged writes, some through followers (forwarded over the peer transport)
    # (retries reuse client_id/seq, so a timed-out attempt that did apply is not applied twice)
    acked = {}
    for i in range(20):
        urls = [c.url(c.manager_ids[(i + j) % 3], f"/kv/k{i}") for j in range(3)]
        code, body = put_until_ok(urls, i, "t", i)
        assert code == 200, body
        acked[f"k{i}"] = i
    code, body = put_until_ok([c.url("w1", "/kv/via-worker")], 1, "tw", 0)  # workers forward too
    assert code == 200, body
    acked["via-worker"] = 1

    # kill the worker with the most tasks: it goes DOWN and its tasks are replaced elsewhere
    victim = max(sorted(by_worker), key=lambda w: len(by_worker[w]))
    c.kill(victim)
    wait_for(lambda: store_of(c, leader).get("nodes", {}).get(victim, {}).get("state") == "down",
             15, what=f"{victim} marked down")

    def replaced():
        st = store_of(c, leader).get("tasks", {})
        live = {t: v for t, v in st.items() if v["service"] == "web" and v["state"] == "running"}
        return live if len(live) == 3 and all(v["worker"] != victim for v in live.values()) else None

    wait_for(replaced, 40, what="web tasks replaced on live workers")
    final_tasks = store_of(c, leader)["tasks"]
    for tid in by_worker[victim]:
        assert final_tasks[tid]["worker"] == victim, "an assigned task never moves"
        assert final_tasks[tid]["state"] == "orphaned"

    # scale down: one slot's task is shut down and its process stopped
    code, body = call_until_ok("PUT", [c.url(m, "/services/web") for m in c.manager_ids],
                               {"replicas": 2})
    assert code == 200, body
    wait_for(lambda: len(running_tasks(c, leader, "web")) == 2, 30, what="2 running web tasks")
    stopped = [t for t, v in store_of(c, leader)["tasks"].items()
               if v["slot"] == 2 and v["state"] == "shutdown"]
    assert stopped
    for tid in stopped:
        w = final_tasks[tid]["worker"]
        wait_for(lambda: (c.status(w) or {}).get("tasks", {}).get(tid) != "running", 10,
                 what=f"{w} stopped {tid}")

    # kill the leader (asked afresh: a busy host may have caused an election since): another
    # manager takes over, and every acknowledged write is readable
    leader = wait_for(c.leader, 40, what="the current leader")
    before = c.status(leader)
    c.kill(leader)
    rest = [m for m in c.manager_ids if m != leader]
    new_leader = wait_for(lambda: c.leader(rest), 40, what="a new leader")
    assert new_leader != leader
    for k, v in sorted(acked.items()):
        code, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            http("GET", c.url(rest[0], f"/kv/{k}"), timeout=5)), 30, what=f"read {k}")
        assert body.get("value") == v, (k, code, body)

    # restart the old leader from its disk: it catches up to the same store
    c.start(leader)
    st = wait_for(lambda: c.status(leader), 20, what="restarted manager answering")
    assert st["boot"] == 2
    assert st["last_log_index"] >= before["commit_index"], "log reloaded from disk"
    if c.extra_env["CHAOS_SNAPSHOT_ENTRIES"] == "10":
        assert os.path.exists(os.path.join(c.workdir, leader, "raft", "snapshot.json"))
    wait_for(lambda: (lambda a, b: a and b and a.get("store_digest") == b.get("store_digest")
                      and a["applied_index"] == b["applied_index"])(
        store_of(c, leader), store_of(c, new_leader)), 20, what="restarted manager caught up")
    assert store_of(c, leader)["kv"] == store_of(c, new_leader)["kv"]

    # gossip: every live node sees the restarted manager alive again, and the dead worker not alive
    def gossip_agrees():
        for n in c.ids:
            if not c.alive(n):
                continue
            members = (c.status(n) or {}).get("members", {})
            if members.get(leader, {}).get("state") != "alive":
                return False
            if n != victim and members.get(victim, {}).get("state") == "alive":
                return False
        return True

    wait_for(gossip_agrees, 30, what="gossip views agree on who is alive")
