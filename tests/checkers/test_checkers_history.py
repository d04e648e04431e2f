"""history.jsonl reading, validation and pairing (docs/contracts.md section 5)."""

from __future__ import annotations

import pytest

from chaos.checkers import Verdict, run_checks
from chaos.history import HistoryError, pair_ops, read_history, write_history

from .builder import RunBuilder


def test_history_roundtrip_and_pairing(tmp_path):
    evs = [{"index": 0, "process": 0, "type": "invoke", "f": "write", "key": "a", "value": 1, "ts": 1.0},
           {"index": 1, "process": 1, "type": "invoke", "f": "read", "key": "a", "value": None, "ts": 1.1},
           {"index": 2, "process": 0, "type": "ok", "f": "write", "key": "a", "value": 1, "ts": 1.2},
           {"index": 3, "process": 1, "type": "ok", "f": "read", "key": "a", "value": 1, "ts": 1.3},
           {"index": 4, "process": 0, "type": "invoke", "f": "cas", "key": "a", "value": [1, 2], "ts": 1.4}]
    write_history(tmp_path / "h.jsonl", evs)
    back = read_history(tmp_path / "h.jsonl")
    assert back == evs
    ops = pair_ops(back)
    assert [(o.f, o.type, o.value, o.complete_index) for o in ops] == [
        ("write", "ok", 1, 2), ("read", "ok", 1, 3), ("cas", "info", [1, 2], None)]
    assert ops[0].latency_s == pytest.approx(0.2)


@pytest.mark.parametrize("lines,needle", [
    (['{"process": 0, "type": "invoke", "f": "read"}', "not json"], "not JSON"),
    (['{"process": 0, "type": "begin", "f": "read"}'], "type 'begin'"),
    (['{"process": 0, "type": "invoke", "f": "cas", "value": 3}'], "[expected, new]"),
    (['{"type": "invoke", "f": "read"}'], "missing field 'process'"),
])
def test_history_bad_lines_name_the_line(tmp_path, lines, needle):
    p = tmp_path / "history.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(HistoryError, match=None) as ei:
        read_history(p)
    assert needle in str(ei.value) and "history.jsonl:" in str(ei.value)


def test_history_pairing_errors():
    inv = {"index": 0, "process": 0, "type": "invoke", "f": "read", "key": "a", "value": None}
    with pytest.raises(HistoryError, match="no pending invoke"):
        pair_ops([{"index": 0, "process": 0, "type": "ok", "f": "read", "key": "a", "value": None}])
    with pytest.raises(HistoryError, match="while #0 is pending"):
        pair_ops([inv, dict(inv, index=1)])
    with pytest.raises(HistoryError, match="indexes must increase"):
        pair_ops([dict(inv, index=3), dict(inv, index=2, process=1)])


def test_history_malformed_gives_unknown_not_crash(tmp_path):
    b = RunBuilder(tmp_path / "run")
    d = b.write()
    (d / "history.jsonl").write_text('{"index": 0, "process": 0, "type": "ok", "f": "read", "key": "a"}\n')
    c = run_checks(d, ["linearizable"]).checks[0]
    assert c.verdict == Verdict.UNKNOWN and "no pending invoke" in c.summary
