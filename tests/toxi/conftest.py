"""Fixtures for the process-level tests: a Toxiproxy server (the compatible one as a subprocess,
or any server named by TOXIPROXY_URL), local echo servers standing in for the nodes, a topology
wired to them and a probe that really dials through the proxies."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import socket
import socketserver
import subprocess
import sys
import threading
import zlib

import pytest

from chaos.topology import Endpoint, Topology
from chaos.toxi import LinkController, ToxiproxyAPI

SERVER_MODULE = "swarmnode.toxiproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports_free(base: int, n: int) -> bool:
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is ok
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port_block(n: int, seed: int) -> int:
    """A base port with n consecutive free ports (bounded search, seeded), below Linux's default
    ephemeral range (32768-60999) so outgoing connections do not take them meanwhile."""
    rng = random.Random(seed)
    for _ in range(50):
        base = rng.randrange(12000, 32000 - n)
        if _ports_free(base, n):
            return base
    raise RuntimeError(f"no block of {n} free ports found in 50 tries (seed {seed})")


@pytest.fixture(scope="session")
def toxiproxy_url():
    """TOXIPROXY_URL when set (e.g. a real Toxiproxy); else the compatible server as a process."""
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        ToxiproxyAPI(url).wait_ready(10)
        yield url
        return
    if importlib.util.find_spec(SERVER_MODULE) is None or \
            importlib.util.find_spec(SERVER_MODULE + ".__main__") is None:
        pytest.skip(f"the compatible server ({SERVER_MODULE}) is not written yet and TOXIPROXY_URL is unset")
    with compat_server() as url:
        yield url


@contextlib.contextmanager
def compat_server(*extra: str):
    """The compatible server as a local process (`extra`: more flags, e.g. -no-batch); its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, "-host", "127.0.0.1", "-port", str(port), "-seed", "1", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ToxiproxyAPI(url).wait_ready(15)
    except Exception:
        proc.kill()
        err = proc.communicate(timeout=5)[1].decode(errors="replace")[-2000:]
        pytest.fail(f"compatible server did not start: {err}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.accepted += 1
        sock = self.request
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                sock.sendall(data)
        except OSError:
            return


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Echo)
        self.accepted = 0
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def echo_nodes():
    """One echo server per node (its peer and API port both echo)."""
    nodes = ["m1", "m2", "m3", "w1"]
    servers = {n: EchoServer() for n in nodes}
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture
def cluster(toxiproxy_url, echo_nodes, request):
    """A fresh controller over proxies for m1..m3 + w1 on a free port block; healed afterwards."""
    seed = zlib.crc32(request.node.name.encode()) % 10_000  # picks ports; printed on failure
    n_links = len(echo_nodes) ** 2
    base = free_port_block(n_links, seed)
    topo = Topology(["m1", "m2", "m3"], ["w1"], base_port=base,
                    endpoints={n: Endpoint("127.0.0.1", s.port, s.port) for n, s in echo_nodes.items()})
    api = ToxiproxyAPI(toxiproxy_url, timeout_s=5)
    ctl = LinkController(api, topo, seed=seed)
    ctl.create_proxies("127.0.0.1")
    print(f"port-block seed={seed} base_port={base}")
    yield ctl
    ctl.heal()
    ctl.close()
    for link in topo.links:
        api.delete_proxy(link.name)


def dial(port: int, timeout_s: float = 2.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def echo_once(sock: socket.socket, payload: bytes, timeout_s: float) -> bytes | None:
    """Send payload; return what came back (up to len(payload)) or None on timeout/EOF/error."""
    sock.settimeout(timeout_s)
    try:
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(len(payload) - len(got))
            if not chunk:
                return got or None
            got += chunk
        return got
    except (socket.timeout, OSError):
        return None


def make_probe(topo: Topology, timeout_s: float = 0.4):
    """Stand-in for the agent's POST /probe: a fresh connection to the link's proxy, one echo."""

    def probe(src: str, dst: str) -> bool:
        try:
            s = dial(topo.listen_port(src, dst), timeout_s)
        except OSError:
            return False
        with s:
            return echo_once(s, b"probe\n", timeout_s) == b"probe\n"

    return probe
