"""swarmnode.agent: the asyncio runtime that runs in each container.

Owns the TCP transport, the per-node drivers (manager: Raft + store + orchestrator + dispatcher;
worker: registration, heartbeats, supervised task processes), the HTTP API, configuration and the
event journal. Start it with ``python3 -m swarmnode.agent``.

Must not import ``chaos`` (the host side). Inside containers only the stdlib and aiohttp 3.8 exist.
This ``__init__`` imports nothing so that pure submodules (``frames``, ``config``) can be used by
the simulator without pulling in asyncio.
"""
