"""On-event-loop cost of a manager's two periodic jobs, measured in one process: one JSON object.

1. The store-digest cross-check (swarmnode.agent.fast_store): one digest per applied put, as the
   Raft core journals, on a store of --keys keys; reports the largest single digest() call and how
   many cost >= 1 ms / >= 0.2 ms of thread CPU (a from-scratch recomputation on one call shows up
   there once per VERIFY_EVERY applies).
2. A local snapshot's persistence (swarmnode.raft.storage.FileStorage): one-entry groups, each
   persisted and synced on the calling thread (standing in for the loop; the agent's group fsync
   runs on a thread too, but the snapshot was written inside persist()), and a snapshot of a
   --keys-key store every --every entries; with --background (the default when the storage has
   it) snapshots go to a writer thread as the agent's manager sets up. Reports, per snapshot, the
   calling thread's CPU ms and fsync count for that persist+sync, and the fsyncs on other threads.
Thread CPU time, so a loaded machine inflates it little; wall times are not reported.
Usage: python3 benchmarks/loop_cost.py [--keys N] [--puts N] [--entries N] [--every N] [--node-image DIR]
(--node-image: the swarmnode package to measure, e.g. another worktree's, for an A/B.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))


def digest_cost(keys: int, puts: int) -> dict:
    from swarmnode.agent.fast_store import FastStore
    cpu = time.thread_time_ns
    s = FastStore()
    costs = []
    for i in range(1, puts + 1):
        s.apply(i, {"op": "kv.put", "key": f"o{i % keys}", "value": i})
        c0 = cpu()
        s.digest()
        costs.append(cpu() - c0)
    costs = costs[keys // 10:]   # past the first (small-store) checks
    return {"calls": len(costs), "max_us": round(max(costs) / 1e3, 1),
            "mean_us": round(sum(costs) / len(costs) / 1e3, 2),
            "calls_ge_1ms": sum(c >= 1_000_000 for c in costs),
            "calls_ge_0.2ms": sum(c >= 200_000 for c in costs), "mismatches": s.mismatches}


def snapshot_cost(keys: int, entries: int, every: int, background: bool) -> dict:
    from swarmnode.raft import Entry, FileStorage, HardState, Snapshot, chain_hash
    cpu = time.thread_time_ns
    me = threading.get_ident()
    fsyncs = {"caller": 0, "other": 0}
    real_fsync = os.fsync

    def counting_fsync(fd):
        fsyncs["caller" if threading.get_ident() == me else "other"] += 1
        real_fsync(fd)
    os.fsync = counting_fsync
    pool = ThreadPoolExecutor(1)
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-bench-loopcost-") as d:
            st = FileStorage(d)
            used_background = background and hasattr(st, "snapshot_writer")
            if used_background:
                st.snapshot_writer = pool.submit
            data = {"kv": {f"o{k}": k for k in range(keys)}, "nodes": {}, "services": {}, "tasks": {},
                    "sessions": {}}
            h = ""
            snap_cpu, snap_fsyncs, plain = [], [], []
            for i in range(1, entries + 1):
                cmd = {"op": "kv.put", "key": f"o{i % keys}", "value": i}
                h_prev, h = h, chain_hash(h, 1, cmd)
                e = Entry(i, 1, cmd, h)
                snap = Snapshot(i - 1, 1, h_prev, dict(data, applied_index=i - 1)) if i % every == 0 else None
                f0, c0 = fsyncs["caller"], cpu()
                st.persist(HardState(1, None, i - 1), [e], snap)
                st.sync()
                c = cpu() - c0
                if snap is None:
                    plain.append(c)
                else:
                    snap_cpu.append(round(c / 1e6, 2))
                    snap_fsyncs.append(fsyncs["caller"] - f0)

            pool.shutdown(wait=True)
            st.close()
    finally:
        os.fsync = real_fsync

    return {"background": used_background, "snapshots": len(snap_cpu), "snapshot_caller_cpu_ms": snap_cpu,
            "snapshot_caller_fsyncs": snap_fsyncs, "plain_group_caller_cpu_us_mean": round(sum(plain) / len(plain) / 1e3, 1),
            "fsyncs": dict(fsyncs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--puts", type=int, default=10000)
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--no-background", dest="background", action="store_false")
    ap.add_argument("--node-image", default=os.path.join(os.path.dirname(HERE), "node_image"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.node_image))
    out = {"benchmark": "loop_cost", "keys": args.keys, "loadavg_1m": round(os.getloadavg()[0], 2),
           "digest": digest_cost(args.keys, args.puts),
           "snapshot": snapshot_cost(args.keys, args.entries, args.every, args.background)}
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
