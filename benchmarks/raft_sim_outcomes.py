"""Record what the Raft simulator concludes on a fixed sample of runs, and compare two recordings.

A speed change to the simulator or its checks must not change what it finds. This script runs a
fixed sample from one source tree and writes every run's full result (trace CRC of every journal
event, stats, path counts, efficiency, violations with their times and details) to JSON; `--compare`
then says, per run, whether two recordings are identical and, where not, how the violations differ.

    python benchmarks/raft_sim_outcomes.py --root /path/to/old/tree --out before.json
    python benchmarks/raft_sim_outcomes.py --out after.json          # this tree
    python benchmarks/raft_sim_outcomes.py --compare before.json after.json

The sample (--sets, all by default):
  default     bug none, default profile, seeds 0..N-1 (N = --seeds, 100)
  hunt        bug none, HUNT_PROFILE, seeds 0..N-1
  membership  bug none, MEMBERSHIP_PROFILE, seeds 0..N-1
  bugs        each Raft bug outside MEMBERSHIP_BUGS on the hunting profile of tests/raft/test_raft_sim.py,
              seeds 0..39 (HUNT_MAX_SEEDS); each membership bug on MEMBERSHIP_PROFILE, seeds 0..19
  cores       every deliberately wrong core of tests/raft (RaftNode subclasses in wrong_cores.py,
              test_raft_consequences.py, test_raft_contracts.py) on seeds 0..4 of the hunting profile
              (the membership cores of wrong_cores.py on MEMBERSHIP_PROFILE), stop_on_violation off,
              at most 300,000 events a run
Exit codes: 0 identical (or recorded), 1 a difference, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import multiprocessing
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SETS = ("default", "hunt", "membership", "bugs", "cores")
TEST_HUNT = dict(duration_ms=20_000, fault_gap_ms_min=200, fault_gap_ms_max=1_500, fault_len_ms_max=1_500)
CORE_MODULES = ("tests.raft.wrong_cores", "tests.raft.test_raft_consequences", "tests.raft.test_raft_contracts")
MEMBERSHIP_CORE_MODULE = "tests.raft.wrong_cores"
STALE_TAIL_CORES = ("CommitsPastLastNew", "SnapshotKeepsStaleTail")


def _setup(root: str) -> None:
    for p in (root, os.path.join(root, "node_image")):
        if p not in sys.path:
            sys.path.insert(0, p)


def _cores():
    """(module:Class, membership?) for every RaftNode subclass defined in the test modules; the
    cores of wrong_cores.py other than the two stale-tail ones break membership rules."""
    from swarmnode.raft import RaftNode
    out = []
    for modname in CORE_MODULES:
        mod = importlib.import_module(modname)
        for name, obj in sorted(vars(mod).items()):
            if inspect.isclass(obj) and issubclass(obj, RaftNode) and obj is not RaftNode \
                    and obj.__module__ == modname:
                out.append((f"{modname}:{name}", modname == MEMBERSHIP_CORE_MODULE and name not in STALE_TAIL_CORES))
    return out


def jobs(sets, seeds: int) -> list:
    from swarmnode.raft import BUGS
    from swarmnode.raft.config import MEMBERSHIP_BUGS
    out = []
    for s in sets:
        if s in ("default", "hunt", "membership"):
            out += [(s, "none", "", seed) for seed in range(seeds)]
        elif s == "bugs":
            out += [("bug-hunt", b, "", seed) for b in BUGS if b not in MEMBERSHIP_BUGS for seed in range(40)]
            out += [("bug-membership", b, "", seed) for b in MEMBERSHIP_BUGS for seed in range(20)]
        elif s == "cores":
            for spec, member in _cores():
                out += [("core-membership" if member else "core-hunt", "none", spec, seed) for seed in range(5)]
    return out


def run_one(job) -> tuple:
    kind, bug, core, seed = job
    from swarmnode.sim.raft_sim import HUNT_PROFILE, MEMBERSHIP_PROFILE, run_seed
    kw: dict = {"trace_hash": True}
    if kind == "hunt" or kind == "core-hunt":
        kw.update(HUNT_PROFILE)
    elif kind in ("membership", "bug-membership", "core-membership"):
        kw.update(MEMBERSHIP_PROFILE)
    elif kind == "bug-hunt":
        kw.update(TEST_HUNT)
    if core:
        mod, _, name = core.partition(":")
        kw.update(node_factory=getattr(importlib.import_module(mod), name), stop_on_violation=False,
                  max_events=300_000)
    r = run_seed(seed, bug, **kw)
    r.pop("replay", None)      # names the factory's module path: differs between trees only by text
    return f"{kind}|{bug}|{core}|{seed}", r


def _init(root):
    _setup(root)


def record(root: str, sets, seeds: int, workers: int) -> dict:
    _setup(root)
    js = jobs(sets, seeds)
    if workers > 1:
        # one process per run: some wrong cores keep class-level state (a step counter) that
        # would otherwise carry from one run into the next of the same worker
        with multiprocessing.get_context("fork").Pool(workers, _init, (root,), maxtasksperchild=1) as pool:
            rows = pool.map(run_one, js, chunksize=1)
    else:
        rows = [run_one(j) for j in js]     # (class-level state of a wrong core carries over here)
    return {"root": os.path.abspath(root), "sets": list(sets), "seeds": seeds, "runs": dict(rows)}


_TRACE_FILE = re.compile(r'File "[^"]*?(node_image/|tests/)([^"]*)", line \d+')


def _trace_free(run: dict) -> dict:
    """The run with file paths and line numbers in core-exception traces reduced to the module's
    path inside the tree: two trees differ there by where they live and by edits elsewhere in the
    file, not by what the simulator found."""
    out = dict(run)
    out["violations"] = [dict(v, detail=_TRACE_FILE.sub(r'File "\1\2"', v["detail"]))
                         if v.get("kind") == "core-exception" else v for v in run.get("violations", [])]
    return out


def compare(a: dict, b: dict) -> dict:
    ra, rb = a["runs"], b["runs"]
    keys = sorted(set(ra) | set(rb))
    same, diff, missing = 0, [], []
    trace_text = []          # runs identical but for paths and line numbers in core-exception traces
    caught_a = caught_b = 0
    for k in keys:
        if k not in ra or k not in rb:
            missing.append(k)
            continue
        x, y = ra[k], rb[k]
        caught_a += bool(x["violation_count"])
        caught_b += bool(y["violation_count"])
        if x == y:
            same += 1
            continue
        if _trace_free(x) == _trace_free(y):
            same += 1
            trace_text.append(k)
            continue
        fields = sorted(f for f in set(x) | set(y) if x.get(f) != y.get(f))
        diff.append({"run": k, "fields": fields,
                     "kinds": [x["violation_kinds"], y["violation_kinds"]],
                     "same_violations": x["violation_kinds"] == y["violation_kinds"]
                     and x["violation_count"] == y["violation_count"]})
    by_set: dict = {}
    for k in keys:
        s = k.split("|")[0]
        d = by_set.setdefault(s, {"runs": 0, "identical": 0, "with_violations_before": 0, "with_violations_after": 0})
        d["runs"] += 1
        if k in ra and k in rb:
            d["identical"] += ra[k] == rb[k] or k in trace_text
            d["with_violations_before"] += bool(ra[k]["violation_count"])
            d["with_violations_after"] += bool(rb[k]["violation_count"])
    return {"runs": len(keys), "identical": same, "different": len(diff), "missing": missing,
            "identical_but_trace_text": trace_text,
            "seeds_with_violations": [caught_a, caught_b], "by_set": by_set, "differences": diff[:50]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(HERE, ".."), help="source tree to import the simulator from")
    ap.add_argument("--out", help="write the recording here")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    a = ap.parse_args(argv)
    if a.compare:
        try:
            docs = [json.load(open(p)) for p in a.compare]
        except (OSError, ValueError) as e:
            print(f"--compare: {e}", file=sys.stderr)
            return 2
        out = compare(*docs)
        print(json.dumps(out, indent=1, sort_keys=True))
        return 1 if out["different"] or out["missing"] else 0
    sets = [s for s in a.sets.split(",") if s]
    if not sets or set(sets) - set(SETS) or not a.out:
        print(f"need --out and --sets from {','.join(SETS)}", file=sys.stderr)
        return 2
    doc = record(a.root, sets, a.seeds, a.workers)
    with open(a.out, "w") as f:
        json.dump(doc, f, sort_keys=True)
    n = len(doc["runs"])
    bad = sum(1 for r in doc["runs"].values() if r["violation_count"])
    print(json.dumps({"runs": n, "runs_with_violations": bad, "out": a.out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
