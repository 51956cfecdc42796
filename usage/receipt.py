"""One request's cost line by line, and why its tokens were estimated, in words.

A usage record keeps its token counts and the total it was charged, not the
prices applied; the lines are worked out from the model's prices as they are
now. When they add up to the recorded total those were the prices applied;
when not, the price changed since, and the recorded total is what was charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from usage.models import UsageRecord
from usage.pricing import CostLine, cost_lines
from usage.recorder import WORKER_LOST


@dataclass(frozen=True)
class ModelPrices:
    """A model's prices per million tokens (gateway.models.CatalogModel's)."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    cache_write: Decimal | None = None


@dataclass(frozen=True)
class Receipt:
    lines: list[CostLine]  # empty when the model is no longer priced
    charged_usd: Decimal

    @property
    def lines_usd(self) -> Decimal:
        return sum((line.cost_usd for line in self.lines), Decimal(0))

    @property
    def prices_unchanged(self) -> bool:
        return bool(self.lines) and self.lines_usd == self.charged_usd


def receipt_for(record: UsageRecord, prices: ModelPrices | None) -> Receipt:
    if prices is None:
        return Receipt([], record.cost_usd)
    lines = cost_lines(
        input_per_mtok=prices.input,
        cached_input_per_mtok=prices.cached_input,
        output_per_mtok=prices.output,
        cache_write_per_mtok=prices.cache_write,
        prompt_tokens=record.prompt_tokens,
        cached_tokens=record.cached_tokens,
        cache_write_tokens=record.cache_write_tokens,
        completion_tokens=record.completion_tokens,
    )
    return Receipt(lines, record.cost_usd)


# estimate_reason values: gateway/accounting.py (Usage._estimate),
# gateway/journal.py (WORKER_LOST) and usage/recorder.py (clamped).
COUNTED = (
    "PureBridge counted the prompt as it was sent and the answer as it was "
    "delivered, at about four characters a token."
)
MISSING = {
    "usage_missing": "The upstream answered but never reported what the request used. " + COUNTED,
    "usage_missing:client_left": "Your client disconnected before the upstream reported "
    "what the request used. " + COUNTED,
    "usage_missing:upstream_failed": "The upstream failed before it reported what the "
    "request used. " + COUNTED,
    WORKER_LOST: "The PureBridge worker handling the request stopped "
    "before it finished. The prompt it had sent upstream is charged, counted by "
    "PureBridge; what reached your client is not known.",
}


def estimate_explained(reason: str) -> str:
    """Why a record's tokens are PureBridge's own count, for its owner."""
    if reason in MISSING:
        return MISSING[reason]
    kind, _, fields = reason.partition(":")
    named = ", ".join(field for field in fields.split(",") if field)
    if kind == "usage_invalid":
        return (
            f"The upstream reported counts that are not believable ({named}): a count must "
            "be a whole number from 0 up. PureBridge replaced them with its own counts, "
            "and sent your client the same numbers."
        )
    if kind == "clamped":
        return (
            f"Values too large for the usage record ({named}) were brought within its "
            "limits when it was written."
        )
    if not reason:
        return "The upstream did not report what the request used; PureBridge counted it."
    return f"Counted by PureBridge ({reason})."
