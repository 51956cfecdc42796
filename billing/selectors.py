"""Reads for the billing page and the overview (writes are in services.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.paginator import Page, Paginator

from accounts.models import Account
from billing.models import Balance, LedgerEntry, Plan
from billing.reversals import account_blocked

HISTORY_PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class BalanceView:
    """An account's balance as the console shows it. What the gateway has
    reserved for requests in flight lives only in its Redis counters, so it
    is not here: the figure is the books'."""

    amount_usd: Decimal
    blocked_reason: str
    low_balance_alert_usd: Decimal | None

    @property
    def owed(self) -> bool:
        return self.amount_usd < 0

    @property
    def low(self) -> bool:
        alert = self.low_balance_alert_usd
        return alert is not None and self.amount_usd < alert


def balance_of(*, account: Account) -> BalanceView:
    row = Balance.objects.filter(account=account).first()
    if row is None:
        return BalanceView(Decimal(0), "", None)
    return BalanceView(row.amount_usd, account_blocked(account.pk), row.low_balance_alert_usd)


def plans_for_sale() -> list[Plan]:
    return list(Plan.objects.filter(active=True))


def ledger_page(*, account: Account, number: str | int | None) -> Page:
    """One page of the account's ledger, newest first (an out-of-range or
    malformed number gives the nearest page)."""
    entries = LedgerEntry.objects.filter(account=account).order_by("-created_at", "-id")
    return Paginator(entries, HISTORY_PAGE_SIZE).get_page(number)
