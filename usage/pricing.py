"""Exact cost of a request from its token counts and per-million-token prices."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class CostLine:
    """One kind of token of one request, at its price."""

    label: str
    tokens: int
    per_mtok: Decimal

    @property
    def cost_usd(self) -> Decimal:
        return self.tokens * self.per_mtok / MILLION


def cost_lines(
    *,
    input_per_mtok: Decimal,
    cached_input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    prompt_tokens: int,
    cached_tokens: int,
    completion_tokens: int,
    cache_write_per_mtok: Decimal | None = None,
    cache_write_tokens: int = 0,
) -> list[CostLine]:
    """cost_usd's sum line by line, for a customer to reconcile: the lines add
    up to exactly what cost_usd answers for the same arguments (a test holds
    the two together). A line with no tokens is left out, but for input and
    output."""
    cached = min(cached_tokens, prompt_tokens)
    written = min(cache_write_tokens, prompt_tokens - cached)
    write_price = input_per_mtok if cache_write_per_mtok is None else cache_write_per_mtok
    lines = [
        CostLine("Input", prompt_tokens - cached - written, input_per_mtok),
        CostLine("Cached input", cached, cached_input_per_mtok),
        CostLine("Cache writes", written, write_price),
        CostLine("Output", completion_tokens, output_per_mtok),
    ]
    return [line for line in lines if line.tokens or line.label in ("Input", "Output")]
