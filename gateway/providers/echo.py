"""The built-in demo upstream: answers with the last user message, no network."""

from __future__ import annotations

import re
import secrets
import time

from gateway.providers.base import Adapter, ChunkStream, UpstreamCall, UpstreamReply
from gateway.tokens import estimate_prompt, estimate_text, message_text

_WORDS = re.compile(r"\S+\s*|\s+")


class EchoAdapter(Adapter):
    async def chat(self, call: UpstreamCall) -> UpstreamReply:
        messages = call.body.get("messages") or []
        text = (
            next(
                (
                    message_text(m.get("content"))
                    for m in reversed(messages)
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                "",
            )
            or "Hello from PureBridge."
        )
        completion_id = f"chatcmpl-echo{secrets.token_hex(12)}"
        created = int(time.time())
        prompt_tokens = estimate_prompt(messages)
        completion_tokens = estimate_text(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        request_id = f"req_echo{secrets.token_hex(12)}"
        reply = UpstreamReply(
            status=200, request_id=request_id, headers=[(b"x-request-id", request_id.encode())]
        )
        base = {"id": completion_id, "created": created, "model": call.upstream_model}
        if not call.stream:
            reply.body = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return reply
        chunk = {**base, "object": "chat.completion.chunk"}
        chunks = [
            {**chunk, "choices": [_choice({"role": "assistant", "content": ""})], "usage": None}
        ]
        chunks += [
            {**chunk, "choices": [_choice({"content": word})], "usage": None}
            for word in _WORDS.findall(text)
        ]
        chunks.append({**chunk, "choices": [_choice({}, finish="stop")], "usage": None})
        chunks.append({**chunk, "choices": [], "usage": usage})
        reply.stream = ListStream(chunks)
        return reply


def _choice(delta: dict, finish: str | None = None) -> dict:
    return {"index": 0, "delta": delta, "finish_reason": finish}


class ListStream(ChunkStream):
    def __init__(self, chunks: list[dict]) -> None:
        self._chunks = iter(chunks)

    async def next(self) -> dict | None:
        return next(self._chunks, None)

    def close(self) -> None:
        self._chunks = iter(())
