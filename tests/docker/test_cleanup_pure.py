"""Teardown against a fake engine: every running node is frozen before any is removed, and a pause
or removal that times out (the engine under load 250 did) is no crash and loses nothing -- the
container is still removed or reported."""

from __future__ import annotations

import threading

import requests

from chaos.env import cleanup
from chaos.env import labels as L


class FakeContainer:
    def __init__(self, engine, name, pause_times_out=False, remove_timeouts=0):
        self.engine, self.name = engine, name
        self.id = name.ljust(12, "0")
        self.attrs = {"Names": ["/" + name], "State": "running",
                      "Labels": {L.TOOL_LABEL: "chaos", "chaos.cluster": "c1"}}
        self.pause_times_out, self.remove_timeouts = pause_times_out, remove_timeouts

    def kill(self):
        raise AssertionError("teardown pauses, it does not kill (100 concurrent exits broke the engine)")

    def pause(self):
        with self.engine.lock:
            self.engine.kills_in_flight += 1
            self.engine.max_kills_in_flight = max(self.engine.max_kills_in_flight, self.engine.kills_in_flight)
        try:
            self.engine.all_kills_started.wait(timeout=5)
            if self.pause_times_out:
                raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)")
            self.attrs["State"] = "paused"
        finally:
            with self.engine.lock:
                self.engine.kills_in_flight -= 1

    def remove(self, force=False, v=False):
        assert force, "a running or paused node is removed with force"
        with self.engine.lock:
            self.engine.removed_while_running += self.engine.kills_in_flight > 0 or any(
                c.attrs["State"] == "running" and not c.pause_times_out for c in self.engine.containers)
        if self.remove_timeouts:
            self.remove_timeouts -= 1
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)")
        self.engine.containers.remove(self)
        self.engine.removal_order.append(self.name)


class FakeList:
    def __init__(self, items):
        self.items = items

    def list(self, **kw):
        return list(self.items)


class FakeEngine:
    def __init__(self, n, **kw):
        self.lock = threading.Lock()
        self.kills_in_flight = self.max_kills_in_flight = 0
        self.containers = [FakeContainer(self, f"chaos-c1-w{i}", **(kw if i == 0 else {})) for i in range(n)]
        self.all_kills_started = threading.Event()
        self.removed_while_running = 0
        self.removal_order: list[str] = []
        self.n = n

    def client(self):
        eng = self

        class Containers:
            def list(self, **kw):
                return list(eng.containers)

        class Client:
            containers = Containers()
            networks = FakeList([])
            volumes = FakeList([])
        return Client()


def _release_when_all_started(engine):
    def watch():
        while True:
            with engine.lock:
                if engine.kills_in_flight >= engine.n:
                    break
            threading.Event().wait(0.001)
        engine.all_kills_started.set()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_every_running_node_is_frozen_at_once_before_any_removal():
    engine = FakeEngine(40)
    _release_when_all_started(engine)
    removed = cleanup.remove_objects(engine.client(), cluster="c1")
    assert engine.max_kills_in_flight == 40   # 8 at a time would leave 32 agents running meanwhile
    assert engine.removed_while_running == 0
    assert len(removed.containers) == 40 and not removed.failed and not engine.containers


def test_the_container_with_the_most_published_ports_is_removed_first(monkeypatch):
    """The engine unwinds each published port on its own; the first Toxiproxy shard (a port per
    client link) took 6 s of a 3 + 100 teardown alone at the end when it came last."""
    monkeypatch.setenv("CHAOS_REMOVE_PARALLEL", "1")   # one at a time: the order is the plan's
    engine = FakeEngine(10)
    engine.all_kills_started.set()
    for i, c in enumerate(engine.containers):
        c.attrs["Ports"] = [{"PrivatePort": 8080 + j} for j in range(1 if i != 7 else 104)]
    removed = cleanup.remove_objects(engine.client(), cluster="c1")
    assert len(removed.containers) == 10 and not removed.failed
    assert engine.removal_order[0] == "chaos-c1-w7"


def test_a_pause_that_times_out_is_no_crash_and_the_node_is_still_removed():
    engine = FakeEngine(3, pause_times_out=True)
    _release_when_all_started(engine)
    removed = cleanup.remove_objects(engine.client(), cluster="c1")
    assert sorted(removed.containers) == ["chaos-c1-w0", "chaos-c1-w1", "chaos-c1-w2"]
    assert not removed.failed and not engine.containers


def test_a_removal_that_times_out_is_retried_in_the_next_pass():
    engine = FakeEngine(2, remove_timeouts=1)
    _release_when_all_started(engine)
    removed = cleanup.remove_objects(engine.client(), cluster="c1")
    assert "chaos-c1-w0" in removed.containers and not removed.failed and not engine.containers


def test_a_removal_that_keeps_timing_out_is_reported_not_lost():
    engine = FakeEngine(1, remove_timeouts=99)
    _release_when_all_started(engine)
    removed = cleanup.remove_objects(engine.client(), cluster="c1")
    assert removed.failed and "chaos-c1-w0" in removed.failed[0] and "ReadTimeout" in removed.failed[0]


def test_an_engine_over_ssh_gets_no_more_pauses_at_once_than_its_sessions_allow():
    """The sweep of another host (ssh) passes its own bound: more sessions than sshd allows were
    refused, so the pauses, like the removals, stay within chaos.env.swarm.parallel_for."""
    engine = FakeEngine(12)
    engine.all_kills_started.set()   # no barrier: pauses return at once; count how many overlap
    real_pause = FakeContainer.pause

    def slow_pause(self):
        with engine.lock:
            engine.kills_in_flight += 1
            engine.max_kills_in_flight = max(engine.max_kills_in_flight, engine.kills_in_flight)
        threading.Event().wait(0.01)   # a pause's round trip (its length does not decide the assertion)
        with engine.lock:
            engine.kills_in_flight -= 1
        self.attrs["State"] = "paused"
    FakeContainer.pause = slow_pause
    try:
        into = cleanup.Removed()
        cleanup._remove_on(engine.client(), "c1", None, into, networks=False, parallel=2, pauses=2)
    finally:
        FakeContainer.pause = real_pause
    assert 1 <= engine.max_kills_in_flight <= 2
    assert len(into.containers) == 12 and not engine.containers


def test_a_pause_that_fails_any_way_is_no_crash():
    engine = FakeEngine(2)
    engine.all_kills_started.set()
    real_pause = FakeContainer.pause

    def refused(self):
        raise EOFError("ssh session refused")   # not a docker or requests error
    FakeContainer.pause = refused
    try:
        removed = cleanup.remove_objects(engine.client(), cluster="c1")
    finally:
        FakeContainer.pause = real_pause
    assert len(removed.containers) == 2 and not removed.failed
