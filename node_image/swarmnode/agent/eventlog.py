"""The operator's log: journal events that matter to a person reading `docker logs`, one line each.

Owns the logging set-up of the agent process (`setup`: Python `logging` to stderr, one line per
record with an ISO-8601 timestamp, the node id and the logger's short name, at CHAOS_LOG_LEVEL) and
the mapping from journal events (docs/contracts.md section 4) to log lines (`EventLog`).

Volume is bounded by what is logged at INFO: state changes only -- boot, term, role, granted vote,
truncation, snapshot, recovered commit index, gossip member state, worker registration, task state.
Per-entry events (append, commit, apply) go to DEBUG. Per-message lines never appear at INFO.
Must not import asyncio, aiohttp or ``chaos``.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time

_LOGGER_OF = {"boot": "node", "power-loss": "node", "disk": "node", "member": "gossip", "worker": "dispatcher", "task": "tasks"}   # else "raft"

_PER_ENTRY = frozenset({"append", "commit", "apply"})


class _Formatter(logging.Formatter):
    """`2026-11-30T01:02:03.456Z m1 INFO raft: became leader in term 3` (UTC, milliseconds)."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        name = record.name.rpartition(".")[2]
        line = f"{ts} {self.node_id} {record.levelname} {name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


LOG_QUEUE_MAX = 20_000   # log records waiting for stderr; more are dropped and counted


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hands each record to the writer thread; when the queue is full (stderr not keeping up) the
    record is dropped and counted instead of blocking the event loop or raising."""

    def __init__(self, q: queue.Queue) -> None:
        super().__init__(q)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _CountingStreamHandler(logging.StreamHandler):
    """The writer thread's handler: after a record, says how many were dropped since the last line."""

    def __init__(self, stream, source: _DroppingQueueHandler) -> None:
        super().__init__(stream)
        self._source = source
        self._reported = 0

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        dropped = self._source.dropped
        if dropped != self._reported:
            note = logging.LogRecord("swarmnode.node", logging.WARNING, "", 0,
                                     "log: %d line(s) dropped: stderr was not keeping up",
                                     (dropped - self._reported,), None)
            self._reported = dropped
            super().emit(note)


class _Listener(logging.handlers.QueueListener):
    def enqueue_sentinel(self) -> None:
        self.queue.put(self._sentinel)   # waits for room: the lines before it are written first


_listener: _Listener | None = None


def setup(node_id: str, level: str, stream=None) -> None:
    """Route every logger to stderr (or `stream`) at `level` (config.LOG_LEVELS).

    Lines are written by a thread, not by the caller: a write to stderr blocks while the pipe to the
    container engine is full, and on a starved host (3 + 100 nodes on 2 cores) the event loop spent
    up to half of its time in that write during a gossip storm, which made it late for probes, which
    made the storm. The queue is bounded (LOG_QUEUE_MAX); an overflow drops lines and the next line
    written says how many. `flush()` (also run at exit) writes what is queued."""
    global _listener
    flush()
    # no stack walk or thread/process lookup per record (logging HOWTO, "Optimization")
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    q: queue.Queue = queue.Queue(LOG_QUEUE_MAX)
    handler = _DroppingQueueHandler(q)
    writer = _CountingStreamHandler(stream or sys.stderr, handler)
    writer.setFormatter(_Formatter(node_id))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)   # one line per request otherwise
    _listener = _Listener(q, writer)
    _listener.start()


def flush() -> None:
    """Write every queued line and stop the writer thread (idempotent; registered at exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


atexit.register(flush)


def describe(ev: dict) -> str | None:
    """The log text of one journal event, or None for an unknown type."""
    t = ev.get("type")
    if t == "boot":
        return f"boot {ev.get('boot')} (journal seq {ev.get('seq')})"
    if t == "disk":
        if ev.get("state") == "full":
            return f"disk: writes to {ev.get('file')} fail ({ev.get('error')}); held until space returns"
        return (f"disk: writes to {ev.get('file')} succeed again after {ev.get('failed_s', '?')} s "
                f"({ev.get('error')})")
    if t == "power-loss":
        return (f"power loss: data cut back to its last fsync, {ev.get('dropped_bytes')} bytes dropped "
                f"({ev.get('files')})")
    if t == "term":
        return f"term {ev.get('term')}"
    if t == "role":
        role = ev.get("role")
        verb = {"precandidate": "pre-vote started", "candidate": "election started",
                "leader": "became leader", "follower": "became follower"}.get(role, f"role {role}")
        return f"{verb} in term {ev.get('term')}"
    if t == "vote":
        return f"voted for {ev.get('candidate')} in term {ev.get('term')}"
    if t == "truncate":
        return f"log truncated from index {ev.get('from_index')} (conflict with the leader's log)"
    if t == "snapshot":
        return f"snapshot at index {ev.get('index')} term {ev.get('term')}"
    if t == "commit":
        if ev.get("recovered"):
            return f"commit index {ev.get('index')} recovered from storage"
        return f"commit index {ev.get('index')}"
    if t == "append":
        return f"append index {ev.get('index')} term {ev.get('term')}"
    if t == "apply":
        return f"apply index {ev.get('index')} term {ev.get('term')}"
    if t == "member":
        return f"member {ev.get('member')} {ev.get('state')} (incarnation {ev.get('incarnation')})"
    if t == "worker":
        return f"worker {ev.get('worker')} {ev.get('state')}"
    if t == "task":
        return (f"task {ev.get('task')} ({ev.get('service')} slot {ev.get('slot')}) on {ev.get('worker')}: "
                f"{ev.get('state')}")
    return None


def level_of(ev: dict) -> int:
    t = ev.get("type")
    if t in _PER_ENTRY and not (t == "commit" and ev.get("recovered")):
        return logging.DEBUG  # recovered appends too: a restart would print thousands of lines
    if t == "task" and ev.get("state") == "failed":
        return logging.WARNING
    if t == "member" and ev.get("state") == "dead":
        return logging.WARNING
    if t == "worker" and ev.get("state") == "down":
        return logging.WARNING
    if t == "disk" and ev.get("state") == "full":
        return logging.WARNING
    if t == "power-loss":
        return logging.WARNING
    return logging.INFO


class EventLog:
    """Journal observer that logs each event worth a line. A role event repeating the last one
    (an isolated node starting pre-vote after pre-vote in the same term, every election timeout)
    is not logged again: the line would say nothing new, twice a second."""

    def __init__(self) -> None:
        self._last_role: tuple | None = None

    def __call__(self, ev: dict) -> None:
        if ev.get("type") == "role":
            key = (ev.get("role"), ev.get("term"))
            if key == self._last_role:
                return
            self._last_role = key
        elif ev.get("type") == "boot":
            self._last_role = None
        level = level_of(ev)
        log = logging.getLogger("swarmnode." + _LOGGER_OF.get(ev.get("type"), "raft"))
        if not log.isEnabledFor(level):
            return
        text = describe(ev)
        if text is not None:
            log.log(level, "%s", text)
