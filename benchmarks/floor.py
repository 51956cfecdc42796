"""The floor under PureBridge: the same server stack relaying raw bytes.

    make bench BENCH_ARGS="--app benchmarks.floor:application"

uvicorn (under gunicorn, as PureBridge runs) and one aiohttp client session,
forwarding a chat completions request to the route the catalogue names and
its answer back byte for byte: no authentication, admission, parsing,
failover or usage records. What this costs is what the stack costs; what
PureBridge costs above it is PureBridge's own work. Only the chat completions
phases mean anything here (it does not speak /v1/responses).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purebridge.settings")

import django  # noqa: E402

django.setup()

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from gateway.catalogue import get_catalogue  # noqa: E402

_session: aiohttp.ClientSession | None = None


async def application(scope, receive, send) -> None:
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"status": "ok"}'})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = orjson.loads(body)
    route = (await get_catalogue()).models[request["model"]].routes[0]
    request["model"] = route.upstream_model
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    async with _session.post(
        route.provider.base_url + "/chat/completions",
        data=orjson.dumps(request),
        headers={"Authorization": f"Bearer {route.provider.api_key}"},
    ) as response:
        content_type = response.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for data in response.content.iter_any():
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
