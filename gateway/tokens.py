"""Token estimates for when an upstream reports no usage.

About four characters a token for English text and code; records built on an
estimate are marked `estimated` so nobody mistakes them for the provider's count.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI's own counting adds


def estimate_chars(chars: int) -> int:
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_text(text: str) -> int:
    return estimate_chars(len(text))


def message_text(content: object) -> str:
    """The text of a message's content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and "text" in part
        )
    return ""


def estimate_prompt(messages: list) -> int:
    total = 3
    for message in messages:
        if isinstance(message, dict):
            total += MESSAGE_OVERHEAD + estimate_text(message_text(message.get("content")))
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict):
                    function = call.get("function") or {}
                    total += estimate_text(str(function.get("arguments", "")))
    return total


def estimate_items(items: list) -> int:
    """A Responses API input: message text, tool call arguments and outputs."""
    chars = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for value in (content, item.get("arguments"), item.get("output")):
            if isinstance(value, str):
                chars += len(value)
    return 3 + MESSAGE_OVERHEAD * len(items) + estimate_chars(chars)
