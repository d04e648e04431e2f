"""Labels on every Docker object this tool creates, and the filters that find them again.

Owns: label keys and values, object naming, and the label filters used by `status`, `down` and
`cleanup`. Nothing unlabelled is ever selected by these filters.
Must not import: docker, click (pure).
"""

from __future__ import annotations

import re
import secrets

TOOL_LABEL = "chaos.tool"
TOOL_NAME = "chaos"
CLUSTER_LABEL = "chaos.cluster"
RUN_LABEL = "chaos.run"
NODE_LABEL = "chaos.node"
KIND_LABEL = "chaos.kind"
KINDS = ("manager", "worker", "toxiproxy", "gateway")   # gateway: swarm backend only (chaos.env.hosts)
TOXIPROXY_NODE = "toxiproxy"   # shard 0; further shards are toxiproxy2, toxiproxy3... (chaos.topology)

_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def valid_cluster_name(name: str) -> bool:
    return bool(_CLUSTER_NAME.match(name))


def new_run_id() -> str:
    """A fresh run id: 8 hex characters from the OS (not the experiment seed: runs must not collide)."""
    return secrets.token_hex(4)


def object_labels(cluster: str, run_id: str, node: str | None = None, kind: str | None = None) -> dict[str, str]:
    labels = {TOOL_LABEL: TOOL_NAME, CLUSTER_LABEL: cluster, RUN_LABEL: run_id}
    if node is not None:
        labels[NODE_LABEL] = node
    if kind is not None:
        assert kind in KINDS, kind
        labels[KIND_LABEL] = kind
    return labels


def selector(cluster: str | None = None, run_id: str | None = None) -> dict[str, list[str]]:
    """Docker `filters` selecting this tool's objects: all, one cluster, or one run."""
    wanted = [f"{TOOL_LABEL}={TOOL_NAME}"]
    if cluster is not None:
        wanted.append(f"{CLUSTER_LABEL}={cluster}")
    if run_id is not None:
        wanted.append(f"{RUN_LABEL}={run_id}")
    return {"label": wanted}


def is_ours(labels: dict[str, str] | None, cluster: str | None = None) -> bool:
    """Double check on the client side (never trust a filter alone before deleting)."""
    labels = labels or {}
    if labels.get(TOOL_LABEL) != TOOL_NAME:
        return False
    return cluster is None or labels.get(CLUSTER_LABEL) == cluster


def network_name(cluster: str, run_id: str) -> str:
    return f"chaos-{cluster}-{run_id}"


DISK_HOLDER = "disks"   # chaos-<cluster>-disks: holds the size-capped data volumes (chaos/env/up.py)


def container_name(cluster: str, node: str) -> str:
    return f"chaos-{cluster}-{node}"


def volume_name(cluster: str, run_id: str, node: str) -> str:
    return f"chaos-{cluster}-{run_id}-{node}"
