"""Reads of the model catalogue for the console: what customers see of it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.models import CatalogModel


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, as usage/pricing.py charges them."""

    model: str
    input: Decimal
    cached_input: Decimal
    output: Decimal
    cache_write: Decimal | None  # None: prompt-cache writes cost the input price
    kind: str = CatalogModel.Kind.CHAT


@dataclass(frozen=True)
class PriceList:
    rows: list[ModelPrice]

    @property
    def cache_writes(self) -> bool:
        """Some model prices prompt-cache writes apart (Anthropic's)."""
        return any(row.cache_write is not None for row in self.rows)

    @property
    def models(self) -> list[str]:
        return [row.model for row in self.rows]

    @property
    def embedding_models(self) -> list[str]:
        return [row.model for row in self.rows if row.kind == CatalogModel.Kind.EMBEDDING]


def price_list() -> PriceList:
    """Every enabled model with its prices, by id: the models /v1/models lists."""
    fields = ("public_id", "input_per_mtok", "cached_input_per_mtok", "output_per_mtok")
    rows = CatalogModel.objects.filter(enabled=True).order_by("public_id")
    return PriceList(
        [
            ModelPrice(*values)
            for values in rows.values_list(*fields, "cache_write_per_mtok", "kind")
        ]
    )
