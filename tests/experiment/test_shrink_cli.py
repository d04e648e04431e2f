"""`chaos shrink` around the search, without Docker: the target check, bad run directories (exit 2,
no traceback), and with a FAKE runner the files it writes (shrink.jsonl, minimal.yaml that
validates and still names the kept faults, summary.json) and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos import cli
from chaos.experiment import plan as plan_mod
from chaos.experiment.loader import load_file
from chaos.shrink import Try, fault_names, plan_of, timeline_s
from chaos.shrink_run import render, shrink_run_dir

ROOT = Path(__file__).resolve().parents[2]


def failing_run_dir(tmp_path: Path, verdicts=(("linearizable", "INVALID"), ("raft-safety", "VALID")),
                    seed: int = 3, control: bool = False) -> Path:
    loaded = load_file(ROOT / "experiments" / "random-soak.yaml")
    plan = plan_mod.with_plant(plan_mod.expand(loaded.experiment, seed), ["stale_read"])
    d = tmp_path / f"random-soak-seed{seed}"
    d.mkdir()
    (d / "experiment.yaml").write_text(loaded.text)
    (d / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True))
    (d / "run.json").write_text(json.dumps({"seed": seed, "duration_s": 190.0, "control": control,
                                            "experiment_sha256": loaded.sha256}))
    (d / "results.json").write_text(json.dumps({"verdict": "INVALID", "checks": [
        {"name": n, "checker": n, "verdict": v, "summary": ""} for n, v in verdicts]}))
    return d


class Fake:
    def __init__(self, need: set[str], seed: int = 3):
        self.need, self.seed, self.calls = need, seed, []

    def __call__(self, doc, label):
        self.calls.append(label)
        plan, why = plan_of(doc, self.seed)
        assert plan is not None, why
        failed = self.need <= set(fault_names(doc))
        return Try(failed, "INVALID" if failed else "VALID", timeline_s(plan) + 30, f"/x/{label}")


def test_shrink_cli_writes_minimal_yaml_log_and_summary_with_a_fake_runner(tmp_path):
    d = failing_run_dir(tmp_path)
    names = [f["id"] for f in json.loads((d / "plan.json").read_text())["faults"]]
    need = {names[4], names[11]}
    seen = []
    done = shrink_run_dir(d, tries=3, budget_s=200 * 3600.0, check=None, run=Fake(need), progress=seen.append)
    assert done.exit_code == 0 and done.check == "linearizable"
    out = d / "shrink"
    exp = load_file(out / "minimal.yaml").experiment  # validates
    plan = plan_mod.expand(exp, 3)
    assert {f["id"] for f in plan["faults"]} == need
    assert plan["cluster"]["plant"] == ["stale_read"]  # the planted bug stays planted
    text = (out / "minimal.yaml").read_text()
    assert "--seed 3" in text and "Shrunk by `chaos shrink`" in text
    assert "failed in 3 of 3 confirmation runs" in text
    lines = [json.loads(x) for x in (out / "shrink.jsonl").read_text().splitlines()]
    assert lines[0]["check"] == "linearizable" and "end" in lines[-1]
    cands = [x for x in lines if "candidate" in x]
    assert cands and all({"change", "kept", "why", "verdict"} <= set(x) for x in cands)
    assert sum(1 for x in lines if "confirm" in x) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults_after"] == 2 and summary["faults_before"] == len(names)
    assert summary["repro_rate"] == 1.0 and summary["duration_after_s"] < summary["duration_before_s"]
    assert seen and seen[-1].doing.startswith("confirming")
    screen = render(done)
    assert len(screen) <= 12 and f"{len(names)} -> 2" in screen[1]


def test_shrink_cli_nothing_smaller_is_exit_3_and_minimal_is_the_original(tmp_path):
    d = failing_run_dir(tmp_path)
    fake = Fake({"no-such-fault"})
    done = shrink_run_dir(d, tries=1, budget_s=3600.0, check=None, run=fake, progress=lambda p: None)
    assert done.exit_code == 3 and not done.result.smaller
    assert done.summary["repro_rate"] == 0.0


def test_shrink_cli_interrupted_writes_the_smallest_so_far_and_exits_130(tmp_path):
    d = failing_run_dir(tmp_path)
    names = [f["id"] for f in json.loads((d / "plan.json").read_text())["faults"]]

    class Interrupting(Fake):
        def __call__(self, doc, label):
            if len(self.calls) == 3:
                raise KeyboardInterrupt
            return super().__call__(doc, label)

    late = names[-1]  # ddmin keeps the latest half alone first: the first candidate fails
    done = shrink_run_dir(d, tries=3, budget_s=3600.0 * 10, check=None, run=Interrupting({late}),
                          progress=lambda p: None)
    assert done.exit_code == 130 and done.result.smaller
    exp = load_file(d / "shrink" / "minimal.yaml").experiment
    assert late in {f["id"] for f in plan_mod.expand(exp, 3)["faults"]}
    assert "interrupted" in (d / "shrink" / "minimal.yaml").read_text()


def test_shrink_cli_check_option_picks_another_invalid_check(tmp_path):
    d = failing_run_dir(tmp_path, verdicts=(("linearizable", "INVALID"), ("durability", "INVALID")))
    done = shrink_run_dir(d, tries=1, budget_s=60.0, check="durability", run=Fake(set()), progress=lambda p: None)
    assert done.check == "durability"


@pytest.mark.parametrize("setup,args,message", [
    (lambda d: None, ["--check", "nope"], "no such check"),
    (lambda d: None, ["--check", "raft-safety"], "not INVALID"),
    (lambda d: (d / "results.json").unlink(), [], "results.json: missing"),
    (lambda d: (d / "results.json").write_text(json.dumps({"checks": [
        {"name": "linearizable", "verdict": "VALID"}]})), [], "no check is INVALID"),
    (lambda d: (d / "plan.json").write_text("{ not json"), [], "plan.json:1:"),
    (lambda d: (d / "shrink").mkdir(), [], "exists"),
    (lambda d: (d / "run.json").write_text(json.dumps({"control": True})), [], "control run"),
], ids=["unknown-check", "valid-check", "no-results", "nothing-invalid", "damaged-plan", "shrunk-before", "control"])
def test_shrink_cli_bad_input_exits_2_before_any_run(tmp_path, capsys, setup, args, message):
    d = failing_run_dir(tmp_path)
    setup(d)
    assert cli.main(["shrink", str(d), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (d / "shrink").exists() or message == "exists"


def test_shrink_cli_bad_options_exit_2(tmp_path, capsys):
    d = failing_run_dir(tmp_path)
    assert cli.main(["shrink", str(d), "--budget", "soon"]) == 2
    assert cli.main(["shrink", str(d), "--tries", "0"]) == 2
    assert cli.main(["shrink", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_shrink_violation_time_is_the_earliest_violation_at_its_last_event(tmp_path):
    from chaos.experiment.export import load_run_dir
    from chaos.shrink_run import violation_time_s

    d = failing_run_dir(tmp_path)
    t0 = 1000.0
    (d / "run.json").write_text(json.dumps({"seed": 3, "phases": [{"name": "steady", "start": t0}]}))
    evidence = {"violations": {"persistent-state": [
        {"detail": "b", "events": [{"ts": t0 + 40.0}, {"ts": t0 + 52.0}]},
        {"detail": "a", "events": [{"ts": t0 + 25.0}, {"ts": t0 + 34.5}]}]}}
    (d / "results.json").write_text(json.dumps({"checks": [
        {"name": "raft-safety", "verdict": "INVALID", "evidence": evidence},
        {"name": "linearizable", "verdict": "INVALID", "evidence": {"ops": [{"ts": t0 + 7.0}, {"ts": t0 + 3.0}]}},
        {"name": "durability", "verdict": "INVALID", "evidence": {"lost": 3}}]}))
    facts = load_run_dir(d)
    assert violation_time_s(facts, "raft-safety") == 34.5
    assert violation_time_s(facts, "linearizable") == 3.0
    assert violation_time_s(facts, "durability") is None


def test_shrink_violation_time_of_a_linearizable_counterexample_is_its_latest_history_entry(tmp_path):
    """Linearizable evidence has no timestamps: each failing key's counterexample is complete at the
    latest history entry it references (a completion, or the invoke of an op that never completed);
    the earliest key wins. Without history.jsonl there is no hint (None), never a made-up one."""
    from chaos.experiment.export import load_run_dir
    from chaos.shrink_run import violation_time_s

    d = failing_run_dir(tmp_path)
    t0 = 1000.0
    (d / "run.json").write_text(json.dumps({"seed": 3, "phases": [{"name": "steady", "start": t0}]}))
    evidence = {"failed_keys": [
        {"key": "k0", "counterexample": ["p1 ok write k0 1  [#1..#4]", "p2 info cas k0 [1, 2]  [#6..…]",
                                         "p3 ok read k0 2  [#5..#9]"]},
        {"key": "k1", "counterexample": ["p4 ok read k1 7  [#2..#3]", "p5 info write k1 8  [#7..…]"]}]}
    (d / "results.json").write_text(json.dumps({"checks": [
        {"name": "linearizable", "verdict": "INVALID", "evidence": evidence}]}))
    facts = load_run_dir(d)
    assert violation_time_s(facts, "linearizable") is None  # no history.jsonl: no hint
    (d / "history.jsonl").write_text("".join(json.dumps({"index": i, "ts": t0 + 10.0 * i}) + "\n" for i in range(12)))
    assert violation_time_s(facts, "linearizable") == 70.0  # k1 at #7 (an invoke, never completed); k0 at #9
