"""raft-safety: each rule of Raft (Ongaro & Ousterhout 2014) broken on purpose, and a healthy run VALID."""

from __future__ import annotations

from chaos.checkers import Verdict, run_checks
from chaos.checkers.raft_safety import check_journals

from .builder import T0, chain, healthy_cluster


def _judge(b, **params):
    spec = "raft-safety" + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")
    res = run_checks(b.write(), [spec])
    return res.checks[0]


def _rules(check) -> set[str]:
    return set(check.evidence.get("violations", {}))


def test_raft_safety_healthy_cluster_valid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"))
    assert c.verdict == Verdict.VALID, c.summary
    assert c.evidence["terms_with_leader"] == 2


def test_raft_safety_two_leaders_in_one_term_invalid(tmp_path):
    """§5.2 Election Safety: at most one leader can be elected in a given term."""
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "role", ts=T0 + 12.6, role="leader", term=2)
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    assert _rules(c) == {"election-safety"}
    ev = c.evidence["violations"]["election-safety"][0]
    assert {e["node"] for e in ev["events"]} == {"m2", "m3"}
    assert "term 2" in ev["detail"]


def test_raft_safety_double_vote_across_restart_invalid(tmp_path):
    """§5.2: each server votes for at most one candidate in a term (votedFor is persistent, Fig. 2)."""
    b = healthy_cluster(tmp_path / "run")
    b.restart("m3", ts=T0 + 12.2)
    b.j("m3", "vote", ts=T0 + 12.3, term=2, candidate="m1")
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    assert "vote-once" in _rules(c)
    ev = c.evidence["violations"]["vote-once"][0]
    assert [e["boot"] for e in ev["events"]] == [1, 2]
    assert "m3 voted for m2" in ev["detail"] and "m1" in ev["detail"]


def test_raft_safety_revote_same_candidate_allowed(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "vote", ts=T0 + 12.3, term=2, candidate="m2")
    assert _judge(b).verdict == Verdict.VALID


def test_raft_safety_term_decrease_after_restart_invalid(tmp_path):
    """Fig. 2: currentTerm is persistent state; a restart must not lose it."""
    b = healthy_cluster(tmp_path / "run")
    b.restart("m3", ts=T0 + 30)
    b.j("m3", "term", ts=T0 + 30.1, term=1)
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and "term-monotonic" in _rules(c)


def test_raft_safety_commit_decrease_within_boot_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "commit", ts=T0 + 30, index=2)
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and "commit-monotonic" in _rules(c)


def test_raft_safety_commit_reset_on_restart_rule(tmp_path):
    """commitIndex is volatile (Fig. 2): after a restart it may restart low, unless persisted."""
    b = healthy_cluster(tmp_path / "run")   # m1 restarts and re-commits from scratch
    assert _judge(b).verdict == Verdict.VALID
    b2 = healthy_cluster(tmp_path / "run2")
    b2.restart("m3", ts=T0 + 30)
    b2.j("m3", "commit", ts=T0 + 30.1, index=1)
    assert _judge(b2).verdict == Verdict.VALID
    c = _judge(b2, commit_persisted="true")
    assert c.verdict == Verdict.INVALID and "commit-monotonic" in _rules(c)


def test_raft_safety_commit_below_snapshot_after_restart_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    h3 = b.journals["m3"][[e.get("index") for e in b.journals["m3"]].index(3)]["hash"]
    b.j("m3", "snapshot", ts=T0 + 29, index=3, term=1, hash=h3, store_digest="d3")
    b.restart("m3", ts=T0 + 30)
    b.j("m3", "commit", ts=T0 + 30.1, index=2)
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and "commit-monotonic" in _rules(c)


def test_raft_safety_log_matching_same_index_term_different_hash_invalid(tmp_path):
    """§5.3 Log Matching: same index and term => same entry (and same preceding entries)."""
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "truncate", ts=T0 + 30, from_index=6)
    b.j("m3", "append", ts=T0 + 30.1, index=6, term=2, hash="ffffffffffffffff")
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and "log-matching" in _rules(c)
    assert "index 6 term 2" in c.evidence["violations"]["log-matching"][0]["detail"]


def test_raft_safety_log_matching_hole_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "append", ts=T0 + 30, index=9, term=2, hash=chain("x", 2, "e9"))
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and "log-matching" in _rules(c)


def test_raft_safety_leader_without_committed_entry_invalid():
    """§5.4 Leader Completeness: a leader of a later term holds every committed entry."""
    h1, h2 = chain("", 1, "a"), chain(chain("", 1, "a"), 1, "b")
    j = {"m1": [], "m2": [], "m3": []}

    def ev(node, type_, **kw):
        j[node].append({"node": node, "seq": len(j[node]) + 1, "ts": T0 + len(j[node]), "boot": 1,
                        "type": type_, **kw})
    for n in j:
        ev(n, "term", term=1)
    ev("m1", "role", role="leader", term=1)
    for n in ("m1", "m2"):
        ev(n, "append", index=1, term=1, hash=h1)
        ev(n, "append", index=2, term=1, hash=h2)
    ev("m3", "append", index=1, term=1, hash=h1)
    ev("m1", "commit", index=2)       # committed on m1 + m2
    ev("m3", "term", term=2)
    ev("m3", "role", role="leader", term=2)   # m3 lacks entry 2
    out = check_journals(j)
    assert out.verdict == Verdict.INVALID
    v = out.evidence["violations"]["leader-completeness"][0]
    assert "m3 became leader of term 2 without committed entry 2" in v["detail"]


def test_raft_safety_diverged_store_digest_invalid(tmp_path):
    """§5.4.3 State Machine Safety: same index applied => same entry and same resulting state."""
    b = healthy_cluster(tmp_path / "run")
    for e in b.journals["m3"]:
        if e["type"] == "apply" and e["index"] == 5:
            e["store_digest"] = "bad-digest"
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and _rules(c) == {"state-machine-safety"}
    assert "index 5" in c.evidence["violations"]["state-machine-safety"][0]["detail"]


def test_raft_safety_apply_above_commit_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    h6 = [e for e in b.journals["m3"] if e["type"] == "append"][-1]["hash"]
    h7 = chain(h6, 2, "e7")
    b.j("m3", "append", ts=T0 + 40, index=7, term=2, hash=h7)
    b.restart("m3", ts=T0 + 41)   # a restart may re-apply up to the commit it had, not beyond
    b.j("m3", "apply", ts=T0 + 41.1, index=7, term=2, hash=h7, store_digest="d7")
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and _rules(c) == {"apply-committed"}
    assert "applied 7 above commit index 6" in c.evidence["violations"]["apply-committed"][0]["detail"]


def test_raft_safety_restart_reapplies_up_to_old_commit_valid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.restart("m3", ts=T0 + 41)
    for e in [e for e in b.journals["m3"] if e["type"] == "apply"][:6]:
        b.j("m3", "apply", ts=T0 + 41.1, **{k: e[k] for k in ("index", "term", "hash", "store_digest")})
    assert _judge(b).verdict == Verdict.VALID


def test_raft_safety_leader_commits_old_term_entry_invalid():
    """§5.4.2 / Fig. 8: a leader never commits an entry of an earlier term by counting replicas."""
    h1 = chain("", 1, "a")
    j = {"m1": [], "m2": []}

    def ev(node, type_, **kw):
        j[node].append({"node": node, "seq": len(j[node]) + 1, "ts": T0 + len(j[node]), "boot": 1,
                        "type": type_, **kw})
    ev("m1", "term", term=1)
    ev("m1", "role", role="leader", term=1)
    ev("m1", "append", index=1, term=1, hash=h1)       # replicated to m2, never committed in term 1
    ev("m2", "append", index=1, term=1, hash=h1)
    ev("m2", "term", term=2)
    ev("m2", "role", role="leader", term=2)
    ev("m2", "commit", index=1)                         # counts replicas of a term-1 entry: the bug
    out = check_journals(j)
    assert out.verdict == Verdict.INVALID and set(out.evidence["violations"]) == {"commit-rule"}
    h2 = chain(h1, 2, "b")
    j["m2"].pop()
    ev("m2", "append", index=2, term=2, hash=h2)
    ev("m2", "commit", index=2)                         # commits its own entry, and index 1 with it
    assert check_journals(j).verdict == Verdict.VALID


def test_raft_safety_vote_lost_at_restart_invalid(tmp_path):
    """Fig. 2: votedFor is persistent. m3 granted its term-2 vote to m2; after a restart it reports
    loading term 2 with no vote: it could vote again in term 2, even if nobody asks it to."""
    b = healthy_cluster(tmp_path / "run")
    b.restart("m3", ts=T0 + 30)
    b.j("m3", "recovered", ts=T0 + 30.01, term=2, vote=None, commit=0)
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    assert _rules(c) == {"persistent-state"}
    ev = c.evidence["violations"]["persistent-state"][0]
    assert "'m2'" in ev["detail"] and [e["type"] for e in ev["events"]] == ["vote", "recovered"]


def test_raft_safety_term_lost_at_restart_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.restart("m3", ts=T0 + 30)
    b.j("m3", "recovered", ts=T0 + 30.01, term=1, vote="m1", commit=0)
    c = _judge(b)
    assert c.verdict == Verdict.INVALID and "persistent-state" in _rules(c)


def test_raft_safety_state_recovered_as_journaled_valid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for m, vote in (("m1", "m2"), ("m3", "m2")):
        b.restart(m, ts=T0 + 30)
        b.j(m, "recovered", ts=T0 + 30.01, term=2, vote=vote, commit=0)
    c = _judge(b)
    assert c.verdict == Verdict.VALID, c.summary


def test_raft_safety_damaged_recovered_vote_is_unknown_not_a_lost_vote(tmp_path):
    """A `recovered` line whose vote is missing or not a node id is a damaged record: UNKNOWN, never
    the persistent-state violation a lost vote would be."""
    for bad in ({"vote": 5}, {}):
        b = healthy_cluster(tmp_path / f"run{len(bad)}")
        b.restart("m3", ts=T0 + 30)
        b.j("m3", "recovered", ts=T0 + 30.01, term=2, commit=0, **bad)
        c = _judge(b)
        assert c.verdict == Verdict.UNKNOWN, (bad, c.verdict, c.summary)


def test_raft_safety_no_leader_or_no_committed_entry_unknown(tmp_path):
    """Journals with elections but no committed entry, or entries but no leader, leave the rules
    nothing to judge: UNKNOWN (it was VALID, '0 committed entries: all safety rules hold')."""
    b = healthy_cluster(tmp_path / "run")
    for evs in b.journals.values():
        evs[:] = [e for e in evs if e["type"] not in ("append", "commit", "apply")]
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "no entry was committed" in c.summary, c.summary
    b = healthy_cluster(tmp_path / "run")
    for evs in b.journals.values():
        evs[:] = [e for e in evs if not (e["type"] == "role" and e["role"] == "leader")]
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "no node became leader" in c.summary, c.summary
