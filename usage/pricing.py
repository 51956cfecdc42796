"""Exact cost of a request from its token counts and per-million-token prices."""

from __future__ import annotations

from decimal import Decimal

MILLION = Decimal(1_000_000)


def cost_usd(
    *,
    input_per_mtok: Decimal,
    cached_input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    prompt_tokens: int,
    cached_tokens: int,
    completion_tokens: int,
    cache_write_per_mtok: Decimal | None = None,
    cache_write_tokens: int = 0,
) -> Decimal:
    """USD, exact: Decimal arithmetic on integer token counts, never floats.

    Cached tokens are part of the prompt count (OpenAI's convention), billed at
    the cached price instead of the input price; so are prompt-cache writes,
    at the cache-write price (the input price when none is set). Reasoning
    tokens are part of the completion count.
    """
    cached = min(cached_tokens, prompt_tokens)
    written = min(cache_write_tokens, prompt_tokens - cached)
    write_price = input_per_mtok if cache_write_per_mtok is None else cache_write_per_mtok
    total = (
        (prompt_tokens - cached - written) * input_per_mtok
        + cached * cached_input_per_mtok
        + written * write_price
        + completion_tokens * output_per_mtok
    )
    return total / MILLION
