"""Cluster commands: `chaos up`, `status`, `logs`, `down`, `cleanup`, `doctor`, `image build`.

Owns: the click commands (exported as `COMMANDS`, registered by chaos/cli.py) and their output.
Work is done by chaos.image and chaos.env.*; errors are raised as `chaos.errors` exceptions and
turned into one line + hint + exit code by chaos/cli.py only. Progress goes to stderr; `--json`
output goes to stdout alone.
Must not import: chaos.cli (it imports us).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import secrets
import time

import click

from chaos import image as image_mod
from chaos.env import cleanup as cleanup_mod
from chaos.env import doctor as doctor_mod
from chaos.env import labels as L
from chaos.env import ready as ready_mod
from chaos.env import runs as runs_mod
from chaos.env.cluster import require_cluster
from chaos.env.engine import connect
from chaos.env.progress import RichProgress
from chaos.env.spec import AGENT_OPTIONS, MAX_SPARES, MAX_WORKERS, ClusterSpec, agent_env_from_options
from chaos.cli_backend import backend_options, load_inventory
from chaos.env.up import TOXIPROXY_MODES, bring_up
from chaos.errors import EnvironmentError_, UsageError
from chaos.membership import config_view

_NAME_HELP = "cluster name (several clusters can run at once under different names)"
DEFAULT_SPARE_MANAGERS = 0   # `chaos up --spares N` reserves ids for `chaos node add` (each adds 2 x nodes
# proxies and an entry in every node's peer table; none by default, so a plain cluster is unchanged)
DEFAULT_SPARE_WORKERS = 0


def _name_option(f):
    return click.option("--name", default="default", show_default=True, metavar="NAME", help=_NAME_HELP,
                        envvar="CHAOS_CLUSTER")(f)


def _complete_node(ctx: click.Context, _param, incomplete: str):
    """Shell completion of NODE from the running cluster (silently nothing if Docker is away)."""
    try:
        from chaos.env.cluster import find_cluster

        cluster = find_cluster(connect(timeout_s=3), ctx.params.get("name") or "default")
        names = (cluster.nodes + cluster.toxiproxy_nodes) if cluster else []
    except Exception:  # completion must never print a traceback into the user's shell
        names = []
    return [n for n in names if n.startswith(incomplete)]


def _ensure_image(client, base_image: str | None, image: str | None, progress) -> str:
    if image:
        try:
            client.images.get(image)
        except Exception as exc:
            raise UsageError(f"image {image!r} is not on the engine",
                             hint="omit --image to build the node image") from exc
        return image
    return image_mod.build_node_image(client, base_image=base_image, progress=progress).tag


# -- up ---------------------------------------------------------------------------------------------

def _agent_options(f):
    for option, (env, help_text) in reversed(list(AGENT_OPTIONS.items())):
        f = click.option(f"--{option.replace('_', '-')}", option, type=click.IntRange(min=1), default=None,
                         help=f"{help_text} [{env}]")(f)
    return f


@click.command("up")
@_name_option
@click.option("--managers", default=3, show_default=True, type=click.IntRange(1, 9),
              help="number of Raft managers (odd)")
@click.option("--workers", default=5, show_default=True, type=click.IntRange(0, MAX_WORKERS),
              help="number of workers")
@click.option("--seed", type=int, default=None, help="cluster seed (default: random, printed)")
@click.option("--spares", "spare_managers", type=click.IntRange(0, MAX_SPARES), default=None,
              help=f"spare manager ids m<N+1>.. reserved for `chaos node add --role manager` (their link "
                   f"proxies are made now) [default: {DEFAULT_SPARE_MANAGERS} on the local backend, 0 on swarm]")
@click.option("--spare-workers", type=click.IntRange(0, MAX_SPARES), default=None,
              help=f"spare worker ids w<N+1>.. for `chaos node add --role worker` "
                   f"[default: {DEFAULT_SPARE_WORKERS} on the local backend, 0 on swarm]")
@_agent_options
@click.option("--agent-env", multiple=True, metavar="KEY=VALUE",
              help="any other CHAOS_* agent setting (repeatable), e.g. CHAOS_FSYNC=0")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="seconds to wait for the cluster to become ready")
@click.option("--base-image", envvar="CHAOS_BASE_IMAGE", default=None,
              help="local base image with python3 + aiohttp [CHAOS_BASE_IMAGE]")
@click.option("--image", default=None, help="use this node image as is (skip the build check)")
@click.option("--toxiproxy", "toxiproxy_mode", type=click.Choice(TOXIPROXY_MODES), default="auto",
              show_default=True, help="auto: official image if on the engine, else the compatible "
              "server; official: local or pulled, else fail; compatible: always ours")
@click.option("--toxiproxy-shards", type=click.IntRange(1, 64), default=None,
              help="Toxiproxy servers to spread the link proxies over (default: one per 5,000 links, "
              "as the engine caps a container at 20,000 open files; 3 + 100 nodes get 3)")
@backend_options
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout")
def up_cmd(name, managers, workers, seed, spare_managers, spare_workers, agent_env, timeout_s, base_image, image,
           toxiproxy_mode, as_json, toxiproxy_shards, backend, inventory, **agent):
    """Build or reuse the images, start a cluster and wait until it is ready.

    Ready = every manager agrees on one leader, every worker is registered READY with the leader,
    and every node's gossip table shows all nodes alive. Ctrl-C or SIGTERM tears down what was
    created; a cluster left by a killed `chaos up` is removed by the next `up` of that name or by
    `chaos cleanup`.

    \b
    Example:
      chaos up --managers 3 --workers 5 --seed 42
      chaos up --name b --workers 20 --election-timeout-min-ms 500 --election-timeout-max-ms 1000
      chaos up --backend swarm --inventory hosts.yaml --workers 50
    """
    backend = backend or "local"
    inv = load_inventory(backend, inventory)
    if seed is None:
        seed = secrets.randbelow(2**31)
    local = backend == "local"
    spec = ClusterSpec(name=name, managers=managers, workers=workers, seed=seed,
                       agent_env=agent_env_from_options(agent, agent_env), toxiproxy_shards=toxiproxy_shards,
                       spare_managers=(DEFAULT_SPARE_MANAGERS if local else 0) if spare_managers is None else spare_managers,
                       spare_workers=(DEFAULT_SPARE_WORKERS if local else 0) if spare_workers is None else spare_workers)
    progress = RichProgress(quiet=as_json)
    click.echo(f"seed: {seed}", err=True)
    try:
        client = connect()
        node_image = _ensure_image(client, base_image, image, progress)
        result = bring_up(client, spec, node_image, timeout_s, progress, toxiproxy_mode, detach=True,
                          backend=backend, inventory=inv)
    finally:
        progress.close()
    cluster = result.cluster
    summary = {
        "cluster": name, "run_id": cluster.run_id, "seed": seed, "image": node_image,
        "toxiproxy": {"url": cluster.toxiproxy_url(), "image": result.toxiproxy.image,
                      "official": result.toxiproxy.official, "proxies": result.proxies,
                      "servers": {n: cluster.toxiproxy_url(n) for n in cluster.toxiproxy_nodes}},
        "ready_s": round(result.seconds_to_ready, 3), "up_s": round(result.seconds_total, 3),
        "backend": cluster.backend, "spares": spec.spare_ids,
        "nodes": {n: {"kind": cluster.handles[n].kind, "api": cluster.api_url(n), "client": cluster.client_url(n),
                      "host": cluster.host_of(n)} for n in cluster.nodes},
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return 0
    click.echo(f"cluster {name!r} is ready (run {cluster.run_id}, seed {seed}) in {result.seconds_total:.1f} s "
               f"({result.seconds_to_ready:.1f} s waiting for ready)")
    click.echo(f"toxiproxy: {summary['toxiproxy']['url']}  ({result.proxies} proxies, {result.toxiproxy.image})")
    for n, info in summary["nodes"].items():
        click.echo(f"  {n:<5} {info['kind']:<8} api {info['api']}  client {info['client']}"
                   + (f"  host {info['host']}" if info["host"] else ""))
    if spec.spare_ids:
        click.echo(f"spare ids (link proxies made, no container): {', '.join(spec.spare_ids)} -- "
                   f"`chaos node add --role manager --name {name}`")
    click.echo(f"next: `chaos status --name {name}`, `chaos logs m1 --name {name}`, `chaos down --name {name}`")
    return 0


# -- status -----------------------------------------------------------------------------------------

def _active_toxics(cluster) -> tuple[int, list[dict]]:
    proxies = cluster.toxiproxy_api(timeout_s=10).proxies()
    active = []
    for pname, p in sorted(proxies.items()):
        toxics = p.get("toxics") or []
        if toxics or not p.get("enabled", True):
            active.append({"proxy": pname, "enabled": p.get("enabled", True),
                           "toxics": [t.get("name") for t in toxics]})
    return len(proxies), active


def plural(n: int, noun: str) -> str:
    """`1 network`, `2 networks`, `0 volumes`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def removed_counts(removed) -> str:
    return (f"{plural(len(removed.containers), 'container')}, {plural(len(removed.networks), 'network')}, "
            f"{plural(len(removed.volumes), 'volume')}")


def cell(value) -> str:
    """A table cell: `-` for an absent or null field (a worker has no Raft term or commit index)."""
    return "-" if value is None else str(value)


def status_row(node: str, kind: str, container: str, st: dict | None, nodes: list[str],
               raft: str = "-") -> tuple[str, ...]:
    """One row of `chaos status`: node, kind, container, role, raft (voter / learner / removed /
    joining in the configuration, chaos.membership.config_view), term, leader, commit, members alive."""
    s = st or {}
    return (node, kind, container, cell(s.get("role", "unreachable" if not st else None)), raft,
            cell(s.get("term")), cell(s.get("leader") or None), cell(s.get("commit_index")),
            _member_counts(st, nodes))


def _member_counts(st: dict | None, nodes: list[str]) -> str:
    if not st or not isinstance(st.get("members"), dict):
        return "-"
    alive = sum(1 for n in nodes if (st["members"].get(n) or {}).get("state") == "alive")
    return f"{alive}/{len(nodes)}"


def _unfinished(client, name: str, run_id: str) -> str | None:
    """None when `up` of this run completed, else why the cluster is not a finished one."""
    for run in runs_mod.list_runs(client, cluster=name):
        if run.run_id != run_id or run.complete:
            continue
        if runs_mod.verdict(run) == runs_mod.STARTING:
            return f"`chaos up` of run {run_id} is still running ({run.owner})"
        return (f"`chaos up` of run {run_id} never completed and its process is gone; "
                f"`chaos cleanup` removes it")
    return None


@click.command("status")
@_name_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output on stdout")
def status_cmd(name, as_json):
    """Show nodes, roles, terms, the leader, gossip views, active faults and proxies.

    \b
    Example:
      chaos status --name default
      chaos status --json | jq '.nodes.m1.status.role'
    """
    client = connect()
    cluster = require_cluster(client, name)
    cluster.refresh()
    statuses = cluster.statuses()
    try:
        n_proxies, active = _active_toxics(cluster)
        toxi_error = None
    except EnvironmentError_ as exc:
        n_proxies, active, toxi_error = None, [], exc.message
    failures = ready_mod.evaluate(statuses, cluster.managers, cluster.workers)
    unfinished = _unfinished(client, name, cluster.run_id)
    conf = config_view(statuses)
    doc = {
        "cluster": name, "run_id": cluster.run_id, "ready": not failures and unfinished is None,
        "up_complete": unfinished is None, "unfinished": unfinished,
        "not_ready": [{"condition": f.condition, "nodes": list(f.nodes), "detail": f.detail} for f in failures],
        "toxiproxy": {"image": cluster.toxiproxy_image(), "state": cluster.handles[L.TOXIPROXY_NODE].container.status
                      if L.TOXIPROXY_NODE in cluster.handles else "missing",
                      "servers": {n: cluster.handles[n].container.status for n in cluster.toxiproxy_nodes},
                      "proxies": n_proxies, "active": active, "error": toxi_error},
        "backend": cluster.backend,
        "config": conf,
        "spares": cluster.free_spares(),
        "nodes": {n: {"kind": cluster.handles[n].kind, "container": cluster.handles[n].container.status,
                      "host": cluster.host_of(n), "raft": conf["state"].get(n, "-"),
                      "status": statuses.get(n)} for n in cluster.nodes},
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cluster {name} (run {cluster.run_id}, {cluster.backend} backend)", title_justify="left")
    swarm = cluster.backend == "swarm"
    for col in ("node", "kind", "container", "role", "raft", "term", "leader", "commit", "members alive") + (
            ("host",) if swarm else ()):
        table.add_column(col)
    for n in cluster.nodes:
        table.add_row(*status_row(n, cluster.handles[n].kind, cluster.handles[n].container.status,
                                  statuses.get(n), cluster.nodes, conf["state"].get(n, "-")),
                      *((cluster.host_of(n) or "?",) if swarm else ()))
    console = Console(highlight=False)
    console.print(table)
    if conf["source"]:
        console.print(f"configuration (index {conf['index']}, "
                      f"{'committed' if conf['committed'] else 'not committed yet'}, as {conf['source']} sees it): "
                      f"voters {','.join(conf['voters']) or '-'}; learners {','.join(conf['learners']) or '-'}")
    if doc["spares"]:
        console.print(f"spare ids free for `chaos node add`: {', '.join(doc['spares'])}")
    servers = doc["toxiproxy"]["servers"]
    where = (f"{len(servers)} servers ({', '.join(f'{k} {v}' for k, v in servers.items())})"
             if len(servers) > 1 else doc["toxiproxy"]["state"])
    console.print(f"toxiproxy: {doc['toxiproxy']['image']} ({where}), "
                  f"{n_proxies if n_proxies is not None else '?'} proxies, {len(active)} with active faults"
                  + (f" — {toxi_error}" if toxi_error else ""))
    for a in active[:20]:
        console.print(f"  {a['proxy']}: " + ("disabled " if not a["enabled"] else "") + ", ".join(a["toxics"]))
    if len(active) > 20:
        console.print(f"  ... and {len(active) - 20} more (see --json)")
    if unfinished:
        console.print(f"unfinished: {unfinished}")
    console.print("ready" if not failures and unfinished is None else
                  "not ready" + (": " + " | ".join(str(f) for f in failures) if failures else ""))
    return 0


# -- logs, down, cleanup ----------------------------------------------------------------------------

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_since(text: str, now: float) -> float:
    """`--since` -> epoch seconds. A duration back from `now` (`30s`, `5m`, `1h30m`, `2d`), an
    ISO-8601 timestamp (`2026-11-30T01:02:03Z`, `...+01:00`; without a zone: local time, as
    `docker logs`), or epoch seconds. ValueError with the accepted forms otherwise."""
    raw = text.strip()
    m = _DURATION.match(raw)
    if raw and m and any(m.groups()):
        d, h, mi, sec = (float(g) if g else 0.0 for g in m.groups())
        return now - (((d * 24 + h) * 60 + mi) * 60 + sec)
    try:
        epoch = float(raw)
        if math.isfinite(epoch) and epoch > 0:
            return epoch
        raw = ""   # nan, inf, negative: fall through to the error
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30s, 5m, 1h30m, 2d), an ISO-8601 time "
                         "(2026-11-30T01:02:03Z) nor epoch seconds") from None


class _Since(click.ParamType):
    name = "DURATION|TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return parse_since(str(value), time.time())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("logs")
@click.argument("node", shell_complete=_complete_node)
@_name_option
@click.option("--tail", type=click.IntRange(min=1), default=None, help="only the last N lines")
@click.option("--since", type=_Since(), default=None,
              help="only lines written since then: a duration back from now (30s, 5m, 1h30m) or a "
              "time (2026-11-30T01:02:03Z, epoch seconds)")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines until the node stops (Ctrl-C ends)")
def logs_cmd(node, name, tail, since, follow):
    """Print the log of NODE (m1, w3, toxiproxy, ...): what the agent wrote to stderr.

    Agents log their start-up configuration, role and term changes, elections, leader changes,
    peer links, gossip member changes, snapshots, tasks and errors, one timestamped line each, at
    CHAOS_LOG_LEVEL (INFO; `chaos up --agent-env CHAOS_LOG_LEVEL=DEBUG` adds every log entry).

    \b
    Example:
      chaos logs m1 --tail 50
      chaos logs m1 --since 5m -f
    """
    client = connect()
    cluster = require_cluster(client, name)
    if not follow:
        click.echo(cluster.logs(node, tail, since), nl=False)
        return 0
    for text in cluster.follow_logs(node, tail, since):
        click.echo(text, nl=False)
    return 0


@click.command("down")
@_name_option
def down_cmd(name):
    """Remove a cluster: its containers, network and volumes (found by label).

    \b
    Example:
      chaos down --name default
    """
    client = connect()
    removed = cleanup_mod.remove_objects(client, cluster=name)
    cleanup_mod.raise_if_failed(removed, f"down {name}")
    if removed.total == 0:
        click.echo(f"no cluster named {name!r}: nothing to remove")
    else:
        click.echo(f"removed cluster {name!r}: {removed_counts(removed)}")
    return 0


@click.command("cleanup")
@click.option("--name", default=None, metavar="NAME",
              help="remove this cluster, whatever its state (default: every cluster whose owner is gone)")
@click.option("--all", "all_", is_flag=True, help="every cluster and leftover of this tool")
@click.option("--images", is_flag=True, help="also remove chaos-node and chaos-base images")
def cleanup_cmd(name, all_, images):
    """Remove what this tool created, including leftovers of crashed or killed runs.

    Only objects labelled chaos.tool=chaos are touched (containers, networks, volumes; images with
    --images). Without options: every cluster whose owning process is gone -- a killed `chaos up`
    or `chaos demo` -- and nothing else; a cluster `chaos up` finished, or one a live process is
    still bringing up or using, is left and named. --name: that cluster. --all: everything.

    \b
    Example:
      chaos cleanup
      chaos cleanup --name b
      chaos cleanup --all --images
    """
    client = connect()
    failed = []
    if all_ or name:
        removed = cleanup_mod.remove_objects(client, cluster=None if all_ else name)
        what = "everything of chaos" if all_ else f"cluster {name!r}"
        click.echo(f"cleanup of {what}: {removed_counts(removed)} removed")
        failed.append(removed)
    else:
        found = [(run, runs_mod.verdict(run)) for run in runs_mod.list_runs(client)]
        for run, what in found:
            if what != runs_mod.STALE:
                click.echo(f"left {runs_mod.describe(run, what)}")
                continue
            removed = cleanup_mod.remove_objects(client, cluster=run.cluster, run_id=run.run_id)
            click.echo(f"removed {runs_mod.describe(run, what)}: {removed_counts(removed)}")
            failed.append(removed)
        if not any(what == runs_mod.STALE for _, what in found):
            click.echo("nothing to clean up: no cluster whose owner is gone")
    if images:
        refs = image_mod.remove_tool_images(client, include_base=True)
        click.echo(f"images removed: {', '.join(refs) or 'none'}")
    for removed in failed:
        cleanup_mod.raise_if_failed(removed, "cleanup")
    return 0


# -- doctor, image ----------------------------------------------------------------------------------

@click.command("doctor")
@click.option("--base-image", envvar="CHAOS_BASE_IMAGE", default=None, help="check this base image")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output on stdout")
@backend_options
def doctor_cmd(base_image, as_json, backend, inventory):
    """Check the Docker engine, the image build path, the Toxiproxy choice and free ports.

    Exits 0 when a cluster can be brought up, 4 when something must be fixed first.

    \b
    Example:
      chaos doctor
      DOCKER_HOST=tcp://build-box:2375 chaos doctor --json
      chaos doctor --backend swarm --inventory hosts.yaml
    """
    inv = load_inventory(backend or "local", inventory)
    checks = doctor_mod.run_checks(base_image) if inv is None else doctor_mod.run_swarm_checks(inv)
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        marks = {doctor_mod.OK: click.style("ok  ", fg="green"), doctor_mod.WARN: click.style("warn", fg="yellow"),
                 doctor_mod.FAIL: click.style("FAIL", fg="red")}
        for c in checks:
            click.echo(f"[{marks[c.status]}] {c.name:<18} {c.detail}")
            if c.fix:
                click.echo(f"       {'':<18} fix: {c.fix}")
    bad = doctor_mod.failed(checks)
    if bad:
        raise EnvironmentError_(f"doctor found {len(bad)} problem(s): {', '.join(c.name for c in bad)}",
                                hint=bad[0].fix or None)
    return 0


@click.group("image")
def image_group():
    """Node image commands.

    \b
    Example:
      chaos image build --force
    """


@image_group.command("build")
@click.option("--base-image", envvar="CHAOS_BASE_IMAGE", default=None,
              help="local base image with python3 + aiohttp [CHAOS_BASE_IMAGE]")
@click.option("--force", is_flag=True, help="rebuild even if an image with this content hash exists")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout")
def image_build_cmd(base_image, force, as_json):
    """Build the node image chaos-node:<content hash> (skipped when nothing changed).

    Base: --base-image, else chaos-base:bookworm-<hash> if present, else python:3.11-slim (local or
    pulled; aiohttp wheels downloaded on the host), else a Debian rootfs made with mmdebstrap and
    imported. No network access inside the build.

    \b
    Example:
      chaos image build
      chaos image build --base-image my/python-aiohttp:3.11 --force
    """
    progress = RichProgress(quiet=as_json)
    try:
        result = image_mod.build_node_image(connect(timeout_s=600), base_image=base_image, force=force,
                                            progress=progress)
    finally:
        progress.close()
    doc = {"tag": result.tag, "id": result.image_id, "base": result.base, "base_path": result.base_path,
           "built": result.built, "seconds": round(result.seconds, 2)}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        verb = "built" if result.built else "up to date:"
        click.echo(f"{verb} {result.tag} (base {result.base}, path {result.base_path}) in {result.seconds:.1f} s")
    return 0


COMMANDS = [up_cmd, status_cmd, logs_cmd, down_cmd, cleanup_cmd, doctor_cmd, image_group]
