"""Write-path trace (diagnostics only): timestamps of each client write's stages on every manager.

Off unless CHAOS_WRITE_TRACE names a file ("{node}" becomes the node id): then each stage appends
(stage, log index, time.monotonic_ns()) to memory and the list is written there, one JSON array per
line, when the process exits. CLOCK_MONOTONIC is one clock for all processes of a host, so the
stages of one write on the leader and on its followers line up (benchmarks/openloop.py reads them).

Stages: `in`/`out` the leader's PUT handler (entry; answer built), `prop` proposed, `persist`
handed to storage in a Ready, `sync` durable (fsync done), `send` the AppendEntries carrying it
left for a peer, `recv` a follower got it, `ack` a follower's AppendResponse covering it left,
`ackin` the leader got that response, `commit` the commit index reached it, `apply` applied. Also the collector's pauses: `gc0`..`gc2`
with index 1 at the start and -1 at the end of each collection, and the thread's CPU time after
the wall time. At exit, one forced full collection: (`gc_full_at_exit`, objects it tracks, its CPU
ns, objects frozen).
Loop stalls: every event-loop callback whose run cost the loop's thread at least STALL_CPU_NS of
CPU (thread CPU, so a loaded machine does not inflate it) is a row (`stall`, its CPU ns, wall time
at its end, the callback's name): what held the loop, counted by benchmarks/openloop.py.

Must not import ``chaos``. Stdlib only.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import os
import time

ON = False
_rows: list = []
_path = ""
now = time.monotonic_ns
# the log index of the write the current request proposed (set by the manager, read by the API)
cur: contextvars.ContextVar = contextvars.ContextVar("wtrace_index", default=0)


def setup(node_id: str) -> None:
    global ON, _path
    raw = os.environ.get("CHAOS_WRITE_TRACE", "")
    if not raw:
        return
    _path = raw.replace("{node}", node_id)
    ON = True
    atexit.register(dump)
    import gc

    cpu = time.thread_time_ns

    def on_gc(phase: str, info: dict) -> None:   # collector pauses: (gcN, 1 start / -1 stop, wall, cpu)
        _rows.append((f"gc{info.get('generation')}", 1 if phase == "start" else -1, now(), cpu()))
    gc.callbacks.append(on_gc)
    _watch_loop_callbacks()


STALL_CPU_NS = 1_000_000


def _callback_name(handle) -> str:
    cb = getattr(handle, "_callback", None)
    owner = getattr(cb, "__self__", None)
    if owner is not None and hasattr(owner, "get_coro"):   # a Task's step: name its coroutine
        coro = owner.get_coro()
        return getattr(coro, "__qualname__", type(coro).__name__)
    return getattr(cb, "__qualname__", type(cb).__name__)


def _watch_loop_callbacks() -> None:
    """Wrap asyncio's Handle._run (diagnostics only): a `stall` row for each slow callback."""
    import asyncio.events
    orig = asyncio.events.Handle._run
    if getattr(orig, "_wtrace", False):
        return
    cpu = time.thread_time_ns

    def _run(self):
        c0 = cpu()
        orig(self)
        d = cpu() - c0
        if d >= STALL_CPU_NS:
            _rows.append(("stall", d, now(), _callback_name(self)))
    _run._wtrace = True
    asyncio.events.Handle._run = _run


def rec(stage: str, index: int) -> None:
    _rows.append((stage, index, now()))


def rec_range(stage: str, lo: int, hi: int) -> None:
    t = now()
    _rows.extend((stage, i, t) for i in range(lo, hi + 1))


def dump() -> None:
    if not _path or not _rows:
        return
    import gc   # what a full collection costs now (CPU ns), and what it scans: (tracked, frozen) objects
    t0 = time.thread_time_ns()
    gc.collect()
    _rows.append(("gc_full_at_exit", len(gc.get_objects()), time.thread_time_ns() - t0, gc.get_freeze_count()))
    with open(_path, "w") as f:
        for r in _rows:
            f.write(json.dumps(r) + "\n")
    _rows.clear()
