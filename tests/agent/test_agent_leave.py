"""Process-level test: a node stopped with SIGTERM leaves the gossip group gracefully.

SIGTERM is the nemesis's `stop` (and `docker stop`): the node announces `left` and lingers a few
gossip rounds before exiting, so its peers show it `left` (it said goodbye) rather than suspecting it
and declaring it `dead` seconds later, as they must for a SIGKILLed node. Started again, it refutes
its own `left` with a higher incarnation and is `alive` in every view.
"""

from __future__ import annotations

import pytest

from swarmnode.agent.localcluster import LocalCluster, wait_for

pytestmark = [pytest.mark.process, pytest.mark.slow]


def states_of(c: LocalCluster, viewer: str, member: str):
    code, body = c.get(viewer, "/members")
    if code != 200:
        return None
    return (body.get("members") or {}).get(member, {}).get("state")


def test_sigterm_announces_left_and_a_restart_is_alive_again(tmp_path):
    c = LocalCluster(str(tmp_path), managers=1, workers=3, seed=11)
    c.start_all()
    try:
        viewers = ["m1", "w1", "w2"]
        wait_for(lambda: all(states_of(c, v, m) == "alive" for v in viewers for m in c.ids if m != v),
                 30, what="every view all alive")
        assert c.terminate("w3") == 0
        # seen as left (never suspect/dead first: a suspicion would need a missed probe, and the
        # leave rumour outruns the probe timeout)
        seen = {v: [] for v in ("m1", "w1", "w2")}

        def all_left():
            for v in seen:
                st = states_of(c, v, "w3")
                if not seen[v] or seen[v][-1] != st:
                    seen[v].append(st)
            return all(seen[v][-1] == "left" for v in seen)

        wait_for(all_left, 10, what="w3 left in every view")
        for v, states in seen.items():
            assert "dead" not in states, (v, states)
        c.start("w3")
        wait_for(lambda: all(states_of(c, v, "w3") == "alive" for v in ("m1", "w1", "w2")), 30,
                 what="restarted w3 alive again in every view")
    finally:
        c.stop_all()
