"""A fake OpenAI-compatible upstream: a real HTTP server on loopback.

Behaviour is chosen by the model name PureBridge sends, so each route in a test
can have its own: `fake` answers normally; options follow a `?` like a query
string, e.g. `fake?status=500`, `fake?tokens=20&interval_ms=50`.

    status=N          answer HTTP N with an OpenAI error body (retry_after=S adds Retry-After)
    hang=1            accept the request and never answer
    first_ms=N        wait N ms before the first byte (headers for JSON, first chunk for SSE)
    interval_ms=N     wait N ms between stream chunks
    tokens=N          content chunks in the answer (default 3)
    cut_after=N       stream: drop the connection after N content chunks
    error_after=N     stream: send an error event after N content chunks
    invalid_json=1    answer with bytes that are not JSON
    no_usage=1        never report usage
    cached=N, reasoning=N   report these in the usage details
    prompt=N          report this prompt_tokens (default 11); any JSON value or word
                      (`-5`, `1.5`, `null`, `many`) is reported as it is, as a lying
                      upstream would
    completion=N      report this completion_tokens instead of the chunks sent (as prompt)
    usage_pad=N       pad the usage object with N bytes (a large final event)
    leak=1            with status=N: the error message quotes the request URL and its
                      Authorization header, as a careless upstream might
    code=S            with status=N: the error `code` (default fake_error)
    error_first=1     stream: the first event is an error event (no chunk before it)
    tool=NAME         answer with a call of tool NAME (tool_args=JSON, default {"x": 1})
    pad=N             the answer's first text (a stream: its first content chunk) is N bytes longer
    chunked=1         a JSON answer is sent without Content-Length (chunked)
    gzip=1            a JSON answer is sent compressed (Content-Encoding: gzip)
    redirect=N&to=PORT   answer HTTP N (301, 302, 303, 307 or 308) with a Location of the
                      same path on 127.0.0.1:PORT, as an upstream that moved might
                      (the server on PORT, if a fake too, answers as if not asked to)

The same server speaks Anthropic's Messages API (`/v1/messages`,
tests/fake_anthropic.py), OpenAI's Responses API (`/v1/responses`,
tests/fake_responses.py), embeddings (`/v1/embeddings`, tests/fake_embeddings.py)
and legacy text completions (`/v1/completions`, tests/fake_completions.py) with
the same options.

`GET /_requests` lists what was received (headers and body); `GET /_stats`
counts requests to any other path (`hits`), streams started and completed, and
requests whose client went away before the answer was complete; `POST /_reset`
clears both. Run standalone with `python -m tests.fake_upstream --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from functools import partial

import orjson
from aiohttp import web

from tests import fake_anthropic, fake_completions, fake_embeddings, fake_responses
from tests.loopback import LoopbackServer
from tests.options import json_answer, reported, total
from tests.options import options as _options

_ids = itertools.count(1)
_REDIRECTS: dict[int, type[web.HTTPMove]] = {
    301: web.HTTPMovedPermanently,
    302: web.HTTPFound,
    303: web.HTTPSeeOther,
    307: web.HTTPTemporaryRedirect,
    308: web.HTTPPermanentRedirect,
}


def _tool_call(opts: dict, n: int) -> dict:
    return {
        "id": f"call_fake{n}",
        "type": "function",
        "function": {"name": opts["tool"], "arguments": opts.get("tool_args", '{"x": 1}')},
    }


def _usage(opts: dict, completion: int) -> dict:
    prompt = reported(opts, "prompt", 11)
    completed = reported(opts, "completion", completion)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completed,
        "total_tokens": total(prompt, completed),
        "prompt_tokens_details": {"cached_tokens": reported(opts, "cached", 0)},
        "completion_tokens_details": {"reasoning_tokens": reported(opts, "reasoning", 0)},
    }
    if "usage_pad" in opts:
        usage["padding"] = "x" * int(opts["usage_pad"])
    return usage


class FakeUpstream(LoopbackServer):
    thread_name = "fake-upstream"
    # Cancel a handler whose client left (a failover test's timeouts), and
    # queue the connections of thousands of streams at once.
    runner_options = {"handler_cancellation": True}
    site_options = {"backlog": 2048}

    def __init__(self, host: str = "127.0.0.1", port: int = 0, record: bool = True) -> None:
        self.host = host
        self.port = port
        self.record = record
        self.requests: list[dict] = []
        self.stats = {"hits": 0, "completed": 0, "client_gone": 0, "started": 0}
        self.app = web.Application(middlewares=[self._count])
        self.response_ids: set[str] = set()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/v1/messages", partial(fake_anthropic.messages, self))
        self.app.router.add_post("/v1/responses", partial(fake_responses.responses, self))
        self.app.router.add_post("/v1/embeddings", partial(fake_embeddings.embeddings, self))
        self.app.router.add_post("/v1/completions", partial(fake_completions.completions, self))
        self.app.router.add_get("/_requests", self.list_requests)
        self.app.router.add_get("/_stats", self.get_stats)
        self.app.router.add_post("/_reset", self.reset)

    @web.middleware
    async def _count(self, request: web.Request, handler) -> web.StreamResponse:
        if not request.path.startswith("/_"):
            self.stats["hits"] += 1
        return await handler(request)

    async def take(self, request: web.Request) -> tuple[dict, dict, int]:
        """A request's JSON body (recorded, unless --no-record), the options in
        its model name, and a number of its own for the ids of the answer."""
        body = await request.json()
        if self.record:
            self.requests.append(
                {"path": request.path, "headers": dict(request.headers), "body": body}
            )
        opts = _options(str(body.get("model", "")))
        if "redirect" in opts and int(opts["to"]) != self.port:  # the target answers
            location = f"http://127.0.0.1:{opts['to']}{request.path}"
            raise _REDIRECTS[int(opts["redirect"])](location)
        return body, opts, next(_ids)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, opts, n = await self.take(request)
        headers = {
            "x-request-id": f"req_fake_{n}",
            "openai-processing-ms": "7",
            "openai-version": "2020-10-01",
            "openai-organization": "operator-secret-org",
            "x-ratelimit-limit-requests": "999999",
        }
        if opts.get("hang"):
            await self._wait(3600)
        if "status" in opts:
            return self.error_answer(request, body, opts, headers)
        first_ms = int(opts.get("first_ms", 0))
        if body.get("stream"):
            return await self._stream(request, body, opts, headers, n, first_ms)
        if first_ms:
            await self._wait(first_ms / 1000)
        if opts.get("invalid_json"):
            return web.Response(
                body=b"<html>not json", content_type="application/json", headers=headers
            )
        tokens = int(opts.get("tokens", 3))
        content = " ".join(["tok"] * tokens) + "x" * int(opts.get("pad", 0))
        message: dict = {"role": "assistant", "content": content}
        if opts.get("tool"):
            message["tool_calls"] = [_tool_call(opts, n)]
        answer = {
            "id": f"chatcmpl-fake{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if opts.get("tool") else "stop",
                }
            ],
        }
        if not opts.get("no_usage"):
            answer["usage"] = _usage(opts, tokens)
        return await json_answer(request, answer, headers, opts)

    def error_answer(
        self, request: web.Request, body: dict, opts: dict, headers: dict
    ) -> web.Response:
        """`status=N`: an OpenAI error body with that status."""
        status = int(opts["status"])
        if "retry_after" in opts:
            headers["retry-after"] = opts["retry_after"]
        message = f"fake upstream error {status} for {body.get('model')}"
        if opts.get("leak"):
            auth = request.headers.get("Authorization", "")
            message += f" (POST {request.url} with {auth})"
        error = {
            "message": message,
            "type": "invalid_request_error" if status < 500 else "server_error",
            "param": None,
            "code": opts.get("code", "fake_error"),
        }
        return web.json_response({"error": error}, status=status, headers=headers)

    async def _wait(self, seconds: float) -> None:
        """Sleep before answering; a client that leaves meanwhile counts as gone."""
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.stats["client_gone"] += 1
            raise

    async def _stream(self, request, body, opts, headers, n, first_ms) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await response.prepare(request)
        self.stats["started"] += 1
        base = {
            "id": f"chatcmpl-fake{n}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
        }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        usage_field = {"usage": None} if include_usage else {}
        tokens = int(opts.get("tokens", 3))
        interval = int(opts.get("interval_ms", 0)) / 1000
        cut_after = int(opts["cut_after"]) if "cut_after" in opts else None
        error_after = int(opts["error_after"]) if "error_after" in opts else None

        async def send(obj: object) -> None:
            await response.write(
                b"data: " + (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + b"\n\n"
            )

        try:
            if first_ms:
                await asyncio.sleep(first_ms / 1000)
            if opts.get("error_first"):
                await send(
                    {
                        "error": {
                            "message": "fake failure before the first chunk",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
                )
                return response
            await send(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                    **usage_field,
                }
            )
            for i in range(tokens):
                if cut_after is not None and i == cut_after:
                    request.transport.close()
                    return response
                if error_after is not None and i == error_after:
                    await send(
                        {
                            "error": {
                                "message": "fake mid-stream failure",
                                "type": "server_error",
                                "param": None,
                                "code": None,
                            }
                        }
                    )
                    return response
                if opts.get("invalid_json") and i == 1:
                    await send(b"{not json")
                    return response
                if interval and i:
                    await asyncio.sleep(interval)
                text = f"tok{i} " + ("x" * int(opts.get("pad", 0)) if i == 0 else "")
                await send(
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": {"content": text}, "finish_reason": None}
                        ],
                        **usage_field,
                    }
                )
            if opts.get("tool"):
                call = _tool_call(opts, n)
                arguments = call["function"]["arguments"]
                call["function"]["arguments"] = ""
                half = len(arguments) // 2
                for part in ({**call, "index": 0}, arguments[:half], arguments[half:]):
                    delta = (
                        part
                        if isinstance(part, dict)
                        else {"index": 0, "function": {"arguments": part}}
                    )
                    await send(
                        {
                            **base,
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {"tool_calls": [delta]},
                                    "finish_reason": None,
                                }
                            ],
                            **usage_field,
                        }
                    )
            finish = "tool_calls" if opts.get("tool") else "stop"
            await send(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                    **usage_field,
                }
            )
            if include_usage and not opts.get("no_usage"):
                await send({**base, "choices": [], "usage": _usage(opts, tokens)})
            await response.write(b"data: [DONE]\n\n")
            self.stats["completed"] += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.stats["client_gone"] += 1
            raise
        return response

    async def list_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    async def reset(self, request: web.Request) -> web.Response:
        self.reset_state()
        return web.json_response({"ok": True})

    def reset_state(self) -> None:
        self.requests.clear()
        self.response_ids.clear()
        for name in self.stats:
            self.stats[name] = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--no-record", action="store_true", help="do not keep received requests")
    args = parser.parse_args()
    upstream = FakeUpstream(args.host, args.port, record=not args.no_record)

    async def serve() -> None:
        await upstream._start()
        print(f"fake upstream on {upstream.base_url}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
