"""The runner takes the final state only after convergence: `_settle` keeps polling while the managers
agree but the workers' endpoint tables still differ (gossip still spreading), and stops once all agree."""

from __future__ import annotations

from types import SimpleNamespace

from chaos.runner import Runner


def _worker(endpoints):
    return {"members": {"m1": {"state": "alive"}, "w1": {"state": "alive"}, "w2": {"state": "alive"}},
            "endpoints": endpoints}


class _Poller:
    def __init__(self, rounds):
        self.rounds, self.calls = rounds, 0

    def poll_once(self):
        r = self.rounds[min(self.calls, len(self.rounds) - 1)]
        self.calls += 1
        return r


def test_settle_waits_for_endpoint_tables_not_only_managers():
    m1 = {"applied_index": 7, "store_digest": "d", "members": {"m1": {"state": "alive"}, "w1": {"state": "alive"},
                                                                "w2": {"state": "alive"}}}
    ep = {"w1/t": {"owner": "w1", "value": "v"}}
    spreading = {"m1": m1, "w1": _worker(ep), "w2": _worker({})}
    settled = {"m1": m1, "w1": _worker(ep), "w2": _worker(ep)}
    runner = Runner.__new__(Runner)
    runner.plan = {"recovery": {"converge_s": 30.0}, "checks": [{"checker": "linearizable", "params": {}}]}
    runner.poller = _Poller([spreading, spreading, spreading, settled])
    runner._settle(SimpleNamespace(managers=["m1"]))
    assert runner.poller.calls == 4


def test_settle_gives_up_at_the_bound():
    m1 = {"applied_index": 7, "store_digest": "d", "members": {"m1": {"state": "alive"}}}
    runner = Runner.__new__(Runner)
    runner.plan = {"recovery": {"converge_s": 0.7}, "checks": [{"checker": "linearizable", "params": {}}]}
    runner.poller = _Poller([{"m1": m1, "w1": None, "w2": {"members": {"w1": {"state": "alive"}}}}])
    runner._settle(SimpleNamespace(managers=["m1"]))
    assert 2 <= runner.poller.calls <= 4


def test_settle_stops_at_the_convergence_bound_after_heal():
    """Agreement later than heal + the convergence check's bound cannot change its verdict: the final
    state is taken then, not after the whole `recovery.converge` wait."""
    import time

    m1 = {"applied_index": 7, "store_digest": "d", "members": {"m1": {"state": "alive"}}}
    never = {"m1": m1, "w1": {"members": {"w1": {"state": "alive"}, "m1": {"state": "dead"}}}}
    runner = Runner.__new__(Runner)
    runner.plan = {"recovery": {"converge_s": 30.0},
                   "checks": [{"checker": "convergence", "params": {"store_bound_s": 12, "members_bound_s": 11}}]}
    runner.poller = _Poller([never])
    runner.clock = SimpleNamespace(now=time.time)
    t0 = time.monotonic()
    runner._settle(SimpleNamespace(managers=["m1"]), heal_ts=time.time() - 11.0)  # bound: heal + 12 s
    assert time.monotonic() - t0 < 2.0
    assert runner.poller.calls >= 1
