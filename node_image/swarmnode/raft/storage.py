"""Durable Raft state behind one interface: MemoryStorage (simulator) and FileStorage (containers).

Owns: HardState, the Storage interface and both implementations. Must not import asyncio, socket,
time, module-level random or `chaos`.

The core never calls storage while running: it reads storage once at construction (load()) and
afterwards hands everything to persist in Ready objects. The driver calls
    storage.persist(hard_state, entries, snapshot); storage.sync()
before it sends the Ready's messages. persist() order, which both implementations follow:
  1. snapshot (if any): it replaces the stored snapshot AND the whole stored log (the core always
     re-sends, in `entries`, every log entry that follows a snapshot it hands over, whether the
     snapshot is a local compaction or one installed from the leader);
  2. entries: truncate the stored log from entries[0].index, then append them (entries at or below
     the snapshot index are skipped; a gap after the stored log raises StorageError);
  3. hard_state (term, vote, commit) replaces the stored one.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass

from ..durability import note_synced
from .messages import Entry, Snapshot, canonical_json

EMPTY_SNAPSHOT = Snapshot(0, 0, "", {})


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message that depends on it leaves (§5, Figure 2)."""
    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True)
class Loaded:
    """What load() returns: the durable state at start-up."""
    hard_state: HardState
    snapshot: Snapshot
    entries: list


class StorageError(RuntimeError):
    """The durable state is unreadable in a way that is not a torn tail."""


class StorageWriteError(StorageError):
    """persist() or sync() could not write (ENOSPC, EIO, ...). Nothing of the failed call is stored
    or remembered: the stored state is the one the last successful sync() left, so the driver may
    retry the same writes later (it must not send or acknowledge anything that depended on them)."""

    def __init__(self, exc: OSError):
        import errno as _errno
        self.errno = exc.errno
        self.code = _errno.errorcode.get(exc.errno or 0, str(exc.errno))
        super().__init__(f"{self.code}: {exc.strerror or exc}")


class Storage:
    """Interface. persist() may buffer; only sync() makes the writes durable."""

    def load(self) -> Loaded:
        raise NotImplementedError

    def persist(self, hard_state: HardState | None, entries, snapshot: Snapshot | None) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        raise NotImplementedError


def _apply_writes(log: list, snap: Snapshot, entries, snapshot):
    """Shared semantics of persist() on an in-memory list (log[i] has index snap.index + 1 + i)."""
    if snapshot is not None:
        del log[:]
        snap = snapshot
    if entries:
        first = entries[0].index
        keep = max(0, first - snap.index - 1)
        if keep > len(log):
            raise StorageError(f"gap: stored log ends at {snap.index + len(log)}, entries start at {first}")
        del log[keep:]
        for e in entries:
            if e.index > snap.index:
                log.append(e)
    return log, snap


class MemoryStorage(Storage):
    """In-memory storage for the simulator. crash() drops every write not yet synced, as a power
    cut drops what was not fsync'd. Snapshot data is shared, not copied (treat it as immutable)."""

    def __init__(self):
        self._hard = HardState()
        self._snap = EMPTY_SNAPSHOT
        self._log: list = []
        self._pending: list = []
        self.syncs = 0

    def load(self) -> Loaded:
        return Loaded(self._hard, self._snap, list(self._log))

    def persist(self, hard_state, entries, snapshot) -> None:
        self._pending.append((hard_state, list(entries or ()), snapshot))

    def sync(self) -> None:
        for hard, entries, snapshot in self._pending:
            self._log, self._snap = _apply_writes(self._log, self._snap, entries, snapshot)
            if hard is not None:
                self._hard = hard
        self._pending.clear()
        self.syncs += 1

    def crash(self) -> None:
        """Lose everything persisted since the last sync()."""
        self._pending.clear()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        try:
            os.unlink(tmp)   # a half-written temporary frees its space; the old file is intact
        except OSError:
            pass
        raise
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")


def _record(obj) -> bytes:
    body = canonical_json(obj)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def _parse_record(line: bytes):
    if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        return json.loads(body)
    except ValueError:
        return None


class FileStorage(Storage):
    """Storage in a directory: `hardstate.json` and `snapshot.json` replaced atomically (write,
    fsync, rename, fsync dir) and `log.jsonl`, an append-only file of CRC-framed records
    (`{"e": entry}`, `{"truncate": from_index}` or
    `{"commit": index}`; a commit-only hard-state change is a record, not a file rename). A torn or corrupt tail record (a crash during
    a write) ends the log: load() drops it and truncates the file there. After a snapshot the log
    file is rewritten (atomically) with only the entries that follow it.

    After every fsync of `log.jsonl` (and after load, and after a rewrite) its durable length is
    recorded in the ledger `log.jsonl.synced` (swarmnode.durability), which the `power-loss` fault
    cuts the file back to: what a power cut would keep.

    Background snapshots (`snapshot_writer` set by the driver: a callable that runs a function on
    another thread and returns a concurrent.futures.Future): a local compaction -- a snapshot whose
    index is in the stored log, with the same term and hash there -- is not written by persist():
    it hands the encoding, write, fsync and rename of `snapshot.json` to that thread and keeps
    appending to the current log file, which still holds every entry the snapshot covers (load()
    skips those under whichever snapshot it finds), so a crash before the snapshot is durable
    loses nothing. The log is rewritten without them (compacted) only once that snapshot is
    durable and is still the latest one, in a later sync(), and only when the file has grown to
    COMPACT_MIN_BYTES: a rewrite costs two fsyncs and a rename on the log's write path, so it is
    paid once per many snapshots instead of once per snapshot. A snapshot that is not a local
    compaction (one installed from the leader) is written in persist() as without a writer, after
    any background write still running. A background write that fails (a full disk) leaves the
    older snapshot and the whole log: counted in `snapshot_write_errors`, tried again by the
    next snapshot.
    """

    COMPACT_MIN_BYTES = 1 << 20

    def __init__(self, path: str):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self._log_path = os.path.join(path, "log.jsonl")
        self._hard_path = os.path.join(path, "hardstate.json")
        self._snap_path = os.path.join(path, "snapshot.json")
        self._file: int | None = None   # the log's file descriptor (O_APPEND), opened on first write
        self._written_len = 0
        self._wbuf = bytearray()
        self._ckpt = None
        self.dropped_tail_bytes = 0
        self._loaded = self._load()
        self._hard = self._loaded.hard_state
        self._snap = self._loaded.snapshot
        self._log = list(self._loaded.entries)
        self.snapshot_writer = None      # see the class docstring (background snapshots)
        self._snap_durable = self._snap  # the snapshot snapshot.json holds (written or loaded)
        self._snap_fut = None            # the last background snapshot write handed over
        self._compact_owed = False       # the log file holds entries a durable snapshot covers
        self.snapshot_write_errors = 0

    def _load(self) -> Loaded:
        hard = HardState()
        if os.path.exists(self._hard_path):
            with open(self._hard_path, "rb") as f:
                d = json.loads(f.read())
            hard = HardState(d["term"], d["vote"], d["commit"])
        snap = EMPTY_SNAPSHOT
        if os.path.exists(self._snap_path):
            with open(self._snap_path, "rb") as f:
                snap = Snapshot.from_dict(json.loads(f.read()))
        log: list = []
        good = 0
        if os.path.exists(self._log_path):
            with open(self._log_path, "rb") as f:
                data = f.read()
            pos = 0
            while pos < len(data):
                end = data.find(b"\n", pos)
                line = data[pos:] if end < 0 else data[pos:end + 1]
                rec = _parse_record(line)
                if rec is None:
                    break
                if "commit" in rec:
                    hard = HardState(hard.term, hard.vote, max(hard.commit, rec["commit"]))
                elif "truncate" in rec:
                    keep = max(0, rec["truncate"] - snap.index - 1)
                    del log[keep:]
                else:
                    e = rec["e"]
                    entry = Entry(e["index"], e["term"], e["command"], e["hash"])
                    if entry.index > snap.index:
                        if entry.index != snap.index + len(log) + 1:
                            raise StorageError(f"log gap at index {entry.index}")
                        log.append(entry)
                pos += len(line)
                good = pos
            self.dropped_tail_bytes = len(data) - good
            with open(self._log_path, "r+b") as f:
                if self.dropped_tail_bytes:
                    f.truncate(good)
                f.flush()
                os.fsync(f.fileno())  # what a killed process left in the page cache is durable from here
            try:
                note_synced(self._log_path, good)
            except OSError:
                pass   # see sync()
        return Loaded(hard, snap, log)

    def load(self) -> Loaded:
        return Loaded(self._hard, self._snap, list(self._log))

    # Log appends are buffered here (`_wbuf`) and written with os.write in sync(), never through a
    # Python buffered file: after a failed write (ENOSPC) nothing half-written may linger anywhere.
    def _fd(self) -> int:
        if self._file is None:
            self._file = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._written_len = os.fstat(self._file).st_size
        return self._file

    def _checkpoint(self) -> None:
        if self._ckpt is None:   # the state the last successful sync() left: restored on a failure
            self._ckpt = (list(self._log), self._snap, self._hard)

    def _rollback(self, exc: OSError) -> "StorageWriteError":
        """A write failed: drop what this batch wrote (a torn record included) and its in-memory
        effect, so the stored state is exactly the one before it; the caller may retry."""
        self._wbuf.clear()
        if self._file is not None:
            try:
                os.ftruncate(self._file, self._written_len)   # shrinking never needs space
            except OSError:
                pass
        if self._ckpt is not None:
            self._log, self._snap, self._hard = self._ckpt
            self._ckpt = None
        return StorageWriteError(exc)

    def persist(self, hard_state, entries, snapshot) -> None:
        self._checkpoint()
        try:
            self._persist(hard_state, entries, snapshot)
        except OSError as exc:
            raise self._rollback(exc) from exc

    def _local_compaction(self, snapshot) -> bool:
        """`snapshot` covers a prefix of the stored log (same term and hash at its index)."""
        i = snapshot.index - self._snap.index - 1
        if not 0 <= i < len(self._log):
            return False
        e = self._log[i]
        return e.index == snapshot.index and e.term == snapshot.term and e.hash == snapshot.hash

    def _write_snapshot_in_background(self, snap) -> None:
        def job() -> None:
            try:
                _atomic_write(self._snap_path, canonical_json(snap.to_dict()))
            except OSError:
                self.snapshot_write_errors += 1
                return
            if snap.index >= self._snap_durable.index:
                self._snap_durable = snap
        self._snap_fut = self.snapshot_writer(job)

    def wait_snapshot_writes(self) -> None:
        """Block until the background snapshot write handed over last is done."""
        fut, self._snap_fut = self._snap_fut, None
        if fut is not None:
            fut.result()

    def _persist(self, hard_state, entries, snapshot) -> None:
        entries = list(entries or ())
        old_last = self._snap.index + len(self._log)
        old_snap = self._snap
        deferred = (snapshot is not None and self.snapshot_writer is not None
                    and snapshot.index > old_snap.index and self._local_compaction(snapshot))
        new = entries
        if deferred:   # the log file goes on: the re-sent entries it already holds are not written again
            skip = 0
            for e in entries:
                i = e.index - old_snap.index - 1
                if not (0 <= i < len(self._log) and self._log[i].term == e.term and self._log[i].hash == e.hash):
                    break
                skip += 1
            new = entries[skip:]
        self._log, self._snap = _apply_writes(self._log, self._snap, entries, snapshot)
        if self._snap is not old_snap and not deferred:
            self.wait_snapshot_writes()   # one writer of snapshot.json at a time
            _atomic_write(self._snap_path, canonical_json(self._snap.to_dict()))
            self._snap_durable = self._snap
            self._compact_owed = False
            self._rewrite_log()
        elif new or deferred:
            if deferred:   # the log file keeps the covered entries until the snapshot is durable
                self._write_snapshot_in_background(self._snap)
                self._compact_owed = True
            if new and new[0].index <= old_last:
                self._wbuf += _record({"truncate": new[0].index})
            for e in new:
                self._wbuf += _record({"e": {"index": e.index, "term": e.term, "command": e.command, "hash": e.hash}})
        if hard_state is not None and hard_state != self._hard:
            if (hard_state.term, hard_state.vote) != (self._hard.term, self._hard.vote):
                _atomic_write(self._hard_path, canonical_json(
                    {"term": hard_state.term, "vote": hard_state.vote, "commit": hard_state.commit}))
            else:  # only the commit index moved: a cheap log record instead of a file rename
                self._wbuf += _record({"commit": hard_state.commit})
            self._hard = hard_state

    def _rewrite_log(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
        self._wbuf.clear()   # superseded: the rewrite holds the whole log
        data = _record({"commit": self._hard.commit}) + b"".join(_record({"e": {"index": e.index, "term": e.term, "command": e.command, "hash": e.hash}})
                        for e in self._log)
        _atomic_write(self._log_path, data)
        try:
            note_synced(self._log_path, len(data))
        except OSError:
            pass   # see sync()

    def _write_out(self) -> bool:
        """Write the buffered records (all of them, or raise OSError); True if there were any."""
        if not self._wbuf:
            return False
        fd = self._fd()
        data = bytes(self._wbuf)
        done = 0
        while done < len(data):   # an OSError leaves _written_len at the last whole batch: _rollback cuts there
            done += os.write(fd, data[done:] if done else data)
        self._written_len += done
        self._wbuf.clear()
        return True

    def unsynced(self) -> bool:
        """persist() buffered log records that sync() has yet to write and fsync."""
        return bool(self._wbuf)

    def sync(self) -> None:
        try:
            wrote = self._write_out()
            if wrote:
                os.fsync(self._file)
        except OSError as exc:
            raise self._rollback(exc) from exc
        self._ckpt = None
        if wrote:
            try:   # an overwrite in place of an existing small file: it needs no space
                note_synced(self._log_path, self._written_len)
            except OSError:
                pass   # the ledger lags: a power loss would cut back further than needed
        if (self._compact_owed and self._snap_durable is self._snap
                and self._written_len >= self.COMPACT_MIN_BYTES):
            self._compact()

    def _compact(self) -> None:
        """Rewrite the log without the entries the durable snapshot covers (see the class
        docstring). A failed rewrite leaves the old file (a superset) and is tried again later."""
        try:
            self._rewrite_log()
        except OSError:
            return
        self._compact_owed = False

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
