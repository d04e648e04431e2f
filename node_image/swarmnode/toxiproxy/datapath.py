"""TCP data path of the Toxiproxy-compatible server: listeners, connections, links, toxic stages.

Owns: binding a proxy's listen address (with Go-like error texts), accepting clients, dialling the
upstream on accept, and moving bytes through two links per connection (upstream = client->server,
downstream = server->client). A link without toxics copies straight from one transport to the other
(flow control by pause_reading/resume_reading); a link with toxics runs one asyncio task per toxic
stage, chained by queues, mirroring the real server's toxic chain (see shared toxiproxy-api.md 2.x).
Must not import aiohttp or `chaos`.

Ordering contract of a link: every byte leaves in the order it arrived; a stage that is interrupted
(toxic added next to it, updated, removed) hands the chunk it holds to its output at once; the end
of a direction (EOF) travels through the stages like data and, at the sink, closes the destination
socket fully and ends the other direction (half-close is not propagated, as in the real server).
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import ipaddress
import itertools
import os
import random
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

CHUNK = 32 * 1024          # toxics act on chunks of at most this size (the real server reads 32 KiB)
HIGH_WATER = 256 * 1024    # bytes queued inside a link's toxic stages before the source is paused
LOW_WATER = 64 * 1024      # ... and resumed
DIAL_TIMEOUT_S = 30.0      # bound on dialling the upstream of one accepted connection
EOF = None                 # end-of-direction marker travelling through a link
RESOLVER_THREADS = 64      # name lookups for upstream dials (see resolve_upstream)
# A name's answer is reused for this long by later dials of any proxy (see resolve_upstream). A
# failed dial to a reused answer forgets it, so the next dial looks the name up again.
RESOLVE_TTL_S = 5.0

# Chunk timestamps and toxic deadlines use the monotonic clock at full resolution: uvloop's
# loop.time() is cached per loop iteration in whole milliseconds, which alone put up to 1 ms of
# error on a latency toxic.
now = time.monotonic


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc_timerfd():
    """libc's timerfd_create/timerfd_settime, or None where there are none (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None


_TIMERFD = _libc_timerfd()
_CLOCK_MONOTONIC, _TFD_NONBLOCK, _TFD_CLOEXEC, _TFD_TIMER_ABSTIME = 1, 0o4000, 0o2000000, 1


class PreciseTimer:
    """Wakes futures of one event loop at monotonic deadlines with sub-millisecond precision.

    Event-loop timers have millisecond granularity (libuv's, and the epoll timeout that CPython's
    selector rounds up), so a 20 ms latency toxic came out up to 2 ms late. Here one Linux timerfd,
    armed at the earliest deadline of a heap and watched by the loop like any socket, wakes the loop
    on the kernel's high-resolution timer (measured on this VM: 0.13 ms late at p50, 0.22 ms at p99,
    against 0.22 / 1.05 ms for asyncio.sleep under uvloop). Without timerfd it falls back to the
    loop's own timer. A cancelled future is skipped when its deadline comes."""

    def __init__(self, loop):
        self.loop = loop
        self.heap: list = []
        self.seq = itertools.count()
        self.fd = -1
        self.armed = None
        if _TIMERFD is not None:
            fd = _TIMERFD[0](_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd >= 0:
                self.fd = fd
                loop.add_reader(fd, self._fire)
        self.handle = None

    def sleep_until(self, deadline: float) -> asyncio.Future:
        fut = self.loop.create_future()
        heapq.heappush(self.heap, (deadline, next(self.seq), fut))
        if self.heap[0][2] is fut:
            self._arm(deadline)
        return fut

    def _arm(self, deadline: float) -> None:
        self.armed = deadline
        if self.fd >= 0:
            sec = int(deadline)
            spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, int((deadline - sec) * 1e9)))
            if _TIMERFD[1](self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) == 0:
                return
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.loop.call_later(max(0.0, deadline - now()), self._fire)

    def _fire(self) -> None:
        if self.fd >= 0:
            try:
                os.read(self.fd, 8)
            except (BlockingIOError, InterruptedError):
                pass
        heap = self.heap
        t = now()
        while heap and heap[0][0] <= t:
            fut = heapq.heappop(heap)[2]
            if not fut.done():
                fut.set_result(None)
        while heap and heap[0][2].done():   # cancelled sleepers at the front
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])
        else:
            self.armed = None

    def close(self) -> None:
        if self.fd >= 0:
            if not self.loop.is_closed():
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if self.handle is not None:
            self.handle.cancel()


_timers: dict = {}   # loop -> its PreciseTimer; entries of closed loops are dropped on the next call


def timer_for(loop) -> PreciseTimer:
    t = _timers.get(loop)
    if t is None:
        for old in [lp for lp in _timers if lp.is_closed()]:
            _timers.pop(old).close()
        t = _timers[loop] = PreciseTimer(loop)
    return t


async def sleep_until(loop, deadline: float) -> None:
    """Sleep until the monotonic `deadline`, precisely (see PreciseTimer)."""
    if deadline > now():
        await timer_for(loop).sleep_until(deadline)


class ListenError(Exception):
    """A listen address could not be parsed, resolved or bound; str() is Go's error text."""


# ---------------------------------------------------------------------------------------------
# Addresses

def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, raising ValueError with Go's reason."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        host = hostport[1:end]
        rest = hostport[end + 1:]
        if not rest.startswith(":"):
            raise ValueError("missing port in address")
        port = rest[1:]
        if ":" in port:
            raise ValueError("too many colons in address")
        return host, port
    idx = hostport.rfind(":")
    if idx < 0:
        raise ValueError("missing port in address")
    host, port = hostport[:idx], hostport[idx + 1:]
    if ":" in host:
        raise ValueError("too many colons in address")
    return host, port


def _parse_port(port: str) -> int:
    if port == "":
        return 0
    if port.isdigit():
        p = int(port)
        if p > 65535:
            raise ValueError("invalid port")
        return p
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise ValueError("unknown port") from None


def format_addr(ip: str, port: int, wildcard: bool = False) -> str:
    if wildcard:
        return f"[::]:{port}"
    if ":" in ip:
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


def resolve_listen(listen: str) -> tuple[bool, str, int]:
    """Resolve a listen string to (wildcard, ip, port) or raise ListenError (Go's message)."""
    if listen == "":
        return True, "", 0
    try:
        host, port_s = split_host_port(listen)
        port = _parse_port(port_s)
    except ValueError as exc:
        raise ListenError(f"listen tcp: address {listen}: {exc}") from None
    if host in ("", "0.0.0.0", "::"):
        return True, "", port
    try:
        if ":" in host:
            ip = str(ipaddress.ip_address(host.split("%")[0]))
        else:
            socket.inet_aton(host)
            if host.count(".") != 3:
                raise ValueError(host)
            ip = host
    except (ValueError, OSError):
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise ListenError(f"listen tcp: lookup {host}: no such host") from None
        v4 = [i for i in infos if i[0] == socket.AF_INET]
        ip = (v4 or infos)[0][4][0]
    return False, ip, port


def same_listen(current: str, new: str) -> bool:
    """True when `new` names the address `current` already is (a `:0` port always differs)."""
    try:
        a = resolve_listen(current)
        b = resolve_listen(new)
    except ListenError:
        return False
    if b[2] == 0 or a[2] == 0:
        return False
    return a == b


def open_listen_socket(listen: str) -> tuple[socket.socket, str]:
    """Bind and listen; return the socket and the bound address as the real server reports it."""
    wildcard, ip, port = resolve_listen(listen)
    if wildcard:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            bind_ip = "::"
        except OSError:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            bind_ip = "0.0.0.0"
        shown = f":{port}"
    else:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        bind_ip = ip
        shown = format_addr(ip, port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind_ip, port))
        sock.listen(4096)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"listen tcp {shown}: bind: {reason[:1].lower()}{reason[1:]}") from None
    bound_port = sock.getsockname()[1]
    return sock, format_addr(ip, bound_port, wildcard)


# ---------------------------------------------------------------------------------------------
# Connections

_resolver: ThreadPoolExecutor | None = None
_resolved: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}


def forget_upstream(host: str, port: int) -> None:
    """Drop a reused answer for host:port (its dial failed: the name may point elsewhere now)."""
    _resolved.pop((host, port), None)


async def resolve_upstream(loop, host: str, port: int) -> list[tuple[int, str]]:
    """The upstream's addresses, (family, ip) in the resolver's order, duplicates dropped.

    Lookups run in a pool of their own with many threads, one per lookup in flight, so that one
    slow lookup delays only its own dial. Measured in Docker: a lookup of a container's name made
    while the engine kills that container gets no answer from the embedded DNS server and returns
    after the resolver's 5 s timeout. With the event loop's shared pool (libuv's: 4 threads under
    uvloop) four such lookups froze every dial of every proxy for those 5 s, the links to live
    nodes included, and a manager restarted 2 s after a kill was heard from 3 s late."""
    global _resolver
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
        return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, host)]
    except ValueError:
        pass
    # A successful answer is reused for RESOLVE_TTL_S. Every accepted connection dials its upstream,
    # and each lookup was a thread job plus a query to the engine's embedded DNS: a 3 + 100 cluster
    # opens about 10,500 links while it comes up, and the lookups queued behind a busy engine, so
    # clients' bytes waited in the proxy for seconds (late heartbeats and acks, false DOWNs and
    # suspicions). The real server resolves per dial; a node keeps its address across restarts
    # here (chaos/env/up.py), and a dial that fails forgets the answer (forget_upstream).
    now = time.monotonic()
    hit = _resolved.get((host, port))
    if hit is not None and now - hit[0] < RESOLVE_TTL_S:
        return hit[1]
    if _resolver is None:
        _resolver = ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="resolve")
    try:
        infos = await loop.run_in_executor(_resolver, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(exc.errno, exc.strerror) from None
    out: list[tuple[int, str]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if (family, sockaddr[0]) not in out:
            out.append((family, sockaddr[0]))
    if out:
        _resolved[(host, port)] = (time.monotonic(), out)
    return out


class Conn:
    """One accepted client connection and its dialled upstream; two links."""

    __slots__ = ("proxy", "client", "server", "rng", "up", "down", "closed", "loop")

    def __init__(self, proxy, client_tr, loop):
        self.proxy = proxy
        self.loop = loop
        self.client = client_tr
        self.server = None
        # Per-connection draws, taken deterministically from the server's seeded generator.
        self.rng = random.Random(proxy.rng.getrandbits(64))
        self.closed = False
        self.up = Link(self, "upstream")
        self.down = Link(self, "downstream")
        self.up.src = client_tr
        self.down.dst = client_tr
        self.up.dst_paused = True       # nothing to write to until the upstream is dialled
        self.up.src_paused = True
        client_tr.pause_reading()
        # toxic stages start at accept time (toxicity drawn now), in stream order
        for toxic in proxy.toxics_for("upstream"):
            self.up.append_stage(toxic)
        for toxic in proxy.toxics_for("downstream"):
            self.down.append_stage(toxic)

    def other(self, link):
        return self.down if link is self.up else self.up

    async def dial(self, upstream: str):
        try:
            host, port_s = split_host_port(upstream)
            port = _parse_port(port_s)
            await asyncio.wait_for(self._connect(host or "localhost", port), DIAL_TIMEOUT_S)
        except (OSError, ValueError, asyncio.TimeoutError) as exc:
            self.proxy.server.log("error", "Unable to open connection to upstream", name=self.proxy.name,
                                  upstream=upstream, error=str(exc) or type(exc).__name__)
            self.close()

    async def _connect(self, host: str, port: int):
        addrs = await resolve_upstream(self.loop, host, port)
        last: Exception = OSError(f"no address for {host}")
        try:
            for family, addr in addrs:  # in the resolver's order, like the real server's dialer
                try:
                    await self.loop.create_connection(lambda: ServerSide(self), addr, port, family=family)
                    return
                except OSError as exc:
                    last = exc
        except BaseException:   # the dial's deadline (cancelled): the answer may be stale too
            forget_upstream(host, port)
            raise
        forget_upstream(host, port)
        raise last

    def dialled(self, tr):
        if self.closed:
            tr.close()
            return
        self.server = tr
        self.up.dst = tr
        self.down.src = tr
        self.up.flush_pending()
        self.up.dst_resumed()

    def maybe_done(self):
        if self.up.done and self.down.done and not self.closed:
            self._teardown()

    def _teardown(self):
        self.closed = True
        for link in (self.up, self.down):
            link.done = True
            for st in link.stages:
                st.stop()
        self.proxy.conn_ended(self)

    def close(self):
        """Close both sockets with a normal FIN (proxy disabled, deleted or restarted)."""
        if self.closed:
            return
        for tr in (self.client, self.server):
            if tr is not None:
                tr.close()
        self._teardown()

    def reset(self):
        """Close both sockets with an RST (reset_peer)."""
        if self.closed:
            return
        for tr in (self.client, self.server):
            if tr is not None:
                sock = tr.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                tr.abort()
        self._teardown()


class Link:
    """One direction of a connection: source transport -> toxic stages -> destination transport."""

    __slots__ = ("conn", "direction", "src", "dst", "stages", "eof", "done", "inflight",
                 "dst_paused", "src_paused", "rx", "tx", "pending", "finish_on_dial")

    def __init__(self, conn: Conn, direction: str):
        self.conn = conn
        self.direction = direction
        self.src = None
        self.dst = None
        self.stages: list[Stage] = []
        self.eof = False
        self.done = False
        self.inflight = 0
        self.dst_paused = False
        self.src_paused = False
        self.rx = 0
        self.tx = 0
        # Bytes that reached the destination side before the upstream dial completed. Reading is
        # paused until then, but an event loop may deliver a read already under way (uvloop does).
        self.pending: list[bytes] = []
        self.finish_on_dial = False

    def _write_dst(self, data) -> None:
        if self.dst is None:
            self.pending.append(bytes(data))
            return
        if not self.dst.is_closing():
            self.tx += len(data)
            self.dst.write(data)

    def flush_pending(self) -> None:
        """Called once the destination exists: deliver what arrived early, then a deferred close."""
        pending, self.pending = self.pending, []
        for data in pending:
            self._write_dst(data)
        if self.finish_on_dial:
            self.finish_on_dial = False
            self.done = False
            self.finish()

    # -- input side
    def feed(self, data: bytes):
        self.rx += len(data)
        if self.done:
            return
        if not self.stages:
            self._write_dst(data)
            return
        t = now()
        q = self.stages[0].queue
        self.inflight += len(data)
        if len(data) <= CHUNK:
            q.put_nowait((data, t))
        else:
            mv = memoryview(data)
            for i in range(0, len(data), CHUNK):
                q.put_nowait((bytes(mv[i:i + CHUNK]), t))
        if self.inflight >= HIGH_WATER and not self.src_paused:
            self.src_paused = True
            self.src.pause_reading()

    def feed_eof(self):
        if self.eof:
            return
        self.eof = True
        if self.done:
            return
        if not self.stages:
            self.finish()
        else:
            self.stages[0].queue.put_nowait(EOF)

    # -- output side (sink)
    def emit(self, item):
        if item is EOF:
            self.finish()
            return
        data = item[0]
        self.inflight -= len(data)
        if not self.done and data:
            self._write_dst(data)
        if self.src_paused:
            self._maybe_resume()

    def discard(self, nbytes: int):
        """Bytes dropped by a toxic (timeout, limit_data, reset_peer) leave the in-flight count."""
        self.inflight -= nbytes
        if self.src_paused:
            self._maybe_resume()

    def finish(self):
        """This direction ended: close the destination fully and end the other direction."""
        if self.done:
            return
        self.done = True
        conn = self.conn
        if self.dst is not None:
            self.dst.close()
        elif self.pending and not conn.closed:
            self.finish_on_dial = True   # deliver the early bytes first (dialled() finishes us)
            return
        else:
            conn.close()
            return
        conn.other(self).feed_eof()
        conn.maybe_done()

    # -- flow control
    def dst_paused_now(self):
        self.dst_paused = True
        if not self.src_paused and self.src is not None:
            self.src_paused = True
            self.src.pause_reading()

    def dst_resumed(self):
        self.dst_paused = False
        self._maybe_resume()

    def _maybe_resume(self):
        if self.src_paused and not self.dst_paused and self.inflight <= LOW_WATER and self.src is not None:
            self.src_paused = False
            self.src.resume_reading()

    # -- stage list changes (the real server's AddToxic / UpdateToxic / RemoveToxic)
    def _wire(self):
        stages = self.stages
        for i, st in enumerate(stages):
            st.out = stages[i + 1].queue.put_nowait if i + 1 < len(stages) else self.emit

    def append_stage(self, toxic):
        st = Stage(self, toxic)
        prev = self.stages[-1] if self.stages else None
        if prev is not None:
            prev.interrupt()
        self.stages.append(st)
        self._wire()
        if prev is not None:
            prev.start()
        st.start()

    def update_stage(self, toxic):
        for st in self.stages:
            if st.toxic is toxic:
                st.interrupt()
                st.start()
                return

    def remove_stage(self, toxic):
        for i, st in enumerate(self.stages):
            if st.toxic is toxic:
                break
        else:
            return
        prev = self.stages[i - 1] if i > 0 else None
        q = st.queue
        if toxic.type == "timeout" and st.active:
            # an applied timeout drops all data in its direction (spec 2.2): chunks that reached its
            # queue but were not yet taken by its coroutine are dropped too, not passed on by the
            # removal (which made "held" arrive when /reset came within a loop iteration of it)
            while not q.empty():
                item = q.get_nowait()
                if item is EOF:
                    q.put_nowait(EOF)
                    break
                self.discard(len(item[0]))
        if prev is not None:
            prev.interrupt()            # its held chunk goes into the removed stage's queue
        st.interrupt()                  # the removed stage's held chunk goes on to its output
        while not q.empty():
            st.out(q.get_nowait())
        if toxic.type == "timeout":
            st.out(EOF)                 # removing a timeout closes the connection (spec 2.2)
        del self.stages[i]
        self._wire()
        if prev is not None:
            prev.start()


class Stage:
    """One toxic on one link. Survives restarts (its queue and per-connection state persist)."""

    __slots__ = ("link", "toxic", "queue", "task", "held", "out", "sent", "timer", "active")

    def __init__(self, link: Link, toxic):
        self.link = link
        self.toxic = toxic
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = None
        self.held = None
        self.out = None
        self.sent = 0          # limit_data: bytes delivered on this connection, kept across restarts
        self.timer = None
        self.active = False    # toxicity drawn true at the last start

    def start(self):
        """Start (or restart) the stage: toxicity is drawn now, for this connection and direction."""
        if self.link.done:
            return
        toxic = self.toxic
        active = self.active = self.link.conn.rng.random() < toxic.toxicity
        behave = BEHAVIOURS[toxic.type] if active else _noop
        self.task = self.link.conn.loop.create_task(behave(self, toxic))

    def interrupt(self):
        """Stop the behaviour synchronously; a chunk it was holding is sent on at once."""
        self.stop()
        held, self.held = self.held, None
        if held is _HELD_EOF:
            self.out(EOF)
        elif held is not None:
            self.out(held)

    def stop(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None:
            self.task.cancel()
            self.task = None


_HELD_EOF = object()


# ---------------------------------------------------------------------------------------------
# Toxic behaviours: coroutines over one stage. A chunk taken from the queue is either emitted,
# discarded, or stored in stage.held before any await, so interrupt() can hand it on.

async def _noop(st: Stage, toxic):
    q = st.queue
    while True:
        item = await q.get()
        if item is EOF:
            st.out(EOF)
            return
        st.out((item[0], now()))


async def _latency(st: Stage, toxic):
    q = st.queue
    loop = st.link.conn.loop
    rng = st.link.conn.rng
    latency = toxic.attr("latency")
    jitter = toxic.attr("jitter")
    while True:
        item = await q.get()
        if item is EOF:
            st.out(EOF)
            return
        delay = latency
        if jitter > 0:
            delay += rng.randrange(-jitter, jitter)
        deadline = item[1] + delay / 1000.0
        if deadline > now():
            st.held = item
            await sleep_until(loop, deadline)
            st.held = None
        st.out((item[0], now()))


async def _bandwidth(st: Stage, toxic):
    q = st.queue
    rate = toxic.attr("rate")
    debt = 0.0
    while True:
        item = await q.get()
        if item is EOF:
            st.out(EOF)
            return
        if rate <= 0:
            st.out((item[0], now()))
            continue
        data = item[0]
        st.held = item
        debt += len(data) / (rate * 1000.0)
        piece = rate * 100
        while len(data) > piece:
            await asyncio.sleep(0.1)
            st.out((data[:piece], now()))
            data = data[piece:]
            st.held = (data, item[1])
            debt -= 0.1
        start = now()
        if debt > 0:
            await asyncio.sleep(debt)
        debt -= now() - start
        st.held = None
        st.out((data, now()))


async def _slow_close(st: Stage, toxic):
    q = st.queue
    delay = toxic.attr("delay")
    while True:
        item = await q.get()
        if item is EOF:
            if delay > 0:
                st.held = _HELD_EOF
                await asyncio.sleep(delay / 1000.0)
                st.held = None
            st.out(EOF)
            return
        st.out((item[0], now()))


async def _timeout(st: Stage, toxic):
    """Drop everything; close `timeout` ms after the last chunk that reached the toxic, or after the
    stage started if none has since (spec 2.2: the real server arms a fresh timer on every pass of
    its loop, so each arriving chunk, dropped as it is, restarts the countdown)."""
    q = st.queue
    link = st.link
    loop = link.conn.loop
    timeout = toxic.attr("timeout")
    task = asyncio.current_task()
    if timeout > 0:
        st.timer = loop.call_later(timeout / 1000.0, _timeout_fire, st, task)
    while True:
        item = await q.get()
        if item is EOF:
            break
        link.discard(len(item[0]))
        if st.timer is not None:
            st.timer.cancel()
            st.timer = loop.call_later(timeout / 1000.0, _timeout_fire, st, task)
    if st.timer is not None:
        st.timer.cancel()
        st.timer = None
    st.out(EOF)


def _timeout_fire(st: Stage, task):
    if st.task is not task:
        return
    st.timer = None
    st.task = None
    task.cancel()
    st.out(EOF)


async def _reset_peer(st: Stage, toxic):
    q = st.queue
    link = st.link
    timeout = toxic.attr("timeout")
    item = await q.get()
    if item is not EOF:
        link.discard(len(item[0]))
    if timeout > 0:
        await asyncio.sleep(timeout / 1000.0)
    link.conn.reset()


def slice_sizes(n: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Split n bytes by recursive halving into pieces of about `average` bytes (iterative, in order)."""
    if average <= 0 or n <= average:
        return [n]
    out: list[int] = []
    stack = [n]
    while stack:
        size = stack.pop()
        if size <= average or size < 2:
            out.append(size)
            continue
        mid = size // 2
        if variation > 0:
            mid += rng.randrange(-variation, variation)
        mid = min(max(mid, 1), size - 1)
        stack.append(size - mid)
        stack.append(mid)
    return out


async def _slicer(st: Stage, toxic):
    q = st.queue
    loop = st.link.conn.loop
    rng = st.link.conn.rng
    average = toxic.attr("average_size")
    variation = toxic.attr("size_variation")
    delay_s = toxic.attr("delay") / 1e6
    while True:
        item = await q.get()
        if item is EOF:
            st.out(EOF)
            return
        data = item[0]
        sizes = slice_sizes(len(data), average, variation, rng)
        if len(sizes) == 1:
            st.out((data, now()))
            continue
        off = 0
        last = len(sizes) - 1
        for k, size in enumerate(sizes):
            piece = data[off:off + size]
            off += size
            st.held = (data[off:], item[1]) if k < last else None
            st.out((piece, now()))
            if k < last and delay_s > 0:
                await sleep_until(loop, now() + delay_s)
        st.held = None


async def _limit_data(st: Stage, toxic):
    q = st.queue
    link = st.link
    limit = toxic.attr("bytes")
    while True:
        if limit - st.sent <= 0 and st.sent > 0:
            st.out(EOF)
            return
        item = await q.get()
        if item is EOF:
            st.out(EOF)
            return
        data = item[0]
        remaining = max(0, limit - st.sent)
        if remaining < len(data):
            link.discard(len(data) - remaining)
            data = data[:remaining]
        if data:
            st.sent += len(data)
            st.out((data, now()))
        if limit - st.sent <= 0:
            st.out(EOF)
            return


BEHAVIOURS = {
    "noop": _noop,
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slow_close": _slow_close,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}


# ---------------------------------------------------------------------------------------------
# Protocols

READ_BUF = 1024 * 1024
_shared = [None]   # one read buffer for the whole event loop (reads are handled synchronously)
_copying_write = [False]   # True when transport.write() never keeps a reference to its argument


def configure_for_loop(loop) -> None:
    """CPython <= 3.11's selector transport copies unsent bytes into its own buffer; 3.12+ and uvloop
    may keep a reference to the caller's memory, so there the shared read buffer must be replaced
    whenever a write is left pending."""
    import sys
    _copying_write[0] = sys.version_info < (3, 12) and type(loop).__module__.startswith("asyncio")


class _Reader(asyncio.BufferedProtocol):
    """Reads into one shared buffer. On a link without toxics the bytes go straight to the other
    transport's write(): the buffer itself where write() copies what it cannot send at once
    (CPython <= 3.11's selector loop), else a copy of just the bytes read. A link with toxics, or
    one whose upstream is still being dialled, gets its own copy of the bytes."""

    __slots__ = ()

    def get_buffer(self, sizehint):
        buf = _shared[0]
        if buf is None:
            buf = _shared[0] = memoryview(bytearray(READ_BUF))
        return buf

    def _forward(self, link, nbytes):
        buf = _shared[0]
        if link.stages or link.done or link.dst is None:
            link.feed(bytes(buf[:nbytes]))
            return
        link.rx += nbytes
        dst = link.dst
        if not dst.is_closing():
            link.tx += nbytes
            if _copying_write[0]:
                dst.write(buf[:nbytes])
            else:
                # uvloop / 3.12+ may keep a reference to unsent memory: hand them a copy of just
                # these bytes. (Swapping out the shared 1 MiB buffer instead pinned 1 MiB per
                # connection with a pending write: 2 GiB and an OOM kill at 3 managers + 50 workers.)
                dst.write(bytes(buf[:nbytes]))


class ClientSide(_Reader):
    """The accepted client socket: source of the upstream link, destination of the downstream one."""

    __slots__ = ("proxy", "conn")

    def __init__(self, proxy):
        self.proxy = proxy
        self.conn = None

    def connection_made(self, transport):
        self.conn = self.proxy.conn_started(transport)

    def buffer_updated(self, nbytes):
        self._forward(self.conn.up, nbytes)

    def eof_received(self):
        self.conn.up.feed_eof()
        return True

    def connection_lost(self, exc):
        conn = self.conn
        if conn is not None:
            conn.up.feed_eof()

    def pause_writing(self):
        self.conn.down.dst_paused_now()

    def resume_writing(self):
        self.conn.down.dst_resumed()


class ServerSide(_Reader):
    """The dialled upstream socket: source of the downstream link, destination of the upstream one."""

    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def connection_made(self, transport):
        self.conn.dialled(transport)

    def buffer_updated(self, nbytes):
        self._forward(self.conn.down, nbytes)

    def eof_received(self):
        self.conn.down.feed_eof()
        return True

    def connection_lost(self, exc):
        self.conn.down.feed_eof()

    def pause_writing(self):
        self.conn.up.dst_paused_now()

    def resume_writing(self):
        self.conn.up.dst_resumed()
