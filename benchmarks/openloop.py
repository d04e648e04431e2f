"""Open-loop write latency of the node agent alone, with an optional per-stage trace: one JSON object.

What benchmarks/agent.py measures as `goals.p99_ms_at_1000_writes_per_s` (its light client, Poisson
arrivals from random.Random(seed), latency from each write's scheduled start), without the rest of
that benchmark, so A/B runs are short. 3 managers on loopback, fsync on, as there.
--trace DIR sets CHAOS_WRITE_TRACE on the managers (swarmnode.agent.wtrace) and adds `stages`:
quantiles of each stage of a write's path (leader handler -> proposal -> leader fsync -> send ->
follower receive/fsync/ack -> leader commit -> apply -> answer), in ms, for all writes and for the
slowest 1 % by leader handler time; also the client's own lag (a write sent after its scheduled
time: the client's loop was busy) from the client side.
Usage: python3 benchmarks/openloop.py [--rate R] [--duration S] [--seed N] [--trace DIR] [--env K=V ...]
Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "node_image"))

def _load_agent_bench():
    """benchmarks/agent.py by path (a bare `import agent` can find another module of that name)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_agent_for_openloop", os.path.join(HERE, "agent.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


agent_bench = _load_agent_bench()
from swarmnode.agent.localcluster import LocalCluster, wait_for  # noqa: E402


def _q(xs: list, q: float):
    return agent_bench.quantile(xs, q)


def _load_trace(path: str) -> dict:
    """stage -> index -> first time (ns); for `send`/`ack`/`ackin`/`recv` the earliest too."""
    out: dict = defaultdict(dict)
    try:
        with open(path) as f:
            for line in f:
                stage, index, t = json.loads(line)[:3]
                d = out[stage]
                if index not in d or t < d[index]:
                    d[index] = t
    except OSError:
        pass
    return out


def _ack_covering(acks: dict) -> dict:
    """index -> earliest time an ack with match_index >= index was seen (acks: match -> time)."""
    out: dict = {}
    best = None
    for m in sorted(acks, reverse=True):
        t = acks[m]
        best = t if best is None else min(best, t)
        out[m] = best
    return out


def stages(tdir: str, leader: str, followers: list) -> dict:
    L = _load_trace(os.path.join(tdir, f"{leader}.trace"))
    F = [_load_trace(os.path.join(tdir, f"{f}.trace")) for f in followers]
    ackin_m = _ack_covering(L.get("ackin", {}))
    ack_keys = sorted(ackin_m)
    f_ack = [(_ack_covering(f.get("ack", {}))) for f in F]
    import bisect

    def covering(m: dict, keys: list, i: int):
        j = bisect.bisect_left(keys, i)
        return m[keys[j]] if j < len(keys) else None

    f_keys = [sorted(a) for a in f_ack]
    rows = []
    for idx, t_in in L.get("in", {}).items():
        r = {"idx": idx, "in": t_in}
        for s in ("prop", "persist", "sync", "send", "commit", "apply", "out"):
            r[s] = L.get(s, {}).get(idx)
        r["ackin"] = covering(ackin_m, ack_keys, idx)
        # the follower whose ack came first
        best = None
        for f, a, k in zip(F, f_ack, f_keys):
            ta = covering(a, k, idx)
            if ta is None:
                continue
            if best is None or ta < best["ack"]:
                best = {"recv": f.get("recv", {}).get(idx), "persist": f.get("persist", {}).get(idx),
                        "sync": f.get("sync", {}).get(idx), "ack": ta}
        if best:
            r.update({"f_" + k: v for k, v in best.items()})
        rows.append(r)
    path = [("handler_to_prop", "in", "prop"), ("prop_to_persist", "prop", "persist"),
            ("leader_fsync", "persist", "sync"), ("sync_to_send", "sync", "send"),
            ("net_to_follower", "send", "f_recv"), ("f_recv_to_persist", "f_recv", "f_persist"),
            ("f_fsync", "f_persist", "f_sync"), ("f_sync_to_ack", "f_sync", "f_ack"),
            ("net_ack", "f_ack", "ackin"), ("ackin_to_commit", "ackin", "commit"),
            ("commit_to_apply", "commit", "apply"), ("apply_to_answer", "apply", "out"),
            ("handler_total", "in", "out")]

    def summarize(rs: list) -> dict:
        out = {}
        for name, a, b in path:
            xs = [(r[b] - r[a]) / 1e6 for r in rs if r.get(a) and r.get(b)]
            out[name] = {"p50": _q(xs, 0.5), "p90": _q(xs, 0.9), "p99": _q(xs, 0.99),
                         "mean": round(sum(xs) / len(xs), 3) if xs else None, "n": len(xs)}
        return out

    ins = list(L.get("in", {}).values())
    outs = list(L.get("out", {}).values())
    window = (min(ins), max(outs)) if ins and outs else (0, 1 << 62)
    gc_out = {}
    stalls = {}
    for name in [leader] + list(followers):
        gc_out[name] = _gc_pauses(os.path.join(tdir, f"{name}.trace"), window)
        stalls[name] = loop_stalls(os.path.join(tdir, f"{name}.trace"), window)
    rows.sort(key=lambda r: (r["out"] or 0) - r["in"])
    tail = rows[-max(1, len(rows) // 100):]
    # how many of the slowest 1 % overlap a leader gc2 pause
    pauses = gc_out[leader].pop("_spans", [])
    for g in gc_out.values():
        g.pop("_spans", None)
    hit = sum(1 for r in tail if r["out"] and any(a < r["out"] and b > r["in"] for a, b, gen in pauses if gen >= 1))
    return {"all": summarize(rows), "slowest_1pct": summarize(tail), "writes_traced": len(rows),
            "gc": gc_out, "slowest_1pct_overlapping_leader_gc1_or_gc2": hit, "slowest_1pct_n": len(tail),
            "loop_stalls": stalls}


def loop_stalls(path: str, window: tuple) -> dict:
    """The event-loop callbacks that cost the loop's thread >= 1 ms of CPU (wtrace `stall` rows)
    during `window`: counts at 1/2/5 ms, and per callback name the count and CPU ms total/max."""
    by: dict = {}
    n = {1: 0, 2: 0, 5: 0}
    try:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if row[0] != "stall" or not window[0] <= row[2] <= window[1]:
                    continue
                ms = row[1] / 1e6
                for k in n:
                    n[k] += ms >= k
                b = by.setdefault(row[3], {"n": 0, "cpu_ms_total": 0.0, "cpu_ms_max": 0.0})
                b["n"] += 1
                b["cpu_ms_total"] = round(b["cpu_ms_total"] + ms, 3)
                b["cpu_ms_max"] = round(max(b["cpu_ms_max"], ms), 3)
    except OSError:
        pass
    return {"ge_1ms": n[1], "ge_2ms": n[2], "ge_5ms": n[5],
            "by_callback": dict(sorted(by.items(), key=lambda kv: -kv[1]["cpu_ms_total"]))}


def _gc_pauses(path: str, window: tuple) -> dict:
    """Per generation: count, total ms, max ms of the collector's pauses in one trace file that
    began within `window` (the load: the leader's first handler entry to its last answer)."""
    spans, open_ = [], {}
    out_full = None
    try:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                stage, index, t = row[:3]
                if stage == "gc_full_at_exit":
                    out_full = {"tracked_objects": index, "cpu_ms": round(row[2] / 1e6, 3), "frozen_objects": row[3]}
                elif stage.startswith("gc"):
                    if index == 1:
                        open_[stage] = (t, row[3])
                    elif stage in open_:
                        a, ca = open_.pop(stage)
                        if window[0] <= a <= window[1]:
                            spans.append((a, t, int(stage[2:]), row[3] - ca))
    except OSError:
        pass
    out: dict = {}
    for gen in (0, 1, 2):
        ds = [(b - a) / 1e6 for a, b, g, c in spans if g == gen]
        cs = [c / 1e6 for a, b, g, c in spans if g == gen]
        out[f"gc{gen}"] = {"n": len(ds), "wall_ms_total": round(sum(ds), 2),
                           "wall_ms_max": round(max(ds), 2) if ds else None,
                           "cpu_ms_total": round(sum(cs), 2), "cpu_ms_max": round(max(cs), 3) if cs else None}
    out["full_collection_at_exit"] = out_full
    out["_spans"] = [s[:3] for s in spans]
    return out


async def open_loop_timed(host: str, port: int, rate: float, duration_s: float, seed: int) -> dict:
    """agent.open_loop_light plus the client's send lag (actual send - scheduled)."""
    import random
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    lat, lag = [], []
    errors: dict = {}
    idle: list = []
    timeouts = 0

    async def connect():
        _, proto = await loop.create_connection(agent_bench._HttpConn, host, port)
        return proto

    async def one(i: int, scheduled: float) -> None:
        body = b'{"value": %d}' % i
        req = (b"PUT /kv/o%d HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (i % 1000, host.encode(), len(body), body))
        nonlocal timeouts
        try:
            conn = idle.pop() if idle else await connect()
            conn.fut = loop.create_future()
            lag.append((time.monotonic() - scheduled) * 1000)
            conn.transport.write(req)
            status = await asyncio.wait_for(conn.fut, 5)
        except (OSError, ConnectionError, asyncio.TimeoutError):
            timeouts += 1
            return
        if status == 200:
            lat.append((time.monotonic() - scheduled) * 1000)
        else:
            errors[status] = errors.get(status, 0) + 1
        if not conn.closed:
            idle.append(conn)

    idle.extend([await connect() for _ in range(16)])
    gc.collect()
    gc.freeze()   # as agent.open_loop_light: the client's collector kept out of the measurement
    gc_pauses = agent_bench._GcPauses()
    pending: set = set()
    start = t = time.monotonic()
    i = 0
    c0 = time.process_time()
    while True:
        t += rng.expovariate(rate)
        if t - start >= duration_s:
            break
        delay = t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(i, t))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
    await asyncio.gather(*pending)
    cpu = time.process_time() - c0
    gc_pauses.stop()
    gc.unfreeze()
    for c in idle:
        c.transport.close()
    return {"offered": i, "ok": len(lat), "errors": errors, "timeouts": timeouts, "p50_ms": _q(lat, 0.5), "p90_ms": _q(lat, 0.9),
            "p99_ms": _q(lat, 0.99), "max_ms": _q(lat, 1.0), "send_lag_p50_ms": _q(lag, 0.5),
            "send_lag_p99_ms": _q(lag, 0.99), "client_cpu_s": round(cpu, 3),
            "client_gc_max_ms": gc_pauses.max_ms()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace", default=None, help="directory for the managers' write traces")
    ap.add_argument("--env", action="append", default=[], help="K=V for the managers (repeatable)")
    args = ap.parse_args()
    extra = {}
    for kv in args.env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            ap.error(f"--env wants K=V, got {kv!r}")
        extra[k] = v
    if args.trace:
        os.makedirs(args.trace, exist_ok=True)
        extra["CHAOS_WRITE_TRACE"] = os.path.join(os.path.abspath(args.trace), "{node}.trace")
    out: dict = {"benchmark": "openloop", "rate": args.rate, "duration_s": args.duration, "seed": args.seed,
                 "env": extra, "commit": agent_bench._commit(), "loadavg_1m_start": agent_bench._load1()}
    with tempfile.TemporaryDirectory(prefix="chaos-bench-openloop-") as tmp:
        c = LocalCluster(os.path.join(tmp, "c"), managers=3, workers=0, seed=args.seed, extra_env=extra)
        c.start_all()
        try:
            leader = wait_for(c.leader, 30, what="leader")
            # settle: the leader's first entry applied (a write answered)
            wait_for(lambda: c.status(leader) and (c.status(leader).get("commit_index") or 0) > 0, 30,
                     what="first commit")
            cpu0 = {n: agent_bench.cpu_s(p.pid) for n, p in c.procs.items()}
            host, port = c.url(leader, "").split("//", 1)[1].rstrip("/").rsplit(":", 1)
            ol = asyncio.run(open_loop_timed(host, int(port), args.rate, args.duration, args.seed))
            out["open_loop"] = ol
            if ol["ok"]:
                out["cpu_ms_per_write"] = {n: round((agent_bench.cpu_s(p.pid) - cpu0[n]) * 1000 / ol["ok"], 3)
                                           for n, p in sorted(c.procs.items())}
            st = c.status(leader) or {}
            cnt = st.get("counters") or {}
            if cnt.get("group_syncs"):
                out["leader_entries_per_fsync"] = round(cnt["group_entries"] / cnt["group_syncs"], 2)
            out["leader"] = leader
        finally:
            c.stop_all()
    out["loadavg_1m_end"] = agent_bench._load1()
    if args.trace:
        out["stages"] = stages(args.trace, leader, [n for n in c.manager_ids if n != leader])
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
