"""HTTP API tests against a real in-process node (a single-manager cluster, so it leads at once).

Covers the contract's success shapes and error shapes, and a hypothesis fuzz that throws random
methods, paths and bodies at the node: every answer is JSON with the contract's error shape, no 500,
and the node still serves afterwards.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmnode.agent.config import load
from swarmnode.agent.localcluster import free_ports
from swarmnode.agent.node import Node

SEED = 4242


def free_port() -> int:
    return free_ports(1)[0]  # below the ephemeral range: no TCP self-connect while polling


class Harness:
    def __init__(self, tmp: str) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.api = free_port()
        cfg = load({"CHAOS_NODE_ID": "m1", "CHAOS_ROLE": "manager", "CHAOS_MANAGERS": "m1",
                    "CHAOS_PEERS": json.dumps({"w1": "127.0.0.1:1"}),
                    "CHAOS_PEER_HOST": "127.0.0.1", "CHAOS_API_HOST": "127.0.0.1",
                    "CHAOS_PEER_PORT": str(free_port()), "CHAOS_API_PORT": str(self.api),
                    "CHAOS_DATA_DIR": tmp, "CHAOS_SEED": str(SEED), "CHAOS_FSYNC": "0",
                    "CHAOS_REQUEST_TIMEOUT_MS": "1000"})
        self.node = Node(cfg)
        self.loop.run_until_complete(self.node.start())
        self.session = self.loop.run_until_complete(self._session())
        self.loop.run_until_complete(self._await_leader())

    async def _session(self):
        return aiohttp.ClientSession()

    async def _await_leader(self):
        for _ in range(500):
            if self.node.role.is_leader() and self.node.role._leader_ready:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("single manager did not become leader")

    def call(self, method: str, path: str, body=None, raw: bytes | None = None):
        async def go():
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            async with self.session.request(method, f"http://127.0.0.1:{self.api}{path}",
                                            data=data) as r:
                text = await r.read()
                return r.status, text
        status, text = self.loop.run_until_complete(go())
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def close(self):
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(self.node.stop())
        self.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    h = Harness(str(tmp_path_factory.mktemp("apinode")))
    yield h
    h.close()


def is_error_shape(body) -> bool:
    return (isinstance(body, dict) and body.get("ok") is False and isinstance(body.get("error"), str)
            and isinstance(body.get("message"), str) and isinstance(body.get("definite"), bool))


def test_api_kv_roundtrip_cas_delete(api):
    assert api.call("GET", "/kv/a") == (200, {"ok": True, "value": None})
    assert api.call("PUT", "/kv/a", {"value": 1}) == (200, {"ok": True})
    assert api.call("GET", "/kv/a") == (200, {"ok": True, "value": 1})
    code, body = api.call("POST", "/kv/a/cas", {"expected": 2, "value": 3})
    assert code == 409 and body["error"] == "cas-mismatch" and body["definite"] is True
    assert api.call("POST", "/kv/a/cas", {"expected": 1, "value": 3}) == (200, {"ok": True})
    assert api.call("DELETE", "/kv/a") == (200, {"ok": True, "existed": True})
    assert api.call("DELETE", "/kv/a") == (200, {"ok": True, "existed": False})


def test_api_retried_write_applies_once(api):
    assert api.call("PUT", "/kv/d", {"value": 1, "client_id": "c1", "seq": 0})[0] == 200
    assert api.call("PUT", "/kv/d", {"value": 2, "client_id": "c1", "seq": 1})[0] == 200
    code, body = api.call("PUT", "/kv/d", {"value": 1, "client_id": "c1", "seq": 0})
    assert code == 409 and body["error"] == "stale-seq" and body["definite"] is False
    code, body = api.call("PUT", "/kv/d", {"value": 2, "client_id": "c1", "seq": 1})
    assert code == 200 and body.get("duplicate") is True
    assert api.call("GET", "/kv/d")[1]["value"] == 2


def test_api_services_and_status_shapes(api):
    assert api.call("POST", "/services", {"name": "web", "replicas": 2})[0] == 200
    code, body = api.call("POST", "/services", {"name": "web", "replicas": 2})
    assert code == 409 and is_error_shape(body)
    assert api.call("PUT", "/services/web", {"replicas": 1})[0] == 200
    assert api.call("PUT", "/services/nope", {"replicas": 1})[0] == 404
    assert api.call("GET", "/services")[1]["services"] == {"web": {"replicas": 1}}
    assert api.call("DELETE", "/services/web")[0] == 200
    assert api.call("GET", "/tasks?service=web")[1] == {"ok": True, "tasks": []}
    code, st = api.call("GET", "/status")
    for field in ("node", "kind", "role", "term", "leader", "commit_index", "applied_index",
                  "last_log_index", "last_log_term", "store_digest", "boot", "ready", "members",
                  "workers", "counters"):
        assert field in st, field
    assert (st["node"], st["kind"], st["role"], st["leader"]) == ("m1", "manager", "leader", "m1")
    code, store = api.call("GET", "/store")
    assert set(store) == {"applied_index", "store_digest", "kv", "nodes", "services", "tasks"}
    code, text = api.call("GET", "/journal?since=0")
    lines = [json.loads(l) for l in text.splitlines()] if isinstance(text, bytes) else [text]
    assert lines[0]["type"] == "boot" and all(l["node"] == "m1" for l in lines)
    assert any(l["type"] == "role" and l["role"] == "leader" for l in lines)


def test_api_probe_reports_unreachable_peer(api):
    code, body = api.call("POST", "/probe", {"peer": "w1", "timeout_ms": 200})
    assert (code, body["reachable"], body["rtt_ms"]) == (200, False, None)
    code, body = api.call("POST", "/probe", {"peer": "zz", "timeout_ms": 200})
    assert code == 400 and is_error_shape(body)


@pytest.mark.parametrize("method,path,body,status", [
    ("PUT", "/kv/a", None, 400),
    ("PUT", "/kv/a", {"value": [1]}, 400),
    ("PUT", "/kv/a", {"value": None}, 400),
    ("PUT", "/kv/a", {"value": 1, "client_id": "x"}, 400),
    ("POST", "/kv/a/cas", {"value": 1}, 400),
    ("POST", "/services", {"name": "a b", "replicas": 1}, 400),
    ("POST", "/services", {"name": "ok", "replicas": -1}, 400),
    ("GET", "/nope", None, 404),
    ("PATCH", "/kv/a", None, 405),
    ("GET", "/journal?since=x", None, 400),
])
def test_api_bad_requests_get_4xx_with_error_shape(api, method, path, body, status):
    code, got = api.call(method, path, body)
    assert code == status and is_error_shape(got) and got["definite"] is True, (code, got)


PATHS = st.sampled_from(["/kv/", "/kv/a", "/kv/a/cas", "/services", "/services/x", "/tasks",
                         "/status", "/members", "/journal", "/store", "/probe", "/", "/kv/%00",
                         "/services/%ff", "/kv/" + "k" * 300])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=20))
JSONS = st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=3),
                                                  st.dictionaries(st.text(max_size=8), c, max_size=4)),
                     max_leaves=10)
BODIES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    JSONS.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={"value": JSONS, "expected": JSONS, "client_id": JSONS,
                                        "seq": JSONS, "name": JSONS, "replicas": JSONS,
                                        "peer": JSONS, "timeout_ms": JSONS}).map(
        lambda d: json.dumps(d).encode()),
)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH"]), path=PATHS,
       query=st.sampled_from(["", "?since=-5", "?since=99999999999999999999", "?service=x&node=",
                              "?since=%ff"]),
       body=BODIES)
def test_api_fuzz_never_crashes_the_node(api, method, path, query, body):
    code, got = api.call(method, path + query, raw=body)
    assert code != 500, (method, path, query, body, got)
    if code >= 400:
        assert is_error_shape(got), (method, path, query, body, code, got)
    assert api.call("GET", "/status")[0] == 200


PEER_MSGS = st.one_of(
    st.dictionaries(st.sampled_from(["ch", "b", "id", "op", "status", "body", "type", "tasks",
                                     "term", "leader"]), JSONS, max_size=6),
    st.fixed_dictionaries({"ch": st.sampled_from(["raft", "swim", "disp", "fwd", "fwd_reply", "x"])},
                          optional={"b": JSONS, "id": JSONS, "op": JSONS, "type": JSONS,
                                    "tasks": JSONS, "term": JSONS, "status": JSONS, "body": JSONS}),
    st.fixed_dictionaries({"ch": st.just("raft"), "b": st.fixed_dictionaries(
        {"type": st.sampled_from(["vote_req", "vote_resp", "append", "append_resp", "snapshot"]),
         "term": st.integers(-1, 10**6), "src": st.sampled_from(["w1", "m1", ""]),
         "dst": st.sampled_from(["m1", "m2"])}, optional={"entries": JSONS, "seq": JSONS})}),
    st.fixed_dictionaries({"ch": st.just("fwd"), "id": st.integers(),
                           "op": st.fixed_dictionaries({"op": st.sampled_from(
                               ["kv.put", "kv.get", "kv.cas", "service.create", "task.list", "x"])},
                               optional={"key": JSONS, "value": JSONS, "name": JSONS})}),
)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sender=st.sampled_from(["w1", "m1", "zz"]), msg=PEER_MSGS)
def test_agent_fuzz_peer_messages_never_crash_the_node(api, sender, msg):
    """Valid frames with nonsense content (the peer's error) are counted and dropped; the node
    keeps leading and serving."""
    api.node.transport._deliver(sender, msg)
    api.loop.run_until_complete(asyncio.sleep(0))
    assert api.node.counters["handler_errors"] == 0, msg
    code, st_ = api.call("GET", "/status")
    assert code == 200 and st_["role"] == "leader"
