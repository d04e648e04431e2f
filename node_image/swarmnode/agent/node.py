"""One node's runtime shell, shared by managers and workers.

Owns: the asyncio tick loop (wall time -> core ticks every CHAOS_TICK_MS), message routing from the
transport to the cores by channel, the SWIM driver (journal flush, then send), client forwarding to
the leader over the peer transport (so client traffic obeys partitions), the HTTP backend facade
and start/stop. Role policy lives in ``manager.py`` and ``worker.py``.

Channels on the wire (``msg["ch"]``; append-only): ``swim`` (body ``b``: a SWIM message dict),
``raft`` (body ``b``: a Raft message dict), ``disp`` (dispatcher, see worker.py / manager.py),
``fwd`` ``{"id", "op", "deadline"}`` (wall-clock epoch seconds after which the leader drops it:
the client has had its timeout) and ``fwd_reply`` ``{"id", "status", "body"}``.

Must not import ``chaos``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import itertools
import logging
import os
import random
import resource
import time
from typing import TYPE_CHECKING, Optional

from swarmnode import durability, swim
from swarmnode.swim import core as swim_core

from .bodies import error_body
from .config import AgentConfig
from . import eventlog, wtrace
from .journal import Journal
from .faketime import faketime_state
from .transport import TcpTransport, new_counters

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("swarmnode.node")

MAX_PENDING_FORWARDS = 4096   # client requests waiting for a leader's answer
LEAVE_LINGER_S = 0.6          # gossip rounds (every 200 ms) a leaving node keeps running
WORKER_TICK_MIN_MS = 50       # a worker's tick period is at least this (see tick_period_ms)
# A worker sleeps until its next timer is due (see _worker_wait), at least WORKER_WAIT_MIN_MS and at
# most WORKER_WAIT_MAX_MS: the floor bounds the wake rate if a timer stayed due, the ceiling bounds
# how late anything is that no message or timer accounts for.
WORKER_WAIT_MIN_MS = 10
WORKER_WAIT_MAX_MS = 250

LOCAL_OPS = ("service.list", "task.list")  # answered from a manager's own applied store
READ_OPS = ("kv.get",) + LOCAL_OPS          # safe to send again to another leader
LEADER_WAIT = 1.0   # a request with no leader known waits this many maximum election timeouts


def current_rss_mb() -> Optional[float]:
    """Resident memory now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return round(pages * resource.getpagesize() / (1 << 20), 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


PROMOTED_FILE = "promoted"   # in the data dir: the join token of a worker promoted to manager


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def _read_promoted(data_dir: str) -> str:
    try:
        with open(os.path.join(data_dir, PROMOTED_FILE)) as f:
            return f.read().strip()
    except OSError:
        return ""


def swim_config(cfg: AgentConfig) -> swim.SwimConfig:
    extra = {}
    if "gossip_no_pushpull" in cfg.plant:   # planted: no anti-entropy state exchange (periodic
        extra["pushpull_interval_ms"] = 0    # push-pull, nor the push-pull that reconnects members
        extra["reconnect_interval_ms"] = 0   # declared dead); the join exchange stays
    return swim.SwimConfig.local().replace(probe_interval_ms=cfg.gossip_probe_interval_ms,
                                           probe_timeout_ms=cfg.gossip_probe_timeout_ms, **extra)


class Node:
    """The runtime of one agent process."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.id = cfg.node_id
        wtrace.setup(cfg.node_id)
        self.counters = new_counters()
        self.counters.update({"bad_messages": 0, "unroutable": 0, "forwarded": 0,
                              "forward_timeouts": 0, "forwards_refused": 0, "tick_lag_skips": 0,
                              "gossip_rejoins": 0, "forwards_expired": 0, "tick_errors": 0,
                              "forwards_leader_lost": 0, "forwards_retried": 0})
        self._join_gave_up_seen = 0
        self.journal = Journal(cfg.data_dir, cfg.node_id, observer=eventlog.EventLog())
        # A `power-loss` fault left its marker: cut the data back to what was fsynced, before any
        # role reads it (swarmnode.durability); journaled and shown in /status for this boot.
        self.power_loss = durability.apply_power_loss(cfg.data_dir)
        if self.power_loss is not None:
            self.power_loss = {"boot": self.journal.boot, **self.power_loss}
            self.journal.record({"type": "power-loss", "dropped_bytes": self.power_loss["dropped_bytes"],
                                 "files": {f: r["dropped"] for f, r in self.power_loss["files"].items()}})
            self.journal.flush()
        self.rng = random.Random(cfg.seed)
        self._t0 = time.monotonic()
        self.transport = TcpTransport(
            cfg.node_id, dict(cfg.peers), self.on_message, host=cfg.peer_host, port=cfg.peer_port,
            queue_max=cfg.send_queue_max, reconnect_min_ms=cfg.reconnect_min_ms,
            reconnect_max_ms=cfg.reconnect_max_ms, connect_timeout_ms=cfg.connect_timeout_ms,
            frame_stall_ms=cfg.frame_stall_ms, rng=random.Random(cfg.seed * 7919 + 1),
            counters=self.counters,
            instance=f"{self.journal.boot}-{os.getpid()}-{time.time_ns() // 1_000_000}")
        self.swim = swim.SwimNode(cfg.node_id, swim_config(cfg), random.Random(cfg.seed * 7919 + 2),
                                  seeds=list(cfg.seeds), now_ms=self.now_ms(),
                                  bugs=frozenset(b for b in cfg.plant if b in swim_core.SWIM_BUGS))
        self._fwd_ids = itertools.count(1)
        self._fwd_pending: dict[int, asyncio.Future] = {}
        self._leader_seen: Optional[str] = None
        self._leader_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._runner: Optional[web.AppRunner] = None
        self.started = False
        self._tick_waiter: Optional[asyncio.Future] = None   # a worker's tick sleep (_worker_wait)
        self._tick_due_ms = 0
        self.exit_code: Optional[int] = None
        self.fatal = asyncio.Event()   # set by fail(): the process should exit with exit_code
        promoted = _read_promoted(cfg.data_dir)
        if not cfg.is_manager and promoted:
            # a worker promoted earlier (see become_manager) stays a manager across restarts
            self.cfg = cfg = dataclasses.replace(cfg, role="manager", join_token=promoted)
        if cfg.is_manager:
            from .manager import ManagerRole
            self.role = ManagerRole(self)
        else:
            from .worker import WorkerRole
            self.role = WorkerRole(self)

    # -- time ------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.transport.start()
        if not self.cfg.is_manager:
            # A worker loads its HTTP API (aiohttp: about 0.25 s of CPU for imports, tens of
            # seconds of wall time while a hundred containers start on two cores) BEFORE it joins
            # gossip. Joined first, it was probed while the import held the interpreter: at 3 + 100
            # each joining worker was suspected two or three times (false suspicions that every
            # node journals, logs, re-gossips and sees refuted), about 250 rumours a node. A
            # worker nobody knows yet is probed by nobody. A worker runs no Raft, so nothing waits.
            await self._start_api()
        self.swim.join()
        self.flush_swim()
        await self.role.start()
        self._tasks.append(asyncio.ensure_future(self._tick_loop()))
        if self.cfg.is_manager:
            # Raft and gossip run from here on; a manager's API is loaded in a thread meanwhile,
            # so a restarted manager can already vote and replicate: with two of three managers
            # restarted, the survivor's first committed write waits for a peer's Raft, not for
            # its API.
            await self._start_api()
        self._tune_gc()
        self.started = True
        log.info("node %s (%s) up: peer port %d, api port %d, boot %d", self.id, self.cfg.role,
                 self.cfg.peer_port, self.cfg.api_port, self.journal.boot)

    async def _start_api(self) -> None:
        """Import the API (in a thread: the loop keeps serving Raft and gossip meanwhile) and start
        its server."""
        api = await asyncio.get_running_loop().run_in_executor(
            None, importlib.import_module, "swarmnode.agent.api")
        from aiohttp import web
        self._runner = web.AppRunner(api.build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.api_host, self.cfg.api_port, reuse_address=True)
        await site.start()

    def _tune_gc(self) -> None:
        """CHAOS_GC_FREEZE / CHAOS_GC_THRESHOLD0 (see AgentConfig): start-up's objects (modules,
        the aiohttp app, the cores) out of the collector's scans (no collection first: gc.freeze()
        itself is O(1), a full collection here would be a pause while Raft runs, and the little
        start-up garbage frozen with the rest is only kept.)"""
        import gc
        if self.cfg.gc_threshold0:
            gc.set_threshold(self.cfg.gc_threshold0, *gc.get_threshold()[1:])
        if self.cfg.gc_freeze:
            gc.freeze()

    def fail(self, code: int) -> None:
        """Ask the process to exit with `code` (a refused join: __main__ waits on `fatal`)."""
        self.exit_code = code
        self.fatal.set()

    async def become_manager(self, token: str) -> None:
        """A worker promoted by the leader (`chaos node promote W`): stop its tasks, remember the
        promotion in the data dir (fsynced, so a restart comes back a manager), and run the manager
        role as a joiner with the cluster's token: the leader adds it as a learner and makes it a
        voter once it has caught up."""
        if self.cfg.is_manager:
            return
        from .manager import ManagerRole
        path = os.path.join(self.cfg.data_dir, PROMOTED_FILE)
        with open(path + ".tmp", "w") as f:
            f.write(token)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        await self.role.stop()
        self.cfg = dataclasses.replace(self.cfg, role="manager", join_token=token)
        self.role = ManagerRole(self)
        self.journal.record({"type": "promoted", "role": "manager"})
        self.journal.flush()
        log.info("promoted to manager: joining the Raft group")
        await self.role.start()

    async def ask(self, peer: str, op: dict, timeout_s: float) -> tuple[int, dict]:
        """Send `op` to `peer` on the forwarding channel and wait for its answer (a follower
        passes a `member.join` on to its leader). (0, {...}) when no answer came in time."""
        if len(self._fwd_pending) >= MAX_PENDING_FORWARDS:
            return 0, error_body("unavailable", "too many requests waiting", True)
        loop = asyncio.get_running_loop()
        fid = next(self._fwd_ids)
        fut = loop.create_future()
        self._fwd_pending[fid] = fut
        self.send(peer, {"ch": "fwd", "id": fid, "op": op, "deadline": round(time.time() + timeout_s, 3)})
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            return 0, error_body("timeout", f"no answer from {peer}", False)
        finally:
            self._fwd_pending.pop(fid, None)

    async def leave(self, linger_s: float = LEAVE_LINGER_S) -> None:
        """Graceful SWIM leave (SIGTERM): announce `left`, keep ticking and answering for `linger_s`
        so the rumour rides a few gossip rounds, then return (the caller stops the node). Peers then
        show this node `left`, not suspected and declared dead a few seconds later; a later start
        refutes `left` with a higher incarnation and is alive again."""
        if not self.started:
            return
        self.swim.leave()
        self.flush_swim()
        await asyncio.sleep(linger_s)   # the linger itself: gossip runs on the tick loop meanwhile

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.role.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.transport.close()
        self.journal.close()

    async def _tick_loop(self) -> None:
        """Managers: one core tick per CHAOS_TICK_MS of wall time. Missed ticks are skipped, never
        replayed in a burst: a process starved for 400 ms that replayed 40 ticks before reading its
        socket would start an election although the leader's heartbeats are waiting unread. So under
        CPU starvation Raft's timers stretch (counted in ``tick_lag_skips``) instead of firing
        falsely. SWIM timers use the monotonic clock in ms and are unaffected.

        Workers (no Raft) tick when a timer is due instead (_worker_wait): on this kind of machine
        an asyncio wake-up costs 100-200 us of CPU, so a hundred idle workers ticking every 50 ms
        spent about 0.4 of the machine's two cores on waking up (5.6 ms/s of CPU per idle worker,
        measured at 3 + 100), the time a 3 + 100 cluster needs to come up."""
        loop = asyncio.get_running_loop()
        period = self.tick_period_ms() / 1000
        next_at = loop.time() + period
        while True:
            if self.cfg.is_manager:
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)  # let pending I/O (messages) run before this tick
                now = loop.time()
                period = self.tick_period_ms() / 1000   # a promoted worker ticks as a manager from now
                if now - next_at > period:
                    self.counters["tick_lag_skips"] += 1
                    next_at = now
                next_at += period
            else:
                await self._worker_wait()
                next_at = loop.time() + self.tick_period_ms() / 1000
            try:
                self.tick()
            except Exception:  # a bug in one tick must not stop the clock; it is logged loudly,
                # but a bug that fails every tick (100 a second) is logged at the 1st, 10th, 100th...
                self.counters["tick_errors"] += 1
                n = self.counters["tick_errors"]
                if n == 10 ** (len(str(n)) - 1):
                    log.exception("tick failed (%d so far)", n)

    def _worker_due_ms(self) -> int:
        """When a worker's next tick has work: its SWIM core's next timer or its role's (the next
        dispatcher heartbeat; task polling while it has tasks), within the wait bounds."""
        now = self.now_ms()
        due = min(self.swim.next_deadline_ms(), self.role.next_due_ms(now), now + WORKER_WAIT_MAX_MS)
        return max(due, now + WORKER_WAIT_MIN_MS)

    async def _worker_wait(self) -> None:
        """Sleep until _worker_due_ms, or until _kick_tick finds that something (a message, a leave,
        an assignment) moved a timer earlier."""
        loop = asyncio.get_running_loop()
        self._tick_due_ms = due = self._worker_due_ms()
        fut = self._tick_waiter = loop.create_future()
        handle = loop.call_later(max(0, due - self.now_ms()) / 1000, _wake, fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._tick_waiter = None

    def _kick_tick(self) -> None:
        fut = self._tick_waiter
        if fut is not None and not fut.done() and self._worker_due_ms() < self._tick_due_ms:
            fut.set_result(None)

    def tick_period_ms(self) -> int:
        """Managers tick every CHAOS_TICK_MS (Raft timers count ticks). Workers run no Raft: their
        timers (SWIM, heartbeats, task polling) are in milliseconds and need no finer clock than
        WORKER_TICK_MIN_MS, which keeps an idle worker's CPU low when there are a hundred."""
        if self.cfg.is_manager:
            return self.cfg.tick_ms
        return max(self.cfg.tick_ms, WORKER_TICK_MIN_MS)

    def tick(self) -> None:
        now = self.now_ms()
        self.swim.tick(now)
        if not self.swim.joined and self.swim.counters.get("join_gave_up", 0) > self._join_gave_up_seen:
            # The core gives up after join_max_attempts; seeds may simply not be up yet (containers
            # start in any order), so the driver starts another bounded round, counted.
            self._join_gave_up_seen = self.swim.counters["join_gave_up"]
            self.counters["gossip_rejoins"] += 1
            self.swim.join()
        self.flush_swim()
        self.role.tick(now)
        self._note_leader()

    # -- messages --------------------------------------------------------------------------------
    def send(self, peer: str, msg: dict) -> None:
        if not self.transport.send(peer, msg):
            self.counters["unroutable"] += 1

    def flush_swim(self) -> None:
        """SWIM effects in the contract's order: journal events flushed, then messages sent."""
        out = self.swim.poll()
        if out.events:
            self.journal.record_all(out.events)
            self.journal.flush()
        for m in out.messages:
            self.send(m.dst, {"ch": "swim", "b": m.to_dict()})
        self._kick_tick()

    def on_message(self, sender: str, msg: dict) -> None:
        ch = msg.get("ch")
        try:
            if ch == "swim":
                self.swim.step(swim.decode(msg.get("b")), self.now_ms())
                self.flush_swim()
            elif ch == "raft" and hasattr(self.role, "on_raft"):
                self.role.on_raft(sender, msg.get("b"))
            elif ch == "disp":
                self.role.on_dispatch(sender, msg)
            elif ch == "fwd":
                self._on_forward(sender, msg)
            elif ch == "fwd_reply":
                self._on_forward_reply(msg)
            else:
                self.counters["bad_messages"] += 1
        except (ValueError, TypeError, KeyError) as exc:  # the peer's error: count and drop
            self.counters["bad_messages"] += 1
            log.debug("dropping bad %s message from %s: %s", ch, sender, exc)
        if ch == "raft" or ch == "disp":
            self._note_leader()
            self._kick_tick()

    # -- client operations -----------------------------------------------------------------------
    async def execute(self, op: dict) -> tuple[int, dict]:
        """Run a client operation here if we are the leader, else forward it to the leader.

        Failing over without making the client wait out its timeout:
        - no leader known (an election is under way): wait up to LEADER_WAIT of the election
          timeout for one, then 503 no-leader, definite only when nothing was sent: after a
          forward to a leader that was lost, the write may have been appended and committed
          (seen: a correct cluster judged not linearizable on a write answered "no-leader,
          definite" that a read had already returned);
        - the leader we forwarded to stops being the one we know (it died or was deposed and an
          election started): a read, or a write that carries client_id/seq (the store de-duplicates
          it: exactly once), is forwarded again to the next leader; any other write is answered 503
          at once, not definite (the old leader may have appended it and a new one may commit it).
        Everything within request_timeout_ms of the request's arrival."""
        if op["op"] in LOCAL_OPS and self.cfg.is_manager:
            return self.role.execute_local_read(op)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.request_timeout_ms / 1000
        retry_safe = op["op"] in READ_OPS or op["op"] == "cluster.token" or "client_id" in op
        sent = False   # forwarded to some leader at least once: the outcome is no longer known
        while True:
            if self.role.is_leader():
                return await self.role.execute_leader(op)
            if getattr(self.role, "removed", lambda: False)():
                # out of the configuration: no leader will tell this node anything again (§4.2.3)
                return 503, error_body("no-leader", "this manager was removed from the configuration",
                                       not sent or op["op"] in READ_OPS)
            leader = self.role.leader_hint()
            if leader is None or leader == self.id:
                wait_s = min(deadline - loop.time(), self.cfg.election_timeout_max_ms * LEADER_WAIT / 1000)
                if wait_s <= 0 or not await self._leader_change(wait_s):
                    if sent and op["op"] not in READ_OPS:
                        return 503, error_body("no-leader", "no leader known; an earlier forward of this "
                                               "request to a leader that was lost may have applied it", False)
                    return 503, error_body("no-leader", "no leader known", True)
                continue
            sent = True
            status, body, lost = await self._forward(leader, op, deadline)
            if not lost:
                return status, body
            self.counters["forwards_leader_lost"] += 1
            if not retry_safe:
                body = error_body("unavailable", f"leader {leader} lost while the request was with it",
                                  False)
                body["leader"] = self.role.leader_hint()
                return 503, body
            if loop.time() >= deadline:
                return 504, error_body("timeout", f"leader {leader} lost; no new leader in time", False)
            self.counters["forwards_retried"] += 1

    def _note_leader(self) -> None:
        """Wake every request waiting for a leader change (called after each tick and message)."""
        hint = self.role.leader_hint()
        if hint != self._leader_seen:
            self._leader_seen = hint
            self._leader_event.set()
            self._leader_event = asyncio.Event()

    async def _leader_change(self, timeout_s: float) -> bool:
        """True when the known leader changes within timeout_s."""
        try:
            await asyncio.wait_for(self._leader_event.wait(), timeout_s)
            return True
        except asyncio.TimeoutError:
            return False

    async def _forward(self, leader: str, op: dict, deadline: float) -> tuple[int, dict, bool]:
        """Send op to leader; (status, body, lost): lost when, before an answer, the leader we know
        is no longer `leader`."""
        if len(self._fwd_pending) >= MAX_PENDING_FORWARDS:
            self.counters["forwards_refused"] += 1
            return 503, error_body("unavailable", "too many requests waiting for the leader", True), False
        loop = asyncio.get_running_loop()
        fid = next(self._fwd_ids)
        fut = loop.create_future()
        self._fwd_pending[fid] = fut
        self.counters["forwarded"] += 1
        wall_deadline = time.time() + max(0.0, deadline - loop.time())
        self.send(leader, {"ch": "fwd", "id": fid, "op": op, "deadline": round(wall_deadline, 3)})
        changed = asyncio.ensure_future(self._leader_event.wait())
        try:
            remaining = deadline - loop.time()
            done, _ = await asyncio.wait({fut, changed}, timeout=max(0.0, remaining),
                                         return_when=asyncio.FIRST_COMPLETED)
            if fut in done:
                status, body = fut.result()
            elif changed in done and self.role.leader_hint() != leader:
                return 0, {}, True
            elif changed in done:  # changed and back again within one wake-up: keep waiting
                status, body = await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
            else:
                raise asyncio.TimeoutError
        except asyncio.TimeoutError:
            self.counters["forward_timeouts"] += 1
            return 504, error_body("timeout", f"no answer from leader {leader}", False), False
        finally:
            changed.cancel()
            self._fwd_pending.pop(fid, None)
        if isinstance(body, dict) and body.get("error") == "not-leader":
            body.setdefault("leader", None)
        return status, body, False

    def _on_forward(self, sender: str, msg: dict) -> None:
        fid, op = msg["id"], msg["op"]
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise ValueError("fwd without an op")
        deadline = msg.get("deadline")
        if isinstance(deadline, (int, float)) and time.time() > deadline:
            # The client already got a timeout; a request that sat in a send queue through a
            # partition or a restart is dropped rather than applied long after (counted).
            self.counters["forwards_expired"] += 1
            return

        async def go() -> None:
            if op["op"] == "member.join" and self.cfg.is_manager and not self.role.is_leader():
                status, body = await self.execute(op)   # a joiner may know no leader: pass it on
            elif not self.role.is_leader():
                status, body = 503, error_body("not-leader", "forwarded to a non-leader", True)
                body["leader"] = self.role.leader_hint()
            else:
                try:
                    status, body = await self.role.execute_leader(op)
                except Exception:  # noqa: BLE001 -- never crash on a peer's request
                    log.exception("forwarded op failed")
                    status, body = 500, error_body("internal", "internal error", False)
            self.send(sender, {"ch": "fwd_reply", "id": fid, "status": status, "body": body})

        asyncio.ensure_future(go())

    def _on_forward_reply(self, msg: dict) -> None:
        fut = self._fwd_pending.get(msg["id"])
        if fut is not None and not fut.done():
            status, body = msg["status"], msg["body"]
            if not isinstance(status, int) or not isinstance(body, dict):
                raise ValueError("bad fwd_reply")
            fut.set_result((status, body))

    # -- HTTP backend ----------------------------------------------------------------------------
    def members(self) -> dict:
        return {m: {"state": st, "incarnation": inc}
                for m, (st, inc) in sorted(self.swim.members().items())}

    def endpoints(self) -> dict:
        return {k: {"owner": e.owner, "value": e.value}
                for k, e in sorted(self.swim.endpoints().items())}

    def status(self) -> dict:
        base = {"node": self.id, "kind": self.cfg.role, "boot": self.journal.boot,
                "members": self.members(), "counters": dict(self.counters),
                # the SWIM core's own counts (suspicions started, refutations, ...) and its
                # Lifeguard local health score (0 healthy .. awareness_max - 1)
                "gossip": {"counters": dict(self.swim.counters), "health": self.swim.health},
                "rss_mb": current_rss_mb(),
                # the node's clocks as its processes see them (a `clock` fault fakes both through
                # libfaketime; the harness reads them back to verify the fault)
                "clock": {"wall": time.time(), "monotonic": time.monotonic(),
                          "faketime": faketime_state()}}
        if self.power_loss is not None:
            base["power_loss"] = self.power_loss
        if self.journal.write_errors:
            base["journal_disk"] = {"write_errors": self.journal.write_errors, "failing": self.journal.failing}
        base.update(self.role.status_fields())
        return base

    def journal_since(self, since: int) -> bytes:
        return self.journal.read_since(since)

    def store(self) -> Optional[dict]:
        return self.role.store_view()

    async def probe(self, peer: str, timeout_ms: int) -> Optional[float]:
        return await self.transport.probe(peer, timeout_ms)

    def has_peer(self, peer: str) -> bool:
        return peer in self.transport.peers
