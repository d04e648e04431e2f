"""The real inter-node transport: asyncio TCP with length-prefixed JSON frames.

Owns: the inbound server (one peer port), one outbound dialer per peer (reconnect with capped
exponential backoff and seeded jitter, bounded send queue that drops the oldest frame and counts it,
hello frame naming the sender), malformed-frame handling (counted in ``bad_frames``, connection
dropped), and the ``probe`` echo. The link rule (docs/contracts.md section 2) holds: every protocol
message for peer B leaves on a connection this node dialled to ``peers[B]``; an accepted connection
only ever carries ``probe_ack`` back.

Delivery is at most once and in order per connection; a message queued or in flight when a
connection fails may be lost. The cores tolerate that.

Must not import ``chaos``. Stdlib only.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
import time
from typing import Callable, Optional

from . import frames

log = logging.getLogger("swarmnode.transport")

MAX_INBOUND_CONNECTIONS = 1024
# Pending connections the kernel holds for the peer port before the agent accepts them (asyncio's
# default is 100). Every peer's link to this node arrives here (through its proxy), so while a
# 3 + 100 cluster comes up about 102 arrive at each node in a burst, at a moment when the agent's
# loop is starved; past the backlog the kernel drops them and the proxy's dial waits out TCP's
# retransmission backoff (seconds) with the sender's bytes held in the proxy.
LISTEN_BACKLOG = 1024
READ_CHUNK = 1 << 16
DRAIN_THRESHOLD_BYTES = 256 * 1024
BATCH_BYTES = 1 << 20
STALL_MIN_RATE_BPS = 1024  # slowest average rate at which a frame may arrive (slicer toxics are slow)

OnMessage = Callable[[str, dict], None]


LINK_STABLE_S = 1.0   # a connection this old is reported in the log as connected


def backoff_ms(attempt: int, min_ms: int, max_ms: int, rng: random.Random) -> float:
    """Delay before dial ``attempt`` (0-based): min * 2**attempt, jittered up to +50 %, capped at max."""
    base = min_ms * (2 ** min(attempt, 30))
    return min(float(max_ms), base * (1.0 + 0.5 * rng.random()))


def new_counters() -> dict:
    return {"frames_in": 0, "frames_out": 0, "bad_frames": 0, "dropped_frames": 0,
            "connects": 0, "connect_failures": 0, "disconnects": 0, "handler_errors": 0,
            "inbound_refused": 0, "probes_answered": 0, "redials": 0}


class _Link:
    """Outbound side for one peer: a bounded queue of encoded frames and a dialer task."""

    def __init__(self, owner: "TcpTransport", peer: str) -> None:
        self.owner = owner
        self.peer = peer
        self.queue: collections.deque[bytes] = collections.deque()
        self.wake = asyncio.Event()
        self.connected = False
        self.kick = False  # set when the address changed: drop the connection and redial now
        self.kicked = asyncio.Event()  # set with kick: wakes a write blocked on a full buffer
        # the peer's process instance we knew of when this connection was dialled (None: none
        # yet). A hello from any other instance means the dial may predate that process.
        self.dialled_for: Optional[str] = None
        self.conn = 0   # dial number of the current connection (told to the peer in our hello)
        self.task: Optional[asyncio.Task] = None
        # operator's log: a connection is reported once it has lasted LINK_STABLE_S, and its loss
        # only if it was reported, so a flapping link (a proxy that accepts, then closes because
        # its upstream is cut) costs no lines; retries in between are counted into the next line
        self._conn_started: Optional[float] = None
        self._up_logged = False
        self._down_since: Optional[float] = None
        self._attempts = 0

    def push(self, data: bytes) -> None:
        if len(self.queue) >= self.owner.queue_max:
            self.queue.popleft()
            self.owner.counters["dropped_frames"] += 1
            if self.owner.counters["dropped_frames"] in (1, 100, 10000):
                log.warning("send queue to %s full (%d): dropping oldest frames (total %d)",
                            self.peer, self.owner.queue_max, self.owner.counters["dropped_frames"])
        self.queue.append(data)
        self.wake.set()

    async def run(self) -> None:
        o = self.owner
        loop = asyncio.get_running_loop()
        attempt = 0
        while not o.closed:
            host, port = o.peers[self.peer]
            self._attempts += 1
            self.dialled_for = o._peer_instance.get(self.peer)
            self.conn += 1
            try:
                reader, writer = await asyncio.wait_for(o.dial(host, port), o.connect_timeout_ms / 1000)
            except (OSError, asyncio.TimeoutError):
                o.counters["connect_failures"] += 1
                await asyncio.sleep(backoff_ms(attempt, o.reconnect_min_ms, o.reconnect_max_ms,
                                               o.rng) / 1000)
                attempt += 1
                continue
            attempt = 0
            o.counters["connects"] += 1
            started = self._conn_started = loop.time()
            timer = loop.call_later(LINK_STABLE_S, self._log_stable, started, f"{host}:{port}")
            await self._pump(reader, writer)
            timer.cancel()
            o.counters["disconnects"] += 1
            if self._up_logged and not o.closed:
                log.info("link to %s lost after %.1f s", self.peer, loop.time() - started)
                self._up_logged = False
                self._down_since = loop.time()
                self._attempts = 0
            if not o.closed and not self.kick:
                await asyncio.sleep(backoff_ms(0, o.reconnect_min_ms, o.reconnect_max_ms, o.rng) / 1000)

    def _log_stable(self, started: float, addr: str) -> None:
        if not self.connected or self._conn_started != started:
            return
        self._up_logged = True
        if self._down_since is None:
            log.info("link to %s connected (%s)", self.peer, addr)
        else:
            log.info("link to %s connected again after %.1f s down (%d attempts)", self.peer,
                     asyncio.get_running_loop().time() - self._down_since, self._attempts)
        self._attempts = 0

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        o = self.owner
        dead = asyncio.Event()

        async def watch() -> None:
            # The peer never writes on our dialled connection; data or EOF both mean "drop it".
            try:
                await reader.read(1)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dead.set()
                self.wake.set()

        watcher = asyncio.ensure_future(watch())
        self.connected = True
        # a hello from a new instance that arrived while we were dialling: redial at once
        self.kick = o._peer_instance.get(self.peer) != self.dialled_for
        if self.kick:
            o.counters["redials"] += 1
        self.kicked.clear()
        try:
            writer.write(frames.encode(frames.hello(o.node_id, o.instance, self.conn,
                                                    o._heard.get(self.peer))))
            while not o.closed and not dead.is_set() and not self.kick:
                if not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                batch, size = [], 0
                while self.queue and size < BATCH_BYTES:
                    data = self.queue.popleft()
                    batch.append(data)
                    size += len(data)
                writer.write(b"".join(batch))
                o.counters["frames_out"] += len(batch)
                if writer.transport.get_write_buffer_size() > DRAIN_THRESHOLD_BYTES:
                    # bounded by the stall limit, and cut short by a kick: a connection whose
                    # peer stopped reading (a proxy still dialling a restarted peer) must not hold
                    # the link for the whole stall limit once we know a fresh dial will work
                    drain = asyncio.ensure_future(writer.drain())
                    kicked = asyncio.ensure_future(self.kicked.wait())
                    done, _ = await asyncio.wait({drain, kicked}, timeout=o.frame_stall_ms / 1000,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    kicked.cancel()
                    if drain not in done:
                        drain.cancel()
                        if self.kick:
                            break
                        raise asyncio.TimeoutError
                    drain.result()
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self.connected = False
            watcher.cancel()
            writer.close()


RESOLVE_TTL_S = 10.0   # a peer host name's address is looked up again after this long


class TcpTransport:
    """One node's transport. ``send`` never blocks; ``on_message(sender, msg)`` gets each message."""

    async def resolve(self, host: str) -> str:
        """The address to dial for `host`, looked up at most once per RESOLVE_TTL_S. Every dial used
        to resolve the name (a thread-pool job and, in a container, a query to the engine's DNS):
        100 workers redialling during a 3 + 100 bring-up made that a share of every worker's CPU.
        A failed lookup raises OSError (the dial fails and backs off) and is not cached."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        hit = self._resolved.get(host)
        if hit is not None and now - hit[1] < RESOLVE_TTL_S:
            return hit[0]
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        addr = infos[0][4][0]
        self._resolved[host] = (addr, now)
        return addr

    async def dial(self, host: str, port: int):
        return await asyncio.open_connection(await self.resolve(host), port)

    def __init__(self, node_id: str, peers: dict, on_message: OnMessage, *,
                 host: str = "0.0.0.0", port: int = 7000, queue_max: int = 2048,
                 reconnect_min_ms: int = 50, reconnect_max_ms: int = 1000,
                 connect_timeout_ms: int = 1000, frame_stall_ms: int = 5000,
                 rng: Optional[random.Random] = None, counters: Optional[dict] = None,
                 instance: Optional[str] = None) -> None:
        self.node_id = node_id
        # Told to peers in every hello. A peer that sees a new instance of us knows we restarted
        # and redials its own link to us (see _on_inbound).
        self.instance = instance
        self.peers = {p: tuple(a) for p, a in peers.items()}
        self.on_message = on_message
        self.host, self.port = host, port
        self.queue_max = queue_max
        self.reconnect_min_ms, self.reconnect_max_ms = reconnect_min_ms, reconnect_max_ms
        self.connect_timeout_ms = connect_timeout_ms
        self._resolved: dict[str, tuple[str, float]] = {}
        self.frame_stall_ms = frame_stall_ms
        self.rng = rng or random.Random(0)
        self.counters = counters if counters is not None else new_counters()
        for k, v in new_counters().items():
            self.counters.setdefault(k, v)
        self.closed = False
        self._links: dict[str, _Link] = {}
        self._server: Optional[asyncio.AbstractServer] = None
        self._inbound: set[asyncio.StreamWriter] = set()
        self._peer_instance: dict[str, str] = {}
        # per peer: (instance, dial number) of the last hello that reached us on its link to us,
        # repeated in our hellos to it: its proof that that connection delivers (_peer_restarted)
        self._heard: dict[str, tuple[str, int]] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_inbound, self.host, self.port,
                                                  reuse_address=True, backlog=LISTEN_BACKLOG)

    def send(self, peer: str, msg: dict) -> bool:
        """Queue ``msg`` for ``peer``; False (and nothing queued) if the peer has no address."""
        if self.closed or peer not in self.peers:
            return False
        link = self._links.get(peer)
        if link is None:
            link = self._links[peer] = _Link(self, peer)
            link.task = asyncio.ensure_future(link.run())
        link.push(frames.encode({"t": "m", "m": msg}))
        return True

    def set_peer_address(self, peer: str, addr: tuple) -> None:
        """Point ``peer`` at a new address; an open connection to the old one is dropped."""
        self.peers[peer] = tuple(addr)
        link = self._links.get(peer)
        if link is not None:
            link.kick = True
            link.kicked.set()
            link.wake.set()

    def _peer_restarted(self, peer: str, instance, seen=None) -> None:
        """A hello from a peer instance our link to it was not dialled for: the peer (re)started
        after we dialled. That link may be one dialled while the peer was down, whose bytes sit in
        a proxy still trying to reach it (a connect through Toxiproxy succeeds at once; the proxy's
        own upstream connect can hang in SYN retransmission for seconds). Drop it and dial again
        now (counted in `redials`). This covers a peer that restarted (a new instance of one we
        knew) and a peer we had never heard from, e.g. when we restarted too and dialled it before
        it came back: without the second case two managers restarted together waited a second or
        more for each other's frames.

        Unless the hello proves the link: `seen` names the (instance, dial number) of our hello
        that last reached the peer, and if that is our current connection, it delivers and is
        kept. The common case at start-up -- we dial a peer first (a gossip ping), it answers over
        a link it dials back, its hello saying it heard ours -- cost every such pair a second
        connection before: 5,558 of a 3 + 100 cluster's 15,843 connects were these redials."""
        if not isinstance(instance, str) or peer not in self.peers:
            return
        self._peer_instance[peer] = instance
        link = self._links.get(peer)
        if link is not None and link.connected and link.dialled_for != instance:
            if isinstance(seen, list) and seen == [self.instance, link.conn]:
                link.dialled_for = instance   # proven: this connection reached this instance
                return
            self.counters["redials"] += 1
            link.kick = True
            link.kicked.set()
            link.wake.set()

    def connected(self, peer: str) -> bool:
        link = self._links.get(peer)
        return bool(link and link.connected)

    async def probe(self, peer: str, timeout_ms: int) -> Optional[float]:
        """Dial a fresh connection to ``peers[peer]``, send a probe, await its echo; rtt ms or None."""
        if peer not in self.peers:
            return None
        host, port = self.peers[peer]
        nonce = self.rng.getrandbits(48)
        t0 = time.monotonic()
        writer = None

        async def go() -> float:
            nonlocal writer
            # the peer's name as dials resolve it (cached, `resolve`): a probe of its own used to ask
            # the engine's DNS each time, in the loop's small thread pool, where a burst of the
            # harness's heal probes on a busy host queued behind slow lookups past their timeouts
            reader, writer = await self.dial(host, port)
            writer.write(frames.encode({"t": "probe", "nonce": nonce, "from": self.node_id}))
            dec = frames.FrameDecoder()
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    raise ConnectionError("closed")
                for f in dec.feed(data):
                    if f.get("t") == "probe_ack" and f.get("nonce") == nonce:
                        return (time.monotonic() - t0) * 1000.0

        try:
            return await asyncio.wait_for(go(), timeout_ms / 1000)
        except (OSError, asyncio.TimeoutError, ConnectionError, frames.BadFrame):
            return None
        finally:
            if writer is not None:
                writer.close()

    async def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._inbound) >= MAX_INBOUND_CONNECTIONS or self.closed:
            self.counters["inbound_refused"] += 1
            writer.close()
            return
        self._inbound.add(writer)
        dec = frames.FrameDecoder()
        sender: Optional[str] = None
        stall = self.frame_stall_ms / 1000
        loop = asyncio.get_running_loop()
        partial_since: Optional[float] = None
        try:
            while not self.closed:
                if dec.pending_bytes:
                    # A partial frame may not sit in silence for the stall bound, nor take longer
                    # overall than the stall bound plus its size at STALL_MIN_RATE_BPS (a black-
                    # holed stream, or one trickling into a bogus length, otherwise hangs).
                    if partial_since is None:
                        partial_since = loop.time()
                    budget = stall + dec.expected_bytes / STALL_MIN_RATE_BPS
                    remaining = partial_since + budget - loop.time()
                    if remaining <= 0:
                        raise asyncio.TimeoutError
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), min(stall, remaining))
                else:
                    partial_since = None
                    data = await reader.read(READ_CHUNK)
                if not data:
                    return
                got = dec.feed(data)
                if got:
                    partial_since = None
                for f in got:
                    t = f.get("t")
                    if t == "m" and sender is not None and isinstance(f.get("m"), dict):
                        self.counters["frames_in"] += 1
                        self._deliver(sender, f["m"])
                    elif t == "hello" and sender is None and isinstance(f.get("from"), str):
                        sender = f["from"]
                        if isinstance(f.get("inst"), str) and isinstance(f.get("c"), int):
                            self._heard[sender] = (f["inst"], f["c"])
                        self._peer_restarted(sender, f.get("inst"), f.get("seen"))
                    elif t == "probe":
                        self.counters["probes_answered"] += 1
                        writer.write(frames.encode({"t": "probe_ack", "nonce": f.get("nonce")}))
                    else:
                        raise frames.BadFrame(f"unexpected frame type {str(t)[:20]!r}")
        except frames.BadFrame as exc:
            self.counters["bad_frames"] += 1
            log.info("bad frame from %s: %s; dropping connection", sender or "?", exc)
        except asyncio.TimeoutError:
            self.counters["bad_frames"] += 1
            log.info("partial frame from %s stalled %.1fs; dropping connection", sender or "?", stall)
        except (OSError, ConnectionError):
            pass
        finally:
            self._inbound.discard(writer)
            writer.close()

    def _deliver(self, sender: str, msg: dict) -> None:
        try:
            self.on_message(sender, msg)
        except Exception:  # a handler bug must not take the connection or the node down
            self.counters["handler_errors"] += 1
            log.exception("message handler failed for a message from %s", sender)

    async def close(self) -> None:
        self.closed = True
        if self._server is not None:
            self._server.close()
        for link in self._links.values():
            link.wake.set()
            if link.task is not None:
                link.task.cancel()
        for w in list(self._inbound):
            w.close()
        tasks = [l.task for l in self._links.values() if l.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
