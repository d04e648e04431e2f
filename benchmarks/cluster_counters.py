"""Benchmark: what a large cluster's agents did while coming up, and what they cost at rest.

Brings up a cluster (default 3 + 100, `--size MxW`) with `chaos.env.up.bring_up`, then prints one
JSON object (progress on stderr); never passes or fails on numbers:

  ready_s                 from the start of `up` to ready (as cluster.py's ready_s_MxW)
  sums                    summed over every node's /status when ready: transport `connects`,
                          `redials` (links dropped on a peer's hello: see transport._peer_restarted),
                          `frames_in`, and the SWIM core's `probes_failed` (probes this node gave up
                          on: its own accusations), `refutations`, `declared_dead`
  suspicions_per_node     median `suspicions_started` of a node (every suspicion it heard of)
  idle_cpu_ms_per_s       CPU of each agent process over --idle-s seconds once ready (median and
                          max per kind): read from /proc, so only for a cluster on this host's engine
  worker_cpu_s_at_ready   median CPU seconds a worker's agent had used when the cluster was ready

Usage:  python3 benchmarks/record.py cluster_counters.py -- [--size 3x100] [--idle-s 10]
Must not import: chaos.cli.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chaos.env import cleanup  # noqa: E402
from chaos.env import labels as L  # noqa: E402
from chaos.env.engine import connect  # noqa: E402
from chaos.env.spec import ClusterSpec  # noqa: E402
from chaos.env.up import bring_up  # noqa: E402
from chaos.image import build_node_image  # noqa: E402
from cluster import _size, _StderrProgress  # noqa: E402  (benchmarks/cluster.py: the same progress and MxW)

HZ = os.sysconf("SC_CLK_TCK")


def _agent_pid(init_pid: int) -> int | None:
    """The agent: the python3 child of the container's init (docker-init), or init itself."""
    try:
        if open(f"/proc/{init_pid}/comm").read().strip() == "python3":
            return init_pid
        kids = open(f"/proc/{init_pid}/task/{init_pid}/children").read().split()
    except OSError:
        return None
    for k in kids:
        try:
            if open(f"/proc/{k}/comm").read().strip() == "python3":
                return int(k)
        except OSError:
            continue
    return None


def _cpu_s(pid: int) -> float | None:
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / HZ


def _status(port: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as r:
        return json.load(r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=_size, default=(3, 100), metavar="MxW")
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=400.0)
    args = ap.parse_args()
    managers, workers = args.size
    client = connect()
    image = build_node_image(client).tag
    name = f"cc{os.getpid() % 10000}"
    out: dict = {"size": f"{managers}x{workers}", "seed": args.seed, "image": image}
    t0 = time.monotonic()
    try:
        bring_up(client, ClusterSpec(name=name, managers=managers, workers=workers, seed=args.seed),
                 image, args.timeout_s, _StderrProgress())
        out["ready_s"] = round(time.monotonic() - t0, 2)
        nodes = {}
        for c in client.containers.list(filters=L.selector(cluster=name)):
            node = c.labels.get(L.NODE_LABEL, "")
            ports = (c.attrs.get("NetworkSettings") or {}).get("Ports") or {}
            api = ports.get("8080/tcp")
            if not node or node.startswith("toxiproxy") or not api:
                continue
            nodes[node] = (api[0]["HostPort"], _agent_pid(c.attrs["State"]["Pid"]))
        cpu_at_ready = {n: _cpu_s(pid) for n, (_, pid) in nodes.items() if pid}
        with ThreadPoolExecutor(16) as pool:
            statuses = dict(zip(nodes, pool.map(lambda n: _status(nodes[n][0]), nodes)))
        sums = {"connects": 0, "redials": 0, "frames_in": 0, "probes_failed": 0, "refutations": 0,
                "declared_dead": 0}
        heard = []
        for st in statuses.values():
            c, g = st.get("counters", {}), (st.get("gossip") or {}).get("counters", {})
            for k in ("connects", "redials", "frames_in"):
                sums[k] += c.get(k, 0)
            for k in ("probes_failed", "refutations", "declared_dead"):
                sums[k] += g.get(k, 0)
            heard.append(g.get("suspicions_started", 0))
        out["sums"] = sums
        out["suspicions_per_node"] = statistics.median(heard) if heard else None
        wcpu = [v for n, v in cpu_at_ready.items() if n.startswith("w") and v is not None]
        out["worker_cpu_s_at_ready"] = round(statistics.median(wcpu), 3) if wcpu else None
        a = {n: _cpu_s(pid) for n, (_, pid) in nodes.items() if pid}
        time.sleep(args.idle_s)
        b = {n: _cpu_s(pid) for n, (_, pid) in nodes.items() if pid}
        idle: dict = {}
        for kind, prefix in (("worker", "w"), ("manager", "m")):
            vals = [(b[n] - a[n]) / args.idle_s * 1000 for n in a
                    if n.startswith(prefix) and a[n] is not None and b.get(n) is not None]
            if vals:
                idle[kind] = {"median": round(statistics.median(vals), 2), "max": round(max(vals), 2),
                              "n": len(vals)}
        out["idle_cpu_ms_per_s"] = idle or None
        out["idle_cpu_note"] = ("from /proc of this host; none when the engine's processes are not "
                                "visible here") if not idle else f"over {args.idle_s} s once ready"
    finally:
        t1 = time.monotonic()
        removed = cleanup.remove_objects(client, cluster=name)
        out["down_s"] = round(time.monotonic() - t1, 2)
        out["down_left"] = len(removed.failed)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
