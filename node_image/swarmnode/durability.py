"""What a power loss leaves of a node's data directory: the synced-length ledger and the cut.

A real power cut loses every byte the OS had not written to the disk; a SIGKILLed container loses
nothing the process had handed to the OS (the page cache survives it). To simulate a power cut
without privileges, the storage layer records, after each successful fsync of an append-only file,
the file's length at that moment in a side file (the *ledger*, ``<file>.synced``), and the harness
(chaos `power-loss` fault) drops a marker file (``POWER_LOSS_MARKER``) into the data directory just
before it SIGKILLs the container. When the agent starts again and finds the marker, before anything
reads the data, ``apply_power_loss`` cuts every ledgered file back to its synced length, deletes
leftover ``*.tmp`` files (written but never renamed into place: an atomic replacement that had not
completed), fsyncs, and only then removes the marker (a crash during the cut redoes it).

What survives (docs/contracts.md, "power-loss"): every byte of a ledgered file up to its last
recorded fsync; files replaced atomically (write, fsync, rename, fsync dir: hardstate.json,
snapshot.json, the rewritten log, the boot counter) as they were after the last completed
replacement; the journal (journal.jsonl), which is the harness's observation record and is never
cut (a Jepsen-style log shipped off the node). What is lost: bytes appended to a ledgered file after
its last fsync, and ``*.tmp`` files.

The ledger is written with one ``pwrite`` of a fixed-width number at offset 0, never fsynced itself:
a SIGKILL cannot tear a single small write, and the ledger only needs to survive the kill (the power
cut is simulated, the page cache is real). It is written after the fsync returned, so a kill between
the two records a shorter length: the cut then also drops bytes the fsync had made durable but whose
fsync the agent had not yet seen return, which is what a power cut at that instant could do too.

Must not import asyncio, aiohttp or ``chaos``; file I/O only.
"""

from __future__ import annotations

import json
import os

LEDGER_SUFFIX = ".synced"
POWER_LOSS_MARKER = "power-loss"   # in the data directory; the harness creates it (chaos/env/nodeops.py)
_WIDTH = 20


def note_synced(path: str, length: int) -> None:
    """Record that the first `length` bytes of `path` are durable (call after fsync returned)."""
    fd = os.open(path + LEDGER_SUFFIX, os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        os.pwrite(fd, b"%0*d\n" % (_WIDTH, length), 0)
    finally:
        os.close(fd)


def read_synced(path: str) -> int | None:
    """The synced length the ledger of `path` records, or None (no ledger, or unreadable)."""
    try:
        with open(path + LEDGER_SUFFIX, "rb") as f:
            raw = f.read(_WIDTH + 1)
    except FileNotFoundError:
        return None
    try:
        return int(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def apply_power_loss(data_dir: str) -> dict | None:
    """If the power-loss marker is in `data_dir`: cut every ledgered file back to its synced length,
    remove ``*.tmp`` files, fsync, remove the marker. Returns what was done (None without a marker):
    ``{"files": {relpath: {"size", "synced", "dropped"}}, "removed_tmp": [relpath], "dropped_bytes"}``.
    A ledgered file shorter than its ledger (never expected) is left alone and reported with
    ``"short": true``; a ledger without its file is reported ``"missing": true``."""
    marker = os.path.join(data_dir, POWER_LOSS_MARKER)
    if not os.path.exists(marker):
        return None
    files: dict[str, dict] = {}
    removed: list[str] = []
    dirs: set[str] = set()
    for root, _subdirs, names in os.walk(data_dir):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, data_dir)
            if name.endswith(".tmp"):
                os.unlink(full)
                removed.append(rel)
                dirs.add(root)
                continue
            if not name.endswith(LEDGER_SUFFIX):
                continue
            target = full[: -len(LEDGER_SUFFIX)]
            trel = os.path.relpath(target, data_dir)
            synced = read_synced(target)
            if synced is None:
                continue
            try:
                size = os.path.getsize(target)
            except FileNotFoundError:
                files[trel] = {"size": None, "synced": synced, "dropped": 0, "missing": True}
                continue
            rec = {"size": size, "synced": synced, "dropped": max(0, size - synced)}
            if size > synced:
                with open(target, "r+b") as f:
                    f.truncate(synced)
                    f.flush()
                    os.fsync(f.fileno())
            elif size < synced:
                rec["short"] = True
            files[trel] = rec
    for d in sorted(dirs):
        _fsync_path(d, directory=True)
    os.unlink(marker)
    _fsync_path(data_dir, directory=True)
    return {"files": dict(sorted(files.items())), "removed_tmp": sorted(removed),
            "dropped_bytes": sum(r["dropped"] for r in files.values())}


KEEP_ON_WIPE = ("journal.jsonl",)   # the harness's observation record (docs/contracts.md "wipe")


def wipe(data_dir: str, keep: tuple[str, ...] = KEEP_ON_WIPE) -> dict:
    """Empty `data_dir` (the `wipe` fault, run by the harness in a helper container while the node is
    stopped): every file and directory but the top-level names in `keep`. Returns
    ``{"removed_files", "removed_bytes", "kept"}``."""
    files = size = 0
    for name in sorted(os.listdir(data_dir)):
        if name in keep:
            continue
        full = os.path.join(data_dir, name)
        if os.path.isdir(full) and not os.path.islink(full):
            for root, subdirs, names in os.walk(full, topdown=False):
                for n in names:
                    fp = os.path.join(root, n)
                    size += os.lstat(fp).st_size
                    os.unlink(fp)
                    files += 1
                for d in subdirs:
                    os.rmdir(os.path.join(root, d))
            os.rmdir(full)
        else:
            size += os.lstat(full).st_size
            os.unlink(full)
            files += 1
    _fsync_path(data_dir, directory=True)
    return {"removed_files": files, "removed_bytes": size,
            "kept": sorted(n for n in keep if os.path.exists(os.path.join(data_dir, n)))}


BALLAST = ".chaos-ballast"   # the `disk-full` fault's filler, in the data directory
PROBE = ".chaos-probe"
PROBE_BYTES = 65536


def free_bytes(data_dir: str) -> int:
    st = os.statvfs(data_dir)
    return st.f_bavail * st.f_frsize


def write_probe(data_dir: str) -> str:
    """Try to write PROBE_BYTES to a fresh file (then remove it): "ok", or the errno name."""
    path = os.path.join(data_dir, PROBE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            data, done = b"\0" * PROBE_BYTES, 0
            while done < PROBE_BYTES:
                done += os.write(fd, data[done:])
        finally:
            os.close(fd)
        return "ok"
    except OSError as exc:
        import errno as _errno
        return _errno.errorcode.get(exc.errno or 0, str(exc.errno))
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def fill(data_dir: str) -> dict:
    """The `disk-full` fault: a ballast file takes every free byte of the data directory's
    filesystem (preallocated, then topped up page by page until ENOSPC), and a write probe shows
    what a writer now gets. ``{"free_before", "ballast_bytes", "free_after", "probe"}``."""
    before = free_bytes(data_dir)
    path = os.path.join(data_dir, BALLAST)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        try:
            os.posix_fallocate(fd, os.fstat(fd).st_size, max(1, before))
        except OSError:
            pass
        page = b"\0" * 4096
        for _ in range(1 << 16):   # whatever the preallocation left (bounded: 256 MB of pages)
            try:
                if os.write(fd, page) < len(page):
                    break
            except OSError:
                break
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    return {"free_before": before, "ballast_bytes": size, "free_after": free_bytes(data_dir),
            "probe": write_probe(data_dir)}


def unfill(data_dir: str) -> dict:
    """The end of a `disk-full` fault: the ballast removed, then the write probe again."""
    path = os.path.join(data_dir, BALLAST)
    try:
        size = os.path.getsize(path)
        os.unlink(path)
    except FileNotFoundError:
        size = 0
    return {"ballast_removed": size, "free_after": free_bytes(data_dir), "probe": write_probe(data_dir)}


def main(argv: list[str]) -> int:
    """``python3 -m swarmnode.durability show DATA_DIR``: the ledgers as JSON (debugging aid);
    ``python3 -m swarmnode.durability wipe DATA_DIR``: empty it but the journal (one JSON line out)."""
    if len(argv) == 2 and argv[0] in ("wipe", "fill", "unfill"):
        print(json.dumps({"wipe": wipe, "fill": fill, "unfill": unfill}[argv[0]](argv[1]), sort_keys=True))
        return 0
    if len(argv) != 2 or argv[0] != "show":
        print("usage: python3 -m swarmnode.durability show|wipe|fill|unfill DATA_DIR")
        return 2
    out = {}
    for root, _d, names in os.walk(argv[1]):
        for name in sorted(names):
            if name.endswith(LEDGER_SUFFIX):
                target = os.path.join(root, name)[: -len(LEDGER_SUFFIX)]
                size = os.path.getsize(target) if os.path.exists(target) else None
                out[os.path.relpath(target, argv[1])] = {"synced": read_synced(target), "size": size}
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
