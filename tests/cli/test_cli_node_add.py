"""`chaos node add` (issue 23) without Docker: which id a new node takes (chaos.membership.pick_spare),
the CLI's errors and exit codes through chaos.cli.main against a fake cluster (no cluster, bad role,
id in use, an id that is not a spare, no spare left: exit 2; a join the cluster refused: exit 5),
how long it waits (chaos.membership.wait_joined with a scripted HTTP callable), and the spare ids'
place in the link model (chaos.env.spec): a cluster without spares keeps the ports it always had."""

from __future__ import annotations

import dataclasses

import pytest

from chaos import cli, cmd_node, errors, membership
from chaos.env import nodeops
from chaos.env.cluster import NodeHandle
from chaos.env.spec import ClusterSpec
from chaos.topology import Topology


# -- pick_spare --------------------------------------------------------------------------------------

def test_pick_spare_takes_the_first_free_spare_of_the_role():
    assert membership.pick_spare("manager", None, ["m4", "m5"], {"m1", "m2", "m3"}) == "m4"
    assert membership.pick_spare("manager", None, ["m4", "m5"], {"m1", "m4"}) == "m5"
    assert membership.pick_spare("worker", "w3", ["w3"], {"w1", "w2"}) == "w3"


@pytest.mark.parametrize("role, wanted, spares, used, match", [
    ("boss", None, ["m4"], set(), "--role must be one of"),
    ("manager", "m1", ["m4"], {"m1"}, "is in use"),
    ("manager", "m4", ["m4"], {"m4"}, "is in use"),
    ("manager", "m9", ["m4"], set(), "not a spare manager id"),
    ("manager", None, ["m4"], {"m4"}, "no spare manager id left"),
    ("worker", None, [], set(), "no spare worker id left"),
])
def test_pick_spare_refusals_are_usage_errors(role, wanted, spares, used, match):
    with pytest.raises(errors.UsageError, match=match) as info:
        membership.pick_spare(role, wanted, spares, used)
    assert info.value.exit_code == 2


# -- the CLI against a fake cluster ------------------------------------------------------------------

class _Container:
    def __init__(self, running=True):
        self.attrs = {"State": {"Running": running, "Status": "running" if running else "exited", "ExitCode": 4}}
        self.labels = {}

    def reload(self):
        pass


class FakeCluster:
    """What add_node reads of a Cluster; start_spare is replaced by the test."""

    def __init__(self, spec: ClusterSpec, used=()):
        self.name, self.run_id, self._spec = spec.name, "r1", spec
        self.handles = {n: NodeHandle(n, spec.kind(n), _Container()) for n in spec.node_ids + list(used)}
        self.logs_text = ""

    def spec(self):
        return self._spec

    @property
    def managers(self):
        return [n for n, h in self.handles.items() if h.kind == "manager"]

    @property
    def workers(self):
        return [n for n, h in self.handles.items() if h.kind == "worker"]

    def api_url(self, node):
        return f"http://{node}"

    def container(self, node):
        return self.handles[node].container

    def logs(self, node, tail=None):
        return self.logs_text


def _main(monkeypatch, capsys, cluster, args, answers=None, start=None):
    monkeypatch.setattr(cmd_node, "_add_cluster", lambda name: cluster)
    calls = []

    def http(method, url, body, timeout):
        calls.append((method, url))
        return (answers or {}).get(url.rsplit("/", 1)[-1], (0, {"error": "no answer"}))
    monkeypatch.setattr(cmd_node, "_http", http)
    started = []

    def fake_start(c, node, token=None):
        started.append((node, token))
        c.handles = {**c.handles, node: NodeHandle(node, c.spec().kind(node), start or _Container())}
    monkeypatch.setattr("chaos.env.up.start_spare", fake_start)
    code = cli.main(["node", "add", *args])
    out = capsys.readouterr()
    return code, out.out, out.err, started


SPEC = ClusterSpec(name="c", managers=3, workers=1, spare_managers=1, spare_workers=0)


def test_cli_add_manager_joins_with_the_token_and_waits_until_voter(monkeypatch, capsys):
    c = FakeCluster(SPEC)
    answers = {"join-token": (200, {"join_token": "tok-12345678"}),
               "config": (200, {"voters": ["m1", "m2", "m3", "m4"], "learners": [], "committed": True})}
    code, out, err, started = _main(monkeypatch, capsys, c, ["--role", "manager"], answers)
    assert code == 0, err
    assert started == [("m4", "tok-12345678")]
    assert "add m4" in out and "voters m1,m2,m3,m4" in out


@pytest.mark.parametrize("args, used, match", [
    (["--role", "boss"], (), "Invalid value for '--role'"),
    (["--role", "manager", "--id", "m2"], (), "'m2' is in use"),
    (["--role", "manager", "--id", "m7"], (), "not a spare manager id"),
    (["--role", "manager"], ("m4",), "no spare manager id left"),
    (["--role", "worker"], (), "no spare worker id left"),
])
def test_cli_add_usage_errors_exit_2_and_start_nothing(monkeypatch, capsys, args, used, match):
    code, _out, err, started = _main(monkeypatch, capsys, FakeCluster(SPEC, used), args)
    assert code == 2 and match in err, err
    assert started == [] and "Traceback" not in err


def test_cli_add_without_a_cluster_exits_2(monkeypatch, capsys):
    import chaos.env.cluster as cl
    import chaos.env.engine as eng
    monkeypatch.setattr(eng, "connect", lambda **kw: object())
    monkeypatch.setattr(cl, "find_cluster", lambda client, name: None)
    code = cli.main(["node", "add", "--cluster", "nosuch", "--role", "manager"])
    err = capsys.readouterr().err
    assert code == 2 and "no cluster named 'nosuch'" in err, err


def test_cli_add_refused_join_exits_5_with_the_reason(monkeypatch, capsys):
    """The joiner's process exited: the cluster refused it (its log names why) -- exit 5."""
    c = FakeCluster(SPEC)
    c.logs_text = "ERROR join refused by the cluster: bad-token: m4: join token refused\n"
    answers = {"join-token": (200, {"join_token": "tok-12345678"}),
               "config": (200, {"voters": ["m1", "m2", "m3"], "learners": [], "committed": True})}
    code, _out, err, _started = _main(monkeypatch, capsys, c, ["--role", "manager"], answers,
                                      start=_Container(running=False))
    assert code == 5 and "refused by the cluster: bad-token" in err, err


def test_wait_joined_times_out_as_outcome_unknown_and_sees_the_learner_first(monkeypatch):
    seq = iter([(200, {"voters": ["m1"], "learners": ["m4"], "committed": True})] * 3
               + [(200, {"voters": ["m1", "m4"], "learners": [], "committed": False})] * 2
               + [(200, {"voters": ["m1", "m4"], "learners": [], "committed": True})])
    out = membership.wait_joined(lambda *a: next(seq), ["http://a"], "m4", "manager", lambda: None,
                                 lambda: None, 10, interval_s=0)
    assert out["learner_seen"] is True and out["config"]["committed"] is True
    with pytest.raises(errors.OutcomeUnknown) as info:
        membership.wait_joined(lambda *a: (200, {"voters": ["m1"], "learners": ["m4"]}), ["http://a"], "m4",
                               "manager", lambda: None, lambda: None, 0.05, interval_s=0.01)
    assert info.value.exit_code == 3


def test_wait_joined_a_worker_is_in_when_it_reports_ready():
    answers = iter([(200, {"ready": False}), (200, {"ready": True, "leader": "m1"})])
    out = membership.wait_joined(lambda *a: next(answers), ["http://a"], "w3", "worker", lambda: "http://w3",
                                 lambda: None, 10, interval_s=0)
    assert out["status"]["ready"] is True and out["status"]["leader"] == "m1"


def test_add_node_passes_no_token_to_a_worker(monkeypatch):
    spec = ClusterSpec(name="c", managers=1, workers=1, spare_workers=1)
    c = FakeCluster(spec)
    started = []
    monkeypatch.setattr("chaos.env.up.start_spare",
                        lambda cl, node, token=None: (started.append((node, token)),
                                                      setattr(cl, "handles", {**cl.handles, node: NodeHandle(node, "worker", _Container())})))
    call = lambda m, url, b, t: (200, {"ready": True})  # noqa: E731
    rec = nodeops.add_node(c, "worker", call=call, wait_s=5)
    assert started == [("w2", None)] and rec["node"] == "w2" and rec["token"] is None


# -- spare ids in the link model ---------------------------------------------------------------------

def test_spec_without_spares_keeps_the_topology_it_always_had():
    plain = ClusterSpec(name="c", managers=3, workers=5)
    t = plain.topology()
    old = Topology.named(3, 5, 20000)
    assert [(l, t.listen_port(*l)) for l in t.links] == [(l, old.listen_port(*l)) for l in old.links]
    assert plain.spare_ids == [] and plain.all_ids == plain.node_ids


def test_spec_spares_are_in_every_peer_table_and_get_their_own_links():
    s = ClusterSpec(name="c", managers=3, workers=2, seed=9, spare_managers=2, spare_workers=1)
    assert s.spare_ids == ["m4", "m5", "w3"] and s.node_ids == ["m1", "m2", "m3", "w1", "w2"]
    t = s.topology()
    assert len(t.links) == 8 * 8 and t.has_link("m4", "m1") and t.has_link("client", "w3")
    env = s.node_env("w1", t)
    assert env["CHAOS_MANAGERS"] == "m1,m2,m3" and "m4" in env["CHAOS_PEERS"] and "CHAOS_JOIN_TOKEN" not in env
    joiner = s.node_env("m4", t, join_token="tok-12345678")
    assert joiner["CHAOS_ROLE"] == "manager" and joiner["CHAOS_JOIN_TOKEN"] == "tok-12345678"
    assert s.kind("m5") == "manager" and s.kind("w3") == "worker"
    back = ClusterSpec.from_label("c", s.label())
    assert back == dataclasses.replace(s, toxiproxy_shards=s.shards)   # the shard count as resolved
    assert [(l, back.topology().listen_port(*l)) for l in back.topology().links] == \
        [(l, t.listen_port(*l)) for l in t.links]


def test_spare_addresses_come_after_every_started_node():
    from chaos.env.up import address_order
    s = ClusterSpec(name="c", managers=3, workers=2, spare_managers=1)
    plain = ClusterSpec(name="c", managers=3, workers=2)
    assert address_order(s)[:len(address_order(plain))] == address_order(plain)
    assert address_order(s)[-1] == "m4"


def test_spec_label_that_is_not_one_is_a_value_error():
    with pytest.raises(ValueError):
        ClusterSpec.from_label("c", '{"managers": 2}')
    with pytest.raises(errors.UsageError):
        ClusterSpec(name="c", spare_managers=99)
