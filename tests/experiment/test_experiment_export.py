"""`chaos export`: a run's plan back as an experiment file that plans to the same bytes (every
shipped file, several seeds, planted bugs), and bad run directories refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos import cli
from chaos.experiment import plan as plan_mod
from chaos.experiment.export import dump, plan_to_doc, verify
from chaos.experiment.loader import load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))


def _run_dir(tmp_path: Path, src: Path, seed: int, plant: list[str] = ()) -> tuple[Path, dict]:
    """A run directory as `chaos run` starts it (experiment.yaml, plan.json, run.json), no Docker."""
    loaded = load_file(src)
    plan = plan_mod.with_plant(plan_mod.expand(loaded.experiment, seed), list(plant))
    d = tmp_path / f"{src.stem}-seed{seed}"
    d.mkdir()
    (d / "experiment.yaml").write_text(loaded.text)
    (d / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    (d / "run.json").write_text(json.dumps({"seed": seed, "experiment_file": str(src),
                                            "experiment_sha256": loaded.sha256}))
    return d, json.loads(plan_mod.canonical(plan))


@pytest.mark.parametrize("src", SHIPPED, ids=lambda p: p.stem)
def test_export_round_trips_every_shipped_file(tmp_path, capsys, src):
    for seed in (1, 7, 2026):
        d, plan = _run_dir(tmp_path, src, seed)
        out = tmp_path / f"{src.stem}-{seed}.yaml"
        assert cli.main(["export", str(d), "--out", str(out)]) == 0
        assert cli.main(["validate", str(out)]) == 0
        again = plan_mod.expand(load_file(out).experiment, seed)
        assert plan_mod.canonical(again) == plan_mod.canonical(plan), f"{src.name} seed {seed}"
        text = out.read_text()
        assert f"--seed {seed}" in text and load_file(src).sha256 in text
    capsys.readouterr()


def test_export_random_blocks_become_concrete_faults_with_selectors_kept(tmp_path, capsys):
    d, plan = _run_dir(tmp_path, ROOT / "experiments" / "random-soak.yaml", 3)
    assert cli.main(["export", str(d)]) == 0
    text = capsys.readouterr().out
    exp, problems = load_text(text)
    assert exp is not None, problems
    assert "random:" not in text and "drawn:" in text
    drawn = exp.schedule[0].drawn
    assert [f.name for f in drawn.faults] == [f["id"] for f in plan["faults"]] and len(drawn.faults) > 10
    assert "target: leader" in text  # a selector, not the node it named in the run
    assert exp.expect == ["fault-effective:r1"]  # an expectation on the block still names it


def test_export_keeps_the_planted_bug_so_the_file_reproduces_it(tmp_path, capsys):
    d, plan = _run_dir(tmp_path, ROOT / "experiments" / "worker-crash.yaml", 5, plant=["orchestrator_no_replace"])
    assert cli.main(["export", str(d)]) == 0
    text = capsys.readouterr().out
    assert "PLANTED BUGS: orchestrator_no_replace" in text
    exp, _ = load_text(text)
    assert exp.cluster.plant == ["orchestrator_no_replace"]
    assert plan_mod.canonical(plan_mod.expand(exp, 5)) == plan_mod.canonical(plan)


def test_export_refuses_what_is_not_a_run_directory(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert cli.main(["export", str(f)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "plan.json: missing" in err and "Traceback" not in err


def test_export_damaged_plan_json_names_the_line_and_exits_2(tmp_path, capsys):
    d, _ = _run_dir(tmp_path, ROOT / "experiments" / "leader-isolated.yaml", 1)
    (d / "plan.json").write_text('{"plan_version": 1,\n  "seed": 1,\n  "faults": [ oops ]\n}\n')
    assert cli.main(["export", str(d)]) == 2
    err = capsys.readouterr().err
    assert "plan.json:3:" in err and "not JSON" in err and "Traceback" not in err


@pytest.mark.parametrize("damage", [
    lambda p: p.pop("workload"),
    lambda p: p["faults"][0].update(origin="somewhere"),
    lambda p: p["faults"][0]["spec"].update(fault="explode"),
    lambda p: p.update(plan_version=7),
    lambda p: p.update(seed="seven"),
    lambda p: p["faults"][0].update(for_s=None),
], ids=["no-workload", "bad-origin", "unknown-kind", "other-version", "seed-not-int", "no-duration"])
def test_export_structurally_damaged_plan_exits_2_without_traceback(tmp_path, capsys, damage):
    d, plan = _run_dir(tmp_path, ROOT / "experiments" / "leader-isolated.yaml", 1)
    damage(plan)
    (d / "plan.json").write_text(json.dumps(plan))
    assert cli.main(["export", str(d)]) == 2
    err = capsys.readouterr().err
    assert "plan.json" in err and "Traceback" not in err and "internal error" not in err


def test_export_verify_catches_a_file_that_plans_differently():
    loaded = load_file(ROOT / "experiments" / "random-soak.yaml")
    plan = json.loads(plan_mod.canonical(plan_mod.expand(loaded.experiment, 3)))
    doc = plan_to_doc(plan)
    doc["schedule"][0]["drawn"]["faults"][0]["for"] = "9s"  # not what the run ran
    with pytest.raises(ValueError, match="plans differently"):
        verify(dump(doc), plan)


def test_export_drawn_block_rules_are_validated_with_positions():
    text = ("version: 1\nname: t\nschedule:\n  - drawn:\n      name: r1\n      faults:\n"
            "        - {at: 1s, for: 2s, fault: kill, target: leader}\n"
            "        - {after: r1-1, for: 2s, fault: kill, target: leader}\n"
            "expect: [fault-effective: r1, fault-effective: r1-1]\n")
    exp, problems = load_text(text, "x.yaml")
    assert exp is None
    assert any("a drawn fault has `at` and `for`" in p.message and p.line == 4 for p in problems), problems
    ok = text.replace("        - {after: r1-1, for: 2s, fault: kill, target: leader}\n", "")
    exp, problems = load_text(ok, "x.yaml")
    assert exp is not None, problems
    plan = plan_mod.expand(exp, 1)
    assert [f["id"] for f in plan["faults"]] == ["r1-1"] and plan["faults"][0]["origin"] == "schedule[0].random"
    assert plan["faults"][0]["spec"] == {"fault": "kill", "target": "leader"}
