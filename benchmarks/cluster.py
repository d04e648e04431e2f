"""Benchmark: how long the environment takes, and how large a cluster this machine holds.

Prints exactly one JSON object on stdout (progress on stderr); never passes or fails on time.

  ready_s_3x5    seconds from the start of `up` (image already built) to ready, 3 managers + 5 workers
  ready_s_3x50   the same for 3 + 50
  down_s_3x5     seconds from the start of teardown until no labelled container, network or volume of
                 that cluster exists (the same for every size measured)
  ready_s_MxW    with --size MxW (repeatable, e.g. --size 3x100): ready and down for that size too;
  down_s_MxW     on a shared machine, a 3 + 100 (or larger) cluster only under its big-cluster lock (flock)
  image_build_s  seconds to build the node image from an engine without chaos images; only with
                 --from-empty, which REMOVES chaos-node and chaos-base images first (else null)
  max_workers    the largest worker count (with 3 managers) that became ready and was still ready
                 after --hold-s seconds, trying the counts in WORKER_STEPS (10 ... 150) in order; `max_workers_stop`
                 says why the search stopped (a count failed, or the list was exhausted)

Usage:
  python3 benchmarks/cluster.py                      # ready_s_3x5 and ready_s_3x50
  python3 benchmarks/cluster.py --from-empty --max-workers
  flock LOCKFILE python3 benchmarks/cluster.py --skip-3x5 --skip-3x50 --size 3x100   # ready/down_s_3x100
Must not import: chaos.cli.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chaos import image as image_mod  # noqa: E402
from chaos.env import cleanup  # noqa: E402
from chaos.env.engine import connect  # noqa: E402
from chaos.env.spec import ClusterSpec  # noqa: E402
from chaos.env.up import bring_up  # noqa: E402
from chaos.errors import ChaosError  # noqa: E402

WORKER_STEPS = (10, 25, 50, 75, 100, 125, 150)


class _StderrProgress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._last = 0.0

    def step(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {message}", file=sys.stderr, flush=True)

    def detail(self, message: str) -> None:
        if time.monotonic() - self._last > 5:
            self._last = time.monotonic()
            print(f"[{time.monotonic() - self.t0:7.1f}s]   {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def _ready_time(client, image: str, managers: int, workers: int, timeout_s: float, seed: int,
                hold_s: float = 0.0) -> dict:
    name = f"bench{managers}x{workers}"
    cleanup.remove_objects(client, cluster=name)
    spec = ClusterSpec(name, managers=managers, workers=workers, seed=seed)
    t0 = time.monotonic()
    try:
        result = bring_up(client, spec, image, timeout_s, _StderrProgress())
        out = {"ok": True, "up_s": round(time.monotonic() - t0, 2),
               "wait_ready_s": round(result.seconds_to_ready, 2), "proxies": result.proxies,
               "shards": spec.shards}
        if hold_s:
            time.sleep(hold_s)  # the measurement itself: is it still ready after holding this long?
            try:
                out["ready_after_hold_s"] = round(result.cluster.wait_ready(30), 2)
            except ChaosError as exc:
                out.update(ok=False, error=f"not ready after holding {hold_s} s: {exc.message}"[:500])
    except ChaosError as exc:
        # bring_up has torn its run down itself (inside up_s): there is no teardown left to time
        out = {"ok": False, "up_s": round(time.monotonic() - t0, 2), "error": exc.message[:500]}
    finally:
        down = _down_time(client, name)   # also on Ctrl-C: nothing of the benchmark stays behind
    if not out["ok"] and down["down_removed"] == 0:
        down["down_s"] = None
    return {**out, **down}


def _down_time(client, name: str) -> dict:
    """Teardown as `chaos down` does it (cleanup.remove_objects), timed until no labelled object of
    the cluster is listed any more (containers, networks, volumes)."""
    t0 = time.monotonic()
    removed = cleanup.remove_objects(client, cluster=name)
    left = cleanup.remaining(client, cluster=name)
    down_s = round(time.monotonic() - t0, 2)
    print(f"down {name}: {down_s} s, {removed.total} object(s) removed, {left} left", file=sys.stderr, flush=True)
    return {"down_s": down_s if left == 0 and not removed.failed else None, "down_removed": removed.total,
            "down_left": left, **({"down_failed": removed.failed[:5]} if removed.failed else {})}


def _size(text: str) -> tuple[int, int]:
    m, sep, w = text.lower().partition("x")
    if not sep or not m.isdigit() or not w.isdigit() or int(m) < 1:
        raise argparse.ArgumentTypeError(f"size must look like 3x100 (managers x workers), got {text!r}")
    return int(m), int(w)


def _measure(out: dict, client, image: str, managers: int, workers: int, args) -> None:
    r = _ready_time(client, image, managers, workers, args.timeout_s, args.seed)
    key = f"{managers}x{workers}"
    out[f"ready_s_{key}"] = r["up_s"] if r["ok"] else None
    out[f"down_s_{key}"] = r.get("down_s")
    out[f"detail_{key}"] = r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-empty", action="store_true",
                    help="remove chaos-node and chaos-base images, then time the build (image_build_s)")
    ap.add_argument("--max-workers", action="store_true", help="search max_workers (slow: minutes)")
    ap.add_argument("--skip-3x5", action="store_true")
    ap.add_argument("--skip-3x50", action="store_true")
    ap.add_argument("--size", type=_size, action="append", default=[], metavar="MxW",
                    help="also measure ready_s_MxW and down_s_MxW (repeatable), e.g. --size 3x100")
    ap.add_argument("--hold-s", type=float, default=30.0, help="how long a max_workers cluster must stay ready")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="ready timeout per cluster")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--image", default=None, help="use this node image instead of building node_image/")
    args = ap.parse_args()
    client = connect(timeout_s=600)
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "engine": client.version().get("Version"),
                             "note": "2 cores shared with other jobs: timings are pessimistic"},
                 "seed": args.seed}
    if args.from_empty:
        removed = image_mod.remove_tool_images(client, include_base=True)
        print(f"removed images: {removed}", file=sys.stderr)
        res = image_mod.build_node_image(client, progress=_StderrProgress())
        out["image_build_s"] = round(res.seconds, 2)
        out["image_build_path"] = res.base_path
    else:
        out["image_build_s"] = None
        out["image_build_note"] = "pass --from-empty to measure (removes chaos images first)"
    image = args.image or image_mod.build_node_image(client, progress=_StderrProgress()).tag
    out["image"] = image
    out["loadavg_before"] = open("/proc/loadavg").read().split()[:3]
    sizes = ([] if args.skip_3x5 else [(3, 5)]) + ([] if args.skip_3x50 else [(3, 50)]) + args.size
    for managers, workers in dict.fromkeys(sizes):
        _measure(out, client, image, managers, workers, args)
    if args.max_workers:
        best, tried, stop = 0, [], f"exhausted the list {list(WORKER_STEPS)}"
        for n in WORKER_STEPS:
            r = _ready_time(client, image, 3, n, args.timeout_s, args.seed, hold_s=args.hold_s)
            tried.append({"workers": n, **r})
            print(f"max_workers step: {json.dumps(tried[-1])}", file=sys.stderr, flush=True)
            if not r["ok"]:
                stop = f"{n} workers failed: {r.get('error', '')[:300]}"
                break
            best = n
        out["max_workers"] = best
        out["max_workers_stop"] = stop
        out["max_workers_tried"] = tried
    out["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
