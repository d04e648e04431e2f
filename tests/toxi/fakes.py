"""In-memory stand-ins used by the controller tests: a Toxiproxy API double that keeps the server
state the way the HTTP API reports it, and a probe driven by that state (no sockets)."""

from __future__ import annotations

import threading

from chaos.toxi import ToxiproxyHTTPError, toxic_ops_singly


class FakeAPI:
    """Implements the subset of ToxiproxyAPI that LinkController calls, on dicts."""

    timeout_s = 5.0

    def __init__(self, fail_on: set[str] | None = None, ignore_toxics: bool = False):
        self.state: dict[str, dict] = {}
        self.fail_on = set(fail_on or ())
        self.ignore_toxics = ignore_toxics  # a broken server that accepts and drops toxics
        self.calls: list[tuple] = []
        self._lock = threading.Lock()

    def _check(self, proxy):
        if proxy in self.fail_on:
            raise ToxiproxyHTTPError(f"Toxiproxy: 500 boom on {proxy}", 500)
        if proxy not in self.state:
            raise ToxiproxyHTTPError("Toxiproxy: 404 proxy not found", 404)

    def populate(self, specs):
        out = []
        for s in specs:
            self.state[s["name"]] = dict(s, toxics=[])
            out.append(self.state[s["name"]])
        return out

    def proxies(self):
        with self._lock:
            return {n: dict(p, toxics=[dict(t) for t in p["toxics"]]) for n, p in self.state.items()}

    def add_toxic(self, proxy, name, type, stream="downstream", toxicity=1.0, attributes=None):
        with self._lock:
            self.calls.append(("add", proxy, name))
            self._check(proxy)
            if any(t["name"] == name for t in self.state[proxy]["toxics"]):
                raise ToxiproxyHTTPError("Toxiproxy: 409 toxic already exists", 409)
            t = {"name": name, "type": type, "stream": stream, "toxicity": toxicity,
                 "attributes": dict(attributes or {})}
            if not self.ignore_toxics:
                self.state[proxy]["toxics"].append(t)
            return t

    def update_toxic(self, proxy, name, attributes=None, toxicity=None):
        with self._lock:
            self.calls.append(("update", proxy, name))
            self._check(proxy)
            for t in self.state[proxy]["toxics"]:
                if t["name"] == name:
                    t["attributes"].update(attributes or {})
                    if toxicity is not None:
                        t["toxicity"] = toxicity
                    return t
            raise ToxiproxyHTTPError("Toxiproxy: 404 toxic not found", 404)

    def delete_toxic(self, proxy, name, timeout_s=None):
        with self._lock:
            self.calls.append(("delete", proxy, name))
            self._check(proxy)
            before = len(self.state[proxy]["toxics"])
            self.state[proxy]["toxics"] = [t for t in self.state[proxy]["toxics"] if t["name"] != name]
            if len(self.state[proxy]["toxics"]) == before:
                raise ToxiproxyHTTPError("Toxiproxy: 404 toxic not found", 404)

    def toxic_ops(self, ops, pool=None, batch=None):
        """No batch endpoint: each operation through the single calls above (the real server's path)."""
        return toxic_ops_singly(self, ops, pool)

    def update_proxy(self, name, **fields):
        with self._lock:
            self.calls.append(("update_proxy", name, tuple(sorted(fields.items()))))
            self._check(name)
            self.state[name].update(fields)
            return self.state[name]


def state_probe(api: FakeAPI):
    """probe(src, dst): reachable unless the proxy is disabled or has a timeout toxic."""

    def probe(src, dst):
        p = api.state[f"{src}-{dst}"]
        if not p.get("enabled", True):
            return False
        return not any(t["type"] == "timeout" and t["toxicity"] >= 1 for t in p["toxics"])

    return probe
