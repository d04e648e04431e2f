"""The node's HTTP API (docs/contracts.md section 3), on aiohttp (3.8-compatible calls only).

Owns request validation and the mapping between HTTP and the backend's operations. Every request
becomes an operation dict (``{"op": "kv.put", "key": ..., ...}``) that the backend executes locally
or forwards to the leader over the peer transport. Errors always have the contract's shape
``{"ok": false, "error", "message", "definite"}``; nothing a client sends may crash the node (a
middleware turns any unexpected exception into a 500 with ``definite: false``).

Must not import ``chaos``. aiohttp + stdlib only.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Optional, Protocol

from aiohttp import web

from . import wtrace
from .bodies import error_body  # noqa: F401 -- part of this module's interface
from .config import NODE_ID_RE
from .members import ACTIONS as MEMBER_ACTIONS

log = logging.getLogger("swarmnode.api")

MAX_BODY_BYTES = 1 << 20
MAX_KEY_LEN = 256
MAX_NAME_LEN = 64
MAX_REPLICAS = 1000
MAX_CLIENT_ID_LEN = 128
SCALARS = (str, int, float, bool)


class Backend(Protocol):
    def status(self) -> dict: ...
    async def execute(self, op: dict) -> tuple[int, dict]: ...
    def members(self) -> dict: ...
    def endpoints(self) -> dict: ...
    def journal_since(self, since: int) -> bytes: ...
    def store(self) -> Optional[dict]: ...
    async def probe(self, peer: str, timeout_ms: int) -> Optional[float]: ...
    def has_peer(self, peer: str) -> bool: ...


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, definite: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.definite = status, code, message, definite




def _bad(msg: str) -> ApiError:
    return ApiError(400, "bad-request", msg, True)


async def _json_body(request: web.Request, required: bool = True) -> dict:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise _bad("a JSON object body is required")
        return {}
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("body is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise _bad("body must be a JSON object")
    return obj


def _scalar(obj: dict, name: str) -> Any:
    if name not in obj:
        raise _bad(f"missing field {name!r}")
    v = obj[name]
    if v is not None and not isinstance(v, SCALARS):
        raise _bad(f"{name!r} must be a JSON scalar")
    if isinstance(v, float) and v != v:
        raise _bad(f"{name!r} must not be NaN")
    return v


def _key(request: web.Request) -> str:
    key = request.match_info.get("key", "")
    if not key or len(key) > MAX_KEY_LEN:
        raise _bad(f"key must be 1..{MAX_KEY_LEN} characters")
    return key


def _dedup(obj: dict, op: dict) -> dict:
    cid, seq = obj.get("client_id"), obj.get("seq")
    if cid is None and seq is None:
        return op
    if not isinstance(cid, str) or not cid or len(cid) > MAX_CLIENT_ID_LEN:
        raise _bad(f"client_id must be a string of 1..{MAX_CLIENT_ID_LEN} characters")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or seq > 2**62:
        raise _bad("seq must be a non-negative integer given with client_id")
    op["client_id"], op["seq"] = cid, seq
    return op


def _name(text: Any) -> str:
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_NAME_LEN or \
            not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise _bad(f"service name must be 1..{MAX_NAME_LEN} of [A-Za-z0-9_-]")
    return text


def _replicas(obj: dict) -> int:
    r = obj.get("replicas")
    if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= MAX_REPLICAS:
        raise _bad(f"replicas must be an integer in [0, {MAX_REPLICAS}]")
    return r


def build_app(backend: Backend) -> web.Application:
    """The aiohttp application for one node."""
    node_id = backend.status().get("node")

    @web.middleware
    async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable]):
        try:
            return await handler(request)
        except ApiError as e:
            return web.json_response(error_body(e.code, e.message, e.definite), status=e.status)
        except web.HTTPException as e:
            code = {404: "not-found", 405: "bad-request", 413: "bad-request"}.get(e.status, "bad-request")
            status = e.status if 400 <= e.status < 600 else 400
            return web.json_response(error_body(code, e.reason or "bad request", True), status=status)
        except Exception:  # noqa: BLE001 -- the node must survive anything a client sends
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return web.json_response(error_body("internal", "internal error", False), status=500)

    async def run(op: dict) -> web.Response:
        status, body = await backend.execute(op)
        return web.json_response(body, status=status)

    async def get_status(request):
        return web.json_response(backend.status())

    async def kv_get(request):
        return await run({"op": "kv.get", "key": _key(request)})

    async def kv_put(request):
        t_in = wtrace.now() if wtrace.ON else 0
        key = _key(request)
        body = await _json_body(request)
        value = _scalar(body, "value")
        if value is None:
            raise _bad("'value' must not be null (use DELETE)")
        resp = await run(_dedup(body, {"op": "kv.put", "key": key, "value": value}))
        if wtrace.ON and wtrace.cur.get():
            wtrace._rows.append(("in", wtrace.cur.get(), t_in))
            wtrace.rec("out", wtrace.cur.get())
        return resp

    async def kv_cas(request):
        key = _key(request)
        body = await _json_body(request)
        expected, value = _scalar(body, "expected"), _scalar(body, "value")
        if value is None:
            raise _bad("'value' must not be null")
        return await run(_dedup(body, {"op": "kv.cas", "key": key, "expected": expected,
                                       "value": value}))

    async def kv_delete(request):
        key = _key(request)
        body = await _json_body(request, required=False)
        return await run(_dedup(body, {"op": "kv.delete", "key": key}))

    async def services_list(request):
        return await run({"op": "service.list"})

    async def services_create(request):
        body = await _json_body(request)
        return await run({"op": "service.create", "name": _name(body.get("name")),
                          "replicas": _replicas(body)})

    async def services_scale(request):
        name = _name(request.match_info.get("name"))
        body = await _json_body(request)
        return await run({"op": "service.scale", "name": name, "replicas": _replicas(body)})

    async def services_remove(request):
        return await run({"op": "service.remove", "name": _name(request.match_info.get("name"))})

    async def tasks_list(request):
        op: dict = {"op": "task.list"}
        for q in ("service", "node"):
            v = request.query.get(q)
            if v:
                if len(v) > MAX_NAME_LEN:
                    raise _bad(f"{q} too long")
                op[q] = v
        return await run(op)

    async def members(request):
        return web.json_response({"ok": True, "node": node_id,
                                  "members": backend.members(), "endpoints": backend.endpoints()})

    async def journal(request):
        raw = request.query.get("since", "0")
        try:
            since = int(raw)
        except ValueError:
            raise _bad("since must be an integer") from None
        return web.Response(body=backend.journal_since(since), content_type="application/x-ndjson")

    async def store(request):
        s = backend.store()
        if s is None:
            raise ApiError(404, "not-found", "this node holds no store (not a manager)", True)
        return web.json_response(s)

    async def probe(request):
        body = await _json_body(request)
        peer, timeout_ms = body.get("peer"), body.get("timeout_ms", 1000)
        if not isinstance(peer, str) or not backend.has_peer(peer):
            raise _bad("peer must name a node in CHAOS_PEERS")
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 1 <= timeout_ms <= 60000:
            raise _bad("timeout_ms must be an integer in [1, 60000]")
        rtt = await backend.probe(peer, timeout_ms)
        return web.json_response({"ok": True, "reachable": rtt is not None,
                                  "rtt_ms": None if rtt is None else round(rtt, 3)})

    async def join_token(request):
        return await run({"op": "cluster.token"})

    async def config(request):
        st = backend.status()
        if "config" not in st:
            raise ApiError(404, "not-found", "this node holds no Raft configuration (not a manager)", True)
        c = st["config"]
        roles = {n: "voter" for n in c["voters"]}
        roles.update({n: "learner" for n in c["learners"]})
        return web.json_response({"ok": True, "node": node_id, "leader": st.get("leader"),
                                  "term": st.get("term"), **c, "members": dict(sorted(roles.items()))})

    async def membership(request):
        body = await _json_body(request)
        action, node, force = body.get("action"), body.get("node"), body.get("force", False)
        if action not in MEMBER_ACTIONS:
            raise _bad(f"action must be one of {', '.join(MEMBER_ACTIONS)}")
        if not isinstance(node, str) or not NODE_ID_RE.match(node):
            raise _bad("node must be a node id ([a-z][a-z0-9]{0,30})")
        if not isinstance(force, bool):
            raise _bad("force must be a boolean")
        return await run({"op": "member.change", "action": action, "node": node, "force": force})

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/status", get_status)
    app.router.add_get("/kv/{key}", kv_get)
    app.router.add_put("/kv/{key}", kv_put)
    app.router.add_post("/kv/{key}/cas", kv_cas)
    app.router.add_delete("/kv/{key}", kv_delete)
    app.router.add_get("/services", services_list)
    app.router.add_post("/services", services_create)
    app.router.add_put("/services/{name}", services_scale)
    app.router.add_delete("/services/{name}", services_remove)
    app.router.add_get("/tasks", tasks_list)
    app.router.add_get("/members", members)
    app.router.add_get("/journal", journal)
    app.router.add_get("/store", store)
    app.router.add_post("/probe", probe)
    app.router.add_get("/join-token", join_token)
    app.router.add_get("/config", config)
    app.router.add_post("/membership", membership)
    return app
