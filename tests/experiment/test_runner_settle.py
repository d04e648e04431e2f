"""The runner takes the final state only after convergence and without racing the cluster.

`_settle` keeps polling in concurrent rounds until the managers agree in two consecutive rounds and
the workers' endpoint tables agree (gossip still spreading), and records that evidence; `_collect`
reads every final state in one round, journals after it. A cluster that keeps committing while the
final state is collected (a fake whose applied index advances at every slow read) is not judged
INVALID (issue 21 item 1: m1 83, m2 85, m3 83 on a correct cluster at load 3-4)."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

from chaos.checkers import Verdict, run_checks
from chaos.runner import Runner
from chaos.workload import RunClock, StatusPoller


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


def _runner(plan: dict, poller) -> Runner:
    runner = Runner.__new__(Runner)
    runner.plan = plan
    runner.poller = poller
    runner.clock = RunClock()
    return runner


def _m(index, digest="d", members=None):
    return {"applied_index": index, "store_digest": digest,
            "members": members or {"m1": {"state": "alive"}, "m2": {"state": "alive"}}}


def test_settle_waits_for_endpoint_tables_not_only_managers():
    m1 = {"applied_index": 7, "store_digest": "d", "members": {"m1": {"state": "alive"}, "w1": {"state": "alive"},
                                                                "w2": {"state": "alive"}}}
    ep = {"w1/t": {"owner": "w1", "value": "v"}}
    spreading = {"m1": m1, "w1": _worker(ep), "w2": _worker({})}
    settled = {"m1": m1, "w1": _worker(ep), "w2": _worker(ep)}
    runner = _runner({"recovery": {"converge_s": 30.0}, "checks": [{"checker": "linearizable", "params": {}}]},
                     _Poller([spreading, spreading, spreading, settled]))
    rec = runner._settle(SimpleNamespace(managers=["m1"]))
    assert runner.poller.calls == 4
    assert rec["agreed"]["applied_index"] == 7 and rec["reason"] is None and rec["members_settled"]


def test_settle_needs_two_consecutive_agreeing_rounds():
    """One round where the managers happen to agree while the cluster is still committing is not
    enough: the same (index, digest) must be seen in the next round too."""
    moving = [{"m1": _m(5), "m2": _m(4)}, {"m1": _m(6, "e"), "m2": _m(6, "e")}, {"m1": _m(7, "f"), "m2": _m(7, "f")},
              {"m1": _m(7, "f"), "m2": _m(7, "f")}]
    runner = _runner({"recovery": {"converge_s": 30.0}, "checks": []}, _Poller(moving))
    rec = runner._settle(SimpleNamespace(managers=["m1", "m2"]))
    assert runner.poller.calls == 4
    assert rec["agreed"] == {"applied_index": 7, "store_digest": "f", "rounds": [2, 3], "ts": rec["rounds"][3]["end"]}
    assert [r["agree"] for r in rec["rounds"]] == [False, True, True, True]


def test_settle_records_why_agreement_was_never_seen():
    runner = _runner({"recovery": {"converge_s": 0.7}, "checks": []},
                     _Poller([{"m1": _m(5), "m2": _m(4)}, {"m1": _m(6), "m2": None}]))
    rec = runner._settle(SimpleNamespace(managers=["m1", "m2"]))
    assert rec["agreed"] is None and "never agreed within one round" in rec["reason"]
    assert "m2 no answer" in rec["reason"] and rec["rounds_total"] == len(rec["rounds"]) >= 2
    moving = [{"m1": _m(i), "m2": _m(i)} for i in range(1, 50)]
    runner = _runner({"recovery": {"converge_s": 0.7}, "checks": []}, _Poller(moving))
    rec = runner._settle(SimpleNamespace(managers=["m1", "m2"]))
    assert rec["agreed"] is None and "never in two consecutive rounds" in rec["reason"]


def test_settle_gives_up_at_the_bound():
    m1 = {"applied_index": 7, "store_digest": "d", "members": {"m1": {"state": "alive"}}}
    runner = _runner({"recovery": {"converge_s": 0.7}, "checks": [{"checker": "linearizable", "params": {}}]},
                     _Poller([{"m1": m1, "w1": None, "w2": {"members": {"w1": {"state": "alive"}}}}]))
    rec = runner._settle(SimpleNamespace(managers=["m1"]))
    assert 2 <= runner.poller.calls <= 4
    assert rec["agreed"] is not None and rec["reason"] == "the member tables had not settled in the last round"


def test_settle_stops_at_the_convergence_bound_after_heal():
    """Agreement later than heal + the convergence check's bound cannot change its verdict: the final
    state is taken then, not after the whole `recovery.converge` wait."""
    m1 = {"applied_index": 7, "store_digest": "d", "members": {"m1": {"state": "alive"}}}
    never = {"m1": m1, "w1": {"members": {"w1": {"state": "alive"}, "m1": {"state": "dead"}}}}
    runner = _runner({"recovery": {"converge_s": 30.0},
                      "checks": [{"checker": "convergence", "params": {"store_bound_s": 12, "members_bound_s": 11}}]},
                     _Poller([never]))
    t0 = time.monotonic()
    runner._settle(SimpleNamespace(managers=["m1"]), heal_ts=runner.clock.now() - 11.0)  # bound: heal + 12 s
    assert time.monotonic() - t0 < 2.0
    assert runner.poller.calls >= 1


# --- the race in the collection -----------------------------------------------------------------


class _RacingCluster:
    """Three managers, m1 leading, quiet while their statuses are polled; but every slow read (a store,
    a journal) lets the cluster commit one more entry (task reconciliation, dispatcher updates): the
    leader applies it at once, the followers one commit later (they learn the commit index on the
    next append). Digest at index i: f"d{i}". Thread-safe: the runner reads nodes in parallel."""

    managers = ["m1", "m2", "m3"]
    workers: list = []
    nodes = managers

    def __init__(self, start: int = 80):
        self.handles = {m: SimpleNamespace(kind="manager") for m in self.managers}
        self.lock = threading.Lock()
        self.top = start
        self.applied = {m: start for m in self.managers}

    def _commit(self) -> None:
        self.top += 1
        self.applied = {"m1": self.top, "m2": self.top - 1, "m3": self.top - 1}

    def status(self, node, timeout_s=1.5):
        with self.lock:
            a = self.applied[node]
        return {"node": node, "kind": "manager", "role": "leader" if node == "m1" else "follower", "term": 1,
                "leader": "m1", "applied_index": a, "commit_index": a, "store_digest": f"d{a}",
                "members": {m: {"state": "alive", "incarnation": 0} for m in self.managers if m != node}}

    def statuses(self, nodes=None):
        return {n: self.status(n) for n in self.nodes}

    def store(self, node, timeout_s=10.0):
        with self.lock:
            self._commit()
            a = self.applied[node]
        return {"applied_index": a, "store_digest": f"d{a}", "kv": {}, "services": {}, "tasks": {}, "nodes": {}}

    def journal(self, node, since=0, timeout_s=10.0):
        with self.lock:
            self._commit()
            a = self.applied[node]
        evs = [{"type": "boot"}, {"type": "term", "term": 1},
               {"type": "role", "role": "leader" if node == "m1" else "follower", "term": 1}]
        for i in range(1, a + 1):
            evs += [{"type": "append", "index": i, "term": 1, "hash": f"h{i}"}, {"type": "commit", "index": i},
                    {"type": "apply", "index": i, "term": 1, "hash": f"h{i}", "store_digest": f"d{i}"}]
        return [dict(e, node=node, seq=n, boot=1, ts=1.0 + n * 1e-3) for n, e in enumerate(evs, 1)]

    def logs(self, node, tail=None, since=None):
        return ""


def test_collect_racing_a_committing_cluster_is_not_invalid(tmp_path):
    """The final stores are read while the cluster commits, so they differ in applied index; the run
    is judged on the settle rounds and on the journals at the common index: VALID, never INVALID."""
    run_dir = tmp_path / "run"
    for sub in ("events", "final", "logs"):
        (run_dir / sub).mkdir(parents=True)
    cluster = _RacingCluster()
    runner = _runner({"recovery": {"converge_s": 10.0}, "checks": [{"checker": "convergence", "params": {}}]}, None)
    runner.poller = StatusPoller(cluster.statuses, run_dir / "status.jsonl", clock=runner.clock.now)
    runner.run_dir, runner.run = run_dir, {}
    heal = runner.clock.now() - 1.0
    runner._write_run(heal_ts=heal, nodes={m: {"role": "manager"} for m in cluster.managers})
    settled = runner._settle(cluster, heal)
    runner._collect(cluster)
    runner._write_run(settle=settled)

    finals = {m: json.loads((run_dir / "final" / f"{m}.json").read_text())["store"]["applied_index"]
              for m in cluster.managers}
    assert len(set(finals.values())) > 1, finals   # the race did happen
    c = run_checks(run_dir, ["convergence"]).checks[0]
    managers = c.evidence["parts"]["managers"]
    assert c.verdict == Verdict.VALID, (finals, c.summary, managers)
    assert managers["common_index"] == min(finals.values())
    assert json.loads((run_dir / "run.json").read_text())["settle"]["agreed"]["applied_index"] == 80
