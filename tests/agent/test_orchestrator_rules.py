"""The orchestrator's task rules as consequence checks (swarmnode/sim/orch_checks.py): seeded runs
of workers going down and up, joining and leaving, services created, scaled and removed, tasks
running, crashing and finishing, with `orchestrator.reconcile` proposing and the real store
applying (sometimes a few rounds late, in order, while the leader proposes again). Each rule
fires on a deliberately wrong orchestrator (a small wrapper here, or the planted
`orchestrator_no_replace`) and stays silent on the correct one. Pure Python, no Docker.
Must not import: chaos, asyncio.
"""
import pytest

from swarmnode.agent import orchestrator
from swarmnode.raft.store import Store
from swarmnode.sim.orch_checks import OrchMonitor, run_orch

MAX_SEEDS = 30


def restarts_failed_tasks_in_place(nodes, services, tasks, hold=frozenset(), plant=frozenset()):
    """Wrong: a failed task of a desired slot is set back to `assigned` instead of getting a
    new task (Swarm: a task never goes back; the slot gets a fresh task)."""
    cmds = orchestrator.reconcile(nodes, services, tasks, hold, plant=plant)
    return [{"op": "task.update", "task": tid, "state": "assigned"} for tid, t in sorted(tasks.items())
            if t["state"] == "failed" and t["slot"] < services.get(t["service"], {}).get("replicas", 0)] + cmds


def ignores_worker_state(nodes, services, tasks, hold=frozenset(), plant=frozenset()):
    """Wrong: places tasks on any registered worker, DOWN or gone ones included."""
    return orchestrator.reconcile({w: {"state": "ready"} for w in nodes}, services, tasks, hold, plant=plant)


def moves_tasks_off_down_workers(nodes, services, tasks, hold=frozenset(), plant=frozenset()):
    """Wrong: 'rescues' a live task of a DOWN worker by reassigning it in place."""
    ready = orchestrator.ready_workers(nodes)
    for t in tasks.values():
        if ready and t["state"] in orchestrator.LIVE and nodes.get(t["worker"], {}).get("state") == "down":
            t["worker"] = ready[0]
    return orchestrator.reconcile(nodes, services, tasks, hold, plant=plant)


def replaces_without_orphaning(nodes, services, tasks, hold=frozenset(), plant=frozenset()):
    """Wrong: the task of a DOWN worker gets its replacement but is never marked orphaned."""
    return [c for c in orchestrator.reconcile(nodes, services, tasks, hold, plant=plant)
            if c.get("state") != "orphaned"]


def never_scales_down(nodes, services, tasks, hold=frozenset(), plant=frozenset()):
    """Wrong: tasks of removed services or of slots above the replica count are never shut down."""
    return [c for c in orchestrator.reconcile(nodes, services, tasks, hold, plant=plant)
            if c.get("state") != "shutdown"]


def fills_only_the_first_slot(nodes, services, tasks, hold=frozenset(), plant=frozenset()):
    """Wrong: new tasks only for slot 0 (a service scaled above 1 stays under-replicated)."""
    return [c for c in orchestrator.reconcile(nodes, services, tasks, hold, plant=plant)
            if c["op"] != "task.create" or c["slot"] == 0]


def first_seed_with(kind, **kw):
    for seed in range(MAX_SEEDS):
        r = run_orch(seed, **kw)
        hits = [v for v in r["violations"] if v["kind"] == kind]
        if hits:
            return seed, hits[0], r
    pytest.fail(f"{kind} not reported within {MAX_SEEDS} seeds ({kw})")


@pytest.mark.parametrize("kind,kw", [
    ("backward-move", {"reconcile": restarts_failed_tasks_in_place}),
    ("unavailable-worker", {"reconcile": ignores_worker_state}),
    ("task-moved", {"reconcile": moves_tasks_off_down_workers}),
    ("slot-shared", {"reconcile": replaces_without_orphaning}),
    ("down-not-replaced", {"plant": frozenset({"orchestrator_no_replace"})}),
    ("not-converged", {"reconcile": never_scales_down}),
    ("not-converged", {"reconcile": fills_only_the_first_slot}),
], ids=["backward-move", "unavailable-worker", "task-moved", "slot-shared", "down-not-replaced",
        "not-converged-over", "not-converged-under"])
def test_orchestrator_rule_fires_on_a_wrong_orchestrator(kind, kw):
    seed, hit, r = first_seed_with(kind, **kw)
    assert "# " in r["replay"]
    print(f"{kind} at seed {seed}: {hit}")


@pytest.mark.parametrize("seed", range(40))
def test_orchestrator_rules_silent_on_the_correct_orchestrator(seed):
    r = run_orch(seed)
    assert r["violations"] == [], (r["violations"][:3], r["replay"])
    assert r["tasks"] > 0 and len(r["events"]) >= 5


def test_orchestrator_rules_runs_exercise_lag_and_every_world_event():
    """The seeds above cover both delivery modes and every kind of world event."""
    runs = [run_orch(seed) for seed in range(40)]
    assert {r["lag"] for r in runs} == {True, False}
    kinds = {e[1] for r in runs for e in r["events"]}
    assert {"up", "down", "join", "leave", "scale", "remove"} <= kinds


def test_orchestrator_rules_same_seed_same_run():
    assert run_orch(7) == run_orch(7)


def monitor_run(create_at):
    """By hand: w1 (running web.0.1) is marked DOWN at round 0 while no worker is READY; w2
    registers at round 5; the replacement is created at round `create_at`."""
    store = Store()
    mon = OrchMonitor(replace_bound=1, converge_bound=100)
    cmds = [(0, {"op": "service.create", "name": "web", "replicas": 1}),
            (0, {"op": "node.upsert", "node": "w1", "fields": {"state": "ready"}}),
            (0, {"op": "task.create", "task": "web.0.1", "service": "web", "slot": 0, "worker": "w1"}),
            (1, {"op": "node.upsert", "node": "w1", "fields": {"state": "down"}}),
            (2, {"op": "task.update", "task": "web.0.1", "state": "orphaned"}),
            (5, {"op": "node.upsert", "node": "w2", "fields": {"state": "ready"}}),
            (create_at, {"op": "task.create", "task": "web.0.2", "service": "web", "slot": 0, "worker": "w2"})]
    index = 0
    for rnd in range(12):
        for at, c in cmds:
            if at == rnd:
                index += 1
                before = store.nodes.get(c.get("node"), {}).get("state")
                store.apply(index, c)
                if c["op"] == "node.upsert" and before != "down" and store.nodes[c["node"]]["state"] == "down":
                    mon.down_marked(rnd, c["node"], store)
        mon.after(rnd, store, frozenset(), 0)
    return [v["kind"] for v in mon.violations]


def test_orchestrator_down_rule_bound_runs_from_when_a_worker_is_ready():
    """SwarmKit's orchestrator can only place a replacement on a READY node: while none is,
    the DOWN worker's slot is not judged; once one is, the bound applies."""
    assert monitor_run(create_at=6) == []
    assert monitor_run(create_at=9) == ["down-not-replaced"]
