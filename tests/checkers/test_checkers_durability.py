"""durability: acknowledged mutations survive the final heal (rule in chaos/checkers/durability.py)."""

from __future__ import annotations

from chaos.checkers import Verdict, run_checks

from .builder import MANAGERS, T0, healthy_cluster


def _judge(b, spec="durability"):
    return run_checks(b.write(), [spec]).checks[0]


def _set_kv(b, key, value, nodes=MANAGERS):
    for m in nodes:
        kv = b.finals[m]["store"]["kv"]
        if value is None:
            kv.pop(key, None)
        else:
            kv[key] = value


def test_durability_healthy_valid(tmp_path):
    c = _judge(healthy_cluster(tmp_path / "run"))
    assert c.verdict == Verdict.VALID, c.summary


def test_durability_lost_acknowledged_write_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    _set_kv(b, "k2", 10)  # the ok cas [10, 11] is lost
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    lost = c.evidence["lost"]
    assert {x["source"] for x in lost} >= {"final/m1.json", "final/m2.json", "final/m3.json"}
    assert all(x["key"] == "k2" and x["found"] == 10 for x in lost if x["source"].startswith("final/"))
    assert "cas k2 [10, 11]" in lost[0]["detail"]


def test_durability_lost_write_on_one_manager_only_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    _set_kv(b, "k3", None, nodes=("m3",))
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    assert [x["source"] for x in c.evidence["lost"]] == ["final/m3.json"]


def test_durability_acknowledged_delete_resurrected_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.op(3, "delete", "k3", ts=T0 + 25)
    c = _judge(b)  # stores still hold k3 = 30
    assert c.verdict == Verdict.INVALID
    assert "delete k3" in c.evidence["lost"][0]["detail"]
    _set_kv(b, "k3", None)
    assert _judge(b).verdict == Verdict.VALID


def test_durability_info_write_may_or_may_not_land(tmp_path):
    b = healthy_cluster(tmp_path / "run")   # k1: ok write 1, then info write 2; stores hold 2
    assert _judge(b).verdict == Verdict.VALID
    _set_kv(b, "k1", 1)
    assert _judge(b).verdict == Verdict.VALID
    _set_kv(b, "k1", 77)   # a value nobody wrote
    assert _judge(b).verdict == Verdict.INVALID


def test_durability_stale_final_read_invalid(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.op(4, "write", "k3", 31, ts=T0 + 30)
    _set_kv(b, "k3", 31)
    b.op(5, "read", "k3", result=30, ts=T0 + 31)  # after heal, after the last ack: must see 31
    c = _judge(b)
    assert c.verdict == Verdict.INVALID
    assert c.evidence["lost"][0]["source"].startswith("final read")


def test_durability_no_final_state_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.finals.clear()
    b.events = [e for e in b.events if e["f"] != "read"]
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "nothing to check" in c.summary


def test_durability_require_all_managers(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.finals["m3"] = {"status": {"error": "connection refused"}}   # recorded: m3 did not answer
    assert _judge(b).verdict == Verdict.VALID
    c = _judge(b, "durability:require_all_managers=true")
    assert c.verdict == Verdict.UNKNOWN and "m3" in c.summary


def test_durability_missing_final_file_of_named_manager_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    del b.finals["m3"]   # run.json names m3, the harness wrote nothing: missing evidence, never VALID
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "final/m3.json" in c.summary, c.summary


def test_durability_empty_history_with_stored_values_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.events = []   # `: > history.jsonl`: the stores hold values no record explains
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN, c.summary
    assert "no operations" in c.summary


def test_durability_unexplained_value_on_key_without_ack_unknown(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    _set_kv(b, "k9", 2292)   # no recorded operation on k9: nothing acknowledged was lost
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "cannot explain" in c.summary and "k9" in c.summary


def test_durability_truncated_history_does_not_invalidate(tmp_path):
    b = healthy_cluster(tmp_path / "run")
    b.op(4, "write", "k3", 31, ts=T0 + 30)
    _set_kv(b, "k3", 31)
    d = b.write()
    lines = (d / "history.jsonl").read_text().splitlines(keepends=True)
    # the crash cut the history inside the invoke of write k3 31: the acked write 30 looks lost
    (d / "history.jsonl").write_text("".join(lines[:-2]) + lines[-2][:25])
    c = run_checks(d, ["durability"]).checks[0]
    assert c.verdict == Verdict.UNKNOWN, c.summary
    assert "history.jsonl:" in c.summary and "cut short" in c.summary


def test_durability_no_acknowledged_mutation_unknown(tmp_path):
    """Only an indeterminate write, and the stores hold its value: nothing acknowledged can have been
    lost, so there is nothing to judge (it was VALID: '0 acknowledged mutation(s)')."""
    b = healthy_cluster(tmp_path / "run")
    b.events = []
    b.op(0, "write", "k1", 2, typ="info", result=2, ts=T0 + 1)
    for m in MANAGERS:
        b.finals[m]["store"]["kv"] = {"k1": 2}
    c = _judge(b)
    assert c.verdict == Verdict.UNKNOWN and "no acknowledged write" in c.summary, c.summary
