"""Conformance: HTTP API of Toxiproxy 2.12.0 (status codes, JSON shapes and key order, defaults,
error texts and content types, update semantics, /reset, /populate). Black-box over TOXIPROXY_URL.
Must not import `chaos` or `swarmnode`.
"""

from __future__ import annotations

import json
import socket

import pytest

from .conftest import connect, free_port, recv_exact, wait_until

pytestmark = pytest.mark.process

PROXY_KEYS = ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
TOXIC_KEYS = ["attributes", "name", "type", "stream", "toxicity"]


def check_error(r, status, message=None, prefix=None):
    """An error from a routed endpoint: Go's http.Error with a JSON text body."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("X-Toxiproxy-Request-Id")
    assert r.text.endswith("}\n")
    body = json.loads(r.text)
    assert list(body) == ["error", "status"]
    assert body["status"] == status
    if message is not None:
        assert body["error"] == message
    if prefix is not None:
        assert body["error"].startswith(prefix), body["error"]


def check_json(r, status):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert not r.text.endswith("\n")
    assert r.headers.get("X-Toxiproxy-Request-Id")
    return json.loads(r.text)


# -- general behaviour

def test_api_version_is_json_with_newline(api):
    r = api.req("GET", "/version")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json;charset=utf-8"
    assert r.text.endswith("\n")
    version = json.loads(r.text)["version"]
    assert tuple(int(x) for x in version.split(".")[:2]) >= (2, 6)


def test_api_unknown_path_is_plain_404(api):
    for path in ("/nope", "/proxies/", "/proxies/x/toxics/", "/proxies/x/y"):
        r = api.req("GET", path)
        assert r.status_code == 404, path
        assert r.text == "404 page not found\n"
        assert "X-Toxiproxy-Request-Id" not in r.headers


def test_api_wrong_method_is_empty_405(api):
    for method, path in (("PUT", "/proxies"), ("DELETE", "/proxies"), ("GET", "/reset"), ("POST", "/version"),
                         ("HEAD", "/proxies"), ("HEAD", "/version"), ("GET", "/populate")):
        r = api.req(method, path)
        assert r.status_code == 405, (method, path)
        assert r.content == b""
        assert "X-Toxiproxy-Request-Id" not in r.headers


def test_api_browser_user_agent_is_403(api):
    r = api.req("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert r.status_code == 403
    assert r.text == "User agent not allowed\n"


def test_api_metrics_off_by_default(api):
    assert api.req("GET", "/metrics").status_code == 404


# -- proxies

def test_proxies_create_shape_and_bound_listen(api, echo):
    name = api.name()
    r = api.req("POST", "/proxies", json={"name": name, "upstream": echo.addr, "listen": "localhost:0"})
    api.created.append(name)
    body = check_json(r, 201)
    assert list(body) == PROXY_KEYS
    assert body["Logger"] == {} and body["toxics"] == [] and body["enabled"] is True
    assert body["upstream"] == echo.addr
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    got = check_json(api.req("GET", f"/proxies/{name}"), 200)
    assert got == body
    assert api.req("GET", f"/proxies/{name}").text == r.text


def test_proxies_create_without_listen_binds_all_interfaces(api, echo):
    name = api.name()
    r = api.req("POST", "/proxies", json={"name": name, "upstream": echo.addr})
    api.created.append(name)
    body = check_json(r, 201)
    assert body["listen"].startswith("[::]:")
    assert int(body["listen"].rsplit(":", 1)[1]) > 0


def test_proxies_create_disabled_reports_listen_as_given(api, echo):
    p = api.create(echo.addr, listen="localhost:0", enabled=False)
    assert p["enabled"] is False and p["listen"] == "localhost:0"


def test_proxies_list_is_object_sorted_by_name(api, echo):
    base = api.name("sort")
    for suffix in ("c", "a", "b"):
        api.create(echo.addr, name=base + suffix)
    r = api.req("GET", "/proxies")
    body = check_json(r, 200)
    mine = [k for k in body if k.startswith(base)]
    assert mine == [base + "a", base + "b", base + "c"]
    assert all(list(v) == PROXY_KEYS for v in body.values())
    assert list(body) == sorted(body)


def test_proxies_create_errors(api, echo):
    check_error(api.req("POST", "/proxies", body=b""), 400, "bad request body: EOF")
    check_error(api.req("POST", "/proxies", body=b"{"), 400, prefix="bad request body: ")
    check_error(api.req("POST", "/proxies", body=b'{"name": 5, "upstream": "x:1"}'), 400, prefix="bad request body: ")
    check_error(api.req("POST", "/proxies", json={"upstream": echo.addr}), 400, "missing required field: name")
    check_error(api.req("POST", "/proxies", json={"name": "x"}), 400, "missing required field: upstream")
    p = api.create(echo.addr)
    check_error(api.req("POST", "/proxies", json={"name": p["name"], "upstream": echo.addr}), 409, "proxy already exists")


def test_proxies_create_ignores_trailing_junk_and_unknown_fields(api, echo):
    name = api.name()
    body = json.dumps({"name": name, "upstream": echo.addr, "listen": "127.0.0.1:0", "colour": 1}) + " trailing"
    r = api.req("POST", "/proxies", body=body.encode())
    api.created.append(name)
    check_json(r, 201)


def test_proxies_create_on_taken_port_is_500_and_not_registered(api, echo):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        name = api.name()
        r = api.req("POST", "/proxies", json={"name": name, "upstream": echo.addr, "listen": f"127.0.0.1:{port}"})
        check_error(r, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
        check_error(api.req("GET", f"/proxies/{name}"), 404, "proxy not found")
    finally:
        taken.close()
    r = api.req("POST", "/proxies", json={"name": api.name(), "upstream": echo.addr, "listen": "nonsense"})
    check_error(r, 500, "listen tcp: address nonsense: missing port in address")


def test_proxies_get_delete_not_found(api):
    check_error(api.req("GET", "/proxies/missing-proxy"), 404, "proxy not found")
    check_error(api.req("DELETE", "/proxies/missing-proxy"), 404, "proxy not found")
    check_error(api.req("PATCH", "/proxies/missing-proxy", json={}), 404, "proxy not found")
    check_error(api.req("GET", "/proxies/missing-proxy/toxics"), 404, "proxy not found")


def test_proxies_delete_is_204_and_closes_listener(api, echo):
    p = api.create(echo.addr)
    r = api.req("DELETE", f"/proxies/{p['name']}")
    assert r.status_code == 204 and r.content == b""
    assert "Content-Type" not in r.headers
    with pytest.raises(OSError):
        connect(p, timeout=2)


def test_proxies_path_parameters_are_decoded(api, echo):
    name = api.name("sp ace")
    api.create(echo.addr, name=name)
    assert api.req("GET", "/proxies/" + name.replace(" ", "%20")).json()["name"] == name


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_proxies_update_subset_and_enable_toggle(api, echo, method):
    p = api.create(echo.addr)
    name = p["name"]
    check_error(api.req(method, f"/proxies/{name}", body=b""), 400, "bad request body: EOF")
    same = check_json(api.req(method, f"/proxies/{name}", json={}), 200)
    assert same == p
    s = connect(p)
    s.sendall(b"x")
    assert recv_exact(s, 1) == b"x"     # the proxy has taken the connection
    off = check_json(api.req(method, f"/proxies/{name}", json={"enabled": False, "name": "ignored"}), 200)
    assert off["enabled"] is False and off["name"] == name and off["listen"] == p["listen"]
    s.settimeout(3)
    assert s.recv(10) == b""     # live connections are closed with a FIN
    with pytest.raises(OSError):
        connect(p, timeout=2)
    on = check_json(api.req(method, f"/proxies/{name}", json={"enabled": True}), 200)
    assert on["enabled"] is True
    s = connect(on)
    s.sendall(b"ping")
    assert recv_exact(s, 4) == b"ping"


def test_proxies_update_listen_resolved_compare_keeps_connections(api, echo):
    p = api.create(echo.addr)
    port = p["listen"].rsplit(":", 1)[1]
    s = connect(p)
    r = check_json(api.req("PATCH", f"/proxies/{p['name']}", json={"listen": f"localhost:{port}"}), 200)
    assert r["listen"] == p["listen"]
    s.sendall(b"still")
    assert recv_exact(s, 5) == b"still"


def test_proxies_update_upstream_restarts_and_closes_connections(api, echo, upstream_factory):
    other = upstream_factory("echo")
    p = api.create(echo.addr)
    s = connect(p)
    s.sendall(b"a")
    assert recv_exact(s, 1) == b"a"
    r = check_json(api.req("PATCH", f"/proxies/{p['name']}", json={"upstream": other.addr}), 200)
    assert r["upstream"] == other.addr and r["listen"] == p["listen"]
    s.settimeout(3)
    assert s.recv(10) == b""
    s2 = connect(r)
    s2.sendall(b"b")
    assert recv_exact(s2, 1) == b"b"
    wait_until(lambda: other.accepted == 1)


def test_proxies_update_listen_moves_listener_and_closes_connections(api, echo):
    p = api.create(echo.addr)
    s = connect(p)
    s.sendall(b"a")
    assert recv_exact(s, 1) == b"a"
    new_port = free_port()
    r = check_json(api.req("PATCH", f"/proxies/{p['name']}", json={"listen": f"127.0.0.1:{new_port}"}), 200)
    assert r["listen"] == f"127.0.0.1:{new_port}" and r["enabled"] is True
    s.settimeout(3)
    assert s.recv(10) == b""
    with pytest.raises(OSError):
        connect(p, timeout=2)
    s2 = connect(r)
    s2.sendall(b"b")
    assert recv_exact(s2, 1) == b"b"


def test_proxies_update_to_taken_port_is_500_and_disabled(api, echo):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        p = api.create(echo.addr)
        r = api.req("PATCH", f"/proxies/{p['name']}", json={"listen": f"127.0.0.1:{port}"})
        check_error(r, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
        now = api.req("GET", f"/proxies/{p['name']}").json()
        assert now["enabled"] is False and now["listen"] == f"127.0.0.1:{port}"
    finally:
        taken.close()


# -- toxics

def test_toxics_defaults_shape_and_order(api, echo):
    p = api.create(echo.addr)
    name = p["name"]
    r = api.req("POST", f"/proxies/{name}/toxics", json={"type": "latency"})
    t = check_json(r, 200)
    assert list(t) == TOXIC_KEYS
    assert t == {"attributes": {"latency": 0, "jitter": 0}, "name": "latency_downstream", "type": "latency",
                 "stream": "downstream", "toxicity": 1}
    assert r.text.endswith('"toxicity":1}')
    api.toxic(name, type="slicer", stream="upstream", attributes={"average_size": 8})
    api.toxic(name, type="bandwidth", stream="UPSTREAM", toxicity=0.5, attributes={"rate": 7, "other": "x"})
    listed = check_json(api.req("GET", f"/proxies/{name}/toxics"), 200)
    assert [x["name"] for x in listed] == ["slicer_upstream", "bandwidth_UPSTREAM", "latency_downstream"]
    assert listed[0]["attributes"] == {"average_size": 8, "size_variation": 0, "delay": 0}
    assert listed[1]["attributes"] == {"rate": 7} and listed[1]["toxicity"] == 0.5
    assert listed[1]["stream"] == "UPSTREAM"
    assert api.req("GET", f"/proxies/{name}").json()["toxics"] == listed


def test_toxics_every_type_has_its_attributes(api, echo):
    p = api.create(echo.addr, enabled=False)
    expected = {"noop": {}, "latency": {"latency": 0, "jitter": 0}, "bandwidth": {"rate": 0},
                "slow_close": {"delay": 0}, "timeout": {"timeout": 0}, "reset_peer": {"timeout": 0},
                "slicer": {"average_size": 0, "size_variation": 0, "delay": 0}, "limit_data": {"bytes": 0}}
    for ttype, attrs in expected.items():
        t = api.toxic(p["name"], type=ttype, attributes=None)
        assert t["attributes"] == attrs and list(t["attributes"]) == list(attrs)


def test_toxics_create_errors_in_order(api, echo):
    p = api.create(echo.addr)
    path = f"/proxies/{p['name']}/toxics"
    check_error(api.req("POST", "/proxies/missing-proxy/toxics", json={"type": "latency"}), 404, "proxy not found")
    check_error(api.req("POST", path, body=b""), 400, "bad request body: EOF")
    check_error(api.req("POST", path, json={"type": "latency", "stream": ""}), 400,
                "stream was invalid, can be either upstream or downstream")
    check_error(api.req("POST", path, json={"type": "nope", "stream": "sideways"}), 400,
                "stream was invalid, can be either upstream or downstream")
    check_error(api.req("POST", path, json={"type": "nope"}), 400, "invalid toxic type")
    check_error(api.req("POST", path, json={"stream": "upstream"}), 400, "invalid toxic type")
    api.toxic(p["name"], type="latency", name="dup", stream="upstream")
    check_error(api.req("POST", path, json={"type": "noop", "name": "dup"}), 409, "toxic already exists")
    check_error(api.req("POST", path, json={"type": "latency", "name": "f", "attributes": {"latency": 100.5}}),
                400, prefix="bad request body: ")
    check_error(api.req("POST", path, json={"type": "latency", "name": "g", "attributes": {"latency": "1"}}),
                400, prefix="bad request body: ")
    names = [t["name"] for t in api.req("GET", path).json()]
    assert names == ["dup"]


def test_toxics_toxicity_has_no_range_check(api, echo):
    p = api.create(echo.addr)
    for i, tox in enumerate((2, 0, -1)):
        t = api.toxic(p["name"], type="noop", name=f"n{i}", toxicity=tox)
        assert t["toxicity"] == tox


def test_toxics_get_update_merge_delete(api, echo):
    p = api.create(echo.addr)
    base = f"/proxies/{p['name']}/toxics"
    api.toxic(p["name"], type="latency", name="lat", attributes={"latency": 100, "jitter": 10}, toxicity=0.75)
    got = check_json(api.req("GET", base + "/lat"), 200)
    assert got["attributes"] == {"latency": 100, "jitter": 10}
    check_error(api.req("GET", base + "/nope"), 404, "toxic not found")
    check_error(api.req("GET", "/proxies/missing-proxy/toxics/lat"), 404, "proxy not found")
    check_error(api.req("PATCH", base + "/lat", body=b""), 400, "bad request body: EOF")
    check_error(api.req("PATCH", base + "/nope", json={}), 404, "toxic not found")
    r = check_json(api.req("PATCH", base + "/lat", json={"attributes": {"latency": 200}, "stream": "upstream",
                                                          "type": "noop", "name": "renamed"}), 200)
    assert r == {"attributes": {"latency": 200, "jitter": 10}, "name": "lat", "type": "latency",
                 "stream": "downstream", "toxicity": 0.75}
    r = check_json(api.req("POST", base + "/lat", json={"toxicity": 0.25}), 200)
    assert r["toxicity"] == 0.25 and r["attributes"] == {"latency": 200, "jitter": 10}
    r = api.req("DELETE", base + "/lat")
    assert r.status_code == 204 and r.content == b""
    check_error(api.req("DELETE", base + "/lat"), 404, "toxic not found")
    assert api.req("GET", base).json() == []


def test_toxics_can_be_added_to_disabled_proxy(api, echo):
    p = api.create(echo.addr, enabled=False)
    t = api.toxic(p["name"], type="latency", attributes={"latency": 5})
    assert api.req("GET", f"/proxies/{p['name']}").json()["toxics"] == [t]


# -- reset

def test_reset_removes_toxics_and_enables_proxies(api, echo):
    a = api.create(echo.addr)
    b = api.create(echo.addr, enabled=False)
    api.toxic(a["name"], type="latency", attributes={"latency": 10})
    api.toxic(b["name"], type="noop")
    s = connect(a)
    r = api.req("POST", "/reset")
    assert r.status_code == 204 and r.content == b""
    after = api.req("GET", "/proxies").json()
    assert after[a["name"]]["toxics"] == [] and after[b["name"]]["toxics"] == []
    assert after[b["name"]]["enabled"] is True
    s.sendall(b"alive")       # ordinary connections survive a reset
    assert recv_exact(s, 5) == b"alive"


# -- populate

def test_populate_creates_in_request_order(api, echo):
    names = [api.name("pop") for _ in range(3)]
    items = [{"name": n, "upstream": echo.addr, "listen": "127.0.0.1:0"} for n in reversed(names)]
    r = api.req("POST", "/populate", json=items)
    api.created.extend(names)
    assert r.status_code == 201 and r.headers["Content-Type"] == "application/json"
    body = json.loads(r.text)
    assert list(body) == ["proxies"]
    assert [p["name"] for p in body["proxies"]] == list(reversed(names))
    assert all(list(p) == PROXY_KEYS and p["toxics"] == [] for p in body["proxies"])
    r = api.req("POST", "/populate", json=[])
    assert r.status_code == 201 and r.text == '{"proxies":null}'


def test_populate_rejects_whole_batch_on_missing_field(api, echo):
    n = api.name("pop")
    r = api.req("POST", "/populate", json=[{"name": n, "upstream": echo.addr}, {"upstream": echo.addr}])
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/json"
    assert r.text == '{"error":"missing required field: name at proxy 2","status":400,"proxies":null}'
    assert api.req("GET", f"/proxies/{n}").status_code == 404
    r = api.req("POST", "/populate", json={"name": n})
    assert r.status_code == 400 and json.loads(r.text)["proxies"] is None


def test_populate_keeps_identical_and_replaces_changed(api, echo, upstream_factory):
    other = upstream_factory("echo")
    port_a, port_b = free_port(), free_port()
    a, b = api.name("popa"), api.name("popb")
    api.created.extend([a, b])
    items = [{"name": a, "upstream": echo.addr, "listen": f"127.0.0.1:{port_a}"},
             {"name": b, "upstream": echo.addr, "listen": f"127.0.0.1:{port_b}"}]
    assert api.req("POST", "/populate", json=items).status_code == 201
    api.toxic(a, type="noop")
    api.toxic(b, type="noop")
    api.req("PATCH", f"/proxies/{a}", json={"enabled": False})
    items[0]["listen"] = f"localhost:{port_a}"        # same address after resolving
    items[1]["upstream"] = other.addr                   # changed
    r = api.req("POST", "/populate", json=items)
    assert r.status_code == 201
    out = {p["name"]: p for p in r.json()["proxies"]}
    assert out[a]["toxics"] and out[a]["enabled"] is False
    assert out[b]["toxics"] == [] and out[b]["upstream"] == other.addr and out[b]["enabled"] is True


def test_populate_stops_at_listen_failure_with_500(api, echo):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        ok, bad, never = api.name("pop"), api.name("pop"), api.name("pop")
        api.created.extend([ok, bad, never])
        items = [{"name": ok, "upstream": echo.addr, "listen": "127.0.0.1:0"},
                 {"name": bad, "upstream": echo.addr, "listen": f"127.0.0.1:{port}"},
                 {"name": never, "upstream": echo.addr, "listen": "127.0.0.1:0"}]
        r = api.req("POST", "/populate", json=items)
        assert r.status_code == 500 and r.headers["Content-Type"] == "application/json"
        body = json.loads(r.text)
        assert list(body) == ["error", "status", "proxies"]
        assert body["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
        assert [p["name"] for p in body["proxies"]] == [ok]
        assert api.req("GET", f"/proxies/{never}").status_code == 404
    finally:
        taken.close()
