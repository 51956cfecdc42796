"""A key's budget windows: its calendar day and month in its account's time
zone, and its total quota. The periods its spend is counted over, by admission
(gateway/limits.py), the budget alerts and the console's meters.

Money here is whole micro-dollars (the counters admission keeps); the usage
records keep the exact Decimal cost. Like usage/pricing.py, this sits in the
usage app so that the gateway and usage share it without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

MICROS = Decimal(1_000_000)


def now() -> datetime:
    """The wall clock budget windows are computed from (tests move it; the
    gateway's admission reads it as gateway.limits.now)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """One budget window of one key."""

    name: str  # "daily", "monthly", "total", "balance" (the account's)
    key: str  # the counter's name
    limit_micros: int
    start: datetime | None  # None: since the key was made
    resets_at: datetime | None

    def ttl(self, at: datetime) -> int | None:
        """Seconds to keep the window's counter from `at`: a day past its reset
        (None: for good)."""
        if self.resets_at is None:
            return None
        return int((self.resets_at - at).total_seconds()) + 86_400


def to_micros(usd: Decimal) -> int:
    return math.ceil(usd * MICROS)


def account_tag(account_id: int) -> str:
    """The prefix of every Redis key admission touches for the account: its
    hash tag puts them in one Redis Cluster slot, so one script may touch a
    key's windows and its account's balance together."""
    return f"pb:{{a{account_id}}}"


def balance_window(account_id: int, credited_micros: int) -> Window:
    """The account's balance as one more window: what was credited is the
    limit its usage (spent, reserved in flight) is held to. It never resets;
    a top-up raises the limit."""
    return Window("balance", f"{account_tag(account_id)}:balance", credited_micros, None, None)


def budget_windows(key, at: datetime) -> list[Window]:
    tz = ZoneInfo(key.timezone)
    local = at.astimezone(tz)
    windows = []
    if key.daily_budget_usd is not None:
        start = datetime.combine(local.date(), datetime.min.time(), tz)
        resets = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
        windows.append(
            Window(
                "daily",
                f"{account_tag(key.account_id)}:spend:{key.id}:d:{local:%Y%m%d}",
                to_micros(key.daily_budget_usd),
                start,
                resets,
            )
        )
    if key.monthly_budget_usd is not None:
        first = local.date().replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        start = datetime.combine(first, datetime.min.time(), tz)
        resets = datetime.combine(following, datetime.min.time(), tz)
        windows.append(
            Window(
                "monthly",
                f"{account_tag(key.account_id)}:spend:{key.id}:m:{local:%Y%m}",
                to_micros(key.monthly_budget_usd),
                start,
                resets,
            )
        )
    if key.quota_usd is not None:
        windows.append(
            Window(
                "total",
                f"{account_tag(key.account_id)}:spend:{key.id}:total",
                to_micros(key.quota_usd),
                None,
                None,
            )
        )
    return windows
