"""ToxiproxyAPI against a canned local HTTP server (no Toxiproxy needed): error statuses become
FaultError with the server's message, timeouts and refusals become EnvironmentError_, two instances
never share an address, and the toxiproxy-python class state is restored."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from chaos.errors import EnvironmentError_, FaultError
from chaos.toxi import ToxiproxyAPI, ToxiproxyHTTPError

ROUTES: dict[tuple[str, str], tuple[int, str, bytes]] = {
    ("GET", "/version"): (200, "application/json", b'{"version": "2.12.0"}\n'),
    ("POST", "/proxies"): (500, "text/plain; charset=utf-8",
                           b'{"error":"listen tcp 127.0.0.1:1: bind: address already in use","status":500}\n'),
    ("POST", "/proxies/p/toxics"): (409, "text/plain; charset=utf-8", b'{"error":"toxic already exists","status":409}\n'),
    ("GET", "/proxies/nope"): (404, "text/plain; charset=utf-8", b'{"error":"proxy not found","status":404}\n'),
    ("POST", "/populate"): (500, "application/json",
                            b'{"error":"listen tcp 127.0.0.1:2: bind: address already in use","status":500,"proxies":[]}'),
    ("GET", "/proxies"): (503, "text/html", b"<html><body><h1>Timeout</h1></body></html>"),
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path == "/slow":
            time.sleep(1.0)
        self.server.seen.append((self.command, self.path, self.headers.get("User-Agent")))
        status, ctype, body = ROUTES.get((self.command, self.path), (404, "text/plain", b"404 page not found\n"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, *args):
        pass


@pytest.fixture
def canned():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_api_version_parses_json_and_sends_non_browser_agent(canned):
    api = ToxiproxyAPI(f"127.0.0.1:{canned.server_port}")
    assert api.version() == "2.12.0"
    assert api.wait_ready(1.0) == "2.12.0"
    assert not canned.seen[0][2].startswith("Mozilla/")


@pytest.mark.parametrize(
    "call,status,text",
    [
        (lambda a: a.create_proxy("x", "h:1"), 500, "address already in use"),
        (lambda a: a.add_toxic("p", "t", "latency"), 409, "toxic already exists"),
        (lambda a: a.proxy("nope"), 404, "proxy not found"),
        (lambda a: a.populate([{"name": "x", "upstream": "h:1"}]), 500, "127.0.0.1:2: bind"),
        (lambda a: a.proxies(), 503, "Timeout"),
        (lambda a: a.delete_toxic("p", "t"), 404, "404 page not found"),
    ],
)
def test_api_error_status_becomes_fault_error_with_server_message(canned, call, status, text):
    api = ToxiproxyAPI(f"http://127.0.0.1:{canned.server_port}")
    with pytest.raises(ToxiproxyHTTPError) as info:
        call(api)
    assert isinstance(info.value, FaultError)
    assert info.value.status == status and text in info.value.message


def test_api_timeout_is_environment_error(canned):
    api = ToxiproxyAPI(f"http://127.0.0.1:{canned.server_port}", timeout_s=0.2)
    t0 = time.monotonic()
    with pytest.raises(EnvironmentError_, match="did not answer GET /slow within 0.2 s"):
        api.request("GET", "/slow")
    assert time.monotonic() - t0 < 0.9


def test_api_unreachable_is_environment_error_and_wait_ready_bounded():
    api = ToxiproxyAPI(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    with pytest.raises(EnvironmentError_, match="unreachable") as info:
        api.version()
    assert not isinstance(info.value, FaultError)
    t0 = time.monotonic()
    with pytest.raises(EnvironmentError_, match="not ready after 0.3 s"):
        api.wait_ready(0.3)
    assert time.monotonic() - t0 < 2.0


def test_api_two_instances_keep_their_own_address_and_client_state_is_restored(canned):
    from toxiproxy.api import APIConsumer

    before = (APIConsumer.host, APIConsumer.port)
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    other.seen = []
    threading.Thread(target=other.serve_forever, args=(0.01,), daemon=True).start()
    try:
        a = ToxiproxyAPI(f"127.0.0.1:{canned.server_port}")
        b = ToxiproxyAPI(f"127.0.0.1:{other.server_port}")
        a.version(), b.version(), a.version()
        assert len(canned.seen) == 2 and len(other.seen) == 1
        with a.python_client() as client:
            assert json.loads(client.version()) == {"version": "2.12.0"}
            assert APIConsumer.port == canned.server_port
        assert (APIConsumer.host, APIConsumer.port) == before
        assert len(canned.seen) == 3
    finally:
        other.shutdown()
        other.server_close()
