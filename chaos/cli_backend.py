"""The `--backend` and `--inventory` options shared by `chaos up`, `run`, `replay` and `doctor`.

Owns: the two click options and turning them into an `Inventory` (or None for the local backend).
Imports no Docker code, so `chaos run --help` stays fast. Must not import: docker.
"""

from __future__ import annotations

import click

from chaos.env.hosts import BACKENDS, Inventory
from chaos.errors import UsageError


def backend_options(f):
    """--backend and --inventory (shared by `up`, `run` and `doctor`)."""
    f = click.option("--inventory", type=click.Path(dir_okay=False), envvar="CHAOS_INVENTORY", default=None,
                     help="swarm backend: YAML file `hosts: [{name: h1, engine: local}, {name: h2, engine: "
                     "ssh://user@host}]`; the first host is this machine, a swarm manager (default: this "
                     "engine alone) [CHAOS_INVENTORY]")(f)
    return click.option("--backend", type=click.Choice(BACKENDS), default=None,
                        help="local: one engine, bridge network (default); swarm: an attachable overlay "
                        "network over the inventory's swarm hosts (README: running across several hosts)")(f)


def load_inventory(backend: str | None, path: str | None) -> Inventory | None:
    """The inventory for the swarm backend (None for local). An inventory without --backend swarm is
    a usage error: it would silently be ignored."""
    if backend != "swarm":
        if path is not None and backend == "local":   # None: the experiment file decides (`chaos run`)
            raise UsageError("--inventory is for --backend swarm", hint="drop --inventory, or add --backend swarm")
        return None
    return Inventory.from_file(path) if path else Inventory.single_local()
