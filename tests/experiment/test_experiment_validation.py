"""Issue 22, targets and validation: `exclude:` in target objects, per-kind parameters of `random:`
blocks, semantic checks in the same pass as the types, clearer messages, `x-` anchors. Every bad
file goes through the CLI (`chaos validate`, `chaos plan`): exit 2, the message and its
file:line:col asserted, no traceback."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaos import cli
from chaos.experiment import plan as P
from chaos.experiment.loader import load_text
from chaos.nemesis import View, resolve_target

ROOT = Path(__file__).resolve().parents[2]
BASE = "version: 1\nname: t\ncluster: {managers: 3, workers: 2}\n"
M, W = ("m1", "m2", "m3"), ("w1", "w2")


def _cli(args: list[str]) -> tuple[int, str]:
    with CliRunner().isolation() as (out, err, *_):
        code = cli.main(args)
        return code, out.getvalue().decode("utf-8", "replace") + err.getvalue().decode("utf-8", "replace")


def refused(tmp_path, text: str, needle: str, line: int, col: int, path: str | None = None,
            command: str = "validate") -> str:
    """`chaos validate|plan FILE` exits 2, prints `FILE:LINE:COL: error: [PATH: ]...NEEDLE...`, no
    traceback; returns the whole output."""
    f = tmp_path / "bad.yaml"
    f.write_text(text, encoding="utf-8")
    code, out = _cli([command, str(f)] + (["--seed", "1"] if command == "plan" else []))
    assert code == 2 and "Traceback" not in out, out
    if command == "validate":  # `chaos plan` refuses the same file, naming its first problem's place
        pcode, pout = _cli(["plan", str(f), "--seed", "1"])
        assert pcode == 2 and "Traceback" not in pout and re.search(re.escape(str(f)) + r":\d+:\d+: error: ", pout), pout
    prefix = f"{f}:{line}:{col}: error: " + (f"{path}: " if path else "")
    assert any((ln.startswith(prefix) or command != "validate" and prefix in ln) and needle in ln
               for ln in out.splitlines()), out
    return out


def accepted(tmp_path, text: str) -> str:
    f = tmp_path / "good.yaml"
    f.write_text(text, encoding="utf-8")
    code, out = _cli(["validate", str(f)])
    assert code == 0 and f"{f}: ok" in out, out
    code, out = _cli(["plan", str(f), "--seed", "1"])
    assert code == 0, out
    return out


def view(leader="m2"):
    st = {m: {"role": "leader" if m == leader else "follower", "term": 3, "leader": leader} for m in M}
    return View(M, W, st, fired={"cut-two": ("m1", "m3")})


# -- 1. exclude ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target, want", [
    ({"role": "managers", "exclude": {"of": "cut-two"}}, ["m2"]),
    ({"role": "all", "exclude": ["leader", "w1"]}, ["m1", "m3", "w2"]),
    ({"role": "managers", "exclude": "leader", "count": "all"}, ["m1", "m3"]),
    ({"nodes": ["m1", "m2", "w1"], "exclude": {"role": "managers"}}, ["w1"]),
    ({"role": "managers", "exclude": "managers"}, []),
    ([{"role": "followers", "exclude": "m1"}, "w2"], ["m3", "w2"]),
])
def test_validation_exclude_resolves_when_the_fault_fires(target, want):
    assert resolve_target(target, view(), random.Random(0)) == want


def test_validation_exclude_is_applied_before_count_and_pick_and_is_seeded():
    target = {"role": "all", "exclude": ["leader", {"of": "cut-two"}], "count": 2}
    picks = {tuple(resolve_target(target, view(), random.Random(s))) for s in range(40)}
    assert picks == {("w1", "w2")}  # only w1, w2 remain after leader m2 and cut-two's m1, m3
    target = {"role": "all", "exclude": "leader", "count": 2}
    picks = [tuple(resolve_target(target, view(), random.Random(s))) for s in range(40)]
    assert len(set(picks)) > 1 and all("m2" not in p and len(p) == 2 for p in picks)
    assert picks == [tuple(resolve_target(target, view(), random.Random(s))) for s in range(40)]


def test_validation_exclude_follows_the_leader_of_the_moment():
    target = {"role": "managers", "exclude": "leader"}
    assert resolve_target(target, view(leader="m1"), random.Random(0)) == ["m2", "m3"]
    assert resolve_target(target, view(leader="m3"), random.Random(0)) == ["m1", "m2"]


def test_validation_exclude_validates_and_plans(tmp_path):
    text = BASE + ("schedule:\n"
                   "  - {name: cut-two, at: 1s, for: 2s, fault: partition, isolate: {role: managers, count: 2}}\n"
                   "  - {at: 4s, for: 1s, fault: pause, target: {role: managers, exclude: {of: cut-two}}}\n"
                   "  - {at: 6s, for: 1s, fault: kill, target: {role: all, exclude: [leader, w1], count: 2}}\n")
    out = accepted(tmp_path, text)
    assert "pause managers except the nodes of cut-two" in out and "kill 2 of all except leader + w1" in out
    exp, _ = load_text(text)
    plan = P.expand(exp, 1)
    assert plan["faults"][1]["spec"]["target"] == {"role": "managers", "exclude": {"of": "cut-two"}}
    assert P.canonical(plan) == P.canonical(P.expand(load_text(text)[0], 1))


@pytest.mark.parametrize("fault, needle, col, path", [
    ("{at: 4s, for: 1s, fault: pause, target: {role: managers, exclude: {of: nothing}}}",
     "`of: nothing` names no earlier fault", 72, "schedule[0].target.exclude.of"),
    ("{at: 4s, for: 1s, fault: pause, target: {role: workers, exclude: [w1, w9]}}",
     "node 'w9' does not exist", 61, "schedule[0].target.exclude"),
    ("{at: 4s, for: 1s, fault: kill, target: {role: managers, exclude: managers}}",
     "`exclude` removes every one of the managers", 61, "schedule[0].target.exclude"),
    ("{at: 4s, for: 1s, fault: kill, target: {role: managers, exclude: leader, count: 3}}",
     "count 3 is more than the 2 managers left after `exclude`", 78, "schedule[0].target.count"),
    ("{at: 4s, for: 1s, fault: kill, target: {role: managers, exclude: {rol: leader}}}",
     "unknown key 'rol'", 71, "schedule[0].target.exclude.rol"),
])
def test_validation_exclude_errors_through_the_cli(tmp_path, fault, needle, col, path):
    refused(tmp_path, BASE + "schedule:\n  - " + fault + "\n", needle, 5, col, path)


# -- 2. per-kind parameters of random blocks ----------------------------------------------------

RANDOM = BASE + ("schedule:\n"
                 "  - random: {from: 1s, to: 60s, kinds: [latency, stall, slice, stop, partition], targets: [followers],\n"
                 "             duration: [1s, 2s], gap: [1s, 2s], params: PARAMS}\n")


def test_validation_random_params_defaults_are_todays_values():
    exp, probs = load_text(RANDOM.replace(", params: PARAMS", ""))
    assert exp is not None, [str(p) for p in probs]
    block = exp.schedule[0].random
    assert block.kind_params("latency") == {"ms": 200, "jitter_ms": 50}
    assert block.kind_params("bandwidth") == {"kb_s": 5}
    assert block.kind_params("stall") == {"ms": 2000}
    assert block.kind_params("stop") == {} and block.kind_params("partition") == {"mode": "blackhole"}


def test_validation_random_params_change_the_drawn_faults_and_only_them(tmp_path):
    text = RANDOM.replace("PARAMS", "{latency: {ms: 50}, stall: {ms: 500}, stop: {grace: 2s}}")
    exp, probs = load_text(text)
    assert exp is not None, [str(p) for p in probs]
    default = P.expand(load_text(RANDOM.replace(", params: PARAMS", ""))[0], 3)["faults"]
    faults = P.expand(exp, 3)["faults"]
    assert [(f["id"], f["kind"], f["start"]) for f in faults] == [(f["id"], f["kind"], f["start"]) for f in default]
    by_kind = {f["kind"]: f["spec"] for f in faults}
    assert {"latency", "stall", "stop"} <= set(by_kind), "seed 3 should draw these kinds"
    assert by_kind["latency"]["ms"] == 50 and by_kind["latency"]["jitter_ms"] == 50  # unset keys keep defaults
    assert by_kind["stall"]["ms"] == 500 and by_kind["stop"]["grace"] == 2.0
    assert "stall" in accepted(tmp_path, text)


@pytest.mark.parametrize("params, needle, line, col, path", [
    ("{latency: {ms: -5}}", "greater than or equal to 0", 6, 68, "schedule[0].random.params.latency.ms"),
    ("{latency: {mss: 5}}", "unknown key 'mss'", 6, 68, "schedule[0].random.params.latency.mss"),
    ("{stall: {target: m1}}", "unknown key 'target'", 6, 66, "schedule[0].random.params.stall.target"),
    ("{bandwidth: {kb_s: 5}}", "`params` sets bandwidth, which `kinds` does not draw", 5, 5, "schedule[0].random"),
    ("{slice: {var: 20}}", "params.slice: slice `var` must be below `avg`", 5, 5, "schedule[0].random"),
    ("{kill: {grace: 1s}}", "unknown key 'kill'", 6, 58, "schedule[0].random.params.kill"),
])
def test_validation_random_params_errors_through_the_cli(tmp_path, params, needle, line, col, path):
    refused(tmp_path, RANDOM.replace("PARAMS", params), needle, line, col, path)
    refused(tmp_path, RANDOM.replace("PARAMS", params), needle, line, col, path, command="plan")


def test_validation_random_params_cover_every_fault_kind():
    """Every kind a random block may draw has a defaults entry whose values its own fault accepts
    (a new kind without one fails here, not in a run)."""
    from chaos.experiment import schema as S
    for kind, model in S.fault_models().items():
        assert kind in S.RANDOM_DEFAULTS, kind
        target = {"isolate": "all"} if kind == "partition" else {"target": "all"}
        model.model_validate({"fault": kind, "at": 0, "for": 1, **target, **S.RANDOM_DEFAULTS[kind]})


# -- 3. semantic rules in the same pass as the types --------------------------------------------


def test_validation_rules_and_types_are_reported_together(tmp_path):
    """A type error elsewhere no longer hides the whole-file rules: both come in one run."""
    text = BASE + ("workload: {clnts: 3}\n"
                   "schedule:\n"
                   "  - {name: split, at: 1s, for: 2s, fault: partition, shape: bridge, among: [m1, m2]}\n"
                   "  - {name: slow, at: 1s, for: 2s, fault: latency, target: m1, ms: -1}\n"
                   "  - {after: slow, for: 2s, fault: pause, target: m9}\n"
                   "checks: [linearizable, linearizable]\n")
    out = refused(tmp_path, text, "unknown key 'clnts'", 4, 12, "workload.clnts")
    assert "schedule[0].shape: shape bridge needs at least 3 nodes, but `among` gives at most 2" in out
    assert "schedule[1].ms: Input should be greater than or equal to 0" in out
    assert "schedule[2].target: node 'm9' does not exist" in out
    assert "`after: slow` names no earlier fault" not in out  # the invalid item keeps its name
    assert "checks[1]: check 'linearizable' is listed twice" in out
    lines = [ln.split(": error:")[0] for ln in out.splitlines() if ": error:" in ln]
    positions = [tuple(int(x) for x in ln.rsplit(":", 2)[1:]) for ln in lines]
    assert positions == sorted(positions), "problems come in file order"


@pytest.mark.parametrize("cluster, schedule, needle, col", [
    ("{managers: 3, workers: 2}", "shape: bridge, among: [m1, m2]", "shape bridge needs at least 3 nodes", 41),
    ("{managers: 1, workers: 1}", "shape: majorities-ring", "shape majorities-ring needs at least 3 nodes", 41),
    ("{managers: 3, workers: 2}", "shape: halves, among: {role: workers, count: one}",
     "shape halves needs at least 2 nodes, but `among` gives at most 1", 41),
    ("{managers: 3, workers: 2}", "shape: bridge, among: {role: managers, exclude: leader}",
     "shape bridge needs at least 3 nodes, but `among` gives at most 2", 41),
])
def test_validation_partition_shape_over_too_few_nodes(tmp_path, cluster, schedule, needle, col):
    text = f"version: 1\nname: t\ncluster: {cluster}\nschedule:\n  - {{at: 1s, for: 2s, fault: partition, {schedule}}}\n"
    refused(tmp_path, text, needle, 5, col, "schedule[0].shape")


def test_validation_partition_shape_with_enough_nodes_passes(tmp_path):
    accepted(tmp_path, BASE + "schedule:\n  - {at: 1s, for: 2s, fault: partition, shape: bridge, among: managers}\n"
                              "  - {at: 4s, for: 2s, fault: partition, shape: halves, among: [leader, w1]}\n")


@pytest.mark.parametrize("flaky, needle", [
    ("kind: latency, params: {ms: 100}", "the latency toxic has no attribute 'ms' (it takes latency, jitter)"),
    ("kind: latency, params: {jitter: 5}", "flaky latency needs params latency"),
    ("kind: bandwidth, params: {rate: 0}", "params.rate must be at least 1 (got 0)"),
    ("kind: slice, params: {average_size: 4, size_variation: 4}", "size_variation must be below average_size"),
    ("kind: cut, params: {latency: 5}", "the cut toxic has no attribute 'latency' (it takes timeout)"),
])
def test_validation_flaky_params_are_the_toxics_attributes(tmp_path, flaky, needle):
    text = BASE + f"schedule:\n  - {{at: 1s, for: 2s, fault: flaky, target: m1, toxicity: 0.5, {flaky}}}\n"
    refused(tmp_path, text, needle, 5, 5, "schedule[0]")


def test_validation_flaky_params_valid_for_every_kind(tmp_path):
    good = {"cut": "{}", "latency": "{latency: 100, jitter: 10}", "stall": "{latency: 500}",
            "bandwidth": "{rate: 5}", "reset": "{timeout: 0}", "slice": "{average_size: 8, size_variation: 2, delay: 10}",
            "slow_close": "{delay: 100}", "limit": "{bytes: 10}"}
    from chaos.experiment import schema as S
    assert set(good) == set(S.FLAKY_ATTRIBUTES)
    items = "".join(f"  - {{at: {i * 3 + 1}s, for: 2s, fault: flaky, target: m1, toxicity: 0.5, kind: {k}, params: {p}}}\n"
                    for i, (k, p) in enumerate(good.items()))
    accepted(tmp_path, BASE + "schedule:\n" + items)


def _agent(env: str, typed: str = "") -> str:
    return f"version: 1\nname: t\ncluster:\n  agent: {{{typed}env: {env}}}\n"


@pytest.mark.parametrize("text, needle, col, path", [
    (_agent("{CHAOS_FOO: '1'}"), "the agent has no setting CHAOS_FOO", 17, "cluster.agent.env.CHAOS_FOO"),
    (_agent("{CHAOS_TICK_MS: abc}"), "CHAOS_TICK_MS='abc': not an integer", 17, "cluster.agent.env.CHAOS_TICK_MS"),
    (_agent("{CHAOS_TICK_MS: '0'}"), "CHAOS_TICK_MS=0: must be in [1, 1000]", 17, "cluster.agent.env.CHAOS_TICK_MS"),
    (_agent("{CHAOS_FSYNC: maybe}"), "CHAOS_FSYNC='maybe': must be 0 or 1", 17, "cluster.agent.env.CHAOS_FSYNC"),
    (_agent("{CHAOS_NODE_ID: m1}"), "CHAOS_NODE_ID is set by chaos itself", 17, "cluster.agent.env.CHAOS_NODE_ID"),
    (_agent("{CHAOS_PLANT: stale_read}"), "CHAOS_PLANT is set by chaos itself", 17, "cluster.agent.env.CHAOS_PLANT"),
    (_agent("{CHAOS_HEARTBEAT_MS: '60'}", "heartbeat_ms: 50, "), "CHAOS_HEARTBEAT_MS is also set by "
     "cluster.agent.heartbeat_ms", 35, "cluster.agent.env.CHAOS_HEARTBEAT_MS"),
    (_agent("{CHAOS_GOSSIP_PROBE_TIMEOUT_MS: '900'}"), "CHAOS_GOSSIP_PROBE_TIMEOUT_MS must be below "
     "CHAOS_GOSSIP_PROBE_INTERVAL_MS", 17, "cluster.agent.env.CHAOS_GOSSIP_PROBE_TIMEOUT_MS"),
    (_agent("{}", "heartbeat_ms: 400, "), "CHAOS_ELECTION_TIMEOUT_MIN_MS must exceed 2 x CHAOS_HEARTBEAT_MS",
     11, "cluster.agent.heartbeat_ms"),
])
def test_validation_agent_env_is_checked_as_the_agent_reads_it(tmp_path, text, needle, col, path):
    refused(tmp_path, text, needle, 4, col, path)


def test_validation_agent_env_every_problem_and_known_settings_pass(tmp_path):
    out = refused(tmp_path, _agent("{CHAOS_TICK_MS: abc, CHAOS_FOO: '1', CHAOS_LOG_LEVEL: LOUD}"),
                  "CHAOS_TICK_MS='abc'", 4, 17)
    assert "CHAOS_FOO" in out and "CHAOS_LOG_LEVEL='LOUD'" in out
    accepted(tmp_path, _agent("{CHAOS_REQUEST_TIMEOUT_MS: '3000', CHAOS_FSYNC: '1', CHAOS_LOG_LEVEL: debug}"))
    accepted(tmp_path, _agent("{CHAOS_GOSSIP_PROBE_TIMEOUT_MS: '900'}", "gossip_probe_interval_ms: 1000, "))


@pytest.mark.parametrize("checks, needle, col", [
    ("[{recovery: {max_leader_s: -1}}]", "parameter 'max_leader_s' must be at least 0, got -1.0", 10),
    ("[{availability: {min_ok_share: 1.5}}]", "parameter 'min_ok_share' must be in [0, 1], got 1.5", 10),
    ("[{linearizable: {key_max_states: many}}]", "parameter 'key_max_states' expects int", 10),
    ("[{linearizable: {timeout_s: .inf}}]", "parameter 'timeout_s' must be a finite number", 10),
    ("[{linearizable: {timeout_s: 0}}]", "parameter 'timeout_s' must be at least 0.01", 10),
    ("[]", "`checks: []` judges nothing", 1),
    ("[linearizable, durability, linearizable]", "check 'linearizable' is listed twice (also checks[0])", 36),
    ("[recovery, {recovery: {max_leader_s: 5}}]", "check 'recovery' is listed twice", 20),
])
def test_validation_checks_typed_ranged_not_empty_not_twice(tmp_path, checks, needle, col):
    refused(tmp_path, BASE + f"checks: {checks}\n", needle, 4, col)


def test_validation_checker_params_ranges_hold_on_the_command_line_too():
    from chaos.checkers import core
    from chaos.errors import UsageError
    with pytest.raises(UsageError, match="must be at least 0"):
        core.parse_spec("recovery:max_leader_s=-1")
    assert core.parse_spec("recovery:max_leader_s=0").params["max_leader_s"] == 0.0


def test_validation_until_met_needs_a_fault_with_until(tmp_path):
    sched = ("schedule:\n  - {name: cut, at: 1s, for: 2s, fault: partition, isolate: leader}\n"
             "  - {name: wait, at: 5s, fault: pause, target: m1, until: new-leader, max: 5s}\n")
    refused(tmp_path, BASE + sched + "expect: [until-met: cut]\n", "fault 'cut' has no `until`, so until-met:cut "
            "can never be met", 7, 10, "expect[0]")
    accepted(tmp_path, BASE + sched + "expect: [until-met: wait]\n")


# -- 4. messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("item, needle, hint, col", [
    ("{at: 1s, for: 1s, fault: stall, target: m1, ms: 5, jitter_ms: 3}", "unknown key 'jitter_ms' for a stall fault",
     "'jitter_ms' is a key of latency faults; stall takes direction, ms, peers, target besides the timing keys", 56),
    ("{at: 1s, for: 1s, fault: kill, target: m1, grace: 3s}", "unknown key 'grace' for a kill fault",
     "'grace' is a key of stop faults; kill takes target besides the timing keys", 48),
    ("{at: 1s, for: 1s, fault: pause, target: m1, grce: 3s}", "unknown key 'grce' for a pause fault",
     "'grace' is a key of stop faults", 49),
    ("{at: 1s, for: 1s, fault: latency, target: m1, ms: 3, jiter_ms: 3}", "unknown key 'jiter_ms'",
     "did you mean 'jitter_ms'?", 58),
])
def test_validation_unknown_key_of_another_kind_names_the_kinds(tmp_path, item, needle, hint, col):
    out = refused(tmp_path, BASE + "schedule:\n  - " + item + "\n", needle, 5, col)
    assert f"(hint: {hint}" in out, out
    key = needle.split("'")[1]
    assert f"did you mean {key!r}" not in out, out  # never the key itself


@pytest.mark.parametrize("text, needle, line, col, hint", [
    ("version: 1\nname: t\nclustеr: {managers: 3}\n",
     "unknown key 'clustеr': it contains 'е' (U+0435 CYRILLIC SMALL LETTER IE), not a plain Latin letter", 3, 1,
     "retype it as 'cluster'"),
    (BASE + "schedule:\n  - {at: 1s, for: 1s, fault: pause, target: {rolе: leader}}\n",
     "U+0435 CYRILLIC SMALL LETTER IE", 5, 46, "retype it as 'role'"),
    (BASE + "schedule:\n  - {at: 1s, for: 1s, fault: pаuse, target: m1}\n",
     "unknown fault kind 'pаuse': it contains 'а' (U+0430 CYRILLIC SMALL LETTER A)", 5, 5, "did you mean 'pause'?"),
])
def test_validation_lookalike_unicode_letter_is_named(tmp_path, text, needle, line, col, hint):
    out = refused(tmp_path, text, needle, line, col)
    assert f"(hint: {hint})" in out, out


@pytest.mark.parametrize("text, line, col", [
    ("version: 1\nname: t\ncluster: 3\n", 3, 1),
    ("version: 1\nname: t\nworkload: [1]\n", 3, 1),
    ("version: 1\nname: t\nschedule: [3]\n", 3, 12),
    ("version: 1\nname: t\nschedule: [{random: 3}]\n", 3, 13),
])
def test_validation_messages_carry_no_internal_class_names(tmp_path, text, line, col):
    out = refused(tmp_path, text, "should be a mapping of keys (key: value)", line, col)
    assert "instance of" not in out and "Config" not in out and "RandomSpace" not in out, out


@pytest.mark.parametrize("data, needle, line, col", [
    (b"version: 1\nname: t\x07\n", "not valid YAML: the character #x0007 is not allowed", 2, 8),
    (b"version: 1\nname: t\nschedule: [\n", "not valid YAML", 4, 1),
    (b"version: 1\n  name: t\n", "not valid YAML", 2, 7),
    (b"version: 1\nname: t\n[a]: 1\n", "a mapping key must be a scalar", 3, 1),
    (b"version: 1\nname: t\nworkload: {clients: " + b"9" * 5000 + b"}\n", "a number too large to read", 3, 21),
])
def test_validation_yaml_errors_carry_their_line_and_column(tmp_path, data, needle, line, col):
    f = tmp_path / "bad.yaml"
    f.write_bytes(data)
    code, out = _cli(["validate", str(f)])
    assert code == 2 and "Traceback" not in out, out
    assert out.startswith(f"{f}:{line}:{col}: error: ") and needle in out, out


def test_validation_grace_is_documented_for_stop_only():
    from chaos.experiment import reference
    text = reference.render()
    sections = {s.split("\n", 1)[0]: s for s in text.split("### ")[1:]}
    assert "`grace`" in sections["`fault: stop`"]
    for kind in ("kill", "pause"):
        assert "`grace`" not in sections[f"`fault: {kind}`"], kind
    shared = [t for t in sections if t.startswith("node faults: keys shared by kill, stop, pause")]
    assert len(shared) == 1 and "`grace`" not in sections[shared[0]]
    assert sum("`grace`" in s for title, s in sections.items() if not title.startswith("`random")) == 1


# -- 5. x- keys and anchors ---------------------------------------------------------------------

ANCHORED = ("version: 1\nname: t\n"
            "x-pause: &pause {fault: pause, for: 2s, target: {role: managers, count: 1}}\n"
            "x-notes: [anything, {goes: here}]\n"
            "cluster: {managers: 3, workers: 2}\n"
            "schedule:\n"
            "  - {<<: *pause, name: p1, at: 1s}\n"
            "  - {<<: *pause, name: p2, at: 5s, for: 1s}\n")
EXPLICIT = ("version: 1\nname: t\ncluster: {managers: 3, workers: 2}\nschedule:\n"
            "  - {name: p1, at: 1s, fault: pause, for: 2s, target: {role: managers, count: 1}}\n"
            "  - {name: p2, at: 5s, fault: pause, for: 1s, target: {role: managers, count: 1}}\n")


def test_validation_x_keys_carry_anchors_and_plan_as_written_out(tmp_path):
    accepted(tmp_path, ANCHORED)
    for seed in (0, 1, 7):
        assert P.canonical(P.expand(load_text(ANCHORED)[0], seed)) == P.canonical(P.expand(load_text(EXPLICIT)[0], seed))


def test_validation_x_keys_are_top_level_only_and_merged_errors_point_at_the_anchor(tmp_path):
    refused(tmp_path, BASE + "workload: {x-clients: 3}\n", "unknown key 'x-clients'", 4, 12, "workload.x-clients")
    bad = ANCHORED.replace("for: 2s, target", "for: -2s, target")
    refused(tmp_path, bad, "not a duration", 3, 32, "schedule[0].for")
    refused(tmp_path, ANCHORED + "  - {<<: *paws, at: 9s}\n", "not valid YAML", 9, 10)
    refused(tmp_path, ANCHORED.replace("name: p2, at: 5s", "name: p2, at: 5s, at: 6s"),
            "duplicate key 'at' (the later one would win)", 8, 36)


def test_validation_x_keys_are_allowed_by_the_json_schema():
    import jsonschema
    import yaml

    from chaos.experiment import schema as S
    validator = jsonschema.Draft202012Validator(S.json_schema())
    validator.validate(yaml.safe_load(ANCHORED))
    assert list(validator.iter_errors({**yaml.safe_load(EXPLICIT), "y-notes": 1}))


def test_validation_an_invalid_item_keeps_its_name_for_the_later_rules(tmp_path):
    sched = ("schedule:\n"
             "  - random: {from: 1s, to: 9s, kinds: [pause], targets: [m1]}\n"          # no duration
             "  - {name: cut, at: 1s, for: -1s, fault: partition, isolate: m1}\n"        # bad length
             "  - {after: cut, for: 1s, fault: pause, target: m2}\n"
             "  - {after: f1, for: 1s, fault: pause, target: m2}\n"
             "expect: [fault-effective: r1, until-met: cut]\n")
    out = refused(tmp_path, BASE + sched, "missing required key 'duration'", 5, 5)
    assert "`after: cut`" not in out and "until-met" not in out, out  # cut's own problem is enough
    assert "schedule[3].after: `after: f1` names no earlier fault" in out, out  # a random block is no f1
    assert "expect[0]" not in out, out


def test_a_file_cut_after_its_header_is_valid_but_warned_that_it_injects_no_fault(tmp_path):
    """A shipped experiment cut at 60 % of its bytes keeps only version, name and half a description:
    it ran a fault-free default experiment and passed. It still validates (a baseline is legitimate),
    but `chaos validate` says it runs no fault; `schedule: []` says so on purpose and is not warned."""
    text = (ROOT / "experiments" / "leader-isolated.yaml").read_text(encoding="utf-8")
    cut = tmp_path / "cut.yaml"
    cut.write_text(text[: int(len(text) * 0.6)], encoding="utf-8")
    code, out = _cli(["validate", str(cut)])
    assert code == 0 and "Traceback" not in out, out
    assert re.search(r"cut\.yaml:\d+:\d+: warning: no `schedule`: this experiment injects no fault", out), out
    base = tmp_path / "base.yaml"
    base.write_text(BASE + "schedule: []\n", encoding="utf-8")
    code, out = _cli(["validate", str(base)])
    assert code == 0 and "warning" not in out, out
