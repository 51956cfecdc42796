"""What an upstream says a request used, believed only where it makes sense.

Billing trusts the usage record, and the record trusts the upstream's token
counts, so this is where a lying or broken upstream is stopped. The policy
(README, "Usage records and what is charged"):

- A count is believed when it is a whole number from 0 to
  PUREBRIDGE_MAX_REPORTED_TOKENS (a JSON integer, or a number with no
  fraction). Anything else — negative, fractional, a string, `null`, a
  number past the cap — is not a count.
- The prompt and completion counts are the ones that cost: one that is
  missing or not a count is replaced by PureBridge's own count of what was
  sent (the prompt) and delivered (the completion), and the record is
  marked `estimated`, with the fields that were replaced as the reason.
- The details (cached, cache-write and reasoning tokens) are parts of those
  two: a detail that is not a count, or larger than what it is part of, is
  replaced by 0 or capped at it, and the record says so too.
- The client is sent the same numbers the record keeps.

The endpoints apply it through `Usage.take_usage` (gateway/accounting.py);
the adapters that translate usage (Anthropic's, the Responses translation)
only add up what `count` believes and leave the rest missing for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.conf import settings


def count(value: object) -> int | None:
    """A reported token count, or None when the value is not one."""
    limit = settings.PUREBRIDGE_MAX_REPORTED_TOKENS
    if type(value) is int:  # not bool, which is an int too
        return value if 0 <= value <= limit else None
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value) if 0 <= value <= limit else None
    return None


@dataclass(slots=True)
class Counts:
    """Token counts as they will be recorded and sent to the client."""

    prompt: int = 0
    cached: int = 0
    cache_write: int = 0
    completion: int = 0
    reasoning: int = 0
    # Counts PureBridge made itself: fields whose reported value was missing
    # or not believed ("prompt_tokens", ...), as the upstream named them.
    replaced: list[str] = field(default_factory=list)
    # Whether the upstream reported either count that costs.
    reported: bool = False


# The fields of a usage object, by shape: OpenAI chat completions (and text
# completions), the Responses API, and embeddings, which have no completion.
# (prompt, completion, prompt details)
CHAT = ("prompt_tokens", "completion_tokens", "prompt_tokens_details")
RESPONSES = ("input_tokens", "output_tokens", "input_tokens_details")
EMBEDDINGS = ("prompt_tokens", "", "")
_COMPLETION_DETAILS = {
    CHAT: "completion_tokens_details",
    RESPONSES: "output_tokens_details",
    EMBEDDINGS: "",
}


def read(usage: object, shape: tuple[str, str, str], prompt: int, completion: int) -> Counts:
    """Counts from an upstream usage object of `shape`; `prompt` and
    `completion` are PureBridge's own counts, used where the upstream's are
    missing or not believed."""
    prompt_name, completion_name, prompt_details_name = shape
    raw = usage if isinstance(usage, dict) else {}
    counts = Counts()
    reported_prompt = count(raw.get(prompt_name))
    # A shape without a completion (embeddings) reports none, rightly.
    reported_completion = count(raw.get(completion_name)) if completion_name else 0
    counts.reported = reported_prompt is not None or (
        reported_completion is not None and bool(completion_name)
    )
    if reported_prompt is None:
        counts.replaced.append(prompt_name)
        reported_prompt = prompt
    if reported_completion is None:
        counts.replaced.append(completion_name)
        reported_completion = completion
    counts.prompt, counts.completion = reported_prompt, reported_completion
    details = raw.get(prompt_details_name)
    details = details if isinstance(details, dict) else {}
    counts.cached = _part(counts, details, "cached_tokens", counts.prompt)
    counts.cache_write = _part(counts, details, "cache_write_tokens", counts.prompt - counts.cached)
    completion_details = raw.get(_COMPLETION_DETAILS[shape])
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    counts.reasoning = _part(counts, completion_details, "reasoning_tokens", counts.completion)
    return counts


def _part(counts: Counts, details: dict, name: str, whole: int) -> int:
    """A detail count, believed when it is a count no larger than its whole."""
    if name not in details or details[name] is None:
        return 0
    value = count(details[name])
    if value is None or value > whole:
        counts.replaced.append(name)
        return 0 if value is None else whole
    return value


def as_reported(usage: object, counts: Counts, shape: tuple[str, str, str]) -> dict:
    """The upstream's usage object with every count that was replaced set to
    what is recorded (and its total to match); untouched when nothing was,
    so fields PureBridge does not read (audio tokens, ...) pass through."""
    raw = dict(usage) if isinstance(usage, dict) else {}
    prompt_name, completion_name, prompt_details_name = shape
    raw[prompt_name] = counts.prompt
    raw["total_tokens"] = counts.prompt + counts.completion
    if not completion_name:  # embeddings: a prompt count and its total only
        return raw
    raw[completion_name] = counts.completion
    prompt_details = raw.get(prompt_details_name)
    raw[prompt_details_name] = {
        **(prompt_details if isinstance(prompt_details, dict) else {}),
        "cached_tokens": counts.cached,
        "cache_write_tokens": counts.cache_write,
    }
    completion_details_name = _COMPLETION_DETAILS[shape]
    completion_details = raw.get(completion_details_name)
    raw[completion_details_name] = {
        **(completion_details if isinstance(completion_details, dict) else {}),
        "reasoning_tokens": counts.reasoning,
    }
    return raw
