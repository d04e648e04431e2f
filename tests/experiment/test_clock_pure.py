"""The `clock` fault without Docker: schema, plan, the libfaketime specs the harness writes, the
evidence that a node's clock moved (chaos.clock.clock_effect), and the nemesis driving a fake node
whose clock follows (or, deliberately broken, ignores) the control file."""

from __future__ import annotations

import json
import threading
import time

import pytest

from chaos import clock as C
from chaos.env.spec import ClusterSpec
from chaos.experiment import plan as plan_mod
from chaos.experiment import schema as S
from chaos.experiment.loader import load_text
from chaos.nemesis import FaultLog, Nemesis, View

BASE = "version: 1\nname: c\ncluster: {managers: 3, workers: 1}\nschedule:\n"


class _Loaded:
    def __init__(self, exp):
        self.experiment = exp


def _load(item: str):
    exp, problems = load_text(BASE + "  - " + item + "\n", "t.yaml")
    errors = [p for p in problems if p.severity == "error"]
    if exp is None or errors:
        raise ValueError("; ".join(f"{p.line}:{p.col}: {p.message}" for p in errors))
    return _Loaded(exp)


def test_clock_schema_accepts_offset_rate_and_strobe():
    loaded = _load("{at: 1s, for: 5s, fault: clock, target: leader, offset: -3s}")
    f = loaded.experiment.schedule[0]
    assert isinstance(f, S.ClockFault) and f.offset == -3.0 and f.rate is None
    assert _load("{at: 1s, for: 5s, fault: clock, target: m2, rate: 1.5}").experiment.schedule[0].rate == 1.5
    st = _load("{at: 1s, for: 5s, fault: clock, target: all, strobe: {every: 500ms, jump: +2s}}")
    assert st.experiment.schedule[0].strobe.every == 0.5 and st.experiment.schedule[0].strobe.jump == 2.0


@pytest.mark.parametrize("item, words", [
    ("{at: 1s, for: 5s, fault: clock, target: leader}", "non-zero `offset`"),
    ("{at: 1s, for: 5s, fault: clock, target: leader, rate: 1}", "non-zero `offset`"),
    ("{at: 1s, for: 5s, fault: clock, target: leader, rate: 0}", "greater than 0"),
    ("{at: 1s, for: 5s, fault: clock, target: leader, rate: 2, strobe: {every: 1s, jump: 1s}}", "not both"),
    ("{at: 1s, for: 5s, fault: clock, target: leader, strobe: {every: 100ms, jump: 1s}}", "at least 200ms"),
    ("{at: 1s, for: 5s, fault: clock, target: leader, strobe: {every: 1s, jump: 0s}}", "must not be 0"),
    ("{at: 1s, for: 5s, fault: clock, target: leader, offset: 3x}", "not a duration"),
    ("{at: 1s, for: 5s, fault: clock, target: m9, offset: 1s}", "m9"),
])
def test_clock_schema_refuses_bad_faults_with_a_position(item, words):
    with pytest.raises(ValueError) as info:
        _load(item)
    assert words in str(info.value)
    assert str(info.value)[:1].isdigit()  # line:col


def test_clock_signed_durations():
    assert S.parse_signed_duration("-3s") == -3.0
    assert S.parse_signed_duration("+500ms") == 0.5
    assert S.parse_signed_duration(-2) == -2.0
    assert S.parse_signed_duration("2m") == 120.0
    with pytest.raises(ValueError):
        S.parse_signed_duration("--3s")


def test_clock_plan_lists_it_and_random_blocks_draw_it():
    exp, _ = load_text(BASE + "  - {name: skew, at: 1s, for: 5s, fault: clock, target: leader, offset: -3s}\n"
                              "  - random: {from: 10s, to: 30s, kinds: [clock], duration: [1s, 2s]}\n", "t.yaml")
    loaded = _Loaded(exp)
    plan = plan_mod.expand(loaded.experiment, 5)
    kinds = {f["kind"] for f in plan["faults"]}
    assert kinds == {"clock"}
    drawn = [f for f in plan["faults"] if f["id"] != "skew"]
    assert drawn and all(f["spec"]["offset"] == plan_mod.RANDOM_PARAMS["clock"]["offset"] for f in drawn)
    lines = "\n".join(plan_mod.render(plan))
    assert "clock leader offset=-3.0" in lines
    assert json.dumps(plan_mod.expand(loaded.experiment, 5)) == json.dumps(plan)


def test_clock_json_schema_names_the_kind():
    text = json.dumps(S.json_schema())
    assert '"clock"' in text and "strobe" in text


def test_clock_specs_libfaketime_reads():
    assert C.offset_spec(-3.0) == "-3 x1"    # the rate is always named: libfaketime keeps the last one
    assert C.offset_spec(0.0) == "+0 x1" == C.NEUTRAL_SPEC
    assert C.offset_spec(1.25) == "+1.25 x1"
    # a rate counts from the process's start: the offset cancels the leap for a 100 s old agent
    assert C.rate_spec(0.0, 1.5, now_wall=1100.0, started_wall=1000.0) == "-50 x1.5"
    assert C.rate_spec(-2.0, 0.5, now_wall=1010.0, started_wall=1000.0) == "+3 x0.5"


def test_clock_env_only_for_clusters_that_ask():
    plain = ClusterSpec(name="c", managers=1, workers=0)
    faked = ClusterSpec(name="c", managers=1, workers=0, faketime=True)
    topo = plain.topology()
    assert "LD_PRELOAD" not in plain.node_env("m1", topo)
    env = faked.node_env("m1", topo)
    assert env["LD_PRELOAD"].endswith("libfaketime.so.1")
    assert env["FAKETIME_TIMESTAMP_FILE"] == C.CONTROL_FILE and env["FAKETIME_NO_CACHE"] == "1"


def _reading(real: float, skew: float, rtt: float = 0.01, preloaded: bool = True) -> dict:
    return {"sent": real - rtt / 2, "received": real + rtt / 2,
            "clock": {"wall": real + skew, "monotonic": real + skew,
                      "faketime": {"preloaded": preloaded, "spec": "x"}}}


def test_clock_effect_seen_when_the_clock_moved_by_the_offset():
    eff = C.clock_effect({"offset_s": -3.0}, {"m1": {"before": _reading(100, 0.0), "after": [_reading(101, -2.98)]}})
    assert eff["effective"] is True
    assert eff["evidence"]["nodes"]["m1"]["moved_s"] == pytest.approx(-2.98)


def test_clock_effect_not_seen_when_the_clock_did_not_move():
    # the deliberately wrong system: the control file was written but the clock stayed real
    eff = C.clock_effect({"offset_s": -3.0}, {"m1": {"before": _reading(100, 0.0), "after": [_reading(101, 0.0)]}})
    assert eff["effective"] is False and "moved +0.000 s, not -3.000 s" in eff["why"]
    unread = C.clock_effect({"offset_s": -3.0}, {"m1": {"before": _reading(100, 0.0), "after": [None]}})
    assert unread["effective"] is False and "could not be read" in unread["why"]
    bare = C.clock_effect({"offset_s": -3.0}, {"m1": {"before": None,
                                                        "after": [_reading(101, -3.0, preloaded=False)]}})
    assert bare["effective"] is False and "not preloaded" in bare["why"]
    assert C.clock_effect({"offset_s": 1.0}, {})["effective"] is False


def test_clock_effect_strobe_either_state_but_never_no_movement():
    asked = {"offset_s": 5.0, "strobe": {"every": 0.2, "jump": 5.0}}   # flips between +5 s and real time
    assert C.clock_effect(asked, {"m1": {"before": _reading(100, 0), "after": [_reading(101, 5.0)]}})["effective"]
    still = C.clock_effect(asked, {"m1": {"before": _reading(100, 0), "after": [_reading(101, 0.0)]}})
    assert still["effective"] is False          # the real-time state cannot be told from no effect
    two = {"offset_s": 3.0, "strobe": {"every": 0.2, "jump": 5.0}}     # flips between +3 s and -2 s
    assert C.clock_effect(two, {"m1": {"before": _reading(100, 0), "after": [_reading(101, -2.0)]}})["effective"]


def test_clock_effect_rate_measured_from_two_readings():
    fast = {"m1": {"before": _reading(100, 0), "after": [_reading(101, 0.0), _reading(103, 1.0)]}}
    assert C.clock_effect({"offset_s": 0.0, "rate": 1.5}, fast)["effective"] is True
    real = {"m1": {"before": _reading(100, 0), "after": [_reading(101, 0.0), _reading(103, 0.0)]}}
    got = C.clock_effect({"offset_s": 0.0, "rate": 1.5}, real)
    assert got["effective"] is False and "not 1.5" in got["why"]


# -- the nemesis against a fake node clock ------------------------------------------------------


class FakeClockNodes:
    """Nodes whose clocks follow the control file the harness writes (libfaketime's offset and
    rate), unless `broken` (the file is written but the clock ignores it)."""

    def __init__(self, broken: bool = False):
        self.broken = broken
        self.lock = threading.Lock()
        self.specs: dict[str, list[str]] = {}
        self.started = time.time() - 50.0

    def view(self):
        return View(("m1", "m2", "m3"), ("w1",), {m: {"role": "leader" if m == "m2" else "follower", "term": 3}
                                                   for m in ("m1", "m2", "m3")})

    def leader_store(self, leader):
        return None

    def heal_all(self):
        return {}

    def clock_write(self, node, spec):
        with self.lock:
            self.specs.setdefault(node, []).append(spec)
        return {"spec": spec, "applied_ts": time.time(), "verified_ts": time.time()}

    def clock_started(self, node):
        return self.started

    def _now(self, node, real):
        spec = (self.specs.get(node) or ["+0 x1"])[-1]
        if self.broken:
            return real
        off, _, rate = spec.partition(" x")
        r = float(rate) if rate else 1.0
        return self.started + (real - self.started) * r + float(off)

    def clock_read(self, node):
        real = time.time()
        with self.lock:
            wall = self._now(node, real)
        return {"sent": real - 0.001, "received": real + 0.001,
                "clock": {"wall": wall, "monotonic": wall, "faketime": {"preloaded": True}}}


def _clock_fault(fid, spec, for_s=0.6):
    return {"id": fid, "kind": "clock", "start": {"at_s": 0.0}, "for_s": for_s, "until": None, "max_s": None,
            "spec": {"fault": "clock", "target": "leader", **spec}, "seed": 1, "origin": "t"}


def _run(fault, eff, tmp_path):
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([fault], eff, log)
    nem.start(time.monotonic())
    assert nem.wait(15)
    nem.final_heal()
    log.close()
    return [json.loads(l) for l in (tmp_path / "faults.jsonl").read_text().splitlines()]


def test_clock_nemesis_offset_applied_verified_and_undone(tmp_path):
    eff = FakeClockNodes()
    rows = _run(_clock_fault("skew", {"offset": -3.0}), eff, tmp_path)
    assert eff.specs["m2"] == ["-3 x1", "+0 x1"] and set(eff.specs) == {"m2"}
    start = next(r for r in rows if r["action"] == "start")
    stop = next(r for r in rows if r["action"] == "stop")
    assert start["targets"] == ["m2"] and "applied_ts" in start and "verified_ts" in start
    assert stop["effect"]["effective"] is True, stop["effect"]
    assert stop["effect"]["evidence"]["nodes"]["m2"]["moved_s"] == pytest.approx(-3.0, abs=0.05)


def test_clock_nemesis_broken_clock_is_not_effective(tmp_path):
    rows = _run(_clock_fault("skew", {"offset": -3.0}), FakeClockNodes(broken=True), tmp_path)
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is False


def test_clock_nemesis_rate_is_measured(tmp_path):
    eff = FakeClockNodes()
    rows = _run(_clock_fault("drift", {"offset": 0.0, "rate": 2.0}, for_s=1.0), eff, tmp_path)
    assert eff.specs["m2"][0].endswith(" x2") and eff.specs["m2"][-1] == "+0 x1"
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is True, stop["effect"]
    assert stop["effect"]["evidence"]["nodes"]["m2"]["rate_seen"] == pytest.approx(2.0, abs=0.1)


def test_clock_nemesis_strobe_flips_then_returns_to_real_time(tmp_path):
    eff = FakeClockNodes()
    rows = _run(_clock_fault("strobe", {"offset": 0.0, "strobe": {"every": 0.2, "jump": 5.0}}, for_s=1.0),
                eff, tmp_path)
    specs = eff.specs["m2"]
    assert specs[0] == "+5 x1" and specs[-1] == "+0 x1" and specs[1] == "+0 x1" and specs.count("+5 x1") >= 2
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["details"]["flips"] >= 2 and stop["effect"]["effective"] is True


def test_clock_nemesis_a_later_fault_takes_the_node_over(tmp_path):
    """Two clock faults on one node overlapping (a repeat fired late): the earlier one's end must not
    bring the node back to real time under the later one; the later one's end does."""
    eff = FakeClockNodes()
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([_clock_fault("a", {"offset": -3.0}, for_s=0.8),
                   dict(_clock_fault("b", {"offset": 4.0}, for_s=1.0), start={"at_s": 0.4})], eff, log)
    nem.start(time.monotonic())
    assert nem.wait(15)
    nem.final_heal()
    log.close()
    assert eff.specs["m2"] == ["-3 x1", "+4 x1", "+0 x1"]
    rows = [json.loads(x) for x in (tmp_path / "faults.jsonl").read_text().splitlines()]
    stop_a = next(r for r in rows if r["action"] == "stop" and r["fault"] == "a")
    assert stop_a["details"]["nodes"]["m2"] == {"kept": True, "taken_over_by": "b"}


def test_clock_probe_from_a_slowed_node_gets_a_longer_http_timeout():
    """The agent times a partition probe on its own clock: from a node at 0.05 x a 100 ms probe
    lasts 2 s of real time, so the harness's HTTP timeout stretches by 1 / rate (a correct run was
    a harness error at load 44 when it did not)."""
    from unittest import mock

    from chaos.env.cluster import Cluster

    c = Cluster.__new__(Cluster)
    c.clock_rates = {"m2": 0.05}
    c._http = mock.Mock()
    c._http.post.return_value.json.return_value = {"ok": True, "reachable": False}
    c.api_url = lambda n: f"http://{n}"
    c.probe("m2", "m1", 100)
    assert c._http.post.call_args.kwargs["timeout"] == pytest.approx(0.1 / 0.05 + 2)
    c.probe("m1", "m2", 100)
    assert c._http.post.call_args.kwargs["timeout"] == pytest.approx(0.1 + 2)
