"""A worker ticks when a timer is due, not every 50 ms (swarmnode.agent.node._worker_wait).

On a machine where an asyncio wake-up costs 100-200 us of CPU, a hundred idle workers ticking 20
times a second cost a fifth of a core each second. These tests run a real in-process worker (its
managers unreachable) and count its ticks; the first fails on a fixed 50 ms tick (20 ticks a
second), the second on a wait that a message cannot cut short (the heartbeat would wait a minute).
"""

from __future__ import annotations

import asyncio
import json
import time

from swarmnode.agent import config as cfgmod
from swarmnode.agent.localcluster import free_ports
from swarmnode.agent import node as nodemod
from swarmnode.agent.node import Node


def _worker(tmp_path) -> Node:
    api, peer = free_ports(2)
    env = {"CHAOS_NODE_ID": "w1", "CHAOS_ROLE": "worker", "CHAOS_MANAGERS": "m1",
           "CHAOS_PEERS": json.dumps({"m1": "127.0.0.1:1"}), "CHAOS_PEER_HOST": "127.0.0.1",
           "CHAOS_API_HOST": "127.0.0.1", "CHAOS_PEER_PORT": str(peer), "CHAOS_API_PORT": str(api),
           "CHAOS_DATA_DIR": str(tmp_path), "CHAOS_SEED": "7", "CHAOS_FSYNC": "0"}
    return Node(cfgmod.load(env))


def _run(tmp_path, body) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    node = _worker(tmp_path)
    ticks: list[float] = []
    real_tick = node.tick

    def counting_tick() -> None:
        ticks.append(time.monotonic())
        real_tick()

    node.tick = counting_tick
    try:
        loop.run_until_complete(node.start())
        loop.run_until_complete(body(node, ticks))
    finally:
        loop.run_until_complete(node.stop())
        loop.close()
        asyncio.set_event_loop(None)


def _register(node: Node, tasks: dict) -> None:
    node.on_message("m1", {"ch": "disp", "type": "assignments", "leader": "m1", "term": 1,
                           "registered": True, "tasks": tasks})


def test_idle_worker_wakes_only_for_its_timers(tmp_path):
    async def body(node, ticks):
        _register(node, {})        # registered: heartbeats every second, no tasks to poll
        await asyncio.sleep(0.3)
        n0 = len(ticks)
        await asyncio.sleep(2.0)
        per_s = (len(ticks) - n0) / 2.0
        # SWIM's timers (a probe round, join retries to the unreachable seed), the heartbeat and
        # the 250 ms ceiling: a handful a second, against 20 with a fixed 50 ms tick
        assert per_s <= 10, f"{per_s} ticks/s"
        assert node.counters["heartbeats_sent"] >= 2   # the heartbeat timer still fires
    _run(tmp_path, body)


def test_a_message_that_makes_work_due_wakes_the_worker_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(nodemod, "WORKER_WAIT_MAX_MS", 60_000)

    async def body(node, ticks):
        _register(node, {})
        await asyncio.sleep(0.3)
        # nothing due for a minute: no heartbeat, no SWIM timer (the seed is unreachable anyway)
        far = node.now_ms() + 60_000
        node.role._next_hb_ms = far
        sw = node.swim
        sw._next_join_ms = None
        sw._next_probe_ms = sw._next_pushpull_ms = sw._next_reconnect_ms = sw._next_reap_ms = far
        n = len(ticks)
        while len(ticks) == n:          # the wait planned before the changes above ends
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert node._tick_due_ms - node.now_ms() > 30_000   # now asleep for good
        sent = node.counters["heartbeats_sent"]
        # a message that makes a heartbeat due now (as an assignment that changes the worker's
        # tasks does: _next_hb_ms = 0) must not wait for the sleep the worker is in
        node.role._next_hb_ms = 0
        t0 = time.monotonic()
        node.on_message("m1", {"ch": "disp", "type": "not_leader", "leader": None})
        while node.counters["heartbeats_sent"] == sent and time.monotonic() - t0 < 5.0:
            await asyncio.sleep(0.005)
        waited = time.monotonic() - t0
        assert node.counters["heartbeats_sent"] > sent, "the worker slept through the message"
        assert waited < 2.0
    _run(tmp_path, body)
