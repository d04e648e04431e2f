"""The compatible server's toxic batch endpoint (`POST /toxics/batch`, an extension documented in
docs/toxiproxy-compat.md; the real server answers 404): all or nothing, per-item results, and the
batch's toxics acting on the data path like single ones."""

from __future__ import annotations

import os

import pytest

from .conftest import Upstream, connect

if os.environ.get("TOXIPROXY_URL"):
    pytest.skip("TOXIPROXY_URL is set: the batch endpoint is the compatible server's own",
                allow_module_level=True)


def toxics(api, proxy):
    r = api.req("GET", f"/proxies/{proxy}/toxics")
    assert r.status_code == 200
    return {t["name"]: t for t in r.json()}


def lat(name, ms, stream="upstream", toxicity=1.0):
    return {"name": name, "type": "latency", "stream": stream, "toxicity": toxicity,
            "attributes": {"latency": ms}}


@pytest.fixture
def two(api):
    up = Upstream("echo")
    a = api.create(up.addr)["name"]
    b = api.create(up.addr)["name"]
    yield a, b
    up.close()


def test_batch_empty_is_a_no_op_and_the_feature_probe(api):
    r = api.req("POST", "/toxics/batch", json=[])
    assert r.status_code == 200 and r.json() == {"applied": 0, "results": []}
    assert api.req("GET", "/toxics/batch").status_code == 405


def test_batch_applies_every_item_in_order_with_per_item_results(api, two):
    a, b = two
    api.toxic(a, **lat("old", 5))
    r = api.req("POST", "/toxics/batch", json=[
        {"op": "add", "proxy": a, "toxic": lat("x", 10)},
        {"op": "set", "proxy": b, "toxic": lat("y", 20, "downstream", 0.5)},
        {"op": "set", "proxy": a, "toxic": lat("old", 7)},            # exists: updated
        {"op": "update", "proxy": a, "name": "x", "toxic": {"attributes": {"jitter": 3}}},
        {"op": "delete", "proxy": b, "name": "nope", "missing_ok": True},
        {"op": "add", "proxy": b, "toxic": lat("z", 1)},
        {"op": "delete", "proxy": b, "name": "z"},                   # added earlier in this batch
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] == 7
    assert [x["status"] for x in body["results"]] == [200, 200, 200, 200, 204, 200, 204]
    assert body["results"][4].get("missing") is True
    ta, tb = toxics(api, a), toxics(api, b)
    assert ta["old"]["attributes"]["latency"] == 7 and ta["x"]["attributes"] == {"latency": 10, "jitter": 3}
    assert set(tb) == {"y"} and tb["y"]["stream"] == "downstream" and tb["y"]["toxicity"] == 0.5


@pytest.mark.parametrize("bad, status, text", [
    ({"op": "add", "proxy": "{b}", "toxic": lat("first", 1)}, 409, "toxic already exists"),  # added by item 0
    ({"op": "add", "proxy": "no-such-proxy", "toxic": lat("q", 1)}, 404, "proxy not found"),
    ({"op": "delete", "proxy": "{a}", "name": "absent"}, 404, "toxic not found"),
    ({"op": "add", "proxy": "{a}", "toxic": {"name": "q", "type": "nonsense"}}, 400, "invalid toxic type"),
    ({"op": "add", "proxy": "{a}", "toxic": {"name": "q", "type": "latency", "attributes": {"latency": 1.5}}},
     400, "bad request body"),
    ({"op": "frobnicate", "proxy": "{a}"}, 400, "op must be one of"),
    ({"op": "delete", "proxy": "{a}"}, 400, "missing required field: name"),
])
def test_batch_with_a_bad_item_applies_nothing_and_names_it(api, two, bad, status, text):
    a, b = two
    api.toxic(a, **lat("keep", 3))
    bad = {k: (v.format(a=a, b=b) if isinstance(v, str) else v) for k, v in bad.items()}
    r = api.req("POST", "/toxics/batch", json=[
        {"op": "add", "proxy": b, "toxic": lat("first", 10)},
        {"op": "delete", "proxy": a, "name": "keep"},
        bad,
        {"op": "add", "proxy": b, "toxic": lat("after", 10)},
    ])
    assert r.status_code == status, r.text
    body = r.json()
    assert body["index"] == 2 and body["applied"] == 0 and body["status"] == status
    assert body["error"].startswith("item 2") and text in body["error"]
    assert body["results"][:2] == [None, None] and body["results"][2]["status"] == status
    # nothing stayed applied: b has no toxic, a still has the one the batch would have deleted
    assert toxics(api, b) == {} and set(toxics(api, a)) == {"keep"}


def test_batch_not_an_array_is_400(api):
    r = api.req("POST", "/toxics/batch", json={"op": "add"})
    assert r.status_code == 400 and "JSON array" in r.json()["error"]
    r = api.req("POST", "/toxics/batch", body=b"[{")
    assert r.status_code == 400 and r.text.startswith('{"error":"bad request body')


def test_batch_toxics_act_on_live_connections(api, two):
    """A timeout toxic added by batch holds data on an already open connection; removed by batch,
    the connection is closed (spec 2.2: removing an applied timeout closes it)."""
    a, _ = two
    s = connect(api.req("GET", f"/proxies/{a}").json())
    s.sendall(b"hi")
    assert s.recv(2) == b"hi"
    cut = {"name": "cut", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}
    assert api.req("POST", "/toxics/batch", json=[{"op": "add", "proxy": a, "toxic": cut}]).status_code == 200
    s.settimeout(0.3)
    s.sendall(b"held")
    with pytest.raises(TimeoutError):
        s.recv(4)
    assert api.req("POST", "/toxics/batch", json=[{"op": "delete", "proxy": a, "name": "cut"}]).status_code == 200
    s.settimeout(5)
    assert s.recv(4) == b""
    s.close()


def test_batch_item_with_proxies_is_the_item_repeated_per_proxy(api, two):
    a, b = two
    api.toxic(b, **lat("old", 5))
    r = api.req("POST", "/toxics/batch", json=[
        {"op": "set", "proxies": [a, b], "toxic": lat("old", 9, toxicity=0.5)},   # a: added, b: updated
        {"op": "add", "proxies": [a, b], "toxic": lat("n", 3, "downstream")},
        {"op": "delete", "proxies": [a, b], "name": "gone", "missing_ok": True},
        {"op": "delete", "proxies": [], "name": "anything"},                       # no proxy: no-op
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] == 6
    assert body["results"] == [{"status": 200, "count": 2, "missing": 0}, {"status": 200, "count": 2, "missing": 0},
                               {"status": 204, "count": 2, "missing": 2}, {"status": 204, "count": 0, "missing": 0}]
    for p in (a, b):
        t = toxics(api, p)
        assert set(t) == {"old", "n"}
        assert t["old"]["attributes"]["latency"] == 9 and t["old"]["toxicity"] == 0.5
        assert t["n"]["stream"] == "downstream" and t["n"]["attributes"] == {"latency": 3, "jitter": 0}
    # the listing shows each proxy's toxics in insertion order, like single requests would leave them
    listed = api.req("GET", "/proxies").json()
    assert [x["name"] for x in listed[b]["toxics"]] == ["old", "n"]
    r = api.req("POST", "/toxics/batch", json=[{"op": "update", "proxies": [a, b], "name": "n",
                                                "toxic": {"attributes": {"latency": 4}}}])
    assert r.status_code == 200 and all(toxics(api, p)["n"]["attributes"]["latency"] == 4 for p in (a, b))


@pytest.mark.parametrize("bad, status, text", [
    ({"op": "add", "proxies": ["{a}", "{b}"], "toxic": lat("exists", 1)}, 409, "(proxy {b}): toxic already exists"),
    ({"op": "add", "proxies": ["{a}", "nope"], "toxic": lat("q", 1)}, 404, "(proxy nope): proxy not found"),
    ({"op": "delete", "proxies": ["{a}", "{b}"], "name": "exists"}, 404, "(proxy {a}): toxic not found"),
    ({"op": "add", "proxies": ["{a}"], "toxic": {"name": "q", "type": "nonsense"}}, 400, "invalid toxic type"),
    ({"op": "add", "proxies": "{a}", "toxic": lat("q", 1)}, 400, "proxies must be an array"),
    ({"op": "add", "proxy": "{a}", "proxies": ["{a}"], "toxic": lat("q", 1)}, 400, "not both"),
    ({"op": "zap", "proxies": []}, 400, "op must be one of"),
])
def test_batch_item_with_proxies_failing_on_one_applies_nothing_and_names_it(api, two, bad, status, text):
    a, b = two
    api.toxic(b, **lat("exists", 3))
    fmt = lambda v: v.format(a=a, b=b) if isinstance(v, str) else [fmt(x) for x in v] if isinstance(v, list) else v
    bad = {k: fmt(v) for k, v in bad.items()}
    r = api.req("POST", "/toxics/batch", json=[{"op": "add", "proxies": [a, b], "toxic": lat("first", 10)}, bad])
    assert r.status_code == status, r.text
    body = r.json()
    assert body["index"] == 1 and body["applied"] == 0 and body["error"].startswith("item 1")
    assert text.format(a=a, b=b) in body["error"]
    assert toxics(api, a) == {} and set(toxics(api, b)) == {"exists"}


def test_batch_set_with_proxies_updates_an_existing_toxic_whatever_the_type_given(api, two):
    """A set of an existing toxic ignores type and stream (a toxic update), so a body that would not
    make a new toxic still updates: the grouped item must not refuse it up front."""
    a, b = two
    api.toxic(a, **lat("t", 3))
    api.toxic(b, **lat("t", 4))
    r = api.req("POST", "/toxics/batch", json=[
        {"op": "set", "proxies": [a, b], "toxic": {"name": "t", "type": "nonsense", "attributes": {"latency": 8}}}])
    assert r.status_code == 200, r.text
    assert toxics(api, a)["t"]["attributes"]["latency"] == 8 and toxics(api, b)["t"]["type"] == "latency"


def test_listing_shows_every_change_made_after_an_earlier_listing(api, two):
    """GET /proxies keeps each proxy's JSON between listings: every kind of change must show."""
    a, b = two

    def listed():
        got = api.req("GET", "/proxies").json()
        return got[a], got[b]

    listed()                                                        # kept from here on
    api.toxic(a, **lat("t", 5))
    pa, pb = listed()
    assert [t["name"] for t in pa["toxics"]] == ["t"] and pb["toxics"] == []
    assert api.req("POST", f"/proxies/{a}/toxics/t", json={"attributes": {"latency": 6}, "toxicity": 0.25}).status_code == 200
    pa, _ = listed()
    assert pa["toxics"][0]["attributes"]["latency"] == 6 and pa["toxics"][0]["toxicity"] == 0.25
    r = api.req("POST", "/toxics/batch", json=[{"op": "set", "proxies": [a, b], "toxic": lat("t", 7)}])
    assert r.status_code == 200
    pa, pb = listed()
    assert pa["toxics"][0]["attributes"]["latency"] == 7 and pb["toxics"][0]["attributes"]["latency"] == 7
    assert api.req("POST", f"/proxies/{b}", json={"enabled": False}).status_code == 200
    _, pb = listed()
    assert pb["enabled"] is False
    assert api.req("DELETE", f"/proxies/{a}/toxics/t").status_code == 204
    pa, _ = listed()
    assert pa["toxics"] == []
    assert api.req("POST", "/reset").status_code == 204
    pa, pb = listed()
    assert pb["enabled"] is True and pb["toxics"] == [] and pa["toxics"] == []
