"""`chaos node promote|demote|rm|add` at the CLI boundary (chaos.cli.main), against a cluster of
agent processes on loopback (LocalCluster: the real agent API, no Docker), and the error mapping of
chaos.membership with a scripted HTTP callable: 2 bad usage, 3 outcome unknown, 4 nothing
answered, 5 refused by the cluster (definite)."""

from __future__ import annotations

import pytest

from chaos import cli, cmd_node, errors, membership
from swarmnode.agent.localcluster import LocalCluster, http, wait_for


def _scripted(answers):
    calls = []

    def call(method, url, body, timeout):
        calls.append((method, url, body))
        return answers[min(len(calls) - 1, len(answers) - 1)]
    return call, calls


@pytest.mark.parametrize("answer, exc, code", [
    ((409, {"error": "is-voter", "message": "m2 is a voter", "definite": True}), errors.MembershipRefused, 5),
    ((404, {"error": "not-found", "definite": True}), errors.MembershipRefused, 5),
    ((0, {"error": "ConnectionError"}), errors.EnvironmentError_, 4),
    ((503, {"error": "change-in-flight", "definite": True}), errors.OutcomeUnknown, 3),
])
def test_membership_change_error_mapping(answer, exc, code, monkeypatch):
    monkeypatch.setattr(membership.time, "sleep", lambda s: None)
    call, calls = _scripted([answer])
    with pytest.raises(exc) as info:
        membership.change(call, ["http://a", "http://b"], "remove", "m2", attempts=3)
    assert info.value.exit_code == code
    definite = answer[1].get("definite") is True and answer[1]["error"] != "change-in-flight"
    assert len(calls) == (1 if definite else 3)


def test_membership_change_indefinite_answer_is_returned_for_the_caller_to_wait(monkeypatch):
    call, calls = _scripted([(503, {"error": "unavailable", "message": "leadership lost", "definite": False})])
    out = membership.change(call, ["http://a"], "remove", "m1", force=True)
    assert out["outcome"] == "unknown" and len(calls) == 1


def test_membership_change_retries_in_flight_then_succeeds(monkeypatch):
    monkeypatch.setattr(membership.time, "sleep", lambda s: None)
    call, calls = _scripted([(503, {"error": "change-in-flight", "definite": True}),
                             (0, {"error": "refused"}), (200, {"ok": True})])
    assert membership.change(call, ["http://a", "http://b"], "demote", "m2") == {"ok": True}
    assert [u for _m, u, _b in calls] == ["http://a/membership", "http://b/membership", "http://a/membership"]


def test_membership_config_view_prefers_the_leader():
    sts = {"m1": {"role": "follower", "config": {"voters": ["m1", "m2"], "learners": [], "index": 9,
                                                 "committed": True}},
           "m2": {"role": "leader", "config": {"voters": ["m1", "m2"], "learners": ["m3"], "index": 7,
                                               "committed": False}},
           "m3": {"role": "follower", "membership": "learner"}, "w1": None}
    v = membership.config_view(sts)
    assert v["source"] == "m2" and v["learners"] == ["m3"]
    assert v["state"] == {"m1": "voter", "m2": "voter", "m3": "learner", "w1": "-"}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    c = LocalCluster(str(tmp_path_factory.mktemp("node")), managers=3, workers=1, seed=77)
    c.start_all()
    wait_for(c.leader, 40, what="a leader")
    wait_for(lambda: http("GET", c.url("m1", "/join-token"))[0] == 200, 30, what="a join token")
    yield c
    c.stop_all()


@pytest.fixture
def cli_on(local, monkeypatch):
    monkeypatch.setattr(cmd_node, "_cluster",
                        lambda name: (None, [local.url(n, "") for n in local.ids], list(local.ids)))
    return local


@pytest.mark.process
@pytest.mark.slow
def test_cli_node_demote_promote_rm(cli_on, capsys):
    c = cli_on
    leader = c.leader()
    f = next(m for m in c.manager_ids if m != leader)
    assert cli.main(["node", "rm", f]) == errors.EXIT_REFUSED          # a voter needs --force
    assert "is-voter" in capsys.readouterr().err
    assert cli.main(["node", "demote", f]) == 0
    assert f"learners {f}" in capsys.readouterr().out
    assert cli.main(["node", "promote", f, "--json"]) == 0
    assert f in __import__("json").loads(capsys.readouterr().out)["config"]["voters"]
    assert cli.main(["node", "promote", "w1"]) == 0                     # a worker becomes a manager
    assert "w1" in http("GET", c.url(leader, "/config"))[1]["voters"]
    assert cli.main(["node", "rm", "w1", "--force"]) == 0
    assert cli.main(["node", "demote", "nosuch"]) == errors.EXIT_USAGE
    assert cli.main(["node", "add", "--role", "manager"]) == errors.EXIT_USAGE
