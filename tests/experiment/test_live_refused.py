"""The live panel names a cas refused on a value mismatch `refused`, never `fail` (issue 21 item 2):
a steady phase with no fault whose only non-ok answers are refused cas shows `fail 0`."""

from __future__ import annotations

import time

from chaos.live import LiveDisplay
from chaos.workload import HistoryWriter


class _Runner:  # the parts of the runner the display reads
    poller = None
    nemesis = None

    def __init__(self, writer):
        self.writer = writer

    def current_phase(self):
        return "steady"


def _complete(w: HistoryWriter, p: int, typ: str, error: str | None = None) -> None:
    w.add(process=p, type="invoke", f="cas", key="k1", value=[1, 2])
    w.add(process=p, type=typ, f="cas", key="k1", value=[1, 2], **({"error": error} if error else {}))


def test_history_writer_counts_refused_cas_apart(tmp_path):
    w = HistoryWriter(tmp_path / "h.jsonl")
    _complete(w, 0, "fail", "cas-mismatch")
    _complete(w, 1, "fail", "no-leader")
    _complete(w, 2, "ok")
    w.close()
    assert w.counts == {"invoke": 3, "ok": 1, "fail": 2, "info": 0, "refused": 1}  # fail counts lines by type


def test_live_status_line_shows_refused_not_fail(tmp_path):
    w = HistoryWriter(tmp_path / "h.jsonl")
    live = LiveDisplay("exp", 30.0, force_plain=True)
    live.runner = _Runner(w)
    live._sample()
    for p in range(24):
        _complete(w, p, "fail", "cas-mismatch")
    for p in range(24, 30):
        _complete(w, p, "ok")
    live._last_t = time.monotonic() - 1.0  # the samples one second apart, without sleeping
    live._sample()
    line = live._status_line()
    assert "refused 24" in line and "fail 0" in line and "ok 6" in line, line
    _complete(w, 99, "fail", "no-leader")
    live._last_t = time.monotonic() - 1.0
    live._sample()
    assert "fail 1" in live._status_line() and "refused 0" in live._status_line()
    w.close()
