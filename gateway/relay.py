"""What the chat and Responses stream relays share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.conf import settings

from gateway.accounting import Usage
from gateway.errors import GatewayError
from gateway.providers.base import ChunkStream


async def drain(
    stream: ChunkStream,
    usage: Usage,
    item: dict | None,
    take_usage: Callable[[Usage, dict], None],
) -> None:
    """The client left mid-stream: read on to the upstream's own usage, within
    PUREBRIDGE_DRAIN_BYTES (the disconnect watcher cancels the task after
    PUREBRIDGE_DRAIN_SECONDS), and charge that. If a bound is hit first, the
    record keeps an estimate of what was delivered."""
    usage.client_gone()
    limit = stream.bytes_read + settings.PUREBRIDGE_DRAIN_BYTES
    with contextlib.suppress(GatewayError):
        while item is not None:
            # The event just read is taken whatever its size: it may be the
            # one that carries the final usage.
            take_usage(usage, item)
            if stream.bytes_read > limit:
                return
            item = await stream.next()
