"""Worker role: dispatcher client, task supervision, endpoint publishing in gossip.

Owns the worker side of the dispatcher protocol (channel ``disp``):
  worker -> manager  ``{"type": "heartbeat", "tasks": {task: state}, "boot": n}`` every
                     CHAOS_DISPATCHER_HEARTBEAT_MS (the first heartbeat registers the worker; `boot`:
                     its boot counter, 1 again after its disk was wiped)
  manager -> worker  ``{"type": "not_leader", "leader": id|null}``, or from the leader
                     ``{"type": "assignments", "leader": id, "term": t, "registered": bool,
                     "tasks": {task: {service, slot, state}}}`` (registered: READY in the store)
Until the leader reports it READY the worker heartbeats every REGISTER_RETRY_MS (fast start-up).
The worker runs every listed task in state ``assigned``/``running`` and stops any task not listed
(or listed in a terminal state). Assignments from a term older than one already seen are ignored.
It learns the leader from managers' answers; after two unanswered heartbeats it tries the next
manager. Each running task is published in the gossip endpoint table as ``<node>/<task>``.

Must not import ``chaos``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Optional

from .tasks import TaskSupervisor

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("swarmnode.worker")

TERMINAL = ("complete", "failed", "shutdown", "orphaned")
MISSED_BEFORE_ROTATE = 2
REGISTER_RETRY_MS = 150  # heartbeat period until the leader says we are READY (fast start-up)
TASK_POLL_MS = 50        # how often a worker with tasks checks their processes


class WorkerRole:
    kind = "worker"

    def __init__(self, node: "Node") -> None:
        self.node = node
        self.cfg = node.cfg
        self.sup = TaskSupervisor(self.cfg.task_command, node.id)
        self.leader: Optional[str] = None
        self.term = 0
        self.registered = False
        self._target_idx = 0
        self._next_hb_ms = 0
        self._unanswered = 0
        self._published: set[str] = set()
        self._assigned: dict[str, dict] = {}
        self._promoting = False
        node.counters.update({"heartbeats_sent": 0, "assignments": 0, "stale_assignments": 0})

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.sup.shutdown_all()

    # -- leader knowledge ------------------------------------------------------------------------
    def is_leader(self) -> bool:
        return False

    def leader_hint(self) -> Optional[str]:
        return self.leader

    async def execute_leader(self, op: dict):  # never called: a worker is never the leader
        raise RuntimeError("worker asked to act as leader")

    def execute_local_read(self, op: dict):
        raise RuntimeError("workers hold no store")

    def store_view(self) -> None:
        return None

    # -- ticking ---------------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        self.sup.poll()
        self._publish_endpoints()
        if now_ms >= self._next_hb_ms:
            period = self.cfg.dispatcher_heartbeat_ms
            if not self.registered:
                period = min(period, REGISTER_RETRY_MS)
            self._next_hb_ms = now_ms + period
            self._heartbeat()

    def next_due_ms(self, now_ms: int) -> int:
        """When `tick` next has work: the next heartbeat, or the next task poll (every
        TASK_POLL_MS) while this worker runs or holds tasks."""
        if self.sup.tasks or self._published:
            return min(self._next_hb_ms, now_ms + TASK_POLL_MS)
        return self._next_hb_ms

    def _target(self) -> str:
        if self.leader is not None:
            return self.leader
        managers = self.cfg.managers
        return managers[self._target_idx % len(managers)]

    def _heartbeat(self) -> None:
        if self._unanswered >= MISSED_BEFORE_ROTATE:
            self.leader = None
            self._target_idx += 1
            self._unanswered = 0
        self._unanswered += 1
        self.node.counters["heartbeats_sent"] += 1
        self.node.send(self._target(), {"ch": "disp", "type": "heartbeat",
                                        "tasks": self.sup.states(), "boot": self.node.journal.boot})

    # -- dispatcher messages ---------------------------------------------------------------------
    def on_dispatch(self, sender: str, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "not_leader":
            hint = msg.get("leader")
            self._unanswered = 0
            if isinstance(hint, str) and (hint in self.cfg.managers or self.node.has_peer(hint)) \
                    and hint != self.leader:
                self.leader = hint
                self._heartbeat()
            elif hint is None:
                self.leader = None
                self._target_idx += 1
        elif kind == "assignments":
            term, tasks = msg.get("term"), msg.get("tasks")
            if not isinstance(term, int) or not isinstance(tasks, dict):
                raise ValueError("bad assignments")
            if term < self.term:
                self.node.counters["stale_assignments"] += 1
                return
            self.term = term
            registered = msg.get("registered", True) is True
            if sender != self.leader or registered != self.registered:
                log.info("dispatcher: leader %s (term %d), %s", sender, term,
                         "registered" if registered else "not registered yet")
            self.leader = sender
            self._unanswered = 0
            self.registered = registered
            self.node.counters["assignments"] += 1
            self._apply_assignments(tasks)
        elif kind == "promote":   # the leader promoted this worker (chaos node promote)
            token = msg.get("token")
            if not isinstance(token, str) or not token:
                raise ValueError("promote without a token")
            if not self._promoting:
                self._promoting = True
                asyncio.ensure_future(self.node.become_manager(token))
        else:
            raise ValueError(f"unknown dispatcher message {kind!r}")

    def _apply_assignments(self, tasks: dict) -> None:
        before = self.sup.states()
        self._assigned = {t: v for t, v in tasks.items() if isinstance(v, dict)}
        for tid, info in sorted(self._assigned.items()):
            if info.get("state") in ("assigned", "running"):
                self.sup.ensure_running(tid, info)
        for tid in self.sup.running():
            info = self._assigned.get(tid)
            if info is None or info.get("state") in TERMINAL:
                self.sup.stop(tid)
        # forget finished tasks the leader no longer lists (bounded memory)
        for tid, st in before.items():
            if st != "running" and tid not in self._assigned:
                self.sup.forget(tid)
        if self.sup.states() != before:
            self._next_hb_ms = 0  # report news at the next tick

    def _publish_endpoints(self) -> None:
        running = set(self.sup.running())
        changed = False
        for tid in sorted(running - self._published):
            info = self.sup.tasks[tid].info
            self.node.swim.set_endpoint(f"{self.node.id}/{tid}", json.dumps(
                {"node": self.node.id, "service": info.get("service"), "slot": info.get("slot")},
                sort_keys=True))
            changed = True
        for tid in sorted(self._published - running):
            self.node.swim.delete_endpoint(f"{self.node.id}/{tid}")
            changed = True
        self._published = running
        if changed:
            self.node.flush_swim()

    # -- status ----------------------------------------------------------------------------------
    def status_fields(self) -> dict:
        return {"role": "worker", "term": None, "leader": self.leader, "commit_index": None,
                "applied_index": None, "last_log_index": None, "last_log_term": None,
                "store_digest": None, "ready": self.registered, "tasks": self.sup.states(),
                "endpoints": self.node.endpoints()}
