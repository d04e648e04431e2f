"""swarm-liveness `rejoin` (issue 22, the `wipe` fault): a worker the harness brought back, DOWN in
the leader's store, must be READY again within rejoin_bound_s; the planted stale_worker_identity
(the leader drops a wiped worker's heartbeats) is INVALID here, a correct rejoin VALID."""

from __future__ import annotations

from chaos.checkers import Verdict

from .builder import T0
from .test_checkers_swarm_liveness import _judge, _part, crash_run


def _back(b, back_at=14.0, kind="wipe"):
    """The crash fault as a `wipe`, and the worker's agent booting again (its own journal)."""
    for row in b.faults:
        if row.get("fault") == "crash":
            row["kind"] = kind
    b.j("w2", "boot", ts=T0 + back_at + 0.1)
    return b


def test_rejoin_valid_when_the_worker_is_ready_again_in_time(tmp_path):
    b = _back(crash_run(tmp_path / "run", back_at=14.0, ready_again=15.0))
    c = _judge(b, "swarm-liveness:require=down+replace+rejoin")
    assert _part(c, "rejoin")["verdict"] == "VALID", _part(c, "rejoin")
    assert c.verdict == Verdict.VALID


def test_rejoin_invalid_when_the_back_worker_is_never_ready_again(tmp_path):
    """What the planted stale_worker_identity does after a wipe: the leader never hears it."""
    b = _back(crash_run(tmp_path / "run", back_at=14.0, ready_again=None, end=50.0))
    c = _judge(b, "swarm-liveness:require=down+replace+rejoin")
    part = _part(c, "rejoin")
    assert part["verdict"] == "INVALID" and "w2 back at" in part["summary"] and "never READY" in part["summary"]
    assert c.verdict == Verdict.INVALID


def test_rejoin_not_judged_when_the_run_ends_before_its_bound(tmp_path):
    b = _back(crash_run(tmp_path / "run", back_at=14.0, ready_again=None, end=25.0))
    c = _judge(b, "swarm-liveness:require=down+replace+rejoin")
    assert _part(c, "rejoin")["verdict"] == "UNKNOWN"   # the leader's journal ends first: skipped
    assert c.verdict != Verdict.INVALID


def test_rejoin_is_not_required_by_default(tmp_path):
    b = crash_run(tmp_path / "run", back_at=14.0, ready_again=15.0)   # the worker's journal shows no new boot
    c = _judge(b)
    assert "rejoin" in c.evidence["not_applicable"] and c.verdict == Verdict.VALID
