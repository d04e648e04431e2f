"""Group commit in the manager (issue 25 section 3): the Raft log's fsync runs on a thread while the
loop keeps reading writes into the core; the writes that arrive meanwhile share the next append and
fsync; nothing of a group is journaled or acknowledged before its fsync returned.

A real ManagerRole (fsync on) on a fake node shell; every wait is on an observable condition.
"""
from __future__ import annotations

import asyncio
import errno
import os
import threading
import time

from swarmnode.agent import config as cfgmod
from swarmnode.agent.manager import ManagerRole
from swarmnode.raft import core as raftcore
from swarmnode.raft.storage import FileStorage


class _Journal:
    def __init__(self):
        self.events: list = []
        self.check = None

    def record_all(self, events):
        events = list(events)
        if self.check is not None:
            self.check(events)
        self.events += events

    def record(self, event):
        self.events.append(event)

    def flush(self):
        pass


class _FakeNode:
    def __init__(self, cfg):
        self.cfg, self.id = cfg, cfg.node_id
        self.counters: dict = {}
        self.journal = _Journal()
        self.sent: list = []

    def send(self, peer, msg):
        self.sent.append((peer, msg))

    def now_ms(self):
        return int(time.monotonic() * 1000)


async def _leader(tmp_path, thread: str = "1") -> ManagerRole:
    env = {"CHAOS_NODE_ID": "m1", "CHAOS_ROLE": "manager", "CHAOS_MANAGERS": "m1",
           "CHAOS_DATA_DIR": str(tmp_path), "CHAOS_FSYNC": "1", "CHAOS_FSYNC_THREAD": thread}
    role = ManagerRole(_FakeNode(cfgmod.load(env)))
    assert type(role.storage) is FileStorage and (role._sync_pool is not None) == (thread == "1")
    for _ in range(400):             # a single voter elects itself; its no-op commits via a group sync
        role.tick(role.node.now_ms())
        await asyncio.sleep(0)
        await _until(lambda: role._sync_fut is None)
        if role.raft.role == raftcore.LEADER and role._leader_ready and role.store.nodes:
            await _until(lambda: role._sync_fut is None and not role.raft.has_ready())
            return role   # and the cluster.init its first tick proposed is applied
    raise AssertionError("single manager never became a ready leader")


async def _until(pred, bound_s: float = 5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + bound_s
    while not pred():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.001)


def _durable_tracking(role: ManagerRole) -> dict:
    """Wrap the storage's sync: record the last log index durable when it returns, and the thread
    it ran on; make the journal check that every appended/applied index it gets is durable."""
    seen = {"durable": role.raft.last_log_index, "threads": set(), "syncs": 0}
    storage = role.storage
    real_sync = FileStorage.sync

    def sync():
        real_sync(storage)
        seen["durable"] = storage._snap.index + len(storage._log)
        seen["threads"].add(threading.get_ident())
        seen["syncs"] += 1
    storage.sync = sync

    def check(events):
        for ev in events:
            if ev.get("type") in ("append", "commit", "apply"):
                assert ev["index"] <= seen["durable"], f"{ev} journaled before its fsync"
    role.node.journal.check = check
    return seen


def test_writes_arriving_during_an_fsync_share_the_next_one(tmp_path):
    async def go():
        role = await _leader(tmp_path)
        seen = _durable_tracking(role)
        gate = threading.Event()
        storage = role.storage
        tracked = storage.sync

        def slow_first_sync():
            gate.wait(5)
            tracked()
        storage.sync = slow_first_sync
        first = asyncio.ensure_future(role._write({"op": "kv.put", "key": "a", "value": 0}))
        await _until(lambda: role._sync_fut is not None)          # the first group is being synced
        storage.sync = tracked
        rest = [asyncio.ensure_future(role._write({"op": "kv.put", "key": f"k{i}", "value": i}))
                for i in range(40)]
        # the loop is not blocked by the fsync: all 40 writes are appended to the core meanwhile
        await _until(lambda: role.raft.last_log_index >= seen["durable"] + 41)
        assert not first.done() and not any(f.done() for f in rest)   # none acknowledged yet
        gate.set()
        answers = await asyncio.gather(first, *rest)
        assert all(status == 200 and body["ok"] for status, body in answers)
        assert [role.store.kv[f"k{i}"] for i in range(40)] == list(range(40))
        # one fsync for the first write, one (two at most, if the loop released between) for the 40
        assert 2 <= seen["syncs"] <= 3, seen
        assert threading.get_ident() not in seen["threads"]      # the fsyncs ran off the loop
        assert role.node.counters["group_entries"] >= 41
        await role.stop()
    asyncio.run(go())


def test_a_failed_group_fsync_is_held_then_retried_and_acknowledged(tmp_path, monkeypatch):
    """A full disk during a group's fsync: nothing of it is acknowledged; the retry writes it and
    the waiting client gets its answer (the disk-full contract, now from the fsync thread)."""
    async def go():
        role = await _leader(tmp_path)
        seen = _durable_tracking(role)
        real_fsync = os.fsync
        fails = {"left": 1}

        def fsync(fd):
            if fails["left"]:
                fails["left"] -= 1
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fsync(fd)
        monkeypatch.setattr(os, "fsync", fsync)
        write = asyncio.ensure_future(role._write({"op": "kv.put", "key": "x", "value": 7}))
        await _until(lambda: role.node.counters["storage_write_errors"] == 1)
        assert not write.done()          # not acknowledged (the core applies as it builds a Ready)
        status, body = await write
        assert (status, body["ok"], role.store.kv["x"]) == (200, True, 7)
        assert seen["durable"] >= role.raft.applied_index
        assert role._disk_error is None
        await role.stop()
    asyncio.run(go())


def test_without_the_thread_the_fsync_runs_on_the_loop_and_writes_still_commit(tmp_path):
    """CHAOS_FSYNC_THREAD=0: the same contract, the fsync on the event loop's thread."""
    async def go():
        role = await _leader(tmp_path, thread="0")
        seen = _durable_tracking(role)
        answers = await asyncio.gather(*(role._write({"op": "kv.put", "key": f"k{i}", "value": i})
                                         for i in range(20)))
        assert all(status == 200 for status, _ in answers)
        assert seen["threads"] == {threading.get_ident()} and 1 <= seen["syncs"] <= 2
        assert role.node.counters["group_entries"] >= 20 and role.node.counters["group_syncs"] >= 1
        await role.stop()
    asyncio.run(go())
