"""End to end at process level: real agents on loopback (swarmnode.agent.localcluster), a small
recorded client workload across a leader kill and restart, a run directory assembled the way
docs/contracts.md section 5 describes, then every default checker must say VALID and the
expectations (leader changed, node restarted, a kill applied) must be observed.

This is the checkers' proof against real journals, stores and statuses rather than synthetic ones.
Seeded; the seed and the run directory are printed on failure.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time

import pytest

from chaos.checkers import Verdict, run_checks
from chaos.settle import read_concurrently, settle

localcluster = pytest.importorskip("swarmnode.agent.localcluster")
LocalCluster, http, wait_for = localcluster.LocalCluster, localcluster.http, localcluster.wait_for

pytestmark = [pytest.mark.process, pytest.mark.slow]

SEED = 11
KEYS = ("a", "b", "c")


class Recorder:
    """Thread-safe history recorder in the contract's format."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[dict] = []

    def add(self, **ev):
        with self.lock:
            ev = {"index": len(self.events), **ev, "ts": time.time()}
            self.events.append(ev)


def _client(c, rec: Recorder, proc: int, n_ops: int, rng: random.Random, counter, stop_at: float):
    for _ in range(n_ops):
        if time.time() > stop_at:
            return
        node = rng.choice(c.manager_ids)
        key = rng.choice(KEYS)
        f = rng.choice(("read", "read", "write", "write", "cas", "delete"))
        if f == "write":
            value = next(counter)
        elif f == "cas":
            value = [rng.randrange(0, 6), next(counter)]
        else:
            value = None
        rec.add(process=proc, type="invoke", f=f, key=key, value=value)
        if f == "read":
            code, body = http("GET", c.url(node, f"/kv/{key}"), timeout=2.0)
        elif f == "write":
            code, body = http("PUT", c.url(node, f"/kv/{key}"), {"value": value}, timeout=2.0)
        elif f == "cas":
            code, body = http("POST", c.url(node, f"/kv/{key}/cas"), {"expected": value[0], "value": value[1]},
                              timeout=2.0)
        else:
            code, body = http("DELETE", c.url(node, f"/kv/{key}"), timeout=2.0)
        if code == 200 and body.get("ok"):
            out = body.get("value") if f == "read" else (body.get("existed") if f == "delete" else value)
            rec.add(process=proc, type="ok", f=f, key=key, value=out)
        elif code != 0 and body.get("definite") is True:
            rec.add(process=proc, type="fail", f=f, key=key, value=value, error=body.get("error"))
        else:
            rec.add(process=proc, type="info", f=f, key=key, value=value, error=body.get("error", "timeout"))


def _run_clients(c, rec, seed, n_clients, n_ops, base_proc, counter, limit_s=20.0):
    stop_at = time.time() + limit_s
    threads = [threading.Thread(target=_client, args=(c, rec, base_proc + i, n_ops, random.Random(seed * 100 + i),
                                                      counter, stop_at)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=limit_s + 10)


def _poll(c, status_rows):
    """One concurrent round of every node's status (chaos/settle.py: the managers' applied indexes
    are read at the same moment, not one after another while the cluster commits)."""
    def one(n):
        code, body = c.get(n, "/status", timeout=1.0)
        return body if code == 200 else {"error": body.get("error", code)}

    sts = read_concurrently(one, list(c.ids))
    now = time.time()
    status_rows.extend({"ts": now, "node": n, "status": st} for n, st in sorted(sts.items()))
    return sts


def _final_states(c):
    """Every node's final status and (managers) store, in one concurrent round, as the runner does;
    the journals are copied after the agents stop, so each covers at least its final state."""
    def one(n):
        st = c.status(n)
        code, store = c.get(n, "/store") if n in c.manager_ids else (0, None)
        return {"status": st, "store": store if code == 200 else None, "read_ts": time.time()}

    return read_concurrently(one, list(c.ids))


def test_checkers_e2e_local_cluster_leader_kill_all_valid(tmp_path):
    work = tmp_path / "cluster"
    run_dir = tmp_path / "run"
    c = LocalCluster(str(work), managers=3, workers=2, seed=SEED,
                     extra_env={"CHAOS_DISPATCHER_HEARTBEAT_MS": "300", "CHAOS_DISPATCHER_GRACE": "3"})
    rec, faults, status_rows = Recorder(), [], []
    counter = iter(range(1000, 10**9))
    print(f"seed={SEED} run_dir={run_dir}")
    c.start_all()
    try:
        t_start = time.time()
        leader = wait_for(c.leader, 30, what="a leader")
        code, body = http("POST", c.url(leader, "/services"), {"name": "web", "replicas": 2})
        assert code == 200, body
        _run_clients(c, rec, SEED, 4, 15, 0, counter)
        t_fault = time.time()
        faults.append({"ts": t_fault, "fault": "f1", "action": "start", "kind": "kill", "targets": [leader],
                       "details": {}})
        c.kill(leader)
        _run_clients(c, rec, SEED + 1, 4, 10, 10, counter, limit_s=15)
        wait_for(lambda: c.leader([m for m in c.manager_ids if m != leader]), 30, what="a new leader")
        c.start(leader)
        wait_for(lambda: c.status(leader), 30, what=f"{leader} answering after restart")
        heal = time.time()
        faults.append({"ts": heal, "fault": "f1", "action": "stop", "kind": "kill", "targets": [leader],
                       "details": {}})
        _run_clients(c, rec, SEED + 2, 4, 10, 20, counter)
        settled = settle(lambda: _poll(c, status_rows), list(c.manager_ids), time.monotonic() + 40)
        assert settled["reason"] is None, settled
        finals = _final_states(c)
        t_end = time.time()
    finally:
        c.stop_all()

    run_dir.mkdir()
    (run_dir / "events").mkdir()
    (run_dir / "final").mkdir()
    for n in c.ids:
        shutil.copy(work / n / "journal.jsonl", run_dir / "events" / f"{n}.jsonl")
        (run_dir / "final" / f"{n}.json").write_text(json.dumps(finals[n]))
    (run_dir / "run.json").write_text(json.dumps({
        "run_id": "e2e", "seed": SEED, "started": t_start, "ended": t_end, "heal_ts": heal,
        "phases": [{"name": "steady", "start": t_start, "end": t_fault},
                   {"name": "fault", "start": t_fault, "end": heal},
                   {"name": "recovery", "start": heal, "end": t_end}],
        "nodes": {n: {"role": "manager" if n in c.manager_ids else "worker"} for n in c.ids},
        "settle": settled}))
    with (run_dir / "history.jsonl").open("w") as fh:
        for ev in rec.events:
            fh.write(json.dumps(ev) + "\n")
    for name, rows in (("faults.jsonl", faults), ("status.jsonl", status_rows)):
        (run_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    res = run_checks(run_dir, ["linearizable", "raft-safety", "durability",
                               "convergence:store_bound_s=40,members_bound_s=40",
                               # the recovery phase here lasts about a second, most of it while the
                               # restarted node still answers no-leader: judge service only loosely
                               "availability:min_ok_share=0.3", "recovery:max_leader_s=30,max_heal_to_write_s=30",
                               "expectations:expect=leader-changed+node-restarted+fault-applied:kill"])
    report = "\n".join(f"{x.name}: {x.verdict.value} {x.summary}" for x in res.checks)
    print(report)
    conv = next(x for x in res.checks if x.checker == "convergence").evidence["parts"]["managers"]
    print(f"managers part: {conv['summary']}; final {json.dumps(conv.get('final'))}")
    bad = [x for x in res.checks if x.verdict != Verdict.VALID]
    assert not bad, f"seed {SEED}, run dir {run_dir}:\n{report}\n" + json.dumps(
        [x.evidence for x in bad], indent=1, default=str)[:4000]
    assert len(rec.events) > 100
