"""A node's peer port holds a burst of connections while its loop is busy: every peer's link to a
node arrives at that port (through its proxy), about 102 at once when 3 + 100 comes up, at a moment
when the agent's loop is starved. With asyncio's default backlog (100) the kernel dropped the rest
and their dials waited out TCP's SYN retransmission (1 s, then 3 s, 7 s ...)."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time

from swarmnode.agent.transport import TcpTransport

BURST = 300   # connections arriving while the loop accepts none


def _connect_burst(port: int, wait_s: float) -> int:
    """Start BURST non-blocking connects; how many completed within wait_s (< TCP's first SYN
    retransmission, 1 s: a connect the kernel dropped cannot complete in time)."""
    socks = []
    for _ in range(BURST):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    done: set = set()
    deadline = time.monotonic() + wait_s
    while len(done) < len(socks) and time.monotonic() < deadline:
        _, w, _ = select.select([], [s for s in socks if s not in done][:512], [], 0.05)
        for s in w:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.add(s)
    for s in socks:
        s.close()
    return len(done)


def test_a_burst_of_connections_waits_in_the_backlog_while_the_loop_is_busy():
    async def go():
        t = TcpTransport("m1", {}, lambda s, m: None, host="127.0.0.1", port=0)
        await t.start()
        port = t._server.sockets[0].getsockname()[1]
        result = {}
        started = threading.Event()

        def client():
            started.set()
            result["n"] = _connect_burst(port, 0.9)
        th = threading.Thread(target=client)
        th.start()
        started.wait()
        # the loop is busy (not accepting) for the whole burst, as a starved agent's is
        while th.is_alive():
            th.join(0.01)
        await t.close()
        return result["n"]
    assert asyncio.run(go()) == BURST
