"""Docker integration: a cluster whose link proxies are spread over several Toxiproxy servers.

The engine caps a container at 20,000 open files, so `up` shards the proxies of a big cluster (3 +
100 nodes: 3 servers). Bringing up 100 workers is a benchmark (benchmarks/cluster.py); here 3 + 2
nodes are forced onto 3 servers, which exercises the same paths: every node dials its peers through
its own shard, the cluster becomes ready, a partition spanning all shards is verified by the agents'
probes and healed, and removal leaves nothing.
"""

from __future__ import annotations

import pytest

from chaos import partition as P
from chaos.env import cleanup
from chaos.env.spec import ClusterSpec
from chaos.env.up import bring_up
from chaos.toxi import LinkController, ShardedToxiproxyAPI

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_sharded_cluster_ready_partition_verified_heal_and_nothing_left(docker_client, node_image, cluster_name):
    spec = ClusterSpec(cluster_name, managers=3, workers=2, seed=31, toxiproxy_shards=3)
    result = bring_up(docker_client, spec, node_image, 150)
    cluster = result.cluster
    try:
        assert cluster.toxiproxy_nodes == ["toxiproxy", "toxiproxy2", "toxiproxy3"]
        topo = cluster.topology()
        api = cluster.toxiproxy_api()
        assert isinstance(api, ShardedToxiproxyAPI) and topo.shards == 3
        for shard, server in enumerate(api.apis):
            assert set(server.proxies()) == {lk.name for lk in topo.links if topo.shard_of(lk) == shard}

        # m2's links (shard 1) and everyone else's: isolating m2 cuts links on all three servers
        ctl = LinkController(api, topo, probe=cluster.probe, seed=spec.seed)
        try:
            rec = ctl.apply_partition(P.isolate(topo.nodes, "m2"))   # raises FaultError if unverified
            assert len(rec["verified"]["checked"]) == 8   # every cut link probed: 4 into m2, 4 out
            cut_on = {topo.shard_of(lk) for lk in topo.resolve(P.isolate(topo.nodes, "m2"))}
            assert cut_on == {0, 1, 2}
            assert cluster.probe("m2", "m1") is False and cluster.probe("m1", "m3") is True
            healed = ctl.heal()
            assert len(healed["verified"]["checked"]) == 8
            assert cluster.probe("m2", "m1") is True
        finally:
            ctl.close()
        cluster.wait_ready(120)
    finally:
        cleanup.remove_objects(docker_client, cluster=cluster_name)
    assert cleanup.remaining(docker_client, cluster=cluster_name) == 0
