"""The swarm backend's arithmetic and inputs, without Docker: inventory validation (every problem at
once, a clear exit code from the CLI), placement (managers on distinct hosts, workers even), and the
shard rule that puts each node's outgoing links on a Toxiproxy server of its own host (issue 15).
"""

from __future__ import annotations

import pytest
from chaos.cli import main
from chaos.env import hosts as H
from chaos.errors import EXIT_USAGE, UsageError
from chaos.topology import Topology


def test_inventory_reports_every_problem_at_once():
    with pytest.raises(UsageError) as err:
        H.Inventory((H.Host("h1", "ssh://a@b"), H.Host("Bad", "tcp://x:2375"), H.Host("h1", "local")))
    text = err.value.message
    assert "first host (h1)" in text                    # the harness's host must be local / unix
    assert "host name 'Bad'" in text
    assert "tcp://x:2375" in text                       # unencrypted TCP engines are not accepted
    assert "'h1' appears twice" in text


def test_inventory_round_trips_through_the_network_label():
    inv = H.Inventory((H.Host("h1", "local"), H.Host("h2", "ssh://ops@10.0.0.2:2222"),
                       H.Host("h3", "unix:///run/other.sock")))
    assert H.Inventory.from_label(inv.to_label()) == inv


def test_inventory_file_errors_are_usage_errors(tmp_path):
    bad = tmp_path / "hosts.yaml"
    bad.write_text("hosts: [{name: h1}]\n")
    with pytest.raises(UsageError, match=r"hosts\[0\]: expected exactly the keys name and engine"):
        H.Inventory.from_file(bad)
    with pytest.raises(UsageError, match="cannot read it"):
        H.Inventory.from_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("managers,workers,hosts", [(3, 5, 1), (3, 5, 2), (3, 50, 3), (5, 100, 4), (3, 1000, 7),
                                                    (1, 2, 5), (3, 0, 3)])
def test_placement_managers_distinct_workers_even(managers, workers, hosts):
    names = [f"h{i}" for i in range(hosts)]
    ms = [f"m{i}" for i in range(1, managers + 1)]
    ws = [f"w{i}" for i in range(1, workers + 1)]
    where = H.placement(ms + ws, names)
    manager_hosts = [where[m] for m in ms]
    assert len(set(manager_hosts)) == min(managers, hosts)
    counts = [sum(1 for w in ws if where[w] == h) for h in names]
    assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("managers,workers,hosts,needed", [(3, 5, 1, 1), (3, 5, 2, 1), (3, 50, 3, 1),
                                                           (3, 100, 2, 3), (3, 100, 4, 3), (1, 2, 5, 1),
                                                           (3, 200, 3, 9), (1, 1, 1, 1)])
def test_every_nodes_links_are_on_a_shard_of_its_own_host(managers, workers, hosts, needed):
    names = [f"h{i}" for i in range(hosts)]
    n = managers + workers
    shards = H.swarm_shards(needed, hosts, n)
    assert shards >= min(needed, n) or shards == n
    topo = Topology.named(managers, workers, shards=shards)
    where = H.placement(list(topo.nodes), names)
    for node in topo.nodes:
        assert H.shard_host(topo.shard_of_node(node), names) == where[node], node
    # client links live on shard 0, which is on the harness's host
    assert H.shard_host(0, names) == names[0]


def test_gateway_ports_are_unique_and_cover_nodes_and_shards():
    nodes = [f"m{i}" for i in range(1, 10)] + [f"w{i}" for i in range(1, 201)]
    ports = H.gateway_ports(nodes, 12)
    assert len(set(ports.values())) == len(ports) == len(nodes) + 12
    assert ports["toxiproxy"] == H.GATEWAY_SHARD_BASE_PORT and ports["toxiproxy12"] < H.GATEWAY_NODE_BASE_PORT


def test_cli_inventory_without_swarm_backend_is_a_usage_error(tmp_path, capsys):
    inv = tmp_path / "hosts.yaml"
    inv.write_text("hosts: [{name: h1, engine: local}]\n")
    assert main(["up", "--backend", "local", "--inventory", str(inv)]) == EXIT_USAGE
    assert "--inventory is for --backend swarm" in capsys.readouterr().err


def test_cli_bad_inventory_is_a_usage_error_not_a_traceback(tmp_path, capsys):
    inv = tmp_path / "hosts.yaml"
    inv.write_text("hosts: [{name: h1, engine: 'ssh://x'}, {name: h2, engine: 'http://y'}]\n")
    assert main(["doctor", "--backend", "swarm", "--inventory", str(inv)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "must be `local`, unix:///PATH or ssh://" in err


class _FakeEngine:
    """Just enough of a DockerClient for chaos.env.swarm.check_swarm."""

    def __init__(self, state: str, node_id: str = "", manager: bool = False, members=None):
        self._swarm = {"LocalNodeState": state, "NodeID": node_id, "ControlAvailable": manager}
        members = members or {}

        class _Node:
            def __init__(self, nid, st):
                self.id, self.attrs = nid, {"Status": {"State": st}}

        self.nodes = type("Nodes", (), {"list": staticmethod(lambda: [_Node(k, v) for k, v in members.items()])})()

    def info(self):
        return {"Swarm": self._swarm}


def test_check_swarm_names_the_harness_engine_that_is_not_a_manager():
    from chaos.env.swarm import HostClients, check_swarm
    from chaos.errors import EXIT_ENVIRONMENT, EnvironmentError_

    inv = H.Inventory.single_local()
    with pytest.raises(EnvironmentError_) as err:
        check_swarm(HostClients(inv, {"local": _FakeEngine("inactive")}))
    assert err.value.exit_code == EXIT_ENVIRONMENT
    assert "not a Swarm manager (swarm state: inactive)" in err.value.message
    assert "docker swarm init" in err.value.hint


def test_check_swarm_names_every_host_outside_the_swarm_or_down():
    from chaos.env.swarm import HostClients, check_swarm
    from chaos.errors import EnvironmentError_

    inv = H.Inventory((H.Host("h1", "local"), H.Host("h2", "ssh://a@b"), H.Host("h3", "ssh://a@c")))
    manager = _FakeEngine("active", "n1", True, {"n1": "ready", "n3": "down"})
    clients = {"h1": manager, "h2": _FakeEngine("inactive"), "h3": _FakeEngine("active", "n3")}
    with pytest.raises(EnvironmentError_) as err:
        check_swarm(HostClients(inv, clients))
    assert "h2 (swarm state inactive)" in err.value.message and "h3 (swarm node n3 is down)" in err.value.message
    clients["h2"] = _FakeEngine("active", "n1")   # the same engine as h1 (as on one machine)
    clients["h3"] = _FakeEngine("active", "n1")
    assert check_swarm(HostClients(inv, clients)) == {"h1": "n1", "h2": "n1", "h3": "n1"}


def test_toxiproxy_shards_that_do_not_fit_the_hosts_are_a_usage_error():
    from chaos.env.spec import ClusterSpec
    from chaos.env.up import _swarm_shard_count

    assert _swarm_shard_count(ClusterSpec("a", managers=3, workers=100), 2) == 4   # 3 needed, a multiple of 2
    assert _swarm_shard_count(ClusterSpec("a", managers=3, workers=100, toxiproxy_shards=4), 2) == 4
    with pytest.raises(UsageError, match="does not fit 2 host"):
        _swarm_shard_count(ClusterSpec("a", managers=3, workers=100, toxiproxy_shards=3), 2)
