"""The nemesis's view of the cluster must not wait out a status timeout for a paused manager.

A fault fires at its planned time and resolves its targets from the managers' statuses; a frozen
manager never answers. Before, every such fault (`of: freeze` one second into a pause) was applied
1.5 s late (the status timeout), which in leader-wakes-cut-off let the new leader's first messages
reach the frozen node before the cut. Here one manager's status blocks like a frozen node's.
"""

from __future__ import annotations

import threading
import time

from chaos.env.cluster import Cluster
from chaos.runner import VIEW_FIRST_S, ClusterEffects


class _FakeCluster:
    managers = ["m1", "m2", "m3"]
    workers = ["w1"]
    statuses_early = Cluster.statuses_early

    def __init__(self, frozen: set[str], answers: dict[str, dict]):
        self.frozen, self.answers, self.release = frozen, answers, threading.Event()

    def status(self, node):
        if node in self.frozen:
            self.release.wait(1.5)  # what requests does with a paused node: nothing, then a timeout
            return None
        return self.answers[node]


def _effects(cluster) -> ClusterEffects:
    eff = ClusterEffects.__new__(ClusterEffects)
    eff.cluster = cluster
    return eff


def test_view_leaves_a_frozen_leader_out_once_a_majority_names_it():
    c = _FakeCluster({"m3"}, {"m1": {"role": "follower", "term": 1, "leader": "m3"},
                              "m2": {"role": "follower", "term": 1, "leader": "m3"}})
    t0 = time.monotonic()
    view = _effects(c).view()
    took = time.monotonic() - t0
    c.release.set()
    assert view.leader == "m3" and view.statuses["m3"] is None
    assert took < VIEW_FIRST_S + 0.5, f"view waited {took:.2f} s for a frozen manager"


def test_view_waits_for_the_rest_when_the_answers_show_no_leader():
    # two followers that lost their leader (election under way): the third manager's answer may be
    # the one that says who leads, so it is awaited (here until its timeout)
    c = _FakeCluster({"m3"}, {"m1": {"role": "follower", "term": 2, "leader": None},
                              "m2": {"role": "precandidate", "term": 2, "leader": None}})
    t0 = time.monotonic()
    view = _effects(c).view()
    assert time.monotonic() - t0 >= 1.4
    assert view.leader is None


class _Links:
    def __init__(self, down: set[str]):
        self.down = down

    def unavailable(self) -> frozenset[str]:
        return frozenset(self.down)


def test_view_does_not_ask_a_manager_this_run_paused_even_during_an_election():
    # m3 (the old leader) is paused by our own fault: the two others show no leader yet. Asking m3
    # would cost its whole status timeout; it is known down, so the view is immediate and leaderless
    c = _FakeCluster({"m3"}, {"m1": {"role": "follower", "term": 2, "leader": None},
                              "m2": {"role": "precandidate", "term": 2, "leader": None}})
    eff = _effects(c)
    eff.links = _Links({"m3"})
    t0 = time.monotonic()
    view = eff.view()
    took = time.monotonic() - t0
    c.release.set()
    assert view.leader is None and view.statuses["m3"] is None and set(view.statuses) == {"m1", "m2", "m3"}
    assert took < VIEW_FIRST_S, f"view waited {took:.2f} s for a manager it knew was paused"


def test_view_still_asks_a_manager_marked_down_once_it_is_back():
    c = _FakeCluster(set(), {"m1": {"role": "follower", "term": 2, "leader": "m3"},
                             "m2": {"role": "follower", "term": 2, "leader": "m3"},
                             "m3": {"role": "leader", "term": 2, "leader": "m3"}})
    eff = _effects(c)
    eff.links = _Links(set())
    assert eff.view().statuses["m3"] == {"role": "leader", "term": 2, "leader": "m3"}
