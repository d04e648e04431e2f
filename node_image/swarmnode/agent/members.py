"""Membership policy of the leader (issue 23): who may join, and what an operator's change becomes.

Owns two pure decisions, table-tested (tests/agent/test_agent_members.py), that the manager role
(manager.py) carries out through the Raft core's one-server changes (raft/membership.py):

- ``join(...)``: a manager joining with the cluster's join token (CHAOS_JOIN_TOKEN, Swarm's
  `swarm join --token`) is added as a learner, or refused with a definite error:
    bad-token          the token is not the cluster's (or none was given)
    identity-in-use    the id is in the configuration but the joiner's Raft state is empty: it
                       could vote a second time in a term it already voted in (Raft Fig. 2 keeps
                       votedFor on stable storage for exactly this reason) -- unless the request
                       carries the `nonce` of the join that added it: the same joiner process
                       asking again (its first answer lost or late, or the configuration not yet
                       in its log), whose Raft state was never lost, only empty when it started
    identity-retired   the id was in the configuration and was removed (a bootstrap manager no
                       longer listed, or a node the leader marked `raft: removed`); the Swarm way
                       to replace a lost manager is remove, wipe, join under a NEW id
  A joiner whose Raft state is NOT empty and whose id is in the configuration is already a member
  (a restart that lost the answer): `already`, nothing proposed.
- ``change(...)``: `promote`, `demote`, `remove` of a node -> the steps to propose: store upserts
  (the wanted state, read by the leader's auto-promotion of caught-up learners) and at most one
  configuration change, or a refusal.

The cluster's bookkeeping lives in the replicated store's `nodes` table:
  nodes[N] = {"role": "manager", "want": "voter"|"learner", "raft": "removed"?, ...}
  nodes["@cluster"] = {"join_token": T}   (store.CLUSTER_KEY; set once, raft/store.py cluster.init)

Must not import asyncio, aiohttp or ``chaos``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

ACTIONS = ("promote", "demote", "remove")


@dataclasses.dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class Steps:
    """What the leader proposes, in order: store upserts, then at most one configuration change
    (`conf`: (action, node) for RaftNode.propose_conf_change). `promote_worker`: the node is a
    worker that must turn into a joining manager (the leader sends it the join token)."""
    upserts: tuple = ()
    conf: Optional[tuple] = None
    promote_worker: bool = False
    unchanged: bool = False


def retired(node: str, voters, learners, bootstrap, nodes: dict) -> bool:
    """`node` was in the configuration and is not any more."""
    if node in voters or node in learners:
        return False
    return node in bootstrap or nodes.get(node, {}).get("raft") == "removed"


def join(node: str, token, fresh: bool, token_in_force, voters, learners, bootstrap,
         nodes: dict, nonce=None, pending_nonce=None):
    """Refusal, "already", or "add" (propose add_learner for `node`).

    `nonce`: the joiner process's random join id (memory only: a restarted joiner has a new one);
    the add records it in nodes[node]["join_nonce"], and the leader that proposed the add knows it
    before that applies (`pending_nonce`)."""
    if not token_in_force:
        return Refusal(503, "unavailable", "the cluster has no join token yet (no leader settled)")
    if not isinstance(token, str) or token != token_in_force:
        return Refusal(403, "bad-token", f"{node}: join token refused (not this cluster's token)")
    if node in voters or node in learners:
        same_joiner = isinstance(nonce, str) and bool(nonce) and \
            nonce in (nodes.get(node, {}).get("join_nonce"), pending_nonce)
        if fresh and not same_joiner:
            return Refusal(409, "identity-in-use",
                           f"{node} is in the configuration but its Raft state is empty: it could "
                           "vote twice in a term; remove it, wipe it and join under a new id")
        return "already"
    if retired(node, voters, learners, bootstrap, nodes):
        return Refusal(409, "identity-retired",
                       f"{node} was removed from the configuration; a replacement joins under a new id")
    return "add"


def change(action: str, node: str, force: bool, voters, learners, nodes: dict):
    """Refusal or Steps for an operator's `action` on `node`."""
    if action not in ACTIONS:
        return Refusal(400, "bad-request", f"action must be one of {', '.join(ACTIONS)}")
    rec = nodes.get(node, {})
    is_voter, is_learner = node in voters, node in learners
    is_worker = not (is_voter or is_learner) and rec.get("role", "worker") == "worker" and \
        rec.get("state") in ("ready", "down")
    if action == "promote":
        if is_voter:
            return Steps(unchanged=True)
        if is_learner:
            return Steps(upserts=({"want": "voter"},), conf=("promote", node))
        if is_worker:
            if rec.get("state") != "ready":
                return Refusal(409, "not-ready", f"worker {node} is DOWN: it cannot be promoted")
            return Steps(upserts=({"role": "manager", "want": "voter", "state": "down"},),
                         promote_worker=True)
        return Refusal(404, "not-found", f"{node} is neither a manager nor a worker of this cluster")
    if action == "demote":
        if is_learner:
            return Steps(unchanged=True)
        if not is_voter:
            return Refusal(404, "not-found", f"{node} is not a manager")
        if len(voters) == 1:
            return Refusal(409, "last-voter", f"{node} is the only voter")
        return Steps(upserts=({"want": "learner"},), conf=("demote", node))
    # remove
    if not (is_voter or is_learner):
        return Refusal(404, "not-found", f"{node} is not in the configuration")
    if is_voter and not force:
        return Refusal(409, "is-voter", f"{node} is a voter: demote it first, or force the removal")
    if is_voter and len(voters) == 1:
        return Refusal(409, "last-voter", f"{node} is the only voter")
    return Steps(upserts=({"raft": "removed", "want": "none"},), conf=("remove", node))
