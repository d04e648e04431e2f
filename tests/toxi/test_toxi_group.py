"""chaos.toxi.group_batch_items: a link fault's per-proxy batch items grouped into items with
`proxies`, only when that keeps every proxy's own operations in order; and the probe that tells a
server taking such items from one that does not (an older compatible server answers it 400)."""

from __future__ import annotations

import pytest

from chaos.toxi import ToxiproxyAPI, ToxiproxyHTTPError, group_batch_items


def tox(name, latency=1):
    return {"name": name, "type": "latency", "stream": "upstream", "toxicity": 1.0,
            "attributes": {"latency": latency}}


def test_items_differing_only_in_proxy_become_one_in_order_of_first_appearance():
    items = [{"op": "set", "proxy": p, "toxic": tox(n), "known": p == "b"}
             for p in ("a", "b", "c") for n in ("up", "down")]
    got = group_batch_items(items, ("known",))
    assert got == [{"op": "set", "toxic": tox("up"), "proxies": ["a", "b", "c"]},
                   {"op": "set", "toxic": tox("down"), "proxies": ["a", "b", "c"]}]


def test_different_bodies_stay_apart():
    items = [{"op": "set", "proxy": "a", "toxic": tox("x", 1)}, {"op": "set", "proxy": "b", "toxic": tox("x", 2)},
             {"op": "delete", "proxy": "a", "name": "y", "missing_ok": True},
             {"op": "delete", "proxy": "b", "name": "y"}]
    got = group_batch_items(items)
    assert [g["proxies"] for g in got] == [["a"], ["b"], ["a"], ["b"]]
    assert "missing_ok" not in got[3]


def test_grouping_that_would_reorder_one_proxys_operations_is_not_done():
    # a: delete x, add x, delete x -- grouping the two deletes would run add after both
    items = [{"op": "delete", "proxy": "a", "name": "x"}, {"op": "add", "proxy": "a", "toxic": tox("x")},
             {"op": "delete", "proxy": "a", "name": "x", "timeout_s": 3}]
    got = group_batch_items(items, ("timeout_s",))
    assert got == [{"op": "delete", "proxy": "a", "name": "x"}, {"op": "add", "proxy": "a", "toxic": tox("x")},
                   {"op": "delete", "proxy": "a", "name": "x"}]


class ScriptedAPI(ToxiproxyAPI):
    """Answers POST /toxics/batch from a script of statuses; records the bodies."""

    def __init__(self, statuses):
        super().__init__("127.0.0.1:1")
        self.statuses = list(statuses)
        self.bodies = []

    def request(self, method, path, body=None, **kw):
        self.bodies.append(body)
        status = self.statuses.pop(0)
        if status != 200:
            raise ToxiproxyHTTPError(f"Toxiproxy {method} {path}: {status}", status)
        return None


@pytest.mark.parametrize("statuses, batch, grouped, asked", [
    ([200], True, True, 1),            # this server: takes proxies
    ([400, 200], True, False, 2),      # an older compatible server: batch, one item per proxy
    ([404], False, False, 1),          # the real Toxiproxy: no batch endpoint
])
def test_the_probe_tells_the_three_kinds_of_server_apart(statuses, batch, grouped, asked):
    api = ScriptedAPI(statuses)
    assert api.batch_supported() is batch and api.grouped_batch() is grouped
    assert api.batch_supported() is batch   # asked once
    assert len(api.bodies) == asked
    assert api.bodies[0] == [{"op": "delete", "proxies": [], "name": "chaos-probe", "missing_ok": True}]
    if asked == 2:
        assert api.bodies[1] == []


def test_a_grouped_server_gets_two_items_for_a_two_stream_fault():
    api = ScriptedAPI([200, 200])
    ops = [{"op": "set", "proxy": f"w{i}-w{j}", "toxic": tox(n)} for i in range(3) for j in range(3) if i != j
           for n in ("up", "down")]
    assert api.toxic_ops(ops) == [None] * len(ops)
    assert len(api.bodies[1]) == 2 and len(api.bodies[1][0]["proxies"]) == 6
