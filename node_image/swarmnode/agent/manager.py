"""Manager role: the Raft driver, client operations on the store, dispatcher and orchestrator.

Owns the one place where a manager carries out Raft's effects, in the Ready contract's order:
  1. persist hard state / entries / snapshot (FileStorage, fsync) and flush the journal events,
  2. send messages,
  3. release applied results and confirmed reads to waiting clients,
  4. advance.
Ready processing is batched: every input (message, tick, proposal) only schedules one pass with
``call_soon``, so many inputs in one loop iteration share one fsync.

Also owns the leader's dispatcher (worker heartbeats; a worker silent for grace x heartbeat is
marked DOWN through Raft) and runs ``orchestrator.reconcile`` on the committed store.

Client ``seq`` numbers are passed to the store as ``seq + 1`` (the HTTP contract allows 0, the
store's sessions start at 1); the mapping is monotonic so de-duplication is unchanged.

Must not import ``chaos``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import random
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Optional

from swarmnode.raft import core as raftcore
from swarmnode.raft.config import BUGS as RAFT_BUGS, config_from_ms
from swarmnode.raft.membership import ConfChangeError
from swarmnode.raft.messages import MessageError, message_from_dict
from swarmnode.durability import note_synced
from swarmnode.raft.storage import FileStorage, StorageWriteError
from swarmnode.raft.store import CLUSTER_KEY, STORE_BUGS, TASK_STATE_RANK

from . import members, orchestrator, wtrace
from .bodies import error_body
from .fast_store import FastStore

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("swarmnode.manager")

MAX_READY_ROUNDS = 64          # Ready passes per scheduled run (the rest is rescheduled)
ORCHESTRATE_EVERY_MS = 100
# The leader looks for silent workers this often, not every tick: the scan sorts every node of the
# store, and at 3 + 100 on every 10 ms tick it was 9 % of a busy leader's samples (py-spy). A DOWN
# comes at most this much later than grace x heartbeat (seconds).
HEARTBEAT_CHECK_EVERY_MS = 100
INFLIGHT_EXPIRY_MS = 3000      # a system proposal not applied by then may be proposed again
MAX_INFLIGHT = 4096
MAX_PENDING_CLIENT = 20000     # client writes + reads waiting on this leader
RESTART_DELAY_MS = 1000        # a slot whose task failed gets its replacement after this delay
JOIN_RETRY_MS = 500            # a joining manager asks again this often until it is a member
JOIN_REFUSED_EXIT = 4          # exit status of a joining manager the cluster refused


class _LazyFileStorage(FileStorage):
    """FileStorage whose sync() only writes to the OS, never fsyncs (CHAOS_FSYNC=0, benchmarks only)."""

    def sync(self) -> None:
        try:
            self._write_out()
        except OSError as exc:
            raise self._rollback(exc) from exc
        self._ckpt = None


class _DeferredFsyncStorage(_LazyFileStorage):
    """Planted `ack_before_fsync` (test only, swarmnode.plant): sync() hands the log appends to the
    OS and returns; the fsync (and the synced-length ledger with it) happens in the background,
    every DEFERRED_FSYNC_MS, from the manager's tick."""

    def sync(self) -> None:
        wrote = bool(self._wbuf)
        super().sync()
        self._owed = getattr(self, "_owed", False) or wrote

    def background_fsync(self) -> None:
        if getattr(self, "_owed", False) and self._file is not None:
            try:
                os.fsync(self._file)
                note_synced(self._log_path, self._written_len)
            except OSError:
                return
        self._owed = False


class _TornOnFullStorage(FileStorage):
    """Planted `enospc_corrupts_log` (test only, swarmnode.plant): a log write that fails (ENOSPC)
    is not undone: the bytes that did fit (a torn record) stay in the file, the rest is forgotten,
    and sync() returns as if it had succeeded, so the agent acknowledges appends that are not
    stored; when space returns, later records follow the torn one (a restart's load stops there)."""

    def _write_out(self) -> bool:
        try:
            return super()._write_out()
        except OSError:
            self._wbuf.clear()
            self._written_len = os.fstat(self._fd()).st_size
            return True


DEFERRED_FSYNC_MS = 1000
SWITCH_INTERVAL_S = 0.0005   # see ManagerRole.__init__ (group commit)
DISK_RETRY_MS = 100          # a failed Raft storage write is retried this often


def _planted_raft_settings(plant: frozenset) -> dict:
    """RaftConfig overrides for planted bugs (test only, swarmnode.plant); {} without any."""
    out: dict = {}
    bugs = frozenset(b for b in plant if b in RAFT_BUGS)
    if bugs:
        out["bugs"] = bugs
    if "deposed_leader_reads" in plant:   # planted: a cut-off leader never steps down
        out["check_quorum"] = False
    if "no_prevote" in plant:             # planted: no PreVote round before a term increase
        out["pre_vote"] = False
    return out


def _key(cmd: dict) -> str:
    return json.dumps(cmd, sort_keys=True, separators=(",", ":"))


def _with_config_events(rd, conf: tuple) -> tuple:
    """The Ready's events with `config` events added (the configuration in force changed:
    appended, rolled back by a truncation, or loaded from storage). A configuration is in force
    from the moment it is in the log, so each configuration entry this Ready appends gets its own
    event right after that entry's `append` event, in log order, before any commit the same Ready
    journals after it (two changes appended together -- two in flight -- are both visible to
    raft-safety's conf-change-rule, also when the second one commits at once). The configuration in
    force when it was not appended here (a load, a rollback, a snapshot) is journaled before a
    `role: leader` of the same Ready, else last."""
    by_index = {e.index: {"type": "config", "index": e.index, "voters": list(e.command.get("voters", ())),
                          "learners": list(e.command.get("learners", ()))}
                for e in rd.entries if e.index <= conf[0] and e.command.get("op") == "config"}
    evs = list(rd.events)
    last_append = {e.get("index"): i for i, e in enumerate(evs) if e.get("type") == "append"}
    after: dict[int, list] = {}
    for idx in sorted(by_index):
        if idx in last_append:
            after.setdefault(last_append[idx], []).append(by_index[idx])
    out = []
    for i, e in enumerate(evs):
        out.append(e)
        out += after.get(i, [])
    if conf[0] not in by_index or conf[0] not in last_append:
        ev = {"type": "config", "index": conf[0], "voters": list(conf[1]), "learners": list(conf[2])}
        at = next((i for i, e in enumerate(out) if e.get("type") == "role" and e.get("role") == "leader"),
                  len(out))   # in force before a leadership this Ready also reports
        out.insert(at, ev)
    return tuple(out)


_TIMED_OUT = object()   # the result a waiting write gets from its timer


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(_TIMED_OUT)


def _trace_msg(msg, entries_stage: str, ack_stage: str) -> None:
    """Write trace of one Raft message: the entries it carries, or the successful ack it is."""
    entries = getattr(msg, "entries", None)
    if entries:
        wtrace.rec_range(entries_stage, entries[0].index, entries[-1].index)
    elif getattr(msg, "match_index", 0) and getattr(msg, "success", False):
        wtrace.rec(ack_stage, msg.match_index)


class ManagerRole:
    kind = "manager"

    def __init__(self, node: "Node") -> None:
        self.node = node
        cfg = self.cfg = node.cfg
        path = os.path.join(cfg.data_dir, "raft")
        if "ack_before_fsync" in cfg.plant:   # planted: acknowledged before the fsync (background)
            self.storage = _DeferredFsyncStorage(path)
        elif "enospc_corrupts_log" in cfg.plant:   # planted: a failed log write is kept torn, and ignored
            self.storage = _TornOnFullStorage(path)
        else:
            self.storage = FileStorage(path) if cfg.fsync else _LazyFileStorage(path)
        # group commit: log fsyncs run on one thread (plain FileStorage only; a planted storage
        # keeps the synchronous path its plant describes)
        self._sync_pool = (ThreadPoolExecutor(1, thread_name_prefix="raft-fsync")
                           if type(self.storage) is FileStorage and cfg.fsync_thread else None)
        self._snap_pool = None
        if self._sync_pool is not None:
            # a local snapshot's encoding, write, fsync and rename run on their own thread, beside
            # the log's group fsyncs (FileStorage: background snapshots)
            self._snap_pool = ThreadPoolExecutor(1, thread_name_prefix="raft-snapshot")
            self.storage.snapshot_writer = self._snap_pool.submit
            # the fsync thread needs the GIL back to hand its group over; at the default 5 ms
            # switch interval a busy loop would keep it waiting up to 5 ms per group
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self._sync_fut: Optional[asyncio.Future] = None
        self._early_apply = self._sync_pool is not None and cfg.apply_during_fsync
        self._unsent = False   # client proposals appended but not yet sent (raft.send_appends)
        self._next_fsync_ms = 0
        self._held: list = []                  # Readies whose write failed (see _storage_failed)
        self._worker_boot: dict[str, int] = {}  # planted stale_worker_identity only
        self._disk_error: Optional[str] = None
        self._disk_since = 0.0
        self._disk_retry_at_ms = 0
        self.store = FastStore()  # Store with an incremental digest (same value), see fast_store
        self.plant = cfg.plant
        self.store.bugs = frozenset(b for b in self.plant if b in STORE_BUGS)  # test only (plant.py)
        rcfg = config_from_ms(cfg.tick_ms, cfg.heartbeat_ms, cfg.election_timeout_min_ms,
                              cfg.election_timeout_max_ms, snapshot_threshold=cfg.snapshot_entries,
                              max_entries_per_message=cfg.max_entries_per_message,
                              **_planted_raft_settings(self.plant))
        # a joining manager (CHAOS_JOIN_TOKEN) starts without a configuration: the leader adds it
        bootstrap = () if cfg.join_token else cfg.managers
        self.raft = raftcore.RaftNode(cfg.node_id, bootstrap, self.storage, rcfg,
                                      random.Random(cfg.seed * 7919 + 3), self.store)
        self._fresh = self.raft.last_log_index == 0 and self.raft.term == 0
        self.join_state: Optional[dict] = None
        if cfg.join_token:
            self.join_state = {"state": "member" if self._is_member() else "joining", "attempts": 0}
        self._join_task: Optional[asyncio.Task] = None
        # this process's join id: a retried join that finds this node already added is the same
        # joiner (members.join); memory only, so a restart with a wiped disk asks with a new one
        self._join_nonce = secrets.token_hex(8)
        self._join_nonces: dict[str, str] = {}   # leader: node -> nonce of the add it proposed
        self._conf_seen: Optional[tuple] = None
        self._token = secrets.token_urlsafe(18)   # proposed once if the cluster has none yet
        self._scheduled = False
        self._traced_commit = 0
        self._writes: dict[int, tuple[int, asyncio.Future]] = {}
        self._reads: dict[int, asyncio.Future] = {}
        self._ctx = itertools.count(1)
        # planted wall_clock_lease only: wall time each ReadIndex was asked, and the lease it buys
        self._read_asked_wall: dict[int, float] = {}
        self._lease_until_wall = 0.0
        self._was_leader = False
        self._known_leader: Optional[str] = None
        self._ready_term = -1
        self._leader_since_ms = 0
        self._last_hb: dict[str, int] = {}
        self._inflight: dict[str, int] = {}
        self._next_orchestrate_ms = 0
        self._next_hb_check_ms = 0
        self._dirty_workers: set[str] = set()
        self._slot_hold_until: dict[tuple[str, int], int] = {}
        node.counters.update({"proposals": 0, "proposals_lost": 0, "busy": 0, "storage_write_errors": 0,
                              "writes_refused_disk": 0,
                              "system_proposals": 0, "workers_marked_down": 0,
                              "inflight_bound_hits": 0, "ready_rounds_bound_hits": 0,
                              "applied_during_fsync": 0,
                              "group_syncs": 0, "group_entries": 0})

    async def start(self) -> None:
        self._kick()
        if self.join_state is not None and self.join_state["state"] == "joining":
            self._join_task = asyncio.ensure_future(self._join_loop())

    async def stop(self) -> None:
        if self._join_task is not None:
            self._join_task.cancel()
            await asyncio.gather(self._join_task, return_exceptions=True)
        self._fail_all(503, "unavailable", "node stopping", False)
        if self._sync_fut is not None:
            await asyncio.gather(self._sync_fut, return_exceptions=True)
        if self._sync_pool is not None:
            self._sync_pool.shutdown(wait=True)
        if self._snap_pool is not None:
            self._snap_pool.shutdown(wait=True)
        self.storage.close()

    # -- joining a running cluster (CHAOS_JOIN_TOKEN) --------------------------------------------
    def removed(self) -> bool:
        """This manager knows a committed configuration without it (it will hear no leader again)."""
        raft = self.raft
        return (self.join_state is None or self.join_state["state"] != "joining") and not self._is_member() \
            and raft.log.last_conf_index <= raft.commit_index and raft.membership is not None

    def _is_member(self) -> bool:
        return self.node.id in self.raft.voters or self.node.id in self.raft.learners

    async def _join_loop(self) -> None:
        """Ask the managers (any of them forwards to its leader) to add this node, until the
        leader's configuration listing it reaches this node's log. A definite refusal (token,
        identity) is final: logged, journaled, and the process exits with JOIN_REFUSED_EXIT. Asking
        again after the addition, while its own log is still empty, is harmless: the join carries
        this process's nonce and the leader answers `already` to it (members.join), not
        `identity-in-use` (found twice: under 50 ms link latency with two workers promoted at once,
        and with a 10,000-key snapshot to catch up)."""
        # the bootstrap managers first, then every other peer: after replacements none of the
        # bootstrap managers may be left, and a worker or a follower answers with the leader it knows
        contacts = [m for m in self.cfg.managers if m != self.node.id]
        contacts += sorted(p for p in self.node.transport.peers if p not in contacts and p != self.node.id)
        op = {"op": "member.join", "node": self.node.id, "token": self.cfg.join_token,
              "fresh": self._fresh, "nonce": self._join_nonce}
        attempt, told = 0, None
        while not self._is_member():
            hint = self.raft.leader_id or told
            targets = [hint] if hint and hint != self.node.id else []
            targets += [p for p in contacts if p not in targets]
            attempt += 1
            self.join_state["attempts"] = attempt
            status, body, told = await self._ask_all(targets, op, self.cfg.request_timeout_ms / 1000)
            if self._is_member():
                break
            if body.get("error") in ("bad-token", "identity-in-use", "identity-retired"):
                self.join_state.update(state="refused", error=body["error"], message=body.get("message"))
                log.error("join refused by the cluster: %s: %s", body["error"], body.get("message"))
                self.node.journal.record({"type": "join", "state": "refused", "error": body["error"]})
                self.node.journal.flush()
                self.node.fail(JOIN_REFUSED_EXIT)
                return
            if status != 200:
                self.join_state["last_error"] = body.get("error") or f"status {status}"
            await asyncio.sleep(JOIN_RETRY_MS / 1000)
        self.join_state["state"] = "member"
        log.info("joined the cluster as %s", "voter" if self.node.id in self.raft.voters else "learner")

    async def _ask_all(self, targets: list, op: dict, timeout_s: float) -> tuple[int, dict, Optional[str]]:
        """Send the join to every target at once (asked one by one, each dead contact -- a removed
        manager, after replacements every bootstrap one -- cost a whole request timeout). The first
        answer from a leader (anything but no answer, `not-leader` or `no-leader`: accepted, refused,
        or busy with another change) wins and the other asks are dropped; else the last answer once
        all are in or timed out.
        Also returns a leader some answer named (a worker or a follower that knows one).
        Duplicates at the leader are harmless: the first adds the node, the rest find it listed
        with this join's nonce and answer `already` (members.join)."""
        asks = {asyncio.ensure_future(self.node.ask(t, op, timeout_s)): t for t in targets}
        status, body, told = 0, {"error": "no-contact"}, None
        try:
            pending = set(asks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    st, b = fut.result()
                    leader = b.get("leader")
                    if isinstance(leader, str) and leader not in (asks[fut], self.node.id):
                        told = leader
                    if status == 0 or st != 0:
                        status, body = st, b
                    if st != 0 and b.get("error") not in ("not-leader", "no-leader"):
                        return st, b, told
        finally:
            for fut in asks:
                fut.cancel()
        return status, body, told

    # -- Raft driving ----------------------------------------------------------------------------
    def _kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._process_ready)

    def on_raft(self, sender: str, body) -> None:
        try:
            msg = message_from_dict(body)
        except MessageError:
            self.node.counters["bad_messages"] += 1
            return
        if msg.dst != self.node.id or msg.src != sender:
            self.node.counters["bad_messages"] += 1
            return
        if wtrace.ON:
            self._trace_in(msg)
        self.raft.step(msg)
        if wtrace.ON and self.raft.commit_index > self._traced_commit:
            wtrace.rec_range("commit", self._traced_commit + 1, self.raft.commit_index)
            self._traced_commit = self.raft.commit_index
        self._kick()

    def _trace_in(self, msg) -> None:
        _trace_msg(msg, "recv", "ackin")

    def _trace_out(self, m) -> None:
        _trace_msg(m, "send", "ack")

    def tick(self, now_ms: int) -> None:
        if "ack_before_fsync" in self.plant and now_ms >= self._next_fsync_ms:   # planted: late fsync
            self._next_fsync_ms = now_ms + DEFERRED_FSYNC_MS
            self.storage.background_fsync()
        self.raft.tick()
        self._kick()
        if self.raft.role == raftcore.LEADER and self._leader_ready:
            if now_ms >= self._next_hb_check_ms:
                self._next_hb_check_ms = now_ms + HEARTBEAT_CHECK_EVERY_MS
                self._check_worker_heartbeats(now_ms)
            if now_ms >= self._next_orchestrate_ms:
                self._next_orchestrate_ms = now_ms + ORCHESTRATE_EVERY_MS
                self._orchestrate(now_ms)
                self._tend_membership(now_ms)

    def _process_ready(self) -> None:
        self._scheduled = False
        if self._sync_fut is not None:
            # a group's fsync is under way: the pass after it takes everything that came since,
            # but a write that is committed and durable here is answered now (apply_durable: its
            # apply and commit lines are journaled after that next fsync, which persists the commit)
            self._answer_durable()
            return
        node, raft = self.node, self.raft
        if self._disk_error is not None and node.now_ms() < self._disk_retry_at_ms:
            return   # writes failed a moment ago: the retry is scheduled (_storage_failed)
        if self._unsent:
            self._unsent = False
            raft.send_appends()   # the proposals since the last pass: one AppendEntries per peer
        # the same before a Ready that will carry new entries: their fsync need not delay the
        # answers to writes that are already committed and durable
        self._answer_durable()
        for _ in range(MAX_READY_ROUNDS):
            rd = raft.ready()
            if rd is None:
                break
            conf = (raft.log.last_conf_index, raft.voters, raft.learners)
            if conf != self._conf_seen:
                self._conf_seen = conf
                rd = dataclasses.replace(rd, events=_with_config_events(rd, conf))
            # 1. durable state, then journal
            if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
                try:
                    if wtrace.ON and rd.entries:
                        wtrace.rec_range("persist", rd.entries[0].index, rd.entries[-1].index)
                    self.storage.persist(rd.hard_state, rd.entries, rd.snapshot)
                    if self._sync_pool is not None and self.storage.unsynced():
                        # group commit: the fsync runs off the loop, which meanwhile reads requests
                        # and messages into the core; this Ready is released when it is durable
                        self._sync_fut = asyncio.get_running_loop().run_in_executor(
                            self._sync_pool, self.storage.sync)
                        self._sync_fut.add_done_callback(lambda f, rd=rd: self._synced(rd, f))
                        return
                    wrote = self.storage.unsynced()
                    self.storage.sync()
                    if wtrace.ON and rd.entries:
                        wtrace.rec_range("sync", rd.entries[0].index, rd.entries[-1].index)
                    if wrote:
                        node.counters["group_syncs"] += 1
                        node.counters["group_entries"] += len(rd.entries)
                except StorageWriteError as exc:
                    self._storage_failed(rd, exc)
                    break
                if self._held:
                    self._storage_recovered()
            self._release(rd)
        else:
            node.counters["ready_rounds_bound_hits"] += 1
            self._kick()
        self._after_ready()

    def _answer_durable(self) -> None:
        if self._early_apply and not self._held and self._disk_error is None:
            results = self.raft.apply_durable()
            if results:
                self.node.counters["applied_during_fsync"] += len(results)
                for r in results:
                    self._on_applied(r)

    def _synced(self, rd, fut) -> None:
        """The fsync of a group finished (or failed): release its Ready, then take the next group."""
        self._sync_fut = None
        if wtrace.ON and rd.entries:
            wtrace.rec_range("sync", rd.entries[0].index, rd.entries[-1].index)
        self.node.counters["group_syncs"] += 1
        self.node.counters["group_entries"] += len(rd.entries)
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:
            if not isinstance(exc, StorageWriteError):
                raise exc
            self._storage_failed(rd, exc)
        else:
            if self._held:
                self._storage_recovered()
            self._release(rd)
        self._after_ready()
        self._kick()

    def _after_ready(self) -> None:
        raft = self.raft
        self._track_role()
        if self._dirty_workers and raft.role == raftcore.LEADER:
            for w in sorted(self._dirty_workers):
                self._send_assignments(w)
        self._dirty_workers.clear()

    def _storage_failed(self, rd, exc: StorageWriteError) -> None:
        """The Ready's durable state could not be written (a full disk). Nothing that depends on it
        may leave: its messages are dropped (Raft tolerates lost messages; the leader resends, a
        vote is asked again); its journal events, applied results and reads are held, in order,
        until a later write succeeds (releasing them could journal state that is not durable); the
        core is advanced without the state, so the next Ready carries it again. Retried every
        DISK_RETRY_MS; while it fails, this node refuses new client writes (definite 503)."""
        node = self.node
        node.counters["storage_write_errors"] += 1
        self._held.append(rd)
        self.raft.advance(dataclasses.replace(rd, hard_state=None, entries=(), snapshot=None))
        if self._disk_error is None:
            self._disk_since = round(time.time(), 6)
            log.warning("raft storage: %s; holding %s until writes succeed", exc, "its effects")
            node.journal.record({"type": "disk", "state": "full", "file": "raft/log.jsonl", "error": str(exc)})
            node.journal.flush()
        self._disk_error = str(exc)
        self._disk_retry_at_ms = node.now_ms() + DISK_RETRY_MS
        asyncio.get_running_loop().call_later(DISK_RETRY_MS / 1000, self._kick)

    def _storage_recovered(self) -> None:
        node = self.node
        held, self._held = self._held, []
        if self._disk_error is not None:
            log.warning("raft storage: writes succeed again after %.1f s", time.time() - self._disk_since)
            node.journal.record({"type": "disk", "state": "ok", "file": "raft/log.jsonl", "error": self._disk_error,
                                 "failed_s": round(time.time() - self._disk_since, 3), "held_readies": len(held)})
        self._disk_error = None
        for rd in held:
            self._release(rd, send=False)

    def _release(self, rd, send: bool = True) -> None:
        """Steps 1 (journal) to 3 of a Ready whose durable state is written."""
        node = self.node
        if rd.events:
            node.journal.record_all(rd.events)
            node.journal.flush()
        # 2. messages
        if send:
            for m in rd.messages:
                node.send(m.dst, {"ch": "raft", "b": m.to_dict()})
                if wtrace.ON:
                    self._trace_out(m)
        # 3. results and reads
        for r in rd.results:
            self._on_applied(r)
        for ev in rd.events:
            if ev.get("type") == "task" and ev.get("worker"):
                self._dirty_workers.add(ev["worker"])
                if ev.get("state") == "failed":
                    self._slot_hold_until[(ev["service"], ev["slot"])] = \
                        node.now_ms() + RESTART_DELAY_MS
        for rs in rd.read_states:
            if "wall_clock_lease" in self.plant:   # planted: a confirmed round buys a wall-clock lease
                asked = self._read_asked_wall.pop(rs.ctx, None)
                if asked is not None and self.raft.role == raftcore.LEADER:
                    lease_s = 0.9 * self.cfg.election_timeout_min_ms / 1000
                    self._lease_until_wall = max(self._lease_until_wall, asked + lease_s)
            fut = self._reads.pop(rs.ctx, None)
            if fut is not None and not fut.done():
                fut.set_result(rs.index)
        for ctx in rd.dropped_reads:
            fut = self._reads.pop(ctx, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        # 4. advance (a held Ready was advanced without its state when its write failed)
        if send:
            self.raft.advance(rd)

    def _on_applied(self, r: raftcore.AppliedResult) -> None:
        if wtrace.ON:
            wtrace.rec("apply", r.index)
        if self._inflight and not r.command.get("op", "").startswith("kv."):
            self._inflight.pop(_key(r.command), None)
        if r.term == self.raft.term and self.raft.role == raftcore.LEADER:
            self._ready_term = r.term  # an entry of our own term applied: the store is current
        pending = self._writes.pop(r.index, None)
        if pending is None:
            return
        term, fut = pending
        if fut.done():
            return
        if term == r.term:
            fut.set_result(r.result)
        else:
            self.node.counters["proposals_lost"] += 1
            fut.set_result({"ok": False, "error": "lost"})

    def _track_role(self) -> None:
        leader = self.raft.role == raftcore.LEADER
        if leader and not self._was_leader:
            now = self.node.now_ms()
            self._leader_since_ms = now
            self._last_hb = {}
            self._inflight.clear()
            self._next_orchestrate_ms = now
        if not leader and self._was_leader:
            # Entries we proposed may still be committed by the next leader: not definite.
            self._fail_all(503, "unavailable", "leadership lost", False)
        self._was_leader = leader
        if self.raft.leader_id != self._known_leader:
            self._known_leader = self.raft.leader_id
            if self._known_leader is None:
                log.info("leader unknown (term %d)", self.raft.term)
            else:
                log.info("leader is %s (term %d)", self._known_leader, self.raft.term)

    def _fail_all(self, status: int, code: str, message: str, definite: bool) -> None:
        for _, fut in list(self._writes.values()):
            if not fut.done():
                fut.set_result({"ok": False, "error": "_fail", "_status": status, "_code": code,
                                "_message": message, "_definite": definite})
        self._writes.clear()
        for fut in list(self._reads.values()):
            if not fut.done():
                fut.set_result(None)
        self._reads.clear()

    @property
    def _leader_ready(self) -> bool:
        """Leader, and an entry of its own term (the §8 no-op) is applied: the store is current."""
        return self.raft.role == raftcore.LEADER and self._ready_term == self.raft.term

    # -- client operations -----------------------------------------------------------------------
    def is_leader(self) -> bool:
        return self.raft.role == raftcore.LEADER

    def leader_hint(self) -> Optional[str]:
        return self.raft.leader_id

    def _not_leader(self) -> tuple[int, dict]:
        body = error_body("not-leader", "this node is not the leader", True)
        body["leader"] = self.raft.leader_id
        return 503, body

    async def execute_leader(self, op: dict) -> tuple[int, dict]:
        kind = op["op"]
        if kind == "kv.get":
            return await self._read(op["key"])
        if kind == "member.join":
            return await self._member_join(op)
        if kind == "member.change":
            return await self._member_change(op)
        if kind == "cluster.token":
            token = self.store.nodes.get(CLUSTER_KEY, {}).get("join_token")
            if not token or not self._leader_ready:
                return 503, error_body("unavailable", "no join token yet (leader not settled)", True)
            return 200, {"ok": True, "join_token": token, "leader": self.node.id}
        if kind in ("service.list", "task.list"):
            return self.execute_local_read(op)
        cmd = {k: v for k, v in op.items() if k not in ("client_id", "seq")}
        if "client_id" in op:
            cmd["client_id"], cmd["seq"] = op["client_id"], op["seq"] + 1
        return await self._write(cmd)

    def _pending_full(self) -> bool:
        return len(self._writes) + len(self._reads) >= MAX_PENDING_CLIENT

    async def _write(self, cmd: dict) -> tuple[int, dict]:
        if self._disk_error is not None:   # not proposed: definite
            self.node.counters["writes_refused_disk"] += 1
            return 503, error_body("unavailable", f"disk full on this leader: {self._disk_error}", True)
        if self._pending_full():
            self.node.counters["busy"] += 1
            return 503, error_body("unavailable", "too many requests in flight", True)
        try:
            term = self.raft.term
            index = self.raft.propose(cmd, send=False)   # sent with the batch (_process_ready)
            self._unsent = True
            if wtrace.ON:
                wtrace.cur.set(index)
                wtrace.rec("prop", index)
        except raftcore.NotLeader:
            return self._not_leader()
        except raftcore.Busy:
            self.node.counters["busy"] += 1
            return 503, error_body("unavailable", "leader busy (uncommitted bound)", True)
        except MessageError as exc:
            return 400, error_body("bad-request", str(exc), True)
        self.node.counters["proposals"] += 1
        if "ack_before_commit" in self.plant:   # planted: acknowledged before it commits
            self._kick()
            return 200, {"ok": True}
        return await self._await_index(index, term)

    async def _await_index(self, index: int, term: int) -> tuple[int, dict]:
        """Wait for the entry at (index, term) to apply; its result as an HTTP answer. The timeout
        is a timer on the future itself (wait_for + shield cost a task and a future per write)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._writes[index] = (term, fut)
        self._kick()
        timer = loop.call_later(self._leader_timeout_s(), _expire, fut)
        try:
            result = await fut
        finally:
            timer.cancel()
        if result is _TIMED_OUT:
            self._writes.pop(index, None)
            return 504, error_body("timeout", "not committed in time", False)
        return self._http_result(result)

    def _conf_refused(self, exc: Exception) -> tuple[int, dict]:
        if isinstance(exc, raftcore.NotLeader):
            return self._not_leader()
        if isinstance(exc, raftcore.Busy):
            return 503, error_body("unavailable", "leader busy (uncommitted bound)", True)
        return 503, error_body("change-in-flight" if "uncommitted" in str(exc) or "not committed" in str(exc)
                               else "refused", str(exc), True)

    def _propose_steps(self, node: str, steps: "members.Steps") -> tuple[int, dict] | int:
        """Propose a change's upserts and its configuration change; the conf entry's index, or an
        error answer (definite: the configuration change was not appended)."""
        try:
            if self.raft.role != raftcore.LEADER:
                raise raftcore.NotLeader(self.raft.leader_id)
            for fields in steps.upserts:
                self.raft.propose({"op": "node.upsert", "node": node, "fields": fields})
            if steps.conf is None:
                self._kick()
                return 0
            index = self.raft.propose_conf_change(*steps.conf)
        except (raftcore.NotLeader, raftcore.Busy, ConfChangeError) as exc:
            self._kick()
            return self._conf_refused(exc)
        log.info("membership: proposed %s %s at index %d", steps.conf[0], node, index)
        return index

    async def _member_join(self, op: dict) -> tuple[int, dict]:
        node = op.get("node")
        if not isinstance(node, str) or not node or node == CLUSTER_KEY:
            return 400, error_body("bad-request", "member.join needs a node id", True)
        if not self._leader_ready:
            return 503, error_body("unavailable", "leader not settled yet", True)
        raft = self.raft
        token = self.store.nodes.get(CLUSTER_KEY, {}).get("join_token")
        nonce = op.get("nonce")
        if not (isinstance(nonce, str) and 0 < len(nonce) <= 64):
            nonce = None
        d = members.join(node, op.get("token"), op.get("fresh") is True, token, raft.voters,
                         raft.learners, self.cfg.managers, self.store.nodes, nonce=nonce,
                         pending_nonce=self._join_nonces.get(node))
        if isinstance(d, members.Refusal):
            log.warning("membership: join of %s refused: %s", node, d.code)
            return d.status, error_body(d.code, d.message, True)
        if d == "already":
            return 200, {"ok": True, "already": True}
        term = raft.term
        fields = {"role": "manager", "want": "voter", **({"join_nonce": nonce} if nonce else {})}
        r = self._propose_steps(node, members.Steps(upserts=(fields,), conf=("add_learner", node)))
        if isinstance(r, int) and nonce:
            self._join_nonces[node] = nonce
        if isinstance(r, tuple):
            return r
        return await self._await_index(r, term)

    async def _member_change(self, op: dict) -> tuple[int, dict]:
        if not self._leader_ready:
            return 503, error_body("unavailable", "leader not settled yet", True)
        node, raft = op["node"], self.raft
        d = members.change(op["action"], node, op.get("force") is True, raft.voters, raft.learners,
                           self.store.nodes)
        if isinstance(d, members.Refusal):
            return d.status, error_body(d.code, d.message, True)
        if d.unchanged:
            return 200, {"ok": True, "unchanged": True}
        term = raft.term
        r = self._propose_steps(node, d)
        if isinstance(r, tuple):
            return r
        if d.promote_worker:
            self._send_promote(node)
            return 200, {"ok": True, "pending": "joining"}
        status, body = await self._await_index(r, term)
        if status == 200 and d.conf is not None and d.conf[0] == "promote":
            body = dict(body, voter=True)
        return status, body

    def _send_promote(self, worker: str) -> None:
        token = self.store.nodes.get(CLUSTER_KEY, {}).get("join_token")
        if token:
            self.node.send(worker, {"ch": "disp", "type": "promote", "token": token,
                                    "leader": self.node.id})

    def _tend_membership(self, now_ms: int) -> None:
        """Leader housekeeping: give the cluster its join token once (cluster.init: the first one
        applied stays); promote a learner that should be a voter once it has caught up (the core
        refuses before, §4.2.1; one change at a time)."""
        if not self.store.nodes.get(CLUSTER_KEY, {}).get("join_token"):
            self._propose_system({"op": "cluster.init", "join_token": self._token}, now_ms)
        for n in self.raft.learners:
            if self.store.nodes.get(n, {}).get("want") == "voter":
                try:
                    index = self.raft.propose_conf_change("promote", n)
                except (raftcore.NotLeader, raftcore.Busy, ConfChangeError):
                    continue
                log.info("membership: promoting caught-up learner %s (index %d)", n, index)
                self._kick()
                break

    def _leader_timeout_s(self) -> float:
        # A bit below the forwarding follower's timeout so its client gets our answer.
        return max(0.05, self.cfg.request_timeout_ms * 0.8 / 1000)

    @staticmethod
    def _http_result(result: dict) -> tuple[int, dict]:
        if result.get("ok"):
            return 200, result
        err = result.get("error")
        if err == "_fail":
            return result["_status"], error_body(result["_code"], result["_message"],
                                                 result["_definite"])
        if err == "lost":
            return 503, error_body("unavailable", "entry overwritten by a new leader", True)
        if err == "cas-mismatch":
            body = error_body("cas-mismatch", "current value differs", True)
            body["value"] = result.get("value")
            return 409, body
        if err == "exists":
            return 409, error_body("exists", "already exists", True)
        if err == "not-found":
            return 404, error_body("not-found", "no such object", True)
        if err == "stale-seq":
            return 409, error_body("stale-seq", "an older seq for this client_id: an earlier "
                                   "attempt may have applied", False)
        if err == "bad-command":
            return 400, error_body("bad-request", str(result.get("message", "bad command")), True)
        return 409, error_body(str(err), str(result.get("message", err)), True)

    async def _read(self, key: str) -> tuple[int, dict]:
        if self._pending_full():
            self.node.counters["busy"] += 1
            return 503, error_body("unavailable", "too many requests in flight", True)
        if "deposed_leader_reads" in self.plant and self.raft.role == raftcore.LEADER:
            # planted: a read served from the local store, no leadership confirmation
            return 200, {"ok": True, "value": self.store.kv.get(key)}
        if ("wall_clock_lease" in self.plant and self._leader_ready
                and time.time() < self._lease_until_wall):
            # planted: served locally under a lease measured on the wall clock (time.time()), which
            # a clock jump or drift on this node stretches past the election of a new leader
            return 200, {"ok": True, "value": self.store.kv.get(key)}
        ctx = next(self._ctx)
        if "wall_clock_lease" in self.plant:
            self._read_asked_wall[ctx] = time.time()
            if len(self._read_asked_wall) > 4 * MAX_PENDING_CLIENT:   # bounded: dropped reads
                self._read_asked_wall.pop(next(iter(self._read_asked_wall)))
        try:
            self.raft.read_index(ctx)
        except raftcore.NotLeader:
            return self._not_leader()
        except raftcore.Busy:
            self.node.counters["busy"] += 1
            return 503, error_body("unavailable", "leader busy (pending reads bound)", True)
        fut = asyncio.get_running_loop().create_future()
        self._reads[ctx] = fut
        self._kick()
        try:
            index = await asyncio.wait_for(asyncio.shield(fut), self._leader_timeout_s())
        except asyncio.TimeoutError:
            self._reads.pop(ctx, None)
            return 504, error_body("timeout", "leadership not confirmed in time", False)
        if index is None:
            return 503, error_body("unavailable", "leadership lost before the read was confirmed",
                                   True)
        if self.raft.applied_index < index:  # only after a restart; bounded wait
            for _ in range(200):
                await asyncio.sleep(self.cfg.tick_ms / 1000)
                if self.raft.applied_index >= index:
                    break
            else:
                return 504, error_body("timeout", "apply did not reach the read index", False)
        return 200, {"ok": True, "value": self.store.kv.get(key)}

    def execute_local_read(self, op: dict) -> tuple[int, dict]:
        if op["op"] == "service.list":
            return 200, {"ok": True, "services": json.loads(json.dumps(self.store.services))}
        tasks = []
        for tid, t in sorted(self.store.tasks.items()):
            if op.get("service") and t["service"] != op["service"]:
                continue
            if op.get("node") and t.get("worker") != op["node"]:
                continue
            tasks.append(dict(t, id=tid))
        return 200, {"ok": True, "tasks": tasks}

    # -- dispatcher + orchestrator (leader) ------------------------------------------------------
    def _propose_system(self, cmd: dict, now_ms: int) -> bool:
        """Propose a dispatcher/orchestrator command unless the same one is already in flight."""
        k = _key(cmd)
        exp = self._inflight.get(k)
        if exp is not None and exp > now_ms:
            return False
        if len(self._inflight) >= MAX_INFLIGHT:
            self.node.counters["inflight_bound_hits"] += 1
            self._inflight = {key: e for key, e in self._inflight.items() if e > now_ms}
            if len(self._inflight) >= MAX_INFLIGHT:
                return False
        try:
            self.raft.propose(cmd)
        except (raftcore.NotLeader, raftcore.Busy):
            return False
        self.node.counters["system_proposals"] += 1
        self._inflight[k] = now_ms + INFLIGHT_EXPIRY_MS
        self._kick()
        return True

    def on_dispatch(self, sender: str, msg: dict) -> None:
        if msg.get("type") != "heartbeat":
            raise ValueError("managers only accept heartbeats on the dispatcher channel")
        tasks = msg.get("tasks")
        if not isinstance(tasks, dict):
            raise ValueError("heartbeat without tasks")
        if sender in self.cfg.managers:
            raise ValueError("a manager cannot register as a worker")
        if self.raft.role != raftcore.LEADER:
            self.node.send(sender, {"ch": "disp", "type": "not_leader", "leader": self.raft.leader_id})
            return
        boot = msg.get("boot")
        if "stale_worker_identity" in self.plant and isinstance(boot, int):
            # planted: a DOWN worker may only come back as a new incarnation (a higher boot); a
            # heartbeat from a boot already seen is taken for a stale message of the dead one and
            # dropped -- but a wiped worker's boot counter starts again at 1
            down = self.store.nodes.get(sender, {}).get("state") == "down"
            if down and boot <= self._worker_boot.get(sender, 0):
                self.node.counters["stale_heartbeats_dropped"] = self.node.counters.get("stale_heartbeats_dropped", 0) + 1
                return
            self._worker_boot[sender] = max(boot, self._worker_boot.get(sender, 0))
        now = self.node.now_ms()
        self._last_hb[sender] = now
        if self.store.nodes.get(sender, {}).get("role") == "manager":
            self._send_promote(sender)   # promoted: it has not turned into a manager yet
            return
        if self._leader_ready:
            if self.store.nodes.get(sender, {}).get("state") != "ready":
                self._propose_system({"op": "node.upsert", "node": sender,
                                      "fields": {"state": "ready", "role": "worker"}}, now)
            for tid, st in sorted(tasks.items()):
                t = self.store.tasks.get(tid)
                if t is None or t.get("worker") != sender or st not in TASK_STATE_RANK:
                    continue
                if TASK_STATE_RANK[st] > TASK_STATE_RANK[t["state"]] or (
                        "task_state_backwards" in self.plant and st != t["state"]):
                    # (planted task_state_backwards: any differing report, also an older state)
                    self._propose_system({"op": "task.update", "task": tid, "state": st}, now)
        self._send_assignments(sender)

    def _send_assignments(self, worker: str) -> None:
        self.node.send(worker, {"ch": "disp", "type": "assignments", "leader": self.node.id,
                                "term": self.raft.term,
                                "registered": self.store.nodes.get(worker, {}).get("state") == "ready",
                                "tasks": orchestrator.assignments_for(worker, self.store.tasks)})

    def _check_worker_heartbeats(self, now_ms: int) -> None:
        if "dispatcher_never_down" in self.plant:   # planted: silent workers stay READY
            return
        limit = self.cfg.dispatcher_grace * self.cfg.dispatcher_heartbeat_ms
        for w, rec in sorted(self.store.nodes.items()):
            if rec.get("state") != "ready":
                continue
            last = self._last_hb.get(w, self._leader_since_ms)
            if now_ms - last > limit and self._propose_system(
                    {"op": "node.upsert", "node": w, "fields": {"state": "down"}}, now_ms):
                self.node.counters["workers_marked_down"] += 1

    def _orchestrate(self, now_ms: int) -> None:
        held = {k for k, until in self._slot_hold_until.items() if until > now_ms}
        self._slot_hold_until = {k: self._slot_hold_until[k] for k in held}
        for cmd in orchestrator.reconcile(self.store.nodes, self.store.services, self.store.tasks,
                                          frozenset(held), plant=self.plant):
            self._propose_system(cmd, now_ms)

    # -- views -----------------------------------------------------------------------------------
    def next_due_ms(self, now_ms: int) -> int:
        """A manager ticks every tick_ms (Raft counts ticks); asked only while a promoted worker's
        tick loop switches over."""
        return now_ms + self.cfg.tick_ms

    def status_fields(self) -> dict:
        self.node.counters["digest_mismatches"] = self.store.mismatches
        self.node.counters["snapshot_write_errors"] = getattr(self.storage, "snapshot_write_errors", 0)
        st = self.raft.status()
        st["ready"] = self.raft.leader_id is not None
        st["workers"] = {w: rec.get("state") for w, rec in sorted(self.store.nodes.items())
                         if w != CLUSTER_KEY and rec.get("role", "worker") == "worker"}
        st["config"] = {"voters": list(self.raft.voters), "learners": list(self.raft.learners),
                        "index": st.get("config_index"), "committed": st.get("config_committed")}
        st["membership"] = ("voter" if self.node.id in self.raft.voters else
                            "learner" if self.node.id in self.raft.learners else
                            "joining" if self.join_state and self.join_state["state"] == "joining"
                            else "removed")
        if self.join_state is not None:
            st["join"] = dict(self.join_state)
            if self._is_member():
                st["join"]["state"] = "member"
        if self._disk_error is not None:
            st["disk_error"] = self._disk_error
        return st

    def store_view(self) -> dict:
        return {"applied_index": self.raft.applied_index, "store_digest": self.store.digest(),
                "kv": self.store.kv, "nodes": self.store.nodes, "services": self.store.services,
                "tasks": self.store.tasks}
