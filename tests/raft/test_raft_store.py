"""The cluster store: deterministic commands, forward-only tasks, de-duplication, digest."""
import pytest

from swarmnode.raft import Store


def apply_all(store, cmds, start=1):
    out = []
    for k, c in enumerate(cmds, start):
        out.append(store.apply(k, c)[0])
    return out


def test_store_kv_put_cas_delete():
    s = Store()
    r = apply_all(s, [
        {"op": "kv.put", "key": "a", "value": 1},
        {"op": "kv.cas", "key": "a", "expected": 2, "value": 3},
        {"op": "kv.cas", "key": "a", "expected": 1, "value": 3},
        {"op": "kv.get", "key": "a"},
        {"op": "kv.delete", "key": "a"},
        {"op": "kv.delete", "key": "a"},
        {"op": "kv.cas", "key": "a", "expected": None, "value": 5},
    ])
    assert r[0] == {"ok": True}
    assert r[1] == {"ok": False, "error": "cas-mismatch", "value": 1}
    assert r[2] == {"ok": True} and r[3] == {"ok": True, "value": 3}
    assert r[4] == {"ok": True, "existed": True} and r[5] == {"ok": True, "existed": False}
    assert r[6] == {"ok": True} and s.kv == {"a": 5}


def test_store_retried_write_applies_once():
    s = Store()
    put = {"op": "kv.put", "key": "a", "value": 1, "client_id": "c1", "seq": 1}
    incr = {"op": "kv.cas", "key": "a", "expected": 1, "value": 2, "client_id": "c1", "seq": 2}
    r = apply_all(s, [put, incr, dict(incr), {"op": "kv.put", "key": "a", "value": 9, "client_id": "c1", "seq": 1}])
    assert r[1] == {"ok": True}
    assert r[2] == {"ok": True, "duplicate": True}          # the retry returns the cached result
    assert r[3] == {"ok": False, "error": "stale-seq"}
    assert s.kv == {"a": 2}


def test_store_task_state_only_moves_forward():
    s = Store()
    r = apply_all(s, [
        {"op": "service.create", "name": "web", "replicas": 2},
        {"op": "task.create", "task": "t1", "service": "web", "slot": 1, "worker": "w1"},
        {"op": "task.update", "task": "t1", "state": "running"},
        {"op": "task.update", "task": "t1", "state": "assigned"},
        {"op": "task.update", "task": "t1", "state": "complete"},
        {"op": "task.update", "task": "t1", "state": "failed"},
        {"op": "task.update", "task": "t9", "state": "running"},
    ])
    assert r[3] == {"ok": False, "error": "backward", "state": "running"}
    assert r[4] == {"ok": True}
    assert r[5]["error"] == "backward"                   # terminal states do not move sideways
    assert r[6] == {"ok": False, "error": "not-found"}
    assert s.tasks["t1"]["state"] == "complete"


def test_store_services_and_nodes_emit_events():
    s = Store()
    res, ev = s.apply(1, {"op": "node.upsert", "node": "w1", "fields": {"state": "ready", "addr": "x"}})
    assert res == {"ok": True} and ev == [{"type": "worker", "worker": "w1", "state": "ready"}]
    res, ev = s.apply(2, {"op": "task.create", "task": "t1", "service": "web", "slot": 0, "worker": None})
    assert ev[0]["state"] == "new"
    assert s.apply(3, {"op": "service.scale", "name": "web", "replicas": 3})[0]["error"] == "not-found"
    assert s.apply(4, {"op": "service.create", "name": "web", "replicas": 1})[0] == {"ok": True}
    assert s.apply(5, {"op": "service.create", "name": "web", "replicas": 1})[0]["error"] == "exists"
    assert s.apply(6, {"op": "service.remove", "name": "web"})[0] == {"ok": True}


@pytest.mark.parametrize("cmd", [
    {"op": "kv.put", "value": 1}, {"op": "kv.put", "key": "a", "value": [1]}, {"op": "bogus"},
    {"op": "service.create", "name": "s", "replicas": -1}, {"op": "task.update", "task": "t", "state": "zz"},
    {"op": "kv.put", "key": "a", "value": 1, "client_id": "c", "seq": 0},
])
def test_store_bad_command_is_a_result_not_an_exception(cmd):
    s = Store()
    before = s.digest()
    res, ev = s.apply(1, cmd)
    assert res["ok"] is False and res["error"] == "bad-command" and ev == []
    assert s.kv == {}
    assert s.digest() != before  # applied_index moved even for a rejected command


def test_store_digest_is_deterministic_and_snapshot_restores_it():
    a, b = Store(), Store()
    apply_all(a, [{"op": "kv.put", "key": "x", "value": 1}, {"op": "kv.put", "key": "y", "value": 2}])
    b.kv = {"y": 2, "x": 1}
    b.applied_index = 2
    assert a.digest() == b.digest()
    c = Store()
    c.restore(a.snapshot())
    assert c.digest() == a.digest()
    a.apply(3, {"op": "kv.put", "key": "x", "value": 5})
    assert c.kv["x"] == 1  # snapshot is a copy
