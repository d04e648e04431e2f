"""Pure parts of the Docker environment (no engine needed): readiness judgement, node environment,
labels, engine time parsing, image content hash and bootstrap command.

The readiness judgement has a deliberately broken variant (it trusts any one manager's idea of the
leader) and a test showing the real one rejects what the broken one accepts (STYLE.md item 13).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from chaos.env import labels as L
from chaos.env import ready
from chaos.env.nodeops import parse_docker_time
from chaos.env.spec import ClusterSpec, agent_env_from_options
from chaos.errors import UsageError
from chaos.image import content_hash, mmdebstrap_argv, wheels_argv

MANAGERS = ["m1", "m2", "m3"]
WORKERS = ["w1", "w2"]
NODES = MANAGERS + WORKERS


def _alive(nodes=NODES):
    return {n: {"state": "alive", "incarnation": 0} for n in nodes}


def _healthy() -> dict:
    st = {}
    for m in MANAGERS:
        st[m] = {"node": m, "kind": "manager", "role": "leader" if m == "m1" else "follower", "term": 2,
                 "leader": "m1", "members": _alive(), "workers": {"w1": "ready", "w2": "ready"}}
    for w in WORKERS:
        st[w] = {"node": w, "kind": "worker", "role": "worker", "leader": "m1", "members": _alive()}
    return st


def _conditions(failures):
    return {f.condition: set(f.nodes) for f in failures}


def test_ready_healthy_cluster_is_ready():
    assert ready.evaluate(_healthy(), MANAGERS, WORKERS) == []


@pytest.mark.parametrize("mutate, condition, nodes", [
    (lambda s: s.update(w2=None), "reachable", {"w2"}),
    (lambda s: s["m3"].update(leader="m2"), "leader", {"m1", "m2", "m3"}),
    (lambda s: [s[m].update(leader=None) for m in MANAGERS], "leader", {"m1", "m2", "m3"}),
    (lambda s: s["m3"].update(leader=None), "leader", {"m3"}),
    (lambda s: s["m1"].update(role="follower"), "leader", {"m1"}),
    (lambda s: s["m1"]["workers"].pop("w2"), "workers-registered", {"w2"}),
    (lambda s: s["m1"]["workers"].update(w1="down"), "workers-registered", {"w1"}),
    (lambda s: s["w1"]["members"].update(m2={"state": "suspect", "incarnation": 1}), "gossip", {"w1"}),
    (lambda s: s["m2"]["members"].pop("w2"), "gossip", {"m2"}),
])
def test_ready_each_condition_names_failing_nodes(mutate, condition, nodes):
    st = _healthy()
    mutate(st)
    got = _conditions(ready.evaluate(st, MANAGERS, WORKERS))
    assert condition in got, got
    assert got[condition] == nodes


@pytest.mark.parametrize("mutate, condition, nodes", [
    (lambda s: s["m3"].update(leader="m2"), "leader", {"m1", "m2", "m3"}),
    (lambda s: s["m1"]["workers"].pop("w2"), "workers-registered", {"w2"}),
    (lambda s: s.update(m2=None), "reachable", {"m2"}),
])
def test_ready_managers_only_poll_sees_leader_and_registration_not_gossip(mutate, condition, nodes):
    """evaluate_leader (the cheap first stage of `up`'s polling) judges the leader and registration
    conditions exactly as evaluate does, from the managers' answers alone, and cannot see gossip."""
    st = _healthy()
    mutate(st)
    managers_only = {m: st[m] for m in MANAGERS}
    got = _conditions(ready.evaluate_leader(managers_only, MANAGERS, WORKERS))
    assert got[condition] == nodes
    full = _conditions(ready.evaluate(st, MANAGERS, WORKERS))
    assert {k: v for k, v in full.items() if k != "gossip"} == got
    assert ready.evaluate_leader({m: _healthy()[m] for m in MANAGERS}, MANAGERS, WORKERS) == []
    gossip_only = _healthy()
    gossip_only["w1"]["members"].pop("m2")
    assert ready.evaluate_leader(gossip_only, MANAGERS, WORKERS) == []


def test_ready_node_may_omit_itself_from_its_member_table():
    st = _healthy()
    st["w1"]["members"].pop("w1")
    assert ready.evaluate(st, MANAGERS, WORKERS) == []


def _broken_evaluate(statuses, managers, workers):
    """Deliberately wrong: takes m1's word for the leader and never checks the others agree."""
    leader = (statuses.get(managers[0]) or {}).get("leader")
    return [] if leader else ["leader"]


def test_ready_broken_variant_accepts_split_leadership_real_one_rejects():
    st = _healthy()
    st["m3"].update(role="leader", leader="m3", term=3)  # two nodes believe they lead
    assert _broken_evaluate(st, MANAGERS, WORKERS) == []      # the broken check is fooled
    assert "leader" in _conditions(ready.evaluate(st, MANAGERS, WORKERS))


def test_ready_random_single_faults_never_judged_ready():
    seed = 1234
    rng = random.Random(seed)
    for _ in range(200):
        st = _healthy()
        node = rng.choice(NODES)
        kind = rng.choice(["unreachable", "member", "leader"])
        if kind == "unreachable":
            st[node] = None
        elif kind == "member":
            st[node]["members"][rng.choice([n for n in NODES if n != node])]["state"] = "dead"
        else:
            st[rng.choice(MANAGERS)]["leader"] = rng.choice(["m2", "m3", None])
            if all(st[m]["leader"] == "m1" for m in MANAGERS):
                continue
        assert ready.evaluate(st, MANAGERS, WORKERS), f"seed {seed}: {node} {kind} judged ready"


def test_spec_node_env_points_every_peer_at_its_own_proxy():
    spec = ClusterSpec("a", managers=3, workers=2, seed=7)
    topo = spec.topology()
    env = spec.node_env("w1", topo)
    peers = json.loads(env["CHAOS_PEERS"])
    assert set(peers) == {"m1", "m2", "m3", "w2"}
    for peer, addr in peers.items():
        assert addr == f"toxiproxy:{topo.listen_port('w1', peer)}"
    assert env["CHAOS_ROLE"] == "worker" and env["CHAOS_MANAGERS"] == "m1,m2,m3"
    assert env["CHAOS_NODE_ID"] == "w1" and env["CHAOS_DATA_DIR"] == "/data"
    # distinct proxies for distinct directed links
    assert len({topo.listen_port(a, b) for a in spec.node_ids for b in spec.node_ids if a != b}) == 20


def test_spec_spreads_links_over_toxiproxy_shards_within_the_descriptor_budget():
    """3 managers + 100 workers do not fit one server's 20,000 open files: 3 shards, each under the
    per-shard link budget, every node's outgoing links (hence its CHAOS_PEERS host) on one shard."""
    from chaos.env.spec import LINKS_PER_SHARD

    assert ClusterSpec("a", workers=5).shards == 1
    big = ClusterSpec("a", workers=100)
    topo = big.topology()
    assert big.shards == topo.shards == 3
    per_shard = [len(topo.proxy_specs(shard=s)) for s in range(3)]
    assert sum(per_shard) == len(topo.links) == 103 * 103
    assert max(per_shard) <= LINKS_PER_SHARD
    assert all(topo.proxy_specs(shard=0)[i]["name"] == f"client-{n}" for i, n in enumerate(big.node_ids))
    for node in ("m1", "m2", "w7"):
        hosts = {addr.split(":")[0] for addr in json.loads(big.node_env(node, topo)["CHAOS_PEERS"]).values()}
        assert hosts == {topo.shard_host(topo.shard_of_node(node))}
    assert ClusterSpec("a", workers=5, toxiproxy_shards=2).topology().shards == 2


def test_workers_share_one_cpu_budget_so_they_cannot_outweigh_managers_and_toxiproxy():
    from chaos.env.spec import Limits
    lim = Limits()
    assert lim.worker_shares(5) == lim.worker_shares(lim.worker_share_budget) == lim.worker_cpu_shares
    for workers in (9, 30, 100, 200):
        total = lim.worker_shares(workers) * workers
        assert 2 <= lim.worker_shares(workers) < lim.worker_cpu_shares
        # all workers together weigh no more than the budget, so no more than the managers and
        # the Toxiproxy servers of even a 1-manager, 1-shard cluster
        assert total <= lim.worker_cpu_shares * lim.worker_share_budget
        assert total <= lim.manager_cpu_shares + lim.toxiproxy_cpu_shares
    assert [lim.worker_shares(w) for w in (9, 50, 100)] == sorted([lim.worker_shares(w) for w in (9, 50, 100)],
                                                                   reverse=True)


def test_large_clusters_get_large_timing_unless_the_user_set_it():
    from chaos.env.spec import LARGE_CLUSTER_NODES, LARGE_TIMING

    small = ClusterSpec("a", managers=3, workers=LARGE_CLUSTER_NODES - 3)
    assert small.scaled_timing() == {}
    big = ClusterSpec("a", managers=3, workers=LARGE_CLUSTER_NODES - 2)
    assert big.scaled_timing() == LARGE_TIMING
    env = big.node_env("w1", big.topology())
    for k, v in LARGE_TIMING.items():
        assert env[k] == v
    # the user's own setting wins, and its pair stays consistent (no timeout above their interval)
    mine = ClusterSpec("a", managers=3, workers=100,
                       agent_env=(("CHAOS_GOSSIP_PROBE_INTERVAL_MS", "300"), ("CHAOS_ELECTION_TIMEOUT_MAX_MS", "800")))
    scaled = mine.scaled_timing()
    assert "CHAOS_GOSSIP_PROBE_TIMEOUT_MS" not in scaled and "CHAOS_ELECTION_TIMEOUT_MIN_MS" not in scaled
    assert scaled == {"CHAOS_DISPATCHER_GRACE": LARGE_TIMING["CHAOS_DISPATCHER_GRACE"]}


def test_spec_node_seeds_are_stable_and_distinct():
    a, b = ClusterSpec("a", seed=7), ClusterSpec("b", seed=7)
    assert [a.node_seed(n) for n in a.node_ids] == [b.node_seed(n) for n in b.node_ids]
    assert len({a.node_seed(n) for n in a.node_ids}) == len(a.node_ids)
    assert ClusterSpec("a", seed=8).node_seed("m1") != a.node_seed("m1")


@pytest.mark.parametrize("kwargs", [
    {"managers": 2}, {"managers": 0}, {"workers": -1}, {"workers": 10_000},
    {"name": "Bad Name"}, {"name": "x" * 40}, {"agent_env": (("CHAOS_PEERS", "{}"),)},
    {"agent_env": (("PATH", "/tmp"),)}, {"toxiproxy_shards": 0}, {"workers": 1, "toxiproxy_shards": 5},
])
def test_spec_rejects_bad_clusters(kwargs):
    with pytest.raises(UsageError):
        ClusterSpec(**{"name": "a", **kwargs})


def test_spec_agent_options_become_env():
    env = dict(agent_env_from_options({"tick_ms": 5, "heartbeat_ms": None}, ("CHAOS_FSYNC=0",)))
    assert env == {"CHAOS_TICK_MS": "5", "CHAOS_FSYNC": "0"}
    with pytest.raises(UsageError):
        agent_env_from_options({}, ("CHAOS_FSYNC",))


@pytest.mark.parametrize("env, needle", [
    ((("CHAOS_GOSSIP_PROBE_TIMEOUT_MS", "5000"),), "CHAOS_GOSSIP_PROBE_TIMEOUT_MS must be below"),
    ((("CHAOS_FSYNC", "yes"),), "CHAOS_FSYNC='yes'"),
    ((("CHAOS_ELECTION_TIMEOUT_MIN_MS", "600"), ("CHAOS_ELECTION_TIMEOUT_MAX_MS", "500")),
     "CHAOS_ELECTION_TIMEOUT_MAX_MS must exceed"),
])
def test_bring_up_refuses_a_setting_the_agents_would_refuse_before_touching_the_engine(env, needle):
    """A probe timeout at or above the interval was found only when all 103 agents had been created
    and exited 2 (exit 4, 'environment'). The agent's own loader judges it first: a usage error (exit
    2), and the engine is never asked (the client here is None)."""
    from chaos.env.up import bring_up

    spec = ClusterSpec(name="t", managers=3, workers=2, agent_env=env)
    with pytest.raises(UsageError, match="the agents would refuse this setting") as exc:
        bring_up(None, spec, "chaos-node:x", 10.0)
    assert needle in str(exc.value)
    assert exc.value.exit_code == 2
    ClusterSpec(name="t", managers=3, workers=2, agent_env=(("CHAOS_FSYNC", "0"),)).check_agent_env()


def test_labels_select_only_this_tool_and_cluster():
    lab = L.object_labels("a", "r1", "m1", "manager")
    assert L.is_ours(lab) and L.is_ours(lab, "a") and not L.is_ours(lab, "b")
    assert not L.is_ours({}) and not L.is_ours(None) and not L.is_ours({"chaos.tool": "other"})
    assert L.selector("a", "r1") == {"label": ["chaos.tool=chaos", "chaos.cluster=a", "chaos.run=r1"]}
    with pytest.raises(AssertionError):
        L.object_labels("a", "r1", "m1", "pod")


@pytest.mark.parametrize("text, expected", [
    ("2026-11-28T02:44:04.123456789Z", 1795833844.123456),
    ("2026-11-28T02:44:04Z", 1795833844.0),
    ("2026-11-28T03:44:04.5+01:00", 1795833844.5),
    ("0001-01-01T00:00:00Z", None),
    ("", None),
])
def test_parse_docker_time_handles_engine_formats(text, expected):
    got = parse_docker_time(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_image_content_hash_changes_with_content_only(tmp_path: Path):
    (tmp_path / "swarmnode").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "swarmnode" / "a.py").write_text("A = 1\n")
    h1 = content_hash(tmp_path, "sha256:base")
    (tmp_path / "swarmnode" / "__pycache__").mkdir()
    (tmp_path / "swarmnode" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    (tmp_path / "swarmnode" / ".a.py.123.tmp").write_text("editor temp")
    assert content_hash(tmp_path, "sha256:base") == h1
    assert content_hash(tmp_path, "sha256:other") != h1
    (tmp_path / "swarmnode" / "a.py").write_text("A = 2\n")
    assert content_hash(tmp_path, "sha256:base") != h1


def test_image_bootstrap_and_wheels_commands_are_argv_lists(tmp_path: Path):
    argv = mmdebstrap_argv(tmp_path / "r.tar", "http://deb.debian.org/debian")
    assert argv[0] == "mmdebstrap" and "--variant=essential" in argv
    assert "--include=python3,python3-aiohttp,python3-uvloop,libfaketime" in argv
    assert any("bookworm-security" in a for a in argv)
    w = wheels_argv(tmp_path, "aarch64")
    assert "manylinux2014_aarch64" in w and "--only-binary=:all:" in w and "cp311" in w


def test_image_bootstrap_tag_follows_the_package_list():
    """A checkout whose Debian package list differs bootstraps its own base (libfaketime came with
    the clock fault): the tag is a hash of the list, never the plain `bookworm` of older trees."""
    import hashlib

    from chaos import image

    want = "bookworm-" + hashlib.sha256(",".join(image.DEBIAN_PACKAGES).encode()).hexdigest()[:8]
    assert image.BOOTSTRAP_TAG == want and image.BOOTSTRAP_REF == f"chaos-base:{want}"
    assert "libfaketime" in image.DEBIAN_PACKAGES
    other = "bookworm-" + hashlib.sha256(b"python3,python3-aiohttp,python3-uvloop").hexdigest()[:8]
    assert other != image.BOOTSTRAP_TAG


def test_cleanup_sweeps_a_container_created_after_its_listing():
    """A SIGKILLed `up` can leave a create request that the engine finishes after the cleanup listed
    the containers: that late container holds its volume ("volume is in use"). The cleanup must find
    and remove it rather than report the volume as failed (a CI flake before the sweep)."""
    import docker.errors

    from chaos.env import cleanup

    labels = L.object_labels("c", "r1", "w4", "worker")

    class Obj:
        def __init__(self, name, store):
            self.name, self.attrs, self.labels, self.id = name, {"Names": ["/" + name], "Labels": labels}, labels, name
            self._store = store

    class Container(Obj):
        def remove(self, force=False, v=False):
            self._store.remove(self)

    class Volume(Obj):
        def remove(self, force=False):
            if engine.containers_alive:
                raise docker.errors.APIError("in use", explanation="volume is in use")
            engine.volumes_alive.remove(self)

    class Engine:
        def __init__(self):
            self.containers_alive, self.volumes_alive, self.lists = [], [], 0

    engine = Engine()
    engine.volumes_alive.append(Volume("chaos-c-r1-w4", engine.volumes_alive))

    class Containers:
        def list(self, all=True, filters=None, sparse=True):
            engine.lists += 1
            if engine.lists == 2:   # the late create lands right after the first listing
                engine.containers_alive.append(Container("chaos-c-w4", engine.containers_alive))
            return list(engine.containers_alive)

    class Listing:
        def __init__(self, items):
            self.items = items

        def list(self, filters=None):
            return list(self.items)

    class Client:
        containers = Containers()
        networks = Listing([])
        volumes = Listing(engine.volumes_alive)

    removed = cleanup.remove_objects(Client(), cluster="c")
    assert not removed.failed, removed.failed
    assert removed.containers == ["chaos-c-w4"] and removed.volumes == ["chaos-c-r1-w4"]
    assert not engine.containers_alive and not engine.volumes_alive


def test_cleanup_stops_every_node_before_removing_any():
    """Removing one container at a time left the rest running, each departure feeding the survivors'
    suspicions and elections; every running container is frozen (paused) before the first removal."""
    from chaos.env import cleanup

    events = []

    class Container:
        def __init__(self, i, state):
            name = f"chaos-c-w{i}"
            labels = L.object_labels("c", "r1", f"w{i}", "worker")
            self.name, self.id, self.labels = name, name, labels
            self.attrs = {"Names": ["/" + name], "Labels": labels, "State": state}

        def kill(self):
            events.append(("kill", self.name))

        def pause(self):
            events.append(("pause", self.name))

        def remove(self, force=False, v=False):
            assert force
            events.append(("remove", self.name))
            alive.remove(self)

    alive = [Container(i, "running" if i % 3 else "exited") for i in range(1, 13)]

    class Containers:
        def list(self, all=True, filters=None, sparse=True):
            return list(alive)

    class Listing:
        def list(self, filters=None):
            return []

    class Client:
        containers = Containers()
        networks = Listing()
        volumes = Listing()

    removed = cleanup.remove_objects(Client(), cluster="c")
    assert not removed.failed and len(removed.containers) == 12 and not alive
    kinds = [k for k, _ in events]
    assert kinds == ["pause"] * 8 + ["remove"] * 12, kinds   # the 4 exited ones are not paused


def test_static_addresses_follow_the_gateway_in_order_and_need_room():
    import ipaddress

    from chaos.env.up import _static_ips
    got = _static_ips(ipaddress.ip_network("172.30.0.0/16"), ["toxiproxy", "m1", "w1"])
    assert got == {"toxiproxy": "172.30.0.2", "m1": "172.30.0.3", "w1": "172.30.0.4"}
    assert _static_ips(ipaddress.ip_network("10.0.0.0/29"), [f"n{i}" for i in range(6)]) == {}
    assert _static_ips(None, ["m1"]) == {}


def test_cleanup_failure_on_a_stale_network_endpoint_says_to_restart_the_engine():
    """A network the engine still counts an endpoint on (no container attached) cannot be removed by
    any client call: the error says what clears it; other failures keep the plain hint."""
    import pytest as _pytest

    from chaos.env.cleanup import Removed, raise_if_failed
    from chaos.errors import EnvironmentError_

    stale = Removed(failed=["network chaos-run-x-1: error while removing network: network chaos-run-x-1 "
                            "id 3c69 has active endpoints"])
    with _pytest.raises(EnvironmentError_) as err:
        raise_if_failed(stale, "cleanup")
    assert "restarting the Docker engine" in err.value.hint
    other = Removed(failed=["container c1: conflict"])
    with _pytest.raises(EnvironmentError_) as err:
        raise_if_failed(other, "cleanup")
    assert "restarting" not in err.value.hint and "retry `chaos cleanup`" in err.value.hint
    raise_if_failed(Removed(), "cleanup")        # nothing failed: no error


def test_wait_ready_one_round_per_interval_managers_first_and_reused(monkeypatch):
    """Each round asks the managers; only when they show a leader and every worker registered are
    the workers asked (not the managers again); the first round that passes returns."""
    from chaos.env import cluster as cluster_mod

    no_leader = {m: {**s, "leader": None} for m, s in _healthy().items() if m in MANAGERS}
    lagging = _healthy()
    lagging["w2"]["members"] = {**_alive(), "m3": {"state": "suspect", "incarnation": 1}}
    script = [no_leader, lagging, _healthy()]

    class Fake(cluster_mod.Cluster):
        asked: list = []

        def statuses(self, nodes=None):
            nodes = self.nodes if nodes is None else nodes
            self.asked.append(list(nodes))
            answers = script[0]
            if nodes == WORKERS:   # a round's last query: the next round sees the next state
                script.pop(0)
            elif ready.evaluate_leader(answers, MANAGERS, WORKERS):   # no worker round follows
                script.pop(0)
            return {n: answers.get(n) for n in nodes}

    handles = {n: cluster_mod.NodeHandle(n, "manager" if n in MANAGERS else "worker", None) for n in NODES}
    c = Fake(None, "t", "r1", handles)
    sleeps = []
    monkeypatch.setattr(cluster_mod.time, "sleep", sleeps.append)
    c.wait_ready(60)
    assert c.asked == [MANAGERS, MANAGERS, WORKERS, MANAGERS, WORKERS]
    assert len(sleeps) == 2 and all(s >= cluster_mod.POLL_INTERVAL_S for s in sleeps)


def test_spec_label_says_ports_per_shard_and_an_older_label_keeps_cluster_wide_ports():
    import json as _json

    s = ClusterSpec("a", managers=3, workers=4, toxiproxy_shards=3)
    back = ClusterSpec.from_label("a", s.label())
    assert back.ports_per_shard and back.topology().links_per_shard == s.topology().links_per_shard
    ports = [back.topology().listen_port(*lk) for lk in back.topology().links]
    assert len(ports) > len(set(ports))   # per shard: the same port on different servers
    older = _json.loads(s.label())
    del older["ports"]   # a sharded cluster brought up before per-shard ports
    old = ClusterSpec.from_label("a", _json.dumps(older)).topology()
    assert [old.listen_port(*lk) for lk in old.links] == list(range(20000, 20000 + len(old.links)))
