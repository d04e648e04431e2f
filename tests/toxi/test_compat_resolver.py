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
