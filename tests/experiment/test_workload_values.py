"""`workload.values` (issue 21 item 3): written values and cas operands drawn from 1..N so that a
cas can match, against an in-process register node on loopback; `unique` (and plans written before
the setting) keep the old draw exactly, so old plans replay the same operations."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chaos.experiment import plan as P
from chaos.experiment.loader import load_text
from chaos.history import pair_ops, read_history
from chaos.workload import HistoryWriter, Workload, WorkloadSpec

DEFAULT_MIX = (("read", 4), ("write", 3), ("cas", 2), ("delete", 1))


class RegisterNode:
    """A correct, linearizable key-value node (one lock): the agent's /kv API, cas refused with a
    definite 409 cas-mismatch as the agent answers it."""

    def __init__(self):
        self.kv: dict[str, object] = {}
        lock = threading.Lock()
        node = self

        class H(BaseHTTPRequestHandler):
            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else {}
                key = self.path.split("/")[2]
                status, out = 200, {"ok": True}
                with lock:
                    if self.command == "GET":
                        out["value"] = node.kv.get(key)
                    elif self.command == "PUT":
                        node.kv[key] = body["value"]
                    elif self.command == "DELETE":
                        out["existed"] = node.kv.pop(key, None) is not None
                    elif node.kv.get(key) == body["expected"]:
                        node.kv[key] = body["value"]
                    else:
                        status, out = 409, {"ok": False, "error": "cas-mismatch", "definite": True}
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def node():
    n = RegisterNode()
    yield n
    n.close()


def _run(node, tmp_path, values, cas_wanted=150, bound_s=30.0):
    """A closed-loop workload until `cas_wanted` cas completed (or bound_s); returns the ops."""
    path = tmp_path / f"h-{values}.jsonl"
    w = HistoryWriter(path)
    wl = Workload({"m1": node.url}, w, WorkloadSpec(clients=4, keys=3, think_ms=0, mix=DEFAULT_MIX, values=values),
                  seed=7)
    wl.start()
    deadline = time.monotonic() + bound_s
    try:
        while time.monotonic() < deadline:
            ops = pair_ops(read_history(path))
            if sum(1 for o in ops if o.f == "cas" and o.complete_index is not None) >= cas_wanted:
                break
            time.sleep(0.05)
    finally:
        wl.stop()
        w.close()
    return pair_ops(read_history(path))


def _cas_ok_share(ops) -> float:
    done = [o for o in ops if o.f == "cas" and o.type in ("ok", "fail")]
    assert len(done) >= 100, len(done)
    assert all(o.type == "ok" or o.error == "cas-mismatch" for o in done)
    return sum(o.type == "ok" for o in done) / len(done)


def test_workload_values_3_lands_cas_successes_in_the_band(node, tmp_path):
    """With 3 values and the default mix, between 15 % and 60 % of cas succeed (a sequential model
    says 25 %: 0.75 of the time the key holds a value, 1 in 3 matches)."""
    ops = _run(node, tmp_path, 3)
    share = _cas_ok_share(ops)
    assert 0.15 <= share <= 0.60, share
    written = {o.value for o in ops if o.f == "write"} | {v for o in ops if o.f == "cas" for v in o.value}
    assert written <= {1, 2, 3} and len(written) == 3


def test_workload_values_unique_almost_never_matches(node, tmp_path):
    """The old draw (unique values; cas expects any value ever written): the defect this setting
    fixes, kept for `values: unique` and old plans."""
    ops = _run(node, tmp_path, None)
    assert _cas_ok_share(ops) < 0.15
    writes = [o.value for o in ops if o.f == "write"] + [o.value[1] for o in ops if o.f == "cas"]
    assert len(writes) == len(set(writes))


def test_workload_values_latest_matches_cas_and_keeps_writes_unique(node, tmp_path):
    """`latest`: every written value is new (durability and linearizability keep full power) and
    cas still lands in the 15-60 % band: half of them expect the latest value seen on the key."""
    ops = _run(node, tmp_path, "latest")
    assert 0.15 <= _cas_ok_share(ops) <= 0.60
    writes = [o.value for o in ops if o.f == "write"] + [o.value[1] for o in ops if o.f == "cas"]
    assert len(writes) == len(set(writes))


def test_workload_values_latest_expects_what_an_ok_completion_showed():
    w = Workload({"m1": "http://x"}, None, WorkloadSpec(values="latest"), seed=1)
    w._observe({"type": "ok", "f": "write", "key": "k1", "value": 41})
    w._observe({"type": "info", "f": "write", "key": "k1", "value": 99})  # may not have happened: not seen
    rng = random.Random(0)
    expected = [w._value(rng, "cas", "k1")[0] for _ in range(200)]
    assert 60 <= expected.count(41) <= 140  # a coin of the client's rng; the rest expect older values
    w._observe({"type": "ok", "f": "cas", "key": "k1", "value": [41, 50]})
    w._observe({"type": "ok", "f": "read", "key": "k2", "value": 7})
    assert w._latest == {"k1": 50, "k2": 7}
    w._observe({"type": "ok", "f": "delete", "key": "k1", "value": True})
    assert w._latest == {"k2": 7}


def test_workload_values_draws_with_the_client_rng_only():
    """Same client seed -> the same values, whatever other clients do (no shared counter)."""
    spec = WorkloadSpec(values=5)
    a = Workload({"m1": "http://x"}, None, spec, seed=1)
    b = Workload({"m1": "http://x"}, None, spec, seed=1)
    ra, rb = random.Random(3), random.Random(3)
    b._value(random.Random(99), "write")  # another client drew meanwhile
    seq_a = [a._value(ra, f) for f in ("write", "cas", "read", "delete", "cas", "write") * 20]
    seq_b = [b._value(rb, f) for f in ("write", "cas", "read", "delete", "cas", "write") * 20]
    assert seq_a == seq_b
    assert all(1 <= v <= 5 for x in seq_a if x is not None for v in (x if isinstance(x, list) else [x]))


def test_workload_values_unique_keeps_the_old_draw_exactly():
    """A plan without `values` replays as it ran: the same rng calls, the same unique counter."""
    w = Workload({"m1": "http://x"}, None, WorkloadSpec(values=None), seed=1)
    rng, old_rng = random.Random(4), random.Random(4)
    counter = iter(range(1, 10_000))
    for f in ("write", "cas", "cas", "write", "cas"):
        if f == "write":
            want = next(counter)
        else:
            want = [old_rng.randrange(1, max(2, next(counter))), next(counter)]
        assert w._value(rng, f) == want


def test_plan_carries_values_and_old_plans_mean_unique():
    exp, probs = load_text("version: 1\nname: x\nschedule: []\n", "x.yaml")
    assert not probs
    plan = P.expand(exp, 1)
    assert plan["workload"]["values"] == "latest" and "values latest" in P.render(plan)[2]
    for mode in ("unique", 3):
        exp, _ = load_text(f"version: 1\nname: x\nworkload: {{values: {mode}}}\n", "x.yaml")
        shown = "1..3" if mode == 3 else mode
        assert P.expand(exp, 1)["workload"]["values"] == mode and f"values {shown}" in P.render(P.expand(exp, 1))[2]
    del plan["workload"]["values"]  # a plan written before the setting
    assert "values unique" in P.render(plan)[2]


@pytest.mark.parametrize("text,needle", [("1", "greater than or equal to 2"), ("many", "'unique' or 'latest' or integer"),
                                         ("2.5", "fractional")])
def test_schema_values_bad_input_is_a_clear_error(text, needle):
    exp, probs = load_text(f"version: 1\nname: x\nworkload:\n  values: {text}\nschedule: []\n", "x.yaml")
    assert exp is None and len(probs) == 1
    assert "x.yaml:4:3" in str(probs[0]) and "workload.values" in str(probs[0]) and needle in str(probs[0])


def test_cas_share_benchmark_counts_the_steady_phase_only(tmp_path, capsys):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import cas_share
    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"phases": [{"name": "steady", "start": 100.0, "end": 110.0},
                                                       {"name": "faults", "start": 110.0, "end": 120.0}]}))
    (d / "plan.json").write_text(json.dumps({"experiment": "x", "seed": 1, "workload": {"values": 3}}))
    events = []
    for i, (ts, typ, err) in enumerate([(101, "ok", None), (102, "fail", "cas-mismatch"), (103, "fail", "cas-mismatch"),
                                        (104, "info", "timeout"), (105, "fail", "no-leader"), (111, "ok", None)]):
        events.append({"process": i, "type": "invoke", "f": "cas", "key": "k1", "value": [1, 2], "ts": ts})
        events.append({"process": i, "type": typ, "f": "cas", "key": "k1", "value": [1, 2], "ts": ts + 0.01,
                       **({"error": err} if err else {})})
    (d / "history.jsonl").write_text("".join(json.dumps({"index": n, **e}) + "\n" for n, e in enumerate(events)))
    assert cas_share.main([str(d)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"][0]["cas"] == {"ok": 1, "refused": 2, "fail": 1, "info": 1}
    assert out["cas_share_ok"] == 0.25 and out["runs"][0]["values"] == 3
    assert cas_share.main([str(tmp_path / "missing")]) == 1
