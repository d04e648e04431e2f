"""HTTP API of the Toxiproxy-compatible server (aiohttp 3.8-compatible).

Owns: routing exactly like the real server (decoded path segments, no slash redirect, 404 text for an
unknown path, empty 405 for a known path with a wrong method including HEAD, 403 for browser user
agents), the request-id header, and the success / error body formats and content types of shared
toxiproxy-api.md 1.1. Operations themselves live in core.Registry. Must not import `chaos`.
"""

from __future__ import annotations

import base64
import os

from aiohttp import web

from . import VERSION
from .core import Registry
from .gojson import DecodeError, decode_first, encode
from .model import ApiError

JSON = "application/json"



def request_id() -> str:
    """An xid-style id: 20 characters of base32hex (0-9, a-v)."""
    return base64.b32hexencode(os.urandom(12)).decode("ascii").lower()[:20]


def _ok(status: int, body: bytes, rid: str) -> web.Response:
    return web.Response(status=status, body=body,
                        headers={"Content-Type": JSON, "X-Toxiproxy-Request-Id": rid})


def _no_content(rid: str) -> web.Response:
    return web.Response(status=204, headers={"X-Toxiproxy-Request-Id": rid})


def _text_error(status: int, text: str, rid: str | None) -> web.Response:
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    if rid is not None:
        headers["X-Toxiproxy-Request-Id"] = rid
    return web.Response(status=status, body=text.encode("utf-8") + b"\n", headers=headers)


def _api_error(exc: ApiError, rid: str) -> web.Response:
    body = encode({"error": exc.message, "status": exc.status}).decode("utf-8")
    return _text_error(exc.status, body, rid)


def _match(segs: list[str]):
    """Return (route name, allowed methods, params) for a decoded path, or None (404)."""
    n = len(segs)
    if any(s == "" for s in segs):
        return None
    if segs[0] == "proxies":
        if n == 1:
            return "proxies", ("GET", "POST"), ()
        if n == 2:
            return "proxy", ("GET", "POST", "PATCH", "DELETE"), (segs[1],)
        if segs[2] != "toxics":
            return None
        if n == 3:
            return "toxics", ("GET", "POST"), (segs[1],)
        if n == 4:
            return "toxic", ("GET", "POST", "PATCH", "DELETE"), (segs[1], segs[3])
        return None
    if segs == ["toxics", "batch"]:   # extension (core.Registry.toxic_batch); not in the real server
        return "batch", ("POST",), ()
    if n != 1:
        return None
    return {"reset": ("reset", ("POST",), ()),
            "populate": ("populate", ("POST",), ()),
            "version": ("version", ("GET",), ()),
            "metrics": ("metrics", None, ())}.get(segs[0])


def make_app(registry: Registry, metrics_enabled: bool = False, batch_enabled: bool = True) -> web.Application:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path
        route = _match(path[1:].split("/")) if path.startswith("/") else None
        if route is not None and route[0] == "metrics" and not metrics_enabled:
            route = None
        if route is not None and route[0] == "batch" and not batch_enabled:
            route = None
        if route is None:
            return _text_error(404, "404 page not found", None)
        name, methods, params = route
        method = request.method
        if methods is not None and method not in methods:
            return web.Response(status=405, body=b"")
        rid = request_id()
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            return _text_error(403, "User agent not allowed", rid)
        try:
            return await _handle(registry, request, name, method, params, rid)
        except ApiError as exc:
            return _api_error(exc, rid)

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


async def _body(request: web.Request):
    raw = await request.read()
    try:
        return decode_first(raw)
    except DecodeError as exc:
        raise ApiError(400, f"bad request body: {exc}") from None


async def _handle(reg: Registry, request: web.Request, name: str, method: str, params: tuple, rid: str):
    if name == "proxies":
        if method == "GET":
            return _ok(200, reg.list_proxies(), rid)
        return _ok(201, await reg.create_proxy(await _body(request)), rid)
    if name == "proxy":
        if method == "GET":
            return _ok(200, reg.get_proxy(params[0]), rid)
        if method == "DELETE":
            await reg.delete_proxy(params[0])
            return _no_content(rid)
        reg._get(params[0])
        return _ok(200, await reg.update_proxy(params[0], await _body(request)), rid)
    if name == "toxics":
        if method == "GET":
            return _ok(200, reg.list_toxics(params[0]), rid)
        reg._get(params[0])
        return _ok(200, await reg.add_toxic(params[0], await _body(request)), rid)
    if name == "toxic":
        if method == "GET":
            return _ok(200, reg.get_toxic(*params), rid)
        if method == "DELETE":
            await reg.delete_toxic(*params)
            return _no_content(rid)
        reg._get_toxic(reg._get(params[0]), params[1])
        return _ok(200, await reg.update_toxic(params[0], params[1], await _body(request)), rid)
    if name == "reset":
        await reg.reset()
        return _no_content(rid)
    if name == "populate":
        raw = await request.read()
        try:
            body = decode_first(raw)
        except DecodeError as exc:
            status, out = 400, _populate_decode_error(str(exc))
        else:
            status, out = await reg.populate(body)
        return web.Response(status=status, body=out,
                            headers={"Content-Type": JSON, "X-Toxiproxy-Request-Id": rid})
    if name == "batch":
        try:
            body = decode_first(await request.read())
        except DecodeError as exc:
            raise ApiError(400, f"bad request body: {exc}") from None
        status, out = await reg.toxic_batch(body)
        return web.Response(status=status, body=out,
                            headers={"Content-Type": JSON, "X-Toxiproxy-Request-Id": rid})
    if name == "version":
        return web.Response(status=200, body=b'{"version": "%s"}\n' % VERSION.encode(),
                            headers={"Content-Type": "application/json;charset=utf-8",
                                     "X-Toxiproxy-Request-Id": rid})
    if name == "metrics":
        return web.Response(status=200, body=reg.metrics_text(),
                            headers={"Content-Type": "text/plain; version=0.0.4"})
    raise ApiError(404, "not found")  # pragma: no cover - every route is handled above


def _populate_decode_error(detail: str) -> bytes:
    return b'{"error":' + encode(f"bad request body: {detail}") + b',"status":400,"proxies":null}'
