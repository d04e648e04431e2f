"""The open loop with a pool (issue 25 section 2): the offered rate holds under latency, a process
never has two operations in flight, a process whose operation ended `info` is retired, the bound
holds, and the operations drawn do not depend on timing. Against an in-process register node on
loopback whose answers take a set time (the node's own latency, as a slow link would add)."""

from __future__ import annotations

import threading
import time

import pytest

from chaos.checkers.linearizable import check_ops
from chaos.history import pair_ops, read_history
from chaos.workload import HistoryWriter, Workload, WorkloadSpec

from tests.experiment.test_workload_values import DEFAULT_MIX, RegisterNode


class SlowNode(RegisterNode):
    """A correct register whose every answer is held `delay_s`; while `hang` is set, answers are
    held past any client timeout (the operation ends `info`)."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.hang = threading.Event()
        super().__init__()
        handler = self.server.RequestHandlerClass
        answer = handler._answer
        node = self

        def slow(h):
            time.sleep(node.delay_s)  # the node's service time, not a wait for a condition
            if node.hang.is_set():
                time.sleep(3.0)
            answer(h)
        handler.do_GET = handler.do_PUT = handler.do_POST = handler.do_DELETE = slow


def _run_for(node, tmp_path, spec, seconds, name="h", during=None):
    path = tmp_path / f"{name}.jsonl"
    w = HistoryWriter(path)
    wl = Workload({"m1": node.url}, w, spec, seed=11)
    t0 = time.monotonic()
    wl.start()
    if during is not None:
        during(wl)
    while time.monotonic() - t0 < seconds:
        time.sleep(0.05)
    wl.stop()
    w.close()
    return wl, read_history(path)


def _invoked_in(events, seconds):
    inv = [e for e in events if e["type"] == "invoke"]
    t0 = inv[0]["ts"]
    return [e for e in inv if e["ts"] - t0 < seconds]


def _one_in_flight_per_process(events):
    open_ = {}
    for e in events:
        if e["type"] == "invoke":
            assert e["process"] not in open_, f"process {e['process']} invoked twice"
            open_[e["process"]] = e
        else:
            open_.pop(e["process"])


@pytest.fixture
def slow_node():
    n = SlowNode(0.15)
    yield n
    n.close()


def test_pool_holds_the_rate_under_150ms_where_per_client_clients_cannot(slow_node, tmp_path):
    rate, secs = 100.0, 3.0
    pooled, ev = _run_for(slow_node, tmp_path, WorkloadSpec(clients=4, keys=5, rate=rate, mix=DEFAULT_MIX,
                                                            values=5, max_in_flight=80), secs + 0.5, "pool")
    n_pool = len(_invoked_in(ev, secs))
    assert n_pool >= 0.9 * rate * secs, n_pool
    _one_in_flight_per_process(ev)
    # ~rate x 0.15 s in flight; more when this machine is busy and the test node answers late
    assert 12 <= pooled.peak_in_flight <= 80 and pooled.skipped_in_flight <= 0.02 * rate * secs
    assert pooled.stats()["processes"] >= 12
    # the same spec without a pool: 4 clients with one operation each in flight reach ~4 / 0.15 s
    _, ev_old = _run_for(slow_node, tmp_path, WorkloadSpec(clients=4, keys=5, rate=rate, mix=DEFAULT_MIX,
                                                           values=5), secs + 0.5, "old")
    assert len(_invoked_in(ev_old, secs)) <= 0.4 * rate * secs
    # a correct register under the pool's concurrency is judged linearizable
    assert check_ops(pair_ops(ev)).verdict.value == "VALID"


def test_pool_bound_skips_slots_and_says_so(slow_node, tmp_path):
    wl, ev = _run_for(slow_node, tmp_path, WorkloadSpec(clients=2, keys=3, rate=100.0, mix=DEFAULT_MIX,
                                                        values=5, max_in_flight=5), 2.0)
    _one_in_flight_per_process(ev)
    assert wl.peak_in_flight == 5 and wl.skipped_in_flight > 50
    assert wl.stats()["skipped_in_flight"] == wl.skipped_in_flight <= wl.skipped


def test_pool_retires_a_process_whose_operation_ended_info(tmp_path):
    node = SlowNode(0.0)
    try:
        def hang_briefly(wl):
            time.sleep(0.3)  # let operations start on the fast node first
            node.hang.set()
            time.sleep(0.6)
            node.hang.clear()
        spec = WorkloadSpec(clients=2, keys=3, rate=50.0, mix=DEFAULT_MIX, values=5, max_in_flight=30,
                            op_timeout_s=0.3, retry=False)
        wl, ev = _run_for(node, tmp_path, spec, 2.5, during=hang_briefly)
    finally:
        node.close()
    _one_in_flight_per_process(ev)
    ops = pair_ops(ev)
    infos = [o for o in ops if o.type == "info"]
    assert infos, "the hang made no operation time out"
    for o in infos:  # a retired process never invokes again
        assert not [x for x in ops if x.process == o.process and x.invoke_index > o.invoke_index]


def test_pool_draws_the_same_operations_whatever_the_timing(tmp_path):
    """Same seed: the same (f, key, value) in slot order, on a fast node and on a slow one."""
    fast, slow = SlowNode(0.0), SlowNode(0.05)
    try:
        spec = WorkloadSpec(clients=3, keys=4, rate=80.0, mix=DEFAULT_MIX, values=5, max_in_flight=20)
        _, a = _run_for(fast, tmp_path, spec, 1.0, "a")
        _, b = _run_for(slow, tmp_path, spec, 1.0, "b")
    finally:
        fast.close()
        slow.close()
    seq = lambda evs: [(e["f"], e["key"], e["value"]) for e in evs if e["type"] == "invoke"]
    n = min(len(seq(a)), len(seq(b)))
    assert n >= 50 and seq(a)[:n] == seq(b)[:n]
