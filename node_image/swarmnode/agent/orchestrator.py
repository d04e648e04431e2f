"""Orchestrator policy (leader only): services -> tasks in slots on READY workers. Pure.

Owns ``reconcile(nodes, services, tasks)``, which returns the store commands (docs: raft/store.py)
that move the applied store towards the desired state, and ``assignments_for(worker, tasks)``.
Rules (Swarm's):
  * a task on a worker that is DOWN (committed through Raft) becomes ``orphaned``;
  * a task of a removed service, or in a slot at or above the desired replica count, is ``shutdown``;
  * every slot 0..replicas-1 without a live task gets a NEW task (fresh id), assigned to the READY
    worker with the fewest live tasks (ties by id) -- an assigned task never moves to another worker;
  * task states only move forward (the store rejects backward moves too);
  * a slot whose task just failed is held for a restart delay (the caller's clock), so a task that
    crashes at once does not flood the store with replacements.
Commands are returned in a deterministic order; nothing here reads a clock or iterates a set.

Must not import asyncio, aiohttp or ``chaos``.
"""

from __future__ import annotations

LIVE = ("new", "assigned", "running")
TERMINAL = ("complete", "failed", "shutdown", "orphaned")
MAX_COMMANDS_PER_ROUND = 256  # bound one reconcile round; the rest happens next round


def ready_workers(nodes: dict) -> list[str]:
    return sorted(n for n, rec in nodes.items() if rec.get("state") == "ready")


def reconcile(nodes: dict, services: dict, tasks: dict, hold: frozenset = frozenset(),
              plant: frozenset = frozenset()) -> list[dict]:
    """Commands towards the desired state. Slots in ``hold`` ((service, slot) pairs: a task there
    failed recently, the caller's restart delay) get no replacement task this round. ``plant``:
    planted bugs (test only, swarmnode.plant); empty in every real run."""
    cmds: list[dict] = []
    ready = ready_workers(nodes)
    load = {w: 0 for w in ready}
    slot_live: dict[tuple[str, int], str] = {}
    generations: dict[tuple[str, int], int] = {}
    for tid in sorted(tasks):
        t = tasks[tid]
        svc, slot, worker, state = t["service"], t["slot"], t.get("worker"), t["state"]
        key = (svc, slot)
        generations[key] = generations.get(key, 0) + 1
        if state not in LIVE:
            continue
        if worker is not None and nodes.get(worker, {}).get("state") == "down" and \
                "orchestrator_no_replace" not in plant:   # planted: the task stays, not replaced
            cmds.append({"op": "task.update", "task": tid, "state": "orphaned"})
            continue
        desired = services.get(svc, {}).get("replicas")
        if desired is None or slot >= desired or key in slot_live:
            cmds.append({"op": "task.update", "task": tid, "state": "shutdown"})
            continue
        slot_live[key] = tid
        if worker in load:
            load[worker] += 1
    for svc in sorted(services):
        for slot in range(services[svc].get("replicas", 0)):
            key = (svc, slot)
            if key in slot_live or not ready or key in hold:
                continue
            worker = min(ready, key=lambda w: (load[w], w))
            load[worker] += 1
            gen = generations.get(key, 0) + 1
            generations[key] = gen
            cmds.append({"op": "task.create", "task": f"{svc}.{slot}.{gen}", "service": svc,
                         "slot": slot, "worker": worker, "state": "assigned"})
    return cmds[:MAX_COMMANDS_PER_ROUND]


def assignments_for(worker: str, tasks: dict) -> dict:
    """What a worker should be running: its tasks in a live state, ``{task: {service, slot, state}}``."""
    return {tid: {"service": t["service"], "slot": t["slot"], "state": t["state"]}
            for tid, t in sorted(tasks.items())
            if t.get("worker") == worker and t["state"] in LIVE}
