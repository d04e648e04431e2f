"""The joining manager's ask loop (manager.ManagerRole._join_loop), driven with a fake node that
answers as the leader does (members.join): the first ask adds the joiner; an ask again while the
joiner's log is still empty is answered `already` when it carries the same process's nonce and
`identity-in-use` otherwise (a wiped node reusing the id). Asking again was once refused by the
joiner's own addition and the joiner exited: seen in a Docker run of membership-grow-under-latency
(two workers promoted at once under 50 ms link latency) and with a 10,000-key snapshot to catch up."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from swarmnode.agent import manager


class _Leader:
    """Adds the joiner at its first ask and remembers that ask's nonce."""

    id = "m4"
    transport = SimpleNamespace(peers={"m1": None, "m2": None, "m3": None})

    def __init__(self):
        self.asks, self.failed, self.added_nonce = [], None, None
        self.journal = SimpleNamespace(record=lambda ev: None, flush=lambda: None)

    async def ask(self, target, op, timeout):
        self.asks.append((target, op["op"], op.get("nonce")))
        if self.added_nonce is None:
            self.added_nonce = op.get("nonce")
            return 200, {"ok": True}
        if op.get("nonce") == self.added_nonce:
            return 200, {"ok": True, "already": True}
        return 409, {"error": "identity-in-use", "message": "m4 is in the configuration"}

    def fail(self, code):
        self.failed = code


def _role(nonce: str):
    raft = SimpleNamespace(leader_id="m1", voters=("m1", "m2", "m3"), learners=())
    role = SimpleNamespace(cfg=SimpleNamespace(managers=("m1", "m2", "m3"), join_token="t", request_timeout_ms=100),
                           node=_Leader(), _fresh=True, _join_nonce=nonce, raft=raft,
                           join_state={"state": "joining", "attempts": 0})
    role._is_member = lambda: role.node.id in raft.voters + raft.learners
    role._ask_all = lambda targets, op, t: manager.ManagerRole._ask_all(role, targets, op, t)
    return role


def test_join_loop_asking_again_before_the_configuration_arrives_is_answered_already(monkeypatch):
    monkeypatch.setattr(manager, "JOIN_RETRY_MS", 5)
    role = _role("n1")

    async def scenario():
        # the configuration listing m4 reaches its log after several retry periods
        asyncio.get_running_loop().call_later(0.1, lambda: setattr(role.raft, "learners", ("m4",)))
        await asyncio.wait_for(manager.ManagerRole._join_loop(role), 5)

    asyncio.run(scenario())
    assert role.node.failed is None, "the joiner was refused by its own addition"
    assert len({a[0] for a in role.node.asks}) >= 1 and len(role.node.asks) > 3, role.node.asks
    assert {a[2] for a in role.node.asks} == {"n1"}, "every ask carries the process's nonce"
    assert role.join_state["state"] == "member"


def test_join_loop_of_another_process_under_the_same_id_is_refused(monkeypatch):
    """The test above has teeth: an ask with another nonce (a wiped node reusing the id) is refused
    and the joiner exits with JOIN_REFUSED_EXIT."""
    monkeypatch.setattr(manager, "JOIN_RETRY_MS", 5)
    role = _role("n2")
    role.node.added_nonce = "n1"          # an earlier process was added under m4
    asyncio.run(asyncio.wait_for(manager.ManagerRole._join_loop(role), 5))
    assert role.node.failed == manager.JOIN_REFUSED_EXIT
    assert role.join_state["state"] == "refused"
