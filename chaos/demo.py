"""The built-in demonstration run: one real experiment, end to end, before experiment files exist.

Owns: a fixed scenario and its run directory (docs/contracts.md section 5). Cluster up (real
containers, every link through Toxiproxy) -> a service and a recorded client workload -> baseline ->
the leader isolated by a verified black-hole partition -> final heal (verified) -> recovery window ->
journals, final stores -> checkers -> results.json -> cluster down (always, also on Ctrl-C).

The scenario's choices (which node is isolated, the client mix) come from one seed, printed first.
Must not import: click (the command lives in chaos/cmd_demo.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from chaos import partition as partition_mod
from chaos.checkers import run_checks
from chaos.env import cleanup as cleanup_mod
from chaos.env.cluster import Cluster
from chaos.env.engine import connect
from chaos.env.progress import NullProgress, Progress
from chaos.env.spec import ClusterSpec
from chaos.env.up import bring_up, signals_ignored, sigterm_as_interrupt
from chaos.errors import EnvironmentError_, FaultError
from chaos.image import build_node_image
from chaos.toxi import LinkController
from chaos.workload import HistoryWriter, StatusPoller, Workload, WorkloadSpec

SERVICE = "web"


@dataclass(frozen=True)
class DemoSpec:
    seed: int
    managers: int = 3
    workers: int = 3
    baseline_s: float = 5.0
    fault_s: float = 8.0
    recovery_s: float = 10.0
    converge_bound_s: float = 30.0
    ready_timeout_s: float = 120.0
    name: str = "demo"
    keep: bool = False


def _checks(spec: DemoSpec) -> list[dict]:
    return [
        {"checker": "linearizable"},
        {"checker": "raft-safety", "params": {"commit_persisted": True}},
        {"checker": "durability"},
        {"checker": "convergence", "params": {"store_bound_s": spec.converge_bound_s,
                                              "members_bound_s": spec.converge_bound_s,
                                              "require": ["managers", "members", "services"]}},
        {"checker": "availability"},
        {"checker": "recovery", "params": {"max_leader_s": 10.0, "max_heal_to_write_s": 10.0}},
        {"checker": "expectations", "params": {"expect": ["leader-changed", "fault-applied:partition",
                                                          "ops-failed-in-phase:partition"]}},
    ]


class DemoRun:
    def __init__(self, spec: DemoSpec, out_dir: Path, progress: Progress | None = None,
                 say: Callable[[str], None] = print):
        self.spec = spec
        self.progress = progress or NullProgress()
        self.say = say
        self.run_dir = out_dir / f"demo-{time.strftime('%Y%m%d-%H%M%S')}-seed{spec.seed}"
        self.phases: list[dict] = []
        self.faults_path = self.run_dir / "faults.jsonl"

    # -- helpers ---------------------------------------------------------------------------------

    def _phase(self, name: str, start: float | None = None) -> None:
        now = time.time() if start is None else start
        if self.phases:
            self.phases[-1]["end"] = now
        self.phases.append({"name": name, "start": now, "end": None})
        self.say(f"phase {name}")

    def _fault(self, **row) -> None:
        with open(self.faults_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")

    def _leader(self, cluster: Cluster, deadline_s: float) -> str:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            sts = cluster.statuses(cluster.managers)
            leaders = {s.get("leader") for s in sts.values() if s}
            if len(leaders) == 1 and None not in leaders:
                return leaders.pop()
            time.sleep(0.2)
        raise EnvironmentError_(f"no agreed leader within {deadline_s:.0f} s")

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> dict:
        spec = self.spec
        self.run_dir.mkdir(parents=True, exist_ok=False)
        (self.run_dir / "events").mkdir()
        (self.run_dir / "final").mkdir()
        self.say(f"seed: {spec.seed}")
        self.say(f"run directory: {self.run_dir}")
        client = connect()
        image = build_node_image(client, progress=self.progress).tag
        cspec = ClusterSpec(name=spec.name, managers=spec.managers, workers=spec.workers, seed=spec.seed)
        started = time.time()
        up = bring_up(client, cspec, image, spec.ready_timeout_s, self.progress)
        cluster = up.cluster
        self.say(f"cluster up in {up.seconds_total:.1f} s ({up.proxies} proxies; Toxiproxy {up.toxiproxy.image})")
        try:
            with sigterm_as_interrupt():
                return self._experiment(cluster, image, started)
        finally:
            if not spec.keep:
                with signals_ignored():
                    self.say("tearing the cluster down")
                    removed = cleanup_mod.remove_objects(client, cluster=spec.name, run_id=cluster.run_id)
                    cleanup_mod.raise_if_failed(removed, "demo teardown")

    def _experiment(self, cluster: Cluster, image: str, started: float) -> dict:
        spec = self.spec
        plan = {"seed": spec.seed, "scenario": "isolate-leader", "managers": cluster.managers,
                "workers": cluster.workers, "checks": _checks(spec),
                "phases": {"baseline_s": spec.baseline_s, "fault_s": spec.fault_s, "recovery_s": spec.recovery_s}}
        (self.run_dir / "plan.json").write_text(json.dumps(plan, indent=2))
        links = LinkController(cluster.toxiproxy_api(), cluster.topology(), seed=spec.seed,
                               probe=cluster.probe)
        leader = self._leader(cluster, 30)
        resp = requests.post(cluster.api_url(leader) + "/services", json={"name": SERVICE, "replicas": spec.workers},
                             timeout=10)
        if resp.status_code != 200:
            raise EnvironmentError_(f"creating service {SERVICE!r} failed: {resp.status_code} {resp.text[:200]}")

        writer = HistoryWriter(self.run_dir / "history.jsonl")
        workload = Workload({m: cluster.client_url(m) for m in cluster.managers}, writer,
                            WorkloadSpec(), spec.seed)
        poller = StatusPoller(cluster.statuses, self.run_dir / "status.jsonl")
        heal_ts = None
        poller.start()
        workload.start()
        try:
            self._phase("baseline")
            time.sleep(spec.baseline_s)  # the workload runs meanwhile: this is the phase's length

            self._phase("partition")
            leader = self._leader(cluster, 10)
            cut = partition_mod.isolate(cluster.nodes, leader)
            self.say(f"isolating the leader {leader} ({len(cut)} directed links black-holed)")
            rec = links.apply_partition(cut)
            self._fault(ts=rec["ts"], fault="f1", action="start", kind="partition", targets=[leader],
                        details={"shape": "isolate", "links": len(cut), "verified": bool(rec.get("verified")),
                                 "done_ts": rec.get("done_ts")})
            time.sleep(spec.fault_s)

            rec = links.heal()
            heal_ts = rec["ts"]
            self._phase("recovery", start=heal_ts)  # the phase after the final heal
            self._fault(ts=rec["ts"], fault="f1", action="stop", kind="partition", targets=[leader],
                        details={"op": "heal", "done_ts": rec.get("done_ts")})
            time.sleep(spec.recovery_s)
        finally:
            workload.stop()
            writer.close()
            self.phases[-1]["end"] = time.time()
        self._settle(cluster, poller)
        poller.stop()
        self._collect(cluster)
        run = {"run_id": cluster.run_id, "seed": spec.seed, "started": started, "ended": time.time(),
               "heal_ts": heal_ts, "phases": self.phases, "image": image,
               "nodes": {n: {"role": cluster.handles[n].kind} for n in cluster.nodes},
               "history_counts": writer.counts}
        (self.run_dir / "run.json").write_text(json.dumps(run, indent=2))
        return run_checks(self.run_dir)  # specs come from plan.json

    def _settle(self, cluster: Cluster, poller: StatusPoller) -> None:
        """Poll until the managers agree on applied index and digest (bounded), so the final
        snapshot is taken after convergence; whether it converged in time is the checker's call."""
        end = time.monotonic() + self.spec.converge_bound_s
        while time.monotonic() < end:
            sts = poller.poll_once()
            ms = [sts.get(m) or {} for m in cluster.managers]
            if len({(s.get("applied_index"), s.get("store_digest")) for s in ms}) == 1 and ms[0]:
                return
            time.sleep(0.3)

    def _collect(self, cluster: Cluster) -> None:
        for node in cluster.nodes:
            try:
                events = cluster.journal(node)
            except requests.RequestException as exc:
                raise EnvironmentError_(f"could not read the journal of {node}: {exc}") from exc
            with open(self.run_dir / "events" / f"{node}.jsonl", "w", encoding="utf-8") as fh:
                for ev in events:
                    fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
            final = {"status": cluster.status(node)}
            if cluster.handles[node].kind == "manager":
                final["store"] = cluster.store(node)
            (self.run_dir / "final" / f"{node}.json").write_text(json.dumps(final, indent=1))
            (self.run_dir / "logs").mkdir(exist_ok=True)
            (self.run_dir / "logs" / f"{node}.log").write_text(cluster.logs(node))


__all__ = ["DemoSpec", "DemoRun", "FaultError"]
