"""Membership operations on a running cluster through the leader's API (issue 23).

Owns: `change()` (POST /membership on a manager, which forwards to its leader) with its error
mapping, `wait_config()` (poll GET /config until a condition holds, bounded), `config_view()`
(the configuration and each member's voter/learner state from node statuses, for `chaos status`),
and the harness side of a node joining (`chaos node add`, the `membership` fault's add and
replace): `pick_spare()` (which reserved id a new node takes), `join_token()` (the cluster's token,
from the leader) and `wait_joined()` (until the new node is a voter, or a READY worker, or its
process was refused).
The agent side is node_image/swarmnode/agent/members.py; the API is docs/contracts.md section 6.

Raises chaos.errors only (the CLI turns them into exit codes). HTTP goes through a `post`/`get`
callable so the logic is tested without a cluster. Must not import click or docker.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from chaos.errors import EnvironmentError_, MembershipRefused, OutcomeUnknown, UsageError

ACTIONS = ("promote", "demote", "remove")
ROLES = ("manager", "worker")
JOIN_REFUSALS = ("bad-token", "identity-in-use", "identity-retired")   # a joiner's final refusals
# answers the cluster gives that mean "definitely not done, and asking again will not help"
REFUSALS = ("bad-request", "not-found", "is-voter", "last-voter", "refused", "bad-token",
            "identity-in-use", "identity-retired")
# `not-ready` (a worker the leader holds DOWN) is retried like `change-in-flight`: after a leader
# change the new leader marks the workers DOWN until their heartbeats find it (Docker seed 2 of
# membership-promote-worker-leader-isolated was refused so)

HttpCall = Callable[..., tuple[int, dict]]   # (method, url, body|None, timeout) -> (status, body)


def http_call(method: str, url: str, body, timeout: float) -> tuple[int, dict]:
    """The real HttpCall (requests): (0, {"error": ...}) when nothing answered."""
    import requests

    try:
        r = requests.request(method, url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        return 0, {"error": f"{type(exc).__name__}: {exc}"}
    try:
        out = r.json()
    except ValueError:
        out = {"error": "bad-answer", "message": r.text[:200]}
    return r.status_code, out if isinstance(out, dict) else {"error": "bad-answer"}


def change(call: HttpCall, urls: list[str], action: str, node: str, force: bool = False,
           attempts: int = 10, timeout_s: float = 10.0) -> dict:
    """Ask the cluster (any manager in `urls`, API base URLs) for `action` on `node`. Retries,
    bounded, on a node that does not answer, no leader, or another change still in flight.
    Returns the answer body (with `outcome: "unknown"` when the change may or may not have
    happened: wait for the configuration to tell); raises MembershipRefused (definite),
    OutcomeUnknown (still no answer after the retries) or EnvironmentError_ (no manager answered)."""
    if action not in ACTIONS:
        raise UsageError(f"unknown membership action {action!r}; known: {', '.join(ACTIONS)}")
    body = {"action": action, "node": node, "force": bool(force)}
    last: tuple[int, dict] = (0, {})
    for i in range(attempts):
        code, resp = call("POST", urls[i % len(urls)] + "/membership", body, timeout_s)
        last = (code, resp)
        if code == 200:
            return resp
        err = resp.get("error")
        if code != 0 and err in REFUSALS:
            raise MembershipRefused(f"{action} {node} refused: {err}: {resp.get('message', '')}".rstrip(": "),
                                    hint=_hint(err, action), code=err)
        if code != 0 and resp.get("definite") is False:
            # it may have happened (e.g. a leader removing itself lost leadership before the change
            # committed; the next leader may commit it): the caller waits for the configuration
            return dict(resp, outcome="unknown")
        time.sleep(min(2.0, 0.2 * (i + 1)))   # no leader / change in flight / no answer: bounded retry
    code, resp = last
    if code == 0:
        raise EnvironmentError_(f"{action} {node}: no manager answered ({resp.get('error', '')})",
                                hint="is the cluster up? `chaos status`")
    raise OutcomeUnknown(f"{action} {node}: still {resp.get('error')} after {attempts} attempts",
                         hint="a leader election or another change was under way; try again")


def _hint(err: Optional[str], action: str) -> Optional[str]:
    return {"is-voter": "demote it first (`chaos node demote NODE`) or add --force",
            "last-voter": "promote another node first",
            "not-found": "`chaos status` lists the nodes and their voter/learner state",
            "not-ready": "a DOWN worker cannot be promoted; wait until it is READY"}.get(err or "")


def wait_config(call: HttpCall, urls: list[str], pred: Callable[[dict], bool], timeout_s: float,
                what: str, interval_s: float = 0.2) -> dict:
    """Poll GET /config on `urls` until `pred(config)`; the config, or OutcomeUnknown at the bound."""
    deadline = time.monotonic() + timeout_s
    i = 0
    while True:
        code, cfg = call("GET", urls[i % len(urls)] + "/config", None, 3.0)
        i += 1
        if code == 200 and pred(cfg):
            return cfg
        if time.monotonic() > deadline:
            raise OutcomeUnknown(f"timed out after {timeout_s:g} s waiting for {what}",
                                 hint="the change was accepted; `chaos status` shows where it stands")
        time.sleep(interval_s)


def config_view(statuses: dict) -> dict:
    """The configuration as the leader (else the manager with the highest config index) reports it,
    and each node's state in it: {"voters", "learners", "index", "committed", "source", "state":
    {node: voter|learner|removed|joining|-}}."""
    best, source = None, None
    for n, st in sorted(statuses.items()):
        c = (st or {}).get("config")
        if not isinstance(c, dict):
            continue
        key = ((st or {}).get("role") == "leader", c.get("index") or 0)
        if best is None or key > best[0]:
            best, source = (key, c), n
    if best is None:
        return {"voters": [], "learners": [], "index": None, "committed": None, "source": None,
                "state": {n: "-" for n in statuses}}
    c = best[1]
    state = {}
    for n, st in statuses.items():
        if n in c.get("voters", ()):
            state[n] = "voter"
        elif n in c.get("learners", ()):
            state[n] = "learner"
        elif isinstance((st or {}).get("membership"), str):
            state[n] = st["membership"]
        else:
            state[n] = "-"
    return {"voters": list(c.get("voters", ())), "learners": list(c.get("learners", ())),
            "index": c.get("index"), "committed": c.get("committed"), "source": source, "state": state}


def pick_spare(role: str, wanted: Optional[str], spares: list[str], in_use) -> str:
    """The id a new node of `role` takes: `wanted` when it is one of the role's spare ids (reserved
    at `chaos up`) without a node, else the first such spare. UsageError (exit 2) for a bad role, an
    id in use, an id that is not a spare, or no spare left."""
    if role not in ROLES:
        raise UsageError(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
    in_use = set(in_use)
    if wanted is not None:
        if wanted in in_use:
            raise UsageError(f"node id {wanted!r} is in use: a node joins under a NEW id (a removed id is "
                             "retired for good)", hint="leave --id out to take the next free spare id")
        if wanted not in spares:
            raise UsageError(f"{wanted!r} is not a spare {role} id of this cluster (spare {role} ids: "
                             f"{', '.join(spares) or 'none'})",
                             hint="the link proxies of a node are made at `chaos up`: reserve ids with "
                                  "--spares / --spare-workers")
        return wanted
    free = [n for n in spares if n not in in_use]
    if not free:
        raise UsageError(f"no spare {role} id left (spare {role} ids: {', '.join(spares) or 'none'}, all in use)",
                         hint="bring the cluster up with more: `chaos up --spares N` / `--spare-workers N`")
    return free[0]


def join_token(call: HttpCall, urls: list[str], timeout_s: float = 30.0, interval_s: float = 0.3) -> str:
    """The cluster's join token (GET /join-token on any manager; it forwards to its leader), asked
    again while no leader has one (bounded). EnvironmentError_ when no manager answered at all,
    OutcomeUnknown when they answered without a token."""
    deadline = time.monotonic() + timeout_s
    i, answered, last = 0, False, ""
    while True:
        code, body = call("GET", urls[i % len(urls)] + "/join-token", None, 3.0)
        i += 1
        if code == 200 and isinstance(body.get("join_token"), str) and body["join_token"]:
            return body["join_token"]
        answered = answered or code != 0
        last = str(body.get("error") or code)
        if time.monotonic() > deadline:
            if not answered:
                raise EnvironmentError_(f"no manager answered for the join token ({last})",
                                        hint="is the cluster up? `chaos status`")
            raise OutcomeUnknown(f"no join token from the cluster within {timeout_s:g} s ({last})",
                                 hint="a leader must be settled; `chaos status`")
        time.sleep(interval_s)


def wait_joined(call: HttpCall, urls: list[str], node: str, role: str, node_url: Callable[[], Optional[str]],
                exited: Callable[[], Optional[tuple[int, str]]], timeout_s: float,
                interval_s: float = 0.25) -> dict:
    """Wait until the new `node` is in: a manager a voter in a committed configuration (GET /config
    on `urls`), a worker READY with the leader (its own GET /status says `ready`). `exited()` tells
    (exit status, log tail) once its process ended: a refused join (exit 4, JOIN_REFUSALS in the
    log) is MembershipRefused, any other exit EnvironmentError_. OutcomeUnknown at the bound.
    Returns {"config"} (manager) or {"status"} (worker), and `learner_seen` (a manager was seen a
    learner first, Raft thesis §4.2.1)."""
    deadline = time.monotonic() + timeout_s
    i, learner_seen = 0, False
    while True:
        gone = exited()
        if gone is not None:
            code, tail = gone
            why = next((r for r in JOIN_REFUSALS if r in tail), None)
            if why is not None:
                raise MembershipRefused(f"{node} was refused by the cluster: {why} (its process exited {code})",
                                        hint=_JOIN_HINTS[why])
            raise EnvironmentError_(f"{node} exited with status {code} before it joined: "
                                    f"{tail.strip().splitlines()[-1][:200] if tail.strip() else 'no log'}",
                                    hint=f"`chaos logs {node}`")
        if role == "manager":
            code, cfg = call("GET", urls[i % len(urls)] + "/config", None, 3.0)
            i += 1
            if code == 200:
                learner_seen = learner_seen or node in (cfg.get("learners") or ())
                if node in (cfg.get("voters") or ()) and cfg.get("committed") is True:
                    return {"config": cfg, "learner_seen": learner_seen}
        else:
            url = node_url()
            code, st = call("GET", url + "/status", None, 3.0) if url else (0, {})
            if code == 200 and st.get("ready") is True:
                return {"status": {k: st.get(k) for k in ("role", "leader", "ready", "boot")}}
        if time.monotonic() > deadline:
            raise OutcomeUnknown(f"timed out after {timeout_s:g} s waiting for {node} to be "
                                 + ("a voter" if role == "manager" else "a READY worker"),
                                 hint=f"it was started; `chaos status` and `chaos logs {node}` show where it stands")
        time.sleep(interval_s)


_JOIN_HINTS = {
    "bad-token": "the node was not given this cluster's join token",
    "identity-in-use": "the id is in the configuration and the node's disk is empty: remove it first "
                       "(`chaos node rm ID --force`), then join a node under a new id",
    "identity-retired": "a removed id never joins again: join under a new id",
}
