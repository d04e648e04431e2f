"""The runs of this tool on an engine, who owns each one, and whether its `up` completed.

Owns: the owner and completion labels (`chaos.owner`, `chaos.up-complete`), `owner_alive`, `RunInfo`
(one run as read from its objects' labels), `list_runs` and the pure `verdict` that `chaos cleanup`
(no options), `chaos status` and the next `up` of a name act on.

A run's network carries the owner (`host:pid` of the process that started `up`) from the first
object on. When `up` completes it creates a marker volume labelled `chaos.up-complete`; that marker
names an owner too when the cluster lives only as long as its process (`chaos demo`, tests, the
benchmarks), and none when `chaos up` hands the cluster over to the user, who removes it with
`chaos down`. So a run is stale -- safe to remove without being asked by name -- when its owner is
gone: a killed `up` (no marker, owner dead) or a killed demo (marker with a dead owner).
Must not import: click, chaos.cli.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import docker

from chaos.env import labels as L
from chaos.env.engine import engine_errors

READY_MARKER_LABEL = "chaos.up-complete"
OWNER_LABEL = "chaos.owner"


def this_owner() -> str:
    """The owner value of this process: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by an owner value still exists. Another host's process cannot be
    checked: assumed alive (never delete someone's live run)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RunInfo:
    cluster: str
    run_id: str
    complete: bool          # the up-complete marker exists
    owner: str | None       # complete: the marker's owner (None = handed to the user by `chaos up`);
                            # not complete: the network's owner (None = no network left)
    containers: int = 0


# verdicts
STALE = "stale"          # owner gone: `chaos cleanup` removes it
STARTING = "starting"    # `up` still running in a live process
IN_USE = "in-use"        # complete, owned by a live process (a demo, a test)
KEPT = "up"              # complete, handed to the user by `chaos up`


def verdict(run: RunInfo, alive=owner_alive) -> str:
    """What a run is, from its labels and whether its owner lives (pure but for `alive`)."""
    if run.complete:
        if run.owner is None:
            return KEPT
        return IN_USE if alive(run.owner) else STALE
    if run.owner is None:
        return STALE   # no owner recorded: the network is gone, what is left is debris
    return STARTING if alive(run.owner) else STALE


def describe(run: RunInfo, what: str) -> str:
    """One line about a run for `chaos cleanup` and `chaos status`."""
    if what == STALE:
        why = ("its `chaos up` did not finish and its process is gone" if not run.complete
               else f"its owner {run.owner} is gone")
        return f"cluster {run.cluster!r} (run {run.run_id}): {why}"
    if what == STARTING:
        return f"cluster {run.cluster!r} (run {run.run_id}) is being brought up by {run.owner}"
    if what == IN_USE:
        return f"cluster {run.cluster!r} (run {run.run_id}) is in use by {run.owner}"
    return f"cluster {run.cluster!r} (run {run.run_id}) is up (`chaos down --name {run.cluster}` removes it)"


def _labels(obj) -> dict:
    attrs = obj.attrs or {}
    return attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}


def list_runs(client: docker.DockerClient, cluster: str | None = None) -> list[RunInfo]:
    """Every run of this tool (of `cluster`, or all) that has any object left, sorted by cluster and run."""
    filters = L.selector(cluster=cluster)
    with engine_errors("list this tool's objects"):
        nets = [_labels(n) for n in client.networks.list(filters=filters)]
        vols = [_labels(v) for v in client.volumes.list(filters=filters)]
        conts = [_labels(c) for c in client.containers.list(all=True, filters=filters, sparse=True)]
    runs: dict[tuple[str, str], dict] = {}
    for lab in nets + vols + conts:
        if not L.is_ours(lab, cluster) or not lab.get(L.RUN_LABEL):
            continue
        runs.setdefault((lab.get(L.CLUSTER_LABEL, ""), lab[L.RUN_LABEL]),
                        {"marker": None, "net_owner": None, "containers": 0})
    for lab in nets:
        key = (lab.get(L.CLUSTER_LABEL, ""), lab.get(L.RUN_LABEL))
        if key in runs:
            runs[key]["net_owner"] = lab.get(OWNER_LABEL) or runs[key]["net_owner"]
    for lab in vols:
        key = (lab.get(L.CLUSTER_LABEL, ""), lab.get(L.RUN_LABEL))
        if key in runs and lab.get(READY_MARKER_LABEL):
            runs[key]["marker"] = lab
    for lab in conts:
        key = (lab.get(L.CLUSTER_LABEL, ""), lab.get(L.RUN_LABEL))
        if key in runs:
            runs[key]["containers"] += 1
    out = []
    for (name, run_id), r in sorted(runs.items()):
        complete = r["marker"] is not None
        owner = (r["marker"].get(OWNER_LABEL) or None) if complete else r["net_owner"]
        out.append(RunInfo(name, run_id, complete, owner, r["containers"]))
    return out
