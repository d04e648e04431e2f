"""Process-level: a task that exits at once is reported failed and replaced, at the restart delay.

One manager + one worker whose task command is ``false``. Every task must end ``failed`` (reported
by the worker, committed through Raft), the slot must keep getting new tasks, and the number of
tasks must stay bounded by elapsed time / restart delay (no replacement storm).
"""

from __future__ import annotations

import time

import pytest

from swarmnode.agent.localcluster import LocalCluster, call_until_ok, wait_for
from swarmnode.agent.manager import RESTART_DELAY_MS

pytestmark = [pytest.mark.process, pytest.mark.slow]


def test_agent_crashing_task_is_replaced_at_the_restart_delay(tmp_path):
    c = LocalCluster(str(tmp_path), managers=1, workers=1, seed=3,
                     extra_env={"CHAOS_TASK_COMMAND": "false", "CHAOS_DISPATCHER_HEARTBEAT_MS": "200"})
    c.start_all()
    try:
        wait_for(c.leader, 40, what="a leader")
        wait_for(lambda: (c.status("w1") or {}).get("ready"), 40, what="w1 registered")
        code, body = call_until_ok("POST", [c.url("m1", "/services")], {"name": "bad", "replicas": 1},
                                   accept=(200, 409))
        t0 = time.monotonic()

        def failed_tasks():
            tasks = c.get("m1", "/store")[1].get("tasks", {})
            return [t for t, v in tasks.items() if v["state"] == "failed"]

        wait_for(lambda: len(failed_tasks()) >= 3, 40, what="three failed generations")
        elapsed = time.monotonic() - t0
        tasks = c.get("m1", "/store")[1]["tasks"]
        assert all(v["worker"] == "w1" and v["slot"] == 0 for v in tasks.values())
        bound = elapsed / (RESTART_DELAY_MS / 1000) + 2
        assert len(tasks) <= bound, f"{len(tasks)} tasks in {elapsed:.1f}s (bound {bound:.0f})"
    finally:
        c.stop_all()
