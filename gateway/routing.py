"""Choosing a route for a public model and failing over before the first byte."""

from __future__ import annotations

import logging

from gateway.accounting import Usage
from gateway.catalogue import ModelConfig, RouteConfig
from gateway.errors import GatewayError, ServiceUnavailable
from gateway.providers.base import RetryableError, UpstreamCall, UpstreamReply

log = logging.getLogger(__name__)


async def open_route(
    model: ModelConfig, call: UpstreamCall, usage: Usage
) -> tuple[UpstreamReply, dict | None]:
    """The first route that answers, and for streams its first chunk.

    A connect error, a timeout before the first byte, a 429 or a 5xx moves on
    to the next route; nothing has reached the client yet, so that is safe.
    """
    if not model.routes:
        raise ServiceUnavailable(f"No upstream route is available for `{model.public_id}`.")
    last: RetryableError | None = None
    for route in model.routes:
        usage.route = route
        call.upstream_model = route.upstream_model
        try:
            return await _attempt(route, call)
        except RetryableError as exc:
            log.warning(
                "route %s/%s failed for %s: %s",
                route.provider.name,
                route.upstream_model,
                model.public_id,
                exc.message,
            )
            last = exc
    assert last is not None
    raise last.error


async def _attempt(route: RouteConfig, call: UpstreamCall) -> tuple[UpstreamReply, dict | None]:
    reply = await route.adapter.chat(call)
    if reply.stream is None:
        return reply, None
    try:
        # The first chunk is still "before the first byte" for the client.
        return reply, await reply.stream.next()
    except GatewayError as exc:
        reply.stream.close()
        raise RetryableError(exc) from None
    except BaseException:
        reply.stream.close()
        raise
