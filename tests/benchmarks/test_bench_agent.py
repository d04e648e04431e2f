"""benchmarks/agent.py without a cluster: the light open-loop client against a small aiohttp server
(answers counted by status, every write sent), and the goals judged from a result."""

import asyncio
import types

from .conftest import load


def _serve_and_load(handler, rate, seconds):
    from aiohttp import web
    agent = load("agent")

    async def go():
        app = web.Application()
        app.router.add_put("/kv/{key}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            return await agent.open_loop_light("127.0.0.1", port, rate, seconds, 1)
        finally:
            await runner.cleanup()
    return asyncio.run(go())


def test_light_open_loop_sends_every_write_and_counts_answers_by_status():
    from aiohttp import web
    seen = []

    async def put(request):
        body = await request.json()
        seen.append((request.match_info["key"], body["value"]))
        if body["value"] % 5 == 0:
            return web.json_response({"ok": False, "error": "nope"}, status=409)
        return web.json_response({"ok": True})

    out = _serve_and_load(put, 200, 1.0)
    assert out["offered"] == len(seen) > 50
    assert sorted(v for _, v in seen) == list(range(out["offered"]))
    assert all(k == f"o{v % 1000}" for k, v in seen)
    bad = sum(1 for _, v in seen if v % 5 == 0)
    assert out["errors"] == {409: bad}
    assert out["timeouts"] == 0 and out["not_sent_all_connections_busy"] == 0
    assert out["p50_ms"] is not None and out["p50_ms"] <= out["p99_ms"] <= out["max_ms"]
    assert isinstance(out["client_gc_max_ms"], float) and out["client_gc_max_ms"] >= 0


def test_light_open_loop_leaves_the_collector_as_it_found_it():
    """The client freezes its start-up objects for the measured window only, and keeps no
    finished writes (they would grow what its collector scans)."""
    import gc
    from aiohttp import web

    async def put(request):
        await request.read()
        return web.json_response({"ok": True})

    before = gc.get_freeze_count()
    out = _serve_and_load(put, 100, 0.3)
    assert out["offered"] > 0 and out["errors"] == {}
    assert gc.get_freeze_count() == before == 0


def test_goals_are_judged_only_on_what_was_measured():
    agent = load("agent")
    args = types.SimpleNamespace(slo_p99_ms=20.0)
    ol = {"offered_per_s": 1000, "p99_ms": 8.0, "errors": {}, "timeouts": 0,
          "not_sent_all_connections_busy": 0}
    met = agent.goals({"wrk_sweep": [{}], "writes_per_s": 3100.0, "open_loop": ol}, args)
    assert met["writes_per_s_at_p99_le_20ms"]["met"] is True
    assert met["p99_ms_at_1000_writes_per_s"] == dict(met["p99_ms_at_1000_writes_per_s"], value=8.0, met=True)
    missed = agent.goals({"wrk_sweep": [{}], "writes_per_s": None, "open_loop": dict(ol, p99_ms=12.0)}, args)
    assert missed["writes_per_s_at_p99_le_20ms"]["met"] is False
    assert missed["p99_ms_at_1000_writes_per_s"]["met"] is False
    lossy = agent.goals({"open_loop": dict(ol, timeouts=3)}, args)   # no wrk; some writes timed out
    assert lossy["writes_per_s_at_p99_le_20ms"]["met"] is None
    assert lossy["p99_ms_at_1000_writes_per_s"]["met"] is False
    other_rate = agent.goals({"open_loop": dict(ol, offered_per_s=500)}, args)
    assert other_rate["p99_ms_at_1000_writes_per_s"]["met"] is None
