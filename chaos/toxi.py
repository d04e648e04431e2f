"""The harness's Toxiproxy layer: an HTTP client per server, link operations, partition application
and reachability verification.

Owns: `ToxiproxyAPI` (one Toxiproxy server, per-instance base URL, timeouts, errors mapped to
`chaos.errors`), `LinkController` (the fault operations the nemesis uses on the links of a
`chaos.topology.Topology`, each returning a record for faults.jsonl) and `verify` (proof, through a
probe callable, that the intended reachability matrix is in effect).

Must not import docker, click or anything under chaos.cmd_* / chaos.env*; the environment passes in
the server URL and the probe callable.

Why plain `requests` and not the toxiproxy-python client for I/O (DESIGN.md section 5 asks to use the
client where it suffices): toxiproxy-python 0.1.1 keeps the server address in class attributes
(`APIConsumer.host/port`, one per process), sends every request without a timeout, and maps only
404/409/400 to exceptions (a 500 on create becomes KeyError, on add_toxic it is silently ignored;
see ../shared/toxiproxy-api.md section 5). Each of those breaks a hard requirement here (two
clusters in one process, a stalled server must not hang a run, a fault that was not applied must be
an error), and no call of the client avoids all three. So every request goes through this module's
own session; `ToxiproxyAPI.python_client()` still hands out a toxiproxy-python `Toxiproxy` bound to
this server under a lock, restoring the class state afterwards, for code that wants that API.

Link semantics (docs/contracts.md section 2): proxy `A-B` carries exactly A's traffic to B; on it,
stream `upstream` is A->B bytes and `downstream` is B's replies on A's connections.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Mapping, Sequence

import requests

from chaos import partition as partition_mod
from chaos.errors import EnvironmentError_, FaultError
from chaos.topology import CLIENT, Link, Topology

PREFIX = "chaos-"
"""Every toxic this layer adds is named `chaos-<op>-<up|down>`; heal removes only these."""

STREAMS = ("upstream", "downstream")
_SHORT = {"upstream": "up", "downstream": "down"}
MAX_WORKERS = 8
"""Concurrent API requests of one link operation."""
PROBE_WORKERS = 32
"""Concurrent probes in `verify`. A probe of a black-holed link costs the probe's whole timeout, so
checking L cut links takes about L / PROBE_WORKERS x probe timeout (measured: 544 links, 0.3 s
probes, 16 workers: 10.6 s)."""
POPULATE_BATCH = 1000
VERIFY_MAX_CHANGED = 32
"""An automatic verification probes at most this many of the links whose state changed (a seeded
sample; the record says `capped`), besides the server listing, which must show the intended state on
every one of them. Probing every link of a 3 + 100 halves partition (5,512 links, each cut link
costing the probe's whole timeout) took tens of seconds; 32 cut links cost one probe timeout on
PROBE_WORKERS threads (64 cost two: 0.3 s more of a 0.8 s verification, measured locally)."""
BATCH_PATH = "/toxics/batch"
"""The compatible server's toxic batch endpoint (docs/toxiproxy-compat.md); the real server has none,
and then each toxic operation is its own request, MAX_WORKERS at a time."""
_GROUP_PROBE = {"op": "delete", "proxies": [], "name": "chaos-probe", "missing_ok": True}
"""A batch item naming no proxy: changes nothing on a server that takes `proxies`, 400 on one that
does not (it asks for `proxy`)."""
_CLIENT_ONLY = ("timeout_s", "known")   # item keys for the single-request path, not sent in a batch
BATCH_ITEMS = 4000
"""Toxic operations per batch request (11,000 toxics of a 3 + 100 halves partition: a few requests)."""
"""Proxies per `/populate` request (bounds request size and the server's 25 s handler time)."""


class ToxiproxyHTTPError(FaultError):
    """The server answered with an error status. `status` is the HTTP code, `message` its text."""

    def __init__(self, message: str, status: int, hint: str | None = None):
        super().__init__(message, hint)
        self.status = status


def _error_text(resp: requests.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
    except ValueError:
        pass
    return resp.text.strip()[:300] or resp.reason or "no body"


class ToxiproxyAPI:
    """One Toxiproxy server (real 2.x or the compatible one), addressed by `url`.

    Each thread gets its own `requests.Session` (keep-alive) so link operations can run in parallel.
    Connection failures and timeouts raise `EnvironmentError_`; error statuses raise
    `ToxiproxyHTTPError` (a `FaultError`) carrying the server's message.
    """

    def __init__(self, url: str, timeout_s: float = 5.0):
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ToxiproxyAPI({self.url!r})"

    # -- transport ---------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = "chaos-harness"  # a Mozilla/ agent gets 403 from Toxiproxy
            self._local.session = s
        return s

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: Sequence[int] = (200, 201, 204),
        timeout_s: float | None = None,
    ) -> requests.Response:
        url = self.url + path
        try:
            resp = self._session().request(
                method, url, json=body, timeout=timeout_s or self.timeout_s
            )
        except requests.Timeout as exc:
            raise EnvironmentError_(
                f"Toxiproxy at {self.url} did not answer {method} {path} within "
                f"{timeout_s or self.timeout_s:g} s",
                hint="is the Toxiproxy server overloaded or stopped?",
            ) from exc
        except requests.RequestException as exc:
            raise EnvironmentError_(
                f"Toxiproxy at {self.url} unreachable ({method} {path}): {exc.__class__.__name__}",
                hint="check that the Toxiproxy server is running (chaos doctor)",
            ) from exc
        if resp.status_code not in ok:
            raise ToxiproxyHTTPError(
                f"Toxiproxy {method} {path}: {resp.status_code} {_error_text(resp)}",
                resp.status_code,
            )
        return resp

    # -- server ----------------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version string (parses both JSON `{"version": ...}` and plain text)."""
        resp = self.request("GET", "/version")
        try:
            data = resp.json()
            if isinstance(data, dict) and "version" in data:
                return str(data["version"])
        except ValueError:
            pass
        return resp.text.strip().strip('"')

    def wait_ready(self, deadline: float = 10.0, interval_s: float = 0.05) -> str:
        """Poll `/version` until it answers, for at most `deadline` seconds from now; return it.

        Raises EnvironmentError_ naming the last failure when the deadline passes.
        """
        end = time.monotonic() + deadline
        last: Exception | None = None
        while True:
            try:
                return self.version()
            except (EnvironmentError_, ToxiproxyHTTPError) as exc:
                last = exc
            if time.monotonic() >= end:
                raise EnvironmentError_(
                    f"Toxiproxy at {self.url} not ready after {deadline:g} s: {last}",
                    hint="check the Toxiproxy container/process logs",
                )
            time.sleep(interval_s)

    def reset(self) -> None:
        """`POST /reset`: enable every proxy, remove every toxic (ours and anyone else's)."""
        self.request("POST", "/reset")

    # -- proxies -----------------------------------------------------------------------------------

    def proxies(self) -> dict[str, dict]:
        """Every proxy with its toxics. The answer is large (about 1 MB for 10,000 proxies), so
        its timeout is at least 30 s, as /populate's."""
        return self.request("GET", "/proxies", timeout_s=max(self.timeout_s, 30.0)).json()

    def proxy(self, name: str) -> dict:
        return self.request("GET", f"/proxies/{name}").json()

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> dict:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return self.request("POST", "/proxies", body).json()

    def update_proxy(self, name: str, **fields: Any) -> dict:
        """PATCH any of `listen`, `upstream`, `enabled`."""
        bad = sorted(set(fields) - {"listen", "upstream", "enabled"})
        if bad:
            raise ValueError(f"not updatable proxy fields: {bad}")
        try:
            return self.request("PATCH", f"/proxies/{name}", fields).json()
        except ToxiproxyHTTPError as exc:
            if exc.status != 405:  # servers before 2.6.0 only accept POST for updates
                raise
            return self.request("POST", f"/proxies/{name}", fields).json()

    def delete_proxy(self, name: str) -> None:
        self.request("DELETE", f"/proxies/{name}")

    def populate(self, specs: Sequence[Mapping], batch: int = POPULATE_BATCH) -> list[dict]:
        """Create (or keep, when identical) every proxy in `specs` through `/populate`, `batch` at a
        time; return the server's proxy objects in order. Not atomic (neither is the server): on an
        error the earlier batches and the items before the failing one stay applied.
        """
        out: list[dict] = []
        for i in range(0, len(specs), batch):
            chunk = [dict(s) for s in specs[i : i + batch]]
            resp = self.request("POST", "/populate", chunk, timeout_s=max(self.timeout_s, 30.0))
            got = resp.json().get("proxies") or []
            if len(got) != len(chunk):
                raise FaultError(
                    f"/populate returned {len(got)} proxies for {len(chunk)} requested"
                )
            out.extend(got)
        return out

    # -- toxics ----------------------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[dict]:
        return self.request("GET", f"/proxies/{proxy}/toxics").json()

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> dict:
        body = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        return self.request("POST", f"/proxies/{proxy}/toxics", body).json()

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: Mapping[str, int] | None = None,
        toxicity: float | None = None,
    ) -> dict:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return self.request("POST", f"/proxies/{proxy}/toxics/{name}", body).json()

    def delete_toxic(self, proxy: str, name: str, timeout_s: float | None = None) -> None:
        self.request("DELETE", f"/proxies/{proxy}/toxics/{name}", timeout_s=timeout_s)

    # -- many toxic operations at once ----------------------------------------------------------

    def batch_supported(self) -> bool:
        """Whether the server has the toxic batch endpoint (asked once with a batch that changes
        nothing: the compatible server answers 200, the real one 404), and whether its items may
        name many proxies (`grouped_batch`: a compatible server from before that answers the probe
        400, and is then asked with an empty batch)."""
        known = getattr(self, "_batch", None)
        if known is None:
            grouped = False
            try:
                self.request("POST", BATCH_PATH, [_GROUP_PROBE], ok=(200,))
                known = grouped = True
            except ToxiproxyHTTPError as exc:
                if exc.status == 400:
                    self.request("POST", BATCH_PATH, [], ok=(200,))
                    known = True
                elif exc.status in (404, 405):
                    known = False
                else:
                    raise
            self._grouped = grouped
            self._batch = known
        return known

    def grouped_batch(self) -> bool:
        """Whether the batch endpoint takes items with `proxies` (probed with batch_supported)."""
        return self.batch_supported() and self._grouped

    def toxic_ops(self, ops: Sequence[Mapping], pool: ThreadPoolExecutor | None = None,
                  batch: bool | None = None) -> list[str | None]:
        """Apply toxic operations (items of the batch endpoint: `{"op": "add"|"set"|"update"|"delete",
        "proxy", "name"?, "toxic"?, "missing_ok"?}`, plus for single requests `timeout_s` of a DELETE and
        `known` on a `set` this controller made before: update first); return
        per item None (done) or the error text. With the batch endpoint (`batch` None: probed) the
        items go BATCH_ITEMS per request, each request all or nothing; a rejected request's items
        are then tried one by one so every item that can be applied is, and each failure is named.
        Without it every item is one request, on `pool` when given. A batch request that gets no
        answer (connection failure, timeout) fails each of its items with that message: whether it
        landed is unknown, so the caller reports the failure and `heal` cleans up."""
        ops = list(ops)
        if not ops:
            return []
        if batch is None:
            batch = self.batch_supported()
        if not batch:
            return self._singles(ops, pool)
        out: list[str | None] = []
        grouped = self.grouped_batch()
        for i in range(0, len(ops), BATCH_ITEMS):
            chunk = ops[i:i + BATCH_ITEMS]
            if grouped:
                wire = group_batch_items(chunk, _CLIENT_ONLY)
            else:
                wire = [{k: v for k, v in op.items() if k not in _CLIENT_ONLY} for op in chunk]
            try:
                self.request("POST", BATCH_PATH, wire, ok=(200,), timeout_s=max(self.timeout_s, 30.0))
                out.extend([None] * len(chunk))
            except ToxiproxyHTTPError:
                out.extend(self._singles(chunk, pool))   # all or nothing was refused: find which
            except EnvironmentError_ as exc:   # no answer: the chunk may or may not have landed
                out.extend([exc.message] * len(chunk))
        return out

    def _singles(self, ops: list[Mapping], pool: ThreadPoolExecutor | None) -> list[str | None]:
        return toxic_ops_singly(self, ops, pool)

    # -- the toxiproxy-python client, safely -------------------------------------------------------

    _client_lock = threading.Lock()

    @contextlib.contextmanager
    def python_client(self):
        """Yield a toxiproxy-python `Toxiproxy` pointed at this server.

        The client keeps host and port as process-wide class attributes; this holds a process-wide
        lock for the duration and restores the previous values afterwards, so two `ToxiproxyAPI`
        instances never see each other's address. The client has no timeouts: keep the block short.
        """
        from urllib.parse import urlsplit

        import toxiproxy
        from toxiproxy.api import APIConsumer

        parts = urlsplit(self.url)
        with self._client_lock:
            saved = APIConsumer.host, APIConsumer.port
            APIConsumer.host, APIConsumer.port = parts.hostname, parts.port or 80
            try:
                yield toxiproxy.Toxiproxy()
            finally:
                APIConsumer.host, APIConsumer.port = saved


def group_batch_items(items: Sequence[Mapping], drop: Sequence[str] = ()) -> list[dict]:
    """Batch items with one `proxy` each (keys in `drop` left out), as items with `proxies`: the
    items that differ only in their proxy become one, in order of first appearance. The server
    applies a grouped item as the same item repeated per proxy, so the result is the same batch
    reordered; that reordering is used only when it keeps every proxy's own operations in their
    order (they commute across proxies, not within one), else each item is returned alone. A fault
    on 870 links: 2 items instead of 1,740 (a few KB of names; the server validates each toxic once)."""
    skip = frozenset(drop) | {"proxy"}
    groups: dict[str, tuple[int, dict]] = {}
    order: dict[str, int] = {}   # proxy -> index of the group of its latest operation
    for item in items:
        rest = {k: v for k, v in item.items() if k not in skip}
        key = repr(rest)   # equal reprs: equal JSON values (items built alike repr alike)
        g = groups.get(key)
        if g is None:
            g = groups[key] = (len(groups), dict(rest, proxies=[]))
        proxy = item["proxy"]
        if order.get(proxy, -1) > g[0]:
            return [{k: v for k, v in i.items() if k not in drop} for i in items]
        order[proxy] = g[0]
        g[1]["proxies"].append(proxy)
    return [g for _, g in groups.values()]


def toxic_op_singly(api, op: Mapping) -> None:
    """One toxic operation (a batch item, see ToxiproxyAPI.toxic_ops) as the plain API's requests:
    `set` is an add, and on 409 an update of attributes and toxicity; a `delete` with `missing_ok`
    takes a 404 as done."""
    kind, proxy = op["op"], op["proxy"]
    if kind in ("add", "set"):
        toxic = dict(op["toxic"])
        if kind == "set" and op.get("known"):   # we set it before: an update is one request
            try:
                api.update_toxic(proxy, toxic["name"], toxic.get("attributes"), toxic.get("toxicity"))
                return
            except ToxiproxyHTTPError as exc:
                if exc.status != 404:
                    raise   # 404: removed on the server meanwhile (e.g. by heal): add it again
        try:
            api.add_toxic(proxy, **toxic)
        except ToxiproxyHTTPError as exc:
            if kind == "add" or exc.status != 409:
                raise
            api.update_toxic(proxy, toxic["name"], toxic.get("attributes"), toxic.get("toxicity"))
    elif kind == "update":
        body = op.get("toxic") or {}
        api.update_toxic(proxy, op["name"], body.get("attributes"), body.get("toxicity"))
    elif kind == "delete":
        try:
            api.delete_toxic(proxy, op["name"], timeout_s=op.get("timeout_s"))
        except ToxiproxyHTTPError as exc:
            if not (exc.status == 404 and op.get("missing_ok")):
                raise
    else:
        raise ValueError(f"unknown toxic op {kind!r}")


def toxic_ops_singly(api, ops: Sequence[Mapping], pool: ThreadPoolExecutor | None = None) -> list[str | None]:
    """Every operation as its own request(s), on `pool` when given; per item None or the error text."""

    def one(op: Mapping) -> str | None:
        try:
            toxic_op_singly(api, op)
            return None
        except (FaultError, EnvironmentError_) as exc:
            return exc.message

    if pool is None or len(ops) <= 1:
        return [one(op) for op in ops]
    return list(pool.map(one, ops))


class ShardedToxiproxyAPI:
    """Several Toxiproxy servers seen as one: the proxies of a sharded topology (chaos.topology)
    are spread over `apis` by `topology.shard_of`, and each call goes to the server that holds its
    proxy. Same methods as ToxiproxyAPI, so LinkController and `chaos status` need not know.
    Whole-server calls (`reset`, `proxies`, `wait_ready`) go to every shard; a proxy name that is
    not a link of the topology goes to shard 0."""

    def __init__(self, apis: Sequence[ToxiproxyAPI], topology):
        if len(apis) != topology.shards:
            raise ValueError(f"{len(apis)} servers for a topology of {topology.shards} shards")
        self.apis = list(apis)
        self.topology = topology
        self.url = self.apis[0].url
        self.timeout_s = self.apis[0].timeout_s

    def __repr__(self) -> str:
        return f"ShardedToxiproxyAPI({[a.url for a in self.apis]!r})"

    def route(self, proxy: str) -> ToxiproxyAPI:
        try:
            return self.apis[self.topology.shard_of(proxy)]
        except (KeyError, ValueError):
            return self.apis[0]

    def version(self) -> str:
        return self.apis[0].version()

    def _each(self, fn) -> list:
        """fn(api) on every shard concurrently (each server is its own process); results in shard
        order; the first exception is raised once all have returned."""
        with ThreadPoolExecutor(max_workers=len(self.apis)) as pool:
            return [f.result() for f in [pool.submit(fn, api) for api in self.apis]]

    def wait_ready(self, deadline: float = 10.0, interval_s: float = 0.05) -> str:
        end = time.monotonic() + deadline
        return self._each(lambda api: api.wait_ready(max(0.0, end - time.monotonic()), interval_s))[0]

    def reset(self) -> None:
        for api in self.apis:
            api.reset()

    def proxies(self) -> dict[str, dict]:
        """Every shard's listing, asked at once (one GET per shard)."""
        out: dict[str, dict] = {}
        if len(self.apis) == 1:
            return dict(self.apis[0].proxies())
        with ThreadPoolExecutor(len(self.apis), thread_name_prefix="chaos-shard") as pool:
            for got in pool.map(lambda a: a.proxies(), self.apis):
                out.update(got)
        return out

    def batch_supported(self) -> bool:
        return all(api.batch_supported() for api in self.apis)

    def toxic_ops(self, ops: Sequence[Mapping], pool: ThreadPoolExecutor | None = None,
                  batch: bool | None = None) -> list[str | None]:
        """Each shard's operations go to its server, all shards at once; results in the order given."""
        groups: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            groups.setdefault(self.apis.index(self.route(str(op["proxy"]))), []).append(i)
        out: list[str | None] = [None] * len(ops)

        def shard(item):
            k, idx = item
            return idx, self.apis[k].toxic_ops([ops[i] for i in idx], pool, batch)

        items = sorted(groups.items())
        if len(items) <= 1:
            results = [shard(it) for it in items]
        else:
            with ThreadPoolExecutor(len(items), thread_name_prefix="chaos-shard") as shards:
                results = list(shards.map(shard, items))
        for idx, got in results:
            for i, r in zip(idx, got):
                out[i] = r
        return out

    def proxy(self, name: str) -> dict:
        return self.route(name).proxy(name)

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> dict:
        return self.route(name).create_proxy(name, upstream, listen, enabled)

    def update_proxy(self, name: str, **fields: Any) -> dict:
        return self.route(name).update_proxy(name, **fields)

    def delete_proxy(self, name: str) -> None:
        self.route(name).delete_proxy(name)

    def populate(self, specs: Sequence[Mapping], batch: int = POPULATE_BATCH) -> list[dict]:
        """Each shard gets its own specs in one `/populate` series, the shards concurrently (at
        3 + 100, three servers of ~3,500 proxies each); results in the order given."""
        groups: dict[int, list[int]] = {k: [] for k in range(len(self.apis))}
        for i, spec in enumerate(specs):
            groups[self.apis.index(self.route(str(spec.get("name"))))].append(i)
        out: list[dict | None] = [None] * len(specs)
        got = self._each(lambda api: api.populate([specs[i] for i in groups[self.apis.index(api)]], batch)
                         if groups[self.apis.index(api)] else [])
        for shard, proxies in enumerate(got):
            for i, proxy in zip(groups[shard], proxies):
                out[i] = proxy
        return out  # type: ignore[return-value]

    def toxics(self, proxy: str) -> list[dict]:
        return self.route(proxy).toxics(proxy)

    def add_toxic(self, proxy: str, name: str, type: str, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: Mapping[str, int] | None = None) -> dict:
        return self.route(proxy).add_toxic(proxy, name, type, stream, toxicity, attributes)

    def update_toxic(self, proxy: str, name: str, attributes: Mapping[str, int] | None = None,
                     toxicity: float | None = None) -> dict:
        return self.route(proxy).update_toxic(proxy, name, attributes, toxicity)

    def delete_toxic(self, proxy: str, name: str, timeout_s: float | None = None) -> None:
        self.route(proxy).delete_toxic(proxy, name, timeout_s)


# -- link operations -------------------------------------------------------------------------------


def _int_attr(name: str, value: Any, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _streams(stream: str) -> tuple[str, ...]:
    if stream == "both":
        return STREAMS
    if stream not in STREAMS:
        raise ValueError(f"stream must be 'upstream', 'downstream' or 'both', not {stream!r}")
    return (stream,)


def toxic_name(op: str, stream: str) -> str:
    return f"{PREFIX}{op}-{_SHORT[stream]}"


# op -> (toxic type, default stream). `flaky` reuses the type of the op it makes flaky.
_OPS: dict[str, tuple[str, str]] = {
    "cut": ("timeout", "both"),
    "latency": ("latency", "upstream"),
    "bandwidth": ("bandwidth", "upstream"),
    "reset": ("reset_peer", "upstream"),
    "stall": ("latency", "upstream"),
    "slice": ("slicer", "upstream"),
    "slow_close": ("slow_close", "downstream"),
    "limit": ("limit_data", "upstream"),
}


class LinkController:
    """Fault operations on the links of one cluster, each returning a record for faults.jsonl.

    `links` arguments accept `Link`s, `(src, dst)` pairs or proxy names; an unknown link is a
    KeyError (our bug). A failed server call raises FaultError/EnvironmentError_ after every proxy
    of the operation has been tried, naming the proxies that failed; the state kept here reflects
    what did succeed, and `heal()` is always safe to call afterwards.

    Record shape: `{"ts", "done_ts", "op", "params", "proxies", "toxics": [...], "disabled",
    "enabled", "removed", "verified"?, "apply_ms"?, "verify_ms"?}`; `ts` and `done_ts` are wall-clock
    epoch seconds when the operation was issued and when the server had acknowledged all of it (the
    window between them is the fault's onset). Toxic operations go to each server in one
    `POST /toxics/batch` (BATCH_ITEMS per request, all shards at once) when it is the compatible
    server, else one request per toxic, `max_workers` at a time (the real Toxiproxy has no bulk toxic
    API: 5,512 links took 10.7 s that way on the loaded 2-core machine).

    With `probe` given, every cut, heal and partition is followed by `verify(probe)` and the
    verification record is stored under "verified"; a failed verification raises FaultError (its
    `record` is the verification, its `applied` the operation's record). With `probe_timeouts_ms`
    too, that probe is called as `probe(src, dst, timeout_ms)` on the module `verify`'s escalating
    schedule.
    """

    def __init__(
        self,
        api: ToxiproxyAPI,
        topology: Topology,
        *,
        clock: Callable[[], float] = time.time,
        max_workers: int = MAX_WORKERS,
        seed: int = 0,
        probe_workers: int = PROBE_WORKERS,
        probe: Callable[[str, str], bool] | None = None,
        verify_deadline_s: float = 10.0,
        verify_sample: int = 8,
        probe_timeouts_ms: Sequence[int] | None = None,
        verify_max_changed: int | None = VERIFY_MAX_CHANGED,
    ):
        self.api = api
        self.verify_max_changed = verify_max_changed
        self.probe = probe
        self.probe_timeouts_ms = tuple(probe_timeouts_ms) if probe_timeouts_ms else None
        self.verify_deadline_s = verify_deadline_s
        self.verify_sample = verify_sample
        self.probe_workers = max(1, int(probe_workers))
        self.topology = topology
        self.clock = clock
        self.max_workers = max(1, int(max_workers))
        self.seed = seed
        self._verify_round = 0
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # proxy name -> {toxic name -> toxic dict as sent}
        self._toxics: dict[str, dict[str, dict]] = {}
        # links cut by us -> mode ("blackhole" | "refuse")
        self._cut: dict[Link, str] = {}
        self._flaky: set[Link] = set()
        self._verified: dict[Link, bool] = {link: True for link in topology.links}
        # nodes that cannot answer a probe (killed, stopped, paused by the nemesis): their links'
        # reachability is not asserted until they are back
        self._unavailable: set[str] = set()

    # -- creation --------------------------------------------------------------------------------

    def create_proxies(self, listen_host: str = "0.0.0.0") -> dict:
        """Create one proxy per link of the topology in bulk (`/populate`); record of what exists."""
        ts = self.clock()
        specs = self.topology.proxy_specs(listen_host)
        t0 = time.monotonic()
        got = self.api.populate(specs)
        elapsed = time.monotonic() - t0
        wrong = [
            g.get("name") for g, s in zip(got, specs)
            if g.get("name") != s["name"] or g.get("upstream") != s["upstream"]
        ]
        if wrong:
            raise FaultError(f"/populate answered with unexpected proxies: {wrong[:10]}")
        return {
            "ts": ts, "op": "create", "params": {"listen_host": listen_host},
            "proxies": [s["name"] for s in specs], "elapsed_s": round(elapsed, 4),
        }

    # -- the operations --------------------------------------------------------------------------

    def cut(self, links: Iterable, mode: str = "blackhole") -> dict:
        """Cut each given directed link. blackhole: a `timeout` toxic (timeout 0) on both streams
        (connections hang, data is dropped, as with lost packets); refuse: the proxy is disabled
        (connects refused, live connections closed). Cutting A->B alone is a one-way cut.
        """
        t0 = time.monotonic()
        return self._autoverify(self._cut_links(links, mode), t0)

    def _cut_links(self, links: Iterable, mode: str) -> dict:
        if mode not in ("blackhole", "refuse"):
            raise ValueError(f"cut mode must be 'blackhole' or 'refuse', not {mode!r}")
        resolved = self.topology.resolve(links)
        with self._lock:
            other = [l for l in resolved if self._cut.get(l, mode) != mode]
        if other:  # switching a link between blackhole and refuse: undo the old kind first
            self._uncut(other)
        if mode == "refuse":
            rec = self._set_enabled(resolved, False, op="cut", params={"mode": mode})
        else:
            rec = self._add(resolved, "cut", "both", {"timeout": 0}, params={"mode": mode})
        with self._lock:
            for link in resolved:
                if link.name in rec["failed"]:
                    continue
                self._cut[link] = mode
        return self._finish(rec)

    def cut_one_way(self, src_nodes: Iterable[str], dst_nodes: Iterable[str],
                    mode: str = "blackhole") -> dict:
        """Every dst stops hearing every src (proxies src-dst cut); the reverse keeps working."""
        return self.cut(partition_mod.one_way(src_nodes, dst_nodes), mode)

    def latency(self, links: Iterable, ms: int, jitter_ms: int = 0, stream: str = "upstream") -> dict:
        """Every chunk on the link is delivered `ms` ± `jitter_ms` later (a pipeline delay)."""
        attrs = {"latency": _int_attr("ms", ms), "jitter": _int_attr("jitter_ms", jitter_ms)}
        return self._op("latency", links, stream, attrs)

    def bandwidth(self, links: Iterable, kb_s: int, stream: str = "upstream") -> dict:
        """At most `kb_s` KB/s (1 KB = 1000 bytes) per connection on the link."""
        return self._op("bandwidth", links, stream, {"rate": _int_attr("kb_s", kb_s, 1)})

    def reset(self, links: Iterable, timeout_ms: int = 0, stream: str = "upstream") -> dict:
        """The first data on each connection is dropped and the connection reset `timeout_ms`
        later (RST for connections accepted after the toxic was added, FIN for live ones)."""
        return self._op("reset", links, stream, {"timeout": _int_attr("timeout_ms", timeout_ms)})

    def stall(self, links: Iterable, ms: int, stream: str = "upstream") -> dict:
        """Stall: every byte sent on the link is held `ms` and then delivered, in order, and
        connections stay open (a `latency` toxic of `ms`, named chaos-stall-*). Removing it (heal)
        releases what it holds at once. Unlike a cut nothing is lost; unlike `latency` it is meant
        for holds longer than the peers' timeouts (seconds), so it is a separate, named fault."""
        return self._op("stall", links, stream, {"latency": _int_attr("ms", ms, 1), "jitter": 0})

    def slice(self, links: Iterable, avg: int, var: int = 0, delay_us: int = 0,
              stream: str = "upstream") -> dict:
        """Split the byte stream into pieces of `avg` ± `var` bytes, `delay_us` µs apart.
        `avg` must be >= 1: the real server crashes on a slicer with average_size 0."""
        avg = _int_attr("avg", avg, 1)
        var = _int_attr("var", var)
        if var >= avg:
            raise ValueError(f"slice var ({var}) must be below avg ({avg})")
        attrs = {"average_size": avg, "size_variation": var, "delay": _int_attr("delay_us", delay_us)}
        return self._op("slice", links, stream, attrs)

    def slow_close(self, links: Iterable, ms: int, stream: str = "downstream") -> dict:
        """A close in this direction is forwarded only `ms` later."""
        return self._op("slow_close", links, stream, {"delay": _int_attr("ms", ms)})

    def limit(self, links: Iterable, bytes: int, stream: str = "upstream") -> dict:
        """Each connection carries `bytes` bytes in this direction and is then closed."""
        return self._op("limit", links, stream, {"bytes": _int_attr("bytes", bytes)})

    def flaky(self, links: Iterable, toxicity: float, kind: str = "cut", **attrs: int) -> dict:
        """Apply `kind` (cut, latency, reset, ...) to a `toxicity` share of connections, drawn per
        connection. Named chaos-flaky-<kind>-*. The links' reachability is then indeterminate, so
        `verify` skips them until healed."""
        if not 0.0 < float(toxicity) < 1.0:
            raise ValueError(f"flaky toxicity must be in (0, 1), got {toxicity}")
        if kind not in _OPS:
            raise ValueError(f"flaky kind must be one of {sorted(_OPS)}, not {kind!r}")
        defaults = {"cut": {"timeout": 0}, "reset": {"timeout": 0}}
        full = dict(defaults.get(kind, {}), **attrs)
        for k, v in full.items():
            _int_attr(k, v)
        needs = {"latency": "latency", "stall": "latency", "bandwidth": "rate", "slice": "average_size",
                 "slow_close": "delay", "limit": "bytes"}
        if kind in needs and full.get(needs[kind], 0) < (1 if kind in ("bandwidth", "slice") else 0):
            raise ValueError(f"flaky {kind} needs {needs[kind]}= (>= 1 for bandwidth and slice)")
        if kind in needs and needs[kind] not in full:
            raise ValueError(f"flaky {kind} needs the attribute {needs[kind]}=")
        resolved = self.topology.resolve(links)
        type_, stream = _OPS[kind]
        rec = self._add(resolved, f"flaky-{kind}", stream, full, type_=type_,
                        toxicity=float(toxicity), params={"kind": kind, "toxicity": toxicity})
        with self._lock:
            self._flaky.update(l for l in resolved if l.name not in rec["failed"])
        return self._finish(rec)

    def heal(self, links: Iterable | None = None) -> dict:
        """Remove every toxic this layer added (any `chaos-` toxic, also ones left by an earlier
        controller) and re-enable disabled proxies, on the given links or (None) on every link of
        the topology. Toxics not named `chaos-...` are left alone."""
        ts, t0 = self.clock(), time.monotonic()
        resolved = self.topology.links if links is None else self.topology.resolve(links)
        wanted = {l.name for l in resolved}
        server = self.api.proxies()
        missing = sorted(wanted - set(server))
        removals, enables = [], []
        for name in sorted(wanted & set(server)):
            p = server[name]
            for t in p.get("toxics") or []:
                if str(t.get("name", "")).startswith(PREFIX):
                    removals.append((name, t))
            if not p.get("enabled", True):
                enables.append(name)

        def delete(name: str, t: dict) -> dict:
            # a reset_peer toxic blocks DELETE for up to its timeout on the real server (toxiproxy-api.md 2.2)
            extra = (t.get("attributes") or {}).get("timeout", 0) / 1000.0 if t.get("type") == "reset_peer" else 0
            return {"op": "delete", "proxy": name, "name": t["name"], "missing_ok": True,  # gone is fine
                    "timeout_s": self.api.timeout_s + max(0.0, extra)}

        failed = self._toxic_ops([delete(n, t) for n, t in removals])
        failed.update(self._parallel(lambda n: self.api.update_proxy(n, enabled=True), enables))
        with self._lock:
            for link in resolved:
                if link.name in failed:
                    continue
                self._toxics.pop(link.name, None)
                self._cut.pop(link, None)
                self._flaky.discard(link)
        rec = {
            "ts": ts, "op": "heal", "params": {"all": links is None},
            "proxies": [l.name for l in resolved],
            "removed": [f"{n}/{t['name']}" for n, t in removals if n not in failed],
            "enabled": [n for n in enables if n not in failed],
            "failed": failed,
        }
        if missing:
            rec["failed"].update({n: "proxy not found on the server" for n in missing})
        return self._autoverify(self._finish(rec), t0)

    def remove(self, links: Iterable, op: str) -> dict:
        """Remove only the toxics of one operation (`latency`, `flaky-cut`, ...) from these links,
        leaving cuts and other operations' toxics in place (a 404 means already gone)."""
        ts = self.clock()
        resolved = self.topology.resolve(links)
        pnames = [l.name for l in resolved]
        tnames = [toxic_name(op, s) for s in STREAMS]
        items = [(p, t) for p in pnames for t in tnames]
        failed = self._toxic_ops([{"op": "delete", "proxy": p, "name": t, "missing_ok": True} for p, t in items])
        flaky = op.startswith("flaky-")
        with self._lock:
            for l, name in zip(resolved, pnames):
                if name in failed:
                    continue
                mine = self._toxics.get(name, {})
                for t in tnames:
                    mine.pop(t, None)
                if flaky and not any(n.startswith(PREFIX + "flaky-") for n in mine):
                    self._flaky.discard(l)
        return self._finish({"ts": ts, "op": "remove", "params": {"op": op}, "proxies": pnames,
                             "removed": [f"{p}/{t}" for p, t in items if p not in failed], "failed": failed})

    def present(self, links: Iterable, op: str) -> dict[str, list[str]]:
        """Ask the server which of this operation's toxics each link's proxy has (proof that a link
        fault is in effect): proxy name -> toxic names present."""
        resolved = self.topology.resolve(links)
        want = {toxic_name(op, s) for s in STREAMS}
        try:
            server = self.api.proxies()   # one listing per shard, not one request per link
        except (FaultError, EnvironmentError_) as exc:
            raise FaultError(f"could not read the servers' proxy listing: {exc.message}") from exc
        missing = [l.name for l in resolved if l.name not in server]
        if missing:
            raise FaultError(f"could not read the toxics of {len(missing)} proxies: "
                             + "; ".join(f"{n}: proxy not listed" for n in missing[:3]))
        return {l.name: sorted(str(t.get("name")) for t in server[l.name].get("toxics") or []
                               if t.get("name") in want) for l in resolved}

    # -- partitions ------------------------------------------------------------------------------

    def apply_partition(self, partition, mode: str = "blackhole") -> dict:
        """Make the peer-link cuts exactly `partition`: either a cut set of (src, dst) pairs (from
        chaos.partition) or a mapping node -> nodes it cannot hear. Links cut before and no longer
        wanted are un-cut (their other toxics stay); client links are not touched. An empty
        partition heals every peer cut."""
        if isinstance(partition, Mapping):
            cut = partition_mod.cut_from_deaf_map(partition)
        else:
            cut = frozenset(tuple(p) for p in partition)
        wanted = set(self.topology.resolve(cut))
        if any(l.src == CLIENT for l in wanted):
            raise ValueError("a partition names nodes only; cut client links with cut()")
        with self._lock:
            current = {l: m for l, m in self._cut.items() if l.src != CLIENT}
        to_uncut = sorted((l for l in current if l not in wanted), key=str)
        to_cut = sorted((l for l in wanted if current.get(l) != mode), key=str)
        ts, t0 = self.clock(), time.monotonic()
        # New cuts first, then the old ones are lifted: in between, the cluster is cut at least as
        # much as both shapes (never transiently healed). Mode switches are done by _cut_links.
        rec_cut = self._cut_links(to_cut, mode) if to_cut else None
        rec_un = self._uncut(to_uncut) if to_uncut else None
        return self._autoverify({
            "ts": ts, "op": "partition", "params": {"mode": mode},
            "deaf": {n: sorted(s) for n, s in partition_mod.deaf_map(self.topology.nodes, cut).items() if s},
            "cut": [l.name for l in to_cut], "uncut": [l.name for l in to_uncut],
            "proxies": sorted({l.name for l in to_cut + to_uncut}),
            "steps": [r for r in (rec_cut, rec_un) if r],
            "done_ts": self.clock(),
        }, t0)

    def _uncut(self, links: list[Link]) -> dict:
        """Remove only the cut (timeout toxics / disabled proxy) from these links."""
        ts = self.clock()
        with self._lock:
            modes = {l: self._cut.get(l) for l in links}
        removals = [(l.name, toxic_name("cut", s)) for l in links if modes[l] == "blackhole" for s in STREAMS]
        enables = [l.name for l in links if modes[l] == "refuse"]
        failed = self._toxic_ops([{"op": "delete", "proxy": p, "name": t, "missing_ok": True} for p, t in removals])
        failed.update(self._parallel(lambda n: self.api.update_proxy(n, enabled=True), enables))
        with self._lock:
            for l in links:
                if l.name in failed:
                    continue
                self._cut.pop(l, None)
                for s in STREAMS:
                    self._toxics.get(l.name, {}).pop(toxic_name("cut", s), None)
        rec = {"ts": ts, "op": "uncut", "params": {}, "proxies": [l.name for l in links],
               "removed": [f"{p}/{t}" for p, t in removals if p not in failed],
               "enabled": [n for n in enables if n not in failed], "failed": failed}
        return self._finish(rec)

    # -- expected state and verification ---------------------------------------------------------

    def set_unavailable(self, node: str, unavailable: bool) -> None:
        """Mark a node as down (its links are not probed) or back (probed again when they change)."""
        with self._lock:
            if unavailable:
                self._unavailable.add(node)
            else:
                self._unavailable.discard(node)

    def unavailable(self) -> frozenset[str]:
        """The nodes marked down by `set_unavailable` (paused, killed or stopped by this run)."""
        with self._lock:
            return frozenset(self._unavailable)

    def expected_matrix(self) -> dict[Link, bool | None]:
        """Link -> True (reachable), False (cut by us) or None (flaky, carrying another of our
        toxics -- reachability then depends on the probe's timeout -- or touching a node marked
        unavailable: not asserted)."""
        with self._lock:
            out: dict[Link, bool | None] = {}
            for link in self.topology.links:
                if link.src in self._unavailable or link.dst in self._unavailable:
                    out[link] = None
                elif link in self._cut:
                    out[link] = False
                elif link in self._flaky or self._toxics.get(link.name):
                    out[link] = None
                else:
                    out[link] = True
            return out

    def verify(
        self,
        probe: Callable[[str, str], bool],
        *,
        sample: int = 8,
        deadline_s: float = 10.0,
        include_client: bool = True,
        max_changed: int | None = None,
        timeouts_ms: Sequence[int] | None = None,
    ) -> dict:
        """Prove the current expected matrix with `probe(src, dst) -> bool`: every link whose
        expected state changed since the last successful verify, plus `sample` unchanged ones drawn
        with a seeded RNG (seed and round recorded). Raises FaultError naming the mismatches."""
        expected = self.expected_matrix()
        if not include_client:
            expected = {l: v for l, v in expected.items() if l.src != CLIENT}
        changed = [l for l, v in expected.items() if v is not None and self._verified.get(l) != v]
        self._verify_round += 1
        label = f"{self.seed}:{self._verify_round}"
        rng = random.Random(label)
        result = verify(
            expected, probe, changed=changed, sample=sample, rng=rng,
            deadline_s=deadline_s, max_workers=self.probe_workers, max_changed=max_changed,
            seed_label=label, refresh=self.expected_matrix, timeouts_ms=timeouts_ms,
        )
        for l, v in expected.items():
            if v is not None:
                self._verified[l] = v
        return result

    # -- internals -------------------------------------------------------------------------------

    def _autoverify(self, rec: dict, t0: float | None = None) -> dict:
        """With a probe: the servers' listing must show every link of the record in the state this
        controller intends (`listing_disagreements`), then `verify(probe)` (at most
        `verify_max_changed` changed links probed). Records `apply_ms` (from `t0`, the operation's
        start, to the servers' acknowledgement) and `verify_ms` (listing and probes)."""
        if t0 is not None:
            rec["apply_ms"] = round((time.monotonic() - t0) * 1000, 1)
        if self.probe is None:
            return rec
        v0 = time.monotonic()
        try:
            names = rec.get("proxies")
            wrong = self.listing_disagreements(self.topology.links if names is None else names)
            if wrong:
                detail = "; ".join(f"{n}: {wrong[n]}" for n in sorted(wrong)[:5])
                err = FaultError(
                    f"{rec.get('op')}: the server listing disagrees with the intended state on "
                    f"{len(wrong)} link(s): {detail}" + (f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else ""),
                    hint="the fault could not be verified; the run is a harness error, not a result")
                err.record = {"op": "verify", "listing_mismatched": sorted(wrong)}
                raise err
            ver = self.verify(
                self.probe, sample=self.verify_sample, deadline_s=self.verify_deadline_s,
                timeouts_ms=self.probe_timeouts_ms, max_changed=self.verify_max_changed)
            ver["listing_checked"] = len(names) if names is not None else len(self.topology.links)
            rec["verified"] = ver
        except FaultError as exc:
            exc.applied = rec
            raise
        rec["verify_ms"] = round((time.monotonic() - v0) * 1000, 1)
        return rec

    def listing_disagreements(self, links: Iterable) -> dict[str, str]:
        """Compare the servers' listing (one `GET /proxies` per shard) with what this controller
        intends on these links: exactly its `chaos-` toxics (type, stream, toxicity, attributes)
        and the proxy disabled only when cut in `refuse` mode. {proxy: what differs}."""
        resolved = self.topology.resolve(links)
        server = self.api.proxies()
        with self._lock:
            want = {l.name: dict(self._toxics.get(l.name, {})) for l in resolved}
            refused = {l.name for l in resolved if self._cut.get(l) == "refuse"}
        wrong: dict[str, str] = {}
        for link in resolved:
            p = server.get(link.name)
            if p is None:
                wrong[link.name] = "proxy not listed"
                continue
            if bool(p.get("enabled", True)) == (link.name in refused):
                wrong[link.name] = f"enabled={p.get('enabled')}"
                continue
            listed = {str(t.get("name")): t for t in p.get("toxics") or []
                      if str(t.get("name", "")).startswith(PREFIX)}
            extra = sorted(set(listed) - set(want[link.name]))
            if extra:
                wrong[link.name] = f"lists {extra}, not intended"
                continue
            for name, t in sorted(want[link.name].items()):
                diff = "not listed" if name not in listed else _toxic_diff(t, listed[name])
                if diff:
                    wrong[link.name] = f"{name} {diff}"
                    break
        return wrong

    def _executor(self) -> ThreadPoolExecutor:
        """One pool for the controller's lifetime, so its threads keep their keep-alive sessions."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="chaos-toxi")
            return self._pool

    def close(self) -> None:
        """Stop the request threads (the controller stays usable; a new pool starts on demand)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> "LinkController":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _op(self, op: str, links: Iterable, stream: str, attrs: dict) -> dict:
        resolved = self.topology.resolve(links)
        type_, _ = _OPS[op]
        return self._finish(self._add(resolved, op, stream, attrs, type_=type_, params=dict(attrs, stream=stream)))

    def _add(self, links: list[Link], op: str, stream: str, attrs: dict, *,
             type_: str | None = None, toxicity: float = 1.0, params: dict | None = None) -> dict:
        ts = self.clock()
        type_ = type_ or _OPS[op][0]
        items = [
            (link.name, {"name": toxic_name(op, s), "type": type_, "stream": s,
                         "toxicity": toxicity, "attributes": dict(attrs)})
            for link in links for s in _streams(stream)
        ]

        with self._lock:
            known = {(p, t["name"]) for p, t in items if t["name"] in self._toxics.get(p, {})}
        failed = self._toxic_ops([{"op": "set", "proxy": p, "toxic": t, "known": (p, t["name"]) in known}
                                  for p, t in items])
        with self._lock:
            for proxy, toxic in items:
                if proxy not in failed:
                    self._toxics.setdefault(proxy, {})[toxic["name"]] = toxic
        return {
            "ts": ts, "op": op, "params": params or {},
            "proxies": [l.name for l in links],
            "toxics": [dict(t, proxy=p) for p, t in items if p not in failed],
            "failed": failed,
        }

    def _toxic_ops(self, ops: list[dict]) -> dict[str, str]:
        """Toxic operations through the server's batch endpoint when it has one, else one request
        each on the pool; {proxy: error text} for the failures (first error per proxy)."""
        if not ops:
            return {}
        pool = None if self.max_workers == 1 else self._executor()
        failed: dict[str, str] = {}
        for op, err in zip(ops, self.api.toxic_ops(ops, pool)):
            if err is not None:
                failed.setdefault(op["proxy"], err)
        return failed

    def listing_mismatches(self, links: Iterable, op: str, present: bool = True) -> dict[str, str]:
        """Check the servers' own listings (one `GET /proxies` per shard) for this operation's toxics
        on these links: with `present`, every toxic this controller set for `op` is listed with the
        same type, stream, toxicity and attributes; without, none of `op`'s toxics is listed.
        Returns {proxy: what is wrong}; empty when the listing agrees."""
        pnames = [l.name for l in self.topology.resolve(links)]
        server = self.api.proxies()
        names = {toxic_name(op, s) for s in STREAMS}
        with self._lock:
            want = {p: {n: t for n, t in self._toxics.get(p, {}).items() if n in names} for p in pnames}
        wrong: dict[str, str] = {}
        for pname in pnames:
            p = server.get(pname)
            if p is None:
                wrong[pname] = "proxy not listed"
                continue
            listed = {str(t.get("name")): t for t in p.get("toxics") or [] if t.get("name") in names}
            if not present:
                if listed:
                    wrong[pname] = f"still lists {sorted(listed)}"
                continue
            if not want[pname]:
                wrong[pname] = f"no {op} toxic was set here"
                continue
            for name, t in sorted(want[pname].items()):
                got = listed.get(name)
                if got is None:
                    wrong[pname] = f"{name} not listed"
                    break
                diff = _toxic_diff(t, got)
                if diff:
                    wrong[pname] = f"{name}: {diff}"
                    break
        return wrong

    def _set_enabled(self, links: list[Link], enabled: bool, *, op: str, params: dict) -> dict:
        ts = self.clock()
        names = [l.name for l in links]
        failed = self._parallel(lambda n: self.api.update_proxy(n, enabled=enabled), names)
        key = "enabled" if enabled else "disabled"
        return {"ts": ts, "op": op, "params": params, "proxies": names,
                key: [n for n in names if n not in failed], "failed": failed}

    def _parallel(self, fn: Callable, items: list, key: Callable = lambda x: x) -> dict[str, str]:
        """Run fn over items on a bounded pool; return {key(item): error text} for the failures.
        Programming errors (anything but our typed errors) propagate."""
        failed: dict[str, str] = {}
        if not items:
            return failed

        def one(item):
            try:
                fn(item)
                return None
            except (FaultError, EnvironmentError_) as exc:
                return key(item), exc.message

        if len(items) == 1 or self.max_workers == 1:
            results = [one(i) for i in items]
        else:
            results = list(self._executor().map(one, items))
        for r in results:
            if r is not None:
                failed.setdefault(r[0], r[1])
        return failed

    def _finish(self, rec: dict) -> dict:
        """Raise when any proxy failed (naming them), otherwise return the record."""
        failed = rec.get("failed") or {}
        if failed:
            names = sorted(failed)
            detail = "; ".join(f"{n}: {failed[n]}" for n in names[:5])
            more = f" (and {len(names) - 5} more)" if len(names) > 5 else ""
            err = FaultError(
                f"{rec['op']} failed on {len(names)} of {len(rec.get('proxies', []))} proxies: {detail}{more}",
                hint="run `heal` to remove whatever part was applied",
            )
            err.record = rec
            raise err
        rec.pop("failed", None)
        rec["done_ts"] = self.clock()
        return rec


def _toxic_diff(asked: Mapping, listed: Mapping) -> str:
    """'' when the listed toxic is the one asked for (type, stream, toxicity as a float32, and every
    attribute asked), else what differs."""
    if (listed.get("type") == asked.get("type") and listed.get("stream") == asked.get("stream")
            and listed.get("toxicity") == asked.get("toxicity", 1.0)):   # the usual case, exactly
        attrs = listed.get("attributes") or {}
        if all(attrs.get(k) == v for k, v in (asked.get("attributes") or {}).items()):
            return ""
    for key in ("type", "stream"):
        if str(listed.get(key, "")).lower() != str(asked.get(key, "")).lower():
            return f"{key} {listed.get(key)!r}, asked {asked.get(key)!r}"
    want_tox = float(asked.get("toxicity", 1.0))
    got_tox = listed.get("toxicity")
    if not isinstance(got_tox, (int, float)) or abs(float(got_tox) - want_tox) > 1e-6 * max(1.0, abs(want_tox)):
        return f"toxicity {got_tox!r}, asked {want_tox:g}"
    attrs = listed.get("attributes") or {}
    for k, v in (asked.get("attributes") or {}).items():
        if attrs.get(k) != v:
            return f"attribute {k}={attrs.get(k)!r}, asked {v!r}"
    return ""


# -- verification ----------------------------------------------------------------------------------


def probe_timeout_ms(timeouts_ms: Sequence[int], attempt: int) -> int:
    """The probe timeout of the `attempt`-th (0-based) probe of a link expected reachable: the
    schedule's entry, its last entry once exhausted."""
    return int(timeouts_ms[min(max(attempt, 0), len(timeouts_ms) - 1)])


def verify(
    expected: Mapping[Any, bool | None],
    probe: Callable[[str, str], bool],
    *,
    changed: Iterable = (),
    sample: int = 8,
    rng: random.Random | None = None,
    deadline_s: float = 10.0,
    interval_s: float = 0.05,
    max_workers: int = PROBE_WORKERS,
    max_changed: int | None = None,
    seed_label: str | None = None,
    refresh: Callable[[], Mapping[Any, bool | None]] | None = None,
    timeouts_ms: Sequence[int] | None = None,
) -> dict:
    """Check that `probe(src, dst)` agrees with `expected[(src, dst)]` for every link in `changed`
    plus `sample` other links drawn with `rng` (links whose expectation is None are skipped).

    `max_changed` bounds how many changed links are probed (a seeded sample of them when there are
    more; the record then says `capped: true`); None checks them all.

    Each link is probed until it agrees or `deadline_s` passes (a new toxic needs a moment to cover
    fresh connections); the first round always completes, however long it takes. A probe that raises
    counts as a disagreement and its error is kept. `probe` must be thread-safe: up to
    `max_workers` run at once. For client links it is called as probe("client", node). Raises
    FaultError naming every link that never agreed. Returns a record of what was checked, with
    `agreed_cut` / `agreed_open` ([src, dst] pairs the probes showed cut / reachable: the evidence a
    partition took effect, chaos.fault_effect).

    `refresh`, when given, returns the current expectations before each retry round: a link whose
    expectation has become None meanwhile (its node was killed or paused by another fault) is no
    longer asserted, and the record counts it under `dropped`.

    `timeouts_ms`, when given, makes the probe's timeout part of the question: `probe(src, dst,
    timeout_ms)`. A link expected reachable is asked with `probe_timeout_ms(timeouts_ms, attempt)`,
    longer at each retry (one answer in time proves it reachable, and a healthy link on a loaded
    machine can take longer than the first timeout for the whole deadline); a link expected cut is
    always asked with the first (its probe costs the whole timeout). The record keeps the longest
    timeout used as `probe_timeout_ms_max`.
    """
    rng = rng or random.Random(0)
    keyed = {Link(*k): v for k, v in expected.items()}
    changed_set = {Link(*c) for c in changed}
    unknown = sorted(str(c) for c in changed_set if c not in keyed)
    if unknown:
        raise ValueError(f"changed links not in the expected matrix: {unknown[:5]}")
    check = sorted((l for l in changed_set if keyed[l] is not None), key=tuple)
    changed_total = len(check)
    if max_changed is not None and len(check) > max_changed:  # a bound, reported in the record
        check = sorted(rng.sample(check, max_changed), key=tuple)
    rest = sorted((l for l, v in keyed.items() if v is not None and l not in changed_set), key=tuple)
    sampled = rng.sample(rest, min(sample, len(rest)))
    todo = {l: keyed[l] for l in check + sampled}
    last: dict[Link, str] = {}
    attempts: dict[Link, int] = {l: 0 for l in todo}
    end = time.monotonic() + deadline_s
    t0 = time.monotonic()
    used: list[int] = []  # probe timeouts asked (list.append is thread-safe)

    def one(link: Link):
        try:
            if timeouts_ms:
                timeout = probe_timeout_ms(timeouts_ms, attempts[link] if todo[link] else 0)
                used.append(timeout)
                got = bool(probe(link.src, link.dst, timeout))
            else:
                got = bool(probe(link.src, link.dst))
            return link, got, None
        except Exception as exc:  # the probe is the environment's; any failure is "not proven"
            return link, None, f"{exc.__class__.__name__}: {exc}"

    pending = dict(todo)
    dropped: list[Link] = []
    agreed: dict[Link, bool] = {}  # link -> the state the probe showed (the evidence a fault took effect)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(todo) or 1))) as pool:
        while pending:
            if refresh is not None:
                now = {Link(*k): v for k, v in refresh().items()}
                for link in [l for l in pending if now.get(l, pending[l]) is None]:
                    del pending[link]
                    last.pop(link, None)
                    dropped.append(link)
                if not pending:
                    break
            for link, got, err in pool.map(one, list(pending)):
                attempts[link] += 1
                if err is None and got == pending[link]:
                    agreed[link] = got
                    del pending[link]
                    last.pop(link, None)
                else:
                    last[link] = err or f"probe says {'reachable' if got else 'unreachable'}"
            if not pending or time.monotonic() >= end:
                break
            time.sleep(interval_s)
    record = {
        "ts": time.time(), "op": "verify",
        "checked": [l.name for l in check], "sampled": [l.name for l in sampled],
        "attempts_max": max(attempts.values(), default=0),
        "changed_total": changed_total, "capped": len(check) < changed_total,
        "dropped": [l.name for l in dropped],
        "agreed_cut": [[l.src, l.dst] for l in sorted(agreed, key=tuple) if not agreed[l]],
        "agreed_open": [[l.src, l.dst] for l in sorted(agreed, key=tuple) if agreed[l]],
        "seed": seed_label,
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
    if timeouts_ms:
        record["probe_timeout_ms_max"] = max(used, default=None)
    if pending:
        names = sorted(pending, key=tuple)
        detail = "; ".join(
            f"{l.name} expected {'reachable' if pending[l] else 'cut'}, {last.get(l, '?')}" for l in names[:8]
        )
        more = f" (and {len(names) - 8} more)" if len(names) > 8 else ""
        err = FaultError(
            f"reachability not as intended after {deadline_s:g} s on {len(names)} link(s): {detail}{more}"
            + (f" [sample seed {seed_label}]" if seed_label else ""),
            hint="the fault could not be verified; the run is a harness error, not a result",
        )
        record["mismatched"] = [l.name for l in names]
        err.record = record
        raise err
    return record
