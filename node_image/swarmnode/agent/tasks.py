"""Worker-side task supervision: each assigned task runs as a small child process.

Owns ``TaskSupervisor``: start a task's process, poll it, stop it when told (SIGTERM, then SIGKILL
after a bound), and report each task's state (``running``, ``complete`` on exit 0, ``failed``
otherwise, ``shutdown`` once stopped on request). A task that exits is not restarted here: Swarm's
rule is that the orchestrator creates a replacement task in the same slot.

The default task command watches its parent pid and exits when the agent dies, so a SIGKILLed
agent (process-level tests) leaves no stray children.

Must not import asyncio or ``chaos``; uses subprocess and is polled from the driver's tick.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Optional

log = logging.getLogger("swarmnode.tasks")

DEFAULT_TASK_SCRIPT = (
    "import os, time\n"
    "p = os.getppid()\n"
    "while os.getppid() == p:\n"
    "    time.sleep(0.5)\n"
)
STOP_GRACE_S = 2.0
MAX_TASKS = 256  # bound on concurrently supervised tasks; more assignments are refused and counted


@dataclass
class _Task:
    task_id: str
    proc: Optional[subprocess.Popen]
    state: str
    stop_requested_at: Optional[float] = None
    info: dict = field(default_factory=dict)


class TaskSupervisor:
    def __init__(self, command: tuple[str, ...], node_id: str) -> None:
        self.command = list(command)
        self.node_id = node_id
        self.tasks: dict[str, _Task] = {}
        self.refused = 0

    def ensure_running(self, task_id: str, info: dict) -> None:
        """Start ``task_id`` unless it is known (running or already finished: never restarted)."""
        if task_id in self.tasks:
            return
        active = sum(1 for t in self.tasks.values() if t.state == "running")
        if active >= MAX_TASKS:
            self.refused += 1
            log.warning("refusing task %s: %d tasks already running (bound)", task_id, MAX_TASKS)
            self.tasks[task_id] = _Task(task_id, None, "failed", info=info)
            return
        env = dict(os.environ, CHAOS_TASK_ID=task_id, CHAOS_TASK_NODE=self.node_id)
        try:
            proc = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    close_fds=True)
        except OSError as exc:
            log.error("task %s failed to start: %s", task_id, exc)
            self.tasks[task_id] = _Task(task_id, None, "failed", info=info)
            return
        self.tasks[task_id] = _Task(task_id, proc, "running", info=info)
        log.info("task %s started (pid %d)", task_id, proc.pid)

    def stop(self, task_id: str) -> None:
        t = self.tasks.get(task_id)
        if t is None or t.proc is None or t.state != "running" or t.stop_requested_at is not None:
            return
        t.stop_requested_at = time.monotonic()
        try:
            t.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def poll(self) -> None:
        """Update states of exited processes; escalate stops that took too long."""
        now = time.monotonic()
        for t in self.tasks.values():
            if t.proc is None or t.state != "running":
                continue
            rc = t.proc.poll()
            if rc is None:
                if t.stop_requested_at is not None and now - t.stop_requested_at > STOP_GRACE_S:
                    t.proc.kill()
                continue
            if t.stop_requested_at is not None:
                t.state = "shutdown"
                log.info("task %s stopped (exit status %d)", t.task_id, rc)
            else:
                t.state = "complete" if rc == 0 else "failed"
                if rc == 0:
                    log.info("task %s completed", t.task_id)
                else:
                    log.warning("task %s failed: exit status %d", t.task_id, rc)

    def states(self) -> dict[str, str]:
        return {tid: t.state for tid, t in sorted(self.tasks.items())}

    def forget(self, task_id: str) -> None:
        t = self.tasks.get(task_id)
        if t is not None and t.state != "running":
            del self.tasks[task_id]

    def running(self) -> list[str]:
        return sorted(tid for tid, t in self.tasks.items() if t.state == "running")

    def shutdown_all(self) -> None:
        for t in self.tasks.values():
            if t.proc is not None and t.proc.poll() is None:
                t.proc.kill()
                try:
                    t.proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
