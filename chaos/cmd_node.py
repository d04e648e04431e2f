"""Membership commands: `chaos node promote|demote|rm|add` (Swarm's `docker node ...`, issue 23).

Owns the click group `node` (exported as `COMMANDS`). Each asks a manager of the running cluster
(its API on the control plane, which forwards to the Raft leader) through chaos.membership, and
waits, bounded, until the configuration shows the result. Errors are chaos.errors exceptions; the
CLI maps them: 2 bad usage, 3 outcome unknown, 4 cluster unreachable, 5 refused by the cluster.
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
    f = click.option("--name", default="default", show_default=True, metavar="NAME", help=_NAME_HELP,
                     envvar="CHAOS_CLUSTER")(f)
    return click.argument("node")(f)


@click.group("node")
def node_group():
    """Change the managers' Raft configuration: promote, demote, remove (Swarm's `docker node`)."""


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


@node_group.command("add")
@click.option("--role", type=click.Choice(["manager"]), required=True)
@click.option("--name", default="default", show_default=True, metavar="NAME", help=_NAME_HELP)
def add_cmd(role, name):
    """Start a new manager that joins with the cluster's token (not available yet).

    \b
    Example:
      chaos node add --role manager
    """
    raise UsageError("`chaos node add` is not implemented yet: the harness creates every node's "
                     "link proxies at `chaos up`",
                     hint="promote a worker instead: `chaos node promote w3`")


COMMANDS = [node_group]
