"""Run a cluster of agents as local processes on loopback (tests, benchmarks, debugging).

Owns ``LocalCluster``: picks free ports, builds each node's environment (``CHAOS_PEERS`` points
straight at the peers' peer ports -- no proxy), starts/kills/restarts ``python3 -m swarmnode.agent``
processes, and small bounded HTTP helpers that await conditions with deadlines (never fixed sleeps).

Must not import ``chaos`` or asyncio; stdlib only (urllib for HTTP).
"""

from __future__ import annotations

import http.client as http_client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

NODE_IMAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    """``n`` distinct bindable loopback ports BELOW the ephemeral range.

    Ports from bind(0) are ephemeral: a client polling such a port before its server is up can be
    handed the same number as its own local port and connect to itself (TCP self-connect), reading
    back its own request and holding the port so the server cannot bind. Ports below the range are
    never handed out as local ports. Drawn from a pid-seeded generator so concurrent runs rarely
    collide, and each is checked bindable (bounded attempts)."""
    import random
    hi = min(_ephemeral_low(), 65536) - 1
    lo = max(1024, hi - 12000)
    rng = random.Random(os.getpid() * 1_000_003 + time.monotonic_ns())
    ports: list[int] = []
    for _ in range(200 * n):
        if len(ports) == n:
            return ports
        p = rng.randrange(lo, hi)
        if p in ports:
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        ports.append(p)
    raise RuntimeError(f"no {n} free ports in [{lo}, {hi}) after {200 * n} attempts")


def http(method: str, url: str, body: Optional[dict] = None, timeout: float = 3.0) -> tuple[int, dict]:
    """One JSON request; (status, body). Connection errors give (0, {"error": text})."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    except (urllib.error.URLError, OSError, TimeoutError, http_client.HTTPException) as e:
        return 0, {"error": f"{type(e).__name__}: {e}"}
    try:
        return status, json.loads(raw) if raw else {}
    except ValueError:
        return status, {"raw": raw.decode("utf-8", "replace")}


def wait_for(pred: Callable[[], object], timeout_s: float, interval_s: float = 0.05,
             what: str = "condition"):
    """Poll ``pred`` until it returns a truthy value (returned) or raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def call_until_ok(method: str, urls: list, body: Optional[dict], attempts: int = 6,
                  timeout: float = 5.0, accept: tuple = (200,)) -> tuple[int, dict]:
    """A request with bounded retries, rotating over ``urls``; stops at a status in ``accept``.

    Retries only errors that allow it: no answer, indefinite errors (definite=false) and leader
    errors. Writes should carry client_id/seq so a retried attempt is applied at most once.
    Returns the last (status, body)."""
    code, resp = 0, {}
    for i in range(attempts):
        code, resp = http(method, urls[i % len(urls)], body, timeout=timeout)
        if code in accept:
            return code, resp
        retryable = code == 0 or resp.get("definite") is False or \
            resp.get("error") in ("no-leader", "not-leader", "unavailable")
        if not retryable:
            return code, resp
        time.sleep(0.2 * (i + 1))  # back off between attempts
    return code, resp


def put_until_ok(urls: list, value, client_id: str, seq: int, **kw) -> tuple[int, dict]:
    """PUT {value, client_id, seq} with call_until_ok's retries."""
    return call_until_ok("PUT", urls, {"value": value, "client_id": client_id, "seq": seq}, **kw)


class LocalCluster:
    def __init__(self, workdir: str, managers: int = 3, workers: int = 3, seed: int = 1,
                 extra_env: Optional[dict] = None,
                 peer_address: Optional[Callable[[str, str], str]] = None,
                 spare_managers: int = 0) -> None:
        """`spare_managers`: ids m{managers+1}.. with ports and peer addresses on every node but
        not started by start_all(): managers that join later (start(id, join_token=T))."""
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.seed = seed
        self.manager_ids = [f"m{i + 1}" for i in range(managers)]
        self.worker_ids = [f"w{i + 1}" for i in range(workers)]
        self.spare_ids = [f"m{managers + i + 1}" for i in range(spare_managers)]
        self.ids = self.manager_ids + self.worker_ids
        every = self.ids + self.spare_ids
        ports = free_ports(2 * len(every))
        self.peer_port = {n: ports[2 * i] for i, n in enumerate(every)}
        self.api_port = {n: ports[2 * i + 1] for i, n in enumerate(every)}
        self.extra_env = dict(extra_env or {})
        # (src, dst) -> "host:port" that src dials for dst; default: dst's peer port directly
        self.peer_address = peer_address or (lambda src, dst: f"127.0.0.1:{self.peer_port[dst]}")
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, str] = {}

    def env(self, node: str) -> dict:
        peers = {p: self.peer_address(node, p) for p in self.ids + self.spare_ids if p != node}
        env = dict(os.environ)
        env["PYTHONPATH"] = NODE_IMAGE_DIR + os.pathsep + env.get("PYTHONPATH", "")
        env.update({
            "CHAOS_NODE_ID": node,
            "CHAOS_ROLE": "worker" if node in self.worker_ids else "manager",
            "CHAOS_MANAGERS": ",".join(self.manager_ids),
            "CHAOS_PEERS": json.dumps(peers),
            "CHAOS_PEER_HOST": "127.0.0.1",
            "CHAOS_API_HOST": "127.0.0.1",
            "CHAOS_PEER_PORT": str(self.peer_port[node]),
            "CHAOS_API_PORT": str(self.api_port[node]),
            "CHAOS_DATA_DIR": os.path.join(self.workdir, node),
            "CHAOS_SEED": str(self.seed * 1000 + (self.ids + self.spare_ids).index(node)),
        })
        env.update(self.extra_env)
        return env

    def url(self, node: str, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port[node]}{path}"

    def start(self, node: str, join_token: Optional[str] = None) -> None:
        """Start `node`; with `join_token` it joins the running cluster (CHAOS_JOIN_TOKEN)."""
        log_path = os.path.join(self.workdir, f"{node}.log")
        self.logs[node] = log_path
        env = self.env(node)
        if join_token is not None:
            env["CHAOS_JOIN_TOKEN"] = join_token
        with open(log_path, "ab") as logf:
            self.procs[node] = subprocess.Popen([sys.executable, "-m", "swarmnode.agent"],
                                                env=env, stdout=logf, stderr=logf,
                                                stdin=subprocess.DEVNULL)

    def wipe(self, node: str) -> None:
        """Remove a stopped node's data directory (a lost disk)."""
        import shutil
        assert not self.alive(node), f"{node} is running"
        shutil.rmtree(os.path.join(self.workdir, node), ignore_errors=True)

    def exit_code(self, node: str, timeout_s: float) -> Optional[int]:
        """Wait up to timeout_s for `node` to exit; its status, or None if it still runs."""
        try:
            return self.procs[node].wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def start_all(self) -> None:
        for n in self.ids:
            self.start(n)

    def kill(self, node: str) -> None:
        p = self.procs.get(node)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)

    def terminate(self, node: str, timeout_s: float = 10.0) -> int:
        """SIGTERM one node (graceful: it announces its gossip leave) and wait; its exit status."""
        p = self.procs[node]
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        return p.wait(timeout=timeout_s)

    def stop_all(self) -> None:
        for n, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for n, p in self.procs.items():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def alive(self, node: str) -> bool:
        p = self.procs.get(node)
        return p is not None and p.poll() is None

    def get(self, node: str, path: str, timeout: float = 3.0) -> tuple[int, dict]:
        return http("GET", self.url(node, path), timeout=timeout)

    def status(self, node: str) -> Optional[dict]:
        code, body = self.get(node, "/status", timeout=1.0)
        return body if code == 200 else None

    def leader(self, among: Optional[list] = None) -> Optional[str]:
        """The manager that says it is leader, when every answering manager agrees on it."""
        seen = set()
        leaders = []
        for m in among or (self.manager_ids + self.spare_ids):
            if not self.alive(m):
                continue
            st = self.status(m)
            if st is None:
                continue
            seen.add(st.get("leader"))
            if st.get("role") == "leader":
                leaders.append((st["term"], m))
        if not leaders:
            return None
        return max(leaders)[1]

    def log_tail(self, node: str, n: int = 30) -> str:
        try:
            with open(self.logs[node], "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except (OSError, KeyError):
            return ""
