"""The nemesis in a control run (faults logged as `sham`, nothing applied) and the evidence that a
fault took effect (chaos.fault_effect), against fake effects: no Docker."""

from __future__ import annotations

import json
import time

import pytest

from chaos import fault_effect as fe
from chaos.nemesis import FaultLog, Nemesis

from .test_nemesis_pure import W, FakeEffects, _fault


class ProbingEffects(FakeEffects):
    """FakeEffects that also answers the evidence calls: `silent` nodes do not answer, `probe` gives
    each link probe, `agreed` is what a partition's verification saw (None: everything as wanted)."""

    def __init__(self, silent=(), probe=None, agreed=None, boots=None):
        super().__init__()
        self.silent = set(silent)
        self.probe = probe or (lambda link: {"reachable": True, "rtt_ms": 1.0})
        self.agreed = agreed
        self.boots = boots or {}

    def set_partition(self, cut, mode):
        rec = super().set_partition(cut, mode)
        cut_seen = sorted(cut) if self.agreed is None else self.agreed
        rec.update(applied_ts=time.time(), verified_ts=time.time() + 0.001,
                   probed={"cut": [list(x) for x in cut_seen], "open": [["m1", "m3"]], "dropped": []})
        return rec

    def node_op(self, op, node):
        rec = super().node_op(op, node)
        rec.update(applied_ts=time.time(), verified_ts=time.time() + 0.001)
        if op in ("restart", "start"):
            rec["boot"] = self.boots.get(node)
        return rec

    def answers(self, node):
        self._call("answers", node)
        return None if node in self.silent else {"node": node, "boot": 1}

    def link_probes(self, op, links, params):
        self._call("link_probes", op, len(links))
        return [dict(self.probe(link), link=f"{link[0]}->{link[1]}") for link in links[:4]]


def _run(faults, eff, tmp_path, control=False):
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log, control=control)
    nem.start(time.monotonic())
    assert nem.wait(10)
    heal = nem.final_heal()
    rows = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    return nem, rows, heal


SCHEDULE = [
    _fault("cut", "partition", at=0.0, spec={"isolate": "leader"}),
    _fault("k", "kill", at=0.05, spec={"target": {"role": "workers", "count": 1}}),
    _fault("slow", "latency", after="cut", spec={"target": "leader", "ms": 200}),
    _fault("p", "pause", at=0.0, for_s=None, spec={"target": {"of": "k"}},
           until={"condition": "term-reached", "term": 99}, max_s=0.3),
]


# -- control: nothing applied --------------------------------------------------------------------


def test_nemesis_control_applies_nothing_and_logs_sham_rows(tmp_path):
    eff = ProbingEffects()
    SCHEDULE[3]["start"] = {"after": "k", "delay_s": 0.0}  # `of: k` needs k fired first
    nem, rows, heal = _run(SCHEDULE, eff, tmp_path, control=True)
    assert eff.calls == [], f"a control run must not touch the cluster: {eff.calls}"
    assert eff.partition == frozenset()
    assert {r["action"] for r in rows} == {"sham", "heal"}, rows
    for fid in ("cut", "k", "slow", "p"):
        shams = [r for r in rows if r["fault"] == fid]
        assert [r["details"]["would"] for r in shams] == ["start", "stop"], fid
        assert all(r["details"]["applied"] is False for r in shams)
        assert shams[0]["targets"], f"{fid}: the sham records the targets it would have had"
    by = {r["fault"]: r for r in rows if r.get("details", {}).get("would") == "start"}
    assert by["cut"]["targets"] == ["m2"]                      # isolate: leader
    assert by["k"]["targets"][0] in W and by["p"]["targets"] == by["k"]["targets"]  # `of: k` resolved
    stop_cut = next(r for r in rows if r["fault"] == "cut" and r["details"]["would"] == "stop")
    slow_start = by["slow"]
    assert slow_start["ts"] >= stop_cut["ts"], "after-chains keep their shape in a control run"
    p_stop = next(r for r in rows if r["fault"] == "p" and r["details"]["would"] == "stop")
    assert p_stop["details"]["until"]["met"] is False  # held to its max like a real fault
    assert heal["details"] == {"control": True, "applied": False}
    assert not any("effect" in r or "applied_ts" in r for r in rows)


def test_nemesis_real_run_applies_what_control_does_not(tmp_path):
    """The same schedule without --control does call the effects (the fake can tell the difference)."""
    eff = ProbingEffects(silent=set(W))
    SCHEDULE[3]["start"] = {"after": "k", "delay_s": 0.0}
    _, rows, _ = _run(SCHEDULE, eff, tmp_path, control=False)
    kinds = {c[0] for c in eff.calls}
    assert {"partition", "kill", "add", "pause", "heal"} <= kinds
    assert not any(r["action"] == "sham" for r in rows)


# -- start records: applied_ts and verified_ts ------------------------------------------------------


def test_nemesis_start_records_carry_applied_and_verified_ts(tmp_path):
    eff = ProbingEffects()
    _, rows, _ = _run([_fault("cut", "partition", at=0.0, spec={"isolate": "leader"}),
                       _fault("k", "kill", at=0.0, spec={"target": ["w1", "w2"]})], eff, tmp_path)
    for r in (r for r in rows if r["action"] == "start"):
        assert isinstance(r["applied_ts"], float) and isinstance(r["verified_ts"], float)
        assert r["applied_ts"] <= r["verified_ts"], r
        assert "applied_ts" not in r["details"], "lifted to the record, not duplicated"


def test_nemesis_start_stamps_fall_back_to_now_without_effects_stamps(tmp_path):
    eff = FakeEffects()  # an effects object that records no times
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([_fault("l", "latency", at=0.0, spec={"target": "leader", "ms": 5})], eff, log)
    nem.start(time.monotonic())
    assert nem.wait(5)
    start = next(r for r in log.rows if r["action"] == "start")
    assert start["applied_ts"] == start["verified_ts"] <= start["ts"]
    stop = next(r for r in log.rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is False  # no evidence could be taken: never a pass


# -- effect evidence through the nemesis -----------------------------------------------------------


def test_nemesis_partition_effect_from_its_verification(tmp_path):
    _, rows, _ = _run([_fault("cut", "partition", at=0.0, spec={"isolate": "leader"})], ProbingEffects(), tmp_path)
    start = next(r for r in rows if r["action"] == "start")
    assert start["effect"]["effective"] is True and start["effect"]["evidence"]["probed_cut"] > 0
    assert "probed" not in start["details"]


def test_nemesis_partition_whose_cut_no_probe_saw_is_not_effective(tmp_path):
    eff = ProbingEffects(agreed=[])  # the verification probed none of its links as cut
    _, rows, _ = _run([_fault("cut", "partition", at=0.0, spec={"isolate": "leader"})], eff, tmp_path)
    start = next(r for r in rows if r["action"] == "start")
    assert start["effect"]["effective"] is False


@pytest.mark.parametrize("silent, boots, effective", [
    ({"w1"}, {}, True),             # stopped answering while killed
    (set(), {"w1": 2}, True),        # answered (wrongly) but booted again: boot 1 -> 2 ...
    (set(), {}, False),              # a kill that did nothing: still answering, no reboot seen
])
def test_nemesis_node_fault_effect(tmp_path, silent, boots, effective):
    eff = ProbingEffects(silent=silent, boots=boots)
    # ... boot before comes from the view: give w1 a status with boot 1
    orig = eff.view

    def view():
        v = orig()
        return type(v)(v.managers, v.workers, {**v.statuses, "w1": {"boot": 1}})
    eff.view = view
    _, rows, _ = _run([_fault("k", "kill", at=0.0, spec={"target": "w1"})], eff, tmp_path)
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is effective, stop["effect"]


@pytest.mark.parametrize("probe, effective", [
    (lambda link: {"reachable": True, "rtt_ms": 230.0}, True),   # late by the added 200 ms
    (lambda link: {"reachable": False, "rtt_ms": None}, True),   # held past the probe's timeout
    (lambda link: {"reachable": True, "rtt_ms": 2.0}, False),    # a toxic that did not act
])
def test_nemesis_latency_effect(tmp_path, probe, effective):
    eff = ProbingEffects(probe=probe)
    _, rows, _ = _run([_fault("slow", "latency", at=0.0, spec={"target": "leader", "ms": 200})], eff, tmp_path)
    stop = next(r for r in rows if r["action"] == "stop")
    assert stop["effect"]["effective"] is effective, stop["effect"]


def test_nemesis_evidence_time_is_taken_out_of_the_hold(tmp_path):
    """A `for` fault lasts `for` from its start record, however long the evidence took."""
    def slow_probe(link):
        time.sleep(0.2)
        return {"reachable": True, "rtt_ms": 250.0}
    eff = ProbingEffects(probe=slow_probe)
    _, rows, _ = _run([_fault("slow", "latency", at=0.0, for_s=0.5, spec={"target": "leader", "ms": 200})],
                      eff, tmp_path)
    r = {x["action"]: x for x in rows}
    assert r["intend-stop"]["ts"] - r["start"]["ts"] < 0.5 + 0.6  # four probes (0.8 s serial) not added


# -- chaos.fault_effect tables ----------------------------------------------------------------------


def test_fault_effect_partition_table():
    cut = {("m1", "m2"), ("m2", "m1")}
    assert fe.partition_effect(cut, [("m1", "m2")], [("m1", "m3")])["effective"] is True
    assert fe.partition_effect(cut, [], [("m1", "m3")])["effective"] is False
    assert fe.partition_effect(cut, [("m3", "m1")], [])["effective"] is False  # another fault's link
    assert fe.partition_effect(set(), [], [])["effective"] is False


def test_fault_effect_node_tables():
    assert fe.node_down_effect({"m1": None, "m2": None})["effective"] is True
    assert fe.node_down_effect({"m1": None, "m2": {"boot": 1}})["effective"] is False
    assert fe.node_down_effect({})["effective"] is False
    assert fe.node_back_effect({"w1": 1}, {"w1": 2})["effective"] is True
    assert fe.node_back_effect({"w1": 2}, {"w1": 2})["effective"] is False
    assert fe.node_back_effect({"w1": None}, {"w1": 2})["effective"] is False


@pytest.mark.parametrize("op, params, probes, effective", [
    ("latency", {"ms": 150, "jitter_ms": 100}, [{"reachable": True, "rtt_ms": 55}], True),
    ("latency", {"ms": 150, "jitter_ms": 100}, [{"reachable": True, "rtt_ms": 45}], False),
    # a loaded machine delays a few probes without any toxic: most must be late
    ("latency", {"ms": 200}, [{"reachable": True, "rtt_ms": 250}] + [{"reachable": True, "rtt_ms": 3}] * 3, False),
    ("latency", {"ms": 200}, [{"reachable": True, "rtt_ms": 250}] * 3 + [{"reachable": True, "rtt_ms": 3}], True),
    ("flaky-latency", {"latency": 200}, [{"reachable": True, "rtt_ms": 250}] + [{"reachable": True, "rtt_ms": 3}] * 9,
     True),
    ("stall", {"ms": 5000}, [{"reachable": False, "rtt_ms": None}], True),
    ("reset", {}, [{"reachable": True, "rtt_ms": 1}], False),
    ("reset", {}, [{"reachable": True, "rtt_ms": 1}, {"reachable": False, "rtt_ms": None}], True),
    ("flaky-cut", {"toxicity": 0.3}, [{"reachable": True, "rtt_ms": 1}] * 24, False),
    ("bandwidth", {"kb_s": 2}, [{"reachable": True, "rtt_ms": 3}], True),
    ("bandwidth", {"kb_s": 2}, [{"reachable": False, "rtt_ms": None}], False),
    ("limit", {"bytes": 10_000}, [{"reachable": True, "rtt_ms": 1}], True),
    ("latency", {"ms": 150}, [], False),
])
def test_fault_effect_link_table(op, params, probes, effective):
    got = fe.link_effect(op, params, probes)
    assert got["effective"] is effective, got
    if op == "bandwidth" and effective:
        assert got["acted"] == "listed-while-carrying"  # the weaker evidence says what it is


def test_fault_effect_probe_timeout_sees_the_delay():
    assert fe.probe_timeout_ms("latency", {"ms": 200}) >= 2 * 200
    assert fe.probe_timeout_ms("stall", {"ms": 60_000}) == 3000
    assert fe.probe_timeout_ms("reset", {}) == 500
