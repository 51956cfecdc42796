"""Anthropic Messages requests as chat completions requests, and chat
completion answers as Anthropic messages: how /v1/messages reaches an upstream
that speaks only chat completions. (The other way, chat to an Anthropic
upstream, is gateway/providers/anthropic.py.)"""

from __future__ import annotations

import orjson

from gateway.errors import InvalidRequest
from gateway.reported import count
from gateway.responses.ids import new_id

# finish_reason -> stop_reason. A content filter's stop is Anthropic's refusal.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def to_chat_request(body: dict, stream: bool) -> dict:
    """A Messages request as a chat completions body (the model is set per route)."""
    messages: list[dict] = []
    system = system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(body["messages"]):
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"], i))
        elif message["role"] == "system":
            text = system_text(message["content"])
            messages.append({"role": "system", "content": text})
        else:
            messages.append(_assistant_message(message["content"], i))
    chat: dict = {"messages": messages, "max_tokens": body["max_tokens"], "stream": stream}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        chat["user"] = user
    if body.get("tools"):
        chat["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        chat.update(_tool_choice(choice))
    return chat


def system_text(system: object) -> str:
    """`system`: a string or a list of text blocks."""
    if system is None or isinstance(system, str):
        return system or ""
    if isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in system
    ):
        return "\n\n".join(str(b.get("text", "")) for b in system)
    raise InvalidRequest("system: must be a string or a list of text blocks.", param="system")


def _blocks(content: object) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)  # type: ignore[call-overload]


def _user_messages(content: object, i: int) -> list[dict]:
    """One user turn: its tool results as tool messages (first, as Anthropic
    orders them), then the rest as one user message."""
    tool_messages: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(_blocks(content)):
        where = f"messages.{i}.content.{j}"
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, where)}})
        elif kind == "tool_result":
            tool_messages.append(_tool_result(block, where))
        else:
            raise _unsupported(kind, where)
    if not parts:
        return tool_messages
    if all(p["type"] == "text" for p in parts):
        text = "\n".join(p["text"] for p in parts)
        return [*tool_messages, {"role": "user", "content": text}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _image_url(block: dict, where: str) -> str:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64" and source.get("data"):
        return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
    if isinstance(source, dict) and source.get("type") == "url" and source.get("url"):
        return str(source["url"])
    raise InvalidRequest(
        f"{where}.source: an image source must be base64 data or a URL.", param=f"{where}.source"
    )


def _tool_result(block: dict, where: str) -> dict:
    if not isinstance(block.get("tool_use_id"), str):
        raise InvalidRequest(f"{where}.tool_use_id: Field required.", param=f"{where}.tool_use_id")
    content = block.get("content")
    if isinstance(content, list):
        content = "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    text = str(content or "")
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _assistant_message(content: object, i: int) -> dict:
    text: list[str] = []
    calls: list[dict] = []
    for j, block in enumerate(_blocks(content)):
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind not in ("thinking", "redacted_thinking"):
            # Thinking blocks are the model's own notes, signed for Anthropic
            # only: a chat upstream has no place for them.
            raise _unsupported(kind, f"messages.{i}.content.{j}")
    message: dict = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: object, i: int) -> dict:
    if (
        not isinstance(tool, dict)
        or tool.get("type") not in (None, "custom")
        or not isinstance(tool.get("name"), str)
    ):
        raise InvalidRequest(
            f"tools.{i}: only custom tools (a name and an input_schema) are supported "
            "by this model's provider.",
            param=f"tools.{i}",
        )
    function: dict = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: dict) -> dict:
    kind = choice.get("type")
    chat: dict
    if kind == "auto":
        chat = {"tool_choice": "auto"}
    elif kind == "any":
        chat = {"tool_choice": "required"}
    elif kind == "none":
        return {"tool_choice": "none"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise InvalidRequest("tool_choice: unsupported tool_choice.", param="tool_choice")
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False
    return chat


def _unsupported(kind: object, where: str) -> InvalidRequest:
    return InvalidRequest(
        f"{where}: content blocks of type {kind!r} are not supported by this model's provider.",
        param=where,
    )


def to_message(completion: dict, model: str) -> dict:
    """A chat completion as an Anthropic message."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    answer = choice.get("message")
    if not isinstance(answer, dict):
        answer = {}
    content: list[dict] = []
    text = answer.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in answer.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu"),
                "name": function.get("name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


def tool_input(arguments: object) -> dict:
    """A tool call's arguments (a JSON string) as tool_use input; arguments
    that are not a JSON object are kept whole under `arguments`, never lost."""
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"arguments": arguments}


def stop_reason(finish: object) -> str:
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def anthropic_usage(usage: object) -> dict | None:
    """A chat usage object in Anthropic's words, or None when there is none.
    Anthropic's input_tokens exclude cache reads; OpenAI's prompt_tokens
    include them. A value that is not a count is carried over as it came,
    for the endpoint to judge (gateway/reported.py)."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    given, read, wrote = count(prompt), count(cached), count(written)
    if given is not None and read is not None and wrote is not None and given >= read + wrote:
        prompt = given - read - wrote
    else:
        # Parts that do not add up: the prompt as reported, without them.
        cached = written = None
    return {
        "input_tokens": prompt,
        "output_tokens": usage.get("completion_tokens"),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    }
