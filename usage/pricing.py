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
) -> Decimal:
    """USD, exact: Decimal arithmetic on integer token counts, never floats.

    Cached tokens are part of the prompt count (OpenAI's convention), billed at
    the cached price instead of the input price; reasoning tokens are part of
    the completion count.
    """
    cached = min(cached_tokens, prompt_tokens)
    total = (
        (prompt_tokens - cached) * input_per_mtok
        + cached * cached_input_per_mtok
        + completion_tokens * output_per_mtok
    )
    return total / MILLION
