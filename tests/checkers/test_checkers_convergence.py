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


# --- final stores read at different applied indexes (issue 21 item 1) -----------------------------


def _raced(tmp_path, finals: dict, journal_top: dict, entries: int = 6, upto: int = 8, settle=None):
    """healthy_cluster, then the leader m2 commits entries entries+1..upto after the cluster agreed
    (task reconciliation, say); each manager's journal applies them up to journal_top[m] and its
    final store was read at finals[m] (a commit between two nodes' reads)."""
    from .builder import chain

    b = healthy_cluster(tmp_path / "run", entries=entries)
    prev = b.journals["m2"][-1]
    prev_hash = next(e["hash"] for e in reversed(b.journals["m2"]) if e["type"] == "apply")
    ts = prev["ts"] + 30
    hashes = {}
    for i in range(entries + 1, upto + 1):
        prev_hash = chain(prev_hash, 2, f"e{i}")
        hashes[i] = prev_hash
    for m in MANAGERS:
        for i in range(entries + 1, journal_top[m] + 1):
            b.j(m, "append", ts=ts + i, index=i, term=2, hash=hashes[i])
            b.j(m, "commit", ts=ts + i, index=i)
            b.j(m, "apply", ts=ts + i, index=i, term=2, hash=hashes[i], store_digest=f"d{i}")
        b.finals[m]["store"].update(applied_index=finals[m], store_digest=f"d{finals[m]}")
        b.finals[m]["status"].update(applied_index=finals[m], store_digest=f"d{finals[m]}")
    if settle is not None:
        b.run["settle"] = {"agreed": {"applied_index": settle, "store_digest": f"d{settle}", "rounds": [3, 4],
                                      "ts": b.run["heal_ts"] + 3}, "reason": None}
    return b


def test_convergence_final_reads_at_different_indexes_journals_agree_valid(tmp_path):
    """The new user's case: m1 83, m2 85, m3 83 at load 3-4, a correct cluster. Each journal reaches
    the highest final index with the same digests: VALID, compared at the common index."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 7}, journal_top={"m1": 8, "m2": 8, "m3": 8})
    c = _judge(b)
    p = _part(c, "managers")
    assert c.verdict == Verdict.VALID, (c.summary, p)
    assert p["common_index"] == 6 and set(p["caught_up"]) == {"m1", "m3"}
    assert "compared at common index 6" in p["summary"]


def test_convergence_lower_final_read_caught_up_by_settle_agreement_valid(tmp_path):
    """m1's journal was read before it applied 7 and 8, but the settle rounds saw every manager at 6
    (two consecutive concurrent rounds) and its final store is at 6: not behind, the reads raced."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 6, "m2": 8, "m3": 8}, settle=6)
    p = _part(_judge(b), "managers")
    assert p["verdict"] == "VALID", p
    assert "settle rounds" in p["caught_up"]["m1"]


def test_convergence_manager_really_behind_invalid(tmp_path):
    """Same reads, no settle agreement: m1 never reached index 8 by anything on record."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 6, "m2": 8, "m3": 8})
    c = _judge(b)
    p = _part(c, "managers")
    assert c.verdict == Verdict.INVALID and p["verdict"] == "INVALID", p
    assert "really behind: m1 at 6 (journal to 6)" in p["summary"] and p["behind"] == {"m1": 6}


def test_convergence_settle_agreement_above_the_final_read_is_behind_invalid(tmp_path):
    """Settle saw everyone at 7, m1's final read is at 6 (it went back) and its journal stops there."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 6, "m2": 8, "m3": 8}, settle=7)
    p = _part(_judge(b), "managers")
    assert p["verdict"] == "INVALID" and "above its final index" in p["summary"], p


def test_convergence_really_different_store_at_common_index_invalid(tmp_path):
    """m3 applied index 7 to a different store than the others: INVALID at index 7, whatever the reads."""
    b = _raced(tmp_path, finals={"m1": 8, "m2": 8, "m3": 7}, journal_top={"m1": 8, "m2": 8, "m3": 8})
    b.finals["m3"]["store"]["store_digest"] = "x7"
    c = _judge(b)
    p = _part(c, "managers")
    assert c.verdict == Verdict.INVALID and p["different_at"] == 7, p
    assert p["digests_at"]["m3"] == "x7" and p["digests_at"]["m1"] == "d7"


def test_convergence_journal_digest_differs_from_a_final_read_invalid(tmp_path):
    """The difference is only in a journal: m1's journal applied 8 to another digest than m2's store."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 8, "m2": 8, "m3": 8})
    apply8 = next(e for e in b.journals["m1"] if e["type"] == "apply" and e["index"] == 8)
    apply8["store_digest"] = "other"
    p = _part(_judge(b), "managers")
    assert p["verdict"] == "INVALID" and p["different_at"] == 8, p


def test_convergence_settle_digest_differs_invalid(tmp_path):
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 8, "m2": 8, "m3": 8}, settle=7)
    b.run["settle"]["agreed"]["store_digest"] = "other"
    p = _part(_judge(b), "managers")
    assert p["verdict"] == "INVALID" and p["different_at"] == 7, p


def test_convergence_no_digest_at_the_common_index_unknown(tmp_path):
    """m2's journal has no apply at 6 (say a snapshot was installed above it): nothing to compare at."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 8, "m2": 8, "m3": 8})
    for m in ("m2", "m3"):
        b.journals[m] = [e for e in b.journals[m] if not (e["type"] == "apply" and e["index"] == 6)]
    p = _part(_judge(b), "managers")
    assert p["verdict"] == "UNKNOWN" and "no apply event at 6" in p["summary"], p


def test_convergence_behind_with_a_cut_journal_unknown(tmp_path):
    """m1's journal ends in a cut line: it may have gone on to 8, so 'behind' is not shown."""
    b = _raced(tmp_path, finals={"m1": 6, "m2": 8, "m3": 8}, journal_top={"m1": 6, "m2": 8, "m3": 8})
    path = b.write()
    with (path / "events" / "m1.jsonl").open("a") as fh:
        fh.write('{"type": "apply", "ind')
    c = run_checks(path, ["convergence"]).checks[0]
    p = _part(c, "managers")
    assert c.verdict == Verdict.UNKNOWN and p["verdict"] == "UNKNOWN", p
    assert "incomplete" in p["summary"]


def _leader_reports_config_without_m3(b):
    for m in ("m1", "m2", "m3"):
        st = b.finals[m]["status"]
        if st.get("role") == "leader":
            st["config"] = {"voters": ["m1", "m2"], "learners": [], "index": 9, "committed": True}


def test_convergence_a_manager_is_left_out_only_when_the_journals_show_its_removal(tmp_path):
    """A leader that merely reports a configuration without m3 (a bug, or no membership change at
    all) must not take m3's diverged store out of judgement: only a journaled configuration that
    leaves m3 out does (issue 23; the deliberately wrong agent here is the reporting leader)."""
    b = healthy_cluster(tmp_path / "a")
    b.finals["m3"]["store"]["store_digest"] = "other"
    _leader_reports_config_without_m3(b)
    c = _judge(b, "convergence")
    assert c.verdict == Verdict.INVALID and _part(c, "managers")["final"]["m3"]["store_digest"] == "other"
    d = run_checks(b.write(), ["durability"]).checks[0]
    assert "m3" in json.dumps(d.evidence)
    # the removal journaled: m3 is out of the configuration in force, and is not judged
    b2 = healthy_cluster(tmp_path / "b")
    b2.finals["m3"]["store"]["store_digest"] = "other"
    _leader_reports_config_without_m3(b2)
    for m in ("m1", "m2"):
        b2.j(m, "config", ts=T0 + 30, index=9, voters=["m1", "m2"], learners=[])
    c2 = _judge(b2, "convergence")
    assert "m3" not in _part(c2, "managers").get("final", {}), _part(c2, "managers")


def test_convergence_journals_read_only_when_the_configuration_leaves_a_manager_out(tmp_path):
    """Without a membership change a missing journal does not touch durability (it reads none);
    with a leader reporting a configuration without m3 and m2's journal missing, whether m3 was
    removed cannot be told: UNKNOWN naming the journal, never a judgement of a maybe-removed node."""
    b = healthy_cluster(tmp_path / "a")
    d = b.write()
    (d / "events" / "m2.jsonl").unlink()
    assert run_checks(d, ["durability"], write=False).checks[0].verdict == Verdict.VALID
    b2 = healthy_cluster(tmp_path / "b")
    _leader_reports_config_without_m3(b2)
    d2 = b2.write()
    (d2 / "events" / "m2.jsonl").unlink()
    c = run_checks(d2, ["durability"], write=False).checks[0]
    assert c.verdict == Verdict.UNKNOWN and "events/m2.jsonl" in c.summary, c.summary
