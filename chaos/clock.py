"""The `clock` fault: what a node's processes see as the time, moved through libfaketime.

Mechanism (docs/contracts.md "clock faults"). A cluster whose experiment has a `clock` fault is
started with Debian's libfaketime preloaded into every process of every node container
(`faketime_env`: LD_PRELOAD, FAKETIME_TIMESTAMP_FILE=/data/faketime.rc, FAKETIME_NO_CACHE=1, so each
time call re-reads the control file). The harness moves a node's clock by rewriting that file
atomically (`docker exec` of a fixed `sh` script with the spec as its argument: write a temporary
file, rename it over the control file); libfaketime stops the process on a spec it cannot parse, so
a half-written file must never be seen. Undo writes the neutral spec "+0" (the file is never
removed: see swarmnode/agent/faketime.py). Every spec written names its rate (`-3 x1`): libfaketime
keeps the previous rate when a spec has none.

What moves: CLOCK_REALTIME and CLOCK_MONOTONIC alike (time.time(), time.monotonic(), asyncio's
loop clock, timers, leases, journal timestamps): an offset jumps both, a rate makes both run fast
or slow. libfaketime 0.9.10 (Debian bookworm) limits what can be offered:

- the monotonic clock cannot be left out: with FAKETIME_DONT_FAKE_MONOTONIC=1 CPython's
  time.sleep() fails with EINVAL (its absolute CLOCK_MONOTONIC clock_nanosleep is mistranslated),
  which kills the workers' task processes; so both clocks are always faked together.
- a process waiting on a lock with a timeout (threading.Event.wait(t), Lock.acquire(timeout=t),
  queue.get(timeout=t)) never times out under the preload: CPython 3.11 passes an absolute
  deadline on the faked monotonic clock to sem_clockwait, which libfaketime does not intercept. The
  agent makes no such wait (asyncio only); this is why the preload is opt-in per cluster.
- libfaketime's own rate (`x1.5`) runs from each process's start, so switching it on leaps the
  clock by (rate - 1) x the process's age, and FAKETIME_XRESET ignores offsets. The harness
  therefore writes the rate together with an offset that cancels that leap for the node's agent
  (its container's StartedAt: `rate_spec`); a process started later in the container runs at the
  same rate but (rate - 1) x (how much later it started) behind.
- strobe (Jepsen's): the harness flips the offset between `offset` and `offset + jump` every
  `every` for the fault's length; each flip is one rewrite of the file.

Verified by reading the node's clock back through its API (`/status` `clock`): `clock_effect`.
Must not import: click, docker, requests (the callers do the I/O).
"""

from __future__ import annotations

from typing import Mapping

CONTROL_FILE = "/data/faketime.rc"
NEUTRAL_SPEC = "+0 x1"
"""Real time. Every spec names its rate: libfaketime keeps the last rate when a spec has none."""
WRITE_ARGV = ("sh", "-c", 'printf "%s\\n" "$1" > "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"', "chaos-clock")
"""A fixed script; the spec and the path are its arguments (no shell string is built from input).
The temporary file is the shell's own (`$$`): two writes to one node never share it."""
OFFSET_TOLERANCE_S = 0.25
"""How far the skew read back may be from the offset asked for: the status request's round trip
bounds the uncertainty of when the node read its clock; more than this is a harness error."""
RATE_TOLERANCE = 0.1
"""A rate read back (two readings of the node's clock against ours) may differ from the asked one
by this share of the real interval (each reading is uncertain by half a round trip)."""


def faketime_env() -> dict[str, str]:
    from chaos.image import FAKETIME_LIB

    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": CONTROL_FILE, "FAKETIME_NO_CACHE": "1"}


def format_offset(seconds: float) -> str:
    """libfaketime's relative offset: '+1.5' / '-3' (seconds; '.' decimals in the C locale)."""
    text = f"{seconds:+.6f}".rstrip("0").rstrip(".")
    return "+0" if text in ("+0", "-0") else text


def offset_spec(offset_s: float) -> str:
    return f"{format_offset(offset_s)} x1"


def rate_spec(offset_s: float, rate: float, now_wall: float, started_wall: float) -> str:
    """The spec for `offset_s` from now on plus a clock running `rate` times as fast from now on, for
    a process started at `started_wall` (libfaketime's rate counts from the process's start)."""
    age = max(0.0, now_wall - started_wall)
    return f"{format_offset(offset_s - (rate - 1.0) * age)} x{rate:.6g}"


def skew_of(clock: Mapping | None, sent: float, received: float) -> float | None:
    """The node's wall clock minus ours at the midpoint of the status request, or None."""
    if not isinstance(clock, Mapping) or not isinstance(clock.get("wall"), (int, float)):
        return None
    return float(clock["wall"]) - (sent + received) / 2


def clock_effect(asked: Mapping, readings: Mapping[str, dict]) -> dict:
    """Did every target's clock move as asked? `asked`: {"offset_s", "rate"?, "strobe"?};
    `readings`: node -> {"before": reading, "after": [reading, ...]} where a reading is
    {"sent", "received", "clock"} (our wall clock around a /status whose `clock` is the node's), the
    `after` readings taken after the fault was applied (the first as soon as it was, the last later
    when the rate is measured)."""
    offset = float(asked.get("offset_s") or 0.0)
    rate = asked.get("rate")
    per: dict[str, dict] = {}
    bad: list[str] = []
    for node, r in sorted(readings.items()):
        before = r.get("before") or {}
        after = [a for a in (r.get("after") or []) if a]
        skew0 = skew_of(before.get("clock"), before.get("sent", 0), before.get("received", 0)) if before else None
        skews = [skew_of(a.get("clock"), a["sent"], a["received"]) for a in after]
        rec: dict = {"skew_before_s": _r(skew0), "skew_after_s": [_r(s) for s in skews]}
        if not after or skews[0] is None:
            rec["why"] = "its clock could not be read after the fault was applied"
            bad.append(node)
            per[node] = rec
            continue
        first = after[0]
        if isinstance((first.get("clock") or {}).get("faketime"), Mapping) and \
                not first["clock"]["faketime"].get("preloaded"):
            rec["why"] = "libfaketime is not preloaded in its processes"
            bad.append(node)
            per[node] = rec
            continue
        base = skew0 if skew0 is not None and abs(skew0) < OFFSET_TOLERANCE_S else 0.0
        moved = skews[0] - base
        rec["moved_s"] = _r(moved)
        uncertain = (first["received"] - first["sent"]) / 2 + OFFSET_TOLERANCE_S
        if rate is None or len(after) < 2:
            # a strobe may have flipped back before the reading: either of its states counts, but
            # only one that differs from real time (no movement is never evidence)
            wanted = [offset] + ([offset - float(asked["strobe"]["jump"])] if asked.get("strobe") else [])
            wanted = [w for w in wanted if abs(w) > uncertain] or wanted[:1]
            if min(abs(moved - w) for w in wanted) > uncertain or abs(moved) <= uncertain:
                rec["why"] = f"its clock moved {moved:+.3f} s, not {' or '.join(f'{w:+.3f}' for w in wanted)} s"
                bad.append(node)
        else:
            last = after[-1]
            real = (last["sent"] + last["received"]) / 2 - (first["sent"] + first["received"]) / 2
            seen = (float(last["clock"]["wall"]) - float(first["clock"]["wall"])) / real if real > 0 else None
            rec["rate_seen"] = _r(seen, 4)
            rec["interval_s"] = _r(real)
            slack = RATE_TOLERANCE + ((first["received"] - first["sent"]) + (last["received"] - last["sent"])) / max(real, 1e-6)
            if seen is None or abs(seen - float(rate)) > slack:
                rec["why"] = f"its clock ran at {seen} x real time, not {rate}"
                bad.append(node)
        per[node] = rec
    ev = {"asked": dict(asked), "nodes": per}
    if not readings:
        return {"effective": False, "evidence": ev, "why": "no target's clock was read"}
    if bad:
        return {"effective": False, "evidence": ev,
                "why": "; ".join(f"{n}: {per[n].get('why')}" for n in bad)}
    what = (f"rate x{rate}" if rate is not None else "") + (f"{' and ' if rate is not None else ''}offset {offset:+g} s"
                                                              if offset or rate is None else "")
    return {"effective": True, "evidence": ev,
            "why": f"{', '.join(sorted(per))}: clock read back through the API moved as asked ({what})"}


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)
