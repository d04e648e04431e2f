"""Benchmark: the Toxiproxy data path and API (issue 7). Prints one JSON object, never pass/fail.

Keys: added_p50_ms / added_p99_ms (64-byte ping-pong round trip through one proxy hop minus direct,
per quantile), throughput_ratio (64 KiB writes through a proxy / direct), connections (concurrent
proxied connections held and answering), create_3000_s (POST /populate of 3,000 proxies),
latency_error_p99_ms (p99 of measured minus configured delay for a 20 ms latency toxic, the toxic-less
proxy round trip subtracted). Server: TOXIPROXY_URL if set (e.g. a real Toxiproxy), else the project's
compatible server started locally. The upstream echo/sink runs in its own process.

    python3 benchmarks/proxy.py [--pings 20000] [--mib 64] [--conns 2000] [--toxic-pings 1000]

Must not import `chaos`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- upstream process: echo on one port, sink-then-ack on another --------------------------------

def run_upstream():
    class Echo(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            self.tr.write(data)

    class Sink(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr
            self.want = None
            self.got = 0
            self.head = b""

        def data_received(self, data):
            if self.want is None:
                self.head += data
                if len(self.head) < 8:
                    return
                self.want = int.from_bytes(self.head[:8], "big")
                data = self.head[8:]
            self.got += len(data)
            if self.got >= self.want:
                self.tr.write(b"k")
                self.want, self.got, self.head = None, 0, b""

    async def main():
        loop = asyncio.get_running_loop()
        e = await loop.create_server(Echo, "127.0.0.1", 0, backlog=4096)
        s = await loop.create_server(Sink, "127.0.0.1", 0, backlog=4096)
        print(e.sockets[0].getsockname()[1], s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- helpers -----------------------------------------------------------------------------------------

def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pingpong(port, n, size=64):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * size
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s.sendall(msg)
        got = 0
        while got < size:
            d = s.recv(size - got)
            if not d:
                raise RuntimeError("connection closed during ping-pong")
            got += len(d)
        out.append(time.perf_counter() - t0)
    s.close()
    return out


def throughput(port, total):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    chunk = b"z" * 65536
    t0 = time.perf_counter()
    s.sendall(total.to_bytes(8, "big"))
    sent = 0
    while sent < total:
        s.sendall(chunk)
        sent += len(chunk)
    assert s.recv(1) == b"k"
    took = time.perf_counter() - t0
    s.close()
    return total / took


def hold_connections(port, n):
    socks = []
    ok = 0
    try:
        for _ in range(n):
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            except OSError:
                break
        for s in socks:
            s.sendall(b"h")
        for s in socks:
            try:
                if s.recv(1) == b"h":
                    ok += 1
            except OSError:
                pass
    finally:
        for s in socks:
            s.close()
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pings", type=int, default=20000)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--toxic-pings", type=int, default=1000)
    ap.add_argument("--upstream-process", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.upstream_process:
        run_upstream()
        return

    procs = []
    up = subprocess.Popen([sys.executable, __file__, "--upstream-process"], stdout=subprocess.PIPE)
    procs.append(up)
    echo_port, sink_port = (int(x) for x in up.stdout.readline().split())
    url = os.environ.get("TOXIPROXY_URL")
    server = "TOXIPROXY_URL" if url else "swarmnode.toxiproxy"
    if not url:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "node_image"), LOG_LEVEL="error")
        procs.append(subprocess.Popen([sys.executable, "-m", "swarmnode.toxiproxy", "-host", "127.0.0.1",
                                       "-port", str(port), "-seed", "7"], env=env, stdout=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"
    http = requests.Session()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                http.get(url + "/version", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        def proxy(name, upstream_port):
            http.delete(f"{url}/proxies/{name}", timeout=10)
            r = http.post(url + "/proxies", json={"name": name, "upstream": f"127.0.0.1:{upstream_port}",
                                                  "listen": "127.0.0.1:0"}, timeout=10)
            r.raise_for_status()
            return int(r.json()["listen"].rsplit(":", 1)[1])

        pe = proxy("bench_echo", echo_port)
        ps = proxy("bench_sink", sink_port)

        # added round-trip latency (interleaved runs so load drifts hit both sides)
        direct, via = [], []
        for _ in range(4):
            direct += pingpong(echo_port, args.pings // 4)
            via += pingpong(pe, args.pings // 4)
        d50, d99 = quantile(direct, 0.5), quantile(direct, 0.99)
        v50, v99 = quantile(via, 0.5), quantile(via, 0.99)

        # throughput: 7 interleaved rounds, ratio of medians (the shared host makes single runs noisy)
        total = args.mib * 1024 * 1024
        rounds_direct, rounds_via = [], []
        for _ in range(7):
            rounds_direct.append(throughput(sink_port, total))
            rounds_via.append(throughput(ps, total))
        t_direct = quantile(rounds_direct, 0.5)
        t_via = quantile(rounds_via, 0.5)

        conns = hold_connections(pe, args.conns)

        # latency toxic timing error
        lat_ms = 20
        r = http.post(f"{url}/proxies/bench_echo/toxics",
                      json={"name": "bench_lat", "type": "latency", "attributes": {"latency": lat_ms}}, timeout=10)
        r.raise_for_status()
        toxic_rtts = pingpong(pe, args.toxic_pings)
        http.delete(f"{url}/proxies/bench_echo/toxics/bench_lat", timeout=10)
        errors = [x - lat_ms / 1000.0 - v50 for x in toxic_rtts]

        # bulk creation
        items = [{"name": f"bench_pop_{i}", "upstream": f"127.0.0.1:{echo_port}", "listen": "127.0.0.1:0"}
                 for i in range(3000)]
        t0 = time.perf_counter()
        r = http.post(url + "/populate", json=items, timeout=120)
        create_s = time.perf_counter() - t0
        populate_status = r.status_code
        for it in items:
            http.delete(f"{url}/proxies/{it['name']}", timeout=10)
        for name in ("bench_echo", "bench_sink"):
            http.delete(f"{url}/proxies/{name}", timeout=10)

        result = {
            "added_p50_ms": round((v50 - d50) * 1000, 4),
            "added_p99_ms": round((v99 - d99) * 1000, 4),
            "throughput_ratio": round(t_via / t_direct, 3),
            "connections": conns,
            "create_3000_s": round(create_s, 3),
            "latency_error_p99_ms": round(quantile(errors, 0.99) * 1000, 3),
            "detail": {
                "server": server, "direct_p50_ms": round(d50 * 1000, 4), "direct_p99_ms": round(d99 * 1000, 4),
                "proxy_p50_ms": round(v50 * 1000, 4), "proxy_p99_ms": round(v99 * 1000, 4),
                "direct_mib_s": round(t_direct / 2 ** 20, 1), "proxy_mib_s": round(t_via / 2 ** 20, 1),
                "connections_tried": args.conns, "populate_status": populate_status,
                "latency_error_p50_ms": round(quantile(errors, 0.5) * 1000, 3),
                "latency_error_p90_ms": round(quantile(errors, 0.9) * 1000, 3),
                "latency_error_max_ms": round(max(errors) * 1000, 3),
                "loadavg_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
            },
        }
        print(json.dumps(result))
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
