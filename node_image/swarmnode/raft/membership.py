"""Cluster membership: the configuration (voters and non-voting learners) and one-server changes.

Owns: Membership, the configuration log entry's shape (CONFIG_OP), change() (one server at a time,
Raft thesis §4.1) and ConfChangeError. Pure functions on plain values.
Must not import asyncio, socket, time, module-level random or `chaos`.

A configuration is a log entry `{"op": "config", "voters": [...], "learners": [...]}` carrying the
whole new configuration (sorted ids). A node uses the latest configuration in its log, committed or
not (§4.1); truncating a conflicting suffix rolls it back to the previous one; a snapshot carries
the configuration in force at its index. With no configuration entry and no snapshot
configuration, the bootstrap voters given to RaftNode are the configuration.

Actions (each changes exactly one server, so any majority of the old and any majority of the new
configuration overlap):
  add_learner N   N joins as a non-voting learner (it receives the log, never counts in a quorum)
  promote N       learner N becomes a voter (the leader refuses until N has caught up, §4.2.1)
  demote N        voter N becomes a learner
  remove N        voter or learner N leaves the configuration
"""
from __future__ import annotations

from dataclasses import dataclass

CONFIG_OP = "config"
ACTIONS = ("add_learner", "promote", "demote", "remove")


class ConfChangeError(ValueError):
    """A configuration change that is refused (definite: nothing was appended)."""


def _ids(v, what: str) -> tuple:
    if type(v) not in (list, tuple) or any(type(x) is not str or not x for x in v):
        raise ConfChangeError(f"{what} must be a list of non-empty strings, got {v!r}")
    if len(set(v)) != len(v):
        raise ConfChangeError(f"{what} has duplicates: {v!r}")
    return tuple(sorted(v))


@dataclass(frozen=True, slots=True)
class Membership:
    """One configuration: `voters` elect and commit; `learners` only receive the log."""
    voters: tuple
    learners: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "voters", _ids(self.voters, "voters"))
        object.__setattr__(self, "learners", _ids(self.learners, "learners"))
        both = set(self.voters) & set(self.learners)
        if both:
            raise ConfChangeError(f"{sorted(both)} both voter and learner")

    @property
    def members(self) -> tuple:
        return tuple(sorted(self.voters + self.learners))

    def to_dict(self) -> dict:
        return {"voters": list(self.voters), "learners": list(self.learners)}

    @classmethod
    def from_dict(cls, d) -> "Membership":
        if type(d) is not dict:
            raise ConfChangeError(f"a configuration must be a dict, got {d!r}")
        return cls(d.get("voters", ()), d.get("learners", ()))

    def command(self) -> dict:
        """The log entry's command for this configuration."""
        return {"op": CONFIG_OP, "voters": list(self.voters), "learners": list(self.learners)}


def is_config(command: dict) -> bool:
    return command.get("op") == CONFIG_OP


def from_command(command: dict) -> Membership:
    return Membership(command.get("voters", ()), command.get("learners", ()))


def change(cur: Membership, action: str, node: str) -> Membership:
    """The configuration after one action on `cur`; ConfChangeError if it makes no sense."""
    if type(node) is not str or not node:
        raise ConfChangeError(f"node must be a non-empty string, got {node!r}")
    v, ln = set(cur.voters), set(cur.learners)
    if action == "add_learner":
        if node in v or node in ln:
            raise ConfChangeError(f"{node} is already a member")
        ln.add(node)
    elif action == "promote":
        if node not in ln:
            raise ConfChangeError(f"{node} is not a learner")
        ln.discard(node)
        v.add(node)
    elif action == "demote":
        if node not in v:
            raise ConfChangeError(f"{node} is not a voter")
        v.discard(node)
        ln.add(node)
    elif action == "remove":
        if node not in v and node not in ln:
            raise ConfChangeError(f"{node} is not a member")
        v.discard(node)
        ln.discard(node)
    else:
        raise ConfChangeError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if not v:
        raise ConfChangeError("a configuration needs at least one voter")
    return Membership(tuple(v), tuple(ln))
