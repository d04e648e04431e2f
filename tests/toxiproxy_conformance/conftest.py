"""Fixtures of the black-box Toxiproxy conformance suite.

Owns: the server under test (TOXIPROXY_URL, or the project's compatible server started as a local
subprocess on a free port), loopback upstream servers (echo, close-after-reply, reply-after-EOF) and
helpers that create uniquely named proxies and delete them afterwards. Talks HTTP and TCP only, so the
suite runs unchanged against a real Toxiproxy. Must not import `chaos` or `swarmnode`.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

SEED = int(os.environ.get("TOXIPROXY_TEST_SEED", "20261128"))
_counter = itertools.count()


def pytest_report_header(config):
    return f"toxiproxy conformance: TOXIPROXY_URL={os.environ.get('TOXIPROXY_URL', '(local server)')} seed={SEED}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout_s=5.0, interval_s=0.01):
    """Poll pred() until it is truthy; return its value or raise on the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(interval_s)


@pytest.fixture(scope="session")
def server_url():
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.path.join(root, "node_image") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("LOG_LEVEL", "error")
    proc = subprocess.Popen([sys.executable, "-m", "swarmnode.toxiproxy", "-host", "127.0.0.1",
                             "-port", str(port), "-seed", str(SEED)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + proc.stderr.read().decode(errors="replace"))
        try:
            return requests.get(url + "/version", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, timeout_s=15)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Api:
    """Thin HTTP helper bound to the server under test (every call has a timeout)."""

    def __init__(self, url: str):
        self.url = url
        self.s = requests.Session()
        self.created: list[str] = []

    def req(self, method, path, body=None, json=None, headers=None, timeout=10):
        return self.s.request(method, self.url + path, data=body, json=json, headers=headers, timeout=timeout)

    def name(self, prefix="p"):
        return f"{prefix}{os.getpid()}_{next(_counter)}"

    def create(self, upstream, listen="127.0.0.1:0", name=None, enabled=None, expect=201):
        name = name or self.name()
        body = {"name": name, "upstream": upstream, "listen": listen}
        if enabled is not None:
            body["enabled"] = enabled
        r = self.req("POST", "/proxies", json=body)
        assert r.status_code == expect, r.text
        if r.status_code == 201:
            self.created.append(name)
        return r.json()

    def toxic(self, proxy, **body):
        r = self.req("POST", f"/proxies/{proxy}/toxics", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def cleanup(self):
        for name in self.created:
            try:
                self.req("DELETE", f"/proxies/{name}")
            except requests.RequestException:
                pass


@pytest.fixture
def api(server_url):
    a = Api(server_url)
    yield a
    a.cleanup()


class Upstream:
    """A threaded loopback TCP server; `mode` decides what each connection does."""

    def __init__(self, mode="echo"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        try:
            if self.mode == "echo":
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
            elif self.mode == "close_after_reply":
                d = c.recv(65536)
                if d:
                    c.sendall(d)
            elif self.mode == "reply_after_eof":
                buf = b""
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    buf += d
                c.sendall(b"reply:" + buf)
            elif self.mode == "sink":
                while c.recv(65536):
                    pass
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self._stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def echo():
    u = Upstream("echo")
    yield u
    u.close()


@pytest.fixture
def upstream_factory():
    made = []

    def make(mode):
        u = Upstream(mode)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


def listen_port(proxy_json) -> int:
    return int(proxy_json["listen"].rsplit(":", 1)[1])


def connect(proxy_json, timeout=5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", listen_port(proxy_json)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf


def recv_until_eof(s: socket.socket, limit=1 << 20) -> bytes:
    buf = b""
    while len(buf) < limit:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf
