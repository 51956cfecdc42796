"""An aiohttp application served on loopback from a thread of the test
process (or, with `_start`, from a script's own event loop): what the fake
upstream and the fake Stripe share."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Self

from aiohttp import web


class LoopbackServer:
    """A subclass sets `app`, `host` and `port` (0: any free one, known once started)."""

    app: web.Application
    host: str
    port: int
    thread_name = "loopback"
    runner_options: dict[str, Any] = {}
    site_options: dict[str, Any] = {}
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, **self.runner_options)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, **self.site_options)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start_in_thread(self) -> Self:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
