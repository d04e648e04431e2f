"""Membership commands: `chaos node promote|demote|rm|add` (Swarm's `docker node ...`, issue 23).

Owns the click group `node` (exported as `COMMANDS`). promote/demote/rm ask a manager of the
running cluster (its API on the control plane, which forwards to the Raft leader) through
chaos.membership, and wait, bounded, until the configuration shows the result; add starts a node
under a spare id (chaos.env.nodeops.add_node) and waits until it is a voter or a READY worker.
Errors are chaos.errors exceptions; the CLI maps them: 2 bad usage, 3 outcome unknown, 4 cluster
unreachable, 5 refused by the cluster.
Must not import: chaos.cli.
"""

from __future__ import annotations

import json

import click

from chaos import membership
from chaos.errors import UsageError

_NAME_HELP = "cluster name"


_http = membership.http_call


def _cluster(name: str):
    """(cluster, manager API URLs, node ids). Separate so tests can replace it."""
    from chaos.env.cluster import require_cluster
    from chaos.env.engine import connect

    cluster = require_cluster(connect(), name)
    cluster.refresh()
    urls = []
    for m in cluster.managers + cluster.workers:   # a promoted worker is a manager too
        try:
            urls.append(cluster.api_url(m))
        except Exception:   # a stopped node has no published port: skip it
            continue
    return cluster, urls, list(cluster.nodes)


def _run(name: str, action: str, node: str, force: bool, wait_s: float, as_json: bool):
    _c, urls, nodes = _cluster(name)
    if node not in nodes:
        raise UsageError(f"no node {node!r} in cluster {name!r}", hint="`chaos status` lists the nodes")
    if not urls:
        raise UsageError(f"cluster {name!r} has no running node to ask")
    answer = membership.change(_http, urls, action, node, force=force)
    want = {"promote": lambda c: node in c.get("voters", ()),
            "demote": lambda c: node in c.get("learners", ()),
            "remove": lambda c: node not in c.get("voters", ()) + c.get("learners", ())}[action]
    cfg = membership.wait_config(_http, urls, lambda c: want(c) and c.get("committed") is True, wait_s,
                                 f"{node} to be {'a voter' if action == 'promote' else 'a learner' if action == 'demote' else 'out of the configuration'}")
    if as_json:
        click.echo(json.dumps({"action": action, "node": node, "answer": answer, "config": cfg},
                              indent=2, sort_keys=True))
    else:
        click.echo(f"{action} {node}: done; voters {','.join(cfg['voters'])}"
                   + (f", learners {','.join(cfg['learners'])}" if cfg.get("learners") else ""))
    return 0


def _common(f):
    f = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")(f)
    f = click.option("--wait", "wait_s", type=click.FloatRange(0.5, 600), default=30.0, show_default=True,
                     help="seconds to wait for the configuration to show the change")(f)
    f = click.option("--name", "--cluster", "name", default="default", show_default=True, metavar="NAME",
                     help=_NAME_HELP, envvar="CHAOS_CLUSTER")(f)
    return click.argument("node")(f)


@click.group("node")
def node_group():
    """Change the managers' Raft configuration: promote, demote, remove, add (Swarm's `docker node`)."""


@node_group.command("promote")
@_common
def promote_cmd(node, name, wait_s, as_json):
    """Make NODE a voting manager: a learner is promoted once caught up; a READY worker turns into
    a manager, joins as a learner with the cluster's token and is promoted once caught up.

    \b
    Example:
      chaos node promote w3
    """
    return _run(name, "promote", node, False, wait_s, as_json)


@node_group.command("demote")
@_common
def demote_cmd(node, name, wait_s, as_json):
    """Make voter NODE a learner (it keeps the log, no longer votes or counts in a quorum).

    \b
    Example:
      chaos node demote m2
    """
    return _run(name, "demote", node, False, wait_s, as_json)


@node_group.command("rm")
@_common
@click.option("--force", is_flag=True, help="remove a voter without demoting it first (also the leader)")
def rm_cmd(node, name, wait_s, as_json, force):
    """Remove NODE from the configuration. A voter needs --force (or a demote first); a removed
    id never joins again: a replacement joins under a new id.

    \b
    Example:
      chaos node rm m2 --force
    """
    return _run(name, "remove", node, force, wait_s, as_json)


def _add_cluster(name: str):
    """The running cluster for `add`. Separate so tests can replace it."""
    from chaos.env.cluster import require_cluster
    from chaos.env.engine import connect

    cluster = require_cluster(connect(), name)
    cluster.refresh()
    return cluster


def _add(name: str, role: str, node_id: str | None, wait_s: float) -> dict:
    from chaos.env import nodeops

    return nodeops.add_node(_add_cluster(name), role, node_id, wait_s=wait_s, call=_http)


@node_group.command("add")
@click.option("--role", type=click.Choice(membership.ROLES), required=True,
              help="manager: joins the Raft group with the cluster's join token, as a learner, and is "
                   "made a voter once caught up; worker: registers with the leader and is given tasks")
@click.option("--id", "node_id", default=None, metavar="ID",
              help="the new node's id: one of the spare ids reserved at `chaos up` (default: the next free one)")
@click.option("--wait", "wait_s", type=click.FloatRange(0.5, 600), default=60.0, show_default=True,
              help="seconds to wait for it to be a voter (manager) or READY (worker)")
@click.option("--name", "--cluster", "name", default="default", show_default=True, metavar="NAME",
              help=_NAME_HELP, envvar="CHAOS_CLUSTER")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def add_cmd(role, node_id, wait_s, name, as_json):
    """Start a new node in a running cluster, as `docker swarm join` does: a manager joins with the
    cluster's join token (asked from the leader) as a learner and becomes a voter once caught up.

    The node takes a spare id: its link proxies, address and every other node's peer entry for it
    were made at `chaos up` (--spares, --spare-workers), so it joins with faults on its links like
    every node. It is labelled with the cluster: `chaos down` removes it. A removed id never joins
    again: a replacement joins under a new id. Exit 2 bad usage (no cluster, bad role, id in use,
    no spare left), 5 the cluster refused the join, 3 not in within --wait, 4 engine or cluster
    unreachable.

    \b
    Example:
      chaos node add --role manager
      chaos node add --cluster b --role worker --id w6
    """
    out = _add(name, role, node_id, wait_s)
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True, default=str))
        return 0
    if role == "manager":
        cfg = out["config"]
        click.echo(f"add {out['node']}: joined as a learner, now a voter; voters {','.join(cfg['voters'])}"
                   + (f", learners {','.join(cfg['learners'])}" if cfg.get("learners") else ""))
    else:
        click.echo(f"add {out['node']}: a READY worker (leader {out['status'].get('leader')})")
    return 0


COMMANDS = [node_group]
