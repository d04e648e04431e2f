"""The node's event journal (docs/contracts.md section 4) and its boot counter.

Owns ``$CHAOS_DATA_DIR/journal.jsonl`` and ``$CHAOS_DATA_DIR/boot``: stamping core events with
``node``, ``seq`` (increasing across restarts), ``ts`` and ``boot``, appending them and flushing
before the driver lets a dependent message leave. Also serves ``GET /journal?since=SEQ`` reads.

Must not import asyncio, aiohttp or ``chaos``; file I/O only.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import Callable, Iterable

TAIL_SCAN_BYTES = 1 << 16
# json.dumps with options builds a new encoder per call (three events per write on a leader): one
# shared, stateless encoder gives the same bytes
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)  # how far back from the end we look for the last complete line


def read_boot_counter(data_dir: str) -> int:
    """Increment and persist (fsync + rename) the boot counter; returns this boot's number (1 first)."""
    path = os.path.join(data_dir, "boot")
    prev = 0
    try:
        with open(path, "r", encoding="utf-8") as f:
            prev = int(f.read().strip() or 0)
    except FileNotFoundError:
        prev = 0
    except ValueError:
        prev = 0
    boot = prev + 1
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(boot))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return boot


def _last_seq(path: str) -> int:
    """The seq of the last complete line of an existing journal; 0 if none."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return 0
    with open(path, "rb") as f:
        start = max(0, size - TAIL_SCAN_BYTES)
        f.seek(start)
        tail = f.read()
    for line in reversed(tail.split(b"\n")):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a torn last line from a crash
        if isinstance(obj, dict) and isinstance(obj.get("seq"), int):
            return obj["seq"]
    return 0


class Journal:
    """Append-only JSON-lines event journal for one node.

    ``record(event)`` stamps and buffers; ``flush()`` writes the buffer to the OS (page cache), so a
    killed process never loses a flushed line. A full disk delays lines, never drops or tears them
    for good (see ``flush``). The driver calls ``flush()`` after persisting Raft
    state and before sending the messages of the same Ready. Recent lines are also kept in memory
    (bounded) so ``/journal`` reads do not reread the file in the common case.
    """

    def __init__(self, data_dir: str, node_id: str, clock: Callable[[], float] = time.time,
                 memory_lines: int = 5000, observer: Callable[[dict], None] | None = None) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "journal.jsonl")
        self.node_id = node_id
        self.boot = read_boot_counter(data_dir)
        self.seq = _last_seq(self.path)
        self._clock = clock
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._unwritten = bytearray()   # stamped lines the disk refused so far (written in order later)
        self.write_errors = 0
        self.failing: dict | None = None   # {"since", "error"} while writes fail
        # A torn last line (crash mid-write) must not glue onto our first line.
        if os.fstat(self._fd).st_size > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._unwritten += b"\n"
        self._pending: list[bytes] = []
        # bounded: the oldest line falls out in O(1) (a list's del [:1] moved every other line)
        self._memory: deque[tuple[int, bytes]] = deque(maxlen=memory_lines)
        self._memory_lines = memory_lines
        self._observer = observer   # sees every stamped line (the operator's log: eventlog.EventLog)
        self.record({"type": "boot"})
        self.flush()

    def record(self, event: dict) -> dict:
        """Stamp ``event`` (a core event without node/seq/ts/boot) and buffer it; returns the line."""
        self.seq += 1
        line = dict(event)
        line["node"] = self.node_id
        line["seq"] = self.seq
        line["ts"] = round(self._clock(), 6)
        line["boot"] = self.boot
        data = _ENCODER.encode(line).encode() + b"\n"
        self._pending.append(data)
        self._memory.append((self.seq, data))
        if self._observer is not None:
            self._observer(line)
        return line

    def record_all(self, events: Iterable[dict]) -> None:
        for ev in events:
            self.record(ev)

    def flush(self) -> bool:
        """Write the buffered lines to the OS. A disk that refuses them (ENOSPC) loses nothing: the
        rest stays in memory, in order, and is written by a later flush; the journal then records a
        `disk` event `state: full` (written once it can be) and `state: ok` when writes succeed
        again. Never raises for a write error; False while lines are waiting."""
        if self._pending:
            self._unwritten += b"".join(self._pending)
            self._pending.clear()
        if not self._unwritten:
            return True
        try:
            while self._unwritten:
                n = os.write(self._fd, bytes(self._unwritten))
                del self._unwritten[:n]
        except OSError as exc:
            self.write_errors += 1
            if self.failing is None:
                import errno as _errno
                code = _errno.errorcode.get(exc.errno or 0, str(exc.errno))
                self.failing = {"since": round(self._clock(), 6), "error": f"{code}: {exc.strerror}"}
                self.record({"type": "disk", "state": "full", "file": "journal.jsonl",
                             "error": self.failing["error"]})
                self._unwritten += b"".join(self._pending)
                self._pending.clear()
            return False
        if self.failing is not None:
            failed, self.failing = self.failing, None
            self.record({"type": "disk", "state": "ok", "file": "journal.jsonl", "error": failed["error"],
                         "failed_s": round(self._clock() - failed["since"], 3)})
            return self.flush()
        return True

    def read_since(self, since: int, limit_bytes: int = 8 << 20) -> bytes:
        """JSON lines with seq > since, at most ``limit_bytes`` (whole lines); flushed lines only."""
        self.flush()
        if self._memory and self._memory[0][0] <= since + 1:
            out, total = [], 0
            for seq, data in self._memory:
                if seq > since:
                    if total + len(data) > limit_bytes:
                        break
                    out.append(data)
                    total += len(data)
            return b"".join(out)
        out, total = [], 0
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    seq = json.loads(raw).get("seq", 0)
                except (ValueError, AttributeError):
                    continue
                if isinstance(seq, int) and seq > since:
                    if total + len(raw) > limit_bytes:
                        break
                    out.append(raw if raw.endswith(b"\n") else raw + b"\n")
                    total += len(raw)
        return b"".join(out)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            os.close(self._fd)
