"""Plan expansion: same file and seed -> the same bytes; random blocks stay inside their declared
fault space; repeats, `after` chains and the schedule bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos import cli
from chaos.experiment import plan as P
from chaos.experiment.loader import load_file, load_text

ROOT = Path(__file__).resolve().parents[2]

RANDOM = """version: 1
name: soak
cluster: {managers: 3, workers: 3}
schedule:
  - {name: first, at: 2s, for: 3s, fault: partition, isolate: leader}
  - {after: previous, delay: 1s, fault: kill, target: {role: workers, count: 1}, until: replicas-restored, max: 20s}
  - {at: 60s, for: 2s, fault: latency, target: managers, ms: 100, jitter_ms: 10, repeat: {every: 5s, count: 3}}
  - random: {from: 100s, to: 400s, kinds: [partition, latency, pause, kill], targets: [leader, followers, {role: workers, count: one}],
             duration: [1s, 4s], gap: [2s, 5s], concurrency: 2}
"""


def _exp(text=RANDOM):
    exp, probs = load_text(text, "soak.yaml")
    assert exp is not None, [str(p) for p in probs]
    return exp


def test_plan_same_seed_same_bytes_different_seed_differs():
    exp = _exp()
    a, b = P.canonical(P.expand(exp, 5)), P.canonical(P.expand(_exp(), 5))
    assert a == b
    assert P.canonical(P.expand(exp, 6)) != a


def test_plan_random_block_stays_in_its_space():
    exp = _exp()
    space = exp.schedule[3].random
    for seed in range(30):
        drawn = [f for f in P.expand(exp, seed)["faults"] if f["origin"] == "schedule[3].random"]
        assert drawn, seed
        for f in drawn:
            at = f["start"]["at_s"]
            assert space.from_ <= at and at + f["for_s"] <= space.to + 1e-6
            assert space.duration[0] - 1e-3 <= f["for_s"] <= space.duration[1] + 1e-3
            assert f["kind"] in space.kinds
        # at most `concurrency` faults overlap at any moment
        edges = sorted([(f["start"]["at_s"], 1) for f in drawn] + [(f["start"]["at_s"] + f["for_s"], -1) for f in drawn],
                       key=lambda e: (e[0], e[1]))
        level = peak = 0
        for _, d in edges:
            level += d
            peak = max(peak, level)
        assert peak <= space.concurrency


def test_plan_repeats_after_chains_and_bound():
    p = P.expand(_exp(), 1)
    ids = [f["id"] for f in p["faults"]]
    assert ids[:5] == ["first", "f2", "f3.1", "f3.2", "f3.3"]
    assert p["faults"][1]["start"] == {"after": "first", "delay_s": 1.0}
    assert [f["start"]["at_s"] for f in p["faults"][2:5]] == [60.0, 65.0, 70.0]
    static = max(f["start"]["at_s"] + f["for_s"] for f in p["faults"] if "at_s" in f["start"])
    assert p["schedule_bound_s"] >= static
    assert p["schedule_bound_s"] >= 2 + 3 + 1 + 20


def test_plan_checks_default_set_and_expectations():
    p = P.expand(_exp("version: 1\nname: t\nexpect: [leader-changed]\n"), 0)
    names = [c["checker"] for c in p["checks"]]
    assert names[:2] == ["linearizable", "raft-safety"] and names[-1] == "expectations"
    assert p["checks"][-1]["params"]["expect"] == ["leader-changed"]


def test_plan_cli_json_is_deterministic_and_never_touches_docker(capsys, monkeypatch):
    import chaos.env.engine as engine
    monkeypatch.setattr(engine, "connect", lambda *a, **k: pytest.fail("plan touched Docker"))
    f = str(ROOT / "experiments" / "leader-isolated.yaml")
    assert cli.main(["plan", f, "--seed", "3", "--json"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["plan", f, "--seed", "3", "--json"]) == 0
    assert capsys.readouterr().out == first
    assert cli.main(["plan", f, "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "isolate leader" in text and "seed 3" in text


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_plan_every_shipped_experiment(path, capsys):
    assert cli.main(["plan", str(path), "--seed", "1"]) == 0
    assert load_file(path).experiment.name in capsys.readouterr().out
