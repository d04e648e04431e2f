"""Process-level partition test: 3 managers whose every directed link runs through a black-hole relay.

Isolating the leader (all its links cut, both directions, bytes dropped mid-stream as Toxiproxy's
timeout toxic does) must: make a write sent to it fail without a false promise (an error with
definite=false, never 200); let the majority elect a new leader that accepts writes; and after the
heal bring the old leader back as a follower with the same store, every acknowledged write present,
and at most one leader per term in the journals (Raft §5.2 Election Safety).
"""

from __future__ import annotations

import json
import os

import pytest

from swarmnode.agent.localcluster import LocalCluster, http, put_until_ok, wait_for

from .relay import Relay

pytestmark = [pytest.mark.process, pytest.mark.slow]
SEED = 11


@pytest.fixture(params=["10000", "10"], ids=["no-snapshot", "snapshot-every-10"])
def setup(tmp_path, request):
    """With a snapshot every 10 entries the majority compacts during the partition, so the old
    leader can only catch up through InstallSnapshot (Raft §7) and a restored store."""
    relay = Relay()
    holder = {}
    c = LocalCluster(str(tmp_path), managers=3, workers=0, seed=SEED,
                     extra_env={"CHAOS_REQUEST_TIMEOUT_MS": "1500",
                                "CHAOS_SNAPSHOT_ENTRIES": request.param},
                     peer_address=lambda s, d: f"127.0.0.1:{holder['ports'][(s, d)]}")
    holder["ports"] = {(s, d): relay.add_link(f"{s}-{d}", c.peer_port[d])
                       for s in c.ids for d in c.ids if s != d}
    print(f"seed={SEED} workdir={tmp_path}")
    c.start_all()
    yield c, relay
    c.stop_all()
    relay.close()
    for n in c.ids:
        print(f"--- {n} log tail ---\n{c.log_tail(n)}")


def journal(c: LocalCluster, node: str) -> list:
    out = []
    with open(os.path.join(c.workdir, node, "journal.jsonl"), "rb") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def leaders_per_term(c: LocalCluster) -> dict:
    out: dict = {}
    for n in c.ids:
        with open(os.path.join(c.workdir, n, "journal.jsonl"), "rb") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("type") == "role" and ev.get("role") == "leader":
                    out.setdefault(ev["term"], set()).add(n)
    return out


def test_agent_isolated_leader_is_replaced_and_rejoins(setup):
    c, relay = setup
    old = wait_for(c.leader, 40, what="a leader")
    acked = {}
    for i in range(10):
        code, body = put_until_ok([c.url(old, f"/kv/a{i}")], i, "pa", i)
        assert code == 200, body
        acked[f"a{i}"] = i

    others = [m for m in c.manager_ids if m != old]
    relay.cut(*[f"{old}-{m}" for m in others], *[f"{m}-{old}" for m in others])

    # a write to the isolated leader must not be acknowledged; its error admits uncertainty
    code, body = http("PUT", c.url(old, "/kv/lost"), {"value": 1}, timeout=10)
    assert code in (503, 504) and body["definite"] is False, (code, body)

    new = wait_for(lambda: c.leader(others), 40, what="a leader among the majority")
    for i in range(25):
        code, body = put_until_ok([c.url(others[(i + j) % 2], f"/kv/b{i}") for j in range(2)],
                                  i, "pb", i)
        assert code == 200, body
        acked[f"b{i}"] = i

    relay.heal(*relay.cut_links)

    def rejoined():
        a, b = c.get(old, "/store")[1], c.get(new, "/store")[1]
        st = c.status(old) or {}
        return (st.get("role") == "follower" and st.get("leader") == new
                and a.get("store_digest") == b.get("store_digest"))

    wait_for(rejoined, 60, what=f"{old} rejoined as a follower of {new} with the same store")
    kv = c.get(old, "/store")[1]["kv"]
    for k, v in acked.items():
        assert kv.get(k) == v, k
    for term, nodes in leaders_per_term(c).items():
        assert len(nodes) == 1, f"two leaders in term {term}: {nodes}"
    if c.extra_env["CHAOS_SNAPSHOT_ENTRIES"] == "10":
        assert any(ev.get("type") == "snapshot" for ev in journal(c, new)), "no snapshot taken"
