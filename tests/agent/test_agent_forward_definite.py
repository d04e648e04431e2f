"""A forwarded write whose leader was lost must never be answered as a definite failure.

Found by the bug-finding matrix on the correct agent (managers-all-cut, seed 5): a session write
forwarded by a follower to the leader, the leader lost, the follower found no new leader in time
and answered `503 no-leader, definite` -- while the write had been committed (a read returned its
value before the answer). The client recorded `fail`, and linearizability rightly judged the
history INVALID. Driven here through `Node.execute` with a stand-in role (no network)."""

from __future__ import annotations

import asyncio
import types

from swarmnode.agent.node import Node


class Role:
    """A follower that knows leader `m2` until the forward to it is lost, then no leader."""

    def __init__(self):
        self.hint = "m2"

    def is_leader(self):
        return False

    def leader_hint(self):
        return self.hint


def _node(forward_result):
    role = Role()
    calls = []

    async def forward(leader, op, deadline):
        calls.append(leader)
        role.hint = None  # the leader is gone and the election has not ended
        return forward_result

    async def leader_change(timeout_s):
        return False  # no new leader within the wait

    cfg = types.SimpleNamespace(is_manager=True, request_timeout_ms=2000, election_timeout_max_ms=300)
    stub = types.SimpleNamespace(cfg=cfg, role=role, id="m1", counters={"forwards_leader_lost": 0,
                                                                       "forwards_retried": 0},
                                 _forward=forward, _leader_change=leader_change)
    return stub, calls


def _execute(stub, op):
    return asyncio.run(Node.execute(stub, op))


def test_session_write_lost_with_its_leader_is_not_a_definite_failure():
    stub, calls = _node((503, {}, True))
    status, body = _execute(stub, {"op": "kv.put", "key": "k", "value": 1, "client_id": "c", "seq": 0})
    assert calls == ["m2"] and status == 503
    assert body["error"] == "no-leader" and body["definite"] is False, body


def test_nothing_sent_is_still_a_definite_no_leader():
    stub, calls = _node((503, {}, True))
    stub.role.hint = None
    status, body = _execute(stub, {"op": "kv.put", "key": "k", "value": 1, "client_id": "c", "seq": 0})
    assert calls == [] and status == 503 and body["definite"] is True


def test_a_read_lost_with_its_leader_may_say_definite():
    """A read changes nothing: answering it as a definite failure after a lost forward is honest."""
    stub, calls = _node((503, {}, True))
    status, body = _execute(stub, {"op": "kv.get", "key": "k"})
    assert calls == ["m2"] and body["definite"] is True
