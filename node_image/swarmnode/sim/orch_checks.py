"""Consequence checks for the orchestrator's task rules, on a seeded model of the world around it.

Owns: `run_orch(seed, ...)` -- a deterministic run in rounds: workers go down and come back, join
and leave, services are created, scaled and removed, workers run, crash and finish their tasks;
the leader's loop (dispatcher marks + `orchestrator.reconcile`, a pure function) proposes commands
that the real `raft.store.Store` applies (optionally a few rounds late, as Raft commits them, with
in proposal order, with the same command proposed again meanwhile) -- and `OrchMonitor`, which judges each round.
Must not import asyncio, socket, time, module-level random or `chaos`.

A "round" stands for one pass of the manager's tick (agent/manager.py `_orchestrate`); time is
counted in rounds. Swarm has no "left" worker state in the store (WORKER_STATES is ready/down): a
worker that leaves is marked DOWN and never heartbeats again; one that joins is a new id that
registers READY. Store commands are exactly those the manager proposes.

Checked (kind names as reported), judged on the store after each round's commands are applied:
  backward-move        a task.update the orchestrator proposes does not move the task forward in
                       TASK_STATE_RANK (the store would refuse it: the policy asked for it anyway)
  unavailable-worker   a task is created on a worker that is not READY in the store (DOWN, left,
                       never registered), or with no worker
  task-moved           a task's worker changed (an assigned task never moves)
  slot-shared          two live tasks (new, assigned, running) of one service share a slot
  down-not-replaced    `replace_bound` rounds after the store applied a worker's DOWN mark (and the
                       worker is not READY again), a task that was live on it is still live, or its
                       slot (still desired, not held, some worker READY) got no new task since
  not-converged        `converge_bound` rounds after the last change of workers and services (and
                       no task failed meanwhile), a service's live tasks are not exactly one per
                       slot 0..replicas-1 on READY workers, or a live task of a removed service or
                       of a slot at or above the replica count remains
"""
from __future__ import annotations

import random

from swarmnode.agent import orchestrator
from swarmnode.raft.store import TASK_STATE_RANK, Store

LIVE = orchestrator.LIVE
SERVICES = ("web", "db", "api")


class OrchMonitor:
    """Judges the proposals of each round (`proposals`) and the store after it (`after`); told of
    every DOWN mark the store applies (`down_marked`). `held`: the slots the caller held."""

    def __init__(self, replace_bound: int, converge_bound: int):
        self.replace_bound = replace_bound
        self.converge_bound = converge_bound
        self.violations: list = []
        self.worker_of: dict = {}
        self.created: dict = {}       # task -> the round it was first seen in the store
        self.due: list = []           # (round marked, worker, [(task, service, slot)]) not judged yet
        self.blocked: dict = {}       # (service, slot) -> last round it could not get a task
        self.reported: set = set()

    def _v(self, kind, rnd, detail):
        if (kind, detail) not in self.reported:
            self.reported.add((kind, detail))
            self.violations.append({"kind": kind, "round": rnd, "detail": detail})

    def proposals(self, rnd: int, store: Store, commands: list) -> None:
        """Judge proposals against the store they were computed from."""
        for c in commands:
            if c["op"] == "task.update":
                t = store.tasks.get(c["task"])
                if t is not None and TASK_STATE_RANK[c["state"]] <= TASK_STATE_RANK[t["state"]]:
                    self._v("backward-move", rnd, f"{c['task']} {t['state']} -> {c['state']}")
            elif c["op"] == "task.create":
                w = c.get("worker")
                if w is None or store.nodes.get(w, {}).get("state") != "ready":
                    state = store.nodes.get(w, {}).get("state", "unknown") if w else "none"
                    self._v("unavailable-worker", rnd, f"{c['task']} created on {w} ({state})")

    def after(self, rnd: int, store: Store, held: frozenset, quiet_rounds: int) -> None:
        ready = {w for w, r in store.nodes.items() if r.get("state") == "ready"}
        live: dict = {}
        for tid, t in sorted(store.tasks.items()):
            self.created.setdefault(tid, rnd)
            if self.worker_of.setdefault(tid, t["worker"]) != t["worker"]:
                self._v("task-moved", rnd, f"{tid} {self.worker_of[tid]} -> {t['worker']}")
            if t["state"] in LIVE:
                live.setdefault((t["service"], t["slot"]), []).append(tid)
        for key, tids in sorted(live.items()):
            if len(tids) > 1:
                self._v("slot-shared", rnd, f"{key[0]} slot {key[1]}: {tids}")
        self._replacements_due(rnd, store, ready, held)
        if quiet_rounds >= self.converge_bound and ready:
            self._converged(rnd, store, live, ready)

    def down_marked(self, rnd: int, worker: str, store: Store) -> None:
        """The store just applied a DOWN mark for `worker`: its live tasks are due for
        replacement `replace_bound` rounds from now."""
        self.due.append((rnd, worker,
                         [(tid, t["service"], t["slot"]) for tid, t in sorted(store.tasks.items())
                          if t["worker"] == worker and t["state"] in LIVE]))

    def _replacements_due(self, rnd, store, ready, held) -> None:
        """The bound of a slot's replacement runs from the later of the DOWN mark and the last
        round in which the slot could not get a task (held, not desired, no READY worker)."""
        keep = []
        for marked, w, tasks in self.due:
            if store.nodes.get(w, {}).get("state") == "ready":
                continue                  # back before its tasks were replaced: they may stay
            left = []
            for tid, svc, slot in tasks:
                key = (svc, slot)
                if (key in held or slot >= store.services.get(svc, {}).get("replicas", 0) or not ready):
                    self.blocked[key] = rnd
                live = store.tasks[tid]["state"] in LIVE
                if live and rnd - marked >= self.replace_bound:
                    self._v("down-not-replaced", rnd, f"{tid} still {store.tasks[tid]['state']} on {w}, "
                                                      f"DOWN since round {marked}")
                start = max(marked, self.blocked.get(key, -1) + 1)
                if self.blocked.get(key) == rnd or rnd - start < self.replace_bound:
                    left.append((tid, svc, slot))
                    continue
                if not [x for x, t in store.tasks.items() if (t["service"], t["slot"]) == key
                        and self.created.get(x, -1) >= marked]:
                    self._v("down-not-replaced", rnd, f"{svc} slot {slot} (was {tid} on {w}) got no new task "
                                                      f"within {self.replace_bound} rounds of the DOWN mark")
            if left:
                keep.append((marked, w, left))
        self.due = keep

    def _converged(self, rnd, store, live, ready) -> None:
        for svc, s in sorted(store.services.items()):
            for slot in range(s.get("replicas", 0)):
                tids = live.get((svc, slot), [])
                if len(tids) != 1 or store.tasks[tids[0]]["worker"] not in ready:
                    self._v("not-converged", rnd, f"{svc} slot {slot}: live {tids} after quiet rounds")
        for (svc, slot), tids in sorted(live.items()):
            if slot >= store.services.get(svc, {}).get("replicas", 0):
                self._v("not-converged", rnd, f"{svc} slot {slot}: {tids} live beyond the desired replicas")


def run_orch(seed: int, reconcile=orchestrator.reconcile, rounds: int = 200, plant: frozenset = frozenset(),
             lag: bool | None = None, hold_rounds: int = 2, replace_bound: int | None = None,
             converge_bound: int | None = None) -> dict:
    """A seeded run with every check above; returns `violations`, the parameters drawn from the
    seed and `replay`. `lag`: commands are applied 0..2 rounds after they were proposed and the
    leader proposes again meanwhile (default: drawn from the seed). Bounds are in rounds."""
    rng = random.Random(f"orch:{seed}")
    lag = rng.random() < 0.5 if lag is None else lag
    max_lag = 2 if lag else 0
    replace_bound = max_lag + 1 if replace_bound is None else replace_bound
    converge_bound = max_lag + hold_rounds + 2 if converge_bound is None else converge_bound
    store = Store()
    mon = OrchMonitor(replace_bound, converge_bound)
    workers = [f"w{i}" for i in range(1, rng.randint(2, 5) + 1)]
    up = {w: True for w in workers}           # the process runs (ground truth)
    gone: set = set()                         # workers that left for good
    next_id = len(workers) + 1
    index = 0
    pending: list = []                        # (apply at round, command)
    hold_until: dict = {}
    quiet = 0
    fail_p = rng.choice((0.0, 0.02, 0.1))
    out = {"seed": seed, "lag": lag, "workers": len(workers), "fail_p": fail_p, "events": [],
           "replay": f"swarmnode.sim.orch_checks.run_orch({seed})"
                     + (f"  # reconcile={getattr(reconcile, '__name__', reconcile)}"
                        if reconcile is not orchestrator.reconcile else "")
                     + (f"  # plant={sorted(plant)}" if plant else "")}

    def apply(cmd, rnd):
        nonlocal index
        index += 1
        before = store.nodes.get(cmd.get("node"), {}).get("state")
        _, events = store.apply(index, cmd)
        for ev in events:
            if ev["type"] == "task" and ev["state"] == "failed":
                hold_until[(ev["service"], ev["slot"])] = rnd + hold_rounds
        if cmd["op"] == "node.upsert" and before != "down" and store.nodes[cmd["node"]].get("state") == "down":
            mon.down_marked(rnd, cmd["node"], store)

    def propose(cmd, rnd):
        if max_lag:
            # committed late, but in proposal order (one leader's log)
            at = max(pending[-1][0] if pending else 0, rnd + rng.randint(0, max_lag))
            pending.append((at, cmd))
        else:
            apply(cmd, rnd)

    for rnd in range(rounds):
        final = rnd >= rounds - 3 * converge_bound      # the final stretch: no more faults
        changed = False
        r = rng.random()
        if not final and r < 0.08:
            w = rng.choice(workers)
            if w not in gone:
                up[w] = not up[w]
                changed = True
                out["events"].append([rnd, "up" if up[w] else "down", w])
        elif not final and r < 0.11:
            w = f"w{next_id}"
            next_id += 1
            workers.append(w)
            up[w] = True
            changed = True
            out["events"].append([rnd, "join", w])
        elif not final and r < 0.13 and len(workers) - len(gone) > 1:
            w = rng.choice([x for x in workers if x not in gone])
            gone.add(w)
            up[w] = False
            changed = True
            out["events"].append([rnd, "leave", w])
        elif not final and r < 0.25:
            svc, n = rng.choice(SERVICES), rng.randint(0, 4)
            op = "service.scale" if svc in store.services else "service.create"
            if rng.random() < 0.2 and svc in store.services:
                propose({"op": "service.remove", "name": svc}, rnd)
                out["events"].append([rnd, "remove", svc])
            else:
                propose({"op": op, "name": svc, "replicas": n}, rnd)
                out["events"].append([rnd, "scale", svc, n])
            changed = True
        if final:
            for w in workers:
                if w not in gone and not up[w]:
                    up[w] = True
                    changed = True
        # committed commands of earlier rounds (lag)
        due = [c for at, c in pending if at <= rnd]
        pending[:] = [(at, c) for at, c in pending if at > rnd]
        for c in due:
            apply(c, rnd)
        # dispatcher: heartbeats of running workers, DOWN marks for silent ones
        for w in workers:
            state = store.nodes.get(w, {}).get("state")
            if up[w] and state != "ready":
                propose({"op": "node.upsert", "node": w, "fields": {"state": "ready", "role": "worker"}}, rnd)
            elif not up[w] and state == "ready":
                propose({"op": "node.upsert", "node": w, "fields": {"state": "down"}}, rnd)
        # workers run their assignments: start, sometimes crash or finish
        failed = False
        for w in workers:
            if not up[w] or store.nodes.get(w, {}).get("state") != "ready":
                continue
            for tid, a in orchestrator.assignments_for(w, store.tasks).items():
                x = rng.random()
                if not final and x < fail_p:
                    propose({"op": "task.update", "task": tid, "state": "failed"}, rnd)
                    failed = True
                elif not final and x < fail_p * 1.2:
                    propose({"op": "task.update", "task": tid, "state": "complete"}, rnd)
                    failed = True
                elif a["state"] == "assigned":
                    propose({"op": "task.update", "task": tid, "state": "running"}, rnd)
        # the leader's orchestrator on the applied store
        held = frozenset(k for k, until in hold_until.items() if until > rnd)
        cmds = reconcile(store.nodes, store.services, store.tasks, held, plant=plant)
        mon.proposals(rnd, store, cmds)
        for c in cmds:
            propose(c, rnd)
        quiet = 0 if (changed or failed or held) else quiet + 1
        mon.after(rnd, store, held, quiet)
    out["violations"] = mon.violations[:20]
    out["violation_count"] = len(mon.violations)
    out["tasks"] = len(store.tasks)
    return out
