"""Entry point: `python3 -m swarmnode.toxiproxy -host 0.0.0.0 -port 8474 -seed 42`.

Owns: the real server's command-line flags (-host, -port, -config, -seed, -proxy-metrics,
-runtime-metrics, -version; `--flag` and `-flag=value` also accepted), JSON-line logs on stdout with
the level from LOG_LEVEL, uvloop when importable, and graceful shutdown on SIGINT/SIGTERM.
Must not import `chaos`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

from . import VERSION

_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4, "fatal": 5}


def log(level: str, message: str, **fields):
    if _LEVELS.get(level, 2) < _LEVELS.get(os.environ.get("LOG_LEVEL", "info").lower(), 2):
        return
    rec = {"level": level, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "message": message}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m swarmnode.toxiproxy", allow_abbrev=False,
                                description="Toxiproxy-compatible server (API of Toxiproxy %s)" % VERSION)
    p.add_argument("-host", "--host", default="localhost", help="API listen host (default localhost)")
    p.add_argument("-port", "--port", default=8474, type=int, help="API listen port (default 8474)")
    p.add_argument("-config", "--config", default="", help="JSON file in /populate format applied at start")
    p.add_argument("-seed", "--seed", default=None, type=int, help="seed for every random choice")
    p.add_argument("-proxy-metrics", "--proxy-metrics", action="store_true", help="enable proxy byte counters")
    p.add_argument("-runtime-metrics", "--runtime-metrics", action="store_true", help="enable /metrics (runtime)")
    p.add_argument("-no-batch", "--no-batch", action="store_true",
                   help="no POST /toxics/batch (404 like the real server; tests the clients' fallback)")
    p.add_argument("-version", "--version", action="store_true", help="print the version and exit")
    return p.parse_args(argv)


async def serve(args) -> None:
    from aiohttp import web

    from .api import make_app
    from .core import Registry
    from .gojson import DecodeError, decode_first

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(8), "big") >> 1
    loop = asyncio.get_running_loop()
    registry = Registry(seed, proxy_metrics=args.proxy_metrics, loop=loop, log=log)
    if args.config:
        try:
            with open(args.config, "rb") as fh:
                body = decode_first(fh.read())
            status, out = await registry.populate(body)
            if status >= 300:
                log("error", "config populate failed", config=args.config, response=out.decode())
            else:
                log("info", "populated proxies from config", config=args.config, proxies=len(registry.proxies))
        except (OSError, DecodeError) as exc:
            log("error", "cannot read config", config=args.config, error=str(exc))
    app = make_app(registry, metrics_enabled=args.proxy_metrics or args.runtime_metrics,
                   batch_enabled=not args.no_batch)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, reuse_address=True, backlog=1024)
    await site.start()
    log("info", "API HTTP server starting", host=args.host, port=args.port, version=VERSION, seed=seed)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
    log("info", "shutting down")
    registry.close_all()
    await runner.cleanup()


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.version:
        print(VERSION)
        return 0
    try:
        import uvloop  # optional, Debian's python3-uvloop
    except ImportError:
        uvloop = None
    if uvloop is not None:
        uvloop.install()
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        log("fatal", "cannot start API server", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
