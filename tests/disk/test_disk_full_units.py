"""A full disk, without Docker: the Raft storage undoes a write that failed (no torn record, no
in-memory effect) so the driver can retry it; the journal holds its lines and writes them, in
order, once space returns, saying what happened; the planted `enospc_corrupts_log` leaves a torn
record that costs acknowledged entries at the next load."""

from __future__ import annotations

import errno
import json
import os

import pytest

from swarmnode.agent.journal import Journal
from swarmnode.agent.manager import _TornOnFullStorage
from swarmnode.raft.messages import Entry
from swarmnode.raft.storage import FileStorage, HardState, StorageWriteError


def _entries(first, last, term=1):
    return [Entry(i, term, {"op": "kv.put", "key": "k", "value": "v" * 50}, f"h{i}") for i in range(first, last + 1)]


class DiskFills:
    """os.write that accepts `room` more bytes in all (a short write at the edge), then ENOSPC."""

    def __init__(self, monkeypatch, room: int):
        self.room = room
        self.real = os.write
        monkeypatch.setattr(os, "write", self)

    def __call__(self, fd, data):
        if self.room is None:
            return self.real(fd, data)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.real(fd, bytes(data[: self.room]))
        self.room -= n
        return n

    def free(self):
        self.room = None


def test_a_failed_log_write_is_undone_whole_and_can_be_retried(tmp_path, monkeypatch):
    s = FileStorage(str(tmp_path))
    s.persist(HardState(1, "m1", 0), _entries(1, 3), None)
    s.sync()
    size = os.path.getsize(tmp_path / "log.jsonl")
    disk = DiskFills(monkeypatch, room=40)          # part of one record fits: a torn record
    s.persist(HardState(1, "m1", 3), _entries(4, 6), None)
    with pytest.raises(StorageWriteError) as info:
        s.sync()
    assert info.value.code == "ENOSPC"
    assert os.path.getsize(tmp_path / "log.jsonl") == size          # the torn bytes are gone
    assert [e.index for e in s.load().entries] == [1, 2, 3]         # and so is the in-memory effect
    assert s.load().hard_state.commit == 0
    with pytest.raises(StorageWriteError):                           # still full: same again
        s.persist(HardState(1, "m1", 3), _entries(4, 6), None)
        s.sync()
    disk.free()
    s.persist(HardState(1, "m1", 3), _entries(4, 6), None)          # the driver's retry
    s.sync()
    again = FileStorage(str(tmp_path)).load()
    assert [e.index for e in again.entries] == [1, 2, 3, 4, 5, 6] and again.hard_state.commit == 3


def test_a_failed_vote_write_leaves_the_old_hard_state_and_no_temporary(tmp_path, monkeypatch):
    s = FileStorage(str(tmp_path))
    s.persist(HardState(1, "m1", 0), _entries(1, 1), None)
    s.sync()
    real_fsync = os.fsync

    def full_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_fsync)
    with pytest.raises(StorageWriteError):
        s.persist(HardState(2, "m2", 0), (), None)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not os.path.exists(tmp_path / "hardstate.json.tmp")
    assert FileStorage(str(tmp_path)).load().hard_state == HardState(1, "m1", 0)
    assert s.load().hard_state == HardState(1, "m1", 0)


def test_planted_torn_log_acknowledges_then_loses_entries_at_the_next_load(tmp_path, monkeypatch):
    s = _TornOnFullStorage(str(tmp_path))
    s.persist(HardState(1, "m1", 0), _entries(1, 3), None)
    s.sync()
    disk = DiskFills(monkeypatch, room=40)
    s.persist(None, _entries(4, 5), None)
    s.sync()                                  # no error: the agent would acknowledge 4 and 5
    disk.free()
    s.persist(None, _entries(6, 7), None)
    s.sync()
    assert [e.index for e in s.load().entries] == [1, 2, 3, 4, 5, 6, 7]   # what it believes
    assert [e.index for e in FileStorage(str(tmp_path)).load().entries] == [1, 2, 3]   # what it has


def test_the_journal_holds_lines_while_the_disk_is_full_and_says_so(tmp_path, monkeypatch):
    clock = iter(float(i) for i in range(1000))
    j = Journal(str(tmp_path), "m1", clock=lambda: next(clock))
    j.record({"type": "term", "term": 1})
    assert j.flush() is True
    disk = DiskFills(monkeypatch, room=30)     # the next line is torn at first
    for t in (2, 3):
        j.record({"type": "term", "term": t})
    assert j.flush() is False and j.failing is not None
    assert j.flush() is False                  # still full: nothing lost, nothing raised
    disk.free()
    assert j.flush() is True and j.failing is None
    lines = [json.loads(x) for x in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert [e.get("term") for e in lines if e["type"] == "term"] == [1, 2, 3]
    disk_events = [e for e in lines if e["type"] == "disk"]
    assert [e["state"] for e in disk_events] == ["full", "ok"]
    assert "ENOSPC" in disk_events[0]["error"] and disk_events[1]["failed_s"] > 0
    j.close()


# -- the harness side ------------------------------------------------------------------------------

def test_disk_full_effect_needs_a_refused_probe_and_a_recovered_one():
    from chaos.fault_effect import disk_full_effect
    full = {"m1": {"detail": {"free_before": 60 << 20, "ballast_bytes": 60 << 20, "free_after": 0, "probe": "ENOSPC"}}}
    freed = {"m1": {"detail": {"free_after": 60 << 20, "probe": "ok"}}}
    ok = disk_full_effect(full, freed, {"m1": {"disk_error": "ENOSPC: No space left on device"}})
    assert ok["effective"] is True and ok["evidence"]["agent_saw_write_errors"] == {"m1": True}
    assert "saw its writes fail" in ok["why"]
    still = disk_full_effect(full, {"m1": {"detail": {"free_after": 0, "probe": "ENOSPC"}}}, {})
    assert still["effective"] is False and "still failed" in still["why"]
    wrote = disk_full_effect({"m1": {"detail": {**full["m1"]["detail"], "probe": "ok"}}}, freed, {})
    assert wrote["effective"] is False
    assert disk_full_effect({}, {}, {})["effective"] is False   # every target shared: not this fault's effect


def test_nemesis_disk_full_shares_a_full_node_and_frees_it_when_the_last_ends(tmp_path):
    import threading
    import time
    from chaos.nemesis import FaultLog, Nemesis, View

    class Eff:
        def __init__(self):
            self.calls, self.lock = [], threading.Lock()

        def view(self):
            st = {m: {"role": "leader" if m == "m1" else "follower", "term": 2, "leader": "m1"} for m in ("m1", "m2", "m3")}
            return View(("m1", "m2", "m3"), (), st)

        def node_op(self, op, node):
            with self.lock:
                self.calls.append((op, node))
            probe = "ENOSPC" if op == "disk-full" else "ok"
            return {"op": op, "detail": {"probe": probe, "free_after": 0 if probe == "ENOSPC" else 1 << 26}}

        def mark_unavailable(self, node, unavailable):
            raise AssertionError("a full disk is not a node going down")

        def answers(self, node):
            return {"disk_error": "ENOSPC"}

        def heal_all(self):
            return {}

    eff = Eff()
    faults = [{"id": f"d{i}", "kind": "disk-full", "start": {"at_s": at}, "for_s": for_s, "until": None,
               "max_s": None, "spec": {"fault": "disk-full", "target": "m2"}, "seed": 1, "origin": "t"}
              for i, (at, for_s) in enumerate([(0.0, 0.4), (0.1, 0.6)])]
    nem = Nemesis(faults, eff, FaultLog(tmp_path / "faults.jsonl"))
    nem.start(time.monotonic())
    assert nem.wait(10)
    assert eff.calls == [("disk-full", "m2"), ("disk-free", "m2")]
    rows = [json.loads(x) for x in (tmp_path / "faults.jsonl").read_text().splitlines()]
    stops = {r["fault"]: r for r in rows if r["action"] == "stop"}
    assert stops["d0"]["effect"]["effective"] is True         # it filled the disk (d1 frees it)
    assert stops["d0"]["details"]["nodes"]["m2"] == {"kept": True, "still_held_by": ["d1"]}
    assert stops["d1"]["effect"]["effective"] is False        # it did not fill: d0 had
    starts = {r["fault"]: r for r in rows if r["action"] == "start"}
    assert starts["d1"]["details"]["nodes"]["m2"]["shared"] is True


def test_disk_full_validates_plans_and_needs_the_local_backend():
    from chaos.experiment import plan as P
    from chaos.experiment.loader import load_text
    base = "version: 1\nname: t\ncluster: {managers: 3, workers: 1%s}\nschedule:\n" \
           "  - {at: 1s, for: 2s, fault: disk-full, target: leader}\n"
    exp, problems = load_text(base % "")
    assert not problems and P.expand(exp, 1)["faults"][0]["kind"] == "disk-full"
    _, problems = load_text(base % ", backend: swarm")
    assert any("local backend" in p.message for p in problems), problems
