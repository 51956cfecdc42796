"""The ASGI entry of the /v1 surface and /health, in front of Django.

`/v1/...`, `/health` and `/metrics` are served here; every other path goes to Django (the
console and the admin). Lifespan events start and stop what a worker process
owns: the upstream connection pool, the usage writer, the invalidation listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway import invalidation, journal
from gateway.accounting import Usage
from gateway.chat import chat_completions
from gateway.completions import create_completion
from gateway.db import run_db
from gateway.embeddings import create_embeddings
from gateway.errors import GatewayError, MethodNotAllowed, UnknownUrl, UsageBacklog
from gateway.http import Receive, Request, Send
from gateway.messages.endpoint import count_tokens, create_message
from gateway.messages.errors import anthropic_error
from gateway.own_key import own_key
from gateway.refusals import refusals
from gateway.responses.endpoint import create_response
from gateway.upstream import close_session
from gateway.views import health, list_models, metrics_page, retrieve_model
from usage.recorder import get_recorder

log = logging.getLogger(__name__)

Handler = Callable[[Request, Usage], Awaitable[None]]

ROUTES: dict[str, tuple[str, dict[str, Handler]]] = {
    "/v1/chat/completions": ("chat.completions", {"POST": chat_completions}),
    "/v1/responses": ("responses", {"POST": create_response}),
    "/v1/embeddings": ("embeddings", {"POST": create_embeddings}),
    "/v1/completions": ("completions", {"POST": create_completion}),
    "/v1/models": ("models", {"GET": list_models}),
    "/v1/key": ("key", {"GET": own_key}),
    "/v1/messages": ("messages", {"POST": create_message}),
    "/v1/messages/count_tokens": ("messages.count_tokens", {"POST": count_tokens}),
}
# Routes of another API than OpenAI's answer errors in that API's shape.
ERROR_SHAPES = {"messages": anthropic_error, "messages.count_tokens": anthropic_error}


def _resolve(path: str) -> tuple[str, dict[str, Handler]] | None:
    route = ROUTES.get(path)
    if route is None and path.startswith("/v1/models/"):
        return "models", {"GET": retrieve_model}
    return route


class GatewayApp:
    def __init__(self, django_app) -> None:
        self.django_app = django_app
        self._stop = asyncio.Event()
        self._listener: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith("/v1/") or path == "/v1":
                return await self._api(scope, receive, send)
            if path == "/health":
                return await health(Request(scope, receive, send), None)
            if path == "/metrics" and settings.PUREBRIDGE_METRICS:  # else Django's 404
                return await metrics_page(Request(scope, receive, send))
        elif kind == "lifespan":
            return await self._lifespan(receive, send)
        await self.django_app(scope, receive, send)

    async def _api(self, scope: dict, receive: Receive, send: Send) -> None:
        req = Request(scope, receive, send)
        if get_recorder().full():
            # Records wait for the database as long as it is down, up to a
            # bound: past it new requests are refused (and not recorded),
            # rather than the record of one already served lost.
            return await req.send_error(UsageBacklog())
        route = _resolve(req.path)
        if route is not None:
            req.error_shape = ERROR_SHAPES.get(route[0])
        usage = Usage(req, route[0] if route else "unknown")
        watcher: asyncio.Task | None = None
        try:
            if route is None:
                raise UnknownUrl(f"Unknown request URL: {req.method} {req.path}.")
            handler = route[1].get(req.method)
            if handler is None:
                allowed = ", ".join(route[1])
                raise MethodNotAllowed(
                    f"{req.method} is not allowed on {req.path}; use {allowed}.",
                    headers={"allow": allowed},
                )
            if req.method == "POST":
                await req.read_body()
            watcher = asyncio.create_task(_watch_disconnect(req, asyncio.current_task()))
            await handler(req, usage)
        except GatewayError as error:
            usage.fail(error)
            if not req.response_started:
                if usage.counted:
                    await refusals.pause()
                await req.send_error(error)
        except asyncio.CancelledError:
            if not req.disconnected:
                raise
            # The client left: this task was cancelled by the watcher, which
            # closed the upstream call on its way out. Record and finish.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            usage.client_gone()
        except Exception:
            log.exception("unhandled error in %s %s (%s)", req.method, req.path, req.request_id)
            internal = GatewayError("PureBridge failed to handle this request.")
            usage.fail(internal)
            if not req.response_started:
                await req.send_error(internal)
        finally:
            if watcher is not None:
                watcher.cancel()
            usage.settle()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if settings.REDIS_URL:
                    self._listener = asyncio.create_task(invalidation.listen(self._stop))
                    self._heartbeat = asyncio.create_task(journal.keep_alive(self._stop))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _shutdown(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await close_session()
        if settings.REDIS_URL:
            from gateway.limiter_redis import limiter

            await limiter.leases.release_all()
        try:
            await run_db(refusals.write_all)
        except GatewayError:  # the database is down: the counts of these minutes are lost
            log.warning("could not write this worker's refusal counts at shutdown")
        await sync_to_async(get_recorder().flush, thread_sensitive=False)()
        if self._heartbeat is not None:
            await self._heartbeat
            # Whatever was not written in time is the journal's recovery's now.
            await sync_to_async(journal.retire, thread_sensitive=False)()
        if settings.REDIS_URL:
            from purebridge.redis import close_loop_clients

            await close_loop_clients()


async def _watch_disconnect(req: Request, task: asyncio.Task | None) -> None:
    """Cancel the request's task the moment its client disconnects (unless a
    stream relay has asked to drain the upstream instead)."""
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            req.disconnected = True
            if task is None:
                return
            if req.draining:
                # The relay reads on for the upstream's usage; this bounds it.
                asyncio.get_running_loop().call_later(
                    settings.PUREBRIDGE_DRAIN_SECONDS, task.cancel
                )
            elif not req.admitting:  # admission stops the request itself
                task.cancel()
            return
