"""Entry point: ``python3 -m swarmnode.agent``. Reads the environment, runs one node until SIGTERM.

Owns process-level concerns only: logging setup, configuration errors -> exit status 2 with one
line on stderr, signal handling. Must not import ``chaos``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from . import eventlog
from .faketime import ensure_control_file
from .config import ConfigError, load


def main() -> int:
    ensure_control_file()  # first: libfaketime must see a spec from the first time call on
    try:
        cfg = load(os.environ)
    except ConfigError as exc:
        print(f"swarmnode.agent: configuration error: {exc}", file=sys.stderr)
        return 2
    eventlog.setup(cfg.node_id, cfg.log_level)
    logging.getLogger("swarmnode.node").info("starting %s (%s): %s", cfg.node_id, cfg.role, cfg.summary())
    if cfg.plant:
        logging.getLogger("swarmnode.node").warning(
            "PLANTED BUGS ON (test only, CHAOS_PLANT): %s", ",".join(sorted(cfg.plant)))
    try:
        os.makedirs(cfg.data_dir, exist_ok=True)
    except OSError as exc:
        print(f"swarmnode.agent: configuration error: CHAOS_DATA_DIR={cfg.data_dir!r}: {exc}",
              file=sys.stderr)
        return 2
    # debugging aid: cProfile dump at exit ("{node}" in the path becomes the node id)
    profile = os.environ.get("CHAOS_PROFILE_PATH", "").replace("{node}", cfg.node_id)
    if profile:
        import cProfile
        prof = cProfile.Profile()
        try:
            return prof.runcall(asyncio.run, _run(cfg))
        finally:
            prof.dump_stats(profile)
    return asyncio.run(_run(cfg))


async def _run(cfg) -> int:
    from .node import Node

    node = Node(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except OSError as exc:
        logging.getLogger("swarmnode.node").error("cannot start: %s", exc)
        await node.stop()
        return 3
    fatal = asyncio.ensure_future(node.fatal.wait())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({fatal, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for t in (fatal, stopped):
        t.cancel()
    if node.exit_code is not None:
        await node.stop()
        return node.exit_code
    try:
        await asyncio.wait_for(node.leave(), timeout=2.0)
    except Exception:  # noqa: BLE001 -- a failed goodbye must not keep the node from stopping
        pass
    await node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
