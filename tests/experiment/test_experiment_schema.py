"""The experiment format: every error kind reported with file:line:col, YAML path and hint, all at
once; valid files become frozen objects; the published JSON Schema is the code's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from chaos.experiment import schema as S
from chaos.experiment.loader import ExperimentError, load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
BASE = """version: 1
name: t
cluster: {managers: 3, workers: 2}
"""


def problems(text: str):
    exp, probs = load_text(text, "x.yaml")
    return exp, probs


def only_errors(text: str):
    exp, probs = problems(text)
    assert exp is None, "expected the file to be refused"
    return [p for p in probs if p.severity == "error"]


def test_schema_minimal_file_gets_defaults():
    exp, probs = problems("version: 1\nname: t\n")
    # valid, with one warning: no `schedule` key, so no fault and nothing for `recovery` to judge
    assert exp is not None and [(p.severity, p.message[:15]) for p in probs] == [("warning", "no `schedule`: ")]
    assert exp.cluster.managers == 3 and exp.workload.rate == 100.0 and exp.schedule == []


def test_schema_objects_are_frozen():
    exp, _ = problems(BASE)
    with pytest.raises(ValidationError):
        exp.cluster.managers = 5


@pytest.mark.parametrize("text, line, col, path, needle, hint", [
    (BASE + "workload: {clnts: 3}\n", 4, 12, "workload.clnts", "unknown key 'clnts'", "did you mean 'clients'?"),
    (BASE + "workload: {clients: many}\n", 4, 12, "workload.clients", "valid integer", None),
    (BASE + "schedule:\n  - {at: -3s, for: 1s, fault: pause, target: m1}\n", 5, 6, "schedule[0].at",
     "not a duration", None),
    (BASE + "schedule:\n  - {at: 1s, for: 25h, fault: pause, target: m1}\n", 5, 14, "schedule[0].for",
     "at most 24h", None),
    (BASE + "schedule:\n  - {at: 1s, fault: pause, target: m1, until: new-leader}\n", 5, 5, "schedule[0]",
     "`until` needs `max`", None),
    (BASE + "schedule:\n  - {at: 1s, for: 1s, fault: pause, target: m7}\n", 5, 37, "schedule[0].target",
     "node 'm7' does not exist", None),
    (BASE + "schedule:\n  - {at: 1s, for: 1s, fault: kill, target: {role: workers, count: 3}}\n", 5, 60,
     "schedule[0].target.count", "more than the 2 workers", None),
    (BASE + "schedule:\n  - {at: 1s, for: 1s, fault: paus, target: m1}\n", 5, 5, "schedule[0]",
     "unknown fault kind 'paus'", "did you mean 'pause'?"),
    (BASE + "schedule:\n  - {at: 1s, for: 1s, fault: partition, isolte: leader}\n", 5, 41, "schedule[0].isolte",
     "unknown key 'isolte'", "did you mean 'isolate'?"),
    (BASE + "schedule:\n  - {after: f9, for: 1s, fault: pause, target: m1}\n", 5, 6, "schedule[0].after",
     "names no earlier fault", None),
    (BASE + "checks: [linearizble]\n", 4, 10, "checks[0]", "unknown checker 'linearizble'",
     "did you mean 'linearizable'?"),
    (BASE + "checks: [{availability: {min_ok: 1}}]\n", 4, 10, "checks[0]", "no parameter 'min_ok'",
     "did you mean 'min_ok_share'?"),
    (BASE + "expect: [leader-chnged]\n", 4, 10, "expect[0]", "unknown expectation", "did you mean 'leader-changed'?"),
    (BASE + "expect: [ops-failed-in-phase: nowhere]\n", 4, 10, "expect[0]", "no phase or fault named 'nowhere'",
     None),
    ("version: 2\nname: t\n", 1, 1, "version", "unsupported schema version 2", None),
    (BASE + "cluster: {managers: 3}\n", 4, 1, "cluster", "duplicate key 'cluster'", None),
])
def test_schema_error_kinds_with_position_and_hint(text, line, col, path, needle, hint):
    errs = only_errors(text)
    match = [e for e in errs if needle in e.message]
    assert match, f"no error containing {needle!r} in {[str(e) for e in errs]}"
    e = match[0]
    assert (e.line, e.col, e.path) == (line, col, path), str(e)
    if hint:
        assert e.hint == hint, str(e)
    assert str(e).startswith(f"x.yaml:{line}:{col}: error: ")


def test_schema_reports_every_problem_at_once():
    text = BASE + "workload: {clnts: 3, keys: 0}\nschedule:\n  - {at: 1s, for: -1s, fault: pause, target: m1}\n"
    errs = only_errors(text)
    assert {e.path for e in errs} >= {"workload.clnts", "workload.keys", "schedule[0].for"}


def test_schema_even_managers_is_a_warning_not_an_error():
    exp, probs = problems("version: 1\nname: t\ncluster: {managers: 4}\nschedule: []\n")
    assert exp is not None
    assert [p.severity for p in probs] == ["warning"] and probs[0].path == "cluster.managers"


def test_schema_repeat_interval_must_exceed_length():
    errs = only_errors(BASE + "schedule:\n  - {at: 1s, for: 5s, fault: pause, target: m1, repeat: {every: 3s, count: 2}}\n")
    assert any("repeat.every" in e.message for e in errs)


def test_schema_json_schema_file_is_generated_from_the_code():
    on_disk = json.loads((ROOT / "experiments" / "schema.json").read_text())
    assert on_disk == json.loads(json.dumps(S.json_schema())), \
        "experiments/schema.json is stale: chaos schema > experiments/schema.json"


def test_schema_json_schema_accepts_every_shipped_experiment_and_refuses_unknown_keys():
    import jsonschema
    import yaml
    validator = jsonschema.Draft202012Validator(S.json_schema())
    files = sorted((ROOT / "experiments").glob("*.yaml"))
    assert files
    for f in files:
        validator.validate(yaml.safe_load(f.read_text()))
    bad = yaml.safe_load((ROOT / "experiments" / "leader-isolated.yaml").read_text())
    bad["cluster"]["managrs"] = 3
    assert list(validator.iter_errors(bad))


def test_schema_every_shipped_experiment_validates():
    files = sorted((ROOT / "experiments").glob("*.yaml"))
    for f in files:
        loaded = load_file(f)
        assert loaded.experiment.name == f.stem, f"{f.name}: name should match the file name"
        assert loaded.text.startswith("#"), f"{f.name}: starts with a comment stating the question"


def test_schema_load_file_errors_are_usage_errors(tmp_path):
    from chaos.errors import UsageError
    with pytest.raises(UsageError, match="no such file"):
        load_file(tmp_path / "missing.yaml")
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"version: 1\nname: \xff\xfe\n")
    with pytest.raises(ExperimentError) as ei:
        load_file(p)
    assert "not UTF-8" in ei.value.problems[0].message and ei.value.problems[0].line == 2


def test_schema_durations_parse_units():
    assert S.parse_duration("500ms") == 0.5
    assert S.parse_duration("2m") == 120
    assert S.parse_duration(3) == 3.0
    for bad in ("-1s", "1d", "", True, "5 seconds", float("nan")):
        with pytest.raises(ValueError):
            S.parse_duration(bad)


def test_schema_reference_in_experiments_readme_is_generated_from_the_code():
    from chaos.experiment import reference
    text = (ROOT / "experiments" / "README.md").read_text()
    start, end = text.index(reference.BEGIN), text.index(reference.END) + len(reference.END)
    assert text[start:end] + "\n" == reference.render(), \
        "experiments/README.md reference is stale: regenerate with python3 -m chaos.experiment.reference"
    for model in (m for _, m in reference.SECTIONS):
        for name, f in model.model_fields.items():
            assert f"`{f.alias or name}`" in text, f"{model.__name__}.{name} is not documented"


def test_schema_of_names_an_earlier_fault_not_itself_nor_a_later_one():
    ok = BASE + ("schedule:\n  - {name: freeze, at: 1s, for: 2s, fault: pause, target: leader}\n"
                 "  - {name: cut, at: 2s, for: 1s, fault: partition, isolate: {of: freeze}}\n")
    exp, probs = problems(ok)
    assert exp is not None and not [p for p in probs if p.severity == "error"]
    for bad in ("  - {name: cut, at: 2s, for: 1s, fault: partition, isolate: {of: cut}}\n",
                "  - {name: cut, at: 2s, for: 1s, fault: partition, isolate: {of: later}}\n"
                "  - {name: later, at: 1s, for: 2s, fault: pause, target: leader}\n"):
        errs = only_errors(BASE + "schedule:\n" + bad)
        assert [e for e in errs if e.path == "schedule[0].isolate.of" and "names no earlier fault" in e.message], \
            [str(e) for e in errs]


def test_schema_fault_effective_names_a_fault_or_a_random_block():
    sched = ("schedule:\n  - {name: cut, at: 1s, for: 1s, fault: partition, isolate: m1}\n"
             "  - random: {from: 3s, to: 9s, kinds: [pause], targets: [m2], duration: [1s, 2s], gap: [1s, 2s]}\n")
    exp, probs = problems(BASE + sched + "expect: [fault-effective: cut, fault-effective: r2]\n")
    assert exp is not None and probs == [], [str(p) for p in probs]
    errs = only_errors(BASE + sched + "expect: [fault-effective: cutt]\n")
    assert [e.path for e in errs] == ["expect[0]"] and "no fault named 'cutt'" in errs[0].message
    assert "cut" in errs[0].hint and "r2" in errs[0].hint
    errs = only_errors(BASE + sched + "expect: [fault-effective]\n")  # needs its argument
    assert errs and errs[0].path == "expect[0]"


def test_schema_every_shipped_experiment_expects_a_fault_effect():
    """No shipped file can be met without its faults: each names at least one fault-effective."""
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        exp = load_file(str(path)).experiment
        names = [e if isinstance(e, str) else next(iter(e)) for e in exp.expect]
        assert any(str(n).startswith("fault-effective") for n in names), path.name
