"""LinkController and verify against an in-memory Toxiproxy double: toxic names, records, what heal
removes, failure reporting, partition diffs and the verification logic. The data path is tested
for real in test_toxi_process.py."""

from __future__ import annotations

import random

import pytest

from chaos import partition as P
from chaos.errors import FaultError
from chaos.topology import Link, Topology
from chaos.toxi import LinkController, verify

from .fakes import FakeAPI, state_probe

NODES_M, NODES_W = ["m1", "m2", "m3"], ["w1", "w2"]


@pytest.fixture
def setup():
    api = FakeAPI()
    topo = Topology(NODES_M, NODES_W)
    ctl = LinkController(api, topo, clock=lambda: 1000.0, max_workers=4, seed=5)
    ctl.create_proxies("127.0.0.1")
    return api, topo, ctl


def toxics_of(api, proxy):
    return {t["name"]: t for t in api.state[proxy]["toxics"]}


def test_controller_blackhole_cut_adds_timeout_on_both_streams(setup):
    api, _, ctl = setup
    rec = ctl.cut([("m1", "m2")])
    assert set(toxics_of(api, "m1-m2")) == {"chaos-cut-up", "chaos-cut-down"}
    assert all(t["type"] == "timeout" and t["attributes"] == {"timeout": 0}
               for t in toxics_of(api, "m1-m2").values())
    assert toxics_of(api, "m2-m1") == {}  # one-way: the reverse link is untouched
    assert rec["op"] == "cut" and rec["proxies"] == ["m1-m2"] and rec["ts"] == 1000.0
    assert len(rec["toxics"]) == 2 and "failed" not in rec


def test_controller_refuse_cut_disables_proxy_and_heal_enables(setup):
    api, _, ctl = setup
    rec = ctl.cut(["m1-m2", "m2-m1"], mode="refuse")
    assert rec["disabled"] == ["m1-m2", "m2-m1"]
    assert api.state["m1-m2"]["enabled"] is False
    assert ctl.expected_matrix()[Link("m1", "m2")] is False
    heal = ctl.heal()
    assert sorted(heal["enabled"]) == ["m1-m2", "m2-m1"]
    assert api.state["m1-m2"]["enabled"] is True
    assert ctl.expected_matrix()[Link("m1", "m2")] is True


@pytest.mark.parametrize(
    "call,name,type_,stream,attrs",
    [
        (lambda c, l: c.latency(l, 100, 10), "chaos-latency-up", "latency", "upstream", {"latency": 100, "jitter": 10}),
        (lambda c, l: c.bandwidth(l, 50), "chaos-bandwidth-up", "bandwidth", "upstream", {"rate": 50}),
        (lambda c, l: c.reset(l, 20), "chaos-reset-up", "reset_peer", "upstream", {"timeout": 20}),
        (lambda c, l: c.stall(l, 5000), "chaos-stall-up", "latency", "upstream", {"latency": 5000, "jitter": 0}),
        (lambda c, l: c.slice(l, 8, 2, 100), "chaos-slice-up", "slicer", "upstream",
         {"average_size": 8, "size_variation": 2, "delay": 100}),
        (lambda c, l: c.slow_close(l, 300), "chaos-slow_close-down", "slow_close", "downstream", {"delay": 300}),
        (lambda c, l: c.limit(l, 64), "chaos-limit-up", "limit_data", "upstream", {"bytes": 64}),
    ],
)
def test_controller_operation_toxic_table(setup, call, name, type_, stream, attrs):
    api, _, ctl = setup
    rec = call(ctl, ["w1-m1"])
    t = toxics_of(api, "w1-m1")[name]
    assert (t["type"], t["stream"], t["attributes"], t["toxicity"]) == (type_, stream, attrs, 1.0)
    assert rec["toxics"][0]["proxy"] == "w1-m1"


def test_controller_flaky_sets_toxicity_and_is_not_asserted(setup):
    api, _, ctl = setup
    ctl.flaky(["m1-m2"], 0.3, kind="cut")
    t = toxics_of(api, "m1-m2")
    assert t["chaos-flaky-cut-up"]["toxicity"] == 0.3 and t["chaos-flaky-cut-up"]["type"] == "timeout"
    assert ctl.expected_matrix()[Link("m1", "m2")] is None
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError):
            ctl.flaky(["m1-m2"], bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.latency(["m1-m2"], 1.5),
        lambda c: c.latency(["m1-m2"], -1),
        lambda c: c.bandwidth(["m1-m2"], 0),
        lambda c: c.slice(["m1-m2"], 0, 0, 0),     # would crash a real 2.12 server
        lambda c: c.slice(["m1-m2"], 4, 4, 0),
        lambda c: c.cut(["m1-m2"], mode="drop"),
        lambda c: c.latency(["m1-m2"], 5, stream="sideways"),
    ],
)
def test_controller_rejects_bad_parameters_before_any_request(setup, call):
    api, _, ctl = setup
    with pytest.raises(ValueError):
        call(ctl)
    assert api.calls == []


def test_controller_unknown_link_is_keyerror(setup):
    _, _, ctl = setup
    with pytest.raises(KeyError):
        ctl.cut([("m1", "m9")])


def test_controller_reapply_updates_instead_of_duplicating(setup):
    api, _, ctl = setup
    ctl.latency(["m1-m2"], 100)
    ctl.latency(["m1-m2"], 250)
    assert toxics_of(api, "m1-m2")["chaos-latency-up"]["attributes"]["latency"] == 250
    assert [c[0] for c in api.calls if c[1] == "m1-m2"] == ["add", "update"]


def test_controller_takes_over_leftover_toxic_from_earlier_run(setup):
    api, topo, ctl = setup
    ctl.latency(["m1-m2"], 100)
    fresh = LinkController(api, topo)
    fresh.latency(["m1-m2"], 300)  # 409 on add -> update
    assert toxics_of(api, "m1-m2")["chaos-latency-up"]["attributes"]["latency"] == 300


def test_controller_heal_removes_only_our_toxics(setup):
    api, _, ctl = setup
    api.state["m1-m2"]["toxics"].append({"name": "someone-else", "type": "latency", "stream": "upstream",
                                         "toxicity": 1.0, "attributes": {"latency": 5}})
    ctl.cut(["m1-m2"])
    ctl.latency(["m1-m2", "m2-m3"], 10)
    rec = ctl.heal()
    assert set(toxics_of(api, "m1-m2")) == {"someone-else"}
    assert toxics_of(api, "m2-m3") == {}
    assert sorted(rec["removed"]) == ["m1-m2/chaos-cut-down", "m1-m2/chaos-cut-up",
                                      "m1-m2/chaos-latency-up", "m2-m3/chaos-latency-up"]


def test_controller_heal_subset_leaves_other_links(setup):
    api, _, ctl = setup
    ctl.cut(["m1-m2", "m2-m1"])
    ctl.heal(["m1-m2"])
    assert toxics_of(api, "m1-m2") == {}
    assert set(toxics_of(api, "m2-m1")) == {"chaos-cut-up", "chaos-cut-down"}
    assert ctl.expected_matrix()[Link("m2", "m1")] is False


def test_controller_failure_names_proxies_and_keeps_partial_state(setup):
    api, _, ctl = setup
    api.fail_on = {"m2-m1"}
    with pytest.raises(FaultError, match=r"cut failed on 1 of 2 proxies: m2-m1: .*500 boom") as info:
        ctl.cut(["m1-m2", "m2-m1"])
    assert [t["proxy"] for t in info.value.record["toxics"]] == ["m1-m2", "m1-m2"]
    m = ctl.expected_matrix()
    assert m[Link("m1", "m2")] is False and m[Link("m2", "m1")] is True
    api.fail_on = set()
    ctl.heal()
    assert all(not p["toxics"] for p in api.state.values())


def test_controller_apply_partition_diffs_against_current(setup):
    api, topo, ctl = setup
    nodes = list(topo.nodes)
    first = P.isolate(nodes, "m1")
    rec1 = ctl.apply_partition(first)
    assert sorted(rec1["cut"]) == sorted(f"{a}-{b}" for a, b in first)
    assert rec1["deaf"]["m1"] == ["m2", "m3", "w1", "w2"]
    second = P.isolate(nodes, "m2")
    rec2 = ctl.apply_partition(second)
    assert set(rec2["cut"]) == {f"{a}-{b}" for a, b in second - first}
    assert set(rec2["uncut"]) == {f"{a}-{b}" for a, b in first - second}
    cut_now = {n for n, p in api.state.items() if p["toxics"]}
    assert cut_now == {f"{a}-{b}" for a, b in second}
    # the same partition given as a deaf map is a no-op
    rec3 = ctl.apply_partition(P.deaf_map(nodes, second))
    assert rec3["cut"] == [] and rec3["uncut"] == []
    ctl.apply_partition(frozenset())
    assert all(not p["toxics"] for p in api.state.values())


def test_controller_apply_partition_keeps_other_toxics_on_uncut_links(setup):
    api, topo, ctl = setup
    ctl.latency(["m1-m2"], 50)
    ctl.apply_partition(P.isolate(list(topo.nodes), "m1"))
    ctl.apply_partition(frozenset())
    assert set(toxics_of(api, "m1-m2")) == {"chaos-latency-up"}


def test_controller_verify_checks_changed_links_and_a_seeded_sample(setup):
    api, topo, ctl = setup
    probe = state_probe(api)
    ctl.cut_one_way(["m1"], ["m2", "m3"])
    rec = ctl.verify(probe, sample=4)
    assert sorted(rec["checked"]) == ["m1-m2", "m1-m3"]
    assert len(rec["sampled"]) == 4 and not set(rec["sampled"]) & set(rec["checked"])
    ctl.heal()
    rec2 = ctl.verify(probe, sample=0)
    assert sorted(rec2["checked"]) == ["m1-m2", "m1-m3"]  # changed back to reachable
    # the sample is a function of the seed and round
    again = LinkController(api, topo, seed=5)
    again.cut_one_way(["m1"], ["m2", "m3"])
    assert again.verify(probe, sample=4)["sampled"] == rec["sampled"]


def test_controller_verify_catches_a_cut_that_did_nothing():
    """Deliberately broken server: it accepts toxics and drops them. verify must fail."""
    api = FakeAPI(ignore_toxics=True)
    ctl = LinkController(api, Topology(["m1", "m2"], []))
    ctl.create_proxies()
    ctl.cut([("m1", "m2")])
    with pytest.raises(FaultError, match=r"m1-m2 expected cut, probe says reachable.*\[sample seed 0:1\]"):
        ctl.verify(state_probe(api), deadline_s=0.2)


def test_verify_retries_until_agreement_within_deadline():
    calls = {}

    def slow_probe(src, dst):  # takes effect on the 3rd probe of each link
        calls[(src, dst)] = calls.get((src, dst), 0) + 1
        return calls[(src, dst)] < 3

    expected = {("a", "b"): False, ("b", "a"): True}
    rec = verify(expected, slow_probe, changed=[("a", "b")], sample=1, deadline_s=5, interval_s=0.01)
    assert rec["checked"] == ["a-b"] and rec["sampled"] == ["b-a"]
    assert rec["attempts_max"] == 3


def test_verify_probe_exception_is_a_named_mismatch():
    def bad_probe(src, dst):
        raise ConnectionError("agent down")

    with pytest.raises(FaultError, match="a-b expected reachable, ConnectionError: agent down") as info:
        verify({("a", "b"): True}, bad_probe, changed=[("a", "b")], deadline_s=0.1, interval_s=0.01)
    assert info.value.record["mismatched"] == ["a-b"]


def test_verify_skips_indeterminate_links_and_is_seeded():
    expected = {(f"n{i}", f"n{j}"): (None if i == 0 else True) for i in range(6) for j in range(6) if i != j}
    a = verify(expected, lambda s, d: True, sample=5, rng=random.Random(3))
    b = verify(expected, lambda s, d: True, sample=5, rng=random.Random(3))
    assert a["sampled"] == b["sampled"]
    assert not any(s.startswith("n0-") for s in a["sampled"])


def test_controller_switching_cut_mode_undoes_the_old_kind(setup):
    api, _, ctl = setup
    ctl.cut(["m1-m2"])
    ctl.cut(["m1-m2"], mode="refuse")
    assert toxics_of(api, "m1-m2") == {} and api.state["m1-m2"]["enabled"] is False
    ctl.cut(["m1-m2"])
    assert set(toxics_of(api, "m1-m2")) == {"chaos-cut-up", "chaos-cut-down"}
    assert api.state["m1-m2"]["enabled"] is True


def test_controller_flaky_kinds_need_their_attribute(setup):
    api, _, ctl = setup
    with pytest.raises(ValueError, match="latency"):
        ctl.flaky(["m1-m2"], 0.5, kind="latency")
    with pytest.raises(ValueError, match="average_size"):
        ctl.flaky(["m1-m2"], 0.5, kind="slice", average_size=0)
    ctl.flaky(["m1-m2"], 0.5, kind="latency", latency=200)
    assert toxics_of(api, "m1-m2")["chaos-flaky-latency-up"]["attributes"] == {"latency": 200}


def test_controller_records_are_json_serialisable(setup):
    import json

    api, topo, ctl = setup
    recs = [ctl.cut(["m1-m2"], mode="refuse"), ctl.latency(["m2-m1"], 3, 1),
            ctl.apply_partition(P.halves(list(topo.nodes), random.Random(2))),
            ctl.verify(state_probe(api)), ctl.heal()]
    for r in recs:
        assert json.loads(json.dumps(r))["op"] == r["op"]
        assert isinstance(r["ts"], float)


def test_controller_with_probe_verifies_every_cut_heal_and_partition():
    api = FakeAPI()
    topo = Topology(["m1", "m2", "m3"], [])
    ctl = LinkController(api, topo, probe=state_probe(api), verify_sample=2, seed=1)
    ctl.create_proxies()
    rec = ctl.cut([("m1", "m2")])
    assert rec["verified"]["checked"] == ["m1-m2"]
    rec = ctl.apply_partition(P.isolate(["m1", "m2", "m3"], "m3"))
    assert set(rec["verified"]["checked"]) == {"m1-m2", "m1-m3", "m3-m1", "m2-m3", "m3-m2"}
    assert rec["verified"]["listing_checked"] == 5 and rec["apply_ms"] >= 0 and rec["verify_ms"] >= 0
    assert ctl.heal()["verified"]["checked"]
    assert "verified" not in ctl.latency(["m1-m2"], 5)   # not a reachability change


def test_controller_with_probe_raises_when_unverifiable():
    api = FakeAPI(ignore_toxics=True)
    ctl = LinkController(api, Topology(["m1", "m2"], []), probe=state_probe(api), verify_deadline_s=0.1)
    ctl.create_proxies()
    with pytest.raises(FaultError, match="listing disagrees.*m1-m2: chaos-cut-down not listed") as info:
        ctl.cut([("m1", "m2")])
    assert info.value.applied["op"] == "cut"
    assert info.value.record["listing_mismatched"] == ["m1-m2"]


def test_controller_listed_but_probe_disagrees_is_unverified():
    api = FakeAPI()
    ctl = LinkController(api, Topology(["m1", "m2"], []), probe=lambda s, d: True, verify_deadline_s=0.1)
    ctl.create_proxies()
    with pytest.raises(FaultError, match="expected cut") as info:
        ctl.cut([("m1", "m2")])
    assert info.value.applied["op"] == "cut"


def test_controller_listing_with_wrong_attributes_or_extra_toxic_fails_verification():
    api = FakeAPI()
    topo = Topology(["m1", "m2"], [])
    ctl = LinkController(api, topo, probe=state_probe(api), verify_deadline_s=0.1)
    ctl.create_proxies()
    ctl.cut([("m1", "m2")])
    api.state["m1-m2"]["toxics"][0]["attributes"]["timeout"] = 5   # someone changed it behind our back
    assert ctl.listing_disagreements(["m1-m2"]) == {"m1-m2": "chaos-cut-up attribute timeout=5, asked 0"}
    api.state["m2-m1"]["toxics"].append({"name": "chaos-latency-up", "type": "latency", "stream": "upstream",
                                         "toxicity": 1.0, "attributes": {"latency": 1}})
    assert ctl.listing_disagreements(["m2-m1"]) == {"m2-m1": "lists ['chaos-latency-up'], not intended"}
    with pytest.raises(FaultError, match="listing disagrees.*m2-m1: lists"):
        ctl.cut([("m2", "m1")])   # the cut is listed, but so is a toxic this controller never set



def test_verify_max_changed_is_a_reported_bound():
    expected = {(f"n{i}", f"n{j}"): False for i in range(5) for j in range(5) if i != j}
    rec = verify(expected, lambda s, d: False, changed=list(expected), sample=0,
                 rng=random.Random(4), max_changed=6)
    assert len(rec["checked"]) == 6 and rec["changed_total"] == 20 and rec["capped"] is True
    full = verify(expected, lambda s, d: False, changed=list(expected), sample=0)
    assert len(full["checked"]) == 20 and full["capped"] is False


def test_controller_records_have_issue_and_done_timestamps():
    ticks = iter(range(100, 200))
    api = FakeAPI()
    ctl = LinkController(api, Topology(["m1", "m2"], []), clock=lambda: float(next(ticks)))
    ctl.create_proxies()
    rec = ctl.cut([("m1", "m2")])
    assert rec["ts"] < rec["done_ts"]
    rec = ctl.apply_partition({"m1": ["m2"]})
    assert rec["ts"] < rec["done_ts"] and rec["cut"] == ["m2-m1"] and rec["uncut"] == ["m1-m2"]


def test_controller_apply_partition_cuts_new_links_before_lifting_old_ones(setup):
    api, topo, ctl = setup
    nodes = list(topo.nodes)
    ctl.apply_partition(P.isolate(nodes, "m1"))
    api.calls.clear()
    ctl.apply_partition(P.isolate(nodes, "m2"))
    kinds = [c[0] for c in api.calls]
    assert kinds.index("delete") > max(i for i, k in enumerate(kinds) if k == "add")


def test_controller_apply_partition_switches_mode(setup):
    api, topo, ctl = setup
    cut = P.isolate(list(topo.nodes), "w1")
    ctl.apply_partition(cut)
    rec = ctl.apply_partition(cut, mode="refuse")
    assert len(rec["cut"]) == len(cut)
    for a, b in cut:
        assert toxics_of(api, f"{a}-{b}") == {} and api.state[f"{a}-{b}"]["enabled"] is False
    ctl.apply_partition(frozenset())
    assert all(p["enabled"] for p in api.state.values())


def test_controller_verify_does_not_assert_links_of_an_unavailable_node(setup):
    """A killed or paused node cannot answer probes: while it is marked unavailable its links are
    not asserted (found by the soak benchmark: a heal verified while m1 was paused failed); once it
    is back, its links are probed again."""
    api, topo, ctl = setup
    base = state_probe(api)
    down = {"m1"}

    def probe(src, dst):
        if src in down or dst in down:
            return False
        return base(src, dst)

    ctl.set_unavailable("m1", True)
    ctl.cut_one_way(["m2"], ["m3"])
    ctl.heal()
    rec = ctl.verify(probe, sample=50, deadline_s=0.2)
    assert not any("m1" in name for name in rec["checked"] + rec["sampled"])
    ctl.set_unavailable("m1", False)
    with pytest.raises(FaultError, match="m1"):
        ctl.verify(probe, sample=50, deadline_s=0.2)


def test_controller_verify_drops_links_whose_node_goes_down_while_verifying(setup):
    """Found by the random soak: a heal's verification was still retrying when another fault killed
    a node; its links were asserted against the stale expectation until the deadline (exit 4)."""
    api, topo, ctl = setup
    base = state_probe(api)
    down: set[str] = set()
    calls = {"n": 0}

    def probe(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:  # another fault takes m3 down in the middle of this verification
            down.add("m3")
            ctl.set_unavailable("m3", True)
        if src in down or dst in down:
            return False
        return base(src, dst)

    ctl.cut_one_way(["m3"], ["m1"])
    ctl.heal()
    rec = ctl.verify(probe, sample=50, deadline_s=1.0)
    assert rec["dropped"] and all("m3" in name for name in rec["dropped"])


def test_verify_records_which_links_the_probes_showed_cut_and_open():
    """The evidence a partition took effect (chaos.fault_effect): the links that agreed, by state."""
    expected = {("a", "b"): False, ("b", "a"): True, ("a", "c"): True}
    rec = verify(expected, lambda s, d: (s, d) != ("a", "b"), changed=[("a", "b")], sample=2,
                 deadline_s=1, interval_s=0.01)
    assert rec["agreed_cut"] == [["a", "b"]]
    assert rec["agreed_open"] == [["a", "c"], ["b", "a"]]
    # a link the probe never showed in its wanted state is no evidence (and fails the verification)
    with pytest.raises(FaultError) as info:
        verify(expected, lambda s, d: True, changed=[("a", "b")], sample=0, deadline_s=0.05, interval_s=0.01)
    assert "agreed_cut" not in info.value.record or info.value.record["agreed_cut"] == []


# -- verification under load: a slow healthy link is not a cut one ----------------------------------


def slow_state_probe(api, rtt_ms):
    """probe(src, dst, timeout_ms) on a loaded machine: a cut link never answers; a healthy one
    answers only when the timeout covers its round trip of `rtt_ms`. Records every timeout asked."""
    asked = []
    cut = state_probe(api)

    def probe(src, dst, timeout_ms):
        asked.append((f"{src}-{dst}", timeout_ms))
        return cut(src, dst) and timeout_ms >= rtt_ms

    return probe, asked


def test_verify_a_slow_healthy_link_is_proven_reachable_by_a_longer_probe():
    """The 'reachability not as intended' harness errors at load 8-15: with one fixed 100 ms probe
    timeout, a heal whose links answer in 250 ms fails for the whole deadline. With the escalating
    schedule it is proven at the 400 ms attempt; the record keeps the longest timeout asked."""
    api = FakeAPI()
    ctl = LinkController(api, Topology(["m1", "m2", "m3"], []), verify_deadline_s=1.0)
    ctl.create_proxies()
    probe, asked = slow_state_probe(api, rtt_ms=250)
    fixed = lambda s, d: probe(s, d, 100)  # noqa: E731  (the old runner's probe)
    ctl.cut([("m1", "m2")])
    ctl.verify(fixed, sample=0, deadline_s=0.3)  # a cut is proven by silence at 100 ms either way
    ctl.heal()
    with pytest.raises(FaultError, match=r"m1-m2 expected reachable, probe says unreachable"):
        ctl.verify(fixed, sample=0, deadline_s=0.3)
    rec = ctl.verify(probe, sample=0, deadline_s=5.0, timeouts_ms=(100, 200, 400, 800))
    assert rec["checked"] == ["m1-m2"] and rec["probe_timeout_ms_max"] == 400
    assert [t for link, t in asked[-3:]] == [100, 200, 400]


def test_verify_cut_links_are_always_asked_with_the_first_timeout():
    """Escalation is only for proving a link reachable: a cut link's probe costs its whole timeout,
    and a cut that did nothing still fails (probe says reachable) at the first attempt's timeout."""
    api = FakeAPI()
    ctl = LinkController(api, Topology(["m1", "m2", "m3"], []), seed=1)
    ctl.create_proxies()
    probe, asked = slow_state_probe(api, rtt_ms=0)
    ctl.apply_partition(P.isolate(["m1", "m2", "m3"], "m1"))
    ctl.verify(probe, sample=2, deadline_s=5.0, timeouts_ms=(100, 200, 400))
    assert {t for _, t in asked} == {100}
    broken = FakeAPI(ignore_toxics=True)
    bctl = LinkController(broken, Topology(["m1", "m2"], []))
    bctl.create_proxies()
    bprobe, basked = slow_state_probe(broken, rtt_ms=0)
    bctl.cut([("m1", "m2")])
    with pytest.raises(FaultError, match="m1-m2 expected cut, probe says reachable"):
        bctl.verify(bprobe, deadline_s=0.2, timeouts_ms=(100, 200, 400))
    assert {t for _, t in basked} == {100}


def test_controller_autoverify_uses_its_probe_timeouts():
    api = FakeAPI()
    probe, asked = slow_state_probe(api, rtt_ms=300)
    ctl = LinkController(api, Topology(["m1", "m2"], []), probe=probe, probe_timeouts_ms=(100, 200, 400),
                         verify_sample=0, verify_deadline_s=5.0)
    ctl.create_proxies()
    ctl.cut([("m1", "m2")])
    rec = ctl.heal()
    assert rec["verified"]["probe_timeout_ms_max"] == 400


def test_probe_timeout_schedule_holds_its_last_entry():
    from chaos.toxi import probe_timeout_ms

    assert [probe_timeout_ms((100, 200, 400), a) for a in range(6)] == [100, 200, 400, 400, 400, 400]


def test_controller_autoverify_probes_a_capped_seeded_sample_but_lists_every_link():
    api = FakeAPI()
    topo = Topology(["m1", "m2", "m3"], ["w1", "w2", "w3"])
    ctl = LinkController(api, topo, probe=state_probe(api), verify_sample=0, seed=4, verify_max_changed=3)
    ctl.create_proxies()
    rec = ctl.apply_partition(P.halves(["m1", "m2", "m3", "w1", "w2", "w3"], random.Random(1)))
    ver = rec["verified"]
    assert ver["capped"] is True and len(ver["checked"]) == 3 and ver["changed_total"] == len(rec["cut"]) > 3
    assert ver["listing_checked"] == len(rec["cut"])
