"""GET /v1/key: the calling key's own limits, spend and balance, for agents
and monitors that would otherwise scrape the console.

Authenticated like every /v1 route (the key cache of gateway/auth.py, so its
limits are the ones admission enforces). The figures cannot come from a cache
without going stale between two requests of the key, so they are read in one
database call under the hot path's deadline (gateway/db.py): spend as the
budget windows count it (usage.selectors.key_spend), the balance from the
books. Not rate limited, like /v1/models: it admits nothing and costs nothing.

Money is a decimal string (exact, never a float); times are ISO 8601 in the
account's time zone, whose calendar the daily and monthly budgets follow.
"Remaining" is what the usage records leave of a budget, never below zero;
requests still in flight are not in it (their reservations live in Redis).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.accounting import Usage
from gateway.auth import KeyInfo, authenticate
from gateway.db import run_db
from gateway.http import Request
from usage import budgets
from usage.budgets import MICROS, budget_windows
from usage.selectors import KeySpend, key_spend


@dataclass(frozen=True, slots=True)
class _Figures:
    spend: KeySpend
    balance: Decimal
    blocked_reason: str


def _read(key: KeyInfo, at: datetime) -> _Figures:
    from billing.models import Balance

    spend = key_spend(key_id=key.id, tz_name=key.timezone, now=at)
    row = (
        Balance.objects.filter(account_id=key.account_id)
        .values_list("amount_usd", "blocked_reason")
        .first()
    )
    amount, reason = row if row is not None else (Decimal(0), "")
    return _Figures(spend, amount, reason)


async def own_key(req: Request, usage: Usage) -> None:
    key = usage.key = await authenticate(req.credentials(), req.client_address(), on_hold_ok=True)
    at = budgets.now()
    figures = await run_db(_read, key, at)
    await req.send_json(200, _payload(key, figures, at), [(b"cache-control", b"no-store")])


def _usd(amount: Decimal | None) -> str | None:
    """An exact decimal string without trailing zeros: "12.5", "0.000036", "0"."""
    if amount is None:
        return None
    return f"{amount.normalize():f}"


def _payload(key: KeyInfo, figures: _Figures, at: datetime) -> dict:
    tz = ZoneInfo(key.timezone)
    spend = figures.spend
    spent = {"daily": spend.today, "monthly": spend.month, "total": spend.total}
    remaining: dict[str, str | None] = {
        "daily_budget_usd": None,
        "daily_budget_resets_at": None,
        "monthly_budget_usd": None,
        "monthly_budget_resets_at": None,
        "quota_usd": None,
    }
    names = {"daily": "daily_budget", "monthly": "monthly_budget", "total": "quota"}
    for window in budget_windows(key, at):
        left = max(Decimal(window.limit_micros) / MICROS - spent[window.name], Decimal(0))
        remaining[f"{names[window.name]}_usd"] = _usd(left)
        if window.resets_at is not None:
            remaining[f"{names[window.name]}_resets_at"] = window.resets_at.isoformat()
    expires = datetime.fromtimestamp(key.expires_at, tz) if key.expires_at is not None else None
    return {
        "object": "api_key",
        "id": key.id,
        "name": key.name,
        "prefix": key.display_prefix,
        "allowed_models": sorted(key.allowed_models) if key.allowed_models is not None else None,
        "limits": {
            "rpm": key.rpm_limit,
            "tpm": key.tpm_limit,
            "daily_budget_usd": _usd(key.daily_budget_usd),
            "monthly_budget_usd": _usd(key.monthly_budget_usd),
            "quota_usd": _usd(key.quota_usd),
            "expires_at": expires.isoformat() if expires else None,
        },
        "spend": {
            "time_zone": key.timezone,
            "today_usd": _usd(spend.today),
            "today_started_at": spend.day_start.isoformat(),
            "this_month_usd": _usd(spend.month),
            "this_month_started_at": spend.month_start.isoformat(),
            "total_usd": _usd(spend.total),
        },
        "remaining": remaining,
        "balance": {
            "amount_usd": _usd(figures.balance),
            "blocked_reason": figures.blocked_reason or None,
        },
    }
