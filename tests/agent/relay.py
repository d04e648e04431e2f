"""A minimal TCP relay for process-level partition tests (not a Toxiproxy replacement).

One listener per directed link; ``cut(link)`` turns the link into a black hole like Toxiproxy's
``timeout`` toxic with timeout 0: connections stay open, bytes in both directions are dropped (so a
stream that was mid-frame is desynchronised when the link heals). Runs its own asyncio loop in a
background thread so tests stay synchronous.
"""

from __future__ import annotations

import asyncio
import threading


class Relay:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cut_links: set[str] = set()
        self.servers: dict[str, asyncio.AbstractServer] = {}
        self.ports: dict[str, int] = {}
        self.writers: set = set()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def add_link(self, name: str, target_port: int) -> int:
        async def handle(reader, writer):
            try:
                ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
            except OSError:
                writer.close()
                return
            self.writers.update((writer, uw))

            async def pump(src, dst):
                try:
                    while True:
                        data = await src.read(65536)
                        if not data:
                            break
                        if name in self.cut_links:
                            continue  # black hole
                        dst.write(data)
                        await dst.drain()
                except (OSError, ConnectionError):
                    pass
                finally:
                    dst.close()

            await asyncio.gather(pump(reader, uw), pump(ur, writer))
            self.writers.discard(writer)
            self.writers.discard(uw)

        async def start():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            return server

        server = self._call(start())
        self.servers[name] = server
        self.ports[name] = server.sockets[0].getsockname()[1]
        return self.ports[name]

    def cut(self, *names: str) -> None:
        self.cut_links.update(names)

    def heal(self, *names: str) -> None:
        self.cut_links.difference_update(names)

    def close(self) -> None:
        async def stop():
            for s in self.servers.values():
                s.close()
            for w in list(self.writers):
                w.close()
        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
