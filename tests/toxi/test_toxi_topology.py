"""Table tests for chaos.topology: which links exist, their proxy names, ports and upstreams."""

from __future__ import annotations

import pytest

from chaos.topology import CLIENT, Endpoint, Link, Topology, parse_proxy_name


def test_topology_links_every_ordered_pair_plus_clients():
    t = Topology(["m1", "m2", "m3"], ["w1", "w2"])
    nodes = ["m1", "m2", "m3", "w1", "w2"]
    peer = {(a, b) for a in nodes for b in nodes if a != b}
    assert {tuple(l) for l in t.peer_links} == peer
    assert [tuple(l) for l in t.client_links] == [(CLIENT, n) for n in nodes]
    assert len(t.links) == 5 * 4 + 5
    # the four kinds of traffic the brief lists are all present
    for src, dst in [("m1", "m2"), ("w1", "m1"), ("m1", "w1"), ("w1", "w2"), ("w2", "w1")]:
        assert t.has_link(src, dst)
    assert not t.has_link("m1", "m1")


@pytest.mark.parametrize(
    "src,dst,name,port,upstream",
    [
        ("client", "m1", "client-m1", 20000, "m1:8080"),
        ("client", "w2", "client-w2", 20004, "w2:8080"),
        ("m1", "m2", "m1-m2", 20005, "m2:7000"),
        ("m1", "w2", "m1-w2", 20008, "w2:7000"),
        ("m2", "m1", "m2-m1", 20009, "m1:7000"),
        ("w2", "w1", "w2-w1", 20024, "w1:7000"),
    ],
)
def test_topology_names_ports_upstreams_table(src, dst, name, port, upstream):
    t = Topology(["m1", "m2", "m3"], ["w1", "w2"])
    assert t.proxy_name(src, dst) == name
    assert t.listen_port(src, dst) == port
    assert t.upstream(src, dst) == upstream


def test_topology_ports_are_unique_contiguous_and_deterministic():
    a = Topology(["m1", "m2", "m3"], [f"w{i}" for i in range(1, 21)], base_port=30000)
    b = Topology(["m1", "m2", "m3"], [f"w{i}" for i in range(1, 21)], base_port=30000)
    ports = [a.listen_port(*l) for l in a.links]
    assert ports == list(range(30000, 30000 + len(a.links)))
    assert ports == [b.listen_port(*l) for l in b.links]


def test_topology_configurable_ports_and_endpoints():
    t = Topology(["m1"], ["w1"], peer_port=7100, api_port=9000,
                 endpoints={"w1": Endpoint("127.0.0.1", 41000, 41001)})
    assert t.upstream("w1", "m1") == "m1:7100"
    assert t.upstream("client", "m1") == "m1:9000"
    assert t.upstream("m1", "w1") == "127.0.0.1:41000"
    assert t.upstream("client", "w1") == "127.0.0.1:41001"


def test_topology_peers_for_points_each_peer_at_its_own_link_proxy():
    t = Topology(["m1", "m2", "m3"], ["w1"])
    peers = t.peers_for("w1", toxiproxy_host="tp")
    assert sorted(peers) == ["m1", "m2", "m3"]
    for peer, addr in peers.items():
        assert addr == f"tp:{t.listen_port('w1', peer)}"
    # every proxy port appears in exactly one node's CHAOS_PEERS or in client_ports
    seen = [a for n in t.nodes for a in t.peers_for(n, "tp").values()]
    seen += [f"tp:{p}" for p in t.client_ports().values()]
    assert sorted(seen) == sorted(f"tp:{t.listen_port(*l)}" for l in t.links)


def test_topology_client_ports_and_proxy_specs():
    t = Topology(["m1", "m2"], [])
    assert t.client_ports() == {"m1": 20000, "m2": 20001}
    specs = t.proxy_specs("127.0.0.1")
    assert specs[0] == {"name": "client-m1", "listen": "127.0.0.1:20000", "upstream": "m1:8080", "enabled": True}
    assert [s["name"] for s in specs] == ["client-m1", "client-m2", "m1-m2", "m2-m1"]


@pytest.mark.parametrize(
    "managers,workers,kwargs,message",
    [
        (["M1"], [], {}, "must match"),
        (["m-1"], [], {}, "must match"),
        (["1m"], [], {}, "must match"),
        (["client"], [], {}, "reserved"),
        (["m1", "m1"], [], {}, "duplicate"),
        (["m1"], ["m1"], {}, "duplicate"),
        ([], ["w1"], {}, "at least one manager"),
        (["m1", "m2"], [], {"base_port": 65534}, "65535"),
        (["m1"], [], {"peer_port": 0}, "outside"),
        (["m1"], [], {"endpoints": {"x1": Endpoint("h")}}, "unknown nodes"),
    ],
)
def test_topology_rejects_bad_input(managers, workers, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Topology(managers, workers, **kwargs)


def test_topology_resolve_accepts_names_pairs_links_and_rejects_unknown():
    t = Topology(["m1", "m2"], ["w1"])
    got = t.resolve(["m2-m1", ("m1", "w1"), Link("m1", "w1"), "client-w1"])
    assert [l.name for l in got] == ["client-w1", "m1-w1", "m2-m1"]  # port order, de-duplicated
    with pytest.raises(KeyError, match="m1->m1"):
        t.resolve([("m1", "m1")])
    with pytest.raises(KeyError):
        t.resolve(["m1-x9"])


def test_topology_parse_proxy_name_roundtrip():
    t = Topology(["m1", "m2"], ["w10"])
    for link in t.links:
        assert parse_proxy_name(link.name) == link
    for bad in ["m1", "m1-", "-m1", "m1-m2-m3", "M1-m2"]:
        with pytest.raises(ValueError):
            parse_proxy_name(bad)


def test_topology_ceiling_is_links_per_shard_not_the_whole_table():
    # 3 + 250: 64,009 links, more than the 45,536 ports from 20000 -- refused on one server, and
    # fits once sharded, because a port need only be unique on its own server
    managers, workers = ["m1", "m2", "m3"], [f"w{i}" for i in range(1, 251)]
    with pytest.raises(ValueError, match="per shard"):
        Topology(managers, workers)
    t = Topology(managers, workers, shards=13)
    assert len(t.links) == 253 * 253
    assert max(t.links_per_shard) <= 65535 - 20000 + 1
    for k in range(13):
        ports = [sp["listen"] for sp in t.proxy_specs(shard=k)]
        assert len(ports) == len(set(ports)) == t.links_per_shard[k]
    assert max(t.listen_port(*lk) for lk in t.links) == 20000 + max(t.links_per_shard) - 1
    with pytest.raises(ValueError, match="65535"):   # sharding does not lift the bound of ONE shard
        Topology(managers, workers, shards=13, shared_port_space=True)


def test_topology_hundred_workers_fits_port_range():
    t = Topology([f"m{i}" for i in range(1, 6)], [f"w{i}" for i in range(1, 101)], base_port=20000)
    assert len(t.links) == 105 * 104 + 105
    assert max(t.listen_port(*l) for l in t.links) == 20000 + len(t.links) - 1


def test_topology_named_uses_contract_ids():
    t = Topology.named(3, 2, base_port=25000)
    assert t.nodes == ("m1", "m2", "m3", "w1", "w2")
    assert t.listen_port("client", "m1") == 25000


def test_topology_shards_partition_links_by_source_and_number_ports_per_shard():
    one = Topology(["m1", "m2", "m3"], ["w1", "w2"])
    three = Topology(["m1", "m2", "m3"], ["w1", "w2"], shards=3)
    # the same proxy names whatever the shard count; ports are numbered within each shard, in link
    # order, from base_port (each shard is its own server with its own port space)
    assert [lk.name for lk in one.links] == [lk.name for lk in three.links]
    for k in range(3):
        mine = [lk for lk in three.links if three.shard_of(lk) == k]
        assert [three.listen_port(*lk) for lk in mine] == list(range(20000, 20000 + len(mine)))
    assert three.links_per_shard == (5 + 4 + 4, 4 + 4, 4)   # shard 0: the 5 client links, m1 and w1
    # the client links (shard 0, published to the harness) keep the ports they have unsharded
    assert three.client_ports() == one.client_ports()
    # shard servers on one address: ports over the whole table, as without shards
    shared = Topology(["m1", "m2", "m3"], ["w1", "w2"], shards=3, shared_port_space=True)
    assert [shared.listen_port(*lk) for lk in shared.links] == [one.listen_port(*lk) for lk in one.links]
    specs = [three.proxy_specs("0.0.0.0", shard=s) for s in range(3)]
    names = [sp["name"] for group in specs for sp in group]
    assert sorted(names) == sorted(sp["name"] for sp in one.proxy_specs())   # each link exactly once
    for lk in three.links:
        assert three.shard_of(lk) == (0 if lk.is_client else three.shard_of_node(lk.src))
        assert three.shard_of(lk.name) == three.shard_of(lk)
    assert {three.shard_of_node(n) for n in three.nodes} == {0, 1, 2}
    assert three.peers_for("m2", "tp") == {p: f"tp2:{three.listen_port('m2', p)}" for p in three.nodes if p != "m2"}
    assert Topology.shard_host(0) == "toxiproxy" and Topology.shard_host(2) == "toxiproxy3"
    for bad in (0, 6, "2"):
        with pytest.raises(ValueError):
            Topology(["m1", "m2", "m3"], ["w1", "w2"], shards=bad)
