"""The transport looks a peer's host name up once per RESOLVE_TTL_S, not once per dial."""

from __future__ import annotations

import asyncio
import socket

import pytest

from swarmnode.agent import transport as T


def test_a_peer_name_is_resolved_once_per_ttl_and_a_failure_is_not_cached(monkeypatch):
    async def scenario():
        loop = asyncio.get_running_loop()
        calls = []
        answers = {"toxiproxy": "10.0.0.9"}

        async def fake_getaddrinfo(host, port, **kw):
            calls.append(host)
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "unknown")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 0))]

        monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
        now = [100.0]
        monkeypatch.setattr(loop, "time", lambda: now[0])
        t = T.TcpTransport("w1", {}, lambda *a: None)
        assert await t.resolve("toxiproxy") == "10.0.0.9"
        assert await t.resolve("toxiproxy") == "10.0.0.9"
        assert calls == ["toxiproxy"]
        answers["toxiproxy"] = "10.0.0.7"   # the name moved: seen after the TTL, not before
        now[0] += T.RESOLVE_TTL_S - 0.1
        assert await t.resolve("toxiproxy") == "10.0.0.9"
        now[0] += 0.2
        assert await t.resolve("toxiproxy") == "10.0.0.7"
        assert calls == ["toxiproxy", "toxiproxy"]
        with pytest.raises(OSError):
            await t.resolve("nowhere")
        with pytest.raises(OSError):
            await t.resolve("nowhere")
        assert calls.count("nowhere") == 2

    asyncio.run(scenario())


def test_a_probe_dials_the_cached_address_and_does_not_look_the_name_up_again(monkeypatch):
    """The harness verifies a heal with bursts of `POST /probe`; each probe looked the proxy's name up
    on its own (the engine's DNS, in the loop's thread pool). Now a probe resolves as a dial does."""
    async def scenario():
        loop = asyncio.get_running_loop()
        calls = []

        async def fake_getaddrinfo(host, port, **kw):
            calls.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port or 0)))]

        b = T.TcpTransport("b", {}, lambda *a: None, host="127.0.0.1", port=0)
        await b.start()
        port = b._server.sockets[0].getsockname()[1]
        monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
        a = T.TcpTransport("a", {"b": ("proxy-b", port)}, lambda *a: None)
        try:
            for _ in range(5):
                assert await a.probe("b", 2000) is not None
            assert calls == ["proxy-b"]
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())
