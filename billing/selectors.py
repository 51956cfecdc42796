"""Reads for the billing page and the overview (writes are in services.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.paginator import Page, Paginator

from accounts.models import Account
from billing.models import Balance, LedgerEntry, Plan
from billing.reversals import account_blocked
from usage.budgets import MICROS

HISTORY_PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class BalanceView:
    """An account's balance as the console shows it: the books' figure, and
    beside it what the gateway holds for requests in flight (its counters'
    reading, handed in: None when it cannot be read)."""

    amount_usd: Decimal
    blocked_reason: str
    low_balance_alert_usd: Decimal | None
    reserved_usd: Decimal | None = None
    metered: bool = False  # the gateway holds the account to it (PUREBRIDGE_BILLING_MODE)

    @property
    def exhausted(self) -> bool:
        """Nothing left to spend: the gateway refuses every request that costs."""
        return self.metered and self.amount_usd <= 0

    @property
    def owed(self) -> bool:
        return self.amount_usd < 0

    @property
    def low(self) -> bool:
        alert = self.low_balance_alert_usd
        return alert is not None and self.amount_usd < alert


def balance_of(
    *, account: Account, reserved_in_flight: Callable[[int], int | None] | None = None
) -> BalanceView:
    """`reserved_in_flight`: the gateway's reader of what the account's
    requests in flight hold (gateway.limits.reserved_in_flight, handed in by
    the caller, as the billing app does not import the gateway)."""
    micros = reserved_in_flight(account.pk) if reserved_in_flight else None
    reserved = Decimal(micros) / MICROS if micros is not None else None
    prepaid = settings.PUREBRIDGE_BILLING_MODE == "prepaid"
    row = Balance.objects.filter(account=account).first()
    if row is None:
        return BalanceView(Decimal(0), "", None, reserved, metered=prepaid)
    return BalanceView(
        row.amount_usd,
        account_blocked(account.pk),
        row.low_balance_alert_usd,
        reserved,
        metered=prepaid or row.ever_credited,
    )


def plans_for_sale() -> list[Plan]:
    return list(Plan.objects.filter(active=True))


def ledger_page(*, account: Account, number: str | int | None) -> Page:
    """One page of the account's ledger, newest first (an out-of-range or
    malformed number gives the nearest page)."""
    entries = LedgerEntry.objects.filter(account=account).order_by("-created_at", "-id")
    return Paginator(entries, HISTORY_PAGE_SIZE).get_page(number)
