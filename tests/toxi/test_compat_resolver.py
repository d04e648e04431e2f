"""The compatible Toxiproxy server's upstream name lookups: a lookup that hangs delays only its own
dial. Seen in Docker: lookups of a container's name made while the engine killed it returned after
the resolver's 5 s timeout, and with the event loop's 4-thread pool four of them froze every dial
of every proxy (links to live nodes included) for those 5 s."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from swarmnode.toxiproxy import datapath


@pytest.fixture
def hanging_lookups(monkeypatch):
    release = threading.Event()
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "dying-node":
            release.wait(30)  # the embedded DNS server never answers; the resolver times out
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)
    monkeypatch.setattr(datapath.socket, "getaddrinfo", fake)
    monkeypatch.setattr(datapath, "_resolver", None)
    yield release
    release.set()


def test_a_hanging_lookup_does_not_hold_up_other_dials(hanging_lookups):
    async def go():
        loop = asyncio.get_running_loop()
        stuck = [asyncio.ensure_future(datapath.resolve_upstream(loop, "dying-node", 7000))
                 for _ in range(16)]  # more than any shared default pool has threads
        await asyncio.sleep(0)
        addrs = await asyncio.wait_for(datapath.resolve_upstream(loop, "localhost", 7000), 5)
        assert addrs and all(isinstance(a, str) for _, a in addrs)
        assert not any(t.done() for t in stuck)
        hanging_lookups.set()
        for t in stuck:
            with pytest.raises(OSError):
                await t
    asyncio.run(go())


def test_addresses_are_used_as_given_without_a_lookup(hanging_lookups):
    async def go():
        loop = asyncio.get_running_loop()
        assert await datapath.resolve_upstream(loop, "127.0.0.1", 1) == [(socket.AF_INET, "127.0.0.1")]
        assert await datapath.resolve_upstream(loop, "::1", 1) == [(socket.AF_INET6, "::1")]
    asyncio.run(go())


@pytest.fixture
def counted_lookups(monkeypatch):
    calls: list[str] = []

    def fake(host, port, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    monkeypatch.setattr(datapath.socket, "getaddrinfo", fake)
    monkeypatch.setattr(datapath, "_resolver", None)
    monkeypatch.setattr(datapath, "_resolved", {})
    return calls


def test_an_answer_is_reused_by_later_dials_until_it_expires(counted_lookups, monkeypatch):
    async def go():
        loop = asyncio.get_running_loop()
        for _ in range(50):   # 50 accepted connections to one upstream: one lookup
            assert await datapath.resolve_upstream(loop, "w7", 7000) == [(socket.AF_INET, "127.0.0.1")]
        assert counted_lookups == ["w7"]
        await datapath.resolve_upstream(loop, "w8", 7000)   # another name is looked up on its own
        assert counted_lookups == ["w7", "w8"]
        later = datapath.time.monotonic() + datapath.RESOLVE_TTL_S + 1
        monkeypatch.setattr(datapath.time, "monotonic", lambda: later)
        await datapath.resolve_upstream(loop, "w7", 7000)
        assert counted_lookups == ["w7", "w8", "w7"]
    asyncio.run(go())


def test_a_failed_dial_forgets_the_answer(counted_lookups):
    """An upstream that refuses (a node restarted elsewhere, say): the next dial asks again."""
    async def go():
        loop = asyncio.get_running_loop()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()   # nothing listens on `port` now: the dial is refused

        class _Proxy:
            name = "p"

        conn = datapath.Conn.__new__(datapath.Conn)
        conn.loop = loop
        with pytest.raises(OSError):
            await conn._connect("w9", port)
        with pytest.raises(OSError):
            await conn._connect("w9", port)
        assert counted_lookups == ["w9", "w9"]
    asyncio.run(go())
