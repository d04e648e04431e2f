"""The membership fault's `add` and `replace` actions in an experiment file (issue 23): what
validation accepts and refuses (each with its reason), what the plan carries, and the `redundancy`
checker's target when a manager joined during the run (run.json `joined`)."""

from __future__ import annotations

import json

import pytest

from chaos.experiment import plan as plan_mod
from chaos.experiment.loader import load_text

BASE = "version: 1\nname: c\ncluster: {managers: 3, workers: 1%s}\nschedule:\n"


def _problems(item: str, cluster: str = "") -> list[str]:
    _exp, problems = load_text(BASE % cluster + "  - " + item + "\n", "t.yaml")
    return [p.message for p in problems if p.severity == "error"]


def test_replace_and_add_validate_and_plan():
    assert _problems("{at: 1s, for: 1s, fault: membership, action: replace, target: m3}") == []
    assert _problems("{at: 1s, for: 1s, fault: membership, action: replace, target: leader}") == []
    assert _problems("{at: 1s, for: 1s, fault: membership, action: add}") == []
    assert _problems("{at: 1s, for: 1s, fault: membership, action: add, role: worker}") == []
    exp, _ = load_text(BASE % "" + "  - {at: 1s, for: 1s, fault: membership, action: add}\n", "t.yaml")
    spec = plan_mod.expand(exp, 1)["faults"][0]["spec"]
    assert spec["action"] == "add" and "target" not in spec and "role" not in spec


@pytest.mark.parametrize("item, cluster, match", [
    ("{at: 1s, for: 1s, fault: membership, action: replace, target: w1}", "", "only a manager is replaced"),
    ("{at: 1s, for: 1s, fault: membership, action: replace, target: workers}", "", "only a manager is replaced"),
    ("{at: 1s, for: 1s, fault: membership, action: replace}", "", "needs a `target`"),
    ("{at: 1s, for: 1s, fault: membership, action: add, target: m1}", "", "takes no `target`"),
    ("{at: 1s, for: 1s, fault: membership, action: remove, target: m1, role: manager}", "",
     "`role` goes with `action: add`"),
    ("{at: 1s, for: 1s, fault: membership, action: replace, target: m2}", ", backend: swarm",
     "needs the local backend"),
])
def test_replace_and_add_refusals(item, cluster, match):
    problems = _problems(item, cluster)
    assert any(match in p for p in problems), problems


def _run_dir(tmp_path, joined: bool):
    """A run whose configuration went {m1,m2,m3} -> {m1,m2} -> {m1,m2,m4} (m4 joined)."""
    d = tmp_path / ("joined" if joined else "plain")
    d.mkdir()
    nodes = {"m1": {"role": "manager"}, "m2": {"role": "manager"}, "m3": {"role": "manager"},
             "m4": {"role": "manager", **({"joined": True} if joined else {})}}
    (d / "run.json").write_text(json.dumps({"nodes": nodes}))
    rows = []
    for ts, voters in ((100, ["m1", "m2", "m3"]), (101, ["m1", "m2"]), (103, ["m1", "m2", "m4"]),
                       (110, ["m1", "m2", "m4"])):
        for n in ("m1", "m2"):
            rows.append({"ts": ts, "node": n, "status": {"role": "leader" if n == "m1" else "follower", "term": 2,
                                                          "applied_index": 9, "commit_index": 9,
                                                          "config": {"voters": voters, "learners": []}}})
    (d / "status.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_redundancy_target_is_the_managers_the_run_started_with(tmp_path):
    from chaos.checkers.redundancy import redundancy
    from chaos.checkers.rundir import RunDir

    run = RunDir(_run_dir(tmp_path, joined=True))
    assert run.started_managers() == ["m1", "m2", "m3"] and run.managers() == ["m1", "m2", "m3", "m4"]
    out = redundancy(run, max_below_target_s=None, max_degraded_s=None, lag_entries=100)
    assert out.evidence["target_voters"] == 3 and 1.9 < out.evidence["below_target_s"] < 2.1, out.evidence
    # without the `joined` mark, m4 would count as a manager the run started with: 4 voters wanted,
    # and three voters at the end would count as below target for the whole run
    wrong = redundancy(RunDir(_run_dir(tmp_path, joined=False)), max_below_target_s=None, max_degraded_s=None,
                       lag_entries=100)
    assert wrong.evidence["target_voters"] == 4 and wrong.evidence["below_target_s"] > 9
