"""When is a cluster ready: a pure judgement over the nodes' `GET /status` answers.

Ready means (issue 6): every manager agrees on one leader (and that leader says it leads), every
worker is registered `ready` in the leader's `workers` table, and every node's gossip member table
shows every other node `alive`. `evaluate` returns the conditions that fail and for which nodes, so
a timeout can say exactly what was missing.
Pure: no I/O, no clock. Must not import: docker, requests, click.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

Status = Mapping[str, object]


@dataclass(frozen=True)
class Failure:
    condition: str          # reachable | leader | workers-registered | gossip
    nodes: tuple[str, ...]  # the nodes for which it fails
    detail: str

    def __str__(self) -> str:
        shown = ", ".join(self.nodes[:12]) + (f" (+{len(self.nodes) - 12} more)" if len(self.nodes) > 12 else "")
        return f"{self.condition}: {self.detail} [{shown}]"


def evaluate(statuses: Mapping[str, Status | None], managers: list[str], workers: list[str]) -> list[Failure]:
    """Failures of the ready conditions; empty means ready. A None status = node unreachable."""
    nodes = list(managers) + list(workers)
    failures = _unreachable(statuses, nodes) + _leader_and_workers(statuses, managers, workers)
    lagging = tuple(n for n in nodes if isinstance(statuses.get(n), Mapping)
                    and not _sees_all_alive(statuses[n], n, nodes))
    if lagging:
        failures.append(Failure("gossip", lagging, "member table does not show every node alive"))
    return failures


def evaluate_leader(statuses: Mapping[str, Status | None], managers: list[str],
                    workers: list[str]) -> list[Failure]:
    """The leader and workers-registered conditions from the managers' answers alone. Lets a
    poller ask 3 nodes instead of all of them until the cheap conditions hold (at 100 workers,
    polling every node's member table several times a second was itself a large share of the
    machine)."""
    return _unreachable(statuses, managers) + _leader_and_workers(statuses, managers, workers)


def _unreachable(statuses: Mapping[str, Status | None], nodes: list[str]) -> list[Failure]:
    down = tuple(n for n in nodes if not isinstance(statuses.get(n), Mapping))
    return [Failure("reachable", down, "status endpoint not answering")] if down else []


def _leader_and_workers(statuses: Mapping[str, Status | None], managers: list[str],
                        workers: list[str]) -> list[Failure]:
    leader, leader_failure = _leader(statuses, managers)
    if leader_failure:
        return [leader_failure] + ([Failure("workers-registered", tuple(workers), "no leader to ask")]
                                   if workers else [])
    table = statuses[leader].get("workers") or {}
    missing = tuple(w for w in workers if not isinstance(table, Mapping) or table.get(w) != "ready")
    if missing:
        return [Failure("workers-registered", missing, f"not READY in leader {leader}'s status")]
    return []


def _leader(statuses: Mapping[str, Status | None], managers: list[str]) -> tuple[str | None, Failure | None]:
    claims = {}
    for m in managers:
        st = statuses.get(m)
        claims[m] = st.get("leader") if isinstance(st, Mapping) else None
    named = {c for c in claims.values() if c}
    if len(named) != 1:
        what = "no manager knows a leader" if not named else f"managers disagree: {sorted(named)}"
        return None, Failure("leader", tuple(managers), what)
    (leader,) = named
    disagree = tuple(m for m, c in claims.items() if c != leader)
    if disagree:
        return None, Failure("leader", disagree, f"do not follow {leader}")
    st = statuses.get(leader)
    if not isinstance(st, Mapping) or st.get("role") != "leader":
        return None, Failure("leader", (leader,), "named leader does not report role leader")
    return leader, None


def _sees_all_alive(status: Status, me: str, nodes: list[str]) -> bool:
    members = status.get("members")
    if not isinstance(members, Mapping):
        return False
    for n in nodes:
        if n == me and n not in members:
            continue  # a node may leave itself out of its own table
        entry = members.get(n)
        if not isinstance(entry, Mapping) or entry.get("state") != "alive":
            return False
    return True


def summary(failures: list[Failure]) -> str:
    """One line for progress display: the count of nodes failing each condition."""
    if not failures:
        return "ready"
    return "; ".join(f"{f.condition}: {len(f.nodes)} node(s)" for f in failures)
