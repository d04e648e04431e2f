"""Benchmark: membership operations on agent processes (loopback, no Docker; issue 23).

A 3-manager LocalCluster with `--entries` applied entries (default 10,000), then `--reps` rounds of:
remove the leader (forced) -> time until another manager reports leader
(`remove_leader_to_new_leader_ms`); kill and wipe the removed node; start a fresh manager under a
new id with the join token -> time from the removal until the newcomer is a voter AND has applied up
to the leader's commit index (`replace_manager_s`). One extra join measures `add_learner_catchup_s`
(learner listed -> voter, the catch-up of §4.2.1). `sim_seeds_10k_violations` is read from
`--sim-json` (the output of `benchmarks/raft_sim_safety.py --profile membership --seeds 10000`),
else null.

Prints one JSON object: replace_manager_p99_s, add_learner_catchup_s,
remove_leader_to_new_leader_p99_ms, sim_seeds_10k_violations, the samples, entries, reps, load_1m
before and after. Goals (issue 23): replace <= 5 s with 10,000 entries, remove-leader-to-new-leader
p99 <= 1,500 ms; never passes or fails on time (the machine is shared). With reps < 100 the p99 is
the largest sample. Usage: python benchmarks/membership.py [--entries 10000] [--reps 5] [--save]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "node_image"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from swarmnode.agent.localcluster import LocalCluster, http, put_until_ok, wait_for  # noqa: E402


def _p99(xs: list) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.99 * len(s)))]


def _config(c: LocalCluster, node: str) -> dict:
    code, body = http("GET", c.url(node, "/config"), timeout=1.0)
    return body if code == 200 else {}


def _fill(c: LocalCluster, n: int, lanes: int = 16) -> None:
    """n writes through `lanes` sessions, each lane's writes in order (seq 1, 2, ...)."""
    urls = [c.url(m, "/kv/k") for m in c.manager_ids]

    def lane(k: int) -> None:
        for seq, i in enumerate(range(k, n, lanes), start=1):
            code, body = put_until_ok(urls, i, f"fill{k}", seq)
            if code != 200:
                raise RuntimeError(f"fill write {i} failed: {code} {body}")
    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(lane, range(lanes)))


def _leader(c: LocalCluster, among: list) -> str | None:
    return c.leader(among)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--sim-json", default=None, help="raft_sim_safety.py --profile membership output")
    ap.add_argument("--save", action="store_true")
    a = ap.parse_args()
    rec = None
    if a.save:
        from _result import Recorder
        rec = Recorder("membership")
    load_before = os.getloadavg()[0]
    t_start = time.time()
    work = tempfile.mkdtemp(prefix="bench-membership-")
    c = LocalCluster(work, managers=3, workers=0, seed=a.seed, spare_managers=a.reps + 1)
    out: dict = {"entries": a.entries, "reps": a.reps, "seed": a.seed, "workdir": work}
    try:
        c.start_all()
        wait_for(c.leader, 60, what="a leader")
        token = wait_for(lambda: (lambda r: r[1].get("join_token") if r[0] == 200 else None)(
            http("GET", c.url("m1", "/join-token"))), 60, what="the join token")
        _fill(c, a.entries)
        live = list(c.manager_ids)
        spares = list(c.spare_ids)
        # add_learner_catchup_s: one join into the 3-voter cluster (learner listed -> voter)
        new = spares.pop(0)
        leader = _leader(c, live)
        c.start(new, join_token=token)
        wait_for(lambda: new in _config(c, leader).get("learners", []) + _config(c, leader).get("voters", []),
                 120, interval_s=0.01, what=f"{new} listed")
        t0 = time.monotonic()
        wait_for(lambda: new in _config(c, leader).get("voters", []), 120, interval_s=0.01, what=f"{new} voter")
        out["add_learner_catchup_s"] = round(time.monotonic() - t0, 3)
        live.append(new)
        # remove it again so each round starts from 3 voters
        http("POST", c.url(leader, "/membership"), {"action": "remove", "node": new, "force": True}, timeout=10)
        c.kill(new)
        live.remove(new)
        new_leader_ms, replace_s = [], []
        for _ in range(a.reps):
            old = wait_for(lambda: _leader(c, live), 30, what="a leader")
            rest = [m for m in live if m != old]
            t0 = time.monotonic()
            code, body = http("POST", c.url(old, "/membership"), {"action": "remove", "node": old, "force": True},
                              timeout=10)
            if code != 200:
                raise RuntimeError(f"remove {old}: {code} {body}")
            nl = wait_for(lambda: _leader(c, rest), 30, interval_s=0.005, what="a new leader")
            new_leader_ms.append(round((time.monotonic() - t0) * 1000, 1))
            c.kill(old)
            c.wipe(old)
            live = rest
            new = spares.pop(0)
            c.start(new, join_token=token)

            def replaced():
                cfg, st = _config(c, nl), c.status(new) or {}
                lst = c.status(nl) or {}
                return new in cfg.get("voters", []) and st.get("applied_index", 0) >= lst.get("commit_index", 1 << 60) - 5
            wait_for(replaced, 120, interval_s=0.01, what=f"{new} voter and caught up")
            replace_s.append(round(time.monotonic() - t0, 3))
            live.append(new)
        out["remove_leader_to_new_leader_ms"] = new_leader_ms
        out["remove_leader_to_new_leader_p99_ms"] = _p99(new_leader_ms)
        out["replace_manager_s"] = replace_s
        out["replace_manager_p99_s"] = _p99(replace_s)
    finally:
        c.stop_all()
    out["sim_seeds_10k_violations"] = None
    if a.sim_json:
        with open(a.sim_json) as f:
            sim = json.load(f)
        out["sim_seeds_10k_violations"] = sim.get("sim_seeds_10k_violations", sim.get("violations"))
        out["sim_seeds"] = sim.get("seeds")
    out["load_1m_before"], out["load_1m_after"] = load_before, os.getloadavg()[0]
    out["seconds"] = round(time.time() - t_start, 1)
    if rec is not None:
        out["saved"] = str(rec.save(out))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
