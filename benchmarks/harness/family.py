"""A phase, or a family of phases measured together, as benchmarks/phases lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.asks import Ask
    from harness.bench import Bench
    from harness.report import Table
    from harness.seed import Key


@dataclass(frozen=True)
class Warmup:
    """A warm-up run direct and through the gateway before anything is measured:
    key cache, catalogue, upstream pool, imports on first use."""

    name: str
    asks: tuple[Ask, ...]
    stream: bool = False


def _no_targets(summary: dict) -> dict:
    return {}


@dataclass(frozen=True, eq=False)
class Family:
    """Everything about one phase or family of phases: what it needs seeded, how
    it runs, and what it adds to the summary, the targets and the table."""

    name: str
    run: Callable[[Bench], None]
    # Every phase's results -> this family's sections of the summary.
    summarise: Callable[[dict], dict]
    # Its rows of the table, from the whole summary.
    rows: Callable[[Table, dict], None]
    # The whole summary -> the verdicts on this family's targets.
    targets: Callable[[dict], dict] = _no_targets
    # Public model id -> (upstream model, provider), loaded into PureBridge.
    models: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Public model id -> its kind in the catalogue, for those not "chat".
    kinds: dict[str, str] = field(default_factory=dict)
    # API keys it sends with beyond seed.KEYS, by the name its Asks give.
    keys: dict[str, Key] = field(default_factory=dict)
    warmups: tuple[Warmup, ...] = ()
    # Families whose results its summary reads: run with it under --phases.
    requires: tuple[str, ...] = ()
