"""`chaos check` on missing, damaged and cut-off run directories, through the real CLI entry.

The rule (README "Exit codes", chaos/checkers/rundir.py): a directory that cannot be read at all is
exit 2 with one line; a partly readable one is judged as far as it can be, the checks that need the
damaged part are UNKNOWN with a one-line FILE:LINE reason (exit 3); never a traceback on the console,
and never VALID, nor INVALID, because of the harness's missing record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaos import errors
from chaos.checkers import Verdict, run_checks
from chaos.cli import main

from .builder import T0, healthy_cluster
from .test_checkers_core import _cli


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = text + "\n"
    path.write_text("".join(lines))


def _cut_last_line(path: Path, keep: int = 20) -> int:
    """Cut the last line after `keep` characters, without its newline (a crash while appending)."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:keep])
    return len(lines)


def _n_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _keep_only(d: Path, *names: str) -> Path:
    for p in d.iterdir():
        if p.name not in names:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return d


def _mk_file(d: Path) -> Path:
    f = d.parent / "a-file"
    f.write_text("x")
    return f


# (case id, damage(d) -> path to pass, exit code, one-line message with {n} = a line number from damage)
CASES = [
    ("missing dir", lambda d: d.parent / "nope", errors.EXIT_USAGE, "does not exist"),
    ("not a dir", _mk_file, errors.EXIT_USAGE, "is not a directory"),
    ("nothing of a run", lambda d: _keep_only(d, "status.jsonl", "faults.jsonl"),
     errors.EXIT_USAGE, "does not look like a run directory"),
    ("run.json garbage", lambda d: (d / "run.json").write_text("{oops") and d, errors.EXIT_USAGE,
     "run.json:1: not JSON (Expecting property name enclosed in double quotes)"),
    ("run.json not an object", lambda d: (d / "run.json").write_text("[1, 2]") and d, errors.EXIT_USAGE,
     "run.json: expected a JSON object, got list"),
    ("plan.json garbage", lambda d: (d / "plan.json").write_text("checks: [x]") and d, errors.EXIT_USAGE,
     "plan.json:1: not JSON (Expecting value)"),
    ("history cut mid-line at its end", lambda d: _cut_last_line(d / "history.jsonl") and d,
     errors.EXIT_INCONCLUSIVE, "history.jsonl:{last_history}: last line cut short"),
    ("history garbage line", lambda d: _replace_line(d / "history.jsonl", 3, "garbage{") or d,
     errors.EXIT_INCONCLUSIVE, "history.jsonl:3: not JSON (Expecting value); history not judged"),
    ("history bad event type", lambda d: _replace_line(
        d / "history.jsonl", 2, json.dumps({"process": 1, "type": "done", "f": "read"})) or d,
     errors.EXIT_INCONCLUSIVE, "history.jsonl:2: type 'done' is not one of invoke, ok, fail, info"),
    ("history unpaired", lambda d: _replace_line(
        d / "history.jsonl", 1, json.dumps({"index": 0, "process": 9, "type": "ok", "f": "read"})) or d,
     errors.EXIT_INCONCLUSIVE, "history.jsonl: event #0: ok from process 9 with no pending invoke"),
    ("empty history", lambda d: (d / "history.jsonl").write_text("") or d,
     errors.EXIT_INCONCLUSIVE, "history.jsonl holds no operations"),
    ("manager journal missing", lambda d: (d / "events" / "m2.jsonl").unlink() or d,
     errors.EXIT_INCONCLUSIVE, "events/m2.jsonl: no journal for m2, which run.json names"),
    ("worker journal missing", lambda d: (d / "events" / "w1.jsonl").unlink() or d,
     errors.EXIT_INCONCLUSIVE, "events/w1.jsonl: no journal for w1, which run.json names"),
    ("journal unknown record", lambda d: _replace_line(d / "events" / "m2.jsonl", 3, '{"type":"oops"}') or d,
     errors.EXIT_INCONCLUSIVE, "events/m2.jsonl:3: unknown event type 'oops'; journal of m2 not used"),
    ("journal mistyped field", lambda d: _replace_line(
        d / "events" / "m1.jsonl", 2, json.dumps({"seq": 2, "boot": 1, "type": "commit", "index": "7"})) or d,
     errors.EXIT_INCONCLUSIVE, "events/m1.jsonl:2: commit event: 'index' is '7', not int"),
    ("journal garbage line", lambda d: _replace_line(d / "events" / "m3.jsonl", 4, "\x00\x01") or d,
     errors.EXIT_INCONCLUSIVE, "events/m3.jsonl:4: not JSON"),
    ("journal cut at its end", lambda d: _cut_last_line(d / "events" / "m1.jsonl") and d,
     errors.EXIT_INCONCLUSIVE, "events/m1.jsonl:{last_m1}: last line cut short"),
    ("status garbage", lambda d: _replace_line(d / "status.jsonl", 2, "[1,") or d,
     errors.EXIT_INCONCLUSIVE, "status.jsonl:2: not JSON"),
    ("status row without node", lambda d: _replace_line(d / "status.jsonl", 1, '{"ts": 1}') or d,
     errors.EXIT_INCONCLUSIVE, "status.jsonl:1: status row has no 'node'; file not used"),
    ("faults garbage", lambda d: _replace_line(d / "faults.jsonl", 1, "{'ts': 1}") or d,
     errors.EXIT_INCONCLUSIVE, "faults.jsonl:1: not JSON"),
    ("final garbage", lambda d: (d / "final" / "m1.json").write_text('{"status": {}\n,,') and d,
     errors.EXIT_INCONCLUSIVE, "final/m1.json:2: not JSON"),
    ("final not an object", lambda d: (d / "final" / "w2.json").write_text("42") and d,
     errors.EXIT_INCONCLUSIVE, "final/w2.json: expected a JSON object, got int"),
    ("final missing", lambda d: (d / "final" / "m3.json").unlink() or d,
     errors.EXIT_INCONCLUSIVE, "final/m3.json: no final state for m3, which run.json names"),
]


@pytest.mark.parametrize("case,damage,code,message", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_check_damaged_rundir_exit_code_and_one_line(tmp_path, case, damage, code, message, as_json):
    d = healthy_cluster(tmp_path / "run").write()
    assert _cli(["check", str(d), "--no-write"])[0] == 0   # the undamaged run is VALID
    fills = {"last_history": _n_lines(d / "history.jsonl"), "last_m1": _n_lines(d / "events" / "m1.jsonl")}
    target = damage(d)
    message = message.format(**fills)
    got, out, err = _cli(["check", str(target), "--no-write"] + (["--json"] if as_json else []))
    assert got == code, f"{case}: exit {got}\n{out}\n{err}"
    assert "Traceback" not in out + err and "traceback" not in out + err and 'File "' not in out + err
    if code == errors.EXIT_USAGE:
        lines = err.strip().splitlines()
        assert lines[0].startswith("error: ") and message in lines[0], err
        assert out == ""
        return
    if as_json:
        data = json.loads(out)
        assert data["verdict"] == "UNKNOWN"
        assert any(message in c["summary"] for c in data["checks"] if c["verdict"] == "UNKNOWN"), \
            [c["summary"] for c in data["checks"]]
        assert all(c["verdict"] != "INVALID" for c in data["checks"])
    else:
        assert any(message in line for line in out.splitlines()), out
        assert "overall: UNKNOWN" in out


def test_check_damaged_rundir_only_checks_needing_the_part_are_unknown(tmp_path):
    d = healthy_cluster(tmp_path / "run").write()
    (d / "events" / "m2.jsonl").unlink()
    res = {c.name: c for c in run_checks(d, write=False).checks}
    assert res["raft-safety"].verdict == Verdict.UNKNOWN and "events/m2.jsonl" in res["raft-safety"].summary
    # linearizable and durability read no journal: still judged
    assert res["linearizable"].verdict == Verdict.VALID
    assert res["durability"].verdict == Verdict.VALID
    # a worker's journal is not needed by raft-safety
    d = healthy_cluster(tmp_path / "run2").write()
    (d / "events" / "w1.jsonl").unlink()
    assert run_checks(d, ["raft-safety"], write=False).checks[0].verdict == Verdict.VALID


def test_check_damaged_rundir_raft_violation_still_invalid_without_a_journal(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.j("m3", "role", ts=T0 + 12.6, role="leader", term=2)   # two leaders in term 2
    d = b.write()
    (d / "events" / "m1.jsonl").unlink()
    c = run_checks(d, ["raft-safety"], write=False).checks[0]
    assert c.verdict == Verdict.INVALID and "election-safety" in c.summary
    assert "events/m1.jsonl" in c.summary   # the gap is still named


def test_check_damaged_rundir_lost_write_behind_cut_history_is_not_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.op(4, "write", "k3", 31, ts=T0 + 30)
    for m in ("m1", "m2", "m3"):
        b.finals[m]["store"]["kv"]["k3"] = 31
    d = b.write()
    # with the whole history: VALID; cut inside the completion of write 31 -> it is in flight
    assert run_checks(d, ["durability"], write=False).checks[0].verdict == Verdict.VALID
    _cut_last_line(d / "history.jsonl", keep=10)
    c = run_checks(d, ["durability", "linearizable"], write=False).checks
    assert [x.verdict for x in c] == [Verdict.UNKNOWN, Verdict.UNKNOWN]
    assert all("cut short" in x.summary for x in c), [x.summary for x in c]


def test_check_damaged_rundir_members_missing_final_not_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    del b.finals["w2"]   # w2's final state was not collected; the others see it alive
    c = run_checks(b.write(), ["convergence"], write=False).checks[0]
    assert c.verdict == Verdict.UNKNOWN and "final/w2.json" in c.summary, c.summary
    b = healthy_cluster(tmp_path / "run2")
    b.finals["w2"] = {"status": {"error": "connection refused"}}   # recorded: w2 is down, seen alive
    c = run_checks(b.write(), ["convergence"], write=False).checks[0]
    assert c.verdict == Verdict.INVALID and "non-live w2 as alive" in c.summary, c.summary


def test_check_damaged_rundir_manager_final_without_fields_not_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.finals["m3"] = {"note": "collector crashed"}
    c = run_checks(b.write(), ["convergence"], write=False).checks[0]
    assert c.verdict == Verdict.UNKNOWN, c.summary


def test_check_console_never_reads_data_as_markup(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    for i in range(60):   # make the history long enough to have a line 100
        b.op(7, "read", "k1", result=2, ts=T0 + 50 + i)
    d = b.write()
    _replace_line(d / "history.jsonl", 100, "[bold]not json[/bold] :smile:")
    code, out, _ = _cli(["check", str(d), "--no-write", "--check", "linearizable"])
    assert code == errors.EXIT_INCONCLUSIVE
    assert "history.jsonl:100: not JSON" in out, out
    assert "\U0001f4af" not in out and "\U0001f604" not in out   # :100: and :smile: emoji


def test_check_console_summary_markup_kept_literally(tmp_path):
    from chaos.checkers import Outcome, core

    def weird(run):
        return Outcome(Verdict.UNKNOWN, "[red]k[/red] :thumbs_up: [/] history.jsonl:100:", {"misses": ["[b]m[/b]"]})
    core.register("t-weird")(weird)
    try:
        d = healthy_cluster(tmp_path / "run").write()
        code, out, _ = _cli(["check", str(d), "--no-write", "--check", "t-weird"])
    finally:
        core._REGISTRY.pop("t-weird", None)
    assert code == errors.EXIT_INCONCLUSIVE
    assert "[red]k[/red] :thumbs_up: [/] history.jsonl:100:" in out, out
    assert "[b]m[/b]" in out


def test_check_real_entry_point_exit_code(tmp_path):
    d = healthy_cluster(tmp_path / "run").write()
    (d / "run.json").write_text("not json")
    assert main(["check", str(d), "--no-write"]) == errors.EXIT_USAGE


def test_check_damaged_rundir_convergence_keeps_invalid_that_the_gap_cannot_explain(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.finals["m3"]["store"]["store_digest"] = "other"   # managers end apart: a fact of the finals
    b.finals["m3"]["status"]["store_digest"] = "other"
    d = b.write()
    (d / "events" / "w1.jsonl").unlink()                # a journal the managers part does not read
    c = run_checks(d, ["convergence"], write=False).checks[0]
    assert c.verdict == Verdict.INVALID and "managers hold different stores" in c.summary, c.summary
    assert "events/w1.jsonl" in c.summary


def test_check_damaged_rundir_no_double_with_missing_journal_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    # w2 also runs web.1 from T0+30 (after heal + bound would not matter: "at end" is judged)
    b.j("w2", "task", ts=T0 + 30, task="web.1", service="web", slot=1, worker="w2", state="running")
    assert run_checks(b.write(), ["convergence"], write=False).checks[0].verdict == Verdict.INVALID
    # the same, but m2's journal (where a shutdown of web.1 on w1 could be) was not collected
    d = b.write()
    (d / "events" / "m2.jsonl").unlink()
    c = run_checks(d, ["convergence"], write=False).checks[0]
    assert c.verdict == Verdict.UNKNOWN and "events/m2.jsonl" in c.summary, c.summary
