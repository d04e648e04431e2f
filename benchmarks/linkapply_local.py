"""Benchmark: a flaky cut on every worker-to-worker link, applied and removed through the harness's
link-fault path against the compatible Toxiproxy server run locally on loopback (no Docker), so the
server's and the client's CPU cost per fault can be told apart. Prints one JSON object.

The cluster-shaped twin is `nemesis.py --only link-fault` (3 + 30 in Docker, the server also relaying
the agents' traffic); this one has no agent traffic unless `--conns N` opens N idle connections per
link through the proxies before each trial, untimed (each then gets its toxics' stages added, and is
closed when its timeout toxics are removed, as the agents' live connections are).

Keys: apply / verify / remove / remove_verify / listing wall-clock p50 and p99 in ms (the same split
as faults.jsonl's apply_ms and verify_ms), server_cpu_ms_per_trial and client_cpu_ms_per_trial (CPU
seconds from /proc and time.process_time over the timed part of each trial, averaged), links, toxics.

    python3 benchmarks/linkapply_local.py [--workers 30] [--trials 20] [--conns 0] [--profile FILE]

`--profile FILE` runs the server under cProfile and writes its stats to FILE on exit;
`--client-profile FILE` profiles the client's trials (not its start-up) into FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chaos.runner import ClusterEffects  # noqa: E402
from chaos.toxi import LinkController, ToxiproxyAPI  # noqa: E402
from chaos.topology import Topology  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None


class _Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def echo_server() -> int:
    """An echo upstream in a thread (the agent peers' stand-in)."""
    port = free_port()
    ready = threading.Event()

    def run():
        async def main():
            server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", port, backlog=4096)
            ready.set()
            async with server:
                await server.serve_forever()
        asyncio.run(main())

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return port


class _Cluster:
    """Just enough of chaos.env's cluster for ClusterEffects."""

    def __init__(self, api):
        self.api = api


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=30)
    ap.add_argument("--managers", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--conns", type=int, default=0, help="idle connections held per link")
    ap.add_argument("--profile", default=None, help="cProfile the server into this file")
    ap.add_argument("--client-profile", default=None, help="cProfile the client's trials into this file")
    args = ap.parse_args()
    if args.workers < 2 or args.trials < 1 or args.conns < 0:
        ap.error("--workers >= 2, --trials >= 1, --conns >= 0")

    managers = [f"m{i}" for i in range(1, args.managers + 1)]
    workers = [f"w{i}" for i in range(1, args.workers + 1)]
    topo = Topology(managers, workers)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "node_image"), LOG_LEVEL="warn")
    cmd = [sys.executable]
    if args.profile:
        cmd += ["-m", "cProfile", "-o", args.profile]
    cmd += ["-m", "swarmnode.toxiproxy", "-host", "127.0.0.1", "-port", str(port), "-seed", "1"]
    proc = subprocess.Popen(cmd, env=env)
    socks = []
    try:
        api = ToxiproxyAPI(f"127.0.0.1:{port}", timeout_s=30)
        api.wait_ready(10)
        up = echo_server() if args.conns else None
        specs = [{"name": s["name"], "listen": "127.0.0.1:0",
                  "upstream": f"127.0.0.1:{up}" if up else "127.0.0.1:9", "enabled": True}
                 for s in topo.proxy_specs("127.0.0.1")]
        listed = {p["name"]: p for p in api.populate(specs)}
        pairs = [(a, b) for a in workers for b in workers if a != b]
        addrs = [listed[f"{a}-{b}"]["listen"].rpartition(":") for a, b in pairs]

        def reconnect():
            """Fresh idle connections on every link (removing a timeout toxic closed the old ones,
            and the agents would dial again); outside the timed intervals."""
            for sock in socks:
                sock.close()
            socks.clear()
            for host, _, p in addrs:
                for _ in range(args.conns):
                    socks.append(socket.create_connection((host, int(p)), timeout=30))
            for sock in socks:   # an echo through each: the server has adopted and dialled it
                sock.sendall(b"x")
                if sock.recv(1) != b"x":
                    raise SystemExit("a proxied connection did not echo")
        links = LinkController(api, topo, seed=1)
        eff = ClusterEffects(_Cluster(api), links, clock=time.time)
        parts: dict[str, list] = {k: [] for k in ("apply", "verify", "remove", "remove_verify", "total",
                                                  "remove_total", "listing")}
        prof = None
        if args.client_profile:
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        server_cpu = client_cpu = 0.0
        for _ in range(args.trials):
            if args.conns:
                reconnect()
            s0, c0 = cpu_s(proc.pid), time.process_time()
            t0 = time.perf_counter()
            rec = eff.add_link_fault("flaky-cut", pairs, {"toxicity": 0.5, "kind": "cut"})
            parts["total"].append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            rem = eff.remove_link_fault("flaky-cut", pairs)
            parts["remove_total"].append((time.perf_counter() - t1) * 1000)
            parts["apply"].append(rec["apply_ms"])
            parts["verify"].append(rec["verify_ms"])
            parts["remove"].append(rem["apply_ms"])
            parts["remove_verify"].append(rem["verify_ms"])
            t2 = time.perf_counter()
            api.proxies()
            parts["listing"].append((time.perf_counter() - t2) * 1000)
            server_cpu += cpu_s(proc.pid) - s0
            client_cpu += time.process_time() - c0
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.client_profile)
        out = {"links": len(pairs), "toxics": 2 * len(pairs), "proxies": len(specs), "trials": args.trials,
               "conns_per_link": args.conns, "load_before": os.getloadavg()[0],
               "server_cpu_ms_per_trial": round(server_cpu * 1000 / args.trials, 1),
               "client_cpu_ms_per_trial": round(client_cpu * 1000 / args.trials, 1)}
        for k, v in parts.items():
            out[f"{k}_p50_ms"] = round(q(v, 0.5), 1)
            out[f"{k}_p99_ms"] = round(q(v, 0.99), 1)
        print(json.dumps(out))
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
