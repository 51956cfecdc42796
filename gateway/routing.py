"""Choosing routes for a public model and failing over before the first byte."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

from gateway import journal
from gateway.accounting import Usage
from gateway.catalogue import ModelConfig, RouteConfig
from gateway.cooldown import cooldowns
from gateway.errors import GatewayError, InvalidRequest, ServiceUnavailable
from gateway.providers.base import RetryableError, UpstreamCall, UpstreamReply

log = logging.getLogger(__name__)


def route_order(routes: tuple[RouteConfig, ...]) -> list[RouteConfig]:
    """Priority first; within a priority a weighted random order; routes that
    are cooling down go last, so they are still tried when nothing else is left."""
    # Efraimidis–Spirakis: sorting by random() ** (1 / weight) draws a weighted
    # order without replacement in one pass.
    keyed = sorted(
        routes,
        key=lambda r: (cooldowns.cooling(r.id), r.priority, -(random.random() ** (1 / r.weight))),
    )
    return keyed


Attempt = Callable[[RouteConfig, UpstreamCall], Awaitable[UpstreamReply]]


def upstream_call(model: ModelConfig, body: dict, stream: bool, usage: Usage) -> UpstreamCall:
    """What every route of `model` is asked (each attempt sets its upstream model)."""
    return UpstreamCall(
        body=body,
        upstream_model="",
        public_model=model.public_id,
        stream=stream,
        client_request_id=usage.client_request_id,
        default_max_output_tokens=model.default_max_output_tokens,
    )


async def chat_attempt(route: RouteConfig, call: UpstreamCall) -> UpstreamReply:
    return await route.adapter.chat(call)


def routes_serving(model: ModelConfig, endpoint: str) -> ModelConfig:
    """`model` with only its routes to upstreams that serve `endpoint`
    ("completions", "embeddings": OpenAI-compatible ones and the demo's echo):
    a route to Anthropic is skipped, not tried and failed (which would cool it
    down for chat too). A model with none of them is a 400."""
    routes = tuple(r for r in model.routes if endpoint in r.adapter.serves)
    if len(routes) == len(model.routes):
        return model
    if not routes:
        raise InvalidRequest(
            f"The model `{model.public_id}` cannot be used with /v1/{endpoint}: "
            "none of its upstreams is OpenAI-compatible.",
            param="model",
        )
    return dataclasses.replace(model, routes=routes)


async def open_route(
    model: ModelConfig, call: UpstreamCall, usage: Usage, attempt: Attempt = chat_attempt
) -> tuple[UpstreamReply, dict | None]:
    """The first route that answers, and for streams its first chunk.

    A connect error, a timeout before the first byte, a 429 or a 5xx moves on
    to the next route (at most PUREBRIDGE_MAX_ATTEMPTS in all); nothing has
    reached the client yet, so that is safe. Never after the first byte.
    """
    if not model.routes:
        raise ServiceUnavailable(f"No upstream route is available for `{model.public_id}`.")
    routes = route_order(model.routes)[: settings.PUREBRIDGE_MAX_ATTEMPTS]
    usage.route = routes[0]
    # Traced before any upstream hears of it: a worker killed from here on
    # still leaves the request recorded (gateway/journal.py).
    traced = journal.note(usage)
    last: RetryableError | None = None
    for route in routes:
        usage.route = route
        call.upstream_model = route.upstream_model
        started = time.perf_counter()
        try:
            result = await _first_byte(await attempt(route, call))
        except RetryableError as exc:
            usage.attempt(route, exc, started)
            log.warning(
                "route %s/%s failed for %s: %s",
                route.provider.name,
                route.upstream_model,
                model.public_id,
                exc.message,
            )
            await cooldowns.report_failure(route.id, exc.retry_after)
            last = exc
            continue
        except GatewayError as exc:
            usage.attempt(route, exc, started)
            raise
        usage.attempt(route, None, started, status=result[0].status)
        await journal.confirmed(traced)
        return result
    assert last is not None
    raise last.error


async def _first_byte(reply: UpstreamReply) -> tuple[UpstreamReply, dict | None]:
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
