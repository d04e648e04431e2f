"""Simulated transport: the same contract as ``swarmnode.agent.transport`` in virtual time.

Owns ``SimNetwork`` (a seeded, deterministic network of ``SimTransport`` endpoints) used by the
transport conformance suite and usable by simulators that want the agent's wire behaviour. Frames
go through the real encoder and decoder (``swarmnode.agent.frames``) and every frame's bytes are
split into seeded random chunks before decoding, so the framing is exercised as on TCP.

Modelled like the TCP transport: per-peer bounded send queue (drop oldest, counted), a "connection"
per directed link that exists while the peer is up and the link is not cut (a cut refuses
connections, like a disabled Toxiproxy proxy), at-most-once in-order delivery per connection (frames
in flight when a connection breaks are lost), hello naming the sender, bad frames counted and the
connection dropped, and probe echoes.

Must not import asyncio, socket, time or ``chaos``; time is ``now_ms``, advanced by the caller.
"""

from __future__ import annotations

import collections
import heapq
import random
from typing import Callable, Optional

from swarmnode.agent import frames

OnMessage = Callable[[str, dict], None]


def _counters() -> dict:
    return {"frames_in": 0, "frames_out": 0, "bad_frames": 0, "dropped_frames": 0,
            "connects": 0, "connect_failures": 0, "disconnects": 0, "handler_errors": 0,
            "inbound_refused": 0, "probes_answered": 0}


class _Conn:
    """One directed connection src -> dst: a decoder at dst and an epoch to invalidate it."""

    def __init__(self, src: Optional[str], epoch: int) -> None:
        self.src = src
        self.sender: Optional[str] = None
        self.decoder = frames.FrameDecoder()
        self.epoch = epoch
        self.alive = True


class SimTransport:
    """One node's endpoint. ``send`` queues; delivery happens as the network advances."""

    def __init__(self, net: "SimNetwork", node_id: str, on_message: OnMessage, queue_max: int) -> None:
        self.net = net
        self.node_id = node_id
        self.on_message = on_message
        self.queue_max = queue_max
        self.counters = _counters()
        self.queues: dict[str, collections.deque] = {}
        self.up = True

    def send(self, peer: str, msg: dict) -> bool:
        if not self.up or peer not in self.net.nodes:
            return False
        q = self.queues.setdefault(peer, collections.deque())
        if len(q) >= self.queue_max:
            q.popleft()
            self.counters["dropped_frames"] += 1
        q.append(frames.encode({"t": "m", "m": msg}))
        self.net._pump(self.node_id, peer)
        return True

    def probe(self, peer: str, timeout_ms: int, done: Callable[[Optional[float]], None]) -> None:
        """Echo over a fresh connection; ``done(rtt_ms or None)`` is called in virtual time."""
        self.net._probe(self.node_id, peer, timeout_ms, done)


class SimNetwork:
    """A deterministic network. ``advance(ms)`` / ``run_until(pred, max_ms)`` drive it."""

    def __init__(self, seed: int, latency_ms: tuple[int, int] = (1, 5), chunk_max: int = 9) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.latency_ms = latency_ms
        self.chunk_max = chunk_max
        self.now_ms = 0
        self.nodes: dict[str, SimTransport] = {}
        self.cuts: set[tuple[str, str]] = set()
        self._conns: dict[tuple[str, str], _Conn] = {}
        self._epoch = 0
        self._events: list = []
        self._n = 0
        self._link_busy_until: dict[tuple[str, str], int] = {}

    # -- topology -------------------------------------------------------------------------------
    def add(self, node_id: str, on_message: OnMessage, queue_max: int = 2048) -> SimTransport:
        t = SimTransport(self, node_id, on_message, queue_max)
        self.nodes[node_id] = t
        return t

    def cut(self, src: str, dst: str) -> None:
        """Refuse src -> dst connections (one direction only); breaks an open one."""
        self.cuts.add((src, dst))
        self._break(src, dst)

    def heal(self, src: str, dst: str) -> None:
        self.cuts.discard((src, dst))
        self._pump(src, dst)

    def crash(self, node_id: str) -> None:
        """Stop a node: its queues vanish and every connection to or from it breaks."""
        t = self.nodes[node_id]
        t.up = False
        t.queues.clear()
        for key in [k for k in self._conns if node_id in k]:
            self._break(*key)

    def restart(self, node_id: str, on_message: Optional[OnMessage] = None) -> SimTransport:
        t = self.nodes[node_id]
        t.up = True
        if on_message is not None:
            t.on_message = on_message
        for src in sorted(self.nodes):
            self._pump(src, node_id)
        return t

    # -- driving --------------------------------------------------------------------------------
    def advance(self, ms: int) -> None:
        end = self.now_ms + ms
        while self._events and self._events[0][0] <= end:
            at, _, fn = heapq.heappop(self._events)
            self.now_ms = max(self.now_ms, at)
            fn()
        self.now_ms = end

    def run_until(self, pred: Callable[[], bool], max_ms: int, step_ms: int = 1) -> bool:
        waited = 0
        while not pred():
            if waited >= max_ms:
                return False
            self.advance(step_ms)
            waited += step_ms
        return True

    def inject_raw(self, dst: str, chunks: list[bytes]) -> "_Conn":
        """Bytes from an anonymous new connection to ``dst``, arriving chunk by chunk, one per virtual
        millisecond. Returns the connection (`alive` turns False when ``dst`` drops it)."""
        self._epoch += 1
        conn = _Conn(None, self._epoch)
        t = self.now_ms
        for c in chunks:
            t += 1
            self._at(t, lambda c=c: self._receive(dst, conn, c))
        return conn

    # -- internals ------------------------------------------------------------------------------
    def _at(self, at_ms: int, fn: Callable[[], None]) -> None:
        self._n += 1
        heapq.heappush(self._events, (at_ms, self._n, fn))

    def _latency(self) -> int:
        return self.rng.randint(*self.latency_ms)

    def _break(self, src: str, dst: str) -> None:
        conn = self._conns.pop((src, dst), None)
        if conn is not None:
            conn.alive = False
            if src in self.nodes:
                self.nodes[src].counters["disconnects"] += 1

    def _connection(self, src: str, dst: str) -> Optional[_Conn]:
        conn = self._conns.get((src, dst))
        if conn is not None and conn.alive:
            return conn
        s, d = self.nodes[src], self.nodes[dst]
        if not s.up or not d.up or (src, dst) in self.cuts:
            s.counters["connect_failures"] += 1
            return None
        self._epoch += 1
        conn = self._conns[(src, dst)] = _Conn(src, self._epoch)
        s.counters["connects"] += 1
        self._ship(src, dst, conn, frames.encode(frames.hello(src)))
        return conn

    def _pump(self, src: str, dst: str) -> None:
        s = self.nodes.get(src)
        if s is None or not s.queues.get(dst):
            return
        conn = self._connection(src, dst)
        if conn is None:
            return
        q = s.queues[dst]
        while q:
            s.counters["frames_out"] += 1
            self._ship(src, dst, conn, q.popleft())

    def _ship(self, src: str, dst: str, conn: _Conn, data: bytes) -> None:
        """Split ``data`` into random chunks that arrive in order after a latency."""
        key = (src, dst)
        at = max(self.now_ms + self._latency(), self._link_busy_until.get(key, 0))
        i = 0
        while i < len(data):
            n = self.rng.randint(1, self.chunk_max)
            chunk = data[i:i + n]
            i += n
            self._at(at, lambda c=chunk: self._receive(dst, conn, c))
        self._link_busy_until[key] = at

    def _receive(self, dst: str, conn: _Conn, data: bytes) -> None:
        d = self.nodes[dst]
        if not conn.alive or not d.up:
            return
        try:
            for f in conn.decoder.feed(data):
                t = f.get("t")
                if t == "m" and conn.sender is not None and isinstance(f.get("m"), dict):
                    d.counters["frames_in"] += 1
                    try:
                        d.on_message(conn.sender, f["m"])
                    except Exception:
                        d.counters["handler_errors"] += 1
                elif t == "hello" and conn.sender is None and isinstance(f.get("from"), str):
                    conn.sender = f["from"]
                else:
                    raise frames.BadFrame(f"unexpected frame type {str(t)[:20]!r}")
        except frames.BadFrame:
            d.counters["bad_frames"] += 1
            conn.alive = False
            if conn.src is not None:
                self._conns.pop((conn.src, dst), None)

    def _probe(self, src: str, dst: str, timeout_ms: int, done: Callable) -> None:
        start = self.now_ms
        ok = (dst in self.nodes and self.nodes[src].up and self.nodes[dst].up
              and (src, dst) not in self.cuts)
        if not ok:
            self._at(start + timeout_ms, lambda: done(None))
            return
        rtt = self._latency() + self._latency()
        if rtt > timeout_ms:
            self._at(start + timeout_ms, lambda: done(None))
            return
        self.nodes[dst].counters["probes_answered"] += 1
        self._at(start + rtt, lambda: done(float(rtt)))
