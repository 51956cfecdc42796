"""What /v1/messages reads from a request before admission: the key (from
either header Anthropic's clients send it in), the fields that decide money,
and the prompt's countable text."""

from __future__ import annotations

import orjson

from gateway import validate
from gateway.catalogue import ModelConfig
from gateway.errors import InvalidRequest, UnknownApiKey
from gateway.http import Request, clean_header_value
from gateway.messages.translate import system_text

# A system message may also come between turns (anthropic/types/system_message_param.py).
ROLES = ("user", "assistant", "system")
# Client headers passed on to an Anthropic upstream (the API version the
# client was written against; the beta features it opted into).
FORWARDED = (b"anthropic-version", b"anthropic-beta")


def credentials(req: Request) -> str:
    """The key as an Authorization value: from `x-api-key` (Anthropic's SDKs)
    or `Authorization: Bearer` (Claude Code with ANTHROPIC_AUTH_TOKEN). Both
    may be sent only if they name the same key: neither may be silently picked."""
    authorization = req.credentials()  # more than one Authorization is refused there
    keys = [value for name, value in req.scope["headers"] if name == b"x-api-key"]
    if len(keys) > 1:
        raise UnknownApiKey("More than one x-api-key header was sent; send exactly one.")
    if not keys:
        if not authorization:
            raise UnknownApiKey(
                "You didn't provide an API key. Send it as 'x-api-key: <your_key>' "
                "or 'Authorization: Bearer <your_key>'."
            )
        return authorization
    api_key = keys[0].decode("latin-1").strip()
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != api_key:
            raise UnknownApiKey(
                "x-api-key and Authorization name different keys; send exactly one of them."
            )
    return f"Bearer {api_key}"


def forwarded_headers(req: Request) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name.decode(), clean_header_value(req.headers[name]))
        for name in FORWARDED
        if name in req.headers
    )


def check(body: dict) -> tuple[str, bool]:
    """The model and whether to stream; raises on what admission cannot read."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required.", param="model")
    if body.get("max_tokens") is None:
        raise InvalidRequest("max_tokens: Field required.", param="max_tokens")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean.", param="stream")
    check_messages(body)
    return model, bool(stream)


def check_messages(body: dict) -> None:
    """`messages` and `system`, also all count_tokens reads."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty list.", param="messages")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidRequest(
                f"{where}.role: Input should be 'user', 'assistant' or 'system'.",
                param=f"{where}.role",
            )
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in content
        ):
            raise InvalidRequest(
                f"{where}.content: must be a string or a list of content blocks "
                "(objects with a 'type').",
                param=f"{where}.content",
            )
    system_text(body.get("system"))
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("tools: must be a list.", param="tools")


def check_cap(body: dict, model: ModelConfig) -> None:
    """max_tokens: the output cap admission reserves (Anthropic requires it)."""
    validate.whole_number(body, "max_tokens", most=model.max_output_tokens)


def prompt_text(body: dict) -> tuple[str, int]:
    """The countable text of a Messages request (system, message text, tool
    calls and results, tool definitions) and how many messages it has."""
    parts = [system_text(body.get("system"))]
    for message in body["messages"]:
        content = message["content"]
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            parts.append(_block_text(block))
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            parts.append(orjson.dumps(tool).decode())
    return "\n".join(p for p in parts if p), len(body["messages"])


def _block_text(block: dict) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"{block.get('name', '')} {orjson.dumps(block.get('input') or {}).decode()}"
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return "\n".join(_block_text(b) for b in content if isinstance(b, dict))
        return str(content or "")
    if kind == "thinking":
        return str(block.get("thinking", ""))
    return ""
