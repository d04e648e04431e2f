"""The nemesis's pure parts (selectors, partition shapes, link sets, until conditions) and its
scheduling against fake effects: times, records, until, after-chains, overlap, failure, abort."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from chaos.errors import FaultError, FaultRefused
from chaos.nemesis import (FaultLog, Nemesis, NoLeader, View, fault_links, partition_cut, resolve_target,
                           until_met)

M, W = ("m1", "m2", "m3"), ("w1", "w2", "w3", "w4")


def view(leader="m2", term=3, **extra):
    st = {m: {"role": "leader" if m == leader else "follower", "term": term, "leader": leader} for m in M}
    for k, v in extra.items():
        st[k] = v
    return View(M, W, st)


@pytest.mark.parametrize("target, want", [
    ("leader", ["m2"]), ("followers", ["m1", "m3"]), ("managers", list(M)), ("workers", list(W)),
    ("w3", ["w3"]), (["leader", "w1"], ["m2", "w1"]),
    ({"role": "workers", "count": 2, "pick": "first"}, ["w1", "w2"]),
    ({"role": "managers", "count": "majority", "pick": "first"}, ["m1", "m2"]),
    ({"role": "managers", "count": "minority", "pick": "first"}, ["m1"]),
    (["leader", {"role": "followers", "count": "one", "pick": "first"}], ["m1", "m2"]),
    ({"role": "all", "count": "all"}, list(M + W)),
])
def test_nemesis_resolve_target_table(target, want):
    assert resolve_target(target, view(), random.Random(0)) == want


def test_nemesis_resolve_random_pick_is_seeded_and_within_candidates():
    picks = {tuple(resolve_target({"role": "workers", "count": 2}, view(), random.Random(s))) for s in range(40)}
    assert len(picks) > 1 and all(set(p) <= set(W) and len(p) == 2 for p in picks)
    a = resolve_target({"role": "workers", "count": 2}, view(), random.Random(9))
    assert a == resolve_target({"role": "workers", "count": 2}, view(), random.Random(9))


def test_nemesis_resolve_leader_without_leader_raises():
    v = View(M, W, {m: {"role": "follower", "term": 2, "leader": None} for m in M})
    assert v.leader is None
    with pytest.raises(NoLeader):
        resolve_target("followers", v, random.Random(0))


def test_nemesis_leader_is_the_highest_term_claimant():
    v = view(leader="m2", term=3, m1={"role": "leader", "term": 5, "leader": "m1"})
    assert v.leader == "m1"


def test_nemesis_partition_shapes():
    v = view()
    cut, targets = partition_cut({"isolate": "leader"}, v, random.Random(0))
    assert targets == ["m2"] and ("m2", "m1") in cut and ("w1", "m2") in cut and ("m1", "m3") not in cut
    cut, targets = partition_cut({"groups": [["m1", "w1"]], "rest": "own"}, v, random.Random(0))
    assert ("m1", "w1") not in cut and ("m1", "m2") in cut and ("m2", "m1") in cut
    cut, targets = partition_cut({"one-way": {"from": "leader", "to": "followers"}}, v, random.Random(0))
    assert cut == {("m2", "m1"), ("m2", "m3")} and targets == [["m2"], ["m1", "m3"]]
    cut, targets = partition_cut({"shape": "bridge", "among": "managers", "bridge": "leader"}, v, random.Random(0))
    assert cut == {("m1", "m3"), ("m3", "m1")}
    cut, _ = partition_cut({"shape": "majorities-ring", "among": "all"}, v, random.Random(1))
    assert cut and all((b, a) in cut for a, b in cut)


def test_nemesis_fault_links_directions():
    v = view()
    out, t = fault_links({"target": "leader", "peers": "followers", "direction": "out"}, v, random.Random(0))
    assert out == [("m2", "m1"), ("m2", "m3")] and t == ["m2"]
    inn, _ = fault_links({"target": "leader", "peers": "followers", "direction": "in"}, v, random.Random(0))
    assert inn == [("m1", "m2"), ("m3", "m2")]
    both, _ = fault_links({"target": "managers", "direction": "both"}, v, random.Random(0))
    assert len(both) == 3 * 6 + 3 * 4 and ("m1", "m1") not in both


def test_nemesis_until_conditions():
    ctx = {"start_term": 3, "targets": ["w2"]}
    assert until_met({"condition": "new-leader"}, view(term=3), ctx)[0] is False
    assert until_met({"condition": "new-leader"}, view(leader="m3", term=4), ctx)[0] is True
    assert until_met({"condition": "term-reached", "term": 4}, view(term=4), ctx)[0] is True
    lag = view(m2={"role": "leader", "term": 3, "leader": "m2", "commit_index": 500})
    lag = View(M, W, {**lag.statuses, "w2": {"applied_index": 10}})
    assert until_met({"condition": "target-lags", "entries": 100}, lag, ctx)[0] is True
    assert until_met({"condition": "target-lags", "entries": 1000}, lag, ctx)[0] is False
    down = view(m2={"role": "leader", "term": 3, "leader": "m2", "workers": {"w2": "down"}})
    assert until_met({"condition": "worker-down"}, down, ctx)[0] is True
    assert until_met({"condition": "worker-down"}, view(), ctx)[0] is False
    store = {"nodes": {w: {"state": "ready"} for w in W}, "services": {"web": {"replicas": 2}},
             "tasks": {"t1": {"service": "web", "worker": "w2", "state": "running"},
                       "t2": {"service": "web", "worker": "w1", "state": "running"}}}
    assert until_met({"condition": "replicas-restored"}, view(), {**ctx, "store": store})[0] is False
    store["tasks"]["t3"] = {"service": "web", "worker": "w3", "state": "running"}
    assert until_met({"condition": "replicas-restored"}, view(), {**ctx, "store": store})[0] is True


# -- scheduling against fake effects -------------------------------------------------------------


class FakeEffects:
    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple] = []
        self.lock = threading.Lock()
        self.leader, self.term = "m2", 3
        self.partition: frozenset = frozenset()
        self.fail_on = fail_on

    def view(self):
        return view(self.leader, self.term)

    def leader_store(self, leader):
        return None

    def _call(self, *c):
        with self.lock:
            self.calls.append(c)
        if self.fail_on and self.fail_on == c[0]:
            raise FaultError(f"{c[0]} could not be verified")

    def set_partition(self, cut, mode):
        self.partition = cut
        self._call("partition", len(cut), mode)
        return {"links_cut": len(cut)}

    def add_link_fault(self, op, links, params):
        self._call("add", op, len(links))
        return {}

    def remove_link_fault(self, op, links):
        self._call("remove", op, len(links))
        return {}

    def node_op(self, op, node):
        self._call(op, node)
        return {"op": op}

    def heal_all(self):
        self._call("heal")
        return {}

    def mark_unavailable(self, node, unavailable):
        self._call("down" if unavailable else "up", node)


def _fault(fid, kind, at=None, for_s=0.2, spec=None, until=None, max_s=None, after=None):
    start = {"at_s": at} if at is not None else {"after": after, "delay_s": 0.0}
    return {"id": fid, "kind": kind, "start": start, "for_s": for_s, "until": until, "max_s": max_s,
            "spec": {"fault": kind, **(spec or {})}, "seed": 1, "origin": "t"}


def _run(faults, eff, tmp_path, timeout=10):
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log)
    nem.start(time.monotonic())
    done = nem.wait(timeout)
    return nem, log, done


def _rows(tmp_path):
    return [json.loads(l) for l in (tmp_path / "faults.jsonl").read_text().splitlines()]


def test_nemesis_runs_timed_faults_and_records_each_step(tmp_path):
    eff = FakeEffects()
    faults = [_fault("a", "partition", at=0.0, spec={"isolate": "leader"}),
              _fault("b", "kill", at=0.1, spec={"target": {"role": "workers", "count": 1}}),
              _fault("c", "latency", after="a", spec={"target": "leader", "ms": 50})]
    nem, log, done = _run(faults, eff, tmp_path)
    assert done
    rows = _rows(tmp_path)
    for fid in ("a", "b", "c"):
        acts = [r["action"] for r in rows if r["fault"] == fid]
        assert acts == ["intend-start", "start", "intend-stop", "stop"], (fid, acts)
        r = {r["action"]: r for r in rows if r["fault"] == fid}
        assert r["intend-start"]["ts"] <= r["start"]["intended_ts"] <= r["start"]["ts"] <= r["stop"]["ts"]
    a_stop = next(r["ts"] for r in rows if r["fault"] == "a" and r["action"] == "stop")
    c_start = next(r["ts"] for r in rows if r["fault"] == "c" and r["action"] == "intend-start")
    assert c_start >= a_stop
    killed = next(r["targets"] for r in rows if r["fault"] == "b" and r["action"] == "start")
    assert [c for c in eff.calls if c[0] == "restart"] == [("restart", killed[0])]
    assert eff.partition == frozenset()  # healed when it ended
    assert all(x >= 0 for x in nem.lateness_s) and len(nem.lateness_s) == 3


def test_nemesis_until_met_ends_early_and_max_bounds_it(tmp_path):
    eff = FakeEffects()
    faults = [_fault("u", "partition", at=0.0, for_s=None, spec={"isolate": "leader"},
                     until={"condition": "new-leader"}, max_s=5.0),
              _fault("v", "pause", at=0.0, for_s=None, spec={"target": "w1"},
                     until={"condition": "term-reached", "term": 99}, max_s=0.4)]

    def elect():
        time.sleep(0.3)
        eff.leader, eff.term = "m3", 4
    threading.Thread(target=elect, daemon=True).start()
    _, _, done = _run(faults, eff, tmp_path)
    assert done
    stops = {r["fault"]: r for r in _rows(tmp_path) if r["action"] == "stop"}
    assert stops["u"]["details"]["until"]["met"] is True and stops["u"]["details"]["until"]["after_s"] < 4
    assert stops["v"]["details"]["until"]["met"] is False and stops["v"]["details"]["until"]["max_s"] == 0.4


def test_nemesis_overlapping_partitions_apply_the_union(tmp_path):
    eff = FakeEffects()
    seen = []
    orig = eff.set_partition

    def spy(cut, mode):
        seen.append(len(cut))
        return orig(cut, mode)
    eff.set_partition = spy
    faults = [_fault("p", "partition", at=0.0, for_s=0.6, spec={"isolate": "m1"}),
              _fault("q", "partition", at=0.2, for_s=0.2, spec={"isolate": "w4"})]
    _run(faults, eff, tmp_path)
    n = len(M + W)
    one = 2 * (n - 1)
    assert seen == [one, 2 * one - 2, one, 0]


def test_nemesis_fault_that_cannot_be_verified_stops_the_run(tmp_path):
    eff = FakeEffects(fail_on="partition")
    faults = [_fault("x", "partition", at=0.0, spec={"isolate": "leader"}),
              _fault("y", "kill", at=5.0, spec={"target": "w1"})]
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log)
    nem.start(time.monotonic())
    with pytest.raises(FaultError, match="could not be verified"):
        nem.wait(5)
    rows = _rows(tmp_path)
    assert [r["action"] for r in rows] == ["intend-start", "error"]
    assert not any(c[0] == "kill" for c in eff.calls), "the schedule must stop at the first harness error"


def test_nemesis_abort_closes_every_active_fault(tmp_path):
    eff = FakeEffects()
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([_fault("z", "pause", at=0.0, for_s=30.0, spec={"target": "w2"})], eff, log)
    nem.start(time.monotonic())
    deadline = time.monotonic() + 5
    while not nem.active() and time.monotonic() < deadline:
        time.sleep(0.01)
    nem.abort("interrupted")
    rows = _rows(tmp_path)
    assert [r["action"] for r in rows] == ["intend-start", "start", "stop"]
    assert rows[-1]["aborted"] is True


def test_nemesis_skips_a_leader_fault_when_no_leader_appears(tmp_path, monkeypatch):
    import chaos.nemesis as nm
    monkeypatch.setattr(nm, "LEADER_WAIT_S", 0.3)
    eff = FakeEffects()
    eff.leader = None
    eff.view = lambda: View(M, W, {m: {"role": "follower", "term": 2} for m in M})
    _, _, done = _run([_fault("s", "partition", at=0.0, spec={"isolate": "leader"})], eff, tmp_path)
    assert done
    rows = _rows(tmp_path)
    assert [r["action"] for r in rows] == ["skipped"] and "no leader" in rows[0]["details"]["reason"]


def test_nemesis_overlapping_link_faults_keep_shared_toxics_until_the_last_ends(tmp_path):
    """Found by the soak benchmark: two latency faults sharing links; the first to end must not
    remove the toxics the other still holds (it removed them and the other's update hit a 404)."""
    eff = FakeEffects()
    removed = []
    eff.remove_link_fault = lambda op, links: removed.append((op, sorted(links))) or {}
    faults = [_fault("l1", "latency", at=0.0, for_s=0.3, spec={"target": "m1", "peers": "managers", "ms": 10}),
              _fault("l2", "latency", at=0.1, for_s=0.5, spec={"target": "managers", "peers": "managers", "ms": 20})]
    _, _, done = _run(faults, eff, tmp_path)
    assert done
    l1_links = {("m1", "m2"), ("m1", "m3"), ("m2", "m1"), ("m3", "m1")}
    # every link of l1 is also l2's: nothing is removed when l1 ends, all six when l2 ends
    assert len(removed) == 1, removed
    assert set(map(tuple, removed[0][1])) >= l1_links and len(removed[0][1]) == 6


def test_nemesis_node_already_down_is_shared_not_hit_twice(tmp_path):
    """Found by the soak benchmark: a pause of the leader while another fault had it paused made the
    engine refuse ('already paused'). The second fault shares the node; the last to end undoes."""
    eff = FakeEffects()
    faults = [_fault("p1", "pause", at=0.0, for_s=0.3, spec={"target": "m2"}),
              _fault("p2", "kill", at=0.1, for_s=0.5, spec={"target": "leader"})]
    _, _, done = _run(faults, eff, tmp_path)
    assert done
    ops = [c for c in eff.calls if c[0] in ("pause", "unpause", "kill", "restart", "down", "up")]
    assert ops == [("down", "m2"), ("pause", "m2"), ("unpause", "m2"), ("up", "m2")], ops
    starts = {r["fault"]: r for r in _rows(tmp_path) if r["action"] == "start"}
    assert starts["p2"]["details"]["nodes"]["m2"]["shared"] is True


def test_nemesis_every_row_it_writes_is_valid_for_the_checkers(tmp_path):
    """The contract between faults.jsonl's writer and its reader (a reader that refused
    `intend-start` turned every real run's recovery check UNKNOWN)."""
    from chaos.checkers.rundir import _validate_fault
    eff = FakeEffects()
    faults = [_fault("a", "partition", at=0.0, spec={"isolate": "leader"}),
              _fault("b", "pause", at=0.0, for_s=5.0, spec={"target": "w1"})]
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log)
    nem.start(time.monotonic())
    nem.wait(0.5)
    nem.final_heal()
    nem.abort("test")
    rows = _rows(tmp_path)
    assert {r["action"] for r in rows} >= {"intend-start", "start", "intend-stop", "stop", "heal"}
    assert [(r["action"], _validate_fault(r)) for r in rows if _validate_fault(r)] == []


def test_nemesis_partition_changes_are_serialised(tmp_path):
    """Found by the random soak: two partitions changing at once applied a stale union. With a slow
    effect, the applied cuts must never overlap in time and the last applied union is the truth."""
    eff = FakeEffects()
    active = []
    overlaps = []
    orig = eff.set_partition

    def slow(cut, mode):
        active.append(1)
        if len(active) > 1:
            overlaps.append(len(active))
        time.sleep(0.05)
        active.pop()
        return orig(cut, mode)
    eff.set_partition = slow
    faults = [_fault(f"p{i}", "partition", at=0.0, for_s=0.1 + 0.01 * i, spec={"isolate": n})
              for i, n in enumerate(["m1", "w1", "w2", "w3"])]
    _, _, done = _run(faults, eff, tmp_path)
    assert done and overlaps == []
    assert eff.partition == frozenset()


class BarrierEffects(FakeEffects):
    """node_op waits until every target's op has begun: a nemesis acting on the targets one after
    the other never gets past the first (the barrier breaks and the op fails)."""

    def __init__(self, parties: int):
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=2.0)

    def node_op(self, op, node):
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            raise FaultError(f"{op} of {node} ran alone: the targets were not hit together") from None
        return super().node_op(op, node)


def test_nemesis_node_fault_on_several_targets_hits_them_together(tmp_path):
    """Two managers killed at one moment and restarted at one moment (a correlated failure), not
    one after the other with the first one's boot in between (measured in Docker before: the second
    restart began 0.4-1 s after the first, when the first answered)."""
    eff = BarrierEffects(2)
    faults = [_fault("k", "kill", at=0.0, for_s=0.3, spec={"target": {"role": "managers", "count": 2}})]
    _, _, done = _run(faults, eff, tmp_path)
    assert done
    rows = {r["action"]: r for r in _rows(tmp_path) if r["fault"] == "k"}
    assert set(rows) >= {"start", "stop"}, rows
    assert len(rows["start"]["targets"]) == 2
    assert sorted(c[0] for c in eff.calls if c[0] in ("kill", "restart")) == ["kill", "kill", "restart", "restart"]


class SlowPauseEffects(FakeEffects):
    """A pause that takes `apply_s` to apply, as on a busy machine (0.48 s was seen at load 30)."""

    def __init__(self, apply_s: float):
        super().__init__()
        self.apply_s = apply_s
        self.pause_started = threading.Event()

    def node_op(self, op, node):
        if op == "pause":
            self.pause_started.set()
            time.sleep(self.apply_s)  # the engine call itself, not a synchronisation stand-in
        return super().node_op(op, node)


def test_nemesis_of_names_a_fault_whose_apply_is_still_running(tmp_path):
    """leader-wakes-cut-off: `freeze` pauses the leader at 4 s and `cut-off` isolates `of: freeze`
    at 4.4 s. On a busy machine the pause took 0.48 s to apply and the partition found `freeze`
    'not fired yet': a harness error (exit 4) for a correct plan. The targets are named the moment
    they are resolved, so the partition isolates the paused node."""
    eff = SlowPauseEffects(apply_s=0.5)
    faults = [_fault("freeze.1", "pause", at=0.0, for_s=1.0, spec={"target": "leader"}),
              _fault("cut-off.1", "partition", at=0.1, for_s=0.5, spec={"isolate": {"of": "freeze"}})]
    nem, _log, done = _run(faults, eff, tmp_path)
    assert done and nem.error is None
    rows = _rows(tmp_path)
    assert not [r for r in rows if r["action"] == "error"], rows
    cut = next(r for r in rows if r["fault"] == "cut-off.1" and r["action"] == "start")
    assert cut["targets"] == ["m2"]  # the leader the freeze chose


def test_nemesis_of_waits_for_an_earlier_fault_whose_thread_runs_late(tmp_path, monkeypatch):
    """The referenced fault's own thread may start late (its leader lookup on a starved machine);
    the referring fault waits for it (bounded by OF_WAIT_S) instead of failing the run."""
    import chaos.nemesis as nm
    eff = FakeEffects()
    slow_view = eff.view
    calls = {"n": 0}
    gate = threading.Event()

    def view_once_slow():
        calls["n"] += 1
        if calls["n"] == 1:
            gate.wait(2)  # the first view (freeze's) answers only once cut-off is waiting
        return slow_view()
    eff.view = view_once_slow
    orig = nm.Nemesis._await_referenced

    def spy(self, f):
        if f["id"].startswith("cut"):
            gate.set()
        return orig(self, f)
    monkeypatch.setattr(nm.Nemesis, "_await_referenced", spy)
    faults = [_fault("freeze.1", "pause", at=0.0, for_s=0.5, spec={"target": "leader"}),
              _fault("cut-off.1", "partition", at=0.05, for_s=0.2, spec={"isolate": {"of": "freeze"}})]
    nem, _log, done = _run(faults, eff, tmp_path)
    assert done and nem.error is None
    assert not [r for r in _rows(tmp_path) if r["action"] == "error"]


def test_nemesis_of_a_fault_that_never_fires_is_still_an_error(tmp_path, monkeypatch):
    import chaos.nemesis as nm
    monkeypatch.setattr(nm, "OF_WAIT_S", 0.3)
    eff = FakeEffects()
    faults = [_fault("cut-off.1", "partition", at=0.0, for_s=0.2, spec={"isolate": {"of": "ghost"}})]
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log)
    nem.start(time.monotonic())
    with pytest.raises(FaultError, match="has not fired yet"):
        nem.wait(5)


class MembershipEffects(FakeEffects):
    """FakeEffects with membership: the configuration as a value the changes edit."""

    def __init__(self, refuse: bool = False):
        super().__init__()
        self.voters, self.learners, self.refuse = ["m1", "m2", "m3"], [], refuse

    def membership_op(self, action, node, force):
        self._call("membership", action, node, force)
        if self.refuse:
            raise FaultError(f"membership {action} {node}: refused: is-voter")
        if action == "remove":
            self.voters = [v for v in self.voters if v != node]
        elif action == "promote":
            self.voters = sorted(set(self.voters) | {node})
        return {"committed": True, "config": {"voters": list(self.voters)}, "applied_ts": 1.0, "verified_ts": 1.0}

    def membership_config(self):
        return {"voters": list(self.voters), "learners": list(self.learners)}


def test_nemesis_membership_resolves_the_leader_when_it_fires_and_is_not_undone(tmp_path):
    eff = MembershipEffects()
    faults = [_fault("rm", "membership", at=0.0, spec={"action": "remove", "target": "leader", "force": True}),
              _fault("add", "membership", after="rm", spec={"action": "promote", "target": "w1"})]
    _nem, _log, done = _run(faults, eff, tmp_path)
    assert done
    assert [c for c in eff.calls if c[0] == "membership"] == [("membership", "remove", "m2", True),
                                                              ("membership", "promote", "w1", True)]
    rows = _rows(tmp_path)
    stop = next(r for r in rows if r["fault"] == "rm" and r["action"] == "stop")
    assert stop["details"]["undone"] is False and "m2" not in stop["details"]["config"]["voters"]
    assert stop["effect"]["effective"] is True
    assert eff.voters == ["m1", "m3", "w1"]


def test_nemesis_membership_refused_stops_the_run(tmp_path):
    eff = MembershipEffects(refuse=True)
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([_fault("rm", "membership", at=0.0, spec={"action": "remove", "target": "m1"})], eff, log)
    nem.start(time.monotonic())
    with pytest.raises(FaultError, match="refused"):
        nem.wait(10)
    assert [r["action"] for r in _rows(tmp_path)] == ["intend-start", "error"]


class NotInConfigEffects(MembershipEffects):
    """The cluster answers `not-found` for a node its configuration no longer lists (FaultRefused,
    as the real effects raise it), e.g. a removed node that still reports itself leader."""

    def membership_op(self, action, node, force):
        if action == "remove" and node not in self.voters:
            self._call("membership", action, node, force)
            raise FaultRefused(f"membership {action} {node}: refused: not-found", code="not-found")
        return super().membership_op(action, node, force)


def test_nemesis_membership_not_found_for_a_role_target_is_skipped_and_the_run_goes_on(tmp_path):
    """`remove: leader` picks m2 (it reports itself leader) after m2's removal committed: the
    cluster's own contradiction (a removed leader that kept leading), recorded `skipped` with the
    answer; the fault after it still runs, and no harness error stops the schedule."""
    eff = NotInConfigEffects()
    faults = [_fault("rm", "membership", at=0.0, spec={"action": "remove", "target": "leader"}),
              _fault("rm-again", "membership", after="rm", spec={"action": "remove", "target": "leader"}),
              _fault("add", "membership", after="rm-again", spec={"action": "promote", "target": "w1"})]
    nem, _log, done = _run(faults, eff, tmp_path)
    assert done and nem.error is None
    rows = _rows(tmp_path)
    assert [r["action"] for r in rows if r["fault"] == "rm-again"] == ["intend-start", "skipped"]
    skipped = next(r for r in rows if r["fault"] == "rm-again" and r["action"] == "skipped")
    assert "not-found" in skipped["details"]["refused"] and skipped["details"]["node"] == "m2"
    assert not any(r.get("effect", {}).get("effective") for r in rows if r["fault"] == "rm-again")
    assert eff.voters == ["m1", "m3", "w1"]


def test_nemesis_membership_not_found_for_a_named_target_still_stops_the_run(tmp_path):
    """`remove: m2` twice: the file named a node that is gone, the experiment's own mistake."""
    eff = NotInConfigEffects()
    faults = [_fault("rm", "membership", at=0.0, spec={"action": "remove", "target": "m2"}),
              _fault("rm-again", "membership", after="rm", spec={"action": "remove", "target": "m2"})]
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis(faults, eff, log)
    nem.start(time.monotonic())
    with pytest.raises(FaultError, match="not-found"):
        nem.wait(10)
    assert [r["action"] for r in _rows(tmp_path) if r["fault"] == "rm-again"] == ["intend-start", "error"]


def test_nemesis_records_the_selectors_wait_apart_from_its_own_lateness(tmp_path):
    """A leader fault planned during an election waits for the leader; that wait is the cluster's
    time (selector_wait_s), not the harness's lateness, and the report shows it apart (issue 25 §5)."""
    eff = FakeEffects()
    elected = threading.Event()
    follower_view = View(M, W, {m: {"role": "follower", "term": 2} for m in M})
    eff.view = lambda: view("m2", 3) if elected.is_set() else follower_view
    threading.Timer(0.4, elected.set).start()
    nem, _, done = _run([_fault("s", "partition", at=0.0, spec={"isolate": "leader"})], eff, tmp_path)
    assert done
    start = next(r for r in _rows(tmp_path) if r["action"] == "intend-start")
    assert start["targets"] and 0.35 <= start["selector_wait_s"] <= start["resolve_s"]
    assert start["resolve_s"] - start["selector_wait_s"] < 0.3
    assert nem.selector_wait_s == [pytest.approx(start["selector_wait_s"], abs=1e-3)]
    from chaos.report.timeline import fault_bands
    band = fault_bands(_rows(tmp_path))[0]
    assert band.planned is not None and band.selector_wait == start["selector_wait_s"]


class ReplaceEffects(MembershipEffects):
    """MembershipEffects that also add and replace: a new node takes the next spare id."""

    def __init__(self, fail_step: str | None = None):
        super().__init__()
        self.spares, self.fail_step = ["m4", "m5"], fail_step

    def membership_add(self, role, step):
        node = self.spares.pop(0)
        if self.fail_step == "join":
            raise FaultError(f"membership add ({role}): m4 was refused by the cluster: bad-token")
        self._call("add-node", role, node)
        self.voters = sorted(set(self.voters) | {node})
        rec = {"node": node, "committed": True, "config": {"voters": list(self.voters)}, "applied_ts": 2.0,
               "verified_ts": 2.0}
        step(node, "join", rec)
        return rec

    def membership_replace(self, node, step):
        self.membership_op("remove", node, True)
        step(node, "remove", {"config": {"voters": list(self.voters)}})
        self._call("wipe", node)
        step(node, "wipe", {"wiped": True})
        joined = self.membership_add("manager", step)
        return {"replaced": node, "replacement": joined["node"], "committed": True, "config": joined["config"],
                "applied_ts": 2.0, "verified_ts": 2.0}


def test_nemesis_membership_replace_removes_wipes_and_joins_a_new_id_each_step_recorded(tmp_path):
    eff = ReplaceEffects()
    faults = [_fault("rep", "membership", at=0.0, spec={"action": "replace", "target": "leader"}),
              _fault("grow", "membership", after="rep", spec={"action": "add"})]
    _nem, _log, done = _run(faults, eff, tmp_path)
    assert done
    assert eff.calls[:4] == [
        ("membership", "remove", "m2", True), ("wipe", "m2"), ("add-node", "manager", "m4"),
        ("add-node", "manager", "m5")]
    rows = _rows(tmp_path)
    steps = [(r["fault"], r["details"]["step"], r["targets"]) for r in rows if r["action"] == "step"]
    assert steps == [("rep", "remove", ["m2"]), ("rep", "wipe", ["m2"]), ("rep", "join", ["m4"]),
                     ("grow", "join", ["m5"])]
    start = {r["fault"]: r for r in rows if r["action"] == "start"}
    assert start["rep"]["targets"] == ["m2"] and start["rep"]["details"]["joined"] == ["m4"]
    assert start["grow"]["targets"] == [] and start["grow"]["details"]["joined"] == ["m5"]
    stops = {r["fault"]: r for r in rows if r["action"] == "stop"}
    assert stops["rep"]["effect"]["effective"] is True and stops["grow"]["effect"]["effective"] is True
    assert eff.voters == ["m1", "m3", "m4", "m5"]
    # the run directory reader accepts the step rows
    from chaos.checkers.rundir import _validate_fault
    assert all(_validate_fault(r) is None for r in rows)


def test_nemesis_membership_replace_failing_half_way_stops_the_run_and_shows_how_far(tmp_path):
    eff = ReplaceEffects(fail_step="join")
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([_fault("rep", "membership", at=0.0, spec={"action": "replace", "target": "m3"})], eff, log)
    nem.start(time.monotonic())
    with pytest.raises(FaultError, match="refused by the cluster"):
        nem.wait(10)
    rows = _rows(tmp_path)
    assert [r["action"] for r in rows] == ["intend-start", "step", "step", "error"]
    assert [r["details"]["step"] for r in rows if r["action"] == "step"] == ["remove", "wipe"]


def test_nemesis_membership_replace_of_a_worker_is_a_fault_error(tmp_path):
    eff = ReplaceEffects()
    log = FaultLog(tmp_path / "faults.jsonl")
    nem = Nemesis([_fault("rep", "membership", at=0.0, spec={"action": "replace", "target": "w1"})], eff, log)
    nem.start(time.monotonic())
    with pytest.raises(FaultError, match="only a manager is replaced"):
        nem.wait(10)
    assert not [c for c in eff.calls if c[0] in ("membership", "wipe", "add-node")]


def test_runner_reserves_one_spare_per_node_a_plan_may_join():
    from chaos.runner import spares_needed

    def plan(*specs):
        return {"faults": [{"kind": "membership", "spec": s} for s in specs]
                + [{"kind": "kill", "spec": {"target": "m1"}}]}
    assert spares_needed(plan({"action": "remove", "target": "m1"}), "manager", 3) == 0
    assert spares_needed(plan({"action": "replace", "target": "m3"}, {"action": "add"}), "manager", 3) == 2
    assert spares_needed(plan({"action": "replace", "target": "managers"}), "manager", 5) == 5
    assert spares_needed(plan({"action": "replace", "target": {"role": "leader"}}), "manager", 5) == 1
    assert spares_needed(plan({"action": "add", "role": "worker"}), "worker", 3) == 1
    assert spares_needed(plan({"action": "add", "role": "worker"}), "manager", 3) == 0
