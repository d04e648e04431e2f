"""Transport conformance suite: the same tests against the simulated and the real asyncio transport.

Each test gets ``net``, an adaptor with one small interface (add / send / wait / inbox / cut / heal /
stop / start / raw / probe / counters) over either ``swarmnode.sim.transport.SimNetwork`` (virtual
time) or ``swarmnode.agent.transport.TcpTransport`` on loopback (wall time, bounded waits).
"""

from __future__ import annotations

import asyncio
import random
import struct

import pytest

from swarmnode.agent import frames
from swarmnode.agent.localcluster import free_ports
from swarmnode.agent.transport import TcpTransport, backoff_ms
from swarmnode.sim.transport import SimNetwork

SEED = 20261128


def free_port() -> int:
    return free_ports(1)[0]  # below the ephemeral range: no TCP self-connect while polling


class SimAdaptor:
    kind = "sim"

    def __init__(self, seed: int) -> None:
        self.net = SimNetwork(seed)
        self.boxes: dict[str, list] = {}
        self.queue_max = 2048

    def add(self, node: str, queue_max: int = 2048) -> None:
        box = self.boxes.setdefault(node, [])
        self.net.add(node, lambda s, m, box=box: box.append((s, m)), queue_max)

    def send(self, a: str, b: str, msg: dict) -> None:
        self.net.nodes[a].send(b, msg)

    def wait(self, pred, timeout_s: float = 5.0) -> bool:
        return self.net.run_until(pred, int(timeout_s * 1000))

    def settle(self, ms: int = 200) -> None:
        self.net.advance(ms)

    def inbox(self, node: str) -> list:
        return self.boxes[node]

    def counters(self, node: str) -> dict:
        return self.net.nodes[node].counters

    def cut(self, a: str, b: str) -> None:
        self.net.cut(a, b)

    def heal(self, a: str, b: str) -> None:
        self.net.heal(a, b)

    def stop(self, node: str) -> None:
        self.net.crash(node)

    def start(self, node: str) -> None:
        self.net.restart(node)

    def raw(self, dst: str, chunks: list[bytes], until_closed: bool = False) -> bool | None:
        """Send raw bytes on a new connection; return once ``dst`` has consumed every chunk (virtual
        time: one chunk per ms). With ``until_closed``: whether ``dst`` dropped the connection."""
        conn = self.net.inject_raw(dst, chunks)
        self.net.advance(len(chunks) + 1)
        return (not conn.alive) if until_closed else None

    def probe(self, a: str, b: str, timeout_ms: int):
        out = []
        self.net.nodes[a].probe(b, timeout_ms, out.append)
        self.net.run_until(lambda: out, timeout_ms + 10)
        return out[0]

    def close(self) -> None:
        pass


class TcpAdaptor:
    kind = "tcp"

    def __init__(self, seed: int, frame_stall_ms: int = 3000) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.frame_stall_ms = frame_stall_ms
        self.seed = seed
        self.ports: dict[str, int] = {}
        self.nodes: dict[str, TcpTransport] = {}
        self.boxes: dict[str, list] = {}
        self.qmax: dict[str, int] = {}
        self.cuts: set = set()

    def _addr(self, a: str, b: str):
        return ("127.0.0.1", 1) if (a, b) in self.cuts else ("127.0.0.1", self.ports[b])

    def _make(self, node: str) -> TcpTransport:
        box = self.boxes[node]
        peers = {p: self._addr(node, p) for p in self.ports if p != node}
        t = TcpTransport(node, peers, lambda s, m: box.append((s, m)), host="127.0.0.1",
                         port=self.ports[node], queue_max=self.qmax[node], reconnect_min_ms=10,
                         reconnect_max_ms=100, connect_timeout_ms=500, frame_stall_ms=self.frame_stall_ms,
                         rng=random.Random(self.seed))
        self.loop.run_until_complete(t.start())
        return t

    def add(self, node: str, queue_max: int = 2048) -> None:
        self.ports[node] = free_port()
        self.boxes[node] = []
        self.qmax[node] = queue_max
        for other, t in self.nodes.items():
            t.set_peer_address(node, self._addr(other, node))
        self.nodes[node] = self._make(node)

    def send(self, a: str, b: str, msg: dict) -> None:
        self.nodes[a].send(b, msg)

    def _run(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def wait(self, pred, timeout_s: float = 5.0) -> bool:
        deadline = self.loop.time() + timeout_s
        while not pred():
            if self.loop.time() > deadline:
                return False
            self._run(0.005)
        return True

    def settle(self, ms: int = 200) -> None:
        self._run(ms / 1000)

    def inbox(self, node: str) -> list:
        return self.boxes[node]

    def counters(self, node: str) -> dict:
        return self.nodes[node].counters

    def cut(self, a: str, b: str) -> None:
        self.cuts.add((a, b))
        self.nodes[a].set_peer_address(b, self._addr(a, b))

    def heal(self, a: str, b: str) -> None:
        self.cuts.discard((a, b))
        self.nodes[a].set_peer_address(b, self._addr(a, b))

    def stop(self, node: str) -> None:
        self.loop.run_until_complete(self.nodes[node].close())

    def start(self, node: str) -> None:
        self.nodes[node] = self._make(node)

    def raw(self, dst: str, chunks: list[bytes], until_closed: bool = False, timeout_s: float = 10.0) -> bool | None:
        """Send raw bytes on a new connection. With ``until_closed``: wait (bounded) until ``dst``
        closes the connection and return whether it did; once it has, ``dst`` has finished reading
        it, so nothing more can arrive from it."""
        async def go():
            r, w = await asyncio.open_connection("127.0.0.1", self.ports[dst])
            for c in chunks:
                w.write(c)
                await w.drain()
                await asyncio.sleep(0.001)
            closed = None
            if until_closed:
                closed = False
                try:
                    async with asyncio.timeout(timeout_s):
                        while await r.read(65536):
                            pass
                    closed = True
                except (ConnectionError, OSError):
                    closed = True
                except TimeoutError:
                    closed = False
            else:
                await asyncio.sleep(0.05)
            w.close()
            return closed
        return self.loop.run_until_complete(go())

    def probe(self, a: str, b: str, timeout_ms: int):
        return self.loop.run_until_complete(self.nodes[a].probe(b, timeout_ms))

    def close(self) -> None:
        for t in self.nodes.values():
            if not t.closed:
                self.loop.run_until_complete(t.close())
        self.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture(params=["sim", "tcp"])
def net(request):
    adaptor = SimAdaptor(SEED) if request.param == "sim" else TcpAdaptor(SEED)
    print(f"transport={request.param} seed={SEED}")
    yield adaptor
    adaptor.close()


def random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.choice([1, 1, 2, 3, 5, 8, 64])
        out.append(data[i:i + n])
        i += n
    return out


def test_transport_delivers_in_order_naming_sender(net):
    net.add("a"), net.add("b")
    for i in range(200):
        net.send("a", "b", {"ch": "x", "i": i})
    assert net.wait(lambda: len(net.inbox("b")) == 200)
    assert [m["i"] for _, m in net.inbox("b")] == list(range(200))
    assert {s for s, _ in net.inbox("b")} == {"a"}
    assert net.counters("a")["frames_out"] == 200
    assert net.counters("b")["frames_in"] == 200


def test_transport_frames_survive_any_split(net):
    net.add("b")
    rng = random.Random(SEED)
    msgs = [{"ch": "x", "i": i, "pad": "é" * rng.randint(0, 300)} for i in range(50)]
    stream = frames.encode(frames.hello("z")) + b"".join(frames.encode({"t": "m", "m": m}) for m in msgs)
    net.raw("b", random_chunks(stream, rng))
    assert net.wait(lambda: len(net.inbox("b")) == 50)
    assert net.inbox("b") == [("z", m) for m in msgs]
    assert net.counters("b")["bad_frames"] == 0


@pytest.mark.parametrize("with_hello,garbage", [
    (True, struct.pack(">I", frames.MAX_FRAME_BYTES + 1) + b"{}"),
    (True, struct.pack(">I", 5) + b"\xff\xfe{}}"),
    (True, struct.pack(">I", 2) + b"[]"),
    (True, struct.pack(">I", 9) + b' {"a": 1}'),  # leading whitespace: not how frames are written
    (True, frames.encode({"t": "m", "m": {"ch": "x"}})[3:]),  # desynchronised: 3 bytes lost
    (False, frames.encode({"t": "m", "m": {"ch": "x"}})),  # a message before hello
], ids=["oversized", "not-utf8-json", "not-object", "leading-space", "desync", "no-hello"])
def test_transport_malformed_frame_counted_and_connection_dropped(net, with_hello, garbage):
    net.add("a"), net.add("b")
    after = frames.encode({"t": "m", "m": {"ch": "x", "never": True}})
    closed = net.raw("b", [frames.encode(frames.hello("z")) if with_hello else b"", garbage, after],
                     until_closed=True)
    assert closed, "the receiver must drop a connection that sent a bad frame"
    assert net.counters("b")["bad_frames"] == 1
    # b has finished with that connection (it closed it), so a frame after the bad one can no longer come
    assert all(not m.get("never") for _, m in net.inbox("b")), "frames after a bad one must be dropped"
    net.send("a", "b", {"ch": "x", "ok": 1})  # the node itself is unharmed
    assert net.wait(lambda: ("a", {"ch": "x", "ok": 1}) in net.inbox("b"))


def test_transport_queue_bound_drops_oldest_and_counts(net):
    net.add("a", queue_max=10), net.add("b")
    net.stop("b")
    for i in range(25):
        net.send("a", "b", {"ch": "x", "i": i})
    assert net.counters("a")["dropped_frames"] == 15
    net.start("b")
    assert net.wait(lambda: len(net.inbox("b")) >= 10)
    # positive control: a later frame on the same in-order link; once it is in, everything queued before
    # it has arrived, so the dropped frames 0..14 can no longer come
    net.send("a", "b", {"ch": "x", "i": "marker"})
    assert net.wait(lambda: any(m["i"] == "marker" for _, m in net.inbox("b")))
    assert [m["i"] for _, m in net.inbox("b")] == list(range(15, 25)) + ["marker"]


def test_transport_reconnects_after_peer_restart(net):
    net.add("a"), net.add("b")
    net.send("a", "b", {"ch": "x", "i": 0})
    assert net.wait(lambda: len(net.inbox("b")) == 1)
    net.stop("b")
    assert net.wait(lambda: net.counters("a")["disconnects"] >= 1)   # a noticed b going away
    net.start("b")

    def resend_until_delivered():
        net.send("a", "b", {"ch": "x", "i": 1})
        return net.wait(lambda: any(m["i"] == 1 for _, m in net.inbox("b")), 0.3)

    assert any(resend_until_delivered() for _ in range(20))
    assert net.counters("a")["connects"] >= 2


def test_transport_cut_is_one_way(net):
    net.add("a"), net.add("b")
    net.cut("a", "b")
    net.send("b", "a", {"ch": "x", "dir": "b->a"})
    assert net.wait(lambda: len(net.inbox("a")) == 1)
    net.send("a", "b", {"ch": "x", "dir": "a->b"})
    # a tried to reach b and failed, and never had a connection to b: the frame had no way through
    assert net.wait(lambda: net.counters("a")["connect_failures"] >= 1)
    assert net.counters("a")["connects"] == 0
    assert net.inbox("b") == []
    net.heal("a", "b")
    net.send("a", "b", {"ch": "x", "dir": "a->b after heal"})
    assert net.wait(lambda: any(m["dir"] == "a->b after heal" for _, m in net.inbox("b")))
    # the frame held back by the cut comes first, in order: it was queued, not lost nor reordered
    assert [m["dir"] for _, m in net.inbox("b")] == ["a->b", "a->b after heal"]


def test_transport_probe_reachable_and_cut(net):
    net.add("a"), net.add("b")
    rtt = net.probe("a", "b", 1000)
    assert rtt is not None and rtt >= 0
    net.cut("a", "b")
    assert net.probe("a", "b", 300) is None
    assert net.probe("b", "a", 1000) is not None


def test_transport_backoff_is_capped_exponential():
    rng = random.Random(SEED)
    delays = [backoff_ms(k, 50, 1000, rng) for k in range(12)]
    for k, d in enumerate(delays):
        assert min(50 * 2 ** k, 1000) <= d <= min(75 * 2 ** k, 1000)
    assert delays[-1] == 1000


def test_frames_decoder_table():
    dec = frames.FrameDecoder()
    data = frames.encode({"a": 1}) + frames.encode({"b": [1, 2]})
    got = []
    for b in data:
        got += dec.feed(bytes([b]))
    assert got == [{"a": 1}, {"b": [1, 2]}]
    with pytest.raises(frames.BadFrame):
        frames.FrameDecoder(max_frame_bytes=10).feed(struct.pack(">I", 11))
    with pytest.raises(TypeError):
        frames.encode([1])  # our own wrong call raises, it is not counted


def naive_decode(chunks: list[bytes]) -> list[dict]:
    """Deliberately wrong framing: assumes every read holds whole frames (true on a quiet LAN,
    false behind Toxiproxy's slicer). The split test below must catch it."""
    import json as _json
    out = []
    for c in chunks:
        i = 0
        while i + 4 <= len(c):
            (n,) = struct.unpack(">I", c[i:i + 4])
            try:
                out.append(_json.loads(c[i + 4:i + 4 + n]))
            except ValueError:
                break
            i += 4 + n
    return out


def test_transport_split_check_catches_naive_framing():
    rng = random.Random(SEED)
    msgs = [{"i": i} for i in range(50)]
    stream = b"".join(frames.encode(m) for m in msgs)
    chunks = random_chunks(stream, rng)
    dec = frames.FrameDecoder()
    assert [f for c in chunks for f in dec.feed(c)] == msgs
    assert naive_decode(chunks) != msgs


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickle"])
def test_transport_tcp_drops_a_stalled_partial_frame(trickle):
    net = TcpAdaptor(SEED, frame_stall_ms=500)
    try:
        net.add("b")
        # a hello, then part of a frame, then silence (dropped after frame_stall_ms = 500 ms of
        # silence) or a byte every 50 ms (dropped once older than 500 ms + 1004 bytes at 1 KiB/s)
        partial = struct.pack(">I", 1000) + b"{"

        async def go():
            r, w = await asyncio.open_connection("127.0.0.1", net.ports["b"])
            w.write(frames.encode(frames.hello("z")) + partial)
            await w.drain()
            t0 = asyncio.get_running_loop().time()
            while asyncio.get_running_loop().time() - t0 < 5:
                try:
                    data = await asyncio.wait_for(r.read(10), 0.05)
                    w.close()
                    return data, asyncio.get_running_loop().time() - t0
                except ConnectionResetError:  # dropped while we were still writing
                    return b"", asyncio.get_running_loop().time() - t0
                except asyncio.TimeoutError:
                    if trickle:
                        w.write(b" ")
            raise AssertionError("connection never dropped")

        data, took = net.loop.run_until_complete(go())
        assert data == b"" and took < 3.0
        assert net.counters("b")["bad_frames"] == 1
    finally:
        net.close()
