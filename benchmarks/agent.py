"""Benchmark the node agent on loopback: prints exactly one JSON object on stdout.

Measures, with local processes (no Docker, no proxy):
  ready_s       time from starting 3 managers + 5 workers to a ready cluster, judged by
                chaos.env.ready (one leader, all workers READY, all gossip tables all-alive) --
                local processes, not containers;
  writes_per_s  acknowledged PUTs per second from concurrent clients against a 3-manager cluster
                (all clients talk to the leader; fsync on, as in production);
  p50_ms/p99_ms latency of those acknowledged writes;
  rss_mb        resident memory of each node after the load (from /proc/<pid>/status VmRSS);
  cpu_ms_per_write  CPU time each manager spent per acknowledged write (robust to a busy host);
  idle_cpu_pct  CPU share of each idle manager (ticks, heartbeats, gossip) over 3 s;
  store_digest_ms   one Store.digest() at the load's final store size (the core runs it per apply);
  fsync_ms_p50  median small append + fsync on this file system (a write waits for two in a row).
Never passes or fails on time. Usage: python3 benchmarks/agent.py [--duration S] [--clients N]

Imports chaos.env.ready (the environment's readiness judgement) so ready_s means the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "node_image"))

from swarmnode.agent.localcluster import LocalCluster, wait_for  # noqa: E402


def rss_mb(pid: int):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_s(pid: int):
    """utime + stime of a process in seconds (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def digest_cost_ms(keys: int, clients: int) -> float:
    """Time of one Store.digest() on a store the size the load leaves behind (diagnostic: the
    Raft core computes it after every applied entry, on every manager)."""
    from swarmnode.raft.store import Store
    st = Store()
    for i in range(keys):
        st.apply(i + 1, {"op": "kv.put", "key": f"k{i}", "value": i})
    for c in range(clients):
        st.apply(keys + c + 1, {"op": "kv.put", "key": "x", "value": c, "client_id": f"c{c}", "seq": 1})
    t0 = time.perf_counter()
    for _ in range(20):
        st.digest()
    return round((time.perf_counter() - t0) / 20 * 1000, 3)


def fsync_ms(workdir: str, n: int = 50) -> float:
    """Median time of a small append + fsync in the data directory's file system (diagnostic: each
    write waits for one on the leader and one on a follower)."""
    path = os.path.join(workdir, "fsync-probe")
    times = []
    with open(path, "ab") as f:
        for _ in range(n):
            t0 = time.perf_counter()
            f.write(b"x" * 200)
            f.flush()
            os.fsync(f.fileno())
            times.append((time.perf_counter() - t0) * 1000)
    os.unlink(path)
    return round(sorted(times)[n // 2], 3)


def ready_cluster(c: LocalCluster):
    """Ready by the environment's own judgement (chaos.env.ready): one leader, every worker READY
    in its table, every gossip table showing every node alive."""
    from chaos.env.ready import evaluate
    statuses = {n: c.status(n) for n in c.ids}
    return not evaluate(statuses, c.manager_ids, c.worker_ids)


def measure_ready(workdir: str, seed: int):
    c = LocalCluster(os.path.join(workdir, "ready"), managers=3, workers=5, seed=seed,
                     extra_env={"CHAOS_DISPATCHER_HEARTBEAT_MS": "200"})
    t0 = time.monotonic()
    c.start_all()
    try:
        wait_for(lambda: ready_cluster(c), 60, interval_s=0.02, what="ready 3+5 cluster")
        return round(time.monotonic() - t0, 3), None
    except TimeoutError:
        from chaos.env.ready import evaluate
        statuses = {n: c.status(n) for n in c.ids}
        return None, [str(f) for f in evaluate(statuses, c.manager_ids, c.worker_ids)]
    finally:
        c.stop_all()


async def load(url_base: str, clients: int, duration_s: float, seed: int) -> tuple[list, dict, int]:
    import aiohttp

    latencies: list[float] = []
    errors: dict = {}
    timeouts = 0
    stop_at = time.monotonic() + duration_s

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors, timeouts
        seq = 0
        while time.monotonic() < stop_at:
            key = f"k{(i * 7919 + seq) % 1000}"
            t0 = time.monotonic()
            try:
                async with session.put(f"{url_base}/kv/{key}",
                                       json={"value": seq, "client_id": f"c{seed}-{i}", "seq": seq}) as r:
                    await r.read()
                    if r.status == 200:
                        latencies.append((time.monotonic() - t0) * 1000)
                    else:
                        errors[r.status] = errors.get(r.status, 0) + 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                timeouts += 1
            seq += 1

    timeout = aiohttp.ClientTimeout(total=5)
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    return latencies, errors, timeouts


def quantile(xs: list, q: float):
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of write load")
    ap.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out: dict = {"benchmark": "agent", "seed": args.seed, "clients": args.clients,
                 "duration_s": args.duration, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="chaos-bench-agent-") as tmp:
        out["fsync_ms_p50"] = fsync_ms(tmp)
        out["ready_s"], failures = measure_ready(tmp, args.seed)
        if failures:
            out["ready_failures"] = failures  # not ready within the 60 s bound
        c = LocalCluster(os.path.join(tmp, "load"), managers=3, workers=0, seed=args.seed)
        c.start_all()
        try:
            leader = wait_for(c.leader, 30, what="leader")
            out["rss_mb_idle"] = {n: rss_mb(p.pid) for n, p in sorted(c.procs.items())}
            idle0, t_idle = {n: cpu_s(p.pid) for n, p in c.procs.items()}, time.monotonic()
            time.sleep(3.0)  # measuring idle CPU: nothing to await, the nodes just run
            span = time.monotonic() - t_idle
            out["idle_cpu_pct"] = {n: round((cpu_s(p.pid) - idle0[n]) / span * 100, 1)
                                   for n, p in sorted(c.procs.items()) if idle0.get(n) is not None}
            cpu0 = {n: cpu_s(p.pid) for n, p in c.procs.items()}
            t0 = time.monotonic()
            lat, errors, timeouts = asyncio.run(load(c.url(leader, ""), args.clients, args.duration,
                                                     args.seed))
            elapsed = time.monotonic() - t0
            out["writes_per_s"] = round(len(lat) / elapsed, 1)
            out["p50_ms"] = quantile(lat, 0.50)
            out["p99_ms"] = quantile(lat, 0.99)
            out["writes_ok"] = len(lat)
            out["write_errors"] = errors
            out["write_timeouts"] = timeouts
            out["rss_mb"] = {n: rss_mb(p.pid) for n, p in sorted(c.procs.items())}
            if lat:
                out["cpu_ms_per_write"] = {
                    n: round((cpu_s(p.pid) - cpu0[n]) * 1000 / len(lat), 3)
                    for n, p in sorted(c.procs.items()) if cpu0.get(n) is not None}
            out["store_digest_ms"] = digest_cost_ms(1000, args.clients)
            st = c.status(leader) or {}
            out["leader_commit_index"] = st.get("commit_index")
        finally:
            c.stop_all()
    out["notes"] = ("ready_s is for local processes on loopback (3 managers + 5 workers), not "
                    "containers; the container number comes from the environment's benchmark. "
                    "Clients run on the same host as the nodes (they compete for CPU); fsync on.")
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
