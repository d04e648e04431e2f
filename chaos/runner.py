"""The lifecycle of one experiment run: plan -> cluster -> workload + nemesis + status poller ->
final heal -> recovery -> collect -> check -> run directory -> teardown.

Owns: the run directory of one (experiment, seed) (docs/contracts.md section 5): experiment.yaml,
plan.json, run.json (written first as partial, rewritten complete at the end, so an interrupted or
crashed run says what it is), history.jsonl, faults.jsonl, status.jsonl, services.jsonl, events/,
final/, logs/, results.json; `ClusterEffects` (the nemesis's effects on real containers and
Toxiproxy); collection of journals also from nodes that are down (read from the stopped
container's volume). One clock per run (chaos.workload.RunClock) stamps every record.

A control run (`RunOptions.control`, `chaos run --control`) does all of that, but the nemesis only logs
its faults as `sham` (never applied); run.json says `control: true`.

Outcome and exit codes: checks decide 0 / 1 / 3; a fault that could not be applied or verified, or
an environment failure, is 4 (the run directory says `outcome: error` and why); Ctrl-C / SIGTERM is
130 after the cluster is removed and faults.jsonl is closed with an end line for every active fault.
Must not import: click (commands live in chaos/cmd_experiment.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shlex
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from chaos import settle as settle_mod
from chaos.checkers import run_checks
from chaos.checkers.core import Results
from chaos.env import cleanup as cleanup_mod
from chaos.env import nodeops
from chaos.env.cluster import Cluster
from chaos.env.engine import connect, engine_errors
from chaos.env.progress import NullProgress, Progress
from chaos.env.spec import DISK_FAULT_DATA_MB, ClusterSpec
from chaos.env.hosts import Inventory
from chaos.env.up import bring_up, signals_ignored, sigterm_as_interrupt
from chaos.errors import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, ChaosError, EnvironmentError_, FaultError
from chaos.experiment import plan as plan_mod
from chaos.experiment.loader import Loaded
from chaos.image import build_node_image
from chaos.nemesis import FaultLog, Nemesis, View, resolve_target
from chaos.toxi import LinkController
from chaos.workload import HistoryWriter, RunClock, StatusPoller, Workload, WorkloadSpec

VIEW_FIRST_S = 0.3  # see ClusterEffects.view
EFFECT_STATUS_S = 1.0  # a node fault's target that has not answered its status within this is "silent"
VERIFY_PROBE_MS = 100  # a cut link costs a probe this long (and is proven cut when none answers within it)
VERIFY_PROBE_TIMEOUTS_MS = (VERIFY_PROBE_MS, 200, 400, 800, 1600, 3200)
"""Probe timeouts of a link expected reachable, one per retry (chaos.toxi.verify): one answer in
time proves it, and on a loaded runner a healthy link's round trip through two agents and
Toxiproxy can exceed 100 ms for the whole verification deadline (seen at load 44: a heal failed on
every link of one worker; at load 39 a heal needed the 1600 ms probe, 8.5 s into a 10 s deadline)."""
VERIFY_DEADLINE_S = 20.0
"""How long a link may disagree before the fault counts as not in effect (a harness error). Only a
failing verification waits this long: one that agrees ends at once."""
RESTART_ANSWER_S = 20.0
CPU_PERIOD_US = 100_000  # the CFS period a cpu fault's quota is a share of
CLOCK_VERIFY_S = 20.0  # a clock fault's node must read its new spec back within this (else exit 4); a
# node took more than 5 s to answer its status at load 38
SERVICE_RETRY_S = 30.0
MEMBERSHIP_COMMIT_S = 30.0  # a membership change must show committed in the configuration within this
MEMBERSHIP_JOIN_S = 60.0    # a joining node must be a voter (a READY worker) within this of its start
SCHEDULE_SLACK_S = 120.0


def _compact(rec: dict | None) -> dict:
    """A LinkController record without the long per-proxy lists (counts instead)."""
    if not isinstance(rec, dict):
        return {}
    out = {}
    for k, v in rec.items():
        if k in ("proxies", "toxics", "removed", "enabled", "disabled", "cut", "uncut", "checked", "sampled",
                 "agreed_cut", "agreed_open"):
            out[k + "_n"] = len(v) if isinstance(v, (list, dict)) else v
        elif k == "steps":
            continue
        elif k == "verified":
            out[k] = _compact(v)
        else:
            out[k] = v
    return out


class ClusterEffects:
    """The nemesis's effects on a real cluster; each verifies before it returns. Each apply's record
    carries `applied_ts` (run clock: the last call that puts the fault in place returned) and
    `verified_ts` (its verification done); `answers` and `link_probes` take the evidence that a
    fault took effect (chaos.fault_effect)."""

    def __init__(self, cluster: Cluster, links: LinkController, clock: Callable[[], float] | None = None):
        self.cluster = cluster
        self.links = links
        self.clock = clock or links.clock

    def view(self) -> View:
        """The managers' statuses. A manager that has not answered within VIEW_FIRST_S (a paused one
        never does) is left out once a majority answered and they show a leader: the nemesis resolves
        a fault's targets from this view at the moment the fault fires, and must not fire it late by
        a status timeout (1.5 s) whenever some manager is frozen. A manager this run itself has
        paused, killed or stopped (marked unavailable on the link controller) is not asked at all: it
        cannot answer, and waiting VIEW_FIRST_S for it made every fault fired during a pause 0.3 s
        late -- or 1.5 s, during the election that follows a paused leader (issue 25 section 5)."""
        managers, workers = tuple(self.cluster.managers), tuple(self.cluster.workers)
        links = getattr(self, "links", None)
        down = links.unavailable() if links is not None else frozenset()
        asked = [m for m in managers if m not in down]

        def enough(got: dict) -> bool:
            answered = sum(1 for s in got.values() if s is not None)
            return answered * 2 > len(managers) and View(managers, workers, got).leader is not None

        statuses: dict[str, dict | None] = {m: None for m in managers if m in down}
        if asked:
            statuses.update(self.cluster.statuses_early(asked, enough, VIEW_FIRST_S))
        return View(managers, workers, {m: statuses.get(m) for m in managers})

    def leader_store(self, leader: str) -> dict | None:
        try:
            return self.cluster.store(leader, timeout_s=2.0)
        except (requests.RequestException, ValueError):
            return None

    def set_partition(self, cut: frozenset, mode: str) -> dict:
        rec = self.links.apply_partition(cut, mode)
        verified_ts = self.clock()
        ver = rec.get("verified") or {}
        probed = {"cut": ver.get("agreed_cut") or [], "open": ver.get("agreed_open") or [],
                  "dropped": ver.get("dropped") or []}
        return {"links_cut": len(cut), "mode": mode, "done_ts": rec.get("done_ts"),
                "applied_ts": rec.get("done_ts"), "verified_ts": verified_ts,
                "apply_ms": rec.get("apply_ms"), "verify_ms": rec.get("verify_ms"),
                "verified": _compact(ver), "probed": probed}

    def add_link_fault(self, op: str, links: list, params: dict) -> dict:
        lc = self.links
        t0 = time.monotonic()
        p = dict(params)
        if op.startswith("flaky-"):
            kind = p.pop("kind", "cut")
            rec = lc.flaky(links, p.pop("toxicity"), kind=kind, **p)
        else:
            method = {"latency": lc.latency, "bandwidth": lc.bandwidth, "reset": lc.reset, "stall": lc.stall,
                      "slice": lc.slice, "slow_close": lc.slow_close, "limit": lc.limit}[op]
            rec = method(links, **p)
        applied_ts = rec.get("done_ts")
        apply_ms = round((time.monotonic() - t0) * 1000, 1)
        v0 = time.monotonic()
        wrong = lc.listing_mismatches(links, op)   # one listing per shard: every toxic, as asked
        if wrong:
            detail = "; ".join(f"{n}: {wrong[n]}" for n in sorted(wrong)[:5])
            raise FaultError(f"{op}: the server listing disagrees on {len(wrong)} of {len(links)} link(s): {detail}",
                             hint="the fault could not be verified")
        return {"links": len(links), "op": op, "params": params, "done_ts": rec.get("done_ts"),
                "applied_ts": applied_ts, "verified_ts": self.clock(),
                "apply_ms": apply_ms, "verify_ms": round((time.monotonic() - v0) * 1000, 1),
                "verified": {"toxics_listed_on": len(links)}}

    def remove_link_fault(self, op: str, links: list) -> dict:
        t0 = time.monotonic()
        rec = self.links.remove(links, op)
        apply_ms = round((time.monotonic() - t0) * 1000, 1)
        v0 = time.monotonic()
        left = self.links.listing_mismatches(links, op, present=False)
        if left:
            raise FaultError(f"{op}: toxics still listed after removal on {', '.join(sorted(left)[:5])}")
        return {"links": len(links), "op": op, "done_ts": rec.get("done_ts"), "apply_ms": apply_ms,
                "verify_ms": round((time.monotonic() - v0) * 1000, 1), "verified": {"absent_on": len(links)}}

    def node_op(self, op: str, node: str) -> dict:
        rec = nodeops.OPERATIONS[op](self.cluster, node).as_dict()
        now_run, now_wall = self.clock(), time.time()
        # the engine's moment (wall clock) on the run clock, never after the verification that follows it
        rec["applied_ts"] = min(now_run, rec["effective_ts"] + (now_run - now_wall))
        rec["verified_ts"] = now_run
        if op in ("restart", "start", "unpause"):
            end = time.monotonic() + RESTART_ANSWER_S
            while time.monotonic() < end:
                st = self.cluster.status(node, timeout_s=1.0)
                if st is not None:
                    rec["answering_ts"] = time.time()
                    rec["boot"] = st.get("boot")  # the evidence a killed node booted again
                    if isinstance(st.get("power_loss"), dict):  # what a power loss cut (swarmnode.durability)
                        rec["power_loss"] = st["power_loss"]
                    break
                time.sleep(0.1)
            else:
                rec["answering_ts"] = None  # recorded: the node did not answer in time (the checks judge it)
        return rec

    def mark_unavailable(self, node: str, unavailable: bool) -> None:
        self.links.set_unavailable(node, unavailable)

    def _api_urls(self) -> list[str]:
        urls = []
        for n in self.cluster.managers + self.cluster.workers:   # a promoted worker is a manager
            try:
                urls.append(self.cluster.api_url(n))
            except EnvironmentError_:
                continue
        return urls

    def membership_op(self, action: str, node: str, force: bool) -> dict:
        """One configuration change through the leader's API (chaos.membership), then wait until
        the configuration shows it committed. A refusal is a FaultRefused (carrying the cluster's
        error code), an unknown outcome a FaultError."""
        from chaos import membership
        from chaos.errors import ChaosError, FaultRefused, MembershipRefused

        _http = membership.http_call

        urls = self._api_urls()
        want = {"promote": lambda c: node in c.get("voters", ()),
                "demote": lambda c: node in c.get("learners", ()),
                "remove": lambda c: node not in c.get("voters", ()) + c.get("learners", ())}[action]
        try:
            answer = membership.change(_http, urls, action, node, force=force)
            applied_ts = self.clock()
            cfg = membership.wait_config(_http, urls, lambda c: want(c) and c.get("committed") is True,
                                         MEMBERSHIP_COMMIT_S, f"{action} {node} committed")
        except MembershipRefused as exc:   # the cluster's definite answer (the nemesis decides)
            raise FaultRefused(f"membership {action} {node}: {exc.message}", hint=exc.hint, code=exc.code) from exc
        except ChaosError as exc:
            raise FaultError(f"membership {action} {node}: {exc.message}", hint=exc.hint) from exc
        return {"answer": answer, "config": {k: cfg.get(k) for k in ("voters", "learners", "index", "leader")},
                "committed": True, "applied_ts": applied_ts, "verified_ts": self.clock()}

    def membership_add(self, role: str, step=None) -> dict:
        """A new node under the next free spare id (chaos.env.nodeops.add_node: the join token from
        the leader, its container started like every other, waited for until a voter or READY). Its
        links are verified like every other's from the moment its container runs. Any failure is a
        FaultError (the harness could not make the change; never a verdict)."""
        from chaos.errors import ChaosError

        t0 = self.clock()
        try:
            rec = nodeops.add_node(self.cluster, role, wait_s=MEMBERSHIP_JOIN_S,
                                   on_started=lambda n: self.links.set_unavailable(n, False))
        except ChaosError as exc:
            raise FaultError(f"membership add ({role}): {exc.message}", hint=exc.hint) from exc
        cfg = rec.get("config") or {}
        out = {"node": rec["node"], "role": role, "committed": True, "requested_ts": t0,
               "started_wall": rec["started_ts"], "learner_seen": rec.get("learner_seen"),
               "config": {k: cfg.get(k) for k in ("voters", "learners", "index", "leader")} if cfg else None,
               "status": rec.get("status"), "applied_ts": self.clock(), "verified_ts": self.clock()}
        if step is not None:
            step(rec["node"], "join", out)
        return out

    def membership_replace(self, node: str, step=None) -> dict:
        """A lost manager replaced the Swarm way (issue 23): removed from the configuration (forced:
        it may be a voter, the leader, or down), its container stopped and its data volume wiped
        (all but its journal, the harness's record: chaos.env.nodeops.wipe), then a fresh manager
        joined under a NEW spare id with the cluster's token and waited for until it is a voter.
        The old node stays stopped (its disk is gone; its id is retired). Each step is reported to
        `step` as it is done."""
        step = step or (lambda *_a: None)
        steps = []
        removed = self.membership_op("remove", node, True)
        steps.append({"step": "remove", "node": node, "ts": self.clock()})
        step(node, "remove", removed)
        self.mark_unavailable(node, True)   # before: no verify probes the node being stopped
        wiped = self.node_op("wipe", node)
        steps.append({"step": "wipe", "node": node, "ts": self.clock()})
        step(node, "wipe", wiped)
        joined = self.membership_add("manager", step)
        steps.append({"step": "join", "node": joined["node"], "ts": self.clock()})
        return {"replaced": node, "replacement": joined["node"], "steps": steps, "committed": True,
                "removed_config": removed.get("config"), "wiped": (wiped.get("detail") or {}).get("wiped"),
                "config": joined.get("config"), "learner_seen": joined.get("learner_seen"),
                "applied_ts": joined["applied_ts"], "verified_ts": joined["verified_ts"]}

    def membership_config(self) -> dict | None:
        from chaos.membership import http_call as _http

        for url in self._api_urls():
            code, cfg = _http("GET", url + "/config", None, 2.0)
            if code == 200:
                return {k: cfg.get(k) for k in ("voters", "learners", "index", "committed", "leader")}
        return None

    def answers(self, node: str) -> dict | None:
        """The node's status, or None when it does not answer within EFFECT_STATUS_S."""
        return self.cluster.status(node, timeout_s=EFFECT_STATUS_S)

    def link_probes(self, op: str, links: list, params: dict) -> list[dict]:
        """Timed probes through a link fault's links while its toxic is listed (chaos.fault_effect)."""
        from chaos.fault_effect import LINK_PROBES, LINK_PROBES_FLAKY, probe_timeout_ms

        timeout_ms = probe_timeout_ms(op, params)
        n = LINK_PROBES_FLAKY if op.startswith("flaky-") else LINK_PROBES
        order = sorted(links)
        picked = [order[i % len(order)] for i in range(min(n, len(order) * (4 if op.startswith("flaky-") else 1)))]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="effect-probe") as pool:
            return list(pool.map(lambda link: self._timed_probe(link, timeout_ms), picked))

    def _timed_probe(self, link, timeout_ms: int) -> dict:
        src, dst = link
        out = {"link": f"{src}->{dst}", "timeout_ms": timeout_ms, "reachable": False, "rtt_ms": None}
        try:
            resp = requests.post(self.cluster.api_url(src) + "/probe", json={"peer": dst, "timeout_ms": timeout_ms},
                                 timeout=timeout_ms / 1000 + 2)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            out["error"] = type(exc).__name__
            return out
        if not isinstance(body, dict) or not body.get("ok"):
            out["error"] = f"probe refused: {str(body)[:100]}"
            return out
        out["reachable"] = bool(body.get("reachable"))
        out["rtt_ms"] = body.get("rtt_ms")
        return out

    def clock_write(self, node: str, spec: str) -> dict:
        """Rewrite the node's libfaketime control file (chaos.clock), then verify that its agent
        reads the new spec back (its /status `clock.faketime`)."""
        from chaos import clock as clock_mod

        c = self.cluster.container(node)
        t0 = time.time()
        with engine_errors(f"clock of {node}"):
            c.reload()
            if not c.attrs["State"].get("Running") or c.attrs["State"].get("Paused"):
                # down or frozen (another fault): no process reads the file now; written from outside
                data = (spec + "\n").encode()
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    info = tarfile.TarInfo(os.path.basename(clock_mod.CONTROL_FILE))
                    info.size, info.uid, info.gid, info.mode, info.mtime = len(data), 10001, 10001, 0o644, int(t0)
                    tar.addfile(info, io.BytesIO(data))
                c.put_archive(os.path.dirname(clock_mod.CONTROL_FILE), buf.getvalue())
                return {"spec": spec, "applied_ts": self.clock(), "verified_ts": self.clock(),
                        "written": "put_archive", "state": c.attrs["State"].get("Status")}
            res = c.exec_run(list(clock_mod.WRITE_ARGV) + [spec, clock_mod.CONTROL_FILE], user="10001")
        if res.exit_code != 0:
            raise FaultError(f"clock of {node}: writing the control file failed (exit {res.exit_code}): "
                             f"{(res.output or b'').decode(errors='replace').strip()[:200]}")
        applied_ts = self.clock()
        deadline = time.monotonic() + CLOCK_VERIFY_S
        seen = None
        while time.monotonic() < deadline:
            st = self.cluster.status(node, timeout_s=1.0)
            ft = ((st or {}).get("clock") or {}).get("faketime") if isinstance(st, dict) else None
            if isinstance(ft, dict):
                if not ft.get("preloaded"):
                    raise FaultError(f"clock of {node}: libfaketime is not preloaded in the node",
                                     hint="the node image's base has no libfaketime (chaos image build "
                                          "bootstraps one that has; see `chaos doctor`)")
                seen = ft.get("spec")
                if seen == spec:
                    rate = float(spec.rpartition(" x")[2]) if " x" in spec else 1.0
                    if rate < 1.0:  # the node times its probes on its own, slower clock
                        self.cluster.clock_rates[node] = rate
                    else:
                        self.cluster.clock_rates.pop(node, None)
                    return {"spec": spec, "applied_ts": applied_ts, "verified_ts": self.clock(),
                            "write_s": round(time.time() - t0, 4)}
            time.sleep(0.05)
        raise FaultError(f"clock of {node}: the node reads {seen!r}, not {spec!r}, {CLOCK_VERIFY_S:g} s after "
                         "the control file was written", hint=f"`chaos logs {node}`")

    def clock_read(self, node: str) -> dict | None:
        sent = time.time()
        st = self.cluster.status(node, timeout_s=EFFECT_STATUS_S)
        received = time.time()
        if not isinstance(st, dict) or not isinstance(st.get("clock"), dict):
            return None
        return {"sent": sent, "received": received, "clock": st["clock"]}

    def clock_started(self, node: str) -> float:
        c = self.cluster.container(node)
        with engine_errors(f"inspect {node}"):
            c.reload()
        return nodeops.parse_docker_time(c.attrs["State"].get("StartedAt", "")) or time.time()

    def resource_limit(self, kind: str, node: str, value) -> dict:
        """Lower a container's CPU quota (`cpus`) or memory limit (bytes) through the engine's
        update API (no privileges), then read the settings back (the verification)."""
        c = self.cluster.container(node)
        with engine_errors(f"{kind} limit of {node}"):
            c.reload()
            hc = c.attrs["HostConfig"]
            if kind == "cpu":
                before = {"cpu_period": hc.get("CpuPeriod") or 0, "cpu_quota": hc.get("CpuQuota") or 0}
                c.update(cpu_period=CPU_PERIOD_US, cpu_quota=max(1000, int(round(float(value) * CPU_PERIOD_US))))
            else:
                before = {"memory": hc.get("Memory") or 0, "memory_swap": hc.get("MemorySwap") or 0}
                try:
                    c.update(mem_limit=int(value), memswap_limit=int(value))
                except Exception as exc:  # noqa: BLE001 -- a limit below the usage is the file's problem
                    refusal = memory_refusal(str(getattr(exc, "explanation", None) or exc), node, int(value))
                    if refusal is not None:
                        raise refusal from None
                    raise
            applied_ts = self.clock()
            c.reload()
        after = _limits(kind, c.attrs["HostConfig"])
        want_ok = (abs(after["cpus"] - float(value)) < 1e-6) if kind == "cpu" else after["memory"] == int(value)
        if not want_ok:
            raise FaultError(f"{kind} limit of {node}: the engine shows {after}, not {value}")
        return {"op": kind, "before": before, "after": after, "applied_ts": applied_ts, "verified_ts": self.clock()}

    def resource_restore(self, kind: str, node: str, before) -> dict:
        """Put the limit back; a node the kernel OOM-killed meanwhile is recorded and started again."""
        c = self.cluster.container(node)
        before = before or {}
        with engine_errors(f"{kind} restore of {node}"):
            c.reload()
            state = dict(c.attrs["State"])
            if kind == "cpu":
                period = before.get("cpu_period") or CPU_PERIOD_US
                c.update(cpu_period=period, cpu_quota=before.get("cpu_quota") or -1)
            else:
                c.update(mem_limit=before.get("memory") or 0, memswap_limit=before.get("memory_swap") or -1)
            c.reload()
        rec = {"op": f"{kind}-restore", "after": _limits(kind, c.attrs["HostConfig"]),
               "oom_killed": bool(state.get("OOMKilled")), "running": bool(state.get("Running"))}
        if rec["oom_killed"] or not state.get("Running"):
            rec["exit_code"] = state.get("ExitCode")
            if rec["oom_killed"] and not state.get("Running"):
                rec.update(restarted=self.node_op("restart", node))
                rec["boot"] = rec["restarted"].get("boot")
                self.mark_unavailable(node, False)
        return rec

    def heal_all(self) -> dict:
        return _compact(self.links.heal())


_USAGE = re.compile(r"current usage:\s*(\d+)")


def memory_refusal(message: str, node: str, limit: int) -> FaultError | None:
    """The engine (runc) refuses a memory limit below what the container uses now; say that in the
    experiment's terms, not as an engine failure. None for any other refusal."""
    m = _USAGE.search(message)
    if m is None:
        return None
    usage = int(m.group(1))
    return FaultError(f"memory fault on {node}: the engine cannot set a limit of {limit:,} bytes below what the "
                      f"container uses now ({usage:,} bytes)",
                      hint=f"give `limit` above the node's use (here at least {usage * 1.25 / 1e6:.0f}MB); the "
                           "kernel OOM-kills the agent if it then grows past the limit")


def _limits(kind: str, hc: dict) -> dict:
    """A container's CPU (cpus = quota / period; 0 = unlimited) or memory settings as read back."""
    if kind == "cpu":
        period, quota = hc.get("CpuPeriod") or 0, hc.get("CpuQuota") or 0
        return {"cpus": round(quota / period, 6) if period and quota and quota > 0 else 0.0,
                "cpu_quota": quota, "cpu_period": period}
    return {"memory": hc.get("Memory") or 0, "memory_swap": hc.get("MemorySwap") or 0}


@dataclass
class RunOptions:
    seed: int
    out_dir: Path = Path("runs")
    cluster_name: str | None = None
    keep: bool = False
    command: str = ""
    plan: dict | None = None         # replay: the stored plan, not a re-expansion
    replay_of: str | None = None
    say: Callable[[str], None] = print
    progress: Progress = field(default_factory=NullProgress)
    live: object | None = None       # chaos.live.LiveDisplay or None
    backend: str | None = None       # overrides the experiment's cluster.backend (`chaos run --backend`)
    inventory: object | None = None  # chaos.env.hosts.Inventory for the swarm backend (None: this engine)
    control: bool = False            # `chaos run --control`: faults planned and logged as `sham`, never applied


@dataclass
class RunOutcome:
    run_dir: Path
    results: Results | None
    exit_code: int
    run: dict
    error: ChaosError | None = None


def _convergence_bound_s(checks: list | None) -> float | None:
    """The longer of the convergence check's managers and members bounds in this plan (defaults filled
    in); None when the plan does not run that check. No checks named: the default set."""
    from chaos.checkers.core import default_checks, parse_spec

    bounds = []
    for c in checks or default_checks():
        try:
            spec = parse_spec(c)
        except ChaosError:
            continue
        if spec.checker == "convergence":
            bounds += [spec.params["store_bound_s"], spec.params["members_bound_s"]]
    return float(max(bounds)) if bounds else None


class Runner:
    def __init__(self, loaded: Loaded, opts: RunOptions):
        self.loaded = loaded
        self.exp = loaded.experiment
        self.opts = opts
        self.plan = opts.plan if opts.plan is not None else plan_mod.expand(self.exp, opts.seed)
        self.plan_sha = plan_mod.plan_hash(self.plan)
        self.clock = RunClock()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = opts.out_dir / f"{self.exp.name}-{stamp}-seed{opts.seed}"
        self.run_dir = base
        n = 1
        while self.run_dir.exists():
            n += 1
            self.run_dir = Path(f"{base}-{n}")
        self.cluster_name = opts.cluster_name or f"run-{secrets.token_hex(3)}"
        self.run: dict = {}
        self.phases: list[dict] = []
        self.nemesis: Nemesis | None = None
        self.workload: Workload | None = None
        self.writer: HistoryWriter | None = None
        self.poller: StatusPoller | None = None
        self.faults: FaultLog | None = None

    # -- the run directory --

    def _write_run(self, **updates) -> None:
        self.run.update(updates)
        tmp = self.run_dir / "run.json.tmp"
        tmp.write_text(json.dumps(self.run, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.run_dir / "run.json")

    def _prepare_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=False)
        for sub in ("events", "final", "logs"):
            (self.run_dir / sub).mkdir()
        (self.run_dir / "experiment.yaml").write_text(self.loaded.text, encoding="utf-8")
        (self.run_dir / "plan.json").write_text(json.dumps(self.plan, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")
        replay = f"chaos replay {shlex.quote(str(self.run_dir))}"
        self._write_run(
            run_id=None, experiment=self.exp.name, experiment_file=str(self.loaded.path),
            experiment_sha256=self.loaded.sha256, seed=self.opts.seed, plan_sha256=self.plan_sha,
            command=self.opts.command, replay=replay, replay_of=self.opts.replay_of,
            again=f"chaos run {shlex.quote(str(self.loaded.path))} --seed {self.opts.seed}"
                  + (" --control" if self.opts.control else ""),
            seed_scope="the seed fixes the plan and every choice the harness makes (fault times, kinds, "
                       "selectors, random picks among the candidates, client operations); it does not fix "
                       "the cluster's own timing, so a role such as `leader` may name another node in a "
                       "repeat. faults.jsonl records the node each selector resolved to.",
            clock=self.clock.as_dict(), cluster_name=self.cluster_name, started=self.clock.now(), ended=None,
            partial=True, partial_reason="the run is in progress (or the harness was killed)",
            outcome="running", phases=[], nodes={}, heal_ts=None, plant=list(self.plan["cluster"].get("plant", [])),
            control=self.opts.control)

    # -- the lifecycle --

    def execute(self) -> RunOutcome:
        opts = self.opts
        opts.say(f"seed: {opts.seed}")
        if self.plan["cluster"].get("plant"):
            opts.say(f"WARNING: planted bugs {', '.join(self.plan['cluster']['plant'])}: the agents are "
                     "deliberately wrong; this run is a test of the tool, not a result")
        if opts.control:
            opts.say("CONTROL RUN: the faults are planned and logged as `sham`, never applied; no expectation "
                     "about a fault's effect can be met, so a well-made experiment comes out inconclusive (3)")
        self._prepare_dir()
        opts.say(f"run directory: {self.run_dir}")
        client = None
        cluster = None
        try:
            with sigterm_as_interrupt():
                client = connect()
                image = build_node_image(client, progress=opts.progress)
                self._write_run(image=image.tag, image_id=image.image_id)
                c = self.plan["cluster"]
                env = dict(c["agent_env"])
                if c.get("plant"):
                    env["CHAOS_PLANT"] = ",".join(c["plant"])
                cspec = ClusterSpec(name=self.cluster_name, managers=c["managers"], workers=c["workers"],
                                    seed=opts.seed, agent_env=tuple(sorted(env.items())),
                                    toxiproxy_shards=c["toxiproxy_shards"],
                                    faketime=any(f["kind"] == "clock" for f in self.plan["faults"]),
                                    data_mb=(DISK_FAULT_DATA_MB if any(f["kind"] == "disk-full" for f in self.plan["faults"])
                                             else None),
                                    spare_managers=spares_needed(self.plan, "manager", c["managers"]),
                                    spare_workers=spares_needed(self.plan, "worker", c["managers"]))
                backend = opts.backend or self.exp.cluster.backend
                inventory = opts.inventory
                if backend == "swarm" and inventory is None:
                    inventory = Inventory.single_local()
                self._write_run(backend=backend,
                                hosts=[h.as_dict() for h in inventory.hosts] if inventory is not None else None)
                up = bring_up(client, cspec, image.tag, c["ready_timeout_s"], opts.progress, c["toxiproxy"],
                              backend=backend, inventory=inventory)
                cluster = up.cluster
                opts.progress.close()  # the spinner ends with `up`; the live display takes over
                opts.say(f"cluster {self.cluster_name} up in {up.seconds_total:.1f} s ({up.proxies} proxies; "
                         f"Toxiproxy {up.toxiproxy.image})")
                self._write_run(run_id=cluster.run_id, toxiproxy=("official " if up.toxiproxy.official else
                                                                  "compatible ") + up.toxiproxy.image,
                                agent_version=_agent_version(),
                                nodes={n: {"role": cluster.handles[n].kind, "host": cluster.host_of(n) or "local"}
                                       for n in cluster.nodes})
                results = self._experiment(cluster)
            return RunOutcome(self.run_dir, results, results.exit_code, self.run)
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except ChaosError as exc:
            self._failed(exc, cluster)
            return RunOutcome(self.run_dir, None, exc.exit_code, self.run, exc)
        finally:
            opts.progress.close()
            if opts.live is not None:
                opts.live.stop()
            # Only what this run created: a refused `up` (the name is in use) must not remove someone
            # else's cluster, and a failed `up` has already removed its own objects.
            if client is not None and cluster is not None and not opts.keep:
                with signals_ignored():
                    opts.say(f"removing cluster {self.cluster_name}")
                    removed = cleanup_mod.remove_objects(client, cluster=self.cluster_name, run_id=cluster.run_id)
                    if removed.failed:
                        opts.say(f"warning: could not remove {removed.failed}; `chaos cleanup` will")

    def _experiment(self, cluster: Cluster) -> Results:
        opts, plan = self.opts, self.plan
        links = LinkController(cluster.toxiproxy_api(), cluster.topology(), seed=opts.seed,
                               probe=lambda s, d, t=VERIFY_PROBE_MS: cluster.probe(s, d, timeout_ms=t),
                               probe_timeouts_ms=VERIFY_PROBE_TIMEOUTS_MS, verify_deadline_s=VERIFY_DEADLINE_S,
                               clock=self.clock.now)
        for n in cluster.free_spares():   # no container yet: its links are not asserted until it joins
            links.set_unavailable(n, True)
        effects = ClusterEffects(cluster, links, clock=self.clock.now)
        self.faults = FaultLog(self.run_dir / "faults.jsonl", clock=self.clock.now)
        self.writer = HistoryWriter(self.run_dir / "history.jsonl", clock=self.clock.now)
        view = self._await_leader(effects, 30.0)
        w = plan["workload"]
        targets = resolve_target(w["nodes"], view, _rng(plan["seed"], "workload-nodes"))
        self.workload = Workload({n: cluster.client_url(n) for n in targets}, self.writer, WorkloadSpec(
            clients=w["clients"], keys=w["keys"], op_timeout_s=w["op_timeout_s"], think_ms=int(w["think_s"] * 1000),
            mix=tuple((f, n) for f, n in w["mix"]), rate=w["rate"], key_concurrency=w["key_concurrency"],
            client_seeds=tuple(w["client_seeds"]),
            # plans written before sessions, retries and `values` existed replay as they ran: neither,
            # and unique values
            sessions=w.get("sessions", False), retry=w.get("retry", False),
            values={"unique": None}.get(w.get("values", "unique"), w.get("values")),
            max_in_flight=w.get("max_in_flight")), plan["seed"])
        self.workload.wall_at = self.clock.at
        self.poller = StatusPoller(cluster.statuses, self.run_dir / "status.jsonl", clock=self.clock.now)
        self.nemesis = Nemesis(plan["faults"], effects, self.faults, wall_at=self.clock.at,
                               say=lambda s: opts.say(s) if opts.live is None else opts.live.event(s),
                               control=opts.control)
        services = _ServiceOps(plan["services"], effects, cluster, self.run_dir / "services.jsonl", self.clock)
        if opts.live is not None:
            opts.live.start(self)
        self.poller.start()
        t0 = time.monotonic()
        self._phase("steady", t0)
        services.start(t0)
        if w["clients"] > 0:
            self.workload.start()
        self.nemesis.start(t0)
        heal = None
        try:
            bound = plan["schedule_bound_s"] + (SCHEDULE_SLACK_S if plan["faults"] else 0.0)
            if plan["faults"]:
                self._wait_faults(t0, bound)
            else:
                time.sleep(plan["steady_s"] or 0.0)
            heal = self.nemesis.final_heal()
            self._phase("recovery", mono=time.monotonic(), wall=heal["ts"])
            if opts.live is None:
                opts.say(f"final heal verified; recovery window {plan['recovery']['window_s']:g} s")
            time.sleep(plan["recovery"]["window_s"])
        finally:
            services.stop()
            self.workload.stop()
            self.writer.close()
            if self.phases:
                self.phases[-1]["end"] = self.clock.now()
        settled = self._settle(cluster, heal["ts"] if heal else None)
        self.poller.stop()
        if opts.live is not None:
            opts.live.stop()
        self._collect(cluster)
        self.faults.close()
        self._write_run(ended=self.clock.now(), heal_ts=heal["ts"] if heal else None, phases=self.phases,
                        settle=settled,
                        history_counts=self.writer.counts, workload=self.workload.stats(),
                        fire_lateness_s=_quantiles(self.nemesis.lateness_s),
                        fault_resolve_s=_quantiles(self.nemesis.resolve_s),
                        fault_selector_wait_s=_quantiles(self.nemesis.selector_wait_s),
                        partial=False, partial_reason=None, outcome="completed",
                        duration_s=round(self.clock.now() - self.run["started"], 3))
        return run_checks(self.run_dir)

    def _wait_faults(self, t0: float, bound: float) -> None:
        """Wait for the schedule; mark the `faults` phase when the first fault is intended."""
        while True:
            done = self.nemesis.wait(0.2)
            if len(self.phases) == 1:
                first = next((r for r in self.faults.rows if r.get("action") in ("intend-start", "sham")), None)
                if first is not None:
                    self._phase("faults", wall=first["ts"])
            if done:
                if len(self.phases) == 1:
                    self._phase("faults", mono=time.monotonic())
                return
            if time.monotonic() - t0 > bound:
                raise EnvironmentError_(f"the schedule did not finish within {bound:.0f} s of its start",
                                        hint="a fault's end never came; faults.jsonl shows which")

    def _phase(self, name: str, mono: float | None = None, wall: float | None = None) -> None:
        ts = wall if wall is not None else self.clock.at(mono if mono is not None else time.monotonic())
        if self.phases:
            self.phases[-1]["end"] = ts
        self.phases.append({"name": name, "start": ts, "end": None})
        if self.opts.live is not None:
            self.opts.live.phase(name)
        else:
            self.opts.say(f"phase {name}")

    def current_phase(self) -> str:
        return self.phases[-1]["name"] if self.phases else "starting"

    def _await_leader(self, effects: ClusterEffects, timeout_s: float) -> View:
        end = time.monotonic() + timeout_s
        while True:
            view = effects.view()
            if view.leader is not None:
                return view
            if time.monotonic() >= end:
                raise EnvironmentError_(f"no leader within {timeout_s:.0f} s of the cluster being ready")
            time.sleep(0.2)

    def _settle(self, cluster: Cluster, heal_ts: float | None = None) -> dict:
        """Poll in concurrent rounds until the managers agree on applied index and digest in two
        consecutive rounds and the member and endpoint tables agree, so the final state is taken after
        convergence, not in the middle of it (chaos/settle.py); whether it converged in time is the
        convergence checker's call. Returns the evidence for run.json `settle`. Bounded by
        `recovery.converge`, and when the convergence check is run, also by the heal plus its bounds:
        agreement after that cannot change its verdict (late is INVALID too), so waiting longer would
        only cost time."""
        now = time.monotonic()
        end = now + self.plan["recovery"]["converge_s"]
        bound = _convergence_bound_s(self.plan.get("checks"))
        if heal_ts is not None and bound is not None:
            end = min(end, now + (heal_ts + bound - self.clock.now()))
        return settle_mod.settle(self.poller.poll_once, list(cluster.managers), end, clock=self.clock.now)

    def _collect(self, cluster: Cluster) -> None:
        """Final statuses and stores of every node in one concurrent round first; then journals, each
        read after its node's final state (so a journal covers at least the state its final file
        shows), workers first and the managers with the lowest final applied index last; then logs.
        Also of nodes that are down (their journal is read from the container's volume)."""
        finals = self._final_states(cluster)
        missing = []
        for node in _journal_order(cluster, finals):
            events, source = _journal(cluster, node)
            finals[node]["journal_source"] = source
            if events is None:
                missing.append(node)
            else:
                with open(self.run_dir / "events" / f"{node}.jsonl", "w", encoding="utf-8") as fh:
                    fh.write(events)
        for node in cluster.nodes:
            (self.run_dir / "final" / f"{node}.json").write_text(json.dumps(finals[node], indent=1),
                                                                 encoding="utf-8")
            try:
                (self.run_dir / "logs" / f"{node}.log").write_text(cluster.logs(node), encoding="utf-8")
            except ChaosError:
                pass
        if missing:
            self._write_run(missing_journals=missing)
        joined = {n: {"role": cluster.handles[n].kind, "host": cluster.host_of(n) or "local", "joined": True}
                  for n in cluster.nodes if n not in (self.run.get("nodes") or {})}
        if joined:   # nodes that joined during the run (membership add / replace): judged like the rest
            self._write_run(nodes={**(self.run.get("nodes") or {}), **joined})

    def _final_states(self, cluster: Cluster) -> dict[str, dict]:
        """node -> {"status", "store" (managers), "store_error"?, "read_ts"}, all nodes read at once."""
        def read(node: str) -> dict:
            out: dict = {"status": cluster.status(node)}
            if cluster.handles[node].kind == "manager":
                try:
                    out["store"] = cluster.store(node)
                except (requests.RequestException, ValueError, ChaosError) as exc:   # ChaosError: a node
                    # that stayed down (a replaced manager) has no published API port
                    out["store"] = None
                    out["store_error"] = f"{type(exc).__name__}: {exc}"
            out["read_ts"] = self.clock.now()
            return out

        return settle_mod.read_concurrently(read, list(cluster.nodes))

    # -- endings --

    def _interrupted(self) -> None:
        if self.nemesis is not None:
            self.nemesis.abort("interrupted; the cluster is being removed")
        if self.workload is not None:
            self.workload.stop(join_timeout_s=2.0)
        if self.writer is not None:
            self.writer.close()
        if self.poller is not None:
            self.poller.stop()
        if self.faults is not None:
            self.faults.close()
        if self.phases:
            self.phases[-1]["end"] = self.clock.now()
        self._write_run(ended=self.clock.now(), partial=True, outcome="interrupted", phases=self.phases,
                        partial_reason="interrupted (Ctrl-C or SIGTERM); the cluster was removed")
        self.opts.say(f"interrupted; run directory (partial): {self.run_dir}")

    def _failed(self, exc: ChaosError, cluster: Cluster | None) -> None:
        if self.nemesis is not None:
            try:
                self.nemesis.final_heal()
            except ChaosError:
                pass
            self.nemesis.abort(f"harness error: {exc.message}")
        for part in (self.workload,):
            if part is not None:
                part.stop(join_timeout_s=2.0)
        if self.writer is not None:
            self.writer.close()
        if self.poller is not None:
            self.poller.stop()
        if cluster is not None and self.faults is not None:
            try:
                self._collect(cluster)  # evidence for a person to read; the run is not judged
            except (ChaosError, OSError, requests.RequestException):
                pass
        if self.faults is not None:
            self.faults.close()
        if self.phases:
            self.phases[-1]["end"] = self.clock.now()
        self._write_run(ended=self.clock.now(), partial=True, outcome="error", phases=self.phases,
                        error=exc.message, error_hint=exc.hint, exit_code=exc.exit_code,
                        partial_reason=f"harness or environment error: {exc.message}")


class _ServiceOps:
    """Service create / scale at their times, through the leader; each recorded in services.jsonl."""

    def __init__(self, ops: list[dict], effects: ClusterEffects, cluster: Cluster, path: Path, clock: RunClock):
        self.ops = ops
        self.effects = effects
        self.cluster = cluster
        self.path = path
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, t0: float) -> None:
        if not self.ops:
            return
        self._thread = threading.Thread(target=self._run, args=(t0,), name="service-ops", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, t0: float) -> None:
        for op in sorted(self.ops, key=lambda o: o.get("at", 0.0)):
            if self._stop.wait(max(0.0, t0 + op.get("at", 0.0) - time.monotonic())):
                return
            self._one(op)

    def _one(self, op: dict) -> None:
        end = time.monotonic() + SERVICE_RETRY_S
        attempts, last = 0, ""
        while not self._stop.is_set() and time.monotonic() < end:
            attempts += 1
            leader = self.effects.view().leader
            if leader is not None:
                try:
                    base = self.cluster.api_url(leader)
                    if "create" in op:
                        resp = requests.post(base + "/services", json={"name": op["create"],
                                                                       "replicas": op["replicas"]}, timeout=5)
                    else:
                        resp = requests.put(base + f"/services/{op['scale']}", json={"replicas": op["replicas"]},
                                            timeout=5)
                    if resp.status_code == 200:
                        self._record(op, True, attempts, leader)
                        return
                    last = f"{resp.status_code} {resp.text[:200]}"
                except requests.RequestException as exc:
                    last = f"{type(exc).__name__}"
            self._stop.wait(0.5)
        self._record(op, False, attempts, None, last or "stopped")

    def _record(self, op: dict, ok: bool, attempts: int, via: str | None, error: str | None = None) -> None:
        row = {"ts": self.clock.now(), **op, "ok": ok, "attempts": attempts, "via": via}
        if error:
            row["error"] = error
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def spares_needed(plan: dict, role: str, managers: int) -> int:
    """Spare ids of `role` a plan may start (chaos.env.spec): one per node a membership `add` of that
    role or a `replace` (managers) may join -- a replace of a selector that can name several managers
    (`managers`, `followers`, a role with a count) reserves one per manager it may name."""
    n = 0
    for f in plan.get("faults", []):
        spec = f.get("spec") or {}
        if f.get("kind") != "membership":
            continue
        if spec.get("action") == "add" and (spec.get("role") or "manager") == role:
            n += 1
        elif spec.get("action") == "replace" and role == "manager":
            n += _selector_size(spec.get("target"), managers)
    return n


def _selector_size(target, managers: int) -> int:
    """At most how many managers a selector names."""
    if isinstance(target, list):
        return sum(_selector_size(t, managers) for t in target)
    if isinstance(target, str):
        return managers if target in ("managers", "followers", "all") else 1
    if isinstance(target, dict) and target.get("role") == "leader":
        return 1
    return managers


def _journal_order(cluster: Cluster, finals: dict[str, dict]) -> list[str]:
    """Workers first, then managers from the highest final applied index to the lowest: a manager
    that was a commit behind when its store was read has the longest to catch up before its journal
    is read (chaos/checkers/convergence.py compares the stores at a common index through them)."""
    def key(node: str) -> tuple:
        store = finals.get(node, {}).get("store")
        applied = store.get("applied_index") if isinstance(store, dict) else None
        is_manager = cluster.handles[node].kind == "manager"
        return (is_manager, -(applied if isinstance(applied, int) else -1))

    return sorted(cluster.nodes, key=key)


def _journal(cluster: Cluster, node: str) -> tuple[str | None, str]:
    """The node's journal: from its API, else from its container's volume (a node that is down)."""
    try:
        events = cluster.journal(node)
        return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events), "api"
    except (requests.RequestException, ValueError, ChaosError):
        pass
    try:
        bits, _ = cluster.container(node).get_archive("/data/journal.jsonl")
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tar:
            member = tar.getmembers()[0]
            data = tar.extractfile(member).read().decode("utf-8", "replace")
        return data, "volume"
    except Exception:  # noqa: BLE001 -- any engine failure: the journal is missing, and the run says so
        return None, "missing"


def _rng(seed: int, label: str):
    import random
    return random.Random(plan_mod._sub_seed(seed, label))


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: round(v[min(len(v) - 1, int(q * len(v)))], 4)  # noqa: E731
    return {"n": len(v), "p50": pick(0.5), "p99": pick(0.99), "max": round(v[-1], 4)}


def _agent_version() -> str:
    try:
        from importlib.metadata import version
        return version("chaos-swarm")
    except Exception:  # noqa: BLE001
        return "unknown"


def exit_code_of(outcomes: list[RunOutcome]) -> int:
    """The worst outcome wins: 4 (harness) > 1 (invalid) > 3 (inconclusive) > 0."""
    codes = [o.exit_code for o in outcomes]
    for c in (EXIT_INTERRUPTED, EXIT_ENVIRONMENT, 1, 3, 2):
        if c in codes:
            return c
    return 0


def command_line() -> str:
    return "chaos " + " ".join(shlex.quote(a) for a in sys.argv[1:])
