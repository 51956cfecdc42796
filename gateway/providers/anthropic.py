"""Anthropic's Messages API, spoken to clients as OpenAI chat completions.

Requests are translated from the chat shape (system prompts, multi-turn,
images, tools and tool results) and answers back, streaming included. Usage
counts cache reads as cached prompt tokens and cache writes separately.
/v1/messages requests are passed through as they came (`messages`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from gateway.errors import GatewayError, InvalidRequest, RequestTooLarge, UpstreamError
from gateway.providers.base import RetryableError, UpstreamCall, UpstreamReply
from gateway.providers.http import (
    EventStream,
    HTTPAdapter,
    UpstreamEvents,
    decode_event,
    error_detail,
)
from gateway.providers.openai import map_status
from gateway.reported import count

ANTHROPIC_VERSION = "2023-06-01"
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
# Anthropic's 529 "overloaded" is a transient upstream failure like a 503.
OVERLOADED = 529


class AnthropicAdapter(HTTPAdapter):
    passthrough = frozenset((b"request-id",))
    request_id_header = "request-id"

    def headers(self, call: UpstreamCall) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "x-api-key": self.provider.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
        }

    async def chat(self, call: UpstreamCall) -> UpstreamReply:
        payload = to_messages_request(
            call.body, call.upstream_model, call.stream, call.default_max_output_tokens
        )
        reply, response, started = await self.open("/messages", payload, self.headers(call), call)
        if call.stream:
            reply.stream = AnthropicChunkStream(self.events(response, started))
            return reply
        message = await self.read_json(response, started)
        if message.get("type") != "message" or not isinstance(message.get("content"), list):
            raise RetryableError(UpstreamError("The upstream answer is not an Anthropic message."))
        reply.body = to_chat_completion(message)
        return reply

    async def messages(self, call: UpstreamCall) -> UpstreamReply:
        """/v1/messages passed through as the client sent it, but for the model
        (and anthropic-version and anthropic-beta, the client's if it sent them)."""
        body = {**call.body, "model": call.upstream_model}
        headers = {**self.headers(call), **dict(call.headers)}
        reply, response, started = await self.open("/messages", body, headers, call)
        if call.stream:
            reply.stream = AnthropicEvents(
                self.events(response, started), lambda text: self.redact(text, call)
            )
            return reply
        message = await self.read_json(response, started)
        if message.get("type") != "message" or not isinstance(message.get("content"), list):
            raise RetryableError(UpstreamError("The upstream answer is not an Anthropic message."))
        reply.body = message
        return reply

    def error(
        self, status: int, raw: bytes, retry_after: float | None, call: UpstreamCall
    ) -> GatewayError:
        detail = error_detail(raw)
        message = self.redact(str(detail.get("message") or f"HTTP {status}"), call)
        kind = detail.get("type") if isinstance(detail.get("type"), str) else None
        if status == 413:
            return RequestTooLarge(message)
        if status == OVERLOADED:
            status = 503
        return map_status(status, message, retry_after, type=kind, param=None, code=kind)


def to_messages_request(body: dict, model: str, stream: bool, default_max_tokens: int) -> dict:
    """A chat completions request in the Messages API's words. Anthropic
    requires max_tokens: without a cap in the request it gets the model's
    default, the one admission reserved for (a larger one could overshoot a
    budget)."""
    """An OpenAI chat completions body as an Anthropic Messages request."""
    if body.get("n", 1) not in (1, None):
        raise InvalidRequest("This model supports only n=1.", param="n")
    system: list[str] = []
    messages: list[dict] = []
    for i, message in enumerate(body["messages"]):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content"), f"messages[{i}].content"))
        elif role == "user":
            _append(messages, "user", _user_blocks(message.get("content"), i))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message, i))
        elif role == "tool":
            _append(messages, "user", [_tool_result(message, i)])
        else:
            raise InvalidRequest(f"Unsupported message role {role!r}.", param=f"messages[{i}].role")
    payload: dict = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens,
        "stream": stream,
    }
    if system:
        payload["system"] = "\n\n".join(system)
    if body.get("temperature") is not None:
        # OpenAI's range is 0–2, Anthropic's 0–1.
        payload["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        payload["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        payload["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and choice.get("type") != "none":
            choice["disable_parallel_tool_use"] = True
        payload["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise InvalidRequest(
            "response_format is not supported by this model's provider.", param="response_format"
        )
    if isinstance(body.get("user"), str):
        payload["metadata"] = {"user_id": body["user"]}
    return payload


def _append(messages: list[dict], role: str, blocks: list[dict]) -> None:
    # Anthropic wants user and assistant turns to alternate: merge neighbours.
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _text(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise InvalidRequest("Message content must be a string or a list of parts.", param=where)


def _user_blocks(content: object, i: int) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(
            "Message content must be a string or a list of parts.", param=f"messages[{i}].content"
        )
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            block = {"type": "text", "text": part.get("text", "")}
            if part.get("cache_control"):  # opencode marks prompt-cache breakpoints
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        elif kind == "image_url":
            url = part.get("image_url", {})
            blocks.append(_image(url.get("url", "") if isinstance(url, dict) else str(url), i))
        else:
            raise InvalidRequest(
                f"Content parts of type {kind!r} are not supported by this model's provider.",
                param=f"messages[{i}].content",
            )
    return blocks


def _image(url: str, i: int) -> dict:
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise InvalidRequest(
                "Inline images must be base64 data URLs.", param=f"messages[{i}].content"
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("An image must be an http(s) or data URL.", param=f"messages[{i}].content")


def _assistant_blocks(message: dict, i: int) -> list[dict]:
    blocks: list[dict] = []
    content = message.get("content")
    if content:
        text = _text(content, f"messages[{i}].content")
        if text:
            blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "Tool call arguments must be a JSON object.", param=f"messages[{i}].tool_calls"
            ) from None
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    return blocks


def _tool_result(message: dict, i: int) -> dict:
    if not message.get("tool_call_id"):
        raise InvalidRequest(
            "A tool message needs its tool_call_id.", param=f"messages[{i}].tool_call_id"
        )
    return {
        "type": "tool_result",
        "tool_use_id": message["tool_call_id"],
        "content": _text(message.get("content") or "", f"messages[{i}].content"),
    }


def _tool(tool: dict, i: int) -> dict:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function" or not function.get("name"):
        raise InvalidRequest("Only function tools with a name are supported.", param=f"tools[{i}]")
    result = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        result["description"] = function["description"]
    return result


def _tool_choice(choice: object) -> dict:
    if choice in (None, "auto"):
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    raise InvalidRequest("Unsupported tool_choice.", param="tool_choice")


def chat_usage(usage: object) -> dict | None:
    """Anthropic usage in OpenAI's shape, or None when it has no token counts
    (Anthropic-compatible proxies send `{}`). Anthropic's input_tokens exclude
    cache reads and writes; OpenAI's prompt_tokens include them. A value that
    is not a count is carried over for the endpoint to judge
    (gateway/reported.py), never added up."""
    if not isinstance(usage, dict):
        return None
    given = usage.get("input_tokens")
    output = usage.get("output_tokens")
    if given is None and output is None:
        return None
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    parts = [n for n in (count(given), count(cache_read), count(cache_write)) if n is not None]
    prompt = sum(parts) if len(parts) == 3 else None
    completion = count(output)
    return {
        "prompt_tokens": given if prompt is None else prompt,
        "completion_tokens": output,
        "total_tokens": None if prompt is None or completion is None else prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def to_chat_completion(message: dict) -> dict:
    text = []
    tool_calls = []
    for block in message["content"]:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    answer: dict = {
        "role": "assistant",
        "content": "".join(text) if text or not tool_calls else None,
    }
    if tool_calls:
        answer["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{message.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": answer,
                "finish_reason": STOP_REASONS.get(message.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": chat_usage(message.get("usage")),
    }


class AnthropicChunkStream(UpstreamEvents):
    """Anthropic stream events as chat completion chunks."""

    def __init__(self, events: EventStream) -> None:
        super().__init__(events)
        self._base: dict = {"object": "chat.completion.chunk", "created": int(time.time())}
        self._usage: dict = {}
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index

    async def next(self) -> dict | None:
        while not self._done:
            event = await self._events.next()
            if event is None:
                raise UpstreamError("The upstream stream ended before it was complete.")
            chunk = self._translate(decode_event(event[1]))
            if chunk is not None:
                return chunk
        return None

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _translate(self, event: dict) -> dict | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._base["id"] = f"chatcmpl-{message.get('id', '')}"
            self._base["model"] = message.get("model")
            self._usage = dict(message.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tool_index[event.get("index", 0)] = len(self._tool_index)
                call = {
                    "index": index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return self._chunk({"tool_calls": [call]})
            return None
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._chunk({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta":
                index = self._tool_index.get(event.get("index", 0), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return self._chunk({"tool_calls": [call]})
            return None  # thinking and signature deltas have no chat equivalent
        if kind == "message_delta":
            self._usage.update(
                {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            )
            reason = (event.get("delta") or {}).get("stop_reason")
            return self._chunk({}, STOP_REASONS.get(reason or "", "stop"))
        if kind == "message_stop":
            self._done = True
            self.close()
            return {**self._base, "choices": [], "usage": chat_usage(self._usage)}
        if kind == "error":
            error = event.get("error") or {}
            raise UpstreamError(str(error.get("message") or "The upstream failed mid-stream."))
        return None  # ping, content_block_stop, and event types added later


class AnthropicEvents(UpstreamEvents):
    """Anthropic stream events as they came, decoded; it ends after
    message_stop. `usage` adds up what message_start and message_delta said."""

    def __init__(self, events: EventStream, redact: Callable[[str], str]) -> None:
        super().__init__(events, redact)
        self.usage: dict | None = None

    async def next(self) -> dict | None:
        if self._done:
            return None
        raw = await self._events.next()
        if raw is None:
            raise UpstreamError("The upstream stream ended before it was complete.")
        event = decode_event(raw[1])
        kind = event.get("type")
        if kind == "message_start":
            self.usage = dict((event.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            given = event.get("usage") or {}
            self.usage = {**(self.usage or {}), **{k: v for k, v in given.items() if v is not None}}
        elif kind == "message_stop":
            self._done = True
            self.close()
        elif kind == "error":
            error = event.get("error") or {}
            message = str(error.get("message") or "The upstream failed mid-stream.")
            raise UpstreamError(f"The upstream failed: {self._redact(message)}")
        return event
