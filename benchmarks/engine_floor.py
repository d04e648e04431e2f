"""Benchmark: what the Docker engine alone costs for N containers, the floor under `ready_s_3x100`
and `down_s_3x100` (benchmarks/cluster.py).

N idle containers (`sleep infinity`) from the node image, made exactly as `chaos up` makes a node's
container (one labelled network, --init, the same hardening; `--ports K` published ports on
127.0.0.1 each: `up` publishes none where the host reaches the network, 0 here by default; before
it published about 2 a node -- an API port each, and the client links on the first Toxiproxy shard),
created CHAOS_CREATE_PARALLEL (8) at a time as `up` does, then removed as `down` does (all paused
at once, then force-removed CHAOS_REMOVE_PARALLEL at a time). No agent runs, so every second here is the engine's (and the kernel's) own.

Prints one JSON object: create_start_s, down_s (chaos.env.cleanup.remove_objects: containers,
network), per-container figures, and from the engine's own event stream the median gap between
network-endpoint disconnects during the removal (the engine tears endpoints down about one at a time).
Usage: python3 benchmarks/engine_floor.py [--n 103] [--ports 0]
Everything is labelled as cluster `enginefloor` (chaos cleanup --name enginefloor removes leftovers).
Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chaos import image as image_mod  # noqa: E402
from chaos.env import cleanup  # noqa: E402
from chaos.env import labels as L  # noqa: E402
from chaos.env import up as up_mod  # noqa: E402
from chaos.env.engine import connect  # noqa: E402

CLUSTER = "enginefloor"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=103, help="containers (3 + 100 nodes = 103)")
    ap.add_argument("--ports", type=int, default=0, help="ports published on 127.0.0.1 per container")
    args = ap.parse_args()
    client = connect()
    found = image_mod.find_node_image(client)
    if found is None:
        print("no node image: run `chaos image build` first", file=sys.stderr)
        return 2
    image = found.tags[0] if getattr(found, "tags", None) else found.id
    run_id = f"ef{int(time.time()) % 100000}"
    cleanup.remove_objects(client, cluster=CLUSTER)
    labels = L.object_labels(CLUSTER, run_id)
    net = client.networks.create(L.network_name(CLUSTER, run_id), labels=labels)
    disconnects: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        since = int(time.time())
        for ev in client.events(decode=True, since=since, filters={"type": "network", "event": "disconnect"}):
            if ev.get("Actor", {}).get("ID") == net.id:
                disconnects.append(int(ev["timeNano"]))
            if stop.is_set():
                return

    def make(i: int):
        return client.containers.run(
            image, ["infinity"], entrypoint=["sleep"], detach=True, name=L.container_name(CLUSTER, f"n{i}"),
            labels=L.object_labels(CLUSTER, run_id, f"n{i}", "worker"),
            network=net.name, ports={f"{up_mod.AGENT_API_PORT + k}/tcp": ("127.0.0.1", None) for k in range(args.ports)},
            **up_mod._hardening("128m", 64, False, 100))

    out: dict = {"n": args.n, "ports_per_container": args.ports, "image": image, "create_parallel": up_mod.create_parallel(),
                 "pause_parallel": cleanup.pause_parallel(), "remove_parallel": cleanup.remove_parallel(),
                 "loadavg_before": list(os.getloadavg())}
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(up_mod.create_parallel()) as pool:
            list(pool.map(make, range(args.n)))
        t1 = time.monotonic()
        threading.Thread(target=watch, daemon=True).start()
        time.sleep(0.5)   # the event stream is open before the removal starts (not a synchronization of the result)
        t2 = time.monotonic()
        removed = cleanup.remove_objects(client, cluster=CLUSTER)
        t4 = time.monotonic()
        stop.set()
        gaps = [(b - a) / 1e6 for a, b in zip(disconnects, disconnects[1:])]
        out.update({
            "create_start_s": round(t1 - t0, 2), "create_start_per_container_ms": round((t1 - t0) / args.n * 1000, 1),
            "down_s": round(t4 - t2, 2),
            "down_per_container_ms": round((t4 - t2) / args.n * 1000, 1),
            "disconnect_events": len(disconnects),
            "disconnect_gap_median_ms": round(statistics.median(gaps), 1) if gaps else None,
            "removed": removed.total, "failed": removed.failed,
        })
    finally:
        cleanup.remove_objects(client, cluster=CLUSTER)
    out["loadavg_after"] = list(os.getloadavg())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
