"""GET /v1/models, GET /v1/models/{id}, GET /health and GET /metrics."""

from __future__ import annotations

import asyncio
import hmac
import time

from django.conf import settings
from django.db import connection

from gateway.accounting import Usage
from gateway.auth import authenticate
from gateway.catalogue import ModelConfig, authorize, get_catalogue
from gateway.db import probe_db
from gateway.errors import InvalidRequest
from gateway.http import Request
from purebridge import metrics


def _model_object(model: ModelConfig) -> dict:
    return {
        "id": model.public_id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
    }


async def list_models(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    catalogue = await get_catalogue()
    data = [_model_object(m) for m in catalogue.visible_to(key.allowed_models)]
    await req.send_json(200, {"object": "list", "data": data})


async def retrieve_model(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address())
    model_id = req.path.removeprefix("/v1/models/")
    model = usage.model = authorize(await get_catalogue(), key, model_id)
    await req.send_json(200, _model_object(model))


class _HealthCache:
    """Probes may arrive many times a second: the checks run at most once a
    second, each within CHECK_SECONDS, in a task of their own. A probe waits
    for a check under way (at most that long), else answers at once with the
    last result: whatever is down, /health answers within a second."""

    checked_at = 0.0
    result: tuple[int, dict] = (503, {"status": "starting"})
    checking: asyncio.Task | None = None


CHECK_SECONDS = 0.8


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _database_ok() -> bool:
    try:
        await probe_db(_select_one, CHECK_SECONDS)
        return True
    except Exception:
        return False


async def _redis_state() -> str:
    if not settings.REDIS_URL:
        return "disabled"
    from purebridge.redis import async_client

    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await async_client().ping()
        from gateway.limiter_redis import mark_up

        mark_up()
        return "ok"
    except Exception:
        return "unreachable"


async def _check() -> None:
    database_ok, redis_state = await asyncio.gather(_database_ok(), _redis_state())
    healthy = database_ok and redis_state != "unreachable"
    # Only a lost database takes this worker out of a load balancer: without
    # Redis it still serves (see the README's Redis-down policy).
    _HealthCache.result = (
        200 if database_ok else 503,
        {
            "status": "ok" if healthy else "degraded",
            "database": "ok" if database_ok else "unreachable",
            "redis": redis_state,
            # With Redis down, budgets fail closed and rate limits are per process.
            "limits": "ok" if redis_state != "unreachable" else "degraded",
            "mode": "embedded" if settings.EMBEDDED else "production",
        },
    )
    _HealthCache.checked_at = time.monotonic()


async def health_state() -> tuple[int, dict]:
    """The last health check's status and body, checking again when it is a
    second old."""
    cache = _HealthCache
    loop = asyncio.get_running_loop()
    checking = cache.checking
    if checking is not None and checking.get_loop() is not loop:
        checking = None  # another event loop's (tests run several)
    if time.monotonic() - cache.checked_at >= 1.0 and (checking is None or checking.done()):
        checking = cache.checking = loop.create_task(_check())
    if checking is not None and not checking.done():
        await asyncio.wait([checking], timeout=CHECK_SECONDS + 0.1)
    return cache.result


async def health(req: Request, usage: Usage | None) -> None:
    status, body = await health_state()
    await req.send_json(status, body, [(b"cache-control", b"no-store")])


async def metrics_page(req: Request) -> None:
    """Every worker's metrics for a Prometheus scrape (only when
    PUREBRIDGE_METRICS is on: gateway/asgi.py), behind
    PUREBRIDGE_METRICS_TOKEN when one is set."""
    token = settings.PUREBRIDGE_METRICS_TOKEN
    if token and not hmac.compare_digest(
        req.headers.get(b"authorization", b""), b"Bearer " + token.encode()
    ):
        error = InvalidRequest(
            "Send the metrics token as 'Authorization: Bearer <PUREBRIDGE_METRICS_TOKEN>'.",
            status=401,
            code="invalid_metrics_token",
            headers={"www-authenticate": 'Bearer realm="metrics"'},
        )
        return await req.send_error(error)
    metrics.dependencies((await health_state())[1])
    body = await asyncio.to_thread(metrics.exposition)
    await req.start(
        200,
        [
            (b"content-type", metrics.CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ],
    )
    await req.send_body(body)
