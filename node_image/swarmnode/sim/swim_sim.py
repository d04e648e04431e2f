"""Deterministic simulator for the SWIM core: virtual time, a seeded network, faults.

Owns: `SwimSim` -- many `swarmnode.swim.SwimNode`s driven in one process by an event heap in
virtual milliseconds, with per-link delay and loss, FIFO delivery per directed link (as TCP),
partitions (two-way or one-way cuts), crash / restart, pause / resume (a paused node neither sends
nor processes; messages to it wait, as in a socket buffer), a membership trace for checkers, and
`run_until(cond, max_time_ms)`.
Must not import: asyncio, socket, time, `chaos`. All randomness comes from the seed: the network
uses `random.Random(seed)`, node i uses `random.Random(f"{seed}:{id}")`.

The network model is kept here (not sim/net.py) because n = 1,000 needs a lean per-message path.
Consequence checks judged against the simulator's ground truth (who runs, who can reach whom) and a
seeded chaos run that always ends in a verdict live in swarmnode/sim/swim_checks.py.
"""

from __future__ import annotations

import heapq
import json
import random
from typing import Callable

from swarmnode.swim import SwimConfig, SwimNode, decode

_WAKE, _DELIVER = 0, 1


class SimBoundError(RuntimeError):
    """The simulator hit its event bound (reported, never silent)."""


class SwimSim:
    """A simulated SWIM group.

    ids: member ids (default w1..wN); bootstrap=True starts every node knowing all others
    (`assume_members`), otherwise node 0 starts alone and the others join through `seeds`.
    delay_ms=(lo, hi): uniform per-message delay; loss: per-message drop probability (both are
    defaults, overridable per directed link with `set_link`). wire=True round-trips every message
    through JSON (`to_dict` / `decode`), exercising the wire format. The trace keeps at most
    `max_trace` entries (then counts `trace_dropped`; checkers must treat a truncated trace as
    incomplete); `max_events` bounds one simulator's work (SimBoundError).
    """

    def __init__(self, n: int = 5, seed: int = 0, config: SwimConfig | None = None, *,
                 ids: list[str] | None = None, node_factory: Callable = SwimNode,
                 bootstrap: bool = True, seeds: list[str] | None = None,
                 delay_ms: tuple[int, int] = (1, 5), loss: float = 0.0, wire: bool = False,
                 max_events: int = 50_000_000, max_trace: int = 5_000_000):
        self.seed = seed
        self.config = config or SwimConfig()
        self.ids = list(ids) if ids else [f"w{i + 1}" for i in range(n)]
        self.node_factory = node_factory
        self.seeds = list(seeds) if seeds is not None else self.ids[:1]
        self.delay_ms = delay_ms
        self.loss = loss
        self.wire = wire
        self.max_events = max_events
        self.max_trace = max_trace
        self.trace_dropped = 0                      # events not traced once max_trace was hit
        self.rng = random.Random(seed)
        self.now = 0
        self.nodes: dict[str, SwimNode] = {}
        self.crashed: dict[str, bool] = {}
        self.paused: dict[str, list] = {}          # id -> buffered messages
        self.left: dict[str, bool] = {}
        self.cut: dict[tuple[str, str], bool] = {}  # directed (src, dst) -> cut
        self.links: dict[tuple[str, str], tuple] = {}   # directed -> ((lo, hi), loss)
        self.trace: list[tuple] = []                # (t, observer, member, state, incarnation)
        self.restarts: list[tuple] = []             # (t, node)
        self.sent: dict[str, int] = {i: 0 for i in self.ids}
        self.sent_by_type: dict[str, int] = {}
        self.dropped = 0
        self.events = 0
        self.listeners: list[Callable] = []          # f(t, observer, event) on each journal event
        self.after_step: Callable | None = None      # f(dst, msg) after a delivered message
        self._heap: list = []
        self._hseq = 0
        self._wake: dict[str, int] = {}
        self._link_free: dict[tuple[str, str], int] = {}
        for i in self.ids:
            self._start_node(i, join=not bootstrap and i != self.ids[0])
        if bootstrap:
            for i in self.ids:
                self.nodes[i].assume_members(self.ids)
                self._after(i)

    # --- nodes ----------------------------------------------------------------------------------

    def _start_node(self, i: str, join: bool) -> None:
        node = self.node_factory(i, self.config, random.Random(f"{self.seed}:{i}:{self.now}"),
                                 [s for s in self.seeds if s != i], self.now)
        self.nodes[i] = node
        self.crashed[i] = False
        self.left.pop(i, None)
        if join:
            node.join()
        self._after(i)

    def live(self) -> list[str]:
        """Ids of nodes running (not crashed, not left); paused nodes count as live."""
        return [i for i in self.ids if not self.crashed[i] and i not in self.left]

    def crash(self, i: str) -> None:
        self.crashed[i] = True
        self.paused.pop(i, None)
        self._wake.pop(i, None)

    def restart(self, i: str) -> None:
        """A fresh process with empty state that joins through the seeds."""
        self.restarts.append((self.now, i))
        self._start_node(i, join=True)

    def pause(self, i: str) -> None:
        self.paused.setdefault(i, [])

    def resume(self, i: str) -> None:
        buf = self.paused.pop(i, [])
        node = self.nodes[i]
        for msg in buf:
            node.step(msg, self.now)
        node.tick(self.now)
        self._after(i)

    def leave(self, i: str) -> None:
        self.nodes[i].leave()
        self._after(i)

    def stop_left(self, i: str) -> None:
        """Stop a node that left (after its rumour had time to spread)."""
        self.crash(i)
        self.left[i] = True

    def local(self, i: str, fn: Callable[[SwimNode], object]):
        """Run a local request on node i (e.g. lambda n: n.set_endpoint(k, v)) and flush it."""
        r = fn(self.nodes[i])
        self._after(i)
        return r

    # --- network faults -------------------------------------------------------------------------

    def set_link(self, src: str, dst: str, delay_ms: tuple[int, int] | None = None,
                 loss: float | None = None) -> None:
        d, lo = self.links.get((src, dst), (self.delay_ms, self.loss))
        self.links[(src, dst)] = (delay_ms or d, lo if loss is None else loss)

    def partition(self, *groups) -> None:
        """Cut every link between different groups (both directions); unlisted ids stay connected."""
        where = {i: g for g, members in enumerate(groups) for i in members}
        for a in where:
            for b in where:
                if where[a] != where[b]:
                    self.cut[(a, b)] = True

    def isolate(self, i: str) -> None:
        self.partition([i], [x for x in self.ids if x != i])

    def cut_link(self, src: str, dst: str) -> None:
        """One-way cut: src's messages no longer reach dst."""
        self.cut[(src, dst)] = True

    def heal(self) -> None:
        self.cut.clear()

    # --- running --------------------------------------------------------------------------------

    def _push(self, t: int, kind: int, a, b=None) -> None:
        self._hseq += 1
        heapq.heappush(self._heap, (t, self._hseq, kind, a, b))

    def _after(self, i: str) -> None:
        """Flush node i's output: trace its events, put its messages on the wire, reschedule it."""
        node = self.nodes[i]
        out = node.poll()
        now = self.now
        for ev in out.events:
            if len(self.trace) < self.max_trace:
                self.trace.append((now, i, ev["member"], ev["state"], ev["incarnation"]))
            else:
                self.trace_dropped += 1
            for f in self.listeners:
                f(now, i, ev)
        if out.messages:
            self.sent[i] = self.sent.get(i, 0) + len(out.messages)
            rng = self.rng
            for msg in out.messages:
                t = msg.TYPE
                self.sent_by_type[t] = self.sent_by_type.get(t, 0) + 1
                key = (i, msg.dst)
                (lo, hi), loss = self.links.get(key, (self.delay_ms, self.loss))
                if self.cut.get(key) or (loss and rng.random() < loss):
                    self.dropped += 1
                    continue
                at = now + (lo if lo == hi else rng.randint(lo, hi))
                free = self._link_free.get(key, 0)
                if at < free:
                    at = free                      # FIFO per directed link, as one TCP stream
                self._link_free[key] = at
                if self.wire:
                    msg = decode(json.loads(json.dumps(msg.to_dict())))
                self._push(at, _DELIVER, i, msg)
        d = node.next_deadline_ms()
        if self._wake.get(i) != d and not self.crashed[i]:
            self._wake[i] = d
            self._push(d, _WAKE, i)

    def _process_one(self) -> None:
        t, _, kind, a, b = heapq.heappop(self._heap)
        self.now = t
        self.events += 1
        if self.events > self.max_events:
            raise SimBoundError(f"event bound {self.max_events} hit at t={t} (seed {self.seed})")
        if kind == _WAKE:
            if self._wake.get(a) != t or self.crashed[a]:
                return
            del self._wake[a]
            if a in self.paused:
                return                             # resume() ticks it
            self.nodes[a].tick(t)
            self._after(a)
            return
        dst = b.dst
        if self.crashed.get(dst, True) or self.cut.get((a, dst)):
            self.dropped += 1
            return
        if dst in self.paused:
            self.paused[dst].append(b)
            return
        self.nodes[dst].step(b, t)
        if self.after_step is not None:
            self.after_step(dst, b)
        self._after(dst)

    def run_for(self, ms: int) -> None:
        self.run_until(lambda: False, ms)

    def run_until(self, cond: Callable[[], bool], max_time_ms: int, check_every_ms: int = 10) -> bool:
        """Run until `cond()` holds (checked every `check_every_ms` of virtual time) or
        `max_time_ms` more virtual time passed. Returns whether cond held."""
        end = self.now + max_time_ms
        next_check = self.now
        heap = self._heap
        while True:
            if self.now >= next_check:
                if cond():
                    return True
                next_check = self.now + check_every_ms
            if not heap or heap[0][0] > min(end, next_check):
                if next_check > end:
                    self.now = max(self.now, end)
                    return cond()
                self.now = next_check
                continue
            self._process_one()

    # --- views for checkers ---------------------------------------------------------------------

    def view(self, i: str) -> dict:
        return self.nodes[i].members()

    def members_agree(self) -> bool:
        """Every live node sees exactly the live nodes as alive, and every other known member as
        not alive (dead, left, or forgotten)."""
        live = self.live()
        want = set(live)
        for i in live:
            v = self.nodes[i].members()
            if {m for m, (s, _) in v.items() if s == "alive"} != want:
                return False
        return True

    def endpoints_agree(self) -> bool:
        live = self.live()
        tables = [{k: (e.owner, e.value) for k, e in self.nodes[i].endpoints().items()} for i in live]
        return all(t == tables[0] for t in tables[1:])

    def marked_gone(self, target: str, by: list[str] | None = None) -> bool:
        """Every given (default: live) node sees `target` as dead or left or has forgotten it."""
        for i in by if by is not None else self.live():
            if i == target:
                continue
            s = self.nodes[i].members().get(target)
            if s is not None and s[0] in ("alive", "suspect"):
                return False
        return True

    def dead_marks(self) -> list[tuple]:
        """Trace entries where someone marked a member dead: (t, observer, member, inc)."""
        return [(t, o, m, inc) for (t, o, m, s, inc) in self.trace if s == "dead"]


# --- trace checkers (pure functions over SwimSim.trace) ---------------------------------------------

def incarnation_regressions(trace: list[tuple], restarts: list[tuple] = ()) -> list[tuple]:
    """Trace entries where an observer's view of a member's incarnation went down.

    `restarts`: (t, node) pairs; an observer's memory starts afresh at its restart.
    Returns [(t, observer, member, previous_incarnation, incarnation)].
    """
    restart_at: dict[str, list[int]] = {}
    for t, i in restarts:
        restart_at.setdefault(i, []).append(t)
    last: dict[tuple[str, str], tuple[int, int]] = {}
    bad = []
    for t, obs, member, _state, inc in trace:
        key = (obs, member)
        prev = last.get(key)
        if prev is not None:
            pt, pinc = prev
            fresh = any(pt < rt <= t for rt in restart_at.get(obs, ()))
            if inc < pinc and not fresh:
                bad.append((t, obs, member, pinc, inc))
        last[key] = (t, inc)
    return bad


def unrefuted_suspicions(trace: list[tuple], within_ms: int, end_ms: int,
                         members: list[str] | None = None) -> list[tuple]:
    """Suspicions (observer suspects member at incarnation i) not followed, within `within_ms`,
    by the observer seeing the member alive at a higher incarnation. Suspicions younger than
    `within_ms` at `end_ms` are not judged. Returns [(t, observer, member, incarnation)]."""
    pending: dict[tuple[str, str], tuple[int, int]] = {}
    bad = []
    for t, obs, member, state, inc in trace:
        if members is not None and member not in members:
            continue
        key = (obs, member)
        if state == "suspect":
            pending.setdefault(key, (t, inc))
        elif key in pending:
            st, sinc = pending[key]
            if state == "alive" and inc > sinc:
                if t - st > within_ms:
                    bad.append((st, obs, member, sinc))
                del pending[key]
            elif state in ("dead", "left"):
                bad.append((st, obs, member, sinc))
                del pending[key]
    bad += [(st, o, m, i) for (o, m), (st, i) in pending.items() if end_ms - st > within_ms]
    return sorted(bad)
