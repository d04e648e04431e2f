"""Planted bugs (CHAOS_PLANT): each switch changes the behaviour it names, and without CHAOS_PLANT
nothing changes. Each test runs the same scenario on the correct agent and on the planted one and
asserts both outcomes, so a switch that stopped working (or leaked into the default) fails here.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys

import pytest

from swarmnode import plant as plant_mod
from swarmnode.agent import config as cfgmod
from swarmnode.agent import orchestrator
from swarmnode.agent.localcluster import NODE_IMAGE_DIR
from swarmnode.agent.manager import ManagerRole, _planted_raft_settings
from swarmnode.agent.node import swim_config
from swarmnode.raft import BUGS as RAFT_BUGS
from swarmnode.raft import core as raftcore
from swarmnode.raft.store import STORE_BUGS, Store
from swarmnode.swim import SwimConfig, SwimNode
from swarmnode.swim.core import SWIM_BUGS
from swarmnode.swim.messages import Gossip, MemberUpdate

BASE = {"CHAOS_NODE_ID": "m1", "CHAOS_ROLE": "manager", "CHAOS_MANAGERS": "m1,m2,m3",
        "CHAOS_PEERS": json.dumps({"m2": "h2:7000", "m3": "h3:7000", "w1": "h4:7000"})}


# -- the list and the variable ---------------------------------------------------------------------

def test_plant_list_covers_every_layer_switch():
    names = set(plant_mod.PLANTS)
    assert len(names) >= 10
    assert set(RAFT_BUGS) <= names and set(STORE_BUGS) <= names and set(SWIM_BUGS) <= names
    assert all(plant_mod.PLANTS[n].strip() and "\n" not in plant_mod.PLANTS[n] for n in names)
    # every name is switched somewhere in the agent's code (a listed bug that does nothing is a lie)
    root = os.path.join(NODE_IMAGE_DIR, "swarmnode")
    src = ""
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py") and f != "plant.py":
                src += open(os.path.join(d, f), encoding="utf-8").read()
    for n in names:
        assert re.search(rf'"{n}" (not )?in |"{n}",', src), f"planted bug {n} has no switch"


def test_plant_config_default_is_no_bug():
    assert cfgmod.load(BASE).plant == frozenset()
    assert cfgmod.load(dict(BASE, CHAOS_PLANT="  ")).plant == frozenset()


def test_plant_config_parses_names():
    c = cfgmod.load(dict(BASE, CHAOS_PLANT="stale_read, gossip_no_refute"))
    assert c.plant == frozenset({"stale_read", "gossip_no_refute"})
    assert "plant=gossip_no_refute,stale_read" in c.summary()


def test_plant_config_unknown_name_rejected():
    with pytest.raises(cfgmod.ConfigError, match="CHAOS_PLANT.*nosuchbug"):
        cfgmod.load(dict(BASE, CHAOS_PLANT="stale_read,nosuchbug"))


def test_plant_unknown_name_exits_2_with_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
    env.update(BASE, CHAOS_PLANT="nosuchbug", PYTHONPATH=NODE_IMAGE_DIR)
    p = subprocess.run([sys.executable, "-m", "swarmnode.agent"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "CHAOS_PLANT" in lines[0] and "nosuchbug" in lines[0]


# -- Raft settings ---------------------------------------------------------------------------------

def test_plant_raft_settings_default_unchanged():
    assert _planted_raft_settings(frozenset()) == {}


@pytest.mark.parametrize("bug", RAFT_BUGS)
def test_plant_raft_core_switch_reaches_raft_config(bug):
    assert _planted_raft_settings(frozenset({bug})) == {"bugs": frozenset({bug})}


def test_plant_deposed_leader_and_no_prevote_turn_off_protections():
    assert _planted_raft_settings(frozenset({"deposed_leader_reads"})) == {"check_quorum": False}
    assert _planted_raft_settings(frozenset({"no_prevote"})) == {"pre_vote": False}


# -- manager: client path and dispatcher (a real ManagerRole on a fake node shell) ------------------

class _Journal:
    def record_all(self, events):
        pass

    def flush(self):
        pass


class _FakeNode:
    def __init__(self, cfg):
        self.cfg, self.id = cfg, cfg.node_id
        self.counters: dict = {}
        self.journal = _Journal()
        self.sent: list = []
        self.clock_ms = 0

    def send(self, peer, msg):
        self.sent.append((peer, msg))

    def now_ms(self):
        return self.clock_ms


def _single_manager(tmp_path, plant: str = "") -> ManagerRole:
    env = {"CHAOS_NODE_ID": "m1", "CHAOS_ROLE": "manager", "CHAOS_MANAGERS": "m1",
           "CHAOS_DATA_DIR": str(tmp_path), "CHAOS_FSYNC": "0"}
    if plant:
        env["CHAOS_PLANT"] = plant
    role = ManagerRole(_FakeNode(cfgmod.load(env)))
    for _ in range(200):             # a single voter elects itself after its election timeout
        role.tick(0)
        role._process_ready()
        if role.raft.role == raftcore.LEADER and role._leader_ready:
            return role
    raise AssertionError("single manager never became a ready leader")


@pytest.mark.parametrize("plant", ["", "ack_before_commit"])
def test_plant_ack_before_commit(tmp_path, plant):
    """The answer to a write: the correct agent answers once the entry is committed and applied (the
    store holds the value); the planted one answers straight after appending it."""
    async def go():
        role = _single_manager(tmp_path, plant)
        index = role.raft.last_log_index + 1
        status, body = await role._write({"op": "kv.put", "key": "k", "value": 1})
        assert status == 200 and body["ok"]
        return index, role.raft.applied_index, role.store.kv.get("k")
    index, applied, value = asyncio.run(go())
    if plant:
        assert applied < index and value is None
    else:
        assert applied >= index and value == 1


@pytest.mark.parametrize("plant", ["", "deposed_leader_reads"])
def test_plant_deposed_leader_reads(tmp_path, plant):
    """A leader whose leadership is never confirmed (as when cut off from the majority): the correct
    agent times the read out; the planted one answers from its local store."""
    async def go():
        role = _single_manager(tmp_path, plant)
        role.store.kv["k"] = 5
        role.raft.read_index = lambda ctx: None   # no heartbeat round ever confirms leadership
        role.cfg = dataclass_replace(role.cfg, request_timeout_ms=100)
        return await role._read("k")
    status, body = asyncio.run(go())
    if plant:
        assert (status, body.get("value")) == (200, 5)
    else:
        assert status == 504 and body["definite"] is False


def dataclass_replace(cfg, **kw):
    import dataclasses
    return dataclasses.replace(cfg, **kw)


@pytest.mark.parametrize("plant", ["", "dispatcher_never_down"])
def test_plant_dispatcher_never_down(tmp_path, plant):
    async def go():
        role = _single_manager(tmp_path, plant)
        proposed: list = []
        role._propose_system = lambda cmd, now: proposed.append(cmd) or True
        role.store.nodes["w1"] = {"state": "ready", "role": "worker"}
        role._last_hb["w1"] = 0
        role._check_worker_heartbeats(10 * role.cfg.dispatcher_grace * role.cfg.dispatcher_heartbeat_ms)
        down = {"op": "node.upsert", "node": "w1", "fields": {"state": "down"}}
        assert proposed == ([] if plant else [down])
    asyncio.run(go())


@pytest.mark.parametrize("plant", ["", "task_state_backwards"])
def test_plant_task_state_backwards_dispatcher(tmp_path, plant):
    """A worker back from a pause still reports `running` for a task already orphaned."""
    async def go():
        role = _single_manager(tmp_path, plant)
        proposed: list = []
        role._propose_system = lambda cmd, now: proposed.append(cmd) or True
        role.store.nodes["w1"] = {"state": "ready", "role": "worker"}
        role.store.tasks["web.0.1"] = {"service": "web", "slot": 0, "worker": "w1", "state": "orphaned"}
        role.on_dispatch("w1", {"type": "heartbeat", "tasks": {"web.0.1": "running"}})
        back = {"op": "task.update", "task": "web.0.1", "state": "running"}
        assert (back in proposed) == bool(plant)
    asyncio.run(go())


# -- store -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("plant", [False, True])
def test_plant_task_state_backwards_store(plant):
    s = Store()
    if plant:
        s.bugs = frozenset({"task_state_backwards"})
    s.apply(1, {"op": "task.create", "task": "t", "service": "web", "slot": 0, "worker": "w1",
                "state": "running"})
    s.apply(2, {"op": "task.update", "task": "t", "state": "orphaned"})
    result, events = s.apply(3, {"op": "task.update", "task": "t", "state": "running"})
    if plant:
        assert result["ok"] and s.tasks["t"]["state"] == "running" and events[0]["state"] == "running"
    else:
        assert result["error"] == "backward" and s.tasks["t"]["state"] == "orphaned" and not events


@pytest.mark.parametrize("plant", [False, True])
def test_plant_dedup_lost_in_snapshot(plant):
    """A retried write (same client_id and seq) restored from a snapshot is applied twice."""
    s = Store()
    if plant:
        s.bugs = frozenset({"dedup_lost_in_snapshot"})
    s.apply(1, {"op": "kv.put", "key": "k", "value": 1, "client_id": "c1", "seq": 1})
    s.apply(2, {"op": "kv.put", "key": "k", "value": 2, "client_id": "c2", "seq": 1})
    restored = Store()
    restored.restore(s.snapshot())
    result, _ = restored.apply(3, {"op": "kv.put", "key": "k", "value": 1, "client_id": "c1", "seq": 1})
    if plant:
        assert restored.kv["k"] == 1 and not result.get("duplicate")
    else:
        assert restored.kv["k"] == 2 and result.get("duplicate") is True


# -- orchestrator ----------------------------------------------------------------------------------

@pytest.mark.parametrize("plant", [frozenset(), frozenset({"orchestrator_no_replace"})])
def test_plant_orchestrator_no_replace(plant):
    nodes = {"w1": {"state": "down"}, "w2": {"state": "ready"}}
    tasks = {"web.0.1": {"service": "web", "slot": 0, "worker": "w1", "state": "running"}}
    cmds = orchestrator.reconcile(nodes, {"web": {"replicas": 1}}, tasks, plant=plant)
    if plant:
        assert cmds == []
    else:
        assert {"op": "task.update", "task": "web.0.1", "state": "orphaned"} in cmds
        assert any(c["op"] == "task.create" and c["worker"] == "w2" for c in cmds)


# -- gossip ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("plant", ["", "gossip_no_refute"])
def test_plant_gossip_no_refute(plant):
    """SWIM 4.2: a member told it is suspected refutes with a higher incarnation."""
    n = SwimNode("w1", SwimConfig.local(), random.Random(1), seeds=(),
                 bugs=frozenset({plant}) if plant else frozenset())
    n.step(Gossip("w2", "w1", (MemberUpdate("suspect", "w1", 0, "w2"),)), 0)
    if plant:
        assert n.incarnation == 0 and n.counters["refutations"] == 0
    else:
        assert n.incarnation == 1 and n.counters["refutations"] == 1


def test_plant_gossip_unknown_swim_bug_rejected():
    with pytest.raises(ValueError, match="unknown SWIM bugs"):
        SwimNode("w1", SwimConfig.local(), random.Random(1), bugs=frozenset({"nope"}))


@pytest.mark.parametrize("plant", ["", "gossip_no_pushpull"])
def test_plant_gossip_no_pushpull(plant):
    env = dict(BASE, CHAOS_PLANT=plant) if plant else BASE
    sc = swim_config(cfgmod.load(env))
    if plant:
        assert sc.pushpull_interval_ms == 0 and sc.reconnect_interval_ms == 0
    else:
        assert sc.pushpull_interval_ms > 0 and sc.reconnect_interval_ms > 0
