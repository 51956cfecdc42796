"""Responses API requests as chat completions requests, and chat completion
answers as Responses objects: how /v1/responses reaches an upstream that
speaks only chat completions (or Anthropic, through its chat adapter)."""

from __future__ import annotations

import logging
import time

import orjson

from gateway.errors import GatewayError, InvalidRequest
from gateway.reported import count
from gateway.responses.ids import new_id
from gateway.responses.tools import ToolMap, chat_name

log = logging.getLogger(__name__)

# Request fields that mean the same in both APIs.
SAME_FIELDS = ("temperature", "top_p", "user")


def input_items(body: dict) -> list[dict]:
    """The request's `input` as a list of items (a string is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if isinstance(raw, list):
        return raw
    raise InvalidRequest("'input' must be a string or an array of input items.", param="input")


def to_chat_request(body: dict, items: list[dict], stream: bool, tools: ToolMap) -> dict:
    """A Responses request (with `items` its full conversation) as a chat body."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    for i, item in enumerate(items):
        _add_item(messages, item, i)
    if not messages:
        raise InvalidRequest("'input' has nothing to send.", param="input")
    chat: dict = {"messages": messages, "stream": stream}
    for name in SAME_FIELDS:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if tools.specs:
        chat["tools"] = tools.chat_tools()
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt
            },
        }
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    return chat


def _add_item(messages: list[dict], item: object, i: int) -> None:
    if not isinstance(item, dict):
        raise InvalidRequest(f"input[{i}] must be an object.", param=f"input[{i}]")
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise InvalidRequest(
                f"input[{i}] has an unknown role {role!r}.", param=f"input[{i}].role"
            )
        content = _content(item.get("content"), role, i)
        if (
            role == "assistant"
            and messages
            and messages[-1]["role"] == "assistant"
            and "content" not in messages[-1]
        ):
            messages[-1]["content"] = content
        else:
            messages.append({"role": "system" if role == "developer" else role, "content": content})
    elif kind in ("function_call", "custom_tool_call"):
        name = chat_name(str(item.get("name", "")), item.get("namespace"))
        if kind == "custom_tool_call":
            arguments = orjson.dumps({"input": item.get("input") or ""}).decode()
        else:
            arguments = item.get("arguments") or "{}"
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        last = messages[-1] if messages else None
        # Parallel calls of one turn belong to one assistant message.
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "tool_calls": [call]})
    elif kind in ("function_call_output", "custom_tool_call_output"):
        output = _tool_output(item.get("output"))
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
    else:
        # Server-side items a chat upstream cannot use (reasoning, web searches,
        # compaction, tool declarations handled by ToolMap, and item types
        # clients add later) are left out rather than refused.
        log.debug("left out an input item of type %s", kind)


def _content(content: object, role: str, i: int) -> str | list[dict]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(
            f"input[{i}].content must be a string or an array.", param=f"input[{i}].content"
        )
    parts: list[dict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "input_image" and part.get("image_url"):
            image = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise InvalidRequest(
                f"input[{i}] has a content part of type {kind!r} that this model's provider cannot take.",
                param=f"input[{i}].content",
            )
    if role != "user" and all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _tool_output(output: object) -> str:
    """A function_call_output's output as chat tool-message text (a string, or
    an array of parts whose text is kept)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(p.get("text", "") for p in output if isinstance(p, dict))
    return orjson.dumps(output).decode()


def _tool_choice(choice: object) -> object:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def response_object(
    *,
    response_id: str,
    created_at: int,
    model: str,
    body: dict,
    status: str,
    output: list[dict],
    usage: dict | None,
    error: dict | None = None,
    incomplete: str | None = None,
) -> dict:
    """A Responses `response` object with every field the SDKs expect."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


# Codex decides by response.failed's error code whether to retry; these are
# the codes it knows, the rest it treats as a retryable server error.
FAILURE_CODES = {
    "rate_limit_exceeded": "rate_limit_exceeded",
    "context_length_exceeded": "context_length_exceeded",
    "insufficient_quota": "insufficient_quota",
}


def failure(error: GatewayError) -> dict:
    """A response object's `error` for a GatewayError."""
    return {"code": FAILURE_CODES.get(error.code or "", "server_error"), "message": error.message}


def responses_usage(chat_usage: object) -> dict | None:
    """A chat usage object in the Responses API's words. Values are carried
    over as they came, for the endpoint to judge (gateway/reported.py), and
    added up only where both are counts."""
    if not isinstance(chat_usage, dict):
        return None
    prompt = chat_usage.get("prompt_tokens")
    completion = chat_usage.get("completion_tokens")
    details = _object(chat_usage.get("prompt_tokens_details"))
    completion_details = _object(chat_usage.get("completion_tokens_details"))
    both = count(prompt) is not None and count(completion) is not None
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": details.get("cached_tokens") or 0,
            "cache_write_tokens": details.get("cache_write_tokens") or 0,
        },
        "output_tokens": completion,
        # Always present: Codex treats a missing reasoning count as a broken stream.
        "output_tokens_details": {
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0
        },
        "total_tokens": prompt + completion if both else None,  # type: ignore[operator]
    }


def _object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def message_item(text: str, status: str = "completed", item_id: str | None = None) -> dict:
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]
        if status == "completed"
        else [],
    }


def to_response(
    completion: dict, *, response_id: str, model: str, body: dict, tools: ToolMap
) -> dict:
    """A chat completion as a finished Responses object."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict] = []
    if message.get("content"):
        output.append(message_item(message["content"]))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            tools.output_item(
                call.get("id") or new_id("call"),
                function.get("name", ""),
                function.get("arguments") or "",
            )
        )
    incomplete = "max_output_tokens" if choice.get("finish_reason") == "length" else None
    return response_object(
        response_id=response_id,
        created_at=int(time.time()),
        model=model,
        body=body,
        status="incomplete" if incomplete else "completed",
        output=output,
        usage=responses_usage(completion.get("usage")),
        incomplete=incomplete,
    )
