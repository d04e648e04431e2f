"""The workload's client retries (chaos/workload.py) against scripted HTTP nodes on loopback.

What matters: a retried operation is recorded once, with the honest outcome (ok if an attempt
succeeded; fail only when nothing can have applied; else info); writes that may have applied are
retried only with client_id/seq, always with the same pair; the leader named in an answer is tried
next; and nothing is retried past the operation's time budget.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chaos.workload import HistoryWriter, KVClient, Workload, WorkloadSpec


class Node:
    """An HTTP node answering every request with the next scripted (status, body); records requests."""

    def __init__(self, script: list[tuple[int, dict]]):
        self.script = list(script)
        self.requests: list[tuple[str, str, dict | None]] = []
        node = self

        class H(BaseHTTPRequestHandler):
            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                node.requests.append((self.command, self.path, body))
                status, out = node.script.pop(0) if len(node.script) > 1 else node.script[0]
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


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: connections are refused
    return f"http://127.0.0.1:{port}"


NOT_LEADER = (503, {"ok": False, "error": "not-leader", "definite": True, "leader": "m3"})
NO_LEADER = (503, {"ok": False, "error": "no-leader", "definite": True})
LOST = (503, {"ok": False, "error": "unavailable", "definite": False})
OK = (200, {"ok": True})


@pytest.fixture
def nodes():
    made = []

    def make(*scripts):
        out = [Node(s) for s in scripts]
        made.extend(out)
        return out
    yield make
    for n in made:
        n.close()


def one_op(tmp_path: Path, urls: dict[str, str], f: str = "write", **spec) -> tuple[dict, Workload]:
    w = Workload(urls, HistoryWriter(tmp_path / "h.jsonl"),
                 WorkloadSpec(clients=1, keys=1, mix=((f, 1),), op_timeout_s=spec.pop("op_timeout_s", 2.0),
                              **spec), seed=5)
    keys = ["k0"]
    clients = {n: KVClient(u, 1.0) for n, u in urls.items()}
    session = ("5-p0", 0) if w.spec.sessions and f != "read" else None
    event = w._operation(clients, sorted(urls), 0, f, keys[0], 17 if f == "write" else None, session)
    return event, w


def test_refused_connection_then_named_leader_is_followed(tmp_path, nodes):
    m2, m3 = nodes([NOT_LEADER], [OK])
    event, _ = one_op(tmp_path, {"m1": closed_port_url(), "m2": m2.url, "m3": m3.url})
    assert event["type"] == "ok" and event["attempts"] == 3 and event["node"] == "m3", event
    # the same session and seq on every attempt that carried the write
    sent = [r[2] for r in m2.requests + m3.requests]
    assert all(b == {"value": 17, "client_id": "5-p0", "seq": 0} for b in sent), sent


def test_write_that_may_have_applied_is_not_retried_without_sessions(tmp_path, nodes):
    (m1, m2) = nodes([LOST], [OK])
    event, _ = one_op(tmp_path, {"m1": m1.url, "m2": m2.url}, sessions=False)
    assert event["type"] == "info" and "attempts" not in event, event
    assert m2.requests == []


def test_write_with_session_is_retried_after_an_uncertain_attempt(tmp_path, nodes):
    (m1, m2) = nodes([LOST], [OK])
    event, _ = one_op(tmp_path, {"m1": m1.url, "m2": m2.url})
    assert event["type"] == "ok" and event["attempts"] == 2, event


def test_definite_failure_after_an_uncertain_attempt_is_recorded_info(tmp_path, nodes):
    """attempt 1 may have applied; attempt 2 is refused for sure: the operation as a whole is
    uncertain, never `fail` (the linearizability checker would then rule out its effect)."""
    (m1, m2) = nodes([LOST], [(409, {"ok": False, "error": "cas-mismatch", "definite": True})])
    event, _ = one_op(tmp_path, {"m1": m1.url, "m2": m2.url})
    assert event["type"] == "info" and "earlier attempt" in event["error"], event


def test_definite_failures_only_stay_fail_and_stop_at_the_budget(tmp_path, nodes):
    (m1,) = nodes([NO_LEADER])
    event, _ = one_op(tmp_path, {"m1": m1.url}, op_timeout_s=0.6)
    assert event["type"] == "fail" and event["error"] == "no-leader", event
    # backoff 10, 20, 50, 100, 100... ms within 0.6 s: several attempts, bounded
    assert 3 <= event["attempts"] <= 10, event


def test_no_retry_when_disabled(tmp_path, nodes):
    (m1, m2) = nodes([NO_LEADER], [OK])
    event, _ = one_op(tmp_path, {"m1": m1.url, "m2": m2.url}, retry=False)
    assert event["type"] == "fail" and m2.requests == []


def test_reads_carry_no_session_and_are_retried(tmp_path, nodes):
    (m1, m2) = nodes([LOST], [(200, {"ok": True, "value": 4})])
    event, _ = one_op(tmp_path, {"m1": m1.url, "m2": m2.url}, f="read")
    assert event["type"] == "ok" and event["value"] == 4
    assert m1.requests[0][2] is None and m2.requests[0][0] == "GET"
