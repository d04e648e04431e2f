"""Linearizability: the 102 Jepsen etcd reference verdicts, the register model, info/fail semantics,
budgets, counterexamples, and a cross-check against a brute-force checker on small random histories.

Wing & Gong 1993 / Lowe 2017 §3 (search), Herlihy & Wing 1990 §2 (definition: a history is
linearizable iff its completed ops can be totally ordered respecting real time and the sequential spec;
pending ops may be completed or dropped).
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

import pytest

from chaos.checkers import Verdict, run_checks
from chaos.checkers import wgl
from chaos.checkers.gen import inject_stale_read, simulate
from chaos.checkers.linearizable import check_ops
from chaos.history import Op, format_jepsen_log, pair_ops, parse_jepsen_log, read_jepsen_log

from .builder import RunBuilder

ETCD = "histories/jepsen-etcd"   # under ../shared (tests/conftest.py: skip, or fail under CI, when missing)


@pytest.fixture
def histories(shared) -> Path:
    return shared(ETCD + "/VERDICTS").parent


@pytest.mark.parametrize("ci, outcome", [("", pytest.skip.Exception), ("false", pytest.skip.Exception),
                                         ("true", pytest.fail.Exception), ("1", pytest.fail.Exception)])
def test_linearizable_reference_missing_shared_fails_under_ci(shared, tmp_path, monkeypatch, ci, outcome):
    """Without ../shared the reference tests skip on a workstation but fail under CI (never a silent pass)."""
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        shared(ETCD + "/VERDICTS", root=tmp_path)
    (tmp_path / ETCD).mkdir(parents=True)
    (tmp_path / ETCD / "VERDICTS").write_text("")
    assert shared(ETCD + "/VERDICTS", root=tmp_path) == tmp_path / ETCD / "VERDICTS"


def _verdicts(histories: Path) -> dict[str, str]:
    lines = (histories / "VERDICTS").read_text().splitlines()
    return dict(line.split() for line in lines if line.strip() and not line.startswith("#"))


def test_linearizable_reference_etcd_all_102_verdicts(histories):
    expected = _verdicts(histories)
    assert len(expected) == 102
    wrong, total = [], 0.0
    for name, want in sorted(expected.items()):
        ops = pair_ops(read_jepsen_log(histories / name))
        t = time.perf_counter()
        res = wgl.search(ops, deadline=time.monotonic() + 30)
        total += time.perf_counter() - t
        if res.outcome != want:
            wrong.append((name, want, res.outcome))
    assert not wrong, wrong
    print(f"102 reference histories in {total:.3f} s")


def test_linearizable_reference_counterexample_is_itself_not_linearizable(histories):
    ops = pair_ops(read_jepsen_log(histories / "etcd_000.log"))
    kr = wgl.check_key("k", ops)
    assert kr.outcome == wgl.NOT_LINEARIZABLE
    assert kr.counterexample and kr.counterexample[-1].startswith("p11 ok read k 2")
    assert kr.counterexample_minimal
    assert len(kr.counterexample) < len(ops) / 2
    for st in kr.initial_states:
        assert wgl.search(kr.counterexample_ops, init=st).outcome == wgl.NOT_LINEARIZABLE


def test_linearizable_reference_counterexamples_fail_and_end_at_smallest_prefix(histories):
    """For every invalid reference history: the counterexample is itself not linearizable, and the
    prefix just before its last completion is linearizable (the prefix is the smallest)."""
    for name, want in sorted(_verdicts(histories).items()):
        if want != wgl.NOT_LINEARIZABLE:
            continue
        ops = pair_ops(read_jepsen_log(histories / name))
        res = wgl.search(ops)
        cut = res.stuck_at
        prev = max(o.complete_index for o in ops if o.type == "ok" and o.complete_index < cut)
        assert wgl.search(ops, cut=cut).outcome == wgl.NOT_LINEARIZABLE, name
        assert wgl.search(ops, cut=prev).outcome == wgl.LINEARIZABLE, name
    for name in ("etcd_000.log", "etcd_057.log", "etcd_099.log"):
        kr = wgl.check_key("k", pair_ops(read_jepsen_log(histories / name)))
        for st in kr.initial_states:
            assert wgl.search(kr.counterexample_ops, init=st).outcome == wgl.NOT_LINEARIZABLE, (name, st)


def test_linearizable_counterexample_suffix_fails_from_every_possible_state():
    """write 1; write 2; write 3; read 2 (all sequential): the witness is the read alone, from
    every state the writes can leave (only 3)."""
    spec = [(0, "write", 1, "ok", 0, 1), (0, "write", 2, "ok", 2, 3), (0, "write", 3, "ok", 4, 5),
            (1, "read", 2, "ok", 6, 7)]
    kr = wgl.check_key("k", _ops(spec))
    assert [line.split("  ")[0] for line in kr.counterexample] == ["p1 ok read k 2"]
    assert kr.initial_states == [3]
    concurrent = [(0, "write", 1, "ok", 0, 1), (0, "write", 2, "ok", 2, 5), (1, "read", 1, "ok", 3, 4),
                  (1, "read", 3, "ok", 6, 7)]
    kr = wgl.check_key("k", _ops(concurrent))
    assert kr.outcome == wgl.NOT_LINEARIZABLE
    for st in kr.initial_states:
        assert wgl.search(kr.counterexample_ops, init=st).outcome == wgl.NOT_LINEARIZABLE


def test_history_jepsen_parser_tabs_and_spaces_and_timed_out():
    text = ("INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]\n"
            "INFO  jepsen.util - 0   :invoke :write  3\n"
            "INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n"
            "INFO  jepsen.util - 0   :ok :write  3\n"
            "INFO  jepsen.util - 2\t:invoke\t:read\tnil\n"
            "INFO  jepsen.util - 2\t:fail\t:read\t:timed-out\n"
            "some other log line\n")
    evs = parse_jepsen_log(text)
    assert [(e["process"], e["type"], e["f"], e["value"]) for e in evs] == [
        (1, "invoke", "cas", [1, 2]), (0, "invoke", "write", 3), (1, "info", "cas", [1, 2]),
        (0, "ok", "write", 3), (2, "invoke", "read", None), (2, "fail", "read", None)]
    assert parse_jepsen_log(format_jepsen_log(evs)) == evs


def _ops(spec: list[tuple]) -> list[Op]:
    """spec: (process, f, value, type, invoke_index, complete_index|None) -> ops on key k."""
    return [Op(p, t, f, "k", v, i, c, None, None) for p, f, v, t, i, c in spec]


def _outcome(spec) -> str:
    return wgl.search(_ops(spec)).outcome


def test_linearizable_stale_read_is_invalid_with_the_read_in_the_counterexample():
    # write 1 completes, then write 2 completes, then a read returns 1: stale.
    spec = [(0, "write", 1, "ok", 0, 1), (0, "write", 2, "ok", 2, 3), (1, "read", 1, "ok", 4, 5)]
    out = check_ops(_ops(spec))
    assert out.verdict == Verdict.INVALID
    cex = out.evidence["failed_keys"][0]["counterexample"]
    assert cex[-1].startswith("p1 ok read k 1")
    assert out.evidence["failed_keys"][0]["initial_states"] == [2]   # after write 2 completed
    assert "any state the earlier operations can leave (2)" in out.evidence["failed_keys"][0]["explanation"]


def test_linearizable_concurrent_read_may_see_old_or_new():
    spec = [(0, "write", 1, "ok", 0, 1), (0, "write", 2, "ok", 2, 5), (1, "read", 1, "ok", 3, 4)]
    assert _outcome(spec) == wgl.LINEARIZABLE


def test_linearizable_info_write_may_take_effect_late_or_never():
    late = [(0, "write", 1, "info", 0, 1), (1, "read", None, "ok", 2, 3), (1, "read", 1, "ok", 4, 5)]
    assert _outcome(late) == wgl.LINEARIZABLE
    never = [(0, "write", 1, "info", 0, 1), (1, "read", None, "ok", 2, 3)]
    assert _outcome(never) == wgl.LINEARIZABLE
    # ...but not before its invocation
    early = [(1, "read", 1, "ok", 0, 1), (0, "write", 1, "info", 2, 3)]
    assert _outcome(early) == wgl.NOT_LINEARIZABLE


def test_linearizable_unfinished_invoke_counts_as_info():
    ops = pair_ops([{"index": 0, "process": 0, "type": "invoke", "f": "write", "key": "k", "value": 5},
                    {"index": 1, "process": 1, "type": "invoke", "f": "read", "key": "k", "value": None},
                    {"index": 2, "process": 1, "type": "ok", "f": "read", "key": "k", "value": 5}])
    assert ops[0].type == "info" and ops[0].complete_index is None
    assert wgl.search(ops).outcome == wgl.LINEARIZABLE


def test_linearizable_fail_ops_are_dropped():
    spec = [(0, "write", 1, "fail", 0, 1), (1, "read", 1, "ok", 2, 3)]
    assert _outcome(spec) == wgl.NOT_LINEARIZABLE  # the failed write did not happen
    spec = [(0, "write", 1, "ok", 0, 1), (0, "cas", [5, 6], "fail", 2, 3), (1, "read", 1, "ok", 4, 5)]
    assert _outcome(spec) == wgl.LINEARIZABLE


def test_linearizable_cas_and_delete_model():
    ok = [(0, "write", 1, "ok", 0, 1), (0, "cas", [1, 2], "ok", 2, 3), (0, "delete", None, "ok", 4, 5),
          (0, "read", None, "ok", 6, 7)]
    assert _outcome(ok) == wgl.LINEARIZABLE
    bad_cas = [(0, "write", 1, "ok", 0, 1), (0, "cas", [3, 2], "ok", 2, 3)]
    assert _outcome(bad_cas) == wgl.NOT_LINEARIZABLE
    resurrected = [(0, "write", 1, "ok", 0, 1), (0, "delete", None, "ok", 2, 3), (0, "read", 1, "ok", 4, 5)]
    assert _outcome(resurrected) == wgl.NOT_LINEARIZABLE
    # delete's `existed` result must agree with the state
    ops = [Op(0, "ok", "delete", "k", None, 0, 1, None, None, result=True)]
    assert wgl.search(ops).outcome == wgl.NOT_LINEARIZABLE


def test_linearizable_keys_are_independent():
    ops = _ops([(0, "write", 1, "ok", 0, 1)]) + [Op(1, "ok", "read", "j", None, 2, 3, None, None)]
    assert check_ops(ops).verdict == Verdict.VALID


def test_linearizable_nothing_to_check_is_unknown():
    assert check_ops([]).verdict == Verdict.UNKNOWN
    only_failed = _ops([(0, "write", 1, "fail", 0, 1)])
    out = check_ops(only_failed)
    assert out.verdict == Verdict.UNKNOWN and "nothing to check" in out.summary


def test_linearizable_state_budget_gives_unknown_not_valid():
    events = simulate(seed=7, clients=20, keys=1, ops=3000, p_info=0.3)
    out = check_ops(pair_ops(events), key_max_states=50)
    assert out.verdict == Verdict.UNKNOWN, out.summary
    assert out.evidence["budget_keys"][0]["reason"].startswith("state bound")


def test_linearizable_generated_histories_seeded():
    for seed in (1, 2, 3):
        events = simulate(seed=seed, clients=20, keys=10, ops=3000)
        out = check_ops(pair_ops(events))
        assert out.verdict == Verdict.VALID, f"seed {seed}: {out.summary}"
        bad, info = inject_stale_read(events, seed=seed)
        out = check_ops(pair_ops(bad), stop_at_first=True)
        assert out.verdict == Verdict.INVALID, f"seed {seed}: {out.summary}"
        failed = out.evidence["failed_keys"][0]
        assert failed["key"] == info["key"], f"seed {seed}"
        assert f"ok read {info['key']} {info['stale_value']}" in failed["counterexample"][-1], f"seed {seed}"


def _brute_force(ops: list[Op]) -> bool:
    """Herlihy-Wing by enumeration: choose which info ops happen, try every order."""
    ok = [o for o in ops if o.type == "ok"]
    maybe = [o for o in ops if o.type == "info" and o.f != "read"]
    for r in range(len(maybe) + 1):
        for chosen in itertools.combinations(maybe, r):
            group = ok + list(chosen)
            for perm in itertools.permutations(group):
                if _legal(perm):
                    return True
    return False


def _legal(order) -> bool:
    pos = {id(o): i for i, o in enumerate(order)}
    for a in order:
        for b in order:
            # a completed before b was invoked => a precedes b
            if a.complete_index is not None and a.type == "ok" and a.complete_index < b.invoke_index \
                    and pos[id(a)] > pos[id(b)]:
                return False
    state = None
    for o in order:
        if o.f == "read":
            if o.value != state:
                return False
        elif o.f == "write":
            state = o.value
        elif o.f == "cas":
            if state != o.value[0]:
                return False
            state = o.value[1]
        else:
            state = None
    return True


def test_linearizable_agrees_with_brute_force_on_random_small_histories():
    seed = 20240601
    rng = random.Random(seed)
    verdicts = {wgl.LINEARIZABLE: 0, wgl.NOT_LINEARIZABLE: 0}
    for case in range(500):
        n = rng.randint(1, 6)
        events, pending, idx = [], {}, 0
        procs = list(range(3))
        made = 0
        while made < n or pending:
            p = rng.choice(procs)
            if p in pending:
                inv = pending.pop(p)
                typ = rng.choice(["ok", "ok", "info", "info", "fail"])
                val = inv["value"] if inv["f"] != "read" else rng.choice([None, 1, 2])
                events.append({"index": idx, "process": p, "type": typ, "f": inv["f"], "key": "k", "value": val})
            elif made < n:
                f = rng.choice(["read", "write", "cas", "delete"])
                val = {"read": None, "write": rng.choice([1, 2]), "cas": [rng.choice([None, 1, 2]), rng.choice([1, 2])],
                       "delete": None}[f]
                ev = {"index": idx, "process": p, "type": "invoke", "f": f, "key": "k", "value": val}
                events.append(ev)
                pending[p] = ev
                made += 1
            else:
                continue
            idx += 1
        ops = pair_ops(events)
        want = wgl.LINEARIZABLE if _brute_force([o for o in ops if o.type != "fail"]) else wgl.NOT_LINEARIZABLE
        got = wgl.search(ops).outcome
        assert got == want, f"seed {seed} case {case}: {events}"
        verdicts[got] += 1
    assert min(verdicts.values()) > 50, verdicts   # both verdicts well represented


def test_linearizable_checker_through_run_dir(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.op(0, "write", "k1", 1)
    b.op(0, "write", "k1", 2)
    b.op(1, "read", "k1", result=1)
    res = run_checks(b.write(), ["linearizable"])
    assert res.verdict == Verdict.INVALID
    c = res.checks[0]
    assert c.evidence["failed_keys"][0]["key"] == "k1"
    assert "cannot be placed" in c.evidence["failed_keys"][0]["explanation"]


def test_linearizable_reference_through_run_dir_and_cli(tmp_path, histories):
    """Jepsen log -> history.jsonl -> `chaos check --check linearizable`: exit 0 / 1 as VERDICTS says."""
    from chaos.cli import main
    from chaos.history import write_history
    for name, code in (("etcd_002.log", 0), ("etcd_000.log", 1)):
        d = tmp_path / name
        d.mkdir()
        write_history(d / "history.jsonl", read_jepsen_log(histories / name))
        assert main(["check", str(d), "--check", "linearizable", "--json"]) == code, name
