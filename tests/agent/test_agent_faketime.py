"""The agent under libfaketime (the `clock` fault's mechanism, chaos/clock.py), as local processes:
it starts with the preload, creates the control file with the neutral spec before anything else,
reports its clocks and the spec in /status, keeps serving while its clocks jump and drift, and
reads a rewritten spec at once (FAKETIME_NO_CACHE). Needs Debian's libfaketime on the host
(`apt-get install libfaketime`); skipped with that reason without it."""

from __future__ import annotations

import glob
import os
import time

import pytest

from swarmnode.agent.faketime import write_spec
from swarmnode.agent.localcluster import LocalCluster, call_until_ok, wait_for

LIBS = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
_needs_lib = pytest.mark.skipif(not LIBS, reason="libfaketime is not installed on this host "
                                                 "(apt-get install libfaketime)")


def _clock(lc: LocalCluster, node: str) -> tuple[float, dict]:
    sent = time.time()
    st = lc.status(node)
    got = time.time()
    assert st is not None, lc.log_tail(node)
    return (sent + got) / 2, st["clock"]


@_needs_lib
def test_agent_clock_follows_the_control_file(tmp_path):
    rc = str(tmp_path / "faketime.rc")
    lc = LocalCluster(str(tmp_path / "c"), managers=1, workers=0,
                      extra_env={"LD_PRELOAD": LIBS[0], "FAKETIME_TIMESTAMP_FILE": rc, "FAKETIME_NO_CACHE": "1"})
    try:
        lc.start_all()
        assert wait_for(lambda: lc.leader(), 20), lc.log_tail("m1")
        assert open(rc).read().strip() == "+0 x1"          # written by the agent before anything else
        real, clk = _clock(lc, "m1")
        assert clk["faketime"] == {"preloaded": True, "spec": "+0 x1"}
        assert abs(clk["wall"] - real) < 0.5
        mono0 = clk["monotonic"]

        write_spec(rc, "-30 x1")                         # a jump back: wall and monotonic clocks
        real2, clk2 = _clock(lc, "m1")
        assert clk2["faketime"]["spec"] == "-30 x1"
        assert clk2["wall"] - real2 == pytest.approx(-30, abs=0.5)
        assert (clk2["monotonic"] - mono0) - (real2 - real) == pytest.approx(-30, abs=0.5)
        url = [lc.url("m1", "/kv/k")]
        code, _ = call_until_ok("PUT", url, {"value": 7, "client_id": "t", "seq": 1})
        assert code == 200                              # still serving with its clocks 30 s back
        code, body = call_until_ok("GET", url, None)
        assert code == 200 and body["value"] == 7

        write_spec(rc, "+0 x3")                         # fast clock: 3 x real time (rate counts from
        real3, a = _clock(lc, "m1")                     # the process's start: a leap, then x3)
        time.sleep(1.0)
        real4, b = _clock(lc, "m1")
        assert (b["wall"] - a["wall"]) / (real4 - real3) == pytest.approx(3.0, abs=0.3)

        write_spec(rc, "+0 x1")                         # real time again (the rate named: libfaketime
        real5, clk5 = _clock(lc, "m1")                  # keeps the last rate when a spec has none)
        assert abs(clk5["wall"] - real5) < 0.5
        assert lc.alive("m1"), lc.log_tail("m1")
    finally:
        lc.stop_all()


def test_agent_without_the_preload_reports_it(tmp_path):
    lc = LocalCluster(str(tmp_path / "c"), managers=1, workers=0)
    try:
        lc.start_all()
        assert wait_for(lambda: lc.leader(), 20), lc.log_tail("m1")
        st = lc.status("m1")
        assert st["clock"]["faketime"] == {"preloaded": False, "spec": None}
        assert not os.path.exists(os.path.join(lc.workdir, "m1", "faketime.rc"))
    finally:
        lc.stop_all()


def test_agent_with_a_missing_preload_says_it_is_not_preloaded(tmp_path):
    """LD_PRELOAD naming a library that is not there (a base without libfaketime) is only a loader
    warning: the agent must not claim its clocks can be moved."""
    lc = LocalCluster(str(tmp_path / "c"), managers=1, workers=0,
                      extra_env={"LD_PRELOAD": "/nonexistent/faketime/libfaketime.so.1",
                                 "FAKETIME_TIMESTAMP_FILE": str(tmp_path / "faketime.rc")})
    try:
        lc.start_all()
        assert wait_for(lambda: lc.leader(), 20), lc.log_tail("m1")
        assert lc.status("m1")["clock"]["faketime"] == {"preloaded": False, "spec": None}
    finally:
        lc.stop_all()
