"""Proxy registry of the Toxiproxy-compatible server: every API operation, independent of HTTP.

Owns: proxies (listen / upstream / enabled, their toxics and live connections), the update rules of
shared toxiproxy-api.md sections 1.2-1.6 (create, update by POST/PATCH, delete, toxics, /reset,
/populate), the seeded random generator, and the byte counters behind /metrics. Operations return
response bytes or raise model.ApiError. Mutations are serialised by one asyncio.Lock so every
operation is atomic with respect to the others. Must not import aiohttp or `chaos`.
"""

from __future__ import annotations

import asyncio
import random

from . import datapath
from .gojson import encode
from .model import (ApiError, Toxic, check_bool, check_object, check_str, new_toxic, proxy_json, q,
                    toxic_update)


ACCEPT_BATCH = 64   # connections accepted per readiness event of one listener (bounded fairness)
ACCEPT_BACKOFF_S = 0.1   # a listener whose accept() failed (e.g. EMFILE) rests this long before retrying


class Proxy:
    """One proxy: its configuration, listener, toxics (per direction, in insertion order), connections."""

    def __init__(self, server: "Registry", name: str, listen: str, upstream: str):
        self.server = server
        self.rng = server.rng
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.listener = None
        self.toxics: dict[str, Toxic] = {}
        self.by_dir: dict[str, list[Toxic]] = {"upstream": [], "downstream": []}
        self.conns: set = set()
        self.key_json = q(name) + b":"   # its key in the GET /proxies object
        self._tver = 0                    # bumped by every toxic change: keys the kept JSON
        self._json_key = None
        self._json = b""

    # -- datapath callbacks
    def toxics_for(self, direction: str) -> list[Toxic]:
        return self.by_dir[direction]

    def conn_started(self, transport):
        conn = datapath.Conn(self, transport, self.server.loop)
        if not self.enabled:            # stopped between accept and adoption
            conn.close()
            return conn
        self.conns.add(conn)
        self.server.loop.create_task(conn.dial(self.upstream))
        return conn

    def conn_ended(self, conn):
        self.conns.discard(conn)
        if self.server.proxy_metrics:
            self.server.count_bytes(self, conn)

    # -- lifecycle
    async def start(self):
        """Bind the listen address and accept; raise ApiError(500) with Go's listen error."""
        if self.enabled:
            return
        try:
            sock, addr = datapath.open_listen_socket(self.listen)
        except datapath.ListenError as exc:
            raise ApiError(500, str(exc)) from None
        # add_reader on the listening socket: much cheaper than one asyncio.Server per proxy, which
        # matters with thousands of proxies (/populate of 3,000 in well under a second).
        self.listener = sock
        self.server.loop.add_reader(sock.fileno(), self._on_accept)
        self.listen = addr
        self.enabled = True

    def _on_accept(self):
        sock = self.listener
        loop = self.server.loop
        for _ in range(ACCEPT_BATCH):
            try:
                csock, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:          # EMFILE and friends: keep serving, count, back off
                self.server.accept_error(self, exc)
                return
            csock.setblocking(False)
            loop.create_task(self._adopt(csock))

    async def _adopt(self, csock):
        try:
            await self.server.loop.connect_accepted_socket(lambda: datapath.ClientSide(self), csock)
        except OSError:
            csock.close()

    def stop(self):
        """Close the listener and every connection (normal FIN)."""
        if self.listener is not None:
            self.server.loop.remove_reader(self.listener.fileno())
            self.listener.close()
            self.listener = None
        for conn in list(self.conns):
            conn.close()
        self.conns.clear()
        self.enabled = False

    # -- toxics
    def add_toxic(self, toxic: Toxic):
        self._tver += 1
        self.toxics[toxic.name] = toxic
        self.by_dir[toxic.direction].append(toxic)
        for conn in list(self.conns):
            link = conn.up if toxic.direction == "upstream" else conn.down
            if not link.done:
                link.append_stage(toxic)

    def update_toxic(self, toxic: Toxic, attributes: dict, toxicity: float):
        self._tver += 1
        toxic.attributes = attributes
        toxic.toxicity = toxicity
        toxic._json = None
        for conn in list(self.conns):
            (conn.up if toxic.direction == "upstream" else conn.down).update_stage(toxic)

    def remove_toxic(self, toxic: Toxic):
        self._tver += 1
        del self.toxics[toxic.name]
        self.by_dir[toxic.direction].remove(toxic)
        for conn in list(self.conns):
            (conn.up if toxic.direction == "upstream" else conn.down).remove_stage(toxic)

    def remove_all_toxics(self):
        for toxic in self.by_dir["upstream"] + self.by_dir["downstream"]:
            self.remove_toxic(toxic)

    # -- JSON
    def toxics_json(self) -> bytes:
        return b"[" + b",".join(t.to_json() for t in self.by_dir["upstream"] + self.by_dir["downstream"]) + b"]"

    def to_json(self) -> bytes:
        """The proxy's JSON, rebuilt only when its listen address, upstream, enabled flag or toxics
        changed since (GET /proxies of 1,089 proxies is asked after every link fault to verify it)."""
        key = (self.listen, self.upstream, self.enabled, self._tver)
        if key != self._json_key:
            self._json = proxy_json(self.name, self.listen, self.upstream, self.enabled,
                                    [t.to_json() for t in self.by_dir["upstream"] + self.by_dir["downstream"]])
            self._json_key = key
        return self._json


class Registry:
    """All proxies of one server. `seed` seeds the one random generator all draws come from."""

    def __init__(self, seed: int, proxy_metrics: bool = False, loop=None, log=None):
        self.seed = seed
        self.log = log or (lambda level, message, **fields: None)
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()
        self.loop = loop or asyncio.get_event_loop()
        datapath.configure_for_loop(self.loop)
        self.proxy_metrics = proxy_metrics
        self.counters: dict[tuple, list[int]] = {}
        self.accept_errors = 0
        self.last_accept_error = ""
        self._accept_log_at = 0.0
        self._accept_log_suppressed = 0

    def accept_error(self, proxy: "Proxy", exc: OSError) -> None:
        """A failed accept() (EMFILE, ENFILE, ENOBUFS...). The pending connection stays queued and
        the listener stays readable, so retrying at once spins: 1.6 million errors and their log
        lines in 3 minutes took a core from the server and from dockerd's log writer. Instead this
        listener pauses for ACCEPT_BACKOFF_S (the real server retries at once), and the log says
        one line per second with the count of lines it held back. Counted in /metrics-style fields
        accept_errors / last_accept_error."""
        self.accept_errors += 1
        self.last_accept_error = str(exc)
        fd = proxy.listener.fileno()
        self.loop.remove_reader(fd)

        def resume(listener=proxy.listener):
            if proxy.listener is listener and proxy.enabled:
                self.loop.add_reader(fd, proxy._on_accept)

        self.loop.call_later(ACCEPT_BACKOFF_S, resume)
        now = self.loop.time()
        if now - self._accept_log_at < 1.0:
            self._accept_log_suppressed += 1
            return
        self.log("error", "Error while accepting client", proxy=proxy.name, error=str(exc),
                 accept_errors=self.accept_errors, suppressed=self._accept_log_suppressed)
        self._accept_log_at = now
        self._accept_log_suppressed = 0

    # -- helpers
    def _get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    @staticmethod
    def _get_toxic(proxy: Proxy, name: str) -> Toxic:
        toxic = proxy.toxics.get(name)
        if toxic is None:
            raise ApiError(404, "toxic not found")
        return toxic

    def count_bytes(self, proxy: Proxy, conn):
        for link in (conn.up, conn.down):
            key = (link.direction, proxy.listen, proxy.name, proxy.upstream)
            c = self.counters.setdefault(key, [0, 0])
            c[0] += link.rx
            c[1] += link.tx

    # -- proxies
    def list_proxies(self) -> bytes:
        proxies = self.proxies
        return b"{" + b",".join(proxies[n].key_json + proxies[n].to_json() for n in sorted(proxies)) + b"}"

    def get_proxy(self, name: str) -> bytes:
        return self._get(name).to_json()

    async def create_proxy(self, body) -> bytes:
        body = check_object(body, "proxy.Proxy")
        name = check_str(body, "name", "Proxy") or ""
        listen = check_str(body, "listen", "Proxy") or ""
        upstream = check_str(body, "upstream", "Proxy") or ""
        enabled = check_bool(body, "enabled", "Proxy")
        if not name:
            raise ApiError(400, "missing required field: name")
        if not upstream:
            raise ApiError(400, "missing required field: upstream")
        async with self.lock:
            if name in self.proxies:
                raise ApiError(409, "proxy already exists")
            proxy = Proxy(self, name, listen, upstream)
            if enabled is None or enabled:
                await proxy.start()
            self.proxies[name] = proxy
            self.log("info", "Started proxy", name=name, listen=proxy.listen, upstream=upstream,
                     enabled=proxy.enabled)
            return proxy.to_json()

    async def update_proxy(self, name: str, body) -> bytes:
        body = check_object(body, "proxy.Proxy")
        listen = check_str(body, "listen", "Proxy")
        upstream = check_str(body, "upstream", "Proxy")
        enabled = check_bool(body, "enabled", "Proxy")
        async with self.lock:
            proxy = self._get(name)
            new_upstream = proxy.upstream if upstream is None else upstream
            want_enabled = proxy.enabled if enabled is None else enabled
            listen_changed = listen is not None and not datapath.same_listen(proxy.listen, listen)
            if listen_changed:
                try:
                    datapath.resolve_listen(listen)
                except datapath.ListenError as exc:
                    raise ApiError(500, str(exc)) from None
            if listen_changed or new_upstream != proxy.upstream:
                proxy.stop()
                if listen_changed:
                    proxy.listen = listen
                proxy.upstream = new_upstream
            if want_enabled and not proxy.enabled:
                await proxy.start()
            elif not want_enabled and proxy.enabled:
                proxy.stop()
            return proxy.to_json()

    async def delete_proxy(self, name: str):
        async with self.lock:
            proxy = self._get(name)
            proxy.stop()
            del self.proxies[name]

    # -- toxics
    def list_toxics(self, name: str) -> bytes:
        return self._get(name).toxics_json()

    def get_toxic(self, name: str, toxic: str) -> bytes:
        proxy = self._get(name)
        return self._get_toxic(proxy, toxic).to_json()

    async def add_toxic(self, name: str, body) -> bytes:
        async with self.lock:
            proxy = self._get(name)
            toxic = new_toxic(body, proxy.toxics)
            proxy.add_toxic(toxic)
            return toxic.to_json()

    async def update_toxic(self, name: str, toxic_name: str, body) -> bytes:
        async with self.lock:
            proxy = self._get(name)
            toxic = self._get_toxic(proxy, toxic_name)
            attributes, toxicity = toxic_update(toxic, body)
            proxy.update_toxic(toxic, attributes, toxicity)
            return toxic.to_json()

    async def delete_toxic(self, name: str, toxic_name: str):
        async with self.lock:
            proxy = self._get(name)
            toxic = self._get_toxic(proxy, toxic_name)
            proxy.remove_toxic(toxic)

    # -- toxic batch (an extension: the real server has no such endpoint)
    async def toxic_batch(self, body) -> tuple[int, bytes]:
        """`POST /toxics/batch`: many toxic operations in one request, all or nothing.

        The body is a JSON array of items, each `{"op": "add"|"set"|"update"|"delete", "proxy": P,
        "name": N?, "toxic": {...}?, "missing_ok": bool?}`. `add` takes a toxic body as
        `POST /proxies/P/toxics` does (409 when the name exists); `set` adds it or, when a toxic of
        that name exists, updates its attributes and toxicity (type and stream are ignored, as in a
        toxic update); `update` takes an update body (404 when absent); `delete` removes toxic N (404
        when absent unless `missing_ok`). Every item is checked first, against the state the items
        before it would leave; if any fails nothing is applied and the answer is that item's status
        with `{"error": "item I (proxy P): message", "status", "index", "applied": 0, "results"}`.
        Otherwise every item is applied with no await in between (no other API call and no data
        path callback runs halfway through a batch) and the answer is 200 with `{"applied": n,
        "results": [{"status": 200|204} or {"status": 204, "missing": true}]}`, per item in order
        (the toxics themselves are not echoed: 1,740 of them are 230 KB; GET /proxies shows them).

        An item may name `"proxies": [P, ...]` instead of `"proxy"`: the same operation on each of
        them in that order, exactly as if the item were repeated once per proxy (a fault on 870 links
        is then two items, not 1,740). Its result is `{"status", "count": n, "missing": m}` (m:
        deletes of absent toxics), `applied` counts every proxy's operation, and a failure names the
        proxy it failed on."""
        if body is None:
            body = []
        if not isinstance(body, list):
            return _batch_error(400, "bad request body: the batch must be a JSON array of items", None, [])
        async with self.lock:
            plans, results = [], []
            shadow: dict[str, dict[str, Toxic]] = {}   # proxy -> its toxics as the items so far leave them
            groups = []   # per item: None (one operation) or (status, first plan, plan count)
            for i, item in enumerate(body):
                try:
                    if isinstance(item, dict) and "proxies" in item:
                        first = len(plans)
                        plans.extend(self._plan_batch_group(item, shadow))
                        groups.append((204 if item.get("op") == "delete" else 200, first, len(plans) - first))
                    else:
                        plans.append(self._plan_batch_item(item, shadow))
                        groups.append(None)
                except ApiError as exc:
                    results.append({"status": exc.status, "error": exc.message})
                    proxy = getattr(exc, "proxy", None) or (item.get("proxy") if isinstance(item, dict) else None)
                    where = f"item {i}" + (f" (proxy {proxy})" if isinstance(proxy, str) else "")
                    return _batch_error(exc.status, f"{where}: {exc.message}", i, results)
                results.append(None)
            out = []
            for kind, proxy, toxic, extra in plans:   # no await: the batch lands at one instant
                if kind == "add":
                    proxy.add_toxic(toxic)
                    out.append(b'{"status":200}')
                elif kind == "update":
                    proxy.update_toxic(toxic, *extra)
                    out.append(b'{"status":200}')
                elif kind == "delete":
                    proxy.remove_toxic(toxic)
                    out.append(b'{"status":204}')
                else:   # delete of an absent toxic with missing_ok
                    out.append(b'{"status":204,"missing":true}')
            if any(g is not None for g in groups):   # one result per item as sent
                single = iter(out)
                per_item = []
                for g in groups:
                    if g is None:
                        per_item.append(next(single))
                        continue
                    status, first, n = g
                    missing = sum(1 for p in plans[first:first + n] if p[0] == "absent")
                    per_item.append(b'{"status":%d,"count":%d,"missing":%d}' % (status, n, missing))
                    for _ in range(n):
                        next(single)
                out = per_item
            return 200, b'{"applied":%d,"results":[' % len(plans) + b",".join(out) + b"]}"

    def _plan_batch_group(self, item: dict, shadow: dict) -> list:
        """Plans of an item with `proxies`: the item's operation on each proxy, in order. An add or
        set validates its toxic body once and gives every new toxic the same (kept) JSON; when that
        validation fails (or for update and delete) each proxy is planned as a single item would be,
        so the answer and the error are exactly those of the repeated single items."""
        names = item.get("proxies")
        if "proxy" in item:
            raise ApiError(400, "bad request body: give proxy or proxies, not both")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ApiError(400, "bad request body: proxies must be an array of proxy names")
        op = item.get("op")
        if op not in ("add", "set", "update", "delete"):
            raise ApiError(400, "bad request body: op must be one of add, set, update, delete")
        template = None
        if op in ("add", "set"):
            body = item.get("toxic")
            try:
                template = new_toxic(body, ())
            except ApiError:
                template = None
        plans = []
        pname = None
        try:
            if template is not None:
                tjson = template.to_json()
                tname, ttype, tstream, ttox, tattrs = (template.name, template.type, template.stream,
                                                       template.toxicity, template.attributes)
                for pname in names:
                    proxy = self._get(pname)
                    toxics = shadow.get(pname)
                    if toxics is None:
                        toxics = shadow[pname] = dict(proxy.toxics)
                    existing = toxics.get(tname)
                    if existing is None:
                        toxic = Toxic(tname, ttype, tstream, ttox, dict(tattrs))
                        toxic._json = tjson
                        toxics[tname] = toxic
                        plans.append(("add", proxy, toxic, None))
                    elif op == "set":
                        attrs, toxicity = toxic_update(existing, body)
                        plans.append(("update", proxy, existing, (attrs, toxicity)))
                    else:
                        raise ApiError(409, "toxic already exists")
            else:
                single = {k: v for k, v in item.items() if k != "proxies"}
                for pname in names:
                    single["proxy"] = pname
                    plans.append(self._plan_batch_item(single, shadow))
        except ApiError as exc:
            exc.proxy = pname
            raise
        return plans

    def _plan_batch_item(self, item, shadow: dict):
        """Check one batch item against the shadow state; return (kind, proxy, toxic, extra)."""
        if not isinstance(item, dict):
            raise ApiError(400, "bad request body: a batch item must be a JSON object")
        op = item.get("op")
        if op not in ("add", "set", "update", "delete"):
            raise ApiError(400, "bad request body: op must be one of add, set, update, delete")
        pname = item.get("proxy")
        if not isinstance(pname, str) or not pname:
            raise ApiError(400, "bad request body: missing required field: proxy")
        proxy = self._get(pname)
        toxics = shadow.setdefault(pname, dict(proxy.toxics))
        if op in ("add", "set"):
            body = check_object(item.get("toxic"), "toxics.ToxicWrapper")
            existing = toxics.get(body.get("name")) if isinstance(body.get("name"), str) else None
            if op == "set" and existing is not None:
                attrs, toxicity = toxic_update(existing, body)
                return "update", proxy, existing, (attrs, toxicity)
            toxic = new_toxic(body, toxics)
            toxics[toxic.name] = toxic
            return "add", proxy, toxic, None
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "bad request body: missing required field: name")
        existing = toxics.get(name)
        if existing is None:
            if op == "delete" and item.get("missing_ok") is True:
                return "absent", proxy, None, None
            raise ApiError(404, "toxic not found")
        if op == "update":
            attrs, toxicity = toxic_update(existing, item.get("toxic"))
            return "update", proxy, existing, (attrs, toxicity)
        del toxics[name]
        return "delete", proxy, existing, None

    # -- reset and populate
    async def reset(self):
        """Remove every toxic and start every disabled proxy. Unlike the real server this visits every
        proxy (in name order) even after a failure, and then reports the first failure as 500."""
        first_error = None
        async with self.lock:
            for name in sorted(self.proxies):
                proxy = self.proxies[name]
                proxy.remove_all_toxics()
                if not proxy.enabled:
                    try:
                        await proxy.start()
                    except ApiError as exc:
                        first_error = first_error or exc
        if first_error is not None:
            raise first_error

    async def populate(self, body) -> tuple[int, bytes]:
        """Apply a /populate batch; returns (status, body) with the real server's JSON shapes."""
        if not isinstance(body, list):
            if body is None:
                items = []
            else:
                kind = "object" if isinstance(body, dict) else "value"
                return _populate_error(400, f"bad request body: json: cannot unmarshal {kind} into Go value of type []proxy.Proxy", None)
        else:
            items = body
        parsed = []
        try:
            for item in items:
                item = check_object(item, "proxy.Proxy")
                parsed.append((check_str(item, "name", "Proxy") or "", check_str(item, "listen", "Proxy") or "",
                               check_str(item, "upstream", "Proxy") or "", check_bool(item, "enabled", "Proxy")))
        except ApiError as exc:
            return _populate_error(exc.status, exc.message, None)
        for i, (name, _listen, upstream, _enabled) in enumerate(parsed, 1):
            if not name:
                return _populate_error(400, f"missing required field: name at proxy {i}", None)
            if not upstream:
                return _populate_error(400, f"missing required field: upstream at proxy {i}", None)
        done: list[Proxy] = []
        async with self.lock:
            for name, listen, upstream, enabled in parsed:
                old = self.proxies.get(name)
                if old is not None and old.upstream == upstream and datapath.same_listen(old.listen, listen):
                    done.append(old)
                    continue
                if old is not None:
                    old.stop()
                proxy = Proxy(self, name, listen, upstream)
                if enabled is None or enabled:
                    try:
                        await proxy.start()
                    except ApiError as exc:
                        return _populate_error(exc.status, exc.message, done)
                self.proxies[name] = proxy
                done.append(proxy)
        if not done:
            return 201, b'{"proxies":null}'
        return 201, b'{"proxies":[' + b",".join(p.to_json() for p in done) + b"]}"

    # -- metrics
    def metrics_text(self) -> bytes:
        lines = []
        for metric, idx, help_text in (
                ("toxiproxy_proxy_received_bytes_total", 0, "The total bytes received from the source of a proxy direction"),
                ("toxiproxy_proxy_sent_bytes_total", 1, "The total bytes sent to the destination of a proxy direction")):
            lines.append(f"# HELP {metric} {help_text}")
            lines.append(f"# TYPE {metric} counter")
            for (direction, listener, proxy, upstream), vals in sorted(self.counters.items()):
                lines.append(f'{metric}{{direction="{direction}",listener="{_esc(listener)}",'
                             f'proxy="{_esc(proxy)}",upstream="{_esc(upstream)}"}} {vals[idx]}')
        return ("\n".join(lines) + "\n").encode()

    def close_all(self):
        for proxy in self.proxies.values():
            proxy.stop()


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _batch_error(status: int, message: str, index, results: list) -> tuple[int, bytes]:
    """A rejected batch: nothing was applied; `results` has an entry per item checked (null: fine)."""
    return status, encode({"error": message, "status": status, "index": index, "applied": 0,
                           "results": results})


def _populate_error(status: int, message: str, done) -> tuple[int, bytes]:
    proxies = b"null" if not done else b"[" + b",".join(p.to_json() for p in done) + b"]"
    return status, b'{"error":' + encode(message) + b',"status":%d,"proxies":' % status + proxies + b"}"
