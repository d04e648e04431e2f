"""Membership in the checkers (issue 23): raft-safety's `election-quorum` rule judges an election
against the configuration in force on the new leader (Raft thesis §4.1: a configuration is used as
soon as it is in the log), from the journals' `config` events; and the `redundancy` checker."""

from __future__ import annotations

from chaos.checkers import Verdict
from chaos.checkers.raft_safety import check_journals
from chaos.checkers.redundancy import redundancy_intervals


def _ev(node, seq, type_, **kw):
    return {"node": node, "seq": seq, "boot": 1, "ts": 100.0 + seq, "type": type_, **kw}


def _journals(voters, votes_for_m1, learners=()):
    """m1 becomes leader of term 2 with `votes_for_m1` granting; everyone journals `config`."""
    nodes = sorted(set(voters) | set(learners) | set(votes_for_m1) | {"m1"})
    out = {}
    for n in nodes:
        evs = [_ev(n, 1, "config", index=3, voters=list(voters), learners=list(learners))]
        if n in votes_for_m1:
            evs.append(_ev(n, 2, "vote", term=2, candidate="m1"))
        if n == "m1":
            evs += [_ev(n, 3, "role", role="leader", term=2), _ev(n, 4, "append", index=1, term=2, hash="h1"),
                    _ev(n, 5, "commit", index=1)]
        out[n] = evs
    return out


def test_raft_safety_election_quorum_of_the_shrunk_configuration_valid():
    """After 5 -> 3, two votes of the three voters in force are a majority (not of the original 5)."""
    out = check_journals(_journals(["m1", "m2", "m3"], ["m1", "m2"]))
    assert out.verdict == Verdict.VALID, out.summary


def test_raft_safety_election_quorum_learner_vote_does_not_count_invalid():
    """A learner's vote (planted `learner_votes`) makes no majority: 1 voter + 1 learner of 3 voters."""
    out = check_journals(_journals(["m1", "m2", "m3"], ["m1", "m4"], learners=["m4"]))
    assert out.verdict == Verdict.INVALID
    assert set(out.evidence["violations"]) == {"election-quorum"}
    detail = out.evidence["violations"]["election-quorum"][0]["detail"]
    assert "non-voters ['m4']" in detail and "majority needs 2" in detail


def test_raft_safety_election_quorum_grown_configuration_invalid():
    """Grown to 5: two votes were a majority of the old 3, not of the 5 voters in force."""
    out = check_journals(_journals(["m1", "m2", "m3", "m4", "m5"], ["m1", "m2"]))
    assert out.verdict == Verdict.INVALID and "election-quorum" in out.evidence["violations"]


def test_raft_safety_election_quorum_missing_voter_journal_is_a_note():
    j = _journals(["m1", "m2", "m3", "m4", "m5"], ["m1", "m2"])
    del j["m5"]
    out = check_journals(j)
    assert out.verdict == Verdict.VALID
    assert any("no journal of voter(s) m5" in n for n in out.evidence["notes"])


def test_raft_safety_without_config_events_unchanged():
    j = _journals(["m1", "m2", "m3", "m4", "m5"], ["m1", "m2"])
    for evs in j.values():
        evs[:] = [e for e in evs if e["type"] != "config"]
    assert check_journals(j).verdict == Verdict.VALID


def _st(role, term=3, voters=("m1", "m2", "m3"), applied=10, commit=10):
    return {"role": role, "term": term, "applied_index": applied, "commit_index": commit,
            "config": {"voters": list(voters), "learners": []}}


def _round(ts, sts):
    return [{"ts": ts, "node": n, "status": st} for n, st in sorted(sts.items())]


def test_redundancy_healthy_three_voters_no_deficit():
    rows = []
    for i in range(5):
        rows += _round(100 + i, {"m1": _st("leader"), "m2": _st("follower"), "m3": _st("follower")})
    out = redundancy_intervals(rows, target=3)
    assert out["degraded_s"] == 0 and out["below_target_s"] == 0 and out["min_voters"] == 3


def test_redundancy_removed_voter_counts_below_target_until_replaced():
    two = ("m1", "m2")
    rows = _round(100, {"m1": _st("leader"), "m2": _st("follower"), "m3": _st("follower")})
    rows += _round(101, {"m1": _st("leader", voters=two), "m2": _st("follower", voters=two), "m3": None})
    rows += _round(104, {"m1": _st("leader", voters=two), "m2": _st("follower", voters=two), "m3": None})
    rows += _round(105, {"m1": _st("leader", voters=("m1", "m2", "m4")), "m2": _st("follower"),
                         "m4": _st("follower")})
    out = redundancy_intervals(rows, target=3)
    assert 3.9 < out["below_target_s"] < 4.1, out
    assert out["degraded_s"] == 0, out
    assert out["intervals"][0]["kind"] == "below_target"


def test_redundancy_dead_or_lagging_voter_is_degraded():
    rows = _round(100, {"m1": _st("leader", commit=500), "m2": _st("follower", applied=500), "m3": None})
    rows += _round(102, {"m1": _st("leader", commit=500), "m2": _st("follower", applied=500),
                         "m3": _st("follower", applied=10)})            # back, but 490 entries behind
    rows += _round(103, {"m1": _st("leader", commit=500), "m2": _st("follower", applied=500),
                         "m3": _st("follower", applied=499)})
    out = redundancy_intervals(rows, target=3)
    assert 2.9 < out["degraded_s"] < 3.1, out
    assert out["below_target_s"] == 0


def _removal(keeps_leading: bool):
    """m1 leads term 2, appends a configuration without itself at index 5, commits it."""
    ev = [_ev("m1", 1, "config", index=0, voters=["m1", "m2", "m3"], learners=[]),
          _ev("m1", 2, "vote", term=2, candidate="m1"), _ev("m1", 3, "role", role="leader", term=2)]
    ev += [_ev("m1", 4 + i, "append", index=i + 1, term=2, hash=f"h{i + 1}") for i in range(5)]
    ev += [_ev("m1", 10, "commit", index=4), _ev("m1", 11, "config", index=5, voters=["m2", "m3"], learners=[]),
           _ev("m1", 12, "commit", index=5)]
    if keeps_leading:
        ev += [_ev("m1", 13, "append", index=6, term=2, hash="h6"), _ev("m1", 14, "commit", index=6)]
    else:
        ev += [_ev("m1", 13, "role", role="follower", term=2)]
    m2 = [_ev("m2", 1, "config", index=0, voters=["m1", "m2", "m3"], learners=[]),
          _ev("m2", 2, "vote", term=2, candidate="m1")]
    return {"m1": ev, "m2": m2, "m3": [_ev("m3", 1, "config", index=0, voters=["m1", "m2", "m3"], learners=[])]}


def test_raft_safety_removed_leader_steps_down_valid():
    out = check_journals(_removal(False))
    assert out.verdict == Verdict.VALID, out.summary


def test_raft_safety_removed_leader_keeps_leading_invalid():
    """§4.2.2 broken on purpose (the planted `removed_leader_keeps_leading`)."""
    out = check_journals(_removal(True))
    assert out.verdict == Verdict.INVALID and set(out.evidence["violations"]) == {"removed-leader"}


def _changes(second_at_commit: int, first_commit: int = 3):
    """m1 leads term 2 over m1..m3 (noop at 1, committed); appends a configuration adding learner
    m4 at index 2, the commit reaches `first_commit`, then a second configuration (promote m4) at
    index 4, after the commit reached `second_at_commit`."""
    three = ["m1", "m2", "m3"]
    ev = [_ev("m1", 1, "config", index=0, voters=three, learners=[]),
          _ev("m1", 2, "vote", term=2, candidate="m1"), _ev("m1", 3, "role", role="leader", term=2),
          _ev("m1", 4, "append", index=1, term=2, hash="h1")]
    if first_commit:
        ev.append(_ev("m1", 5, "commit", index=1))
    ev += [_ev("m1", 6, "append", index=2, term=2, hash="h2"),
           _ev("m1", 7, "config", index=2, voters=three, learners=["m4"]),
           _ev("m1", 8, "append", index=3, term=2, hash="h3")]
    if first_commit > 1:
        ev.append(_ev("m1", 9, "commit", index=first_commit))
    ev += [_ev("m1", 10, "append", index=4, term=2, hash="h4")]
    if second_at_commit > first_commit:
        ev.append(_ev("m1", 11, "commit", index=second_at_commit))
    ev += [_ev("m1", 12, "config", index=4, voters=three + ["m4"], learners=[]),
           _ev("m1", 13, "commit", index=4)]
    others = {n: [_ev(n, 1, "config", index=0, voters=three, learners=[]),
                  _ev(n, 2, "vote", term=2, candidate="m1")] for n in ("m2", "m3")}
    return {"m1": ev, **others}


def test_raft_safety_conf_change_one_at_a_time_valid():
    """The second change appended once the first (index 2) committed: VALID."""
    out = check_journals(_changes(second_at_commit=3))
    assert out.verdict == Verdict.VALID, out.summary


def test_raft_safety_conf_change_two_in_flight_invalid():
    """The planted `conf_two_in_flight`: a change appended at 4 while the one at 2 is uncommitted."""
    out = check_journals(_changes(second_at_commit=1, first_commit=1))
    assert out.verdict == Verdict.INVALID, out.summary
    assert set(out.evidence["violations"]) == {"conf-change-rule"}
    detail = out.evidence["violations"]["conf-change-rule"][0]["detail"]
    assert "at 4 while the one at 2 was uncommitted (commit 1)" in detail


def test_raft_safety_conf_change_before_own_term_commit_invalid():
    """The planted `conf_before_own_commit`: a new leader appends a change before it committed an
    entry of its term (here nothing at all in this term: commit 0)."""
    out = check_journals(_changes(second_at_commit=3, first_commit=0))
    assert out.verdict == Verdict.INVALID, out.summary
    assert "before committing an entry of its term" in out.evidence["violations"]["conf-change-rule"][0]["detail"]


def test_raft_safety_conf_change_two_in_one_ready_invalid():
    """Two changes appended in one Ready: the agent journals a `config` event per configuration
    entry, in log order, after the Ready's appends; the second is judged against the first."""
    j = _changes(second_at_commit=3)
    three = ["m1", "m2", "m3"]
    j["m1"] = j["m1"][:5] + [_ev("m1", 6, "append", index=2, term=2, hash="h2"),
                             _ev("m1", 7, "append", index=3, term=2, hash="h3"),
                             _ev("m1", 8, "config", index=2, voters=three, learners=["m4"]),
                             _ev("m1", 9, "config", index=3, voters=three + ["m4"], learners=[]),
                             _ev("m1", 10, "commit", index=3)]
    out = check_journals(j)
    assert out.verdict == Verdict.INVALID, out.summary
    assert "at 3 while the one at 2 was uncommitted (commit 1)" in out.evidence["violations"]["conf-change-rule"][0]["detail"]


def test_raft_safety_conf_change_rule_ignores_configurations_a_follower_receives():
    """A follower's `config` event (a change it received) is not its own append: not judged."""
    j = _changes(second_at_commit=3)
    j["m2"] += [_ev("m2", 3, "append", index=1, term=2, hash="h1"), _ev("m2", 4, "append", index=2, term=2, hash="h2"),
                _ev("m2", 5, "config", index=2, voters=["m1", "m2", "m3"], learners=["m4"])]
    assert check_journals(j).verdict == Verdict.VALID


def test_convergence_config_part_valid_and_invalid(tmp_path):
    """Every member of the final leader's configuration must end with it, committed; a member
    left with another configuration is INVALID; a removed node (not a member) is ignored."""
    import json

    from chaos.checkers.convergence import check_config
    from chaos.checkers.rundir import RunDir

    def run_with(finals):
        d = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        (d / "final").mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"nodes": {n: {"role": "manager"} for n in finals}}))
        for n, st in finals.items():
            (d / "final" / f"{n}.json").write_text(json.dumps({"status": st}))
        return RunDir(d)

    good = {"voters": ["m1", "m2", "w1"], "learners": [], "index": 1000, "committed": True}
    same_other_index = dict(good, index=1001)
    finals = {"m1": {"role": "leader", "term": 3, "config": good},
              "m2": {"role": "follower", "term": 3, "config": same_other_index},
              "w1": {"role": "follower", "term": 3, "config": good},
              "m3": {"role": "follower", "term": 1, "config": {"voters": ["m1", "m2", "m3"], "learners": []}}}
    assert check_config(run_with(finals))["verdict"] == "VALID"
    finals["m2"] = {"role": "follower", "term": 3, "config": {"voters": ["m1", "m2", "m3"], "learners": [],
                                                               "committed": True}}
    out = check_config(run_with(finals))
    assert out["verdict"] == "INVALID" and "m2" in out["summary"]
