"""The joining manager's ask loop (manager.ManagerRole._join_loop), driven with a fake node: once a
leader answered 200 the joiner waits for the configuration and asks no more. Asking again while
its log is still empty would find its own id in the configuration with an empty state and be
refused `identity-in-use`, and the joiner would exit: seen in a Docker run of
membership-grow-under-latency (two workers promoted at once under 50 ms link latency), where the
leader's refusal came 0.1 s before the configuration reached the learner."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from swarmnode.agent import manager


class _Node:
    """Answers the first join with 200 (added), every later one as the real leader would while
    the joiner's log is still empty: identity-in-use."""

    id = "m4"
    transport = SimpleNamespace(peers={"m1": None, "m2": None, "m3": None})

    def __init__(self):
        self.asks, self.failed = [], None
        self.journal = SimpleNamespace(record=lambda ev: None, flush=lambda: None)

    async def ask(self, target, op, timeout):
        self.asks.append((target, op["op"]))
        if len(self.asks) == 1:
            return 200, {"ok": True}
        return 409, {"error": "identity-in-use", "message": "m4 is in the configuration"}

    def fail(self, code):
        self.failed = code


def _role():
    raft = SimpleNamespace(leader_id=None, voters=("m1", "m2", "m3"), learners=())
    role = SimpleNamespace(cfg=SimpleNamespace(managers=("m1", "m2", "m3"), join_token="t", request_timeout_ms=100),
                           node=_Node(), _fresh=True, raft=raft, join_state={"state": "joining", "attempts": 0})
    role._is_member = lambda: role.node.id in raft.voters + raft.learners
    return role


def test_join_loop_waits_for_the_configuration_after_a_200(monkeypatch):
    monkeypatch.setattr(manager, "JOIN_RETRY_MS", 5)
    role = _role()

    async def scenario():
        # the configuration listing m4 reaches its log after several retry periods
        asyncio.get_running_loop().call_later(0.1, lambda: setattr(role.raft, "learners", ("m4",)))
        await asyncio.wait_for(manager.ManagerRole._join_loop(role), 5)

    asyncio.run(scenario())
    assert role.node.failed is None, "the joiner asked again and was refused by its own addition"
    assert len(role.node.asks) == 1
    assert role.join_state["state"] == "member"


def test_join_loop_still_exits_on_a_refusal_before_any_200(monkeypatch):
    """The test above has teeth: a first answer identity-in-use ends the join (exit status)."""
    monkeypatch.setattr(manager, "JOIN_RETRY_MS", 5)
    role = _role()
    role.node.asks.append(("earlier", "member.join"))   # the fake answers 409 from now on
    asyncio.run(asyncio.wait_for(manager.ManagerRole._join_loop(role), 5))
    assert role.node.failed == manager.JOIN_REFUSED_EXIT
    assert role.join_state["state"] == "refused"
