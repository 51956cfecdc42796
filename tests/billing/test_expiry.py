"""Credits with a validity: what is left of one when it lapses is taken back
once, spending having used the credit that expires first."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import Balance, LedgerEntry
from billing.services import credits_expire, ledger_post, reconcile
from tests.helpers import usage_entry
from usage.recorder import _write

Kind = LedgerEntry.Kind


def grant(account, amount: str, source: str, *, expires_in_days: float | None) -> LedgerEntry:
    expires = None
    if expires_in_days is not None:
        expires = timezone.now() + timedelta(days=expires_in_days)
    entry = ledger_post(
        account_id=account.id,
        kind=Kind.REDEMPTION,
        amount=Decimal(amount),
        source=source,
        reference="Starter",
        expires_at=expires,
    )
    assert entry is not None
    return entry


def spend(key, usd: str, request_id: str) -> None:
    _write([usage_entry(key, request_id, cost_usd=Decimal(usd))])


def balance(account) -> Decimal:
    return Balance.objects.get(account=account).amount_usd


def expiries(account) -> list[Decimal]:
    entries = LedgerEntry.objects.filter(account=account, kind=Kind.EXPIRY).order_by("id")
    return [e.amount_usd for e in entries]


def test_what_is_left_of_a_lapsed_credit_is_taken_back_once(account, make_key):
    key, _ = make_key()
    credit = grant(account, "10", "code:1", expires_in_days=-1)
    spend(key, "3.25", "pb-1")

    assert credits_expire() == 1
    assert credits_expire() == 0  # once

    assert expiries(account) == [Decimal("-6.75")]
    assert balance(account) == 0
    expiry = LedgerEntry.objects.get(source=f"expiry:{credit.pk}")
    assert expiry.reference == "Starter"
    assert reconcile() == []


def test_spending_uses_the_credit_that_expires_first(account, make_key):
    """$10 expiring and $5 for good; $4 spent came out of the $10: $6 of it
    lapses and the $5 stays whole. Spending $12 used all of the $10 and $2 of
    the $5: nothing lapses."""
    key, _ = make_key()
    grant(account, "10", "code:soon", expires_in_days=-0.5)
    grant(account, "5", "code:forever", expires_in_days=None)
    spend(key, "4", "pb-1")

    assert credits_expire() == 1
    assert expiries(account) == [Decimal("-6")]
    assert balance(account) == 5

    other_key, _ = make_key(name="other")
    grant(account, "10", "code:soon-2", expires_in_days=-0.1)
    spend(other_key, "12", "pb-2")  # the new $10, then $2 of the $5
    assert credits_expire() == 1
    assert expiries(account) == [Decimal("-6"), Decimal("0")]
    assert balance(account) == 3
    assert reconcile() == []


def test_a_credit_not_yet_lapsed_is_left_alone(account, make_key):
    grant(account, "10", "code:1", expires_in_days=1)

    assert credits_expire() == 0
    assert balance(account) == 10
