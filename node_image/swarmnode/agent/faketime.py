"""The node's side of the `clock` fault: libfaketime's control file.

A cluster started for an experiment with a `clock` fault preloads Debian's libfaketime into every
process of each node container (LD_PRELOAD, FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1; see
docs/contracts.md "clock faults"). libfaketime re-reads the control file on every time call; the
harness rewrites it atomically (write + rename) to move the node's clocks.

The file must hold a spec from the process's first time call on: libfaketime reports
CLOCK_MONOTONIC on the wall clock's scale while a spec is in force and on the kernel's scale when
none is, so a file appearing later would make the monotonic clock leap by decades. So the agent
writes the neutral spec "+0 x1" before anything else when the file is missing (a fresh or emptied
data volume), and the harness never removes it (undo writes "+0 x1" again).

Must not import asyncio, aiohttp or `chaos`.
"""

from __future__ import annotations

import os

NEUTRAL = "+0 x1"  # real time; the rate is explicit (libfaketime keeps the last rate otherwise)


_MAPPED: list[bool] = []


def mapped() -> bool:
    """Is libfaketime really loaded into this process (/proc/self/maps)? LD_PRELOAD naming a
    missing library only makes the loader print a warning; read once, it cannot change."""
    if not _MAPPED:
        try:
            with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
                _MAPPED.append(any("libfaketime" in line for line in fh))
        except OSError:
            _MAPPED.append(False)
    return _MAPPED[0]


def control_file() -> str | None:
    """The control file this process's libfaketime reads, or None when it is not preloaded."""
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return None
    return os.environ.get("FAKETIME_TIMESTAMP_FILE") or None


def ensure_control_file() -> None:
    """Write the neutral spec when the control file is missing (atomically: libfaketime exits the
    process on a spec it cannot parse, and a half-written file is one)."""
    path = control_file()
    if path is None or os.path.exists(path):
        return
    write_spec(path, NEUTRAL)


def write_spec(path: str, spec: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(spec + "\n")
    os.replace(tmp, path)


def faketime_state() -> dict:
    """{"preloaded": bool, "spec": the control file's spec or None} for /status."""
    path = control_file()
    if path is None or not mapped():
        return {"preloaded": False, "spec": None}
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            spec = fh.read().strip()
    except OSError:
        spec = None
    return {"preloaded": True, "spec": spec}
