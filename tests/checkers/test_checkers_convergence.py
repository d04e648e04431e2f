"""convergence: after heal the managers, gossip members and services converge within bounds."""

from __future__ import annotations

import json

from chaos.checkers import Verdict, run_checks

from .builder import MANAGERS, T0, WORKERS, healthy_cluster


def _judge(b, spec="convergence"):
    return run_checks(b.write(), [spec]).checks[0]


def _part(c, name):
    return c.evidence["parts"][name]


def test_convergence_healthy_valid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"))
    assert c.verdict == Verdict.VALID, c.summary
    assert _part(c, "managers")["converged_after_s"] == 3.0


def test_convergence_diverged_digests_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.finals["m3"]["store"]["store_digest"] = "other"
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    p = _part(c, "managers")
    assert p["verdict"] == "INVALID" and p["final"]["m3"]["store_digest"] == "other"


def test_convergence_late_agreement_beyond_bound_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    c = _judge(b, "convergence:store_bound_s=2")
    assert c.verdict == Verdict.INVALID
    assert "3.00 s after heal (bound 2 s)" in _part(c, "managers")["summary"]


def test_convergence_never_converging_member_table_invalid(tmp_path):
    """A live member stays marked dead in a peer's table (SWIM §4.2 refutation never spread)."""
    b = healthy_cluster(tmp_path / "run")
    b.finals["w1"]["status"]["members"]["m1"] = {"state": "dead", "incarnation": 0}
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    p = _part(c, "members")
    assert p["verdict"] == "INVALID" and "w1 sees live m1 as dead" in p["final_problems"]


def test_convergence_member_polls_never_agree_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for row in b.status:
        if row["node"] == "w2":
            row["status"] = json.loads(json.dumps(row["status"]))
            row["status"]["members"]["m1"] = {"state": "suspect", "incarnation": 0}
    c = _judge(b)
    assert _part(c, "members")["verdict"] == "INVALID"


def test_convergence_endpoint_tables_differ_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for w in WORKERS:
        b.finals[w]["status"]["endpoints"] = {"web": ["w1:80", "w2:80"]}
    assert _judge(b).verdict == Verdict.VALID   # only statuses that carry a table are compared
    for m in MANAGERS:
        b.finals[m]["status"]["endpoints"] = {"web": ["w1:80", "w2:80"]}
    for row in b.status:
        row["status"]["endpoints"] = {"web": ["w1:80", "w2:80"]}
    assert _judge(b).verdict == Verdict.VALID
    b.finals["w2"]["status"]["endpoints"] = {"web": ["w1:80"]}
    assert _part(_judge(b), "members")["verdict"] == "INVALID"


def test_convergence_task_state_backwards_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("w1", "task", ts=T0 + 6, task="web.1", service="web", slot=1, worker="w1", state="assigned")
    c = _judge(b)
    p = _part(c, "task-order")
    assert c.verdict == Verdict.INVALID and p["verdict"] == "INVALID"
    assert "web.1 went running -> assigned" in p["summary"]


def test_convergence_task_running_on_two_workers_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("w2", "task", ts=T0 + 7, task="web.1", service="web", slot=1, worker="w2", state="running")
    p = _part(_judge(b), "no-double")
    assert p["verdict"] == "INVALID" and "task web.1 running on w1, w2" in p["summary"]


def test_convergence_service_below_replicas_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for m in MANAGERS:
        b.finals[m]["store"]["tasks"]["web.2"]["state"] = "failed"
    p = _part(_judge(b), "services")
    assert p["verdict"] == "INVALID" and "web 1/2" in p["summary"]


def test_convergence_missing_required_data_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.status.clear()
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN
    b.finals.clear()
    b.journals.clear()
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "nothing to check" in c.summary


def test_convergence_unreachable_manager_invalid_missing_file_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.finals["m3"] = {"status": {"error": "connection refused"}}
    assert _part(_judge(b), "managers")["verdict"] == "INVALID"
    del b.finals["m3"]
    p = _part(_judge(b), "managers")
    assert p["verdict"] == "UNKNOWN" and "m3" in p["summary"]


def test_convergence_task_history_replayed_after_restart_valid(tmp_path):
    """A restarted manager re-applies its log and re-emits task events from `new`: not backwards."""
    b = healthy_cluster(tmp_path / "run")
    b.restart("m2", ts=T0 + 30)
    for st in ("new", "assigned", "running"):
        b.j("m2", "task", ts=T0 + 30.1, task="web.1", service="web", slot=1, worker="w1", state=st)
    assert _part(_judge(b), "task-order")["verdict"] == "VALID"


def test_members_settled_waits_for_endpoint_tables_and_silent_nodes():
    """The predicate harnesses use before taking the final state: the same condition as the members
    part, so a final state taken while gossip is still spreading cannot turn into 'never converged'."""
    from chaos.checkers.convergence import members_settled

    def st(members, endpoints=None):
        s = {"members": {m: {"state": v, "incarnation": 0} for m, v in members.items()}}
        if endpoints is not None:
            s["endpoints"] = endpoints
        return s

    ep = {"w1/t1": {"owner": "w1", "value": "x"}}
    agreed = {"w1": st({"w1": "alive", "w2": "alive"}, ep), "w2": st({"w1": "alive", "w2": "alive"}, ep)}
    assert members_settled(agreed)
    assert not members_settled({"w1": agreed["w1"], "w2": st({"w1": "alive", "w2": "alive"}, {})})
    assert not members_settled({"w1": agreed["w1"], "w2": st({"w1": "suspect", "w2": "alive"}, ep)})
    # w3 does not answer: while anyone still calls it alive, not settled; once it is dead, settled
    assert not members_settled({**agreed, "w3": None,
                                "w1": st({"w1": "alive", "w2": "alive", "w3": "alive"}, ep)})
    assert members_settled({**agreed, "w3": None, "w1": st({"w1": "alive", "w2": "alive", "w3": "dead"}, ep)})
    assert not members_settled({"w1": None, "w2": {"error": "no answer"}})
